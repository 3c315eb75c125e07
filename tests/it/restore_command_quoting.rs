//! Values interpolated into `command` steps (a picked backup's path, a
//! parameter) are shell-quoted: a backup file named with `;`, `$()`,
//! backticks, a newline or quotes reaches the command as one word and
//! nothing in it runs. Raw insertion takes `{raw:...}`, which `lifeline
//! check` flags.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;

use chrono::Utc;
use lifeline::actions::DirectActions;
use lifeline::engine::{
    Answers, AnswersOperator, Engine, ParamValue, Params, RunContext, RunExit, State,
};
use lifeline::inventory::Inventory;
use lifeline::journal::{Journal, read_records};
use lifeline::redact::Redactor;
use lifeline::runbook::{ParamKind, Runbook};

const LOCAL: &str = "[[host]]\nname = \"here\"\ntransport = \"local\"\n";

fn runbook(command: &str) -> String {
    format!(
        "id = \"c\"\ntitle = \"C\"\nwhen = \"w\"\n[[param]]\nname = \"path\"\nkind = \"text\"\nfrom = \"ask\"\nexplain = \"a backup path\"\n[[step]]\nid = \"act\"\naction = \"command\"\nexplain = \"look at it\"\nhost = \"here\"\ndestructive = false\ntimeout_s = 10\ncommand = '''{command}'''\n"
    )
}

async fn run(command: &str, path: &str, dir: &Path) -> (RunExit, serde_json::Value) {
    let jp = dir.join("journal.jsonl");
    let _ = std::fs::remove_file(&jp);
    let journal = Journal::open(&jp, "i1", "op", Redactor::new()).unwrap();
    let mut params = Params::new();
    params.insert(
        "path".into(),
        ParamValue {
            kind: ParamKind::Text,
            value: path.into(),
            source: "answers".into(),
        },
    );
    let ctx = RunContext {
        runbook: Runbook::parse(&runbook(command), "t.toml").unwrap(),
        inventory: Inventory::parse(LOCAL, "inv.toml").unwrap(),
        params,
        incident: "i1".into(),
        incident_dir: dir.to_path_buf(),
        readonly: false,
        dry_run: false,
    };
    let mut engine = Engine::new(
        State::new(ctx, Utc::now()),
        DirectActions::default(),
        journal,
        AnswersOperator {
            answers: Answers::default(),
        },
        Redactor::new(),
    );
    let exit = engine.run(Utc::now()).await;
    let recs = read_records(&jp).unwrap();
    let fin = recs
        .iter()
        .find(|r| r.kind == "step-finished" || r.kind == "step-failed")
        .map(|r| r.data.clone())
        .unwrap_or_default();
    (exit, fin)
}

#[tokio::test]
async fn hostile_backup_names_reach_the_command_as_one_word() {
    let d = tempfile::tempdir().unwrap();
    let mark = d.path().join("pwned");
    let m = mark.display().to_string();
    let names = [
        format!("/b/app;touch {m};.sql"),
        format!("/b/$(touch {m}).sql"),
        format!("/b/`touch {m}`.sql"),
        format!("/b/app\ntouch {m}\n.sql"),
        format!("/b/it's \"q\";touch {m};'.sql"),
        format!("/b/x' ; touch {m} ; echo '"),
    ];
    for name in &names {
        let (exit, data) = run("printf '%s' {path}", name, d.path()).await;
        assert_eq!(exit, RunExit::Completed, "{name:?}: {data}");
        assert!(!mark.exists(), "{name:?} ran a command");
        // The command saw exactly the value, as one argument.
        let out: Vec<String> = data["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        assert_eq!(out.join("\n"), *name, "{data}");
    }
    // The control: the same value marked raw is shell code (and check flags it).
    let (_, _) = run("printf '%s' {raw:path}", &names[0], d.path()).await;
    assert!(mark.exists(), "raw insertion is what the marker asks for");
}

#[test]
fn check_flags_raw_insertion() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("rb");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("mine.toml"),
        runbook("ls -l -- {raw:path}").replace("id = \"c\"", "id = \"mine\""),
    )
    .unwrap();
    let inv = d.path().join("inv.toml");
    std::fs::write(&inv, LOCAL).unwrap();
    let out = support::lifeline(d.path())
        .env("LIFELINE_RUNBOOKS", &dir)
        .arg("check")
        .arg("-i")
        .arg(&inv)
        .output()
        .unwrap();
    let text = support::stdout(&out) + &support::stderr(&out);
    assert!(
        text.contains("mine.toml:")
            && text.contains("inserts '{raw:path}' into its shell command unquoted"),
        "{text}"
    );
    // Quoted references are not flagged.
    std::fs::write(
        dir.join("mine.toml"),
        runbook("ls -l -- {path}").replace("id = \"c\"", "id = \"mine\""),
    )
    .unwrap();
    let out = support::lifeline(d.path())
        .env("LIFELINE_RUNBOOKS", &dir)
        .arg("check")
        .arg("-i")
        .arg(&inv)
        .output()
        .unwrap();
    let text = support::stdout(&out) + &support::stderr(&out);
    assert!(
        !text.contains("mine.toml") || !text.contains("unquoted"),
        "{text}"
    );
}
