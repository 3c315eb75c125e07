//! Content scans of catalog files over their host's transport: the SHA-256
//! taken on the host, the SQL text streamed (`cat`, `gzip -dc`, or
//! `pg_restore -f -` run there) through the scanner, the result cached by
//! that SHA-256 in the state directory (0700 dir, 0600 files). Read-only on
//! the host; the cache holds counts and names, never a row of data.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::label::{Baseline, DAMAGE_RATIO, DamageWindow, Label, damage_window, label};

use super::scan::{ContentScan, Scanner};
use super::{BackupFile, DumpFormat};
use crate::transport::{ExecOptions, Host, TransportError, shell_quote};

/// A scan may read gigabytes; the transport's limit is only a backstop.
const STREAM_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
const HASH_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("host '{host}': {source}")]
    Transport {
        host: String,
        #[source]
        source: TransportError,
    },
    #[error("cannot read '{path}' on host '{host}': {why}")]
    Read {
        host: String,
        path: String,
        why: String,
    },
    #[error("format {0:?} holds no SQL to scan")]
    Format(DumpFormat),
}

/// A file's content, and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct FileScan {
    pub sha256: String,
    pub scan: ContentScan,
    pub cached: bool,
}

/// The scan cache: `<state>/scans/<sha256>.json`. Without a directory
/// (library use without a state dir) every file is scanned each time.
#[derive(Debug, Clone, Default)]
pub struct ScanCache {
    dir: Option<PathBuf>,
}

impl ScanCache {
    pub fn new(state_root: &Path) -> ScanCache {
        ScanCache {
            dir: Some(state_root.join("scans")),
        }
    }

    pub fn none() -> ScanCache {
        ScanCache { dir: None }
    }

    fn path(&self, sha: &str) -> Option<PathBuf> {
        let ok = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        self.dir
            .as_ref()
            .filter(|_| ok)
            .map(|d| d.join(format!("{sha}.json")))
    }

    pub fn get(&self, sha: &str) -> Option<ContentScan> {
        let text = std::fs::read_to_string(self.path(sha)?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes one entry, private, atomically (a temp file renamed).
    pub fn put(&self, sha: &str, scan: &ContentScan) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let (Some(dir), Some(path)) = (&self.dir, self.path(sha)) else {
            return Ok(());
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let tmp = dir.join(format!(".{sha}.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec(scan).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    }
}

/// The command that writes the dump's SQL text on its host.
pub fn text_command(path: &str, format: DumpFormat) -> Option<String> {
    let q = shell_quote(path);
    match format {
        DumpFormat::Plain => Some(format!("cat -- {q}")),
        DumpFormat::PlainGzip => Some(format!("gzip -dc -- {q}")),
        DumpFormat::Custom | DumpFormat::Directory | DumpFormat::Tar => Some(format!(
            "{}; \"${{PGR:-pg_restore}}\" -f - -- {q}",
            super::REMOTE_PG_RESTORE
        )),
        DumpFormat::Empty | DumpFormat::Unknown => None,
    }
}

/// The command that prints the SHA-256 of a file (or of a directory
/// archive's files, in name order) on its host.
fn hash_command(path: &str, format: DumpFormat) -> String {
    let q = shell_quote(path);
    if format == DumpFormat::Directory {
        format!(
            "cd -- {q} && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum -- | sha256sum"
        )
    } else {
        format!("sha256sum -- {q}")
    }
}

fn read_err(h: &Host, f: &BackupFile, why: String) -> ScanError {
    ScanError::Read {
        host: h.name().to_string(),
        path: f.path.clone(),
        why,
    }
}

/// SHA-256 of the file, computed on its host.
pub async fn file_sha256(h: &Host, f: &BackupFile) -> Result<String, ScanError> {
    let r = h
        .exec(
            &hash_command(&f.path, f.format),
            ExecOptions::default().timeout(HASH_TIMEOUT),
        )
        .await
        .map_err(|source| ScanError::Transport {
            host: h.name().to_string(),
            source,
        })?;
    let sha = r.stdout.split_whitespace().next().unwrap_or("");
    if !r.success() || sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(read_err(
            h,
            f,
            format!(
                "sha256sum: {}",
                r.stderr_last_line().unwrap_or(&r.outcome())
            ),
        ));
    }
    Ok(sha.to_ascii_lowercase())
}

/// Streams the file's SQL text from its host through the scanner.
pub async fn scan_stream(h: &Host, f: &BackupFile) -> Result<ContentScan, ScanError> {
    let cmd = text_command(&f.path, f.format).ok_or(ScanError::Format(f.format))?;
    let mut stream = h
        .exec_stream(
            &cmd,
            ExecOptions::default()
                .timeout(STREAM_TIMEOUT)
                .output_cap(64 << 10),
        )
        .await
        .map_err(|source| ScanError::Transport {
            host: h.name().to_string(),
            source,
        })?;
    let mut scanner = Scanner::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| read_err(h, f, e.to_string()))?;
        if n == 0 {
            break;
        }
        scanner.feed(&buf[..n]);
    }
    let r = stream
        .finish()
        .await
        .map_err(|source| ScanError::Transport {
            host: h.name().to_string(),
            source,
        })?;
    if !r.success() {
        return Err(read_err(
            h,
            f,
            format!(
                "'{cmd}': {}: {}",
                r.outcome(),
                r.stderr_last_line().unwrap_or("")
            ),
        ));
    }
    Ok(scanner.finish())
}

/// The content of one file: from the cache when its SHA-256 was scanned
/// before, else streamed and scanned (and cached).
pub async fn scan_file(h: &Host, f: &BackupFile, cache: &ScanCache) -> Result<FileScan, ScanError> {
    let sha = file_sha256(h, f).await?;
    if let Some(scan) = cache.get(&sha) {
        return Ok(FileScan {
            sha256: sha,
            scan,
            cached: true,
        });
    }
    let scan = scan_stream(h, f).await?;
    if let Err(e) = cache.put(&sha, &scan) {
        tracing::warn!("cannot cache the scan of '{}': {e}", f.path);
    }
    Ok(FileScan {
        sha256: sha,
        scan,
        cached: false,
    })
}

/// One file of a catalog with its content and label.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssessedFile {
    #[serde(flatten)]
    pub file: BackupFile,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentScan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_error: Option<String>,
    /// The content came from the scan cache.
    pub cached: bool,
    pub label: Label,
    pub why: String,
}

/// A catalog's files labelled against the history, and the damage window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assessment {
    pub files: Vec<AssessedFile>,
    pub baseline: Baseline,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<DamageWindow>,
}

/// One sampling round as evidence: when, and rows per `schema.name`.
pub type SampleCounts = (DateTime<Utc>, BTreeMap<String, u64>);

/// The rounds of `database` (inventory name) in an incident's samples
/// file: exact counts only (an estimate is no history).
pub fn sample_counts(samples: &[crate::samples::Sample], database: &str) -> Vec<SampleCounts> {
    samples
        .iter()
        .filter(|s| s.database == database)
        .map(|s| {
            (
                s.ts,
                s.tables
                    .iter()
                    .filter(|t| t.exact)
                    .map(|t| {
                        (
                            format!("{}.{}", t.schema, t.name),
                            u64::try_from(t.rows).unwrap_or(0),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Scans every intact file (cached by SHA-256), builds the healthy history
/// from the samples and the scans, labels every file and derives the window.
pub async fn assess(
    h: &Host,
    files: &[BackupFile],
    cache: &ScanCache,
    want_db: Option<&str>,
    watched: &[String],
    samples: &[SampleCounts],
) -> Assessment {
    let mut scanned: Vec<(Option<FileScan>, Option<String>)> = Vec::new();
    for f in files {
        if !f.ok {
            scanned.push((None, None));
            continue;
        }
        match scan_file(h, f, cache).await {
            Ok(s) => scanned.push((Some(s), None)),
            Err(e) => scanned.push((None, Some(e.to_string()))),
        }
    }
    // An archive names its database in its header, not in its SQL text.
    for (f, (s, _)) in files.iter().zip(scanned.iter_mut()) {
        if let Some(s) = s
            && s.scan.dbname.is_none()
        {
            s.scan.dbname = f.dumped_db.clone();
        }
    }
    let scans: Vec<&ContentScan> = scanned
        .iter()
        .filter_map(|(s, _)| s.as_ref().map(|s| &s.scan))
        .collect();
    let counts: Vec<BTreeMap<String, u64>> = samples.iter().map(|(_, c)| c.clone()).collect();
    let baseline = Baseline::build(&counts, &scans, want_db);
    let mut out = Vec::new();
    let mut evidence = Vec::new();
    for (f, (s, err)) in files.iter().zip(scanned) {
        let lab = label(
            f,
            s.as_ref().map(|s| &s.scan),
            err.as_deref(),
            want_db,
            watched,
            &baseline,
        );
        if let Some(t) = DateTime::parse_from_rfc3339(&f.taken_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
        {
            evidence.push((t, format!("backup {}", f.name), lab.label));
        }
        out.push(AssessedFile {
            file: f.clone(),
            sha256: s.as_ref().map(|s| s.sha256.clone()),
            cached: s.as_ref().is_some_and(|s| s.cached),
            content: s.map(|s| s.scan),
            scan_error: err,
            label: lab.label,
            why: lab.why,
        });
    }
    for (at, c) in samples {
        evidence.push((
            *at,
            "a sample of the live database".to_string(),
            sample_label(c, watched, &baseline),
        ));
    }
    Assessment {
        files: out,
        window: damage_window(&evidence),
        baseline,
    }
}

/// A sample is damaged when a judged table is empty or far below its history.
pub fn sample_label(c: &BTreeMap<String, u64>, watched: &[String], base: &Baseline) -> Label {
    let bad = base.judged(watched).into_iter().any(|(t, h)| {
        let got = c.get(t).copied().unwrap_or(0);
        h > 0 && got.saturating_mul(DAMAGE_RATIO) < h
    });
    if bad { Label::Damaged } else { Label::Healthy }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_private_and_keyed_by_hash() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let c = ScanCache::new(d.path());
        let sha = "ab".repeat(32);
        assert!(c.get(&sha).is_none());
        let s = ContentScan {
            tables: vec!["public.a".into()],
            ..Default::default()
        };
        c.put(&sha, &s).unwrap();
        assert_eq!(c.get(&sha), Some(s.clone()));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d.path().join("scans")), 0o700);
        assert_eq!(
            mode(&d.path().join("scans").join(format!("{sha}.json"))),
            0o600
        );
        // A key that is not a hash never becomes a path.
        assert!(c.put("../../etc/x", &s).is_ok());
        assert!(!d.path().join("etc").exists());
        assert!(c.get("../x").is_none());
    }

    #[test]
    fn commands_quote_the_path() {
        assert_eq!(
            text_command("/b/it's.sql.gz", DumpFormat::PlainGzip).unwrap(),
            "gzip -dc -- '/b/it'\\''s.sql.gz'"
        );
        assert!(text_command("/b/x", DumpFormat::Empty).is_none());
        assert!(hash_command("/b/d", DumpFormat::Directory).starts_with("cd -- /b/d &&"));
    }
}
