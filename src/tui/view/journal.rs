//! Journal: every record, newest last, filterable with `/`; Enter opens
//! the details. Follows new records until the cursor moves up. Draws from
//! `&Model` only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Widget;

use super::{Item, draw_list, heading, hms, pad, styled};
use crate::journal::{Record, kinds};
use crate::tui::model::{Model, View};
use crate::tui::rows;
use crate::tui::strings;
use crate::tui::theme::Role;

pub struct JournalView<'a> {
    pub model: &'a Model,
}

pub(crate) fn kind_role(r: &Record) -> Role {
    match r.kind.as_str() {
        k if k == kinds::ALERT || k == kinds::STEP_FAILED || k == kinds::IDENTITY_CHANGED => {
            Role::Bad
        }
        k if k == kinds::TABLE_RECREATED || k == kinds::JOURNAL_REPAIRED => Role::Warn,
        k if k == kinds::STEP_FINISHED => Role::Ok,
        k if k == kinds::STEP_STARTED || k == kinds::CONFIRMED => Role::Running,
        k if k == kinds::NOTE => Role::Info,
        _ if r.exit.is_some_and(|e| e != 0) => Role::Bad,
        _ => Role::Normal,
    }
}

impl Widget for JournalView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let g = t.glyphs();
        let idx = rows::journal(m);
        let filter = rows::filter(m, View::Journal);
        let title = strings::journal_title(m.journal.len(), idx.len(), filter);
        heading(t, title).render(Rect::new(area.x, area.y, area.width, 1), buf);
        let list = Rect::new(
            area.x,
            area.y + 1,
            area.width,
            area.height.saturating_sub(1),
        );
        if m.journal.is_empty() {
            buf.set_string(list.x, list.y, strings::NO_RECORDS, t.style(Role::Muted));
            return;
        }
        let wide = area.width >= 120;
        let kind_w = if wide { 16 } else { 15 };
        let step_w = if wide { 16 } else { 10 };
        let target_w = if wide { 24 } else { 0 };
        // Only the rows that can be on screen are built.
        let h = list.height as usize;
        let sel = rows::cursor(m, View::Journal);
        let first = sel.saturating_sub(h.saturating_sub(1));
        let items: Vec<Item<'static>> = idx
            .iter()
            .skip(first)
            .take(h)
            .map(|i| {
                let r = &m.journal[*i];
                let mut spans = vec![
                    styled(format!("{:>4} ", r.seq), t.style(Role::Muted)),
                    styled(format!("{} ", hms(r.ts)), t.style(Role::Muted)),
                    styled(pad(&r.kind, kind_w, g.ellipsis), t.style(kind_role(r))),
                    styled(" ", t.style(Role::Normal)),
                    styled(
                        pad(r.step.as_deref().unwrap_or(""), step_w, g.ellipsis),
                        t.style(Role::Normal),
                    ),
                    styled(" ", t.style(Role::Normal)),
                ];
                if wide {
                    spans.push(styled(
                        pad(r.target.as_deref().unwrap_or(""), target_w, g.ellipsis),
                        t.style(Role::Muted),
                    ));
                    spans.push(styled(" ", t.style(Role::Normal)));
                }
                if let Some(e) = r.exit.filter(|e| *e != 0) {
                    spans.push(styled(format!("{} exit {e} ", g.bad), t.style(Role::Bad)));
                }
                spans.push(styled(r.summary.clone(), t.style(Role::Normal)));
                Item::row(vec![Line::from(spans)])
            })
            .collect();
        draw_list(t, &items, Some(sel - first), list, buf);
    }
}
