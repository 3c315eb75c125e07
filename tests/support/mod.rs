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
