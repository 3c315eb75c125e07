//! The document's wording and layout, shared by Markdown and HTML: the
//! integrity banner, summary rows, row-count rows and timeline rows as
//! small inline fragments each renderer escapes its own way. No I/O; it
//! never emits markup itself.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::*;
use super::time::{Zone, human_ms, human_secs, utc_string};

/// An inline fragment; renderers escape each kind for their format.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(String),
    Em(String),
}

use Inline::{Code, Em, Strong, Text};

fn t(s: impl Into<String>) -> Inline {
    Text(s.into())
}
fn c(s: impl Into<String>) -> Inline {
    Code(s.into())
}

pub const UNKNOWN: &str = "unknown";

/// `2026-12-10 12:42:30 UTC (14:42:30 local)`.
pub fn when(t: DateTime<Utc>, zone: Zone) -> String {
    let l = zone.to_local(t);
    let same_day = l.date_naive() == t.date_naive();
    let local = if same_day {
        l.format("%H:%M:%S").to_string()
    } else {
        l.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    format!("{} ({local} local)", utc_string(t))
}

fn hhmm(t: DateTime<Utc>, zone: Zone) -> String {
    zone.to_local(t).format("%H:%M").to_string()
}

fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

fn list_code(items: &[String]) -> Vec<Inline> {
    if items.is_empty() {
        return vec![t(UNKNOWN)];
    }
    let mut out = Vec::new();
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(t(", "));
        }
        out.push(c(x.clone()));
    }
    out
}

fn span_line(s: &Option<Span>, zone: Zone) -> Vec<Inline> {
    match s {
        Some(s) => vec![
            Strong(human_secs(s.seconds)),
            t(format!(
                " (first damage {} → {} at {})",
                hms_local(s.from, zone),
                s.until,
                when(s.to, zone)
            )),
        ],
        None => vec![t(UNKNOWN)],
    }
}

fn opt_code(label: &str, v: &Option<String>) -> Vec<Inline> {
    match v {
        Some(x) => vec![t(format!("{label} ")), c(x.clone())],
        None => vec![t(format!("{label} {UNKNOWN}"))],
    }
}

/// Integrity: (intact, the sentence stating it).
pub fn integrity(r: &Report) -> (bool, Vec<Inline>) {
    let i = &r.integrity;
    let hash = i
        .last_hash
        .as_deref()
        .map(|h| h.get(..16).unwrap_or(h).to_string());
    let mut v = if i.intact {
        vec![
            Strong("Journal integrity: intact.".into()),
            t(format!(
                " {} record(s); the hash chain verifies from the first line to the last.",
                i.verified
            )),
        ]
    } else {
        vec![
            Strong("WARNING: the journal's hash chain is BROKEN".into()),
            t(format!(
                " at line {line}: {}. {} of {} record(s) verified; the events from line {line} on are shown but cannot be trusted (marked ⚠ unverified). Keep the journal file as evidence.",
                i.reason.as_deref().unwrap_or(UNKNOWN),
                i.verified,
                i.records,
                line = i.first_bad_line.unwrap_or(0),
            )),
        ]
    };
    if let Some(h) = hash {
        v.push(t(" Last verified hash "));
        v.push(c(format!("{h}…")));
        v.push(t(","));
    }
    v.push(t(" journal SHA-256 "));
    v.push(c(i.journal_sha256.clone()));
    v.push(t("."));
    if let Some(n) = i.torn_last_line {
        v.push(t(format!(
            " Line {n} is a torn last line (a write interrupted by a crash); it recorded nothing."
        )));
    }
    let detail = i.signature_detail.clone().unwrap_or_default();
    match i.signature_status.as_str() {
        "signed" => {
            v.push(Strong(" Signatures: verified.".into()));
            v.push(t(format!(" {detail}.")));
        }
        "failed" => {
            v.push(Strong(" WARNING: the journal's signatures FAIL".into()));
            v.push(t(format!(
                " ({detail}): the records may have been rewritten; do not trust this timeline."
            )));
        }
        "unsigned" => {
            v.push(Strong(" NOT SIGNED:".into()));
            v.push(t(format!(" {detail}.")));
        }
        _ => {}
    }
    if let Some((seq, hash)) = &i.head {
        v.push(t(format!(" Head: seq {seq}, hash ")));
        v.push(c(hash.clone()));
        v.push(t(" (compare it with the head anchors)."));
    }
    if let Some(cp) = &i.checkpoint {
        v.push(t(format!(
            " Last checkpoint: seq {} signed by {} ({}), signature ",
            cp["covers_seq"],
            cp["signer"]["principal"].as_str().unwrap_or("?"),
            cp["signer"]["key"].as_str().unwrap_or("?")
        )));
        v.push(c(cp["signature"]
            .as_str()
            .unwrap_or_default()
            .replace('\n', " ")));
        v.push(t("."));
    }
    (i.intact && i.signature_status != "failed", v)
}

pub fn generated_line(r: &Report) -> Vec<Inline> {
    vec![t(format!(
        "Generated {} by {} from the incident journal. Times are UTC, with the operator's local time (UTC{}).",
        utc_string(r.generated_at),
        r.generator,
        r.local_offset
    ))]
}

pub fn summary_rows(r: &Report, zone: Zone) -> Vec<(String, Vec<Inline>)> {
    let s = &r.summary;
    let mut rows: Vec<(String, Vec<Inline>)> = Vec::new();
    let mut row = |k: &str, v: Vec<Inline>| rows.push((k.to_string(), v));

    let mut inc = vec![c(r.incident.clone())];
    if let Some(m) = &s.mode {
        inc.push(t(format!(" ({m}")));
        if let Some(sc) = &s.scenario {
            inc.push(t(", scenario "));
            inc.push(c(sc.clone()));
        }
        inc.push(t(")"));
    }
    if let Some(o) = s.opened_at {
        inc.push(t(format!(", opened {}", when(o, zone))));
    }
    row("Incident", inc);
    row("Operators", list_code(&s.operators));
    row("Databases", list_code(&s.databases));
    row("Hosts", list_code(&s.hosts));

    row(
        "First damage seen",
        match &s.first_damage {
            None => vec![t(
                "unknown (no row-count drop in the samples and no alert in the journal)",
            )],
            Some(d) => {
                let mut v = vec![Strong(when(d.at, zone))];
                if let Some(tb) = &d.table {
                    v.push(t(": "));
                    v.push(c(tb.clone()));
                }
                if let Some(db) = &d.database {
                    v.push(t(" in "));
                    v.push(c(db.clone()));
                }
                let n = |x: Option<i64>| x.map_or(UNKNOWN.to_string(), |x| x.to_string());
                if d.before.is_some() || d.after.is_some() {
                    v.push(t(format!(": {} → {} rows", n(d.before), n(d.after))));
                }
                v.push(t(match (d.source.as_str(), d.seq) {
                    ("alert", Some(q)) => format!(" (alert, journal #{q})"),
                    ("sample", _) => " (row-count sample)".to_string(),
                    (other, _) => format!(" ({other})"),
                }));
                v
            }
        },
    );
    row(
        "Incident time stated",
        match s.stated_incident_at {
            Some(i) => vec![t(when(i, zone))],
            None => vec![t("not stated (no pick-backup step recorded one)")],
        },
    );
    row("Time to detect", span_line(&s.time_to_detect, zone));
    let mut stop = span_line(&s.time_to_stop_writers, zone);
    if !s.stopped_services.is_empty() {
        stop.push(t("; stopped: "));
        stop.extend(list_code(&s.stopped_services));
    }
    row("Time to stop writers", stop);
    row("Time to restore (RTO)", span_line(&s.time_to_restore, zone));
    row(
        "Data lost (RPO)",
        match &s.data_lost {
            None => vec![t(
                "unknown (no backup pick with a backup time was recorded)",
            )],
            Some(d) => {
                let mut v = vec![Strong(human_secs(d.seconds))];
                let mut parts = Vec::new();
                if let Some(b) = d.backup_taken_at {
                    parts.push(format!("backup taken {}", utc_string(b)));
                }
                if let Some(i) = d.incident_at {
                    parts.push(format!("incident {}", utc_string(i)));
                }
                if !parts.is_empty() {
                    v.push(t(format!(" of changes ({})", parts.join(", "))));
                }
                match d.basis.as_str() {
                    "journal" => v.push(Em(" as recorded by the runbook (rpo_s)".into())),
                    "first-damage" => v.push(Em(
                        " measured to the first damage seen: no incident time was stated".into(),
                    )),
                    _ => {}
                }
                v
            }
        },
    );
    row(
        "Backup used",
        match &s.backup {
            None => vec![t("none recorded")],
            Some(b) => {
                let mut v = opt_code("name", &b.name);
                v.push(t(", "));
                v.extend(opt_code("file", &b.path));
                v.push(t(format!(
                    ", taken {}",
                    b.taken_at.map_or(UNKNOWN.into(), utc_string)
                )));
                if let Some(sz) = b.size {
                    v.push(t(format!(", {sz} bytes")));
                }
                v.push(t(", "));
                v.extend(opt_code("SHA-256", &b.sha256));
                v
            }
        },
    );
    if let Some(rs) = &s.restore {
        let mut v = opt_code("into", &rs.target_db);
        v.push(t(format!(" at {}", when(rs.at, zone))));
        if !rs.tables.is_empty() {
            let rows: i64 = rs.tables.values().sum();
            v.push(t(format!("; {} table(s), {rows} row(s)", rs.tables.len())));
        }
        if let Some(n) = rs.statements {
            v.push(t(format!(", {n} statement(s)")));
        }
        if let Some(ms) = rs.duration_ms {
            v.push(t(format!(", took {}", human_ms(ms))));
        }
        if let Some(h) = &rs.sha256 {
            v.push(t(", dump SHA-256 "));
            v.push(c(h.clone()));
        }
        row("Restore", v);
    }
    let mut kept = Vec::new();
    for sn in &s.kept.snapshots {
        if !kept.is_empty() {
            kept.push(t("; "));
        }
        kept.push(t("snapshot "));
        kept.push(c(sn.path.clone().unwrap_or_else(|| UNKNOWN.into())));
        if let Some(db) = &sn.database {
            kept.push(t(" of "));
            kept.push(c(db.clone()));
        }
        kept.push(t(", "));
        kept.extend(opt_code("SHA-256", &sn.sha256));
    }
    for d in &s.kept.damaged_databases {
        if !kept.is_empty() {
            kept.push(t("; "));
        }
        kept.push(t("damaged database kept as "));
        kept.push(c(d.clone()));
    }
    if kept.is_empty() {
        kept.push(t("nothing recorded (no snapshot, no swap)"));
    }
    row("What was kept", kept);

    let mut ver = Vec::new();
    for v in &s.verification {
        if !ver.is_empty() {
            ver.push(t("; "));
        }
        ver.push(match v.ok {
            Some(true) => Strong("passed".into()),
            Some(false) => Strong("FAILED".into()),
            None => Strong("no verdict".into()),
        });
        ver.push(t(if v.failed.is_empty() {
            format!(": {} check(s) on ", v.checks)
        } else {
            format!(": {} of {} check(s) failed on ", v.failed.len(), v.checks)
        }));
        ver.push(c(v.database.clone().unwrap_or_else(|| UNKNOWN.into())));
        ver.push(t(format!(" at {}", hms(v.at))));
        for f in &v.failed {
            ver.push(t(" · "));
            ver.push(c(format!("{} {}", f.kind, f.target)));
            if !f.found.is_empty() {
                ver.push(t(format!(": {}", f.found)));
            }
        }
    }
    if ver.is_empty() {
        ver.push(t("no verification recorded"));
    }
    row("Verification", ver);

    let st = &s.steps;
    let mut steps = vec![t(format!(
        "{} finished, {} failed, {} skipped",
        st.finished, st.failed, st.skipped
    ))];
    if !st.failed_steps.is_empty() {
        steps.push(t(" (failed: "));
        steps.extend(list_code(&st.failed_steps));
        steps.push(t(")"));
    }
    row("Steps", steps);
    // Each failure in full: which step, its class and the operator's sentence.
    for f in &st.failures {
        let mut v = vec![c(f.step.clone())];
        if let Some(a) = &f.action {
            v.push(t(format!(" ({a})")));
        }
        v.push(t(format!(" at {}", hms(f.at))));
        v.push(t(", class "));
        v.push(c(f.class.clone().unwrap_or_else(|| UNKNOWN.into())));
        if let Some(p) = &f.phase {
            v.push(t(format!(", phase {p}")));
        }
        v.push(t(": "));
        v.push(t(f.message.clone()));
        row("Failed step", v);
    }

    for d in &s.drill_reports {
        let mut v = vec![t(d.summary.clone())];
        if let Value::Object(m) = &d.data {
            for (k, x) in m {
                let val = match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                v.push(t(" · "));
                v.push(c(format!("{k}: {val}")));
            }
        }
        row("Drill report", v);
    }
    rows
}

/// Time axis shared by the charts: every sample, the damage and the restore.
pub struct Axis {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub damage: Option<DateTime<Utc>>,
    pub restored: Option<DateTime<Utc>>,
}

pub fn axis(r: &Report) -> Option<Axis> {
    let damage = r.summary.first_damage.as_ref().map(|d| d.at);
    let restored = r.summary.time_to_restore.as_ref().map(|s| s.to);
    let times = r
        .row_counts
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.ts))
        .chain(damage)
        .chain(restored);
    let from = times.clone().min()?;
    let to = times.max()?;
    Some(Axis {
        from,
        to,
        damage,
        restored,
    })
}

impl Axis {
    /// 0..=1 position of `t` on the axis.
    pub fn frac(&self, t: DateTime<Utc>) -> f64 {
        let span = (self.to - self.from).num_milliseconds();
        if span <= 0 {
            return 0.0;
        }
        ((t - self.from).num_milliseconds() as f64 / span as f64).clamp(0.0, 1.0)
    }

    fn column(&self, t: DateTime<Utc>, width: usize) -> usize {
        ((self.frac(t) * (width.saturating_sub(1)) as f64).round() as usize).min(width - 1)
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline of `points` over the axis, `width` columns: each column
/// shows the lowest count in it (a drop is never averaged away), `0` is `▁`,
/// any rows at all `▂` or higher; columns before the first sample are blank.
pub fn sparkline(points: &[Point], axis: &Axis, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let max = points.iter().map(|p| p.rows).max().unwrap_or(0).max(1);
    let mut cols: Vec<Option<i64>> = vec![None; width];
    for p in points {
        let i = axis.column(p.ts, width);
        cols[i] = Some(cols[i].map_or(p.rows, |x: i64| x.min(p.rows)));
    }
    // Carry the last count across columns with no sample of their own.
    let mut last = None;
    cols.iter()
        .map(|c| {
            let v = c.or(last);
            last = v;
            match v {
                None => ' ',
                Some(v) if v <= 0 => BARS[0],
                Some(v) => {
                    let level = 1 + ((v as f64 / max as f64) * 6.0).round() as usize;
                    BARS[level.min(7)]
                }
            }
        })
        .collect()
}

/// A line under a sparkline with `D` at the first damage and `R` at the
/// restore (`*` when both fall in one column).
pub fn marker_line(axis: &Axis, width: usize) -> String {
    let mut line = vec![' '; width];
    if width == 0 {
        return String::new();
    }
    for (t, ch) in [(axis.damage, 'D'), (axis.restored, 'R')] {
        if let Some(t) = t {
            let i = axis.column(t, width);
            line[i] = if line[i] == ' ' { ch } else { '*' };
        }
    }
    line.into_iter().collect::<String>().trim_end().to_string()
}

pub fn legend(axis: &Axis, zone: Zone) -> String {
    let mut s = format!(
        "{} … {} local",
        zone.to_local(axis.from).format("%Y-%m-%d %H:%M"),
        zone.to_local(axis.to).format("%H:%M")
    );
    if let Some(d) = axis.damage {
        s.push_str(&format!("; D = first damage {}", hms_local(d, zone)));
    }
    if let Some(r) = axis.restored {
        s.push_str(&format!("; R = restored {}", hms_local(r, zone)));
    }
    s
}

fn hms_local(t: DateTime<Utc>, zone: Zone) -> String {
    zone.to_local(t).format("%H:%M:%S").to_string()
}

pub fn table_name(s: &TableSeries) -> String {
    if s.schema == "public" || s.schema.is_empty() {
        s.table.clone()
    } else {
        format!("{}.{}", s.schema, s.table)
    }
}

/// Row-count table: database, table, before, lowest, after, samples.
pub fn row_count_rows(r: &Report, zone: Zone) -> Vec<Vec<Vec<Inline>>> {
    r.row_counts
        .iter()
        .map(|s| {
            let mut name = vec![c(table_name(s))];
            if s.recreated {
                name.push(Em(" re-created (new OID)".into()));
            }
            let dropped = s.before.is_some_and(|b| s.lowest < b);
            let lowest = format!("{} at {}", s.lowest, hms_local(s.lowest_at, zone));
            vec![
                vec![c(s.database.clone())],
                name,
                vec![t(s.before.map_or("n/a".into(), |b| b.to_string()))],
                vec![if dropped { Strong(lowest) } else { t(lowest) }],
                vec![t(s.after.to_string())],
                vec![t(s.points.len().to_string())],
            ]
        })
        .collect()
}

pub const ROW_COUNT_HEADER: [&str; 6] =
    ["Database", "Table", "Before", "Lowest", "After", "Samples"];

pub const TIMELINE_HEADER: [&str; 10] = [
    "#", "UTC", "Local", "Operator", "Step", "Target", "Event", "Command", "Outcome", "Duration",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Plain,
    Note,
    Failed,
    Alert,
    Folded,
}

pub struct TimelineRow {
    pub kind: RowKind,
    pub verified: bool,
    pub cells: Vec<Vec<Inline>>,
}

/// Timeline rows: dates are written when the day changes, times otherwise.
pub fn timeline_rows(r: &Report, zone: Zone) -> Vec<TimelineRow> {
    let mut last_utc_day = None;
    let mut last_local_day = None;
    let mut stamp = |at: DateTime<Utc>| {
        let l = zone.to_local(at);
        let u = if last_utc_day != Some(at.date_naive()) {
            last_utc_day = Some(at.date_naive());
            at.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            hms(at)
        };
        let lo = if last_local_day != Some(l.date_naive()) {
            last_local_day = Some(l.date_naive());
            l.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            l.format("%H:%M:%S").to_string()
        };
        (u, lo)
    };
    let code_or_empty = |s: &Option<String>| s.iter().map(|x| c(x.clone())).collect::<Vec<_>>();
    let mut rows = Vec::new();
    for item in &r.timeline {
        match item {
            TimelineItem::Event(e) => {
                let (u, l) = stamp(e.at);
                let kind = match e.kind.as_str() {
                    "note" => RowKind::Note,
                    "alert" => RowKind::Alert,
                    "step-failed" => RowKind::Failed,
                    _ => RowKind::Plain,
                };
                let mut ev = if e.kind == "note" {
                    vec![Strong("Note:".into()), t(format!(" {}", e.summary))]
                } else {
                    vec![c(e.kind.clone()), t(format!(" {}", e.summary))]
                };
                if let Some(a) = e.added_later {
                    ev.push(Em(format!(" (added later at {})", utc_string(a))));
                }
                let mut seq = vec![t(e.seq.to_string())];
                if !e.verified {
                    seq.insert(0, Strong("⚠ unverified ".into()));
                }
                let mut step = code_or_empty(&e.step);
                if let Some(a) = e.action.as_ref().filter(|a| Some(*a) != e.step.as_ref()) {
                    step.push(t(format!(" ({a})")));
                }
                rows.push(TimelineRow {
                    kind,
                    verified: e.verified,
                    cells: vec![
                        seq,
                        vec![t(u)],
                        vec![t(l)],
                        vec![t(e.operator.clone())],
                        step,
                        code_or_empty(&e.target),
                        ev,
                        code_or_empty(&e.command),
                        vec![t(e.outcome.clone().unwrap_or_default())],
                        vec![t(e.duration_ms.map(human_ms).unwrap_or_default())],
                    ],
                });
            }
            TimelineItem::Folded(f) => {
                let (u1, l1) = stamp(f.from);
                let (u2, l2) = stamp(f.to);
                let range = |a: String, b: String| if a == b { a } else { format!("{a}–{b}") };
                let (h1, h2) = (hhmm(f.from, zone), hhmm(f.to, zone));
                let minutes = if h1 == h2 { h1 } else { format!("{h1}–{h2}") };
                let first = f.seqs.first().copied().unwrap_or(0);
                let last = f.seqs.last().copied().unwrap_or(0);
                let mut seq = vec![t(format!("{first}–{last}"))];
                if !f.verified {
                    seq.insert(0, Strong("⚠ unverified ".into()));
                }
                rows.push(TimelineRow {
                    kind: RowKind::Folded,
                    verified: f.verified,
                    cells: vec![
                        seq,
                        vec![t(range(u1, u2))],
                        vec![t(range(l1, l2))],
                        vec![t(f.operator.clone())],
                        code_or_empty(&f.step),
                        code_or_empty(&f.target),
                        vec![
                            Em(format!("… {} similar ", f.count)),
                            c(f.kind.clone()),
                            Em(format!(" events {minutes}")),
                            t(format!(" (first: {})", f.summary)),
                        ],
                        code_or_empty(&f.command),
                        vec![t(f.outcome.clone().unwrap_or_default())],
                        vec![],
                    ],
                });
            }
        }
    }
    rows
}
