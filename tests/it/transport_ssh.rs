//! SSH transport against real OpenSSH sshd servers on loopback: exec
//! contract, host key policy (unknown, accepted and journaled, changed,
//! hashed), authentication (ed25519, rsa, ecdsa, encrypted, agent, wrong
//! key), timeouts that really end the remote command while other hosts
//! answer, and reconnect after the server dies mid-command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lifeline::journal::{Journal, kinds, read_records};
use lifeline::redact::Redactor;
use lifeline::transport::{
    ErrorKind, ExecOptions, Host, Hosts, LocalHost, SshHost, SshSettings, TransportError,
};
use support::Sshd;

/// Settings for the sandbox server with its user key and known_hosts.
fn settings(sshd: &Sshd, name: &str) -> SshSettings {
    SshSettings::new(name, "127.0.0.1", sshd.port(), sshd.user())
        .identity(sshd.user_key())
        .known_hosts(sshd.write_known_hosts().unwrap())
        .connect_timeout(Duration::from_secs(10))
}

fn host(sshd: &Sshd, name: &str) -> Host {
    Host::Ssh(SshHost::new(settings(sshd, name)))
}

/// `SHA256:...` of a public key file, as OpenSSH prints it.
fn ssh_keygen_fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

fn pub_line(key: &Path) -> String {
    std::fs::read_to_string(format!("{}.pub", key.display())).unwrap()
}

/// True while a process whose command line contains `marker` exists.
fn running(marker: &str) -> bool {
    let out = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(marker) && !l.contains("ps -eo"))
}

/// True while a process whose command line starts with `prefix` exists.
fn started(prefix: &str) -> bool {
    let out = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.starts_with(prefix))
}

async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..150 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A number no other test (or test run) uses in a command line.
fn marker(salt: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "7{:05}{:04}{salt}",
        std::process::id() % 100_000,
        nanos % 10_000
    )
}

#[tokio::test]
async fn exec_contract_over_one_connection() {
    let sshd = support::sshd();
    let h = host(&sshd, "a");
    let first = h.connect().await.unwrap();
    assert!(first > Duration::ZERO);
    assert_eq!(
        h.connect().await.unwrap(),
        Duration::ZERO,
        "connection reused"
    );

    let r = h
        .exec("echo out; echo err >&2; exit 3", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.exit),
        ("out\n", "err\n", Some(3))
    );
    assert_eq!(r.outcome(), "exit 3");

    let r = h
        .exec("kill -TERM $$", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(r.signal.as_deref(), Some("TERM"), "{r:?}");
    assert_eq!(r.outcome(), "killed by signal TERM");

    let r = h
        .exec("wc -c", ExecOptions::default().stdin(b"hello".to_vec()))
        .await
        .unwrap();
    assert_eq!(r.stdout.trim(), "5");
    let r = h
        .exec("cat; echo end", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(r.stdout, "end\n", "stdin closed when none is given");

    let r = h
        .exec(
            "head -c 100000 /dev/zero | tr '\\0' a",
            ExecOptions::default().output_cap(10),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "aaaaaaaaaa");
    assert!(r.stdout_truncated && r.success());

    let r = h
        .read_file(&sshd.dir().join("id_ed25519.pub").display().to_string(), 11)
        .await
        .unwrap();
    assert_eq!(r.stdout, "ssh-ed25519");
    assert!(r.stdout_truncated);

    // Many commands at once share the one connection (concurrent channels).
    let runs = (0..20).map(|i| {
        let h = h.clone();
        async move {
            h.exec(&format!("echo {i}"), ExecOptions::default())
                .await
                .unwrap()
        }
    });
    let results = futures_util::future::join_all(runs).await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.stdout, format!("{i}\n"));
    }
    assert_eq!(
        h.connect().await.unwrap(),
        Duration::ZERO,
        "still one connection"
    );
}

#[tokio::test]
async fn unknown_host_key_is_refused_until_accepted_and_journaled() {
    let sshd = support::sshd();
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("ssh/known_hosts");
    let expected = ssh_keygen_fingerprint(&sshd.dir().join("host_ed25519.pub"));
    let h = SshHost::new(settings(&sshd, "fresh").known_hosts(&kh));

    let err = h.exec("true", ExecOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKeyUnknown);
    match &err {
        TransportError::HostKeyUnknown { fingerprint, .. } => assert_eq!(fingerprint, &expected),
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&expected) && msg.contains("accept"), "{msg}");
    assert!(!kh.exists(), "nothing written on refusal");

    let jpath = dir.path().join("journal.jsonl");
    let mut journal = Journal::open(&jpath, "inc-1", "tester", Redactor::new()).unwrap();

    // A fingerprint other than the one the server offers: refused, nothing trusted.
    let err = h
        .accept_host_key("SHA256:not-the-key", &mut journal)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::FingerprintMismatch { .. }),
        "{err}"
    );
    assert!(!kh.exists());
    assert!(read_records(&jpath).unwrap().is_empty());

    let info = h.accept_host_key(&expected, &mut journal).await.unwrap();
    assert_eq!(info.fingerprint, expected);
    let recs = read_records(&jpath).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].kind, kinds::HOSTKEY_ACCEPTED);
    assert_eq!(recs[0].data["fingerprint"], expected.as_str());
    assert_eq!(recs[0].data["host"], "fresh");
    assert_eq!(recs[0].data["key_type"], "ssh-ed25519");
    let text = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(text, format!("{}\n", sshd.known_hosts_line()));

    let r = h
        .exec("echo trusted", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(r.stdout, "trusted\n");
    let err = h
        .accept_host_key(&expected, &mut journal)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::AlreadyKnown { .. }), "{err}");
}

#[tokio::test]
async fn journal_failure_leaves_the_key_untrusted() {
    let sshd = support::sshd();
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    let expected = ssh_keygen_fingerprint(&sshd.dir().join("host_ed25519.pub"));
    let h = SshHost::new(settings(&sshd, "full").known_hosts(&kh));
    // A journal whose writes fail (disk full).
    let mut journal = Journal::open(Path::new("/dev/full"), "inc", "t", Redactor::new()).unwrap();
    let err = h
        .accept_host_key(&expected, &mut journal)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Journal(_)), "{err}");
    assert!(!kh.exists(), "key trusted without a journal line");
    let err = h.exec("true", ExecOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKeyUnknown);
}

#[tokio::test]
async fn hashed_known_hosts_entry_is_accepted() {
    let sshd = support::sshd();
    let kh = sshd.write_known_hosts().unwrap();
    let st = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let h = SshHost::new(settings(&sshd, "hashed").known_hosts(&kh));
    let r = h.exec("echo ok", ExecOptions::default()).await.unwrap();
    assert_eq!(r.stdout, "ok\n");
}

#[tokio::test]
async fn changed_host_key_is_refused_with_both_fingerprints() {
    let sshd = support::sshd();
    let other = sshd.generate_key("impostor", "ed25519").unwrap();
    let old_fp = ssh_keygen_fingerprint(&PathBuf::from(format!("{}.pub", other.display())));
    let new_fp = ssh_keygen_fingerprint(&sshd.dir().join("host_ed25519.pub"));
    let kh = sshd.dir().join("known_hosts_changed");
    let body: Vec<String> = pub_line(&other)
        .split_whitespace()
        .take(2)
        .map(String::from)
        .collect();
    std::fs::write(
        &kh,
        format!(
            "# recorded last year\n[127.0.0.1]:{} {}\n",
            sshd.port(),
            body.join(" ")
        ),
    )
    .unwrap();
    let h = SshHost::new(settings(&sshd, "prod").known_hosts(&kh));
    let err = h.exec("true", ExecOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKeyChanged);
    let TransportError::HostKeyChanged(c) = &err else {
        panic!("{err}")
    };
    assert_eq!(c.old_fingerprint, old_fp);
    assert_eq!(c.new_fingerprint, new_fp);
    assert_eq!(c.line, 2);
    let msg = err.to_string();
    assert!(
        msg.contains(&old_fp) && msg.contains(&new_fp) && msg.contains("line 2"),
        "{msg}"
    );
    // Never accepted through the explicit path either.
    let dir = tempfile::tempdir().unwrap();
    let mut journal =
        Journal::open(&dir.path().join("j.jsonl"), "i", "t", Redactor::new()).unwrap();
    let err = h.accept_host_key(&new_fp, &mut journal).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostKeyChanged);
    assert!(
        read_records(&dir.path().join("j.jsonl"))
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn wrong_user_key_is_refused_clearly() {
    let sshd = support::sshd();
    let stranger = sshd.generate_key("stranger", "ed25519").unwrap();
    let fp = ssh_keygen_fingerprint(&PathBuf::from(format!("{}.pub", stranger.display())));
    let h = SshHost::new(settings(&sshd, "db").identity(&stranger));
    let err = h.exec("true", ExecOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed);
    let msg = err.to_string();
    assert!(msg.contains("refused user"), "{msg}");
    assert!(msg.contains(&fp) && msg.contains("stranger"), "{msg}");
}

#[tokio::test]
async fn unreachable_port_is_classified() {
    let port = lifeline::sandbox::free_port().unwrap();
    let h = SshHost::new(
        SshSettings::new("gone", "127.0.0.1", port, "root").connect_timeout(Duration::from_secs(5)),
    );
    let err = h.exec("true", ExecOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn rsa_and_ecdsa_keys() {
    let sshd = support::sshd();
    for kind in ["ecdsa", "rsa"] {
        let k = sshd.generate_key(&format!("id_{kind}"), kind).unwrap();
        sshd.authorize(&pub_line(&k)).unwrap();
        let h = SshHost::new(settings(&sshd, kind).identity(&k));
        let r = h.exec("echo hi", ExecOptions::default()).await.unwrap();
        assert_eq!(r.stdout, "hi\n", "{kind} {r:?}");
    }
}

fn encrypt(key: &Path, pass: &str) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", pass, "-f"])
        .arg(key)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Reading the passphrase from `passphrase_env` needs the variable in the
/// process's environment: the check runs `lifeline status` (the user's path)
/// with and without it.
#[test]
fn encrypted_key_with_passphrase_env() {
    let sshd = support::sshd();
    let k = sshd.generate_key("id_locked", "ed25519").unwrap();
    sshd.authorize(&pub_line(&k)).unwrap();
    encrypt(&k, "correct horse");
    let kh = sshd.write_known_hosts().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("lifeline.toml");
    std::fs::write(
        &inv,
        format!(
            "[[host]]\nname = \"locked\"\naddress = \"127.0.0.1:{}\"\nuser = \"{}\"\nidentity = \"{}\"\npassphrase_env = \"LL_TEST_PASSPHRASE\"\nknown_hosts = \"{}\"\n",
            sshd.port(),
            sshd.user(),
            k.display(),
            kh.display()
        ),
    )
    .unwrap();
    let status = |pass: Option<&str>| {
        let mut c = support::lifeline(dir.path());
        c.arg("-i")
            .arg(&inv)
            .args(["status", "--json", "--timeout", "20"])
            .env_remove("LL_TEST_PASSPHRASE");
        if let Some(p) = pass {
            c.env("LL_TEST_PASSPHRASE", p);
        }
        let out = c.output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", support::stderr(&out)));
        v["hosts"][0].clone()
    };
    let h = status(Some("correct horse"));
    assert_eq!(h["reachable"], true, "{h}");
    assert!(h["error"].is_null(), "{h}");
    let h = status(Some("wrong"));
    assert_eq!(h["reachable"], false, "{h}");
    assert!(
        h["error"]
            .as_str()
            .unwrap()
            .contains("passphrase does not decrypt"),
        "{h}"
    );
    let h = status(None);
    let e = h["error"].as_str().unwrap();
    assert!(
        e.contains("'LL_TEST_PASSPHRASE'") && e.contains("not set"),
        "{h}"
    );
    // The passphrase itself is never printed.
    assert!(!h.to_string().contains("correct horse"));
}

#[tokio::test]
async fn encrypted_key_through_the_ask_callback() {
    let sshd = support::sshd();
    let k = sshd.generate_key("id_asked", "ecdsa").unwrap();
    sshd.authorize(&pub_line(&k)).unwrap();
    encrypt(&k, "s3cret");
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a2 = asked.clone();
    let s = settings(&sshd, "asked")
        .identity(&k)
        .ask_passphrase(std::sync::Arc::new(move |_path: &Path| {
            a2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Some("s3cret".to_string()) })
        }));
    let h = SshHost::new(s);
    assert!(
        h.exec("true", ExecOptions::default())
            .await
            .unwrap()
            .success()
    );
    h.disconnect().await;
    assert!(
        h.exec("true", ExecOptions::default())
            .await
            .unwrap()
            .success()
    );
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "asked once, not again on reconnect"
    );
}

/// A real ssh-agent on a private socket, killed on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent {
            child,
            sock,
            _dir: dir,
        }
    }
    fn add(&self, key: &Path) {
        let st = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn agent_auth() {
    let sshd = support::sshd();
    let agent = Agent::start();
    let base = |name: &str| {
        let mut s = settings(&sshd, name).agent(Some(agent.sock.clone()));
        s.identity = None;
        s
    };
    let err = SshHost::new(base("empty-agent"))
        .exec("true", ExecOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed);
    assert!(err.to_string().contains("holds no keys"), "{err}");

    // An rsa key in the agent (signature hash negotiated) and the user key.
    let rsa = sshd.generate_key("agent_rsa", "rsa").unwrap();
    sshd.authorize(&pub_line(&rsa)).unwrap();
    agent.add(&rsa);
    let r = SshHost::new(base("agent"))
        .exec("echo via agent", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(r.stdout, "via agent\n");
}

#[tokio::test]
async fn hung_command_is_cut_and_killed_while_other_hosts_answer() {
    let slow = support::sshd();
    let quick = support::sshd();
    // A host that accepts TCP and never speaks SSH.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let m = marker(1);
    let hosts = Hosts::new(vec![
        Host::Ssh(SshHost::new(
            SshSettings::new("silent", "127.0.0.1", silent_port, "root")
                .connect_timeout(Duration::from_secs(2)),
        )),
        Host::Ssh(SshHost::new(
            settings(&slow, "slow").command_timeout(Duration::from_secs(2)),
        )),
        Host::Ssh(SshHost::new(settings(&quick, "quick"))),
        Host::Local(LocalHost::new("here")),
    ]);
    let hung = format!("sleep {m}; echo done");
    let mut rx = hosts.each_streaming(move |h| {
        let cmd = if h.name() == "slow" {
            hung.clone()
        } else {
            "echo done".to_string()
        };
        async move { h.exec(&cmd, h.options()).await }
    });
    let mut order = Vec::new();
    while let Some(o) = rx.recv().await {
        order.push(o);
    }
    let names: Vec<&str> = order.iter().map(|o| o.host.as_str()).collect();
    // The two healthy hosts answer before the hung command and the silent host.
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        pos("quick") < pos("slow") && pos("here") < pos("slow"),
        "{names:?}"
    );
    assert!(
        pos("quick") < pos("silent") && pos("here") < pos("silent"),
        "{names:?}"
    );
    for o in &order {
        match o.host.as_str() {
            "quick" | "here" => assert_eq!(o.result.as_ref().unwrap().stdout, "done\n"),
            "slow" => {
                let r = o.result.as_ref().unwrap();
                assert!(r.timed_out, "{r:?}");
                assert_eq!(r.outcome(), "timed out after 2 s");
                assert!(!r.stdout.contains("done"));
            }
            "silent" => {
                let e = o.result.as_ref().unwrap_err();
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                assert!(e.to_string().contains("SSH handshake"), "{e}");
            }
            other => panic!("{other}"),
        }
    }
    // The sleep on the slow host is really gone (same machine: loopback).
    assert!(
        wait_until(|| !running(&format!("sleep {m}"))).await,
        "remote sleep {m} still running"
    );
    hold.abort();
}

#[tokio::test]
async fn sshd_killed_mid_command_then_reconnect() {
    let mut sshd = support::sshd();
    let h = host(&sshd, "fragile");
    let m = marker(2);
    let h2 = h.clone();
    let cmd = format!("sleep {m}; echo late");
    let run = tokio::spawn(async move {
        h2.exec(
            &cmd,
            ExecOptions::default().timeout(Duration::from_secs(120)),
        )
        .await
    });
    assert!(wait_until(|| started(&format!("sleep {m}"))).await);
    sshd.kill_with_sessions();
    // SIGKILL is sent, not yet delivered: on a loaded machine ps may list the
    // process a moment longer. It must be gone within the poll (15 s).
    assert!(
        wait_until(|| !running(&m)).await,
        "kill_with_sessions left the command running"
    );
    let err = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("exec did not notice the dead server")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("disconnected") && msg.contains("sleep") && msg.contains("reconnects"),
        "{msg}"
    );
    // While it is down: unreachable, classified.
    let err = h.exec("true", ExecOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    sshd.restart().unwrap();
    let r = h.exec("echo back", ExecOptions::default()).await.unwrap();
    assert_eq!(r.stdout, "back\n");
}

#[tokio::test]
async fn idle_connection_dropped_by_server_restart_is_replaced() {
    let mut sshd = support::sshd();
    let h = host(&sshd, "restarted");
    assert!(
        h.exec("true", ExecOptions::default())
            .await
            .unwrap()
            .success()
    );
    sshd.kill_with_sessions();
    sshd.restart().unwrap();
    // The cached connection is dead; the next call reconnects by itself.
    let r = h.exec("echo again", ExecOptions::default()).await.unwrap();
    assert_eq!(r.stdout, "again\n");
}

#[tokio::test]
async fn stream_over_ssh_reports_exit_and_stderr() {
    use tokio::io::AsyncReadExt;
    let sshd = support::sshd();
    let h = host(&sshd, "s");
    let mut s = h
        .exec_stream(
            "head -c 5000000 /dev/zero; echo warn >&2; exit 4",
            ExecOptions::default(),
        )
        .await
        .unwrap();
    let mut n = 0usize;
    let mut buf = vec![0u8; 65536];
    loop {
        let k = s.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        n += k;
    }
    assert_eq!(n, 5_000_000);
    let r = s.finish().await.unwrap();
    assert_eq!((r.exit, r.stderr.as_str()), (Some(4), "warn\n"));

    // A stream dropped unread ends its remote command.
    let m = marker(3);
    let s = h
        .exec_stream(
            &format!("while :; do echo {m}; sleep 0.1; done"),
            ExecOptions::default().timeout(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    assert!(wait_until(|| running(&format!("echo {m}")) || running(&m)).await);
    drop(s);
    assert!(
        wait_until(|| !running(&m)).await,
        "stream command still running"
    );
}

#[tokio::test]
async fn stream_cut_by_a_dead_server_is_an_error_not_an_eof() {
    use tokio::io::AsyncReadExt;
    let mut sshd = support::sshd();
    let h = host(&sshd, "dying");
    let m = marker(4);
    let mut s = h
        .exec_stream(
            &format!("while :; do echo {m}; sleep 0.05; done"),
            ExecOptions::default().timeout(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let k = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..k]).contains(&m));
    sshd.kill_with_sessions();
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("stream did not notice the dead server");
    let e = end.expect_err("a cut stream must not end like a complete one");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionAborted, "{e}");
    let err = s.finish().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
}

#[tokio::test]
async fn hosts_from_inventory() {
    let sshd = support::sshd();
    let kh = sshd.write_known_hosts().unwrap();
    let text = format!(
        r#"
[[host]]
name = "db"
address = "127.0.0.1:{port}"
user = "{user}"
identity = "{key}"
known_hosts = "{kh}"
connect_timeout_s = 5
command_timeout_s = 7

[[host]]
name = "here"
transport = "local"
command_timeout_s = 3
"#,
        port = sshd.port(),
        user = sshd.user(),
        key = sshd.user_key().display(),
        kh = kh.display()
    );
    let inv = lifeline::inventory::Inventory::parse(&text, "inv.toml").unwrap();
    let hosts = Hosts::from_inventory(&inv, None);
    assert_eq!(hosts.len(), 2);
    let db = hosts.require("db").unwrap();
    assert_eq!(db.options().timeout, Duration::from_secs(7));
    assert_eq!(
        db.describe(),
        format!("{}@127.0.0.1:{}", sshd.user(), sshd.port())
    );
    assert_eq!(
        hosts.get("here").unwrap().options().timeout,
        Duration::from_secs(3)
    );
    let err = hosts.require("nope").unwrap_err();
    assert_eq!(err.to_string(), "no host named 'nope' in the inventory");
    let all = hosts.exec_all("echo hi", 1024).await;
    let names: Vec<&str> = all.iter().map(|o| o.host.as_str()).collect();
    assert_eq!(names, ["db", "here"], "inventory order");
    for o in &all {
        assert_eq!(o.result.as_ref().unwrap().stdout, "hi\n", "{}", o.host);
    }
}
