//! Fidelity: a schema with every tricky object, dumped by the installed
//! pg_dump (which writes \restrict), restored through lifeline serially, with
//! jobs=2, and from custom/directory/gzip archives: the schema dump and
//! every table's ordered checksum must equal the source's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::restore_helpers as helpers;

use helpers::*;
use lifeline::restore::{Phase, RestoreEvent, RestoreSource, TargetStatus, target_status};

fn check_manifest(pg: &lifeline::sandbox::PgCluster, o: &Outcome) {
    let m = o.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(m.complete);
    assert_eq!(m.target_db, o.target);
    assert_eq!(m.sha256.len(), 64);
    // Rows per table as the server confirmed them equal count(*) afterwards.
    assert_eq!(m.tables.get("public.big"), Some(&200_000));
    assert_eq!(m.tables.get("public.\"User\""), Some(&503));
    assert_eq!(m.tables.get("\"Sales\".\"Order\""), Some(&5000));
    assert_eq!(m.tables.get("public.\"weird;name\""), Some(&5));
    for (table, rows) in &m.tables {
        let n: u64 = pg
            .psql(&o.target, &format!("SELECT count(*) FROM ONLY {table}"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(n, *rows, "rows of {table}");
    }
    assert!(m.statements > 100, "{}", m.statements);
    assert!(marker(pg, &o.target).starts_with("lifeline: restore complete"));
    assert!(marker(pg, &o.target).contains(&m.sha256));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_dump_restores_identically_serial_and_parallel() {
    let pg = cluster();
    build_fixture(&pg, "src");
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("src.sql");
    pg_dump(&pg, "src", &["-Fp"], &plain);
    let text = std::fs::read_to_string(&plain).unwrap();
    assert!(
        text.contains("\n\\restrict "),
        "pg_dump 15.18 writes \\restrict"
    );

    // Serial, like psql -f.
    let serial = restore(&pg, "src", 1, RestoreSource::open(&plain).await.unwrap(), 1).await;
    check_manifest(&pg, &serial);
    assert_same(&pg, "src", &serial.target);
    let m = serial.result.as_ref().unwrap();
    assert_eq!(m.bytes, text.len() as u64);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    };
    assert_eq!(m.sha256, sha, "the manifest hashes the stream as read");
    // Progress went through its phases and ended at the whole file.
    let phases: Vec<Phase> = serial
        .events
        .iter()
        .filter_map(|e| match e {
            RestoreEvent::Phase { phase } => Some(*phase),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        vec![Phase::Data, Phase::PostData, Phase::Finishing],
        "{phases:?}"
    );
    let last = serial
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            RestoreEvent::Progress(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last.bytes, text.len() as u64);
    assert_eq!(last.source_total, Some(text.len() as u64));
    assert_eq!(last.rows, m.tables.values().sum::<u64>());
    assert!(matches!(
        serial.events.last(),
        Some(RestoreEvent::Finished { .. })
    ));

    // jobs = 2: the same result.
    let par = restore(&pg, "src", 2, RestoreSource::open(&plain).await.unwrap(), 2).await;
    check_manifest(&pg, &par);
    let big_parts = par
        .events
        .iter()
        .filter(|e| matches!(e, RestoreEvent::TableLoaded { table, .. } if table == "public.big"))
        .count();
    assert!(
        big_parts >= 2,
        "the big table's COPY was split over both connections"
    );
    assert_same(&pg, "src", &par.target);
    assert_eq!(
        par.result.as_ref().unwrap().tables,
        serial.result.as_ref().unwrap().tables
    );
    let admin = admin(&pg).await;
    assert!(matches!(
        target_status(&admin, &par.target).await.unwrap(),
        TargetStatus::Complete { .. }
    ));
    // The live database is untouched: its comment is not a marker.
    assert_eq!(marker(&pg, "src"), "");
}

/// The scheduler sees every post-data statement of a real dump for what
/// it is (an index, constraint, trigger or attach), not as a barrier.
#[test]
fn post_data_statements_of_a_real_dump_are_classified() {
    use lifeline::restore::sql::{Class, classify};
    let pg = cluster();
    build_fixture(&pg, "src");
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("src.sql");
    pg_dump(&pg, "src", &["-Fp"], &plain);
    let mut lx = lifeline::restore::Lexer::new();
    lx.push(&std::fs::read(&plain).unwrap());
    lx.finish_input();
    let mut seen = 0;
    while let Some(item) = lx.next_item().unwrap() {
        let lifeline::restore::Item::Statement(s) = item else {
            continue;
        };
        let head: String = s
            .sql
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        let post = head.starts_with("CREATE INDEX")
            || head.starts_with("CREATE UNIQUE INDEX")
            || head.starts_with("CREATE TRIGGER")
            || head.starts_with("ALTER INDEX")
            || (head.starts_with("ALTER TABLE ONLY") && s.sql.contains("ADD CONSTRAINT"));
        if post {
            seen += 1;
            let c = classify(&s.sql);
            assert!(c.is_post_data(), "{c:?} for {}", s.sql);
            assert!(!matches!(c, Class::Other), "{}", s.sql);
        }
    }
    assert!(seen >= 20, "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_restore_through_pg_restore_and_gzip() {
    let pg = cluster();
    build_fixture(&pg, "src");
    let dir = tempfile::tempdir().unwrap();

    let custom = dir.path().join("src.dump");
    pg_dump(&pg, "src", &["-Fc"], &custom);
    let o = restore(
        &pg,
        "src",
        1,
        RestoreSource::open(&custom).await.unwrap(),
        2,
    )
    .await;
    check_manifest(&pg, &o);
    assert_same(&pg, "src", &o.target);

    let directory = dir.path().join("src.dir");
    pg_dump(&pg, "src", &["-Fd"], &directory);
    let o = restore(
        &pg,
        "src",
        2,
        RestoreSource::open(&directory).await.unwrap(),
        1,
    )
    .await;
    check_manifest(&pg, &o);
    assert_same(&pg, "src", &o.target);

    let plain = dir.path().join("src.sql");
    pg_dump(&pg, "src", &["-Fp"], &plain);
    let gz = dir.path().join("src.sql.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        e.finish().unwrap();
    }
    let o = restore(&pg, "src", 3, RestoreSource::open(&gz).await.unwrap(), 2).await;
    check_manifest(&pg, &o);
    assert_same(&pg, "src", &o.target);
    let last = o
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            RestoreEvent::Progress(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let gz_len = std::fs::metadata(&gz).unwrap().len();
    assert_eq!(
        last.source_total,
        Some(gz_len),
        "progress counts the compressed file"
    );
    assert_eq!(last.source_bytes, Some(gz_len));

    // Any AsyncRead works as a source: this is how the SSH transport's
    // remote stream plugs in. The SSH-host variant is this one line with
    // the transport's stream of `pg_restore_command(path)` (or `cat`):
    // restore(&pg, "src", 5, RestoreSource::from_reader(stream, "ssh", None), 2)
    let file = tokio::fs::File::open(&plain).await.unwrap();
    let o = restore(
        &pg,
        "src",
        4,
        RestoreSource::from_reader(file, "stream", None),
        1,
    )
    .await;
    check_manifest(&pg, &o);
}

/// Restored as a restore role (`--no-owner`): objects owned by two roles
/// in the source come back owned by the restore role, the skipped owners
/// are listed, and `reapply` (as the admin) makes schema, owners and
/// grants identical to the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_are_identical_after_reapply() {
    let pg = cluster();
    build_fixture(&pg, "src");
    pg.psql(
        "postgres",
        "CREATE ROLE app_two; CREATE ROLE restorer LOGIN; CREATE ROLE gone",
    )
    .unwrap();
    pg.psql(
        "src",
        "ALTER TABLE public.big OWNER TO app_two; ALTER SCHEMA \"Sales\" OWNER TO app_two; \
         ALTER FUNCTION public.audit_trigger() OWNER TO app_two; \
         CREATE TABLE public.orphan (a int); ALTER TABLE public.orphan OWNER TO gone",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("src.sql");
    pg_dump(&pg, "src", &["-Fp"], &plain);
    pg.psql("src", "DROP OWNED BY gone").unwrap();
    pg.psql("postgres", "DROP ROLE gone").unwrap();
    pg.psql("src", "CREATE TABLE public.orphan (a int)")
        .unwrap();

    let o = restore_as(
        &pg,
        "src",
        40,
        RestoreSource::open(&plain).await.unwrap(),
        Some("restorer"),
    )
    .await;
    let m = o.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(m.complete);
    let owners: std::collections::BTreeSet<&str> =
        m.owners_skipped.iter().map(|c| c.owner.as_str()).collect();
    assert_eq!(
        owners,
        ["app_two", "gone", "postgres"].into_iter().collect(),
        "{:?}",
        m.owners_skipped
    );
    assert!(
        m.owners_skipped
            .iter()
            .any(|c| c.kind == "TABLE" && c.object == "public.big" && c.owner == "app_two"),
        "{:?}",
        m.owners_skipped
    );
    // Before the re-apply every object belongs to the restore role.
    assert_eq!(
        pg.psql(
            &o.target,
            "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'Sales')"
        )
        .unwrap(),
        "restorer"
    );
    assert_ne!(schema_of(&pg, "src"), schema_of(&pg, &o.target));

    let (client, conn) = tokio_postgres::connect(&pg.conninfo(&o.target), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let report = lifeline::restore::reapply(&client, &m.owners_skipped, None)
        .await
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // Only for roles that exist: 'gone' was dropped after the dump.
    assert_eq!(report.missing_role.len(), 1, "{:?}", report.missing_role);
    assert_eq!(report.missing_role[0].owner, "gone");
    assert!(
        report
            .applied
            .iter()
            .any(|s| s == "ALTER TABLE public.big OWNER TO \"app_two\""),
        "{:?}",
        report.applied
    );
    // The orphan table stays the restore role's; everything else is as in the source.
    pg.psql("src", "ALTER TABLE public.orphan OWNER TO restorer")
        .unwrap();
    assert_same(&pg, "src", &o.target);
    let acl = |db: &str| {
        pg.psql(
            db,
            "SELECT string_agg(format('%s %s %s', c.oid::regclass, pg_get_userbyid(c.relowner), c.relacl), E'\\n' ORDER BY c.oid::regclass::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'Sales')",
        )
        .unwrap()
    };
    assert_eq!(acl("src"), acl(&o.target));
}
