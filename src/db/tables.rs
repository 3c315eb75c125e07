//! Tables of a database: one catalog query for every table's estimate and
//! write counters, exact `count(*)` for a few, and resolution of inventory
//! table names (`User`, `public.User`). Reads only.

use serde::Serialize;

use super::connect::DbHandle;
use super::error::DbError;
use super::quote_qualified;

/// A table as the inventory names it: `name` or `schema.name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TableRef {
    pub schema: Option<String>,
    pub name: String,
}

impl TableRef {
    /// `User`, `public.User`, `"my.schema"."a.b"`.
    pub fn parse(s: &str) -> TableRef {
        let parts = split_quoted(s);
        match parts.as_slice() {
            [schema, name] => TableRef {
                schema: Some(schema.clone()),
                name: name.clone(),
            },
            _ => TableRef {
                schema: None,
                name: if s.starts_with('"') && parts.len() == 1 {
                    parts[0].clone()
                } else {
                    s.to_string()
                },
            },
        }
    }

    pub fn matches(&self, schema: &str, name: &str) -> bool {
        self.name == name && self.schema.as_deref().is_none_or(|s| s == schema)
    }

    /// Picks the tables this reference means: with a schema, that one; without,
    /// the one in `public` if there is one, else every schema's.
    pub fn resolve<'a>(&self, tables: &'a [TableStat]) -> Vec<&'a TableStat> {
        let all: Vec<&TableStat> = tables
            .iter()
            .filter(|t| self.matches(&t.schema, &t.name))
            .collect();
        if self.schema.is_none() && all.len() > 1 {
            let public: Vec<&TableStat> = all
                .iter()
                .copied()
                .filter(|t| t.schema == "public")
                .collect();
            if !public.is_empty() {
                return public;
            }
        }
        all
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Splits `a.b` / `"a.b".c` on dots outside double quotes, unquoting.
fn split_quoted(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(p) = parts.last_mut() {
                    p.push('"');
                }
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            c => {
                if let Some(p) = parts.last_mut() {
                    p.push(c);
                }
            }
        }
    }
    parts
}

/// Where an estimate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateSource {
    /// `pg_stat_user_tables.n_live_tup` (kept current by the statistics system).
    LiveTuples,
    /// `pg_class.reltuples` (as of the last VACUUM / ANALYZE).
    Reltuples,
    /// Neither is known (a table never analysed, statistics reset): 0.
    None,
}

/// One table's catalog row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableStat {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    /// Row estimate (never negative).
    pub estimate: i64,
    pub source: EstimateSource,
    /// Cumulative counters since the statistics were last reset.
    pub n_tup_ins: i64,
    pub n_tup_upd: i64,
    pub n_tup_del: i64,
}

/// One statement for every user table: estimates and write counters.
pub const ESTIMATES_SQL: &str = "\
SELECT n.nspname::text, c.relname::text, c.oid, c.reltuples::float8,
       s.n_live_tup, s.n_tup_ins, s.n_tup_upd, s.n_tup_del
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid
 WHERE c.relkind IN ('r', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%'
   AND n.nspname NOT LIKE 'pg\\_temp\\_%'
 ORDER BY 1, 2";

/// The best estimate from the two sources. `n_live_tup` is current, but a
/// statistics reset (crash restart) zeroes it while the table keeps its
/// rows: when every counter is zero and `reltuples` knows better, use that.
pub fn pick_estimate(
    reltuples: f64,
    live: Option<i64>,
    ins: i64,
    upd: i64,
    del: i64,
) -> (i64, EstimateSource) {
    let rel = (reltuples >= 0.0).then(|| reltuples.round() as i64);
    match (live, rel) {
        (Some(0), Some(r)) if r > 0 && ins == 0 && upd == 0 && del == 0 => {
            (r, EstimateSource::Reltuples)
        }
        (Some(l), _) => (l.max(0), EstimateSource::LiveTuples),
        (None, Some(r)) => (r, EstimateSource::Reltuples),
        (None, None) => (0, EstimateSource::None),
    }
}

/// Every user table with its estimate (one statement).
pub async fn estimates(db: &DbHandle) -> Result<Vec<TableStat>, DbError> {
    let rows = db.query("table estimates", ESTIMATES_SQL, &[]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let live: Option<i64> = r.get(4);
        let ins: i64 = r.get::<_, Option<i64>>(5).unwrap_or(0);
        let upd: i64 = r.get::<_, Option<i64>>(6).unwrap_or(0);
        let del: i64 = r.get::<_, Option<i64>>(7).unwrap_or(0);
        let (estimate, source) = pick_estimate(r.get(3), live, ins, upd, del);
        out.push(TableStat {
            schema: r.get(0),
            name: r.get(1),
            oid: r.get(2),
            estimate,
            source,
            n_tup_ins: ins,
            n_tup_upd: upd,
            n_tup_del: del,
        });
    }
    Ok(out)
}

/// `SELECT count(*)` of one table.
pub async fn exact_count(db: &DbHandle, schema: &str, name: &str) -> Result<i64, DbError> {
    let sql = format!("SELECT count(*) FROM {}", quote_qualified(schema, name));
    let what = format!("count(*) of {schema}.{name}");
    let v = db.query_scalar_text(&what, &sql).await?;
    v.as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| DbError::Other {
            target: db.target(),
            what,
            reason: format!("unexpected answer {v:?}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("User", None, "User")]
    #[case("public.User", Some("public"), "User")]
    #[case("\"my.schema\".\"a.b\"", Some("my.schema"), "a.b")]
    #[case("\"a.b\"", None, "a.b")]
    #[case("\"q\"\"x\"", None, "q\"x")]
    fn parse(#[case] s: &str, #[case] schema: Option<&str>, #[case] name: &str) {
        let t = TableRef::parse(s);
        assert_eq!(t.schema.as_deref(), schema);
        assert_eq!(t.name, name);
    }

    fn stat(schema: &str, name: &str) -> TableStat {
        TableStat {
            schema: schema.into(),
            name: name.into(),
            oid: 1,
            estimate: 0,
            source: EstimateSource::None,
            n_tup_ins: 0,
            n_tup_upd: 0,
            n_tup_del: 0,
        }
    }

    #[test]
    fn resolve_prefers_public() {
        let ts = vec![
            stat("audit", "User"),
            stat("public", "User"),
            stat("x", "Game"),
        ];
        let r = TableRef::parse("User").resolve(&ts);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].schema, "public");
        assert_eq!(
            TableRef::parse("audit.User").resolve(&ts)[0].schema,
            "audit"
        );
        assert_eq!(TableRef::parse("Game").resolve(&ts)[0].schema, "x");
        assert!(TableRef::parse("user").resolve(&ts).is_empty());
    }

    #[rstest]
    #[case(-1.0, None, 0, 0, 0, 0, EstimateSource::None)]
    #[case(-1.0, Some(5), 5, 0, 0, 5, EstimateSource::LiveTuples)]
    #[case(22.0, Some(0), 0, 0, 0, 22, EstimateSource::Reltuples)]
    #[case(22.0, Some(0), 22, 0, 22, 0, EstimateSource::LiveTuples)]
    #[case(100.0, None, 0, 0, 0, 100, EstimateSource::Reltuples)]
    fn estimates_pick(
        #[case] rel: f64,
        #[case] live: Option<i64>,
        #[case] ins: i64,
        #[case] upd: i64,
        #[case] del: i64,
        #[case] want: i64,
        #[case] src: EstimateSource,
    ) {
        assert_eq!(pick_estimate(rel, live, ins, upd, del), (want, src));
    }
}
