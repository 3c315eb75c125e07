//! `lifeline run` headless against a real PostgreSQL cluster: a swap drill
//! (note, sql, snapshot, swap), a wrong typed name, kill -9 and resume,
//! --dry-run and --readonly changing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lifeline::state::StateDir;
use support::PgCluster;

const SECRET: &str = "Pl4nted-S3cret-Value";

const SWAP_DRILL: &str = r#"
id = "swap-drill"
title = "Swap a restored copy in"
when = "tests"

[[param]]
name = "db"
kind = "database"
from = "inventory"

[[param]]
name = "restored"
kind = "text"
from = "ask"

[[step]]
id = "hello"
action = "note"
explain = "start"
text = "drill on {db.target}"

[[step]]
id = "count"
action = "sql"
explain = "count the rows, read-only"
database = "{db}"
destructive = false
sql = "SELECT count(*) AS n, 'Pl4nted-S3cret-Value' AS planted FROM t"

[[step]]
id = "snap"
action = "snapshot"
explain = "keep the damaged state"
database = "{db}"

[[step]]
id = "swap"
action = "swap"
explain = "put the restored copy in"
database = "{db}"
restored = "{restored}"

[[step]]
id = "after"
action = "sql"
explain = "count again"
database = "{db}"
destructive = false
sql = "SELECT count(*) AS n FROM t"
"#;

const SLOW_DRILL: &str = r#"
id = "slow-drill"
title = "A slow step"
when = "tests"

[[param]]
name = "db"
kind = "database"
from = "inventory"

[[step]]
id = "hello"
action = "note"
explain = "start"
text = "slow drill"

[[step]]
id = "slow"
action = "sql"
explain = "a long query"
database = "{db}"
destructive = false
sql = "SELECT pg_sleep(s) FROM sleep_conf"

[[step]]
id = "bye"
action = "note"
explain = "end"
text = "done"
"#;

struct Setup {
    pg: PgCluster,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let pg = support::pg();
        pg.create_db("app").unwrap();
        pg.create_db("app__restore_x").unwrap();
        pg.psql(
            "app",
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'old' FROM generate_series(1,3) g; CREATE TABLE sleep_conf (s float8); INSERT INTO sleep_conf VALUES (30)",
        )
        .unwrap();
        pg.psql(
            "app__restore_x",
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'restored' FROM generate_series(1,5) g; COMMENT ON DATABASE app__restore_x IS 'lifeline: restore complete (test fixture)'",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lifeline.toml"),
            format!(
                "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:{}/app\"\npassword_env = \"APP_PGPASSWORD\"\nhost = \"here\"\n",
                pg.port()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("swap-drill.toml"), SWAP_DRILL).unwrap();
        std::fs::write(dir.path().join("slow-drill.toml"), SLOW_DRILL).unwrap();
        Setup { pg, dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
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
        let o: Output = self.cmd(args).output().unwrap();
        let text = support::stdout(&o) + &support::stderr(&o);
        (o.status.code().unwrap_or(-1), text)
    }

    /// Databases (besides the templates) with the rows of `t` in each.
    fn world(&self) -> Vec<(String, String)> {
        let names = self
            .pg
            .psql(
                "postgres",
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1",
            )
            .unwrap();
        names
            .lines()
            .map(|n| {
                let rows = self
                    .pg
                    .psql(
                        n,
                        "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t",
                    )
                    .unwrap();
                (n.to_string(), rows)
            })
            .collect()
    }

    fn journal(&self) -> PathBuf {
        let s = StateDir::new(self.state());
        let ids = s.list_incidents();
        assert_eq!(ids.len(), 1, "{ids:?}");
        s.journal_path(&ids[0])
    }
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures/answers")
        .join(name)
        .display()
        .to_string()
}

fn journal_verifies(s: &Setup, p: &Path) {
    let o = support::lifeline(&s.state())
        .args(["journal", "verify"])
        .arg(p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", support::stdout(&o));
}

#[test]
fn swap_drill_puts_the_restored_copy_under_the_live_name_and_keeps_the_old() {
    let s = Setup::new();
    let (code, out) = s.run(&[
        "run",
        "swap-drill.toml",
        "--answers",
        &fixture("swap-drill.toml"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("finished: every step done (exit 0)"), "{out}");
    assert!(!out.contains(SECRET), "secret on screen:\n{out}");

    let world = s.world();
    let names: Vec<&str> = world.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "{world:?}");
    assert_eq!(world[0].0, "app");
    assert_eq!(
        world[0].1,
        "1:restored,2:restored,3:restored,4:restored,5:restored"
    );
    assert!(world[1].0.starts_with("app__damaged_"), "{world:?}");
    assert_eq!(world[1].1, "1:old,2:old,3:old");

    let jp = s.journal();
    journal_verifies(&s, &jp);
    let text = std::fs::read_to_string(&jp).unwrap();
    assert!(!text.contains(SECRET), "secret in the journal");
    assert!(text.contains("planted=***"), "{text}");
    let recs = lifeline::journal::read_records(&jp).unwrap();
    assert_eq!(recs[0].kind, "incident-opened");
    assert_eq!(recs[1].kind, "run-started");
    let kinds: Vec<String> = recs
        .iter()
        .filter(|r| r.step.is_some())
        .map(|r| format!("{} {}", r.kind, r.step.clone().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            "step-started hello",
            "step-finished hello",
            "step-started count",
            "step-finished count",
            "step-started snap",
            "step-finished snap",
            "confirmed swap",
            "step-started swap",
            "step-finished swap",
            "step-started after",
            "step-finished after",
        ]
    );
    let swap = recs
        .iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("swap"))
        .unwrap();
    assert_eq!(swap.data["live"], "app");
    assert_eq!(swap.data["damaged"].as_str().unwrap(), world[1].0);
    assert_eq!(swap.data["restored_from"], "app__restore_x");
    let started = recs
        .iter()
        .find(|r| r.kind == "step-started" && r.step.as_deref() == Some("swap"))
        .unwrap();
    assert!(
        started
            .command
            .as_deref()
            .unwrap()
            .contains("ALTER DATABASE \"app\" RENAME TO")
    );
    assert!(started.data["identity"]["oid"].as_u64().is_some());
    // The snapshot is on disk with the size and hash journaled, and restores the old rows.
    let snap = recs
        .iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("snap"))
        .unwrap();
    let path = snap.data["path"].as_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(snap.data["size"].as_u64().unwrap(), bytes.len() as u64);
    assert_eq!(
        snap.data["sha256"].as_str().unwrap(),
        lifeline::journal::sha256_hex(&bytes)
    );
    let listing = Command::new(s.pg.bin("pg_restore"))
        .args(["-l", path])
        .output()
        .unwrap();
    assert!(support::stdout(&listing).contains("TABLE DATA public t"));
    let after = recs
        .iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("after"))
        .unwrap();
    assert_eq!(after.data["output"][0], "n=5");
}

#[test]
fn wrong_typed_name_stops_the_swap_and_renames_nothing() {
    let s = Setup::new();
    let before = s.world();
    let (code, out) = s.run(&[
        "run",
        "swap-drill.toml",
        "--answers",
        &fixture("swap-drill-wrong-name.toml"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("typed 'ap' but the database is 'app'; nothing was done"),
        "{out}"
    );
    assert_eq!(s.world(), before);
    let jp = s.journal();
    journal_verifies(&s, &jp);
    let recs = lifeline::journal::read_records(&jp).unwrap();
    assert!(
        !recs
            .iter()
            .any(|r| r.kind == "step-started" && r.step.as_deref() == Some("swap"))
    );
    let failed = recs.iter().find(|r| r.kind == "step-failed").unwrap();
    assert_eq!(failed.data["phase"], "confirm");
    // The last event (after it, the writer's closing signed checkpoint).
    let last = recs.iter().rev().find(|r| r.kind != "checkpoint").unwrap();
    assert_eq!(last.kind, "run-finished");
    assert_eq!(recs.last().unwrap().kind, "checkpoint");
}

#[test]
fn kill_9_during_a_long_sql_step_then_resume() {
    let s = Setup::new();
    let mut child = s
        .cmd(&[
            "run",
            "slow-drill.toml",
            "--answers",
            &fixture("slow-drill.toml"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the slow step is journaled as started, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    let jp = loop {
        let ids = StateDir::new(s.state()).list_incidents();
        if let Some(id) = ids.first() {
            let p = StateDir::new(s.state()).journal_path(id);
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if text.contains("\"kind\":\"step-started\",\"step\":\"slow\"") {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "the slow step never started");
        assert!(child.try_wait().unwrap().is_none(), "lifeline ended early");
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let id = jp
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let n_before = lifeline::journal::read_records(&jp).unwrap().len();

    // Resume without saying what to do with the interrupted step: it stops there.
    let (code, out) = s.run(&[
        "run",
        "slow-drill.toml",
        "--answers",
        &fixture("slow-drill.toml"),
        "--resume",
        "--incident",
        &id,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("slow: interrupted: check before continuing"),
        "{out}"
    );
    assert!(out.contains("[interrupted]"), "{out}");
    let recs = lifeline::journal::read_records(&jp).unwrap();
    // Only the resume's own run-started and run-finished were added (and
    // the signed checkpoint its writer leaves on closing).
    let added: Vec<&str> = recs[n_before..].iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        added,
        ["run-started", "run-finished", "checkpoint"],
        "{added:?}"
    );
    assert!(!recs[n_before..].iter().any(|r| r.step.is_some()));

    // The operator checked; the step runs again (fast now) and the run completes.
    s.pg.psql("app", "UPDATE sleep_conf SET s = 0").unwrap();
    let (code, out) = s.run(&[
        "run",
        "slow-drill.toml",
        "--answers",
        &fixture("slow-drill-rerun.toml"),
        "--resume",
        "--incident",
        &id,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("resumed from the journal"), "{out}");
    journal_verifies(&s, &jp);
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let steps: Vec<String> = recs
        .iter()
        .filter(|r| r.step.is_some())
        .map(|r| format!("{} {}", r.kind, r.step.clone().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            "step-started hello",
            "step-finished hello",
            "step-started slow",
            "confirmed slow",
            "step-started slow",
            "step-finished slow",
            "step-started bye",
            "step-finished bye",
        ],
        "the completed note is not run again"
    );
}

#[test]
fn dry_run_and_readonly_change_nothing() {
    let s = Setup::new();
    let before = s.world();
    let (code, out) = s.run(&[
        "run",
        "swap-drill.toml",
        "--answers",
        &fixture("swap-drill.toml"),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{out}");
    for id in ["hello", "count", "snap", "swap", "after"] {
        assert!(
            out.contains(&format!("] {id} (")),
            "step {id} missing:\n{out}"
        );
    }
    assert!(
        out.contains("run: ALTER DATABASE \"app__restore_x\" RENAME TO \"app\""),
        "{out}"
    );
    assert!(out.contains("run: pg_dump -Fc"), "{out}");
    assert!(out.contains("run: SELECT count(*) AS n FROM t"), "{out}");
    assert!(
        out.contains("confirm: type 'app'; the answers file types it"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
    assert!(!s.state().exists(), "a dry run wrote state");
    assert_eq!(s.world(), before);

    let (code, out) = s.run(&[
        "--readonly",
        "run",
        "swap-drill.toml",
        "--answers",
        &fixture("swap-drill.toml"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("4 step(s) refused"), "{out}");
    assert_eq!(s.world(), before);
    assert!(
        !StateDir::new(s.state())
            .incident_dir(&StateDir::new(s.state()).list_incidents()[0])
            .join("snapshots")
            .exists()
    );
}

#[test]
fn bad_answers_file_is_a_usage_error_with_location() {
    let s = Setup::new();
    let (code, out) = s.run(&[
        "run",
        "swap-drill.toml",
        "--answers",
        &fixture("bad-key.toml"),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("bad-key.toml:4:2"), "{out}");
    assert!(out.contains("unknown field `confirmations`"), "{out}");
    assert!(!s.state().exists());
}

#[test]
fn kill_9_around_the_swap_leaves_old_or_new_under_the_live_name_never_none() {
    let s = Setup::new();
    let mut child = s
        .cmd(&[
            "run",
            "swap-drill.toml",
            "--answers",
            &fixture("swap-drill.toml"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let jp = loop {
        let ids = StateDir::new(s.state()).list_incidents();
        if let Some(id) = ids.first() {
            let p = StateDir::new(s.state()).journal_path(id);
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if text.contains("\"kind\":\"step-started\",\"step\":\"swap\"") {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "the swap never started");
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = child.kill();
    child.wait().unwrap();
    let id = jp
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let world = s.world();
    let old = vec![
        ("app".to_string(), "1:old,2:old,3:old".to_string()),
        (
            "app__restore_x".to_string(),
            "1:restored,2:restored,3:restored,4:restored,5:restored".to_string(),
        ),
    ];
    let swapped = world.len() == 2
        && world[0] == ("app".to_string(), old[1].1.clone())
        && world[1].0.starts_with("app__damaged_")
        && world[1].1 == old[0].1;
    assert!(
        world == old || swapped,
        "neither the old nor the new state: {world:?}"
    );
    eprintln!(
        "killed {} the swap committed",
        if swapped { "after" } else { "before" }
    );
    // Resume: rerun when the old database is still live, skip when the swap had committed.
    let answers = if swapped {
        "swap-drill-skip.toml"
    } else {
        "swap-drill-rerun.toml"
    };
    let (code, out) = s.run(&[
        "run",
        "swap-drill.toml",
        "--answers",
        &fixture(answers),
        "--resume",
        "--incident",
        &id,
    ]);
    assert_eq!(code, 0, "{out}");
    let world = s.world();
    assert_eq!(world[0].1, old[1].1, "{world:?}");
    assert!(world[1].0.starts_with("app__damaged_"), "{world:?}");
    journal_verifies(&s, &jp);
}

const CHOOSE_DRILL: &str = r#"
id = "choose-drill"
title = "Restore a backup the operator chose among the pick's candidates"
when = "tests"

[[param]]
name = "incident_at"
kind = "time"
from = "ask"

[[step]]
id = "stop"
action = "stop-services"
explain = "nothing writes in this test; prove it"
database = "app"
hold_s = 1

[[step]]
id = "snap"
action = "snapshot"
explain = "keep the damaged state"
database = "app"

[[step]]
id = "pick"
action = "pick-backup"
explain = "the newest intact backup before the incident"
catalog = "nightly"
incident_at = "{incident_at}"

[[step]]
id = "restore"
action = "restore"
explain = "restore beside the live database"
database = "app"
catalog = "nightly"
backup = "{pick.backup.path}"
"#;

/// A real catalog of three custom-format dumps of `app` (3, 5 and 7 rows,
/// a second apart) and a truncated copy, the live table then emptied:
/// `[pick]` chooses the second-newest intact one; the restored copy holds
/// its 5 rows, the restore is held to its SHA-256, the journal says why.
/// An unknown or an excluded name stops the run at the restore with the
/// answers file's file:line:col and the eligible candidates; nothing is
/// restored.
#[test]
fn answers_pick_restores_the_second_newest_backup_held_to_its_hash() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql("app", "CREATE TABLE t (id int PRIMARY KEY, v text)")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let names = [
        "app_20261201_010000.dump",
        "app_20261201_020000.dump",
        "app_20261201_030000.dump",
    ];
    for (i, name) in names.iter().enumerate() {
        let upto = 3 + 2 * i;
        pg.psql(
            "app",
            &format!(
                "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, {upto}) g ON CONFLICT DO NOTHING"
            ),
        )
        .unwrap();
        let o = Command::new(pg.bin("pg_dump"))
            .args(["-Fc", "-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(pg.port().to_string())
            .args(["-d", "app", "-f"])
            .arg(backups.join(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", support::stderr(&o));
        // Dump headers carry whole seconds: one second apart.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let cut = "app_20261201_040000.dump";
    let bytes = std::fs::read(backups.join(names[2])).unwrap();
    std::fs::write(backups.join(cut), &bytes[..bytes.len() / 2]).unwrap();
    pg.psql("app", "DELETE FROM t").unwrap();
    let second = names[1];
    let second_sha = lifeline::journal::sha256_hex(&std::fs::read(backups.join(second)).unwrap());
    std::fs::write(
        dir.path().join("lifeline.toml"),
        format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:{}/app\"\nhost = \"here\"\n\n[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"{}\"\npattern = \"app_%Y%m%d_%H%M%S.dump\"\ndatabase = \"app\"\n",
            pg.port(),
            backups.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("choose-drill.toml"), CHOOSE_DRILL).unwrap();
    // The incident an hour from now: every dump is from before it.
    let incident = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let answers = |name: &str, backup: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "[params]\nincident_at = \"{incident}\"\n\n[confirm]\nrestore = \"app as superuser\"\n\n[pick]\nbackup = \"{backup}\"\nreason = \"the newest ran during the bad deploy\"\n"
            ),
        )
        .unwrap();
        p.display().to_string()
    };
    let run_with = |state: &str, answers: &str, more: &[&str]| {
        let o = support::lifeline(&dir.path().join(state))
            .current_dir(dir.path())
            .env_remove("LIFELINE_RUNBOOKS")
            .args([
                "-i",
                "lifeline.toml",
                "run",
                "choose-drill.toml",
                "--answers",
            ])
            .arg(answers)
            .args(more)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            support::stdout(&o) + &support::stderr(&o),
        )
    };
    let run = |state: &str, answers: &str| run_with(state, answers, &[]);
    let restored = || {
        pg.psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'app\\_\\_restore\\_%' ORDER BY 1",
        )
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };

    // An unknown name, and the truncated copy (a candidate, excluded).
    for (file, backup, why) in [
        (
            "unknown.toml",
            "app_20261130_000000.dump",
            "is not a candidate",
        ),
        ("excluded.toml", cut, "is not eligible: "),
    ] {
        let a = answers(file, backup);
        let (code, out) = run(&format!("state-{file}"), &a);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("answers file {a}:8:10")), "{out}");
        assert!(out.contains(&format!("'{backup}' {why}")), "{out}");
        let eligible = out
            .split("(eligible: ")
            .nth(1)
            .unwrap_or_else(|| panic!("no eligible list: {out}"));
        let eligible = &eligible[..eligible.find(')').unwrap()];
        for n in names {
            assert!(eligible.contains(&format!("'{n}'")), "{eligible}");
        }
        assert!(!eligible.contains(cut), "{eligible}");
        assert!(restored().is_empty(), "nothing restored: {:?}", restored());
    }

    let a = answers("second.toml", second);
    // The dry run says the answers file chooses it.
    let (code, out) = run_with("state-dry", &a, &["--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "[pick]: the restore reads '{second}' instead of the preselection (answers file {a}:8:10)"
        )),
        "{out}"
    );
    let (code, out) = run("state", &a);
    assert_eq!(code, 0, "{out}");
    // The confirmation named the preselection first, then the chosen one.
    assert!(
        out.contains(&format!("backup: {} taken", names[2]))
            && out.contains("preselected by the pick"),
        "{out}"
    );
    assert!(
        out.contains(&format!("backup: {second} taken"))
            && out.contains(&format!("CHOSEN by the operator instead of {}", names[2])),
        "{out}"
    );
    assert!(out.contains("rows lost per table: public.t 2"), "{out}");
    let dbs = restored();
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    assert_eq!(
        pg.psql(&dbs[0], "SELECT count(*) FROM t").unwrap().trim(),
        "5"
    );

    let s = StateDir::new(dir.path().join("state"));
    let ids = s.list_incidents();
    let jp = s.journal_path(&ids[0]);
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let chosen = recs
        .iter()
        .find(|r| r.kind == "backup-chosen")
        .expect("the choice is journaled");
    assert_eq!(chosen.step.as_deref(), Some("pick"));
    assert_eq!(chosen.data["chosen"]["name"], second);
    assert_eq!(chosen.data["chosen"]["sha256"], second_sha.as_str());
    assert_eq!(chosen.data["preselected"]["name"], names[2]);
    assert_eq!(
        chosen.data["reason"],
        "the newest ran during the bad deploy"
    );
    let restore = recs
        .iter()
        .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some("restore"))
        .unwrap();
    assert!(restore.seq > chosen.seq);
    // Held to the chosen backup's hash (an archive is hashed before it is read).
    assert!(
        out.contains(&format!("held to the pick: sha256 {second_sha}")),
        "{out}"
    );

    // Resume keeps the choice: a run that chose and then was not confirmed,
    // resumed with an answers file that only confirms, restores the chosen
    // backup (not the preselection).
    let choose_only = dir.path().join("choose-only.toml");
    std::fs::write(
        &choose_only,
        format!(
            "[params]\nincident_at = \"{incident}\"\n\n[pick]\nbackup = \"{second}\"\nreason = \"the newest ran during the bad deploy\"\n"
        ),
    )
    .unwrap();
    let (code, out) = run("state-resume", choose_only.to_str().unwrap());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not confirmed"), "{out}");
    let before = restored();
    let confirm_only = dir.path().join("confirm-only.toml");
    std::fs::write(
        &confirm_only,
        format!(
            "[params]\nincident_at = \"{incident}\"\n\n[confirm]\nrestore = \"app as superuser\"\n"
        ),
    )
    .unwrap();
    let s = StateDir::new(dir.path().join("state-resume"));
    let id = s.list_incidents().remove(0);
    let (code, out) = run_with(
        "state-resume",
        confirm_only.to_str().unwrap(),
        &["--resume", "--incident", &id],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("backup: {second} taken"))
            && out.contains(&format!("CHOSEN by the operator instead of {}", names[2])),
        "{out}"
    );
    let new: Vec<String> = restored()
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(
        pg.psql(&new[0], "SELECT count(*) FROM t").unwrap().trim(),
        "5"
    );
}
