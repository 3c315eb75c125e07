//! merge-tables: puts back the rows a restored copy holds and the live
//! database lacks, streamed through lifeline into temporary staging tables.
//! Never writes to the restored copy; never deletes a live row, except in a
//! whole-table replace the operator typed for a table without a key.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{SinkExt, StreamExt, pin_mut};
use tokio_postgres::Client;

use crate::actions::direct::{connect, db_error};
use crate::db::{TableRef, quote_ident, quote_qualified};
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::{
    DbTarget, MERGE_BATCH_ROWS, MergeOutcome, MergePolicy, MergeRequest, MergeTable, MergeTx,
};

/// How long a merge waits for a lock on a live table before it fails.
const LOCK_TIMEOUT_S: u64 = 30;

/// A table as both databases know it.
#[derive(Debug, Clone)]
struct Table {
    schema: String,
    name: String,
    oid: u32,
    /// Columns written (not generated), in live order.
    cols: Vec<String>,
    key: Vec<String>,
    replace: bool,
    /// The staging table in the live session.
    stage: String,
}

impl Table {
    fn q(&self) -> String {
        quote_qualified(&self.schema, &self.name)
    }
    fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    fn col_list(&self, prefix: &str) -> String {
        self.cols
            .iter()
            .map(|c| format!("{prefix}{}", quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    }
    fn key_eq(&self, a: &str, b: &str) -> String {
        self.key
            .iter()
            .map(|k| {
                let k = quote_ident(k);
                format!("{a}.{k} = {b}.{k}")
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// A foreign key of the live database touching the merged tables.
#[derive(Debug, Clone)]
struct ForeignKey {
    name: String,
    child: u32,
    child_q: String,
    child_cols: Vec<String>,
    parent: u32,
    parent_q: String,
    parent_cols: Vec<String>,
}

impl ForeignKey {
    fn describe(&self) -> String {
        format!("{} ({} -> {})", self.name, self.child_q, self.parent_q)
    }
    /// Rows of `rows` (an alias over the child's columns in `from`) whose key
    /// is set but found in none of `parents`.
    fn orphan_sql(&self, from: &str, parents: &[String]) -> String {
        let set: Vec<String> = self
            .child_cols
            .iter()
            .map(|c| format!("r.{} IS NOT NULL", quote_ident(c)))
            .collect();
        let missing: Vec<String> = parents
            .iter()
            .map(|p| {
                let eq: Vec<String> = self
                    .child_cols
                    .iter()
                    .zip(&self.parent_cols)
                    .map(|(c, pc)| format!("p.{} = r.{}", quote_ident(pc), quote_ident(c)))
                    .collect();
                format!(
                    "NOT EXISTS (SELECT 1 FROM {p} p WHERE {})",
                    eq.join(" AND ")
                )
            })
            .collect();
        format!(
            "SELECT count(*) FROM {from} r WHERE {} AND {}",
            set.join(" AND "),
            missing.join(" AND ")
        )
    }
}

fn failed(msg: impl Into<String>) -> ActionError {
    ActionError::Failed(msg.into())
}

/// A merge check refused to go on (class refused-by-check).
fn refused(msg: impl Into<String>) -> ActionError {
    ActionError::Refused(msg.into())
}

/// A table the merge needs is not there (class not-found).
fn not_found(msg: impl Into<String>) -> ActionError {
    ActionError::NotFound(msg.into())
}

async fn count(c: &Client, target: &str, sql: &str) -> Result<i64, ActionError> {
    let row = c
        .query_one(sql, &[])
        .await
        .map_err(|e| db_error(target, &e))?;
    Ok(row.get(0))
}

/// Finds a table by reference (`public` first when no schema is given).
async fn find_table(
    c: &Client,
    target: &str,
    r: &TableRef,
) -> Result<Option<(String, String, u32)>, ActionError> {
    let rows = c
        .query(
            "SELECT n.nspname::text, c.relname::text, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2) \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY n.nspname <> 'public', n.nspname",
            &[&r.name, &r.schema],
        )
        .await
        .map_err(|e| db_error(target, &e))?;
    // Without a schema: `public` first (sorted first); several others are ambiguous.
    if r.schema.is_none() && rows.len() > 1 && rows[0].get::<_, String>(0) != "public" {
        let schemas: Vec<String> = rows.iter().map(|x| x.get(0)).collect();
        return Err(refused(format!(
            "table '{}' is in several schemas ({}); name it as schema.table; nothing was done",
            r.name,
            schemas.join(", ")
        )));
    }
    Ok(rows.first().map(|x| (x.get(0), x.get(1), x.get(2))))
}

/// (column, type) of a table, written columns only, in order.
async fn columns(c: &Client, target: &str, oid: u32) -> Result<Vec<(String, String)>, ActionError> {
    let rows = c
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(|e| db_error(target, &e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The primary key, else a unique key on NOT NULL columns (no predicate, no expression).
async fn key_of(c: &Client, target: &str, oid: u32) -> Result<Vec<String>, ActionError> {
    let rows = c
        .query(
            "SELECT i.indisprimary, array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o) \
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o), \
               bool_and(a2.attnotnull) \
             FROM pg_index i JOIN pg_attribute a2 ON a2.attrelid = i.indrelid AND a2.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indisvalid \
             GROUP BY i.indexrelid, i.indisprimary, i.indkey, i.indrelid ORDER BY i.indisprimary DESC, i.indexrelid",
            &[&oid],
        )
        .await
        .map_err(|e| db_error(target, &e))?;
    for r in rows {
        let primary: bool = r.get(0);
        let cols: Vec<String> = r.get(1);
        let not_null: bool = r.get(2);
        if primary || not_null {
            return Ok(cols);
        }
    }
    Ok(Vec::new())
}

async fn foreign_keys(
    c: &Client,
    target: &str,
    oids: &[u32],
) -> Result<Vec<ForeignKey>, ActionError> {
    let rows = c
        .query(
            "SELECT con.conname::text, con.conrelid, cn.nspname::text, cc.relname::text, \
               array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), \
               con.confrelid, pn.nspname::text, pc.relname::text, \
               array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_constraint con \
             JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace \
             JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE con.contype = 'f' AND (con.conrelid = ANY($1) OR con.confrelid = ANY($1)) ORDER BY con.conname",
            &[&oids],
        )
        .await
        .map_err(|e| db_error(target, &e))?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            name: r.get(0),
            child: r.get(1),
            child_q: quote_qualified(r.get(2), r.get(3)),
            child_cols: r.get(4),
            parent: r.get(5),
            parent_q: quote_qualified(r.get(6), r.get(7)),
            parent_cols: r.get(8),
        })
        .collect())
}

/// Parents before children (foreign keys among the merged tables); a cycle
/// keeps the order given for the tables in it.
fn fk_order(tables: Vec<Table>, fks: &[ForeignKey]) -> Vec<Table> {
    let oids: BTreeSet<u32> = tables.iter().map(|t| t.oid).collect();
    let mut deps: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for f in fks {
        if f.child != f.parent && oids.contains(&f.child) && oids.contains(&f.parent) {
            deps.entry(f.child).or_default().insert(f.parent);
        }
    }
    let mut left = tables;
    let mut out = Vec::new();
    while !left.is_empty() {
        let done: BTreeSet<u32> = out.iter().map(|t: &Table| t.oid).collect();
        let pos = left
            .iter()
            .position(|t| deps.get(&t.oid).is_none_or(|d| d.is_subset(&done)))
            .unwrap_or(0);
        out.push(left.remove(pos));
    }
    out
}

/// Resolves the requested tables in both databases and checks they match.
async fn resolve(
    live: &Client,
    src: &Client,
    req: &MergeRequest,
) -> Result<(Vec<Table>, Vec<ForeignKey>), ActionError> {
    let lt = req.database.display();
    let st = format!("{}/{}", req.database.server(), req.source);
    if req.tables.is_empty() {
        return Err(refused(
            "no tables to merge: name them in the step's `tables` (or the runbook parameter); nothing was done",
        ));
    }
    let replace: Vec<TableRef> = req.replace.iter().map(|r| TableRef::parse(r)).collect();
    let mut out: Vec<Table> = Vec::new();
    for (i, name) in req.tables.iter().enumerate() {
        let r = TableRef::parse(name);
        let Some((schema, tname, oid)) = find_table(live, &lt, &r).await? else {
            return Err(not_found(format!(
                "table '{name}' does not exist in the live database '{}': a merge only fills existing tables (a dropped table needs the swap); nothing was done",
                req.database.dbname()
            )));
        };
        let Some((ss, sn, soid)) = find_table(
            src,
            &st,
            &TableRef {
                schema: Some(schema.clone()),
                name: tname.clone(),
            },
        )
        .await?
        else {
            return Err(not_found(format!(
                "table '{schema}.{tname}' does not exist in the restored copy '{}'; nothing was done",
                req.source
            )));
        };
        let lc = columns(live, &lt, oid).await?;
        let sc = columns(src, &st, soid).await?;
        if lc != sc {
            let show = |v: &[(String, String)]| {
                v.iter()
                    .map(|(c, t)| format!("{c} {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(refused(format!(
                "table '{ss}.{sn}' has other columns in the restored copy ({}) than live ({}); merge it by hand; nothing was done",
                show(&sc),
                show(&lc)
            )));
        }
        let key = key_of(live, &lt, oid).await?;
        let is_replace = replace.iter().any(|r| r.matches(&schema, &tname));
        if out.iter().any(|t| t.oid == oid) {
            continue;
        }
        out.push(Table {
            schema,
            name: tname,
            oid,
            cols: lc.into_iter().map(|(c, _)| c).collect(),
            key,
            replace: is_replace,
            stage: format!("pg_temp.lifeline_stage_{i}"),
        });
    }
    for t in &out {
        if t.key.is_empty() && !t.replace {
            return Err(refused(format!(
                "table '{}' has no primary key and no NOT NULL unique key: rows cannot be matched, so it is refused for merge; to replace it whole with the restored rows (TRUNCATE + copy, live rows of it are lost), add it to the step's `replace` list and type the confirmation again; nothing was done",
                t.display()
            )));
        }
        if t.replace && !t.key.is_empty() {
            return Err(refused(format!(
                "table '{}' has a key ({}): merge it instead of replacing it; take it out of `replace`; nothing was done",
                t.display(),
                t.key.join(", ")
            )));
        }
    }
    let oids: Vec<u32> = out.iter().map(|t| t.oid).collect();
    let fks = foreign_keys(live, &lt, &oids).await?;
    Ok((fk_order(out, &fks), fks))
}

/// Streams `COPY (select) TO STDOUT` of the source into `COPY stage FROM
/// STDIN` of the live session (binary: the column types are the same).
async fn pipe(
    live: &Client,
    src: &Client,
    req_live: &str,
    req_src: &str,
    select: &str,
    stage: &str,
) -> Result<u64, ActionError> {
    let reader = src
        .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
        .await
        .map_err(|e| db_error(req_src, &e))?;
    let sink = live
        .copy_in(&format!("COPY {stage} FROM STDIN (FORMAT binary)"))
        .await
        .map_err(|e| db_error(req_live, &e))?;
    pin_mut!(reader);
    pin_mut!(sink);
    while let Some(chunk) = reader.next().await {
        let chunk = chunk.map_err(|e| db_error(req_src, &e))?;
        sink.send(chunk).await.map_err(|e| db_error(req_live, &e))?;
    }
    let n = sink.finish().await.map_err(|e| db_error(req_live, &e))?;
    let table = stage.split(" (").next().unwrap_or(stage);
    live.batch_execute(&format!("ANALYZE {table}"))
        .await
        .map_err(|e| db_error(req_live, &e))?;
    Ok(n)
}

/// Streams the source rows of `t` into its staging table; returns the rows.
async fn stage(
    live: &Client,
    src: &Client,
    req: &MergeRequest,
    t: &Table,
) -> Result<u64, ActionError> {
    let lt = req.database.display();
    let st = format!("{}/{}", req.database.server(), req.source);
    live.batch_execute(&format!(
        "DROP TABLE IF EXISTS {stage}; CREATE TEMP TABLE {stage} AS SELECT {cols} FROM {q} WITH NO DATA",
        stage = t.stage,
        cols = t.col_list(""),
        q = t.q()
    ))
    .await
    .map_err(|e| db_error(&lt, &e))?;
    // `lifeline_n` numbers the staged rows 1..n (the batches of `batches`;
    // not paid for otherwise).
    if req.transaction == MergeTx::Batches {
        live.batch_execute(&format!(
            "ALTER TABLE {} ADD COLUMN lifeline_n bigserial",
            t.stage
        ))
        .await
        .map_err(|e| db_error(&lt, &e))?;
    }
    let select = format!("SELECT {} FROM {}", t.col_list(""), t.q());
    let into = format!("{} ({})", t.stage, t.col_list(""));
    pipe(live, src, &lt, &st, &select, &into).await
}

/// Rows of one live table a swap would leave behind in the damaged copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discard {
    /// `schema.name`.
    pub table: String,
    /// Live rows the restored copy lacks (by key), or how many more rows
    /// live has (no key), or every row (no such table in the copy).
    pub rows: i64,
    /// "key", "count" or "table" (absent from the restored copy).
    pub how: &'static str,
}

/// What a swap of `restored` in for the live database would discard: per
/// live table, the rows the restored copy lacks (compared by key through a
/// temporary table of the copy's keys; by count without a key). Writes
/// nothing but temporary tables.
pub async fn swap_discards(
    db: &DbTarget,
    restored: &str,
    redactor: &crate::redact::Redactor,
) -> Result<Vec<Discard>, ActionError> {
    let lt = db.display();
    let st = format!("{}/{restored}", db.server());
    let live = connect(db, db.dbname(), false, None, redactor).await?;
    let src = connect(db, restored, true, None, redactor).await?;
    let rows = live
        .query(
            "SELECT n.nspname::text, c.relname::text, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| db_error(&lt, &e))?;
    let mut out = Vec::new();
    for r in rows {
        let (schema, name, oid): (String, String, u32) = (r.get(0), r.get(1), r.get(2));
        let q = quote_qualified(&schema, &name);
        let display = format!("{schema}.{name}");
        let live_n = count(&live, &lt, &format!("SELECT count(*) FROM {q}")).await?;
        let tref = TableRef {
            schema: Some(schema.clone()),
            name: name.clone(),
        };
        let Some((_, _, soid)) = find_table(&src, &st, &tref).await? else {
            if live_n > 0 {
                out.push(Discard {
                    table: display,
                    rows: live_n,
                    how: "table",
                });
            }
            continue;
        };
        let key = key_of(&live, &lt, oid).await?;
        let lc = columns(&live, &lt, oid).await?;
        let sc = columns(&src, &st, soid).await?;
        let key_same = !key.is_empty()
            && key.iter().all(|k| {
                let t =
                    |v: &[(String, String)]| v.iter().find(|(c, _)| c == k).map(|(_, t)| t.clone());
                t(&lc).is_some() && t(&lc) == t(&sc)
            });
        if key_same {
            let cols = key
                .iter()
                .map(|k| quote_ident(k))
                .collect::<Vec<_>>()
                .join(", ");
            let stage = "pg_temp.lifeline_swap_keys";
            live.batch_execute(&format!(
                "DROP TABLE IF EXISTS {stage}; CREATE TEMP TABLE {stage} AS SELECT {cols} FROM {q} WITH NO DATA"
            ))
            .await
            .map_err(|e| db_error(&lt, &e))?;
            pipe(
                &live,
                &src,
                &lt,
                &st,
                &format!("SELECT {cols} FROM {q}"),
                stage,
            )
            .await?;
            let eq = key
                .iter()
                .map(|k| format!("s.{0} = l.{0}", quote_ident(k)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let n = count(
                &live,
                &lt,
                &format!("SELECT count(*) FROM {q} l WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {eq})"),
            )
            .await?;
            if n > 0 {
                out.push(Discard {
                    table: display,
                    rows: n,
                    how: "key",
                });
            }
        } else {
            let src_n = count(&src, &st, &format!("SELECT count(*) FROM {q}")).await?;
            if live_n > src_n {
                out.push(Discard {
                    table: display,
                    rows: live_n - src_n,
                    how: "count",
                });
            }
        }
    }
    Ok(out)
}

/// The lines a swap's confirmation shows about what it would discard.
pub fn discard_lines(restored: &str, d: &[Discard]) -> Vec<String> {
    if d.is_empty() {
        return vec![format!(
            "the swap discards no row: every live row is in '{restored}' (compared by key, by count without one)"
        )];
    }
    let mut v = vec![format!(
        "THE SWAP WOULD DISCARD rows written after the backup (kept only in the damaged copy):"
    )];
    for x in d {
        let how = match x.how {
            "key" => "live rows whose key the restored copy lacks",
            "count" => "more rows in live than in the restored copy (no key: by count)",
            _ => "the table is not in the restored copy",
        };
        v.push(format!("  {}: {} row(s) ({how})", x.table, x.rows));
    }
    v.push(
        "to keep them, do not swap: merge only the damaged tables back with a merge-tables step (runbook 'table-wiped')".into(),
    );
    v
}

/// The preview numbers of `t` (staged), as they stand before writing.
async fn measure(
    live: &Client,
    req: &MergeRequest,
    t: &Table,
    staged: &BTreeMap<u32, String>,
    fks: &[ForeignKey],
) -> Result<MergeTable, ActionError> {
    let lt = req.database.display();
    let q = t.q();
    let mut m = MergeTable {
        table: t.display(),
        key: t.key.clone(),
        replace: t.replace,
        ..MergeTable::default()
    };
    m.live_rows = count(live, &lt, &format!("SELECT count(*) FROM {q}")).await?;
    m.source_rows = count(live, &lt, &format!("SELECT count(*) FROM {}", t.stage)).await?;
    if t.replace {
        m.to_insert = m.source_rows;
    } else {
        let eq = t.key_eq("l", "s");
        m.to_insert = count(
            live,
            &lt,
            &format!(
                "SELECT count(*) FROM {} s WHERE NOT EXISTS (SELECT 1 FROM {q} l WHERE {eq})",
                t.stage
            ),
        )
        .await?;
        m.conflicts = m.source_rows - m.to_insert;
        let as_text = |a: &str| {
            t.cols
                .iter()
                .map(|c| format!("{a}.{}::text", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        m.conflicts_differ = count(
            live,
            &lt,
            &format!(
                "SELECT count(*) FROM {} s JOIN {q} l ON {eq} WHERE ROW({}) IS DISTINCT FROM ROW({})",
                t.stage,
                as_text("s"),
                as_text("l")
            ),
        )
        .await?;
        m.live_only = count(
            live,
            &lt,
            &format!(
                "SELECT count(*) FROM {q} l WHERE NOT EXISTS (SELECT 1 FROM {} s WHERE {eq})",
                t.stage
            ),
        )
        .await?;
    }
    // The rows that will be written, checked against every parent they may
    // point to once the merge is done (the live parent and its staged rows).
    let written = if t.replace || req.policy == MergePolicy::RestoredWins {
        t.stage.clone()
    } else {
        format!(
            "(SELECT s.* FROM {} s WHERE NOT EXISTS (SELECT 1 FROM {q} l WHERE {}))",
            t.stage,
            t.key_eq("l", "s")
        )
    };
    for f in fks.iter().filter(|f| f.child == t.oid) {
        let mut parents = vec![f.parent_q.clone()];
        if let Some(s) = staged.get(&f.parent) {
            parents.push(s.clone());
        }
        let n = count(live, &lt, &f.orphan_sql(&written, &parents)).await?;
        if n > 0 {
            m.fk_violations.push(format!(
                "{}: {n} row(s) would point to no row of {}",
                f.describe(),
                f.parent_q
            ));
        }
    }
    Ok(m)
}

/// Lines an operator reads before confirming (and the journal keeps).
pub fn preview_lines(req: &MergeRequest, tables: &[MergeTable]) -> Vec<String> {
    let winner = match req.policy {
        MergePolicy::LiveWins => "live row wins",
        MergePolicy::RestoredWins => "restored row wins",
    };
    let mut v = vec![format!(
        "merge from '{}' into '{}' ({} transaction{}), in this order:",
        req.source,
        req.database.dbname(),
        req.transaction.as_str(),
        if req.transaction == MergeTx::One {
            ": all or nothing"
        } else {
            " per table"
        }
    )];
    for t in tables {
        if t.replace {
            v.push(format!(
                "  {}: NO KEY, REPLACED WHOLE: {} live row(s) deleted (TRUNCATE), {} restored row(s) copied in",
                t.table, t.live_rows, t.source_rows
            ));
        } else {
            v.push(format!(
                "  {}: live {}, restored {}, to insert {}, in conflict {} ({} differ; {winner}), live-only {} (kept)",
                t.table, t.live_rows, t.source_rows, t.to_insert, t.conflicts, t.conflicts_differ, t.live_only
            ));
        }
        for f in &t.fk_violations {
            v.push(format!("    FOREIGN KEY VIOLATION expected: {f}"));
        }
    }
    v
}

struct Session {
    live: Client,
    tables: Vec<Table>,
    fks: Vec<ForeignKey>,
    measured: Vec<MergeTable>,
}

/// Connects, stages every table and measures it; nothing is written to a live table.
async fn prepare(req: &MergeRequest, out: &Output) -> Result<Session, ActionError> {
    let live = connect(
        &req.database,
        req.database.dbname(),
        false,
        None,
        out.redactor(),
    )
    .await?;
    // A writer that still holds a table makes the merge fail, never hang.
    live.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT_S}s'"))
        .await
        .map_err(|e| db_error(&req.database.display(), &e))?;
    let src = connect(&req.database, &req.source, true, None, out.redactor()).await?;
    let (tables, fks) = resolve(&live, &src, req).await?;
    let mut staged = BTreeMap::new();
    for t in &tables {
        let n = stage(&live, &src, req, t).await?;
        out.line(format!(
            "staged {n} row(s) of {} from '{}'",
            t.display(),
            req.source
        ));
        staged.insert(t.oid, t.stage.clone());
    }
    let mut measured = Vec::new();
    for t in &tables {
        measured.push(measure(&live, req, t, &staged, &fks).await?);
    }
    Ok(Session {
        live,
        tables,
        fks,
        measured,
    })
}

/// The preview: every table staged and measured, nothing written to a live table.
pub async fn merge_preview(req: &MergeRequest) -> Result<Vec<MergeTable>, ActionError> {
    Ok(prepare(req, &Output::discard()).await?.measured)
}

/// Writes one table from its stage; returns (inserted, updated).
async fn apply_table(
    live: &Client,
    req: &MergeRequest,
    t: &Table,
    m: &MergeTable,
    rows: Option<(i64, i64)>,
) -> Result<(i64, i64), ActionError> {
    let range = match rows {
        Some((lo, hi)) => format!(" WHERE lifeline_n > {lo} AND lifeline_n <= {hi}"),
        None => String::new(),
    };
    let lt = req.database.display();
    let q = t.q();
    let cols = t.col_list("");
    if t.replace {
        live.batch_execute(&format!("TRUNCATE {q}"))
            .await
            .map_err(|e| db_error(&lt, &e))?;
        let n = live
            .execute(
                &format!(
                    "INSERT INTO {q} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {}",
                    t.stage
                ),
                &[],
            )
            .await
            .map_err(|e| db_error(&lt, &e))?;
        return Ok((n as i64, 0));
    }
    let key = t
        .key
        .iter()
        .map(|k| quote_ident(k))
        .collect::<Vec<_>>()
        .join(", ");
    let rest: Vec<&String> = t.cols.iter().filter(|c| !t.key.contains(c)).collect();
    let action = match req.policy {
        MergePolicy::RestoredWins if !rest.is_empty() => format!(
            "DO UPDATE SET {}",
            rest.iter()
                .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "DO NOTHING".to_string(),
    };
    let n = live
        .execute(
            &format!(
                "INSERT INTO {q} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {}{range} ON CONFLICT ({key}) {action}",
                t.stage
            ),
            &[],
        )
        .await
        .map_err(|e| db_error(&lt, &e))? as i64;
    let inserted = m.to_insert.min(n);
    Ok((inserted, n - inserted))
}

/// Moves the sequences owned by `t`'s columns to at least the max value.
async fn bump_sequences(
    live: &Client,
    req: &MergeRequest,
    t: &Table,
) -> Result<Vec<String>, ActionError> {
    let lt = req.database.display();
    let rows = live
        .query(
            "SELECT a.attname::text, pg_get_serial_sequence($1, a.attname) FROM pg_attribute a \
             WHERE a.attrelid = $2 AND a.attnum > 0 AND NOT a.attisdropped AND pg_get_serial_sequence($1, a.attname) IS NOT NULL",
            &[&t.q(), &t.oid],
        )
        .await
        .map_err(|e| db_error(&lt, &e))?;
    let mut moved = Vec::new();
    for r in rows {
        let col: String = r.get(0);
        let seq: String = r.get(1);
        let max: Option<i64> = live
            .query_one(
                &format!("SELECT max({})::bigint FROM {}", quote_ident(&col), t.q()),
                &[],
            )
            .await
            .map_err(|e| db_error(&lt, &e))?
            .get(0);
        let last: Option<i64> = live
            .query_one("SELECT pg_sequence_last_value($1::text::regclass)", &[&seq])
            .await
            .map_err(|e| db_error(&lt, &e))?
            .get(0);
        if let Some(max) = max
            && last.is_none_or(|l| l < max)
        {
            live.query_one("SELECT setval($1::text::regclass, $2)", &[&seq, &max])
                .await
                .map_err(|e| db_error(&lt, &e))?;
            moved.push(format!(
                "{seq}: {} -> {max}",
                last.map(|l| l.to_string())
                    .unwrap_or_else(|| "unused".into())
            ));
        }
    }
    Ok(moved)
}

/// Foreign-key orphans now, on every key touching the merged tables.
async fn orphans(
    live: &Client,
    req: &MergeRequest,
    fks: &[ForeignKey],
) -> Result<Vec<String>, ActionError> {
    let lt = req.database.display();
    let mut v = Vec::new();
    for f in fks {
        let n = count(
            live,
            &lt,
            &f.orphan_sql(&f.child_q, std::slice::from_ref(&f.parent_q)),
        )
        .await?;
        if n > 0 {
            v.push(format!("{}: {n} orphan row(s)", f.describe()));
        }
    }
    Ok(v)
}

/// Writes one table, checks its count, moves its sequences (in its own
/// transaction when `per-table`); returns (inserted, updated, rows now, sequences moved).
async fn write_table(
    live: &Client,
    req: &MergeRequest,
    t: &Table,
    m: &MergeTable,
) -> Result<(i64, i64, i64, Vec<String>), ActionError> {
    let lt = req.database.display();
    // `batches` writes a replaced (keyless) table in one transaction too.
    let own_tx =
        req.transaction == MergeTx::PerTable || (req.transaction == MergeTx::Batches && t.replace);
    if own_tx {
        live.batch_execute("BEGIN")
            .await
            .map_err(|e| db_error(&lt, &e))?;
    }
    let (inserted, updated) = if req.transaction == MergeTx::Batches && !t.replace {
        write_batches(live, req, t, m).await?
    } else {
        apply_table(live, req, t, m, None).await?
    };
    let after = count(live, &lt, &format!("SELECT count(*) FROM {}", t.q())).await?;
    let want = if t.replace {
        m.source_rows
    } else {
        m.live_rows + inserted
    };
    if after != want {
        return Err(refused(format!(
            "{} holds {after} row(s) after the merge, expected {want} (live {} + inserted {inserted})",
            t.display(),
            m.live_rows
        )));
    }
    let moved = bump_sequences(live, req, t).await?;
    if own_tx {
        live.batch_execute("COMMIT")
            .await
            .map_err(|e| db_error(&lt, &e))?;
    }
    Ok((inserted, updated, after, moved))
}

/// `batches`: the staged rows of `t` in transactions of `MERGE_BATCH_ROWS`;
/// a failed batch is rolled back and the error says which batches committed.
async fn write_batches(
    live: &Client,
    req: &MergeRequest,
    t: &Table,
    m: &MergeTable,
) -> Result<(i64, i64), ActionError> {
    let lt = req.database.display();
    let n = m.source_rows.max(0);
    let total = (n + MERGE_BATCH_ROWS - 1) / MERGE_BATCH_ROWS;
    let mut written = 0i64;
    for b in 0..total {
        let lo = b * MERGE_BATCH_ROWS;
        let step = async {
            live.batch_execute("BEGIN")
                .await
                .map_err(|e| db_error(&lt, &e))?;
            let (i, u) = apply_table(live, req, t, m, Some((lo, lo + MERGE_BATCH_ROWS))).await?;
            live.batch_execute("COMMIT")
                .await
                .map_err(|e| db_error(&lt, &e))?;
            Ok::<_, ActionError>(i + u)
        }
        .await;
        match step {
            Ok(w) => written += w,
            Err(e) => {
                let _ = live.batch_execute("ROLLBACK").await;
                return Err(failed(format!(
                    "batch {} of {total} (staged rows {}..{}) failed: {e}; batches 1..{b} are committed ({written} row(s) written)",
                    b + 1,
                    lo + 1,
                    (lo + MERGE_BATCH_ROWS).min(n)
                )));
            }
        }
    }
    let inserted = m.to_insert.min(written);
    Ok((inserted, written - inserted))
}

/// Runs the merge the request describes; one transaction unless `per-table`.
/// On any failure the open transaction is rolled back and the error says
/// which table and what was already committed.
pub async fn merge_tables(req: &MergeRequest, out: &Output) -> Result<MergeOutcome, ActionError> {
    let s = prepare(req, out).await?;
    for l in preview_lines(req, &s.measured) {
        out.line(l);
    }
    let expected: Vec<String> = s
        .measured
        .iter()
        .flat_map(|m| {
            m.fk_violations
                .iter()
                .map(move |f| format!("{}: {f}", m.table))
        })
        .collect();
    if !expected.is_empty() {
        return Err(refused(format!(
            "the merge would break foreign keys: {}; merge the parent tables too (add them to `tables`); nothing was written",
            expected.join("; ")
        )));
    }
    let lt = req.database.display();
    let live = &s.live;
    let mut done_tables: Vec<String> = Vec::new();
    let mut result = Vec::new();
    let mut sequences = Vec::new();
    if req.transaction == MergeTx::One {
        live.batch_execute("BEGIN")
            .await
            .map_err(|e| db_error(&lt, &e))?;
    }
    for (t, m) in s.tables.iter().zip(&s.measured) {
        let step = write_table(live, req, t, m).await;
        match step {
            Ok((inserted, updated, after, moved)) => {
                out.line(format!(
                    "{}: {inserted} row(s) inserted, {updated} updated, {after} now",
                    t.display()
                ));
                for mv in &moved {
                    out.line(format!("sequence {mv}"));
                }
                sequences.extend(moved);
                let mut m = m.clone();
                m.inserted = inserted;
                m.updated = updated;
                m.live_after = Some(after);
                result.push(m);
                done_tables.push(t.display());
            }
            Err(e) => {
                let _ = live.batch_execute("ROLLBACK").await;
                let kept = match req.transaction {
                    MergeTx::One => {
                        "the whole merge was rolled back: the live database is as before"
                            .to_string()
                    }
                    MergeTx::PerTable if done_tables.is_empty() => {
                        "rolled back: no table was changed".to_string()
                    }
                    MergeTx::Batches if done_tables.is_empty() => "no earlier table".to_string(),
                    MergeTx::PerTable | MergeTx::Batches => format!(
                        "this table was rolled back; already committed: {}",
                        done_tables.join(", ")
                    ),
                };
                return Err(failed(format!(
                    "merge failed at table '{}': {e}; {kept}",
                    t.display()
                )));
            }
        }
    }
    let found = orphans(live, req, &s.fks).await;
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            let _ = live.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    // Orphans left now were there before (the merge only adds parents, and
    // the rows it writes were checked above): reported, never a reason to
    // throw the merged rows away.
    if req.transaction == MergeTx::One {
        live.batch_execute("COMMIT")
            .await
            .map_err(|e| db_error(&lt, &e))?;
        out.line("COMMIT: every table merged in one transaction");
    }
    for o in &found {
        out.line(format!("ORPHANS: {o}"));
    }
    Ok(MergeOutcome {
        source: req.source.clone(),
        policy: req.policy,
        transaction: req.transaction,
        tables: result,
        sequences,
        orphans: found,
    })
}
