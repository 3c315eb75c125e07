//! How discovery reaches a host: one small trait (`Runner`: run a shell
//! script, get its output), implemented by the transport's hosts, plus the
//! framing that lets one remote script answer many questions at once.
//! Everything sent is read-only (listing, reading, `show`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What came back from one script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit: Option<i32>,
    pub timed_out: bool,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A host discovery can ask. `Err` is a transport failure (unreachable,
/// refused key, ...) in words for the operator.
pub trait Runner: Send + Sync {
    fn name(&self) -> &str;
    fn run<'a>(
        &'a self,
        script: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<RunOutput, String>>;
    /// Runs `script` with `input` on its standard input: how data from a
    /// host (paths, names) goes back to it without being spliced into
    /// shell text.
    /// The default refuses: a runner that cannot feed standard input
    /// cannot be sent host data safely.
    fn run_input<'a>(
        &'a self,
        script: &'a str,
        input: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<RunOutput, String>> {
        let _ = (script, input, timeout);
        Box::pin(async move {
            Err(format!(
                "host '{}': this runner cannot send data on standard input",
                self.name()
            ))
        })
    }
}

/// Bytes kept of one answer: discovery output (ps, `systemctl show` of
/// every unit, scripts) stays far below this on real hosts.
pub const OUTPUT_CAP: usize = 32 << 20;

/// The transport's hosts (local and SSH) answer discovery.
impl Runner for crate::transport::Host {
    fn name(&self) -> &str {
        crate::transport::Host::name(self)
    }
    fn run<'a>(
        &'a self,
        script: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<RunOutput, String>> {
        Box::pin(host_run(self, script, None, timeout))
    }
    fn run_input<'a>(
        &'a self,
        script: &'a str,
        input: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<RunOutput, String>> {
        Box::pin(host_run(self, script, Some(input), timeout))
    }
}

async fn host_run(
    host: &crate::transport::Host,
    script: &str,
    input: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<RunOutput, String> {
    let mut opts = crate::transport::ExecOptions::default()
        .timeout(timeout)
        .output_cap(OUTPUT_CAP);
    opts.stdin = input;
    match host.exec(script, opts).await {
        Ok(r) => Ok(RunOutput {
            stdout: r.stdout,
            stderr: r.stderr,
            exit: r.exit,
            timed_out: r.timed_out,
        }),
        Err(e) => Err(short_error(&e)),
    }
}

/// A transport error in words, without the script that was running: a
/// probe script is long and may carry bytes read from the host.
fn short_error(e: &crate::transport::TransportError) -> String {
    use crate::transport::TransportError as T;
    match e {
        T::Disconnected { host, reason, .. } => {
            format!("host '{host}' disconnected: {reason}; the next command reconnects")
        }
        T::Spawn { host, source, .. } => format!("host '{host}': cannot start sh: {source}"),
        other => other.to_string(),
    }
}

/// A fresh marker for section framing, so file contents cannot fake one.
pub fn nonce() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("LL{:x}{:x}", t, std::process::id())
}

/// Shell prelude defining `sec NAME CMD...`: runs CMD (stderr merged) between
/// `@@N begin NAME` and `@@N end NAME RC` lines.
pub fn prelude(nonce: &str) -> String {
    format!(
        "N={n}\nsec() {{ _n=$1; shift; printf '@@%s begin %s\\n' \"$N\" \"$_n\"; \"$@\" 2>&1; rc=$?; printf '\\n@@%s end %s %s\\n' \"$N\" \"$_n\" \"$rc\"; return 0; }}\n",
        n = crate::transport::shell_quote(nonce)
    )
}

/// One framed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub body: String,
    pub rc: i32,
}

/// Splits framed output. A section cut off by a timeout or cap has rc -1.
pub fn sections(out: &str, nonce: &str) -> Vec<Section> {
    let begin = format!("@@{nonce} begin ");
    let end = format!("\n@@{nonce} end ");
    let mut res = Vec::new();
    let mut rest = out;
    while let Some(b) = rest.find(&begin) {
        let after = &rest[b + begin.len()..];
        let Some(nl) = after.find('\n') else {
            break;
        };
        let name = after[..nl].to_string();
        let body_start = &after[nl + 1..];
        match body_start.find(&end) {
            Some(e) => {
                let tail = &body_start[e + end.len()..];
                let line_end = tail.find('\n').unwrap_or(tail.len());
                let rc = tail[..line_end]
                    .rsplit(' ')
                    .next()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(-1);
                res.push(Section {
                    name,
                    body: body_start[..e].to_string(),
                    rc,
                });
                rest = &tail[line_end..];
            }
            None => {
                res.push(Section {
                    name,
                    body: body_start.to_string(),
                    rc: -1,
                });
                break;
            }
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> crate::transport::Host {
        crate::transport::Host::Local(crate::transport::LocalHost::new("me"))
    }

    #[tokio::test]
    async fn framed_sections_through_a_real_shell() {
        let n = nonce();
        let script = format!(
            "{}sec one echo hello\nsec 'two words' sh -c 'printf no-newline; echo oops >&2; exit 3'\nsec empty true\n",
            prelude(&n)
        );
        let out = local().run(&script, Duration::from_secs(10)).await.unwrap();
        let s = sections(&out.stdout, &n);
        assert_eq!(s.len(), 3, "{out:?}");
        assert_eq!(
            s[0],
            Section {
                name: "one".into(),
                body: "hello\n".into(),
                rc: 0
            }
        );
        assert_eq!(s[1].name, "two words");
        assert_eq!(s[1].rc, 3);
        assert!(s[1].body.contains("no-newline") && s[1].body.contains("oops"));
        assert_eq!(s[2].body, "");
    }

    #[test]
    fn a_fake_marker_in_content_does_not_end_a_section() {
        let out = "@@X begin f\n@@Y end f 0\nreal\n@@X end f 0\n";
        let s = sections(out, "X");
        assert_eq!(s[0].body, "@@Y end f 0\nreal");
    }

    #[test]
    fn cut_output_marks_the_section() {
        let s = sections("@@X begin a\npartial", "X");
        assert_eq!(s[0].rc, -1);
    }

    #[tokio::test]
    async fn local_timeout_is_reported() {
        let out = local()
            .run("sleep 5", Duration::from_millis(200))
            .await
            .unwrap();
        assert!(out.timed_out);
    }
}
