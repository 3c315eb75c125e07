//! `lifeline note`: an operator's annotation, appended to the incident
//! journal as a new `note` event (backdated ones name the time they describe
//! in `data.at`). It never edits an existing line and never creates an incident.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::journal::{self, Entry, Journal, JournalError, Record, kinds};
use crate::redact::Redactor;
use crate::state::StateDir;

use super::ExportError;
use super::load::{IncidentFiles, resolve};
use super::time::{self, TimeError, Zone};

/// How far in the future `--at` may be (clock skew between machines).
const FUTURE_SLACK_S: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error(transparent)]
    NoIncident(Box<ExportError>),
    #[error(
        "no journal at '{0}': notes are added to an existing incident; open it with the console or 'lifeline run' first"
    )]
    NoJournal(String),
    #[error(
        "the note is empty: say what happened, e.g. lifeline note INCIDENT \"12:42 a change was made by hand\""
    )]
    Empty,
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error(
        "--at '{0}' is in the future: a note describes something that already happened; give the time it happened ('HH:MM' means today: for an earlier day write 'YYYY-MM-DD HH:MM')"
    )]
    Future(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl NoteError {
    /// Exit code (contract): 2 for what the operator typed, 1 otherwise
    /// (including a journal locked by a running console).
    pub fn exit_code(&self) -> u8 {
        match self {
            NoteError::NoIncident(_)
            | NoteError::NoJournal(_)
            | NoteError::Empty
            | NoteError::Time(_)
            | NoteError::Future(_) => 2,
            NoteError::Journal(_) => 1,
        }
    }
}

/// Appends a note to the incident's journal through `Journal::open` (which
/// takes the lock: a running console makes this fail with `Locked`).
pub fn add_note(
    files: &IncidentFiles,
    text: &str,
    at: Option<DateTime<Utc>>,
    operator: &str,
    redactor: Redactor,
) -> Result<Record, NoteError> {
    if text.trim().is_empty() {
        return Err(NoteError::Empty);
    }
    if !files.journal.is_file() {
        return Err(NoteError::NoJournal(
            redactor.redact(&files.journal.display().to_string()),
        ));
    }
    // The incident id as the journal records it (the directory name for an empty one).
    let incident = journal::read_records(&files.journal)
        .ok()
        .and_then(|r| r.into_iter().map(|r| r.incident).find(|i| !i.is_empty()))
        .unwrap_or_else(|| files.id_hint.clone());
    let mut j = Journal::open(&files.journal, &incident, operator, redactor)?;
    let mut entry = Entry::new(kinds::NOTE, text.trim());
    if let Some(at) = at {
        entry = entry.data(json!({ "at": time::rfc3339(at) }));
    }
    Ok(j.append(entry)?)
}

/// `lifeline note` as the CLI runs it.
#[derive(Debug, Clone)]
pub struct NoteArgs {
    pub incident: String,
    pub text: String,
    /// `--at`: RFC 3339, `HH:MM` today or `YYYY-MM-DD HH:MM` (local time).
    pub at: Option<String>,
    /// `--tz`: the UTC offset `--at` is in; None = this machine's zone.
    pub tz: Option<String>,
}

pub fn run(
    args: &NoteArgs,
    state: &StateDir,
    operator: &str,
    redactor: &Redactor,
    now: DateTime<Utc>,
) -> Result<Record, NoteError> {
    let zone = match &args.tz {
        Some(tz) => Zone::Fixed(time::parse_offset(tz)?),
        None => Zone::System,
    };
    let at = match &args.at {
        Some(s) => {
            let at = time::parse_when(s, zone, now)?;
            if (at - now).num_seconds() > FUTURE_SLACK_S {
                return Err(NoteError::Future(s.clone()));
            }
            Some(at)
        }
        None => None,
    };
    let files = resolve(&args.incident, state).map_err(|e| NoteError::NoIncident(Box::new(e)))?;
    add_note(&files, &args.text, at, operator, redactor.clone())
}
