//! What the engine tells its front ends (the TUI, the headless printer):
//! events as they happen and a serialisable view to draw from. Data only.

use serde::{Deserialize, Serialize};

use super::types::DbIdentity;
use crate::redact::Redactor;
use crate::runbook::Action;

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    #[default]
    Pending,
    /// Found in flight when the run was resumed: check before continuing.
    Interrupted,
    /// Reading the target's identity to show with the confirmation.
    ReadingIdentity,
    AwaitingConfirmation,
    /// Re-reading the identity right before acting.
    CheckingGuard,
    /// The snapshot failed: waiting for a typed override.
    AwaitingOverride,
    Running,
    Done,
    Skipped,
    /// A failed snapshot the operator chose to go on without (journaled).
    Overridden,
    /// Refused under --readonly.
    Refused,
    Failed,
    /// Dry-run: listed, not run.
    Planned,
}

impl StepStatus {
    /// Finished for the purposes of moving on.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            StepStatus::Done | StepStatus::Skipped | StepStatus::Overridden | StepStatus::Refused
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Interrupted => "interrupted: check before continuing",
            StepStatus::ReadingIdentity => "reading identity",
            StepStatus::AwaitingConfirmation => "awaiting confirmation",
            StepStatus::CheckingGuard => "checking guard",
            StepStatus::AwaitingOverride => "awaiting override",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::Overridden => "overridden",
            StepStatus::Refused => "refused (--readonly)",
            StepStatus::Failed => "FAILED",
            StepStatus::Planned => "planned",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "exit", rename_all = "kebab-case")]
pub enum RunExit {
    Completed,
    /// A dry run printed its plan.
    Planned,
    Failed {
        step: String,
        reason: String,
    },
    /// Verification found damage.
    Damage {
        step: String,
        reason: String,
    },
    /// --readonly refused this many steps.
    Refused {
        count: usize,
    },
    /// Stopped waiting for the operator (no answer, interrupted step).
    Stopped {
        reason: String,
    },
}

impl RunExit {
    /// The process exit code (contract: 0 ok, 1 a step failed, 3 damage).
    pub fn code(&self) -> u8 {
        match self {
            RunExit::Completed | RunExit::Planned => 0,
            RunExit::Damage { .. } => 3,
            RunExit::Failed { .. } | RunExit::Refused { .. } | RunExit::Stopped { .. } => 1,
        }
    }
    pub fn message(&self) -> String {
        match self {
            RunExit::Completed => "every step done".into(),
            RunExit::Planned => "dry run: nothing was changed".into(),
            RunExit::Failed { step, reason } => format!("step '{step}' failed: {reason}"),
            RunExit::Damage { step, reason } => format!("step '{step}': {reason}"),
            RunExit::Refused { count } => {
                format!("--readonly: {count} step(s) refused; only probes and notes ran")
            }
            RunExit::Stopped { reason } => format!("stopped: {reason}"),
        }
    }
}

/// A destructive step waits for the operator to type the database name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmRequest {
    pub index: usize,
    pub step: String,
    pub action: Action,
    /// What must be typed: the database name on the server.
    pub expected: String,
    /// Other phrases the step accepts, each meaning more (a restore's
    /// `<db> create role <role>` also creates its missing restore role).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    pub target: String,
    /// The identity shown now and compared again right before acting.
    pub identity: DbIdentity,
    /// The exact commands and SQL.
    pub preview: Vec<String>,
    /// A restore of a picked backup: which one and what it loses; the
    /// operator may choose another eligible candidate instead of typing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<Box<super::types::BackupAtStake>>,
}

/// A snapshot failed: going on needs the override phrase typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideRequest {
    pub index: usize,
    pub step: String,
    pub database: String,
    pub reason: String,
    /// What must be typed.
    pub phrase: String,
}

/// A step was in flight when the last run died.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterruptedRequest {
    pub index: usize,
    pub step: String,
    pub action: Action,
    pub destructive: bool,
    pub preview: Vec<String>,
}

/// What the engine waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "question", rename_all = "kebab-case")]
pub enum Question {
    Confirm(ConfirmRequest),
    Override(OverrideRequest),
    Interrupted(InterruptedRequest),
}

/// One step as a front end draws it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub index: usize,
    pub id: String,
    pub action: Action,
    pub explain: String,
    pub destructive: bool,
    pub requires: Vec<String>,
    pub status: StepStatus,
    /// `host:port/dbname`, a host, a catalog.
    pub target: Option<String>,
    /// The exact commands and SQL (redacted when it leaves the engine).
    pub preview: Vec<String>,
    /// For destructive steps: the name the operator must type.
    pub confirm: Option<String>,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    /// The path this step belongs to (`pitr` / `dump`), when the runbook has a choose-path step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The whole run, for the TUI to draw from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EngineView {
    pub incident: String,
    pub runbook: String,
    pub title: String,
    pub dry_run: bool,
    pub readonly: bool,
    pub resumed: bool,
    pub current: Option<usize>,
    pub steps: Vec<StepView>,
    pub exit: Option<RunExit>,
}

/// What a step's progress counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProgressUnit {
    #[default]
    Bytes,
    Seconds,
}

/// Everything a subscriber hears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EngineEvent {
    RunStarted {
        incident: String,
        runbook: String,
        title: String,
        steps: usize,
        dry_run: bool,
        readonly: bool,
        resumed: bool,
    },
    /// Dry run: one step of the plan, fully previewed.
    Plan {
        step: StepView,
    },
    StepChanged {
        index: usize,
        id: String,
        action: Action,
        status: StepStatus,
        detail: String,
    },
    Output {
        index: usize,
        id: String,
        line: String,
    },
    Progress {
        index: usize,
        id: String,
        done: u64,
        total: Option<u64>,
        /// What `done` and `total` count: bytes (a restore) or seconds (a hold).
        unit: ProgressUnit,
        message: String,
    },
    Question {
        question: Question,
    },
    RunFinished {
        exit: RunExit,
        code: u8,
    },
}

impl EngineEvent {
    /// The same event with every string passed through the redactor. An
    /// event that cannot be redacted is withheld, never passed on as it is.
    pub fn redacted(&self, r: &Redactor) -> EngineEvent {
        let redacted = serde_json::to_value(self).ok().and_then(|mut v| {
            r.redact_json(&mut v);
            serde_json::from_value(v).ok()
        });
        redacted.unwrap_or_else(|| EngineEvent::Output {
            index: 0,
            id: String::new(),
            line: "[an event was withheld: it could not be redacted]".into(),
        })
    }
}
