//! The headless front end: `lifeline run`, `lifeline runbooks` and the
//! runbook half of `lifeline check`. Prints one line per engine event;
//! answers come from the answers file. Never acts outside the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use tokio::sync::broadcast;

use crate::actions::RealActions;
use crate::engine::answers::{Answers, AnswersError, AnswersOperator};
use crate::engine::driver::{Engine, NoJournal, Recorder};
use crate::engine::events::{EngineEvent, Question, RunExit, StepView};
use crate::engine::machine::State;
use crate::engine::session::{RunSpec, open_dry_run, open_live};
use crate::inventory::{Inventory, NO_INVENTORY};
use crate::redact::Redactor;
use crate::runbook::{self, Runbook, RunbookError, runbook_dir, validate_against};
use crate::state::{StateDir, valid_incident_id};

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// What `lifeline run` was given.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    pub runbook: String,
    pub answers: Option<PathBuf>,
    pub dry_run: bool,
    pub incident: Option<String>,
    pub resume: bool,
    pub readonly: bool,
    pub inventory: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub operator: String,
    /// Samples taken before the run by whoever starts it (the lab: its own
    /// count just before the damage), written to a new run's samples
    /// first, so a database gone by now is still known by its OID.
    pub seed_samples: Vec<crate::samples::Sample>,
}

/// `lifeline runbooks`: id, title and when, for every runbook.
pub fn cmd_runbooks() -> u8 {
    let dir = runbook_dir();
    let sources = match runbook::sources(dir.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            crate::errln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut bad = 0;
    for (file, text) in sources {
        match Runbook::parse(&text, &file) {
            Ok(rb) => {
                crate::outln!("{}  {}", rb.id, rb.title);
                for l in rb.when.lines() {
                    crate::outln!("    {}", l.trim());
                }
                crate::outln!(
                    "    {} step(s), from {file}; run: lifeline run {} --answers FILE",
                    rb.steps.len(),
                    rb.id
                );
                crate::outln!();
            }
            Err(d) => {
                bad += 1;
                crate::errln!("{d}");
            }
        }
    }
    if bad > 0 {
        crate::errln!("error: {bad} runbook(s) do not parse; 'lifeline check' lists every problem");
        EXIT_USAGE
    } else {
        0
    }
}

/// The runbook half of `lifeline check`: prints, and returns 0 or 2.
pub fn check_runbooks(inv: &Inventory) -> u8 {
    let dir = runbook_dir();
    let report = match runbook::check_runbooks(inv, dir.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    for w in &report.warnings {
        crate::outln!("warning: {w}");
    }
    for d in &report.errors {
        crate::errln!("{d}");
    }
    if report.errors.is_empty() {
        crate::outln!(
            "ok: {} runbook(s): {}",
            report.ok.len(),
            report
                .ok
                .iter()
                .map(|(_, id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        0
    } else {
        crate::errln!("error: {} problem(s) in the runbooks", report.errors.len());
        EXIT_USAGE
    }
}

fn print_diags(e: &dyn std::fmt::Display, what: &str) {
    crate::errln!("{e}");
    crate::errln!("error: {what}");
}

/// `lifeline run`: returns the exit code.
pub fn cmd_run(args: RunArgs, redactor: Redactor) -> u8 {
    let rt = match crate::runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            crate::errln!("error: cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    rt.block_on(run(args, redactor))
}

fn load_inventory(path: Option<&Path>, redactor: &Redactor) -> Result<Inventory, u8> {
    let Some(path) = path else {
        crate::errln!("{NO_INVENTORY}");
        return Err(EXIT_USAGE);
    };
    match crate::inventory::open(path, redactor) {
        Ok((inv, warnings)) => {
            for w in warnings {
                crate::errln!("warning: {w}");
            }
            Ok(inv)
        }
        Err(e) => {
            for l in e.report(path, Some("")) {
                crate::errln!("{l}");
            }
            Err(EXIT_USAGE)
        }
    }
}

/// Loads a runbook; `fit` also checks it against the inventory.
fn load_runbook(name: &str, inv: &Inventory, fit: bool) -> Result<Runbook, u8> {
    let rb = match runbook::find(name, runbook_dir().as_deref()) {
        Ok(rb) => rb,
        Err(RunbookError::Invalid(d)) => {
            print_diags(&d, &format!("{} problem(s) in runbook '{name}'", d.0.len()));
            return Err(EXIT_USAGE);
        }
        Err(e) => {
            crate::errln!("error: {e}");
            return Err(EXIT_USAGE);
        }
    };
    if !fit {
        return Ok(rb);
    }
    let (errors, warnings) = validate_against(&rb, inv);
    for w in warnings {
        crate::errln!("warning: {w}");
    }
    if !errors.is_empty() {
        for d in &errors {
            crate::errln!("{d}");
        }
        crate::errln!(
            "error: runbook '{}' does not fit the inventory ({} problem(s))",
            rb.id,
            errors.len()
        );
        return Err(EXIT_USAGE);
    }
    Ok(rb)
}

async fn run(args: RunArgs, redactor: Redactor) -> u8 {
    run_outcome(args, redactor, &BTreeMap::new()).await.code
}

/// How a headless run ended: the exit code, and for a live run its
/// incident, journal and exit (the lab scores a drill from them).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: u8,
    pub incident: Option<String>,
    pub journal_path: Option<std::path::PathBuf>,
    pub exit: Option<RunExit>,
}

impl From<u8> for Outcome {
    fn from(code: u8) -> Self {
        Outcome {
            code,
            incident: None,
            journal_path: None,
            exit: None,
        }
    }
}

/// `lifeline run` with parameter values that the answers file leaves out
/// filled from `defaults` (the lab gives its damage time as `incident_at`).
pub async fn run_outcome(
    args: RunArgs,
    redactor: Redactor,
    defaults: &BTreeMap<String, String>,
) -> Outcome {
    // A dry run without an inventory prints the generic plan: the steps as
    // the runbook names its targets (nothing is resolved, nothing is run).
    let generic = args.dry_run && args.inventory.is_none();
    let inv = if generic {
        crate::errln!(
            "note: no inventory: the generic plan of the runbook (targets as the runbook names them; pass -i PATH to resolve them)"
        );
        Inventory::default()
    } else {
        match load_inventory(args.inventory.as_deref(), &redactor) {
            Ok(i) => i,
            Err(c) => return Outcome::from(c),
        }
    };
    let actions = RealActions::new(inv.clone(), redactor.clone());
    let anchor_inv = inv.clone();
    let rb = match load_runbook(&args.runbook, &inv, !generic) {
        Ok(rb) => rb,
        Err(c) => return Outcome::from(c),
    };
    let answers = match &args.answers {
        Some(p) => match Answers::load(p, &rb) {
            Ok(a) => a,
            Err(AnswersError::Invalid(d)) => {
                print_diags(&d, &format!("{} problem(s) in {}", d.0.len(), p.display()));
                return Outcome::from(EXIT_USAGE);
            }
            Err(e) => {
                crate::errln!("error: {e}");
                return Outcome::from(EXIT_USAGE);
            }
        },
        None => Answers::default(),
    };
    let actions = actions.with_stop_plan(answers.stop_plan.clone());
    let mut answers = answers;
    for (k, v) in defaults {
        if rb.param(k).is_some() && !answers.params.contains_key(k) {
            answers.params.insert(k.clone(), v.clone());
        }
    }
    if args.resume && args.incident.is_none() {
        crate::errln!("error: --resume needs --incident ID (the incident whose journal to resume)");
        return Outcome::from(EXIT_USAGE);
    }
    if let Some(id) = &args.incident
        && !valid_incident_id(id)
    {
        crate::errln!(
            "error: '{id}' is not an incident id (letters, digits, '-', '_', '.'; e.g. 20261123-124200-rogue-sync-wipe)"
        );
        return Outcome::from(EXIT_USAGE);
    }
    // Absolute, so snapshot paths in the journal mean the same from anywhere.
    let state_dir = StateDir::new(
        std::path::absolute(&args.state_dir).unwrap_or_else(|_| args.state_dir.clone()),
    );
    let now = Utc::now();

    if args.dry_run {
        let (state, errors) = open_dry_run(
            &rb,
            inv,
            &answers,
            &state_dir,
            args.incident.as_deref(),
            args.readonly,
            now,
        );
        let exit = drive(state, actions, NoJournal, answers, redactor).await;
        // The plan was printed: that is what a dry run is for. Parameters
        // still without a value are named (a live run would ask for them).
        if !errors.is_empty() {
            for e in &errors {
                crate::errln!("warning: {e}");
            }
            crate::errln!(
                "warning: {} parameter(s) without a value: a live run needs them (answers file or prompt)",
                errors.len()
            );
        }
        return Outcome::from(exit.code());
    }

    let databases = inv.databases.clone();
    let mut live = match open_live(RunSpec {
        runbook: &rb,
        inventory: inv,
        answers: &answers,
        state_dir: &state_dir,
        incident: args.incident.as_deref(),
        resume: args.resume,
        retry: None,
        readonly: args.readonly,
        operator: &args.operator,
        inventory_path: args.inventory.as_deref(),
        redactor: &redactor,
        now,
    }) {
        Ok(l) => l,
        Err(e) => {
            for l in &e.lines {
                crate::errln!("error: {l}");
            }
            return Outcome::from(e.code);
        }
    };
    for w in &live.warnings {
        crate::errln!("warning: {w}");
    }
    crate::outln!(
        "incident {}: journal {}",
        live.incident,
        live.journal_path.display()
    );
    if args.resume {
        // Processes an earlier run left frozen (its connection lost) come first.
        let records = crate::journal::read_records(&live.journal_path).unwrap_or_default();
        match crate::actions::hosts::frozen::resume_frozen(&actions, &records, &mut live.journal)
            .await
        {
            Ok(lines) => {
                for l in lines {
                    crate::outln!("{l}");
                }
            }
            Err(e) => {
                crate::errln!("error: {e}; nothing was done");
                return Outcome::from(1);
            }
        }
    }
    // A resumed run was sampled when it started.
    let journal = if args.resume {
        live.journal
    } else {
        let samples = state_dir.samples_path(&live.incident);
        for s in &args.seed_samples {
            if let Err(e) = crate::samples::append(&samples, s) {
                crate::errln!("warning: the sample taken before the run was not kept: {e}");
            }
        }
        let Some(j) = sample_at_start(&databases, live.journal, samples, &redactor).await else {
            crate::errln!(
                "error: the journal could not be taken back after the start-of-run sampling; nothing was done"
            );
            return Outcome::from(EXIT_FAILED);
        };
        j
    };
    let exit = drive(live.state, actions, journal, answers, redactor).await;
    // The journal is closed (its last record a signed checkpoint): anchor its head.
    anchor_heads(&anchor_inv, &live.journal_path).await;
    Outcome {
        code: exit.code(),
        incident: Some(live.incident),
        journal_path: Some(live.journal_path),
        exit: Some(exit),
    }
}

/// Samples every watched database once (every database when none names
/// watched tables) with the timeline's sampler before the first step, and
/// journals what each showed: a run that starts after the damage has the
/// same evidence as the console. A database that does not answer is
/// journaled as such; sampling never stops the run. None only when the
/// journal cannot be taken back from the sampler.
async fn sample_at_start(
    databases: &[crate::inventory::DatabaseSpec],
    journal: crate::journal::Journal,
    samples: PathBuf,
    redactor: &Redactor,
) -> Option<crate::journal::Journal> {
    use crate::journal::{Entry, kinds};
    use serde_json::json;
    let watched: Vec<&crate::inventory::DatabaseSpec> =
        databases.iter().filter(|d| !d.watch.is_empty()).collect();
    let chosen: Vec<&crate::inventory::DatabaseSpec> = if watched.is_empty() {
        databases.iter().collect()
    } else {
        watched
    };
    let shared = std::sync::Arc::new(std::sync::Mutex::new(journal));
    for spec in chosen {
        let round = match crate::timeline::Sampler::from_spec(spec, redactor) {
            Ok(s) => {
                let mut s = s
                    .with_journal(shared.clone())
                    .with_samples_file(samples.clone());
                s.sample_once().await.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        let entry = match round {
            Ok(r) => {
                let t = &r.sample.tables;
                let shown: Vec<String> = t
                    .iter()
                    .filter(|c| c.exact)
                    .chain(t.iter().filter(|c| !c.exact))
                    .take(12)
                    .map(|c| {
                        format!(
                            "{}.{} {}{}",
                            c.schema,
                            c.name,
                            c.rows,
                            if c.exact { "" } else { " (estimate)" }
                        )
                    })
                    .collect();
                let summary = format!(
                    "start of run: database '{}' ({}) sampled: {}",
                    spec.name(),
                    r.sample.identity.address(),
                    if shown.is_empty() {
                        "no tables".to_string()
                    } else {
                        shown.join(", ")
                    }
                );
                if !crate::output::quiet() {
                    crate::outln!("{summary}");
                }
                Entry::new(kinds::NOTE, summary).data(json!({
                    "source": "start-sample",
                    "database": spec.name(),
                    "ts": r.sample.ts,
                    "identity": r.sample.identity,
                    "tables": r.sample.tables,
                }))
            }
            Err(e) => {
                let summary = format!(
                    "start of run: database '{}' could not be sampled: {e}",
                    spec.name()
                );
                if !crate::output::quiet() {
                    crate::outln!("{summary}");
                }
                Entry::new(kinds::NOTE, summary).data(json!({
                    "source": "start-sample",
                    "database": spec.name(),
                    "error": e,
                }))
            }
        };
        let appended = match shared.lock() {
            Ok(mut j) => j.append(entry).map(|_| ()).map_err(|e| e.to_string()),
            Err(_) => Err("journal lock poisoned".to_string()),
        };
        if let Err(e) = appended {
            crate::errln!("warning: cannot journal the start-of-run sample: {e}");
        }
    }
    std::sync::Arc::try_unwrap(shared)
        .ok()
        .and_then(|m| m.into_inner().ok())
}

/// Runs the engine with the real actions, printing its events.
async fn drive<R: Recorder>(
    state: State,
    actions: RealActions,
    recorder: R,
    answers: Answers,
    redactor: Redactor,
) -> RunExit {
    let mut engine = Engine::new(
        state,
        actions,
        recorder,
        AnswersOperator {
            answers: answers.clone(),
        },
        redactor,
    );
    let printer = tokio::spawn(print_events(engine.subscribe(), answers));
    let exit = engine.run(Utc::now()).await;
    drop(engine);
    let _ = printer.await;
    exit
}

fn plan_lines(v: &StepView, n: usize, answers: &Answers) -> Vec<String> {
    let mut out = vec![format!(
        "[{}/{n}] {} ({}){}",
        v.index + 1,
        v.id,
        v.action,
        if v.destructive { " DESTRUCTIVE" } else { "" }
    )];
    out.push(format!("    why: {}", v.explain));
    if let Some(p) = &v.path {
        out.push(format!(
            "    path: runs only when the choose-path step picks '{p}'; skipped (and journaled as skipped) otherwise"
        ));
    }
    if let Some(t) = &v.target {
        out.push(format!("    target: {t}"));
    }
    if !v.requires.is_empty() {
        out.push(format!("    requires: {}", v.requires.join(", ")));
    }
    for p in &v.preview {
        for l in p.lines() {
            out.push(format!("    run: {l}"));
        }
    }
    if let (Some(_), Some(why)) = (&v.path, &v.summary) {
        out.push(format!("    {why}"));
        return out;
    }
    if let Some(e) = &v.error {
        out.push(format!("    CANNOT RESOLVE: {e}"));
    }
    if v.destructive {
        let expected = v.confirm.clone().unwrap_or_default();
        out.push(match answers.confirm.get(&v.id) {
            Some(t) if t.trim() == expected => {
                format!("    confirm: type '{expected}'; the answers file types it")
            }
            Some(t) => format!(
                "    confirm: type '{expected}'; the answers file types '{}': the step would stop",
                t.trim()
            ),
            None => format!(
                "    confirm: type '{expected}'; NOT in the answers file (add `{} = \"{expected}\"` under [confirm]): the step would stop",
                v.id
            ),
        });
    }
    if let Some(p) = answers.pick.as_ref().filter(|p| p.step == v.id) {
        out.push(format!(
            "    [pick]: the restore reads '{}' instead of the preselection ({}), checked against the candidates when the pick has run",
            p.choice.name, p.choice.source
        ));
    }
    out
}

/// Prints one line per event (a dry-run plan step prints its block).
pub async fn print_events(mut rx: broadcast::Receiver<EngineEvent>, answers: Answers) {
    let mut n = 0;
    let mut dry = false;
    let quiet = crate::output::quiet();
    let mut bar = crate::output::Bar::for_stderr();
    let mut tick = tokio::time::interval(crate::output::TICK);
    loop {
        let got = tokio::select! {
            got = rx.recv() => got,
            _ = tick.tick(), if bar.enabled() => {
                bar.draw();
                continue;
            }
        };
        bar.clear();
        if let Ok(ev) = &got {
            bar.observe(ev);
            if quiet && !crate::output::shown_when_quiet(ev) {
                if let EngineEvent::RunStarted { steps, .. } = ev {
                    n = *steps;
                }
                continue;
            }
        }
        let ev = match got {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(k)) => {
                crate::outln!(
                    "... {k} event(s) not shown (the printer fell behind; the journal has them)"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        match ev {
            EngineEvent::RunStarted {
                incident,
                runbook,
                title,
                steps,
                dry_run,
                readonly,
                resumed,
            } => {
                n = steps;
                dry = dry_run;
                let mut flags = Vec::new();
                if dry_run {
                    flags.push("DRY RUN: nothing will be changed");
                }
                if readonly {
                    flags.push("--readonly: probes and notes only");
                }
                if resumed {
                    flags.push("resumed from the journal");
                }
                crate::outln!(
                    "runbook {runbook}: {title} ({steps} step(s), incident {incident}){}",
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", flags.join("; "))
                    }
                );
            }
            EngineEvent::Plan { step } => {
                for l in plan_lines(&step, n, &answers) {
                    crate::outln!("{l}");
                }
            }
            EngineEvent::StepChanged {
                index,
                id,
                action,
                status,
                detail,
            } => crate::outln!(
                "[{}/{n}] {id} ({action}): {}: {detail}",
                index + 1,
                status.as_str()
            ),
            EngineEvent::Output { index, id, line } => {
                crate::outln!("[{}/{n}] {id} | {line}", index + 1)
            }
            // On a terminal the bar shows it.
            EngineEvent::Progress { .. } if bar.enabled() => {}
            EngineEvent::Progress {
                index,
                id,
                done,
                total,
                message,
                ..
            } => crate::outln!(
                "[{}/{n}] {id} .. {done}{} {message}",
                index + 1,
                total.map(|t| format!("/{t}")).unwrap_or_default()
            ),
            EngineEvent::Question { question } => match question {
                Question::Confirm(c) => {
                    for p in &c.preview {
                        for l in p.lines() {
                            crate::outln!("[{}/{n}] {} run: {l}", c.index + 1, c.step);
                        }
                    }
                    if let Some(b) = &c.backup {
                        for l in backup_lines(b) {
                            crate::outln!("[{}/{n}] {} backup: {l}", c.index + 1, c.step);
                        }
                    }
                    crate::outln!(
                        "[{}/{n}] {}: confirm: type '{}' to act on {}",
                        c.index + 1,
                        c.step,
                        c.expected,
                        c.identity.describe()
                    );
                }
                Question::Override(o) => crate::outln!(
                    "[{}/{n}] {}: snapshot failed: type '{}' to go on without one ({})",
                    o.index + 1,
                    o.step,
                    o.phrase,
                    o.reason
                ),
                Question::Interrupted(r) => crate::outln!(
                    "[{}/{n}] {}: interrupted: check before continuing (it was in flight when the last run stopped)",
                    r.index + 1,
                    r.step
                ),
            },
            // A dry run ran nothing: its end is not a run's exit.
            EngineEvent::RunFinished { .. } if dry => {
                crate::outln!("dry run: the plan above; nothing was run or changed");
            }
            EngineEvent::RunFinished { exit, code } => {
                crate::outln!("finished: {} (exit {code})", exit.message());
            }
        }
        bar.draw();
    }
}

/// What a restore's confirmation says of the backup it reads: which one,
/// chosen or preselected, its loss, and what else may be chosen.
fn backup_lines(b: &crate::engine::types::BackupAtStake) -> Vec<String> {
    let span = crate::actions::data::span;
    let taken = b
        .taken_at
        .map(|t| format!("taken {} (from its {})", t.to_rfc3339(), b.time_source))
        .unwrap_or_else(|| "taken at an unknown time".into());
    let loses = b
        .rpo_s
        .map(|r| format!(", loses {} of changes", span(r)))
        .unwrap_or_default();
    let mut out = vec![match &b.reason {
        Some(why) => format!(
            "{} {taken}{loses}; CHOSEN by the operator instead of {}: {why}",
            b.name, b.preselected
        ),
        None => format!("{} {taken}{loses}; preselected by the pick", b.name),
    }];
    out.push(if !b.rows_known {
        "rows lost per table: unknown (the backup's rows were not counted)".into()
    } else if b.rows_lost.is_empty() {
        "rows lost per table: none against the pick's baseline".into()
    } else {
        let l: Vec<String> = b
            .rows_lost
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        format!("rows lost per table: {}", l.join(", "))
    });
    let others: Vec<String> = b
        .eligible
        .iter()
        .filter(|e| e.name != b.name)
        .map(|e| match &e.suspect {
            Some(why) => format!("{} (suspect: {why})", e.name),
            None => e.name.clone(),
        })
        .collect();
    if !others.is_empty() {
        out.push(format!(
            "other eligible backups ([pick] in the answers file): {}",
            others.join(", ")
        ));
    }
    out
}

/// Appends the journal's head to the head log of every SSH host of the
/// inventory (`>>` to `$HOME/.lifeline/heads/<incident>.log`, umask 077), a
/// place the journal's writer does not control. A host that does not take
/// it is a warning: the run has happened either way.
async fn anchor_heads(inv: &Inventory, journal: &std::path::Path) {
    use crate::journal::anchor;
    let last = match crate::journal::read_records(journal) {
        Ok(r) => r.into_iter().last(),
        Err(e) => {
            crate::errln!("warning: head not anchored: {e}");
            return;
        }
    };
    let Some(last) = last else { return };
    if !anchor::remote_enabled() {
        return;
    }
    let line = anchor::line(&last.incident, last.seq, &last.hash, Utc::now());
    let cmd = anchor::remote_command(&last.incident, &line);
    let hosts = crate::transport::Hosts::from_inventory(inv, None);
    for spec in &inv.hosts {
        let name = spec.name.get_ref();
        let Some(h) = hosts.get(name).filter(|h| !h.is_local()) else {
            continue;
        };
        let opts = h.options().timeout(std::time::Duration::from_secs(15));
        match h.exec(&cmd, opts).await {
            Ok(r) if r.success() => crate::outln!(
                "head anchored on {}: seq {} hash {} (~/{}/{}.log)",
                name,
                last.seq,
                last.hash,
                anchor::REMOTE_DIR,
                last.incident
            ),
            Ok(r) => crate::errln!("warning: head not anchored on '{}': {}", name, r.outcome()),
            Err(e) => crate::errln!("warning: head not anchored on '{}': {e}", name),
        }
    }
}
