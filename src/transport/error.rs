//! Transport errors, classified for the operator: each says which host,
//! what went wrong in words, and what to do next.

use std::path::PathBuf;
use std::time::Duration;

use super::human_duration;

/// The class of a `TransportError`, for status screens and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    Unreachable,
    HostKeyUnknown,
    HostKeyChanged,
    AuthFailed,
    Key,
    Disconnected,
    TimedOut,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "host '{host}' ({addr}) is unreachable: {reason}; check that the host is up and sshd listens on that address"
    )]
    Unreachable {
        host: String,
        addr: String,
        reason: String,
    },
    #[error(
        "host '{host}' ({addr}) offered an unknown {key_type} host key {fingerprint} (not in '{}'); compare it with the server's own (ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub on the server) and accept it explicitly in lifeline if it matches",
        known_hosts.display(), key_file_stem(key_type)
    )]
    HostKeyUnknown {
        host: String,
        addr: String,
        key_type: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    /// A changed host key: always refused.
    #[error("{0}")]
    HostKeyChanged(Box<KeyChange>),
    #[error(
        "host '{host}' ({addr}) has a revoked host key {fingerprint} ('{}' line {line} marks it @revoked); refused",
        known_hosts.display()
    )]
    HostKeyRevoked {
        host: String,
        addr: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },
    #[error(
        "host '{host}' refused user '{user}': tried {}; authorise one of these keys in the user's ~/.ssh/authorized_keys, or set 'identity' / 'agent = true' for this host in the inventory",
        if tried.is_empty() { "no method (no 'identity', no agent, no default key)".to_string() } else { tried.join("; ") }
    )]
    AuthFailed {
        host: String,
        user: String,
        tried: Vec<String>,
    },
    #[error("host '{host}': cannot use key '{}': {reason}", path.display())]
    Key {
        host: String,
        path: PathBuf,
        reason: String,
    },
    #[error("host '{host}': ssh-agent: {reason}")]
    Agent { host: String, reason: String },
    #[error("host '{host}' disconnected during '{during}': {reason}; the next command reconnects")]
    Disconnected {
        host: String,
        during: String,
        reason: String,
    },
    #[error("host '{host}': {what} got no answer within {}", human_duration(*after))]
    TimedOut {
        host: String,
        what: String,
        after: Duration,
    },
    #[error("host '{host}': cannot run '{command}': {source}")]
    Spawn {
        host: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("host '{host}': SSH: {reason}")]
    Ssh { host: String, reason: String },
    #[error("known_hosts '{}': {reason}", path.display())]
    KnownHosts { path: PathBuf, reason: String },
    #[error(
        "host '{host}' now offers host key {actual}, not {expected} that was shown to you; nothing was trusted. Check the server before accepting again"
    )]
    FingerprintMismatch {
        host: String,
        expected: String,
        actual: String,
    },
    #[error("host '{host}': its host key is already trusted ({fingerprint}); nothing to accept")]
    AlreadyKnown { host: String, fingerprint: String },
    #[error("no host named '{0}' in the inventory")]
    NoSuchHost(String),
    #[error("the host key was not trusted because the journal refused the entry: {0}")]
    Journal(#[from] crate::journal::JournalError),
}

/// The details of a changed host key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "HOST KEY CHANGED for host '{host}' ({addr}): '{}' line {line} holds {key_type} key {old_fingerprint}, the server now offers {new_fingerprint}; this can be an attack. Refused. If the server was really reinstalled, remove that line (ssh-keygen -R '{pattern}' -f '{}') and accept the new key",
    known_hosts.display(), known_hosts.display()
)]
pub struct KeyChange {
    pub host: String,
    pub addr: String,
    pub key_type: String,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    pub known_hosts: PathBuf,
    pub line: usize,
    /// The host name as known_hosts writes it (`host` or `[host]:port`).
    pub pattern: String,
}

fn key_file_stem(key_type: &str) -> &'static str {
    match key_type {
        "ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512" => "rsa",
        t if t.starts_with("ecdsa") => "ecdsa",
        _ => "ed25519",
    }
}

impl TransportError {
    pub fn kind(&self) -> ErrorKind {
        use TransportError as E;
        match self {
            E::Unreachable { .. } => ErrorKind::Unreachable,
            E::HostKeyUnknown { .. } => ErrorKind::HostKeyUnknown,
            E::HostKeyChanged(_) | E::HostKeyRevoked { .. } => ErrorKind::HostKeyChanged,
            E::AuthFailed { .. } => ErrorKind::AuthFailed,
            E::Key { .. } | E::Agent { .. } => ErrorKind::Key,
            E::Disconnected { .. } => ErrorKind::Disconnected,
            E::TimedOut { .. } => ErrorKind::TimedOut,
            _ => ErrorKind::Other,
        }
    }
}
