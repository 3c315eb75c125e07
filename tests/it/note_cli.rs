//! `lifeline note`: appends a note event through the journal's lock and
//! chain, never touching earlier lines; backdated notes name their time in
//! every accepted form; refusals are clear; secrets are masked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::export_support;

use std::path::Path;

use chrono::{DateTime, Duration, FixedOffset, SubsecRound, Timelike, Utc};
use export_support::{PLANTED, build_rogue_sync, lifeline, planted_inventory};
use lifeline::export::model::TimelineItem;
use lifeline::journal::{self, Journal, Record};
use lifeline::redact::Redactor;

fn run(state: &Path, args: &[&str]) -> (i32, String, String) {
    let o = lifeline(state).args(args).output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The last event (the signed checkpoint a writer adds on closing skipped).
fn last(p: &Path) -> Record {
    journal::read_records(p)
        .unwrap()
        .into_iter()
        .rev()
        .find(|r| r.kind != journal::kinds::CHECKPOINT)
        .unwrap()
}

#[test]
fn note_is_a_new_event_and_earlier_lines_stay_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let jp = b.dir.join("journal.jsonl");
    let before = std::fs::read(&jp).unwrap();
    let n = journal::read_records(&jp).unwrap().len();

    let (code, out, err) = run(
        d.path(),
        &[
            "--operator",
            "maya",
            "note",
            &b.id,
            "restarted the app by hand",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("noted: #{}", n + 1)), "{out}");
    let after = std::fs::read(&jp).unwrap();
    assert_eq!(&after[..before.len()], &before[..]);
    let r = last(&jp);
    assert_eq!(
        (r.kind.as_str(), r.operator.as_str(), r.summary.as_str()),
        ("note", "maya", "restarted the app by hand")
    );
    assert_eq!(r.incident, b.id);
    assert!(r.data.is_null(), "no data.at on a note about now");
    assert!(journal::verify_file(&jp).unwrap().intact());

    // INCIDENT may also be the directory.
    let (code, _, err) = run(d.path(), &["note", b.dir.to_str().unwrap(), "second"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(last(&jp).summary, "second");
}

/// A `--tz` under which it is about noon now, so "two hours ago" is today.
fn noon_offset(now: DateTime<Utc>) -> FixedOffset {
    let mins = (now.hour() * 60 + now.minute()) as i32;
    let mut off = 12 * 60 - mins;
    if off > 12 * 60 {
        off -= 24 * 60;
    }
    FixedOffset::east_opt(off * 60).unwrap()
}

#[test]
fn backdated_forms_and_export_placement() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let jp = b.dir.join("journal.jsonl");

    // RFC 3339 (ten days ago, on the minute).
    let now = Utc::now().trunc_subsecs(0);
    let past = (now - Duration::days(10)).with_second(0).unwrap();
    let past_s = export_support::journal_ts(past);
    let (code, out, err) = run(
        d.path(),
        &["note", &b.id, "--at", &past_s, "a change was made by hand"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("describing {past_s}")), "{out}");
    assert_eq!(last(&jp).data["at"], past_s.as_str());

    // YYYY-MM-DD HH:MM in the given zone.
    let plus2 = FixedOffset::east_opt(7200).unwrap();
    let local = past
        .with_timezone(&plus2)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let (code, _, err) = run(
        d.path(),
        &[
            "note",
            &b.id,
            "--at",
            &local,
            "--tz",
            "+02:00",
            "same, local",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(last(&jp).data["at"], past_s.as_str());

    // HH:MM today, two hours ago.
    let tz = noon_offset(now);
    let two_h_ago = (now - Duration::hours(2)).with_timezone(&tz);
    let hhmm = two_h_ago.format("%H:%M").to_string();
    let (code, _, err) = run(
        d.path(),
        &[
            "note",
            &b.id,
            "--at",
            &hhmm,
            "--tz",
            &tz.to_string(),
            "earlier today",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let want = two_h_ago.with_second(0).unwrap().with_timezone(&Utc);
    assert_eq!(last(&jp).data["at"], export_support::journal_ts(want));

    // The export places each note at its time and says when it was added.
    let out = d.path().join("e.json");
    let (code, _, err) = run(
        d.path(),
        &[
            "export",
            &b.id,
            "--format",
            "json",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r: lifeline::export::Report =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let notes: Vec<_> = r
        .timeline
        .iter()
        .filter_map(|i| match i {
            TimelineItem::Event(e) if e.added_later.is_some() => Some((e.summary.clone(), e.at)),
            _ => None,
        })
        .collect();
    // Placement is by described time: ten days ago, then two hours ago.
    let times: Vec<_> = notes.iter().map(|n| n.1).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{notes:?}");
    assert!(notes.iter().any(|n| n.0 == "earlier today" && n.1 == want));
}

#[test]
fn refusals_are_clear_and_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let jp = b.dir.join("journal.jsonl");
    let before = std::fs::read(&jp).unwrap();

    let future = (Utc::now() + Duration::hours(3)).to_rfc3339();
    for (args, code, needle) in [
        (
            vec!["note", &b.id, "--at", "yesterday", "x"],
            2,
            "'yesterday' is not a time",
        ),
        (
            vec!["note", &b.id, "--at", &future, "x"],
            2,
            "is in the future",
        ),
        (
            vec!["note", &b.id, "--tz", "CET", "--at", "12:00", "x"],
            2,
            "'CET' is not a UTC offset",
        ),
        (vec!["note", &b.id, "   "], 2, "the note is empty"),
        (
            vec!["note", "no-such-incident", "x"],
            2,
            "no incident 'no-such-incident'",
        ),
    ] {
        let (c, _, err) = run(d.path(), &args);
        assert_eq!(c, code, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!d.path().join("incidents/no-such-incident").exists());

    // A console holds the journal: the note is refused with the lock message.
    let held = Journal::open(&jp, &b.id, "console", Redactor::new()).unwrap();
    let (c, _, err) = run(d.path(), &["note", &b.id, "while the console runs"]);
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("is locked by another lifeline process"),
        "{err}"
    );
    drop(held);
    assert_eq!(std::fs::read(&jp).unwrap(), before);
}

#[test]
fn note_text_is_redacted_with_the_inventory_secrets() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let inv = planted_inventory(d.path());
    let o = lifeline(d.path())
        .arg("-i")
        .arg(&inv)
        .env("LIFELINE_TEST_PW", PLANTED)
        .args(["note", &b.id])
        .arg(format!(
            "rotated {PLANTED}; also PGPASSWORD=hunter22 was in the env"
        ))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = last(&b.dir.join("journal.jsonl"));
    assert_eq!(r.summary, "rotated ***; also PGPASSWORD=*** was in the env");
}
