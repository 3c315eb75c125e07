//! Ground truth for drill scoring: every row of the lab's live database, read
//! by the lab itself (not through lifeline) as one md5 of the row's text per
//! row. Read-only; it never writes to any database.

use super::score::RowSnapshot;
use super::{DB_NAME, Lab, LabError};

/// Lists every row of every table of `public`, `table|md5(row)` per line
/// (names go through `format('%I')`; values never leave the server).
const ROWS_SQL: &str = "SELECT format('SELECT %L, md5(x::text) FROM public.%I x', tablename, tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename \\gexec";

impl Lab {
    /// The rows of the live database now: per table, each row's md5 and how
    /// many rows have that text. Taken before a runbook starts and after it,
    /// it says which rows the fix lost.
    pub fn live_rows(&self) -> Result<RowSnapshot, LabError> {
        let out = self.psql(DB_NAME, ROWS_SQL)?;
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
}
