//! Adapters from the world to the console: one sampler per database, one
//! prober per host (each with its own deadline, so a hung host shows "no
//! answer" in its own row only), and a journal tailer. They only read and
//! send `UiEvent`s; none of them ever waits on the screen.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::OpenIncident;
use crate::actions::hosts::frozen;
use crate::db::error::ErrorClass;
use crate::inventory::ServiceKind as ProbeKind;
use crate::inventory::{DatabaseSpec, Inventory};
use crate::journal::read_records;
use crate::probe::Service;
use crate::redact::Redactor;
use crate::status::{HostStatus, StatusOptions};
use crate::timeline::{Sampler, SamplerTask, TimelineEvent};
use crate::transport::Hosts;
use crate::tui::UiEvent;
use crate::tui::model::{
    DatabaseState, Hazard, Health, HostServices, HostState, ServiceKind, ServiceState,
};

/// Every adapter task of a console.
#[derive(Default)]
pub struct Tasks {
    samplers: Vec<SamplerTask>,
    handles: Vec<JoinHandle<()>>,
}

impl Tasks {
    /// Stops the samplers (after their round) and every other task.
    pub async fn stop(self) {
        for h in &self.handles {
            h.abort();
        }
        for s in self.samplers {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.stop()).await;
        }
    }
}

/// Starts every adapter of the console.
pub fn spawn_all(
    inv: &Inventory,
    inc: &OpenIncident,
    redactor: &Redactor,
    tx: &mpsc::Sender<UiEvent>,
    probe_interval: Duration,
    probe_timeout: Duration,
) -> Tasks {
    let mut tasks = Tasks::default();
    tasks.handles.push(tokio::spawn(tail_journal(
        inc.journal_path.clone(),
        tx.clone(),
    )));
    for spec in &inv.databases {
        spawn_database(spec, inc, redactor, tx, &mut tasks);
    }
    let hosts = Hosts::from_inventory(inv, None);
    for h in hosts.iter() {
        let host = h.clone();
        let inv = inv.clone();
        let tx = tx.clone();
        tasks.handles.push(tokio::spawn(async move {
            probe_loop(inv, host, tx, probe_interval, probe_timeout).await
        }));
    }
    tasks
}

/// Sends every journal record as it is appended (by the engine, the
/// samplers, notes): the journal file is the one source of truth.
async fn tail_journal(path: PathBuf, tx: mpsc::Sender<UiEvent>) {
    let mut last_seq = 0u64;
    let mut last_len = u64::MAX;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len == last_len {
            continue;
        }
        let records = match read_records(&path) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("journal tail: {e}");
                continue;
            }
        };
        last_len = len;
        let from = last_seq;
        // The header's frozen list follows the journal (a run freezing now, a resolution).
        let frozen = records
            .iter()
            .any(|r| {
                r.seq > from && (r.kind == frozen::FROZEN || r.kind == frozen::FROZEN_RESOLVED)
            })
            .then(|| {
                frozen::unresolved(&records)
                    .iter()
                    .map(|f| f.line())
                    .collect()
            });
        for r in records.into_iter().filter(|r| r.seq > from) {
            last_seq = r.seq;
            if tx.send(UiEvent::Journal(r)).await.is_err() {
                return;
            }
        }
        if let Some(lines) = frozen
            && tx.send(UiEvent::Frozen(lines)).await.is_err()
        {
            return;
        }
    }
}

fn spawn_database(
    spec: &DatabaseSpec,
    inc: &OpenIncident,
    redactor: &Redactor,
    tx: &mpsc::Sender<UiEvent>,
    tasks: &mut Tasks,
) {
    let name = spec.name().to_string();
    let mut state = DatabaseState {
        name: name.clone(),
        env: spec.env.clone(),
        ..Default::default()
    };
    let sampler = match Sampler::from_spec(spec, redactor) {
        Ok(s) => s,
        Err(e) => {
            state.error = Some(redactor.redact(&e.to_string()));
            let _ = tx.try_send(UiEvent::DatabaseUpdate(state));
            return;
        }
    };
    let interval = sampler.config().interval;
    // A count older than two sample intervals is drawn STALE.
    state.stale_after_s = stale_after(interval);
    let (stx, srx) = mpsc::channel(256);
    let task = sampler
        .with_journal(inc.journal.clone())
        .with_samples_file(inc.samples_path.clone())
        .spawn(stx);
    tasks.samplers.push(task);
    let _ = tx.try_send(UiEvent::DatabaseUpdate(state.clone()));
    let tx = tx.clone();
    let lister = crate::db::connect::DbHandle::from_spec(spec, redactor).ok();
    tasks.handles.push(tokio::spawn(async move {
        watch_database(state, interval, srx, tx, lister).await
    }));
}

/// Age after which a database's counts are stale: two sample intervals.
pub(crate) fn stale_after(interval: Duration) -> u64 {
    (interval.as_secs() * 2).max(1)
}

/// Health from a round: empty, rows dropped (an alert since the rows were
/// last at their height), or healthy.
fn health_of(total: i64, alerted: bool) -> Health {
    if total == 0 {
        Health::Empty
    } else if alerted {
        Health::RowsDropped
    } else {
        Health::Healthy
    }
}

/// Turns sampler events into database updates; a round that does not
/// come back in time shows as "no answer for N s" on this database only.
async fn watch_database(
    mut state: DatabaseState,
    interval: Duration,
    mut rx: mpsc::Receiver<TimelineEvent>,
    tx: mpsc::Sender<UiEvent>,
    lister: Option<crate::db::connect::DbHandle>,
) {
    let mut last_event: DateTime<Utc> = Utc::now();
    let mut alerted = false;
    let mut round_alert = false;
    let mut high = 0i64;
    let grace = chrono::Duration::from_std(interval + Duration::from_secs(2))
        .unwrap_or(chrono::Duration::seconds(12));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The server's database list is read by its own task, so a slow or
    // down server never delays this database's samples or its "no answer".
    let (ltx, mut lrx) = mpsc::channel(1);
    let (mtx, mut mrx) = mpsc::channel(1);
    let migrations_task = lister
        .clone()
        .map(|db| tokio::spawn(read_migrations(db, mtx)));
    let _stop_migrations = AbortOnDrop(migrations_task);
    let lister_task = lister.map(|db| tokio::spawn(list_lookalikes(db, ltx)));
    let _stop_lister = AbortOnDrop(lister_task);
    loop {
        tokio::select! {
            Some(found) = mrx.recv() => {
                if found != state.migrations {
                    state.migrations = found;
                    if tx.send(UiEvent::DatabaseUpdate(state.clone())).await.is_err() {
                        return;
                    }
                }
            }
            Some(found) = lrx.recv() => {
                if found != state.lookalikes {
                    state.lookalikes = found;
                    if tx.send(UiEvent::DatabaseUpdate(state.clone())).await.is_err() {
                        return;
                    }
                }
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { return };
                last_event = Utc::now();
                state.waiting_since = None;
                match ev {
                    TimelineEvent::Sampled(r) => {
                        let s = r.sample.clone();
                        let total: i64 = s.tables.iter().map(|t| t.rows.max(0)).sum();
                        // A round's alerts come just before its sample; rows
                        // back at their height (a restore) end "rows dropped".
                        if total >= high {
                            high = total;
                            alerted = round_alert;
                        } else {
                            alerted |= round_alert;
                        }
                        round_alert = false;
                        state.identity = Some(s.identity.clone());
                        state.total_rows = Some(total);
                        state.tables = Some(s.tables.len());
                        state.last_sample = Some(s.ts);
                        state.health = health_of(total, alerted);
                        state.health_detail = None;
                        state.error = None;
                        if tx.send(UiEvent::Sample(s)).await.is_err() {
                            return;
                        }
                    }
                    TimelineEvent::Alert(_) => round_alert = true,
                    TimelineEvent::IdentityChanged(i) => {
                        state.health_detail = Some(format!("identity changed: {}", i.change.describe()));
                    }
                    TimelineEvent::TableRecreated(_) => {}
                    TimelineEvent::Unavailable { error, .. } => {
                        state.health = match error.class {
                            ErrorClass::Missing => Health::Missing,
                            ErrorClass::Unreachable => Health::ServerDown,
                            _ => Health::Unknown,
                        };
                        state.error = Some(error.message.clone());
                    }
                }
                if tx.send(UiEvent::DatabaseUpdate(state.clone())).await.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {
                let now = Utc::now();
                if state.waiting_since.is_none() && now - last_event > grace {
                    state.waiting_since = Some(last_event + chrono::Duration::from_std(interval).unwrap_or_default());
                    if tx.send(UiEvent::DatabaseUpdate(state.clone())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// How often the console re-reads the server's database list for look-alikes.
const LOOKALIKE_EVERY: Duration = Duration::from_secs(30);

/// Aborts a spawned task when dropped (the database watcher ended).
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// How often the console re-reads the migration tables of a database.
const MIGRATIONS_EVERY: Duration = Duration::from_secs(10);

/// Every `MIGRATIONS_EVERY`: the database's migration tables with their
/// history, sent when read (a round without an answer sends nothing).
async fn read_migrations(
    db: crate::db::connect::DbHandle,
    tx: mpsc::Sender<Vec<crate::db::MigrationState>>,
) {
    let mut every = tokio::time::interval(MIGRATIONS_EVERY);
    loop {
        every.tick().await;
        let read =
            tokio::time::timeout(Duration::from_secs(5), crate::db::identity::migrations(&db))
                .await;
        if let Ok(Ok(found)) = read
            && tx.send(found).await.is_err()
        {
            return;
        }
    }
}

/// Every `LOOKALIKE_EVERY`: the server's look-alikes of the watched
/// database, sent when read (a round without an answer sends nothing and
/// the last list stays).
async fn list_lookalikes(
    db: crate::db::connect::DbHandle,
    tx: mpsc::Sender<Vec<crate::lookalike::LookAlike>>,
) {
    let mut every = tokio::time::interval(LOOKALIKE_EVERY);
    loop {
        every.tick().await;
        if let Some(found) = read_lookalikes(&db).await
            && tx.send(found).await.is_err()
        {
            return;
        }
    }
}

/// The server's look-alikes of the watched database, through `postgres`
/// when the watched one does not answer (it may be the one missing); None
/// when the server gave no answer within 5 s each.
async fn read_lookalikes(
    db: &crate::db::connect::DbHandle,
) -> Option<Vec<crate::lookalike::LookAlike>> {
    let watched = db.options().url.dbname.clone();
    let limit = Duration::from_secs(5);
    let direct = tokio::time::timeout(limit, crate::db::status::lookalikes(db, &watched)).await;
    if let Ok(Ok(found)) = direct {
        return Some(found);
    }
    let maint = db.with_dbname("postgres");
    tokio::time::timeout(limit, crate::db::status::lookalikes(&maint, &watched))
        .await
        .ok()?
        .ok()
}

/// Probes one host forever: marks it waiting, probes under its own limit,
/// reports the result and its services.
async fn probe_loop(
    inv: Inventory,
    host: crate::transport::Host,
    tx: mpsc::Sender<UiEvent>,
    every: Duration,
    limit: Duration,
) {
    let spec = inv.host(host.name()).cloned();
    let mut st = HostState {
        name: host.name().to_string(),
        address: Some(host.describe()),
        env: spec.as_ref().and_then(|s| s.env.clone()),
        ..Default::default()
    };
    let opts = StatusOptions {
        host_timeout: limit,
        ..Default::default()
    };
    loop {
        st.waiting_since = Some(Utc::now());
        if tx.send(UiEvent::HostUpdate(st.clone())).await.is_err() {
            return;
        }
        let report = crate::status::probe_host(&inv, &host, &opts).await;
        st.waiting_since = None;
        st.reachable = Some(report.reachable);
        st.latency_ms = report.latency_ms;
        st.error = report.error.clone();
        if report.reachable {
            st.last_answer = Some(Utc::now());
        }
        if tx.send(UiEvent::HostUpdate(st.clone())).await.is_err() {
            return;
        }
        if report.reachable {
            let services = services_of(&report);
            if tx.send(UiEvent::ServicesUpdate(services)).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(every).await;
    }
}

fn kind_of(k: ProbeKind) -> ServiceKind {
    match k {
        ProbeKind::Systemd => ServiceKind::Systemd,
        ProbeKind::Timer => ServiceKind::Timer,
        ProbeKind::Cron => ServiceKind::Cron,
        ProbeKind::Container => ServiceKind::Container,
        ProbeKind::Process => ServiceKind::Process,
    }
}

fn service_state(s: &Service) -> ServiceState {
    let mut dbs: BTreeMap<String, ()> = BTreeMap::new();
    for d in &s.databases_reached {
        if let Some(n) = &d.inventory {
            dbs.insert(n.clone(), ());
        }
    }
    ServiceState {
        name: s.inventory.clone().unwrap_or_else(|| s.name.clone()),
        kind: kind_of(s.kind),
        active: if s.kind == ProbeKind::Cron {
            None
        } else {
            Some(s.active)
        },
        state: s.state.clone(),
        databases: dbs.into_keys().collect(),
        hazards: s
            .hazards
            .iter()
            .map(|h| Hazard {
                kind: h.kind.as_str().to_string(),
                what: h.detail.clone(),
                evidence: format!("{}: {}", h.location, h.evidence),
            })
            .collect(),
        stopped_by_runbook: false,
        set_aside: s.outside_drill.clone().or_else(|| {
            s.target_unclear
                .as_ref()
                .map(|u| format!("target unclear: {u}"))
        }),
    }
}

/// A host's services as the Services view shows them.
pub fn services_of(report: &HostStatus) -> HostServices {
    HostServices {
        host: report.name.clone(),
        services: report.services.iter().map(service_state).collect(),
        updated_at: Utc::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_aside_services_carry_their_reason_to_the_console() {
        let svc = |name: &str, extra: serde_json::Value| {
            let mut v = serde_json::json!({
                "name": name, "kind": "process", "active": true, "state": "running",
                "enabled": null, "restart_policy": null, "command": null, "schedule": null,
                "source": "ps", "pid": 42, "started_at": null, "user": null, "image": null,
                "mounts": [], "scripts": [], "databases_reached": [], "hazards": [],
                "inventory": null, "notes": [], "target_unclear": null, "outside_drill": null,
            });
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            serde_json::from_value::<Service>(v).unwrap()
        };
        let report = HostStatus {
            name: "box".into(),
            services: vec![
                svc(
                    "a",
                    serde_json::json!({"outside_drill": "not part of this drill: pid 42 runs outside the lab directory '/l/'"}),
                ),
                svc(
                    "b",
                    serde_json::json!({"target_unclear": "2 processes match 'job'"}),
                ),
                svc("c", serde_json::json!({})),
            ],
            address: "local".into(),
            reachable: true,
            error: None,
            latency_ms: None,
            hostname: None,
            notes: Vec::new(),
        };
        let hs = services_of(&report);
        let aside: Vec<Option<&str>> = hs.services.iter().map(|s| s.set_aside.as_deref()).collect();
        assert_eq!(
            aside,
            vec![
                Some("not part of this drill: pid 42 runs outside the lab directory '/l/'"),
                Some("target unclear: 2 processes match 'job'"),
                None
            ]
        );
    }

    #[test]
    fn counts_go_stale_after_two_sample_intervals() {
        assert_eq!(stale_after(Duration::from_secs(10)), 20);
        assert_eq!(stale_after(Duration::from_secs(2)), 4);
        assert_eq!(stale_after(Duration::from_millis(300)), 1);
    }
}
