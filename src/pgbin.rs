//! The one finder of the PostgreSQL programs (initdb, pg_ctl, pg_dump,
//! pg_restore, psql): for the restore, the client actions, the sandbox and
//! the lab. Only looks: never installs, runs (but `pg_config --bindir`) or changes anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum PgBinError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin, PATH or 'pg_config --bindir' (or $LIFELINE_PG_BIN / $LIFELINE_PG_SEARCH): install the 'postgresql' package (Debian/Ubuntu: apt-get install postgresql; 'lifeline lab' offers to do it where apt-get exists)"
    )]
    NotFound,
}

/// Environment variable naming the one directory of the PostgreSQL programs
/// (skips the search).
pub const PG_BIN_ENV: &str = "LIFELINE_PG_BIN";
/// Environment variable (tests, unusual installs) replacing the finder's
/// search path: `:`-separated directories, each a bin directory or a parent
/// of `<major>/bin` directories (like /usr/lib/postgresql). When set,
/// nothing else is searched.
pub const PG_SEARCH_ENV: &str = "LIFELINE_PG_SEARCH";

/// The directories the finder looks in, in order: `$LIFELINE_PG_BIN`; then
/// either `$LIFELINE_PG_SEARCH` alone, or the newest /usr/lib/postgresql/*/bin
/// and PATH (then `pg_config --bindir`, see [`pg_config_dir`]).
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os(PG_BIN_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(search) = std::env::var_os(PG_SEARCH_ENV) {
        for d in std::env::split_paths(&search) {
            dirs.extend(versioned_bins(&d));
            dirs.push(d);
        }
        return dirs;
    }
    dirs.extend(versioned_bins(Path::new("/usr/lib/postgresql")));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The last resort (not with `$LIFELINE_PG_SEARCH`): `pg_config --bindir`,
/// run only when nothing else matched.
fn pg_config_dir() -> Option<PathBuf> {
    if std::env::var_os(PG_SEARCH_ENV).is_some() {
        return None;
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let d = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!d.is_empty()).then(|| PathBuf::from(d))
}

/// `<root>/<major>/bin` directories, newest major first.
fn versioned_bins(root: &Path) -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.into_iter().rev().map(|(_, d)| d).collect()
}

/// Directory of the PostgreSQL server binaries (the first search directory,
/// see [`PG_SEARCH_ENV`], holding `initdb` and `pg_ctl`). The one finder:
/// the sandbox, the lab and the client programs all use it.
pub fn pg_bin_dir() -> Result<PathBuf, PgBinError> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    // pg_config runs only when nothing before it matched (once_with is lazy).
    for d in search_dirs()
        .into_iter()
        .chain(std::iter::once_with(pg_config_dir).flatten())
    {
        if has(&d) {
            // Often symlinks into the real bin dir, which also holds psql and pg_dump.
            let real = std::fs::canonicalize(d.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|r| has(r))
                .unwrap_or(d);
            return Ok(real);
        }
    }
    Err(PgBinError::NotFound)
}

/// A PostgreSQL program (pg_dump, pg_restore, psql, ...): the first search
/// directory holding it, else the bare name (left to PATH).
pub fn pg_program(name: &str) -> PathBuf {
    search_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .or_else(|| {
            pg_config_dir()
                .map(|d| d.join(name))
                .filter(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}
