//! From journal records and samples to the export document: the summary
//! numbers (detect, stop, RTO, RPO), the timeline with backdated notes in
//! place and noise folded, and the row-count series. Pure: no I/O, and a
//! missing field is "unknown", never an error.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::inventory::Inventory;
use crate::journal::{Record, kinds};
use crate::redact::Redactor;
use crate::samples::Sample;

use super::load::{Incident, Loaded};
use super::model::*;
use super::time::Zone;

/// Kind of the drill score a lab drill journals at its end.
pub const DRILL_REPORT: &str = "drill-report";

/// Runs of at least this many similar events are folded into one line.
pub const FOLD_MIN: usize = 3;

/// A note whose `data.at` is this much before its `ts` is "backdated".
const BACKDATED_AFTER_S: i64 = 60;

/// Default share of rows a table may lose between two samples before the
/// drop counts as damage (the inventory's `drop_alert_share` default).
const DEFAULT_DROP_SHARE: f64 = 0.5;

/// Kinds never folded: each one matters on its own.
const NEVER_FOLD: &[&str] = &[
    kinds::INCIDENT_OPENED,
    kinds::JOURNAL_REPAIRED,
    kinds::NOTE,
    kinds::STEP_STARTED,
    kinds::STEP_FINISHED,
    kinds::STEP_FAILED,
    kinds::STEP_SKIPPED,
    kinds::CONFIRMED,
    kinds::ALERT,
    kinds::IDENTITY_CHANGED,
    kinds::TABLE_RECREATED,
    kinds::HOSTKEY_ACCEPTED,
    DRILL_REPORT,
];

pub struct Context<'a> {
    pub inventory: Option<&'a Inventory>,
    pub zone: Zone,
    pub now: DateTime<Utc>,
    pub redactor: &'a Redactor,
}

fn str_at(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn time_at(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key)?
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key)?.as_u64()
}

fn i64_at(v: &Value, key: &str) -> Option<i64> {
    let x = v.get(key)?;
    x.as_i64().or_else(|| x.as_f64().map(|f| f.round() as i64))
}

fn push_unique(v: &mut Vec<String>, s: impl Into<String>) {
    let s = s.into();
    if !s.is_empty() && !v.contains(&s) {
        v.push(s);
    }
}

/// The name after a `db `/`database `/`host ` prefix of a free-form target.
fn target_named<'t>(target: &'t str, prefixes: &[&str]) -> Option<&'t str> {
    prefixes
        .iter()
        .find_map(|p| target.strip_prefix(p))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Step ids -> action, and per record the action it belongs to.
struct Steps {
    action_by_step: HashMap<String, String>,
}

impl Steps {
    fn action(&self, r: &Record) -> Option<String> {
        str_at(&r.data, "action").or_else(|| {
            r.step
                .as_ref()
                .and_then(|s| self.action_by_step.get(s).cloned())
        })
    }
}

fn is_step_end(kind: &str) -> bool {
    kind == kinds::STEP_FINISHED || kind == kinds::STEP_FAILED
}

/// The report of an incident, phase by phase: the steps' actions, the
/// damage seen in the samples, the spans from it, the backup and data
/// lost, the restore, what was kept, verification, counts, timeline.
pub fn build(inc: &Incident, ctx: &Context<'_>) -> Report {
    let recs: Vec<&Record> = inc.records.iter().map(|l| &l.record).collect();
    let mut warnings = inc.warnings.clone();
    let steps = steps_of(&recs);
    let finished = |action: &str| finished_by(&recs, &steps, action);

    let series = row_series(&inc.samples);
    let damage = first_damage(&series, &recs, ctx.inventory);
    let incident = recs
        .iter()
        .map(|r| r.incident.clone())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| ctx.redactor.redact(&inc.files.id_hint));

    // Detection, stopping, restoring: measured from the first damage seen.
    let after_damage = |r: &&Record| damage.as_ref().is_none_or(|d| r.ts >= d.at);
    let detected = recs
        .iter()
        .copied()
        .filter(after_damage)
        .find(|r| r.kind == kinds::ALERT || r.kind == kinds::INCIDENT_OPENED);
    let stop = finished("stop-services");
    let stop_first = stop.iter().copied().find(after_damage);
    let swaps = finished("swap");
    let restores = finished("restore");
    let restored = swaps
        .iter()
        .copied()
        .find(after_damage)
        .or_else(|| restores.iter().copied().find(after_damage));
    let span_from_damage = |r: Option<&Record>| {
        let r = r?;
        let what = match steps.action(r) {
            Some(a) if r.kind == kinds::STEP_FINISHED => format!("{a} finished"),
            _ => r.kind.replace('-', " "),
        };
        Some(Span::new(
            damage.as_ref()?.at,
            r.ts,
            format!("{what} #{}", r.seq),
        ))
    };
    let stopped_services = stopped_services(&stop);

    // The backup: the last one picked before the restore finished.
    let picks = finished("pick-backup");
    let restore_rec = restores.first().copied();
    let pick = picks
        .iter()
        .copied()
        .rfind(|p| restore_rec.is_none_or(|r| p.seq < r.seq))
        .or_else(|| picks.last().copied());
    // The operator's choice of another candidate of that pick, before the restore.
    let chosen = pick.and_then(|p| {
        recs.iter().copied().rfind(|r| {
            r.kind == crate::engine::driver::kinds::BACKUP_CHOSEN
                && r.step == p.step
                && r.seq > p.seq
                && restore_rec.is_none_or(|x| r.seq < x.seq)
        })
    });
    let backup = pick.map(|p| backup_used(p, chosen));
    let stated_incident_at = pick.and_then(|p| time_at(&p.data, "incident_at"));
    let data_lost = pick.and_then(|p| {
        data_lost(
            chosen.unwrap_or(p),
            stated_incident_at,
            backup.as_ref().and_then(|b| b.taken_at),
            damage.as_ref(),
            &mut warnings,
        )
    });
    let restore = restore_rec.map(restore_done);
    let kept = kept(&finished("snapshot"), &swaps);
    let verification = verifications(&recs, &steps);
    let step_counts = step_counts(&recs);

    let opened = recs.iter().find(|r| r.kind == kinds::INCIDENT_OPENED);
    let mut operators = Vec::new();
    for r in &recs {
        push_unique(&mut operators, r.operator.clone());
    }

    let (databases, hosts) = involved(&recs, &inc.samples, &steps, &stopped_services, ctx);

    let summary = Summary {
        opened_at: opened.map(|r| r.ts),
        mode: opened.and_then(|r| str_at(&r.data, "mode")),
        scenario: opened.and_then(|r| str_at(&r.data, "scenario")),
        operators,
        databases,
        hosts,
        stated_incident_at,
        time_to_detect: span_from_damage(detected),
        time_to_stop_writers: span_from_damage(stop_first),
        stopped_services,
        time_to_restore: span_from_damage(restored),
        first_damage: damage.clone(),
        data_lost,
        backup,
        restore,
        kept,
        verification,
        steps: step_counts,
        drill_reports: drill_reports(&recs),
    };

    let timeline = timeline(&inc.records, &steps, ctx.zone);
    let row_counts = series
        .into_iter()
        .map(|s| {
            s.finish(
                damage.as_ref().map(|d| d.at),
                damage.as_ref().is_some_and(|d| d.source == "alert"),
            )
        })
        .collect();
    let first_ts = recs.first().map_or(ctx.now, |r| r.ts);

    Report {
        schema_version: SCHEMA_VERSION,
        generator: format!("lifeline {}", env!("CARGO_PKG_VERSION")),
        generated_at: ctx.now,
        incident,
        local_offset: ctx.zone.offset_at(first_ts).to_string(),
        integrity: inc.integrity.clone(),
        summary,
        timeline,
        row_counts,
        warnings,
    }
}

/// Step ids and the action each started as.
fn steps_of(recs: &[&Record]) -> Steps {
    let mut action_by_step = HashMap::new();
    for r in recs {
        if r.kind == kinds::STEP_STARTED
            && let (Some(s), Some(a)) = (&r.step, str_at(&r.data, "action"))
        {
            action_by_step.insert(s.clone(), a);
        }
    }
    Steps { action_by_step }
}

/// The records of the steps of `action` that finished.
fn finished_by<'r>(recs: &[&'r Record], steps: &Steps, action: &str) -> Vec<&'r Record> {
    recs.iter()
        .copied()
        .filter(|r| r.kind == kinds::STEP_FINISHED && steps.action(r).as_deref() == Some(action))
        .collect()
}

/// Every service a stop-services step stopped (names, once each).
fn stopped_services(stop: &[&Record]) -> Vec<String> {
    let mut stopped_services = Vec::new();
    for r in stop {
        if let Some(list) = r.data.get("stopped").and_then(Value::as_array) {
            for s in list {
                match s {
                    Value::String(n) => push_unique(&mut stopped_services, n.clone()),
                    other => {
                        if let Some(n) = str_at(other, "name") {
                            push_unique(&mut stopped_services, n);
                        }
                    }
                }
            }
        }
    }
    stopped_services
}

/// The backup a pick-backup step chose, or the operator chose instead
/// (`backup-chosen`).
fn backup_used(p: &Record, chosen: Option<&Record>) -> BackupUsed {
    let b = match chosen {
        Some(c) => c.data.get("chosen").cloned().unwrap_or(Value::Null),
        None => p.data.get("backup").cloned().unwrap_or(Value::Null),
    };
    BackupUsed {
        name: str_at(&b, "name"),
        path: str_at(&b, "path"),
        taken_at: time_at(&b, "taken_at"),
        sha256: str_at(&b, "sha256"),
        size: u64_at(&b, "size"),
        seq: chosen.map_or(p.seq, |c| c.seq),
    }
}

/// Data lost: incident time minus the backup's time (computed), else the
/// journal's rpo_s, else from the first damage seen; a disagreement
/// between journal and computation is a warning.
fn data_lost(
    p: &Record,
    stated_incident_at: Option<DateTime<Utc>>,
    taken: Option<DateTime<Utc>>,
    damage: Option<&Damage>,
    warnings: &mut Vec<String>,
) -> Option<DataLost> {
    let journal_rpo = i64_at(&p.data, "rpo_s");
    match (stated_incident_at, taken, journal_rpo) {
        (Some(i), Some(t), j) => {
            let secs = (i - t).num_seconds();
            if let Some(j) = j.filter(|j| (j - secs).abs() > 1) {
                warnings.push(format!(
                    "the journal's rpo_s ({j} s) differs from incident_at minus the backup's taken_at ({secs} s); this document uses the latter"
                ));
            }
            Some(DataLost {
                seconds: secs,
                backup_taken_at: Some(t),
                incident_at: Some(i),
                basis: "computed".into(),
            })
        }
        (i, t, Some(j)) => Some(DataLost {
            seconds: j,
            backup_taken_at: t,
            incident_at: i,
            basis: "journal".into(),
        }),
        (None, Some(t), None) => damage.map(|d| DataLost {
            seconds: (d.at - t).num_seconds(),
            backup_taken_at: Some(t),
            incident_at: Some(d.at),
            basis: "first-damage".into(),
        }),
        _ => None,
    }
}

/// The restore step's manifest.
fn restore_done(r: &Record) -> RestoreDone {
    let m = r.data.get("manifest").cloned().unwrap_or(Value::Null);
    let tables = m
        .get("tables")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_i64().map(|n| (k.clone(), n)))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    RestoreDone {
        at: r.ts,
        target_db: str_at(&r.data, "target_db").or_else(|| r.target.clone()),
        tables,
        statements: u64_at(&m, "statements"),
        bytes: u64_at(&m, "bytes"),
        sha256: str_at(&m, "sha256"),
        duration_ms: u64_at(&m, "duration_ms").or(r.duration_ms),
        seq: r.seq,
    }
}

/// What was kept: snapshots, and the damaged databases swaps set aside.
fn kept(snapshots: &[&Record], swaps: &[&Record]) -> Kept {
    let mut kept = Kept::default();
    for r in snapshots {
        kept.snapshots.push(Snapshot {
            at: r.ts,
            path: str_at(&r.data, "path"),
            sha256: str_at(&r.data, "sha256"),
            size: u64_at(&r.data, "size"),
            database: str_at(&r.data, "database").or_else(|| r.target.clone()),
        });
    }
    for r in swaps {
        if let Some(d) = str_at(&r.data, "damaged") {
            push_unique(&mut kept.damaged_databases, d);
        }
    }
    kept
}

/// Every verify step that ended, with its failed checks.
fn verifications(recs: &[&Record], steps: &Steps) -> Vec<Verification> {
    recs.iter()
        .filter(|r| is_step_end(&r.kind) && steps.action(r).as_deref() == Some("verify"))
        .map(|r| {
            let checks = r
                .data
                .get("checks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let failed = checks
                .iter()
                .filter(|c| c.get("ok").and_then(Value::as_bool) == Some(false))
                .map(|c| Check {
                    kind: str_at(c, "kind").unwrap_or_else(|| "unknown".into()),
                    target: str_at(c, "target").unwrap_or_else(|| "unknown".into()),
                    found: str_at(c, "found").unwrap_or_default(),
                })
                .collect();
            let ok =
                r.data
                    .get("ok")
                    .and_then(Value::as_bool)
                    .or(if r.kind == kinds::STEP_FAILED {
                        Some(false)
                    } else {
                        None
                    });
            Verification {
                at: r.ts,
                database: str_at(&r.data, "database").or_else(|| r.target.clone()),
                ok,
                checks: checks.len(),
                failed,
                seq: r.seq,
            }
        })
        .collect()
}

/// Steps finished, failed (which) and skipped.
fn step_counts(recs: &[&Record]) -> StepCounts {
    let mut step_counts = StepCounts::default();
    for r in recs {
        match r.kind.as_str() {
            kinds::STEP_FINISHED => step_counts.finished += 1,
            kinds::STEP_FAILED => {
                step_counts.failed += 1;
                let step = r.step.clone().unwrap_or_else(|| format!("seq {}", r.seq));
                step_counts.failed_steps.push(step.clone());
                let s = |k: &str| r.data.get(k).and_then(Value::as_str).map(str::to_string);
                step_counts.failures.push(StepFailureRow {
                    seq: r.seq,
                    at: r.ts,
                    step,
                    action: s("action"),
                    phase: s("phase"),
                    class: s("class").map(|c| crate::term::visible(&c).into_owned()),
                    message: crate::term::visible(&s("error").unwrap_or_else(|| r.summary.clone()))
                        .into_owned(),
                });
            }
            kinds::STEP_SKIPPED => step_counts.skipped += 1,
            _ => {}
        }
    }
    step_counts
}

/// The drill reports of a lab run.
fn drill_reports(recs: &[&Record]) -> Vec<DrillReport> {
    recs.iter()
        .filter(|r| r.kind == DRILL_REPORT)
        .map(|r| DrillReport {
            at: r.ts,
            summary: r.summary.clone(),
            data: r.data.clone(),
            seq: r.seq,
        })
        .collect()
}

/// Databases and hosts the incident touched, in order of first mention.
fn involved(
    recs: &[&Record],
    samples: &[Sample],
    steps: &Steps,
    stopped: &[String],
    ctx: &Context<'_>,
) -> (Vec<String>, Vec<String>) {
    let mut dbs = Vec::new();
    let mut hosts = Vec::new();
    for s in samples {
        push_unique(&mut dbs, s.database.clone());
    }
    for r in recs {
        let action = steps.action(r);
        let d = &r.data;
        if (r.kind == kinds::ALERT
            || matches!(action.as_deref(), Some("verify" | "snapshot")) && is_step_end(&r.kind))
            && let Some(x) = str_at(d, "database")
        {
            push_unique(&mut dbs, x);
        }
        if action.as_deref() == Some("swap")
            && let Some(x) = str_at(d, "live")
        {
            push_unique(&mut dbs, x);
        }
        if let Some(t) = &r.target {
            if let Some(x) = target_named(t, &["db ", "database ", "db:", "database:"]) {
                push_unique(&mut dbs, x);
            } else if ctx.inventory.is_some_and(|i| i.database(t).is_some()) {
                push_unique(&mut dbs, t.clone());
            }
            if let Some(x) = target_named(t, &["host ", "host:"]) {
                push_unique(&mut hosts, x);
            } else if ctx.inventory.is_some_and(|i| i.host(t).is_some()) {
                push_unique(&mut hosts, t.clone());
            }
        }
        collect_hosts(d, &mut hosts);
    }
    if let Some(inv) = ctx.inventory {
        for name in &dbs {
            if let Some(h) = inv.database(name).and_then(|d| d.host.as_ref()) {
                push_unique(&mut hosts, ctx.redactor.redact(h.get_ref()));
            }
        }
        for name in stopped {
            if let Some(s) = inv.service(name) {
                push_unique(&mut hosts, ctx.redactor.redact(s.host.get_ref()));
            }
        }
    }
    for s in samples {
        push_unique(&mut hosts, s.identity.server.clone());
    }
    (dbs, hosts)
}

fn collect_hosts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "host" => push_unique(out, s.clone()),
                    _ => collect_hosts(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_hosts(x, out)),
        _ => {}
    }
}

/// Seconds before the first damage's record within which a sample is the
/// round that raised it (never a "before" count).
const DAMAGE_ROUND_S: i64 = 2;

/// One exactly counted table, in time order.
struct Series {
    database: String,
    schema: String,
    table: String,
    points: Vec<Point>,
    oids: Vec<u32>,
}

impl Series {
    /// `by_alert`: the first damage is an alert (journaled just after the
    /// round that raised it), not a drop between two samples.
    fn finish(self, damage_at: Option<DateTime<Utc>>, by_alert: bool) -> TableSeries {
        // An alert is journaled just after the round that raised it: that
        // round shows the damage, not what came before. So the last round
        // before an alert is skipped when it is that close to it (one round
        // only: the one before it is the count). A drop between two samples
        // is dated at the damaged sample itself: nothing to skip.
        let before = match damage_at {
            Some(d) => {
                let mut earlier = self.points.iter().rev().filter(|p| p.ts < d).peekable();
                if by_alert
                    && earlier
                        .peek()
                        .is_some_and(|p| d - p.ts <= chrono::Duration::seconds(DAMAGE_ROUND_S))
                {
                    earlier.next();
                }
                earlier.next().map(|p| p.rows)
            }
            None => self.points.first().map(|p| p.rows),
        };
        let lowest = self
            .points
            .iter()
            .min_by_key(|p| p.rows)
            .copied()
            .unwrap_or(Point {
                ts: DateTime::<Utc>::MIN_UTC,
                rows: 0,
            });
        let last = self.points.last().copied().unwrap_or(lowest);
        TableSeries {
            database: self.database,
            schema: self.schema,
            table: self.table,
            before,
            lowest: lowest.rows,
            lowest_at: lowest.ts,
            after: last.rows,
            after_at: last.ts,
            recreated: self.oids.len() > 1,
            points: self.points,
        }
    }
}

fn row_series(samples: &[Sample]) -> Vec<Series> {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by_key(|s| s.ts);
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut map: HashMap<(String, String, String), Series> = HashMap::new();
    for s in sorted {
        for t in s.tables.iter().filter(|t| t.exact) {
            let key = (s.database.clone(), t.schema.clone(), t.name.clone());
            let e = map.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Series {
                    database: s.database.clone(),
                    schema: t.schema.clone(),
                    table: t.name.clone(),
                    points: Vec::new(),
                    oids: Vec::new(),
                }
            });
            e.points.push(Point {
                ts: s.ts,
                rows: t.rows,
            });
            if !e.oids.contains(&t.oid) {
                e.oids.push(t.oid);
            }
        }
    }
    order.into_iter().filter_map(|k| map.remove(&k)).collect()
}

/// The first sample where a table lost at least its drop share of rows (or
/// fell below its `expect.min`), or the first alert, whichever is earlier.
fn first_damage(series: &[Series], recs: &[&Record], inv: Option<&Inventory>) -> Option<Damage> {
    let mut best: Option<Damage> = None;
    for s in series {
        let db = inv.and_then(|i| i.database(&s.database));
        let expect = db.and_then(|d| d.expect.get(&s.table));
        let share = expect
            .and_then(|e| e.max_drop)
            .or(db.and_then(|d| d.drop_alert_share))
            .unwrap_or(DEFAULT_DROP_SHARE);
        let min = expect.and_then(|e| e.min);
        for w in s.points.windows(2) {
            let (p, c) = (w[0], w[1]);
            let dropped = p.rows > 0
                && c.rows < p.rows
                && ((p.rows - c.rows) as f64 / p.rows as f64 >= share
                    || min.is_some_and(|m| c.rows < m && p.rows >= m));
            if dropped {
                if best.as_ref().is_none_or(|b| c.ts < b.at) {
                    best = Some(Damage {
                        at: c.ts,
                        source: "sample".into(),
                        database: Some(s.database.clone()),
                        table: Some(s.table.clone()),
                        before: Some(p.rows),
                        after: Some(c.rows),
                        seq: None,
                    });
                }
                break;
            }
        }
    }
    if let Some(a) = recs.iter().find(|r| r.kind == kinds::ALERT)
        && best.as_ref().is_none_or(|b| a.ts < b.at)
    {
        best = Some(Damage {
            at: a.ts,
            source: "alert".into(),
            database: str_at(&a.data, "database"),
            table: str_at(&a.data, "table"),
            before: i64_at(&a.data, "before"),
            after: i64_at(&a.data, "after"),
            seq: Some(a.seq),
        });
    }
    best
}

fn outcome(r: &Record) -> Option<String> {
    let exit = r.exit.filter(|e| *e != 0).map(|e| format!(" (exit {e})"));
    match r.kind.as_str() {
        kinds::STEP_FINISHED => Some(format!("ok{}", exit.unwrap_or_default())),
        kinds::STEP_FAILED => Some(format!("failed{}", exit.unwrap_or_default())),
        kinds::STEP_SKIPPED => Some("skipped".into()),
        _ => r.exit.map(|e| format!("exit {e}")),
    }
}

fn event(
    l: &Loaded,
    steps: &Steps,
    started: &HashMap<String, DateTime<Utc>>,
    zone: Zone,
) -> TimelineEvent {
    let r = &l.record;
    let backdated = (r.kind == kinds::NOTE)
        .then(|| time_at(&r.data, "at"))
        .flatten()
        .filter(|at| (r.ts - *at).num_seconds() >= BACKDATED_AFTER_S);
    let at = backdated.unwrap_or(r.ts);
    let duration_ms = r.duration_ms.or_else(|| {
        if !is_step_end(&r.kind) {
            return None;
        }
        let s = started.get(r.step.as_ref()?)?;
        u64::try_from((r.ts - *s).num_milliseconds()).ok()
    });
    TimelineEvent {
        seq: r.seq,
        at,
        ts: r.ts,
        local: zone.local_string(at),
        operator: r.operator.clone(),
        kind: r.kind.clone(),
        step: r.step.clone(),
        action: steps.action(r),
        target: r.target.clone(),
        command: r.command.clone(),
        exit: r.exit,
        outcome: outcome(r),
        duration_ms,
        summary: r.summary.clone(),
        added_later: backdated.map(|_| r.ts),
        verified: l.verified,
        data: r.data.clone(),
    }
}

/// Every event in journal order, backdated notes moved to the time they
/// describe, runs of similar events folded.
fn timeline(records: &[Loaded], steps: &Steps, zone: Zone) -> Vec<TimelineItem> {
    let mut started = HashMap::new();
    let mut regular = Vec::new();
    let mut backdated = Vec::new();
    for l in records {
        let r = &l.record;
        let e = event(l, steps, &started, zone);
        if r.kind == kinds::STEP_STARTED
            && let Some(s) = &r.step
        {
            started.insert(s.clone(), r.ts);
        }
        if e.added_later.is_some() {
            backdated.push(e);
        } else {
            regular.push(e);
        }
    }
    backdated.sort_by_key(|e| (e.at, e.seq));
    let mut placed = Vec::with_capacity(regular.len() + backdated.len());
    let mut notes = backdated.into_iter().peekable();
    for e in regular {
        while let Some(n) = notes.next_if(|n| n.at < e.at) {
            placed.push(n);
        }
        placed.push(e);
    }
    placed.extend(notes);
    fold(placed)
}

type FoldKey = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn fold_key(e: &TimelineEvent) -> Option<FoldKey> {
    (!NEVER_FOLD.contains(&e.kind.as_str())).then(|| {
        (
            e.kind.clone(),
            e.step.clone(),
            e.target.clone(),
            e.command.clone(),
            e.outcome.clone(),
        )
    })
}

fn fold(events: Vec<TimelineEvent>) -> Vec<TimelineItem> {
    let mut out = Vec::new();
    let mut run: Vec<TimelineEvent> = Vec::new();
    let flush = |run: &mut Vec<TimelineEvent>, out: &mut Vec<TimelineItem>| {
        if run.len() >= FOLD_MIN {
            let first = &run[0];
            let last = &run[run.len() - 1];
            out.push(TimelineItem::Folded(Folded {
                count: run.len(),
                seqs: run.iter().map(|e| e.seq).collect(),
                from: first.at,
                to: last.at,
                local_from: first.local.clone(),
                local_to: last.local.clone(),
                kind: first.kind.clone(),
                operator: first.operator.clone(),
                step: first.step.clone(),
                target: first.target.clone(),
                command: first.command.clone(),
                outcome: first.outcome.clone(),
                summary: first.summary.clone(),
                verified: run.iter().all(|e| e.verified),
            }));
            run.clear();
        } else {
            out.extend(run.drain(..).map(TimelineItem::Event));
        }
    };
    for e in events {
        let key = fold_key(&e);
        let same = key.is_some()
            && run
                .first()
                .is_some_and(|f| fold_key(f) == key && f.operator == e.operator);
        if !same {
            flush(&mut run, &mut out);
        }
        if key.is_some() {
            run.push(e);
        } else {
            out.push(TimelineItem::Event(e));
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::load::IncidentFiles;
    use crate::export::model::Integrity;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 10, 12, m, s).unwrap()
    }

    fn rec(seq: u64, ts: DateTime<Utc>, kind: &str, step: Option<&str>, data: Value) -> Loaded {
        Loaded {
            record: Record {
                seq,
                ts,
                incident: "i".into(),
                operator: "op".into(),
                kind: kind.into(),
                step: step.map(String::from),
                target: None,
                command: None,
                exit: None,
                duration_ms: None,
                summary: format!("event {seq}"),
                data,
                prev: String::new(),
                hash: String::new(),
            },
            verified: true,
        }
    }

    fn build_from(records: Vec<Loaded>) -> Report {
        let inc = Incident {
            files: IncidentFiles {
                journal: "j".into(),
                samples: "s".into(),
                id_hint: "i".into(),
            },
            records,
            integrity: Integrity {
                intact: true,
                records: 0,
                verified: 0,
                first_bad_line: None,
                reason: None,
                torn_last_line: None,
                journal_sha256: String::new(),
                last_hash: None,
                signature_status: String::new(),
                signature_detail: None,
                head: None,
                checkpoint: None,
            },
            samples: vec![],
            warnings: vec![],
        };
        let red = Redactor::new();
        build(
            &inc,
            &Context {
                inventory: None,
                zone: Zone::Fixed(chrono::FixedOffset::east_opt(0).unwrap()),
                now: t(59, 0),
                redactor: &red,
            },
        )
    }

    #[test]
    fn a_failure_keeps_its_class_and_message_with_control_bytes_escaped() {
        let r = build_from(vec![rec(
            1,
            t(0, 0),
            kinds::STEP_FAILED,
            Some("probe"),
            json!({"action": "probe", "phase": "action", "class": "unreachable",
                   "error": "host said \u{1b}[2Jhi\u{0}x"}),
        )]);
        let f = &r.summary.steps.failures[0];
        assert_eq!(f.step, "probe");
        assert_eq!(f.action.as_deref(), Some("probe"));
        assert_eq!(f.phase.as_deref(), Some("action"));
        assert_eq!(f.class.as_deref(), Some("unreachable"));
        assert_eq!(f.message, "host said \\x1b[2Jhi\\x00x");
    }

    #[test]
    fn the_round_that_raised_the_damage_is_not_its_before_count() {
        let series = |pts: &[(i64, i64)]| Series {
            database: "main".into(),
            schema: "public".into(),
            table: "User".into(),
            points: pts
                .iter()
                .map(|(ms, rows)| Point {
                    ts: t(42, 0) + chrono::Duration::milliseconds(*ms),
                    rows: *rows,
                })
                .collect(),
            oids: vec![1],
        };
        // The only round is the damaged one, 15 ms before its alert: unknown.
        let d = Some(t(42, 0) + chrono::Duration::milliseconds(15));
        assert_eq!(series(&[(0, 0)]).finish(d, true).before, None);
        // A healthy round 10 s earlier is the before count.
        let b = |pts: &[(i64, i64)], d, by_alert| series(pts).finish(d, by_alert).before;
        assert_eq!(b(&[(-10_000, 250), (0, 0)], d, true), Some(250));
        // One second earlier (the lab's count from just before the damage)
        // too: only the alert's own round is skipped.
        assert_eq!(b(&[(-1_000, 250), (0, 0)], d, true), Some(250));
        // A drop between two samples is dated at the damaged one: nothing
        // is skipped.
        assert_eq!(
            b(&[(-1_000, 250), (0, 0)], Some(t(42, 0)), false),
            Some(250)
        );
    }

    #[test]
    fn missing_fields_are_unknown_not_errors() {
        // An engine that records steps without the conventional data.
        let r = build_from(vec![
            rec(
                1,
                t(0, 0),
                kinds::STEP_STARTED,
                Some("p"),
                json!({"action": "pick-backup"}),
            ),
            rec(2, t(0, 5), kinds::STEP_FINISHED, Some("p"), Value::Null),
            rec(
                3,
                t(1, 0),
                kinds::STEP_FINISHED,
                Some("v"),
                json!({"action": "verify"}),
            ),
            rec(
                4,
                t(2, 0),
                kinds::STEP_FAILED,
                Some("x"),
                json!({"action": "verify", "checks": [{"ok": false}]}),
            ),
            rec(
                5,
                t(3, 0),
                DRILL_REPORT,
                None,
                json!({"score": 87, "missed": ["snapshot"]}),
            ),
        ]);
        let s = &r.summary;
        assert!(
            s.first_damage.is_none() && s.time_to_detect.is_none() && s.time_to_restore.is_none()
        );
        let b = s.backup.as_ref().unwrap();
        assert_eq!((b.name.as_ref(), b.taken_at), (None, None));
        assert!(s.data_lost.is_none());
        assert_eq!(s.verification.len(), 2);
        assert_eq!(s.verification[0].ok, None);
        assert_eq!(s.verification[1].ok, Some(false));
        assert_eq!(s.verification[1].failed[0].kind, "unknown");
        assert_eq!(s.steps.failed_steps, ["x"]);
        assert_eq!(s.steps.failures.len(), 1);
        assert_eq!(s.steps.failures[0].class, None);
        assert_eq!(s.drill_reports[0].data["score"], 87);
        // Durations measured from the step's start when not recorded.
        let TimelineItem::Event(e) = &r.timeline[1] else {
            panic!()
        };
        assert_eq!(e.duration_ms, Some(5000));
        assert_eq!(e.action.as_deref(), Some("pick-backup"));
    }

    #[test]
    fn rpo_falls_back_to_first_damage_and_warns_on_disagreement() {
        let pick = |seq, data| rec(seq, t(5, 0), kinds::STEP_FINISHED, Some("p"), data);
        let alert = rec(
            1,
            t(1, 0),
            kinds::ALERT,
            None,
            json!({"table": "User", "before": 22, "after": 0}),
        );
        let r = build_from(vec![
            alert.clone(),
            pick(
                2,
                json!({"action": "pick-backup", "backup": {"taken_at": "2026-12-10T11:00:00Z"}}),
            ),
        ]);
        let d = r.summary.data_lost.unwrap();
        assert_eq!((d.seconds, d.basis.as_str()), (3660, "first-damage"));
        let r = build_from(vec![
            alert,
            pick(
                2,
                json!({"action": "pick-backup", "incident_at": "2026-12-10T12:00:00Z",
                "backup": {"taken_at": "2026-12-10T11:00:00Z"}, "rpo_s": 10}),
            ),
        ]);
        assert_eq!(r.summary.data_lost.unwrap().seconds, 3600);
        assert!(
            r.warnings.iter().any(|w| w.contains("rpo_s (10 s)")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn the_backup_the_operator_chose_is_the_backup_used_and_its_loss() {
        let r = build_from(vec![
            rec(
                1,
                t(5, 0),
                kinds::STEP_FINISHED,
                Some("p"),
                json!({"action": "pick-backup", "incident_at": "2026-12-10T12:00:00Z",
                "backup": {"name": "newest.sql", "taken_at": "2026-12-10T11:00:00Z"}, "rpo_s": 3600}),
            ),
            rec(
                2,
                t(6, 0),
                crate::engine::driver::kinds::BACKUP_CHOSEN,
                Some("p"),
                json!({"chosen": {"name": "older.sql", "path": "/b/older.sql", "sha256": "ab",
                "taken_at": "2026-12-10T06:00:00Z"}, "preselected": {"name": "newest.sql"},
                "reason": "why", "rpo_s": 21600}),
            ),
        ]);
        let b = r.summary.backup.as_ref().unwrap();
        assert_eq!(b.name.as_deref(), Some("older.sql"));
        assert_eq!(b.sha256.as_deref(), Some("ab"));
        let d = r.summary.data_lost.unwrap();
        assert_eq!(d.seconds, 21600);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn folding_needs_three_alike_and_never_folds_steps() {
        let probe = |seq, s| {
            let mut l = rec(seq, t(0, s), kinds::PROBE, None, Value::Null);
            l.record.target = Some("host a".into());
            l
        };
        let mut v = vec![probe(1, 0), probe(2, 1)];
        v.push(rec(3, t(0, 2), kinds::STEP_STARTED, Some("s"), Value::Null));
        v.push(rec(4, t(0, 3), kinds::STEP_STARTED, Some("s"), Value::Null));
        v.push(rec(5, t(0, 4), kinds::STEP_STARTED, Some("s"), Value::Null));
        v.extend([probe(6, 5), probe(7, 6), probe(8, 7)]);
        let mut other = probe(9, 8);
        other.record.target = Some("host b".into());
        v.push(other);
        let r = build_from(v);
        let shape: Vec<String> = r
            .timeline
            .iter()
            .map(|i| match i {
                TimelineItem::Event(e) => e.seq.to_string(),
                TimelineItem::Folded(f) => format!("{}x", f.count),
            })
            .collect();
        assert_eq!(shape, ["1", "2", "3", "4", "5", "3x", "9"]);
    }
}
