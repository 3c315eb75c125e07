//! One-shot status of every inventory database for `lifeline status`:
//! health, identity, one sampling round (estimates + exact counts of the
//! watched tables), sessions and migration tables. Reads only; every
//! string is redacted.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::activity::{HostMap, Session};
use super::connect::{ConnectOptions, DbHandle};
use super::identity::{DbIdentity, ErrorInfo, Health, MigrationState, ServerFacts, health};
use crate::inventory::{DatabaseSpec, Inventory};
use crate::lookalike::LookAlike;
use crate::redact::Redactor;
use crate::samples::TableCount;
use crate::timeline::{CountFailure, Sampler, SamplerConfig};

/// Contract keys: `name`, `health`, `identity.system_identifier`,
/// `identity.database`, `tables[].schema/name/rows/exact`, `sampled_at`.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStatus {
    /// Inventory name.
    pub name: String,
    /// `host:port/dbname` from the inventory.
    pub target: String,
    pub health: Health,
    pub identity: Option<DbIdentity>,
    /// `server_version`, `size_bytes` beside the identity.
    #[serde(flatten)]
    pub facts: Option<ServerFacts>,
    pub tables: Vec<TableCount>,
    /// When the counts were taken (None when the database did not answer).
    pub sampled_at: Option<DateTime<Utc>>,
    pub sessions: Vec<Session>,
    pub migrations: Vec<MigrationState>,
    pub count_failures: Vec<CountFailure>,
    pub error: Option<ErrorInfo>,
    /// Databases on the same server whose names only look like this one
    /// (case, confusables, invisible characters, restore/damaged suffix),
    /// with their session counts. Empty when none or the server did not answer.
    pub lookalikes: Vec<LookAlike>,
}

impl DatabaseStatus {
    fn failed(spec: &DatabaseSpec, health: Health, error: ErrorInfo) -> DatabaseStatus {
        DatabaseStatus {
            name: spec.name().to_string(),
            target: spec
                .pg_url()
                .map(|u| u.display_target())
                .unwrap_or_default(),
            health,
            identity: None,
            facts: None,
            tables: Vec::new(),
            sampled_at: None,
            sessions: Vec::new(),
            migrations: Vec::new(),
            count_failures: Vec::new(),
            error: Some(error),
            lookalikes: Vec::new(),
        }
    }
}

/// Probes one database.
pub async fn probe_database(
    inv: &Inventory,
    spec: &DatabaseSpec,
    redactor: &Redactor,
) -> DatabaseStatus {
    let mut opts = match ConnectOptions::from_spec(spec, redactor) {
        Ok(o) => o,
        Err(e) => return DatabaseStatus::failed(spec, Health::Error, ErrorInfo::from_error(&e)),
    };
    opts.application_name = "lifeline status".into();
    let cfg = SamplerConfig {
        count_connections: 1,
        ..SamplerConfig::from_spec(spec)
    };
    if opts.statement_timeout.is_none() {
        opts.statement_timeout = Some(cfg.count_timeout.max(Duration::from_secs(5)));
    }
    let db = DbHandle::new(opts);
    let h = health(&db).await;
    let mut st = DatabaseStatus {
        name: spec.name().to_string(),
        target: db.target(),
        health: h.health,
        identity: h.identity,
        facts: h.facts,
        tables: Vec::new(),
        sampled_at: None,
        sessions: Vec::new(),
        migrations: h.migrations,
        count_failures: Vec::new(),
        error: h.error,
        lookalikes: Vec::new(),
    };
    // Look-alikes are read even when the database itself is missing (the
    // decoy is then the likeliest confusion): through the maintenance
    // database in that case.
    let list_from = if matches!(st.health, Health::Missing) {
        db.with_dbname("postgres")
    } else {
        db.clone()
    };
    if !matches!(st.health, Health::Unreachable)
        && let Ok(l) = lookalikes(&list_from, &db.options().url.dbname).await
    {
        st.lookalikes = l;
    }
    if matches!(st.health, Health::Ok | Health::Empty) {
        let hosts = HostMap::resolve(inv, spec).await;
        let mut sampler = Sampler::with_db(db, cfg).with_host_map(hosts);
        match sampler.sample_once().await {
            Ok(r) => {
                st.tables = r.sample.tables;
                st.sampled_at = Some(r.sample.ts);
                st.sessions = r.sessions;
                st.count_failures = r.count_failures;
            }
            Err(e) => {
                if let Some(d) = e.db_error() {
                    st.error = Some(ErrorInfo::from_error(d));
                } else {
                    st.error = Some(ErrorInfo {
                        class: super::ErrorClass::Other,
                        sqlstate: None,
                        message: e.to_string(),
                    });
                }
            }
        }
    }
    if let Some(e) = &mut st.error {
        e.message = redactor.redact(&e.message);
    }
    st
}

const DATABASES_SQL: &str = "SELECT d.datname::text, \
     (SELECT count(*) FROM pg_catalog.pg_stat_activity a \
      WHERE a.datname = d.datname AND a.pid <> pg_backend_pid())::bigint \
     FROM pg_catalog.pg_database d WHERE NOT d.datistemplate ORDER BY 1";

/// Databases on `db`'s server whose names only look like `watched`, each
/// with the number of sessions connected to it. Reads only.
pub async fn lookalikes(db: &DbHandle, watched: &str) -> Result<Vec<LookAlike>, super::DbError> {
    let rows = db
        .query("list the server's databases", DATABASES_SQL, &[])
        .await?;
    let names: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut found = crate::lookalike::find(names.iter().map(|(n, _)| n.as_str()), &[watched]);
    for l in &mut found {
        l.sessions = names.iter().find(|(n, _)| *n == l.name).map(|(_, c)| *c);
    }
    Ok(found)
}

/// Every inventory database, probed concurrently, in inventory order.
pub async fn database_status(inv: &Inventory, redactor: &Redactor) -> Vec<DatabaseStatus> {
    let probes = inv.databases.iter().map(|spec| async move {
        let limit = Duration::from_secs(spec.connect_timeout_s.unwrap_or(10) + 60);
        match tokio::time::timeout(limit, probe_database(inv, spec, redactor)).await {
            Ok(s) => s,
            Err(_) => DatabaseStatus::failed(
                spec,
                Health::Unreachable,
                ErrorInfo {
                    class: super::ErrorClass::Unreachable,
                    sqlstate: None,
                    message: format!(
                        "database '{}' gave no complete answer within {} s",
                        spec.name(),
                        limit.as_secs()
                    ),
                },
            ),
        }
    });
    futures_util::future::join_all(probes).await
}
