//! What a destructive step will change, inside its typed confirmation: the
//! rows a swap would discard (live vs restored, measured by the engine
//! before it asks) or a merge would insert first, then the exact commands. Draws from `&Model`
//! data only; lines wrap, and a cut is said in words, never silent.

use ratatui::text::Line;

use super::{styled, wrap};
use crate::tui::model::Model;
use crate::tui::strings;
use crate::tui::theme::Role;

/// Command lines shown when a step has no consequence lines.
const COMMANDS_SHOWN: usize = 6;

/// How a preview line reads: a consequence (discarded rows, nothing
/// discarded, the way to keep them) or a command that runs.
fn role_of(line: &str) -> Option<Role> {
    let l = line.trim_start();
    if line.starts_with("THE SWAP WOULD DISCARD")
        || (line.starts_with("  ") && l.contains(" row(s) ("))
        || (line.starts_with("  ")
            && (l.contains(", to insert ")
                || l.contains("REPLACED WHOLE")
                || l.starts_with("FOREIGN KEY VIOLATION")))
    {
        Some(Role::Warn)
    } else if line.starts_with("merge from '") {
        // A merge's measured preview (actions::data::merge::preview_lines).
        Some(Role::Info)
    } else if l.starts_with("the swap discards no row") || l.starts_with("no live database") {
        Some(Role::Ok)
    } else if l.starts_with("to keep them") || l.starts_with("could not count") {
        Some(Role::Info)
    } else {
        None
    }
}

/// A restore's backup (the candidate of the last pick whose path the
/// restore's preview checks first) with its time and loss, in words.
fn restore_consequence(m: &Model, changes: &[String]) -> Option<String> {
    let pick = super::backups::last_pick(m)?;
    let c = pick.candidates.iter().find(|c| {
        let checked = format!("check {} first", c.path);
        changes.iter().any(|l| l.contains(&checked))
    })?;
    let taken = c
        .taken_at
        .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| strings::TAKEN_UNKNOWN.to_string());
    Some(strings::restores_backup(&c.name, &taken, c.rpo_s))
}

/// The "what this will do" block for `changes` at width `w`, in at most
/// `room` lines (0: none). Consequences come before commands, so a short
/// popup still shows what would be thrown away.
pub(crate) fn change_lines(
    m: &Model,
    changes: &[String],
    w: usize,
    room: usize,
) -> Vec<Line<'static>> {
    let t = &m.theme;
    if changes.is_empty() || room < 2 {
        return Vec::new();
    }
    let mut body: Vec<Line<'static>> = Vec::new();
    if let Some(r) = restore_consequence(m, changes) {
        for l in wrap(&r, w) {
            body.push(Line::from(styled(l, t.style(Role::Warn))));
        }
    }
    for (c, role) in changes.iter().filter_map(|c| role_of(c).map(|r| (c, r))) {
        for l in wrap(c, w) {
            body.push(Line::from(styled(l, t.style(role))));
        }
    }
    // The commands in full are the Runbook view's "Exactly what runs"; here
    // they come only when there is no consequence to read first.
    let mut commands: Vec<Line<'static>> = Vec::new();
    for c in changes.iter().filter(|c| role_of(c).is_none()) {
        for l in wrap(&format!("$ {c}"), w) {
            commands.push(Line::from(styled(l, t.style(Role::Muted))));
        }
    }
    if body.is_empty() && commands.len() <= COMMANDS_SHOWN {
        body = commands;
    } else if body.is_empty() {
        let more = commands.len() - COMMANDS_SHOWN + 1;
        body = commands;
        body.truncate(COMMANDS_SHOWN - 1);
        body.push(Line::from(styled(
            strings::confirm_more(more),
            t.style(Role::Muted),
        )));
    } else if !commands.is_empty() {
        for l in wrap(strings::CONFIRM_COMMANDS_ELSEWHERE, w) {
            body.push(Line::from(styled(l, t.style(Role::Muted))));
        }
    }
    let mut out = vec![Line::from(styled(
        strings::CONFIRM_CHANGES,
        t.style(Role::Title),
    ))];
    let fits = room - 1;
    if body.len() > fits {
        let keep = fits.saturating_sub(1);
        let more = body.len() - keep;
        body.truncate(keep);
        body.push(Line::from(styled(
            strings::confirm_more(more),
            t.style(Role::Muted),
        )));
    }
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line<'static>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.to_string()).collect())
            .collect()
    }

    fn swap_preview() -> Vec<String> {
        vec![
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()".into(),
            "ALTER DATABASE \"shop\" RENAME TO \"shop__damaged_x\"".into(),
            "ALTER DATABASE \"shop_copy\" RENAME TO \"shop\"".into(),
            "THE SWAP WOULD DISCARD rows written after the backup (kept only in the damaged copy):".into(),
            "  public.\"Orders\": 5 row(s) (live rows whose key the restored copy lacks)".into(),
            "to keep them, do not swap: merge only the damaged tables back with a merge-tables step (runbook 'table-wiped')".into(),
        ]
    }

    #[test]
    fn discarded_rows_come_first_and_survive_a_short_popup() {
        let m = Model::new(chrono::Utc::now());
        let all = text(&change_lines(&m, &swap_preview(), 200, 40));
        assert_eq!(all[0], strings::CONFIRM_CHANGES);
        assert!(all[1].starts_with("THE SWAP WOULD DISCARD"), "{all:?}");
        assert!(all[2].contains("\"Orders\": 5 row(s)"), "{all:?}");
        assert!(all[3].starts_with("to keep them"), "{all:?}");
        assert_eq!(all[4], strings::CONFIRM_COMMANDS_ELSEWHERE, "{all:?}");
        assert_eq!(all.len(), 5);
        // Four lines of room: the discard and the count stay, the cut is said.
        let short = text(&change_lines(&m, &swap_preview(), 200, 4));
        assert_eq!(short.len(), 4);
        assert!(short[2].contains("5 row(s)"), "{short:?}");
        assert!(short[3].contains("2 more line(s)"), "{short:?}");
        // A step with no consequence lines shows its commands, at most six.
        let cmds: Vec<String> = (1..=9).map(|i| format!("command {i}")).collect();
        let c = text(&change_lines(&m, &cmds, 200, 40));
        assert_eq!(c.len(), 7, "{c:?}");
        assert_eq!(c[1], "$ command 1");
        assert!(c[6].contains("4 more line(s)"), "{c:?}");
        // A merge: what it inserts per table comes first, not behind the
        // commands (the lab's wrong-database hid it as "6 more line(s)").
        let mut merge: Vec<String> = (1..=5).map(|i| format!("command {i}")).collect();
        merge.push("merge from 'shop__restore_x' into 'shop' (one transaction: all or nothing), in this order:".into());
        merge.push("  public.User: live 0, restored 225, to insert 225, in conflict 0 (0 differ; live row wins), live-only 0 (kept)".into());
        merge.push("    FOREIGN KEY VIOLATION expected: GameRequest_senderId_fkey".into());
        let g = text(&change_lines(&m, &merge, 200, 40));
        assert!(g[1].starts_with("merge from 'shop__restore_x'"), "{g:?}");
        assert!(g[2].contains("to insert 225"), "{g:?}");
        assert!(g[3].contains("FOREIGN KEY VIOLATION"), "{g:?}");
        assert_eq!(g[4], strings::CONFIRM_COMMANDS_ELSEWHERE, "{g:?}");
        // A restore names its backup and the changes it loses first.
        let m = crate::tui::demo::model(chrono::Utc::now());
        let pick = super::super::backups::last_pick(&m).unwrap();
        let c = pick
            .candidates
            .iter()
            .find(|c| c.path == pick.chosen)
            .unwrap();
        let restore = vec![
            format!(
                "on box (local): check {} first (format, pg_dump trailer)",
                c.path
            ),
            "CREATE DATABASE \"shop__restore_x\" on 127.0.0.1:5432".to_string(),
        ];
        let r = text(&change_lines(&m, &restore, 200, 40));
        assert!(
            r[1].starts_with(&format!("RESTORES {}, taken ", c.name))
                && r[1].contains(": loses 2 d 5 h of changes"),
            "{r:?}"
        );
        assert_eq!(r[2], strings::CONFIRM_COMMANDS_ELSEWHERE, "{r:?}");
        // Another path (not a candidate of the pick): no such line.
        let other = vec!["on box (local): check /elsewhere.dump first".to_string()];
        assert_eq!(
            text(&change_lines(&m, &other, 200, 40))[1],
            "$ on box (local): check /elsewhere.dump first"
        );
        // No room, no block; nothing to show, no block.
        assert!(change_lines(&m, &swap_preview(), 200, 1).is_empty());
        assert!(change_lines(&m, &[], 200, 40).is_empty());
    }
}
