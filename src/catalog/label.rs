//! Labels for backups against the healthy history (timeline samples and the
//! catalog's own scanned counts), and the damage window the labels imply.
//! Pure: judges what it is given, reads and writes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::BackupFile;
use super::scan::ContentScan;
/// The damage window is engine data (the core carries it in outcomes).
pub use crate::engine::types::{DamageWindow, Seen};

/// A watched table holding less than 1/DAMAGE_RATIO of its healthy history
/// is damaged.
pub const DAMAGE_RATIO: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Label {
    Healthy,
    Damaged,
    SchemaOnly,
    OtherDatabase,
    Truncated,
    Unreadable,
}

impl Label {
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Healthy => "healthy",
            Label::Damaged => "damaged",
            Label::SchemaOnly => "schema-only",
            Label::OtherDatabase => "other-database",
            Label::Truncated => "truncated",
            Label::Unreadable => "unreadable",
        }
    }
}

/// A label and the reason for it, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labelled {
    pub label: Label,
    pub why: String,
}

fn l(label: Label, why: impl Into<String>) -> Labelled {
    Labelled {
        label,
        why: why.into(),
    }
}

/// `public."User"` (pg_dump's and `format('%I.%I')`'s quoting) -> `public.User`:
/// the one key tables are compared by.
pub fn canon(qualified: &str) -> String {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = qualified.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts.join(".")
}

/// Where the healthy counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineSource {
    /// The incident's samples (the timeline).
    Timeline,
    /// The catalog's scanned backups.
    Catalog,
    /// Both.
    TimelineAndCatalog,
    /// No history at all.
    None,
}

/// The healthy history: the highest count each table was seen with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub source: BaselineSource,
    /// `schema.name` (unquoted, see `canon`) -> rows.
    pub rows: BTreeMap<String, u64>,
}

impl Baseline {
    /// History from the samples' counts (`schema.name` -> rows) and the
    /// complete data-bearing scans of the right database.
    pub fn build(
        samples: &[BTreeMap<String, u64>],
        scans: &[&ContentScan],
        dbname: Option<&str>,
    ) -> Baseline {
        let mut rows: BTreeMap<String, u64> = BTreeMap::new();
        let mut from_t = false;
        let mut from_c = false;
        for s in samples {
            for (t, n) in s {
                from_t = true;
                let e = rows.entry(t.clone()).or_default();
                *e = (*e).max(*n);
            }
        }
        for s in scans {
            let other = matches!((&s.dbname, dbname), (Some(d), Some(w)) if d != w);
            if !s.complete || !s.has_data || other {
                continue;
            }
            for (t, n) in &s.rows {
                from_c = true;
                let e = rows.entry(canon(t)).or_default();
                *e = (*e).max(*n);
            }
        }
        let source = match (from_t, from_c) {
            (true, true) => BaselineSource::TimelineAndCatalog,
            (true, false) => BaselineSource::Timeline,
            (false, true) => BaselineSource::Catalog,
            (false, false) => BaselineSource::None,
        };
        Baseline { source, rows }
    }

    /// The tables a backup is judged on: the watched ones (`User` or
    /// `schema.User`) when the inventory names any, else every table.
    pub fn judged<'a>(&'a self, watched: &[String]) -> Vec<(&'a String, u64)> {
        self.rows
            .iter()
            .filter(|(t, _)| {
                watched.is_empty()
                    || watched
                        .iter()
                        .any(|w| *t == w || t.rsplit_once('.').is_some_and(|(_, n)| n == w))
            })
            .map(|(t, n)| (t, *n))
            .collect()
    }
}

/// The label of one backup. `scan` is its content (None when it could not
/// be read: `scan_error` says why); `want_db` the server name of the
/// database the catalog is for.
pub fn label(
    file: &BackupFile,
    scan: Option<&ContentScan>,
    scan_error: Option<&str>,
    want_db: Option<&str>,
    watched: &[String],
    base: &Baseline,
) -> Labelled {
    if !file.ok {
        let p = file
            .problem
            .as_deref()
            .unwrap_or("failed its integrity check");
        return if p.starts_with("truncated") || p.contains("end of file") {
            l(Label::Truncated, p)
        } else {
            l(Label::Unreadable, p)
        };
    }
    let Some(s) = scan else {
        return l(
            Label::Unreadable,
            format!(
                "its content could not be read: {}",
                scan_error.unwrap_or("not scanned")
            ),
        );
    };
    if !s.complete {
        return l(
            Label::Truncated,
            "its SQL text ends without the 'PostgreSQL database dump complete' trailer",
        );
    }
    let named = file.dumped_db.as_deref().or(s.dbname.as_deref());
    if let (Some(d), Some(w)) = (named, want_db)
        && d != w
    {
        return l(
            Label::OtherDatabase,
            format!("its header names database '{d}', the catalog is for '{w}'"),
        );
    }
    if s.schema_only() {
        return l(
            Label::SchemaOnly,
            format!(
                "{} table(s) created, no row loaded (pg_dump --schema-only)",
                s.tables.len()
            ),
        );
    }
    let have: Vec<String> = s.tables.iter().map(|t| canon(t)).collect();
    if !base.rows.is_empty() && !have.iter().any(|t| base.rows.contains_key(t)) {
        return l(
            Label::OtherDatabase,
            "it holds none of the tables of the database's history",
        );
    }
    let rows: BTreeMap<String, u64> = s.rows.iter().map(|(t, n)| (canon(t), *n)).collect();
    let mut bad = Vec::new();
    for (t, h) in base.judged(watched) {
        if h == 0 {
            continue;
        }
        let got = rows.get(t).copied().unwrap_or(0);
        if got == 0 {
            bad.push(format!("{t} empty (history {h} rows)"));
        } else if got.saturating_mul(DAMAGE_RATIO) < h {
            bad.push(format!("{t} {got} rows, far below its history of {h}"));
        }
    }
    if !bad.is_empty() {
        return l(Label::Damaged, bad.join("; "));
    }
    let total = s.total_rows();
    if base.rows.is_empty() {
        return l(
            Label::Healthy,
            format!(
                "{total} rows in {} table(s); no history to compare with",
                s.tables.len()
            ),
        );
    }
    l(
        Label::Healthy,
        format!(
            "{total} rows in {} table(s), consistent with the history",
            s.tables.len()
        ),
    )
}

/// The window from labelled evidence in any order: the first damaged item
/// after the last healthy one before it. None when nothing is damaged.
pub fn damage_window(evidence: &[(DateTime<Utc>, String, Label)]) -> Option<DamageWindow> {
    let mut ev: Vec<&(DateTime<Utc>, String, Label)> = evidence
        .iter()
        .filter(|e| matches!(e.2, Label::Healthy | Label::Damaged))
        .collect();
    ev.sort_by_key(|e| e.0);
    // The last healthy item, then the first damaged item after it.
    let last_healthy = ev.iter().rposition(|e| e.2 == Label::Healthy);
    let from = last_healthy.map(|i| i + 1).unwrap_or(0);
    let first_damaged = ev[from..].iter().find(|e| e.2 == Label::Damaged)?;
    Some(DamageWindow {
        after: last_healthy.map(|i| Seen {
            what: ev[i].1.clone(),
            at: ev[i].0,
        }),
        before: Some(Seen {
            what: first_damaged.1.clone(),
            at: first_damaged.0,
        }),
        likely: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{DumpFormat, TimeSource};
    use rstest::rstest;

    fn file(ok: bool, problem: Option<&str>, db: Option<&str>) -> BackupFile {
        BackupFile {
            path: "/b/x".into(),
            name: "x".into(),
            size: 1,
            taken_at: "2026-12-01T00:00:00Z".into(),
            time_source: TimeSource::Name,
            mtime: "2026-12-01T00:00:00Z".into(),
            name_time: None,
            recorded_at: None,
            format: DumpFormat::Plain,
            ok,
            problem: problem.map(str::to_string),
            dumped_db: db.map(str::to_string),
            server_version: None,
        }
    }

    fn scan(rows: &[(&str, u64)], data: bool, complete: bool, db: Option<&str>) -> ContentScan {
        ContentScan {
            dbname: db.map(str::to_string),
            tables: rows.iter().map(|(t, _)| t.to_string()).collect(),
            rows: if data {
                rows.iter().map(|(t, n)| (t.to_string(), *n)).collect()
            } else {
                BTreeMap::new()
            },
            has_data: data,
            complete,
            ..Default::default()
        }
    }

    fn history() -> Baseline {
        Baseline {
            source: BaselineSource::Catalog,
            rows: [
                ("public.User".to_string(), 22),
                ("public.game".to_string(), 12),
                ("public.log".to_string(), 0),
            ]
            .into(),
        }
    }

    const USER: &str = "public.\"User\"";

    #[rstest]
    #[case::healthy(file(true, None, None), Some(scan(&[(USER, 22), ("public.game", 12)], true, true, None)), &[], Label::Healthy)]
    #[case::grown(file(true, None, None), Some(scan(&[(USER, 40), ("public.game", 12)], true, true, None)), &[], Label::Healthy)]
    #[case::older_but_not_far(file(true, None, None), Some(scan(&[(USER, 5), ("public.game", 12)], true, true, None)), &[], Label::Healthy)]
    #[case::wiped(file(true, None, None), Some(scan(&[(USER, 0), ("public.game", 0)], true, true, None)), &[], Label::Damaged)]
    #[case::one_table_wiped(file(true, None, None), Some(scan(&[(USER, 0), ("public.game", 12)], true, true, None)), &[], Label::Damaged)]
    #[case::far_below(file(true, None, None), Some(scan(&[(USER, 2), ("public.game", 12)], true, true, None)), &[], Label::Damaged)]
    #[case::table_missing(file(true, None, None), Some(scan(&[("public.game", 12)], true, true, None)), &[], Label::Damaged)]
    #[case::unwatched_wipe_ignored(file(true, None, None), Some(scan(&[(USER, 22), ("public.game", 0)], true, true, None)), &["User"], Label::Healthy)]
    #[case::watched_wipe(file(true, None, None), Some(scan(&[(USER, 0), ("public.game", 12)], true, true, None)), &["User"], Label::Damaged)]
    #[case::schema_only(file(true, None, None), Some(scan(&[(USER, 0), ("public.game", 0)], false, true, None)), &[], Label::SchemaOnly)]
    #[case::header_other_db(file(true, None, None), Some(scan(&[(USER, 22), ("public.game", 12)], true, true, Some("shop"))), &[], Label::OtherDatabase)]
    #[case::archive_other_db(file(true, None, Some("shop")), Some(scan(&[(USER, 22), ("public.game", 12)], true, true, None)), &[], Label::OtherDatabase)]
    #[case::no_shared_table(file(true, None, None), Some(scan(&[("public.orders", 9)], true, true, None)), &[], Label::OtherDatabase)]
    #[case::cut(file(false, Some("truncated: no trailer"), None), None, &[], Label::Truncated)]
    #[case::cut_text(file(true, None, None), Some(scan(&[(USER, 22)], true, false, None)), &[], Label::Truncated)]
    #[case::cut_gzip(file(false, Some("gzip -t failed: gzip: /b/x.sql.gz: unexpected end of file"), None), None, &[], Label::Truncated)]
    #[case::garbage(file(false, Some("unknown format"), None), None, &[], Label::Unreadable)]
    #[case::not_scanned(file(true, None, None), None, &[], Label::Unreadable)]
    fn labels(
        #[case] f: BackupFile,
        #[case] s: Option<ContentScan>,
        #[case] watched: &[&str],
        #[case] want: Label,
    ) {
        let watched: Vec<String> = watched.iter().map(|w| w.to_string()).collect();
        let got = label(
            &f,
            s.as_ref(),
            Some("boom"),
            Some("app"),
            &watched,
            &history(),
        );
        assert_eq!(got.label, want, "{got:?}");
        assert!(!got.why.is_empty());
    }

    #[test]
    fn the_same_database_by_name_is_not_other() {
        let s = scan(&[(USER, 22), ("public.game", 12)], true, true, Some("app"));
        let got = label(
            &file(true, None, None),
            Some(&s),
            None,
            Some("app"),
            &[],
            &history(),
        );
        assert_eq!(got.label, Label::Healthy);
    }

    #[test]
    fn baseline_is_the_highest_count_of_good_evidence() {
        let good = scan(&[(USER, 22)], true, true, None);
        let wiped = scan(&[(USER, 0)], true, true, None);
        let other = scan(&[(USER, 999)], true, true, Some("shop"));
        let cut = scan(&[(USER, 500)], true, false, None);
        let b = Baseline::build(&[], &[&wiped, &good, &other, &cut], Some("app"));
        assert_eq!(b.rows["public.User"], 22);
        assert_eq!(b.source, BaselineSource::Catalog);
        let sample: BTreeMap<String, u64> = [("public.User".to_string(), 30)].into();
        let b = Baseline::build(&[sample], &[&good], Some("app"));
        assert_eq!(b.rows["public.User"], 30);
        assert_eq!(b.source, BaselineSource::TimelineAndCatalog);
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canon("public.\"User\""), "public.User");
        assert_eq!(canon("\"my.schema\".\"a\"\"b\""), "my.schema.a\"b");
        assert_eq!(canon("public.game"), "public.game");
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn window_between_last_healthy_and_first_damaged() {
        let ev = vec![
            (t("2026-12-10T13:00:00Z"), "d2".to_string(), Label::Damaged),
            (t("2026-12-08T07:36:00Z"), "h1".to_string(), Label::Healthy),
            (
                t("2026-12-09T07:36:00Z"),
                "s".to_string(),
                Label::SchemaOnly,
            ),
            (t("2026-12-10T12:00:00Z"), "d1".to_string(), Label::Damaged),
            (t("2026-12-07T07:36:00Z"), "h0".to_string(), Label::Healthy),
        ];
        let w = damage_window(&ev).unwrap();
        assert_eq!(w.after.as_ref().unwrap().what, "h1");
        assert_eq!(w.before.as_ref().unwrap().what, "d1");
        assert!(w.describe().starts_with(
            "damaged between 2026-12-08 07:36:00 UTC (h1) and 2026-12-10 12:00:00 UTC (d1)"
        ));
        assert!(damage_window(&ev[1..2]).is_none());
        let only_damage = damage_window(&ev[..1]).unwrap();
        assert!(only_damage.after.is_none());
    }
}
