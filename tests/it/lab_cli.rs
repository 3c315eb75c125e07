//! `lifeline lab` as an operator runs it: in tmux it builds the rogue-sync
//! outage, opens the console in DRILL mode with the drop on the Timeline,
//! and `q` tears everything down (no process, no cluster, no directory).
//! The headless drill runs the scenario's runbook from the shipped answers
//! and scores it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");
const DEADLINE: Duration = Duration::from_secs(120);

struct Tmux(String);

impl Tmux {
    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0, "-f", "/dev/null"]);
        c
    }
    fn capture(&self) -> String {
        let o = self.tmux().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > DEADLINE {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let o = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        // Not ps itself, nor the tmux shell running the test's command line.
        .filter(|l| l.contains(needle) && !l.contains("ps -eo") && !l.contains("EXITED"))
        .map(str::to_string)
        .collect()
}

#[test]
fn lab_opens_the_console_on_rogue_sync_shows_the_drop_and_q_tears_it_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let labdir = dir.join("lab");
    let registry = dir.join("registry");
    let t = Tmux(format!("lifeline-lab-cli-{}", std::process::id()));
    let line = format!(
        "cd {d} && env TERM=xterm-256color LANG=C.UTF-8 TMPDIR={r} {LIFELINE} --state-dir {d}/state lab rogue-sync --dir {l} 2>{d}/err; echo EXITED $?; sleep 120",
        d = dir.display(),
        r = registry.display(),
        l = labdir.display()
    );
    std::fs::create_dir_all(&registry).unwrap();
    let st = t
        .tmux()
        .args(["new-session", "-d", "-x", "140", "-y", "45", &line])
        .status()
        .unwrap();
    assert!(st.success());
    let s = t.wait("the drill console with the sync job as a hazard", |s| {
        s.contains("DRILL") && s.contains("sampled") && s.contains("db-realtime-sync")
    });
    assert!(s.contains("lab"), "{s}");
    assert!(
        s.contains("db-realtime-sync"),
        "the sync job as a hazard:\n{s}"
    );
    // Timeline: the tables re-created by pg_dump --clean, each one line
    // across its old and new OIDs, marked re-created (issue 19).
    t.tmux().args(["send-keys", "3"]).status().unwrap();
    let s = t.wait("the drop on the timeline", |s| {
        s.contains("User") && s.contains("re-created") && s.contains("incident")
    });
    assert!(s.contains("GameRequest"), "{s}");
    let err = std::fs::read_to_string(dir.join("err")).unwrap();
    assert!(err.contains("building lab 'rogue-sync'"), "{err}");
    assert!(!processes_with(&labdir.display().to_string()).is_empty());
    // Issue 19: the evidence suggests rogue-sync-wipe, with its reason; Enter
    // opens its plan (nothing runs), Esc closes it.
    t.tmux().args(["send-keys", "4"]).status().unwrap();
    let s = t.wait("the suggested runbook", |s| {
        s.contains("suggested: ") && s.contains("sync-loop hazard(s)")
    });
    assert!(s.contains("▶ rogue-sync-wipe  suggested"), "{s}");
    t.tmux().args(["send-keys", "Enter"]).status().unwrap();
    let s = t.wait("the plan", |s| {
        s.contains("Plan: rogue-sync-wipe (nothing has run)") && s.contains("step(s) on database")
    });
    // The stop step acts at once: the plan says so (it does not read only);
    // choose-path only reads.
    assert!(
        s.contains("3 act without one (stop or start services"),
        "{s}"
    );
    assert!(s.contains("7 only read"), "{s}");
    t.tmux().args(["send-keys", "Escape"]).status().unwrap();
    t.wait("the plan closed", |s| !s.contains("nothing has run"));

    t.tmux().args(["send-keys", "q"]).status().unwrap();
    let s = t.wait("exit", |s| s.contains("EXITED"));
    assert!(s.contains("EXITED 0"), "{s}");
    let err = std::fs::read_to_string(dir.join("err")).unwrap();
    assert!(err.contains("lab stopped"), "{err}");
    // Nothing left running: no sync, restarter, watchdog, no postgres.
    let start = Instant::now();
    loop {
        let left = processes_with(&labdir.display().to_string());
        if left.is_empty() {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // --dir keeps the directory; the drill's incident is under --state-dir.
    assert!(labdir.join("lifeline.toml").exists());
    assert!(!labdir.join("pg/postmaster.pid").exists());
    let incidents: Vec<_> = std::fs::read_dir(dir.join("state/incidents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        incidents.iter().any(|i| i.ends_with("lab-rogue-sync")),
        "{incidents:?}"
    );
}

fn headless(scenario: &str, state: &Path, registry: &Path) -> std::process::Output {
    let quick = support::quick_runbooks(registry.parent().unwrap(), 12);
    support::lifeline(state)
        .env("TMPDIR", registry)
        .env("LIFELINE_RUNBOOKS", quick)
        .args(["lab", scenario, "--headless"])
        .output()
        .unwrap()
}

#[test]
fn headless_rogue_sync_drill_restores_verifies_and_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let state = tmp.path().join("state");
    let o = headless("rogue-sync", &state, &registry);
    let out = support::stdout(&o);
    assert!(o.status.success(), "{out}\n{}", support::stderr(&o));
    assert!(out.contains("finished: every step done"), "{out}");
    let incidents: Vec<_> = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(incidents.len(), 1);
    let journal = std::fs::read_to_string(incidents[0].join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"kind\":\"drill-report\""), "{journal}");
    let report = journal
        .lines()
        .find(|l| l.contains("\"kind\":\"drill-report\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(report).unwrap();
    assert_eq!(v["data"]["verified"], true, "{report}");
    assert!(v["data"]["restored_at"].is_string(), "{report}");
    assert_eq!(v["data"]["mistakes"], serde_json::json!([]), "{report}");
}

#[test]
fn headless_drill_journals_a_drill_report_even_when_the_drill_stops_early() {
    // Until every action is wired the drill may stop at a step; it must
    // still end with a scored report in the journal and a non-zero exit,
    // and tear the lab down.
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let state = tmp.path().join("state");
    let o = headless("wrong-database", &state, &registry);
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert!(err.contains("lab stopped and removed"), "{err}");
    let incidents: Vec<_> = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(incidents.len(), 1, "{out}\n{err}");
    let journal = std::fs::read_to_string(incidents[0].join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"kind\":\"drill-report\""), "{journal}");
    assert!(out.contains("runbook table-wiped"), "{out}");
    // The exit says whether the data was restored and verified.
    let report = journal
        .lines()
        .find(|l| l.contains("\"kind\":\"drill-report\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(report).unwrap();
    let passed = v["data"]["verified"] == true
        && v["data"]["restored_at"].is_string()
        && v["data"]["damage_left"].is_null();
    assert_eq!(o.status.success(), passed, "{out}\n{err}");
    // The merge keeps every row of the tables the scenario did not damage.
    assert!(out.contains("rows lost in undamaged tables: 0\n"), "{out}");
    assert_eq!(
        v["data"]["undamaged_rows_lost"]["GameRequest"], 0,
        "{report}"
    );
    let v = support::lifeline(&state)
        .args(["journal", "verify"])
        .arg(incidents[0].join("journal.jsonl"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", support::stdout(&v));
}

#[test]
fn sigterm_to_the_lab_console_tears_the_lab_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let registry = dir.join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let t = Tmux(format!("lifeline-lab-term-{}", std::process::id()));
    let line = format!(
        "cd {d} && env TERM=xterm-256color LANG=C.UTF-8 TMPDIR={r} {LIFELINE} --state-dir {d}/state lab wrong-database 2>{d}/err; echo EXITED $?; sleep 120",
        d = dir.display(),
        r = registry.display(),
    );
    let st = t
        .tmux()
        .args(["new-session", "-d", "-x", "120", "-y", "40", &line])
        .status()
        .unwrap();
    assert!(st.success());
    t.wait("the drill console", |s| {
        s.contains("DRILL") && s.contains("sampled")
    });
    let err = std::fs::read_to_string(dir.join("err")).unwrap();
    let labdir = err
        .lines()
        .find_map(|l| l.strip_prefix("lab 'wrong-database' ready in "))
        .and_then(|l| l.split(" (inventory").next())
        .unwrap()
        .to_string();
    assert!(!processes_with(&labdir).is_empty());
    // Only this test's lifeline: its command line names this test's own
    // state directory (other tests run `lab wrong-database` at the same time).
    let o = Command::new("pgrep")
        .args([
            "-f",
            &format!(
                "^{} --state-dir {} lab wrong-database",
                regex::escape(LIFELINE),
                regex::escape(&dir.join("state").display().to_string())
            ),
        ])
        .output()
        .unwrap();
    assert!(!o.stdout.is_empty(), "this test's lab console is running");
    let pids = String::from_utf8_lossy(&o.stdout).into_owned();
    for p in pids.split_whitespace() {
        assert!(
            Command::new("kill")
                .args(["-TERM", p])
                .status()
                .unwrap()
                .success()
        );
    }
    t.wait("exit", |s| s.contains("EXITED"));
    let err = std::fs::read_to_string(dir.join("err")).unwrap();
    assert!(err.contains("lab stopped and removed"), "{err}");
    let start = Instant::now();
    while !processes_with(&labdir).is_empty() {
        assert!(start.elapsed() < DEADLINE, "{:?}", processes_with(&labdir));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!Path::new(&labdir).exists(), "'{labdir}' left behind");
}

/// Kills the outside process by its pid when the test ends (never by name).
struct Outside(std::process::Child);

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_same_named_sync_outside_the_lab_is_not_part_of_the_drill_and_keeps_running() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    // Someone else's db_realtime_sync.sh on this machine, in its own dir.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let script = other.join("db_realtime_sync.sh");
    std::fs::write(&script, "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let child = Command::new(&script)
        .current_dir(&other)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let outside = Outside(child);
    let pid = outside.0.id();
    let labdir = tmp.path().join("lab");
    // No --state-dir: the drill's journal goes under the lab directory.
    let o = Command::new(LIFELINE)
        .env_remove("LIFELINE_INVENTORY")
        .env("NO_COLOR", "1")
        .env("TMPDIR", &registry)
        .env("HOME", tmp.path())
        .env("LIFELINE_RUNBOOKS", support::quick_runbooks(tmp.path(), 12))
        .args(["lab", "rogue-sync", "--headless", "--dir"])
        .arg(&labdir)
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("finished: every step done"), "{out}");
    // The outside process was never stopped nor frozen.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("outside process {pid} gone: {e}\n{out}\n{err}"));
    let state = stat.rsplit(')').next().unwrap().split_whitespace().next();
    assert_ne!(state, Some("T"), "outside process left stopped: {stat}");
    assert!(
        out.contains(&format!("not part of this drill: pid {pid}")),
        "the outside process listed as not part of the drill:\n{out}"
    );
    // The journal is under the lab directory, and the quit message says so.
    let incidents: Vec<_> = std::fs::read_dir(labdir.join("state/incidents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let journal = std::fs::read_to_string(incidents[0].join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"kind\":\"drill-report\""), "{journal}");
    assert!(
        journal.contains("not part of this drill"),
        "outside process journaled as not part of the drill"
    );
    assert!(
        err.contains(&format!(
            "drill journal and snapshots: '{}'",
            labdir.join("state").display()
        )),
        "{err}"
    );
}
