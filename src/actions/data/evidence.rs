//! Live evidence of when the damage happened: each table's OID, the times of
//! its data file (`pg_stat_file(pg_relation_filepath(..))`, where the role
//! may read it) and its insert/delete counters since the last stats reset;
//! and the "most likely" moment inside a damage window they point at.
//! Only reads; a query the role may not run is noted, never fatal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::label::{DamageWindow, Seen, canon};
use crate::db::DbHandle;

const TABLES_SQL: &str = "\
SELECT format('%I.%I', n.nspname, c.relname), c.oid::int8,
       s.n_tup_ins, s.n_tup_del, s.n_live_tup,
       (SELECT d.stats_reset FROM pg_catalog.pg_stat_database d WHERE d.datname = current_database())
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%'
   AND n.nspname NOT LIKE 'pg_temp%'
 ORDER BY 1";

const FILE_SQL: &str = "\
SELECT f.modification, f.change
  FROM pg_catalog.pg_stat_file(pg_catalog.pg_relation_filepath(($1::int8)::oid::regclass)) f";

/// What the live database says about one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEvidence {
    /// `schema.name`, unquoted.
    pub table: String,
    pub oid: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_rows: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_reset: Option<DateTime<Utc>>,
    /// Data file modification time (a re-created empty table: its creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_modified: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_error: Option<String>,
}

/// The evidence of every ordinary table of the database `db` is connected to.
pub async fn live_evidence(db: &DbHandle) -> Result<Vec<TableEvidence>, String> {
    let rows = db
        .query("table evidence", TABLES_SQL, &[])
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for r in rows {
        let table: String = r.get(0);
        let oid: i64 = r.get(1);
        let (file_modified, file_error) = match db
            .query(&format!("data file of {table}"), FILE_SQL, &[&oid])
            .await
        {
            Ok(rows) => (
                rows.first()
                    .and_then(|r| r.get::<_, Option<DateTime<Utc>>>(0)),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        out.push(TableEvidence {
            table: canon(&table),
            oid,
            inserted: r.get(2),
            deleted: r.get(3),
            live_rows: r.get(4),
            stats_reset: r.get(5),
            file_modified,
            file_error,
        });
    }
    Ok(out)
}

/// The most likely moment of the damage: the earliest data file time of
/// the damaged tables that falls inside the window (a table re-created by
/// `pg_dump --clean` gets a new file then). None when no file time does.
pub fn likely_moment(
    w: &DamageWindow,
    evidence: &[TableEvidence],
    damaged: &[String],
) -> Option<Seen> {
    let lo = w.after.as_ref().map(|s| s.at);
    let hi = w.before.as_ref().map(|s| s.at);
    let inside = |t: DateTime<Utc>| lo.is_none_or(|l| t > l) && hi.is_none_or(|h| t <= h);
    evidence
        .iter()
        .filter(|e| damaged.contains(&e.table))
        .filter_map(|e| e.file_modified.map(|t| (t, e)))
        .filter(|(t, _)| inside(*t))
        .min_by_key(|(t, _)| *t)
        .map(|(t, e)| Seen {
            what: format!(
                "table files re-created: {} has OID {}, its data file written at {}",
                e.table,
                e.oid,
                t.format("%H:%M:%S")
            ),
            at: t,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ev(table: &str, at: Option<&str>) -> TableEvidence {
        TableEvidence {
            table: table.into(),
            oid: 16_400,
            inserted: Some(0),
            deleted: Some(0),
            live_rows: Some(0),
            stats_reset: None,
            file_modified: at.map(t),
            file_error: None,
        }
    }

    #[test]
    fn the_earliest_file_time_inside_the_window() {
        let w = DamageWindow {
            after: Some(Seen {
                what: "backup a".into(),
                at: t("2025-12-08T07:36:00Z"),
            }),
            before: Some(Seen {
                what: "backup b".into(),
                at: t("2025-12-10T13:00:00Z"),
            }),
            likely: None,
        };
        let e = vec![
            ev("public.User", Some("2025-12-10T12:42:00Z")),
            ev("public.game", Some("2025-12-10T12:41:00Z")),
            ev("public.log", Some("2025-12-01T00:00:00Z")),
            ev("public.late", Some("2025-12-11T00:00:00Z")),
        ];
        let damaged = vec!["public.User".to_string(), "public.late".to_string()];
        let m = likely_moment(&w, &e, &damaged).unwrap();
        assert_eq!(m.at, t("2025-12-10T12:42:00Z"));
        assert!(m.what.starts_with("table files re-created"));
        let w2 = DamageWindow {
            likely: Some(m),
            ..w.clone()
        };
        assert!(
            w2.describe()
                .contains(", most likely 2025-12-10 12:42:00 UTC (table files re-created")
        );
        // A file time outside the window (a later re-run of the job) is no guess.
        assert!(likely_moment(&w, &e, &["public.late".to_string()]).is_none());
        assert!(likely_moment(&w, &[ev("public.User", None)], &damaged).is_none());
    }
}
