//! `lifeline incidents`: one line per incident under the state directory
//! (id, runbook, opened, state), read from each incident's journal.
//! Reads only: it never writes, repairs or re-signs a journal.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::engine::driver::kinds as engine_kinds;
use crate::journal::{Record, kinds, read_records};
use crate::state::StateDir;

/// What the journal of one incident says about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRow {
    pub id: String,
    /// The runbook that opened it or last ran in it (None: console only).
    pub runbook: Option<String>,
    /// Time of its first journal record.
    pub opened: Option<DateTime<Utc>>,
    /// `open`, `running or interrupted`, `finished: ...`, or `unreadable: ...`.
    pub state: String,
    pub records: usize,
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// The row of one incident from its journal records.
pub fn row(id: &str, records: &[Record]) -> IncidentRow {
    let runbook = records
        .iter()
        .rev()
        .find(|r| r.kind == engine_kinds::RUN_STARTED)
        .and_then(|r| text(&r.data, "runbook"))
        .or_else(|| {
            records
                .iter()
                .find(|r| r.kind == kinds::INCIDENT_OPENED)
                .and_then(|r| text(&r.data, "runbook"))
        });
    let last_start = records
        .iter()
        .rposition(|r| r.kind == engine_kinds::RUN_STARTED);
    let last_end = records
        .iter()
        .rposition(|r| r.kind == engine_kinds::RUN_FINISHED);
    let state = match (last_start, last_end) {
        (None, _) => "open".to_string(),
        (Some(s), Some(e)) if e > s => format!("finished: {}", records[e].summary),
        (Some(_), _) => "running or interrupted".to_string(),
    };
    IncidentRow {
        id: id.to_string(),
        runbook,
        opened: records.first().map(|r| r.ts),
        state,
        records: records.len(),
    }
}

/// Every incident under `state`, oldest first; a journal that cannot be
/// read is listed as such, never skipped.
pub fn list(state: &StateDir) -> Vec<IncidentRow> {
    state
        .list_incidents()
        .into_iter()
        .map(|id| match read_records(&state.journal_path(&id)) {
            Ok(recs) => row(&id, &recs),
            Err(e) => IncidentRow {
                id,
                runbook: None,
                opened: None,
                state: format!("unreadable: {e}"),
                records: 0,
            },
        })
        .collect()
}

/// The human table: one line per incident.
pub fn render(rows: &[IncidentRow]) -> String {
    if rows.is_empty() {
        return "no incidents\n".to_string();
    }
    let w = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let rw = rows
        .iter()
        .map(|r| r.runbook.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!(
        "{:w$}  {:rw$}  {:20}  STATE\n",
        "ID", "RUNBOOK", "OPENED (UTC)"
    );
    for r in rows {
        let opened = r
            .opened
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:w$}  {:rw$}  {:20}  {}\n",
            r.id,
            r.runbook.as_deref().unwrap_or("-"),
            opened,
            r.state
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Entry, Journal};
    use crate::redact::Redactor;
    use serde_json::json;

    #[test]
    fn rows_from_real_journals() {
        let tmp = tempfile::tempdir().unwrap();
        let st = StateDir::new(tmp.path());
        assert!(list(&st).is_empty());
        assert_eq!(render(&[]), "no incidents\n");
        let open = |id: &str| {
            std::fs::create_dir_all(st.incident_dir(id)).unwrap();
            Journal::open(&st.journal_path(id), id, "op", Redactor::new()).unwrap()
        };
        let mut a = open("20261206-010000-a");
        a.append(
            Entry::new(kinds::INCIDENT_OPENED, "opened").data(json!({"runbook": "table-wiped"})),
        )
        .unwrap();
        a.append(
            Entry::new(engine_kinds::RUN_STARTED, "run").data(json!({"runbook": "table-wiped"})),
        )
        .unwrap();
        a.append(Entry::new(engine_kinds::RUN_FINISHED, "every step done"))
            .unwrap();
        drop(a);
        let mut b = open("20261206-020000-b");
        b.append(Entry::new(kinds::INCIDENT_OPENED, "opened in the console"))
            .unwrap();
        drop(b);
        let rows = list(&st);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].runbook.as_deref(), Some("table-wiped"));
        assert_eq!(rows[0].state, "finished: every step done");
        assert!(rows[0].opened.is_some());
        assert_eq!(rows[1].runbook, None);
        assert_eq!(rows[1].state, "open");
        let t = render(&rows);
        assert!(t.starts_with("ID "), "{t}");
        assert!(t.contains("20261206-010000-a  table-wiped"), "{t}");
    }
}
