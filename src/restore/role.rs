//! The restore role a restore session logs in as: judged from pg_roles,
//! pg_auth_members and pg_database; made LOGIN-only after a typed confirmation.
//! Never grants anything beyond LOGIN, never alters an existing role.

use tokio_postgres::Client;

use super::sql::quote_ident;

/// Built-in roles whose members reach the server's files, programs or
/// other sessions.
pub const DANGEROUS_MEMBERSHIPS: &[&str] = &[
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_signal_backend",
    "pg_read_all_data",
    "pg_write_all_data",
];

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error(
        "restore_role '{role}' is refused: {}; a restore runs a backup's functions (CHECK constraints, index expressions, triggers) with this role's privileges: use a role made only for restores (lifeline can create one: LOGIN, nothing else)",
        why.join("; ")
    )]
    Privileged { role: String, why: Vec<String> },
    #[error("restore_role '{0}' is not a usable role name (empty, or longer than 63 bytes)")]
    BadName(String),
    #[error("'{what}' on the server failed: {message}")]
    Db { what: String, message: String },
}

/// What the server says about a restore role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleStatus {
    /// No such role: it may be created after a typed confirmation.
    Missing,
    /// Exists and holds nothing beyond LOGIN.
    Fit,
}

fn db(what: &str, e: &tokio_postgres::Error) -> RoleError {
    RoleError::Db {
        what: what.to_string(),
        message: super::exec::ServerError::from_pg(e).to_string(),
    }
}

fn check_name(role: &str) -> Result<(), RoleError> {
    if role.is_empty() || role.len() > 63 || role.contains('\0') {
        return Err(RoleError::BadName(role.to_string()));
    }
    Ok(())
}

/// Judges `role` on the server `admin` is connected to: refused when it is
/// a superuser, may create roles or databases, replicate, bypass row
/// security, cannot log in, is a member of any role (SET ROLE would act
/// with that role's privileges; the built-in file/program/signal roles are
/// named), or owns a database that is not a restore target.
pub async fn check_restore_role(admin: &Client, role: &str) -> Result<RoleStatus, RoleError> {
    check_name(role)?;
    let Some(r) = admin
        .query_opt(
            "SELECT oid, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin \
             FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .map_err(|e| db("read pg_roles", &e))?
    else {
        return Ok(RoleStatus::Missing);
    };
    let oid: tokio_postgres::types::Oid = r.get(0);
    let mut why = Vec::new();
    for (i, attr) in [
        (1, "SUPERUSER"),
        (2, "CREATEROLE"),
        (3, "CREATEDB"),
        (4, "REPLICATION"),
        (5, "BYPASSRLS"),
    ] {
        if r.get::<_, bool>(i) {
            why.push(format!("it has {attr}"));
        }
    }
    if !r.get::<_, bool>(6) {
        why.push("it cannot log in (NOLOGIN): restore sessions log in as it".into());
    }
    let member_of: Vec<String> = admin
        .query(
            "WITH RECURSIVE up(oid) AS (SELECT roleid FROM pg_auth_members WHERE member = $1 \
             UNION SELECT m.roleid FROM pg_auth_members m JOIN up ON m.member = up.oid) \
             SELECT rolname::text FROM pg_roles WHERE oid IN (SELECT oid FROM up) ORDER BY 1",
            &[&oid],
        )
        .await
        .map_err(|e| db("read pg_auth_members", &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let dangerous: Vec<&String> = member_of
        .iter()
        .filter(|m| DANGEROUS_MEMBERSHIPS.contains(&m.as_str()))
        .collect();
    if !dangerous.is_empty() {
        why.push(format!(
            "it is a member of {} (the server's files, programs or other sessions)",
            dangerous
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let other: Vec<&String> = member_of
        .iter()
        .filter(|m| !DANGEROUS_MEMBERSHIPS.contains(&m.as_str()))
        .collect();
    if !other.is_empty() {
        why.push(format!(
            "it is a member of {} (SET ROLE would act with its privileges)",
            other
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let owns: Vec<String> = admin
        .query(
            "SELECT datname::text FROM pg_database WHERE datdba = $1 \
             AND datname NOT LIKE '%\\_\\_restore\\_%' ORDER BY 1",
            &[&oid],
        )
        .await
        .map_err(|e| db("read pg_database", &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !owns.is_empty() {
        why.push(format!(
            "it owns database(s) {} (a backup's function could alter them)",
            owns.iter()
                .map(|d| format!("'{d}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if why.is_empty() {
        Ok(RoleStatus::Fit)
    } else {
        Err(RoleError::Privileged {
            role: role.to_string(),
            why,
        })
    }
}

pub use crate::engine::types::create_role_sql;

/// Creates `role` with LOGIN and nothing else (no password: it logs in
/// through the server's local authentication, like the inventory's user),
/// then judges it again. Call only after the operator typed the confirmation.
pub async fn create_restore_role(admin: &Client, role: &str) -> Result<(), RoleError> {
    check_name(role)?;
    admin
        .batch_execute(&create_role_sql(role))
        .await
        .map_err(|e| db(&format!("CREATE ROLE {}", quote_ident(role)), &e))?;
    match check_restore_role(admin, role).await? {
        RoleStatus::Fit => Ok(()),
        RoleStatus::Missing => Err(RoleError::Db {
            what: "CREATE ROLE".into(),
            message: format!("role '{role}' is not there after it was created"),
        }),
    }
}
