//! Where lifeline keeps incidents: `<state-dir>/incidents/<id>/`, and how
//! it writes there: directories 0700, files 0600 whatever the umask.
//! Creates directories and files; never deletes anything, never widens a mode.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const SAMPLES_FILE: &str = "samples.jsonl";

/// `$XDG_STATE_HOME/lifeline`, else `~/.local/state/lifeline`, else `./.lifeline-state`.
pub fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("lifeline");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(h).join(".local/state/lifeline");
    }
    PathBuf::from(".lifeline-state")
}

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn incidents(&self) -> PathBuf {
        self.root.join("incidents")
    }
    pub fn incident_dir(&self, id: &str) -> PathBuf {
        self.incidents().join(id)
    }
    pub fn journal_path(&self, id: &str) -> PathBuf {
        self.incident_dir(id).join(JOURNAL_FILE)
    }
    pub fn samples_path(&self, id: &str) -> PathBuf {
        self.incident_dir(id).join(SAMPLES_FILE)
    }
    /// Incident ids, oldest first.
    pub fn list_incidents(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.incidents())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().join(JOURNAL_FILE).exists())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// Mode of every directory lifeline creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file lifeline writes.
pub const FILE_MODE: u32 = 0o600;

fn ours(meta: &std::fs::Metadata) -> bool {
    meta.uid() == euid()
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Creates `dir` (and missing parents) 0700. A directory that already
/// exists is never changed: it may be anyone's (`/dev`, `/tmp`, a cwd).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Brings an incident directory lifeline made (`<state>/incidents/<id>`,
/// e.g. by an older version with a wider mode) to 0700. Any other
/// directory is left alone.
pub fn tighten_incident_dir(dir: &Path) -> std::io::Result<()> {
    let in_incidents = dir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "incidents");
    if !in_incidents {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_dir() && ours(&meta) && meta.mode() & 0o777 != DIR_MODE {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Brings an open file of ours to 0600 (it may pre-exist with a wider mode).
pub fn make_private(file: &File) -> std::io::Result<()> {
    let meta = file.metadata()?;
    if meta.is_file() && ours(&meta) && meta.mode() & 0o777 != FILE_MODE {
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

/// `OpenOptions` that create files 0600 (the umask can only narrow it).
pub fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Opens `path` for appending, created 0600 (or brought to 0600).
pub fn open_private_append(path: &Path) -> std::io::Result<File> {
    let f = private_options().create(true).append(true).open(path)?;
    make_private(&f)?;
    Ok(f)
}

/// Writes a new file 0600; refuses to replace an existing one.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_options().write(true).create_new(true).open(path)?;
    make_private(&f)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The warning for a state directory others can read, naming the fix.
pub fn exposure_warning(root: &Path) -> Option<String> {
    let meta = std::fs::metadata(root).ok()?;
    let mode = meta.mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "state directory '{}' is readable by others (mode {mode:04o}); it holds journals and database snapshots: run 'chmod 700 {}'",
            root.display(),
            crate::transport::shell_quote(&root.display().to_string())
        )
    })
}

/// A new incident id: `YYYYMMDD-HHMMSS[-slug]` (UTC).
pub fn new_incident_id(now: DateTime<Utc>, slug: Option<&str>) -> String {
    let base = now.format("%Y%m%d-%H%M%S").to_string();
    match slug.map(slugify).filter(|s| !s.is_empty()) {
        Some(s) => format!("{base}-{s}"),
        None => base,
    }
}

/// Accepts only ids safe as a directory name.
pub fn valid_incident_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(40).collect()
}

/// The operator name: `--operator`, else `$LIFELINE_OPERATOR`, else `$USER`.
pub fn default_operator() -> String {
    std::env::var("LIFELINE_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "operator".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn private_dir_and_files_whatever_the_pre_existing_mode() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/incidents/b");
        private_dir(&d).unwrap();
        for p in [t.path().join("a"), d.clone()] {
            assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
        }
        std::fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        assert!(exposure_warning(&d).unwrap().contains("chmod 700"));
        // An existing directory is never changed by private_dir ...
        private_dir(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o755);
        // ... an incident directory is tightened, nothing else is.
        let other = t.path().join("a/other");
        std::fs::create_dir(&other).unwrap();
        std::fs::set_permissions(&other, Permissions::from_mode(0o755)).unwrap();
        tighten_incident_dir(&other).unwrap();
        assert_eq!(std::fs::metadata(&other).unwrap().mode() & 0o777, 0o755);
        tighten_incident_dir(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        assert_eq!(exposure_warning(&d), None);
        let f = d.join("x");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        drop(open_private_append(&f).unwrap());
        assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        write_private_new(&d.join("y"), b"y").unwrap();
        assert_eq!(
            std::fs::metadata(d.join("y")).unwrap().mode() & 0o777,
            0o600
        );
        assert!(
            write_private_new(&d.join("y"), b"z").is_err(),
            "never replaces"
        );
    }

    #[test]
    fn ids() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 9, 5, 7).unwrap();
        assert_eq!(
            new_incident_id(t, Some("Rogue sync!")),
            "20261123-090507-rogue-sync"
        );
        assert!(valid_incident_id("20261123-090507-rogue-sync"));
        assert!(!valid_incident_id("../x"));
        assert!(!valid_incident_id(""));
    }
}
