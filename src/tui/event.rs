//! Messages in and out of the console: `UiEvent`s come from the adapters
//! (engine, timeline, probes) over a channel, `UiCommand`s leave for the
//! engine, and `Msg` is what `update` consumes. No I/O here.

use chrono::{DateTime, Utc};
use crossterm::event::{Event, KeyEvent, KeyEventKind, MouseEventKind};

use crate::journal::Record;
use crate::samples::Sample;

use super::model::{
    DatabaseState, Header, HostServices, HostState, PendingConfirm, Progress, RunbookInfo,
    RunbookState, StepState,
};

/// A change in the world, sent by an adapter. The console merges it into
/// its model and redraws; it never answers.
#[derive(Debug, Clone)]
pub enum UiEvent {
    HeaderUpdate(Header),
    /// Replaces the host of the same name (or adds it).
    HostUpdate(HostState),
    /// Replaces the database of the same inventory name (or adds it).
    DatabaseUpdate(DatabaseState),
    /// One sampling round (as written to samples.jsonl).
    Sample(Sample),
    /// Replaces every service of one host.
    ServicesUpdate(HostServices),
    /// A journal line as appended (kind `alert` also becomes an alert marker).
    Journal(Record),
    /// Runbooks the operator can start.
    RunbookList(Vec<RunbookInfo>),
    /// The whole runbook state (None: no runbook loaded).
    RunbookUpdate(Option<RunbookState>),
    /// One step changed state.
    StepUpdate {
        id: String,
        state: StepState,
        summary: Option<String>,
    },
    /// A line of live output of a step.
    Output {
        step: String,
        line: String,
        stderr: bool,
    },
    Progress(Option<Progress>),
    /// The engine waits for the operator (None: no longer).
    Confirm(Option<PendingConfirm>),
    /// A stop plan waits for the operator's review (None: no longer).
    StopPlan(Option<super::stop_plan::StopPlanView>),
    /// `frozen: PIDS on HOST` for every pid of this incident left frozen (replaces the list).
    Frozen(Vec<String>),

    /// The plan of a runbook before it starts (answer to `PreviewRunbook`).
    Plan(Box<super::plan::PlanPreview>),
    /// When the damage happened (the Timeline's incident line).
    IncidentTime(Option<DateTime<Utc>>),
    /// A one-line message from the engine ("export written to ...").
    Status(String),
    /// Sets the clock ages are measured against.
    Tick(DateTime<Utc>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Markdown,
    Json,
    Html,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(ExportFormat::Markdown),
            "json" => Some(ExportFormat::Json),
            "html" => Some(ExportFormat::Html),
            _ => None,
        }
    }
}

/// What the operator asked for; sent to the engine with `try_send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiCommand {
    StartRunbook(String),
    /// Build the plan of a runbook (every step resolved, nothing run) and
    /// answer with `UiEvent::Plan`.
    PreviewRunbook(String),
    /// Answer to a `PendingConfirm`; `typed` is what the operator typed
    /// (the database name, or "yes").
    Confirm {
        step: String,
        typed: String,
    },
    /// Instead of typing the restore's confirmation: restore this other
    /// candidate of the pick (the engine journals it, then asks again).
    ChooseBackup {
        step: String,
        name: String,
        reason: String,
        /// The name typed again (suspect candidates).
        typed: Option<String>,
    },
    /// The operator's answer to a stop plan: the edits (the answers
    /// file's `[stop_plan]`) to go on with, or None to stop nothing.
    StopPlan {
        step: String,
        edits: Option<crate::engine::types::StopPlanEdits>,
    },
    /// What to do with pids an earlier run left frozen: continue them (CONT) or end them.
    ResolveFrozen {
        end: bool,
    },
    /// Run a failed step again (`r` in the Runbook view): resumes the
    /// finished run; the engine refuses unless that step is the next to run.
    Retry {
        runbook: String,
        step: String,
    },
    /// Stop the runbook at the current step.
    Abort,
    Note(String),
    /// Move the recovery target of the next pitr path (`:pitr-target`; empty: the one found in the WAL).
    PitrTarget(String),
    /// `:path dump|pitr|auto`: the path the next incident runbook takes.
    Path(String),
    /// Journal that the operator acknowledged the alerts up to this journal
    /// sequence number (`count` of them).
    AckAlerts {
        upto_seq: u64,
        count: usize,
    },
    Export(ExportFormat),
    /// The operator looks at (and acts on) this database now.
    SelectDb(String),
    Quit,
}

/// Scroll direction of the mouse wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    Up,
    Down,
}

/// Input to `update`.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Scroll(Scroll),
    Paste(String),
    Resize(u16, u16),
    /// An adapter event (boxed: it is much larger than a key).
    Ui(Box<UiEvent>),
}

/// Turns a terminal event into a message; key releases and repeats of
/// nothing we use are dropped.
pub fn from_terminal(ev: Event) -> Option<Msg> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => Some(Msg::Key(k)),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => Some(Msg::Scroll(Scroll::Up)),
            MouseEventKind::ScrollDown => Some(Msg::Scroll(Scroll::Down)),
            _ => None,
        },
        Event::Paste(s) => Some(Msg::Paste(s)),
        Event::Resize(w, h) => Some(Msg::Resize(w, h)),
        _ => None,
    }
}
