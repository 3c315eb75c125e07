//! The answers file: what a headless run would otherwise ask the operator
//! (parameters, typed confirmations, overrides, what to do with an
//! interrupted step). Checked against the runbook with file:line:col.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::driver::{Operator, Reply};
use super::events::{ConfirmRequest, InterruptedRequest, OverrideRequest};
use super::machine::Decision;
use super::types::BackupChoice;
use crate::diag::{Diag, Diags, clean_message};
use crate::runbook::{Action, Runbook};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswers {
    #[serde(default)]
    params: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    confirm: BTreeMap<String, Spanned<String>>,
    #[serde(default, rename = "override")]
    overrides: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    interrupted: BTreeMap<String, Spanned<Decision>>,
    #[serde(default)]
    stop_plan: Option<Spanned<crate::engine::types::StopPlanEdits>>,
    #[serde(default)]
    pick: Option<Spanned<RawPick>>,
}

/// `[pick]`: another candidate than the one pick-backup preselects.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPick {
    /// The pick-backup step (default: the runbook's only one).
    #[serde(default)]
    step: Option<Spanned<String>>,
    backup: Spanned<String>,
    reason: Spanned<String>,
    /// The backup's name typed again, for a suspect candidate.
    #[serde(default)]
    confirm: Option<String>,
}

/// The answers file's choice of a backup for one pick-backup step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickAnswer {
    pub step: String,
    pub choice: BackupChoice,
}

/// A parsed, checked answers file.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub file: String,
    /// Parameter values as text (times in RFC 3339).
    pub params: BTreeMap<String, String>,
    /// Step id -> the database name typed to confirm it.
    pub confirm: BTreeMap<String, String>,
    /// Snapshot step id -> the override phrase typed after it failed.
    pub overrides: BTreeMap<String, String>,
    /// Step id -> what to do when it is found interrupted on resume.
    pub interrupted: BTreeMap<String, Decision>,
    /// `[stop_plan]`: items to add to or remove from stop-services' plan.
    pub stop_plan: crate::engine::types::StopPlanEdits,
    /// `[pick]`: the backup the operator chose, checked against the
    /// candidates when the pick has run (its `source` names file:line:col).
    pub pick: Option<PickAnswer>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnswersError {
    #[error("cannot read answers file '{path}': {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diags),
}

impl Answers {
    pub fn load(path: &Path, rb: &Runbook) -> Result<Answers, AnswersError> {
        let text = std::fs::read_to_string(path).map_err(|source| AnswersError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), rb).map_err(AnswersError::Invalid)
    }

    pub fn parse(text: &str, file: &str, rb: &Runbook) -> Result<Answers, Diags> {
        let raw: RawAnswers = toml::from_str(text).map_err(|e| {
            Diags(vec![Diag::at(
                file,
                text,
                e.span(),
                None,
                clean_message(e.message()),
            )])
        })?;
        let mut diags = Vec::new();
        let mut at = |span: std::ops::Range<usize>, key: &str, msg: String| {
            diags.push(Diag::at(file, text, Some(span), Some(key), msg));
        };
        let mut a = Answers {
            file: file.to_string(),
            ..Default::default()
        };
        let names = |v: Vec<&str>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|s| format!("'{s}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        for (k, v) in raw.params {
            if rb.param(&k).is_none() {
                at(
                    v.span(),
                    &k,
                    format!(
                        "runbook '{}' has no parameter '{k}' (it has: {})",
                        rb.id,
                        names(rb.params.iter().map(|p| p.name.as_str()).collect())
                    ),
                );
                continue;
            }
            let text = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d) => d.to_string(),
                toml::Value::Integer(i) => i.to_string(),
                _ => {
                    at(v.span(), &k, "expected a string".into());
                    continue;
                }
            };
            a.params.insert(k, text);
        }
        // Destructive steps, and recover-pitr steps (a moved target is confirmed by a phrase).
        let destructive: Vec<&str> = rb
            .steps
            .iter()
            .filter(|s| s.destructive || s.action == Action::RecoverPitr)
            .map(|s| s.id.as_str())
            .collect();
        for (k, v) in raw.confirm {
            if !destructive.contains(&k.as_str()) {
                at(
                    v.span(),
                    &k,
                    format!(
                        "'{k}' is not a step that asks for a typed confirmation in runbook '{}' (those are: {})",
                        rb.id,
                        names(destructive.clone())
                    ),
                );
                continue;
            }
            a.confirm.insert(k, v.into_inner());
        }
        let snapshots: Vec<&str> = rb
            .steps
            .iter()
            .filter(|s| s.action == Action::Snapshot)
            .map(|s| s.id.as_str())
            .collect();
        for (k, v) in raw.overrides {
            if !snapshots.contains(&k.as_str()) {
                at(
                    v.span(),
                    &k,
                    format!(
                        "'{k}' is not a snapshot step of runbook '{}' (those are: {}); overrides only answer a failed snapshot",
                        rb.id,
                        names(snapshots.clone())
                    ),
                );
                continue;
            }
            a.overrides.insert(k, v.into_inner());
        }
        for (k, v) in raw.interrupted {
            if rb.step(&k).is_none() {
                at(
                    v.span(),
                    &k,
                    format!("runbook '{}' has no step '{k}'", rb.id),
                );
                continue;
            }
            a.interrupted.insert(k, v.into_inner());
        }
        if let Some(sp) = raw.stop_plan {
            let span = sp.span();
            let sp = sp.into_inner();
            for sel in sp.add.iter().chain(&sp.remove) {
                let bad = match sel.split_once(':') {
                    _ if sel.trim().is_empty() => Some("an empty selector"),
                    Some(("pid", n)) if n.parse::<u32>().map_or(true, |n| n == 0) => {
                        Some("'pid:' needs a process id (digits)")
                    }
                    Some(("unit", u)) if u.trim().is_empty() => Some("'unit:' needs a unit name"),
                    _ => None,
                };
                if let Some(why) = bad {
                    at(
                        span.clone(),
                        "stop_plan",
                        format!("[stop_plan] '{sel}': {why} (selectors: NAME, pid:N, unit:NAME)"),
                    );
                }
            }
            a.stop_plan = sp;
        }
        if let Some(p) = raw.pick {
            let span = p.span();
            let p = p.into_inner();
            let picks: Vec<&str> = rb
                .steps
                .iter()
                .filter(|s| s.action == Action::PickBackup)
                .map(|s| s.id.as_str())
                .collect();
            let step = match (&p.step, picks.as_slice()) {
                (Some(s), _) if picks.contains(&s.get_ref().as_str()) => Some(s.get_ref().clone()),
                (Some(s), _) => {
                    at(
                        s.span(),
                        "step",
                        format!(
                            "'{}' is not a pick-backup step of runbook '{}' (those are: {})",
                            s.get_ref(),
                            rb.id,
                            names(picks.clone())
                        ),
                    );
                    None
                }
                (None, [one]) => Some(one.to_string()),
                (None, []) => {
                    at(
                        span.clone(),
                        "pick",
                        format!(
                            "runbook '{}' has no pick-backup step: there is no backup to choose",
                            rb.id
                        ),
                    );
                    None
                }
                (None, _) => {
                    at(
                        span.clone(),
                        "pick",
                        format!(
                            "runbook '{}' has several pick-backup steps ({}): name one with step = \"...\"",
                            rb.id,
                            names(picks.clone())
                        ),
                    );
                    None
                }
            };
            if p.backup.get_ref().trim().is_empty() {
                at(
                    p.backup.span(),
                    "backup",
                    "names no backup (a candidate's file name)".into(),
                );
            }
            if p.reason.get_ref().trim().is_empty() {
                at(
                    p.reason.span(),
                    "reason",
                    "is empty: say why this backup and not the preselected one (it is journaled)"
                        .into(),
                );
            }
            let loc = Diag::at(file, text, Some(p.backup.span()), None, String::new());
            if let Some(step) = step {
                a.pick = Some(PickAnswer {
                    step,
                    choice: BackupChoice {
                        name: p.backup.get_ref().trim().to_string(),
                        reason: p.reason.get_ref().trim().to_string(),
                        typed: p.confirm.map(|t| t.trim().to_string()),
                        source: format!("answers file {}:{}:{}", loc.file, loc.line, loc.col),
                    },
                });
            }
        }
        if diags.is_empty() {
            Ok(a)
        } else {
            diags.sort_by_key(|d| (d.line, d.col));
            Err(Diags(diags))
        }
    }
}

/// The headless operator: answers from the file, nothing else.
pub struct AnswersOperator {
    pub answers: Answers,
}

impl Operator for AnswersOperator {
    fn confirm(&mut self, q: &ConfirmRequest) -> impl Future<Output = Reply> + Send {
        // `[pick]`: a restore still holding the preselection gets the
        // choice first (the engine asks again, naming the chosen backup).
        let choose = match (&self.answers.pick, &q.backup) {
            (Some(p), Some(b)) if b.reason.is_none() && p.step == b.pick_step => {
                Some(p.choice.clone())
            }
            _ => None,
        };
        let a = match choose {
            Some(c) => Reply::Choose(c),
            None => Reply::Typed(self.answers.confirm.get(&q.step).cloned()),
        };
        async move { a }
    }
    fn override_snapshot(
        &mut self,
        q: &OverrideRequest,
    ) -> impl Future<Output = Option<String>> + Send {
        let a = self.answers.overrides.get(&q.step).cloned();
        async move { a }
    }
    fn interrupted(
        &mut self,
        q: &InterruptedRequest,
    ) -> impl Future<Output = Option<Decision>> + Send {
        let a = self.answers.interrupted.get(&q.step).copied();
        async move { a }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RB: &str = "id = \"t\"\ntitle = \"T\"\nwhen = \"w\"\n[[step]]\nid = \"pick\"\naction = \"pick-backup\"\nexplain = \"p\"\ncatalog = \"c\"\n[[step]]\nid = \"look\"\naction = \"note\"\nexplain = \"n\"\n";

    fn rb(text: &str) -> Runbook {
        Runbook::parse(text, "t.toml").unwrap()
    }

    #[test]
    fn pick_names_the_backup_the_reason_and_where_it_was_written() {
        let a = Answers::parse(
            "[pick]\nbackup = \"b.sql\"\nreason = \"why\"\nconfirm = \"b.sql\"\n",
            "a.toml",
            &rb(RB),
        )
        .unwrap();
        let p = a.pick.unwrap();
        assert_eq!(p.step, "pick");
        assert_eq!(p.choice.name, "b.sql");
        assert_eq!(p.choice.reason, "why");
        assert_eq!(p.choice.typed.as_deref(), Some("b.sql"));
        assert_eq!(p.choice.source, "answers file a.toml:2:10");
    }

    #[test]
    fn pick_errors_have_file_line_col() {
        // Not a pick-backup step; an empty reason; an unknown key.
        let e = Answers::parse(
            "[pick]\nstep = \"look\"\nbackup = \"b.sql\"\nreason = \"\"\n",
            "a.toml",
            &rb(RB),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a.toml:2:8") && e.contains("'look' is not a pick-backup step"),
            "{e}"
        );
        assert!(e.contains("a.toml:4:10") && e.contains("say why"), "{e}");
        let e = Answers::parse(
            "[pick]\nbackup = \"b\"\nreason = \"r\"\nbakup = 1\n",
            "a.toml",
            &rb(RB),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("a.toml:4:1") && e.contains("bakup"), "{e}");
        // A runbook without a pick-backup step has no backup to choose.
        let no_pick = "id = \"t\"\ntitle = \"T\"\nwhen = \"w\"\n[[step]]\nid = \"look\"\naction = \"note\"\nexplain = \"n\"\n";
        let e = Answers::parse(
            "[pick]\nbackup = \"b\"\nreason = \"r\"\n",
            "a.toml",
            &rb(no_pick),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("a.toml:1:1") && e.contains("no pick-backup step"),
            "{e}"
        );
    }
}
