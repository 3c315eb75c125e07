//! `lifeline verify DATABASE [--json]`: integrity checks derived from the
//! schema; exit 3 on damage. Reads only.

use std::process::ExitCode;

use lifeline::redact::Redactor;

use super::{Cli, inventory_path};

pub fn cmd_verify(cli: &Cli, database: &str, json: bool, redactor: &Redactor) -> ExitCode {
    ExitCode::from(lifeline::db::verify::cli(
        inventory_path(cli).as_deref(),
        database,
        json,
        redactor,
    ))
}
