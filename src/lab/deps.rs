//! The lab's first run on a fresh machine: installs missing PostgreSQL
//! server binaries with apt as root after a y/N answer or `--install-deps`,
//! else names the one command. Never installs without that consent.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::sandbox::{SandboxError, is_root, pg_bin_dir, user_ids};

/// The Debian/Ubuntu package holding initdb and pg_ctl.
pub const PACKAGE: &str = "postgresql";

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) are missing; install them with:\n    {command}\n(or run 'lifeline lab --install-deps' as root)"
    )]
    Missing { command: String },
    /// Missing, and no apt-get to install with.
    #[error(transparent)]
    NoApt(SandboxError),
    #[error("'{command}' failed ({status}): see its output above")]
    InstallFailed { command: String, status: String },
    #[error("cannot run '{command}': {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{command}' succeeded but initdb and pg_ctl are still not found: {source}")]
    StillMissing {
        command: String,
        #[source]
        source: SandboxError,
    },
}

/// How the operator consents to an install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// `--install-deps`: install without asking.
    Given,
    /// Ask y/N when stdin and stderr are a terminal; otherwise refuse.
    Ask,
}

/// The one command that installs the binaries, as it must be typed by
/// this user (root or not).
pub fn install_command(root: bool) -> String {
    let sudo = if root { "" } else { "sudo " };
    format!("{sudo}apt-get update && {sudo}apt-get install -y {PACKAGE}")
}

fn in_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// The PostgreSQL server binaries' directory, installing them first when
/// missing and the operator consents (see [`Consent`]). Questions and
/// apt's output go to stderr; stdout stays the program's.
pub fn ensure_postgres(consent: Consent) -> Result<PathBuf, DepsError> {
    let root = is_root();
    let missing = match pg_bin_dir() {
        // As root, initdb runs as the 'postgres' user the package creates.
        Ok(_) if root && user_ids("postgres").is_none() => SandboxError::NoPostgresUser,
        Ok(dir) => return Ok(dir),
        Err(e) => e,
    };
    if !in_path("apt-get") {
        return Err(DepsError::NoApt(missing));
    }
    let command = install_command(root);
    if !root {
        return Err(DepsError::Missing { command });
    }
    let go = match consent {
        Consent::Given => true,
        Consent::Ask => {
            std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && ask(&command)
        }
    };
    if !go {
        return Err(DepsError::Missing { command });
    }
    eprintln!("installing the PostgreSQL server binaries: {command}");
    // An old package list only makes the install fail: refresh it first,
    // and go on when that fails (offline, a cached list may still do).
    let _ = apt(&["update"]);
    let status = apt(&["install", "-y", PACKAGE])?;
    if !status.success() {
        return Err(DepsError::InstallFailed {
            command,
            status: status.to_string(),
        });
    }
    let dir = pg_bin_dir().map_err(|source| DepsError::StillMissing {
        command: command.clone(),
        source,
    })?;
    if user_ids("postgres").is_none() {
        return Err(DepsError::StillMissing {
            command,
            source: SandboxError::NoPostgresUser,
        });
    }
    Ok(dir)
}

fn apt(args: &[&str]) -> Result<std::process::ExitStatus, DepsError> {
    let shown = format!("apt-get {}", args.join(" "));
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|source| DepsError::Spawn {
            command: shown,
            source,
        })
}

/// The y/N question on the terminal; anything but y/yes is no.
fn ask(command: &str) -> bool {
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "PostgreSQL server binaries (initdb, pg_ctl) are missing. Install them now with '{command}'? [y/N] "
    );
    let _ = err.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    is_yes(&line)
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_consents() {
        for a in ["y\n", "Y", " yes ", "YES\n"] {
            assert!(is_yes(a), "{a:?}");
        }
        for a in ["", "\n", "n", "no", "yy", "ye", "sure", "y es"] {
            assert!(!is_yes(a), "{a:?}");
        }
    }

    #[test]
    fn the_command_names_sudo_only_for_an_ordinary_user() {
        assert_eq!(
            install_command(true),
            "apt-get update && apt-get install -y postgresql"
        );
        assert_eq!(
            install_command(false),
            "sudo apt-get update && sudo apt-get install -y postgresql"
        );
    }
}
