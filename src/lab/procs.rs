//! Processes of a lab: liveness from /proc, finding every process a lab
//! started (by its environment marker or its command line), killing them.
//! Never signals this process, its process group, or anything unmarked.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable every lab script carries: `LIFELINE_LAB=<lab id>`.
pub const MARKER: &str = "LIFELINE_LAB";

/// Process facts from /proc (they live with the local transport: the stop
/// step reads them too, and the product never imports the lab).
pub use crate::transport::{
    process_alive as alive, process_group as pgid, process_start_ticks as start_ticks,
};

/// The pid written in a pidfile, when that process is alive.
pub fn live_pid_in(pidfile: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

/// True when the process `pid` with start time `ticks` still runs.
pub fn same_process_alive(pid: u32, ticks: u64) -> bool {
    alive(pid) && start_ticks(pid) == Some(ticks)
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn has_marker(pid: u32, id: &str) -> bool {
    let want = format!("{MARKER}={id}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| b.split(|c| *c == 0).any(|e| e == want.as_bytes()))
        .unwrap_or(false)
}

/// Live processes of lab `id`: carrying its marker, or whose command line
/// contains one of `patterns` (absolute paths inside the lab directory).
/// Never this process.
pub fn find(id: &str, patterns: &[String]) -> Vec<u32> {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<u32> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|&pid| {
            has_marker(pid, id) || {
                let c = cmdline(pid);
                patterns.iter().any(|p| c.contains(p.as_str()))
            }
        })
        .collect();
    out.sort_unstable();
    out
}

/// Sends SIGKILL to each pid, and to the process group of each pid that
/// leads its own group (the lab's setsid'd scripts), never to ours.
pub fn kill(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let me = std::process::id();
    let my_group = pgid(me);
    let mut targets: Vec<String> = Vec::new();
    for &pid in pids.iter().filter(|&&p| p != me && p > 1) {
        if pgid(pid) == Some(pid) && Some(pid) != my_group {
            targets.push(format!("-{pid}"));
        }
        targets.push(pid.to_string());
    }
    if targets.is_empty() {
        return;
    }
    // The shell's kill: no unsafe code here, and it takes process groups.
    let _ = Command::new("sh")
        .arg("-c")
        .arg("kill -s KILL -- \"$@\" 2>/dev/null; exit 0")
        .arg("kill")
        .args(&targets)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Kills the lab's processes until none is left (a watchdog may start one
/// between two rounds) or `within` passes; returns the ones still alive.
/// Only processes `find` names are signalled, never a bare recorded pid
/// (it may belong to someone else by now).
pub fn kill_all(id: &str, patterns: &[String], within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let pids = find(id, patterns);
        if pids.is_empty() || Instant::now() > deadline {
            return pids;
        }
        kill(&pids);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `pidfile` names a live process.
pub fn wait_pidfile(pidfile: &Path, within: Duration) -> Option<u32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(pid) = live_pid_in(pidfile) {
            return Some(pid);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_with_a_start_time_and_is_never_found() {
        let me = std::process::id();
        assert!(alive(me));
        let t = start_ticks(me).unwrap();
        assert!(same_process_alive(me, t));
        assert!(!same_process_alive(me, t + 1));
        assert!(pgid(me).is_some());
        // Our own command line matches this pattern, yet we are never found.
        let exe = std::env::current_exe().unwrap().display().to_string();
        assert!(!find("no-such-lab", &[exe]).contains(&me));
    }

    #[test]
    fn kill_all_ends_marked_processes_and_their_children() {
        let id = format!("unit-{}", std::process::id());
        let out = Command::new("setsid")
            .args(["-f", "sh", "-c", "sleep 60 & sleep 60"])
            .env(MARKER, &id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(out.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut found = Vec::new();
        while found.len() < 3 && Instant::now() < deadline {
            found = find(&id, &[]);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(found.len(), 3, "sh and two sleeps: {found:?}");
        let left = kill_all(&id, &[], Duration::from_secs(20));
        assert!(left.is_empty(), "{left:?}");
        assert!(found.iter().all(|&p| !alive(p)));
        assert!(alive(std::process::id()));
    }
}
