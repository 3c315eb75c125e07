//! The signed journal against forgers: a runbook run over a real sshd,
//! then the reseal attack (records deleted, operator renamed, a summary
//! edited, the chain recomputed without the key) must fail `journal verify`
//! and the export must say so; with the lifeline key and with an SSH key
//! through `ssh-keygen -Y`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use lifeline::journal::{self, Record, kinds};

struct World {
    sshd: support::Sshd,
    _pg: support::PgCluster,
    dir: tempfile::TempDir,
    cleanup: std::cell::RefCell<Vec<RemoveOnDrop>>,
}

impl World {
    fn new() -> World {
        let sshd = support::sshd();
        let pg = support::pg();
        pg.create_db("app").unwrap();
        pg.psql(
            "app",
            "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("motd.txt"), "hello from box\n").unwrap();
        std::fs::write(
            p("lifeline.toml"),
            format!(
                "[[host]]\nname = \"box\"\naddress = \"127.0.0.1:{port}\"\nuser = \"{user}\"\nidentity = \"{key}\"\nknown_hosts = \"{kh}\"\n\n\
                 [[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:{pgport}/app\"\nhost = \"box\"\nsslmode = \"disable\"\n",
                port = sshd.port(),
                user = sshd.user(),
                key = sshd.user_key().display(),
                kh = sshd.write_known_hosts().unwrap().display(),
                pgport = pg.port(),
            ),
        )
        .unwrap();
        std::fs::write(
            p("drill.toml"),
            format!(
                r#"
id = "anchor-drill"
title = "Read the host, count the rows"
when = "tests"

[[step]]
id = "hello"
action = "note"
explain = "start"
text = "drill begins"

[[step]]
id = "look"
action = "command"
explain = "Read a file on box."
host = "box"
destructive = false
timeout_s = 20
command = "cat {motd}"

[[step]]
id = "count"
action = "sql"
explain = "count"
database = "app"
destructive = false
sql = "SELECT count(*) AS n FROM t"

[[step]]
id = "bye"
action = "note"
explain = "end"
text = "drill ends"
"#,
                motd = p("motd.txt").display()
            ),
        )
        .unwrap();
        std::fs::write(p("answers.toml"), "[params]\n").unwrap();
        World {
            sshd,
            _pg: pg,
            dir,
            cleanup: Default::default(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn lifeline(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
        let mut c = support::lifeline(&self.state());
        c.current_dir(self.dir.path())
            .env_remove("LIFELINE_RUNBOOKS")
            .env_remove(journal::sign::KEY_ENV)
            .args(["-i", "lifeline.toml"])
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            support::stdout(&o) + &support::stderr(&o),
        )
    }

    /// A run with head anchors on; the host's head log is removed at the end
    /// of the test (the sshd user is this machine's user: its home is real).
    fn run(&self, incident: &str, env: &[(&str, &str)]) -> PathBuf {
        let mut env = env.to_vec();
        env.push((journal::anchor::REMOTE_SWITCH_ENV, "on"));
        let env = &env[..];
        self.cleanup.borrow_mut().push(RemoveOnDrop(
            home_of(self.sshd.user())
                .join(journal::anchor::REMOTE_DIR)
                .join(format!("{incident}.log")),
        ));
        let (code, out) = self.lifeline(
            &[
                "run",
                "drill.toml",
                "--incident",
                incident,
                "--answers",
                "answers.toml",
            ],
            env,
        );
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("head anchored on box: seq "), "{out}");
        assert!(
            out.contains("hello from box"),
            "the command ran over sshd: {out}"
        );
        self.state()
            .join("incidents")
            .join(incident)
            .join("journal.jsonl")
    }
}

fn records(p: &Path) -> Vec<Record> {
    journal::read_records(p).unwrap()
}

/// What a forger without the key can do: delete records, rename the
/// operator, edit a summary, keep (and re-point) or drop the checkpoints,
/// and recompute the whole chain.
fn reseal(p: &Path, keep_checkpoints: bool) {
    let mut recs: Vec<Record> = records(p)
        .into_iter()
        .filter(|r| keep_checkpoints || r.kind != kinds::CHECKPOINT)
        .collect();
    let gone = recs
        .iter()
        .position(|r| r.kind == kinds::STEP_STARTED)
        .unwrap();
    recs.drain(gone..gone + 2);
    let mut prev = journal::GENESIS.to_string();
    let mut out = String::new();
    for (i, r) in recs.iter_mut().enumerate() {
        r.seq = i as u64 + 1;
        r.operator = "mallory".into();
        if r.kind == kinds::STEP_FINISHED && r.step.as_deref() == Some("look") {
            r.summary = "nothing was read".into();
        }
        if r.kind == kinds::CHECKPOINT {
            // Re-point the checkpoint at the forged head; the signature stays.
            r.data["covers_seq"] = serde_json::json!(r.seq - 1);
            r.data["covers_hash"] = serde_json::json!(prev);
        }
        r.prev = prev.clone();
        let (line, hash) = journal::seal(r).unwrap();
        out.push_str(&line);
        out.push('\n');
        prev = hash;
    }
    std::fs::write(p, out).unwrap();
    // The chain alone is fooled: that is the attack.
    assert!(journal::verify_text(&std::fs::read_to_string(p).unwrap()).intact());
}

fn assert_genuine(w: &World, incident: &str, signer: &str) {
    let (code, out) = w.lifeline(&["journal", "verify", incident], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hash chain intact"), "{out}");
    assert!(
        out.contains(&format!("by {signer}")),
        "names the signer: {out}"
    );
    let (code, md) = w.lifeline(&["export", incident, "--format", "md"], &[]);
    assert_eq!(code, 0, "{md}");
    assert!(md.contains("Signatures: verified."), "{md}");
    assert!(md.contains("Last checkpoint: seq"), "{md}");
}

fn assert_forgery_caught(w: &World, incident: &str, jp: &Path) {
    let before = std::fs::read(jp).unwrap();
    // Variant 1: checkpoints kept and re-pointed: the signature fails.
    reseal(jp, true);
    let (code, out) = w.lifeline(&["journal", "verify", incident], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("SIGNATURE: line"), "{out}");
    assert!(out.contains("does not verify"), "{out}");
    let (code, md) = w.lifeline(&["export", incident, "--format", "md"], &[]);
    assert_eq!(code, 1, "{md}");
    assert!(
        md.contains("WARNING: the journal's signatures FAIL"),
        "{md}"
    );
    let (code, json) = w.lifeline(&["export", incident, "--format", "json"], &[]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(
        json.lines()
            .take_while(|l| !l.starts_with("warning:"))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap();
    assert_eq!(v["integrity"]["signature_status"], "failed", "{v:#}");

    // Variant 2: checkpoints dropped: unsigned, and verify says so.
    std::fs::write(jp, &before).unwrap();
    reseal(jp, false);
    let (code, out) = w.lifeline(&["journal", "verify", incident], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT SIGNED"), "{out}");
    let (_, md) = w.lifeline(&["export", incident, "--format", "md"], &[]);
    assert!(md.contains("NOT SIGNED"), "{md}");
    std::fs::write(jp, &before).unwrap();
}

#[test]
fn reseal_attack_fails_verify_with_the_lifeline_key() {
    let w = World::new();
    let jp = w.run("anchor-1", &[]);
    let recs = records(&jp);
    assert_eq!(
        recs.last().unwrap().kind,
        kinds::CHECKPOINT,
        "a run ends signed"
    );
    assert_genuine(&w, "anchor-1", "lifeline@");
    let key = w.state().join("keys/journal_ed25519");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_forgery_caught(&w, "anchor-1", &jp);

    // A reviewer's own allowed-signers file without lifeline's key: refused.
    let other = w.dir.path().join("reviewer_allowed");
    std::fs::write(&other, "").unwrap();
    let (code, out) = w.lifeline(
        &[
            "journal",
            "verify",
            "anchor-1",
            "--allowed-signers",
            other.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not in the allowed signers"), "{out}");
}

#[test]
fn reseal_attack_fails_verify_with_an_ssh_key() {
    let w = World::new();
    // The operator's SSH key (the sshd fixture's user key), through ssh-keygen -Y sign.
    let key = w.dir.path().join("op_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "op", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let k = key.display().to_string();
    let env = [
        (journal::sign::KEY_ENV, k.as_str()),
        (journal::sign::PRINCIPAL_ENV, "maya@example.net"),
    ];
    let jp = w.run("anchor-ssh", &env);
    let last = records(&jp).pop().unwrap();
    assert_eq!(last.kind, kinds::CHECKPOINT);
    assert_eq!(last.data["signer"]["scheme"], "sshsig");
    assert!(
        last.data["signature"]
            .as_str()
            .unwrap()
            .contains("BEGIN SSH SIGNATURE")
    );
    // The allowed-signers line is OpenSSH's own: ssh-keygen verifies with it too.
    let allowed = w.state().join("keys/allowed_signers");
    let text = std::fs::read_to_string(&allowed).unwrap();
    assert!(
        text.contains("maya@example.net namespaces=\"lifeline-journal\" ssh-ed25519 "),
        "{text}"
    );
    assert_genuine(&w, "anchor-ssh", "maya@example.net");
    assert_forgery_caught(&w, "anchor-ssh", &jp);
    let _ = &w.sshd;
}

/// The sshd user's home (where the host keeps its head logs).
fn home_of(user: &str) -> PathBuf {
    let o = Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    PathBuf::from(line.trim().split(':').nth(5).unwrap())
}

/// Removes the head log this test made on the host (and nothing else).
struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        // heads/ and .lifeline/ too, when that left them empty (never otherwise).
        if let Some(heads) = self.0.parent() {
            let _ = std::fs::remove_dir(heads);
            if let Some(dot) = heads.parent() {
                let _ = std::fs::remove_dir(dot);
            }
        }
    }
}

#[test]
fn tail_cut_is_detected_from_the_head_anchors() {
    let w = World::new();
    let incident = format!("anchor-cut-{}", std::process::id());
    let local = w.dir.path().join("heads");
    let l = local.display().to_string();
    let remote = home_of(w.sshd.user())
        .join(".lifeline/heads")
        .join(format!("{incident}.log"));
    let jp = w.run(&incident, &[(journal::anchor::LOCAL_ENV, l.as_str())]);
    let last = records(&jp).pop().unwrap();

    // The host's head log: appended over SSH, private, naming the last record.
    let text =
        std::fs::read_to_string(&remote).unwrap_or_else(|e| panic!("{}: {e}", remote.display()));
    assert_eq!(
        journal::anchor::parse(&text, &incident),
        vec![(last.seq, last.hash.clone())]
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let copy = w.dir.path().join("box-heads.log");
    std::fs::copy(&remote, &copy).unwrap();
    let local_log = local.join(format!("{incident}.log"));
    assert!(local_log.exists());

    let heads = |extra: &[&str]| {
        let mut a = vec!["journal", "verify", incident.as_str()];
        a.extend_from_slice(extra);
        w.lifeline(&a, &[])
    };
    let (c, r) = (copy.display().to_string(), local_log.display().to_string());
    let (code, out) = heads(&["--heads", &c, "--heads", &r]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("anchored: "), "{out}");

    // Cut the last 3 lines off: what remains may even look whole; the anchors say otherwise.
    let text = std::fs::read_to_string(&jp).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - 3].join("\n") + "\n";
    std::fs::write(&jp, kept).unwrap();
    let (code, out) = heads(&["--heads", &c]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("TRUNCATED: a head anchor names seq {}", last.seq)),
        "{out}"
    );
    assert!(out.contains("3 record(s) cut off"), "{out}");
}

#[test]
fn the_writer_never_appends_to_a_resealed_journal() {
    let w = World::new();
    let jp = w.run("anchor-reopen", &[]);
    reseal(&jp, true);
    let forged = std::fs::read(&jp).unwrap();
    let (code, out) = w.lifeline(&["note", "anchor-reopen", "after the forgery"], &[]);
    assert_eq!(code, 0, "{out}");
    let recs = records(&jp);
    assert_eq!(recs[0].kind, kinds::JOURNAL_BROKEN, "{recs:#?}");
    assert!(
        recs[0].summary.contains("does not verify"),
        "{}",
        recs[0].summary
    );
    let moved = recs[0].data["moved_to"].as_str().unwrap();
    assert_eq!(std::fs::read(moved).unwrap(), forged, "kept byte for byte");
    assert_eq!(recs[1].summary, "after the forgery");
    let (code, out) = w.lifeline(&["journal", "verify", "anchor-reopen"], &[]);
    assert_eq!(code, 0, "{out}");
}
