//! The engine loop: feeds inputs to the state machine and performs its
//! effects in order: journal, ask, read identity, act. A journal append
//! that fails cancels everything after it, so no action runs unjournaled.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, watch};

use super::actions::{ActionError, Actions, JournalRequest, Output, dispatch};
use super::events::{
    ConfirmRequest, EngineEvent, EngineView, InterruptedRequest, OverrideRequest, Question, RunExit,
};
use super::machine::{Decision, Effect, Input, State, StepFailure, apply};
use super::types::BackupChoice;
use crate::journal::{Entry, Journal, JournalError, Record};
use crate::redact::Redactor;

/// Journal kinds the engine adds to `journal::kinds`:
/// - `run-started`: `{ "runbook", "file", "sha256", "params": {name: {kind, value, source}},
///   "resumed": bool, "readonly": bool }`. Resume reads the params from the
///   first one of a runbook with `resumed = false`.
/// - `run-finished`: `{ "exit": RunExit, "code" }`.
/// - `backup-chosen` (step: the pick-backup step): `{ "chosen": PickedBackup,
///   "preselected": PickedBackup, "reason", "suspect", "typed", "source",
///   "at_step" }`. Resume applies it: the restore reads the chosen backup.
pub mod kinds {
    pub const RUN_STARTED: &str = "run-started";
    pub const RUN_FINISHED: &str = "run-finished";
    pub const BACKUP_CHOSEN: &str = "backup-chosen";
}

/// Where the engine journals. `Journal` is the real one.
pub trait Recorder: Send {
    fn append(&mut self, entry: Entry) -> Result<Record, JournalError>;
}

impl Recorder for Journal {
    fn append(&mut self, entry: Entry) -> Result<Record, JournalError> {
        Journal::append(self, entry)
    }
}

/// A recorder for dry runs: the plan journals nothing, and anything that
/// tried would be refused (and so not performed).
pub struct NoJournal;

impl Recorder for NoJournal {
    fn append(&mut self, _entry: Entry) -> Result<Record, JournalError> {
        Err(JournalError::Io {
            path: "(dry run)".into(),
            source: std::io::Error::other("a dry run journals nothing and performs nothing"),
        })
    }
}

/// The operator's answer to a typed confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// What was typed (None: no answer, the step stops).
    Typed(Option<String>),
    /// Another backup for the restore: the engine journals the choice and
    /// asks the confirmation again, naming it.
    Choose(BackupChoice),
}

/// Who answers the engine's questions: the TUI, or the answers file.
pub trait Operator: Send {
    /// The typed database name or another backup.
    fn confirm(&mut self, q: &ConfirmRequest) -> impl Future<Output = Reply> + Send;
    /// The typed override phrase after a failed snapshot, or None.
    fn override_snapshot(
        &mut self,
        q: &OverrideRequest,
    ) -> impl Future<Output = Option<String>> + Send;
    /// What to do with a step found in flight on resume, or None (stop).
    fn interrupted(
        &mut self,
        q: &InterruptedRequest,
    ) -> impl Future<Output = Option<Decision>> + Send;
    /// Whether the last unanswered question was an abort by the operator
    /// (asked once after a None; an operator that cannot abort says no).
    fn take_abort(&mut self) -> bool {
        false
    }
}

/// An answer sent to a `ChannelOperator`.
#[derive(Debug, Clone)]
pub enum Answer {
    /// What was typed for a confirmation or an override (None: cancelled).
    Typed(Option<String>),
    Decision(Option<Decision>),
    /// Another backup for the restore waiting for its confirmation.
    Choose(BackupChoice),
    /// The operator aborts the run instead of answering (journaled as
    /// `aborted`, not as "not confirmed").
    Abort,
}

/// An operator answering over a channel (the TUI sends `Answer`s after it
/// sees `EngineEvent::Question`). A closed channel answers None.
pub struct ChannelOperator {
    rx: mpsc::Receiver<Answer>,
    aborted: bool,
}

impl ChannelOperator {
    pub fn new() -> (mpsc::Sender<Answer>, ChannelOperator) {
        let (tx, rx) = mpsc::channel(8);
        (tx, ChannelOperator { rx, aborted: false })
    }
    async fn typed(&mut self) -> Option<String> {
        match self.rx.recv().await {
            Some(Answer::Typed(t)) => t,
            Some(Answer::Abort) => {
                self.aborted = true;
                None
            }
            _ => None,
        }
    }
}

impl Operator for ChannelOperator {
    async fn confirm(&mut self, _q: &ConfirmRequest) -> Reply {
        match self.rx.recv().await {
            Some(Answer::Typed(t)) => Reply::Typed(t),
            Some(Answer::Choose(c)) => Reply::Choose(c),
            Some(Answer::Abort) => {
                self.aborted = true;
                Reply::Typed(None)
            }
            _ => Reply::Typed(None),
        }
    }
    fn override_snapshot(
        &mut self,
        _q: &OverrideRequest,
    ) -> impl Future<Output = Option<String>> + Send {
        self.typed()
    }
    async fn interrupted(&mut self, _q: &InterruptedRequest) -> Option<Decision> {
        match self.rx.recv().await {
            Some(Answer::Decision(d)) => d,
            _ => None,
        }
    }
    fn take_abort(&mut self) -> bool {
        std::mem::take(&mut self.aborted)
    }
}

/// One run of a runbook.
pub struct Engine<A, R, O> {
    state: State,
    actions: A,
    recorder: R,
    operator: O,
    tx: broadcast::Sender<EngineEvent>,
    view: watch::Sender<EngineView>,
    redactor: Redactor,
}

impl<A: Actions, R: Recorder, O: Operator> Engine<A, R, O> {
    pub fn new(state: State, actions: A, recorder: R, operator: O, redactor: Redactor) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let (view, _) = watch::channel(state.view());
        Engine {
            state,
            actions,
            recorder,
            operator,
            tx,
            view,
            redactor,
        }
    }

    /// Events from now on (redacted).
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }

    /// The latest view of the run, updated after every input.
    pub fn watch(&self) -> watch::Receiver<EngineView> {
        self.view.subscribe()
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn into_state(self) -> State {
        self.state
    }

    fn emit(&self, ev: EngineEvent) {
        let _ = self.tx.send(ev.redacted(&self.redactor));
    }

    fn feed(&mut self, input: Input, queue: &mut VecDeque<Effect>) {
        let (s, fx) = apply(&self.state, input);
        self.state = s;
        queue.extend(fx);
        self.view.send_replace(self.state.view());
    }

    /// Runs until the state machine finishes; returns how the run ended.
    pub async fn run(&mut self, now: DateTime<Utc>) -> RunExit {
        let mut queue = VecDeque::new();
        self.feed(Input::Start { now }, &mut queue);
        let mut exit = None;
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Journal(entry) => {
                    let kind = entry.kind.clone();
                    let step = entry.step.as_deref().and_then(|id| self.state.index_of(id));
                    if let Err(e) = self.recorder.append(entry) {
                        tracing::error!("journal append failed: {e}");
                        queue.clear();
                        self.feed(
                            Input::JournalFailed {
                                kind,
                                step,
                                error: e.to_string(),
                            },
                            &mut queue,
                        );
                    }
                }
                Effect::Emit(ev) => self.emit(ev),
                Effect::ReadIdentity { step, db, preview } => {
                    let result = self.actions.identity(&db).await.map_err(|e| e.to_string());
                    let preview = match (&result, preview) {
                        (Ok(_), Some(req)) => self
                            .actions
                            .live_preview(&req)
                            .await
                            .map_err(|e| e.to_string()),
                        _ => Ok(Vec::new()),
                    };
                    self.feed(
                        Input::Identity {
                            step,
                            result,
                            preview,
                            at: Utc::now(),
                        },
                        &mut queue,
                    );
                }
                Effect::Ask(q) => {
                    // The operator sees what the screen may show: the redacted question.
                    // If that fails, the question goes unanswered: the step stops, nothing is done.
                    let redacted = match (EngineEvent::Question {
                        question: q.clone(),
                    })
                    .redacted(&self.redactor)
                    {
                        EngineEvent::Question { question } => Some(question),
                        _ => None,
                    };
                    let Some(q) = redacted else {
                        let input = match q {
                            Question::Confirm(c) => Input::Confirmation {
                                step: c.index,
                                typed: None,
                            },
                            Question::Override(o) => Input::Override {
                                step: o.index,
                                typed: None,
                            },
                            Question::Interrupted(r) => Input::Interrupted {
                                step: r.index,
                                decision: None,
                            },
                        };
                        self.feed(input, &mut queue);
                        continue;
                    };
                    let input = match &q {
                        Question::Confirm(c) => match self.operator.confirm(c).await {
                            Reply::Typed(typed) => {
                                if typed.is_none() && self.operator.take_abort() {
                                    Input::Aborted { step: c.index }
                                } else {
                                    Input::Confirmation {
                                        step: c.index,
                                        typed,
                                    }
                                }
                            }
                            Reply::Choose(choice) => Input::Choose {
                                step: c.index,
                                choice,
                            },
                        },
                        Question::Override(o) => {
                            let typed = self.operator.override_snapshot(o).await;
                            if typed.is_none() && self.operator.take_abort() {
                                Input::Aborted { step: o.index }
                            } else {
                                Input::Override {
                                    step: o.index,
                                    typed,
                                }
                            }
                        }
                        Question::Interrupted(r) => Input::Interrupted {
                            step: r.index,
                            decision: self.operator.interrupted(r).await,
                        },
                    };
                    self.feed(input, &mut queue);
                }
                Effect::Run { step, resolved } => {
                    let id = self.state.ctx.runbook.steps[step].id.clone();
                    // The action may journal lines of its own while it runs
                    // (written here, in order, before it goes on).
                    let (jtx, mut jrx) = mpsc::unbounded_channel::<JournalRequest>();
                    let out = Output::new(self.tx.clone(), step, &id, self.redactor.clone())
                        .with_journal(jtx);
                    let t0 = Instant::now();
                    let timeout_s = resolved.timeout_s;
                    let result = {
                        let (actions, request, out_ref) = (&self.actions, &resolved.request, &out);
                        let fut = async move {
                            let fut = dispatch(actions, request, out_ref);
                            match timeout_s {
                                Some(t) => tokio::time::timeout(Duration::from_secs(t), fut)
                                    .await
                                    .unwrap_or(Err(ActionError::Timeout(t))),
                                None => fut.await,
                            }
                        };
                        tokio::pin!(fut);
                        let recorder = &mut self.recorder;
                        loop {
                            tokio::select! {
                                r = &mut fut => break r,
                                Some((entry, ack)) = jrx.recv() => {
                                    let r = recorder.append(entry).map(|_| ()).map_err(|e| {
                                        tracing::error!("journal append failed: {e}");
                                        e.to_string()
                                    });
                                    let _ = ack.send(r);
                                }
                            }
                        }
                    };
                    let duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.feed(
                        Input::Done {
                            step,
                            result: result.map_err(|e| StepFailure::from(&e)),
                            duration_ms,
                        },
                        &mut queue,
                    );
                }
                Effect::Finish(e) => exit = Some(e),
            }
        }
        let exit = exit.unwrap_or_else(|| RunExit::Stopped {
            reason: "the engine stopped without an outcome".into(),
        });
        if !self.state.ctx.dry_run {
            let entry = Entry::new(kinds::RUN_FINISHED, exit.message())
                .data(json!({ "exit": exit, "code": exit.code() }));
            if let Err(e) = self.recorder.append(entry) {
                tracing::error!("could not journal the end of the run: {e}");
            }
        }
        exit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question() -> ConfirmRequest {
        ConfirmRequest {
            index: 3,
            step: "restore".into(),
            action: crate::runbook::Action::Restore,
            expected: "app".into(),
            also: Vec::new(),
            target: "h:5432/app".into(),
            identity: crate::engine::types::DbIdentity {
                server: "h:5432".into(),
                system_identifier: "1".into(),
                database: "app".into(),
                oid: Some(1),
                server_started_at: None,
            },
            preview: Vec::new(),
            backup: None,
        }
    }

    /// The console's answers reach the engine as they were sent: a typed
    /// name, another backup, or (channel closed) no answer.
    #[tokio::test]
    async fn the_channel_operator_passes_a_choice_or_the_typed_name() {
        let (tx, mut op) = ChannelOperator::new();
        let choice = BackupChoice {
            name: "older.sql".into(),
            reason: "why".into(),
            typed: None,
            source: "console".into(),
        };
        tx.send(Answer::Choose(choice.clone())).await.unwrap();
        tx.send(Answer::Typed(Some("app".into()))).await.unwrap();
        assert_eq!(op.confirm(&question()).await, Reply::Choose(choice));
        assert_eq!(
            op.confirm(&question()).await,
            Reply::Typed(Some("app".into()))
        );
        drop(tx);
        assert_eq!(op.confirm(&question()).await, Reply::Typed(None));
    }
}
