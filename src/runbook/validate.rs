//! Runbooks against an inventory: every host, database, catalog and
//! service a runbook names literally (or as a parameter default) exists.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Located, ParamFrom, ParamKind, Runbook, RunbookError, Template, sources};
use crate::diag::Diag;
use crate::inventory::Inventory;

/// Result of checking every runbook.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// (where, id, steps) of the runbooks that passed.
    pub ok: Vec<(String, String, usize)>,
    pub errors: Vec<Diag>,
    /// Not errors: e.g. a runbook that needs a backup catalog the inventory lacks.
    pub warnings: Vec<String>,
}

fn known(names: Vec<&str>) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Errors and warnings of one parsed runbook against `inv`.
pub fn validate_against(rb: &Runbook, inv: &Inventory) -> (Vec<Diag>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let hosts: Vec<&str> = inv.hosts.iter().map(|h| h.name()).collect();
    let dbs: Vec<&str> = inv.databases.iter().map(|d| d.name()).collect();
    let cats: Vec<&str> = inv.backups.iter().map(|c| c.name()).collect();
    let svcs: Vec<&str> = inv.services.iter().map(|s| s.name()).collect();
    let archives: Vec<&str> = inv.archives.iter().map(|a| a.name()).collect();
    let set = |k: ParamKind| -> (&Vec<&str>, &str) {
        match k {
            ParamKind::Host => (&hosts, "host"),
            ParamKind::Database => (&dbs, "database"),
            _ => (&cats, "backup catalog"),
        }
    };
    let mut check =
        |span: std::ops::Range<usize>, key: &str, value: &str, names: &[&str], what: &str| {
            if !names.contains(&value) {
                errors.push(Diag::at(
                    &rb.file,
                    &rb.text,
                    Some(span),
                    Some(key),
                    format!(
                        "no {what} named '{value}' in the inventory (known: {})",
                        known(names.to_vec())
                    ),
                ));
            }
        };
    for p in &rb.params {
        if !matches!(
            p.kind,
            ParamKind::Host | ParamKind::Database | ParamKind::Catalog
        ) {
            continue;
        }
        let (names, what) = set(p.kind);
        if let Some(d) = &p.default {
            check(d.span.clone(), "default", &d.value, names, what);
        } else if p.from == ParamFrom::Inventory && names.is_empty() {
            warnings.push(format!(
                "{}: runbook '{}' needs a {what} (parameter '{}') but the inventory has none; it cannot run with this inventory",
                rb.file, rb.id, p.name
            ));
        }
    }
    let literal = |a: &Option<Located<Template>>| -> Option<(std::ops::Range<usize>, String)> {
        a.as_ref()
            .filter(|a| a.value.is_literal())
            .map(|a| (a.span.clone(), a.value.raw.clone()))
    };
    for s in &rb.steps {
        if let Some((sp, v)) = literal(&s.host) {
            check(sp, "host", &v, &hosts, "host");
        }
        if let Some((sp, v)) = literal(&s.database) {
            check(sp, "database", &v, &dbs, "database");
        }
        if let Some((sp, v)) = literal(&s.catalog) {
            check(sp, "catalog", &v, &cats, "backup catalog");
        }
        if let Some((sp, v)) = literal(&s.archive) {
            check(sp, "archive", &v, &archives, "archive");
        }
        for sv in &s.services {
            if sv.value.is_literal() {
                check(sv.span.clone(), "services", &sv.value.raw, &svcs, "service");
            }
        }
        if let Some(c) = &s.command {
            for r in c.value.raw_refs() {
                let at = Diag::at(
                    &rb.file,
                    &rb.text,
                    Some(c.span.clone()),
                    Some("command"),
                    format!(
                        "step '{}' inserts '{{raw:{r}}}' into its shell command unquoted: a value holding ';', '$()', quotes or a newline runs as shell code; write '{{{r}}}' to have it quoted",
                        s.id
                    ),
                );
                warnings.push(at.to_string());
            }
        }
    }
    (errors, warnings)
}

/// Parses and validates every runbook of `dir` plus the built-in ones.
pub fn check_runbooks(inv: &Inventory, dir: Option<&Path>) -> Result<CheckReport, RunbookError> {
    let mut report = CheckReport::default();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in sources(dir)? {
        match Runbook::parse(&text, &file) {
            Ok(rb) => {
                if let Some(other) = ids.get(&rb.id) {
                    report.errors.push(Diag::at(
                        &file,
                        &text,
                        None,
                        Some("id"),
                        format!(
                            "runbook id '{}' is also used by {other}; ids must be unique",
                            rb.id
                        ),
                    ));
                    continue;
                }
                ids.insert(rb.id.clone(), file.clone());
                let (errors, warnings) = validate_against(&rb, inv);
                report.warnings.extend(warnings);
                if errors.is_empty() {
                    report.ok.push((file, rb.id.clone(), rb.steps.len()));
                } else {
                    report.errors.extend(errors);
                }
            }
            Err(d) => report.errors.extend(d.0),
        }
    }
    Ok(report)
}
