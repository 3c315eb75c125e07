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
use serde::{Deserialize, Serialize};

/// What kind of failure an action ended in: the operator's first question,
/// journaled with every failed step (`data.class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// The server or host did not answer (refused, down, disconnected).
    Unreachable,
    /// Authentication failed (password, key, pg_hba).
    Auth,
    /// TLS could not be set up or the certificate did not verify.
    Tls,
    /// Authenticated, but not allowed (SQLSTATE 42501, EACCES).
    PermissionDenied,
    Timeout,
    /// A database, table, file or host that is not there.
    NotFound,
    /// Too many connections, or an object in use.
    Busy,
    /// A check of lifeline's refused to go on (marker, identity, hash,
    /// confinement, a hostile dump); nothing was done past it.
    RefusedByCheck,
    /// The step was not confirmed by the operator.
    NotConfirmed,
    /// The operator aborted the run while the step waited for them.
    Aborted,
    /// The runbook or its answers do not resolve to a step that can run.
    BadInput,
    Io,
    NotWired,
    /// A failure none of the above names (the server's own error, a
    /// command's exit status).
    Failed,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Auth => "auth",
            ErrorClass::Tls => "tls",
            ErrorClass::PermissionDenied => "permission-denied",
            ErrorClass::Timeout => "timeout",
            ErrorClass::NotFound => "not-found",
            ErrorClass::Busy => "busy",
            ErrorClass::RefusedByCheck => "refused-by-check",
            ErrorClass::NotConfirmed => "not-confirmed",
            ErrorClass::Aborted => "aborted",
            ErrorClass::BadInput => "bad-input",
            ErrorClass::Io => "io",
            ErrorClass::NotWired => "not-wired",
            ErrorClass::Failed => "failed",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(
        "the '{action}' action is not wired into this build yet (it needs {needs}); nothing was done"
    )]
    NotWired {
        action: &'static str,
        needs: &'static str,
    },
    /// A check refused to go on; the sentence says what was (not) done.
    #[error("{0}")]
    Refused(String),
    /// The picked backup is not the one read: refused before any swap.
    #[error(
        "the backup '{path}' is not the one picked: pick-backup recorded sha256 {picked}, the restore read sha256 {read}; it was replaced or changed after the pick. {consequence}; run pick-backup again"
    )]
    BackupChanged {
        path: String,
        picked: String,
        read: String,
        consequence: String,
    },
    /// What the step needs is not there (a database, a backup that qualifies).
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("{what}: {source}")]
    DbIn {
        what: String,
        #[source]
        source: crate::db::DbError,
    },
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: Box<crate::transport::TransportError>,
    },
    #[error("{what}: {source}")]
    Restore {
        what: String,
        #[source]
        source: Box<crate::restore::RestoreError>,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {0} s")]
    Timeout(u64),
}

impl From<crate::transport::TransportError> for ActionError {
    fn from(source: crate::transport::TransportError) -> Self {
        ActionError::Transport {
            what: "transport".into(),
            source: Box::new(source),
        }
    }
}

impl From<crate::restore::RestoreError> for ActionError {
    fn from(source: crate::restore::RestoreError) -> Self {
        ActionError::Restore {
            what: "restore".into(),
            source: Box::new(source),
        }
    }
}

fn db_class(e: &crate::db::DbError) -> ErrorClass {
    use crate::db::ErrorClass as D;
    match e.class() {
        D::Unreachable => ErrorClass::Unreachable,
        D::AuthFailed => ErrorClass::Auth,
        D::Missing => ErrorClass::NotFound,
        D::TooManyConnections => ErrorClass::Busy,
        D::TlsFailed => ErrorClass::Tls,
        D::Other => match e.sqlstate() {
            Some("42501") => ErrorClass::PermissionDenied,
            Some("57014") | Some("55P03") => ErrorClass::Timeout,
            Some("3D000") | Some("42P01") | Some("42704") | Some("3F000") => ErrorClass::NotFound,
            Some("55006") => ErrorClass::Busy,
            Some("28000") | Some("28P01") => ErrorClass::Auth,
            Some(s) if s.starts_with("08") || s.starts_with("57P") => ErrorClass::Unreachable,
            _ => ErrorClass::Failed,
        },
    }
}

fn io_class(e: &std::io::Error) -> ErrorClass {
    match e.kind() {
        std::io::ErrorKind::NotFound => ErrorClass::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorClass::PermissionDenied,
        std::io::ErrorKind::TimedOut => ErrorClass::Timeout,
        std::io::ErrorKind::AlreadyExists => ErrorClass::RefusedByCheck,
        _ => ErrorClass::Io,
    }
}

impl ActionError {
    /// The class the journal records with a failed step.
    pub fn class(&self) -> ErrorClass {
        use crate::transport::ErrorKind as T;
        match self {
            ActionError::NotWired { .. } => ErrorClass::NotWired,
            ActionError::Refused(_) | ActionError::BackupChanged { .. } => {
                ErrorClass::RefusedByCheck
            }
            ActionError::NotFound(_) => ErrorClass::NotFound,
            ActionError::Failed(_) => ErrorClass::Failed,
            ActionError::Db(e) | ActionError::DbIn { source: e, .. } => db_class(e),
            ActionError::Transport { source, .. } => match source.kind() {
                T::Unreachable | T::Disconnected => ErrorClass::Unreachable,
                T::AuthFailed | T::Key => ErrorClass::Auth,
                T::HostKeyUnknown | T::HostKeyChanged => ErrorClass::RefusedByCheck,
                T::TimedOut => ErrorClass::Timeout,
                T::Other => ErrorClass::Failed,
            },
            ActionError::Restore { source, .. } => {
                use crate::restore::RestoreError as R;
                match source.as_ref() {
                    R::Refused { .. } | R::NotATarget { .. } | R::NoTrailer { .. } => {
                        ErrorClass::RefusedByCheck
                    }
                    R::Connect { .. } => ErrorClass::Unreachable,
                    R::Cancelled { .. } => ErrorClass::Timeout,
                    _ => ErrorClass::Failed,
                }
            }
            ActionError::Io { source, .. } => io_class(source),
            ActionError::Timeout(_) => ErrorClass::Timeout,
        }
    }
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

    /// The run's redactor: a password read while acting is registered here.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
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

/// The outcome of a `note` step: the text, said and recorded. Every
/// implementation's `note` is this (a note touches nothing).
pub fn note_outcome(text: &str, out: &Output) -> StepOutcome {
    out.line(text);
    StepOutcome::ok(text.to_string(), serde_json::json!({ "text": text }))
}

/// What the engine calls to act. Every method is required: an
/// implementation says for each action what it does (or which error it
/// gives), so a new action cannot silently fall back to "not wired".
pub trait Actions: Send + Sync {
    /// The identity of a database (system identifier, OID or absent).
    fn identity(
        &self,
        db: &DbTarget,
    ) -> impl Future<Output = Result<DbIdentity, ActionError>> + Send;

    /// Says the text (see [`note_outcome`]).
    fn note(
        &self,
        text: &str,
        out: &Output,
    ) -> impl Future<Output = Result<StepOutcome, ActionError>> + Send;

    fn probe(
        &self,
        req: &ProbeRequest,
        out: &Output,
    ) -> impl Future<Output = Result<ProbeOutcome, ActionError>> + Send;

    /// Stop, disable, mask; then hold for `req.hold_s` and report what came
    /// back and who still writes. The engine fails the step unless
    /// `StopOutcome::hold_passed()`.
    fn stop_services(
        &self,
        req: &StopRequest,
        out: &Output,
    ) -> impl Future<Output = Result<StopOutcome, ActionError>> + Send;

    fn snapshot(
        &self,
        req: &SnapshotRequest,
        out: &Output,
    ) -> impl Future<Output = Result<SnapshotOutcome, ActionError>> + Send;

    fn pick_backup(
        &self,
        req: &PickRequest,
        out: &Output,
    ) -> impl Future<Output = Result<PickOutcome, ActionError>> + Send;

    fn restore(
        &self,
        req: &RestoreRequest,
        out: &Output,
    ) -> impl Future<Output = Result<RestoreOutcome, ActionError>> + Send;

    /// Gives the objects of a restored database back to the owners the
    /// restore skipped (as the admin connection).
    fn reapply_owners(
        &self,
        req: &ReapplyRequest,
        out: &Output,
    ) -> impl Future<Output = Result<ReapplyOutcome, ActionError>> + Send;

    fn verify(
        &self,
        req: &VerifyRequest,
        out: &Output,
    ) -> impl Future<Output = Result<VerifyOutcome, ActionError>> + Send;

    fn swap(
        &self,
        req: &SwapRequest,
        out: &Output,
    ) -> impl Future<Output = Result<SwapOutcome, ActionError>> + Send;

    fn merge_tables(
        &self,
        req: &MergeRequest,
        out: &Output,
    ) -> impl Future<Output = Result<MergeOutcome, ActionError>> + Send;

    /// Recovers the database's cluster from an archive beside the live one,
    /// just before the destructive transaction found in the WAL, and dumps
    /// the recovered database. Touches nothing live.
    fn recover_pitr(
        &self,
        req: &PitrRequest,
        out: &Output,
    ) -> impl Future<Output = Result<PitrOutcome, ActionError>> + Send;

    /// Decides between the pitr and the dump path: pitr when the archive
    /// holds a base backup that ended before the destructive transaction
    /// found in its WAL and every segment in between. Reads only.
    fn choose_path(
        &self,
        req: &ChoosePathRequest,
        out: &Output,
    ) -> impl Future<Output = Result<PathOutcome, ActionError>> + Send;

    /// Lines measured in the world that the operator must read before
    /// confirming `req` (what a merge would write, what a swap would
    /// discard). Nothing may be written.
    fn live_preview(
        &self,
        req: &ActionRequest,
    ) -> impl Future<Output = Result<Vec<String>, ActionError>> + Send;

    fn start_services(
        &self,
        req: &StartRequest,
        out: &Output,
    ) -> impl Future<Output = Result<StartOutcome, ActionError>> + Send;

    fn command(
        &self,
        req: &CommandRequest,
        out: &Output,
    ) -> impl Future<Output = Result<CommandOutcome, ActionError>> + Send;

    fn sql(
        &self,
        req: &SqlRequest,
        out: &Output,
    ) -> impl Future<Output = Result<SqlOutcome, ActionError>> + Send;
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
        ActionRequest::ReapplyOwners(r) => a.reapply_owners(r, out).await?.into(),
        ActionRequest::Verify(r) => a.verify(r, out).await?.into(),
        ActionRequest::Swap(r) => a.swap(r, out).await?.into(),
        ActionRequest::MergeTables(r) => a.merge_tables(r, out).await?.into(),
        ActionRequest::RecoverPitr(r) => a.recover_pitr(r, out).await?.into(),
        ActionRequest::ChoosePath(r) => a.choose_path(r, out).await?.into(),
        ActionRequest::StartServices(r) => a.start_services(r, out).await?.into(),
        ActionRequest::Command(r) => a.command(r, out).await?.into(),
        ActionRequest::Sql(r) => a.sql(r, out).await?.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbError;
    use rstest::rstest;

    fn server(code: &str) -> DbError {
        DbError::Server {
            target: "h:5432/app".into(),
            what: "q".into(),
            server: Box::new(crate::db::error::ServerMessage {
                sqlstate: code.into(),
                severity: "ERROR".into(),
                message: "m".into(),
                detail: None,
                hint: None,
            }),
        }
    }

    #[rstest]
    #[case(ActionError::Db(DbError::Unreachable { target: "t".into(), reason: "r".into() }), "unreachable")]
    #[case(ActionError::Db(DbError::AuthFailed { target: "t".into(), user: "u".into(), reason: "r".into() }), "auth")]
    #[case(ActionError::Db(DbError::TlsFailed { target: "t".into(), reason: "r".into() }), "tls")]
    #[case(ActionError::Db(DbError::Missing { server: "s".into(), dbname: "d".into() }), "not-found")]
    #[case(ActionError::Db(server("42501")), "permission-denied")]
    #[case(ActionError::Db(server("57014")), "timeout")]
    #[case(ActionError::Db(server("55006")), "busy")]
    #[case(ActionError::DbIn { what: "w".into(), source: server("42P01") }, "not-found")]
    #[case(ActionError::Db(server("23505")), "failed")]
    #[case(ActionError::Io { what: "w".into(), source: std::io::Error::from(std::io::ErrorKind::PermissionDenied) }, "permission-denied")]
    #[case(ActionError::Io { what: "w".into(), source: std::io::Error::from(std::io::ErrorKind::NotFound) }, "not-found")]
    #[case(ActionError::Io { what: "w".into(), source: std::io::Error::other("x") }, "io")]
    #[case(ActionError::from(crate::transport::TransportError::NoSuchHost("h".into())), "failed")]
    #[case(ActionError::Refused("no".into()), "refused-by-check")]
    #[case(ActionError::BackupChanged { path: "p".into(), picked: "a".into(), read: "b".into(), consequence: "c".into() }, "refused-by-check")]
    #[case(ActionError::NotFound("no".into()), "not-found")]
    #[case(ActionError::Timeout(3), "timeout")]
    #[case(ActionError::NotWired { action: "a", needs: "n" }, "not-wired")]
    fn every_error_has_its_class(#[case] e: ActionError, #[case] class: &str) {
        assert_eq!(e.class().as_str(), class, "{e}");
        assert_eq!(serde_json::to_value(e.class()).unwrap(), class);
    }

    #[test]
    fn typed_sources_stay_reachable() {
        let e = ActionError::DbIn {
            what: "the swap was rolled back".into(),
            source: server("55006"),
        };
        let src = std::error::Error::source(&e).unwrap();
        assert!(src.downcast_ref::<DbError>().is_some());
        assert!(e.to_string().starts_with("the swap was rolled back: "));
    }
}
