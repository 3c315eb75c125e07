//! The headless front end: `lifeline run`, `lifeline runbooks` and the
//! runbook half of `lifeline check`. Prints one line per engine event;
//! answers come from the answers file. Never acts outside the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use tokio::sync::broadcast;

use super::answers::{Answers, AnswersError, AnswersOperator};
use super::driver::{Engine, NoJournal, Recorder};
use super::events::{EngineEvent, Question, RunExit, StepView};
use super::machine::State;
use super::real::RealActions;
use super::session::{RunSpec, open_dry_run, open_live};
use crate::inventory::{Inventory, InventoryError};
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
}

/// `lifeline runbooks`: id, title and when, for every runbook.
pub fn cmd_runbooks() -> u8 {
    let dir = runbook_dir();
    let sources = match runbook::sources(dir.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut bad = 0;
    for (file, text) in sources {
        match Runbook::parse(&text, &file) {
            Ok(rb) => {
                println!("{}  {}", rb.id, rb.title);
                for l in rb.when.lines() {
                    println!("    {}", l.trim());
                }
                println!(
                    "    {} step(s), from {file}; run: lifeline run {} --answers FILE",
                    rb.steps.len(),
                    rb.id
                );
                println!();
            }
            Err(d) => {
                bad += 1;
                eprintln!("{d}");
            }
        }
    }
    if bad > 0 {
        eprintln!("error: {bad} runbook(s) do not parse; 'lifeline check' lists every problem");
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
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    for w in &report.warnings {
        println!("warning: {w}");
    }
    for d in &report.errors {
        eprintln!("{d}");
    }
    if report.errors.is_empty() {
        println!(
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
        eprintln!("error: {} problem(s) in the runbooks", report.errors.len());
        EXIT_USAGE
    }
}

fn print_diags(e: &dyn std::fmt::Display, what: &str) {
    eprintln!("{e}");
    eprintln!("error: {what}");
}

/// `lifeline run`: returns the exit code.
pub fn cmd_run(args: RunArgs, redactor: Redactor) -> u8 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    rt.block_on(run(args, redactor))
}

fn load_inventory(path: Option<&Path>, redactor: &Redactor) -> Result<Inventory, u8> {
    let Some(path) = path else {
        eprintln!(
            "error: no inventory: pass -i PATH, create ./lifeline.toml, or set LIFELINE_INVENTORY (see README, 'Inventory')"
        );
        return Err(EXIT_USAGE);
    };
    match Inventory::load(path) {
        Ok(inv) => {
            for w in inv.register_secrets(redactor) {
                eprintln!("warning: {w}");
            }
            Ok(inv)
        }
        Err(InventoryError::Invalid(d)) => {
            print_diags(
                &d,
                &format!("{} problem(s) in {}", d.0.len(), path.display()),
            );
            Err(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(EXIT_USAGE)
        }
    }
}

fn load_runbook(name: &str, inv: &Inventory) -> Result<Runbook, u8> {
    let rb = match runbook::find(name, runbook_dir().as_deref()) {
        Ok(rb) => rb,
        Err(RunbookError::Invalid(d)) => {
            print_diags(&d, &format!("{} problem(s) in runbook '{name}'", d.0.len()));
            return Err(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Err(EXIT_USAGE);
        }
    };
    let (errors, warnings) = validate_against(&rb, inv);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if !errors.is_empty() {
        for d in &errors {
            eprintln!("{d}");
        }
        eprintln!(
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
    let inv = match load_inventory(args.inventory.as_deref(), &redactor) {
        Ok(i) => i,
        Err(c) => return Outcome::from(c),
    };
    let actions = RealActions::new(inv.clone(), redactor.clone());
    let rb = match load_runbook(&args.runbook, &inv) {
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
                eprintln!("error: {e}");
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
        eprintln!("error: --resume needs --incident ID (the incident whose journal to resume)");
        return Outcome::from(EXIT_USAGE);
    }
    if let Some(id) = &args.incident
        && !valid_incident_id(id)
    {
        eprintln!(
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
        if !errors.is_empty() {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "error: the plan above is incomplete: {} parameter(s) without a value",
                errors.len()
            );
            return Outcome::from(EXIT_USAGE);
        }
        return Outcome::from(exit.code());
    }

    let mut live = match open_live(RunSpec {
        runbook: &rb,
        inventory: inv,
        answers: &answers,
        state_dir: &state_dir,
        incident: args.incident.as_deref(),
        resume: args.resume,
        readonly: args.readonly,
        operator: &args.operator,
        inventory_path: args.inventory.as_deref(),
        redactor: &redactor,
        now,
    }) {
        Ok(l) => l,
        Err(e) => {
            for l in &e.lines {
                eprintln!("error: {l}");
            }
            return Outcome::from(e.code);
        }
    };
    for w in &live.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "incident {}: journal {}",
        live.incident,
        live.journal_path.display()
    );
    if args.resume {
        // Processes an earlier run left frozen (its connection lost) come first.
        let records = crate::journal::read_records(&live.journal_path).unwrap_or_default();
        match super::real::hosts::frozen::resume_frozen(&actions, &records, &mut live.journal).await
        {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
            }
            Err(e) => {
                eprintln!("error: {e}; nothing was done");
                return Outcome::from(1);
            }
        }
    }
    let exit = drive(live.state, actions, live.journal, answers, redactor).await;
    Outcome {
        code: exit.code(),
        incident: Some(live.incident),
        journal_path: Some(live.journal_path),
        exit: Some(exit),
    }
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
    out
}

/// Prints one line per event (a dry-run plan step prints its block).
pub async fn print_events(mut rx: broadcast::Receiver<EngineEvent>, answers: Answers) {
    let mut n = 0;
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(k)) => {
                println!(
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
                println!(
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
                    println!("{l}");
                }
            }
            EngineEvent::StepChanged {
                index,
                id,
                action,
                status,
                detail,
            } => println!(
                "[{}/{n}] {id} ({action}): {}: {detail}",
                index + 1,
                status.as_str()
            ),
            EngineEvent::Output { index, id, line } => {
                println!("[{}/{n}] {id} | {line}", index + 1)
            }
            EngineEvent::Progress {
                index,
                id,
                done,
                total,
                message,
            } => println!(
                "[{}/{n}] {id} .. {done}{} {message}",
                index + 1,
                total.map(|t| format!("/{t}")).unwrap_or_default()
            ),
            EngineEvent::Question { question } => match question {
                Question::Confirm(c) => {
                    for p in &c.preview {
                        for l in p.lines() {
                            println!("[{}/{n}] {} run: {l}", c.index + 1, c.step);
                        }
                    }
                    println!(
                        "[{}/{n}] {}: confirm: type '{}' to act on {}",
                        c.index + 1,
                        c.step,
                        c.expected,
                        c.identity.describe()
                    );
                }
                Question::Override(o) => println!(
                    "[{}/{n}] {}: snapshot failed: type '{}' to go on without one ({})",
                    o.index + 1,
                    o.step,
                    o.phrase,
                    o.reason
                ),
                Question::Interrupted(r) => println!(
                    "[{}/{n}] {}: interrupted: check before continuing (it was in flight when the last run stopped)",
                    r.index + 1,
                    r.step
                ),
            },
            EngineEvent::RunFinished { exit, code } => {
                println!("finished: {} (exit {code})", exit.message());
            }
        }
    }
}
