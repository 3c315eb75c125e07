//! `lifeline lab`: builds a sandboxed outage (`crate::lab`), then opens the
//! console on it in DRILL mode, or with `--headless` runs the scenario's
//! runbook and scores the drill. The lab is torn down on every exit path
//! (quit, Ctrl-C, panic: `Lab` tears down on drop); it never touches
//! anything outside its sandbox.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{ConsoleArgs, ConsoleError};
use crate::engine::types::DbIdentity;
use crate::headless::{RunArgs, run_outcome};
use crate::journal::{Entry, Journal, read_records};
use crate::lab::deps::{Consent, ensure_postgres};
use crate::lab::{Lab, LabOptions, Scenario, clean_stale_labs, score};
use crate::redact::Redactor;
use crate::samples::{Sample, TableCount};
use crate::state::StateDir;
use crate::tui::UiEvent;

/// Journal kind of the drill's score (`data`: the `DrillReport`).
pub const DRILL_REPORT: &str = "drill-report";

/// `lifeline lab` as the CLI runs it.
#[derive(Debug, Clone)]
pub struct LabArgs {
    pub scenario: Scenario,
    pub dir: Option<PathBuf>,
    pub rows: Option<u64>,
    pub ssh: bool,
    pub headless: bool,
    pub answers: Option<PathBuf>,
    /// `--state-dir`; without it the drill's journals and snapshots go
    /// under the lab's directory (`<lab>/state`).
    pub state_dir: Option<PathBuf>,
    pub operator: String,
    pub readonly: bool,
    /// Install missing PostgreSQL server binaries with apt without asking.
    pub install_deps: bool,
    /// `--runbook`: the runbook `--headless` runs (default: the scenario's).
    pub runbook: Option<String>,
    /// `--pgbackrest`: the WAL archive is a pgBackRest repository.
    pub pgbackrest: bool,
}

/// A progress line on stderr while the lab builds ("building ... 12 s").
struct Progress {
    done: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(what: String) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let tty = std::io::stderr().is_terminal();
        let join = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut err = std::io::stderr();
            if !tty {
                let _ = writeln!(err, "{what}");
            }
            while !d.load(Ordering::SeqCst) {
                if tty {
                    let _ = write!(err, "\r{what} {} s", t0.elapsed().as_secs());
                    let _ = err.flush();
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = writeln!(
                err,
                "{}{what} done in {} s",
                if tty { "\r" } else { "" },
                t0.elapsed().as_secs()
            );
        });
        Progress {
            done,
            join: Some(join),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn build(args: &LabArgs) -> Result<Lab, ConsoleError> {
    match clean_stale_labs(None) {
        Ok(cleaned) => {
            for c in cleaned {
                crate::errln!(
                    "cleaned up a lab left behind: '{}' ({} process(es) stopped)",
                    c.dir.display(),
                    c.killed.len()
                );
            }
        }
        Err(e) => crate::errln!("warning: could not clean up old labs: {e}"),
    }
    let mut opts = LabOptions {
        scenario: args.scenario,
        dir: args.dir.clone(),
        ssh: args.ssh,
        archive: if args.pgbackrest {
            crate::lab::ArchiveKind::Pgbackrest
        } else {
            crate::lab::ArchiveKind::WalDir
        },
        ..Default::default()
    };
    if let Some(r) = args.rows {
        opts.rows = r;
    }
    let consent = if args.install_deps {
        Consent::Given
    } else {
        Consent::Ask
    };
    ensure_postgres(consent).map_err(|e| ConsoleError::Inventory(format!("lab: {e}")))?;
    let quiet = crate::output::quiet();
    if !quiet {
        crate::errln!("lab '{}': {}", args.scenario, args.scenario.summary());
    }
    let progress =
        (!quiet).then(|| Progress::start(format!("building lab '{}' ...", args.scenario)));
    let lab = Lab::build(opts).map_err(|e| ConsoleError::Inventory(format!("lab: {e}")));
    drop(progress);
    lab
}

/// Runs `lifeline lab`; returns the exit code.
pub fn cmd_lab(mut args: LabArgs, redactor: Redactor) -> Result<u8, ConsoleError> {
    let mut lab = build(&args)?;
    let inside = args.state_dir.is_none();
    let state_dir = args
        .state_dir
        .get_or_insert_with(|| lab.dir.join("state"))
        .clone();
    // A throwaway lab keeps its drill state when the directory goes.
    lab.keep_state = inside.then(|| state_dir.clone());
    let quiet = crate::output::quiet();
    if !quiet {
        crate::errln!(
            "lab '{}' ready in {} (inventory {})",
            lab.scenario,
            lab.dir.display(),
            lab.inventory_path.display()
        );
    }
    let code = if args.headless {
        headless(&args, &lab, redactor)
    } else {
        console(&args, &lab, redactor)
    };
    let kept = lab.kept.then(|| lab.dir.clone());
    match lab.teardown() {
        Ok(()) if quiet => {}
        Ok(()) => match kept {
            Some(d) => crate::errln!("lab stopped; its directory is kept: '{}'", d.display()),
            None => crate::errln!("lab stopped and removed"),
        },
        Err(e) => crate::errln!("warning: lab teardown: {e}"),
    }
    if !quiet {
        crate::errln!("drill journal and snapshots: '{}'", state_dir.display());
    }
    code
}

fn console(args: &LabArgs, lab: &Lab, redactor: Redactor) -> Result<u8, ConsoleError> {
    let mut c = ConsoleArgs::new(
        lab.inventory_path.clone(),
        args.state_dir.clone().unwrap_or_default(),
        args.operator.clone(),
    );
    c.drill = true;
    c.readonly = args.readonly;
    c.probe_interval = Duration::from_secs(5);
    c.slug = Some(format!("lab-{}", lab.scenario));
    c.before = before(lab);
    // The chart starts on the users table as it was before the damage.
    c.params
        .insert("incident_at".to_string(), lab.damage_at.to_rfc3339());
    c.select_table = lab
        .oids_before
        .get("User")
        .map(|oid| ("User".to_string(), *oid));
    super::cmd_console(c, redactor)
}

/// The lab's own count of `TovPlay` just before the damage, as the round
/// before the console's first (real counts and OIDs, measured by the lab),
/// and the damage time: the drop shows on the Timeline from the start.
fn before(lab: &Lab) -> Vec<UiEvent> {
    let tables = lab
        .counts_before
        .iter()
        .map(|(name, rows)| TableCount {
            schema: "public".into(),
            name: name.clone(),
            oid: lab.oids_before.get(name).copied().unwrap_or(0),
            rows: *rows,
            exact: true,
        })
        .collect();
    vec![
        UiEvent::Sample(Sample {
            ts: lab.counts_before_at,
            database: "main".into(),
            identity: DbIdentity {
                server: format!("127.0.0.1:{}", lab.cluster.port()),
                database: "TovPlay".into(),
                ..Default::default()
            },
            tables,
        }),
        UiEvent::IncidentTime(Some(lab.damage_at)),
    ]
}

fn headless(args: &LabArgs, lab: &Lab, redactor: Redactor) -> Result<u8, ConsoleError> {
    crate::logging::init_stderr(redactor.clone());
    let pitr = args.runbook.as_deref() == Some(crate::lab::PITR_RUNBOOK);
    let answers = args.answers.clone().unwrap_or_else(|| {
        if pitr {
            lab.pitr_answers_path.clone()
        } else {
            lab.answers_path.clone()
        }
    });
    let run = RunArgs {
        runbook: args
            .runbook
            .clone()
            .unwrap_or_else(|| lab.scenario.runbook().to_string()),
        answers: Some(answers),
        dry_run: false,
        incident: None,
        resume: false,
        readonly: args.readonly,
        inventory: Some(lab.inventory_path.clone()),
        state_dir: args.state_dir.clone().unwrap_or_default(),
        operator: args.operator.clone(),
        // What the lab saw just before the damage, as a console would have
        // sampled it (a dropped database is known by its OID).
        seed_samples: lab
            .sample_before_damage()
            .map_err(|e| crate::errln!("the lab's sample before the damage was not taken ({e})"))
            .into_iter()
            .collect(),
    };
    let mut defaults = BTreeMap::new();
    defaults.insert("incident_at".to_string(), lab.damage_at.to_rfc3339());
    // Ground truth for "rows lost in undamaged tables": the live rows just
    // before the runbook starts, read by the lab itself.
    // Only scenarios that leave tables undamaged have them to score.
    let rows_before = lab.scenario.damaged_tables().and_then(|_| {
        lab.rows_before_fix()
            .map_err(|e| eprintln!("rows before the fix not read ({e}): rows lost not scored"))
            .ok()
    });
    let rt = crate::runtime::build().map_err(ConsoleError::Runtime)?;
    let outcome = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        // Ctrl-C, SIGTERM and a closed terminal (SIGHUP) all end the drill
        // here, so the lab below is torn down instead of left running.
        let (mut term, mut hup) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(t), Ok(h)) => (t, h),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        Ok(tokio::select! {
            o = run_outcome(run, redactor.clone(), &defaults) => Some(o),
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            _ = hup.recv() => None,
        })
    });
    let Some(outcome) = outcome.map_err(ConsoleError::Runtime)? else {
        crate::errln!("interrupted: the drill stops; the lab is torn down");
        return Ok(1);
    };
    let (Some(incident), Some(path)) = (outcome.incident, outcome.journal_path) else {
        return Ok(outcome.code);
    };
    let records = read_records(&path)?;
    let mut report = score(&lab.facts(), &records);
    if let Some(before) = &rows_before {
        match lab.live_rows() {
            Ok(after) => report = report.with_live_rows(before, &after),
            Err(e) => eprintln!("rows after the fix not read ({e}): rows lost not scored"),
        }
    }
    // Rows lost against the writer's log (ground truth), whatever the path.
    match lab.truth_score() {
        Ok(Some(t)) => report = report.with_ground_truth(t),
        Ok(None) => {}
        Err(e) => eprintln!("the writer's rows not read ({e}): rows lost not scored"),
    }
    let mut journal = Journal::open(&path, &incident, &args.operator, redactor)?;
    journal.append(
        Entry::new(
            DRILL_REPORT,
            format!(
                "drill {}: {}",
                lab.scenario,
                if report.passed() {
                    "passed"
                } else {
                    "NOT passed"
                }
            ),
        )
        .data(serde_json::to_value(&report).unwrap_or(json!(null))),
    )?;
    drop(journal);
    crate::outln!("{report}");
    let state = StateDir::new(args.state_dir.clone().unwrap_or_default());
    crate::outln!(
        "incident {incident}: journal {} (export: lifeline --state-dir {} export {incident})",
        path.display(),
        state.root().display()
    );
    Ok(
        if report.restored_at.is_some() && report.verified && report.damage_left.is_none() {
            0
        } else {
            1
        },
    )
}
