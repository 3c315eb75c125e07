//! Choosing another backup in the real console (issue 19): a real cluster,
//! a real catalog of three dumps on the local host, the restore's typed
//! confirmation put aside, the backup panel's `c` on the second-newest,
//! the confirmation asked again naming it, the restored copy holding its
//! rows and the choice journaled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use crate::console_tmux::{
    assert_exited_restored, console_line, inventory, only_incident, prepare, start,
};
use crate::support;

const CHOOSE_RUNBOOK: &str = r#"
id = "choose-drill"
title = "Console test: restore a backup the operator chose"
when = "Only in the console's end-to-end test."

[[step]]
id = "stop"
action = "stop-services"
explain = "Nothing writes in this test: prove it."
database = "main"
hold_s = 1

[[step]]
id = "snap"
action = "snapshot"
explain = "Keep the current state."
database = "main"

[[step]]
id = "pick"
action = "pick-backup"
explain = "Judge every backup against the incident time."
catalog = "nightly"
incident_at = "INCIDENT_AT"

[[step]]
id = "restore"
action = "restore"
explain = "Restore the backup beside the live database."
database = "main"
catalog = "nightly"
backup = "{pick.backup.path}"
"#;

#[test]
fn c_in_the_backup_panel_restores_the_chosen_backup_and_journals_why() {
    let pg = support::pg();
    let password = support::random_password();
    prepare(&pg, &password);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let incident = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    std::fs::write(
        dir.join("runbooks/choose-drill.toml"),
        CHOOSE_RUNBOOK.replace("INCIDENT_AT", &incident),
    )
    .unwrap();
    // Account: 30 rows, then 35, then 40 in three dumps a second apart.
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let names = [
        "shop_20261201_010000.dump",
        "shop_20261201_020000.dump",
        "shop_20261201_030000.dump",
    ];
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            let from = 31 + 5 * (i - 1);
            pg.psql(
                "shop",
                &format!(
                    "INSERT INTO \"Account\" SELECT g, 'u' || g || '@x' FROM generate_series({from}, {}) g",
                    from + 4
                ),
            )
            .unwrap();
        }
        let o = Command::new(pg.bin("pg_dump"))
            .args(["-Fc", "-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(pg.port().to_string())
            .args(["-d", "shop", "-f"])
            .arg(backups.join(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", support::stderr(&o));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let second = names[1];
    let catalog = format!(
        "[[backups]]\nname = \"nightly\"\nhost = \"here\"\npath = \"{}\"\npattern = \"shop_%Y%m%d_%H%M%S.dump\"\ndatabase = \"main\"\n",
        backups.display()
    );
    std::fs::write(
        dir.join("lifeline.toml"),
        format!("{}\n{catalog}", inventory(&pg, "")),
    )
    .unwrap();
    let t = start("choose", &console_line(dir, &password, "console"), 160, 48);
    t.wait_for("healthy");
    t.command("runbook choose-drill");
    // Nothing to stop here: nothing is ticked (the machine is shared: other
    // runs' processes may be listed, none reaches this inventory's
    // database, so none is ticked); Enter, y confirms the plan.
    t.wait("the stop plan with nothing ticked", |s| {
        s.contains("stop the writers of 'main': 0 of ") && s.contains(" ticked")
    });
    t.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["y"]);
    // The restore's confirmation names the preselection and its loss.
    let s = t.wait("the restore confirmation", |s| {
        s.contains("Confirm destructive step") && s.contains(&format!("Backup: {}", names[2]))
    });
    assert!(s.contains("preselected by the pick"), "{s}");
    assert!(s.contains("2 other eligible backup(s)"), "{s}");
    // Put it aside, open the panel, newest first, the second-newest, c.
    t.keys(&["Escape"]);
    t.wait("the confirmation put aside", |s| {
        !s.contains("Confirm destructive step")
    });
    t.command("backups");
    // The panel fills in when the pick's journal record reaches the
    // console (the journal tail is read a moment after the confirmation).
    t.wait_for("3 candidate(s) judged by step 'pick'");
    t.keys(&["s"]);
    t.wait_for("sorted by newest first (s)");
    t.keys(&["j", "c"]);
    t.wait_for("Choose this backup for the restore");
    t.text("the newest has rows from a bad import");
    t.keys(&["Enter"]);
    // Asked again, naming the chosen backup and why.
    let s = t.wait("the confirmation of the chosen backup", |s| {
        s.contains(&format!("Backup: {second}")) && s.contains("chosen by you")
    });
    assert!(s.contains("rows lost per table: public.Account 5"), "{s}");
    t.text("shop as superuser");
    t.keys(&["Enter"]);
    t.wait_for("runbook finished: every step done");
    let restored = pg
        .psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'shop\\_\\_restore\\_%'",
        )
        .unwrap();
    let restored: Vec<&str> = restored.lines().collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(
        pg.psql(restored[0], "SELECT count(*) FROM \"Account\"")
            .unwrap()
            .trim(),
        "35"
    );
    let inc = only_incident(&dir.join("state"));
    let recs = lifeline::journal::read_records(&inc.join("journal.jsonl")).unwrap();
    let chosen = recs
        .iter()
        .find(|r| r.kind == "backup-chosen")
        .expect("the choice is journaled");
    assert_eq!(chosen.data["chosen"]["name"], second);
    assert_eq!(chosen.data["preselected"]["name"], names[2]);
    assert_eq!(chosen.data["source"], "console");
    assert_eq!(chosen.operator, "oncall");
    assert_eq!(
        chosen.data["reason"],
        "the newest has rows from a bad import"
    );
    // The panel marks it.
    t.command("backups");
    let s = t.wait_for("chosen by you instead of the preselection");
    assert!(s.contains(&format!("chosen {second}")), "{s}");
    t.keys(&["Escape"]);
    t.wait("the panel closed", |s| {
        !s.contains("candidates of the last pick")
    });
    t.keys(&["q"]);
    assert_exited_restored(&t);
}
