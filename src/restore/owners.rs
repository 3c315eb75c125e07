//! Ownership a restore skipped (`--no-owner`): recorded, then re-applied by
//! the admin session, rebuilt with the one quoting helper. Never replays dump
//! text verbatim, never gives an object to a missing role.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::sql::{Tok, quote_ident, tokenize};

/// Object kinds pg_dump writes `ALTER <kind> ... OWNER TO` for; longest first.
const KINDS: &[&str] = &[
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "FOREIGN DATA WRAPPER",
    "MATERIALIZED VIEW",
    "OPERATOR CLASS",
    "OPERATOR FAMILY",
    "FOREIGN TABLE",
    "LARGE OBJECT",
    "AGGREGATE",
    "COLLATION",
    "CONVERSION",
    "DOMAIN",
    "FUNCTION",
    "PROCEDURE",
    "ROUTINE",
    "OPERATOR",
    "SCHEMA",
    "SEQUENCE",
    "SERVER",
    "STATISTICS",
    "TABLE",
    "TYPE",
    "VIEW",
];

pub use crate::engine::types::OwnerChange;

fn is_op(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

/// The owner change a statement makes, when it is exactly pg_dump's
/// `ALTER <kind> <object> OWNER TO <role>` with an object made only of
/// names, numbers and punctuation (no string, no dollar quote, no `;`).
pub fn owner_change(sql: &str, line: u64) -> Option<OwnerChange> {
    let mut toks = tokenize(sql);
    while matches!(toks.last(), Some((Tok::Punct(b';'), _, _))) {
        toks.pop();
    }
    let n = toks.len();
    if n < 5 || !toks[0].0.is_word("alter") {
        return None;
    }
    if !toks[n - 3].0.is_word("owner") || !toks[n - 2].0.is_word("to") {
        return None;
    }
    let owner = toks[n - 1].0.ident()?;
    let kind = KINDS.iter().find(|k| {
        let words: Vec<&str> = k.split(' ').collect();
        words.len() < n - 3
            && words
                .iter()
                .enumerate()
                .all(|(i, w)| toks[1 + i].0.is_word(w))
    })?;
    let start = 1 + kind.split(' ').count();
    let body = &toks[start..n - 3];
    if body.is_empty() {
        return None;
    }
    let mut object = String::new();
    let mut prev: Option<&Tok<'_>> = None;
    for (t, a, b) in body {
        let piece = match t {
            Tok::Word(w) => (*w).to_string(),
            Tok::Quoted(q) => quote_ident(q),
            Tok::Num => sql.get(*a..*b)?.to_string(),
            Tok::Punct(c) if matches!(c, b'.' | b'(' | b')' | b',' | b'[' | b']') || is_op(*c) => {
                (*c as char).to_string()
            }
            _ => return None,
        };
        let glue = match (prev, t) {
            (None, _) => true,
            (Some(Tok::Punct(b'.')), _)
            | (_, Tok::Punct(b'.' | b'(' | b')' | b',' | b'[' | b']')) => true,
            (Some(Tok::Punct(b'(' | b'[')), _) => true,
            (Some(Tok::Punct(p)), Tok::Punct(c)) => is_op(*p) && is_op(*c),
            _ => false,
        };
        if !glue {
            object.push(' ');
        }
        object.push_str(&piece);
        prev = Some(t);
    }
    Some(OwnerChange {
        kind: kind.to_string(),
        object,
        owner,
        line,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    #[error(
        "the restored database holds {0} event trigger(s): they would fire as the admin role on ALTER ... OWNER TO; the owners are not re-applied (drop them after review, or restore again with a restore_role)"
    )]
    EventTriggers(i64),
    #[error("'{what}' on the server failed: {message}")]
    Db { what: String, message: String },
}

/// What [`reapply`] did, per recorded change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapplyReport {
    /// Statements run (as built by [`OwnerChange::sql`]).
    pub applied: Vec<String>,
    /// Changes left out because the role does not exist on the server.
    pub missing_role: Vec<OwnerChange>,
    /// Statements the server refused, with its message.
    pub failed: Vec<(String, String)>,
    /// Functions not given to a superuser because the database holds
    /// SECURITY DEFINER functions: owned by a superuser, such a function
    /// would run the backup's code with its privileges for anyone who calls
    /// it. Review them and run [`OwnerChange::sql`] by hand if they are wanted.
    #[serde(default)]
    pub held: Vec<OwnerChange>,
}

/// Re-applies recorded owners in the restored database `admin` is
/// connected to (as the admin role), only for roles that exist; with
/// `database`, (name, owner) of the database itself first (the restore
/// role owned it for the load). Refused when the database holds event
/// triggers (they would run as the admin).
pub async fn reapply(
    admin: &Client,
    changes: &[OwnerChange],
    database: Option<(&str, &str)>,
) -> Result<ReapplyReport, OwnersError> {
    let db = |what: &str, e: tokio_postgres::Error| OwnersError::Db {
        what: what.to_string(),
        message: super::exec::ServerError::from_pg(&e).to_string(),
    };
    let triggers: i64 = admin
        .query_one("SELECT count(*) FROM pg_event_trigger", &[])
        .await
        .map_err(|e| db("count event triggers", e))?
        .get(0);
    if triggers > 0 {
        return Err(OwnersError::EventTriggers(triggers));
    }
    let definers: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_proc WHERE prosecdef \
             AND pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)",
            &[],
        )
        .await
        .map_err(|e| db("count SECURITY DEFINER functions", e))?
        .get(0);
    let mut report = ReapplyReport::default();
    let db_change = database.map(|(name, owner)| OwnerChange {
        kind: "DATABASE".into(),
        object: quote_ident(name),
        owner: owner.to_string(),
        line: 0,
    });
    for c in db_change.iter().chain(changes) {
        let role = admin
            .query_opt(
                "SELECT rolsuper FROM pg_roles WHERE rolname = $1",
                &[&c.owner],
            )
            .await
            .map_err(|e| db("look up the role", e))?;
        let Some(role) = role else {
            report.missing_role.push(c.clone());
            continue;
        };
        let superuser: bool = role.get(0);
        let routine = matches!(
            c.kind.as_str(),
            "FUNCTION" | "PROCEDURE" | "ROUTINE" | "AGGREGATE"
        );
        if superuser && routine && definers > 0 {
            report.held.push(c.clone());
            continue;
        }
        let sql = c.sql();
        match admin.batch_execute(&sql).await {
            Ok(()) => report.applied.push(sql),
            Err(e) => {
                let msg = super::exec::ServerError::from_pg(&e).to_string();
                report.failed.push((sql, msg));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("ALTER TABLE public.t OWNER TO app;", "TABLE", "public.t", "app")]
    #[case(
        "ALTER TABLE \"Sales\".\"Order\" OWNER TO \"App Owner\";",
        "TABLE",
        "\"Sales\".\"Order\"",
        "App Owner"
    )]
    #[case(
        "ALTER FUNCTION public.f(integer, character varying) OWNER TO x;",
        "FUNCTION",
        "public.f(integer, character varying)",
        "x"
    )]
    #[case(
        "ALTER PROCEDURE public.bump(IN n integer) OWNER TO x;",
        "PROCEDURE",
        "public.bump(IN n integer)",
        "x"
    )]
    #[case(
        "ALTER MATERIALIZED VIEW public.mv OWNER TO x;",
        "MATERIALIZED VIEW",
        "public.mv",
        "x"
    )]
    #[case("ALTER LARGE OBJECT 16385 OWNER TO x;", "LARGE OBJECT", "16385", "x")]
    #[case(
        "ALTER FUNCTION public.g(integer[]) OWNER TO x;",
        "FUNCTION",
        "public.g(integer[])",
        "x"
    )]
    fn owner_changes(
        #[case] sql: &str,
        #[case] kind: &str,
        #[case] object: &str,
        #[case] owner: &str,
    ) {
        let c = owner_change(sql, 7).unwrap();
        assert_eq!(
            (c.kind.as_str(), c.object.as_str(), c.owner.as_str()),
            (kind, object, owner)
        );
        assert!(
            c.sql()
                .ends_with(&format!("OWNER TO {}", quote_ident(owner)))
        );
    }

    #[rstest]
    #[case("ALTER TABLE public.t ADD COLUMN b int;")]
    #[case("ALTER TABLE public.t OWNER TO x; DROP DATABASE other")]
    #[case("ALTER FUNCTION public.f('a') OWNER TO x;")]
    #[case("ALTER FUNCTION public.f($$a$$) OWNER TO x;")]
    #[case("ALTER DATABASE app OWNER TO x;")]
    #[case("ALTER ROLE a OWNER TO x;")]
    #[case("ALTER TABLE OWNER TO x;")]
    fn not_owner_changes(#[case] sql: &str) {
        assert_eq!(owner_change(sql, 1), None, "{sql}");
    }
}
