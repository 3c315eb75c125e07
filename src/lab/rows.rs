//! Ground truth for drill scoring: every row of the lab's live database, read
//! by the lab itself (not through lifeline) as one md5 of the row's text per
//! row, and the writer's ids present. Read-only; it never writes to any database.

use std::collections::BTreeSet;

use super::score::{self, RowSnapshot, TruthScore};
use super::{DB_NAME, Lab, LabError, writer};

/// Lists every row of every table of `public`, `table|md5(row)` per line
/// (names go through `format('%I')`; values never leave the server).
const ROWS_SQL: &str = "SELECT format('SELECT %L, md5(x::text) FROM public.%I x', tablename, tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename \\gexec";

/// Constraints, indexes, sequences and (user) triggers of `public`, one per line.
const SCHEMA_SQL: &str = "SELECT x FROM (
  SELECT 'con:' || c.conrelid::regclass::text || '.' || c.conname || ':' || c.contype::text AS x FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'
  UNION ALL SELECT 'idx:' || indexname FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'seq:' || sequencename FROM pg_sequences WHERE schemaname = 'public'
  UNION ALL SELECT 'trg:' || r.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal) s ORDER BY x";

impl Lab {
    /// The rows of the live database now: per table, each row's md5 and how
    /// many rows have that text. Taken before a runbook starts and after it,
    /// it says which rows the fix lost.
    pub fn live_rows(&self) -> Result<RowSnapshot, LabError> {
        self.rows_of(ROWS_SQL)
    }

    /// The live rows before a fix, for "rows lost in undamaged tables":
    /// [`Lab::live_rows`] less the rows the damage itself wrote (e.g. the
    /// delete-audit rows of the destructive transaction; a point-in-time
    /// recovery rightly leaves them out). Plain [`Lab::live_rows`] when the
    /// lab has no snapshot from before the damage.
    pub fn rows_before_fix(&self) -> Result<RowSnapshot, LabError> {
        let mut rows = self.live_rows()?;
        if let Some(before) = &self.rows_before_damage {
            let added = score::minus(&self.live_rows_but_writer()?, before);
            rows = score::minus(&rows, &added);
        }
        Ok(rows)
    }

    /// [`Lab::live_rows`] without the writer's rows (those are scored by
    /// its log); an empty snapshot when the database does not exist.
    pub fn live_rows_but_writer(&self) -> Result<RowSnapshot, LabError> {
        if !self.db_exists()? {
            return Ok(RowSnapshot::new());
        }
        let sql = format!(
            "SELECT format('SELECT %L, md5(x::text) FROM public.%I x', tablename, tablename) || CASE WHEN tablename = '{}' THEN ' WHERE x.message IS DISTINCT FROM ' || quote_literal('{}') ELSE '' END FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename \\gexec",
            writer::TABLE,
            writer::MARKER
        );
        self.rows_of(&sql)
    }

    fn rows_of(&self, sql: &str) -> Result<RowSnapshot, LabError> {
        let out = self.psql(DB_NAME, sql)?;
        let mut rows = RowSnapshot::new();
        for line in out.lines() {
            if let Some((table, sum)) = line.rsplit_once('|') {
                *rows
                    .entry(table.to_string())
                    .or_default()
                    .entry(sum.to_string())
                    .or_default() += 1;
            }
        }
        Ok(rows)
    }

    /// The schema objects of `public` now: `con:<table>.<name>:<type>`,
    /// `idx:`, `seq:`, `trg:` (empty when the database does not exist).
    pub fn schema_objects(&self) -> Result<BTreeSet<String>, LabError> {
        if !self.db_exists()? {
            return Ok(BTreeSet::new());
        }
        Ok(self
            .psql(DB_NAME, SCHEMA_SQL)?
            .lines()
            .map(str::to_string)
            .collect())
    }

    fn db_exists(&self) -> Result<bool, LabError> {
        Ok(self.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{DB_NAME}'"),
        )? == "1")
    }

    /// The writer's ids in the live database now (none when the database
    /// or the table is missing).
    pub fn writer_ids_present(&self) -> Result<BTreeSet<i64>, LabError> {
        if !self.db_exists()? {
            return Ok(BTreeSet::new());
        }
        let sql = format!(
            "SELECT format('SELECT id FROM public.%I WHERE message = %L', t, '{}') FROM (VALUES ('{}')) v(t) WHERE to_regclass(quote_ident(t)) IS NOT NULL \\gexec",
            writer::MARKER,
            writer::TABLE
        );
        let out = self.psql(DB_NAME, &sql)?;
        Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Rows lost against the writer's log, and the database against the one
    /// just before the damage: read now, after a fix. `None` when the lab
    /// has no writer log.
    pub fn truth_score(&self) -> Result<Option<TruthScore>, LabError> {
        let Some(truth) = &self.truth else {
            return Ok(None);
        };
        let present = self.writer_ids_present()?;
        let effects = match &self.rows_before_damage {
            Some(before) => {
                let e = score::damage_effects(before, &self.live_rows_but_writer()?);
                Some(match &self.schema_before_damage {
                    Some(s) => e.with_schema(s, &self.schema_objects()?),
                    None => e,
                })
            }
            None => None,
        };
        Ok(Some(score::truth_score(truth, &present, effects)))
    }
}
