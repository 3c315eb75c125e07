//! Every lab scenario drilled headless with its shipped runbook and answers,
//! the way an operator rehearses it: `lifeline run RUNBOOK -i <lab>/lifeline.toml
//! --answers <lab>/answers.toml` against the real damage. Afterwards the live
//! database holds exactly the data of the backup the drill should pick
//! (checked against a psql restore of that backup), the damaged one is kept,
//! the journal verifies, the drill scores clean and the export's numbers
//! match the raw files. rogue-sync runs over a throwaway sshd (issue 6's
//! end-to-end: a writer, its restarter and watchdog stopped for good).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod export_support;
mod support;

use std::collections::BTreeMap;
use std::process::Command;

use export_support::{CheckOpts, check_export};
use lifeline::journal;
use lifeline::lab::{DB_NAME, Lab, LabOptions, Scenario, score};

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

fn drill(scenario: Scenario, ssh: bool) {
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
    let answers = std::fs::read_to_string(&lab.answers_path)
        .unwrap()
        .replacen(
            "[params]\n",
            &format!(
                "[params]\nincident_at = \"{}\"\n",
                lab.damage_at.to_rfc3339()
            ),
            1,
        );
    let answers_path = tmp.path().join("answers.toml");
    std::fs::write(&answers_path, answers).unwrap();
    let state = tmp.path().join("state");
    let o = support::lifeline(&state)
        .arg("-i")
        .arg(&lab.inventory_path)
        .args(["run", scenario.runbook(), "--answers"])
        .arg(&answers_path)
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert!(o.status.success(), "{scenario}: {out}\n{err}");

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
    assert_eq!(
        checksums(&lab, DB_NAME),
        checksums(&lab, check),
        "{scenario}: live data differs from {}",
        right.name
    );

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
    let want_kept = if scenario == Scenario::DroppedDatabase {
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
    let report = score(&lab.facts(), &records);
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
}

#[test]
fn rogue_sync_over_ssh_stops_every_writer_for_good_and_restores() {
    drill(Scenario::RogueSync, true);
}

#[test]
fn wrong_database_restores_user_into_the_right_database() {
    drill(Scenario::WrongDatabase, false);
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
