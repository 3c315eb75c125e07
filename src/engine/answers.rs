//! The answers file: what a headless run would otherwise ask the operator
//! (parameters, typed confirmations, overrides, what to do with an
//! interrupted step). Checked against the runbook with file:line:col.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::driver::Operator;
use super::events::{ConfirmRequest, InterruptedRequest, OverrideRequest};
use super::machine::Decision;
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
    fn confirm(&mut self, q: &ConfirmRequest) -> impl Future<Output = Option<String>> + Send {
        let a = self.answers.confirm.get(&q.step).cloned();
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
