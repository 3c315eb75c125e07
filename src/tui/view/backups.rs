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

/// What the last finished pick-backup step said, with the operator's
/// latest choice after it (a `backup-chosen` record of that step).
#[derive(Debug, Clone)]
pub(crate) struct Picked {
    pub seq: u64,
    pub step: String,
    /// Path of the backup the restore reads (the choice, else the pick's).
    pub chosen: String,
    /// Path the pick preselected.
    pub preselected: String,
    /// The operator's reason, when they chose another one.
    pub reason: Option<String>,
    pub incident_at: Option<DateTime<Utc>>,
    pub candidates: Vec<BackupCandidate>,
}

/// The newest `step-finished` record of a pick-backup step, if any.
pub(crate) fn last_pick(m: &Model) -> Option<Picked> {
    let (i, r) = m.journal.iter().enumerate().rev().find(|(_, r)| {
        r.kind == kinds::STEP_FINISHED
            && r.data.get("action").and_then(Value::as_str) == Some("pick-backup")
    })?;
    let candidates = r
        .data
        .get("candidates")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let preselected = r
        .data
        .pointer("/backup/path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let choice = m
        .journal
        .iter()
        .skip(i + 1)
        .rev()
        .find(|c| c.kind == crate::engine::driver::kinds::BACKUP_CHOSEN && c.step == r.step);
    Some(Picked {
        seq: r.seq,
        step: r.step.clone().unwrap_or_default(),
        chosen: choice
            .and_then(|c| c.data.pointer("/chosen/path").and_then(Value::as_str))
            .map(str::to_string)
            .unwrap_or_else(|| preselected.clone()),
        preselected,
        reason: choice.and_then(|c| {
            c.data
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string)
        }),
        incident_at: r
            .data
            .get("incident_at")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok()),
        candidates,
    })
}

/// The candidates in the panel's order: the one the restore reads first,
/// then the eligible, then the excluded (the cursor indexes this order).
pub(crate) fn order(p: &Picked, sort: usize) -> Vec<&BackupCandidate> {
    let mut order: Vec<&BackupCandidate> = p.candidates.iter().collect();
    match sort {
        1 => order.sort_by(|a, b| {
            b.taken_at
                .cmp(&a.taken_at)
                .then_with(|| a.name.cmp(&b.name))
        }),
        2 => order.sort_by(|a, b| a.name.cmp(&b.name)),
        3 => order.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name))),
        _ => order.sort_by_key(|c| (c.path != p.chosen, c.excluded.is_some())),
    }
    order
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
#[cfg(test)]
pub(crate) fn backup_lines(m: &Model, p: &Picked, w: usize) -> Vec<Line<'static>> {
    backup_lines_at(m, p, w, None).0
}

/// The panel's lines with the candidate at `cursor` marked, and the first
/// line of each candidate (in [`order`]).
pub(crate) fn backup_lines_at(
    m: &Model,
    p: &Picked,
    w: usize,
    cursor: Option<usize>,
) -> (Vec<Line<'static>>, Vec<usize>) {
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
    let mut starts = Vec::new();
    for (n, c) in order(p, m.ui.backup_sort).into_iter().enumerate() {
        out.push(Line::raw(""));
        starts.push(out.len());
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
        let here = cursor == Some(n);
        let pointer = if here {
            format!("{} ", strings::CURSOR_MARK)
        } else if cursor.is_some() {
            "  ".to_string()
        } else {
            String::new()
        };
        let name_role = if here { Role::Selected } else { Role::Title };
        out.push(Line::from(vec![
            styled(pointer, t.style(Role::Key)),
            styled(mark, t.style(role)),
            styled(c.name.clone(), t.style(name_role)),
        ]));
        if chosen && let Some(why) = &p.reason {
            push(&mut out, 4, &strings::chosen_by_you(why), Role::Ok);
        }
        if c.path == p.preselected && p.preselected != p.chosen {
            push(&mut out, 4, strings::PRESELECTED, Role::Muted);
        }
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
    (out, starts)
}

/// The backup panel over the view (scrolls; the cursor's candidate stays
/// on screen; Esc closes).
pub fn popup(m: &Model, scroll: usize, cursor: usize, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let r = centered(
        area,
        area.width.saturating_sub(4).min(120),
        area.height.saturating_sub(2),
    );
    Clear.render(r, buf);
    let title = match m.ui.backup_sort {
        0 => format!(" {} ", strings::BACKUPS_TITLE),
        k => format!(
            " {} · {} ",
            strings::BACKUPS_TITLE,
            strings::sorted_by(strings::SORT_BACKUPS[k % strings::SORT_BACKUPS.len()])
        ),
    };
    let block = frame_block(t, title).title_bottom(Line::from(styled(
        format!(" {} ", strings::BACKUPS_HINT),
        t.style(Role::Muted),
    )));
    let inner = block.inner(r);
    block.render(r, buf);
    let w = inner.width.saturating_sub(2) as usize;
    let (lines, first) = match last_pick(m) {
        Some(p) => {
            let n = p.candidates.len();
            let (lines, starts) = backup_lines_at(m, &p, w, Some(cursor.min(n.saturating_sub(1))));
            // The cursor's candidate is on screen: from its first line to
            // the next candidate's.
            let h = inner.height as usize;
            let c = cursor.min(n.saturating_sub(1));
            let first = match (starts.get(c), starts.get(c + 1)) {
                (Some(&a), next) => {
                    let end = next.map(|e| e - 1).unwrap_or(lines.len());
                    if a < scroll {
                        a.saturating_sub(1)
                    } else if end > scroll + h {
                        (end.saturating_sub(h)).min(a.saturating_sub(1))
                    } else {
                        scroll
                    }
                }
                _ => scroll,
            };
            (lines, first)
        }
        None => (
            vec![Line::from(styled(
                strings::NO_PICK_YET,
                t.style(Role::Muted),
            ))],
            scroll,
        ),
    };
    super::scrolled_lines(t, r, inner, &lines, first, buf);
}

/// What a restore's confirmation says of the backup it reads: the name,
/// when it was taken, the changes and rows lost per table, who chose it.
pub(crate) fn stake_lines(
    m: &Model,
    b: &crate::engine::types::BackupAtStake,
    w: usize,
) -> Vec<Line<'static>> {
    let t = &m.theme;
    let mut out = Vec::new();
    let mut push = |text: &str, role: Role| {
        for l in wrap(text, w.max(10)) {
            out.push(Line::from(styled(l, t.style(role))));
        }
    };
    let taken = match b.taken_at {
        Some(at) => format!(
            "{} ({})",
            at.format("%Y-%m-%d %H:%M:%S UTC"),
            time_source(&b.time_source)
        ),
        None => strings::TAKEN_UNKNOWN.to_string(),
    };
    push(&strings::stake_backup(&b.name, &taken), Role::Title);
    match &b.reason {
        Some(why) => push(&strings::chosen_by_you(why), Role::Ok),
        None => push(strings::PRESELECTED, Role::Muted),
    }
    if let Some(rpo) = b.rpo_s {
        push(&strings::loses(rpo), Role::Warn);
    }
    if !b.rows_known {
        push(strings::STAKE_ROWS_UNKNOWN, Role::Warn);
    } else if b.rows_lost.is_empty() {
        push(strings::STAKE_ROWS_NONE, Role::Ok);
    } else {
        let list: Vec<String> = b
            .rows_lost
            .iter()
            .map(|(t, n)| format!("{t} {}", strings::count(*n as i64)))
            .collect();
        push(&strings::stake_rows_lost(&list.join(", ")), Role::Warn);
    }
    let others = b.eligible.iter().filter(|e| e.name != b.name).count();
    if others > 0 {
        push(&strings::stake_others(others), Role::Info);
    }
    out
}

/// The popup of a choice being made: the reason, then for a suspect
/// candidate its name typed again.
#[allow(clippy::too_many_arguments)]
pub fn choose_popup(
    m: &Model,
    name: &str,
    suspect: Option<&str>,
    reason: &str,
    typed: Option<&str>,
    error: Option<&str>,
    area: Rect,
    buf: &mut Buffer,
) {
    let t = &m.theme;
    let w = area.width.saturating_sub(4).min(90);
    let inner_w = w.saturating_sub(4) as usize;
    let preselected = m
        .pending
        .as_ref()
        .and_then(|p| p.backup.as_ref())
        .map(|b| b.name.clone())
        .unwrap_or_default();
    let mut lines: Vec<Line<'static>> = Vec::new();
    let text = |s: &str, role: Role, lines: &mut Vec<Line<'static>>| {
        for l in wrap(s, inner_w) {
            lines.push(Line::from(styled(l, t.style(role))));
        }
    };
    text(
        &strings::choose_what(name, &preselected),
        Role::Title,
        &mut lines,
    );
    lines.push(Line::raw(""));
    text(strings::CHOOSE_REASON, Role::Normal, &mut lines);
    let input = |s: &str, active: bool| {
        Line::from(vec![
            styled("> ", t.style(Role::Key)),
            styled(s.to_string(), t.style(Role::Input)),
            styled(if active { "_" } else { "" }, t.style(Role::Key)),
        ])
    };
    lines.push(input(reason, typed.is_none()));
    if let (Some(why), Some(typed)) = (suspect, typed) {
        lines.push(Line::raw(""));
        text(&strings::choose_suspect(why, name), Role::Warn, &mut lines);
        lines.push(input(typed, true));
    }
    if let Some(e) = error {
        lines.push(Line::raw(""));
        text(e, Role::Bad, &mut lines);
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = centered(area, w, h);
    Clear.render(r, buf);
    let block = frame_block(t, format!(" {} ", strings::CHOOSE_TITLE)).title_bottom(Line::from(
        styled(format!(" {} ", strings::CHOOSE_HINT), t.style(Role::Muted)),
    ));
    let inner = block.inner(r);
    block.render(r, buf);
    super::scrolled_lines(t, r, inner, &lines, 0, buf);
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
