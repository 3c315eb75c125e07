//! The lab registry: one JSON record per live lab (`<registry>/<id>.json`,
//! copied to `<lab dir>/lab.json`), so that a lab whose owner died (kill -9)
//! is cleaned up by the next build. Cleaning only ever touches what a record
//! names: its marked processes, its cluster, and its directory unless kept.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::score::LabFacts;
use super::{BackupInfo, LabError, LabProcess, Scenario, procs};
use crate::sandbox::{is_root, user_ids};

pub const RECORD_FILE: &str = "lab.json";

/// The cluster of a lab, enough to stop it without the `PgCluster` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub data: PathBuf,
    pub port: u16,
    pub bin: PathBuf,
}

/// Everything known about one lab: written at the start of the build and
/// again as it learns more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabRecord {
    pub version: u32,
    pub id: String,
    pub scenario: Scenario,
    pub dir: PathBuf,
    /// A `--dir` lab: its directory stays after teardown.
    pub kept: bool,
    pub owner_pid: u32,
    pub owner_start: u64,
    pub built_at: DateTime<Utc>,
    pub damage_at: Option<DateTime<Utc>>,
    pub cluster: Option<ClusterRecord>,
    pub sshd_config: Option<PathBuf>,
    pub processes: Vec<LabProcess>,
    pub inventory: Option<PathBuf>,
    pub answers: Option<PathBuf>,
    pub backups: Vec<BackupInfo>,
    pub counts_before: BTreeMap<String, i64>,
    pub facts: Option<LabFacts>,
}

impl LabRecord {
    /// Command-line fragments that identify the lab's processes: its
    /// scripts, its postmaster, its sshd, a recovery cluster left running
    /// in its archive's recovery directory (its owner killed mid-recovery).
    /// The scripts come first. Narrow on purpose: an editor open on a
    /// script of a kept lab is not one of its processes.
    pub fn patterns(&self) -> Vec<String> {
        let d = self.dir.display();
        let mut p = vec![format!("bash {d}/bin/"), format!("-D {d}/pg/data")];
        if let Some(c) = &self.sshd_config {
            p.push(format!("-f {}", c.display()));
        }
        p.push(format!("-D {d}/{}/recovery/", super::archive::PITR_DIR));
        p
    }

    /// True while the process that built the lab runs.
    pub fn owner_alive(&self) -> bool {
        procs::same_process_alive(self.owner_pid, self.owner_start)
    }
}

/// `$TMPDIR/lifeline-labs-<uid>`.
pub fn default_registry() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("lifeline-labs-{uid}"))
}

/// Writes `rec` to `path` atomically (temporary file, then rename).
fn write_atomic(path: &Path, rec: &LabRecord) -> Result<(), LabError> {
    let text = serde_json::to_string_pretty(rec).map_err(|source| LabError::Record {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(LabError::io(format!("write '{}'", path.display())))
}

pub fn entry_path(registry: &Path, id: &str) -> PathBuf {
    registry.join(format!("{id}.json"))
}

/// Saves the record in the lab directory and in the registry.
pub fn save(registry: &Path, rec: &LabRecord) -> Result<(), LabError> {
    std::fs::create_dir_all(registry)
        .map_err(LabError::io(format!("create '{}'", registry.display())))?;
    write_atomic(&entry_path(registry, &rec.id), rec)?;
    if rec.dir.is_dir() {
        write_atomic(&rec.dir.join(RECORD_FILE), rec)?;
    }
    Ok(())
}

/// Reads the `lab.json` of a lab directory.
pub fn read(path: &Path) -> Result<LabRecord, LabError> {
    let text = std::fs::read_to_string(path)
        .map_err(LabError::io(format!("read '{}'", path.display())))?;
    serde_json::from_str(&text).map_err(|source| LabError::Record {
        path: path.to_path_buf(),
        source,
    })
}

/// Holds the registry's lock while cleaning and registering, so that two
/// builds never clean the same lab at once.
pub struct RegistryLock(#[allow(dead_code)] File);

pub fn lock(registry: &Path) -> Result<RegistryLock, LabError> {
    std::fs::create_dir_all(registry)
        .map_err(LabError::io(format!("create '{}'", registry.display())))?;
    let p = registry.join(".lock");
    let f = File::options()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(LabError::io(format!("open '{}'", p.display())))?;
    f.lock()
        .map_err(LabError::io(format!("lock '{}'", p.display())))?;
    Ok(RegistryLock(f))
}

/// What cleaning a stale lab did.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    pub id: String,
    pub dir: PathBuf,
    pub killed: Vec<u32>,
    pub removed_dir: bool,
}

/// Cleans every registered lab whose owner is gone. Call with the lock held.
pub fn clean_stale(registry: &Path) -> Result<Vec<Cleaned>, LabError> {
    let Ok(rd) = std::fs::read_dir(registry) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let rec = match read(&p) {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!("lab registry entry is unreadable, left alone: {err}");
                continue;
            }
        };
        if rec.owner_alive() {
            continue;
        }
        tracing::info!(
            "cleaning lab '{}' in '{}' left by process {} (gone)",
            rec.id,
            rec.dir.display(),
            rec.owner_pid
        );
        out.push(clean(&rec)?);
        let _ = std::fs::remove_file(&p);
    }
    Ok(out)
}

/// Stops everything a lab record names and removes its directory unless
/// kept. Used for stale labs and for failed builds.
pub fn clean(rec: &LabRecord) -> Result<Cleaned, LabError> {
    let patterns = rec.patterns();
    // The scripts first, so nothing writes while the cluster stops.
    let mut killed = procs::find(&rec.id, &patterns[..1]);
    procs::kill_all(&rec.id, &patterns[..1], Duration::from_secs(10));
    if let Some(c) = &rec.cluster {
        stop_cluster(c);
    }
    killed.extend(procs::find(&rec.id, &patterns));
    let left = procs::kill_all(&rec.id, &patterns, Duration::from_secs(10));
    if !left.is_empty() {
        return Err(LabError::Lingering {
            id: rec.id.clone(),
            pids: left,
        });
    }
    killed.sort_unstable();
    killed.dedup();
    let removed_dir = !rec.kept && remove_lab_dir(rec)?;
    Ok(Cleaned {
        id: rec.id.clone(),
        dir: rec.dir.clone(),
        killed,
        removed_dir,
    })
}

/// Removes a non-kept lab directory, only when it is the lab's own (its
/// lab.json names the same lab) or holds no lab.json yet (a build that
/// stopped early).
fn remove_lab_dir(rec: &LabRecord) -> Result<bool, LabError> {
    if !rec.dir.exists() {
        return Ok(false);
    }
    let own = match read(&rec.dir.join(RECORD_FILE)) {
        Ok(r) => r.id == rec.id,
        Err(_) => !rec.dir.join(RECORD_FILE).exists(),
    };
    if !own {
        tracing::warn!(
            "'{}' does not hold lab '{}': left in place",
            rec.dir.display(),
            rec.id
        );
        return Ok(false);
    }
    std::fs::remove_dir_all(&rec.dir)
        .map_err(LabError::io(format!("remove '{}'", rec.dir.display())))?;
    Ok(true)
}

/// `pg_ctl stop -m immediate` on a cluster no `PgCluster` value owns any
/// more, when its postmaster still runs (a stale postmaster.pid may name
/// another process by now).
pub fn stop_cluster(c: &ClusterRecord) {
    let running = std::fs::read_to_string(c.data.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        .is_some_and(|pid| {
            procs::alive(pid) && procs::cmdline(pid).contains(&c.data.display().to_string())
        });
    if !running {
        return;
    }
    let mut cmd = Command::new(c.bin.join("pg_ctl"));
    cmd.arg("-D")
        .arg(&c.data)
        .args(["-m", "immediate", "-w", "-t", "30", "stop"])
        .env_remove("PGDATA")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if is_root()
        && let Some((uid, gid)) = user_ids("postgres")
    {
        cmd.uid(uid).gid(gid);
    }
    // A postmaster that survives this is found by its command line (the data dir) and killed.
    let _ = cmd.status();
}
