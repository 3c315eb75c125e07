//! `lifeline man [--dir DIR]`: the man pages, generated from the clap
//! definitions. Writes stdout, or pages into an existing directory.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{Cli, EXIT_USAGE, write_stdout};

/// `lifeline man [--dir DIR]`: the man pages, generated from the CLI. They
/// are documentation for every user, so written world-readable (umask).
pub fn cmd_man(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("cannot render the man page")?;
            write_stdout(&out, "the man page")?;
        }
        Some(d) => {
            if !d.is_dir() {
                lifeline::errln!(
                    "error: '{}' is not a directory: create it first (e.g. mkdir -p ~/.local/share/man/man1)",
                    d.display()
                );
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            clap_mangen::generate_to(cmd, d)
                .with_context(|| format!("cannot write the man pages into '{}'", d.display()))?;
            lifeline::outln!("man pages written to '{}'", d.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
