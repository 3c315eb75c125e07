//! What the hold watches on the database: sessions from the stopped hosts
//! that write (an open write transaction, a write statement running) and
//! per-table write counters (pg_stat_user_tables). Reads only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::RealActions;
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;

/// Time given to the sessions of what was just stopped to end and report
/// their counters before the hold's baseline is read.
const SETTLE: Duration = Duration::from_secs(2);

/// Sessions and table writes on the database during the hold.
pub(super) struct DbWatch {
    db: crate::db::DbHandle,
    hosts: crate::db::activity::HostMap,
    host_names: BTreeSet<String>,
    baseline: BTreeMap<String, (i64, i64)>,
}

const SESSIONS_SQL: &str = "SELECT pid, usename::text, application_name, host(client_addr), backend_start, state, query, backend_xid IS NOT NULL FROM pg_catalog.pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name NOT LIKE 'lifeline%'";
const TABLES_SQL: &str = "SELECT schemaname::text || '.' || relname::text, relid::bigint, (n_tup_ins + n_tup_upd + n_tup_del)::bigint FROM pg_catalog.pg_stat_user_tables";

fn is_write(q: &str) -> bool {
    let first = q
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "INSERT"
            | "UPDATE"
            | "DELETE"
            | "TRUNCATE"
            | "COPY"
            | "MERGE"
            | "DROP"
            | "CREATE"
            | "ALTER"
    ) && !(first == "COPY" && q.to_ascii_uppercase().contains(" TO "))
}

impl DbWatch {
    /// Connects before anything is stopped. A database that is missing
    /// (3D000) or a server that does not answer cannot be written to
    /// through it: the hold is then judged on the hosts, and says so. Any
    /// other failure (credentials, configuration) stops the step here,
    /// before anything is touched.
    pub(super) async fn open(
        a: &RealActions,
        db: &DbTarget,
        hosts: &[String],
        out: &Output,
    ) -> Result<Option<DbWatch>, ActionError> {
        let fail = |e: crate::db::DbError| ActionError::DbIn {
            what: format!(
                "cannot watch database '{}' for writes during the hold; nothing was stopped",
                db.name
            ),
            source: e,
        };
        let mut opts = crate::db::ConnectOptions::from_spec(&db.spec, &a.redactor).map_err(fail)?;
        opts.application_name = "lifeline hold".into();
        let handle = crate::db::DbHandle::new(opts);
        let map = crate::db::activity::HostMap::resolve(a.inventory(), &db.spec).await;
        let w = DbWatch {
            db: handle,
            hosts: map,
            host_names: hosts.iter().cloned().collect(),
            baseline: BTreeMap::new(),
        };
        match w.counters().await {
            Ok(_) => Ok(Some(w)),
            Err(e)
                if matches!(
                    e.class(),
                    crate::db::ErrorClass::Missing | crate::db::ErrorClass::Unreachable
                ) =>
            {
                out.line(format!(
                    "{} cannot be watched ({e}); the hold is judged on the hosts only",
                    db.display()
                ));
                Ok(None)
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// The write counters the hold compares against, read once what was
    /// stopped has had a moment to end its sessions and report its counters.
    pub(super) async fn rebase(&mut self, out: &Output) -> bool {
        tokio::time::sleep(SETTLE).await;
        match self.counters().await {
            Ok(b) => {
                self.baseline = b;
                true
            }
            Err(e) => {
                out.line(format!(
                    "write counters not readable before the hold ({e}); the hold is judged on the hosts only"
                ));
                false
            }
        }
    }

    async fn counters(&self) -> Result<BTreeMap<String, (i64, i64)>, crate::db::DbError> {
        let rows = self
            .db
            .query("table write counters", TABLES_SQL, &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    (r.get::<_, i64>(1), r.get::<_, i64>(2)),
                )
            })
            .collect())
    }

    pub(super) async fn writers(
        &self,
        redactor: &crate::redact::Redactor,
    ) -> Result<Vec<WriteSession>, crate::db::DbError> {
        let rows = self.db.query("write sessions", SESSIONS_SQL, &[]).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let addr: Option<String> = r.get(3);
                let host = self.hosts.host_for(addr.as_deref());
                let query: Option<String> = r.get(6);
                let xid: bool = r.get(7);
                let from_ours = host.as_ref().is_some_and(|h| self.host_names.contains(h));
                let state: Option<String> = r.get(5);
                let running = state.as_deref() == Some("active");
                let writes = xid || (running && query.as_deref().is_some_and(is_write));
                (from_ours && writes).then(|| WriteSession {
                    pid: r.get(0),
                    usename: r.get(1),
                    application_name: r.get(2),
                    client_addr: addr,
                    backend_start: r.get(4),
                    state: r.get(5),
                    query: query.map(|q| crate::db::activity::redact_query(redactor, &q)),
                })
            })
            .collect())
    }

    /// Rows written per table since the baseline; a table re-created (new
    /// OID) or created during the hold counts all its writes, at least 1.
    pub(super) async fn table_writes(&self) -> Result<BTreeMap<String, i64>, crate::db::DbError> {
        let now = self.counters().await?;
        let mut w = BTreeMap::new();
        for (t, (oid, n)) in &now {
            let d = match self.baseline.get(t) {
                Some((o, b)) if o == oid => n - b,
                _ => (*n).max(1),
            };
            w.insert(t.clone(), d);
        }
        for t in self.baseline.keys() {
            if !now.contains_key(t) {
                w.insert(t.clone(), 1);
            }
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_told_from_reads() {
        assert!(is_write("insert into t values (1)"));
        assert!(is_write("  DELETE FROM \"User\""));
        assert!(is_write("COPY t FROM STDIN"));
        assert!(!is_write("COPY t TO STDOUT"));
        assert!(!is_write("SELECT 1"));
    }
}
