//! Drawing: `Console` renders a whole frame from `&Model` (header, tabs,
//! the current view, footer, popups). Views are borrowed widgets; drawing
//! never mutates the model and never waits on anything.

mod backups;
mod changes;
mod header;
mod hold;
mod journal;
mod migrations;
mod overview;
mod plan;
mod popup;
mod runbook;
mod services;
mod stop_plan;
mod timeline;

use chrono::{DateTime, TimeZone, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::model::{Model, Overlay, View};
use super::strings;
use super::theme::{Role, Theme};

pub use timeline::TimelineView;

/// Smallest terminal the console draws into.
pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 16;

/// The whole screen.
pub struct Console<'a> {
    pub model: &'a Model,
}

impl Widget for Console<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        if area.width < MIN_W || area.height < MIN_H {
            let text = strings::too_small(area.width, area.height, MIN_W, MIN_H);
            let lines = wrap(&text, area.width as usize);
            for (i, l) in lines.iter().enumerate().take(area.height as usize) {
                buf.set_stringn(
                    area.x,
                    area.y + i as u16,
                    l,
                    area.width as usize,
                    t.style(Role::Warn),
                );
            }
            return;
        }
        let [head, tabs, body, foot] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        header::Header { model: m }.render(head, buf);
        header::Tabs { model: m }.render(tabs, buf);
        match m.ui.view {
            View::Overview => overview::OverviewView { model: m }.render(body, buf),
            View::Services => services::ServicesView { model: m }.render(body, buf),
            View::Timeline => TimelineView { model: m }.render(body, buf),
            View::Runbook => runbook::RunbookView { model: m }.render(body, buf),
            View::Journal => journal::JournalView { model: m }.render(body, buf),
        }
        header::Footer { model: m }.render(foot, buf);
        match &m.ui.overlay {
            Overlay::None => {}
            Overlay::Help { scroll } => popup::help(m, *scroll, area, buf),
            Overlay::Details { target, scroll } => popup::details(m, target, *scroll, area, buf),
            Overlay::Confirm { input, error } => {
                popup::confirm(m, input, error.as_deref(), area, buf)
            }
            Overlay::Quit => popup::quit(m, area, buf),
            Overlay::Abort => popup::abort(m, area, buf),
            Overlay::StopPlan => stop_plan::checklist(m, area, buf),

            Overlay::Plan { runbook, scroll } => plan::popup(m, runbook, *scroll, area, buf),
            Overlay::Backups { scroll, cursor } => backups::popup(m, *scroll, *cursor, area, buf),
            Overlay::ChooseBackup {
                name,
                suspect,
                reason,
                typed,
                error,
                ..
            } => backups::choose_popup(
                m,
                name,
                suspect.as_deref(),
                reason,
                typed.as_deref(),
                error.as_deref(),
                area,
                buf,
            ),
            Overlay::Migrations { scroll } => migrations::popup(m, *scroll, area, buf),
        }
    }
}

/// How many candidates the backup panel lists.
pub(crate) fn pick_candidates(m: &Model) -> usize {
    backups::last_pick(m).map_or(0, |p| p.candidates.len())
}

/// The backup panel's candidate at `cursor`: its name, why it is
/// excluded (if it is) and the pick step that judged it.
pub(crate) fn pick_candidate(m: &Model, cursor: usize) -> Option<(String, Option<String>, String)> {
    let p = backups::last_pick(m)?;
    let c = backups::order(&p, m.ui.backup_sort)
        .get(cursor)
        .copied()?
        .clone();
    Some((c.name, c.excluded, p.step))
}

/// Draws the console into a ratatui frame.
pub fn draw(frame: &mut ratatui::Frame<'_>, model: &Model) {
    frame.render_widget(Console { model }, frame.area());
}

// ---------- text helpers ----------

pub(crate) fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to `w` columns, ending in the ellipsis when cut.
pub(crate) fn fit(s: &str, w: usize, ellipsis: &str) -> String {
    // Text from outside (host output, names, notes) shown with visible escapes.
    let s = &*crate::term::visible(s);
    if width(s) <= w {
        return s.to_string();
    }
    let ew = width(ellipsis);
    if w <= ew {
        return s.chars().take(w).collect();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw > w - ew {
            break;
        }
        used += cw;
        out.push(c);
    }
    out.push_str(ellipsis);
    out
}

/// `s` fitted and padded with spaces to exactly `w` columns.
pub(crate) fn pad(s: &str, w: usize, ellipsis: &str) -> String {
    let mut f = fit(s, w, ellipsis);
    let n = w.saturating_sub(width(&f));
    f.extend(std::iter::repeat_n(' ', n));
    f
}

/// Right-aligned in `w` columns.
pub(crate) fn rpad(s: &str, w: usize, ellipsis: &str) -> String {
    let f = fit(s, w, ellipsis);
    let n = w.saturating_sub(width(&f));
    let mut out: String = std::iter::repeat_n(' ', n).collect();
    out.push_str(&f);
    out
}

/// Greedy word wrap to `w` columns (long words are cut).
pub(crate) fn wrap(s: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut out = Vec::new();
    for para in s.split('\n') {
        let para = &*crate::term::visible(para);
        let mut line = String::new();
        for word in para.split(' ') {
            let need = if line.is_empty() { 0 } else { 1 } + width(word);
            if !line.is_empty() && width(&line) + need > w {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            while width(&line) > w {
                let head: String = fit(&line, w, "");
                let rest = line[head.len()..].to_string();
                out.push(head);
                line = rest;
            }
        }
        out.push(line);
    }
    out
}

pub(crate) fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

pub(crate) fn unix(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

/// Age text of `t` with STALE marking past `limit` seconds: (text, role).
pub(crate) fn age(
    m: &Model,
    t: DateTime<Utc>,
    limit: i64,
    what: fn(i64) -> String,
) -> Vec<Span<'static>> {
    let a = m.age_s(t);
    if a > limit {
        vec![
            Span::styled(what(a), m.theme.style(Role::Stale)),
            Span::raw(" "),
            Span::styled(strings::STALE, m.theme.badge(Role::Warn)),
        ]
    } else {
        vec![Span::styled(what(a), m.theme.style(Role::Muted))]
    }
}

/// A section heading: a rule with a title.
pub(crate) fn heading<'a>(t: &Theme, title: impl Into<Line<'a>>) -> Block<'a> {
    let mut line: Line<'a> = title.into();
    line.spans.push(Span::raw(" "));
    Block::new()
        .borders(Borders::TOP)
        .border_set(t.border())
        .border_style(t.style(Role::Muted))
        .title(line.style(t.style(Role::Title)))
}

/// A framed popup block.
/// Draws `lines` inside a popup's `inner` area from line `scroll` on, and
/// when they do not all fit says which ones show (" 1-36 / 133 ") on the
/// popup's top border `r`, so a cut is never silent.
pub(crate) fn scrolled_lines(
    t: &Theme,
    r: Rect,
    inner: Rect,
    lines: &[Line<'_>],
    scroll: usize,
    buf: &mut Buffer,
) {
    let h = inner.height as usize;
    let first = scroll.min(lines.len().saturating_sub(h));
    for (i, l) in lines.iter().skip(first).take(h).enumerate() {
        buf.set_line(
            inner.x + 1,
            inner.y + i as u16,
            l,
            inner.width.saturating_sub(2),
        );
    }
    if lines.len() > h && h > 0 {
        let more = format!(
            " {}-{} / {} ",
            first + 1,
            (first + h).min(lines.len()),
            lines.len()
        );
        let x = r.x + r.width.saturating_sub(more.len() as u16 + 2);
        buf.set_string(x, r.y, more, t.style(Role::Muted));
    }
}

pub(crate) fn frame_block<'a>(t: &Theme, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered()
        .border_set(t.border())
        .title(title.into().style(t.style(Role::Title)))
}

/// One entry of a scrolling list: one or more lines, selectable or a heading.
pub(crate) struct Item<'a> {
    pub lines: Vec<Line<'a>>,
    pub selectable: bool,
}

impl<'a> Item<'a> {
    pub fn row(lines: Vec<Line<'a>>) -> Self {
        Item {
            lines,
            selectable: true,
        }
    }
    pub fn text(line: Line<'a>) -> Self {
        Item {
            lines: vec![line],
            selectable: false,
        }
    }
}

/// Draws items with a two-column gutter holding the cursor; scrolls so the
/// selected item (n-th selectable) is visible; highlights it.
pub(crate) fn draw_list(
    t: &Theme,
    items: &[Item<'_>],
    selected: Option<usize>,
    area: Rect,
    buf: &mut Buffer,
) {
    if area.height == 0 || area.width < 3 {
        return;
    }
    let mut start = Vec::with_capacity(items.len());
    let mut total = 0usize;
    let mut sel_item = None;
    let mut k = 0usize;
    for (i, it) in items.iter().enumerate() {
        start.push(total);
        total += it.lines.len();
        if it.selectable {
            if Some(k) == selected {
                sel_item = Some(i);
            }
            k += 1;
        }
    }
    let h = area.height as usize;
    let offset = match sel_item {
        Some(i) => {
            let end = start[i] + items[i].lines.len();
            end.saturating_sub(h).min(start[i])
        }
        None => 0,
    };
    let mut y = 0usize;
    let mut line_no = 0usize;
    for (i, it) in items.iter().enumerate() {
        for (j, l) in it.lines.iter().enumerate() {
            if line_no >= offset && y < h {
                let row = Rect::new(area.x, area.y + y as u16, area.width, 1);
                let is_sel = sel_item == Some(i);
                let gutter = if is_sel && j == 0 {
                    t.glyphs().cursor
                } else {
                    " "
                };
                if it.selectable {
                    buf.set_stringn(row.x, row.y, gutter, 1, t.style(Role::Key));
                    buf.set_line(row.x + 2, row.y, l, row.width.saturating_sub(2));
                } else {
                    buf.set_line(row.x, row.y, l, row.width);
                }
                if is_sel {
                    buf.set_style(row, t.style(Role::Selected));
                }
                y += 1;
            }
            line_no += 1;
        }
    }
    if total > offset + h {
        let more = format!(" {} ", strings::more_below(total - offset - h));
        let w = width(&more) as u16;
        let y = area.y + area.height - 1;
        let blank = area.width > w
            && (area.x + area.width - w..area.x + area.width).all(|x| buf[(x, y)].symbol() == " ");
        if blank {
            buf.set_string(
                area.x + area.width - w,
                area.y + area.height - 1,
                more,
                t.style(Role::Muted),
            );
        }
    }
}

/// Centered rectangle of at most `w` x `h` inside `area`.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub(crate) fn styled(s: impl Into<String>, st: Style) -> Span<'static> {
    let s: String = s.into();
    Span::styled(crate::term::visible(&s).into_owned(), st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_pad_wrap() {
        assert_eq!(fit("abcdef", 4, "…"), "abc…");
        assert_eq!(fit("abcdef", 4, "..."), "a...");
        assert_eq!(fit("abc", 4, "…"), "abc");
        assert_eq!(pad("ab", 4, "…"), "ab  ");
        assert_eq!(rpad("ab", 4, "…"), "  ab");
        assert_eq!(wrap("one two three", 7), vec!["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    }
}
