//! The backup panel: every candidate the last pick-backup step judged,
//! read from its journal record (time and where the time came from, size,
//! checksum, content label and why, rows per table, changes lost in human
//! units, the exclusion reason in full). Draws from `&Model` only; lines
//! wrap and the popup scrolls, nothing is cut.

use chrono::{DateTime, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Widget};
use serde_json::Value;

use super::{centered, frame_block, styled, wrap};
use crate::engine::types::BackupCandidate;
use crate::journal::kinds;
use crate::tui::model::Model;
use crate::tui::strings;
use crate::tui::theme::Role;

/// What the last finished pick-backup step said.
#[derive(Debug, Clone)]
pub(crate) struct Picked {
    pub seq: u64,
    pub step: String,
    pub chosen: String,
    pub incident_at: Option<DateTime<Utc>>,
    pub candidates: Vec<BackupCandidate>,
}

/// The newest `step-finished` record of a pick-backup step, if any.
pub(crate) fn last_pick(m: &Model) -> Option<Picked> {
    let r = m.journal.iter().rev().find(|r| {
        r.kind == kinds::STEP_FINISHED
            && r.data.get("action").and_then(Value::as_str) == Some("pick-backup")
    })?;
    let candidates = r
        .data
        .get("candidates")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    Some(Picked {
        seq: r.seq,
        step: r.step.clone().unwrap_or_default(),
        chosen: r
            .data
            .pointer("/backup/path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        incident_at: r
            .data
            .get("incident_at")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok()),
        candidates,
    })
}

fn time_source(s: &str) -> &str {
    match s {
        "name" => strings::FROM_NAME,
        "header" => strings::FROM_HEADER,
        "mtime" => strings::FROM_MTIME,
        other => other,
    }
}

/// The panel's lines at inner width `w` (pure: tests read them).
pub(crate) fn backup_lines(m: &Model, p: &Picked, w: usize) -> Vec<Line<'static>> {
    let t = &m.theme;
    let g = t.glyphs();
    let mut out = Vec::new();
    let push = |out: &mut Vec<Line<'static>>, indent: usize, text: &str, role: Role| {
        let pad = " ".repeat(indent);
        for l in wrap(text, w.saturating_sub(indent).max(10)) {
            out.push(Line::from(styled(format!("{pad}{l}"), t.style(role))));
        }
    };
    push(
        &mut out,
        0,
        &strings::backups_head(
            p.candidates.len(),
            &p.step,
            p.seq,
            p.incident_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        ),
        Role::Normal,
    );
    if p.candidates.is_empty() {
        push(&mut out, 0, strings::NO_CANDIDATES, Role::Muted);
    }
    // The chosen one first, then the eligible, then the excluded.
    let mut order: Vec<&BackupCandidate> = p.candidates.iter().collect();
    order.sort_by_key(|c| (c.path != p.chosen, c.excluded.is_some()));
    for c in order {
        out.push(Line::raw(""));
        let chosen = c.path == p.chosen;
        let (mark, role) = if chosen {
            (format!("{} {} ", g.ok, strings::CHOSEN), Role::Ok)
        } else if c.excluded.is_some() {
            (format!("{} {} ", g.bad, strings::EXCLUDED), Role::Bad)
        } else {
            (
                format!("{} {} ", g.pending, strings::ELIGIBLE),
                Role::Normal,
            )
        };
        out.push(Line::from(vec![
            styled(mark, t.style(role)),
            styled(c.name.clone(), t.style(Role::Title)),
        ]));
        if let Some(why) = &c.excluded {
            push(&mut out, 4, &strings::excluded_because(why), Role::Bad);
        }
        let taken = match c.taken_at {
            Some(at) => format!(
                "{} ({})",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                time_source(&c.time_source)
            ),
            None => strings::TAKEN_UNKNOWN.to_string(),
        };
        let mut facts = vec![
            format!("{} {taken}", strings::TAKEN),
            strings::bytes(c.size),
        ];
        if let Some(h) = &c.sha256 {
            facts.push(format!("sha256 {}", h.chars().take(16).collect::<String>()));
        }
        push(&mut out, 4, &facts.join("  ·  "), Role::Normal);
        if let Some(rpo) = c.rpo_s {
            push(&mut out, 4, &strings::loses(rpo), Role::Warn);
        }
        if let Some(label) = &c.label {
            let text = match &c.label_why {
                Some(why) => format!("{}: {label} ({why})", strings::CONTENT),
                None => format!("{}: {label}", strings::CONTENT),
            };
            let role = if label == "healthy" {
                Role::Ok
            } else {
                Role::Warn
            };
            push(&mut out, 4, &text, role);
        }
        if let Some(rows) = c.rows.as_ref().filter(|r| !r.is_empty()) {
            let list: Vec<String> = rows
                .iter()
                .map(|(t, n)| format!("{t} {}", strings::count(*n as i64)))
                .collect();
            push(
                &mut out,
                4,
                &format!("{}: {}", strings::ROWS_PER_TABLE, list.join(", ")),
                Role::Muted,
            );
        }
        push(&mut out, 4, &c.path, Role::Muted);
    }
    out
}

/// The backup panel over the view (scrolls; Esc closes).
pub fn popup(m: &Model, scroll: usize, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let r = centered(
        area,
        area.width.saturating_sub(4).min(120),
        area.height.saturating_sub(2),
    );
    Clear.render(r, buf);
    let block = frame_block(t, format!(" {} ", strings::BACKUPS_TITLE)).title_bottom(Line::from(
        styled(format!(" {} ", strings::CLOSE_HINT), t.style(Role::Muted)),
    ));
    let inner = block.inner(r);
    block.render(r, buf);
    let w = inner.width.saturating_sub(2) as usize;
    let lines = match last_pick(m) {
        Some(p) => backup_lines(m, &p, w),
        None => vec![Line::from(styled(
            strings::NO_PICK_YET,
            t.style(Role::Muted),
        ))],
    };
    super::scrolled_lines(t, r, inner, &lines, scroll, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::demo::Chain;
    use serde_json::json;

    pub(crate) fn pick_record(m: &mut Model) {
        let mut c = Chain::new("x");
        let mut r = c.record(
            m.now,
            kinds::STEP_FINISHED,
            Some("pick"),
            Some("main"),
            None,
            None,
            "picked nightly-1100.dump",
            json!({
                "action": "pick-backup",
                "backup": {"name": "nightly-1100.dump", "path": "/b/nightly-1100.dump"},
                "incident_at": "2026-12-10T12:42:00Z",
                "rpo_s": 6120,
                "candidates": [
                    {"name": "nightly-1100.dump", "path": "/b/nightly-1100.dump",
                     "taken_at": "2026-12-10T11:00:00Z", "time_source": "name",
                     "size": 2_100_000, "sha256": "930ab287062fd8f1e6671ceb", "rpo_s": 6120,
                     "excluded": null, "label": "healthy", "label_why": "every table has rows",
                     "rows": {"public.User": 22, "public.GameRequest": 171}},
                    {"name": "sync-1245.sql", "path": "/b/sync-1245.sql",
                     "taken_at": "2026-12-10T12:45:00Z", "time_source": "header",
                     "size": 900, "sha256": null, "rpo_s": null,
                     "excluded": "taken after the incident (12:42:00): it holds the damage, User has 0 rows where the timeline counted 22",
                     "label": "after-damage", "label_why": "User 0 rows"}
                ]
            }),
        );
        r.seq = 9_000;
        m.journal.push(r);
    }

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
    fn every_candidate_with_its_time_source_label_loss_and_full_reason() {
        let mut m = Model::new(chrono::Utc::now());
        assert!(last_pick(&m).is_none());
        pick_record(&mut m);
        let p = last_pick(&m).unwrap();
        assert_eq!(p.candidates.len(), 2);
        let all = text(&backup_lines(&m, &p, 60));
        for want in [
            "2 candidate(s) judged by step 'pick'",
            "chosen nightly-1100.dump",
            "2026-12-10 11:00:00 UTC (from its name)",
            "loses 1 h 42 min of changes",
            "content: healthy (every table has rows)",
            "public.GameRequest 171",
            "excluded sync-1245.sql",
            "(from its dump header)",
            "content: after-damage",
        ] {
            assert!(all.contains(want), "{want}:\n{all}");
        }
        // The reason is whole, wrapped, never cut: its last words are there.
        assert!(all.contains("where the timeline counted 22"), "{all}");
        assert!(!all.contains("6120"), "no raw seconds:\n{all}");
        for l in backup_lines(&m, &p, 60) {
            let w: usize = l
                .spans
                .iter()
                .map(|s| super::super::width(&s.content))
                .sum();
            assert!(w <= 60, "{w}");
        }
    }
}
