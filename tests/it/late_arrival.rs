//! lifeline arrives late, with real parts: a real PostgreSQL whose app
//! database a rogue job already wiped (`pg_dump --clean` of an empty copy
//! piped into it) before lifeline starts, and a catalog on a host reached
//! over a real OpenSSH sshd holding a healthy dump, a truncated one, a
//! schema-only one, one of another database and two post-wipe dumps, all
//! named before "now". No incident time given, and separately "now": the
//! last healthy dump is picked, verified against history, swapped in.
//! Plain, gzip and custom archives; `lifeline backups --json` labels all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use lifeline::state::StateDir;
use support::{PgCluster, Sshd};

const SECRET: &str = "L4te-Arr1val-S3cret";

const HEALTHY: &str = "app_20261120_073600";
const CUT: &str = "app_20261121_073600";
const SCHEMA_ONLY: &str = "app_20261121_120000";
const OTHER: &str = "app_20261121_130000";
const WIPED1: &str = "app_20261122_070000";
const WIPED2: &str = "app_20261123_070000";

const SCHEMA: &str = r#"
SET ROLE app;
CREATE TABLE "User" (id int PRIMARY KEY, email text UNIQUE NOT NULL);
CREATE TABLE game (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE game_request (id int PRIMARY KEY,
  user_id int NOT NULL REFERENCES "User"(id) ON DELETE CASCADE,
  game_id int NOT NULL REFERENCES game(id), note text);
"#;

const DATA: &str = r#"
INSERT INTO "User" SELECT g, 'user' || g || '@example.net' FROM generate_series(1, 40) g;
INSERT INTO game SELECT g, 'game ' || g FROM generate_series(1, 12) g;
INSERT INTO game_request SELECT g, 1 + g % 40, 1 + g % 12, E'it''s; a \\. note ' || g FROM generate_series(1, 300) g;
"#;

/// Another application's database: a bigger "User" table, so a history
/// polluted by it would call the healthy dump damaged.
const SHOP: &str = r#"
CREATE TABLE "User" (id int PRIMARY KEY);
CREATE TABLE orders (id int PRIMARY KEY);
INSERT INTO "User" SELECT generate_series(1, 900);
INSERT INTO orders SELECT generate_series(1, 50);
"#;

/// The recovery with the incident time from the timeline (none journaled:
/// the evidence decides) or from the answers.
const RECOVER: &str = r#"
id = "late-recover"
title = "Restore the last healthy backup beside the live database and swap it in"
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
from = "timeline"

[[step]]
id = "stop"
action = "stop-services"
explain = "nothing writes any more in this test; prove it"
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
explain = "the newest healthy backup before the damage"
catalog = "{catalog}"
incident_at = "{incident_at}"

[[step]]
id = "restore"
action = "restore"
explain = "restore beside the live database"
database = "{db}"
catalog = "{catalog}"
backup = "{pick.backup.path}"

[[step]]
id = "verify"
action = "verify"
explain = "integrity, manifest and history"
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

/// The operator overrides the pick with a post-wipe dump: verify must fail.
const FORCED: &str = r#"
id = "late-forced"
title = "Restore the backup the operator names"
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
explain = "nothing writes any more in this test; prove it"
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
explain = "the labels and the history"
catalog = "{catalog}"
incident_at = "evidence"

[[step]]
id = "restore"
action = "restore"
explain = "restore what the operator named"
database = "{db}"
catalog = "{catalog}"
backup = "{backup}"

[[step]]
id = "verify"
action = "verify"
explain = "integrity, manifest and history"
database = "{db}"
restored = "{restore.target_db}"
"#;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Fmt {
    Plain,
    Gzip,
    Custom,
}

impl Fmt {
    fn ext(self) -> &'static str {
        match self {
            Fmt::Plain => ".sql",
            Fmt::Gzip => ".sql.gz",
            Fmt::Custom => ".dump",
        }
    }
    fn args(self) -> &'static [&'static str] {
        match self {
            Fmt::Plain => &[],
            Fmt::Gzip => &["-Z", "6"],
            Fmt::Custom => &["-Fc"],
        }
    }
}

struct World {
    pg: PgCluster,
    _sshd: Sshd,
    dir: tempfile::TempDir,
    fmt: Fmt,
}

fn pg_dump(pg: &PgCluster, db: &str, fmt: Fmt, extra: &[&str], to: &Path) {
    let o = Command::new(pg.bin("pg_dump"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .args(fmt.args())
        .args(extra)
        .arg("-f")
        .arg(to)
        .arg(db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn psql_file(pg: &PgCluster, db: &str, file: &Path) {
    let o = Command::new(pg.bin("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args(["-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .arg("-d")
        .arg(db)
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

impl World {
    fn new(fmt: Fmt) -> World {
        let pg = support::pg();
        pg.psql(
            "postgres",
            &format!("CREATE ROLE app LOGIN SUPERUSER PASSWORD '{SECRET}'"),
        )
        .unwrap();
        pg.psql("postgres", "CREATE DATABASE app OWNER app")
            .unwrap();
        pg.psql("postgres", "CREATE DATABASE app_empty OWNER app")
            .unwrap();
        pg.psql("postgres", "CREATE DATABASE shop").unwrap();
        pg.psql("postgres", "CREATE ROLE lifeline_restore LOGIN")
            .unwrap();
        support::require_password(&pg, "app");
        pg.psql("app", SCHEMA).unwrap();
        pg.psql("app_empty", SCHEMA).unwrap();
        pg.psql("app", DATA).unwrap();
        pg.psql("shop", SHOP).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        std::fs::create_dir_all(&backups).unwrap();
        let w = World {
            pg,
            _sshd: support::sshd(),
            dir,
            fmt,
        };
        // Archives take their time from their header: a second between them.
        let pause = || {
            if fmt == Fmt::Custom {
                std::thread::sleep(std::time::Duration::from_millis(1100));
            }
        };
        pg_dump(&w.pg, "app", fmt, &[], &w.backup_path(HEALTHY));
        pause();
        let full = w.dir.path().join(format!("full{}", fmt.ext()));
        pg_dump(&w.pg, "app", fmt, &[], &full);
        let bytes = std::fs::read(&full).unwrap();
        std::fs::write(w.backup_path(CUT), &bytes[..bytes.len() * 2 / 3]).unwrap();
        pause();
        pg_dump(
            &w.pg,
            "app",
            fmt,
            &["--schema-only"],
            &w.backup_path(SCHEMA_ONLY),
        );
        pause();
        pg_dump(&w.pg, "shop", fmt, &["--create"], &w.backup_path(OTHER));
        pause();
        w.rogue_wipe();
        pg_dump(&w.pg, "app", fmt, &[], &w.backup_path(WIPED1));
        pause();
        pg_dump(&w.pg, "app", fmt, &[], &w.backup_path(WIPED2));
        w.write_files();
        w
    }

    /// The rogue job: an empty copy written over the database with --clean
    /// (the tables are dropped and re-created empty).
    fn rogue_wipe(&self) {
        let sql = self.dir.path().join("rogue.sql");
        pg_dump(
            &self.pg,
            "app_empty",
            Fmt::Plain,
            &["--clean", "--if-exists"],
            &sql,
        );
        psql_file(&self.pg, "app", &sql);
        assert_eq!(
            self.pg
                .psql("app", "SELECT count(*) FROM \"User\"")
                .unwrap(),
            "0"
        );
    }

    fn backup_path(&self, stem: &str) -> PathBuf {
        self.dir
            .path()
            .join("backups")
            .join(format!("{stem}{}", self.fmt.ext()))
    }

    fn name(&self, stem: &str) -> String {
        format!("{stem}{}", self.fmt.ext())
    }

    fn write_files(&self) {
        let sshd = &self._sshd;
        let kh = sshd.write_known_hosts().unwrap();
        let inventory = format!(
            r#"[[host]]
name = "backup-box"
address = "127.0.0.1:{port}"
user = "{user}"
identity = "{key}"
known_hosts = "{kh}"

[[database]]
name = "main"
url = "postgres://app@127.0.0.1:{pgport}/app"
password_env = "APP_PGPASSWORD"
restore_role = "lifeline_restore"
watch = ["User"]

[[backups]]
name = "nightly"
host = "backup-box"
path = "{backups}"
pattern = "app_%Y%m%d_%H%M%S{ext}"
database = "main"
"#,
            port = sshd.port(),
            user = sshd.user(),
            key = sshd.user_key().display(),
            kh = kh.display(),
            pgport = self.pg.port(),
            backups = self.dir.path().join("backups").display(),
            ext = self.fmt.ext(),
        );
        std::fs::write(self.dir.path().join("lifeline.toml"), inventory).unwrap();
        std::fs::write(self.dir.path().join("recover.toml"), RECOVER).unwrap();
        std::fs::write(self.dir.path().join("forced.toml"), FORCED).unwrap();
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let o = support::lifeline(&self.state())
            .current_dir(self.dir.path())
            .env("APP_PGPASSWORD", SECRET)
            .env_remove("LIFELINE_RUNBOOKS")
            .args(["-i", "lifeline.toml"])
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            support::stdout(&o),
            support::stderr(&o),
        )
    }

    fn answers(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn journal_of(&self, out: &str) -> PathBuf {
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("incident "))
            .and_then(|l| l.split(':').next())
            .unwrap_or_else(|| panic!("no incident line in {out}"));
        StateDir::new(self.state()).journal_path(id)
    }

    fn users(&self) -> String {
        self.pg
            .psql("app", "SELECT count(*) FROM \"User\"")
            .unwrap()
    }
}

fn step_data(records: &[lifeline::journal::Record], step: &str) -> serde_json::Value {
    records
        .iter()
        .rev()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some(step))
        .unwrap_or_else(|| panic!("no step-finished of {step}"))
        .data
        .clone()
}

/// `lifeline backups --json` labels every file; the second run reads the cache.
fn backups_labels(w: &World) {
    let (code, out, err) = w.run(&["backups", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cat = &v["catalogs"][0];
    let files = cat["files"].as_array().unwrap();
    assert_eq!(files.len(), 6, "{out}");
    let label = |stem: &str| {
        let f = files
            .iter()
            .find(|f| f["name"] == w.name(stem))
            .unwrap_or_else(|| panic!("{stem} not listed: {out}"));
        (f["label"].as_str().unwrap().to_string(), f.clone())
    };
    assert_eq!(label(HEALTHY).0, "healthy", "{out}");
    assert_eq!(label(CUT).0, "truncated", "{out}");
    assert_eq!(label(SCHEMA_ONLY).0, "schema-only", "{out}");
    assert_eq!(label(OTHER).0, "other-database", "{out}");
    assert_eq!(label(WIPED1).0, "damaged", "{out}");
    assert_eq!(label(WIPED2).0, "damaged", "{out}");
    let healthy = label(HEALTHY).1;
    assert_eq!(healthy["content"]["rows"]["public.\"User\""], 40, "{out}");
    assert_eq!(healthy["content"]["rows"]["public.game_request"], 300);
    assert!(
        healthy["content"]["pg_dump_version"]
            .as_str()
            .unwrap()
            .starts_with("15"),
        "{out}"
    );
    assert_eq!(healthy["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(healthy["cached"], false);
    assert_eq!(cat["baseline"]["rows"]["public.User"], 40, "{out}");
    let window = cat["window_text"].as_str().unwrap();
    assert!(
        window.contains(&format!("(backup {})", w.name(HEALTHY)))
            && window.contains(&format!("(backup {})", w.name(WIPED1))),
        "{window}"
    );
    // Scanned once: the second listing reads every scan from the cache.
    let (code, out2, _) = w.run(&["backups", "--json"]);
    assert_eq!(code, 0);
    let v2: serde_json::Value = serde_json::from_str(&out2).unwrap();
    for f in v2["catalogs"][0]["files"].as_array().unwrap() {
        if f["ok"] == true {
            assert_eq!(f["cached"], true, "{f}");
        }
    }
    let scans = w.state().join("scans");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&scans).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for e in std::fs::read_dir(&scans).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            !text.contains("example.net"),
            "a row is in the cache: {text}"
        );
    }
    // The text listing says the same.
    let (code, text, _) = w.run(&["backups", "nightly"]);
    assert_eq!(code, 0);
    assert!(text.contains("damaged between"), "{text}");
}

/// One recovery run: the healthy dump picked, verified against history, swapped.
fn recover(w: &World, answers: &str, expect_warning: &str, expect_likely: bool) {
    let (code, out, err) = w.run(&["run", "recover.toml", "--answers", answers]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("CHOSEN   {}", w.name(HEALTHY))),
        "{out}"
    );
    assert_eq!(
        w.users(),
        "40",
        "the live database holds the healthy data again"
    );
    let jp = w.journal_of(&out);
    let o = support::lifeline(&w.state())
        .args(["journal", "verify"])
        .arg(&jp)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", support::stdout(&o));
    let text = std::fs::read_to_string(&jp).unwrap();
    assert!(!text.contains(SECRET));
    let recs = lifeline::journal::read_records(&jp).unwrap();
    // The run sampled the database at its start and journaled what it saw.
    let start = recs
        .iter()
        .find(|r| r.kind == "note" && r.data["source"] == "start-sample")
        .expect("no start-of-run sample in the journal");
    assert!(start.seq < recs.iter().find(|r| r.kind == "step-started").unwrap().seq);
    assert!(start.summary.contains("public.User 0"), "{}", start.summary);
    let user = start.data["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "User")
        .unwrap();
    assert_eq!(user["rows"], 0);
    assert_eq!(user["exact"], true);
    let pick = step_data(&recs, "pick");
    assert_eq!(pick["backup"]["name"], w.name(HEALTHY), "{pick}");
    assert_eq!(
        pick["baseline_source"],
        "the picked backup's scanned counts and the timeline's exact counts",
        "{pick}"
    );
    assert_eq!(pick["baseline"]["public.User"], 40, "{pick}");
    let window = pick["window_text"].as_str().unwrap();
    assert!(
        window.starts_with("damaged between")
            && window.contains(&w.name(HEALTHY))
            && window.contains(&w.name(WIPED1)),
        "{window}"
    );
    // Archives carry real times: the wipe's re-created table files fall
    // inside the window and name the most likely moment.
    assert_eq!(
        window.contains(", most likely ")
            && window.contains("(table files re-created: public.User has OID"),
        expect_likely,
        "{window}"
    );
    let live = pick["live_evidence"].as_array().unwrap();
    let user = live.iter().find(|e| e["table"] == "public.User").unwrap();
    assert!(user["oid"].as_i64().unwrap() > 0, "{user}");
    assert!(user["file_modified"].is_string(), "{user}");
    let warnings = pick["warnings"].to_string();
    assert!(warnings.contains(expect_warning), "{warnings}");
    let cands = pick["candidates"].as_array().unwrap();
    let excl = |stem: &str| {
        cands.iter().find(|c| c["name"] == w.name(stem)).unwrap()["excluded"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        excl(WIPED1).starts_with("labelled damaged"),
        "{}",
        excl(WIPED1)
    );
    assert!(
        excl(WIPED2).starts_with("labelled damaged"),
        "{}",
        excl(WIPED2)
    );
    assert!(excl(SCHEMA_ONLY).starts_with("labelled schema-only"));
    assert!(excl(OTHER).starts_with("labelled other-database"));
    assert!(!excl(CUT).is_empty());
    let summary = recs
        .iter()
        .rev()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("pick"))
        .unwrap()
        .summary
        .clone();
    assert!(summary.contains("damaged between"), "{summary}");
    let verify = step_data(&recs, "verify");
    assert_eq!(verify["ok"], true, "{verify}");
    let history: Vec<&serde_json::Value> = verify["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "history")
        .collect();
    assert_eq!(history.len(), 3, "{verify}");
    assert!(history.iter().all(|c| c["ok"] == true));
    let swap = step_data(&recs, "swap");
    assert!(
        swap["damaged"]
            .as_str()
            .unwrap()
            .starts_with("app__damaged_")
    );
}

fn late_arrival(fmt: Fmt) {
    let w = World::new(fmt);
    assert_eq!(w.users(), "0", "the rogue job wiped the database");
    backups_labels(&w);

    // No incident time: none given, no alert journaled.
    let a = w.answers(
        "none.toml",
        "[confirm]\nrestore = \"app\"\nowners = \"app\"\nswap = \"app\"\n",
    );
    recover(
        &w,
        &a,
        "no incident time was given or journaled",
        fmt == Fmt::Custom,
    );

    // The operator gives "now": corrected to the evidence.
    w.rogue_wipe();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let a = w.answers(
        "now.toml",
        &format!(
            "[params]\nincident_at = \"{now}\"\n\n[confirm]\nrestore = \"app\"\nowners = \"app\"\nswap = \"app\"\n"
        ),
    );
    recover(&w, &a, "is later than the evidence allows", false);
}

#[test]
fn late_arrival_plain_over_ssh() {
    let w_fmt = Fmt::Plain;
    late_arrival(w_fmt);
}

#[test]
fn late_arrival_gzip_over_ssh() {
    late_arrival(Fmt::Gzip);
}

#[test]
fn late_arrival_custom_over_ssh() {
    late_arrival(Fmt::Custom);
}

#[test]
fn a_post_wipe_dump_named_by_the_operator_fails_verify_against_history() {
    let w = World::new(Fmt::Plain);
    let a = w.answers(
        "forced-answers.toml",
        &format!(
            "[params]\nbackup = \"{}\"\n\n[confirm]\nrestore = \"app\"\n",
            w.backup_path(WIPED2).display()
        ),
    );
    let (code, out, err) = w.run(&["run", "forced.toml", "--answers", &a]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(out.contains("FAILED history public.User"), "{out}{err}");
    let recs = lifeline::journal::read_records(&w.journal_of(&out)).unwrap();
    let verify = recs
        .iter()
        .rev()
        .find(|r| r.step.as_deref() == Some("verify") && r.kind != "step-started")
        .unwrap();
    assert_eq!(verify.data["ok"], false, "{:?}", verify.data);
    let user = verify.data["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "history" && c["target"] == "public.User")
        .unwrap()
        .clone();
    assert_eq!(user["ok"], false);
    assert_eq!(user["found"]["history"], 40);
    assert_eq!(user["found"]["counted"], 0);
}
