//! The lab: a throwaway PostgreSQL sandbox that reproduces one of the four
//! outages of INCIDENTS.md with its real mechanism, a backup history, an
//! inventory for it, and drill scoring. It only ever damages, stops or
//! removes what it built itself, and a lab whose owner died is cleaned up by
//! the next build.
//!
//! `Lab::build(LabOptions { .. })` returns once the damage is real;
//! `lab.teardown()` (or drop) stops every process it started and removes
//! the directory unless it was given with `dir`.

pub mod archive;
mod data;
pub mod deps;
mod files;
pub mod procs;
pub mod registry;
mod rows;
pub mod score;
pub mod writer;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use archive::{ArchiveKind, LabArchive};
pub use data::{COUNTED, Migration, Sizes, WATCHED, migrations};
pub use files::{BACKUP_PATTERN, CATALOG, DATABASE, HOST, SYNC_INTERVAL_S};
pub use registry::{Cleaned, LabRecord, RECORD_FILE, default_registry};
pub use score::{
    BackupFact, DamageEffects, DrillReport, GroundTruth, LabFacts, Mistake, RowSnapshot,
    TruthScore, score,
};

use crate::sandbox::{PgCluster, PgOptions, SandboxError, Sshd, SshdOptions};
use registry::ClusterRecord;

/// The real name of the lab's application database (case matters).
pub const DB_NAME: &str = "TovPlay";
/// Rows seeded by default: a few thousand.
pub const DEFAULT_ROWS: u64 = 4000;

const WRONG_DATABASE_SQL: &str = include_str!("../../assets/lab/scenarios/wrong-database.sql");
const DROPPED_DATABASE_SQL: &str = include_str!("../../assets/lab/scenarios/dropped-database.sql");
const MIGRATION_RESET_SQL: &str = include_str!("../../assets/lab/scenarios/migration-reset.sql");
const MIGRATION_RESET_SEED_SQL: &str =
    include_str!("../../assets/lab/scenarios/migration-reset-seed.sql");

/// One of the four outages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Incident 1: a sync job dumps an empty local database with --clean
    /// into the real one; a restarter and a watchdog bring it back.
    #[default]
    RogueSync,
    /// Incident 2: `User` emptied; a decoy database `tovplay` still shows 22 users.
    WrongDatabase,
    /// Incident 3: the database dropped while the server stays up.
    DroppedDatabase,
    /// Incident 4: the schema re-created by migrations run from init, plus a
    /// "Legacy Account".
    MigrationReset,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::RogueSync,
        Scenario::WrongDatabase,
        Scenario::DroppedDatabase,
        Scenario::MigrationReset,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::RogueSync => "rogue-sync",
            Scenario::WrongDatabase => "wrong-database",
            Scenario::DroppedDatabase => "dropped-database",
            Scenario::MigrationReset => "migration-reset",
        }
    }

    /// What it reproduces, in one line.
    pub fn summary(self) -> &'static str {
        match self {
            Scenario::RogueSync => {
                "a sync job dumps an empty local database with --clean into the real one every few seconds; a cron-style restarter and a watchdog bring it back (incident 1)"
            }
            Scenario::WrongDatabase => {
                "the User table was emptied at a known time; a decoy database 'tovplay' still shows 22 users (incident 2)"
            }
            Scenario::DroppedDatabase => {
                "the application database was dropped while the server stays up: SQLSTATE 3D000 (incident 3)"
            }
            Scenario::MigrationReset => {
                "a deploy re-ran all 22 migrations from init: empty tables and one 'Legacy Account' (incident 4)"
            }
        }
    }

    /// The shipped runbook a drill of this scenario runs.
    pub fn runbook(self) -> &'static str {
        match self {
            Scenario::RogueSync => "rogue-sync-wipe",
            Scenario::WrongDatabase => "table-wiped",
            Scenario::DroppedDatabase => "database-missing",
            Scenario::MigrationReset => "migration-reset",
        }
    }

    /// The shipped answers file (assets/lab/answers/<scenario>.toml).
    pub fn answers(self) -> &'static str {
        match self {
            Scenario::RogueSync => include_str!("../../assets/lab/answers/rogue-sync.toml"),
            Scenario::WrongDatabase => include_str!("../../assets/lab/answers/wrong-database.toml"),
            Scenario::DroppedDatabase => {
                include_str!("../../assets/lab/answers/dropped-database.toml")
            }
            Scenario::MigrationReset => {
                include_str!("../../assets/lab/answers/migration-reset.toml")
            }
        }
    }
}

impl Scenario {
    /// The shipped answers of the point-in-time recovery runbook
    /// `pitr-restore` for this scenario (assets/lab/answers/<scenario>-pitr.toml).
    pub fn pitr_answers(self) -> &'static str {
        match self {
            Scenario::RogueSync => include_str!("../../assets/lab/answers/rogue-sync-pitr.toml"),
            Scenario::WrongDatabase => {
                include_str!("../../assets/lab/answers/wrong-database-pitr.toml")
            }
            Scenario::DroppedDatabase => {
                include_str!("../../assets/lab/answers/dropped-database-pitr.toml")
            }
            Scenario::MigrationReset => {
                include_str!("../../assets/lab/answers/migration-reset-pitr.toml")
            }
        }
    }
}

/// The point-in-time recovery runbook a lab drill can run instead.
pub const PITR_RUNBOOK: &str = "pitr-restore";

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scenario {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, LabError> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| LabError::UnknownScenario(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "unknown lab scenario '{0}': use rogue-sync, wrong-database, dropped-database or migration-reset"
    )]
    UnknownScenario(String),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("'{tool}' not found in PATH: the lab needs it; install the '{package}' package")]
    NoTool {
        tool: &'static str,
        package: &'static str,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error(
        "lab directory '{0}' is not empty: give a new or empty directory (the lab never removes files it did not create)"
    )]
    DirNotEmpty(PathBuf),
    #[error(
        "'{name}' did not start within {waited_s} s (no live process in '{pidfile}'); see '{log}'"
    )]
    NotStarted {
        name: String,
        pidfile: PathBuf,
        log: PathBuf,
        waited_s: u64,
    },
    #[error(
        "the '{scenario}' damage did not happen within {waited_s} s; last lines of '{log}':\n{tail}"
    )]
    NoDamage {
        scenario: Scenario,
        waited_s: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("lab record '{path}': {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "processes of lab '{id}' still run after teardown: {pids:?}; stop them with 'kill -9' and report this"
    )]
    Lingering { id: String, pids: Vec<u32> },
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Io { what, source }
    }
}

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub scenario: Scenario,
    /// Keep the sandbox in this (new or empty) directory; else a temporary
    /// one, removed at teardown.
    pub dir: Option<PathBuf>,
    /// About this many rows in the application tables (millions are fine:
    /// generated server-side).
    pub rows: u64,
    /// Reach the lab host through a throwaway sshd on loopback.
    pub ssh: bool,
    /// Registry of live labs; default [`default_registry`].
    pub registry: Option<PathBuf>,
    /// The WAL archive the cluster keeps (a directory, or a pgBackRest repository).
    pub archive: ArchiveKind,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            scenario: Scenario::default(),
            dir: None,
            rows: DEFAULT_ROWS,
            ssh: false,
            registry: None,
            archive: ArchiveKind::default(),
        }
    }
}

/// How a backup of the lab's catalog came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupKind {
    /// A complete dump taken before the damage.
    Good,
    /// A dump cut short (disk full): no "dump complete" trailer.
    Truncated,
    /// Taken by the schedule after the damage: it holds the damage.
    AfterDamage,
}

/// One file of the lab's backup catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// File name: `tovplay_external_%Y%m%d_%H%M%S.sql` (UTC).
    pub name: String,
    pub path: PathBuf,
    /// The time in the name (and the file's mtime).
    pub taken_at: DateTime<Utc>,
    pub kind: BackupKind,
    pub size: u64,
    /// Row counts of the database when it was dumped.
    pub counts: BTreeMap<String, i64>,
}

/// A background process the lab started (or the server it runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabProcess {
    /// Inventory service name, `postgres` or `sshd`.
    pub name: String,
    pub pid: u32,
    /// Its process group (the scripts lead their own, set up by setsid).
    pub pgid: Option<u32>,
    pub pidfile: Option<PathBuf>,
    /// Wipes the data or brings back what does.
    pub hazard: bool,
}

/// A built lab. Dropping it tears it down.
#[derive(Debug)]
pub struct Lab {
    pub id: String,
    pub dir: PathBuf,
    /// Given with `dir`: the directory stays after teardown.
    pub kept: bool,
    /// A directory inside `dir` (the drill's state) that teardown keeps
    /// when it removes the rest of a throwaway lab.
    pub keep_state: Option<PathBuf>,
    pub scenario: Scenario,
    pub cluster: PgCluster,
    pub sshd: Option<Sshd>,
    pub inventory_path: PathBuf,
    pub answers_path: PathBuf,
    /// Answers of [`PITR_RUNBOOK`] (`<dir>/answers-pitr.toml`).
    pub pitr_answers_path: PathBuf,
    pub built_at: DateTime<Utc>,
    /// When the damage happened (the drill clock starts here).
    pub damage_at: DateTime<Utc>,
    /// Oldest first.
    pub backups: Vec<BackupInfo>,
    /// The processes the build started, with the pids they had then.
    pub pids: Vec<LabProcess>,
    /// Row counts of `TovPlay` just before the damage.
    pub counts_before: BTreeMap<String, i64>,
    /// OIDs of those tables then (pg_dump --clean re-creates them), and when
    /// they were counted: the console shows them as the round before the damage.
    pub oids_before: BTreeMap<String, u32>,
    pub counts_before_at: DateTime<Utc>,
    pub sizes: Sizes,
    /// The WAL archive and its base backup from before the damage.
    pub archive: Option<LabArchive>,
    /// The application writer's log (ground truth), read once it stopped.
    pub truth: Option<GroundTruth>,
    /// OID of `TovPlay` before the damage.
    pub db_oid: Option<u32>,
    /// Every row of `TovPlay` just before the damage, the writer's left
    /// out (not read for more than [`SNAPSHOT_MAX_ROWS`] rows).
    pub rows_before_damage: Option<RowSnapshot>,
    /// The schema objects of `TovPlay` just before the damage.
    pub schema_before_damage: Option<std::collections::BTreeSet<String>>,
    registry: PathBuf,
    record: LabRecord,
    done: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn new_id() -> String {
    format!(
        "{}-{}-{}",
        Utc::now().format("%Y%m%d%H%M%S"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn check_tools(scenario: Scenario, archive: ArchiveKind) -> Result<(), LabError> {
    crate::sandbox::pg_bin_dir()?;
    if archive == ArchiveKind::Pgbackrest && !in_path("pgbackrest") {
        return Err(LabError::NoTool {
            tool: "pgbackrest",
            package: "pgbackrest",
        });
    }
    if scenario == Scenario::RogueSync {
        for (tool, package) in [("bash", "bash"), ("setsid", "util-linux")] {
            if !in_path(tool) {
                return Err(LabError::NoTool { tool, package });
            }
        }
    }
    Ok(())
}

/// The lab directory: a new temporary one, or `dir` when it is new or empty.
fn prepare_dir(dir: Option<&Path>) -> Result<(PathBuf, bool), LabError> {
    let (path, kept) = match dir {
        None => {
            let t = tempfile::Builder::new()
                .prefix("lifeline-lab-")
                .tempdir()
                .map_err(LabError::io("create a temporary lab directory"))?;
            (t.keep(), false)
        }
        Some(d) => {
            if d.exists() {
                let mut rd = std::fs::read_dir(d).map_err(LabError::io(format!(
                    "read lab directory '{}'",
                    d.display()
                )))?;
                if rd.next().is_some() {
                    return Err(LabError::DirNotEmpty(d.to_path_buf()));
                }
            }
            std::fs::create_dir_all(d).map_err(LabError::io(format!(
                "create lab directory '{}'",
                d.display()
            )))?;
            let abs = std::fs::canonicalize(d)
                .map_err(LabError::io(format!("resolve '{}'", d.display())))?;
            (abs, true)
        }
    };
    // The cluster runs as 'postgres' when we are root: it must reach pg/.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(LabError::io(format!("chmod '{}'", path.display())))?;
    for sub in ["backups", "bin", "run", "log"] {
        std::fs::create_dir_all(path.join(sub)).map_err(LabError::io(format!(
            "create '{}'",
            path.join(sub).display()
        )))?;
    }
    Ok((path, kept))
}

/// One step of the application's history before the damage.
struct Stage {
    /// Share of the final rows that exist by then.
    pct: u64,
    /// How long before the build it happened.
    before: Duration,
    /// The scheduled backup taken at that time.
    backup: Option<BackupKind>,
}

const HOUR: u64 = 3600;

/// Backups at -49 h, -25 h, -6 h (the right one), -2 h (truncated), then the
/// last ten minutes of changes, which any restore loses.
const HISTORY: [Stage; 5] = [
    Stage {
        pct: 70,
        before: Duration::from_secs(49 * HOUR),
        backup: Some(BackupKind::Good),
    },
    Stage {
        pct: 80,
        before: Duration::from_secs(25 * HOUR),
        backup: Some(BackupKind::Good),
    },
    Stage {
        pct: 90,
        before: Duration::from_secs(6 * HOUR),
        backup: Some(BackupKind::Good),
    },
    Stage {
        pct: 95,
        before: Duration::from_secs(2 * HOUR),
        backup: Some(BackupKind::Truncated),
    },
    Stage {
        pct: 100,
        before: Duration::from_secs(600),
        backup: None,
    },
];

/// Above this many seeded rows the lab does not keep a snapshot of every
/// row before the damage (damage effects are then not scored).
pub const SNAPSHOT_MAX_ROWS: u64 = 200_000;

/// Rows the writer commits before the lab goes on.
const WRITER_ROWS: u64 = 20;

/// Longest wait for the rogue sync to wipe production.
const DAMAGE_WAIT: Duration = Duration::from_secs(90);

impl Lab {
    /// Builds the lab: cleans stale labs first, starts the cluster, seeds
    /// the history with its backups, writes the inventory, then does the
    /// damage and returns once it is real. On error everything started so
    /// far is stopped and the directory removed (unless given). Blocking
    /// (seconds; a minute for millions of rows): from async code call it
    /// through `spawn_blocking`.
    pub fn build(opts: LabOptions) -> Result<Lab, LabError> {
        check_tools(opts.scenario, opts.archive)?;
        let registry = opts.registry.clone().unwrap_or_else(default_registry);
        let me = std::process::id();
        let owner_start = procs::start_ticks(me).ok_or_else(|| LabError::Command {
            what: "read this process's start time from /proc/self/stat".into(),
            detail: "the lab needs /proc (Linux)".into(),
        })?;
        let lock = registry::lock(&registry)?;
        for c in registry::clean_stale(&registry)? {
            tracing::info!(
                "cleaned stale lab '{}' ({} processes, dir removed: {})",
                c.id,
                c.killed.len(),
                c.removed_dir
            );
        }
        let (dir, kept) = prepare_dir(opts.dir.as_deref())?;
        let mut record = LabRecord {
            version: 1,
            id: new_id(),
            scenario: opts.scenario,
            dir: dir.clone(),
            kept,
            owner_pid: me,
            owner_start,
            built_at: Utc::now(),
            damage_at: None,
            cluster: None,
            sshd_config: None,
            processes: Vec::new(),
            inventory: None,
            answers: None,
            backups: Vec::new(),
            counts_before: BTreeMap::new(),
            facts: None,
        };
        if let Err(e) = registry::save(&registry, &record) {
            let _ = registry::clean(&record);
            let _ = std::fs::remove_file(registry::entry_path(&registry, &record.id));
            return Err(e);
        }
        drop(lock);

        let cluster = match PgCluster::start_with(PgOptions {
            fsync: true,
            dir: Some(dir.join("pg")),
            settings: archive::settings(),
            ..PgOptions::default()
        }) {
            Ok(c) => c,
            Err(e) => {
                let _ = registry::clean(&record);
                let _ = std::fs::remove_file(registry::entry_path(&registry, &record.id));
                return Err(e.into());
            }
        };
        record.cluster = Some(ClusterRecord {
            data: cluster.data_dir().to_path_buf(),
            port: cluster.port(),
            bin: cluster.bin_dir().to_path_buf(),
        });
        let built_at = record.built_at;
        let mut lab = Lab {
            id: record.id.clone(),
            dir: dir.clone(),
            kept,
            scenario: opts.scenario,
            cluster,
            sshd: None,
            inventory_path: dir.join("lifeline.toml"),
            answers_path: dir.join("answers.toml"),
            pitr_answers_path: dir.join("answers-pitr.toml"),
            built_at,
            damage_at: built_at,
            backups: Vec::new(),
            pids: Vec::new(),
            counts_before: BTreeMap::new(),
            oids_before: BTreeMap::new(),
            counts_before_at: built_at,
            sizes: Sizes::for_rows(opts.rows),
            archive: None,
            truth: None,
            db_oid: None,
            rows_before_damage: None,
            schema_before_damage: None,
            registry,
            record,
            done: false,
            keep_state: None,
        };
        // From here on an error drops `lab`, which tears everything down.
        lab.save()?;
        lab.populate(&opts)?;
        Ok(lab)
    }

    fn save(&mut self) -> Result<(), LabError> {
        self.record.processes = self.pids.clone();
        self.record.backups = self.backups.clone();
        self.record.counts_before = self.counts_before.clone();
        self.record.inventory = Some(self.inventory_path.clone());
        self.record.answers = Some(self.answers_path.clone());
        registry::save(&self.registry, &self.record)
    }

    fn psql(&self, db: &str, sql: &str) -> Result<String, LabError> {
        data::psql(&self.cluster, db, sql, &[])
    }

    fn populate(&mut self, opts: &LabOptions) -> Result<(), LabError> {
        let now = self.built_at;
        // Archiving from the first segment on.
        let mut archive = archive::prepare(&self.dir, opts.archive)?;
        archive::enable(&self.cluster, &archive)?;
        self.cluster.create_db(DB_NAME)?;
        // The inventory's restore_role: restores log in as it (LOGIN only).
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE {} LOGIN",
                crate::restore::quote_ident(files::RESTORE_ROLE)
            ),
        )?;
        self.psql(DB_NAME, &data::migrate_sql("production", true))?;
        let postmaster = postmaster_pid(self.cluster.data_dir()).unwrap_or(0);
        self.pids.push(LabProcess {
            name: "postgres".into(),
            pid: postmaster,
            pgid: procs::pgid(postmaster),
            pidfile: Some(self.cluster.data_dir().join("postmaster.pid")),
            hazard: false,
        });

        let mut prev = data::EMPTY;
        for stage in &HISTORY {
            let at = now - stage.before;
            let s = self.sizes.at(stage.pct);
            data::seed(&self.cluster, DB_NAME, &prev, &s, at)?;
            prev = s;
            if let Some(kind) = stage.backup {
                self.take_backup(at, kind)?;
            }
        }
        match self.scenario {
            Scenario::RogueSync => {
                // The local container came back empty; the app re-ran its migrations.
                self.cluster.create_db("tovplay_local")?;
                self.psql("tovplay_local", &data::migrate_sql("local", false))?;
            }
            Scenario::WrongDatabase => {
                // The dashboard's database: stale since three weeks, 22 users.
                self.cluster.create_db("tovplay")?;
                self.psql("tovplay", &data::migrate_sql("decoy", true))?;
                let stale = now - Duration::from_secs(21 * 24 * HOUR);
                data::seed(
                    &self.cluster,
                    "tovplay",
                    &data::EMPTY,
                    &Sizes::incident_2(),
                    stale,
                )?;
            }
            Scenario::DroppedDatabase | Scenario::MigrationReset => {}
        }
        // The base backup: after the history, before the writer and the damage.
        archive::base_backup(&self.cluster, &mut archive)?;
        self.archive = Some(archive);
        self.db_oid = self
            .psql(
                "postgres",
                &format!("SELECT oid FROM pg_database WHERE datname = '{DB_NAME}'"),
            )?
            .trim()
            .parse()
            .ok();

        // The application keeps writing until the damage; its log is the ground truth.
        let truth_dir = self.dir.join("truth");
        std::fs::create_dir_all(&truth_dir)
            .and_then(|()| {
                std::fs::set_permissions(&truth_dir, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(LabError::io(format!("create '{}'", truth_dir.display())))?;
        let log = truth_dir.join("writer.log");
        let writer = writer::Writer::start(
            &self.cluster.url(DB_NAME),
            self.sizes.users,
            self.sizes.games,
            &log,
        )?;
        writer.wait_for(WRITER_ROWS, Duration::from_secs(30))?;

        let host = self.start_host(opts)?;
        let mut text = files::inventory_text(
            self.scenario,
            &self.dir,
            self.cluster.port(),
            DB_NAME,
            &WATCHED,
            &host,
        );
        if let Some(a) = &self.archive {
            text.push_str(&archive::inventory_entry(a, HOST, DATABASE));
        }
        std::fs::write(&self.inventory_path, text).map_err(LabError::io(format!(
            "write '{}'",
            self.inventory_path.display()
        )))?;
        std::fs::write(&self.answers_path, self.scenario.answers()).map_err(LabError::io(
            format!("write '{}'", self.answers_path.display()),
        ))?;
        std::fs::write(&self.pitr_answers_path, self.scenario.pitr_answers()).map_err(
            LabError::io(format!("write '{}'", self.pitr_answers_path.display())),
        )?;

        // The sync does its damage on its own schedule: the writer runs
        // through it. The other damages are the lab's: the writer stops
        // just before, so the counts below are the last ones.
        let writer = match self.scenario {
            Scenario::RogueSync => Some(writer),
            _ => {
                let (rows, _) = writer.stop()?;
                self.truth = Some(self.ground_truth(&log, rows));
                None
            }
        };
        self.counts_before = data::counts(&self.cluster, DB_NAME)?;
        self.oids_before = data::oids(&self.cluster, DB_NAME)?;
        self.counts_before_at = Utc::now();
        if self.sizes.total() <= SNAPSHOT_MAX_ROWS {
            self.rows_before_damage = Some(self.live_rows_but_writer()?);
        }
        self.schema_before_damage = Some(self.schema_objects()?);
        self.save()?;

        self.damage_at = match self.scenario {
            Scenario::RogueSync => self.start_rogue_sync()?,
            Scenario::WrongDatabase => {
                let at = Utc::now();
                self.psql(DB_NAME, WRONG_DATABASE_SQL)?;
                at
            }
            Scenario::DroppedDatabase => {
                let at = Utc::now();
                self.psql("postgres", DROPPED_DATABASE_SQL)?;
                at
            }
            Scenario::MigrationReset => {
                let at = Utc::now();
                self.psql(DB_NAME, MIGRATION_RESET_SQL)?;
                self.psql(DB_NAME, &data::migrate_sql("deploy", false))?;
                self.psql(DB_NAME, MIGRATION_RESET_SEED_SQL)?;
                at
            }
        };
        if let Some(w) = writer {
            let (rows, _) = w.stop()?;
            self.truth = Some(self.ground_truth(&log, rows));
        }
        if let Some(t) = &mut self.truth {
            t.damage_started = self.damage_at;
        }
        self.record.damage_at = Some(self.damage_at);
        // The schedule keeps running: its next backup holds the damage.
        let after = Utc::now().max(self.damage_at + chrono::Duration::seconds(1));
        self.take_backup(after, BackupKind::AfterDamage)?;
        self.record.facts = Some(self.facts());
        self.save()
    }

    fn ground_truth(&self, log: &Path, rows: Vec<writer::CommittedRow>) -> GroundTruth {
        GroundTruth {
            table: writer::TABLE.to_string(),
            marker: writer::MARKER.to_string(),
            log: log.to_path_buf(),
            rows,
            damage_started: self.damage_at,
        }
    }

    /// The lab host: this machine, or a throwaway sshd on loopback.
    fn start_host(&mut self, opts: &LabOptions) -> Result<files::HostAccess, LabError> {
        if !opts.ssh {
            return Ok(files::HostAccess::Local);
        }
        let sshd = Sshd::start_with(SshdOptions {
            dir: Some(self.dir.join("ssh")),
            ..SshdOptions::default()
        })?;
        let known_hosts = sshd.write_known_hosts()?;
        self.record.sshd_config = Some(sshd.dir().join("sshd_config"));
        let host = files::HostAccess::Ssh {
            port: sshd.port(),
            user: sshd.user().to_string(),
            identity: sshd.user_key().display().to_string(),
            known_hosts: known_hosts.display().to_string(),
        };
        let pidfile = sshd.dir().join("sshd.pid");
        let pid = procs::wait_pidfile(&pidfile, Duration::from_secs(10)).unwrap_or(0);
        self.pids.push(LabProcess {
            name: "sshd".into(),
            pid,
            pgid: procs::pgid(pid),
            pidfile: Some(pidfile),
            hazard: false,
        });
        self.sshd = Some(sshd);
        Ok(host)
    }

    /// Dumps `TovPlay` into the catalog under the name of time `at`.
    fn take_backup(&mut self, at: DateTime<Utc>, kind: BackupKind) -> Result<(), LabError> {
        let name = at.format("tovplay_external_%Y%m%d_%H%M%S.sql").to_string();
        let path = self.dir.join("backups").join(&name);
        let counts = data::counts(&self.cluster, DB_NAME).unwrap_or_default();
        let ok = data::dump(&self.cluster, DB_NAME, &path)?;
        if !ok && kind != BackupKind::AfterDamage {
            return Err(LabError::Command {
                what: format!("pg_dump of '{DB_NAME}' into '{}'", path.display()),
                detail: "pg_dump failed before the damage".into(),
            });
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(LabError::io(format!("open '{}'", path.display())))?;
        if kind == BackupKind::Truncated {
            // Cut mid-data, as a full disk does.
            let len = file
                .metadata()
                .map_err(LabError::io(format!("stat '{}'", path.display())))?
                .len();
            file.set_len(len * 3 / 5)
                .map_err(LabError::io(format!("truncate '{}'", path.display())))?;
        }
        file.set_modified(at.into())
            .map_err(LabError::io(format!("set mtime of '{}'", path.display())))?;
        let size = file
            .metadata()
            .map_err(LabError::io(format!("stat '{}'", path.display())))?
            .len();
        self.backups.push(BackupInfo {
            name,
            path,
            taken_at: at,
            kind,
            size,
            counts,
        });
        Ok(())
    }

    /// Starts the sync, its restarter and its watchdog (each in its own
    /// session) and waits until the sync has wiped production. Returns when
    /// the wipe began.
    fn start_rogue_sync(&mut self) -> Result<DateTime<Utc>, LabError> {
        files::write_scripts(
            &self.dir,
            &self.id,
            &self.cluster.bin("psql"),
            &self.cluster.bin("pg_dump"),
            self.cluster.port(),
        )?;
        for m in &files::MECHANISMS {
            let log_path = self.dir.join("log").join(format!("{}.log", m.script));
            let pidfile = self.dir.join("run").join(format!("{}.pid", m.script));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(LabError::io(format!("open '{}'", log_path.display())))?;
            let err = log
                .try_clone()
                .map_err(LabError::io(format!("open '{}'", log_path.display())))?;
            let status = Command::new("setsid")
                .arg("-f")
                .arg(self.dir.join("bin").join(format!("{}.sh", m.script)))
                .env(procs::MARKER, &self.id)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .status()
                .map_err(LabError::io(format!("start '{}'", m.script)))?;
            let waited = Duration::from_secs(20);
            let pid = status
                .success()
                .then(|| procs::wait_pidfile(&pidfile, waited))
                .flatten()
                .ok_or_else(|| LabError::NotStarted {
                    name: m.service.to_string(),
                    pidfile: pidfile.clone(),
                    log: log_path.clone(),
                    waited_s: waited.as_secs(),
                })?;
            self.pids.push(LabProcess {
                name: m.service.to_string(),
                pid,
                pgid: procs::pgid(pid),
                pidfile: Some(pidfile),
                hazard: true,
            });
            self.save()?;
        }
        let log = self.dir.join("log").join("db_realtime_sync.log");
        let deadline = Instant::now() + DAMAGE_WAIT;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(" sync done:")
                && data::counts(&self.cluster, DB_NAME)
                    .ok()
                    .and_then(|c| c.get("User").copied())
                    == Some(0)
            {
                let began = text
                    .lines()
                    .find(|l| l.contains(" mismatch "))
                    .and_then(|l| l.split_whitespace().next())
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(Utc::now);
                return Ok(began);
            }
            if Instant::now() > deadline {
                return Err(LabError::NoDamage {
                    scenario: self.scenario,
                    waited_s: DAMAGE_WAIT.as_secs(),
                    tail: text
                        .lines()
                        .rev()
                        .take(10)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n"),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The newest intact backup taken before the damage.
    pub fn right_backup(&self) -> Option<&BackupInfo> {
        self.backups
            .iter()
            .filter(|b| b.kind == BackupKind::Good && b.taken_at < self.damage_at)
            .max_by_key(|b| b.taken_at)
    }

    /// Inventory names of the hazard services.
    pub fn hazards(&self) -> Vec<String> {
        self.pids
            .iter()
            .filter(|p| p.hazard)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Real names of the databases a careless operator would pick.
    pub fn decoys(&self) -> Vec<String> {
        match self.scenario {
            Scenario::RogueSync => vec!["tovplay_local".into()],
            Scenario::WrongDatabase => vec!["tovplay".into()],
            Scenario::DroppedDatabase | Scenario::MigrationReset => Vec::new(),
        }
    }

    /// The answer key for drill scoring.
    /// The lab's own sample of `TovPlay` just before the damage (counts and
    /// OIDs it measured, the database's OID and the server's system
    /// identifier): what a watching console would have recorded. Written
    /// into a drill's incident first, so a database the damage dropped is
    /// still known by its OID (recover-pitr names it in the WAL by that).
    pub fn sample_before_damage(&self) -> Result<crate::samples::Sample, LabError> {
        let system = self
            .psql(
                "postgres",
                "SELECT system_identifier FROM pg_control_system()",
            )?
            .trim()
            .to_string();
        let tables = self
            .counts_before
            .iter()
            .map(|(name, rows)| crate::samples::TableCount {
                schema: "public".into(),
                name: name.clone(),
                oid: self.oids_before.get(name).copied().unwrap_or(0),
                rows: *rows,
                exact: true,
            })
            .collect();
        Ok(crate::samples::Sample {
            ts: self.counts_before_at,
            database: "main".into(),
            identity: crate::engine::types::DbIdentity {
                server: format!("127.0.0.1:{}", self.cluster.port()),
                system_identifier: system,
                database: DB_NAME.into(),
                oid: self.db_oid,
                ..Default::default()
            },
            tables,
        })
    }

    pub fn facts(&self) -> LabFacts {
        LabFacts {
            scenario: self.scenario,
            damage_at: self.damage_at,
            database: DATABASE.to_string(),
            db_name: DB_NAME.to_string(),
            backups: self
                .backups
                .iter()
                .map(|b| BackupFact {
                    name: b.name.clone(),
                    taken_at: b.taken_at,
                    kind: b.kind,
                })
                .collect(),
            right_backup: self
                .right_backup()
                .map(|b| b.name.clone())
                .unwrap_or_default(),
            hazards: self.hazards(),
            decoys: self.decoys(),
            counts_before: self.counts_before.clone(),
            truth: self.truth.clone(),
            db_oid: self.db_oid,
        }
    }

    /// The record written to `<dir>/lab.json`.
    pub fn record(&self) -> &LabRecord {
        &self.record
    }

    /// `postgres://postgres@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        self.cluster.url(db)
    }

    /// The lab's processes as they are now: pidfiles re-read (a restarter
    /// may have started a new sync); those not running are left out.
    pub fn live_processes(&self) -> Vec<LabProcess> {
        self.pids
            .iter()
            .filter_map(|p| {
                let pid = match &p.pidfile {
                    Some(f) if p.name == "postgres" => postmaster_pid(self.cluster.data_dir())
                        .filter(|&pid| procs::alive(pid))
                        .or_else(|| procs::live_pid_in(f)),
                    Some(f) => procs::live_pid_in(f),
                    None => procs::alive(p.pid).then_some(p.pid),
                }?;
                Some(LabProcess {
                    pid,
                    pgid: procs::pgid(pid),
                    ..p.clone()
                })
            })
            .collect()
    }

    /// Stops every process the lab started (process groups included), stops
    /// the cluster, removes the directory unless kept, and leaves the
    /// registry. Errors when a process survives.
    pub fn teardown(mut self) -> Result<(), LabError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LabError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let patterns = self.record.patterns();
        // The scripts first (a watchdog would restart the others), then the servers.
        procs::kill_all(&self.id, &patterns[..1], Duration::from_secs(10));
        // A kept cluster shuts down cleanly; a throwaway one skips the
        // shutdown checkpoint (seconds of fsync) as it is removed anyway.
        let stopped = self.kept && self.cluster.stop().is_ok();
        if !stopped && let Some(c) = &self.record.cluster {
            registry::stop_cluster(c);
        }
        if let Some(mut s) = self.sshd.take() {
            s.kill();
        }
        let left = procs::kill_all(&self.id, &patterns, Duration::from_secs(10));
        if !left.is_empty() {
            return Err(LabError::Lingering {
                id: self.id.clone(),
                pids: left,
            });
        }
        if !self.kept && self.dir.exists() {
            let keep = self
                .keep_state
                .as_deref()
                .filter(|k| k.parent() == Some(self.dir.as_path()) && k.exists());
            match keep {
                // Everything but the drill's state goes.
                Some(k) => {
                    let entries = std::fs::read_dir(&self.dir)
                        .map_err(LabError::io(format!("read '{}'", self.dir.display())))?;
                    for e in entries {
                        let e =
                            e.map_err(LabError::io(format!("read '{}'", self.dir.display())))?;
                        let p = e.path();
                        if p == k {
                            continue;
                        }
                        let r = if e.file_type().is_ok_and(|t| t.is_dir()) {
                            std::fs::remove_dir_all(&p)
                        } else {
                            std::fs::remove_file(&p)
                        };
                        r.map_err(LabError::io(format!("remove '{}'", p.display())))?;
                    }
                }
                None => std::fs::remove_dir_all(&self.dir)
                    .map_err(LabError::io(format!("remove '{}'", self.dir.display())))?,
            }
        }
        let _ = std::fs::remove_file(registry::entry_path(&self.registry, &self.id));
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("lab teardown: {e}");
        }
    }
}

/// The postmaster's pid from `postmaster.pid`.
fn postmaster_pid(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Cleans every lab in `registry` (default [`default_registry`]) whose
/// owner process is gone; `Lab::build` does this first.
pub fn clean_stale_labs(registry: Option<&Path>) -> Result<Vec<Cleaned>, LabError> {
    let registry = registry
        .map(Path::to_path_buf)
        .unwrap_or_else(default_registry);
    let _lock = registry::lock(&registry)?;
    registry::clean_stale(&registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip_and_unknown_names_say_what_to_use() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>().unwrap(), s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.name())
            );
            // The shipped answers are a real answers file for the scenario's runbook.
            let rb = crate::runbook::find(s.runbook(), None).unwrap();
            let a = crate::engine::Answers::parse(s.answers(), s.name(), &rb).unwrap();
            // wrong-database merges "User" back (typed phrase); the others swap.
            let (key, want) = match s {
                Scenario::WrongDatabase => ("merge", "merge public.User into TovPlay"),
                _ => ("swap", "TovPlay"),
            };
            assert_eq!(a.confirm.get(key).map(String::as_str), Some(want), "{s}");
            assert_eq!(a.params.get("db").map(String::as_str), Some("main"));
        }
        for s in Scenario::ALL {
            let rb = crate::runbook::find(PITR_RUNBOOK, None).unwrap();
            let a = crate::engine::Answers::parse(s.pitr_answers(), s.name(), &rb)
                .unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(a.params.get("db").map(String::as_str), Some("main"));
            for step in ["restore", "owners", "swap", "start"] {
                assert_eq!(
                    a.confirm.get(step).map(String::as_str),
                    Some("TovPlay"),
                    "{s}"
                );
            }
        }
        let e = "rogue".parse::<Scenario>().unwrap_err().to_string();
        assert!(e.contains("'rogue'") && e.contains("wrong-database"), "{e}");
        assert_eq!(Scenario::default(), Scenario::RogueSync);
    }

    #[test]
    fn history_ends_with_a_truncated_backup_then_unbacked_changes() {
        let kinds: Vec<_> = HISTORY.iter().map(|s| s.backup).collect();
        assert_eq!(
            kinds,
            [
                Some(BackupKind::Good),
                Some(BackupKind::Good),
                Some(BackupKind::Good),
                Some(BackupKind::Truncated),
                None
            ]
        );
        assert!(
            HISTORY
                .windows(2)
                .all(|w| w[0].before > w[1].before && w[0].pct < w[1].pct)
        );
        assert_eq!(HISTORY[4].pct, 100);
    }

    #[test]
    fn a_given_directory_must_be_new_or_empty() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
        let e = prepare_dir(Some(d.path())).unwrap_err();
        assert!(matches!(e, LabError::DirNotEmpty(_)), "{e}");
        assert!(d.path().join("notes.txt").exists());
        let (p, kept) = prepare_dir(Some(&d.path().join("new"))).unwrap();
        assert!(kept && p.join("backups").is_dir() && p.is_absolute());
    }
}
