//! `lifeline completions SHELL`: the completion script, generated from the
//! clap definitions. Writes stdout only.

use std::process::ExitCode;

use super::{Cli, write_stdout};

/// `lifeline completions SHELL`: the script for SHELL, generated from the CLI.
pub fn cmd_completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "lifeline", &mut out);
    write_stdout(&out, "the completion script")?;
    Ok(ExitCode::SUCCESS)
}
