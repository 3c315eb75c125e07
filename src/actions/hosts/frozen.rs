//! Frozen processes in the journal: the `frozen` record written (fsynced)
//! before a SIGSTOP, the `frozen-resolved` record once they are continued or
//! ended, and what `--resume` (CONT) and the console (CONT, or end) do with
//! one left open. Never signals a pid that no `frozen` record of this
//! incident names, and never ends one that is no longer frozen.

use std::time::Duration;

use serde_json::{Value, json};

use super::RealActions;
use super::transport;
use crate::journal::{Entry, JournalError, Record};
use crate::transport::{ExecOptions, shell_quote};

/// Journaled before the pids are frozen: `{ "host", "pids": ["-PGID" | "PID"] }`.
pub const FROZEN: &str = "frozen";
/// Journaled when those pids are continued or ended:
/// `{ "host", "pids", "how": "ended" | "continued" | "gone" | "running" }`.
pub const FROZEN_RESOLVED: &str = "frozen-resolved";

/// Pids a `frozen` record names on a host and no later record resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    pub host: String,
    pub pids: Vec<String>,
}

impl Frozen {
    /// `frozen: PIDS on HOST`, as the header and `status` show it.
    pub fn line(&self) -> String {
        let host: String = self
            .host
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        format!("frozen: {} on {host}", self.pids.join(" "))
    }
}

/// `incident ID: frozen: PIDS on HOST` for every incident of the state
/// directory whose journal holds frozen pids no record resolved.
pub fn frozen_in_state_dir(state: &crate::state::StateDir) -> Vec<String> {
    let mut lines = Vec::new();
    for id in state
        .list_incidents()
        .into_iter()
        .filter(|i| crate::state::valid_incident_id(i))
    {
        let Ok(recs) = crate::journal::read_records(&state.journal_path(&id)) else {
            continue;
        };
        for f in unresolved(&recs) {
            lines.push(format!("incident {id}: {}", f.line()));
        }
    }
    lines
}

/// A kill argument as the stop writes it: `PID` or `-PGID`, digits only, not 0.
fn valid_pid(p: &str) -> bool {
    let d = p.strip_prefix('-').unwrap_or(p);
    !d.is_empty() && d.len() <= 10 && d.bytes().all(|b| b.is_ascii_digit()) && d != "0"
}

fn parse(data: &Value) -> Option<Frozen> {
    let host = data.get("host")?.as_str()?.to_string();
    let pids: Vec<String> = data
        .get("pids")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .filter(|p| valid_pid(p))
        .map(str::to_string)
        .collect();
    (!pids.is_empty()).then_some(Frozen { host, pids })
}

/// The frozen pids no record resolved yet, in journal order.
pub fn unresolved(records: &[Record]) -> Vec<Frozen> {
    let mut open: Vec<Frozen> = Vec::new();
    for r in records {
        let Some(f) = parse(&r.data) else { continue };
        if r.kind == FROZEN {
            if !open.contains(&f) {
                open.push(f);
            }
        } else if r.kind == FROZEN_RESOLVED {
            for o in open.iter_mut().filter(|o| o.host == f.host) {
                o.pids.retain(|p| !f.pids.contains(p));
            }
            open.retain(|o| !o.pids.is_empty());
        }
    }
    open
}

/// The record written before the freeze.
pub fn frozen_entry(host: &str, pids: &[String]) -> Entry {
    Entry::new(FROZEN, format!("freezing on {host}: {}", pids.join(" ")))
        .target(host)
        .data(json!({ "host": host, "pids": pids }))
}

/// The record written when they are continued (`continued`, `gone`) or ended (`ended`).
pub fn resolved_entry(host: &str, pids: &[String], how: &str) -> Entry {
    Entry::new(
        FROZEN_RESOLVED,
        format!("no longer frozen on {host} ({how}): {}", pids.join(" ")),
    )
    .target(host)
    .data(json!({ "host": host, "pids": pids, "how": how }))
}

/// Before a resumed run does anything else: every pid an earlier run left
/// frozen is continued (or found gone) on its host and journaled as
/// resolved. Returns one line per host for the operator; what could not be
/// reached stays unresolved (and is said so). A journal error stops it.
pub async fn resume_frozen<R: crate::engine::driver::Recorder>(
    a: &RealActions,
    records: &[Record],
    journal: &mut R,
) -> Result<Vec<String>, JournalError> {
    resolve_frozen(a, records, journal, false).await
}

/// Shell that ends `$p` (`PID` or `-PGID`) only while it is still frozen:
/// every live process it names in state T and older than the freeze
/// (running for at least `age_s` seconds). One it names that runs, or that
/// started after the freeze (the pid reused), is left alone: `running $p`.
fn end_script(args: &[String], age_s: i64) -> String {
    let kill = super::stop::kill_command("\"$p\"");
    format!(
        "a={age_s}; for p in {}; do t=${{p#-}}; if [ \"$p\" != \"$t\" ]; then s=$(ps -eo pgid=,stat=,etimes= | awk -v g=\"$t\" -v a=\"$a\" '$1 == g {{ print ($3 + 0 < a) ? \"Y\" : substr($2, 1, 1) }}'); else s=$(ps -o stat=,etimes= -p \"$t\" | awk -v a=\"$a\" '{{ print ($2 + 0 < a) ? \"Y\" : substr($1, 1, 1) }}'); fi; if [ -z \"$s\" ]; then echo \"gone $p\"; elif printf '%s\\n' \"$s\" | grep -qv '^[TZ]'; then echo \"running $p\"; elif ( {kill} ) >/dev/null 2>&1; then echo \"ended $p\"; else echo \"failed $p\"; fi; done",
        args.join(" ")
    )
}

/// Seconds since the latest `frozen` record naming one of `f`'s pids on
/// its host (less a little slack for clocks): a process running for less
/// was started after the freeze and is not the one frozen.
fn frozen_age_s(records: &[Record], f: &Frozen, now: chrono::DateTime<chrono::Utc>) -> i64 {
    records
        .iter()
        .filter(|r| r.kind == FROZEN)
        .filter(|r| {
            parse(&r.data)
                .is_some_and(|x| x.host == f.host && x.pids.iter().any(|p| f.pids.contains(p)))
        })
        .map(|r| r.ts)
        .max()
        .map_or(0, |t| ((now - t).num_seconds() - 2).max(0))
}

/// Every pid an earlier run left frozen, continued (`end` false: CONT, as
/// `--resume` does) or ended (`end` true: TERM with CONT, KILL after the
/// grace, only while still frozen), each outcome journaled
/// `frozen-resolved` (`continued`, `ended`, `gone`, or `running`: found
/// running, not frozen, and left alone). Lines for the operator; what could
/// not be reached stays unresolved. A journal error stops it.
pub async fn resolve_frozen<R: crate::engine::driver::Recorder>(
    a: &RealActions,
    records: &[Record],
    journal: &mut R,
    end: bool,
) -> Result<Vec<String>, JournalError> {
    let mut lines = Vec::new();
    for f in unresolved(records) {
        let args: Vec<String> = f.pids.iter().map(|p| shell_quote(p)).collect();
        let cmd = if end {
            end_script(&args, frozen_age_s(records, &f, chrono::Utc::now()))
        } else {
            format!(
                "for p in {}; do if kill -s 0 -- \"$p\" 2>/dev/null; then kill -s CONT -- \"$p\" && echo \"continued $p\"; else echo \"gone $p\"; fi; done",
                args.join(" ")
            )
        };
        let limit = if end {
            Duration::from_secs(super::STOP_GRACE_S * f.pids.len() as u64 + 20)
        } else {
            Duration::from_secs(20)
        };
        let r = match transport(a, &f.host) {
            Ok(h) => h
                .exec(&cmd, ExecOptions::default().timeout(limit))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let out = match r {
            Ok(x) if x.success() => x.stdout,
            Ok(x) => {
                lines.push(format!(
                    "{}: STILL FROZEN, could not {} them: {}",
                    f.line(),
                    if end { "end" } else { "continue" },
                    x.stderr_last_line().unwrap_or("kill failed")
                ));
                continue;
            }
            Err(e) => {
                lines.push(format!(
                    "{}: STILL FROZEN, could not reach the host: {e}; run 'kill -s CONT -- {}' there",
                    f.line(),
                    f.pids.join(" ")
                ));
                continue;
            }
        };
        for how in ["continued", "ended", "gone", "running", "failed"] {
            let pids: Vec<String> = out
                .lines()
                .filter_map(|l| l.strip_prefix(how)?.strip_prefix(' '))
                .filter(|p| f.pids.iter().any(|x| x == p))
                .map(str::to_string)
                .collect();
            if pids.is_empty() {
                continue;
            }
            if how == "failed" {
                lines.push(format!(
                    "{}: STILL FROZEN on {}, could not end: {}",
                    f.line(),
                    f.host,
                    pids.join(" ")
                ));
                continue;
            }
            journal.append(resolved_entry(&f.host, &pids, how))?;
            lines.push(if how == "running" {
                format!(
                    "not frozen any more on {} (running: continued by someone, or the pid was reused), left alone: {}",
                    f.host,
                    pids.join(" ")
                )
            } else {
                format!(
                    "left frozen by the earlier run on {}, now {how}: {}",
                    f.host,
                    pids.join(" ")
                )
            });
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, data: Value) -> Record {
        Record {
            seq: 1,
            ts: chrono::Utc::now(),
            incident: "i".into(),
            operator: "o".into(),
            kind: kind.into(),
            step: None,
            target: None,
            command: None,
            exit: None,
            duration_ms: None,
            summary: String::new(),
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_frozen_record_stays_open_until_resolved_and_odd_pids_are_dropped() {
        let f = rec(
            FROZEN,
            json!({"host": "db1", "pids": ["-120", "130", "1;rm", "0"]}),
        );
        assert_eq!(
            unresolved(std::slice::from_ref(&f)),
            vec![Frozen {
                host: "db1".into(),
                pids: vec!["-120".into(), "130".into()]
            }]
        );
        let part = rec(
            FROZEN_RESOLVED,
            json!({"host": "db1", "pids": ["130"], "how": "gone"}),
        );
        let left = unresolved(&[f.clone(), part.clone()]);
        assert_eq!(left[0].line(), "frozen: -120 on db1");
        let other = rec(FROZEN_RESOLVED, json!({"host": "db2", "pids": ["-120"]}));
        assert_eq!(unresolved(&[f.clone(), other]).len(), 1);
        let all = rec(FROZEN_RESOLVED, json!({"host": "db1", "pids": ["-120"]}));
        assert!(unresolved(&[f, part, all]).is_empty());
    }
}
