//! The engine loop through the library: no action without a journal line
//! (/dev/full), unwired actions fail loudly, command timeouts kill the whole
//! process group, and a TUI-style channel operator confirms a real step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use lifeline::actions::DirectActions;
use lifeline::engine::{
    Answer, Answers, AnswersOperator, ChannelOperator, Engine, EngineEvent, ParamValue, Params,
    Question, RunContext, RunExit, State, StepStatus,
};
use lifeline::inventory::Inventory;
use lifeline::journal::{Journal, read_records};
use lifeline::redact::Redactor;
use lifeline::runbook::{ParamKind, Runbook};

fn ctx(rb: &str, inv: &str, params: Params, dir: &Path) -> RunContext {
    RunContext {
        runbook: Runbook::parse(rb, "t.toml").unwrap(),
        inventory: Inventory::parse(inv, "inv.toml").unwrap(),
        params,
        incident: "i1".into(),
        incident_dir: dir.to_path_buf(),
        readonly: false,
        dry_run: false,
    }
}

const LOCAL: &str = "[[host]]\nname = \"here\"\ntransport = \"local\"\n";

fn command_runbook(cmd: &str, timeout_s: u64) -> String {
    format!(
        "id = \"c\"\ntitle = \"C\"\nwhen = \"w\"\n[[step]]\nid = \"act\"\naction = \"command\"\nexplain = \"run it\"\nhost = \"here\"\ndestructive = false\ntimeout_s = {timeout_s}\ncommand = '''{cmd}'''\n"
    )
}

#[tokio::test]
async fn a_step_whose_journal_line_cannot_be_written_is_not_performed() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("marker");
    let jp = d.path().join("journal.jsonl");
    std::os::unix::fs::symlink("/dev/full", &jp).unwrap();
    let journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let rb = command_runbook(&format!("touch {}", marker.display()), 10);
    let state = State::new(ctx(&rb, LOCAL, Params::new(), d.path()), Utc::now());
    let mut engine = Engine::new(
        state,
        DirectActions::default(),
        journal,
        AnswersOperator {
            answers: Answers::default(),
        },
        Redactor::new(),
    );
    let exit = engine.run(Utc::now()).await;
    match &exit {
        RunExit::Failed { step, reason } => {
            assert_eq!(step, "act");
            assert!(reason.contains("No space left on device"), "{reason}");
            assert!(reason.contains("nothing was done"), "{reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(!marker.exists(), "the command ran without a journal line");
    assert_eq!(engine.state().steps[0].status, StepStatus::Failed);
}

#[tokio::test]
async fn the_same_step_runs_when_the_journal_is_writable() {
    // The control for the test above: the command does run and is journaled.
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("marker");
    let jp = d.path().join("journal.jsonl");
    let journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let rb = command_runbook(&format!("touch {} && echo made it", marker.display()), 10);
    let state = State::new(ctx(&rb, LOCAL, Params::new(), d.path()), Utc::now());
    let mut engine = Engine::new(
        state,
        DirectActions::default(),
        journal,
        AnswersOperator {
            answers: Answers::default(),
        },
        Redactor::new(),
    );
    assert_eq!(engine.run(Utc::now()).await, RunExit::Completed);
    assert!(marker.exists());
    let recs = read_records(&jp).unwrap();
    let fin = recs.iter().find(|r| r.kind == "step-finished").unwrap();
    assert_eq!(fin.exit, Some(0));
    assert_eq!(fin.data["output"][0], "made it");
}

#[tokio::test]
async fn unwired_actions_fail_the_step_with_a_clear_message() {
    let d = tempfile::tempdir().unwrap();
    let jp = d.path().join("journal.jsonl");
    let journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let rb = "id = \"p\"\ntitle = \"P\"\nwhen = \"w\"\n[[step]]\nid = \"look\"\naction = \"probe\"\nexplain = \"look\"\nhost = \"here\"\n[[step]]\nid = \"never\"\naction = \"note\"\nexplain = \"not reached\"\n";
    let state = State::new(ctx(rb, LOCAL, Params::new(), d.path()), Utc::now());
    let mut engine = Engine::new(
        state,
        DirectActions::default(),
        journal,
        AnswersOperator {
            answers: Answers::default(),
        },
        Redactor::new(),
    );
    let exit = engine.run(Utc::now()).await;
    assert_eq!(exit.code(), 1);
    assert!(
        exit.message()
            .contains("the 'probe' action is not wired into this build yet"),
        "{}",
        exit.message()
    );
    let recs = read_records(&jp).unwrap();
    let kinds: Vec<&str> = recs.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["step-started", "step-failed", "run-finished"]);
    assert_eq!(recs[1].data["phase"], "act");
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only count a process that still runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test]
async fn a_command_that_times_out_is_killed_with_its_children() {
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("pid");
    let jp = d.path().join("journal.jsonl");
    let journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let rb = command_runbook(
        &format!(
            "sleep 300 & echo $! > {}; echo started; wait",
            pidfile.display()
        ),
        1,
    );
    let state = State::new(ctx(&rb, LOCAL, Params::new(), d.path()), Utc::now());
    let mut engine = Engine::new(
        state,
        DirectActions::default(),
        journal,
        AnswersOperator {
            answers: Answers::default(),
        },
        Redactor::new(),
    );
    let mut rx = engine.subscribe();
    let exit = engine.run(Utc::now()).await;
    assert!(
        exit.message().contains("timed out after 1 s"),
        "{}",
        exit.message()
    );
    let mut lines = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let EngineEvent::Output { line, .. } = ev {
            lines.push(line);
        }
    }
    assert_eq!(lines, ["started"]);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the child 'sleep 300' ({pid}) survived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn channel_operator_confirms_a_destructive_sql_step_on_a_real_database() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    let d = tempfile::tempdir().unwrap();
    let inv = format!(
        "{LOCAL}[[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:{}/app\"\n",
        pg.port()
    );
    let rb = "id = \"s\"\ntitle = \"S\"\nwhen = \"w\"\n[[param]]\nname = \"db\"\nkind = \"database\"\nfrom = \"inventory\"\n[[step]]\nid = \"make\"\naction = \"sql\"\nexplain = \"create a table\"\ndatabase = \"{db}\"\nsql = \"CREATE TABLE made_here (x int); INSERT INTO made_here VALUES (1)\"\n[[step]]\nid = \"ro\"\naction = \"sql\"\nexplain = \"a read-only step cannot write\"\ndatabase = \"{db}\"\ndestructive = false\nsql = \"INSERT INTO made_here VALUES (2)\"\n";
    let mut params = Params::new();
    params.insert(
        "db".into(),
        ParamValue {
            kind: ParamKind::Database,
            value: "app".into(),
            source: "test".into(),
        },
    );
    let jp: PathBuf = d.path().join("journal.jsonl");
    let journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let (answers, operator) = ChannelOperator::new();
    let mut engine = Engine::new(
        State::new(ctx(rb, &inv, params, d.path()), Utc::now()),
        DirectActions::default(),
        journal,
        operator,
        Redactor::new(),
    );
    let mut rx = engine.subscribe();
    let view = engine.watch();
    let task = tokio::spawn(async move { engine.run(Utc::now()).await });
    // The front end: answer the confirmation it is shown.
    let mut asked = None;
    while let Ok(ev) = rx.recv().await {
        match ev {
            EngineEvent::Question {
                question: Question::Confirm(c),
            } => {
                assert_eq!(c.expected, "app");
                assert!(c.identity.oid.is_some());
                assert!(c.preview.join("\n").contains("CREATE TABLE made_here"));
                asked = Some(c.identity.clone());
                answers
                    .send(Answer::Typed(Some("app".into())))
                    .await
                    .unwrap();
            }
            EngineEvent::RunFinished { .. } => break,
            _ => {}
        }
    }
    let exit = task.await.unwrap();
    assert!(asked.is_some());
    // The read-only step was refused by the server: the session is read-only.
    assert_eq!(exit.code(), 1);
    assert!(
        exit.message().contains("read-only transaction"),
        "{}",
        exit.message()
    );
    assert_eq!(
        pg.psql("app", "SELECT count(*) FROM made_here").unwrap(),
        "1"
    );
    let v = view.borrow().clone();
    assert_eq!(v.steps[0].status, StepStatus::Done);
    assert_eq!(v.steps[1].status, StepStatus::Failed);
    assert_eq!(v.exit.as_ref().map(RunExit::code), Some(1));
    let recs = read_records(&jp).unwrap();
    let confirmed = recs.iter().find(|r| r.kind == "confirmed").unwrap();
    assert_eq!(confirmed.data["typed"], "app");
}

/// Retry of a failed step (the console's `r`, issue 19): the run resumes,
/// a `confirmed` record with `decision = "rerun"` is journaled, the failed
/// step runs again and the run completes; a step that did not fail, or is
/// not the one the run stopped at, is refused with nothing journaled.
#[tokio::test]
async fn a_failed_step_is_retried_through_a_resume_and_journaled_as_rerun() {
    use lifeline::engine::session::{RunSpec, start_on};
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("marker");
    let rb_text = format!(
        "id = \"c\"\ntitle = \"C\"\nwhen = \"w\"\n\
         [[step]]\nid = \"first\"\naction = \"command\"\nexplain = \"e\"\nhost = \"here\"\ndestructive = false\ntimeout_s = 10\ncommand = 'true'\n\
         [[step]]\nid = \"act\"\naction = \"command\"\nexplain = \"e\"\nhost = \"here\"\ndestructive = false\ntimeout_s = 10\ncommand = '''test -e {}'''\n\
         [[step]]\nid = \"last\"\naction = \"command\"\nexplain = \"e\"\nhost = \"here\"\ndestructive = false\ntimeout_s = 10\ncommand = 'true'\n",
        marker.display()
    );
    let rb = Runbook::parse(&rb_text, "c.toml").unwrap();
    let inv = Inventory::parse(LOCAL, "inv.toml").unwrap();
    let state_dir = lifeline::state::StateDir::new(d.path().join("state"));
    let jp = d.path().join("journal.jsonl");
    let mut journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let answers = Answers::default();
    let redactor = Redactor::new();
    let spec = |retry: Option<&'static str>| RunSpec {
        runbook: &rb,
        inventory: inv.clone(),
        answers: &answers,
        state_dir: &state_dir,
        incident: None,
        resume: false,
        retry,
        readonly: false,
        operator: "op",
        inventory_path: None,
        redactor: &redactor,
        now: Utc::now(),
    };
    let run = |state: State, journal: Journal| async {
        let mut engine = Engine::new(
            state,
            DirectActions::default(),
            journal,
            AnswersOperator {
                answers: Answers::default(),
            },
            Redactor::new(),
        );
        engine.run(Utc::now()).await
    };
    let (state, _) = start_on(spec(None), &mut journal).unwrap();
    let exit = run(state, journal).await;
    assert_eq!(exit.code(), 1, "{exit:?}");

    // Refused: a step that did not fail, a step after the failed one.
    let mut journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let n = read_records(&jp).unwrap().len();
    for (step, why) in [
        ("first", "its last outcome is not a failure"),
        ("last", "its last outcome is not a failure"),
        ("nope", "no such step"),
    ] {
        let e = start_on(spec(Some(step)), &mut journal).err().unwrap();
        let msg = e.lines.join("; ");
        assert!(
            msg.contains(&format!("cannot retry step '{step}'")),
            "{msg}"
        );
        assert!(msg.contains(why), "{msg}");
        assert!(msg.contains("nothing was done"), "{msg}");
    }
    assert_eq!(
        read_records(&jp).unwrap().len(),
        n,
        "a refusal journals nothing"
    );

    // The cause fixed, the failed step retried: it runs again and the run completes.
    std::fs::write(&marker, b"").unwrap();
    let (state, _) = start_on(spec(Some("act")), &mut journal).unwrap();
    let exit = run(state, journal).await;
    assert_eq!(exit, RunExit::Completed, "{exit:?}");
    let recs = read_records(&jp).unwrap();
    let rerun = recs
        .iter()
        .find(|r| r.kind == "confirmed" && r.data["decision"] == "rerun")
        .expect("a rerun record");
    assert_eq!(rerun.step.as_deref(), Some("act"));
    assert_eq!(rerun.data["failed"], true);
    let started = |id: &str| {
        recs.iter()
            .filter(|r| r.kind == "step-started" && r.step.as_deref() == Some(id))
            .count()
    };
    assert_eq!(
        (started("first"), started("act"), started("last")),
        (1, 2, 1)
    );

    // Once it succeeded, there is nothing to retry.
    let mut journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let e = start_on(spec(Some("act")), &mut journal).err().unwrap();
    assert!(
        e.lines.join("; ").contains("not a failure"),
        "{:?}",
        e.lines
    );
}

/// Export after a failed run (issue 19): markdown, JSON and HTML name the
/// failed step, its error class (`data.class`) and message, with the
/// control bytes of the failing command's output escaped.
#[tokio::test]
async fn the_export_of_a_failed_run_names_the_step_its_class_and_message() {
    use lifeline::engine::session::{RunSpec, open_live};
    let d = tempfile::tempdir().unwrap();
    let rb_text = "id = \"c\"\ntitle = \"C\"\nwhen = \"w\"\n\
         [[step]]\nid = \"first\"\naction = \"command\"\nexplain = \"e\"\nhost = \"here\"\ndestructive = false\ntimeout_s = 10\ncommand = 'true'\n\
         [[step]]\nid = \"act\"\naction = \"command\"\nexplain = \"e\"\nhost = \"here\"\ndestructive = false\ntimeout_s = 10\ncommand = '''printf 'boom\\033[2J\\001x' >&2; exit 3'''\n";
    let rb = Runbook::parse(rb_text, "c.toml").unwrap();
    let inv = Inventory::parse(LOCAL, "inv.toml").unwrap();
    let state = d.path().join("state");
    let state_dir = lifeline::state::StateDir::new(&state);
    let answers = Answers::default();
    let redactor = Redactor::new();
    let live = open_live(RunSpec {
        runbook: &rb,
        inventory: inv,
        answers: &answers,
        state_dir: &state_dir,
        incident: None,
        resume: false,
        retry: None,
        readonly: false,
        operator: "op",
        inventory_path: None,
        redactor: &redactor,
        now: Utc::now(),
    })
    .unwrap();
    let id = live.incident.clone();
    let mut engine = Engine::new(
        live.state,
        DirectActions::default(),
        live.journal,
        AnswersOperator {
            answers: Answers::default(),
        },
        Redactor::new(),
    );
    let exit = engine.run(Utc::now()).await;
    assert_eq!(exit.code(), 1, "{exit:?}");
    let failed = read_records(&live.journal_path)
        .unwrap()
        .into_iter()
        .find(|r| r.kind == "step-failed")
        .unwrap();
    let class = failed.data["class"].as_str().unwrap().to_string();
    assert!(!class.is_empty());

    for fmt in ["md", "json", "html"] {
        let out = d.path().join(format!("x.{fmt}"));
        let o = support::lifeline(&state)
            .args(["export", &id, "--format", fmt, "--tz", "Z", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{fmt}: {}", support::stderr(&o));
        let doc = std::fs::read_to_string(&out).unwrap();
        assert!(
            !doc.contains('\u{1b}') && !doc.contains('\u{1}'),
            "{fmt}: raw control bytes"
        );
        match fmt {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
                let f = &v["summary"]["steps"]["failures"][0];
                assert_eq!(f["step"], "act", "{f}");
                assert_eq!(f["action"], "command", "{f}");
                assert_eq!(f["class"], class.as_str(), "{f}");
                let m = f["message"].as_str().unwrap();
                assert!(m.contains("exited with status 3"), "{m}");
            }
            _ => {
                assert!(doc.contains("Failed step"), "{fmt}: {doc}");
                assert!(doc.contains(&class), "{fmt}: no class {class}");
                assert!(doc.contains("exited with status 3"), "{fmt}");
            }
        }
    }
}
