//! Parameter values for a run: the answers, else the runbook default, else
//! the only inventory entry of that kind, else the timeline (the first
//! journaled row-count drop). Reads nothing but what it is given.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::machine::{ParamValue, Params};
use crate::inventory::Inventory;
use crate::journal::{Record, kinds};
use crate::runbook::{ParamFrom, ParamKind, Runbook};

fn names_of(inv: &Inventory, kind: ParamKind) -> Vec<&str> {
    match kind {
        ParamKind::Host => inv.hosts.iter().map(|h| h.name()).collect(),
        ParamKind::Database => inv.databases.iter().map(|d| d.name()).collect(),
        ParamKind::Catalog => inv.backups.iter().map(|c| c.name()).collect(),
        ParamKind::Time | ParamKind::Text => Vec::new(),
    }
}

fn list(v: &[&str]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The time of the first row-count drop journaled (an `alert` record):
/// its `data.at` when given, else when it was journaled.
pub fn first_drop(records: &[Record]) -> Option<DateTime<Utc>> {
    records.iter().find(|r| r.kind == kinds::ALERT).map(|r| {
        r.data
            .get("at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(r.ts)
    })
}

/// Resolves every parameter; returns the values found and one message per
/// parameter that has none or a bad one.
pub fn resolve_params(
    rb: &Runbook,
    inv: &Inventory,
    given: &std::collections::BTreeMap<String, String>,
    records: &[Record],
) -> (Params, Vec<String>) {
    let mut out = Params::new();
    let mut errors = Vec::new();
    for p in &rb.params {
        let (value, source) = if let Some(v) = given.get(&p.name) {
            (Some(v.clone()), "answers")
        } else if let Some(d) = &p.default {
            (Some(d.value.clone()), "default")
        } else {
            match p.from {
                ParamFrom::Inventory => {
                    let names = names_of(inv, p.kind);
                    if names.len() == 1 {
                        (Some(names[0].to_string()), "inventory")
                    } else {
                        errors.push(format!(
                            "parameter '{}' ({}): the inventory has {} to choose from ({}); name one with `{} = \"...\"` under [params] in the answers file",
                            p.name,
                            p.kind.as_str(),
                            names.len(),
                            list(&names),
                            p.name
                        ));
                        continue;
                    }
                }
                ParamFrom::Timeline => match first_drop(records) {
                    Some(t) => (Some(t.to_rfc3339()), "timeline"),
                    None => {
                        errors.push(format!(
                            "parameter '{}': no row-count drop is journaled for this incident; give the time with `{} = \"2026-11-23T12:42:00Z\"` under [params]",
                            p.name, p.name
                        ));
                        continue;
                    }
                },
                ParamFrom::Ask => (None, "answers"),
            }
        };
        let Some(value) = value else {
            errors.push(format!(
                "parameter '{}' must be answered: add `{} = \"...\"` under [params] in the answers file{}",
                p.name,
                p.name,
                p.explain
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
            continue;
        };
        match p.kind {
            ParamKind::Host | ParamKind::Database | ParamKind::Catalog => {
                let names = names_of(inv, p.kind);
                if !names.contains(&value.as_str()) {
                    errors.push(format!(
                        "parameter '{}': no {} named '{value}' in the inventory (known: {})",
                        p.name,
                        p.kind.as_str(),
                        list(&names)
                    ));
                    continue;
                }
            }
            ParamKind::Time => {
                if DateTime::parse_from_rfc3339(&value).is_err() {
                    errors.push(format!(
                        "parameter '{}': '{value}' is not an RFC 3339 time (e.g. 2026-11-23T12:42:00Z)",
                        p.name
                    ));
                    continue;
                }
            }
            ParamKind::Text => {}
        }
        out.insert(
            p.name.clone(),
            ParamValue {
                kind: p.kind,
                value,
                source: source.to_string(),
            },
        );
    }
    (out, errors)
}
