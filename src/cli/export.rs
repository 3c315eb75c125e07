//! `lifeline export INCIDENT`: the post-incident timeline (Markdown, JSON,
//! HTML). Reads the incident; writes only the export.

use std::process::ExitCode;

use lifeline::redact::Redactor;

use super::{Cli, inventory_secrets, state_dir};

pub fn cmd_export(cli: &Cli, redactor: &Redactor, args: lifeline::export::ExportArgs) -> ExitCode {
    let inventory = match inventory_secrets(cli, redactor) {
        Ok(i) => i,
        Err(code) => return code,
    };
    match lifeline::export::run(&args, &state_dir(cli), inventory.as_ref(), redactor) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            lifeline::errln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
