//! Shared test support: real PostgreSQL clusters and sshd servers from
//! `lifeline::sandbox`, plus helpers to run the built binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

#[allow(unused_imports)]
pub use lifeline::sandbox::{PgCluster, PgOptions, Sshd, SshdOptions};

/// Starts a throwaway cluster or fails the test with the reason.
pub fn pg() -> PgCluster {
    PgCluster::start().unwrap_or_else(|e| panic!("throwaway PostgreSQL: {e}"))
}

/// Starts a throwaway sshd or fails the test with the reason.
pub fn sshd() -> Sshd {
    Sshd::start().unwrap_or_else(|e| panic!("throwaway sshd: {e}"))
}

/// A tokio-postgres client to `db` on the cluster (connection task spawned).
pub async fn client(pg: &PgCluster, db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&pg.conninfo(db), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"));
    tokio::spawn(conn);
    client
}

/// The built `lifeline` binary with a private state dir.
pub fn lifeline(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.arg("--state-dir")
        .arg(state)
        .env_remove("LIFELINE_INVENTORY")
        .env("NO_COLOR", "1");
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An inventory holding one database `main` (url to `db` on the cluster)
/// plus a local host `here`; `extra` lines go into the [[database]] table.
pub fn db_inventory_text(pg: &PgCluster, db: &str, extra: &str) -> String {
    format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n{extra}\n",
        pg.url(db)
    )
}

/// Parses an inventory text or fails the test with its diagnostics.
pub fn inventory(text: &str) -> lifeline::inventory::Inventory {
    lifeline::inventory::Inventory::parse(text, "test.toml")
        .unwrap_or_else(|d| panic!("inventory: {d}\n{text}"))
}

/// TLS files made with the openssl CLI: a CA, and a server certificate it
/// signed (CA:FALSE, subjectAltName=IP:127.0.0.1) with its key.
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

pub fn tls_files(dir: &Path, name: &str) -> TlsFiles {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |x: &Path| x.to_str().unwrap().to_string();
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.crt"),
        p("server.key"),
        p("server.csr"),
        p("server.crt"),
        p("ext.cnf"),
    );
    run(&[
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
        "-days",
        "2",
        "-subj",
        &format!("/CN=lifeline test CA {name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "2",
        "-extfile",
        &s(&ext),
    ]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).unwrap();
    TlsFiles { ca, cert, key }
}

/// Requires a password (scram) for `role` over TCP: prepends a pg_hba line and reloads.
pub fn require_password(pg: &PgCluster, role: &str) {
    let hba = pg.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all {role} 127.0.0.1/32 scram-sha-256\n{old}"),
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
}

/// A random password made in the test.
pub fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::from("pw-");
    for _ in 0..3 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}
