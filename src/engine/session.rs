//! Opening a run: the incident, its locked journal (`incident-opened`
//! first, then `run-started`), and the state, fresh or rebuilt from the
//! journal on resume. Shared by `lifeline run` and the TUI; it acts on
//! nothing but the journal.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::answers::Answers;
use super::driver::kinds as engine_kinds;
use super::events::StepStatus;
use super::machine::{Params, RunContext, State};
use super::params::resolve_params;
use crate::inventory::Inventory;
use crate::journal::{Entry, Journal, Record, kinds, read_records};
use crate::redact::Redactor;
use crate::runbook::Runbook;
use crate::state::{StateDir, new_incident_id};

/// Why a run could not start: lines for the operator and the exit code
/// (1: nothing could be journaled; 2: bad usage, runbook, answers or parameters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines.join("\n"))]
pub struct StartError {
    pub code: u8,
    pub lines: Vec<String>,
}

impl StartError {
    fn new(code: u8, line: impl Into<String>) -> Self {
        StartError {
            code,
            lines: vec![line.into()],
        }
    }
}

/// What a run is opened with.
pub struct RunSpec<'a> {
    pub runbook: &'a Runbook,
    pub inventory: Inventory,
    pub answers: &'a Answers,
    pub state_dir: &'a StateDir,
    /// Journal into this incident (default: a new one).
    pub incident: Option<&'a str>,
    pub resume: bool,
    /// Retry this failed step (the console's `r`): implies `resume`; refused
    /// unless replaying the run makes it the next step to run.
    pub retry: Option<&'a str>,
    pub readonly: bool,
    pub operator: &'a str,
    /// Recorded in `incident-opened`.
    pub inventory_path: Option<&'a Path>,
    pub redactor: &'a Redactor,
    pub now: DateTime<Utc>,
}

/// A run ready for `Engine::new(state, actions, journal, operator, redactor)`.
pub struct LiveRun {
    pub state: State,
    pub journal: Journal,
    pub incident: String,
    pub journal_path: PathBuf,
    /// Said to the operator before the run (e.g. the runbook changed since the run started).
    pub warnings: Vec<String>,
}

/// Records of the run to resume: the first `run-started` of this runbook
/// that was not itself a resume, and the records after it.
fn run_to_resume<'a>(records: &'a [Record], runbook: &str) -> Option<(&'a Record, &'a [Record])> {
    let k = records.iter().position(|r| {
        r.kind == engine_kinds::RUN_STARTED
            && r.data.get("runbook").and_then(Value::as_str) == Some(runbook)
            && r.data.get("resumed").and_then(Value::as_bool) != Some(true)
    })?;
    Some((&records[k], &records[k + 1..]))
}

/// Opens the incident's journal (taking its lock), journals
/// `incident-opened` (new incidents) and `run-started`, and builds the state.
pub fn open_live(spec: RunSpec<'_>) -> Result<LiveRun, StartError> {
    let rb = spec.runbook;
    let incident = match spec.incident {
        Some(id) => id.to_string(),
        None => {
            let base = new_incident_id(spec.now, Some(&rb.id));
            let mut id = base.clone();
            let mut n = 1;
            while spec.state_dir.journal_path(&id).exists() {
                n += 1;
                id = format!("{base}-{n}");
            }
            id
        }
    };
    let journal_path = spec.state_dir.journal_path(&incident);
    if spec.resume && !journal_path.exists() {
        return Err(StartError::new(
            2,
            format!(
                "no journal for incident '{incident}' at '{}': nothing to resume (check --state-dir and the id)",
                journal_path.display()
            ),
        ));
    }
    let mut journal = Journal::open(
        &journal_path,
        &incident,
        spec.operator,
        spec.redactor.clone(),
    )
    .map_err(|e| StartError::new(1, format!("{e}; nothing was done")))?;
    let (state, warnings) = start_on(spec, &mut journal)?;
    Ok(LiveRun {
        state,
        journal,
        incident,
        journal_path,
        warnings,
    })
}

/// A failed step may be retried when the run is over (its last record is
/// `run-finished`), the step's last outcome is a failure and, replayed, it
/// is the next step the engine would run.
pub fn retry_allowed(state: &State, records: &[Record], step: &str) -> Result<(), String> {
    let rb = &state.ctx.runbook;
    // A shared id (one step per path): the step of the chosen path.
    let Some(i) = state.index_of(step) else {
        return Err(format!("runbook '{}' has no such step", rb.id));
    };
    let last_run = records
        .iter()
        .rev()
        .find(|r| r.kind == engine_kinds::RUN_STARTED || r.kind == engine_kinds::RUN_FINISHED);
    if last_run.is_some_and(|r| r.kind == engine_kinds::RUN_STARTED) {
        return Err("the run is still in flight (resume it instead)".into());
    }
    let last = records.iter().rev().find(|r| {
        r.step.as_deref() == Some(step)
            && [
                kinds::STEP_STARTED,
                kinds::STEP_FINISHED,
                kinds::STEP_FAILED,
                kinds::STEP_SKIPPED,
            ]
            .contains(&r.kind.as_str())
    });
    if last.is_none_or(|r| r.kind != kinds::STEP_FAILED) {
        return Err("its last outcome is not a failure".into());
    }
    let next = state.steps.iter().position(|s| {
        !matches!(
            s.status,
            StepStatus::Done | StepStatus::Skipped | StepStatus::Overridden | StepStatus::Refused
        )
    });
    if next != Some(i) {
        let other = next
            .map(|n| format!("step '{}'", rb.steps[n].id))
            .unwrap_or_else(|| "nothing".into());
        return Err(format!("the engine would run {other} next, not this one"));
    }
    Ok(())
}

/// Starts (or with `spec.resume` resumes) a run on a journal the caller
/// already holds open (the console shares one journal between the engine,
/// the samplers and notes). The incident is the journal's; `spec.incident`
/// is ignored. Returns the state and the warnings for the operator.
pub fn start_on(
    spec: RunSpec<'_>,
    journal: &mut Journal,
) -> Result<(State, Vec<String>), StartError> {
    let rb = spec.runbook;
    let incident = journal.incident().to_string();
    let journal_path = journal.path().to_path_buf();
    let records = if journal.next_seq() > 1 {
        read_records(&journal_path)
            .map_err(|e| StartError::new(1, format!("{e}; nothing was done")))?
    } else {
        Vec::new()
    };
    let no_line = |e: crate::journal::JournalError| {
        StartError::new(
            1,
            format!("{e}; nothing was done (no action without a journal line)"),
        )
    };
    if records.is_empty() {
        journal
            .append(
                Entry::new(
                    kinds::INCIDENT_OPENED,
                    format!("incident opened by runbook '{}'", rb.id),
                )
                .data(json!({
                    "mode": "live",
                    "inventory": spec.inventory_path.map(|p| p.display().to_string()),
                    "runbook": rb.id,
                })),
            )
            .map_err(no_line)?;
    }
    let incident_dir = spec.state_dir.incident_dir(&incident);
    let mut warnings = Vec::new();
    let resume = spec.resume || spec.retry.is_some();
    let (state, params) = if resume {
        let Some((started, rest)) = run_to_resume(&records, &rb.id) else {
            return Err(StartError::new(
                2,
                format!(
                    "incident '{incident}' has no run of runbook '{}' to resume; start one without --resume",
                    rb.id
                ),
            ));
        };
        let params: Params = started
            .data
            .get("params")
            .cloned()
            .and_then(|p| serde_json::from_value(p).ok())
            .ok_or_else(|| {
                StartError::new(
                    1,
                    format!("the run-started record of incident '{incident}' holds no parameters; cannot resume"),
                )
            })?;
        for (k, v) in &spec.answers.params {
            if let Some(p) = params.get(k)
                && &p.value != v
            {
                return Err(StartError::new(
                    2,
                    format!(
                        "parameter '{k}' was '{}' when this run started; the answers now say '{v}'. A resumed run keeps its parameters: remove it from [params] or start a new incident",
                        p.value
                    ),
                ));
            }
        }
        if started.data.get("sha256").and_then(Value::as_str) != Some(rb.sha256.as_str()) {
            warnings.push(format!(
                "runbook '{}' changed since this run started; steps are matched by id",
                rb.id
            ));
        }
        let ctx = RunContext {
            runbook: rb.clone(),
            inventory: spec.inventory,
            params: params.clone(),
            incident: incident.clone(),
            incident_dir,
            readonly: spec.readonly,
            dry_run: false,
        };
        let state = State::replay(ctx, rest, spec.now);
        if let Some(step) = spec.retry {
            retry_allowed(&state, rest, step).map_err(|why| {
                StartError::new(
                    2,
                    format!("cannot retry step '{step}': {why}; nothing was done"),
                )
            })?;
        }
        (state, params)
    } else {
        let (params, errors) = resolve_params(rb, &spec.inventory, &spec.answers.params, &records);
        if !errors.is_empty() {
            let mut lines = errors;
            lines.push(format!(
                "runbook '{}' cannot start; nothing was done",
                rb.id
            ));
            return Err(StartError { code: 2, lines });
        }
        let ctx = RunContext {
            runbook: rb.clone(),
            inventory: spec.inventory,
            params: params.clone(),
            incident: incident.clone(),
            incident_dir,
            readonly: spec.readonly,
            dry_run: false,
        };
        (State::new(ctx, spec.now), params)
    };
    journal
        .append(
            Entry::new(
                engine_kinds::RUN_STARTED,
                format!(
                    "{} runbook '{}': {}",
                    if resume { "resumed" } else { "started" },
                    rb.id,
                    rb.title
                ),
            )
            .data(json!({
                "runbook": rb.id,
                "file": rb.file,
                "sha256": rb.sha256,
                "params": serde_json::to_value(&params).unwrap_or(Value::Null),
                "resumed": resume,
                "readonly": spec.readonly,
                "answers": spec.answers.file,
            })),
        )
        .map_err(no_line)?;
    if let Some(step) = spec.retry {
        // Journaled like a headless resume's `rerun` of an interrupted step.
        let action = rb
            .step_index(step)
            .map(|i| rb.steps[i].action.as_str())
            .unwrap_or_default();
        journal
            .append(
                Entry::new(
                    kinds::CONFIRMED,
                    format!("failed step '{step}' retried by the operator: run it again"),
                )
                .step(step)
                .data(json!({ "action": action, "failed": true, "decision": "rerun" })),
            )
            .map_err(no_line)?;
    }
    Ok((state, warnings))
}

/// The state of a dry run (no journal is opened); an existing incident's
/// journal is only read, for a timeline parameter. Returns the parameter problems too.
pub fn open_dry_run(
    rb: &Runbook,
    inventory: Inventory,
    answers: &Answers,
    state_dir: &StateDir,
    incident: Option<&str>,
    readonly: bool,
    now: DateTime<Utc>,
) -> (State, Vec<String>) {
    let records = incident
        .map(|id| state_dir.journal_path(id))
        .filter(|p| p.exists())
        .and_then(|p| read_records(&p).ok())
        .unwrap_or_default();
    let (params, errors) = resolve_params(rb, &inventory, &answers.params, &records);
    let incident = incident
        .map(str::to_string)
        .unwrap_or_else(|| new_incident_id(now, Some(&rb.id)));
    let ctx = RunContext {
        runbook: rb.clone(),
        inventory,
        params,
        incident_dir: state_dir.incident_dir(&incident),
        incident,
        readonly,
        dry_run: true,
    };
    (State::new(ctx, now), errors)
}
