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
pub use identity::{DbIdentity, Health, HealthReport, MigrationState, MigrationTool, ServerFacts};
pub use status::{DatabaseStatus, database_status};
pub use tables::{TableRef, TableStat};
pub use verify::{Check, Severity, VerifyReport};

/// The one SQL identifier quoting (`"Us""er"`), owned by the pure core;
/// values always go as parameters.
pub use crate::engine::preview::quote_ident;

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

    /// Lines of Rust under `dir` (comments skipped) that open a PostgreSQL
    /// session without src/db: tokio-postgres's own connect calls, a config
    /// built by hand, or a plain-text-only connector.
    fn connects_outside_db(dir: &std::path::Path, found: &mut Vec<String>) {
        const PATTERNS: [&str; 6] = [
            "tokio_postgres::connect(",
            "tokio_postgres::Config::new(",
            ".connect(NoTls",
            ".connect(tokio_postgres::NoTls",
            ".connect(tls)",
            ".connect(connector)",
        ];
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("src/db") {
                    connects_outside_db(&p, found);
                }
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                if PATTERNS.iter().any(|pat| code.contains(pat)) {
                    found.push(format!("{}:{}: {code}", p.display(), n + 1));
                }
            }
        }
    }

    #[test]
    fn one_connect_path_src_db_opens_every_session() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        connects_outside_db(&src, &mut found);
        assert!(
            found.is_empty(),
            "PostgreSQL sessions opened outside src/db (use db::ConnectOptions):\n{}",
            found.join("\n")
        );
        // The scan sees what it looks for (a fixture line, not this crate's code).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.rs"),
            "let (c, conn) = cfg.connect(NoTls).await?;\n// tokio_postgres::connect( in a comment\n",
        )
        .unwrap();
        let mut seen = Vec::new();
        connects_outside_db(dir.path(), &mut seen);
        assert_eq!(seen.len(), 1, "{seen:?}");
    }
}
