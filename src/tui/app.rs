//! Key handling: `update(&mut Model, Msg) -> Vec<UiCommand>`, pure. A key
//! becomes an action through the key map, an action changes the UI state
//! and may emit commands for the engine. Never does I/O, never blocks.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::event::{ExportFormat, Msg, Scroll, UiCommand, UiEvent};
use super::keys::Action;
use super::model::{DetailTarget, Input, Model, Overlay, StepState, View, ZOOMS};
use super::plan;
use super::rows::{self, OvRow};
use super::strings;

/// Applies one message; returns the commands to send to the engine.
pub fn update(m: &mut Model, msg: Msg) -> Vec<UiCommand> {
    match msg {
        Msg::Ui(ev) => {
            // Paused: numbers stay still; questions, the journal and the
            // clock still arrive (a confirmation is never held back).
            let data = matches!(
                *ev,
                UiEvent::Sample(_)
                    | UiEvent::DatabaseUpdate(_)
                    | UiEvent::HostUpdate(_)
                    | UiEvent::ServicesUpdate(_)
            );
            if data && let Some(held) = &mut m.held {
                held.push(*ev);
                if held.len() > HELD_MAX {
                    resume(m);
                    say(m, strings::PAUSE_OVERFLOW, true);
                }
            } else {
                m.apply(*ev);
            }
            // Evidence that arrives while the list is open moves the cursor
            // to the suggestion too (until the operator moves it).
            if m.ui.view == View::Runbook {
                cursor_on_suggestion(m);
            }
            Vec::new()
        }
        Msg::Resize(w, h) => {
            m.ui.size = (w, h);
            Vec::new()
        }
        Msg::Scroll(dir) => {
            let step: isize = if dir == Scroll::Up { -3 } else { 3 };
            match &mut m.ui.overlay {
                Overlay::Help { scroll }
                | Overlay::Details { scroll, .. }
                | Overlay::Backups { scroll, .. }
                | Overlay::Migrations { scroll }
                | Overlay::Plan { scroll, .. } => {
                    *scroll = scroll.saturating_add_signed(step);
                }
                Overlay::None if m.ui.input.is_none() => move_cursor(m, step),
                _ => {}
            }
            Vec::new()
        }
        Msg::Paste(text) => {
            let clean: String = text.chars().filter(|c| !c.is_control()).collect();
            match (&mut m.ui.overlay, &mut m.ui.input) {
                (Overlay::Confirm { input, error }, _) => {
                    input.push_str(&clean);
                    *error = None;
                }
                (
                    Overlay::ChooseBackup {
                        reason,
                        typed,
                        error,
                        ..
                    },
                    _,
                ) => {
                    match typed {
                        Some(t) => t.push_str(&clean),
                        None => reason.push_str(&clean),
                    }
                    *error = None;
                }
                (Overlay::None, Some(Input::Command(s))) => s.push_str(&clean),
                (Overlay::None, Some(Input::Filter(s))) => {
                    s.push_str(&clean);
                    let f = s.clone();
                    set_filter(m, f);
                }
                _ => {}
            }
            Vec::new()
        }
        Msg::Key(k) => on_key(m, k),
    }
}

fn is_ctrl(k: &KeyEvent, c: char) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char(c)
}

fn on_key(m: &mut Model, k: KeyEvent) -> Vec<UiCommand> {
    m.ui.message = None;
    if m.ui.overlay != Overlay::None {
        return overlay_key(m, k);
    }
    if m.ui.input.is_some() {
        return input_key(m, k);
    }
    match m.keys.action(m.ui.view, &k) {
        Some(a) => action(m, a),
        None => Vec::new(),
    }
}

fn say(m: &mut Model, text: impl Into<String>, error: bool) {
    m.ui.message = Some((text.into(), error));
}

fn quit(m: &mut Model) -> Vec<UiCommand> {
    m.ui.quit = true;
    vec![UiCommand::Quit]
}

fn ask_quit(m: &mut Model) -> Vec<UiCommand> {
    if m.step_running() {
        m.ui.overlay = Overlay::Quit;
        Vec::new()
    } else {
        quit(m)
    }
}

fn page(m: &Model) -> isize {
    (m.ui.size.1 as isize - 8).max(3)
}

fn move_cursor(m: &mut Model, delta: isize) {
    let v = m.ui.view;
    let n = rows::len(m, v);
    if n == 0 {
        return;
    }
    let cur = rows::cursor(m, v);
    let next = cur.saturating_add_signed(delta).min(n - 1);
    set_cursor(m, v, next);
}

fn set_cursor(m: &mut Model, v: View, i: usize) {
    match v {
        View::Timeline => {
            let t = rows::tables(m);
            if let (Some(ti), Some(db)) = (t.get(i), rows::timeline_db(m))
                && let Some(s) = m.series_of(db)
            {
                let tab = &s.tables[*ti];
                m.ui.selected_table = Some((tab.name.clone(), tab.oid));
            }
        }
        View::Journal => {
            let n = rows::journal(m).len();
            m.ui.journal_follow = i + 1 >= n;
            m.ui.cursor[v.index()] = i;
        }
        View::Runbook => {
            m.ui.step_follow = false;
            if m.runbook.is_none() {
                m.ui.runbook_cursor_moved = true;
            }
            m.ui.cursor[v.index()] = i;
        }
        _ => m.ui.cursor[v.index()] = i,
    }
}

fn set_filter(m: &mut Model, f: String) {
    let v = m.ui.view;
    m.ui.filter[v.index()] = f;
    if v != View::Timeline && v != View::Journal {
        m.ui.cursor[v.index()] = 0;
    }
}

fn switch(m: &mut Model, v: View) {
    m.ui.view = v;
    if v == View::Runbook {
        cursor_on_suggestion(m);
    }
}

/// Places the runbook list's cursor on the suggested runbook until the
/// operator moves it.
fn cursor_on_suggestion(m: &mut Model) {
    if m.runbook.is_some() || m.ui.runbook_cursor_moved {
        return;
    }
    if let Some(s) = plan::suggest(m)
        && let Some(i) = m.runbooks.iter().position(|r| r.name == s.runbook)
    {
        m.ui.cursor[View::Runbook.index()] = i;
    }
}

/// Opens the plan of a runbook: asks the engine side for it (nothing runs)
/// and shows it; `s` in the plan starts the runbook.
fn preview_runbook(m: &mut Model, name: &str) -> Vec<UiCommand> {
    if !m.runbooks.is_empty() && !m.runbooks.iter().any(|r| r.name == name) {
        let known: Vec<&str> = m.runbooks.iter().map(|r| r.name.as_str()).collect();
        let text = strings::unknown_runbook(name, &known.join(", "));
        say(m, text, true);
        return Vec::new();
    }
    m.ui.view = View::Runbook;
    m.plan = None;
    m.ui.overlay = Overlay::Plan {
        runbook: name.to_string(),
        scroll: 0,
    };
    say(m, strings::plan_sent(name), false);
    vec![UiCommand::PreviewRunbook(name.to_string())]
}

/// Keys of the plan popup: scroll, `s` starts, Esc closes.
fn plan_key(
    m: &mut Model,
    k: KeyEvent,
    action: Option<Action>,
    runbook: String,
    scroll: usize,
) -> Vec<UiCommand> {
    let p = page(m) as usize;
    let keep = |m: &mut Model, scroll: usize| {
        m.ui.overlay = Overlay::Plan {
            runbook: runbook.clone(),
            scroll,
        }
    };
    let plain = !k
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    if k.code == KeyCode::Char('s') && plain {
        let ready = m
            .plan
            .as_ref()
            .filter(|p| p.runbook == runbook)
            .map(|p| p.refused.is_empty());
        return match ready {
            Some(true) => start_runbook(m, &runbook),
            Some(false) => {
                keep(m, scroll);
                say(m, strings::PLAN_HINT_REFUSED, true);
                Vec::new()
            }
            None => {
                keep(m, scroll);
                say(m, strings::PLAN_BUILDING, false);
                Vec::new()
            }
        };
    }
    match action {
        _ if k.code == KeyCode::Esc || is_ctrl(&k, 'c') => {}
        Some(Action::Back | Action::Quit) => {}
        Some(Action::ForceQuit) => return ask_quit(m),
        Some(Action::Down) => keep(m, scroll + 1),
        Some(Action::Up) => keep(m, scroll.saturating_sub(1)),
        Some(Action::PageDown) => keep(m, scroll + p),
        Some(Action::PageUp) => keep(m, scroll.saturating_sub(p)),
        Some(Action::Top) => keep(m, 0),
        Some(Action::Open) => {
            keep(m, scroll);
            say(m, strings::PLAN_START_NOW, false);
        }
        _ => keep(m, scroll),
    }
    Vec::new()
}

fn action(m: &mut Model, a: Action) -> Vec<UiCommand> {
    match a {
        Action::Help => m.ui.overlay = Overlay::Help { scroll: 0 },
        Action::Command => m.ui.input = Some(Input::Command(String::new())),
        Action::Filter => {
            let cur = m.ui.filter[m.ui.view.index()].clone();
            m.ui.input = Some(Input::Filter(cur));
        }
        Action::Quit | Action::ForceQuit => return ask_quit(m),
        Action::NextView => {
            let i = (m.ui.view.index() + 1) % View::ALL.len();
            switch(m, View::ALL[i]);
        }
        Action::PrevView => {
            let i = (m.ui.view.index() + View::ALL.len() - 1) % View::ALL.len();
            switch(m, View::ALL[i]);
        }
        Action::ViewOverview => switch(m, View::Overview),
        Action::ViewServices => switch(m, View::Services),
        Action::ViewTimeline => switch(m, View::Timeline),
        Action::ViewRunbook => switch(m, View::Runbook),
        Action::ViewJournal => switch(m, View::Journal),
        Action::Down => move_cursor(m, 1),
        Action::Up => move_cursor(m, -1),
        Action::PageDown => move_cursor(m, page(m)),
        Action::PageUp => move_cursor(m, -page(m)),
        Action::Top => {
            let v = m.ui.view;
            set_cursor(m, v, 0);
        }
        Action::Bottom => {
            let v = m.ui.view;
            let n = rows::len(m, v);
            set_cursor(m, v, n.saturating_sub(1));
            if v == View::Journal {
                m.ui.journal_follow = true;
            }
        }
        Action::Open => return open(m),
        Action::Back => {
            let v = m.ui.view.index();
            m.ui.filter[v].clear();
        }
        Action::NextDb => {
            let names: Vec<String> = if m.databases.is_empty() {
                m.series.iter().map(|(n, _)| n.clone()).collect()
            } else {
                m.databases.iter().map(|d| d.name.clone()).collect()
            };
            if names.is_empty() {
                return Vec::new();
            }
            let cur =
                m.ui.selected_db
                    .as_ref()
                    .and_then(|s| names.iter().position(|n| n == s));
            let next = cur.map(|i| (i + 1) % names.len()).unwrap_or(0);
            return select_db(m, &names[next]);
        }
        Action::Note => m.ui.input = Some(Input::Command("note ".into())),
        Action::Ack => {
            let open: Vec<u64> = m
                .alerts
                .iter()
                .filter(|a| !a.acked)
                .map(|a| a.seq)
                .collect();
            match open.iter().max() {
                Some(&upto_seq) => {
                    return vec![UiCommand::AckAlerts {
                        upto_seq,
                        count: open.len(),
                    }];
                }
                None => m.ui.message = Some((strings::NOTHING_TO_ACK.into(), false)),
            }
        }
        // At either end the zoom says so instead of stopping silently.
        Action::ZoomIn if m.ui.zoom == 0 => say(m, strings::zoom_limit(ZOOMS[0], true), false),
        Action::ZoomOut if m.ui.zoom + 1 >= ZOOMS.len() => {
            say(m, strings::zoom_limit(ZOOMS[ZOOMS.len() - 1], false), false)
        }
        Action::ZoomIn => m.ui.zoom = m.ui.zoom.saturating_sub(1),
        Action::ZoomOut => m.ui.zoom = (m.ui.zoom + 1).min(ZOOMS.len() - 1),
        Action::PanLeft | Action::PanRight => pan(m, a == Action::PanRight),
        Action::Abort => return ask_abort(m),
        Action::Retry => return ask_retry(m),
        Action::Sort => {
            let v = m.ui.view;
            let keys = strings::sort_keys(v);
            if keys.is_empty() {
                say(m, strings::SORT_FIXED, false);
            } else {
                let i = (m.ui.sort[v.index()] + 1) % keys.len();
                m.ui.sort[v.index()] = i;
                // The cursor stays on the list's first row (the order changed under it).
                if v != View::Timeline {
                    m.ui.cursor[v.index()] = 0;
                }
                let list = match v {
                    View::Overview => strings::DATABASES,
                    View::Timeline => strings::TABLES,
                    _ => strings::SERVICES_LIST,
                };
                say(m, strings::sort_set(list, keys[i]), false);
            }
        }
        Action::Migrations => return open_migrations(m),
        Action::Pause => {
            if m.held.is_some() {
                let n = resume(m);
                say(m, strings::resumed(n), false);
            } else {
                m.held = Some(Vec::new());
                say(m, strings::paused(0), false);
            }
        }
    }
    Vec::new()
}

/// Updates held while paused before the pause ends by itself.
const HELD_MAX: usize = 20_000;

/// Ends a pause: applies what was held, in order; returns how many.
fn resume(m: &mut Model) -> usize {
    let held = m.held.take().unwrap_or_default();
    let n = held.len();
    for ev in held {
        m.apply(ev);
    }
    n
}

fn pan(m: &mut Model, later: bool) {
    let span = ZOOMS[m.ui.zoom];
    let Some(s) = rows::timeline_db(m).and_then(|db| m.series_of(db)) else {
        return;
    };
    let (Some(first), Some(_)) = (s.times.first().copied(), s.times.last()) else {
        return;
    };
    let now = m.now.timestamp();
    let end = m.ui.pan_end.unwrap_or(now);
    let step = (span / 4).max(1);
    if later {
        let e = end + step;
        m.ui.pan_end = (e < now).then_some(e);
    } else {
        m.ui.pan_end = Some((end - step).max(first + step.min(span)));
    }
}

/// `r` on a failed step of a run that is over, every step before it done
/// or skipped: asks the engine to run it again (it checks once more).
fn ask_retry(m: &mut Model) -> Vec<UiCommand> {
    if m.header.readonly {
        say(m, strings::READONLY_REFUSED, true);
        return Vec::new();
    }
    // A failed current step is retried while the cursor follows it (the
    // Output shows its first error and offers `r`); else the cursor's step.
    let followed = m
        .runbook
        .as_ref()
        .and_then(|r| {
            r.current.filter(|c| {
                r.steps
                    .get(*c)
                    .is_some_and(|s| s.state == StepState::Failed)
            })
        })
        .filter(|_| m.ui.step_follow);
    let i = followed.unwrap_or(m.ui.cursor[View::Runbook.index()]);
    let Some(r) = m.runbook.as_ref() else {
        say(m, strings::RETRY_WHAT, true);
        return Vec::new();
    };
    let over = !r.steps.iter().any(|s| s.state == StepState::Running);
    let before_done = r
        .steps
        .iter()
        .take(i)
        .all(|s| matches!(s.state, StepState::Done | StepState::Skipped));
    match r.steps.get(i) {
        Some(s) if s.state == StepState::Failed && over && before_done => {
            vec![UiCommand::Retry {
                runbook: r.name.clone(),
                step: s.id.clone(),
            }]
        }
        _ => {
            say(m, strings::RETRY_WHAT, true);
            Vec::new()
        }
    }
}

fn ask_abort(m: &mut Model) -> Vec<UiCommand> {
    if m.header.readonly {
        say(m, strings::READONLY_REFUSED, true);
        return Vec::new();
    }
    let active = m.runbook.as_ref().is_some_and(|r| {
        r.steps
            .iter()
            .any(|s| matches!(s.state, StepState::Running | StepState::Pending))
    });
    if active {
        m.ui.overlay = Overlay::Abort;
    } else {
        say(m, strings::NOTHING_TO_ABORT, true);
    }
    Vec::new()
}

/// The migration history popup of the selected database; on a database
/// row of the Overview, of that database (selected first).
fn open_migrations(m: &mut Model) -> Vec<UiCommand> {
    let mut cmds = Vec::new();
    if m.ui.view == View::Overview {
        let cur = m.ui.cursor[View::Overview.index()];
        if let Some(OvRow::Db(i)) = rows::overview(m).get(cur).copied() {
            let name = m.databases[i].name.clone();
            cmds = select_db(m, &name);
        }
    }
    m.ui.overlay = Overlay::Migrations { scroll: 0 };
    cmds
}

fn select_db(m: &mut Model, name: &str) -> Vec<UiCommand> {
    let known: Vec<&str> = if m.databases.is_empty() {
        m.series.iter().map(|(n, _)| n.as_str()).collect()
    } else {
        m.databases.iter().map(|d| d.name.as_str()).collect()
    };
    if !known.contains(&name) {
        let text = strings::unknown_db(name, &known.join(", "));
        say(m, text, true);
        return Vec::new();
    }
    if m.ui.selected_db.as_deref() != Some(name) {
        m.ui.selected_table = None;
        m.ui.pan_end = None;
    }
    m.ui.selected_db = Some(name.to_string());
    say(m, strings::db_selected(name), false);
    vec![UiCommand::SelectDb(name.to_string())]
}

fn start_runbook(m: &mut Model, name: &str) -> Vec<UiCommand> {
    if m.header.readonly {
        say(m, strings::READONLY_REFUSED, true);
        return Vec::new();
    }
    if !m.runbooks.is_empty() && !m.runbooks.iter().any(|r| r.name == name) {
        let known: Vec<&str> = m.runbooks.iter().map(|r| r.name.as_str()).collect();
        let text = strings::unknown_runbook(name, &known.join(", "));
        say(m, text, true);
        return Vec::new();
    }
    m.ui.view = View::Runbook;
    say(m, strings::runbook_sent(name), false);
    vec![UiCommand::StartRunbook(name.to_string())]
}

fn open(m: &mut Model) -> Vec<UiCommand> {
    let v = m.ui.view;
    let cur = rows::cursor(m, v);
    match v {
        View::Overview => match rows::overview(m).get(cur).copied() {
            Some(OvRow::Hazard(hi, si, _)) => {
                let target = rows::services(m)
                    .iter()
                    .position(|(h, s)| *h == hi && *s == si);
                m.ui.view = View::Services;
                if let Some(t) = target {
                    m.ui.cursor[View::Services.index()] = t;
                }
            }
            Some(OvRow::Host(i)) => {
                m.ui.overlay = Overlay::Details {
                    target: DetailTarget::Host(m.hosts[i].name.clone()),
                    scroll: 0,
                }
            }
            Some(OvRow::Db(i)) => {
                let name = m.databases[i].name.clone();
                m.ui.view = View::Timeline;
                return select_db(m, &name);
            }
            None => {}
        },
        View::Services => {
            if let Some((hi, si)) = rows::services(m).get(cur).copied() {
                let hs = &m.services[hi];
                m.ui.overlay = Overlay::Details {
                    target: DetailTarget::Service {
                        host: hs.host.clone(),
                        name: hs.services[si].name.clone(),
                    },
                    scroll: 0,
                };
            }
        }
        View::Timeline => {}
        View::Runbook => {
            if m.stop_plan.is_some() {
                super::stop_plan::reopen(m);
            } else if m.pending.is_some() {
                m.ui.dismissed_confirm = None;
                m.ui.overlay = Overlay::Confirm {
                    input: String::new(),
                    error: None,
                };
            } else if let Some(r) = &m.runbook {
                if let Some(s) = r.steps.get(cur) {
                    // A finished pick opens the backup panel.
                    if s.action == "pick-backup" && s.state == StepState::Done {
                        m.ui.overlay = Overlay::Backups {
                            scroll: 0,
                            cursor: 0,
                        };
                        return Vec::new();
                    }
                    m.ui.overlay = Overlay::Details {
                        target: DetailTarget::Step(s.id.clone()),
                        scroll: 0,
                    };
                }
            } else if let Some(name) = m.runbooks.get(cur).map(|r| r.name.clone()) {
                return preview_runbook(m, &name);
            }
        }
        View::Journal => {
            if let Some(i) = rows::journal(m).get(cur).copied() {
                m.ui.overlay = Overlay::Details {
                    target: DetailTarget::Record(m.journal[i].seq),
                    scroll: 0,
                };
            }
        }
    }
    Vec::new()
}

fn input_key(m: &mut Model, k: KeyEvent) -> Vec<UiCommand> {
    let Some(input) = m.ui.input.take() else {
        return Vec::new();
    };
    let plain = !k
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    match input {
        Input::Command(mut s) => match k.code {
            KeyCode::Enter => return run_command(m, s.trim()),
            KeyCode::Esc => {}
            _ if is_ctrl(&k, 'c') => {}
            _ if is_ctrl(&k, 'u') => m.ui.input = Some(Input::Command(String::new())),
            KeyCode::Backspace => {
                if s.pop().is_some() {
                    m.ui.input = Some(Input::Command(s));
                }
            }
            KeyCode::Char(c) if plain => {
                s.push(c);
                m.ui.input = Some(Input::Command(s));
            }
            _ => m.ui.input = Some(Input::Command(s)),
        },
        Input::Filter(mut s) => match k.code {
            KeyCode::Enter => {}
            KeyCode::Esc => set_filter(m, String::new()),
            _ if is_ctrl(&k, 'c') => set_filter(m, String::new()),
            _ if is_ctrl(&k, 'u') => {
                set_filter(m, String::new());
                m.ui.input = Some(Input::Filter(String::new()));
            }
            KeyCode::Backspace => {
                s.pop();
                set_filter(m, s.clone());
                m.ui.input = Some(Input::Filter(s));
            }
            KeyCode::Char(c) if plain => {
                s.push(c);
                set_filter(m, s.clone());
                m.ui.input = Some(Input::Filter(s));
            }
            _ => m.ui.input = Some(Input::Filter(s)),
        },
    }
    Vec::new()
}

/// Runs a `:` command line (without the colon).
pub fn run_command(m: &mut Model, line: &str) -> Vec<UiCommand> {
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    match word {
        "" => Vec::new(),
        "q" | "quit" => ask_quit(m),
        "q!" | "quit!" => quit(m),
        "runbook" | "rb" if rest.is_empty() => {
            m.ui.view = View::Runbook;
            Vec::new()
        }
        "runbook" | "rb" => start_runbook(m, rest),
        "plan" if rest.is_empty() => match plan::suggest(m) {
            Some(s) => preview_runbook(m, &s.runbook),
            None => {
                m.ui.view = View::Runbook;
                Vec::new()
            }
        },
        "plan" => preview_runbook(m, rest),
        "backups" => {
            m.ui.overlay = Overlay::Backups {
                scroll: 0,
                cursor: 0,
            };
            Vec::new()
        }
        "migrations" | "mig" if rest.is_empty() => open_migrations(m),
        "migrations" | "mig" => {
            let cmds = select_db(m, rest);
            if m.ui.selected_db.as_deref() == Some(rest) {
                m.ui.overlay = Overlay::Migrations { scroll: 0 };
            }
            cmds
        }
        "db" if rest.is_empty() => {
            say(m, strings::DB_REQUIRED, true);
            Vec::new()
        }
        "db" => select_db(m, rest),
        "export" => match ExportFormat::parse(rest) {
            Some(f) => {
                say(m, strings::export_sent(rest), false);
                vec![UiCommand::Export(f)]
            }
            None => {
                say(m, strings::bad_export(rest), true);
                Vec::new()
            }
        },
        "note" if rest.is_empty() => {
            say(m, strings::NOTE_EMPTY, true);
            Vec::new()
        }
        "note" => {
            say(m, strings::note_sent(rest), false);
            vec![UiCommand::Note(rest.to_string())]
        }
        "abort" => ask_abort(m),
        "pitr-target" if m.header.readonly => {
            say(m, strings::READONLY_REFUSED, true);
            Vec::new()
        }
        "pitr-target" => {
            say(m, strings::pitr_target_sent(rest), false);
            vec![UiCommand::PitrTarget(rest.to_string())]
        }
        "path" if m.header.readonly => {
            say(m, strings::READONLY_REFUSED, true);
            Vec::new()
        }
        "path" => match rest.trim() {
            p @ ("dump" | "pitr" | "auto") => {
                say(m, strings::path_sent(p), false);
                vec![UiCommand::Path(p.to_string())]
            }
            _ => {
                say(m, strings::PATH_USAGE, true);
                Vec::new()
            }
        },
        "frozen" => resolve_frozen(m, rest),
        "help" => {
            m.ui.overlay = Overlay::Help { scroll: 0 };
            Vec::new()
        }
        "overview" => {
            switch(m, View::Overview);
            Vec::new()
        }
        "services" => {
            switch(m, View::Services);
            Vec::new()
        }
        "timeline" => {
            switch(m, View::Timeline);
            Vec::new()
        }
        "journal" => {
            switch(m, View::Journal);
            Vec::new()
        }
        other => {
            say(m, strings::unknown_command(other), true);
            Vec::new()
        }
    }
}

/// `:frozen continue|end`: pids an earlier run of this incident left frozen.
fn resolve_frozen(m: &mut Model, how: &str) -> Vec<UiCommand> {
    if m.header.readonly {
        say(m, strings::READONLY_REFUSED, true);
        return Vec::new();
    }
    let end = match how {
        "continue" | "cont" => false,
        "end" => true,
        _ => {
            say(m, strings::frozen_usage(how), true);
            return Vec::new();
        }
    };
    if m.header.frozen.is_empty() {
        say(m, strings::NOTHING_FROZEN, true);
        return Vec::new();
    }
    say(m, strings::frozen_sent(end), false);
    vec![UiCommand::ResolveFrozen { end }]
}

fn overlay_key(m: &mut Model, k: KeyEvent) -> Vec<UiCommand> {
    let action = m.keys.action(m.ui.view, &k);
    let overlay = std::mem::take(&mut m.ui.overlay);
    match overlay {
        Overlay::None => {}
        Overlay::Backups { scroll, cursor } => return backups_key(m, k, action, scroll, cursor),
        Overlay::ChooseBackup { .. } => return choose_key(m, k, overlay),
        Overlay::Help { scroll }
        | Overlay::Details { scroll, .. }
        | Overlay::Migrations { scroll }
            if matches!(
                action,
                Some(Action::Down | Action::Up | Action::PageDown | Action::PageUp | Action::Top)
            ) =>
        {
            let p = page(m) as usize;
            let s = match action {
                Some(Action::Down) => scroll + 1,
                Some(Action::Up) => scroll.saturating_sub(1),
                Some(Action::PageDown) => scroll + p,
                Some(Action::PageUp) => scroll.saturating_sub(p),
                _ => 0,
            };
            m.ui.overlay = match overlay {
                Overlay::Details { target, .. } => Overlay::Details { target, scroll: s },
                Overlay::Migrations { .. } => Overlay::Migrations { scroll: s },
                _ => Overlay::Help { scroll: s },
            };
        }
        Overlay::Help { .. } | Overlay::Details { .. } | Overlay::Migrations { .. }
            if k.code == KeyCode::Esc
                || matches!(
                    action,
                    Some(Action::Back | Action::Help | Action::Quit | Action::Open)
                ) => {}
        Overlay::Help { .. } | Overlay::Details { .. } | Overlay::Migrations { .. }
            if action == Some(Action::ForceQuit) =>
        {
            return ask_quit(m);
        }
        Overlay::Help { .. } | Overlay::Details { .. } | Overlay::Migrations { .. } => {
            m.ui.overlay = overlay
        }
        Overlay::Quit => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => return quit(m),
            _ if is_ctrl(&k, 'c') => return quit(m),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {}
            _ => m.ui.overlay = Overlay::Quit,
        },
        Overlay::Abort => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => return vec![UiCommand::Abort],
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {}
            _ if is_ctrl(&k, 'c') => {}
            _ => m.ui.overlay = Overlay::Abort,
        },
        Overlay::Confirm { input, error } => return confirm_key(m, k, input, error),
        Overlay::StopPlan => {
            m.ui.overlay = Overlay::StopPlan;
            return super::stop_plan::key(m, k);
        }

        Overlay::Plan { runbook, scroll } => return plan_key(m, k, action, runbook, scroll),
    }
    Vec::new()
}

/// Keys of the backup panel: j/k move the cursor between candidates,
/// pgup/pgdn scroll, `c` chooses the cursor's candidate for the restore
/// waiting for its confirmation, Esc closes.
fn backups_key(
    m: &mut Model,
    k: KeyEvent,
    action: Option<Action>,
    scroll: usize,
    cursor: usize,
) -> Vec<UiCommand> {
    let n = super::view::pick_candidates(m);
    let p = page(m) as usize;
    let plain = !k
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let keep = |m: &mut Model, scroll: usize, cursor: usize| {
        m.ui.overlay = Overlay::Backups {
            scroll,
            cursor: cursor.min(n.saturating_sub(1)),
        }
    };
    if k.code == KeyCode::Char('c') && plain {
        keep(m, scroll, cursor);
        return choose_backup(m, cursor);
    }
    if action == Some(Action::Sort) {
        let keys = strings::SORT_BACKUPS;
        m.ui.backup_sort = (m.ui.backup_sort + 1) % keys.len();
        keep(m, 0, 0);
        say(
            m,
            strings::sort_set(strings::BACKUPS_LIST, keys[m.ui.backup_sort]),
            false,
        );
        return Vec::new();
    }
    match action {
        _ if k.code == KeyCode::Esc => {}
        Some(Action::Back | Action::Help | Action::Quit | Action::Open) => {}
        Some(Action::ForceQuit) => return ask_quit(m),
        Some(Action::Down) => keep(m, 0, cursor + 1),
        Some(Action::Up) => keep(m, 0, cursor.saturating_sub(1)),
        Some(Action::PageDown) => keep(m, scroll + p, cursor),
        Some(Action::PageUp) => keep(m, scroll.saturating_sub(p), cursor),
        Some(Action::Top) => keep(m, 0, 0),
        Some(Action::Bottom) => keep(m, 0, n.saturating_sub(1)),
        _ => keep(m, scroll, cursor),
    }
    Vec::new()
}

/// `c` in the backup panel: the cursor's candidate, when a restore of
/// that pick waits for its confirmation and it is eligible, opens the
/// choice (reason, then the name typed for a suspect one).
fn choose_backup(m: &mut Model, cursor: usize) -> Vec<UiCommand> {
    if m.header.readonly {
        say(m, strings::READONLY_REFUSED, true);
        return Vec::new();
    }
    let Some((name, excluded, pick_step)) = super::view::pick_candidate(m, cursor) else {
        return Vec::new();
    };
    let Some((step, stake)) = m
        .pending
        .as_ref()
        .and_then(|p| p.backup.clone().map(|b| (p.step.clone(), b)))
    else {
        say(m, strings::CHOOSE_WHEN, true);
        return Vec::new();
    };
    if stake.pick_step != pick_step {
        say(m, strings::CHOOSE_STALE, true);
        return Vec::new();
    }
    if let Some(why) = excluded {
        say(m, strings::choose_not_eligible(&name, &why), true);
        return Vec::new();
    }
    let Some(e) = stake.eligible.iter().find(|e| e.name == name) else {
        say(
            m,
            strings::choose_not_eligible(&name, "not in the pick's eligible list"),
            true,
        );
        return Vec::new();
    };
    if name == stake.name {
        say(m, strings::choose_already(&name), false);
        return Vec::new();
    }
    m.ui.overlay = Overlay::ChooseBackup {
        step,
        name,
        suspect: e.suspect.clone(),
        reason: String::new(),
        typed: None,
        error: None,
        cursor,
    };
    Vec::new()
}

/// Keys of the choice popup: type the reason, Enter; a suspect candidate
/// then wants its name typed, Enter sends; Esc goes back to the panel.
fn choose_key(m: &mut Model, k: KeyEvent, overlay: Overlay) -> Vec<UiCommand> {
    let Overlay::ChooseBackup {
        step,
        name,
        suspect,
        mut reason,
        mut typed,
        mut error,
        cursor,
    } = overlay
    else {
        return Vec::new();
    };
    if k.code == KeyCode::Esc || is_ctrl(&k, 'c') {
        m.ui.overlay = Overlay::Backups { scroll: 0, cursor };
        return Vec::new();
    }
    let plain = !k
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    match k.code {
        KeyCode::Enter if reason.trim().is_empty() => {
            error = Some(strings::CHOOSE_REASON_EMPTY.to_string());
        }
        KeyCode::Enter if suspect.is_some() && typed.is_none() => {
            typed = Some(String::new());
            error = None;
        }
        KeyCode::Enter => {
            let t = typed.as_deref().map(str::trim);
            if suspect.is_some() && t != Some(name.as_str()) {
                error = Some(strings::choose_mismatch(&name, t.unwrap_or("")));
                typed = Some(String::new());
            } else {
                if m.header.readonly {
                    say(m, strings::READONLY_REFUSED, true);
                    return Vec::new();
                }
                say(m, strings::choose_sent(&name), false);
                return vec![UiCommand::ChooseBackup {
                    step,
                    name,
                    reason: reason.trim().to_string(),
                    typed: typed.map(|t| t.trim().to_string()),
                }];
            }
        }
        _ if is_ctrl(&k, 'u') => match &mut typed {
            Some(t) => t.clear(),
            None => reason.clear(),
        },
        KeyCode::Backspace => {
            match &mut typed {
                Some(t) => t.pop(),
                None => reason.pop(),
            };
        }
        KeyCode::Char(c) if plain => {
            match &mut typed {
                Some(t) => t.push(c),
                None => reason.push(c),
            }
            error = None;
        }
        _ => {}
    }
    m.ui.overlay = Overlay::ChooseBackup {
        step,
        name,
        suspect,
        reason,
        typed,
        error,
        cursor,
    };
    Vec::new()
}

fn put_aside(m: &mut Model) {
    m.ui.dismissed_confirm = m.pending.as_ref().map(|p| p.step.clone());
    say(m, strings::CONFIRM_PUT_ASIDE, false);
}

fn confirm_key(
    m: &mut Model,
    k: KeyEvent,
    mut input: String,
    error: Option<String>,
) -> Vec<UiCommand> {
    let Some(p) = m.pending.clone() else {
        return Vec::new();
    };
    if k.code == KeyCode::Esc || is_ctrl(&k, 'c') {
        put_aside(m);
        return Vec::new();
    }
    let plain = !k
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    let Some(expect) = p.expect.clone() else {
        // A yes/no question.
        match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                return confirm(m, p.step, "yes".into());
            }
            KeyCode::Char('n') | KeyCode::Char('N') => put_aside(m),
            _ => m.ui.overlay = Overlay::Confirm { input, error },
        }
        return Vec::new();
    };
    let mut error = error;
    match k.code {
        KeyCode::Enter => {
            if input == expect || p.also.contains(&input) {
                return confirm(m, p.step, input);
            }
            error = Some(strings::confirm_mismatch(&expect, &input));
            input.clear();
        }
        _ if is_ctrl(&k, 'u') => input.clear(),
        KeyCode::Backspace => {
            input.pop();
        }
        KeyCode::Char(c) if plain => {
            input.push(c);
            error = None;
        }
        _ => {}
    }
    m.ui.overlay = Overlay::Confirm { input, error };
    Vec::new()
}

fn confirm(m: &mut Model, step: String, typed: String) -> Vec<UiCommand> {
    if m.header.readonly {
        say(m, strings::READONLY_REFUSED, true);
        return Vec::new();
    }
    // Answered: do not pop up again while the engine catches up.
    m.ui.dismissed_confirm = Some(step.clone());
    say(m, strings::CONFIRMED_SENT, false);
    vec![UiCommand::Confirm { step, typed }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::demo;
    use crate::tui::event::UiEvent;
    use crate::tui::model::{PendingConfirm, View};
    use chrono::{TimeZone, Utc};

    fn model() -> Model {
        demo::model(Utc.with_ymd_and_hms(2026, 12, 10, 12, 56, 30).unwrap())
    }
    fn key(c: char) -> Msg {
        let mods = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        Msg::Key(KeyEvent::new(KeyCode::Char(c), mods))
    }
    fn code(c: KeyCode) -> Msg {
        Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }
    fn ctrl(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }
    fn typed(m: &mut Model, s: &str) -> Vec<UiCommand> {
        let mut out = Vec::new();
        for c in s.chars() {
            out.extend(update(m, key(c)));
        }
        out
    }
    /// Types `:line` and Enter.
    fn command(m: &mut Model, line: &str) -> Vec<UiCommand> {
        let mut out = update(m, key(':'));
        out.extend(typed(m, line));
        out.extend(update(m, code(KeyCode::Enter)));
        out
    }
    fn no_step_running(m: &mut Model) {
        m.apply(UiEvent::StepUpdate {
            id: "restore".into(),
            state: StepState::Done,
            summary: None,
        });
    }

    #[test]
    fn number_keys_and_tab_switch_views() {
        let mut m = model();
        for (c, v) in [
            ('2', View::Services),
            ('3', View::Timeline),
            ('4', View::Runbook),
            ('5', View::Journal),
            ('1', View::Overview),
        ] {
            assert!(update(&mut m, key(c)).is_empty());
            assert_eq!(m.ui.view, v);
        }
        update(&mut m, code(KeyCode::Tab));
        assert_eq!(m.ui.view, View::Services);
        update(
            &mut m,
            Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
        );
        update(
            &mut m,
            Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
        );
        assert_eq!(m.ui.view, View::Journal);
    }

    #[test]
    fn cursor_moves_and_clamps() {
        let mut m = model();
        let n = rows::overview(&m).len();
        update(&mut m, key('k'));
        assert_eq!(rows::cursor(&m, View::Overview), 0);
        update(&mut m, key('j'));
        update(&mut m, code(KeyCode::Down));
        assert_eq!(rows::cursor(&m, View::Overview), 2);
        update(&mut m, key('G'));
        assert_eq!(rows::cursor(&m, View::Overview), n - 1);
        update(&mut m, key('j'));
        assert_eq!(rows::cursor(&m, View::Overview), n - 1);
        update(&mut m, key('g'));
        assert_eq!(rows::cursor(&m, View::Overview), 0);
        update(&mut m, Msg::Scroll(Scroll::Down));
        assert_eq!(rows::cursor(&m, View::Overview), 3);
    }

    #[test]
    fn journal_follows_until_moved_up() {
        let mut m = model();
        update(&mut m, key('5'));
        let last = m.journal.len() - 1;
        assert_eq!(rows::cursor(&m, View::Journal), last);
        update(&mut m, key('k'));
        assert_eq!(rows::cursor(&m, View::Journal), last - 1);
        // A new record does not move a cursor the operator placed.
        let mut c = demo::Chain::new("x");
        let mut r = c.record(
            m.now,
            "note",
            None,
            None,
            None,
            None,
            "x",
            serde_json::Value::Null,
        );
        r.seq = 100;
        m.apply(UiEvent::Journal(r.clone()));
        assert_eq!(rows::cursor(&m, View::Journal), last - 1);
        update(&mut m, key('G'));
        r.seq = 101;
        m.apply(UiEvent::Journal(r));
        assert_eq!(rows::cursor(&m, View::Journal), last + 2);
    }

    #[test]
    fn commands_from_the_command_line() {
        let mut m = model();
        assert_eq!(
            command(&mut m, "runbook wrong-database"),
            vec![UiCommand::StartRunbook("wrong-database".into())]
        );
        assert_eq!(m.ui.view, View::Runbook);
        assert!(command(&mut m, "runbook nope").is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("'nope'"));
        assert_eq!(
            command(&mut m, "db local"),
            vec![UiCommand::SelectDb("local".into())]
        );
        assert_eq!(m.ui.selected_db.as_deref(), Some("local"));
        assert!(
            command(&mut m, "db Main").is_empty(),
            "names are case-sensitive"
        );
        assert!(m.ui.message.as_ref().unwrap().1);
        assert_eq!(
            command(&mut m, "export md"),
            vec![UiCommand::Export(ExportFormat::Markdown)]
        );
        assert!(command(&mut m, "export pdf").is_empty());
        assert_eq!(
            command(&mut m, "note the dashboard lies"),
            vec![UiCommand::Note("the dashboard lies".into())]
        );
        assert!(command(&mut m, "note").is_empty());
        assert!(command(&mut m, "frobnicate").is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("'frobnicate'"));
        command(&mut m, "journal");
        assert_eq!(m.ui.view, View::Journal);
        command(&mut m, "help");
        assert_eq!(m.ui.overlay, Overlay::Help { scroll: 0 });
    }

    #[test]
    fn command_line_editing() {
        let mut m = model();
        update(&mut m, key(':'));
        typed(&mut m, "dbx");
        update(&mut m, code(KeyCode::Backspace));
        assert_eq!(m.ui.input, Some(Input::Command("db".into())));
        update(&mut m, ctrl('u'));
        assert_eq!(m.ui.input, Some(Input::Command(String::new())));
        update(&mut m, code(KeyCode::Esc));
        assert_eq!(m.ui.input, None);
        // Keys typed into the command line do not act ('q' does not quit).
        update(&mut m, key(':'));
        typed(&mut m, "q1");
        assert!(!m.ui.quit);
        assert_eq!(m.ui.view, View::Overview);
        update(&mut m, Msg::Paste("x\ny".into()));
        assert_eq!(m.ui.input, Some(Input::Command("q1xy".into())));
    }

    #[test]
    fn quit_asks_while_a_step_runs() {
        let mut m = model();
        assert!(m.step_running());
        assert!(update(&mut m, key('q')).is_empty());
        assert_eq!(m.ui.overlay, Overlay::Quit);
        update(&mut m, key('n'));
        assert_eq!(m.ui.overlay, Overlay::None);
        assert!(!m.ui.quit);
        update(&mut m, key('q'));
        assert_eq!(update(&mut m, key('y')), vec![UiCommand::Quit]);
        assert!(m.ui.quit);

        // Ctrl-C twice.
        let mut m = model();
        assert!(update(&mut m, ctrl('c')).is_empty());
        assert_eq!(update(&mut m, ctrl('c')), vec![UiCommand::Quit]);

        // :q asks too, :q! does not.
        let mut m = model();
        assert!(command(&mut m, "q").is_empty());
        assert_eq!(m.ui.overlay, Overlay::Quit);
        let mut m = model();
        assert_eq!(command(&mut m, "q!"), vec![UiCommand::Quit]);

        // Nothing running: q quits at once.
        let mut m = model();
        no_step_running(&mut m);
        assert_eq!(update(&mut m, key('q')), vec![UiCommand::Quit]);
    }

    fn with_swap_pending() -> Model {
        let mut m = model();
        m.apply(UiEvent::Confirm(Some(demo::swap_confirm())));
        m
    }

    #[test]
    fn confirm_dialog_wants_the_exact_database_name() {
        let mut m = with_swap_pending();
        assert!(matches!(m.ui.overlay, Overlay::Confirm { .. }), "pops up");
        // Wrong name, wrong case: refused, told why, input cleared.
        assert!(typed(&mut m, "tovplay").is_empty());
        assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
        match &m.ui.overlay {
            Overlay::Confirm { input, error } => {
                assert!(input.is_empty());
                let e = error.as_deref().unwrap();
                assert!(e.contains("'tovplay'") && e.contains("'TovPlay'"), "{e}");
            }
            o => panic!("{o:?}"),
        }
        // Keys that would act elsewhere are just text here.
        assert!(typed(&mut m, "TovPlaq").is_empty());
        update(&mut m, code(KeyCode::Backspace));
        assert!(typed(&mut m, "y").is_empty());
        assert!(!m.ui.quit);
        assert_eq!(
            update(&mut m, code(KeyCode::Enter)),
            vec![UiCommand::Confirm {
                step: "swap".into(),
                typed: "TovPlay".into()
            }]
        );
        assert_eq!(m.ui.overlay, Overlay::None);
        // The same pending confirmation, re-sent, does not pop up again.
        m.apply(UiEvent::Confirm(Some(demo::swap_confirm())));
        assert_eq!(m.ui.overlay, Overlay::None);
    }

    #[test]
    fn confirm_dialog_takes_the_phrases_the_engine_also_accepts() {
        let mut m = model();
        let mut p = demo::swap_confirm();
        p.step = "restore".into();
        p.also = vec!["TovPlay create role lifeline_restore".into()];
        m.apply(UiEvent::Confirm(Some(p)));
        assert!(typed(&mut m, "TovPlay create role other").is_empty());
        assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
        typed(&mut m, "TovPlay create role lifeline_restore");
        assert_eq!(
            update(&mut m, code(KeyCode::Enter)),
            vec![UiCommand::Confirm {
                step: "restore".into(),
                typed: "TovPlay create role lifeline_restore".into()
            }]
        );
    }

    #[test]
    fn confirm_put_aside_and_reopened() {
        let mut m = with_swap_pending();
        update(&mut m, code(KeyCode::Esc));
        assert_eq!(m.ui.overlay, Overlay::None);
        assert!(m.pending.is_some(), "the step keeps waiting");
        m.apply(UiEvent::Confirm(Some(demo::swap_confirm())));
        assert_eq!(m.ui.overlay, Overlay::None, "put aside stays aside");
        update(&mut m, key('4'));
        update(&mut m, code(KeyCode::Enter));
        assert!(matches!(m.ui.overlay, Overlay::Confirm { .. }));
        update(&mut m, Msg::Paste("TovPlay".into()));
        assert_eq!(update(&mut m, code(KeyCode::Enter)).len(), 1);
        // A different step asking later pops up again.
        m.apply(UiEvent::Confirm(None));
        m.apply(UiEvent::Confirm(Some(PendingConfirm {
            step: "start-services".into(),
            prompt: "Start tovplay-backend?".into(),
            expect: None,
            also: Vec::new(),
            database: None,
            changes: vec![],
            backup: None,
        })));
        assert!(matches!(m.ui.overlay, Overlay::Confirm { .. }));
        assert_eq!(
            update(&mut m, key('y')),
            vec![UiCommand::Confirm {
                step: "start-services".into(),
                typed: "yes".into()
            }]
        );
    }

    #[test]
    fn confirm_does_not_steal_the_command_line() {
        let mut m = model();
        update(&mut m, key(':'));
        m.apply(UiEvent::Confirm(Some(demo::swap_confirm())));
        assert_eq!(m.ui.overlay, Overlay::None);
        assert!(m.ui.input.is_some());
    }

    /// `:pitr-target` hands the value to the command side (which checks and
    /// journals it); a read-only console refuses it.
    #[test]
    fn path_is_sent_checked_and_refused_read_only() {
        let mut m = Model::default();
        assert_eq!(
            command(&mut m, "path dump"),
            vec![UiCommand::Path("dump".into())]
        );
        assert_eq!(
            command(&mut m, "path  auto "),
            vec![UiCommand::Path("auto".into())]
        );
        assert!(command(&mut m, "path restore").is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("Usage: :path"));
        m.header.readonly = true;
        assert!(command(&mut m, "path dump").is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("--readonly"));
    }

    #[test]
    fn pitr_target_is_sent_and_refused_read_only() {
        let mut m = Model::default();
        assert_eq!(
            command(&mut m, "pitr-target lsn:0/3000100"),
            vec![UiCommand::PitrTarget("lsn:0/3000100".into())]
        );
        assert!(m.ui.message.as_ref().unwrap().0.contains("lsn:0/3000100"));
        assert_eq!(
            command(&mut m, "pitr-target"),
            vec![UiCommand::PitrTarget(String::new())]
        );
        m.header.readonly = true;
        assert!(command(&mut m, "pitr-target lsn:0/3000100").is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("--readonly"));
    }

    #[test]
    fn readonly_refuses_actions() {
        let mut m = with_swap_pending();
        m.header.readonly = true;
        typed(&mut m, "TovPlay");
        assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("--readonly"));
        assert!(command(&mut m, "runbook rogue-sync").is_empty());
        update(&mut m, key('4'));
        assert!(update(&mut m, key('X')).is_empty());
        assert_eq!(m.ui.overlay, Overlay::None);
        // Notes and exports still work: they touch nothing.
        assert_eq!(command(&mut m, "note seen").len(), 1);
        assert_eq!(command(&mut m, "export json").len(), 1);
    }

    #[test]
    fn abort_asks_first() {
        let mut m = model();
        update(&mut m, key('4'));
        assert!(update(&mut m, key('X')).is_empty());
        assert_eq!(m.ui.overlay, Overlay::Abort);
        assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
        update(&mut m, key('X'));
        assert_eq!(update(&mut m, key('y')), vec![UiCommand::Abort]);
        // X does nothing outside the Runbook view.
        update(&mut m, key('1'));
        update(&mut m, key('X'));
        assert_eq!(m.ui.overlay, Overlay::None);
    }

    #[test]
    fn filter_and_details() {
        let mut m = model();
        update(&mut m, key('5'));
        update(&mut m, key('/'));
        typed(&mut m, "STOP-writers");
        let shown = rows::journal(&m);
        assert_eq!(
            shown.len(),
            7,
            "case-insensitive over kind, step, target, summary"
        );
        update(&mut m, code(KeyCode::Enter));
        assert_eq!(m.ui.input, None);
        assert_eq!(m.ui.filter[View::Journal.index()], "STOP-writers");
        update(&mut m, key('g'));
        update(&mut m, code(KeyCode::Enter));
        let first = m.journal[shown[0]].seq;
        assert_eq!(
            m.ui.overlay,
            Overlay::Details {
                target: DetailTarget::Record(first),
                scroll: 0
            }
        );
        update(&mut m, key('j'));
        assert!(matches!(m.ui.overlay, Overlay::Details { scroll: 1, .. }));
        update(&mut m, code(KeyCode::Esc));
        assert_eq!(m.ui.overlay, Overlay::None);
        // Esc clears the filter.
        update(&mut m, code(KeyCode::Esc));
        assert_eq!(rows::journal(&m).len(), m.journal.len());
        // Esc while typing a filter drops it.
        update(&mut m, key('/'));
        typed(&mut m, "zzz");
        assert!(rows::journal(&m).is_empty());
        update(&mut m, code(KeyCode::Esc));
        assert_eq!(rows::journal(&m).len(), m.journal.len());
    }

    #[test]
    fn overview_enter_goes_where_the_row_points() {
        let mut m = model();
        // First row: the live hazard (tovplay-postgres).
        update(&mut m, code(KeyCode::Enter));
        assert_eq!(m.ui.view, View::Services);
        let (hi, si) = rows::services(&m)[rows::cursor(&m, View::Services)];
        assert_eq!(m.services[hi].services[si].name, "tovplay-postgres");
        // A database row opens its Timeline.
        update(&mut m, key('1'));
        update(&mut m, key('G'));
        assert_eq!(
            update(&mut m, code(KeyCode::Enter)),
            vec![UiCommand::SelectDb("local".into())]
        );
        assert_eq!(m.ui.view, View::Timeline);
    }

    #[test]
    fn timeline_zoom_pan_and_table_selection() {
        let mut m = model();
        update(&mut m, key('3'));
        assert_eq!(m.ui.zoom, crate::tui::model::DEFAULT_ZOOM);
        update(&mut m, key('+'));
        assert_eq!(m.ui.zoom, 1);
        update(&mut m, key('-'));
        update(&mut m, key('-'));
        assert_eq!(m.ui.zoom, 3);
        update(&mut m, key('+'));
        update(&mut m, key('+'));
        // At the closest zoom '+' says so (it never stops silently).
        let z = m.ui.zoom;
        for _ in 0..10 {
            update(&mut m, key('+'));
        }
        assert_eq!(m.ui.zoom, 0);
        assert!(
            m.ui.message
                .as_ref()
                .unwrap()
                .0
                .contains("closest zoom: 5 min")
        );
        for _ in 0..20 {
            update(&mut m, key('-'));
        }
        assert!(
            m.ui.message
                .as_ref()
                .unwrap()
                .0
                .contains("widest zoom: 7 d")
        );
        m.ui.zoom = z;
        update(&mut m, key('h'));
        let end = m.ui.pan_end.unwrap();
        assert_eq!(end, m.now.timestamp() - ZOOMS[1] / 4);
        // Never past the first sample.
        for _ in 0..100 {
            update(&mut m, key('h'));
        }
        let first = m.series_of("main").unwrap().times[0];
        assert!(m.ui.pan_end.unwrap() > first);
        for _ in 0..100 {
            update(&mut m, key('l'));
        }
        assert_eq!(m.ui.pan_end, None, "back to following now");
        // j moves the chart to the next table (alerted tables first).
        let rows = rows::tables(&m);
        assert_eq!(m.ui.selected_table.as_ref().unwrap().0, "User");
        update(&mut m, key('j'));
        let s = m.series_of("main").unwrap();
        assert_eq!(
            m.ui.selected_table.as_ref().unwrap().0,
            s.tables[rows[1]].name
        );
        // d moves to the next database.
        assert_eq!(
            update(&mut m, key('d')),
            vec![UiCommand::SelectDb("local".into())]
        );
    }

    fn plan_of(name: &str, refused: bool) -> crate::tui::plan::PlanPreview {
        crate::tui::plan::PlanPreview {
            runbook: name.into(),
            title: "t".into(),
            refused: if refused { vec!["no".into()] } else { vec![] },
            ..Default::default()
        }
    }

    #[test]
    fn runbook_enter_opens_the_plan_and_s_starts_it() {
        let mut m = model();
        m.apply(UiEvent::RunbookUpdate(None));
        update(&mut m, key('4'));
        update(&mut m, key('j'));
        // Enter never starts: it asks for the plan and shows it.
        assert_eq!(
            update(&mut m, code(KeyCode::Enter)),
            vec![UiCommand::PreviewRunbook("wrong-database".into())]
        );
        assert_eq!(
            m.ui.overlay,
            Overlay::Plan {
                runbook: "wrong-database".into(),
                scroll: 0
            }
        );
        // A second Enter does not start it either; nor does s before the
        // plan is there to read.
        assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
        assert!(update(&mut m, key('s')).is_empty());
        assert!(matches!(m.ui.overlay, Overlay::Plan { .. }));
        // A plan of another runbook is not this one's.
        m.apply(UiEvent::Plan(Box::new(plan_of("rogue-sync", false))));
        assert!(update(&mut m, key('s')).is_empty());
        m.apply(UiEvent::Plan(Box::new(plan_of("wrong-database", false))));
        update(&mut m, key('j'));
        assert!(matches!(m.ui.overlay, Overlay::Plan { scroll: 1, .. }));
        assert_eq!(
            update(&mut m, key('s')),
            vec![UiCommand::StartRunbook("wrong-database".into())]
        );
        assert_eq!(m.ui.overlay, Overlay::None);

        // Esc closes the plan; nothing starts.
        let mut m = model();
        m.apply(UiEvent::RunbookUpdate(None));
        assert_eq!(command(&mut m, "plan wrong-database").len(), 1);
        m.apply(UiEvent::Plan(Box::new(plan_of("wrong-database", false))));
        assert!(update(&mut m, code(KeyCode::Esc)).is_empty());
        assert_eq!(m.ui.overlay, Overlay::None);
        assert!(update(&mut m, key('s')).is_empty());
        // A refused plan cannot be started.
        assert_eq!(command(&mut m, "plan wrong-database").len(), 1);
        m.apply(UiEvent::Plan(Box::new(plan_of("wrong-database", true))));
        assert!(update(&mut m, key('s')).is_empty());
        assert!(m.ui.message.as_ref().unwrap().1);
        // An unknown runbook gets no plan.
        update(&mut m, code(KeyCode::Esc));
        assert!(command(&mut m, "plan nope").is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("'nope'"));
    }

    #[test]
    fn p_pauses_the_numbers_but_never_a_question_or_the_journal() {
        let mut m = model();
        let rounds = |m: &Model| m.series_of("main").map_or(0, |s| s.times.len());
        let before = rounds(&m);
        let t = m.now + chrono::Duration::seconds(10);
        update(&mut m, key('p'));
        assert!(m.held.is_some());
        assert!(m.ui.message.as_ref().unwrap().0.starts_with("paused"));
        let mut s = demo::sample(t, t - chrono::Duration::seconds(600), false);
        s.database = "main".into();
        update(&mut m, Msg::Ui(Box::new(UiEvent::Sample(s))));
        assert_eq!(rounds(&m), before, "held while paused");
        // A question and a journal line are not held.
        m.ui.overlay = Overlay::None;
        update(
            &mut m,
            Msg::Ui(Box::new(UiEvent::Confirm(Some(demo::swap_confirm())))),
        );
        assert!(matches!(m.ui.overlay, Overlay::Confirm { .. }));
        update(&mut m, code(KeyCode::Esc));
        let n = m.journal.len();
        let mut c = demo::Chain::new("x");
        let mut r = c.record(
            m.now,
            "note",
            None,
            None,
            None,
            None,
            "x",
            serde_json::Value::Null,
        );
        r.seq = 10_000;
        update(&mut m, Msg::Ui(Box::new(UiEvent::Journal(r))));
        assert_eq!(m.journal.len(), n + 1);
        // p again applies what was held, in order.
        update(&mut m, key('p'));
        assert!(m.held.is_none());
        assert_eq!(rounds(&m), before + 1);
        assert!(
            m.ui.message
                .as_ref()
                .unwrap()
                .0
                .contains("1 held update(s)")
        );
    }

    #[test]
    fn enter_on_the_finished_pick_opens_the_backup_panel() {
        let mut m = model();
        update(&mut m, key('4'));
        let i = m
            .runbook
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .position(|s| s.action == "pick-backup")
            .unwrap();
        update(&mut m, key('g'));
        for _ in 0..i {
            update(&mut m, key('j'));
        }
        update(&mut m, code(KeyCode::Enter));
        assert_eq!(
            m.ui.overlay,
            Overlay::Backups {
                scroll: 0,
                cursor: 0
            }
        );
        // j moves the cursor to the next candidate (three in the demo's pick).
        update(&mut m, key('j'));
        update(&mut m, key('j'));
        update(&mut m, key('j'));
        assert_eq!(
            m.ui.overlay,
            Overlay::Backups {
                scroll: 0,
                cursor: 2
            }
        );
        update(&mut m, code(KeyCode::Esc));
        assert_eq!(m.ui.overlay, Overlay::None);
        // Another step still opens its details.
        update(&mut m, key('g'));
        update(&mut m, code(KeyCode::Enter));
        assert!(matches!(m.ui.overlay, Overlay::Details { .. }));
        update(&mut m, code(KeyCode::Esc));
        // :backups from anywhere.
        update(&mut m, key('1'));
        command(&mut m, "backups");
        assert_eq!(
            m.ui.overlay,
            Overlay::Backups {
                scroll: 0,
                cursor: 0
            }
        );
    }

    /// The panel over a pick with three eligible candidates and an excluded
    /// one, the cursor moved `down` times.
    fn panel_at(m: &mut Model, down: usize) {
        if matches!(m.ui.overlay, Overlay::Backups { .. }) {
            update(m, code(KeyCode::Esc));
        }
        command(m, "backups");
        for _ in 0..down {
            update(m, key('j'));
        }
    }

    #[test]
    fn c_in_the_backup_panel_chooses_another_candidate_with_a_reason() {
        let mut m = model();
        demo::add_choice_pick(&mut m, None);
        // No restore waits: nothing to choose for, said.
        panel_at(&mut m, 1);
        assert!(update(&mut m, key('c')).is_empty());
        assert_eq!(m.ui.message.as_ref().unwrap().0, strings::CHOOSE_WHEN);
        update(&mut m, code(KeyCode::Esc));
        // The restore waits for its confirmation, the preselection at stake.
        m.apply(UiEvent::Confirm(Some(demo::restore_confirm(
            &m,
            "tovplay_external_20261210_060000.sql",
            None,
        ))));
        assert!(matches!(m.ui.overlay, Overlay::Confirm { .. }));
        update(&mut m, code(KeyCode::Esc));
        // Order: the one at stake, then the eligible, then the excluded.
        panel_at(&mut m, 0);
        update(&mut m, key('c'));
        assert!(
            m.ui.message
                .as_ref()
                .unwrap()
                .0
                .contains("already the backup")
        );
        panel_at(&mut m, 3);
        update(&mut m, key('c'));
        let (msg, err) = m.ui.message.clone().unwrap();
        assert!(
            err && msg.contains("not eligible: taken after the incident"),
            "{msg}"
        );
        // The oldest (not suspect): a reason, then Enter sends the choice.
        panel_at(&mut m, 2);
        assert!(update(&mut m, key('c')).is_empty());
        assert!(matches!(m.ui.overlay, Overlay::ChooseBackup { .. }));
        assert!(
            update(&mut m, code(KeyCode::Enter)).is_empty(),
            "a reason first"
        );
        let out = typed(&mut m, "newer ones miss the import");
        assert!(out.is_empty());
        let out = update(&mut m, code(KeyCode::Enter));
        assert_eq!(
            out,
            vec![UiCommand::ChooseBackup {
                step: "restore".into(),
                name: "tovplay_external_20261208_073600.sql".into(),
                reason: "newer ones miss the import".into(),
                typed: None,
            }]
        );
        assert_eq!(m.ui.overlay, Overlay::None);
    }

    #[test]
    fn s_cycles_the_sort_key_of_each_list_and_says_it() {
        let mut m = model();
        // Services: within each host, hazards first, then by name, state, databases.
        update(&mut m, key('2'));
        let before = rows::services(&m);
        update(&mut m, key('s'));
        assert_eq!(m.ui.sort[View::Services.index()], 1);
        assert!(m.ui.message.as_ref().unwrap().0.contains("sorted by name"));
        let by_name = rows::services(&m);
        assert_eq!(before.len(), by_name.len());
        for w in by_name.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.0 == b.0 {
                assert!(
                    m.services[a.0].services[a.1].name <= m.services[b.0].services[b.1].name,
                    "{by_name:?}"
                );
            }
        }
        assert_ne!(
            before, by_name,
            "the demo's hazards-first order is not by name"
        );
        for _ in 0..3 {
            update(&mut m, key('s'));
        }
        assert_eq!(m.ui.sort[View::Services.index()], 0, "wraps to the default");
        assert_eq!(rows::services(&m), before);
        // Timeline tables: rows, most first.
        update(&mut m, key('3'));
        update(&mut m, key('s'));
        update(&mut m, key('s'));
        let db = rows::timeline_db(&m).unwrap().to_string();
        let s = m.series_of(&db).unwrap();
        let lasts: Vec<Option<i64>> = rows::tables(&m)
            .iter()
            .map(|i| s.tables[*i].last())
            .collect();
        assert!(lasts.windows(2).all(|w| w[0] >= w[1]), "{lasts:?}");
        // Overview: databases by name.
        update(&mut m, key('1'));
        update(&mut m, key('s'));
        assert!(
            m.ui.message
                .as_ref()
                .unwrap()
                .0
                .contains("Databases sorted by name")
        );
        // The Runbook keeps its order, said.
        update(&mut m, key('4'));
        update(&mut m, key('s'));
        assert_eq!(m.ui.message.as_ref().unwrap().0, strings::SORT_FIXED);
        // The backup panel: newest first, the cursor back on the first.
        demo::add_choice_pick(&mut m, None);
        panel_at(&mut m, 2);
        update(&mut m, key('s'));
        assert_eq!(m.ui.backup_sort, 1);
        assert_eq!(
            m.ui.overlay,
            Overlay::Backups {
                scroll: 0,
                cursor: 0
            }
        );
        let first = crate::tui::view::pick_candidate(&m, 0).unwrap().0;
        assert_eq!(first, "tovplay_external_20261210_124500.sql");
        update(&mut m, key('s'));
        let first = crate::tui::view::pick_candidate(&m, 0).unwrap().0;
        assert_eq!(first, "tovplay_external_20261208_073600.sql", "by name");
    }

    #[test]
    fn a_suspect_candidate_wants_its_name_typed_before_it_is_chosen() {
        let mut m = model();
        demo::add_choice_pick(&mut m, None);
        m.apply(UiEvent::Confirm(Some(demo::restore_confirm(
            &m,
            "tovplay_external_20261210_060000.sql",
            None,
        ))));
        update(&mut m, code(KeyCode::Esc));
        panel_at(&mut m, 1);
        update(&mut m, key('c'));
        let Overlay::ChooseBackup { name, suspect, .. } = m.ui.overlay.clone() else {
            panic!("{:?}", m.ui.overlay)
        };
        assert_eq!(name, "tovplay_external_20261209_180000.sql");
        assert!(suspect.unwrap().contains("mtime"));
        typed(&mut m, "the 18:00 one has the import");
        assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
        // A wrong name: refused, nothing sent.
        typed(&mut m, "tovplay_external");
        assert!(update(&mut m, code(KeyCode::Enter)).is_empty());
        let Overlay::ChooseBackup { error, .. } = m.ui.overlay.clone() else {
            panic!()
        };
        assert!(error.unwrap().contains("nothing was chosen"));
        typed(&mut m, "tovplay_external_20261209_180000.sql");
        let out = update(&mut m, code(KeyCode::Enter));
        assert_eq!(
            out,
            vec![UiCommand::ChooseBackup {
                step: "restore".into(),
                name: "tovplay_external_20261209_180000.sql".into(),
                reason: "the 18:00 one has the import".into(),
                typed: Some("tovplay_external_20261209_180000.sql".into()),
            }]
        );
        // Esc in the choice goes back to the panel, on the same candidate.
        panel_at(&mut m, 1);
        update(&mut m, key('c'));
        update(&mut m, code(KeyCode::Esc));
        assert_eq!(
            m.ui.overlay,
            Overlay::Backups {
                scroll: 0,
                cursor: 1
            }
        );
    }

    #[test]
    fn the_runbook_list_cursor_starts_on_the_suggested_runbook() {
        let mut m = model();
        m.apply(UiEvent::RunbookUpdate(None));
        let names: Vec<String> = m.runbooks.iter().map(|r| r.name.clone()).collect();
        let target = names.len() - 1;
        let name = names[target].clone();
        // One table lost its rows: table-wiped is suggested when known.
        m.runbooks[target].name = "table-wiped".into();
        m.alerts.retain(|a| !a.table.is_empty());
        m.alerts.truncate(1);
        assert_eq!(
            crate::tui::plan::suggest(&m).map(|s| s.runbook).as_deref(),
            Some("table-wiped"),
            "{name}"
        );
        update(&mut m, key('4'));
        assert_eq!(rows::cursor(&m, View::Runbook), target);
        // Once the operator moves it, the suggestion leaves it alone.
        update(&mut m, key('g'));
        update(&mut m, key('1'));
        update(&mut m, key('4'));
        assert_eq!(rows::cursor(&m, View::Runbook), 0);
        // :plan alone opens the suggested runbook's plan.
        assert_eq!(
            command(&mut m, "plan"),
            vec![UiCommand::PreviewRunbook("table-wiped".into())]
        );
    }

    #[test]
    fn a_suggestion_that_arrives_while_the_runbook_list_is_open_takes_the_cursor() {
        let mut m = model();
        m.apply(UiEvent::RunbookUpdate(None));
        let target = m.runbooks.len() - 1;
        m.runbooks[target].name = "table-wiped".into();
        m.alerts.retain(|a| !a.table.is_empty());
        m.alerts.truncate(1);
        let alerts = std::mem::take(&mut m.alerts);
        update(&mut m, key('4'));
        assert_eq!(rows::cursor(&m, View::Runbook), 0);
        // The alert comes in (the lab's wrong-database: a second after the
        // console opened); the next event puts the cursor on the suggestion.
        m.alerts = alerts;
        let db = m.databases[0].clone();
        update(
            &mut m,
            Msg::Ui(Box::new(UiEvent::DatabaseUpdate(db.clone()))),
        );
        assert_eq!(rows::cursor(&m, View::Runbook), target);
        // Moved by the operator: left alone.
        update(&mut m, key('g'));
        update(&mut m, Msg::Ui(Box::new(UiEvent::DatabaseUpdate(db))));
        assert_eq!(rows::cursor(&m, View::Runbook), 0);
    }

    #[test]
    fn frozen_pids_are_resolved_from_the_command_line() {
        let mut m = model();
        // Nothing frozen: said so, nothing sent.
        assert!(command(&mut m, "frozen continue").is_empty());
        assert!(m.ui.message.as_ref().unwrap().1);
        // The journal tailer reports pids left frozen: the header shows them.
        m.apply(UiEvent::Frozen(vec!["frozen: -4242 on box".into()]));
        assert_eq!(m.header.frozen, vec!["frozen: -4242 on box".to_string()]);
        assert_eq!(
            command(&mut m, "frozen continue"),
            vec![UiCommand::ResolveFrozen { end: false }]
        );
        assert_eq!(
            command(&mut m, "frozen end"),
            vec![UiCommand::ResolveFrozen { end: true }]
        );
        assert!(command(&mut m, "frozen kill").is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("':frozen kill'"));
        m.header.readonly = true;
        assert!(command(&mut m, "frozen end").is_empty());
        // Resolved: the header clears.
        m.apply(UiEvent::Frozen(Vec::new()));
        assert!(m.header.frozen.is_empty());
    }

    #[test]
    fn help_opens_and_closes() {
        let mut m = model();
        update(&mut m, key('?'));
        assert_eq!(m.ui.overlay, Overlay::Help { scroll: 0 });
        update(&mut m, ctrl('d'));
        assert!(matches!(m.ui.overlay, Overlay::Help { scroll } if scroll > 0));
        update(&mut m, key('q'));
        assert_eq!(m.ui.overlay, Overlay::None);
        assert!(!m.ui.quit, "q closes help, does not quit");
    }
}
