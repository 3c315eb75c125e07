//! The data the engine hands to actions (fully resolved requests) and gets
//! back (typed outcomes). Pure data: nothing here performs I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::inventory::{
    ArchiveSpec, CatalogSpec, DatabaseSpec, HostSpec, PgUrl, ServiceKind, ServiceSpec,
};

/// Seconds a process group gets between TERM and KILL (stop-services).
pub const STOP_GRACE_S: u64 = 10;
/// Start of the comment of a restore target that is not (yet) a whole restore.
pub const MARK_INCOMPLETE: &str = "lifeline: restore INCOMPLETE";
/// Start of the comment of a restore target whose restore finished.
pub const MARK_COMPLETE: &str = "lifeline: restore complete";

/// One end of the damage window: a backup (or sample) and its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub what: String,
    pub at: DateTime<Utc>,
}

/// Between the last healthy evidence and the first damaged one after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamageWindow {
    pub after: Option<Seen>,
    pub before: Option<Seen>,
    /// A better guess inside the window, and how it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likely: Option<Seen>,
}

impl DamageWindow {
    /// `damaged between A and B, most likely C (table files re-created)`.
    pub fn describe(&self) -> String {
        let t = |s: &Seen| s.at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        let mut m = match (&self.after, &self.before) {
            (Some(a), Some(b)) => format!(
                "damaged between {} ({}) and {} ({})",
                t(a),
                a.what,
                t(b),
                b.what
            ),
            (Some(a), None) => format!("damaged after {} ({})", t(a), a.what),
            (None, Some(b)) => format!("damaged before {} ({})", t(b), b.what),
            (None, None) => "no evidence of when the damage happened".into(),
        };
        if let Some(c) = &self.likely {
            m.push_str(&format!(", most likely {} ({})", t(c), c.what));
        }
        m
    }
}

/// A database as the inventory names it, resolved to where it is.
#[derive(Debug, Clone)]
pub struct DbTarget {
    /// Inventory name.
    pub name: String,
    pub url: PgUrl,
    pub spec: DatabaseSpec,
}

impl DbTarget {
    /// `host:port/dbname`.
    pub fn display(&self) -> String {
        self.url.display_target()
    }
    /// The database name on the server (what the operator types to confirm).
    pub fn dbname(&self) -> &str {
        &self.url.dbname
    }
    /// `host:port` of the server.
    pub fn server(&self) -> String {
        let t = self.url.display_target();
        match t.rsplit_once('/') {
            Some((s, _)) => s.to_string(),
            None => t,
        }
    }
}

/// A host as the inventory names it.
#[derive(Debug, Clone)]
pub struct HostTarget {
    pub name: String,
    pub spec: HostSpec,
}

impl HostTarget {
    pub fn is_local(&self) -> bool {
        self.spec.transport == crate::inventory::TransportKind::Local
    }
    pub fn display(&self) -> String {
        match self.spec.address.as_ref() {
            Some(a) => format!("{} ({})", self.name, a.get_ref()),
            None => format!("{} (local)", self.name),
        }
    }
}

/// Who a database is (principle 3): the one identity type. Sampled every
/// round (samples.jsonl, the timeline's `identity-changed` records), shown
/// by status and verify, and re-read right before a destructive step and
/// compared with what the operator confirmed. Reads the older on-disk
/// names too (see [`DbIdentityWire`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(from = "DbIdentityWire")]
pub struct DbIdentity {
    /// `host:port` of the server.
    pub server: String,
    /// `pg_control_system().system_identifier`, as text (a u64 does not fit
    /// a JSON double).
    pub system_identifier: String,
    /// Database name on the server.
    pub database: String,
    /// `pg_database.oid`; None when no database of that name exists.
    pub oid: Option<u32>,
    /// `pg_postmaster_start_time()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_started_at: Option<DateTime<Utc>>,
}

/// What older lifeline versions wrote for an identity, read into
/// [`DbIdentity`]: samples.jsonl lines and the timeline's journal records
/// carried `address` (`host:port/dbname`), `database_oid` (0: unknown) and
/// `postmaster_start`.
#[derive(Deserialize)]
struct DbIdentityWire {
    #[serde(default)]
    server: Option<String>,
    /// Old: `host:port/dbname`.
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    system_identifier: String,
    #[serde(default)]
    database: String,
    #[serde(default, alias = "database_oid")]
    oid: Option<u32>,
    #[serde(default, alias = "postmaster_start")]
    server_started_at: Option<DateTime<Utc>>,
}

impl From<DbIdentityWire> for DbIdentity {
    fn from(w: DbIdentityWire) -> DbIdentity {
        // An old `address` ends in "/dbname": the server is what precedes it.
        let server = match (w.server, w.address) {
            (Some(s), _) => s,
            (None, Some(a)) => match a.strip_suffix(&format!("/{}", w.database)) {
                Some(s) => s.to_string(),
                None => a,
            },
            (None, None) => String::new(),
        };
        DbIdentity {
            server,
            system_identifier: w.system_identifier,
            database: w.database,
            // OID 0 is no database (the old "unknown").
            oid: w.oid.filter(|o| *o != 0),
            server_started_at: w.server_started_at,
        }
    }
}

/// What changed between two identities of "the same" database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityChange {
    /// Another cluster answers at this address (different system identifier).
    DifferentCluster,
    /// The database was dropped and created again (new OID, same name).
    DatabaseRecreated,
    /// The server restarted (new postmaster start time).
    Restarted,
}

impl IdentityChange {
    pub fn describe(self) -> &'static str {
        match self {
            IdentityChange::DifferentCluster => {
                "a different cluster answers at this address (system identifier changed)"
            }
            IdentityChange::DatabaseRecreated => "the database was re-created (same name, new OID)",
            IdentityChange::Restarted => "the server restarted (new start time)",
        }
    }
}

impl DbIdentity {
    /// Same server, same database object (a renamed or recreated database differs).
    pub fn same_as(&self, other: &DbIdentity) -> bool {
        self.system_identifier == other.system_identifier
            && self.database == other.database
            && self.oid == other.oid
    }
    /// The most significant difference from `before`, if any.
    pub fn change_from(&self, before: &DbIdentity) -> Option<IdentityChange> {
        if self.system_identifier != before.system_identifier {
            Some(IdentityChange::DifferentCluster)
        } else if self.oid != before.oid {
            Some(IdentityChange::DatabaseRecreated)
        } else if self.server_started_at != before.server_started_at {
            Some(IdentityChange::Restarted)
        } else {
            None
        }
    }
    /// `host:port/dbname` (empty when nothing was read).
    pub fn address(&self) -> String {
        if self.server.is_empty() {
            String::new()
        } else {
            format!("{}/{}", self.server, self.database)
        }
    }
    pub fn describe(&self) -> String {
        match self.oid {
            Some(oid) => format!(
                "{}/{} (system {}, OID {oid})",
                self.server, self.database, self.system_identifier
            ),
            None => format!(
                "{}/{} (absent; system {})",
                self.server, self.database, self.system_identifier
            ),
        }
    }
}

/// Look at a host and/or a database: services, hazards, identity, counts.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub host: Option<HostTarget>,
    pub database: Option<DbTarget>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeOutcome {
    /// One line for the operator.
    pub summary: String,
    /// Whatever the probe found, journaled as `data.found`.
    pub found: Value,
}

/// Stop every writer of a database for good, then hold.
#[derive(Debug, Clone)]
pub struct StopRequest {
    pub database: Option<DbTarget>,
    /// Hosts to stop on (the step's `host`, else the hosts of `services`
    /// and of the database); discovery on them may find more writers.
    pub hosts: Vec<HostTarget>,
    /// Services named by the step plus the inventory services that write to `database`.
    pub services: Vec<ServiceSpec>,
    /// Seconds to keep re-probing after stopping.
    pub hold_s: u64,
}

/// One service stopped, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoppedService {
    pub name: String,
    pub host: String,
    pub kind: ServiceKind,
    /// The exact commands run (stop, disable, mask; sed on a cron file; docker stop; kill).
    pub commands: Vec<String>,
    /// For cron: where the original file was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_kept: Option<String>,
    /// For cron: the kept copy's inode and SHA-256 when it was written;
    /// start-services uses the copy only when both still match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_inode: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_sha256: Option<String>,
    /// Discovered as a hazard (pg_dump --clean elsewhere, auto-restore, `down -v`, ...).
    #[serde(default)]
    pub hazard: bool,
    /// For cron: the line commented out, as data (start-services reads this,
    /// never the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_line: Option<CronLine>,
}

/// One cron job line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronLine {
    /// The file, or `crontab -l -u USER` for a user crontab.
    pub file: String,
    pub line: usize,
}

impl StoppedService {
    /// The cron line this stop commented out: the typed record; for a
    /// record journaled before it existed (a resumed older run), the
    /// `file:line` its name was written as.
    pub fn cron_at(&self) -> Option<(String, usize)> {
        if let Some(c) = &self.cron_line {
            return Some((c.file.clone(), c.line));
        }
        let (f, l) = self.name.rsplit_once(':')?;
        let n: usize = l.parse().ok()?;
        (n > 0).then(|| (f.to_string(), n))
    }

    /// The commands that undo the stop of a unit (unmask, enable, start
    /// what was masked, disabled, stopped) or a container (`TOOL start`).
    /// Empty for cron lines and processes: start-services builds those
    /// from the kept copy and the inventory's start command.
    pub fn undo_commands(&self) -> Vec<String> {
        match self.kind {
            ServiceKind::Systemd | ServiceKind::Timer => {
                let mut v = Vec::new();
                for (stop, start) in [("mask", "unmask"), ("disable", "enable"), ("stop", "start")]
                {
                    for c in &self.commands {
                        if let Some(u) = c.strip_prefix(&format!("systemctl {stop} ")) {
                            v.push(format!("systemctl {start} {u}"));
                        }
                    }
                }
                v
            }
            ServiceKind::Container => self
                .commands
                .iter()
                .filter_map(|c| {
                    let (tool, rest) = c.split_once(' ')?;
                    let name = rest.strip_prefix("stop ")?;
                    Some(format!("{tool} start {name}"))
                })
                .collect(),
            ServiceKind::Cron | ServiceKind::Process => Vec::new(),
        }
    }
}

/// Something that was active at the end of the hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActiveService {
    pub name: String,
    pub host: String,
    pub kind: ServiceKind,
    /// What was seen: "active (running) since ...", "cron line back in /etc/cron.d/x", "pid 4242".
    pub detail: String,
}

/// A session that could still write, from `pg_stat_activity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteSession {
    pub pid: i32,
    pub usename: Option<String>,
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    pub backend_start: Option<DateTime<Utc>>,
    pub state: Option<String>,
    /// The current or last statement (redacted when journaled).
    pub query: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopOutcome {
    pub stopped: Vec<StoppedService>,
    /// How long the hold re-probed, in seconds.
    pub held_s: u64,
    /// Services active again (or never stopped) at the end of the hold.
    pub still_active: Vec<ActiveService>,
    /// Sessions on the database that could still write, at the end of the hold.
    pub write_sessions: Vec<WriteSession>,
    /// Rows inserted+updated+deleted per table during the hold (`pg_stat_user_tables`).
    #[serde(default)]
    pub table_writes: BTreeMap<String, i64>,
    /// The plan shown before anything was frozen: what was stopped and what
    /// was left alone, each with why.
    #[serde(default)]
    pub plan: Vec<PlanEntry>,
}

/// Changes to stop-services' plan, from the answers file's `[stop_plan]`.
/// A selector is `NAME` (an item's or discovered service's name, or an
/// inventory service), `pid:N` or `unit:NAME`. `remove` leaves planned
/// items alone; `add` stops what the plan left (e.g. "target unclear").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopPlanEdits {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// One line of a stop plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// `stop` or `leave`.
    pub action: String,
    pub name: String,
    pub host: String,
    pub why: String,
}

impl StopOutcome {
    /// The writers are proven stopped: nothing came back, nobody writes.
    pub fn hold_passed(&self) -> bool {
        self.still_active.is_empty()
            && self.write_sessions.is_empty()
            && self.table_writes.values().all(|n| *n == 0)
    }
}

#[derive(Debug, Clone)]
pub struct SnapshotRequest {
    pub database: DbTarget,
    /// Where the dump goes (under the incident directory).
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotOutcome {
    /// None when the database is absent (nothing to lose).
    pub path: Option<String>,
    pub size: u64,
    pub sha256: Option<String>,
    /// Server database name.
    pub dbname: String,
    pub command: String,
    #[serde(default)]
    pub absent: bool,
}

#[derive(Debug, Clone)]
pub struct PickRequest {
    pub catalog: CatalogSpec,
    pub host: HostTarget,
    pub database: Option<DbTarget>,
    /// The incident time (given, or the first journaled row-count drop);
    /// None: from the evidence (the backups' content).
    pub incident_at: Option<DateTime<Utc>>,
    /// The incident's directory: its samples are history, the state
    /// directory above it holds the scan cache.
    pub incident_dir: Option<std::path::PathBuf>,
}

/// One backup of a catalog, judged against the incident time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupCandidate {
    pub name: String,
    pub path: String,
    pub taken_at: Option<DateTime<Utc>>,
    /// Where `taken_at` came from: "name", "header" or "mtime".
    pub time_source: String,
    pub size: u64,
    pub sha256: Option<String>,
    /// Changes lost if restored, in seconds (incident time - taken_at).
    pub rpo_s: Option<i64>,
    /// Why it is not eligible: "after the incident", "truncated", ...
    pub excluded: Option<String>,
    /// The content label (`healthy`, `damaged`, ...) and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_why: Option<String>,
    /// Rows per table the content scan counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<BTreeMap<String, u64>>,
}

/// The backup pick-backup chose, as the restore must find it: the restore
/// hashes the bytes it reads and refuses when they are not these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickedBackup {
    pub name: String,
    /// The path in its catalog, as the restore step is given it.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the file (of a directory archive: of its files' hashes,
    /// in name order), computed on its host; None when it could not be read.
    pub sha256: Option<String>,
    pub taken_at: Option<DateTime<Utc>>,
    /// Where it was picked: `catalog 'NAME' on host 'HOST'` (empty in
    /// journals written before it was recorded).
    #[serde(default)]
    pub source: String,
}

impl PickedBackup {
    pub fn from_candidate(c: &BackupCandidate, source: String) -> PickedBackup {
        PickedBackup {
            name: c.name.clone(),
            path: c.path.clone(),
            size: c.size,
            sha256: c.sha256.clone(),
            taken_at: c.taken_at,
            source,
        }
    }
}

/// The operator's choice of another pick-backup candidate than the one
/// preselected (console key or the answers file's `[pick]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupChoice {
    /// The candidate's name (file name) or its path in the catalog.
    pub name: String,
    /// Why the operator chose it (journaled; required).
    pub reason: String,
    /// The candidate's name typed again: required for a suspect one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed: Option<String>,
    /// Where the choice came from: `console`, or `answers file F:L:C`.
    pub source: String,
}

/// Why a candidate asks for a typed confirmation before it is chosen
/// (None: it does not): content not labelled healthy, a time from the
/// file's mtime only, or no checksum.
pub fn suspect_reason(c: &BackupCandidate) -> Option<String> {
    let mut why = Vec::new();
    match c.label.as_deref() {
        Some("healthy") => {}
        Some(l) => why.push(format!("its content is labelled '{l}'")),
        None => why.push("its content was not judged".to_string()),
    }
    if c.time_source == "mtime" {
        why.push("its time is the file's mtime only".into());
    }
    if c.sha256.is_none() {
        why.push("its checksum could not be computed".into());
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// One eligible candidate as a confirmation lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibleBackup {
    pub name: String,
    /// Why choosing it asks for its name typed (see [`suspect_reason`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<String>,
}

/// The backup a restore will read, shown with its typed confirmation: the
/// pick's preselection or the operator's choice, and what it loses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupAtStake {
    /// The pick-backup step it comes from.
    pub pick_step: String,
    pub name: String,
    pub path: String,
    pub taken_at: Option<DateTime<Utc>>,
    pub time_source: String,
    /// Changes lost, in seconds (incident time - taken_at).
    pub rpo_s: Option<i64>,
    /// Rows per table the pick's baseline holds and this backup does not.
    #[serde(default)]
    pub rows_lost: BTreeMap<String, u64>,
    /// The backup's rows per table were counted (else the loss is unknown).
    #[serde(default)]
    pub rows_known: bool,
    pub label: Option<String>,
    /// The pick's preselection (the same as `name` unless chosen).
    pub preselected: String,
    /// The operator's reason, when they chose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every candidate the operator may choose instead.
    #[serde(default)]
    pub eligible: Vec<EligibleBackup>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PickOutcome {
    /// What the restore is held to (journaled as the outcome's `backup`).
    pub picked: PickedBackup,
    pub chosen: BackupCandidate,
    pub candidates: Vec<BackupCandidate>,
    pub incident_at: DateTime<Utc>,
    pub rpo_s: i64,
    /// The healthy baseline (`schema.name` -> rows) verify compares the
    /// restored tables with: the chosen backup's scanned counts and the
    /// timeline's exact counts.
    #[serde(default)]
    pub baseline: BTreeMap<String, u64>,
    #[serde(default)]
    pub baseline_source: String,
    /// The damage window derived from the evidence, in words and as data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DamageWindow>,
    /// Corrections the evidence forced (e.g. an incident time too late).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The live database's tables: OID, data file time, counters.
    #[serde(default)]
    pub live_evidence: Value,
}

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The live database the restore goes beside.
    pub database: DbTarget,
    /// `<dbname>__restore_<UTC stamp>`, on the same server.
    pub target_db: String,
    pub catalog: CatalogSpec,
    pub host: HostTarget,
    pub backup_path: String,
    pub jobs: u32,
    /// Who the restore sessions log in as.
    pub restore_as: RestoreAs,
    /// The earlier pick-backup's choice when `backup_path` is its path: the
    /// restore refuses a stream whose SHA-256 differs.
    pub picked: Option<PickedBackup>,
}

/// The role a restore's sessions log in as (never SET ROLE: a dump can RESET it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreAs {
    /// The inventory's `restore_role`: owns the target, nothing else.
    /// `create`: the operator typed the phrase that lets lifeline create
    /// it when it does not exist.
    Role {
        name: String,
        password_env: Option<String>,
        create: bool,
    },
    /// No `restore_role`: the admin connection's user, confirmed by typing
    /// `<db> as superuser` (journaled).
    Admin,
}

impl RestoreAs {
    /// The confirmation that lets the restore create a missing restore role.
    pub fn create_phrase(dbname: &str, role: &str) -> String {
        format!("{dbname} create role {role}")
    }
    /// The confirmation of a restore without a restore role.
    pub fn admin_phrase(dbname: &str) -> String {
        format!("{dbname} as superuser")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreManifest {
    pub tables: BTreeMap<String, i64>,
    pub statements: u64,
    pub duration_ms: u64,
    pub sha256: String,
    pub bytes: u64,
    /// `ALTER ... OWNER TO` the restore role skipped (`--no-owner`).
    #[serde(default)]
    pub owners_skipped: Vec<OwnerChange>,
    /// The role the sessions logged in as.
    #[serde(default)]
    pub restored_as: String,
    /// Owner the live database had (the target's owner after `reapply-owners`).
    #[serde(default)]
    pub database_owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreOutcome {
    pub target_db: String,
    pub manifest: RestoreManifest,
}

/// recover-pitr: the database's cluster recovered from an archive beside
/// the live one, to just before the destructive transaction found in the
/// archived WAL; the recovered database dumped for the restore step.
#[derive(Debug, Clone)]
pub struct PitrRequest {
    /// The live database (its OID now names it in the WAL; never written to).
    pub database: DbTarget,
    pub archive: ArchiveSpec,
    /// The archive's host (recovery runs there).
    pub host: HostTarget,
    /// Destructive transactions that committed before this are not the damage.
    pub healthy_at: Option<DateTime<Utc>>,
    /// `healthy_at = "evidence"`: the bound comes from the incident's
    /// timeline samples (the last one meeting the inventory's `expect`).
    pub healthy_from_evidence: bool,
    /// The destructive transaction found must have committed by then.
    pub damaged_at: Option<DateTime<Utc>>,
    /// Name of the new directory under the archive's recovery_dir.
    pub name: String,
    /// The incident's directory: its samples name the database (OID) when it is gone.
    pub incident_dir: Option<PathBuf>,
    /// A target the operator moved away from the one found in the WAL.
    pub moved: Option<MovedTarget>,
}

/// A recovery target the operator gives instead of the one found in the
/// WAL: a WAL position (`lsn:0/3001558`) or a time (`time:` + RFC 3339, or
/// the time alone). It needs a typed phrase naming it; a target later than
/// the destructive transaction's commit needs the phrase that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedTarget {
    pub target: crate::pitr::Target,
    /// As written in the answers / the parameter.
    pub given: String,
    /// The operator typed the phrase that accepts a target after the damage.
    pub past_damage: bool,
}

impl MovedTarget {
    pub fn parse(s: &str) -> Result<MovedTarget, String> {
        let v = s.trim();
        let bad = || {
            format!(
                "target '{v}' is not a recovery target: write 'lsn:0/3001558' (stop just before that WAL record) or 'time:2026-11-23T12:42:00Z' (stop before that time)"
            )
        };
        let target = if let Some(l) = v.strip_prefix("lsn:") {
            crate::pitr::Target::Lsn {
                lsn: crate::pitr::Lsn::parse(l).ok_or_else(bad)?,
            }
        } else {
            let t = v.strip_prefix("time:").unwrap_or(v);
            crate::pitr::Target::Time {
                at: DateTime::parse_from_rfc3339(t.trim())
                    .map_err(|_| bad())?
                    .with_timezone(&Utc),
            }
        };
        Ok(MovedTarget {
            target,
            given: v.to_string(),
            past_damage: false,
        })
    }

    /// `lsn 0/3001558`, `time 2026-11-23T12:42:00+00:00`: how the phrase names it.
    pub fn name(&self) -> String {
        match &self.target {
            crate::pitr::Target::Lsn { lsn } => format!("lsn {lsn}"),
            crate::pitr::Target::Time { at } => format!("time {}", at.to_rfc3339()),
            crate::pitr::Target::Xid { xid, .. } => format!("xid {xid}"),
        }
    }
}

impl PitrRequest {
    /// The phrase that confirms a moved target (None: the target found in the WAL, no phrase).
    pub fn phrase(&self) -> Option<String> {
        let m = self.moved.as_ref()?;
        Some(format!(
            "recover {} to {}",
            self.database.dbname(),
            m.name()
        ))
    }
    /// The phrase that also accepts a target after the destructive transaction's commit.
    pub fn past_phrase(&self) -> Option<String> {
        self.phrase().map(|p| format!("{p} after the damage"))
    }
}

/// choose-path: which way back this run takes, decided before anything starts.
#[derive(Debug, Clone)]
pub struct ChoosePathRequest {
    /// The damaged database (its OID names it in the WAL; never written to).
    pub database: DbTarget,
    /// The archive covering it and the host holding it; Err: why there is none.
    pub archive: Result<(ArchiveSpec, HostTarget), String>,
    /// The incident time: destructive transactions before it are not the damage.
    pub incident_at: Option<DateTime<Utc>>,
    /// `incident_at = "evidence"`: the bound comes from the timeline samples.
    pub incident_from_evidence: bool,
    /// The operator's choice that overrides the archive's verdict, and where it came from.
    pub forced: Option<(crate::runbook::PathChoice, String)>,
    pub incident_dir: Option<PathBuf>,
}

impl ChoosePathRequest {
    /// The decision when it needs no look at the world: forced to dump, or no archive.
    pub fn decided(&self) -> Option<PathOutcome> {
        use crate::runbook::PathChoice;
        match (&self.forced, &self.archive) {
            (Some((PathChoice::Dump, by)), _) => Some(PathOutcome::dump(
                format!("forced by {by}: the dump path, whatever the archive holds"),
                Some(by.clone()),
                self.archive
                    .as_ref()
                    .ok()
                    .map(|(a, _)| a.name().to_string()),
            )),
            (None, Err(why)) => Some(PathOutcome::dump(why.clone(), None, None)),
            _ => None,
        }
    }
}

/// What choose-path decided and why (journaled with step-finished).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathOutcome {
    pub path: crate::runbook::PathChoice,
    pub reason: String,
    /// Where a forced choice came from (e.g. "parameter 'path' (answers)").
    pub forced: Option<String>,
    pub archive: Option<String>,
    #[serde(default)]
    pub target_text: String,
    #[serde(default)]
    pub evidence_text: String,
    #[serde(default)]
    pub base_backup: String,
}

impl PathOutcome {
    pub fn dump(reason: String, forced: Option<String>, archive: Option<String>) -> PathOutcome {
        PathOutcome {
            path: crate::runbook::PathChoice::Dump,
            reason,
            forced,
            archive,
            target_text: String::new(),
            evidence_text: String::new(),
            base_backup: String::new(),
        }
    }
}

impl From<PathOutcome> for StepOutcome {
    fn from(o: PathOutcome) -> Self {
        StepOutcome::ok(format!("path '{}': {}", o.path, o.reason), to_value(&o))
    }
}

/// What recover-pitr did: the evidence, the target, the kept cluster and its dump.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PitrOutcome {
    pub archive: String,
    pub host: String,
    /// `pg_dump -Fc` of the recovered database (the restore step's `backup`).
    pub dump: String,
    /// SHA-256 of the dump on its host: the restore is held to it.
    pub sha256: Option<String>,
    pub size: u64,
    /// Where recovery stopped (`kind` xid / lsn / time), as the archive module gave it.
    pub target: Value,
    pub target_text: String,
    /// The destructive transaction: LSN, xid, commit time, record, relation.
    pub evidence: Value,
    pub evidence_text: String,
    /// The base backup recovery started from, and those refused (with why).
    pub base_backup: String,
    #[serde(default)]
    pub refused: Vec<(String, String)>,
    /// The recovery cluster's directory (stopped and kept).
    pub recovery_dir: String,
    /// The server's own log line saying where recovery stopped.
    pub stopped: String,
    pub xid_status: Option<String>,
    pub replay_s: f64,
    /// The operator moved the target: `given`, `to`, `from` (the target found
    /// in the WAL), `evidence` (the destructive transaction), `past_damage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct ReapplyRequest {
    pub database: DbTarget,
    /// The restored database whose owners are re-applied.
    pub restored: String,
    /// What the restore skipped (from its journaled manifest).
    pub changes: Vec<OwnerChange>,
    /// The owner the restored database itself gets back.
    pub database_owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReapplyOutcome {
    pub database: String,
    pub applied: Vec<String>,
    pub missing_role: Vec<OwnerChange>,
    pub failed: Vec<(String, String)>,
    /// Routines not given to a superuser (SECURITY DEFINER functions present).
    #[serde(default)]
    pub held: Vec<OwnerChange>,
}

#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The inventory database (for the server and credentials).
    pub database: DbTarget,
    /// The database on that server to check: the live one or a restored one.
    pub dbname: String,
    /// The restore manifest when `dbname` came from a restore step.
    pub manifest: Option<Value>,
    /// The healthy history (`schema.name` -> rows) of an earlier pick-backup.
    pub baseline: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyCheck {
    /// "foreign-key", "unique", "row-count", ...
    pub kind: String,
    pub target: String,
    pub ok: bool,
    pub found: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyOutcome {
    pub dbname: String,
    pub ok: bool,
    pub checks: Vec<VerifyCheck>,
    /// Exact rows per table (`schema.table`), the baseline of a later compare.
    pub counts: BTreeMap<String, i64>,
}

#[derive(Debug, Clone)]
pub struct SwapRequest {
    pub database: DbTarget,
    /// The restored database (same server) that takes the live name.
    pub restored: String,
    /// The name the damaged live database gets: `<dbname>__damaged_<UTC stamp>`;
    /// None when the identity the operator confirmed showed no live database.
    pub damaged: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapOutcome {
    pub live: String,
    /// None when there was no live database to keep (it had vanished).
    pub damaged: Option<String>,
    pub restored_from: String,
    /// Identity under the live name afterwards (the restored database's OID).
    pub after: DbIdentity,
    /// OID the damaged database keeps.
    pub damaged_oid: Option<u32>,
    pub attempts: u32,
}

#[derive(Debug, Clone)]
pub struct StartRequest {
    pub database: Option<DbTarget>,
    /// Services stopped by earlier stop-services steps of this run.
    pub stopped: Vec<StoppedService>,
    /// Hazards the operator picked one by one to start anyway.
    pub picked: Vec<String>,
}

impl StartRequest {
    /// True when start-services would start nothing at all: every service
    /// this run stopped stays off (a hazard not picked, a process that was
    /// not running, a process with no `start` command in the inventory) and
    /// the step picks none. Such a step changes nothing, so it asks no typed
    /// confirmation. Anything else (a unit, a container, a cron line, a
    /// pick) is taken to change something.
    pub fn changes_nothing(&self, inventory: &crate::inventory::Inventory) -> bool {
        self.picked.is_empty()
            && self.stopped.iter().all(|s| {
                (s.hazard)
                    || (s.kind == ServiceKind::Process
                        && (s.commands.is_empty()
                            || inventory
                                .service(&s.name)
                                .and_then(|x| x.start.as_ref())
                                .is_none()))
            })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeptOff {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartOutcome {
    pub started: Vec<String>,
    pub kept_off: Vec<KeptOff>,
}

#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub host: HostTarget,
    pub command: String,
    pub timeout_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandOutcome {
    pub exit: i32,
    /// The last lines of stdout and stderr, interleaved as they came.
    pub output: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SqlRequest {
    pub database: DbTarget,
    pub sql: String,
    /// Non-destructive steps run with `default_transaction_read_only = on`.
    pub read_only: bool,
    pub timeout_s: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqlOutcome {
    pub rows: u64,
    pub output: Vec<String>,
}

/// Which row wins when a key is in both the live table and the restored copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergePolicy {
    /// `ON CONFLICT DO NOTHING`: the live row stays (the default).
    LiveWins,
    /// `ON CONFLICT DO UPDATE`: every non-key column takes the restored value.
    RestoredWins,
}

impl MergePolicy {
    pub fn parse(s: &str) -> Option<MergePolicy> {
        match s {
            "live-wins" => Some(MergePolicy::LiveWins),
            "restored-wins" => Some(MergePolicy::RestoredWins),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MergePolicy::LiveWins => "live-wins",
            MergePolicy::RestoredWins => "restored-wins",
        }
    }
}

/// One transaction for every table (the default), or one per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeTx {
    One,
    PerTable,
    /// Each table in batches of `MERGE_BATCH_ROWS` staged rows, each batch
    /// its own transaction: locks are held only for one batch.
    Batches,
}

/// Staged rows per transaction in `MergeTx::Batches`.
pub const MERGE_BATCH_ROWS: i64 = 50_000;

impl MergeTx {
    pub fn parse(s: &str) -> Option<MergeTx> {
        match s {
            "one" => Some(MergeTx::One),
            "per-table" => Some(MergeTx::PerTable),
            "batches" => Some(MergeTx::Batches),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MergeTx::One => "one",
            MergeTx::PerTable => "per-table",
            MergeTx::Batches => "batches",
        }
    }
}

/// Put rows of a restored copy back into the live database.
#[derive(Debug, Clone)]
pub struct MergeRequest {
    /// The live database (written to).
    pub database: DbTarget,
    /// The restored copy on the same server (read only).
    pub source: String,
    /// Tables to merge: `name` or `schema.name` (as `TableRef::parse` reads them).
    pub tables: Vec<String>,
    /// Tables without a key the operator agreed to replace whole (TRUNCATE + copy).
    pub replace: Vec<String>,
    pub policy: MergePolicy,
    pub transaction: MergeTx,
}

impl MergeRequest {
    /// What the operator types to confirm: names the database and every table.
    pub fn phrase(&self) -> String {
        let mut p = format!(
            "merge {} into {}",
            self.tables.join(", "),
            self.database.dbname()
        );
        if !self.replace.is_empty() {
            p.push_str(&format!("; replace {}", self.replace.join(", ")));
        }
        p
    }
}

/// One table of a merge: the preview numbers, then what was done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeTable {
    /// `schema.name`.
    pub table: String,
    /// Key columns (primary key or a NOT NULL unique key); empty: none.
    pub key: Vec<String>,
    /// Replaced whole (no key, typed confirmation) instead of merged.
    pub replace: bool,
    pub live_rows: i64,
    pub source_rows: i64,
    /// Source rows whose key is not in live.
    pub to_insert: i64,
    /// Source rows whose key is in live.
    pub conflicts: i64,
    /// Of those, rows whose values differ.
    pub conflicts_differ: i64,
    /// Live rows whose key is not in the source (always kept by a merge).
    pub live_only: i64,
    /// Expected foreign-key violations of the rows that would be written.
    pub fk_violations: Vec<String>,
    pub inserted: i64,
    pub updated: i64,
    pub live_after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeOutcome {
    pub source: String,
    pub policy: MergePolicy,
    pub transaction: MergeTx,
    pub tables: Vec<MergeTable>,
    /// `sequence: old -> new` for every sequence moved.
    pub sequences: Vec<String>,
    /// Foreign-key orphans found after the merge (empty: none).
    pub orphans: Vec<String>,
}

/// A step with every parameter and reference resolved: what an action gets.
#[derive(Debug, Clone)]
pub enum ActionRequest {
    Note { text: String },
    Probe(ProbeRequest),
    StopServices(StopRequest),
    Snapshot(SnapshotRequest),
    PickBackup(PickRequest),
    Restore(RestoreRequest),
    ReapplyOwners(ReapplyRequest),
    Verify(VerifyRequest),
    Swap(SwapRequest),
    MergeTables(MergeRequest),
    RecoverPitr(PitrRequest),
    ChoosePath(ChoosePathRequest),
    StartServices(StartRequest),
    Command(CommandRequest),
    Sql(SqlRequest),
}

/// Lines of output kept in the journal per step (the rest only streamed).
pub const OUTPUT_KEEP: usize = 200;

/// How a finished action judged itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Ok,
    /// The action ran but did not achieve its purpose (a hold that failed, exit != 0).
    Failed(String),
    /// Verification found damage (exit code 3).
    Damage(String),
}

/// A finished action as the engine journals it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub summary: String,
    /// `data` of the step-finished record (conventions in `journal::kinds`).
    pub data: Value,
    pub exit: Option<i32>,
    pub verdict: Verdict,
}

impl StepOutcome {
    pub fn ok(summary: impl Into<String>, data: Value) -> Self {
        StepOutcome {
            summary: summary.into(),
            data,
            exit: None,
            verdict: Verdict::Ok,
        }
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl From<ProbeOutcome> for StepOutcome {
    fn from(o: ProbeOutcome) -> Self {
        StepOutcome::ok(o.summary, json!({ "found": o.found }))
    }
}

impl From<StopOutcome> for StepOutcome {
    fn from(o: StopOutcome) -> Self {
        let names: Vec<&str> = o.stopped.iter().map(|s| s.name.as_str()).collect();
        let data = json!({
            "stopped": names,
            "held_s": o.held_s,
            "detail": to_value(&o.stopped),
            "still_active": to_value(&o.still_active),
            "write_sessions": to_value(&o.write_sessions),
            "table_writes": to_value(&o.table_writes),
            "hold_passed": o.hold_passed(),
            "plan": to_value(&o.plan),
        });
        let verdict = if o.hold_passed() {
            Verdict::Ok
        } else {
            let mut why = Vec::new();
            for a in &o.still_active {
                why.push(format!("'{}' on {} is back: {}", a.name, a.host, a.detail));
            }
            for w in &o.write_sessions {
                why.push(format!(
                    "write session pid {} ({})",
                    w.pid,
                    w.application_name.as_deref().unwrap_or("?")
                ));
            }
            for (t, n) in o.table_writes.iter().filter(|(_, n)| **n != 0) {
                why.push(format!("{n} row write(s) to '{t}' during the hold"));
            }
            Verdict::Failed(format!(
                "writers are NOT proven stopped after {} s: {}; stop them (or find what restarts them) and run the step again",
                o.held_s,
                why.join("; ")
            ))
        };
        StepOutcome {
            summary: format!(
                "stopped {} service(s), held {} s: {}",
                names.len(),
                o.held_s,
                if o.hold_passed() {
                    "nothing came back"
                } else {
                    "hold FAILED"
                }
            ),
            data,
            exit: None,
            verdict,
        }
    }
}

impl From<SnapshotOutcome> for StepOutcome {
    fn from(o: SnapshotOutcome) -> Self {
        let summary = match (&o.path, o.absent) {
            (_, true) => format!("database '{}' is absent: nothing to snapshot", o.dbname),
            (Some(p), _) => format!(
                "snapshot {p}: {} bytes, sha256 {}",
                o.size,
                o.sha256.as_deref().unwrap_or("?")
            ),
            (None, _) => "no snapshot".into(),
        };
        StepOutcome::ok(
            summary,
            json!({ "path": o.path, "size": o.size, "sha256": o.sha256, "dbname": o.dbname, "absent": o.absent, "command": o.command }),
        )
    }
}

impl From<PickOutcome> for StepOutcome {
    fn from(o: PickOutcome) -> Self {
        StepOutcome::ok(
            format!(
                "picked {} (taken {}, loses {} of changes){}{}",
                o.chosen.name,
                o.chosen
                    .taken_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "?".into()),
                crate::export::time::human_secs(o.rpo_s),
                o.window
                    .as_ref()
                    .map(|w| format!("; {}", w.describe()))
                    .unwrap_or_default(),
                o.warnings
                    .iter()
                    .map(|w| format!("; warning: {w}"))
                    .collect::<String>()
            ),
            json!({
                "backup": to_value(&o.picked),
                "incident_at": o.incident_at,
                "rpo_s": o.rpo_s,
                // The same loss in the one human unit the export uses.
                "rpo": crate::export::time::human_secs(o.rpo_s),
                "candidates": to_value(&o.candidates),
                "baseline": o.baseline,
                "baseline_source": o.baseline_source,
                "window": o.window,
                "window_text": o.window.as_ref().map(|w| w.describe()),
                "warnings": o.warnings,
                "live_evidence": o.live_evidence,
            }),
        )
    }
}

impl From<RestoreOutcome> for StepOutcome {
    fn from(o: RestoreOutcome) -> Self {
        let rows: i64 = o.manifest.tables.values().sum();
        StepOutcome::ok(
            format!(
                "restored into '{}': {} table(s), {rows} row(s), as '{}'{}",
                o.target_db,
                o.manifest.tables.len(),
                o.manifest.restored_as,
                match o.manifest.owners_skipped.len() {
                    0 => String::new(),
                    n => format!("; {n} OWNER TO skipped for reapply-owners"),
                }
            ),
            json!({ "target_db": o.target_db, "manifest": to_value(&o.manifest) }),
        )
    }
}

impl From<VerifyOutcome> for StepOutcome {
    fn from(o: VerifyOutcome) -> Self {
        let bad: Vec<String> = o
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{} {}: {}", c.kind, c.target, c.found))
            .collect();
        StepOutcome {
            summary: if o.ok {
                format!("'{}': {} check(s) passed", o.dbname, o.checks.len())
            } else {
                format!("'{}': {} check(s) FAILED", o.dbname, bad.len())
            },
            data: json!({ "database": o.dbname, "ok": o.ok, "checks": to_value(&o.checks), "counts": to_value(&o.counts) }),
            exit: None,
            verdict: if o.ok {
                Verdict::Ok
            } else {
                Verdict::Damage(format!("verification found damage: {}", bad.join("; ")))
            },
        }
    }
}

impl From<ReapplyOutcome> for StepOutcome {
    fn from(o: ReapplyOutcome) -> Self {
        let summary = format!(
            "'{}': {} owner(s) re-applied, {} left to the restore role (role missing), {} held (routines for a superuser while SECURITY DEFINER functions exist: review them), {} refused by the server",
            o.database,
            o.applied.len(),
            o.missing_role.len(),
            o.held.len(),
            o.failed.len()
        );
        let data = json!({ "database": o.database, "applied": o.applied,
                           "missing_role": to_value(&o.missing_role), "held": to_value(&o.held),
                           "failed": to_value(&o.failed) });
        if o.failed.is_empty() {
            StepOutcome::ok(summary, data)
        } else {
            StepOutcome {
                summary: summary.clone(),
                data,
                exit: None,
                verdict: Verdict::Failed(summary),
            }
        }
    }
}

impl From<SwapOutcome> for StepOutcome {
    fn from(o: SwapOutcome) -> Self {
        StepOutcome::ok(
            match &o.damaged {
                Some(d) => format!(
                    "'{}' is now the restored database (was '{}'); the damaged one is kept as '{d}'",
                    o.live, o.restored_from
                ),
                None => format!(
                    "'{}' is now the restored database (was '{}'); there was no live database to keep",
                    o.live, o.restored_from
                ),
            },
            json!({ "live": o.live, "damaged": o.damaged, "restored_from": o.restored_from,
                    "after": to_value(&o.after), "damaged_oid": o.damaged_oid, "attempts": o.attempts }),
        )
    }
}

impl From<MergeOutcome> for StepOutcome {
    fn from(o: MergeOutcome) -> Self {
        let inserted: i64 = o.tables.iter().map(|t| t.inserted).sum();
        let updated: i64 = o.tables.iter().map(|t| t.updated).sum();
        let names: Vec<&str> = o.tables.iter().map(|t| t.table.as_str()).collect();
        let data = json!({
            "source": o.source, "policy": o.policy, "transaction": o.transaction,
            "tables": to_value(&o.tables), "sequences": o.sequences, "orphans": o.orphans,
            "inserted": inserted, "updated": updated,
        });
        let summary = format!(
            "merged {} table(s) from '{}' ({}): {inserted} row(s) inserted, {updated} updated",
            names.len(),
            o.source,
            names.join(", ")
        );
        if o.orphans.is_empty() {
            StepOutcome::ok(summary, data)
        } else {
            StepOutcome {
                summary,
                data,
                exit: None,
                verdict: Verdict::Damage(format!(
                    "foreign-key orphans after the merge: {}",
                    o.orphans.join("; ")
                )),
            }
        }
    }
}

impl From<PitrOutcome> for StepOutcome {
    fn from(o: PitrOutcome) -> Self {
        let summary = format!(
            "recovered beside the live cluster {}: {}; from base backup '{}'; dump {} ({} bytes, sha256 {}); the recovery cluster is stopped and kept in {}",
            o.target_text,
            o.evidence_text,
            o.base_backup,
            o.dump,
            o.size,
            o.sha256.as_deref().unwrap_or("?"),
            o.recovery_dir
        );
        StepOutcome::ok(summary, to_value(&o))
    }
}

impl From<StartOutcome> for StepOutcome {
    fn from(o: StartOutcome) -> Self {
        StepOutcome::ok(
            format!(
                "started {} service(s); {} kept off",
                o.started.len(),
                o.kept_off.len()
            ),
            json!({ "started": o.started, "kept_off": to_value(&o.kept_off) }),
        )
    }
}

impl From<CommandOutcome> for StepOutcome {
    fn from(o: CommandOutcome) -> Self {
        StepOutcome {
            summary: format!("exit {}", o.exit),
            data: json!({ "exit": o.exit, "output": o.output }),
            exit: Some(o.exit),
            verdict: if o.exit == 0 {
                Verdict::Ok
            } else {
                Verdict::Failed(format!("the command exited with status {}", o.exit))
            },
        }
    }
}

impl From<SqlOutcome> for StepOutcome {
    fn from(o: SqlOutcome) -> Self {
        StepOutcome::ok(
            format!("{} row(s)", o.rows),
            json!({ "rows": o.rows, "output": o.output }),
        )
    }
}

/// One `ALTER <kind> <object> OWNER TO <owner>` the restore did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerChange {
    /// Upper-case kind words, e.g. `TABLE`, `MATERIALIZED VIEW`.
    pub kind: String,
    /// The object as rebuilt from the dump's tokens (identifiers quoted).
    pub object: String,
    /// The role the dump gave the object to.
    pub owner: String,
    /// Line of the dump statement.
    pub line: u64,
}

impl OwnerChange {
    /// The statement that re-applies it: built here, never copied from the dump.
    pub fn sql(&self) -> String {
        format!(
            "ALTER {} {} OWNER TO {}",
            self.kind,
            self.object,
            super::preview::quote_ident(&self.owner)
        )
    }
}

/// The statement `restore::create_restore_role` runs (shown before the operator confirms).
pub fn create_role_sql(role: &str) -> String {
    format!(
        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        super::preview::quote_ident(role)
    )
}
