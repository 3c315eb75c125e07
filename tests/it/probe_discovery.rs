//! Discovery end to end on a real host (this machine; over OpenSSH sshd in
//! probe_ssh.rs): incident 1 rebuilt in a temporary directory. A cron root
//! starting the sync script, a watchdog and an auto-restore loop, a
//! `systemctl` stand-in answering from recorded systemd 252 output, and a
//! real `sh` loop running the sync script.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use lifeline::inventory::ServiceKind;
use lifeline::probe::{ProbeOptions, ScanCtx, discover};
use lifeline::transport::{Host, LocalHost};

#[tokio::test]
async fn incident_one_on_this_machine() {
    let lab = support::probe_lab();
    let _loop = lab.start_sync_loop();
    let runner = Host::Local(LocalHost::new("box"));
    let d = discover(&runner, &ScanCtx::bare(), &[], &lab.options())
        .await
        .unwrap();
    support::assert_incident_one(&d, &lab);
}

#[tokio::test]
async fn a_host_without_systemd_cron_or_docker_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let runner = Host::Local(LocalHost::new("box"));
    let opts = ProbeOptions {
        cron_root: tmp.path().display().to_string(),
        user_crontabs: false,
        timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let d = discover(&runner, &ScanCtx::bare(), &[], &opts)
        .await
        .unwrap();
    // This sandbox has systemctl but no running systemd, and a docker client without a daemon.
    let notes = d.notes.join("\n");
    if std::path::Path::new("/usr/bin/systemctl").exists() {
        assert!(notes.contains("systemd: not answering"), "{notes}");
    }
    if which("docker") {
        assert!(
            notes.contains("docker: installed but not answering"),
            "{notes}"
        );
    }
    assert!(
        d.services.iter().all(|s| s.kind == ServiceKind::Process),
        "{:#?}",
        d.services
    );
}

fn which(p: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
        .unwrap_or(false)
}

use crate::support::odd;

/// Incident 1 plus a NUL-byte payload, an ESC file name, a 10 MB script and
/// invalid UTF-8: the probe succeeds, finds everything else and lists the
/// odd items as unreadable.
#[tokio::test]
async fn odd_bytes_never_fail_the_probe() {
    let lab = support::probe_lab();
    let _loop = lab.start_sync_loop();
    let odd = odd::odd_programs(&lab.dir.path().join("odd"));
    let runner = Host::Local(LocalHost::new("box"));
    let d = discover(&runner, &ScanCtx::bare(), &[], &lab.options())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    support::assert_incident_one(&d, &lab);
    odd::assert_odd_items(&d, &odd);
}
