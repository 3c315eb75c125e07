//! Transport: run commands on hosts, over SSH (russh) or on this machine
//! (tokio::process), with the same behaviour: separate stdout/stderr, exit
//! status or signal, a timeout that really ends the command, output caps and
//! bounded-memory streaming. It never trusts an unknown or changed host key
//! on its own, and never leaves a timed-out command running on purpose.

mod error;
pub mod known_hosts;
mod local;
mod pool;
mod ssh;
mod stream;

use std::path::Path;
use std::time::Duration;

pub use error::{ErrorKind, KeyChange, TransportError};
pub use local::{LocalHost, process_alive, process_group, process_start_ticks};
pub use pool::{HostOutcome, Hosts};
pub use ssh::{AskPassphrase, HostKeyInfo, SshHost, SshSettings, SshTarget};
pub use stream::ExecStream;

/// Options of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// Wall-clock limit; at the limit the command (and its process group) is killed.
    pub timeout: Duration,
    /// Bytes kept per stream (stdout, stderr); the rest is read and dropped.
    pub output_cap: usize,
    /// Bytes of stderr kept when it should differ from `output_cap`.
    pub stderr_cap: Option<usize>,
    /// Bytes written to the command's stdin, which is then closed.
    pub stdin: Option<Vec<u8>>,
}

/// Default command timeout when neither the caller nor the inventory sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bytes kept per stream.
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            timeout: DEFAULT_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            stderr_cap: None,
            stdin: None,
        }
    }
}

impl ExecOptions {
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
    pub fn output_cap(mut self, cap: usize) -> Self {
        self.output_cap = cap;
        self
    }
    pub fn stderr_cap(mut self, cap: usize) -> Self {
        self.stderr_cap = Some(cap);
        self
    }
    pub(crate) fn err_cap(&self) -> usize {
        self.stderr_cap.unwrap_or(self.output_cap)
    }
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }
}

/// What a finished (or cut) command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ExecResult {
    /// Standard output, lossy UTF-8, at most `output_cap` bytes.
    pub stdout: String,
    pub stderr: String,
    /// Exit code, when the command exited by itself.
    pub exit: Option<i32>,
    /// Signal name without `SIG` (`TERM`, `KILL`), when a signal ended it.
    pub signal: Option<String>,
    /// The command hit its timeout and was killed.
    pub timed_out: bool,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
    /// The timeout the command ran under (for the outcome text).
    #[serde(skip)]
    pub limit: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ExecResult {
    /// True when the command exited with status 0 (not cut, not signalled).
    pub fn success(&self) -> bool {
        self.exit == Some(0) && !self.timed_out
    }

    /// One line for people: `exit 0`, `exit 2`, `timed out after 5 s`,
    /// `killed by signal TERM`, `no exit status`.
    pub fn outcome(&self) -> String {
        let mut s = if self.timed_out {
            format!("timed out after {}", human_duration(self.limit))
        } else if let Some(sig) = &self.signal {
            format!("killed by signal {sig}")
        } else if let Some(code) = self.exit {
            format!("exit {code}")
        } else {
            "no exit status".to_string()
        };
        if self.stdout_truncated {
            s.push_str(", stdout truncated");
        }
        if self.stderr_truncated {
            s.push_str(", stderr truncated");
        }
        s
    }

    /// The last non-empty line of stderr, for one-line error reports.
    pub fn stderr_last_line(&self) -> Option<&str> {
        self.stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
    }
}

/// `5 s`, `0.5 s`, `2 min 5 s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 60_000 {
        if ms.is_multiple_of(1000) {
            format!("{} s", ms / 1000)
        } else {
            let s = format!("{:.1}", d.as_secs_f64());
            format!("{} s", s.trim_end_matches(".0"))
        }
    } else {
        let secs = d.as_secs();
        if secs.is_multiple_of(60) {
            format!("{} min", secs / 60)
        } else {
            format!("{} min {} s", secs / 60, secs % 60)
        }
    }
}

/// A host commands run on. Cheap to clone (an `Arc` inside); clones share
/// the connection. Use the enum directly or through `Hosts`.
#[derive(Debug, Clone)]
pub enum Host {
    Local(LocalHost),
    Ssh(SshHost),
}

impl Host {
    /// Inventory name.
    pub fn name(&self) -> &str {
        match self {
            Host::Local(h) => h.name(),
            Host::Ssh(h) => h.name(),
        }
    }

    /// `local` or `user@host:port`.
    pub fn describe(&self) -> String {
        match self {
            Host::Local(_) => "local".to_string(),
            Host::Ssh(h) => h.target().to_string(),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Host::Local(_))
    }

    /// Options with this host's configured command timeout (`command_timeout_s`).
    pub fn options(&self) -> ExecOptions {
        let t = match self {
            Host::Local(h) => h.command_timeout(),
            Host::Ssh(h) => h.command_timeout(),
        };
        ExecOptions::default().timeout(t)
    }

    /// Runs `cmd` through `sh -c` on the host.
    pub async fn exec(&self, cmd: &str, opts: ExecOptions) -> Result<ExecResult, TransportError> {
        match self {
            Host::Local(h) => h.exec(cmd, opts).await,
            Host::Ssh(h) => h.exec(cmd, opts).await,
        }
    }

    /// Runs `cmd` and streams its stdout with bounded memory; `opts.output_cap`
    /// bounds the stderr kept, `opts.timeout` the whole run.
    pub async fn exec_stream(
        &self,
        cmd: &str,
        opts: ExecOptions,
    ) -> Result<ExecStream, TransportError> {
        match self {
            Host::Local(h) => h.exec_stream(cmd, opts).await,
            Host::Ssh(h) => h.exec_stream(cmd, opts).await,
        }
    }

    /// Establishes the connection now (no-op for local) and returns how long it took.
    pub async fn connect(&self) -> Result<Duration, TransportError> {
        match self {
            Host::Local(_) => Ok(Duration::ZERO),
            Host::Ssh(h) => h.connect().await,
        }
    }

    /// Reads the first `cap` bytes of a file on the host (`stdout_truncated`
    /// when it is longer; the rest is never sent). A missing or unreadable
    /// file is an `ExecResult` with a non-zero exit and the reason in
    /// `stderr`, not an error.
    pub async fn read_file(&self, path: &str, cap: usize) -> Result<ExecResult, TransportError> {
        let cmd = format!("head -c {} -- {}", cap.saturating_add(1), shell_quote(path));
        let opts = self.options().output_cap(cap).stderr_cap(16 * 1024);
        self.exec(&cmd, opts).await
    }
}

impl From<LocalHost> for Host {
    fn from(h: LocalHost) -> Self {
        Host::Local(h)
    }
}

impl From<SshHost> for Host {
    fn from(h: SshHost) -> Self {
        Host::Ssh(h)
    }
}

/// Quotes `s` as one POSIX shell word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The remote form of `cmd`: run under `sh -c`, killed with its process group
/// by `timeout -s KILL` at `limit` when the host has GNU/busybox `timeout`.
pub(crate) fn wrap_with_timeout(cmd: &str, limit: Duration) -> String {
    let q = shell_quote(cmd);
    let ms = limit.as_millis().max(1);
    let secs = if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        format!("{:.3}", limit.as_secs_f64())
    };
    format!(
        "if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL {secs}s sh -c {q}; else exec sh -c {q}; fi"
    )
}

/// Signal name (without `SIG`) of a Linux signal number.
pub(crate) fn signal_name(n: i32) -> String {
    let name = match n {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        5 => "TRAP",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        10 => "USR1",
        11 => "SEGV",
        12 => "USR2",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        _ => return format!("{n}"),
    };
    name.to_string()
}

/// Keeps the first `cap` bytes of a stream and counts the rest.
#[derive(Debug, Default)]
pub(crate) struct Capped {
    buf: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capped {
    pub(crate) fn new(cap: usize) -> Self {
        Capped {
            buf: Vec::new(),
            cap,
            truncated: false,
        }
    }
    pub(crate) fn push(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }
    pub(crate) fn finish(self) -> (String, bool) {
        (
            String::from_utf8_lossy(&self.buf).into_owned(),
            self.truncated,
        )
    }
    pub(crate) fn snapshot(&self) -> (String, bool) {
        (
            String::from_utf8_lossy(&self.buf).into_owned(),
            self.truncated,
        )
    }
}

/// `~/x` to `$HOME/x`.
pub(crate) fn expand_tilde(p: &str) -> std::path::PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return Path::new(&home).join(rest);
    }
    std::path::PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc/d.e"), "abc/d.e");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn outcomes() {
        let mut r = ExecResult {
            exit: Some(0),
            ..Default::default()
        };
        assert_eq!(r.outcome(), "exit 0");
        assert!(r.success());
        r.exit = None;
        r.signal = Some("TERM".into());
        assert_eq!(r.outcome(), "killed by signal TERM");
        r.timed_out = true;
        r.limit = Duration::from_secs(5);
        assert_eq!(r.outcome(), "timed out after 5 s");
        r.limit = Duration::from_millis(500);
        r.stdout_truncated = true;
        assert_eq!(r.outcome(), "timed out after 0.5 s, stdout truncated");
        assert!(!r.success());
    }

    #[test]
    fn wrapper_kills_at_the_limit() {
        let w = wrap_with_timeout("echo 'a'", Duration::from_secs(5));
        let q = shell_quote("echo 'a'");
        assert_eq!(
            w,
            format!(
                "if command -v timeout >/dev/null 2>&1; then exec timeout -s KILL 5s sh -c {q}; else exec sh -c {q}; fi"
            )
        );
        assert!(wrap_with_timeout("true", Duration::from_millis(1500)).contains(" 1.500s "));
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human_duration(Duration::from_secs(125)), "2 min 5 s");
        assert_eq!(human_duration(Duration::from_secs(120)), "2 min");
    }

    #[test]
    fn capped_keeps_prefix() {
        let mut c = Capped::new(4);
        c.push(b"ab");
        c.push(b"cdef");
        c.push(b"g");
        assert_eq!(c.finish(), ("abcd".to_string(), true));
        let mut c = Capped::new(4);
        c.push(b"abcd");
        assert_eq!(c.finish(), ("abcd".to_string(), false));
    }
}
