//! Where a restore's bytes come from: a local plain or gzip file, a
//! custom/directory archive converted by `pg_restore -f -`, or any async
//! byte stream (the SSH transport's remote command). Bytes flow once, in
//! bounded memory; nothing is staged on disk.

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::mpsc;

use crate::transport::shell_quote;

type BoxFinish = Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open the backup '{path}': {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot start '{program}': {source} (install the PostgreSQL client programs of the server's major version)"
    )]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{command}' failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("the gzip stream of '{label}' is damaged: {message}")]
    Gzip { label: String, message: String },
    /// The bytes read are not the ones expected (a backup replaced after it was picked).
    #[error("the bytes read from '{label}' have sha256 {read}, not the expected {expected}")]
    Changed {
        label: String,
        expected: String,
        read: String,
    },
}

/// Format of a local backup, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    Plain,
    Gzip,
    /// pg_dump -Fc (starts with `PGDMP`).
    Custom,
    /// pg_dump -Fd (a directory holding `toc.dat`).
    Directory,
    /// pg_dump -Ft (a tar archive).
    Tar,
}

/// A dump stream for [`super::Restore::run`].
pub struct RestoreSource {
    pub(crate) reader: Pin<Box<dyn AsyncRead + Send>>,
    label: String,
    total: Option<u64>,
    counter: Option<Arc<AtomicU64>>,
    finish: Option<BoxFinish>,
}

impl std::fmt::Debug for RestoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreSource")
            .field("label", &self.label)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// The command that turns a custom or directory archive into plain SQL on
/// stdout, for a host that holds the file: `pg_restore -f - -- '<path>'`.
pub fn pg_restore_command(path: &str) -> String {
    format!("pg_restore -f - -- {}", shell_quote(path))
}

/// `pg_restore` of the PostgreSQL install the sandbox would use, else the one in PATH.
pub fn default_pg_restore() -> PathBuf {
    crate::pgbin::pg_bin_dir()
        .map(|d| d.join("pg_restore"))
        .ok()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("pg_restore"))
}

/// Sniffs the format of a local backup.
pub fn detect_format(path: &Path) -> Result<DumpFormat, SourceError> {
    let open_err = |source| SourceError::Open {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return if path.join("toc.dat").is_file() {
            Ok(DumpFormat::Directory)
        } else {
            Err(open_err(std::io::Error::other(
                "a directory without toc.dat is not a pg_dump -Fd archive",
            )))
        };
    }
    let mut f = std::fs::File::open(path).map_err(open_err)?;
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..]).map_err(open_err)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let head = &head[..n];
    Ok(if head.starts_with(b"PGDMP") {
        DumpFormat::Custom
    } else if head.starts_with(&[0x1f, 0x8b]) {
        DumpFormat::Gzip
    } else if n >= 262 && &head[257..262] == b"ustar" {
        DumpFormat::Tar
    } else {
        DumpFormat::Plain
    })
}

impl RestoreSource {
    /// Any byte stream of plain SQL (pg_dump -Fp output). This is how a
    /// remote backup comes in: the transport's `exec_stream(cmd)` reader,
    /// e.g. `cat -- '<path>'`, or [`pg_restore_command`] for an archive;
    /// add [`RestoreSource::with_finish`] to check the command's exit status
    /// and [`RestoreSource::gunzip`] for a `.gz`.
    pub fn from_reader(
        reader: impl AsyncRead + Send + 'static,
        label: impl Into<String>,
        total: Option<u64>,
    ) -> Self {
        let n = Arc::new(AtomicU64::new(0));
        RestoreSource {
            reader: Box::pin(Counting {
                inner: Box::pin(reader),
                n: n.clone(),
            }),
            label: label.into(),
            total,
            counter: Some(n),
            finish: None,
        }
    }

    /// Runs after the stream ended; an error fails the restore (e.g. the
    /// remote command's non-zero exit status with its stderr).
    pub fn with_finish(
        mut self,
        finish: impl Future<Output = Result<(), SourceError>> + Send + 'static,
    ) -> Self {
        self.finish = Some(Box::pin(finish));
        self
    }

    /// Decompresses the stream (gzip, multi-member) on a blocking thread.
    /// Must be called inside a tokio runtime.
    pub fn gunzip(mut self) -> Self {
        let label = self.label.clone();
        let inner = std::mem::replace(&mut self.reader, Box::pin(tokio::io::empty()));
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let bridge = tokio_util::io::SyncIoBridge::new(inner);
        let task = tokio::task::spawn_blocking(move || -> Result<(), SourceError> {
            let mut dec = flate2::read::MultiGzDecoder::new(bridge);
            loop {
                let mut buf = vec![0u8; 256 << 10];
                match dec.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        let message = e.to_string();
                        let _ = tx.blocking_send(Err(e));
                        return Err(SourceError::Gzip { label, message });
                    }
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        self.reader = Box::pin(tokio_util::io::StreamReader::new(Box::pin(stream)));
        let prev = self.finish.take();
        self.finish = Some(Box::pin(async move {
            let r = task.await.map_err(|e| SourceError::Gzip {
                label: "gunzip".into(),
                message: e.to_string(),
            })?;
            r?;
            if let Some(prev) = prev {
                prev.await?;
            }
            Ok(())
        }));
        self
    }

    /// A local backup in any pg_dump format (sniffed): plain and gzip are
    /// read directly, custom and directory archives through
    /// `pg_restore -f -` ([`default_pg_restore`]).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        match detect_format(path)? {
            DumpFormat::Plain => Self::plain_file(path).await,
            DumpFormat::Gzip => Ok(Self::plain_file(path).await?.gunzip()),
            DumpFormat::Custom | DumpFormat::Directory | DumpFormat::Tar => {
                Self::pg_restore(&default_pg_restore(), path)
            }
        }
    }

    /// A local plain SQL file; progress knows its size.
    pub async fn plain_file(path: &Path) -> Result<Self, SourceError> {
        let open_err = |source| SourceError::Open {
            path: path.to_path_buf(),
            source,
        };
        let f = tokio::fs::File::open(path).await.map_err(open_err)?;
        let len = f.metadata().await.map_err(open_err)?.len();
        let reader = tokio::io::BufReader::with_capacity(1 << 20, f);
        Ok(Self::from_reader(
            reader,
            path.display().to_string(),
            Some(len),
        ))
    }

    /// `pg_restore -f - <archive>` as a child process; its stdout is the
    /// stream, its exit status and stderr are checked at the end.
    pub fn pg_restore(program: &Path, archive: &Path) -> Result<Self, SourceError> {
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg("-f")
            .arg("-")
            .arg("--")
            .arg(archive)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let command = format!(
            "{} -f - -- {}",
            program.display(),
            shell_quote(&archive.display().to_string())
        );
        let mut child = cmd.spawn().map_err(|source| SourceError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        let stdout = child.stdout.take().ok_or_else(|| SourceError::Spawn {
            program: program.display().to_string(),
            source: std::io::Error::other("no stdout pipe"),
        })?;
        let stderr = child.stderr.take();
        let err_task = tokio::spawn(async move {
            let mut tail = Vec::new();
            if let Some(mut e) = stderr {
                let mut buf = [0u8; 4096];
                while let Ok(n) = e.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 16 << 10 {
                        tail.drain(..tail.len() - (16 << 10));
                    }
                }
            }
            String::from_utf8_lossy(&tail).trim().to_string()
        });
        let finish = async move {
            let status = child.wait().await.map_err(|source| SourceError::Spawn {
                program: command.clone(),
                source,
            })?;
            let stderr = err_task.await.unwrap_or_default();
            if status.success() {
                Ok(())
            } else {
                Err(SourceError::Command {
                    command,
                    status: status.to_string(),
                    stderr,
                })
            }
        };
        let label = format!("pg_restore -f - {}", archive.display());
        Ok(Self::from_reader(stdout, label, None).with_finish(finish))
    }

    /// What the stream is, for messages and the journal.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Size of the source when known.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Source bytes read so far.
    pub fn source_bytes(&self) -> Option<u64> {
        self.counter.as_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// Waits for the producer (child process, decoder) to end and reports
    /// its failure.
    pub async fn finish(&mut self) -> Result<(), SourceError> {
        match self.finish.take() {
            Some(f) => f.await,
            None => Ok(()),
        }
    }
}

/// Counts the bytes read through it.
struct Counting {
    inner: Pin<Box<dyn AsyncRead + Send>>,
    n: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = self.inner.as_mut().poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.n.fetch_add(n, Ordering::Relaxed);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn quoting_for_a_remote_shell() {
        assert_eq!(
            pg_restore_command("/backups/it's.dump"),
            "pg_restore -f - -- '/backups/it'\\''s.dump'"
        );
    }

    #[tokio::test]
    async fn gzip_and_plain_read_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let text = "SELECT 1;\n".repeat(100_000);
        let plain = dir.path().join("a.sql");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.path().join("a.sql.gz");
        // Two gzip members: multi-member files must be read whole.
        let mut f = std::fs::File::create(&gz).unwrap();
        for half in [&text[..text.len() / 2], &text[text.len() / 2..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(half.as_bytes()).unwrap();
            f.write_all(&e.finish().unwrap()).unwrap();
        }
        drop(f);
        assert_eq!(detect_format(&plain).unwrap(), DumpFormat::Plain);
        assert_eq!(detect_format(&gz).unwrap(), DumpFormat::Gzip);
        for p in [&plain, &gz] {
            let mut s = RestoreSource::open(p).await.unwrap();
            let mut out = String::new();
            s.reader.read_to_string(&mut out).await.unwrap();
            s.finish().await.unwrap();
            assert_eq!(out, text);
            assert_eq!(s.source_bytes(), Some(std::fs::metadata(p).unwrap().len()));
        }
    }

    #[tokio::test]
    async fn damaged_gzip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("a.sql.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all("SELECT 1;\n".repeat(10_000).as_bytes())
            .unwrap();
        let mut bytes = e.finish().unwrap();
        let n = bytes.len();
        bytes.truncate(n / 2);
        std::fs::write(&gz, bytes).unwrap();
        let mut s = RestoreSource::open(&gz).await.unwrap();
        let mut out = Vec::new();
        let r = s.reader.read_to_end(&mut out).await;
        let f = s.finish().await;
        assert!(
            r.is_err() || f.is_err(),
            "a truncated gzip must not read as whole"
        );
    }
}
