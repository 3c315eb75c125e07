//! The lab's WAL archive: the cluster archives every WAL segment into
//! `<lab>/pitr/wal` (or pushes it into a pgBackRest repository), and a base
//! backup is taken after the seeding, before the damage. Everything lives in
//! the lab directory; it never archives into, or reads from, anything else.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LabError, data};
use crate::sandbox::{PgCluster, is_root, user_ids};
use crate::transport::shell_quote;

/// The archive's directory inside the lab directory.
pub const PITR_DIR: &str = "pitr";
/// Inventory name of the lab's archive.
pub const ARCHIVE: &str = "lab-wal";
/// pgBackRest stanza of `lab --pgbackrest`.
pub const STANZA: &str = "lab";
/// Seconds after which a WAL segment with changes is archived even if not full.
pub const ARCHIVE_TIMEOUT_S: u32 = 10;

/// Which archive the lab keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    /// `archive_command` copies into a directory; `pg_basebackup` backups.
    #[default]
    WalDir,
    /// A real pgBackRest repository (stanza-create, archive-push, a full backup).
    Pgbackrest,
}

/// The lab's archive as built: what the inventory names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabArchive {
    pub kind: ArchiveKind,
    /// `<lab>/pitr`.
    pub root: PathBuf,
    /// wal-dir: base backups, one directory each.
    pub base_dir: PathBuf,
    /// wal-dir: archived segments.
    pub wal_dir: PathBuf,
    /// Where recovery clusters are made.
    pub recovery_dir: PathBuf,
    /// pgbackrest: the config file.
    pub config: Option<PathBuf>,
    /// The base backup taken before the damage (its directory name, or the
    /// pgBackRest backup label) and when it finished.
    pub base_backup: Option<String>,
    pub base_backup_at: Option<DateTime<Utc>>,
}

/// The cluster's settings for archiving (the command is set by [`enable`]).
pub fn settings() -> Vec<(String, String)> {
    vec![
        ("wal_level".into(), "replica".into()),
        ("archive_mode".into(), "on".into()),
        ("archive_timeout".into(), ARCHIVE_TIMEOUT_S.to_string()),
    ]
}

/// The owner of the server's files: `postgres` when we are root.
fn owner() -> Option<(u32, u32)> {
    if is_root() {
        user_ids("postgres")
    } else {
        None
    }
}

fn private_dir(p: &Path, owner: Option<(u32, u32)>) -> Result<(), LabError> {
    std::fs::create_dir_all(p).map_err(LabError::io(format!("create '{}'", p.display())))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
        .map_err(LabError::io(format!("chmod '{}'", p.display())))?;
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(p, Some(u), Some(g))
            .map_err(LabError::io(format!("chown '{}'", p.display())))?;
    }
    Ok(())
}

/// Makes `<dir>/pitr` and its base, wal, recovery (and pgBackRest) directories,
/// 0700, owned by the server's user.
pub fn prepare(dir: &Path, kind: ArchiveKind) -> Result<LabArchive, LabError> {
    let root = dir.join(PITR_DIR);
    let o = owner();
    let a = LabArchive {
        kind,
        base_dir: root.join("base"),
        wal_dir: root.join("wal"),
        recovery_dir: root.join("recovery"),
        config: (kind == ArchiveKind::Pgbackrest).then(|| root.join("pgbackrest.conf")),
        root,
        base_backup: None,
        base_backup_at: None,
    };
    private_dir(&a.root, o)?;
    for d in [&a.base_dir, &a.wal_dir, &a.recovery_dir] {
        private_dir(d, o)?;
    }
    if kind == ArchiveKind::Pgbackrest {
        for sub in ["repo", "log", "lock", "spool"] {
            private_dir(&a.root.join(sub), o)?;
        }
    }
    Ok(a)
}

/// A shell word for a path inside `archive_command`, where `%` is special.
fn word(p: &Path) -> String {
    shell_quote(&p.display().to_string()).replace('%', "%%")
}

/// `archive_command`: a segment appears in the archive under its name only
/// when whole, and an existing one is never overwritten (the command fails).
pub fn archive_command(a: &LabArchive) -> String {
    match (a.kind, &a.config) {
        (ArchiveKind::Pgbackrest, Some(conf)) => format!(
            "pgbackrest --config={} --stanza={STANZA} archive-push %p",
            word(conf)
        ),
        _ => {
            let w = word(&a.wal_dir);
            format!("test ! -f {w}/%f && cp %p {w}/%f.part && mv {w}/%f.part {w}/%f")
        }
    }
}

/// Sets `archive_command` (a reload: archive_mode is on from the start;
/// segments written until now wait and are archived next).
pub fn enable(cluster: &PgCluster, a: &LabArchive) -> Result<(), LabError> {
    if a.kind == ArchiveKind::Pgbackrest {
        write_pgbackrest_conf(cluster, a)?;
        pgbackrest(a, &["stanza-create"])?;
    }
    data::psql(
        cluster,
        "postgres",
        "ALTER SYSTEM SET archive_command = :'cmd';\nSELECT pg_reload_conf();\n",
        &[("cmd", archive_command(a))],
    )
    .map(|_| ())
}

fn write_pgbackrest_conf(cluster: &PgCluster, a: &LabArchive) -> Result<(), LabError> {
    let Some(conf) = &a.config else {
        return Ok(());
    };
    let text = format!(
        "# pgBackRest configuration of the lifeline lab (its own repository, in the lab directory).\n[global]\nrepo1-path={}\nlog-path={}\nlock-path={}\nspool-path={}\nlog-level-console=warn\nlog-level-file=info\nstart-fast=y\nrepo1-retention-full=2\n\n[{STANZA}]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
        a.root.join("repo").display(),
        a.root.join("log").display(),
        a.root.join("lock").display(),
        a.root.join("spool").display(),
        cluster.data_dir().display(),
        cluster.port(),
        cluster.socket_dir().display(),
    );
    std::fs::write(conf, text).map_err(LabError::io(format!("write '{}'", conf.display())))?;
    std::fs::set_permissions(conf, std::fs::Permissions::from_mode(0o600))
        .map_err(LabError::io(format!("chmod '{}'", conf.display())))?;
    if let Some((u, g)) = owner() {
        std::os::unix::fs::chown(conf, Some(u), Some(g))
            .map_err(LabError::io(format!("chown '{}'", conf.display())))?;
    }
    Ok(())
}

/// Runs `pgbackrest --config=<conf> --stanza=lab ARGS` as the server's user.
fn pgbackrest(a: &LabArchive, args: &[&str]) -> Result<String, LabError> {
    let conf = a.config.clone().unwrap_or_default();
    let mut c = Command::new("pgbackrest");
    c.arg(format!("--config={}", conf.display()))
        .arg(format!("--stanza={STANZA}"))
        .args(args)
        .stdin(Stdio::null());
    if let Some((u, g)) = owner() {
        c.uid(u).gid(g).env("HOME", &a.root);
    }
    let o = c
        .output()
        .map_err(LabError::io(format!("run pgbackrest {}", args.join(" "))))?;
    if !o.status.success() {
        return Err(LabError::Command {
            what: format!("pgbackrest {}", args.join(" ")),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stderr).trim(),
                String::from_utf8_lossy(&o.stdout).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Takes the base backup: `pg_basebackup` (tar, WAL left to the archive,
/// fast checkpoint) into `base/<stamp>`, or a pgBackRest full backup.
/// Returns once the server reported the backup's end archived.
pub fn base_backup(cluster: &PgCluster, a: &mut LabArchive) -> Result<(), LabError> {
    let name = match a.kind {
        ArchiveKind::Pgbackrest => {
            pgbackrest(a, &["--type=full", "backup"])?;
            let info = pgbackrest(a, &["info", "--output=json"])?;
            backrest_label(&info).ok_or_else(|| LabError::Command {
                what: "pgbackrest info".into(),
                detail: "no backup listed after the full backup".into(),
            })?
        }
        ArchiveKind::WalDir => {
            let name = Utc::now().format("base_%Y%m%dT%H%M%SZ").to_string();
            let mut c = Command::new(cluster.bin("pg_basebackup"));
            c.args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
                .arg(cluster.port().to_string())
                .args(["-Ft", "-X", "none", "-c", "fast", "-D"])
                .arg(a.base_dir.join(&name))
                .env_remove("PGPASSWORD")
                .stdin(Stdio::null());
            if let Some((u, g)) = owner() {
                c.uid(u).gid(g).env("HOME", &a.root);
            }
            let o = c.output().map_err(LabError::io("run pg_basebackup"))?;
            if !o.status.success() {
                return Err(LabError::Command {
                    what: format!("pg_basebackup into '{}'", a.base_dir.display()),
                    detail: String::from_utf8_lossy(&o.stderr).trim().to_string(),
                });
            }
            name
        }
    };
    a.base_backup = Some(name);
    a.base_backup_at = Some(Utc::now());
    Ok(())
}

/// The label of the newest backup in `pgbackrest info --output=json`.
fn backrest_label(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.as_array()?
        .iter()
        .filter_map(|s| s.get("backup")?.as_array())
        .flatten()
        .filter_map(|b| b.get("label")?.as_str())
        .next_back()
        .map(str::to_string)
}

/// The `[[archive]]` entry of the lab inventory.
pub fn inventory_entry(a: &LabArchive, host: &str, database: &str) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let p = |p: &Path| q(&p.display().to_string());
    let mut t = format!(
        "\n[[archive]]\nname = {}\nhost = {}\ndatabases = [{}]\nrecovery_dir = {}\n",
        q(ARCHIVE),
        q(host),
        q(database),
        p(&a.recovery_dir),
    );
    match (a.kind, &a.config) {
        (ArchiveKind::Pgbackrest, Some(conf)) => t.push_str(&format!(
            "kind = \"pgbackrest\"\nstanza = {}\nconfig = {}\n",
            q(STANZA),
            p(conf)
        )),
        _ => t.push_str(&format!(
            "kind = \"wal-dir\"\nbase_dir = {}\nwal_dir = {}\n",
            p(&a.base_dir),
            p(&a.wal_dir)
        )),
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(dir: &str, kind: ArchiveKind) -> LabArchive {
        let root = Path::new(dir).join(PITR_DIR);
        LabArchive {
            kind,
            base_dir: root.join("base"),
            wal_dir: root.join("wal"),
            recovery_dir: root.join("recovery"),
            config: (kind == ArchiveKind::Pgbackrest).then(|| root.join("pgbackrest.conf")),
            root,
            base_backup: None,
            base_backup_at: None,
        }
    }

    #[test]
    fn archive_command_quotes_the_directory_and_escapes_percent() {
        let a = archive("/tmp/lab o'dir 100%", ArchiveKind::WalDir);
        let c = archive_command(&a);
        let w = "'/tmp/lab o'\\''dir 100%%/pitr/wal'";
        assert_eq!(
            c,
            format!("test ! -f {w}/%f && cp %p {w}/%f.part && mv {w}/%f.part {w}/%f")
        );
        let b = archive_command(&archive("/tmp/l $x", ArchiveKind::Pgbackrest));
        assert_eq!(
            b,
            "pgbackrest --config='/tmp/l $x/pitr/pgbackrest.conf' --stanza=lab archive-push %p"
        );
    }

    #[test]
    fn inventory_entry_parses_for_both_kinds() {
        for kind in [ArchiveKind::WalDir, ArchiveKind::Pgbackrest] {
            let a = archive("/tmp/lab \"x\"", kind);
            let text = format!(
                "[[host]]\nname = \"lab\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"postgres://postgres@127.0.0.1:5432/TovPlay\"\n{}",
                inventory_entry(&a, "lab", "main")
            );
            let inv = crate::inventory::Inventory::parse(&text, "lab.toml")
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let spec = &inv.archives[0];
            assert_eq!(spec.name(), ARCHIVE);
            assert_eq!(
                spec.recovery_dir.as_deref(),
                Some("/tmp/lab \"x\"/pitr/recovery")
            );
            match kind {
                ArchiveKind::WalDir => {
                    assert_eq!(spec.wal_dir.as_deref(), Some("/tmp/lab \"x\"/pitr/wal"));
                    assert_eq!(spec.base_dir.as_deref(), Some("/tmp/lab \"x\"/pitr/base"));
                }
                ArchiveKind::Pgbackrest => {
                    assert_eq!(spec.stanza.as_deref(), Some(STANZA));
                    assert_eq!(
                        spec.config.as_deref(),
                        Some("/tmp/lab \"x\"/pitr/pgbackrest.conf")
                    );
                }
            }
        }
    }

    #[test]
    fn the_newest_pgbackrest_label_is_read() {
        let json = r#"[{"name":"lab","backup":[{"label":"20261206-061000F","type":"full"},{"label":"20261206-062000F","type":"full"}]}]"#;
        assert_eq!(backrest_label(json).as_deref(), Some("20261206-062000F"));
        assert_eq!(backrest_label("[]"), None);
        assert_eq!(backrest_label("not json"), None);
    }
}
