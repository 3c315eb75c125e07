//! The CLI edge: one file per subcommand turning parsed arguments into a
//! library call and an exit code; shared here: exit codes, where the
//! inventory and state are, the inventory loader. Never holds logic.

pub mod args;
pub mod backups;
pub mod check;
pub mod completions;
pub mod console;
pub mod export;
pub mod incidents;
pub mod init;
pub mod journal;
pub mod lab;
pub mod man;
pub mod note;
pub mod run;
pub mod runbooks;
pub mod status;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lifeline::inventory::Inventory;
use lifeline::redact::Redactor;
use lifeline::state::{StateDir, default_state_dir};

pub use args::{Cli, Command, JournalCommand};

/// Exit codes (contract): 0 success, 1 a step or check failed, 2 bad usage,
/// inventory or runbook, 3 verification found damage.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// The inventory path the operator meant: -i, ./lifeline.toml, $LIFELINE_INVENTORY.
pub fn inventory_path(cli: &Cli) -> Option<PathBuf> {
    if let Some(p) = &cli.inventory {
        return Some(p.clone());
    }
    let local = PathBuf::from("lifeline.toml");
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("LIFELINE_INVENTORY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Loads the inventory when there is one (-i, ./lifeline.toml,
/// $LIFELINE_INVENTORY) and registers its secrets with the redactor.
/// Err(exit code) when it is named but unusable.
pub fn inventory_secrets(cli: &Cli, redactor: &Redactor) -> Result<Option<Inventory>, ExitCode> {
    let Some(path) = inventory_path(cli) else {
        return Ok(None);
    };
    match lifeline::inventory::open(&path, redactor) {
        Ok((inv, warnings)) => {
            for w in warnings {
                lifeline::errln!("warning: {w}");
            }
            Ok(Some(inv))
        }
        Err(e) => {
            let summary = ": fix it (its secrets are needed for redaction) or leave -i out";
            for l in e.report(&path, Some(summary)) {
                lifeline::errln!("{l}");
            }
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

pub fn state_dir(cli: &Cli) -> StateDir {
    StateDir::new(cli.state_dir.clone().unwrap_or_else(default_state_dir))
}

pub fn write_stdout(bytes: &[u8], what: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {what} to stdout"))
}
