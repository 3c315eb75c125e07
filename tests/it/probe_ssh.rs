//! Discovery over SSH (russh transport) against a real OpenSSH sshd on
//! loopback: the same incident 1 lab as probe_discovery.rs, read remotely.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use lifeline::probe::{ScanCtx, discover};

#[tokio::test]
async fn incident_one_over_ssh() {
    let sshd = support::sshd();
    let lab = support::probe_lab();
    let _loop = lab.start_sync_loop();
    let host = support::ssh_host(&sshd, "prod");
    let d = discover(&host, &ScanCtx::bare(), &[], &lab.options())
        .await
        .unwrap_or_else(|e| panic!("{e}\nsshd log: {}", sshd.log_tail()));
    assert!(d.hostname.is_some());
    support::assert_incident_one(&d, &lab);
}

#[tokio::test]
async fn unreachable_host_is_an_error_naming_it() {
    let mut sshd = support::sshd();
    let host = support::ssh_host(&sshd, "gone");
    sshd.kill();
    let lab = support::probe_lab();
    let e = discover(&host, &ScanCtx::bare(), &[], &lab.options())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("'gone'"), "{e}");
}

use crate::support::odd;

/// The odd programs of probe_discovery.rs, probed over SSH: the server must
/// never see a malformed request, the probe must succeed.
#[tokio::test]
async fn odd_bytes_never_fail_the_probe_over_ssh() {
    let sshd = support::sshd();
    let lab = support::probe_lab();
    let _loop = lab.start_sync_loop();
    let odd = odd::odd_programs(&lab.dir.path().join("odd"));
    let host = support::ssh_host(&sshd, "prod");
    let d = discover(&host, &ScanCtx::bare(), &[], &lab.options())
        .await
        .unwrap_or_else(|e| panic!("{e}\nsshd log: {}", sshd.log_tail()));
    support::assert_incident_one(&d, &lab);
    odd::assert_odd_items(&d, &odd);
}
