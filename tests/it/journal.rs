//! The journal contract: hash chain, verify, torn lines, lock, redaction,
//! failing appends. Runs the built binary for `journal verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::{Path, PathBuf};

use lifeline::engine::types::DbIdentity;
use lifeline::journal::{Entry, Journal, JournalError, kinds, read_records};
use lifeline::redact::Redactor;
use serde_json::json;

fn write_journal(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("incidents/i1/journal.jsonl");
    let mut j = Journal::open(&p, "i1", "alice", Redactor::new()).unwrap();
    for i in 0..n {
        j.append(
            Entry::new(kinds::NOTE, format!("event {i}"))
                .step("s1")
                .target("db main")
                .data(json!({"i": i})),
        )
        .unwrap();
    }
    p
}

fn verify(state: &Path, p: &Path) -> (i32, String) {
    let out = support::lifeline(state)
        .args(["journal", "verify"])
        .arg(p)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        support::stdout(&out) + &support::stderr(&out),
    )
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn rewrite(p: &Path, ls: &[String]) {
    std::fs::write(p, ls.join("\n") + "\n").unwrap();
}

#[test]
fn intact_journal_verifies_with_count() {
    let d = tempfile::tempdir().unwrap();
    let p = write_journal(d.path(), 5);
    let (code, out) = verify(d.path(), &p);
    assert_eq!(code, 0, "{out}");
    // Five events and the checkpoint the writer signed when it closed.
    assert!(out.contains("6 record(s), hash chain intact"), "{out}");
    assert!(
        out.contains("signed: 1 checkpoint(s) by lifeline@"),
        "{out}"
    );
    // by incident id too
    let (code, _) = verify(d.path(), Path::new("i1"));
    assert_eq!(code, 0);
    let recs = read_records(&p).unwrap();
    assert_eq!(recs.len(), 6);
    assert_eq!(recs[5].kind, kinds::CHECKPOINT);
    assert_eq!(recs[2].seq, 3);
    assert_eq!(recs[1].prev, recs[0].hash);
    assert_eq!(recs[0].operator, "alice");
}

#[test]
fn edited_line_named() {
    let d = tempfile::tempdir().unwrap();
    let p = write_journal(d.path(), 5);
    let mut ls = lines(&p);
    ls[2] = ls[2].replace("event 2", "event 9");
    rewrite(&p, &ls);
    let (code, out) = verify(d.path(), &p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 3:") && out.contains("edited"), "{out}");
}

#[test]
fn removed_line_named() {
    let d = tempfile::tempdir().unwrap();
    let p = write_journal(d.path(), 5);
    let mut ls = lines(&p);
    ls.remove(1);
    rewrite(&p, &ls);
    let (code, out) = verify(d.path(), &p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 2:") && out.contains("removed"), "{out}");
}

#[test]
fn swapped_lines_named() {
    let d = tempfile::tempdir().unwrap();
    let p = write_journal(d.path(), 5);
    let mut ls = lines(&p);
    ls.swap(2, 3);
    rewrite(&p, &ls);
    let (code, out) = verify(d.path(), &p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 3:"), "{out}");
}

#[test]
fn torn_last_line_reported_rest_verified_and_repaired_on_open() {
    let d = tempfile::tempdir().unwrap();
    let p = write_journal(d.path(), 4);
    let text = std::fs::read_to_string(&p).unwrap();
    let cut = text.len() - 30; // mid-way through the last line, newline gone
    std::fs::write(&p, &text[..cut]).unwrap();
    // The torn line was the closing checkpoint: the chain holds, unsigned.
    let (code, out) = verify(d.path(), &p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("torn: line 5"), "{out}");
    assert!(out.contains("4 record(s)"), "{out}");
    assert!(out.contains("NOT SIGNED"), "{out}");

    // Opening again moves the torn bytes aside (kept) and journals the repair.
    let mut j = Journal::open(&p, "i1", "bob", Redactor::new()).unwrap();
    j.append(Entry::new(kinds::NOTE, "after crash")).unwrap();
    drop(j);
    let recs = read_records(&p).unwrap();
    assert_eq!(recs.len(), 7);
    assert_eq!(recs[4].kind, kinds::JOURNAL_REPAIRED);
    assert_eq!(recs[4].seq, 5);
    let moved = recs[4].data["moved_to"].as_str().unwrap();
    assert!(Path::new(moved).exists());
    let (code, out) = verify(d.path(), &p);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("7 record(s)"), "{out}");
}

#[test]
fn second_writer_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("j.jsonl");
    let j1 = Journal::open(&p, "i", "a", Redactor::new()).unwrap();
    match Journal::open(&p, "i", "b", Redactor::new()) {
        Err(JournalError::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(j1);
    Journal::open(&p, "i", "b", Redactor::new()).unwrap();
}

#[test]
fn second_process_refused() {
    // The lock holds across processes: a child that tries to open it fails.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("j.jsonl");
    let _j = Journal::open(&p, "i", "a", Redactor::new()).unwrap();
    // util-linux flock(1): -n fails at once (exit 1) when the lock is held.
    let st = std::process::Command::new("flock")
        .args(["-n", "-E", "7"])
        .arg(&p)
        .arg("true")
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(7));
}

#[test]
fn append_to_full_device_is_an_error_and_records_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("journal.jsonl");
    std::os::unix::fs::symlink("/dev/full", &p).unwrap();
    let mut j = Journal::open(&p, "i", "a", Redactor::new()).unwrap();
    let err = j.append(Entry::new(kinds::NOTE, "x")).unwrap_err();
    assert!(matches!(err, JournalError::Io { .. }), "{err}");
    assert!(err.to_string().contains("No space left"), "{err}");
    assert_eq!(j.next_seq(), 1);
}

/// Opens (or appends to) the journal named by LIFELINE_RO_JOURNAL and
/// expects a permission error. Does nothing when the variable is unset.
fn expect_read_only_error() {
    let Some(p) = std::env::var_os("LIFELINE_RO_JOURNAL") else {
        return;
    };
    let err = Journal::open(Path::new(&p), "i", "a", Redactor::new()).unwrap_err();
    assert!(matches!(err, JournalError::Io { .. }), "{err}");
    assert!(err.to_string().contains("Permission denied"), "{err}");
}

#[test]
fn read_only_child() {
    expect_read_only_error();
}

#[test]
fn journal_in_read_only_location_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let d = tempfile::tempdir().unwrap();
    let p = write_journal(d.path(), 2);
    let inc = p.parent().unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    for dir in [d.path(), inc.parent().unwrap(), inc] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    if lifeline::sandbox::is_root() {
        // Root ignores file modes: run the check as 'nobody'.
        let (uid, gid) = lifeline::sandbox::user_ids("nobody").expect("user nobody");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "journal::read_only_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LIFELINE_RO_JOURNAL", &p)
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap();
        assert!(
            out.status.success() && support::stdout(&out).contains("1 passed"),
            "{}{}",
            support::stdout(&out),
            support::stderr(&out)
        );
    } else {
        expect_denied(&p);
    }
    for dir in [d.path(), inc.parent().unwrap(), inc] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Nothing was added (two events and their checkpoint).
    assert_eq!(read_records(&p).unwrap().len(), 3);
}

fn expect_denied(p: &Path) {
    let err = Journal::open(p, "i", "a", Redactor::new()).unwrap_err();
    assert!(err.to_string().contains("Permission denied"), "{err}");
}

#[test]
fn planted_secrets_never_reach_the_file() {
    let d = tempfile::tempdir().unwrap();
    // A secret from the inventory (through password_file) ...
    let pwf = d.path().join("pw");
    std::fs::write(&pwf, "Inv3ntorySecret!\n").unwrap();
    let inv = lifeline::inventory::Inventory::parse(
        &format!(
            "[[database]]\nname='m'\nurl='postgres://app@db/x'\npassword_file='{}'\n",
            pwf.display()
        ),
        "inv.toml",
    )
    .unwrap();
    let r = Redactor::new();
    inv.register_secrets(&r);
    let p = d.path().join("journal.jsonl");
    let mut j = Journal::open(&p, "i", "a", r).unwrap();
    let planted = [
        ("Inv3ntorySecret!", "psql with Inv3ntorySecret! in it".to_string()),
        ("UrlPw-123", "psql postgres://app:UrlPw-123@db:5432/x".into()),
        ("ConnPw-456", "host=db user=app password=ConnPw-456 dbname=x".into()),
        ("EnvPw-789", "PGPASSWORD=EnvPw-789 pg_dump -h db".into()),
        ("SshPw-000", "sshpass -p SshPw-000 ssh db".into()),
        (
            "AAAAkeymaterialZZ",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAkeymaterialZZ\n-----END OPENSSH PRIVATE KEY-----".into(),
        ),
    ];
    for (_, text) in &planted {
        j.append(
            Entry::new(kinds::COMMAND, text.clone())
                .command(text.clone())
                .target(text.clone())
                .data(json!({"output": text, "nested": [text]})),
        )
        .unwrap();
    }
    drop(j);
    let file = std::fs::read_to_string(&p).unwrap();
    for (secret, _) in planted {
        assert!(!file.contains(secret), "{secret} leaked");
    }
    assert!(file.contains("password=***"));
    assert_eq!(lifeline::journal::verify_file(&p).unwrap().valid, 7);
}

#[test]
fn a_broken_chain_is_moved_aside_on_open_and_the_new_journal_names_the_break() {
    let d = tempfile::tempdir().unwrap();
    let p = write_journal(d.path(), 4);
    let mut ls = lines(&p);
    ls.remove(1); // a record deleted: the chain breaks at line 2
    rewrite(&p, &ls);
    let broken = std::fs::read(&p).unwrap();
    let mut j = Journal::open(&p, "i1", "bob", Redactor::new()).unwrap();
    j.append(Entry::new(kinds::NOTE, "after the break"))
        .unwrap();
    drop(j);
    let recs = read_records(&p).unwrap();
    assert_eq!(recs[0].kind, kinds::JOURNAL_BROKEN, "{recs:#?}");
    assert_eq!(recs[0].seq, 1);
    assert_eq!(recs[0].data["line"], 2);
    assert!(recs[0].summary.contains("line 2"), "{}", recs[0].summary);
    let moved = recs[0].data["moved_to"].as_str().unwrap();
    // The broken journal is kept, byte for byte, and private.
    assert_eq!(std::fs::read(moved).unwrap(), broken);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(moved).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(recs[1].summary, "after the break");
    let (code, out) = verify(d.path(), &p);
    assert_eq!(code, 0, "the new journal is whole and signed: {out}");
}

/// A journal opened in a directory lifeline did not make (here a 0755 one,
/// as /dev or a working directory would be) leaves that directory's mode
/// alone: only what lifeline creates is made private.
#[test]
fn an_existing_directory_not_an_incident_is_never_chmodded() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let shared = d.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = shared.join("journal.jsonl");
    let mut j = Journal::open(&p, "i", "a", Redactor::new()).unwrap();
    j.append(Entry::new(kinds::NOTE, "x")).unwrap();
    drop(j);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&shared), 0o755, "a directory not ours to change");
    assert_eq!(mode(&p), 0o600);
    assert_eq!(
        mode(&shared.join("keys")),
        0o700,
        "the key directory it made"
    );
}

/// A file that is not a journal (wrong path given to `note`, say) is
/// refused with a clear error, and left exactly where and as it was.
#[test]
fn a_file_that_is_not_a_journal_is_refused_and_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("README.md");
    std::fs::write(&p, "# not a journal\nhello\n").unwrap();
    let err = Journal::open(&p, "i", "a", Redactor::new()).unwrap_err();
    assert!(err.to_string().contains("not a lifeline journal"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "# not a journal\nhello\n"
    );
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "nothing moved or added: {names:?}");
}

#[test]
fn a_file_that_is_not_a_journal_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("notes.txt");
    std::fs::write(&p, "plain text\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(Journal::open(&p, "i", "a", Redactor::new()).is_err());
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

/// Identity records written before the one identity type (issue 20): the
/// sampler's `identity-changed` carried the samples' names (`address`,
/// `postmaster_start`, `database_oid`), the engine's `confirmed` the
/// core's (`server`, `oid`, `server_started_at`). Both read into the one
/// type from a journal on disk.
#[test]
fn old_identity_records_are_read_into_the_one_type() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("incidents/i1/journal.jsonl");
    let mut j = Journal::open(&p, "i1", "alice", Redactor::new()).unwrap();
    j.append(
        Entry::new(kinds::IDENTITY_CHANGED, "'main': the server restarted")
            .target("main")
            .data(json!({
                "database": "main",
                "change": "restarted",
                "before": {"address": "127.0.0.1:5432/TovPlay", "system_identifier": "7312345678901234567",
                           "postmaster_start": "2026-12-10T09:12:44Z", "database_oid": 16384, "database": "TovPlay"},
                "after": {"address": "127.0.0.1:5432/TovPlay", "system_identifier": "7312345678901234567",
                          "postmaster_start": "2026-12-10T12:40:01Z", "database_oid": 16384, "database": "TovPlay"},
            })),
    )
    .unwrap();
    j.append(
        Entry::new(kinds::CONFIRMED, "confirmed").data(json!({
            "action": "swap",
            "database": "main",
            "typed": "TovPlay",
            "identity": {"server": "127.0.0.1:5432", "system_identifier": "7312345678901234567",
                         "database": "TovPlay", "oid": 16384, "server_started_at": "2026-12-10T12:40:01Z"},
        })),
    )
    .unwrap();
    drop(j);
    let recs = read_records(&p).unwrap();
    let id = |v: &serde_json::Value| serde_json::from_value::<DbIdentity>(v.clone()).unwrap();
    let changed = recs
        .iter()
        .find(|r| r.kind == kinds::IDENTITY_CHANGED)
        .unwrap();
    let before = id(&changed.data["before"]);
    let after = id(&changed.data["after"]);
    let confirmed = id(&recs
        .iter()
        .find(|r| r.kind == kinds::CONFIRMED)
        .unwrap()
        .data["identity"]);
    assert_eq!(before.server, "127.0.0.1:5432");
    assert_eq!(before.oid, Some(16384));
    assert_eq!(before.address(), "127.0.0.1:5432/TovPlay");
    assert!(after.server_started_at > before.server_started_at);
    assert_eq!(
        after.change_from(&before).map(|c| c.describe()),
        Some("the server restarted (new start time)")
    );
    // The sampler's old record and the engine's record name the same database.
    assert_eq!(after, confirmed);
    assert!(confirmed.same_as(&before));
}
