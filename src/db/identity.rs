//! Which database answered (address, system identifier, start time, OID)
//! and in what state it is: unreachable, auth-failed, missing, empty, ok;
//! plus the migration tables of common tools (incident 4). Reads only.

use serde::Serialize;

use super::connect::DbHandle;
use super::error::{DbError, ErrorClass};
use super::quote_qualified;
pub use crate::engine::types::{DbIdentity, IdentityChange};

/// What the identity query also reads that is not identity: shown by
/// status and verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerFacts {
    pub server_version: String,
    /// `pg_database_size(current_database())`.
    pub size_bytes: i64,
}

/// The OID of database `name` on the server `c` is connected to (None:
/// no database of that name).
pub async fn database_oid(
    c: &tokio_postgres::Client,
    server: &str,
    name: &str,
) -> Result<Option<u32>, DbError> {
    let row = c
        .query_opt("SELECT oid FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| DbError::from_query(server, "the database's OID", &e))?;
    Ok(row.map(|r| r.get::<_, u32>(0)))
}

/// The identity the engine confirms and re-checks before a destructive
/// step (the core's type, filled here): the server's system identifier and
/// start time, and the OID of `dbname`, read over a connection to any
/// database of that server, so a missing database has an identity too.
pub async fn server_identity(
    c: &tokio_postgres::Client,
    server: &str,
    dbname: &str,
) -> Result<DbIdentity, DbError> {
    let row = c
        .query_one(
            "SELECT (SELECT system_identifier FROM pg_control_system()), pg_postmaster_start_time()",
            &[],
        )
        .await
        .map_err(|e| DbError::from_query(server, "the server's identity", &e))?;
    let sysid: i64 = row.get(0);
    Ok(DbIdentity {
        server: server.to_string(),
        system_identifier: (sysid as u64).to_string(),
        database: dbname.to_string(),
        oid: database_oid(c, server, dbname).await?,
        server_started_at: row.get(1),
    })
}

const IDENTITY_SQL: &str = "\
SELECT current_database()::text,
       (SELECT system_identifier FROM pg_catalog.pg_control_system()),
       pg_catalog.pg_postmaster_start_time(),
       (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()),
       pg_catalog.pg_database_size(current_database()),
       current_setting('server_version')";

/// The identity of the database `db` is connected to.
pub async fn identity(db: &DbHandle) -> Result<DbIdentity, DbError> {
    Ok(identity_and_facts(db).await?.0)
}

/// The identity, and the server version and database size, in one query.
pub async fn identity_and_facts(db: &DbHandle) -> Result<(DbIdentity, ServerFacts), DbError> {
    let rows = db.query("identity", IDENTITY_SQL, &[]).await?;
    let r = rows.first().ok_or_else(|| DbError::Other {
        target: db.target(),
        what: "identity".into(),
        reason: "no row returned".into(),
    })?;
    let sysid: i64 = r.get(1);
    Ok((
        DbIdentity {
            server: db.server(),
            database: r.get(0),
            system_identifier: (sysid as u64).to_string(),
            server_started_at: Some(r.get(2)),
            oid: r.get(3),
        },
        ServerFacts {
            size_bytes: r.get(4),
            server_version: r.get(5),
        },
    ))
}

/// The health states of a database (contract: `databases[].health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// The server does not answer.
    Unreachable,
    /// The server refused the credentials.
    AuthFailed,
    /// The server is up; no database by that name (SQLSTATE 3D000).
    Missing,
    /// Connected, but the database has no user tables.
    Empty,
    Ok,
    /// Anything else (TLS failure, too many connections, a failing query):
    /// see `error.class`.
    Error,
}

impl Health {
    pub fn from_class(c: ErrorClass) -> Health {
        match c {
            ErrorClass::Unreachable => Health::Unreachable,
            ErrorClass::AuthFailed => Health::AuthFailed,
            ErrorClass::Missing => Health::Missing,
            _ => Health::Error,
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Unreachable => "unreachable",
            Health::AuthFailed => "auth-failed",
            Health::Missing => "missing",
            Health::Empty => "empty",
            Health::Ok => "ok",
            Health::Error => "error",
        })
    }
}

/// A classified error as shown and serialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    pub class: ErrorClass,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    pub message: String,
}

impl ErrorInfo {
    /// The message, with ` (SQLSTATE x)` when the message does not say it already.
    pub fn text(&self) -> String {
        match self.sqlstate.as_deref() {
            Some(s) if !self.message.contains(s) => format!("{} (SQLSTATE {s})", self.message),
            _ => self.message.clone(),
        }
    }

    pub fn from_error(e: &DbError) -> ErrorInfo {
        ErrorInfo {
            class: e.class(),
            sqlstate: e.sqlstate().map(str::to_string),
            message: e.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<DbIdentity>,
    /// `server_version`, `size_bytes` beside the identity.
    #[serde(flatten)]
    pub facts: Option<ServerFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Number of user tables (tables and partitioned tables outside the system schemas).
    pub user_tables: i64,
    pub migrations: Vec<MigrationState>,
}

impl HealthReport {
    fn failed(e: &DbError) -> HealthReport {
        HealthReport {
            health: Health::from_class(e.class()),
            identity: None,
            facts: None,
            error: Some(ErrorInfo::from_error(e)),
            user_tables: 0,
            migrations: Vec::new(),
        }
    }
}

const USER_TABLES_SQL: &str = "\
SELECT count(*) FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// Connects (if needed) and classifies the database.
pub async fn health(db: &DbHandle) -> HealthReport {
    let (id, facts) = match identity_and_facts(db).await {
        Ok(x) => x,
        Err(e) => return HealthReport::failed(&e),
    };
    let user_tables = match db.query("count user tables", USER_TABLES_SQL, &[]).await {
        Ok(rows) => rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0),
        Err(e) => {
            let mut r = HealthReport::failed(&e);
            r.identity = Some(id);
            r.facts = Some(facts);
            return r;
        }
    };
    let migrations = migrations(db).await.unwrap_or_else(|e| {
        vec![MigrationState {
            tool: None,
            table: String::new(),
            present: false,
            count: None,
            last: None,
            flagged: None,
            error: Some(e.to_string()),
            history: None,
        }]
    });
    HealthReport {
        health: if user_tables == 0 {
            Health::Empty
        } else {
            Health::Ok
        },
        identity: Some(id),
        facts: Some(facts),
        error: None,
        user_tables,
        migrations,
    }
}

pub use crate::migrations::{MigrationState, MigrationTool};

struct ToolDef {
    tool: MigrationTool,
    table: &'static str,
    /// SQL expression (over the table) naming one migration, and the order giving the last.
    last_expr: &'static str,
    order: &'static str,
    /// SQL expression for when a migration was applied (None: the tool keeps no time).
    at_expr: Option<&'static str>,
    /// Other tables this tool creates: their presence without the migration table is a trace.
    traces: &'static [&'static str],
}

const TOOLS: &[ToolDef] = &[
    ToolDef {
        tool: MigrationTool::Prisma,
        table: "_prisma_migrations",
        last_expr: "migration_name::text",
        order: "started_at DESC NULLS LAST, migration_name DESC",
        at_expr: Some("coalesce(finished_at, started_at)"),
        traces: &[],
    },
    ToolDef {
        tool: MigrationTool::Flyway,
        table: "flyway_schema_history",
        last_expr: "coalesce(version::text || ' ', '') || description::text",
        order: "installed_rank DESC",
        at_expr: Some("installed_on"),
        traces: &[],
    },
    ToolDef {
        tool: MigrationTool::Alembic,
        table: "alembic_version",
        last_expr: "version_num::text",
        order: "version_num DESC",
        at_expr: None,
        traces: &[],
    },
    ToolDef {
        tool: MigrationTool::Rails,
        table: "schema_migrations",
        last_expr: "version::text",
        order: "version::text DESC",
        at_expr: None,
        traces: &["ar_internal_metadata"],
    },
    ToolDef {
        tool: MigrationTool::Django,
        table: "django_migrations",
        last_expr: "app::text || '.' || name::text",
        order: "applied DESC, id DESC",
        at_expr: Some("applied"),
        traces: &["django_content_type", "auth_permission", "django_session"],
    },
    ToolDef {
        tool: MigrationTool::Diesel,
        table: "__diesel_schema_migrations",
        last_expr: "version::text",
        order: "version DESC",
        at_expr: Some("run_on"),
        traces: &[],
    },
    ToolDef {
        tool: MigrationTool::Sqlx,
        table: "_sqlx_migrations",
        last_expr: "version::text || ' ' || description::text",
        order: "version DESC",
        at_expr: Some("installed_on"),
        traces: &[],
    },
];

const FIND_TABLES_SQL: &str = "\
SELECT c.relname::text, n.nspname::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1)
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY (n.nspname = 'public') DESC, n.nspname";

/// The migration tables of every tool that left a trace, flagged when the
/// database holds data but the history is empty or missing (incident 4).
pub async fn migrations(db: &DbHandle) -> Result<Vec<MigrationState>, DbError> {
    let mut names: Vec<String> = Vec::new();
    for t in TOOLS {
        names.push(t.table.to_string());
        names.extend(t.traces.iter().map(|s| s.to_string()));
    }
    let found = db
        .query("find migration tables", FIND_TABLES_SQL, &[&names])
        .await?;
    let schema_of = |table: &str| -> Option<String> {
        found
            .iter()
            .find(|r| r.get::<_, String>(0) == table)
            .map(|r| r.get::<_, String>(1))
    };
    let mut out = Vec::new();
    let mut suspicious = Vec::new();
    for t in TOOLS {
        match schema_of(t.table) {
            Some(schema) => {
                let q = quote_qualified(&schema, t.table);
                let sql = format!(
                    "SELECT (SELECT count(*) FROM {q}), (SELECT {} FROM {q} ORDER BY {} LIMIT 1)",
                    t.last_expr, t.order
                );
                let mut st = MigrationState {
                    tool: Some(t.tool),
                    table: format!("{schema}.{}", t.table),
                    present: true,
                    count: None,
                    last: None,
                    flagged: None,
                    error: None,
                    history: None,
                };
                match db.query("read migration table", &sql, &[]).await {
                    Ok(rows) => {
                        if let Some(r) = rows.first() {
                            st.count = Some(r.get(0));
                            st.last = r.get(1);
                        }
                    }
                    Err(e) => st.error = Some(e.to_string()),
                }
                if st.error.is_none() {
                    match history(db, t, &q, st.count.unwrap_or(0)).await {
                        Ok(h) => st.history = Some(h),
                        Err(e) => st.error = Some(e.to_string()),
                    }
                }
                if st.count == Some(0) {
                    suspicious.push((out.len(), format!(
                        "the database holds data but '{}' is empty: {:?} would treat it as new and apply every migration from the first (incident 4); back up before any deploy",
                        st.table, t.tool
                    )));
                }
                out.push(st);
            }
            None => {
                let traces: Vec<&str> = t
                    .traces
                    .iter()
                    .copied()
                    .filter(|tr| schema_of(tr).is_some())
                    .collect();
                if !traces.is_empty() {
                    suspicious.push((out.len(), format!(
                        "'{}' is missing although {} exist(s) and the database holds data: {:?} would apply every migration from the first (incident 4); back up before any deploy",
                        t.table,
                        traces.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "),
                        t.tool
                    )));
                    out.push(MigrationState {
                        tool: Some(t.tool),
                        table: t.table.to_string(),
                        present: false,
                        count: None,
                        last: None,
                        flagged: None,
                        error: None,
                        history: None,
                    });
                }
            }
        }
    }
    if !suspicious.is_empty() {
        let exclude: Vec<String> = names;
        if has_data(db, &exclude).await? {
            for (i, why) in suspicious {
                if let Some(st) = out.get_mut(i) {
                    st.flagged = Some(why);
                }
            }
        }
    }
    Ok(out)
}

/// The newest `MAX_ROWS` migrations of one tool's table `q` (quoted),
/// names cut in SQL (a hostile name never crosses the wire whole) and
/// made visible in `History::from_rows`.
async fn history(
    db: &DbHandle,
    t: &ToolDef,
    q: &str,
    total: i64,
) -> Result<crate::migrations::History, DbError> {
    let at = t.at_expr.unwrap_or("NULL");
    let sql = format!(
        "SELECT left(({})::text, {}), ({at})::timestamptz FROM {q} ORDER BY {} LIMIT {}",
        t.last_expr,
        crate::migrations::MAX_NAME + 1,
        t.order,
        crate::migrations::MAX_ROWS
    );
    let rows = db.query("read migration history", &sql, &[]).await?;
    let newest_first = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, Option<String>>(0).unwrap_or_default(),
                r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(1),
            )
        })
        .collect();
    Ok(crate::migrations::History::from_rows(
        t.tool.as_str(),
        t.at_expr.is_some(),
        total,
        newest_first,
    ))
}

const DATA_CANDIDATES_SQL: &str = "\
SELECT n.nspname::text, c.relname::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind = 'r' AND NOT (c.relname = ANY($1))
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
 ORDER BY greatest(c.reltuples, coalesce(s.n_live_tup, 0)) DESC, 1, 2
 LIMIT 200";

/// Whether any user table (other than `exclude`) holds a row: an exact
/// `EXISTS` over the 200 largest-looking tables, in one statement.
pub async fn has_data(db: &DbHandle, exclude: &[String]) -> Result<bool, DbError> {
    let rows = db
        .query("list tables", DATA_CANDIDATES_SQL, &[&exclude])
        .await?;
    if rows.is_empty() {
        return Ok(false);
    }
    let probes: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "EXISTS (SELECT 1 FROM {})",
                quote_qualified(&r.get::<_, String>(0), &r.get::<_, String>(1))
            )
        })
        .collect();
    let sql = format!("SELECT {}", probes.join(" OR "));
    let rows = db.query("probe for data", &sql, &[]).await?;
    Ok(rows.first().map(|r| r.get::<_, bool>(0)).unwrap_or(false))
}
