//! Nothing leaks: planted secrets (script, env file, cron-style line,
//! process cmdline, SQL, note) and planted terminal escapes (host script,
//! process name, table name, note) against every CLI output, the journal,
//! every export format; and everything a run writes is 0700/0600 whatever
//! the umask. Real PostgreSQL, real processes, the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Secrets in the shapes the real world writes them; none has a literal
/// registered with the redactor, so only the patterns can catch them.
const SECRETS: &[&str] = &[
    "PlantedEnvPw1x",
    "PlantedMyPw2x",
    "PlantedSqlPw3x",
    "PlantedUrlPw4x",
    "PlantedBearer5x",
    "PlantedProcPw6x",
    "PlantedComposePw7x",
    "PlantedAwsKeyAbCdEfGhIjKlMnOpQrStUvWxYz12",
];

const RUNBOOK: &str = r#"
id = "leak-drill"
title = "Read hostile things"
when = "tests"

[[param]]
name = "db"
kind = "database"
from = "inventory"

[[step]]
id = "hello"
action = "note"
explain = "start"
text = "drill on {db.target}"

[[step]]
id = "look"
action = "command"
explain = "Read the deploy script and env file on the host."
host = "here"
destructive = false
timeout_s = 20
command = "cat SCRIPT ENVFILE"

[[step]]
id = "count"
action = "sql"
explain = "count the rows of the hostile table"
database = "{db}"
destructive = false
sql = "SELECT (SELECT count(*) FROM \"evil\u001b[2Jtable\") AS n, 'ALTER ROLE app PASSWORD ''PlantedSqlPw3x''' AS ddl, E'sql\\x1b]0;sqlpwn\\x07' AS esc"

[[step]]
id = "snap"
action = "snapshot"
explain = "keep the state"
database = "{db}"
"#;

fn hostile_files(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("deploy.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         export DB_PASSWORD=PlantedEnvPw1x\n\
         mysql -uroot -pPlantedMyPw2x app < seed.sql\n\
         psql postgres://app:PlantedUrlPw4x@db.example.net/app -c 'select 1'\n\
         curl -H 'Authorization: Bearer PlantedBearer5x' https://hooks.example.net/x\n\
         printf 'title \x1b]0;pwned\x07 clear \x1b[2J done\\n'\n\
         */5 * * * * root AWS_SECRET_ACCESS_KEY=PlantedAwsKeyAbCdEfGhIjKlMnOpQrStUvWxYz12 /opt/sync.sh\n",
    )
    .unwrap();
    let env = dir.join("app.env");
    std::fs::write(
        &env,
        "environment:\n  POSTGRES_PASSWORD: PlantedComposePw7x\n  POSTGRES_DB: app\n",
    )
    .unwrap();
    (script, env)
}

fn run(mut c: Command) -> (i32, String) {
    let o: Output = c.output().unwrap();
    let mut all = o.stdout.clone();
    all.extend_from_slice(&o.stderr);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&all).into_owned(),
    )
}

/// No secret, no raw control byte but `\n` and `\t`.
fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret '{s}' in {what}:\n{text}");
    }
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c.is_control() && c != '\n' && c != '\t')
        .collect();
    assert!(bad.is_empty(), "control bytes {bad:?} in {what}:\n{text:?}");
}

/// The built binary under a given umask (through `sh`, so no unsafe pre_exec).
fn lifeline_umask(umask: &str, state: &Path, cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_lifeline"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .current_dir(cwd)
        .env_remove("LIFELINE_INVENTORY")
        .env_remove("LIFELINE_RUNBOOKS")
        .env("NO_COLOR", "1");
    c
}

fn walk(p: &Path, out: &mut Vec<(PathBuf, u32, bool)>) {
    let m = std::fs::symlink_metadata(p).unwrap();
    out.push((p.to_path_buf(), m.permissions().mode() & 0o777, m.is_dir()));
    if m.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            walk(&e.unwrap().path(), out);
        }
    }
}

#[test]
fn planted_secrets_and_escapes_reach_no_output_and_files_stay_private() {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE TABLE \"evil\x1b[2Jtable\" (id int PRIMARY KEY, v text); INSERT INTO \"evil\x1b[2Jtable\" VALUES (1, 'x'); CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES \"evil\x1b[2Jtable\"(id)); CREATE UNIQUE INDEX ON \"evil\x1b[2Jtable\"(v)",
    )
    .unwrap();
    // A process whose name carries an escape and whose arguments carry a secret.
    let marker = format!("lifeline-leak-{}", std::process::id());
    let proc = support::KillGroup({
        use std::os::unix::process::CommandExt;
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "exec -a $'{marker}\\e]0;procpwn\\a PGPASSWORD=PlantedProcPw6x pg_dump --clean app' sleep 300"
            ))
            .process_group(0)
            .spawn()
            .unwrap()
    });

    for umask in ["022", "000"] {
        let dir = tempfile::tempdir().unwrap();
        let (script, env) = hostile_files(dir.path());
        std::fs::write(
            dir.path().join("lifeline.toml"),
            format!(
                "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n\
                 [[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:{port}/app\"\nhost = \"here\"\n\n\
                 [[service]]\nname = \"leaky\"\nhost = \"here\"\nkind = \"process\"\nmatch = \"{marker}\"\ndatabases = [\"app\"]\n",
                port = pg.port()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("leak-drill.toml"),
            RUNBOOK
                .replace("SCRIPT", &script.display().to_string())
                .replace("ENVFILE", &env.display().to_string()),
        )
        .unwrap();
        std::fs::write(dir.path().join("answers.toml"), "[params]\ndb = \"app\"\n").unwrap();
        let state = dir.path().join("state");
        let cwd = dir.path();
        let ll = |args: &[&str]| {
            let mut a = vec!["-i", "lifeline.toml"];
            a.extend_from_slice(args);
            run(lifeline_umask(umask, &state, cwd, &a))
        };

        let (code, out) = ll(&[
            "run",
            "leak-drill.toml",
            "--incident",
            "leak-1",
            "--answers",
            "answers.toml",
        ]);
        assert_eq!(code, 0, "{out}");
        assert_clean("run output", &out);
        // The hostile bytes were shown, as escapes.
        assert!(out.contains("\\x1b]0;pwned\\x07"), "{out}");
        assert!(out.contains("DB_PASSWORD=***"), "{out}");

        let (code, out) = ll(&[
            "note",
            "leak-1",
            "note \x1b]0;notepwn\x07 Authorization: Bearer PlantedBearer5x done",
        ]);
        assert_eq!(code, 0, "{out}");
        assert_clean("note output", &out);

        let jp = state.join("incidents/leak-1/journal.jsonl");
        let journal = std::fs::read_to_string(&jp).unwrap();
        for s in SECRETS {
            let line = journal.lines().find(|l| l.contains(s));
            assert!(line.is_none(), "secret '{s}' in the journal: {line:?}");
        }
        // JSON keeps the exact text, escaped as JSON does.
        assert!(journal.contains("\\u001b]0;notepwn\\u0007"), "{journal}");

        let (code, out) = ll(&["journal", "verify", "leak-1"]);
        assert_eq!(code, 0, "{out}");
        assert_clean("journal verify", &out);

        let (code, out) = ll(&["export", "leak-1", "--format", "md"]);
        assert_eq!(code, 0, "{out}");
        assert_clean("export md to stdout", &out);
        assert!(out.contains("notepwn"), "the note is in the export: {out}");
        for fmt in ["md", "html", "json"] {
            let f = format!("out.{fmt}");
            let (code, out) = ll(&["export", "leak-1", "--format", fmt, "-o", &f]);
            assert_eq!(code, 0, "{out}");
            assert_clean("export stderr", &out);
            let doc = std::fs::read_to_string(cwd.join(&f)).unwrap();
            assert_clean(&format!("export {fmt}"), &doc);
            assert_eq!(
                std::fs::metadata(cwd.join(&f))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o600,
                "export {fmt} file mode"
            );
        }

        let (code, out) = ll(&["verify", "app"]);
        assert!(code == 0 || code == 3, "{out}");
        assert_clean("verify", &out);
        assert!(
            out.contains("evil\\x1b[2Jtable"),
            "the table is shown: {out}"
        );

        let (code, text) = ll(&["status", "--timeout", "15"]);
        assert_eq!(code, 0, "{text}");
        assert_clean("status text", &text);
        assert!(
            text.contains("leaky"),
            "the process service is shown: {text}"
        );
        let (code, json) = ll(&["status", "--json", "--timeout", "15"]);
        assert_eq!(code, 0, "{json}");
        assert_clean("status --json", &json);
        assert!(
            json.contains(&marker),
            "the process cmdline is reported: {json}"
        );
        assert!(json.contains("PGPASSWORD=***"), "{json}");

        // Every file and directory the run wrote is private, whatever the umask.
        let mut all = Vec::new();
        walk(&state, &mut all);
        assert!(all.len() >= 4, "{all:?}");
        for (p, mode, is_dir) in &all {
            let want = if *is_dir { 0o700 } else { 0o600 };
            assert_eq!(*mode, want, "umask {umask}: {} is {mode:o}", p.display());
        }
        let snaps: Vec<_> = all
            .iter()
            .filter(|(p, _, d)| !d && !p.ends_with("journal.jsonl"))
            .collect();
        assert!(
            !snaps.is_empty(),
            "the snapshot is under the state dir: {all:?}"
        );
    }
    drop(proc);
}

#[test]
fn an_exposed_state_dir_gets_a_warning_naming_the_fix() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("st");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = support::lifeline(&state)
        .args(["journal", "verify", "nope"])
        .output()
        .unwrap();
    let err = support::stderr(&o);
    assert!(err.contains("chmod 700"), "{err}");
    assert!(err.contains(&state.display().to_string()), "{err}");
}

/// A discovered script with a secret and an escape sequence in the very
/// line that makes it a hazard: `status` shows the line, masked and escaped.
#[test]
fn status_shows_a_hostile_script_line_masked_and_escaped() {
    use std::io::Write;
    let lab = support::probe_lab();
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(lab.script("db_realtime_sync.sh"))
            .unwrap();
        f.write_all(
            b"PGPASSWORD=PlantedScriptPw9x pg_dump --clean -h db.example.net TovPlay | psql -h other.example.net TovPlay # \x1b]0;scriptpwn\x07\x1b[2J\n",
        )
        .unwrap();
    }
    let _loop = lab.start_sync_loop();
    let state = tempfile::tempdir().unwrap();
    let inv = state.path().join("lifeline.toml");
    std::fs::write(
        &inv,
        format!(
            "[[host]]\nname = \"me\"\ntransport = \"local\"\n\n[[database]]\nname = \"external\"\nurl = \"postgres://app@db.example.net:5432/TovPlay\"\n\n\
             [[service]]\nname = \"sync-loop\"\nhost = \"me\"\nkind = \"process\"\nmatch = \"db_realtime_sync\\\\.sh\"\nstart = \"sh {}\"\ndatabases = [\"external\"]\n",
            lab.script("db_realtime_sync.sh")
        ),
    )
    .unwrap();
    let run = |json: bool| {
        let mut c = support::lifeline(state.path());
        c.arg("-i").arg(&inv).args(["status", "--timeout", "15"]);
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", support::stderr(&o));
        support::stdout(&o) + &support::stderr(&o)
    };
    let text = run(false);
    assert!(!text.contains("PlantedScriptPw9x"), "{text}");
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "raw control in status: {text:?}"
    );
    assert!(
        text.contains("\\x1b]0;scriptpwn\\x07"),
        "the line is shown, escaped: {text}"
    );
    assert!(text.contains("PGPASSWORD=*** pg_dump --clean"), "{text}");
    let json = run(true);
    assert!(!json.contains("PlantedScriptPw9x"), "{json}");
    assert!(!json.contains('\x1b'), "{json}");
    assert!(
        json.contains("\\u001b]0;scriptpwn"),
        "JSON keeps the exact text: {json}"
    );
}
