//! The row-count timeline against real clusters: an emptied table raises one
//! journaled alert; `pg_dump --clean | psql` shows as re-created tables, not
//! a statistics jump; a restart is an identity event; a writer shows in the
//! sessions; a slow count does not hold up the others; the spawned task
//! reports over its channel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline::db::activity::HostMap;
use lifeline::journal::{Journal, kinds, read_records};
use lifeline::redact::Redactor;
use lifeline::samples;
use lifeline::timeline::{Detected, Sampler, SharedJournal, TimelineEvent};

const SCHEMA: &str = r#"
CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE "Game" (id serial PRIMARY KEY, title text);
CREATE TABLE "GameRequest" (id serial PRIMARY KEY, "userId" int REFERENCES "User"(id), "gameId" int REFERENCES "Game"(id));
INSERT INTO "User" (email) SELECT 'u' || g || '@example.net' FROM generate_series(1, 22) g;
INSERT INTO "Game" (title) SELECT 'g' || g FROM generate_series(1, 12) g;
INSERT INTO "GameRequest" ("userId", "gameId") SELECT 1 + g % 22, 1 + g % 12 FROM generate_series(1, 182) g;
"#;

struct Setup {
    pg: support::PgCluster,
    dir: tempfile::TempDir,
    journal: SharedJournal,
    redactor: Redactor,
}

impl Setup {
    fn new() -> Setup {
        let pg = support::pg();
        pg.create_db("TovPlay").unwrap();
        pg.psql("TovPlay", SCHEMA).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let redactor = Redactor::new();
        let j = Journal::open(
            &dir.path().join("journal.jsonl"),
            "test-incident",
            "tester",
            redactor.clone(),
        )
        .unwrap();
        Setup {
            pg,
            dir,
            journal: Arc::new(Mutex::new(j)),
            redactor,
        }
    }

    fn sampler(&self, extra: &str) -> Sampler {
        let inv = support::inventory(&support::db_inventory_text(&self.pg, "TovPlay", extra));
        Sampler::from_spec(inv.database("main").unwrap(), &self.redactor)
            .unwrap()
            .with_journal(self.journal.clone())
            .with_samples_file(self.samples_path())
    }

    fn samples_path(&self) -> std::path::PathBuf {
        self.dir.path().join("samples.jsonl")
    }

    fn records(&self, kind: &str) -> Vec<lifeline::journal::Record> {
        read_records(&self.dir.path().join("journal.jsonl"))
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect()
    }
}

fn alerts(d: &[Detected]) -> usize {
    d.iter().filter(|e| matches!(e, Detected::Alert(_))).count()
}

#[tokio::test]
async fn emptied_table_raises_exactly_one_journaled_alert() {
    let s = Setup::new();
    let mut sampler =
        s.sampler("watch = [\"User\", \"GameRequest\"]\nexpect = { User = { min = 20 } }");
    let r1 = sampler.sample_once().await.unwrap();
    assert_eq!(alerts(&r1.detected), 0, "{:?}", r1.detected);
    let user = r1.sample.tables.iter().find(|t| t.name == "User").unwrap();
    assert_eq!((user.rows, user.exact), (22, true));
    let game = r1.sample.tables.iter().find(|t| t.name == "Game").unwrap();
    assert!(!game.exact, "unwatched tables are estimated");

    s.pg.psql(
        "TovPlay",
        "DELETE FROM \"GameRequest\"; DELETE FROM \"User\"",
    )
    .unwrap();
    let r2 = sampler.sample_once().await.unwrap();
    assert_eq!(
        alerts(&r2.detected),
        2,
        "User and GameRequest: {:?}",
        r2.detected
    );
    let r3 = sampler.sample_once().await.unwrap();
    assert_eq!(alerts(&r3.detected), 0, "{:?}", r3.detected);

    let recs = s.records(kinds::ALERT);
    let user_alerts: Vec<_> = recs
        .iter()
        .filter(|r| r.data["table"] == "public.User")
        .collect();
    assert_eq!(user_alerts.len(), 1, "{recs:?}");
    let d = &user_alerts[0].data;
    assert_eq!(d["database"], "main");
    assert_eq!(d["before"], 22);
    assert_eq!(d["after"], 0);
    assert_eq!(d["rule"], "drop_alert_share");
    assert_eq!(d["rules"], serde_json::json!(["drop_alert_share", "min"]));
    assert!(user_alerts[0].summary.contains("fell from 22 to 0"));
    assert_eq!(recs.len(), 2);

    // Three rounds in samples.jsonl, each with the identity, User exact.
    let lines = samples::read(&s.samples_path()).unwrap();
    assert_eq!(lines.len(), 3);
    let sysid =
        s.pg.psql(
            "TovPlay",
            "SELECT system_identifier FROM pg_control_system()",
        )
        .unwrap();
    for l in &lines {
        assert_eq!(l.database, "main");
        assert_eq!(l.identity.database, "TovPlay");
        assert_eq!(l.identity.system_identifier, sysid);
    }
    let users: Vec<i64> = lines
        .iter()
        .map(|l| l.tables.iter().find(|t| t.name == "User").unwrap().rows)
        .collect();
    assert_eq!(users, vec![22, 0, 0]);
}

#[tokio::test]
async fn pg_dump_clean_into_psql_shows_recreated_tables_not_a_jump() {
    let s = Setup::new();
    let mut sampler = s.sampler("watch = [\"User\"]");
    let r1 = sampler.sample_once().await.unwrap();
    let old_oid = r1
        .sample
        .tables
        .iter()
        .find(|t| t.name == "User")
        .unwrap()
        .oid;

    // The real thing: pg_dump --clean piped into psql against the same database.
    let cmd = format!(
        "'{}' --clean -h 127.0.0.1 -p {port} -U postgres -d TovPlay | '{}' -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {port} -U postgres -d TovPlay",
        s.pg.bin("pg_dump").display(),
        s.pg.bin("psql").display(),
        port = s.pg.port()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &cmd])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let r2 = sampler.sample_once().await.unwrap();
    assert_eq!(alerts(&r2.detected), 0, "{:?}", r2.detected);
    let recreated: Vec<(&str, u32, u32)> = r2
        .detected
        .iter()
        .filter_map(|d| match d {
            Detected::TableRecreated(e) => Some((e.table.as_str(), e.old_oid, e.new_oid)),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = recreated.iter().map(|r| r.0).collect();
    assert_eq!(names, vec!["Game", "GameRequest", "User"]);
    let user = recreated.iter().find(|r| r.0 == "User").unwrap();
    assert_eq!(user.1, old_oid);
    assert_ne!(user.2, old_oid);
    let u = r2.sample.tables.iter().find(|t| t.name == "User").unwrap();
    assert_eq!((u.rows, u.exact, u.oid), (22, true, user.2));

    // Journaled, and two separate series for User (old OID, new OID).
    let recs = s.records(kinds::TABLE_RECREATED);
    let ru = recs
        .iter()
        .find(|r| r.data["table"] == "public.User")
        .unwrap();
    assert_eq!(ru.data["old_oid"], old_oid);
    assert_eq!(ru.data["new_oid"], user.2);
    assert_eq!(sampler.series().keys_for("public", "User").len(), 2);
}

#[tokio::test]
async fn restart_is_an_identity_event() {
    let mut s = Setup::new();
    let mut sampler = s.sampler("watch = [\"User\"]");
    sampler.sample_once().await.unwrap();
    s.pg.restart().unwrap();
    let r = sampler.sample_once().await.unwrap();
    let ev: Vec<_> = r
        .detected
        .iter()
        .filter_map(|d| match d {
            Detected::IdentityChanged(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(ev.len(), 1, "{:?}", r.detected);
    assert_eq!(
        serde_json::to_value(ev[0].change).unwrap(),
        serde_json::json!("restarted")
    );
    assert!(ev[0].after.server_started_at > ev[0].before.server_started_at);
    assert_eq!(
        ev[0].after.system_identifier,
        ev[0].before.system_identifier
    );
    assert_eq!(alerts(&r.detected), 0);
    let recs = s.records(kinds::IDENTITY_CHANGED);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].data["change"], "restarted");
    assert_eq!(recs[0].data["database"], "main");
    assert!(recs[0].data["before"]["server_started_at"].is_string());
}

#[tokio::test]
async fn a_writer_shows_in_sessions_with_its_host_and_writes() {
    let s = Setup::new();
    let inv = support::inventory(&support::db_inventory_text(
        &s.pg,
        "TovPlay",
        "watch = [\"Game\"]",
    ));
    let spec = inv.database("main").unwrap();
    let mut sampler = Sampler::from_spec(spec, &s.redactor)
        .unwrap()
        .with_host_map(HostMap::resolve(&inv, spec).await);
    sampler.sample_once().await.unwrap();
    // The seeding's own counters are published late (when its backend goes
    // idle or exits): wait for a quiet round so only the writer's rows count.
    let settle = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = sampler.sample_once().await.unwrap();
        if r.writes.iter().all(|w| w.name != "Game" || w.inserted == 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < settle,
            "writes never settled: {:?}",
            r.writes
        );
    }

    let conninfo = format!("{} application_name=nightly-sync", s.pg.conninfo("TovPlay"));
    let (writer, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    writer
        .batch_execute("INSERT INTO \"Game\" (title) SELECT 'new' FROM generate_series(1, 5)")
        .await
        .unwrap();
    // A backend publishes its counters when idle outside a transaction, at
    // most once a second: poll, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut inserted = 0;
    let mut last = None;
    while std::time::Instant::now() < deadline {
        let r = sampler.sample_once().await.unwrap();
        inserted += r
            .writes
            .iter()
            .filter(|w| w.name == "Game")
            .map(|w| w.inserted)
            .sum::<i64>();
        last = Some(r);
        if inserted >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        inserted,
        5,
        "writes seen: {:?}",
        last.as_ref().map(|r| &r.writes)
    );

    writer
        .batch_execute("BEGIN; DELETE FROM \"GameRequest\" WHERE id = 1")
        .await
        .unwrap();
    let r = sampler.sample_once().await.unwrap();
    let w = r
        .sessions
        .iter()
        .find(|x| x.application_name == "nightly-sync")
        .unwrap_or_else(|| panic!("writer not in {:?}", r.sessions));
    assert_eq!(w.client_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(w.usename.as_deref(), Some("postgres"));
    assert_eq!(w.state.as_deref(), Some("idle in transaction"));
    assert!(w.xact_start.is_some());
    assert!(w.query.as_deref().unwrap().contains("DELETE FROM"));
    assert_eq!(
        w.host.as_deref(),
        Some("here"),
        "loopback maps to the local host"
    );
    // The sampler's own connections are not listed.
    assert!(
        r.sessions
            .iter()
            .all(|x| !x.application_name.starts_with("lifeline")),
        "{:?}",
        r.sessions
    );
    writer.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn a_blocked_count_times_out_alone() {
    let s = Setup::new();
    let mut sampler =
        s.sampler("watch = [\"User\", \"Game\", \"GameRequest\"]\nstatement_timeout_ms = 1000");
    let (locker, conn) = tokio_postgres::connect(&s.pg.conninfo("TovPlay"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    locker
        .batch_execute("BEGIN; LOCK TABLE \"Game\" IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let r = sampler.sample_once().await.unwrap();
    let by = |n: &str| {
        r.sample
            .tables
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .clone()
    };
    assert!(by("User").exact && by("GameRequest").exact);
    assert_eq!(by("User").rows, 22);
    assert_eq!(by("GameRequest").rows, 182);
    assert!(
        !by("Game").exact,
        "the locked table falls back to its estimate"
    );
    assert_eq!(r.count_failures.len(), 1);
    assert_eq!(r.count_failures[0].name, "Game");
    assert!(
        r.count_failures[0].error.contains("statement timeout"),
        "{}",
        r.count_failures[0].error
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
    let r = sampler.sample_once().await.unwrap();
    let g = r.sample.tables.iter().find(|t| t.name == "Game").unwrap();
    assert_eq!((g.rows, g.exact), (12, true));
    assert!(r.count_failures.is_empty());
}

#[tokio::test]
async fn spawned_sampler_reports_rounds_alerts_and_outages() {
    let s = Setup::new();
    let mut pg = s.pg;
    let inv = support::inventory(&support::db_inventory_text(
        &pg,
        "TovPlay",
        "watch = [\"User\"]\nsample_interval_s = 1\nconnect_timeout_s = 2",
    ));
    let sampler = Sampler::from_spec(inv.database("main").unwrap(), &s.redactor)
        .unwrap()
        .with_journal(s.journal.clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let task = sampler.spawn(tx);
    assert!(matches!(next(&mut rx).await, TimelineEvent::Sampled(_)));
    pg.psql("TovPlay", "TRUNCATE \"User\" CASCADE").unwrap();
    let mut got_alert = None;
    for _ in 0..10 {
        if let TimelineEvent::Alert(a) = next(&mut rx).await {
            got_alert = Some(a);
            break;
        }
    }
    let a = got_alert.expect("an alert event");
    assert_eq!((a.before, a.after), (Some(22), 0));

    pg.stop().unwrap();
    let mut outage = None;
    let mut down_alert = None;
    for _ in 0..10 {
        match next(&mut rx).await {
            TimelineEvent::Unavailable { error, .. } => {
                outage = Some(error);
                break;
            }
            TimelineEvent::Alert(a) => down_alert = Some(a),
            _ => {}
        }
    }
    // The outage's alert comes before its Unavailable event.
    assert_eq!(down_alert.expect("a server-down alert").rule, "server-down");
    assert_eq!(
        outage.expect("an unavailable event").class,
        lifeline::db::ErrorClass::Unreachable
    );
    let sampler = task.stop().await.expect("the sampler back");
    assert!(sampler.series().len() >= 2);
    // The alerts were journaled before they were reported: the drop, and
    // the outage once however many rounds failed.
    let recs = read_records(&s.dir.path().join("journal.jsonl")).unwrap();
    let rules: Vec<&str> = recs
        .iter()
        .filter(|r| r.kind == kinds::ALERT)
        .filter_map(|r| r.data["rule"].as_str())
        .collect();
    assert_eq!(rules, vec!["drop_alert_share", "server-down"], "{recs:?}");
}

#[tokio::test]
async fn a_hung_backend_is_reported_not_waited_on() {
    let s = Setup::new();
    let inv = support::inventory(&support::db_inventory_text(
        &s.pg,
        "TovPlay",
        "watch = [\"User\"]\nsample_interval_s = 1\nconnect_timeout_s = 1\nstatement_timeout_ms = 1000",
    ));
    let sampler = Sampler::from_spec(inv.database("main").unwrap(), &s.redactor).unwrap();
    let limit = sampler.round_limit();
    assert!(limit <= Duration::from_secs(12), "{limit:?}");
    let main = sampler.handle().clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let task = sampler.spawn(tx);
    assert!(matches!(next(&mut rx).await, TimelineEvent::Sampled(_)));
    // Freeze the sampler's server process: its statement timeout cannot fire.
    let pid = main.backend_pid().await.unwrap().to_string();
    let kill = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(st.success());
    };
    kill("-STOP");
    let mut outage = None;
    for _ in 0..5 {
        if let TimelineEvent::Unavailable { error, .. } = next(&mut rx).await {
            outage = Some(error);
            break;
        }
    }
    kill("-CONT");
    let e = outage.expect("an unavailable event");
    assert!(e.message.contains("no answer within"), "{}", e.message);
    // It comes back on a new connection.
    let mut back = false;
    for _ in 0..5 {
        if matches!(next(&mut rx).await, TimelineEvent::Sampled(_)) {
            back = true;
            break;
        }
    }
    assert!(back);
    assert_ne!(main.backend_pid().await.unwrap().to_string(), pid);
    task.stop().await.unwrap();
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<TimelineEvent>) -> TimelineEvent {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("an event within 60 s")
        .expect("channel open")
}

/// A dropped database (SQLSTATE 3D000) and then a stopped server are each
/// journaled as an alert when first seen, once, however many rounds fail.
#[tokio::test]
async fn missing_database_and_down_server_are_journaled_alerts_once() {
    let mut s = Setup::new();
    let mut sampler = s.sampler("watch = [\"User\"]");
    sampler.sample_once().await.unwrap();
    assert!(s.records(kinds::ALERT).is_empty());

    s.pg.psql("postgres", "DROP DATABASE \"TovPlay\" WITH (FORCE)")
        .unwrap();
    for _ in 0..3 {
        let e = sampler.sample_once().await.unwrap_err();
        assert_eq!(
            e.db_error().and_then(|d| d.sqlstate()),
            Some("3D000"),
            "{e}"
        );
    }
    let recs = s.records(kinds::ALERT);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].data["rule"], "database-missing");
    assert_eq!(recs[0].data["database"], "main");
    assert!(recs[0].summary.contains("MISSING"), "{}", recs[0].summary);
    assert!(recs[0].data["before_at"].is_string(), "{:?}", recs[0].data);

    s.pg.stop().unwrap();
    for _ in 0..2 {
        assert!(sampler.sample_once().await.is_err());
    }
    let recs = s.records(kinds::ALERT);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[1].data["rule"], "server-down");
}
