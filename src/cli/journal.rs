//! `lifeline journal verify`: recomputes a journal's hash chain, checks its
//! signed checkpoints and compares its head with head logs. Reads only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lifeline::journal;
use lifeline::state::{StateDir, default_state_dir};

use super::{Cli, EXIT_FAILED};

pub fn cmd_journal_verify(
    cli: &Cli,
    path: &str,
    allowed: Option<&Path>,
    heads: &[PathBuf],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut p = PathBuf::from(path);
    if !p.exists() && lifeline::state::valid_incident_id(path) {
        let state = StateDir::new(cli.state_dir.clone().unwrap_or_else(default_state_dir));
        p = state.journal_path(path);
    }
    let report = journal::verify_file_with(&p, allowed)
        .with_context(|| format!("cannot read journal '{}'", p.display()))?;
    if json {
        println!(
            "{}",
            lifeline::term::json_safe(&serde_json::to_string_pretty(&report)?)
        );
    } else {
        print_report(&p, &report);
    }
    let mut anchored = true;
    if !heads.is_empty() {
        let records: Vec<journal::Record> = journal::read_records(&p)
            .unwrap_or_default()
            .into_iter()
            .take(report.valid)
            .collect();
        let incident = records
            .first()
            .map(|r| r.incident.clone())
            .unwrap_or_default();
        for h in heads {
            let text = std::fs::read_to_string(h)
                .with_context(|| format!("cannot read head log '{}'", h.display()))?;
            let anchors = journal::anchor::parse(&text, &incident);
            match journal::anchor::compare(&records, &anchors) {
                Ok(_) if anchors.is_empty() => {
                    anchored = false;
                    lifeline::outln!(
                        "ANCHOR: {}: no head of incident '{incident}' in it",
                        h.display()
                    );
                }
                Ok(seq) => lifeline::outln!(
                    "anchored: {}: {} head(s) match, the latest at seq {seq}",
                    h.display(),
                    anchors.len()
                ),
                Err(why) => {
                    anchored = false;
                    lifeline::outln!("{why} ({})", h.display());
                }
            }
        }
    }
    Ok(if report.trusted() && anchored {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn print_report(p: &Path, r: &journal::VerifyReport) {
    match &r.first_bad {
        None => lifeline::outln!(
            "ok: {}: {} record(s), hash chain intact",
            p.display(),
            r.valid
        ),
        Some((line, why)) => lifeline::outln!(
            "BROKEN: {}: line {line}: {why} ({} record(s) before it verified)",
            p.display(),
            r.valid
        ),
    }
    let s = &r.signatures;
    let against = s
        .allowed_signers
        .as_deref()
        .unwrap_or("(no allowed-signers file)");
    match &s.problem {
        Some((line, why)) => lifeline::outln!("SIGNATURE: line {line}: {why}"),
        None if s.checkpoints == 0 => lifeline::outln!(
            "NOT SIGNED: no signed checkpoint in {} record(s): written before signing, or its checkpoints were removed",
            r.valid
        ),
        None => lifeline::outln!(
            "signed: {} checkpoint(s) by {} verified against {against}",
            s.checkpoints,
            s.signers.join(", ")
        ),
    }
    if s.unsigned_tail > 0 && s.checkpoints > 0 {
        if s.in_progress {
            lifeline::outln!(
                "open: {} record(s) after the last checkpoint; a writer holds the journal (signed when it closes)",
                s.unsigned_tail
            );
        } else {
            lifeline::outln!(
                "UNSIGNED TAIL: {} record(s) after the last checkpoint and no writer holds the journal (a writer killed before it closed, or records appended by hand)",
                s.unsigned_tail
            );
        }
    }
    if let Some((seq, hash)) = &s.head {
        lifeline::outln!("head: seq {seq} hash {hash}");
    }
    if let Some(n) = r.torn_last_line {
        lifeline::outln!(
            "torn: line {n} is an incomplete last line (a write interrupted by a crash); it recorded nothing and the {} record(s) before it are verified",
            r.valid
        );
    }
}
