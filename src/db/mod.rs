//! Databases, talked to directly over tokio-postgres: connections (TLS,
//! passwords, timeouts, reconnect), identity and health, sessions, and
//! integrity checks. Read-only: nothing here drops, deletes or alters data.

pub mod activity;
pub mod connect;
pub mod error;
pub mod identity;
pub mod pgpass;
pub mod status;
pub mod tables;
pub mod tls;
pub mod verify;

pub use activity::{Session, TableWrites, sessions};
pub use connect::{ConnectOptions, DbHandle, PasswordSource};
pub use error::{DbError, ErrorClass};
pub use identity::{Health, HealthReport, Identity, MigrationState, MigrationTool};
pub use status::{DatabaseStatus, database_status};
pub use tables::{TableRef, TableStat};
pub use verify::{Check, Severity, VerifyReport};

/// Quotes an SQL identifier (`"Us""er"`). The one place identifiers are
/// turned into SQL text; values always go as parameters.
pub fn quote_ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `"schema"."name"`.
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("User"), "\"User\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_qualified("public", "x y"), "\"public\".\"x y\"");
    }
}
