//! The export document as data: the JSON schema (`schema_version` 1, see
//! README "Export") that Markdown and HTML are rendered from. Plain data;
//! it never reads files and never holds an unredacted string.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped on any change to the shape (README "Export" documents it).
pub const SCHEMA_VERSION: u32 = 1;

/// The whole post-incident document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema_version: u32,
    /// `lifeline <version>`.
    pub generator: String,
    pub generated_at: DateTime<Utc>,
    pub incident: String,
    /// The offset local times are shown in, e.g. `+02:00` (from `--tz` or
    /// the exporting machine's zone at the incident's first event).
    pub local_offset: String,
    pub integrity: Integrity,
    pub summary: Summary,
    pub timeline: Vec<TimelineItem>,
    pub row_counts: Vec<TableSeries>,
    /// Things the reader must know that fit nowhere else (missing files,
    /// unreadable lines, inconsistent numbers).
    pub warnings: Vec<String>,
}

/// The journal's hash chain as verified before export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrity {
    pub intact: bool,
    /// Records read (verified or not).
    pub records: usize,
    /// Records in the unbroken chain from the first line.
    pub verified: usize,
    pub first_bad_line: Option<usize>,
    pub reason: Option<String>,
    /// A last line cut short by a crash (it recorded nothing).
    pub torn_last_line: Option<usize>,
    /// SHA-256 of the journal file as read.
    pub journal_sha256: String,
    /// `hash` of the last verified record: ties the document to the journal.
    pub last_hash: Option<String>,
    /// The signed checkpoints: "signed", "unsigned" or "failed".
    #[serde(default)]
    pub signature_status: String,
    /// Who signed, or what failed where.
    #[serde(default)]
    pub signature_detail: Option<String>,
    /// The head (seq, hash) to compare with a head anchor.
    #[serde(default)]
    pub head: Option<(u64, String)>,
    /// The last verified checkpoint (covers_seq, covers_hash, signer, signature).
    #[serde(default)]
    pub checkpoint: Option<serde_json::Value>,
}

/// A time span in seconds with the two instants it spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub seconds: i64,
    /// The event that ends it, e.g. `alert #2`, `swap finished #27`.
    pub until: String,
}

impl Span {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, until: impl Into<String>) -> Self {
        Span {
            from,
            to,
            seconds: (to - from).num_seconds(),
            until: until.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub opened_at: Option<DateTime<Utc>>,
    /// `live` or `drill` (incident-opened `data.mode`).
    pub mode: Option<String>,
    pub scenario: Option<String>,
    pub operators: Vec<String>,
    pub databases: Vec<String>,
    pub hosts: Vec<String>,
    pub first_damage: Option<Damage>,
    /// The incident time the operator gave (pick-backup `data.incident_at`).
    pub stated_incident_at: Option<DateTime<Utc>>,
    /// First damage -> first alert or incident-opened at or after it.
    pub time_to_detect: Option<Span>,
    /// First damage -> first stop-services step finished.
    pub time_to_stop_writers: Option<Span>,
    pub stopped_services: Vec<String>,
    /// RTO: first damage -> swap finished (else restore finished).
    pub time_to_restore: Option<Span>,
    /// RPO: the changes lost between the backup and the incident.
    pub data_lost: Option<DataLost>,
    pub backup: Option<BackupUsed>,
    pub restore: Option<RestoreDone>,
    pub kept: Kept,
    pub verification: Vec<Verification>,
    pub steps: StepCounts,
    pub drill_reports: Vec<DrillReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Damage {
    pub at: DateTime<Utc>,
    /// `sample` (a row-count drop in samples.jsonl) or `alert` (journal).
    pub source: String,
    pub database: Option<String>,
    pub table: Option<String>,
    pub before: Option<i64>,
    pub after: Option<i64>,
    /// Journal seq of the alert, when the source is an alert.
    pub seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataLost {
    pub seconds: i64,
    pub backup_taken_at: Option<DateTime<Utc>>,
    pub incident_at: Option<DateTime<Utc>>,
    /// `computed` (incident time minus backup time), `journal` (data.rpo_s),
    /// or `first-damage` (no stated incident time: the first damage seen).
    pub basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupUsed {
    pub name: Option<String>,
    pub path: Option<String>,
    pub taken_at: Option<DateTime<Utc>>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreDone {
    pub at: DateTime<Utc>,
    pub target_db: Option<String>,
    /// Rows per table as restored (the manifest).
    pub tables: BTreeMap<String, i64>,
    pub statements: Option<u64>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub duration_ms: Option<u64>,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Kept {
    pub snapshots: Vec<Snapshot>,
    /// `<db>__damaged_<stamp>` databases kept by the swap.
    pub damaged_databases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    pub path: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub database: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub at: DateTime<Utc>,
    pub database: Option<String>,
    /// None when the step recorded no verdict.
    pub ok: Option<bool>,
    pub checks: usize,
    pub failed: Vec<Check>,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub kind: String,
    pub target: String,
    pub found: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StepCounts {
    pub finished: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Step ids that failed, in order.
    pub failed_steps: Vec<String>,
    /// Every failure with its error class (`data.class`) and message, in order.
    #[serde(default)]
    pub failures: Vec<StepFailureRow>,
}

/// One failed step as the export shows it (from its `step-failed` record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StepFailureRow {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub step: String,
    /// The step's action (`data.action`).
    pub action: Option<String>,
    /// Where it failed: `confirm`, `guard`, `action`, ... (`data.phase`).
    pub phase: Option<String>,
    /// The error class (`data.class`), e.g. `not-confirmed`, `unreachable`.
    pub class: Option<String>,
    /// The operator's sentence (`data.error`, else the summary), control
    /// characters escaped.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillReport {
    pub at: DateTime<Utc>,
    pub summary: String,
    pub data: Value,
    pub seq: u64,
}

/// One line of the timeline: an event, or a run of similar events folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum TimelineItem {
    Event(TimelineEvent),
    Folded(Folded),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEvent {
    pub seq: u64,
    /// Where the event sits on the timeline: `ts`, or for a backdated note
    /// the time it describes (`data.at`).
    pub at: DateTime<Utc>,
    /// When it was journaled.
    pub ts: DateTime<Utc>,
    /// `at` in local time, `YYYY-MM-DD HH:MM:SS±HH:MM`.
    pub local: String,
    pub operator: String,
    pub kind: String,
    pub step: Option<String>,
    /// The step's action (`data.action`, or that of its step-started).
    pub action: Option<String>,
    pub target: Option<String>,
    pub command: Option<String>,
    pub exit: Option<i32>,
    /// `ok`, `failed`, `skipped`, `exit N`, or None.
    pub outcome: Option<String>,
    /// `duration_ms`, else measured from the step's step-started.
    pub duration_ms: Option<u64>,
    pub summary: String,
    /// Set on a backdated note: when it was added (= `ts`).
    pub added_later: Option<DateTime<Utc>>,
    /// False for records after a break in the hash chain.
    pub verified: bool,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folded {
    pub count: usize,
    pub seqs: Vec<u64>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub local_from: String,
    pub local_to: String,
    pub kind: String,
    pub operator: String,
    pub step: Option<String>,
    pub target: Option<String>,
    pub command: Option<String>,
    pub outcome: Option<String>,
    /// The first event's summary.
    pub summary: String,
    pub verified: bool,
}

/// One exactly counted table over the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSeries {
    pub database: String,
    pub schema: String,
    pub table: String,
    /// Last count before the first damage (None when sampling began later).
    pub before: Option<i64>,
    pub lowest: i64,
    pub lowest_at: DateTime<Utc>,
    pub after: i64,
    pub after_at: DateTime<Utc>,
    /// The table's OID changed (dropped and re-created) during the incident.
    pub recreated: bool,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub ts: DateTime<Utc>,
    pub rows: i64,
}
