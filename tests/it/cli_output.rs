//! What the CLI prints: on a terminal a headless run draws a progress bar
//! on stderr (the step in flight, its clock, a gauge and the action's own
//! message: here the hold's countdown); piped, the same progress comes as
//! plain lines with no `\r` and no escape codes. `--quiet` leaves errors and
//! the final result; `--verbose` adds tracing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::tmux;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use tmux::Tmux;

const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");

fn no_control(what: &str, text: &str) {
    assert!(!text.contains('\r'), "{what} has a \\r:\n{text:?}");
    assert!(
        !text.contains('\x1b'),
        "{what} has an escape code:\n{text:?}"
    );
}

#[test]
fn on_a_terminal_the_headless_drill_draws_a_progress_bar_with_the_hold_countdown() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display();
    std::fs::create_dir_all(tmp.path().join("registry")).unwrap();
    let line = format!(
        "cd {d} && env TERM=xterm-256color LANG=C.UTF-8 TMPDIR={d}/registry {LIFELINE} --state-dir {d}/state lab --headless"
    );
    let t = Tmux::start("lifeline-bar", &line, 150, 40, Duration::from_secs(120));
    let s = t.wait("the bar: step, clock, gauge, countdown", |s| {
        s.lines().any(|l| {
            l.contains("stop-writers 00:")
                && l.contains("%")
                && l.contains("] ")
                && l.contains("hold: ")
                && l.contains(" s left of 120 s")
        })
    });
    let bar = s.lines().find(|l| l.contains("hold: ")).unwrap();
    assert!(bar.starts_with('['), "{bar}");
    assert!(bar.contains(" [#") || bar.contains(" [-"), "a gauge: {bar}");
    // The bar lives on the last line drawn; the step lines stay above it.
    assert_eq!(
        s.lines().rfind(|l| !l.trim().is_empty()),
        Some(bar),
        "the bar is the bottom line:\n{s}"
    );
    assert!(s.contains("[4/15] stop-writers | "), "{s}");
    assert_eq!(
        s.lines().filter(|l| l.contains("hold: ")).count(),
        1,
        "one bar, redrawn in place, not a line per update:\n{s}"
    );
    // The countdown moves.
    let left = |s: &str| -> u64 {
        let l = s.lines().find(|l| l.contains(" s left of ")).unwrap();
        let at = l.find("hold: ").unwrap() + 6;
        l[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let first = left(&s);
    let later = t.wait("the countdown to move", |s| {
        s.contains(" s left of ") && left(s) < first
    });
    assert!(left(&later) < first);
    t.keys(&["C-c"]);
    let s = t.wait_for("EXITED");
    assert!(s.contains("interrupted"), "{s}");
}

#[test]
fn piped_the_progress_is_plain_lines_without_cr_or_escape_codes() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("registry")).unwrap();
    let mut child = support::lifeline(&tmp.path().join("state"))
        .env("TMPDIR", tmp.path().join("registry"))
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .args(["-vv", "lab", "--headless"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let mut out = String::new();
    let mut interrupted = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if !interrupted && line.contains("hold: ") && out.matches("hold: ").count() >= 2 {
            // Two countdown lines seen: stop the drill (SIGINT to this child only).
            let st = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            interrupted = true;
        }
    }
    let status = child.wait().unwrap();
    let err = err_reader.join().unwrap();
    assert!(interrupted, "no hold countdown lines:\n{out}\n{err}");
    assert!(!status.success());
    no_control("stdout", &out);
    no_control("stderr (with -vv tracing)", &err);
    let hold = out.lines().find(|l| l.contains("hold: ")).unwrap();
    assert!(
        hold.contains("stop-writers .. ")
            && hold.contains("/120 hold: ")
            && hold.contains(" s left of 120 s"),
        "{hold}"
    );
    assert!(err.contains("DEBUG"), "-vv shows debug tracing:\n{err}");
}

#[test]
fn quiet_drill_prints_only_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("registry")).unwrap();
    let o = support::lifeline(&tmp.path().join("state"))
        .env("TMPDIR", tmp.path().join("registry"))
        .env("LIFELINE_RUNBOOKS", support::quick_runbooks(tmp.path(), 12))
        .args(["--quiet", "lab", "--headless"])
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    // However the drill ends (a failed step is an error and stays), the
    // result is there and nothing else.
    assert!(out.contains("\nfinished: "), "{out}\n{err}");
    assert!(out.contains("drill 'rogue-sync'"), "the score: {out}");
    for l in out.lines().filter(|l| l.starts_with('[')) {
        assert!(
            l.contains(": FAILED: "),
            "only failures under --quiet: {l}\n{out}"
        );
    }
    assert!(
        !out.contains(": running: ") && !out.contains(" | "),
        "{out}"
    );
    assert!(
        !out.contains(" run: ") && !out.contains("confirm: type"),
        "{out}"
    );
    assert!(!err.contains("building lab"), "no build progress:\n{err}");
    assert!(!err.contains("lab stopped"), "{err}");
    no_control("stdout", &out);
}

fn status(flags: &[&str]) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv.toml");
    std::fs::write(
        &inv,
        "[[database]]\nname = \"main\"\nurl = \"postgres://app@127.0.0.1:1/x\"\npassword_env = \"LIFELINE_TEST_UNSET_PW\"\nsslmode = \"disable\"\n",
    )
    .unwrap();
    support::lifeline(&tmp.path().join("state"))
        .env_remove("LIFELINE_TEST_UNSET_PW")
        .env("RUST_LOG", "warn")
        .args(flags)
        .arg("-i")
        .arg(&inv)
        .args(["status", "--timeout", "3"])
        .output()
        .unwrap()
}

#[test]
fn verbose_adds_tracing_over_rust_log_and_quiet_conflicts_with_it() {
    let normal = status(&[]);
    assert!(!support::stderr(&normal).contains("DEBUG"));
    let vv = status(&["-vv"]);
    let err = support::stderr(&vv);
    assert!(
        err.contains("DEBUG") && err.contains("'LIFELINE_TEST_UNSET_PW' is not set"),
        "{err}"
    );
    no_control("piped tracing", &err);
    // The report itself is the same (stdout); tracing goes to stderr only.
    for o in [&normal, &vv] {
        assert!(
            support::stdout(o).contains("1 database(s)"),
            "{}",
            support::stdout(o)
        );
        assert!(!support::stdout(o).contains("DEBUG"));
    }
    let both = status(&["-q", "-v"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        support::stderr(&both).contains("cannot be used with"),
        "{}",
        support::stderr(&both)
    );
}

/// Processes whose arguments mention `needle` (this test's unique directory).
fn processes_with(needle: &str) -> Vec<String> {
    let o = Command::new("ps")
        .args(["-eo", "pid=,args="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(needle) && !l.contains(" ps "))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_closed_terminal_or_sigterm_ends_a_headless_drill_and_tears_the_lab_down() {
    for sig in ["-HUP", "-TERM"] {
        let tmp = tempfile::tempdir().unwrap();
        let registry = tmp.path().join("registry");
        std::fs::create_dir_all(&registry).unwrap();
        let mut child = support::lifeline(&tmp.path().join("state"))
            .env("TMPDIR", &registry)
            .args(["lab", "--headless"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            err.read_to_string(&mut s).unwrap();
            s
        });
        let mut sent = false;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            // The drill is under way (its first step started): signal it.
            if !sent && line.unwrap().contains("] brief (note): ") {
                let st = Command::new("kill")
                    .args([sig, &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(st.success());
                sent = true;
            }
        }
        let status = child.wait().unwrap();
        let err = err_reader.join().unwrap();
        assert!(sent, "{sig}: the drill never started:\n{err}");
        assert_eq!(status.code(), Some(1), "{sig}: {err}");
        assert!(err.contains("interrupted: the drill stops"), "{sig}: {err}");
        assert!(err.contains("lab stopped and removed"), "{sig}: {err}");
        let left = processes_with(&registry.display().to_string());
        assert!(left.is_empty(), "{sig}: left running: {left:?}");
    }
}
