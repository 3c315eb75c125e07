//! Runbook: the steps with their state, the current step's explanation and
//! exact preview, restore progress (bytes, rows per table, rate, ETA), live
//! output, and whether the engine waits for a confirmation. Draws from
//! `&Model` only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{Item, draw_list, fit, heading, pad, styled, width, wrap};
use crate::tui::model::{Model, Progress, RunbookState, StepState, StepView, View};
use crate::tui::rows;
use crate::tui::strings;
use crate::tui::theme::{Role, Theme};

pub struct RunbookView<'a> {
    pub model: &'a Model,
}

pub(crate) fn step_mark(t: &Theme, s: StepState) -> (&'static str, Role) {
    let g = t.glyphs();
    match s {
        StepState::Pending => (g.pending, Role::Muted),
        StepState::Running => (g.running, Role::Running),
        StepState::Done => (g.ok, Role::Ok),
        StepState::Failed => (g.bad, Role::Bad),
        StepState::Interrupted => (g.interrupted, Role::Warn),
        StepState::Skipped => (g.skipped, Role::Muted),
    }
}

/// `w`: list width (the list draws a two-column gutter); `flag_w`: width of
/// the destructive column (0 when no step is destructive).
fn step_item(m: &Model, i: usize, s: &StepView, w: usize, flag_w: usize) -> Item<'static> {
    let t = &m.theme;
    let g = t.glyphs();
    let (sym, role) = step_mark(t, s.state);
    let state = match (s.state, s.started_at) {
        (StepState::Running, Some(st)) => strings::running_for(m.age_s(st)),
        _ => strings::step_state(s.state).to_string(),
    };
    let title_w = w.saturating_sub(2 + 2 + 4 + 1 + 12 + flag_w);
    let mut spans = vec![
        styled(format!("{sym} "), t.style(role)),
        styled(format!("{:>2}. ", i + 1), t.style(Role::Muted)),
        styled(pad(&s.title, title_w, g.ellipsis), t.style(Role::Normal)),
        styled(format!(" {}", pad(&state, 12, g.ellipsis)), t.style(role)),
    ];
    if s.destructive {
        spans.push(styled(
            format!(" {}", strings::DESTRUCTIVE),
            t.style(Role::Warn),
        ));
    }
    Item::row(vec![Line::from(spans)])
}

/// Two lines: the bar with bytes, then rate, ETA and the age of the numbers.
fn gauge(m: &Model, p: &Progress, w: usize) -> [Line<'static>; 2] {
    let t = &m.theme;
    let g = t.glyphs();
    let mut spans = Vec::new();
    let bar_w = (w / 3).clamp(10, 50);
    if let Some(r) = p.ratio() {
        let full = (r * bar_w as f64).round() as usize;
        spans.push(styled("[", t.style(Role::Muted)));
        spans.push(styled(g.gauge_full.repeat(full), t.style(Role::Info)));
        spans.push(styled(
            g.gauge_empty.repeat(bar_w - full),
            t.style(Role::Muted),
        ));
        spans.push(styled("] ", t.style(Role::Muted)));
        spans.push(styled(
            format!("{:>3.0}%  ", r * 100.0),
            t.style(Role::Title),
        ));
        if let Some(label) = &p.label {
            spans.push(styled(label.clone(), t.style(Role::Normal)));
        } else {
            let total = p.bytes_total.map(strings::bytes).unwrap_or_default();
            spans.push(styled(
                strings::of_total(&strings::bytes(p.bytes_done), &total),
                t.style(Role::Normal),
            ));
        }
    } else if let Some(label) = &p.label {
        spans.push(styled(label.clone(), t.style(Role::Normal)));
    } else {
        spans.push(styled(strings::bytes(p.bytes_done), t.style(Role::Normal)));
    }
    let mut second = Vec::new();
    if let Some(rate) = p.rate().filter(|_| p.label.is_none()) {
        second.push(styled(
            format!("{}  ", strings::rate(rate)),
            t.style(Role::Normal),
        ));
    }
    if let Some(eta) = p.eta_s().filter(|_| p.label.is_none()) {
        second.push(styled(
            format!("{}  ", strings::eta(eta)),
            t.style(Role::Title),
        ));
    }
    second.extend(super::age(m, p.updated_at, 10, strings::updated));
    [Line::from(spans), Line::from(second)]
}

/// Per-table progress, flowed over as many lines as needed.
fn table_lines(m: &Model, p: &Progress, w: usize) -> Vec<Line<'static>> {
    let t = &m.theme;
    let g = t.glyphs();
    let mut lines = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for tp in &p.tables {
        let (text, role) = match (tp.done, tp.expected) {
            (true, _) => (
                format!("{} {} {}", tp.name, strings::count(tp.rows), g.ok),
                Role::Ok,
            ),
            (false, Some(e)) => (
                format!(
                    "{} {}/{} {}",
                    tp.name,
                    strings::count(tp.rows),
                    strings::count(e),
                    g.running
                ),
                Role::Running,
            ),
            (false, None) => (
                format!("{} {} {}", tp.name, strings::count(tp.rows), g.running),
                Role::Running,
            ),
        };
        let tw = width(&text) + 3;
        if used + tw > w && !cur.is_empty() {
            lines.push(Line::from(std::mem::take(&mut cur)));
            used = 0;
        }
        cur.push(styled(text, t.style(role)));
        cur.push(Span::raw("   "));
        used += tw;
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    lines
}

impl RunbookView<'_> {
    fn details(&self, rb: &RunbookState, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let g = t.glyphs();
        let w = area.width as usize;
        let cur = rb.current.and_then(|i| rb.steps.get(i).map(|s| (i, s)));
        let mut y = area.y;
        let bottom = area.y + area.height;
        let put = |buf: &mut Buffer, y: &mut u16, line: &Line<'_>| {
            if *y < bottom {
                buf.set_line(area.x, *y, line, area.width);
                *y += 1;
            }
        };
        // Title.
        let mut title = vec![styled(rb.title.clone(), t.style(Role::Title))];
        if let Some((i, s)) = cur {
            let (sym, role) = step_mark(t, s.state);
            title = vec![
                styled(
                    strings::step_of(i + 1, rb.steps.len()),
                    t.style(Role::Title),
                ),
                styled(format!("  {}  ", s.action), t.style(Role::Muted)),
                styled(
                    format!("{sym} {}", strings::step_state(s.state)),
                    t.style(role),
                ),
            ];
            if s.destructive {
                title.push(styled(
                    format!("  {} ", strings::DESTRUCTIVE),
                    t.badge(Role::Warn),
                ));
            }
        }
        put(buf, &mut y, &Line::from(title));
        if let Some((_, s)) = cur {
            put(
                buf,
                &mut y,
                &Line::from(styled(s.title.clone(), t.style(Role::Title))),
            );
        }
        if m.pending.is_some() {
            put(
                buf,
                &mut y,
                &Line::from(styled(
                    format!(" {} ", strings::WAITING_CONFIRM),
                    t.badge(Role::Warn),
                )),
            );
        }
        if m.stop_plan.is_some() {
            put(
                buf,
                &mut y,
                &Line::from(styled(
                    format!(" {} ", strings::WAITING_STOP_PLAN),
                    t.badge(Role::Warn),
                )),
            );
        }
        let progress = m
            .progress
            .as_ref()
            .filter(|p| cur.is_some_and(|(_, s)| s.id == p.step));
        // A hold shows what it watches and what came back (issue 19).
        let hold = progress.is_some_and(super::hold::is_hold);
        let prog_cap = if hold { 8 } else { 3 };
        let prog_lines = progress
            .map(|p| {
                if hold {
                    super::hold::lines(m, p, w)
                } else {
                    table_lines(m, p, w)
                }
            })
            .unwrap_or_default();
        let prog_h = progress.map_or(0, |_| 3 + prog_lines.len().min(prog_cap));
        let expl = wrap(&rb.explanation, w);
        let remaining = bottom.saturating_sub(y) as usize;
        let wide = area.height >= 30;
        let expl_h = expl.len().min(if wide { 8 } else { 3 });
        let prev_h = rb.preview.len().min(if wide { 10 } else { 4 });
        let fixed = |e: usize, p: usize| {
            (if e > 0 { e + 1 } else { 0 }) + (if p > 0 { p + 1 } else { 0 }) + prog_h + 2
        };
        // A failed step's Output (its first error) comes before the rest.
        let failed_now = cur.is_some_and(|(_, s)| s.state == StepState::Failed);
        let (mut expl_h, mut prev_h) = if failed_now && !wide {
            (expl_h.min(1), prev_h.min(1))
        } else {
            (expl_h, prev_h)
        };
        while fixed(expl_h, prev_h) > remaining && expl_h > 1 {
            expl_h -= 1;
        }
        while fixed(expl_h, prev_h) > remaining && prev_h > 1 {
            prev_h -= 1;
        }
        if expl_h > 0 {
            heading(t, strings::EXPLANATION)
                .render(Rect::new(area.x, y.min(bottom), area.width, 1), buf);
            y += 1;
            for l in expl.iter().take(expl_h) {
                put(
                    buf,
                    &mut y,
                    &Line::from(styled(l.clone(), t.style(Role::Normal))),
                );
            }
        }
        if prev_h > 0 && y < bottom {
            heading(t, strings::PREVIEW).render(Rect::new(area.x, y, area.width, 1), buf);
            y += 1;
            for l in rb.preview.iter().take(prev_h) {
                put(
                    buf,
                    &mut y,
                    &Line::from(styled(
                        fit(&format!("$ {l}"), w, g.ellipsis),
                        t.style(Role::Info),
                    )),
                );
            }
        }
        if let Some(p) = progress
            && y < bottom
        {
            heading(t, strings::PROGRESS).render(Rect::new(area.x, y, area.width, 1), buf);
            y += 1;
            for l in gauge(m, p, w) {
                put(buf, &mut y, &l);
            }
            for l in prog_lines.iter().take(prog_cap) {
                put(buf, &mut y, l);
            }
        }
        if y < bottom {
            heading(t, strings::OUTPUT).render(Rect::new(area.x, y, area.width, 1), buf);
            y += 1;
            let h = bottom.saturating_sub(y) as usize;
            if m.output.is_empty() && h > 0 {
                put(
                    buf,
                    &mut y,
                    &Line::from(styled(strings::NO_OUTPUT, t.style(Role::Muted))),
                );
            }
            // A failed current step: the Output starts at its first error
            // line (not the tail of a long dump), and says `r` retries it.
            let failed = cur.filter(|(_, s)| s.state == StepState::Failed);
            match failed.and_then(|(_, s)| failure_window(m, &s.id).map(|f| (s, f))) {
                Some((s, (first, err))) if h > 0 => {
                    // Too little room for the context line: the error first.
                    let first = if h < 5 { err } else { first };
                    put(
                        buf,
                        &mut y,
                        &Line::from(styled(
                            fit(
                                &strings::failed_output(&s.id, err - first_of(m, &s.id) + 1),
                                w,
                                g.ellipsis,
                            ),
                            t.style(Role::Bad),
                        )),
                    );
                    let room = bottom.saturating_sub(y) as usize;
                    let after = m.output.len() - first;
                    let shown = if after > room {
                        room.saturating_sub(1)
                    } else {
                        after
                    };
                    for (k, o) in m.output.iter().enumerate().skip(first).take(shown) {
                        let role = if k == err {
                            Role::Bad
                        } else if o.stderr {
                            Role::Warn
                        } else {
                            Role::Normal
                        };
                        put(
                            buf,
                            &mut y,
                            &Line::from(styled(fit(&o.line, w, g.ellipsis), t.style(role))),
                        );
                    }
                    if after > shown {
                        put(
                            buf,
                            &mut y,
                            &Line::from(styled(
                                strings::output_more(after - shown),
                                t.style(Role::Muted),
                            )),
                        );
                    }
                }
                _ => {
                    let skip = m.output.len().saturating_sub(h);
                    for o in m.output.iter().skip(skip) {
                        let role = if o.stderr { Role::Warn } else { Role::Normal };
                        put(
                            buf,
                            &mut y,
                            &Line::from(styled(fit(&o.line, w, g.ellipsis), t.style(role))),
                        );
                    }
                }
            }
        }
    }
}

/// Whether an output line reads as an error.
fn is_error_line(line: &str) -> bool {
    let l = line.to_lowercase();
    ["error", "fatal", "failed", "refused", "panic"]
        .iter()
        .any(|w| l.contains(w))
}

/// Index in `m.output` of step `id`'s first line.
fn first_of(m: &Model, id: &str) -> usize {
    m.output.iter().position(|o| o.step == id).unwrap_or(0)
}

/// Where the Output of a failed step starts: (first line shown, its first
/// error line), one line of the step's context before the error. None
/// when the step wrote no output.
pub(crate) fn failure_window(m: &Model, id: &str) -> Option<(usize, usize)> {
    let first = m.output.iter().position(|o| o.step == id)?;
    let err = m
        .output
        .iter()
        .enumerate()
        .skip(first)
        .find(|(_, o)| o.step == id && (o.stderr || is_error_line(&o.line)))
        .map_or(first, |(k, _)| k);
    let start = if err > first && m.output[err - 1].step == id {
        err - 1
    } else {
        err
    };
    Some((start, err))
}

impl Widget for RunbookView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let sel = rows::cursor(m, View::Runbook);
        let Some(rb) = &m.runbook else {
            let mut items: Vec<Item<'static>> = wrap(strings::NO_RUNBOOK, area.width as usize)
                .into_iter()
                .map(|l| Item::text(Line::from(styled(l, t.style(Role::Title)))))
                .collect();
            items.push(Item::text(Line::raw("")));
            if m.runbooks.is_empty() {
                items.push(Item::text(Line::from(styled(
                    strings::NO_RUNBOOKS,
                    t.style(Role::Muted),
                ))));
            }
            let suggestion = crate::tui::plan::suggest(m);
            for r in &m.runbooks {
                let mut lines = vec![
                    Line::from(vec![
                        styled(r.name.clone(), t.style(Role::Title)),
                        styled(format!("  {}", r.title), t.style(Role::Normal)),
                    ]),
                    Line::from(styled(
                        format!("  {}: {}", strings::WHEN, r.when),
                        t.style(Role::Muted),
                    )),
                ];
                if let Some(s) = suggestion.as_ref().filter(|s| s.runbook == r.name) {
                    lines[0].spans.insert(
                        1,
                        styled(format!(" {} ", strings::SUGGESTED), t.badge(Role::Info)),
                    );
                    lines[0].spans.insert(1, Span::raw(" "));
                    for l in wrap(
                        &strings::suggested(&s.reason),
                        area.width.saturating_sub(4) as usize,
                    ) {
                        lines.push(Line::from(styled(format!("  {l}"), t.style(Role::Info))));
                    }
                }
                items.push(Item::row(lines));
            }
            let s = (!m.runbooks.is_empty()).then_some(sel);
            draw_list(t, &items, s, area, buf);
            return;
        };
        let side = area.width >= 140;
        let (steps_area, detail_area) = if side {
            let sw = (area.width * 9 / 20).clamp(40, 80);
            (
                Rect::new(area.x, area.y, sw, area.height),
                Rect::new(area.x + sw + 1, area.y, area.width - sw - 1, area.height),
            )
        } else {
            let sh = (rb.steps.len() as u16 + 1).min(area.height / 3 + 1).max(2);
            (
                Rect::new(area.x, area.y, area.width, sh),
                Rect::new(
                    area.x,
                    area.y + sh,
                    area.width,
                    area.height.saturating_sub(sh),
                ),
            )
        };
        let head = Line::from(vec![
            styled(format!("{} ", strings::STEPS), t.style(Role::Title)),
            styled(format!("{} ", rb.name), t.style(Role::Muted)),
        ]);
        heading(t, head).render(
            Rect::new(steps_area.x, steps_area.y, steps_area.width, 1),
            buf,
        );
        let list = Rect::new(
            steps_area.x,
            steps_area.y + 1,
            steps_area.width,
            steps_area.height.saturating_sub(1),
        );
        let flag_w = if rb.steps.iter().any(|s| s.destructive) {
            width(strings::DESTRUCTIVE) + 1
        } else {
            0
        };
        let items: Vec<Item<'static>> = rb
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| step_item(m, i, s, list.width as usize, flag_w))
            .collect();
        draw_list(t, &items, Some(sel), list, buf);
        if side {
            for y in area.y..area.y + area.height {
                buf[(area.x + steps_area.width, y)]
                    .set_symbol(t.glyphs().vline)
                    .set_style(t.style(Role::Muted));
            }
        }
        self.details(rb, detail_area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::model::OutputLine;

    #[test]
    fn a_failed_step_window_starts_at_its_first_error_line() {
        let mut m = Model::new(chrono::Utc::now());
        let line = |step: &str, line: &str| OutputLine {
            step: step.into(),
            line: line.into(),
            stderr: false,
        };
        m.output.extend([
            line("verify", "error: an earlier step's error is not this one's"),
            line("restore", "reading the dump"),
            line("restore", "COPY 22"),
            line("restore", "psql:x.sql:12: ERROR:  duplicate key value"),
            line("restore", "CONTEXT: COPY User, line 3"),
            line("restore", "ERROR: a later error"),
        ]);
        assert_eq!(failure_window(&m, "restore"), Some((2, 3)));
        assert_eq!(failure_window(&m, "swap"), None);
        // No error word: the step's first line.
        m.output.truncate(3);
        assert_eq!(failure_window(&m, "restore"), Some((1, 1)));
    }

    fn text(lines: &[Line<'static>]) -> String {
        lines
            .iter()
            .flat_map(|l| l.spans.iter().map(|s| s.content.to_string()))
            .collect()
    }

    #[test]
    fn a_countdown_shows_its_words_not_bytes() {
        let now = chrono::Utc::now();
        let m = Model::new(now);
        let mut p = Progress {
            step: "stop-writers".into(),
            bytes_done: 107,
            bytes_total: Some(120),
            label: Some("hold: 13 s left of 120 s".into()),
            tables: vec![],
            started_at: now - chrono::Duration::seconds(107),
            updated_at: now,
        };
        let shown = text(&gauge(&m, &p, 120));
        assert!(shown.contains("hold: 13 s left of 120 s"), "{shown}");
        assert!(
            !shown.contains(" B") && !shown.contains("B/s") && !shown.contains("ETA"),
            "{shown}"
        );
        p.label = None;
        let shown = text(&gauge(&m, &p, 120));
        assert!(
            shown.contains("107 B"),
            "a restore keeps its bytes: {shown}"
        );
    }
}
