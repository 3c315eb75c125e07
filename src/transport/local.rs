//! The machine lifeline runs on, as a host: commands run under `sh -c` in
//! their own process group, and a timeout kills the whole group. Behaves
//! like `SshHost`; never leaves a timed-out group alive.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::stream::{Delivered, Sink};
use super::{
    Capped, DEFAULT_TIMEOUT, ExecOptions, ExecResult, ExecStream, TransportError, human_duration,
    signal_name,
};

const CHUNK: usize = 64 * 1024;
const STDERR_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Inner {
    name: String,
    command_timeout: Duration,
}

/// This machine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalHost {
    inner: Arc<Inner>,
}

impl LocalHost {
    pub fn new(name: &str) -> Self {
        Self::with_timeout(name, DEFAULT_TIMEOUT)
    }

    /// A local host whose `Host::options()` use `command_timeout`.
    pub fn with_timeout(name: &str, command_timeout: Duration) -> Self {
        LocalHost {
            inner: Arc::new(Inner {
                name: name.to_string(),
                command_timeout,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn command_timeout(&self) -> Duration {
        self.inner.command_timeout
    }

    pub async fn exec(&self, cmd: &str, opts: ExecOptions) -> Result<ExecResult, TransportError> {
        let cap = opts.output_cap;
        let mut stream = self.exec_stream(cmd, opts).await?;
        let mut out = Capped::new(cap);
        let mut buf = vec![0u8; CHUNK];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break, // a timeout shows in the result from `finish`
                Ok(n) => out.push(&buf[..n]),
            }
        }
        let mut res = stream.finish().await?;
        (res.stdout, res.stdout_truncated) = out.finish();
        Ok(res)
    }

    pub async fn exec_stream(
        &self,
        cmd: &str,
        opts: ExecOptions,
    ) -> Result<ExecStream, TransportError> {
        let child = self.spawn(cmd, opts.stdin.is_some())?;
        let name = self.inner.name.clone();
        Ok(ExecStream::spawn(&self.inner.name, move |sink| {
            run(name, child, opts, sink)
        }))
    }

    fn spawn(&self, cmd: &str, stdin: bool) -> Result<Child, TransportError> {
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .process_group(0)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| TransportError::Spawn {
                host: self.inner.name.clone(),
                command: cmd.to_string(),
                source,
            })
    }
}

/// Kills the process group led by `pgid` (the `kill` utility: no unsafe code here).
async fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Reads `r` to its end into `into`, so what was read survives a cut.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, into: Arc<Mutex<Capped>>) {
    let mut buf = vec![0u8; CHUNK];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Ok(mut c) = into.lock() {
            c.push(&buf[..n]);
        }
    }
}

enum End {
    Eof,
    TimedOut,
    Abandoned,
}

async fn run(
    host: String,
    mut child: Child,
    mut opts: ExecOptions,
    mut sink: Sink,
) -> Result<ExecResult, TransportError> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let pgid = child.id();
    if let (Some(mut w), Some(data)) = (child.stdin.take(), opts.stdin.take()) {
        tokio::spawn(async move {
            let _ = w.write_all(&data).await;
            let _ = w.shutdown().await;
        });
    }
    let err_buf = Arc::new(Mutex::new(Capped::new(opts.err_cap())));
    let stderr = child
        .stderr
        .take()
        .map(|e| tokio::spawn(read_capped(e, err_buf.clone())));
    let mut stdout = child.stdout.take();

    let end = match stdout.as_mut() {
        None => End::Eof,
        Some(out) => {
            let pump = async {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let r = tokio::select! {
                        r = out.read(&mut buf) => r,
                        () = sink.abandoned() => return End::Abandoned,
                    };
                    match r {
                        Ok(0) | Err(_) => return End::Eof,
                        Ok(n) => {
                            let chunk = Bytes::copy_from_slice(&buf[..n]);
                            if sink.deliver(chunk).await == Delivered::Abandoned {
                                return End::Abandoned;
                            }
                        }
                    }
                }
            };
            tokio::select! {
                e = pump => e,
                _ = tokio::time::sleep_until(deadline) => End::TimedOut,
            }
        }
    };
    drop(stdout);

    let status = match end {
        End::Eof => tokio::select! {
            s = child.wait() => Some(s),
            _ = tokio::time::sleep_until(deadline) => None,
        },
        End::TimedOut | End::Abandoned => None,
    };
    let timed_out = status.is_none() && !matches!(end, End::Abandoned);
    let status = match status {
        Some(s) => s.ok(),
        None => {
            if let Some(pgid) = pgid {
                kill_group(pgid).await;
            }
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    };
    if timed_out {
        sink.fail(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "host '{host}': command timed out after {}",
                human_duration(opts.timeout)
            ),
        ));
    }
    if let Some(t) = stderr {
        // A process that left the group may still hold stderr open: do not wait for it long.
        let until = deadline.max(tokio::time::Instant::now() + STDERR_GRACE);
        if tokio::time::timeout_at(until, t).await.is_err() {
            tracing::debug!(host, "stderr still open after the command ended");
        }
    }
    let (stderr, stderr_truncated) = match Arc::try_unwrap(err_buf) {
        Ok(m) => m.into_inner().map(Capped::finish).unwrap_or_default(),
        Err(shared) => shared.lock().map(|c| c.snapshot()).unwrap_or_default(),
    };
    let (exit, signal) = match status {
        Some(s) => (s.code(), s.signal().map(signal_name)),
        None => (None, None),
    };
    Ok(ExecResult {
        stdout: String::new(),
        stderr,
        exit,
        signal,
        timed_out,
        stdout_truncated: false,
        stderr_truncated,
        duration: start.elapsed(),
        limit: opts.timeout,
    })
}

/// Fields of /proc/PID/stat after the command name: index 0 is the state.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// True when `pid` is a running process (a zombie counts as gone).
pub fn process_alive(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.first().cloned())
        .is_some_and(|s| s != "Z" && s != "X")
}

/// Start time of `pid` in clock ticks since boot: with the pid, it names a
/// process uniquely (a pid reused later has another start time).
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Process group of `pid`.
pub fn process_group(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}
