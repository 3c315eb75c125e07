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

/// The time of the first row-count drop journaled (an `alert` record): the
/// last time the rows were seen intact (`data.before_at`, the sample before
/// the drop) when known, else the sample that saw the drop (`data.at`), else
/// when it was journaled. The earliest possible moment of the damage, so a
/// backup taken between the two samples is never taken for a good one.
pub fn first_drop(records: &[Record]) -> Option<DateTime<Utc>> {
    let time = |r: &Record, key: &str| {
        r.data
            .get(key)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    records.iter().find(|r| r.kind == kinds::ALERT).map(|r| {
        time(r, "before_at")
            .or_else(|| time(r, "at"))
            .unwrap_or(r.ts)
    })
}

/// The tables (`schema.name`) of every row-count drop journaled, in the
/// order they were first seen, each once.
pub fn dropped_tables(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records.iter().filter(|r| r.kind == kinds::ALERT) {
        if let Some(t) = r.data.get("table").and_then(Value::as_str)
            && !out.iter().any(|x| x == t)
        {
            out.push(t.to_string());
        }
    }
    out
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
                ParamFrom::Timeline if p.kind == ParamKind::Text => {
                    let tables = dropped_tables(records);
                    if tables.is_empty() {
                        errors.push(format!(
                            "parameter '{}': no row-count drop is journaled for this incident; name the tables with `{} = \"public.User\"` under [params] (comma-separated)",
                            p.name, p.name
                        ));
                        continue;
                    }
                    (Some(tables.join(", ")), "timeline")
                }
                ParamFrom::Timeline => match first_drop(records) {
                    Some(t) => (Some(t.to_rfc3339()), "timeline"),
                    // Late arrival: no alert, the backups' content decides.
                    None if p.kind == ParamKind::Time => {
                        (Some(super::machine::EVIDENCE.to_string()), "evidence")
                    }
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
                if !(source == "evidence" && value == super::machine::EVIDENCE)
                    && DateTime::parse_from_rfc3339(&value).is_err()
                {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(data: Value) -> Record {
        Record {
            seq: 1,
            ts: DateTime::parse_from_rfc3339("2026-12-10T12:43:00Z")
                .unwrap()
                .with_timezone(&Utc),
            incident: "i".into(),
            operator: "op".into(),
            kind: kinds::ALERT.into(),
            step: None,
            target: None,
            command: None,
            exit: None,
            duration_ms: None,
            summary: String::new(),
            data,
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_incident_time_is_the_last_sample_that_saw_the_rows() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let both =
            alert(json!({"at": "2026-12-10T12:42:10Z", "before_at": "2026-12-10T12:42:00Z"}));
        assert_eq!(first_drop(&[both]), Some(t("2026-12-10T12:42:00Z")));
        let at_only = alert(json!({"at": "2026-12-10T12:42:10Z", "before_at": null}));
        assert_eq!(first_drop(&[at_only]), Some(t("2026-12-10T12:42:10Z")));
        let neither = alert(json!({}));
        assert_eq!(first_drop(&[neither]), Some(t("2026-12-10T12:43:00Z")));
    }

    #[test]
    fn the_damaged_tables_are_every_table_that_dropped_once_each() {
        let recs = [
            alert(json!({"table": "public.User"})),
            alert(json!({"table": "public.User Profile \"x\""})),
            alert(json!({"table": "public.User"})),
        ];
        assert_eq!(
            dropped_tables(&recs),
            vec![
                "public.User".to_string(),
                "public.User Profile \"x\"".to_string()
            ]
        );
        assert!(dropped_tables(&[]).is_empty());
    }
}
