//! Every lab scenario drilled headless with its shipped runbook and answers,
//! the way an operator rehearses it: `lifeline run RUNBOOK -i <lab>/lifeline.toml
//! --answers <lab>/answers.toml` against the real damage. Afterwards the live
//! database holds exactly the data of the backup the drill should pick
//! (checked against a psql restore of that backup), the damaged one is kept,
//! the journal verifies, the drill scores clean and the export's numbers
//! match the raw files. rogue-sync runs over a throwaway sshd (issue 6's
//! end-to-end: a writer, its restarter and watchdog stopped for good).
//! wrong-database merges "User" back (table-wiped): the damaged table holds
//! the backup's rows, every other table exactly what it held before the fix,
//! scored as 0 rows lost in undamaged tables; the same world fixed with the
//! whole-database swap (table-wiped-swap) scores the rows the swap loses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::export_support;
use crate::support;

use std::collections::BTreeMap;
use std::process::Command;

use export_support::{CheckOpts, check_export};
use lifeline::journal;
use lifeline::lab::{DB_NAME, DrillReport, Lab, LabOptions, Scenario, score};

/// Ordered checksum of every table of `public` in `db`.
fn checksums(lab: &Lab, db: &str) -> BTreeMap<String, String> {
    let tables = lab
        .cluster
        .psql(
            db,
            "SELECT string_agg(tablename, '|' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
        )
        .unwrap();
    tables
        .split('|')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let sum = lab
                .cluster
                .psql(
                    db,
                    &format!(
                        "SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) FROM public.\"{t}\" x"
                    ),
                )
                .unwrap();
            (t.to_string(), sum)
        })
        .collect()
}

/// The shipped answers of wrong-database for the whole-database swap
/// (runbook table-wiped-swap) instead of the merge.
const WRONG_DATABASE_SWAP_ANSWERS: &str = "[params]\ndb = \"main\"\ncatalog = \"external\"\n\n[confirm]\nrestore = \"TovPlay\"\nowners = \"TovPlay\"\nswap = \"TovPlay\"\nstart = \"TovPlay\"\n";

fn drill(scenario: Scenario, ssh: bool) -> DrillReport {
    drill_with(scenario, ssh, scenario.runbook(), None)
}

/// How long stop-services holds: as shipped (120 s in rogue-sync-wipe, 60 s
/// elsewhere), or 12 s (`support::quick_runbooks`) where the drill is not
/// about the hold's length.
#[derive(Clone, Copy, PartialEq)]
enum Hold {
    Shipped,
    Quick,
}

fn drill_with(scenario: Scenario, ssh: bool, runbook: &str, answers: Option<&str>) -> DrillReport {
    drill_held(scenario, ssh, runbook, answers, Hold::Quick)
}

/// Drills `scenario` headless with `runbook` and the shipped answers (or
/// `answers`); returns the score, with the rows lost in undamaged tables.
fn drill_held(
    scenario: Scenario,
    ssh: bool,
    runbook: &str,
    answers: Option<&str>,
    hold: Hold,
) -> DrillReport {
    let merge = runbook == "table-wiped";
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let lab = Lab::build(LabOptions {
        scenario,
        ssh,
        registry: Some(registry),
        ..LabOptions::default()
    })
    .unwrap_or_else(|e| panic!("build lab '{scenario}': {e}"));
    let right = lab.right_backup().unwrap().clone();

    // The shipped answers, with the damage time the timeline would give.
    let answers = answers
        .map(str::to_string)
        .unwrap_or_else(|| std::fs::read_to_string(&lab.answers_path).unwrap())
        .replacen(
            "[params]\n",
            &format!(
                "[params]\nincident_at = \"{}\"\n",
                lab.damage_at.to_rfc3339()
            ),
            1,
        );
    // These drills are about the dump path: the lab archives WAL, so the
    // incident runbooks would choose the pitr path by themselves
    // (tests/it/lab_pitr.rs drills that one).
    let answers = if support::runbook_has_param(runbook, "path") {
        answers.replacen("[params]\n", "[params]\npath = \"dump\"\n", 1)
    } else {
        answers
    };
    let answers_path = tmp.path().join("answers.toml");
    std::fs::write(&answers_path, answers).unwrap();
    // Ground truth just before the fix, when the scenario leaves tables
    // undamaged: every live row, and each table's content.
    let partial = scenario.damaged_tables().is_some();
    let rows_before = partial.then(|| lab.rows_before_fix().unwrap());
    let sums_before = if partial {
        checksums(&lab, DB_NAME)
    } else {
        BTreeMap::new()
    };
    let state = tmp.path().join("state");
    let mut run = support::lifeline(&state);
    if hold == Hold::Quick {
        run.env("LIFELINE_RUNBOOKS", support::quick_runbooks(tmp.path(), 12));
    }
    let o = run
        .arg("-i")
        .arg(&lab.inventory_path)
        .args(["run", runbook, "--answers"])
        .arg(&answers_path)
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    if merge {
        // The merge commits the backup's users, then lists as damage (exit 3)
        // the rows that still point at users created after the backup: no
        // backup holds those users (the swap "fixes" them by dropping the
        // rows, counted below as lost).
        assert_eq!(o.status.code(), Some(3), "{scenario}: {out}\n{err}");
        assert!(
            out.contains("foreign-key orphans after the merge")
                || err.contains("foreign-key orphans after the merge"),
            "{scenario}: {out}\n{err}"
        );
    } else {
        assert!(o.status.success(), "{scenario}: {out}\n{err}");
    }

    // The live name serves exactly the right backup's data.
    let check = "drill_check";
    lab.cluster.create_db(check).unwrap();
    let st = Command::new(lab.cluster.bin("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(lab.cluster.conninfo(check))
        .arg("-f")
        .arg(&right.path)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", support::stderr(&st));
    let live = checksums(&lab, DB_NAME);
    let backup = checksums(&lab, check);
    if merge {
        // The merge: the damaged tables hold the backup's rows; every other
        // table exactly what it held just before the fix.
        let damaged = scenario.damaged_tables().unwrap();
        for (t, sum) in &live {
            let want = if damaged.contains(&t.as_str()) {
                &backup[t]
            } else {
                &sums_before[t]
            };
            assert_eq!(sum, want, "{scenario}: table {t} after the merge");
        }
        assert_eq!(
            live.keys().collect::<Vec<_>>(),
            sums_before.keys().collect::<Vec<_>>()
        );
    } else {
        assert_eq!(
            live, backup,
            "{scenario}: live data differs from {}",
            right.name
        );
    }

    // The damaged database is kept (unless the damage was its disappearance).
    let kept = lab
        .cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname LIKE '{DB_NAME}\\_\\_damaged\\_%'"
            ),
        )
        .unwrap();
    // A merge renames nothing: the damaged database is the live one, fixed.
    let want_kept = if scenario == Scenario::DroppedDatabase || merge {
        "0"
    } else {
        "1"
    };
    assert_eq!(kept, want_kept, "{scenario}: damaged databases kept");

    // The journal verifies, the drill scores clean, the export adds up.
    let incidents: Vec<_> = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(incidents.len(), 1);
    let jpath = incidents[0].join("journal.jsonl");
    assert!(journal::verify_file(&jpath).unwrap().intact());
    let records = journal::read_records(&jpath).unwrap();
    // Every stop-services step held as long as asked: 12 s, or the shipped
    // runbook's hold.
    let want = match hold {
        Hold::Quick => 12,
        Hold::Shipped => {
            lifeline::runbook::find(runbook, None)
                .unwrap()
                .steps
                .iter()
                .find(|s| s.action == lifeline::runbook::Action::StopServices)
                .unwrap()
                .hold_s
        }
    };
    let held: Vec<u64> = records
        .iter()
        .filter(|r| r.kind == journal::kinds::STEP_FINISHED)
        .filter_map(|r| r.data["held_s"].as_u64())
        .collect();
    assert!(
        !held.is_empty() && held.iter().all(|h| *h == want),
        "{scenario}: holds {held:?}, want {want} s"
    );
    let mut report = score(&lab.facts(), &records);
    if let Some(before) = &rows_before {
        report = report.with_live_rows(before, &lab.live_rows().unwrap());
    }
    // Ground truth: the writer's rows committed before the damage. The
    // backups predate the writer, so a swap to one loses every one of them;
    // the merge puts back "User" only and keeps them all.
    let truth = lab.truth_score().unwrap().unwrap();
    assert!(truth.committed_before_damage >= 20, "{truth:?}");
    let want_lost = if merge {
        0
    } else {
        truth.committed_before_damage
    };
    assert_eq!(truth.rows_lost, want_lost, "{scenario}: {truth:?}");
    let report = report.with_ground_truth(truth);
    assert!(
        report
            .to_string()
            .contains(&format!("rows lost: {want_lost} (of ")),
        "{report}"
    );
    assert_eq!(
        report.backup_used.as_deref(),
        Some(right.name.as_str()),
        "{scenario}: {report:?}"
    );
    assert!(report.verified, "{scenario}: {report:?}");
    // Every scenario's damage is detected from the journal (an alert, a
    // re-created table or a changed identity), never "time to detect: never".
    assert!(
        report.time_to_detect_s.is_some(),
        "{scenario}: no detect time: {report:?}"
    );
    if scenario == Scenario::DroppedDatabase {
        let missing: Vec<_> = records
            .iter()
            .filter(|r| r.kind == journal::kinds::ALERT && r.data["rule"] == "database-missing")
            .collect();
        assert_eq!(
            missing.len(),
            1,
            "{scenario}: one journaled alert: {records:?}"
        );
        assert_eq!(report.detected_by.as_deref(), Some(journal::kinds::ALERT));
    }
    assert!(report.restored_at.is_some(), "{scenario}: {report:?}");
    assert!(report.mistakes.is_empty(), "{scenario}: {report:?}");
    assert!(report.writers_left.is_empty(), "{scenario}: {report:?}");
    let lost = report.data_lost_s.unwrap();
    assert!(
        (lost - report.best_possible_loss_s.unwrap()).abs() < 1.0,
        "{report:?}"
    );
    let out_dir = tmp.path().join("export");
    std::fs::create_dir_all(&out_dir).unwrap();
    check_export(
        &incidents[0],
        &out_dir,
        &CheckOpts {
            inventory: Some(&lab.inventory_path),
            ..CheckOpts::default()
        },
    );

    // Hazards stay off after the run.
    if scenario == Scenario::RogueSync {
        assert!(
            lab.live_processes().iter().all(|p| !p.hazard),
            "{:?}",
            lab.live_processes()
        );
    }
    lab.teardown().unwrap();
    eprintln!("{scenario} with {runbook}:\n{report}");
    report
}

#[test]
fn rogue_sync_over_ssh_stops_every_writer_for_good_and_restores() {
    // The shipped 120 s hold: the restarter and the watchdog get every
    // chance to bring the writer back.
    drill_held(
        Scenario::RogueSync,
        true,
        Scenario::RogueSync.runbook(),
        None,
        Hold::Shipped,
    );
}

#[test]
fn wrong_database_restores_user_into_the_right_database() {
    assert_eq!(Scenario::WrongDatabase.runbook(), "table-wiped");
    let report = drill(Scenario::WrongDatabase, false);
    let lost = report.undamaged_rows_lost.clone().unwrap();
    assert!(!lost.is_empty() && !lost.contains_key("User"), "{lost:?}");
    assert_eq!(report.undamaged_rows_lost_total(), Some(0), "{report}");
    // The backup's rows went into User only.
    assert_eq!(
        report.rows_lost.keys().collect::<Vec<_>>(),
        ["User"],
        "{report}"
    );
    // Orphans of users no backup holds are left, named, not hidden.
    let damage = report.damage_left.clone().unwrap();
    assert!(damage.contains("GameRequest"), "{report}");
    assert!(!report.passed(), "{report}");
    assert!(
        report
            .to_string()
            .contains("rows lost in undamaged tables: 0\n"),
        "{report}"
    );
}

/// The same world fixed with the whole-database swap: the score shows the
/// rows written since the backup that the swap threw away (why the lab
/// drills the merge).
#[test]
fn wrong_database_with_the_swap_scores_the_rows_it_loses() {
    let report = drill_with(
        Scenario::WrongDatabase,
        false,
        "table-wiped-swap",
        Some(WRONG_DATABASE_SWAP_ANSWERS),
    );
    let total = report.undamaged_rows_lost_total().unwrap();
    assert!(total > 0, "{report}");
    assert!(!report.passed(), "{report}");
    assert!(
        report
            .to_string()
            .contains(&format!("rows lost in undamaged tables: {total}\n")),
        "{report}"
    );
}

#[test]
fn dropped_database_is_restored_under_its_name() {
    drill(Scenario::DroppedDatabase, false);
}

#[test]
fn migration_reset_restores_the_data_and_its_migration_history() {
    drill(Scenario::MigrationReset, false);
}

/// Two rogue-sync labs on one machine drill at the same time: the same
/// script names, the same process names, two clusters. Each drill stops only
/// its own lab's writers (pidfiles, evidence of its own database), both pass.
#[test]
fn two_labs_drill_at_the_same_time_without_touching_each_other() {
    let one = std::thread::spawn(|| drill(Scenario::RogueSync, false));
    let two = std::thread::spawn(|| drill(Scenario::RogueSync, true));
    let (a, b) = (one.join(), two.join());
    assert!(
        a.is_ok() && b.is_ok(),
        "a drill failed (see its panic above)"
    );
}
