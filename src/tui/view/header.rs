//! Header (environment, mode, incident, elapsed, operator, alerts, and the
//! identity of the database acted on), the view tabs, and the footer (the
//! keys of this view, the command line, or a message).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{hms, styled, width};
use crate::tui::keys::Action;
use crate::tui::model::{Input, Model, View};
use crate::tui::strings;
use crate::tui::theme::Role;

pub struct Header<'a> {
    pub model: &'a Model,
}

/// Keeps the most important segments that fit, in display order.
fn fit_segments(mut segs: Vec<(u8, Vec<Span<'static>>)>, w: usize) -> Line<'static> {
    let seg_w = |s: &Vec<Span<'static>>| s.iter().map(|x| x.width()).sum::<usize>() + 1;
    while segs.iter().map(|(_, s)| seg_w(s)).sum::<usize>() > w && segs.len() > 1 {
        // Drop the least important segment.
        if let Some(i) = segs
            .iter()
            .enumerate()
            .min_by_key(|(_, (p, _))| *p)
            .map(|(i, _)| i)
        {
            segs.remove(i);
        }
    }
    let mut spans = Vec::new();
    for (_, s) in segs {
        spans.extend(s);
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

impl Widget for Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let g = t.glyphs();
        let bar = t.bar();
        buf.set_style(area, bar);
        let env = m.env_label();
        let env_text = env
            .map(|e| e.to_uppercase())
            .unwrap_or_else(|| strings::NO_ENV.into());
        let env_style = t.env_style(env.unwrap_or(""));

        let mut segs: Vec<(u8, Vec<Span<'static>>)> = Vec::new();
        segs.push((100, vec![styled(format!(" {env_text} "), env_style)]));
        let mode_role = match m.header.mode {
            crate::tui::model::Mode::Live => Role::Bad,
            crate::tui::model::Mode::Drill => Role::Info,
        };
        segs.push((
            95,
            vec![styled(
                format!(" {} ", strings::mode(m.header.mode)),
                t.badge(mode_role),
            )],
        ));
        if m.header.readonly {
            segs.push((
                98,
                vec![styled(
                    format!(" {} ", strings::READONLY),
                    t.badge(Role::Info),
                )],
            ));
        }
        if !m.header.frozen.is_empty() {
            segs.push((
                99,
                vec![styled(
                    format!(" {} ", m.header.frozen.join("; ").to_uppercase()),
                    t.badge(Role::Bad),
                )],
            ));
        }
        if m.held.is_some() {
            segs.push((
                97,
                vec![styled(
                    format!(" {} ", strings::PAUSED),
                    t.badge(Role::Warn),
                )],
            ));
        }
        if m.ui.disconnected {
            segs.push((
                97,
                vec![styled(
                    format!(" {} ", strings::DISCONNECTED),
                    t.badge(Role::Bad),
                )],
            ));
        }
        let n_alerts = m.unacked_alerts();
        if n_alerts > 0 {
            // The newest unacknowledged alert, in words, where room allows.
            let newest = m.alerts.iter().rev().find(|a| !a.acked);
            let spans = vec![styled(
                format!("{} {}", g.alert, strings::alerts(n_alerts)),
                t.style(Role::Bad),
            )];
            if let Some(a) = newest {
                segs.push((90, spans));
                segs.push((
                    30,
                    vec![styled(
                        format!("({})", strings::ack_hint(&m.keys.label(Action::Ack))),
                        t.style(Role::Muted),
                    )],
                ));
                segs.push((
                    40,
                    vec![styled(
                        super::fit(&a.summary, 60, g.ellipsis),
                        t.style(Role::Bad),
                    )],
                ));
            } else {
                segs.push((90, spans));
            }
        } else if !m.alerts.is_empty() {
            segs.push((
                20,
                vec![styled(
                    strings::alerts_acked(m.alerts.len()),
                    t.style(Role::Muted),
                )],
            ));
        }
        // Look-alikes of the database acted on (same server, names that only
        // look alike): the operator must never act on the wrong one.
        if let Some(d) = m.acting_on().and_then(|(db, _)| m.database(db))
            && let Some(first) = d.lookalikes.first()
        {
            segs.push((
                88,
                vec![styled(
                    strings::lookalikes_badge(g.alert, d.lookalikes.len(), &first.shown),
                    t.style(Role::Warn),
                )],
            ));
        }
        if m.pending.is_some() {
            segs.push((
                92,
                vec![styled(
                    format!(" {} ", strings::WAITING_FOR_YOU),
                    t.badge(Role::Warn),
                )],
            ));
        }
        let incident = if m.header.incident.is_empty() {
            strings::NO_INCIDENT.to_string()
        } else {
            format!("{} {}", strings::INCIDENT, m.header.incident)
        };
        segs.push((60, vec![styled(incident, t.style(Role::Title))]));
        if let Some(start) = m.header.started_at {
            segs.push((
                50,
                vec![styled(
                    strings::clock((m.now - start).num_seconds()),
                    t.style(Role::Normal),
                )],
            ));
        }
        if !m.header.operator.is_empty() {
            segs.push((
                40,
                vec![styled(
                    format!("{} {}", strings::OPERATOR, m.header.operator),
                    t.style(Role::Muted),
                )],
            ));
        }
        let line = fit_segments(segs, area.width as usize);
        buf.set_line(area.x, area.y, &line, area.width);

        // Line 2: the database acted on, with its identity.
        if area.height < 2 {
            return;
        }
        let y = area.y + 1;
        let mut segs: Vec<(u8, Vec<Span<'static>>)> = Vec::new();
        match m.acting_on() {
            None => segs.push((
                100,
                vec![styled(
                    format!(" {}", strings::NO_DATABASE),
                    t.style(Role::Warn),
                )],
            )),
            Some((db, acting)) => {
                let verb = if acting {
                    strings::ACTING_ON
                } else {
                    strings::VIEWING
                };
                segs.push((
                    100,
                    vec![
                        styled(format!(" {verb} "), t.style(Role::Muted)),
                        styled(db.to_string(), t.style(Role::Title)),
                    ],
                ));
                if let Some(id) = m.identity_of(db).filter(|i| !i.server.is_empty()) {
                    segs.push((
                        90,
                        vec![
                            styled(format!("{} ", g.arrow), t.style(Role::Muted)),
                            styled(id.address(), t.style(Role::Title)),
                        ],
                    ));
                    if !id.system_identifier.is_empty() {
                        segs.push((
                            60,
                            vec![styled(
                                format!(" {} {}", strings::SYSTEM, id.system_identifier),
                                t.style(Role::Muted),
                            )],
                        ));
                    }
                    if let Some(oid) = id.oid {
                        segs.push((
                            40,
                            vec![styled(
                                format!(" {} {oid}", strings::DB_OID),
                                t.style(Role::Muted),
                            )],
                        ));
                    }
                }
            }
        }
        let line = fit_segments(segs, area.width as usize);
        buf.set_line(area.x, y, &line, area.width);
    }
}

pub struct Tabs<'a> {
    pub model: &'a Model,
}

impl Widget for Tabs<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let mut spans = Vec::new();
        for (i, v) in View::ALL.iter().enumerate() {
            let label = format!("{} {}", i + 1, strings::view_name(*v));
            if *v == m.ui.view {
                spans.push(styled(format!("[{label}]"), t.style(Role::Selected)));
            } else {
                spans.push(styled(format!(" {label} "), t.style(Role::Muted)));
            }
            spans.push(Span::raw(" "));
        }
        let line = Line::from(spans);
        buf.set_line(area.x, area.y, &line, area.width);
        let clock = format!("{} {} ", hms(m.now), strings::UTC);
        let cw = width(&clock) as u16;
        if area.width > line.width() as u16 + cw {
            buf.set_string(
                area.x + area.width - cw,
                area.y,
                clock,
                t.style(Role::Muted),
            );
        }
    }
}

pub struct Footer<'a> {
    pub model: &'a Model,
}

/// Actions shown in the footer per view, most useful first.
fn footer_actions(v: View) -> &'static [Action] {
    match v {
        View::Overview | View::Services => &[
            Action::Help,
            Action::Open,
            Action::Down,
            Action::Up,
            Action::Filter,
            Action::Command,
            Action::NextView,
            Action::Quit,
        ],
        View::Timeline => &[
            Action::Help,
            Action::Down,
            Action::Up,
            Action::ZoomIn,
            Action::ZoomOut,
            Action::PanLeft,
            Action::PanRight,
            Action::NextDb,
            Action::Filter,
            Action::Quit,
        ],
        View::Runbook => &[
            Action::Help,
            Action::Open,
            Action::Down,
            Action::Up,
            Action::Abort,
            Action::Command,
            Action::Note,
            Action::Quit,
        ],
        View::Journal => &[
            Action::Help,
            Action::Open,
            Action::Filter,
            Action::Down,
            Action::Up,
            Action::Top,
            Action::Bottom,
            Action::Quit,
        ],
    }
}

impl Widget for Footer<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let line = match (&m.ui.input, &m.ui.message) {
            (Some(Input::Command(s)), _) => Line::from(vec![
                styled(":", t.style(Role::Key)),
                styled(s.clone(), t.style(Role::Input)),
                styled("_", t.style(Role::Key)),
            ]),
            (Some(Input::Filter(s)), _) => Line::from(vec![
                styled("/", t.style(Role::Key)),
                styled(s.clone(), t.style(Role::Input)),
                styled("_", t.style(Role::Key)),
            ]),
            (None, Some((text, error))) => {
                let role = if *error { Role::Bad } else { Role::Info };
                Line::from(styled(text.clone(), t.style(role)))
            }
            (None, None) => {
                let mut spans = Vec::new();
                // An active filter is always on screen (issue 19).
                let f = &m.ui.filter[m.ui.view.index()];
                if !f.is_empty() {
                    spans.push(styled(strings::filter_shown(f), t.badge(Role::Info)));
                    spans.push(styled(" ", t.style(Role::Muted)));
                }
                for a in footer_actions(m.ui.view) {
                    let keys = m.keys.keys(*a);
                    let Some(k) = keys.first() else { continue };
                    spans.push(styled(k.to_string(), t.style(Role::Key)));
                    spans.push(styled(
                        format!(" {}  ", strings::action_label(*a)),
                        t.style(Role::Muted),
                    ));
                }
                Line::from(spans)
            }
        };
        buf.set_line(area.x, area.y, &line, area.width);
    }
}
