//! The executor: runs a pg_dump plain stream into a target database made by
//! `create_target`, serially or over N connections, with progress events and
//! a manifest. It stops at the first error, never touches another database,
//! and leaves the target marked INCOMPLETE unless every statement ran.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, CancelToken, Client, Config, CopyInSink, Socket};
use tokio_util::sync::CancellationToken;

use super::lexer::{
    COPY_CHUNK, CopyChunk, Item, LexError, LexErrorKind, Lexer, MetaCommand, Statement,
};
use super::owners::{OwnerChange, owner_change};
use super::progress::{EventTx, Manifest, Phase, Reporter, RestoreEvent};
use super::scan::{Guard, Policy};
use super::source::{RestoreSource, SourceError};
use super::sql::{Class, LockMode, QName};
use super::target::{
    MARK_COMPLETE, MARK_INCOMPLETE, TargetError, TargetStatus, now_rfc3339, set_comment,
    target_status,
};

/// Progress snapshots are sent at most this often.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
const READ_SIZE: usize = 256 << 10;
/// COPY chunks queued per worker (each ~1 MiB): bounds memory.
const WORKER_QUEUE: usize = 2;
/// Post-data statements read ahead of the workers.
const MAX_PENDING: usize = 512;

/// What the server said, from `as_db_error()` (or the client error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerError {
    pub severity: Option<String>,
    pub code: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The server's CONTEXT (for COPY: `COPY t, line 5, column c: ...`).
    pub context: Option<String>,
    /// 1-based character position in the statement, for syntax errors.
    pub position: Option<u32>,
}

impl ServerError {
    pub fn from_pg(e: &tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let position = match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            };
            return ServerError {
                severity: Some(db.severity().to_string()),
                code: Some(db.code().code().to_string()),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
                context: db.where_().map(str::to_string),
                position,
            };
        }
        let mut message = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        ServerError {
            message,
            ..ServerError::default()
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.severity, &self.code) {
            (Some(s), Some(c)) => write!(f, "{s} {c}: {}", self.message)?,
            _ => write!(f, "{}", self.message)?,
        }
        if let Some(d) = &self.detail {
            write!(f, "; DETAIL: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; HINT: {h}")?;
        }
        if let Some(c) = &self.context {
            write!(f, "; CONTEXT: {c}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("cannot connect to the target '{db}': {message}")]
    Connect { db: String, message: String },
    #[error("refusing to restore into '{db}': {why}")]
    NotATarget { db: String, why: String },
    #[error("reading the dump failed at byte {offset}: {message}")]
    Read { offset: u64, message: String },
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Lex(#[from] LexError),
    #[error(
        "the dump ends inside the COPY data of table '{table}' (COPY at line {start_line}, byte {start_offset}) after {rows} row(s), at line {line} (byte {offset}): the file is truncated; restore another backup"
    )]
    TruncatedCopy {
        table: String,
        start_line: u64,
        start_offset: u64,
        rows: u64,
        line: u64,
        offset: u64,
    },
    #[error(
        "the dump stops at line {line} (byte {offset}) without pg_dump's last line '-- PostgreSQL database dump complete': the file is truncated (or not made by pg_dump); restore another backup"
    )]
    NoTrailer { line: u64, offset: u64 },
    #[error("the dump ends {what} (line {line}): the file is truncated; restore another backup")]
    Unfinished { what: &'static str, line: u64 },
    #[error("statement at line {line} (byte {offset}) failed{}: '{first_line}': {server}", error_line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Statement {
        line: u64,
        offset: u64,
        first_line: String,
        /// The line of the error inside the statement (syntax errors).
        error_line: Option<u64>,
        server: Box<ServerError>,
    },
    #[error("COPY into table '{table}' (line {line}, byte {offset}) failed{}: {server}", row_line.map(|l| format!(" at dump line {l}")).unwrap_or_default())]
    Copy {
        table: String,
        line: u64,
        offset: u64,
        /// The dump line of the row the server rejected, when it said.
        row_line: Option<u64>,
        server: Box<ServerError>,
    },
    #[error("line {line} (byte {offset}): refused '{first_line}': {reason}")]
    Refused {
        line: u64,
        offset: u64,
        first_line: String,
        reason: String,
    },
    #[error("cancelled by the operator at line {line} (byte {offset})")]
    Cancelled { line: u64, offset: u64 },
    #[error("a restore connection stopped unexpectedly: {0}")]
    WorkerLost(String),
    #[error(transparent)]
    Target(#[from] TargetError),
}

impl RestoreError {
    /// The SQLSTATE the server gave, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            RestoreError::Statement { server, .. } | RestoreError::Copy { server, .. } => {
                server.code.as_deref()
            }
            _ => None,
        }
    }
}

/// A failed restore: the error and what was loaded before it (never complete).
#[derive(Debug, thiserror::Error)]
#[error(
    "restore into '{}' failed: {error}; the target is marked INCOMPLETE and must not be used as a whole restore",
    manifest.target_db
)]
pub struct RestoreFailure {
    pub error: RestoreError,
    pub manifest: Box<Manifest>,
}

fn stmt_err(stmt: &Statement, e: &tokio_postgres::Error) -> RestoreError {
    let server = ServerError::from_pg(e);
    let error_line = server.position.map(|p| {
        let before = stmt
            .sql
            .chars()
            .take((p as usize).saturating_sub(1))
            .filter(|&c| c == '\n')
            .count();
        stmt.line + before as u64
    });
    RestoreError::Statement {
        line: stmt.line,
        offset: stmt.offset,
        first_line: stmt.first_line(),
        error_line,
        server: Box::new(server),
    }
}

/// Bounds a restore's connections need from the TLS connector.
pub trait RestoreTls:
    MakeTlsConnect<Socket, Stream = Self::S, TlsConnect = Self::C> + Clone + Send + Sync + 'static
{
    type S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    type C: TlsConnect<Socket, Stream = Self::S, Future = Self::F> + Send;
    type F: std::future::Future<Output = Result<Self::S, <Self::C as TlsConnect<Socket>>::Error>>
        + Send;
}

impl<T> RestoreTls for T
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    type S = T::Stream;
    type C = T::TlsConnect;
    type F = <T::TlsConnect as TlsConnect<Socket>>::Future;
}

struct Conn {
    client: Client,
    cancel: CancelToken,
    _task: tokio::task::JoinHandle<()>,
}

async fn connect<T: RestoreTls>(
    config: &Config,
    tls: T,
    target: &str,
    events: Option<EventTx>,
) -> Result<Conn, RestoreError> {
    let mut cfg = config.clone();
    cfg.dbname(target);
    cfg.application_name("lifeline restore");
    let connect_err = |message: String| RestoreError::Connect {
        db: target.to_string(),
        message,
    };
    let (client, mut connection) = crate::db::connect::open_with(&cfg, tls)
        .await
        .map_err(|e| connect_err(ServerError::from_pg(&e).to_string()))?;
    let task = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notice(n))) => {
                    if let Some(tx) = &events {
                        let _ = tx.send(RestoreEvent::Notice {
                            severity: n.severity().to_string(),
                            message: n.message().to_string(),
                        });
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
    });
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(|e| connect_err(ServerError::from_pg(&e).to_string()))?;
    let db: String = row.get(0);
    if db != target {
        return Err(RestoreError::NotATarget {
            db: target.to_string(),
            why: format!("the connection reached database '{db}' instead"),
        });
    }
    let cancel = client.cancel_token();
    Ok(Conn {
        client,
        cancel,
        _task: task,
    })
}

/// Session settings seen so far, replayed on every connection.
#[derive(Debug, Clone, Default)]
struct SettingsSnap {
    version: u64,
    sql: Arc<String>,
}

#[derive(Debug, Default)]
struct Settings {
    list: Vec<(String, String)>,
    snap: SettingsSnap,
}

impl Settings {
    fn update(&mut self, name: &str, sql: &str) {
        if name == "all" {
            self.list.clear();
        } else if self.list.iter().any(|(n, s)| n == name && s == sql) {
            return;
        }
        self.list.retain(|(n, _)| n != name);
        self.list.push((name.to_string(), sql.to_string()));
        let joined: Vec<&str> = self.list.iter().map(|(_, s)| s.as_str()).collect();
        self.snap = SettingsSnap {
            version: self.snap.version + 1,
            sql: Arc::new(joined.join("\n")),
        };
    }
}

async fn apply_settings(
    client: &Client,
    s: &SettingsSnap,
    applied: &mut u64,
) -> Result<(), tokio_postgres::Error> {
    if *applied != s.version {
        if !s.sql.is_empty() {
            client.batch_execute(&s.sql).await?;
        }
        *applied = s.version;
    }
    Ok(())
}

#[derive(Debug)]
struct CopyInfo {
    id: u64,
    table: String,
    stmt: Statement,
    settings: SettingsSnap,
}

/// One COPY running on one connection (a whole table, or a part of it).
struct CopyRun {
    info: Arc<CopyInfo>,
    sink: std::pin::Pin<Box<CopyInSink<Bytes>>>,
    /// (complete lines sent before the chunk, dump line of its first byte).
    spans: Vec<(u64, u64)>,
    lines: u64,
}

impl CopyRun {
    async fn open(client: &Client, info: Arc<CopyInfo>) -> Result<Self, RestoreError> {
        match client.copy_in::<str, Bytes>(&info.stmt.sql).await {
            Ok(sink) => Ok(CopyRun {
                info,
                sink: Box::pin(sink),
                spans: Vec::new(),
                lines: 0,
            }),
            Err(e) => Err(stmt_err(&info.stmt, &e)),
        }
    }

    async fn send(&mut self, chunk: CopyChunk) -> Result<(), RestoreError> {
        self.spans.push((self.lines, chunk.line));
        self.lines += chunk.lines;
        match self.sink.as_mut().send(chunk.data).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(&e)),
        }
    }

    async fn finish(mut self) -> Result<u64, RestoreError> {
        match self.sink.as_mut().finish().await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(&e)),
        }
    }

    fn fail(&self, e: &tokio_postgres::Error) -> RestoreError {
        let server = ServerError::from_pg(e);
        let row_line = server
            .context
            .as_deref()
            .and_then(copy_context_line)
            .and_then(|n| {
                let (before, first) = self.spans.iter().rev().find(|(b, _)| *b < n)?;
                Some(first + (n - 1 - before))
            });
        RestoreError::Copy {
            table: self.info.table.clone(),
            line: self.info.stmt.line,
            offset: self.info.stmt.offset,
            row_line,
            server: Box::new(server),
        }
    }
}

/// `COPY t, line 5, column c: ...` -> 5.
fn copy_context_line(ctx: &str) -> Option<u64> {
    let i = ctx.find(", line ")? + ", line ".len();
    let digits: String = ctx[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// State the workers share with the reader.
struct Shared {
    error: Mutex<Option<RestoreError>>,
    failed: CancellationToken,
    rows: Mutex<BTreeMap<String, u64>>,
    events: Option<EventTx>,
}

impl Shared {
    fn fail(&self, e: RestoreError) {
        let mut g = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
        self.failed.cancel();
    }

    fn take_error(&self) -> Option<RestoreError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn add_rows(&self, table: &str, n: u64) {
        let total = {
            let mut g = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            let v = g.entry(table.to_string()).or_insert(0);
            *v += n;
            *v
        };
        if let Some(tx) = &self.events {
            let _ = tx.send(RestoreEvent::TableLoaded {
                table: table.to_string(),
                rows: total,
            });
        }
    }

    fn rows(&self) -> BTreeMap<String, u64> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn tables(&self) -> usize {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

enum Job {
    Chunk {
        info: Arc<CopyInfo>,
        chunk: CopyChunk,
    },
    Flush(oneshot::Sender<()>),
    Stmt {
        stmt: Arc<Statement>,
        settings: SettingsSnap,
    },
}

struct Done {
    worker: usize,
    result: Result<(), RestoreError>,
}

async fn worker(
    me: usize,
    conn: Conn,
    mut rx: mpsc::Receiver<Job>,
    shared: Arc<Shared>,
    done: mpsc::UnboundedSender<Done>,
) {
    let mut applied = 0u64;
    let mut copy: Option<CopyRun> = None;
    while let Some(job) = rx.recv().await {
        match job {
            Job::Chunk { info, chunk } => {
                if shared.failed.is_cancelled() {
                    copy = None;
                    continue;
                }
                if let Err(e) =
                    worker_chunk(&conn.client, &shared, &mut copy, &mut applied, info, chunk).await
                {
                    copy = None;
                    shared.fail(e);
                }
            }
            Job::Flush(reply) => {
                if let Some(c) = copy.take() {
                    let table = c.info.table.clone();
                    match c.finish().await {
                        Ok(n) => shared.add_rows(&table, n),
                        Err(e) => shared.fail(e),
                    }
                }
                let _ = reply.send(());
            }
            Job::Stmt { stmt, settings } => {
                let result = match apply_settings(&conn.client, &settings, &mut applied).await {
                    Err(e) => Err(stmt_err(&stmt, &e)),
                    Ok(()) => conn
                        .client
                        .batch_execute(&stmt.sql)
                        .await
                        .map_err(|e| stmt_err(&stmt, &e)),
                };
                if done.send(Done { worker: me, result }).is_err() {
                    break;
                }
            }
        }
    }
    // A COPY still open here was not finished: dropping it aborts it (CopyFail).
    drop(copy);
}

async fn worker_chunk(
    client: &Client,
    shared: &Shared,
    copy: &mut Option<CopyRun>,
    applied: &mut u64,
    info: Arc<CopyInfo>,
    chunk: CopyChunk,
) -> Result<(), RestoreError> {
    if copy.as_ref().map(|c| c.info.id) != Some(info.id) {
        if let Some(c) = copy.take() {
            let table = c.info.table.clone();
            let n = c.finish().await?;
            shared.add_rows(&table, n);
        }
        apply_settings(client, &info.settings, applied)
            .await
            .map_err(|e| stmt_err(&info.stmt, &e))?;
        *copy = Some(CopyRun::open(client, info).await?);
    }
    match copy.as_mut() {
        Some(c) => c.send(chunk).await,
        None => Ok(()),
    }
}

#[derive(Debug, Clone)]
enum Locks {
    Barrier,
    Tables(Vec<(QName, LockMode)>),
}

fn conflicts(a: &Locks, b: &Locks) -> bool {
    match (a, b) {
        (Locks::Barrier, _) | (_, Locks::Barrier) => true,
        (Locks::Tables(x), Locks::Tables(y)) => x.iter().any(|(t, m)| {
            y.iter()
                .any(|(u, n)| t == u && !(*m == LockMode::Shared && *n == LockMode::Shared))
        }),
    }
}

struct Task {
    stmt: Arc<Statement>,
    locks: Locks,
    settings: SettingsSnap,
    retried: bool,
}

struct WorkerHandle {
    tx: mpsc::Sender<Job>,
    cancel: CancelToken,
    join: tokio::task::JoinHandle<()>,
}

/// The parallel side: N worker connections, the COPY fan-out and the
/// post-data scheduler.
struct Parallel {
    workers: Vec<WorkerHandle>,
    running: Vec<Option<Task>>,
    pending: VecDeque<Task>,
    index_table: HashMap<QName, QName>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    copy: Option<Arc<CopyInfo>>,
    copy_sent: bool,
    sticky: Option<usize>,
    rr: usize,
}

impl Parallel {
    async fn start<T: RestoreTls>(
        n: usize,
        config: &Config,
        tls: &T,
        target: &str,
        shared: &Arc<Shared>,
    ) -> Result<Self, RestoreError> {
        let conns = futures_util::future::try_join_all(
            (0..n).map(|_| connect(config, tls.clone(), target, shared.events.clone())),
        )
        .await?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let workers = conns
            .into_iter()
            .enumerate()
            .map(|(i, conn)| {
                let (tx, rx) = mpsc::channel(WORKER_QUEUE);
                let cancel = conn.cancel.clone();
                let join = tokio::spawn(worker(i, conn, rx, shared.clone(), done_tx.clone()));
                WorkerHandle { tx, cancel, join }
            })
            .collect();
        Ok(Parallel {
            workers,
            running: (0..n).map(|_| None).collect(),
            pending: VecDeque::new(),
            index_table: HashMap::new(),
            done_rx,
            copy: None,
            copy_sent: false,
            sticky: None,
            rr: 0,
        })
    }

    fn lost(w: usize) -> RestoreError {
        RestoreError::WorkerLost(format!("worker {w}"))
    }

    /// Sends a COPY chunk to a worker with room (the same worker while a
    /// line continues); waits when all queues are full.
    async fn send_chunk(&mut self, chunk: CopyChunk, shared: &Shared) -> Result<(), RestoreError> {
        let Some(info) = self.copy.clone() else {
            return Ok(());
        };
        self.copy_sent = true;
        let line_end = chunk.line_end;
        let job = Job::Chunk { info, chunk };
        let n = self.workers.len();
        let w = match self.sticky {
            Some(w) => {
                tokio::select! {
                    r = self.workers[w].tx.send(job) => r.map_err(|_| Self::lost(w))?,
                    _ = shared.failed.cancelled() => return Ok(()),
                }
                w
            }
            None => {
                let free = (0..n)
                    .map(|k| (self.rr + k) % n)
                    .find(|&w| self.workers[w].tx.capacity() > 0);
                match free {
                    Some(w) => {
                        self.workers[w]
                            .tx
                            .send(job)
                            .await
                            .map_err(|_| Self::lost(w))?;
                        w
                    }
                    None => {
                        let reserves = self
                            .workers
                            .iter()
                            .map(|h| Box::pin(h.tx.reserve()))
                            .collect::<Vec<_>>();
                        tokio::select! {
                            (r, w, _) = futures_util::future::select_all(reserves) => {
                                r.map_err(|_| Self::lost(w))?.send(job);
                                w
                            }
                            _ = shared.failed.cancelled() => return Ok(()),
                        }
                    }
                }
            }
        };
        self.rr = (w + 1) % n;
        self.sticky = (!line_end).then_some(w);
        Ok(())
    }

    /// Waits until every worker has finished its open COPY.
    async fn flush(&mut self, shared: &Shared) -> Result<(), RestoreError> {
        let mut replies = Vec::new();
        for (w, h) in self.workers.iter().enumerate() {
            let (tx, rx) = oneshot::channel();
            h.tx.send(Job::Flush(tx)).await.map_err(|_| Self::lost(w))?;
            replies.push(rx);
        }
        for (w, rx) in replies.into_iter().enumerate() {
            rx.await.map_err(|_| Self::lost(w))?;
        }
        self.sticky = None;
        match shared.take_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn locks_for(&mut self, class: &Class) -> Locks {
        match class {
            Class::Index { index, table } => {
                self.index_table.insert(index.clone(), table.clone());
                Locks::Tables(vec![(table.clone(), LockMode::Shared)])
            }
            Class::TableDdl { tables, index } => {
                if let (Some(i), Some(t)) = (index, tables.first()) {
                    self.index_table.insert(i.clone(), t.clone());
                }
                Locks::Tables(
                    tables
                        .iter()
                        .map(|t| (t.clone(), LockMode::Exclusive))
                        .collect(),
                )
            }
            Class::AttachIndex { parent, child } => {
                match (self.index_table.get(parent), self.index_table.get(child)) {
                    (Some(a), Some(b)) => Locks::Tables(vec![
                        (a.clone(), LockMode::Exclusive),
                        (b.clone(), LockMode::Exclusive),
                    ]),
                    _ => Locks::Barrier,
                }
            }
            Class::TableComment { table } => {
                Locks::Tables(vec![(table.clone(), LockMode::Exclusive)])
            }
            Class::IndexComment { index } => match self.index_table.get(index) {
                Some(t) => Locks::Tables(vec![(t.clone(), LockMode::Exclusive)]),
                None => Locks::Barrier,
            },
            _ => Locks::Barrier,
        }
    }

    async fn submit(
        &mut self,
        stmt: Arc<Statement>,
        class: &Class,
        settings: SettingsSnap,
    ) -> Result<(), RestoreError> {
        let locks = self.locks_for(class);
        self.pending.push_back(Task {
            stmt,
            locks,
            settings,
            retried: false,
        });
        self.pump(false).await
    }

    /// Starts what can start; with `drain`, waits until everything finished,
    /// else only while too much is pending.
    async fn pump(&mut self, drain: bool) -> Result<(), RestoreError> {
        loop {
            while let Ok(d) = self.done_rx.try_recv() {
                self.complete(d)?;
            }
            self.dispatch().await?;
            let running = self.running.iter().filter(|r| r.is_some()).count();
            let idle = if drain {
                self.pending.is_empty() && running == 0
            } else {
                self.pending.len() < MAX_PENDING
            };
            if idle {
                return Ok(());
            }
            let d = self
                .done_rx
                .recv()
                .await
                .ok_or_else(|| RestoreError::WorkerLost("all workers".into()))?;
            self.complete(d)?;
        }
    }

    fn complete(&mut self, d: Done) -> Result<(), RestoreError> {
        let task = self.running.get_mut(d.worker).and_then(Option::take);
        match (d.result, task) {
            (Ok(()), _) => Ok(()),
            (Err(e), Some(task)) if e.code() == Some("40P01") && !task.retried => {
                // Deadlock between two post-data statements: run it again, alone.
                self.pending.push_front(Task {
                    locks: Locks::Barrier,
                    retried: true,
                    ..task
                });
                Ok(())
            }
            (Err(e), _) => Err(e),
        }
    }

    async fn dispatch(&mut self) -> Result<(), RestoreError> {
        let mut i = 0;
        while i < self.pending.len() {
            let Some(w) = self.running.iter().position(Option::is_none) else {
                break;
            };
            let t = &self.pending[i];
            let barrier = matches!(t.locks, Locks::Barrier);
            if barrier && i > 0 {
                break;
            }
            let blocked = self
                .running
                .iter()
                .flatten()
                .any(|r| conflicts(&r.locks, &t.locks))
                || self
                    .pending
                    .range(..i)
                    .any(|p| conflicts(&p.locks, &t.locks));
            if blocked {
                if barrier {
                    break;
                }
                i += 1;
                continue;
            }
            let Some(task) = self.pending.remove(i) else {
                break;
            };
            self.workers[w]
                .tx
                .send(Job::Stmt {
                    stmt: task.stmt.clone(),
                    settings: task.settings.clone(),
                })
                .await
                .map_err(|_| Self::lost(w))?;
            self.running[w] = Some(task);
        }
        Ok(())
    }

    async fn shutdown(self) {
        let joins: Vec<_> = self
            .workers
            .into_iter()
            .map(|h| {
                drop(h.tx);
                h.join
            })
            .collect();
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::future::join_all(joins),
        )
        .await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Pre,
    Data,
    Post,
}

/// A restore of one dump stream into one target. Build with
/// [`Restore::new`], then [`Restore::run`].
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use lifeline::restore::{Restore, RestoreSource, create_target};
/// let (admin, conn) = tokio_postgres::connect("host=/run/postgresql dbname=postgres", tokio_postgres::NoTls).await?;
/// tokio::spawn(conn);
/// let target = create_target(&admin, "app", chrono::Utc::now(), None).await?;
/// let config: tokio_postgres::Config = "host=/run/postgresql user=postgres".parse()?;
/// let source = RestoreSource::open("/backups/app.sql").await?;
/// let manifest = Restore::new(config, tokio_postgres::NoTls, &target.name).jobs(2).run(source).await?;
/// # Ok(()) }
/// ```
pub struct Restore<T> {
    config: Config,
    tls: T,
    target: String,
    jobs: usize,
    events: Option<EventTx>,
    cancel: CancellationToken,
    require_trailer: bool,
    progress_interval: Duration,
    policy: Option<Policy>,
}

impl<T: RestoreTls> Restore<T> {
    /// `config` reaches the server (its dbname is replaced by `target`);
    /// `tls` is NoTls or a TLS connector, used for every connection.
    pub fn new(config: Config, tls: T, target: impl Into<String>) -> Self {
        Restore {
            config,
            tls,
            target: target.into(),
            jobs: 1,
            events: None,
            cancel: CancellationToken::new(),
            require_trailer: true,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            policy: None,
        }
    }

    /// The policy every statement is judged by (its target is replaced by
    /// this restore's). Default: the target's owner as the one role a dump
    /// may switch to, and no extension but plpgsql.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Connections loading data and post-data in parallel (1: serial, like psql).
    pub fn jobs(mut self, n: usize) -> Self {
        self.jobs = n.max(1);
        self
    }

    pub fn events(mut self, tx: EventTx) -> Self {
        self.events = Some(tx);
        self
    }

    /// Cancelling the token stops the restore: the server work is cancelled
    /// and the target stays marked INCOMPLETE.
    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Whether the dump must end with pg_dump's trailer comment (default:
    /// yes; a dump cut between two statements is otherwise undetectable).
    pub fn require_trailer(mut self, yes: bool) -> Self {
        self.require_trailer = yes;
        self
    }

    pub fn progress_interval(mut self, d: Duration) -> Self {
        self.progress_interval = d;
        self
    }

    /// Runs the whole dump. On success the target's comment says
    /// `lifeline: restore complete ...` with the stream's SHA-256.
    pub async fn run(self, mut source: RestoreSource) -> Result<Manifest, RestoreFailure> {
        let shared = Arc::new(Shared {
            error: Mutex::new(None),
            failed: CancellationToken::new(),
            rows: Mutex::new(BTreeMap::new()),
            events: self.events.clone(),
        });
        let rep = Reporter::new(self.events.clone(), self.progress_interval, source.total());
        rep.send(RestoreEvent::Started {
            target_db: self.target.clone(),
            source: source.label().to_string(),
            jobs: self.jobs,
            source_total: source.total(),
        });
        let mut run = Run {
            target: self.target.clone(),
            lexer: Lexer::new(),
            hasher: Sha256::new(),
            bytes: 0,
            statements: 0,
            rep,
            shared: shared.clone(),
            settings: Settings::default(),
            guard: Guard::new(Policy {
                target: self.target.clone(),
                ..self
                    .policy
                    .clone()
                    .unwrap_or_else(|| Policy::new(&self.target))
            }),
            in_txn: false,
            section: Section::Pre,
            main: None,
            serial_copy: None,
            current_table: None,
            par: None,
            next_copy: 0,
            require_trailer: self.require_trailer,
            owners_skipped: Vec::new(),
        };
        let mut cancels: Vec<CancelToken> = Vec::new();
        let result = self
            .prepare_and_load(&mut run, &mut source, &mut cancels)
            .await;
        match result {
            Ok(()) => {
                let manifest = run.manifest(true);
                let note = format!(
                    "{MARK_COMPLETE} {}: sha256 {}; {} statements; {} bytes; {} tables; from {}",
                    now_rfc3339(),
                    manifest.sha256,
                    manifest.statements,
                    manifest.bytes,
                    manifest.tables.len(),
                    source.label()
                );
                if let Some(p) = run.par.take() {
                    p.shutdown().await;
                }
                run.main = None;
                match self.mark(&note).await {
                    Ok(()) => {
                        run.rep.send(RestoreEvent::Finished {
                            manifest: manifest.clone(),
                        });
                        Ok(manifest)
                    }
                    Err(e) => Err(self.failed(&mut run, e).await),
                }
            }
            Err(mut e) => {
                if matches!(e, RestoreError::Cancelled { .. }) {
                    e = RestoreError::Cancelled {
                        line: run.lexer.line(),
                        offset: run.bytes,
                    };
                }
                // End the server work first: nothing may keep loading.
                for c in &cancels {
                    let _ = c.cancel_query(self.tls.clone()).await;
                }
                run.serial_copy = None;
                if let Some(p) = run.par.take() {
                    p.shutdown().await;
                }
                run.main = None;
                let blames_stream = matches!(
                    e,
                    RestoreError::Lex(_)
                        | RestoreError::TruncatedCopy { .. }
                        | RestoreError::NoTrailer { .. }
                        | RestoreError::Unfinished { .. }
                        | RestoreError::Read { .. }
                );
                if blames_stream
                    && let Ok(Err(se)) =
                        tokio::time::timeout(Duration::from_secs(5), source.finish()).await
                {
                    e = RestoreError::Source(se);
                }
                Err(self.failed(&mut run, e).await)
            }
        }
    }

    async fn prepare_and_load(
        &self,
        run: &mut Run,
        source: &mut RestoreSource,
        cancels: &mut Vec<CancelToken>,
    ) -> Result<(), RestoreError> {
        let main = connect(
            &self.config,
            self.tls.clone(),
            &self.target,
            self.events.clone(),
        )
        .await?;
        cancels.push(main.cancel.clone());
        match target_status(&main.client, &self.target).await? {
            TargetStatus::Incomplete { comment } if comment.contains("not loaded yet") => {}
            TargetStatus::Incomplete { comment } => {
                return Err(RestoreError::NotATarget {
                    db: self.target.clone(),
                    why: format!(
                        "a restore already ran into it ('{comment}'): make a new target with create_target"
                    ),
                });
            }
            TargetStatus::Complete { comment } => {
                return Err(RestoreError::NotATarget {
                    db: self.target.clone(),
                    why: format!(
                        "it already holds a complete restore ('{comment}'): make a new target with create_target"
                    ),
                });
            }
            TargetStatus::Missing | TargetStatus::NotLifeline { .. } => {
                return Err(RestoreError::NotATarget {
                    db: self.target.clone(),
                    why: "it was not made by lifeline's create_target (no restore marker in its comment): lifeline restores only into a new database it made, never into a live one".into(),
                });
            }
        }
        let note = format!(
            "{MARK_INCOMPLETE}: loading since {} from {}",
            now_rfc3339(),
            source.label()
        );
        set_comment(&main.client, &self.target, &note).await?;
        if self.policy.is_none() {
            let row = main
                .client
                .query_one(
                    "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()",
                    &[],
                )
                .await
                .map_err(|e| RestoreError::Connect {
                    db: self.target.clone(),
                    message: ServerError::from_pg(&e).to_string(),
                })?;
            run.guard.policy.owner = Some(row.get(0));
        }
        run.main = Some(main);
        if self.jobs >= 2 {
            let par = Parallel::start(
                self.jobs,
                &self.config,
                &self.tls,
                &self.target,
                &run.shared,
            )
            .await?;
            cancels.extend(par.workers.iter().map(|w| w.cancel.clone()));
            run.par = Some(par);
        }
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(RestoreError::Cancelled { line: 0, offset: 0 }),
            r = run.body(source) => r,
        }
    }

    /// Writes the marker over a fresh connection (the restore's own
    /// sessions may be in an aborted transaction or another role).
    async fn mark(&self, note: &str) -> Result<(), RestoreError> {
        let c = connect(&self.config, self.tls.clone(), &self.target, None).await?;
        set_comment(&c.client, &self.target, note).await?;
        Ok(())
    }

    async fn failed(&self, run: &mut Run, error: RestoreError) -> RestoreFailure {
        let mut reason: String = error.to_string().chars().take(400).collect();
        if matches!(error, RestoreError::NotATarget { .. }) {
            // Never touch the marker of a database that is not ours to restore.
            reason.clear();
        } else {
            let note = format!("{MARK_INCOMPLETE}: failed {}: {reason}", now_rfc3339());
            let _ = tokio::time::timeout(Duration::from_secs(30), self.mark(&note)).await;
        }
        let manifest = run.manifest(false);
        run.rep.send(RestoreEvent::Failed {
            message: error.to_string(),
            manifest: manifest.clone(),
        });
        RestoreFailure {
            error,
            manifest: Box::new(manifest),
        }
    }
}

/// The reader side of a running restore.
struct Run {
    target: String,
    lexer: Lexer,
    hasher: Sha256,
    bytes: u64,
    statements: u64,
    rep: Reporter,
    shared: Arc<Shared>,
    settings: Settings,
    guard: Guard,
    in_txn: bool,
    section: Section,
    main: Option<Conn>,
    serial_copy: Option<CopyRun>,
    current_table: Option<Arc<CopyInfo>>,
    par: Option<Parallel>,
    next_copy: u64,
    require_trailer: bool,
    owners_skipped: Vec<OwnerChange>,
}

impl Run {
    fn manifest(&self, complete: bool) -> Manifest {
        Manifest {
            target_db: self.target.clone(),
            tables: self.shared.rows(),
            statements: self.statements,
            bytes: self.bytes,
            duration_ms: self.rep.elapsed().as_millis() as u64,
            sha256: hex::encode(self.hasher.clone().finalize()),
            complete,
            owners_skipped: self.owners_skipped.clone(),
        }
    }

    fn main(&self) -> Result<&Client, RestoreError> {
        self.main
            .as_ref()
            .map(|c| &c.client)
            .ok_or_else(|| RestoreError::WorkerLost("main connection".into()))
    }

    async fn body(&mut self, source: &mut RestoreSource) -> Result<(), RestoreError> {
        loop {
            loop {
                let item = match self.lexer.next_item() {
                    Ok(Some(i)) => i,
                    Ok(None) => break,
                    Err(e) => return Err(self.lex_error(e)),
                };
                self.handle(item).await?;
                if self.shared.failed.is_cancelled() {
                    return Err(self
                        .shared
                        .take_error()
                        .unwrap_or_else(|| RestoreError::WorkerLost("a worker failed".into())));
                }
                self.tick(source);
            }
            if self.lexer.is_done() {
                break;
            }
            let buf = self.lexer.buffer();
            if buf.capacity() - buf.len() < READ_SIZE {
                // Grow by whole chunks: the emitted chunks still share the
                // old allocation, so each growth copies the unread tail.
                buf.reserve(2 * COPY_CHUNK);
            }
            let before = buf.len();
            let n = source
                .reader
                .read_buf(buf)
                .await
                .map_err(|e| RestoreError::Read {
                    offset: self.bytes,
                    message: e.to_string(),
                })?;
            if n == 0 {
                self.lexer.finish_input();
            } else {
                self.hasher.update(&self.lexer.buffer()[before..before + n]);
                self.bytes += n as u64;
            }
            self.tick(source);
        }
        self.end_of_stream(source).await
    }

    fn tick(&mut self, source: &RestoreSource) {
        self.rep.p.bytes = self.bytes;
        self.rep.p.statements = self.statements;
        self.rep.p.source_bytes = source.source_bytes();
        if self.rep.due() {
            self.rep.p.tables_loaded = self.shared.tables();
            self.rep.emit();
        }
    }

    fn lex_error(&self, e: LexError) -> RestoreError {
        match e.kind {
            LexErrorKind::TruncatedCopy {
                start_line,
                start_offset,
                rows,
            } => RestoreError::TruncatedCopy {
                table: self
                    .current_table
                    .as_ref()
                    .map(|c| c.table.clone())
                    .unwrap_or_default(),
                start_line,
                start_offset,
                rows,
                line: e.line,
                offset: e.offset,
            },
            _ => RestoreError::Lex(e),
        }
    }

    async fn handle(&mut self, item: Item) -> Result<(), RestoreError> {
        match item {
            Item::Toc(_) => Ok(()),
            Item::Meta { cmd, line, offset } => self.meta(cmd, line, offset),
            Item::Statement(s) => self.statement(s).await,
            Item::CopyStart { stmt, table } => self.copy_start(stmt, table).await,
            Item::CopyData(c) => self.copy_data(c).await,
            Item::CopyEnd { .. } => self.copy_end().await,
        }
    }

    fn meta(&mut self, cmd: MetaCommand, line: u64, offset: u64) -> Result<(), RestoreError> {
        self.guard.meta(cmd, line, offset)
    }

    fn set_section(&mut self, s: Section) {
        self.section = s;
        self.rep.phase(match s {
            Section::Pre => Phase::PreData,
            Section::Data => Phase::Data,
            Section::Post => Phase::PostData,
        });
    }

    async fn run_main(&mut self, stmt: &Statement) -> Result<(), RestoreError> {
        self.main()?
            .batch_execute(&stmt.sql)
            .await
            .map_err(|e| stmt_err(stmt, &e))
    }

    /// Waits for every COPY and post-data statement in flight.
    async fn barrier(&mut self) -> Result<(), RestoreError> {
        let shared = self.shared.clone();
        if let Some(p) = self.par.as_mut() {
            p.flush(&shared).await?;
            p.pump(true).await?;
        }
        Ok(())
    }

    async fn statement(&mut self, s: Statement) -> Result<(), RestoreError> {
        self.statements += 1;
        let class = self.guard.statement(&s)?;
        if self.guard.policy.no_owner
            && class == Class::Other
            && let Some(change) = owner_change(&s.sql, s.line)
            && self.guard.policy.owner.as_deref() != Some(change.owner.as_str())
        {
            // --no-owner: recorded for reapply-owners, never run as the restore role.
            self.owners_skipped.push(change);
            return Ok(());
        }
        match &class {
            Class::Session { name } => self.settings.update(name, &s.sql),
            Class::Role { setting, .. } => self.settings.update(setting, &s.sql),
            _ => {}
        }
        if self.par.is_none() || self.in_txn {
            if class.is_post_data() && self.section != Section::Post {
                self.set_section(Section::Post);
            }
            match class {
                Class::Begin => self.in_txn = true,
                Class::End => self.in_txn = false,
                _ => {}
            }
            return self.run_main(&s).await;
        }
        match class {
            Class::Begin => {
                self.barrier().await?;
                self.in_txn = true;
                self.run_main(&s).await
            }
            Class::End | Class::Session { .. } | Class::Role { .. } => self.run_main(&s).await,
            Class::SequenceSet if self.section != Section::Post => self.run_main(&s).await,
            _ => {
                let shared = self.shared.clone();
                match self.section {
                    Section::Pre if !class.is_post_data() => return self.run_main(&s).await,
                    Section::Data => {
                        if let Some(p) = self.par.as_mut() {
                            p.flush(&shared).await?;
                        }
                    }
                    _ => {}
                }
                if self.section != Section::Post {
                    self.set_section(Section::Post);
                }
                let snap = self.settings.snap.clone();
                match self.par.as_mut() {
                    Some(p) => p.submit(Arc::new(s), &class, snap).await,
                    None => Ok(()),
                }
            }
        }
    }

    async fn copy_start(&mut self, stmt: Statement, table: String) -> Result<(), RestoreError> {
        self.statements += 1;
        self.guard.copy(&stmt)?;
        self.next_copy += 1;
        let info = Arc::new(CopyInfo {
            id: self.next_copy,
            table: table.clone(),
            stmt,
            settings: self.settings.snap.clone(),
        });
        self.current_table = Some(info.clone());
        self.rep.p.current_table = Some(table);
        self.rep.p.current_table_rows = 0;
        if self.par.is_none() || self.in_txn {
            if self.section == Section::Pre {
                self.set_section(Section::Data);
            }
            let run = CopyRun::open(self.main()?, info).await?;
            self.serial_copy = Some(run);
            return Ok(());
        }
        if self.section == Section::Post
            && let Some(p) = self.par.as_mut()
        {
            p.pump(true).await?;
        }
        if self.section != Section::Data {
            self.set_section(Section::Data);
        }
        if let Some(p) = self.par.as_mut() {
            p.copy = Some(info);
            p.copy_sent = false;
        }
        Ok(())
    }

    async fn copy_data(&mut self, c: CopyChunk) -> Result<(), RestoreError> {
        self.rep.p.rows += c.lines;
        self.rep.p.current_table_rows += c.lines;
        if let Some(run) = self.serial_copy.as_mut() {
            return run.send(c).await;
        }
        let shared = self.shared.clone();
        match self.par.as_mut() {
            Some(p) => p.send_chunk(c, &shared).await,
            None => Ok(()),
        }
    }

    async fn copy_end(&mut self) -> Result<(), RestoreError> {
        if let Some(run) = self.serial_copy.take() {
            let table = run.info.table.clone();
            let n = run.finish().await?;
            self.shared.add_rows(&table, n);
        } else if let Some(p) = self.par.as_mut() {
            if !p.copy_sent
                && let Some(info) = &p.copy
            {
                self.shared.add_rows(&info.table, 0);
            }
            p.copy = None;
        }
        Ok(())
    }

    async fn end_of_stream(&mut self, source: &mut RestoreSource) -> Result<(), RestoreError> {
        let line = self.lexer.line();
        self.guard.finish(line)?;
        if self.in_txn {
            return Err(RestoreError::Unfinished {
                what: "inside a transaction (BEGIN without COMMIT)",
                line,
            });
        }
        if self.require_trailer && !self.lexer.saw_trailer() {
            return Err(RestoreError::NoTrailer {
                line,
                offset: self.bytes,
            });
        }
        source.finish().await?;
        self.rep.phase(Phase::Finishing);
        self.barrier().await?;
        self.rep.p.current_table = None;
        self.rep.p.tables_loaded = self.shared.tables();
        self.rep.emit();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str, t: &str) -> QName {
        QName(vec![s.into(), t.into()])
    }

    #[test]
    fn lock_conflicts() {
        let a = Locks::Tables(vec![(q("public", "a"), LockMode::Shared)]);
        let a2 = Locks::Tables(vec![(q("public", "a"), LockMode::Shared)]);
        let ax = Locks::Tables(vec![(q("public", "a"), LockMode::Exclusive)]);
        let b = Locks::Tables(vec![(q("public", "b"), LockMode::Exclusive)]);
        assert!(!conflicts(&a, &a2), "two index builds on one table");
        assert!(conflicts(&a, &ax));
        assert!(!conflicts(&ax, &b));
        assert!(conflicts(&Locks::Barrier, &b));
    }

    #[test]
    fn copy_context() {
        assert_eq!(
            copy_context_line("COPY weird;name, line 2, column t: \"x\""),
            Some(2)
        );
        assert_eq!(copy_context_line("COPY t, line 17"), Some(17));
        assert_eq!(copy_context_line("SQL function"), None);
    }

    #[test]
    fn settings_dedupe() {
        let mut s = Settings::default();
        s.update(
            "search_path",
            "SELECT pg_catalog.set_config('search_path', '', false);",
        );
        let v = s.snap.version;
        s.update(
            "search_path",
            "SELECT pg_catalog.set_config('search_path', '', false);",
        );
        assert_eq!(s.snap.version, v, "the same setting again changes nothing");
        s.update("default_tablespace", "SET default_tablespace = '';");
        s.update("search_path", "SET search_path = public;");
        assert_eq!(
            s.snap.sql.as_str(),
            "SET default_tablespace = '';\nSET search_path = public;"
        );
    }
}
