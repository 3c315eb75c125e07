//! merge-tables against real PostgreSQL clusters: rows of a restored copy
//! put back into the live database without losing what live gained since.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use lifeline::actions::data::{merge_preview, merge_tables};
use lifeline::engine::Output;
use lifeline::engine::types::{DbTarget, MergePolicy, MergeRequest, MergeTx};
use support::PgCluster;

fn target(pg: &PgCluster, db: &str) -> DbTarget {
    let inv = support::inventory(&support::db_inventory_text(pg, db, ""));
    let spec = inv.database("main").unwrap().clone();
    DbTarget {
        name: "main".into(),
        url: spec.pg_url().unwrap().clone(),
        spec,
    }
}

fn req(pg: &PgCluster, live: &str, source: &str, tables: &[&str]) -> MergeRequest {
    MergeRequest {
        database: target(pg, live),
        source: source.into(),
        tables: tables.iter().map(|t| t.to_string()).collect(),
        replace: Vec::new(),
        policy: MergePolicy::LiveWins,
        transaction: MergeTx::One,
    }
}

fn sql(pg: &PgCluster, db: &str, s: &str) -> String {
    pg.psql(db, s)
        .unwrap_or_else(|e| panic!("psql on {db}: {e}\n{s}"))
}

/// Ordered content checksum of a table (`select` picks the rows).
fn sum(pg: &PgCluster, db: &str, table: &str, filter: &str) -> String {
    sql(
        pg,
        db,
        &format!(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM {table} t {filter}"
        ),
    )
}

/// The copy a restore step makes beside the live database (same server).
fn restored_copy(pg: &PgCluster, live: &str, name: &str) {
    sql(
        pg,
        "postgres",
        &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{live}\""),
    );
}

const LAB_TABLES: [&str; 8] = [
    "\"User\"",
    "\"UserProfile\"",
    "\"Game\"",
    "\"GameRequest\"",
    "\"ScheduledSession\"",
    "\"UserGamePreference\"",
    "\"AuditLog\"",
    "\"DeleteAudit\"",
];

/// Incident 2 on the lab's schema: a backup, writes to every other table
/// after it, then "User" emptied in replica mode (the way the sync did),
/// then new users registered after the damage.
#[tokio::test(flavor = "multi_thread")]
async fn table_wiped_merge_puts_back_the_backup_rows_and_loses_nothing_else() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    let schema: String = lifeline::lab::migrations()
        .iter()
        .map(|m| m.sql.clone())
        .collect();
    sql(&pg, "app", &schema);
    sql(
        &pg,
        "app",
        "INSERT INTO \"User\" (email, username, \"passwordHash\") SELECT 'u' || i || '@x', 'user ' || i, 'h' FROM generate_series(1, 22) i; \
         INSERT INTO \"UserProfile\" (\"userId\", \"displayName\") SELECT i, 'P' || i FROM generate_series(1, 11) i; \
         INSERT INTO \"Game\" (name, genre) SELECT 'g' || i, 'x' FROM generate_series(1, 12) i; \
         INSERT INTO \"GameRequest\" (\"senderId\", \"gameId\") SELECT i % 22 + 1, i % 12 + 1 FROM generate_series(1, 200) i;",
    );
    restored_copy(&pg, "app", "app__restore_1");
    // Written after the backup to tables that were not damaged.
    sql(
        &pg,
        "app",
        "INSERT INTO \"GameRequest\" (\"senderId\", \"gameId\", message) SELECT i % 22 + 1, i % 12 + 1, 'after backup' FROM generate_series(1, 240) i; \
         UPDATE \"Game\" SET genre = 'changed after backup' WHERE id = 3; \
         INSERT INTO \"ScheduledSession\" (\"organizerId\", title, \"scheduledFor\") SELECT i, 's' || i, now() FROM generate_series(1, 10) i;",
    );
    // The damage.
    sql(
        &pg,
        "app",
        "SET session_replication_role = replica; DELETE FROM \"User\";",
    );
    // Registered after the damage.
    sql(
        &pg,
        "app",
        "INSERT INTO \"User\" (email, username, \"passwordHash\") SELECT 'new' || i || '@x', 'new ' || i, 'h' FROM generate_series(1, 3) i;",
    );
    let before: Vec<String> = LAB_TABLES[1..]
        .iter()
        .map(|t| sum(&pg, "app", t, ""))
        .collect();
    let new_users = sum(&pg, "app", "\"User\"", "");
    let backup_users = sum(&pg, "app__restore_1", "\"User\"", "");

    let r = req(&pg, "app", "app__restore_1", &["public.User"]);
    let preview = merge_preview(&r).await.unwrap();
    assert_eq!(preview.len(), 1);
    let p = &preview[0];
    assert_eq!(p.table, "public.User");
    assert_eq!(p.key, vec!["id".to_string()]);
    assert_eq!(
        (
            p.live_rows,
            p.source_rows,
            p.to_insert,
            p.conflicts,
            p.live_only
        ),
        (3, 22, 22, 0, 3)
    );
    assert!(p.fk_violations.is_empty(), "{p:?}");
    // The preview wrote nothing.
    assert_eq!(sum(&pg, "app", "\"User\"", ""), new_users);

    let out = merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!(out.tables[0].inserted, 22);
    assert_eq!(out.tables[0].live_after, Some(25));
    assert!(out.orphans.is_empty(), "{:?}", out.orphans);

    // Every row of the backup, and every row registered after the damage.
    assert_eq!(sum(&pg, "app", "\"User\"", "WHERE id <= 22"), backup_users);
    assert_eq!(sum(&pg, "app", "\"User\"", "WHERE id > 22"), new_users);
    // Every other table holds exactly what it held (content, not counts).
    let after: Vec<String> = LAB_TABLES[1..]
        .iter()
        .map(|t| sum(&pg, "app", t, ""))
        .collect();
    assert_eq!(before, after);
    // No GameRequest points to a missing user any more.
    assert_eq!(
        sql(
            &pg,
            "app",
            "SELECT count(*) FROM \"GameRequest\" r WHERE NOT EXISTS (SELECT 1 FROM \"User\" u WHERE u.id = r.\"senderId\")"
        ),
        "0"
    );
    // The restored copy was only read.
    assert_eq!(sum(&pg, "app__restore_1", "\"User\"", ""), backup_users);
}

const SMALL: &str = "CREATE TABLE t (id serial PRIMARY KEY, v text NOT NULL);";

/// Source ids 1..5 'old'; live ids 3..7 with 3 and 4 changed, 5 the same.
fn conflict_world(pg: &PgCluster, live: &str, source: &str) {
    pg.create_db(source).unwrap();
    sql(pg, source, SMALL);
    sql(
        pg,
        source,
        "INSERT INTO t (id, v) SELECT i, 'old ' || i FROM generate_series(1, 5) i",
    );
    pg.create_db(live).unwrap();
    sql(pg, live, SMALL);
    sql(
        pg,
        live,
        "INSERT INTO t (id, v) SELECT i, CASE WHEN i IN (3, 4) THEN 'new ' ELSE 'old ' END || i FROM generate_series(3, 7) i",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_keeps_the_live_row_by_default_and_the_restored_one_on_request() {
    let pg = support::pg();
    conflict_world(&pg, "live1", "src1");
    let r = req(&pg, "live1", "src1", &["t"]);
    let p = merge_preview(&r).await.unwrap();
    assert_eq!(
        (
            p[0].live_rows,
            p[0].source_rows,
            p[0].to_insert,
            p[0].conflicts,
            p[0].conflicts_differ,
            p[0].live_only
        ),
        (5, 5, 2, 3, 2, 2)
    );
    let out = merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!((out.tables[0].inserted, out.tables[0].updated), (2, 0));
    assert_eq!(
        sql(
            &pg,
            "live1",
            "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM t"
        ),
        "1=old 1,2=old 2,3=new 3,4=new 4,5=old 5,6=old 6,7=old 7"
    );
    // The sequence was behind the keys (ids given explicitly): moved past them.
    assert!(
        out.sequences.iter().any(|s| s.contains("t_id_seq")),
        "{:?}",
        out.sequences
    );
    assert_eq!(sql(&pg, "live1", "SELECT nextval('t_id_seq')"), "8");

    conflict_world(&pg, "live2", "src2");
    let mut r = req(&pg, "live2", "src2", &["t"]);
    r.policy = MergePolicy::RestoredWins;
    let out = merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!((out.tables[0].inserted, out.tables[0].updated), (2, 3));
    assert_eq!(
        sql(
            &pg,
            "live2",
            "SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM t"
        ),
        "1=old 1,2=old 2,3=old 3,4=old 4,5=old 5,6=old 6,7=old 7"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_without_a_key_is_refused_and_replaced_whole_only_when_listed() {
    let pg = support::pg();
    for db in ["live", "src"] {
        pg.create_db(db).unwrap();
        sql(&pg, db, "CREATE TABLE log (msg text, at int)");
    }
    sql(
        &pg,
        "src",
        "INSERT INTO log SELECT 'm' || i, i FROM generate_series(1, 10) i",
    );
    sql(&pg, "live", "INSERT INTO log VALUES ('only live', 99)");
    let live_before = sum(&pg, "live", "log", "");

    let r = req(&pg, "live", "src", &["log"]);
    let e = merge_tables(&r, &Output::discard())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no primary key"), "{e}");
    assert!(e.contains("`replace`"), "{e}");
    assert!(merge_preview(&r).await.is_err());
    assert_eq!(sum(&pg, "live", "log", ""), live_before);

    // Named in `replace`: the typed confirmation says so, then TRUNCATE + copy.
    let mut r = req(&pg, "live", "src", &["log"]);
    r.replace = vec!["log".into()];
    assert_eq!(r.phrase(), "merge log into live; replace log");
    let p = merge_preview(&r).await.unwrap();
    assert!(p[0].replace);
    assert_eq!((p[0].live_rows, p[0].source_rows), (1, 10));
    merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!(sum(&pg, "live", "log", ""), sum(&pg, "src", "log", ""));
}

/// Hostile names (quotes, spaces, unicode) on an FK chain given child first.
const CHAIN: &str = r#"CREATE SCHEMA "we ird";
CREATE TABLE "we ird"."Us""er ü" (id int PRIMARY KEY, name text);
CREATE TABLE "we ird"."User Profile" (id int PRIMARY KEY, "user" int NOT NULL REFERENCES "we ird"."Us""er ü"(id), bio text);
CREATE TABLE "we ird"."Badge; DROP TABLE x" (id int PRIMARY KEY, profile int REFERENCES "we ird"."User Profile"(id));"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_fk_chain_with_hostile_names_is_merged_parents_first() {
    let pg = support::pg();
    for db in ["live", "src"] {
        pg.create_db(db).unwrap();
        sql(&pg, db, CHAIN);
    }
    sql(
        &pg,
        "src",
        r#"INSERT INTO "we ird"."Us""er ü" SELECT i, 'n' || i FROM generate_series(1, 20) i;
           INSERT INTO "we ird"."User Profile" SELECT i, i, 'b' || i FROM generate_series(1, 20) i;
           INSERT INTO "we ird"."Badge; DROP TABLE x" SELECT i, i FROM generate_series(1, 20) i;"#,
    );
    let tables = [
        r#""we ird"."Badge; DROP TABLE x""#,
        r#""we ird"."User Profile""#,
        r#""we ird"."Us""er ü""#,
    ];
    let r = req(&pg, "live", "src", &tables);
    let out = merge_tables(&r, &Output::discard()).await.unwrap();
    let order: Vec<&str> = out.tables.iter().map(|t| t.table.as_str()).collect();
    assert_eq!(
        order,
        vec![
            "we ird.Us\"er ü",
            "we ird.User Profile",
            "we ird.Badge; DROP TABLE x"
        ]
    );
    for t in [
        r#""we ird"."Us""er ü""#,
        r#""we ird"."User Profile""#,
        r#""we ird"."Badge; DROP TABLE x""#,
    ] {
        assert_eq!(sum(&pg, "live", t, ""), sum(&pg, "src", t, ""), "{t}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_parents_are_previewed_as_fk_violations_and_nothing_is_written() {
    let pg = support::pg();
    for db in ["live", "src"] {
        pg.create_db(db).unwrap();
        sql(&pg, db, CHAIN);
    }
    sql(
        &pg,
        "src",
        r#"INSERT INTO "we ird"."Us""er ü" SELECT i, 'n' || i FROM generate_series(1, 5) i;
           INSERT INTO "we ird"."User Profile" SELECT i, i, 'b' || i FROM generate_series(1, 5) i;"#,
    );
    let r = req(&pg, "live", "src", &[r#""we ird"."User Profile""#]);
    let p = merge_preview(&r).await.unwrap();
    assert_eq!(p[0].fk_violations.len(), 1, "{p:?}");
    assert!(p[0].fk_violations[0].contains("5 row(s)"), "{p:?}");
    let e = merge_tables(&r, &Output::discard())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("would break foreign keys"), "{e}");
    assert_eq!(
        sql(
            &pg,
            "live",
            r#"SELECT count(*) FROM "we ird"."User Profile""#
        ),
        "0"
    );
}

const FAILING: &str = r#"CREATE TABLE a (id int PRIMARY KEY, v text);
CREATE TABLE b (id int PRIMARY KEY, a int REFERENCES a(id), v text);
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.v = 'poison' THEN RAISE EXCEPTION 'row % refused', NEW.id; END IF; RETURN NEW; END $$;"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_midway_rolls_back_and_says_where() {
    let pg = support::pg();
    pg.create_db("src").unwrap();
    sql(&pg, "src", FAILING);
    sql(
        &pg,
        "src",
        "INSERT INTO a SELECT i, 'a' || i FROM generate_series(1, 10) i; \
         INSERT INTO b SELECT i, i, CASE WHEN i = 7 THEN 'poison' ELSE 'b' || i END FROM generate_series(1, 10) i;",
    );
    for (db, mode) in [("one", MergeTx::One), ("per", MergeTx::PerTable)] {
        pg.create_db(db).unwrap();
        sql(&pg, db, FAILING);
        sql(
            &pg,
            db,
            "CREATE TRIGGER refuse BEFORE INSERT ON b FOR EACH ROW EXECUTE FUNCTION refuse(); \
             INSERT INTO a VALUES (100, 'live'); INSERT INTO b VALUES (100, 100, 'live');",
        );
        let a_before = sum(&pg, db, "a", "");
        let b_before = sum(&pg, db, "b", "");
        let mut r = req(&pg, db, "src", &["b", "a"]);
        r.transaction = mode;
        let e = merge_tables(&r, &Output::discard())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("merge failed at table 'public.b'"), "{e}");
        assert!(e.contains("row 7 refused"), "{e}");
        assert_eq!(sum(&pg, db, "b", ""), b_before, "{db}");
        match mode {
            MergeTx::One => {
                assert!(e.contains("the live database is as before"), "{e}");
                assert_eq!(sum(&pg, db, "a", ""), a_before);
            }
            MergeTx::PerTable | MergeTx::Batches => {
                assert!(e.contains("already committed: public.a"), "{e}");
                assert_eq!(sql(&pg, db, "SELECT count(*) FROM a"), "11");
            }
        }
    }
}

const MERGE_DRILL: &str = r#"
id = "merge-drill"
title = "Merge a table back"
when = "tests"

[[param]]
name = "db"
kind = "database"
from = "inventory"

[[param]]
name = "tables"
kind = "text"
from = "ask"

[[step]]
id = "snap"
action = "snapshot"
explain = "keep the damaged state"
database = "{db}"

[[step]]
id = "merge"
action = "merge-tables"
explain = "put the lost rows back"
database = "{db}"
restored = "src1"
tables = "{tables}"
"#;

/// `lifeline run` headless: the preview is printed and journaled before the
/// typed confirmation, which must name the database and the tables.
#[test]
fn headless_merge_prints_and_journals_the_preview_and_wants_the_tables_typed() {
    let pg = support::pg();
    conflict_world(&pg, "live1", "src1");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("lifeline.toml"),
        support::db_inventory_text(&pg, "live1", ""),
    )
    .unwrap();
    std::fs::write(d.join("merge-drill.toml"), MERGE_DRILL).unwrap();
    let run = |answers: &str, state: &str| {
        std::fs::write(d.join("answers.toml"), answers).unwrap();
        let o = support::lifeline(&d.join(state))
            .current_dir(d)
            .env_remove("LIFELINE_RUNBOOKS")
            .args(["-i", "lifeline.toml", "run", "merge-drill.toml"])
            .args(["--answers", "answers.toml"])
            .output()
            .unwrap();
        let text = support::stdout(&o) + &support::stderr(&o);
        let incidents = d.join(state).join("incidents");
        let inc = std::fs::read_dir(&incidents)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let journal = std::fs::read_to_string(inc.path().join("journal.jsonl")).unwrap();
        (o.status.code(), text, journal)
    };
    let before = sum(&pg, "live1", "t", "");
    // The database name alone (what a swap wants) is not enough.
    let (code, text, journal) = run(
        "[params]\ndb = \"main\"\ntables = \"t\"\n[confirm]\nmerge = \"live1\"\n",
        "s1",
    );
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("typed 'live1' but the confirmation phrase is 'merge t into live1'"),
        "{text}"
    );
    assert!(
        text.contains("public.t: live 5, restored 5, to insert 2, in conflict 3 (2 differ; live row wins), live-only 2 (kept)"),
        "{text}"
    );
    assert!(journal.contains("step-failed"), "{journal}");
    assert_eq!(
        sum(&pg, "live1", "t", ""),
        before,
        "written without confirmation"
    );

    let (code, text, journal) = run(
        "[params]\ndb = \"main\"\ntables = \"t\"\n[confirm]\nmerge = \"merge t into live1\"\n",
        "s2",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        journal
            .contains("to insert 2, in conflict 3 (2 differ; live row wins), live-only 2 (kept)"),
        "{journal}"
    );
    assert!(journal.contains("\"inserted\":2"), "{journal}");
    assert_eq!(sql(&pg, "live1", "SELECT count(*) FROM t"), "7");
}

/// What a swap would leave behind: live rows the restored copy lacks, by
/// key, by count without a key, and whole tables the copy does not have.
#[tokio::test(flavor = "multi_thread")]
async fn the_swap_preview_counts_the_rows_it_would_discard_per_table() {
    use lifeline::engine::Actions;
    use lifeline::engine::types::{ActionRequest, SwapRequest};
    let pg = support::pg();
    conflict_world(&pg, "live1", "src1");
    sql(
        &pg,
        "src1",
        "CREATE TABLE \"lo g\" (msg text); INSERT INTO \"lo g\" VALUES ('a'); CREATE TABLE same (id int PRIMARY KEY); INSERT INTO same VALUES (1)",
    );
    sql(
        &pg,
        "live1",
        "CREATE TABLE \"lo g\" (msg text); INSERT INTO \"lo g\" SELECT 'm' || i FROM generate_series(1, 4) i; \
         CREATE TABLE same (id int PRIMARY KEY); INSERT INTO same VALUES (1); \
         CREATE TABLE newer (id int); INSERT INTO newer VALUES (1), (2)",
    );
    let db = target(&pg, "live1");
    let d = lifeline::actions::data::swap_discards(&db, "src1", &lifeline::redact::Redactor::new())
        .await
        .unwrap();
    let got: Vec<(String, i64, &str)> =
        d.iter().map(|x| (x.table.clone(), x.rows, x.how)).collect();
    assert_eq!(
        got,
        vec![
            ("public.lo g".to_string(), 3, "count"),
            ("public.newer".to_string(), 2, "table"),
            ("public.t".to_string(), 2, "key"),
        ]
    );
    // Wired into the confirmation of a swap step.
    let inv = support::inventory(&support::db_inventory_text(&pg, "live1", ""));
    let actions = lifeline::actions::RealActions::new(inv, lifeline::redact::Redactor::new());
    let lines = actions
        .live_preview(&ActionRequest::Swap(SwapRequest {
            database: db,
            restored: "src1".into(),
            damaged: Some("live1__damaged_x".into()),
        }))
        .await
        .unwrap();
    let text = lines.join("\n");
    assert!(text.contains("THE SWAP WOULD DISCARD"), "{text}");
    assert!(text.contains("public.t: 2 row(s)"), "{text}");
    assert!(text.contains("merge-tables"), "{text}");
}

/// `GENERATED ALWAYS AS IDENTITY` keys take the restored values, and the
/// identity sequence moves past them.
#[tokio::test(flavor = "multi_thread")]
async fn identity_keys_are_merged_with_their_values() {
    let pg = support::pg();
    for db in ["live", "src"] {
        pg.create_db(db).unwrap();
        sql(
            &pg,
            db,
            "CREATE TABLE ev (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)",
        );
    }
    sql(
        &pg,
        "src",
        "INSERT INTO ev (v) SELECT 'e' || i FROM generate_series(1, 10) i",
    );
    let r = req(&pg, "live", "src", &["ev"]);
    let out = merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!(out.tables[0].inserted, 10);
    assert_eq!(sum(&pg, "live", "ev", ""), sum(&pg, "src", "ev", ""));
    assert_eq!(
        sql(
            &pg,
            "live",
            "INSERT INTO ev (v) VALUES ('next') RETURNING id"
        ),
        "11"
    );
}

/// Orphans that were there before the merge (a replica-mode delete) and
/// that the restored copy cannot fix are listed after it, as damage; the
/// merged rows stay.
#[tokio::test(flavor = "multi_thread")]
async fn orphans_left_after_the_merge_are_listed_as_damage() {
    use lifeline::engine::types::{StepOutcome, Verdict};
    let pg = support::pg();
    for db in ["live", "src"] {
        pg.create_db(db).unwrap();
        sql(&pg, db, FAILING);
    }
    sql(
        &pg,
        "src",
        "INSERT INTO a SELECT i, 'a' || i FROM generate_series(1, 3) i",
    );
    sql(
        &pg,
        "live",
        "INSERT INTO a VALUES (1, 'a1'), (99, 'gone'); INSERT INTO b VALUES (1, 99, 'x'); \
         SET session_replication_role = replica; DELETE FROM a WHERE id = 99;",
    );
    let r = req(&pg, "live", "src", &["a"]);
    let out = merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!(out.tables[0].inserted, 2);
    assert_eq!(out.orphans.len(), 1, "{:?}", out.orphans);
    assert!(
        out.orphans[0].contains("1 orphan row(s)"),
        "{:?}",
        out.orphans
    );
    assert_eq!(sql(&pg, "live", "SELECT count(*) FROM a"), "3");
    let step: StepOutcome = out.into();
    assert!(matches!(step.verdict, Verdict::Damage(_)), "{step:?}");
}

/// Enums, composites and arrays of them have other OIDs in the restored
/// copy than in live (created in another order): their rows still come over.
#[tokio::test(flavor = "multi_thread")]
async fn user_defined_types_come_over_although_their_oids_differ() {
    let pg = support::pg();
    pg.create_db("src").unwrap();
    pg.create_db("live").unwrap();
    sql(
        &pg,
        "live",
        "CREATE TYPE pad AS ENUM ('x'); CREATE TYPE pad2 AS (a int)",
    );
    for db in ["src", "live"] {
        sql(
            &pg,
            db,
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE TYPE pair AS (a int, m mood); \
             CREATE TABLE m (id int PRIMARY KEY, now mood, past mood[], p pair)",
        );
    }
    sql(
        &pg,
        "src",
        "INSERT INTO m SELECT i, 'happy', ARRAY['sad', 'ok']::mood[], ROW(i, 'ok')::pair FROM generate_series(1, 5) i",
    );
    assert_ne!(
        sql(&pg, "src", "SELECT 'mood'::regtype::oid"),
        sql(&pg, "live", "SELECT 'mood'::regtype::oid")
    );
    let r = req(&pg, "live", "src", &["m"]);
    merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!(sum(&pg, "live", "m", ""), sum(&pg, "src", "m", ""));
}

/// A session that still holds the live table makes the merge fail with a
/// lock timeout instead of hanging, and nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_held_by_another_session_fails_the_merge_instead_of_hanging() {
    let pg = support::pg();
    conflict_world(&pg, "live1", "src1");
    let before = sum(&pg, "live1", "t", "");
    let holder = support::client(&pg, "live1").await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let r = req(&pg, "live1", "src1", &["t"]);
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        merge_tables(&r, &Output::discard()),
    )
    .await
    .expect("the merge hung on a held lock");
    let e = res.unwrap_err().to_string();
    assert!(e.contains("lock timeout"), "{e}");
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(sum(&pg, "live1", "t", ""), before);
}

/// `transaction = "batches"`: 50,000 staged rows per transaction; a failure
/// in the third batch keeps the two committed ones and says so.
#[tokio::test(flavor = "multi_thread")]
async fn batches_commit_one_by_one_and_a_failed_batch_says_what_committed() {
    let pg = support::pg();
    pg.create_db("src").unwrap();
    sql(&pg, "src", FAILING);
    sql(
        &pg,
        "src",
        "INSERT INTO a SELECT i, CASE WHEN i = 110000 THEN 'poison' ELSE 'a' END FROM generate_series(1, 120000) i",
    );
    for db in ["ok", "bad"] {
        pg.create_db(db).unwrap();
        sql(&pg, db, FAILING);
    }
    sql(
        &pg,
        "bad",
        "CREATE TRIGGER refuse BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION refuse()",
    );
    let mut r = req(&pg, "ok", "src", &["a"]);
    r.transaction = MergeTx::Batches;
    let out = merge_tables(&r, &Output::discard()).await.unwrap();
    assert_eq!(out.tables[0].inserted, 120000);
    assert_eq!(sum(&pg, "ok", "a", ""), sum(&pg, "src", "a", ""));

    let mut r = req(&pg, "bad", "src", &["a"]);
    r.transaction = MergeTx::Batches;
    let e = merge_tables(&r, &Output::discard())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("merge failed at table 'public.a'"), "{e}");
    assert!(e.contains("batch 3 of 3"), "{e}");
    assert!(
        e.contains("batches 1..2 are committed (100000 row(s) written)"),
        "{e}"
    );
    assert!(e.contains("row 110000 refused"), "{e}");
    assert_eq!(sql(&pg, "bad", "SELECT count(*) FROM a"), "100000");
}
