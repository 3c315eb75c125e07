//! `lifeline init --host NAME`: one read-only round trip listing a host's
//! backup-looking files (by directory, naming pattern guessed) and running
//! servers. Never changes anything there; file names are data, never code.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::transport::{Host, shell_quote};

/// Where backups usually live; `--look-in` adds more.
pub const DEFAULT_DIRS: [&str; 6] = [
    "/var/backups",
    "/backup",
    "/backups",
    "/srv/backups",
    "/var/lib/postgresql/backups",
    "/opt/backups",
];

/// A directory of backup-looking files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDir {
    pub path: String,
    pub files: usize,
    /// strftime pattern shared by the newest files, e.g. `app_%Y%m%d_%H%M%S.sql`.
    pub pattern: Option<String>,
    /// The file name before its date (`app_` of `app_20261205_184135.sql`).
    pub prefix: String,
}

/// A running PostgreSQL server (`postgres -D DIR -p PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub port: Option<u16>,
    pub data_dir: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub backups: Vec<BackupDir>,
    pub clusters: Vec<Cluster>,
}

const MARK: &str = "\n@@lifeline-init-ps@@\n";

/// The read-only script: backup files (NUL-separated paths), then the
/// argument lines of running postgres servers.
pub fn script(dirs: &[String]) -> String {
    let quoted: Vec<String> = dirs.iter().map(|d| shell_quote(d)).collect();
    format!(
        "for d in {}; do [ -d \"$d\" ] && find \"$d\" -maxdepth 2 -type f \\( -name '*.sql' -o -name '*.sql.gz' -o -name '*.dump' -o -name '*.backup' -o -name '*.pgdump' -o -name '*.tar' \\) -print0 2>/dev/null; done | head -c 2000000; printf '{}'; ps -eo args= 2>/dev/null | grep -E '^[^ ]*(postgres|postmaster) .*-D' | head -n 50",
        quoted.join(" "),
        MARK.replace('\n', "\\n")
    )
}

/// Runs the script on `host`.
pub async fn look(host: &Host, dirs: &[String]) -> Result<Found, String> {
    let opts = host
        .options()
        .timeout(Duration::from_secs(60))
        .output_cap(4_000_000);
    let r = host
        .exec(&script(dirs), opts)
        .await
        .map_err(|e| e.to_string())?;
    Ok(parse(&r.stdout))
}

/// Parses the script's output.
pub fn parse(out: &str) -> Found {
    let (files, ps) = out.split_once(MARK).unwrap_or((out, ""));
    let mut by_dir: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in files.split('\0') {
        if p.is_empty() || p.chars().any(char::is_control) {
            continue;
        }
        if let Some((dir, name)) = p.rsplit_once('/') {
            let dir = if dir.is_empty() { "/" } else { dir };
            by_dir
                .entry(dir.to_string())
                .or_default()
                .push(name.to_string());
        }
    }
    let backups = by_dir
        .into_iter()
        .map(|(path, mut names)| {
            names.sort();
            let guesses: Vec<(String, String)> = names.iter().filter_map(|n| guess(n)).collect();
            // The pattern most files share.
            let mut counts: BTreeMap<&(String, String), usize> = BTreeMap::new();
            for g in &guesses {
                *counts.entry(g).or_default() += 1;
            }
            let best = counts
                .into_iter()
                .max_by_key(|(_, c)| *c)
                .map(|(g, _)| g.clone());
            let prefix = best
                .as_ref()
                .map(|(p, _)| p.clone())
                .or_else(|| {
                    names
                        .first()
                        .map(|n| n.split('.').next().unwrap_or("").to_string())
                })
                .unwrap_or_default();
            BackupDir {
                path,
                files: names.len(),
                pattern: best.map(|(_, pat)| pat),
                prefix,
            }
        })
        .collect();
    let clusters = ps
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let a: Vec<&str> = l.split_whitespace().collect();
            let after = |flag: &str| {
                a.iter()
                    .position(|x| *x == flag)
                    .and_then(|i| a.get(i + 1))
                    .map(|s| s.to_string())
            };
            Cluster {
                port: after("-p").and_then(|p| p.parse().ok()),
                data_dir: after("-D"),
            }
        })
        .collect();
    Found { backups, clusters }
}

/// (prefix, strftime pattern) of a file name holding a date, e.g.
/// `app_20261205_184135.sql` -> (`app_`, `app_%Y%m%d_%H%M%S.sql`).
pub fn guess(name: &str) -> Option<(String, String)> {
    let forms: [(&str, &str); 4] = [
        (
            r"(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])([_T-]?)(?:[01]\d|2[0-3])[0-5]\d[0-5]\d",
            "%Y%m%d${1}%H%M%S",
        ),
        (
            r"(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:[0-2]\d|3[01])([_T ]?)(?:[01]\d|2[0-3])([:-]?)[0-5]\d([:-]?)[0-5]\d",
            "%Y-%m-%d${1}%H${2}%M${3}%S",
        ),
        (
            r"(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:[0-2]\d|3[01])",
            "%Y-%m-%d",
        ),
        (
            r"(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])",
            "%Y%m%d",
        ),
    ];
    for (re, with) in forms {
        let re = regex::Regex::new(re).ok()?;
        if let Some(m) = re.find(name) {
            let pattern = format!(
                "{}{}{}",
                name[..m.start()].replace('%', "%%"),
                re.replace(m.as_str(), with),
                name[m.end()..].replace('%', "%%")
            );
            return Some((name[..m.start()].to_string(), pattern));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_the_naming_pattern() {
        let g = |n: &str| guess(n).map(|(_, p)| p);
        assert_eq!(
            g("app_20261205_184135.sql").as_deref(),
            Some("app_%Y%m%d_%H%M%S.sql")
        );
        assert_eq!(
            g("app-20261205T184135.dump").as_deref(),
            Some("app-%Y%m%dT%H%M%S.dump")
        );
        assert_eq!(
            g("db_2026-12-05_18-41-35.sql.gz").as_deref(),
            Some("db_%Y-%m-%d_%H-%M-%S.sql.gz")
        );
        assert_eq!(
            g("nightly-2026-12-05.sql").as_deref(),
            Some("nightly-%Y-%m-%d.sql")
        );
        assert_eq!(g("x_20261205.sql").as_deref(), Some("x_%Y%m%d.sql"));
        assert_eq!(g("50%_20261205.sql").as_deref(), Some("50%%_%Y%m%d.sql"));
        assert_eq!(g("latest.sql"), None);
        assert_eq!(
            guess("tovplay_external_20261205_184135.sql").unwrap().0,
            "tovplay_external_"
        );
    }

    #[test]
    fn parses_files_by_directory_and_servers() {
        let out = format!(
            "/b/app_20261201_120000.sql\0/b/app_20261202_120000.sql\0/b/latest.sql\0/b/evil\nname_20261201.sql\0/c/x.dump\0{MARK}/usr/lib/postgresql/15/bin/postgres -D /var/lib/pg/data -p 5433 -k /tmp\n"
        );
        let f = parse(&out);
        assert_eq!(f.backups.len(), 2, "{f:?}");
        assert_eq!(f.backups[0].path, "/b");
        assert_eq!(
            f.backups[0].files, 3,
            "the name with a newline is skipped: {f:?}"
        );
        assert_eq!(
            f.backups[0].pattern.as_deref(),
            Some("app_%Y%m%d_%H%M%S.sql")
        );
        assert_eq!(f.backups[1].pattern, None);
        assert_eq!(
            f.clusters,
            [Cluster {
                port: Some(5433),
                data_dir: Some("/var/lib/pg/data".into())
            }]
        );
    }
}
