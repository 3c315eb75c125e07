//! Small CLI fixes of issue 19: `run --dry-run` prints a plan and exits 0
//! (also without an inventory, and with parameters still open) without a
//! run's "exit N" line; `check FILE` takes the inventory as a positional.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

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

#[test]
fn incidents_lists_id_runbook_opened_and_state() {
    use lifeline::journal::{Entry, Journal, kinds};
    use lifeline::redact::Redactor;
    use lifeline::state::StateDir;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let st = StateDir::new(&state);
    let id = "20261206-013000-table-wiped";
    std::fs::create_dir_all(st.incident_dir(id)).unwrap();
    let mut j = Journal::open(&st.journal_path(id), id, "op", Redactor::new()).unwrap();
    j.append(
        Entry::new(kinds::INCIDENT_OPENED, "opened")
            .data(serde_json::json!({ "runbook": "table-wiped" })),
    )
    .unwrap();
    j.append(
        Entry::new("run-started", "run").data(serde_json::json!({ "runbook": "table-wiped" })),
    )
    .unwrap();
    // A finished run whose summary carries terminal escapes.
    j.append(Entry::new("run-finished", "done \u{1b}[2J now"))
        .unwrap();
    drop(j);

    let o = support::lifeline(&state).arg("incidents").output().unwrap();
    let out = support::stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let line = out.lines().find(|l| l.starts_with(id)).unwrap();
    assert!(line.contains("table-wiped"), "{line}");
    assert!(line.contains("finished: done"), "{line}");
    assert!(
        !out.contains('\u{1b}'),
        "escape reached the terminal: {out:?}"
    );

    let o = support::lifeline(&state)
        .args(["incidents", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["id"], id);
    assert_eq!(v[0]["runbook"], "table-wiped");
    assert!(v[0]["opened"].is_string());
    assert!(v[0]["records"].as_u64().unwrap() >= 3, "{v}");

    // No incidents at all: said in words, exit 0.
    let o = support::lifeline(&tmp.path().join("none"))
        .arg("incidents")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(support::stdout(&o).contains("no incidents"));
}

/// database-missing has a `jobs` parameter: the restore uses that many
/// connections (default 1); a value that is not a number is refused by name.
#[test]
fn database_missing_takes_a_jobs_parameter() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tmp = tempfile::tempdir().unwrap();
    let plan = |jobs: Option<&str>| {
        let answers = tmp.path().join("a.toml");
        let mut text = "[params]\nhost = \"prod\"\n".to_string();
        if let Some(j) = jobs {
            text.push_str(&format!("jobs = \"{j}\"\n"));
        }
        std::fs::write(&answers, text).unwrap();
        let o = support::lifeline(&tmp.path().join("state"))
            .current_dir(tmp.path())
            .arg("-i")
            .arg(format!("{root}/assets/example-inventory.toml"))
            .args(["run", "database-missing", "--dry-run", "--answers"])
            .arg(&answers)
            .output()
            .unwrap();
        (support::stdout(&o), support::stderr(&o))
    };
    let (out, err) = plan(Some("3"));
    assert!(out.contains("with 3 job(s)"), "{out}\n{err}");
    let (out, err) = plan(None);
    assert!(out.contains("with 1 job(s)"), "{out}\n{err}");
    let (out, err) = plan(Some("many"));
    assert!(
        out.contains("CANNOT RESOLVE: jobs: 'many' is not a number of connections"),
        "{out}\n{err}"
    );
}
