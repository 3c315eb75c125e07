//! The stop plan checklist: every item stop-services will stop or leave,
//! each with its evidence, as the operator edits it (the edits are the
//! answers file's `[stop_plan]` type) and confirms it. Pure: keys in, an
//! answer out; never does I/O, never stops an item it shows as locked.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::event::UiCommand;
use super::keys::Action;
use super::model::{Model, Overlay, View};
use crate::engine::types::StopPlanEdits;

/// One line of the plan as the engine built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// In the plan as built (attributed writers and their starters).
    pub stop: bool,
    pub name: String,
    pub host: String,
    /// `process`, `systemd`, `cron`, ...
    pub kind: String,
    /// Why it is stopped or left alone, with its evidence.
    pub why: String,
    /// How the edit names it (`pid:N`, `unit:NAME`, `NAME`).
    pub selector: Option<String>,
    /// Why it can never be stopped (shown dimmed, cannot be ticked).
    pub locked: Option<String>,
}

/// The plan of one stop-services step, waiting for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopPlanView {
    pub step: String,
    pub database: Option<String>,
    pub rows: Vec<PlanRow>,
}

/// The checklist being edited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checklist {
    pub plan: StopPlanView,
    /// Ticked: will be stopped.
    pub ticked: Vec<bool>,
    pub cursor: usize,
    /// Asking "stop N item(s)?" after Enter.
    pub confirming: bool,
    /// The operator put it aside with Esc (the step keeps waiting).
    pub aside: bool,
}

impl Checklist {
    pub fn new(plan: StopPlanView) -> Checklist {
        Checklist {
            ticked: plan.rows.iter().map(|r| r.stop).collect(),
            plan,
            cursor: 0,
            confirming: false,
            aside: false,
        }
    }

    /// Ticks or unticks the row under the cursor; a locked row says why not.
    pub fn toggle(&mut self) -> Result<(), String> {
        let Some(r) = self.plan.rows.get(self.cursor) else {
            return Ok(());
        };
        if let Some(why) = &r.locked {
            return Err(format!(
                "'{}' on {} cannot be stopped: {why}",
                r.name, r.host
            ));
        }
        if r.selector.is_none() {
            return Err(format!(
                "'{}' on {} cannot be named in an edit",
                r.name, r.host
            ));
        }
        self.ticked[self.cursor] = !self.ticked[self.cursor];
        Ok(())
    }

    /// The operator's changes, as the answers file would write them.
    pub fn edits(&self) -> StopPlanEdits {
        let mut e = StopPlanEdits::default();
        for (r, t) in self.plan.rows.iter().zip(&self.ticked) {
            let Some(sel) = &r.selector else { continue };
            if *t && !r.stop && !e.add.contains(sel) {
                e.add.push(sel.clone());
            } else if !*t && r.stop && !e.remove.contains(sel) {
                e.remove.push(sel.clone());
            }
        }
        e
    }

    /// Items that will be stopped as ticked now.
    pub fn to_stop(&self) -> usize {
        self.ticked.iter().filter(|t| **t).count()
    }

    fn step_cursor(&mut self, delta: isize) {
        let n = self.plan.rows.len();
        if n == 0 {
            return;
        }
        self.cursor = self.cursor.saturating_add_signed(delta).min(n - 1);
    }
}

/// A plan arrived (Some) or is no longer waiting (None).
pub fn apply_event(m: &mut Model, plan: Option<StopPlanView>) {
    match plan {
        Some(p) => {
            m.stop_plan = Some(Checklist::new(p));
            // Pops up over the Runbook view unless the operator is typing.
            if m.ui.overlay == Overlay::None && m.ui.input.is_none() {
                m.ui.view = View::Runbook;
                m.ui.overlay = Overlay::StopPlan;
            }
        }
        None => {
            m.stop_plan = None;
            if m.ui.overlay == Overlay::StopPlan {
                m.ui.overlay = Overlay::None;
            }
        }
    }
}

/// Opens the checklist again after Esc put it aside; false if none waits.
pub fn reopen(m: &mut Model) -> bool {
    match &mut m.stop_plan {
        Some(c) => {
            c.aside = false;
            m.ui.overlay = Overlay::StopPlan;
            true
        }
        None => false,
    }
}

fn say(m: &mut Model, text: impl Into<String>, error: bool) {
    m.ui.message = Some((text.into(), error));
}

/// A key while the checklist is open.
pub fn key(m: &mut Model, k: KeyEvent) -> Vec<UiCommand> {
    let action = m.keys.action(View::Runbook, &k);
    let ctrl_c = k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
    let page = (m.ui.size.1 as isize - 10).max(3);
    let readonly = m.header.readonly;
    let Some(c) = m.stop_plan.as_mut() else {
        m.ui.overlay = Overlay::None;
        return Vec::new();
    };
    if c.confirming {
        match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                if readonly {
                    c.confirming = false;
                    say(m, super::strings::READONLY_REFUSED, true);
                    return Vec::new();
                }
                let cmd = UiCommand::StopPlan {
                    step: c.plan.step.clone(),
                    edits: Some(c.edits()),
                };
                let n = c.to_stop();
                m.ui.overlay = Overlay::None;
                say(m, super::strings::stop_plan_sent(n), false);
                return vec![cmd];
            }
            _ => c.confirming = false,
        }
        return Vec::new();
    }
    match k.code {
        KeyCode::Esc => {
            c.aside = true;
            m.ui.overlay = Overlay::None;
            say(m, super::strings::STOP_PLAN_ASIDE, false);
            return Vec::new();
        }
        _ if ctrl_c => {
            c.aside = true;
            m.ui.overlay = Overlay::None;
            say(m, super::strings::STOP_PLAN_ASIDE, false);
            return Vec::new();
        }
        KeyCode::Char(' ') | KeyCode::Char('x') => {
            if let Err(e) = c.toggle() {
                say(m, e, true);
            }
            return Vec::new();
        }
        KeyCode::Enter => {
            c.confirming = true;
            return Vec::new();
        }
        KeyCode::Char('X') => {
            let cmd = UiCommand::StopPlan {
                step: c.plan.step.clone(),
                edits: None,
            };
            m.ui.overlay = Overlay::None;
            say(m, super::strings::STOP_PLAN_CANCELLED, false);
            return vec![cmd];
        }
        _ => {}
    }
    match action {
        Some(Action::Down) => c.step_cursor(1),
        Some(Action::Up) => c.step_cursor(-1),
        Some(Action::PageDown) => c.step_cursor(page),
        Some(Action::PageUp) => c.step_cursor(-page),
        Some(Action::Top) => c.cursor = 0,
        Some(Action::Bottom) => c.cursor = c.plan.rows.len().saturating_sub(1),
        _ => {}
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::update;
    use crate::tui::event::{Msg, UiEvent};
    use chrono::{TimeZone, Utc};

    pub(crate) fn row(stop: bool, name: &str, sel: Option<&str>, locked: Option<&str>) -> PlanRow {
        PlanRow {
            stop,
            name: name.into(),
            host: "box".into(),
            kind: "process".into(),
            why: format!("why {name}"),
            selector: sel.map(str::to_string),
            locked: locked.map(str::to_string),
        }
    }

    fn plan() -> StopPlanView {
        StopPlanView {
            step: "stop".into(),
            database: Some("prod".into()),
            rows: vec![
                row(true, "sync.sh", Some("pid:101"), None),
                row(true, "watchdog.sh", Some("pid:100"), None),
                row(false, "job.sh", Some("pid:200"), None),
                row(
                    false,
                    "other-lab sync",
                    None,
                    Some("not part of this drill"),
                ),
            ],
        }
    }

    fn model() -> Model {
        let mut m = Model::new(Utc.with_ymd_and_hms(2026, 12, 10, 12, 56, 30).unwrap());
        m.apply(UiEvent::StopPlan(Some(plan())));
        m
    }
    fn key_(c: KeyCode) -> Msg {
        Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }
    fn ch(c: char) -> Msg {
        let mods = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        Msg::Key(KeyEvent::new(KeyCode::Char(c), mods))
    }

    #[test]
    fn a_plan_pops_up_and_confirming_unchanged_sends_no_edits() {
        let mut m = model();
        assert_eq!(m.ui.overlay, Overlay::StopPlan);
        assert_eq!(m.ui.view, View::Runbook);
        // Enter asks first; y sends.
        assert!(update(&mut m, key_(KeyCode::Enter)).is_empty());
        assert!(m.stop_plan.as_ref().unwrap().confirming);
        assert_eq!(
            update(&mut m, ch('y')),
            vec![UiCommand::StopPlan {
                step: "stop".into(),
                edits: Some(StopPlanEdits::default()),
            }]
        );
        assert_eq!(m.ui.overlay, Overlay::None);
    }

    #[test]
    fn toggles_become_the_answers_file_edits() {
        let mut m = model();
        // Untick the sync (remove), tick the unclear job (add).
        update(&mut m, ch(' '));
        update(&mut m, ch('j'));
        update(&mut m, ch('j'));
        update(&mut m, ch('x'));
        let c = m.stop_plan.as_ref().unwrap();
        assert_eq!(c.to_stop(), 2);
        assert_eq!(
            c.edits(),
            StopPlanEdits {
                add: vec!["pid:200".into()],
                remove: vec!["pid:101".into()],
            }
        );
        // Ticking twice is no change.
        update(&mut m, ch(' '));
        update(&mut m, ch(' '));
        // n goes back to the list; Enter, Enter sends.
        update(&mut m, key_(KeyCode::Enter));
        update(&mut m, ch('n'));
        assert!(!m.stop_plan.as_ref().unwrap().confirming);
        assert_eq!(m.ui.overlay, Overlay::StopPlan);
        update(&mut m, key_(KeyCode::Enter));
        let out = update(&mut m, key_(KeyCode::Enter));
        assert_eq!(
            out,
            vec![UiCommand::StopPlan {
                step: "stop".into(),
                edits: Some(StopPlanEdits {
                    add: vec!["pid:200".into()],
                    remove: vec!["pid:101".into()],
                }),
            }]
        );
    }

    #[test]
    fn a_locked_row_cannot_be_ticked_and_says_why() {
        let mut m = model();
        update(&mut m, ch('G'));
        assert_eq!(m.stop_plan.as_ref().unwrap().cursor, 3);
        assert!(update(&mut m, ch(' ')).is_empty());
        let (msg, err) = m.ui.message.clone().unwrap();
        assert!(err && msg.contains("not part of this drill"), "{msg}");
        assert_eq!(
            m.stop_plan.as_ref().unwrap().edits(),
            StopPlanEdits::default()
        );
        // j past the end stays on the last row.
        update(&mut m, ch('j'));
        assert_eq!(m.stop_plan.as_ref().unwrap().cursor, 3);
    }

    #[test]
    fn esc_puts_it_aside_enter_on_the_runbook_view_reopens_x_cancels() {
        let mut m = model();
        update(&mut m, key_(KeyCode::Esc));
        assert_eq!(m.ui.overlay, Overlay::None);
        assert!(m.stop_plan.is_some(), "the step keeps waiting");
        // Keys act on the console again ('q' does not answer the plan).
        update(&mut m, ch('1'));
        assert_eq!(m.ui.view, View::Overview);
        update(&mut m, ch('4'));
        update(&mut m, key_(KeyCode::Enter));
        assert_eq!(m.ui.overlay, Overlay::StopPlan);
        assert_eq!(
            update(&mut m, ch('X')),
            vec![UiCommand::StopPlan {
                step: "stop".into(),
                edits: None,
            }]
        );
        // The engine no longer waits: the checklist goes away.
        m.apply(UiEvent::StopPlan(None));
        assert!(m.stop_plan.is_none());
    }

    #[test]
    fn readonly_refuses_to_send_a_plan() {
        let mut m = model();
        m.header.readonly = true;
        update(&mut m, key_(KeyCode::Enter));
        assert!(update(&mut m, ch('y')).is_empty());
        assert!(m.ui.message.as_ref().unwrap().0.contains("--readonly"));
    }
}
