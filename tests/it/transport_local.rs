//! The local host: the same exec contract as SSH (stdout/stderr/exit/signal,
//! caps, stdin, timeout that kills the whole process group, streaming).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use lifeline::transport::{ExecOptions, Host, LocalHost};
use tokio::io::AsyncReadExt;

fn local() -> Host {
    Host::Local(LocalHost::new("here"))
}

/// True while a process whose command line contains `marker` exists.
fn running(marker: &str) -> bool {
    let out = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(marker) && !l.contains("ps -eo"))
}

/// Polls until no process matches `marker` (generous deadline).
async fn gone(marker: &str) -> bool {
    for _ in 0..100 {
        if !running(marker) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn echo_stdout_stderr_exit() {
    let h = local();
    let r = h
        .exec("echo out; echo err >&2; exit 3", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.exit, Some(3));
    assert_eq!(r.signal, None);
    assert!(!r.timed_out);
    assert_eq!(r.outcome(), "exit 3");
    assert!(!r.success());
}

#[tokio::test]
async fn signal_is_reported() {
    let r = local()
        .exec("kill -TERM $$", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(r.signal.as_deref(), Some("TERM"));
    assert_eq!(r.exit, None);
    assert_eq!(r.outcome(), "killed by signal TERM");
}

#[tokio::test]
async fn output_cap_truncates_and_drains() {
    let r = local()
        .exec(
            "head -c 100000 /dev/zero | tr '\\0' a; echo done >&2",
            ExecOptions::default().output_cap(10),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "aaaaaaaaaa");
    assert!(r.stdout_truncated);
    assert!(!r.stderr_truncated);
    assert_eq!(r.stderr, "done\n");
    assert_eq!(r.exit, Some(0));
    assert!(r.outcome().contains("stdout truncated"));
}

#[tokio::test]
async fn stdin_is_fed_then_closed() {
    let r = local()
        .exec(
            "wc -c; cat",
            ExecOptions::default().stdin(b"hello".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout.trim(), "5");
    // Without stdin the command reads EOF at once instead of hanging.
    let r = local()
        .exec("cat; echo end", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(r.stdout, "end\n");
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let marker = format!("{}", 900_000 + std::process::id() % 99_999);
    let cmd = format!("sleep {marker}1 & sleep {marker}2; echo never");
    let r = local()
        .exec(
            &cmd,
            ExecOptions::default().timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert!(r.timed_out, "{r:?}");
    assert_eq!(r.outcome(), "timed out after 0.5 s");
    assert!(!r.stdout.contains("never"));
    assert!(
        gone(&format!("sleep {marker}")).await,
        "sleep still running"
    );
}

#[tokio::test]
async fn stream_reads_everything_and_finishes() {
    let h = local();
    let mut s = h
        .exec_stream(
            "head -c 3000000 /dev/zero; echo warn >&2; exit 4",
            ExecOptions::default(),
        )
        .await
        .unwrap();
    let mut n = 0usize;
    let mut buf = vec![0u8; 8192];
    loop {
        let k = s.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        n += k;
    }
    assert_eq!(n, 3_000_000);
    let r = s.finish().await.unwrap();
    assert_eq!(r.exit, Some(4));
    assert_eq!(r.stderr, "warn\n");
}

#[tokio::test]
async fn dropped_stream_kills_the_command() {
    let marker = format!("{}", 800_000 + std::process::id() % 99_999);
    let s = local()
        .exec_stream(
            &format!("sleep {marker}3"),
            ExecOptions::default().timeout(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    assert!(running(&format!("sleep {marker}3")));
    drop(s);
    assert!(gone(&format!("sleep {marker}3")).await);
}

#[tokio::test]
async fn read_file_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("it's here.txt");
    std::fs::write(&p, "0123456789").unwrap();
    let h = local();
    let r = h.read_file(p.to_str().unwrap(), 4).await.unwrap();
    assert_eq!(r.stdout, "0123");
    assert!(r.stdout_truncated);
    let r = h
        .read_file(dir.path().join("nope").to_str().unwrap(), 4)
        .await
        .unwrap();
    assert_ne!(r.exit, Some(0));
    assert!(r.stderr.contains("No such file"), "{}", r.stderr);
}
