//! Services: per host, every unit, timer, cron line, container and process
//! that reaches a database, hazards first with their evidence line, and
//! what the runbook stopped. Draws from `&Model` only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{Item, age, draw_list, pad, styled};
use crate::tui::model::{Model, ServiceState, View};
use crate::tui::rows;
use crate::tui::strings;
use crate::tui::theme::{Role, Theme};

pub struct ServicesView<'a> {
    pub model: &'a Model,
}

/// Symbol and role of a service's line.
pub(crate) fn service_mark(t: &Theme, s: &ServiceState) -> (&'static str, Role) {
    let g = t.glyphs();
    if s.stopped_by_runbook {
        (g.stopped, Role::Ok)
    } else if !s.hazards.is_empty() {
        (g.warn, Role::Hazard)
    } else {
        match s.active {
            Some(true) => (g.running, Role::Normal),
            Some(false) => (g.pending, Role::Muted),
            None => (" ", Role::Normal),
        }
    }
}

/// Why a service is drawn dimmed: set aside by discovery (not part of this
/// drill, target unclear), or evidence ties it only to databases other
/// than the loaded runbook's target (hazards excepted).
pub(crate) fn dimmed_because(m: &Model, s: &ServiceState) -> Option<String> {
    if let Some(why) = &s.set_aside {
        return Some(why.clone());
    }
    match m.acting_on() {
        // A hazard stays bright whatever it writes to: it may be the cause.
        Some((db, true))
            if s.hazards.is_empty()
                && !s.databases.is_empty()
                && !s.databases.iter().any(|d| d == db) =>
        {
            Some(format!(
                "not attributed to the target '{db}': evidence ties it to '{}'",
                s.databases.join("', '")
            ))
        }
        _ => None,
    }
}

fn service_item(m: &Model, s: &ServiceState, width: usize) -> Item<'static> {
    let t = &m.theme;
    let g = t.glyphs();
    let wide = width >= 120;
    let name_w = if wide { 34 } else { 26 };
    let state_w = if wide { 22 } else { 14 };
    let dim = dimmed_because(m, s);
    let (sym, role) = service_mark(t, s);
    let (sym, role) = if dim.is_some() && !s.stopped_by_runbook {
        (g.pending, Role::Muted)
    } else {
        (sym, role)
    };
    let title = if dim.is_some() {
        Role::Muted
    } else {
        Role::Title
    };
    let active = match s.active {
        Some(true) => strings::ACTIVE,
        Some(false) => strings::INACTIVE,
        None => "",
    };
    let state = if s.state.is_empty() { active } else { &s.state };
    let dbs = if s.databases.is_empty() {
        strings::NO_DB.to_string()
    } else {
        s.databases.join(", ")
    };
    let mut spans = vec![
        styled(format!("{sym} "), t.style(role)),
        styled(pad(&s.name, name_w, g.ellipsis), t.style(title)),
        Span::raw(" "),
        styled(
            pad(strings::service_kind(s.kind), 9, g.ellipsis),
            t.style(Role::Muted),
        ),
        Span::raw(" "),
        styled(
            pad(state, state_w, g.ellipsis),
            t.style(if s.active == Some(true) && dim.is_none() {
                Role::Normal
            } else {
                Role::Muted
            }),
        ),
        styled(format!(" {} ", g.arrow), t.style(Role::Muted)),
        styled(
            dbs,
            t.style(if s.databases.is_empty() || dim.is_some() {
                Role::Muted
            } else {
                Role::Normal
            }),
        ),
    ];
    if s.stopped_by_runbook {
        spans.push(styled(
            format!("  {}", strings::STOPPED_BY_RUNBOOK),
            t.style(Role::Ok),
        ));
    }
    let mut lines = vec![Line::from(spans)];
    if let Some(why) = &dim {
        lines.push(Line::from(vec![
            Span::raw("    "),
            styled(
                super::fit(
                    &strings::set_aside(why),
                    width.saturating_sub(6),
                    g.ellipsis,
                ),
                t.style(Role::Muted),
            ),
        ]));
    }
    for z in &s.hazards {
        let zrole = if s.stopped_by_runbook {
            Role::Muted
        } else {
            Role::Hazard
        };
        lines.push(Line::from(vec![
            Span::raw("    "),
            styled(format!("{} {}", g.warn, z.what), t.style(zrole)),
        ]));
        lines.push(Line::from(vec![
            Span::raw("      "),
            styled(z.evidence.clone(), t.style(Role::Muted)),
        ]));
    }
    Item::row(lines)
}

impl Widget for ServicesView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let rows = rows::services(m);
        let mut items: Vec<Item<'static>> = Vec::new();
        if m.services.is_empty() {
            items.push(Item::text(Line::from(styled(
                strings::NO_SERVICES,
                t.style(Role::Muted),
            ))));
        }
        if let k @ 1.. = m.ui.sort[View::Services.index()] {
            items.push(Item::text(Line::from(styled(
                format!(
                    "{} · {}",
                    strings::SERVICES_LIST,
                    strings::sorted_by(strings::SORT_SERVICES[k % strings::SORT_SERVICES.len()])
                ),
                t.style(Role::Title),
            ))));
        }
        let mut last_host = None;
        for (hi, si) in &rows {
            if last_host != Some(*hi) {
                let hs = &m.services[*hi];
                let n_haz = hs
                    .services
                    .iter()
                    .filter(|s| !s.hazards.is_empty() && !s.stopped_by_runbook)
                    .count();
                if last_host.is_some() {
                    items.push(Item::text(Line::raw("")));
                }
                let mut spans = vec![
                    styled(hs.host.clone(), t.style(Role::Title)),
                    styled(
                        format!("  {}  ", strings::host_services(hs.services.len(), n_haz)),
                        t.style(if n_haz > 0 { Role::Hazard } else { Role::Muted }),
                    ),
                ];
                spans.extend(age(
                    m,
                    hs.updated_at,
                    m.stale_after_s as i64 * 4,
                    strings::updated,
                ));
                items.push(Item::text(Line::from(spans)));
                last_host = Some(*hi);
            }
            items.push(service_item(
                m,
                &m.services[*hi].services[*si],
                area.width as usize,
            ));
        }
        let sel = (!rows.is_empty()).then(|| rows::cursor(m, View::Services));
        draw_list(t, &items, sel, area, buf);
    }
}
