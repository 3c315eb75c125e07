//! Throwaway real parts: a PostgreSQL cluster (initdb + pg_ctl) and an
//! OpenSSH sshd on loopback, each stopped and removed on drop. Used by the
//! tests and by the lab. Listens on 127.0.0.1 only; never touches a
//! cluster or sshd it did not start.

mod pg;
mod sshd;

pub use crate::pgbin::{PG_BIN_ENV, PG_SEARCH_ENV, pg_program};
pub use pg::{PgCluster, PgOptions, pg_bin_dir};
pub use sshd::{Sshd, SshdOptions};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    NoPostgres(#[from] crate::pgbin::PgBinError),
    #[error(
        "'/usr/sbin/sshd' not found: install the 'openssh-server' package (Debian: apt-get install openssh-server)"
    )]
    NoSshd,
    #[error(
        "running as root and there is no 'postgres' user to run initdb as (initdb refuses root): create one (useradd -r postgres) or run as an ordinary user"
    )]
    NoPostgresUser,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}); log {log}:\n{tail}")]
    Failed {
        what: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, SandboxError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err("bind 127.0.0.1:0"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(io_err("local_addr"))
}

/// Last `n` lines of a file, for error messages.
pub(crate) fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// uid and gid of a user, from /etc/passwd.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    // /proc/self/status "Uid:\treal\teffective..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
