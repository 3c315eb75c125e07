//! Connections and health against real throwaway clusters: missing (3D000),
//! unreachable, auth-failed, empty, ok; TLS per sslmode; passwords from a
//! file; too many connections; reconnect after a restart; another database
//! on the same server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use lifeline::db::{
    ConnectOptions, DbHandle, ErrorClass, Health, identity::health, identity::identity,
};
use lifeline::redact::Redactor;

fn handle(text: &str) -> (DbHandle, Redactor) {
    let inv = support::inventory(text);
    let r = Redactor::new();
    let h = DbHandle::from_spec(inv.database("main").unwrap(), &r).unwrap();
    (h, r)
}

#[tokio::test]
async fn missing_database_is_missing_with_3d000() {
    let pg = support::pg();
    let (db, _) = handle(&support::db_inventory_text(&pg, "simfab_dev", ""));
    let h = health(&db).await;
    assert_eq!(h.health, Health::Missing);
    let e = h.error.unwrap();
    assert_eq!(e.class, ErrorClass::Missing);
    assert_eq!(e.sqlstate.as_deref(), Some("3D000"));
    assert!(
        e.message
            .starts_with("database 'simfab_dev' does not exist (SQLSTATE 3D000)"),
        "{}",
        e.message
    );
    assert_eq!(
        serde_json::to_value(h.health).unwrap(),
        serde_json::json!("missing")
    );
}

#[tokio::test]
async fn stopped_server_is_unreachable() {
    let mut pg = support::pg();
    let (db, _) = handle(&support::db_inventory_text(
        &pg,
        "postgres",
        "connect_timeout_s = 3",
    ));
    assert_eq!(health(&db).await.health, Health::Empty);
    pg.stop().unwrap();
    db.disconnect().await;
    let h = health(&db).await;
    assert_eq!(h.health, Health::Unreachable, "{:?}", h.error);
    let msg = h.error.unwrap().message;
    assert!(
        msg.contains(&format!("cannot reach '127.0.0.1:{}/postgres'", pg.port())),
        "{msg}"
    );
}

#[tokio::test]
async fn fresh_database_is_empty_then_ok() {
    let pg = support::pg();
    pg.create_db("fresh").unwrap();
    let (db, _) = handle(&support::db_inventory_text(&pg, "fresh", ""));
    let h = health(&db).await;
    assert_eq!(h.health, Health::Empty);
    assert_eq!(h.user_tables, 0);
    // JSON: the one identity object, the server's facts beside it.
    let hv = serde_json::to_value(&h).unwrap();
    assert_eq!(
        hv["identity"]["server"],
        serde_json::json!(format!("127.0.0.1:{}", pg.port()))
    );
    assert!(hv["identity"]["oid"].as_u64().is_some(), "{hv}");
    assert!(hv["identity"]["server_started_at"].is_string(), "{hv}");
    assert!(
        hv["server_version"].as_str().unwrap().starts_with("15"),
        "{hv}"
    );
    assert!(hv["size_bytes"].as_i64().unwrap() > 0, "{hv}");
    let id = h.identity.unwrap();
    assert_eq!(id.database, "fresh");
    assert_eq!(id.address(), format!("127.0.0.1:{}/fresh", pg.port()));
    assert_eq!(id.server, format!("127.0.0.1:{}", pg.port()));
    let sysid = pg
        .psql("fresh", "SELECT system_identifier FROM pg_control_system()")
        .unwrap();
    assert_eq!(id.system_identifier.to_string(), sysid);
    let oid = pg
        .psql(
            "fresh",
            "SELECT oid FROM pg_database WHERE datname = 'fresh'",
        )
        .unwrap();
    assert_eq!(id.oid.map(|o| o.to_string()), Some(oid));
    let facts = h.facts.clone().unwrap();
    assert!(facts.size_bytes > 0);
    assert!(
        facts.server_version.starts_with("15"),
        "{}",
        facts.server_version
    );
    // JSON carries the system identifier as a string.
    let v = serde_json::to_value(&id).unwrap();
    assert_eq!(v["system_identifier"], serde_json::json!(sysid));

    pg.psql("fresh", "CREATE TABLE t (id int)").unwrap();
    assert_eq!(health(&db).await.health, Health::Ok);
}

#[tokio::test]
async fn wrong_password_is_auth_failed_right_one_connects() {
    let pg = support::pg();
    let pw = support::random_password();
    pg.psql(
        "postgres",
        &format!("CREATE ROLE app LOGIN PASSWORD '{pw}'"),
    )
    .unwrap();
    support::require_password(&pg, "app");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, format!("{pw}\n")).unwrap();
    std::fs::write(&bad, "not-the-password\n").unwrap();
    let url = format!("postgres://app@127.0.0.1:{}/postgres", pg.port());
    let text = |f: &std::path::Path| {
        format!(
            "[[database]]\nname = \"main\"\nurl = \"{url}\"\npassword_file = \"{}\"\n",
            f.display()
        )
    };

    let (db, _) = handle(&text(&bad));
    let h = health(&db).await;
    assert_eq!(h.health, Health::AuthFailed, "{:?}", h.error);
    let msg = h.error.unwrap().message;
    assert!(
        msg.contains("authentication failed for user 'app'"),
        "{msg}"
    );
    assert!(msg.contains("28P01"), "{msg}");

    let (db, redactor) = handle(&text(&good));
    let h = health(&db).await;
    assert_eq!(h.health, Health::Empty, "{:?}", h.error);
    // The password read from the file is now masked everywhere.
    assert_eq!(redactor.redact(&format!("x {pw} y")), "x *** y");

    // No password at all where one is required: auth-failed, saying so.
    let (db, _) = handle(&format!("[[database]]\nname = \"main\"\nurl = \"{url}\"\n"));
    let h = health(&db).await;
    assert_eq!(h.health, Health::AuthFailed, "{:?}", h.error);
}

#[tokio::test]
async fn tls_modes_against_a_certificate_made_here() {
    let dir = tempfile::tempdir().unwrap();
    let tls = support::tls_files(dir.path(), "srv");
    let other = support::tls_files(dir.path(), "other");
    let pg = support::PgCluster::start_with(support::PgOptions {
        tls: Some((tls.cert.clone(), tls.key.clone())),
        ..Default::default()
    })
    .unwrap();
    let with = |extra: String| handle(&support::db_inventory_text(&pg, "postgres", &extra)).0;
    let ssl_in_use = |db: DbHandle| async move {
        let rows = db
            .query(
                "ssl",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        rows[0].get::<_, bool>(0)
    };

    // require: encrypted, certificate not verified (a private CA is fine).
    let db = with("sslmode = \"require\"".into());
    assert_eq!(health(&db).await.health, Health::Empty);
    assert!(ssl_in_use(db).await);

    // prefer: encrypted when the server offers it.
    let db = with(String::new());
    assert!(ssl_in_use(db).await);

    // verify-full with the right CA and an IP SAN: ok.
    let db = with(format!(
        "sslmode = \"verify-full\"\nsslrootcert = \"{}\"",
        tls.ca.display()
    ));
    let h = health(&db).await;
    assert_eq!(h.health, Health::Empty, "{:?}", h.error);
    assert!(ssl_in_use(db).await);

    // verify-ca / verify-full with another CA: tls-failed.
    for mode in ["verify-ca", "verify-full"] {
        let db = with(format!(
            "sslmode = \"{mode}\"\nsslrootcert = \"{}\"",
            other.ca.display()
        ));
        let h = health(&db).await;
        assert_eq!(h.health, Health::Error, "{mode}");
        let e = h.error.unwrap();
        assert_eq!(e.class, ErrorClass::TlsFailed, "{mode}: {}", e.message);
    }

    // disable: plain text.
    let db = with("sslmode = \"disable\"".into());
    assert!(!ssl_in_use(db).await);
}

#[tokio::test]
async fn verify_ca_ignores_the_host_name_verify_full_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let tls = support::tls_files(dir.path(), "srv");
    let pg = support::PgCluster::start_with(support::PgOptions {
        tls: Some((tls.cert.clone(), tls.key.clone())),
        ..Default::default()
    })
    .unwrap();
    // "localhost" is not in the certificate (only IP:127.0.0.1).
    let text = |mode: &str| {
        format!(
            "[[database]]\nname = \"main\"\nurl = \"postgres://postgres@localhost:{}/postgres\"\nsslmode = \"{mode}\"\nsslrootcert = \"{}\"\n",
            pg.port(),
            tls.ca.display()
        )
    };
    let (db, _) = handle(&text("verify-ca"));
    let h = health(&db).await;
    if h.health == Health::Unreachable {
        // localhost resolved to ::1 only; nothing to test here.
        eprintln!("localhost does not reach 127.0.0.1 here: {:?}", h.error);
        return;
    }
    assert_eq!(h.health, Health::Empty, "{:?}", h.error);
    let (db, _) = handle(&text("verify-full"));
    let h = health(&db).await;
    assert_eq!(h.error.unwrap().class, ErrorClass::TlsFailed);
}

#[tokio::test]
async fn require_against_a_server_without_tls_is_tls_failed() {
    let pg = support::pg();
    let (db, _) = handle(&support::db_inventory_text(
        &pg,
        "postgres",
        "sslmode = \"require\"",
    ));
    let h = health(&db).await;
    assert_eq!(h.error.unwrap().class, ErrorClass::TlsFailed);
}

#[tokio::test]
async fn socket_directory_host() {
    let pg = support::pg();
    let url = format!(
        "postgres://postgres@:{}/postgres?host={}",
        pg.port(),
        pg.socket_dir().display()
    );
    let r = Redactor::new();
    let db = DbHandle::new(ConnectOptions::from_url("sock", &url, &r).unwrap());
    let id = identity(&db).await.unwrap();
    assert_eq!(
        id.address(),
        format!("{}:{}/postgres", pg.socket_dir().display(), pg.port())
    );
    let rows = db
        .query(
            "addr",
            "SELECT client_addr IS NULL FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(rows[0].get::<_, bool>(0), "connected over the socket");
}

#[tokio::test]
async fn too_many_connections_is_classified() {
    let pg = support::PgCluster::start_with(support::PgOptions {
        settings: vec![
            ("max_connections".into(), "4".into()),
            ("superuser_reserved_connections".into(), "2".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    pg.psql("postgres", "CREATE ROLE app LOGIN").unwrap();
    let url = format!("postgres://app@127.0.0.1:{}/postgres", pg.port());
    let r = Redactor::new();
    let opts = ConnectOptions::from_url("main", &url, &r).unwrap();
    let mut held = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        match opts.connect().await {
            Ok(c) => held.push(c),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    let e = last.expect("a connection beyond max_connections was refused");
    assert_eq!(e.class(), ErrorClass::TooManyConnections, "{e}");
    assert!(e.to_string().contains("53300"), "{e}");
}

#[tokio::test]
async fn handle_reconnects_after_restart_and_reaches_other_databases() {
    let mut pg = support::pg();
    pg.create_db("restored").unwrap();
    pg.psql("restored", "CREATE TABLE marker (x int)").unwrap();
    let (db, _) = handle(&support::db_inventory_text(&pg, "postgres", ""));
    let before = identity(&db).await.unwrap();
    let pid1 = db.backend_pid().await.unwrap();
    pg.restart().unwrap();
    let after = identity(&db).await.unwrap();
    assert!(after.server_started_at > before.server_started_at);
    assert_ne!(db.backend_pid().await.unwrap(), pid1);

    let other = db.with_dbname("restored");
    assert_eq!(other.target(), format!("127.0.0.1:{}/restored", pg.port()));
    let h = health(&other).await;
    assert_eq!(h.health, Health::Ok);
    assert_eq!(
        h.identity.unwrap().system_identifier,
        after.system_identifier
    );
}
