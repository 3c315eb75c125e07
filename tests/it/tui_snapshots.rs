//! Whole-screen snapshots of every view (ratatui TestBackend + insta) with
//! the demo model of outage 1 and a fixed clock, at 80x24 and 160x48; the
//! NO_COLOR / ASCII / 16-colour renderings; and the confirm dialog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use lifeline::tui::keys::KeyMap;

use lifeline::tui::event::{Msg, UiEvent};
use lifeline::tui::model::{Model, View};
use lifeline::tui::theme::{ColorMode, Theme};
use lifeline::tui::view::Console;
use lifeline::tui::{demo, update};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 10, 12, 56, 30).unwrap()
}

fn model() -> Model {
    let mut m = demo::model(now());
    m.theme = Theme {
        color: ColorMode::Indexed,
        ascii: false,
    };
    m
}

fn render(m: &Model, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| f.render_widget(Console { model: m }, f.area()))
        .unwrap();
    term
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn view(v: View) -> Model {
    let mut m = model();
    m.ui.view = v;
    m
}

fn snap(name: &str, m: &Model, w: u16, h: u16) {
    let t = render(m, w, h);
    insta::assert_snapshot!(name, text(t.backend().buffer()));
}

#[test]
fn every_view_at_80x24_and_160x48() {
    for v in View::ALL {
        let name = format!("{v:?}").to_lowercase();
        for (w, h) in [(80, 24), (160, 48)] {
            snap(&format!("{name}_{w}x{h}"), &view(v), w, h);
        }
    }
}

#[test]
fn help_is_generated_from_the_key_map() {
    let mut m = model();
    update(&mut m, key('?'));
    snap("help_80x24", &m, 80, 24);
    snap("help_160x48", &m, 160, 48);
    // An override shows up in the help and the footer.
    let mut m = model();
    m.keys = KeyMap::default()
        .patched(
            "keys.toml",
            "down = [\"ctrl-n\", \"down\"]\nhelp = \"f1\"\n",
        )
        .unwrap();
    let footer = text(render(&m, 160, 48).backend().buffer());
    assert!(footer.contains("f1 help"), "{footer}");
    m.ui.overlay = lifeline::tui::model::Overlay::Help { scroll: 0 };
    let screen = text(render(&m, 160, 48).backend().buffer());
    assert!(screen.contains("ctrl-n/down"), "{screen}");
    assert!(!screen.contains("j/down"), "{screen}");
}

#[test]
fn confirm_dialog() {
    let mut m = model();
    m.ui.view = View::Runbook;
    m.apply(UiEvent::Confirm(Some(demo::swap_confirm())));
    for c in "tovplay".chars() {
        update(&mut m, key(c));
    }
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    for c in "TovPl".chars() {
        update(&mut m, key(c));
    }
    snap("confirm_wrong_name_80x24", &m, 80, 24);
    snap("confirm_wrong_name_160x48", &m, 160, 48);
}

/// The demo with no runbook running, its sync hazards typed as the scanner
/// types them and the shipped rogue-sync-wipe runbook known.
fn before_start() -> Model {
    use lifeline::tui::model::RunbookInfo;
    let mut m = model();
    m.apply(UiEvent::RunbookUpdate(None));
    for hs in &mut m.services {
        for s in &mut hs.services {
            for h in &mut s.hazards {
                if h.what.starts_with("pg_dump --clean") {
                    h.kind = "dump-clean-restore".into();
                } else if h.what.starts_with("auto-restore") {
                    h.kind = "auto-restore".into();
                }
            }
        }
    }
    m.runbooks.push(RunbookInfo {
        name: "rogue-sync-wipe".into(),
        title: "A sync job keeps wiping the database: stop every writer, then restore".into(),
        when: "a job keeps overwriting a database (pg_dump --clean, restore loops)".into(),
    });
    m
}

fn plan() -> lifeline::tui::plan::PlanPreview {
    use lifeline::tui::plan::{PlanPreview, PlanStep};
    let step = |id: &str, action: &str, explain: &str, target: &str, preview: &[&str]| PlanStep {
        id: id.into(),
        action: action.into(),
        explain: explain.into(),
        target: Some(target.into()),
        preview: preview.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut stop = step(
        "stop-writers",
        "stop-services",
        "Stops every job that writes to TovPlay for good (stop, disable, mask), then holds 120 s to prove none comes back.",
        "prod",
        &[
            "on prod: systemctl stop db-realtime-sync.service (when active); systemctl disable db-realtime-sync.service (when enabled); systemctl mask db-realtime-sync.service",
        ],
    );
    stop.destructive = true;
    stop.confirm = Some("TovPlay".into());
    let mut restore = step(
        "restore",
        "restore",
        "Restores the picked backup into a new database beside the live one; the live one is not touched.",
        "db.tovplay.example:5432/TovPlay__restore_20261210",
        &[],
    );
    restore.destructive = true;
    restore.requires = vec!["stopped".into(), "backup-picked".into()];
    restore.error = Some("no backup was picked yet".into());
    let mut swap = step(
        "swap",
        "swap",
        "Renames the damaged database aside (kept) and the verified copy into its place.",
        "db.tovplay.example:5432/TovPlay",
        &[
            "ALTER DATABASE \"TovPlay\" RENAME TO \"TovPlay__damaged_20261210T124200Z\"",
            "ALTER DATABASE \"TovPlay__restore_20261210\" RENAME TO \"TovPlay\"",
        ],
    );
    swap.destructive = true;
    swap.requires = vec!["verified".into()];
    swap.confirm = Some("TovPlay".into());
    PlanPreview {
        runbook: "rogue-sync-wipe".into(),
        title: "A sync job keeps wiping the database: stop every writer, then restore".into(),
        database: Some("main".into()),
        steps: vec![
            step(
                "probe",
                "probe",
                "Looks at every host and the database before anything changes.",
                "prod",
                &[
                    "probe host prod: systemd units and timers, cron entries, containers, processes; the databases each reaches; hazards",
                ],
            ),
            stop,
            step(
                "pick",
                "pick-backup",
                "Picks the newest backup taken before the damage whose content is judged whole.",
                "catalog nightly",
                &[],
            ),
            restore,
            swap,
        ],
        notes: vec![],
        refused: vec![],
    }
}

#[test]
fn suggested_runbook_and_plan_before_start() {
    let mut m = before_start();
    update(&mut m, key('4'));
    // The cursor starts on the suggested runbook, its reason beside it.
    snap("runbook_suggested_80x24", &m, 80, 24);
    snap("runbook_suggested_160x48", &m, 160, 48);
    let cmds = update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    assert_eq!(
        cmds,
        vec![lifeline::tui::UiCommand::PreviewRunbook(
            "rogue-sync-wipe".into()
        )]
    );
    m.apply(UiEvent::Plan(Box::new(plan())));
    snap("plan_80x24", &m, 80, 24);
    snap("plan_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    for want in [
        "Plan: rogue-sync-wipe (nothing has run)",
        "suggested: 2 sync-loop hazard(s) on prod",
        "CHANGES: asks you to type 'TovPlay' first",
        "reads only, no confirmation",
        "s: start",
    ] {
        assert!(t.contains(want), "{want}:\n{t}");
    }
}

#[test]
fn backup_panel() {
    let mut m = model();
    update(&mut m, key(':'));
    for c in "backups".chars() {
        update(&mut m, key(c));
    }
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    snap("backups_80x24", &m, 80, 24);
    snap("backups_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    for want in [
        "3 candidate(s) judged by step 'pick-backup'",
        "excluded tovplay_external_20261210_124500.sql",
        "why: taken after the incident",
        "chosen tovplay_external_20261208_073600.sql",
        "loses 2 d 5 h of changes",
        "content: healthy",
    ] {
        assert!(t.contains(want), "{want}:\n{t}");
    }
}

/// The operator chose an older backup (journaled `backup-chosen`): the
/// restore's confirmation names it, why, and what it loses; the panel
/// marks it chosen by the operator, the preselection, and the cursor.
#[test]
fn backup_panel_with_a_chosen_candidate() {
    let oldest = "tovplay_external_20261208_073600.sql";
    let why = "the newer dumps miss the 18:00 import";
    let mut m = model();
    demo::add_choice_pick(&mut m, Some((oldest, why)));
    m.apply(UiEvent::Confirm(Some(demo::restore_confirm(
        &m,
        oldest,
        Some(why),
    ))));
    snap("confirm_restore_chosen_80x24", &m, 80, 24);
    snap("confirm_restore_chosen_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    for want in [
        format!("Backup: {oldest}"),
        format!("chosen by you instead of the preselection: {why}"),
        "loses 2 d 5 h of changes".into(),
        "rows lost per table: public.GameRequest 22, public.User 2".into(),
        "2 other eligible backup(s)".into(),
    ] {
        assert!(t.contains(&want), "{want}:\n{t}");
    }
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
    );
    update(&mut m, key(':'));
    for c in "backups".chars() {
        update(&mut m, key(c));
    }
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    update(&mut m, key('j'));
    snap("backups_chosen_80x24", &m, 80, 24);
    snap("backups_chosen_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    for want in [
        format!("chosen {oldest}"),
        format!("chosen by you instead of the preselection: {why}"),
        "> · eligible tovplay_external_20261210_060000.sql".into(),
        "preselected by the pick".into(),
        "c choose for the restore".into(),
    ] {
        assert!(t.contains(&want), "{want}:\n{t}");
    }
}

/// `s` sorts the Services jobs, the Timeline tables, the Overview
/// databases and the backup candidates; a key other than the default is
/// named in the list's title.
#[test]
fn sortable_lists_name_their_key_in_the_title() {
    let mut m = model();
    update(&mut m, key('2'));
    update(&mut m, key('s'));
    snap("sorted_services_80x24", &m, 80, 24);
    snap("sorted_services_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    assert!(t.contains("Jobs · sorted by name (s)"), "{t}");
    update(&mut m, key('3'));
    update(&mut m, key('s'));
    update(&mut m, key('s'));
    snap("sorted_timeline_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    assert!(t.contains("sorted by rows (most first) (s)"), "{t}");
    update(&mut m, key('1'));
    update(&mut m, key('s'));
    snap("sorted_databases_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    assert!(t.contains("Databases (2) · sorted by name (s)"), "{t}");
    demo::add_choice_pick(&mut m, None);
    update(&mut m, key(':'));
    for c in "backups".chars() {
        update(&mut m, key(c));
    }
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    update(&mut m, key('s'));
    snap("sorted_backups_80x24", &m, 80, 24);
    snap("sorted_backups_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    assert!(t.contains("sorted by newest first (s)"), "{t}");
    // Newest first: the one taken after the incident leads.
    let after = t.find("tovplay_external_20261210_124500.sql").unwrap();
    let newest = t.find("tovplay_external_20261210_060000.sql").unwrap();
    assert!(after < newest, "{t}");
}

/// A step failed after a long dump of output: the Output starts at the
/// failing step's first error line (not the tail), says `r` retries it,
/// and `r` on the followed step asks for the retry.
#[test]
fn a_failed_step_scrolls_the_output_to_its_first_error() {
    use lifeline::tui::event::UiCommand;
    use lifeline::tui::model::{OutputLine, StepState};
    let mut m = view(View::Runbook);
    if let Some(rb) = &mut m.runbook {
        let failed = rb.steps.iter().position(|s| s.id == "restore").unwrap();
        for (i, st) in rb.steps.iter_mut().enumerate() {
            st.state = match i {
                i if i < failed => StepState::Done,
                i if i == failed => StepState::Failed,
                _ => StepState::Pending,
            };
        }
        rb.current = Some(failed);
        rb.steps[failed].summary = Some(
            "psql exited 3: ERROR: duplicate key value violates unique constraint \"User_pkey\""
                .into(),
        );
    }
    m.progress = None;
    m.output.clear();
    let mut push = |line: String| {
        m.output.push_back(OutputLine {
            step: "restore".into(),
            line,
            stderr: false,
        })
    };
    push("restoring tovplay_external_20261208_073600.sql into TovPlay__restore_20261210".into());
    push("COPY public.\"Game\" 12 rows".into());
    push("psql:tovplay_external_20261208_073600.sql:2231: ERROR:  duplicate key value violates unique constraint \"User_pkey\"".into());
    for n in 1..=50 {
        push(format!(
            "CONTEXT:  COPY User, line {n}: \"{n}\tuser{n}@example.net\""
        ));
    }
    snap("failed_output_80x24", &m, 80, 24);
    snap("failed_output_160x48", &m, 160, 48);
    for (w, h) in [(80, 24), (160, 48)] {
        let t = text(render(&m, w, h).backend().buffer());
        assert!(t.contains("ERROR:  duplicate key"), "{t}");
        assert!(t.contains("r retries"), "{t}");
        assert!(!t.contains("line 50:"), "the tail is not shown first:\n{t}");
        assert!(t.contains("more line(s) below"), "{t}");
    }
    assert_eq!(
        update(&mut m, key('r')),
        vec![UiCommand::Retry {
            runbook: m.runbook.as_ref().unwrap().name.clone(),
            step: "restore".into()
        }]
    );
}

#[test]
fn live_hold_countdown_hosts_and_what_came_back() {
    use lifeline::tui::model::{OutputLine, Progress, StepState};
    let mut m = view(View::Runbook);
    let t0 = now() - chrono::Duration::seconds(13);
    if let Some(rb) = &mut m.runbook {
        for (i, st) in rb.steps.iter_mut().enumerate() {
            st.state = match i {
                0 => StepState::Done,
                1 => StepState::Running,
                _ => StepState::Pending,
            };
        }
        rb.steps[1].started_at = Some(t0);
        rb.current = Some(1);
        rb.explanation = "Stops every writer to main for good, then holds 120 s: what comes back is stopped again and fails the hold.".into();
        rb.preview = vec![
            "on prod: systemctl stop db-realtime-sync.service (when active); systemctl disable db-realtime-sync.service (when enabled); systemctl mask db-realtime-sync.service".into(),
            "on prod: the pid in /run/ultimate_protection.pid: kill -s STOP, then kill -s TERM its process group, kill -s KILL after 10 s".into(),
            "on ext-db: docker stop tovplay-sync (never 'down -v' or 'rm')".into(),
        ];
    }
    m.output.clear();
    for line in [
        "holding 120 s",
        "+10 s: 'ultimate_protection.sh' on prod is BACK: running as pid 4188 (started by sync-monitor.timer)",
    ] {
        m.output.push_back(OutputLine {
            step: "stop-writers".into(),
            line: line.into(),
            stderr: false,
        });
    }
    m.progress = Some(Progress {
        step: "stop-writers".into(),
        bytes_done: 13,
        bytes_total: Some(120),
        label: Some("hold: 107 s left of 120 s".into()),
        tables: vec![],
        started_at: t0,
        updated_at: now() - chrono::Duration::seconds(1),
    });
    snap("hold_80x24", &m, 80, 24);
    snap("hold_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    for want in [
        "hold: 107 s left of 120 s",
        "watching 3 service(s) on prod, ext-db",
        "prod: answered",
        "1 came back during the hold",
        "is BACK: running as pid 4188",
    ] {
        assert!(t.contains(want), "{want}:\n{t}");
    }
}

#[test]
fn an_active_filter_and_a_pause_are_always_on_screen() {
    let mut m = view(View::Journal);
    update(&mut m, key('/'));
    for c in "stop".chars() {
        update(&mut m, key(c));
    }
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    update(&mut m, key('p'));
    // The footer's message goes with the next key; the filter and the pause stay.
    update(&mut m, key('k'));
    for (w, h) in [(80, 24), (160, 48)] {
        let t = text(render(&m, w, h).backend().buffer());
        assert!(t.contains("filter 'stop' (esc clears)"), "{w}x{h}:\n{t}");
        assert!(t.contains("PAUSED"), "{w}x{h}:\n{t}");
    }
    snap("filter_paused_80x24", &m, 80, 24);
}

#[test]
fn a_recreated_table_is_one_timeline_line_across_its_oids() {
    use lifeline::samples::{Sample, TableCount};
    let mut m = view(View::Timeline);
    let last = m.series_of("main").unwrap().clone();
    let identity = last.identity.clone();
    let user = last.tables.iter().find(|t| t.name == "User").unwrap();
    let old_oid = user.oid;
    // Two rounds after "now": User re-created with a new OID, 0 then 19 rows.
    for (k, rows) in [(1i64, 0i64), (2, 19)] {
        let tables = last
            .tables
            .iter()
            .filter(|t| t.name != "User")
            .map(|t| TableCount {
                schema: t.schema.clone(),
                name: t.name.clone(),
                oid: t.oid,
                rows: t.last().unwrap_or(0),
                exact: true,
            })
            .chain([TableCount {
                schema: "public".into(),
                name: "User".into(),
                oid: old_oid + 50_000,
                rows,
                exact: true,
            }])
            .collect();
        m.apply(UiEvent::Sample(Sample {
            ts: now() + chrono::Duration::seconds(10 * k),
            database: "main".into(),
            identity: identity.clone(),
            tables,
        }));
    }
    m.now = now() + chrono::Duration::seconds(25);
    snap("timeline_recreated_80x24", &m, 80, 24);
    snap("timeline_recreated_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    let user_rows = t.lines().filter(|l| l.contains(" User ")).count();
    assert!(t.contains("User (re-created)"), "{t}");
    assert!(t.contains("re-created: 2 OIDs merged into one line"), "{t}");
    assert_eq!(
        t.lines()
            .filter(|l| l.contains("User (re-created)"))
            .count(),
        1,
        "one line for User across its OIDs ({user_rows} lines name it):\n{t}"
    );
}

#[test]
fn quit_dialog_and_details() {
    let mut m = model();
    update(&mut m, key('q'));
    snap("quit_running_80x24", &m, 80, 24);
    let mut m = view(View::Journal);
    update(&mut m, key('k'));
    update(&mut m, key('k'));
    update(&mut m, key('k'));
    update(&mut m, key('k'));
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    snap("details_record_80x24", &m, 80, 24);
}

#[test]
fn filtered_journal_and_command_line() {
    let mut m = view(View::Journal);
    update(&mut m, key('/'));
    for c in "note".chars() {
        update(&mut m, key(c));
    }
    snap("journal_filter_80x24", &m, 80, 24);
    let mut m = view(View::Overview);
    update(&mut m, key(':'));
    for c in "runbook rogue-sync".chars() {
        update(&mut m, key(c));
    }
    let screen = text(render(&m, 80, 24).backend().buffer());
    assert!(
        screen
            .lines()
            .nth(23)
            .unwrap()
            .starts_with(":runbook rogue-sync_"),
        "{screen}"
    );
}

#[test]
fn ascii_and_no_color() {
    for v in View::ALL {
        let mut m = view(v);
        m.theme = Theme {
            color: ColorMode::None,
            ascii: true,
        };
        m.ui.overlay = lifeline::tui::model::Overlay::None;
        let t = render(&m, 80, 24);
        let buf = t.backend().buffer();
        for cell in buf.content() {
            assert!(cell.symbol().is_ascii(), "{v:?}: {:?}", cell.symbol());
            assert_eq!(cell.fg, Color::Reset, "{v:?}: colour with NO_COLOR");
            assert_eq!(cell.bg, Color::Reset, "{v:?}: colour with NO_COLOR");
        }
        if matches!(v, View::Overview | View::Timeline) {
            snap(
                &format!("{}_ascii_nocolor_80x24", format!("{v:?}").to_lowercase()),
                &m,
                80,
                24,
            );
        }
    }
    // The confirm dialog too.
    let mut m = model();
    m.theme = Theme {
        color: ColorMode::None,
        ascii: true,
    };
    m.apply(UiEvent::Confirm(Some(demo::swap_confirm())));
    let t = render(&m, 80, 24);
    assert!(
        t.backend()
            .buffer()
            .content()
            .iter()
            .all(|c| c.symbol().is_ascii())
    );
}

#[test]
fn sixteen_colours_use_only_the_basic_palette() {
    for v in View::ALL {
        let mut m = view(v);
        m.theme = Theme {
            color: ColorMode::Basic,
            ascii: false,
        };
        let t = render(&m, 160, 48);
        for cell in t.backend().buffer().content() {
            for c in [cell.fg, cell.bg] {
                assert!(
                    !matches!(c, Color::Indexed(_) | Color::Rgb(..)),
                    "{v:?}: {c:?}"
                );
            }
        }
    }
    // And 256 colours do use the palette (the test above can fail).
    let t = render(&model(), 160, 48);
    assert!(
        t.backend()
            .buffer()
            .content()
            .iter()
            .any(|c| matches!(c.fg, Color::Indexed(_)))
    );
}

#[test]
fn stale_numbers_are_marked_in_words() {
    let mut m = model();
    // local was sampled 61 s ago: stale already.
    let screen = text(render(&m, 160, 48).backend().buffer());
    let local = screen.lines().find(|l| l.contains("  local  ")).unwrap();
    assert!(local.contains("1 min 01 s ago STALE"), "{local}");
    let main = screen.lines().find(|l| l.contains("  main ")).unwrap();
    assert!(!main.contains("STALE"), "{main}");
    // 40 s later without a sample, main is stale too, and the hung host's count grows.
    m.apply(UiEvent::Tick(now() + chrono::Duration::seconds(40)));
    let screen = text(render(&m, 160, 48).backend().buffer());
    let main = screen.lines().find(|l| l.contains("  main ")).unwrap();
    assert!(main.contains("sampled 44 s ago STALE"), "{main}");
    let backup = screen.lines().find(|l| l.contains("  backup ")).unwrap();
    assert!(backup.contains("no answer for 57 s"), "{backup}");
    // Its stale style is not colour alone: the word is there, and the cell is dim.
    let t = render(&m, 160, 48);
    let buf = t.backend().buffer();
    let y = screen.lines().position(|l| l.contains("  main ")).unwrap() as u16;
    let x = main[..main.find("sampled").unwrap()].chars().count() as u16;
    assert!(buf[(x, y)].modifier.contains(ratatui::style::Modifier::DIM));
}

#[test]
fn env_label_colours_the_header() {
    for (env, bg) in [
        ("production", Color::Indexed(160)),
        ("staging", Color::Indexed(220)),
        ("lab", Color::Indexed(25)),
    ] {
        let mut m = model();
        for d in &mut m.databases {
            d.env = Some(env.into());
        }
        let t = render(&m, 80, 24);
        let buf = t.backend().buffer();
        assert_eq!(buf[(1, 0)].bg, bg, "{env}");
        let line: String = (0..80).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert!(line.contains(&env.to_uppercase()), "{line}");
    }
    let mut m = model();
    m.header.readonly = true;
    m.header.mode = lifeline::tui::model::Mode::Drill;
    let screen = text(render(&m, 80, 24).backend().buffer());
    let head = screen.lines().next().unwrap();
    assert!(
        head.contains("READ-ONLY") && head.contains("DRILL"),
        "{head}"
    );
    // Pids a run left frozen are named in the header until resolved.
    let mut m = model();
    m.header.frozen = vec!["frozen: -4242 on db1".into()];
    let screen = text(render(&m, 100, 24).backend().buffer());
    let head = screen.lines().next().unwrap();
    assert!(head.contains("FROZEN: -4242 ON DB1"), "{head}");
}

#[test]
fn any_size_draws_without_panicking() {
    let mut sizes = vec![(1, 1), (20, 5), (59, 15), (60, 16), (61, 17), (300, 100)];
    for w in (60..=200).step_by(7) {
        for h in (16..=60).step_by(5) {
            sizes.push((w, h));
        }
    }
    for v in View::ALL {
        let mut m = view(v);
        for (w, h) in &sizes {
            render(&m, *w, *h);
        }
        m.apply(UiEvent::Confirm(Some(demo::swap_confirm())));
        for (w, h) in &sizes {
            render(&m, *w, *h);
        }
    }
    let small = text(render(&model(), 50, 12).backend().buffer());
    assert!(
        small.contains("50x12") && small.contains("60x16"),
        "{small}"
    );
}

#[test]
fn empty_model_draws_every_view() {
    let mut m = Model::new(now());
    m.theme = Theme::default();
    for v in View::ALL {
        m.ui.view = v;
        let screen = text(render(&m, 80, 24).backend().buffer());
        assert!(screen.contains("NO ENV LABEL"), "{screen}");
    }
}

/// Host output is hostile: a service name carrying ESC/BEL sequences is
/// drawn with visible escapes (the sanitiser the CLI uses), never raw and
/// never silently stripped.
#[test]
fn escapes_from_hosts_are_shown_visible_on_every_view() {
    let mut m = model();
    let evil = "sync\x1b]0;pwned\x07\x1b[2Jx";
    m.services[0].services[0].name = evil.into();
    m.services[0].services[0].state = "up\u{9b}31m".into();
    let mut seen = false;
    for v in View::ALL {
        m.ui.view = v;
        let t = render(&m, 200, 60);
        let s = text(t.backend().buffer());
        assert!(
            !s.chars().any(|c| c.is_control() && c != '\n'),
            "{v:?}: raw control on screen: {s:?}"
        );
        seen |= s.contains("sync\\x1b]0;pwned\\x07\\x1b[2Jx");
    }
    assert!(seen, "the service name is shown with visible escapes");
}

/// The header names unacknowledged alerts; `a` asks to journal an
/// acknowledgement of every one shown, and once that record comes back the
/// header says so (the alert does not stay red forever).
#[test]
fn alerts_are_acknowledged_with_a_key_and_the_header_follows() {
    use lifeline::tui::event::UiCommand;
    let mut m = model();
    let n = m.alerts.len();
    assert!(n > 0, "the demo has an alert");
    let head = |m: &Model| {
        text(render(m, 160, 48).backend().buffer())
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    let before = head(&m);
    assert!(before.contains(&format!("▲ {n} alert")), "{before}");
    assert!(before.contains("a: acknowledge"), "{before}");
    let upto = m.alerts.iter().map(|a| a.seq).max().unwrap();
    let cmds = update(&mut m, key('a'));
    assert_eq!(
        cmds,
        vec![UiCommand::AckAlerts {
            upto_seq: upto,
            count: n
        }]
    );
    // Until the acknowledgement is journaled, nothing changes on screen.
    assert!(head(&m).contains(&format!("▲ {n} alert")));
    let seq = m.journal.last().unwrap().seq + 1;
    let mut chain = demo::Chain::new("x");
    let mut r = chain.record(
        now(),
        lifeline::timeline::detect::ALERT_ACK,
        None,
        None,
        None,
        None,
        "operator acknowledged",
        serde_json::json!({ "upto_seq": upto, "count": n }),
    );
    r.seq = seq;
    m.apply(UiEvent::Journal(r));
    let after = head(&m);
    assert!(!after.contains('▲'), "{after}");
    assert!(after.contains("acknowledged"), "{after}");
    // Nothing left: the key says so instead of journaling an empty ack.
    assert!(update(&mut m, key('a')).is_empty());
    // A new alert after the acknowledgement is red again.
    let mut a = chain.record(
        now(),
        lifeline::journal::kinds::ALERT,
        None,
        None,
        None,
        None,
        "'main': the database is MISSING (dropped or renamed)",
        serde_json::json!({ "database": "main", "table": "", "rule": "database-missing" }),
    );
    a.seq = seq + 1;
    m.apply(UiEvent::Journal(a));
    let again = head(&m);
    assert!(again.contains("▲ 1 alert"), "{again}");
}

/// Identity changes and re-created tables are damage too: they count as
/// alerts in the header, not only as journal lines.
#[test]
fn identity_changes_and_recreated_tables_raise_alerts() {
    let mut m = model();
    let n = m.unacked_alerts();
    let mut chain = demo::Chain::new("x");
    let base = m.journal.last().unwrap().seq;
    for (i, kind) in [
        lifeline::journal::kinds::IDENTITY_CHANGED,
        lifeline::journal::kinds::TABLE_RECREATED,
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = chain.record(
            now(),
            kind,
            None,
            None,
            None,
            None,
            "changed",
            serde_json::json!({ "database": "main", "table": "public.User", "rows": 0 }),
        );
        r.seq = base + 1 + i as u64;
        m.apply(UiEvent::Journal(r));
    }
    assert_eq!(m.unacked_alerts(), n + 2);
}

/// Counts older than two sample intervals are marked STALE (a 2 s interval:
/// stale after 4 s, not after the console's 30 s default).
#[test]
fn stale_within_two_sample_intervals() {
    let mut m = model();
    let d = m.databases.iter_mut().find(|d| d.name == "main").unwrap();
    d.stale_after_s = 4;
    let sampled = d.last_sample.unwrap();
    m.apply(UiEvent::Tick(sampled + chrono::Duration::seconds(5)));
    let screen = text(render(&m, 160, 48).backend().buffer());
    let main = screen.lines().find(|l| l.contains("  main ")).unwrap();
    assert!(main.contains("STALE"), "{main}");
}

/// The stop plan of outage 1's host as the checklist shows it: prod's trio
/// ticked with the evidence that ties each to prod, staging's copy left
/// (another database), an unclear job, and a process outside the drill
/// dimmed and locked.
fn stop_plan() -> lifeline::tui::stop_plan::StopPlanView {
    use lifeline::tui::stop_plan::{PlanRow, StopPlanView};
    let row =
        |stop: bool, name: &str, why: &str, sel: Option<&str>, locked: Option<&str>| PlanRow {
            stop,
            name: name.into(),
            host: "prod".into(),
            kind: "process".into(),
            why: why.into(),
            selector: sel.map(str::to_string),
            locked: locked.map(str::to_string),
        };
    StopPlanView {
        step: "stop-writers".into(),
        database: Some("main".into()),
        rows: vec![
            row(
                true,
                "watchdog.sh",
                "starts a writer's script again (/opt/prod/watchdog.sh:3)",
                Some("pid:4101"),
                None,
            ),
            row(
                true,
                "restarter.sh",
                "starts a writer's script again (/opt/prod/restarter.sh:3)",
                Some("pid:4102"),
                None,
            ),
            row(
                true,
                "sync.sh",
                "writes to 'main': environment of pid 4103: PGDATABASE=TovPlay",
                Some("pid:4103"),
                None,
            ),
            row(
                false,
                "sync.sh",
                "writes to another database ('staging')",
                Some("pid:5103"),
                None,
            ),
            row(
                false,
                "job.sh",
                "target unclear: 2 processes match 'job\\.sh' and no evidence tells them apart",
                Some("pid:6001"),
                None,
            ),
            row(
                false,
                "db_realtime_sync.sh",
                "not part of this drill: pid 7001 runs outside the lab directory '/tmp/lab-a/' and is not in its pidfiles; never stopped",
                None,
                Some("not part of this drill: never stopped"),
            ),
        ],
    }
}

#[test]
fn stop_plan_checklist() {
    let mut m = model();
    m.apply(UiEvent::StopPlan(Some(stop_plan())));
    assert_eq!(
        m.ui.view,
        View::Runbook,
        "the plan pops up over the Runbook view"
    );
    // Untick restarter, tick the unclear job, leave the cursor on the locked row.
    let down = || Msg::Key(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
    update(&mut m, down());
    update(&mut m, key(' '));
    for _ in 0..3 {
        update(&mut m, down());
    }
    update(&mut m, key(' '));
    update(&mut m, down());
    snap("stop_plan_80x24", &m, 80, 24);
    // The locked (outside the drill) row is drawn dimmed.
    let t = render(&m, 80, 24);
    let buf = t.backend().buffer();
    let muted = m.theme.style(lifeline::tui::theme::Role::Muted).fg;
    let screen = text(buf);
    let y = screen
        .lines()
        .position(|l| l.contains("db_realtime_sync.sh on prod"))
        .expect("locked row on screen") as u16;
    let x = screen
        .lines()
        .nth(y as usize)
        .unwrap()
        .find("db_realtime")
        .unwrap();
    let x = screen.lines().nth(y as usize).unwrap()[..x].chars().count() as u16;
    assert_eq!(buf[(x, y)].fg, muted.unwrap(), "locked row not dimmed");
    // Enter asks before anything is sent.
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    snap("stop_plan_confirm_80x24", &m, 80, 24);
    // Put aside: the Runbook view says the step waits for it.
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE)),
    );
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
    );
    let screen = text(render(&m, 120, 40).backend().buffer());
    assert!(screen.contains("STOP PLAN WAITING"), "{screen}");
    assert!(!screen.contains("space tick/untick"), "{screen}");
}

#[test]
fn set_aside_services_are_dimmed_with_their_reason() {
    use lifeline::tui::model::{ServiceKind, ServiceState};
    let mut m = view(View::Services);
    let outside = "not part of this drill: pid 7001 runs outside the lab directory '/tmp/lab-a/' and is not in its pidfiles; never stopped";
    m.services[0].services.insert(
        0,
        ServiceState {
            name: "db_realtime_sync.sh".into(),
            kind: ServiceKind::Process,
            active: Some(true),
            state: "running (pid 7001)".into(),
            databases: vec!["main".into()],
            hazards: Vec::new(),
            stopped_by_runbook: false,
            set_aside: Some(outside.into()),
        },
    );
    snap("services_set_aside_80x24", &m, 80, 24);
    // A set-aside service's hazard is listed after the live ones, dimmed, with why.
    let mut o = m.clone();
    o.ui.view = View::Overview;
    o.services[0].services[0]
        .hazards
        .push(lifeline::tui::model::Hazard {
            kind: "dump-clean-restore".into(),
            what: "pg_dump --clean of 'local' piped into 'main'".into(),
            evidence: "/tmp/lab-a/db_realtime_sync.sh:14".into(),
        });
    let screen = text(render(&o, 120, 40).backend().buffer());
    let line = screen
        .lines()
        .find(|l| l.contains("db_realtime_sync.sh (process)"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        line.contains("(set aside: not part of this drill)"),
        "{line}"
    );
    let live = screen.find("tovplay-postgres").unwrap();
    assert!(
        screen.find("db_realtime_sync.sh (process)").unwrap() > live,
        "{screen}"
    );
    let t = render(&m, 80, 24);
    let buf = t.backend().buffer();
    let screen = text(buf);
    assert!(
        screen.contains("set aside: not part of this drill"),
        "{screen}"
    );
    let y = screen
        .lines()
        .position(|l| l.contains("db_realtime_sync.sh"))
        .unwrap();
    let line = screen.lines().nth(y).unwrap();
    let x = line[..line.find("db_realtime").unwrap()].chars().count() as u16;
    let muted = m.theme.style(lifeline::tui::theme::Role::Muted).fg.unwrap();
    assert_eq!(buf[(x, y as u16)].fg, muted, "set-aside service not dimmed");
}

/// Look-alike databases (issue 19): the databases panel lists each decoy
/// with what differs, and the header warns about the database acted on.
#[test]
fn look_alike_databases_are_listed_and_flagged_in_the_header() {
    let mut m = model();
    let acted = m.acting_on().map(|(d, _)| d.to_string()).unwrap();
    let d = m.databases.iter_mut().find(|d| d.name == acted).unwrap();
    d.lookalikes = lifeline::lookalike::find(["tovplay", "T\u{43e}vPlay"], &["TovPlay"]);
    d.lookalikes[0].sessions = Some(3);
    let screen = text(render(&m, 160, 48).backend().buffer());
    assert!(
        screen.contains("▲ LOOK-ALIKE on this server: 'tovplay' (case), 3 session(s)"),
        "{screen}"
    );
    assert!(
        screen.contains("▲ LOOK-ALIKE on this server: 'T<U+043E>vPlay' (confusable)"),
        "{screen}"
    );
    let head = screen.lines().next().unwrap();
    assert!(head.contains("▲ 2 look-alikes"), "{head}");
    // Without look-alikes, neither appears.
    let plain = text(render(&model(), 160, 48).backend().buffer());
    assert!(!plain.contains("LOOK-ALIKE") && !plain.contains("look-alike"));
}

/// `r` in the Runbook view (issue 19): on the failed step a finished run
/// stopped at, it asks to retry that step; elsewhere it says what it does.
#[test]
fn r_retries_the_failed_step_under_the_cursor() {
    use lifeline::tui::event::UiCommand;
    use lifeline::tui::model::StepState;
    let mut m = view(View::Runbook);
    let rb = m.runbook.as_mut().expect("the demo has a runbook");
    let n = rb.steps.len();
    assert!(n >= 3);
    for (i, s) in rb.steps.iter_mut().enumerate() {
        s.state = match i {
            0 | 1 => StepState::Done,
            2 => StepState::Failed,
            _ => StepState::Pending,
        };
    }
    let failed = rb.steps[2].id.clone();
    let name = rb.name.clone();
    // On a done step: nothing sent, the message says how.
    m.ui.cursor[View::Runbook.index()] = 1;
    assert!(update(&mut m, key('r')).is_empty());
    let msg = m.ui.message.clone().unwrap().0;
    assert!(msg.contains("r retries a failed step"), "{msg}");
    // On the failed step: a retry of that step.
    m.ui.cursor[View::Runbook.index()] = 2;
    assert_eq!(
        update(&mut m, key('r')),
        vec![UiCommand::Retry {
            runbook: name,
            step: failed
        }]
    );
    // While a step runs, nothing is retried.
    m.runbook.as_mut().unwrap().steps[n - 1].state = StepState::Running;
    assert!(update(&mut m, key('r')).is_empty());
}

#[test]
fn migration_history_popup() {
    use lifeline::tui::rows::{self, OvRow};
    let mut m = model();
    demo::migration_history(&mut m);
    // From the databases panel: `m` on a database row opens that one's.
    let names: Vec<String> = m.databases.iter().map(|d| d.name.clone()).collect();
    assert!(names.len() >= 2, "{names:?}");
    let other = names.iter().position(|n| n != "main").unwrap();
    let row = rows::overview(&m)
        .iter()
        .position(|r| *r == OvRow::Db(other))
        .unwrap();
    m.ui.cursor[View::Overview.index()] = row;
    update(&mut m, key('m'));
    assert_eq!(m.ui.selected_db.as_deref(), Some(names[other].as_str()));
    let t = text(render(&m, 160, 48).backend().buffer());
    assert!(
        t.contains(&format!("Migrations of '{}'", names[other])),
        "{t}"
    );
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
    );
    // `:migrations main` names it.
    update(&mut m, key(':'));
    for c in "migrations main".chars() {
        update(&mut m, key(c));
    }
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    snap("migrations_80x24", &m, 80, 24);
    snap("migrations_160x48", &m, 160, 48);
    let t = text(render(&m, 160, 48).backend().buffer());
    for want in [
        "Prisma: 'public._prisma_migrations', 22 migration(s) applied",
        "RE-APPLIED: 22 migrations applied within the same second at 2026-12-10 12:41:07 UTC",
        "2023-01-05 to 2023-11-11: the history was applied again",
        "2026-12-10 12:41:07  20230105120000_init",
        "20230812090000_audit\\x1b[31m_log",
    ] {
        assert!(t.contains(want), "{want}:\n{t}");
    }
    // A long history scrolls: the Alembic table is below the fold at 80x24.
    let small = text(render(&m, 80, 24).backend().buffer());
    assert!(!small.contains("4f2a9c1e7b3d"), "{small}");
    for _ in 0..30 {
        update(&mut m, key('j'));
    }
    let small = text(render(&m, 80, 24).backend().buffer());
    assert!(small.contains("4f2a9c1e7b3d"), "{small}");
    assert!(small.contains("Alembic keeps no time"), "{small}");
}
