//! Reading an incident for export: verify the journal chain first, then
//! read its records (leniently past a break, marking them unverified) and
//! the samples. Every string is redacted here, once, before anything is
//! derived from it. Read-only: never repairs or moves a file.

use std::path::{Path, PathBuf};

use crate::journal::{self, Record};
use crate::redact::Redactor;
use crate::samples::{self, Sample};
use crate::state::{JOURNAL_FILE, SAMPLES_FILE, StateDir, valid_incident_id};

use super::ExportError;
use super::model::Integrity;

/// Where an incident's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFiles {
    pub journal: PathBuf,
    pub samples: PathBuf,
    /// The incident id the location implies (directory name).
    pub id_hint: String,
}

/// Resolves `INCIDENT` as the CLI takes it: a path to an incident
/// directory or a journal file, else an incident id under the state dir.
pub fn resolve(arg: &str, state: &StateDir) -> Result<IncidentFiles, ExportError> {
    let p = Path::new(arg);
    if p.is_dir() {
        return Ok(files_in(p, p.join(JOURNAL_FILE)));
    }
    if p.is_file() {
        let dir = p.parent().unwrap_or(Path::new("."));
        return Ok(files_in(dir, p.to_path_buf()));
    }
    if valid_incident_id(arg) && state.journal_path(arg).is_file() {
        return Ok(files_in(&state.incident_dir(arg), state.journal_path(arg)));
    }
    let known = state.list_incidents();
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known
            .iter()
            .rev()
            .take(5)
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(ExportError::NoIncident {
        arg: arg.to_string(),
        incidents: state.incidents().display().to_string(),
        known,
    })
}

fn files_in(dir: &Path, journal: PathBuf) -> IncidentFiles {
    let id_hint = dir
        .canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    IncidentFiles {
        journal,
        samples: dir.join(SAMPLES_FILE),
        id_hint,
    }
}

/// One journal record as read, redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub record: Record,
    /// In the unbroken chain from the first line.
    pub verified: bool,
}

/// Everything an export is built from.
#[derive(Debug, Clone)]
pub struct Incident {
    pub files: IncidentFiles,
    pub records: Vec<Loaded>,
    pub integrity: Integrity,
    pub samples: Vec<Sample>,
    pub warnings: Vec<String>,
}

/// Verifies the journal's chain, then reads it and the samples.
pub fn load(files: &IncidentFiles, redactor: &Redactor) -> Result<Incident, ExportError> {
    let jpath = &files.journal;
    let io = |source| ExportError::Read {
        path: jpath.display().to_string(),
        source,
    };
    let report = journal::verify_file(jpath).map_err(io)?;
    let bytes = std::fs::read(jpath).map_err(io)?;
    let mut warnings = Vec::new();

    let raw: Vec<Loaded> = if report.intact() {
        journal::read_records(jpath)
            .map_err(|e| ExportError::Journal(Box::new(e)))?
            .into_iter()
            .map(|record| Loaded {
                record,
                verified: true,
            })
            .collect()
    } else {
        // Past the break nothing is trusted, but everything is shown.
        let first_bad = report.first_bad.as_ref().map_or(usize::MAX, |b| b.0);
        let text = String::from_utf8_lossy(&bytes);
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() || report.torn_last_line == Some(n) {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(record) => out.push(Loaded {
                    record,
                    verified: n < first_bad,
                }),
                Err(e) => warnings.push(format!(
                    "journal line {n} is not a readable record and is left out of the timeline ({e})"
                )),
            }
        }
        out
    };
    let records = raw
        .into_iter()
        .map(|l| Loaded {
            record: redact_record(l.record, redactor),
            verified: l.verified,
        })
        .collect::<Vec<_>>();

    let integrity = Integrity {
        intact: report.intact(),
        records: records.len(),
        verified: report.valid,
        first_bad_line: report.first_bad.as_ref().map(|b| b.0),
        reason: report.first_bad.as_ref().map(|b| redactor.redact(&b.1)),
        torn_last_line: report.torn_last_line,
        journal_sha256: journal::sha256_hex(&bytes),
        last_hash: records
            .iter()
            .take_while(|l| l.verified)
            .last()
            .map(|l| l.record.hash.clone()),
        signature_status: signature_status(&report).into(),
        signature_detail: signature_detail(&report).map(|d| redactor.redact(&d)),
        head: report.signatures.head.clone(),
        checkpoint: report.signatures.last_checkpoint.clone(),
    };

    let samples = if files.samples.is_file() {
        match samples::read(&files.samples) {
            Ok(s) => s.into_iter().map(|s| redact_sample(s, redactor)).collect(),
            Err(e) => {
                warnings.push(format!(
                    "{}: row counts left out",
                    redactor.redact(&e.to_string())
                ));
                Vec::new()
            }
        }
    } else {
        warnings.push(format!(
            "no '{SAMPLES_FILE}' next to the journal: no row counts were recorded for this incident"
        ));
        Vec::new()
    };

    Ok(Incident {
        files: files.clone(),
        records,
        integrity,
        samples,
        warnings,
    })
}

fn redact_record(mut r: Record, red: &Redactor) -> Record {
    let o = |s: Option<String>| s.map(|s| red.redact(&s));
    r.incident = red.redact(&r.incident);
    r.operator = red.redact(&r.operator);
    r.kind = red.redact(&r.kind);
    r.step = o(r.step);
    r.target = o(r.target);
    r.command = o(r.command);
    r.summary = red.redact(&r.summary);
    red.redact_json(&mut r.data);
    r
}

fn redact_sample(mut s: Sample, red: &Redactor) -> Sample {
    s.database = red.redact(&s.database);
    s.identity.server = red.redact(&s.identity.server);
    s.identity.database = red.redact(&s.identity.database);
    for t in &mut s.tables {
        t.schema = red.redact(&t.schema);
        t.name = red.redact(&t.name);
    }
    s
}

fn signature_status(r: &journal::VerifyReport) -> &'static str {
    let s = &r.signatures;
    if s.checkpoints == 0
        && s.problem
            .as_ref()
            .is_none_or(|p| !p.1.starts_with("checkpoint"))
    {
        "unsigned"
    } else if s.problem.is_some() || (s.unsigned_tail > 0 && !s.in_progress) {
        "failed"
    } else {
        "signed"
    }
}

fn signature_detail(r: &journal::VerifyReport) -> Option<String> {
    let s = &r.signatures;
    if signature_status(r) == "unsigned" {
        return Some(format!(
            "no signed checkpoint in {} record(s): written before signing, or its checkpoints were removed",
            r.valid
        ));
    }
    if let Some((line, why)) = &s.problem {
        return Some(format!("line {line}: {why}"));
    }
    if s.unsigned_tail > 0 && !s.in_progress {
        return Some(format!(
            "{} record(s) after the last signed checkpoint, and no writer holds the journal",
            s.unsigned_tail
        ));
    }
    Some(format!(
        "{} checkpoint(s) signed by {}, checked against {}",
        s.checkpoints,
        s.signers.join(", "),
        s.allowed_signers.as_deref().unwrap_or("-")
    ))
}
