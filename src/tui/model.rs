//! The console's view model: plain data the adapters fill through
//! `UiEvent`s and the views draw from. Applying an event never does I/O;
//! drawing never mutates it.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};

use crate::engine::types::DbIdentity;
use crate::journal::{Record, kinds};
use crate::samples::Sample;

use super::event::UiEvent;
use super::keys::KeyMap;
use super::theme::Theme;

/// A row count that was not sampled in a round.
pub const MISSING: i64 = i64::MIN;
/// Lines of step output kept for the Runbook view.
pub const OUTPUT_KEEP: usize = 500;
/// Default age after which a number is drawn as stale.
pub const DEFAULT_STALE_S: u64 = 30;
/// A probe unanswered for this long is shown as "no answer for N s".
pub const NO_ANSWER_AFTER_S: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Live,
    Drill,
}

/// The top bar: whose incident, where, in which mode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub incident: String,
    pub started_at: Option<DateTime<Utc>>,
    pub operator: String,
    pub mode: Mode,
    /// Inventory-wide environment label (`env = "production"`).
    pub env: Option<String>,
    pub readonly: bool,
    /// Inventory name, if it has one.
    pub inventory: Option<String>,
    /// `frozen: PIDS on HOST` for pids a run of this incident left frozen.
    pub frozen: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostState {
    pub name: String,
    pub address: Option<String>,
    pub env: Option<String>,
    /// None until the first probe answered or failed.
    pub reachable: Option<bool>,
    pub latency_ms: Option<u64>,
    pub last_answer: Option<DateTime<Utc>>,
    /// Set while a probe is in flight; shown as "no answer for N s" once old.
    pub waiting_since: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// What the database looks like, in the order an operator must tell them
/// apart (INCIDENTS.md, outage 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Unknown,
    Healthy,
    /// Tables present but rows dropped (an alert fired).
    RowsDropped,
    /// Database present, no rows (or no tables).
    Empty,
    /// Server up, database missing (3D000).
    Missing,
    /// Server not answering.
    ServerDown,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatabaseState {
    /// Inventory name.
    pub name: String,
    pub env: Option<String>,
    pub identity: Option<DbIdentity>,
    pub health: Health,
    pub health_detail: Option<String>,
    pub total_rows: Option<i64>,
    pub tables: Option<usize>,
    pub last_sample: Option<DateTime<Utc>>,
    /// Seconds after which `last_sample` is stale (0: the console default).
    pub stale_after_s: u64,
    pub waiting_since: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Databases on the same server whose names only look like this one.
    pub lookalikes: Vec<crate::lookalike::LookAlike>,
    /// Migration tables with their history (`m` shows them).
    pub migrations: Vec<crate::migrations::MigrationState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Systemd,
    Timer,
    Cron,
    Container,
    Process,
}

/// A dangerous pattern found in a service, with the line that proves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hazard {
    /// Scanner kind (`dump-clean-restore`, `schema-reset`, ...; empty if unknown).
    pub kind: String,
    /// What it does, e.g. "pg_dump --clean into another database".
    pub what: String,
    /// Where it was seen: `file:line: text` or a command line.
    pub evidence: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceState {
    pub name: String,
    pub kind: ServiceKind,
    /// None when unknown (e.g. a cron line has no running state).
    pub active: Option<bool>,
    /// State as the host reports it ("active (running)", "enabled", "Up 3 hours").
    pub state: String,
    /// Inventory names of the databases it reaches.
    pub databases: Vec<String>,
    pub hazards: Vec<Hazard>,
    pub stopped_by_runbook: bool,
    /// Why no step acts on it (not part of this drill, target unclear):
    /// drawn dimmed with this reason, never stopped unless picked.
    pub set_aside: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostServices {
    pub host: String,
    pub services: Vec<ServiceState>,
    pub updated_at: DateTime<Utc>,
}

/// One table's row counts, aligned with `DbSeries::times`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSeries {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    /// `MISSING` where the table was not in a round.
    pub values: Vec<i64>,
    pub exact: bool,
}

impl TableSeries {
    /// The last sampled value.
    pub fn last(&self) -> Option<i64> {
        self.values.iter().rev().copied().find(|v| *v != MISSING)
    }
    /// Display name: `name`, schema-qualified outside `public`.
    pub fn label(&self) -> String {
        if self.schema == "public" || self.schema.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }
}

/// Grows a series by a fixed chunk instead of doubling: a day of samples
/// for hundreds of tables would otherwise hold up to twice its size.
fn grow(v: &mut Vec<i64>) {
    const CHUNK: usize = 1024;
    if v.len() == v.capacity() {
        v.reserve_exact(CHUNK);
    }
}

/// Row counts of one database over time: a struct of arrays with retention.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DbSeries {
    /// Round times, unix seconds, ascending.
    pub times: Vec<i64>,
    pub tables: Vec<TableSeries>,
    pub identity: DbIdentity,
    index: HashMap<(String, String, u32), usize>,
}

impl DbSeries {
    /// Appends one round; a table seen for the first time (or with a new
    /// OID: re-created) starts a new series.
    pub fn push(&mut self, sample: &Sample, max_rounds: usize) {
        let t = sample.ts.timestamp();
        if self.times.last().is_some_and(|last| t < *last) {
            // Out of order (a late adapter): keep the series monotonic.
            return;
        }
        let n = self.times.len();
        grow(&mut self.times);
        self.times.push(t);
        if self.identity != sample.identity {
            self.identity = sample.identity.clone();
        }
        for (pos, tc) in sample.tables.iter().enumerate() {
            // Rounds usually list the tables in the same order: try the
            // same position first, then the index (no allocation either way).
            let same =
                |s: &TableSeries| s.oid == tc.oid && s.name == tc.name && s.schema == tc.schema;
            let known = match self.tables.get(pos) {
                Some(s) if same(s) => Some(pos),
                _ => self
                    .index
                    .get(&(tc.schema.clone(), tc.name.clone(), tc.oid))
                    .copied(),
            };
            let i = match known {
                Some(i) => i,
                None => {
                    let key = (tc.schema.clone(), tc.name.clone(), tc.oid);
                    let mut values = Vec::with_capacity(n + 1);
                    values.resize(n, MISSING);
                    self.tables.push(TableSeries {
                        schema: tc.schema.clone(),
                        name: tc.name.clone(),
                        oid: tc.oid,
                        values,
                        exact: tc.exact,
                    });
                    self.index.insert(key, self.tables.len() - 1);
                    self.tables.len() - 1
                }
            };
            let s = &mut self.tables[i];
            if s.values.len() == n {
                grow(&mut s.values);
                s.values.push(tc.rows);
            }
            s.exact = tc.exact;
        }
        for s in &mut self.tables {
            if s.values.len() == n {
                grow(&mut s.values);
                s.values.push(MISSING);
            }
        }
        // Retention: drop the oldest tenth at once so pruning stays amortised.
        if max_rounds > 0 && self.times.len() > max_rounds + max_rounds / 10 {
            let cut = self.times.len() - max_rounds;
            self.times.drain(..cut);
            for s in &mut self.tables {
                s.values.drain(..cut);
            }
        }
    }

    /// A newer series of the same table (re-created: a new OID) exists.
    pub fn superseded(&self, i: usize) -> bool {
        let t = &self.tables[i];
        self.tables[i + 1..]
            .iter()
            .any(|x| x.name == t.name && x.schema == t.schema)
    }

    /// How many OIDs the table of series `i` had up to it (1: never re-created).
    pub fn oids(&self, i: usize) -> usize {
        let t = &self.tables[i];
        self.tables[..=i]
            .iter()
            .filter(|x| x.name == t.name && x.schema == t.schema)
            .count()
    }

    /// The values of series `i` with its earlier OIDs' values filled in
    /// where it has none: one line per table name across re-creations
    /// (reads "250 -> 0 -> 225"). Borrowed when never re-created.
    pub fn merged(&self, i: usize) -> std::borrow::Cow<'_, [i64]> {
        if self.oids(i) == 1 {
            return std::borrow::Cow::Borrowed(&self.tables[i].values);
        }
        let t = &self.tables[i];
        let mut v = t.values.clone();
        for older in self.tables[..i]
            .iter()
            .rev()
            .filter(|x| x.name == t.name && x.schema == t.schema)
        {
            for (slot, o) in v.iter_mut().zip(&older.values) {
                if *slot == MISSING {
                    *slot = *o;
                }
            }
        }
        std::borrow::Cow::Owned(v)
    }

    pub fn find(&self, name: &str, oid: u32) -> Option<usize> {
        self.tables
            .iter()
            .position(|t| t.name == name && t.oid == oid)
    }

    /// Rough heap bytes held (for the memory benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.times.capacity() * 8
            + self
                .tables
                .iter()
                .map(|t| t.values.capacity() * 8 + t.name.capacity() + t.schema.capacity() + 64)
                .sum::<usize>()
            + self.index.capacity() * 64
    }
}

/// A row-count drop (journal kind `alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub ts: DateTime<Utc>,
    /// Journal sequence number of the record that raised it.
    pub seq: u64,
    /// Journal kind: `alert`, `identity-changed` or `table-recreated`.
    pub kind: String,
    pub database: String,
    pub table: String,
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub summary: String,
    /// The operator acknowledged it (an `alert-acknowledged` record).
    pub acked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepState {
    #[default]
    Pending,
    Running,
    Done,
    Failed,
    Interrupted,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepView {
    pub id: String,
    pub title: String,
    /// Engine action (`stop-services`, `restore`, `swap`, ...).
    pub action: String,
    pub destructive: bool,
    pub state: StepState,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunbookState {
    pub name: String,
    pub title: String,
    /// Inventory name of the database the runbook acts on.
    pub database: Option<String>,
    pub steps: Vec<StepView>,
    /// Index into `steps` of the step being run or waiting.
    pub current: Option<usize>,
    /// Why the current step exists and what it will do, in words.
    pub explanation: String,
    /// The exact commands / SQL the current step runs (redacted).
    pub preview: Vec<String>,
    pub started_at: Option<DateTime<Utc>>,
}

/// A runbook the operator can start.
#[derive(Debug, Clone, PartialEq)]
pub struct RunbookInfo {
    pub name: String,
    pub title: String,
    pub when: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableProgress {
    pub name: String,
    pub rows: i64,
    pub expected: Option<i64>,
    pub done: bool,
}

/// Restore progress of the running step.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub step: String,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    /// Set for progress that is not bytes (a hold's countdown): shown
    /// instead of the byte counts, with no rate or ETA.
    pub label: Option<String>,
    pub tables: Vec<TableProgress>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Progress {
    /// Bytes per second since the start, once there is something to divide.
    pub fn rate(&self) -> Option<f64> {
        let ms = (self.updated_at - self.started_at).num_milliseconds();
        (ms > 0 && self.bytes_done > 0).then(|| self.bytes_done as f64 * 1000.0 / ms as f64)
    }
    /// Seconds left at the current rate.
    pub fn eta_s(&self) -> Option<u64> {
        let total = self.bytes_total?;
        let rate = self.rate()?;
        Some((total.saturating_sub(self.bytes_done) as f64 / rate).ceil() as u64)
    }
    /// 0.0..=1.0 when the total is known.
    pub fn ratio(&self) -> Option<f64> {
        self.bytes_total
            .filter(|t| *t > 0)
            .map(|t| (self.bytes_done as f64 / t as f64).clamp(0.0, 1.0))
    }
}

/// The engine waits for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingConfirm {
    pub step: String,
    /// What will happen, in words.
    pub prompt: String,
    /// For destructive steps, the database name that must be typed exactly
    /// (the real name, e.g. `TovPlay`); None for a yes/no question.
    pub expect: Option<String>,
    /// Other phrases the engine accepts for this step (each says what more it does).
    pub also: Vec<String>,
    /// Inventory name of the database concerned.
    pub database: Option<String>,
    /// What the step will change, as the engine measured it before asking:
    /// its exact commands and, for a swap, the rows it would discard.
    pub changes: Vec<String>,
    /// A restore of a picked backup: which one, what it loses, and what
    /// else may be chosen in the backup panel instead.
    pub backup: Option<crate::engine::types::BackupAtStake>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputLine {
    pub step: String,
    pub line: String,
    pub stderr: bool,
}

/// Views of the body, in key order 1-5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Overview,
    Services,
    Timeline,
    Runbook,
    Journal,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Overview,
        View::Services,
        View::Timeline,
        View::Runbook,
        View::Journal,
    ];
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the details popup shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailTarget {
    Record(u64),
    Service { host: String, name: String },
    Step(String),
    Host(String),
    Database(String),
}

/// A popup over the view; keys go to it first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Overlay {
    #[default]
    None,
    Help {
        scroll: usize,
    },
    Confirm {
        input: String,
        error: Option<String>,
    },
    Quit,
    Abort,
    Details {
        target: DetailTarget,
        scroll: usize,
    },
    /// The stop plan checklist (`Model::stop_plan`).
    StopPlan,

    /// The backup candidates of the last pick-backup step; `cursor` is
    /// the candidate `c` would choose (in the panel's order).
    Backups {
        scroll: usize,
        cursor: usize,
    },
    /// Choosing another backup: the reason, then (suspect candidates) the
    /// name typed again; Enter sends it, Esc goes back to the panel.
    ChooseBackup {
        /// The restore step waiting for its confirmation.
        step: String,
        name: String,
        /// Why it needs its name typed (None: it does not).
        suspect: Option<String>,
        reason: String,
        /// Some while the name is being typed (after the reason).
        typed: Option<String>,
        error: Option<String>,
        /// The panel's cursor to go back to.
        cursor: usize,
    },
    /// The plan of a runbook before it starts (`s` starts it).
    Plan {
        runbook: String,
        scroll: usize,
    },
    /// The migration history of the selected database.
    Migrations {
        scroll: usize,
    },
}

/// A line of text being typed at the bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Command(String),
    Filter(String),
}

/// Zoom levels of the Timeline, seconds of history on screen.
pub const ZOOMS: [i64; 8] = [
    300,
    900,
    3_600,
    3 * 3_600,
    6 * 3_600,
    12 * 3_600,
    86_400,
    7 * 86_400,
];
pub const DEFAULT_ZOOM: usize = 2;

/// State of the console itself (not of the world).
#[derive(Debug, Clone, PartialEq)]
pub struct UiState {
    pub view: View,
    pub overlay: Overlay,
    pub input: Option<Input>,
    /// Cursor per view (index into that view's rows).
    pub cursor: [usize; 5],
    /// Filter per view (`/`).
    pub filter: [String; 5],
    /// Journal follows the newest record until the cursor moves up.
    pub journal_follow: bool,
    /// The Runbook cursor follows the current step until moved.
    pub step_follow: bool,
    /// Database the Timeline shows (inventory name).
    pub selected_db: Option<String>,
    /// Table of the chart: (name, oid).
    pub selected_table: Option<(String, u32)>,
    pub zoom: usize,
    /// End of the Timeline window (unix s); None follows the newest sample.
    pub pan_end: Option<i64>,
    /// One-line message in the footer until the next key.
    pub message: Option<(String, bool)>,
    /// A confirmation the operator put aside with Esc (step id).
    pub dismissed_confirm: Option<String>,
    pub quit: bool,
    /// The engine's channel closed.
    pub disconnected: bool,
    /// Terminal size, for paging.
    pub size: (u16, u16),
    /// The operator moved the runbook list's cursor (the suggestion no
    /// longer places it).
    pub runbook_cursor_moved: bool,
    /// Sort key per view (`s`), an index into `strings::sort_keys(view)`;
    /// 0 is the view's default order.
    pub sort: [usize; 5],
    /// Sort key of the backup panel (`s` in it), into `strings::SORT_BACKUPS`.
    pub backup_sort: usize,
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            view: View::Overview,
            overlay: Overlay::None,
            input: None,
            cursor: [0; 5],
            filter: Default::default(),
            journal_follow: true,
            step_follow: true,
            selected_db: None,
            selected_table: None,
            zoom: DEFAULT_ZOOM,
            pan_end: None,
            message: None,
            dismissed_confirm: None,
            quit: false,
            disconnected: false,
            size: (80, 24),
            runbook_cursor_moved: false,
            sort: [0; 5],
            backup_sort: 0,
        }
    }
}

/// Everything the console draws.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The clock every age is measured against (injected; tests fix it).
    pub now: DateTime<Utc>,
    pub header: Header,
    pub hosts: Vec<HostState>,
    pub databases: Vec<DatabaseState>,
    pub services: Vec<HostServices>,
    /// Row-count series per database (inventory name), in arrival order.
    pub series: Vec<(String, DbSeries)>,
    pub incident_at: Option<DateTime<Utc>>,
    pub alerts: Vec<Alert>,
    pub runbooks: Vec<RunbookInfo>,
    pub runbook: Option<RunbookState>,
    pub output: VecDeque<OutputLine>,
    pub progress: Option<Progress>,
    pub pending: Option<PendingConfirm>,
    /// A stop plan waiting for the operator's review.
    pub stop_plan: Option<super::stop_plan::Checklist>,
    pub journal: Vec<Record>,
    /// Rounds kept per database (0: unbounded).
    pub max_rounds: usize,
    pub stale_after_s: u64,
    /// `p`: data updates held while the operator reads (applied on resume).
    pub held: Option<Vec<UiEvent>>,
    /// The plan of the runbook the operator opened (before it starts).
    pub plan: Option<super::plan::PlanPreview>,
    pub ui: UiState,
    pub theme: Theme,
    pub keys: KeyMap,
}

fn upsert<T>(list: &mut Vec<T>, item: T, same: impl Fn(&T, &T) -> bool) {
    match list.iter_mut().find(|x| same(x, &item)) {
        Some(slot) => *slot = item,
        None => list.push(item),
    }
}

impl Model {
    pub fn new(now: DateTime<Utc>) -> Model {
        Model {
            now,
            max_rounds: 2 * 8_640,
            stale_after_s: DEFAULT_STALE_S,
            ..Default::default()
        }
    }

    /// Merges one event into the model.
    pub fn apply(&mut self, ev: UiEvent) {
        match ev {
            UiEvent::HeaderUpdate(h) => self.header = h,
            UiEvent::HostUpdate(h) => upsert(&mut self.hosts, h, |a, b| a.name == b.name),
            UiEvent::DatabaseUpdate(d) => {
                if self.ui.selected_db.is_none() {
                    self.ui.selected_db = Some(d.name.clone());
                }
                upsert(&mut self.databases, d, |a, b| a.name == b.name)
            }
            UiEvent::Sample(s) => self.push_sample(&s),
            UiEvent::ServicesUpdate(s) => upsert(&mut self.services, s, |a, b| a.host == b.host),
            UiEvent::Journal(r) => self.push_record(r),
            UiEvent::RunbookList(list) => self.runbooks = list,
            UiEvent::RunbookUpdate(r) => {
                if r.is_none() {
                    self.progress = None;
                    self.pending = None;
                    super::stop_plan::apply_event(self, None);
                }
                self.runbook = r;
            }
            UiEvent::StepUpdate { id, state, summary } => {
                if let Some(rb) = &mut self.runbook
                    && let Some((i, st)) = rb.steps.iter_mut().enumerate().find(|(_, s)| s.id == id)
                {
                    st.state = state;
                    match state {
                        StepState::Running => {
                            st.started_at = Some(self.now);
                            rb.current = Some(i);
                        }
                        StepState::Done
                        | StepState::Failed
                        | StepState::Interrupted
                        | StepState::Skipped => st.finished_at = Some(self.now),
                        StepState::Pending => {}
                    }
                    if summary.is_some() {
                        st.summary = summary;
                    }
                }
            }
            UiEvent::Output { step, line, stderr } => {
                if self.output.len() >= OUTPUT_KEEP {
                    self.output.pop_front();
                }
                self.output.push_back(OutputLine { step, line, stderr });
            }
            UiEvent::Progress(p) => self.progress = p,
            UiEvent::Confirm(p) => {
                let step = p.as_ref().map(|p| p.step.clone());
                self.pending = p;
                match step {
                    None => {
                        if matches!(self.ui.overlay, Overlay::Confirm { .. }) {
                            self.ui.overlay = Overlay::None;
                        }
                        self.ui.dismissed_confirm = None;
                    }
                    // Pops up over the Runbook view (its preview shows exactly
                    // what runs) unless the operator put this one aside,
                    // already answered it, or is typing a command line.
                    Some(step) => {
                        if self.ui.overlay == Overlay::None
                            && self.ui.input.is_none()
                            && self.ui.dismissed_confirm.as_ref() != Some(&step)
                        {
                            self.ui.view = View::Runbook;
                            self.ui.overlay = Overlay::Confirm {
                                input: String::new(),
                                error: None,
                            };
                        }
                    }
                }
            }
            UiEvent::StopPlan(p) => super::stop_plan::apply_event(self, p),
            UiEvent::Frozen(lines) => self.header.frozen = lines,

            UiEvent::Plan(p) => {
                // The "building the plan" message has been answered.
                self.ui.message = None;
                self.plan = Some(*p);
            }
            UiEvent::IncidentTime(t) => self.incident_at = t,
            UiEvent::Status(text) => self.ui.message = Some((text, false)),
            UiEvent::Tick(now) => self.now = now,
        }
    }

    fn push_sample(&mut self, s: &Sample) {
        let max = self.max_rounds;
        match self.series.iter_mut().find(|(n, _)| *n == s.database) {
            Some((_, ser)) => ser.push(s, max),
            None => {
                let mut ser = DbSeries::default();
                ser.push(s, max);
                self.series.push((s.database.clone(), ser));
            }
        }
        if self.ui.selected_db.is_none() {
            self.ui.selected_db = Some(s.database.clone());
        }
    }

    fn push_record(&mut self, r: Record) {
        let fresh = self.journal.last().is_none_or(|last| r.seq > last.seq);
        let damage = [
            kinds::ALERT,
            kinds::IDENTITY_CHANGED,
            kinds::TABLE_RECREATED,
        ];
        if fresh && damage.contains(&r.kind.as_str()) {
            let d = &r.data;
            let text = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_string);
            self.alerts.push(Alert {
                ts: r.ts,
                seq: r.seq,
                kind: r.kind.clone(),
                database: text("database").unwrap_or_default(),
                table: text("table").unwrap_or_default(),
                before: d.get("before").and_then(|v| v.as_i64()),
                after: d
                    .get("after")
                    .and_then(|v| v.as_i64())
                    .or_else(|| d.get("rows").and_then(|v| v.as_i64())),
                summary: r.summary.clone(),
                acked: false,
            });
        }
        if fresh
            && r.kind == crate::timeline::detect::ALERT_ACK
            && let Some(upto) = r.data.get("upto_seq").and_then(|v| v.as_u64())
        {
            for a in self.alerts.iter_mut().filter(|a| a.seq <= upto) {
                a.acked = true;
            }
        }
        // Records arrive in seq order; a replayed one is ignored.
        if fresh {
            self.journal.push(r);
        }
    }

    /// Series of a database by inventory name.
    pub fn series_of(&self, db: &str) -> Option<&DbSeries> {
        self.series.iter().find(|(n, _)| n == db).map(|(_, s)| s)
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseState> {
        self.databases.iter().find(|d| d.name == name)
    }

    /// The database the operator is acting on: the runbook's target while
    /// a runbook is loaded, else the one selected.
    pub fn acting_on(&self) -> Option<(&str, bool)> {
        if let Some(db) = self.runbook.as_ref().and_then(|r| r.database.as_deref()) {
            return Some((db, true));
        }
        self.ui.selected_db.as_deref().map(|d| (d, false))
    }

    /// Identity of a database: from its state, else from its latest sample.
    pub fn identity_of(&self, db: &str) -> Option<&DbIdentity> {
        self.database(db)
            .and_then(|d| d.identity.as_ref())
            .or_else(|| self.series_of(db).map(|s| &s.identity))
    }

    /// Environment label for the header: the acting-on database's, else the inventory's.
    pub fn env_label(&self) -> Option<&str> {
        self.acting_on()
            .and_then(|(db, _)| self.database(db))
            .and_then(|d| d.env.as_deref())
            .or(self.header.env.as_deref())
    }

    /// Alerts the operator has not acknowledged yet.
    pub fn unacked_alerts(&self) -> usize {
        self.alerts.iter().filter(|a| !a.acked).count()
    }

    pub fn alerts_for(&self, db: &str) -> usize {
        self.alerts.iter().filter(|a| a.database == db).count()
    }

    /// True while a runbook step is running (quitting then asks first).
    pub fn step_running(&self) -> bool {
        self.runbook
            .as_ref()
            .is_some_and(|r| r.steps.iter().any(|s| s.state == StepState::Running))
    }

    /// Seconds between `t` and now (never negative).
    pub fn age_s(&self, t: DateTime<Utc>) -> i64 {
        (self.now - t).num_seconds().max(0)
    }

    pub fn stale_limit(&self, db: &DatabaseState) -> i64 {
        let s = if db.stale_after_s > 0 {
            db.stale_after_s
        } else {
            self.stale_after_s
        };
        s as i64
    }

    /// Rough heap bytes held by the series and the journal.
    pub fn heap_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|(_, s)| s.heap_bytes())
            .sum::<usize>()
            + self
                .journal
                .iter()
                .map(|r| 256 + r.summary.len() + r.data.to_string().len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::TableCount;
    use chrono::TimeZone;

    fn sample(t: i64, tables: &[(&str, u32, i64)]) -> Sample {
        Sample {
            ts: Utc.timestamp_opt(t, 0).unwrap(),
            database: "main".into(),
            identity: DbIdentity::default(),
            tables: tables
                .iter()
                .map(|(n, oid, rows)| TableCount {
                    schema: "public".into(),
                    name: n.to_string(),
                    oid: *oid,
                    rows: *rows,
                    exact: true,
                })
                .collect(),
        }
    }

    #[test]
    fn series_align_and_recreated_table_is_new_series() {
        let mut s = DbSeries::default();
        s.push(&sample(10, &[("User", 1, 22)]), 0);
        s.push(&sample(20, &[("User", 1, 22), ("Game", 2, 12)]), 0);
        s.push(&sample(30, &[("User", 3, 0), ("Game", 2, 12)]), 0);
        assert_eq!(s.times, vec![10, 20, 30]);
        assert_eq!(s.tables.len(), 3);
        assert_eq!(s.tables[0].values, vec![22, 22, MISSING]);
        assert_eq!(s.tables[1].values, vec![MISSING, 12, 12]);
        assert_eq!(s.tables[2].values, vec![MISSING, MISSING, 0]);
        assert_eq!(s.tables[0].last(), Some(22));
        // Out of order rounds are ignored.
        s.push(&sample(25, &[("User", 3, 5)]), 0);
        assert_eq!(s.times.len(), 3);
    }

    #[test]
    fn a_recreated_table_reads_as_one_line_across_its_oids() {
        let mut s = DbSeries::default();
        s.push(&sample(10, &[("User", 1, 250)]), 0);
        s.push(&sample(20, &[("User", 1, 250)]), 0);
        s.push(&sample(30, &[("User", 3, 0)]), 0);
        s.push(&sample(40, &[("User", 3, 225)]), 0);
        assert!(s.superseded(0));
        assert!(!s.superseded(1));
        assert_eq!(s.oids(1), 2);
        assert_eq!(&*s.merged(1), &[250, 250, 0, 225]);
        // Never re-created: its own values, borrowed.
        let mut one = DbSeries::default();
        one.push(&sample(10, &[("Game", 2, 12)]), 0);
        assert!(matches!(one.merged(0), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn retention_prunes_oldest() {
        let mut s = DbSeries::default();
        for t in 0..1200 {
            s.push(&sample(t, &[("User", 1, t)]), 1000);
        }
        assert!(s.times.len() <= 1100 && s.times.len() >= 1000);
        assert_eq!(*s.times.last().unwrap(), 1199);
        assert_eq!(s.tables[0].values.len(), s.times.len());
        assert_eq!(s.tables[0].values[0], s.times[0]);
    }

    #[test]
    fn progress_rate_and_eta() {
        let t0 = Utc.timestamp_opt(1000, 0).unwrap();
        let p = Progress {
            step: "restore".into(),
            bytes_done: 50_000_000,
            bytes_total: Some(150_000_000),
            label: None,
            tables: vec![],
            started_at: t0,
            updated_at: t0 + chrono::Duration::seconds(10),
        };
        assert_eq!(p.rate(), Some(5_000_000.0));
        assert_eq!(p.eta_s(), Some(20));
        assert_eq!(p.ratio(), Some(1.0 / 3.0));
        let fresh = Progress {
            updated_at: t0,
            ..p
        };
        assert_eq!(fresh.rate(), None);
        assert_eq!(fresh.eta_s(), None);
    }
}
