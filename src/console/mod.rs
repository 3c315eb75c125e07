//! `lifeline console`: opens (or re-opens) an incident and its journal and
//! feeds the TUI from real adapters (samplers, host probes, the journal, the
//! engine); turns the operator's commands into engine runs, notes, exports.
//! Never touches the terminal itself (that is `tui`) and never acts unjournaled.

pub mod adapters;
pub mod lab;
pub mod runner;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::mpsc;

use crate::inventory::{Inventory, InventoryError};
use crate::journal::{Entry, Journal, JournalError, Record, kinds, read_records};
use crate::redact::Redactor;
use crate::runbook;
use crate::state::{StateDir, new_incident_id, valid_incident_id};
use crate::timeline::SharedJournal;
use crate::tui::model::{Header, Mode, Model, RunbookInfo, RunbookState, StepState, StepView};
use crate::tui::{ConsoleOptions, ExportFormat, UiCommand, UiEvent};

/// How the console is opened.
#[derive(Debug, Clone)]
pub struct ConsoleArgs {
    pub inventory: PathBuf,
    pub state_dir: PathBuf,
    pub operator: String,
    /// Re-open this incident (default: a new one).
    pub incident: Option<String>,
    pub readonly: bool,
    /// DRILL in the header (the lab), else LIVE.
    pub drill: bool,
    /// Seconds between host probes.
    pub probe_interval: Duration,
    /// Limit of one host probe.
    pub probe_timeout: Duration,
    /// Where tracing goes while the TUI owns the terminal (default: the
    /// incident's directory).
    pub log_dir: Option<PathBuf>,
    /// Last part of a new incident's id (default `console`, or `drill`).
    pub slug: Option<String>,
    /// Known before the console opened (the lab's counts from just before
    /// the damage, the damage time): applied to the model first.
    pub before: Vec<UiEvent>,
    /// The Timeline's chart starts on this table (name, OID).
    pub select_table: Option<(String, u32)>,
    /// Runbook parameter values known before the console opened (the lab's
    /// damage time as `incident_at`); used where a runbook has the
    /// parameter and the operator gave none.
    pub params: std::collections::BTreeMap<String, String>,
}

impl ConsoleArgs {
    pub fn new(inventory: PathBuf, state_dir: PathBuf, operator: String) -> ConsoleArgs {
        ConsoleArgs {
            inventory,
            state_dir,
            operator,
            incident: None,
            readonly: false,
            drill: false,
            probe_interval: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(20),
            log_dir: None,
            slug: None,
            before: Vec::new(),
            select_table: None,
            params: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    Inventory(String),
    #[error(
        "'{0}' is not an incident id (letters, digits, '-', '_', '.'; e.g. 20261123-124200-console)"
    )]
    BadIncident(String),
    #[error("no journal for incident '{id}' at '{path}': check --state-dir and the id")]
    NoIncident { id: String, path: PathBuf },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot open the log file in '{path}': {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tui(#[from] crate::tui::TuiError),
}

impl ConsoleError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ConsoleError::Inventory(_)
            | ConsoleError::BadIncident(_)
            | ConsoleError::NoIncident { .. } => 2,
            _ => 1,
        }
    }
}

/// Loads the inventory and registers its secrets with the redactor.
pub fn load_inventory(path: &Path, redactor: &Redactor) -> Result<Inventory, ConsoleError> {
    match crate::inventory::open(path, redactor) {
        Ok((inv, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            Ok(inv)
        }
        Err(InventoryError::Invalid(d)) => Err(ConsoleError::Inventory(format!(
            "{d}\nerror: {} problem(s) in '{}': fix them ('lifeline check' lists them)",
            d.0.len(),
            path.display()
        ))),
        Err(e) => Err(ConsoleError::Inventory(e.to_string())),
    }
}

/// An incident opened by the console: its id, locked journal, paths.
pub struct OpenIncident {
    pub id: String,
    pub journal: SharedJournal,
    pub journal_path: PathBuf,
    pub samples_path: PathBuf,
    pub dir: PathBuf,
    pub opened_at: DateTime<Utc>,
}

/// Opens (or re-opens) the incident and takes its journal's lock;
/// journals `incident-opened` for a new one.
pub fn open_incident(
    state: &StateDir,
    incident: Option<&str>,
    operator: &str,
    redactor: &Redactor,
    mode: &str,
    slug: &str,
    inventory: &Path,
) -> Result<OpenIncident, ConsoleError> {
    let now = Utc::now();
    let id = match incident {
        Some(id) => {
            if !valid_incident_id(id) {
                return Err(ConsoleError::BadIncident(id.to_string()));
            }
            let p = state.journal_path(id);
            if !p.exists() {
                return Err(ConsoleError::NoIncident {
                    id: id.to_string(),
                    path: p,
                });
            }
            id.to_string()
        }
        None => {
            let base = new_incident_id(now, Some(slug));
            let mut id = base.clone();
            let mut n = 1;
            while state.journal_path(&id).exists() {
                n += 1;
                id = format!("{base}-{n}");
            }
            id
        }
    };
    let journal_path = state.journal_path(&id);
    let mut journal = Journal::open(&journal_path, &id, operator, redactor.clone())?;
    let mut opened_at = now;
    if journal.next_seq() == 1 {
        journal.append(
            Entry::new(
                kinds::INCIDENT_OPENED,
                format!("incident opened in the {mode}"),
            )
            .data(json!({
                "mode": mode,
                "inventory": inventory.display().to_string(),
            })),
        )?;
    } else if let Some(first) = read_records(&journal_path)?.first() {
        opened_at = first.ts;
    }
    Ok(OpenIncident {
        dir: state.incident_dir(&id),
        samples_path: state.samples_path(&id),
        journal: Arc::new(Mutex::new(journal)),
        journal_path,
        id,
        opened_at,
    })
}

/// The runbooks the operator can start.
pub fn runbook_list() -> Vec<RunbookInfo> {
    let Ok(sources) = runbook::sources(runbook::runbook_dir().as_deref()) else {
        return Vec::new();
    };
    sources
        .into_iter()
        .filter_map(|(file, text)| runbook::Runbook::parse(&text, &file).ok())
        .map(|rb| RunbookInfo {
            name: rb.id,
            title: rb.title,
            when: rb.when.split_whitespace().collect::<Vec<_>>().join(" "),
        })
        .collect()
}

/// Runbooks started in this journal that never finished: (runbook id, seq).
pub fn runs_in_flight(records: &[Record]) -> Vec<String> {
    let mut open: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    for r in records {
        match r.kind.as_str() {
            crate::engine::driver::kinds::RUN_STARTED => {
                if let Some(id) = r.data.get("runbook").and_then(|v| v.as_str()) {
                    last = Some(id.to_string());
                    if !open.iter().any(|o| o == id) {
                        open.push(id.to_string());
                    }
                }
            }
            crate::engine::driver::kinds::RUN_FINISHED => {
                if let Some(id) = last.take() {
                    open.retain(|o| *o != id);
                }
            }
            _ => {}
        }
    }
    open
}

/// The steps of runbook `id` as its last run left them in the journal:
/// done, failed, skipped, or interrupted (started, never finished).
pub fn in_flight_view(records: &[Record], id: &str) -> Option<RunbookState> {
    let rb = runbook::find(id, runbook::runbook_dir().as_deref()).ok()?;
    let start = records.iter().rposition(|r| {
        r.kind == crate::engine::driver::kinds::RUN_STARTED
            && r.data.get("runbook").and_then(|v| v.as_str()) == Some(id)
    })?;
    let run = &records[start..];
    let mut steps: Vec<StepView> = rb
        .steps
        .iter()
        .map(|s| StepView {
            id: s.id.clone(),
            title: s.explain.lines().next().unwrap_or_default().to_string(),
            action: s.action.to_string(),
            destructive: s.destructive,
            ..Default::default()
        })
        .collect();
    let mut current = None;
    // Two steps share an id only on different paths: a skipped one's record
    // names its path, the others belong to the path chosen so far.
    let mut chosen: Option<runbook::PathChoice> = None;
    let path_of = |r: &Record| {
        r.data
            .get("path")
            .and_then(|v| v.as_str())
            .and_then(runbook::PathChoice::parse)
    };
    for r in run {
        let Some(i) = r
            .step
            .as_deref()
            .and_then(|sid| rb.step_on_path(sid, path_of(r).or(chosen)))
        else {
            continue;
        };
        if r.kind == kinds::STEP_FINISHED && rb.steps[i].action == runbook::Action::ChoosePath {
            chosen = path_of(r);
        }
        let st = &mut steps[i];
        match r.kind.as_str() {
            kinds::STEP_STARTED => {
                st.state = StepState::Interrupted;
                st.started_at = Some(r.ts);
                current = Some(i);
            }
            kinds::STEP_FINISHED => {
                st.state = StepState::Done;
                st.finished_at = Some(r.ts);
                st.summary = Some(r.summary.clone());
            }
            kinds::STEP_FAILED => {
                st.state = StepState::Failed;
                st.finished_at = Some(r.ts);
                st.summary = Some(r.summary.clone());
            }
            kinds::STEP_SKIPPED => st.state = StepState::Skipped,
            _ => {}
        }
    }
    let database = run[0]
        .data
        .get("params")
        .and_then(|p| p.as_object())
        .and_then(|p| {
            p.values()
                .find(|v| v.get("kind").and_then(|k| k.as_str()) == Some("database"))
        })
        .and_then(|v| v.get("value"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Some(RunbookState {
        name: rb.id.clone(),
        title: rb.title.clone(),
        database,
        steps,
        current,
        explanation: format!(
            "This run was in flight when the console closed. ':runbook {}' resumes it from the journal; a step shown interrupted must be checked first.",
            rb.id
        ),
        preview: Vec::new(),
        started_at: Some(run[0].ts),
    })
}

/// Runs the console until the operator quits; returns the exit code.
/// Blocking: builds its own runtime.
pub fn cmd_console(args: ConsoleArgs, redactor: Redactor) -> Result<u8, ConsoleError> {
    let inventory = load_inventory(&args.inventory, &redactor)?;
    let state = StateDir::new(
        std::path::absolute(&args.state_dir).unwrap_or_else(|_| args.state_dir.clone()),
    );
    let mode = if args.drill { "drill" } else { "console" };
    let inc = open_incident(
        &state,
        args.incident.as_deref(),
        &args.operator,
        &redactor,
        mode,
        args.slug.as_deref().unwrap_or(mode),
        &args.inventory,
    )?;
    let log_dir = args.log_dir.clone().unwrap_or_else(|| inc.dir.clone());
    let _log = crate::logging::init_file(&log_dir, redactor.clone()).map_err(|source| {
        ConsoleError::Log {
            path: log_dir.clone(),
            source,
        }
    })?;
    let rt = crate::runtime::build().map_err(ConsoleError::Runtime)?;
    rt.block_on(run(args, inventory, state, inc, redactor))
}

/// The console on an opened incident (the lab calls this with its own).
pub async fn run(
    args: ConsoleArgs,
    inventory: Inventory,
    state: StateDir,
    inc: OpenIncident,
    redactor: Redactor,
) -> Result<u8, ConsoleError> {
    let (ev_tx, ev_rx) = mpsc::channel::<UiEvent>(4096);
    let (cmd_tx, cmd_rx) = mpsc::channel::<UiCommand>(64);
    let mut model = Model::new(Utc::now());
    model.header = Header {
        incident: inc.id.clone(),
        started_at: Some(inc.opened_at),
        operator: args.operator.clone(),
        mode: if args.drill { Mode::Drill } else { Mode::Live },
        env: inventory.env.clone(),
        readonly: args.readonly,
        inventory: inventory.name.clone(),
        // Pids a run of this incident left frozen (`lifeline run --resume` continues them).
        frozen: read_records(&inc.journal_path)
            .map(|r| {
                crate::actions::hosts::frozen::unresolved(&r)
                    .iter()
                    .map(|f| f.line())
                    .collect()
            })
            .unwrap_or_default(),
    };
    model.runbooks = runbook_list();
    if args.drill {
        // A drill's damage is minutes old: start on the 5-minute window.
        model.ui.zoom = 0;
    }
    for e in args.before.iter().cloned() {
        // The lab's count from before the damage is a round of this
        // incident's samples too (a fresh incident only): the export's
        // "before" counts come from it, as the Timeline's do.
        if let UiEvent::Sample(s) = &e
            && std::fs::metadata(&inc.samples_path).map_or(true, |m| m.len() == 0)
            && let Err(err) = crate::samples::append(&inc.samples_path, s)
        {
            tracing::warn!("the lab's count before the damage was not kept: {err}");
        }
        model.apply(e);
    }
    model.ui.selected_table = args.select_table.clone();
    let tasks = adapters::spawn_all(
        &inventory,
        &inc,
        &redactor,
        &ev_tx,
        args.probe_interval,
        args.probe_timeout,
    );
    if !model.header.frozen.is_empty() {
        // Said at once, with what to do: these processes hold their locks until resolved.
        model.ui.message = Some((
            crate::tui::strings::frozen_banner(&model.header.frozen),
            true,
        ));
    }
    let in_flight = read_records(&inc.journal_path)
        .map(|r| runs_in_flight(&r))
        .unwrap_or_default();
    if let Some(rb) = in_flight.last() {
        if let Some(view) = read_records(&inc.journal_path)
            .ok()
            .and_then(|records| in_flight_view(&records, rb))
        {
            let _ = ev_tx.send(UiEvent::RunbookUpdate(Some(view))).await;
        }
        let _ = ev_tx
            .send(UiEvent::Status(format!(
                "runbook '{rb}' was in flight in this incident: ':runbook {rb}' resumes it"
            )))
            .await;
    }
    let controller = runner::Controller {
        inventory: inventory.clone(),
        inventory_path: args.inventory.clone(),
        state,
        incident: inc,
        redactor: redactor.clone(),
        operator: args.operator.clone(),
        readonly: args.readonly,
        in_flight,
        selected_db: None,
        params: args.params.clone(),
    };
    let ctl = tokio::spawn(runner::serve(controller, cmd_rx, ev_tx.clone()));
    drop(ev_tx);
    let options = ConsoleOptions::new(model);
    let result = crate::tui::run_console(ev_rx, cmd_tx, options).await;
    let _ = ctl.await;
    tasks.stop().await;
    result?;
    Ok(0)
}

/// The file extension and export format of a console export.
pub fn export_format(f: ExportFormat) -> (crate::export::Format, &'static str) {
    match f {
        ExportFormat::Markdown => (crate::export::Format::Md, "md"),
        ExportFormat::Json => (crate::export::Format::Json, "json"),
        ExportFormat::Html => (crate::export::Format::Html, "html"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn rec(seq: u64, kind: &str, step: Option<&str>, data: Value) -> Record {
        Record {
            seq,
            ts: Utc::now(),
            incident: "i".into(),
            operator: "o".into(),
            kind: kind.into(),
            step: step.map(str::to_string),
            target: None,
            command: None,
            exit: None,
            duration_ms: None,
            summary: format!("{kind} {seq}"),
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn a_run_without_its_end_is_in_flight_and_a_finished_one_is_not() {
        let started = |seq, rb: &str| rec(seq, "run-started", None, json!({ "runbook": rb }));
        let finished = |seq| rec(seq, "run-finished", None, json!({}));
        assert!(runs_in_flight(&[]).is_empty());
        assert!(runs_in_flight(&[started(1, "a"), finished(2)]).is_empty());
        assert_eq!(runs_in_flight(&[started(1, "a")]), vec!["a".to_string()]);
        assert_eq!(
            runs_in_flight(&[started(1, "a"), finished(2), started(3, "b")]),
            vec!["b".to_string()]
        );
    }

    #[test]
    fn the_steps_of_a_run_in_flight_come_from_the_journal() {
        let records = vec![
            rec(
                1,
                "run-started",
                None,
                json!({ "runbook": "rogue-sync-wipe",
                        "params": { "db": { "kind": "database", "value": "main", "source": "inventory" } } }),
            ),
            rec(2, kinds::STEP_STARTED, Some("brief"), json!({})),
            rec(3, kinds::STEP_FINISHED, Some("brief"), json!({})),
            rec(4, kinds::STEP_STARTED, Some("look"), json!({})),
        ];
        let v = in_flight_view(&records, "rogue-sync-wipe").unwrap();
        assert_eq!(v.database.as_deref(), Some("main"));
        assert_eq!(v.steps[0].state, StepState::Done);
        assert_eq!(v.steps[1].state, StepState::Interrupted);
        assert_eq!(v.steps[2].state, StepState::Pending);
        assert_eq!(v.current, Some(1));
        assert!(in_flight_view(&records, "table-wiped").is_none());
    }

    /// On the pitr path the shared id `restore` is the pitr step: the
    /// skipped dump step stays skipped, the running one is the pitr one.
    #[test]
    fn a_run_on_the_pitr_path_maps_shared_step_ids_to_its_own_steps() {
        let rb = runbook::find("rogue-sync-wipe", None).unwrap();
        let dump = rb
            .step_on_path("restore", Some(runbook::PathChoice::Dump))
            .unwrap();
        let pitr = rb
            .step_on_path("restore", Some(runbook::PathChoice::Pitr))
            .unwrap();
        assert_ne!(dump, pitr);
        let records = vec![
            rec(
                1,
                "run-started",
                None,
                json!({ "runbook": "rogue-sync-wipe" }),
            ),
            rec(
                2,
                kinds::STEP_FINISHED,
                Some("choose"),
                json!({ "path": "pitr" }),
            ),
            rec(
                3,
                kinds::STEP_SKIPPED,
                Some("pick"),
                json!({ "reason": "path", "path": "dump" }),
            ),
            rec(
                4,
                kinds::STEP_SKIPPED,
                Some("restore"),
                json!({ "reason": "path", "path": "dump" }),
            ),
            rec(5, kinds::STEP_FINISHED, Some("pitr"), json!({})),
            rec(
                6,
                kinds::STEP_STARTED,
                Some("restore"),
                json!({ "path": "pitr" }),
            ),
        ];
        let v = in_flight_view(&records, "rogue-sync-wipe").unwrap();
        assert_eq!(v.steps[dump].state, StepState::Skipped);
        assert_eq!(v.steps[pitr].state, StepState::Interrupted);
        assert_eq!(v.current, Some(pitr));
    }
}
