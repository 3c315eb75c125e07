//! TOML -> `Runbook`, collecting every problem with its file:line:col.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::template::{Template, valid_name};
use super::{
    Action, DEFAULT_HOLD_S, Located, Param, ParamFrom, ParamKind, PathChoice, Requirement, Runbook,
    Step,
};
use crate::diag::{Diag, Diags, clean_message};
use crate::journal::sha256_hex;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    name: Spanned<String>,
    kind: ParamKind,
    from: ParamFrom,
    default: Option<Spanned<String>>,
    explain: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Spanned<String>,
    action: Spanned<Action>,
    explain: Spanned<String>,
    destructive: Option<Spanned<bool>>,
    #[serde(default)]
    requires: Vec<Spanned<Requirement>>,
    timeout_s: Option<Spanned<u64>>,
    host: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    services: Option<Spanned<Vec<Spanned<String>>>>,
    hold_s: Option<Spanned<u64>>,
    sql: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    catalog: Option<Spanned<String>>,
    /// A number of connections, or a template naming a parameter ("{jobs}").
    jobs: Option<Spanned<toml::Value>>,
    text: Option<Spanned<String>>,
    incident_at: Option<Spanned<String>>,
    backup: Option<Spanned<String>>,
    restored: Option<Spanned<String>>,
    compare_to: Option<Spanned<String>>,
    tables: Option<Spanned<String>>,
    replace: Option<Spanned<Vec<String>>>,
    policy: Option<Spanned<String>>,
    transaction: Option<Spanned<String>>,
    archive: Option<Spanned<String>>,
    healthy_at: Option<Spanned<String>>,
    damaged_at: Option<Spanned<String>>,
    force: Option<Spanned<String>>,
    target: Option<Spanned<String>>,
    /// `pitr` or `dump`: the step runs only on that path (a choose-path step decides).
    path: Option<Spanned<String>>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    diags: Vec<Diag>,
}

impl Ctx<'_> {
    fn err(&mut self, span: Range<usize>, key: &str, msg: impl Into<String>) {
        self.diags
            .push(Diag::at(self.file, self.text, Some(span), Some(key), msg));
    }
}

pub(super) fn parse(text: &str, file: &str) -> Result<Runbook, Diags> {
    let mut cx = Ctx {
        file,
        text,
        diags: Vec::new(),
    };
    let (doc, errors) = DeTable::parse_recoverable(text);
    for e in errors {
        cx.diags.push(Diag::at(
            file,
            text,
            e.span(),
            None,
            format!("TOML syntax: {}", clean_message(e.message())),
        ));
    }
    if !cx.diags.is_empty() {
        return Err(Diags(cx.diags));
    }
    let doc_span = doc.span();
    let mut id: Option<Spanned<String>> = None;
    let mut title = None;
    let mut when = None;
    let mut raw_params: Vec<(Range<usize>, RawParam)> = Vec::new();
    let mut raw_steps: Vec<(Range<usize>, RawStep)> = Vec::new();
    for (key, value) in doc.into_inner() {
        let k = key.get_ref().to_string();
        match k.as_str() {
            "id" | "title" | "when" => {
                let span = value.span();
                match value.get_ref() {
                    DeValue::String(s) if !s.trim().is_empty() => {
                        let v = Spanned::new(span, s.to_string());
                        match k.as_str() {
                            "id" => id = Some(v),
                            "title" => title = Some(v.into_inner()),
                            _ => when = Some(v.into_inner()),
                        }
                    }
                    DeValue::String(_) => cx.err(span, &k, "is empty; say it in words"),
                    _ => cx.err(span, &k, "expected a string"),
                }
            }
            "param" => entries(&mut cx, &k, value, &mut raw_params),
            "step" => entries(&mut cx, &k, value, &mut raw_steps),
            other => cx.err(
                key.span(),
                other,
                "unknown top-level key; expected id, title, when, [[param]] or [[step]]",
            ),
        }
    }
    let top = doc_span.start..doc_span.start;
    let missing = |cx: &mut Ctx, k: &str, what: &str| {
        cx.err(
            top.clone(),
            k,
            format!("missing: add `{k} = \"...\"` ({what})"),
        );
    };
    if id.is_none() {
        missing(&mut cx, "id", "the name runbooks are run by");
    }
    if title.is_none() {
        missing(&mut cx, "title", "one line shown in lists");
    }
    if when.is_none() {
        missing(&mut cx, "when", "when an operator should pick this runbook");
    }
    if let Some(i) = &id
        && !valid_name(i.get_ref())
    {
        cx.err(
            i.span(),
            "id",
            format!(
                "'{}' is not a valid id: use letters, digits, '-' and '_'",
                i.get_ref()
            ),
        );
    }

    let params = convert_params(&mut cx, raw_params);
    let steps = convert_steps(&mut cx, raw_steps, &params);
    if steps.is_empty() && cx.diags.is_empty() {
        cx.err(top.clone(), "step", "a runbook needs at least one [[step]]");
    }
    if !cx.diags.is_empty() {
        let mut d = cx.diags;
        d.sort_by_key(|d| (d.line, d.col));
        return Err(Diags(d));
    }
    Ok(Runbook {
        id: id.map(Spanned::into_inner).unwrap_or_default(),
        title: title.unwrap_or_default(),
        when: when.unwrap_or_default(),
        params,
        steps,
        file: file.to_string(),
        text: text.to_string(),
        sha256: sha256_hex(text.as_bytes()),
    })
}

fn entries<T: for<'de> Deserialize<'de>>(
    cx: &mut Ctx,
    key: &str,
    value: Spanned<DeValue<'_>>,
    out: &mut Vec<(Range<usize>, T)>,
) {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        cx.err(
            span,
            key,
            format!("expected an array of tables: write [[{key}]]"),
        );
        return;
    };
    for item in items {
        let ispan = item.span();
        match T::deserialize(item.into_deserializer()) {
            Ok(v) => out.push((ispan, v)),
            Err(e) => {
                let span = e.span().unwrap_or(ispan);
                let k = key_at(cx.text, span.start);
                cx.diags.push(Diag::at(
                    cx.file,
                    cx.text,
                    Some(span),
                    k.as_deref().or(Some(key)),
                    clean_message(e.message()),
                ));
            }
        }
    }
}

/// The `key` of a `key = value` line containing byte `pos`.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let start = text.get(..pos)?.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[start..].lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.contains(['[', ' '])).then(|| k.to_string())
}

fn convert_params(cx: &mut Ctx, raw: Vec<(Range<usize>, RawParam)>) -> Vec<Param> {
    let mut out: Vec<Param> = Vec::new();
    for (span, p) in raw {
        let name = p.name.get_ref().clone();
        if !valid_name(&name) {
            cx.err(
                p.name.span(),
                "name",
                format!("'{name}' is not a valid parameter name: use letters, digits, '-' and '_'"),
            );
        }
        if out.iter().any(|q| q.name == name) {
            cx.err(
                p.name.span(),
                "name",
                format!("parameter '{name}' is declared twice"),
            );
        }
        if let Some(d) = &p.default
            && p.kind == ParamKind::Time
            && chrono::DateTime::parse_from_rfc3339(d.get_ref()).is_err()
        {
            cx.err(
                d.span(),
                "default",
                format!(
                    "'{}' is not an RFC 3339 time (e.g. 2026-11-23T12:42:00Z)",
                    d.get_ref()
                ),
            );
        }
        if p.from == ParamFrom::Timeline && !matches!(p.kind, ParamKind::Time | ParamKind::Text) {
            cx.err(
                p.name.span(),
                "from",
                format!(
                    "parameter '{name}' is a {}; only a time (the first drop) or a text (the tables that dropped) can come from the timeline",
                    p.kind.as_str()
                ),
            );
        }
        out.push(Param {
            name,
            kind: p.kind,
            from: p.from,
            default: p.default.map(|d| Located {
                span: d.span(),
                value: d.into_inner(),
            }),
            explain: p.explain,
            span,
        });
    }
    out
}

/// Which argument keys a raw step set, with their spans.
fn present(s: &RawStep) -> Vec<(&'static str, Range<usize>)> {
    let mut v = Vec::new();
    macro_rules! p {
        ($($f:ident),*) => {$(
            if let Some(x) = &s.$f { v.push((stringify!($f), x.span())); }
        )*};
    }
    p!(
        host,
        database,
        services,
        hold_s,
        sql,
        command,
        catalog,
        jobs,
        text,
        incident_at,
        backup,
        restored,
        compare_to,
        tables,
        replace,
        policy,
        transaction,
        archive,
        healthy_at,
        damaged_at,
        force,
        target
    );
    v
}

fn tpl(cx: &mut Ctx, key: &str, v: Option<Spanned<String>>) -> Option<Located<Template>> {
    let v = v?;
    let span = v.span();
    match Template::parse(v.get_ref()) {
        Ok(t) => Some(Located { value: t, span }),
        Err(e) => {
            cx.err(span, key, e);
            None
        }
    }
}

fn convert_steps(cx: &mut Ctx, raw: Vec<(Range<usize>, RawStep)>, params: &[Param]) -> Vec<Step> {
    let param_names: BTreeSet<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let mut steps: Vec<Step> = Vec::new();
    // Step id -> action, for references to earlier steps.
    let mut earlier: BTreeMap<String, Action> = BTreeMap::new();
    // Step id -> the paths it runs on (None: every path).
    let mut paths_of: BTreeMap<String, Vec<Option<PathChoice>>> = BTreeMap::new();
    // The choose-path step, once seen.
    let mut chooser: Option<String> = None;
    for (span, s) in raw {
        let action = *s.action.get_ref();
        let id = s.id.get_ref().clone();
        if !valid_name(&id) {
            cx.err(
                s.id.span(),
                "id",
                format!("'{id}' is not a valid step id: use letters, digits, '-' and '_'"),
            );
        }
        let path = step_path(cx, &s, &id, action, chooser.as_deref());
        if let Some(before) = paths_of.get(&id) {
            let disjoint = path.is_some() && before.iter().all(|p| p.is_some() && *p != path);
            if !disjoint {
                cx.err(
                    s.id.span(),
                    "id",
                    format!(
                        "step id '{id}' is used twice; two steps may share an id only when their `path` values differ (one \"pitr\", one \"dump\")"
                    ),
                );
            } else if earlier.get(&id) != Some(&action) {
                cx.err(
                    s.action.span(),
                    "action",
                    format!(
                        "step id '{id}' is shared by a {} step and a {action} step: steps sharing an id (one per path) must have the same action, so '{{{id}.field}}' means one thing",
                        earlier.get(&id).map(|a| a.as_str()).unwrap_or("?")
                    ),
                );
            }
        }
        if action == Action::ChoosePath {
            if let Some(first) = &chooser {
                cx.err(
                    s.id.span(),
                    "action",
                    format!("step '{id}': a runbook has at most one choose-path step ('{first}' is the first)"),
                );
            } else {
                chooser = Some(id.clone());
            }
        }
        if param_names.contains(id.as_str()) {
            cx.err(
                s.id.span(),
                "id",
                format!("step id '{id}' is also a parameter name; rename one so '{{{id}}}' is unambiguous"),
            );
        }
        let allowed = action.args();
        let given = present(&s);
        for (k, sp) in &given {
            if !allowed.contains(k) {
                cx.err(
                    sp.clone(),
                    k,
                    format!(
                        "a {action} step takes no '{k}' (it takes: {})",
                        if allowed.is_empty() {
                            "nothing besides id, action, explain".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                );
            }
        }
        for k in action.required_args() {
            if !given.iter().any(|(g, _)| g == k) {
                cx.err(
                    s.id.span(),
                    k,
                    format!("step '{id}': a {action} step needs '{k}'"),
                );
            }
        }
        if matches!(action, Action::StopServices | Action::StartServices)
            && s.database.is_none()
            && s.services.is_none()
        {
            cx.err(
                s.id.span(),
                "database",
                format!(
                    "step '{id}': name the 'database' whose writers to {}, or list 'services'",
                    if action == Action::StopServices {
                        "stop"
                    } else {
                        "start"
                    }
                ),
            );
        }
        if action == Action::Restore && s.catalog.is_none() && !backup_from_pitr(&s, &earlier) {
            cx.err(
                s.id.span(),
                "catalog",
                format!(
                    "step '{id}': a restore step needs 'catalog' (the backup catalog it reads from), unless its 'backup' is an earlier recover-pitr step's dump, e.g. \"{{pitr.dump}}\""
                ),
            );
        }
        if action == Action::Probe && s.database.is_none() && s.host.is_none() {
            cx.err(
                s.id.span(),
                "host",
                format!("step '{id}': a probe needs a 'host' or a 'database' to look at"),
            );
        }
        if s.explain.get_ref().trim().is_empty() {
            cx.err(
                s.explain.span(),
                "explain",
                "is empty: say in words what this step does and why",
            );
        }
        let destructive = match (action.forced_destructive(), &s.destructive) {
            (Some(forced), Some(d)) if *d.get_ref() != forced => {
                cx.err(
                    d.span(),
                    "destructive",
                    format!(
                        "a {action} step is always {}; remove this line",
                        if forced {
                            "destructive"
                        } else {
                            "non-destructive"
                        }
                    ),
                );
                forced
            }
            (Some(forced), _) => forced,
            (None, Some(d)) => *d.get_ref(),
            (None, None) => action.default_destructive(),
        };
        if destructive && s.database.is_none() {
            cx.err(
                s.id.span(),
                "database",
                format!(
                    "step '{id}' is destructive but names no 'database': the operator confirms a destructive step by typing the database it puts at risk"
                ),
            );
        }
        let mut requires: Vec<Requirement> = Vec::new();
        for r in &s.requires {
            if !requires.contains(r.get_ref()) {
                requires.push(*r.get_ref());
            }
        }
        for r in action.forced_requires() {
            if !requires.contains(r) {
                requires.push(*r);
            }
        }
        let services = match s.services {
            Some(list) => list
                .into_inner()
                .into_iter()
                .filter_map(|x| tpl(cx, "services", Some(x)))
                .collect(),
            None => Vec::new(),
        };
        let step = Step {
            id: id.clone(),
            action,
            explain: s.explain.get_ref().clone(),
            destructive,
            requires,
            host: tpl(cx, "host", s.host),
            database: tpl(cx, "database", s.database),
            services,
            hold_s: s.hold_s.map(Spanned::into_inner).unwrap_or(DEFAULT_HOLD_S),
            sql: s.sql.map(Spanned::into_inner),
            command: tpl(cx, "command", s.command),
            catalog: tpl(cx, "catalog", s.catalog),
            jobs: match s.jobs.as_ref().map(|j| (j.span(), j.get_ref())) {
                Some((_, toml::Value::Integer(n))) if *n >= 1 && *n <= u32::MAX as i64 => {
                    Some(*n as u32)
                }
                _ => None,
            },
            jobs_from: match s.jobs.as_ref().map(|j| (j.span(), j.get_ref())) {
                Some((span, toml::Value::String(t))) => tpl(
                    cx,
                    "jobs",
                    Some(Spanned::new(span, t.clone())),
                ),
                Some((_, toml::Value::Integer(n))) if *n >= 1 && *n <= u32::MAX as i64 => None,
                Some((span, other)) => {
                    cx.err(
                        span,
                        "jobs",
                        format!(
                            "'{other}' is not a number of connections: write 1 or more, or a parameter such as \"{{jobs}}\""
                        ),
                    );
                    None
                }
                None => None,
            },
            text: tpl(cx, "text", s.text).map(|t| t.value),
            incident_at: tpl(cx, "incident_at", s.incident_at),
            backup: tpl(cx, "backup", s.backup),
            restored: tpl(cx, "restored", s.restored),
            compare_to: s.compare_to.as_ref().map(|c| c.get_ref().clone()),
            tables: tpl(cx, "tables", s.tables),
            replace: s.replace.map(Spanned::into_inner).unwrap_or_default(),
            policy: s.policy.and_then(|p| {
                let v = crate::engine::types::MergePolicy::parse(p.get_ref());
                if v.is_none() {
                    cx.err(
                        p.span(),
                        "policy",
                        format!("'{}' is not a merge policy: use 'live-wins' (the default) or 'restored-wins'", p.get_ref()),
                    );
                }
                v
            }),
            transaction: s.transaction.and_then(|p| {
                let v = crate::engine::types::MergeTx::parse(p.get_ref());
                if v.is_none() {
                    cx.err(
                        p.span(),
                        "transaction",
                        format!("'{}' is not a transaction mode: use 'one' (the default), 'per-table' or 'batches'", p.get_ref()),
                    );
                }
                v
            }),
            archive: tpl(cx, "archive", s.archive),
            healthy_at: tpl(cx, "healthy_at", s.healthy_at),
            damaged_at: tpl(cx, "damaged_at", s.damaged_at),
            force: tpl(cx, "force", s.force),
            target: tpl(cx, "target", s.target),
            path,
            timeout_s: s.timeout_s.map(Spanned::into_inner),
            span,
        };
        if let Some(c) = &s.compare_to {
            match earlier.get(c.get_ref()) {
                Some(Action::Verify) => {}
                _ => cx.err(
                    c.span(),
                    "compare_to",
                    format!(
                        "'{}' is not an earlier verify step; compare_to names the verify step whose row counts are the baseline",
                        c.get_ref()
                    ),
                ),
            }
        }
        check_refs(cx, &step, params, &earlier);
        check_path_refs(cx, &step, &paths_of, chooser.is_some());
        check_requirements(cx, &step, &steps, &s.requires, chooser.is_some());
        earlier.insert(id.clone(), action);
        paths_of.entry(id).or_default().push(path);
        steps.push(step);
    }
    steps
}

/// The step's `path`, checked: a known value, after the choose-path step, not on it.
fn step_path(
    cx: &mut Ctx,
    s: &RawStep,
    id: &str,
    action: Action,
    chooser: Option<&str>,
) -> Option<PathChoice> {
    let p = s.path.as_ref()?;
    let Some(v) = PathChoice::parse(p.get_ref()) else {
        cx.err(
            p.span(),
            "path",
            format!(
                "'{}' is not a path: use \"pitr\" (recovery from a WAL archive) or \"dump\" (restore of a dump)",
                p.get_ref()
            ),
        );
        return None;
    };
    if action == Action::ChoosePath {
        cx.err(
            p.span(),
            "path",
            format!("step '{id}': the choose-path step decides the path; it cannot belong to one"),
        );
        return None;
    }
    if chooser.is_none() {
        cx.err(
            p.span(),
            "path",
            format!(
                "step '{id}' has path = \"{v}\" but no earlier choose-path step decides the path: add one before it"
            ),
        );
    }
    Some(v)
}

/// The paths a step runs on: its own, or every path when the runbook has a chooser.
fn runs_on(path: Option<PathChoice>, has_paths: bool) -> Vec<Option<PathChoice>> {
    match (path, has_paths) {
        (Some(p), _) => vec![Some(p)],
        (None, true) => PathChoice::ALL.iter().map(|p| Some(*p)).collect(),
        (None, false) => vec![None],
    }
}

/// True when a step on `paths` (one entry per path the earlier step id runs on) ran on `on`.
fn available(paths: &[Option<PathChoice>], on: Option<PathChoice>) -> bool {
    paths
        .iter()
        .any(|p| p.is_none() || on.is_none() || *p == on)
}

/// A reference to an earlier step's outcome must name a step that runs on
/// every path the referring step runs on: `{pick.backup.path}` from a step
/// of both paths would fail on the pitr path, where pick never ran.
fn check_path_refs(
    cx: &mut Ctx,
    step: &Step,
    paths_of: &BTreeMap<String, Vec<Option<PathChoice>>>,
    has_paths: bool,
) {
    let mut args: Vec<(&str, &Located<Template>)> = Vec::new();
    for (k, a) in [
        ("command", &step.command),
        ("incident_at", &step.incident_at),
        ("backup", &step.backup),
        ("jobs", &step.jobs_from),
        ("restored", &step.restored),
        ("tables", &step.tables),
        ("healthy_at", &step.healthy_at),
        ("damaged_at", &step.damaged_at),
        ("force", &step.force),
        ("target", &step.target),
    ] {
        if let Some(a) = a {
            args.push((k, a));
        }
    }
    let text = step.text.as_ref().map(|t| Located {
        value: t.clone(),
        span: step.span.clone(),
    });
    if let Some(t) = &text {
        args.push(("text", t));
    }
    for (key, arg) in args {
        for (name, _) in arg.value.refs() {
            let Some(paths) = paths_of.get(name) else {
                continue;
            };
            for on in runs_on(step.path, has_paths) {
                if !available(paths, on) {
                    let only = paths
                        .iter()
                        .flatten()
                        .map(|p| format!("\"{p}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    cx.err(
                        arg.span.clone(),
                        key,
                        format!(
                            "step '{}' uses '{{{name}...}}', but step '{name}' runs only on path {only} and this step also runs on path \"{}\": give it `path = {only}` or refer to a step of every path",
                            step.id,
                            on.map(|p| p.as_str()).unwrap_or("?")
                        ),
                    );
                    break;
                }
            }
        }
    }
}

/// A restore's `backup` that is exactly `{STEP.dump}` of an earlier recover-pitr step.
fn backup_from_pitr(s: &RawStep, earlier: &BTreeMap<String, Action>) -> bool {
    let Some(b) = &s.backup else { return false };
    let Ok(t) = Template::parse(b.get_ref()) else {
        return false;
    };
    let refs: Vec<(&str, &[String])> = t.refs().collect();
    let [(name, path)] = refs.as_slice() else {
        return false;
    };
    b.get_ref().trim() == format!("{{{name}.dump}}")
        && path.len() == 1
        && path[0] == "dump"
        && earlier.get(*name) == Some(&Action::RecoverPitr)
}

/// Every `{ref}` names a parameter or an earlier step's outcome field;
/// inventory-valued arguments may only use parameters.
fn check_refs(cx: &mut Ctx, step: &Step, params: &[Param], earlier: &BTreeMap<String, Action>) {
    let mut args: Vec<(&str, &Located<Template>, bool)> = Vec::new();
    for (k, a) in [
        ("host", &step.host),
        ("database", &step.database),
        ("catalog", &step.catalog),
        ("archive", &step.archive),
    ] {
        if let Some(a) = a {
            args.push((k, a, true));
        }
    }
    for s in &step.services {
        args.push(("services", s, true));
    }
    for (k, a) in [
        ("command", &step.command),
        ("incident_at", &step.incident_at),
        ("backup", &step.backup),
        ("jobs", &step.jobs_from),
        ("restored", &step.restored),
        ("tables", &step.tables),
        ("healthy_at", &step.healthy_at),
        ("damaged_at", &step.damaged_at),
        ("force", &step.force),
        ("target", &step.target),
    ] {
        if let Some(a) = a {
            args.push((k, a, false));
        }
    }
    let text_span = step.span.clone();
    let text_ref = step.text.as_ref().map(|t| Located {
        value: t.clone(),
        span: text_span,
    });
    if let Some(t) = &text_ref {
        args.push(("text", t, false));
    }
    for (key, arg, params_only) in args {
        for (name, path) in arg.value.refs() {
            if let Some(p) = params.iter().find(|p| p.name == name) {
                let ok_fields: &[&str] = match p.kind {
                    ParamKind::Database => &["dbname", "target", "host", "port"],
                    ParamKind::Host => &["address"],
                    _ => &[],
                };
                if let Some(f) = path.first()
                    && (!ok_fields.contains(&f.as_str()) || path.len() > 1)
                {
                    cx.err(
                        arg.span.clone(),
                        key,
                        format!(
                            "'{{{name}.{}}}': a {} parameter has {}",
                            path.join("."),
                            p.kind.as_str(),
                            if ok_fields.is_empty() {
                                "no fields".to_string()
                            } else {
                                format!("only the fields {}", ok_fields.join(", "))
                            }
                        ),
                    );
                }
                continue;
            }
            match earlier.get(name) {
                Some(action) if !params_only => {
                    let Some(field) = path.first() else {
                        cx.err(
                            arg.span.clone(),
                            key,
                            format!(
                                "'{{{name}}}' is a step: name one of its fields, e.g. '{{{name}.{}}}'",
                                action.outputs().and_then(|o| o.first()).unwrap_or(&"field")
                            ),
                        );
                        continue;
                    };
                    if let Some(outs) = action.outputs()
                        && !outs.contains(&field.as_str())
                    {
                        cx.err(
                            arg.span.clone(),
                            key,
                            format!(
                                "step '{name}' ({action}) has no field '{field}' (it has: {})",
                                outs.join(", ")
                            ),
                        );
                    }
                }
                Some(_) => cx.err(
                    arg.span.clone(),
                    key,
                    format!(
                        "'{key}' names an inventory entry, so it may only use parameters, not the outcome of step '{name}'"
                    ),
                ),
                None => cx.err(
                    arg.span.clone(),
                    key,
                    format!(
                        "'{{{name}}}' is neither a parameter nor an earlier step (parameters: {})",
                        if params.is_empty() {
                            "none".to_string()
                        } else {
                            params
                                .iter()
                                .map(|p| format!("'{}'", p.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ),
            }
        }
    }
}

/// A requirement no earlier step can meet is an error now, not a refusal
/// in the middle of an outage.
fn check_requirements(
    cx: &mut Ctx,
    step: &Step,
    before: &[Step],
    declared: &[Spanned<Requirement>],
    has_paths: bool,
) {
    for r in &step.requires {
        let meets_on = |s: &Step, on: Option<PathChoice>| {
            available(&[s.path], on)
                && s.action == r.met_by()
                && (!r.per_database()
                    || match (&s.database, &step.database) {
                        (Some(a), Some(b)) => a.value.raw == b.value.raw,
                        // stop-services by explicit service list: trusted to cover it.
                        (None, _) => s.action == Action::StopServices,
                        _ => false,
                    })
        };
        let unmet_on = runs_on(step.path, has_paths)
            .into_iter()
            .find(|on| !before.iter().any(|s| meets_on(s, *on)));
        if let Some(on) = unmet_on {
            let span = declared
                .iter()
                .find(|d| d.get_ref() == r)
                .map(|d| d.span())
                .unwrap_or(step.span.clone());
            let db = step
                .database
                .as_ref()
                .map(|d| format!(" of database '{}'", d.value.raw))
                .unwrap_or_default();
            let path = on.map(|p| format!(" on path \"{p}\"")).unwrap_or_default();
            cx.err(
                span,
                "requires",
                format!(
                    "step '{}' ({}) requires '{}', but no earlier {} step{db} can provide it{path}: add one before it",
                    step.id,
                    step.action,
                    r.as_str(),
                    r.met_by(),
                ),
            );
        }
    }
}
