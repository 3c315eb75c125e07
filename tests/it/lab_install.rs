//! The fresh-machine path: README's quick start is two commands, and the
//! first one (`lifeline lab`) installs missing PostgreSQL server binaries
//! (y/N on a terminal, or --install-deps) and goes on; without consent it
//! names the one command and installs nothing. The binaries are hidden with
//! `LIFELINE_PG_SEARCH`; a stand-in `apt-get` first in PATH records its
//! arguments and then makes them visible.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::tmux;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tmux::Tmux;

const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");

/// A machine where the finder sees no PostgreSQL, with an `apt-get` that
/// records its arguments and, on `install`, makes the real binaries visible.
struct Fresh {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Fresh {
    fn new() -> Fresh {
        let real =
            lifeline::sandbox::pg_bin_dir().expect("PostgreSQL for the tests (scripts/test)");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("stub")).unwrap();
        std::fs::create_dir_all(dir.join("registry")).unwrap();
        let apt = dir.join("stub/apt-get");
        std::fs::write(
            &apt,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{log}'\nif [ \"$1\" = install ]; then ln -s '{real}' '{pg}'; fi\necho \"stand-in apt-get $*\"\n",
                log = dir.join("apt.log").display(),
                real = real.display(),
                pg = dir.join("pg").display(),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&apt, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fresh { _tmp: tmp, dir }
    }

    /// PATH with the stand-in first.
    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.join("stub").display(),
            std::env::var("PATH").unwrap()
        )
    }

    fn command(&self) -> Command {
        let mut c = support::lifeline(&self.dir.join("state"));
        c.env("PATH", self.path())
            .env("LIFELINE_PG_SEARCH", self.dir.join("pg"))
            .env_remove("LIFELINE_PG_BIN")
            .env("TMPDIR", self.dir.join("registry"));
        c
    }

    fn apt_log(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("apt.log")).ok()
    }
}

/// The commands of README's quick start block, comments removed.
fn quick_start() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .expect("README has a 'Quick start' section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a sh block in Quick start");
    block
        .lines()
        .map(|l| l.split(" #").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn readme_quick_start_is_two_commands_the_lab_and_the_tests() {
    let cmds = quick_start();
    assert_eq!(
        cmds,
        ["cargo run --release -- lab", "scripts/test"],
        "{cmds:?}"
    );
}

#[test]
fn quick_start_on_a_fresh_machine_asks_installs_and_opens_the_lab() {
    let f = Fresh::new();
    // README's first command verbatim, with the binary cargo would build.
    let first = &quick_start()[0];
    let line = first.replacen("cargo run --release --", LIFELINE, 1);
    assert_ne!(&line, first);
    let d = f.dir.display();
    let shell = format!(
        "cd {d} && env TERM=xterm-256color LANG=C.UTF-8 NO_COLOR=1 PATH='{path}' LIFELINE_PG_SEARCH={d}/pg TMPDIR={d}/registry {line} --state-dir {d}/state",
        path = f.path()
    );
    let t = Tmux::start(
        "lifeline-install",
        &shell,
        140,
        45,
        Duration::from_secs(150),
    );
    let s = t.wait_for("[y/N]");
    assert!(
        s.contains("apt-get update && apt-get install -y postgresql"),
        "the question names the command:\n{s}"
    );
    assert_eq!(f.apt_log(), None, "nothing installed before the answer");
    t.text("y");
    t.keys(&["Enter"]);
    t.wait("the drill console", |s| {
        s.contains("DRILL") && s.contains("sampled") && s.contains("db-realtime-sync")
    });
    assert_eq!(
        f.apt_log().unwrap(),
        "update\ninstall -y postgresql\n",
        "apt-get update, then the install"
    );
    t.keys(&["q"]);
    let s = t.wait_for("EXITED");
    assert!(s.contains("EXITED 0"), "{s}");
    // The console used the alternate screen: what was printed before and
    // after it is on the terminal.
    assert!(
        s.contains("stand-in apt-get install -y postgresql"),
        "apt's output:\n{s}"
    );
    assert!(s.contains("lab stopped"), "{s}");
}

#[test]
fn answering_no_installs_nothing_and_names_the_command() {
    let f = Fresh::new();
    let d = f.dir.display();
    let shell = format!(
        "cd {d} && env NO_COLOR=1 PATH='{path}' LIFELINE_PG_SEARCH={d}/pg TMPDIR={d}/registry {LIFELINE} --state-dir {d}/state lab",
        path = f.path()
    );
    let t = Tmux::start(
        "lifeline-install-no",
        &shell,
        160,
        30,
        Duration::from_secs(30),
    );
    t.wait_for("[y/N]");
    t.text("n");
    t.keys(&["Enter"]);
    let s = t.wait_for("EXITED");
    assert!(s.contains("EXITED 2"), "{s}");
    assert!(
        s.contains("apt-get update && apt-get install -y postgresql"),
        "{s}"
    );
    assert_eq!(f.apt_log(), None, "'n' must not install");
}

#[test]
fn without_a_terminal_the_lab_names_the_one_command_and_installs_nothing() {
    let f = Fresh::new();
    let o = f.command().args(["lab", "--headless"]).output().unwrap();
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("apt-get update && apt-get install -y postgresql"),
        "{err}"
    );
    assert!(err.contains("--install-deps"), "{err}");
    assert_eq!(f.apt_log(), None, "no terminal, no flag: no install");
    assert!(
        !f.dir.join("state/incidents").exists(),
        "no lab was started"
    );
}

#[test]
fn install_deps_installs_without_asking_and_the_headless_drill_goes_on() {
    let f = Fresh::new();
    let o = f
        .command()
        .env("LIFELINE_RUNBOOKS", support::quick_runbooks(&f.dir, 12))
        .args(["lab", "--headless", "--install-deps"])
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert_eq!(
        f.apt_log().unwrap(),
        "update\ninstall -y postgresql\n",
        "{err}"
    );
    assert!(
        !out.contains("stand-in apt-get"),
        "apt's output stays off stdout:\n{out}"
    );
    assert!(
        err.contains("installing the PostgreSQL server binaries"),
        "{err}"
    );
    // It went on: the lab was built and the drill ran to its score (how the
    // drill scores is lab_cli's business; 2 would be a set-up failure).
    assert!(err.contains("lab 'rogue-sync' ready"), "{err}");
    assert!(
        out.contains("\nfinished: ") && out.contains("drill 'rogue-sync'"),
        "{out}\n{err}"
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{:?}\n{out}\n{err}",
        o.status
    );
}

#[test]
fn without_apt_get_the_lab_names_the_package_to_install() {
    let f = Fresh::new();
    // No apt-get anywhere in PATH (an empty directory).
    let o = f
        .command()
        .env("PATH", f.dir.join("registry"))
        .args(["lab", "--headless"])
        .output()
        .unwrap();
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not found"),
        "without apt-get: the package to install\n{err}"
    );
    assert!(err.contains("'postgresql' package"), "{err}");
    assert!(
        !err.contains("--install-deps"),
        "no install offered without apt-get:\n{err}"
    );
    assert_eq!(f.apt_log(), None);
}
