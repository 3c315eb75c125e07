//! Where lifeline keeps incidents: `<state-dir>/incidents/<id>/`.
//! Creates directories; never deletes anything.

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
