//! Drill scoring: the drill report of a lab drill, computed from the drill's
//! journal records and the lab's known facts. A pure function: it reads no
//! file and no clock, so the same journal always scores the same.
//!
//! What it reads from the journal (conventions of `journal::kinds`):
//! - detection: the first record of a kind in [`DETECTION_KINDS`] at or after
//!   the damage (a row-count alert, a re-created table, a changed identity);
//! - writers stopped: `step-finished` with `data.action = "stop-services"`,
//!   `data.stopped` = service names; the time the union covers every hazard;
//! - backup used: `step-finished` `pick-backup`, `data.backup.name` or `.path`;
//! - restored: `step-finished` `swap` or `merge-tables` (the live name serves
//!   restored data); rows restored from the `restore` step's
//!   `data.manifest.tables`;
//! - verified: `step-finished` `verify` whose `data.ok` is not false;
//! - mistakes: a hazard in `data.started` of `start-services`; a destructive
//!   step (`swap`, or `data.destructive = true`) started before any snapshot;
//!   a backup other than the right one; a decoy database named as a target.
//!
//! Rows lost in undamaged tables come from the lab's own reads of the live
//! database before and after the runbook ([`DrillReport::with_live_rows`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::writer::CommittedRow;
use super::{BackupKind, Scenario};
use crate::journal::{Record, kinds};

/// Record kinds that count as the damage being noticed.
pub const DETECTION_KINDS: &[&str] = &[
    kinds::ALERT,
    kinds::TABLE_RECREATED,
    kinds::IDENTITY_CHANGED,
];

/// Step actions that change the live database in place.
pub const DESTRUCTIVE_ACTIONS: &[&str] = &["swap", "merge-tables"];

/// Step actions after which the live name serves restored data.
pub const RESTORING_ACTIONS: &[&str] = &["swap", "merge-tables"];

/// Rows of a database as the lab read them: per table, md5 of each row's
/// text -> how many rows have that text.
pub type RowSnapshot = BTreeMap<String, BTreeMap<String, i64>>;

impl Scenario {
    /// The tables the scenario damages when it damages only some (names in
    /// `public`); `None` when the damage is the whole database.
    pub fn damaged_tables(self) -> Option<&'static [&'static str]> {
        match self {
            Scenario::WrongDatabase => Some(&["User"]),
            Scenario::RogueSync | Scenario::DroppedDatabase | Scenario::MigrationReset => None,
        }
    }
}

/// Per table the scenario left undamaged: rows of `before` (the live
/// database just before the fix) missing from `after` (right after it).
/// A changed row counts as lost (its old text is gone). `None` when the
/// scenario damages the whole database.
pub fn undamaged_rows_lost(
    scenario: Scenario,
    before: &RowSnapshot,
    after: &RowSnapshot,
) -> Option<BTreeMap<String, i64>> {
    let damaged = scenario.damaged_tables()?;
    let empty = BTreeMap::new();
    Some(
        before
            .iter()
            .filter(|(t, _)| !damaged.contains(&t.as_str()))
            .map(|(t, rows)| {
                let now = after.get(t).unwrap_or(&empty);
                let lost = rows
                    .iter()
                    .map(|(sum, n)| (n - now.get(sum).copied().unwrap_or(0)).max(0))
                    .sum();
                (t.clone(), lost)
            })
            .collect(),
    )
}

/// One backup of the lab's catalog, as the lab made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupFact {
    /// File name.
    pub name: String,
    pub taken_at: DateTime<Utc>,
    pub kind: BackupKind,
}

/// What the lab knows about its outage: the answer key of the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabFacts {
    pub scenario: Scenario,
    pub damage_at: DateTime<Utc>,
    /// Inventory name of the damaged database.
    pub database: String,
    /// Its real name on the server.
    pub db_name: String,
    pub backups: Vec<BackupFact>,
    /// File name of the newest intact backup taken before the damage.
    pub right_backup: String,
    /// Inventory names of the services that wipe the data or bring a wiper back.
    pub hazards: Vec<String>,
    /// Real names of databases a careless operator would pick instead.
    pub decoys: Vec<String>,
    /// Row counts of the damaged database just before the damage.
    pub counts_before: BTreeMap<String, i64>,
    /// The application writer's log: every row it saw committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<GroundTruth>,
    /// OID of the damaged database before the damage (names it in the WAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_oid: Option<u32>,
}

/// Ground truth of the lab's application writer: what it committed, and
/// when the damage began by the lab's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The table it writes (`public`).
    pub table: String,
    /// The `message` of its rows (no other row has it).
    pub marker: String,
    /// The log file (`id<TAB>commit time`, 0600).
    pub log: std::path::PathBuf,
    pub rows: Vec<CommittedRow>,
    /// A row whose COMMIT returned before this committed before the
    /// destructive transaction.
    pub damage_started: DateTime<Utc>,
}

impl GroundTruth {
    /// Ids of the rows committed before the damage began.
    pub fn before_damage(&self) -> impl Iterator<Item = i64> + '_ {
        self.rows
            .iter()
            .filter(|r| r.at < self.damage_started)
            .map(|r| r.id)
    }
}

/// Rows that differ from the database just before the damage (the
/// writer's rows left out: they are scored by the log), and schema objects
/// (constraints, indexes, sequences, triggers of `public`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DamageEffects {
    /// Rows there just before the damage and missing after the fix.
    pub missing: i64,
    /// Rows there after the fix that were not there just before the damage.
    pub extra: i64,
    /// Schema objects there just before the damage and missing after the fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_missing: Vec<String>,
    /// Schema objects there after the fix and not before the damage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_extra: Vec<String>,
}

impl DamageEffects {
    /// Nothing of the damage left.
    pub fn none(&self) -> bool {
        *self == DamageEffects::default()
    }
    /// Adds the schema objects of `before` missing from `after` and the reverse.
    pub fn with_schema(mut self, before: &BTreeSet<String>, after: &BTreeSet<String>) -> Self {
        self.schema_missing = before.difference(after).cloned().collect();
        self.schema_extra = after.difference(before).cloned().collect();
        self
    }
}

/// "Rows lost" against the ground truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthScore {
    /// Rows the writer committed before the damage began.
    pub committed_before_damage: u64,
    /// Of those, the ones missing from the live database after the fix.
    pub rows_lost: u64,
    /// Up to ten of the missing ids.
    pub lost_ids: Vec<i64>,
    /// Rows the writer committed after the damage began: not scored.
    pub committed_after_damage: u64,
    /// The database after the fix against the one just before the damage
    /// (absent when not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage_effects: Option<DamageEffects>,
}

/// Scores the writer's rows: `present` are the writer's ids in the live
/// database after the fix.
pub fn truth_score(
    truth: &GroundTruth,
    present: &BTreeSet<i64>,
    damage_effects: Option<DamageEffects>,
) -> TruthScore {
    let before: Vec<i64> = truth.before_damage().collect();
    let lost: Vec<i64> = before
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    TruthScore {
        committed_before_damage: before.len() as u64,
        rows_lost: lost.len() as u64,
        lost_ids: lost.into_iter().take(10).collect(),
        committed_after_damage: (truth.rows.len() - before.len()) as u64,
        damage_effects,
    }
}

/// `a` less `b`, row by row (multisets); tables left empty are kept.
pub fn minus(a: &RowSnapshot, b: &RowSnapshot) -> RowSnapshot {
    let empty = BTreeMap::new();
    a.iter()
        .map(|(t, rows)| {
            let other = b.get(t).unwrap_or(&empty);
            let left = rows
                .iter()
                .filter_map(|(sum, n)| {
                    let k = n - other.get(sum).copied().unwrap_or(0);
                    (k > 0).then(|| (sum.clone(), k))
                })
                .collect();
            (t.clone(), left)
        })
        .collect()
}

/// Multiset difference of two row snapshots, both ways.
pub fn damage_effects(before: &RowSnapshot, after: &RowSnapshot) -> DamageEffects {
    let empty = BTreeMap::new();
    let diff = |a: &RowSnapshot, b: &RowSnapshot| -> i64 {
        a.iter()
            .map(|(t, rows)| {
                let other = b.get(t).unwrap_or(&empty);
                rows.iter()
                    .map(|(sum, n)| (n - other.get(sum).copied().unwrap_or(0)).max(0))
                    .sum::<i64>()
            })
            .sum()
    };
    DamageEffects {
        missing: diff(before, after),
        extra: diff(after, before),
        ..DamageEffects::default()
    }
}

impl LabFacts {
    fn backup(&self, name: &str) -> Option<&BackupFact> {
        self.backups.iter().find(|b| b.name == name)
    }
    /// Changes lost with the right backup, in seconds.
    pub fn best_loss_s(&self) -> Option<f64> {
        self.backup(&self.right_backup)
            .map(|b| secs(self.damage_at - b.taken_at))
    }
}

/// A mistake made during the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mistake {
    /// A service known to wipe the data (or bring a wiper back) was started again.
    HazardRestarted {
        service: String,
        step: Option<String>,
        at: DateTime<Utc>,
    },
    /// A destructive step started with no snapshot taken before it.
    DestructiveWithoutSnapshot {
        step: Option<String>,
        action: String,
        at: DateTime<Utc>,
    },
    /// A backup other than the newest intact one from before the damage.
    WrongBackup {
        picked: String,
        right: String,
        why: String,
        at: DateTime<Utc>,
    },
    /// A step aimed at a decoy database.
    WrongDatabase {
        database: String,
        step: Option<String>,
        at: DateTime<Utc>,
    },
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = |s: &Option<String>| {
            s.as_ref()
                .map(|s| format!(" (step '{s}')"))
                .unwrap_or_default()
        };
        match self {
            Mistake::HazardRestarted {
                service, step: s, ..
            } => {
                write!(f, "hazard '{service}' started again{}", step(s))
            }
            Mistake::DestructiveWithoutSnapshot {
                step: s, action, ..
            } => {
                write!(
                    f,
                    "destructive '{action}' without a snapshot first{}",
                    step(s)
                )
            }
            Mistake::WrongBackup {
                picked, right, why, ..
            } => write!(
                f,
                "picked backup '{picked}' ({why}); the right one was '{right}'"
            ),
            Mistake::WrongDatabase {
                database, step: s, ..
            } => {
                write!(f, "worked on the wrong database '{database}'{}", step(s))
            }
        }
    }
}

/// The drill's outcome: times from the damage, data lost, mistakes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub scenario: Scenario,
    pub damage_at: DateTime<Utc>,
    pub detected_at: Option<DateTime<Utc>>,
    /// Kind of the record that counted as detection.
    pub detected_by: Option<String>,
    pub time_to_detect_s: Option<f64>,
    /// When every hazard had been reported stopped (the first stop-services
    /// when the scenario has none).
    pub writers_stopped_at: Option<DateTime<Utc>>,
    pub time_to_stop_writers_s: Option<f64>,
    /// Hazards never reported stopped.
    pub writers_left: Vec<String>,
    /// When the live name served restored data again (the swap).
    pub restored_at: Option<DateTime<Utc>>,
    pub time_to_restore_s: Option<f64>,
    pub verified: bool,
    pub backup_used: Option<String>,
    pub backup_taken_at: Option<DateTime<Utc>>,
    /// Changes lost (RPO): damage time minus the used backup's time.
    pub data_lost_s: Option<f64>,
    /// Changes lost with the right backup.
    pub best_possible_loss_s: Option<f64>,
    /// Rows per table before the damage minus rows restored (when the restore
    /// reported its manifest).
    pub rows_lost: BTreeMap<String, i64>,
    /// Per table the scenario did not damage: rows present in the live
    /// database just before the fix and missing after it (ground truth read
    /// by the lab; absent when not measured or the whole database was damaged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undamaged_rows_lost: Option<BTreeMap<String, i64>>,
    /// Damage the restoring step left and reported (a merge that committed
    /// with foreign-key orphans no backup row fixes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage_left: Option<String>,
    /// Rows lost against the writer's log, read by the lab after the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_truth: Option<TruthScore>,
    pub mistakes: Vec<Mistake>,
}

impl DrillReport {
    /// Restored, verified, with no mistake, no damage left and (when
    /// measured) no row lost in an undamaged table.
    pub fn passed(&self) -> bool {
        self.restored_at.is_some()
            && self.verified
            && self.mistakes.is_empty()
            && self.damage_left.is_none()
            && self.undamaged_rows_lost_total().unwrap_or(0) == 0
    }

    /// Sum of [`Self::undamaged_rows_lost`].
    pub fn undamaged_rows_lost_total(&self) -> Option<i64> {
        self.undamaged_rows_lost.as_ref().map(|m| m.values().sum())
    }

    /// Adds the rows lost in undamaged tables, from the lab's reads of the
    /// live database just before the fix and right after it.
    pub fn with_live_rows(mut self, before: &RowSnapshot, after: &RowSnapshot) -> Self {
        self.undamaged_rows_lost = undamaged_rows_lost(self.scenario, before, after);
        self
    }

    /// Adds the score against the writer's log.
    pub fn with_ground_truth(mut self, s: TruthScore) -> Self {
        self.ground_truth = Some(s);
        self
    }
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn action(r: &Record) -> Option<&str> {
    r.data.get("action").and_then(Value::as_str)
}

fn finished(r: &Record, act: &str) -> bool {
    r.kind == kinds::STEP_FINISHED && action(r) == Some(act)
}

fn file_name(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `public."User"`, `"User"`, `public.User` -> `User`.
fn table_name(s: &str) -> String {
    let s = s.strip_prefix("public.").unwrap_or(s);
    s.trim_matches('"').to_string()
}

/// Database names a record aims at: `target` (also `host:port/db`),
/// `data.database`, `data.target_db`.
fn targets(r: &Record) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = &r.target {
        out.push(t.clone());
        if let Some((_, db)) = t.rsplit_once('/') {
            out.push(db.to_string());
        }
    }
    for k in ["database", "target_db"] {
        if let Some(s) = r.data.get(k).and_then(Value::as_str) {
            out.push(s.to_string());
        }
    }
    out
}

/// Scores a drill. `records` are the drill incident's journal in order.
pub fn score(facts: &LabFacts, records: &[Record]) -> DrillReport {
    let since = |t: DateTime<Utc>| Some(secs(t - facts.damage_at));

    let detected = records
        .iter()
        .find(|r| r.ts >= facts.damage_at && DETECTION_KINDS.contains(&r.kind.as_str()));

    // Writers: the first moment the stopped set covers every hazard.
    let hazards: BTreeSet<&str> = facts.hazards.iter().map(String::as_str).collect();
    let mut stopped: BTreeSet<String> = BTreeSet::new();
    let mut writers_stopped_at = None;
    for r in records.iter().filter(|r| finished(r, "stop-services")) {
        stopped.extend(strings(r.data.get("stopped")));
        if hazards.iter().all(|h| stopped.contains(*h)) {
            writers_stopped_at = Some(r.ts);
            break;
        }
    }
    let writers_left: Vec<String> = hazards
        .iter()
        .filter(|h| !stopped.contains(**h))
        .map(|h| h.to_string())
        .collect();

    let restore_at = records
        .iter()
        .find(|r| finished(r, "restore"))
        .map(|r| r.ts);
    let pick = records
        .iter()
        .filter(|r| finished(r, "pick-backup"))
        .rfind(|r| restore_at.is_none_or(|t| r.ts <= t));
    // The operator's choice of another candidate of that pick counts.
    let chosen = pick.and_then(|p| {
        records
            .iter()
            .skip_while(|r| !std::ptr::eq(*r, p))
            .filter(|r| r.kind == crate::engine::driver::kinds::BACKUP_CHOSEN && r.step == p.step)
            .last()
    });
    let backup_used = pick.and_then(|r| {
        let b = match chosen {
            Some(c) => c.data.get("chosen")?,
            None => r.data.get("backup")?,
        };
        b.get("name")
            .or_else(|| b.get("path"))
            .and_then(Value::as_str)
            .map(|s| file_name(s).to_string())
    });
    let backup_taken_at = backup_used.as_deref().and_then(|name| {
        facts.backup(name).map(|b| b.taken_at).or_else(|| {
            chosen
                .and_then(|c| c.data.pointer("/chosen/taken_at"))
                .or_else(|| pick.and_then(|r| r.data.pointer("/backup/taken_at")))
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        })
    });

    // The pitr path has no pick: the data is what the recovery held, up to
    // just before the destructive transaction's commit.
    let pitr = records
        .iter()
        .rfind(|r| finished(r, "recover-pitr") && restore_at.is_none_or(|t| r.ts <= t));
    let (backup_used, backup_taken_at) = match (backup_used, pitr) {
        (None, Some(p)) => (
            p.data
                .get("target_text")
                .and_then(Value::as_str)
                .map(|t| format!("point-in-time recovery, {t}")),
            p.data
                .pointer("/evidence/commit_time")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
        ),
        (b, _) => (b, backup_taken_at),
    };

    // A merge that committed and ended as damage (foreign-key orphans left
    // that no merged row fixes): the live name serves the merged rows, and
    // the damage is reported.
    let merge_damage = records.iter().find(|r| {
        r.kind == kinds::STEP_FAILED
            && action(r) == Some("merge-tables")
            && r.data.get("phase").and_then(Value::as_str) == Some("act")
            && r.data
                .get("orphans")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
    });
    let restored_at = records
        .iter()
        .find(|r| RESTORING_ACTIONS.iter().any(|a| finished(r, a)))
        .map(|r| r.ts)
        .into_iter()
        .chain(merge_damage.map(|r| r.ts))
        .min();
    let damage_left = merge_damage.map(|r| {
        r.data
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or(&r.summary)
            .to_string()
    });
    let verified = records
        .iter()
        .any(|r| finished(r, "verify") && r.data.get("ok").and_then(Value::as_bool) != Some(false));

    let mut rows_lost = BTreeMap::new();
    if let Some(tables) = records
        .iter()
        .find(|r| finished(r, "restore"))
        .and_then(|r| r.data.pointer("/manifest/tables"))
        .and_then(Value::as_object)
    {
        let restored: BTreeMap<String, i64> = tables
            .iter()
            .filter_map(|(k, v)| Some((table_name(k), v.as_i64()?)))
            .collect();
        // A merge puts the backup's rows back into the damaged tables only:
        // the other tables keep their own (scored as undamaged rows lost).
        let merged = merge_damage.is_some() || records.iter().any(|r| finished(r, "merge-tables"));
        let only = if merged {
            facts.scenario.damaged_tables()
        } else {
            None
        };
        for (t, before) in &facts.counts_before {
            if let Some(n) = restored.get(t)
                && only.is_none_or(|d| d.contains(&t.as_str()))
            {
                rows_lost.insert(t.clone(), before - n);
            }
        }
    }

    let mut mistakes = Vec::new();
    let mut snapshot_taken = false;
    let mut wrong_db_seen: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for r in records {
        if finished(r, "snapshot") {
            snapshot_taken = true;
        }
        if finished(r, "start-services") {
            for s in strings(r.data.get("started")) {
                if hazards.contains(s.as_str()) {
                    mistakes.push(Mistake::HazardRestarted {
                        service: s,
                        step: r.step.clone(),
                        at: r.ts,
                    });
                }
            }
        }
        if r.kind == kinds::STEP_STARTED {
            let act = action(r).unwrap_or_default();
            let destructive = DESTRUCTIVE_ACTIONS.contains(&act)
                || r.data.get("destructive").and_then(Value::as_bool) == Some(true);
            // A dropped database leaves nothing to snapshot.
            if destructive && !snapshot_taken && facts.scenario != Scenario::DroppedDatabase {
                mistakes.push(Mistake::DestructiveWithoutSnapshot {
                    step: r.step.clone(),
                    action: act.to_string(),
                    at: r.ts,
                });
            }
        }
        if [
            kinds::STEP_STARTED,
            kinds::STEP_FINISHED,
            kinds::CONFIRMED,
            kinds::COMMAND,
        ]
        .contains(&r.kind.as_str())
        {
            for t in targets(r) {
                if facts.decoys.contains(&t) && wrong_db_seen.insert((t.clone(), r.step.clone())) {
                    mistakes.push(Mistake::WrongDatabase {
                        database: t,
                        step: r.step.clone(),
                        at: r.ts,
                    });
                }
            }
        }
    }
    if let (Some(used), Some(p)) = (&backup_used, pick)
        && *used != facts.right_backup
    {
        let why = match facts.backup(used) {
            Some(b) if b.kind == BackupKind::Truncated => "truncated".to_string(),
            Some(b) if b.kind == BackupKind::AfterDamage => "taken after the damage".to_string(),
            Some(b) => {
                let more = facts
                    .best_loss_s()
                    .map(|best| secs(facts.damage_at - b.taken_at) - best)
                    .unwrap_or(0.0);
                format!("older than the right one: {more:.0} s more changes lost")
            }
            None => "not one of the lab's backups".to_string(),
        };
        mistakes.push(Mistake::WrongBackup {
            picked: used.clone(),
            right: facts.right_backup.clone(),
            why,
            at: p.ts,
        });
    }
    mistakes.sort_by_key(|m| match m {
        Mistake::HazardRestarted { at, .. }
        | Mistake::DestructiveWithoutSnapshot { at, .. }
        | Mistake::WrongBackup { at, .. }
        | Mistake::WrongDatabase { at, .. } => *at,
    });

    let first_stop = records
        .iter()
        .find(|r| finished(r, "stop-services"))
        .map(|r| r.ts);
    let writers_stopped_at = if hazards.is_empty() {
        first_stop
    } else {
        writers_stopped_at
    };

    DrillReport {
        scenario: facts.scenario,
        damage_at: facts.damage_at,
        detected_at: detected.map(|r| r.ts),
        detected_by: detected.map(|r| r.kind.clone()),
        time_to_detect_s: detected.and_then(|r| since(r.ts)),
        writers_stopped_at,
        time_to_stop_writers_s: writers_stopped_at.and_then(since),
        writers_left,
        restored_at,
        time_to_restore_s: restored_at.and_then(since),
        verified,
        // A recovery to just before the damage's commit may end after the
        // moment the lab noted as the damage: nothing was lost then.
        data_lost_s: backup_taken_at.map(|t| secs(facts.damage_at - t).max(0.0)),
        backup_used,
        backup_taken_at,
        best_possible_loss_s: facts.best_loss_s(),
        rows_lost,
        undamaged_rows_lost: None,
        damage_left,
        ground_truth: None,
        mistakes,
    }
}

impl fmt::Display for DrillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = |s: Option<f64>| match s {
            Some(s) => format!("{s:.1} s"),
            None => "never".to_string(),
        };
        writeln!(
            f,
            "drill '{}': damage at {}",
            self.scenario,
            self.damage_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )?;
        writeln!(f, "  time to detect:        {}", t(self.time_to_detect_s))?;
        writeln!(
            f,
            "  time to stop writers:  {}",
            t(self.time_to_stop_writers_s)
        )?;
        if !self.writers_left.is_empty() {
            writeln!(
                f,
                "  writers never stopped: {}",
                self.writers_left.join(", ")
            )?;
        }
        writeln!(f, "  time to restore:       {}", t(self.time_to_restore_s))?;
        writeln!(
            f,
            "  verified:              {}",
            if self.verified { "yes" } else { "no" }
        )?;
        writeln!(
            f,
            "  backup used:           {}",
            self.backup_used.as_deref().unwrap_or("none")
        )?;
        writeln!(
            f,
            "  data lost (RPO):       {} ({} {})",
            t(self.data_lost_s),
            // The best a backup of the catalog could do; a recovery from
            // the WAL archive does better.
            if self
                .backup_used
                .as_deref()
                .is_some_and(|b| b.starts_with("point-in-time recovery"))
            {
                "the best backup would lose"
            } else {
                "best possible"
            },
            t(self.best_possible_loss_s)
        )?;
        for (table, n) in self.rows_lost.iter().filter(|(_, n)| **n != 0) {
            writeln!(f, "  rows lost in {table}: {n}")?;
        }
        if let (Some(per_table), Some(total)) =
            (&self.undamaged_rows_lost, self.undamaged_rows_lost_total())
        {
            writeln!(f, "  rows lost in undamaged tables: {total}")?;
            for (table, n) in per_table.iter().filter(|(_, n)| **n != 0) {
                writeln!(f, "    {table}: {n}")?;
            }
        }
        if let Some(d) = &self.damage_left {
            writeln!(f, "  damage left:           {d}")?;
        }
        if let Some(g) = &self.ground_truth {
            writeln!(
                f,
                "  rows lost: {} (of {} the writer committed before the damage; ground truth)",
                g.rows_lost, g.committed_before_damage
            )?;
            if !g.lost_ids.is_empty() {
                let ids: Vec<String> = g.lost_ids.iter().map(i64::to_string).collect();
                writeln!(f, "    first ids lost: {}", ids.join(", "))?;
            }
            if let Some(e) = &g.damage_effects {
                writeln!(
                    f,
                    "  damage effects left: {} rows missing, {} rows not there before the damage",
                    e.missing, e.extra
                )?;
                if !e.schema_missing.is_empty() {
                    writeln!(
                        f,
                        "    schema objects missing: {}",
                        e.schema_missing.join(", ")
                    )?;
                }
                if !e.schema_extra.is_empty() {
                    writeln!(
                        f,
                        "    schema objects not there before the damage: {}",
                        e.schema_extra.join(", ")
                    )?;
                }
            }
        }
        if self.mistakes.is_empty() {
            writeln!(f, "  mistakes:              none")?;
        } else {
            writeln!(f, "  mistakes:              {}", self.mistakes.len())?;
            for m in &self.mistakes {
                writeln!(f, "    - {m}")?;
            }
        }
        write!(
            f,
            "  result:                {}",
            if self.passed() { "PASSED" } else { "FAILED" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 42, 0).unwrap()
    }

    fn facts() -> LabFacts {
        let d = t0();
        LabFacts {
            scenario: Scenario::RogueSync,
            damage_at: d,
            database: "main".into(),
            db_name: "TovPlay".into(),
            backups: vec![
                BackupFact {
                    name: "b1.sql".into(),
                    taken_at: d - Duration::hours(25),
                    kind: BackupKind::Good,
                },
                BackupFact {
                    name: "b2.sql".into(),
                    taken_at: d - Duration::hours(6),
                    kind: BackupKind::Good,
                },
                BackupFact {
                    name: "b3.sql".into(),
                    taken_at: d - Duration::hours(2),
                    kind: BackupKind::Truncated,
                },
                BackupFact {
                    name: "b4.sql".into(),
                    taken_at: d + Duration::seconds(20),
                    kind: BackupKind::AfterDamage,
                },
            ],
            right_backup: "b2.sql".into(),
            hazards: vec!["sync".into(), "restarter".into(), "watchdog".into()],
            decoys: vec!["tovplay".into()],
            counts_before: [("User".to_string(), 250), ("Game".to_string(), 16)]
                .into_iter()
                .collect(),
            truth: None,
            db_oid: None,
        }
    }

    fn rec(secs_after: i64, kind: &str, step: Option<&str>, data: Value) -> Record {
        Record {
            seq: 0,
            ts: t0() + Duration::seconds(secs_after),
            incident: "drill".into(),
            operator: "tester".into(),
            kind: kind.into(),
            step: step.map(str::to_string),
            target: None,
            command: None,
            exit: None,
            duration_ms: None,
            summary: String::new(),
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn fin(at: i64, step: &str, data: Value) -> Record {
        rec(at, kinds::STEP_FINISHED, Some(step), data)
    }

    /// A clean drill: alert, stop in two rounds, snapshot, right backup,
    /// restore, verify, swap, start only the app.
    fn clean_drill() -> Vec<Record> {
        vec![
            rec(-60, kinds::INCIDENT_OPENED, None, json!({"mode": "drill"})),
            rec(-30, kinds::ALERT, None, json!({"database": "main"})),
            rec(
                5,
                kinds::ALERT,
                None,
                json!({"database": "main", "table": "User"}),
            ),
            fin(
                40,
                "stop-writers",
                json!({"action": "stop-services", "stopped": ["sync"]}),
            ),
            fin(
                70,
                "stop-writers-2",
                json!({"action": "stop-services", "stopped": ["restarter", "watchdog"]}),
            ),
            fin(90, "snapshot", json!({"action": "snapshot"})),
            fin(
                100,
                "pick",
                json!({"action": "pick-backup", "backup": {"name": "b2.sql", "path": "/x/b2.sql"}}),
            ),
            fin(
                130,
                "restore",
                json!({"action": "restore", "target_db": "TovPlay__restore_1",
                       "manifest": {"tables": {"public.\"User\"": 240, "Game": 16}}}),
            ),
            fin(140, "verify", json!({"action": "verify", "ok": true})),
            rec(
                150,
                kinds::STEP_STARTED,
                Some("swap"),
                json!({"action": "swap"}),
            ),
            fin(155, "swap", json!({"action": "swap"})),
            fin(
                160,
                "start",
                json!({"action": "start-services", "started": ["app"]}),
            ),
        ]
    }

    #[test]
    fn clean_drill_scores_times_rpo_and_no_mistakes() {
        let r = score(&facts(), &clean_drill());
        assert_eq!(r.detected_at, Some(t0() + Duration::seconds(5)));
        assert_eq!(r.detected_by.as_deref(), Some(kinds::ALERT));
        assert_eq!(r.time_to_detect_s, Some(5.0));
        // The first stop left two hazards running: the clock stops at the second.
        assert_eq!(r.time_to_stop_writers_s, Some(70.0));
        assert!(r.writers_left.is_empty());
        assert_eq!(r.time_to_restore_s, Some(155.0));
        assert!(r.verified);
        assert_eq!(r.backup_used.as_deref(), Some("b2.sql"));
        assert_eq!(r.data_lost_s, Some(6.0 * 3600.0));
        assert_eq!(r.best_possible_loss_s, Some(6.0 * 3600.0));
        assert_eq!(r.rows_lost.get("User"), Some(&10));
        assert_eq!(r.rows_lost.get("Game"), Some(&0));
        assert!(r.mistakes.is_empty(), "{:?}", r.mistakes);
        assert!(r.passed());
        let text = r.to_string();
        assert!(text.contains("time to stop writers:  70.0 s"), "{text}");
        assert!(text.contains("PASSED"), "{text}");
    }

    /// The pitr path has no pick: the report names the recovery and its
    /// loss is the time between the recovery's end (just before the
    /// destructive commit) and the damage, never the best dump's loss.
    #[test]
    fn the_pitr_path_scores_the_recovery_not_a_backup() {
        let mut recs = clean_drill();
        recs.retain(|r| r.step.as_deref() != Some("pick"));
        recs.insert(
            6,
            fin(
                110,
                "pitr",
                json!({"action": "recover-pitr",
                       "target_text": "just before transaction 826 commits",
                       "evidence": {"xid": 826, "commit_time": "2026-11-23T12:42:01.5Z"}}),
            ),
        );
        let r = score(&facts(), &recs);
        assert_eq!(
            r.backup_used.as_deref(),
            Some("point-in-time recovery, just before transaction 826 commits")
        );
        // The commit came 1.5 s after the moment noted as the damage: 0 lost.
        assert_eq!(r.data_lost_s, Some(0.0));
        assert!(r.mistakes.is_empty(), "{:?}", r.mistakes);
        let text = r.to_string();
        assert!(
            text.contains("data lost (RPO):       0.0 s (the best backup would lose 21600.0 s)"),
            "{text}"
        );
        // Committed 10 s before the noted damage: those 10 s are the loss.
        recs[6].data["evidence"]["commit_time"] = json!("2026-11-23T12:41:50Z");
        assert_eq!(score(&facts(), &recs).data_lost_s, Some(10.0));
    }

    #[test]
    fn mistakes_are_named_with_their_step() {
        let mut recs = clean_drill();
        // No snapshot, the truncated backup, a hazard restarted, the decoy touched.
        recs.retain(|r| r.step.as_deref() != Some("snapshot"));
        for r in &mut recs {
            if r.step.as_deref() == Some("pick") {
                r.data = json!({"action": "pick-backup", "backup": {"path": "/x/b3.sql"}});
            }
            if r.step.as_deref() == Some("start") {
                r.data = json!({"action": "start-services", "started": ["app", "restarter"]});
            }
        }
        let mut decoy = rec(
            20,
            kinds::STEP_STARTED,
            Some("look"),
            json!({"action": "probe"}),
        );
        decoy.target = Some("127.0.0.1:5432/tovplay".into());
        recs.insert(3, decoy);
        let r = score(&facts(), &recs);
        let kinds: Vec<&str> = r
            .mistakes
            .iter()
            .map(|m| match m {
                Mistake::HazardRestarted { .. } => "hazard",
                Mistake::DestructiveWithoutSnapshot { .. } => "no-snapshot",
                Mistake::WrongBackup { .. } => "backup",
                Mistake::WrongDatabase { .. } => "database",
            })
            .collect();
        assert_eq!(kinds, ["database", "backup", "no-snapshot", "hazard"]);
        assert!(matches!(&r.mistakes[1], Mistake::WrongBackup { why, .. } if why == "truncated"));
        assert!(
            matches!(&r.mistakes[3], Mistake::HazardRestarted { service, .. } if service == "restarter")
        );
        assert_eq!(r.data_lost_s, Some(2.0 * 3600.0));
        assert!(!r.passed());
        assert!(
            r.to_string()
                .contains("hazard 'restarter' started again (step 'start')")
        );
    }

    #[test]
    fn the_backup_the_operator_chose_is_the_backup_scored() {
        let mut recs = clean_drill();
        let at = recs
            .iter()
            .position(|r| r.step.as_deref() == Some("pick"))
            .unwrap();
        recs.insert(
            at + 1,
            rec(
                100,
                crate::engine::driver::kinds::BACKUP_CHOSEN,
                Some("pick"),
                json!({"chosen": {"name": "b1.sql", "path": "/x/b1.sql"}, "reason": "why"}),
            ),
        );
        let r = score(&facts(), &recs);
        assert_eq!(r.backup_used.as_deref(), Some("b1.sql"));
        assert!(
            matches!(&r.mistakes[..], [Mistake::WrongBackup { .. }]),
            "{:?}",
            r.mistakes
        );
    }

    #[test]
    fn older_and_after_damage_backups_say_why() {
        for (name, why) in [
            (
                "b1.sql",
                "older than the right one: 68400 s more changes lost",
            ),
            ("b4.sql", "taken after the damage"),
            ("elsewhere.sql", "not one of the lab's backups"),
        ] {
            let mut recs = clean_drill();
            for r in &mut recs {
                if r.step.as_deref() == Some("pick") {
                    r.data = json!({"action": "pick-backup", "backup": {"name": name}});
                }
            }
            let r = score(&facts(), &recs);
            assert!(
                matches!(&r.mistakes[..], [Mistake::WrongBackup { why: w, .. }] if w == why),
                "{name}: {:?}",
                r.mistakes
            );
        }
    }

    #[test]
    fn an_unfinished_drill_reports_what_is_missing() {
        let recs: Vec<Record> = clean_drill().into_iter().take(4).collect();
        let r = score(&facts(), &recs);
        assert_eq!(r.time_to_detect_s, Some(5.0));
        assert_eq!(r.time_to_stop_writers_s, None);
        assert_eq!(r.writers_left, ["restarter", "watchdog"]);
        assert_eq!(r.restored_at, None);
        assert!(!r.verified);
        assert_eq!(r.data_lost_s, None);
        assert!(!r.passed());
        let text = r.to_string();
        assert!(text.contains("time to restore:       never"), "{text}");
        assert!(
            text.contains("writers never stopped: restarter, watchdog"),
            "{text}"
        );
    }

    #[test]
    fn scenarios_without_hazards_count_the_first_stop_and_dropped_needs_no_snapshot() {
        let mut f = facts();
        f.hazards.clear();
        f.scenario = Scenario::DroppedDatabase;
        let recs: Vec<Record> = clean_drill()
            .into_iter()
            .filter(|r| r.step.as_deref() != Some("snapshot"))
            .collect();
        let r = score(&f, &recs);
        assert_eq!(r.time_to_stop_writers_s, Some(40.0));
        assert!(r.mistakes.is_empty(), "{:?}", r.mistakes);
        // The same journal in another scenario is a mistake.
        f.scenario = Scenario::WrongDatabase;
        let r = score(&f, &recs);
        assert!(matches!(
            &r.mistakes[..],
            [Mistake::DestructiveWithoutSnapshot { action, .. }] if action == "swap"
        ));
    }

    fn snap(tables: &[(&str, &[&str])]) -> RowSnapshot {
        tables
            .iter()
            .map(|(t, rows)| {
                let mut m = BTreeMap::new();
                for r in *rows {
                    *m.entry(r.to_string()).or_insert(0) += 1;
                }
                (t.to_string(), m)
            })
            .collect()
    }

    #[test]
    fn rows_lost_in_undamaged_tables_count_missing_and_changed_rows_only() {
        let before = snap(&[
            ("User", &[]),
            ("Game", &["g1", "g2", "g3"]),
            ("GameRequest", &["r1", "r1", "r2"]),
            ("EventLog", &["e1"]),
        ]);
        // A merge: User back, every other row kept, new rows added.
        let merged = snap(&[
            ("User", &["u1", "u2"]),
            ("Game", &["g1", "g2", "g3", "g4"]),
            ("GameRequest", &["r1", "r1", "r2"]),
            ("EventLog", &["e1"]),
        ]);
        // A swap to the backup: later rows gone, one changed back, a
        // duplicate row once only, a table missing.
        let swapped = snap(&[
            ("User", &["u1", "u2"]),
            ("Game", &["g1", "g2", "g3-old"]),
            ("GameRequest", &["r1", "r2"]),
        ]);
        let s = Scenario::WrongDatabase;
        let m = undamaged_rows_lost(s, &before, &merged).unwrap();
        assert!(!m.contains_key("User"));
        assert_eq!(m.values().sum::<i64>(), 0, "{m:?}");
        let w = undamaged_rows_lost(s, &before, &swapped).unwrap();
        assert_eq!(w["Game"], 1);
        assert_eq!(w["GameRequest"], 1);
        assert_eq!(w["EventLog"], 1);
        // The whole database damaged: nothing is undamaged to count.
        assert_eq!(
            undamaged_rows_lost(Scenario::RogueSync, &before, &swapped),
            None
        );

        let mut f = facts();
        f.scenario = s;
        let merge_drill: Vec<Record> = clean_drill()
            .into_iter()
            .map(|mut r| {
                if r.step.as_deref() == Some("swap") {
                    r.step = Some("merge".into());
                    r.data = json!({"action": "merge-tables"});
                }
                r
            })
            .collect();
        let r = score(&f, &merge_drill).with_live_rows(&before, &merged);
        assert_eq!(r.time_to_restore_s, Some(155.0));
        // The backup's rows went into User only: no manifest-based loss elsewhere.
        assert_eq!(r.rows_lost.keys().collect::<Vec<_>>(), ["User"]);
        assert_eq!(r.undamaged_rows_lost_total(), Some(0));
        assert!(r.passed(), "{r}");
        let text = r.to_string();
        assert!(
            text.contains("rows lost in undamaged tables: 0\n"),
            "{text}"
        );
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["undamaged_rows_lost"]["Game"], 0);

        let r = score(&f, &clean_drill()).with_live_rows(&before, &swapped);
        assert_eq!(r.undamaged_rows_lost_total(), Some(3));
        assert!(!r.passed());
        let text = r.to_string();
        assert!(
            text.contains("rows lost in undamaged tables: 3\n"),
            "{text}"
        );
        assert!(text.contains("    GameRequest: 1\n"), "{text}");
        assert!(!text.contains("    User:"), "{text}");
        let back: DrillReport = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);

        // A merge that committed and left orphans: restored, damage named.
        let mut damaged_merge = merge_drill.clone();
        for r in &mut damaged_merge {
            if r.step.as_deref() == Some("merge") && r.kind == kinds::STEP_FINISHED {
                r.kind = kinds::STEP_FAILED.into();
                r.data = json!({"action": "merge-tables", "phase": "act",
                    "error": "foreign-key orphans after the merge: fk: 3 orphan row(s)",
                    "orphans": ["fk: 3 orphan row(s)"]});
            }
        }
        let r = score(&f, &damaged_merge).with_live_rows(&before, &merged);
        assert_eq!(r.time_to_restore_s, Some(155.0));
        assert_eq!(r.undamaged_rows_lost_total(), Some(0));
        assert!(!r.passed());
        assert!(
            r.to_string()
                .contains("damage left:           foreign-key orphans after the merge"),
            "{r}"
        );
        // A merge failing before it wrote (no orphans) restored nothing.
        for r in &mut damaged_merge {
            if r.kind == kinds::STEP_FAILED {
                r.data = json!({"action": "merge-tables", "phase": "preview", "error": "x"});
            }
        }
        let r = score(&f, &damaged_merge);
        assert_eq!((r.restored_at, r.damage_left), (None, None));

        // Not measured: not printed, not in the JSON.
        let r = score(&f, &clean_drill());
        assert!(!r.to_string().contains("undamaged"));
        assert!(
            serde_json::to_value(&r)
                .unwrap()
                .get("undamaged_rows_lost")
                .is_none()
        );
    }

    /// The writer's log scored: rows committed before the damage and
    /// missing count, rows after it do not; the text and the JSON say it.
    #[test]
    fn rows_lost_are_counted_against_the_writers_log() {
        let d = t0();
        let row = |id: i64, ms: i64| CommittedRow {
            id,
            at: d + Duration::milliseconds(ms),
        };
        let truth = GroundTruth {
            table: "GameRequest".into(),
            marker: "lab writer".into(),
            log: "/lab/truth/writer.log".into(),
            rows: vec![
                row(100, -30),
                row(101, -20),
                row(102, -1),
                row(103, 0),
                row(104, 5),
            ],
            damage_started: d,
        };
        // A dump restore: none of the writer's rows.
        let dump = truth_score(&truth, &BTreeSet::new(), None);
        assert_eq!(
            (
                dump.committed_before_damage,
                dump.rows_lost,
                dump.committed_after_damage
            ),
            (3, 3, 2)
        );
        assert_eq!(dump.lost_ids, [100, 101, 102]);
        // Recovery to just before the destructive transaction: all before it,
        // none after (not scored either way).
        let present: BTreeSet<i64> = [100, 101, 102].into_iter().collect();
        let before = snap(&[("User", &["u1", "u2"]), ("Game", &["g1"])]);
        let pitr = truth_score(&truth, &present, Some(damage_effects(&before, &before)));
        assert_eq!(pitr.rows_lost, 0);
        assert!(pitr.lost_ids.is_empty());
        // One row of the three lost: counted, named.
        let one: BTreeSet<i64> = [100, 102, 104].into_iter().collect();
        let s = truth_score(&truth, &one, None);
        assert_eq!((s.rows_lost, s.lost_ids.clone()), (1, vec![101]));

        let r = score(&facts(), &clean_drill()).with_ground_truth(pitr.clone());
        let text = r.to_string();
        assert!(
            text.contains("rows lost: 0 (of 3 the writer committed before the damage"),
            "{text}"
        );
        assert!(
            text.contains("damage effects left: 0 rows missing, 0 rows not there before"),
            "{text}"
        );
        // The RPO line stays.
        assert!(text.contains("data lost (RPO):"), "{text}");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["ground_truth"]["rows_lost"], 0);
        assert_eq!(j["ground_truth"]["committed_before_damage"], 3);
        let back: DrillReport = serde_json::from_value(j).unwrap();
        assert_eq!(back, r);
        let r = score(&facts(), &clean_drill()).with_ground_truth(dump);
        assert!(r.to_string().contains("rows lost: 3 (of 3"), "{r}");
        assert!(
            r.to_string().contains("first ids lost: 100, 101, 102"),
            "{r}"
        );
        // Not measured: absent.
        let r = score(&facts(), &clean_drill());
        assert!(!r.to_string().contains("rows lost: "), "{r}");
        assert!(
            serde_json::to_value(&r)
                .unwrap()
                .get("ground_truth")
                .is_none()
        );
    }

    #[test]
    fn damage_effects_count_missing_and_added_rows_as_multisets() {
        let before = snap(&[("User", &["u1", "u2", "u2"]), ("Game", &["g1"])]);
        // Wiped: everything missing.
        let wiped = snap(&[("User", &[]), ("Game", &[])]);
        assert_eq!(
            damage_effects(&before, &wiped),
            DamageEffects {
                missing: 4,
                ..DamageEffects::default()
            }
        );
        // A database gone entirely reads as an empty snapshot.
        assert_eq!(damage_effects(&before, &RowSnapshot::new()).missing, 4);
        // Migrations from init: a 'Legacy Account' and nothing else.
        let reset = snap(&[("User", &["legacy"]), ("Game", &[])]);
        assert_eq!(
            damage_effects(&before, &reset),
            DamageEffects {
                missing: 4,
                extra: 1,
                ..DamageEffects::default()
            }
        );
        // An older backup: one duplicate row short.
        let older = snap(&[("User", &["u1", "u2"]), ("Game", &["g1"])]);
        assert_eq!(
            damage_effects(&before, &older),
            DamageEffects {
                missing: 1,
                ..DamageEffects::default()
            }
        );
        // Schema objects: the foreign key a sync dropped, an index it added.
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
        let e = DamageEffects::default().with_schema(
            &s(&["con:GameRequest.fkey:f", "idx:User_pkey"]),
            &s(&["idx:User_pkey", "idx:new"]),
        );
        assert_eq!(e.schema_missing, ["con:GameRequest.fkey:f"]);
        assert_eq!(e.schema_extra, ["idx:new"]);
        assert!(!e.none() && DamageEffects::default().none());
        assert_eq!(damage_effects(&before, &before), DamageEffects::default());
        // The rows a damage wrote, taken out of the rows before a fix.
        let audited = snap(&[
            ("User", &[]),
            ("DeleteAudit", &["d1", "d2"]),
            ("Game", &["g1"]),
        ]);
        let added = minus(&audited, &before);
        assert_eq!(added["DeleteAudit"].values().sum::<i64>(), 2);
        assert!(added["Game"].is_empty());
        let kept = minus(&audited, &added);
        assert!(kept["DeleteAudit"].is_empty() && kept["Game"]["g1"] == 1);
    }

    #[test]
    fn report_round_trips_as_json() {
        let r = score(&facts(), &clean_drill());
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["scenario"], "rogue-sync");
        assert_eq!(j["time_to_restore_s"], 155.0);
        let back: DrillReport = serde_json::from_value(j).unwrap();
        assert_eq!(back, r);
    }
}
