//! `lifeline check [FILE]`: validates the inventory and every runbook
//! against it; exit 2 listing every problem as file:line:col. Reads only.

use std::path::PathBuf;
use std::process::ExitCode;

use lifeline::inventory::NO_INVENTORY;
use lifeline::redact::Redactor;

use super::{Cli, EXIT_USAGE, inventory_path};

pub fn cmd_check(cli: &Cli, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let Some(path) = file.or_else(|| inventory_path(cli)) else {
        lifeline::errln!("{NO_INVENTORY}");
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    // A redactor of its own: check prints counts, never a secret.
    match lifeline::inventory::open(&path, &Redactor::new()) {
        Ok((inv, _)) => {
            lifeline::outln!(
                "ok: {}: {} host(s), {} database(s), {} backup catalog(s), {} service(s)",
                path.display(),
                inv.hosts.len(),
                inv.databases.len(),
                inv.backups.len(),
                inv.services.len()
            );
            Ok(ExitCode::from(lifeline::headless::check_runbooks(&inv)))
        }
        Err(e) => {
            for l in e.report(&path, Some("")) {
                lifeline::errln!("{l}");
            }
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}
