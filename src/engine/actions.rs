//! The seam between the engine and the world: one async method per step
//! action, called with fully resolved requests, returning outcomes as data.
//! The engine owns journaling, confirmation, guards, ordering and resume;
//! an implementation only acts. Unwired actions fail loudly, never fake success.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::events::{EngineEvent, ProgressUnit};
use super::types::*;
use crate::redact::Redactor;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(
        "the '{action}' action is not wired into this build yet (it needs {needs}); nothing was done"
    )]
    NotWired {
        action: &'static str,
        needs: &'static str,
    },
    #[error("{0}")]
    Failed(String),
    #[error("database {target}: {message}")]
    Db { target: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {0} s")]
    Timeout(u64),
}

/// Where an action streams its output and progress while it runs.
/// Every line is redacted before it leaves; the last lines are kept for the journal.
#[derive(Clone)]
pub struct Output {
    tx: broadcast::Sender<EngineEvent>,
    index: usize,
    step: String,
    redactor: Redactor,
    kept: Arc<Mutex<Vec<String>>>,
    journal: Option<JournalTx>,
}

/// A journal line an action asks the engine to write now, with where the
/// engine says whether it was written (fsynced) or why not.
pub type JournalRequest = (crate::journal::Entry, oneshot::Sender<Result<(), String>>);
pub type JournalTx = mpsc::UnboundedSender<JournalRequest>;

impl Output {
    pub fn new(
        tx: broadcast::Sender<EngineEvent>,
        index: usize,
        step: &str,
        redactor: Redactor,
    ) -> Self {
        Output {
            tx,
            index,
            step: step.to_string(),
            redactor,
            kept: Arc::new(Mutex::new(Vec::new())),
            journal: None,
        }
    }

    /// This output can also write journal lines of its own (through the engine's journal).
    pub fn with_journal(mut self, tx: JournalTx) -> Self {
        self.journal = Some(tx);
        self
    }

    /// Writes a record to the run's journal before the action goes on
    /// (e.g. the pids about to be frozen). `Ok(false)`: this output has no
    /// journal (tests, callers outside a run). An error: the engine could
    /// not write it, and the action must not do what it was to record.
    pub async fn journal(&self, entry: crate::journal::Entry) -> Result<bool, String> {
        let Some(tx) = &self.journal else {
            return Ok(false);
        };
        let entry = entry.step(self.step.clone());
        let (ack, done) = oneshot::channel();
        tx.send((entry, ack))
            .map_err(|_| "the run's journal is closed".to_string())?;
        match done.await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the run's journal is closed".to_string()),
        }
    }

    /// The id of the step this output belongs to.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// A sink that goes nowhere (tests, and callers outside a run).
    pub fn discard() -> Self {
        let (tx, _) = broadcast::channel(1);
        Output::new(tx, 0, "", Redactor::new())
    }

    pub fn line(&self, line: impl AsRef<str>) {
        let line = self.redactor.redact(line.as_ref());
        if let Ok(mut k) = self.kept.lock() {
            k.push(line.clone());
            let n = k.len();
            if n > OUTPUT_KEEP {
                k.drain(..n - OUTPUT_KEEP);
            }
        }
        let _ = self.tx.send(EngineEvent::Output {
            index: self.index,
            id: self.step.clone(),
            line,
        });
    }

    /// Bytes done of a total (a restore).
    pub fn progress(&self, done: u64, total: Option<u64>, message: impl AsRef<str>) {
        self.progress_in(ProgressUnit::Bytes, done, total, message);
    }

    /// Seconds elapsed of a total (a hold's countdown).
    pub fn countdown(&self, elapsed_s: u64, total_s: u64, message: impl AsRef<str>) {
        self.progress_in(ProgressUnit::Seconds, elapsed_s, Some(total_s), message);
    }

    fn progress_in(
        &self,
        unit: ProgressUnit,
        done: u64,
        total: Option<u64>,
        message: impl AsRef<str>,
    ) {
        let _ = self.tx.send(EngineEvent::Progress {
            index: self.index,
            id: self.step.clone(),
            done,
            total,
            unit,
            message: self.redactor.redact(message.as_ref()),
        });
    }

    /// The last lines (at most `OUTPUT_KEEP`), redacted.
    pub fn kept(&self) -> Vec<String> {
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }
}

fn not_wired<T>(action: &'static str, needs: &'static str) -> Result<T, ActionError> {
    Err(ActionError::NotWired { action, needs })
}

/// What the engine calls to act. Every method has a default that reports
/// `NotWired`; an implementation overrides what it can do.
pub trait Actions: Send + Sync {
    /// The identity of a database (system identifier, OID or absent).
    fn identity(
        &self,
        db: &DbTarget,
    ) -> impl Future<Output = Result<DbIdentity, ActionError>> + Send {
        let _ = db;
        async { not_wired("identity", "src/db") }
    }

    fn note(
        &self,
        text: &str,
        out: &Output,
    ) -> impl Future<Output = Result<StepOutcome, ActionError>> + Send {
        out.line(text);
        let o = StepOutcome::ok(text.to_string(), serde_json::json!({ "text": text }));
        async move { Ok(o) }
    }

    fn probe(
        &self,
        req: &ProbeRequest,
        out: &Output,
    ) -> impl Future<Output = Result<ProbeOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("probe", "src/probe and src/db") }
    }

    /// Stop, disable, mask; then hold for `req.hold_s` and report what came
    /// back and who still writes. The engine fails the step unless
    /// `StopOutcome::hold_passed()`.
    fn stop_services(
        &self,
        req: &StopRequest,
        out: &Output,
    ) -> impl Future<Output = Result<StopOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("stop-services", "src/probe and src/transport") }
    }

    fn snapshot(
        &self,
        req: &SnapshotRequest,
        out: &Output,
    ) -> impl Future<Output = Result<SnapshotOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("snapshot", "pg_dump") }
    }

    fn pick_backup(
        &self,
        req: &PickRequest,
        out: &Output,
    ) -> impl Future<Output = Result<PickOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("pick-backup", "src/catalog") }
    }

    fn restore(
        &self,
        req: &RestoreRequest,
        out: &Output,
    ) -> impl Future<Output = Result<RestoreOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("restore", "src/restore") }
    }

    fn verify(
        &self,
        req: &VerifyRequest,
        out: &Output,
    ) -> impl Future<Output = Result<VerifyOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("verify", "src/db integrity checks") }
    }

    fn swap(
        &self,
        req: &SwapRequest,
        out: &Output,
    ) -> impl Future<Output = Result<SwapOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("swap", "a database connection") }
    }

    fn merge_tables(
        &self,
        req: &MergeRequest,
        out: &Output,
    ) -> impl Future<Output = Result<MergeOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("merge-tables", "a database connection") }
    }

    /// Lines measured in the world that the operator must read before
    /// confirming `req` (what a merge would write, what a swap would
    /// discard). Nothing may be written. Default: none.
    fn live_preview(
        &self,
        req: &ActionRequest,
    ) -> impl Future<Output = Result<Vec<String>, ActionError>> + Send {
        let _ = req;
        async { Ok(Vec::new()) }
    }

    fn start_services(
        &self,
        req: &StartRequest,
        out: &Output,
    ) -> impl Future<Output = Result<StartOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("start-services", "src/probe and src/transport") }
    }

    fn command(
        &self,
        req: &CommandRequest,
        out: &Output,
    ) -> impl Future<Output = Result<CommandOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("command", "src/transport") }
    }

    fn sql(
        &self,
        req: &SqlRequest,
        out: &Output,
    ) -> impl Future<Output = Result<SqlOutcome, ActionError>> + Send {
        let _ = (req, out);
        async { not_wired("sql", "a database connection") }
    }
}

/// Calls the action a request names and turns its outcome into a `StepOutcome`.
pub async fn dispatch<A: Actions>(
    a: &A,
    req: &ActionRequest,
    out: &Output,
) -> Result<StepOutcome, ActionError> {
    Ok(match req {
        ActionRequest::Note { text } => a.note(text, out).await?,
        ActionRequest::Probe(r) => a.probe(r, out).await?.into(),
        ActionRequest::StopServices(r) => a.stop_services(r, out).await?.into(),
        ActionRequest::Snapshot(r) => a.snapshot(r, out).await?.into(),
        ActionRequest::PickBackup(r) => a.pick_backup(r, out).await?.into(),
        ActionRequest::Restore(r) => a.restore(r, out).await?.into(),
        ActionRequest::Verify(r) => a.verify(r, out).await?.into(),
        ActionRequest::Swap(r) => a.swap(r, out).await?.into(),
        ActionRequest::MergeTables(r) => a.merge_tables(r, out).await?.into(),
        ActionRequest::StartServices(r) => a.start_services(r, out).await?.into(),
        ActionRequest::Command(r) => a.command(r, out).await?.into(),
        ActionRequest::Sql(r) => a.sql(r, out).await?.into(),
    })
}
