//! Hostile dumps: every attack of issue 14, in a plain dump and inside a
//! (patched) custom archive, is refused by the pre-scan before anything is
//! created, and again by the executor on a target; afterwards nothing
//! outside the target changed: databases, live settings, roles, server
//! settings, files, sessions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::restore_helpers as helpers;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use helpers::*;
use lifeline::restore::{Policy, Restore, RestoreError, RestoreSource, create_target, prescan};
use lifeline::sandbox::PgCluster;

fn dump(body: &str) -> String {
    format!(
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict k1\n\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\nSELECT pg_catalog.set_config('search_path', '', false);\n\nCREATE TABLE public.t (a integer);\n\nCOPY public.t (a) FROM stdin;\n1\n\\.\n\n{body}\n\nCREATE INDEX t_a_idx ON public.t USING btree (a);\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k1\n\n"
    )
}

fn source(text: &str) -> RestoreSource {
    let bytes = text.as_bytes().to_vec();
    let n = bytes.len() as u64;
    RestoreSource::from_reader(std::io::Cursor::new(bytes), "hostile dump", Some(n))
}

fn line_of(text: &str, needle: &str) -> u64 {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("'{needle}' not in the dump"));
    text[..at].matches('\n').count() as u64 + 1
}

/// Everything outside a restore target that an attack could change.
fn world(pg: &PgCluster, marker_dir: &Path) -> Vec<String> {
    let q = |db: &str, sql: &str| pg.psql(db, sql).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(marker_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    vec![
        q(
            "postgres",
            "SELECT string_agg(format('%s conn=%s allow=%s owner=%s acl=%s comment=%s', datname, datconnlimit, datallowconn, pg_get_userbyid(datdba), datacl, shobj_description(oid, 'pg_database')), E'\\n' ORDER BY datname) FROM pg_database WHERE datname NOT LIKE '%\\_\\_restore\\_%'",
        ),
        q(
            "postgres",
            "SELECT string_agg(format('%s super=%s login=%s until=%s limit=%s config=%s', rolname, rolsuper, rolcanlogin, rolvaliduntil, rolconnlimit, rolconfig), E'\\n' ORDER BY rolname) FROM pg_roles",
        ),
        q(
            "postgres",
            "SELECT coalesce(string_agg(format('%s/%s: %s', setdatabase, setrole, setconfig), E'\\n' ORDER BY setdatabase, setrole), '') FROM pg_db_role_setting",
        ),
        q(
            "postgres",
            "SELECT coalesce(string_agg(format('%s=%s', name, setting), E'\\n' ORDER BY name, seqno), '') FROM pg_file_settings",
        ),
        std::fs::read_to_string(pg.data_dir().join("postgresql.auto.conf")).unwrap_or_default(),
        q(
            "other",
            "SELECT count(*)::text || ' ' || sum(a)::text FROM public.kept",
        ),
        q("app", "SELECT count(*)::text FROM public.live"),
        format!("files: {files:?}"),
    ]
}

struct Lab {
    pg: PgCluster,
    marker_dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let pg = cluster();
        pg.psql("postgres", "CREATE ROLE app_owner").unwrap();
        pg.psql("postgres", "CREATE DATABASE app OWNER app_owner")
            .unwrap();
        pg.psql(
            "app",
            "CREATE TABLE public.live (a int); INSERT INTO public.live VALUES (1), (2)",
        )
        .unwrap();
        pg.create_db("other").unwrap();
        pg.psql(
            "other",
            "CREATE TABLE public.kept (a int); INSERT INTO public.kept VALUES (7)",
        )
        .unwrap();
        // The server (user postgres) could write here: an attack that
        // reaches the shell or the file system would leave a file.
        let marker_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(marker_dir.path(), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        Lab { pg, marker_dir }
    }

    fn marker(&self, name: &str) -> String {
        self.marker_dir.path().join(name).display().to_string()
    }
}

/// The attacks of the issue, each a statement of a plain dump, and the
/// text that starts the refused line.
fn attacks(lab: &Lab) -> Vec<(&'static str, String, &'static str)> {
    let port = lab.pg.port();
    vec![
        (
            "DO ... COPY TO PROGRAM",
            format!(
                "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}'''; END $$;",
                lab.marker("program")
            ),
            "DO $$",
        ),
        (
            "CREATE EXTENSION dblink + dblink_exec",
            format!(
                "CREATE EXTENSION dblink;\nSELECT dblink_exec('host=127.0.0.1 port={port} user=postgres dbname=postgres', 'DROP DATABASE other');"
            ),
            "CREATE EXTENSION dblink",
        ),
        (
            "pg_terminate_backend",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'app' AND pid <> pg_backend_pid();".into(),
            "SELECT pg_terminate_backend",
        ),
        (
            "DO CREATE ROLE SUPERUSER",
            "DO $x$ BEGIN CREATE ROLE evil SUPERUSER LOGIN; END $x$;".into(),
            "DO $x$",
        ),
        (
            "DO ALTER SYSTEM",
            "DO $$ BEGIN EXECUTE 'ALTER SYSTEM SET work_mem = ''1GB'''; END $$;".into(),
            "DO $$",
        ),
        (
            "DO ALTER ROLE",
            "do language plpgsql $$ begin alter role postgres valid until '2000-01-01'; end $$;"
                .into(),
            "do language",
        ),
        (
            "DO ALTER DATABASE other RENAME",
            "DO $$ BEGIN ALTER DATABASE other RENAME TO gone; END $$;".into(),
            "DO $$",
        ),
        (
            "DO ALTER DATABASE live CONNECTION LIMIT 0",
            "DO $$ BEGIN ALTER DATABASE app CONNECTION LIMIT 0; ALTER DATABASE app SET default_transaction_read_only = on; END $$;".into(),
            "DO $$",
        ),
        (
            "ALTER DATABASE live",
            "ALTER DATABASE app SET default_transaction_read_only = on;".into(),
            "ALTER DATABASE app",
        ),
        (
            "UPDATE pg_database",
            "UPDATE pg_database SET datallowconn = false WHERE datname = 'app';".into(),
            "UPDATE pg_database",
        ),
        (
            "lo_export",
            format!(
                "SELECT pg_catalog.lo_export(pg_catalog.lo_from_bytea(0, '\\x41'), '{}');",
                lab.marker("lo")
            ),
            "SELECT pg_catalog.lo_export",
        ),
        (
            "SET SESSION AUTHORIZATION to a superuser",
            "SET SESSION AUTHORIZATION 'postgres';\nALTER ROLE app_owner SUPERUSER;".into(),
            "SET SESSION AUTHORIZATION",
        ),
        (
            "COPY FROM stdin WHERE",
            "COPY public.t (a) FROM stdin WHERE pg_terminate_backend(1);\n".into(),
            "COPY public.t (a) FROM stdin WHERE",
        ),
    ]
}

async fn live_session(pg: &PgCluster) -> (tokio_postgres::Client, i32) {
    let (c, conn) = tokio_postgres::connect(&pg.conninfo("app"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    (c, pid)
}

fn targets(pg: &PgCluster) -> String {
    pg.psql(
        "postgres",
        "SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE '%\\_\\_restore\\_%'",
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_in_a_plain_dump_is_refused_with_its_line() {
    let lab = Lab::new();
    let pg = &lab.pg;
    let (session, pid) = live_session(pg).await;
    let before = world(pg, lab.marker_dir.path());

    for (n, (name, attack, at)) in attacks(&lab).into_iter().enumerate() {
        let text = dump(&attack);
        let line = line_of(&text, at);

        // 1. The pre-scan, before any target exists: no database touched.
        let made = targets(pg);
        let policy = Policy::new("app__restore_x").owner("app_owner");
        match prescan(source(&text), policy, true).await {
            Err(RestoreError::Refused {
                line: l, reason, ..
            }) => {
                assert_eq!(l, line, "{name}: {reason}");
                assert!(!reason.is_empty());
            }
            other => panic!("{name}: the pre-scan let it through: {other:?}"),
        }
        assert_eq!(targets(pg), made, "{name}: the pre-scan created nothing");

        // 2. The executor on a target refuses it as well (serial and parallel).
        let jobs = 1 + n % 2;
        let o = restore(pg, "app", n as u32, source(&text), jobs).await;
        let f = o.result.expect_err(name);
        match &f.error {
            RestoreError::Refused { line: l, .. } => assert_eq!(*l, line, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        let m = marker(pg, &o.target);
        assert!(m.starts_with("lifeline: restore INCOMPLETE"), "{name}: {m}");
        assert!(m.contains(&format!("line {line}")), "{name}: {m}");
        assert_eq!(
            world(pg, lab.marker_dir.path()),
            before,
            "{name}: something outside the target changed"
        );
    }

    // The live database's session was never ended.
    let still: i32 = session
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("the live session is alive")
        .get(0);
    assert_eq!(still, pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_only_those_the_live_database_has() {
    let lab = Lab::new();
    let pg = &lab.pg;
    let before = world(pg, lab.marker_dir.path());
    let port = pg.port();
    let text = dump(&format!(
        "CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;\n\nSELECT public.dblink_exec('host=127.0.0.1 port={port} user=postgres dbname=postgres', 'DROP DATABASE other');"
    ));
    // The live database has dblink: creating it passes, calling it does not.
    pg.psql("app", "CREATE EXTENSION dblink").unwrap();
    let policy = Policy::new("t").extensions(["dblink".to_string()]);
    match prescan(source(&text), policy.clone(), true).await {
        Err(RestoreError::Refused { line, reason, .. }) => {
            assert_eq!(
                line,
                line_of(&text, "SELECT public.dblink_exec"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let admin = admin(pg).await;
    let target = create_target(&admin, "app", stamp(1), None).await.unwrap();
    let r = Restore::new(server_config(pg), tokio_postgres::NoTls, &target.name)
        .policy(policy)
        .run(source(&text))
        .await;
    assert!(
        matches!(r, Err(ref f) if matches!(f.error, RestoreError::Refused { .. })),
        "{r:?}"
    );
    // Without it in the live database, the CREATE EXTENSION line itself is refused.
    match prescan(source(&text), Policy::new("t"), true).await {
        Err(RestoreError::Refused { line, reason, .. }) => {
            assert_eq!(line, line_of(&text, "CREATE EXTENSION"));
            assert!(reason.contains("'dblink'"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    pg.psql("app", "DROP EXTENSION dblink").unwrap();
    assert_eq!(world(pg, lab.marker_dir.path()), before);
}

/// Replaces `old` by `new` (padded with spaces to the same length) in a
/// custom archive: what a rogue job that rewrites backups can do.
fn patch(bytes: &mut [u8], old: &str, new: &str) {
    assert!(new.len() <= old.len(), "{new} longer than {old}");
    let at = bytes
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap_or_else(|| panic!("'{old}' not in the archive"));
    let padded = format!("{new:<width$}", width = old.len());
    bytes[at..at + old.len()].copy_from_slice(padded.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_inside_a_custom_archive_are_refused() {
    let lab = Lab::new();
    let pg = &lab.pg;
    let before = world(pg, lab.marker_dir.path());
    let pad = "x".repeat(160);
    pg.create_db("arch").unwrap();
    pg.psql(
        "arch",
        &format!(
            "CREATE TABLE public.t (a int); INSERT INTO public.t VALUES (1); COMMENT ON TABLE public.t IS '{pad}'"
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("arch.dump");
    pg_dump(pg, "arch", &["-Fc"], &clean);
    let original = std::fs::read(&clean).unwrap();
    let comment = format!("COMMENT ON TABLE public.t IS '{pad}';");
    let hostile = [
        format!(
            "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}'''; END $$;",
            lab.marker("archive")
        ),
        "UPDATE pg_database SET datallowconn = false WHERE datname = 'app';".to_string(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity;".to_string(),
    ];
    for (n, h) in hostile.iter().enumerate() {
        let mut bytes = original.clone();
        patch(&mut bytes, &comment, h);
        let path = dir.path().join(format!("patched{n}.dump"));
        std::fs::write(&path, &bytes).unwrap();
        let src = RestoreSource::open(&path).await.unwrap();
        match prescan(src, Policy::new("t"), true).await {
            Err(RestoreError::Refused { first_line, .. }) => {
                assert_eq!(first_line[..20], h[..20], "{first_line} vs {h}")
            }
            other => panic!("{h}: {other:?}"),
        }
        let o = restore(
            pg,
            "app",
            n as u32 + 1,
            RestoreSource::open(&path).await.unwrap(),
            1,
        )
        .await;
        assert!(
            matches!(o.result, Err(ref f) if matches!(f.error, RestoreError::Refused { .. })),
            "{h}"
        );
    }
    // The unpatched archive is fine.
    let src = RestoreSource::open(&clean).await.unwrap();
    prescan(src, Policy::new("t"), true).await.unwrap();

    // An archive of a database with dblink: refused where the live database lacks it.
    pg.create_db("withext").unwrap();
    pg.psql(
        "withext",
        "CREATE EXTENSION dblink; CREATE TABLE public.t (a int)",
    )
    .unwrap();
    let ext = dir.path().join("withext.dump");
    pg_dump(pg, "withext", &["-Fc"], &ext);
    match prescan(
        RestoreSource::open(&ext).await.unwrap(),
        Policy::new("t"),
        true,
    )
    .await
    {
        Err(RestoreError::Refused { reason, .. }) => assert!(reason.contains("dblink"), "{reason}"),
        other => panic!("{other:?}"),
    }
    pg.psql("postgres", "DROP DATABASE withext").unwrap();
    pg.psql("postgres", "DROP DATABASE arch").unwrap();
    assert_eq!(world(pg, lab.marker_dir.path()), before);
}

/// A real pg_dump of the fidelity fixture passes the pre-scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_dumps_pass_the_prescan() {
    let pg = cluster();
    build_fixture(&pg, "src");
    let dir = tempfile::tempdir().unwrap();
    for (args, name) in [
        (&["-Fp"][..], "p.sql"),
        (&["-Fp", "--inserts"][..], "i.sql"),
        (&["-Fc"][..], "c.dump"),
    ] {
        let f = dir.path().join(name);
        pg_dump(&pg, "src", args, &f);
        let r = prescan(
            RestoreSource::open(&f).await.unwrap(),
            Policy::new("t").owner("postgres"),
            true,
        )
        .await;
        let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.statements > 100, "{name}: {r:?}");
    }
}

/// A dump whose function runs during the load: in a CHECK constraint
/// evaluated by COPY, or in an index expression evaluated by CREATE INDEX.
/// Both pass the pre-scan (pg_dump writes exactly these shapes): only the
/// restore role's lack of privilege contains them.
fn function_dumps(lab: &Lab, tag: &str) -> Vec<(&'static str, String)> {
    let check = format!(
        "CREATE FUNCTION public.evil_check(integer) RETURNS boolean\n    LANGUAGE plpgsql\n    AS $f$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}; cat >/dev/null'''; RETURN true; END $f$;\n\nCREATE TABLE public.h (a integer, CONSTRAINT h_a_check CHECK (public.evil_check(a)));\n\nCOPY public.h (a) FROM stdin;\n5\n\\.\n",
        lab.marker(&format!("check-{tag}"))
    );
    let index = format!(
        "CREATE FUNCTION public.evil_v(integer) RETURNS integer\n    LANGUAGE plpgsql\n    AS $f$ BEGIN EXECUTE 'ALTER DATABASE app CONNECTION LIMIT 0'; EXECUTE 'CREATE ROLE evil_{tag} SUPERUSER'; EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}; cat >/dev/null'''; RETURN $1; END $f$;\n\nCREATE FUNCTION public.evil_index(integer) RETURNS integer\n    LANGUAGE plpgsql IMMUTABLE\n    AS $f$ BEGIN RETURN public.evil_v($1); END $f$;\n\nCREATE TABLE public.x (a integer);\n\nCOPY public.x (a) FROM stdin;\n5\n\\.\n\nCREATE INDEX x_evil_idx ON public.x USING btree (public.evil_index(a));\n",
        lab.marker(&format!("index-{tag}"))
    );
    vec![
        ("CHECK constraint during COPY", check),
        ("index expression", index),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_run_during_the_load_fail_for_lack_of_privilege() {
    let lab = Lab::new();
    let pg = &lab.pg;
    pg.psql("postgres", "CREATE ROLE restorer LOGIN").unwrap();
    let admin = admin(pg).await;
    assert_eq!(
        lifeline::restore::check_restore_role(&admin, "restorer")
            .await
            .unwrap(),
        lifeline::restore::RoleStatus::Fit
    );
    let (session, pid) = live_session(pg).await;
    let before = world(pg, lab.marker_dir.path());

    // As the restore role (serial and 2 jobs): the pre-scan passes, the function runs and fails.
    let cases = function_dumps(&lab, "role")
        .into_iter()
        .flat_map(|c| [(c.clone(), 1), (c, 2)]);
    for (n, ((name, body), jobs)) in cases.enumerate() {
        let text = dump(&body);
        prescan(source(&text), Policy::new("t").owner("restorer"), true)
            .await
            .unwrap_or_else(|e| panic!("{name}: pg_dump's shapes pass the pre-scan: {e}"));
        let o = restore_as_jobs(
            pg,
            "app",
            20 + n as u32,
            source(&text),
            Some("restorer"),
            jobs,
        )
        .await;
        let f = o
            .result
            .expect_err("the hostile function must fail as the restore role");
        let msg = f.error.to_string();
        assert!(
            msg.contains("permission denied") || msg.contains("must be"),
            "{name}: {msg}"
        );
        let m = marker(pg, &o.target);
        assert!(m.starts_with("lifeline: restore INCOMPLETE"), "{name}: {m}");
        assert_eq!(
            world(pg, lab.marker_dir.path()),
            before,
            "{name}: something outside the target changed"
        );
    }
    let still: i32 = session
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("the live session is alive")
        .get(0);
    assert_eq!(still, pid);

    // The control: the same dumps as a superuser do reach outside.
    for (n, (name, body)) in function_dumps(&lab, "super").into_iter().enumerate() {
        let o = restore_as(pg, "app", 30 + n as u32, source(&dump(&body)), None).await;
        assert!(o.result.is_ok(), "{name}: {:?}", o.result.err());
    }
    assert!(
        std::path::Path::new(&lab.marker("check-super")).exists(),
        "as a superuser the CHECK constraint's function ran COPY TO PROGRAM"
    );
    assert!(std::path::Path::new(&lab.marker("index-super")).exists());
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT datconnlimit::text FROM pg_database WHERE datname = 'app'"
        )
        .unwrap(),
        "0"
    );
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT rolsuper::text FROM pg_roles WHERE rolname = 'evil_super'"
        )
        .unwrap(),
        "true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privileged_restore_role_is_refused() {
    use lifeline::restore::{RoleError, RoleStatus, check_restore_role, create_restore_role};
    let lab = Lab::new();
    let pg = &lab.pg;
    pg.psql(
        "postgres",
        "CREATE ROLE su LOGIN SUPERUSER; CREATE ROLE cr LOGIN CREATEROLE; \
         CREATE ROLE cd LOGIN CREATEDB; CREATE ROLE prog LOGIN; \
         GRANT pg_execute_server_program TO prog; CREATE ROLE files LOGIN; \
         GRANT pg_write_server_files TO files; CREATE ROLE reader LOGIN; \
         GRANT pg_read_server_files TO reader; CREATE ROLE inherits LOGIN; \
         GRANT app_owner TO inherits; CREATE ROLE nologin; CREATE ROLE owns LOGIN; \
         ALTER DATABASE other OWNER TO owns",
    )
    .unwrap();
    let admin = admin(pg).await;
    for (role, says) in [
        ("postgres", "SUPERUSER"),
        ("su", "SUPERUSER"),
        ("cr", "CREATEROLE"),
        ("cd", "CREATEDB"),
        ("prog", "'pg_execute_server_program'"),
        ("files", "'pg_write_server_files'"),
        ("reader", "'pg_read_server_files'"),
        ("inherits", "'app_owner'"),
        ("nologin", "NOLOGIN"),
        ("owns", "'other'"),
    ] {
        match check_restore_role(&admin, role).await {
            Err(e @ RoleError::Privileged { .. }) => {
                let m = e.to_string();
                assert!(m.contains(says), "{role}: {m}");
                assert!(
                    m.contains(&format!("restore_role '{role}' is refused")),
                    "{m}"
                );
            }
            other => panic!("{role}: {other:?}"),
        }
    }
    // Missing: created with LOGIN and nothing else, then fit.
    assert_eq!(
        check_restore_role(&admin, "fresh").await.unwrap(),
        RoleStatus::Missing
    );
    create_restore_role(&admin, "fresh").await.unwrap();
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT format('%s %s %s %s', rolcanlogin, rolsuper, rolcreatedb, rolcreaterole) FROM pg_roles WHERE rolname = 'fresh'"
        )
        .unwrap(),
        "t f f f"
    );
    assert_eq!(
        check_restore_role(&admin, "fresh").await.unwrap(),
        RoleStatus::Fit
    );
}

/// reapply-owners runs as the admin: it must not become the way a backup's
/// code gets a superuser. An event trigger in the restored database would
/// fire on ALTER ... OWNER TO (refused), and a SECURITY DEFINER function
/// given to a superuser would run the backup's code as one for any caller
/// (held). The controls show both would reach outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reapply_owners_gives_no_superuser_to_the_backup() {
    use lifeline::restore::{OwnersError, reapply};
    let lab = Lab::new();
    let pg = &lab.pg;
    pg.psql(
        "postgres",
        "CREATE ROLE restorer LOGIN; CREATE ROLE caller LOGIN",
    )
    .unwrap();
    let target_client = |db: String| async move {
        let (c, conn) = tokio_postgres::connect(&pg.conninfo(&db), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    };

    // 1. A SECURITY DEFINER function the dump gives to postgres.
    let body = format!(
        "CREATE FUNCTION public.sd() RETURNS integer\n    LANGUAGE plpgsql SECURITY DEFINER\n    AS $f$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}; cat >/dev/null'''; RETURN 1; END $f$;\n\nALTER FUNCTION public.sd() OWNER TO postgres;\n\nALTER TABLE public.t OWNER TO app_owner;\n",
        lab.marker("definer")
    );
    let text = dump(&body);
    let o = restore_as(pg, "app", 50, source(&text), Some("restorer")).await;
    let m = o.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.owners_skipped.len(), 2, "{:?}", m.owners_skipped);
    let c = target_client(o.target.clone()).await;
    let r = reapply(&c, &m.owners_skipped, None).await.unwrap();
    assert_eq!(r.applied, ["ALTER TABLE public.t OWNER TO \"app_owner\""]);
    assert_eq!(r.held.len(), 1, "{r:?}");
    assert_eq!(r.held[0].object, "public.sd()");
    let call = || {
        std::process::Command::new(pg.bin("psql"))
            .args(["-X", "-q", "-h", "127.0.0.1", "-U", "caller", "-p"])
            .arg(pg.port().to_string())
            .args(["-d", &o.target, "-c", "SELECT public.sd()"])
            .output()
            .unwrap()
    };
    let out = call();
    assert!(!out.status.success());
    assert!(!Path::new(&lab.marker("definer")).exists());
    // The control: given to postgres, any caller runs the backup's shell command.
    c.batch_execute(&r.held[0].sql()).await.unwrap();
    let out = call();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(Path::new(&lab.marker("definer")).exists());

    // 2. An event trigger (only a superuser restore can make one).
    let body = format!(
        "CREATE FUNCTION public.evt() RETURNS event_trigger\n    LANGUAGE plpgsql\n    AS $f$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {}; cat >/dev/null'''; END $f$;\n\nALTER TABLE public.t OWNER TO app_owner;\n",
        lab.marker("event")
    );
    // pg_dump writes event triggers last.
    let index = "CREATE INDEX t_a_idx ON public.t USING btree (a);\n";
    let text = dump(&body).replace(
        index,
        &format!("{index}\nCREATE EVENT TRIGGER evt ON ddl_command_end\n   EXECUTE FUNCTION public.evt();\n"),
    );
    let o = restore_as(pg, "app", 51, source(&text), None).await;
    assert!(o.result.is_ok(), "{:?}", o.result.err());
    let c = target_client(o.target.clone()).await;
    let change =
        lifeline::restore::owner_change("ALTER TABLE public.t OWNER TO restorer;", 1).unwrap();
    match reapply(&c, std::slice::from_ref(&change), None).await {
        Err(e @ OwnersError::EventTriggers(1)) => {
            assert!(e.to_string().contains("event trigger"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!Path::new(&lab.marker("event")).exists());
    // The control: the same ALTER as the admin fires it.
    c.batch_execute(&change.sql()).await.unwrap();
    assert!(Path::new(&lab.marker("event")).exists());
}
