//! Migration history as the tools keep it (Prisma, Flyway, Alembic, Rails,
//! Django, diesel, sqlx): applied migrations with their times, and runs of
//! migrations applied at once flagged (incident 4). Pure: src/db reads the
//! rows; never trusts a name (escaped and length-capped when built).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Characters of a migration name kept (the rest is cut, said with `…`).
pub const MAX_NAME: usize = 120;
/// Rows read per table: the newest ones (the total is said beside them).
pub const MAX_ROWS: i64 = 500;
/// Migrations applied within `RUN_WINDOW_S` of each other that make a run.
pub const RUN_MIN: usize = 5;
/// Seconds a run may span.
pub const RUN_WINDOW_S: i64 = 60;

/// Migration tools whose bookkeeping table lifeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationTool {
    Prisma,
    Flyway,
    Alembic,
    Rails,
    Django,
    Diesel,
    Sqlx,
}

impl MigrationTool {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationTool::Prisma => "Prisma",
            MigrationTool::Flyway => "Flyway",
            MigrationTool::Alembic => "Alembic",
            MigrationTool::Rails => "Rails",
            MigrationTool::Django => "Django",
            MigrationTool::Diesel => "diesel",
            MigrationTool::Sqlx => "sqlx",
        }
    }
}

/// One tool's migration table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationState {
    pub tool: Option<MigrationTool>,
    /// `schema.table` (or the bare name when absent).
    pub table: String,
    pub present: bool,
    /// Rows in the table (applied migrations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// Why this is dangerous, when it is (data but no migration history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The applied migrations with their times, runs applied at once flagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

/// One applied migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// As the tool names it, control bytes escaped, at most `MAX_NAME` characters.
    pub name: String,
    /// When it was applied; None when the tool keeps no time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<DateTime<Utc>>,
}

/// Many migrations applied at once: a whole history re-run (a migration
/// reset), or a first deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub count: usize,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The run holds migrations written (dated by their names) more than a
    /// day before it: they had been applied before, and were applied again.
    pub reapplied: bool,
    /// The reason in full, for the operator.
    pub why: String,
}

/// One tool's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct History {
    /// Whether the tool records when a migration was applied (Alembic and
    /// Rails do not).
    pub keeps_times: bool,
    /// Rows in the table.
    pub total: i64,
    /// The newest `MAX_ROWS` rows, oldest first.
    pub applied: Vec<Applied>,
    pub runs: Vec<Run>,
    /// What the history cannot tell (no times kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl History {
    /// Builds the history from rows read newest first (`name`, `applied_at`).
    pub fn from_rows(
        tool: &str,
        keeps_times: bool,
        total: i64,
        newest_first: Vec<(String, Option<DateTime<Utc>>)>,
    ) -> History {
        let mut applied: Vec<Applied> = newest_first
            .into_iter()
            .map(|(n, at)| Applied {
                name: clean_name(&n),
                applied_at: if keeps_times { at } else { None },
            })
            .collect();
        applied.reverse();
        let runs = if keeps_times {
            runs(&applied)
        } else {
            Vec::new()
        };
        History {
            keeps_times,
            total,
            applied,
            runs,
            note: (!keeps_times).then(|| {
                format!("{tool} keeps no time of applying: which migrations are applied, not when")
            }),
        }
    }

    /// Whether a run re-applied migrations written long before it.
    pub fn reapplied(&self) -> bool {
        self.runs.iter().any(|r| r.reapplied)
    }
}

/// A hostile name made safe to show: control bytes and bidi overrides as
/// visible escapes, then at most `MAX_NAME` characters.
pub fn clean_name(raw: &str) -> String {
    let v = crate::term::visible(raw);
    if v.chars().count() <= MAX_NAME {
        return v.into_owned();
    }
    let mut s: String = v.chars().take(MAX_NAME - 1).collect();
    s.push('…');
    s
}

/// The date a name starts with (`20230105120000_init`, `2023-01-05_x`,
/// `V20230105__x`), when it has one.
pub fn name_date(name: &str) -> Option<NaiveDate> {
    let digits: String = name
        .trim_start_matches(['V', 'v'])
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .take_while(|c| c.is_ascii_digit())
        .take(8)
        .collect();
    if digits.len() < 8 {
        return None;
    }
    NaiveDate::parse_from_str(&digits, "%Y%m%d").ok()
}

/// Runs of at least `RUN_MIN` migrations applied within `RUN_WINDOW_S`
/// of the run's first, in time order.
fn runs(applied: &[Applied]) -> Vec<Run> {
    let mut timed: Vec<(&Applied, DateTime<Utc>)> = applied
        .iter()
        .filter_map(|a| a.applied_at.map(|t| (a, t)))
        .collect();
    timed.sort_by_key(|(_, t)| *t);
    let mut out = Vec::new();
    let mut i = 0;
    while i < timed.len() {
        let start = timed[i].1;
        let mut j = i;
        while j + 1 < timed.len() && (timed[j + 1].1 - start).num_seconds() <= RUN_WINDOW_S {
            j += 1;
        }
        let group = &timed[i..=j];
        if group.len() >= RUN_MIN {
            out.push(run_of(group));
        }
        i = j + 1;
    }
    out
}

fn run_of(group: &[(&Applied, DateTime<Utc>)]) -> Run {
    let first_at = group[0].1;
    let last_at = group[group.len() - 1].1;
    let dates: Vec<NaiveDate> = group
        .iter()
        .filter_map(|(a, _)| name_date(&a.name))
        .collect();
    let oldest = dates.iter().min().copied();
    let newest = dates.iter().max().copied();
    let reapplied = oldest.is_some_and(|d| (first_at.date_naive() - d).num_days() > 1);
    let span = (last_at - first_at).num_seconds();
    let within = if span < 1 {
        "within the same second".to_string()
    } else {
        format!("within {span} s")
    };
    let mut why = format!(
        "{} migrations applied {within} at {}",
        group.len(),
        first_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    match (oldest, newest) {
        (Some(o), Some(n)) if reapplied => why.push_str(&format!(
            ", although written from {o} to {n}: the history was applied again (a migration reset?); the data from before it may be gone"
        )),
        _ => why.push_str(": a whole history at once (a first deploy, or a migration reset)"),
    }
    Run {
        count: group.len(),
        first_at,
        last_at,
        reapplied,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> Option<DateTime<Utc>> {
        Some(Utc.timestamp_opt(1_796_000_000 + s, 0).unwrap())
    }

    #[test]
    fn twenty_two_in_one_second_with_old_names_is_a_reapplied_run() {
        let rows: Vec<(String, Option<DateTime<Utc>>)> = (0..22)
            .rev()
            .map(|i| (format!("2023{:02}01000000_m{i}", (i % 12) + 1), at(0)))
            .collect();
        let h = History::from_rows("prisma", true, 22, rows);
        assert_eq!(h.runs.len(), 1);
        assert_eq!(h.runs[0].count, 22);
        assert!(h.reapplied());
        assert!(
            h.runs[0].why.contains("within the same second"),
            "{}",
            h.runs[0].why
        );
        assert!(h.runs[0].why.contains("2023-01-01"), "{}", h.runs[0].why);
    }

    #[test]
    fn migrations_spread_over_days_are_no_run() {
        let rows = (0..22)
            .rev()
            .map(|i| (format!("m{i}"), at(i * 86_400)))
            .collect();
        let h = History::from_rows("prisma", true, 22, rows);
        assert!(h.runs.is_empty());
        assert_eq!(h.applied.first().map(|a| a.name.as_str()), Some("m0"));
    }

    #[test]
    fn a_burst_of_undated_names_is_a_run_but_not_said_reapplied() {
        let rows = (0..6).map(|i| (format!("m{i}"), at(i))).collect();
        let h = History::from_rows("flyway", true, 6, rows);
        assert_eq!(h.runs.len(), 1);
        assert!(!h.reapplied());
        assert!(h.runs[0].why.contains("within 5 s"), "{}", h.runs[0].why);
    }

    #[test]
    fn no_times_kept_is_said_and_never_a_run() {
        let rows = (0..8).map(|i| (format!("v{i}"), at(0))).collect();
        let h = History::from_rows("alembic", false, 8, rows);
        assert!(h.runs.is_empty());
        assert!(h.applied.iter().all(|a| a.applied_at.is_none()));
        assert!(h.note.as_deref().unwrap_or("").contains("keeps no time"));
    }

    #[test]
    fn hostile_names_are_escaped_and_capped() {
        let long = format!("\u{1b}[2J\u{202e}x{}", "y".repeat(500));
        let n = clean_name(&long);
        assert!(
            !n.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{n:?}"
        );
        assert_eq!(n.chars().count(), MAX_NAME);
        assert!(n.ends_with('…'));
        assert_eq!(
            name_date("20230105120000_init"),
            NaiveDate::from_ymd_opt(2023, 1, 5)
        );
        assert_eq!(
            name_date("V2023_01_05__x"),
            NaiveDate::from_ymd_opt(2023, 1, 5)
        );
        assert_eq!(name_date("0001_initial"), None);
    }
}
