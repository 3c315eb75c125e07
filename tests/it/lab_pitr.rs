//! The lab's WAL archive and ground truth, with real parts: every scenario's
//! cluster archives WAL (archive_command into the lab directory, or a real
//! pgBackRest repository) and has a base backup that ended before the
//! damage; `lifeline status` on the lab inventory lists it. The lab's
//! application writer logs every committed row; after a drill the lab
//! scores "rows lost" against that log. Drills with the shipped
//! `pitr-restore` runbook lose 0 rows and leave none of the damage's
//! effects; the dump path's real loss is scored (> 0).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use lifeline::journal;
use lifeline::lab::{
    ArchiveKind, DB_NAME, DrillReport, Lab, LabOptions, PITR_RUNBOOK, Scenario, score, writer,
};

/// The schema's shape: constraints, indexes and sequences of `public`.
fn schema(lab: &Lab, db: &str) -> String {
    lab.cluster
        .psql(
            db,
            "SELECT string_agg(x, ' ' ORDER BY x) FROM (
               SELECT 'con:' || conrelid::regclass || '.' || conname || ':' || contype::text AS x FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'
               UNION ALL SELECT 'idx:' || indexname FROM pg_indexes WHERE schemaname = 'public'
               UNION ALL SELECT 'seq:' || sequencename FROM pg_sequences WHERE schemaname = 'public'
               UNION ALL SELECT 'trg:' || tgname FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal) s",
        )
        .unwrap()
}

/// The schema of the right backup, restored with psql into a scratch database.
fn backup_schema(lab: &Lab) -> String {
    let right = lab.right_backup().unwrap();
    lab.cluster.create_db("schema_check").unwrap();
    let o = std::process::Command::new(lab.cluster.bin("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(lab.cluster.conninfo("schema_check"))
        .arg("-f")
        .arg(&right.path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    schema(lab, "schema_check")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn build(tmp: &Path, scenario: Scenario, ssh: bool, archive: ArchiveKind) -> Lab {
    let registry = tmp.join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    Lab::build(LabOptions {
        scenario,
        ssh,
        archive,
        registry: Some(registry),
        ..LabOptions::default()
    })
    .unwrap_or_else(|e| panic!("build lab '{scenario}': {e}"))
}

/// The archive is private, holds a base backup that ended before the
/// damage, WAL without gaps, and `lifeline status` lists it (text and JSON).
fn check_archive(lab: &Lab, tmp: &Path) {
    let a = lab.archive.as_ref().expect("the lab keeps an archive");
    for d in [&a.root, &a.wal_dir, &a.base_dir, &a.recovery_dir] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    let base = a.base_backup.clone().unwrap();
    assert!(a.base_backup_at.unwrap() < lab.damage_at);
    let inv = std::fs::read_to_string(&lab.inventory_path).unwrap();
    assert!(inv.contains("[[archive]]\nname = \"lab-wal\""), "{inv}");
    let o = support::lifeline(&tmp.join("status-state"))
        .arg("-i")
        .arg(&lab.inventory_path)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&support::stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}{}", support::stdout(&o), support::stderr(&o)));
    let arch = v["archives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "lab-wal")
        .unwrap_or_else(|| panic!("no lab-wal archive: {v}"));
    let b = &arch["status"]["backups"][0];
    assert!(b["dir"].as_str().unwrap().contains(&base), "{base}: {arch}");
    let stop: chrono::DateTime<chrono::Utc> = b["stop_time"].as_str().unwrap().parse().unwrap();
    assert!(
        stop <= lab.damage_at,
        "base backup ended {stop}, damage {}",
        lab.damage_at
    );
    let wal = &arch["status"]["wal"][0];
    assert!(wal["segments"].as_u64().unwrap() >= 1, "{arch}");
    assert_eq!(wal["gaps"].as_array().unwrap().len(), 0, "{arch}");
    let o = support::lifeline(&tmp.join("status-state"))
        .arg("-i")
        .arg(&lab.inventory_path)
        .arg("status")
        .output()
        .unwrap();
    let text = support::stdout(&o);
    assert!(
        text.contains("WAL ARCHIVES") && text.contains("lab-wal") && text.contains(&base),
        "{text}"
    );
}

/// The writer's log: private, every line a committed row, all of them
/// before the damage in the scenarios the lab damages itself.
fn check_truth(lab: &Lab) -> usize {
    let t = lab.truth.as_ref().expect("the lab keeps the writer's log");
    assert_eq!(t.table, "GameRequest");
    assert_eq!(mode(&t.log), 0o600);
    assert_eq!(mode(t.log.parent().unwrap()), 0o700);
    let from_file = writer::read_log(&t.log).unwrap();
    assert_eq!(from_file, t.rows);
    let before = t.before_damage().count();
    assert!(before >= 20, "{} rows before the damage", before);
    assert_eq!(lab.facts().truth.as_ref(), Some(t));
    before
}

/// Waits until the archive holds the WAL segment the server writes now
/// (archive_timeout switches it within 10 s of the damage).
fn wait_archived(lab: &Lab) {
    let seg = lab
        .cluster
        .psql("postgres", "SELECT pg_walfile_name(pg_current_wal_lsn())")
        .unwrap();
    let wal = &lab.archive.as_ref().unwrap().wal_dir;
    for _ in 0..300 {
        if wal.join(&seg).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("segment {seg} not archived within 30 s");
}

/// Runs `runbook` headless on the lab with `answers` (hold 12 s); returns
/// the exit code, output and the journal's records.
fn run(
    lab: &Lab,
    tmp: &Path,
    runbook: &str,
    answers: &Path,
) -> (Option<i32>, String, Vec<journal::Record>) {
    let state = tmp.join(format!("state-{runbook}"));
    let o = support::lifeline(&state)
        .env("LIFELINE_RUNBOOKS", support::quick_runbooks(tmp, 12))
        .arg("-i")
        .arg(&lab.inventory_path)
        .args(["run", runbook, "--answers"])
        .arg(answers)
        .output()
        .unwrap();
    let text = support::stdout(&o) + &support::stderr(&o);
    let inc = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("journal.jsonl");
    assert!(journal::verify_file(&inc).unwrap().intact());
    (o.status.code(), text, journal::read_records(&inc).unwrap())
}

fn scored(lab: &Lab, records: &[journal::Record]) -> DrillReport {
    let truth = lab.truth_score().unwrap().expect("a writer log to score");
    score(&lab.facts(), records).with_ground_truth(truth)
}

/// The drill of `scenario` with the shipped pitr-restore runbook and the
/// lab's shipped pitr answers: exit 0, rows lost 0 of the writer's log,
/// none of the damage's effects left, the damaged database kept.
fn pitr_drill(scenario: Scenario, ssh: bool) -> DrillReport {
    pitr_drill_with(scenario, ssh, PITR_RUNBOOK)
}

/// A drill of `scenario` with `runbook`: pitr-restore with the lab's pitr
/// answers, or an incident runbook with the shipped answers and nothing
/// forcing a path (it must choose the pitr path by itself).
fn pitr_drill_with(scenario: Scenario, ssh: bool, runbook: &str) -> DrillReport {
    let tmp = tempfile::tempdir().unwrap();
    let lab = build(tmp.path(), scenario, ssh, ArchiveKind::WalDir);
    check_archive(&lab, tmp.path());
    let before = check_truth(&lab);
    assert_eq!(
        std::fs::read_to_string(&lab.pitr_answers_path).unwrap(),
        scenario.pitr_answers()
    );
    let answers = if runbook == PITR_RUNBOOK {
        wait_archived(&lab);
        lab.pitr_answers_path.clone()
    } else {
        // The incident runbook waits for the archiver itself (choose-path).
        let a = tmp.path().join("incident-answers.toml");
        let text = std::fs::read_to_string(&lab.answers_path)
            .unwrap()
            .replacen(
                "[params]\n",
                &format!(
                    "[params]\nincident_at = \"{}\"\n",
                    lab.damage_at.to_rfc3339()
                ),
                1,
            );
        assert!(!text.contains("path ="), "{text}");
        std::fs::write(&a, text).unwrap();
        a
    };
    let partial = scenario.damaged_tables().is_some();
    let rows_before = partial.then(|| lab.rows_before_fix().unwrap());
    let (code, text, records) = run(&lab, tmp.path(), runbook, &answers);
    assert_eq!(code, Some(0), "{scenario}: {text}");
    if runbook != PITR_RUNBOOK {
        let chose = records
            .iter()
            .find(|r| r.kind == "step-finished" && r.data["action"] == "choose-path")
            .unwrap_or_else(|| panic!("no choose-path step: {text}"));
        assert_eq!(chose.data["path"], "pitr", "{text}");
        assert!(
            records
                .iter()
                .any(|r| r.kind == "step-skipped" && r.step.as_deref() == Some("pick")),
            "the dump path's pick must be skipped: {text}"
        );
    }
    let mut report = scored(&lab, &records);
    if let Some(before) = &rows_before {
        // The damage's own rows (its delete-audit) are not a loss.
        report = report.with_live_rows(before, &lab.live_rows().unwrap());
        assert_eq!(report.undamaged_rows_lost_total(), Some(0), "{report}");
    }
    let g = report.ground_truth.clone().unwrap();
    assert_eq!(g.committed_before_damage as usize, before);
    assert_eq!(g.rows_lost, 0, "{scenario}: {report}");
    let e = g.damage_effects.clone().unwrap();
    assert_eq!((e.missing, e.extra), (0, 0), "{scenario}: {report}");
    assert!(e.schema_extra.is_empty(), "{scenario}: {report}");
    assert!(report.to_string().contains("rows lost: 0 (of "), "{report}");
    assert!(report.passed(), "{scenario}: {report}");
    // The schema, read independently against the right backup's: every
    // constraint, index, sequence and trigger of the application is back,
    // and the lab's score names exactly what is not.
    let want = backup_schema(&lab);
    assert!(want.contains("GameRequest_senderId_fkey"), "{want}");
    let got = schema(&lab, DB_NAME);
    let want: BTreeSet<&str> = want.split(' ').collect();
    let got: BTreeSet<&str> = got.split(' ').collect();
    let missing: Vec<&&str> = want.difference(&got).collect();
    assert_eq!(
        missing.len(),
        e.schema_missing.len(),
        "{missing:?} vs {e:?}"
    );
    assert!(got.is_subset(&want), "{scenario}: {got:?}");
    // rogue-sync: the sync's pg_dump --clean stream drops the foreign keys
    // and the delete-audit triggers in transactions of their own before its
    // first storage drop; the target is before the first of them.
    assert!(e.none(), "{scenario}: {report}");
    assert!(missing.is_empty(), "{scenario}: {missing:?}");
    // The damaged database is kept beside the recovered one.
    let kept = lab
        .cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname LIKE '{DB_NAME}\\_\\_damaged\\_%'"
            ),
        )
        .unwrap();
    assert_eq!(kept, "1", "{scenario}");
    // The recovery cluster is stopped and kept in the lab's recovery dir, private.
    let rec = &lab.archive.as_ref().unwrap().recovery_dir;
    let dirs: Vec<_> = std::fs::read_dir(rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(mode(&dirs[0]), 0o700);
    assert!(!dirs[0].join("data/postmaster.pid").exists());
    eprintln!("{scenario} with {PITR_RUNBOOK}:\n{report}");
    lab.teardown().unwrap();
    report
}

#[test]
fn wrong_database_with_pitr_loses_no_row_of_the_writers_log() {
    pitr_drill(Scenario::WrongDatabase, false);
}

#[test]
fn migration_reset_with_pitr_loses_no_row_and_no_legacy_account() {
    pitr_drill(Scenario::MigrationReset, false);
}

#[test]
fn rogue_sync_over_ssh_with_pitr_loses_no_row_of_the_writers_log() {
    pitr_drill(Scenario::RogueSync, true);
}

/// The dump path on the same kind of lab: the swapped-in backup predates
/// the writer, so every row it committed before the damage is lost, and
/// the score says so (the RPO line stays).
/// Issue 17: the shipped rogue-sync-wipe runbook, with nothing forcing a
/// path, chooses the pitr path on a lab that archives WAL (waiting for the
/// archiver to receive the segment holding the damage) and loses no row.
#[test]
fn rogue_sync_wipe_chooses_the_pitr_path_by_itself_and_loses_no_row() {
    pitr_drill_with(Scenario::RogueSync, false, "rogue-sync-wipe");
}

#[test]
fn the_dump_path_scores_the_rows_it_really_loses() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = build(
        tmp.path(),
        Scenario::MigrationReset,
        false,
        ArchiveKind::WalDir,
    );
    let before = check_truth(&lab);
    let answers = tmp.path().join("answers.toml");
    std::fs::write(
        &answers,
        std::fs::read_to_string(&lab.answers_path)
            .unwrap()
            .replacen(
                "[params]\n",
                &format!(
                    "[params]\npath = \"dump\"\nincident_at = \"{}\"\n",
                    lab.damage_at.to_rfc3339()
                ),
                1,
            ),
    )
    .unwrap();
    let (code, text, records) = run(&lab, tmp.path(), "migration-reset", &answers);
    assert_eq!(code, Some(0), "{text}");
    let report = scored(&lab, &records);
    let g = report.ground_truth.clone().unwrap();
    assert_eq!(g.committed_before_damage as usize, before);
    assert_eq!(g.rows_lost as usize, before, "{report}");
    assert_eq!(g.lost_ids.len(), before.min(10));
    // The backup is older than the last minutes of history: those rows stay missing.
    let e = g.damage_effects.unwrap();
    assert!(e.missing > 0 && e.extra == 0, "{report}");
    // The dump holds the whole schema.
    assert!(
        e.schema_missing.is_empty() && e.schema_extra.is_empty(),
        "{report}"
    );
    let text = report.to_string();
    assert!(
        text.contains(&format!("rows lost: {before} (of {before} the writer")),
        "{text}"
    );
    assert!(text.contains("data lost (RPO):"), "{text}");
    let j = serde_json::to_value(&report).unwrap();
    assert_eq!(j["ground_truth"]["rows_lost"], before as u64);
    lab.teardown().unwrap();
}

/// The writer logs a row only once its COMMIT returned: a deferred
/// constraint trigger fails the COMMIT of every third row after its INSERT
/// succeeded; none of those is logged, and the log is exactly the rows the
/// table holds. A log written after the INSERT would name rows that never
/// committed.
#[test]
fn the_writer_logs_only_rows_whose_commit_returned() {
    let pg = support::PgCluster::start().unwrap();
    pg.create_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE TABLE \"GameRequest\" (id SERIAL PRIMARY KEY, \"senderId\" int NOT NULL, \"gameId\" int NOT NULL, status text NOT NULL, message text);
         CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id % 3 = 0 THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON \"GameRequest\" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("writer.log");
    // An existing log is never appended to.
    std::fs::write(&log, "1\t2026-12-06T06:00:00Z\n").unwrap();
    let e = writer::Writer::start(&pg.url("app"), 5, 3, &log).unwrap_err();
    assert!(e.to_string().contains("writer.log"), "{e}");
    std::fs::remove_file(&log).unwrap();

    let w = writer::Writer::start(&pg.url("app"), 5, 3, &log).unwrap();
    w.wait_for(30, Duration::from_secs(60)).unwrap();
    let (rows, last_error) = w.stop().unwrap();
    assert_eq!(mode(&log), 0o600);
    assert!(
        last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused at commit")),
        "{last_error:?}"
    );
    let logged: BTreeSet<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(logged.len(), rows.len());
    assert!(logged.iter().all(|id| id % 3 != 0), "{logged:?}");
    let held: BTreeSet<i64> = pg
        .psql("app", "SELECT id FROM \"GameRequest\" ORDER BY id")
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(logged, held);
    assert!(
        rows.windows(2).all(|w| w[0].at <= w[1].at),
        "commit times in order"
    );
    assert_eq!(
        pg.psql("app", "SELECT DISTINCT message FROM \"GameRequest\"")
            .unwrap(),
        writer::MARKER
    );
}

/// dropped-database: the lab archives its WAL and keeps the database's OID
/// from before the DROP. The shipped `pitr-restore` refuses today (its
/// recover-pitr reads the OID from the live server, where the database is
/// gone): exit 1, nothing started, nothing created. What works: the lab's
/// archive and OID bring every committed row back through the library
/// (`pitr::find_target` finds the DROP DATABASE, the recovered copy loaded
/// under the live name scores rows lost 0, no damage effect left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_database_is_recovered_from_the_labs_archive_and_oid() {
    use lifeline::pitr::{self, Damaged, RecoveryRequest};
    use lifeline::transport::{Host, LocalHost};

    let tmp = tempfile::tempdir().unwrap();
    let lab = build(
        tmp.path(),
        Scenario::DroppedDatabase,
        false,
        ArchiveKind::WalDir,
    );
    check_archive(&lab, tmp.path());
    let before = check_truth(&lab);
    let oid = lab.db_oid.expect("the OID from before the drop");
    assert_eq!(lab.facts().db_oid, Some(oid));
    wait_archived(&lab);

    let (code, text, records) = run(&lab, tmp.path(), PITR_RUNBOOK, &lab.pitr_answers_path);
    let rec = lab.archive.as_ref().unwrap().recovery_dir.clone();
    if code == Some(0) {
        // Built on another branch (issue-17-path): then it must score 0.
        let report = scored(&lab, &records);
        assert_eq!(report.ground_truth.unwrap().rows_lost, 0, "{text}");
    } else {
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains("step 'pitr'"), "{text}");
        assert_eq!(std::fs::read_dir(&rec).unwrap().count(), 0, "{text}");
        let dbs = lab
            .cluster
            .psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{DB_NAME}%'"),
            )
            .unwrap();
        assert_eq!(dbs, "0", "nothing created: {text}");
        let report = scored(&lab, &records);
        assert_eq!(
            report.ground_truth.unwrap().rows_lost as usize,
            before,
            "the database is still gone"
        );
    }
    if code == Some(0) {
        lab.teardown().unwrap();
        return;
    }

    // The library, with the lab's own evidence: the OID before the drop.
    let inv = lifeline::inventory::Inventory::load(&lab.inventory_path).unwrap();
    let spec = inv.archives[0].clone();
    let h = Host::Local(LocalHost::new("lab"));
    let status = pitr::list(&h, &spec).await.unwrap();
    let found = pitr::find_target(
        &h,
        &status,
        &Damaged {
            db_oid: oid,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        found.finding.destruction,
        pitr::Destruction::DropDatabase { db_oid: oid },
        "{:?}",
        found.finding
    );
    let plan = pitr::plan(&status, &found.target).unwrap();
    let r = pitr::recover(
        &h,
        &spec,
        &status,
        &plan,
        &RecoveryRequest {
            database: DB_NAME.into(),
            expect: Default::default(),
            name: "dropped".into(),
            wait: Duration::from_secs(120),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("recover: {e}"));
    lab.cluster.create_db(DB_NAME).unwrap();
    let o = std::process::Command::new(lab.cluster.bin("pg_restore"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "--no-owner", "-p"])
        .arg(lab.cluster.port().to_string())
        .args(["-d", DB_NAME])
        .arg(&r.dump)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    let g = lab.truth_score().unwrap().unwrap();
    assert_eq!(g.committed_before_damage as usize, before);
    assert_eq!(g.rows_lost, 0, "{g:?}");
    assert!(g.damage_effects.as_ref().is_some_and(|e| e.none()), "{g:?}");
    lab.teardown().unwrap();
}

/// `lab --pgbackrest`: a real pgBackRest repository in the lab directory
/// (stanza-create, archive-push as archive_command, a full backup before
/// the damage); the inventory names it `kind = "pgbackrest"` and `lifeline
/// status` lists its backup and WAL range. Its config is private.
#[test]
fn pgbackrest_lab_keeps_a_real_repository_listed_by_status() {
    let tmp = tempfile::tempdir().unwrap();
    let lab = build(
        tmp.path(),
        Scenario::WrongDatabase,
        false,
        ArchiveKind::Pgbackrest,
    );
    let a = lab.archive.as_ref().unwrap();
    assert_eq!(a.kind, ArchiveKind::Pgbackrest);
    let conf = a.config.clone().unwrap();
    assert_eq!(mode(&conf), 0o600);
    assert_eq!(mode(&a.root), 0o700);
    let label = a.base_backup.clone().unwrap();
    assert!(label.ends_with('F'), "{label}");
    check_truth(&lab);
    let inv = std::fs::read_to_string(&lab.inventory_path).unwrap();
    assert!(
        inv.contains("kind = \"pgbackrest\"\nstanza = \"lab\"\n"),
        "{inv}"
    );
    // The server pushes through pgBackRest: the archiver reports no failure.
    let failed = lab
        .cluster
        .psql("postgres", "SELECT failed_count FROM pg_stat_archiver")
        .unwrap();
    assert_eq!(failed, "0");
    let o = support::lifeline(&tmp.path().join("status-state"))
        .arg("-i")
        .arg(&lab.inventory_path)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&support::stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}{}", support::stdout(&o), support::stderr(&o)));
    let arch = &v["archives"][0];
    assert_eq!(arch["name"], "lab-wal", "{v}");
    let b = &arch["status"]["backups"][0];
    assert_eq!(b["dir"], label.as_str(), "{arch}");
    assert_eq!(b["format"], "pgbackrest full", "{arch}");
    let stop: chrono::DateTime<chrono::Utc> = b["stop_time"].as_str().unwrap().parse().unwrap();
    assert!(stop <= lab.damage_at, "{arch}");
    assert!(
        arch["status"]["wal"][0]["segments"].as_u64().unwrap() >= 1,
        "{arch}"
    );
    let o = support::lifeline(&tmp.path().join("status-state"))
        .arg("-i")
        .arg(&lab.inventory_path)
        .arg("status")
        .output()
        .unwrap();
    let text = support::stdout(&o);
    assert!(
        text.contains("lab-wal") && text.contains(&format!("base backup '{label}'")),
        "{text}"
    );
    // A recovery cluster left running in the lab's recovery directory (its
    // owner killed mid-recovery) is the lab's: teardown stops it.
    let left = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec -a 'postgres -D {}/left/data' sleep 300",
            a.recovery_dir.display()
        ))
        .spawn()
        .unwrap();
    let pid = left.id();
    std::thread::sleep(Duration::from_millis(200));
    assert!(lifeline::lab::procs::alive(pid));
    lab.teardown().unwrap();
    let mut left = left;
    let st = left.wait().unwrap();
    assert!(!st.success(), "killed by teardown: {st:?}");
}

/// `lifeline lab wrong-database --headless --runbook pitr-restore`: the
/// lab's shipped pitr answers, the drill scored by the binary: exit 0,
/// "rows lost: 0", PASSED, the drill-report JSON with the ground truth.
/// `--runbook` without `--headless` is a usage error.
#[test]
fn lab_headless_with_the_pitr_runbook_scores_rows_lost_0() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let state = tmp.path().join("state");
    let o = support::lifeline(&state)
        .args(["lab", "wrong-database", "--runbook", PITR_RUNBOOK])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", support::stderr(&o));
    assert!(support::stderr(&o).contains("--headless"));
    let o = support::lifeline(&state)
        .env("TMPDIR", &registry)
        .env("LIFELINE_RUNBOOKS", support::quick_runbooks(tmp.path(), 12))
        .args([
            "lab",
            "wrong-database",
            "--headless",
            "--runbook",
            PITR_RUNBOOK,
        ])
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("runbook pitr-restore"), "{out}");
    assert!(out.contains("rows lost: 0 (of "), "{out}");
    assert!(
        out.contains("damage effects left: 0 rows missing, 0 rows not there before the damage"),
        "{out}"
    );
    assert!(out.contains("rows lost in undamaged tables: 0\n"), "{out}");
    assert!(out.contains("result:                PASSED"), "{out}");
    let inc = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let recs = journal::read_records(&inc.join("journal.jsonl")).unwrap();
    let r = recs.iter().find(|r| r.kind == "drill-report").unwrap();
    assert_eq!(r.data["ground_truth"]["rows_lost"], 0, "{}", r.data);
    assert!(
        r.data["ground_truth"]["committed_before_damage"]
            .as_u64()
            .unwrap()
            >= 20,
        "{}",
        r.data
    );
}

/// Issue 17, the dropped database through the binary: `lifeline lab
/// dropped-database --headless` with the shipped database-missing runbook.
/// The lab writes its own sample from before the drop into the drill's
/// incident (as a watching console would have), so choose-path knows the
/// gone database's OID, finds its DROP DATABASE in the archived WAL, takes
/// the pitr path by itself, and the drill loses no committed row.
#[test]
fn lab_headless_recovers_a_dropped_database_on_the_pitr_path() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let state = tmp.path().join("state");
    let o = support::lifeline(&state)
        .env("TMPDIR", &registry)
        .env("LIFELINE_RUNBOOKS", support::quick_runbooks(tmp.path(), 12))
        .args(["lab", "dropped-database", "--headless"])
        .output()
        .unwrap();
    let out = support::stdout(&o);
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("runbook database-missing"), "{out}");
    assert!(out.contains("its OID"), "{out}");
    assert!(
        out.contains("comes from the newest timeline sample"),
        "{out}"
    );
    assert!(out.contains("path 'pitr'"), "{out}");
    assert!(out.contains("rows lost: 0 (of "), "{out}");
    assert!(out.contains("result:                PASSED"), "{out}");
    let inc = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let recs = journal::read_records(&inc.join("journal.jsonl")).unwrap();
    let r = recs.iter().find(|r| r.kind == "drill-report").unwrap();
    assert_eq!(r.data["ground_truth"]["rows_lost"], 0, "{}", r.data);
    assert!(
        r.data["ground_truth"]["committed_before_damage"]
            .as_u64()
            .unwrap()
            > 0,
        "{}",
        r.data
    );
}

/// `lifeline lab --pgbackrest` through the binary: the kept lab's inventory
/// names the pgBackRest repository; the flag reaches the build.
#[test]
fn lab_pgbackrest_flag_builds_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "bogus = 1\n").unwrap();
    let dir = tmp.path().join("lab");
    let o = support::lifeline(&tmp.path().join("state"))
        .env("TMPDIR", &registry)
        .args(["lab", "dropped-database", "--pgbackrest", "--dir"])
        .arg(&dir)
        .args(["--headless", "--answers"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.toml"), "{err}");
    let inv = std::fs::read_to_string(dir.join("lifeline.toml")).unwrap();
    assert!(inv.contains("kind = \"pgbackrest\""), "{inv}");
    assert!(dir.join("pitr/repo/backup/lab").is_dir());
    assert!(dir.join("truth/writer.log").is_file());
}
