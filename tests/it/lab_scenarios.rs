//! Each lab scenario builds a real sandbox and its damage is real: counted
//! in the real PostgreSQL cluster, done by the real mechanism (a sync
//! process with its restarter and watchdog, a DELETE, a DROP, migrations).
//! The backups are real pg_dump files; the good one restores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::{Duration, Instant};

use lifeline::inventory::Inventory;
use lifeline::lab::{BackupKind, DB_NAME, Lab, LabOptions, Scenario, Sizes, WATCHED, procs};

fn build(scenario: Scenario) -> Lab {
    Lab::build(LabOptions {
        scenario,
        ..LabOptions::default()
    })
    .unwrap_or_else(|e| panic!("build lab '{scenario}': {e}"))
}

fn count(lab: &Lab, db: &str, table: &str) -> Result<i64, String> {
    lab.cluster
        .psql(db, &format!("SELECT count(*) FROM \"{table}\""))
        .map_err(|e| e.to_string())
        .and_then(|s| s.parse().map_err(|e| format!("{s}: {e}")))
}

/// Polls `f` every 100 ms until it holds; fails after `secs`.
fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn live_pid(lab: &Lab, name: &str) -> Option<u32> {
    lab.live_processes()
        .into_iter()
        .find(|p| p.name == name)
        .map(|p| p.pid)
}

fn kill9(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn rogue_sync_wipes_production_and_its_restarter_brings_it_back() {
    let lab = build(Scenario::RogueSync);
    let sizes = lab.sizes;
    assert_eq!(lab.counts_before["User"], sizes.users as i64);
    assert!(lab.damage_at >= lab.built_at);
    // Production is wiped while all three mechanisms run.
    assert_eq!(count(&lab, DB_NAME, "User"), Ok(0));
    // Every seeded request is gone; the application writer keeps writing
    // through the wipe, so rows of its own may have landed in the
    // re-created table (committed after the damage began: not scored).
    let seeded = lab
        .cluster
        .psql(
            DB_NAME,
            "SELECT count(*) FROM \"GameRequest\" WHERE message IS DISTINCT FROM 'lab writer'",
        )
        .unwrap();
    assert_eq!(seeded, "0");
    let truth = lab.truth.as_ref().unwrap();
    let late = count(&lab, DB_NAME, "GameRequest").unwrap();
    assert!(
        late as usize <= truth.rows.len() - truth.before_damage().count(),
        "{late} writer rows after the wipe"
    );
    assert_eq!(count(&lab, "tovplay_local", "User"), Ok(0));
    let hazards = lab.hazards();
    assert_eq!(
        hazards,
        ["db-realtime-sync", "sync-restarter", "sync-watchdog"]
    );
    for h in &hazards {
        let pid = live_pid(&lab, h).unwrap_or_else(|| panic!("{h} is not running"));
        // Each runs in its own session and process group.
        assert_eq!(procs::pgid(pid), Some(pid), "{h}");
    }
    let log = std::fs::read_to_string(lab.dir.join("log/db_realtime_sync.log")).unwrap();
    assert!(
        log.contains("mismatch") && log.contains("sync done"),
        "{log}"
    );

    // Data put back into production is wiped again within seconds.
    lab.cluster
        .psql(
            DB_NAME,
            "INSERT INTO \"User\" (\"email\", \"username\", \"passwordHash\") VALUES ('back@tovplay.example', 'back', 'x')",
        )
        .unwrap();
    wait_for("the sync wipes the restored row", 60, || {
        count(&lab, DB_NAME, "User") == Ok(0)
    });

    // Killing only the sync is not enough: the restarter starts it again.
    let sync = live_pid(&lab, "db-realtime-sync").unwrap();
    kill9(sync);
    wait_for("the restarter starts a new sync", 60, || {
        live_pid(&lab, "db-realtime-sync").is_some_and(|p| p != sync)
    });
    // Killing only the restarter is not enough: the watchdog starts it again.
    let restarter = live_pid(&lab, "sync-restarter").unwrap();
    kill9(restarter);
    wait_for("the watchdog starts a new restarter", 60, || {
        live_pid(&lab, "sync-restarter").is_some_and(|p| p != restarter)
    });

    // Teardown stops every generation of them.
    let mut pids: Vec<u32> = lab.live_processes().iter().map(|p| p.pid).collect();
    pids.extend(lab.pids.iter().map(|p| p.pid));
    let dir = lab.dir.clone();
    lab.teardown().unwrap();
    for p in pids {
        assert!(!procs::alive(p), "pid {p} still runs after teardown");
    }
    assert!(!dir.exists());
}

#[test]
fn wrong_database_empties_user_and_the_decoy_still_shows_22() {
    let lab = build(Scenario::WrongDatabase);
    let users = lab.counts_before["User"];
    assert_eq!(users, lab.sizes.users as i64);
    assert_eq!(count(&lab, DB_NAME, "User"), Ok(0));
    // The decoy: another database whose name differs only in case.
    assert_eq!(count(&lab, "tovplay", "User"), Ok(22));
    assert_eq!(count(&lab, "tovplay", "GameRequest"), Ok(182));
    // The other tables kept their rows, now orphaned.
    for t in ["UserProfile", "Game", "GameRequest", "ScheduledSession"] {
        assert_eq!(count(&lab, DB_NAME, t), Ok(lab.counts_before[t]), "{t}");
    }
    let orphans = lab
        .cluster
        .psql(
            DB_NAME,
            "SELECT count(*) FROM \"GameRequest\" g WHERE NOT EXISTS (SELECT 1 FROM \"User\" u WHERE u.id = g.\"senderId\")",
        )
        .unwrap();
    assert_eq!(orphans, lab.counts_before["GameRequest"].to_string());
    // The delete-audit trigger recorded every deleted user, at the damage time.
    assert_eq!(count(&lab, DB_NAME, "DeleteAudit"), Ok(users));
    let at = lab
        .cluster
        .psql(
            DB_NAME,
            "SELECT extract(epoch FROM min(\"deletedAt\"))::float8 FROM \"DeleteAudit\" WHERE \"tableName\" = 'User'",
        )
        .unwrap();
    let at: f64 = at.parse().unwrap();
    let damage = lab.damage_at.timestamp_millis() as f64 / 1000.0;
    assert!(
        (at - damage).abs() < 30.0,
        "audit time {at} vs damage {damage}"
    );
    assert_eq!(lab.decoys(), ["tovplay"]);
}

#[tokio::test]
async fn dropped_database_gives_3d000_while_the_server_stays_up() {
    let lab = tokio::task::spawn_blocking(|| build(Scenario::DroppedDatabase))
        .await
        .unwrap();
    let err = tokio_postgres::connect(&lab.cluster.conninfo(DB_NAME), tokio_postgres::NoTls)
        .await
        .err()
        .expect("connecting to the dropped database must fail");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME),
        "{err:?}"
    );
    let c = support::client(&lab.cluster, "postgres").await;
    let row = c.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    // The backup job ran after the drop: pg_dump failed, an empty file remains.
    let after = lab.backups.last().unwrap();
    assert_eq!(after.kind, BackupKind::AfterDamage);
    assert_eq!(after.size, 0);
    assert!(lab.right_backup().is_some());
    tokio::task::spawn_blocking(move || lab.teardown().unwrap())
        .await
        .unwrap();
}

#[test]
fn migration_reset_leaves_one_legacy_account_and_22_fresh_migrations() {
    let lab = build(Scenario::MigrationReset);
    assert_eq!(
        lab.cluster
            .psql(
                DB_NAME,
                "SELECT string_agg(\"username\", ',') FROM \"User\""
            )
            .unwrap(),
        "Legacy Account"
    );
    for t in WATCHED.iter().filter(|t| **t != "User") {
        assert_eq!(count(&lab, DB_NAME, t), Ok(0), "{t}");
    }
    assert_eq!(count(&lab, DB_NAME, "_prisma_migrations"), Ok(22));
    assert_eq!(lab.counts_before["_prisma_migrations"], 22);
    // Every migration row is from the re-run (the originals carried 2024 dates).
    let fresh = lab
        .cluster
        .psql(
            DB_NAME,
            "SELECT count(*) FROM \"_prisma_migrations\" WHERE finished_at > now() - interval '1 hour'",
        )
        .unwrap();
    assert_eq!(fresh, "22");
    // The right backup still holds the 2024 migration history.
    let right = std::fs::read_to_string(&lab.right_backup().unwrap().path).unwrap();
    assert!(right.contains("20240105093000_init"));
}

#[test]
fn backups_restore_and_the_inventory_loads() {
    let lab = build(Scenario::WrongDatabase);
    let kinds: Vec<BackupKind> = lab.backups.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BackupKind::Good,
            BackupKind::Good,
            BackupKind::Good,
            BackupKind::Truncated,
            BackupKind::AfterDamage
        ]
    );
    // Names carry their (past) times, the mtimes match, and each backup differs.
    let mut users_seen = Vec::new();
    for b in &lab.backups {
        let parsed =
            chrono::NaiveDateTime::parse_from_str(&b.name, "tovplay_external_%Y%m%d_%H%M%S.sql")
                .unwrap()
                .and_utc();
        assert_eq!(parsed.timestamp(), b.taken_at.timestamp(), "{}", b.name);
        let mtime: chrono::DateTime<chrono::Utc> = std::fs::metadata(&b.path)
            .unwrap()
            .modified()
            .unwrap()
            .into();
        assert_eq!(mtime.timestamp(), b.taken_at.timestamp(), "{}", b.name);
        let text = std::fs::read_to_string(&b.path).unwrap();
        let complete = text.contains("-- PostgreSQL database dump complete");
        assert_eq!(complete, b.kind != BackupKind::Truncated, "{}", b.name);
        users_seen.push(b.counts["User"]);
    }
    let right = lab.right_backup().unwrap();
    assert_eq!(right.name, lab.backups[2].name);
    assert!(lab.damage_at - right.taken_at >= chrono::Duration::hours(6));
    assert!(lab.backups[4].taken_at > lab.damage_at);
    assert_eq!(users_seen[4], 0, "the backup after the damage has no users");
    assert!(
        users_seen[..4].windows(2).all(|w| w[0] < w[1]),
        "{users_seen:?}"
    );
    assert_eq!(
        right.counts["User"],
        Sizes::for_rows(4000).at(90).users as i64
    );

    // The right backup restores with psql into a scratch database with its counts.
    lab.cluster.create_db("scratch").unwrap();
    let out = std::process::Command::new(lab.cluster.bin("psql"))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &lab.cluster.port().to_string(), "-d", "scratch", "-f"])
        .arg(&right.path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    for (t, n) in &right.counts {
        assert_eq!(count(&lab, "scratch", t), Ok(*n), "{t}");
    }
    // Foreign keys and unique emails came back with it.
    let constraints = lab
        .cluster
        .psql(
            "scratch",
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'",
        )
        .unwrap();
    assert_eq!(constraints, "6");
    let dup = lab
        .cluster
        .psql(
            "scratch",
            "INSERT INTO \"User\" (\"email\", \"username\", \"passwordHash\") VALUES ('player1@tovplay.example', 'again', 'x')",
        )
        .unwrap_err()
        .to_string();
    assert!(dup.contains("User_email_key"), "{dup}");

    // The inventory the lab wrote loads and points at this sandbox.
    let inv = Inventory::load(&lab.inventory_path).unwrap();
    let db = inv.database("main").unwrap();
    assert_eq!(db.watch, WATCHED);
    assert_eq!(db.expect["User"].min, Some(20));
    let url = db.pg_url().unwrap();
    assert_eq!(
        (url.port, url.dbname.as_str()),
        (lab.cluster.port(), DB_NAME)
    );
    let cat = inv.catalog("external").unwrap();
    assert_eq!(std::path::Path::new(&cat.path), lab.dir.join("backups"));
    assert_eq!(
        cat.pattern.as_deref(),
        Some("tovplay_external_%Y%m%d_%H%M%S.sql")
    );
    assert!(inv.services.is_empty());
    // The shipped answers file sits beside it.
    let answers = std::fs::read_to_string(&lab.answers_path).unwrap();
    assert!(
        answers.contains("'table-wiped'") && answers.contains("swap = \"TovPlay\""),
        "{answers}"
    );
    // lab.json holds the answer key for scoring.
    let rec: lifeline::lab::LabRecord =
        serde_json::from_str(&std::fs::read_to_string(lab.dir.join("lab.json")).unwrap()).unwrap();
    let facts = rec.facts.unwrap();
    assert_eq!(facts, lab.facts());
    assert_eq!(facts.right_backup, right.name);
}
