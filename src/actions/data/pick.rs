//! pick-backup: the catalog listed on its host, every file's content
//! scanned and labelled against the healthy history, the incident time
//! checked against the damage window, every file judged (time from the dump
//! header or the name, mtime only as a last resort, and said so), the newest
//! healthy one before the incident chosen. Only reads: never moves, copies
//! or deletes a backup, and never picks a damaged, schema-only or
//! other-database one.

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::evidence::{self, TableEvidence};
use super::{CATALOG_TIMEOUT, bytes, host, span};
use crate::actions::RealActions;
use crate::catalog::content::{self, Assessment, ScanCache};
use crate::catalog::label::{DamageWindow, Label, canon};
use crate::catalog::{self, BackupFile, TimeSource};
use crate::db::{ConnectOptions, DbHandle};
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;
use crate::probe::Runner;
use crate::transport::Host;

fn time_source(s: TimeSource) -> &'static str {
    match s {
        TimeSource::Header => "header",
        TimeSource::Name => "name",
        TimeSource::Mtime => "mtime",
    }
}

/// Judges every file of a catalog against the incident time. `dbname` is
/// the server name of the database the catalog is for.
pub(crate) fn judge(
    files: &[BackupFile],
    incident_at: DateTime<Utc>,
    dbname: Option<&str>,
) -> Vec<BackupCandidate> {
    files
        .iter()
        .map(|f| {
            let taken_at = DateTime::parse_from_rfc3339(&f.taken_at)
                .ok()
                .map(|t| t.with_timezone(&Utc));
            let rpo_s = taken_at.map(|t| (incident_at - t).num_seconds());
            let excluded = if !f.ok {
                Some(
                    f.problem
                        .clone()
                        .unwrap_or_else(|| "failed its integrity check".into()),
                )
            } else if let (Some(d), Some(want)) = (&f.dumped_db, dbname)
                && d != want
            {
                Some(format!(
                    "wrong database: the archive holds '{d}', the catalog is for '{want}'"
                ))
            } else {
                match taken_at {
                    None => Some(format!("unreadable time '{}'", f.taken_at)),
                    // Compared as instants: a backup taken 0.4 s after the
                    // incident holds the damage even though whole seconds
                    // round the difference to 0.
                    Some(t) if t > incident_at => Some(format!(
                        "after the incident (taken {} later)",
                        span((t - incident_at).num_seconds().max(1))
                    )),
                    _ => None,
                }
            };
            BackupCandidate {
                name: f.name.clone(),
                path: f.path.clone(),
                taken_at,
                time_source: time_source(f.time_source).to_string(),
                size: f.size,
                sha256: None,
                rpo_s,
                excluded,
                label: None,
                label_why: None,
                rows: None,
            }
        })
        .collect()
}

/// Marks every candidate with its content label; one that is not healthy
/// is excluded (its label is the first reason given).
pub(crate) fn apply_labels(candidates: &mut [BackupCandidate], a: &Assessment) {
    for c in candidates.iter_mut() {
        let Some(f) = a.files.iter().find(|f| f.file.path == c.path) else {
            continue;
        };
        c.label = Some(f.label.as_str().to_string());
        c.label_why = Some(f.why.clone());
        c.rows = f
            .content
            .as_ref()
            .map(|s| s.rows.iter().map(|(t, n)| (canon(t), *n)).collect());
        if c.sha256.is_none() {
            c.sha256 = f.sha256.clone();
        }
        // A file that failed its integrity check keeps that reason alone.
        if f.label != Label::Healthy && f.file.ok {
            let why = format!("labelled {}: {}", f.label.as_str(), f.why);
            c.excluded = Some(match c.excluded.take() {
                Some(e) if !f.why.contains(&e) => format!("{why}; also {e}"),
                _ => why,
            });
        }
    }
}

/// The incident time the evidence allows: a given time later than the
/// first damaged evidence is moved back to the last healthy one (with a
/// warning); no given time is taken from the window. Err when there is
/// neither.
pub(crate) fn incident_from_evidence(
    given: Option<DateTime<Utc>>,
    window: Option<&DamageWindow>,
) -> Result<(DateTime<Utc>, Vec<String>), String> {
    let earliest = window.and_then(|w| match (&w.after, &w.before) {
        (Some(a), _) => Some((a.at, a.what.clone())),
        (None, Some(b)) => Some((
            b.at - chrono::Duration::seconds(1),
            format!("just before {}", b.what),
        )),
        (None, None) => None,
    });
    let first_damage = window.and_then(|w| w.before.as_ref());
    match (given, earliest, first_damage) {
        (Some(t), Some((e, what)), Some(b)) if t > b.at => Ok((
            e,
            vec![format!(
                "the incident time {} is later than the evidence allows: {} ({}) already holds the damage; using {} ({}) instead",
                t.to_rfc3339(),
                b.what,
                b.at.to_rfc3339(),
                e.to_rfc3339(),
                what
            )],
        )),
        (Some(t), _, _) => Ok((t, Vec::new())),
        (None, Some((e, what)), _) => Ok((
            e,
            vec![format!(
                "no incident time was given or journaled: using the evidence, {} ({})",
                e.to_rfc3339(),
                what
            )],
        )),
        (None, None, _) => Err(
            "no incident time: none was given, no row-count drop is journaled, and no backup's content shows the damage; give the step's 'incident_at' (or the answers' parameter); nothing was picked".into(),
        ),
    }
}

/// The newest eligible candidate.
pub(crate) fn choose(c: &[BackupCandidate]) -> Option<&BackupCandidate> {
    c.iter()
        .filter(|c| c.excluded.is_none())
        .max_by_key(|c| (c.taken_at, c.name.clone()))
}

/// The backups' content labelled against the history (the incident's
/// samples and the catalog), every label said, and the damage window.
async fn evidence(
    actions: &RealActions,
    req: &PickRequest,
    h: &Host,
    files: &[BackupFile],
    dbname: Option<&str>,
    out: &Output,
) -> (Assessment, Vec<TableEvidence>) {
    let cache = req
        .incident_dir
        .as_deref()
        .and_then(|d| d.parent())
        .and_then(|d| d.parent())
        .map(ScanCache::new)
        .unwrap_or_else(ScanCache::none);
    let counts = counts_of(req);
    let watched = req
        .database
        .as_ref()
        .map(|d| d.spec.watch.clone())
        .unwrap_or_default();
    out.line(format!(
        "scanning the content of {} backup(s) (cached by SHA-256)",
        files.iter().filter(|f| f.ok).count()
    ));
    let assessed = content::assess(h, files, &cache, dbname, &watched, &counts).await;
    let a = &assessed;
    out.line(format!(
        "healthy history from {:?}: {}",
        a.baseline.source,
        a.baseline
            .rows
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for f in &a.files {
        out.line(format!(
            "content {}: {}: {}",
            f.file.name,
            f.label.as_str(),
            f.why
        ));
    }
    let mut a = assessed;
    let live = match (&req.database, &a.window) {
        (Some(d), Some(_)) => live(actions, d, out).await,
        _ => Vec::new(),
    };
    if let Some(w) = a.window.as_mut() {
        let judged: Vec<String> = a
            .baseline
            .judged(&watched)
            .into_iter()
            .map(|(t, _)| t.clone())
            .collect();
        w.likely = evidence::likely_moment(w, &live, &judged);
        out.line(w.describe());
    }
    (a, live)
}

/// What verify holds a restore of `chosen` to: its scanned counts, raised to
/// the exact counts the timeline sampled (never estimates: an audit table
/// that grew with the damage is no history).
pub(crate) fn verify_baseline(
    chosen: &BackupCandidate,
    samples: &[content::SampleCounts],
) -> (BTreeMap<String, u64>, String) {
    let mut b = chosen.rows.clone().unwrap_or_default();
    for (_, c) in samples {
        for (t, n) in c {
            let e = b.entry(t.clone()).or_default();
            *e = (*e).max(*n);
        }
    }
    let source = match (chosen.rows.is_some(), samples.is_empty()) {
        (true, true) => "the picked backup's scanned counts",
        (true, false) => "the picked backup's scanned counts and the timeline's exact counts",
        (false, false) => "the timeline's exact counts",
        (false, true) => "none",
    };
    (b, source.to_string())
}

/// The exact counts of the incident's samples of the catalog's database.
fn counts_of(req: &PickRequest) -> Vec<content::SampleCounts> {
    let samples = req
        .incident_dir
        .as_deref()
        .map(|d| d.join(crate::state::SAMPLES_FILE))
        .filter(|p| p.exists())
        .and_then(|p| crate::samples::read(&p).ok())
        .unwrap_or_default();
    content::sample_counts(&samples, req.catalog.database.get_ref())
}

/// The live database's evidence (OIDs, data file times, counters), said.
async fn live(a: &RealActions, d: &DbTarget, out: &Output) -> Vec<TableEvidence> {
    let opts = match ConnectOptions::from_spec(&d.spec, &a.redactor) {
        Ok(o) => o.with_dbname(d.dbname()),
        Err(e) => {
            out.line(format!("no live evidence: {e}"));
            return Vec::new();
        }
    };
    match evidence::live_evidence(&DbHandle::new(opts)).await {
        Ok(v) => {
            for e in &v {
                out.line(format!(
                    "live {}: OID {}, data file written {}, {} inserted / {} deleted since {}",
                    e.table,
                    e.oid,
                    e.file_modified
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| format!(
                            "? ({})",
                            e.file_error.as_deref().unwrap_or("not readable")
                        )),
                    e.inserted.unwrap_or(0),
                    e.deleted.unwrap_or(0),
                    e.stats_reset
                        .map(|t| format!("the stats reset at {}", t.to_rfc3339()))
                        .unwrap_or_else(|| "the server started (no stats reset)".into())
                ));
            }
            v
        }
        Err(e) => {
            out.line(format!("no live evidence from '{}': {e}", d.dbname()));
            Vec::new()
        }
    }
}

pub async fn pick_backup(
    a: &RealActions,
    req: &PickRequest,
    out: &Output,
) -> Result<PickOutcome, ActionError> {
    let h = host(a, &req.host.name)?;
    out.line(format!(
        "catalog '{}' on {}: {} (pattern {}); incident at {}",
        req.catalog.name(),
        req.host.display(),
        req.catalog.path,
        req.catalog.pattern.as_deref().unwrap_or("*"),
        req.incident_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "not known: from the evidence".into())
    ));
    let report = catalog::read_catalog(&req.catalog, h as &dyn Runner, CATALOG_TIMEOUT).await;
    if let Some(e) = &report.error {
        return Err(ActionError::Failed(format!(
            "cannot read catalog '{}' on host '{}': {e}; check the path and that the host answers",
            req.catalog.name(),
            req.host.name
        )));
    }
    let dbname = req.database.as_ref().map(|d| d.dbname().to_string());
    let (assessment, live) = evidence(a, req, h, &report.files, dbname.as_deref(), out).await;
    let (incident_at, warnings) =
        incident_from_evidence(req.incident_at, assessment.window.as_ref())
            .map_err(ActionError::Failed)?;
    for w in &warnings {
        out.line(format!("warning: {w}"));
    }
    let mut candidates = judge(&report.files, incident_at, dbname.as_deref());
    apply_labels(&mut candidates, &assessment);
    let chosen = choose(&candidates).cloned();
    for c in &candidates {
        let mark = match (&c.excluded, &chosen) {
            (None, Some(ch)) if ch.path == c.path => "CHOSEN  ",
            (None, _) => "eligible",
            (Some(_), _) => "excluded",
        };
        let when = c
            .taken_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "?".into());
        let rpo = c
            .rpo_s
            .filter(|r| *r >= 0)
            .map(|r| format!(", loses {}", span(r)))
            .unwrap_or_default();
        let sha = c
            .sha256
            .as_deref()
            .map(|s| format!(", sha256 {}", &s[..16.min(s.len())]))
            .unwrap_or_default();
        let why = c
            .excluded
            .as_deref()
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        out.line(format!(
            "{mark} {} taken {when} (from {}), {}{rpo}{sha}{why}",
            c.name,
            c.time_source,
            bytes(c.size)
        ));
        if c.time_source == "mtime" && c.excluded.is_none() {
            out.line(format!(
                "         {}: its time is the file's mtime only (no time in its name or header); copies change mtimes: check it",
                c.name
            ));
        }
    }
    let Some(chosen) = chosen else {
        let why: Vec<String> = candidates
            .iter()
            .map(|c| {
                format!(
                    "'{}': {}",
                    c.name,
                    c.excluded.as_deref().unwrap_or("eligible")
                )
            })
            .collect();
        return Err(ActionError::NotFound(format!(
            "no backup in catalog '{}' on host '{}' qualifies (intact, healthy content and taken before {}): {}; nothing was picked",
            req.catalog.name(),
            req.host.name,
            incident_at.to_rfc3339(),
            if why.is_empty() {
                format!("the catalog '{}' holds no backup", req.catalog.path)
            } else {
                why.join("; ")
            }
        )));
    };
    let rpo_s = chosen.rpo_s.unwrap_or(0);
    out.line(format!(
        "picked {}: the newest healthy backup before the incident; {} of changes are lost",
        chosen.name,
        span(rpo_s)
    ));
    let (baseline, baseline_source) = verify_baseline(&chosen, &counts_of(req));
    let picked = PickedBackup::from_candidate(
        &chosen,
        format!(
            "catalog '{}' on host '{}'",
            req.catalog.name(),
            req.host.name
        ),
    );
    Ok(PickOutcome {
        picked,
        chosen,
        candidates,
        incident_at,
        rpo_s,
        baseline,
        baseline_source,
        window: assessment.window,
        warnings,
        live_evidence: serde_json::to_value(&live).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DumpFormat;

    fn file(name: &str, t: &str, ok: bool, db: Option<&str>) -> BackupFile {
        BackupFile {
            path: format!("/b/{name}"),
            name: name.into(),
            size: 10,
            taken_at: t.into(),
            time_source: TimeSource::Name,
            mtime: t.into(),
            name_time: Some(t.into()),
            recorded_at: None,
            format: DumpFormat::Plain,
            ok,
            problem: (!ok).then(|| "truncated: no trailer".into()),
            dumped_db: db.map(str::to_string),
            server_version: None,
        }
    }

    #[test]
    fn a_backup_taken_within_the_second_after_the_incident_is_excluded() {
        // The incident at .580; a backup named (and taken) at :37 holds the
        // damage although whole seconds make the difference 0.
        let at = DateTime::parse_from_rfc3339("2024-12-10T12:58:36.580Z")
            .unwrap()
            .with_timezone(&Utc);
        let files = vec![
            file("after.sql", "2024-12-10T12:58:37Z", true, None),
            file("good.sql", "2024-12-10T06:58:34Z", true, None),
        ];
        let c = judge(&files, at, None);
        assert_eq!(choose(&c).unwrap().name, "good.sql");
        let after = c.iter().find(|c| c.name == "after.sql").unwrap();
        assert!(
            after
                .excluded
                .as_deref()
                .unwrap()
                .starts_with("after the incident"),
            "{after:?}"
        );
    }

    #[test]
    fn newest_intact_before_the_incident_is_chosen() {
        let at = DateTime::parse_from_rfc3339("2024-12-10T12:42:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let files = vec![
            file("after.sql", "2024-12-10T13:00:00Z", true, None),
            file("cut.sql", "2024-12-10T12:00:00Z", false, None),
            file("other.dump", "2024-12-10T11:00:00Z", true, Some("shop")),
            file("good.sql", "2024-12-08T07:36:00Z", true, None),
            file("older.sql", "2024-12-07T07:36:00Z", true, None),
        ];
        let c = judge(&files, at, Some("TovPlay"));
        let ch = choose(&c).unwrap();
        assert_eq!(ch.name, "good.sql");
        assert_eq!(ch.rpo_s, Some(53 * 3600 + 6 * 60));
        let ex = |n: &str| {
            c.iter()
                .find(|c| c.name == n)
                .unwrap()
                .excluded
                .clone()
                .unwrap()
        };
        assert!(ex("after.sql").starts_with("after the incident"));
        assert!(ex("cut.sql").starts_with("truncated"));
        assert!(ex("other.dump").starts_with("wrong database"));
        assert!(
            c.iter()
                .find(|c| c.name == "older.sql")
                .unwrap()
                .excluded
                .is_none()
        );
        assert!(choose(&judge(&files[..3], at, Some("TovPlay"))).is_none());
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn window() -> DamageWindow {
        use crate::catalog::label::Seen;
        DamageWindow {
            after: Some(Seen {
                what: "backup good.sql".into(),
                at: t("2026-12-08T07:36:00Z"),
            }),
            before: Some(Seen {
                what: "backup wiped.sql".into(),
                at: t("2026-12-10T07:36:00Z"),
            }),
            likely: None,
        }
    }

    #[test]
    fn an_incident_time_later_than_the_evidence_is_corrected() {
        let w = window();
        // "now": after the first damaged backup: moved back, with a warning.
        let (at, warn) = incident_from_evidence(Some(t("2026-12-12T00:00:00Z")), Some(&w)).unwrap();
        assert_eq!(at, t("2026-12-08T07:36:00Z"));
        assert!(
            warn[0].contains("later than the evidence allows"),
            "{warn:?}"
        );
        // Inside the window: the operator knows better, kept.
        let (at, warn) = incident_from_evidence(Some(t("2026-12-09T00:00:00Z")), Some(&w)).unwrap();
        assert_eq!(at, t("2026-12-09T00:00:00Z"));
        assert!(warn.is_empty());
        // None given: the window's start, said.
        let (at, warn) = incident_from_evidence(None, Some(&w)).unwrap();
        assert_eq!(at, t("2026-12-08T07:36:00Z"));
        assert!(warn[0].contains("using the evidence"));
        // Only damaged evidence: just before the first of it.
        let only = DamageWindow { after: None, ..w };
        let (at, _) = incident_from_evidence(None, Some(&only)).unwrap();
        assert_eq!(at, t("2026-12-10T07:35:59Z"));
        // Nothing at all: a clear refusal.
        let e = incident_from_evidence(None, None).unwrap_err();
        assert!(e.contains("nothing was picked"), "{e}");
        // A given time without evidence of damage stays.
        assert_eq!(
            incident_from_evidence(Some(t("2026-12-12T00:00:00Z")), None)
                .unwrap()
                .0,
            t("2026-12-12T00:00:00Z")
        );
    }

    #[test]
    fn verify_baseline_is_the_picked_backup_raised_to_the_samples() {
        let mut c = judge(
            &[file("good.sql", "2026-12-08T07:36:00Z", true, None)],
            t("2026-12-09T00:00:00Z"),
            None,
        )
        .remove(0);
        c.rows = Some([("public.User".to_string(), 40), ("public.audit".into(), 0)].into());
        let samples = vec![(
            t("2026-12-10T00:00:00Z"),
            [("public.User".to_string(), 0), ("public.game".into(), 12)].into(),
        )];
        let (b, src) = verify_baseline(&c, &samples);
        assert_eq!(b["public.User"], 40);
        assert_eq!(b["public.game"], 12);
        assert_eq!(b["public.audit"], 0);
        assert!(src.contains("picked backup") && src.contains("timeline"));
    }
}
