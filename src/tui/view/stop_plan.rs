//! The stop plan checklist popup: every item stop-services will stop (ticked)
//! or leave, each with its evidence; locked items (not part of this drill,
//! the database server) dimmed with why. Draws from `&Model` only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use super::{Item, centered, draw_list, fit, frame_block, styled, wrap};
use crate::tui::model::Model;
use crate::tui::stop_plan::Checklist;
use crate::tui::strings;
use crate::tui::theme::Role;

fn row_item(m: &Model, c: &Checklist, i: usize, w: usize) -> Item<'static> {
    let t = &m.theme;
    let g = t.glyphs();
    let r = &c.plan.rows[i];
    let ticked = c.ticked[i];
    let dim = r.locked.is_some();
    let main = if dim {
        Role::Muted
    } else if ticked {
        Role::Title
    } else {
        Role::Normal
    };
    let mut spans: Vec<Span<'static>> = vec![
        styled(
            if ticked { "[x] " } else { "[ ] " },
            t.style(if dim { Role::Muted } else { Role::Key }),
        ),
        styled(
            fit(
                &format!("{} on {}", r.name, r.host),
                w.saturating_sub(24),
                g.ellipsis,
            ),
            t.style(main),
        ),
        styled(format!("  {}", r.kind), t.style(Role::Muted)),
    ];
    // The pid or unit tells apart items of the same name (two copies of a script).
    if let Some(sel) = r.selector.as_deref().filter(|s| *s != r.name) {
        spans.push(styled(format!("  {sel}"), t.style(Role::Muted)));
    }
    if ticked != r.stop {
        spans.push(styled(
            format!("  {}", strings::STOP_PLAN_EDITED),
            t.style(Role::Warn),
        ));
    }
    let mut lines = vec![Line::from(spans)];
    for l in wrap(&r.why, w.saturating_sub(6)) {
        lines.push(Line::from(vec![
            Span::raw("    "),
            styled(l, t.style(Role::Muted)),
        ]));
    }
    if let Some(why) = &r.locked {
        lines.push(Line::from(vec![
            Span::raw("    "),
            styled(
                fit(why, w.saturating_sub(6), g.ellipsis),
                t.style(Role::Muted),
            ),
        ]));
    }
    Item::row(lines)
}

/// Draws the checklist over `area`.
pub fn checklist(m: &Model, area: Rect, buf: &mut Buffer) {
    let Some(c) = &m.stop_plan else {
        return;
    };
    let t = &m.theme;
    let r = centered(
        area,
        area.width.saturating_sub(4).min(120),
        area.height.saturating_sub(2),
    );
    Clear.render(r, buf);
    let block =
        frame_block(t, format!(" {} ", strings::STOP_PLAN_TITLE)).title_bottom(Line::from(styled(
            format!(" {} ", strings::STOP_PLAN_HINT),
            t.style(Role::Muted),
        )));
    let inner = block.inner(r);
    block.render(r, buf);
    if inner.height < 3 || inner.width < 10 {
        return;
    }
    let w = inner.width as usize;
    let head = strings::stop_plan_heading(
        &c.plan.step,
        c.plan.database.as_deref(),
        c.to_stop(),
        c.plan.rows.len(),
    );
    buf.set_line(
        inner.x + 1,
        inner.y,
        &Line::from(styled(
            fit(&head, w - 2, t.glyphs().ellipsis),
            t.style(Role::Title),
        )),
        inner.width - 1,
    );
    let mut list = Rect::new(inner.x, inner.y + 1, inner.width, inner.height - 1);
    if c.confirming {
        let e = c.edits();
        let q = strings::stop_plan_confirm(c.to_stop(), e.add.len() + e.remove.len());
        let y = inner.y + inner.height - 1;
        buf.set_line(
            inner.x + 1,
            y,
            &Line::from(styled(
                fit(&q, w - 2, t.glyphs().ellipsis),
                t.style(Role::Warn),
            )),
            inner.width - 1,
        );
        list.height -= 1;
    }
    let items: Vec<Item<'static>> = (0..c.plan.rows.len())
        .map(|i| row_item(m, c, i, w.saturating_sub(2)))
        .collect();
    draw_list(t, &items, Some(c.cursor), list, buf);
}
