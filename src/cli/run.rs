//! `lifeline run RUNBOOK --answers FILE`: a runbook without a terminal
//! (the headless front end in the library does the run).

use std::path::PathBuf;
use std::process::ExitCode;

use lifeline::redact::Redactor;
use lifeline::state::{default_operator, default_state_dir};

use super::{Cli, inventory_path};

/// The arguments of `run` as clap parsed them.
pub struct Run<'a> {
    pub runbook: &'a str,
    pub answers: Option<&'a PathBuf>,
    pub dry_run: bool,
    pub incident: Option<&'a String>,
    pub resume: bool,
}

pub fn cmd_run(cli: &Cli, r: Run<'_>, redactor: Redactor) -> ExitCode {
    let args = lifeline::headless::RunArgs {
        runbook: r.runbook.to_string(),
        answers: r.answers.cloned(),
        dry_run: r.dry_run,
        incident: r.incident.cloned(),
        resume: r.resume,
        readonly: cli.readonly,
        inventory: inventory_path(cli),
        state_dir: cli.state_dir.clone().unwrap_or_else(default_state_dir),
        operator: cli.operator.clone().unwrap_or_else(default_operator),
        seed_samples: Vec::new(),
    };
    ExitCode::from(lifeline::headless::cmd_run(args, redactor))
}
