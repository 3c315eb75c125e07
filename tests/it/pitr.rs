//! Point-in-time recovery with real parts: a PostgreSQL 15 cluster archiving
//! WAL (archive_command), a pg_basebackup before the damage, an application
//! writer that logs every committed row (ground truth), then the damage of
//! each lab scenario (rogue-sync DELETE, TRUNCATE, DROP + re-create, DROP
//! DATABASE). The target is found in the archived WAL with pg_waldump, the
//! cluster recovered beside the live one, and the rows compared with the
//! writer's log. Also: a base backup that ends after the target is refused;
//! a WAL gap in the window is reported before anything starts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeline::actions::RealActions;
use lifeline::engine::types::*;
use lifeline::engine::{Actions, Output};
use lifeline::pitr::{self, Damaged, Destruction, RecoveryRequest, RelId};
use lifeline::redact::Redactor;
use lifeline::sandbox::{is_root, user_ids};
use lifeline::transport::{Host, LocalHost};
use support::{PgCluster, PgOptions};

/// A cluster that archives into `<dir>/wal`, with `<dir>/base` for base
/// backups and `<dir>/recovery` for recovery clusters (all owned by the
/// server's user, 0700).
struct World {
    pg: PgCluster,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("lifeline-pitr-")
            .tempdir()
            .unwrap();
        for d in ["wal", "base", "recovery"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let owner = is_root().then(|| user_ids("postgres").unwrap());
        for p in [
            dir.path().to_path_buf(),
            dir.path().join("wal"),
            dir.path().join("base"),
            dir.path().join("recovery"),
        ] {
            if let Some((u, g)) = owner {
                std::os::unix::fs::chown(&p, Some(u), Some(g)).unwrap();
            }
        }
        let wal = dir.path().join("wal");
        let pg = PgCluster::start_with(PgOptions {
            settings: vec![
                ("wal_level".into(), "replica".into()),
                ("archive_mode".into(), "on".into()),
                (
                    "archive_command".into(),
                    // Atomic: a segment appears under its name only when whole.
                    format!(
                        "'test ! -f {w}/%f && cp %p {w}/%f.part && mv {w}/%f.part {w}/%f'",
                        w = wal.display()
                    ),
                ),
            ],
            ..Default::default()
        })
        .unwrap();
        World { pg, dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn psql(&self, db: &str, sql: &str) -> String {
        self.pg
            .psql(db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
    /// pg_basebackup (tar format, the WAL left to the archive) into base/NAME.
    fn base_backup(&self, name: &str) {
        let mut c = Command::new(self.pg.bin("pg_basebackup"));
        c.args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-Ft",
            "-X",
            "none",
            "-c",
            "fast",
        ])
        .arg("-p")
        .arg(self.pg.port().to_string())
        .arg("-D")
        .arg(self.path("base").join(name));
        if let Some((u, g)) = is_root().then(|| user_ids("postgres").unwrap()) {
            c.uid(u).gid(g);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    /// Forces the current segment into the archive and waits for it.
    fn switch_wal(&self) {
        let seg = self.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())");
        for _ in 0..200 {
            if self.path("wal").join(&seg).exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("segment {seg} was not archived");
    }
    fn archive_toml(&self, wal: &str, base: &str) -> String {
        format!(
            "[[archive]]\nname = \"wal\"\nkind = \"wal-dir\"\nhost = \"here\"\nbase_dir = \"{}\"\nwal_dir = \"{}\"\nrecovery_dir = \"{}\"\n",
            self.path(base).display(),
            self.path(wal).display(),
            self.path("recovery").display()
        )
    }
    fn archive_spec(&self) -> lifeline::inventory::ArchiveSpec {
        self.archive_spec_at("wal", "base")
    }
    /// The archive read through other directory names (e.g. hostile ones linked to the real ones).
    fn archive_spec_at(&self, wal: &str, base: &str) -> lifeline::inventory::ArchiveSpec {
        let inv = support::inventory(&format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n{}",
            self.archive_toml(wal, base)
        ));
        inv.archives[0].clone()
    }
    fn db_oid(&self, db: &str) -> u32 {
        self.psql(
            "postgres",
            &format!("SELECT oid FROM pg_database WHERE datname = '{db}'"),
        )
        .parse()
        .unwrap()
    }
    fn rel(&self, db: &str, table: &str) -> RelId {
        let out = self.psql(
            db,
            &format!("SELECT oid, pg_relation_filenode(oid) FROM pg_class WHERE oid = '{table}'::regclass"),
        );
        let (a, b) = out.split_once('|').unwrap();
        RelId {
            oid: a.parse().unwrap(),
            filenode: b.parse().unwrap(),
        }
    }
}

fn host() -> Host {
    Host::Local(LocalHost::new("here"))
}

/// The lab's application writer: one row per transaction into `table`,
/// each id logged only after its COMMIT returned (the ground truth).
struct Writer {
    log: Arc<Mutex<Vec<i64>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    async fn start(pg: &PgCluster, db: &str, table: &str, first_id: i64) -> Writer {
        let client = support::client(pg, db).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let sql = format!("INSERT INTO {table} (id, name) VALUES ($1, 'w')");
        let task = tokio::spawn(async move {
            let mut id = first_id;
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                if client.execute(&sql, &[&id]).await.is_err() {
                    break;
                }
                l.lock().unwrap().push(id);
                id += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        // Let it write a little first.
        while log.lock().unwrap().len() < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Writer { log, stop, task }
    }
    fn committed(&self) -> Vec<i64> {
        self.log.lock().unwrap().clone()
    }
    async fn finish(self) -> Vec<i64> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let log = self.log.clone();
        let _ = self.task.await;
        log.lock().unwrap().clone()
    }
}

/// Ids in a table of the recovered dump, restored with pg_restore into a scratch database.
fn ids_in(w: &World, db: &str, table: &str) -> Vec<i64> {
    let out = w.psql(db, &format!("SELECT id FROM {table} ORDER BY id"));
    out.lines().map(|l| l.parse().unwrap()).collect()
}

async fn recover_to_wal_target(
    w: &World,
    damaged: &Damaged,
    db: &str,
    expect: BTreeMap<String, i64>,
    name: &str,
) -> (pitr::Recovered, pitr::Finding) {
    recover_with(&w.archive_spec(), damaged, db, expect, name).await
}

async fn recover_with(
    spec: &lifeline::inventory::ArchiveSpec,
    damaged: &Damaged,
    db: &str,
    expect: BTreeMap<String, i64>,
    name: &str,
) -> (pitr::Recovered, pitr::Finding) {
    let h = host();
    let spec = spec.clone();
    let status = pitr::list(&h, &spec).await.unwrap();
    let found = pitr::find_target(&h, &status, damaged).await.unwrap();
    let plan = pitr::plan(&status, &found.target).unwrap();
    let r = pitr::recover(
        &h,
        &spec,
        &status,
        &plan,
        &RecoveryRequest {
            database: db.into(),
            expect,
            name: name.into(),
            wait: Duration::from_secs(120),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("recover: {e}"));
    eprintln!("{name}: {:?} replay {:.1} s", found.finding, r.replay_s);
    (r, found.finding)
}

/// Loads the recovered dump into a scratch database with pg_restore.
fn load_dump(w: &World, dump: &str, into: &str) {
    w.pg.create_db(into).unwrap();
    let o = Command::new(w.pg.bin("pg_restore"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "--no-owner"])
        .arg("-p")
        .arg(w.pg.port().to_string())
        .arg("-d")
        .arg(into)
        .arg(dump)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const USERS: &str = "CREATE TABLE \"User\" (id int8 PRIMARY KEY, name text);\
 INSERT INTO \"User\" SELECT g, 'seed' FROM generate_series(1, 200) g;\
 CREATE TABLE \"Game\" (id int8 PRIMARY KEY, name text);\
 INSERT INTO \"Game\" SELECT g, 'game' FROM generate_series(1, 12) g;";

/// rogue-sync-wipe: the writer keeps writing while a sync job deletes the
/// users; recovery to the WAL target loses no row committed before the
/// DELETE, holds none of its effects, and comes into the live server through
/// the existing restore path as `<db>__restore_<stamp>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_sync_delete_recovered_to_the_wal_target_loses_no_row() {
    let w = World::new();
    w.pg.create_db("app").unwrap();
    w.psql("app", USERS);
    w.base_backup("b1");
    let damaged = Damaged {
        db_oid: w.db_oid("app"),
        relations: vec![w.rel("app", "\"User\"")],
        healthy_at: Some(chrono::Utc::now()),
        ..Default::default()
    };
    let writer = Writer::start(&w.pg, "app", "\"User\"", 10_000).await;
    let before_damage = writer.committed();
    // The damage: one transaction deleting every seeded user (the writer keeps going).
    w.psql("app", "DELETE FROM \"User\" WHERE id <= 200");
    let after = writer.committed().len();
    while writer.committed().len() < after + 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = writer.finish().await;
    w.switch_wal();

    let (r, f) = recover_to_wal_target(
        &w,
        &damaged,
        "app",
        BTreeMap::from([
            ("public.User".to_string(), 200),
            ("public.Game".to_string(), 12),
        ]),
        "app-rogue",
    )
    .await;
    assert!(
        matches!(f.destruction, Destruction::DeleteMany { rows: 200, .. }),
        "{f:?}"
    );
    assert!(
        r.stopped
            .contains(&format!("before commit of transaction {}", f.xid)),
        "{}",
        r.stopped
    );
    assert_ne!(r.xid_status.as_deref(), Some("committed"));
    // The recovery dir is private and kept, the cluster stopped.
    assert_eq!(mode(Path::new(&r.dir)), 0o700);
    assert_eq!(mode(Path::new(&r.data_dir)), 0o700);
    assert!(!Path::new(&r.data_dir).join("postmaster.pid").exists());
    assert!(Path::new(&r.dump).exists());

    // Into the live server through the existing restore path.
    let inv = support::inventory(&format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n[[backups]]\nname = \"pitr\"\nhost = \"here\"\npath = \"{}\"\ndatabase = \"main\"\n",
        w.pg.url("app"),
        r.dir
    ));
    let red = Redactor::new();
    inv.register_secrets(&red);
    let a = RealActions::new(inv, red);
    let spec = a.inventory().database("main").unwrap().clone();
    let out = a
        .restore(
            &RestoreRequest {
                database: DbTarget {
                    name: "main".into(),
                    url: spec.pg_url().unwrap().clone(),
                    spec,
                },
                target_db: "app__restore_pitr".into(),
                catalog: a.inventory().backups[0].clone(),
                host: HostTarget {
                    name: "here".into(),
                    spec: a.inventory().host("here").unwrap().clone(),
                },
                backup_path: r.dump.clone(),
                jobs: 2,
                restore_as: RestoreAs::Admin,
                picked: None,
            },
            &Output::discard(),
        )
        .await
        .unwrap_or_else(|e| panic!("restore: {e}"));
    assert_eq!(
        out.manifest.tables.get("public.\"Game\""),
        Some(&12),
        "{:?}",
        out.manifest.tables
    );

    let got = ids_in(&w, "app__restore_pitr", "\"User\"");
    // None of the DELETE's effects: every seeded user is there.
    for id in 1..=200 {
        assert!(got.binary_search(&id).is_ok(), "user {id} lost");
    }
    // Zero rows lost: every row the writer saw committed before the DELETE is there.
    let lost: Vec<_> = before_damage
        .iter()
        .filter(|id| got.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "rows lost: {lost:?}");
    // Nothing after the destructive commit: rows written after it are absent.
    let late: Vec<_> = all[after..]
        .iter()
        .filter(|id| got.binary_search(id).is_ok())
        .collect();
    assert!(late.is_empty(), "rows from after the target: {late:?}");
    // The live database was not touched by any of this.
    assert_eq!(
        w.psql("app", "SELECT count(*) FROM \"User\" WHERE id <= 200"),
        "0"
    );
}

/// table-wiped (TRUNCATE), migration-reset (DROP + re-create + seed) and
/// database-missing (DROP DATABASE), each in its own database of one
/// archiving cluster: the target found in the WAL, the recovered copy
/// holds every row committed before the damage and none of its effects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_recreate_and_drop_database_recovered_from_wal() {
    let w = World::new();
    for db in ["wiped", "migrated", "gone"] {
        w.pg.create_db(db).unwrap();
        w.psql(db, USERS);
    }
    w.base_backup("b1");
    let healthy = chrono::Utc::now();
    let wiped = Damaged {
        db_oid: w.db_oid("wiped"),
        relations: vec![w.rel("wiped", "\"User\"")],
        healthy_at: Some(healthy),
        ..Default::default()
    };
    let migrated = Damaged {
        db_oid: w.db_oid("migrated"),
        relations: vec![w.rel("migrated", "\"User\"")],
        healthy_at: Some(healthy),
        ..Default::default()
    };
    let gone = Damaged {
        db_oid: w.db_oid("gone"),
        healthy_at: Some(healthy),
        ..Default::default()
    };

    let mut truth = BTreeMap::new();
    // table-wiped
    let writer = Writer::start(&w.pg, "wiped", "\"User\"", 10_000).await;
    let before = writer.committed();
    w.psql("wiped", "TRUNCATE \"User\"");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = writer.finish().await;
    truth.insert("wiped", (before, all));
    // migration-reset: the table dropped, re-created and seeded.
    let writer = Writer::start(&w.pg, "migrated", "\"User\"", 10_000).await;
    let before = writer.committed();
    w.psql(
        "migrated",
        "BEGIN; DROP TABLE \"User\"; CREATE TABLE \"User\" (id int8 PRIMARY KEY, name text); INSERT INTO \"User\" VALUES (1, 'Legacy Account'); COMMIT;",
    );
    let all = writer.finish().await;
    truth.insert("migrated", (before, all));
    // database-missing
    let writer = Writer::start(&w.pg, "gone", "\"User\"", 10_000).await;
    let before = writer.committed();
    w.psql("postgres", "DROP DATABASE gone WITH (FORCE)");
    let all = writer.finish().await;
    truth.insert("gone", (before, all));
    w.switch_wal();

    // The archive read through directory names a shell or the conf file
    // would misread unquoted: quote, space, $, %, ;.
    const HOSTILE_WAL: &str = "wal it's $HOME 100%; x";
    const HOSTILE_BASE: &str = "base b's `id` dir";
    std::os::unix::fs::symlink(w.path("wal"), w.path(HOSTILE_WAL)).unwrap();
    std::os::unix::fs::symlink(w.path("base"), w.path(HOSTILE_BASE)).unwrap();
    let hostile = w.archive_spec_at(HOSTILE_WAL, HOSTILE_BASE);
    for (db, damaged, want) in [
        ("wiped", &wiped, "storage"),
        ("migrated", &migrated, "storage"),
        ("gone", &gone, "drop-database"),
    ] {
        let (r, f) = recover_with(
            &hostile,
            damaged,
            db,
            BTreeMap::from([("public.User".to_string(), 200)]),
            &format!("{db}-pitr"),
        )
        .await;
        // restore_command read the archive through the hostile name, quoted.
        let conf = std::fs::read_to_string(Path::new(&r.data_dir).join("postgresql.conf")).unwrap();
        assert!(
            conf.contains("100%%; x") && conf.contains("restore_command"),
            "{conf}"
        );
        match want {
            "storage" => assert!(
                matches!(f.destruction, Destruction::StorageDropped { .. }),
                "{db}: {f:?}"
            ),
            _ => assert!(
                matches!(f.destruction, Destruction::DropDatabase { .. }),
                "{db}: {f:?}"
            ),
        }
        let stop = match f.target() {
            pitr::Target::Lsn { lsn } => format!("before WAL location (LSN) \"{lsn}\""),
            _ => format!("before commit of transaction {}", f.xid),
        };
        assert!(r.stopped.contains(&stop), "{db}: {}", r.stopped);
        let scratch = format!("{db}_check");
        load_dump(&w, &r.dump, &scratch);
        let got = ids_in(&w, &scratch, "\"User\"");
        let (before, all) = &truth[db];
        for id in (1..=200).chain(before.iter().copied()) {
            assert!(got.binary_search(&id).is_ok(), "{db}: row {id} lost");
        }
        // Every row in the copy is a seeded one or one the writer committed.
        for id in &got {
            assert!(
                *id <= 200 || all.contains(id),
                "{db}: row {id} from nowhere"
            );
        }
        if db == "migrated" {
            // None of the re-create's effects: no 'Legacy Account' alone.
            assert!(got.len() > 200, "{db}: {}", got.len());
        }
    }
}

/// A base backup that ends after the target is refused with the reason;
/// with only such a backup nothing starts. A WAL gap in the window is
/// reported before anything starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_base_backup_refused_and_wal_gap_reported_before_anything_starts() {
    let w = World::new();
    w.pg.create_db("app").unwrap();
    w.psql("app", USERS);
    w.base_backup("b1-before");
    let damaged = Damaged {
        db_oid: w.db_oid("app"),
        relations: vec![w.rel("app", "\"User\"")],
        ..Default::default()
    };
    // Enough traffic to fill segments between the backup and the damage.
    for _ in 0..3 {
        w.psql("app", "INSERT INTO \"Game\" SELECT g, 'x' FROM generate_series(100000, 100100) g ON CONFLICT DO NOTHING");
        w.switch_wal();
    }
    w.psql("app", "DELETE FROM \"User\"");
    w.switch_wal();
    w.base_backup("b2-after");
    w.switch_wal();

    let h = host();
    let spec = w.archive_spec();
    let status = pitr::list(&h, &spec).await.unwrap();
    assert_eq!(status.backups.len(), 2, "{:?}", status.lines());
    let found = pitr::find_target(&h, &status, &damaged).await.unwrap();
    let plan = pitr::plan(&status, &found.target).unwrap();
    assert_eq!(plan.backup.dir, "b1-before");
    let (dir, why) = &plan.refused[0];
    assert_eq!(dir, "b2-after");
    assert!(
        why.contains("after the target") && why.contains("already holds the damage"),
        "{why}"
    );

    // The operator's alternative, a time target (exclusive) at the
    // destructive commit: the same backup is chosen, the DELETE is not applied.
    let at = pitr::Target::Time {
        at: found.finding.commit_time,
    };
    let by_time = pitr::plan(&status, &at).unwrap();
    // b2-after "ended" in the same whole second as the DELETE: refused too.
    assert_eq!(by_time.backup.dir, "b1-before");
    let r = pitr::recover(
        &h,
        &spec,
        &status,
        &by_time,
        &RecoveryRequest {
            database: "app".into(),
            expect: BTreeMap::from([("public.User".to_string(), 200)]),
            name: "by-time".into(),
            wait: Duration::from_secs(120),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("recover by time: {e}"));
    assert_eq!(r.counts["public.User"], 200);
    assert!(
        r.stopped
            .contains("recovery stopping before commit of transaction"),
        "{}",
        r.stopped
    );
    std::fs::remove_dir_all(&r.dir).unwrap();

    // A target the WAL never reaches: the server gives up, lifeline says so
    // with the server's words at once (no wait for the time limit), and
    // keeps the directory.
    let mut beyond = plan.clone();
    beyond.target = pitr::Target::Xid {
        xid: 4_000_000,
        commit_lsn: None,
    };
    let t0 = std::time::Instant::now();
    let e = pitr::recover(
        &h,
        &spec,
        &status,
        &beyond,
        &RecoveryRequest {
            database: "app".into(),
            expect: BTreeMap::new(),
            name: "beyond".into(),
            wait: Duration::from_secs(300),
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("recovery ended before configured recovery target was reached"),
        "{e}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "{:?}",
        t0.elapsed()
    );
    assert!(w.path("recovery").join("beyond").join("data").is_dir());
    std::fs::remove_dir_all(w.path("recovery").join("beyond")).unwrap();

    // Only the late backup: refused, nothing started.
    let mut only_late = status.clone();
    only_late.backups.retain(|b| b.dir == "b2-after");
    let e = pitr::plan(&only_late, &found.target)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no base backup can reach") && e.contains("nothing was started"),
        "{e}"
    );

    // A WAL gap between the backup and the damage: reported before anything starts.
    let b1 = &status.backups[0];
    let seg = b1.start_lsn.segno(status.segment_size) + 1;
    let missing = lifeline::pitr::wal::SegName {
        timeline: 1,
        segno: seg,
    }
    .file_name(status.segment_size);
    std::fs::remove_file(w.path("wal").join(&missing)).unwrap();
    let status = pitr::list(&h, &spec).await.unwrap();
    assert!(
        status
            .lines()
            .join("\n")
            .contains(&format!("GAPS: {missing}")),
        "{:?}",
        status.lines()
    );
    let e = pitr::find_target(&h, &status, &damaged)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("WAL gap") && e.contains(&missing) && e.contains("nothing was started"),
        "{e}"
    );
    // The plan for a target found earlier refuses too (the gap lies between backup and target).
    let e = pitr::plan(&status, &found.target).unwrap_err().to_string();
    assert!(e.contains("WAL gap") && e.contains(&missing), "{e}");
    assert_eq!(std::fs::read_dir(w.path("recovery")).unwrap().count(), 0);

    // `lifeline status` shows the archive: its base backups, WAL range and the gap.
    let inv = w.path("inv.toml");
    std::fs::write(
        &inv,
        format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n{}",
            w.archive_toml("wal", "base")
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let o = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv)
        .arg("status")
        .output()
        .unwrap();
    let text = support::stdout(&o);
    assert!(
        text.contains("WAL ARCHIVES"),
        "{text}{}",
        support::stderr(&o)
    );
    assert!(
        text.contains("base backup 'b1-before' (tar): start"),
        "{text}"
    );
    assert!(text.contains("base backup 'b2-after'"), "{text}");
    assert!(text.contains(&format!("GAPS: {missing}")), "{text}");
    let o = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&support::stdout(&o)).unwrap();
    let a = &v["archives"][0];
    assert_eq!(a["name"], "wal");
    assert_eq!(a["status"]["backups"][0]["dir"], "b1-before");
    assert_eq!(a["status"]["wal"][0]["gaps"][0][0], missing.as_str());
}

/// A real pgBackRest repository (stanza, archive-push, a full backup) is
/// listed: its backups with start/stop LSN and time, the WAL range; the
/// spec-less target search points at find_target_in (tests/it/pitr_pgbackrest.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbackrest_stanza_is_listed() {
    let dir = tempfile::Builder::new()
        .prefix("lifeline-pgbr-")
        .tempdir()
        .unwrap();
    for d in ["repo", "log", "lock"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let conf = dir.path().join("pgbackrest.conf");
    let owner = is_root().then(|| user_ids("postgres").unwrap());
    // The cluster first (its paths go into the config), archiving to the stanza.
    let pg = PgCluster::start_with(PgOptions {
        settings: vec![
            ("wal_level".into(), "replica".into()),
            ("archive_mode".into(), "on".into()),
            (
                "archive_command".into(),
                format!(
                    "'pgbackrest --config={} --stanza=main archive-push %p'",
                    conf.display()
                ),
            ),
        ],
        ..Default::default()
    })
    .unwrap();
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={d}/repo\nlog-path={d}/log\nlock-path={d}/lock\nlog-level-console=warn\nstart-fast=y\nrepo1-retention-full=2\n\n[main]\npg1-path={data}\npg1-port={port}\npg1-socket-path={sock}\n",
            d = dir.path().display(),
            data = pg.data_dir().display(),
            port = pg.port(),
            sock = pg.socket_dir().display()
        ),
    )
    .unwrap();
    for p in [
        dir.path().to_path_buf(),
        dir.path().join("repo"),
        dir.path().join("log"),
        dir.path().join("lock"),
        conf.clone(),
    ] {
        if let Some((u, g)) = owner {
            std::os::unix::fs::chown(&p, Some(u), Some(g)).unwrap();
        }
    }
    let br = |args: &[&str]| {
        let mut c = Command::new("pgbackrest");
        c.arg(format!("--config={}", conf.display()))
            .arg("--stanza=main")
            .args(args);
        if let Some((u, g)) = owner {
            c.uid(u).gid(g).env("HOME", dir.path());
        }
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "pgbackrest {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    br(&["stanza-create"]);
    br(&["--type=full", "backup"]);

    let inv = support::inventory(&format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[archive]]\nname = \"repo\"\nkind = \"pgbackrest\"\nhost = \"here\"\nstanza = \"main\"\nconfig = \"{}\"\n",
        conf.display()
    ));
    let h = host();
    let status = pitr::list(&h, &inv.archives[0]).await.unwrap();
    assert_eq!(status.backups.len(), 1, "{:?}", status.lines());
    let b = &status.backups[0];
    assert!(b.dir.ends_with('F'), "{}", b.dir);
    assert_eq!(b.format, "pgbackrest full");
    assert!(b.stop_lsn.unwrap() > b.start_lsn);
    assert!(b.stop_time.unwrap() >= b.start_time.unwrap());
    assert_eq!(b.pg_version.as_deref(), Some("15"));
    assert!(
        !status.wal.is_empty() && status.wal[0].gaps.is_empty(),
        "{:?}",
        status.lines()
    );
    assert!(
        status
            .segments
            .contains(&"000000010000000000000002".to_string())
            || status.segments.len() >= 2,
        "{:?}",
        status.segments
    );
    let e = pitr::find_target(&h, &status, &Damaged::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("find_target_in"), "{e}");
    // A wrong stanza: no backups, and pgBackRest's own word as the problem.
    let mut wrong = inv.archives[0].clone();
    wrong.stanza = Some("nosuch".into());
    let s = pitr::list(&h, &wrong).await.unwrap();
    assert!(s.backups.is_empty());
    let lines = s.lines().join("\n");
    assert!(
        lines.contains("no base backup found") && lines.contains("missing stanza path"),
        "{lines}"
    );
}

/// `lifeline check` refuses a bad `[[archive]]` with file:line:col and exit 2.
#[test]
fn check_refuses_a_bad_archive_entry() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.toml");
    std::fs::write(
        &inv,
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[archive]]\nname = \"wal\"\nkind = \"wal-dir\"\nhost = \"here\"\nbase_dir = \"base\"\n",
    )
    .unwrap();
    let o = support::lifeline(dir.path())
        .arg("-i")
        .arg(&inv)
        .arg("check")
        .output()
        .unwrap();
    let err = format!("{}{}", support::stdout(&o), support::stderr(&o));
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("inv.toml:6:"), "{err}");
    assert!(err.contains("needs 'wal_dir'"), "{err}");
    assert!(err.contains("'base_dir' must be an absolute path"), "{err}");
}

/// The operator's path, headless: `lifeline run pitr-restore` (the shipped
/// runbook, hold shortened) on an archiving cluster whose writer logged
/// every committed row, after a rogue DELETE. Exit 0; the swapped-in live
/// database holds every row committed before the destructive transaction
/// and none written after it; the journal holds the recover-pitr evidence;
/// the restore read the recovered dump held to its SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_restore_runbook_brings_back_every_row_committed_before_the_damage() {
    let w = World::new();
    w.pg.create_db("app").unwrap();
    w.psql("app", USERS);
    w.base_backup("b1");
    let healthy = chrono::Utc::now();
    let writer = Writer::start(&w.pg, "app", "\"User\"", 10_000).await;
    let before_damage = writer.committed();
    w.psql("app", "DELETE FROM \"User\" WHERE id <= 200");
    let after = writer.committed().len();
    while writer.committed().len() < after + 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = writer.finish().await;
    w.switch_wal();

    let inv = w.path("lifeline.toml");
    std::fs::write(
        &inv,
        format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n{}",
            w.pg.url("app"),
            w.archive_toml("wal", "base")
        ),
    )
    .unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/pitr-restore.toml"),
    )
    .unwrap();
    assert!(shipped.contains("hold_s = 60"));
    let rb = w.path("pitr-restore.toml");
    std::fs::write(&rb, shipped.replace("hold_s = 60", "hold_s = 1")).unwrap();
    let answers = w.path("answers.toml");
    std::fs::write(
        &answers,
        format!(
            "[params]\nhealthy_at = \"{}\"\n\n[confirm]\nrestore = \"app as superuser\"\nowners = \"app\"\nswap = \"app\"\nstart = \"app\"\n",
            healthy.to_rfc3339()
        ),
    )
    .unwrap();
    // First damage evidence BEFORE the destructive commit: the transaction
    // found is not the damage; refused, nothing started, live untouched.
    let early = w.path("answers-early.toml");
    std::fs::write(
        &early,
        format!(
            "[params]\nhealthy_at = \"{}\"\ndamaged_at = \"{}\"\n\n[confirm]\nrestore = \"app as superuser\"\n",
            healthy.to_rfc3339(),
            (healthy + chrono::Duration::milliseconds(1)).to_rfc3339()
        ),
    )
    .unwrap();
    let o = support::lifeline(&w.path("state-early"))
        .current_dir(w.dir.path())
        .env_remove("LIFELINE_RUNBOOKS")
        .arg("-i")
        .arg(&inv)
        .arg("run")
        .arg(&rb)
        .arg("--answers")
        .arg(&early)
        .output()
        .unwrap();
    let text = support::stdout(&o) + &support::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("committed after the first damage evidence")
            && text.contains("nothing was started"),
        "{text}"
    );
    assert_eq!(std::fs::read_dir(w.path("recovery")).unwrap().count(), 0);
    assert_eq!(
        w.psql("app", "SELECT count(*) FROM \"User\" WHERE id <= 200"),
        "0"
    );

    let state = w.path("state");
    let o = support::lifeline(&state)
        .current_dir(w.dir.path())
        .env_remove("LIFELINE_RUNBOOKS")
        .arg("-i")
        .arg(&inv)
        .arg("run")
        .arg(&rb)
        .arg("--answers")
        .arg(&answers)
        .output()
        .unwrap();
    let text = support::stdout(&o) + &support::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("held to the pick: sha256"), "{text}");

    // The live database is now the recovered copy: none of the DELETE's
    // effects, zero rows lost, nothing from after the destructive commit.
    let got = ids_in(&w, "app", "\"User\"");
    for id in 1..=200 {
        assert!(got.binary_search(&id).is_ok(), "user {id} lost");
    }
    let lost: Vec<_> = before_damage
        .iter()
        .filter(|id| got.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "rows lost: {lost:?}");
    let late: Vec<_> = all[after..]
        .iter()
        .filter(|id| got.binary_search(id).is_ok())
        .collect();
    assert!(late.is_empty(), "rows from after the target: {late:?}");
    // The damaged database is kept beside it.
    let kept = w.psql(
        "postgres",
        "SELECT datname FROM pg_database WHERE datname LIKE 'app__damaged_%'",
    );
    assert_eq!(
        w.psql(&kept, "SELECT count(*) FROM \"User\" WHERE id <= 200"),
        "0"
    );

    // The journal: the recover-pitr outcome carries the evidence.
    let journal = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("journal.jsonl");
    let recs = lifeline::journal::read_records(&journal).unwrap();
    let pitr = recs
        .iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("pitr"))
        .expect("recover-pitr finished")
        .data
        .clone();
    let ev = &pitr["evidence"];
    assert_eq!(ev["destruction"]["kind"], "delete-many", "{ev}");
    assert_eq!(ev["destruction"]["rows"], 200, "{ev}");
    assert!(ev["xid"].as_u64().unwrap() > 0, "{ev}");
    assert!(
        ev["commit_lsn"].as_u64().unwrap() > ev["first_lsn"].as_u64().unwrap(),
        "{ev}"
    );
    assert!(ev["commit_time"].is_string(), "{ev}");
    // The text form names the xid, the LSNs and the deciding record.
    let evt = pitr["evidence_text"].as_str().unwrap();
    assert!(
        evt.contains(&format!("transaction {} committed at", ev["xid"]))
            && evt.contains("200 rows deleted")
            && evt.contains("record: DELETE"),
        "{evt}"
    );
    assert_eq!(pitr["target"]["kind"], "xid", "{pitr}");
    assert!(
        pitr["stopped"]
            .as_str()
            .unwrap()
            .contains(&format!("before commit of transaction {}", ev["xid"])),
        "{pitr}"
    );
    let dir = Path::new(pitr["recovery_dir"].as_str().unwrap());
    assert!(dir.starts_with(w.path("recovery")), "{pitr}");
    assert_eq!(mode(dir), 0o700);
    assert!(
        !dir.join("data/postmaster.pid").exists(),
        "stopped and kept"
    );
    let restore = recs
        .iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("restore"))
        .expect("restore finished");
    assert_eq!(
        restore.data["manifest"]["tables"]["public.\"Game\""], 12,
        "{}",
        restore.data
    );

    // The restore of a recover-pitr dump is held to its SHA-256: a dump
    // replaced after recovery (here by the damaged snapshot, a valid
    // pg_dump archive) is refused before anything is created.
    let snap = recs
        .iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("snapshot"))
        .unwrap()
        .data["path"]
        .as_str()
        .unwrap()
        .to_string();
    let dump = pitr["dump"].as_str().unwrap().to_string();
    std::fs::copy(&snap, &dump).unwrap();
    let inventory = support::inventory(&std::fs::read_to_string(&inv).unwrap());
    let red = Redactor::new();
    inventory.register_secrets(&red);
    let a = RealActions::new(inventory, red);
    let spec = a.inventory().database("main").unwrap().clone();
    let e = a
        .restore(
            &RestoreRequest {
                database: DbTarget {
                    name: "main".into(),
                    url: spec.pg_url().unwrap().clone(),
                    spec,
                },
                target_db: "app__restore_replaced".into(),
                catalog: lifeline::inventory::CatalogSpec {
                    name: toml::Spanned::new(0..0, "recover-pitr:wal".into()),
                    host: toml::Spanned::new(0..0, "here".into()),
                    path: pitr["recovery_dir"].as_str().unwrap().into(),
                    pattern: None,
                    database: toml::Spanned::new(0..0, "main".into()),
                },
                host: HostTarget {
                    name: "here".into(),
                    spec: a.inventory().host("here").unwrap().clone(),
                },
                backup_path: dump.clone(),
                jobs: 1,
                restore_as: RestoreAs::Admin,
                picked: Some(PickedBackup {
                    name: "recovered.dump".into(),
                    path: dump.clone(),
                    size: pitr["size"].as_u64().unwrap(),
                    sha256: pitr["sha256"].as_str().map(str::to_string),
                    taken_at: None,
                    source: "recover-pitr step 'pitr'".into(),
                }),
            },
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not the one picked"), "{e}");
    assert!(
        w.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'app__restore_replaced'"
        ) == "0"
    );
}

fn journal_of(state: &Path) -> Vec<lifeline::journal::Record> {
    let dir = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    lifeline::journal::read_records(&dir.join("journal.jsonl")).unwrap()
}

fn finished<'a>(
    recs: &'a [lifeline::journal::Record],
    step: &str,
) -> Option<&'a lifeline::journal::Record> {
    recs.iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some(step))
}

fn skipped_on(recs: &[lifeline::journal::Record], path: &str) -> Vec<String> {
    recs.iter()
        .filter(|r| {
            r.kind == "step-skipped" && r.data["reason"] == "path" && r.data["path"] == path
        })
        .map(|r| r.step.clone().unwrap_or_default())
        .collect()
}

/// The shipped table-wiped runbook, headless through the `lifeline run`
/// binary (holds shortened), both ways back:
/// - with an `[[archive]]` whose base backup ended before the rogue DELETE
///   and whose WAL covers it, choose-path takes the pitr path: pick and the
///   dump's restore are skipped (journaled, with the reason); the users
///   come back from the WAL-recovered copy and are merged into the live
///   table: zero rows lost of every row the writer saw committed (before
///   and after the DELETE), none of the DELETE's effects;
/// - the same runbook with no archive in the inventory takes the dump path
///   (said why), picks and restores the dump: dump-age data, none of the
///   writer's rows in the restored copy;
/// - a WAL gap in the archive is reported by choose-path before anything
///   starts, naming the missing segments, and the path is dump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_wiped_takes_the_pitr_path_when_the_archive_covers_the_damage_else_the_dump_path() {
    let w = World::new();
    w.pg.create_db("app").unwrap();
    w.psql("app", USERS);
    // The nightly dump, before the writer started: the dump path's backup.
    let dumps = w.path("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let name = format!(
        "app_{}.dump",
        (chrono::Utc::now() - chrono::Duration::minutes(5)).format("%Y%m%d_%H%M%S")
    );
    let o = Command::new(w.pg.bin("pg_dump"))
        .args(["-Fc", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(w.pg.port().to_string())
        .args(["-d", "app", "-f"])
        .arg(dumps.join(&name))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    w.base_backup("b1");
    let healthy = chrono::Utc::now();
    let writer = Writer::start(&w.pg, "app", "\"User\"", 10_000).await;
    w.psql("app", "DELETE FROM \"User\" WHERE id <= 200");
    let after = writer.committed().len();
    while writer.committed().len() < after + 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = writer.finish().await;
    w.switch_wal();

    let base_inv = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"{}\"\npattern = \"app_%Y%m%d_%H%M%S.dump\"\ndatabase = \"main\"\n\n",
        w.pg.url("app"),
        dumps.display()
    );
    let with_archive = w.path("with-archive.toml");
    std::fs::write(
        &with_archive,
        format!("{base_inv}{}", w.archive_toml("wal", "base")),
    )
    .unwrap();
    let without = w.path("without-archive.toml");
    std::fs::write(&without, &base_inv).unwrap();
    let runbooks = support::quick_runbooks(w.dir.path(), 1);
    let answers = w.path("answers.toml");
    std::fs::write(
        &answers,
        format!(
            "[params]\nincident_at = \"{}\"\ntables = 'public.\"User\"'\n\n[confirm]\nrestore = \"app as superuser\"\nmerge = 'merge public.\"User\" into app'\nstart = \"app\"\n",
            healthy.to_rfc3339()
        ),
    )
    .unwrap();
    let run = |inv: &Path, state: &Path| {
        let o = support::lifeline(state)
            .current_dir(w.dir.path())
            .env("LIFELINE_RUNBOOKS", &runbooks)
            .arg("-i")
            .arg(inv)
            .arg("run")
            .arg("table-wiped")
            .arg("--answers")
            .arg(&answers)
            .output()
            .unwrap();
        (o.status.code(), support::stdout(&o) + &support::stderr(&o))
    };

    // 1. The archive covers the damage: the pitr path.
    let state = w.path("state-pitr");
    let (code, text) = run(&with_archive, &state);
    assert_eq!(code, Some(0), "{text}");
    let recs = journal_of(&state);
    let chose = finished(&recs, "choose").expect("choose-path finished");
    assert_eq!(chose.data["path"], "pitr", "{}", chose.data);
    let reason = chose.data["reason"].as_str().unwrap();
    assert!(
        reason.contains("archive 'wal' covers the damage: base backup 'b1' ended")
            && reason.contains("every WAL segment from its start through it is archived"),
        "{reason}"
    );
    assert_eq!(chose.data["forced"], serde_json::Value::Null);
    assert_eq!(skipped_on(&recs, "dump"), ["pick", "restore", "done"]);
    assert!(finished(&recs, "pick").is_none(), "nothing picked");
    let pitr = finished(&recs, "pitr").expect("recover-pitr finished");
    assert_eq!(pitr.data["evidence"]["destruction"]["kind"], "delete-many");
    let restore = finished(&recs, "restore").expect("the pitr restore finished");
    let started = recs
        .iter()
        .find(|r| r.kind == "step-started" && r.step.as_deref() == Some("restore"))
        .unwrap();
    assert_eq!(started.data["path"], "pitr", "{}", started.data);
    let target_db = restore.data["target_db"].as_str().unwrap().to_string();
    assert!(target_db.starts_with("app__restore_"), "{target_db}");
    // Zero rows lost: every seeded user and every row the writer saw
    // committed, before and after the DELETE, is in the live table.
    let got = ids_in(&w, "app", "\"User\"");
    let lost: Vec<_> = (1..=200)
        .chain(all.iter().copied())
        .filter(|id| got.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "rows lost: {lost:?}");
    // The recovered copy holds nothing written after the destructive commit.
    let recovered = ids_in(&w, &target_db, "\"User\"");
    let late: Vec<_> = all[after..]
        .iter()
        .filter(|id| recovered.binary_search(id).is_ok())
        .collect();
    assert!(late.is_empty(), "rows from after the target: {late:?}");
    let merge = finished(&recs, "merge").expect("merged");
    assert_eq!(merge.data["inserted"], 200, "{}", merge.data);
    let done = recs
        .iter()
        .rev()
        .find(|r| r.step.as_deref() == Some("done") && r.kind == "step-finished")
        .unwrap();
    assert!(done.summary.contains("recovered to"), "{}", done.summary);

    // 2. The same runbook with no archive: the dump path, said why.
    let state = w.path("state-dump");
    let (code, text) = run(&without, &state);
    assert_eq!(code, Some(0), "{text}");
    let recs = journal_of(&state);
    let chose = finished(&recs, "choose").expect("choose-path finished");
    assert_eq!(chose.data["path"], "dump", "{}", chose.data);
    assert!(
        chose.data["reason"]
            .as_str()
            .unwrap()
            .contains("no [[archive]] in the inventory covers database 'main'"),
        "{}",
        chose.data
    );
    assert_eq!(skipped_on(&recs, "pitr"), ["pitr", "restore", "done"]);
    let pick = finished(&recs, "pick").expect("picked");
    assert_eq!(pick.data["backup"]["name"], name.as_str(), "{}", pick.data);
    let restored = finished(&recs, "restore").unwrap().data["target_db"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(restored, target_db);
    let from_dump = ids_in(&w, &restored, "\"User\"");
    assert_eq!(from_dump, (1..=200).collect::<Vec<i64>>(), "dump-age data");
    assert!(text.contains("path 'dump'"), "{text}");

    // 3. A WAL gap: reported by choose-path before anything starts.
    w.psql(
        "app",
        "CREATE TABLE gap_filler AS SELECT g FROM generate_series(1, 1000) g",
    );
    w.switch_wal();
    w.psql(
        "app",
        "INSERT INTO gap_filler SELECT g FROM generate_series(1, 1000) g",
    );
    w.switch_wal();
    let gap = w.path("wal-gap");
    std::fs::create_dir(&gap).unwrap();
    let mut segs: Vec<String> = std::fs::read_dir(w.path("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    segs.sort();
    for f in &segs {
        std::fs::copy(w.path("wal").join(f), gap.join(f)).unwrap();
    }
    let wal_segs: Vec<&String> = segs.iter().filter(|f| f.len() == 24).collect();
    assert!(wal_segs.len() >= 4, "{segs:?}");
    // Keep the base backup's first segment and the newest; drop those between.
    let b1_first = segs
        .iter()
        .find(|f| f.ends_with(".backup"))
        .map(|f| f[..24].to_string())
        .unwrap();
    let missing: Vec<&String> = wal_segs
        .iter()
        .copied()
        .filter(|f| **f > b1_first && Some(*f) != wal_segs.last().copied())
        .collect();
    assert!(!missing.is_empty(), "{segs:?}");
    for f in &missing {
        std::fs::remove_file(gap.join(f)).unwrap();
    }
    let inventory = support::inventory(&format!("{base_inv}{}", w.archive_toml("wal-gap", "base")));
    let red = Redactor::new();
    inventory.register_secrets(&red);
    let a = RealActions::new(inventory, red);
    let spec = a.inventory().database("main").unwrap().clone();
    let archive = a.inventory().archives[0].clone();
    let mut req = ChoosePathRequest {
        database: DbTarget {
            name: "main".into(),
            url: spec.pg_url().unwrap().clone(),
            spec,
        },
        archive: Ok((
            archive,
            HostTarget {
                name: "here".into(),
                spec: a.inventory().host("here").unwrap().clone(),
            },
        )),
        incident_at: Some(healthy),
        incident_from_evidence: false,
        forced: None,
        incident_dir: None,
    };
    let outcome = a.choose_path(&req, &Output::discard()).await.unwrap();
    assert_eq!(outcome.path, lifeline::runbook::PathChoice::Dump);
    assert!(
        outcome.reason.contains("WAL gap") && outcome.reason.contains(missing[0].as_str()),
        "{}",
        outcome.reason
    );
    // Forced to pitr, the archive that cannot serve it is a refusal, not a dump.
    req.forced = Some((
        lifeline::runbook::PathChoice::Pitr,
        "parameter 'path' (answers)".into(),
    ));
    let e = a
        .choose_path(&req, &Output::discard())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the pitr path is forced (parameter 'path' (answers))") && e.contains("WAL gap"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(w.path("recovery")).unwrap().count(),
        1,
        "nothing new started"
    );
}

/// A dropped database, point in time: the shipped database-missing runbook
/// through `lifeline run` (holds shortened). The live server no longer has
/// the database, so its OID comes from the incident's newest timeline
/// sample (same server); choose-path and recover-pitr say so, find the
/// DROP DATABASE by that OID and stop before its first record. The database
/// comes back under its name with every row the writer saw committed
/// before the drop: zero rows lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_missing_recovers_a_dropped_database_from_the_wal_with_no_row_lost() {
    let w = World::new();
    w.pg.create_db("app").unwrap();
    w.psql("app", USERS);
    let dumps = w.path("dumps");
    std::fs::create_dir(&dumps).unwrap();
    w.base_backup("b1");
    let inv_text = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"{}\"\ndatabase = \"main\"\n\n{}",
        w.pg.url("app"),
        dumps.display(),
        w.archive_toml("wal", "base")
    );
    let inv = w.path("lifeline.toml");
    std::fs::write(&inv, &inv_text).unwrap();
    // The timeline sampled the database while it existed (its identity, OID included).
    let inventory = support::inventory(&inv_text);
    let spec = inventory.database("main").unwrap().clone();
    let target = DbTarget {
        name: "main".into(),
        url: spec.pg_url().unwrap().clone(),
        spec,
    };
    let identity = lifeline::actions::direct::read_identity(&target, &Redactor::new())
        .await
        .unwrap();
    let oid = identity.oid.unwrap();
    let state = w.path("state");
    let incident = "20261206-070000-dropped";
    let idir = state.join("incidents").join(incident);
    std::fs::create_dir_all(&idir).unwrap();
    for d in [state.clone(), state.join("incidents"), idir.clone()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    lifeline::samples::append(
        &idir.join("samples.jsonl"),
        &lifeline::samples::Sample {
            ts: chrono::Utc::now(),
            database: "main".into(),
            identity,
            tables: Vec::new(),
        },
    )
    .unwrap();
    let healthy = chrono::Utc::now();
    let writer = Writer::start(&w.pg, "app", "\"User\"", 10_000).await;
    w.psql("postgres", "DROP DATABASE app WITH (FORCE)");
    let all = writer.finish().await;
    w.switch_wal();
    assert_eq!(
        w.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'app'"
        ),
        "0"
    );

    let runbooks = support::quick_runbooks(w.dir.path(), 1);
    let answers = w.path("answers.toml");
    std::fs::write(
        &answers,
        format!(
            "[params]\nincident_at = \"{}\"\n\n[confirm]\nrestore = \"app as superuser\"\nowners = \"app\"\nswap = \"app\"\nstart = \"app\"\n",
            healthy.to_rfc3339()
        ),
    )
    .unwrap();
    let o = support::lifeline(&state)
        .current_dir(w.dir.path())
        .env("LIFELINE_RUNBOOKS", &runbooks)
        .arg("-i")
        .arg(&inv)
        .arg("run")
        .arg("database-missing")
        .arg("--incident")
        .arg(incident)
        .arg("--answers")
        .arg(&answers)
        .output()
        .unwrap();
    let text = support::stdout(&o) + &support::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "its OID {oid} comes from the newest timeline sample of it"
        )),
        "{text}"
    );
    let recs = journal_of(&state);
    let chose = finished(&recs, "choose").unwrap();
    assert_eq!(chose.data["path"], "pitr", "{}", chose.data);
    let pitr = finished(&recs, "pitr").expect("recover-pitr finished");
    assert_eq!(
        pitr.data["evidence"]["destruction"]["kind"], "drop-database",
        "{}",
        pitr.data
    );
    assert_eq!(pitr.data["target"]["kind"], "lsn", "{}", pitr.data);
    // Back under its name, every row the writer saw committed before the drop.
    let got = ids_in(&w, "app", "\"User\"");
    let lost: Vec<_> = (1..=200)
        .chain(all.iter().copied())
        .filter(|id| got.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "rows lost: {lost:?}");
    assert!(!all.is_empty());
    assert_eq!(ids_in(&w, "app", "\"Game\"").len(), 12);
}

/// Moving the target, with real parts. Through `lifeline run pitr-restore`
/// (the shipped runbook, hold shortened): a target later than the rogue
/// DELETE's commit, confirmed with the plain phrase naming it, is refused
/// by recover-pitr with the evidence it departs from, nothing started, the
/// confirmation journaled with the moved target; without the phrase the
/// step never runs. Through the action: a target moved earlier (just before
/// the DELETE's first record) is recovered to, and the outcome journals
/// where it was moved from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_target_needs_its_phrase_and_one_past_the_damage_is_refused() {
    let w = World::new();
    w.pg.create_db("app").unwrap();
    w.psql("app", USERS);
    w.base_backup("b1");
    let healthy = chrono::Utc::now();
    let writer = Writer::start(&w.pg, "app", "\"User\"", 10_000).await;
    w.psql("app", "DELETE FROM \"User\" WHERE id <= 200");
    let after = writer.committed().len();
    while writer.committed().len() < after + 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.finish().await;
    w.switch_wal();
    let oid = w.db_oid("app");
    let status = pitr::list(&host(), &w.archive_spec()).await.unwrap();
    let found = pitr::find_target(
        &host(),
        &status,
        &Damaged {
            db_oid: oid,
            relations: Vec::new(),
            min_deletes: None,
            healthy_at: Some(healthy),
        },
    )
    .await
    .unwrap();
    let f = found.finding.clone();
    let late = pitr::Lsn(f.commit_lsn.0 + 0x100);

    let inv = w.path("lifeline.toml");
    std::fs::write(
        &inv,
        format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n{}",
            w.pg.url("app"),
            w.archive_toml("wal", "base")
        ),
    )
    .unwrap();
    let runbooks = support::quick_runbooks(w.dir.path(), 1);
    let run = |state: &str, confirm: &str| {
        let answers = w.path(&format!("{state}.toml"));
        std::fs::write(
            &answers,
            format!(
                "[params]\nhealthy_at = \"{}\"\npitr_target = \"lsn:{late}\"\n\n[confirm]\n{confirm}",
                healthy.to_rfc3339()
            ),
        )
        .unwrap();
        let state = w.path(state);
        let o = support::lifeline(&state)
            .current_dir(w.dir.path())
            .env("LIFELINE_RUNBOOKS", &runbooks)
            .arg("-i")
            .arg(&inv)
            .arg("run")
            .arg("pitr-restore")
            .arg("--answers")
            .arg(&answers)
            .output()
            .unwrap();
        let text = support::stdout(&o) + &support::stderr(&o);
        assert!(state.join("incidents").is_dir(), "{text}");
        (o.status.code(), text, journal_of(&state))
    };
    let phrase = format!("recover app to lsn {late}");
    // No phrase: the step never runs.
    let (code, text, recs) = run("state-none", "");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("type the confirmation phrase '{phrase}'")),
        "{text}"
    );
    assert!(
        !recs
            .iter()
            .any(|r| r.kind == "step-started" && r.step.as_deref() == Some("pitr")),
        "recover-pitr started without the phrase"
    );
    // The plain phrase: confirmed and journaled, then refused: later than the commit.
    let (code, text, recs) = run("state-late", &format!("pitr = \"{phrase}\"\n"));
    assert_eq!(code, Some(1), "{text}");
    let conf = recs
        .iter()
        .find(|r| r.kind == "confirmed" && r.step.as_deref() == Some("pitr"))
        .expect("the typed phrase is journaled");
    assert_eq!(conf.data["typed"], phrase.as_str());
    assert_eq!(conf.data["moved_target"]["given"], format!("lsn:{late}"));
    assert_eq!(conf.data["moved_target"]["past_damage"], false);
    let failed = recs
        .iter()
        .find(|r| r.kind == "step-failed" && r.step.as_deref() == Some("pitr"))
        .expect("refused");
    let why = failed.data["error"].as_str().unwrap();
    assert!(
        why.contains("is later than the destructive transaction's commit")
            && why.contains(&format!("after the commit record at {}", f.commit_lsn))
            && why.contains(&format!("transaction {} committed at", f.xid))
            && why.contains(&format!("type '{phrase} after the damage'"))
            && why.contains("nothing was started"),
        "{why}"
    );
    assert_eq!(std::fs::read_dir(w.path("recovery")).unwrap().count(), 0);

    // Moved earlier, through the action: recovered to just before the
    // DELETE's first record; the outcome says where it was moved from.
    let inventory = support::inventory(&std::fs::read_to_string(&inv).unwrap());
    let red = Redactor::new();
    inventory.register_secrets(&red);
    let a = RealActions::new(inventory, red);
    let spec = a.inventory().database("main").unwrap().clone();
    let out = a
        .recover_pitr(
            &PitrRequest {
                database: DbTarget {
                    name: "main".into(),
                    url: spec.pg_url().unwrap().clone(),
                    spec,
                },
                archive: a.inventory().archives[0].clone(),
                host: HostTarget {
                    name: "here".into(),
                    spec: a.inventory().host("here").unwrap().clone(),
                },
                healthy_at: Some(healthy),
                healthy_from_evidence: false,
                damaged_at: None,
                name: "moved-earlier".into(),
                incident_dir: None,
                moved: Some(MovedTarget::parse(&format!("lsn:{}", f.first_lsn)).unwrap()),
            },
            &Output::discard(),
        )
        .await
        .unwrap();
    assert_eq!(out.target["kind"], "lsn", "{:?}", out.target);
    assert!(
        out.stopped.contains(&format!(
            "recovery stopping before WAL location (LSN) \"{}\"",
            f.first_lsn
        )),
        "{}",
        out.stopped
    );
    let moved = out.moved.expect("journaled as moved");
    assert_eq!(moved["given"], format!("lsn:{}", f.first_lsn));
    assert!(
        moved["from"]
            .as_str()
            .unwrap()
            .contains(&format!("transaction {}", f.xid)),
        "{moved}"
    );
    assert!(
        moved["evidence"]
            .as_str()
            .unwrap()
            .contains("200 rows deleted"),
        "{moved}"
    );
    load_dump(&w, &out.dump, "moved_check");
    let got = ids_in(&w, "moved_check", "\"User\"");
    for id in 1..=200 {
        assert!(got.binary_search(&id).is_ok(), "user {id} lost");
    }
}

/// `healthy_at = "evidence"`, real parts: an earlier, legitimate DELETE of
/// many rows (a cleanup of "Game") comes before the timeline saw the users
/// healthy; the rogue DELETE of the users after. Without a bound the WAL
/// scan takes the cleanup for the damage; with the bound derived from the
/// incident's samples (the last one meeting the inventory's `expect`), the
/// recovery stops before the rogue DELETE and every user is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_at_evidence_takes_its_bound_from_the_last_healthy_sample() {
    let w = World::new();
    w.pg.create_db("app").unwrap();
    w.psql("app", USERS);
    w.base_backup("b1");
    w.psql("app", "DELETE FROM \"Game\"");
    let inv_text = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\nexpect = {{ User = {{ min = 150 }} }}\n\n{}",
        w.pg.url("app"),
        w.archive_toml("wal", "base")
    );
    let inventory = support::inventory(&inv_text);
    let red = Redactor::new();
    inventory.register_secrets(&red);
    let a = RealActions::new(inventory, red);
    let spec = a.inventory().database("main").unwrap().clone();
    let target = DbTarget {
        name: "main".into(),
        url: spec.pg_url().unwrap().clone(),
        spec,
    };
    let identity = a.identity(&target).await.unwrap();
    let oid = identity.oid.unwrap();
    let idir = w.path("incident");
    std::fs::create_dir(&idir).unwrap();
    let sample = |rows: i64| lifeline::samples::Sample {
        ts: chrono::Utc::now(),
        database: "main".into(),
        identity: identity.clone(),
        tables: vec![lifeline::samples::TableCount {
            schema: "public".into(),
            name: "User".into(),
            oid: 1,
            rows,
            exact: true,
        }],
    };
    lifeline::samples::append(&idir.join("samples.jsonl"), &sample(200)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    w.psql("app", "DELETE FROM \"User\" WHERE id <= 200");
    lifeline::samples::append(&idir.join("samples.jsonl"), &sample(0)).unwrap();
    w.switch_wal();

    // No bound: the cleanup is found first.
    let status = pitr::list(&host(), &w.archive_spec()).await.unwrap();
    let unbounded = pitr::find_target(
        &host(),
        &status,
        &Damaged {
            db_oid: oid,
            relations: Vec::new(),
            min_deletes: None,
            healthy_at: None,
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(
            unbounded.finding.destruction,
            Destruction::DeleteMany { rows: 12, .. }
        ),
        "{:?}",
        unbounded.finding
    );

    let (tx, mut rx) = tokio::sync::broadcast::channel(256);
    let out = Output::new(tx, 0, "pitr", Redactor::new());
    let r = a
        .recover_pitr(
            &PitrRequest {
                database: target,
                archive: a.inventory().archives[0].clone(),
                host: HostTarget {
                    name: "here".into(),
                    spec: a.inventory().host("here").unwrap().clone(),
                },
                healthy_at: None,
                healthy_from_evidence: true,
                damaged_at: None,
                name: "evidence".into(),
                incident_dir: Some(idir.clone()),
                moved: None,
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(r.evidence["destruction"]["rows"], 200, "{}", r.evidence);
    let mut lines = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let lifeline::engine::EngineEvent::Output { line, .. } = ev {
            lines.push(line);
        }
    }
    assert!(
        lines.iter().any(|l| l.starts_with("healthy bound from the evidence: the last timeline sample meeting the inventory's expect") && l.contains("User 200 >= 150")),
        "{lines:?}"
    );
    load_dump(&w, &r.dump, "evidence_check");
    assert_eq!(ids_in(&w, "evidence_check", "\"User\"").len(), 200);
    assert!(
        ids_in(&w, "evidence_check", "\"Game\"").is_empty(),
        "the cleanup stays done"
    );
}

/// `lifeline run --dry-run` of an incident runbook says which steps belong
/// to which path, and when the inventory has no archive, that the pitr
/// steps will be skipped and why; with `path = "dump"` forced the same,
/// naming where the force came from. Nothing is connected to.
#[test]
fn the_dry_run_shows_each_steps_path_and_what_will_be_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("lifeline.toml");
    let base = "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"postgres://postgres@127.0.0.1:1/app\"\n\n[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"/nonexistent\"\ndatabase = \"main\"\n\n";
    let answers = dir.path().join("answers.toml");
    let run = |inv_text: &str, params: &str| {
        std::fs::write(&inv, inv_text).unwrap();
        std::fs::write(
            &answers,
            format!("[params]\nincident_at = \"2026-12-06T06:00:00Z\"\ntables = 'public.\"User\"'\n{params}"),
        )
        .unwrap();
        let o = support::lifeline(&dir.path().join("state"))
            .current_dir(dir.path())
            .env_remove("LIFELINE_RUNBOOKS")
            .arg("-i")
            .arg(&inv)
            .args(["run", "table-wiped", "--dry-run", "--answers"])
            .arg(&answers)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", support::stderr(&o));
        support::stdout(&o)
    };
    let out = run(base, "");
    assert!(
        out.contains("path: runs only when the choose-path step picks 'pitr'")
            && out.contains("path: runs only when the choose-path step picks 'dump'"),
        "{out}"
    );
    assert!(
        out.contains("will be skipped: the dump path is taken (no [[archive]] in the inventory covers database 'main'"),
        "{out}"
    );
    // With an archive the path is decided at run time: nothing said skipped.
    let archive = "[[archive]]\nname = \"wal\"\nkind = \"wal-dir\"\nhost = \"here\"\nbase_dir = \"/b\"\nwal_dir = \"/w\"\n";
    let out = run(&format!("{base}{archive}"), "");
    assert!(!out.contains("will be skipped"), "{out}");
    let out = run(&format!("{base}{archive}"), "path = \"dump\"\n");
    assert!(
        out.contains(
            "will be skipped: the dump path is taken (forced by parameter 'path' (answers)"
        ),
        "{out}"
    );
}
