//! The console's command side: `UiCommand`s in, engine runs, notes and
//! exports out. A runbook runs on the console's own journal (shared with
//! the samplers) with the real actions and the operator's typed answers.
//! Nothing here acts without the engine's journal line first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{OpenIncident, export_format};
use crate::actions::RealActions;
use crate::actions::hosts::frozen;
use crate::actions::hosts::review::{PlanReviewer, Review, ReviewRequest, StopPlanProposal};
use crate::engine::driver::Answer;
use crate::engine::{
    Answers, ChannelOperator, Decision, Engine, EngineEvent, EngineView, Question, Recorder,
    RunExit, RunSpec, StepStatus,
};
use crate::inventory::Inventory;
use crate::journal::{Entry, JournalError, Record, kinds};
use crate::redact::Redactor;
use crate::runbook::{self, Runbook};
use crate::state::StateDir;
use crate::timeline::SharedJournal;
use crate::tui::model::{PendingConfirm, Progress, RunbookState, StepState, StepView};
use crate::tui::stop_plan::{PlanRow, StopPlanView};

use crate::tui::plan::{PlanPreview, PlanStep};
use crate::tui::{ExportFormat, UiCommand, UiEvent};

/// The engine's recorder on the console's shared journal.
pub struct SharedRecorder(pub SharedJournal);

impl Recorder for SharedRecorder {
    fn append(&mut self, entry: Entry) -> Result<Record, JournalError> {
        match self.0.lock() {
            Ok(mut j) => j.append(entry),
            Err(_) => Err(JournalError::Io {
                path: "(shared journal)".into(),
                source: std::io::Error::other("journal lock poisoned by a panic elsewhere"),
            }),
        }
    }
}

/// Everything the command side needs.
pub struct Controller {
    pub inventory: Inventory,
    pub inventory_path: PathBuf,
    pub state: StateDir,
    pub incident: OpenIncident,
    pub redactor: Redactor,
    pub operator: String,
    pub readonly: bool,
    /// Runbooks in flight in the journal when the console opened.
    pub in_flight: Vec<String>,
    /// The database the operator selected (`:db NAME`): the value of a
    /// runbook's database parameter that has no default.
    pub selected_db: Option<String>,
    /// Parameter values known before the console opened (`ConsoleArgs::params`).
    pub params: std::collections::BTreeMap<String, String>,
}

/// A stop plan waiting for the operator: its step and where the answer goes.
type PendingPlan = Arc<Mutex<Option<(String, oneshot::Sender<Review>)>>>;

/// A runbook being run.
struct Running {
    answers: mpsc::Sender<Answer>,
    /// A stop plan the engine's stop-services waits on (the checklist).
    plan: PendingPlan,
    review: JoinHandle<()>,
    /// What the pending question is (confirm/override vs interrupted).
    pending: watch::Receiver<Option<Question>>,
    join: JoinHandle<RunExit>,
    forward: JoinHandle<()>,
}

/// Serves commands until Quit or the console is gone.
pub async fn serve(
    mut ctl: Controller,
    mut rx: mpsc::Receiver<UiCommand>,
    tx: mpsc::Sender<UiEvent>,
) {
    let mut running: Option<Running> = None;
    while let Some(cmd) = rx.recv().await {
        if running.as_ref().is_some_and(|r| r.join.is_finished()) {
            running = None;
        }
        match cmd {
            UiCommand::Quit => break,
            UiCommand::Note(text) => {
                let r = append(&ctl.incident.journal, Entry::new(kinds::NOTE, text));
                let msg = match r {
                    Ok(rec) => format!("note journaled (#{})", rec.seq),
                    Err(e) => format!("the note was NOT journaled: {e}"),
                };
                let _ = tx.send(UiEvent::Status(msg)).await;
            }
            UiCommand::AckAlerts { upto_seq, count } => {
                let entry = Entry::new(
                    crate::timeline::detect::ALERT_ACK,
                    format!(
                        "operator acknowledged {} (up to journal #{upto_seq})",
                        crate::tui::strings::alerts(count)
                    ),
                )
                .data(serde_json::json!({ "upto_seq": upto_seq, "count": count }));
                let msg = match append(&ctl.incident.journal, entry) {
                    Ok(rec) => crate::tui::strings::acked(count, rec.seq),
                    Err(e) => format!("the acknowledgement was NOT journaled: {e}"),
                };
                let _ = tx.send(UiEvent::Status(msg)).await;
            }
            UiCommand::Export(f) => {
                let msg = match export(&ctl, f) {
                    Ok(p) => format!("export written to {}", p.display()),
                    Err(e) => format!("export failed: {e}"),
                };
                let _ = tx.send(UiEvent::Status(msg)).await;
            }
            UiCommand::PitrTarget(t) => {
                let msg = match pitr_target_param(&t) {
                    Ok(v) => {
                        let entry = Entry::new(
                            kinds::NOTE,
                            match &v {
                                Some(v) => format!("operator moved the recovery target of the pitr path to '{v}' (recover-pitr asks for a typed phrase naming it)"),
                                None => "operator set the recovery target of the pitr path back to the one found in the WAL".to_string(),
                            },
                        )
                        .data(serde_json::json!({ "pitr_target": v }));
                        match append(&ctl.incident.journal, entry) {
                            Ok(rec) => {
                                match v {
                                    Some(v) => ctl.params.insert("pitr_target".into(), v),
                                    None => ctl.params.remove("pitr_target"),
                                };
                                format!(
                                    "recovery target journaled (#{}): applies to the next runbook started",
                                    rec.seq
                                )
                            }
                            Err(e) => format!(
                                "the recovery target was NOT set: it could not be journaled: {e}"
                            ),
                        }
                    }
                    Err(e) => e,
                };
                let _ = tx.send(UiEvent::Status(msg)).await;
            }
            UiCommand::Path(p) => {
                let v = (p != "auto").then_some(p);
                let entry = Entry::new(
                    kinds::NOTE,
                    match &v {
                        Some(v) => format!("operator forced the {v} path for the next incident runbook (choose-path journals it as forced)"),
                        None => "operator let choose-path decide the path again".to_string(),
                    },
                )
                .data(serde_json::json!({ "path": v }));
                let msg = match append(&ctl.incident.journal, entry) {
                    Ok(rec) => {
                        match v {
                            Some(v) => ctl.params.insert("path".into(), v),
                            None => ctl.params.remove("path"),
                        };
                        format!(
                            "path journaled (#{}): applies to the next runbook started",
                            rec.seq
                        )
                    }
                    Err(e) => format!("the path was NOT set: it could not be journaled: {e}"),
                };
                let _ = tx.send(UiEvent::Status(msg)).await;
            }
            UiCommand::SelectDb(db) => {
                ctl.selected_db = Some(db.clone());
                let _ = tx
                    .send(UiEvent::Status(format!("acting on database '{db}'")))
                    .await;
            }
            UiCommand::PreviewRunbook(name) => {
                let plan = preview(&ctl, &name, running.is_some());
                let _ = tx.send(UiEvent::Plan(Box::new(plan))).await;
            }
            UiCommand::StartRunbook(name) => {
                if running.is_some() {
                    let _ = tx
                        .send(UiEvent::Status(
                            "a runbook is running: finish or abort it (a) before starting another"
                                .into(),
                        ))
                        .await;
                    continue;
                }
                // Pids an earlier run left frozen are continued first (as `run --resume` does).
                if !ctl.readonly {
                    resolve_frozen(&ctl, false, &tx).await;
                }
                match start(&mut ctl, &name, None, &tx) {
                    Ok(r) => running = Some(r),
                    Err(lines) => {
                        let _ = tx.send(UiEvent::Status(lines.join("; "))).await;
                    }
                }
            }
            UiCommand::Retry { runbook, step } => {
                if running.is_some() {
                    let _ = tx
                        .send(UiEvent::Status(
                            "a runbook is running: a failed step is retried once it has stopped"
                                .into(),
                        ))
                        .await;
                    continue;
                }
                if ctl.readonly {
                    let _ = tx
                        .send(UiEvent::Status(
                            "--readonly: nothing is run, so nothing is retried".into(),
                        ))
                        .await;
                    continue;
                }
                resolve_frozen(&ctl, false, &tx).await;
                match start(&mut ctl, &runbook, Some(&step), &tx) {
                    Ok(r) => {
                        running = Some(r);
                        let _ = tx
                            .send(UiEvent::Status(format!(
                                "retrying step '{step}' of runbook '{runbook}' (journaled)"
                            )))
                            .await;
                    }
                    Err(lines) => {
                        let _ = tx.send(UiEvent::Status(lines.join("; "))).await;
                    }
                }
            }
            UiCommand::Confirm { step, typed } => {
                let Some(r) = &running else {
                    let _ = tx
                        .send(UiEvent::Status(format!(
                            "no runbook waits for a confirmation of '{step}'"
                        )))
                        .await;
                    continue;
                };
                let answer = match &*r.pending.borrow() {
                    Some(Question::Interrupted(_)) => {
                        Answer::Decision(match typed.trim().to_ascii_lowercase().as_str() {
                            "rerun" | "yes" | "y" => Some(Decision::Rerun),
                            "skip" => Some(Decision::Skip),
                            _ => None,
                        })
                    }
                    _ => Answer::Typed(Some(typed)),
                };
                let _ = r.answers.send(answer).await;
                let _ = tx.send(UiEvent::Confirm(None)).await;
            }
            UiCommand::ChooseBackup {
                step,
                name,
                reason,
                typed,
            } => {
                let waiting = running.as_ref().filter(|r| {
                    matches!(&*r.pending.borrow(), Some(Question::Confirm(c)) if c.step == step && c.backup.is_some())
                });
                let Some(r) = waiting else {
                    let _ = tx
                        .send(UiEvent::Status(format!(
                            "no restore waits for its confirmation at '{step}': backup '{name}' was not chosen"
                        )))
                        .await;
                    continue;
                };
                let choice = crate::engine::types::BackupChoice {
                    name,
                    reason,
                    typed,
                    source: "console".into(),
                };
                let _ = r.answers.send(Answer::Choose(choice)).await;
                let _ = tx.send(UiEvent::Confirm(None)).await;
            }
            UiCommand::StopPlan { step, edits } => {
                let slot = running
                    .as_ref()
                    .and_then(|r| r.plan.lock().ok().and_then(|mut p| p.take()));
                let Some((waiting, ack)) = slot else {
                    let _ = tx
                        .send(UiEvent::Status(format!(
                            "no stop plan of '{step}' waits for an answer"
                        )))
                        .await;
                    continue;
                };
                if waiting != step {
                    // Not this plan's answer: it keeps waiting.
                    if let Some(r) = &running
                        && let Ok(mut p) = r.plan.lock()
                    {
                        *p = Some((waiting.clone(), ack));
                    }
                    let _ = tx
                        .send(UiEvent::Status(format!(
                            "the stop plan waiting is that of '{waiting}', not '{step}'"
                        )))
                        .await;
                    continue;
                }
                let answer = match edits {
                    Some(e) => Review::Go(e),
                    None => Review::Cancel("the operator chose to stop nothing".into()),
                };
                let _ = ack.send(answer);
                let _ = tx.send(UiEvent::StopPlan(None)).await;
            }
            UiCommand::ResolveFrozen { end } => {
                if running.is_some() {
                    let _ = tx
                        .send(UiEvent::Status(
                            "a runbook is running: finish or abort it before resolving frozen pids"
                                .into(),
                        ))
                        .await;
                    continue;
                }
                if ctl.readonly {
                    let _ = tx
                        .send(UiEvent::Status(
                            "--readonly: frozen pids are not signalled".into(),
                        ))
                        .await;
                    continue;
                }
                resolve_frozen(&ctl, end, &tx).await;
            }
            UiCommand::Abort => {
                let Some(r) = running.take() else {
                    continue;
                };
                // A stop plan under review: nothing is frozen yet; the step fails, journaled.
                let plan = r.plan.lock().ok().and_then(|mut p| p.take());
                if let Some((_, ack)) = plan {
                    let _ = ack.send(Review::Cancel("the operator aborted the runbook".into()));
                    let _ = tx.send(UiEvent::StopPlan(None)).await;
                    running = Some(r);
                    continue;
                }
                let waiting = r.pending.borrow().is_some();
                if waiting {
                    // Unanswered: the engine fails the step as aborted
                    // (journaled, class `aborted`) and ends.
                    let _ = r.answers.send(Answer::Abort).await;
                    let _ = tx.send(UiEvent::Confirm(None)).await;
                    running = Some(r);
                } else {
                    r.join.abort();
                    let _ = r.join.await;
                    r.forward.abort();
                    let _ = append(
                        &ctl.incident.journal,
                        Entry::new(
                            kinds::NOTE,
                            "runbook aborted by the operator while a step ran; the step may be half done: check it, then resume with ':runbook'",
                        ),
                    );
                    let _ = tx
                        .send(UiEvent::Status(
                            "runbook aborted; ':runbook NAME' resumes it".into(),
                        ))
                        .await;
                }
            }
        }
    }
    if let Some(r) = running {
        // The console is closing: an unanswered question stops the run
        // cleanly; a step still running is left to the journal (resume).
        let plan = r.plan.lock().ok().and_then(|mut p| p.take());
        if let Some((_, ack)) = plan {
            let _ = ack.send(Review::Cancel("the console closed".into()));
        }
        r.review.abort();
        let _ = r.answers.send(Answer::Typed(None)).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), r.join).await;
    }
}

/// The checklist's rows: the plan as stop-services built it.
pub fn plan_view(p: &StopPlanProposal) -> StopPlanView {
    StopPlanView {
        step: p.step.clone(),
        database: p.database.clone(),
        rows: p
            .items
            .iter()
            .map(|i| PlanRow {
                stop: i.stop,
                name: i.name.clone(),
                host: i.host.clone(),
                kind: format!("{:?}", i.kind).to_lowercase(),
                why: i.why.clone(),
                selector: i.selector.clone(),
                locked: i.locked.clone(),
            })
            .collect(),
    }
}

/// Stop plans from the run's stop-services to the checklist; the answer
/// goes back through `plan` when the operator sends it.
async fn forward_plans(
    mut rx: mpsc::Receiver<ReviewRequest>,
    plan: PendingPlan,
    tx: mpsc::Sender<UiEvent>,
) {
    while let Some((p, ack)) = rx.recv().await {
        let view = plan_view(&p);
        match plan.lock() {
            Ok(mut slot) => *slot = Some((p.step.clone(), ack)),
            // Unanswerable: dropping `ack` cancels the stop (nothing frozen).
            Err(_) => continue,
        }
        if tx.send(UiEvent::StopPlan(Some(view))).await.is_err() {
            return;
        }
    }
}

/// Continues (or ends) the pids an earlier run of this incident left
/// frozen, journaled `frozen-resolved`; tells the operator and refreshes
/// the header's list.
async fn resolve_frozen(ctl: &Controller, end: bool, tx: &mpsc::Sender<UiEvent>) {
    let records = crate::journal::read_records(&ctl.incident.journal_path).unwrap_or_default();
    if frozen::unresolved(&records).is_empty() {
        return;
    }
    let actions = RealActions::new(ctl.inventory.clone(), ctl.redactor.clone());
    let mut rec = SharedRecorder(ctl.incident.journal.clone());
    let msg = match frozen::resolve_frozen(&actions, &records, &mut rec, end).await {
        Ok(lines) => lines.join("; "),
        Err(e) => format!("frozen pids: could not journal ({e}); nothing more was done"),
    };
    let _ = tx.send(UiEvent::Status(msg)).await;
    let now = crate::journal::read_records(&ctl.incident.journal_path).unwrap_or_default();
    let lines = frozen::unresolved(&now).iter().map(|f| f.line()).collect();
    let _ = tx.send(UiEvent::Frozen(lines)).await;
}

fn append(j: &SharedJournal, e: Entry) -> Result<Record, String> {
    match j.lock() {
        Ok(mut j) => j.append(e).map_err(|e| e.to_string()),
        Err(_) => Err("journal lock poisoned".into()),
    }
}

fn export(ctl: &Controller, f: ExportFormat) -> Result<PathBuf, String> {
    let (format, ext) = export_format(f);
    let files = crate::export::resolve(&ctl.incident.id, &ctl.state).map_err(|e| e.to_string())?;
    let out = crate::export::export(
        &files,
        format,
        crate::export::time::Zone::System,
        Some(&ctl.inventory),
        &ctl.redactor,
        Utc::now(),
    )
    .map_err(|e| e.to_string())?;
    let path = ctl.incident.dir.join(format!(
        "export-{}.{ext}",
        Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    crate::state::write_private_new(&path, out.text.as_bytes())
        .map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
    Ok(path)
}

fn load_runbook(name: &str, inv: &Inventory) -> Result<Runbook, Vec<String>> {
    let rb = runbook::find(name, runbook::runbook_dir().as_deref()).map_err(|e| {
        vec![format!(
            "runbook '{name}': {e} ('lifeline runbooks' lists them)"
        )]
    })?;
    let (errors, _warnings) = runbook::validate_against(&rb, inv);
    if !errors.is_empty() {
        let mut v: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        v.push(format!("runbook '{}' does not fit the inventory", rb.id));
        return Err(v);
    }
    Ok(rb)
}

/// The answers a console run starts with: the console's parameters and
/// the selected database for a database parameter without a default.
fn console_answers(ctl: &Controller, rb: &Runbook) -> Answers {
    let mut answers = Answers::default();
    for p in &rb.params {
        if let Some(v) = ctl.params.get(&p.name) {
            answers.params.insert(p.name.clone(), v.clone());
        }
    }
    if let Some(db) = &ctl.selected_db {
        for p in &rb.params {
            if p.kind == runbook::ParamKind::Database && p.default.is_none() {
                answers.params.insert(p.name.clone(), db.clone());
            }
        }
    }
    answers
}

/// The plan of a runbook as the console would start it: the engine's dry
/// run over the same inventory, parameters and journal (read only), every
/// step resolved and redacted. Runs nothing, journals nothing.
/// `:pitr-target VALUE`: the value of the runbooks' `pitr_target`
/// parameter (None: cleared), checked as a recovery target.
fn pitr_target_param(v: &str) -> Result<Option<String>, String> {
    match v.trim() {
        "" | "none" => Ok(None),
        t => crate::engine::types::MovedTarget::parse(t)
            .map(|_| Some(t.to_string()))
            .map_err(|e| format!("{e}; the recovery target is unchanged")),
    }
}

/// One step of the engine's dry run as the plan view shows it; a step of
/// one path says so first (and when it is already known to be skipped).
fn plan_step(step: crate::engine::StepView) -> PlanStep {
    PlanStep {
        preview: step
            .path
            .iter()
            .map(|p| {
                format!("only on the {p} path: runs when the choose-path step picks it, skipped otherwise")
            })
            .chain(step.path.as_ref().and(step.summary.clone()))
            .chain(step.preview)
            .collect(),
        id: step.id,
        action: step.action.to_string(),
        explain: step.explain,
        destructive: step.destructive,
        target: step.target,
        requires: step.requires,
        confirm: step.confirm,
        error: step.error,
    }
}

fn preview(ctl: &Controller, name: &str, busy: bool) -> PlanPreview {
    let refused = |lines: Vec<String>| PlanPreview {
        runbook: name.to_string(),
        refused: lines,
        ..Default::default()
    };
    let rb = match load_runbook(name, &ctl.inventory) {
        Ok(rb) => rb,
        Err(lines) => return refused(lines),
    };
    let answers = console_answers(ctl, &rb);
    let now = Utc::now();
    let (state, errors) = crate::engine::open_dry_run(
        &rb,
        ctl.inventory.clone(),
        &answers,
        &ctl.state,
        Some(&ctl.incident.id),
        ctl.readonly,
        now,
    );
    let database = state
        .ctx
        .params
        .values()
        .find(|p| p.kind == runbook::ParamKind::Database)
        .map(|p| p.value.clone());
    let (_, effects) = crate::engine::apply(&state, crate::engine::Input::Start { now });
    let steps = effects
        .into_iter()
        .filter_map(|fx| match fx {
            crate::engine::Effect::Emit(ev) => match ev.redacted(&ctl.redactor) {
                EngineEvent::Plan { step } => Some(plan_step(step)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut notes: Vec<String> = errors
        .into_iter()
        .map(|e| format!("parameter without a value: {e}"))
        .collect();
    if ctl.in_flight.contains(&rb.id) {
        notes.push(format!(
            "a run of '{}' is in flight in this incident's journal: starting resumes it",
            rb.id
        ));
    }
    if busy {
        notes.push("a runbook is running: finish or abort it before starting another".to_string());
    }
    if ctl.readonly {
        notes.push("--readonly: every action is refused; this plan is for reading".to_string());
    }
    PlanPreview {
        runbook: name.to_string(),
        title: rb.title.clone(),
        database,
        steps,
        notes,
        refused: Vec::new(),
    }
}

fn start(
    ctl: &mut Controller,
    name: &str,
    retry: Option<&str>,
    tx: &mpsc::Sender<UiEvent>,
) -> Result<Running, Vec<String>> {
    let rb = load_runbook(name, &ctl.inventory)?;
    let resume = ctl.in_flight.contains(&rb.id);
    let answers = console_answers(ctl, &rb);
    let spec = RunSpec {
        runbook: &rb,
        inventory: ctl.inventory.clone(),
        answers: &answers,
        state_dir: &ctl.state,
        incident: Some(&ctl.incident.id),
        resume,
        retry,
        readonly: ctl.readonly,
        operator: &ctl.operator,
        inventory_path: Some(&ctl.inventory_path),
        redactor: &ctl.redactor,
        now: Utc::now(),
    };
    let (state, warnings) = {
        let mut j = ctl
            .incident
            .journal
            .lock()
            .map_err(|_| vec!["journal lock poisoned".to_string()])?;
        crate::engine::session::start_on(spec, &mut j).map_err(|e| e.lines)?
    };
    ctl.in_flight.retain(|r| *r != rb.id);
    for w in warnings {
        let _ = tx.try_send(UiEvent::Status(w));
    }
    let database = state
        .ctx
        .params
        .values()
        .find(|p| p.kind == runbook::ParamKind::Database)
        .map(|p| p.value.clone());
    let (reviewer, review_rx) = PlanReviewer::new();
    let actions =
        RealActions::new(ctl.inventory.clone(), ctl.redactor.clone()).with_plan_review(reviewer);
    let plan: PendingPlan = Arc::new(Mutex::new(None));
    let review = tokio::spawn(forward_plans(review_rx, plan.clone(), tx.clone()));
    let (answer_tx, operator) = ChannelOperator::new();
    let mut engine = Engine::new(
        state,
        actions,
        SharedRecorder(ctl.incident.journal.clone()),
        operator,
        ctl.redactor.clone(),
    );
    let events = engine.subscribe();
    let view = engine.watch();
    let (q_tx, q_rx) = watch::channel(None);
    let fwd = Forwarder {
        tx: tx.clone(),
        database,
        times: HashMap::new(),
        started_at: Utc::now(),
        questions: q_tx,
        progress_started: None,
    };
    let forward = tokio::spawn(fwd.run(events, view));
    let join = tokio::spawn(async move { engine.run(Utc::now()).await });
    Ok(Running {
        answers: answer_tx,
        plan,
        review,
        pending: q_rx,
        join,
        forward,
    })
}

/// When a step was first seen running and settled.
type StepTimes = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Engine events and views -> console events.
struct Forwarder {
    tx: mpsc::Sender<UiEvent>,
    database: Option<String>,
    times: HashMap<String, StepTimes>,
    started_at: DateTime<Utc>,
    questions: watch::Sender<Option<Question>>,
    progress_started: Option<DateTime<Utc>>,
}

fn step_state(s: StepStatus) -> StepState {
    match s {
        StepStatus::Pending | StepStatus::Planned => StepState::Pending,
        StepStatus::ReadingIdentity
        | StepStatus::AwaitingConfirmation
        | StepStatus::CheckingGuard
        | StepStatus::AwaitingOverride
        | StepStatus::Running => StepState::Running,
        StepStatus::Done | StepStatus::Overridden => StepState::Done,
        StepStatus::Skipped | StepStatus::Refused => StepState::Skipped,
        StepStatus::Failed => StepState::Failed,
        StepStatus::Interrupted => StepState::Interrupted,
    }
}

impl Forwarder {
    fn runbook_state(&mut self, v: &EngineView) -> RunbookState {
        let now = Utc::now();
        let steps = v
            .steps
            .iter()
            .map(|s| {
                let state = step_state(s.status);
                let t = self.times.entry(s.id.clone()).or_default();
                if state != StepState::Pending && t.0.is_none() {
                    t.0 = Some(now);
                }
                if matches!(
                    state,
                    StepState::Done | StepState::Failed | StepState::Skipped
                ) && t.1.is_none()
                {
                    t.1 = Some(now);
                }
                StepView {
                    id: s.id.clone(),
                    title: s.explain.lines().next().unwrap_or_default().to_string(),
                    action: s.action.to_string(),
                    destructive: s.destructive,
                    state,
                    started_at: t.0,
                    finished_at: t.1,
                    summary: s.error.clone().or_else(|| s.summary.clone()),
                }
            })
            .collect();
        let cur = v.current.and_then(|i| v.steps.get(i));
        RunbookState {
            name: v.runbook.clone(),
            title: v.title.clone(),
            database: self.database.clone(),
            steps,
            current: v.current,
            explanation: cur.map(|s| s.explain.clone()).unwrap_or_default(),
            preview: cur.map(|s| s.preview.clone()).unwrap_or_default(),
            started_at: Some(self.started_at),
        }
    }

    async fn run(
        mut self,
        mut events: broadcast::Receiver<EngineEvent>,
        mut view: watch::Receiver<EngineView>,
    ) {
        let mut view_open = true;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => {
                        if !self.event(ev).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        let v = view.borrow().clone();
                        let rb = self.runbook_state(&v);
                        let _ = self.tx.send(UiEvent::RunbookUpdate(Some(rb))).await;
                        return;
                    }
                },
                ch = view.changed(), if view_open => {
                    if ch.is_err() {
                        view_open = false;
                        continue;
                    }
                    let v = view.borrow_and_update().clone();
                    let rb = self.runbook_state(&v);
                    if self.tx.send(UiEvent::RunbookUpdate(Some(rb))).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn event(&mut self, ev: EngineEvent) -> bool {
        let out = match ev {
            EngineEvent::Output { id, line, .. } => Some(UiEvent::Output {
                step: id,
                line,
                stderr: false,
            }),
            EngineEvent::Progress {
                id,
                done,
                total,
                unit,
                message,
                ..
            } => {
                let now = Utc::now();
                let started = *self.progress_started.get_or_insert(now);
                Some(UiEvent::Progress(Some(Progress {
                    step: id,
                    bytes_done: done,
                    bytes_total: total,
                    label: (unit == crate::engine::ProgressUnit::Seconds).then_some(message),
                    tables: Vec::new(),
                    started_at: started,
                    updated_at: now,
                })))
            }
            EngineEvent::StepChanged { id, status, .. } => {
                if status.is_settled() || status == StepStatus::Failed {
                    self.progress_started = None;
                    let _ = self.tx.send(UiEvent::Progress(None)).await;
                }
                let _ = id;
                if !matches!(
                    status,
                    StepStatus::AwaitingConfirmation
                        | StepStatus::AwaitingOverride
                        | StepStatus::Interrupted
                ) {
                    self.questions.send_replace(None);
                }
                None
            }
            EngineEvent::Question { question } => {
                let pc = match &question {
                    Question::Confirm(c) => PendingConfirm {
                        step: c.step.clone(),
                        prompt: format!(
                            "{} on {}: type '{}' to go on{}",
                            c.action,
                            c.identity.describe(),
                            c.expected,
                            c.also
                                .iter()
                                .map(|a| format!(" (or '{a}', see the preview)"))
                                .collect::<String>()
                        ),
                        expect: Some(c.expected.clone()),
                        also: c.also.clone(),
                        database: self.database.clone(),
                        changes: c.preview.clone(),
                        backup: c.backup.as_deref().cloned(),
                    },
                    Question::Override(o) => PendingConfirm {
                        step: o.step.clone(),
                        prompt: format!(
                            "the snapshot of {} failed ({}): type '{}' to go on without one",
                            o.database, o.reason, o.phrase
                        ),
                        expect: Some(o.phrase.clone()),
                        also: Vec::new(),
                        database: self.database.clone(),
                        changes: Vec::new(),
                        backup: None,
                    },
                    Question::Interrupted(r) => PendingConfirm {
                        step: r.step.clone(),
                        prompt: format!(
                            "step '{}' was in flight when the last run stopped: check it, then type 'rerun' or 'skip'",
                            r.step
                        ),
                        expect: None,
                        also: Vec::new(),
                        database: self.database.clone(),
                        changes: Vec::new(),
                        backup: None,
                    },
                };
                self.questions.send_replace(Some(question));
                Some(UiEvent::Confirm(Some(pc)))
            }
            EngineEvent::RunFinished { exit, code } => {
                self.questions.send_replace(None);
                let _ = self.tx.send(UiEvent::Confirm(None)).await;
                let _ = self.tx.send(UiEvent::StopPlan(None)).await;
                Some(UiEvent::Status(format!(
                    "runbook finished: {} (exit {code})",
                    exit.message()
                )))
            }
            EngineEvent::RunStarted { .. } | EngineEvent::Plan { .. } => None,
        };
        if let Some(ev) = out {
            return self.tx.send(ev).await.is_ok();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan view says which path a step belongs to, and that it will be
    /// skipped when the dry run already knows the path.
    #[test]
    fn a_path_step_says_its_path_in_the_plan() {
        let mut v = crate::engine::StepView {
            index: 7,
            id: "pitr".into(),
            action: runbook::Action::RecoverPitr,
            explain: "recover".into(),
            destructive: false,
            requires: Vec::new(),
            status: crate::engine::StepStatus::Planned,
            target: None,
            preview: vec!["list archive".into()],
            confirm: None,
            summary: Some("will be skipped: the dump path is taken (no archive)".into()),
            error: None,
            attempts: 0,
            path: Some("pitr".into()),
        };
        let p = plan_step(v.clone());
        assert_eq!(
            p.preview,
            vec![
                "only on the pitr path: runs when the choose-path step picks it, skipped otherwise"
                    .to_string(),
                "will be skipped: the dump path is taken (no archive)".into(),
                "list archive".into(),
            ]
        );
        v.path = None;
        assert_eq!(plan_step(v).preview, vec!["list archive".to_string()]);
    }

    #[test]
    fn a_console_recovery_target_is_checked_before_it_is_kept() {
        assert_eq!(
            pitr_target_param(" lsn:0/3000100 ").unwrap().as_deref(),
            Some("lsn:0/3000100")
        );
        assert_eq!(pitr_target_param("none").unwrap(), None);
        assert_eq!(pitr_target_param("").unwrap(), None);
        let e = pitr_target_param("xid:812").unwrap_err();
        assert!(
            e.contains("is not a recovery target") && e.contains("unchanged"),
            "{e}"
        );
    }
}
