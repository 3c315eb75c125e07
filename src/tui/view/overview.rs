//! Overview: hazards first, then hosts (reachable, latency, age or "no
//! answer for N s") and databases (identity, health, rows, sample age,
//! alerts). Draws from `&Model` only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{Item, age, draw_list, hms, pad, styled};
use crate::tui::model::{DatabaseState, Health, HostState, Model, NO_ANSWER_AFTER_S, View};
use crate::tui::rows::{self, OvRow};
use crate::tui::strings;
use crate::tui::theme::Role;

pub struct OverviewView<'a> {
    pub model: &'a Model,
}

/// Symbol, word and role of a host's state.
pub(crate) fn host_state(m: &Model, h: &HostState) -> Vec<Span<'static>> {
    let t = &m.theme;
    let g = t.glyphs();
    if let Some(w) = h.waiting_since {
        let a = m.age_s(w);
        if a >= NO_ANSWER_AFTER_S {
            let mut v = vec![styled(
                format!("{} {}", g.unknown, strings::no_answer(a)),
                t.style(Role::Warn),
            )];
            if let Some(last) = h.last_answer {
                v.push(styled(
                    format!("  {}", strings::last_answer_at(&hms(last))),
                    t.style(Role::Muted),
                ));
            }
            return v;
        }
    }
    match h.reachable {
        None => vec![styled(
            format!("{} {}", g.pending, strings::PROBING),
            t.style(Role::Muted),
        )],
        Some(false) => {
            let mut v = vec![styled(
                format!("{} {}", g.bad, strings::DOWN),
                t.style(Role::Bad),
            )];
            if let Some(e) = &h.error {
                v.push(styled(format!("  {e}"), t.style(Role::Bad)));
            }
            if let Some(last) = h.last_answer {
                v.push(Span::raw("  "));
                v.extend(age(m, last, i64::MAX, strings::answered));
            }
            v
        }
        Some(true) => {
            let mut v = vec![styled(
                format!("{} {:<4}", g.ok, strings::UP),
                t.style(Role::Ok),
            )];
            if let Some(l) = h.latency_ms {
                v.push(styled(
                    format!(" {:>7}", strings::latency(l)),
                    t.style(Role::Normal),
                ));
            }
            if let Some(last) = h.last_answer {
                v.push(Span::raw("  "));
                v.extend(age(m, last, m.stale_after_s as i64, strings::answered));
            }
            v
        }
    }
}

pub(crate) fn health_span(m: &Model, d: &DatabaseState) -> Span<'static> {
    let t = &m.theme;
    let g = t.glyphs();
    let (sym, role) = match d.health {
        Health::Unknown => (g.unknown, Role::Muted),
        Health::Healthy => (g.ok, Role::Ok),
        Health::RowsDropped => (g.warn, Role::Bad),
        Health::Empty | Health::Missing | Health::ServerDown => (g.bad, Role::Bad),
    };
    styled(
        format!("{sym} {}", strings::health(d.health)),
        t.style(role),
    )
}

fn host_item(m: &Model, h: &HostState, name_w: usize) -> Item<'static> {
    let t = &m.theme;
    let mut spans = vec![styled(
        pad(&h.name, name_w, t.glyphs().ellipsis),
        t.style(Role::Title),
    )];
    spans.push(Span::raw(" "));
    spans.extend(host_state(m, h));
    Item::row(vec![Line::from(spans)])
}

fn db_item(m: &Model, d: &DatabaseState, name_w: usize, wide: bool) -> Item<'static> {
    let t = &m.theme;
    let g = t.glyphs();
    let mut l1 = vec![
        styled(pad(&d.name, name_w, g.ellipsis), t.style(Role::Title)),
        Span::raw(" "),
        health_span(m, d),
    ];
    if let Some(n) = d.total_rows {
        l1.push(styled(
            format!("  {}", strings::rows(n)),
            t.style(Role::Normal),
        ));
    }
    if let Some(n) = d.tables {
        l1.push(styled(
            format!(", {}", strings::tables(n)),
            t.style(Role::Muted),
        ));
    }
    if let Some(ts) = d.last_sample {
        l1.push(Span::raw("  "));
        l1.extend(age(m, ts, m.stale_limit(d), strings::sampled));
    }
    if let Some(w) = d.waiting_since {
        let a = m.age_s(w);
        if a >= NO_ANSWER_AFTER_S {
            l1.push(styled(
                format!("  {} {}", g.unknown, strings::no_answer(a)),
                t.style(Role::Warn),
            ));
        }
    }
    let n_alerts = m.alerts_for(&d.name);
    if n_alerts > 0 {
        l1.push(styled(
            format!("  {} {}", g.alert, strings::alerts(n_alerts)),
            t.style(Role::Bad),
        ));
    }
    let mut lines = vec![Line::from(l1)];
    let indent = " ".repeat(name_w + 1);
    if let Some(id) = &d.identity {
        let mut l2 = vec![
            Span::raw(indent.clone()),
            styled(id.address(), t.style(Role::Normal)),
        ];
        if !id.system_identifier.is_empty() {
            l2.push(styled(
                format!("  {} {}", strings::SYSTEM, id.system_identifier),
                t.style(Role::Muted),
            ));
        }
        if let (true, Some(oid)) = (wide, id.oid) {
            l2.push(styled(
                format!("  {} {oid}", strings::DB_OID),
                t.style(Role::Muted),
            ));
        }
        lines.push(Line::from(l2));
    }
    if let Some(detail) = d.error.as_ref().or(d.health_detail.as_ref()) {
        lines.push(Line::from(vec![
            Span::raw(indent.clone()),
            styled(detail.clone(), t.style(Role::Muted)),
        ]));
    }
    for l in &d.lookalikes {
        lines.push(Line::from(vec![
            Span::raw(indent.clone()),
            styled(strings::lookalike_line(g.alert, l), t.style(Role::Warn)),
        ]));
    }
    Item::row(lines)
}

impl Widget for OverviewView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let g = t.glyphs();
        let wide = area.width >= 120;
        let rows = rows::overview(m);
        let name_w = m
            .hosts
            .iter()
            .map(|h| h.name.len())
            .chain(m.databases.iter().map(|d| d.name.len()))
            .max()
            .unwrap_or(8)
            .clamp(6, if wide { 24 } else { 14 });

        let mut items: Vec<Item<'static>> = Vec::new();
        let hazards: Vec<&OvRow> = rows
            .iter()
            .filter(|r| matches!(r, OvRow::Hazard(..)))
            .collect();
        let title = |s: &str, n: usize| {
            Item::text(Line::from(styled(
                format!("{s} ({n})"),
                t.style(Role::Title),
            )))
        };
        items.push(title(strings::HAZARDS, hazards.len()));
        if hazards.is_empty() {
            items.push(Item::text(Line::from(styled(
                format!("  {} {}", g.ok, strings::NO_HAZARDS),
                t.style(Role::Ok),
            ))));
        }
        for r in &hazards {
            let OvRow::Hazard(hi, si, zi) = **r else {
                continue;
            };
            let hs = &m.services[hi];
            let s = &hs.services[si];
            let z = &s.hazards[zi];
            let (sym, role) = if s.stopped_by_runbook {
                (g.stopped, Role::Muted)
            } else if s.set_aside.is_some() {
                (g.pending, Role::Muted)
            } else {
                (g.warn, Role::Hazard)
            };
            let mut spans = vec![
                styled(format!("{sym} "), t.style(role)),
                styled(format!("{} ", hs.host), t.style(Role::Muted)),
                styled(s.name.clone(), t.style(Role::Title)),
                styled(
                    format!(" ({})", strings::service_kind(s.kind)),
                    t.style(Role::Muted),
                ),
                styled(format!("  {}", z.what), t.style(role)),
            ];
            if s.hazards.len() > 1 {
                spans.push(styled(
                    format!("  {}", strings::more_hazards(s.hazards.len() - 1)),
                    t.style(role),
                ));
            }
            if !s.databases.is_empty() {
                spans.push(styled(
                    format!(" {} {}", g.arrow, s.databases.join(", ")),
                    t.style(Role::Normal),
                ));
            }
            if s.stopped_by_runbook {
                spans.push(styled(
                    format!("  {}", strings::STOPPED_BY_RUNBOOK),
                    t.style(Role::Ok),
                ));
            } else if let Some(why) = &s.set_aside {
                // The reason's first clause ("not part of this drill", "target unclear").
                let short = why.split(':').next().unwrap_or(why);
                spans.insert(
                    4,
                    styled(
                        format!("  ({})", strings::set_aside(short)),
                        t.style(Role::Muted),
                    ),
                );
            }
            items.push(Item::row(vec![Line::from(spans)]));
        }

        let hosts: Vec<usize> = rows
            .iter()
            .filter_map(|r| {
                if let OvRow::Host(i) = r {
                    Some(*i)
                } else {
                    None
                }
            })
            .collect();
        items.push(Item::text(Line::raw("")));
        items.push(title(strings::HOSTS, hosts.len()));
        if m.hosts.is_empty() {
            items.push(Item::text(Line::from(styled(
                format!("  {}", strings::NO_HOSTS),
                t.style(Role::Muted),
            ))));
        }
        for i in hosts {
            items.push(host_item(m, &m.hosts[i], name_w));
        }

        let dbs: Vec<usize> = rows
            .iter()
            .filter_map(|r| if let OvRow::Db(i) = r { Some(*i) } else { None })
            .collect();
        items.push(Item::text(Line::raw("")));
        items.push(match m.ui.sort[View::Overview.index()] {
            0 => title(strings::DATABASES, dbs.len()),
            k => Item::text(Line::from(styled(
                format!(
                    "{} ({}) · {}",
                    strings::DATABASES,
                    dbs.len(),
                    strings::sorted_by(strings::SORT_DATABASES[k % strings::SORT_DATABASES.len()])
                ),
                t.style(Role::Title),
            ))),
        });
        if m.databases.is_empty() {
            items.push(Item::text(Line::from(styled(
                format!("  {}", strings::NO_DATABASES),
                t.style(Role::Muted),
            ))));
        }
        for i in dbs {
            items.push(db_item(m, &m.databases[i], name_w, wide));
        }
        let sel = (!rows.is_empty()).then(|| rows::cursor(m, View::Overview));
        draw_list(t, &items, sel, area, buf);
    }
}
