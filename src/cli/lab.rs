//! `lifeline lab [SCENARIO]`: builds a sandboxed outage and opens the
//! console on it (or runs it headless and scores the drill).

use std::process::ExitCode;

use lifeline::redact::Redactor;
use lifeline::state::default_operator;

use super::{Cli, Command, EXIT_USAGE};

pub fn cmd_lab(cli: &Cli, redactor: Redactor, command: &Command) -> ExitCode {
    let Command::Lab {
        scenario,
        dir,
        rows,
        ssh,
        headless,
        answers,
        install_deps,
        runbook,
        pgbackrest,
    } = command
    else {
        return ExitCode::from(EXIT_USAGE);
    };
    let scenario = match scenario.parse::<lifeline::lab::Scenario>() {
        Ok(s) => s,
        Err(e) => {
            lifeline::errln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let args = lifeline::console::lab::LabArgs {
        scenario,
        dir: dir.clone(),
        rows: *rows,
        ssh: *ssh,
        headless: *headless,
        answers: answers.clone(),
        state_dir: cli.state_dir.clone(),
        operator: cli.operator.clone().unwrap_or_else(default_operator),
        readonly: cli.readonly,
        install_deps: *install_deps,
        runbook: runbook.clone(),
        pgbackrest: *pgbackrest,
    };
    match lifeline::console::lab::cmd_lab(args, redactor) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            lifeline::errln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
