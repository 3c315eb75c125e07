//! The restore target: a NEW database `<db>__restore_<UTC stamp>` made with
//! the live database's encoding, collation and owner, and the completeness
//! marker kept in its comment. Never connects to the live database, never
//! reuses or drops an existing database.

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_postgres::Client;

use super::sql::{quote_ident, quote_literal};

/// The comment marks of a target (defined with the engine's data: its
/// preview names them).
pub use crate::engine::types::{MARK_COMPLETE, MARK_INCOMPLETE};
/// PostgreSQL truncates longer names (NAMEDATALEN - 1).
const MAX_NAME: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "database '{0}' already exists: lifeline never restores into an existing database; wait a second for a new stamp or pick another name"
    )]
    Exists(String),
    #[error(
        "database '{0}' does not exist and no settings (encoding, collation, owner) were given for it: pass the catalog's settings"
    )]
    NoSettings(String),
    #[error("'{what}' on the server failed: {message}")]
    Db { what: String, message: String },
}

/// How a database is created: what the target copies from the live one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbSettings {
    /// e.g. `UTF8`.
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    pub owner: String,
    /// `libc` or `icu` (PostgreSQL 15+).
    pub locale_provider: Option<String>,
    pub icu_locale: Option<String>,
}

/// A target made by [`create_target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub live: String,
    pub settings: DbSettings,
    /// True when the settings came from the live database, false when from
    /// the caller (the live database was missing).
    pub settings_from_live: bool,
}

/// What a target's comment says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetStatus {
    Missing,
    /// Not made by lifeline (or its comment was changed).
    NotLifeline {
        comment: Option<String>,
    },
    Incomplete {
        comment: String,
    },
    Complete {
        comment: String,
    },
}

pub(crate) fn db_err(what: &str, e: &tokio_postgres::Error) -> TargetError {
    TargetError::Db {
        what: what.to_string(),
        message: super::exec::ServerError::from_pg(e).to_string(),
    }
}

/// `<live>__restore_<YYYYMMDDTHHMMSSZ>`; a long live name is cut (at a
/// character boundary) so the whole name fits PostgreSQL's 63 bytes.
pub fn target_name(live: &str, stamp: DateTime<Utc>) -> String {
    let suffix = format!("__restore_{}", stamp.format("%Y%m%dT%H%M%SZ"));
    let room = MAX_NAME - suffix.len();
    let mut cut = live.len().min(room);
    while !live.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &live[..cut])
}

/// The live database's settings, or None when it does not exist.
pub async fn read_settings(admin: &Client, db: &str) -> Result<Option<DbSettings>, TargetError> {
    let row = admin
        .query_opt(
            "SELECT pg_encoding_to_char(d.encoding), d.datcollate::text, d.datctype::text, \
                    pg_get_userbyid(d.datdba)::text, \
                    CASE d.datlocprovider WHEN 'i' THEN 'icu' ELSE 'libc' END, \
                    d.daticulocale::text \
             FROM pg_database d WHERE d.datname = $1",
            &[&db],
        )
        .await
        .map_err(|e| db_err("read pg_database", &e))?;
    Ok(row.map(|r| DbSettings {
        encoding: r.get(0),
        collate: r.get(1),
        ctype: r.get(2),
        owner: r.get(3),
        locale_provider: r.get(4),
        icu_locale: r.get(5),
    }))
}

/// Creates the restore target for `live_db` on the server `admin` is
/// connected to (any database but the live one; `postgres` is usual), with
/// the live database's encoding, collation, ctype and owner, or `fallback`
/// when the live database is missing. Refuses when the name exists. The new
/// database is marked INCOMPLETE at once.
pub async fn create_target(
    admin: &Client,
    live_db: &str,
    stamp: DateTime<Utc>,
    fallback: Option<&DbSettings>,
) -> Result<Target, TargetError> {
    create_target_named(admin, &target_name(live_db, stamp), live_db, fallback).await
}

/// [`create_target`] under a name the caller chose (the runbook engine
/// stamps it); the same refusals: an existing name is never reused.
pub async fn create_target_named(
    admin: &Client,
    name: &str,
    live_db: &str,
    fallback: Option<&DbSettings>,
) -> Result<Target, TargetError> {
    create_target_owned(admin, name, live_db, fallback, None).await
}

/// [`create_target_named`] with the target OWNED by `owner` (the restore
/// role) instead of the live database's owner; the settings record the
/// owner the live database has, for `reapply-owners`.
pub async fn create_target_owned(
    admin: &Client,
    name: &str,
    live_db: &str,
    fallback: Option<&DbSettings>,
    owner: Option<&str>,
) -> Result<Target, TargetError> {
    let name = name.to_string();
    if name == live_db {
        return Err(TargetError::Exists(name));
    }
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| db_err("look up the target name", &e))?;
    if exists.is_some() {
        return Err(TargetError::Exists(name));
    }
    let (settings, from_live) = match read_settings(admin, live_db).await? {
        Some(s) => (s, true),
        None => (
            fallback
                .cloned()
                .ok_or_else(|| TargetError::NoSettings(live_db.to_string()))?,
            false,
        ),
    };
    let mut sql = format!(
        "CREATE DATABASE {} WITH TEMPLATE = template0 ENCODING = {} OWNER = {}",
        quote_ident(&name),
        quote_literal(&settings.encoding),
        quote_ident(owner.unwrap_or(&settings.owner)),
    );
    if settings.locale_provider.as_deref() == Some("icu") {
        sql.push_str(" LOCALE_PROVIDER = icu");
        if let Some(l) = &settings.icu_locale {
            sql.push_str(&format!(" ICU_LOCALE = {}", quote_literal(l)));
        }
    }
    sql.push_str(&format!(
        " LC_COLLATE = {} LC_CTYPE = {}",
        quote_literal(&settings.collate),
        quote_literal(&settings.ctype)
    ));
    admin.batch_execute(&sql).await.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
            TargetError::Exists(name.clone())
        } else {
            db_err(&format!("CREATE DATABASE {}", quote_ident(&name)), &e)
        }
    })?;
    let note = format!(
        "{MARK_INCOMPLETE}: created {} as a restore of {}; not loaded yet",
        now_rfc3339(),
        quote_ident(live_db)
    );
    set_comment(admin, &name, &note).await?;
    Ok(Target {
        name,
        live: live_db.to_string(),
        settings,
        settings_from_live: from_live,
    })
}

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Sets the database comment (the completeness marker).
pub async fn set_comment(client: &Client, db: &str, text: &str) -> Result<(), TargetError> {
    let sql = format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(db),
        quote_literal(text)
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| db_err("COMMENT ON DATABASE", &e))
}

/// Reads a target's completeness marker.
pub async fn target_status(client: &Client, db: &str) -> Result<TargetStatus, TargetError> {
    let row = client
        .query_opt(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .await
        .map_err(|e| db_err("read the database comment", &e))?;
    let Some(row) = row else {
        return Ok(TargetStatus::Missing);
    };
    let comment: Option<String> = row.get(0);
    Ok(match comment {
        Some(c) if c.starts_with(MARK_COMPLETE) => TargetStatus::Complete { comment: c },
        Some(c) if c.starts_with(MARK_INCOMPLETE) => TargetStatus::Incomplete { comment: c },
        comment => TargetStatus::NotLifeline { comment },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 5).unwrap();
        assert_eq!(
            target_name("TovPlay", t),
            "TovPlay__restore_20261123T093005Z"
        );
        let long = "é".repeat(40);
        let n = target_name(&long, t);
        assert!(n.len() <= 63, "{}", n.len());
        assert!(n.ends_with("__restore_20261123T093005Z"));
    }
}
