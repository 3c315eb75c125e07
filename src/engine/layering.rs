//! The direction of imports, held by a test: the engine's core and the TUI
//! name no module that reaches the world (hosts, databases, processes,
//! files of a lab); and "one of each": one identity type of a database.
//! Test-only; it reads the crate's own source files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules that touch the world or are front ends / the lab.
const ENGINE_MAY_NOT: &[&str] = &[
    "actions",
    "db",
    "transport",
    "probe",
    "restore",
    "catalog",
    "lab",
    "sandbox",
    "console",
    "tui",
    "headless",
];
/// The TUI draws from its model: no module that does I/O (the journal,
/// samples and timeline modules give it record types and kinds only).
const TUI_MAY_NOT: &[&str] = &[
    "actions",
    "backups",
    "catalog",
    "console",
    "db",
    "export",
    "headless",
    "incidents",
    "init",
    "lab",
    "pgbin",
    "probe",
    "restore",
    "sandbox",
    "state",
    "status",
    "transport",
];
/// Error TYPES of I/O modules the engine's `ActionError` keeps as typed
/// sources (issue 20: the journal records their class). Naming a type is
/// not reaching the world: no function of these modules may be called, and
/// only `engine/actions.rs` may name them.
const ENGINE_MAY_NAME_ERROR_TYPES: &[(&str, &str)] = &[
    ("actions.rs", "crate::db::DbError"),
    ("actions.rs", "crate::db::ErrorClass"),
    ("actions.rs", "crate::transport::TransportError"),
    ("actions.rs", "crate::restore::RestoreError"),
    ("actions.rs", "crate::transport::ErrorKind"),
    // The tests of that seam build a server message to classify.
    ("actions.rs", "crate::db::error::ServerMessage"),
];
/// External crates of the same kind.
const ENGINE_CRATES_MAY_NOT: &[&str] = &["tokio_postgres", "russh", "ratatui", "crossterm"];
const TUI_CRATES_MAY_NOT: &[&str] = &["tokio_postgres", "russh", "std::process", "tokio::process"];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "layering.rs")
        {
            out.push(p);
        }
    }
}

/// The source without `//` comments (doc comments name modules in prose).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A "//" inside a string literal is rare in these files and
            // would only hide a path after it on that line.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules a file names through `crate::` (plain paths and
/// `use crate::{a, b::c}` groups).
pub(crate) fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 1 => {
                        let id = ident_at(&group[j..]);
                        if !id.is_empty() {
                            found.insert(id);
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let id = ident_at(after);
            if !id.is_empty() {
                found.insert(id);
            }
        }
        rest = after;
    }
    found
}

/// Every (file, forbidden name) pair under `dir`.
fn violations(dir: &str, modules: &[&str], crates: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut files = Vec::new();
    rs_files(&root, &mut files);
    assert!(!files.is_empty(), "no source under {}", root.display());
    files.sort();
    let mut bad = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(&root).unwrap().display().to_string();
        let mut code = code_of(&text);
        if dir == "engine" {
            for (file, path) in ENGINE_MAY_NAME_ERROR_TYPES {
                if name == *file {
                    code = code.replace(path, "ALLOWED_ERROR_TYPE");
                }
            }
        }
        for m in crate_modules(&code) {
            if modules.contains(&m.as_str()) {
                bad.push(format!("src/{dir}/{name}: crate::{m}"));
            }
        }
        for c in crates {
            if code.contains(&format!("{c}::")) || code.contains(&format!("use {c};")) {
                bad.push(format!("src/{dir}/{name}: {c}"));
            }
        }
    }
    bad
}

#[test]
fn the_parser_sees_paths_and_groups() {
    let m = crate_modules(
        "use crate::{actions::hosts, db::{x, y}};\nlet a = crate::probe::discover(1);\nuse crate::inventory::X;",
    );
    let want: BTreeSet<String> = ["actions", "db", "probe", "inventory"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(m, want);
    assert!(
        code_of("// crate::actions::x\nlet y = 1; // crate::db")
            .find("crate::")
            .is_none()
    );
}

#[test]
fn the_engine_imports_no_io_module_front_end_or_lab() {
    let bad = violations("engine", ENGINE_MAY_NOT, ENGINE_CRATES_MAY_NOT);
    assert!(bad.is_empty(), "wrong-way imports:\n{}", bad.join("\n"));
}

#[test]
fn the_tui_imports_no_io_module() {
    let bad = violations("tui", TUI_MAY_NOT, TUI_CRATES_MAY_NOT);
    assert!(bad.is_empty(), "wrong-way imports:\n{}", bad.join("\n"));
}

#[test]
fn only_error_types_are_allowed_and_only_in_the_action_seam() {
    // A call into an allowed module is still a violation.
    let code = "fn f() { crate::db::connect(); }";
    assert!(crate_modules(code).contains("db"));
    let cleaned = code.replace("crate::db::DbError", "ALLOWED_ERROR_TYPE");
    assert!(crate_modules(&cleaned).contains("db"));
    // The type alone passes.
    let typed =
        "pub enum E { Db(crate::db::DbError) }".replace("crate::db::DbError", "ALLOWED_ERROR_TYPE");
    assert!(crate_modules(&typed).is_empty());
}

/// `struct ...Identity` definitions (a database's identity) in `files`,
/// comments skipped, as `path: line`.
fn identity_structs(files: &[PathBuf]) -> Vec<String> {
    let re = regex::Regex::new(r"\bstruct\s+[A-Za-z0-9_]*Identity\b").unwrap();
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for (n, line) in code_of(&text).lines().enumerate() {
            if re.is_match(line) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn one_identity_type_of_a_database() {
    let mut files = Vec::new();
    rs_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let found = identity_structs(&files);
    assert_eq!(
        found.len(),
        1,
        "one identity type (engine::types::DbIdentity), found:\n{}",
        found.join("\n")
    );
    assert!(
        found[0].contains("engine/types.rs") && found[0].contains("struct DbIdentity"),
        "{found:?}"
    );
    // The scan sees what it looks for: a second definition is counted, a
    // comment and a longer name (a wire form) are not.
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("x.rs");
    std::fs::write(
        &extra,
        "pub struct Identity {\n// struct OldIdentity {}\nstruct DbIdentityWire;\n#[derive(Debug)] pub(crate) struct SampleIdentity<'a> {}\n",
    )
    .unwrap();
    assert_eq!(identity_structs(&[extra]).len(), 2);
}
