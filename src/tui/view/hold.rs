//! The live hold of a stop-services step: what is watched, each watched
//! host's last answer, and what came back and when (the step's own "+N s"
//! lines), under the countdown. Draws from `&Model` only (the step's
//! progress, preview and output); never probes anything itself.

use ratatui::text::Line;

use super::{styled, wrap};
use crate::tui::model::{Model, Progress};
use crate::tui::strings;
use crate::tui::theme::Role;

/// A countdown of a hold (its progress says so in its label).
pub(crate) fn is_hold(p: &Progress) -> bool {
    p.label.as_deref().is_some_and(|l| l.starts_with("hold:"))
}

/// Lines of the step's output that say something came back during the hold.
fn came_back(line: &str) -> bool {
    line.starts_with('+')
        && (line.contains(" is BACK")
            || line.contains(" and runs: ")
            || line.contains("write session pid")
            || line.contains("could not be probed"))
}

/// Hosts the step acts on, from its preview (`on HOST: ...` lines), in order.
fn watched_hosts(preview: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for l in preview {
        if let Some(rest) = l.strip_prefix("on ")
            && let Some((h, _)) = rest.split_once(": ")
            && !hosts.iter().any(|x| x == h)
        {
            hosts.push(h.to_string());
        }
    }
    hosts
}

/// The hold panel's lines at width `w`.
pub(crate) fn lines(m: &Model, p: &Progress, w: usize) -> Vec<Line<'static>> {
    let t = &m.theme;
    let g = t.glyphs();
    let mut out = Vec::new();
    let mut push = |text: String, role: Role| {
        for l in wrap(&text, w) {
            out.push(Line::from(styled(l, t.style(role))));
        }
    };
    // What came back first: it is what the operator must act on.
    let back: Vec<&str> = m
        .output
        .iter()
        .filter(|o| o.step == p.step && came_back(&o.line))
        .map(|o| o.line.as_str())
        .collect();
    if back.is_empty() {
        push(strings::hold_nothing_back(m.age_s(p.updated_at)), Role::Ok);
    } else {
        push(strings::hold_came_back(back.len()), Role::Bad);
        for l in back {
            push(format!("  {l}"), Role::Bad);
        }
    }
    let preview = m
        .runbook
        .as_ref()
        .map(|r| r.preview.as_slice())
        .unwrap_or_default();
    let hosts = watched_hosts(preview);
    let services = preview.iter().filter(|l| l.starts_with("on ")).count();
    push(
        strings::hold_watching(services, &hosts.join(", ")),
        Role::Normal,
    );
    for h in &hosts {
        let text = match m.hosts.iter().find(|x| &x.name == h) {
            Some(s) => match (s.reachable, s.last_answer) {
                (Some(true), Some(at)) => (
                    format!("  {} {h}: {}", g.ok, strings::answered(m.age_s(at))),
                    Role::Ok,
                ),
                (Some(false), _) => (
                    format!(
                        "  {} {h}: {}",
                        g.bad,
                        s.error.clone().unwrap_or_else(|| strings::DOWN.into())
                    ),
                    Role::Bad,
                ),
                _ => (
                    format!("  {} {h}: {}", g.pending, strings::PROBING),
                    Role::Muted,
                ),
            },
            None => (format!("  {} {h}", g.pending), Role::Muted),
        };
        push(text.0, text.1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::model::{HostState, OutputLine, RunbookState};

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
    fn the_hold_says_what_it_watches_each_host_and_what_came_back() {
        let now = chrono::Utc::now();
        let mut m = Model::new(now);
        m.runbook = Some(RunbookState {
            preview: vec![
                "on prod: systemctl stop sync.service (when active); systemctl mask sync.service"
                    .into(),
                "on prod: docker stop worker (never 'down -v' or 'rm')".into(),
                "on ext-db: the pid in /run/loop.pid: kill -s STOP".into(),
                "hold 120 s: probe prod, ext-db again every 5 s".into(),
            ],
            ..Default::default()
        });
        m.hosts = vec![
            HostState {
                name: "prod".into(),
                reachable: Some(true),
                last_answer: Some(now - chrono::Duration::seconds(2)),
                ..Default::default()
            },
            HostState {
                name: "ext-db".into(),
                reachable: Some(false),
                error: Some("connection refused".into()),
                ..Default::default()
            },
        ];
        let p = Progress {
            step: "stop-writers".into(),
            bytes_done: 13,
            bytes_total: Some(120),
            label: Some("hold: 107 s left of 120 s".into()),
            tables: vec![],
            started_at: now - chrono::Duration::seconds(13),
            updated_at: now - chrono::Duration::seconds(1),
        };
        assert!(is_hold(&p));
        let all = text(&lines(&m, &p, 100));
        assert!(
            all.contains("watching 3 service(s) on prod, ext-db"),
            "{all}"
        );
        assert!(all.contains("prod: answered 2 s ago"), "{all}");
        assert!(all.contains("ext-db: connection refused"), "{all}");
        assert!(
            all.contains("nothing came back so far (last probe 1 s ago)"),
            "{all}"
        );
        // Something comes back: said with its time; other steps' lines are not.
        m.output.push_back(OutputLine {
            step: "stop-writers".into(),
            line: "+10 s: 'sync.service' on prod is BACK: active (running)".into(),
            stderr: false,
        });
        m.output.push_back(OutputLine {
            step: "other".into(),
            line: "+3 s: 'x' on prod is BACK: y".into(),
            stderr: false,
        });
        let all = text(&lines(&m, &p, 100));
        assert!(all.contains("1 came back during the hold"), "{all}");
        assert!(
            all.contains("+10 s: 'sync.service' on prod is BACK"),
            "{all}"
        );
        assert!(!all.contains("'x' on prod"), "{all}");
        assert!(!all.contains("nothing came back"), "{all}");
        // A restore's progress is not a hold.
        assert!(!is_hold(&Progress { label: None, ..p }));
    }
}
