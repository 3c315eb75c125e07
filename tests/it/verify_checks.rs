//! Integrity checks derived from the schema, against real clusters: orphans
//! behind a NOT VALID foreign key, a sequence behind max(id), a Prisma
//! database with data and no migration history, expect rules; the built
//! `lifeline verify` exits 0 / 3 / 2 / 1; a planted password never shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeMap;

use lifeline::db::identity::health;
use lifeline::db::verify::{Check, run_checks};
use lifeline::db::{DbHandle, Health};
use lifeline::redact::Redactor;

const SCHEMA: &str = r#"
CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE "Game" (id serial PRIMARY KEY, title text);
CREATE TABLE "GameRequest" (id serial PRIMARY KEY,
  "userId" int NOT NULL REFERENCES "User"(id),
  "gameId" int REFERENCES "Game"(id));
INSERT INTO "User" (email) SELECT 'u' || g || '@example.net' FROM generate_series(1, 22) g;
INSERT INTO "Game" (title) SELECT 'g' || g FROM generate_series(1, 12) g;
INSERT INTO "GameRequest" ("userId", "gameId") SELECT 1 + g % 22, 1 + g % 12 FROM generate_series(1, 182) g;
"#;

fn db(pg: &support::PgCluster, name: &str) -> DbHandle {
    let inv = support::inventory(&support::db_inventory_text(pg, name, ""));
    DbHandle::from_spec(inv.database("main").unwrap(), &Redactor::new()).unwrap()
}

fn find<'a>(checks: &'a [Check], kind: &str, target_part: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.kind == kind && c.target.contains(target_part))
        .unwrap_or_else(|| panic!("no {kind} check on {target_part}: {checks:#?}"))
}

#[tokio::test]
async fn clean_database_has_no_damage() {
    let pg = support::pg();
    pg.create_db("TovPlay").unwrap();
    pg.psql("TovPlay", SCHEMA).unwrap();
    let mut expect = BTreeMap::new();
    expect.insert(
        "User".to_string(),
        lifeline::inventory::Expect {
            min: Some(20),
            max_drop: None,
        },
    );
    let r = run_checks(&db(&pg, "TovPlay"), "main", &expect)
        .await
        .unwrap();
    assert!(r.ok, "{}", lifeline::db::verify::render_text(&r));
    assert_eq!(r.damage, 0);
    let fk = find(
        &r.checks,
        "foreign-key",
        "GameRequest(userId) -> public.User(id)",
    );
    assert!(fk.ok && fk.found == 0);
    assert!(fk.sql.contains("NOT EXISTS"));
    let seq = find(&r.checks, "sequence", "User(id)");
    assert!(seq.ok);
    let e = find(&r.checks, "expect-min", "public.User");
    assert_eq!((e.ok, e.found), (true, 22));
    assert_eq!(
        r.checks.iter().filter(|c| c.kind == "foreign-key").count(),
        2
    );
    assert_eq!(r.checks.iter().filter(|c| c.kind == "sequence").count(), 3);
    assert!(r.skipped.iter().any(|s| s.starts_with("amcheck")));

    // With amcheck installed, every btree index is checked.
    pg.psql("TovPlay", "CREATE EXTENSION amcheck").unwrap();
    let r = run_checks(&db(&pg, "TovPlay"), "main", &expect)
        .await
        .unwrap();
    let am = find(&r.checks, "amcheck", "btree");
    assert_eq!((am.ok, am.found), (true, 0));
    assert_eq!(am.target, "4 btree index(es)");
    assert!(r.ok);
}

#[tokio::test]
async fn orphans_behind_a_not_valid_foreign_key_are_counted() {
    let pg = support::pg();
    pg.create_db("TovPlay").unwrap();
    pg.psql("TovPlay", SCHEMA).unwrap();
    // The restore-gone-wrong shape: constraint dropped, orphans written, re-added NOT VALID.
    pg.psql(
        "TovPlay",
        r#"ALTER TABLE "GameRequest" DROP CONSTRAINT "GameRequest_userId_fkey";
           INSERT INTO "GameRequest" ("userId", "gameId") VALUES (700, 1), (900, 2), (900, 3);
           ALTER TABLE "GameRequest" ADD CONSTRAINT "GameRequest_userId_fkey"
             FOREIGN KEY ("userId") REFERENCES "User"(id) NOT VALID;"#,
    )
    .unwrap();
    let r = run_checks(&db(&pg, "TovPlay"), "main", &BTreeMap::new())
        .await
        .unwrap();
    let fk = find(&r.checks, "foreign-key", "GameRequest(userId)");
    assert!(!fk.ok);
    assert_eq!(fk.found, 3);
    let mut ex = fk.examples.clone();
    ex.sort();
    assert_eq!(ex, vec!["userId=700", "userId=900"]);
    assert!(fk.detail.as_deref().unwrap().contains("NOT VALID"));
    let other = find(&r.checks, "foreign-key", "GameRequest(gameId)");
    assert!(other.ok);
    let unval = find(&r.checks, "unvalidated-constraint", "");
    assert_eq!((unval.ok, unval.found), (false, 1));
    assert!(unval.examples[0].contains("GameRequest_userId_fkey"));
    assert_eq!(r.damage, 1);
    assert_eq!(r.warnings, 1);
    assert!(!r.ok);
}

#[tokio::test]
async fn a_sequence_behind_max_id_is_flagged() {
    let pg = support::pg();
    pg.create_db("TovPlay").unwrap();
    pg.psql("TovPlay", SCHEMA).unwrap();
    pg.psql(
        "TovPlay",
        r#"SELECT setval(pg_get_serial_sequence('"User"', 'id'), 15);
           CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY, x int);
           INSERT INTO ident (x) SELECT g FROM generate_series(1, 5) g;"#,
    )
    .unwrap();
    let r = run_checks(&db(&pg, "TovPlay"), "main", &BTreeMap::new())
        .await
        .unwrap();
    let seq = find(&r.checks, "sequence", "-> public.User(id)");
    assert!(!seq.ok);
    assert_eq!(seq.found, 7, "16..22 collide");
    assert!(seq.examples[0].contains("max(id)=22"), "{:?}", seq.examples);
    assert!(seq.detail.as_deref().unwrap().contains("setval"));
    assert!(
        find(&r.checks, "sequence", "ident(id)").ok,
        "identity columns are checked too"
    );
    // The damage is real: the next insert collides.
    let e = pg.psql(
        "TovPlay",
        "INSERT INTO \"User\" (email) VALUES ('new@example.net')",
    );
    assert!(e.is_err());
}

const PRISMA: &str = r#"
CREATE TABLE "_prisma_migrations" (
  id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
  migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
  started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count int NOT NULL DEFAULT 0);
CREATE TABLE "Organisation" (id serial PRIMARY KEY, name text);
"#;

#[tokio::test]
async fn prisma_database_with_data_and_empty_migrations_is_flagged() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql("app", PRISMA).unwrap();
    let h = db(&pg, "app");

    // Empty tables, empty history: a fresh database, nothing to flag.
    let st = health(&h).await;
    let m = st
        .migrations
        .iter()
        .find(|m| m.table.ends_with("_prisma_migrations"))
        .unwrap();
    assert_eq!(
        (m.present, m.count, m.flagged.is_some()),
        (true, Some(0), false)
    );

    // Data but no history: incident 4.
    pg.psql(
        "app",
        "INSERT INTO \"Organisation\" (name) VALUES ('Legacy Account')",
    )
    .unwrap();
    let st = health(&h).await;
    assert_eq!(st.health, Health::Ok);
    let m = st
        .migrations
        .iter()
        .find(|m| m.table.ends_with("_prisma_migrations"))
        .unwrap();
    let why = m.flagged.as_deref().expect("flagged");
    assert!(why.contains("incident 4"), "{why}");
    let r = run_checks(&h, "main", &BTreeMap::new()).await.unwrap();
    let c = find(&r.checks, "migration-history", "_prisma_migrations");
    assert!(!c.ok);
    assert_eq!(r.damage, 1);

    // With its history the same database is fine, and `last` names the newest.
    pg.psql(
        "app",
        "INSERT INTO \"_prisma_migrations\" (id, checksum, finished_at, migration_name, started_at) VALUES \
         ('a', 'x', now(), '20240101000000_init', now() - interval '1 day'), \
         ('b', 'y', now(), '20240202000000_invoices', now())",
    )
    .unwrap();
    let st = health(&h).await;
    let m = st
        .migrations
        .iter()
        .find(|m| m.table.ends_with("_prisma_migrations"))
        .unwrap();
    assert_eq!(m.count, Some(2));
    assert_eq!(m.last.as_deref(), Some("20240202000000_invoices"));
    assert!(m.flagged.is_none());
}

#[tokio::test]
async fn rails_traces_without_schema_migrations_are_flagged() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE TABLE ar_internal_metadata (key varchar PRIMARY KEY, value varchar); \
         CREATE TABLE users (id bigserial PRIMARY KEY); INSERT INTO users DEFAULT VALUES;",
    )
    .unwrap();
    let st = health(&db(&pg, "app")).await;
    let m = st
        .migrations
        .iter()
        .find(|m| m.table == "schema_migrations")
        .unwrap();
    assert!(!m.present);
    assert!(
        m.flagged
            .as_deref()
            .unwrap()
            .contains("ar_internal_metadata")
    );
}

fn write_inventory(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("lifeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn verify_cli_exit_codes_and_json_contract() {
    let mut pg = support::pg();
    pg.create_db("TovPlay").unwrap();
    pg.psql("TovPlay", SCHEMA).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inv = write_inventory(
        dir.path(),
        &support::db_inventory_text(
            &pg,
            "TovPlay",
            "expect = { User = { min = 20 } }\nconnect_timeout_s = 3",
        ),
    );
    let run = |args: &[&str]| {
        let out = support::lifeline(dir.path())
            .arg("-i")
            .arg(&inv)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            support::stdout(&out),
            support::stderr(&out),
        )
    };

    let (code, out, err) = run(&["verify", "main", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert!(checks.len() >= 6);
    for c in checks {
        assert!(c["kind"].is_string() && c["target"].is_string());
        assert!(c["ok"].is_boolean() && c["found"].is_i64(), "{c}");
    }
    assert_eq!(v["database"], "main");
    assert_eq!(v["identity"]["database"], "TovPlay");

    let (code, out, _) = run(&["verify", "main"]);
    assert_eq!(code, 0);
    assert!(out.contains("clean: no damage"), "{out}");

    pg.psql("TovPlay", "DELETE FROM \"GameRequest\"; DELETE FROM \"User\" WHERE id > 3; SELECT setval(pg_get_serial_sequence('\"Game\"', 'id'), 2)")
        .unwrap();
    let (code, out, err) = run(&["verify", "main"]);
    assert_eq!(code, 3, "{out}\n{err}");
    eprintln!("{out}");
    assert!(out.contains("DAMAGE"), "{out}");
    assert!(out.contains("expect-min"), "{out}");
    let (code, out, _) = run(&["verify", "main", "--json"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bad: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(bad, vec!["sequence", "expect-min"]);

    let (code, _, err) = run(&["verify", "TovPlay"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no database named 'TovPlay' in the inventory (known: 'main')"),
        "{err}"
    );

    pg.stop().unwrap();
    let (code, _, err) = run(&["verify", "main"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach '127.0.0.1:"), "{err}");
    assert!(err.contains("(unreachable)"), "{err}");
}

#[test]
fn verify_cli_names_a_missing_database() {
    let pg = support::pg();
    let dir = tempfile::tempdir().unwrap();
    let inv = write_inventory(dir.path(), &support::db_inventory_text(&pg, "database", ""));
    let out = support::lifeline(dir.path())
        .arg("-i")
        .arg(&inv)
        .args(["verify", "main"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = support::stderr(&out);
    assert!(
        err.contains("database 'database' does not exist (SQLSTATE 3D000)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_planted_password_never_appears_in_output_journal_or_samples() {
    let pg = support::pg();
    let pw = support::random_password();
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN SUPERUSER PASSWORD '{pw}'"),
    )
    .unwrap();
    support::require_password(&pg, "app");
    pg.create_db("TovPlay").unwrap();
    // The password planted in data (an orphaned key), which verify shows as an example.
    pg.psql(
        "TovPlay",
        &format!(
            "CREATE TABLE parent (k text PRIMARY KEY); CREATE TABLE child (k text); \
             INSERT INTO child VALUES ('{pw}'); \
             ALTER TABLE child ADD CONSTRAINT child_k_fkey FOREIGN KEY (k) REFERENCES parent(k) NOT VALID;"
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"postgres://app@127.0.0.1:{}/TovPlay\"\npassword_env = \"LIFELINE_TEST_DB_PW\"\nwatch = [\"child\"]\n",
        pg.port()
    );
    let inv_path = write_inventory(dir.path(), &text);

    // 1. The built binary, password from the environment.
    for args in [&["verify", "main"][..], &["verify", "main", "--json"][..]] {
        let out = support::lifeline(dir.path())
            .arg("-i")
            .arg(&inv_path)
            .args(args)
            .env("LIFELINE_TEST_DB_PW", &pw)
            .output()
            .unwrap();
        let (o, e) = (support::stdout(&out), support::stderr(&out));
        assert_eq!(out.status.code(), Some(3), "{o}\n{e}");
        assert!(o.contains("k=***"), "the orphan example is masked: {o}");
        assert!(!o.contains(&pw) && !e.contains(&pw), "{o}\n{e}");
    }

    // 2. The same password through ~/.pgpass ($PGPASSFILE) with libpq's rules.
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{}:*:app:{pw}\n", pg.port())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text_pgpass = text.replace("password_env = \"LIFELINE_TEST_DB_PW\"\n", "");
    let inv2 = dir.path().join("pgpass.toml");
    std::fs::write(&inv2, &text_pgpass).unwrap();
    let out = support::lifeline(dir.path())
        .arg("-i")
        .arg(&inv2)
        .args(["verify", "main"])
        .env("PGPASSFILE", &pgpass)
        .output()
        .unwrap();
    let o = support::stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{o}\n{}", support::stderr(&out));
    assert!(!o.contains(&pw), "{o}");

    // 3. In process: the sampler with a journal, a session whose query and
    //    application name carry the password, an alert, database_status JSON.
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, &pw).unwrap();
    let text3 = text.replace(
        "password_env = \"LIFELINE_TEST_DB_PW\"",
        &format!("password_file = \"{}\"", pw_file.display()),
    );
    let inv = support::inventory(&text3);
    let redactor = Redactor::new();
    let journal_path = dir.path().join("journal.jsonl");
    let samples_path = dir.path().join("samples.jsonl");
    let j =
        lifeline::journal::Journal::open(&journal_path, "t", "tester", redactor.clone()).unwrap();
    let mut sampler =
        lifeline::timeline::Sampler::from_spec(inv.database("main").unwrap(), &redactor)
            .unwrap()
            .with_journal(std::sync::Arc::new(std::sync::Mutex::new(j)))
            .with_samples_file(samples_path.clone());
    let conninfo = format!("{} application_name=sync-{pw}", pg.conninfo("TovPlay"));
    let (leaky, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    leaky
        .batch_execute(&format!("BEGIN; SELECT '{pw}' AS leaked"))
        .await
        .unwrap();
    let r1 = sampler.sample_once().await.unwrap();
    let s = r1
        .sessions
        .iter()
        .find(|s| s.application_name.starts_with("sync-"))
        .expect("the leaky session is listed");
    assert_eq!(s.application_name, "sync-***");
    assert!(s.query.as_deref().unwrap().contains("'***'"));
    leaky.batch_execute("ROLLBACK").await.unwrap();
    pg.psql("TovPlay", "DELETE FROM child").unwrap();
    let r2 = sampler.sample_once().await.unwrap();
    assert_eq!(r2.detected.len(), 1, "{:?}", r2.detected);

    let status = lifeline::db::database_status(&inv, &redactor).await;
    let status_json = serde_json::to_string(&status).unwrap();
    assert_eq!(status[0].health, Health::Ok, "{status_json}");
    let report_json = serde_json::json!({ "r1": r1, "r2": r2 }).to_string();
    let journal = std::fs::read_to_string(&journal_path).unwrap();
    let samples = std::fs::read_to_string(&samples_path).unwrap();
    assert!(journal.contains("\"alert\""));
    for (what, text) in [
        ("journal", &journal),
        ("samples", &samples),
        ("status", &status_json),
        ("rounds", &report_json),
    ] {
        assert!(!text.contains(&pw), "{what} leaks the password: {text}");
    }
}

#[tokio::test]
async fn database_status_contract_keys() {
    let pg = support::pg();
    pg.create_db("TovPlay").unwrap();
    pg.psql("TovPlay", SCHEMA).unwrap();
    let text = format!(
        "{}\n[[database]]\nname = \"gone\"\nurl = \"postgres://postgres@127.0.0.1:{}/simfab_dev\"\n",
        support::db_inventory_text(&pg, "TovPlay", "watch = [\"User\"]"),
        pg.port()
    );
    let inv = support::inventory(&text);
    let st = lifeline::db::database_status(&inv, &Redactor::new()).await;
    let v = serde_json::to_value(serde_json::json!({ "databases": st })).unwrap();
    let main = &v["databases"][0];
    assert_eq!(main["name"], "main");
    assert_eq!(main["health"], "ok");
    assert_eq!(main["identity"]["database"], "TovPlay");
    assert!(
        main["identity"]["system_identifier"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert!(main["sampled_at"].is_string());
    let user = main["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "User")
        .unwrap();
    assert_eq!(user["schema"], "public");
    assert_eq!(user["rows"], 22);
    assert_eq!(user["exact"], true);
    let gone = &v["databases"][1];
    assert_eq!(gone["health"], "missing");
    assert_eq!(gone["error"]["sqlstate"], "3D000");
    assert!(gone["sampled_at"].is_null());
}
