//! Failures: a dump cut inside a COPY block, a syntax error, a bad COPY row,
//! cancellation, statements that would touch another database, a missing
//! trailer, a broken archive. Each stops the restore with a precise report
//! and leaves the target marked INCOMPLETE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::restore_helpers as helpers;

use std::time::{Duration, Instant};

use helpers::*;
use lifeline::restore::lexer::LexErrorKind;
use lifeline::restore::{
    DbSettings, Restore, RestoreError, RestoreSource, TargetError, create_target,
};
use lifeline::sandbox::PgCluster;
use tokio_util::sync::CancellationToken;

/// A small dump shaped like pg_dump's: \restrict, settings, body, trailer.
fn dump(body: &str) -> String {
    format!(
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict k1\n\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\nSELECT pg_catalog.set_config('search_path', '', false);\n\n{body}\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k1\n\n"
    )
}

fn source(text: &str) -> RestoreSource {
    let bytes = text.as_bytes().to_vec();
    let n = bytes.len() as u64;
    RestoreSource::from_reader(std::io::Cursor::new(bytes), "test dump", Some(n))
}

fn line_of(text: &str, needle: &str) -> u64 {
    let at = text.find(needle).unwrap();
    text[..at].matches('\n').count() as u64 + 1
}

fn assert_incomplete(pg: &PgCluster, target: &str, why: &str) {
    let m = marker(pg, target);
    assert!(m.starts_with("lifeline: restore INCOMPLETE"), "{m}");
    assert!(m.contains(why), "'{why}' not in '{m}'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_cut_inside_copy_fails_with_table_line_and_offset() {
    let pg = cluster();
    pg.create_db("src").unwrap();
    pg.psql(
        "src",
        "CREATE TABLE items (id int PRIMARY KEY, v text); \
         INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 100000) g; \
         CREATE TABLE later (a int)",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("src.sql");
    pg_dump(&pg, "src", &["-Fp", "-t", "items", "-t", "later"], &plain);
    let text = std::fs::read_to_string(&plain).unwrap();
    let copy_at = text.find("COPY public.items").unwrap();
    let data_at = copy_at + text[copy_at..].find('\n').unwrap() + 1;
    let data_len = text[data_at..].find("\n\\.\n").unwrap();
    // Cut in the middle of a row, half-way through the data.
    let cut = data_at + data_len / 2 + 3;
    let cut_text = &text[..cut];
    for (n, jobs) in [(1, 1), (2, 2)] {
        let o = restore(&pg, "src", n, source(cut_text), jobs).await;
        let f = o.result.expect_err("a truncated dump must fail");
        match &f.error {
            RestoreError::TruncatedCopy {
                table,
                start_line,
                start_offset,
                rows,
                line,
                offset,
            } => {
                assert_eq!(table, "public.items");
                assert_eq!(*start_line, line_of(&text, "COPY public.items"));
                assert_eq!(*start_offset, copy_at as u64);
                assert_eq!(*offset, cut as u64);
                assert_eq!(*line, cut_text.matches('\n').count() as u64 + 1);
                assert_eq!(*rows, text[data_at..cut].matches('\n').count() as u64);
            }
            other => panic!("jobs={jobs}: {other:?}"),
        }
        let msg = f.to_string();
        assert!(
            msg.contains("'public.items'") && msg.contains("INCOMPLETE"),
            "{msg}"
        );
        assert!(!f.manifest.complete);
        assert_eq!(f.manifest.bytes, cut as u64);
        assert_incomplete(&pg, &o.target, "truncated");
        // The cut COPY was aborted, not committed half-way.
        assert_eq!(
            pg.psql(&o.target, "SELECT count(*) FROM public.items")
                .unwrap(),
            "0",
            "jobs={jobs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_errors_report_line_offset_and_server_text() {
    let pg = cluster();
    pg.create_db("src").unwrap();
    let text = dump("CREATE TABLE public.t (\n    a integer,\n    b intt4 oops\n);\n");
    let o = restore(&pg, "src", 1, source(&text), 1).await;
    let f = o.result.unwrap_err();
    match &f.error {
        RestoreError::Statement {
            line,
            offset,
            first_line,
            error_line,
            server,
        } => {
            assert_eq!(*line, line_of(&text, "CREATE TABLE public.t"));
            assert_eq!(*offset, text.find("CREATE TABLE public.t").unwrap() as u64);
            assert_eq!(first_line, "CREATE TABLE public.t (");
            assert_eq!(*error_line, Some(line + 2), "the line of 'oops'");
            assert_eq!(server.code.as_deref(), Some("42601"));
            assert!(server.message.contains("syntax error"), "{server:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_incomplete(&pg, &o.target, "syntax error");

    // DETAIL and HINT reach the report.
    let text = dump(
        "CREATE TABLE public.u (a integer PRIMARY KEY);\nINSERT INTO public.u VALUES (1);\nINSERT INTO public.u VALUES (1);\n",
    );
    let o = restore(&pg, "src", 2, source(&text), 2).await;
    let msg = o.result.unwrap_err().to_string();
    assert!(msg.contains("23505"), "{msg}");
    assert!(msg.contains("DETAIL: Key (a)=(1) already exists."), "{msg}");
    let second = line_of(&text, "INSERT INTO public.u VALUES (1);\nINSERT") + 1;
    assert!(
        msg.contains(&format!("statement at line {second} ")),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_copy_row_is_reported_with_its_dump_line() {
    let pg = cluster();
    pg.create_db("src").unwrap();
    let text = dump(
        "CREATE TABLE public.t (a integer);\n\nCOPY public.t (a) FROM stdin;\n1\n2\nnot a number\n4\n\\.\n\n",
    );
    for (n, jobs) in [(1, 1), (2, 2)] {
        let o = restore(&pg, "src", n, source(&text), jobs).await;
        let f = o.result.unwrap_err();
        match &f.error {
            RestoreError::Copy {
                table,
                line,
                row_line,
                server,
                ..
            } => {
                assert_eq!(table, "public.t");
                assert_eq!(*line, line_of(&text, "COPY public.t"));
                assert_eq!(
                    *row_line,
                    Some(line_of(&text, "not a number")),
                    "jobs={jobs}"
                );
                assert_eq!(server.code.as_deref(), Some("22P02"));
            }
            other => panic!("jobs={jobs}: {other:?}"),
        }
        assert_incomplete(&pg, &o.target, "22P02");
    }
}

async fn active_queries(pg: &PgCluster, db: &str) -> String {
    pg.psql(
        "postgres",
        &format!(
            "SELECT coalesce(string_agg(query, ' | '), '') FROM pg_stat_activity WHERE datname = '{db}' AND state = 'active' AND pid <> pg_backend_pid()"
        ),
    )
    .unwrap()
}

async fn wait_for(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_server_work_and_leaves_target_incomplete() {
    let pg = cluster();
    pg.create_db("src").unwrap();
    let admin = admin(&pg).await;

    // jobs=2: a long post-data statement runs on a worker connection.
    let text = dump(
        "CREATE FUNCTION public.slow(integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$BEGIN PERFORM pg_sleep(600); RETURN $1; END$$;\n\nCREATE TABLE public.t (a integer);\n\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\n\nCREATE INDEX t_a_idx ON public.t USING btree (a);\n\nCREATE INDEX t_slow_idx ON public.t USING btree (public.slow(a));\n",
    );
    let target = create_target(&admin, "src", stamp(1), None).await.unwrap();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(
        Restore::new(server_config(&pg), tokio_postgres::NoTls, &target.name)
            .jobs(2)
            .cancel(cancel.clone())
            .run(source(&text)),
    );
    wait_for("the slow index build to run", async || {
        active_queries(&pg, &target.name)
            .await
            .contains("t_slow_idx")
    })
    .await;
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the restore returns promptly after cancel")
        .unwrap();
    assert!(
        matches!(r, Err(ref f) if matches!(f.error, RestoreError::Cancelled { .. })),
        "{r:?}"
    );
    wait_for("the server work to end", async || {
        active_queries(&pg, &target.name).await.is_empty()
    })
    .await;
    assert_incomplete(&pg, &target.name, "cancelled");

    // Serial, with the stream stalled in the middle of COPY data: nothing of
    // the half-read COPY stays.
    let text = dump(
        "CREATE TABLE public.t (a integer);\n\nCOPY public.t (a) FROM stdin;\n1\n2\n3\n\\.\n\n",
    );
    let head = text[..text.find("3\n\\.").unwrap()].to_string();
    let (mut w, r) = tokio::io::duplex(1 << 16);
    tokio::io::AsyncWriteExt::write_all(&mut w, head.as_bytes())
        .await
        .unwrap();
    let target = create_target(&admin, "src", stamp(2), None).await.unwrap();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(
        Restore::new(server_config(&pg), tokio_postgres::NoTls, &target.name)
            .cancel(cancel.clone())
            .run(RestoreSource::from_reader(r, "stalled stream", None)),
    );
    wait_for("the COPY to start", async || {
        active_queries(&pg, &target.name).await.contains("COPY")
    })
    .await;
    cancel.cancel();
    let r = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the restore returns promptly after cancel")
        .unwrap();
    let f = r.unwrap_err();
    assert!(matches!(f.error, RestoreError::Cancelled { .. }), "{f}");
    assert!(!f.manifest.complete);
    assert_eq!(f.manifest.bytes, head.len() as u64);
    assert_incomplete(&pg, &target.name, "cancelled");
    assert_eq!(
        pg.psql(&target.name, "SELECT count(*) FROM public.t")
            .unwrap(),
        "0"
    );
    drop(w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_touches_another_database() {
    let pg = cluster();
    pg.create_db("src").unwrap();
    pg.psql(
        "src",
        "CREATE TABLE kept (a int); INSERT INTO kept VALUES (1)",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A pg_dump --create dump would create and fill the database by its own name.
    let created = dir.path().join("c.sql");
    pg_dump(&pg, "src", &["-Fp", "-C"], &created);
    let text = std::fs::read_to_string(&created).unwrap();
    let o = restore(&pg, "src", 1, source(&text), 1).await;
    match o.result.unwrap_err().error {
        RestoreError::Refused { line, reason, .. } => {
            assert_eq!(line, line_of(&text, "CREATE DATABASE"));
            assert!(reason.contains("-C"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // \connect to another database, other meta-commands.
    let text =
        dump("CREATE TABLE public.t (a integer);\n\\unrestrict k1\n\\connect src\n\\restrict k1\n");
    let o = restore(&pg, "src", 2, source(&text), 1).await;
    match o.result.unwrap_err().error {
        RestoreError::Refused {
            line, first_line, ..
        } => {
            assert_eq!(line, line_of(&text, "\\connect src"));
            assert!(first_line.contains("src"), "{first_line}");
        }
        other => panic!("{other:?}"),
    }
    let text = dump(
        "CREATE TABLE public.x (a integer);\n\\unrestrict k1\n\\! touch /tmp/lifeline-pwned\n",
    );
    let o = restore(&pg, "src", 3, source(&text), 1).await;
    match o.result.unwrap_err().error {
        RestoreError::Lex(e) => {
            assert_eq!(e.line, line_of(&text, "\\!"));
            assert_eq!(e.kind, LexErrorKind::UnknownMeta("!".into()));
        }
        other => panic!("{other:?}"),
    }
    // Meta-commands in restricted mode are refused as psql refuses them.
    let text = dump("\\connect src\n");
    let o = restore(&pg, "src", 4, source(&text), 1).await;
    assert!(
        matches!(o.result.unwrap_err().error, RestoreError::Refused { ref reason, .. } if reason.contains("restricted")),
    );

    // The executor refuses a database create_target did not make (the live one).
    let r = Restore::new(server_config(&pg), tokio_postgres::NoTls, "src")
        .run(source(&dump("CREATE TABLE public.intruder (a int);\n")))
        .await;
    assert!(
        matches!(r, Err(ref f) if matches!(f.error, RestoreError::NotATarget { .. })),
        "{r:?}"
    );
    assert_eq!(
        marker(&pg, "src"),
        "",
        "the live database's comment is untouched"
    );
    assert_eq!(
        pg.psql(
            "src",
            "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"
        )
        .unwrap(),
        "kept"
    );

    // A finished target is never loaded twice.
    let text = dump("CREATE TABLE public.once (a integer);\n");
    let o = restore(&pg, "src", 5, source(&text), 1).await;
    o.result.unwrap();
    let r = Restore::new(server_config(&pg), tokio_postgres::NoTls, &o.target)
        .run(source(&text))
        .await;
    assert!(
        matches!(r, Err(ref f) if matches!(f.error, RestoreError::NotATarget { .. })),
        "{r:?}"
    );
    assert!(marker(&pg, &o.target).starts_with("lifeline: restore complete"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_takes_the_live_databases_settings() {
    let pg = cluster();
    pg.psql("postgres", "CREATE ROLE app_owner").unwrap();
    pg.psql(
        "postgres",
        "CREATE DATABASE live WITH TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' OWNER app_owner",
    )
    .unwrap();
    let admin = admin(&pg).await;
    let t = create_target(&admin, "live", stamp(1), None).await.unwrap();
    assert_eq!(t.name, "live__restore_20261123T100001Z");
    assert!(t.settings_from_live);
    let props = |db: &str| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT pg_encoding_to_char(encoding) || ' ' || datcollate || ' ' || datctype || ' ' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'"
            ),
        )
        .unwrap()
    };
    assert_eq!(props(&t.name), "LATIN1 C C app_owner");
    assert_eq!(props(&t.name), props("live"));
    assert_incomplete(&pg, &t.name, "not loaded yet");
    // The same name again is refused, never reused.
    assert!(matches!(
        create_target(&admin, "live", stamp(1), None).await,
        Err(TargetError::Exists(ref n)) if *n == t.name
    ));
    // The live database is missing: the caller's settings, or a refusal.
    assert!(matches!(
        create_target(&admin, "gone", stamp(2), None).await,
        Err(TargetError::NoSettings(_))
    ));
    let fallback = DbSettings {
        encoding: "UTF8".into(),
        collate: "C".into(),
        ctype: "C".into(),
        owner: "app_owner".into(),
        locale_provider: None,
        icu_locale: None,
    };
    let t = create_target(&admin, "gone", stamp(2), Some(&fallback))
        .await
        .unwrap();
    assert!(!t.settings_from_live);
    assert_eq!(props(&t.name), "UTF8 C C app_owner");
    // A restore into a LATIN1 target converts from the UTF8 stream.
    let o = restore(
        &pg,
        "live",
        3,
        source(&dump(
            "CREATE TABLE public.t (s text);\n\nCOPY public.t (s) FROM stdin;\ncafé\n\\.\n\n",
        )),
        1,
    )
    .await;
    o.result.unwrap();
    assert_eq!(
        pg.psql(
            &o.target,
            "SELECT encode(convert_to(s, 'UTF8'), 'hex') FROM public.t"
        )
        .unwrap(),
        "636166c3a9",
        "café"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_cut_between_statements_or_a_broken_archive_is_not_whole() {
    let pg = cluster();
    pg.create_db("src").unwrap();
    let text = dump("CREATE TABLE public.t (a integer);\n");
    let cut = &text[..text
        .find("--\n-- PostgreSQL database dump complete")
        .unwrap()];
    // pg_dump 15.18 output cut before its last lines: still in restricted mode.
    let o = restore(&pg, "src", 1, source(cut), 1).await;
    let f = o.result.unwrap_err();
    assert!(matches!(f.error, RestoreError::Unfinished { .. }), "{f}");
    assert_incomplete(&pg, &o.target, "truncated");
    // An older pg_dump's output (no restrict lines) cut the same way: no trailer.
    let old: String = cut
        .lines()
        .filter(|l| !l.starts_with("\\restrict"))
        .map(|l| format!("{l}\n"))
        .collect();
    let o = restore(&pg, "src", 3, source(&old), 2).await;
    let f = o.result.unwrap_err();
    assert!(matches!(f.error, RestoreError::NoTrailer { .. }), "{f}");
    assert_incomplete(&pg, &o.target, "truncated");
    // Every statement ran, yet the target is not taken as whole.
    assert_eq!(
        pg.psql(&o.target, "SELECT count(*) FROM public.t").unwrap(),
        "0"
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.dump");
    std::fs::write(&broken, b"PGDMP\x01\x0e\x00 this is not an archive").unwrap();
    let o = restore(
        &pg,
        "src",
        2,
        RestoreSource::open(&broken).await.unwrap(),
        1,
    )
    .await;
    let f = o.result.unwrap_err();
    match &f.error {
        RestoreError::Source(lifeline::restore::SourceError::Command { stderr, .. }) => {
            assert!(stderr.contains("pg_restore"), "{stderr}");
        }
        other => panic!("{other:?}"),
    }
    assert_incomplete(&pg, &o.target, "pg_restore");
}
