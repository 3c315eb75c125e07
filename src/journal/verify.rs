//! Chain verification: recomputes every hash and link. Read-only.

use std::path::Path;

use super::{GENESIS, Record, sha256_hex};

/// Result of verifying a whole journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Complete, valid records in an unbroken chain from the first line.
    pub valid: usize,
    /// First line (1-based) where the chain breaks, and why.
    pub first_bad: Option<(usize, String)>,
    /// A last line cut short by a crash mid-write (1-based line number).
    pub torn_last_line: Option<usize>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
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

/// Verifies journal text.
pub fn verify_text(text: &str) -> VerifyReport {
    let mut report = VerifyReport {
        valid: 0,
        first_bad: None,
        torn_last_line: None,
    };
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
        prev_hash = rec.hash;
        prev_seq = rec.seq;
        report.valid += 1;
    }
    report
}

/// Verifies the journal file at `path`.
pub fn verify_file(path: &Path) -> std::io::Result<VerifyReport> {
    let bytes = std::fs::read(path)?;
    Ok(verify_text(&String::from_utf8_lossy(&bytes)))
}
