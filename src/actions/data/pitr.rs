//! recover-pitr: the live database's OID, the archive listed, the destructive
//! transaction found in its WAL, the cluster recovered BESIDE the live one and the
//! recovered database dumped (hashed for the restore). Never writes to the live server or the archive.

use std::collections::BTreeMap;
use std::time::Duration;

use super::host;
use crate::actions::RealActions;
use crate::engine::actions::{ActionError, Actions, Output};
use crate::engine::types::{PitrOutcome, PitrRequest};
use crate::pitr::{self, Damaged, PitrError, RecoveryRequest};
use crate::transport::shell_quote;

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

pub async fn recover_pitr(
    a: &RealActions,
    req: &PitrRequest,
    out: &Output,
) -> Result<PitrOutcome, ActionError> {
    let h = host(a, &req.host.name)?;
    // The live database names the damage in the WAL by its OID (read only).
    let id = a.direct.identity(&req.database).await?;
    let Some(oid) = id.oid else {
        return Err(ActionError::Refused(format!(
            "database '{}' does not exist on {}: its OID at the healthy time is what names it in the WAL, and finding a DROP DATABASE without it is not built; nothing was started",
            req.database.dbname(),
            req.database.server()
        )));
    };
    out.line(format!(
        "live database {} has OID {oid}: looking for the first destructive transaction on it",
        id.describe()
    ));
    let status = pitr::list(h, &req.archive).await.map_err(pitr_err)?;
    for l in status.lines() {
        out.line(format!("archive '{}': {l}", req.archive.name()));
    }
    let damaged = Damaged {
        db_oid: oid,
        relations: Vec::new(),
        min_deletes: None,
        healthy_at: req.healthy_at,
    };
    let found = pitr::find_target_in(h, &req.archive, &status, &damaged)
        .await
        .map_err(pitr_err)?;
    let f = &found.finding;
    let evidence = evidence_text(f);
    out.line(format!(
        "found in the archived WAL ({} records read from {}): {evidence}",
        found.records, found.from
    ));
    if let Some(d) = req.damaged_at
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
    })
}
