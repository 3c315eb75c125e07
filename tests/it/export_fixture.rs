//! The recorded rogue-sync incident in tests/it/fixtures/export/rogue-sync: a
//! sealed journal with real spacing in time (12:30–13:41 UTC, Dec 10 2026)
//! and its samples. Checks the numbers a reader sees, backdated notes in
//! place, folding around them, secrets masked by pattern, and the Markdown
//! export against the committed one (the README excerpt comes from it).
//! LIFELINE_UPDATE_FIXTURES=1 rewrites the fixture files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::export_support;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use export_support::{CheckOpts, check_export, lifeline};
use lifeline::engine::types::DbIdentity;
use lifeline::export::model::{Report, TimelineItem};
use lifeline::export::{self, Format, Zone};
use lifeline::journal::{GENESIS, Record, kinds, seal};
use lifeline::redact::Redactor;
use lifeline::samples::{Sample, TableCount};
use serde_json::{Value, json};

const ID: &str = "20261210-123000-rogue-sync";
/// Secrets the fixture's writer did not mask (an old or foreign journal):
/// export must mask them by pattern alone.
const FIXTURE_SECRETS: [&str; 3] = ["Fixture-Pw-1", "Fixture-Pw-2", "Fixture-Pw-3"];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/export/rogue-sync")
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 10, h, m, s).unwrap()
}

struct Writer {
    lines: Vec<String>,
    prev: String,
    seq: u64,
}

#[derive(Default)]
struct Ev {
    step: Option<&'static str>,
    target: Option<&'static str>,
    command: Option<String>,
    exit: Option<i32>,
    duration_ms: Option<u64>,
    data: Value,
}

impl Writer {
    fn add(&mut self, t: DateTime<Utc>, kind: &str, summary: &str, e: Ev) {
        self.seq += 1;
        let rec = Record {
            seq: self.seq,
            ts: t,
            incident: ID.into(),
            operator: "dana".into(),
            kind: kind.into(),
            step: e.step.map(String::from),
            target: e.target.map(String::from),
            command: e.command,
            exit: e.exit,
            duration_ms: e.duration_ms,
            summary: summary.into(),
            data: e.data,
            prev: self.prev.clone(),
            hash: String::new(),
        };
        let (line, hash) = seal(&rec).unwrap();
        self.lines.push(line);
        self.prev = hash;
    }
}

fn step(id: &'static str, target: Option<&'static str>, action: &str) -> Ev {
    Ev {
        step: Some(id),
        target,
        data: json!({ "action": action }),
        ..Ev::default()
    }
}

fn cmd(id: &'static str, command: String, ms: u64) -> Ev {
    Ev {
        step: Some(id),
        target: Some("host prod"),
        command: Some(command),
        exit: Some(0),
        duration_ms: Some(ms),
        ..Ev::default()
    }
}

/// The journal of the fixture incident, line by line.
fn journal_lines() -> Vec<String> {
    let mut w = Writer {
        lines: vec![],
        prev: GENESIS.into(),
        seq: 0,
    };
    let probe = |w: &mut Writer, t| {
        w.add(
            t,
            kinds::PROBE,
            "prod: 3 writers to main (db-realtime-sync.service, cron db_realtime_sync, ultimate_protection.sh)",
            Ev {
                target: Some("host prod"),
                data: json!({"host": "prod", "writers": 3}),
                ..Ev::default()
            },
        )
    };
    w.add(
        at(12, 30, 0),
        kinds::INCIDENT_OPENED,
        "console opened on prod to watch deploy #418",
        Ev {
            data: json!({"mode": "live", "scenario": "rogue-sync", "inventory": "/etc/lifeline/prod.toml"}),
            ..Ev::default()
        },
    );
    let mut t = at(12, 30, 15);
    while t < at(12, 42, 0) {
        probe(&mut w, t);
        t += Duration::seconds(30);
    }
    w.add(
        at(12, 42, 31),
        kinds::ALERT,
        "main.User dropped from 22 to 0 rows between two samples",
        Ev {
            target: Some("db main"),
            data: json!({"database": "main", "table": "User", "before": 22, "after": 0, "rule": "max_drop 0.5"}),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 43, 10),
        kinds::NOTE,
        "deploy #418 restarted the containers; the local Postgres came back empty",
        Ev::default(),
    );
    w.add(
        at(12, 44, 0),
        kinds::STEP_STARTED,
        "stop every writer to main",
        step("stop-writers", Some("host prod"), "stop-services"),
    );
    for (i, c) in [
        "systemctl stop db-realtime-sync.service",
        "systemctl disable db-realtime-sync.service",
        "mv /etc/cron.d/db_realtime_sync /etc/cron.d/db_realtime_sync.disabled-by-lifeline",
        "kill 4242  # ultimate_protection.sh (checks `User` every 2 s | auto-restores)",
    ]
    .iter()
    .enumerate()
    {
        w.add(
            at(12, 44, 2 + 2 * i as u32),
            kinds::COMMAND,
            "writer stopped",
            cmd("stop-writers", c.to_string(), 180 + 40 * i as u64),
        );
    }
    w.add(
        at(12, 44, 40),
        kinds::STEP_FINISHED,
        "3 writers stopped; none came back in 30 s",
        Ev {
            step: Some("stop-writers"),
            target: Some("host prod"),
            data: json!({"action": "stop-services", "held_s": 30,
                "stopped": ["db-realtime-sync.service", "cron:db_realtime_sync", "ultimate_protection.sh"]}),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 45, 0),
        kinds::STEP_STARTED,
        "emergency snapshot of the damaged database",
        step("snapshot", Some("db main"), "snapshot"),
    );
    w.add(
        at(12, 45, 1),
        kinds::COMMAND,
        "pg_dump of the damaged database",
        Ev {
            command: Some(format!(
                "PGPASSWORD={} pg_dump -Fc -h db.example.net -U app -d TovPlay -f /var/lib/lifeline/snapshots/TovPlay-20261210T124500Z.dump",
                FIXTURE_SECRETS[0]
            )),
            exit: Some(0),
            duration_ms: Some(29_400),
            ..step("snapshot", Some("db main"), "snapshot")
        },
    );
    w.add(
        at(12, 45, 31),
        kinds::STEP_FINISHED,
        "snapshot kept",
        Ev {
            step: Some("snapshot"),
            target: Some("db main"),
            data: json!({"action": "snapshot", "database": "main", "size": 48_213,
                "path": "/var/lib/lifeline/snapshots/TovPlay-20261210T124500Z.dump",
                "sha256": "5d1c0e3b9a4f2e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100f"}),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 46, 0),
        kinds::STEP_STARTED,
        "newest backup before the incident",
        step("pick", None, "pick-backup"),
    );
    w.add(
        at(12, 47, 20),
        kinds::STEP_FINISHED,
        "picked tovplay_external_20261208_073600.sql (53 h before the incident)",
        Ev {
            step: Some("pick"),
            data: json!({"action": "pick-backup",
                "backup": {"name": "external", "path": "/opt/backups/external/tovplay_external_20261208_073600.sql",
                    "taken_at": "2026-12-08T07:36:00Z", "size": 912_384,
                    "sha256": "8c1f6a5e0d4b3c2a19f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4931"},
                "incident_at": "2026-12-10T12:42:00Z", "rpo_s": 191_160}),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 47, 30),
        kinds::CONFIRMED,
        "operator typed 'TovPlay' to confirm the restore",
        Ev {
            step: Some("restore"),
            target: Some("db main"),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 47, 31),
        kinds::STEP_STARTED,
        "restore beside the live database",
        Ev {
            command: Some(format!(
                "psql postgres://app:{}@db.example.net:5432/TovPlay__restore_20261210T124731Z -f tovplay_external_20261208_073600.sql",
                FIXTURE_SECRETS[1]
            )),
            ..step("restore", Some("db main"), "restore")
        },
    );
    let mut t = at(12, 48, 0);
    let mut pct = 10;
    while t < at(12, 53, 0) {
        w.add(
            t,
            "restore-progress",
            &format!("restore {pct}%"),
            Ev {
                step: Some("restore"),
                target: Some("db TovPlay__restore_20261210T124731Z"),
                data: json!({"percent": pct}),
                ..Ev::default()
            },
        );
        t += Duration::seconds(60);
        pct += 18;
    }
    w.add(
        at(12, 53, 5),
        kinds::STEP_FINISHED,
        "restored 5 tables, 243 rows",
        Ev {
            step: Some("restore"),
            target: Some("db main"),
            data: json!({"action": "restore", "target_db": "TovPlay__restore_20261210T124731Z",
                "manifest": {"tables": {"User": 23, "UserProfile": 11, "Game": 12, "GameRequest": 182, "ScheduledSession": 15},
                    "statements": 412, "duration_ms": 334_000, "bytes": 912_384,
                    "sha256": "8c1f6a5e0d4b3c2a19f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4931"}}),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 53, 10),
        kinds::STEP_STARTED,
        "checks derived from the schema",
        step(
            "verify",
            Some("db TovPlay__restore_20261210T124731Z"),
            "verify",
        ),
    );
    w.add(
        at(12, 53, 40),
        kinds::STEP_FINISHED,
        "7 checks passed",
        Ev {
            step: Some("verify"),
            target: Some("db TovPlay__restore_20261210T124731Z"),
            data: json!({"action": "verify", "database": "TovPlay__restore_20261210T124731Z", "ok": true, "checks": [
                {"kind": "fk", "target": "GameRequest->User", "ok": true, "found": 0},
                {"kind": "fk", "target": "GameRequest->Game", "ok": true, "found": 0},
                {"kind": "fk", "target": "ScheduledSession->User", "ok": true, "found": 0},
                {"kind": "fk", "target": "UserGamePreference->User", "ok": true, "found": 0},
                {"kind": "unique", "target": "User.email", "ok": true, "found": 0},
                {"kind": "unique", "target": "User.id", "ok": true, "found": 0},
                {"kind": "expect-min", "target": "User >= 20", "ok": true, "found": 23}]}),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 54, 0),
        kinds::CONFIRMED,
        "operator typed 'TovPlay' to confirm the swap",
        Ev {
            step: Some("swap"),
            target: Some("db main"),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 54, 1),
        kinds::STEP_STARTED,
        "swap: restored copy becomes TovPlay, damaged one is kept",
        step("swap", Some("db main"), "swap"),
    );
    w.add(
        at(12, 54, 9),
        kinds::STEP_FINISHED,
        "TovPlay is the restored copy; the damaged one is TovPlay__damaged_20261210T125401Z",
        Ev {
            step: Some("swap"),
            target: Some("db main"),
            data: json!({"action": "swap", "live": "TovPlay", "damaged": "TovPlay__damaged_20261210T125401Z",
                "restored_from": "TovPlay__restore_20261210T124731Z"}),
            ..Ev::default()
        },
    );
    w.add(
        at(12, 55, 0),
        kinds::STEP_SKIPPED,
        "db-realtime-sync stays stopped: it caused the outage",
        Ev {
            step: Some("start-services"),
            target: Some("host prod"),
            data: json!({"action": "start-services"}),
            ..Ev::default()
        },
    );
    let mut t = at(12, 55, 15);
    while t < at(13, 2, 0) {
        w.add(
            t,
            kinds::PROBE,
            "prod: 0 writers to main",
            Ev {
                target: Some("host prod"),
                data: json!({"host": "prod", "writers": 0}),
                ..Ev::default()
            },
        );
        t += Duration::seconds(30);
    }
    w.add(
        at(13, 2, 30),
        kinds::NOTE,
        "23 users back; the session scheduled at 12:38 is lost (it was after the backup)",
        Ev::default(),
    );
    w.add(
        at(13, 40, 2),
        kinds::NOTE,
        "a change was made by hand: the deploy script ran `docker compose down -v | up` on prod",
        Ev {
            data: json!({"at": "2026-12-10T12:42:00Z"}),
            ..Ev::default()
        },
    );
    w.add(
        at(13, 41, 0),
        kinds::NOTE,
        &format!(
            "user 'maya' scheduled a session; the app connected with password={}",
            FIXTURE_SECRETS[2]
        ),
        Ev {
            data: json!({"at": "2026-12-10T12:38:00Z"}),
            ..Ev::default()
        },
    );
    w.lines
}

fn samples_lines() -> Vec<String> {
    let identity = DbIdentity {
        server: "db.example.net:5432".into(),
        system_identifier: "7312345678901234567".into(),
        server_started_at: Some(at(9, 12, 44)),
        oid: Some(16384),
        database: "TovPlay".into(),
    };
    let mut out = Vec::new();
    let mut t = at(12, 30, 0);
    while t <= at(13, 5, 0) {
        let damaged = t >= at(12, 42, 30) && t < at(12, 54, 30);
        let restored = t >= at(12, 54, 30);
        let tc = |name: &str, oid: u32, rows: i64| TableCount {
            schema: "public".into(),
            name: name.into(),
            oid,
            rows,
            exact: true,
        };
        let s = Sample {
            ts: t,
            database: "main".into(),
            identity: identity.clone(),
            tables: vec![
                tc(
                    "User",
                    16390,
                    if damaged {
                        0
                    } else if restored {
                        23
                    } else {
                        22
                    },
                ),
                tc("GameRequest", 16400, 182),
                tc("ScheduledSession", 16410, if restored { 15 } else { 16 }),
                TableCount {
                    exact: false,
                    ..tc("UserProfile", 16420, 11)
                },
            ],
        };
        out.push(serde_json::to_string(&s).unwrap());
        t += Duration::seconds(30);
    }
    out
}

fn joined(lines: &[String]) -> String {
    lines.join("\n") + "\n"
}

/// The fixture files are what this generator writes (so the numbers the
/// tests check are the ones in the files).
#[test]
fn fixture_files_are_current() {
    let dir = fixture_dir();
    let want = [
        ("journal.jsonl", joined(&journal_lines())),
        ("samples.jsonl", joined(&samples_lines())),
    ];
    if std::env::var_os("LIFELINE_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &want {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    for (name, text) in &want {
        let got = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            &got == text,
            "{name} differs from the generator: run LIFELINE_UPDATE_FIXTURES=1 cargo test --test export_fixture"
        );
    }
    assert!(
        lifeline::journal::verify_file(&dir.join("journal.jsonl"))
            .unwrap()
            .intact()
    );
}

fn report(format: Format) -> (String, Report) {
    let files = export::resolve(
        fixture_dir().to_str().unwrap(),
        &lifeline::state::StateDir::new("/nonexistent"),
    )
    .unwrap();
    let zone = Zone::Fixed(export::time::parse_offset("+02:00").unwrap());
    let e = export::export(&files, format, zone, None, &Redactor::new(), at(14, 0, 0)).unwrap();
    (e.text, e.report)
}

#[test]
fn numbers_a_reader_sees() {
    let (md, r) = report(Format::Md);
    let s = &r.summary;
    let d = s.first_damage.as_ref().unwrap();
    assert_eq!((d.at, d.source.as_str()), (at(12, 42, 30), "sample"));
    assert_eq!(s.time_to_detect.as_ref().unwrap().seconds, 1);
    assert_eq!(s.time_to_detect.as_ref().unwrap().until, "alert #26");
    assert_eq!(s.time_to_stop_writers.as_ref().unwrap().seconds, 130);
    assert_eq!(s.time_to_restore.as_ref().unwrap().seconds, 11 * 60 + 39);
    assert_eq!(s.data_lost.as_ref().unwrap().seconds, 191_160);
    assert_eq!(s.stated_incident_at, Some(at(12, 42, 0)));
    assert_eq!(s.steps.skipped, 1);
    for line in [
        "| **Time to detect** | **1 s** (first damage 14:42:30 → alert \\#26 at 2026-12-10 12:42:31 UTC (14:42:31 local)) |",
        "| **Time to stop writers** | **2 min 10 s**",
        "| **Time to restore (RTO)** | **11 min 39 s**",
        "| **Data lost (RPO)** | **2 d 5 h 06 min** of changes (backup taken 2026-12-08 07:36:00 UTC, incident 2026-12-10 12:42:00 UTC) |",
        "| `main` | `User` | 22 | **0 at 14:42:30** | 23 | 71 |",
        "| `main` | `ScheduledSession` | 16 | **15 at 14:54:30** | 15 | 71 |",
    ] {
        assert!(md.contains(line), "missing {line}\n{md}");
    }
    // The estimated table is not in the row-count table.
    assert!(!md.contains("`UserProfile` |"));
}

#[test]
fn backdated_notes_stand_at_their_time_and_split_the_folds() {
    let (md, r) = report(Format::Json);
    let _ = md;
    let line_of = |pred: &dyn Fn(&TimelineItem) -> bool| r.timeline.iter().position(pred).unwrap();
    let note = |text: &'static str| move |i: &TimelineItem| matches!(i, TimelineItem::Event(e) if e.summary.starts_with(text));
    let by_hand = line_of(&note("a change was made by hand"));
    let maya = line_of(&note("user 'maya'"));
    let alert = line_of(&|i| matches!(i, TimelineItem::Event(e) if e.kind == "alert"));
    let TimelineItem::Event(e) = &r.timeline[by_hand] else {
        panic!()
    };
    assert_eq!(e.at, at(12, 42, 0));
    assert_eq!(e.added_later, Some(at(13, 40, 2)));
    assert_eq!(e.seq, 68);
    // 12:42:00 sits after the last probe (12:41:45) and before the alert (12:42:31).
    assert_eq!(alert, by_hand + 1);
    // 12:38:00 splits the 24 probes 12:30:15..12:41:45 into 16 and 8.
    let folds: Vec<(usize, usize)> = r
        .timeline
        .iter()
        .enumerate()
        .filter_map(|(i, x)| match x {
            TimelineItem::Folded(f) => Some((i, f.count)),
            _ => None,
        })
        .collect();
    assert_eq!(folds[0], (1, 16));
    assert_eq!(maya, 2);
    assert_eq!(folds[1], (3, 8));
    assert_eq!(by_hand, 4);
    // Restore progress (5) and the 14 post-restore probes fold too; the four
    // stop commands do not (each is different).
    let counts: Vec<usize> = folds.iter().map(|f| f.1).collect();
    assert_eq!(counts, vec![16, 8, 5, 14]);
}

#[test]
fn secrets_masked_by_pattern_in_every_format() {
    let raw = std::fs::read_to_string(fixture_dir().join("journal.jsonl")).unwrap();
    for s in FIXTURE_SECRETS {
        assert!(raw.contains(s), "the fixture really holds '{s}'");
    }
    for f in [Format::Md, Format::Json, Format::Html] {
        let (text, _) = report(f);
        for s in FIXTURE_SECRETS {
            assert!(!text.contains(s), "'{s}' leaked into {f:?}");
        }
        assert!(text.contains("PGPASSWORD=***"), "{f:?}");
        assert!(text.contains("postgres://app:***@db.example.net"), "{f:?}");
    }
}

#[test]
fn markdown_matches_the_committed_export() {
    let (md, _) = report(Format::Md);
    let p = fixture_dir().join("../rogue-sync.expected.md");
    if std::env::var_os("LIFELINE_UPDATE_FIXTURES").is_some() {
        std::fs::write(&p, &md).unwrap();
    }
    let want = std::fs::read_to_string(&p).unwrap_or_default();
    assert!(
        md == want,
        "Markdown export changed; review it and run LIFELINE_UPDATE_FIXTURES=1 cargo test --test export_fixture\n{md}"
    );
}

/// An incident sampled before the one identity type (issue 20): its
/// samples.jsonl carries `address` (`host:port/dbname`),
/// `postmaster_start` and `database_oid`. It exports the same as today's.
#[test]
fn samples_with_the_old_identity_names_export_the_same() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("rogue-sync");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixture_dir().join("journal.jsonl"),
        dir.join("journal.jsonl"),
    )
    .unwrap();
    let samples = std::fs::read_to_string(fixture_dir().join("samples.jsonl")).unwrap();
    let mut old = String::new();
    for line in samples.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let id = v["identity"].clone();
        assert!(id.get("server").is_some(), "today's names: {id}");
        v["identity"] = json!({
            "address": format!("{}/{}", id["server"].as_str().unwrap(), id["database"].as_str().unwrap()),
            "system_identifier": id["system_identifier"],
            "postmaster_start": id["server_started_at"],
            "database_oid": id["oid"],
            "database": id["database"],
        });
        old.push_str(&serde_json::to_string(&v).unwrap());
        old.push('\n');
    }
    assert!(old.contains("\"database_oid\":16384") && !old.contains("\"server\""));
    std::fs::write(dir.join("samples.jsonl"), &old).unwrap();
    let files = export::resolve(
        dir.to_str().unwrap(),
        &lifeline::state::StateDir::new("/nonexistent"),
    )
    .unwrap();
    let zone = Zone::Fixed(export::time::parse_offset("+02:00").unwrap());
    let e = export::export(
        &files,
        Format::Md,
        zone,
        None,
        &Redactor::new(),
        at(14, 0, 0),
    )
    .unwrap();
    let (want, _) = report(Format::Md);
    assert_eq!(e.text, want);
    let parsed = lifeline::samples::read(&dir.join("samples.jsonl")).unwrap();
    assert_eq!(parsed[0].identity.server, "db.example.net:5432");
    assert_eq!(parsed[0].identity.oid, Some(16384));
}

#[test]
fn generic_checks_pass_on_the_fixture() {
    let d = tempfile::tempdir().unwrap();
    let ex = check_export(
        &fixture_dir(),
        d.path(),
        &CheckOpts {
            secrets: FIXTURE_SECRETS.to_vec(),
            tz: Some("+02:00"),
            ..CheckOpts::default()
        },
    );
    assert!(ex.html.contains("class=\"damage\"") && ex.html.contains("class=\"restored\""));
    assert!(ex.html.contains("@media print"));
}

#[test]
fn cli_writes_html_file() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.html");
    let o = lifeline(d.path())
        .arg("export")
        .arg(fixture_dir())
        .args(["--format", "html", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrote "));
    assert!(std::fs::read_to_string(&out).unwrap().contains("<svg"));
}
