//! The migration history popup: per migration table of the selected
//! database, the applied migrations with their times (oldest first), runs
//! applied at once flagged first. Draws from `&Model` only; names arrive
//! escaped and capped (crate::migrations) and are never cut further.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Widget};

use super::{centered, frame_block, styled, wrap};
use crate::tui::model::{DatabaseState, Model};
use crate::tui::strings;
use crate::tui::theme::Role;

/// The popup's lines at inner width `w` (pure: tests read them).
pub(crate) fn migration_lines(m: &Model, d: &DatabaseState, w: usize) -> Vec<Line<'static>> {
    let t = &m.theme;
    let g = t.glyphs();
    let mut out = Vec::new();
    let push = |out: &mut Vec<Line<'static>>, indent: usize, text: &str, role: Role| {
        let pad = " ".repeat(indent);
        for l in wrap(text, w.saturating_sub(indent).max(10)) {
            out.push(Line::from(styled(format!("{pad}{l}"), t.style(role))));
        }
    };
    if d.migrations.is_empty() {
        let text = if d.identity.is_some() {
            strings::NO_MIGRATION_TABLE
        } else {
            strings::MIGRATIONS_NOT_READ
        };
        push(&mut out, 0, text, Role::Muted);
    }
    for (i, mg) in d.migrations.iter().enumerate() {
        if i > 0 {
            out.push(Line::raw(""));
        }
        let tool = mg.tool.map(|t| t.as_str()).unwrap_or("migrations");
        let (total, shown) = mg
            .history
            .as_ref()
            .map(|h| (h.total, h.applied.len()))
            .unwrap_or((mg.count.unwrap_or(0), 0));
        out.push(Line::from(styled(
            strings::migrations_head(tool, &mg.table, total, shown),
            t.style(Role::Title),
        )));
        if let Some(e) = &mg.error {
            push(&mut out, 2, &format!("{} {e}", g.bad), Role::Bad);
        }
        if let Some(f) = &mg.flagged {
            push(&mut out, 2, &format!("{} {f}", g.alert), Role::Warn);
        }
        let Some(h) = &mg.history else { continue };
        for r in &h.runs {
            let role = if r.reapplied { Role::Bad } else { Role::Warn };
            push(
                &mut out,
                2,
                &format!(
                    "{} {}",
                    g.alert,
                    strings::migration_run(r.reapplied, &r.why)
                ),
                role,
            );
        }
        if let Some(n) = &h.note {
            push(&mut out, 2, n, Role::Muted);
        }
        for a in &h.applied {
            let in_run = a
                .applied_at
                .is_some_and(|at| h.runs.iter().any(|r| r.first_at <= at && at <= r.last_at));
            let when = a
                .applied_at
                .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| strings::NO_TIME.to_string());
            let mark = if in_run { g.alert } else { " " };
            push(
                &mut out,
                2,
                &format!("{mark} {when}  {}", a.name),
                if in_run { Role::Warn } else { Role::Normal },
            );
        }
    }
    out
}

/// The migration history over the view (scrolls; Esc closes).
pub fn popup(m: &Model, scroll: usize, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let r = centered(
        area,
        area.width.saturating_sub(4).min(120),
        area.height.saturating_sub(2),
    );
    Clear.render(r, buf);
    let db =
        m.ui.selected_db
            .as_ref()
            .and_then(|n| m.databases.iter().find(|d| &d.name == n));
    let title = match db {
        Some(d) => strings::migrations_title(&d.name),
        None => strings::migrations_title("-"),
    };
    let block = frame_block(t, format!(" {title} ")).title_bottom(Line::from(styled(
        format!(" {} ", strings::CLOSE_HINT),
        t.style(Role::Muted),
    )));
    let inner = block.inner(r);
    block.render(r, buf);
    let w = inner.width.saturating_sub(2) as usize;
    let lines = match db {
        Some(d) => migration_lines(m, d, w),
        None => vec![Line::from(styled(
            strings::NO_DB_SELECTED,
            t.style(Role::Muted),
        ))],
    };
    super::scrolled_lines(t, r, inner, &lines, scroll, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line<'static>]) -> String {
        lines
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_reapplied_run_is_flagged_above_every_migration_and_names_stay_escaped() {
        let mut m = Model::new(chrono::Utc::now());
        crate::tui::demo::migration_history(&mut m);
        let d = m.databases[0].clone();
        let all = text(&migration_lines(&m, &d, 70));
        let run = all.find("RE-APPLIED: 22 migrations applied within the same second");
        let first = all.find("20230105120000_init");
        assert!(run.is_some() && first.is_some() && run < first, "{all}");
        assert!(all.contains("keeps no time"), "{all}");
        assert!(all.contains("\\x1b[31m"), "escaped, not sent raw:\n{all}");
        assert!(!all.chars().any(|c| c.is_control() && c != '\n'), "{all}");
        for l in migration_lines(&m, &d, 70) {
            let w: usize = l
                .spans
                .iter()
                .map(|s| super::super::width(&s.content))
                .sum();
            assert!(w <= 70, "{w}");
        }
    }
}
