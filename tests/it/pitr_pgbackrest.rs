//! Point-in-time recovery from a real pgBackRest 2.45 repository: a
//! PostgreSQL 15 cluster archiving with `pgbackrest archive-push`, a full
//! backup set before the damage, a writer logging every committed row, a
//! rogue DELETE, and a second set taken after it. One fixture (the stanza
//! costs time) is shared by the tests that run at the same time; the test
//! that damages the repository works on its own copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lifeline::actions::RealActions;
use lifeline::engine::Actions;
use lifeline::engine::Output;
use lifeline::engine::types::*;
use lifeline::inventory::ArchiveSpec;
use lifeline::pitr::{self, Damaged, Destruction, PitrError, RecoveryRequest, Target};
use lifeline::redact::Redactor;
use lifeline::sandbox::{is_root, user_ids};
use lifeline::transport::{Host, LocalHost};
use support::{PgCluster, PgOptions};

/// Recovery root whose name holds characters a shell, a conf file or
/// restore_command's `%` escapes could trip on (`$`, `"`, backtick and `\`
/// are refused: pg_ctl's own shell command cannot hold them).
const HOSTILE: &str = "rec it's ;%p x";

struct Fixture {
    pg: PgCluster,
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// Ids the writer saw committed before the DELETE was sent.
    before_damage: Vec<i64>,
    /// Ids the writer saw committed after the DELETE returned.
    after_damage: Vec<i64>,
    delete_xid: u32,
    /// pg_current_wal_lsn() right after the DELETE committed.
    after_delete: pitr::Lsn,
    db_oid: u32,
    healthy_at: chrono::DateTime<chrono::Utc>,
    damaged_at: chrono::DateTime<chrono::Utc>,
}

fn owner() -> Option<(u32, u32)> {
    is_root().then(|| user_ids("postgres").unwrap())
}

fn chown(p: &Path) {
    if let Some((u, g)) = owner() {
        std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    }
}

/// `pgbackrest --config=CONF --stanza=main ARGS` as the server's user.
fn br(conf: &Path, args: &[&str]) -> String {
    let mut c = Command::new("pgbackrest");
    c.arg(format!("--config={}", conf.display()))
        .arg("--stanza=main")
        .args(args);
    if let Some((u, g)) = owner() {
        c.uid(u).gid(g).env("HOME", "/tmp");
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "pgbackrest {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn config_text(dir: &Path, repo: &str, pg: Option<&PgCluster>) -> String {
    let mut s = format!(
        "[global]\nrepo1-path={d}/{repo}\nlog-path={d}/log\nlock-path={d}/lock-{repo}\nlog-level-console=warn\nstart-fast=y\nrepo1-retention-full=9\n\n[main]\n",
        d = dir.display()
    );
    if let Some(pg) = pg {
        s.push_str(&format!(
            "pg1-path={}\npg1-port={}\npg1-socket-path={}\n",
            pg.data_dir().display(),
            pg.port(),
            pg.socket_dir().display()
        ));
    }
    s
}

impl Fixture {
    fn build() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("lifeline-pgbr-it-")
            .tempdir()
            .unwrap();
        for d in ["repo", "log", "lock-repo", HOSTILE] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
            chown(&dir.path().join(d));
        }
        chown(dir.path());
        let conf = dir.path().join("pgbackrest.conf");
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
        std::fs::write(&conf, config_text(dir.path(), "repo", Some(&pg))).unwrap();
        chown(&conf);
        br(&conf, &["stanza-create"]);
        pg.create_db("app").unwrap();
        pg.psql(
            "app",
            "CREATE TABLE \"User\" (id int8 PRIMARY KEY, name text);\
             INSERT INTO \"User\" SELECT g, 'seed' FROM generate_series(1, 200) g;\
             CREATE TABLE \"Game\" (id int8 PRIMARY KEY, name text);\
             INSERT INTO \"Game\" SELECT g, 'game' FROM generate_series(1, 12) g;",
        )
        .unwrap();
        br(&conf, &["--type=full", "backup"]);
        let healthy_at = chrono::Utc::now();
        let db_oid: u32 = pg
            .psql(
                "postgres",
                "SELECT oid FROM pg_database WHERE datname = 'app'",
            )
            .unwrap()
            .parse()
            .unwrap();

        // The writer runs on its own runtime while the damage happens.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (before_damage, after_damage, delete_xid, after_delete, damaged_at) =
            rt.block_on(async {
                let w = Writer::start(&pg).await;
                // Segments between the backup and the damage (the gap test removes one).
                for _ in 0..2 {
                    switch_wal(&pg, &conf);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let before = w.committed();
                let out = pg
                    .psql(
                        "app",
                        "WITH d AS (DELETE FROM \"User\" WHERE id <= 200 RETURNING 1) SELECT txid_current(), count(*) FROM d",
                    )
                    .unwrap();
                let damaged_at = chrono::Utc::now();
                let lsn = pg.psql("postgres", "SELECT pg_current_wal_lsn()").unwrap();
                let (xid, n) = out.split_once('|').unwrap();
                assert_eq!(n, "200");
                let after = w.committed().len();
                while w.committed().len() < after + 20 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let all = w.finish().await;
                (
                    before,
                    all[after..].to_vec(),
                    xid.parse::<u32>().unwrap(),
                    pitr::Lsn::parse(&lsn).unwrap(),
                    damaged_at,
                )
            });
        switch_wal(&pg, &conf);
        // The late set: taken after the damage, it already holds it.
        br(&conf, &["--type=full", "backup"]);
        switch_wal(&pg, &conf);
        Fixture {
            pg,
            dir,
            conf,
            before_damage,
            after_damage,
            delete_xid,
            after_delete,
            db_oid,
            healthy_at,
            damaged_at,
        }
    }

    /// The shared fixture: built by the first test that needs it, dropped
    /// (cluster stopped, directory removed) when the last one holding it ends.
    fn get() -> Arc<Fixture> {
        static SHARED: Mutex<Weak<Fixture>> = Mutex::new(Weak::new());
        let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.upgrade() {
            return f;
        }
        let f = Arc::new(std::thread::spawn(Fixture::build).join().unwrap());
        *g = Arc::downgrade(&f);
        f
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn spec(&self, conf: &Path, recovery_dir: &Path) -> ArchiveSpec {
        let inv = support::inventory(&format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[archive]]\nname = \"repo\"\nkind = \"pgbackrest\"\nhost = \"here\"\nstanza = \"main\"\nconfig = \"{}\"\nrecovery_dir = \"{}\"\n",
            conf.display(),
            recovery_dir
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        ));
        inv.archives[0].clone()
    }

    fn damaged(&self) -> Damaged {
        Damaged {
            db_oid: self.db_oid,
            relations: Vec::new(),
            healthy_at: Some(self.healthy_at),
            ..Default::default()
        }
    }

    /// The target as the fixture knows it (the commit lies before `after_delete`).
    fn known_target(&self) -> Target {
        Target::Xid {
            xid: self.delete_xid,
            commit_lsn: Some(self.after_delete),
        }
    }
}

fn switch_wal(pg: &PgCluster, conf: &Path) {
    let seg = pg
        .psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")
        .unwrap();
    for _ in 0..400 {
        let o = {
            let mut c = Command::new("pgbackrest");
            c.arg(format!("--config={}", conf.display())).args([
                "--stanza=main",
                "repo-ls",
                "--recurse",
                "archive/main",
            ]);
            if let Some((u, g)) = owner() {
                c.uid(u).gid(g).env("HOME", "/tmp");
            }
            c.output().unwrap()
        };
        if String::from_utf8_lossy(&o.stdout).contains(&format!("/{seg}-")) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("segment {seg} was not archived");
}

/// The application writer: one row per transaction, each id logged only after its COMMIT returned.
struct Writer {
    log: Arc<Mutex<Vec<i64>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    async fn start(pg: &PgCluster) -> Writer {
        let client = support::client(pg, "app").await;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut id = 10_000i64;
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                if client
                    .execute("INSERT INTO \"User\" (id, name) VALUES ($1, 'w')", &[&id])
                    .await
                    .is_err()
                {
                    break;
                }
                l.lock().unwrap().push(id);
                id += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
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
        let _ = self.task.await;
        self.log.lock().unwrap().clone()
    }
}

fn host() -> Host {
    Host::Local(LocalHost::new("here"))
}

fn entries(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// recover-pitr from the repository (the action the runbooks run): the
/// target found in the repository's WAL is the DELETE, the late set is
/// refused with its reason, the set before it restored by `pgbackrest
/// restore` beside the live cluster; the recovered dump loses no row
/// committed before the DELETE and holds none of its effects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbackrest_recovery_loses_no_row_and_holds_none_of_the_delete() {
    let f = Fixture::get();
    let root = f.path(HOSTILE);
    let spec = f.spec(&f.conf, &root);
    let inv = support::inventory(&format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n",
        f.pg.url("app")
    ));
    let red = Redactor::new();
    inv.register_secrets(&red);
    let a = RealActions::new(inv, red);
    let db = a.inventory().database("main").unwrap().clone();
    let out = Output::discard();
    let o = a
        .recover_pitr(
            &PitrRequest {
                database: DbTarget {
                    name: "main".into(),
                    url: db.pg_url().unwrap().clone(),
                    spec: db,
                },
                archive: spec,
                host: HostTarget {
                    name: "here".into(),
                    spec: a.inventory().host("here").unwrap().clone(),
                },
                healthy_at: Some(f.healthy_at),
                damaged_at: Some(f.damaged_at),
                name: "app-pgbr".into(),
                healthy_from_evidence: false,
                incident_dir: None,
                moved: None,
            },
            &out,
        )
        .await
        .unwrap_or_else(|e| panic!("recover-pitr: {e}\n{}", out.kept().join("\n")));
    let said = out.kept().join("\n");
    assert!(
        o.evidence_text
            .contains(&format!("transaction {}", f.delete_xid))
            && o.evidence_text.contains("200 rows deleted"),
        "{}",
        o.evidence_text
    );
    assert!(
        o.stopped
            .contains(&format!("before commit of transaction {}", f.delete_xid)),
        "{}",
        o.stopped
    );
    // The late set was refused with its reason; the early one used.
    assert_eq!(o.refused.len(), 1, "{:?}", o.refused);
    assert!(
        o.refused[0].1.contains("already holds the damage"),
        "{:?}",
        o.refused
    );
    assert!(
        o.base_backup.starts_with("pgbackrest set '"),
        "{}",
        o.base_backup
    );
    assert!(
        !o.base_backup.contains(&o.refused[0].0),
        "{}",
        o.base_backup
    );
    assert!(said.contains("refused"), "{said}");

    // Private, stopped, kept; lifeline's conf, not the live one's archive_command.
    let dir = Path::new(&o.recovery_dir);
    assert!(dir.starts_with(&root), "{}", o.recovery_dir);
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&dir.join("data")), 0o700);
    assert!(!dir.join("data/postmaster.pid").exists());
    let conf = std::fs::read_to_string(dir.join("data/postgresql.conf")).unwrap();
    assert!(
        conf.contains("archive_mode = off") && conf.contains("archive-get"),
        "{conf}"
    );
    assert!(!conf.contains("archive-push"), "{conf}");
    // No scratch WAL directory left behind.
    assert_eq!(entries(&root), vec!["app-pgbr".to_string()]);
    // The repository's archive still ends where the live cluster left it:
    // the recovered cluster pushed nothing (archive_mode off).
    let repo = br(&f.conf, &["repo-ls", "--recurse", "archive/main"]);
    assert!(!repo.contains("00000002.history"), "{repo}");

    // The rows: the recovered dump, read back with pg_restore into a scratch database.
    f.pg.create_db("check_pgbr").unwrap();
    let r = Command::new(f.pg.bin("pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "--no-owner",
            "-d",
            "check_pgbr",
        ])
        .arg("-p")
        .arg(f.pg.port().to_string())
        .arg(&o.dump)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let got: Vec<i64> =
        f.pg.psql("check_pgbr", "SELECT id FROM \"User\" ORDER BY id")
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
    for id in 1..=200 {
        assert!(
            got.binary_search(&id).is_ok(),
            "user {id} lost: the DELETE was replayed"
        );
    }
    let lost: Vec<_> = f
        .before_damage
        .iter()
        .filter(|id| got.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "rows lost: {lost:?}");
    assert!(!f.before_damage.is_empty());
    let late: Vec<_> = f
        .after_damage
        .iter()
        .filter(|id| got.binary_search(id).is_ok())
        .collect();
    assert!(late.is_empty(), "rows from after the target: {late:?}");
    assert_eq!(
        f.pg.psql("check_pgbr", "SELECT count(*) FROM \"Game\"")
            .unwrap(),
        "12"
    );
    // The live database still holds the damage: nothing touched it.
    assert_eq!(
        f.pg.psql("app", "SELECT count(*) FROM \"User\" WHERE id <= 200")
            .unwrap(),
        "0"
    );
}

/// A backup set that ended after the target holds the damage: plan()
/// refuses it with the reason, and a plan naming it by hand is refused by
/// the recovery before anything is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_set_taken_after_the_target_is_refused() {
    let f = Fixture::get();
    let root = f.path("late-root");
    let spec = f.spec(&f.conf, &root);
    let h = host();
    let status = pitr::list(&h, &spec).await.unwrap();
    assert_eq!(status.backups.len(), 2, "{:?}", status.lines());
    let found = pitr::find_target_in(&h, &spec, &status, &f.damaged())
        .await
        .unwrap();
    assert_eq!(found.finding.xid, f.delete_xid);
    assert!(
        matches!(
            found.finding.destruction,
            Destruction::DeleteMany { rows: 200, .. }
        ),
        "{:?}",
        found.finding
    );
    let plan = pitr::plan(&status, &found.target).unwrap();
    let (early, late) = (&status.backups[0], &status.backups[1]);
    assert_eq!(plan.backup.dir, early.dir);
    let why = &plan.refused.iter().find(|(d, _)| *d == late.dir).unwrap().1;
    assert!(why.contains("after the target's commit record"), "{why}");

    // Only the late set: no base backup can reach the target, with the reason.
    let mut only_late = status.clone();
    only_late.backups.retain(|b| b.dir == late.dir);
    let e = pitr::plan(&only_late, &found.target).unwrap_err();
    assert!(matches!(e, PitrError::NoBaseBackup { .. }), "{e}");
    assert!(e.to_string().contains("already holds the damage"), "{e}");

    // A plan that names the late set by hand: refused before anything is made.
    let mut forced = plan.clone();
    forced.backup = late.clone();
    let e = pitr::recover(
        &h,
        &spec,
        &status,
        &forced,
        &RecoveryRequest {
            database: "app".into(),
            expect: Default::default(),
            name: "late".into(),
            wait: Duration::from_secs(60),
        },
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("already holds the damage") && e.to_string().contains(&late.dir),
        "{e}"
    );
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
}

/// A recovery directory that is, or lies inside, the live cluster's data
/// directory (named by the pgbackrest config, reached through a symlink, or
/// any data directory the config does not name), or whose name pg_ctl's
/// shell would run, is refused before anything is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_dir_inside_the_live_data_directory_is_refused() {
    let f = Fixture::get();
    let h = host();
    let live = f.pg.data_dir().to_path_buf();
    let before = entries(&live);
    let link = f.path("innocent-looking");
    if !link.exists() {
        std::os::unix::fs::symlink(&live, &link).unwrap();
    }
    // A config that does not name the live cluster: only its PG_VERSION gives it away.
    let bare = f.path("bare.conf");
    std::fs::write(&bare, config_text(f.dir.path(), "repo", None)).unwrap();
    chown(&bare);
    for (conf, root, expect) in [
        (&f.conf, live.join("pitr"), "live data directory"),
        (&f.conf, live.clone(), "live data directory"),
        (&f.conf, link.join("x"), "live data directory"),
        (
            &bare,
            live.join("base"),
            "lies inside the PostgreSQL data directory",
        ),
    ] {
        let spec = f.spec(conf, &root);
        let status = pitr::list(&h, &spec).await.unwrap();
        // The target search's WAL scratch directory would go under the root: refused too.
        let e = pitr::find_target_in(&h, &spec, &status, &f.damaged())
            .await
            .unwrap_err();
        assert!(
            matches!(e, PitrError::Unsafe { .. }) && e.to_string().contains(expect),
            "{}: {e}",
            root.display()
        );
        assert_eq!(entries(&live), before, "{}", root.display());
        let plan = pitr::plan(&status, &f.known_target()).unwrap();
        let e = pitr::recover(
            &h,
            &spec,
            &status,
            &plan,
            &RecoveryRequest {
                database: "app".into(),
                expect: Default::default(),
                name: "inside".into(),
                wait: Duration::from_secs(60),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, PitrError::Unsafe { .. }),
            "{}: {e}",
            root.display()
        );
        assert!(
            e.to_string().contains(expect) && e.to_string().contains("nothing was started"),
            "{}: {e}",
            root.display()
        );
        assert_eq!(entries(&live), before, "{}", root.display());
        assert!(!live.join("base/inside").exists());
    }
    let status = pitr::list(&h, &f.spec(&f.conf, &f.path("ok")))
        .await
        .unwrap();
    let plan = pitr::plan(&status, &f.known_target()).unwrap();
    for bad in ["rec $(touch PWNED)", "rec `touch PWNED`", "rec \\\"x"] {
        let root = f.path(bad);
        let e = pitr::recover(
            &h,
            &f.spec(&f.conf, &root),
            &status,
            &plan,
            &RecoveryRequest {
                database: "app".into(),
                expect: Default::default(),
                name: "shell".into(),
                wait: Duration::from_secs(60),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, PitrError::Unsafe { .. }) && e.to_string().contains("pg_ctl"),
            "{bad}: {e}"
        );
        assert!(!root.exists(), "{bad}");
    }
    assert!(!f.path("PWNED").exists() && !Path::new("PWNED").exists());
}

/// A tampered segment (content not matching the SHA-1 in its name) and a
/// missing one in the window are reported before anything starts: no
/// recovery directory, no scratch WAL left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_gap_in_the_repository_is_reported_before_anything_starts() {
    let f = Fixture::get();
    let h = host();
    // The fixture's repository stays whole: a copy of it, with its own config.
    let copy = f.path("repo-gap");
    let o = Command::new("cp")
        .arg("-a")
        .arg(f.path("repo"))
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::create_dir_all(f.path("lock-repo-gap")).unwrap();
    chown(&f.path("lock-repo-gap"));
    let conf = f.path("gap.conf");
    std::fs::write(&conf, config_text(f.dir.path(), "repo-gap", Some(&f.pg))).unwrap();
    chown(&conf);
    let root = f.path("gap-root");
    let spec = f.spec(&conf, &root);
    let status = pitr::list(&h, &spec).await.unwrap();
    assert!(status.wal[0].gaps.is_empty(), "{:?}", status.lines());
    // The segment right after the early set's first one (the window before the DELETE).
    let early = &status.backups[0];
    let seg = status.segment_size;
    let victim = pitr::wal::SegName {
        timeline: early.timeline,
        segno: early.start_lsn.segno(seg) + 1,
    }
    .file_name(seg);
    let walk = walkdir(&copy.join("archive/main"));
    let file = walk
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{victim}-"))
        })
        .unwrap_or_else(|| panic!("{victim} not in {walk:?}"))
        .clone();

    // Tampered: another segment's bytes under this one's name.
    let other = walk
        .iter()
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.len() > 25 && !n.starts_with(&victim) && !n.contains(".backup")
        })
        .unwrap();
    let saved = std::fs::read(&file).unwrap();
    std::fs::copy(other, &file).unwrap();
    let e = pitr::find_target_in(&h, &spec, &status, &f.damaged())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not match the SHA-1") && e.contains(&victim),
        "{e}"
    );
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
    std::fs::write(&file, saved).unwrap();

    // Missing: listed as a gap, the search and the recovery refuse before anything starts.
    std::fs::remove_file(&file).unwrap();
    let status = pitr::list(&h, &spec).await.unwrap();
    let lines = status.lines().join("\n");
    assert!(lines.contains(&format!("GAPS: {victim}")), "{lines}");
    let e = pitr::find_target_in(&h, &spec, &status, &f.damaged())
        .await
        .unwrap_err();
    assert!(matches!(e, PitrError::WalGap { .. }), "{e}");
    assert!(e.to_string().contains(&victim), "{e}");
    let e = pitr::plan(&status, &f.known_target()).unwrap_err();
    assert!(
        matches!(e, PitrError::WalGap { .. }) && e.to_string().contains(&victim),
        "{e}"
    );
    assert!(entries(&root).is_empty(), "{:?}", entries(&root));
}

fn walkdir(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if e.is_dir() {
            out.extend(walkdir(&e));
        } else {
            out.push(e);
        }
    }
    out.sort();
    out
}

/// The shipped pitr-restore runbook through the `lifeline run` binary with a
/// pgbackrest archive (its own stanza: the swap changes the live database):
/// the live `app` ends up as the recovered copy, held to the dump's SHA-256,
/// with every row committed before the DELETE and none of its effects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pitr_restore_runbook_recovers_from_the_repository_headless() {
    let f = std::thread::spawn(Fixture::build).join().unwrap();
    let inv = f.path("lifeline.toml");
    std::fs::write(
        &inv,
        format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n[[archive]]\nname = \"repo\"\nkind = \"pgbackrest\"\nhost = \"here\"\nstanza = \"main\"\nconfig = \"{}\"\nrecovery_dir = \"{}\"\n",
            f.pg.url("app"),
            f.conf.display(),
            f.path("rb-root").display()
        ),
    )
    .unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/pitr-restore.toml"),
    )
    .unwrap();
    let rb = f.path("pitr-restore.toml");
    std::fs::write(&rb, shipped.replace("hold_s = 60", "hold_s = 1")).unwrap();
    let answers = f.path("answers.toml");
    std::fs::write(
        &answers,
        format!(
            "[params]\nhealthy_at = \"{}\"\ndamaged_at = \"{}\"\n\n[confirm]\nrestore = \"app as superuser\"\nowners = \"app\"\nswap = \"app\"\nstart = \"app\"\n",
            f.healthy_at.to_rfc3339(),
            f.damaged_at.to_rfc3339()
        ),
    )
    .unwrap();
    let state = f.path("state");
    let o = support::lifeline(&state)
        .current_dir(f.dir.path())
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
    assert!(
        text.contains(&format!("before commit of transaction {}", f.delete_xid)),
        "{text}"
    );
    let got: Vec<i64> =
        f.pg.psql("app", "SELECT id FROM \"User\" ORDER BY id")
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
    for id in 1..=200 {
        assert!(got.binary_search(&id).is_ok(), "user {id} lost");
    }
    let lost: Vec<_> = f
        .before_damage
        .iter()
        .filter(|id| got.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "rows lost: {lost:?}");
    let late: Vec<_> = f
        .after_damage
        .iter()
        .filter(|id| got.binary_search(id).is_ok())
        .collect();
    assert!(late.is_empty(), "rows from after the target: {late:?}");
    // The damaged database is kept beside it.
    let kept =
        f.pg.psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'app__damaged_%'",
        )
        .unwrap();
    assert_eq!(
        f.pg.psql(&kept, "SELECT count(*) FROM \"User\" WHERE id <= 200")
            .unwrap(),
        "0"
    );
}
