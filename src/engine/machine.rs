//! The engine's state machine: `apply(&State, Input) -> (State, Vec<Effect>)`.
//! Pure: no I/O, no clock, no randomness; every side effect is returned as
//! data for the driver to perform in order. It never emits an action
//! without the journal entry that must precede it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::actions::{ActionError, ErrorClass};
use super::driver::kinds::BACKUP_CHOSEN;
use super::events::{
    ConfirmRequest, EngineEvent, EngineView, InterruptedRequest, OverrideRequest, Question,
    RunExit, StepStatus, StepView,
};
use super::preview::preview;
use super::types::*;
use crate::inventory::Inventory;
use crate::journal::{Entry, Record, kinds};
use crate::runbook::template::json_field;
use crate::runbook::{Action, ParamKind, PathChoice, Requirement, Runbook, Step, Template};

/// What the operator types to go on after a failed snapshot.
pub const OVERRIDE_PHRASE: &str = "proceed without snapshot";

/// Default timeout of a `command` step, in seconds.
pub const DEFAULT_COMMAND_TIMEOUT_S: u64 = 600;
/// An incident time parameter with no alert to take it from: pick-backup
/// derives it from the backups' content (the damage window).
pub const EVIDENCE: &str = "evidence";

/// PostgreSQL's limit on identifier length, in bytes.
const MAX_IDENT: usize = 63;

/// A resolved parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamValue {
    pub kind: ParamKind,
    /// Inventory name, RFC 3339 time or text.
    pub value: String,
    /// Where it came from: "answers", "default", "inventory", "timeline", "journal".
    pub source: String,
}

pub type Params = BTreeMap<String, ParamValue>;

/// Everything fixed for the length of a run.
#[derive(Debug)]
pub struct RunContext {
    pub runbook: Runbook,
    pub inventory: Inventory,
    pub params: Params,
    pub incident: String,
    pub incident_dir: PathBuf,
    pub readonly: bool,
    pub dry_run: bool,
}

/// The operator's choice for a step found in flight on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Checked: run it again.
    Rerun,
    /// Checked: it took effect (or is not needed); mark it skipped.
    Skip,
}

/// A step with everything resolved: what runs and what is shown.
#[derive(Debug, Clone)]
pub struct ResolvedStep {
    pub request: ActionRequest,
    pub target: Option<String>,
    /// The database a destructive step puts at risk (typed to confirm, identity-checked).
    pub database: Option<DbTarget>,
    pub preview: Vec<String>,
    /// Seconds after which the driver abandons the action.
    pub timeout_s: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct StepState {
    pub status: StepStatus,
    /// `data` of its step-finished record.
    pub outcome: Option<Value>,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub resolved: Option<ResolvedStep>,
    /// Identity shown with the confirmation request.
    pub shown: Option<DbIdentity>,
    /// Identity the operator confirmed.
    pub confirmed: Option<DbIdentity>,
    /// step-started records so far (this run and before).
    pub attempts: u32,
    /// stop-services: the `data` of every attempt that reported what it
    /// stopped (finished or failed), so a rerun after a failed hold does not
    /// hide what the first attempt stopped from start-services.
    pub stop_reports: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub ctx: Arc<RunContext>,
    pub steps: Vec<StepState>,
    pub current: Option<usize>,
    /// The latest time an input carried (stamps in names come from it).
    pub clock: DateTime<Utc>,
    /// Inventory databases whose failed snapshot was overridden.
    pub overrides: BTreeSet<String>,
    pub refused: usize,
    pub resumed: bool,
    pub exit: Option<RunExit>,
}

/// What happened, fed to `apply`.
#[derive(Debug, Clone)]
pub enum Input {
    Start {
        now: DateTime<Utc>,
    },
    /// The target's identity, read at `at`.
    Identity {
        step: usize,
        result: Result<DbIdentity, String>,
        at: DateTime<Utc>,
        /// What the world showed for the step's preview (`Actions::live_preview`),
        /// when the effect asked for it.
        preview: Result<Vec<String>, String>,
    },
    /// The operator aborted the run instead of answering the question of
    /// `step` (a confirmation or an override): the step fails as aborted.
    Aborted {
        step: usize,
    },
    /// What the operator typed (None: no answer).
    Confirmation {
        step: usize,
        typed: Option<String>,
    },
    Override {
        step: usize,
        typed: Option<String>,
    },
    Interrupted {
        step: usize,
        decision: Option<Decision>,
    },
    /// Instead of typing the confirmation of a restore of a picked backup,
    /// the operator chose another candidate of that pick.
    Choose {
        step: usize,
        choice: BackupChoice,
    },
    Done {
        step: usize,
        result: Result<StepOutcome, StepFailure>,
        duration_ms: u64,
    },
    /// An append failed; the driver dropped the rest of that batch.
    JournalFailed {
        kind: String,
        step: Option<usize>,
        error: String,
    },
}

/// A failed action as the machine sees it: the class (journaled as
/// `data.class` of `step-failed`) and the sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub class: ErrorClass,
    pub message: String,
}

impl StepFailure {
    /// The class of a failure the machine finds itself (not an action's).
    pub fn class_of_phase(phase: &str) -> ErrorClass {
        match phase {
            "guard" | "identity" => ErrorClass::RefusedByCheck,
            "confirm" => ErrorClass::NotConfirmed,
            "abort" => ErrorClass::Aborted,
            "resolve" | "preview" | "choose" => ErrorClass::BadInput,
            _ => ErrorClass::Failed,
        }
    }
}

impl From<&ActionError> for StepFailure {
    fn from(e: &ActionError) -> Self {
        StepFailure {
            class: e.class(),
            message: e.to_string(),
        }
    }
}

impl From<String> for StepFailure {
    fn from(message: String) -> Self {
        StepFailure {
            class: ErrorClass::Failed,
            message,
        }
    }
}

/// What the driver must do, in order. A failed `Journal` cancels the
/// effects after it in the same batch.
#[derive(Debug, Clone)]
pub enum Effect {
    Journal(Entry),
    /// Read the identity of `db` and feed `Input::Identity`.
    ReadIdentity {
        step: usize,
        db: Box<DbTarget>,
        /// Also measure this request's live preview (before the confirmation only).
        preview: Option<Box<ActionRequest>>,
    },
    /// Ask the operator and feed the answer back.
    Ask(Question),
    /// Perform the action and feed `Input::Done`.
    Run {
        step: usize,
        resolved: Box<ResolvedStep>,
    },
    Emit(EngineEvent),
    Finish(RunExit),
}

/// What the operator types to confirm a destructive step: the database
/// name, or for a merge the phrase naming the database and its tables.
pub fn confirm_phrase(r: &ResolvedStep) -> String {
    match &r.request {
        ActionRequest::MergeTables(m) => m.phrase(),
        ActionRequest::RecoverPitr(p) if p.moved.is_some() => p.phrase().unwrap_or_default(),
        ActionRequest::Restore(q) if q.restore_as == RestoreAs::Admin => {
            RestoreAs::admin_phrase(q.database.dbname())
        }
        _ => r
            .database
            .as_ref()
            .map(|d| d.dbname().to_string())
            .unwrap_or_default(),
    }
}

/// Phrases a step accepts besides [`confirm_phrase`]: a restore with a
/// restore role also takes `<db> create role <role>` (create it if missing).
pub fn also_phrases(r: &ResolvedStep) -> Vec<String> {
    match &r.request {
        ActionRequest::Restore(q) => match &q.restore_as {
            RestoreAs::Role { name, .. } => {
                vec![RestoreAs::create_phrase(q.database.dbname(), name)]
            }
            RestoreAs::Admin => Vec::new(),
        },
        ActionRequest::RecoverPitr(p) => p.past_phrase().into_iter().collect(),
        _ => Vec::new(),
    }
}

/// A comma-separated table list; commas inside double quotes belong to the name.
pub fn split_tables(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in list.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The pure transition function.
pub fn apply(state: &State, input: Input) -> (State, Vec<Effect>) {
    let mut s = state.clone();
    let mut fx = Vec::new();
    if s.exit.is_some() {
        return (s, fx);
    }
    match input {
        Input::Start { now } => {
            s.clock = now;
            fx.push(Effect::Emit(EngineEvent::RunStarted {
                incident: s.ctx.incident.clone(),
                runbook: s.ctx.runbook.id.clone(),
                title: s.ctx.runbook.title.clone(),
                steps: s.steps.len(),
                dry_run: s.ctx.dry_run,
                readonly: s.ctx.readonly,
                resumed: s.resumed,
            }));
            if s.ctx.dry_run {
                s.plan(&mut fx);
            } else {
                s.advance(&mut fx);
            }
        }
        Input::Identity {
            step,
            result,
            at,
            preview,
        } => {
            s.clock = s.clock.max(at);
            if s.current == Some(step) {
                s.on_identity(step, result, preview, &mut fx);
            }
        }
        Input::Aborted { step } => {
            if s.current == Some(step)
                && matches!(
                    s.steps[step].status,
                    StepStatus::AwaitingConfirmation | StepStatus::AwaitingOverride
                )
            {
                s.fail(
                    step,
                    "abort",
                    "aborted by the operator before confirming; nothing was done".into(),
                    json!({ "aborted": true }),
                    None,
                    false,
                    &mut fx,
                );
            }
        }
        Input::Confirmation { step, typed } => {
            if s.current == Some(step) && s.steps[step].status == StepStatus::AwaitingConfirmation {
                s.on_confirmation(step, typed, &mut fx);
            }
        }
        Input::Override { step, typed } => {
            if s.current == Some(step) && s.steps[step].status == StepStatus::AwaitingOverride {
                s.on_override(step, typed, &mut fx);
            }
        }
        Input::Interrupted { step, decision } => {
            if s.current == Some(step) && s.steps[step].status == StepStatus::Interrupted {
                s.on_interrupted(step, decision, &mut fx);
            }
        }
        Input::Choose { step, choice } => {
            if s.current == Some(step) && s.steps[step].status == StepStatus::AwaitingConfirmation {
                s.on_choose(step, choice, &mut fx);
            }
        }
        Input::Done {
            step,
            result,
            duration_ms,
        } => {
            if s.current == Some(step) && s.steps[step].status == StepStatus::Running {
                s.on_done(step, result, duration_ms, &mut fx);
            }
        }
        Input::JournalFailed { kind, step, error } => {
            s.on_journal_failed(&kind, step, &error, &mut fx)
        }
    }
    (s, fx)
}

impl State {
    pub fn new(ctx: RunContext, now: DateTime<Utc>) -> State {
        let n = ctx.runbook.steps.len();
        State {
            ctx: Arc::new(ctx),
            steps: vec![StepState::default(); n],
            current: None,
            clock: now,
            overrides: BTreeSet::new(),
            refused: 0,
            resumed: false,
            exit: None,
        }
    }

    /// Rebuilds the state of a run from its journal records (those after
    /// its `run-started`): finished and skipped steps stay done, a step
    /// started but never finished is `Interrupted`, failed steps are
    /// pending again.
    pub fn replay(ctx: RunContext, records: &[Record], now: DateTime<Utc>) -> State {
        let mut s = State::new(ctx, now);
        s.resumed = true;
        let rb = s.ctx.runbook.clone();
        let rb = &rb;
        // The path decided so far (a choose-path step's step-finished).
        let mut chosen: Option<PathChoice> = None;
        for r in records {
            let Some(id) = r.step.as_deref() else {
                continue;
            };
            // A shared id: the record of a skipped step names its path; any
            // other is of the step on the chosen path.
            let on = r
                .data
                .get("path")
                .and_then(Value::as_str)
                .and_then(PathChoice::parse)
                .or(chosen);
            let Some(i) = rb.step_on_path(id, on) else {
                continue;
            };
            if r.kind == kinds::STEP_FINISHED && rb.steps[i].action == Action::ChoosePath {
                chosen = r
                    .data
                    .get("path")
                    .and_then(Value::as_str)
                    .and_then(PathChoice::parse);
            }
            let st = &mut s.steps[i];
            match r.kind.as_str() {
                kinds::STEP_STARTED => {
                    st.status = StepStatus::Running;
                    st.attempts += 1;
                }
                kinds::STEP_FINISHED | kinds::STEP_FAILED
                    if rb.steps[i].action == Action::StopServices
                        && r.data.get("detail").is_some_and(Value::is_array) =>
                {
                    st.stop_reports.push(r.data.clone());
                    if r.kind == kinds::STEP_FINISHED {
                        st.status = StepStatus::Done;
                        st.outcome = Some(r.data.clone());
                        st.summary = Some(r.summary.clone());
                        st.error = None;
                    } else {
                        st.status = StepStatus::Failed;
                        st.error = r
                            .data
                            .get("error")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                    }
                }
                kinds::STEP_FINISHED => {
                    st.status = StepStatus::Done;
                    st.outcome = Some(r.data.clone());
                    st.summary = Some(r.summary.clone());
                    st.error = None;
                }
                kinds::STEP_FAILED => {
                    st.status = StepStatus::Failed;
                    st.error = r
                        .data
                        .get("error")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                kinds::STEP_SKIPPED => {
                    st.status = if r.data.get("reason").and_then(Value::as_str) == Some("readonly")
                    {
                        StepStatus::Pending
                    } else {
                        StepStatus::Skipped
                    };
                }
                BACKUP_CHOSEN => {
                    let name = r.data.pointer("/chosen/name").and_then(Value::as_str);
                    if let (Some(name), Some(o)) = (name, st.outcome.as_ref()) {
                        let reason = r.data.get("reason").and_then(Value::as_str).unwrap_or("");
                        match choose_in(o, name, reason) {
                            Ok((o, _, _)) => st.outcome = Some(o),
                            // Never the preselection in its place: the pick runs again.
                            Err(e) => {
                                st.status = StepStatus::Failed;
                                st.error =
                                    Some(format!("the journaled choice cannot be applied: {e}"));
                            }
                        }
                    }
                }
                kinds::CONFIRMED
                    if r.data.get("override").and_then(Value::as_str) == Some("snapshot") =>
                {
                    st.status = StepStatus::Overridden;
                    if let Some(db) = r.data.get("database").and_then(Value::as_str) {
                        s.overrides.insert(db.to_string());
                    }
                }
                _ => {}
            }
        }
        for st in &mut s.steps {
            match st.status {
                StepStatus::Running => st.status = StepStatus::Interrupted,
                StepStatus::Failed => st.status = StepStatus::Pending,
                _ => {}
            }
        }
        s
    }

    fn step(&self, i: usize) -> &Step {
        &self.ctx.runbook.steps[i]
    }

    // ---- resolution -------------------------------------------------------

    fn lookup(&self, name: &str, path: &[String]) -> Option<String> {
        if let Some(p) = self.ctx.params.get(name) {
            return match (p.kind, path.first().map(String::as_str)) {
                (_, None) => Some(p.value.clone()),
                (ParamKind::Database, Some(f)) => {
                    let u = self.ctx.inventory.database(&p.value)?.pg_url()?;
                    match f {
                        "dbname" => Some(u.dbname.clone()),
                        "target" => Some(u.display_target()),
                        "host" => Some(u.host.clone()),
                        "port" => Some(u.port.to_string()),
                        _ => None,
                    }
                }
                (ParamKind::Host, Some("address")) => self
                    .ctx
                    .inventory
                    .host(&p.value)?
                    .address
                    .as_ref()
                    .map(|a| a.get_ref().clone()),
                _ => None,
            };
        }
        let j = self.index_of(name)?;
        json_field(self.steps[j].outcome.as_ref()?, path)
    }

    fn render(&self, t: &Template, lenient: bool) -> Result<String, String> {
        let look = |n: &str, p: &[String]| self.lookup(n, p);
        if lenient {
            Ok(t.render_lenient(&look))
        } else {
            t.render(&look)
        }
    }

    fn db_target(&self, name: &str) -> Result<DbTarget, String> {
        let spec = self
            .ctx
            .inventory
            .database(name)
            .ok_or_else(|| format!("no database named '{name}' in the inventory"))?;
        let url = spec
            .pg_url()
            .ok_or_else(|| format!("database '{name}' has no valid url in the inventory"))?;
        Ok(DbTarget {
            name: name.to_string(),
            url: url.clone(),
            spec: spec.clone(),
        })
    }

    fn host_target(&self, name: &str) -> Result<HostTarget, String> {
        let spec = self
            .ctx
            .inventory
            .host(name)
            .ok_or_else(|| format!("no host named '{name}' in the inventory"))?;
        Ok(HostTarget {
            name: name.to_string(),
            spec: spec.clone(),
        })
    }

    /// The step's database (inventory name), when it names one.
    fn step_db_name(&self, i: usize) -> Option<String> {
        let t = self.step(i).database.as_ref()?;
        self.render(&t.value, false).ok()
    }

    fn stamp(&self) -> String {
        self.clock.format("%Y%m%dT%H%M%SZ").to_string()
    }

    fn derived_name(&self, dbname: &str, what: &str) -> Result<String, String> {
        let n = format!("{dbname}__{what}_{}", self.stamp());
        if n.len() > MAX_IDENT {
            return Err(format!(
                "'{n}' is longer than PostgreSQL's {MAX_IDENT}-byte limit for names; rename the database by hand (nothing was done)"
            ));
        }
        Ok(n)
    }

    /// Outcomes (journaled data) of earlier steps with `action`.
    fn earlier_outcomes(&self, i: usize, action: Action) -> impl Iterator<Item = (usize, &Value)> {
        (0..i).filter_map(move |j| {
            (self.step(j).action == action)
                .then(|| self.steps[j].outcome.as_ref().map(|o| (j, o)))
                .flatten()
        })
    }

    /// Resolves step `i`. `lenient` (dry run) writes `<step.field>` for
    /// outcomes not known yet instead of failing.
    pub fn resolve(&self, i: usize, lenient: bool) -> Result<ResolvedStep, String> {
        let step = self.step(i);
        let database = self
            .rendered(&step.database)?
            .map(|n| self.db_target(&n))
            .transpose()?;
        let host = self
            .rendered(&step.host)?
            .map(|n| self.host_target(&n))
            .transpose()?;
        let need_db = || {
            database
                .clone()
                .ok_or_else(|| format!("step '{}' names no database", step.id))
        };
        let mut target = database.as_ref().map(DbTarget::display);
        let request = match step.action {
            Action::Note => ActionRequest::Note {
                text: match &step.text {
                    Some(t) => self.render(t, lenient)?,
                    None => step.explain.clone(),
                },
            },
            Action::Probe => {
                if target.is_none() {
                    target = host.as_ref().map(HostTarget::display);
                }
                ActionRequest::Probe(ProbeRequest {
                    host: host.clone(),
                    database: database.clone(),
                })
            }
            Action::StopServices => ActionRequest::StopServices(self.resolve_stop(
                step,
                database.as_ref(),
                host.as_ref(),
            )?),
            Action::Snapshot => ActionRequest::Snapshot(self.resolve_snapshot(i, need_db()?)),
            Action::PickBackup => {
                let r = self.resolve_pick(step)?;
                target = Some(format!(
                    "catalog '{}' on {}",
                    r.catalog.name(),
                    r.host.display()
                ));
                ActionRequest::PickBackup(r)
            }
            Action::Restore => {
                ActionRequest::Restore(self.resolve_restore(i, step, need_db()?, lenient)?)
            }
            Action::Verify => {
                let r = self.resolve_verify(i, need_db()?, lenient)?;
                target = Some(format!("{}/{}", r.database.server(), r.dbname));
                ActionRequest::Verify(r)
            }
            Action::ReapplyOwners => {
                let q = self.resolve_reapply(i, need_db()?, lenient)?;
                target = Some(format!("{}/{}", q.database.server(), q.restored));
                ActionRequest::ReapplyOwners(q)
            }
            Action::Swap => ActionRequest::Swap(self.resolve_swap(i, need_db()?, lenient)?),
            Action::MergeTables => {
                ActionRequest::MergeTables(self.resolve_merge(step, need_db()?, lenient)?)
            }
            Action::RecoverPitr => {
                let r = self.resolve_pitr(i, need_db()?, lenient)?;
                target = Some(format!(
                    "archive '{}' on {}",
                    r.archive.name(),
                    r.host.display()
                ));
                ActionRequest::RecoverPitr(r)
            }
            Action::ChoosePath => {
                let r = self.resolve_choose(i, need_db()?, lenient)?;
                if let Ok((a, h)) = &r.archive {
                    target = Some(format!("archive '{}' on {}", a.name(), h.display()));
                }
                ActionRequest::ChoosePath(r)
            }
            Action::StartServices => {
                ActionRequest::StartServices(self.resolve_start(i, database.as_ref())?)
            }
            Action::Command => {
                let h = host.clone().ok_or("no host")?;
                target = Some(h.display());
                ActionRequest::Command(self.resolve_command(step, h, lenient)?)
            }
            Action::Sql => ActionRequest::Sql(SqlRequest {
                database: need_db()?,
                sql: step.sql.clone().unwrap_or_default(),
                read_only: !step.destructive,
                timeout_s: step.timeout_s,
            }),
        };
        let preview = preview(&request);
        // A moved recovery target is confirmed by a typed phrase naming it.
        let phrase = matches!(&request, ActionRequest::RecoverPitr(p) if p.moved.is_some());
        Ok(ResolvedStep {
            request,
            target,
            database: if step.destructive || phrase {
                database
            } else {
                None
            },
            preview,
            timeout_s: step.timeout_s.map(|t| t + 5),
        })
    }

    // ---- resolve, per action ----------------------------------------------

    /// A step argument rendered strictly (names must resolve), if given.
    fn rendered(
        &self,
        a: &Option<crate::runbook::Located<Template>>,
    ) -> Result<Option<String>, String> {
        a.as_ref().map(|a| self.render(&a.value, false)).transpose()
    }

    /// The step's backup catalog and the host that holds it.
    fn step_catalog(
        &self,
        step: &Step,
    ) -> Result<(crate::inventory::CatalogSpec, HostTarget), String> {
        let name = self.rendered(&step.catalog)?.ok_or("no catalog")?;
        let c = self
            .ctx
            .inventory
            .catalog(&name)
            .ok_or_else(|| format!("no backup catalog named '{name}' in the inventory"))?;
        let h = self.host_target(c.host.get_ref())?;
        Ok((c.clone(), h))
    }

    /// stop-services: the named services, every inventory service writing
    /// to the database, and the hosts to look on.
    fn resolve_stop(
        &self,
        step: &Step,
        database: Option<&DbTarget>,
        host: Option<&HostTarget>,
    ) -> Result<StopRequest, String> {
        let mut services = Vec::new();
        for t in &step.services {
            let n = self.render(&t.value, false)?;
            let sv = self
                .ctx
                .inventory
                .service(&n)
                .ok_or_else(|| format!("no service named '{n}' in the inventory"))?;
            services.push(sv.clone());
        }
        if let Some(d) = database {
            for sv in &self.ctx.inventory.services {
                if sv.databases.iter().any(|x| x.get_ref() == &d.name)
                    && !services.iter().any(|x| x.name() == sv.name())
                {
                    services.push(sv.clone());
                }
            }
        }
        let mut hosts: Vec<HostTarget> = host.cloned().into_iter().collect();
        if hosts.is_empty() {
            let mut names: Vec<String> =
                services.iter().map(|s| s.host.get_ref().clone()).collect();
            if let Some(h) = database.and_then(|d| d.spec.host.as_ref()) {
                names.push(h.get_ref().clone());
            }
            names.sort();
            names.dedup();
            for n in names {
                hosts.push(self.host_target(&n)?);
            }
        }
        Ok(StopRequest {
            database: database.cloned(),
            hosts,
            services,
            hold_s: step.hold_s,
        })
    }

    /// snapshot: a fresh file per attempt in the incident's snapshots.
    fn resolve_snapshot(&self, i: usize, d: DbTarget) -> SnapshotRequest {
        let step = self.step(i);
        let path = self.ctx.incident_dir.join("snapshots").join(format!(
            "{}-{}-{}.dump",
            step.id,
            sanitize(d.dbname()),
            self.steps[i].attempts + 1
        ));
        SnapshotRequest { database: d, path }
    }

    /// pick-backup: the catalog and the incident time (or the evidence's).
    fn resolve_pick(&self, step: &Step) -> Result<PickRequest, String> {
        let (catalog, h) = self.step_catalog(step)?;
        let incident_at = match &step.incident_at {
            Some(t) if self.render(&t.value, false)? == EVIDENCE => None,
            Some(t) => {
                let s = self.render(&t.value, false)?;
                Some(
                    DateTime::parse_from_rfc3339(&s)
                        .map_err(|_| format!("incident time '{s}' is not RFC 3339"))?
                        .with_timezone(&Utc),
                )
            }
            None => None,
        };
        let database = self.db_target(catalog.database.get_ref()).ok();
        Ok(PickRequest {
            catalog,
            host: h,
            database,
            incident_at,
            incident_dir: Some(self.ctx.incident_dir.clone()),
        })
    }

    /// restore: into a new database beside the live one.
    fn resolve_restore(
        &self,
        i: usize,
        step: &Step,
        d: DbTarget,
        lenient: bool,
    ) -> Result<RestoreRequest, String> {
        let r = |t: &Template| self.render(t, lenient);
        let backup_path = match &step.backup {
            Some(t) => r(&t.value)?,
            None => return Err("no backup".into()),
        };
        let pitr = self.pitr_dump(i, &backup_path);
        let (catalog, h) = match (&step.catalog, &pitr) {
            (Some(_), _) => self.step_catalog(step)?,
            (None, Some((_, p))) => self.pitr_catalog(p, &d)?,
            (None, None) if lenient => self.pitr_placeholder(&d)?,
            (None, None) => {
                return Err(format!(
                    "step '{}' names no catalog and its backup '{backup_path}' is not the dump of an earlier recover-pitr step of this run: nothing to read it from",
                    step.id
                ));
            }
        };
        let restore_as = match &d.spec.restore_role {
            Some(role) => RestoreAs::Role {
                name: role.get_ref().clone(),
                password_env: d.spec.restore_password_env.clone(),
                create: false,
            },
            None => RestoreAs::Admin,
        };
        // The restore is held to the pick when it restores the picked file,
        // or to the recover-pitr dump's SHA-256 when it restores that.
        let picked = match &pitr {
            Some((j, p)) => Some(PickedBackup {
                name: "recovered.dump".into(),
                path: p.dump.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
                taken_at: None,
                source: format!(
                    "recover-pitr step '{}' (archive '{}' on host '{}')",
                    self.step(*j).id,
                    p.archive,
                    p.host
                ),
            }),
            None => self
                .earlier_outcomes(i, Action::PickBackup)
                .last()
                .and_then(|(_, o)| o.get("backup"))
                .and_then(|b| serde_json::from_value::<PickedBackup>(b.clone()).ok())
                .filter(|p| p.path == backup_path),
        };
        Ok(RestoreRequest {
            restore_as,
            picked,
            target_db: self.derived_name(d.dbname(), "restore")?,
            database: d,
            catalog,
            host: h,
            backup_path,
            jobs: match &step.jobs_from {
                Some(t) => {
                    let v = r(&t.value)?;
                    v.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| {
                            format!("jobs: '{v}' is not a number of connections (1 or more)")
                        })?
                }
                None => step.jobs.unwrap_or(1),
            },
        })
    }

    /// The latest earlier recover-pitr outcome whose dump is `path`.
    fn pitr_dump(&self, i: usize, path: &str) -> Option<(usize, PitrOutcome)> {
        self.earlier_outcomes(i, Action::RecoverPitr)
            .filter_map(|(j, o)| {
                serde_json::from_value::<PitrOutcome>(o.clone())
                    .ok()
                    .map(|p| (j, p))
            })
            .filter(|(_, p)| p.dump == path)
            .last()
    }

    /// The catalog a recover-pitr dump is read from: its own recovery
    /// directory on the archive's host (confinement holds: the restore reads
    /// nothing else of the host), named after the archive.
    fn pitr_catalog(
        &self,
        p: &PitrOutcome,
        d: &DbTarget,
    ) -> Result<(crate::inventory::CatalogSpec, HostTarget), String> {
        let h = self.host_target(&p.host)?;
        let span = 0..0;
        Ok((
            crate::inventory::CatalogSpec {
                name: toml::Spanned::new(span.clone(), format!("recover-pitr:{}", p.archive)),
                host: toml::Spanned::new(span.clone(), p.host.clone()),
                path: p.recovery_dir.clone(),
                pattern: None,
                database: toml::Spanned::new(span, d.name.clone()),
            },
            h,
        ))
    }

    /// Dry run before the recover-pitr step ran: the archive's host, a placeholder directory.
    fn pitr_placeholder(
        &self,
        d: &DbTarget,
    ) -> Result<(crate::inventory::CatalogSpec, HostTarget), String> {
        let a = self.pick_archive(None, d)?;
        let p = PitrOutcome {
            archive: a.name().to_string(),
            host: a.host.get_ref().clone(),
            dump: String::new(),
            sha256: None,
            size: 0,
            target: Value::Null,
            target_text: String::new(),
            evidence: Value::Null,
            evidence_text: String::new(),
            base_backup: String::new(),
            refused: Vec::new(),
            recovery_dir: "<recovery directory>".into(),
            stopped: String::new(),
            xid_status: None,
            replay_s: 0.0,
            moved: None,
        };
        self.pitr_catalog(&p, d)
    }

    /// The archive a recover-pitr step reads: the one it names, else the
    /// only one whose `databases` lists the database, else the only one
    /// that lists no database.
    fn pick_archive(
        &self,
        named: Option<&str>,
        d: &DbTarget,
    ) -> Result<crate::inventory::ArchiveSpec, String> {
        let inv = &self.ctx.inventory;
        if let Some(n) = named {
            return inv
                .archives
                .iter()
                .find(|a| a.name() == n)
                .cloned()
                .ok_or_else(|| format!("no archive named '{n}' in the inventory"));
        }
        let covering: Vec<_> = inv
            .archives
            .iter()
            .filter(|a| a.databases.iter().any(|x| x.get_ref() == &d.name))
            .collect();
        let open: Vec<_> = inv
            .archives
            .iter()
            .filter(|a| a.databases.is_empty())
            .collect();
        let names = |v: &[&crate::inventory::ArchiveSpec]| {
            v.iter()
                .map(|a| format!("'{}'", a.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (covering.as_slice(), open.as_slice()) {
            ([a], _) => Ok((*a).clone()),
            ([], [a]) => Ok((*a).clone()),
            ([], []) => Err(format!(
                "no [[archive]] in the inventory covers database '{}': add one (kind wal-dir or pgbackrest) or restore from a dump",
                d.name
            )),
            ([], many) => Err(format!(
                "several archives could cover database '{}' ({}): name one with `archive = \"...\"` or list the database in its `databases`",
                d.name,
                names(many)
            )),
            (many, _) => Err(format!(
                "several archives cover database '{}' ({}): name one with `archive = \"...\"`",
                d.name,
                names(many)
            )),
        }
    }

    /// recover-pitr: the archive, the window's ends, a new directory name.
    fn resolve_pitr(&self, i: usize, d: DbTarget, lenient: bool) -> Result<PitrRequest, String> {
        let step = self.step(i);
        let named = self.rendered(&step.archive)?;
        let archive = self.pick_archive(named.as_deref(), &d)?;
        let host = self.host_target(archive.host.get_ref())?;
        let time = |key: &str, a: &Option<crate::runbook::Located<Template>>| {
            let Some(t) = a else { return Ok(None) };
            let v = self.render(&t.value, lenient)?;
            if lenient && v.starts_with('<') {
                return Ok(None);
            }
            let v = v.trim();
            // Empty, or no journaled drop (the WAL alone decides).
            if v.is_empty() || v == EVIDENCE {
                return Ok(None);
            }
            DateTime::parse_from_rfc3339(v)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| {
                    format!("{key} '{v}' is not an RFC 3339 time (e.g. 2026-11-23T12:42:00Z)")
                })
        };
        let healthy_at = time("healthy_at", &step.healthy_at)?;
        let healthy_from_evidence = match &step.healthy_at {
            Some(t) => self.render(&t.value, lenient)?.trim() == EVIDENCE,
            None => false,
        };
        let damaged_at = time("damaged_at", &step.damaged_at)?;
        if let (Some(h), Some(x)) = (healthy_at, damaged_at)
            && h >= x
        {
            return Err(format!(
                "healthy_at {} is not before damaged_at {}: the window is empty",
                h.to_rfc3339(),
                x.to_rfc3339()
            ));
        }
        let mut base = sanitize(d.dbname());
        base.truncate(60);
        let name = format!("{base}-{}-{}", self.stamp(), self.steps[i].attempts + 1);
        let moved = match &step.target {
            Some(t) => {
                let v = self.render(&t.value, lenient)?;
                match v.trim() {
                    "" => None,
                    x if lenient && x.starts_with('<') => None,
                    x => Some(MovedTarget::parse(x)?),
                }
            }
            None => None,
        };
        Ok(PitrRequest {
            moved,
            healthy_from_evidence,
            database: d,
            archive,
            host,
            healthy_at,
            damaged_at,
            name,
            incident_dir: Some(self.ctx.incident_dir.clone()),
        })
    }

    /// choose-path: the archive covering the database (or why none does),
    /// the incident time, and the operator's forced choice with its source.
    fn resolve_choose(
        &self,
        i: usize,
        d: DbTarget,
        lenient: bool,
    ) -> Result<ChoosePathRequest, String> {
        let step = self.step(i);
        let named = self.rendered(&step.archive)?;
        let archive = self
            .pick_archive(named.as_deref(), &d)
            .and_then(|a| Ok((a.clone(), self.host_target(a.host.get_ref())?)));
        let incident_from_evidence = match &step.incident_at {
            Some(t) => self.render(&t.value, lenient)?.trim() == EVIDENCE,
            None => false,
        };
        let incident_at = match &step.incident_at {
            Some(t) => {
                let v = self.render(&t.value, lenient)?;
                let v = v.trim();
                if v.is_empty() || v == EVIDENCE || (lenient && v.starts_with('<')) {
                    None
                } else {
                    Some(
                        DateTime::parse_from_rfc3339(v)
                            .map_err(|_| {
                                format!("incident_at '{v}' is not an RFC 3339 time (e.g. 2026-11-23T12:42:00Z)")
                            })?
                            .with_timezone(&Utc),
                    )
                }
            }
            None => None,
        };
        let forced = match &step.force {
            Some(t) => {
                let v = self.render(&t.value, lenient)?;
                match v.trim() {
                    "" | "auto" => None,
                    x if lenient && x.starts_with('<') => None,
                    x => {
                        let p = PathChoice::parse(x).ok_or_else(|| {
                            format!(
                                "force '{x}' is not a path: use \"pitr\", \"dump\" or \"auto\" (decide from the archive)"
                            )
                        })?;
                        Some((p, self.source_of(&t.value)))
                    }
                }
            }
            None => None,
        };
        Ok(ChoosePathRequest {
            database: d,
            archive,
            incident_at,
            incident_from_evidence,
            forced,
            incident_dir: Some(self.ctx.incident_dir.clone()),
        })
    }

    /// Where a template's value came from, for the journal: the parameters it names and their sources.
    fn source_of(&self, t: &Template) -> String {
        let from: Vec<String> = t
            .refs()
            .filter_map(|(n, _)| {
                self.ctx
                    .params
                    .get(n)
                    .map(|p| format!("parameter '{n}' ({})", p.source))
            })
            .collect();
        if from.is_empty() {
            "the runbook".into()
        } else {
            from.join(", ")
        }
    }

    /// The path the run's choose-path step decided, with its reason.
    pub fn chosen_path(&self) -> Option<(PathChoice, String)> {
        (0..self.steps.len())
            .filter(|&j| self.step(j).action == Action::ChoosePath)
            .find_map(|j| {
                let o = self.steps[j].outcome.as_ref()?;
                let p = PathChoice::parse(o.get("path")?.as_str()?)?;
                let why = o
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                Some((p, why))
            })
    }

    /// The step a journal record or a reference names: ids are shared only
    /// by steps of different paths, so the one on the chosen path (the one
    /// that has an outcome, else the current one, else the first).
    pub fn index_of(&self, id: &str) -> Option<usize> {
        let all = self.ctx.runbook.step_indices(id);
        if all.len() <= 1 {
            return all.first().copied();
        }
        all.iter()
            .copied()
            .find(|&j| self.steps[j].outcome.is_some())
            .or_else(|| all.iter().copied().find(|&j| self.current == Some(j)))
            .or_else(|| {
                let p = self.chosen_path()?.0;
                self.ctx.runbook.step_on_path(id, Some(p))
            })
            .or_else(|| all.first().copied())
    }

    /// The manifest an earlier restore step of this run journaled for `dbname`.
    fn restore_manifest(&self, i: usize, dbname: &str) -> Option<Value> {
        self.earlier_outcomes(i, Action::Restore)
            .filter(|(_, o)| o.get("target_db").and_then(Value::as_str) == Some(dbname))
            .last()
            .and_then(|(_, o)| o.get("manifest").cloned())
    }

    /// verify: the database (or the restored one) with the restore's
    /// manifest and the picked backup's baseline.
    fn resolve_verify(
        &self,
        i: usize,
        d: DbTarget,
        lenient: bool,
    ) -> Result<VerifyRequest, String> {
        let step = self.step(i);
        let dbname = match &step.restored {
            Some(t) => self.render(&t.value, lenient)?,
            None => d.dbname().to_string(),
        };
        let manifest = self.restore_manifest(i, &dbname);
        let baseline = self
            .earlier_outcomes(i, Action::PickBackup)
            .last()
            .and_then(|(_, o)| o.get("baseline").cloned())
            .and_then(|v| serde_json::from_value(v).ok())
            .filter(|b: &BTreeMap<String, u64>| !b.is_empty());
        Ok(VerifyRequest {
            database: d,
            dbname,
            manifest,
            baseline,
        })
    }

    /// reapply-owners: the restored database (never the live name) and the
    /// owners its restore recorded as skipped.
    fn resolve_reapply(
        &self,
        i: usize,
        d: DbTarget,
        lenient: bool,
    ) -> Result<ReapplyRequest, String> {
        let step = self.step(i);
        let restored = match &step.restored {
            Some(t) => self.render(&t.value, lenient)?,
            None => return Err("no restored database".into()),
        };
        if restored == d.dbname() {
            return Err(format!(
                "the restored database is '{restored}', the live name itself: owners are re-applied before the swap"
            ));
        }
        let manifest = self.restore_manifest(i, &restored);
        if manifest.is_none() && !lenient {
            return Err(format!(
                "no restore step of this incident restored '{restored}': reapply-owners gives back only the owners a restore recorded"
            ));
        }
        let changes = manifest
            .as_ref()
            .and_then(|m| m.get("owners_skipped").cloned())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let database_owner = manifest
            .as_ref()
            .and_then(|m| m.get("database_owner"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(ReapplyRequest {
            database: d,
            restored,
            changes,
            database_owner,
        })
    }

    /// swap: the restored database takes the live name; the live one is
    /// kept under a derived name (none when it is gone).
    fn resolve_swap(&self, i: usize, d: DbTarget, lenient: bool) -> Result<SwapRequest, String> {
        let step = self.step(i);
        let restored = match &step.restored {
            Some(t) => self.render(&t.value, lenient)?,
            None => return Err("no restored database".into()),
        };
        if restored == d.dbname() {
            return Err(format!(
                "the restored database is '{restored}', the live name itself; nothing to swap"
            ));
        }
        let live_absent = self.steps[i]
            .shown
            .as_ref()
            .is_some_and(|id| id.oid.is_none());
        let damaged = if live_absent {
            None
        } else {
            Some(self.derived_name(d.dbname(), "damaged")?)
        };
        Ok(SwapRequest {
            database: d,
            restored,
            damaged,
        })
    }

    /// merge-tables: the tables to copy back from the restored database.
    fn resolve_merge(
        &self,
        step: &Step,
        d: DbTarget,
        lenient: bool,
    ) -> Result<MergeRequest, String> {
        let source = match &step.restored {
            Some(t) => self.render(&t.value, lenient)?,
            None => return Err("no restored database".into()),
        };
        if source == d.dbname() {
            return Err(format!(
                "the restored database is '{source}', the live name itself; nothing to merge from"
            ));
        }
        let list = match &step.tables {
            Some(t) => self.render(&t.value, lenient)?,
            None => String::new(),
        };
        let tables = split_tables(&list);
        if tables.is_empty() {
            return Err(format!(
                "step '{}' names no tables to merge: give them in the `tables` parameter (comma-separated)",
                step.id
            ));
        }
        Ok(MergeRequest {
            database: d,
            source,
            tables,
            replace: step.replace.clone(),
            policy: step.policy.unwrap_or(MergePolicy::LiveWins),
            transaction: step.transaction.unwrap_or(MergeTx::One),
        })
    }

    /// start-services: what every earlier stop-services step of the run
    /// stopped (all attempts), and the hazards the step names.
    fn resolve_start(&self, i: usize, database: Option<&DbTarget>) -> Result<StartRequest, String> {
        let step = self.step(i);
        // Every attempt of every earlier stop-services step: a rerun
        // after a failed hold finds units already stopped and masked,
        // so only the first attempt knows they were running.
        let mut stopped: Vec<StoppedService> = Vec::new();
        let reports = (0..i)
            .filter(|&j| self.step(j).action == Action::StopServices)
            .flat_map(|j| self.steps[j].stop_reports.iter());
        for o in reports {
            let same_db = match (&database, o.get("database").and_then(Value::as_str)) {
                (Some(d), Some(x)) => d.name == x,
                _ => true,
            };
            if !same_db {
                continue;
            }
            let Some(list) = o.get("detail") else {
                continue;
            };
            let Ok(v) = serde_json::from_value::<Vec<StoppedService>>(list.clone()) else {
                continue;
            };
            for sv in v {
                match stopped
                    .iter_mut()
                    .find(|x| x.host == sv.host && x.name == sv.name && x.kind == sv.kind)
                {
                    Some(x) => {
                        for c in sv.commands {
                            if !x.commands.contains(&c) {
                                x.commands.push(c);
                            }
                        }
                        if x.original_kept.is_none() {
                            x.original_kept = sv.original_kept;
                            x.kept_inode = sv.kept_inode;
                            x.kept_sha256 = sv.kept_sha256;
                        }
                        x.hazard |= sv.hazard;
                    }
                    None => stopped.push(sv),
                }
            }
        }
        let picked = step
            .services
            .iter()
            .map(|t| self.render(&t.value, false))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StartRequest {
            database: database.cloned(),
            stopped,
            picked,
        })
    }

    /// command: its template rendered for the shell (values quoted).
    fn resolve_command(
        &self,
        step: &Step,
        h: HostTarget,
        lenient: bool,
    ) -> Result<CommandRequest, String> {
        // Values are shell-quoted; only `{raw:...}` goes in as written.
        let look = |n: &str, p: &[String]| self.lookup(n, p);
        let command = match &step.command {
            Some(t) if lenient => t.value.render_shell_lenient(&look),
            Some(t) => t.value.render_shell(&look)?,
            None => return Err("no command".into()),
        };
        Ok(CommandRequest {
            host: h,
            command,
            timeout_s: step.timeout_s.unwrap_or(DEFAULT_COMMAND_TIMEOUT_S),
        })
    }

    // ---- guards -----------------------------------------------------------

    /// Why step `i` may not start now (its requirements), if so.
    pub fn unmet(&self, i: usize) -> Option<String> {
        let step = self.step(i);
        let db = self.step_db_name(i);
        let same_db = |j: usize| -> bool {
            match (
                &db,
                self.steps[j]
                    .outcome
                    .as_ref()
                    .and_then(|o| o.get("database")),
            ) {
                (Some(d), Some(Value::String(x))) => d == x,
                (Some(_), _) => self.step(j).database.is_none(),
                (None, _) => true,
            }
        };
        for r in &step.requires {
            let met = match r {
                Requirement::Snapshot
                    if db.as_ref().is_some_and(|d| self.overrides.contains(d)) =>
                {
                    true
                }
                _ => (0..i).any(|j| {
                    self.step(j).action == r.met_by()
                        && self.steps[j].status == StepStatus::Done
                        && (!r.per_database() || same_db(j))
                }),
            };
            if !met {
                let on = db
                    .as_deref()
                    .map(|d| format!(" of '{d}'"))
                    .unwrap_or_default();
                let why = match r {
                    Requirement::WritersStopped => format!(
                        "the writers{on} are not proven stopped: no stop-services step{on} passed its hold in this incident; run it first (a restore into a database that is still being written to is wasted or worse)"
                    ),
                    Requirement::Snapshot => format!(
                        "no snapshot{on} was taken in this incident, and no override was typed; run the snapshot step first"
                    ),
                    Requirement::BackupPicked => "no backup was picked yet".into(),
                    Requirement::Restored => "nothing was restored yet".into(),
                    Requirement::Verified => {
                        "no verify step passed yet; verify before going on".into()
                    }
                };
                return Some(format!("'{}' refused: {why}", step.id));
            }
        }
        // A destructive step never follows an unresolved snapshot failure.
        if step.destructive
            && let Some(d) = &db
        {
            for j in 0..i {
                if self.step(j).action == Action::Snapshot
                    && self.step_db_name(j).as_ref() == Some(d)
                    && !matches!(
                        self.steps[j].status,
                        StepStatus::Done | StepStatus::Overridden
                    )
                {
                    return Some(format!(
                        "'{}' refused: the snapshot '{}' of '{d}' did not succeed and was not overridden",
                        step.id,
                        self.step(j).id
                    ));
                }
            }
        }
        None
    }

    // ---- transitions -------------------------------------------------------

    fn plan(&mut self, fx: &mut Vec<Effect>) {
        // The path, when it is certain before anything runs (forced to dump, no archive).
        let mut known: Option<PathOutcome> = None;
        for i in 0..self.steps.len() {
            let skipped = match (self.step(i).path, &known) {
                (Some(p), Some(k)) if p != k.path => Some(format!(
                    "will be skipped: the {} path is taken ({})",
                    k.path, k.reason
                )),
                _ => None,
            };
            if let Some(why) = skipped {
                self.steps[i].summary = Some(why);
            } else {
                match self.resolve(i, true) {
                    Ok(r) => {
                        if let ActionRequest::ChoosePath(c) = &r.request {
                            known = c.decided();
                        }
                        self.steps[i].resolved = Some(r)
                    }
                    Err(e) => self.steps[i].error = Some(e),
                }
            }
            self.steps[i].status = StepStatus::Planned;
            fx.push(Effect::Emit(EngineEvent::Plan {
                step: self.step_view(i),
            }));
        }
        self.finish(RunExit::Planned, fx);
    }

    fn advance(&mut self, fx: &mut Vec<Effect>) {
        loop {
            let Some(i) = self.steps.iter().position(|s| !s.status.is_settled()) else {
                self.current = None;
                let exit = if self.refused > 0 {
                    RunExit::Refused {
                        count: self.refused,
                    }
                } else {
                    RunExit::Completed
                };
                self.finish(exit, fx);
                return;
            };
            self.current = Some(i);
            if self.steps[i].status == StepStatus::Interrupted {
                let q = Question::Interrupted(InterruptedRequest {
                    index: i,
                    step: self.step(i).id.clone(),
                    action: self.step(i).action,
                    destructive: self.step(i).destructive,
                    preview: self.resolve(i, true).map(|r| r.preview).unwrap_or_default(),
                });
                self.changed(
                    i,
                    "was in flight when the last run stopped: check before continuing",
                    fx,
                );
                fx.push(Effect::Emit(EngineEvent::Question {
                    question: q.clone(),
                }));
                fx.push(Effect::Ask(q));
                return;
            }
            if !self.begin(i, fx) {
                return;
            }
        }
    }

    /// Starts step `i`; true when it settled at once (refused) and the
    /// caller should go on to the next.
    fn begin(&mut self, i: usize, fx: &mut Vec<Effect>) -> bool {
        let step = self.step(i).clone();
        self.steps[i].error = None;
        if let Some(p) = step.path {
            match self.chosen_path() {
                Some((c, why)) if c != p => {
                    fx.push(Effect::Journal(
                        Entry::new(
                            kinds::STEP_SKIPPED,
                            format!("skipped: this step is on the {p} path and the {c} path was chosen ({why})"),
                        )
                        .step(&step.id)
                        .data(json!({
                            "action": step.action.as_str(),
                            "reason": "path",
                            "path": p.as_str(),
                            "chosen": c.as_str(),
                            "why": why,
                        })),
                    ));
                    self.steps[i].status = StepStatus::Skipped;
                    self.changed(i, &format!("not on the chosen {c} path"), fx);
                    return true;
                }
                Some(_) => {}
                None => {
                    let why = format!(
                        "step '{}' is on the {p} path, but no path was chosen in this run (the choose-path step did not finish); nothing was done",
                        step.id
                    );
                    self.fail(i, "guard", why, Value::Null, None, false, fx);
                    return false;
                }
            }
        }
        if self.ctx.readonly && !step.action.allowed_readonly() {
            fx.push(Effect::Journal(
                Entry::new(
                    kinds::STEP_SKIPPED,
                    format!("refused under --readonly: {}", step.explain),
                )
                .step(&step.id)
                .data(json!({ "action": step.action.as_str(), "reason": "readonly" })),
            ));
            self.steps[i].status = StepStatus::Refused;
            self.refused += 1;
            self.changed(i, "--readonly: probes and notes only", fx);
            return true;
        }
        let resolved = match self.resolve(i, false) {
            Ok(r) => r,
            Err(e) => {
                self.fail(i, "resolve", e, Value::Null, None, false, fx);
                return false;
            }
        };
        self.steps[i].resolved = Some(resolved.clone());
        if let Some(why) = self.unmet(i) {
            self.fail(i, "guard", why, Value::Null, None, false, fx);
            return false;
        }
        // A step that would change nothing asks no typed confirmation.
        if let ActionRequest::StartServices(s) = &resolved.request
            && s.changes_nothing(&self.ctx.inventory)
        {
            self.changed(
                i,
                "starts nothing (every stopped job stays off): no confirmation asked",
                fx,
            );
            self.start(i, fx);
            return false;
        }
        // A database to confirm: a destructive step, or one whose request needs a phrase.
        match (
            &resolved.database,
            step.destructive || resolved.database.is_some(),
        ) {
            (Some(db), true) => {
                self.steps[i].status = StepStatus::ReadingIdentity;
                self.changed(i, &format!("reading the identity of {}", db.display()), fx);
                fx.push(Effect::ReadIdentity {
                    step: i,
                    db: Box::new(db.clone()),
                    preview: Some(Box::new(resolved.request.clone())),
                });
            }
            _ => self.start(i, fx),
        }
        false
    }

    fn on_identity(
        &mut self,
        i: usize,
        result: Result<DbIdentity, String>,
        live_preview: Result<Vec<String>, String>,
        fx: &mut Vec<Effect>,
    ) {
        let target = self.steps[i]
            .resolved
            .as_ref()
            .and_then(|r| r.database.as_ref())
            .map(DbTarget::display)
            .unwrap_or_default();
        match self.steps[i].status {
            StepStatus::ReadingIdentity => match result {
                Err(e) => self.fail(
                    i,
                    "identity",
                    format!("cannot read the identity of {target}: {e}; nothing was done"),
                    Value::Null,
                    None,
                    false,
                    fx,
                ),
                Ok(id) => {
                    self.steps[i].shown = Some(id.clone());
                    let live_preview = match live_preview {
                        Ok(l) => l,
                        Err(e) => {
                            self.fail(
                                i,
                                "preview",
                                format!("cannot preview the step on {target}: {e}"),
                                Value::Null,
                                None,
                                false,
                                fx,
                            );
                            return;
                        }
                    };
                    // Resolve again: names stamped with this time, and what the identity showed.
                    let mut resolved = match self.resolve(i, false) {
                        Ok(r) => r,
                        Err(e) => {
                            self.fail(i, "resolve", e, Value::Null, None, false, fx);
                            return;
                        }
                    };
                    resolved.preview.extend(live_preview);
                    self.steps[i].resolved = Some(resolved.clone());
                    let Some(db) = resolved.database.as_ref() else {
                        return;
                    };
                    self.steps[i].status = StepStatus::AwaitingConfirmation;
                    let q = Question::Confirm(ConfirmRequest {
                        index: i,
                        step: self.step(i).id.clone(),
                        action: self.step(i).action,
                        expected: confirm_phrase(&resolved),
                        also: also_phrases(&resolved),
                        target: db.display(),
                        identity: id.clone(),
                        preview: resolved.preview.clone(),
                        backup: self.backup_at_stake(i, &resolved).map(Box::new),
                    });
                    self.changed(
                        i,
                        &format!(
                            "type '{}' to confirm; target {}",
                            confirm_phrase(&resolved),
                            id.describe()
                        ),
                        fx,
                    );
                    fx.push(Effect::Emit(EngineEvent::Question {
                        question: q.clone(),
                    }));
                    fx.push(Effect::Ask(q));
                }
            },
            StepStatus::CheckingGuard => {
                let Some(confirmed) = self.steps[i].confirmed.clone() else {
                    return;
                };
                match result {
                    Err(e) => self.fail(
                        i,
                        "guard",
                        format!("cannot re-read the identity of {target} right before acting: {e}; nothing was done"),
                        Value::Null,
                        None,
                        false,
                        fx,
                    ),
                    Ok(now) if !now.same_as(&confirmed) => {
                        let db = self.step_db_name(i).unwrap_or_default();
                        fx.push(Effect::Journal(
                            Entry::new(
                                kinds::IDENTITY_CHANGED,
                                format!(
                                    "{target} changed between confirmation and action: {} -> {}",
                                    confirmed.describe(),
                                    now.describe()
                                ),
                            )
                            .step(&self.step(i).id)
                            .target(&target)
                            .data(json!({ "database": db, "before": confirmed, "after": now })),
                        ));
                        self.fail(
                            i,
                            "guard",
                            format!(
                                "the database is not the one you confirmed: you confirmed {}, it is now {}; nothing was done (look at what changed, then resume)",
                                confirmed.describe(),
                                now.describe()
                            ),
                            json!({ "confirmed": confirmed, "found": now }),
                            None,
                            false,
                            fx,
                        );
                    }
                    Ok(_) => self.start(i, fx),
                }
            }
            _ => {}
        }
    }

    fn on_confirmation(&mut self, i: usize, typed: Option<String>, fx: &mut Vec<Effect>) {
        let Some(resolved) = self.steps[i].resolved.clone() else {
            return;
        };
        let Some(db) = resolved.database.as_ref() else {
            return;
        };
        let expected = confirm_phrase(&resolved);
        let what = match resolved.request {
            ActionRequest::MergeTables(_) | ActionRequest::RecoverPitr(_) => {
                "the confirmation phrase"
            }
            _ => "the database name",
        };
        let id = self.step(i).id.clone();
        // A restore whose role may be missing: the longer phrase also lets
        // lifeline create it (LOGIN only), and the request says so.
        let mut expected = expected;
        let mut updated = resolved.clone();
        if let ActionRequest::Restore(q) = &mut updated.request
            && let RestoreAs::Role { name, create, .. } = &mut q.restore_as
        {
            let phrase = RestoreAs::create_phrase(q.database.dbname(), name);
            if typed.as_deref().map(str::trim) == Some(phrase.as_str()) {
                *create = true;
                expected = phrase;
                self.steps[i].resolved = Some(updated.clone());
            }
        }
        // A moved recovery target: the longer phrase accepts a target after the damage.
        if let ActionRequest::RecoverPitr(p) = &mut updated.request
            && let Some(past) = p.past_phrase()
            && typed.as_deref().map(str::trim) == Some(past.as_str())
            && let Some(m) = &mut p.moved
        {
            m.past_damage = true;
            expected = past;
            self.steps[i].resolved = Some(updated.clone());
        }
        match typed {
            None => self.fail(
                i,
                "confirm",
                format!(
                    "not confirmed: type {what} '{expected}' (headless: add `{id} = \"{expected}\"` under [confirm] in the answers file); nothing was done"
                ),
                Value::Null,
                None,
                false,
                fx,
            ),
            Some(t) if t.trim() != expected => {
                // A name that only looks like the target (case, confusable,
                // invisible character, restore/damaged copy) is another
                // database: the refusal names both, escaped so they differ.
                let typed = t.trim();
                let msg = match crate::lookalike::compare(typed, &expected) {
                    Some(kinds) => {
                        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
                        format!(
                            "typed '{}' which only looks like '{}' ({}): that is another database, not the one this step acts on; nothing was done",
                            crate::lookalike::show(typed),
                            crate::lookalike::show(&expected),
                            kinds.join(", ")
                        )
                    }
                    None => format!(
                        "typed '{typed}' but {} is '{expected}'; nothing was done",
                        what.replace(" name", "")
                    ),
                };
                self.fail(
                    i,
                    "confirm",
                    msg,
                    json!({ "typed": typed, "expected": expected }),
                    None,
                    false,
                    fx,
                )
            }
            Some(t) => {
                let shown = self.steps[i].shown.clone();
                let mut data = json!({
                    "action": self.step(i).action.as_str(),
                    "database": db.name,
                    "typed": t.trim(),
                    "identity": shown,
                    "preview": resolved.preview,
                });
                if let Some(ActionRequest::RecoverPitr(p)) =
                    self.steps[i].resolved.as_ref().map(|r| &r.request)
                    && let Some(m) = &p.moved
                {
                    data["moved_target"] = json!(m);
                }
                fx.push(Effect::Journal(
                    Entry::new(
                        kinds::CONFIRMED,
                        format!("operator typed '{}' to confirm {}", t.trim(), self.step(i).action),
                    )
                    .step(&id)
                    .target(db.display())
                    .data(data),
                ));
                self.steps[i].confirmed = shown;
                self.steps[i].status = StepStatus::CheckingGuard;
                self.changed(i, "confirmed; re-reading the identity right before acting", fx);
                fx.push(Effect::ReadIdentity {
                    step: i,
                    db: Box::new(db.clone()),
                    preview: None,
                });
            }
        }
    }

    /// The pick-backup step a restore (step `i`, resolved as `r`) is held
    /// to: the last earlier finished pick whose backup it reads.
    fn restore_pick(&self, i: usize, r: &ResolvedStep) -> Option<(usize, Value)> {
        let ActionRequest::Restore(q) = &r.request else {
            return None;
        };
        let picked = q.picked.as_ref()?;
        let (j, o) = self.earlier_outcomes(i, Action::PickBackup).last()?;
        (o.pointer("/backup/path").and_then(Value::as_str) == Some(picked.path.as_str()))
            .then(|| (j, o.clone()))
    }

    /// What a restore's confirmation shows of the backup it reads.
    fn backup_at_stake(&self, i: usize, r: &ResolvedStep) -> Option<BackupAtStake> {
        let (j, o) = self.restore_pick(i, r)?;
        let picked: PickedBackup = serde_json::from_value(o.get("backup")?.clone()).ok()?;
        let candidates: Vec<BackupCandidate> =
            serde_json::from_value(o.get("candidates")?.clone()).ok()?;
        let c = candidates.iter().find(|c| c.path == picked.path)?;
        let baseline: BTreeMap<String, u64> = o
            .get("baseline")
            .cloned()
            .and_then(|b| serde_json::from_value(b).ok())
            .unwrap_or_default();
        let rows_lost = match &c.rows {
            Some(rows) => baseline
                .iter()
                .filter_map(|(t, h)| {
                    let lost = h.saturating_sub(rows.get(t).copied().unwrap_or(0));
                    (lost > 0).then(|| (t.clone(), lost))
                })
                .collect(),
            None => BTreeMap::new(),
        };
        Some(BackupAtStake {
            pick_step: self.step(j).id.clone(),
            name: c.name.clone(),
            path: c.path.clone(),
            taken_at: c.taken_at,
            time_source: c.time_source.clone(),
            rpo_s: c.rpo_s,
            rows_lost,
            rows_known: c.rows.is_some(),
            label: c.label.clone(),
            preselected: o
                .pointer("/preselected/name")
                .and_then(Value::as_str)
                .unwrap_or(&c.name)
                .to_string(),
            reason: o
                .pointer("/choice/reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            eligible: candidates
                .iter()
                .filter(|c| c.excluded.is_none())
                .map(|c| EligibleBackup {
                    name: c.name.clone(),
                    suspect: suspect_reason(c),
                })
                .collect(),
        })
    }

    /// The operator chose another candidate for the restore waiting for
    /// its confirmation: checked against the pick's candidates, journaled
    /// (`backup-chosen`) before it counts, then the confirmation is asked
    /// again naming the chosen backup. A refused choice stops the step;
    /// nothing was done.
    fn on_choose(&mut self, i: usize, choice: BackupChoice, fx: &mut Vec<Effect>) {
        let Some(resolved) = self.steps[i].resolved.clone() else {
            return;
        };
        let Some((j, o)) = self.restore_pick(i, &resolved) else {
            let msg = format!(
                "{}: step '{}' does not restore a picked backup: there is no backup to choose; nothing was done",
                choice.source,
                self.step(i).id
            );
            self.fail(i, "choose", msg, Value::Null, None, false, fx);
            return;
        };
        let pick_id = self.step(j).id.clone();
        let (outcome, chosen, preselected) = match choose_in(&o, &choice.name, &choice.reason) {
            Ok(x) => x,
            Err(e) => {
                let msg = format!("{}: {e}; nothing was done", choice.source);
                let data = json!({ "chosen": choice.name, "pick": pick_id });
                self.fail(i, "choose", msg, data, None, false, fx);
                return;
            }
        };
        let suspect = suspect_reason(&chosen);
        let typed = choice.typed.as_deref().map(str::trim);
        if let Some(why) = &suspect
            && typed != Some(chosen.name.as_str())
        {
            let msg = format!(
                "{}: '{}' is suspect ({why}): choosing it needs its name typed ('{}'{}); nothing was done",
                choice.source,
                chosen.name,
                chosen.name,
                match typed {
                    Some(t) => format!(", typed '{t}'"),
                    None => String::new(),
                }
            );
            self.fail(
                i,
                "choose",
                msg,
                json!({ "chosen": chosen.name }),
                None,
                false,
                fx,
            );
            return;
        }
        if choice.reason.trim().is_empty() {
            let msg = format!(
                "{}: choosing '{}' needs a reason (it is journaled); nothing was done",
                choice.source, chosen.name
            );
            self.fail(
                i,
                "choose",
                msg,
                json!({ "chosen": chosen.name }),
                None,
                false,
                fx,
            );
            return;
        }
        let picked = outcome.get("backup").cloned().unwrap_or(Value::Null);
        fx.push(Effect::Journal(
            Entry::new(
                BACKUP_CHOSEN,
                format!(
                    "operator chose backup '{}' instead of '{}' for step '{}': {}",
                    chosen.name,
                    preselected.name,
                    self.step(i).id,
                    choice.reason.trim()
                ),
            )
            .step(&pick_id)
            .data(json!({
                "chosen": picked,
                "preselected": preselected,
                "reason": choice.reason.trim(),
                "suspect": suspect,
                "typed": typed,
                "source": choice.source,
                "at_step": self.step(i).id,
                "rpo_s": chosen.rpo_s,
            })),
        ));
        self.steps[j].outcome = Some(outcome);
        self.steps[i].status = StepStatus::Pending;
        self.steps[i].shown = None;
        self.changed(
            i,
            &format!("backup '{}' chosen; asking again", chosen.name),
            fx,
        );
        if self.begin(i, fx) {
            self.advance(fx);
        }
    }

    fn start(&mut self, i: usize, fx: &mut Vec<Effect>) {
        let Some(resolved) = self.steps[i].resolved.clone() else {
            return;
        };
        let step = self.step(i).clone();
        self.steps[i].attempts += 1;
        self.steps[i].status = StepStatus::Running;
        let mut entry = Entry::new(kinds::STEP_STARTED, step.explain.clone())
            .step(&step.id)
            .command(resolved.preview.join("\n"))
            .data(json!({
                "action": step.action.as_str(),
                "destructive": step.destructive,
                "database": self.step_db_name(i),
                "preview": resolved.preview,
                "identity": self.steps[i].confirmed,
                "attempt": self.steps[i].attempts,
                "path": step.path.map(PathChoice::as_str),
            }));
        if let Some(t) = &resolved.target {
            entry = entry.target(t);
        }
        fx.push(Effect::Journal(entry));
        self.changed(i, &step.explain, fx);
        fx.push(Effect::Run {
            step: i,
            resolved: Box::new(resolved),
        });
    }

    fn on_done(
        &mut self,
        i: usize,
        result: Result<StepOutcome, StepFailure>,
        duration_ms: u64,
        fx: &mut Vec<Effect>,
    ) {
        let step = self.step(i).clone();
        let mut out = match result {
            Ok(o) => o,
            Err(e) => {
                let snapshot = step.action == Action::Snapshot;
                let data = json!({ "class": e.class });
                self.fail(i, "act", e.message, data, Some(duration_ms), snapshot, fx);
                return;
            }
        };
        let mut data = match std::mem::take(&mut out.data) {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("result".into(), other);
                m
            }
        };
        data.insert("action".into(), json!(step.action.as_str()));
        // The inventory database, unless the action reported its own (verify: the one it checked).
        if let Some(db) = self.step_db_name(i) {
            data.entry("database").or_insert(json!(db));
        }
        if step.action == Action::Verify
            && out.verdict == Verdict::Ok
            && let Some(base) = &step.compare_to
            && let Some(j) = self.index_of(base)
        {
            let before = counts(self.steps[j].outcome.as_ref().and_then(|o| o.get("counts")));
            let after = counts(data.get("counts"));
            let vanished = vanished_rows(&before, &after);
            if !vanished.is_empty() {
                let list: Vec<String> = vanished
                    .iter()
                    .map(|(t, b, a)| match a {
                        Some(a) => format!("'{t}' {b} -> {a}"),
                        None => format!("'{t}' {b} -> table gone"),
                    })
                    .collect();
                data.insert("vanished".into(), json!(vanished));
                out.verdict = Verdict::Damage(format!(
                    "rows vanished since '{base}': {}; the deploy is NOT done (snapshot kept)",
                    list.join(", ")
                ));
            }
        }
        let data = Value::Object(data);
        if step.action == Action::StopServices && data.get("detail").is_some_and(Value::is_array) {
            self.steps[i].stop_reports.push(data.clone());
        }
        match out.verdict.clone() {
            Verdict::Ok => {
                let mut e = Entry::new(kinds::STEP_FINISHED, out.summary.clone())
                    .step(&step.id)
                    .duration_ms(duration_ms)
                    .data(data.clone());
                if let Some(x) = out.exit {
                    e = e.exit(x);
                }
                if let Some(t) = self.steps[i]
                    .resolved
                    .as_ref()
                    .and_then(|r| r.target.clone())
                {
                    e = e.target(t);
                }
                fx.push(Effect::Journal(e));
                self.steps[i].status = StepStatus::Done;
                self.steps[i].outcome = Some(data);
                self.steps[i].summary = Some(out.summary.clone());
                self.changed(i, &out.summary, fx);
                self.advance(fx);
            }
            Verdict::Failed(msg) => {
                let snapshot = step.action == Action::Snapshot;
                self.fail(i, "act", msg, data, Some(duration_ms), snapshot, fx);
            }
            Verdict::Damage(msg) => {
                self.steps[i].outcome = Some(data.clone());
                self.journal_failed(i, "act", &msg, data, Some(duration_ms), out.exit, fx);
                self.steps[i].status = StepStatus::Failed;
                self.steps[i].error = Some(msg.clone());
                self.changed(i, &msg, fx);
                self.finish(
                    RunExit::Damage {
                        step: step.id.clone(),
                        reason: msg,
                    },
                    fx,
                );
            }
        }
    }

    fn on_override(&mut self, i: usize, typed: Option<String>, fx: &mut Vec<Effect>) {
        let id = self.step(i).id.clone();
        let db = self.step_db_name(i).unwrap_or_default();
        match typed {
            Some(t) if t.trim() == OVERRIDE_PHRASE => {
                fx.push(Effect::Journal(
                    Entry::new(
                        kinds::CONFIRMED,
                        format!(
                            "operator typed '{OVERRIDE_PHRASE}': destructive steps on '{db}' go on without a snapshot"
                        ),
                    )
                    .step(&id)
                    .data(json!({
                        "action": self.step(i).action.as_str(),
                        "override": "snapshot",
                        "database": db,
                        "typed": t.trim(),
                    })),
                ));
                self.overrides.insert(db);
                self.steps[i].status = StepStatus::Overridden;
                self.changed(i, "snapshot failed; overridden by the operator", fx);
                self.advance(fx);
            }
            other => {
                let reason = format!(
                    "the snapshot failed ({}) and {}; destructive steps stay blocked. Fix the snapshot and resume, or type '{OVERRIDE_PHRASE}' (headless: `{id} = \"{OVERRIDE_PHRASE}\"` under [override])",
                    self.steps[i].error.clone().unwrap_or_default(),
                    match other {
                        Some(t) => format!("'{}' is not the override phrase", t.trim()),
                        None => "no override was given".to_string(),
                    }
                );
                self.steps[i].status = StepStatus::Failed;
                self.changed(i, &reason, fx);
                self.finish(RunExit::Failed { step: id, reason }, fx);
            }
        }
    }

    fn on_interrupted(&mut self, i: usize, decision: Option<Decision>, fx: &mut Vec<Effect>) {
        let id = self.step(i).id.clone();
        match decision {
            None => {
                let reason = format!(
                    "step '{id}' was in flight when the last run stopped (interrupted: check before continuing); look at what it did, then resume with `{id} = \"rerun\"` or `{id} = \"skip\"` under [interrupted] in the answers file"
                );
                self.finish(RunExit::Stopped { reason }, fx);
            }
            Some(Decision::Rerun) => {
                fx.push(Effect::Journal(
                    Entry::new(
                        kinds::CONFIRMED,
                        format!("interrupted step '{id}' checked by the operator: run it again"),
                    )
                    .step(&id)
                    .data(json!({ "action": self.step(i).action.as_str(), "interrupted": true, "decision": "rerun" })),
                ));
                self.steps[i].status = StepStatus::Pending;
                self.advance(fx);
            }
            Some(Decision::Skip) => {
                fx.push(Effect::Journal(
                    Entry::new(
                        kinds::STEP_SKIPPED,
                        format!("interrupted step '{id}' checked by the operator and skipped"),
                    )
                    .step(&id)
                    .data(json!({ "action": self.step(i).action.as_str(), "reason": "interrupted", "decision": "skip" })),
                ));
                self.steps[i].status = StepStatus::Skipped;
                self.changed(i, "interrupted; skipped by the operator", fx);
                self.advance(fx);
            }
        }
    }

    fn on_journal_failed(
        &mut self,
        kind: &str,
        step: Option<usize>,
        error: &str,
        fx: &mut Vec<Effect>,
    ) {
        let performed = kind == kinds::STEP_FINISHED || kind == kinds::STEP_FAILED;
        let reason = if performed {
            format!(
                "the step ran, but its outcome could not be journaled ({error}); it will show as interrupted on resume"
            )
        } else {
            format!(
                "the journal could not be written ({error}); nothing was done: no action without a journal line"
            )
        };
        let id = step.map(|i| self.step(i).id.clone()).unwrap_or_default();
        if let Some(i) = step {
            self.steps[i].status = StepStatus::Failed;
            self.steps[i].error = Some(reason.clone());
            self.changed(i, &reason, fx);
        }
        self.finish(RunExit::Failed { step: id, reason }, fx);
    }

    #[allow(clippy::too_many_arguments)]
    fn journal_failed(
        &self,
        i: usize,
        phase: &str,
        msg: &str,
        data: Value,
        duration_ms: Option<u64>,
        exit: Option<i32>,
        fx: &mut Vec<Effect>,
    ) {
        let step = self.step(i);
        let mut d = match data {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("result".into(), other);
                m
            }
        };
        d.insert("action".into(), json!(step.action.as_str()));
        d.insert("phase".into(), json!(phase));
        d.insert("error".into(), json!(msg));
        d.entry("class")
            .or_insert_with(|| json!(StepFailure::class_of_phase(phase)));
        if let Some(db) = self.step_db_name(i) {
            d.entry("database").or_insert(json!(db));
        }
        let mut e = Entry::new(kinds::STEP_FAILED, msg.to_string())
            .step(&step.id)
            .data(Value::Object(d));
        if let Some(ms) = duration_ms {
            e = e.duration_ms(ms);
        }
        if let Some(x) = exit {
            e = e.exit(x);
        }
        if let Some(t) = self.steps[i]
            .resolved
            .as_ref()
            .and_then(|r| r.target.clone())
        {
            e = e.target(t);
        }
        fx.push(Effect::Journal(e));
    }

    /// Journals the failure and ends the run (or, for a snapshot, asks for the override).
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        i: usize,
        phase: &str,
        msg: String,
        data: Value,
        duration_ms: Option<u64>,
        snapshot: bool,
        fx: &mut Vec<Effect>,
    ) {
        self.journal_failed(i, phase, &msg, data, duration_ms, None, fx);
        self.steps[i].error = Some(msg.clone());
        if snapshot {
            self.steps[i].status = StepStatus::AwaitingOverride;
            let id = self.step(i).id.clone();
            let q = Question::Override(OverrideRequest {
                index: i,
                step: id,
                database: self.step_db_name(i).unwrap_or_default(),
                reason: msg.clone(),
                phrase: OVERRIDE_PHRASE.into(),
            });
            self.changed(
                i,
                &format!(
                    "{msg}; destructive steps are blocked unless you type '{OVERRIDE_PHRASE}'"
                ),
                fx,
            );
            fx.push(Effect::Emit(EngineEvent::Question {
                question: q.clone(),
            }));
            fx.push(Effect::Ask(q));
            return;
        }
        self.steps[i].status = StepStatus::Failed;
        self.changed(i, &msg, fx);
        self.finish(
            RunExit::Failed {
                step: self.step(i).id.clone(),
                reason: msg,
            },
            fx,
        );
    }

    fn finish(&mut self, exit: RunExit, fx: &mut Vec<Effect>) {
        self.exit = Some(exit.clone());
        fx.push(Effect::Emit(EngineEvent::RunFinished {
            code: exit.code(),
            exit: exit.clone(),
        }));
        fx.push(Effect::Finish(exit));
    }

    fn changed(&self, i: usize, detail: &str, fx: &mut Vec<Effect>) {
        fx.push(Effect::Emit(EngineEvent::StepChanged {
            index: i,
            id: self.step(i).id.clone(),
            action: self.step(i).action,
            status: self.steps[i].status,
            detail: detail.to_string(),
        }));
    }

    // ---- views ------------------------------------------------------------

    pub fn step_view(&self, i: usize) -> StepView {
        let step = self.step(i);
        let st = &self.steps[i];
        let resolved = st.resolved.clone().or_else(|| self.resolve(i, true).ok());
        StepView {
            index: i,
            id: step.id.clone(),
            action: step.action,
            explain: step.explain.clone(),
            destructive: step.destructive,
            requires: step
                .requires
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            status: st.status,
            target: resolved.as_ref().and_then(|r| r.target.clone()),
            confirm: resolved
                .as_ref()
                .filter(|r| r.database.is_some())
                .map(confirm_phrase),
            preview: resolved.map(|r| r.preview).unwrap_or_default(),
            summary: st.summary.clone(),
            error: st.error.clone(),
            attempts: st.attempts,
            path: step.path.map(|p| p.as_str().to_string()),
        }
    }

    pub fn view(&self) -> EngineView {
        EngineView {
            incident: self.ctx.incident.clone(),
            runbook: self.ctx.runbook.id.clone(),
            title: self.ctx.runbook.title.clone(),
            dry_run: self.ctx.dry_run,
            readonly: self.ctx.readonly,
            resumed: self.resumed,
            current: self.current,
            steps: (0..self.steps.len()).map(|i| self.step_view(i)).collect(),
            exit: self.exit.clone(),
        }
    }
}

/// A pick-backup outcome (journaled `data`) with `name` (a candidate's
/// name or path) as its backup: Err naming the eligible candidates when it
/// is not one of them. Returns the new outcome, the chosen candidate and
/// the preselection (the first pick's, across several choices).
pub fn choose_in(
    outcome: &Value,
    name: &str,
    reason: &str,
) -> Result<(Value, BackupCandidate, PickedBackup), String> {
    let candidates: Vec<BackupCandidate> = outcome
        .get("candidates")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();
    let current: PickedBackup = outcome
        .get("backup")
        .cloned()
        .and_then(|b| serde_json::from_value(b).ok())
        .ok_or_else(|| "the pick names no backup".to_string())?;
    let preselected: PickedBackup = outcome
        .get("preselected")
        .cloned()
        .and_then(|b| serde_json::from_value(b).ok())
        .unwrap_or_else(|| current.clone());
    let eligible: Vec<String> = candidates
        .iter()
        .filter(|c| c.excluded.is_none())
        .map(|c| format!("'{}'", c.name))
        .collect();
    let list = if eligible.is_empty() {
        "none".to_string()
    } else {
        eligible.join(", ")
    };
    let name = name.trim();
    let Some(c) = candidates.iter().find(|c| c.name == name || c.path == name) else {
        return Err(format!(
            "'{name}' is not a candidate of the pick (eligible: {list})"
        ));
    };
    if let Some(why) = &c.excluded {
        return Err(format!(
            "'{}' is not eligible: {why} (eligible: {list})",
            c.name
        ));
    }
    let mut o = outcome.clone();
    if let Value::Object(m) = &mut o {
        let chosen = PickedBackup::from_candidate(c, current.source.clone());
        m.insert("backup".into(), json!(chosen));
        m.insert("rpo_s".into(), json!(c.rpo_s));
        m.insert("preselected".into(), json!(preselected));
        m.insert(
            "choice".into(),
            json!({ "name": c.name, "reason": reason.trim() }),
        );
    }
    Ok((o, c.clone(), preselected))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn counts(v: Option<&Value>) -> BTreeMap<String, i64> {
    v.and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Tables that lost rows between `before` and `after`: (table, before, after or None if gone).
pub fn vanished_rows(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> Vec<(String, i64, Option<i64>)> {
    before
        .iter()
        .filter_map(|(t, b)| match after.get(t) {
            Some(a) if a < b => Some((t.clone(), *b, Some(*a))),
            None if *b > 0 => Some((t.clone(), *b, None)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
