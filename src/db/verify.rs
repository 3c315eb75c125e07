//! Integrity checks derived from the schema, not written per incident:
//! orphaned foreign-key rows (NOT VALID ones too), sequences behind their
//! column, invalid indexes, unvalidated constraints, the inventory's
//! `expect` rules, migration history, and amcheck when installed. Only
//! reads; a suggested fix is printed, never run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::connect::DbHandle;
use super::error::DbError;
use super::identity::{DbIdentity, ServerFacts, identity_and_facts, migrations};
use super::tables::{TableRef, estimates};
use super::{quote_ident, quote_qualified};
use crate::inventory::{Expect, NO_INVENTORY};
use crate::redact::Redactor;

/// Damage fails `verify` (exit 3); a warning is reported and does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Damage,
    Warning,
}

/// One check (contract: `checks[].kind`, `.target`, `.ok`, `.found`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// foreign-key, sequence, invalid-index, unvalidated-constraint,
    /// expect-min, migration-history, amcheck.
    pub kind: String,
    pub target: String,
    pub ok: bool,
    /// Offending rows / objects (for `sequence`: how many nextval() calls
    /// would return a value already in the column; for `expect-min`: the rows).
    pub found: i64,
    pub examples: Vec<String>,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The check could not run (timeout, permissions): neither ok nor damage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub sql: String,
    pub duration_ms: u64,
}

impl Check {
    fn new(kind: &str, target: String, severity: Severity, sql: String) -> Check {
        Check {
            kind: kind.to_string(),
            target,
            ok: true,
            found: 0,
            examples: Vec::new(),
            severity,
            detail: None,
            error: None,
            sql,
            duration_ms: 0,
        }
    }
    /// Failed with this severity (damage or warning), not errored.
    pub fn is_damage(&self) -> bool {
        !self.ok && self.error.is_none() && self.severity == Severity::Damage
    }
    pub fn is_warning(&self) -> bool {
        !self.ok && self.error.is_none() && self.severity == Severity::Warning
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Inventory name.
    pub database: String,
    pub identity: DbIdentity,
    /// `server_version`, `size_bytes` beside the identity.
    #[serde(flatten)]
    pub facts: ServerFacts,
    /// No damage found and every check ran.
    pub ok: bool,
    pub damage: usize,
    pub warnings: usize,
    pub errors: usize,
    pub checks: Vec<Check>,
    /// Checks not run, and why.
    pub skipped: Vec<String>,
    pub duration_ms: u64,
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

/// Renders `{"a":1,"b":"x"}` as `a=1, b=x`.
fn render_key(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn examples_from_json(text: Option<String>) -> Vec<String> {
    text.and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
        .unwrap_or_default()
        .iter()
        .map(render_key)
        .collect()
}

const FOREIGN_KEYS_SQL: &str = "\
SELECT c.conname::text, c.convalidated, cn.nspname::text, cl.relname::text, pn.nspname::text, pl.relname::text,
       array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
       array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
  FROM pg_catalog.pg_constraint c
  JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid
  JOIN pg_catalog.pg_namespace cn ON cn.oid = cl.relnamespace
  JOIN pg_catalog.pg_class pl ON pl.oid = c.confrelid
  JOIN pg_catalog.pg_namespace pn ON pn.oid = pl.relnamespace
 WHERE c.contype = 'f' AND c.conparentid = 0
   AND cn.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 3, 4, 1";

/// The orphan query for one foreign key: count and up to 5 distinct missing keys.
pub fn orphan_sql(
    child: (&str, &str),
    child_cols: &[String],
    parent: (&str, &str),
    parent_cols: &[String],
) -> String {
    let sel: Vec<String> = child_cols
        .iter()
        .map(|c| format!("c.{}", quote_ident(c)))
        .collect();
    let not_null: Vec<String> = sel.iter().map(|c| format!("{c} IS NOT NULL")).collect();
    let join: Vec<String> = child_cols
        .iter()
        .zip(parent_cols)
        .map(|(c, p)| format!("p.{} = c.{}", quote_ident(p), quote_ident(c)))
        .collect();
    format!(
        "WITH o AS (SELECT {} FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})) \
         SELECT (SELECT count(*) FROM o), (SELECT json_agg(x)::text FROM (SELECT DISTINCT * FROM o LIMIT 5) x)",
        sel.join(", "),
        quote_qualified(child.0, child.1),
        not_null.join(" AND "),
        quote_qualified(parent.0, parent.1),
        join.join(" AND ")
    )
}

async fn foreign_key_checks(db: &DbHandle) -> Result<Vec<Check>, DbError> {
    let fks = db.query("list foreign keys", FOREIGN_KEYS_SQL, &[]).await?;
    let mut out = Vec::new();
    for r in fks {
        let name: String = r.get(0);
        let validated: bool = r.get(1);
        let (cs, ct, ps, pt): (String, String, String, String) =
            (r.get(2), r.get(3), r.get(4), r.get(5));
        let ccols: Vec<String> = r.get(6);
        let pcols: Vec<String> = r.get(7);
        let sql = orphan_sql((&cs, &ct), &ccols, (&ps, &pt), &pcols);
        let target = format!(
            "{cs}.{ct}({}) -> {ps}.{pt}({})",
            ccols.join(", "),
            pcols.join(", ")
        );
        let mut c = Check::new("foreign-key", target, Severity::Damage, sql.clone());
        c.detail = Some(format!(
            "constraint '{name}'{}",
            if validated { "" } else { " (NOT VALID)" }
        ));
        let t = Instant::now();
        match db.query("orphan check", &sql, &[]).await {
            Ok(rows) => {
                if let Some(row) = rows.first() {
                    c.found = row.get(0);
                    c.examples = examples_from_json(row.get(1));
                }
                c.ok = c.found == 0;
            }
            Err(e) => {
                c.ok = false;
                c.error = Some(e.to_string());
            }
        }
        c.duration_ms = ms(t);
        out.push(c);
    }
    Ok(out)
}

const SEQUENCES_SQL: &str = "\
SELECT sn.nspname::text, s.relname::text, tn.nspname::text, t.relname::text, a.attname::text, seq.seqincrement
  FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
  JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
  JOIN pg_catalog.pg_sequence seq ON seq.seqrelid = s.oid
 WHERE d.classid = 'pg_catalog.pg_class'::regclass
   AND d.refclassid = 'pg_catalog.pg_class'::regclass
   AND d.deptype IN ('a', 'i')
   AND tn.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 3, 4, 5";

/// How many nextval() calls would hand out a value the column already holds.
pub fn sequence_collisions(
    last_value: i64,
    is_called: bool,
    increment: i64,
    col_max: Option<i64>,
    col_min: Option<i64>,
) -> i64 {
    let next = if is_called {
        last_value.saturating_add(increment)
    } else {
        last_value
    };
    match increment {
        i if i > 0 => col_max.map_or(0, |m| if next <= m { (m - next) / i + 1 } else { 0 }),
        i if i < 0 => col_min.map_or(0, |m| if next >= m { (next - m) / (-i) + 1 } else { 0 }),
        _ => 0,
    }
}

async fn sequence_checks(db: &DbHandle) -> Result<Vec<Check>, DbError> {
    let seqs = db.query("list sequences", SEQUENCES_SQL, &[]).await?;
    let mut out = Vec::new();
    for r in seqs {
        let (ss, sname, ts, tname, col): (String, String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let inc: i64 = r.get(5);
        let qcol = quote_ident(&col);
        let sql = format!(
            "SELECT s.last_value, s.is_called, (SELECT max({qcol})::int8 FROM {t}), (SELECT min({qcol})::int8 FROM {t}) FROM {seq} s",
            t = quote_qualified(&ts, &tname),
            seq = quote_qualified(&ss, &sname)
        );
        let mut c = Check::new(
            "sequence",
            format!("{ss}.{sname} -> {ts}.{tname}({col})"),
            Severity::Damage,
            sql.clone(),
        );
        let t = Instant::now();
        match db.query("sequence check", &sql, &[]).await {
            Ok(rows) => {
                if let Some(row) = rows.first() {
                    let (last, called): (i64, bool) = (row.get(0), row.get(1));
                    let (max, min): (Option<i64>, Option<i64>) = (row.get(2), row.get(3));
                    c.found = sequence_collisions(last, called, inc, max, min);
                    c.ok = c.found == 0;
                    if !c.ok {
                        let edge = if inc > 0 { max } else { min }.unwrap_or(0);
                        c.examples = vec![format!(
                            "last_value={last} is_called={called}, {}({col})={edge}",
                            if inc > 0 { "max" } else { "min" }
                        )];
                        c.detail = Some(format!(
                            "the next insert using the default collides with an existing {col}; fix: SELECT setval('{}', {edge})",
                            quote_qualified(&ss, &sname).replace('\'', "''")
                        ));
                    }
                }
            }
            Err(e) => {
                c.ok = false;
                c.error = Some(e.to_string());
            }
        }
        c.duration_ms = ms(t);
        out.push(c);
    }
    Ok(out)
}

const INVALID_INDEXES_SQL: &str = "\
SELECT n.nspname::text || '.' || ci.relname::text || ' on ' || ct.relname::text
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid
  JOIN pg_catalog.pg_class ct ON ct.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = ci.relnamespace
 WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1";

const UNVALIDATED_SQL: &str = "\
SELECT n.nspname::text || '.' || cl.relname::text || ': ' || c.conname::text
  FROM pg_catalog.pg_constraint c
  JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
 WHERE NOT c.convalidated AND n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1";

/// A check whose rows are the offending objects.
async fn list_check(
    db: &DbHandle,
    kind: &str,
    target: &str,
    severity: Severity,
    sql: &str,
    detail: &str,
) -> Check {
    let mut c = Check::new(kind, target.to_string(), severity, sql.to_string());
    let t = Instant::now();
    match db.query(kind, sql, &[]).await {
        Ok(rows) => {
            let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            c.found = names.len() as i64;
            c.ok = names.is_empty();
            if !c.ok {
                c.detail = Some(detail.to_string());
            }
            c.examples = names.into_iter().take(5).collect();
        }
        Err(e) => {
            c.ok = false;
            c.error = Some(e.to_string());
        }
    }
    c.duration_ms = ms(t);
    c
}

async fn expect_checks(
    db: &DbHandle,
    expect: &BTreeMap<String, Expect>,
) -> Result<Vec<Check>, DbError> {
    let rules: Vec<(&String, i64)> = expect
        .iter()
        .filter_map(|(t, e)| e.min.map(|m| (t, m)))
        .collect();
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let tables = estimates(db).await?;
    let mut out = Vec::new();
    for (name, min) in rules {
        let tref = TableRef::parse(name);
        let found = tref.resolve(&tables);
        let Some(t) = found.first() else {
            let mut c = Check::new("expect-min", name.clone(), Severity::Damage, String::new());
            c.ok = false;
            c.detail = Some(format!(
                "table '{name}' does not exist (expect min = {min})"
            ));
            out.push(c);
            continue;
        };
        let sql = format!(
            "SELECT count(*) FROM {}",
            quote_qualified(&t.schema, &t.name)
        );
        let mut c = Check::new(
            "expect-min",
            format!("{}.{}", t.schema, t.name),
            Severity::Damage,
            sql.clone(),
        );
        let start = Instant::now();
        match db.query("expect check", &sql, &[]).await {
            Ok(rows) => {
                c.found = rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or(0);
                c.ok = c.found >= min;
                if !c.ok {
                    c.detail = Some(format!("{} row(s), expected at least {min}", c.found));
                }
            }
            Err(e) => {
                c.ok = false;
                c.error = Some(e.to_string());
            }
        }
        c.duration_ms = ms(start);
        out.push(c);
    }
    Ok(out)
}

async fn migration_checks(db: &DbHandle) -> Result<Vec<Check>, DbError> {
    let t = Instant::now();
    let states = migrations(db).await?;
    let elapsed = ms(t);
    Ok(states
        .into_iter()
        .filter_map(|m| {
            let tool = m.tool?;
            let mut c = Check::new(
                "migration-history",
                m.table.clone(),
                Severity::Damage,
                format!("SELECT count(*) FROM {}", m.table),
            );
            c.found = m.count.unwrap_or(0);
            c.duration_ms = elapsed;
            c.examples = m.last.iter().cloned().collect();
            if let Some(why) = m.flagged {
                c.ok = false;
                c.detail = Some(why);
            } else if let Some(e) = m.error {
                c.ok = false;
                c.error = Some(e);
            } else {
                c.detail = Some(format!("{tool:?}: {} migration(s) applied", c.found));
            }
            Some(c)
        })
        .collect())
}

const AMCHECK_INDEXES_SQL: &str = "\
SELECT ci.oid, n.nspname::text || '.' || ci.relname::text
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ci.relam
  JOIN pg_catalog.pg_namespace n ON n.oid = ci.relnamespace
 WHERE am.amname = 'btree' AND i.indisvalid AND ci.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%'
 ORDER BY 2";

async fn amcheck(db: &DbHandle) -> Result<Option<Check>, DbError> {
    let ext = db
        .query(
            "find amcheck",
            "SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'",
            &[],
        )
        .await?;
    let Some(schema) = ext.first().map(|r| r.get::<_, String>(0)) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {}.bt_index_check($1::oid::regclass)",
        quote_ident(&schema)
    );
    let indexes = db
        .query("list btree indexes", AMCHECK_INDEXES_SQL, &[])
        .await?;
    let mut c = Check::new(
        "amcheck",
        format!("{} btree index(es)", indexes.len()),
        Severity::Damage,
        sql.clone(),
    );
    let t = Instant::now();
    for r in &indexes {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        if let Err(e) = db.query("bt_index_check", &sql, &[&oid]).await {
            c.found += 1;
            if c.examples.len() < 5 {
                c.examples.push(format!("{name}: {e}"));
            }
        }
    }
    c.ok = c.found == 0;
    c.duration_ms = ms(t);
    Ok(Some(c))
}

/// Runs every check on the database behind `db`. `expect` is the
/// inventory's rules for it. Errors only when the database cannot be
/// reached or the catalog cannot be read; a single failing check is recorded.
pub async fn run_checks(
    db: &DbHandle,
    name: &str,
    expect: &BTreeMap<String, Expect>,
) -> Result<VerifyReport, DbError> {
    let start = Instant::now();
    let (id, facts) = identity_and_facts(db).await?;
    let mut checks = Vec::new();
    let mut skipped = Vec::new();
    checks.extend(foreign_key_checks(db).await?);
    checks.extend(sequence_checks(db).await?);
    checks.push(
        list_check(
            db,
            "invalid-index",
            "all indexes",
            Severity::Warning,
            INVALID_INDEXES_SQL,
            "invalid indexes (a failed CREATE INDEX CONCURRENTLY or REINDEX) are not used and, if unique, not enforced: REINDEX or drop and re-create them",
        )
        .await,
    );
    checks.push(
        list_check(
            db,
            "unvalidated-constraint",
            "all constraints",
            Severity::Warning,
            UNVALIDATED_SQL,
            "NOT VALID constraints were never checked against existing rows: the foreign-key checks above count their orphans; ALTER TABLE ... VALIDATE CONSTRAINT once clean",
        )
        .await,
    );
    checks.extend(expect_checks(db, expect).await?);
    checks.extend(migration_checks(db).await?);
    match amcheck(db).await? {
        Some(c) => checks.push(c),
        None => skipped.push(
            "amcheck: the extension is not installed (CREATE EXTENSION amcheck to enable)".into(),
        ),
    }
    let damage = checks.iter().filter(|c| c.is_damage()).count();
    let warnings = checks.iter().filter(|c| c.is_warning()).count();
    let errors = checks.iter().filter(|c| c.error.is_some()).count();
    Ok(VerifyReport {
        database: name.to_string(),
        identity: id,
        facts,
        ok: damage == 0 && errors == 0,
        damage,
        warnings,
        errors,
        checks,
        skipped,
        duration_ms: ms(start),
    })
}

/// Default statement timeout of `verify` when the inventory sets none.
pub const VERIFY_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Exit codes of `lifeline verify` (DESIGN.md contract).
pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_DAMAGE: u8 = 3;

/// `lifeline verify DATABASE [--json]`: 0 clean, 3 damage, 2 unknown name
/// or bad inventory, 1 cannot connect (or a check could not run).
pub fn cli(inventory: Option<&Path>, database: &str, json: bool, redactor: &Redactor) -> u8 {
    let say = |s: &str| crate::errln!("{}", redactor.redact(s));
    let Some(path) = inventory else {
        say(NO_INVENTORY);
        return EXIT_USAGE;
    };
    let inv = match crate::inventory::open(path, redactor) {
        Ok((inv, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            inv
        }
        Err(e) => {
            for l in e.report(path, Some("; run 'lifeline check'")) {
                say(&l);
            }
            return EXIT_USAGE;
        }
    };
    let Some(spec) = inv.database(database) else {
        let known: Vec<String> = inv
            .databases
            .iter()
            .map(|d| format!("'{}'", d.name()))
            .collect();
        say(&format!(
            "error: no database named '{database}' in the inventory (known: {}); verify takes the inventory name, not the server's database name",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
        return EXIT_USAGE;
    };
    let mut opts = match super::ConnectOptions::from_spec(spec, redactor) {
        Ok(o) => o,
        Err(e) => {
            say(&format!("error: {e}"));
            return EXIT_USAGE;
        }
    };
    opts.statement_timeout = Some(opts.statement_timeout.unwrap_or(VERIFY_STATEMENT_TIMEOUT));
    opts.application_name = "lifeline verify".into();
    let rt = match crate::runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("error: cannot start the async runtime: {e}"));
            return EXIT_FAILED;
        }
    };
    let db = DbHandle::new(opts);
    let report = match rt.block_on(run_checks(&db, database, &spec.expect)) {
        Ok(r) => r,
        Err(e) => {
            say(&format!("error: {} ({})", e, e.class()));
            return EXIT_FAILED;
        }
    };
    if json {
        let mut v = match serde_json::to_value(&report) {
            Ok(v) => v,
            Err(e) => {
                say(&format!("error: cannot encode the report: {e}"));
                return EXIT_FAILED;
            }
        };
        redactor.redact_json(&mut v);
        println!(
            "{}",
            crate::term::json_safe(&serde_json::to_string_pretty(&v).unwrap_or_default())
        );
    } else {
        crate::outln!("{}", redactor.redact(&render_text(&report)));
    }
    if report.damage > 0 {
        EXIT_DAMAGE
    } else if report.errors > 0 {
        EXIT_FAILED
    } else {
        EXIT_CLEAN
    }
}

/// The human-readable report.
pub fn render_text(r: &VerifyReport) -> String {
    let mut s = format!(
        "verify '{}': {} (system {}, PostgreSQL {}, up since {})\n",
        r.database,
        r.identity.address(),
        r.identity.system_identifier,
        r.facts.server_version,
        r.identity
            .server_started_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    );
    let kw = r.checks.iter().map(|c| c.kind.len()).max().unwrap_or(4);
    let tw = r
        .checks
        .iter()
        .map(|c| c.target.chars().count())
        .max()
        .unwrap_or(6)
        .min(70);
    for c in &r.checks {
        let status = if c.error.is_some() {
            "ERROR"
        } else if c.ok {
            "ok"
        } else if c.severity == Severity::Damage {
            "DAMAGE"
        } else {
            "WARN"
        };
        s.push_str(&format!(
            "  {status:<6} {:<kw$}  {:<tw$}  found {:>6}  {:>5} ms",
            c.kind, c.target, c.found, c.duration_ms
        ));
        if !c.ok && !c.examples.is_empty() {
            s.push_str(&format!("  e.g. {}", c.examples.join("; ")));
        }
        s.push('\n');
        if !c.ok {
            if let Some(d) = &c.detail {
                s.push_str(&format!("         {d}\n"));
            }
            if let Some(e) = &c.error {
                s.push_str(&format!("         {e}\n"));
            }
        }
    }
    for k in &r.skipped {
        s.push_str(&format!("  skipped {k}\n"));
    }
    s.push_str(&if r.damage > 0 {
        format!(
            "DAMAGE: {} check(s) found damage, {} warning(s), {} error(s); {} check(s) in {} ms",
            r.damage,
            r.warnings,
            r.errors,
            r.checks.len(),
            r.duration_ms
        )
    } else if r.errors > 0 {
        format!(
            "INCOMPLETE: {} check(s) could not run, no damage found by the others; {} check(s) in {} ms",
            r.errors,
            r.checks.len(),
            r.duration_ms
        )
    } else {
        format!(
            "clean: no damage, {} warning(s); {} check(s) in {} ms",
            r.warnings,
            r.checks.len(),
            r.duration_ms
        )
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(3, true, 1, Some(10), Some(1), 7)]
    #[case(10, true, 1, Some(10), Some(1), 0)]
    #[case(10, false, 1, Some(10), Some(1), 1)]
    #[case(1, false, 1, None, None, 0)]
    #[case(4, true, 2, Some(10), Some(2), 3)]
    #[case(-3, true, -1, Some(-1), Some(-10), 7)]
    fn collisions(
        #[case] last: i64,
        #[case] called: bool,
        #[case] inc: i64,
        #[case] max: Option<i64>,
        #[case] min: Option<i64>,
        #[case] want: i64,
    ) {
        assert_eq!(sequence_collisions(last, called, inc, max, min), want);
    }

    #[test]
    fn orphan_sql_quotes_and_joins() {
        let sql = orphan_sql(
            ("public", "GameRequest"),
            &["userId".into(), "gameId".into()],
            ("public", "Pair"),
            &["u".into(), "g".into()],
        );
        assert!(sql.contains("FROM \"public\".\"GameRequest\" c"), "{sql}");
        assert!(sql.contains("c.\"userId\" IS NOT NULL AND c.\"gameId\" IS NOT NULL"));
        assert!(sql.contains("p.\"u\" = c.\"userId\" AND p.\"g\" = c.\"gameId\""));
    }

    #[test]
    fn keys_render() {
        assert_eq!(
            examples_from_json(Some(r#"[{"userId":7},{"a":"x","b":2}]"#.into())),
            vec!["userId=7".to_string(), "a=x, b=2".to_string()]
        );
        assert!(examples_from_json(None).is_empty());
    }
}
