//! `lifeline status`: every host probed at once (each under its own time
//! limit, so one hung host delays nobody), its services with their hazards,
//! every backup catalog, and every database's identity and health (each
//! under its own limit too). Read-only; everything printed is redacted.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use futures_util::future::join_all;
use serde::Serialize;

use crate::catalog::{self, CatalogReport};
use crate::db::identity::{ErrorInfo, Health};
use crate::db::{DatabaseStatus, ErrorClass};
use crate::inventory::Inventory;
use crate::probe::{self, Hazard, HazardKind, ProbeOptions, Runner, ScanCtx, Service};
use crate::redact::Redactor;
use crate::transport::{ExecOptions, Host, Hosts};

/// How `status` runs.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Limit for one host's whole probe (connect, discovery, reading scripts).
    pub host_timeout: Duration,
    pub probe: ProbeOptions,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            host_timeout: Duration::from_secs(20),
            probe: ProbeOptions::default(),
        }
    }
}

/// The whole report (JSON contract: see README, "Status").
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub generated_at: String,
    pub hosts: Vec<HostStatus>,
    pub backups: Vec<CatalogReport>,
    /// Identity, health and row counts of each inventory database, in
    /// inventory order (see `db::DatabaseStatus` for the keys).
    pub databases: Vec<DatabaseStatus>,
    /// WAL archives (`[[archive]]`): base backups, WAL range, gaps. Absent
    /// when the inventory names none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<ArchiveReport>,
}

/// One WAL archive as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveReport {
    pub name: String,
    pub host: String,
    pub kind: crate::inventory::ArchiveKind,
    /// Why it could not be read; null when it was.
    pub error: Option<String>,
    pub status: Option<crate::pitr::ArchiveStatus>,
}

/// One host.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    /// `local` or `user@host:port`.
    pub address: String,
    pub reachable: bool,
    /// Why the host (or its discovery) failed; null when all went well.
    pub error: Option<String>,
    /// Time to connect and run a no-op command.
    pub latency_ms: Option<u64>,
    /// `uname -n` as the host reports it.
    pub hostname: Option<String>,
    pub services: Vec<Service>,
    /// What discovery could not look at, and why.
    pub notes: Vec<String>,
}

impl HostStatus {
    fn unreachable(h: &Host, error: String) -> Self {
        HostStatus {
            name: h.name().to_string(),
            address: h.describe(),
            reachable: false,
            error: Some(error),
            latency_ms: None,
            hostname: None,
            services: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// A hazard once per place it is written, with the services that run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HazardRow {
    pub host: String,
    pub hazard: Hazard,
    pub services: Vec<String>,
}

impl StatusReport {
    /// Every hazard, deduplicated by (host, kind, location, evidence), worst first.
    pub fn hazards(&self) -> Vec<HazardRow> {
        let mut rows: Vec<HazardRow> = Vec::new();
        for h in &self.hosts {
            for s in &h.services {
                for hz in &s.hazards {
                    match rows.iter_mut().find(|r| {
                        r.host == h.name
                            && r.hazard.kind == hz.kind
                            && r.hazard.location == hz.location
                            && r.hazard.evidence == hz.evidence
                    }) {
                        Some(r) => {
                            if !r.services.contains(&s.name) {
                                r.services.push(s.name.clone());
                            }
                        }
                        None => rows.push(HazardRow {
                            host: h.name.clone(),
                            hazard: hz.clone(),
                            services: vec![s.name.clone()],
                        }),
                    }
                }
            }
        }
        rows.sort_by_key(|r| {
            (
                severity(r.hazard.kind),
                r.host.clone(),
                r.hazard.location.clone(),
            )
        });
        rows
    }
}

fn severity(k: HazardKind) -> u8 {
    match k {
        HazardKind::DumpCleanRestore => 0,
        HazardKind::AutoRestore => 1,
        HazardKind::RedundantStart => 2,
        HazardKind::RestoreIntoShared => 3,
        HazardKind::DropDatabase | HazardKind::Dropdb => 4,
        HazardKind::VolumeRemoval => 5,
        HazardKind::SchemaReset => 6,
        HazardKind::DropSchemaCascade => 7,
        HazardKind::Truncate => 8,
    }
}

/// One database under the status time limit: a server that does not
/// answer in time is reported as such, never waited for.
async fn probe_db(
    inv: &Inventory,
    spec: &crate::inventory::DatabaseSpec,
    limit: Duration,
    redactor: &Redactor,
) -> DatabaseStatus {
    match tokio::time::timeout(
        limit,
        crate::db::status::probe_database(inv, spec, redactor),
    )
    .await
    {
        Ok(s) => s,
        Err(_) => DatabaseStatus {
            name: spec.name().to_string(),
            target: spec
                .pg_url()
                .map(|u| u.display_target())
                .unwrap_or_default(),
            health: Health::Unreachable,
            identity: None,
            facts: None,
            tables: Vec::new(),
            sampled_at: None,
            sessions: Vec::new(),
            migrations: Vec::new(),
            count_failures: Vec::new(),
            lookalikes: Vec::new(),
            error: Some(ErrorInfo {
                class: ErrorClass::Unreachable,
                sqlstate: None,
                message: format!(
                    "database '{}' gave no complete answer within {} s; check the server, or raise --timeout",
                    spec.name(),
                    limit.as_secs()
                ),
            }),
        },
    }
}

/// Probes every host and database and reads every catalog, all at once.
/// `redactor` receives the passwords read on the way (~/.pgpass).
pub async fn collect(
    inv: &Inventory,
    hosts: &Hosts,
    opts: &StatusOptions,
    redactor: &Redactor,
) -> StatusReport {
    let host_jobs = hosts.iter().map(|h| probe_host(inv, h, opts));
    let db_jobs = inv
        .databases
        .iter()
        .map(|d| probe_db(inv, d, opts.host_timeout, redactor));
    let catalog_jobs = inv.backups.iter().map(|c| async move {
        match hosts.get(c.host.get_ref()) {
            Some(h) => {
                let r = tokio::time::timeout(
                    opts.host_timeout,
                    catalog::read_catalog(c, h as &dyn Runner, opts.host_timeout),
                )
                .await;
                r.unwrap_or_else(|_| CatalogReport {
                    name: c.name().to_string(),
                    host: c.host.get_ref().clone(),
                    path: c.path.clone(),
                    database: c.database.get_ref().clone(),
                    pattern: c.pattern.clone(),
                    files: Vec::new(),
                    error: Some(format!(
                        "no answer from host '{}' within {} s",
                        c.host.get_ref(),
                        opts.host_timeout.as_secs()
                    )),
                })
            }
            None => CatalogReport {
                name: c.name().to_string(),
                host: c.host.get_ref().clone(),
                path: c.path.clone(),
                database: c.database.get_ref().clone(),
                pattern: c.pattern.clone(),
                files: Vec::new(),
                error: Some(format!("no host '{}' in the inventory", c.host.get_ref())),
            },
        }
    });
    let archive_jobs = inv.archives.iter().map(|a| async move {
        let (status, error) = match hosts.get(a.host.get_ref()) {
            Some(h) => match tokio::time::timeout(opts.host_timeout, crate::pitr::list(h, a)).await
            {
                Ok(Ok(s)) => (Some(s), None),
                Ok(Err(e)) => (None, Some(e.to_string())),
                Err(_) => (
                    None,
                    Some(format!(
                        "no answer from host '{}' within {} s",
                        a.host.get_ref(),
                        opts.host_timeout.as_secs()
                    )),
                ),
            },
            None => (
                None,
                Some(format!("no host '{}' in the inventory", a.host.get_ref())),
            ),
        };
        ArchiveReport {
            name: a.name().to_string(),
            host: a.host.get_ref().clone(),
            kind: a.kind,
            error,
            status,
        }
    });
    let (hosts, backups, databases, archives) = tokio::join!(
        join_all(host_jobs),
        join_all(catalog_jobs),
        join_all(db_jobs),
        join_all(archive_jobs)
    );
    StatusReport {
        generated_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        hosts,
        backups,
        databases,
        archives,
    }
}

/// Probes one host under `opts.host_timeout` (the console probes each host on its own).
pub async fn probe_host(inv: &Inventory, h: &Host, opts: &StatusOptions) -> HostStatus {
    let spec = inv.host(h.name());
    let address = spec.and_then(|s| s.socket_address()).map(|(a, _)| a);
    let ctx = ScanCtx {
        inventory: Some(inv),
        host: h.name(),
        address: address.as_deref(),
    };
    let declared: Vec<&crate::inventory::ServiceSpec> = inv
        .services
        .iter()
        .filter(|s| s.host.get_ref() == h.name())
        .collect();
    let deadline = Instant::now() + opts.host_timeout;
    let t0 = Instant::now();
    let ping = tokio::time::timeout(
        opts.host_timeout,
        h.exec("true", ExecOptions::default().timeout(opts.host_timeout)),
    )
    .await;
    let latency = t0.elapsed();
    match ping {
        Err(_) => {
            return HostStatus::unreachable(
                h,
                format!(
                    "host '{}' did not answer within {} s",
                    h.name(),
                    opts.host_timeout.as_secs()
                ),
            );
        }
        Ok(Err(e)) => return HostStatus::unreachable(h, e.to_string()),
        Ok(Ok(r)) if !r.success() => {
            return HostStatus::unreachable(
                h,
                format!(
                    "host '{}': a no-op command failed: {}",
                    h.name(),
                    r.outcome()
                ),
            );
        }
        Ok(Ok(_)) => {}
    }
    let mut st = HostStatus {
        name: h.name().to_string(),
        address: h.describe(),
        reachable: true,
        error: None,
        latency_ms: Some(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
        hostname: None,
        services: Vec::new(),
        notes: Vec::new(),
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let mut popts = opts.probe.clone();
    popts.timeout = left.max(Duration::from_millis(100));
    match tokio::time::timeout(left, probe::discover(h, &ctx, &declared, &popts)).await {
        Ok(Ok(d)) => {
            st.hostname = d.hostname;
            st.services = d.services;
            st.notes = d.notes;
            st.notes.extend(
                d.unreadable
                    .iter()
                    .map(|u| format!("unreadable: '{}': {}", u.item, u.reason)),
            );
        }
        Ok(Err(e)) => st.error = Some(e.to_string()),
        Err(_) => {
            st.error = Some(format!(
                "host '{}': discovery did not finish within {} s",
                h.name(),
                opts.host_timeout.as_secs()
            ))
        }
    }
    st
}

/// The report as JSON, redacted.
pub fn render_json(r: &StatusReport, redactor: &Redactor) -> String {
    let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
    redactor.redact_json(&mut v);
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn human_size(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The report for people: hazards first, then hosts, then backups. Redacted.
/// A migration table in the status text: what it holds, the newest
/// migration and when, runs applied at once, what it cannot tell.
fn migration_lines(o: &mut String, mg: &crate::db::MigrationState) {
    use std::fmt::Write as _;
    let tool = mg.tool.map(|t| t.as_str()).unwrap_or("migrations");
    if let Some(e) = &mg.error {
        let _ = writeln!(
            o,
            "    migrations ({tool}): '{}' could not be read: {e}",
            mg.table
        );
    }
    if let Some(h) = &mg.history {
        let last = h
            .applied
            .last()
            .map(|a| {
                format!(
                    ", last '{}'{}",
                    a.name,
                    a.applied_at
                        .map(|t| format!(" at {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "    migrations ({tool}): '{}' {} applied{last}",
            mg.table, h.total
        );
        for r in &h.runs {
            let mark = if r.reapplied {
                "RE-APPLIED"
            } else {
                "APPLIED AT ONCE"
            };
            let _ = writeln!(o, "    ▲ {mark}: {}", r.why);
        }
        if let Some(n) = &h.note {
            let _ = writeln!(o, "      {n}");
        }
    }
    if let Some(f) = &mg.flagged {
        let _ = writeln!(o, "    ▲ {f}");
    }
}

pub fn render_text(r: &StatusReport, redactor: &Redactor) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let reachable = r.hosts.iter().filter(|h| h.reachable).count();
    let _ = writeln!(
        o,
        "lifeline status at {}: {} host(s) ({} reachable), {} database(s), {} backup catalog(s)",
        r.generated_at,
        r.hosts.len(),
        reachable,
        r.databases.len(),
        r.backups.len()
    );
    let hazards = r.hazards();
    let _ = writeln!(o);
    if hazards.is_empty() {
        let _ = writeln!(o, "HAZARDS: none found");
    } else {
        let _ = writeln!(o, "HAZARDS ({})", hazards.len());
        for h in &hazards {
            let _ = writeln!(
                o,
                "  [{}] {} {}",
                h.hazard.kind.as_str(),
                h.host,
                h.hazard.location
            );
            for (i, l) in h.hazard.evidence.lines().enumerate() {
                let _ = writeln!(o, "      {} {}", if i == 0 { ">" } else { " " }, l);
            }
            let _ = writeln!(o, "      {}", h.hazard.detail);
            let _ = writeln!(o, "      run by: {}", h.services.join(", "));
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "HOSTS");
    for h in &r.hosts {
        if !h.reachable {
            let _ = writeln!(
                o,
                "  {}  UNREACHABLE  {}",
                h.name,
                h.error.as_deref().unwrap_or("")
            );
            continue;
        }
        let _ = writeln!(
            o,
            "  {}  {}  reachable in {} ms{}",
            h.name,
            h.address,
            h.latency_ms.unwrap_or(0),
            h.hostname
                .as_ref()
                .map(|n| format!("  (hostname {n})"))
                .unwrap_or_default()
        );
        if let Some(e) = &h.error {
            let _ = writeln!(o, "    error: {e}");
        }
        if h.services.is_empty() {
            let _ = writeln!(o, "    no services that reach a database or run scripts");
        } else {
            let _ = writeln!(
                o,
                "    {:<9} {:<34} {:<28} {:<32} HAZARDS",
                "KIND", "NAME", "STATE", "DATABASES"
            );
            for s in &h.services {
                let kind = serde_json::to_value(s.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let mut dbs: Vec<String> = Vec::new();
                for d in &s.databases_reached {
                    let shown = d.inventory.clone().unwrap_or_else(|| {
                        let mut x = d.clone();
                        x.inventory = None;
                        x.display()
                    });
                    if !dbs.contains(&shown) {
                        dbs.push(shown);
                    }
                }
                let mut state = s.state.clone();
                if let Some(rp) = &s.restart_policy {
                    state.push_str(&format!(", Restart={}", rp.split(' ').next().unwrap_or(rp)));
                }
                let hz: Vec<&str> = s.hazards.iter().map(|h| h.kind.as_str()).collect();
                let _ = writeln!(
                    o,
                    "    {:<9} {:<34} {:<28} {:<32} {}",
                    kind,
                    cut(&s.name, 34),
                    cut(&state, 28),
                    cut(&dbs.join(", "), 32),
                    if hz.is_empty() {
                        "-".to_string()
                    } else {
                        hz.join(", ")
                    }
                );
                // Why it is attributed: one line per database, with its evidence.
                let mut shown: Vec<String> = Vec::new();
                for d in &s.databases_reached {
                    if let (Some(db), Some(ev)) = (&d.inventory, &d.evidence) {
                        let line = format!("{db} <- {ev}");
                        if !shown.contains(&line) {
                            let _ = writeln!(o, "      {line}");
                            shown.push(line);
                        }
                    }
                }
                if let Some(why) = &s.outside_drill {
                    let _ = writeln!(o, "      {why}");
                }
                if let Some(why) = &s.target_unclear {
                    let _ = writeln!(o, "      target unclear: {why}");
                }
            }
        }
        for n in &h.notes {
            let _ = writeln!(o, "    note: {n}");
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "DATABASES");
    if r.databases.is_empty() {
        let _ = writeln!(o, "  no [[database]] in the inventory");
    }
    for d in &r.databases {
        let mut line = format!(
            "  {}  {}  {}",
            d.name,
            d.target,
            d.health.to_string().to_uppercase()
        );
        if let Some(id) = &d.identity {
            let _ = write!(
                line,
                "  system {}, OID {}, up since {}",
                id.system_identifier,
                id.oid.map(|o| o.to_string()).unwrap_or_default(),
                id.server_started_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(o, "{line}");
        for l in &d.lookalikes {
            let _ = writeln!(
                o,
                "    ▲ LOOK-ALIKE on the same server: {}{}; act only on '{}'",
                l.describe(),
                l.sessions
                    .map(|n| format!(", {n} session(s)"))
                    .unwrap_or_default(),
                crate::lookalike::show(&l.looks_like)
            );
        }
        for mg in &d.migrations {
            migration_lines(&mut o, mg);
        }
        if let Some(e) = &d.error {
            let _ = writeln!(o, "    {}", e.text());
        }
        if !d.tables.is_empty() {
            let rows: Vec<String> = d
                .tables
                .iter()
                .map(|t| format!("{} {}{}", t.name, if t.exact { "" } else { "~" }, t.rows))
                .collect();
            let _ = writeln!(
                o,
                "    rows{}: {}",
                d.sampled_at
                    .map(|t| format!(" at {}", t.format("%H:%M:%S UTC")))
                    .unwrap_or_default(),
                cut(&rows.join(", "), 160)
            );
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "BACKUPS");
    if r.backups.is_empty() {
        let _ = writeln!(o, "  no [[backups]] in the inventory");
    }
    for c in &r.backups {
        let _ = writeln!(
            o,
            "  {}  {}:{}  (database '{}')",
            c.name, c.host, c.path, c.database
        );
        if let Some(e) = &c.error {
            let _ = writeln!(o, "    error: {e}");
            continue;
        }
        if c.files.is_empty() {
            let _ = writeln!(o, "    no files match");
            continue;
        }
        let _ = writeln!(
            o,
            "    {:<20} {:<6} {:<10} {:>9}  {:<6} FILE",
            "TAKEN (UTC)", "FROM", "FORMAT", "SIZE", "CHECK"
        );
        for f in &c.files {
            let fmt = serde_json::to_value(f.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let src = serde_json::to_value(f.time_source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "    {:<20} {:<6} {:<10} {:>9}  {:<6} {}",
                f.taken_at.replace('T', " ").trim_end_matches('Z'),
                src,
                fmt,
                human_size(f.size),
                if f.ok { "ok" } else { "BROKEN" },
                f.name
            );
            if let Some(p) = &f.problem {
                let _ = writeln!(o, "      {p}");
            }
        }
    }
    if !r.archives.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "WAL ARCHIVES (point-in-time recovery)");
    }
    for a in &r.archives {
        let _ = writeln!(o, "  {}  on {}", a.name, a.host);
        if let Some(e) = &a.error {
            let _ = writeln!(o, "    error: {e}");
        }
        if let Some(s) = &a.status {
            for l in s.lines() {
                let _ = writeln!(o, "    {l}");
            }
        }
    }
    // Host output, names and server messages: controls shown as escapes.
    crate::term::visible_text(&redactor.redact(&o)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ServiceKind;

    fn svc(name: &str, hz: Vec<Hazard>) -> Service {
        Service {
            name: name.into(),
            kind: ServiceKind::Cron,
            active: true,
            state: "scheduled".into(),
            enabled: None,
            restart_policy: None,
            command: Some("x".into()),
            schedule: None,
            source: "/etc/cron.d/x:1".into(),
            pid: None,
            started_at: None,
            user: None,
            image: None,
            mounts: vec![],
            scripts: vec![],
            databases_reached: vec![],
            hazards: hz,
            inventory: None,
            notes: vec![],
            target_unclear: None,
            outside_drill: None,
            facts: Default::default(),
        }
    }

    #[test]
    fn hazards_are_deduplicated_and_ordered_worst_first() {
        let h = |kind, loc: &str| Hazard {
            kind,
            evidence: "psql -h other postgres://app:s3cretpw@db/x < f.sql".into(),
            location: loc.into(),
            detail: "d".into(),
        };
        let r = StatusReport {
            generated_at: "t".into(),
            hosts: vec![HostStatus {
                name: "prod".into(),
                address: "local".into(),
                reachable: true,
                error: None,
                latency_ms: Some(1),
                hostname: None,
                services: vec![
                    svc(
                        "a",
                        vec![
                            h(HazardKind::Truncate, "/s:1"),
                            h(HazardKind::DumpCleanRestore, "/s:2"),
                        ],
                    ),
                    svc("b", vec![h(HazardKind::DumpCleanRestore, "/s:2")]),
                ],
                notes: vec![],
            }],
            backups: vec![],
            archives: vec![],
            databases: vec![],
        };
        let rows = r.hazards();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].hazard.kind, HazardKind::DumpCleanRestore);
        assert_eq!(rows[0].services, vec!["a", "b"]);
        let text = render_text(&r, &Redactor::new());
        assert!(text.find("HAZARDS (2)").unwrap() < text.find("HOSTS").unwrap());
        assert!(!text.contains("s3cretpw"), "{text}");
        let json = render_json(&r, &Redactor::new());
        assert!(!json.contains("s3cretpw"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["hosts"][0]["services"][0]["hazards"][0]["kind"],
            "truncate"
        );
        assert!(v["hosts"][0]["error"].is_null());
        assert!(v["databases"].as_array().unwrap().is_empty());
    }
}
