//! Who is writing, seen from the database: client sessions from
//! pg_stat_activity (query text redacted) mapped to inventory hosts, and
//! per-table write deltas between two samples. Never shows a secret.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;

use super::connect::DbHandle;
use super::error::DbError;
use super::tables::TableStat;
use crate::inventory::{DatabaseSpec, Inventory, TransportKind};
use crate::redact::Redactor;

/// One client session on the database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub pid: i32,
    pub application_name: String,
    /// None for a Unix-socket connection.
    pub client_addr: Option<String>,
    pub usename: Option<String>,
    /// active, idle, idle in transaction, ...
    pub state: Option<String>,
    /// Current or last statement, redacted and cut to 500 characters.
    pub query: Option<String>,
    pub backend_start: Option<DateTime<Utc>>,
    pub xact_start: Option<DateTime<Utc>>,
    pub query_start: Option<DateTime<Utc>>,
    /// The inventory host the client connects from, when known.
    pub host: Option<String>,
}

const SESSIONS_SQL: &str = "\
SELECT pid, coalesce(application_name, '')::text, host(client_addr), usename::text, state,
       query, backend_start, xact_start, query_start
  FROM pg_catalog.pg_stat_activity
 WHERE datname = current_database()
   AND backend_type = 'client backend'
   AND pid <> ALL($1)
 ORDER BY backend_start, pid";

static SQL_PASSWORD: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\b(password\s+)E?'(?:[^']|'')*'").ok());

/// Masks secrets in a statement: the redactor's, plus `PASSWORD '...'` in
/// `CREATE/ALTER ROLE` (which the generic patterns do not know).
pub fn redact_query(redactor: &Redactor, q: &str) -> String {
    let mut s = redactor.redact(q);
    if let Some(re) = SQL_PASSWORD.as_ref() {
        s = re.replace_all(&s, "${1}'***'").into_owned();
    }
    if s.chars().count() > 500 {
        s = s.chars().take(500).collect::<String>() + "...";
    }
    s
}

/// Client sessions on this database, except lifeline's own (`exclude_pids`).
pub async fn sessions(
    db: &DbHandle,
    exclude_pids: &[i32],
    redactor: &Redactor,
    hosts: Option<&HostMap>,
) -> Result<Vec<Session>, DbError> {
    let exclude: Vec<i32> = exclude_pids.to_vec();
    let rows = db.query("list sessions", SESSIONS_SQL, &[&exclude]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let client_addr: Option<String> = r.get(2);
            Session {
                pid: r.get(0),
                application_name: redactor.redact(&r.get::<_, String>(1)),
                host: hosts.and_then(|h| h.host_for(client_addr.as_deref())),
                client_addr,
                usename: r.get(3),
                state: r.get(4),
                query: r
                    .get::<_, Option<String>>(5)
                    .map(|q| redact_query(redactor, &q)),
                backend_start: r.get(6),
                xact_start: r.get(7),
                query_start: r.get(8),
            }
        })
        .collect())
}

/// Rows written to one table between two samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableWrites {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
}

/// Write deltas per table (same OID in both samples; counters that went
/// backwards, after a statistics reset, count from zero). Tables with no
/// writes are left out.
pub fn write_deltas(before: &[TableStat], after: &[TableStat]) -> Vec<TableWrites> {
    let prev: HashMap<u32, &TableStat> = before.iter().map(|t| (t.oid, t)).collect();
    let d = |a: i64, b: i64| if a >= b { a - b } else { a };
    after
        .iter()
        .filter_map(|t| {
            let p = prev.get(&t.oid)?;
            let w = TableWrites {
                schema: t.schema.clone(),
                name: t.name.clone(),
                oid: t.oid,
                inserted: d(t.n_tup_ins, p.n_tup_ins),
                updated: d(t.n_tup_upd, p.n_tup_upd),
                deleted: d(t.n_tup_del, p.n_tup_del),
            };
            (w.inserted + w.updated + w.deleted > 0).then_some(w)
        })
        .collect()
}

/// Client addresses to inventory hosts. Loopback and Unix-socket clients
/// run on the database's own machine: its `host`, else the inventory's
/// `local` host when the database itself is reached over loopback or a socket.
#[derive(Debug, Clone, Default)]
pub struct HostMap {
    by_ip: Vec<(IpAddr, String)>,
    local: Option<String>,
}

impl HostMap {
    /// Resolves every ssh host's address (DNS lookups, concurrently).
    pub async fn resolve(inv: &Inventory, db: &DatabaseSpec) -> HostMap {
        let mut by_ip = Vec::new();
        let lookups = inv.hosts.iter().filter_map(|h| {
            let (addr, port) = h.socket_address()?;
            let name = h.name().to_string();
            Some(async move {
                let ips: Vec<IpAddr> = match tokio::time::timeout(
                    std::time::Duration::from_secs(3),
                    tokio::net::lookup_host((addr.as_str(), port)),
                )
                .await
                {
                    Ok(Ok(it)) => it.map(|a| a.ip()).collect(),
                    _ => Vec::new(),
                };
                (name, ips)
            })
        });
        for (name, ips) in futures_util::future::join_all(lookups).await {
            for ip in ips {
                by_ip.push((ip, name.clone()));
            }
        }
        let db_is_local = db.pg_url().is_some_and(|u| {
            u.host.starts_with('/')
                || u.host == "localhost"
                || u.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        });
        let local = db.host.as_ref().map(|h| h.get_ref().clone()).or_else(|| {
            if db_is_local {
                inv.hosts
                    .iter()
                    .find(|h| h.transport == TransportKind::Local)
                    .map(|h| h.name().to_string())
            } else {
                None
            }
        });
        HostMap { by_ip, local }
    }

    pub fn from_parts(by_ip: Vec<(IpAddr, String)>, local: Option<String>) -> HostMap {
        HostMap { by_ip, local }
    }

    /// The inventory host for a client address (`None` = Unix socket).
    pub fn host_for(&self, client_addr: Option<&str>) -> Option<String> {
        let Some(a) = client_addr else {
            return self.local.clone();
        };
        let ip: IpAddr = a.parse().ok()?;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if ip.is_loopback() {
            return self.local.clone();
        }
        self.by_ip
            .iter()
            .find(|(x, _)| *x == ip)
            .map(|(_, n)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tables::EstimateSource;

    #[test]
    fn role_passwords_are_masked() {
        let r = Redactor::new();
        let q = redact_query(&r, "ALTER ROLE app PASSWORD 'n3w''pw' VALID UNTIL 'x'");
        assert!(!q.contains("n3w"), "{q}");
        assert!(q.contains("VALID UNTIL"), "{q}");
        r.add_secret("hunter2hunter2");
        assert_eq!(redact_query(&r, "select 'hunter2hunter2'"), "select '***'");
    }

    fn t(oid: u32, ins: i64, upd: i64, del: i64) -> TableStat {
        TableStat {
            schema: "public".into(),
            name: format!("t{oid}"),
            oid,
            estimate: 0,
            source: EstimateSource::None,
            n_tup_ins: ins,
            n_tup_upd: upd,
            n_tup_del: del,
        }
    }

    #[test]
    fn deltas() {
        let before = vec![t(1, 10, 0, 0), t(2, 5, 5, 5), t(3, 100, 0, 0)];
        let after = vec![
            t(1, 15, 1, 22),
            t(2, 5, 5, 5),
            t(3, 4, 0, 0),
            t(9, 50, 0, 0),
        ];
        let w = write_deltas(&before, &after);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].inserted, w[0].updated, w[0].deleted), (5, 1, 22));
        assert_eq!(w[1].oid, 3);
        assert_eq!(w[1].inserted, 4);
    }

    #[test]
    fn host_mapping() {
        let m = HostMap::from_parts(
            vec![("10.0.0.5".parse().unwrap(), "prod".into())],
            Some("db-host".into()),
        );
        assert_eq!(m.host_for(Some("10.0.0.5")).as_deref(), Some("prod"));
        assert_eq!(m.host_for(Some("::ffff:10.0.0.5")).as_deref(), Some("prod"));
        assert_eq!(m.host_for(Some("127.0.0.1")).as_deref(), Some("db-host"));
        assert_eq!(m.host_for(None).as_deref(), Some("db-host"));
        assert_eq!(m.host_for(Some("10.9.9.9")), None);
    }
}
