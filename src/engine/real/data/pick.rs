//! pick-backup: the catalog listed on its host, every file judged against
//! the incident time (time from the dump header or the name, mtime only as
//! a last resort, and said so), the newest intact one before the incident
//! chosen. Only reads: never moves, copies or deletes a backup.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{CATALOG_TIMEOUT, bytes, host, span};
use crate::catalog::{self, BackupFile, DumpFormat, TimeSource};
use crate::engine::actions::{ActionError, Output};
use crate::engine::real::RealActions;
use crate::engine::types::*;
use crate::probe::Runner;
use crate::transport::{ExecOptions, Host, shell_quote};

/// Backups up to this size get a SHA-256 in the listing (read on their host).
const HASH_MAX: u64 = 256 << 20;

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
            }
        })
        .collect()
}

/// The newest eligible candidate.
pub(crate) fn choose(c: &[BackupCandidate]) -> Option<&BackupCandidate> {
    c.iter()
        .filter(|c| c.excluded.is_none())
        .max_by_key(|c| (c.taken_at, c.name.clone()))
}

/// SHA-256 of the files small enough, computed on their host in one command.
async fn hashes(h: &Host, files: &[BackupFile]) -> BTreeMap<String, String> {
    let mut script = String::new();
    for f in files
        .iter()
        .filter(|f| f.size <= HASH_MAX && f.format != DumpFormat::Directory)
    {
        script.push_str(&format!(
            "sha256sum -- {} 2>/dev/null\n",
            shell_quote(&f.path)
        ));
    }
    if script.is_empty() {
        return BTreeMap::new();
    }
    let opts = ExecOptions::default().timeout(CATALOG_TIMEOUT);
    let Ok(r) = h.exec(&script, opts).await else {
        return BTreeMap::new();
    };
    r.stdout
        .lines()
        .filter_map(|l| {
            let (hash, path) = l.split_once("  ")?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (path.to_string(), hash.to_string()))
        })
        .collect()
}

pub async fn pick_backup(
    a: &RealActions,
    req: &PickRequest,
    out: &Output,
) -> Result<PickOutcome, ActionError> {
    let incident_at = req.incident_at.ok_or_else(|| {
        ActionError::Failed(
            "no incident time: give the step's 'incident_at' (or the answers' parameter), or let the timeline journal a row-count drop first; nothing was picked".into(),
        )
    })?;
    let h = host(a, &req.host.name)?;
    out.line(format!(
        "catalog '{}' on {}: {} (pattern {}); incident at {}",
        req.catalog.name(),
        req.host.display(),
        req.catalog.path,
        req.catalog.pattern.as_deref().unwrap_or("*"),
        incident_at.to_rfc3339()
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
    let mut candidates = judge(&report.files, incident_at, dbname.as_deref());
    let sums = hashes(h, &report.files).await;
    for c in &mut candidates {
        c.sha256 = sums.get(&c.path).cloned();
    }
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
        return Err(ActionError::Failed(format!(
            "no backup in catalog '{}' on host '{}' qualifies (intact and taken before {}): {}; nothing was picked",
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
        "picked {}: the newest intact backup before the incident; {} of changes are lost",
        chosen.name,
        span(rpo_s)
    ));
    Ok(PickOutcome {
        chosen,
        candidates,
        incident_at,
        rpo_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
