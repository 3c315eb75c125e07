//! Backup catalogs: the files of each `[[backups]]` entry, listed on their
//! host, with the time each was taken (the dump's own header, else the name,
//! else mtime, and which one), the format and a cheap integrity check.
//! Read-only: it lists and reads heads and tails, never moves or deletes.

pub mod content;
pub mod label;
pub mod pattern;
pub mod scan;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::inventory::CatalogSpec;
use crate::probe::exec::{Runner, Section, nonce, prelude, sections};
use crate::transport::shell_quote;
pub use pattern::NamePattern;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("backup name pattern '{pattern}' is not usable: {why}")]
    Pattern { pattern: String, why: String },
    #[error("cannot list '{path}' on host '{host}': {why}")]
    List {
        host: String,
        path: String,
        why: String,
    },
    #[error("host '{host}': {why}")]
    Transport { host: String, why: String },
}

/// How a dump is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DumpFormat {
    /// SQL text (`pg_dump` default, `psql -f`).
    Plain,
    /// gzip-wrapped SQL text.
    PlainGzip,
    /// `pg_dump -Fc` (`PGDMP` magic).
    Custom,
    /// `pg_dump -Fd` (a directory with `toc.dat`).
    Directory,
    /// `pg_dump -Ft`.
    Tar,
    /// Zero bytes.
    Empty,
    Unknown,
}

/// Where `taken_at` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    /// The dump's own record (`-- Started on`, `Archive created at`).
    Header,
    /// The file name, read with the catalog's pattern in the host's zone.
    Name,
    /// The file's modification time (least trustworthy: copies change it).
    Mtime,
}

/// One backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub path: String,
    pub name: String,
    pub size: u64,
    /// RFC 3339 UTC.
    pub taken_at: String,
    pub time_source: TimeSource,
    pub mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_time: Option<String>,
    /// The time the dump records about itself, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    pub format: DumpFormat,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Database name the archive says it holds (custom, directory, tar).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dumped_db: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

/// A catalog and its files, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogReport {
    pub name: String,
    pub host: String,
    pub path: String,
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    pub files: Vec<BackupFile>,
    /// Set when the catalog could not be read at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CatalogReport {
    /// The newest intact file taken at or before `t` (the runbook's pick).
    pub fn newest_ok_before(&self, t: DateTime<Utc>) -> Option<&BackupFile> {
        self.files
            .iter()
            .filter(|f| f.ok)
            .filter(|f| parse_time(&f.taken_at).is_some_and(|x| x <= t))
            .max_by_key(|f| parse_time(&f.taken_at))
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One entry of the remote `find -printf '%y\t%s\t%T@\t%f\0'`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub kind: char,
    pub size: u64,
    pub mtime: f64,
    pub name: String,
}

pub fn parse_find(out: &str) -> Vec<Listed> {
    out.split('\0')
        .filter_map(|rec| {
            let rec = rec.trim_start_matches('\n');
            let mut it = rec.splitn(4, '\t');
            let kind = it.next()?.chars().next()?;
            let size = it.next()?.parse().ok()?;
            let mtime = it.next()?.parse().ok()?;
            let name = it.next()?.to_string();
            (!name.is_empty()).then_some(Listed {
                kind,
                size,
                mtime,
                name,
            })
        })
        .collect()
}

/// The format from the first bytes (and the listing kind).
pub fn detect_format(kind: char, size: u64, head: &[u8], has_toc: bool) -> DumpFormat {
    if kind == 'd' {
        return if has_toc {
            DumpFormat::Directory
        } else {
            DumpFormat::Unknown
        };
    }
    if size == 0 {
        return DumpFormat::Empty;
    }
    if head.starts_with(b"PGDMP") {
        return DumpFormat::Custom;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return DumpFormat::PlainGzip;
    }
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return DumpFormat::Tar;
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let t = text.trim_start();
    if t.starts_with("--")
        || t.starts_with("SET ")
        || t.starts_with("\\")
        || t.starts_with("CREATE ")
        || t.starts_with("BEGIN")
    {
        return DumpFormat::Plain;
    }
    DumpFormat::Unknown
}

/// What a plain dump says about itself in its first lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderInfo {
    pub recorded_at: Option<DateTime<Utc>>,
    pub dbname: Option<String>,
    pub server_version: Option<String>,
}

/// Checks head and tail of a plain SQL dump. Err is the problem in words.
pub fn check_plain(head: &str, tail: &str) -> Result<(), String> {
    let is_dump = head.contains("-- PostgreSQL database dump")
        || head.contains("-- PostgreSQL database cluster dump");
    if !is_dump {
        return Err("no pg_dump header ('-- PostgreSQL database dump'): not a pg_dump file, or its start is damaged".into());
    }
    let complete = tail.contains("-- PostgreSQL database dump complete")
        || tail.contains("-- PostgreSQL database cluster dump complete");
    if !complete {
        return Err("truncated: no '-- PostgreSQL database dump complete' trailer at the end (the dump was cut off or is still being written)".into());
    }
    Ok(())
}

/// `-- Started on 2024-12-08 07:36:01 UTC` (pg_dump --verbose) and `-- Dumped from database version`.
pub fn plain_header(head: &str, host_offset: FixedOffset) -> HeaderInfo {
    let mut h = HeaderInfo::default();
    for l in head.lines().take(40) {
        if let Some(v) = l.strip_prefix("-- Started on ") {
            h.recorded_at = parse_zoned(v.trim(), host_offset);
        } else if let Some(v) = l.strip_prefix("-- Dumped from database version ") {
            h.server_version = Some(v.trim().to_string());
        }
    }
    h
}

/// The header `pg_restore --list` prints (run with TZ=UTC).
pub fn restore_list_header(text: &str, host_offset: FixedOffset) -> HeaderInfo {
    let mut h = HeaderInfo::default();
    for l in text.lines().take(30) {
        let l = l.trim_start_matches(';').trim();
        if let Some(v) = l.strip_prefix("Archive created at ") {
            h.recorded_at = parse_zoned(v.trim(), host_offset);
        } else if let Some(v) = l.strip_prefix("dbname: ") {
            h.dbname = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("Dumped from database version: ") {
            h.server_version = Some(v.trim().to_string());
        }
    }
    h
}

/// `2024-12-08 07:36:01 UTC`; another zone abbreviation is read as the host's offset.
fn parse_zoned(v: &str, host_offset: FixedOffset) -> Option<DateTime<Utc>> {
    let (stamp, zone) = match v.rsplit_once(' ') {
        Some((s, z))
            if z.chars()
                .all(|c| c.is_ascii_alphabetic() || "+-0123456789".contains(c))
                && !z.contains(':') =>
        {
            (s, z)
        }
        _ => (v, ""),
    };
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S").ok()?;
    let off = match zone {
        "UTC" | "GMT" | "Z" => FixedOffset::east_opt(0)?,
        z if z.starts_with('+') || z.starts_with('-') => {
            DateTime::parse_from_str(&format!("2000-01-01 00:00:00 {z}"), "%Y-%m-%d %H:%M:%S %z")
                .ok()?
                .offset()
                .to_owned()
        }
        _ => host_offset,
    };
    Some(t.and_local_timezone(off).single()?.with_timezone(&Utc))
}

/// A custom-format archive written to a seekable file ends with the zero
/// length word that closes its last data block (5 zero bytes for the
/// default 4-byte integers): a missing one means the file was cut off.
pub fn custom_ends_cleanly(head: &[u8], tail: &[u8]) -> bool {
    let int_size = head.get(8).copied().unwrap_or(4) as usize;
    let n = int_size + 1;
    tail.len() >= n && tail[tail.len() - n..].iter().all(|b| *b == 0)
}

/// `+0200` -> offset.
pub fn parse_offset(s: &str) -> FixedOffset {
    DateTime::parse_from_str(
        &format!("2000-01-01 00:00:00 {}", s.trim()),
        "%Y-%m-%d %H:%M:%S %z",
    )
    .map(|d| d.offset().to_owned())
    .unwrap_or_else(|_| Utc.fix())
}

const HEAD_BYTES: usize = 4096;

/// The one finder of pg_restore on a backup's host (sh): sets `$PGR` to
/// PATH's, else the newest /usr/lib/postgresql/*/bin one; run it as
/// `"${PGR:-pg_restore}"`. Locally, `sandbox::pg_program` is the finder.
pub const REMOTE_PG_RESTORE: &str = "PGR=$(command -v pg_restore 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_restore 2>/dev/null | sort -V | tail -n 1)";

/// Bytes from `od -An -v -tx1` output.
fn from_od(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .filter_map(|w| u8::from_str_radix(w, 16).ok())
        .collect()
}

/// Reads one catalog on its host: lists, reads heads and tails, checks.
pub async fn read_catalog(
    spec: &CatalogSpec,
    runner: &dyn Runner,
    timeout: Duration,
) -> CatalogReport {
    let mut report = CatalogReport {
        name: spec.name().to_string(),
        host: spec.host.get_ref().clone(),
        path: spec.path.clone(),
        database: spec.database.get_ref().clone(),
        pattern: spec.pattern.clone(),
        files: Vec::new(),
        error: None,
    };
    match read_files(spec, runner, timeout).await {
        Ok(files) => report.files = files,
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

async fn run_sections(
    runner: &dyn Runner,
    body: &str,
    n: &str,
    timeout: Duration,
) -> Result<Vec<Section>, CatalogError> {
    let script = format!("{}{}", prelude(n), body);
    let out = runner
        .run(&script, timeout)
        .await
        .map_err(|why| CatalogError::Transport {
            host: runner.name().to_string(),
            why,
        })?;
    if out.timed_out {
        return Err(CatalogError::Transport {
            host: runner.name().to_string(),
            why: format!("catalog check timed out after {} s", timeout.as_secs()),
        });
    }
    Ok(sections(&out.stdout, n))
}

async fn read_files(
    spec: &CatalogSpec,
    runner: &dyn Runner,
    timeout: Duration,
) -> Result<Vec<BackupFile>, CatalogError> {
    read_dir(&spec.path, spec.pattern.as_deref(), None, runner, timeout).await
}

/// Lists and checks one backup file (or directory archive) on its host,
/// the same way as a catalog's files: format, header time, trailer. The
/// name pattern, when given, only reads the time from the name. Err when
/// the file does not exist or the host does not answer.
pub async fn check_file(
    path: &str,
    pattern: Option<&str>,
    runner: &dyn Runner,
    timeout: Duration,
) -> Result<BackupFile, CatalogError> {
    let trimmed = path.trim_end_matches('/');
    let (dir, name) = match trimmed.rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((d, n)) => (d, n),
        None => (".", trimmed),
    };
    let pattern = pattern.filter(|p| NamePattern::compile(p).is_ok_and(|c| c.matches(name)));
    let files = read_dir(dir, pattern, Some(name), runner, timeout).await?;
    files.into_iter().next().ok_or_else(|| CatalogError::List {
        host: runner.name().to_string(),
        path: path.to_string(),
        why: "no such file or directory".into(),
    })
}

async fn read_dir(
    path: &str,
    pattern: Option<&str>,
    only: Option<&str>,
    runner: &dyn Runner,
    timeout: Duration,
) -> Result<Vec<BackupFile>, CatalogError> {
    let pattern = pattern.map(NamePattern::compile).transpose()?;
    let n = nonce();
    let dir = path.trim_end_matches('/').to_string();
    let dir = if dir.is_empty() { "/".to_string() } else { dir };
    let q = shell_quote(&dir);
    let list = format!(
        "sec tz date +%z\nsec list find {q} -mindepth 1 -maxdepth 1 -printf '%y\\t%s\\t%T@\\t%f\\0'\n"
    );
    let secs = run_sections(runner, &list, &n, timeout).await?;
    let get = |secs: &[Section], name: &str| secs.iter().find(|s| s.name == name).cloned();
    let offset = get(&secs, "tz")
        .map(|s| parse_offset(&s.body))
        .unwrap_or_else(|| Utc.fix());
    let listing = get(&secs, "list").ok_or_else(|| CatalogError::List {
        host: runner.name().to_string(),
        path: dir.clone(),
        why: "no answer".into(),
    })?;
    if listing.rc != 0 {
        return Err(CatalogError::List {
            host: runner.name().to_string(),
            path: dir.clone(),
            why: listing.body.trim().to_string(),
        });
    }
    let mut listed: Vec<Listed> = parse_find(&listing.body)
        .into_iter()
        .filter(|l| matches!(l.kind, 'f' | 'd'))
        .filter(|l| only.is_none_or(|o| o == l.name))
        .filter(|l| pattern.as_ref().is_none_or(|p| p.matches(&l.name)))
        .collect();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    if listed.is_empty() {
        return Ok(Vec::new());
    }
    // Round 2: heads, tails, toc.dat of directories.
    let mut body = String::new();
    for (i, l) in listed.iter().enumerate() {
        let p = shell_quote(&format!("{dir}/{}", l.name));
        if l.kind == 'd' {
            body.push_str(&format!("sec 'toc {i}' test -f {p}/toc.dat\n"));
        } else if l.size > 0 {
            body.push_str(&format!(
                "sec 'head {i}' sh -c 'head -c {HEAD_BYTES} \"$1\" | od -An -v -tx1' _ {p}\n"
            ));
            body.push_str(&format!(
                "sec 'tail {i}' sh -c 'tail -c {HEAD_BYTES} \"$1\" | od -An -v -tx1' _ {p}\n"
            ));
        }
    }
    let secs2 = run_sections(runner, &body, &n, timeout).await?;
    let mut files: Vec<(Listed, DumpFormat, Vec<u8>, Vec<u8>)> = Vec::new();
    for (i, l) in listed.into_iter().enumerate() {
        let head = get(&secs2, &format!("head {i}"))
            .map(|s| from_od(&s.body))
            .unwrap_or_default();
        let tail = get(&secs2, &format!("tail {i}"))
            .map(|s| from_od(&s.body))
            .unwrap_or_default();
        let has_toc = get(&secs2, &format!("toc {i}")).is_some_and(|s| s.rc == 0);
        let f = detect_format(l.kind, l.size, &head, has_toc);
        files.push((l, f, head, tail));
    }
    // Round 3: pg_restore --list for archives, gzip -t and the decompressed ends for gzip.
    let mut body = format!("{REMOTE_PG_RESTORE}\n");
    let mut any = false;
    for (i, (l, f, _, _)) in files.iter().enumerate() {
        let p = shell_quote(&format!("{dir}/{}", l.name));
        match f {
            DumpFormat::Custom | DumpFormat::Directory | DumpFormat::Tar => {
                any = true;
                body.push_str(&format!(
                    "if [ -n \"$PGR\" ]; then sec 'list {i}' sh -c 'out=$(TZ=UTC \"$0\" --list \"$1\" 2>&1); rc=$?; printf \"%s\\n\" \"$out\" | head -n 20; exit $rc' \"$PGR\" {p}; fi\n"
                ));
            }
            DumpFormat::PlainGzip => {
                any = true;
                body.push_str(&format!("sec 'gzt {i}' gzip -t {p}\n"));
                body.push_str(&format!("sec 'gzhead {i}' sh -c 'gzip -dc \"$1\" 2>/dev/null | head -c {HEAD_BYTES} | od -An -v -tx1' _ {p}\n"));
                body.push_str(&format!("sec 'gztail {i}' sh -c 'gzip -dc \"$1\" 2>/dev/null | tail -c {HEAD_BYTES} | od -An -v -tx1' _ {p}\n"));
            }
            _ => {}
        }
    }
    let secs3 = if any {
        run_sections(runner, &body, &n, timeout).await?
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    for (i, (l, format, head, tail)) in files.into_iter().enumerate() {
        let mtime = DateTime::from_timestamp(l.mtime as i64, 0).unwrap_or_default();
        let name_time = pattern
            .as_ref()
            .filter(|p| p.has_time())
            .and_then(|p| p.time(&l.name, offset));
        let mut info = HeaderInfo::default();
        let check: Result<(), String> = match format {
            DumpFormat::Empty => Err("empty file (0 bytes)".into()),
            DumpFormat::Unknown if l.kind == 'd' => {
                Err("a directory without toc.dat: not a directory-format dump".into())
            }
            DumpFormat::Unknown => Err("unknown format: not SQL text, PGDMP, tar or gzip".into()),
            DumpFormat::Plain => {
                info = plain_header(&String::from_utf8_lossy(&head), offset);
                check_plain(
                    &String::from_utf8_lossy(&head),
                    &String::from_utf8_lossy(&tail),
                )
            }
            DumpFormat::PlainGzip => match get(&secs3, &format!("gzt {i}")) {
                None => Err("gzip check did not answer".into()),
                Some(s) if s.rc != 0 => Err(format!(
                    "gzip -t failed: {}",
                    s.body
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .trim()
                )),
                Some(_) => {
                    let h = String::from_utf8_lossy(
                        &get(&secs3, &format!("gzhead {i}"))
                            .map(|s| from_od(&s.body))
                            .unwrap_or_default(),
                    )
                    .into_owned();
                    let t = String::from_utf8_lossy(
                        &get(&secs3, &format!("gztail {i}"))
                            .map(|s| from_od(&s.body))
                            .unwrap_or_default(),
                    )
                    .into_owned();
                    info = plain_header(&h, offset);
                    check_plain(&h, &t)
                }
            },
            DumpFormat::Custom | DumpFormat::Directory | DumpFormat::Tar => {
                match get(&secs3, &format!("list {i}")) {
                    None => Err(format!(
                        "not verified: pg_restore not found on host '{}'",
                        runner.name()
                    )),
                    Some(s) if s.rc != 0 => Err(format!(
                        "pg_restore --list failed: {}",
                        s.body
                            .lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .unwrap_or("")
                            .trim()
                    )),
                    Some(s) => {
                        info = restore_list_header(&s.body, offset);
                        if format == DumpFormat::Custom && !custom_ends_cleanly(&head, &tail) {
                            Err("truncated: the archive does not end with its end-of-data marker (pg_restore --list reads only the table of contents)".into())
                        } else {
                            Ok(())
                        }
                    }
                }
            }
        };
        let (taken, source) = match (info.recorded_at, name_time) {
            (Some(t), _) => (t, TimeSource::Header),
            (None, Some(t)) => (t, TimeSource::Name),
            (None, None) => (mtime, TimeSource::Mtime),
        };
        out.push(BackupFile {
            path: format!("{dir}/{}", l.name),
            name: l.name,
            size: l.size,
            taken_at: rfc(taken),
            time_source: source,
            mtime: rfc(mtime),
            name_time: name_time.map(rfc),
            recorded_at: info.recorded_at.map(rfc),
            format,
            ok: check.is_ok(),
            problem: check.err(),
            dumped_db: info.dbname,
            server_version: info.server_version,
        });
    }
    out.sort_by(|a, b| b.taken_at.cmp(&a.taken_at).then(b.name.cmp(&a.name)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[rstest]
    #[case('f', 0, b"" as &[u8], false, DumpFormat::Empty)]
    #[case('f', 10, b"PGDMP\x01\x0e\x00\x04\x08", false, DumpFormat::Custom)]
    #[case('f', 10, b"\x1f\x8b\x08\x00", false, DumpFormat::PlainGzip)]
    #[case(
        'f',
        10,
        b"--\n-- PostgreSQL database dump\n",
        false,
        DumpFormat::Plain
    )]
    #[case('f', 10, b"\x7fELF", false, DumpFormat::Unknown)]
    #[case('d', 4096, b"", true, DumpFormat::Directory)]
    #[case('d', 4096, b"", false, DumpFormat::Unknown)]
    fn formats(
        #[case] kind: char,
        #[case] size: u64,
        #[case] head: &[u8],
        #[case] toc: bool,
        #[case] want: DumpFormat,
    ) {
        assert_eq!(detect_format(kind, size, head, toc), want);
    }

    #[test]
    fn plain_checks_and_header_time() {
        let head = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)\n-- Dumped by pg_dump version 15.18\n\n-- Started on 2024-12-08 07:36:01 UTC\n\nSET x = 0;\n";
        let tail = "\\.\n\n\n-- Completed on 2024-12-08 07:36:09 UTC\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";
        assert!(check_plain(head, tail).is_ok());
        let e = check_plain(head, "INSERT INTO x VALUES (1").unwrap_err();
        assert!(e.starts_with("truncated"), "{e}");
        assert!(
            check_plain("hello", tail)
                .unwrap_err()
                .contains("no pg_dump header")
        );
        let h = plain_header(head, utc());
        assert_eq!(rfc(h.recorded_at.unwrap()), "2024-12-08T07:36:01Z");
        assert!(h.server_version.unwrap().starts_with("15.18"));
        let h = plain_header(
            "-- Started on 2024-12-08 09:36:01 CET\n",
            FixedOffset::east_opt(3600).unwrap(),
        );
        assert_eq!(rfc(h.recorded_at.unwrap()), "2024-12-08T08:36:01Z");
    }

    #[test]
    fn restore_list_header_fields() {
        let t = ";\n; Archive created at 2026-11-23 10:38:09 UTC\n;     dbname: app\n;     TOC Entries: 6\n;     Compression: -1\n;     Dump Version: 1.14-0\n;     Format: CUSTOM\n;     Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)\n;\n";
        let h = restore_list_header(t, utc());
        assert_eq!(rfc(h.recorded_at.unwrap()), "2026-11-23T10:38:09Z");
        assert_eq!(h.dbname.as_deref(), Some("app"));
    }

    #[test]
    fn custom_trailer() {
        let head = b"PGDMP\x01\x0e\x00\x04\x08\x01";
        assert!(custom_ends_cleanly(
            head,
            b"\x29\xe8\x39\x00\x00\x00\x00\x00"
        ));
        assert!(!custom_ends_cleanly(
            head,
            b"\xf3\xf6\xe6\xed\xcd\xdb\x9b\xb7"
        ));
    }

    #[test]
    fn find_records() {
        let l = parse_find("f\t12\t1733643361.5\ta b.sql\0d\t4096\t1733643000.0\tdir\0");
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].name, "a b.sql");
        assert_eq!(l[1].kind, 'd');
    }

    #[test]
    fn newest_ok_before() {
        let f = |name: &str, t: &str, ok: bool| BackupFile {
            path: name.into(),
            name: name.into(),
            size: 1,
            taken_at: t.into(),
            time_source: TimeSource::Name,
            mtime: t.into(),
            name_time: None,
            recorded_at: None,
            format: DumpFormat::Plain,
            ok,
            problem: None,
            dumped_db: None,
            server_version: None,
        };
        let r = CatalogReport {
            name: "n".into(),
            host: "h".into(),
            path: "/b".into(),
            database: "main".into(),
            pattern: None,
            files: vec![
                f("c", "2024-12-10T13:00:00Z", true),
                f("b", "2024-12-10T12:00:00Z", false),
                f("a", "2024-12-08T07:36:01Z", true),
            ],
            error: None,
        };
        let t = DateTime::parse_from_rfc3339("2024-12-10T12:42:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(r.newest_ok_before(t).unwrap().name, "a");
    }
}
