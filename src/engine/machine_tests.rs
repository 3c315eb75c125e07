//! Pure tests of the state machine: a scripted world answers its effects,
//! no runtime, no I/O.

use std::collections::{BTreeMap, VecDeque};

use chrono::TimeZone;
use rstest::rstest;
use serde_json::json;

use super::*;
use crate::inventory::Inventory;
use crate::journal::Record;

const INV: &str = "[[host]]\nname = \"here\"\ntransport = \"local\"\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:5432/app\"\n";

const RB: &str = r#"
id = "t"
title = "T"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[param]]
name = "restored"
kind = "text"
from = "ask"
[[step]]
id = "hello"
action = "note"
explain = "say hello"
text = "hi {db} on {db.target}"
[[step]]
id = "look"
action = "probe"
explain = "look"
database = "{db}"
[[step]]
id = "stop"
action = "stop-services"
explain = "stop writers"
database = "{db}"
hold_s = 5
[[step]]
id = "snap"
action = "snapshot"
explain = "snapshot"
database = "{db}"
[[step]]
id = "q"
action = "sql"
explain = "count"
database = "{db}"
destructive = false
sql = "SELECT count(*) FROM t"
[[step]]
id = "swap"
action = "swap"
explain = "swap"
database = "{db}"
restored = "{restored}"
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 42, 0).unwrap()
}

fn ctx_of(rb: &str, readonly: bool, dry_run: bool) -> RunContext {
    let runbook = Runbook::parse(rb, "t.toml").unwrap();
    let inventory = Inventory::parse(INV, "inv.toml").unwrap();
    let mut params = Params::new();
    params.insert(
        "db".into(),
        ParamValue {
            kind: ParamKind::Database,
            value: "app".into(),
            source: "answers".into(),
        },
    );
    if runbook.param("restored").is_some() {
        params.insert(
            "restored".into(),
            ParamValue {
                kind: ParamKind::Text,
                value: "app__restore_x".into(),
                source: "answers".into(),
            },
        );
    }
    RunContext {
        runbook,
        inventory,
        params,
        incident: "i1".into(),
        incident_dir: PathBuf::from("/state/incidents/i1"),
        readonly,
        dry_run,
    }
}

fn ident(oid: u32) -> DbIdentity {
    DbIdentity {
        server: "127.0.0.1:5432".into(),
        system_identifier: "7310000000000000001".into(),
        database: "app".into(),
        oid: Some(oid),
        server_started_at: None,
    }
}

type Respond = Box<dyn FnMut(&ActionRequest) -> Result<StepOutcome, String>>;

/// A scripted world: answers every effect like the driver would.
struct Sim {
    journal: Vec<Entry>,
    /// Every effect in order, journal appends included.
    trace: Vec<String>,
    events: Vec<EngineEvent>,
    identities: VecDeque<DbIdentity>,
    typed: BTreeMap<String, String>,
    overrides: BTreeMap<String, String>,
    decisions: BTreeMap<String, Decision>,
    /// Step id -> another backup chosen at its confirmation (once).
    choices: BTreeMap<String, BackupChoice>,
    /// Journal appends of this kind (and step) fail.
    fail_append: Option<(String, String)>,
    /// What `live_preview` answers when an identity read asks for it.
    live_preview: Result<Vec<String>, String>,
    respond: Respond,
    ran: Vec<String>,
    /// The operator aborts at this step's question instead of answering.
    abort_at: Option<String>,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            journal: Vec::new(),
            trace: Vec::new(),
            events: Vec::new(),
            identities: VecDeque::new(),
            typed: BTreeMap::new(),
            overrides: BTreeMap::new(),
            decisions: BTreeMap::new(),
            choices: BTreeMap::new(),
            fail_append: None,
            live_preview: Ok(Vec::new()),
            respond: Box::new(default_respond),
            ran: Vec::new(),
            abort_at: None,
        }
    }

    fn run(&mut self, state: State) -> (State, RunExit) {
        let (mut s, fx) = apply(&state, Input::Start { now: t0() });
        let mut queue: VecDeque<Effect> = fx.into();
        let mut exit = None;
        while let Some(e) = queue.pop_front() {
            let input = match e {
                Effect::Journal(entry) => {
                    let step = entry.step.clone().unwrap_or_default();
                    self.trace.push(format!("journal {} {step}", entry.kind));
                    if self.fail_append.as_ref() == Some(&(entry.kind.clone(), step.clone())) {
                        queue.clear();
                        Some(Input::JournalFailed {
                            kind: entry.kind.clone(),
                            step: s.ctx.runbook.step_index(&step),
                            error: "No space left on device".into(),
                        })
                    } else {
                        self.journal.push(entry);
                        None
                    }
                }
                Effect::Emit(ev) => {
                    self.events.push(ev);
                    None
                }
                Effect::ReadIdentity { step, preview, .. } => {
                    self.trace.push(format!("identity {step}"));
                    let id = self.identities.pop_front().unwrap_or_else(|| ident(16384));
                    Some(Input::Identity {
                        step,
                        result: Ok(id),
                        preview: match preview {
                            Some(_) => self.live_preview.clone(),
                            None => Ok(Vec::new()),
                        },
                        at: t0(),
                    })
                }
                Effect::Ask(q) => Some(match q {
                    Question::Confirm(c) if self.choices.contains_key(&c.step) => Input::Choose {
                        step: c.index,
                        choice: self.choices.remove(&c.step).unwrap(),
                    },
                    Question::Confirm(c) if self.abort_at.as_deref() == Some(c.step.as_str()) => {
                        Input::Aborted { step: c.index }
                    }
                    Question::Confirm(c) => Input::Confirmation {
                        step: c.index,
                        typed: self.typed.get(&c.step).cloned(),
                    },
                    Question::Override(o) => Input::Override {
                        step: o.index,
                        typed: self.overrides.get(&o.step).cloned(),
                    },
                    Question::Interrupted(r) => Input::Interrupted {
                        step: r.index,
                        decision: self.decisions.get(&r.step).copied(),
                    },
                }),
                Effect::Run { step, resolved } => {
                    let id = s.ctx.runbook.steps[step].id.clone();
                    self.trace.push(format!("run {id}"));
                    self.ran.push(id);
                    Some(Input::Done {
                        step,
                        result: (self.respond)(&resolved.request).map_err(StepFailure::from),
                        duration_ms: 1,
                    })
                }
                Effect::Finish(x) => {
                    exit = Some(x);
                    None
                }
            };
            if let Some(i) = input {
                let (ns, fx) = apply(&s, i);
                s = ns;
                queue.extend(fx);
            }
        }
        let exit = exit.expect("the machine always finishes");
        (s, exit)
    }

    fn kinds(&self) -> Vec<String> {
        self.journal
            .iter()
            .map(|e| format!("{} {}", e.kind, e.step.clone().unwrap_or_default()))
            .collect()
    }
}

fn default_respond(req: &ActionRequest) -> Result<StepOutcome, String> {
    Ok(match req {
        ActionRequest::Note { text } => StepOutcome::ok(text.clone(), json!({ "text": text })),
        ActionRequest::Probe(_) => StepOutcome::ok("looked", json!({ "found": {} })),
        ActionRequest::StopServices(s) => StopOutcome {
            stopped: vec![],
            held_s: s.hold_s,
            still_active: vec![],
            write_sessions: vec![],
            table_writes: BTreeMap::new(),
            plan: vec![],
        }
        .into(),
        ActionRequest::Snapshot(s) => SnapshotOutcome {
            path: Some(s.path.display().to_string()),
            size: 10,
            sha256: Some("ab".into()),
            dbname: "app".into(),
            command: "pg_dump".into(),
            absent: false,
        }
        .into(),
        ActionRequest::Sql(_) => {
            StepOutcome::ok("1 row(s)", json!({ "rows": 1, "output": ["count=3"] }))
        }
        ActionRequest::Swap(s) => SwapOutcome {
            live: "app".into(),
            damaged: s.damaged.clone(),
            restored_from: s.restored.clone(),
            after: ident(20000),
            damaged_oid: Some(16384),
            attempts: 1,
        }
        .into(),
        other => return Err(format!("unexpected {other:?}")),
    })
}

const MERGE_RB: &str = r#"
id = "m"
title = "M"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[step]]
id = "snap"
action = "snapshot"
explain = "snapshot"
database = "{db}"
[[step]]
id = "merge"
action = "merge-tables"
explain = "merge"
database = "{db}"
restored = "app__restore_x"
tables = 'public.User, "a,b"'
"#;

fn merge_done(req: &ActionRequest) -> Result<StepOutcome, String> {
    match req {
        ActionRequest::MergeTables(m) => {
            assert_eq!(
                m.tables,
                vec!["public.User".to_string(), "\"a,b\"".to_string()]
            );
            assert_eq!(m.policy, MergePolicy::LiveWins);
            assert_eq!(m.transaction, MergeTx::One);
            Ok(MergeOutcome {
                source: m.source.clone(),
                policy: m.policy,
                transaction: m.transaction,
                tables: vec![],
                sequences: vec![],
                orphans: vec![],
            }
            .into())
        }
        other => default_respond(other),
    }
}

#[test]
fn a_merge_is_confirmed_by_its_phrase_after_the_live_preview() {
    let phrase = "merge public.User, \"a,b\" into app";
    // The database name alone does not confirm a merge.
    let mut sim = Sim::new();
    sim.respond = Box::new(merge_done);
    sim.live_preview = Ok(vec!["  public.User: live 3, to insert 22".into()]);
    sim.typed.insert("merge".into(), "app".into());
    let (_, exit) = sim.run(fresh(MERGE_RB));
    assert!(!sim.ran.contains(&"merge".to_string()));
    assert!(
        exit.message().contains(&format!(
            "typed 'app' but the confirmation phrase is '{phrase}'"
        )),
        "{}",
        exit.message()
    );
    // The phrase does; the live preview went with the question and into the journal.
    let mut sim = Sim::new();
    sim.respond = Box::new(merge_done);
    sim.live_preview = Ok(vec!["  public.User: live 3, to insert 22".into()]);
    sim.typed.insert("merge".into(), phrase.into());
    let (_, exit) = sim.run(fresh(MERGE_RB));
    assert_eq!(exit, RunExit::Completed, "{}", exit.message());
    assert!(sim.ran.contains(&"merge".to_string()));
    let asked = sim.events.iter().any(|e| match e {
        EngineEvent::Question {
            question: Question::Confirm(c),
        } => c.expected == phrase && c.preview.iter().any(|l| l.contains("to insert 22")),
        _ => false,
    });
    assert!(asked, "{:?}", sim.events);
    for kind in ["confirmed", "step-started"] {
        let e = sim
            .journal
            .iter()
            .find(|e| e.kind == kind && e.step.as_deref() == Some("merge"))
            .unwrap();
        assert!(
            e.data["preview"].to_string().contains("to insert 22"),
            "{kind}"
        );
    }
}

#[test]
fn a_merge_whose_preview_fails_asks_nothing_and_does_nothing() {
    let mut sim = Sim::new();
    sim.respond = Box::new(merge_done);
    sim.live_preview = Err("table 'public.log' has no primary key".into());
    sim.typed
        .insert("merge".into(), "merge public.User, \"a,b\" into app".into());
    let (s, exit) = sim.run(fresh(MERGE_RB));
    assert!(!sim.ran.contains(&"merge".to_string()));
    assert!(
        exit.message().contains("has no primary key"),
        "{}",
        exit.message()
    );
    assert_eq!(s.steps[1].status, StepStatus::Failed);
    let last = sim.journal.last().unwrap();
    assert_eq!(last.data["phase"], "preview");
    assert!(
        !sim.events
            .iter()
            .any(|e| matches!(e, EngineEvent::Question { .. }))
    );
}

fn fresh(rb: &str) -> State {
    State::new(ctx_of(rb, false, false), t0())
}

#[test]
fn happy_path_runs_in_order_and_journals_before_every_action() {
    let mut sim = Sim::new();
    sim.typed.insert("swap".into(), "app".into());
    let (s, exit) = sim.run(fresh(RB));
    assert_eq!(exit, RunExit::Completed);
    assert_eq!(sim.ran, ["hello", "look", "stop", "snap", "q", "swap"]);
    // Every run is directly preceded by its step-started append.
    for (i, t) in sim.trace.iter().enumerate() {
        if let Some(id) = t.strip_prefix("run ") {
            assert_eq!(
                sim.trace[i - 1],
                format!("journal step-started {id}"),
                "{:?}",
                sim.trace
            );
        }
    }
    // The destructive swap: identity, confirmed, identity again (guard), started, finished.
    let tail: Vec<&String> = sim.trace.iter().rev().take(6).collect();
    assert_eq!(
        tail.into_iter().rev().cloned().collect::<Vec<_>>(),
        [
            "identity 5",
            "journal confirmed swap",
            "identity 5",
            "journal step-started swap",
            "run swap",
            "journal step-finished swap"
        ]
    );
    assert!(s.steps.iter().all(|st| st.status == StepStatus::Done));
    // Outcome data follows the journal conventions.
    let fin = sim
        .journal
        .iter()
        .find(|e| e.kind == "step-finished" && e.step.as_deref() == Some("swap"))
        .unwrap();
    assert_eq!(fin.data["action"], "swap");
    assert_eq!(fin.data["live"], "app");
    assert_eq!(fin.data["damaged"], "app__damaged_20261123T124200Z");
    let snap = sim
        .journal
        .iter()
        .find(|e| e.kind == "step-finished" && e.step.as_deref() == Some("snap"))
        .unwrap();
    assert_eq!(snap.data["database"], "app");
    assert!(
        snap.data["path"]
            .as_str()
            .unwrap()
            .ends_with("snapshots/snap-app-1.dump")
    );
    // The note rendered its parameters.
    assert_eq!(sim.journal[1].summary, "hi app on 127.0.0.1:5432/app");
}

#[rstest]
#[case(None, false, "not confirmed")]
#[case(Some("ap"), false, "typed 'ap' but the database is 'app'")]
#[case(Some("APP"), false, "typed 'APP' which only looks like 'app' (case)")]
#[case(
    Some("app__restore_x"),
    false,
    "typed 'app__restore_x' which only looks like 'app' (suffix)"
)]
#[case(
    Some("\u{430}pp"),
    false,
    "typed '<U+0430>pp' which only looks like 'app' (confusable): that is another database"
)]
#[case(
    Some("a\u{200b}pp"),
    false,
    "typed 'a<U+200B>pp' which only looks like 'app' (invisible)"
)]
#[case(Some("  app \n"), true, "")]
fn typed_confirmation(#[case] typed: Option<&str>, #[case] ok: bool, #[case] why: &str) {
    let mut sim = Sim::new();
    if let Some(t) = typed {
        sim.typed.insert("swap".into(), t.into());
    }
    let (s, exit) = sim.run(fresh(RB));
    let swap_ran = sim.ran.contains(&"swap".to_string());
    assert_eq!(swap_ran, ok);
    if ok {
        assert_eq!(exit, RunExit::Completed);
    } else {
        assert_eq!(exit.code(), 1);
        assert!(exit.message().contains(why), "{}", exit.message());
        assert!(exit.message().contains("nothing was done"));
        assert_eq!(s.steps[5].status, StepStatus::Failed);
        let last = sim.journal.last().unwrap();
        assert_eq!(last.kind, "step-failed");
        assert_eq!(last.data["phase"], "confirm");
        assert!(!sim.kinds().contains(&"step-started swap".to_string()));
    }
}

#[test]
fn an_abort_at_a_confirmation_is_journaled_as_aborted_not_as_not_confirmed() {
    let mut sim = Sim::new();
    sim.abort_at = Some("swap".into());
    let (s, exit) = sim.run(fresh(RB));
    assert_eq!(exit.code(), 1);
    assert!(
        exit.message().contains("aborted by the operator"),
        "{}",
        exit.message()
    );
    assert!(
        !exit.message().contains("not confirmed"),
        "{}",
        exit.message()
    );
    assert_eq!(s.steps[5].status, StepStatus::Failed);
    assert!(!sim.ran.contains(&"swap".to_string()));
    let last = sim.journal.last().unwrap();
    assert_eq!(last.kind, "step-failed");
    assert_eq!(last.data["phase"], "abort");
    assert_eq!(last.data["class"], "aborted");
    assert_eq!(last.data["aborted"], true);
}

#[test]
fn identity_changed_between_confirmation_and_action_stops_the_step() {
    let mut sim = Sim::new();
    sim.typed.insert("swap".into(), "app".into());
    // Shown with the confirmation: OID 16384; re-read right before acting: 99999.
    sim.identities = VecDeque::from([ident(16384), ident(99999)]);
    let (_, exit) = sim.run(fresh(RB));
    assert!(!sim.ran.contains(&"swap".to_string()));
    assert_eq!(exit.code(), 1);
    assert!(
        exit.message().contains("not the one you confirmed"),
        "{}",
        exit.message()
    );
    let k = sim.kinds();
    let n = k.len();
    assert_eq!(k[n - 2], "identity-changed swap");
    assert_eq!(k[n - 1], "step-failed swap");
    assert_eq!(sim.journal[n - 2].data["after"]["oid"], 99999);
}

#[test]
fn absent_live_database_swaps_without_a_damaged_name() {
    let mut sim = Sim::new();
    sim.typed.insert("swap".into(), "app".into());
    let mut absent = ident(0);
    absent.oid = None;
    sim.identities = VecDeque::from([absent.clone(), absent]);
    sim.respond = Box::new(move |req| {
        if let ActionRequest::Swap(s) = req {
            assert!(s.damaged.is_none());
            assert_eq!(crate::engine::preview::swap_renames(s).len(), 1);
        }
        default_respond(req)
    });
    let (_, exit) = sim.run(fresh(RB));
    assert_eq!(exit, RunExit::Completed);
}

#[test]
fn failed_hold_stops_the_run_before_anything_destructive() {
    let mut sim = Sim::new();
    sim.typed.insert("swap".into(), "app".into());
    sim.respond = Box::new(|req| match req {
        ActionRequest::StopServices(s) => Ok(StopOutcome {
            stopped: vec![],
            held_s: s.hold_s,
            still_active: vec![ActiveService {
                name: "db-realtime-sync".into(),
                host: "prod".into(),
                kind: crate::inventory::ServiceKind::Systemd,
                detail: "active (running): Restart=always".into(),
            }],
            write_sessions: vec![],
            table_writes: BTreeMap::new(),
            plan: vec![],
        }
        .into()),
        other => default_respond(other),
    });
    let (_, exit) = sim.run(fresh(RB));
    assert_eq!(sim.ran, ["hello", "look", "stop"]);
    assert!(
        exit.message().contains("NOT proven stopped"),
        "{}",
        exit.message()
    );
    assert!(exit.message().contains("db-realtime-sync"));
}

const RESTORE_RB: &str = r#"
id = "r"
title = "R"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[step]]
id = "stop"
action = "stop-services"
explain = "stop"
database = "{db}"
[[step]]
id = "snap"
action = "snapshot"
explain = "snap"
database = "{db}"
[[step]]
id = "restore"
action = "restore"
explain = "restore"
database = "{db}"
catalog = "c"
backup = "/b/x.sql"
"#;

fn rec(seq: u64, kind: &str, step: &str, data: serde_json::Value) -> Record {
    Record {
        seq,
        ts: t0(),
        incident: "i1".into(),
        operator: "op".into(),
        kind: kind.into(),
        step: Some(step.into()),
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
fn restore_refused_until_a_journaled_hold_passed() {
    let inv = "[[host]]\nname = \"here\"\ntransport = \"local\"\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:5432/app\"\nrestore_role = \"restorer\"\n[[backups]]\nname = \"c\"\nhost = \"here\"\npath = \"/b\"\ndatabase = \"app\"\n";
    let mk = || {
        let mut c = ctx_of(RESTORE_RB, false, false);
        c.inventory = Inventory::parse(inv, "inv.toml").unwrap();
        c
    };
    // The stop step was interrupted and the operator skipped it: no proof.
    let records = vec![
        rec(1, "step-started", "stop", json!({})),
        rec(2, "step-skipped", "stop", json!({"reason": "interrupted"})),
        rec(3, "step-started", "snap", json!({})),
        rec(
            4,
            "step-finished",
            "snap",
            json!({"database": "app", "path": "/s"}),
        ),
    ];
    let mut sim = Sim::new();
    sim.typed.insert("restore".into(), "app".into());
    let (_, exit) = sim.run(State::replay(mk(), &records, t0()));
    assert!(sim.ran.is_empty(), "{:?}", sim.ran);
    assert!(
        exit.message().contains("not proven stopped"),
        "{}",
        exit.message()
    );
    assert_eq!(sim.journal.last().unwrap().data["phase"], "guard");

    // With a stop-services step that finished (its hold passed), the guard lets it through
    // to the confirmation (and the unwired restore).
    let records = vec![
        rec(1, "step-started", "stop", json!({})),
        rec(
            2,
            "step-finished",
            "stop",
            json!({"database": "app", "stopped": [], "held_s": 60}),
        ),
        rec(3, "step-started", "snap", json!({})),
        rec(
            4,
            "step-finished",
            "snap",
            json!({"database": "app", "path": "/s"}),
        ),
    ];
    let mut sim = Sim::new();
    sim.typed.insert("restore".into(), "app".into());
    let (_, exit) = sim.run(State::replay(mk(), &records, t0()));
    assert_eq!(sim.ran, ["restore"]);
    assert!(exit.message().contains("unexpected"), "{}", exit.message());
}

/// The restore's confirmation says who its sessions log in as: with a
/// restore_role the database name (or the longer phrase that lets lifeline
/// create the role); without one, `<db> as superuser`.
#[rstest]
#[case("restore_role = \"restorer\"\n", "app", Some(false))]
#[case(
    "restore_role = \"restorer\"\n",
    "app create role restorer",
    Some(true)
)]
#[case("restore_role = \"restorer\"\n", "app create role other", None)]
#[case("restore_role = \"restorer\"\n", "app as superuser", None)]
#[case("", "app", None)]
#[case("", "app as superuser", Some(false))]
fn restore_confirmation_names_who_it_runs_as(
    #[case] role_line: &str,
    #[case] typed: &str,
    #[case] create: Option<bool>,
) {
    let inv = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:5432/app\"\n{role_line}[[backups]]\nname = \"c\"\nhost = \"here\"\npath = \"/b\"\ndatabase = \"app\"\n"
    );
    let mut c = ctx_of(RESTORE_RB, false, false);
    c.inventory = Inventory::parse(&inv, "inv.toml").unwrap();
    let records = vec![
        rec(1, "step-started", "stop", json!({})),
        rec(
            2,
            "step-finished",
            "stop",
            json!({"database": "app", "stopped": [], "held_s": 60}),
        ),
        rec(3, "step-started", "snap", json!({})),
        rec(
            4,
            "step-finished",
            "snap",
            json!({"database": "app", "path": "/s"}),
        ),
    ];
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut sim = Sim::new();
    sim.typed.insert("restore".into(), typed.into());
    let log = seen.clone();
    sim.respond = Box::new(move |req| {
        if let ActionRequest::Restore(r) = req {
            log.lock().unwrap().push(r.restore_as.clone());
        }
        Err("stop here".into())
    });
    let (_, exit) = sim.run(State::replay(c, &records, t0()));
    let seen = seen.lock().unwrap().clone();
    match create {
        None => {
            assert!(seen.is_empty(), "{typed}: {seen:?}");
            assert!(exit.message().contains("typed"), "{}", exit.message());
        }
        Some(create) => {
            assert_eq!(seen.len(), 1, "{typed}: {}", exit.message());
            match (&seen[0], role_line.is_empty()) {
                (RestoreAs::Admin, true) => {}
                (
                    RestoreAs::Role {
                        name, create: c, ..
                    },
                    false,
                ) => {
                    assert_eq!(name, "restorer");
                    assert_eq!(*c, create, "{typed}");
                }
                other => panic!("{other:?}"),
            }
            let confirmed = sim
                .journal
                .iter()
                .find(|e| e.kind == "confirmed")
                .expect("the typed phrase is journaled");
            assert_eq!(confirmed.data["typed"], typed);
        }
    }
}

const PICK_RB: &str = r#"
id = "p"
title = "P"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[step]]
id = "stop"
action = "stop-services"
explain = "stop"
database = "{db}"
[[step]]
id = "snap"
action = "snapshot"
explain = "snap"
database = "{db}"
[[step]]
id = "pick"
action = "pick-backup"
explain = "pick"
catalog = "c"
[[step]]
id = "restore"
action = "restore"
explain = "restore"
database = "{db}"
catalog = "c"
backup = "BACKUP"
"#;

/// The restore request carries the pick's `PickedBackup` (with its
/// SHA-256) when it restores the picked file, and none for another file.
#[rstest]
#[case("{pick.backup.path}", true)]
#[case("/b/other.sql", false)]
fn the_restore_is_held_to_the_picked_backup(#[case] backup: &str, #[case] held: bool) {
    let inv = "[[host]]\nname = \"here\"\ntransport = \"local\"\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:5432/app\"\nrestore_role = \"restorer\"\n[[backups]]\nname = \"c\"\nhost = \"here\"\npath = \"/b\"\ndatabase = \"app\"\n";
    let mut c = ctx_of(&PICK_RB.replace("BACKUP", backup), false, false);
    c.inventory = Inventory::parse(inv, "inv.toml").unwrap();
    let chosen = BackupCandidate {
        name: "x.sql".into(),
        path: "/b/x.sql".into(),
        taken_at: Some(t0()),
        time_source: "name".into(),
        size: 42,
        sha256: Some("5ca1ab1e".repeat(8)),
        rpo_s: Some(60),
        excluded: None,
        label: None,
        label_why: None,
        rows: None,
    };
    let picked = PickedBackup::from_candidate(&chosen, "catalog 'c' on host 'here'".into());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let outcome = PickOutcome {
        picked: picked.clone(),
        chosen: chosen.clone(),
        candidates: vec![chosen],
        incident_at: t0(),
        rpo_s: 60,
        baseline: BTreeMap::new(),
        baseline_source: String::new(),
        window: None,
        warnings: vec![],
        live_evidence: serde_json::Value::Null,
    };
    let mut sim = Sim::new();
    sim.typed.insert("restore".into(), "app".into());
    sim.respond = Box::new(move |req: &ActionRequest| match req {
        ActionRequest::PickBackup(_) => Ok(outcome.clone().into()),
        ActionRequest::Restore(r) => {
            *seen2.lock().unwrap() = Some(r.picked.clone());
            Err("stop here".into())
        }
        other => default_respond(other),
    });
    let (_, exit) = sim.run(State::new(c, t0()));
    assert!(exit.message().contains("stop here"), "{}", exit.message());
    let got = seen.lock().unwrap().clone().expect("the restore ran");
    if held {
        assert_eq!(got, Some(picked));
    } else {
        assert_eq!(got, None);
    }
    // A failed action's journal record carries its class.
    assert_eq!(sim.journal.last().unwrap().data["class"], "failed");
}

#[rstest]
#[case(None, vec!["hello", "look", "stop", "snap"], 1)]
#[case(Some("proceed without snap"), vec!["hello", "look", "stop", "snap"], 1)]
#[case(Some("proceed without snapshot"), vec!["hello", "look", "stop", "snap", "q", "swap"], 0)]
fn snapshot_failure_blocks_destructive_steps_unless_overridden(
    #[case] typed: Option<&str>,
    #[case] ran: Vec<&str>,
    #[case] code: u8,
) {
    let mut sim = Sim::new();
    sim.typed.insert("swap".into(), "app".into());
    if let Some(t) = typed {
        sim.overrides.insert("snap".into(), t.into());
    }
    sim.respond = Box::new(|req| match req {
        ActionRequest::Snapshot(_) => Err("pg_dump failed: disk full".into()),
        other => default_respond(other),
    });
    let (_, exit) = sim.run(fresh(RB));
    assert_eq!(sim.ran, ran);
    assert_eq!(exit.code(), code, "{}", exit.message());
    let k = sim.kinds();
    assert!(k.contains(&"step-failed snap".to_string()));
    if code == 0 {
        let o = sim
            .journal
            .iter()
            .find(|e| e.kind == "confirmed" && e.step.as_deref() == Some("snap"))
            .unwrap();
        assert_eq!(o.data["override"], "snapshot");
    }
}

#[test]
fn journal_failure_before_acting_means_the_step_is_not_performed() {
    let mut sim = Sim::new();
    sim.fail_append = Some(("step-started".into(), "q".into()));
    sim.typed.insert("swap".into(), "app".into());
    let (s, exit) = sim.run(fresh(RB));
    assert_eq!(sim.ran, ["hello", "look", "stop", "snap"]);
    assert!(
        exit.message().contains("nothing was done"),
        "{}",
        exit.message()
    );
    assert_eq!(s.steps[4].status, StepStatus::Failed);
}

#[test]
fn journal_failure_after_acting_says_so() {
    let mut sim = Sim::new();
    sim.fail_append = Some(("step-finished".into(), "look".into()));
    let (_, exit) = sim.run(fresh(RB));
    assert_eq!(sim.ran, ["hello", "look"]);
    assert!(
        exit.message()
            .contains("the step ran, but its outcome could not be journaled")
    );
}

#[rstest]
#[case(None, vec![], 1)]
#[case(Some(Decision::Skip), vec!["swap"], 0)]
#[case(Some(Decision::Rerun), vec!["q", "swap"], 0)]
fn interrupted_step_on_resume(
    #[case] decision: Option<Decision>,
    #[case] ran: Vec<&str>,
    #[case] code: u8,
) {
    let mut records = Vec::new();
    let mut seq = 0;
    for id in ["hello", "look", "stop", "snap"] {
        seq += 1;
        records.push(rec(seq, "step-started", id, json!({})));
        seq += 1;
        records.push(rec(
            seq,
            "step-finished",
            id,
            json!({"database": "app", "path": "/s"}),
        ));
    }
    records.push(rec(seq + 1, "step-started", "q", json!({})));
    let state = State::replay(ctx_of(RB, false, false), &records, t0());
    assert_eq!(state.steps[4].status, StepStatus::Interrupted);
    assert!(
        state.steps[..4]
            .iter()
            .all(|s| s.status == StepStatus::Done)
    );
    assert_eq!(state.steps[5].status, StepStatus::Pending);

    let mut sim = Sim::new();
    sim.typed.insert("swap".into(), "app".into());
    if let Some(d) = decision {
        sim.decisions.insert("q".into(), d);
    }
    let (_, exit) = sim.run(state);
    assert_eq!(sim.ran, ran);
    assert_eq!(exit.code(), code);
    assert!(sim.events.iter().any(|e| matches!(e, EngineEvent::StepChanged { id, status: StepStatus::Interrupted, .. } if id == "q")));
    match decision {
        None => assert!(
            exit.message()
                .contains("interrupted: check before continuing")
        ),
        Some(Decision::Skip) => assert!(sim.kinds().contains(&"step-skipped q".to_string())),
        Some(Decision::Rerun) => assert_eq!(sim.kinds()[0], "confirmed q"),
    }
}

#[test]
fn replay_retries_failed_and_readonly_refused_steps() {
    let records = vec![
        rec(1, "step-started", "hello", json!({})),
        rec(2, "step-finished", "hello", json!({})),
        rec(3, "step-skipped", "look", json!({"reason": "readonly"})),
        rec(4, "step-started", "stop", json!({})),
        rec(5, "step-failed", "stop", json!({"error": "hold failed"})),
    ];
    let s = State::replay(ctx_of(RB, false, false), &records, t0());
    assert_eq!(s.steps[0].status, StepStatus::Done);
    assert_eq!(s.steps[1].status, StepStatus::Pending);
    assert_eq!(s.steps[2].status, StepStatus::Pending);
    assert_eq!(s.steps[2].error.as_deref(), Some("hold failed"));
    assert_eq!(s.steps[2].attempts, 1);
}

#[test]
fn readonly_runs_probes_and_notes_only() {
    let mut sim = Sim::new();
    sim.typed.insert("swap".into(), "app".into());
    let (_, exit) = sim.run(State::new(ctx_of(RB, true, false), t0()));
    assert_eq!(sim.ran, ["hello", "look"]);
    assert_eq!(exit, RunExit::Refused { count: 4 });
    assert_eq!(exit.code(), 1);
    let refused: Vec<&Entry> = sim
        .journal
        .iter()
        .filter(|e| e.kind == "step-skipped")
        .collect();
    assert_eq!(refused.len(), 4);
    assert!(refused.iter().all(|e| e.data["reason"] == "readonly"));
    assert!(!sim.trace.iter().any(|t| t.starts_with("identity")));
}

#[test]
fn dry_run_plans_every_step_and_does_nothing() {
    let mut sim = Sim::new();
    let (_, exit) = sim.run(State::new(ctx_of(RB, false, true), t0()));
    assert_eq!(exit, RunExit::Planned);
    assert!(sim.ran.is_empty());
    assert!(sim.journal.is_empty());
    assert!(sim.trace.is_empty(), "{:?}", sim.trace);
    let plans: Vec<&StepView> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Plan { step } => Some(step),
            _ => None,
        })
        .collect();
    let ids: Vec<&str> = plans.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["hello", "look", "stop", "snap", "q", "swap"]);
    let swap = plans[5];
    assert!(swap.destructive);
    assert_eq!(swap.confirm.as_deref(), Some("app"));
    let all = swap.preview.join("\n");
    assert!(all.contains("pg_terminate_backend"), "{all}");
    assert!(
        all.contains("ALTER DATABASE \"app\" RENAME TO \"app__damaged_20261123T124200Z\""),
        "{all}"
    );
    assert!(
        all.contains("ALTER DATABASE \"app__restore_x\" RENAME TO \"app\""),
        "{all}"
    );
    assert!(
        plans[4]
            .preview
            .join("\n")
            .contains("SELECT count(*) FROM t")
    );
    assert!(
        plans[3]
            .preview
            .join("\n")
            .contains("pg_dump -Fc --no-password -f /state/incidents/i1/snapshots/snap-app-1.dump")
    );
    assert!(
        plans
            .iter()
            .all(|p| !p.preview.is_empty() && p.error.is_none())
    );
}

#[test]
fn dry_run_shows_unknown_outcomes_as_placeholders() {
    let mut ctx = ctx_of(crate::runbook::BUILTIN[0].1, false, true);
    ctx.inventory =
        Inventory::parse(include_str!("../../assets/example-inventory.toml"), "x").unwrap();
    ctx.params.insert(
        "host".into(),
        ParamValue {
            kind: ParamKind::Host,
            value: "prod".into(),
            source: "answers".into(),
        },
    );
    ctx.params.insert(
        "db".into(),
        ParamValue {
            kind: ParamKind::Database,
            value: "main".into(),
            source: "answers".into(),
        },
    );
    ctx.params.insert(
        "catalog".into(),
        ParamValue {
            kind: ParamKind::Catalog,
            value: "external".into(),
            source: "answers".into(),
        },
    );
    ctx.params.insert(
        "incident_at".into(),
        ParamValue {
            kind: ParamKind::Time,
            value: "2026-12-10T12:42:00Z".into(),
            source: "answers".into(),
        },
    );
    let mut sim = Sim::new();
    let (s, exit) = sim.run(State::new(ctx, t0()));
    assert_eq!(exit, RunExit::Planned);
    let v = s.view();
    // 11 shared steps, choose-path, the pitr path's recover-pitr + restore, its closing note.
    assert_eq!(v.steps.len(), 15);
    let swap = v.steps.iter().find(|x| x.id == "swap").unwrap();
    assert!(
        swap.preview
            .join("\n")
            .contains("\"<restore.target_db>\" RENAME TO \"TovPlay\""),
        "{:?}",
        swap.preview
    );
    // No archive covers the database: the pitr steps will be skipped, said so.
    for x in v.steps.iter().filter(|x| x.path.as_deref() == Some("pitr")) {
        assert!(
            x.summary.as_deref().is_some_and(
                |s| s.starts_with("will be skipped: the dump path is taken (no [[archive]]")
            ),
            "{x:?}"
        );
    }
    let restore = v.steps.iter().find(|x| x.id == "restore").unwrap();
    assert!(
        restore
            .preview
            .join("\n")
            .contains("TovPlay__restore_20261123T124200Z"),
        "{:?}",
        restore.preview
    );
    assert!(v.steps.iter().all(|x| x.error.is_none()), "{:?}", v.steps);
}

const GATE: &str = r#"
id = "g"
title = "G"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[step]]
id = "baseline"
action = "verify"
explain = "before"
database = "{db}"
[[step]]
id = "after"
action = "verify"
explain = "after"
database = "{db}"
compare_to = "baseline"
"#;

#[rstest]
#[case(vec![("public.User", 22), ("public.Game", 12)], 0)]
#[case(vec![("public.User", 23), ("public.Game", 12)], 0)]
#[case(vec![("public.User", 0), ("public.Game", 12)], 3)]
#[case(vec![("public.Game", 12)], 3)]
fn verify_compare_refuses_vanished_rows(#[case] after: Vec<(&str, i64)>, #[case] code: u8) {
    let mut sim = Sim::new();
    let mut calls = 0;
    let after: BTreeMap<String, i64> = after.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    sim.respond = Box::new(move |req| {
        calls += 1;
        let counts = if calls == 1 {
            BTreeMap::from([
                ("public.User".to_string(), 22),
                ("public.Game".to_string(), 12),
            ])
        } else {
            after.clone()
        };
        match req {
            ActionRequest::Verify(v) => Ok(VerifyOutcome {
                dbname: v.dbname.clone(),
                ok: true,
                checks: vec![],
                counts,
            }
            .into()),
            other => default_respond(other),
        }
    });
    let (_, exit) = sim.run(fresh(GATE));
    assert_eq!(exit.code(), code, "{}", exit.message());
    if code == 3 {
        assert!(
            exit.message().contains("rows vanished since 'baseline'"),
            "{}",
            exit.message()
        );
        assert!(exit.message().contains("public.User"), "{}", exit.message());
    }
}

#[test]
fn vanished_rows_lists_drops_and_gone_tables() {
    let b = BTreeMap::from([
        ("a".to_string(), 5),
        ("b".to_string(), 3),
        ("c".to_string(), 0),
    ]);
    let a = BTreeMap::from([("a".to_string(), 5), ("b".to_string(), 1)]);
    assert_eq!(vanished_rows(&b, &a), vec![("b".to_string(), 3, Some(1))]);
    let a = BTreeMap::from([("b".to_string(), 3)]);
    assert_eq!(vanished_rows(&b, &a), vec![("a".to_string(), 5, None)]);
}

#[test]
fn inputs_after_the_end_change_nothing() {
    let mut sim = Sim::new();
    let (s, _) = sim.run(fresh(RB));
    let (s2, fx) = apply(
        &s,
        Input::Confirmation {
            step: 5,
            typed: Some("app".into()),
        },
    );
    assert!(fx.is_empty());
    assert_eq!(s2.exit, s.exit);
}

const START_RB: &str = r#"
id = "s"
title = "S"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[step]]
id = "stop"
action = "stop-services"
explain = "stop"
database = "{db}"
[[step]]
id = "start"
action = "start-services"
explain = "start"
database = "{db}"
"#;

#[test]
fn start_services_sees_what_every_attempt_of_a_stop_step_stopped() {
    use crate::inventory::ServiceKind;
    let svc = |cmds: &[&str]| StoppedService {
        name: "db-realtime-sync".into(),
        host: "prod".into(),
        kind: ServiceKind::Systemd,
        commands: cmds.iter().map(|c| c.to_string()).collect(),
        original_kept: None,
        kept_inode: None,
        kept_sha256: None,
        hazard: false,
        cron_line: None,
    };
    // The first attempt stopped, disabled and masked the unit, then its hold
    // failed (a watchdog); the journal holds what it did.
    let first = svc(&[
        "systemctl stop x",
        "systemctl disable x",
        "systemctl mask x",
    ]);
    let records = vec![
        rec(1, "step-started", "stop", json!({})),
        rec(
            2,
            "step-failed",
            "stop",
            json!({"error": "hold failed", "database": "app", "detail": [first]}),
        ),
    ];
    let state = State::replay(ctx_of(START_RB, false, false), &records, t0());
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen2 = seen.clone();
    let mut sim = Sim::new();
    sim.typed.insert("start".into(), "app".into());
    sim.respond = Box::new(move |req| match req {
        // The rerun finds the unit already stopped: it only re-masks it.
        ActionRequest::StopServices(s) => Ok(StopOutcome {
            stopped: vec![svc(&["systemctl mask x"])],
            held_s: s.hold_s,
            still_active: vec![],
            write_sessions: vec![],
            table_writes: BTreeMap::new(),
            plan: vec![],
        }
        .into()),
        ActionRequest::StartServices(r) => {
            seen2.borrow_mut().extend(r.stopped.clone());
            Ok(StartOutcome {
                started: r.stopped.iter().map(|s| s.name.clone()).collect(),
                kept_off: vec![],
            }
            .into())
        }
        other => default_respond(other),
    });
    let (_, exit) = sim.run(state);
    assert_eq!(exit, RunExit::Completed, "{}", exit.message());
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].commands,
        [
            "systemctl stop x",
            "systemctl disable x",
            "systemctl mask x"
        ]
    );
}

/// A pick journaled before `source` was recorded still holds a resumed restore.
#[test]
fn a_pick_journaled_without_its_source_still_reads_as_a_picked_backup() {
    let old = json!({"name": "x.sql", "path": "/b/x.sql", "taken_at": null,
                     "sha256": "ab", "size": 5});
    let p: PickedBackup = serde_json::from_value(old).unwrap();
    assert_eq!(p.path, "/b/x.sql");
    assert_eq!(p.sha256.as_deref(), Some("ab"));
    assert_eq!(p.source, "");
}

const PITR_RB: &str = r#"
id = "pitr"
title = "P"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[step]]
id = "stop"
action = "stop-services"
explain = "stop"
database = "{db}"
[[step]]
id = "snap"
action = "snapshot"
explain = "snap"
database = "{db}"
[[step]]
id = "pitr"
action = "recover-pitr"
explain = "recover beside"
database = "{db}"
healthy_at = "HEALTHY"
[[step]]
id = "restore"
action = "restore"
explain = "restore the recovered dump"
database = "{db}"
backup = "{pitr.dump}"
"#;

const PITR_INV: &str = "[[host]]\nname = \"here\"\ntransport = \"local\"\n[[host]]\nname = \"arch\"\ntransport = \"local\"\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:5432/app\"\n[[archive]]\nname = \"wal\"\nkind = \"wal-dir\"\nhost = \"arch\"\nbase_dir = \"/a/base\"\nwal_dir = \"/a/wal\"\nrecovery_dir = \"/a/rec\"\nARCHIVES";

fn pitr_outcome(name: &str) -> PitrOutcome {
    PitrOutcome {
        archive: "wal".into(),
        host: "arch".into(),
        dump: format!("/a/rec/{name}/recovered.dump"),
        sha256: Some("d0d0cafe".repeat(8)),
        size: 4242,
        target: json!({ "kind": "xid", "xid": 812, "commit_lsn": "0/3001558" }),
        target_text: "just before transaction 812 commits".into(),
        evidence: json!({ "xid": 812, "record": "DELETE" }),
        evidence_text: "transaction 812 committed".into(),
        base_backup: "/a/base/b1".into(),
        refused: vec![("b2".into(), "it ended after the target".into())],
        recovery_dir: format!("/a/rec/{name}"),
        stopped: "recovery stopping before commit of transaction 812".into(),
        xid_status: Some("aborted".into()),
        replay_s: 1.5,
        moved: None,
    }
}

/// recover-pitr resolves its archive (the only one), its window and a new
/// directory name, runs without a typed confirmation (it touches nothing
/// live), journals its evidence; the restore of `{pitr.dump}` needs no
/// catalog: it reads the recovery directory on the archive's host and is
/// held to the dump's SHA-256.
#[test]
fn a_restore_of_the_pitr_dump_reads_its_recovery_dir_held_to_its_hash() {
    let mut c = ctx_of(
        &PITR_RB.replace("HEALTHY", "2026-11-23T12:00:00Z"),
        false,
        false,
    );
    c.inventory = Inventory::parse(&PITR_INV.replace("ARCHIVES", ""), "inv.toml").unwrap();
    let seen_pitr = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_restore = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (p2, r2) = (seen_pitr.clone(), seen_restore.clone());
    let mut sim = Sim::new();
    sim.typed
        .insert("restore".into(), "app as superuser".into());
    sim.respond = Box::new(move |req: &ActionRequest| match req {
        ActionRequest::RecoverPitr(p) => {
            *p2.lock().unwrap() = Some(p.clone());
            Ok(pitr_outcome(&p.name).into())
        }
        ActionRequest::Restore(r) => {
            *r2.lock().unwrap() = Some(r.clone());
            Err("stop here".into())
        }
        other => default_respond(other),
    });
    let (_, exit) = sim.run(State::new(c, t0()));
    assert!(exit.message().contains("stop here"), "{}", exit.message());
    let p = seen_pitr.lock().unwrap().clone().expect("recover-pitr ran");
    assert_eq!(p.archive.name(), "wal");
    assert_eq!(p.host.name, "arch");
    assert_eq!(
        p.healthy_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap())
    );
    assert_eq!(p.damaged_at, None);
    assert_eq!(p.name, "app-20261123T124200Z-1");
    // Not destructive: no confirmation was asked for it.
    assert!(
        !sim.journal
            .iter()
            .any(|e| e.kind == "confirmed" && e.step.as_deref() == Some("pitr")),
        "{:?}",
        sim.kinds()
    );
    // The evidence is journaled with the step's outcome.
    let done = sim
        .journal
        .iter()
        .find(|e| e.kind == "step-finished" && e.step.as_deref() == Some("pitr"))
        .expect("recover-pitr journaled");
    assert_eq!(done.data["evidence"]["xid"], 812);
    assert_eq!(done.data["target"]["kind"], "xid");
    assert_eq!(
        done.data["dump"],
        "/a/rec/app-20261123T124200Z-1/recovered.dump"
    );
    let r = seen_restore.lock().unwrap().clone().expect("restore ran");
    assert_eq!(
        r.backup_path,
        "/a/rec/app-20261123T124200Z-1/recovered.dump"
    );
    assert_eq!(r.catalog.path, "/a/rec/app-20261123T124200Z-1");
    assert_eq!(r.catalog.name(), "recover-pitr:wal");
    assert_eq!(r.host.name, "arch");
    let held = r.picked.expect("held to the dump");
    assert_eq!(held.sha256.as_deref(), Some("d0d0cafe".repeat(8).as_str()));
    assert_eq!(held.path, r.backup_path);
    assert!(
        held.source.contains("recover-pitr step 'pitr'"),
        "{}",
        held.source
    );
}

/// Bad input to recover-pitr is refused before anything runs, with the reason.
#[rstest]
#[case("yesterday", "", "healthy_at 'yesterday' is not an RFC 3339 time")]
#[case(
    "2026-11-23T12:00:00Z",
    "[[archive]]\nname = \"other\"\nkind = \"wal-dir\"\nhost = \"arch\"\nbase_dir = \"/b\"\nwal_dir = \"/w\"\n",
    "several archives could cover database 'app' ('wal', 'other')"
)]
fn recover_pitr_bad_input_is_refused_before_anything_runs(
    #[case] healthy: &str,
    #[case] more: &str,
    #[case] why: &str,
) {
    let mut c = ctx_of(&PITR_RB.replace("HEALTHY", healthy), false, false);
    c.inventory = Inventory::parse(&PITR_INV.replace("ARCHIVES", more), "inv.toml").unwrap();
    let mut sim = Sim::new();
    let (_, exit) = sim.run(State::new(c, t0()));
    assert!(exit.message().contains(why), "{}", exit.message());
    assert_eq!(sim.ran, vec!["stop", "snap"]);
}

const PATHS_RB: &str = r#"
id = "paths"
title = "P"
when = "w"
[[param]]
name = "db"
kind = "database"
from = "inventory"
[[param]]
name = "path"
kind = "text"
from = "ask"
default = "auto"
[[step]]
id = "choose"
action = "choose-path"
explain = "decide"
database = "{db}"
incident_at = "2026-11-23T12:00:00Z"
force = "{path}"
[[step]]
id = "stop"
action = "stop-services"
explain = "stop"
database = "{db}"
[[step]]
id = "snap"
action = "snapshot"
explain = "snap"
database = "{db}"
[[step]]
id = "pick"
action = "pick-backup"
path = "dump"
explain = "pick"
catalog = "nightly"
[[step]]
id = "restore"
action = "restore"
path = "dump"
explain = "restore the dump"
database = "{db}"
catalog = "nightly"
backup = "{pick.backup.path}"
[[step]]
id = "pitr"
action = "recover-pitr"
path = "pitr"
explain = "recover beside"
database = "{db}"
[[step]]
id = "restore"
action = "restore"
path = "pitr"
explain = "restore the recovered dump"
database = "{db}"
backup = "{pitr.dump}"
[[step]]
id = "done"
action = "note"
explain = "close"
text = "restored into {restore.target_db}"
"#;

const CATALOG: &str =
    "[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"/backups\"\ndatabase = \"app\"\n";

/// A world where every action of the two paths answers; choose-path
/// decides what a real archive would (`archive_covers`) unless the
/// request decides itself (forced to dump, no archive).
fn paths_world(
    sim: &mut Sim,
    archive_covers: bool,
) -> std::sync::Arc<std::sync::Mutex<Vec<ActionRequest>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    sim.typed
        .insert("restore".into(), "app as superuser".into());
    sim.respond = Box::new(move |req: &ActionRequest| {
        s2.lock().unwrap().push(req.clone());
        match req {
            ActionRequest::ChoosePath(c) => Ok(match c.decided() {
                Some(d) => d.into(),
                None if archive_covers => PathOutcome {
                    path: PathChoice::Pitr,
                    reason: "archive 'wal' covers the damage".into(),
                    forced: c.forced.as_ref().map(|f| f.1.clone()),
                    archive: Some("wal".into()),
                    target_text: "just before transaction 812 commits".into(),
                    evidence_text: "transaction 812".into(),
                    base_backup: "/a/base/b1".into(),
                }
                .into(),
                None => PathOutcome::dump(
                    "archive 'wal' does not cover the damage: WAL gap: segments A .. B are missing"
                        .into(),
                    None,
                    Some("wal".into()),
                )
                .into(),
            }),
            ActionRequest::PickBackup(_) => Ok(StepOutcome::ok(
                "picked",
                json!({ "backup": { "path": "/backups/app.dump" } }),
            )),
            ActionRequest::RecoverPitr(p) => Ok(pitr_outcome(&p.name).into()),
            ActionRequest::Restore(r) => Ok(StepOutcome::ok(
                "restored",
                json!({ "target_db": r.target_db, "manifest": {}, "from": r.backup_path }),
            )),
            other => default_respond(other),
        }
    });
    seen
}

fn paths_ctx(archive: bool, path: &str) -> RunContext {
    let mut c = ctx_of(PATHS_RB, false, false);
    let inv = if archive {
        PITR_INV.replace("ARCHIVES", CATALOG)
    } else {
        format!("{INV}{CATALOG}")
    };
    c.inventory = Inventory::parse(&inv, "inv.toml").unwrap();
    c.params.insert(
        "path".into(),
        ParamValue {
            kind: ParamKind::Text,
            value: path.into(),
            source: if path == "auto" { "default" } else { "answers" }.into(),
        },
    );
    c
}

fn skipped(sim: &Sim) -> Vec<(String, String, String)> {
    sim.journal
        .iter()
        .filter(|e| e.kind == "step-skipped")
        .map(|e| {
            (
                e.step.clone().unwrap_or_default(),
                e.data["path"].as_str().unwrap_or_default().to_string(),
                e.data["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The dump path: no archive covers the database (or it does not cover
/// the damage): pick and the dump's restore run; recover-pitr and the
/// pitr restore are skipped, journaled with the reason; `{restore.target_db}`
/// after them reads the restore that ran.
#[rstest]
#[case(false, "no [[archive]] in the inventory covers database 'app'")]
#[case(true, "WAL gap: segments A .. B are missing")]
fn the_dump_path_skips_the_pitr_steps_with_the_reason(#[case] archive: bool, #[case] why: &str) {
    let mut sim = Sim::new();
    let seen = paths_world(&mut sim, false);
    let (state, exit) = sim.run(State::new(paths_ctx(archive, "auto"), t0()));
    assert_eq!(exit.code(), 0, "{}", exit.message());
    assert_eq!(
        sim.ran,
        ["choose", "stop", "snap", "pick", "restore", "done"]
    );
    let chose = sim
        .journal
        .iter()
        .find(|e| e.kind == "step-finished" && e.step.as_deref() == Some("choose"))
        .unwrap();
    assert_eq!(chose.data["path"], "dump");
    assert!(
        chose.data["reason"].as_str().unwrap().contains(why),
        "{}",
        chose.data
    );
    assert_eq!(chose.data["forced"], Value::Null);
    assert_eq!(
        skipped(&sim),
        vec![
            ("pitr".to_string(), "pitr".to_string(), "path".to_string()),
            ("restore".into(), "pitr".into(), "path".into()),
        ]
    );
    let skip = sim
        .journal
        .iter()
        .find(|e| e.kind == "step-skipped")
        .unwrap();
    assert!(skip.summary.contains(why), "{}", skip.summary);
    let restore = seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|r| match r {
            ActionRequest::Restore(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(restore.backup_path, "/backups/app.dump");
    assert_eq!(restore.catalog.name(), "nightly");
    let done = sim
        .journal
        .iter()
        .rev()
        .find(|e| e.step.as_deref() == Some("done"))
        .unwrap();
    assert!(
        done.summary.contains("restored into app__restore_"),
        "{}",
        done.summary
    );
    // The view shows the skipped steps as skipped, each with its path.
    let v = state.view();
    let st: Vec<(&str, Option<&str>, StepStatus)> = v
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.path.as_deref(), s.status))
        .collect();
    assert_eq!(st[5], ("pitr", Some("pitr"), StepStatus::Skipped));
    assert_eq!(st[6], ("restore", Some("pitr"), StepStatus::Skipped));
    assert_eq!(st[4], ("restore", Some("dump"), StepStatus::Done));
}

/// The pitr path: pick and the dump's restore are skipped; recover-pitr
/// runs with the archive, and the restore of its dump needs no catalog;
/// a resume maps the shared id `restore` to the step of the chosen path.
#[test]
fn the_pitr_path_skips_the_dump_steps_and_resumes_on_its_own_restore() {
    let mut sim = Sim::new();
    let seen = paths_world(&mut sim, true);
    let (_, exit) = sim.run(State::new(paths_ctx(true, "auto"), t0()));
    assert_eq!(exit.code(), 0, "{}", exit.message());
    assert_eq!(
        sim.ran,
        ["choose", "stop", "snap", "pitr", "restore", "done"]
    );
    assert_eq!(
        skipped(&sim),
        vec![
            ("pick".to_string(), "dump".to_string(), "path".to_string()),
            ("restore".into(), "dump".into(), "path".into()),
        ]
    );
    let reqs = seen.lock().unwrap().clone();
    let choose = reqs
        .iter()
        .find_map(|r| match r {
            ActionRequest::ChoosePath(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert!(choose.forced.is_none());
    assert_eq!(
        choose.incident_at,
        Some(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap())
    );
    assert_eq!(choose.archive.as_ref().unwrap().0.name(), "wal");
    let restore = reqs
        .iter()
        .find_map(|r| match r {
            ActionRequest::Restore(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        restore.backup_path.ends_with("/recovered.dump"),
        "{}",
        restore.backup_path
    );
    assert_eq!(restore.catalog.name(), "recover-pitr:wal");
    // Resume from the journal: the finished `restore` record is the pitr one.
    let records: Vec<Record> = sim
        .journal
        .iter()
        .enumerate()
        .map(|(n, e)| {
            rec(
                n as u64 + 1,
                &e.kind,
                e.step.as_deref().unwrap_or(""),
                e.data.clone(),
            )
        })
        .collect();
    let s = State::replay(paths_ctx(true, "auto"), &records, t0());
    assert_eq!(s.steps[4].status, StepStatus::Skipped, "dump restore");
    assert_eq!(s.steps[6].status, StepStatus::Done, "pitr restore");
    assert_eq!(s.chosen_path().map(|p| p.0), Some(PathChoice::Pitr));
    assert_eq!(s.index_of("restore"), Some(6));
}

/// The operator forces the path: `dump` refuses PITR even when the archive
/// covers the damage, journaled with where it came from; `pitr` reaches the
/// action as forced (which refuses it when the archive cannot serve it);
/// a value that is not a path is refused before anything runs.
#[test]
fn a_forced_path_is_journaled_with_its_source() {
    let mut sim = Sim::new();
    paths_world(&mut sim, true);
    let (_, exit) = sim.run(State::new(paths_ctx(true, "dump"), t0()));
    assert_eq!(exit.code(), 0, "{}", exit.message());
    assert_eq!(
        sim.ran,
        ["choose", "stop", "snap", "pick", "restore", "done"]
    );
    let chose = sim
        .journal
        .iter()
        .find(|e| e.kind == "step-finished" && e.step.as_deref() == Some("choose"))
        .unwrap();
    assert_eq!(chose.data["path"], "dump");
    assert_eq!(chose.data["forced"], "parameter 'path' (answers)");
    assert!(
        chose.data["reason"]
            .as_str()
            .unwrap()
            .starts_with("forced by parameter 'path' (answers)"),
        "{}",
        chose.data
    );

    let mut sim = Sim::new();
    let seen = paths_world(&mut sim, true);
    let (_, exit) = sim.run(State::new(paths_ctx(false, "pitr"), t0()));
    let forced = seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|r| match r {
            ActionRequest::ChoosePath(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(forced.forced.as_ref().map(|f| f.0), Some(PathChoice::Pitr));
    assert!(
        forced.decided().is_none(),
        "forced pitr is the action's to judge"
    );
    assert_eq!(
        exit.code(),
        1,
        "no archive: the (scripted) world refuses later"
    );

    let mut sim = Sim::new();
    paths_world(&mut sim, true);
    let (_, exit) = sim.run(State::new(paths_ctx(true, "tape"), t0()));
    assert!(sim.ran.is_empty(), "{:?}", sim.ran);
    assert!(
        exit.message().contains("force 'tape' is not a path"),
        "{}",
        exit.message()
    );
}

/// A path step reached with no path decided (the choose-path step was
/// skipped on resume) is refused, not guessed.
#[test]
fn a_path_step_without_a_decided_path_is_refused() {
    let records = vec![
        rec(1, "step-started", "choose", json!({})),
        rec(
            2,
            "step-skipped",
            "choose",
            json!({"reason": "interrupted", "decision": "skip"}),
        ),
        rec(3, "step-started", "stop", json!({})),
        rec(
            4,
            "step-finished",
            "stop",
            json!({"database": "app", "held_s": 60}),
        ),
        rec(5, "step-started", "snap", json!({})),
        rec(
            6,
            "step-finished",
            "snap",
            json!({"database": "app", "path": "/s.dump"}),
        ),
    ];
    let mut sim = Sim::new();
    paths_world(&mut sim, true);
    let (_, exit) = sim.run(State::replay(paths_ctx(true, "auto"), &records, t0()));
    assert!(sim.ran.is_empty(), "{:?}", sim.ran);
    assert!(
        exit.message().contains("no path was chosen in this run"),
        "{}",
        exit.message()
    );
}

/// A moved recovery target: parsed from `lsn:` or a time, refused otherwise.
#[rstest]
#[case("lsn:0/3001558", Ok("lsn 0/3001558"))]
#[case("time:2026-11-23T12:41:00Z", Ok("time 2026-11-23T12:41:00+00:00"))]
#[case("2026-11-23T12:41:00Z", Ok("time 2026-11-23T12:41:00+00:00"))]
#[case("xid:812", Err("is not a recovery target"))]
#[case("lsn:3001558", Err("is not a recovery target"))]
#[case("yesterday", Err("is not a recovery target"))]
fn a_moved_target_is_parsed_or_refused(#[case] given: &str, #[case] want: Result<&str, &str>) {
    match (MovedTarget::parse(given), want) {
        (Ok(m), Ok(name)) => {
            assert_eq!(m.name(), name);
            assert!(!m.past_damage);
        }
        (Err(e), Err(why)) => assert!(e.contains(why), "{e}"),
        (got, want) => panic!("{given}: {got:?}, want {want:?}"),
    }
}

/// Moving the target needs a typed phrase naming it (recover-pitr is
/// otherwise confirmed by nobody); the phrase ending "after the damage"
/// is what lets the action accept a target later than the destructive
/// commit; the confirmation is journaled with the moved target.
#[rstest]
#[case(None, None)]
#[case(Some("recover app to lsn 0/3000000"), Some(false))]
#[case(Some("recover app to lsn 0/3000000 after the damage"), Some(true))]
#[case(Some("app"), None)]
#[case(Some("recover app to lsn 0/3000001"), None)]
fn a_moved_target_needs_the_phrase_naming_it(
    #[case] typed: Option<&str>,
    #[case] past: Option<bool>,
) {
    let rb = PITR_RB.replace("HEALTHY", "2026-11-23T12:00:00Z").replace(
        "healthy_at = \"2026-11-23T12:00:00Z\"\n",
        "healthy_at = \"2026-11-23T12:00:00Z\"\ntarget = \"lsn:0/3000000\"\n",
    );
    assert!(rb.contains("target = \"lsn:0/3000000\""));
    let mut c = ctx_of(&rb, false, false);
    c.inventory = Inventory::parse(&PITR_INV.replace("ARCHIVES", ""), "inv.toml").unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let s2 = seen.clone();
    let mut sim = Sim::new();
    if let Some(t) = typed {
        sim.typed.insert("pitr".into(), t.into());
    }
    sim.respond = Box::new(move |req: &ActionRequest| match req {
        ActionRequest::RecoverPitr(p) => {
            *s2.lock().unwrap() = Some(p.clone());
            Err("stop here".into())
        }
        other => default_respond(other),
    });
    let (_, exit) = sim.run(State::new(c, t0()));
    let ran = seen.lock().unwrap().clone();
    match past {
        None => {
            assert!(ran.is_none(), "recover-pitr ran without the phrase");
            assert!(
                exit.message().contains("recover app to lsn 0/3000000"),
                "{}",
                exit.message()
            );
        }
        Some(past) => {
            let p = ran.expect("recover-pitr ran");
            let m = p.moved.expect("moved");
            assert_eq!(m.past_damage, past);
            assert_eq!(m.given, "lsn:0/3000000");
            let conf = sim
                .journal
                .iter()
                .find(|e| e.kind == "confirmed" && e.step.as_deref() == Some("pitr"))
                .expect("the confirmation is journaled");
            assert_eq!(conf.data["typed"], typed.unwrap());
            assert_eq!(conf.data["moved_target"]["given"], "lsn:0/3000000");
            assert_eq!(conf.data["moved_target"]["past_damage"], past);
            let started = sim
                .journal
                .iter()
                .find(|e| e.kind == "step-started" && e.step.as_deref() == Some("pitr"))
                .unwrap();
            assert!(
                started.data["preview"]
                    .to_string()
                    .contains("target MOVED by the operator"),
                "{}",
                started.data
            );
        }
    }
}

/// A failed step with a shared id is retried as the step of the chosen path.
#[test]
fn a_failed_pitr_restore_is_retried_as_the_pitr_step() {
    let records = vec![
        rec(1, "run-started", "", json!({})),
        rec(
            2,
            "step-finished",
            "choose",
            json!({"path": "pitr", "reason": "covered"}),
        ),
        rec(3, "step-finished", "stop", json!({"database": "app"})),
        rec(
            4,
            "step-finished",
            "snap",
            json!({"database": "app", "path": "/s.dump"}),
        ),
        rec(
            5,
            "step-skipped",
            "pick",
            json!({"reason": "path", "path": "dump"}),
        ),
        rec(
            6,
            "step-skipped",
            "restore",
            json!({"reason": "path", "path": "dump"}),
        ),
        rec(
            7,
            "step-finished",
            "pitr",
            json!({"dump": "/a/rec/x/recovered.dump"}),
        ),
        rec(8, "step-started", "restore", json!({"path": "pitr"})),
        rec(9, "step-failed", "restore", json!({"error": "disk full"})),
        rec(10, "run-finished", "", json!({})),
    ];
    let s = State::replay(paths_ctx(true, "auto"), &records[1..9], t0());
    assert_eq!(s.steps[4].status, StepStatus::Skipped);
    assert_eq!(s.steps[6].status, StepStatus::Pending);
    assert_eq!(s.index_of("restore"), Some(6));
    crate::engine::session::retry_allowed(&s, &records, "restore").unwrap();
}

/// `healthy_at = "evidence"` (and choose-path's `incident_at`) reach the
/// action as "derive the bound", not as "no bound".
#[test]
fn evidence_as_the_healthy_time_asks_the_action_to_derive_it() {
    let mut c = ctx_of(&PITR_RB.replace("HEALTHY", "evidence"), false, false);
    c.inventory = Inventory::parse(&PITR_INV.replace("ARCHIVES", ""), "inv.toml").unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let s2 = seen.clone();
    let mut sim = Sim::new();
    sim.respond = Box::new(move |req: &ActionRequest| match req {
        ActionRequest::RecoverPitr(p) => {
            *s2.lock().unwrap() = Some(p.clone());
            Err("stop here".into())
        }
        other => default_respond(other),
    });
    sim.run(State::new(c, t0()));
    let p = seen.lock().unwrap().clone().expect("recover-pitr ran");
    assert_eq!(p.healthy_at, None);
    assert!(p.healthy_from_evidence);
    assert_eq!(p.incident_dir, Some(PathBuf::from("/state/incidents/i1")));

    let rb = PATHS_RB.replace(
        "incident_at = \"2026-11-23T12:00:00Z\"",
        "incident_at = \"evidence\"",
    );
    let mut c = ctx_of(&rb, false, false);
    c.inventory = Inventory::parse(&PITR_INV.replace("ARCHIVES", CATALOG), "inv.toml").unwrap();
    c.params.insert(
        "path".into(),
        ParamValue {
            kind: ParamKind::Text,
            value: "auto".into(),
            source: "default".into(),
        },
    );
    let mut sim = Sim::new();
    let seen = paths_world(&mut sim, true);
    sim.run(State::new(c, t0()));
    let choose = seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|r| match r {
            ActionRequest::ChoosePath(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(choose.incident_at, None);
    assert!(choose.incident_from_evidence);
}

// ---- choosing another backup ---------------------------------------------

const CHOOSE_INV: &str = "[[host]]\nname = \"here\"\ntransport = \"local\"\n[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:5432/app\"\nrestore_role = \"restorer\"\n[[backups]]\nname = \"c\"\nhost = \"here\"\npath = \"/b\"\ndatabase = \"app\"\n";

fn choose_ctx() -> RunContext {
    let mut c = ctx_of(
        &PICK_RB.replace("BACKUP", "{pick.backup.path}"),
        false,
        false,
    );
    c.inventory = Inventory::parse(CHOOSE_INV, "inv.toml").unwrap();
    c
}

fn cand(name: &str, hours_before: i64, rows: u64) -> BackupCandidate {
    BackupCandidate {
        name: name.into(),
        path: format!("/b/{name}"),
        taken_at: Some(t0() - chrono::Duration::hours(hours_before)),
        time_source: "name".into(),
        size: 42,
        sha256: Some(format!("{:0>64}", hours_before)),
        rpo_s: Some(hours_before * 3600),
        excluded: None,
        label: Some("healthy".into()),
        label_why: None,
        rows: Some([("public.accounts".to_string(), rows)].into()),
    }
}

/// newest.sql (preselected, 1 h), older.sql (6 h), mtime.sql (eligible
/// but its time is the mtime only), after.sql (after the incident).
fn pick_outcome() -> PickOutcome {
    let newest = cand("newest.sql", 1, 30);
    let older = cand("older.sql", 6, 20);
    let mut mtime = cand("mtime.sql", 3, 25);
    mtime.time_source = "mtime".into();
    let mut after = cand("after.sql", -1, 0);
    after.excluded = Some("taken after the incident".into());
    PickOutcome {
        picked: PickedBackup::from_candidate(&newest, "catalog 'c' on host 'here'".into()),
        chosen: newest.clone(),
        candidates: vec![newest, older, mtime, after],
        incident_at: t0(),
        rpo_s: 3600,
        baseline: [("public.accounts".to_string(), 30)].into(),
        baseline_source: "the picked backup's scanned counts".into(),
        window: None,
        warnings: vec![],
        live_evidence: serde_json::Value::Null,
    }
}

fn choice(name: &str, typed: Option<&str>) -> BackupChoice {
    BackupChoice {
        name: name.into(),
        reason: "newest.sql was taken during the bad deploy".into(),
        typed: typed.map(str::to_string),
        source: "test".into(),
    }
}

/// A sim whose pick answers `pick_outcome()` and whose restore records
/// the backup it was given (path and the PickedBackup it is held to).
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<PickedBackup>)>>>;

fn choose_sim() -> (Sim, Seen) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let mut sim = Sim::new();
    sim.typed.insert("restore".into(), "app".into());
    sim.respond = Box::new(move |req: &ActionRequest| match req {
        ActionRequest::PickBackup(_) => Ok(pick_outcome().into()),
        ActionRequest::Restore(r) => {
            seen2
                .lock()
                .unwrap()
                .push((r.backup_path.clone(), r.picked.clone()));
            Err("stop after the restore".into())
        }
        other => default_respond(other),
    });
    (sim, seen)
}

fn confirm_questions(sim: &Sim) -> Vec<ConfirmRequest> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Question {
                question: Question::Confirm(c),
            } => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn choosing_another_eligible_backup_is_journaled_and_the_restore_reads_it() {
    let (mut sim, seen) = choose_sim();
    sim.choices
        .insert("restore".into(), choice("older.sql", None));
    let (state, _) = sim.run(State::new(choose_ctx(), t0()));
    // Journaled before anything acts on it, with the preselection and the reason.
    let k = sim.kinds();
    let chosen_at = k
        .iter()
        .position(|k| k == "backup-chosen pick")
        .expect("journaled");
    let started = k.iter().position(|k| k == "step-started restore").unwrap();
    assert!(chosen_at < started, "{k:?}");
    let e = &sim.journal[chosen_at];
    assert_eq!(e.data["chosen"]["name"], "older.sql");
    assert_eq!(e.data["chosen"]["sha256"], format!("{:0>64}", 6));
    assert_eq!(e.data["preselected"]["name"], "newest.sql");
    assert_eq!(
        e.data["reason"],
        "newest.sql was taken during the bad deploy"
    );
    // The restore reads the chosen file, held to its hash.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "/b/older.sql");
    let held = seen[0].1.clone().expect("held to the chosen backup");
    assert_eq!(held.name, "older.sql");
    assert_eq!(held.sha256.as_deref(), Some(format!("{:0>64}", 6).as_str()));
    // The first confirmation named the preselection and offered the others;
    // the second names the chosen backup, its loss and the reason.
    let qs = confirm_questions(&sim);
    assert_eq!(qs.len(), 2);
    let first = qs[0].backup.clone().expect("the backup at stake");
    assert_eq!(first.name, "newest.sql");
    assert_eq!(first.reason, None);
    let names: Vec<&str> = first.eligible.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["newest.sql", "older.sql", "mtime.sql"]);
    assert!(
        first.eligible[2]
            .suspect
            .as_deref()
            .unwrap()
            .contains("mtime")
    );
    let second = qs[1].backup.clone().unwrap();
    assert_eq!(second.name, "older.sql");
    assert_eq!(second.preselected, "newest.sql");
    assert_eq!(second.rpo_s, Some(6 * 3600));
    assert_eq!(second.rows_lost["public.accounts"], 10);
    assert_eq!(
        second.reason.as_deref(),
        Some("newest.sql was taken during the bad deploy")
    );
    assert!(
        qs[1].preview.join("\n").contains("older.sql"),
        "{:?}",
        qs[1].preview
    );
    assert_eq!(
        state.steps[2].outcome.as_ref().unwrap()["backup"]["name"],
        "older.sql"
    );
}

#[rstest]
#[case::after_the_incident("after.sql", None, "is not eligible: taken after the incident")]
#[case::unknown("nope.sql", None, "'nope.sql' is not a candidate")]
#[case::suspect_untyped("mtime.sql", None, "needs its name typed")]
#[case::suspect_mistyped("mtime.sql", Some("mtime"), "typed 'mtime'")]
fn a_refused_choice_stops_the_restore_and_nothing_is_restored(
    #[case] name: &str,
    #[case] typed: Option<&str>,
    #[case] says: &str,
) {
    let (mut sim, seen) = choose_sim();
    sim.choices.insert("restore".into(), choice(name, typed));
    let (state, exit) = sim.run(State::new(choose_ctx(), t0()));
    assert!(seen.lock().unwrap().is_empty(), "nothing restored");
    assert_eq!(exit.code(), 1);
    assert!(exit.message().contains(says), "{}", exit.message());
    if !says.contains("typed") {
        // The refusal lists what may be chosen.
        assert!(
            exit.message()
                .contains("eligible: 'newest.sql', 'older.sql', 'mtime.sql'"),
            "{}",
            exit.message()
        );
    }
    assert!(!sim.kinds().iter().any(|k| k.starts_with("backup-chosen")));
    let failed = sim.journal.last().unwrap();
    assert_eq!(failed.kind, "step-failed");
    assert_eq!(failed.data["class"], "bad-input");
    // The pick still holds its preselection.
    assert_eq!(
        state.steps[2].outcome.as_ref().unwrap()["backup"]["name"],
        "newest.sql"
    );
}

#[test]
fn a_suspect_backup_is_chosen_when_its_name_is_typed() {
    let (mut sim, seen) = choose_sim();
    sim.choices
        .insert("restore".into(), choice("mtime.sql", Some("mtime.sql")));
    sim.run(State::new(choose_ctx(), t0()));
    assert_eq!(seen.lock().unwrap()[0].0, "/b/mtime.sql");
    let e = sim
        .journal
        .iter()
        .find(|e| e.kind == "backup-chosen")
        .unwrap();
    assert!(e.data["suspect"].as_str().unwrap().contains("mtime"));
    assert_eq!(e.data["typed"], "mtime.sql");
}

#[test]
fn resume_replays_the_choice_and_restores_the_chosen_backup() {
    // The first run chose older.sql, then died before the restore ran.
    let (mut sim, _) = choose_sim();
    sim.choices
        .insert("restore".into(), choice("older.sql", None));
    sim.typed.clear();
    let (_, exit) = sim.run(State::new(choose_ctx(), t0()));
    assert_eq!(exit.code(), 1, "{}", exit.message());
    let records: Vec<Record> = sim
        .journal
        .iter()
        .enumerate()
        .map(|(n, e)| {
            rec(
                n as u64 + 1,
                &e.kind,
                e.step.as_deref().unwrap_or(""),
                e.data.clone(),
            )
        })
        .collect();
    assert!(records.iter().any(|r| r.kind == "backup-chosen"));
    // Resumed: the pick is not run again, the restore reads the chosen one.
    let (mut sim, seen) = choose_sim();
    let (_, _) = sim.run(State::replay(choose_ctx(), &records, t0()));
    assert!(!sim.ran.contains(&"pick".to_string()), "{:?}", sim.ran);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "/b/older.sql");
    assert_eq!(seen[0].1.as_ref().unwrap().name, "older.sql");
    let q = &confirm_questions(&sim)[0];
    let b = q.backup.as_ref().unwrap();
    assert_eq!(
        (b.name.as_str(), b.preselected.as_str()),
        ("older.sql", "newest.sql")
    );
}

/// The answers file's `[pick]`: a good name is chosen; an unknown or an
/// excluded one stops the restore naming the file:line:col of `backup` and
/// the eligible candidates.
#[rstest]
#[case::good("older.sql", None)]
#[case::unknown("nope.sql", Some("'nope.sql' is not a candidate"))]
#[case::excluded(
    "after.sql",
    Some("'after.sql' is not eligible: taken after the incident")
)]
fn answers_pick_chooses_or_is_refused_with_its_location(
    #[case] name: &str,
    #[case] refused: Option<&str>,
) {
    let rb = Runbook::parse(&PICK_RB.replace("BACKUP", "{pick.backup.path}"), "t.toml").unwrap();
    let text = format!(
        "[confirm]\nrestore = \"app\"\n\n[pick]\nbackup = \"{name}\"\nreason = \"the newest is from the deploy\"\n"
    );
    let a = crate::engine::Answers::parse(&text, "a.toml", &rb).unwrap();
    let p = a.pick.clone().expect("[pick] read");
    assert_eq!(p.step, "pick");
    assert_eq!(p.choice.source, "answers file a.toml:5:10");
    let (mut sim, seen) = choose_sim();
    sim.choices.insert("restore".into(), p.choice);
    let (_, exit) = sim.run(State::new(choose_ctx(), t0()));
    match refused {
        None => assert_eq!(seen.lock().unwrap()[0].0, "/b/older.sql"),
        Some(why) => {
            assert!(seen.lock().unwrap().is_empty());
            let m = exit.message();
            assert!(m.contains("answers file a.toml:5:10"), "{m}");
            assert!(m.contains(why), "{m}");
            assert!(
                m.contains("eligible: 'newest.sql', 'older.sql', 'mtime.sql'"),
                "{m}"
            );
        }
    }
}

/// Issue 19: a start-services step that would start nothing (every job this
/// run stopped is a hazard kept off or a process that was not running) asks
/// no typed confirmation; one that starts a unit still does.
#[test]
fn start_services_that_starts_nothing_asks_no_confirmation() {
    use crate::inventory::ServiceKind;
    let svc = |name: &str, kind: ServiceKind, cmds: &[&str], hazard: bool| StoppedService {
        name: name.into(),
        host: "prod".into(),
        kind,
        commands: cmds.iter().map(|c| c.to_string()).collect(),
        original_kept: None,
        kept_inode: None,
        kept_sha256: None,
        hazard,
        cron_line: None,
    };
    let run = |stopped: Vec<StoppedService>| {
        let mut sim = Sim::new();
        // No typed answer for 'start': a confirmation asked would stop the run.
        sim.respond = Box::new(move |req| match req {
            ActionRequest::StopServices(s) => Ok(StopOutcome {
                stopped: stopped.clone(),
                held_s: s.hold_s,
                still_active: vec![],
                write_sessions: vec![],
                table_writes: BTreeMap::new(),
                plan: vec![],
            }
            .into()),
            ActionRequest::StartServices(r) => Ok(StartOutcome {
                started: vec![],
                kept_off: r
                    .stopped
                    .iter()
                    .map(|s| KeptOff {
                        name: s.name.clone(),
                        reason: "kept".into(),
                    })
                    .collect(),
            }
            .into()),
            other => default_respond(other),
        });
        let (_, exit) = sim.run(fresh(START_RB));
        let asked = sim
            .events
            .iter()
            .any(|e| matches!(e, EngineEvent::Question { question: Question::Confirm(c) } if c.step == "start"));
        (exit, asked, sim.ran.clone())
    };
    let nothing = vec![
        svc("sync", ServiceKind::Systemd, &["systemctl stop sync"], true),
        svc("loop.sh", ServiceKind::Process, &[], false),
        // Killed, but the inventory names no start command for it.
        svc("writer", ServiceKind::Process, &["kill -TERM 42"], false),
    ];
    let (exit, asked, ran) = run(nothing);
    assert_eq!(exit, RunExit::Completed, "{}", exit.message());
    assert!(
        !asked,
        "a step that starts nothing asked for a typed confirmation"
    );
    assert!(ran.iter().any(|r| r == "start"), "{ran:?}");
    let unit = vec![svc(
        "app",
        ServiceKind::Systemd,
        &["systemctl stop app"],
        false,
    )];
    let (exit, asked, _) = run(unit);
    assert!(asked, "a step that starts a unit must ask");
    assert_ne!(exit, RunExit::Completed, "{}", exit.message());
}
