//! Shell completions and man pages, generated from the CLI: each script is
//! syntax-checked by its own shell (bash, zsh, fish) and the bash one really
//! completes; the man pages render with man(1) and name every command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::{Command, Stdio};

const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");

fn generate(args: &[&str]) -> String {
    let o = Command::new(LIFELINE).args(args).output().unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    support::stdout(&o)
}

/// Subcommands every completion and man page must know.
const COMMANDS: [&str; 8] = [
    "lab",
    "init",
    "check",
    "run",
    "status",
    "export",
    "completions",
    "man",
];

fn script_file(shell: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(format!("lifeline.{shell}"));
    std::fs::write(&path, generate(&["completions", shell])).unwrap();
    (tmp, path)
}

/// What bash completes for the words of `line` (the last one being typed).
fn bash_complete(script: &std::path::Path, line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let prog = format!(
        "source '{}'; COMP_WORDS=({words}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; _lifeline lifeline '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        line.len() - 1,
        line.join(" "),
        line[line.len() - 1],
        line[line.len().saturating_sub(2)],
    );
    let o = Command::new("bash").args(["-c", &prog]).output().unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    support::stdout(&o).lines().map(str::to_string).collect()
}

#[test]
fn bash_completion_parses_and_completes_commands_and_flags() {
    let (_t, path) = script_file("bash");
    let o = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(o.status.success(), "bash -n: {}", support::stderr(&o));
    let all = bash_complete(&path, &["lifeline", ""]);
    for c in COMMANDS {
        assert!(all.iter().any(|w| w == c), "'{c}' not offered: {all:?}");
    }
    assert_eq!(
        bash_complete(&path, &["lifeline", "compl"]),
        ["completions"]
    );
    let flags = bash_complete(&path, &["lifeline", "lab", "--ins"]);
    assert_eq!(flags, ["--install-deps"]);
    let shells = bash_complete(&path, &["lifeline", "completions", ""]);
    for s in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|w| w == s), "{shells:?}");
    }
}

#[test]
fn zsh_completion_parses() {
    let (_t, path) = script_file("zsh");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("#compdef lifeline"), "{text}");
    for c in COMMANDS {
        assert!(text.contains(&format!("'{c}:")), "'{c}' missing");
    }
    let o = Command::new("zsh")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("zsh (scripts/test installs it)");
    assert!(o.status.success(), "zsh -n: {}", support::stderr(&o));
}

#[test]
fn fish_completion_parses_and_is_loaded_by_fish() {
    let (_t, path) = script_file("fish");
    let o = Command::new("fish")
        .arg("--no-execute")
        .arg(&path)
        .output()
        .expect("fish (scripts/test installs it)");
    assert!(
        o.status.success(),
        "fish --no-execute: {}",
        support::stderr(&o)
    );
    // Loaded for real: fish completes the commands from it.
    let o = Command::new("fish")
        .args(["--no-config", "-c"])
        .arg(format!(
            "source '{}'; complete -C 'lifeline '",
            path.display()
        ))
        .output()
        .unwrap();
    let out = support::stdout(&o);
    for c in COMMANDS {
        assert!(
            out.lines().any(|l| l.split('\t').next() == Some(c)),
            "'{c}' not completed:\n{out}"
        );
    }
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let o = Command::new(LIFELINE)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        support::stderr(&o).contains("tcsh"),
        "{}",
        support::stderr(&o)
    );
}

#[test]
fn a_failed_write_to_stdout_is_an_error_not_a_panic() {
    // /dev/full fails every write (ENOSPC), like a closed pipe (EPIPE) but
    // without a race.
    for args in [["completions", "bash"].as_slice(), ["man"].as_slice()] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(LIFELINE)
            .args(args)
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        let err = support::stderr(&o);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write"), "{args:?}: {err}");
    }
}

fn render(page: &std::path::Path) -> String {
    let o = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "200")
        .env("LANG", "C.UTF-8")
        .output()
        .expect("man (man-db)");
    assert!(o.status.success(), "man -l: {}", support::stderr(&o));
    support::stdout(&o)
}

#[test]
fn man_page_renders_and_lists_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("lifeline.1");
    std::fs::write(&page, generate(&["man"])).unwrap();
    let text = render(&page);
    assert!(
        text.contains("SYNOPSIS") && text.contains("--inventory"),
        "{text}"
    );
    for c in COMMANDS {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("lifeline-{c}("))),
            "'{c}' not listed:\n{text}"
        );
    }
}

#[test]
fn man_dir_writes_a_page_per_command_with_its_options() {
    let tmp = tempfile::tempdir().unwrap();
    let out = generate(&["man", "--dir", tmp.path().to_str().unwrap()]);
    assert!(out.contains("man pages written"), "{out}");
    let lab = render(&tmp.path().join("lifeline-lab.1"));
    assert!(
        lab.contains("--install-deps") && lab.contains("--headless"),
        "{lab}"
    );
    let verify = render(&tmp.path().join("lifeline-journal-verify.1"));
    assert!(verify.contains("--json"), "{verify}");
    assert!(tmp.path().join("lifeline.1").is_file());
    // A directory that does not exist: a usage error, nothing created.
    let missing = tmp.path().join("nope");
    let o = Command::new(LIFELINE)
        .args(["man", "--dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(support::stderr(&o).contains("is not a directory"));
    assert!(!missing.exists());
}
