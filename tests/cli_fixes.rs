//! Small CLI fixes of issue 19: `run --dry-run` prints a plan and exits 0
//! (also without an inventory, and with parameters still open) without a
//! run's "exit N" line; `check FILE` takes the inventory as a positional.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[test]
fn dry_run_without_an_inventory_prints_the_generic_plan_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let o = support::lifeline(&tmp.path().join("state"))
        .current_dir(tmp.path())
        .args(["run", "rogue-sync-wipe", "--dry-run"])
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    // Every step of the plan is printed, with what needs confirmation.
    for step in [
        "] brief (note)",
        "] stop-writers (stop-services)",
        "] restore (restore) DESTRUCTIVE",
        "] swap (swap) DESTRUCTIVE",
        "] done (note)",
    ] {
        assert!(out.contains(step), "{step} missing:\n{out}");
    }
    assert!(out.contains("confirm:"), "{out}");
    // A dry run ran nothing: no run's exit line.
    assert!(!out.contains("(exit "), "{out}");
    assert!(out.contains("nothing was run or changed"), "{out}");
    assert!(err.contains("no inventory"), "{err}");
    assert!(err.contains("without a value"), "{err}");
    assert!(!tmp.path().join("state").exists(), "a dry run wrote state");
}

#[test]
fn check_takes_the_inventory_as_a_positional_file() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv.toml");
    std::fs::write(&inv, "").unwrap();
    let o = support::lifeline(&tmp.path().join("state"))
        .current_dir(tmp.path())
        .arg("check")
        .arg(&inv)
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert!(
        out.contains(&format!("ok: {}: 0 host(s)", inv.display())),
        "{out}\n{err}"
    );
    assert!(!err.contains("unexpected argument"), "{err}");
    // A broken one is named with its line.
    std::fs::write(&inv, "[[host]]\nname = \n").unwrap();
    let o = support::lifeline(&tmp.path().join("state"))
        .current_dir(tmp.path())
        .arg("check")
        .arg(&inv)
        .output()
        .unwrap();
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("inv.toml"), "{err}");
    assert!(!err.contains("unexpected argument"), "{err}");
}
