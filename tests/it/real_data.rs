//! The data actions with real parts: a real PostgreSQL holding the app
//! database (password over scram, from password_env), a backup catalog on
//! a host reached over a real OpenSSH sshd, three pg_dump backups (a good
//! one before the incident, a truncated one, one taken after the damage).
//! Library level (RealActions) and `lifeline run` end to end: pick, restore,
//! verify, swap; a corrupt backup refused before anything is created; kill
//! -9 during the restore then --resume; a dropped database restored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeline::actions::RealActions;
use lifeline::engine::types::*;
use lifeline::engine::{Actions, Output};
use lifeline::redact::Redactor;
use lifeline::state::StateDir;
use support::{PgCluster, Sshd};

const SECRET: &str = "Pl4nted-Data-S3cret";
const INCIDENT: &str = "2026-11-22T12:42:00Z";
const GOOD: &str = "app_20261120_073600.sql";
const CUT: &str = "app_20261122_120000.sql";
const AFTER: &str = "app_20261122_130000.sql";

const SCHEMA: &str = r#"
SET ROLE app;
CREATE TABLE "User" (id int PRIMARY KEY, email text UNIQUE NOT NULL);
CREATE TABLE game (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE game_request (id int PRIMARY KEY,
  user_id int NOT NULL REFERENCES "User"(id) ON DELETE CASCADE,
  game_id int NOT NULL REFERENCES game(id), note text);
CREATE TABLE event_log (id bigint PRIMARY KEY, at timestamptz NOT NULL, payload text);
INSERT INTO "User" SELECT g, 'user' || g || '@example.net' FROM generate_series(1, 22) g;
INSERT INTO game SELECT g, 'game ' || g FROM generate_series(1, 12) g;
INSERT INTO game_request SELECT g, 1 + g % 22, 1 + g % 12, E'it''s; a \\. note ' || g FROM generate_series(1, 182) g;
"#;

const DRILL: &str = r#"
id = "data-drill"
title = "Restore the pre-incident backup beside the live database and swap it in"
when = "tests"

[[param]]
name = "db"
kind = "database"
from = "inventory"

[[param]]
name = "catalog"
kind = "catalog"
from = "inventory"

[[param]]
name = "incident_at"
kind = "time"
from = "ask"

[[step]]
id = "stop"
action = "stop-services"
explain = "nothing writes in this test; prove it"
database = "{db}"
hold_s = 1

[[step]]
id = "snap"
action = "snapshot"
explain = "keep the damaged state"
database = "{db}"

[[step]]
id = "pick"
action = "pick-backup"
explain = "the newest intact backup before the incident"
catalog = "{catalog}"
incident_at = "{incident_at}"

[[step]]
id = "restore"
action = "restore"
explain = "restore beside the live database"
database = "{db}"
catalog = "{catalog}"
backup = "{pick.backup.path}"
jobs = 2

[[step]]
id = "verify"
action = "verify"
explain = "integrity and row counts against the manifest"
database = "{db}"
restored = "{restore.target_db}"

[[step]]
id = "owners"
action = "reapply-owners"
explain = "the owners the restore role skipped, given back"
database = "{db}"
restored = "{restore.target_db}"
requires = ["verified"]

[[step]]
id = "swap"
action = "swap"
explain = "the restored database takes the live name"
database = "{db}"
restored = "{restore.target_db}"
requires = ["verified"]
"#;

const LOOK: &str = r#"
id = "look"
title = "Which backup, and is the live database damaged?"
when = "tests"

[[param]]
name = "db"
kind = "database"
from = "inventory"

[[param]]
name = "catalog"
kind = "catalog"
from = "inventory"

[[param]]
name = "incident_at"
kind = "time"
from = "ask"

[[step]]
id = "pick"
action = "pick-backup"
explain = "the newest intact backup before the incident"
catalog = "{catalog}"
incident_at = "{incident_at}"

[[step]]
id = "verify"
action = "verify"
explain = "is the live database damaged?"
database = "{db}"
"#;

const EXPLICIT: &str = r#"
id = "explicit-backup"
title = "Restore a backup the operator names"
when = "tests"

[[param]]
name = "db"
kind = "database"
from = "inventory"

[[param]]
name = "catalog"
kind = "catalog"
from = "inventory"

[[param]]
name = "backup"
kind = "text"
from = "ask"

[[step]]
id = "stop"
action = "stop-services"
explain = "nothing writes in this test; prove it"
database = "{db}"
hold_s = 1

[[step]]
id = "snap"
action = "snapshot"
explain = "keep the damaged state"
database = "{db}"

[[step]]
id = "restore"
action = "restore"
explain = "restore the named backup"
database = "{db}"
catalog = "{catalog}"
backup = "{backup}"
"#;

/// The world of one test: the cluster, the backup host, the catalog.
struct World {
    pg: PgCluster,
    _sshd: Sshd,
    dir: tempfile::TempDir,
    inventory: String,
    /// Checksums of every table when the good backup was taken.
    good: BTreeMap<String, String>,
    /// Checksums of every table after the damage.
    damaged: BTreeMap<String, String>,
}

/// `md5` of the ordered rows of every table of `db`.
fn sums(pg: &PgCluster, db: &str) -> BTreeMap<String, String> {
    let tables = pg
        .psql(
            db,
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .unwrap();
    tables
        .lines()
        .map(|t| {
            let s = pg
                .psql(
                    db,
                    &format!(
                        "SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
                    ),
                )
                .unwrap();
            (t.to_string(), s)
        })
        .collect()
}

fn dump(pg: &PgCluster, to: &Path) {
    let o = Command::new(pg.bin("pg_dump"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .arg("-f")
        .arg(to)
        .arg("app")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The restore role of the test inventory (made by `World::new`).
fn restorer() -> RestoreAs {
    RestoreAs::Role {
        name: "lifeline_restore".into(),
        password_env: None,
        create: false,
    }
}

impl World {
    /// `events` rows in the big table (makes the restore last).
    fn new(events: u64) -> World {
        Self::build(events, false)
    }

    /// With `tls_only`: the server has a certificate signed by a CA made
    /// with openssl, pg_hba.conf accepts TCP only as `hostssl`, and the
    /// inventory connects with sslmode=verify-full against that CA.
    fn build(events: u64, tls_only: bool) -> World {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls_only.then(|| support::tls_files(dir.path(), "srv"));
        let pg = match &tls {
            Some(t) => support::PgCluster::start_with(support::PgOptions {
                tls: Some((t.cert.clone(), t.key.clone())),
                ..Default::default()
            })
            .unwrap(),
            None => support::pg(),
        };
        pg.psql(
            "postgres",
            &format!("CREATE ROLE app LOGIN SUPERUSER PASSWORD '{SECRET}'"),
        )
        .unwrap();
        pg.psql("postgres", "CREATE DATABASE app OWNER app")
            .unwrap();
        pg.psql("postgres", "CREATE ROLE lifeline_restore LOGIN")
            .unwrap();
        support::require_password(&pg, "app");
        if tls_only {
            std::fs::write(
                pg.data_dir().join("pg_hba.conf"),
                "local all all trust\nhostssl all app 127.0.0.1/32 scram-sha-256\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .unwrap();
            pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
        }
        pg.psql("app", SCHEMA).unwrap();
        pg.psql(
            "app",
            &format!(
                "INSERT INTO event_log SELECT g, '2026-11-01'::timestamptz + g * interval '1 s', repeat('x', 60) || g FROM generate_series(1, {events}) g"
            ),
        )
        .unwrap();
        let backups = dir.path().join("backups");
        std::fs::create_dir_all(&backups).unwrap();
        let good = sums(&pg, "app");
        dump(&pg, &backups.join(GOOD));
        // Work after the good backup, then a backup that was cut off.
        pg.psql(
            "app",
            "INSERT INTO \"User\" VALUES (23, 'late@example.net'); INSERT INTO game_request VALUES (183, 23, 1, 'minutes before')",
        )
        .unwrap();
        let full = dir.path().join("full.sql");
        dump(&pg, &full);
        let bytes = std::fs::read(&full).unwrap();
        std::fs::write(backups.join(CUT), &bytes[..bytes.len() * 2 / 3]).unwrap();
        // The damage, and a backup of it.
        pg.psql("app", "TRUNCATE \"User\" CASCADE").unwrap();
        dump(&pg, &backups.join(AFTER));
        let damaged = sums(&pg, "app");

        let sshd = support::sshd();
        let kh = sshd.write_known_hosts().unwrap();
        let inventory = format!(
            r#"[[host]]
name = "backup-box"
address = "127.0.0.1:{port}"
user = "{user}"
identity = "{key}"
known_hosts = "{kh}"

[[host]]
name = "here"
transport = "local"

[[database]]
name = "main"
url = "postgres://app@127.0.0.1:{pgport}/app"
password_env = "APP_PGPASSWORD"
restore_role = "lifeline_restore"
expect = {{ User = {{ min = 20 }} }}
{tls}

[[backups]]
name = "nightly"
host = "backup-box"
path = "{backups}"
pattern = "app_%Y%m%d_%H%M%S.sql"
database = "main"
"#,
            port = sshd.port(),
            user = sshd.user(),
            key = sshd.user_key().display(),
            kh = kh.display(),
            pgport = pg.port(),
            backups = backups.display(),
            tls = tls
                .as_ref()
                .map(|t| format!(
                    "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
                    t.ca.display()
                ))
                .unwrap_or_default(),
        );
        std::fs::write(dir.path().join("lifeline.toml"), &inventory).unwrap();
        std::fs::write(dir.path().join("data-drill.toml"), DRILL).unwrap();
        std::fs::write(dir.path().join("explicit.toml"), EXPLICIT).unwrap();
        std::fs::write(dir.path().join("look.toml"), LOOK).unwrap();
        World {
            pg,
            _sshd: sshd,
            dir,
            inventory,
            good,
            damaged,
        }
    }

    fn backup(&self, name: &str) -> String {
        self.dir
            .path()
            .join("backups")
            .join(name)
            .display()
            .to_string()
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn answers(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = support::lifeline(&self.state());
        c.current_dir(self.dir.path())
            .env("APP_PGPASSWORD", SECRET)
            .env_remove("LIFELINE_RUNBOOKS")
            .args(["-i", "lifeline.toml"])
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let o = self.cmd(args).output().unwrap();
        let text = support::stdout(&o) + &support::stderr(&o);
        (o.status.code().unwrap_or(-1), text)
    }

    fn databases(&self, like: &str) -> Vec<String> {
        let out = self
            .pg
            .psql(
                "postgres",
                &format!("SELECT datname FROM pg_database WHERE datname LIKE '{like}' ORDER BY 1"),
            )
            .unwrap();
        out.lines().map(str::to_string).collect()
    }

    fn comment(&self, db: &str) -> String {
        self.pg
            .psql(
                "postgres",
                &format!(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{db}'"
                ),
            )
            .unwrap()
    }

    fn journal(&self) -> PathBuf {
        let s = StateDir::new(self.state());
        let ids = s.list_incidents();
        assert_eq!(ids.len(), 1, "{ids:?}");
        s.journal_path(&ids[0])
    }

    fn actions(&self) -> RealActions {
        // In process the password comes from a file (the runs use password_env).
        let pw = self.dir.path().join("app.pw");
        std::fs::write(&pw, format!("{SECRET}\n")).unwrap();
        let text = self.inventory.replace(
            "password_env = \"APP_PGPASSWORD\"",
            &format!("password_file = \"{}\"", pw.display()),
        );
        let inv = support::inventory(&text);
        let r = Redactor::new();
        inv.register_secrets(&r);
        RealActions::new(inv, r)
    }
}

fn step_data(records: &[lifeline::journal::Record], kind: &str, step: &str) -> serde_json::Value {
    records
        .iter()
        .rev()
        .find(|r| r.kind == kind && r.step.as_deref() == Some(step))
        .unwrap_or_else(|| panic!("no {kind} of {step}"))
        .data
        .clone()
}

fn journal_checks(w: &World, jp: &Path) {
    let o = support::lifeline(&w.state())
        .args(["journal", "verify"])
        .arg(jp)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", support::stdout(&o));
    let text = std::fs::read_to_string(jp).unwrap();
    assert!(!text.contains(SECRET), "the password is in the journal");
}

fn db_target(a: &RealActions) -> DbTarget {
    let spec = a.inventory().database("main").unwrap().clone();
    DbTarget {
        name: "main".into(),
        url: spec.pg_url().unwrap().clone(),
        spec,
    }
}

/// A plain copy of the good backup loaded with psql (the source of other formats).
fn restore_good_into(w: &World, db: &str) {
    w.pg.create_db(db).unwrap();
    let o = Command::new(w.pg.bin("psql"))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-p",
        ])
        .arg(w.pg.port().to_string())
        .arg("-d")
        .arg(db)
        .arg("-f")
        .arg(w.backup(GOOD))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn host_target(a: &RealActions, name: &str) -> HostTarget {
    HostTarget {
        name: name.into(),
        spec: a.inventory().host(name).unwrap().clone(),
    }
}

fn catalog(a: &RealActions) -> lifeline::inventory::CatalogSpec {
    a.inventory().backups[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_pick_restore_verify_and_the_swap_guard() {
    let w = World::new(2_000);
    let a = w.actions();
    let db = db_target(&a);
    let incident: chrono::DateTime<chrono::Utc> = INCIDENT.parse().unwrap();

    // pick-backup: over ssh, the good one; the others excluded and why.
    let pick = a
        .pick_backup(
            &PickRequest {
                catalog: catalog(&a),
                host: host_target(&a, "backup-box"),
                database: Some(db.clone()),
                incident_at: Some(incident),
                incident_dir: None,
            },
            &Output::discard(),
        )
        .await
        .unwrap();
    assert_eq!(pick.chosen.name, GOOD);
    assert_eq!(pick.chosen.time_source, "name");
    assert_eq!(pick.rpo_s, 2 * 86_400 + 5 * 3600 + 6 * 60);
    let good_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(w.backup(GOOD)).unwrap()))
    };
    assert_eq!(pick.chosen.sha256.as_deref(), Some(good_sha.as_str()));
    let why = |n: &str| {
        pick.candidates
            .iter()
            .find(|c| c.name == n)
            .unwrap()
            .excluded
            .clone()
            .unwrap_or_default()
    };
    assert!(why(CUT).starts_with("truncated"), "{}", why(CUT));
    // The backup of the damage is labelled so from its content as well.
    assert!(
        why(AFTER).starts_with("labelled damaged: public.User empty")
            && why(AFTER).contains("after the incident"),
        "{}",
        why(AFTER)
    );

    // No qualifying backup: a clear failure.
    let early: chrono::DateTime<chrono::Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let e = a
        .pick_backup(
            &PickRequest {
                catalog: catalog(&a),
                host: host_target(&a, "backup-box"),
                database: Some(db.clone()),
                incident_at: Some(early),
                incident_dir: None,
            },
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no backup in catalog 'nightly'"), "{e}");
    assert!(e.contains("after the incident"), "{e}");

    // restore of the truncated one: refused before anything is created.
    let req = |path: &str, target: &str| RestoreRequest {
        database: db.clone(),
        target_db: target.into(),
        catalog: catalog(&a),
        host: host_target(&a, "backup-box"),
        backup_path: path.into(),
        jobs: 2,
        restore_as: restorer(),
        picked: None,
    };
    let e = a
        .restore(&req(&w.backup(CUT), "app__restore_cut"), &Output::discard())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("truncated") && e.contains("nothing was created"),
        "{e}"
    );
    assert!(w.databases("app__restore%").is_empty());

    // Paths outside the catalog (absolute, `../`, a symlink out): refused
    // before anything is created.
    let backups = w.dir.path().join("backups");
    let outside = w.dir.path().join("app_20261120_073600.sql");
    std::fs::copy(w.backup(GOOD), &outside).unwrap();
    let link = backups.join("app_20261120_073601.sql");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    for path in [
        outside.display().to_string(),
        format!("{}/../app_20261120_073600.sql", backups.display()),
        "../app_20261120_073600.sql".to_string(),
        link.display().to_string(),
        "/etc/passwd".to_string(),
    ] {
        let e = a
            .restore(&req(&path, "app__restore_out"), &Output::discard())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("inside its catalog's directory") && e.contains("nothing was created"),
            "{path}: {e}"
        );
    }
    assert!(w.databases("app__restore%").is_empty());
    std::fs::remove_file(&link).unwrap();

    // A hostile dump inside the catalog: the pre-scan refuses it with its
    // line before anything is created; nothing ran on the server.
    let marks = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        marks.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mark = marks.path().join("pwned");
    let text = std::fs::read_to_string(w.backup(GOOD)).unwrap();
    let attack = format!(
        "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}'''; END $$;\n\n",
        mark.display()
    );
    let at = text.find("CREATE TABLE").unwrap();
    let line = text[..at].matches('\n').count() + 1;
    let hostile = backups.join("app_20261120_073602.sql");
    std::fs::write(&hostile, format!("{}{attack}{}", &text[..at], &text[at..])).unwrap();
    let e = a
        .restore(
            &req(&hostile.display().to_string(), "app__restore_hostile"),
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("refused by the pre-scan")
            && e.contains(&format!("line {line} "))
            && e.contains("DO block")
            && e.contains("nothing was created"),
        "{e}"
    );
    assert!(w.databases("app__restore%").is_empty());
    assert!(!mark.exists(), "the DO block ran");
    std::fs::remove_file(&hostile).unwrap();

    // restore of the good one, with progress; the manifest counts the rows.
    let (tx, mut rx) = tokio::sync::broadcast::channel(4096);
    let out = Output::new(tx, 0, "restore", Redactor::new());
    let r = a
        .restore(&req(&w.backup(GOOD), "app__restore_good"), &out)
        .await
        .unwrap();
    assert_eq!(r.manifest.tables.get("public.\"User\""), Some(&22));
    assert_eq!(r.manifest.tables.get("public.event_log"), Some(&2_000));
    assert_eq!(sums(&w.pg, "app__restore_good"), w.good);
    assert!(
        w.comment("app__restore_good")
            .starts_with("lifeline: restore complete")
    );
    let mut lines = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        lines.push(format!("{ev:?}"));
    }
    assert!(
        lines.iter().any(|l| l.contains("on backup-box: cat -- ")),
        "{lines:#?}"
    );
    // The same name again is refused, never reused.
    let e = a
        .restore(
            &req(&w.backup(GOOD), "app__restore_good"),
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");

    // Archives and gzip, in a folder of the catalog: pg_restore -f - runs
    // on the backup host, gzip is inflated here; same data.
    let other = w.dir.path().join("backups").join("other");
    std::fs::create_dir_all(&other).unwrap();
    let custom = other.join("good.dump");
    restore_good_into(&w, "app_good_src");
    let o = Command::new(w.pg.bin("pg_dump"))
        .args(["-Fc", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(w.pg.port().to_string())
        .arg("-f")
        .arg(&custom)
        .arg("app_good_src")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gz = other.join("good.sql.gz");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c < '{}' > '{}'",
            w.backup(GOOD),
            gz.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success());
    for (path, target) in [(&custom, "app__restore_custom"), (&gz, "app__restore_gz")] {
        let r = a
            .restore(
                &req(&path.display().to_string(), target),
                &Output::discard(),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(r.manifest.tables.get("public.\"User\""), Some(&22));
        assert_eq!(sums(&w.pg, target), w.good, "{target}");
    }

    // A dump that is whole but fails midway: the step fails, the target stays INCOMPLETE.
    let bad = other.join("bad.sql");
    let text = std::fs::read_to_string(w.backup(GOOD)).unwrap();
    let text = text.replacen("user5@example.net", "user5@example.net\tan extra column", 1);
    std::fs::write(&bad, text).unwrap();
    let e = a
        .restore(
            &req(&bad.display().to_string(), "app__restore_bad"),
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("COPY into table 'public.\"User\"'"), "{e}");
    assert!(e.contains("INCOMPLETE"), "{e}");
    assert!(
        w.comment("app__restore_bad")
            .starts_with("lifeline: restore INCOMPLETE"),
        "{}",
        w.comment("app__restore_bad")
    );

    // verify: clean, with the manifest's row counts; a changed table fails it.
    let manifest = serde_json::to_value(&r.manifest).unwrap();
    let v = a
        .verify(
            &VerifyRequest {
                database: db.clone(),
                dbname: "app__restore_good".into(),
                manifest: Some(manifest.clone()),
                baseline: None,
            },
            &Output::discard(),
        )
        .await
        .unwrap();
    assert!(v.ok, "{:#?}", v.checks);
    assert_eq!(v.counts.get("public.game_request"), Some(&182));
    assert!(v.checks.iter().any(|c| c.kind == "row-count" && c.ok));
    w.pg.psql("app__restore_good", "DELETE FROM game WHERE id = 12 AND NOT EXISTS (SELECT 1 FROM game_request WHERE game_id = 12)")
        .unwrap();
    w.pg.psql("app__restore_good", "DELETE FROM event_log WHERE id = 1")
        .unwrap();
    let v = a
        .verify(
            &VerifyRequest {
                database: db.clone(),
                dbname: "app__restore_good".into(),
                manifest: Some(manifest),
                baseline: None,
            },
            &Output::discard(),
        )
        .await
        .unwrap();
    assert!(!v.ok);
    let bad: Vec<&str> = v
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.target.as_str())
        .collect();
    assert_eq!(bad, ["public.event_log"], "{:#?}", v.checks);

    // swap refuses a database whose marker is not "complete".
    w.pg.create_db("app__restore_half").unwrap();
    w.pg.psql(
        "postgres",
        "COMMENT ON DATABASE app__restore_half IS 'lifeline: restore INCOMPLETE: loading since x'",
    )
    .unwrap();
    let e = a
        .swap(
            &SwapRequest {
                database: db.clone(),
                restored: "app__restore_half".into(),
                damaged: Some("app__damaged_x".into()),
            },
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing to swap in 'app__restore_half'"), "{e}");
    assert!(e.contains("INCOMPLETE"), "{e}");
    assert_eq!(
        sums(&w.pg, "app"),
        w.damaged,
        "the live database was not touched"
    );
    assert!(w.databases("app__damaged%").is_empty());
}

/// Who a restore logs in as: a privileged restore role is refused and a
/// missing one fails, both before anything is created; the missing one is
/// created (LOGIN only) when the confirmation said so; without a restore
/// role (the confirmed superuser path) the target is the admin's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_restore_as_the_restore_role_only() {
    let w = World::new(50);
    let a = w.actions();
    let db = db_target(&a);
    let req = |target: &str, restore_as: RestoreAs| RestoreRequest {
        database: db.clone(),
        target_db: target.into(),
        catalog: catalog(&a),
        host: host_target(&a, "backup-box"),
        backup_path: w.backup(GOOD),
        jobs: 1,
        restore_as,
        picked: None,
    };
    let role = |name: &str, create: bool| RestoreAs::Role {
        name: name.into(),
        password_env: None,
        create,
    };
    let roles = || {
        w.pg.psql(
            "postgres",
            "SELECT string_agg(format('%s login=%s super=%s createdb=%s createrole=%s', rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole), ',' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_'",
        )
        .unwrap()
    };
    let before = roles();

    // 'app' is a superuser: refused, nothing created.
    let e = a
        .restore(
            &req("app__restore_su", role("app", false)),
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("restore_role 'app' is refused"), "{e}");
    assert!(e.contains("SUPERUSER"), "{e}");
    assert!(e.contains("nothing was created"), "{e}");
    // Missing, not confirmed for creation: fails naming the phrase.
    let e = a
        .restore(
            &req("app__restore_missing", role("fresh_restorer", false)),
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("'fresh_restorer' does not exist"), "{e}");
    assert!(e.contains("'app create role fresh_restorer'"), "{e}");
    assert!(w.databases("app\\_\\_restore%").is_empty());
    assert_eq!(roles(), before, "no role was created or altered");

    // Confirmed: created with LOGIN only, owns the target, sessions log in as it.
    let (tx, mut rx) = tokio::sync::broadcast::channel(4096);
    let out = Output::new(tx, 0, "restore", Redactor::new());
    let r = a
        .restore(
            &req("app__restore_fresh", role("fresh_restorer", true)),
            &out,
        )
        .await
        .unwrap();
    assert_eq!(r.manifest.restored_as, "fresh_restorer");
    let mut lines = String::new();
    while let Ok(ev) = rx.try_recv() {
        lines.push_str(&format!("{ev:?}\n"));
    }
    assert!(lines.contains("CREATE ROLE"), "{lines}");
    assert!(lines.contains("ownership skipped (--no-owner)"), "{lines}");
    assert!(
        roles().contains("fresh_restorer login=t super=f createdb=f createrole=f"),
        "{}",
        roles()
    );
    let owner = |d: &str| {
        w.pg.psql(
            "postgres",
            &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{d}'"),
        )
        .unwrap()
    };
    assert_eq!(owner("app__restore_fresh"), "fresh_restorer");

    // No restore_role (the operator typed '<db> as superuser'): the admin's.
    let r = a
        .restore(
            &req("app__restore_admin", RestoreAs::Admin),
            &Output::discard(),
        )
        .await
        .unwrap();
    assert_eq!(r.manifest.restored_as, "app");
    assert!(r.manifest.owners_skipped.is_empty());
    assert_eq!(owner("app__restore_admin"), "app");
}

/// Picked backup == restored backup: a file replaced after pick-backup is
/// refused with both hashes, before anything is created when the pre-scan
/// reads it, and with the target left INCOMPLETE (never swapped in) when
/// it is replaced while the target is being created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_replaced_between_pick_and_restore_is_refused_with_both_hashes() {
    use sha2::Digest;
    let w = World::new(300);
    let a = w.actions();
    let db = db_target(&a);
    let pick = a
        .pick_backup(
            &PickRequest {
                catalog: catalog(&a),
                host: host_target(&a, "backup-box"),
                database: Some(db.clone()),
                incident_at: Some(INCIDENT.parse().unwrap()),
                incident_dir: None,
            },
            &Output::discard(),
        )
        .await
        .unwrap();
    let picked = pick.picked.clone();
    assert_eq!(picked.name, GOOD);
    assert_eq!(picked.path, w.backup(GOOD));
    assert_eq!(picked.source, "catalog 'nightly' on host 'backup-box'");
    let picked_sha = picked.sha256.clone().unwrap();
    // The journaled outcome carries the same struct.
    let journaled = lifeline::engine::types::StepOutcome::from(pick);
    assert_eq!(journaled.data["backup"]["sha256"], picked_sha.as_str());
    assert_eq!(journaled.data["backup"]["source"], picked.source.as_str());

    // The picked name now holds another valid dump (other bytes).
    let good_text = std::fs::read_to_string(w.backup(GOOD)).unwrap();
    let other = format!("{good_text}-- replaced after the pick\n");
    let other_sha = hex::encode(sha2::Sha256::digest(other.as_bytes()));
    assert_ne!(other_sha, picked_sha);
    let replacement = w.dir.path().join("replacement.sql");
    std::fs::write(&replacement, &other).unwrap();
    std::fs::copy(&replacement, w.backup(GOOD)).unwrap();
    let req = |target: &str| RestoreRequest {
        database: db.clone(),
        target_db: target.into(),
        catalog: catalog(&a),
        host: host_target(&a, "backup-box"),
        backup_path: w.backup(GOOD),
        jobs: 1,
        picked: Some(picked.clone()),
        restore_as: restorer(),
    };
    let e = a
        .restore(&req("app__restore_swapped"), &Output::discard())
        .await
        .unwrap_err();
    assert_eq!(
        e.class(),
        lifeline::engine::ErrorClass::RefusedByCheck,
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&picked_sha) && msg.contains(&other_sha),
        "both hashes: {msg}"
    );
    assert!(msg.contains("Nothing was created"), "{msg}");
    assert!(
        w.databases("app__restore%").is_empty(),
        "a target was created"
    );

    // The picked file back: the same request restores it.
    std::fs::write(w.backup(GOOD), &good_text).unwrap();
    let r = a
        .restore(&req("app__restore_picked"), &Output::discard())
        .await
        .unwrap();
    assert_eq!(r.manifest.sha256, picked_sha);
    assert_eq!(sums(&w.pg, "app__restore_picked"), w.good);

    // Replaced after the pre-scan, while the target is created: the stream
    // read is refused at its end, before the target is marked complete.
    let (tx, mut rx) = tokio::sync::broadcast::channel(4096);
    let out = Output::new(tx, 0, "restore", Redactor::new());
    let path = w.backup(GOOD);
    let swap_in = replacement.clone();
    let watcher = tokio::spawn(async move {
        while let Ok(ev) = rx.recv().await {
            if format!("{ev:?}").contains("marked INCOMPLETE") {
                let tmp = format!("{path}.new");
                std::fs::copy(&swap_in, &tmp).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                return true;
            }
        }
        false
    });
    let e = a
        .restore(&req("app__restore_late"), &out)
        .await
        .unwrap_err();
    drop(out);
    assert!(watcher.await.unwrap(), "the target was never created");
    let msg = e.to_string();
    assert!(
        msg.contains(&picked_sha) && msg.contains(&other_sha),
        "both hashes: {msg}"
    );
    assert!(
        msg.contains("'app__restore_late' stays marked INCOMPLETE"),
        "{msg}"
    );
    assert!(
        w.comment("app__restore_late").contains("INCOMPLETE"),
        "{}",
        w.comment("app__restore_late")
    );
    // gzip (hashed as read, before gunzip) and custom archives (hashed on
    // their host): the right hash restores, another is refused.
    std::fs::write(w.backup(GOOD), &good_text).unwrap();
    let other_dir = w.dir.path().join("backups").join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let gz = other_dir.join("good.sql.gz");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c < '{}' > '{}'",
            w.backup(GOOD),
            gz.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success());
    restore_good_into(&w, "app_good_src");
    let custom = other_dir.join("good.dump");
    let o = Command::new(w.pg.bin("pg_dump"))
        .args(["-Fc", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(w.pg.port().to_string())
        .arg("-f")
        .arg(&custom)
        .arg("app_good_src")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (file, name) in [(&gz, "gz"), (&custom, "custom")] {
        let path = file.display().to_string();
        let sha = hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()));
        let held = |sha: &str, target: &str| RestoreRequest {
            backup_path: path.clone(),
            picked: Some(PickedBackup {
                path: path.clone(),
                sha256: Some(sha.to_string()),
                ..picked.clone()
            }),
            ..req(target)
        };
        let r = a
            .restore(
                &held(&sha, &format!("app__restore_{name}")),
                &Output::discard(),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            r.manifest.tables.get("public.\"User\""),
            Some(&22),
            "{name}"
        );
        let e = a
            .restore(
                &held(&other_sha, &format!("app__restore_{name}_other")),
                &Output::discard(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&sha) && e.contains(&other_sha), "{name}: {e}");
        assert!(
            w.databases(&format!("app__restore_{name}_other"))
                .is_empty(),
            "{name}: a target was created"
        );
    }

    // The swap refuses it (the existing completeness check).
    let e = a
        .swap(
            &SwapRequest {
                database: db.clone(),
                restored: "app__restore_late".into(),
                damaged: Some("app__damaged_late".into()),
            },
            &Output::discard(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing to swap in 'app__restore_late'"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_restore_a_dropped_database_and_swap_it_in_under_its_name() {
    let w = World::new(500);
    let a = w.actions();
    let db = db_target(&a);
    w.pg.psql("postgres", "DROP DATABASE app").unwrap();
    let (tx, mut rx) = tokio::sync::broadcast::channel(4096);
    let out = Output::new(tx, 0, "restore", Redactor::new());
    let r = a
        .restore(
            &RestoreRequest {
                database: db.clone(),
                target_db: "app__restore_back".into(),
                catalog: catalog(&a),
                host: host_target(&a, "backup-box"),
                backup_path: w.backup(GOOD),
                jobs: 1,
                restore_as: restorer(),
                picked: None,
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(r.manifest.tables.get("public.game"), Some(&12));
    let mut lines = String::new();
    while let Ok(ev) = rx.try_recv() {
        lines.push_str(&format!("{ev:?}\n"));
    }
    assert!(lines.contains("'app' does not exist"), "{lines}");
    let owner = w
        .pg
        .psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'app__restore_back'",
        )
        .unwrap();
    // The target is the restore role's until reapply-owners gives it back.
    assert_eq!(owner, "lifeline_restore UTF8");
    assert_eq!(r.manifest.restored_as, "lifeline_restore");
    assert_eq!(r.manifest.database_owner.as_deref(), Some("app"));
    assert!(
        r.manifest.owners_skipped.iter().any(|c| c.owner == "app"),
        "{:?}",
        r.manifest.owners_skipped
    );
    let tables_owner = |db: &str| {
        w.pg.psql(
            db,
            "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class WHERE relnamespace = 'public'::regnamespace",
        )
        .unwrap()
    };
    assert_eq!(tables_owner("app__restore_back"), "lifeline_restore");
    let re = a
        .reapply_owners(
            &ReapplyRequest {
                database: db.clone(),
                restored: "app__restore_back".into(),
                changes: r.manifest.owners_skipped.clone(),
                database_owner: r.manifest.database_owner.clone(),
            },
            &Output::discard(),
        )
        .await
        .unwrap();
    assert!(re.failed.is_empty() && re.missing_role.is_empty(), "{re:?}");
    let owner = w
        .pg
        .psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'app__restore_back'",
        )
        .unwrap();
    assert_eq!(owner, "app UTF8");
    assert_eq!(tables_owner("app__restore_back"), "app");
    let s = a
        .swap(
            &SwapRequest {
                database: db,
                restored: "app__restore_back".into(),
                damaged: None,
            },
            &Output::discard(),
        )
        .await
        .unwrap();
    assert_eq!(s.damaged, None);
    assert_eq!(sums(&w.pg, "app"), w.good);
}

#[test]
fn run_picks_over_ssh_and_verify_finds_the_damage_of_the_live_database() {
    let w = World::new(100);
    let answers = w.answers(
        "answers.toml",
        &format!("[params]\nincident_at = \"{INCIDENT}\"\n"),
    );
    let (code, out) = w.run(&["run", "look.toml", "--answers", &answers]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains(&format!("CHOSEN   {GOOD}")), "{out}");
    assert!(out.contains("loses 2 d 5 h"), "{out}");
    assert!(out.contains("FAILED expect-min"), "{out}");
    let jp = w.journal();
    journal_checks(&w, &jp);
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let pick = step_data(&recs, "step-finished", "pick");
    assert_eq!(pick["backup"]["name"], GOOD);
    assert_eq!(pick["rpo_s"], 2 * 86_400 + 5 * 3600 + 6 * 60);
    let cands = pick["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 3);
    assert!(cands.iter().all(|c| c["time_source"] == "name"));
    let verify = recs
        .iter()
        .rev()
        .find(|r| r.step.as_deref() == Some("verify") && r.kind != "step-started")
        .unwrap();
    assert_eq!(verify.data["ok"], false, "{:?}", verify.data);
    assert_eq!(verify.data["counts"]["public.\"User\""], 0);
    assert_eq!(verify.data["counts"]["public.game"], 12);
    let expect = verify.data["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "expect-min")
        .unwrap();
    assert_eq!(expect["ok"], false);
}

#[test]
fn run_picks_the_good_backup_restores_verifies_and_swaps() {
    let w = World::new(5_000);
    let answers = w.answers(
        "answers.toml",
        &format!("[params]\nincident_at = \"{INCIDENT}\"\n\n[confirm]\nrestore = \"app\"\nowners = \"app\"\nswap = \"app\"\n"),
    );
    let (code, out) = w.run(&["run", "data-drill.toml", "--answers", &answers]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("CHOSEN   {GOOD}")), "{out}");
    assert!(out.contains("restore .. "), "progress is shown: {out}");
    assert_eq!(
        sums(&w.pg, "app"),
        w.good,
        "the live data is the good backup's"
    );
    let damaged = w.databases("app__damaged_%");
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert_eq!(sums(&w.pg, &damaged[0]), w.damaged);
    let jp = w.journal();
    journal_checks(&w, &jp);
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let pick = step_data(&recs, "step-finished", "pick");
    assert_eq!(pick["backup"]["name"], GOOD);
    let restore = step_data(&recs, "step-finished", "restore");
    assert_eq!(restore["manifest"]["tables"]["public.\"User\""], 22);
    let verify = step_data(&recs, "step-finished", "verify");
    assert_eq!(verify["ok"], true);
    let swap = step_data(&recs, "step-finished", "swap");
    assert_eq!(swap["restored_from"], restore["target_db"]);
    // Restored as the restore role, read by verify as it, owners given back before the swap.
    assert_eq!(restore["manifest"]["restored_as"], "lifeline_restore");
    assert!(
        out.contains("reading as the restore role 'lifeline_restore'"),
        "{out}"
    );
    let skipped = restore["manifest"]["owners_skipped"].as_array().unwrap();
    assert!(!skipped.is_empty(), "{restore}");
    let confirmed = recs
        .iter()
        .find(|r| r.kind == "confirmed" && r.step.as_deref() == Some("restore"))
        .unwrap();
    assert_eq!(confirmed.data["typed"], "app");
    let owners = step_data(&recs, "step-finished", "owners");
    assert_eq!(
        owners["applied"].as_array().unwrap().len(),
        skipped.len() + 1,
        "{owners}"
    );
    assert_eq!(
        w.pg.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"
        )
        .unwrap(),
        "app"
    );
    assert_eq!(
        w.pg.psql(
            "app",
            "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        )
        .unwrap(),
        "app"
    );
}

/// The TLS-only done-means: `hostssl` only in pg_hba.conf, a CA and server
/// certificate made by openssl, sslmode=verify-full; the whole drill
/// through the runbook engine (snapshot, pick, restore, verify, swap, then
/// a read-only sql step) reaches the server over TLS only.
#[test]
fn a_tls_only_server_is_drilled_end_to_end_with_verify_full() {
    let w = World::build(2_000, true);
    // Plain text over TCP is refused by this server: only TLS gets in.
    let plain = Command::new(w.pg.bin("psql"))
        .args(["-X", "-At", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(w.pg.port().to_string())
        .args(["-d", "postgres", "-c", "SELECT 1"])
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    assert!(!plain.status.success(), "plain text was accepted");
    assert!(
        support::stderr(&plain).contains("no encryption"),
        "{}",
        support::stderr(&plain)
    );
    let runbook = format!(
        "{DRILL}\n[[step]]\nid = \"count\"\naction = \"sql\"\nexplain = \"read the swapped-in database over TLS\"\ndatabase = \"{{db}}\"\ndestructive = false\nsql = 'SELECT count(*) AS users, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS tls FROM \"User\"'\n"
    );
    std::fs::write(w.dir.path().join("tls-drill.toml"), runbook).unwrap();
    let answers = w.answers(
        "answers.toml",
        &format!("[params]\nincident_at = \"{INCIDENT}\"\n\n[confirm]\nrestore = \"app\"\nowners = \"app\"\nswap = \"app\"\n"),
    );
    let (code, out) = w.run(&["run", "tls-drill.toml", "--answers", &answers]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        sums(&w.pg, "app"),
        w.good,
        "the live data is the good backup's"
    );
    let jp = w.journal();
    journal_checks(&w, &jp);
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let snap = step_data(&recs, "step-finished", "snap");
    assert!(snap["size"].as_u64().unwrap() > 0, "{snap}");
    let restore = step_data(&recs, "step-finished", "restore");
    assert_eq!(restore["manifest"]["tables"]["public.\"User\""], 22);
    assert_eq!(step_data(&recs, "step-finished", "verify")["ok"], true);
    let swap = step_data(&recs, "step-finished", "swap");
    assert_eq!(swap["restored_from"], restore["target_db"]);
    let count = step_data(&recs, "step-finished", "count");
    assert_eq!(count["output"][0], "users=22 | tls=t", "{count}");
    // Every session lifeline opened to the server was encrypted.
    let plain_sessions = w
        .pg
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.client_addr IS NOT NULL AND NOT s.ssl",
        )
        .unwrap();
    assert_eq!(plain_sessions, "0");
}

#[test]
fn a_corrupt_backup_named_explicitly_is_refused_before_anything_destructive() {
    let w = World::new(100);
    let answers = w.answers(
        "answers.toml",
        &format!(
            "[params]\nbackup = \"{}\"\n\n[confirm]\nrestore = \"app\"\n",
            w.backup(CUT)
        ),
    );
    let (code, out) = w.run(&["run", "explicit.toml", "--answers", &answers]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not usable: truncated"), "{out}");
    assert!(
        w.databases("app__restore%").is_empty(),
        "a target was created"
    );
    assert_eq!(sums(&w.pg, "app"), w.damaged);
    let jp = w.journal();
    journal_checks(&w, &jp);
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let failed = step_data(&recs, "step-failed", "restore");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("nothing was created"),
        "{failed}"
    );
    // The journal says what kind of failure it was, not only in words.
    assert_eq!(failed["class"], "refused-by-check", "{failed}");
}

#[test]
fn kill_9_during_the_restore_then_resume_completes_with_a_new_target() {
    let w = World::new(400_000);
    let answers = format!(
        "[params]\nincident_at = \"{INCIDENT}\"\n\n[confirm]\nrestore = \"app\"\nowners = \"app\"\nswap = \"app\"\n"
    );
    let a1 = w.answers("answers.toml", &answers);
    let mut child = w
        .cmd(&["run", "data-drill.toml", "--answers", &a1])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the restore is loading, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(120);
    let first = loop {
        let loading = w.pg.psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE 'lifeline: restore INCOMPLETE: loading%'",
        );
        if let Ok(n) = loading
            && !n.is_empty()
        {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the restore never started loading"
        );
        assert!(child.try_wait().unwrap().is_none(), "lifeline ended early");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let jp = w.journal();
    let recs = lifeline::journal::read_records(&jp).unwrap();
    assert!(
        recs.iter()
            .any(|r| r.kind == "step-started" && r.step.as_deref() == Some("restore"))
    );
    assert!(
        !recs
            .iter()
            .any(|r| r.kind == "step-finished" && r.step.as_deref() == Some("restore")),
        "the restore finished before the kill: make the dump bigger"
    );
    let id = jp
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();

    // The engine stamps the new target with the time of the resumed run: an
    // operator takes longer than the second that separates two stamps (a
    // resume within the same second is refused: "already exists").
    std::thread::sleep(Duration::from_millis(1100));
    let a2 = w.answers(
        "rerun.toml",
        &format!("{answers}\n[interrupted]\nrestore = \"rerun\"\n"),
    );
    let (code, out) = w.run(&[
        "run",
        "data-drill.toml",
        "--answers",
        &a2,
        "--resume",
        "--incident",
        &id,
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sums(&w.pg, "app"), w.good);
    // The interrupted target is kept, still marked INCOMPLETE; another was swapped in.
    assert!(
        w.comment(&first)
            .starts_with("lifeline: restore INCOMPLETE"),
        "{}",
        w.comment(&first)
    );
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let swap = step_data(&recs, "step-finished", "swap");
    assert_ne!(swap["restored_from"], first.as_str());
    journal_checks(&w, &jp);
}

#[test]
fn a_dropped_database_is_restored_under_its_name() {
    let w = World::new(1_000);
    w.pg.psql("postgres", "DROP DATABASE app").unwrap();
    let answers = w.answers(
        "answers.toml",
        &format!("[params]\nincident_at = \"{INCIDENT}\"\n\n[confirm]\nrestore = \"app\"\nowners = \"app\"\nswap = \"app\"\n"),
    );
    let (code, out) = w.run(&["run", "data-drill.toml", "--answers", &answers]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("does not exist"), "{out}");
    assert_eq!(sums(&w.pg, "app"), w.good);
    assert!(w.databases("app__damaged_%").is_empty());
    let owner =
        w.pg.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'",
        )
        .unwrap();
    assert_eq!(owner, "app");
    journal_checks(&w, &w.journal());
}

/// The drill with merge-tables instead of the swap: the restore step's copy
/// is the source; the wiped tables get the good backup's rows back and keep
/// what was written after the damage; the other tables are untouched.
#[test]
fn run_merges_the_wiped_tables_back_from_the_restore_of_the_same_run() {
    let w = World::new(1_000);
    w.pg.psql(
        "app",
        "INSERT INTO \"User\" VALUES (30, 'after@example.net'); INSERT INTO game_request VALUES (500, 30, 2, 'after the damage'); UPDATE game SET name = 'renamed after' WHERE id = 4",
    )
    .unwrap();
    let before = sums(&w.pg, "app");
    let drill = DRILL
        .replace("id = \"data-drill\"", "id = \"merge-drill\"")
        .replace(
            "[[step]]\nid = \"swap\"\naction = \"swap\"\nexplain = \"the restored database takes the live name\"\ndatabase = \"{db}\"\nrestored = \"{restore.target_db}\"",
            "[[step]]\nid = \"merge\"\naction = \"merge-tables\"\nexplain = \"put the wiped tables back\"\ndatabase = \"{db}\"\nrestored = \"{restore.target_db}\"\ntables = \"public.User, public.game_request\"",
        );
    assert!(drill.contains("merge-tables"));
    std::fs::write(w.dir.path().join("merge-drill.toml"), drill).unwrap();
    let answers = w.answers(
        "answers.toml",
        &format!("[params]\nincident_at = \"{INCIDENT}\"\n\n[confirm]\nrestore = \"app\"\nowners = \"app\"\nmerge = \"merge public.User, public.game_request into app\"\n"),
    );
    let (code, out) = w.run(&["run", "merge-drill.toml", "--answers", &answers]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("public.User: live 1, restored 22, to insert 22"),
        "{out}"
    );
    // No database was swapped or renamed.
    assert!(w.databases("app__damaged_%").is_empty());
    let q = |sql: &str| w.pg.psql("app", sql).unwrap();
    assert_eq!(q("SELECT count(*) FROM \"User\""), "23");
    assert_eq!(
        q("SELECT email FROM \"User\" WHERE id = 30"),
        "after@example.net"
    );
    assert_eq!(q("SELECT count(*) FROM game_request"), "183");
    assert_eq!(
        q("SELECT note FROM game_request WHERE id = 500"),
        "after the damage"
    );
    // Rows of the good backup, by content.
    let after = sums(&w.pg, "app");
    let restored = w.databases("app__restore_%");
    assert_eq!(restored.len(), 1, "{restored:?}");
    for t in ["public.\"User\"", "public.game_request"] {
        let f = |db: &str| {
            w.pg.psql(
                db,
                &format!(
                    "SELECT md5(string_agg(x::text, '|' ORDER BY x::text)) FROM {t} x WHERE id NOT IN (30, 500)"
                ),
            )
            .unwrap()
        };
        assert_eq!(f("app"), f(&restored[0]), "{t}");
    }
    // The undamaged tables hold exactly what they held.
    for t in ["public.game", "public.event_log"] {
        assert_eq!(after[t], before[t], "{t}");
    }
}
