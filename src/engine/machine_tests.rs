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
    assert_eq!(v.steps.len(), 11);
    let swap = v.steps.iter().find(|x| x.id == "swap").unwrap();
    assert!(
        swap.preview
            .join("\n")
            .contains("\"<restore.target_db>\" RENAME TO \"TovPlay\""),
        "{:?}",
        swap.preview
    );
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
