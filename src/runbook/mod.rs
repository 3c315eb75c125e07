//! Runbook files: TOML with an id, a title, when to use it, parameters and
//! ordered steps. Parsed with file:line:col errors and validated against
//! the inventory. This module only reads files; it never acts.

mod parse;
pub mod template;
mod validate;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diag::Diags;
pub use template::Template;
pub use validate::{CheckReport, check_runbooks, validate_against};

/// What a step does. The engine knows exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Note,
    Probe,
    StopServices,
    Snapshot,
    PickBackup,
    Restore,
    ReapplyOwners,
    Verify,
    Swap,
    MergeTables,
    RecoverPitr,
    ChoosePath,
    StartServices,
    Command,
    Sql,
}

impl Action {
    pub const ALL: [Action; 15] = [
        Action::Note,
        Action::Probe,
        Action::StopServices,
        Action::Snapshot,
        Action::PickBackup,
        Action::Restore,
        Action::ReapplyOwners,
        Action::Verify,
        Action::Swap,
        Action::MergeTables,
        Action::RecoverPitr,
        Action::ChoosePath,
        Action::StartServices,
        Action::Command,
        Action::Sql,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Note => "note",
            Action::Probe => "probe",
            Action::StopServices => "stop-services",
            Action::Snapshot => "snapshot",
            Action::PickBackup => "pick-backup",
            Action::Restore => "restore",
            Action::ReapplyOwners => "reapply-owners",
            Action::Verify => "verify",
            Action::Swap => "swap",
            Action::MergeTables => "merge-tables",
            Action::RecoverPitr => "recover-pitr",
            Action::ChoosePath => "choose-path",
            Action::StartServices => "start-services",
            Action::Command => "command",
            Action::Sql => "sql",
        }
    }

    /// `destructive` when the file does not say.
    pub fn default_destructive(self) -> bool {
        matches!(
            self,
            Action::Restore
                | Action::ReapplyOwners
                | Action::Swap
                | Action::MergeTables
                | Action::StartServices
                | Action::Command
                | Action::Sql
        )
    }

    /// Some(v): the file may not say otherwise.
    pub fn forced_destructive(self) -> Option<bool> {
        match self {
            Action::Restore | Action::ReapplyOwners | Action::Swap | Action::MergeTables => {
                Some(true)
            }
            // recover-pitr makes a private cluster beside the live one: nothing live is touched.
            // choose-path only reads (the archive, the WAL, the database's identity).
            Action::Note
            | Action::Probe
            | Action::PickBackup
            | Action::RecoverPitr
            | Action::ChoosePath => Some(false),
            _ => None,
        }
    }

    /// What `--readonly` still runs: looking, and writing our own journal.
    pub fn allowed_readonly(self) -> bool {
        matches!(self, Action::Note | Action::Probe | Action::ChoosePath)
    }

    /// Requirements the engine enforces whatever the file says.
    pub fn forced_requires(self) -> &'static [Requirement] {
        match self {
            Action::Restore => &[Requirement::WritersStopped, Requirement::Snapshot],
            Action::Swap | Action::MergeTables | Action::ReapplyOwners => &[Requirement::Snapshot],
            _ => &[],
        }
    }

    /// Argument keys this action takes (besides the common ones).
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Action::Note => &["text"],
            Action::Probe => &["host", "database"],
            Action::StopServices => &["host", "database", "services", "hold_s"],
            Action::Snapshot => &["database"],
            Action::PickBackup => &["catalog", "incident_at"],
            Action::Restore => &["database", "catalog", "backup", "jobs"],
            Action::ReapplyOwners => &["database", "restored"],
            Action::RecoverPitr => &["database", "archive", "healthy_at", "damaged_at", "target"],
            Action::ChoosePath => &["database", "archive", "incident_at", "force"],
            Action::Verify => &["database", "restored", "compare_to"],
            Action::Swap => &["database", "restored"],
            Action::MergeTables => &[
                "database",
                "restored",
                "tables",
                "replace",
                "policy",
                "transaction",
            ],
            Action::StartServices => &["database", "services"],
            Action::Command => &["host", "command", "database"],
            Action::Sql => &["database", "sql"],
        }
    }

    /// Argument keys that must be present.
    pub fn required_args(self) -> &'static [&'static str] {
        match self {
            Action::Snapshot => &["database"],
            Action::PickBackup => &["catalog"],
            // `catalog` may be left out when `backup` is a recover-pitr step's dump (parse checks).
            Action::Restore => &["database", "backup"],
            Action::RecoverPitr => &["database"],
            Action::ChoosePath => &["database"],
            Action::Verify => &["database"],
            Action::ReapplyOwners => &["database", "restored"],
            Action::Swap => &["database", "restored"],
            Action::MergeTables => &["database", "restored", "tables"],
            Action::Command => &["host", "command"],
            Action::Sql => &["database", "sql"],
            _ => &[],
        }
    }

    /// Fields of the journaled outcome other steps may reference as
    /// `{step.field}` (None: any field, the shape belongs to another module).
    pub fn outputs(self) -> Option<&'static [&'static str]> {
        match self {
            Action::Note => Some(&["text"]),
            Action::Probe => None,
            Action::StopServices => Some(&["stopped", "held_s", "database"]),
            Action::Snapshot => Some(&["path", "size", "sha256", "database"]),
            Action::PickBackup => Some(&["backup", "incident_at", "rpo_s", "rpo"]),
            Action::Restore => Some(&["target_db", "manifest"]),
            Action::ReapplyOwners => {
                Some(&["database", "applied", "missing_role", "held", "failed"])
            }
            Action::Verify => Some(&["database", "ok", "checks", "counts"]),
            Action::Swap => Some(&["live", "damaged", "restored_from"]),
            Action::MergeTables => Some(&[
                "source",
                "policy",
                "transaction",
                "tables",
                "sequences",
                "orphans",
                "inserted",
                "updated",
            ]),
            Action::RecoverPitr => Some(&[
                "dump",
                "sha256",
                "size",
                "target",
                "target_text",
                "evidence",
                "evidence_text",
                "base_backup",
                "recovery_dir",
                "archive",
                "host",
                "moved",
            ]),
            Action::ChoosePath => Some(&[
                "path",
                "reason",
                "forced",
                "archive",
                "target_text",
                "evidence_text",
                "base_backup",
            ]),
            Action::StartServices => Some(&["started", "kept_off"]),
            Action::Command => Some(&["exit", "output"]),
            Action::Sql => Some(&["rows", "output"]),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Preconditions a step may declare in `requires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    /// A stop-services step of the same database finished and its hold passed.
    WritersStopped,
    /// A snapshot of the same database finished (or its failure was overridden).
    Snapshot,
    /// A pick-backup step finished.
    BackupPicked,
    /// A restore step finished.
    Restored,
    /// A verify step finished and found no damage.
    Verified,
}

impl Requirement {
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::WritersStopped => "writers-stopped",
            Requirement::Snapshot => "snapshot",
            Requirement::BackupPicked => "backup-picked",
            Requirement::Restored => "restored",
            Requirement::Verified => "verified",
        }
    }
    /// The action whose success meets this requirement.
    pub fn met_by(self) -> Action {
        match self {
            Requirement::WritersStopped => Action::StopServices,
            Requirement::Snapshot => Action::Snapshot,
            Requirement::BackupPicked => Action::PickBackup,
            Requirement::Restored => Action::Restore,
            Requirement::Verified => Action::Verify,
        }
    }
    /// True when the meeting step must concern the same database.
    pub fn per_database(self) -> bool {
        matches!(self, Requirement::WritersStopped | Requirement::Snapshot)
    }
}

/// The two ways back a runbook may offer: recovery from a WAL archive to
/// just before the damage, or a restore of a dump. A `choose-path` step
/// decides; steps of the other path are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathChoice {
    Pitr,
    Dump,
}

impl PathChoice {
    pub const ALL: [PathChoice; 2] = [PathChoice::Pitr, PathChoice::Dump];

    pub fn as_str(self) -> &'static str {
        match self {
            PathChoice::Pitr => "pitr",
            PathChoice::Dump => "dump",
        }
    }

    pub fn parse(s: &str) -> Option<PathChoice> {
        match s {
            "pitr" => Some(PathChoice::Pitr),
            "dump" => Some(PathChoice::Dump),
            _ => None,
        }
    }
}

impl std::fmt::Display for PathChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    Host,
    Database,
    Catalog,
    Time,
    Text,
}

impl ParamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Host => "host",
            ParamKind::Database => "database",
            ParamKind::Catalog => "catalog",
            ParamKind::Time => "time",
            ParamKind::Text => "text",
        }
    }
}

/// Where a parameter's value comes from when the answers do not give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamFrom {
    /// The only inventory entry of its kind.
    Inventory,
    /// The first row-count drop journaled for this incident.
    Timeline,
    /// The operator (headless: the answers file).
    Ask,
}

/// A value with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub from: ParamFrom,
    pub default: Option<Located<String>>,
    pub explain: Option<String>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub action: Action,
    pub explain: String,
    pub destructive: bool,
    /// Declared plus forced requirements, without duplicates.
    pub requires: Vec<Requirement>,
    pub host: Option<Located<Template>>,
    pub database: Option<Located<Template>>,
    pub services: Vec<Located<Template>>,
    pub hold_s: u64,
    pub sql: Option<String>,
    pub command: Option<Located<Template>>,
    pub catalog: Option<Located<Template>>,
    pub jobs: Option<u32>,
    /// `jobs` given as a template (a parameter): resolved when the step runs.
    pub jobs_from: Option<Located<Template>>,
    pub text: Option<Template>,
    pub incident_at: Option<Located<Template>>,
    pub backup: Option<Located<Template>>,
    pub restored: Option<Located<Template>>,
    pub compare_to: Option<String>,
    /// merge-tables: the tables (comma-separated names; a template).
    pub tables: Option<Located<Template>>,
    /// merge-tables: tables without a key to replace whole.
    pub replace: Vec<String>,
    pub policy: Option<crate::engine::types::MergePolicy>,
    pub transaction: Option<crate::engine::types::MergeTx>,
    /// recover-pitr: the inventory archive (default: the only one covering the database).
    pub archive: Option<Located<Template>>,
    /// recover-pitr: last time the data was seen healthy (RFC 3339).
    pub healthy_at: Option<Located<Template>>,
    /// recover-pitr: first damage evidence (RFC 3339): the destructive
    /// transaction found must have committed by then.
    pub damaged_at: Option<Located<Template>>,
    /// recover-pitr: a target moved by the operator (`lsn:...`, `time:...`; empty: the one found).
    pub target: Option<Located<Template>>,
    /// choose-path: `pitr`, `dump`, or empty/`auto` (decide from the archive); a template.
    pub force: Option<Located<Template>>,
    /// The path this step belongs to (None: every path). Two steps may share
    /// an id only when their paths differ.
    pub path: Option<PathChoice>,
    pub timeout_s: Option<u64>,
    pub span: Range<usize>,
}

/// Default hold of stop-services, in seconds.
pub const DEFAULT_HOLD_S: u64 = 60;

#[derive(Debug, Clone)]
pub struct Runbook {
    pub id: String,
    pub title: String,
    pub when: String,
    pub params: Vec<Param>,
    pub steps: Vec<Step>,
    /// Where it was read from (a path, or `builtin:<id>`).
    pub file: String,
    pub text: String,
    /// SHA-256 of the file text, journaled so a resume can tell it changed.
    pub sha256: String,
}

impl Runbook {
    pub fn parse(text: &str, file: &str) -> Result<Runbook, Diags> {
        parse::parse(text, file)
    }

    pub fn load(path: &Path) -> Result<Runbook, RunbookError> {
        let text = std::fs::read_to_string(path).map_err(|source| RunbookError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string()).map_err(RunbookError::Invalid)
    }

    /// The first step with this id (two steps share one only when their paths differ).
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
    /// Every step with this id (one, or one per path).
    pub fn step_indices(&self, id: &str) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&i| self.steps[i].id == id)
            .collect()
    }
    /// The step with this id that runs on `path` (a step without a path runs on every path).
    pub fn step_on_path(&self, id: &str, path: Option<PathChoice>) -> Option<usize> {
        let all = self.step_indices(id);
        match path {
            Some(p) => all
                .iter()
                .copied()
                .find(|&i| self.steps[i].path.is_none_or(|q| q == p))
                .or_else(|| all.first().copied()),
            None => all.first().copied(),
        }
    }
    /// True when a `choose-path` step decides between the pitr and dump paths.
    pub fn has_paths(&self) -> bool {
        self.steps.iter().any(|s| s.action == Action::ChoosePath)
    }
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error("cannot read runbook '{path}': {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diags),
    #[error(
        "no runbook '{0}': give a path to a .toml file or one of the ids 'lifeline runbooks' lists"
    )]
    NotFound(String),
}

/// The runbooks shipped inside the binary (the files of runbooks/).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "rogue-sync-wipe",
        include_str!("../../runbooks/rogue-sync-wipe.toml"),
    ),
    (
        "table-wiped",
        include_str!("../../runbooks/table-wiped.toml"),
    ),
    (
        "table-wiped-swap",
        include_str!("../../runbooks/table-wiped-swap.toml"),
    ),
    (
        "database-missing",
        include_str!("../../runbooks/database-missing.toml"),
    ),
    (
        "migration-reset",
        include_str!("../../runbooks/migration-reset.toml"),
    ),
    (
        "predeploy-gate",
        include_str!("../../runbooks/predeploy-gate.toml"),
    ),
    (
        "pitr-restore",
        include_str!("../../runbooks/pitr-restore.toml"),
    ),
];

/// The runbook directory: `$LIFELINE_RUNBOOKS`, else `./runbooks` when it exists.
pub fn runbook_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("LIFELINE_RUNBOOKS").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let local = PathBuf::from("runbooks");
    local.is_dir().then_some(local)
}

/// Every runbook source: the files of `dir` (sorted), then the built-in
/// ones whose id no file took. Each as (where, text).
pub fn sources(dir: Option<&Path>) -> Result<Vec<(String, String)>, RunbookError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen_ids: BTreeMap<String, ()> = BTreeMap::new();
    if let Some(dir) = dir {
        let rd = std::fs::read_dir(dir).map_err(|source| RunbookError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|source| RunbookError::Read {
                path: p.clone(),
                source,
            })?;
            if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                seen_ids.insert(stem.to_string(), ());
            }
            out.push((p.display().to_string(), text));
        }
    }
    for (id, text) in BUILTIN {
        if !seen_ids.contains_key(*id) {
            out.push((format!("builtin:{id}"), (*text).to_string()));
        }
    }
    Ok(out)
}

/// A runbook by path (when `name` is an existing file) or by id (the
/// runbook directory first, then the built-in ones).
pub fn find(name: &str, dir: Option<&Path>) -> Result<Runbook, RunbookError> {
    let p = Path::new(name);
    if p.is_file() {
        return Runbook::load(p);
    }
    if let Some(d) = dir {
        let candidate = d.join(format!("{name}.toml"));
        if candidate.is_file() {
            return Runbook::load(&candidate);
        }
    }
    if let Some((id, text)) = BUILTIN.iter().find(|(id, _)| *id == name) {
        return Runbook::parse(text, &format!("builtin:{id}")).map_err(RunbookError::Invalid);
    }
    Err(RunbookError::NotFound(name.to_string()))
}

#[cfg(test)]
mod tests;
