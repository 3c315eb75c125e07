//! The lifeline binary: parses the command line and hands over to the
//! library. No logic lives here beyond wiring and exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use lifeline::inventory::{Inventory, InventoryError};
use lifeline::journal;
use lifeline::redact::Redactor;
use lifeline::state::{StateDir, default_operator, default_state_dir};

/// Exit codes (contract): 0 success, 1 a step or check failed, 2 bad usage,
/// inventory or runbook, 3 verification found damage.
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "lifeline",
    version,
    about = "Console for PostgreSQL data-loss outages: see what writes, stop it for good, restore beside the live database, verify, swap; every step journaled.",
    arg_required_else_help = true
)]
struct Cli {
    /// Inventory file (default ./lifeline.toml, else $LIFELINE_INVENTORY).
    #[arg(short = 'i', long, global = true, value_name = "PATH")]
    inventory: Option<PathBuf>,
    /// Where incidents are kept (default $XDG_STATE_HOME/lifeline or ~/.local/state/lifeline).
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Who is at the keyboard, recorded in every journal line (default $LIFELINE_OPERATOR, else $USER).
    #[arg(long, global = true, value_name = "NAME")]
    operator: Option<String>,
    /// Probes only: every action is refused.
    #[arg(long, global = true)]
    readonly: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the inventory; exit 2 listing every error as file:line:col.
    Check,
    /// One-shot probe of every host (services, hazards) and backup catalog.
    Status {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds one host may take (connect, discovery, backups).
        #[arg(long, default_value_t = 20, value_name = "SECS")]
        timeout: u64,
    },
    /// Journal tools.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
}

#[derive(Subcommand, Debug)]
enum JournalCommand {
    /// Recompute a journal's hash chain: exit 0 when intact, 1 naming the first bad line.
    Verify {
        /// A journal.jsonl file, or an incident id under --state-dir.
        path: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The inventory path the operator meant: -i, ./lifeline.toml, $LIFELINE_INVENTORY.
fn inventory_path(cli: &Cli) -> Option<PathBuf> {
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

fn cmd_check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let Some(path) = inventory_path(cli) else {
        eprintln!(
            "error: no inventory: pass -i PATH, create ./lifeline.toml, or set LIFELINE_INVENTORY (see README, 'Inventory')"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    match Inventory::load(&path) {
        Ok(inv) => {
            println!(
                "ok: {}: {} host(s), {} database(s), {} backup catalog(s), {} service(s)",
                path.display(),
                inv.hosts.len(),
                inv.databases.len(),
                inv.backups.len(),
                inv.services.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(InventoryError::Invalid(diags)) => {
            for d in &diags.0 {
                eprintln!("{d}");
            }
            eprintln!("error: {} problem(s) in {}", diags.0.len(), path.display());
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

fn cmd_status(
    cli: &Cli,
    json: bool,
    timeout: u64,
    redactor: &Redactor,
) -> anyhow::Result<ExitCode> {
    let Some(path) = inventory_path(cli) else {
        eprintln!(
            "error: no inventory: pass -i PATH, create ./lifeline.toml, or set LIFELINE_INVENTORY (see README, 'Inventory')"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let inv = match Inventory::load(&path) {
        Ok(inv) => inv,
        Err(InventoryError::Invalid(diags)) => {
            for d in &diags.0 {
                eprintln!("{d}");
            }
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    for w in inv.register_secrets(redactor) {
        tracing::debug!("{w}");
    }
    let opts = lifeline::status::StatusOptions {
        host_timeout: std::time::Duration::from_secs(timeout.max(1)),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = rt.block_on(async {
        let hosts = lifeline::transport::Hosts::from_inventory(&inv, None);
        lifeline::status::collect(&inv, &hosts, &opts).await
    });
    if json {
        println!("{}", lifeline::status::render_json(&report, redactor));
    } else {
        print!("{}", lifeline::status::render_text(&report, redactor));
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_journal_verify(cli: &Cli, path: &str, json: bool) -> anyhow::Result<ExitCode> {
    let mut p = PathBuf::from(path);
    if !p.exists() && lifeline::state::valid_incident_id(path) {
        let state = StateDir::new(cli.state_dir.clone().unwrap_or_else(default_state_dir));
        p = state.journal_path(path);
    }
    let report = journal::verify_file(&p)
        .with_context(|| format!("cannot read journal '{}'", p.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&p, &report);
    }
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn print_report(p: &Path, r: &journal::VerifyReport) {
    match &r.first_bad {
        None => println!(
            "ok: {}: {} record(s), hash chain intact",
            p.display(),
            r.valid
        ),
        Some((line, why)) => println!(
            "BROKEN: {}: line {line}: {why} ({} record(s) before it verified)",
            p.display(),
            r.valid
        ),
    }
    if let Some(n) = r.torn_last_line {
        println!(
            "torn: line {n} is an incomplete last line (a write interrupted by a crash); it recorded nothing and the {} record(s) before it are verified",
            r.valid
        );
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let redactor = Redactor::new();
    lifeline::logging::init_stderr(redactor.clone());
    let _operator = cli.operator.clone().unwrap_or_else(default_operator);
    match &cli.command {
        Command::Check => cmd_check(&cli),
        Command::Status { json, timeout } => cmd_status(&cli, *json, *timeout, &redactor),
        Command::Journal {
            command: JournalCommand::Verify { path, json },
        } => cmd_journal_verify(&cli, path, *json),
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
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
