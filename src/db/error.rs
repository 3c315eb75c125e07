//! Database errors classified for the operator: unreachable, auth-failed,
//! missing (3D000), too-many-connections, tls-failed, other. A message never
//! carries a password (the caller's Redactor masks known ones on output).

use std::fmt;

use serde::Serialize;
use tokio_postgres::error::SqlState;

/// The operator's first question: what kind of failure is this?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    Unreachable,
    AuthFailed,
    Missing,
    TooManyConnections,
    TlsFailed,
    Other,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::AuthFailed => "auth-failed",
            ErrorClass::Missing => "missing",
            ErrorClass::TooManyConnections => "too-many-connections",
            ErrorClass::TlsFailed => "tls-failed",
            ErrorClass::Other => "other",
        })
    }
}

/// The server's own words for an error (`as_db_error()`), kept because
/// `Display` of a tokio-postgres db error says only "db error".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ServerMessage {
    pub sqlstate: String,
    pub severity: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for ServerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)?;
        if let Some(d) = &self.detail {
            write!(f, "; detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot reach '{target}': {reason}; check that the server is running and listening there (host, port, firewall)"
    )]
    Unreachable { target: String, reason: String },
    #[error(
        "authentication failed for user '{user}' at '{target}': {reason}; check password_env / password_file / ~/.pgpass and pg_hba.conf"
    )]
    AuthFailed {
        target: String,
        user: String,
        reason: String,
    },
    #[error(
        "database '{dbname}' does not exist (SQLSTATE 3D000) on '{server}': the server is up but has no database by that name (names are case-sensitive); check the name, or whether it was dropped or the volume lost"
    )]
    Missing { server: String, dbname: String },
    #[error(
        "too many connections at '{target}' (SQLSTATE 53300): {reason}; wait or free connections (max_connections)"
    )]
    TooManyConnections { target: String, reason: String },
    #[error("TLS with '{target}' failed: {reason}; check sslmode and sslrootcert")]
    TlsFailed { target: String, reason: String },
    #[error("database '{target}': {reason}")]
    Config { target: String, reason: String },
    #[error("{what} on '{target}' failed: {server}")]
    Server {
        target: String,
        what: String,
        server: Box<ServerMessage>,
    },
    #[error("{what} on '{target}' failed: {reason}")]
    Other {
        target: String,
        what: String,
        reason: String,
    },
}

impl DbError {
    pub fn class(&self) -> ErrorClass {
        match self {
            DbError::Unreachable { .. } => ErrorClass::Unreachable,
            DbError::AuthFailed { .. } => ErrorClass::AuthFailed,
            DbError::Missing { .. } => ErrorClass::Missing,
            DbError::TooManyConnections { .. } => ErrorClass::TooManyConnections,
            DbError::TlsFailed { .. } => ErrorClass::TlsFailed,
            DbError::Config { .. } | DbError::Server { .. } | DbError::Other { .. } => {
                ErrorClass::Other
            }
        }
    }

    /// The server's message, when the server answered with an error.
    pub fn server_message(&self) -> Option<&ServerMessage> {
        match self {
            DbError::Server { server, .. } => Some(server.as_ref()),
            _ => None,
        }
    }

    /// SQLSTATE of the failure, when there is one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            DbError::Missing { .. } => Some("3D000"),
            DbError::TooManyConnections { .. } => Some("53300"),
            DbError::Server { server, .. } => Some(server.sqlstate.as_str()),
            _ => None,
        }
    }

    /// True when the connection is gone and a reconnect may help.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, DbError::Unreachable { .. })
            || matches!(self, DbError::Server { server, .. } if server.sqlstate.starts_with("57P") || server.sqlstate.starts_with("08"))
    }

    /// Classifies a failure of connecting to `target` (`host:port/dbname`).
    pub fn from_connect(
        target: &str,
        server: &str,
        dbname: &str,
        user: &str,
        e: &tokio_postgres::Error,
    ) -> DbError {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let msg = server_message(db);
            if *code == SqlState::INVALID_CATALOG_NAME {
                return DbError::Missing {
                    server: server.to_string(),
                    dbname: dbname.to_string(),
                };
            }
            if *code == SqlState::TOO_MANY_CONNECTIONS {
                return DbError::TooManyConnections {
                    target: target.to_string(),
                    reason: msg.message,
                };
            }
            if code.code().starts_with("28") {
                return DbError::AuthFailed {
                    target: target.to_string(),
                    user: user.to_string(),
                    reason: msg.to_string(),
                };
            }
            if code.code().starts_with("57P") || code.code().starts_with("08") {
                return DbError::Unreachable {
                    target: target.to_string(),
                    reason: msg.to_string(),
                };
            }
            return DbError::Server {
                target: target.to_string(),
                what: "connect".into(),
                server: Box::new(msg),
            };
        }
        let top = e.to_string();
        let chain = chain(e);
        match top.as_str() {
            "error performing TLS handshake" => DbError::TlsFailed {
                target: target.to_string(),
                reason: chain,
            },
            "authentication error" => DbError::AuthFailed {
                target: target.to_string(),
                user: user.to_string(),
                reason: chain,
            },
            "invalid configuration" if chain.contains("password missing") => DbError::AuthFailed {
                target: target.to_string(),
                user: user.to_string(),
                reason: "the server asks for a password and none was found (password_env, password_file, ~/.pgpass)".into(),
            },
            "invalid configuration" | "invalid connection string" => DbError::Config {
                target: target.to_string(),
                reason: chain,
            },
            _ if top.contains("TLS") || chain.contains("does not support TLS") => {
                DbError::TlsFailed {
                    target: target.to_string(),
                    reason: chain,
                }
            }
            _ => DbError::Unreachable {
                target: target.to_string(),
                reason: chain,
            },
        }
    }

    /// Classifies a failure of a statement (`what`) on an open connection.
    pub fn from_query(target: &str, what: &str, e: &tokio_postgres::Error) -> DbError {
        if let Some(db) = e.as_db_error() {
            let msg = server_message(db);
            if msg.sqlstate.starts_with("57P") || msg.sqlstate.starts_with("08") {
                return DbError::Unreachable {
                    target: target.to_string(),
                    reason: format!("the server ended the connection: {msg}"),
                };
            }
            return DbError::Server {
                target: target.to_string(),
                what: what.to_string(),
                server: Box::new(msg),
            };
        }
        if e.is_closed() {
            return DbError::Unreachable {
                target: target.to_string(),
                reason: "the connection was closed".into(),
            };
        }
        let top = e.to_string();
        if top == "error communicating with the server" || top == "timeout waiting for server" {
            return DbError::Unreachable {
                target: target.to_string(),
                reason: chain(e),
            };
        }
        DbError::Other {
            target: target.to_string(),
            what: what.to_string(),
            reason: chain(e),
        }
    }
}

fn server_message(db: &tokio_postgres::error::DbError) -> ServerMessage {
    ServerMessage {
        sqlstate: db.code().code().to_string(),
        severity: db.severity().to_string(),
        message: db.message().to_string(),
        detail: db.detail().map(str::to_string),
        hint: db.hint().map(str::to_string),
    }
}

/// `Display` of an error and all its sources, joined with ": ".
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.ends_with(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_the_database_and_sqlstate() {
        let e = DbError::Missing {
            server: "127.0.0.1:5432".into(),
            dbname: "simfab_dev".into(),
        };
        let s = e.to_string();
        assert!(
            s.starts_with("database 'simfab_dev' does not exist (SQLSTATE 3D000)"),
            "{s}"
        );
        assert_eq!(e.class(), ErrorClass::Missing);
        assert_eq!(e.sqlstate(), Some("3D000"));
    }

    #[test]
    fn class_names_are_kebab() {
        assert_eq!(
            serde_json::to_string(&ErrorClass::TooManyConnections).unwrap(),
            "\"too-many-connections\""
        );
        assert_eq!(ErrorClass::AuthFailed.to_string(), "auth-failed");
    }
}
