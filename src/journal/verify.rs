//! Chain and signature verification: recomputes every hash and link and
//! checks every checkpoint against allowed signers. Read-only.

use std::path::{Path, PathBuf};

use super::sign::{self, AllowedSigners, CHECKPOINT_EVERY};
use super::{GENESIS, Record, kinds, sha256_hex};

/// What the signed checkpoints say about a journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Signatures {
    /// The allowed-signers file the checkpoints were checked against.
    pub allowed_signers: Option<String>,
    /// Checkpoints whose signature verified.
    pub checkpoints: usize,
    /// Who signed them (principals, first seen first).
    pub signers: Vec<String>,
    /// Records after the last checkpoint.
    pub unsigned_tail: usize,
    /// First line whose checkpoint fails, or where one is missing, and why.
    pub problem: Option<(usize, String)>,
    /// (seq, hash) of the last verified record: compare it with a head anchor.
    pub head: Option<(u64, String)>,
    /// The last verified checkpoint's data (signer, signature), for reviewers.
    pub last_checkpoint: Option<serde_json::Value>,
    /// A writer holds the journal right now (its tail is not signed yet).
    pub in_progress: bool,
}

/// Result of verifying a whole journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Complete, valid records in an unbroken chain from the first line.
    pub valid: usize,
    /// First line (1-based) where the chain breaks, and why.
    pub first_bad: Option<(usize, String)>,
    /// A last line cut short by a crash mid-write (1-based line number).
    pub torn_last_line: Option<usize>,
    pub signatures: Signatures,
}

impl VerifyReport {
    /// The hash chain holds (says nothing of who wrote it).
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
    }

    /// The chain holds and is signed to its end by allowed signers (a tail
    /// not yet signed is accepted only while a writer holds the journal).
    pub fn trusted(&self) -> bool {
        let s = &self.signatures;
        self.intact()
            && s.problem.is_none()
            && s.checkpoints > 0
            && (s.unsigned_tail == 0 || s.in_progress)
    }
}

/// Checks one line's own seal and returns the record.
pub(crate) fn check_line(line: &str) -> Result<Record, String> {
    const SUFFIX_LEN: usize = ",\"hash\":\"".len() + 64 + "\"}".len();
    if line.len() < SUFFIX_LEN || !line.ends_with("\"}") {
        return Err("not a sealed record (no trailing hash)".into());
    }
    let cut = line.len() - SUFFIX_LEN;
    let (body_part, suffix) = line.split_at(cut);
    let Some(hash) = suffix
        .strip_prefix(",\"hash\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
    else {
        return Err("not a sealed record (no trailing hash)".into());
    };
    let body = format!("{body_part}}}");
    let rec: Record =
        serde_json::from_str(line).map_err(|e| format!("not valid JSON for a record: {e}"))?;
    if rec.hash != hash {
        return Err("hash member is not the last member".into());
    }
    let actual = sha256_hex(body.as_bytes());
    if actual != hash {
        return Err(format!(
            "content does not match its hash (the line was edited): recorded {}…, computed {}…",
            &hash[..12],
            &actual[..12]
        ));
    }
    Ok(rec)
}

/// Verifies journal text (the chain; checkpoints are counted, not checked).
pub fn verify_text(text: &str) -> VerifyReport {
    verify_text_with(text, None)
}

/// Verifies journal text, checkpoints against `allowed`.
pub fn verify_text_with(text: &str, allowed: Option<&AllowedSigners>) -> VerifyReport {
    let mut report = VerifyReport {
        valid: 0,
        first_bad: None,
        torn_last_line: None,
        signatures: Signatures {
            allowed_signers: allowed.map(|a| a.path().display().to_string()),
            ..Default::default()
        },
    };
    let mut since = 0usize;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut prev_hash = GENESIS.to_string();
    let mut prev_seq = 0u64;
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        let complete = raw.ends_with('\n');
        let line = raw.trim_end_matches('\n');
        let rec = match check_line(line) {
            Ok(r) => r,
            Err(_) if !complete && n == lines.len() => {
                report.torn_last_line = Some(n);
                break;
            }
            Err(reason) => {
                report.first_bad = Some((n, reason));
                break;
            }
        };
        if rec.prev != prev_hash {
            let why = if rec.seq > prev_seq + 1 {
                format!(
                    "seq jumps from {prev_seq} to {}: {} line(s) before it were removed",
                    rec.seq,
                    rec.seq - prev_seq - 1
                )
            } else if rec.seq <= prev_seq {
                format!(
                    "seq {} comes after seq {prev_seq}: lines were reordered or duplicated",
                    rec.seq
                )
            } else {
                "prev does not match the hash of the line before it (that line was replaced)"
                    .to_string()
            };
            report.first_bad = Some((n, why));
            break;
        }
        if rec.seq != prev_seq + 1 {
            report.first_bad = Some((
                n,
                format!("seq {} where {} was expected", rec.seq, prev_seq + 1),
            ));
            break;
        }
        let sig = &mut report.signatures;
        if sig.problem.is_none() {
            if rec.kind == kinds::CHECKPOINT {
                let covers = rec.data["covers_seq"].as_u64() == Some(prev_seq)
                    && rec.data["covers_hash"].as_str() == Some(rec.prev.as_str());
                let checked = if !covers {
                    Err("checkpoint does not cover the record before it".to_string())
                } else {
                    match allowed {
                        Some(a) => a.check(&rec.incident, &rec.data),
                        None => Err("no allowed-signers file to check the signature against (pass --allowed-signers)".to_string()),
                    }
                };
                match checked {
                    Ok(who) => {
                        sig.checkpoints += 1;
                        if !sig.signers.contains(&who) {
                            sig.signers.push(who);
                        }
                        sig.last_checkpoint = Some(rec.data.clone());
                        since = 0;
                    }
                    Err(why) => {
                        sig.problem = Some((n, format!("checkpoint (seq {}): {why}", rec.seq)))
                    }
                }
            } else {
                since += 1;
                if since as u64 > CHECKPOINT_EVERY {
                    sig.problem = Some((
                        n,
                        format!(
                            "{since} records without a signed checkpoint (one is written every {CHECKPOINT_EVERY}): checkpoints were removed or the journal was rewritten"
                        ),
                    ));
                }
            }
        }
        sig.head = Some((rec.seq, rec.hash.clone()));
        prev_hash = rec.hash;
        prev_seq = rec.seq;
        report.valid += 1;
    }
    report.signatures.unsigned_tail = since;
    report
}

/// Verifies the journal file at `path` against its default allowed
/// signers (`<state>/keys/allowed_signers`) when that file exists.
pub fn verify_file(path: &Path) -> std::io::Result<VerifyReport> {
    verify_file_with(path, None)
}

/// Verifies the journal file at `path`; checkpoints against `allowed`
/// (default: the journal's key directory).
pub fn verify_file_with(path: &Path, allowed: Option<&Path>) -> std::io::Result<VerifyReport> {
    let bytes = std::fs::read(path)?;
    let allowed_path: PathBuf = allowed
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sign::default_allowed_signers(path));
    let signers = match AllowedSigners::load(&allowed_path) {
        Ok(a) => Some(a),
        Err(e) if allowed.is_some() => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("allowed signers '{}': {e}", allowed_path.display()),
            ));
        }
        Err(_) => None,
    };
    let mut report = verify_text_with(&String::from_utf8_lossy(&bytes), signers.as_ref());
    report.signatures.in_progress = std::fs::File::open(path)
        .map(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
        .unwrap_or(false);
    Ok(report)
}
