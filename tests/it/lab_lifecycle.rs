//! A lab's life: teardown leaves no process and no directory (a kept one
//! stays, stopped), a lab whose owner was killed with kill -9 is cleaned up
//! by the next build, and with `ssh` the lab host is reached through a real
//! sshd with the inventory's own key and known_hosts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use lifeline::inventory::{Inventory, TransportKind};
use lifeline::lab::{DB_NAME, Lab, LabOptions, RECORD_FILE, Scenario, procs};

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn registry_entries(reg: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(reg)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn teardown_stops_everything_and_removes_the_directory() {
    let reg = tempfile::tempdir().unwrap();
    let lab = Lab::build(LabOptions {
        registry: Some(reg.path().to_path_buf()),
        ..LabOptions::default()
    })
    .unwrap();
    assert_eq!(lab.scenario, Scenario::RogueSync);
    let pids: Vec<u32> = lab.live_processes().iter().map(|p| p.pid).collect();
    let names: Vec<String> = lab.live_processes().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "postgres",
            "db-realtime-sync",
            "sync-restarter",
            "sync-watchdog"
        ]
    );
    assert!(pids.iter().all(|&p| procs::alive(p)));
    let (dir, port) = (lab.dir.clone(), lab.cluster.port());
    assert_eq!(registry_entries(reg.path()).len(), 1);
    assert!(dir.join(RECORD_FILE).is_file());
    lab.teardown().unwrap();
    for p in &pids {
        assert!(!procs::alive(*p), "pid {p} survived teardown");
    }
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(!listening(port));
    assert!(registry_entries(reg.path()).is_empty());
}

#[test]
fn a_kept_lab_is_stopped_but_its_files_stay() {
    let reg = tempfile::tempdir().unwrap();
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().join("lab");
    let lab = Lab::build(LabOptions {
        dir: Some(dir.clone()),
        registry: Some(reg.path().to_path_buf()),
        rows: 500,
        ..LabOptions::default()
    })
    .unwrap();
    assert!(lab.kept);
    let port = lab.cluster.port();
    let backups = lab.backups.len();
    let scripts: Vec<u32> = lab
        .live_processes()
        .iter()
        .filter(|p| p.hazard)
        .map(|p| p.pid)
        .collect();
    assert_eq!(scripts.len(), 3);
    // Someone reads a script of the kept lab: not the lab's process, it must survive.
    let mut reader = Command::new("tail")
        .arg("-f")
        .arg(dir.join("bin/db_realtime_sync.sh"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    drop(lab);
    assert!(!listening(port));
    assert!(scripts.iter().all(|&p| !procs::alive(p)));
    assert!(
        procs::alive(reader.id()),
        "teardown killed a process it did not start"
    );
    reader.kill().unwrap();
    reader.wait().unwrap();
    assert!(dir.join(RECORD_FILE).is_file());
    assert!(dir.join("lifeline.toml").is_file());
    assert_eq!(
        std::fs::read_dir(dir.join("backups")).unwrap().count(),
        backups
    );
    assert!(registry_entries(reg.path()).is_empty());
    // A kept directory is never built over.
    let err = Lab::build(LabOptions {
        dir: Some(dir.clone()),
        registry: Some(reg.path().to_path_buf()),
        ..LabOptions::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("is not empty"), "{err}");
}

/// Re-exec entry of `a_lab_killed_with_kill_9_is_cleaned_by_the_next_build`:
/// builds a lab, prints what it started and waits to be killed. Does
/// nothing when LIFELINE_LAB_CHILD_REGISTRY is unset.
#[test]
fn lab_child() {
    let Some(reg) = std::env::var_os("LIFELINE_LAB_CHILD_REGISTRY") else {
        return;
    };
    let lab = Lab::build(LabOptions {
        registry: Some(PathBuf::from(reg)),
        ..LabOptions::default()
    })
    .unwrap();
    let pids: Vec<u32> = lab.live_processes().iter().map(|p| p.pid).collect();
    println!(
        "LAB_READY {}",
        serde_json::json!({"dir": lab.dir, "port": lab.cluster.port(), "pids": pids})
    );
    std::thread::sleep(Duration::from_secs(300));
}

/// Kills the child, then cleans the stale labs of the registry when the
/// test ends, even by a panic, so a failing test leaves nothing running.
struct Cleanup(PathBuf, Option<std::process::Child>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut c) = self.1.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = lifeline::lab::clean_stale_labs(Some(&self.0));
    }
}

#[test]
fn a_lab_killed_with_kill_9_is_cleaned_by_the_next_build() {
    let reg = tempfile::tempdir().unwrap();
    let mut guard = Cleanup(reg.path().to_path_buf(), None);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lab_lifecycle::lab_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LIFELINE_LAB_CHILD_REGISTRY", reg.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = guard.1.insert(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints "test lab_child ... " before it on the same line.
            if let Some((_, j)) = line.split_once("LAB_READY ") {
                let _ = tx.send(j.to_string());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(240));
    let ready = ready.expect("the child never built its lab");
    let v: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let dir = PathBuf::from(v["dir"].as_str().unwrap());
    let port = v["port"].as_u64().unwrap() as u16;
    let pids: Vec<u32> = serde_json::from_value(v["pids"].clone()).unwrap();
    assert_eq!(pids.len(), 4, "postgres and three scripts: {pids:?}");

    child.kill().unwrap(); // SIGKILL: no drop, no teardown.
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The orphaned lab still runs: the sync, its restarter, its watchdog, the server.
    for p in &pids {
        assert!(procs::alive(*p), "pid {p} ended with its owner");
    }
    assert!(listening(port));
    assert_eq!(registry_entries(reg.path()).len(), 1);

    // The next build cleans it up first.
    let lab = Lab::build(LabOptions {
        scenario: Scenario::DroppedDatabase,
        registry: Some(reg.path().to_path_buf()),
        rows: 500,
        ..LabOptions::default()
    })
    .unwrap();
    for p in &pids {
        assert!(!procs::alive(*p), "pid {p} of the killed lab still runs");
    }
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(!listening(port));
    let entries = registry_entries(reg.path());
    assert_eq!(entries.len(), 1);
    assert!(entries[0].display().to_string().contains(&lab.id));
    lab.teardown().unwrap();
    assert!(registry_entries(reg.path()).is_empty());
}

#[test]
fn with_ssh_the_host_is_reached_through_a_throwaway_sshd() {
    let reg = tempfile::tempdir().unwrap();
    let lab = Lab::build(LabOptions {
        scenario: Scenario::WrongDatabase,
        ssh: true,
        rows: 500,
        registry: Some(reg.path().to_path_buf()),
        ..LabOptions::default()
    })
    .unwrap();
    let inv = Inventory::load(&lab.inventory_path).unwrap();
    let host = inv.host("lab").unwrap();
    assert_eq!(host.transport, TransportKind::Ssh);
    let (addr, port) = host.socket_address().unwrap();
    assert_eq!(addr, "127.0.0.1");
    let sshd_pid = lab
        .live_processes()
        .into_iter()
        .find(|p| p.name == "sshd")
        .unwrap()
        .pid;
    // The real OpenSSH client, strict host keys, with the inventory's key and known_hosts.
    let backups = lab.dir.join("backups");
    let out = Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            host.known_hosts.as_deref().unwrap()
        ))
        .arg("-i")
        .arg(host.identity.as_deref().unwrap())
        .arg("-p")
        .arg(port.to_string())
        .arg(format!("{}@127.0.0.1", host.user.as_deref().unwrap()))
        .arg(format!("ls {}", backups.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    let listing = support::stdout(&out);
    for b in &lab.backups {
        assert!(listing.contains(&b.name), "{listing}");
    }
    assert!(lab.url(DB_NAME).ends_with("/TovPlay"));
    let dir = lab.dir.clone();
    lab.teardown().unwrap();
    assert!(!procs::alive(sshd_pid));
    assert!(!listening(port));
    assert!(!dir.exists());
}
