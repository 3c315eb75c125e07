//! `lifeline check` validates every runbook; `lifeline runbooks` lists them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_runbooks_pass_check_against_the_example_inventory() {
    let d = tempfile::tempdir().unwrap();
    let out = support::lifeline(d.path())
        .current_dir(repo())
        .env_remove("LIFELINE_RUNBOOKS")
        .args(["check", "-i", "assets/example-inventory.toml"])
        .output()
        .unwrap();
    let text = support::stdout(&out) + &support::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(
            "ok: 7 runbook(s): database-missing, migration-reset, pitr-restore, predeploy-gate, rogue-sync-wipe, table-wiped-swap, table-wiped"
        ),
        "{text}"
    );
}

#[test]
fn a_broken_runbook_fails_check_with_file_line_col() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("rb");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("mine.toml"),
        "id = \"mine\"\ntitle = \"M\"\nwhen = \"w\"\n[[step]]\nid = \"a\"\naction = \"sql\"\nexplain = \"x\"\ndatabase = \"nosuch\"\ndestructive = false\nsql = \"SELECT 1\"\ntimeout = 5\n",
    )
    .unwrap();
    let out = support::lifeline(d.path())
        .current_dir(repo())
        .env("LIFELINE_RUNBOOKS", &dir)
        .args(["check", "-i", "assets/example-inventory.toml"])
        .output()
        .unwrap();
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mine.toml:11:1: 'timeout': unknown field `timeout`"),
        "{err}"
    );
    // Fixed the typo: now the inventory reference is checked.
    std::fs::write(
        dir.join("mine.toml"),
        "id = \"mine\"\ntitle = \"M\"\nwhen = \"w\"\n[[step]]\nid = \"a\"\naction = \"sql\"\nexplain = \"x\"\ndatabase = \"nosuch\"\ndestructive = false\nsql = \"SELECT 1\"\n",
    )
    .unwrap();
    let out = support::lifeline(d.path())
        .current_dir(repo())
        .env("LIFELINE_RUNBOOKS", &dir)
        .args(["check", "-i", "assets/example-inventory.toml"])
        .output()
        .unwrap();
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("mine.toml:8:12: 'database': no database named 'nosuch' in the inventory (known: 'main')"),
        "{err}"
    );
    // With an error anywhere, check does not claim the runbooks are fine.
    assert!(!support::stdout(&out).contains("ok: 5 runbook(s)"));
}

#[test]
fn runbooks_lists_id_title_and_when() {
    let d = tempfile::tempdir().unwrap();
    let out = support::lifeline(d.path())
        .current_dir(d.path())
        .env_remove("LIFELINE_RUNBOOKS")
        .arg("runbooks")
        .output()
        .unwrap();
    let text = support::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for id in [
        "rogue-sync-wipe",
        "table-wiped",
        "table-wiped-swap",
        "database-missing",
        "migration-reset",
        "predeploy-gate",
        "pitr-restore",
    ] {
        assert!(text.contains(&format!("{id}  ")), "{id} missing:\n{text}");
    }
    assert!(text.contains("Before every deploy"), "{text}");
}

#[test]
fn run_with_a_broken_runbook_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("inv.toml"),
        "[[host]]\nname = \"h\"\ntransport = \"local\"\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("rb.toml"),
        "id = \"x\"\ntitle = \"X\"\nwhen = \"w\"\n[[step]]\nid = \"a\"\naction = \"swap\"\nexplain = \"x\"\n",
    )
    .unwrap();
    let out = support::lifeline(&d.path().join("state"))
        .current_dir(d.path())
        .args(["-i", "inv.toml", "run", "rb.toml"])
        .output()
        .unwrap();
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rb.toml:5:6: 'database': step 'a': a swap step needs 'database'"),
        "{err}"
    );
    assert!(!d.path().join("state").exists());
}
