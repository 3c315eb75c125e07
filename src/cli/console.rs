//! `lifeline [console]`: opens the console (TUI) on the inventory; the
//! default command. The console owns the terminal; this only wires it.

use std::process::ExitCode;

use lifeline::inventory::NO_INVENTORY;
use lifeline::redact::Redactor;
use lifeline::state::{default_operator, default_state_dir};

use super::{Cli, EXIT_USAGE, inventory_path};

pub fn cmd_console(
    cli: &Cli,
    redactor: Redactor,
    incident: Option<String>,
    probe_interval: u64,
    probe_timeout: u64,
) -> ExitCode {
    let Some(path) = inventory_path(cli) else {
        lifeline::errln!("{NO_INVENTORY}; or try 'lifeline lab' for a sandboxed outage");
        return ExitCode::from(EXIT_USAGE);
    };
    let mut args = lifeline::console::ConsoleArgs::new(
        path,
        cli.state_dir.clone().unwrap_or_else(default_state_dir),
        cli.operator.clone().unwrap_or_else(default_operator),
    );
    args.incident = incident;
    args.readonly = cli.readonly;
    args.probe_interval = std::time::Duration::from_secs(probe_interval.max(1));
    args.probe_timeout = std::time::Duration::from_secs(probe_timeout.max(1));
    match lifeline::console::cmd_console(args, redactor) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            lifeline::errln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
