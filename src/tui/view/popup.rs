//! Popups over the view: help (generated from the key map), details of a
//! record, service, step, host or database, the typed confirmation of a
//! destructive step, and the quit and abort questions.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use super::{centered, fit, frame_block, hms, pad, styled, wrap};
use crate::tui::model::{DetailTarget, Model};
use crate::tui::strings;
use crate::tui::theme::Role;

/// A framed popup: title, hint at the bottom, size and scroll.
struct Popup<'a> {
    title: &'a str,
    hint: &'a str,
    scroll: usize,
    w: u16,
    h: u16,
}

impl Popup<'_> {
    fn draw(&self, m: &Model, lines: &[Line<'_>], area: Rect, buf: &mut Buffer) {
        let t = &m.theme;
        let r = centered(area, self.w, self.h);
        Clear.render(r, buf);
        let block = frame_block(t, format!(" {} ", self.title)).title_bottom(Line::from(styled(
            format!(" {} ", self.hint),
            t.style(Role::Muted),
        )));
        let inner = block.inner(r);
        block.render(r, buf);
        let max_scroll = lines.len().saturating_sub(inner.height as usize);
        for (i, l) in lines
            .iter()
            .skip(self.scroll.min(max_scroll))
            .take(inner.height as usize)
            .enumerate()
        {
            buf.set_line(
                inner.x + 1,
                inner.y + i as u16,
                l,
                inner.width.saturating_sub(2),
            );
        }
    }
}

pub fn help(m: &Model, scroll: usize, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let g = t.glyphs();
    let w = area.width.saturating_sub(4).min(100);
    let key_w = 22usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut section = "";
    for (sec, keys, what) in m.keys.help() {
        if sec != section {
            if !section.is_empty() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::from(styled(sec, t.style(Role::Title))));
            section = sec;
        }
        // Long entries wrap under their text, never cut (issue 19).
        let text_w = (w as usize).saturating_sub(4 + key_w).max(20);
        for (i, part) in wrap(what, text_w).into_iter().enumerate() {
            let k = if i == 0 {
                pad(&keys, key_w, g.ellipsis)
            } else {
                " ".repeat(key_w)
            };
            lines.push(Line::from(vec![
                styled(k, t.style(Role::Key)),
                styled(part, t.style(Role::Normal)),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(styled(
        strings::HELP_SECTION_COMMANDS,
        t.style(Role::Title),
    )));
    for (cmd, what) in strings::HELP_COMMANDS {
        let text_w = (w as usize).saturating_sub(4 + key_w).max(20);
        for (i, part) in wrap(what, text_w).into_iter().enumerate() {
            let k = if i == 0 {
                pad(cmd, key_w, g.ellipsis)
            } else {
                " ".repeat(key_w)
            };
            lines.push(Line::from(vec![
                styled(k, t.style(Role::Key)),
                styled(part, t.style(Role::Normal)),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(styled(
        strings::HELP_SECTION_SYMBOLS,
        t.style(Role::Title),
    )));
    for (which, what) in strings::HELP_SYMBOLS {
        let sym = match which {
            "ok" => g.ok,
            "bad" => g.bad,
            "warn" => g.warn,
            "running" => g.running,
            "pending" => g.pending,
            "skipped" => g.skipped,
            "interrupted" => g.interrupted,
            "stopped" => g.stopped,
            "event" => g.event,
            _ => g.incident,
        };
        lines.push(Line::from(vec![
            styled(pad(sym, 4, g.ellipsis), t.style(Role::Key)),
            styled(what, t.style(Role::Normal)),
        ]));
    }
    Popup {
        title: strings::HELP_TITLE,
        hint: strings::CLOSE_HINT,
        scroll,
        w,
        h: area.height.saturating_sub(2),
    }
    .draw(m, &lines, area, buf);
}

fn field(m: &Model, name: &str, value: impl Into<String>) -> Line<'static> {
    let t = &m.theme;
    Line::from(vec![
        styled(format!("{name:<12}"), t.style(Role::Muted)),
        styled(value.into(), t.style(Role::Normal)),
    ])
}

fn detail_lines(m: &Model, target: &DetailTarget, w: usize) -> (String, Vec<Line<'static>>) {
    let t = &m.theme;
    let g = t.glyphs();
    let mut lines = Vec::new();
    let title;
    match target {
        DetailTarget::Record(seq) => {
            title = format!("{} #{seq}", strings::DETAILS);
            if let Some(r) = m.journal.iter().find(|r| r.seq == *seq) {
                lines.push(field(m, strings::F_SEQ, r.seq.to_string()));
                lines.push(field(m, strings::F_TIME, r.ts.to_rfc3339()));
                lines.push(field(m, strings::F_KIND, r.kind.clone()));
                lines.push(field(m, strings::F_OPERATOR, r.operator.clone()));
                if let Some(s) = &r.step {
                    lines.push(field(m, strings::F_STEP, s.clone()));
                }
                if let Some(s) = &r.target {
                    lines.push(field(m, strings::F_TARGET, s.clone()));
                }
                if let Some(s) = &r.command {
                    lines.push(field(m, strings::F_COMMAND, ""));
                    for l in wrap(s, w.saturating_sub(4)) {
                        lines.push(Line::from(styled(format!("  {l}"), t.style(Role::Info))));
                    }
                }
                if let Some(e) = r.exit {
                    lines.push(field(m, strings::F_EXIT, e.to_string()));
                }
                if let Some(d) = r.duration_ms {
                    lines.push(field(m, strings::F_DURATION, format!("{d} ms")));
                }
                lines.push(field(m, strings::F_SUMMARY, ""));
                for l in wrap(&r.summary, w.saturating_sub(4)) {
                    lines.push(Line::from(styled(format!("  {l}"), t.style(Role::Normal))));
                }
                if !r.data.is_null() {
                    lines.push(field(m, strings::F_DATA, ""));
                    let pretty = serde_json::to_string_pretty(&r.data).unwrap_or_default();
                    for l in pretty.lines() {
                        lines.push(Line::from(styled(
                            fit(&format!("  {l}"), w, g.ellipsis),
                            t.style(Role::Normal),
                        )));
                    }
                }
                lines.push(field(m, strings::F_PREV, r.prev.clone()));
                lines.push(field(m, strings::F_HASH, r.hash.clone()));
            }
        }
        DetailTarget::Service { host, name } => {
            title = format!("{host} {name}");
            if let Some(s) = m
                .services
                .iter()
                .find(|h| h.host == *host)
                .and_then(|h| h.services.iter().find(|s| s.name == *name))
            {
                lines.push(field(m, strings::F_HOST, host.clone()));
                lines.push(field(m, strings::F_KIND, strings::service_kind(s.kind)));
                lines.push(field(m, strings::F_STATE, s.state.clone()));
                lines.push(field(m, strings::F_DATABASES, s.databases.join(", ")));
                if s.stopped_by_runbook {
                    lines.push(field(m, "", strings::STOPPED_BY_RUNBOOK));
                }
                for z in &s.hazards {
                    lines.push(Line::raw(""));
                    lines.push(Line::from(styled(
                        format!("{} {}", g.warn, z.what),
                        t.style(Role::Hazard),
                    )));
                    for l in wrap(&z.evidence, w.saturating_sub(4)) {
                        lines.push(Line::from(styled(format!("  {l}"), t.style(Role::Normal))));
                    }
                }
            }
        }
        DetailTarget::Step(id) => {
            title = format!("{} {id}", strings::STEP);
            if let Some(s) = m
                .runbook
                .as_ref()
                .and_then(|r| r.steps.iter().find(|s| s.id == *id))
            {
                lines.push(field(m, strings::F_TITLE, s.title.clone()));
                lines.push(field(m, strings::F_ACTION, s.action.clone()));
                lines.push(field(m, strings::F_STATE, strings::step_state(s.state)));
                if s.destructive {
                    lines.push(field(m, "", strings::DESTRUCTIVE));
                }
                if let Some(st) = s.started_at {
                    lines.push(field(m, strings::F_STARTED, hms(st)));
                }
                if let Some(f) = s.finished_at {
                    lines.push(field(m, strings::F_FINISHED, hms(f)));
                }
                if let Some(sum) = &s.summary {
                    for l in wrap(sum, w.saturating_sub(12)) {
                        lines.push(field(m, "", l));
                    }
                }
                let out: Vec<_> = m.output.iter().filter(|o| o.step == *id).collect();
                if !out.is_empty() {
                    lines.push(Line::raw(""));
                    lines.push(Line::from(styled(strings::OUTPUT, t.style(Role::Title))));
                    for o in out {
                        lines.push(Line::from(styled(
                            fit(&o.line, w, g.ellipsis),
                            t.style(Role::Normal),
                        )));
                    }
                }
            }
        }
        DetailTarget::Host(name) => {
            title = name.clone();
            if let Some(h) = m.hosts.iter().find(|h| h.name == *name) {
                if let Some(a) = &h.address {
                    lines.push(field(m, strings::F_ADDRESS, a.clone()));
                }
                let mut state: Vec<Span<'static>> = vec![styled(
                    format!("{:<12}", strings::F_STATE),
                    t.style(Role::Muted),
                )];
                state.extend(super::overview::host_state(m, h));
                lines.push(Line::from(state));
                if let Some(e) = &h.error {
                    lines.push(field(m, strings::F_ERROR, e.clone()));
                }
            }
        }
        DetailTarget::Database(name) => {
            title = name.clone();
            if let Some(d) = m.database(name) {
                if let Some(id) = &d.identity {
                    lines.push(field(m, strings::F_ADDRESS, id.address()));
                    lines.push(field(m, strings::F_DATABASE, id.database.clone()));
                    lines.push(field(m, strings::F_SYSTEM_ID, id.system_identifier.clone()));
                    lines.push(field(m, strings::F_OID, id.oid.unwrap_or(0).to_string()));
                    if let Some(p) = id.server_started_at {
                        lines.push(field(m, strings::F_STARTED, p.to_rfc3339()));
                    }
                }
                lines.push(field(m, strings::F_HEALTH, strings::health(d.health)));
            }
        }
    }
    (title, lines)
}

pub fn details(m: &Model, target: &DetailTarget, scroll: usize, area: Rect, buf: &mut Buffer) {
    let w = area.width.saturating_sub(6).min(110);
    let (title, lines) = detail_lines(m, target, w.saturating_sub(4) as usize);
    let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    Popup {
        title: &title,
        hint: strings::CLOSE_HINT,
        scroll,
        w,
        h,
    }
    .draw(m, &lines, area, buf);
}

pub fn confirm(m: &Model, input: &str, error: Option<&str>, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let Some(p) = &m.pending else { return };
    let widest = if p.changes.is_empty() && p.backup.is_none() {
        76
    } else {
        110
    };
    let w = area.width.saturating_sub(4).min(widest);
    let inner_w = w.saturating_sub(4) as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    for l in wrap(&p.prompt, inner_w) {
        lines.push(Line::from(styled(l, t.style(Role::Title))));
    }
    lines.push(Line::raw(""));
    // A restore names the backup it reads and what that loses.
    if let Some(b) = &p.backup {
        lines.extend(super::backups::stake_lines(m, b, inner_w));
        lines.push(Line::raw(""));
    }
    let changes_at = lines.len();
    if let Some(db) = &p.database {
        let mut spans = vec![styled(format!("{db} "), t.style(Role::Title))];
        if let Some(id) = m.identity_of(db) {
            spans.push(styled(
                format!(
                    "{} {}  {} {}",
                    t.glyphs().arrow,
                    id.address(),
                    strings::SYSTEM,
                    id.system_identifier
                ),
                t.style(Role::Normal),
            ));
        }
        lines.push(Line::from(spans));
        if let Some(env) = m
            .database(db)
            .and_then(|d| d.env.clone())
            .or(m.header.env.clone())
        {
            lines.push(Line::from(styled(
                format!(" {} ", env.to_uppercase()),
                t.env_style(&env),
            )));
        }
        lines.push(Line::raw(""));
    }
    let (title, hint) = match &p.expect {
        Some(name) => {
            for l in wrap(&strings::confirm_type(name), inner_w) {
                lines.push(Line::from(styled(l, t.style(Role::Normal))));
            }
            lines.push(Line::from(vec![
                styled("> ", t.style(Role::Key)),
                styled(input.to_string(), t.style(Role::Input)),
                styled("_", t.style(Role::Key)),
            ]));
            (strings::CONFIRM_TITLE, strings::CONFIRM_HINT)
        }
        None => (strings::QUESTION_TITLE, strings::YES_NO_HINT),
    };
    if let Some(e) = error {
        lines.push(Line::raw(""));
        for l in wrap(e, inner_w) {
            lines.push(Line::from(styled(l, t.style(Role::Bad))));
        }
    }
    // What the step will change goes under the prompt, in the room the
    // rest leaves (the typed line always stays on screen).
    let room = (area.height as usize)
        .saturating_sub(2 + 2 + 1)
        .saturating_sub(lines.len());
    let block = super::changes::change_lines(m, &p.changes, inner_w, room);
    if !block.is_empty() {
        let at = changes_at;
        lines.splice(at..at, block.into_iter().chain([Line::raw("")]));
    }
    let h = lines.len() as u16 + 2;
    Popup {
        title,
        hint,
        scroll: 0,
        w,
        h,
    }
    .draw(m, &lines, area, buf);
}

pub fn quit(m: &Model, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let step = m
        .runbook
        .as_ref()
        .and_then(|r| {
            r.steps
                .iter()
                .find(|s| s.state == crate::tui::model::StepState::Running)
        })
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let w = area.width.saturating_sub(4).min(64);
    let lines: Vec<Line<'static>> =
        wrap(&strings::quit_running(&step), w.saturating_sub(4) as usize)
            .into_iter()
            .map(|l| Line::from(styled(l, t.style(Role::Title))))
            .collect();
    let h = lines.len() as u16 + 2;
    Popup {
        title: strings::QUIT_TITLE,
        hint: strings::QUIT_HINT,
        scroll: 0,
        w,
        h,
    }
    .draw(m, &lines, area, buf);
}

pub fn abort(m: &Model, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let step = m
        .runbook
        .as_ref()
        .and_then(|r| r.current.and_then(|i| r.steps.get(i)))
        .map(|s| s.id.clone())
        .unwrap_or_default();
    let w = area.width.saturating_sub(4).min(64);
    let lines: Vec<Line<'static>> = wrap(&strings::abort_ask(&step), w.saturating_sub(4) as usize)
        .into_iter()
        .map(|l| Line::from(styled(l, t.style(Role::Title))))
        .collect();
    let h = lines.len() as u16 + 2;
    Popup {
        title: strings::ABORT_TITLE,
        hint: strings::ABORT_HINT,
        scroll: 0,
        w,
        h,
    }
    .draw(m, &lines, area, buf);
}
