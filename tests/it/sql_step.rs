//! A non-destructive `sql` step cannot write: one statement, in a READ
//! ONLY transaction lifeline opens; SET, transaction control, COPY, DO and
//! several statements are refused, and every write attempt fails and is
//! reported, against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::os::unix::fs::PermissionsExt;

use chrono::Utc;
use lifeline::actions::DirectActions;
use lifeline::engine::{Answers, AnswersOperator, Engine, Params, RunContext, RunExit, State};
use lifeline::journal::{Journal, read_records};
use lifeline::redact::Redactor;
use lifeline::runbook::Runbook;

fn runbook(sql: &str) -> String {
    format!(
        "id = \"q\"\ntitle = \"Q\"\nwhen = \"w\"\n[[step]]\nid = \"look\"\naction = \"sql\"\nexplain = \"look\"\ndatabase = \"main\"\ndestructive = false\nsql = {}\n",
        toml::Value::String(sql.to_string())
    )
}

async fn run(inv: &str, sql: &str, dir: &std::path::Path) -> (RunExit, Vec<String>) {
    let jp = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&jp);
    let journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let ctx = RunContext {
        runbook: Runbook::parse(&runbook(sql), "q.toml").unwrap(),
        inventory: support::inventory(inv),
        params: Params::new(),
        incident: "i1".into(),
        incident_dir: dir.to_path_buf(),
        readonly: false,
        dry_run: false,
    };
    let mut engine = Engine::new(
        State::new(ctx, Utc::now()),
        DirectActions::default(),
        journal,
        AnswersOperator {
            answers: Answers::default(),
        },
        Redactor::new(),
    );
    let exit = engine.run(Utc::now()).await;
    let lines = read_records(&jp)
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.kind, r.summary))
        .collect();
    (exit, lines)
}

fn state(pg: &lifeline::sandbox::PgCluster) -> Vec<String> {
    vec![
        pg.psql(
            "app",
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'",
        )
        .unwrap(),
        pg.psql("app", "SELECT string_agg(a::text, ',' ORDER BY a) FROM public.t")
            .unwrap(),
        pg.psql(
            "postgres",
            "SELECT coalesce(string_agg(setconfig::text, ','), '') FROM pg_db_role_setting",
        )
        .unwrap(),
        pg.psql("app", "SELECT nextval('public.s')::text").unwrap(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_attempt_fails_and_is_reported() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE TABLE public.t (a int); INSERT INTO public.t VALUES (1), (2); CREATE SEQUENCE public.s",
    )
    .unwrap();
    let inv = support::db_inventory_text(&pg, "app", "");
    let d = tempfile::tempdir().unwrap();
    let marks = tempfile::tempdir().unwrap();
    std::fs::set_permissions(marks.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mark = marks.path().join("pwned");
    let m = mark.display().to_string();

    // The control: a read runs and reports its rows.
    let (exit, lines) = run(&inv, "SELECT count(*) AS n FROM public.t", d.path()).await;
    assert_eq!(exit, RunExit::Completed, "{lines:?}");

    let attempts = [
        "SET default_transaction_read_only = off; CREATE TABLE public.x (a int)".to_string(),
        "SET default_transaction_read_only = off".to_string(),
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE".to_string(),
        "SET transaction_read_only = off".to_string(),
        "CREATE TABLE public.x (a int)".to_string(),
        "INSERT INTO public.t VALUES (3)".to_string(),
        "UPDATE public.t SET a = a + 10".to_string(),
        "DELETE FROM public.t".to_string(),
        "WITH w AS (INSERT INTO public.t VALUES (4) RETURNING a) SELECT * FROM w".to_string(),
        "SELECT nextval('public.s')".to_string(),
        "SELECT set_config('transaction_read_only', 'off', false)".to_string(),
        format!("COPY (SELECT 1) TO PROGRAM 'touch {m}'"),
        format!("COPY public.t TO '{m}'"),
        format!("DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {m}'''; END $$"),
        "BEGIN".to_string(),
        "COMMIT".to_string(),
        "ROLLBACK".to_string(),
        "SELECT 1; CREATE TABLE public.x (a int)".to_string(),
        "SELECT 1 \\; CREATE TABLE public.x (a int)".to_string(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'postgres'"
            .to_string(),
        "ALTER DATABASE app SET default_transaction_read_only = off".to_string(),
        "CREATE ROLE evil SUPERUSER".to_string(),
        "DROP TABLE public.t".to_string(),
    ];
    let before = state(&pg);
    for sql in &attempts {
        let (exit, lines) = run(&inv, sql, d.path()).await;
        match &exit {
            RunExit::Failed { step, reason } => {
                assert_eq!(step, "look");
                assert!(!reason.is_empty());
            }
            other => panic!("'{sql}' was not refused: {other:?} {lines:?}"),
        }
        assert!(
            lines.iter().any(|l| l.starts_with("step-failed")),
            "'{sql}': the failure is journaled: {lines:?}"
        );
        assert!(!mark.exists(), "'{sql}' wrote a file");
        // nextval in `state` moves the sequence by one each time.
        let mut now = state(&pg);
        let mut was = before.clone();
        now.pop();
        was.pop();
        assert_eq!(now, was, "'{sql}' changed the database");
    }
    // The refusals before any connection say why.
    let (exit, _) = run(&inv, &attempts[0], d.path()).await;
    match exit {
        RunExit::Failed { reason, .. } => {
            assert!(reason.contains("more than one statement"), "{reason}");
            assert!(reason.contains("nothing was run"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// The inventory's statement_timeout_ms bounds probes only: a step's own
/// statement runs under the step's timeout, not the probes' (the one
/// connect path must not bring the probe timeout to a merge, swap or sql).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_statement_timeout_does_not_bound_a_step() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    let inv = support::db_inventory_text(&pg, "app", "statement_timeout_ms = 50");
    let d = tempfile::tempdir().unwrap();
    let (exit, lines) = run(&inv, "SELECT pg_sleep(0.4) IS NULL AS slept", d.path()).await;
    assert_eq!(exit, RunExit::Completed, "{lines:?}");
}
