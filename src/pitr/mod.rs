//! Point-in-time recovery: what an archive holds, the destructive transaction
//! found in its WAL, and a copy of the cluster recovered BESIDE the live one just
//! before it. Never touches the live data directory or writes into the archive.

pub mod archive;
pub mod pgbackrest;
pub mod recover;
pub mod wal;
pub mod waldump;

pub use archive::{ArchiveStatus, Plan, find_target, find_target_in, list, plan};
pub use recover::{Recovered, RecoveryRequest, recover};
pub use wal::{BaseBackup, Lsn, WalRange};
pub use waldump::{Damaged, Destruction, Finding, RelId, Target};

use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum PitrError {
    #[error("host '{host}': {source}")]
    Transport {
        host: String,
        #[source]
        source: Box<TransportError>,
    },
    #[error("archive '{archive}' on host '{host}': {what} failed ({status}): {stderr}")]
    Command {
        archive: String,
        host: String,
        what: String,
        status: String,
        stderr: String,
    },
    #[error("archive '{0}': {1}")]
    Archive(String, String),
    #[error(
        "archive '{archive}': WAL gap: segments {from} .. {to} are missing after {after}; {why}; nothing was started"
    )]
    WalGap {
        archive: String,
        from: String,
        to: String,
        after: String,
        why: String,
    },
    #[error(
        "archive '{archive}': no base backup can reach the target ({target}): {reasons}; nothing was started"
    )]
    NoBaseBackup {
        archive: String,
        target: String,
        reasons: String,
    },
    #[error(
        "archive '{archive}': no destructive transaction on the damaged relations was found in the archived WAL ({records} records read, up to {last}); give the target by hand (a time) or widen the window"
    )]
    NotFound {
        archive: String,
        records: u64,
        last: String,
    },
    /// A recovery refused for its safety (e.g. inside a live data directory); nothing was started.
    #[error("archive '{archive}': refused: {why}; nothing was started")]
    Unsafe { archive: String, why: String },
    #[error("recovery in '{dir}' on host '{host}': {why}")]
    Recovery {
        host: String,
        dir: String,
        why: String,
    },
}

/// A value in postgresql.conf quoting: `'...'` with `'` doubled and `\` escaped.
pub(crate) fn conf_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `sh -c SCRIPT`, run as `user` when the transport is root on the host.
pub(crate) fn as_owner(user: &str, script: &str) -> String {
    let q = crate::transport::shell_quote(script);
    format!(
        "if [ \"$(id -u)\" = 0 ]; then exec runuser -u {} -- sh -c {q}; else exec sh -c {q}; fi",
        crate::transport::shell_quote(user)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_values_are_quoted() {
        assert_eq!(
            conf_quote("cp -- '/a b'/%f \"%p\""),
            "'cp -- ''/a b''/%f \"%p\"'"
        );
        assert_eq!(conf_quote("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn owner_wrapper_quotes_the_script() {
        let s = as_owner("postgres", "echo 'x'; id");
        assert!(
            s.contains("runuser -u postgres -- sh -c 'echo '\\''x'\\''; id'"),
            "{s}"
        );
    }
}
