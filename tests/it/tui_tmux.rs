//! The console in a real terminal: the dev-only `lifeline-tui-demo` binary
//! (demo model of outage 1 plus a stand-in engine) inside a private tmux
//! server, driven with `send-keys` and checked with `capture-pane`: every
//! view, help, command line, filter, the typed confirmation, a hung host
//! that keeps counting while keys answer, resize, NO_COLOR/ASCII, a key
//! map override, and the terminal restored after quit, panic and SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const DEMO: &str = env!("CARGO_BIN_EXE_lifeline-tui-demo");
/// Generous: the machine may be busy; polling stops as soon as the text shows.
const DEADLINE: Duration = Duration::from_secs(40);

use crate::support::tmux;
use tmux::Tmux;

/// Starts `cmd` (a shell line) in a fresh tmux server of `w` x `h`.
fn start(name: &str, cmd: &str, w: u16, h: u16) -> Tmux {
    Tmux::start(&format!("lifeline-tui-{name}"), cmd, w, h, DEADLINE)
}

fn demo(args: &str) -> String {
    format!(
        "env TERM=xterm-256color LANG=C.UTF-8 LC_ALL= NO_COLOR= LIFELINE_ASCII= RUST_BACKTRACE=0 {DEMO} {args}"
    )
}

fn exit_status(s: &str) -> &str {
    s.lines()
        .find_map(|l| l.strip_prefix("EXITED "))
        .unwrap_or("")
}

#[test]
fn every_view_help_command_line_filter_resize_and_quit() {
    let t = start("views", &demo("--restore-rate 0"), 120, 40);
    t.wait_for("Hazards: jobs that can write to or restore a database");
    let s = t.capture();
    assert!(s.contains("PRODUCTION") && s.contains("LIVE"), "{s}");
    assert!(
        s.contains("acting on main → db.tovplay.example:5432/TovPlay"),
        "{s}"
    );
    t.keys(&["2"]);
    t.wait_for("[2 Services]");
    t.wait_for("db-realtime-sync.service");
    t.keys(&["3"]);
    t.wait_for("Tables (25)");
    t.wait_for("User (oid 16390)");
    t.keys(&["+"]);
    t.wait_for("last 15 min, follows now");
    t.keys(&["4"]);
    t.wait_for("Steps rogue-sync");
    t.wait_for("Restore it beside the live database");
    t.keys(&["5"]);
    t.wait_for("Journal: 20 records, newest last");
    t.keys(&["Tab"]);
    t.wait_for("[1 Overview]");
    t.keys(&["?"]);
    t.wait_for("show this help");
    t.keys(&["Escape"]);
    t.wait("help closed", |s| !s.contains("show this help"));
    // Command line: a note goes to the (stand-in) engine and comes back in the journal.
    t.keys(&[":"]);
    t.text("note seen from tmux");
    t.wait_for(":note seen from tmux_");
    t.keys(&["Enter"]);
    t.keys(&["5"]);
    t.wait_for("seen from tmux");
    t.wait_for("Journal: 21 records");
    // Filter.
    t.keys(&["/"]);
    t.text("note");
    t.wait_for("3 of 21 records match 'note'");
    t.keys(&["Escape"]);
    t.wait_for("Journal: 21 records, newest last");
    // Details of the newest record.
    t.keys(&["Enter"]);
    t.wait_for("Details #21");
    t.keys(&["Escape"]);
    t.wait("details closed", |s| !s.contains("Details #21"));
    // Resize to the smallest supported size and back.
    t.keys(&["1"]);
    let st = t
        .tmux()
        .args(["resize-window", "-x", "80", "-y", "24"])
        .status()
        .unwrap();
    assert!(st.success());
    let s = t.wait("the 80x24 layout", |s| {
        s.lines().count() <= 24
            && s.contains("Hazards:")
            && s.lines().nth(23).is_some_and(|l| l.starts_with("? help"))
    });
    assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
    // q asks while the restore runs; n stays, y quits.
    t.keys(&["q"]);
    t.wait_for("Quit the console anyway?");
    t.keys(&["n"]);
    t.wait("the quit dialog closed", |s| {
        !s.contains("Quit the console anyway?")
    });
    t.keys(&["q"]);
    t.wait_for("Quit the console anyway?");
    t.keys(&["y"]);
    t.assert_restored();
    assert_eq!(exit_status(&t.capture()), "0");
}

#[test]
fn destructive_step_wants_the_database_name_typed() {
    let t = start("confirm", &demo("--restore-rate 400000"), 120, 40);
    t.wait_for("Hazards:");
    // The restore finishes, verify runs, then the engine asks for the swap.
    t.wait_for("Confirm destructive step");
    t.wait_for("Type the database name 'TovPlay' to confirm (case matters):");
    t.text("tovplay");
    t.keys(&["Enter"]);
    t.wait_for("'tovplay' is not 'TovPlay'");
    let s = t.capture();
    assert!(!s.contains("Confirmation sent"), "{s}");
    t.text("TovPlay");
    t.keys(&["Enter"]);
    t.wait_for("Confirmation sent.");
    t.keys(&["4"]);
    t.wait("the swap done", |s| {
        s.lines()
            .any(|l| l.contains("7. Swap") && l.contains("done"))
    });
    t.keys(&["5"]);
    t.wait_for("operator typed 'TovPlay'");
    // Nothing runs any more: q quits at once.
    t.keys(&["q"]);
    t.assert_restored();
}

/// Number after "no answer for " in the backup host's row.
fn no_answer_s(screen: &str) -> Option<u64> {
    let l = screen.lines().find(|l| l.contains("  backup "))?;
    let rest = l.split("no answer for ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// Seconds in "sampled N s ago" of the main database's row.
fn main_sampled_s(screen: &str) -> Option<u64> {
    let l = screen.lines().find(|l| l.starts_with("  main "))?;
    let rest = l.split("sampled ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

#[test]
fn a_hung_host_counts_up_while_the_rest_updates_and_keys_answer() {
    let t = start("hung", &demo("--restore-rate 0"), 120, 40);
    let s = t.wait_for("no answer for");
    let first = no_answer_s(&s).expect("backup row");
    // The hung host's own row counts up ...
    let s = t.wait("the no-answer count to grow by 3 s", |s| {
        no_answer_s(s).is_some_and(|n| n >= first + 3)
    });
    // ... while the database fed by the other (answering) tasks stays fresh.
    let age = main_sampled_s(&s).expect("main row");
    assert!(
        age <= 4,
        "main sampled {age} s ago while another host hangs:\n{s}"
    );
    assert!(
        !s.lines()
            .find(|l| l.starts_with("  main "))
            .unwrap()
            .contains("STALE"),
        "{s}"
    );
    // And keys answer.
    t.keys(&["2"]);
    t.wait_for("[2 Services]");
    t.keys(&["1"]);
    t.wait_for("[1 Overview]");
    let s = t.capture();
    assert!(no_answer_s(&s).unwrap() >= first + 3);
    t.keys(&["q", "y"]);
    t.assert_restored();
}

#[test]
fn no_color_and_ascii() {
    let cmd = format!("env TERM=xterm-256color LANG=C LC_ALL= NO_COLOR=1 {DEMO} --restore-rate 0");
    let t = start("nocolor", &cmd, 100, 30);
    t.wait_for("Hazards:");
    for view in ["1", "2", "3", "4", "5"] {
        t.keys(&[view]);
        std::thread::sleep(Duration::from_millis(300));
        let s = t.wait("a full screen", |s| s.contains("? help"));
        assert!(s.is_ascii(), "non-ASCII with LANG=C in view {view}:\n{s}");
        let esc = t.capture_escaped();
        // SGR colour parameters: 30-37, 38;..., 40-47, 48;..., 90-97, 100-107.
        for seq in esc.split("\x1b[").skip(1) {
            let params = seq.split('m').next().unwrap_or("");
            for p in params.split(';') {
                let n: u32 = p.parse().unwrap_or(0);
                assert!(
                    !((30..=49).contains(&n) && n != 39 && n != 49 || (90..=107).contains(&n)),
                    "colour sequence '{params}' with NO_COLOR in view {view}"
                );
            }
        }
    }
    t.keys(&["3"]);
    let s = t.wait_for("Tables (25)");
    assert!(s.contains("+") && s.contains("#"), "ASCII chart:\n{s}");
    t.keys(&["q", "y"]);
    t.assert_restored();
}

#[test]
fn key_map_file_overrides_only_what_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "quit = \"Q\"\nhelp = \"f1\"\n").unwrap();
    let t = start(
        "keys",
        &demo(&format!("--restore-rate 0 --keys {}", keys.display())),
        120,
        40,
    );
    t.wait_for("f1 help");
    t.keys(&["q"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!t.capture().contains("Quit the console anyway?"));
    t.keys(&["2"]);
    t.wait_for("[2 Services]");
    t.keys(&["F1"]);
    t.wait_for("show this help");
    // Wait for Esc to land: Esc and a key sent at once read as Alt+key.
    t.keys(&["Escape"]);
    t.wait("help closed", |s| !s.contains("show this help"));
    t.keys(&["Q"]);
    t.wait_for("Quit the console anyway?");
    t.keys(&["y"]);
    t.assert_restored();
}

#[test]
fn a_bad_key_map_is_refused_before_the_screen_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "dwon = \"j\"\n").unwrap();
    let o = Command::new(DEMO)
        .args(["--keys", keys.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("keys.toml:1:1: 'dwon'"), "{err}");
    assert!(
        o.stdout.is_empty(),
        "nothing drawn: {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn panic_gives_the_terminal_back() {
    let t = start(
        "panic",
        &demo("--restore-rate 0 --panic-after-ms 2500"),
        120,
        40,
    );
    t.wait_for("Hazards:");
    t.assert_restored();
    let s = t.capture();
    assert!(
        s.contains("panic on request"),
        "the panic message reaches the restored screen:\n{s}"
    );
    assert_ne!(exit_status(&s), "0");
}

#[test]
fn sigterm_gives_the_terminal_back() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let cmd = format!(
        "sh -c 'echo $$ > {}; exec {}'",
        pidfile.display(),
        demo("--restore-rate 0")
    );
    let t = start("sigterm", &cmd, 120, 40);
    t.wait_for("Hazards:");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let st = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(st.success());
    t.assert_restored();
    assert_eq!(exit_status(&t.capture()), "0");
    assert!(Path::new(&pidfile).exists());
}
