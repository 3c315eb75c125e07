//! `lifeline console` end to end: the real binary in a private tmux server
//! against a throwaway PostgreSQL (and a throwaway sshd for the hung host),
//! driven with `send-keys`, checked with `capture-pane` at each step:
//! overview, timeline samples, a note and an export from the `:` line, a
//! runbook of our own through its typed confirmation to the swap, a hung
//! host that shows "no answer" while the database keeps updating, `q` and
//! the terminal restored. A planted password never reaches screen, journal,
//! export or log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");
/// Generous: the machine may be busy; polling stops as soon as the text shows.
const DEADLINE: Duration = Duration::from_secs(60);

use crate::support::tmux;
use tmux::Tmux;

/// Starts `cmd` (a shell line) in a fresh tmux server of `w` x `h`.
pub(crate) fn start(name: &str, cmd: &str, w: u16, h: u16) -> Tmux {
    Tmux::start(&format!("lifeline-console-{name}"), cmd, w, h, DEADLINE)
}

/// The console exited with status 0 and the terminal is cooked again.
pub(crate) fn assert_exited_restored(t: &Tmux) -> String {
    let s = t.assert_restored();
    assert!(s.contains("EXITED 0"), "exit status:\n{s}");
    s
}

const RUNBOOK: &str = r#"
id = "console-drill"
title = "Console test: note, count, snapshot, swap"
when = "Only in the console's end-to-end test."

[[param]]
name = "db"
kind = "database"
from = "inventory"
explain = "The database to swap."

[[step]]
id = "brief"
action = "note"
explain = "Start of the console drill."

[[step]]
id = "count"
action = "sql"
explain = "Count the accounts."
database = "{db}"
sql = 'SELECT count(*) AS accounts FROM "Account"'
destructive = false

[[step]]
id = "snapshot"
action = "snapshot"
explain = "Keep the current state before the swap."
database = "{db}"

[[step]]
id = "swap"
action = "swap"
explain = "Swap the prepared copy in; the current one is kept."
database = "{db}"
restored = "shop_copy"
"#;

/// A database `shop` (Account 30 rows, Orders 10) and its copy `shop_copy`
/// (Account 31 rows) to swap in; the role `app` needs a password.
pub(crate) fn prepare(pg: &lifeline::sandbox::PgCluster, password: &str) {
    pg.create_db("shop").unwrap();
    pg.psql(
        "shop",
        &format!(
            "CREATE ROLE app LOGIN PASSWORD '{password}' SUPERUSER;
             CREATE TABLE \"Account\"(id int PRIMARY KEY, email text UNIQUE);
             INSERT INTO \"Account\" SELECT g, 'u' || g || '@x' FROM generate_series(1, 30) g;
             CREATE TABLE \"Orders\"(id int PRIMARY KEY, account int REFERENCES \"Account\"(id));
             INSERT INTO \"Orders\" SELECT g, g FROM generate_series(1, 10) g;"
        ),
    )
    .unwrap();
    pg.psql("postgres", "CREATE DATABASE shop_copy TEMPLATE shop")
        .unwrap();
    // Swap takes only a database whose restore completed (its comment says so).
    pg.psql(
        "shop_copy",
        "INSERT INTO \"Account\" VALUES (31, 'u31@x'); COMMENT ON DATABASE shop_copy IS 'lifeline: restore complete (test fixture)'",
    )
    .unwrap();
    support::require_password(pg, "app");
}

pub(crate) fn inventory(pg: &lifeline::sandbox::PgCluster, extra_hosts: &str) -> String {
    format!(
        "name = \"shop\"\nenv = \"production\"\n\n[[host]]\nname = \"here\"\ntransport = \"local\"\n{extra_hosts}\n[[database]]\nname = \"main\"\nurl = \"postgres://app@127.0.0.1:{}/shop\"\nhost = \"here\"\npassword_env = \"SHOP_PGPASSWORD\"\nsslmode = \"disable\"\nwatch = [\"Account\", \"Orders\"]\nsample_interval_s = 1\n",
        pg.port()
    )
}

pub(crate) fn console_line(dir: &Path, password: &str, extra: &str) -> String {
    format!(
        "cd {d} && env TERM=xterm-256color LANG=C.UTF-8 NO_COLOR= SHOP_PGPASSWORD={password} LIFELINE_RUNBOOKS={d}/runbooks LIFELINE_OPERATOR=oncall {LIFELINE} -i {d}/lifeline.toml --state-dir {d}/state {extra}",
        d = dir.display()
    )
}

pub(crate) fn only_incident(state: &Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn console_against_real_postgres_note_export_runbook_to_swap_and_quit() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("runbooks/console-drill.toml"), RUNBOOK).unwrap();
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "")).unwrap();

    // No subcommand: the console is the default.
    let t = start("e2e", &console_line(dir, &password, ""), 120, 40);

    // Overview: the host and the database with its identity and rows.
    let s = t.wait("the database sampled", |s| {
        s.contains("here") && s.contains("healthy") && s.contains("40 rows")
    });
    assert!(s.contains("LIVE") && s.contains("PRODUCTION"), "{s}");
    assert!(s.contains(&format!("127.0.0.1:{}/shop", pg.port())), "{s}");
    assert!(s.contains("oncall"), "{s}");
    assert!(!s.contains(&password), "password on screen:\n{s}");

    // Timeline: samples of the watched tables.
    t.keys(&["3"]);
    let s = t.wait("timeline rows", |s| {
        s.contains("Account") && s.contains("Orders") && s.contains("30")
    });
    assert!(s.contains("sampled"), "{s}");

    // A note from the command line lands in the journal (redacted).
    t.command(&format!("note checked the dashboard, pw {password}"));
    t.wait_for("note journaled");
    let state = dir.join("state");
    let inc = only_incident(&state);
    let journal = std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();
    assert!(journal.contains("checked the dashboard"), "{journal}");
    assert!(!journal.contains(&password), "password in the journal");
    t.keys(&["5"]);
    t.wait_for("checked the dashboard");

    // Export as Markdown: the path is on the status line, the file exists.
    t.command("export md");
    let s = t.wait_for("export written to");
    let exports: Vec<_> = std::fs::read_dir(&inc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    assert_eq!(exports.len(), 1, "{s}");
    let md = std::fs::read_to_string(&exports[0]).unwrap();
    assert!(md.contains("checked the dashboard"), "{md}");
    assert!(!md.contains(&password), "password in the export");

    // Our runbook: note, sql, snapshot run; the swap asks for the name.
    t.command("runbook console-drill");
    t.wait("the swap confirmation", |s| {
        s.contains("swap") && s.contains("type 'shop'")
    });
    // Put aside, the Output behind it reads; Enter brings it back.
    t.keys(&["Escape"]);
    let s = t.wait("the confirmation put aside", |s| {
        !s.contains("(case matters)")
    });
    assert!(s.contains("accounts=30"), "the sql step's output:\n{s}");
    t.keys(&["Enter"]);
    t.wait_for("(case matters)");
    let journal = std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();
    for step in ["brief", "count", "snapshot"] {
        assert!(
            journal.contains(&format!("\"kind\":\"step-finished\",\"step\":\"{step}\"")),
            "{step} not finished:\n{journal}"
        );
    }
    // A wrong name is refused on screen; nothing happens.
    t.text("SHOP");
    t.keys(&["Enter"]);
    let s = t.wait("the mismatch", |s| {
        s.contains("type 'shop'") && s.contains("SHOP")
    });
    assert!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'shop_copy'"
        )
        .unwrap()
        .contains('1'),
        "{s}"
    );
    t.text("shop");
    t.keys(&["Enter"]);
    let s = t.wait_for("runbook finished: every step done");
    assert!(!s.contains(&password), "{s}");
    let dbs = pg
        .psql(
            "postgres",
            "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database",
        )
        .unwrap();
    assert!(dbs.contains("shop__damaged_"), "{dbs}");
    assert!(!dbs.contains("shop_copy"), "{dbs}");
    assert_eq!(
        pg.psql("shop", "SELECT count(*) FROM \"Account\"")
            .unwrap()
            .trim(),
        "31"
    );
    let journal = std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();
    for k in ["run-started", "step-finished", "confirmed", "run-finished"] {
        assert!(journal.contains(k), "{k} missing:\n{journal}");
    }
    assert!(!journal.contains(&password));

    // q quits (no step running) and the terminal is restored.
    t.keys(&["q"]);
    assert_exited_restored(&t);
    let log = std::fs::read_to_string(inc.join("lifeline.log")).unwrap_or_default();
    assert!(!log.contains(&password), "password in the log");
    let v = support::lifeline(&state)
        .args(["journal", "verify"])
        .arg(inc.join("journal.jsonl"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", support::stdout(&v));
}

/// The pids of the sshd serving `dir`.
fn sshd_pids(dir: &Path) -> Vec<String> {
    let pid = std::fs::read_to_string(dir.join("sshd.pid")).unwrap_or_default();
    pid.split_whitespace().map(str::to_string).collect()
}

#[test]
fn a_hung_host_shows_no_answer_in_its_row_while_the_database_updates_and_keys_answer() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let sshd = support::sshd();
    let known = sshd.write_known_hosts().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let hung = format!(
        "\n[[host]]\nname = \"stuck\"\naddress = \"127.0.0.1:{}\"\nuser = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\nconnect_timeout_s = 120\n",
        sshd.port(),
        sshd.user(),
        sshd.user_key().display(),
        known.display()
    );
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, &hung)).unwrap();
    // The server accepts TCP (the kernel does) but never answers: hung.
    let pids = sshd_pids(sshd.dir());
    assert!(!pids.is_empty(), "no sshd pid file");
    for p in &pids {
        assert!(
            Command::new("kill")
                .args(["-STOP", p])
                .status()
                .unwrap()
                .success()
        );
    }
    let t = start(
        "hung",
        &console_line(dir, &password, "console --probe-timeout 100"),
        120,
        40,
    );
    let s = t.wait("the hung host's row", |s| {
        s.contains("stuck") && s.contains("no answer for")
    });
    assert!(s.contains("healthy"), "{s}");
    // The database keeps being sampled while the host hangs.
    let count_before = pg.psql("shop", "SELECT count(*) FROM \"Orders\"").unwrap();
    assert_eq!(count_before.trim(), "10");
    pg.psql(
        "shop",
        "INSERT INTO \"Orders\" SELECT g, 1 FROM generate_series(11, 15) g",
    )
    .unwrap();
    let s = t.wait("the new rows while the host hangs", |s| {
        s.contains("45 rows") && s.contains("no answer for")
    });
    assert!(s.contains("here"), "{s}");
    // Keys answer: switch views and back.
    t.keys(&["3"]);
    t.wait("timeline", |s| s.contains("Orders") && s.contains("15"));
    t.keys(&["1"]);
    let s = t.wait("the overview again", |s| {
        s.contains("stuck") && s.contains("no answer for")
    });
    assert!(!s.contains(&password));
    t.keys(&["q"]);
    assert_exited_restored(&t);
    for p in &pids {
        let _ = Command::new("kill").args(["-CONT", p]).status();
    }
}

#[test]
fn a_runbook_in_flight_when_the_console_died_is_shown_and_resumed_with_incident() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("runbooks/console-drill.toml"), RUNBOOK).unwrap();
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "")).unwrap();
    let t = start("died", &console_line(dir, &password, "console"), 120, 40);
    t.wait_for("healthy");
    t.command("runbook console-drill");
    t.wait("the swap confirmation", |s| s.contains("type 'shop'"));
    // The console dies (kill -9): no clean end is journaled.
    let state = dir.join("state");
    let o = Command::new("pgrep")
        .args([
            "-f",
            &format!("^{LIFELINE} .*--state-dir {}", state.display()),
        ])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!pids.trim().is_empty());
    for p in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", p]).status();
    }
    t.wait("the dead console", |s| s.contains("EXITED"));
    drop(t);
    let inc = only_incident(&state);
    let id = inc.file_name().unwrap().to_string_lossy().into_owned();
    let journal = std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();
    assert!(!journal.contains("run-finished"), "{journal}");

    // Re-opened: the run is shown as it was, and resumes to the swap.
    let t = start(
        "resumed",
        &console_line(dir, &password, &format!("console --incident {id}")),
        120,
        40,
    );
    t.wait_for("was in flight");
    t.keys(&["4"]);
    let s = t.wait("the steps as the journal left them", |s| {
        s.contains("console-drill") && s.contains("done") && s.contains("pending")
    });
    assert!(s.contains(&id), "{s}");
    t.command("runbook console-drill");
    t.wait("the swap confirmation again", |s| s.contains("type 'shop'"));
    t.text("shop");
    t.keys(&["Enter"]);
    t.wait_for("runbook finished: every step done");
    let dbs = pg
        .psql(
            "postgres",
            "SELECT string_agg(datname, ',') FROM pg_database",
        )
        .unwrap();
    assert!(
        dbs.contains("shop__damaged_") && !dbs.contains("shop_copy"),
        "{dbs}"
    );
    let journal = std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"resumed\":true"), "{journal}");
    // The snapshot taken before the crash counts: it is not taken twice.
    assert_eq!(
        journal
            .matches("\"kind\":\"step-finished\",\"step\":\"snapshot\"")
            .count(),
        1,
        "{journal}"
    );
    t.keys(&["q"]);
    assert_exited_restored(&t);
}

/// Hostile names and planted secrets through the real console: a table
/// whose name carries ESC, a process whose cmdline carries a password, a
/// note with a secret assignment. The screen shows the escape visibly and
/// no secret; journal, samples and log hold no secret; every file the
/// console wrote is 0600 in 0700 directories.
#[test]
fn console_shows_escapes_visibly_and_no_planted_secret_anywhere() {
    use std::os::unix::fs::PermissionsExt;
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    pg.psql(
        "shop",
        "CREATE TABLE \"evil\x1b[2Jtable\" (id int PRIMARY KEY); INSERT INTO \"evil\x1b[2Jtable\" SELECT generate_series(1, 7); ANALYZE",
    )
    .unwrap();
    let marker = format!("lifeline-console-leak-{}", std::process::id());
    let _proc = support::KillGroup({
        use std::os::unix::process::CommandExt;
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "exec -a '{marker} PGPASSWORD=PlantedConsolePw1 pg_dump --clean shop' sleep 300"
            ))
            .process_group(0)
            .spawn()
            .unwrap()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let svc = format!(
        "\n[[service]]\nname = \"leaky\"\nhost = \"here\"\nkind = \"process\"\nmatch = \"{marker}\"\ndatabases = [\"main\"]\n"
    );
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "") + &svc).unwrap();
    let t = start(
        "leaks",
        &format!("umask 000; {}", console_line(dir, &password, "")),
        160,
        48,
    );
    t.wait("the database sampled", |s| s.contains("healthy"));
    let secrets = ["PlantedConsolePw1", "PlantedConsolePw2", password.as_str()];
    let clean = |s: &str| {
        for x in secrets {
            assert!(!s.contains(x), "secret on screen:\n{s}");
        }
    };
    t.keys(&["3"]);
    let s = t.wait("the hostile table, escaped", |s| s.contains("evil\\x1b[2J"));
    clean(&s);
    t.keys(&["2"]);
    let s = t.wait("the process service", |s| s.contains("leaky"));
    clean(&s);
    t.command("note DB_PASSWORD=PlantedConsolePw2 rotated by hand");
    let s = t.wait_for("note journaled");
    clean(&s);
    t.keys(&["q"]);
    assert_exited_restored(&t);

    let state = dir.join("state");
    let inc = only_incident(&state);
    for f in ["journal.jsonl", "samples.jsonl", "lifeline.log"] {
        let text = std::fs::read_to_string(inc.join(f)).unwrap_or_default();
        for x in secrets {
            assert!(!text.contains(x), "secret in {f}");
        }
    }
    let journal = std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();
    assert!(
        journal.contains("DB_PASSWORD=*** rotated by hand"),
        "{journal}"
    );
    // umask 000, yet everything under the state directory is private.
    let mut stack = vec![state.clone()];
    let mut n = 0;
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let mode = m.permissions().mode() & 0o777;
        if m.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 3, "journal, samples, log at least");
}

/// The watched database is dropped under the running console: one
/// `database-missing` alert is journaled however many rounds fail, the
/// header shows it, `a` acknowledges it (journaled) and the header says so.
#[test]
fn a_dropped_database_alerts_once_in_the_header_and_a_acknowledges_it() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "")).unwrap();
    let t = start("alert-ack", &console_line(dir, &password, ""), 160, 48);
    t.wait("the database sampled", |s| {
        s.contains("healthy") && s.contains("40 rows")
    });

    pg.psql("postgres", "DROP DATABASE shop WITH (FORCE)")
        .unwrap();
    let s = t.wait("the alert in the header", |s| {
        s.lines().next().is_some_and(|h| h.contains("1 alert"))
    });
    let head = s.lines().next().unwrap();
    assert!(head.contains("a: acknowledge"), "{s}");
    assert!(s.contains("MISSING"), "{s}");
    // Several more rounds (1 s interval) fail: still one alert.
    std::thread::sleep(Duration::from_secs(4));
    let s = t.capture();
    assert!(s.lines().next().unwrap().contains("1 alert"), "{s}");

    t.keys(&["a"]);
    let s = t.wait("acknowledged in the header", |s| {
        s.lines()
            .next()
            .is_some_and(|h| h.contains("1 alert acknowledged"))
    });
    assert!(!s.lines().next().unwrap().contains('▲'), "{s}");

    let state = dir.join("state");
    let inc = only_incident(&state);
    let recs = lifeline::journal::read_records(&inc.join("journal.jsonl")).unwrap();
    let missing: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == "alert" && r.data["rule"] == "database-missing")
        .collect();
    assert_eq!(missing.len(), 1, "{recs:?}");
    let acks: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == "alert-acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "{recs:?}");
    assert_eq!(acks[0].operator, "oncall");
    assert_eq!(acks[0].data["upto_seq"], missing[0].seq);

    t.keys(&["q"]);
    assert_exited_restored(&t);
}

/// `r` on the failed step in the real console (issue 19): the run stopped
/// at `act`; the cause fixed, `r` runs `act` again and then `last`, and the
/// journal has the `confirmed` rerun record.
#[test]
fn r_retries_a_failed_step_in_the_console() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let marker = dir.join("marker");
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let step = |id: &str, cmd: &str| {
        format!(
            "[[step]]\nid = \"{id}\"\naction = \"command\"\nexplain = \"e\"\nhost = \"here\"\ndestructive = false\ntimeout_s = 10\ncommand = '''{cmd}'''\n"
        )
    };
    std::fs::write(
        dir.join("runbooks/retry-drill.toml"),
        format!(
            "id = \"retry-drill\"\ntitle = \"Retry drill\"\nwhen = \"w\"\n{}{}{}",
            step("first", "true"),
            step("act", &format!("test -e {}", marker.display())),
            step("last", "true")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "")).unwrap();
    let t = start("retry", &console_line(dir, &password, ""), 160, 48);
    t.wait("the database sampled", |s| s.contains("healthy"));
    t.command("runbook retry-drill");
    t.wait_for("FAILED");
    let inc = only_incident(&dir.join("state"));
    let jp = inc.join("journal.jsonl");
    t.wait("the run finished", |_| {
        lifeline::journal::read_records(&jp)
            .unwrap()
            .iter()
            .any(|r| r.kind == "run-finished")
    });
    std::fs::write(&marker, b"").unwrap();
    t.keys(&["4", "g", "j", "r"]);
    t.wait("the retried run finished", |_| {
        lifeline::journal::read_records(&jp)
            .unwrap()
            .iter()
            .filter(|r| r.kind == "run-finished")
            .count()
            == 2
    });
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let rerun: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == "confirmed" && r.data["decision"] == "rerun")
        .collect();
    assert_eq!(rerun.len(), 1, "{recs:?}");
    assert_eq!(rerun[0].step.as_deref(), Some("act"));
    assert_eq!(rerun[0].operator, "oncall");
    let last = recs
        .iter()
        .rev()
        .find(|r| r.kind == "run-finished")
        .unwrap();
    assert_eq!(last.data["code"], 0, "{last:?}");
    let finished: Vec<_> = recs
        .iter()
        .filter(|r| r.kind == "step-finished")
        .filter_map(|r| r.step.as_deref())
        .collect();
    assert_eq!(finished, ["first", "act", "last"]);
    t.keys(&["q"]);
    assert_exited_restored(&t);
}

/// Look-alike databases in the real console (issue 19): `SHOP` (case) and
/// `sh0p` (digit 0) beside the watched `shop` on the same server are listed
/// in the databases panel and the header warns.
#[test]
fn look_alike_databases_show_in_the_databases_panel_and_the_header() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    pg.create_db("SHOP").unwrap();
    pg.create_db("sh0p").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "")).unwrap();
    let t = start("lookalike", &console_line(dir, &password, ""), 160, 48);
    let s = t.wait("the look-alikes listed", |s| {
        s.contains("LOOK-ALIKE on this server: 'SHOP' (case)")
            && s.contains("LOOK-ALIKE on this server: 'sh0p' (confusable)")
    });
    let head = s.lines().next().unwrap();
    assert!(head.contains("2 look-alikes"), "{s}");
    t.keys(&["q"]);
    assert_exited_restored(&t);
}

/// The stop plan in the real console: `:runbook` reaches stop-services,
/// the checklist pops up before anything is frozen with both copies of a
/// job (target unclear, told apart by pid), space ticks the one under the
/// cursor, Enter and y confirm: exactly that pid is stopped, the other
/// keeps running, the journal's plan names the operator's edit.
#[test]
fn the_stop_plan_checklist_picks_one_of_two_unclear_jobs() {
    use std::os::unix::process::CommandExt;
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let script = dir.join("job.sh");
    std::fs::write(&script, "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    let jobs: Vec<support::KillGroup> = (0..2)
        .map(|_| {
            support::KillGroup(
                Command::new("/bin/sh")
                    .arg(&script)
                    .process_group(0)
                    .stdin(std::process::Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let pids: Vec<u32> = jobs.iter().map(|j| j.0.id()).collect();
    // Matched by this test's own path only (other runs on this machine have jobs too).
    let service = format!(
        "\n[[service]]\nname = \"job\"\nhost = \"here\"\nkind = \"process\"\nmatch = '{}'\ndatabases = [\"main\"]\n",
        regex::escape(&script.display().to_string())
    );
    std::fs::write(
        dir.join("lifeline.toml"),
        format!("{}{service}", inventory(&pg, "")),
    )
    .unwrap();
    std::fs::write(
        dir.join("runbooks/stop-only.toml"),
        "id = \"stop-only\"\ntitle = \"Stop the writers of main\"\nwhen = \"Only in this test.\"\n\n[[step]]\nid = \"stop\"\naction = \"stop-services\"\nexplain = \"Stop every writer of main, hold.\"\ndatabase = \"main\"\nhold_s = 2\n",
    )
    .unwrap();
    let t = start("stop-plan", &console_line(dir, &password, ""), 120, 40);
    t.wait("the database sampled", |s| s.contains("healthy"));
    t.command("runbook stop-only");
    let s = t.wait("the checklist", |s| {
        s.contains("Stop plan") && pids.iter().all(|p| s.contains(&format!("pid:{p}")))
    });
    assert!(s.contains("target unclear"), "{s}");
    let state = dir.join("state");
    let journal = || std::fs::read_to_string(only_incident(&state).join("journal.jsonl")).unwrap();
    assert!(
        !journal().contains("\"kind\":\"frozen\""),
        "frozen before the plan was confirmed"
    );
    // Move the cursor to the first job row, tick it.
    let mut picked = None;
    for _ in 0..40 {
        let s = t.capture();
        let cur = s
            .lines()
            .find(|l| l.contains("▶ ["))
            .unwrap_or("")
            .to_string();
        if let Some(p) = pids.iter().find(|p| cur.contains(&format!("pid:{p}"))) {
            picked = Some(*p);
            break;
        }
        t.keys(&["j"]);
        std::thread::sleep(Duration::from_millis(150));
    }
    let picked = picked.expect("no job row reached with the cursor");
    let other = *pids.iter().find(|p| **p != picked).unwrap();
    t.keys(&["Space"]);
    t.wait("ticked", |s| {
        s.lines().any(|l| {
            l.contains("[x]") && l.contains(&format!("pid:{picked}")) && l.contains("edited")
        })
    });
    t.keys(&["Enter"]);
    t.wait_for("change(s) to the plan");
    t.keys(&["y"]);
    t.wait_for("runbook finished");
    let gone = |p: u32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| s.contains(") Z") || s.contains(") X"))
            .unwrap_or(true)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !gone(picked) {
        assert!(
            std::time::Instant::now() < deadline,
            "the ticked job still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!gone(other), "the job left unticked was stopped");
    let j = journal();
    assert!(
        j.contains(&format!(
            "added by the operator in the console ([stop_plan] add 'pid:{picked}')"
        )),
        "{j}"
    );
    t.keys(&["q"]);
    assert_exited_restored(&t);
}

/// Issue 19: a runbook is never started blind. `:plan NAME` (and Enter on
/// the list) shows every step as the engine resolves it against the real
/// inventory, what each touches and runs and which ask for a typed name;
/// nothing is journaled or run while the plan is open, Enter there does
/// not start it, Esc closes it; `s` starts it. The swap's typed
/// confirmation then says which rows it would discard (live rows the
/// restored copy lacks), before the name is typed.
#[test]
fn the_plan_is_shown_before_a_runbook_starts_and_s_starts_it() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("runbooks/console-drill.toml"), RUNBOOK).unwrap();
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "")).unwrap();
    let t = start("plan", &console_line(dir, &password, "console"), 120, 40);
    t.wait_for("healthy");
    let state = dir.join("state");
    let inc = only_incident(&state);
    let journal_now = || std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();

    t.command("plan console-drill");
    let s = t.wait("the plan", |s| {
        s.contains("Plan: console-drill (nothing has run)") && s.contains("4 step(s)")
    });
    assert!(s.contains("on database 'main'"), "{s}");
    assert!(s.contains("reads only, no confirmation"), "{s}");
    assert!(
        s.contains("runs $ SELECT count(*) AS accounts FROM \"Account\""),
        "the sql step's exact statement:\n{s}"
    );
    assert!(s.contains(&format!("127.0.0.1:{}/shop", pg.port())), "{s}");
    // Scroll to the swap: its renames and the name it will ask for.
    t.keys(&["C-d", "C-d"]);
    let s = t.wait("the swap in the plan", |s| {
        s.contains("RENAME TO") && s.contains("asks you to type 'shop' first")
    });
    assert!(!s.contains(&password), "{s}");
    // Enter in the plan does not start it; nothing ran, nothing journaled.
    t.keys(&["Enter"]);
    t.wait_for("press s to start it");
    std::thread::sleep(Duration::from_millis(500));
    let j = journal_now();
    assert!(!j.contains("run-started"), "started without s:\n{j}");
    // Esc closes it; still nothing started.
    t.keys(&["Escape"]);
    t.wait("the plan closed", |s| !s.contains("nothing has run"));
    assert!(!journal_now().contains("run-started"));

    // Orders written after the copy was made: the swap would discard them.
    pg.psql(
        "shop",
        "INSERT INTO \"Orders\" SELECT g, g - 10 FROM generate_series(11, 15) g",
    )
    .unwrap();
    // Opened again, s starts it: the run goes to the swap's typed name, and
    // the confirmation says what the swap throws away before the name is typed.
    t.command("plan console-drill");
    t.wait_for("4 step(s)");
    t.keys(&["s"]);
    let s = t.wait("the swap confirmation with its discards", |s| {
        s.contains("type 'shop'") && s.contains("What this will do:")
    });
    assert!(s.contains("THE SWAP WOULD DISCARD"), "{s}");
    assert!(s.contains("Orders: 5 row(s)"), "{s}");
    let j = journal_now();
    assert_eq!(j.matches("\"kind\":\"run-started\"").count(), 1, "{j}");
    t.text("shop");
    t.keys(&["Enter"]);
    t.wait_for("runbook finished: every step done");
    t.keys(&["q"]);
    assert_exited_restored(&t);
}

const PICK_RUNBOOK: &str = r#"
id = "pick-only"
title = "Console test: judge the backups"
when = "Only in the console's end-to-end test."

[[param]]
name = "catalog"
kind = "catalog"
from = "inventory"
explain = "The backup catalog."

[[step]]
id = "pick"
action = "pick-backup"
explain = "Judge every backup against the incident time."
catalog = "{catalog}"
incident_at = "INCIDENT_AT"
"#;

/// Issue 19: the backup panel of a real pick. A real catalog on the local
/// host holds a dump from before the incident and one named after it; the
/// pick runs in the console; Enter on the finished pick step shows both
/// candidates, the chosen one with its loss in human units and where its
/// time came from, the other with its exclusion reason in full.
#[test]
fn enter_on_a_finished_pick_shows_every_candidate_with_its_reason() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    // The incident an hour from now: both dumps are from before it (their
    // header time counts, not their names).
    let incident = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    std::fs::write(
        dir.join("runbooks/pick-only.toml"),
        PICK_RUNBOOK.replace("INCIDENT_AT", &incident),
    )
    .unwrap();
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    for name in ["shop_20261201_010000.dump", "shop_20261206_120000.dump"] {
        let o = Command::new(pg.bin("pg_dump"))
            .args(["-Fc", "-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(pg.port().to_string())
            .args(["-d", "shop", "-f"])
            .arg(backups.join(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // The newer one is cut in half: truncated, excluded.
    let newer = backups.join("shop_20261206_120000.dump");
    let bytes = std::fs::read(&newer).unwrap();
    std::fs::write(&newer, &bytes[..bytes.len() / 2]).unwrap();
    let catalog = format!(
        "[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"{}\"\npattern = \"shop_%Y%m%d_%H%M%S.dump\"\ndatabase = \"main\"\n",
        backups.display()
    );
    std::fs::write(
        dir.join("lifeline.toml"),
        format!("{}\n{catalog}", inventory(&pg, "")),
    )
    .unwrap();
    let t = start("backups", &console_line(dir, &password, "console"), 120, 40);
    t.wait_for("healthy");
    t.command("runbook pick-only");
    t.wait_for("runbook finished");
    t.keys(&["4"]);
    t.keys(&["g", "Enter"]);
    let s = t.wait("the backup panel", |s| {
        s.contains("Backups: the candidates of the last pick") && s.contains("2 candidate(s)")
    });
    assert!(s.contains("chosen shop_20261201_010000.dump"), "{s}");
    assert!(s.contains("(from its dump header)"), "{s}");
    assert!(
        s.contains("loses 1 h 00 min of changes") || s.contains("loses 59 min of changes"),
        "{s}"
    );
    assert!(s.contains("excluded shop_20261206_120000.dump"), "{s}");
    assert!(s.contains("why: "), "{s}");
    t.keys(&["Escape"]);
    t.wait("the panel closed", |s| {
        !s.contains("candidates of the last pick")
    });
    t.keys(&["q"]);
    assert_exited_restored(&t);
}

/// Issue 19, in the real console: `p` holds the numbers (the sample age
/// grows while paused, events reach the model through `update`), and `X` at
/// a typed confirmation ends the run journaled as `aborted`, not as "not
/// confirmed"; nothing is swapped.
#[test]
fn p_holds_the_numbers_and_x_at_a_confirmation_is_journaled_as_an_abort() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(dir.join("runbooks/console-drill.toml"), RUNBOOK).unwrap();
    std::fs::write(dir.join("lifeline.toml"), inventory(&pg, "")).unwrap();
    let t = start("abort", &console_line(dir, &password, "console"), 120, 40);
    t.wait_for("healthy");
    let age = |s: &str| -> Option<u64> {
        regex::Regex::new(r"sampled (\d+) s ago")
            .unwrap()
            .captures(s)
            .map(|c| c[1].parse().unwrap())
    };
    // Samples every second: paused, the last one ages; resumed, fresh again.
    t.keys(&["p"]);
    let s = t.wait("the age of a held sample", |s| {
        s.contains("PAUSED") && age(s).is_some_and(|a| a >= 4)
    });
    assert!(s.contains("PAUSED"), "{s}");
    t.keys(&["p"]);
    t.wait("fresh samples again", |s| {
        !s.contains("PAUSED") && age(s).is_some_and(|a| a <= 2)
    });

    t.command("runbook console-drill");
    t.wait("the swap's typed confirmation", |s| {
        s.contains("type 'shop'")
    });
    t.keys(&["Escape"]);
    t.wait("the confirmation put aside", |s| {
        !s.contains("Type the database name")
    });
    t.keys(&["4", "X"]);
    t.wait_for("Abort runbook?");
    t.keys(&["y"]);
    t.wait_for("runbook finished");
    let inc = only_incident(&dir.join("state"));
    let journal = std::fs::read_to_string(inc.join("journal.jsonl")).unwrap();
    let failed = journal
        .lines()
        .find(|l| l.contains("\"kind\":\"step-failed\""))
        .unwrap_or_else(|| panic!("no step-failed:\n{journal}"));
    assert!(failed.contains("\"class\":\"aborted\""), "{failed}");
    assert!(failed.contains("aborted by the operator"), "{failed}");
    assert!(!failed.contains("not confirmed"), "{failed}");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'shop_copy'"
        )
        .unwrap(),
        "1",
        "nothing was swapped"
    );
    t.keys(&["q"]);
    assert_exited_restored(&t);
}
