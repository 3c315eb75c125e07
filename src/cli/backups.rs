//! `lifeline backups [CATALOG]`: every backup of the catalogs with its
//! content and label. Reads the backups; writes only the content cache.

use std::process::ExitCode;

use lifeline::redact::Redactor;
use lifeline::state::default_state_dir;

use super::{Cli, inventory_path};

pub fn cmd_backups(
    cli: &Cli,
    catalog: Option<&str>,
    incident: Option<&str>,
    json: bool,
    redactor: &Redactor,
) -> ExitCode {
    let state = cli.state_dir.clone().unwrap_or_else(default_state_dir);
    let inventory = inventory_path(cli);
    let args = lifeline::backups::BackupsArgs {
        inventory: inventory.as_deref(),
        state_dir: &state,
        catalog,
        incident,
        json,
    };
    ExitCode::from(lifeline::backups::cli(args, redactor))
}
