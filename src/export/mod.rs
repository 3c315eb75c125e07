//! Post-incident timeline export (Markdown, JSON, HTML) and operator notes.
//! Export only reads: it verifies the journal chain first, states the result
//! in the document, and never edits the journal; every byte it writes has
//! passed through the `Redactor`. Notes are new journal events, never edits.

pub mod analyze;
pub mod doc;
pub mod html;
pub mod load;
pub mod markdown;
pub mod model;
pub mod note;
pub mod time;

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::inventory::Inventory;
use crate::journal::JournalError;
use crate::redact::Redactor;
use crate::state::StateDir;

pub use load::{Incident, IncidentFiles, load, resolve};
pub use model::{Report, SCHEMA_VERSION};
pub use note::{NoteError, add_note};
pub use time::{TimeError, Zone};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "no incident '{arg}': it is not a path to an incident directory or journal, and not an incident id under '{incidents}' (most recent: {known})"
    )]
    NoIncident {
        arg: String,
        incidents: String,
        known: String,
    },
    #[error("cannot read '{path}': {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write '{path}': {source}; pick another -o path or check its permissions")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(Box<JournalError>),
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error("the document could not be encoded as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

impl ExportError {
    /// Exit code (contract): 2 for what the operator typed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportError::NoIncident { .. } | ExportError::Time(_) => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// Markdown for GitHub/GitLab.
    #[default]
    Md,
    /// JSON (schema in README, "Export").
    Json,
    /// A self-contained HTML page.
    Html,
}

/// A rendered document and the data behind it.
#[derive(Debug, Clone)]
pub struct Exported {
    pub text: String,
    pub report: Report,
}

/// The document model of an incident, redacted.
pub fn report(
    inc: &Incident,
    zone: Zone,
    inventory: Option<&Inventory>,
    redactor: &Redactor,
    now: DateTime<Utc>,
) -> Report {
    analyze::build(
        inc,
        &analyze::Context {
            inventory,
            zone,
            now,
            redactor,
        },
    )
}

/// Renders `report`; the text passes through the redactor once more (and,
/// for Markdown and HTML, the terminal sanitiser).
pub fn render(
    report: &Report,
    format: Format,
    zone: Zone,
    redactor: &Redactor,
) -> Result<String, ExportError> {
    Ok(match format {
        // Text formats reach terminals and viewers: controls shown as escapes.
        Format::Md => crate::term::visible_text(&redactor.redact(&markdown::render(report, zone)))
            .into_owned(),
        Format::Html => {
            crate::term::visible_text(&redactor.redact(&html::render(report, zone))).into_owned()
        }
        Format::Json => {
            // Redact the value, not the text, so the JSON stays valid.
            let mut v = serde_json::to_value(report)?;
            redactor.redact_json(&mut v);
            let mut s = crate::term::json_safe(&serde_json::to_string_pretty(&v)?).into_owned();
            s.push('\n');
            s
        }
    })
}

/// Loads, verifies and renders an incident.
pub fn export(
    files: &IncidentFiles,
    format: Format,
    zone: Zone,
    inventory: Option<&Inventory>,
    redactor: &Redactor,
    now: DateTime<Utc>,
) -> Result<Exported, ExportError> {
    let inc = load(files, redactor)?;
    let report = report(&inc, zone, inventory, redactor, now);
    let text = render(&report, format, zone, redactor)?;
    Ok(Exported { text, report })
}

/// `lifeline export` as the CLI runs it.
#[derive(Debug, Clone)]
pub struct ExportArgs {
    pub incident: String,
    pub format: Format,
    pub output: Option<PathBuf>,
    /// `--tz`: a UTC offset; None = this machine's zone.
    pub tz: Option<String>,
}

/// Runs `lifeline export`: writes the document (to `-o` or stdout) and
/// returns the exit code: 0, or 1 when the journal's chain is broken (the
/// document is written all the same, with the warning at its top).
pub fn run(
    args: &ExportArgs,
    state: &StateDir,
    inventory: Option<&Inventory>,
    redactor: &Redactor,
) -> Result<u8, ExportError> {
    let zone = match &args.tz {
        Some(tz) => Zone::Fixed(time::parse_offset(tz)?),
        None => Zone::System,
    };
    let files = resolve(&args.incident, state)?;
    let out = export(&files, args.format, zone, inventory, redactor, Utc::now())?;
    match &args.output {
        Some(p) => write_file(p, out.text.as_bytes())?,
        None => {
            let mut so = std::io::stdout().lock();
            so.write_all(out.text.as_bytes())
                .and_then(|()| so.flush())
                .map_err(|source| ExportError::Write {
                    path: "stdout".into(),
                    source,
                })?;
        }
    }
    let i = &out.report.integrity;
    if let Some(p) = &args.output {
        crate::errln!(
            "wrote {} ({} timeline line(s), {} table(s))",
            p.display(),
            out.report.timeline.len(),
            out.report.row_counts.len()
        );
    }
    if i.signature_status == "failed" {
        crate::errln!(
            "warning: the journal's signatures fail ({}); the document says so at its top (exit 1)",
            i.signature_detail.as_deref().unwrap_or("unknown")
        );
        return Ok(1);
    }
    if i.intact {
        Ok(0)
    } else {
        crate::errln!(
            "warning: the journal's hash chain is broken at line {}: {}; the document says so at its top (exit 1)",
            i.first_bad_line.unwrap_or(0),
            i.reason.as_deref().unwrap_or("unknown")
        );
        Ok(1)
    }
}

/// Writes beside the target and renames, so a reader never sees half a document.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let err = |source| ExportError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
