//! The row-count timeline of one database: a `Sampler` that estimates every
//! table (one catalog query), counts the watched ones exactly (each under a
//! statement timeout, on their own connections), journals alerts, identity
//! changes and re-created tables BEFORE reporting them, appends each round
//! to samples.jsonl and keeps a downsampled in-memory history. Reads only.

pub mod detect;
pub mod series;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::db::activity::{HostMap, Session, TableWrites, sessions, write_deltas};
use crate::db::connect::{ConnectOptions, DbHandle};
use crate::db::error::DbError;
use crate::db::identity::{ErrorInfo, IdentityChange, identity};
use crate::db::tables::{TableRef, TableStat, estimates, exact_count};
use crate::inventory::DatabaseSpec;
use crate::journal::{Entry, Journal, kinds};
use crate::redact::Redactor;
use crate::samples::{self, Sample, TableCount};

pub use detect::{Alert, Detected, Detector, IdentityEvent, RecreatedEvent, Rule};
pub use series::{Point, Retention, Series, SeriesKey};

/// The journal shared by the engine and the samplers.
pub type SharedJournal = Arc<Mutex<Journal>>;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_COUNT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_DROP_SHARE: f64 = 0.5;

/// What to sample and when to alert.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Inventory name of the database.
    pub database: String,
    pub interval: Duration,
    /// Tables counted exactly (watch plus every table named in `expect`).
    pub watch: Vec<TableRef>,
    pub expect: Vec<(TableRef, crate::inventory::Expect)>,
    pub drop_alert_share: f64,
    /// Statement timeout of each exact count.
    pub count_timeout: Duration,
    /// Connections used for exact counts (a slow count holds only its own).
    pub count_connections: usize,
    /// Read pg_stat_activity every round.
    pub sessions: bool,
    pub retention: Retention,
}

impl SamplerConfig {
    pub fn from_spec(spec: &DatabaseSpec) -> Self {
        let expect: Vec<(TableRef, crate::inventory::Expect)> = spec
            .expect
            .iter()
            .map(|(t, e)| (TableRef::parse(t), e.clone()))
            .collect();
        let mut watch: Vec<TableRef> = spec.watch.iter().map(|t| TableRef::parse(t)).collect();
        for (t, _) in &expect {
            if !watch.contains(t) {
                watch.push(t.clone());
            }
        }
        SamplerConfig {
            database: spec.name().to_string(),
            interval: spec
                .sample_interval_s
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_INTERVAL),
            watch,
            expect,
            drop_alert_share: spec.drop_alert_share.unwrap_or(DEFAULT_DROP_SHARE),
            count_timeout: spec
                .statement_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_COUNT_TIMEOUT),
            count_connections: 2,
            sessions: true,
            retention: Retention::default(),
        }
    }

    /// The rule of a watched table.
    fn rule_for(&self, schema: &str, name: &str) -> Rule {
        let e = self
            .expect
            .iter()
            .filter(|(t, _)| t.matches(schema, name))
            .map(|(_, e)| e)
            .next();
        match e.and_then(|e| e.max_drop) {
            Some(share) => Rule {
                min: e.and_then(|e| e.min),
                max_share: share,
                share_rule: "max_drop",
            },
            None => Rule {
                min: e.and_then(|e| e.min),
                max_share: self.drop_alert_share,
                share_rule: "drop_alert_share",
            },
        }
    }
}

/// An exact count that did not finish; the table's estimate stands in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountFailure {
    pub schema: String,
    pub name: String,
    pub error: String,
}

/// One sampling round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    pub sample: Sample,
    /// Time of the estimates statement.
    pub estimates_ms: u64,
    /// Time until every exact count finished (or timed out).
    pub counts_ms: u64,
    pub duration_ms: u64,
    /// Rows written per table since the previous round (empty on the first).
    pub writes: Vec<TableWrites>,
    pub sessions: Vec<Session>,
    pub count_failures: Vec<CountFailure>,
    /// Alerts, identity changes and re-created tables found in this round
    /// (already journaled when a journal is attached).
    pub detected: Vec<Detected>,
}

/// What a running sampler reports to its subscribers (console, engine).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum TimelineEvent {
    Sampled(Box<RoundReport>),
    Alert(Alert),
    IdentityChanged(IdentityEvent),
    TableRecreated(RecreatedEvent),
    /// A round failed: the database did not answer (classified).
    Unavailable {
        database: String,
        at: DateTime<Utc>,
        error: ErrorInfo,
    },
}

impl From<Detected> for TimelineEvent {
    fn from(d: Detected) -> Self {
        match d {
            Detected::Alert(a) => TimelineEvent::Alert(a),
            Detected::IdentityChanged(i) => TimelineEvent::IdentityChanged(i),
            Detected::TableRecreated(r) => TimelineEvent::TableRecreated(r),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot journal {what}: {source}; sampling stops (nothing may happen unjournaled)")]
    Journal {
        what: String,
        #[source]
        source: crate::journal::JournalError,
    },
    #[error("journal lock poisoned by a panic elsewhere")]
    Poisoned,
    #[error(transparent)]
    Samples(#[from] samples::SamplesError),
}

impl SampleError {
    /// The classified database error behind a failed round, if any.
    pub fn db_error(&self) -> Option<&DbError> {
        match self {
            SampleError::Db(e) => Some(e),
            _ => None,
        }
    }
}

/// Samples one database; call `sample_once` or `spawn` it as a task.
pub struct Sampler {
    cfg: SamplerConfig,
    db: DbHandle,
    counters: Vec<DbHandle>,
    redactor: Redactor,
    journal: Option<SharedJournal>,
    samples_path: Option<PathBuf>,
    hosts: Option<HostMap>,
    detector: Detector,
    series: Series,
    prev_stats: Vec<TableStat>,
    watched_seen: BTreeMap<(String, String), Rule>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sampler({})", self.cfg.database)
    }
}

impl Sampler {
    pub fn from_spec(spec: &DatabaseSpec, redactor: &Redactor) -> Result<Self, DbError> {
        let opts = ConnectOptions::from_spec(spec, redactor)?;
        Ok(Self::new(opts, SamplerConfig::from_spec(spec)))
    }

    pub fn new(opts: ConnectOptions, cfg: SamplerConfig) -> Self {
        let mut main = opts.clone();
        main.application_name = "lifeline sampler".into();
        if main.statement_timeout.is_none() {
            main.statement_timeout = Some(cfg.count_timeout.max(Duration::from_secs(5)));
        }
        Self::with_db(DbHandle::new(main), cfg)
    }

    /// Samples through an existing handle (its statement timeout applies to
    /// the estimates); exact counts get their own connections.
    pub fn with_db(db: DbHandle, cfg: SamplerConfig) -> Self {
        let opts = db.options().clone();
        let mut count = opts.clone();
        count.application_name = "lifeline counter".into();
        count.statement_timeout = Some(cfg.count_timeout);
        let counters = (0..cfg.count_connections.max(1))
            .map(|_| DbHandle::new(count.clone()))
            .collect();
        Sampler {
            redactor: opts.redactor.clone(),
            db,
            counters,
            journal: None,
            samples_path: None,
            hosts: None,
            detector: Detector::new(&cfg.database),
            series: Series::new(cfg.retention.clone()),
            prev_stats: Vec::new(),
            watched_seen: BTreeMap::new(),
            cfg,
        }
    }

    /// Journal alerts, identity changes and re-created tables here.
    pub fn with_journal(mut self, j: SharedJournal) -> Self {
        self.journal = Some(j);
        self
    }

    /// Append every round to this samples.jsonl.
    pub fn with_samples_file(mut self, path: PathBuf) -> Self {
        self.samples_path = Some(path);
        self
    }

    /// Map session client addresses to inventory hosts.
    pub fn with_host_map(mut self, hosts: HostMap) -> Self {
        self.hosts = Some(hosts);
        self
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }
    pub fn series(&self) -> &Series {
        &self.series
    }
    pub fn handle(&self) -> &DbHandle {
        &self.db
    }

    /// Server pids of this sampler's own connections (left out of sessions).
    pub async fn own_pids(&self) -> Vec<i32> {
        let mut v = Vec::new();
        if let Some(p) = self.db.backend_pid().await {
            v.push(p);
        }
        for c in &self.counters {
            if let Some(p) = c.backend_pid().await {
                v.push(p);
            }
        }
        v
    }

    /// One round: identity, estimates, exact counts, sessions; detection,
    /// journal, samples file, in-memory series. A round the database does
    /// not answer (missing, server down) is journaled as an alert once per
    /// outage before the error is returned.
    pub async fn sample_once(&mut self) -> Result<RoundReport, SampleError> {
        match self.sample_round().await {
            Err(SampleError::Db(e)) => {
                self.note_failure(&e)?;
                Err(SampleError::Db(e))
            }
            r => r,
        }
    }

    /// Records a failed round with the detector; journals (and returns) the
    /// alert it raises, if any.
    fn note_failure(&mut self, e: &DbError) -> Result<Option<Alert>, SampleError> {
        let mut info = ErrorInfo::from_error(e);
        info.message = self.redactor.redact(&info.message);
        let Some(a) = self.detector.observe_failure(Utc::now(), &info) else {
            return Ok(None);
        };
        let d = Detected::Alert(a);
        self.journal_detected(&d)?;
        match d {
            Detected::Alert(a) => Ok(Some(a)),
            _ => Ok(None),
        }
    }

    async fn sample_round(&mut self) -> Result<RoundReport, SampleError> {
        let start = Instant::now();
        let id = identity(&self.db).await?;
        let at = Utc::now();

        let est_start = Instant::now();
        let stats = estimates(&self.db).await?;
        let estimates_ms = est_start.elapsed().as_millis() as u64;

        // Resolve the watched tables against what exists now.
        let mut rules: BTreeMap<(String, String), Rule> = BTreeMap::new();
        let mut to_count: Vec<(String, String)> = Vec::new();
        for w in &self.cfg.watch {
            for t in w.resolve(&stats) {
                let key = (t.schema.clone(), t.name.clone());
                if !rules.contains_key(&key) {
                    rules.insert(key.clone(), self.cfg.rule_for(&t.schema, &t.name));
                    to_count.push(key);
                }
            }
        }
        // A watched table seen before keeps its rule, so its disappearance is reported.
        for (k, r) in &self.watched_seen {
            rules.entry(k.clone()).or_insert_with(|| r.clone());
        }
        for (k, r) in &rules {
            self.watched_seen
                .entry(k.clone())
                .or_insert_with(|| r.clone());
        }

        let counts_start = Instant::now();
        if self.cfg.sessions && !to_count.is_empty() {
            // Open the count connections first, so that they are known as ours.
            for c in &self.counters {
                // A failure here shows as failed counts below.
                let _ = c.connection().await;
            }
        }
        let own = self.own_pids().await;
        let want_sessions = self.cfg.sessions;
        let (exact, sess) = tokio::join!(
            count_all(&self.counters, &to_count, self.cfg.count_timeout),
            async {
                if want_sessions {
                    sessions(&self.db, &own, &self.redactor, self.hosts.as_ref()).await
                } else {
                    Ok(Vec::new())
                }
            }
        );
        let counts_ms = counts_start.elapsed().as_millis() as u64;
        let sessions = sess.unwrap_or_else(|e| {
            tracing::warn!("sessions of '{}': {e}", self.cfg.database);
            Vec::new()
        });

        let mut exact_by: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut count_failures = Vec::new();
        for (key, res) in to_count.iter().zip(exact) {
            match res {
                Ok(n) => {
                    exact_by.insert(key.clone(), n);
                }
                Err(e) => count_failures.push(CountFailure {
                    schema: key.0.clone(),
                    name: key.1.clone(),
                    error: self.redactor.redact(&e.to_string()),
                }),
            }
        }
        let tables: Vec<TableCount> = stats
            .iter()
            .map(|t| {
                let exact = exact_by.get(&(t.schema.clone(), t.name.clone())).copied();
                TableCount {
                    schema: t.schema.clone(),
                    name: t.name.clone(),
                    oid: t.oid,
                    rows: exact.unwrap_or(t.estimate),
                    exact: exact.is_some(),
                }
            })
            .collect();

        let change = self.detector.identity_change(&id);
        let writes = if matches!(
            change,
            Some(IdentityChange::DifferentCluster | IdentityChange::DatabaseRecreated)
        ) {
            Vec::new()
        } else {
            write_deltas(&self.prev_stats, &stats)
        };
        let detected = self.detector.observe(at, &id, &tables, &rules);
        for d in &detected {
            self.journal_detected(d)?;
        }
        let sample = Sample {
            ts: at,
            database: self.cfg.database.clone(),
            identity: id.clone(),
            tables,
        };
        if let Some(p) = &self.samples_path {
            samples::append(p, &sample)?;
        }
        self.series.push(at, &sample.tables);
        self.prev_stats = stats;
        Ok(RoundReport {
            sample,
            estimates_ms,
            counts_ms,
            duration_ms: start.elapsed().as_millis() as u64,
            writes,
            sessions,
            count_failures,
            detected,
        })
    }

    fn journal_detected(&self, d: &Detected) -> Result<(), SampleError> {
        let Some(j) = &self.journal else {
            return Ok(());
        };
        let entry = match d {
            Detected::Alert(a) => Entry::new(kinds::ALERT, a.summary())
                .target(if a.database_level() {
                    a.database.clone()
                } else {
                    format!("{}: {}", a.database, a.qualified())
                })
                .data(json!({
                    "database": a.database,
                    "table": a.qualified(),
                    "before": a.before,
                    "after": a.after,
                    "rule": a.rule,
                    "rules": a.rules,
                    "exact": a.after_exact,
                    "at": a.at,
                    "before_at": a.before_at,
                    "detail": a.detail,
                })),
            Detected::IdentityChanged(e) => Entry::new(
                kinds::IDENTITY_CHANGED,
                format!(
                    "'{}' at {}: {}",
                    e.database,
                    e.after.address(),
                    e.change.describe()
                ),
            )
            .target(e.database.clone())
            .data(json!({
                "database": e.database,
                "change": e.change,
                "before": e.before,
                "after": e.after,
            })),
            Detected::TableRecreated(r) => Entry::new(
                kinds::TABLE_RECREATED,
                format!(
                    "'{}': {}.{} was dropped and re-created (OID {} -> {}); its statistics restart",
                    r.database, r.schema, r.table, r.old_oid, r.new_oid
                ),
            )
            .target(format!("{}: {}.{}", r.database, r.schema, r.table))
            .data(json!({
                "database": r.database,
                "table": format!("{}.{}", r.schema, r.table),
                "old_oid": r.old_oid,
                "new_oid": r.new_oid,
                "rows": r.rows,
                "exact": r.exact,
            })),
        };
        let what = entry.kind.clone();
        let mut guard = j.lock().map_err(|_| SampleError::Poisoned)?;
        guard
            .append(entry)
            .map(|_| ())
            .map_err(|source| SampleError::Journal { what, source })
    }

    /// The longest a round may take before the database counts as not answering.
    pub fn round_limit(&self) -> Duration {
        let o = self.db.options();
        let st = o.statement_timeout.unwrap_or(self.cfg.count_timeout);
        o.connect_timeout * 2 + st.max(self.cfg.count_timeout) * 3 + Duration::from_secs(5)
    }

    async fn disconnect_all(&self) {
        self.db.disconnect().await;
        for c in &self.counters {
            c.disconnect().await;
        }
    }

    /// Runs as a task: a round every `interval` (a slow round delays the
    /// next, never overlaps it), events to `tx`. Stops when told, or when
    /// the receiver is gone, or when journaling fails; hands the sampler back.
    pub fn spawn(self, tx: mpsc::Sender<TimelineEvent>) -> SamplerTask {
        let (stop_tx, stop_rx) = watch::channel(false);
        let join = tokio::spawn(self.run(tx, stop_rx));
        SamplerTask {
            stop: stop_tx,
            join,
        }
    }

    async fn run(
        mut self,
        tx: mpsc::Sender<TimelineEvent>,
        mut stop: watch::Receiver<bool>,
    ) -> Self {
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {}
            }
            if *stop.borrow() {
                break;
            }
            let limit = self.round_limit();
            let res = match tokio::time::timeout(limit, self.sample_round()).await {
                Ok(r) => r,
                Err(_) => {
                    self.disconnect_all().await;
                    Err(SampleError::Db(DbError::Unreachable {
                        target: self.db.target(),
                        reason: format!("no answer within {} s", limit.as_secs()),
                    }))
                }
            };
            // A failed round: its alert (once per outage) is journaled first.
            let mut outage_alert = None;
            if let Err(SampleError::Db(e)) = &res {
                match self.note_failure(e) {
                    Ok(a) => outage_alert = a,
                    Err(err) => {
                        tracing::error!("sampler '{}' stops: {err}", self.cfg.database);
                        break;
                    }
                }
            }
            if let Some(a) = outage_alert
                && tx.send(TimelineEvent::Alert(a)).await.is_err()
            {
                return self;
            }
            let events: Vec<TimelineEvent> = match res {
                Ok(mut r) => {
                    let mut ev: Vec<TimelineEvent> = r
                        .detected
                        .iter()
                        .cloned()
                        .map(TimelineEvent::from)
                        .collect();
                    r.detected.clear();
                    ev.push(TimelineEvent::Sampled(Box::new(r)));
                    ev
                }
                Err(SampleError::Db(e)) => vec![TimelineEvent::Unavailable {
                    database: self.cfg.database.clone(),
                    at: Utc::now(),
                    error: ErrorInfo::from_error(&e),
                }],
                Err(e) => {
                    tracing::error!("sampler '{}' stops: {e}", self.cfg.database);
                    break;
                }
            };
            for e in events {
                if tx.send(e).await.is_err() {
                    return self;
                }
            }
        }
        self
    }
}

/// A running sampler task.
#[derive(Debug)]
pub struct SamplerTask {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<Sampler>,
}

impl SamplerTask {
    /// Stops after the current round and returns the sampler (with its series).
    pub async fn stop(self) -> Option<Sampler> {
        let _ = self.stop.send(true);
        self.join.await.ok()
    }
}

/// Exact counts over the counter connections: a shared queue, one worker
/// per connection, so a slow count holds only its own connection (and only
/// until its statement timeout).
async fn count_all(
    counters: &[DbHandle],
    tables: &[(String, String)],
    timeout: Duration,
) -> Vec<Result<i64, DbError>> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..tables.len()).collect());
    let results: Mutex<Vec<Option<Result<i64, DbError>>>> =
        Mutex::new((0..tables.len()).map(|_| None).collect());
    let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
    // The server's statement_timeout ends a slow count; this is the backstop
    // for a server that does not answer at all.
    let backstop = timeout + Duration::from_secs(2);
    let workers = counters.iter().map(|db| {
        let next = &next;
        let results = &results;
        async move {
            while let Some(i) = next() {
                let (schema, name) = &tables[i];
                let r = match tokio::time::timeout(backstop, exact_count(db, schema, name)).await {
                    Ok(r) => r,
                    Err(_) => {
                        db.disconnect().await;
                        Err(DbError::Other {
                            target: db.target(),
                            what: format!("count(*) of {schema}.{name}"),
                            reason: format!("no answer within {} ms", backstop.as_millis()),
                        })
                    }
                };
                if let Ok(mut res) = results.lock() {
                    res[i] = Some(r);
                }
            }
        }
    });
    futures_util::future::join_all(workers).await;
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(DbError::Other {
                    target: String::new(),
                    what: "count".into(),
                    reason: "not run".into(),
                })
            })
        })
        .collect()
}
