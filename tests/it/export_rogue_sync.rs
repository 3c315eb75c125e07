//! Export of a rogue-sync incident written through the Journal API as a
//! headless runbook run writes it: summary numbers against the events,
//! row counts, order, folding, backdated notes, secrets, broken chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::export_support;

use export_support::{
    CheckOpts, PLANTED, build_rogue_sync, check_export, lifeline, planted_inventory,
};
use lifeline::export::model::TimelineItem;
use lifeline::journal;

fn opts(inv: &std::path::Path) -> CheckOpts<'_> {
    CheckOpts {
        inventory: Some(inv),
        env: vec![("LIFELINE_TEST_PW", PLANTED)],
        secrets: vec![PLANTED],
        tz: Some("+02:00"),
    }
}

#[test]
fn summary_rows_order_folding_notes_and_secrets() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let inv = planted_inventory(d.path());
    // The planted secret really is in the journal: only export can mask it.
    let raw = std::fs::read_to_string(b.dir.join("journal.jsonl")).unwrap();
    assert!(raw.contains(PLANTED));

    let ex = check_export(&b.dir, d.path(), &opts(&inv));
    let r = &ex.report;
    let s = &r.summary;
    let recs = journal::read_records(&b.dir.join("journal.jsonl")).unwrap();

    // The numbers, from the controlled times.
    let damage = s.first_damage.as_ref().unwrap();
    assert_eq!(damage.at, b.damage_at);
    assert_eq!(damage.source, "sample");
    assert_eq!((damage.before, damage.after), (Some(22), Some(0)));
    assert_eq!(damage.table.as_deref(), Some("User"));
    let opened = recs.iter().find(|r| r.kind == "incident-opened").unwrap();
    assert_eq!(
        s.time_to_detect.as_ref().unwrap().seconds,
        (opened.ts - b.damage_at).num_seconds()
    );
    let swap = recs
        .iter()
        .find(|r| r.step.as_deref() == Some("swap") && r.kind == "step-finished")
        .unwrap();
    assert_eq!(
        s.time_to_restore.as_ref().unwrap().seconds,
        (swap.ts - b.damage_at).num_seconds()
    );
    let lost = s.data_lost.as_ref().unwrap();
    assert_eq!(lost.seconds, 53 * 3600 + 6 * 60);
    assert_eq!(lost.basis, "computed");
    assert_eq!(lost.incident_at, Some(b.incident_at));
    assert_eq!(lost.backup_taken_at, Some(b.backup_taken_at));
    assert!(ex.md.contains("**2 d 5 h 06 min**"), "RPO in words");
    let backup = s.backup.as_ref().unwrap();
    assert_eq!(backup.name.as_deref(), Some("external"));
    assert_eq!(backup.sha256.as_deref(), Some("ab12".repeat(16).as_str()));
    assert_eq!(
        s.kept.damaged_databases,
        ["TovPlay__damaged_20261210T130000Z"]
    );
    assert_eq!(
        s.kept.snapshots[0].sha256.as_deref(),
        Some("9f2c".repeat(16).as_str())
    );
    assert_eq!(s.verification.len(), 1);
    assert_eq!(
        (s.verification[0].ok, s.verification[0].checks),
        (Some(true), 3)
    );
    assert_eq!(s.stopped_services.len(), 3);
    assert_eq!(s.databases[0], "main");
    assert!(s.hosts.contains(&"prod".to_string()), "{:?}", s.hosts);
    assert_eq!(s.steps.finished, 6);

    // Row counts: 22 -> 0 -> 23; the estimated table is left out.
    let user = r.row_counts.iter().find(|t| t.table == "User").unwrap();
    assert_eq!((user.before, user.lowest, user.after), (Some(22), 0, 23));
    let ss = r
        .row_counts
        .iter()
        .find(|t| t.table == "ScheduledSession")
        .unwrap();
    assert_eq!((ss.before, ss.lowest, ss.after), (Some(16), 15, 15));
    assert!(r.row_counts.iter().all(|t| t.table != "Game"));
    assert!(ex.md.contains("22 → 0 → 23"));

    // The ten probes fold into one line; the step commands do not.
    let folds: Vec<_> = r
        .timeline
        .iter()
        .filter_map(|i| match i {
            TimelineItem::Folded(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(folds.len(), 1);
    assert_eq!((folds[0].count, folds[0].kind.as_str()), (10, "probe"));
    assert!(ex.md.contains("… 10 similar"), "md fold line");
    assert!(ex.md.contains("systemctl stop db-realtime-sync.service"));

    // Backdated notes: before every journal event (their times are earlier
    // than the run), in the order of the times they describe.
    let first_two: Vec<_> = r.timeline[..2]
        .iter()
        .map(|i| match i {
            TimelineItem::Event(e) => (e.at, e.added_later.is_some()),
            TimelineItem::Folded(_) => panic!("fold at the top"),
        })
        .collect();
    assert_eq!(
        first_two,
        vec![(b.backdated[1], true), (b.backdated[0], true)]
    );
    assert!(
        ex.md.contains("a change was made by hand _(added later at"),
        "{}",
        ex.md
    );

    // Local time column in the requested offset.
    let TimelineItem::Event(e) = &r.timeline[0] else {
        panic!()
    };
    assert!(e.local.ends_with("+02:00"), "{}", e.local);
    assert_eq!(r.local_offset, "+02:00");
}

#[test]
fn without_the_inventory_the_literal_secret_is_not_known() {
    // The guard of the test above: the same export without -i shows the
    // planted value, so its absence there is the redactor's doing.
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let ex = export_support::export_all(&b.dir, d.path(), &CheckOpts::default());
    for text in [&ex.md, &ex.json, &ex.html] {
        assert!(text.contains("Inv3nt0ry") && text.contains("S3cret"));
    }
}

#[test]
fn broken_chain_is_exported_with_a_warning_and_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let jp = b.dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&jp).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Someone "corrects" the alert after the fact.
    assert!(lines[1].contains("dropped from 22 to 0"));
    lines[1] = lines[1].replace("dropped from 22 to 0", "dropped from 22 to 21");
    std::fs::write(&jp, lines.join("\n") + "\n").unwrap();

    for fmt in ["md", "html", "json"] {
        let out = d.path().join(format!("broken.{fmt}"));
        let o = lifeline(d.path())
            .arg("export")
            .arg(&b.id)
            .args(["--format", fmt, "--tz", "Z", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{fmt}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("broken at line 2"), "{err}");
        let doc = std::fs::read_to_string(&out).unwrap();
        match fmt {
            "md" => {
                let head: String = doc.lines().take(4).collect::<Vec<_>>().join("\n");
                assert!(
                    head.contains("> ⚠ **WARNING: the journal's hash chain is BROKEN**"),
                    "{head}"
                );
                assert!(head.contains("at line 2"), "{head}");
                assert!(
                    doc.contains("⚠ unverified"),
                    "events after the break are marked"
                );
                // The edited text is shown (never hidden), but marked.
                assert!(doc.contains("dropped from 22 to 21"));
            }
            "html" => {
                let top = &doc[..doc.find("id=\"summary\"").unwrap()];
                assert!(
                    top.contains("class=\"integrity broken\""),
                    "warning before the summary"
                );
                assert!(top.contains("BROKEN"));
                assert!(doc.contains("class=\"event unverified\"") || doc.contains("unverified\""));
            }
            _ => {
                let r: lifeline::export::Report = serde_json::from_str(&doc).unwrap();
                assert!(!r.integrity.intact);
                assert_eq!(r.integrity.first_bad_line, Some(2));
                assert_eq!(r.integrity.verified, 1);
                let unverified = r
                    .timeline
                    .iter()
                    .filter(|i| match i {
                        TimelineItem::Event(e) => !e.verified,
                        TimelineItem::Folded(f) => !f.verified,
                    })
                    .count();
                assert_eq!(unverified, r.timeline.len() - 1);
            }
        }
    }
}

#[test]
fn export_to_stdout_by_path_and_bad_arguments() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    // Default format is Markdown on stdout; INCIDENT may be the journal's path.
    let o = lifeline(d.path())
        .arg("export")
        .arg(b.dir.join("journal.jsonl"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let md = String::from_utf8(o.stdout).unwrap();
    assert!(
        md.starts_with("# Incident `20261210-124200-rogue-sync`"),
        "{md}"
    );

    let o = lifeline(d.path())
        .args(["export", "no-such-incident"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("'no-such-incident'") && err.contains("20261210-124200-rogue-sync"),
        "{err}"
    );

    let o = lifeline(d.path())
        .args(["export", &b.id, "--tz", "two hours"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("'two hours' is not a UTC offset"));
}

#[test]
fn torn_last_line_is_stated_and_the_rest_exported() {
    let d = tempfile::tempdir().unwrap();
    let b = build_rogue_sync(d.path());
    let jp = b.dir.join("journal.jsonl");
    let n = journal::read_records(&jp).unwrap().len();
    // A crash mid-write leaves half a line.
    let mut f = std::fs::OpenOptions::new().append(true).open(&jp).unwrap();
    std::io::Write::write_all(&mut f, b"{\"seq\":999,\"ts\":\"20").unwrap();
    drop(f);
    let ex = export_support::export_all(&b.dir, d.path(), &CheckOpts::default());
    assert_eq!(ex.codes, [0, 0, 0]);
    assert_eq!(ex.report.integrity.torn_last_line, Some(n + 1));
    assert_eq!(ex.report.integrity.records, n);
    assert!(
        ex.md
            .contains(&format!("Line {} is a torn last line", n + 1))
    );
}
