//! start-services: undoes what the stop-services steps of this run did
//! (unmask/enable/start, docker start, cron lines back, the inventory's
//! start command), except hazards, which stay off unless picked. Never
//! removes the kept originals.

use std::collections::{BTreeMap, BTreeSet};

use super::stop::{KeptCopy, cron_start_command, run_shown, stamp_of, start_commands};
use super::{RealActions, transport};
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;
use crate::inventory::ServiceKind;

pub async fn start_services(
    a: &RealActions,
    req: &StartRequest,
    out: &Output,
) -> Result<StartOutcome, ActionError> {
    let mut started = Vec::new();
    let mut kept_off = Vec::new();
    let picked = |s: &StoppedService| {
        req.picked.contains(&s.name)
            || (s.kind == ServiceKind::Cron
                && s.cron_at().is_some_and(|(f, _)| {
                    a.inventory().services.iter().any(|x| {
                        x.cron_file.as_deref() == Some(f.as_str())
                            && req.picked.iter().any(|p| p == x.name())
                    })
                }))
    };
    let mut seen = BTreeSet::new();
    // Cron lines per kept file: all started together restore the original.
    let mut cron_all: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in req.stopped.iter().filter(|s| s.kind == ServiceKind::Cron) {
        if let Some(k) = &s.original_kept {
            let e = cron_all.entry(k.clone()).or_default();
            e.0 += 1;
            if !s.hazard || picked(s) {
                e.1 += 1;
            }
        }
    }
    let mut cron_lines: BTreeMap<(String, String, String), Vec<usize>> = BTreeMap::new();
    for s in &req.stopped {
        if !seen.insert((s.host.clone(), s.name.clone())) {
            continue;
        }
        if s.hazard && !picked(s) {
            out.line(format!(
                "keeping '{}' on {} off: flagged as a hazard",
                s.name, s.host
            ));
            kept_off.push(KeptOff {
                name: s.name.clone(),
                reason: "flagged as a hazard by discovery; name it in the step's 'services' to start it anyway".into(),
            });
            continue;
        }
        let h = transport(a, &s.host)?;
        let cmds = match s.kind {
            ServiceKind::Process if s.commands.is_empty() => {
                kept_off.push(KeptOff {
                    name: s.name.clone(),
                    reason: "it was not running when the stop step ran: not started".into(),
                });
                continue;
            }
            ServiceKind::Process => {
                match a.inventory().service(&s.name).and_then(|x| x.start.clone()) {
                    Some(c) => vec![c],
                    None => {
                        kept_off.push(KeptOff {
                        name: s.name.clone(),
                        reason: "no 'start' command for this process in the inventory: start it by hand".into(),
                    });
                        continue;
                    }
                }
            }
            ServiceKind::Cron => {
                if let (Some((file, line)), Some(k)) = (s.cron_at(), &s.original_kept) {
                    cron_lines
                        .entry((s.host.clone(), file, k.clone()))
                        .or_default()
                        .push(line);
                    started.push(s.name.clone());
                }
                continue;
            }
            _ => start_commands(s),
        };
        let mut ok = true;
        for c in &cmds {
            let r = run_shown(a, h, c, out).await?;
            ok &= r.success();
        }
        if ok {
            started.push(s.name.clone());
        } else {
            kept_off.push(KeptOff {
                name: s.name.clone(),
                reason: "its start command failed (see the output)".into(),
            });
        }
    }
    for ((host, file, kept), lines) in cron_lines {
        let h = transport(a, &host)?;
        let all = cron_all.get(&kept).is_some_and(|(n, m)| n == m);
        // The kept copy as the stop journaled it (inode, SHA-256): without
        // both it is never copied back, the lines are uncommented in place.
        let copy = req
            .stopped
            .iter()
            .find(|s| s.original_kept.as_deref() == Some(kept.as_str()))
            .and_then(|s| {
                Some(KeptCopy {
                    path: kept.clone(),
                    inode: s.kept_inode?,
                    sha256: s.kept_sha256.clone()?,
                })
            });
        let c = cron_start_command(
            &file,
            &lines,
            stamp_of(&kept),
            copy.as_ref().filter(|_| all),
        );
        let r = run_shown(a, h, &c, out).await?;
        if !r.success() {
            for l in lines {
                let name = format!("{file}:{l}");
                started.retain(|x| x != &name);
                kept_off.push(KeptOff {
                    name,
                    reason: "restoring the cron line failed (see the output)".into(),
                });
            }
        }
    }
    Ok(StartOutcome { started, kept_off })
}
