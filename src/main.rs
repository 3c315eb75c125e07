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
    about = "Console for PostgreSQL data-loss outages: see what writes, stop it for good, restore beside the live database, verify, swap; every step journaled."
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
    /// Print only errors and the final result (no progress, no step lines).
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More tracing on stderr: -v info, -vv debug, -vvv trace (overrides RUST_LOG).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Open the console (TUI) on the inventory: the default command.
    Console {
        /// Re-open this incident (its journal, samples, a runbook in flight).
        #[arg(long, value_name = "ID")]
        incident: Option<String>,
        /// Seconds between host probes.
        #[arg(long, default_value_t = 10, value_name = "SECS")]
        probe_interval: u64,
        /// Seconds one host probe may take before it counts as no answer.
        #[arg(long, default_value_t = 20, value_name = "SECS")]
        probe_timeout: u64,
    },
    /// Build a local sandbox that reproduces an outage and open the console on it (DRILL).
    Lab {
        /// rogue-sync (default), wrong-database, dropped-database, migration-reset.
        #[arg(default_value = "rogue-sync")]
        scenario: String,
        /// Keep the sandbox in this new or empty directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// About this many rows in the application tables.
        #[arg(long, value_name = "N")]
        rows: Option<u64>,
        /// Reach the lab host through a throwaway sshd on loopback.
        #[arg(long)]
        ssh: bool,
        /// Run the scenario's runbook from --answers without a terminal and score the drill.
        #[arg(long)]
        headless: bool,
        /// Answers for --headless (default: the scenario's shipped answers).
        #[arg(long, value_name = "FILE", requires = "headless")]
        answers: Option<PathBuf>,
        /// When the PostgreSQL server binaries are missing, install them with apt (as root) without asking.
        #[arg(long)]
        install_deps: bool,
    },
    /// Validate the inventory and every runbook; exit 2 listing every error as file:line:col.
    Check {
        /// The inventory to check (same as -i FILE).
        file: Option<PathBuf>,
    },
    /// List the incidents under --state-dir: id, runbook, opened, state.
    Incidents {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the runbooks and when to use each.
    Runbooks,
    /// Run a runbook without a terminal, answering from --answers.
    Run {
        /// A runbook id (see 'lifeline runbooks') or a path to a runbook file.
        runbook: String,
        /// Answers file: parameters, typed confirmations, overrides (README, 'Runbooks').
        #[arg(long, value_name = "FILE")]
        answers: Option<PathBuf>,
        /// Print the whole plan with every command and target; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Journal into this incident (default: a new one).
        #[arg(long, value_name = "ID")]
        incident: Option<String>,
        /// Rebuild the run from the incident's journal and continue it.
        #[arg(long, requires = "incident")]
        resume: bool,
    },
    /// Integrity checks derived from the schema; exit 3 on damage.
    Verify {
        /// The database's inventory name.
        database: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One-shot probe of every host (services, hazards), database (identity, health) and backup catalog.
    Status {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds one host or database may take (connect, discovery, backups, identity).
        #[arg(long, default_value_t = 20, value_name = "SECS")]
        timeout: u64,
    },
    /// Every backup of the catalogs with its content (rows per table, scanned once and cached) and a label: healthy, damaged, schema-only, other-database, truncated, unreadable.
    Backups {
        /// Only this catalog (inventory name).
        catalog: Option<String>,
        /// Take the healthy history from this incident's samples too.
        #[arg(long, value_name = "ID")]
        incident: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Journal tools.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Add an annotation to an incident's timeline (a new journal event; nothing is edited).
    Note {
        /// An incident id under --state-dir, or a path to an incident directory or journal.
        incident: String,
        /// What happened, e.g. "a change was made by hand".
        text: String,
        /// The time the note describes (a backdated note): RFC 3339, 'HH:MM' today or
        /// 'YYYY-MM-DD HH:MM' in local time.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// UTC offset --at is given in (e.g. +02:00); default this machine's zone.
        #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
        tz: Option<String>,
    },
    /// Write a commented starter inventory from ~/.ssh/config, known_hosts, ~/.pgpass, PG* variables and local sockets.
    Init {
        /// Where to write it (mode 0600).
        #[arg(
            short = 'o',
            long = "output",
            value_name = "FILE",
            default_value = "lifeline.toml"
        )]
        output: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Look for PostgreSQL sockets here (repeatable; default /var/run/postgresql).
        #[arg(long, value_name = "DIR")]
        socket_dir: Vec<PathBuf>,
        /// Also look on this host (a Host of ~/.ssh/config, or 'local') for backup directories and PostgreSQL servers (repeatable; read-only).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// With --host: a directory to search for backups besides the usual ones (repeatable).
        #[arg(long, value_name = "DIR", requires = "hosts")]
        look_in: Vec<String>,
    },
    /// Print a shell completion script to stdout (see README, 'Install').
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or with --dir write one page per command there.
    Man {
        /// Write lifeline.1 and lifeline-COMMAND.1 into this existing directory (e.g. ~/.local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Export the post-incident timeline: summary, row counts, every event; exit 1 if the journal's chain is broken.
    Export {
        /// An incident id under --state-dir, or a path to an incident directory or journal.
        incident: String,
        #[arg(long, value_enum, default_value = "md")]
        format: lifeline::export::Format,
        /// Write to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// UTC offset for the local-time column (e.g. +02:00); default this machine's zone.
        #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
        tz: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum JournalCommand {
    /// Recompute a journal's hash chain and check its signed checkpoints: exit 0
    /// when intact and signed to its end, 1 naming the first bad line.
    Verify {
        /// A journal.jsonl file, or an incident id under --state-dir.
        path: String,
        /// OpenSSH allowed-signers file to check checkpoints against
        /// (default <state-dir>/keys/allowed_signers).
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
        /// A head log to compare the journal's head with (a copy of a host's
        /// ~/.lifeline/heads/<incident>.log, or $LIFELINE_HEAD_LOG/<incident>.log); repeatable.
        #[arg(long = "heads", value_name = "FILE")]
        heads: Vec<PathBuf>,
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

fn cmd_check(cli: &Cli, file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let Some(path) = file.or_else(|| inventory_path(cli)) else {
        lifeline::errln!(
            "error: no inventory: pass -i PATH, create ./lifeline.toml, or set LIFELINE_INVENTORY (see README, 'Inventory')"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    match Inventory::load(&path) {
        Ok(inv) => {
            lifeline::outln!(
                "ok: {}: {} host(s), {} database(s), {} backup catalog(s), {} service(s)",
                path.display(),
                inv.hosts.len(),
                inv.databases.len(),
                inv.backups.len(),
                inv.services.len()
            );
            Ok(ExitCode::from(lifeline::headless::check_runbooks(&inv)))
        }
        Err(InventoryError::Invalid(diags)) => {
            for d in &diags.0 {
                lifeline::errln!("{d}");
            }
            lifeline::errln!("error: {} problem(s) in {}", diags.0.len(), path.display());
            Ok(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => {
            lifeline::errln!("error: {e}");
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
        lifeline::errln!(
            "error: no inventory: pass -i PATH, create ./lifeline.toml, or set LIFELINE_INVENTORY (see README, 'Inventory')"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let inv = match Inventory::load(&path) {
        Ok(inv) => inv,
        Err(InventoryError::Invalid(diags)) => {
            for d in &diags.0 {
                lifeline::errln!("{d}");
            }
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e) => {
            lifeline::errln!("error: {e}");
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
        lifeline::status::collect(&inv, &hosts, &opts, redactor).await
    });
    if json {
        println!(
            "{}",
            lifeline::term::json_safe(&lifeline::status::render_json(&report, redactor))
        );
    } else {
        lifeline::out!("{}", lifeline::status::render_text(&report, redactor));
        // Processes a run left frozen (its connection lost): `run --resume` continues them.
        for l in lifeline::actions::hosts::frozen::frozen_in_state_dir(&state_dir(cli)) {
            lifeline::outln!(
                "{l} (resume the run with --resume, or 'kill -s CONT' them on the host)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_journal_verify(
    cli: &Cli,
    path: &str,
    allowed: Option<&Path>,
    heads: &[PathBuf],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut p = PathBuf::from(path);
    if !p.exists() && lifeline::state::valid_incident_id(path) {
        let state = StateDir::new(cli.state_dir.clone().unwrap_or_else(default_state_dir));
        p = state.journal_path(path);
    }
    let report = journal::verify_file_with(&p, allowed)
        .with_context(|| format!("cannot read journal '{}'", p.display()))?;
    if json {
        println!(
            "{}",
            lifeline::term::json_safe(&serde_json::to_string_pretty(&report)?)
        );
    } else {
        print_report(&p, &report);
    }
    let mut anchored = true;
    if !heads.is_empty() {
        let records: Vec<journal::Record> = journal::read_records(&p)
            .unwrap_or_default()
            .into_iter()
            .take(report.valid)
            .collect();
        let incident = records
            .first()
            .map(|r| r.incident.clone())
            .unwrap_or_default();
        for h in heads {
            let text = std::fs::read_to_string(h)
                .with_context(|| format!("cannot read head log '{}'", h.display()))?;
            let anchors = journal::anchor::parse(&text, &incident);
            match journal::anchor::compare(&records, &anchors) {
                Ok(_) if anchors.is_empty() => {
                    anchored = false;
                    lifeline::outln!(
                        "ANCHOR: {}: no head of incident '{incident}' in it",
                        h.display()
                    );
                }
                Ok(seq) => lifeline::outln!(
                    "anchored: {}: {} head(s) match, the latest at seq {seq}",
                    h.display(),
                    anchors.len()
                ),
                Err(why) => {
                    anchored = false;
                    lifeline::outln!("{why} ({})", h.display());
                }
            }
        }
    }
    Ok(if report.trusted() && anchored {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn print_report(p: &Path, r: &journal::VerifyReport) {
    match &r.first_bad {
        None => lifeline::outln!(
            "ok: {}: {} record(s), hash chain intact",
            p.display(),
            r.valid
        ),
        Some((line, why)) => lifeline::outln!(
            "BROKEN: {}: line {line}: {why} ({} record(s) before it verified)",
            p.display(),
            r.valid
        ),
    }
    let s = &r.signatures;
    let against = s
        .allowed_signers
        .as_deref()
        .unwrap_or("(no allowed-signers file)");
    match &s.problem {
        Some((line, why)) => lifeline::outln!("SIGNATURE: line {line}: {why}"),
        None if s.checkpoints == 0 => lifeline::outln!(
            "NOT SIGNED: no signed checkpoint in {} record(s): written before signing, or its checkpoints were removed",
            r.valid
        ),
        None => lifeline::outln!(
            "signed: {} checkpoint(s) by {} verified against {against}",
            s.checkpoints,
            s.signers.join(", ")
        ),
    }
    if s.unsigned_tail > 0 && s.checkpoints > 0 {
        if s.in_progress {
            lifeline::outln!(
                "open: {} record(s) after the last checkpoint; a writer holds the journal (signed when it closes)",
                s.unsigned_tail
            );
        } else {
            lifeline::outln!(
                "UNSIGNED TAIL: {} record(s) after the last checkpoint and no writer holds the journal (a writer killed before it closed, or records appended by hand)",
                s.unsigned_tail
            );
        }
    }
    if let Some((seq, hash)) = &s.head {
        lifeline::outln!("head: seq {seq} hash {hash}");
    }
    if let Some(n) = r.torn_last_line {
        lifeline::outln!(
            "torn: line {n} is an incomplete last line (a write interrupted by a crash); it recorded nothing and the {} record(s) before it are verified",
            r.valid
        );
    }
}

/// Loads the inventory when there is one (-i, ./lifeline.toml,
/// $LIFELINE_INVENTORY) and registers its secrets with the redactor.
/// Err(exit code) when it is named but unusable.
fn inventory_secrets(cli: &Cli, redactor: &Redactor) -> Result<Option<Inventory>, ExitCode> {
    let Some(path) = inventory_path(cli) else {
        return Ok(None);
    };
    match Inventory::load(&path) {
        Ok(inv) => {
            for w in inv.register_secrets(redactor) {
                lifeline::errln!("warning: {w}");
            }
            Ok(Some(inv))
        }
        Err(InventoryError::Invalid(diags)) => {
            for d in &diags.0 {
                lifeline::errln!("{d}");
            }
            lifeline::errln!(
                "error: {} problem(s) in {}: fix it (its secrets are needed for redaction) or leave -i out",
                diags.0.len(),
                path.display()
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
        Err(e) => {
            lifeline::errln!("error: {e}");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

fn state_dir(cli: &Cli) -> StateDir {
    StateDir::new(cli.state_dir.clone().unwrap_or_else(default_state_dir))
}

fn cmd_note(cli: &Cli, redactor: &Redactor, args: lifeline::export::note::NoteArgs) -> ExitCode {
    if let Err(code) = inventory_secrets(cli, redactor) {
        return code;
    }
    let operator = cli.operator.clone().unwrap_or_else(default_operator);
    match lifeline::export::note::run(
        &args,
        &state_dir(cli),
        &operator,
        redactor,
        chrono::Utc::now(),
    ) {
        Ok(rec) => {
            let at = rec.data.get("at").and_then(|v| v.as_str());
            match at {
                Some(at) => lifeline::outln!("noted: #{} at {}, describing {at}", rec.seq, rec.ts),
                None => lifeline::outln!("noted: #{} at {}", rec.seq, rec.ts),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            lifeline::errln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn cmd_export(cli: &Cli, redactor: &Redactor, args: lifeline::export::ExportArgs) -> ExitCode {
    let inventory = match inventory_secrets(cli, redactor) {
        Ok(i) => i,
        Err(code) => return code,
    };
    match lifeline::export::run(&args, &state_dir(cli), inventory.as_ref(), redactor) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            lifeline::errln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn cmd_console(
    cli: &Cli,
    redactor: Redactor,
    incident: Option<String>,
    probe_interval: u64,
    probe_timeout: u64,
) -> ExitCode {
    let Some(path) = inventory_path(cli) else {
        lifeline::errln!(
            "error: no inventory: pass -i PATH, create ./lifeline.toml, or set LIFELINE_INVENTORY (see README, 'Inventory'); or try 'lifeline lab' for a sandboxed outage"
        );
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

fn cmd_lab(cli: &Cli, redactor: Redactor, command: &Command) -> ExitCode {
    let Command::Lab {
        scenario,
        dir,
        rows,
        ssh,
        headless,
        answers,
        install_deps,
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
    };
    match lifeline::console::lab::cmd_lab(args, redactor) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            lifeline::errln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `lifeline init`: the starter inventory, and what is left to fill in.
fn cmd_init(args: &lifeline::init::InitArgs) -> ExitCode {
    let starter = match lifeline::init::run(args) {
        Ok(s) => s,
        Err(e) => {
            lifeline::errln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let out = args.output.display();
    lifeline::outln!(
        "wrote '{out}' (0600): {} host(s), {} database(s), {} backup catalog(s); no password in it",
        starter.hosts,
        starter.databases,
        starter.catalogs
    );
    for t in &starter.todo {
        lifeline::outln!("fill in: {t}");
    }
    lifeline::outln!(
        "next: check it with 'lifeline check -i {out}', then 'lifeline status -i {out}'"
    );
    ExitCode::SUCCESS
}

/// `lifeline completions SHELL`: the script for SHELL, generated from the CLI.
fn cmd_completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "lifeline", &mut out);
    write_stdout(&out, "the completion script")?;
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(bytes: &[u8], what: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {what} to stdout"))
}

/// `lifeline man [--dir DIR]`: the man pages, generated from the CLI. They
/// are documentation for every user, so written world-readable (umask).
fn cmd_man(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
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
            return Ok(cmd_console(
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
            return Ok(cmd_lab(&cli, redactor, command));
        }
        Command::Completions { shell } => return cmd_completions(*shell),
        Command::Init {
            output,
            force,
            socket_dir,
            hosts,
            look_in,
        } => {
            return Ok(cmd_init(&lifeline::init::InitArgs {
                output: output.clone(),
                force: *force,
                socket_dirs: socket_dir.clone(),
                hosts: hosts.clone(),
                look_in: look_in.clone(),
            }));
        }
        Command::Man { dir } => return cmd_man(dir.as_deref()),
        _ => {}
    }
    lifeline::logging::init_stderr(redactor.clone());
    let operator = cli.operator.clone().unwrap_or_else(default_operator);
    match command {
        Command::Console { .. }
        | Command::Lab { .. }
        | Command::Completions { .. }
        | Command::Init { .. }
        | Command::Man { .. } => Ok(ExitCode::from(EXIT_USAGE)),
        Command::Check { file } => cmd_check(&cli, file.clone()),
        Command::Runbooks => Ok(ExitCode::from(lifeline::headless::cmd_runbooks())),
        Command::Incidents { json } => {
            let rows = lifeline::incidents::list(&state_dir(&cli));
            if *json {
                lifeline::outln!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                lifeline::outln!("{}", lifeline::incidents::render(&rows).trim_end());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            runbook,
            answers,
            dry_run,
            incident,
            resume,
        } => {
            let args = lifeline::headless::RunArgs {
                runbook: runbook.clone(),
                answers: answers.clone(),
                dry_run: *dry_run,
                incident: incident.clone(),
                resume: *resume,
                readonly: cli.readonly,
                inventory: inventory_path(&cli),
                state_dir: cli.state_dir.clone().unwrap_or_else(default_state_dir),
                operator,
            };
            Ok(ExitCode::from(lifeline::headless::cmd_run(args, redactor)))
        }
        Command::Verify { database, json } => Ok(ExitCode::from(lifeline::db::verify::cli(
            inventory_path(&cli).as_deref(),
            database,
            *json,
            &redactor,
        ))),
        Command::Status { json, timeout } => cmd_status(&cli, *json, *timeout, &redactor),
        Command::Backups {
            catalog,
            incident,
            json,
        } => {
            let state = cli.state_dir.clone().unwrap_or_else(default_state_dir);
            let inventory = inventory_path(&cli);
            let args = lifeline::backups::BackupsArgs {
                inventory: inventory.as_deref(),
                state_dir: &state,
                catalog: catalog.as_deref(),
                incident: incident.as_deref(),
                json: *json,
            };
            Ok(ExitCode::from(lifeline::backups::cli(args, &redactor)))
        }
        Command::Journal {
            command:
                JournalCommand::Verify {
                    path,
                    allowed_signers,
                    heads,
                    json,
                },
        } => cmd_journal_verify(&cli, path, allowed_signers.as_deref(), heads, *json),
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
            Ok(cmd_note(&cli, &redactor, args))
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
            Ok(cmd_export(&cli, &redactor, args))
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
