//! recover-pitr and choose-path: the damaged database's OID (live, or from the
//! timeline when it is gone), the archive listed, the destructive transaction
//! found in its WAL, the cluster recovered BESIDE the live one and the recovered
//! database dumped (hashed for the restore). Never writes to the live server or the archive.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::host;
use crate::actions::RealActions;
use crate::engine::actions::{ActionError, Actions, Output};
use crate::engine::types::{
    ChoosePathRequest, DbIdentity, DbTarget, PathOutcome, PitrOutcome, PitrRequest,
};
use crate::inventory::ArchiveSpec;
use crate::pitr::{self, Damaged, PitrError, RecoveryRequest};
use crate::runbook::PathChoice;
use crate::samples::Sample;
use crate::transport::{Host, shell_quote};

/// How long replay to the target may take.
const REPLAY_WAIT: Duration = Duration::from_secs(6 * 3600);
/// Limit of hashing the recovered dump.
const HASH_TIMEOUT: Duration = Duration::from_secs(3600);

/// A refusal (gap, no usable base backup, nothing found) stays a refusal: nothing was started.
fn pitr_err(e: PitrError) -> ActionError {
    match e {
        PitrError::WalGap { .. }
        | PitrError::NoBaseBackup { .. }
        | PitrError::NotFound { .. }
        | PitrError::Unsafe { .. } => ActionError::Refused(e.to_string()),
        PitrError::Transport { host, source } => ActionError::Transport {
            what: format!("point-in-time recovery on host '{host}'"),
            source,
        },
        other => ActionError::Failed(other.to_string()),
    }
}

/// `transaction 812 committed at ... (commit record at 0/3001558): 200 rows deleted ...`.
pub(crate) fn evidence_text(f: &pitr::Finding) -> String {
    format!(
        "transaction {} committed at {} (first record at {}, commit record at {}): {}; record: {}",
        f.xid,
        f.commit_time.to_rfc3339(),
        f.first_lsn,
        f.commit_lsn,
        f.destruction.describe(),
        f.record.escape_debug()
    )
}

/// What names the damaged database in the WAL: its OID, and where it came
/// from. The live server's when the database exists; when it is gone (a
/// DROP DATABASE), the newest timeline sample of it on the same server.
async fn damaged_oid(
    a: &RealActions,
    database: &DbTarget,
    incident_dir: Option<&Path>,
) -> Result<(u32, String), ActionError> {
    let id = a.direct.identity(database).await?;
    if let Some(oid) = id.oid {
        return Ok((
            oid,
            format!("live database {} has OID {oid}", id.describe()),
        ));
    }
    let samples = incident_samples(incident_dir)?;
    oid_from_samples(&samples, &database.name, &id).map_err(ActionError::Refused)
}

/// The incident's timeline samples (none when there is no file).
fn incident_samples(incident_dir: Option<&Path>) -> Result<Vec<Sample>, ActionError> {
    match incident_dir.map(|d| d.join("samples.jsonl")) {
        Some(p) if p.exists() => crate::samples::read(&p).map_err(|e| {
            ActionError::Failed(format!(
                "the timeline samples cannot be read: {e}; nothing was started"
            ))
        }),
        _ => Ok(Vec::new()),
    }
}

/// `healthy_at = "evidence"`: the last timeline sample of this database
/// (same OID) in which every table the inventory gives a `min` held at
/// least that many rows, before the first sample in which one did not
/// (none unhealthy: the newest). None, with the reason, when the inventory
/// sets no `min` or no sample qualifies.
pub(crate) fn healthy_from_samples(
    samples: &[Sample],
    db: &DbTarget,
    oid: u32,
) -> Result<(DateTime<Utc>, String), String> {
    let mins: Vec<(crate::db::TableRef, i64)> = db
        .spec
        .expect
        .iter()
        .filter_map(|(t, e)| e.min.map(|m| (crate::db::TableRef::parse(t), m)))
        .collect();
    if mins.is_empty() {
        return Err(format!(
            "database '{}' has no `expect` with a `min` in the inventory: no timeline sample can be judged healthy",
            db.name
        ));
    }
    let mut mine: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.database == db.name && s.identity.oid == Some(oid))
        .collect();
    mine.sort_by_key(|s| s.ts);
    let healthy = |s: &Sample| -> Option<String> {
        let mut seen = Vec::new();
        for (t, min) in &mins {
            let rows = s
                .tables
                .iter()
                .find(|c| t.matches(&c.schema, &c.name))
                .map(|c| c.rows)?;
            if rows < *min {
                return None;
            }
            seen.push(format!("{} {rows} >= {min}", t.name));
        }
        Some(seen.join(", "))
    };
    let mut last: Option<(&Sample, String)> = None;
    for s in mine {
        match healthy(s) {
            Some(why) => last = Some((s, why)),
            None => break,
        }
    }
    last.map(|(s, why)| {
        (
            s.ts,
            format!(
                "the last timeline sample meeting the inventory's expect before any that did not, {} ({why})",
                s.ts.to_rfc3339()
            ),
        )
    })
    .ok_or_else(|| {
        format!(
            "no timeline sample of database '{}' (OID {oid}) met the inventory's expect before the damage",
            db.name
        )
    })
}

/// The lower bound of the window: given, or (`evidence`) from the samples.
fn healthy_bound(
    given: Option<DateTime<Utc>>,
    from_evidence: bool,
    db: &DbTarget,
    oid: u32,
    incident_dir: Option<&Path>,
    out: &Output,
) -> Result<Option<DateTime<Utc>>, ActionError> {
    if given.is_some() || !from_evidence {
        return Ok(given);
    }
    let samples = incident_samples(incident_dir)?;
    Ok(match healthy_from_samples(&samples, db, oid) {
        Ok((t, why)) => {
            out.line(format!("healthy bound from the evidence: {why}"));
            Some(t)
        }
        Err(why) => {
            out.line(format!(
                "no healthy bound from the evidence ({why}): the first destructive transaction after the base backup is the target"
            ));
            None
        }
    })
}

/// The OID of a database that is gone, from the newest sample of it (same
/// inventory name, same database name, same server by system identifier).
pub(crate) fn oid_from_samples(
    samples: &[Sample],
    name: &str,
    live: &DbIdentity,
) -> Result<(u32, String), String> {
    let mine = samples.iter().filter(|s| {
        s.database == name && s.identity.database == live.database && s.identity.oid.is_some()
    });
    let same_server = mine
        .clone()
        .filter(|s| s.identity.system_identifier == live.system_identifier)
        .max_by_key(|s| s.ts);
    match (same_server, mine.count()) {
        (Some(s), _) => {
            let oid = s.identity.oid.unwrap_or_default();
            Ok((
                oid,
                format!(
                    "database '{}' is gone from {}; its OID {oid} comes from the newest timeline sample of it ({}, server system identifier {})",
                    live.database,
                    live.server,
                    s.ts.to_rfc3339(),
                    s.identity.system_identifier
                ),
            ))
        }
        (None, 0) => Err(format!(
            "database '{}' does not exist on {} and no timeline sample of this incident saw it: its OID (what names it in the WAL) is unknown; nothing was started (sample it with the console or 'lifeline status' while it exists, or restore from a dump)",
            live.database, live.server
        )),
        (None, n) => Err(format!(
            "database '{}' does not exist on {}; the {n} timeline sample(s) of it come from another server (system identifier differs from {}): its OID there names nothing here; nothing was started",
            live.database, live.server, live.system_identifier
        )),
    }
}

/// The archive listed, the destructive transaction found in its WAL, the
/// base backup chosen: everything decided before anything starts.
async fn locate(
    h: &Host,
    archive: &ArchiveSpec,
    oid: u32,
    healthy_at: Option<DateTime<Utc>>,
    damaged_at: Option<DateTime<Utc>>,
    out: &Output,
    not_found: &mut bool,
) -> Result<(pitr::ArchiveStatus, pitr::archive::TargetSearch, pitr::Plan), ActionError> {
    let status = pitr::list(h, archive).await.map_err(pitr_err)?;
    for l in status.lines() {
        out.line(format!("archive '{}': {l}", archive.name()));
    }
    let damaged = Damaged {
        db_oid: oid,
        relations: Vec::new(),
        min_deletes: None,
        healthy_at,
    };
    let found = pitr::find_target_in(h, archive, &status, &damaged)
        .await
        .map_err(|e| {
            *not_found = matches!(e, PitrError::NotFound { .. });
            pitr_err(e)
        })?;
    let f = &found.finding;
    let evidence = evidence_text(f);
    out.line(format!(
        "found in the archived WAL ({} records read from {}): {evidence}",
        found.records, found.from
    ));
    if let Some(d) = damaged_at
        && f.commit_time > d
    {
        return Err(ActionError::Refused(format!(
            "the first destructive transaction found ({evidence}) committed after the first damage evidence at {}: the damage is not this transaction (another database, a relation the scan does not see, or rows deleted in small transactions); nothing was started: give the target by hand",
            d.to_rfc3339()
        )));
    }
    let plan = pitr::plan(&status, &found.target).map_err(pitr_err)?;
    for (dir, why) in &plan.refused {
        out.line(format!(
            "base backup '{}' refused: {why}",
            dir.escape_debug()
        ));
    }
    Ok((status, found, plan))
}

/// How long past the live server's `archive_timeout` a pitr step waits for
/// the archiver to receive the WAL segment the server was writing.
const ARCHIVE_CATCH_UP_SLACK: Duration = Duration::from_secs(20);

/// `locate`, and when it finds no destructive transaction while the live
/// server is still writing a segment the archive does not hold yet (the
/// damage may be in it: a segment is archived only once it is switched),
/// waits for the archive to receive it (the server's `archive_timeout` plus
/// a margin; not at all when it has none) and looks again. Reads only: it
/// never switches the live server's WAL itself; the reason says how to.
async fn locate_caught_up(
    a: &RealActions,
    database: &DbTarget,
    h: &Host,
    archive: &ArchiveSpec,
    oid: u32,
    (healthy_at, damaged_at): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    out: &Output,
) -> Result<(pitr::ArchiveStatus, pitr::archive::TargetSearch, pitr::Plan), ActionError> {
    let mut not_found = false;
    let first = locate(h, archive, oid, healthy_at, damaged_at, out, &mut not_found).await;
    let Err(e) = &first else {
        return first;
    };
    if !not_found {
        return first;
    }
    let (current, timeout_s) =
        match crate::actions::direct::current_wal_segment(database, &a.redactor).await {
            Ok(Some(c)) => c,
            _ => return first,
        };
    let held = |st: &pitr::ArchiveStatus| {
        st.segments
            .iter()
            .any(|n| n.get(..24).is_some_and(|x| x >= current.as_str()))
    };
    match pitr::list(h, archive).await {
        Ok(st) if !held(&st) => {}
        _ => return first,
    }
    let switch_it = format!(
        "the WAL segment the live server is writing ({current}) is not archived yet and the damage may be in it: run SELECT pg_switch_wal() on the server so it is archived, then run this step again"
    );
    if timeout_s == 0 {
        return Err(ActionError::Refused(format!(
            "{e}; {switch_it} (the server has no archive_timeout, so it is archived only when the segment fills)"
        )));
    }
    let wait = Duration::from_secs(timeout_s) + ARCHIVE_CATCH_UP_SLACK;
    out.line(format!(
        "the live server is writing WAL segment {current}, which archive '{}' does not hold yet: the damage may be in it; waiting up to {} s for the archiver (archive_timeout {timeout_s} s)",
        archive.name(),
        wait.as_secs()
    ));
    let deadline = std::time::Instant::now() + wait;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Ok(st) = pitr::list(h, archive).await
            && held(&st)
        {
            out.line(format!(
                "archive '{}' now holds {current}: looking again",
                archive.name()
            ));
            return locate(h, archive, oid, healthy_at, damaged_at, out, &mut not_found).await;
        }
        if std::time::Instant::now() >= deadline {
            return Err(ActionError::Refused(format!(
                "{e}; {switch_it} (not archived within {} s)",
                wait.as_secs()
            )));
        }
    }
}

/// Why a target lies after the destructive transaction's commit (None: it does not).
pub(crate) fn past_damage(t: &pitr::Target, f: &pitr::Finding) -> Option<String> {
    let stop = f.target();
    match (t, &stop) {
        (pitr::Target::Lsn { lsn }, pitr::Target::Lsn { lsn: s }) if lsn > s => Some(format!(
            "{lsn} is after {s}, the first record of the destruction"
        )),
        (pitr::Target::Lsn { lsn }, _) if *lsn > f.commit_lsn => Some(format!(
            "{lsn} is after the commit record at {}",
            f.commit_lsn
        )),
        (pitr::Target::Time { at }, _) if *at > f.commit_time => Some(format!(
            "{} is after the commit at {}",
            at.to_rfc3339(),
            f.commit_time.to_rfc3339()
        )),
        _ => None,
    }
}

/// choose-path: pitr when the archive can recover to just before the
/// destructive transaction (a base backup that ended before it, every WAL
/// segment from its start through it), the dump path otherwise, with the
/// reason. Forced by the operator: journaled as such; a forced pitr that
/// the archive cannot serve is refused. Reads only.
pub async fn choose_path(
    a: &RealActions,
    req: &ChoosePathRequest,
    out: &Output,
) -> Result<PathOutcome, ActionError> {
    if let Some(d) = req.decided() {
        out.line(format!("path '{}': {}", d.path, d.reason));
        return Ok(d);
    }
    let forced = req.forced.as_ref().map(|(_, by)| by.clone());
    let (spec, ht) = match &req.archive {
        Ok(x) => x,
        Err(why) => {
            return Err(ActionError::Refused(format!(
                "the pitr path is forced ({}) but {why}; nothing was started",
                forced.unwrap_or_default()
            )));
        }
    };
    let decided = async {
        let h = host(a, &ht.name)?;
        let (oid, whence) = damaged_oid(a, &req.database, req.incident_dir.as_deref()).await?;
        out.line(whence);
        let healthy = healthy_bound(
            req.incident_at,
            req.incident_from_evidence,
            &req.database,
            oid,
            req.incident_dir.as_deref(),
            out,
        )?;
        locate_caught_up(a, &req.database, h, spec, oid, (healthy, None), out).await
    }
    .await;
    match decided {
        Ok((_, found, plan)) => {
            let reason = format!(
                "archive '{}' covers the damage: base backup '{}' ended {} before the destructive transaction {} committed at {}, and every WAL segment from its start through it is archived",
                spec.name(),
                plan.backup.dir.escape_debug(),
                pitr::archive::ended(&plan.backup),
                found.finding.xid,
                found.finding.commit_time.to_rfc3339()
            );
            out.line(format!("path 'pitr': {reason}"));
            Ok(PathOutcome {
                path: PathChoice::Pitr,
                reason: match &forced {
                    Some(by) => format!("forced by {by}; {reason}"),
                    None => reason,
                },
                forced,
                archive: Some(spec.name().to_string()),
                target_text: plan.target.describe(),
                evidence_text: evidence_text(&found.finding),
                base_backup: plan.backup.dir.clone(),
            })
        }
        Err(e) if forced.is_some() => Err(ActionError::Refused(format!(
            "the pitr path is forced ({}) but archive '{}' cannot serve it: {e}",
            forced.unwrap_or_default(),
            spec.name()
        ))),
        Err(e) => {
            let reason = format!("archive '{}' does not cover the damage: {e}", spec.name());
            out.line(format!("path 'dump': {reason}"));
            Ok(PathOutcome::dump(
                reason,
                None,
                Some(spec.name().to_string()),
            ))
        }
    }
}

pub async fn recover_pitr(
    a: &RealActions,
    req: &PitrRequest,
    out: &Output,
) -> Result<PitrOutcome, ActionError> {
    let h = host(a, &req.host.name)?;
    // The damaged database is named in the WAL by its OID (read only).
    let (oid, whence) = damaged_oid(a, &req.database, req.incident_dir.as_deref()).await?;
    out.line(format!(
        "{whence}: looking for the first destructive transaction on it"
    ));
    let healthy = healthy_bound(
        req.healthy_at,
        req.healthy_from_evidence,
        &req.database,
        oid,
        req.incident_dir.as_deref(),
        out,
    )?;
    let (status, found, plan) = locate_caught_up(
        a,
        &req.database,
        h,
        &req.archive,
        oid,
        (healthy, req.damaged_at),
        out,
    )
    .await?;
    let f = &found.finding;
    let evidence = evidence_text(f);
    // The operator moved the target: checked against the evidence it departs from.
    let (plan, moved) = match &req.moved {
        None => (plan, None),
        Some(m) => {
            if let Some(why) = past_damage(&m.target, f)
                && !m.past_damage
            {
                return Err(ActionError::Refused(format!(
                    "the moved target '{}' ({}) is later than the destructive transaction's commit: {why}; the recovered copy would hold the damage ({evidence}); nothing was started (to recover to it anyway, type '{} after the damage')",
                    m.given,
                    m.target.describe(),
                    req.phrase().unwrap_or_default()
                )));
            }
            out.line(format!(
                "target moved by the operator to {} (given '{}'); the WAL's target was {}",
                m.target.describe(),
                m.given,
                found.target.describe()
            ));
            let moved = serde_json::json!({
                "given": m.given,
                "to": m.target.describe(),
                "from": found.target.describe(),
                "evidence": evidence,
                "past_damage": m.past_damage,
            });
            let plan = pitr::plan(&status, &m.target).map_err(pitr_err)?;
            for (dir, why) in &plan.refused {
                out.line(format!(
                    "base backup '{}' refused for the moved target: {why}",
                    dir.escape_debug()
                ));
            }
            (plan, Some(moved))
        }
    };
    out.line(format!(
        "target: {}; from base backup '{}' (ended {})",
        plan.target.describe(),
        plan.backup.dir.escape_debug(),
        pitr::archive::ended(&plan.backup)
    ));
    let r = pitr::recover(
        h,
        &req.archive,
        &status,
        &plan,
        &RecoveryRequest {
            database: req.database.dbname().to_string(),
            expect: BTreeMap::new(),
            name: req.name.clone(),
            wait: REPLAY_WAIT,
        },
    )
    .await
    .map_err(pitr_err)?;
    out.line(format!(
        "recovered in {:.1} s; the server says: {}",
        r.replay_s,
        r.stopped.escape_debug()
    ));
    // Size and SHA-256 of the dump on its host: the restore step is held to them.
    let q = shell_quote(&r.dump);
    let x = h
        .exec(
            &format!("stat -c %s -- {q} && sha256sum -- {q}"),
            h.options().timeout(HASH_TIMEOUT),
        )
        .await
        .map_err(|source| ActionError::Transport {
            what: format!("hashing {}", r.dump),
            source: Box::new(source),
        })?;
    let mut words = x.stdout.split_whitespace();
    let size = words.next().and_then(|s| s.parse::<u64>().ok());
    let sha = words
        .next()
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase);
    let (Some(size), Some(sha)) = (size, sha) else {
        return Err(ActionError::Failed(format!(
            "cannot hash the recovered dump {} on host '{}' ({}): {}; the recovery cluster is stopped and kept in {}",
            r.dump,
            r.host,
            x.outcome(),
            x.stderr.trim(),
            r.dir
        )));
    };
    Ok(PitrOutcome {
        archive: req.archive.name().to_string(),
        host: req.host.name.clone(),
        dump: r.dump.clone(),
        sha256: Some(sha),
        size,
        target: serde_json::to_value(&r.target).unwrap_or_default(),
        target_text: r.target.describe(),
        evidence: serde_json::to_value(f).unwrap_or_default(),
        evidence_text: evidence,
        base_backup: r.base_backup.clone(),
        refused: plan.refused.clone(),
        recovery_dir: r.dir.clone(),
        stopped: r.stopped.clone(),
        xid_status: r.xid_status.clone(),
        replay_s: r.replay_s,
        moved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn id(sysid: &str, oid: Option<u32>) -> DbIdentity {
        DbIdentity {
            server: "127.0.0.1:5432".into(),
            system_identifier: sysid.into(),
            database: "app".into(),
            oid,
            server_started_at: None,
        }
    }

    fn sample(min: u32, name: &str, identity: DbIdentity) -> Sample {
        Sample {
            ts: Utc.with_ymd_and_hms(2026, 12, 6, 6, min, 0).unwrap(),
            database: name.into(),
            identity,
            tables: Vec::new(),
        }
    }

    /// A dropped database's OID comes from the newest sample of it on the
    /// same server; samples of another server, another inventory entry or
    /// without an OID name nothing here: refused with the reason.
    #[test]
    fn a_gone_database_is_named_by_the_newest_sample_of_it_on_the_same_server() {
        let live = id("7301", None);
        let samples = vec![
            sample(1, "main", id("7301", Some(16384))),
            sample(2, "main", id("7301", Some(16999))),
            sample(3, "main", id("9999", Some(77777))),
            sample(4, "other", id("7301", Some(55555))),
            sample(5, "main", id("7301", None)),
        ];
        let (oid, why) = oid_from_samples(&samples, "main", &live).unwrap();
        assert_eq!(oid, 16999);
        assert!(
            why.contains("its OID 16999 comes from the newest timeline sample of it (2026-12-06T06:02:00+00:00"),
            "{why}"
        );
        let e = oid_from_samples(&samples[2..3], "main", &live).unwrap_err();
        assert!(
            e.contains("come from another server") && e.contains("nothing was started"),
            "{e}"
        );
        let e = oid_from_samples(&samples[3..], "main", &live).unwrap_err();
        assert!(
            e.contains("no timeline sample of this incident saw it"),
            "{e}"
        );
        assert!(oid_from_samples(&[], "main", &live).is_err());
    }

    fn finding(kind: pitr::Destruction, before: Option<&str>) -> pitr::Finding {
        pitr::Finding {
            xid: 812,
            first_lsn: pitr::Lsn::parse("0/3000100").unwrap(),
            commit_lsn: pitr::Lsn::parse("0/3001558").unwrap(),
            commit_time: Utc.with_ymd_and_hms(2026, 12, 6, 6, 30, 0).unwrap(),
            destruction: kind,
            record: "COMMIT".into(),
            before_lsn: before.and_then(pitr::Lsn::parse),
        }
    }

    /// A moved target is "after the damage" past the commit record (or, for
    /// a DROP DATABASE, past its first record) or the commit time.
    #[test]
    fn a_target_after_the_destructive_commit_is_told_apart() {
        let lsn = |s: &str| pitr::Target::Lsn {
            lsn: pitr::Lsn::parse(s).unwrap(),
        };
        let time = |m: u32, s: u32| pitr::Target::Time {
            at: Utc.with_ymd_and_hms(2026, 12, 6, 6, m, s).unwrap(),
        };
        let del = finding(pitr::Destruction::Truncate { relid: 16390 }, None);
        assert!(
            past_damage(&lsn("0/3001558"), &del).is_none(),
            "stops before the commit"
        );
        assert!(past_damage(&lsn("0/3000000"), &del).is_none());
        let why = past_damage(&lsn("0/3001559"), &del).unwrap();
        assert!(
            why.contains("after the commit record at 0/3001558"),
            "{why}"
        );
        assert!(past_damage(&time(29, 59), &del).is_none());
        assert!(past_damage(&time(30, 1), &del).is_some());
        let drop = finding(
            pitr::Destruction::DropDatabase { db_oid: 16384 },
            Some("0/3000200"),
        );
        let why = past_damage(&lsn("0/3000300"), &drop).unwrap();
        assert!(why.contains("the first record of the destruction"), "{why}");
        assert!(past_damage(&lsn("0/3000200"), &drop).is_none());
    }

    fn db_with_min(min: Option<i64>) -> DbTarget {
        let expect = match min {
            Some(m) => format!("expect = {{ User = {{ min = {m} }} }}\n"),
            None => String::new(),
        };
        let inv = crate::inventory::Inventory::parse(
            &format!("[[database]]\nname = \"main\"\nurl = \"postgres://postgres@127.0.0.1:5432/app\"\n{expect}"),
            "inv.toml",
        )
        .unwrap();
        let spec = inv.database("main").unwrap().clone();
        DbTarget {
            name: "main".into(),
            url: spec.pg_url().unwrap().clone(),
            spec,
        }
    }

    fn counted(min: u32, oid: u32, users: i64) -> Sample {
        let mut s = sample(min, "main", id("7301", Some(oid)));
        s.tables.push(crate::samples::TableCount {
            schema: "public".into(),
            name: "User".into(),
            oid: 16390,
            rows: users,
            exact: true,
        });
        s
    }

    /// `healthy_at = "evidence"`: the last sample meeting the inventory's
    /// `min` before the first that does not (a later recovery of the count
    /// is not healthy evidence: the damage lies before it); other OIDs are
    /// another database; no `min`, or no healthy sample first: no bound.
    #[test]
    fn the_healthy_bound_is_the_last_sample_meeting_expect_before_the_damage() {
        let db = db_with_min(Some(150));
        let samples = vec![
            counted(3, 16384, 180),
            counted(1, 16384, 200),
            counted(2, 99999, 0),
            counted(4, 16384, 0),
            counted(5, 16384, 200),
        ];
        let (t, why) = healthy_from_samples(&samples, &db, 16384).unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 12, 6, 6, 3, 0).unwrap());
        assert!(why.contains("User 180 >= 150"), "{why}");
        let (t, _) = healthy_from_samples(&samples[..3], &db, 16384).unwrap();
        assert_eq!(
            t.format("%M").to_string(),
            "03",
            "none unhealthy: the newest"
        );
        assert!(healthy_from_samples(&samples[3..4], &db, 16384).is_err());
        let e = healthy_from_samples(&samples, &db_with_min(None), 16384).unwrap_err();
        assert!(e.contains("no `expect` with a `min`"), "{e}");
        // A sample without the table says nothing healthy.
        let bare = vec![sample(1, "main", id("7301", Some(16384)))];
        assert!(healthy_from_samples(&bare, &db, 16384).is_err());
    }
}
