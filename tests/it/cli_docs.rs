//! Shell completions and man pages, generated from the CLI: each script is
//! syntax-checked by its own shell (bash, zsh, fish) and the bash one really
//! completes; the man pages render with man(1) and name every command. And
//! the manual (docs/src) documents every command, flag, runbook action,
//! inventory key, journal kind and console key, taken from the code.
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

// ---------------------------------------------------------------------------
// The manual covers the CLI, the runbook actions and the console keys.
//
// Generated from the built binary's `--help` (every command, its arguments,
// flags and possible values), from the engine's action table
// (`runbook::Action::ALL` with its argument keys) and from the console's key
// map (`tui::keys::Action::ALL`, the `:` commands). Each test fails with the
// list of everything the manual under docs/src does not mention.

const GLOBAL_OPTIONS_HEADING: &str = "Global options";

/// What one `--help` page declares.
#[derive(Debug, Default)]
struct HelpPage {
    commands: Vec<String>,
    arguments: Vec<String>,
    /// Long and short flags, e.g. `--dry-run`, `-o`.
    flags: Vec<String>,
    /// Values a flag or argument accepts, e.g. `md`, `json`.
    values: Vec<String>,
}

fn help_page(path: &[&str]) -> HelpPage {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let text = generate(&args);
    parse_help(&text)
}

fn parse_help(text: &str) -> HelpPage {
    let mut page = HelpPage::default();
    let mut section = "";
    let mut in_values = false;
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':');
            in_values = false;
            continue;
        }
        let t = line.trim();
        if t.is_empty() {
            in_values = false;
            continue;
        }
        // The bracket form: `[possible values: a, b]`.
        if let Some(i) = t.find("[possible values: ") {
            let rest = &t[i + "[possible values: ".len()..];
            let list = rest.split(']').next().unwrap_or("");
            page.values
                .extend(list.split(", ").map(|v| v.trim().to_string()));
        }
        // The long form: `Possible values:` then `- name: what`.
        if t == "Possible values:" {
            in_values = true;
            continue;
        }
        if in_values {
            if let Some(v) = t.strip_prefix("- ") {
                let name = v.split(':').next().unwrap_or("").trim();
                page.values.push(name.to_string());
            }
            continue;
        }
        // Only the head of an entry (before its description) names things.
        let head = if line.starts_with("  ") && !line.starts_with("         ") {
            t.split("  ").next().unwrap_or("")
        } else {
            ""
        };
        if head.is_empty() {
            continue;
        }
        match section {
            "Commands" => {
                let name = head.split_whitespace().next().unwrap_or("");
                if name != "help" {
                    page.commands.push(name.to_string());
                }
            }
            "Arguments" => {
                let name =
                    head.trim_matches(|c| c == '<' || c == '>' || c == '[' || c == ']' || c == '.');
                page.arguments.push(name.to_string());
            }
            "Options" => {
                for word in head.split([',', ' ']) {
                    let w = word.trim_end_matches("...");
                    let is_flag = (w.starts_with("--") && w.len() > 2)
                        || (w.len() == 2 && w.starts_with('-'));
                    if is_flag && !["-h", "--help", "-V", "--version"].contains(&w) {
                        page.flags.push(w.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    page
}

/// Every command path of the CLI, `[]` (the top level) first.
fn command_paths() -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![vec![]];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        for c in help_page(&refs).commands {
            let mut p = path.clone();
            p.push(c);
            out.push(p);
        }
        i += 1;
    }
    out
}

fn docs_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src")
}

fn read_doc(name: &str) -> String {
    let p = docs_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The markdown headings of `text`: (level, title without backticks, line index).
fn headings(text: &str) -> Vec<(usize, String, usize)> {
    let mut out = Vec::new();
    for (i, line) in outside_fences(text) {
        let level = line.chars().take_while(|c| *c == '#').count();
        if level > 0 && line[level..].starts_with(' ') {
            out.push((level, line[level + 1..].replace('`', ""), i));
        }
    }
    out
}

/// The text under the first heading `matches` accepts, up to the next
/// heading of the same or a higher level.
fn section<'a>(text: &'a str, matches: impl Fn(&str) -> bool) -> Option<String> {
    let hs = headings(text);
    let lines: Vec<&'a str> = text.lines().collect();
    let (k, (level, _, start)) = hs.iter().enumerate().find(|(_, h)| matches(&h.1))?;
    let end = hs[k + 1..]
        .iter()
        .find(|h| h.0 <= *level)
        .map_or(lines.len(), |h| h.2);
    Some(lines[*start..end].join("\n"))
}

/// `lifeline PATH` as a whole word in a heading (`lifeline journal` is in
/// `lifeline journal verify`, `lifeline man` is not in `lifeline manual`).
fn names_command(heading: &str, path: &str) -> bool {
    let needle = format!("lifeline {path}");
    heading.match_indices(&needle).any(|(i, _)| {
        heading[i + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric() && c != '-')
    })
}

/// `word` in `text` as a whole token (`--json` is not in `--json-x`).
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let edge = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '-' && c != '_');
        edge(before) && edge(after)
    })
}

/// Everything the CLI reference lacks: a command without its own section,
/// or a flag, argument or value its section does not name.
fn missing_from_cli_reference(cli_md: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let paths = command_paths();
    let globals = help_page(&[]).flags;
    match section(cli_md, |h| h.contains(GLOBAL_OPTIONS_HEADING)) {
        None => missing.push(format!("a '{GLOBAL_OPTIONS_HEADING}' section")),
        Some(s) => {
            for f in &globals {
                if !mentions(&s, f) {
                    missing.push(format!("global flag {f} (in '{GLOBAL_OPTIONS_HEADING}')"));
                }
            }
        }
    }
    for path in paths.iter().filter(|p| !p.is_empty()) {
        let name = path.join(" ");
        let Some(s) = section(cli_md, |h| names_command(h, &name)) else {
            missing.push(format!("command 'lifeline {name}' (a heading naming it)"));
            continue;
        };
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let page = help_page(&refs);
        for f in page.flags.iter().filter(|f| !globals.contains(f)) {
            if !mentions(&s, f) {
                missing.push(format!("'lifeline {name}': flag {f}"));
            }
        }
        for a in &page.arguments {
            if !mentions(&s, a) {
                missing.push(format!("'lifeline {name}': argument {a}"));
            }
        }
        for v in &page.values {
            if !mentions(&s, v) {
                missing.push(format!("'lifeline {name}': value {v}"));
            }
        }
    }
    missing
}

#[test]
fn help_parser_reads_commands_arguments_flags_and_values() {
    let page = parse_help(
        "About\n\nUsage: x [OPTIONS] <A>\n\nCommands:\n  go    Do it\n  help  Print this message\n\n\
         Arguments:\n  <A>      an arg\n  [B]...   more [possible values: one, two]\n\n\
         Options:\n  -o, --output <FILE>  out\n      --dry-run        dry\n      --format <F>\n          Possible values:\n          - md:   Markdown\n          - json: JSON\n\n  -v, --verbose...  more\n  -h, --help  Print help\n",
    );
    assert_eq!(page.commands, ["go"]);
    assert_eq!(page.arguments, ["A", "B"]);
    assert_eq!(
        page.flags,
        ["-o", "--output", "--dry-run", "--format", "-v", "--verbose"]
    );
    assert_eq!(page.values, ["one", "two", "md", "json"]);
}

#[test]
fn cli_reference_check_names_what_is_missing() {
    // A reference that lacks things must be reported, item by item: the
    // check below cannot pass vacuously.
    let partial = "# CLI\n\n## Global options\n\n`--inventory` `-i`\n\n## `lifeline run`\n\n`--dry-run` RUNBOOK\n\n## `lifeline manual`\n\n`--dir`\n\n## `lifeline export`\n\nINCIDENT `--format` md json `-o` `--output` `--tz`\n";
    let missing = missing_from_cli_reference(partial);
    for want in [
        "global flag --state-dir",
        "'lifeline run': flag --answers",
        "'lifeline run': flag --resume",
        "command 'lifeline man'",
        "command 'lifeline journal verify'",
        "'lifeline export': value html",
    ] {
        assert!(
            missing.iter().any(|m| m.starts_with(want)),
            "'{want}' not reported: {missing:#?}"
        );
    }
    assert!(
        !missing.iter().any(|m| {
            m.contains("--dry-run")
                || m.contains("global flag --inventory")
                || m.contains("'lifeline export': flag")
                || m.contains("value md")
        }),
        "{missing:#?}"
    );
}

#[test]
fn every_command_flag_argument_and_value_is_in_the_cli_reference() {
    let missing = missing_from_cli_reference(&read_doc("cli.md"));
    assert!(
        missing.is_empty(),
        "docs/src/cli.md does not document:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_runbook_action_and_its_arguments_are_in_the_runbooks_chapter() {
    use lifeline::runbook::Action;
    let text = read_doc("runbooks.md");
    let mut missing = Vec::new();
    for a in Action::ALL {
        let name = a.as_str();
        let Some(s) = section(&text, |h| {
            mentions(h, name) && h.to_ascii_lowercase().starts_with("action")
        }) else {
            missing.push(format!("action '{name}' (a heading 'action `{name}`')"));
            continue;
        };
        for arg in a.args() {
            if !s.contains(&format!("`{arg}`")) {
                missing.push(format!("action '{name}': argument `{arg}`"));
            }
        }
        for field in a.outputs().unwrap_or_default() {
            if !s.contains(&format!("`{field}`")) {
                missing.push(format!("action '{name}': outcome field `{field}`"));
            }
        }
        for r in a.forced_requires() {
            if !s.contains(&format!("`{}`", r.as_str())) {
                missing.push(format!("action '{name}': requirement `{}`", r.as_str()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/src/runbooks.md does not document:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_console_key_action_and_command_is_in_the_console_chapter() {
    use lifeline::tui::keys::{Action, KeyMap};
    use lifeline::tui::strings::HELP_COMMANDS;
    let text = read_doc("console.md");
    let map = KeyMap::default();
    let mut missing = Vec::new();
    for a in Action::ALL {
        if !text.contains(&format!("`{}`", a.name())) {
            missing.push(format!("key map action `{}`", a.name()));
        }
        for k in map.keys(a) {
            if !text.contains(&format!("`{k}`")) {
                missing.push(format!("key `{k}` ({})", a.name()));
            }
        }
    }
    for (cmd, _) in HELP_COMMANDS {
        for c in cmd.split_whitespace().filter(|w| w.starts_with(':')) {
            if !mentions(&text, c) {
                missing.push(format!("command line '{c}'"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/src/console.md does not document:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_chapter_is_in_the_book_summary_and_every_summary_link_exists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let toml = std::fs::read_to_string(root.join("book.toml")).unwrap();
    assert!(
        toml.contains("[book]") && toml.contains("src = \"src\""),
        "{toml}"
    );
    let summary = read_doc("SUMMARY.md");
    let linked: Vec<String> = summary
        .split("](")
        .skip(1)
        .map(|s| s.split(')').next().unwrap().to_string())
        .collect();
    let mut problems = Vec::new();
    for l in &linked {
        if !docs_dir().join(l).is_file() {
            problems.push(format!("SUMMARY.md links '{l}', which does not exist"));
        }
    }
    for e in std::fs::read_dir(docs_dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".md") && name != "SUMMARY.md" && !linked.contains(&name) {
            problems.push(format!("'{name}' is not in SUMMARY.md"));
        }
    }
    // Links of the manual, README.md and ARCHITECTURE.md point at files and
    // headings that exist.
    problems.extend(broken_links());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// mdBook's id of a heading: lower case, spaces to `-`, punctuation dropped.
fn anchor_of(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The lines of `text` (with their index) outside fenced code blocks; a
/// fence of four backticks may hold fences of three.
fn outside_fences(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let ticks: String = line.chars().take_while(|c| *c == '`').collect();
        if ticks.len() >= 3 {
            match &fence {
                None => fence = Some(ticks),
                Some(f) if ticks.len() >= f.len() && line.trim_end() == ticks => fence = None,
                Some(_) => {}
            }
            continue;
        }
        if fence.is_none() {
            out.push((i, line));
        }
    }
    out
}

/// Link targets of `text` outside fenced code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, line) in outside_fences(text) {
        for part in line.split("](").skip(1) {
            if let Some(t) = part.split(')').next() {
                out.push(t.to_string());
            }
        }
    }
    out
}

/// Every local link that points at a missing file or heading.
fn broken_links() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for e in std::fs::read_dir(docs_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if path.is_empty() {
                f.clone()
            } else {
                f.parent().unwrap().join(path)
            };
            let name = f.strip_prefix(root).unwrap().display().to_string();
            if !dest.exists() {
                // docs/dev/testing.md is written by the tests' part of issue 20.
                if !dest.ends_with("docs/dev/testing.md") {
                    problems.push(format!("{name}: a link to '{target}': no such file"));
                }
                continue;
            }
            if let Some(a) = anchor {
                let dest_text = std::fs::read_to_string(&dest).unwrap_or_default();
                if !headings(&dest_text).iter().any(|h| anchor_of(&h.1) == a) {
                    problems.push(format!("{name}: a link to '{target}': no such heading"));
                }
            }
        }
    }
    problems
}

/// The keys a `file:line:col: 'KEY': unknown field ..., expected one of
/// `a`, `b`` diagnostic lists, for the line naming `key`.
fn expected_keys(stderr: &str, key: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("'{key}': unknown field")))
        .unwrap_or_else(|| panic!("no diagnostic for '{key}':\n{stderr}"));
    let list = line
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("no key list: {line}"));
    list.split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .collect()
}

/// `lifeline ARGS` with a bad file: its stderr (the diagnostics).
fn diagnostics(args: &[&str]) -> String {
    let o = Command::new(LIFELINE).args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", support::stderr(&o));
    support::stderr(&o)
}

fn missing_keys(text: &str, heading: &str, keys: &[String], what: &str) -> Vec<String> {
    match section(text, |h| h.contains(heading)) {
        None => vec![format!("a section '{heading}'")],
        Some(s) => keys
            .iter()
            .filter(|k| !s.contains(&format!("`{k}`")))
            .map(|k| format!("{what}: `{k}`"))
            .collect(),
    }
}

#[test]
fn every_inventory_runbook_and_answers_key_is_documented() {
    // The key lists come from the parsers themselves: each file below has
    // one unknown key per table, and the diagnostic lists the known ones.
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv.toml");
    std::fs::write(
        &inv,
        "[[host]]\nname = \"a\"\ntransport = \"local\"\nx_host = 1\n\
         [[database]]\nname = \"d\"\nurl = \"postgres://u@h:5432/x\"\nx_database = 1\n\
         [[backups]]\nname = \"c\"\nhost = \"a\"\npath = \"/x\"\ndatabase = \"d\"\nx_backups = 1\n\
         [[service]]\nname = \"s\"\nhost = \"a\"\nkind = \"process\"\nx_service = 1\n",
    )
    .unwrap();
    let err = diagnostics(&["check", inv.to_str().unwrap()]);
    let inventory = read_doc("inventory.md");
    let mut missing = Vec::new();
    for table in ["host", "database", "backups", "service"] {
        let keys = expected_keys(&err, &format!("x_{table}"));
        missing.extend(missing_keys(
            &inventory,
            &format!("[[{table}]]"),
            &keys,
            &format!("inventory.md [[{table}]]"),
        ));
    }
    let rb = tmp.path().join("rb.toml");
    std::fs::write(
        &rb,
        "id = \"x\"\ntitle = \"t\"\nwhen = \"w\"\n[[param]]\nname = \"p\"\nkind = \"text\"\nx_param = 1\n\
         [[step]]\nid = \"s\"\naction = \"note\"\nexplain = \"e\"\nx_step = 1\n",
    )
    .unwrap();
    let err = diagnostics(&["run", rb.to_str().unwrap(), "--dry-run"]);
    let runbooks = read_doc("runbooks.md");
    for (key, what) in [("x_param", "[[param]] key"), ("x_step", "[[step]] key")] {
        missing.extend(missing_keys(
            &runbooks,
            "Runbooks",
            &expected_keys(&err, key),
            &format!("runbooks.md {what}"),
        ));
    }
    let answers = tmp.path().join("answers.toml");
    std::fs::write(&answers, "[x_answers]\n").unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let o = Command::new(LIFELINE)
        .args(["run", "rogue-sync-wipe", "--dry-run", "-i"])
        .arg(format!("{root}/assets/example-inventory.toml"))
        .arg("--answers")
        .arg(&answers)
        .output()
        .unwrap();
    let err = support::stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("unknown field `x_answers`"))
        .unwrap_or_else(|| panic!("no diagnostic for the answers file:\n{err}"));
    let sections: Vec<String> = line
        .split("expected one of ")
        .nth(1)
        .unwrap()
        .split(", ")
        .map(|k| format!("[{}]", k.trim().trim_matches('`')))
        .collect();
    missing.extend(missing_keys(
        &runbooks,
        "Answers file",
        &sections,
        "runbooks.md answers file section",
    ));
    assert!(
        missing.is_empty(),
        "the manual does not document:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_journal_kind_is_in_the_journal_chapter() {
    use lifeline::engine::driver::kinds as run;
    use lifeline::journal::kinds as k;
    // Every kind a writer in the crate uses, by its constant (a renamed or
    // removed constant fails to compile here; a new one belongs here too).
    let kinds = [
        k::INCIDENT_OPENED,
        k::JOURNAL_REPAIRED,
        k::NOTE,
        k::STEP_STARTED,
        k::STEP_FINISHED,
        k::STEP_FAILED,
        k::STEP_SKIPPED,
        k::CONFIRMED,
        k::COMMAND,
        k::ALERT,
        k::IDENTITY_CHANGED,
        k::TABLE_RECREATED,
        k::HOSTKEY_ACCEPTED,
        k::PROBE,
        k::CHECKPOINT,
        k::JOURNAL_BROKEN,
        run::RUN_STARTED,
        run::RUN_FINISHED,
        run::BACKUP_CHOSEN,
        lifeline::actions::hosts::frozen::FROZEN,
        lifeline::actions::hosts::frozen::FROZEN_RESOLVED,
        lifeline::timeline::detect::ALERT_ACK,
        lifeline::export::analyze::DRILL_REPORT,
    ];
    let text = read_doc("journal.md");
    let table = section(&text, |h| h == "Record kinds").expect("a 'Record kinds' section");
    // The first cell of each row of the table names the kinds it documents.
    let first_cells: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| "))
        .filter_map(|l| l.split('|').nth(1))
        .collect();
    let missing: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|kind| !first_cells.iter().any(|c| c.contains(&format!("`{kind}`"))))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/src/journal.md 'Record kinds' has no row for: {missing:?}"
    );
}

#[test]
fn readme_is_a_front_page_that_links_into_the_manual() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines: the manual belongs in docs/src"
    );
    for chapter in ["docs/src/SUMMARY.md", "docs/src/cli.md", "ARCHITECTURE.md"] {
        assert!(
            links(&readme).iter().any(|l| l == chapter),
            "README.md does not link {chapter}"
        );
    }
}
