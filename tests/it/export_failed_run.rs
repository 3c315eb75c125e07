//! Exports of runs that went wrong (issue 19): a step whose output carries
//! binary bytes (NUL, ESC, C0, raw and encoded C1, bidi overrides, a 100 KB
//! line), after a real pick whose loss must read in the export's one unit;
//! and an operator abort at a typed confirmation, recorded as an abort.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::Command;

use chrono::{Duration, Utc};
use lifeline::actions::DirectActions;
use lifeline::engine::session::{RunSpec, open_live};
use lifeline::engine::{Answer, Answers, ChannelOperator, Engine, EngineEvent, Question};
use lifeline::inventory::Inventory;
use lifeline::journal::read_records;
use lifeline::redact::Redactor;
use lifeline::runbook::Runbook;

/// Every export format of `incident`, written under `dir`.
fn exports(
    state: &std::path::Path,
    dir: &std::path::Path,
    incident: &str,
) -> Vec<(String, String)> {
    ["md", "json", "html"]
        .iter()
        .map(|fmt| {
            let out = dir.join(format!("x.{fmt}"));
            let o = support::lifeline(state)
                .args(["export", incident, "--format", fmt, "--tz", "Z", "-o"])
                .arg(&out)
                .output()
                .unwrap();
            assert!(o.status.success(), "{fmt}: {}", support::stderr(&o));
            (fmt.to_string(), std::fs::read_to_string(&out).unwrap())
        })
        .collect()
}

/// No C0 control other than newline/tab/CR, no C1, no bidi override.
fn assert_no_control(fmt: &str, doc: &str) {
    let bad: Vec<(usize, char)> = doc
        .char_indices()
        .filter(|(_, c)| {
            (c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
                || matches!(*c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .take(5)
        .collect();
    assert!(bad.is_empty(), "{fmt}: control characters {bad:?}");
}

const PICK_THEN_FAIL: &str = r#"
id = "pick-then-fail"
title = "Export test: a pick, a note with its loss, a step that fails with binary output"
when = "Only in the export test."

[[param]]
name = "catalog"
kind = "catalog"
from = "inventory"
explain = "The backup catalog."

[[step]]
id = "pick"
action = "pick-backup"
explain = "Judge every backup against the incident time."
catalog = "{catalog}"
incident_at = "INCIDENT_AT"

[[step]]
id = "said"
action = "note"
explain = "Say what the pick loses."
text = "picked {pick.backup.name} (changes lost: {pick.rpo})"

[[step]]
id = "look"
action = "command"
explain = "A probe script that fails with binary output."
host = "here"
destructive = false
timeout_s = 20
command = '''printf 'probe\000nul \033[2J\033]0;owned\007 c1 \302\233 raw \233 bidi \342\200\256gnp.exe\n'; printf 'err\000\033[31m\342\200\256x\n' >&2; head -c 100000 /dev/zero | tr '\000' 'y'; exit 3'''
"#;

#[test]
fn a_failed_run_with_binary_output_exports_clean_and_says_its_loss_in_one_unit() {
    let pg = support::pg();
    pg.create_db("shop").unwrap();
    pg.psql(
        "shop",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50)",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // One dump, named 2 h 05 min before the incident.
    let incident = (Utc::now() - Duration::minutes(1)).with_nanosecond_zero();
    let taken = incident - Duration::minutes(125);
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    // Plain SQL: no time in its header, so the name's time counts.
    let name = format!("shop_{}.sql", taken.format("%Y%m%d_%H%M%S"));
    let o = Command::new(pg.bin("pg_dump"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .args(["-d", "shop", "-f"])
        .arg(backups.join(&name))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    let inv = format!(
        "{}\n[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"{}\"\npattern = \"shop_%Y%m%d_%H%M%S.sql\"\ndatabase = \"main\"\n",
        support::db_inventory_text(&pg, "shop", ""),
        backups.display()
    );
    std::fs::write(dir.join("lifeline.toml"), inv).unwrap();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    std::fs::write(
        dir.join("runbooks/pick-then-fail.toml"),
        PICK_THEN_FAIL.replace("INCIDENT_AT", &incident.to_rfc3339()),
    )
    .unwrap();
    std::fs::write(
        dir.join("answers.toml"),
        "[params]\ncatalog = \"nightly\"\n",
    )
    .unwrap();
    let state = dir.join("state");
    let o = support::lifeline(&state)
        .env("LIFELINE_RUNBOOKS", dir.join("runbooks"))
        .arg("-i")
        .arg(dir.join("lifeline.toml"))
        .args(["run", "pick-then-fail", "--answers"])
        .arg(dir.join("answers.toml"))
        .output()
        .unwrap();
    let out = support::stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", support::stderr(&o));
    let incidents: Vec<_> = std::fs::read_dir(state.join("incidents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(incidents.len(), 1);
    for (fmt, doc) in exports(&state, dir, &incidents[0]) {
        assert_no_control(&fmt, &doc);
        // The loss: one unit everywhere (the summary, the pick, the note).
        assert!(doc.contains("2 h 05 min"), "{fmt}: no '2 h 05 min'");
        assert!(!doc.contains("7500 s"), "{fmt}: the loss in seconds");
        assert!(
            doc.contains(&format!("picked {name} (changes lost: 2 h 05 min)")),
            "{fmt}: the note with its loss"
        );
        // The failure is named; the 100 KB line is not pasted whole.
        assert!(doc.contains("exited with status 3"), "{fmt}");
        let longest = doc.lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 20_000, "{fmt}: a {longest}-byte line");
        if fmt == "json" {
            let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
            let f = &v["summary"]["steps"]["failures"][0];
            assert_eq!(f["step"], "look", "{f}");
        }
    }
}

/// Chrono has no "drop the sub-seconds" on DateTime in one call.
trait NoNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl NoNanos for chrono::DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

#[tokio::test]
async fn an_operator_abort_at_a_confirmation_is_exported_as_an_abort() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    let d = tempfile::tempdir().unwrap();
    let rb_text = "id = \"a\"\ntitle = \"A\"\nwhen = \"w\"\n\
         [[param]]\nname = \"db\"\nkind = \"database\"\nfrom = \"inventory\"\n\
         [[step]]\nid = \"make\"\naction = \"sql\"\nexplain = \"create a table\"\ndatabase = \"{db}\"\nsql = \"CREATE TABLE made_here (x int)\"\n";
    let rb = Runbook::parse(rb_text, "a.toml").unwrap();
    let inv = Inventory::parse(&support::db_inventory_text(&pg, "app", ""), "inv.toml").unwrap();
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
    let (tx, operator) = ChannelOperator::new();
    let mut engine = Engine::new(
        live.state,
        DirectActions::default(),
        live.journal,
        operator,
        Redactor::new(),
    );
    let mut rx = engine.subscribe();
    let task = tokio::spawn(async move { engine.run(Utc::now()).await });
    // The console's X at the typed confirmation.
    while let Ok(ev) = rx.recv().await {
        match ev {
            EngineEvent::Question {
                question: Question::Confirm(_),
            } => tx.send(Answer::Abort).await.unwrap(),
            EngineEvent::RunFinished { .. } => break,
            _ => {}
        }
    }
    let exit = task.await.unwrap();
    assert_eq!(exit.code(), 1);
    assert!(
        exit.message().contains("aborted by the operator"),
        "{}",
        exit.message()
    );
    let failed = read_records(&live.journal_path)
        .unwrap()
        .into_iter()
        .find(|r| r.kind == "step-failed")
        .unwrap();
    assert_eq!(failed.data["class"], "aborted", "{:?}", failed.data);
    assert_eq!(failed.data["aborted"], true);
    // Nothing was done.
    assert!(
        pg.psql("app", "SELECT to_regclass('made_here') IS NULL")
            .unwrap()
            == "t"
    );
    for (fmt, doc) in exports(&state, d.path(), &id) {
        assert_no_control(&fmt, &doc);
        assert!(doc.contains("aborted by the operator"), "{fmt}: {doc}");
        assert!(
            !doc.contains("not confirmed"),
            "{fmt}: said 'not confirmed'"
        );
        if fmt == "json" {
            let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
            let f = &v["summary"]["steps"]["failures"][0];
            assert_eq!(f["class"], "aborted", "{f}");
        } else {
            assert!(doc.contains("aborted"), "{fmt}");
        }
    }
}
