//! The command line as clap reads it: global options and one variant per
//! subcommand (completions and man pages are generated from these). No
//! behaviour here: each subcommand's work is in its own file beside this.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lifeline",
    version,
    about = "Console for PostgreSQL data-loss outages: see what writes, stop it for good, restore beside the live database, verify, swap; every step journaled."
)]
pub struct Cli {
    /// Inventory file (default ./lifeline.toml, else $LIFELINE_INVENTORY).
    #[arg(short = 'i', long, global = true, value_name = "PATH")]
    pub inventory: Option<PathBuf>,
    /// Where incidents are kept (default $XDG_STATE_HOME/lifeline or ~/.local/state/lifeline).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Who is at the keyboard, recorded in every journal line (default $LIFELINE_OPERATOR, else $USER).
    #[arg(long, global = true, value_name = "NAME")]
    pub operator: Option<String>,
    /// Probes only: every action is refused.
    #[arg(long, global = true)]
    pub readonly: bool,
    /// Print only errors and the final result (no progress, no step lines).
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More tracing on stderr: -v info, -vv debug, -vvv trace (overrides RUST_LOG).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
        /// The runbook --headless runs (default: the scenario's), e.g. pitr-restore.
        #[arg(long, value_name = "NAME", requires = "headless")]
        runbook: Option<String>,
        /// Archive WAL into a real pgBackRest repository (stanza 'lab') instead of a directory.
        #[arg(long)]
        pgbackrest: bool,
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
pub enum JournalCommand {
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
