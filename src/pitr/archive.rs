//! An archive on its host: the listing (base backups from their own label,
//! manifest and history file; WAL range and gaps), the pg_waldump scan for
//! the destructive transaction, the base backup choice. Never writes into the archive.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::PitrError;
use super::wal::{self, BaseBackup, DEFAULT_SEGMENT_SIZE, Lsn, SegName, WalRange};
use super::waldump::{self, Damaged, Finding, Target};
use crate::inventory::{ArchiveKind, ArchiveSpec};
use crate::transport::{ExecOptions, Host, shell_quote};

/// Limit of the listing command.
const LIST_TIMEOUT: Duration = Duration::from_secs(300);
/// Limit of one pg_waldump scan.
const SCAN_TIMEOUT: Duration = Duration::from_secs(3600);
/// pg_waldump output kept (already filtered on the host to the records that matter).
const SCAN_CAP: usize = 256 << 20;

/// What an archive holds.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveStatus {
    pub name: String,
    pub host: String,
    pub kind: ArchiveKind,
    pub wal_dir: String,
    pub base_dir: String,
    pub segment_size: u64,
    /// Oldest first (by start LSN).
    pub backups: Vec<BaseBackup>,
    pub wal: Vec<WalRange>,
    /// Segment file names present (sorted).
    #[serde(skip)]
    pub segments: Vec<String>,
    /// Things that look wrong (unreadable backups, odd names), for the operator.
    pub problems: Vec<String>,
}

impl ArchiveStatus {
    /// One line per backup and WAL range, for `status` and the journal.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.backups {
            out.push(format!(
                "base backup '{}' ({}): start {} at {}, end {} at {}",
                b.dir.escape_debug(),
                b.format,
                b.start_lsn,
                b.start_time
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "?".into()),
                b.stop_lsn
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                b.stop_time
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "?".into()),
            ));
        }
        for r in &self.wal {
            out.push(format!(
                "WAL timeline {}: {} .. {} ({} segments){}",
                r.timeline,
                r.first,
                r.last,
                r.segments,
                if r.gaps.is_empty() {
                    ", no gaps".to_string()
                } else {
                    format!(
                        ", GAPS: {}",
                        r.gaps
                            .iter()
                            .map(|(a, b)| if a == b {
                                a.clone()
                            } else {
                                format!("{a}..{b}")
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ));
        }
        if self.backups.is_empty() {
            out.push("no base backup found".into());
        }
        out.extend(self.problems.iter().map(|p| format!("problem: {p}")));
        out
    }
}

fn paths(spec: &ArchiveSpec) -> Result<(String, String), PitrError> {
    match (spec.kind, &spec.wal_dir, &spec.base_dir) {
        (ArchiveKind::WalDir, Some(w), Some(b)) => Ok((w.clone(), b.clone())),
        (ArchiveKind::WalDir, _, _) => Err(PitrError::Archive(
            spec.name().into(),
            "a wal-dir archive needs 'wal_dir' and 'base_dir'".into(),
        )),
        (ArchiveKind::Pgbackrest, _, _) => Err(needs_spec(spec.name())),
    }
}

/// The listing script: WAL file names with sizes, history files, and per
/// base-backup directory its label, version and manifest WAL range.
fn list_script(wal_dir: &str, base_dir: &str) -> String {
    format!(
        r##"cd -- {w} || exit 3
echo '#WAL'
find . -maxdepth 1 -type f -printf '%s %f\n'
for f in ./*.backup; do [ -f "$f" ] || continue; echo "#HIST"; head -c 4096 -- "$f"; echo; done
cd -- {b} || exit 4
for d in ./*/; do
  d=${{d%/}}; d=${{d#./}}
  echo "#BACKUP"; printf '%s\n' "$d"
  if [ -f "$d/backup_label" ]; then echo '#FORMAT plain'; head -c 4096 -- "$d/backup_label"; echo; echo "#VERSION $(head -c 16 -- "$d/PG_VERSION" 2>/dev/null)"
  elif [ -f "$d/base.tar" ]; then echo '#FORMAT tar'; tar --occurrence=1 -xOf "$d/base.tar" backup_label 2>/dev/null | head -c 4096; echo; echo "#VERSION $(tar --occurrence=1 -xOf "$d/base.tar" PG_VERSION 2>/dev/null | head -c 16)"
  elif [ -f "$d/base.tar.gz" ]; then echo '#FORMAT tar.gz'; tar --occurrence=1 -xzOf "$d/base.tar.gz" backup_label 2>/dev/null | head -c 4096; echo; echo "#VERSION $(tar --occurrence=1 -xzOf "$d/base.tar.gz" PG_VERSION 2>/dev/null | head -c 16)"
  else echo '#FORMAT none'; fi
  if [ -f "$d/backup_manifest" ]; then echo '#MANIFEST'; grep -h -- '"End-LSN"' "$d/backup_manifest" | head -n 8; fi
  echo '#END'
done
"##,
        w = shell_quote(wal_dir),
        b = shell_quote(base_dir)
    )
}

/// Parses the listing's output (hostile text: what does not parse is a problem, not a fact).
pub fn parse_listing(
    name: &str,
    host: &str,
    wal_dir: &str,
    base_dir: &str,
    text: &str,
) -> ArchiveStatus {
    let mut problems = Vec::new();
    let mut files: Vec<(u64, String)> = Vec::new();
    let mut hist: Vec<wal::LabelFields> = Vec::new();
    let mut backups_raw: Vec<(String, String, String, String, String)> = Vec::new();
    let mut section = "";
    let mut buf = String::new();
    let mut cur: Option<(String, String, String, String, String)> = None;
    let flush_hist = |buf: &mut String, hist: &mut Vec<wal::LabelFields>| {
        if !buf.is_empty() {
            hist.push(wal::parse_label(buf));
            buf.clear();
        }
    };
    for line in text.lines() {
        if line == "#WAL" {
            section = "wal";
            continue;
        }
        if line == "#HIST" {
            flush_hist(&mut buf, &mut hist);
            section = "hist";
            continue;
        }
        if line == "#BACKUP" {
            flush_hist(&mut buf, &mut hist);
            section = "backup-name";
            cur = Some(Default::default());
            continue;
        }
        match section {
            "wal" => {
                if let Some((size, name)) = line.split_once(' ')
                    && let Ok(size) = size.parse()
                {
                    files.push((size, name.to_string()));
                }
            }
            "hist" => {
                buf.push_str(line);
                buf.push('\n');
            }
            "backup-name" => {
                if let Some(c) = cur.as_mut() {
                    c.0 = line.to_string();
                }
                section = "backup";
            }
            "backup" => {
                let Some(c) = cur.as_mut() else { continue };
                if let Some(f) = line.strip_prefix("#FORMAT ") {
                    c.1 = f.to_string();
                } else if let Some(v) = line.strip_prefix("#VERSION ") {
                    c.3 = v.trim().to_string();
                } else if line == "#MANIFEST" {
                    c.4.push_str("#M\n");
                } else if line == "#END" {
                    if let Some(done) = cur.take() {
                        backups_raw.push(done);
                    }
                    section = "";
                } else if c.4.is_empty() {
                    c.2.push_str(line);
                    c.2.push('\n');
                } else {
                    c.4.push_str(line);
                    c.4.push('\n');
                }
            }
            _ => {}
        }
    }
    flush_hist(&mut buf, &mut hist);

    // The segment size: the size most full segment files have.
    let mut sizes: BTreeMap<u64, usize> = BTreeMap::new();
    for (size, n) in &files {
        if n.len() == 24 {
            *sizes.entry(*size).or_default() += 1;
        }
    }
    let seg_size = sizes
        .iter()
        .max_by_key(|(_, c)| **c)
        .map(|(s, _)| *s)
        .filter(|s| s.is_power_of_two() && (1 << 20..=1 << 30).contains(s))
        .unwrap_or(DEFAULT_SEGMENT_SIZE);
    let mut segments: Vec<String> = Vec::new();
    for (size, n) in &files {
        if SegName::parse(n, seg_size).is_some() {
            if *size == seg_size {
                segments.push(n.clone());
            } else {
                problems.push(format!(
                    "WAL segment '{}' has {size} bytes, not {seg_size}: treated as missing",
                    n.escape_debug()
                ));
            }
        }
    }
    segments.sort();

    let mut backups = Vec::new();
    for (dir, format, label, version, manifest) in backups_raw {
        let f = wal::parse_label(&label);
        let Some(start) = f.start_lsn else {
            problems.push(format!(
                "'{}' in the base directory is not a base backup (no readable backup_label): skipped",
                dir.escape_debug()
            ));
            continue;
        };
        let timeline = f.timeline.unwrap_or(1);
        // The history file archived at the end of this very backup (same start and timeline).
        let h = hist
            .iter()
            .find(|h| h.start_lsn == Some(start) && h.timeline.unwrap_or(1) == timeline);
        let stop_lsn = wal::manifest_end_lsn(&manifest).or(h.and_then(|h| h.stop_lsn));
        let version =
            (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())).then_some(version);
        backups.push(BaseBackup {
            dir,
            format,
            label: f.label,
            timeline,
            start_lsn: start,
            stop_lsn,
            start_time: f.start_time,
            stop_time: h.and_then(|h| h.stop_time),
            pg_version: version,
        });
    }
    backups.sort_by_key(|b| (b.start_lsn, b.dir.clone()));
    let wal = wal::wal_ranges(&segments, seg_size);
    ArchiveStatus {
        name: name.to_string(),
        host: host.to_string(),
        kind: ArchiveKind::WalDir,
        wal_dir: wal_dir.to_string(),
        base_dir: base_dir.to_string(),
        segment_size: seg_size,
        backups,
        wal,
        segments,
        problems,
    }
}

/// Lists an archive on its host.
pub async fn list(h: &Host, spec: &ArchiveSpec) -> Result<ArchiveStatus, PitrError> {
    if spec.kind == ArchiveKind::Pgbackrest {
        return list_pgbackrest(h, spec).await;
    }
    let (wal_dir, base_dir) = paths(spec)?;
    let script = list_script(&wal_dir, &base_dir);
    let r = h
        .exec(
            &script,
            h.options().timeout(LIST_TIMEOUT).output_cap(16 << 20),
        )
        .await
        .map_err(|source| PitrError::Transport {
            host: h.name().into(),
            source: Box::new(source),
        })?;
    if !r.success() {
        let why = match r.exit {
            Some(3) => format!("cannot enter wal_dir '{wal_dir}'"),
            Some(4) => format!("cannot enter base_dir '{base_dir}'"),
            _ => "listing".to_string(),
        };
        return Err(PitrError::Command {
            archive: spec.name().into(),
            host: h.name().into(),
            what: why,
            status: r.outcome(),
            stderr: r.stderr.trim().to_string(),
        });
    }
    if r.stdout_truncated {
        return Err(PitrError::Archive(
            spec.name().into(),
            "the listing is larger than 16 MiB: too many files in the archive directories".into(),
        ));
    }
    Ok(parse_listing(
        spec.name(),
        h.name(),
        &wal_dir,
        &base_dir,
        &r.stdout,
    ))
}

fn needs_spec(archive: &str) -> PitrError {
    PitrError::Archive(
        archive.into(),
        "kind 'pgbackrest': its WAL is read through the repository (config and stanza): use find_target_in".into(),
    )
}

/// Lists a pgBackRest stanza: `info --output=json` for the backups and the
/// archive's min/max, `repo-ls --recurse` of the archive for the gaps.
async fn list_pgbackrest(h: &Host, spec: &ArchiveSpec) -> Result<ArchiveStatus, PitrError> {
    let (Some(config), Some(stanza)) = (&spec.config, &spec.stanza) else {
        return Err(PitrError::Archive(
            spec.name().into(),
            "a pgbackrest archive needs 'config' and 'stanza'".into(),
        ));
    };
    let user = spec.os_user.clone().unwrap_or_else(|| "postgres".into());
    let base = format!(
        "pgbackrest --config={} --stanza={} --log-level-console=error",
        shell_quote(config),
        shell_quote(stanza)
    );
    let script = format!(
        "{base} info --output=json && echo && echo '#REPO' && {base} repo-ls --recurse {}",
        shell_quote(&format!("archive/{stanza}"))
    );
    let r = h
        .exec(
            &super::as_owner(&user, &script),
            h.options().timeout(LIST_TIMEOUT).output_cap(16 << 20),
        )
        .await
        .map_err(|source| PitrError::Transport {
            host: h.name().into(),
            source: Box::new(source),
        })?;
    if !r.success() {
        return Err(PitrError::Command {
            archive: spec.name().into(),
            host: h.name().into(),
            what: "pgbackrest info".into(),
            status: r.outcome(),
            stderr: format!("{}{}", r.stderr.trim(), r.stdout.trim()),
        });
    }
    parse_pgbackrest(spec.name(), h.name(), stanza, &r.stdout)
}

/// Parses `pgbackrest info --output=json` + `#REPO` + `repo-ls --recurse archive/<stanza>`.
pub fn parse_pgbackrest(
    name: &str,
    host: &str,
    stanza: &str,
    text: &str,
) -> Result<ArchiveStatus, PitrError> {
    let (json, repo) = text.split_once("\n#REPO\n").unwrap_or((text, ""));
    let v: serde_json::Value = serde_json::from_str(json.trim()).map_err(|e| {
        PitrError::Archive(name.into(), format!("pgbackrest info is not JSON: {e}"))
    })?;
    let st = v
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"].as_str() == Some(stanza)))
        .ok_or_else(|| {
            PitrError::Archive(
                name.into(),
                format!("pgbackrest info does not list stanza '{stanza}'"),
            )
        })?;
    let mut problems = Vec::new();
    if st["status"]["code"].as_i64() != Some(0) {
        problems.push(format!(
            "pgbackrest says: {}",
            st["status"]["message"].as_str().unwrap_or("?")
        ));
    }
    let versions: BTreeMap<i64, String> = st["db"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| Some((d["id"].as_i64()?, d["version"].as_str()?.to_string())))
        .collect();
    let when = |x: &serde_json::Value| {
        x.as_i64()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
    };
    let mut backups = Vec::new();
    for b in st["backup"].as_array().into_iter().flatten() {
        let label = b["label"].as_str().unwrap_or("?").to_string();
        if b["error"].as_bool() == Some(true) {
            problems.push(format!(
                "backup '{label}' has errors (pgbackrest verify it)"
            ));
        }
        let Some(start) = b["lsn"]["start"].as_str().and_then(Lsn::parse) else {
            problems.push(format!("backup '{label}' has no start LSN: skipped"));
            continue;
        };
        let timeline = b["archive"]["start"]
            .as_str()
            .and_then(|s| SegName::parse(s, DEFAULT_SEGMENT_SIZE))
            .map(|s| s.timeline)
            .unwrap_or(1);
        backups.push(BaseBackup {
            dir: label,
            format: format!("pgbackrest {}", b["type"].as_str().unwrap_or("?")),
            label: b["type"].as_str().map(str::to_string),
            timeline,
            start_lsn: start,
            stop_lsn: b["lsn"]["stop"].as_str().and_then(Lsn::parse),
            start_time: when(&b["timestamp"]["start"]),
            stop_time: when(&b["timestamp"]["stop"]),
            pg_version: b["database"]["id"]
                .as_i64()
                .and_then(|id| versions.get(&id).cloned()),
        });
    }
    backups.sort_by_key(|b| (b.start_lsn, b.dir.clone()));
    // Segment names from the repository listing (`15-1/0000000100000000/<seg>-<sha1>.gz`).
    let mut segments: Vec<String> = repo
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .filter(|f| f.len() > 25 && f.as_bytes().get(24) == Some(&b'-'))
        .map(|f| f[..24].to_string())
        .filter(|f| SegName::parse(f, DEFAULT_SEGMENT_SIZE).is_some())
        .collect();
    segments.sort();
    segments.dedup();
    Ok(ArchiveStatus {
        name: name.into(),
        host: host.into(),
        kind: ArchiveKind::Pgbackrest,
        wal_dir: format!("pgbackrest stanza '{stanza}'"),
        base_dir: format!("pgbackrest stanza '{stanza}'"),
        segment_size: DEFAULT_SEGMENT_SIZE,
        wal: wal::wal_ranges(&segments, DEFAULT_SEGMENT_SIZE),
        backups,
        segments,
        problems,
    })
}

/// The scan's window and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct TargetSearch {
    pub finding: Finding,
    pub target: Target,
    /// Where the scan started (a base backup's start).
    pub from: Lsn,
    pub records: u64,
}

/// The base backup a scan starts from: the newest that ended before
/// `damaged.healthy_at`, else the oldest.
pub(super) fn scan_start<'a>(
    status: &'a ArchiveStatus,
    damaged: &Damaged,
) -> Result<&'a BaseBackup, PitrError> {
    damaged
        .healthy_at
        .and_then(|t| {
            status
                .backups
                .iter()
                .filter(|b| {
                    b.stop_time
                        .is_some_and(|s| s + chrono::Duration::seconds(1) <= t)
                })
                .max_by_key(|b| b.start_lsn)
        })
        .or_else(|| status.backups.first())
        .ok_or_else(|| {
            PitrError::Archive(
                status.name.clone(),
                "no base backup in the base directory: nothing to recover from".into(),
            )
        })
}

/// [`find_target`] for any kind of archive: a pgbackrest repository's WAL
/// of the window is fetched first (its spec says how).
pub async fn find_target_in(
    h: &Host,
    spec: &ArchiveSpec,
    status: &ArchiveStatus,
    damaged: &Damaged,
) -> Result<TargetSearch, PitrError> {
    match status.kind {
        ArchiveKind::WalDir => find_target(h, status, damaged).await,
        ArchiveKind::Pgbackrest => super::pgbackrest::find_target(h, spec, status, damaged).await,
    }
}

/// Reads the archived WAL with pg_waldump on the archive's host, from the
/// start of the newest base backup that ended before `damaged.healthy_at`
/// (else the oldest) over the contiguous run of segments, and returns the
/// first destructive transaction on the damaged relations. A gap before
/// the destruction is found is an error naming the missing segments.
pub async fn find_target(
    h: &Host,
    status: &ArchiveStatus,
    damaged: &Damaged,
) -> Result<TargetSearch, PitrError> {
    if status.kind != ArchiveKind::WalDir {
        return Err(needs_spec(&status.name));
    }
    let seg = status.segment_size;
    let start_backup = scan_start(status, damaged)?;
    let tli = start_backup.timeline;
    let present = wal::segments_of(&status.segments, tli, seg);
    let first = start_backup.start_lsn.segno(seg);
    let last_present = present.iter().next_back().copied().unwrap_or(first);
    // The contiguous run from the backup's first segment.
    let mut end = first;
    while present.contains(&end) {
        end += 1;
    }
    let gap = (end <= last_present || !present.contains(&first)).then(|| {
        let to = present.range(end..).next().map(|n| n - 1).unwrap_or(end);
        (end, to)
    });
    let name = |n: u64| {
        SegName {
            timeline: tli,
            segno: n,
        }
        .file_name(seg)
    };
    if end == first {
        return Err(PitrError::WalGap {
            archive: status.name.clone(),
            from: name(first),
            to: name(gap.map(|g| g.1).unwrap_or(first)),
            after: format!(
                "the start of base backup '{}'",
                start_backup.dir.escape_debug()
            ),
            why: "the base backup cannot even be made consistent".into(),
        });
    }
    let cmd = format!(
        "PGW=$(command -v pg_waldump 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_waldump 2>/dev/null | sort -V | tail -n 1); \
\"${{PGW:-pg_waldump}}\" -p {dir} -t {tli} -s {from} -e {to} | grep -E '^rmgr: (Transaction|Database|Heap) ' | grep -E 'desc: (COMMIT|ABORT|DELETE|TRUNCATE|DROP)|rel [0-9]+/0/1262 '",
        dir = shell_quote(&status.wal_dir),
        from = start_backup.start_lsn,
        to = Lsn(end * seg),
    );
    let r = h
        .exec(
            &cmd,
            ExecOptions::default()
                .timeout(SCAN_TIMEOUT)
                .output_cap(SCAN_CAP)
                .stderr_cap(64 << 10),
        )
        .await
        .map_err(|source| PitrError::Transport {
            host: h.name().into(),
            source: Box::new(source),
        })?;
    if r.stdout_truncated {
        return Err(PitrError::Archive(
            status.name.clone(),
            format!(
                "pg_waldump gave more than {} MiB of relevant records: narrow the window (a newer base backup or a later healthy time)",
                SCAN_CAP >> 20
            ),
        ));
    }
    // grep exits 1 when nothing matched: an empty scan, judged below;
    // pg_waldump's own failure shows on stderr (its status is lost in the pipe).
    if r.timed_out || r.exit.is_some_and(|c| c > 1) || r.stderr.contains("pg_waldump: error") {
        return Err(PitrError::Command {
            archive: status.name.clone(),
            host: h.name().into(),
            what: "pg_waldump".into(),
            status: r.outcome(),
            stderr: r.stderr.trim().to_string(),
        });
    }
    let s = waldump::scan(&r.stdout, damaged);
    match s.finding {
        Some(finding) => Ok(TargetSearch {
            target: finding.target(),
            finding,
            from: start_backup.start_lsn,
            records: s.records,
        }),
        None => match gap {
            Some((a, b)) => Err(PitrError::WalGap {
                archive: status.name.clone(),
                from: name(a),
                to: name(b),
                after: name(a.saturating_sub(1)),
                why: format!(
                    "no destructive transaction was found in the {} records before it, so the target may lie in the missing WAL",
                    s.records
                ),
            }),
            None => Err(PitrError::NotFound {
                archive: status.name.clone(),
                records: s.records,
                last: s
                    .last_commit
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| name(end - 1)),
            }),
        },
    }
}

/// The base backup recovery starts from, and why the others were refused.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub backup: BaseBackup,
    pub target: Target,
    /// `(backup dir, reason)` of every backup not chosen.
    pub refused: Vec<(String, String)>,
}

/// Picks the newest base backup that ENDED before the target, refusing the
/// others with the reason, and checks that the WAL from its start to the
/// target is all in the archive.
pub fn plan(status: &ArchiveStatus, target: &Target) -> Result<Plan, PitrError> {
    let mut refused = Vec::new();
    let mut ok: Vec<&BaseBackup> = Vec::new();
    for b in &status.backups {
        let why = match (target, b.stop_lsn, b.stop_time) {
            (_, None, _) if matches!(target, Target::Xid { .. }) => Some(
                "its end (stop LSN) is unknown: no backup_manifest and no archived history file"
                    .to_string(),
            ),
            (
                Target::Xid {
                    commit_lsn: Some(t),
                    ..
                },
                Some(stop),
                _,
            ) if stop >= *t => Some(format!(
                "it ended at {stop}, after the target's commit record at {t}: it already holds the damage"
            )),
            (Target::Lsn { lsn }, Some(stop), _) if stop >= *lsn => Some(format!(
                "it ended at {stop}, after the target {lsn}: it already holds the damage"
            )),
            (Target::Lsn { .. }, None, _) => Some(
                "its end (stop LSN) is unknown: no backup_manifest and no archived history file"
                    .to_string(),
            ),
            (
                Target::Xid {
                    commit_lsn: None, ..
                },
                _,
                _,
            ) => Some(
                "the target's commit position is unknown: give a target found in the WAL"
                    .to_string(),
            ),
            (Target::Time { .. }, _, None) => {
                Some("its end time is unknown (no archived history file)".to_string())
            }
            // Stop times have whole seconds: the real end lies anywhere in
            // [stop, stop + 1 s), so a backup "ending" in the target's second is refused.
            (Target::Time { at }, _, Some(stop)) if stop + chrono::Duration::seconds(1) > *at => {
                Some(format!(
                    "it ended at {} (whole seconds), not before the target {}: it may already hold the damage",
                    stop.to_rfc3339(),
                    at.to_rfc3339()
                ))
            }
            _ => None,
        };
        match why {
            Some(w) => refused.push((b.dir.clone(), w)),
            None => ok.push(b),
        }
    }
    let Some(best) = ok.into_iter().max_by_key(|b| b.start_lsn) else {
        return Err(PitrError::NoBaseBackup {
            archive: status.name.clone(),
            target: target.describe(),
            reasons: if refused.is_empty() {
                "there is no base backup".into()
            } else {
                refused
                    .iter()
                    .map(|(d, w)| format!("'{}': {w}", d.escape_debug()))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        });
    };
    // The WAL from the backup's start to the target must all be there.
    let seg = status.segment_size;
    let present = wal::segments_of(&status.segments, best.timeline, seg);
    let first = best.start_lsn.segno(seg);
    let last = match target {
        Target::Xid {
            commit_lsn: Some(l),
            ..
        }
        | Target::Lsn { lsn: l } => l.segno(seg),
        _ => present.iter().next_back().copied().unwrap_or(first),
    };
    if let Some((a, b)) = wal::gaps(&present, first, last).first() {
        let name = |n: u64| {
            SegName {
                timeline: best.timeline,
                segno: n,
            }
            .file_name(seg)
        };
        return Err(PitrError::WalGap {
            archive: status.name.clone(),
            from: name(*a),
            to: name(*b),
            after: format!("the start of base backup '{}'", best.dir.escape_debug()),
            why: "recovery to the target needs every segment in between".into(),
        });
    }
    Ok(Plan {
        backup: best.clone(),
        target: target.clone(),
        refused,
    })
}

/// The backup's end, for the operator.
pub fn ended(b: &BaseBackup) -> String {
    match (b.stop_lsn, b.stop_time) {
        (Some(l), Some(t)) => format!("{l} at {}", t.to_rfc3339()),
        (Some(l), None) => l.to_string(),
        (None, Some(t)) => t.to_rfc3339(),
        (None, None) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
        wal::parse_pg_time(s).unwrap_or_default()
    }

    fn listing() -> String {
        // The shape the listing script prints, with a hostile entry.
        "#WAL\n16777216 000000010000000000000001\n16777216 000000010000000000000002\n342 000000010000000000000002.00000028.backup\n16777216 000000010000000000000003\n16777216 000000010000000000000005\n100 000000010000000000000006\n\
#HIST\nSTART WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\nSTART TIME: 2026-12-06 03:21:46 UTC\nSTART TIMELINE: 1\nSTOP TIME: 2026-12-06 03:21:46 UTC\n\n\
#BACKUP\nb1\n#FORMAT tar\nSTART WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIME: 2026-12-06 03:21:46 UTC\nLABEL: nightly\nSTART TIMELINE: 1\n\n#VERSION 15\n#MANIFEST\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n#END\n\
#BACKUP\nnot a backup\n#FORMAT none\n#END\n\
#BACKUP\nlate\n#FORMAT plain\nSTART WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nSTART TIMELINE: 1\n\n#VERSION 15\n#MANIFEST\n\"End-LSN\": \"0/5000100\"\n#END\n".to_string()
    }

    #[test]
    fn listing_is_parsed_and_judged() {
        let s = parse_listing("arch", "db", "/w", "/b", &listing());
        assert_eq!(s.segment_size, 16 << 20);
        assert_eq!(s.backups.len(), 2);
        let b1 = &s.backups[0];
        assert_eq!(b1.dir, "b1");
        assert_eq!(b1.stop_lsn, Lsn::parse("0/2000100"));
        assert_eq!(b1.stop_time, Some(t("2026-12-06 03:21:46 UTC")));
        assert_eq!(b1.pg_version.as_deref(), Some("15"));
        assert_eq!(s.backups[1].stop_time, None);
        assert!(
            s.problems.iter().any(|p| p.contains("not a base backup")),
            "{:?}",
            s.problems
        );
        assert!(
            s.problems.iter().any(|p| p.contains("has 100 bytes")),
            "{:?}",
            s.problems
        );
        assert_eq!(
            s.wal[0].gaps,
            vec![(
                "000000010000000000000004".to_string(),
                "000000010000000000000004".to_string()
            )]
        );
        let lines = s.lines().join("\n");
        assert!(lines.contains("GAPS: 000000010000000000000004"), "{lines}");
    }

    #[test]
    fn pgbackrest_info_is_parsed_as_data() {
        // Captured from pgbackrest 2.45 info --output=json, plus repo-ls.
        let info = r#"[{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000002","min":"000000010000000000000001"}],"backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":22992373,"repository":{"delta":3043375,"size":3043375},"size":22992373},"label":"20261206-041011F","lsn":{"start":"0/2000028","stop":"0/2000100"},"prior":null,"reference":null,"timestamp":{"start":1796530211,"stop":1796530220},"type":"full"},{"label":"broken","lsn":{"start":"x"}}],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7716038489714879179,"version":"15"}],"name":"main","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}]"#;
        let repo = "15-1\n15-1/0000000100000000\n15-1/0000000100000000/000000010000000000000001-0ee4c6cdd77b4b91ecb37edbb5511cef83d60b67.gz\n15-1/0000000100000000/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211.gz\n15-1/0000000100000000/000000010000000000000002.00000028.backup\n../../etc/passwd-x\n";
        let s = parse_pgbackrest("r", "h", "main", &format!("{info}\n#REPO\n{repo}")).unwrap();
        assert_eq!(s.backups.len(), 1);
        let b = &s.backups[0];
        assert_eq!(b.dir, "20261206-041011F");
        assert_eq!(b.stop_lsn, Lsn::parse("0/2000100"));
        assert_eq!(b.pg_version.as_deref(), Some("15"));
        assert_eq!(b.stop_time.unwrap().timestamp(), 1796530220);
        assert!(
            s.problems
                .iter()
                .any(|p| p.contains("'broken' has no start LSN")),
            "{:?}",
            s.problems
        );
        assert_eq!(s.segments.len(), 2);
        assert_eq!(s.wal[0].gaps[0].0, "000000010000000000000002");
        assert!(parse_pgbackrest("r", "h", "other", info).is_err());
        assert!(parse_pgbackrest("r", "h", "main", "not json").is_err());
    }

    #[test]
    fn a_backup_that_ended_after_the_target_is_refused() {
        let s = parse_listing("arch", "db", "/w", "/b", &listing());
        // Target inside segment 3: only b1 ended before it.
        let target = Target::Xid {
            xid: 728,
            commit_lsn: Lsn::parse("0/3001558"),
        };
        let p = plan(&s, &target).unwrap();
        assert_eq!(p.backup.dir, "b1");
        assert!(
            p.refused
                .iter()
                .any(|(d, w)| d == "late" && w.contains("after the target")),
            "{:?}",
            p.refused
        );
        // A target before every backup's end: refused, with the reason.
        let early = Target::Xid {
            xid: 700,
            commit_lsn: Lsn::parse("0/2000050"),
        };
        let e = plan(&s, &early).unwrap_err().to_string();
        assert!(
            e.contains("no base backup can reach") && e.contains("already holds the damage"),
            "{e}"
        );
        // A time target in the same second the backup "ended" (stop times
        // have whole seconds): refused, the real end may be after it.
        let same_second = Target::Time {
            at: t("2026-12-06 03:21:46.5 UTC"),
        };
        let e = plan(&s, &same_second).unwrap_err().to_string();
        assert!(e.contains("whole seconds"), "{e}");
        let next_second = Target::Time {
            at: t("2026-12-06 03:21:47 UTC"),
        };
        // b1 qualifies then; where a time lies in the WAL is unknown, so the
        // whole archive after it must be gap-free (here segment 4 is missing).
        let e = plan(&s, &next_second).unwrap_err().to_string();
        assert!(
            e.contains("WAL gap") && e.contains("base backup 'b1'"),
            "{e}"
        );
        // The WAL gap at segment 4 blocks a target behind it.
        let behind = Target::Xid {
            xid: 900,
            commit_lsn: Lsn::parse("0/5000200"),
        };
        let s2 = parse_listing(
            "arch",
            "db",
            "/w",
            "/b",
            &listing().replace("0/5000100", "0/6000100"),
        );
        let e = plan(&s2, &behind).unwrap_err().to_string();
        assert!(
            e.contains("WAL gap") && e.contains("000000010000000000000004"),
            "{e}"
        );
    }
}
