//! Export checks that work on any incident directory: run the built binary
//! in every format, recompute the summary numbers and row counts straight
//! from journal.jsonl and samples.jsonl (independently of the export code),
//! and compare. Also builds a rogue-sync incident through the Journal API,
//! the way a headless runbook run writes it. Use with `mod export_support;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use lifeline::engine::types::DbIdentity;
use lifeline::export::model::{Report, TimelineItem};
use lifeline::journal::{self, Entry, Journal, Record, kinds};
use lifeline::redact::Redactor;
use lifeline::samples::{self, Sample, TableCount};
use serde_json::{Value, json};

/// The built binary with a private state dir.
pub fn lifeline(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.arg("--state-dir")
        .arg(state)
        .env_remove("LIFELINE_INVENTORY")
        .env("NO_COLOR", "1");
    c
}

/// What an export run produced.
pub struct Exports {
    pub md: String,
    pub json: String,
    pub html: String,
    pub report: Report,
    /// Exit code of each run (md, json, html).
    pub codes: [i32; 3],
}

#[derive(Default)]
pub struct CheckOpts<'a> {
    /// Passed as -i to every export.
    pub inventory: Option<&'a Path>,
    /// Environment for the exports (the inventory's password_env values).
    pub env: Vec<(&'a str, &'a str)>,
    /// Strings that must appear in no format.
    pub secrets: Vec<&'a str>,
    /// `--tz` for the exports (default +00:00).
    pub tz: Option<&'a str>,
}

/// Exports `incident` (an incident dir) in md, json and html into `out_dir`.
pub fn export_all(incident: &Path, out_dir: &Path, opts: &CheckOpts<'_>) -> Exports {
    let mut texts = Vec::new();
    let mut codes = [0; 3];
    for (i, fmt) in ["md", "json", "html"].iter().enumerate() {
        let out = out_dir.join(format!("export.{fmt}"));
        let mut c = lifeline(out_dir);
        if let Some(inv) = opts.inventory {
            c.arg("-i").arg(inv);
        }
        for (k, v) in &opts.env {
            c.env(k, v);
        }
        let o = c
            .arg("export")
            .arg(incident)
            .args(["--format", fmt, "--tz", opts.tz.unwrap_or("+00:00"), "-o"])
            .arg(&out)
            .output()
            .unwrap();
        codes[i] = o.status.code().unwrap();
        assert!(
            codes[i] == 0 || codes[i] == 1,
            "export {fmt}: exit {}: {}",
            codes[i],
            String::from_utf8_lossy(&o.stderr)
        );
        texts.push(std::fs::read_to_string(&out).unwrap());
    }
    let json = texts[1].clone();
    let report: Report =
        serde_json::from_str(&json).expect("JSON export matches the documented schema");
    // Round trip: the typed struct holds every member the file has.
    let back = serde_json::to_value(&report).unwrap();
    let orig: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(back, orig, "JSON export does not round-trip through Report");
    Exports {
        md: texts[0].clone(),
        json,
        html: texts[2].clone(),
        report,
        codes,
    }
}

/// (database, table).
type Key = (String, String);

/// Numbers recomputed from the raw files.
#[derive(Debug, Default)]
pub struct Expected {
    pub damage_at: Option<DateTime<Utc>>,
    pub detect_s: Option<i64>,
    pub stop_s: Option<i64>,
    pub rto_s: Option<i64>,
    pub rpo_s: Option<i64>,
    /// (database, table) -> (before, lowest, after)
    pub rows: BTreeMap<(String, String), (Option<i64>, i64, i64)>,
    pub seqs: Vec<u64>,
}

fn action_map(recs: &[Record]) -> HashMap<String, String> {
    recs.iter()
        .filter(|r| r.kind == kinds::STEP_STARTED)
        .filter_map(|r| Some((r.step.clone()?, r.data.get("action")?.as_str()?.to_string())))
        .collect()
}

fn action(r: &Record, m: &HashMap<String, String>) -> Option<String> {
    r.data
        .get("action")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| r.step.as_ref().and_then(|s| m.get(s).cloned()))
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// Recomputes the summary numbers and row counts from the incident's files.
/// Damage: the first sample where an exact table lost half its rows or
/// more, or the first alert, whichever is earlier.
pub fn expected(incident: &Path) -> Expected {
    let recs = journal::read_records(&incident.join("journal.jsonl")).unwrap();
    let samples_path = incident.join("samples.jsonl");
    let samples = if samples_path.exists() {
        samples::read(&samples_path).unwrap()
    } else {
        vec![]
    };
    let mut series: BTreeMap<Key, Vec<(DateTime<Utc>, i64)>> = BTreeMap::new();
    let mut sorted = samples.clone();
    sorted.sort_by_key(|s| s.ts);
    for s in &sorted {
        for t in s.tables.iter().filter(|t| t.exact) {
            series
                .entry((s.database.clone(), t.name.clone()))
                .or_default()
                .push((s.ts, t.rows));
        }
    }
    let mut damage: Option<DateTime<Utc>> = None;
    let mut by_alert = false;
    for pts in series.values() {
        if let Some(w) = pts
            .windows(2)
            .find(|w| w[0].1 > 0 && (w[0].1 - w[1].1) * 2 >= w[0].1)
        {
            damage = Some(damage.map_or(w[1].0, |d| d.min(w[1].0)));
        }
    }
    if let Some(a) = recs.iter().find(|r| r.kind == kinds::ALERT)
        && damage.is_none_or(|d| a.ts < d)
    {
        damage = Some(a.ts);
        by_alert = true;
    }
    let m = action_map(&recs);
    let finished = |a: &str| {
        recs.iter()
            .filter(|r| r.kind == kinds::STEP_FINISHED && action(r, &m).as_deref() == Some(a))
            .filter(|r| damage.is_none_or(|d| r.ts >= d))
            .map(|r| r.ts)
            .next()
    };
    let since = |t: Option<DateTime<Utc>>| Some((t? - damage?).num_seconds());
    let detect = recs
        .iter()
        .filter(|r| damage.is_none_or(|d| r.ts >= d))
        .find(|r| r.kind == kinds::ALERT || r.kind == kinds::INCIDENT_OPENED)
        .map(|r| r.ts);
    let restore_seq = recs
        .iter()
        .find(|r| r.kind == kinds::STEP_FINISHED && action(r, &m).as_deref() == Some("restore"))
        .map(|r| r.seq);
    let is_pick = |r: &&Record| {
        r.kind == kinds::STEP_FINISHED && action(r, &m).as_deref() == Some("pick-backup")
    };
    let pick = recs
        .iter()
        .rfind(|r| is_pick(r) && restore_seq.is_none_or(|s| r.seq < s))
        .or_else(|| recs.iter().rfind(is_pick));
    let rpo = pick.and_then(|p| {
        let inc = time(&p.data["incident_at"]);
        let taken = time(&p.data["backup"]["taken_at"]);
        match (inc, taken) {
            (Some(i), Some(t)) => Some((i - t).num_seconds()),
            _ => p.data["rpo_s"].as_i64(),
        }
    });
    let rows = series
        .into_iter()
        .map(|(k, pts)| {
            // The round that raised an alert (sampled up to 2 s before its
            // record) shows the damage: skipped, the round before it counts.
            let before = match damage {
                Some(d) => {
                    let earlier: Vec<_> = pts.iter().rev().filter(|p| p.0 < d).collect();
                    let skip = usize::from(
                        by_alert
                            && earlier
                                .first()
                                .is_some_and(|p| d - p.0 <= Duration::seconds(2)),
                    );
                    earlier.get(skip).map(|p| p.1)
                }
                None => pts.first().map(|p| p.1),
            };
            let lowest = pts.iter().map(|p| p.1).min().unwrap();
            let after = pts.last().unwrap().1;
            (k, (before, lowest, after))
        })
        .collect();
    Expected {
        damage_at: damage,
        detect_s: since(detect),
        stop_s: since(finished("stop-services")),
        rto_s: since(finished("swap").or_else(|| finished("restore"))),
        rpo_s: rpo,
        rows,
        seqs: recs.iter().map(|r| r.seq).collect(),
    }
}

/// The alphanumeric runs of a secret (5 characters or more).
pub fn secret_parts(secret: &str) -> Vec<&str> {
    secret
        .split(|c: char| !c.is_alphanumeric())
        .filter(|p| p.len() >= 5)
        .collect()
}

/// Exports `incident` in every format and checks it against the raw files:
/// summary numbers, row counts (table and sparkline text), every event
/// present once and in order (backdated notes at their time), the integrity
/// statement, planted secrets absent, HTML self-contained with a chart.
pub fn check_export(incident: &Path, out_dir: &Path, opts: &CheckOpts<'_>) -> Exports {
    let ex = export_all(incident, out_dir, opts);
    let want = expected(incident);
    let r = &ex.report;
    let s = &r.summary;

    // Integrity: an intact journal exports with exit 0 and says so.
    let intact = journal::verify_file(&incident.join("journal.jsonl"))
        .unwrap()
        .intact();
    assert_eq!(r.integrity.intact, intact);
    for (fmt, code) in ["md", "json", "html"].iter().zip(ex.codes) {
        assert_eq!(code, if intact { 0 } else { 1 }, "{fmt} exit code");
    }
    if intact {
        assert!(
            ex.md.contains("Journal integrity: intact"),
            "md integrity line"
        );
        assert!(ex.html.contains("Journal integrity: intact"));
    }

    // Summary numbers.
    assert_eq!(
        s.first_damage.as_ref().map(|d| d.at),
        want.damage_at,
        "first damage"
    );
    assert_eq!(
        s.time_to_detect.as_ref().map(|x| x.seconds),
        want.detect_s,
        "time to detect"
    );
    assert_eq!(
        s.time_to_stop_writers.as_ref().map(|x| x.seconds),
        want.stop_s,
        "time to stop writers"
    );
    assert_eq!(
        s.time_to_restore.as_ref().map(|x| x.seconds),
        want.rto_s,
        "RTO"
    );
    assert_eq!(s.data_lost.as_ref().map(|x| x.seconds), want.rpo_s, "RPO");
    for (secs, label) in [
        (want.detect_s, "Time to detect"),
        (want.stop_s, "Time to stop writers"),
        (want.rto_s, "Time to restore (RTO)"),
        (want.rpo_s, "Data lost (RPO)"),
    ] {
        let line = ex
            .md
            .lines()
            .find(|l| l.starts_with(&format!("| **{label}** |")))
            .unwrap_or_else(|| panic!("no summary row '{label}' in md"));
        match secs {
            Some(x) => assert!(
                line.contains(&format!("**{}**", lifeline::export::time::human_secs(x))),
                "{line}"
            ),
            None => assert!(line.contains("unknown"), "{line}"),
        }
    }

    // Row counts.
    let got: BTreeMap<(String, String), (Option<i64>, i64, i64)> = r
        .row_counts
        .iter()
        .map(|t| {
            (
                (t.database.clone(), t.table.clone()),
                (t.before, t.lowest, t.after),
            )
        })
        .collect();
    assert_eq!(got, want.rows, "row counts");
    for ((db, table), (before, lowest, after)) in &want.rows {
        let b = before.map_or("?".into(), |b| b.to_string());
        let needle = format!("{b} → {lowest} → {after}");
        assert!(
            ex.md.lines().any(|l| l.starts_with(&format!("{db}."))
                && l.contains(table.as_str())
                && l.ends_with(&needle)),
            "md sparkline line for {db}.{table} ending '{needle}'"
        );
    }

    // Every event once; journal order kept; backdated notes at their time.
    let mut seen = Vec::new();
    let mut prev_regular: Option<u64> = None;
    let mut placed: Vec<DateTime<Utc>> = Vec::new();
    for item in &r.timeline {
        match item {
            TimelineItem::Event(e) => {
                seen.push(e.seq);
                placed.push(e.at);
                if e.added_later.is_none() {
                    if let Some(p) = prev_regular {
                        assert!(e.seq > p, "seq {} after {p}: journal order broken", e.seq);
                    }
                    prev_regular = Some(e.seq);
                } else {
                    assert_eq!(e.kind, "note");
                    assert!(e.at < e.ts, "a backdated note describes an earlier time");
                    assert!(
                        ex.md.contains(&format!(
                            "added later at {}",
                            lifeline::export::time::utc_string(e.ts)
                        )),
                        "md marks note {} as added later",
                        e.seq
                    );
                }
            }
            TimelineItem::Folded(f) => {
                assert!(f.count >= 3 && f.count == f.seqs.len());
                for q in &f.seqs {
                    if let Some(p) = prev_regular {
                        assert!(*q > p, "folded seq {q} after {p}");
                    }
                    prev_regular = Some(*q);
                }
                seen.extend(&f.seqs);
                placed.push(f.from);
                placed.push(f.to);
                assert!(
                    ex.md.contains(&format!("… {} similar", f.count)),
                    "md shows the fold of {}",
                    f.count
                );
            }
        }
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    assert_eq!(
        sorted_seen, want.seqs,
        "every journal event appears exactly once"
    );
    // Placement times never go backwards while the journal's clock did not.
    let recs = journal::read_records(&incident.join("journal.jsonl")).unwrap();
    if recs.windows(2).all(|w| w[0].ts <= w[1].ts) {
        assert!(
            placed.windows(2).all(|w| w[0] <= w[1]),
            "timeline out of time order"
        );
    }

    // Secrets.
    for secret in &opts.secrets {
        for (fmt, text) in [("md", &ex.md), ("json", &ex.json), ("html", &ex.html)] {
            assert!(
                !text.contains(secret),
                "secret '{secret}' leaked into {fmt}"
            );
            // Escaping may have changed its punctuation: look for its words too.
            for part in secret_parts(secret) {
                assert!(
                    !text.contains(part),
                    "secret part '{part}' leaked into {fmt}"
                );
            }
        }
    }

    // HTML: self-contained, chart present when there are row counts.
    let h = &ex.html;
    assert!(h.starts_with("<!DOCTYPE html>"));
    for banned in ["<script", "<link", " src=", " href=", "url(", "@import"] {
        assert!(!h.contains(banned), "HTML contains '{banned}'");
    }
    if !r.row_counts.is_empty() {
        assert!(
            h.contains("<svg") && h.contains("class=\"series\""),
            "SVG chart"
        );
    }
    ex
}

/// The secret the rogue-sync builder plants (an inventory password the
/// journal's writer did not know about, so it reached the journal). Its
/// `&` and `<` change when escaped, so only redaction before escaping hides it.
pub const PLANTED: &str = "Inv3nt0ry&S3cret<42";

/// Times the builder controls.
pub struct Built {
    pub dir: PathBuf,
    pub id: String,
    /// The sample where User dropped 22 -> 0.
    pub damage_at: DateTime<Utc>,
    pub incident_at: DateTime<Utc>,
    pub backup_taken_at: DateTime<Utc>,
    /// Backdated notes' times, in the order appended.
    pub backdated: Vec<DateTime<Utc>>,
}

fn identity() -> DbIdentity {
    DbIdentity {
        server: "127.0.0.1:5432".into(),
        system_identifier: "7312345678901234567".into(),
        server_started_at: None,
        oid: Some(16384),
        database: "TovPlay".into(),
    }
}

/// Writes a rogue-sync incident under `state` as a headless run of the
/// runbook would: samples first (every 30 s for 40 min, User 22 -> 0 ->
/// 23), then the journal through `Journal::open`/`append` (so its own
/// timestamps are "now"); times the export must use are in the data.
pub fn build_rogue_sync(state: &Path) -> Built {
    let id = "20261210-124200-rogue-sync".to_string();
    let dir = state.join("incidents").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let now = Utc::now().trunc_subsecs(0);
    let t0 = now - Duration::minutes(45);
    let damage_at = t0 + Duration::minutes(10);
    let restored_sample = t0 + Duration::minutes(38);
    let sp = dir.join("samples.jsonl");
    let mut t = t0;
    while t <= t0 + Duration::minutes(40) {
        let user = if t < damage_at {
            22
        } else if t < restored_sample {
            0
        } else {
            23
        };
        let tc = |name: &str, oid: u32, rows: i64, exact: bool| TableCount {
            schema: "public".into(),
            name: name.into(),
            oid,
            rows,
            exact,
        };
        samples::append(
            &sp,
            &Sample {
                ts: t,
                database: "main".into(),
                identity: identity(),
                tables: vec![
                    tc("User", 16390, user, true),
                    tc("GameRequest", 16400, 182, true),
                    tc(
                        "ScheduledSession",
                        16410,
                        if t < restored_sample { 16 } else { 15 },
                        true,
                    ),
                    tc("Game", 16420, 12, false),
                ],
            },
        )
        .unwrap();
        t += Duration::seconds(30);
    }

    let incident_at = damage_at - Duration::seconds(30);
    let backup_taken_at = incident_at - Duration::hours(53) - Duration::minutes(6);
    let mut j = Journal::open(&dir.join("journal.jsonl"), &id, "dana", Redactor::new()).unwrap();
    let mut a = |e: Entry| j.append(e).unwrap();
    a(Entry::new(
        kinds::INCIDENT_OPENED,
        "incident opened: rogue sync wiped User",
    )
    .data(json!({"scenario": "rogue-sync", "mode": "drill", "inventory": "lab.toml"})));
    a(Entry::new(kinds::ALERT, "main.User dropped from 22 to 0 rows")
        .target("db main")
        .data(json!({"database": "main", "table": "User", "before": 22, "after": 0, "rule": "max_drop"})));
    for i in 0..10 {
        a(Entry::new(kinds::PROBE, "prod: 3 writers to main")
            .target("host prod")
            .data(json!({"host": "prod", "round": i})));
    }
    let step = |id: &str, action: &str| {
        Entry::new(kinds::STEP_STARTED, format!("{id} started"))
            .step(id)
            .data(json!({"action": action}))
    };
    a(step("stop-writers", "stop-services").target("host prod"));
    a(Entry::new(kinds::COMMAND, "stop the sync unit")
        .step("stop-writers")
        .target("host prod")
        .command("systemctl stop db-realtime-sync.service")
        .exit(0)
        .duration_ms(420));
    a(Entry::new(kinds::COMMAND, format!("check token {PLANTED}"))
        .step("stop-writers")
        .target("host prod")
        .command(format!(
            "curl -s -H 'X-Token: {PLANTED}' http://127.0.0.1:9/health"
        ))
        .exit(7)
        .duration_ms(15)
        .data(json!({"output": format!("denied for {PLANTED}")})));
    a(Entry::new(kinds::STEP_FINISHED, "3 writers stopped and held")
        .step("stop-writers")
        .target("host prod")
        .data(json!({"action": "stop-services", "stopped": ["db-realtime-sync.service", "cron:db_realtime_sync", "ultimate_protection.sh"], "held_s": 30})));
    a(step("snapshot", "snapshot").target("db main"));
    a(Entry::new(kinds::STEP_FINISHED, "snapshot of the damaged database taken")
        .step("snapshot")
        .target("db main")
        .data(json!({"action": "snapshot", "path": "/var/lib/lifeline/snap/TovPlay.dump", "size": 48213, "sha256": "9f2c".repeat(16), "database": "main"})));
    a(step("pick", "pick-backup"));
    a(Entry::new(kinds::STEP_FINISHED, "picked tovplay_external_backup")
        .step("pick")
        .data(json!({
            "backup": {"name": "external", "path": "/opt/backups/external/tovplay_external.sql",
                       "taken_at": journal_ts(backup_taken_at), "sha256": "ab12".repeat(16), "size": 90210},
            "incident_at": journal_ts(incident_at),
            "rpo_s": (incident_at - backup_taken_at).num_seconds()
        })));
    a(Entry::new(kinds::CONFIRMED, "operator typed 'TovPlay'").step("restore"));
    a(step("restore", "restore").target("db main"));
    a(
        Entry::new(kinds::STEP_FINISHED, "restored into TovPlay__restore")
            .step("restore")
            .target("db main")
            .duration_ms(5400)
            .data(
                json!({"action": "restore", "target_db": "TovPlay__restore_1", "manifest": {
            "tables": {"User": 23, "GameRequest": 182, "ScheduledSession": 15},
            "statements": 41, "duration_ms": 5400, "sha256": "ab12".repeat(16), "bytes": 90210}}),
            ),
    );
    a(step("verify", "verify").target("db TovPlay__restore_1"));
    a(Entry::new(kinds::STEP_FINISHED, "verify: 3 checks passed")
        .step("verify")
        .data(
            json!({"action": "verify", "database": "TovPlay__restore_1", "ok": true, "checks": [
            {"kind": "fk", "target": "GameRequest->User", "ok": true, "found": 0},
            {"kind": "unique", "target": "User.email", "ok": true, "found": 0},
            {"kind": "min-rows", "target": "User", "ok": true, "found": 23}]}),
        ));
    a(step("swap", "swap").target("db main"));
    a(Entry::new(kinds::STEP_FINISHED, "swapped: TovPlay is the restored copy")
        .step("swap")
        .target("db main")
        .data(json!({"action": "swap", "live": "TovPlay", "damaged": "TovPlay__damaged_20261210T130000Z", "restored_from": "TovPlay__restore_1"})));
    a(Entry::new(
        kinds::NOTE,
        "23 users back; the session scheduled minutes before is lost",
    ));
    let b1 = t0 + Duration::minutes(9);
    let b2 = t0 + Duration::minutes(2);
    a(Entry::new(kinds::NOTE, "a change was made by hand").data(json!({"at": journal_ts(b1)})));
    a(Entry::new(
        kinds::NOTE,
        format!("deploy #418 pushed with {PLANTED} in its env"),
    )
    .data(json!({"at": journal_ts(b2)})));
    Built {
        dir,
        id,
        damage_at,
        incident_at,
        backup_taken_at,
        backdated: vec![b1, b2],
    }
}

pub fn journal_ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An inventory naming `PLANTED` through `password_env` (LIFELINE_TEST_PW).
pub fn planted_inventory(dir: &Path) -> PathBuf {
    let p = dir.join("inv.toml");
    std::fs::write(
        &p,
        "[[host]]\nname = \"prod\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"postgres://app@127.0.0.1:5432/TovPlay\"\nhost = \"prod\"\npassword_env = \"LIFELINE_TEST_PW\"\nwatch = [\"User\"]\n",
    )
    .unwrap();
    p
}
