//! `lifeline note INCIDENT TEXT`: appends an annotation to an incident's
//! journal (a new event; nothing is edited).

use std::process::ExitCode;

use lifeline::redact::Redactor;
use lifeline::state::default_operator;

use super::{Cli, inventory_secrets, state_dir};

pub fn cmd_note(
    cli: &Cli,
    redactor: &Redactor,
    args: lifeline::export::note::NoteArgs,
) -> ExitCode {
    if let Err(code) = inventory_secrets(cli, redactor) {
        return code;
    }
    let operator = cli.operator.clone().unwrap_or_else(default_operator);
    match lifeline::export::note::run(
        &args,
        &state_dir(cli),
        &operator,
        redactor,
        chrono::Utc::now(),
    ) {
        Ok(rec) => {
            let at = rec.data.get("at").and_then(|v| v.as_str());
            match at {
                Some(at) => lifeline::outln!("noted: #{} at {}, describing {at}", rec.seq, rec.ts),
                None => lifeline::outln!("noted: #{} at {}", rec.seq, rec.ts),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            lifeline::errln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
