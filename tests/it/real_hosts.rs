//! The host actions of `RealActions` with real parts: a real OpenSSH sshd
//! on loopback (the host "box"), a real PostgreSQL cluster (the database
//! "app"), real cron files under a private cron root, real processes.
//! stop-services and its hold, start-services, command over SSH, and a
//! headless `lifeline run` checked through its journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeline::actions::RealActions;
use lifeline::engine::actions::{Actions, Output};
use lifeline::engine::types::*;
use lifeline::inventory::Inventory;
use lifeline::probe::ProbeOptions;
use lifeline::redact::Redactor;
use support::{KillGroup, PgCluster, Sshd};

/// One test's world: sshd, cluster, a directory with scripts and a cron root.
struct World {
    sshd: Sshd,
    pg: PgCluster,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World {
            sshd: support::sshd(),
            pg: support::pg(),
            dir: tempfile::Builder::new()
                .prefix("lifeline-hosts-")
                .tempdir()
                .unwrap(),
        };
        std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        w.pg.create_db("app").unwrap();
        w.pg.psql("app", "CREATE TABLE t(id int)").unwrap();
        std::fs::create_dir_all(w.path("etc/cron.d")).unwrap();
        std::fs::create_dir_all(w.path("run")).unwrap();
        w
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn psql_line(&self, sql: &str) -> String {
        format!(
            "{} -X -q -h 127.0.0.1 -p {} -U postgres -d app -c '{sql}'",
            self.pg.bin("psql").display(),
            self.pg.port()
        )
    }

    /// A writer script: records its pid, inserts a row every 0.3 s.
    fn writer_script(&self, secret: &str) -> PathBuf {
        let p = self.path("writer.sh");
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho $$ > {pf}\nwhile :; do\n  PGPASSWORD={secret} {psql} >/dev/null 2>&1\n  sleep 0.3\ndone\n",
                pf = self.path("run/writer.pid").display(),
                psql = self.psql_line("INSERT INTO t VALUES (1)"),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn writer_start(&self) -> String {
        format!(
            "setsid -f /bin/sh {} >/dev/null 2>&1 < /dev/null",
            self.path("writer.sh").display()
        )
    }

    fn inventory_text(&self, services: &str) -> String {
        self.inventory_text_with(services, "")
    }

    /// The inventory, with `db_extra` lines in the database's table.
    fn inventory_text_with(&self, services: &str, db_extra: &str) -> String {
        format!(
            r#"
[[host]]
name = "box"
address = "127.0.0.1:{port}"
user = "{user}"
identity = "{key}"
known_hosts = "{kh}"

[[database]]
name = "app"
url = "postgres://postgres@127.0.0.1:{pgport}/app"
host = "box"
sslmode = "disable"
{db_extra}
{services}
"#,
            port = self.sshd.port(),
            user = self.sshd.user(),
            key = self.sshd.user_key().display(),
            kh = self.sshd.write_known_hosts().unwrap().display(),
            pgport = self.pg.port(),
        )
    }

    fn options(&self) -> ProbeOptions {
        ProbeOptions {
            cron_root: self.path("etc").display().to_string(),
            user_crontabs: false,
            kept_dir: self.path("kept").display().to_string(),
            ..Default::default()
        }
    }

    fn actions(&self, inv: &Inventory) -> RealActions {
        let r = Redactor::new();
        inv.register_secrets(&r);
        RealActions::new(inv.clone(), r).with_probe_options(self.options())
    }

    fn rows(&self) -> i64 {
        self.pg
            .psql("app", "SELECT count(*) FROM t")
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|st| st != "Z" && st != "X")
}

fn pid_in(f: &Path) -> Option<u32> {
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}

/// Polls `f` every 100 ms until it holds; fails after `secs`.
fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills the process group led by the pid in `pidfile` on drop.
struct KillPidfile(PathBuf);

/// True when `pid` runs a command naming `dir` (pids are reused quickly on
/// a busy machine: a stale pid may be a bystander's by now).
fn runs_from(pid: u32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
        .unwrap_or(false)
}

impl Drop for KillPidfile {
    fn drop(&mut self) {
        let world = self
            .0
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/nonexistent"));
        if let Some(pid) = pid_in(&self.0).filter(|p| runs_from(*p, world)) {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pid}"), &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn host(inv: &Inventory, name: &str) -> HostTarget {
    HostTarget {
        name: name.into(),
        spec: inv.host(name).unwrap().clone(),
    }
}

fn db(inv: &Inventory, name: &str) -> DbTarget {
    let spec = inv.database(name).unwrap().clone();
    DbTarget {
        name: name.into(),
        url: spec.pg_url().unwrap().clone(),
        spec,
    }
}

/// Output lines of an action, collected.
fn output() -> (
    Output,
    tokio::sync::broadcast::Receiver<lifeline::engine::events::EngineEvent>,
) {
    let (tx, rx) = tokio::sync::broadcast::channel(4096);
    (Output::new(tx, 0, "t", Redactor::new()), rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_lines_are_commented_with_the_original_kept_and_hazards_stay_off() {
    let w = World::new();
    let cron = w.path("etc/cron.d/app_jobs");
    let original = format!(
        "# app jobs\n*/5 * * * * root {}\n0 3 * * * root {}\n",
        w.psql_line("INSERT INTO t VALUES (2)"),
        w.psql_line("TRUNCATE t"),
    );
    std::fs::write(&cron, &original).unwrap();
    let inv = support::inventory(&w.inventory_text(""));
    let a = w.actions(&inv);
    let (out, _rx) = output();

    let o = a
        .stop_services(
            &StopRequest {
                database: Some(db(&inv, "app")),
                hosts: vec![host(&inv, "box")],
                services: vec![],
                hold_s: 3,
            },
            &out,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", out.kept().join("\n")));
    assert!(o.hold_passed(), "{o:#?}\n{}", out.kept().join("\n"));
    let names: Vec<&str> = o.stopped.iter().map(|s| s.name.as_str()).collect();
    let line2 = format!("{}:2", cron.display());
    let line3 = format!("{}:3", cron.display());
    assert_eq!(names, [line2.as_str(), line3.as_str()], "{o:#?}");
    let truncate = o.stopped.iter().find(|s| s.name == line3).unwrap();
    assert!(truncate.hazard, "TRUNCATE is a hazard: {truncate:#?}");
    assert!(!o.stopped[0].hazard);
    // The original is kept in the private kept-copy directory (0700) under
    // an unpredictable name (0600), its inode and SHA-256 journaled; the
    // lines are commented.
    let kept = o.stopped[0].original_kept.clone().unwrap();
    assert!(
        kept.starts_with(&format!(
            "{}/cron-app_jobs.lifeline-",
            w.path("kept").display()
        )),
        "{kept}"
    );
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), original);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(Path::new(&kept)), 0o600);
    assert_eq!(mode(&w.path("kept")), 0o700);
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            o.stopped[0].kept_inode,
            Some(std::fs::metadata(&kept).unwrap().ino())
        );
    }
    assert_eq!(o.stopped[0].kept_sha256.as_ref().map(String::len), Some(64));
    let now = std::fs::read_to_string(&cron).unwrap();
    let lines: Vec<&str> = now.lines().collect();
    assert_eq!(lines[0], "# app jobs");
    assert!(
        lines[1].starts_with("# lifeline-off ") && lines[1].ends_with("INSERT INTO t VALUES (2)'")
    );
    assert!(lines[2].starts_with("# lifeline-off ") && lines[2].contains("TRUNCATE t"));
    // Every command run was streamed.
    let text = out.kept().join("\n");
    assert!(text.contains(&o.stopped[0].commands[0]), "{text}");

    // Start: the INSERT line comes back, the TRUNCATE line (a hazard) stays off.
    let (out, _rx) = output();
    let s = a
        .start_services(
            &StartRequest {
                database: Some(db(&inv, "app")),
                stopped: o.stopped.clone(),
                picked: vec![],
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(s.started, [line2.as_str()], "{s:#?}");
    assert_eq!(s.kept_off.len(), 1);
    assert_eq!(s.kept_off[0].name, line3);
    assert!(s.kept_off[0].reason.contains("hazard"));
    let now = std::fs::read_to_string(&cron).unwrap();
    let lines: Vec<&str> = now.lines().collect();
    assert_eq!(lines[1], original.lines().nth(1).unwrap());
    assert!(lines[2].starts_with("# lifeline-off "));
    assert!(
        Path::new(&kept).exists(),
        "the kept original is never removed"
    );

    // Picking the hazard brings the file back to the original, byte for byte.
    let (out, _rx) = output();
    let s = a
        .start_services(
            &StartRequest {
                database: Some(db(&inv, "app")),
                stopped: vec![truncate.clone()],
                picked: vec![line3.clone()],
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(s.started, [line3.as_str()]);
    assert_eq!(std::fs::read_to_string(&cron).unwrap(), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarter_fails_the_hold_and_stopping_everything_passes_it() {
    let w = World::new();
    w.writer_script("not-a-secret");
    let pidfile = w.path("run/writer.pid");
    let _writer = KillPidfile(pidfile.clone());
    // A restarter discovery cannot attribute: an inline loop naming the
    // writer through its environment only.
    let restarter = Command::new("sh")
        .arg("-c")
        .arg("while :; do if ! kill -0 \"$(cat \"$PF\" 2>/dev/null)\" 2>/dev/null; then setsid -f /bin/sh \"$W\" >/dev/null 2>&1 < /dev/null; fi; sleep 1; done")
        .env("PF", &pidfile)
        .env("W", w.path("writer.sh"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let restarter = KillGroup(restarter);
    wait_until(30, "the writer", || pid_in(&pidfile).is_some_and(alive));
    wait_until(30, "rows", || w.rows() > 0);

    let inv = support::inventory(&w.inventory_text(""));
    let a = w.actions(&inv);
    let req = StopRequest {
        database: Some(db(&inv, "app")),
        hosts: vec![host(&inv, "box")],
        services: vec![],
        hold_s: 8,
    };
    let (out, _rx) = output();
    let o = a.stop_services(&req, &out).await.unwrap();
    let text = out.kept().join("\n");
    assert_eq!(o.stopped.len(), 1, "{o:#?}\n{text}");
    assert!(o.stopped[0].name.starts_with("writer.sh (pid "), "{o:#?}");
    assert!(!o.hold_passed(), "{o:#?}\n{text}");
    assert!(
        o.still_active
            .iter()
            .any(|s| s.detail.contains("running again as pid")),
        "{o:#?}\n{text}"
    );
    assert!(text.contains("is BACK"), "{text}");
    assert!(
        o.table_writes.get("public.t").is_some_and(|n| *n > 0),
        "the writer's rows during the hold: {o:#?}"
    );
    let outcome: StepOutcome = o.into();
    assert!(matches!(outcome.verdict, Verdict::Failed(ref m) if m.contains("NOT proven stopped")));

    // Without the restarter, the same step passes: nothing comes back, no row is written.
    drop(restarter);
    let (out, _rx) = output();
    let o = a.stop_services(&req, &out).await.unwrap();
    let text = out.kept().join("\n");
    assert!(o.hold_passed(), "{o:#?}\n{text}");
    assert!(!pid_in(&pidfile).is_some_and(alive));
    let before = w.rows();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(w.rows(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_processes_stop_and_start_again_and_commands_run_over_ssh() {
    let w = World::new();
    w.writer_script("x");
    let pidfile = w.path("run/writer.pid");
    let _writer = KillPidfile(pidfile.clone());
    let services = format!(
        "\n[[service]]\nname = \"writer\"\nhost = \"box\"\nkind = \"process\"\nmatch = \"writer\\\\.sh\"\npidfile = \"{}\"\nstart = \"{}\"\ndatabases = [\"app\"]\n",
        pidfile.display(),
        w.writer_start()
    );
    let inv = support::inventory(&w.inventory_text(&services));
    let a = w.actions(&inv);
    let st = Command::new("sh")
        .arg("-c")
        .arg(w.writer_start())
        .status()
        .unwrap();
    assert!(st.success());
    wait_until(30, "the writer", || pid_in(&pidfile).is_some_and(alive));
    let first = pid_in(&pidfile).unwrap();

    let (out, _rx) = output();
    let o = a
        .stop_services(
            &StopRequest {
                database: Some(db(&inv, "app")),
                hosts: vec![host(&inv, "box")],
                services: vec![inv.service("writer").unwrap().clone()],
                hold_s: 3,
            },
            &out,
        )
        .await
        .unwrap();
    assert!(o.hold_passed(), "{o:#?}\n{}", out.kept().join("\n"));
    assert_eq!(o.stopped.len(), 1, "{o:#?}");
    assert_eq!(o.stopped[0].name, "writer");
    assert!(o.stopped[0].commands[0].contains(&format!("kill -s TERM -- -{first}")));
    assert!(!alive(first));

    // start-services runs the inventory's start command.
    let (out, _rx) = output();
    let s = a
        .start_services(
            &StartRequest {
                database: None,
                stopped: o.stopped.clone(),
                picked: vec![],
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(s.started, ["writer"], "{s:#?}");
    wait_until(30, "the writer back", || {
        pid_in(&pidfile).is_some_and(|p| p != first && alive(p))
    });
    // Stopped again while it is not running: listed, watched, not started later.
    let again = pid_in(&pidfile).unwrap();
    let (out, _rx) = output();
    let o = a
        .stop_services(
            &StopRequest {
                database: None,
                hosts: vec![host(&inv, "box")],
                services: vec![inv.service("writer").unwrap().clone()],
                hold_s: 0,
            },
            &out,
        )
        .await
        .unwrap();
    assert!(o.hold_passed() && !alive(again), "{o:#?}");
    let (out, _rx) = output();
    let o2 = a
        .stop_services(
            &StopRequest {
                database: None,
                hosts: vec![host(&inv, "box")],
                services: vec![inv.service("writer").unwrap().clone()],
                hold_s: 0,
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(o2.stopped.len(), 1);
    assert!(o2.stopped[0].commands.is_empty(), "{o2:#?}");
    let (out, _rx) = output();
    let s = a
        .start_services(
            &StartRequest {
                database: None,
                stopped: o2.stopped.clone(),
                picked: vec![],
            },
            &out,
        )
        .await
        .unwrap();
    assert!(s.started.is_empty(), "{s:#?}");
    assert!(s.kept_off[0].reason.contains("not running"), "{s:#?}");

    // command over SSH: exit status, output, timeout that really ends it.
    let (out, _rx) = output();
    let c = a
        .command(
            &CommandRequest {
                host: host(&inv, "box"),
                command: "echo to-stdout; echo to-stderr >&2; exit 3".into(),
                timeout_s: 20,
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(c.exit, 3);
    assert!(c.output.contains(&"to-stdout".to_string()), "{c:?}");
    assert!(c.output.contains(&"to-stderr".to_string()), "{c:?}");
    let marker = w.path("run/sleeper.pid");
    let (out, _rx) = output();
    let e = a
        .command(
            &CommandRequest {
                host: host(&inv, "box"),
                command: format!("echo $$ > {}; exec sleep 300", marker.display()),
                timeout_s: 2,
            },
            &out,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, lifeline::engine::actions::ActionError::Timeout(2)),
        "{e}"
    );
    let sleeper = pid_in(&marker).unwrap();
    wait_until(20, "the timed-out command to end", || !alive(sleeper));
}

#[test]
fn lifeline_run_probe_stop_start_command_journals_without_secrets() {
    let w = World::new();
    let secret = support::random_password();
    w.writer_script(&secret);
    std::fs::write(w.path("secret.txt"), format!("token {secret}\n")).unwrap();
    let pidfile = w.path("run/writer.pid");
    let _writer = KillPidfile(pidfile.clone());
    let services = format!(
        "\n[[service]]\nname = \"writer\"\nhost = \"box\"\nkind = \"process\"\nmatch = \"writer\\\\.sh\"\npidfile = \"{}\"\nstart = \"{}\"\ndatabases = [\"app\"]\n",
        pidfile.display(),
        w.writer_start()
    );
    let inv_path = w.path("lifeline.toml");
    std::fs::write(
        &inv_path,
        w.inventory_text_with(&services, "password_env = \"LIFELINE_TEST_APP_PW\""),
    )
    .unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(w.writer_start())
        .status()
        .unwrap();
    assert!(st.success());
    wait_until(30, "the writer", || pid_in(&pidfile).is_some_and(alive));
    let first = pid_in(&pidfile).unwrap();
    let runbook = w.path("hosts.toml");
    std::fs::write(
        &runbook,
        format!(
            r#"
id = "hosts-drill"
title = "Stop and start the writers of app"
when = "A test."

[[step]]
id = "look"
action = "probe"
explain = "What runs on box, and the database."
host = "box"
database = "app"

[[step]]
id = "stop"
action = "stop-services"
explain = "Stop every writer of app, hold."
database = "app"
hold_s = 3

[[step]]
id = "start"
action = "start-services"
explain = "Bring back what is safe."
database = "app"
destructive = false

[[step]]
id = "show"
action = "command"
explain = "Read a file on box."
host = "box"
destructive = false
timeout_s = 20
command = "cat {secret_file}"
"#,
            secret_file = w.path("secret.txt").display()
        ),
    )
    .unwrap();
    let answers = w.path("answers.toml");
    std::fs::write(&answers, "[params]\n").unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["run", "--incident", "hosts-1", "--answers"])
        .arg(&answers)
        .arg(&runbook)
        .env("LIFELINE_TEST_APP_PW", &secret)
        .output()
        .unwrap();
    let stdout = support::stdout(&out);
    let stderr = support::stderr(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret));

    let jp = state.path().join("incidents/hosts-1/journal.jsonl");
    let text = std::fs::read_to_string(&jp).unwrap();
    assert!(!text.contains(&secret), "a secret reached the journal");
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let fin = |step: &str| {
        recs.iter()
            .find(|r| r.kind == "step-finished" && r.step.as_deref() == Some(step))
            .unwrap_or_else(|| panic!("no step-finished for {step}: {text}"))
    };
    let look = fin("look");
    assert!(look.summary.starts_with("box: "), "{look:?}");
    let found = &look.data["found"];
    assert!(
        found["services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "writer"),
        "{found}"
    );
    assert_eq!(found["database"]["health"], "ok", "{found}");
    let stop = fin("stop");
    assert_eq!(
        stop.data["stopped"],
        serde_json::json!(["writer"]),
        "{}",
        stop.data
    );
    assert_eq!(stop.data["hold_passed"], true, "{}", stop.data);
    assert!(!alive(first));
    let start = fin("start");
    assert_eq!(
        start.data["started"],
        serde_json::json!(["writer"]),
        "{}",
        start.data
    );
    wait_until(30, "the writer back", || {
        pid_in(&pidfile).is_some_and(|p| p != first && alive(p))
    });
    let show = fin("show");
    assert_eq!(show.exit, Some(0));
    // The secret was in the output; the journal has it masked.
    let shown = show.data["output"][0].as_str().unwrap();
    assert!(
        shown.starts_with("token ") && shown != format!("token {secret}"),
        "{shown}"
    );

    let v = support::lifeline(state.path())
        .args(["journal", "verify"])
        .arg(&jp)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", support::stdout(&v));
}

#[test]
fn status_reports_each_database_with_identity_or_why_not() {
    let w = World::new();
    let dead = lifeline::sandbox::free_port().unwrap();
    let inv_path = w.path("lifeline.toml");
    std::fs::write(
        &inv_path,
        format!(
            "{}\n[[database]]\nname = \"gone\"\nurl = \"postgres://postgres@127.0.0.1:{}/vanished\"\nsslmode = \"disable\"\n\n[[database]]\nname = \"down\"\nurl = \"postgres://postgres@127.0.0.1:{dead}/app\"\nsslmode = \"disable\"\nconnect_timeout_s = 3\n",
            w.inventory_text(""),
            w.pg.port()
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = |json: bool| {
        let mut c = support::lifeline(state.path());
        c.arg("-i")
            .arg(&inv_path)
            .args(["status", "--timeout", "15"]);
        if json {
            c.arg("--json");
        }
        c.env("LIFELINE_TEST_APP_PW", "unused-here")
            .output()
            .unwrap()
    };
    let out = run(true);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&support::stdout(&out)).unwrap();
    let dbs = v["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 3, "{v:#}");
    assert_eq!(dbs[0]["name"], "app");
    assert_eq!(dbs[0]["health"], "ok", "{:#}", dbs[0]);
    assert!(
        dbs[0]["identity"]["system_identifier"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert_eq!(dbs[0]["identity"]["database"], "app");
    assert_eq!(dbs[1]["health"], "missing", "{:#}", dbs[1]);
    assert_eq!(dbs[1]["error"]["sqlstate"], "3D000");
    assert_eq!(dbs[2]["health"], "unreachable", "{:#}", dbs[2]);

    let out = run(false);
    let text = support::stdout(&out);
    assert!(text.contains("DATABASES"), "{text}");
    assert!(text.contains("app  127.0.0.1:"), "{text}");
    assert!(text.contains("MISSING"), "{text}");
    assert!(text.contains("SQLSTATE 3D000"), "{text}");
    assert!(text.contains("UNREACHABLE"), "{text}");
}

/// A `systemctl` stand-in with state: the recorded `show` output, with
/// ActiveState/SubState/UnitFileState/MainPID overridden by what stop,
/// start, disable, enable, mask and unmask did (each call logged).
const STATEFUL_SYSTEMCTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
mkdir -p "$dir/state"
echo "$*" >> "$dir/calls.log"
verb=""; props=""; units=""; want_props=0
for a in "$@"; do
  if [ "$want_props" = 1 ]; then props="$props,$a"; want_props=0; continue; fi
  case "$a" in
    --property=*) props="$props,${a#--property=}" ;;
    -p) want_props=1 ;;
    --) ;;
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$a; else units="$units $a"; fi ;;
  esac
done
set_state() { s="$dir/state/$1"; shift; touch "$s"; for kv in "$@"; do k=${kv%%=*}; grep -v "^$k=" "$s" > "$s.tmp"; echo "$kv" >> "$s.tmp"; mv "$s.tmp" "$s"; done; }
file_state() { grep '^UnitFileState=' "$dir/state/$1" 2>/dev/null | cut -d= -f2; }
case "$verb" in
  list-units) cat "$dir/list-units.json" ;;
  list-timers) cat "$dir/list-timers.json" ;;
  show)
    first=1
    for u in $units; do
      [ "$first" = 1 ] || echo
      first=0
      f="$dir/show/$u"
      if [ ! -f "$f" ]; then printf 'Id=%s\nLoadState=not-found\n' "$u"; continue; fi
      awk -v want="$props," -v sf="$dir/state/$u" 'BEGIN { n = split(want, w, ","); for (i = 1; i <= n; i++) if (w[i] != "") keep[w[i]] = 1
          while ((getline l < sf) > 0) { k = l; sub(/=.*/, "", k); o[k] = substr(l, index(l, "=") + 1) } }
        { k = $0; sub(/=.*/, "", k); if (want != "," && !(k in keep)) next; if (k in o) print k "=" o[k]; else print }' "$f"
    done
    ;;
  stop) for u in $units; do set_state "$u" ActiveState=inactive SubState=dead MainPID=0; done ;;
  start) for u in $units; do if [ "$(file_state "$u")" = masked ]; then echo "Failed to start $u: Unit $u is masked." >&2; exit 1; fi; set_state "$u" ActiveState=active SubState=running; done ;;
  disable) for u in $units; do set_state "$u" UnitFileState=disabled; echo "Removed \"/etc/systemd/system/multi-user.target.wants/$u\"."; done ;;
  enable) for u in $units; do if [ "$(file_state "$u")" = masked ]; then echo "Failed to enable unit: Unit file /etc/systemd/system/$u is masked." >&2; exit 1; fi; set_state "$u" UnitFileState=enabled; done ;;
  mask) for u in $units; do set_state "$u" UnitFileState=masked; echo "Created symlink /etc/systemd/system/$u -> /dev/null."; done ;;
  unmask) for u in $units; do set_state "$u" UnitFileState=disabled; echo "Removed \"/etc/systemd/system/$u\"."; done ;;
  *) echo "systemctl stand-in: verb '$verb' is not recorded" >&2; exit 1 ;;
esac
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_units_are_stopped_disabled_masked_and_brought_back_only_when_picked() {
    let sshd = support::sshd();
    let lab = support::probe_lab();
    let standin = lab.standin().join("systemctl");
    std::fs::write(&standin, STATEFUL_SYSTEMCTL).unwrap();
    std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let inv = support::inventory(&format!(
        r#"
[[host]]
name = "box"
address = "127.0.0.1:{port}"
user = "{user}"
identity = "{key}"
known_hosts = "{kh}"

[[database]]
name = "external"
url = "postgres://app@db.example.net:5432/TovPlay"
sslmode = "disable"
connect_timeout_s = 2
"#,
        port = sshd.port(),
        user = sshd.user(),
        key = sshd.user_key().display(),
        kh = sshd.write_known_hosts().unwrap().display(),
    ));
    let a = RealActions::new(inv.clone(), Redactor::new()).with_probe_options(lab.options());
    let (out, _rx) = output();
    let o = a
        .stop_services(
            &StopRequest {
                database: Some(db(&inv, "external")),
                hosts: vec![host(&inv, "box")],
                services: vec![],
                hold_s: 3,
            },
            &out,
        )
        .await
        .unwrap();
    let text = out.kept().join("\n");
    assert!(o.hold_passed(), "{o:#?}\n{text}");
    let unit = o
        .stopped
        .iter()
        .find(|s| s.name == "db-realtime-sync.service")
        .unwrap_or_else(|| panic!("{o:#?}\n{text}"));
    assert_eq!(
        unit.commands,
        [
            "systemctl stop db-realtime-sync.service",
            "systemctl disable db-realtime-sync.service",
            "systemctl mask db-realtime-sync.service"
        ]
    );
    assert!(unit.hazard);
    // The watchdog (a timer and a cron line that restart the unit) is stopped too.
    let names: Vec<&str> = o.stopped.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"db-sync-monitor.timer"),
        "{names:?}\n{text}"
    );
    let monitor = format!(
        "{}:1",
        lab.cron_root().join("cron.d/sync_monitor").display()
    );
    assert!(names.contains(&monitor.as_str()), "{names:?}");
    // The timer goes before the units, cron lines before the units too.
    let kinds: Vec<_> = o.stopped.iter().map(|s| s.kind).collect();
    let first_unit = kinds
        .iter()
        .position(|k| *k == lifeline::inventory::ServiceKind::Systemd)
        .unwrap();
    assert!(
        kinds[first_unit..]
            .iter()
            .all(|k| *k != lifeline::inventory::ServiceKind::Cron),
        "{kinds:?}"
    );
    let cron = std::fs::read_to_string(lab.cron_root().join("cron.d/db_realtime_sync")).unwrap();
    assert!(
        cron.lines().nth(1).unwrap().starts_with("# lifeline-off "),
        "{cron}"
    );
    let state =
        std::fs::read_to_string(lab.standin().join("state/db-realtime-sync.service")).unwrap();
    assert!(
        state.contains("ActiveState=inactive") && state.contains("UnitFileState=masked"),
        "{state}"
    );

    // The unit is a hazard: it stays off unless picked.
    let (out, _rx) = output();
    let s = a
        .start_services(
            &StartRequest {
                database: Some(db(&inv, "external")),
                stopped: vec![unit.clone()],
                picked: vec![],
            },
            &out,
        )
        .await
        .unwrap();
    assert!(s.started.is_empty() && s.kept_off.len() == 1, "{s:#?}");
    let (out, _rx) = output();
    let s = a
        .start_services(
            &StartRequest {
                database: Some(db(&inv, "external")),
                stopped: vec![unit.clone()],
                picked: vec!["db-realtime-sync.service".into()],
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(
        s.started,
        ["db-realtime-sync.service"],
        "{s:#?}\n{}",
        out.kept().join("\n")
    );
    let state =
        std::fs::read_to_string(lab.standin().join("state/db-realtime-sync.service")).unwrap();
    assert!(
        state.contains("ActiveState=active") && state.contains("UnitFileState=enabled"),
        "{state}"
    );
    let calls = std::fs::read_to_string(lab.standin().join("calls.log")).unwrap();
    let tail: Vec<&str> = calls
        .lines()
        .filter(|l| l.contains("db-realtime-sync.service") && !l.starts_with("show"))
        .collect();
    assert_eq!(
        tail,
        [
            "stop db-realtime-sync.service",
            "disable db-realtime-sync.service",
            "mask db-realtime-sync.service",
            "unmask db-realtime-sync.service",
            "enable db-realtime-sync.service",
            "start db-realtime-sync.service"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_cron_service_is_its_whole_file() {
    let w = World::new();
    let cron = w.path("etc/cron.d/reports");
    let original = "MAILTO=\"\"\n*/10 * * * * root /bin/true report-a\n\n# nightly\n0 1 * * * root /bin/true report-b\n";
    std::fs::write(&cron, original).unwrap();
    let services = format!(
        "\n[[service]]\nname = \"reports\"\nhost = \"box\"\nkind = \"cron\"\ncron_file = \"{}\"\n",
        cron.display()
    );
    let inv = support::inventory(&w.inventory_text(&services));
    let a = w.actions(&inv);
    let (out, _rx) = output();
    let o = a
        .stop_services(
            &StopRequest {
                database: None,
                hosts: vec![host(&inv, "box")],
                services: vec![inv.service("reports").unwrap().clone()],
                hold_s: 2,
            },
            &out,
        )
        .await
        .unwrap();
    let text = out.kept().join("\n");
    assert!(o.hold_passed(), "{o:#?}\n{text}");
    let names: Vec<String> = o.stopped.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        names,
        [
            format!("{}:2", cron.display()),
            format!("{}:5", cron.display())
        ],
        "{text}"
    );
    let now = std::fs::read_to_string(&cron).unwrap();
    let commented: Vec<usize> = now
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("# lifeline-off "))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(commented, [2, 5], "{now}");

    // Both lines started again: the kept original is copied back.
    let (out, _rx) = output();
    let s = a
        .start_services(
            &StartRequest {
                database: None,
                stopped: o.stopped.clone(),
                picked: vec![],
            },
            &out,
        )
        .await
        .unwrap();
    assert_eq!(s.started.len(), 2, "{s:#?}");
    assert_eq!(std::fs::read_to_string(&cron).unwrap(), original);
    assert!(
        out.kept().iter().any(|l| l.contains("cmp -s - ")),
        "{}",
        out.kept().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_write_transaction_from_the_host_fails_the_hold() {
    let w = World::new();
    let inv = support::inventory(&w.inventory_text(""));
    let a = w.actions(&inv);
    let req = StopRequest {
        database: Some(db(&inv, "app")),
        hosts: vec![host(&inv, "box")],
        services: vec![],
        hold_s: 2,
    };
    // A client on the database's own host (127.0.0.1: the host "box")
    // holding a write transaction.
    let (c, conn) = tokio_postgres::connect(
        &format!("{} application_name=app-worker", w.pg.conninfo("app")),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    c.batch_execute("BEGIN; INSERT INTO t VALUES (7)")
        .await
        .unwrap();
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let (out, _rx) = output();
    let o = a.stop_services(&req, &out).await.unwrap();
    assert!(!o.hold_passed(), "{o:#?}");
    assert_eq!(o.write_sessions.len(), 1, "{o:#?}");
    assert_eq!(o.write_sessions[0].pid, pid);
    assert_eq!(
        o.write_sessions[0].application_name.as_deref(),
        Some("app-worker")
    );
    assert!(
        out.kept()
            .iter()
            .any(|l| l.contains(&format!("write session pid {pid}")))
    );

    // Committed and idle: nothing writes any more, the hold passes.
    c.batch_execute("COMMIT").await.unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let (out, _rx) = output();
    let o = a.stop_services(&req, &out).await.unwrap();
    assert!(o.hold_passed(), "{o:#?}\n{}", out.kept().join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_be_watched_stops_nothing() {
    let w = World::new();
    let cron = w.path("etc/cron.d/app_jobs");
    let original = format!(
        "*/5 * * * * root {}\n",
        w.psql_line("INSERT INTO t VALUES (2)")
    );
    std::fs::write(&cron, &original).unwrap();
    let inv = support::inventory(
        &w.inventory_text_with("", "password_env = \"LIFELINE_TEST_UNSET_VARIABLE\""),
    );
    let a = w.actions(&inv);
    let (out, _rx) = output();
    let e = a
        .stop_services(
            &StopRequest {
                database: Some(db(&inv, "app")),
                hosts: vec![host(&inv, "box")],
                services: vec![],
                hold_s: 1,
            },
            &out,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing was stopped"), "{e}");
    assert!(e.contains("LIFELINE_TEST_UNSET_VARIABLE"), "{e}");
    assert_eq!(std::fs::read_to_string(&cron).unwrap(), original);
}

use crate::support::odd;

/// Odd programs on the host (a NUL-byte payload, an ESC file name, a 10 MB
/// script, invalid UTF-8) do not blind discovery: the real writer is
/// stopped, the hold passes, and the odd programs are left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_programs_do_not_break_the_stop_or_its_hold() {
    let w = World::new();
    let odd = odd::odd_programs(&w.path("odd"));
    w.writer_script("not-a-secret");
    let pidfile = w.path("run/writer.pid");
    let _writer = KillPidfile(pidfile.clone());
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(w.writer_start())
            .status()
            .unwrap()
            .success()
    );
    wait_until(30, "the writer", || pid_in(&pidfile).is_some_and(alive));
    wait_until(30, "rows", || w.rows() > 0);

    let inv = support::inventory(&w.inventory_text(""));
    let a = w.actions(&inv);
    let req = StopRequest {
        database: Some(db(&inv, "app")),
        hosts: vec![host(&inv, "box")],
        services: vec![],
        hold_s: 4,
    };
    let (out, _rx) = output();
    let o = a
        .stop_services(&req, &out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = out.kept().join("\n");
    assert!(o.hold_passed(), "{o:#?}\n{text}");
    assert_eq!(o.stopped.len(), 1, "{o:#?}\n{text}");
    assert!(o.stopped[0].name.starts_with("writer.sh (pid "), "{o:#?}");
    assert!(!pid_in(&pidfile).is_some_and(alive));
    // The odd programs were not touched.
    let ps = Command::new("ps").args(["-eo", "args="]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    for p in [&odd.payload, &odd.big, &odd.latin] {
        assert!(ps.contains(p.as_str()), "'{p}' was stopped\n{text}\n{ps}");
    }
}

/// Two copies of the same sync / restarter / watchdog trio, one writing to
/// 'staging' and one to 'prod', told apart only by their environment.
struct Trios {
    staging: PathBuf,
    prod: PathBuf,
}

impl World {
    fn trios(&self) -> Trios {
        for db in ["staging", "prod"] {
            self.pg.create_db(db).unwrap();
            self.pg.psql(db, "CREATE TABLE t(id int)").unwrap();
        }
        let dir = self.dir.path().display().to_string();
        let sync = format!(
            "#!/bin/sh\necho $$ > \"$RUN/sync.pid\"\nwhile :; do\n  {} -X -q -h 127.0.0.1 -p {} -U postgres -c 'INSERT INTO t VALUES (1)' >/dev/null 2>&1\n  sleep 0.3\ndone\n",
            self.pg.bin("psql").display(),
            self.pg.port()
        );
        let keeper = |what: &str, starts: &str| {
            format!(
                "#!/bin/sh\necho $$ > \"$RUN/{what}.pid\"\nwhile :; do\n  if ! kill -0 \"$(cat \"$RUN/{starts}.pid\" 2>/dev/null)\" 2>/dev/null; then setsid -f /bin/sh {dir}/{starts}.sh >/dev/null 2>&1 < /dev/null; fi\n  sleep 0.5\ndone\n"
            )
        };
        std::fs::write(self.path("sync.sh"), sync).unwrap();
        std::fs::write(self.path("restarter.sh"), keeper("restarter", "sync")).unwrap();
        std::fs::write(self.path("watchdog.sh"), keeper("watchdog", "restarter")).unwrap();
        let mut out = Vec::new();
        for db in ["staging", "prod"] {
            let run = self.path(db);
            std::fs::create_dir_all(&run).unwrap();
            let st = Command::new("setsid")
                .args(["-f", "/bin/sh"])
                .arg(self.path("watchdog.sh"))
                .env("PGDATABASE", db)
                .env("RUN", &run)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
            // The watchdog starts the restarter, which starts the sync.
            wait_until(30, "the trio", || {
                ["watchdog", "restarter", "sync"]
                    .iter()
                    .all(|p| pid_in(&run.join(format!("{p}.pid"))).is_some_and(alive))
            });
            out.push(run);
        }
        let prod = out.pop().unwrap();
        let staging = out.pop().unwrap();
        Trios { staging, prod }
    }
}

impl Trios {
    fn pids(run: &Path) -> Vec<u32> {
        ["watchdog", "restarter", "sync"]
            .iter()
            .filter_map(|p| pid_in(&run.join(format!("{p}.pid"))))
            .collect()
    }
}

impl Drop for Trios {
    fn drop(&mut self) {
        for run in [&self.staging, &self.prod] {
            let world = run.parent().unwrap_or(Path::new("/nonexistent"));
            for pid in Trios::pids(run)
                .into_iter()
                .filter(|p| runs_from(*p, world))
            {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn two_db_services(w: &World, services: &str) -> String {
    format!(
        "\n[[database]]\nname = \"staging\"\nurl = \"postgres://postgres@127.0.0.1:{p}/staging\"\nhost = \"box\"\nsslmode = \"disable\"\n\n[[database]]\nname = \"prod\"\nurl = \"postgres://postgres@127.0.0.1:{p}/prod\"\nhost = \"box\"\nsslmode = \"disable\"\n{services}",
        p = w.pg.port()
    )
}

/// Stopping prod's writers stops exactly prod's trio (the inventory's
/// `match` finds both syncs; the environment decides); staging's trio keeps
/// running and the hold passes. `status` shows each with its evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_trios_on_one_host_only_the_named_databases_is_stopped() {
    let w = World::new();
    let trios = w.trios();
    let services = "\n[[service]]\nname = \"sync_prod\"\nhost = \"box\"\nkind = \"process\"\nmatch = \"sync\\\\.sh\"\ndatabases = [\"prod\"]\n";
    let text = w.inventory_text(&two_db_services(&w, services));
    let inv_path = w.path("lifeline.toml");
    std::fs::write(&inv_path, &text).unwrap();
    let inv = support::inventory(&text);
    let prod_sync = pid_in(&trios.prod.join("sync.pid")).unwrap();
    let staging_sync = pid_in(&trios.staging.join("sync.pid")).unwrap();

    // status --json: each sync attributed to its own database, with evidence.
    let state = tempfile::tempdir().unwrap();
    let out = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["status", "--json", "--timeout", "20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&support::stdout(&out)).unwrap();
    let svcs = v["hosts"][0]["services"].as_array().unwrap();
    let by_pid = |pid: u32| {
        svcs.iter()
            .find(|s| s["pid"] == pid)
            .unwrap_or_else(|| panic!("pid {pid} not in {svcs:#?}"))
    };
    let p = by_pid(prod_sync);
    assert_eq!(p["name"], "sync_prod", "{p:#}");
    let ev = |s: &serde_json::Value, db: &str| {
        s["databases_reached"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["inventory"] == db && r["role"] != "declared")
            .and_then(|r| r["evidence"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no evidence for '{db}' in {s:#}"))
    };
    assert!(ev(p, "prod").contains("environment of pid"), "{p:#}");
    let s = by_pid(staging_sync);
    assert!(s["inventory"].is_null(), "{s:#}");
    assert!(ev(s, "staging").contains("environment of pid"), "{s:#}");
    let out = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["status", "--timeout", "20"])
        .output()
        .unwrap();
    let st = support::stdout(&out);
    assert!(
        st.contains("sync.sh:4 with PGDATABASE from the environment of pid"),
        "{st}"
    );
    assert!(
        st.contains("prod <- declared by inventory service 'sync_prod'"),
        "{st}"
    );

    let a = w.actions(&inv);
    let req = StopRequest {
        database: Some(db(&inv, "prod")),
        hosts: vec![host(&inv, "box")],
        services: vec![],
        hold_s: 4,
    };
    let staging_before = Trios::pids(&trios.staging);
    let prod_before = Trios::pids(&trios.prod);
    let (out, _rx) = output();
    let o = a
        .stop_services(&req, &out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = out.kept().join("\n");
    assert!(o.hold_passed(), "{o:#?}\n{text}");
    for pid in &prod_before {
        assert!(!alive(*pid), "prod's pid {pid} still runs\n{text}");
    }
    for pid in &staging_before {
        assert!(alive(*pid), "staging's pid {pid} was stopped\n{text}");
    }
    assert_eq!(o.stopped.len(), 3, "{o:#?}\n{text}");
    assert!(o.stopped.iter().any(|s| s.name == "sync_prod"), "{o:#?}");
    // The plan is in the outcome (journaled with the step) ...
    assert!(
        o.plan
            .iter()
            .any(|p| p.action == "leave" && p.why.contains("another database ('staging')")),
        "{:#?}",
        o.plan
    );
    assert_eq!(o.plan.iter().filter(|p| p.action == "stop").count(), 3);
    // ... and came first: what is stopped and why, what is left alone and why.
    let plan = text.find("stop plan: 3 item(s) to stop").expect(&text);
    let freeze = text.find("kill -s STOP").expect(&text);
    assert!(plan < freeze, "{text}");
    assert!(
        text.contains(
            "  STOP  sync_prod on box: inventory service 'sync_prod', writes to 'prod': "
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  LEAVE sync.sh (pid {staging_sync}) on box: writes to another database ('staging')"
        )),
        "{text}"
    );
    // staging keeps being written.
    let n = w.pg.psql("staging", "SELECT count(*) FROM t").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_ne!(w.pg.psql("staging", "SELECT count(*) FROM t").unwrap(), n);
}

/// An inventory `match` that finds several processes none of which
/// evidence ties to a database: target unclear, nothing stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_match_is_target_unclear_and_never_stopped() {
    let w = World::new();
    std::fs::write(w.path("job.sh"), "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let c = Command::new("/bin/sh")
            .arg(w.path("job.sh"))
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        jobs.push(KillGroup(c));
    }
    let services = "\n[[service]]\nname = \"job\"\nhost = \"box\"\nkind = \"process\"\nmatch = \"job\\\\.sh\"\ndatabases = [\"app\"]\n";
    let inv = support::inventory(&w.inventory_text(services));
    let a = w.actions(&inv);
    let req = StopRequest {
        database: Some(db(&inv, "app")),
        hosts: vec![host(&inv, "box")],
        services: vec![inv.service("job").unwrap().clone()],
        hold_s: 2,
    };
    let (out, _rx) = output();
    let o = a.stop_services(&req, &out).await.unwrap();
    let text = out.kept().join("\n");
    assert!(text.contains("target unclear, not stopped"), "{text}");
    assert!(o.stopped.is_empty(), "{o:#?}\n{text}");
    for j in &jobs {
        assert!(alive(j.0.id()), "{text}");
    }
}

/// A world whose cron stop command (through a slow `sed` stand-in) leaves a
/// window right after the freeze: the writer runs, a cron line runs it.
fn frozen_window_world() -> (World, Inventory) {
    let w = World::new();
    w.writer_script("not-a-secret");
    std::fs::write(
        w.path("etc/cron.d/writer"),
        format!("* * * * * root /bin/sh {}\n", w.path("writer.sh").display()),
    )
    .unwrap();
    let slow = w.path("slow");
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::write(
        slow.join("sed"),
        "#!/bin/sh\nsleep 4\nexec /bin/sed \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(slow.join("sed"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let inv = support::inventory(&w.inventory_text(""));
    (w, inv)
}

fn state_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_default()
}

/// Runs stop-services for 'app' and kills sshd with its sessions as soon as
/// the writer is frozen; `restart` brings sshd back at once.
fn stop_and_cut_after_freeze(w: &mut World, inv: &Inventory, restart: bool) -> (String, u32) {
    let (out, _rx) = output();
    stop_and_cut_after_freeze_to(w, inv, restart, out)
}

fn stop_and_cut_after_freeze_to(
    w: &mut World,
    inv: &Inventory,
    restart: bool,
    out: Output,
) -> (String, u32) {
    let pidfile = w.path("run/writer.pid");
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(w.writer_start())
            .status()
            .unwrap()
            .success()
    );
    wait_until(30, "the writer", || pid_in(&pidfile).is_some_and(alive));
    let pid = pid_in(&pidfile).unwrap();
    let mut opts = w.options();
    opts.extra_path = Some(w.path("slow").display().to_string());
    let r = Redactor::new();
    let a = RealActions::new(inv.clone(), r).with_probe_options(opts);
    let req = StopRequest {
        database: Some(db(inv, "app")),
        hosts: vec![host(inv, "box")],
        services: vec![],
        hold_s: 2,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out2 = out.clone();
    let task = rt.spawn(async move { a.stop_services(&req, &out2).await });
    wait_until(120, "the freeze", || {
        state_of(pid) == "T" || task.is_finished()
    });
    if task.is_finished() {
        let r = rt.block_on(task).unwrap();
        panic!(
            "the step ended before the freeze was seen: {:?}\n{}",
            r.map(|o| o.stopped.len()),
            out.kept().join("\n")
        );
    }
    w.sshd.kill_with_sessions();
    if restart {
        w.sshd.restart().unwrap();
    }
    let res = rt.block_on(task).unwrap();
    let e = match res {
        Ok(o) => panic!("the step succeeded: {o:#?}\n{}", out.kept().join("\n")),
        Err(e) => e.to_string(),
    };
    (format!("{e}\n---\n{}", out.kept().join("\n")), pid)
}

/// Connection lost right after the freeze, and not back: the step fails
/// saying which pids are still frozen on which host (the journal records
/// that error), and the pids were named before the freeze.
#[test]
fn connection_lost_after_the_freeze_reports_the_frozen_pids() {
    let (mut w, inv) = frozen_window_world();
    let _writer = KillPidfile(w.path("run/writer.pid"));
    let (text, pid) = stop_and_cut_after_freeze(&mut w, &inv, false);
    let err = text.split("\n---\n").next().unwrap();
    assert!(
        err.contains(&format!("STILL FROZEN on box: -{pid}")),
        "{text}"
    );
    assert!(text.contains(&format!("freezing on box: -{pid}")), "{text}");
    assert_eq!(state_of(pid), "T", "{text}");
}

/// The frozen pids outlive the run: journaled (as a `frozen` record of
/// their own) before the SIGSTOP, left unresolved when the connection is
/// lost and not back, and resolved first by a resumed run, which continues
/// them and journals it; `status` shows "frozen: PIDS on HOST" until then.
#[test]
fn frozen_pids_are_journaled_before_the_freeze_and_resume_continues_them() {
    use lifeline::actions::hosts::frozen;
    let (mut w, inv) = frozen_window_world();
    let _writer = KillPidfile(w.path("run/writer.pid"));
    let state = tempfile::tempdir().unwrap();
    let jp = state.path().join("incidents/frz-1/journal.jsonl");
    let journal = lifeline::journal::Journal::open(&jp, "frz-1", "t", Redactor::new()).unwrap();
    // What the engine does for a running step: writes the action's journal lines.
    let (jtx, mut jrx) =
        tokio::sync::mpsc::unbounded_channel::<lifeline::engine::actions::JournalRequest>();
    let writer = std::thread::spawn(move || {
        let mut journal = journal;
        while let Some((entry, ack)) = jrx.blocking_recv() {
            let _ = ack.send(journal.append(entry).map(|_| ()).map_err(|e| e.to_string()));
        }
        journal
    });
    let (out, _rx) = output();
    let (text, pid) = stop_and_cut_after_freeze_to(&mut w, &inv, false, out.with_journal(jtx));
    let mut journal = writer.join().unwrap();
    assert_eq!(state_of(pid), "T", "{text}");
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let f = recs
        .iter()
        .find(|r| r.kind == "frozen")
        .unwrap_or_else(|| panic!("no frozen record: {recs:#?}\n{text}"));
    assert_eq!(f.data["host"], "box", "{f:?}");
    assert_eq!(
        f.data["pids"],
        serde_json::json!([format!("-{pid}")]),
        "{f:?}"
    );
    assert_eq!(f.step.as_deref(), Some("t"), "{f:?}");
    assert_eq!(
        frozen::unresolved(&recs),
        vec![frozen::Frozen {
            host: "box".into(),
            pids: vec![format!("-{pid}")]
        }],
        "{text}"
    );

    // `status` names them while they are frozen.
    let inv_path = w.path("lifeline.toml");
    std::fs::write(&inv_path, w.inventory_text("")).unwrap();
    w.sshd.restart().unwrap();
    let st = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["status", "--timeout", "20"])
        .output()
        .unwrap();
    let shown = support::stdout(&st);
    assert!(
        shown.contains(&format!("incident frz-1: frozen: -{pid} on box")),
        "{shown}\n{}",
        support::stderr(&st)
    );

    // The resumed run resolves it first: continued, and journaled.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let a = w.actions(&inv);
    let lines = rt
        .block_on(frozen::resume_frozen(&a, &recs, &mut journal))
        .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("now continued: -{pid}"))),
        "{lines:?}"
    );
    wait_until(10, "the writer continued", || state_of(pid) != "T");
    let recs = lifeline::journal::read_records(&jp).unwrap();
    assert!(frozen::unresolved(&recs).is_empty(), "{recs:#?}");
    let r = recs.iter().rfind(|r| r.kind == "frozen-resolved").unwrap();
    assert_eq!(r.data["how"], "continued", "{r:?}");
}

/// Connection lost right after the freeze and back at once: the frozen
/// writer is continued, and the error says so.
#[test]
fn connection_back_after_the_freeze_continues_the_frozen_pids() {
    let (mut w, inv) = frozen_window_world();
    let _writer = KillPidfile(w.path("run/writer.pid"));
    let (text, pid) = stop_and_cut_after_freeze(&mut w, &inv, true);
    let err = text.split("\n---\n").next().unwrap();
    assert!(
        err.contains(&format!("frozen processes continued on box: -{pid}")),
        "{text}"
    );
    assert_ne!(state_of(pid), "T", "{text}");
}

/// A throwaway login-less user, removed on drop (its crontab with it).
struct TempUser(String);

impl TempUser {
    fn new() -> TempUser {
        let name = format!("llk{}", std::process::id() % 100_000);
        let st = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", &name])
            .status()
            .unwrap();
        assert!(st.success(), "useradd {name}");
        TempUser(name)
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("crontab")
            .args(["-r", "-u", &self.0])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

fn as_nobody(cmd: &str) {
    let st = Command::new("runuser")
        .args(["-u", "nobody", "--", "sh", "-c", cmd])
        .status()
        .unwrap();
    assert!(st.success(), "as nobody: {cmd}");
}

/// The crontab hijack: `nobody` pre-plants symlinks (to a file of its own)
/// and FIFOs at every predictable kept-copy name of the next minute. The
/// stop never touches them: nothing of the crontab reaches the attacker,
/// nothing of theirs is installed, and the kept copy is private.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_kept_copy_location_cannot_hijack_a_user_crontab() {
    if Command::new("crontab").arg("-V").output().is_err() {
        panic!("this test needs crontab (apt-get install cron; scripts/test does)");
    }
    let w = World::new();
    let user = TempUser::new();
    let u = &user.0;
    let line = format!("*/5 * * * * {}\n", w.psql_line("INSERT INTO t VALUES (3)"));
    let mut c = Command::new("crontab")
        .args(["-u", u, "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success());
    // The attacker's side: a directory of its own, a symlink or a FIFO at
    // each old predictable name for the next 90 seconds.
    let loot = format!("/tmp/llk-loot-{}", std::process::id());
    as_nobody(&format!("mkdir -p {loot} && : > {loot}/stolen"));
    let now = chrono::Utc::now();
    let mut planted = Vec::new();
    for s in 0..90 {
        let stamp = (now + chrono::Duration::seconds(s)).format("%Y%m%dT%H%M%SZ");
        let p = format!("/var/tmp/crontab-{u}.lifeline-{stamp}");
        if s % 2 == 0 {
            as_nobody(&format!("ln -s {loot}/stolen {p}"));
        } else {
            as_nobody(&format!("mkfifo {p}"));
        }
        planted.push(p);
    }
    let cleanup = Planted(planted.clone(), loot.clone());

    let mut opts = w.options();
    opts.user_crontabs = true;
    let inv = support::inventory(&w.inventory_text(""));
    let r = Redactor::new();
    let a = RealActions::new(inv.clone(), r).with_probe_options(opts);
    let (out, _rx) = output();
    let o = tokio::time::timeout(
        Duration::from_secs(120),
        a.stop_services(
            &StopRequest {
                database: Some(db(&inv, "app")),
                hosts: vec![host(&inv, "box")],
                services: vec![],
                hold_s: 2,
            },
            &out,
        ),
    )
    .await
    .expect("the stop hung (a FIFO opened?)")
    .unwrap_or_else(|e| panic!("{e}\n{}", out.kept().join("\n")));
    let text = out.kept().join("\n");
    let s = o
        .stopped
        .iter()
        .find(|s| s.name.starts_with(&format!("crontab -l -u {u}:")))
        .unwrap_or_else(|| panic!("the user's line was not stopped: {o:#?}\n{text}"));
    // Nothing reached the attacker; the planted names are as they were.
    assert_eq!(
        std::fs::read_to_string(format!("{loot}/stolen")).unwrap(),
        "",
        "{text}"
    );
    for p in &planted {
        use std::os::unix::fs::FileTypeExt;
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(m.file_type().is_symlink() || m.file_type().is_fifo(), "{p}");
    }
    // The user's crontab: the line commented, nothing else installed.
    let now = Command::new("crontab")
        .args(["-l", "-u", u])
        .output()
        .unwrap();
    let now = String::from_utf8_lossy(&now.stdout).to_string();
    assert_eq!(now.lines().count(), 1, "{now}");
    assert!(now.starts_with("# lifeline-off "), "{now}");
    // The kept copy is private and holds the original.
    let kept = s.original_kept.clone().unwrap();
    assert!(
        kept.starts_with(&format!(
            "{}/crontab-{u}.lifeline-",
            w.path("kept").display()
        )),
        "{kept}"
    );
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), line);
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(cleanup);
}

/// The kept-copy directory itself pre-planted as a symlink to a directory
/// of `nobody`: the stop refuses to keep a copy there, changes nothing in
/// the cron file, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_kept_copy_directory_is_refused_and_nothing_changes() {
    let w = World::new();
    let cron = w.path("etc/cron.d/app_jobs");
    let original = format!(
        "*/5 * * * * root {}\n",
        w.psql_line("INSERT INTO t VALUES (2)")
    );
    std::fs::write(&cron, &original).unwrap();
    // A world-writable parent where nobody got there first.
    let open = w.path("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = w.path("open/theirs");
    as_nobody(&format!(
        "mkdir -m 0777 {0} && ln -s {0} {1}",
        theirs.display(),
        w.path("open/kept").display()
    ));
    let mut opts = w.options();
    opts.kept_dir = w.path("open/kept").display().to_string();
    let inv = support::inventory(&w.inventory_text(""));
    let a = RealActions::new(inv.clone(), Redactor::new()).with_probe_options(opts);
    let (out, _rx) = output();
    let o = a
        .stop_services(
            &StopRequest {
                database: Some(db(&inv, "app")),
                hosts: vec![host(&inv, "box")],
                services: vec![],
                hold_s: 2,
            },
            &out,
        )
        .await
        .unwrap();
    let text = out.kept().join("\n");
    assert!(text.contains("is not a private directory"), "{text}");
    assert!(!o.hold_passed(), "{o:#?}");
    assert!(
        o.stopped
            .iter()
            .all(|s| s.kind != lifeline::inventory::ServiceKind::Cron),
        "{o:#?}"
    );
    assert_eq!(std::fs::read_to_string(&cron).unwrap(), original);
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        0,
        "a copy landed in nobody's directory"
    );
}

/// Removes the planted names and the attacker's directory on drop.
struct Planted(Vec<String>, String);

impl Drop for Planted {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// The stop step cancelled right after the freeze (as the step's timeout
/// does: its future is dropped): the frozen writer is continued.
#[test]
fn a_stop_cancelled_after_the_freeze_continues_the_frozen_pids() {
    let (w, inv) = frozen_window_world();
    let pidfile = w.path("run/writer.pid");
    let _writer = KillPidfile(pidfile.clone());
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(w.writer_start())
            .status()
            .unwrap()
            .success()
    );
    wait_until(30, "the writer", || pid_in(&pidfile).is_some_and(alive));
    let pid = pid_in(&pidfile).unwrap();
    let mut opts = w.options();
    opts.extra_path = Some(w.path("slow").display().to_string());
    let a = RealActions::new(inv.clone(), Redactor::new()).with_probe_options(opts);
    let req = StopRequest {
        database: Some(db(&inv, "app")),
        hosts: vec![host(&inv, "box")],
        services: vec![],
        hold_s: 2,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let task = rt.spawn(async move {
        let (out, _rx) = output();
        a.stop_services(&req, &out).await
    });
    wait_until(120, "the freeze", || {
        state_of(pid) == "T" || task.is_finished()
    });
    assert!(
        !task.is_finished(),
        "the step ended before the freeze was seen"
    );
    task.abort();
    wait_until(30, "the writer continued", || state_of(pid) != "T");
    assert!(alive(pid));
}

/// Two processes an inventory `match` cannot tell apart: "target unclear",
/// never stopped by default. A headless run whose answers file adds one of
/// them by pid (`[stop_plan] add = ["pid:N"]`) stops exactly that one; a
/// selector that matches nothing fails the step before anything is frozen.
#[test]
fn the_answers_file_edits_the_stop_plan() {
    let w = World::new();
    std::fs::write(w.path("job.sh"), "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let c = Command::new("/bin/sh")
            .arg(w.path("job.sh"))
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        jobs.push(KillGroup(c));
    }
    let (picked, other) = (jobs[0].0.id(), jobs[1].0.id());
    let services = "\n[[service]]\nname = \"job\"\nhost = \"box\"\nkind = \"process\"\nmatch = \"job\\\\.sh\"\ndatabases = [\"app\"]\n";
    let inv_path = w.path("lifeline.toml");
    std::fs::write(&inv_path, w.inventory_text(services)).unwrap();
    let runbook = w.path("stop.toml");
    std::fs::write(
        &runbook,
        r#"
id = "stop-only"
title = "Stop the writers of app"
when = "A test."

[[step]]
id = "stop"
action = "stop-services"
explain = "Stop every writer of app, hold."
database = "app"
hold_s = 2
"#,
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = |incident: &str, answers: &str| {
        let p = w.path(&format!("{incident}.answers.toml"));
        std::fs::write(&p, answers).unwrap();
        let out = support::lifeline(state.path())
            .arg("-i")
            .arg(&inv_path)
            .args(["run", "--incident", incident, "--answers"])
            .arg(&p)
            .arg(&runbook)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}\n{}", support::stdout(&out), support::stderr(&out)),
        )
    };

    // A malformed selector: refused with the answers file's line, before any step.
    let (ok, text) = run("plan-x", "[stop_plan]\nremove = [\"pid:abc\"]\n");
    assert!(!ok, "{text}");
    assert!(
        text.contains("[stop_plan] 'pid:abc': 'pid:' needs a process id"),
        "{text}"
    );
    assert!(!text.contains("stop plan:"), "{text}");

    // A selector that matches nothing: a clear error, nothing frozen or stopped.
    let (ok, text) = run("plan-0", "[stop_plan]\nadd = [\"pid:4000000\"]\n");
    assert!(!ok, "{text}");
    assert!(
        text.contains("[stop_plan] add 'pid:4000000' (answers file) matches nothing"),
        "{text}"
    );
    assert!(!text.contains("kill -s STOP"), "{text}");
    assert!(alive(picked) && alive(other), "{text}");

    // Added by pid: that one is stopped, the other is left (target unclear).
    let (_, text) = run(
        "plan-1",
        &format!("[stop_plan]\nadd = [\"pid:{picked}\"]\n"),
    );
    assert!(
        text.contains(&format!(
            "added by the answers file ([stop_plan] add 'pid:{picked}')"
        )),
        "{text}"
    );
    wait_until(20, "the picked job stopped", || !alive(picked));
    assert!(alive(other), "the job not added was stopped\n{text}");
    let jp = state.path().join("incidents/plan-1/journal.jsonl");
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let fin = recs
        .iter()
        .find(|r| r.step.as_deref() == Some("stop") && r.data.get("plan").is_some())
        .unwrap_or_else(|| panic!("no stop outcome with a plan: {recs:#?}"));
    let plan = fin.data["plan"].as_array().unwrap();
    assert!(
        plan.iter()
            .any(|p| p["action"] == "stop" && p["why"].as_str().unwrap().contains("added by")),
        "{plan:#?}"
    );

    // Removed: left running, with a LEAVE line saying why (a removal wins over an add).
    let (_, text) = run(
        "plan-2",
        &format!("[stop_plan]\nadd = [\"pid:{other}\"]\nremove = [\"pid:{other}\"]\n"),
    );
    assert!(
        text.contains("removed from the plan by the answers file ([stop_plan] remove)"),
        "{text}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(alive(other), "a removed item was stopped\n{text}");
}

/// `lifeline run --resume` resolves what an earlier run of the incident
/// left frozen before anything else: the process (frozen here by the test,
/// named by a `frozen` record as the stop writes it) is continued and the
/// journal says so; `status` no longer lists it.
#[test]
fn run_resume_continues_the_pids_an_earlier_run_left_frozen() {
    let w = World::new();
    std::fs::write(w.path("job.sh"), "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    let job = KillGroup(
        Command::new("/bin/sh")
            .arg(w.path("job.sh"))
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = job.0.id();
    let inv_path = w.path("lifeline.toml");
    std::fs::write(&inv_path, w.inventory_text("")).unwrap();
    let runbook = w.path("note.toml");
    std::fs::write(
        &runbook,
        "id = \"n\"\ntitle = \"A note\"\nwhen = \"A test.\"\n\n[[step]]\nid = \"look\"\naction = \"command\"\nexplain = \"Nothing.\"\nhost = \"box\"\ndestructive = false\ncommand = \"true\"\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = |resume: bool| {
        let mut c = support::lifeline(state.path());
        c.arg("-i")
            .arg(&inv_path)
            .args(["run", "--incident", "frz-2"]);
        if resume {
            c.arg("--resume");
        }
        let out = c.arg(&runbook).output().unwrap();
        format!("{}\n{}", support::stdout(&out), support::stderr(&out))
    };
    let text = run(false);
    // The earlier run froze the job and lost its connection before continuing it.
    let jp = state.path().join("incidents/frz-2/journal.jsonl");
    {
        let mut j = lifeline::journal::Journal::open(&jp, "frz-2", "t", Redactor::new()).unwrap();
        j.append(lifeline::actions::hosts::frozen::frozen_entry(
            "box",
            &[format!("-{pid}")],
        ))
        .unwrap();
    }
    assert!(
        Command::new("kill")
            .args(["-s", "STOP", "--", &format!("-{pid}")])
            .status()
            .unwrap()
            .success()
    );
    wait_until(10, "the job frozen", || state_of(pid) == "T");
    let st = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["status", "--timeout", "20"])
        .output()
        .unwrap();
    assert!(
        support::stdout(&st).contains(&format!("incident frz-2: frozen: -{pid} on box")),
        "{text}\n{}",
        support::stdout(&st)
    );

    let text = run(true);
    assert!(
        text.contains(&format!(
            "left frozen by the earlier run on box, now continued: -{pid}"
        )),
        "{text}"
    );
    wait_until(10, "the job continued", || state_of(pid) != "T");
    let recs = lifeline::journal::read_records(&jp).unwrap();
    let pos = |k: &str| recs.iter().rposition(|r| r.kind == k).unwrap();
    assert!(pos("frozen-resolved") < pos("run-finished"), "{recs:#?}");
    assert!(
        lifeline::actions::hosts::frozen::unresolved(&recs).is_empty(),
        "{recs:#?}"
    );
    let st = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["status", "--timeout", "20"])
        .output()
        .unwrap();
    assert!(
        !support::stdout(&st).contains("frozen:"),
        "{}",
        support::stdout(&st)
    );
}

/// The console's side of a runbook, without the terminal: the runner that
/// turns the operator's commands into engine runs, on an incident of its own.
struct Console {
    rt: tokio::runtime::Runtime,
    cmd: tokio::sync::mpsc::Sender<lifeline::tui::UiCommand>,
    ev: tokio::sync::mpsc::Receiver<lifeline::tui::UiEvent>,
    journal: PathBuf,
    _serve: tokio::task::JoinHandle<()>,
}

impl Console {
    fn open(inv_path: &Path, state: &Path, incident: Option<&str>) -> Console {
        use lifeline::console::{load_inventory, open_incident, runner};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let redactor = Redactor::new();
        let inventory = load_inventory(inv_path, &redactor).unwrap();
        let sd = lifeline::state::StateDir::new(state.to_path_buf());
        let inc = open_incident(
            &sd, incident, "t", &redactor, "console", "console", inv_path,
        )
        .unwrap();
        let journal = inc.journal_path.clone();
        let (cmd, cmd_rx) = tokio::sync::mpsc::channel(16);
        let (ev_tx, ev) = tokio::sync::mpsc::channel(4096);
        let ctl = runner::Controller {
            inventory,
            inventory_path: inv_path.to_path_buf(),
            state: sd,
            incident: inc,
            redactor,
            operator: "t".into(),
            readonly: false,
            in_flight: Vec::new(),
            selected_db: None,
            params: Default::default(),
        };
        let _serve = rt.spawn(runner::serve(ctl, cmd_rx, ev_tx));
        Console {
            rt,
            cmd,
            ev,
            journal,
            _serve,
        }
    }

    fn send(&self, c: lifeline::tui::UiCommand) {
        self.rt.block_on(self.cmd.send(c)).unwrap();
    }

    /// Events until `f` picks one (its value), within `secs`; the texts seen on the way.
    fn until<T>(
        &mut self,
        secs: u64,
        mut f: impl FnMut(&lifeline::tui::UiEvent) -> Option<T>,
    ) -> (T, Vec<String>) {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self
                .rt
                .block_on(async { tokio::time::timeout(left, self.ev.recv()).await })
                .unwrap_or_else(|_| panic!("timed out; seen:\n{}", seen.join("\n")))
                .expect("the runner went away");
            match &ev {
                lifeline::tui::UiEvent::Output { line, .. } => seen.push(line.clone()),
                lifeline::tui::UiEvent::Status(s) => seen.push(format!("status: {s}")),
                _ => {}
            }
            if let Some(v) = f(&ev) {
                return (v, seen);
            }
        }
    }

    fn records(&self) -> Vec<lifeline::journal::Record> {
        lifeline::journal::read_records(&self.journal).unwrap()
    }

    /// Quits the runner (its journal lock goes with it).
    fn close(self) {
        self.send(lifeline::tui::UiCommand::Quit);
        let Console { rt, _serve, .. } = self;
        rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(10), _serve).await;
        });
    }
}

fn finished(ev: &lifeline::tui::UiEvent) -> Option<String> {
    match ev {
        lifeline::tui::UiEvent::Status(s) if s.starts_with("runbook finished") => Some(s.clone()),
        _ => None,
    }
}

/// The console shows the stop plan as a checklist before anything is
/// frozen: two indistinguishable `job.sh` processes are listed "target
/// unclear" with their pids, nothing is frozen while the operator looks;
/// ticking one (the answers file's `add`, from the console) stops exactly
/// that one, journaled in the step's plan as the operator's; "stop
/// nothing" fails the step with nothing frozen or stopped.
#[test]
fn the_console_checklist_edits_the_stop_plan_before_anything_is_frozen() {
    use lifeline::tui::stop_plan::Checklist;
    use lifeline::tui::{UiCommand, UiEvent};
    let w = World::new();
    std::fs::write(w.path("job.sh"), "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let c = Command::new("/bin/sh")
            .arg(w.path("job.sh"))
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        jobs.push(KillGroup(c));
    }
    let (picked, other) = (jobs[0].0.id(), jobs[1].0.id());
    let services = "\n[[service]]\nname = \"job\"\nhost = \"box\"\nkind = \"process\"\nmatch = \"job\\\\.sh\"\ndatabases = [\"app\"]\n";
    let inv_path = w.path("lifeline.toml");
    std::fs::write(&inv_path, w.inventory_text(services)).unwrap();
    let runbook = w.path("stop.toml");
    std::fs::write(
        &runbook,
        "id = \"stop-only\"\ntitle = \"Stop the writers of app\"\nwhen = \"A test.\"\n\n[[step]]\nid = \"stop\"\naction = \"stop-services\"\nexplain = \"Stop every writer of app, hold.\"\ndatabase = \"app\"\nhold_s = 2\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut con = Console::open(&inv_path, state.path(), None);
    let start = || UiCommand::StartRunbook(runbook.display().to_string());
    let plan_of = |ev: &UiEvent| match ev {
        UiEvent::StopPlan(Some(p)) => Some(p.clone()),
        _ => None,
    };
    // The previous run's end reaches the runner a moment after its last
    // step's: a start refused with "a runbook is running" is sent again.
    let plan_when_idle = |con: &mut Console| loop {
        con.send(start());
        let (r, _) = con.until(240, |ev: &UiEvent| match ev {
            UiEvent::StopPlan(Some(p)) => Some(Some(p.clone())),
            UiEvent::Status(s) if s.contains("a runbook is running") => Some(None),
            _ => None,
        });
        match r {
            Some(p) => break p,
            None => std::thread::sleep(Duration::from_millis(500)),
        }
    };

    con.send(start());
    let (plan, seen) = con.until(240, plan_of);
    assert_eq!(plan.step, "stop");
    assert_eq!(plan.database.as_deref(), Some("app"));
    for pid in [picked, other] {
        let r = plan
            .rows
            .iter()
            .find(|r| r.selector.as_deref() == Some(&format!("pid:{pid}")))
            .unwrap_or_else(|| panic!("pid {pid} not in the plan: {plan:#?}"));
        assert!(!r.stop, "an unclear job is ticked by default: {r:#?}");
        assert!(r.why.contains("target unclear"), "{r:#?}");
        assert!(r.locked.is_none(), "{r:#?}");
    }
    // While the operator looks, nothing is frozen or journaled as frozen.
    std::thread::sleep(Duration::from_secs(1));
    assert!(state_of(picked) != "T" && state_of(other) != "T");
    assert!(
        !con.records().iter().any(|r| r.kind == "frozen"),
        "frozen before the plan was confirmed\n{}",
        seen.join("\n")
    );
    // Tick the picked job, as the checklist does, and confirm.
    let mut c = Checklist::new(plan.clone());
    c.cursor = plan
        .rows
        .iter()
        .position(|r| r.selector.as_deref() == Some(&format!("pid:{picked}")))
        .unwrap();
    c.toggle().unwrap();
    let edits = c.edits();
    assert_eq!(edits.add, vec![format!("pid:{picked}")]);
    con.send(UiCommand::StopPlan {
        step: "stop".into(),
        edits: Some(edits),
    });
    let (fin, seen) = con.until(300, finished);
    let text = format!("{}\n{fin}", seen.join("\n"));
    assert!(
        text.contains(&format!(
            "added by the operator in the console ([stop_plan] add 'pid:{picked}')"
        )),
        "{text}"
    );
    wait_until(60, "the picked job stopped", || !alive(picked));
    assert!(alive(other), "the job left unticked was stopped\n{text}");
    let recs = con.records();
    let frozen: Vec<_> = recs.iter().filter(|r| r.kind == "frozen").collect();
    assert_eq!(frozen.len(), 1, "{recs:#?}");
    assert_eq!(
        frozen[0].data["pids"],
        serde_json::json!([format!("-{picked}")])
    );
    let plan_rec = recs
        .iter()
        .find(|r| r.step.as_deref() == Some("stop") && r.data.get("plan").is_some())
        .unwrap_or_else(|| panic!("no stop outcome with a plan: {recs:#?}"));
    let entries = plan_rec.data["plan"].as_array().unwrap();
    assert!(
        entries.iter().any(|p| p["action"] == "stop"
            && p["why"]
                .as_str()
                .unwrap()
                .contains("operator in the console")),
        "{entries:#?}"
    );
    assert!(
        entries.iter().any(
            |p| p["action"] == "leave" && p["why"].as_str().unwrap().contains("target unclear")
        ),
        "{entries:#?}"
    );

    // Stop nothing: the step fails, nothing is frozen or stopped.
    let before = con.records().len();
    let plan = plan_when_idle(&mut con);
    assert!(
        plan.rows
            .iter()
            .any(|r| r.selector.as_deref() == Some(&format!("pid:{other}")))
    );
    con.send(UiCommand::StopPlan {
        step: "stop".into(),
        edits: None,
    });
    let (fin, seen) = con.until(240, finished);
    let text = format!("{}\n{fin}", seen.join("\n"));
    assert!(
        text.contains("the stop plan was not confirmed (the operator chose to stop nothing)"),
        "{text}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(alive(other) && state_of(other) != "T", "{text}");
    let recs = con.records();
    assert!(
        !recs[before..].iter().any(|r| r.kind == "frozen"),
        "{recs:#?}"
    );
    assert!(
        recs[before..]
            .iter()
            .any(|r| r.kind == "step-failed" && r.summary.contains("not confirmed")),
        "{:#?}",
        &recs[before..]
    );

    // Abort while the plan waits: the same, nothing frozen or stopped.
    let before = con.records().len();
    plan_when_idle(&mut con);
    con.send(UiCommand::Abort);
    let (fin, seen) = con.until(240, finished);
    let text = format!("{}\n{fin}", seen.join("\n"));
    assert!(
        text.contains("the stop plan was not confirmed (the operator aborted the runbook)"),
        "{text}"
    );
    assert!(alive(other) && state_of(other) != "T", "{text}");
    let recs = con.records();
    assert!(
        !recs[before..].iter().any(|r| r.kind == "frozen"),
        "{recs:#?}"
    );
}

/// Pids an earlier run left frozen are resolved from the console:
/// `:frozen continue` sends CONT, `:frozen end` ends them (TERM, KILL), each
/// journaled `frozen-resolved`, and the header's list follows. A pid named
/// frozen that runs now (continued by someone, or reused by a bystander) is
/// never ended: left alone and journaled `running`.
#[test]
fn the_console_continues_or_ends_pids_an_earlier_run_left_frozen() {
    use lifeline::tui::{UiCommand, UiEvent};
    let w = World::new();
    std::fs::write(w.path("job.sh"), "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    let spawn = || {
        KillGroup(
            Command::new("/bin/sh")
                .arg(w.path("job.sh"))
                .process_group(0)
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    // y's group does not fork (a SIGSTOP landing mid-fork can leave a
    // shell in D state, never T).
    let sleeper = |group: i32| {
        Command::new("sleep")
            .arg("600")
            .process_group(group)
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (a, b, bystander, young) = (spawn(), spawn(), spawn(), KillGroup(sleeper(0)));
    let (a, b, by, y) = (a.0.id(), b.0.id(), bystander.0.id(), young.0.id());
    let inv_path = w.path("lifeline.toml");
    std::fs::write(&inv_path, w.inventory_text("")).unwrap();
    let state = tempfile::tempdir().unwrap();
    let jp = state.path().join("incidents/frz-c/journal.jsonl");
    std::fs::create_dir_all(jp.parent().unwrap()).unwrap();
    let freeze = |pid: u32| {
        let mut j = lifeline::journal::Journal::open(&jp, "frz-c", "t", Redactor::new()).unwrap();
        j.append(lifeline::actions::hosts::frozen::frozen_entry(
            "box",
            &[format!("-{pid}")],
        ))
        .unwrap();
        drop(j);
        assert!(
            Command::new("kill")
                .args(["-s", "STOP", "--", &format!("-{pid}")])
                .status()
                .unwrap()
                .success()
        );
        wait_until(10, "frozen", || state_of(pid) == "T");
    };
    freeze(a);
    let mut con = Console::open(&inv_path, state.path(), Some("frz-c"));
    let header = |ev: &UiEvent| match ev {
        UiEvent::Frozen(l) => Some(l.clone()),
        _ => None,
    };

    con.send(UiCommand::ResolveFrozen { end: false });
    let (lines, seen) = con.until(60, header);
    assert!(lines.is_empty(), "{lines:?}\n{}", seen.join("\n"));
    assert!(
        seen.iter()
            .any(|l| l.contains(&format!("now continued: -{a}"))),
        "{}",
        seen.join("\n")
    );
    wait_until(10, "a continued", || state_of(a) != "T");
    assert!(alive(a), "continue ended it");

    con.close();

    // End: b is frozen and ended; the bystander's pid is named frozen but runs: left alone.
    // The group of y is frozen, but a process joined it after the freeze
    // (as a reused pid would be): not the one frozen, left alone.
    freeze(b);
    {
        let mut j = lifeline::journal::Journal::open(&jp, "frz-c", "t", Redactor::new()).unwrap();
        for p in [by, y] {
            j.append(lifeline::actions::hosts::frozen::frozen_entry(
                "box",
                &[format!("-{p}")],
            ))
            .unwrap();
        }
    }
    std::thread::sleep(Duration::from_secs(4));
    let mut late = sleeper(y as i32);
    let late_pid = late.id();
    assert!(
        Command::new("kill")
            .args(["-s", "STOP", "--", &format!("-{y}")])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(state_of(y) == "T" && state_of(late_pid) == "T") {
        assert!(
            Instant::now() < deadline,
            "y's group not frozen: y {} late {} (pgid {:?})",
            state_of(y),
            state_of(late_pid),
            std::fs::read_to_string(format!("/proc/{late_pid}/stat")).ok()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut con = Console::open(&inv_path, state.path(), Some("frz-c"));
    con.send(UiCommand::ResolveFrozen { end: true });
    let (lines, seen) = con.until(90, header);
    assert!(lines.is_empty(), "{lines:?}\n{}", seen.join("\n"));
    wait_until(20, "b ended", || !alive(b));
    assert!(
        alive(by) && state_of(by) != "T",
        "a running pid named frozen was ended\n{}",
        seen.join("\n")
    );
    let recs = con.records();
    let how = |pid: u32| {
        recs.iter()
            .filter(|r| r.kind == "frozen-resolved")
            .find(|r| r.data["pids"] == serde_json::json!([format!("-{pid}")]))
            .map(|r| r.data["how"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(how(a).as_deref(), Some("continued"), "{recs:#?}");
    assert_eq!(how(b).as_deref(), Some("ended"), "{recs:#?}");
    assert_eq!(how(by).as_deref(), Some("running"), "{recs:#?}");
    assert_eq!(how(y).as_deref(), Some("running"), "{recs:#?}");
    assert!(
        alive(y) && alive(late_pid),
        "a group with a process younger than the freeze was ended"
    );
    assert!(lifeline::actions::hosts::frozen::unresolved(&recs).is_empty());
    let _ = Command::new("kill")
        .args(["-s", "CONT", "--", &format!("-{y}")])
        .status();
    drop(young);
    let _ = late.wait();
}
