//! The four lab scenarios walked in the console as an operator does it:
//! `lifeline lab SCENARIO` in a private tmux server at 160x48, the
//! scenario's runbook driven from the keyboard through every decision
//! point, and what the screen shows asserted at each: the suggested
//! runbook and its reason, the plan before start, the stop plan, the hold
//! countdown, the backup candidates with their reasons, the restore
//! confirmation naming the backup, the swap (or merge) preview, the decoy
//! database (wrong-database), the migration history (migration-reset),
//! then the end and the terminal restored. One lab per test, shared with
//! nothing; holds shortened to 6 s (`support::quick_runbooks`).
//! `LIFELINE_WALK_CAPTURES=DIR` keeps each walk's screens in
//! `DIR/capture-walk-<scenario>.txt` and its HTML export in
//! `DIR/export-walk-<scenario>.html`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::{Duration, Instant};

use support::tmux::Tmux;

const LIFELINE: &str = env!("CARGO_BIN_EXE_lifeline");
/// One wait on the screen (the machine may be busy).
const DEADLINE: Duration = Duration::from_secs(120);
/// How a run that did every step ends.
const DONE: &str = "runbook finished: every step done";
/// The whole runbook, from `s` to "runbook finished".
const RUN_DEADLINE: Duration = Duration::from_secs(420);

/// The screens kept for the capture file, each under a heading.
struct Walk {
    scenario: &'static str,
    t: Tmux,
    screens: std::cell::RefCell<Vec<(String, String)>>,
    /// The test's directory (the drill's state is under `state/`).
    dir: std::path::PathBuf,
}

impl Walk {
    fn start(scenario: &'static str, dir: &std::path::Path) -> Walk {
        let registry = dir.join("registry");
        std::fs::create_dir_all(&registry).unwrap();
        let runbooks = support::quick_runbooks(dir, 6);
        let line = format!(
            "cd {d} && env TERM=xterm-256color LANG=C.UTF-8 NO_COLOR=1 LIFELINE_HEAD_ANCHORS=off TMPDIR={r} LIFELINE_RUNBOOKS={rb} {LIFELINE} --state-dir {d}/state lab {scenario} 2>{d}/err",
            d = dir.display(),
            r = registry.display(),
            rb = runbooks.display(),
        );
        let t = Tmux::start(
            &format!("lifeline-walk-{scenario}"),
            &line,
            160,
            48,
            DEADLINE,
        );
        Walk {
            scenario,
            t,
            screens: Default::default(),
            dir: dir.to_path_buf(),
        }
    }

    fn keep(&self, what: &str, screen: &str) {
        self.screens
            .borrow_mut()
            .push((what.to_string(), screen.to_string()));
    }

    fn save(&self) {
        let Some(dir) = std::env::var_os("LIFELINE_WALK_CAPTURES") else {
            return;
        };
        let mut out = format!(
            "lifeline console walk, lab scenario '{}', tmux 160x48 (tests/it/console_walk.rs)\n",
            self.scenario
        );
        for (what, s) in self.screens.borrow().iter() {
            out.push_str(&format!("\n===== {what} =====\n{s}"));
        }
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join(format!("capture-walk-{}.txt", self.scenario)), out).unwrap();
        // The drill's HTML export, written after the run (the example
        // screenshot of scripts/export-example-png is taken from it).
        let state = self.dir.join("state");
        let incident = std::fs::read_dir(state.join("incidents"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .next()
            .unwrap();
        let o = support::lifeline(&state)
            .args(["export", &incident, "--format", "html", "--tz", "Z", "-o"])
            .arg(dir.join(format!("export-walk-{}.html", self.scenario)))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", support::stderr(&o));
    }
}

/// `Step 6/11  restore  ▶ running`: the action of the step on screen.
fn running_action(s: &str) -> Option<String> {
    let re = regex::Regex::new(r"Step \d+/\d+  ([a-z-]+)  ").unwrap();
    re.captures(s).map(|c| c[1].to_string())
}

/// What the typed confirmation expects.
fn expected_phrase(s: &str) -> Option<String> {
    let re = regex::Regex::new(r"Type the database name '([^']+)' to confirm").unwrap();
    re.captures(s).map(|c| c[1].to_string())
}

/// What each walk saw on the way.
#[derive(Default, Debug)]
struct Seen {
    stop_plan: bool,
    hold: Vec<(u64, u64)>,
    confirms: Vec<String>,
    restore: Option<String>,
    backups: Option<String>,
    swap: Option<String>,
    merge: Option<String>,
}

/// Drives the running runbook to `end` (any other end fails the walk):
/// the stop plan confirmed as
/// proposed, each typed confirmation answered with what it asks for after
/// its screen is kept; the backup panel read at the restore.
fn drive(w: &mut Walk, end: &str) -> Seen {
    let t = &w.t;
    let hold_re = regex::Regex::new(r"hold: (\d+) s left of (\d+) s").unwrap();
    let mut seen = Seen::default();
    let start = Instant::now();
    let mut last = String::new();
    loop {
        assert!(
            start.elapsed() < RUN_DEADLINE,
            "{}: the runbook did not finish; seen {seen:?}; screen:\n{last}",
            w.scenario
        );
        let s = t.capture();
        last = s.clone();
        if s.contains(end) {
            w.keep("the end of the run", &s);
            return seen;
        }
        assert!(
            !s.contains("runbook finished:"),
            "{}: the run ended early:\n{s}",
            w.scenario
        );
        if let Some(c) = hold_re.captures(&s) {
            let left: u64 = c[1].parse().unwrap();
            let of: u64 = c[2].parse().unwrap();
            if seen.hold.is_empty() {
                w.keep("the hold counting down", &s);
            }
            if seen.hold.last() != Some(&(left, of)) {
                seen.hold.push((left, of));
            }
        }
        if s.contains("y/Enter: yes, any other key: back") {
            t.keys(&["y"]);
            t.wait("the stop plan confirmed", |s| {
                !s.contains("y/Enter: yes, any other key: back")
            });
            continue;
        }
        if s.contains("╭ Stop plan ") && s.contains("Enter confirm") {
            seen.stop_plan = true;
            w.keep("the stop plan", &s);
            t.keys(&["Enter"]);
            t.wait("the stop plan's question", |s| {
                s.contains("y/Enter: yes") || !s.contains("╭ Stop plan ")
            });
            continue;
        }
        if s.contains("Confirm destructive step")
            && let (Some(action), Some(phrase)) = (running_action(&s), expected_phrase(&s))
        {
            seen.confirms.push(action.clone());
            w.keep(&format!("the typed confirmation of '{action}'"), &s);
            match action.as_str() {
                "restore" => {
                    // The backup and its loss come from the pick's journal
                    // record (the tailer brings it within a second or so).
                    let s = t.wait("the restore's backup and loss", |s| {
                        s.contains("RESTORES ") && s.contains("Confirm destructive step")
                    });
                    w.keep("the restore confirmation with its backup and loss", &s);
                    seen.restore = Some(s);
                    // Put it aside, read the backup panel, come back.
                    t.keys(&["Escape"]);
                    t.wait("the confirmation put aside", |s| {
                        !s.contains("Confirm destructive step")
                    });
                    t.command("backups");
                    let b = t.wait("the backup panel", |s| s.contains("candidate(s) judged"));
                    w.keep("the backup panel (:backups)", &b);
                    seen.backups = Some(b);
                    t.keys(&["Escape"]);
                    t.wait("the backup panel closed", |s| {
                        !s.contains("candidate(s) judged")
                    });
                    t.keys(&["4", "Enter"]);
                    t.wait("the confirmation again", |s| {
                        s.contains("Confirm destructive step")
                    });
                }
                "swap" => seen.swap = Some(s.clone()),
                "merge-tables" => seen.merge = Some(s.clone()),
                _ => {}
            }
            t.text(&phrase);
            t.keys(&["Enter"]);
            t.wait("the confirmation answered", |s| {
                !s.contains("Confirm destructive step")
                    || running_action(s).as_deref() != Some(action.as_str())
            });
            continue;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Opens the Runbook view, checks the suggestion and its reason, opens the
/// plan (nothing runs), starts it with `s`.
fn suggested_plan_and_start(w: &mut Walk, runbook: &str, reason: &str) {
    let t = &w.t;
    // The lab archives WAL, so choose-path would take the pitr path; this
    // walk is about the dump path's decisions (backup candidates, the
    // restore's loss): the operator forces it, journaled.
    t.command("path dump");
    let s = t.wait("the path forced", |s| s.contains("path journaled"));
    w.keep("the dump path forced", &s);
    let t = &w.t;
    t.keys(&["4"]);
    let s = t.wait("the suggested runbook", |s| {
        s.contains("suggested: ") && s.contains(&format!("▶ {runbook}  suggested"))
    });
    assert!(
        s.contains(&format!("▶ {runbook}  suggested")),
        "{}: {runbook} suggested:\n{s}",
        w.scenario
    );
    assert!(
        s.contains(reason),
        "{}: reason '{reason}':\n{s}",
        w.scenario
    );
    w.keep("the suggested runbook", &s);
    let t = &w.t;
    t.keys(&["Enter"]);
    let s = t.wait("the plan", |s| {
        s.contains(&format!("Plan: {runbook} (nothing has run)"))
            && s.contains("step(s) on database")
    });
    assert!(s.contains("step(s) on database 'main'"), "{s}");
    assert!(s.contains("ask for a typed confirmation first"), "{s}");
    w.keep("the plan before start", &s);
    w.t.keys(&["s"]);
}

/// What every walk asserts after the run: a stop plan, the hold counting
/// down, the restore confirmation naming the chosen backup, the candidates
/// with their reasons, then `db_after` on the Overview, `q`
/// tearing the lab down and the terminal restored.
fn common_end(w: &mut Walk, seen: &Seen, dir: &std::path::Path, db_after: &str) {
    assert!(seen.stop_plan, "{}: no stop plan: {seen:?}", w.scenario);
    assert!(
        seen.hold.len() >= 2 && seen.hold.iter().all(|(_, of)| *of == 6),
        "{}: the hold did not count down: {:?}",
        w.scenario,
        seen.hold
    );
    let restore = seen.restore.as_deref().expect("a restore confirmation");
    let backups = seen.backups.as_deref().unwrap();
    // The chosen backup, named in the panel, is the one the restore reads.
    let re = regex::Regex::new(r"chosen (tovplay_external_\d{8}_\d{6}\.sql)").unwrap();
    let chosen = re
        .captures(backups)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("{}: no chosen backup:\n{backups}", w.scenario));
    assert!(
        restore.contains(&format!("RESTORES {chosen}, taken ")) && restore.contains(": loses "),
        "{}: the restore confirmation names {chosen} and its loss:\n{restore}",
        w.scenario
    );
    assert!(backups.contains("loses "), "{backups}");
    assert!(
        backups.contains("excluded ") && backups.contains("why: "),
        "{backups}"
    );
    let t = &w.t;
    t.keys(&["1"]);
    let s = t.wait(&format!("the database '{db_after}'"), |s| {
        s.contains(db_after)
    });
    w.keep("the Overview after the run", &s);
    if std::env::var_os("LIFELINE_WALK_CAPTURES").is_some() {
        // The kept export shows the restored counts: two more sampling rounds.
        std::thread::sleep(Duration::from_secs(12));
    }
    w.t.keys(&["q"]);
    let s = w.t.assert_restored();
    assert!(s.contains("EXITED 0"), "{s}");
    let err = std::fs::read_to_string(dir.join("err")).unwrap();
    assert!(err.contains("lab stopped"), "{err}");
    w.save();
}

/// The drill's JSON export (after the console quit).
fn export_json(dir: &std::path::Path) -> serde_json::Value {
    let state = dir.join("state");
    let incident = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .next()
        .unwrap();
    let out = dir.join("export.json");
    let o = support::lifeline(&state)
        .args(["export", &incident, "--format", "json", "--tz", "Z", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn walk_rogue_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = Walk::start("rogue-sync", tmp.path());
    let s = w.t.wait("the drill console", |s| {
        s.contains("DRILL") && s.contains("sampled") && s.contains("db-realtime-sync")
    });
    w.keep("the console opens", &s);
    suggested_plan_and_start(&mut w, "rogue-sync-wipe", "sync-loop hazard(s) on lab");
    let seen = drive(&mut w, DONE);
    // start-services keeps every job it stopped off (they are the sync's
    // hazards): it starts nothing, so it asks no typed confirmation.
    assert_eq!(
        seen.confirms,
        ["restore", "reapply-owners", "swap"],
        "{seen:?}"
    );
    let swap = seen.swap.as_deref().unwrap();
    assert!(
        swap.contains("THE SWAP WOULD DISCARD") || swap.contains("the swap discards no row"),
        "{swap}"
    );
    common_end(&mut w, &seen, tmp.path(), "✓ healthy");
    // The export: tables the sync re-created keep the count sampled before
    // the damage (the lab's round), not 0.
    let v = export_json(tmp.path());
    let user = v["row_counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "User")
        .unwrap()
        .clone();
    assert_eq!(user["recreated"], true, "{user}");
    assert!(user["before"].as_i64().unwrap_or(0) > 0, "{user}");
    assert_eq!(user["lowest"], 0, "{user}");
}

#[test]
fn walk_wrong_database() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = Walk::start("wrong-database", tmp.path());
    // The decoy: same server, other case, beside the watched one.
    let s = w.t.wait("the decoy database", |s| {
        s.contains("DRILL") && s.contains("LOOK-ALIKE") && s.contains("'tovplay'")
    });
    assert!(s.contains("(case)"), "{s}");
    w.keep(
        "the console opens: the decoy beside the watched database",
        &s,
    );
    suggested_plan_and_start(&mut w, "table-wiped", "one table lost its rows");
    // The merge puts User back and then ends as damage, as documented
    // (docs/src/lab.md): game requests and sessions still point at users
    // created after the backup, which no backup holds.
    let seen = drive(
        &mut w,
        "runbook finished: step 'merge': foreign-key orphans after the merge",
    );
    let merge = seen.merge.as_deref().expect("a merge confirmation");
    assert!(
        merge.contains("public.User: live 0, restored") && merge.contains("to insert"),
        "the merge preview:\n{merge}"
    );
    assert!(merge.contains("merge public.User into TovPlay"), "{merge}");
    common_end(&mut w, &seen, tmp.path(), "main   ");
}

#[test]
fn walk_dropped_database() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = Walk::start("dropped-database", tmp.path());
    let s = w.t.wait("the missing database", |s| {
        s.contains("DRILL") && s.contains("MISSING")
    });
    w.keep("the console opens: the database is missing", &s);
    suggested_plan_and_start(&mut w, "database-missing", "is missing on its server");
    let seen = drive(&mut w, DONE);
    assert!(seen.confirms.contains(&"swap".to_string()), "{seen:?}");
    common_end(&mut w, &seen, tmp.path(), "✓ healthy");
}

#[test]
fn walk_migration_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = Walk::start("migration-reset", tmp.path());
    w.t.wait("the drill console", |s| {
        s.contains("DRILL") && s.contains("sampled")
    });
    // The migration history: 22 re-applied in one second.
    w.t.keys(&["m"]);
    let s = w.t.wait("the migration history", |s| {
        s.contains("RE-APPLIED: 22 migrations")
    });
    assert!(s.contains("within the same second"), "{s}");
    assert!(s.contains("_prisma_migrations"), "{s}");
    w.keep("the migration history (m)", &s);
    w.t.keys(&["Escape"]);
    w.t.wait("the history closed", |s| !s.contains("RE-APPLIED"));
    suggested_plan_and_start(
        &mut w,
        "migration-reset",
        "22 migrations re-applied at once",
    );
    let seen = drive(&mut w, DONE);
    let swap = seen.swap.as_deref().unwrap();
    assert!(
        swap.contains("THE SWAP WOULD DISCARD") || swap.contains("the swap discards no row"),
        "{swap}"
    );
    common_end(&mut w, &seen, tmp.path(), "✓ healthy");
}
