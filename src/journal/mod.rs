//! The journal: append-only, hash-chained JSONL, fsynced before the caller
//! acts, redacted, anchored by signed `checkpoint` records. It never rewrites
//! or deletes a complete line and never appends to a broken chain.

pub mod anchor;
pub mod sign;
mod verify;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::redact::Redactor;

pub use sign::{AllowedSigners, CHECKPOINT_EVERY, Signer};
pub use verify::{Signatures, VerifyReport, verify_file, verify_file_with, verify_text};

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Shared vocabulary of `kind`s. Modules may add their own; these are the
/// ones export and resume rely on. Conventions for `data`:
///
/// - `incident-opened`: `{ "scenario"?: str, "inventory"?: path, "mode": "live"|"drill" }`.
/// - `step-started` / `step-finished` / `step-failed` / `step-skipped`:
///   `step` = the runbook step id; `data.action` = the step action
///   (`stop-services`, `snapshot`, `pick-backup`, `restore`, `verify`, `swap`,
///   `start-services`, `note`, `probe`, `command`, `sql`); plus per action on
///   `step-finished`:
///   - `snapshot`: `{ "path", "size", "sha256", "database" }`
///   - `pick-backup`: `{ "backup": { "name", "path", "taken_at", "sha256"?, "size" },
///     "incident_at", "rpo_s" }`
///   - `restore`: `{ "target_db", "manifest": { "tables": {name: rows}, "statements",
///     "duration_ms", "sha256", "bytes" } }`
///   - `verify`: `{ "database", "ok": bool, "checks": [{ "kind", "target", "ok", "found" }] }`
///   - `swap`: `{ "live": name, "damaged": name, "restored_from": name }`
///   - `stop-services`: `{ "stopped": [service names], "held_s" }`
/// - `alert`: `{ "database", "table", "before", "after", "rule", "at", "before_at" }` (a row-count drop seen by the sample at `at`; `before_at` is the previous sample, the last that saw the rows).
/// - `note`: `summary` is the text; `data.at` (RFC 3339) is the time it describes
///   when backdated.
/// - `identity-changed`: `{ "database", "before": identity, "after": identity }`.
/// - `table-recreated`: `{ "database", "table", "old_oid", "new_oid" }`.
/// - `hostkey-accepted`: `{ "host", "fingerprint", "key_type" }`.
/// - `checkpoint`: written after every [`CHECKPOINT_EVERY`] other records and
///   when a writer closes: `{ "covers_seq", "covers_hash", "signer": { "scheme":
///   "ed25519"|"sshsig", "principal", "key" }, "signature" }`; the signature is
///   over `sign::message(incident, covers_seq, covers_hash)`.
/// - `journal-broken`: first record of a journal whose predecessor failed
///   verification on open: `{ "line", "reason", "moved_to", "sha256", "valid" }`.
pub mod kinds {
    pub const INCIDENT_OPENED: &str = "incident-opened";
    pub const JOURNAL_REPAIRED: &str = "journal-repaired";
    pub const NOTE: &str = "note";
    pub const STEP_STARTED: &str = "step-started";
    pub const STEP_FINISHED: &str = "step-finished";
    pub const STEP_FAILED: &str = "step-failed";
    pub const STEP_SKIPPED: &str = "step-skipped";
    pub const CONFIRMED: &str = "confirmed";
    pub const COMMAND: &str = "command";
    pub const ALERT: &str = "alert";
    pub const IDENTITY_CHANGED: &str = "identity-changed";
    pub const TABLE_RECREATED: &str = "table-recreated";
    pub const HOSTKEY_ACCEPTED: &str = "hostkey-accepted";
    pub const PROBE: &str = "probe";
    pub const CHECKPOINT: &str = "checkpoint";
    pub const JOURNAL_BROKEN: &str = "journal-broken";
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "journal '{path}' is locked by another lifeline process (another console or run is writing this incident); close it or pick another incident"
    )]
    Locked { path: PathBuf },
    #[error("journal '{path}' line {line}: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("journal record could not be serialised: {0}")]
    Encode(#[from] serde_json::Error),
}

fn ser_ts<S: serde::Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// One line of the journal (the **contract** of DESIGN.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub seq: u64,
    #[serde(serialize_with = "ser_ts")]
    pub ts: DateTime<Utc>,
    pub incident: String,
    pub operator: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub summary: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    pub prev: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

/// What a caller asks to append; the journal adds seq, time, incident,
/// operator and the chain.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub kind: String,
    pub step: Option<String>,
    pub target: Option<String>,
    pub command: Option<String>,
    pub exit: Option<i32>,
    pub duration_ms: Option<u64>,
    pub summary: String,
    pub data: Value,
}

impl Entry {
    pub fn new(kind: &str, summary: impl Into<String>) -> Self {
        Entry {
            kind: kind.to_string(),
            summary: summary.into(),
            ..Default::default()
        }
    }
    pub fn step(mut self, step: impl Into<String>) -> Self {
        self.step = Some(step.into());
        self
    }
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
    pub fn command(mut self, command: impl Into<String>) -> Self {
        self.command = Some(command.into());
        self
    }
    pub fn exit(mut self, code: i32) -> Self {
        self.exit = Some(code);
        self
    }
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Serialises `rec` (its `hash` ignored) and returns `(line, hash)`, the
/// line without its trailing newline. The hash covers the line without the
/// `hash` member: exactly the bytes before `,"hash":` plus the closing brace.
pub fn seal(rec: &Record) -> Result<(String, String), serde_json::Error> {
    let mut r = rec.clone();
    r.hash.clear();
    let body = serde_json::to_string(&r)?;
    let hash = sha256_hex(body.as_bytes());
    let mut line = body;
    line.pop(); // the closing brace
    line.push_str(",\"hash\":\"");
    line.push_str(&hash);
    line.push_str("\"}");
    Ok((line, hash))
}

/// An open, locked journal. One writer per incident.
pub struct Journal {
    path: PathBuf,
    file: File,
    incident: String,
    operator: String,
    redactor: Redactor,
    next_seq: u64,
    last_hash: String,
    signer: Option<Signer>,
    /// Records appended since the last checkpoint.
    unsigned: u64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` and takes the
    /// exclusive lock. A torn last line left by a crash is moved aside to
    /// `<path>.torn-<stamp>` (never deleted) and the repair is journaled.
    pub fn open(
        path: &Path,
        incident: &str,
        operator: &str,
        redactor: Redactor,
    ) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::state::private_dir(dir).map_err(io)?;
            crate::state::tighten_incident_dir(dir).map_err(io)?;
        }
        let mut file = crate::state::private_options()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut text = Vec::new();
        // Only a regular file has history to read (a device such as /dev/full has none).
        let regular = file.metadata().map_err(io)?.is_file();
        if regular {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.read_to_end(&mut text).map_err(io)?;
        }
        // The chain, and every checkpoint against the allowed signers: a
        // forged checkpoint breaks the journal as surely as an edited line.
        let allowed = AllowedSigners::load(&sign::default_allowed_signers(path)).ok();
        let check = verify::verify_text_with(&String::from_utf8_lossy(&text), allowed.as_ref());
        let forged = check
            .signatures
            .problem
            .clone()
            .filter(|(_, why)| why.starts_with("checkpoint"));
        if let Some((1, reason)) = &check.first_bad {
            // Not a journal at all (or its first line was edited): refuse,
            // never move someone's file aside.
            return Err(JournalError::Corrupt {
                path: path.to_path_buf(),
                line: 1,
                reason: format!(
                    "{reason}: not a lifeline journal, or its first line was changed; nothing was written (run 'lifeline journal verify' and keep this file as evidence)"
                ),
            });
        }
        crate::state::make_private(&file).map_err(io)?;
        // A key directory is made only beside a real journal file (never in /dev).
        let signer = if regular {
            match Signer::resolve(&sign::key_dir(path), operator) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("journal checkpoints will not be signed: {e}");
                    None
                }
            }
        } else {
            None
        };
        if let Some((line, reason)) = check.first_bad.clone().or(forged) {
            return Self::restart_broken(
                path,
                incident,
                operator,
                redactor,
                signer,
                &text,
                line,
                &reason,
                check.valid,
            );
        }

        let mut next_seq = 1;
        let mut last_hash = GENESIS.to_string();
        let mut unsigned = 0;
        let mut torn: Option<(usize, Vec<u8>)> = None;
        let mut offset = 0usize;
        let mut line_no = 0usize;
        while offset < text.len() {
            line_no += 1;
            let end = text[offset..].iter().position(|&b| b == b'\n');
            let (line, complete) = match end {
                Some(e) => (&text[offset..offset + e], true),
                None => (&text[offset..], false),
            };
            let parsed = std::str::from_utf8(line)
                .ok()
                .and_then(|l| verify::check_line(l).ok());
            match parsed {
                Some(rec) => {
                    next_seq = rec.seq + 1;
                    last_hash = rec.hash;
                    unsigned = if rec.kind == kinds::CHECKPOINT {
                        0
                    } else {
                        unsigned + 1
                    };
                }
                None if !complete => {
                    torn = Some((offset, line.to_vec()));
                }
                None => {
                    return Err(JournalError::Corrupt {
                        path: path.to_path_buf(),
                        line: line_no,
                        reason: "line is not a sealed journal record; run 'lifeline journal verify' and keep this file as evidence".into(),
                    });
                }
            }
            offset += line.len() + usize::from(complete);
        }
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
            incident: incident.to_string(),
            operator: operator.to_string(),
            redactor,
            next_seq,
            last_hash,
            signer,
            unsigned,
        };
        if let Some((at, bytes)) = torn {
            let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
            let aside = PathBuf::from(format!("{}.torn-{stamp}", path.display()));
            crate::state::write_private_new(&aside, &bytes).map_err(io)?;
            j.file.set_len(at as u64).map_err(io)?;
            j.file.sync_all().map_err(io)?;
            j.append(
                Entry::new(
                    kinds::JOURNAL_REPAIRED,
                    format!(
                        "torn last line ({} bytes, from an interrupted write) moved to {}",
                        bytes.len(),
                        aside.display()
                    ),
                )
                .data(serde_json::json!({
                    "line": line_no,
                    "bytes": bytes.len(),
                    "sha256": sha256_hex(&bytes),
                    "moved_to": aside.display().to_string(),
                })),
            )?;
        }
        Ok(j)
    }

    /// A journal that failed verification: moved aside whole (kept as
    /// evidence), and a new one begun whose first record names the break.
    #[allow(clippy::too_many_arguments)]
    fn restart_broken(
        path: &Path,
        incident: &str,
        operator: &str,
        redactor: Redactor,
        signer: Option<Signer>,
        old: &[u8],
        line: usize,
        reason: &str,
        valid: usize,
    ) -> Result<Self, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let aside = PathBuf::from(format!("{}.broken-{stamp}", path.display()));
        std::fs::rename(path, &aside).map_err(io)?;
        if let Ok(f) = File::open(&aside) {
            crate::state::make_private(&f).map_err(io)?;
        }
        let file = crate::state::private_options()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
            incident: incident.to_string(),
            operator: operator.to_string(),
            redactor,
            next_seq: 1,
            last_hash: GENESIS.to_string(),
            signer,
            unsigned: 0,
        };
        j.append(
            Entry::new(
                kinds::JOURNAL_BROKEN,
                format!(
                    "the journal failed verification at line {line} ({reason}); it was moved whole to {} and is kept; this journal starts anew",
                    aside.display()
                ),
            )
            .data(serde_json::json!({
                "line": line,
                "reason": reason,
                "moved_to": aside.display().to_string(),
                "sha256": sha256_hex(old),
                "valid": valid,
            })),
        )?;
        Ok(j)
    }

    /// Appends a signed `checkpoint` covering every record so far (none
    /// when nothing was appended since the last one, or no signer).
    pub fn checkpoint(&mut self) -> Result<Option<Record>, JournalError> {
        if self.unsigned == 0 || self.next_seq <= 1 {
            return Ok(None);
        }
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let incident = self.redactor.redact(&self.incident);
        let data = match signer.sign(&incident, self.next_seq - 1, &self.last_hash) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("journal checkpoint not signed: {e}");
                return Ok(None);
            }
        };
        let summary = format!(
            "signed checkpoint of records 1..={} by {}",
            self.next_seq - 1,
            signer.principal()
        );
        let rec = self.write(Entry::new(kinds::CHECKPOINT, summary).data(data), false)?;
        if let Some(p) = anchor::local_path(&incident) {
            let l = anchor::line(&incident, rec.seq, &rec.hash, rec.ts);
            if let Err(e) = anchor::append_local(&p, &l) {
                tracing::warn!("head anchor '{}' not written: {e}", p.display());
            }
        }
        Ok(Some(rec))
    }

    /// Replaces the signer (`None`: no checkpoints are written; only the
    /// benchmark's unsigned baseline does this).
    pub fn set_signer(&mut self, signer: Option<Signer>) {
        self.signer = signer;
    }

    /// The signer's principal, when checkpoints are signed.
    pub fn signer(&self) -> Option<&str> {
        self.signer.as_ref().map(Signer::principal)
    }

    /// (seq, hash) of the last record: the head.
    pub fn head(&self) -> (u64, &str) {
        (self.next_seq - 1, &self.last_hash)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn incident(&self) -> &str {
        &self.incident
    }
    pub fn operator(&self) -> &str {
        &self.operator
    }
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
    /// The seq the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Redacts, seals, writes and fsyncs one record. On error nothing was
    /// recorded (a partial write is cut back) and the caller must not act.
    pub fn append(&mut self, entry: Entry) -> Result<Record, JournalError> {
        let rec = self.write(entry, true)?;
        if self.unsigned >= CHECKPOINT_EVERY {
            self.checkpoint()?;
        }
        Ok(rec)
    }

    fn write(&mut self, entry: Entry, redact_data: bool) -> Result<Record, JournalError> {
        let r = &self.redactor;
        let mut data = entry.data;
        // A checkpoint's data is a signature over hashes: nothing to hide, nothing to alter.
        if redact_data {
            r.redact_json(&mut data);
        }
        let rec = Record {
            seq: self.next_seq,
            ts: Utc::now(),
            incident: r.redact(&self.incident),
            operator: r.redact(&self.operator),
            kind: r.redact(&entry.kind),
            step: entry.step.map(|s| r.redact(&s)),
            target: entry.target.map(|s| r.redact(&s)),
            command: entry.command.map(|s| r.redact(&s)),
            exit: entry.exit,
            duration_ms: entry.duration_ms,
            summary: r.redact(&entry.summary),
            data,
            prev: self.last_hash.clone(),
            hash: String::new(),
        };
        let (mut line, hash) = seal(&rec)?;
        line.push('\n');
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let before = self.file.metadata().map(|m| m.len()).ok();
        let res = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = res {
            // Cut back our own partial bytes so the file stays a valid chain.
            if let Some(len) = before {
                let _ = self.file.set_len(len);
            }
            return Err(io(e));
        }
        self.next_seq += 1;
        self.last_hash = hash.clone();
        self.unsigned = if rec.kind == kinds::CHECKPOINT {
            0
        } else {
            self.unsigned + 1
        };
        Ok(Record { hash, ..rec })
    }
}

impl Drop for Journal {
    /// The end of every run is signed: a writer that closes leaves a checkpoint.
    fn drop(&mut self) {
        if let Err(e) = self.checkpoint() {
            tracing::warn!("closing checkpoint not written: {e}");
        }
    }
}

/// Reads every intact record of a journal (for export and resume). Stops at
/// a torn last line; errors on a corrupt line in the middle.
pub fn read_records(path: &Path) -> Result<Vec<Record>, JournalError> {
    let text = std::fs::read_to_string(path).map_err(|source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let complete = raw.ends_with('\n');
        let line = raw.trim_end_matches('\n');
        if line.is_empty() {
            continue;
        }
        match verify::check_line(line) {
            Ok(rec) => out.push(rec),
            Err(_) if !complete && i + 1 == lines.len() => break,
            Err(reason) => {
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason,
                });
            }
        }
    }
    Ok(out)
}
