//! The plan popup: every step of a runbook before it starts (what it will
//! touch, what it runs, which steps ask for a typed confirmation), and the
//! suggested-runbook line of the runbook list. Draws from `&Model` only;
//! every long text wraps and the popup scrolls, nothing is cut.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Widget};

use super::{centered, frame_block, styled, wrap};
use crate::tui::model::Model;
use crate::tui::plan::{PlanPreview, suggest};
use crate::tui::strings;
use crate::tui::theme::{Role, Theme};

/// Wrapped lines of `text` with a hanging indent, in one role.
fn para(t: &Theme, out: &mut Vec<Line<'static>>, indent: usize, text: &str, w: usize, role: Role) {
    let pad = " ".repeat(indent);
    for l in wrap(text, w.saturating_sub(indent).max(10)) {
        out.push(Line::from(styled(format!("{pad}{l}"), t.style(role))));
    }
}

/// The lines of a plan at inner width `w` (pure: tests read them).
pub(crate) fn plan_lines(m: &Model, p: &PlanPreview, w: usize) -> Vec<Line<'static>> {
    let t = &m.theme;
    let mut out = Vec::new();
    para(t, &mut out, 0, &p.title, w, Role::Title);
    if !p.refused.is_empty() {
        for l in &p.refused {
            para(t, &mut out, 0, l, w, Role::Bad);
        }
        return out;
    }
    para(
        t,
        &mut out,
        0,
        &strings::plan_summary(
            p.steps.len(),
            p.destructive(),
            p.acting(),
            p.database.as_deref(),
        ),
        w,
        Role::Normal,
    );
    if let Some(s) = suggest(m).filter(|s| s.runbook == p.runbook) {
        para(
            t,
            &mut out,
            0,
            &strings::suggested(&s.reason),
            w,
            Role::Info,
        );
    }
    for n in &p.notes {
        para(t, &mut out, 0, n, w, Role::Warn);
    }
    for (i, s) in p.steps.iter().enumerate() {
        out.push(Line::raw(""));
        let mut head = vec![
            styled(format!("{:>2}. ", i + 1), t.style(Role::Muted)),
            styled(s.id.clone(), t.style(Role::Title)),
            styled(format!("  {}", s.action), t.style(Role::Muted)),
        ];
        if s.destructive {
            head.push(styled(
                format!("  {} ", strings::DESTRUCTIVE),
                t.badge(Role::Warn),
            ));
        }
        out.push(Line::from(head));
        para(t, &mut out, 4, s.explain.trim(), w, Role::Normal);
        if let Some(target) = &s.target {
            para(
                t,
                &mut out,
                4,
                &format!("{}: {target}", strings::PLAN_TARGET),
                w,
                Role::Normal,
            );
        }
        if !s.requires.is_empty() {
            para(
                t,
                &mut out,
                4,
                &format!("{}: {}", strings::PLAN_REQUIRES, s.requires.join(", ")),
                w,
                Role::Muted,
            );
        }
        for cmd in &s.preview {
            para(
                t,
                &mut out,
                4,
                &format!("{} $ {cmd}", strings::PLAN_RUNS),
                w,
                Role::Info,
            );
        }
        if let Some(e) = &s.error {
            para(
                t,
                &mut out,
                4,
                &format!("{}: {e}", strings::PLAN_LATER),
                w,
                Role::Muted,
            );
        }
        let (text, role) = match (s.destructive, &s.confirm) {
            (true, Some(c)) => (strings::plan_confirm(c), Role::Warn),
            (true, None) => (strings::PLAN_CONFIRM_LATER.to_string(), Role::Warn),
            (false, _) if s.reads_only() => (strings::PLAN_READS.to_string(), Role::Ok),
            (false, _) => (strings::PLAN_ACTS.to_string(), Role::Warn),
        };
        para(t, &mut out, 4, &text, w, role);
    }
    out
}

/// The plan popup over the view (scrolls; `s` starts, Esc closes).
pub fn popup(m: &Model, runbook: &str, scroll: usize, area: Rect, buf: &mut Buffer) {
    let t = &m.theme;
    let r = centered(
        area,
        area.width.saturating_sub(4).min(120),
        area.height.saturating_sub(2),
    );
    let plan = m.plan.as_ref().filter(|p| p.runbook == runbook);
    let hint = match plan {
        Some(p) if !p.refused.is_empty() => strings::PLAN_HINT_REFUSED,
        _ => strings::PLAN_HINT,
    };
    Clear.render(r, buf);
    let block = frame_block(t, format!(" {} ", strings::plan_title(runbook))).title_bottom(
        Line::from(styled(format!(" {hint} "), t.style(Role::Muted))),
    );
    let inner = block.inner(r);
    block.render(r, buf);
    let w = inner.width.saturating_sub(2) as usize;
    let lines = match plan {
        Some(p) => plan_lines(m, p, w),
        None => vec![Line::from(styled(
            strings::PLAN_BUILDING,
            t.style(Role::Muted),
        ))],
    };
    super::scrolled_lines(t, r, inner, &lines, scroll, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::model::{Hazard, HostServices, RunbookInfo, ServiceKind, ServiceState};
    use crate::tui::plan::PlanStep;

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

    pub(crate) fn plan() -> PlanPreview {
        PlanPreview {
            runbook: "rogue-sync-wipe".into(),
            title: "Rogue sync wiped the database".into(),
            database: Some("main".into()),
            steps: vec![
                PlanStep {
                    id: "probe".into(),
                    action: "probe".into(),
                    explain: "Looks at the host and the database first.".into(),
                    target: Some("prod".into()),
                    preview: vec!["probe host prod: systemd units and timers, cron entries, containers, processes; the databases each reaches; hazards".into()],
                    ..Default::default()
                },
                PlanStep {
                    id: "swap".into(),
                    action: "swap".into(),
                    explain: "Puts the restored copy in place of the damaged one.".into(),
                    destructive: true,
                    target: Some("127.0.0.1:5432/TovPlay".into()),
                    requires: vec!["verified".into()],
                    confirm: Some("TovPlay".into()),
                    error: Some("nothing was restored yet".into()),
                    ..Default::default()
                },
            ],
            notes: vec![],
            refused: vec![],
        }
    }

    #[test]
    fn every_step_says_what_it_touches_and_what_it_asks_and_nothing_is_cut() {
        let mut m = Model::new(chrono::Utc::now());
        let p = plan();
        let all = text(&plan_lines(&m, &p, 200));
        assert!(
            all.contains("2 step(s) on database 'main': 1 ask for a typed confirmation first; 0 act without one"),
            "{all}"
        );
        assert!(all.contains("reads only, no confirmation"), "{all}");
        assert!(all.contains("asks you to type 'TovPlay' first"), "{all}");
        assert!(all.contains("touches: 127.0.0.1:5432/TovPlay"), "{all}");
        assert!(all.contains("requires: verified"), "{all}");
        // At 40 columns the long probe preview wraps: its last word is on screen.
        let lines = plan_lines(&m, &p, 40);
        assert!(
            text(&lines).contains("reaches; hazards"),
            "{}",
            text(&lines)
        );
        for l in &lines {
            let w: usize = l
                .spans
                .iter()
                .map(|s| super::super::width(&s.content))
                .sum();
            assert!(w <= 40, "cut nowhere, wrapped instead: {w} > 40");
        }
        // The suggestion is named in the plan of the suggested runbook.
        assert!(!all.contains("suggested:"));
        m.runbooks.push(RunbookInfo {
            name: "rogue-sync-wipe".into(),
            title: String::new(),
            when: String::new(),
        });
        m.services.push(HostServices {
            host: "prod".into(),
            updated_at: m.now,
            services: vec![ServiceState {
                set_aside: None,
                name: "sync".into(),
                kind: ServiceKind::Cron,
                active: None,
                state: String::new(),
                databases: vec![],
                hazards: vec![Hazard {
                    kind: "dump-clean-restore".into(),
                    what: "pg_dump --clean into main".into(),
                    evidence: String::new(),
                }],
                stopped_by_runbook: false,
            }],
        });
        let all = text(&plan_lines(&m, &p, 200));
        assert!(
            all.contains("suggested: 1 sync-loop hazard(s) on prod"),
            "{all}"
        );
    }

    #[test]
    fn a_refused_plan_shows_only_why() {
        let m = Model::new(chrono::Utc::now());
        let mut p = plan();
        p.refused = vec!["runbook 'x' does not fit the inventory".into()];
        let all = text(&plan_lines(&m, &p, 80));
        assert!(all.contains("does not fit"));
        assert!(!all.contains("swap"), "{all}");
    }
}
