//! Streaming a command's stdout with bounded memory: a pump task feeds a
//! bounded channel of chunks that `ExecStream` reads as `AsyncRead`. A full
//! channel stops the pump, which stops reading the process (backpressure);
//! memory never grows with the size of the output.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{ExecResult, TransportError};

/// Chunks in flight between the pump and the reader.
pub(crate) const STREAM_CHUNKS: usize = 16;

/// A running command whose stdout is read as an `AsyncRead`. Read to the end,
/// then call `finish` for the exit status and stderr. Dropping it without
/// `finish` kills the command.
pub struct ExecStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    finishing: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<ExecResult, TransportError>>>,
    host: String,
}

impl std::fmt::Debug for ExecStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecStream")
            .field("host", &self.host)
            .finish()
    }
}

/// The pump's end of an `ExecStream`.
pub(crate) struct Sink {
    tx: mpsc::Sender<io::Result<Bytes>>,
    finishing: oneshot::Receiver<()>,
    discard: bool,
}

/// What happened to a chunk handed to the sink.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// Taken by the reader, or dropped because the reader called `finish`.
    Ok,
    /// The reader dropped the stream without `finish`: kill the command.
    Abandoned,
}

impl Sink {
    pub(crate) async fn deliver(&mut self, data: Bytes) -> Delivered {
        if self.discard {
            return Delivered::Ok;
        }
        if self.tx.send(Ok(data)).await.is_ok() {
            return Delivered::Ok;
        }
        self.receiver_gone()
    }

    /// Resolves when the reader went away: `Abandoned` when it dropped the
    /// stream, else (it called `finish`) never, as output is then discarded.
    pub(crate) async fn abandoned(&mut self) {
        if !self.discard {
            self.tx.closed().await;
            if self.receiver_gone() == Delivered::Abandoned {
                return;
            }
        }
        std::future::pending::<()>().await;
    }

    fn receiver_gone(&mut self) -> Delivered {
        // `finish` sends on `finishing` before it drops the receiver.
        if self.finishing.try_recv().is_ok() {
            self.discard = true;
            Delivered::Ok
        } else {
            Delivered::Abandoned
        }
    }

    /// Tells the reader the stream failed (best effort: it may be full or gone).
    pub(crate) fn fail(&self, e: io::Error) {
        let _ = self.tx.try_send(Err(e));
    }
}

impl ExecStream {
    /// Builds a stream whose pump is `pump(sink)`, spawned on the runtime.
    pub(crate) fn spawn<F, Fut>(host: &str, pump: F) -> ExecStream
    where
        F: FnOnce(Sink) -> Fut,
        Fut: Future<Output = Result<ExecResult, TransportError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(STREAM_CHUNKS);
        let (ftx, frx) = oneshot::channel();
        let sink = Sink {
            tx,
            finishing: frx,
            discard: false,
        };
        let task = tokio::spawn(pump(sink));
        ExecStream {
            rx,
            cur: Bytes::new(),
            finishing: Some(ftx),
            task: Some(task),
            host: host.to_string(),
        }
    }

    /// Waits for the command to end (stdout not yet read is read and dropped)
    /// and returns its status and stderr. `stdout` in the result is empty.
    pub async fn finish(mut self) -> Result<ExecResult, TransportError> {
        if let Some(f) = self.finishing.take() {
            let _ = f.send(());
        }
        self.rx.close();
        let task = self.task.take();
        match task {
            Some(t) => t.await.map_err(|e| TransportError::Ssh {
                host: self.host.clone(),
                reason: format!("stream task failed: {e}"),
            })?,
            None => Err(TransportError::Ssh {
                host: self.host.clone(),
                reason: "stream already finished".into(),
            }),
        }
    }
}

impl AsyncRead for ExecStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.cur.is_empty() {
                let n = self.cur.len().min(buf.remaining());
                let chunk = self.cur.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => self.cur = b,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
