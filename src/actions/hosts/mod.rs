//! Host actions: probe (services, hazards, database identity), stop-services
//! with the hold, start-services, and shell commands, over `transport::Host`
//! (local or SSH). Never removes a file: cron lines are commented out with
//! the original kept beside it; containers are stopped, never removed.

pub mod frozen;
pub mod review;
mod start;
mod stop;
mod watch;

use std::time::Duration;

use serde_json::json;

use super::RealActions;
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;
use crate::inventory::ServiceSpec;
use crate::probe::{self, Discovery, ScanCtx};
use crate::transport::{ExecOptions, ExecResult, Host};

pub use crate::engine::types::STOP_GRACE_S;
pub use start::start_services;
pub use stop::{start_commands, stop_services};

/// The transport of an inventory host.
fn transport<'a>(a: &'a RealActions, name: &str) -> Result<&'a Host, ActionError> {
    a.hosts.require(name).map_err(|e| ActionError::Transport {
        what: format!("add host '{name}' to the inventory or fix the step"),
        source: Box::new(e),
    })
}

/// Discovery on one inventory host, with the inventory's services for it.
async fn discover_on(a: &RealActions, name: &str) -> Result<Discovery, ActionError> {
    let h = transport(a, name)?;
    let inv = a.inventory();
    let address = inv
        .host(name)
        .and_then(|s| s.socket_address())
        .map(|(a, _)| a);
    let ctx = ScanCtx {
        inventory: Some(inv),
        host: name,
        address: address.as_deref(),
    };
    let declared: Vec<&ServiceSpec> = inv
        .services
        .iter()
        .filter(|s| s.host.get_ref() == name)
        .collect();
    probe::discover(h, &ctx, &declared, &a.probe)
        .await
        .map_err(|e| ActionError::Failed(e.to_string()))
}

/// Runs one command on a host, streaming the command line, its output and
/// its result to `out`. The result is returned as it came (a non-zero exit
/// is not an error here; a transport failure is).
async fn run(
    h: &Host,
    cmd: &str,
    timeout: Duration,
    out: &Output,
) -> Result<ExecResult, ActionError> {
    out.line(format!("on {}: $ {cmd}", h.name()));
    let r = h
        .exec(cmd, ExecOptions::default().timeout(timeout))
        .await
        .map_err(|e| ActionError::Transport {
            what: format!("on host '{}'", h.name()),
            source: Box::new(e),
        })?;
    for l in r.stdout.lines().chain(r.stderr.lines()) {
        if !l.trim().is_empty() {
            out.line(format!("  {l}"));
        }
    }
    out.line(format!("  -> {}", r.outcome()));
    Ok(r)
}

fn kind_name(k: crate::inventory::ServiceKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Streams one discovered service (and its hazards) to the operator.
fn show_service(s: &probe::Service, out: &Output) {
    let dbs: Vec<String> = s
        .databases_reached
        .iter()
        .map(|d| d.inventory.clone().unwrap_or_else(|| d.display()))
        .collect();
    out.line(format!(
        "  {:<9} {}  [{}]{}",
        kind_name(s.kind),
        s.name,
        s.state,
        if dbs.is_empty() {
            String::new()
        } else {
            format!("  reaches {}", dbs.join(", "))
        }
    ));
    for h in &s.hazards {
        out.line(format!(
            "      HAZARD {} at {}: {}",
            h.kind.as_str(),
            h.location,
            h.evidence.lines().next().unwrap_or("")
        ));
    }
}

/// Distinct hazards of a discovery (the same line reached by two services counts once).
fn hazard_count(d: &Discovery) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for s in &d.services {
        for h in &s.hazards {
            seen.insert((h.kind, h.location.clone(), h.evidence.clone()));
        }
    }
    seen.len()
}

/// Probe: discovery on the host (services, databases they reach, hazards)
/// and the database's identity, health and row counts (src/db).
pub async fn probe(
    a: &RealActions,
    req: &ProbeRequest,
    out: &Output,
) -> Result<ProbeOutcome, ActionError> {
    let mut found = serde_json::Map::new();
    let mut summary = Vec::new();
    if let Some(h) = &req.host {
        out.line(format!("discovery on {}", h.display()));
        let d = discover_on(a, &h.name).await?;
        for s in &d.services {
            show_service(s, out);
        }
        for n in &d.notes {
            out.line(format!("  note: {n}"));
        }
        let hazards = hazard_count(&d);
        summary.push(format!(
            "{}: {} service(s), {} hazard(s)",
            h.name,
            d.services.len(),
            hazards
        ));
        found.insert("host".into(), json!(h.name));
        found.insert("hostname".into(), json!(d.hostname));
        found.insert(
            "services".into(),
            serde_json::to_value(&d.services).unwrap_or_default(),
        );
        found.insert("hazards".into(), json!(hazards));
        found.insert("notes".into(), json!(d.notes));
    }
    if let Some(db) = &req.database {
        out.line(format!(
            "database '{}' ({}): identity, health, row counts",
            db.name,
            db.display()
        ));
        let st = crate::db::status::probe_database(a.inventory(), &db.spec, &a.redactor).await;
        let mut line = format!("{} ({}): {}", db.name, st.target, st.health);
        if let Some(id) = &st.identity {
            line.push_str(&format!(
                ", system {}, OID {}",
                id.system_identifier,
                id.oid.map(|o| o.to_string()).unwrap_or_default()
            ));
        }
        if let Some(e) = &st.error {
            line.push_str(&format!(", {}", e.text()));
        }
        out.line(&line);
        for t in &st.tables {
            out.line(format!(
                "  {}.{}: {} row(s){}",
                t.schema,
                t.name,
                t.rows,
                if t.exact { "" } else { " (estimate)" }
            ));
        }
        summary.push(line);
        found.insert(
            "database".into(),
            serde_json::to_value(&st).unwrap_or_default(),
        );
    }
    if summary.is_empty() {
        return Err(ActionError::Failed(
            "the probe step names neither a host nor a database; give it 'host' or 'database'"
                .into(),
        ));
    }
    let mut found = serde_json::Value::Object(found);
    a.redactor.redact_json(&mut found);
    Ok(ProbeOutcome {
        summary: summary.join("; "),
        found,
    })
}

/// A shell command on a host: local hosts through `DirectActions`, others
/// over the host's transport, killed on the host at the timeout.
pub async fn command(
    a: &RealActions,
    req: &CommandRequest,
    out: &Output,
) -> Result<CommandOutcome, ActionError> {
    use crate::engine::actions::Actions;
    if req.host.is_local() {
        return a.direct.command(req, out).await;
    }
    let h = transport(a, &req.host.name)?;
    let fail = |e: crate::transport::TransportError| ActionError::Transport {
        what: format!("on host '{}'", req.host.name),
        source: Box::new(e),
    };
    let mut stream = h
        .exec_stream(
            &req.command,
            ExecOptions::default().timeout(Duration::from_secs(req.timeout_s)),
        )
        .await
        .map_err(fail)?;
    {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(&mut stream).lines();
        // A read error ends the stream early; `finish` reports why.
        while let Ok(Some(l)) = lines.next_line().await {
            out.line(l);
        }
    }
    let r = stream.finish().await.map_err(fail)?;
    for l in r.stderr.lines() {
        out.line(l);
    }
    if r.stdout_truncated || r.stderr_truncated {
        out.line(format!("({})", r.outcome()));
    }
    if r.timed_out {
        return Err(ActionError::Timeout(req.timeout_s));
    }
    let exit = match (r.exit, &r.signal) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + signal_number(sig),
        (None, None) => -1,
    };
    Ok(CommandOutcome {
        exit,
        output: out.kept(),
    })
}

fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ABRT" => 6,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        other => other.parse().unwrap_or(0),
    }
}
