//! The lifeline binary: parses the command line and dispatches to the
//! subcommand's file under `cli/`. No logic lives here beyond wiring and
//! exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, EXIT_FAILED, EXIT_USAGE, JournalCommand};
use lifeline::redact::Redactor;
use lifeline::state::default_state_dir;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use lifeline::output::{Verbosity, set_verbosity};
    set_verbosity(match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, n) => Verbosity::Verbose(n),
    });
    let redactor = Redactor::new();
    // Journals and snapshots are production data: say so when others can read them.
    let root = cli.state_dir.clone().unwrap_or_else(default_state_dir);
    if let Some(w) = lifeline::state::exposure_warning(&root) {
        lifeline::errln!("warning: {w}");
    }
    let command = cli.command.as_ref().unwrap_or(&Command::Console {
        incident: None,
        probe_interval: 10,
        probe_timeout: 20,
    });
    // The console owns the terminal: its tracing goes to a file.
    match command {
        Command::Console {
            incident,
            probe_interval,
            probe_timeout,
        } => {
            return Ok(cli::console::cmd_console(
                &cli,
                redactor,
                incident.clone(),
                *probe_interval,
                *probe_timeout,
            ));
        }
        Command::Lab { headless, .. } => {
            if *headless {
                lifeline::logging::init_stderr(redactor.clone());
            }
            return Ok(cli::lab::cmd_lab(&cli, redactor, command));
        }
        Command::Completions { shell } => return cli::completions::cmd_completions(*shell),
        Command::Init {
            output,
            force,
            socket_dir,
            hosts,
            look_in,
        } => {
            return Ok(cli::init::cmd_init(&lifeline::init::InitArgs {
                output: output.clone(),
                force: *force,
                socket_dirs: socket_dir.clone(),
                hosts: hosts.clone(),
                look_in: look_in.clone(),
            }));
        }
        Command::Man { dir } => return cli::man::cmd_man(dir.as_deref()),
        _ => {}
    }
    lifeline::logging::init_stderr(redactor.clone());
    match command {
        Command::Console { .. }
        | Command::Lab { .. }
        | Command::Completions { .. }
        | Command::Init { .. }
        | Command::Man { .. } => Ok(ExitCode::from(EXIT_USAGE)),
        Command::Check { file } => cli::check::cmd_check(&cli, file.clone()),
        Command::Runbooks => Ok(cli::runbooks::cmd_runbooks()),
        Command::Incidents { json } => cli::incidents::cmd_incidents(&cli, *json),
        Command::Run {
            runbook,
            answers,
            dry_run,
            incident,
            resume,
        } => {
            let r = cli::run::Run {
                runbook,
                answers: answers.as_ref(),
                dry_run: *dry_run,
                incident: incident.as_ref(),
                resume: *resume,
            };
            Ok(cli::run::cmd_run(&cli, r, redactor))
        }
        Command::Verify { database, json } => {
            Ok(cli::verify::cmd_verify(&cli, database, *json, &redactor))
        }
        Command::Status { json, timeout } => {
            cli::status::cmd_status(&cli, *json, *timeout, &redactor)
        }
        Command::Backups {
            catalog,
            incident,
            json,
        } => Ok(cli::backups::cmd_backups(
            &cli,
            catalog.as_deref(),
            incident.as_deref(),
            *json,
            &redactor,
        )),
        Command::Journal {
            command:
                JournalCommand::Verify {
                    path,
                    allowed_signers,
                    heads,
                    json,
                },
        } => cli::journal::cmd_journal_verify(&cli, path, allowed_signers.as_deref(), heads, *json),
        Command::Note {
            incident,
            text,
            at,
            tz,
        } => {
            let args = lifeline::export::note::NoteArgs {
                incident: incident.clone(),
                text: text.clone(),
                at: at.clone(),
                tz: tz.clone(),
            };
            Ok(cli::note::cmd_note(&cli, &redactor, args))
        }
        Command::Export {
            incident,
            format,
            output,
            tz,
        } => {
            let args = lifeline::export::ExportArgs {
                incident: incident.clone(),
                format: *format,
                output: output.clone(),
                tz: tz.clone(),
            };
            Ok(cli::export::cmd_export(&cli, &redactor, args))
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            lifeline::errln!("error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
