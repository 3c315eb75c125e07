//! `lifeline incidents [--json]`: the incidents under --state-dir. Reads only.

use std::process::ExitCode;

use super::{Cli, state_dir};

pub fn cmd_incidents(cli: &Cli, json: bool) -> anyhow::Result<ExitCode> {
    let rows = lifeline::incidents::list(&state_dir(cli));
    if json {
        lifeline::outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        lifeline::outln!("{}", lifeline::incidents::render(&rows).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
