//! Migration history against a real cluster: each tool's table created
//! with the columns the tool itself creates, hostile migration names
//! (escapes, bidi, 255 characters), a schema name with a quote in it; the
//! 22 re-applied in one second flagged; `lifeline status` text and JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use lifeline::db::identity::migrations;
use lifeline::db::{DbHandle, MigrationTool};
use lifeline::redact::Redactor;

/// The tables as each tool creates them (Prisma 5, Flyway 9, Alembic,
/// Rails 7, Django 4, diesel 2, sqlx 0.7); Django's in a schema whose name
/// holds a quote and a statement.
const TABLES: &str = r#"
CREATE TABLE "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0);
CREATE TABLE "flyway_schema_history" (
    "installed_rank" INT NOT NULL PRIMARY KEY, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, "checksum" INT,
    "installed_by" VARCHAR(100) NOT NULL, "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INT NOT NULL, "success" BOOLEAN NOT NULL);
CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY);
CREATE TABLE ar_internal_metadata (key character varying NOT NULL PRIMARY KEY, value character varying,
    created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL);
CREATE SCHEMA "ops"";DROP TABLE ""User"";--";
CREATE TABLE "ops"";DROP TABLE ""User"";--".django_migrations (id bigserial PRIMARY KEY,
    app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamp with time zone NOT NULL);
CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL,
    run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);
CREATE TABLE "User" (id serial PRIMARY KEY, email text);
INSERT INTO "User" (email) SELECT 'u' || g FROM generate_series(1, 22) g;
"#;

/// Rows: Prisma's 22 written over 2023 and all applied at 05:00:00 today
/// (one name with ESC/BEL/bidi, one of 255 characters); Flyway's spread
/// over days; Django's six within 4 s (a burst, names without dates).
const ROWS: &str = r#"
INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
SELECT 'id' || g, 'c' || g, date_trunc('day', now()) + interval '5 hours' + g * interval '10 ms',
       CASE g WHEN 3 THEN E'20230310090000_evil\x1b[2J\x07\u202Egnp.exe'
              WHEN 4 THEN '20230401090000_' || repeat('long', 60)
              ELSE '2023' || lpad((1 + g / 2)::text, 2, '0') || '10090000_step_' || g END,
       date_trunc('day', now()) + interval '5 hours' + g * interval '10 ms', 1
  FROM generate_series(1, 22) g;
INSERT INTO "flyway_schema_history" VALUES
 (1, '1', 'init', 'SQL', 'V1__init.sql', 1, 'app', '2024-01-01 10:00:00', 12, true),
 (2, '2', 'add users', 'SQL', 'V2__add_users.sql', 2, 'app', '2024-02-01 10:00:00', 9, true),
 (3, '3', E'drop\x1b]0;owned\x07', 'SQL', 'V3.sql', 3, 'app', '2024-03-01 10:00:00', 9, true);
INSERT INTO alembic_version VALUES ('4f2a9c1e7b3d');
INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240202000000');
INSERT INTO ar_internal_metadata VALUES ('environment', 'production', now(), now());
INSERT INTO "ops"";DROP TABLE ""User"";--".django_migrations (app, name, applied)
SELECT 'auth', lpad(g::text, 4, '0') || '_initial', '2024-05-05 10:00:00+00'::timestamptz + g * interval '700 ms'
  FROM generate_series(1, 6) g;
INSERT INTO __diesel_schema_migrations VALUES ('20240101000000', '2024-01-02 00:00:00'), ('20240301000000', '2024-03-02 00:00:00');
INSERT INTO _sqlx_migrations VALUES (20240101000000, 'init', '2024-01-03 00:00:00+00', true, '\x00', 5);
"#;

fn handle(pg: &support::PgCluster, name: &str) -> DbHandle {
    let inv = support::inventory(&support::db_inventory_text(pg, name, ""));
    DbHandle::from_spec(inv.database("main").unwrap(), &Redactor::new()).unwrap()
}

#[tokio::test]
async fn every_tools_history_with_times_hostile_names_and_the_reapplied_run() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql("app", TABLES).unwrap();
    pg.psql("app", ROWS).unwrap();
    let found = migrations(&handle(&pg, "app")).await.unwrap();
    let of = |tool: MigrationTool| {
        found
            .iter()
            .find(|m| m.tool == Some(tool))
            .unwrap_or_else(|| panic!("{tool:?} not found: {found:#?}"))
    };
    let hist = |tool| {
        of(tool)
            .history
            .clone()
            .unwrap_or_else(|| panic!("{:#?}", of(tool)))
    };

    // Prisma: 22 in the same second, written over 2023: re-applied.
    let p = hist(MigrationTool::Prisma);
    assert_eq!((p.total, p.applied.len()), (22, 22));
    assert!(p.applied.iter().all(|a| a.applied_at.is_some()));
    assert_eq!(p.runs.len(), 1, "{:#?}", p.runs);
    assert_eq!(p.runs[0].count, 22);
    assert!(p.reapplied());
    assert!(
        p.runs[0]
            .why
            .contains("22 migrations applied within the same second")
            && p.runs[0].why.contains("written from 2023-01-10"),
        "{}",
        p.runs[0].why
    );
    // Hostile names: no control byte, no bidi override, capped.
    let evil = p.applied.iter().find(|a| a.name.contains("_evil")).unwrap();
    assert!(evil.name.contains("\\x1b[2J"), "{}", evil.name);
    let long = p
        .applied
        .iter()
        .find(|a| a.name.contains("longlong"))
        .unwrap();
    assert_eq!(long.name.chars().count(), lifeline::migrations::MAX_NAME);
    assert!(long.name.ends_with('…'));
    for h in found.iter().filter_map(|m| m.history.as_ref()) {
        for a in &h.applied {
            assert!(
                !a.name.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{:?}",
                a.name
            );
        }
    }

    // Flyway: times kept, spread over months: no run.
    let f = hist(MigrationTool::Flyway);
    assert_eq!(f.total, 3);
    assert!(f.runs.is_empty());
    assert_eq!(f.applied[0].name, "1 init");
    assert!(
        f.applied[2].name.contains("\\x1b]0;owned\\x07"),
        "{}",
        f.applied[2].name
    );

    // Alembic and Rails keep no times: said, never a run.
    for tool in [MigrationTool::Alembic, MigrationTool::Rails] {
        let h = hist(tool);
        assert!(h.applied.iter().all(|a| a.applied_at.is_none()));
        assert!(
            h.note.as_deref().unwrap().contains("keeps no time"),
            "{h:?}"
        );
        assert!(!h.keeps_times);
    }
    assert_eq!(hist(MigrationTool::Rails).total, 2);

    // Django, in the schema with a quote in its name: six within 4 s is a
    // run, but names carry no date: not said re-applied.
    let d = of(MigrationTool::Django);
    assert!(d.table.starts_with("ops\";DROP TABLE"), "{}", d.table);
    let dh = d.history.clone().unwrap();
    assert_eq!(dh.runs.len(), 1);
    assert!(!dh.reapplied());
    assert!(dh.runs[0].why.contains("within 3 s"), "{}", dh.runs[0].why);
    assert_eq!(dh.applied[0].name, "auth.0001_initial");

    // diesel and sqlx: their times.
    let di = hist(MigrationTool::Diesel);
    assert_eq!(di.applied.len(), 2);
    assert_eq!(
        di.applied[1].applied_at.unwrap().date_naive().to_string(),
        "2024-03-02"
    );
    let sq = hist(MigrationTool::Sqlx);
    assert_eq!(sq.applied[0].name, "20240101000000 init");
    assert!(sq.applied[0].applied_at.is_some());

    // The quoted schema name was never executed as SQL.
    let c = support::client(&pg, "app").await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM \"User\"", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 22);
}

#[test]
fn status_shows_the_history_in_text_and_json() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql("app", TABLES).unwrap();
    pg.psql("app", ROWS).unwrap();
    let state = tempfile::tempdir().unwrap();
    let inv = state.path().join("lifeline.toml");
    std::fs::write(&inv, support::db_inventory_text(&pg, "app", "")).unwrap();
    let run = |json: bool| {
        let mut c = support::lifeline(state.path());
        c.arg("-i").arg(&inv).args(["status", "--timeout", "15"]);
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        assert!(
            o.status.code().is_some(),
            "{}{}",
            support::stdout(&o),
            support::stderr(&o)
        );
        support::stdout(&o)
    };
    let text = run(false);
    for want in [
        "migrations (Prisma): 'public._prisma_migrations' 22 applied, last '20231210090000_step_22'",
        "▲ RE-APPLIED: 22 migrations applied within the same second",
        "migrations (Flyway): 'public.flyway_schema_history' 3 applied",
        "migrations (Alembic): 'public.alembic_version' 1 applied, last '4f2a9c1e7b3d'",
        "Alembic keeps no time of applying",
        "▲ APPLIED AT ONCE: 6 migrations applied within 3 s",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "control bytes in status text:\n{text:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let migs = v["databases"][0]["migrations"].as_array().unwrap();
    let prisma = migs.iter().find(|m| m["tool"] == "prisma").unwrap();
    assert_eq!(prisma["history"]["total"], 22);
    assert_eq!(prisma["history"]["runs"][0]["reapplied"], true);
    assert_eq!(prisma["history"]["runs"][0]["count"], 22);
    assert_eq!(prisma["history"]["applied"].as_array().unwrap().len(), 22);
    let alembic = migs.iter().find(|m| m["tool"] == "alembic").unwrap();
    assert_eq!(alembic["history"]["keeps_times"], false);
    assert!(alembic["history"]["applied"][0].get("applied_at").is_none());
}
