//! verify: the schema-derived integrity checks of `db::verify` on one
//! database of the server (the live one or a restored one), exact row
//! counts of every table, and those counts against the restore manifest
//! and the healthy history (an empty restored table fails, `expect` or
//! not). Only reads.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::actions::RealActions;
use crate::catalog::label::{DAMAGE_RATIO, canon};
use crate::db::{ConnectOptions, DbHandle, quote_qualified};
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;

/// Every ordinary table (partitions included, partitioned parents not, so
/// no row is counted twice), keyed as pg_dump and the manifest write them.
const TABLES_SQL: &str = "\
SELECT format('%I.%I', n.nspname, c.relname), n.nspname::text, c.relname::text
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%'
   AND n.nspname NOT LIKE 'pg_temp%'
 ORDER BY 1";

fn db_fail(e: crate::db::DbError) -> ActionError {
    ActionError::Db(e)
}

/// Row-count checks: every table of the manifest must hold exactly the
/// rows the restore loaded.
pub(crate) fn compare_counts(
    manifest: &BTreeMap<String, i64>,
    counts: &BTreeMap<String, i64>,
) -> Vec<VerifyCheck> {
    manifest
        .iter()
        .map(|(t, want)| {
            let got = counts.get(t).copied();
            VerifyCheck {
                kind: "row-count".into(),
                target: t.clone(),
                ok: got == Some(*want),
                found: json!({ "manifest": want, "counted": got }),
            }
        })
        .collect()
}

/// History checks: every table of the healthy baseline (`schema.name`
/// unquoted -> rows) must not be empty, nor hold less than 1/DAMAGE_RATIO
/// of its history, in `counts` (keyed as `format('%I.%I')` writes them).
pub(crate) fn compare_history(
    baseline: &BTreeMap<String, u64>,
    counts: &BTreeMap<String, i64>,
) -> Vec<VerifyCheck> {
    let got: BTreeMap<String, u64> = counts
        .iter()
        .map(|(t, n)| (canon(t), u64::try_from(*n).unwrap_or(0)))
        .collect();
    baseline
        .iter()
        .filter(|(_, h)| **h > 0)
        .map(|(t, h)| {
            let n = got.get(t).copied();
            let ok = n.is_some_and(|n| n > 0 && n.saturating_mul(DAMAGE_RATIO) >= *h);
            VerifyCheck {
                kind: "history".into(),
                target: t.clone(),
                ok,
                found: json!({ "history": h, "counted": n }),
            }
        })
        .collect()
}

pub async fn verify(
    a: &RealActions,
    req: &VerifyRequest,
    out: &Output,
) -> Result<VerifyOutcome, ActionError> {
    let mut opts = ConnectOptions::from_spec(&req.database.spec, &a.redactor)
        .map_err(db_fail)?
        .with_dbname(&req.dbname);
    // A database the restore role loaded is read as that role (it owns every
    // object until reapply-owners): the backup's operators and functions the
    // checks may call never run as the admin.
    let restored_as = req
        .manifest
        .as_ref()
        .and_then(|m| m.get("restored_as"))
        .and_then(serde_json::Value::as_str);
    if let Some(role) = req.database.spec.restore_role.as_ref().map(|r| r.get_ref())
        && restored_as == Some(role.as_str())
        && req.dbname != req.database.dbname()
    {
        let pw = match &req.database.spec.restore_password_env {
            Some(v) => crate::db::PasswordSource::Env(v.clone()),
            None => crate::db::PasswordSource::Pgpass,
        };
        opts = opts.as_user(role, pw);
        out.line(format!(
            "reading as the restore role '{role}' (it loaded {}; run verify before reapply-owners)",
            req.dbname
        ));
    }
    let db = DbHandle::new(opts);
    out.line(format!(
        "checking {}/{}: integrity checks from the schema, exact row counts",
        req.database.server(),
        req.dbname
    ));
    let report =
        crate::db::verify::run_checks(&db, req.database.name.as_str(), &req.database.spec.expect)
            .await
            .map_err(db_fail)?;
    let mut checks: Vec<VerifyCheck> = report
        .checks
        .iter()
        .map(|c| {
            let ok = !(c.is_damage() || c.error.is_some());
            if !c.ok {
                out.line(format!(
                    "{} {} {}: {} found{}{}",
                    if ok { "warning" } else { "FAILED" },
                    c.kind,
                    c.target,
                    c.found,
                    c.detail
                        .as_deref()
                        .map(|d| format!("; {d}"))
                        .unwrap_or_default(),
                    c.error
                        .as_deref()
                        .map(|e| format!("; could not run: {e}"))
                        .unwrap_or_default()
                ));
            }
            VerifyCheck {
                kind: c.kind.clone(),
                target: c.target.clone(),
                ok,
                found: json!({ "found": c.found, "examples": c.examples, "severity": c.severity,
                               "detail": c.detail, "error": c.error }),
            }
        })
        .collect();
    for s in &report.skipped {
        out.line(format!("skipped: {s}"));
    }
    // Exact counts of every table.
    let rows = db
        .query("list tables", TABLES_SQL, &[])
        .await
        .map_err(db_fail)?;
    let mut counts = BTreeMap::new();
    for r in rows {
        let key: String = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let sql = format!("SELECT count(*) FROM {}", quote_qualified(&schema, &name));
        let n: i64 = db
            .query(&format!("count(*) of {key}"), &sql, &[])
            .await
            .map_err(db_fail)?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0);
        counts.insert(key, n);
    }
    let total: i64 = counts.values().sum();
    out.line(format!("{} tables, {total} rows", counts.len()));
    if let Some(m) = &req.manifest {
        let tables: BTreeMap<String, i64> = m
            .get("tables")
            .cloned()
            .and_then(|v: Value| serde_json::from_value(v).ok())
            .ok_or_else(|| {
                ActionError::Failed(
                    "the restore manifest has no 'tables' map: cannot compare row counts".into(),
                )
            })?;
        let cmp = compare_counts(&tables, &counts);
        let bad = cmp.iter().filter(|c| !c.ok).count();
        for c in cmp.iter().filter(|c| !c.ok) {
            out.line(format!("FAILED row-count {}: {}", c.target, c.found));
        }
        out.line(format!(
            "row counts against the manifest: {} of {} tables match",
            cmp.len() - bad,
            cmp.len()
        ));
        checks.extend(cmp);
    }
    if let Some(b) = &req.baseline {
        let cmp = compare_history(b, &counts);
        let bad = cmp.iter().filter(|c| !c.ok).count();
        for c in cmp.iter().filter(|c| !c.ok) {
            out.line(format!(
                "FAILED history {}: {} (empty or far below the healthy history)",
                c.target, c.found
            ));
        }
        out.line(format!(
            "row counts against the healthy history: {} of {} tables consistent",
            cmp.len() - bad,
            cmp.len()
        ));
        checks.extend(cmp);
    }
    let ok = checks.iter().all(|c| c.ok);
    Ok(VerifyOutcome {
        dbname: req.dbname.clone(),
        ok,
        checks,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_against_the_manifest() {
        let m: BTreeMap<String, i64> = [
            ("public.\"User\"".to_string(), 22),
            ("public.game".into(), 12),
        ]
        .into();
        let mut c = m.clone();
        assert!(compare_counts(&m, &c).iter().all(|c| c.ok));
        c.insert("public.\"User\"".into(), 0);
        let r = compare_counts(&m, &c);
        assert!(!r[0].ok && r[1].ok);
        c.remove("public.game");
        assert!(!compare_counts(&m, &c)[1].ok);
    }

    #[test]
    fn an_empty_or_far_smaller_table_fails_against_history() {
        let history: BTreeMap<String, u64> = [
            ("public.User".to_string(), 22),
            ("public.game".into(), 12),
            ("public.log".into(), 0),
        ]
        .into();
        let mut c: BTreeMap<String, i64> = [
            ("public.\"User\"".to_string(), 22),
            ("public.game".into(), 12),
            ("public.log".into(), 0),
        ]
        .into();
        let r = compare_history(&history, &c);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|c| c.ok), "{r:?}");
        c.insert("public.\"User\"".into(), 0);
        let r = compare_history(&history, &c);
        assert!(!r.iter().find(|c| c.target == "public.User").unwrap().ok);
        c.insert("public.\"User\"".into(), 2);
        assert!(!compare_history(&history, &c)[0].ok);
        c.insert("public.\"User\"".into(), 3);
        assert!(compare_history(&history, &c)[0].ok);
        c.remove("public.game");
        assert!(!compare_history(&history, &c)[1].ok);
    }
}
