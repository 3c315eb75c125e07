//! Streaming 1 GiB of stdout over SSH keeps this process's memory bounded
//! (backpressure from the reader down to the TCP socket). Alone in its own
//! test binary so the peak-memory reading belongs to this test only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "it/support/mod.rs"]
mod support;

use std::time::Duration;

use lifeline::transport::{ExecOptions, Host, SshHost, SshSettings};
use tokio::io::AsyncReadExt;

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn one_gib_of_stdout_streams_in_bounded_memory() {
    let sshd = support::sshd();
    let h = Host::Ssh(SshHost::new(
        SshSettings::new("big", "127.0.0.1", sshd.port(), sshd.user())
            .identity(sshd.user_key())
            .known_hosts(sshd.write_known_hosts().unwrap()),
    ));
    // Warm up (connection, key loading, buffers) so the baseline includes them.
    assert!(h.exec("true", h.options()).await.unwrap().success());
    let before = peak_rss_kib();

    let total: u64 = 1 << 30;
    let mut s = h
        .exec_stream(
            &format!("head -c {total} /dev/zero"),
            ExecOptions::default().timeout(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    let mut n: u64 = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let k = s.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        assert!(buf[..k].iter().all(|b| *b == 0));
        let before_chunk = n;
        n += k as u64;
        // A reader that stalls now and then: without backpressure the data
        // would pile up in memory during each pause.
        if n / (128 << 20) != before_chunk / (128 << 20) {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let r = s.finish().await.unwrap();
    let after = peak_rss_kib();
    assert_eq!(n, total);
    assert!(r.success(), "{}", r.outcome());
    let growth_mib = (after.saturating_sub(before)) / 1024;
    eprintln!(
        "streamed 1 GiB in {:.1} s; peak RSS {} -> {} KiB (+{growth_mib} MiB)",
        r.duration.as_secs_f64(),
        before,
        after
    );
    assert!(
        growth_mib < 64,
        "peak RSS grew by {growth_mib} MiB while streaming 1 GiB"
    );
}
