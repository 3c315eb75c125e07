//! Timeline: row counts over time for the shown database: a chart of the
//! selected table, a sparkline per other table, alert and journal markers
//! on the time axis, the incident line; zoom and pan. Each column shows
//! the maximum of its samples, so a drop is never averaged away. Draws
//! from `&Model` only, in time linear in the samples on screen.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{age, heading, hms, pad, rpad, styled, unix, width};
use crate::journal::kinds;
use crate::tui::model::{DbSeries, MISSING, Model, View, ZOOMS};
use crate::tui::rows;
use crate::tui::strings;
use crate::tui::theme::Role;

pub struct TimelineView<'a> {
    pub model: &'a Model,
}

/// Per-column values of one series over `[t0, t1)` split into `w` columns:
/// the maximum of the samples in a column; a column without samples holds
/// the last value before it (a step function), up to the newest sample; a
/// round where the table was missing breaks the line.
pub fn buckets(
    times: &[i64],
    values: &[i64],
    t0: i64,
    t1: i64,
    w: usize,
    out: &mut Vec<Option<i64>>,
) {
    out.clear();
    if w == 0 {
        return;
    }
    let span = (t1 - t0).max(1) as i128;
    let mut i = times.partition_point(|t| *t < t0);
    let mut carry = values[..i]
        .iter()
        .rev()
        .take(64)
        .find(|v| **v != MISSING)
        .copied()
        .filter(|_| i > 0 && values[i - 1] != MISSING);
    let last_t = times.last().copied();
    for c in 0..w {
        let cs = t0 + (c as i128 * span / w as i128) as i64;
        let ce = t0 + ((c as i128 + 1) * span / w as i128) as i64;
        let mut mx: Option<i64> = None;
        while i < times.len() && times[i] < ce {
            let v = values[i];
            if v == MISSING {
                carry = None;
            } else {
                mx = Some(mx.map_or(v, |m| m.max(v)));
                carry = Some(v);
            }
            i += 1;
        }
        out.push(match mx {
            Some(v) => Some(v),
            None if last_t.is_some_and(|lt| cs <= lt) => carry,
            None => None,
        });
    }
}

/// Eighths of a cell for `v` on a scale whose top is `max` over `cells` cells;
/// anything above zero shows at least one eighth.
fn eighths(v: i64, max: i64, cells: usize) -> usize {
    if v <= 0 || max <= 0 {
        return 0;
    }
    let e = ((v as f64 / max as f64) * (cells * 8) as f64).round() as usize;
    e.clamp(1, cells * 8)
}

fn col_of(t: i64, t0: i64, t1: i64, w: usize) -> Option<usize> {
    if t < t0 || t >= t1 || w == 0 {
        return None;
    }
    Some(((t - t0) as i128 * w as i128 / (t1 - t0).max(1) as i128) as usize)
}

fn time_label(t: i64, span: i64) -> String {
    let d = unix(t);
    if span > 86_400 {
        d.format("%m-%d %H:%M").to_string()
    } else if span >= 900 {
        d.format("%H:%M").to_string()
    } else {
        d.format("%H:%M:%S").to_string()
    }
}

impl TimelineView<'_> {
    fn window(&self) -> (i64, i64) {
        let m = self.model;
        let t1 = m.ui.pan_end.unwrap_or_else(|| m.now.timestamp());
        (t1 - ZOOMS[m.ui.zoom], t1)
    }

    #[allow(clippy::too_many_arguments)]
    fn chart(
        &self,
        s: &DbSeries,
        ti: usize,
        db: &str,
        t0: i64,
        t1: i64,
        area: Rect,
        buf: &mut Buffer,
    ) {
        let m = self.model;
        let t = &m.theme;
        let g = t.glyphs();
        if area.height < 3 || area.width < 10 {
            return;
        }
        let chart_h = (area.height - 2) as usize;
        let values = s.merged(ti);
        let mut cols = Vec::new();
        // Label width from the visible maximum.
        buckets(&s.times, &values, t0, t1, area.width as usize, &mut cols);
        let ymax = cols.iter().flatten().copied().max().unwrap_or(0).max(1);
        let top = strings::compact(ymax);
        let lw = width(&top).max(1) + 1;
        let pw = (area.width as usize).saturating_sub(lw);
        if pw == 0 {
            return;
        }
        buckets(&s.times, &values, t0, t1, pw, &mut cols);
        let x0 = area.x + lw as u16;
        let fill = t.style(Role::Info);
        let axis = t.style(Role::Muted);
        // Y axis.
        for r in 0..chart_h {
            let y = area.y + r as u16;
            let label = if r == 0 {
                top.clone()
            } else if r + 1 == chart_h {
                "0".to_string()
            } else if chart_h >= 5 && r == chart_h / 2 {
                strings::compact(ymax * (chart_h - 1 - r) as i64 / (chart_h - 1) as i64)
            } else {
                String::new()
            };
            let tick = if label.is_empty() { g.vline } else { g.ytick };
            buf.set_string(area.x, y, rpad(&label, lw - 1, ""), axis);
            buf.set_string(area.x + lw as u16 - 1, y, tick, axis);
        }
        // Fill, bottom up.
        let incident_col = m
            .incident_at
            .and_then(|it| col_of(it.timestamp(), t0, t1, pw));
        for (c, v) in cols.iter().enumerate() {
            let x = x0 + c as u16;
            let e = v.map_or(0, |v| eighths(v, ymax, chart_h));
            let (full, part) = (e / 8, e % 8);
            for r in 0..chart_h {
                let y = area.y + (chart_h - 1 - r) as u16;
                let sym = if r < full {
                    g.bars[8]
                } else if r == full && part > 0 {
                    g.bars[part]
                } else if incident_col == Some(c) {
                    buf[(x, y)]
                        .set_symbol(g.incident)
                        .set_style(t.style(Role::Bad));
                    continue;
                } else {
                    continue;
                };
                buf[(x, y)].set_symbol(sym).set_style(fill);
            }
            if *v == Some(0) {
                let y = area.y + chart_h as u16 - 1;
                if buf[(x, y)].symbol() == " " {
                    buf[(x, y)].set_symbol("_").set_style(fill);
                }
            }
        }
        // Marker row: alerts, incident, steps, notes (most important wins).
        let my = area.y + chart_h as u16;
        let mut marks: Vec<(u8, &'static str, Role)> = vec![(0, " ", Role::Normal); pw];
        let mut mark = |col: Option<usize>, rank: u8, sym: &'static str, role: Role| {
            if let Some(c) = col
                && marks[c].0 < rank
            {
                marks[c] = (rank, sym, role);
            }
        };
        let first = m.journal.partition_point(|r| r.ts.timestamp() < t0);
        for r in &m.journal[first..] {
            let ts = r.ts.timestamp();
            if ts >= t1 {
                break;
            }
            let col = col_of(ts, t0, t1, pw);
            match r.kind.as_str() {
                k if k == kinds::NOTE => mark(col, 1, g.note, Role::Info),
                k if k == kinds::STEP_STARTED
                    || k == kinds::STEP_FINISHED
                    || k == kinds::STEP_FAILED
                    || k == kinds::CONFIRMED =>
                {
                    mark(col, 2, g.event, Role::Info)
                }
                _ => {}
            }
        }
        mark(incident_col, 3, g.incident, Role::Bad);
        for a in m.alerts.iter().filter(|a| a.database == db) {
            mark(col_of(a.ts.timestamp(), t0, t1, pw), 4, g.alert, Role::Bad);
        }
        for (c, (_, sym, role)) in marks.iter().enumerate() {
            if *sym != " " {
                buf[(x0 + c as u16, my)]
                    .set_symbol(sym)
                    .set_style(t.style(*role));
            }
        }
        // Time axis.
        let ay = my + 1;
        let span = t1 - t0;
        let left = time_label(t0, span);
        let right = format!("{} {}", time_label(t1, span), strings::UTC);
        let mid = time_label(t0 + span / 2, span);
        buf.set_string(x0, ay, &left, axis);
        let rw = width(&right) as u16;
        if pw as u16 > rw {
            buf.set_string(x0 + pw as u16 - rw, ay, &right, axis);
        }
        let mw = width(&mid) as u16;
        let mx = x0 + (pw as u16 / 2).saturating_sub(mw / 2);
        if pw as u16 > width(&left) as u16 + mw + rw + 4 {
            buf.set_string(mx, ay, &mid, axis);
        }
    }
}

impl Widget for TimelineView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = self.model;
        let t = &m.theme;
        let g = t.glyphs();
        let Some(db) = rows::timeline_db(m) else {
            buf.set_string(area.x, area.y, strings::NO_SAMPLES, t.style(Role::Muted));
            return;
        };
        let Some(s) = m.series_of(db).filter(|s| !s.times.is_empty()) else {
            buf.set_string(
                area.x,
                area.y,
                format!("{db}: {}", strings::NO_SAMPLES),
                t.style(Role::Muted),
            );
            return;
        };
        let rows = rows::tables(m);
        let sel = rows::table_cursor(m, &rows);
        let (t0, t1) = self.window();
        let Some(&ti) = rows.get(sel) else {
            buf.set_string(area.x, area.y, strings::NO_SAMPLES, t.style(Role::Muted));
            return;
        };
        let tab = &s.tables[ti];

        // Title: table, value now, before the last alert, age, window.
        let last_t = s.times.last().copied().map(unix);
        let mut title = vec![
            styled(format!("{db} "), t.style(Role::Muted)),
            styled(tab.label(), t.style(Role::Title)),
            styled(
                format!(" ({})", strings::oid(tab.oid)),
                t.style(Role::Muted),
            ),
        ];
        if s.oids(ti) > 1 {
            title.push(styled(
                format!(" {}", strings::recreated(s.oids(ti))),
                t.style(Role::Warn),
            ));
        }
        match tab.values.last().copied() {
            Some(v) if v != MISSING => {
                let est = if tab.exact { "" } else { strings::ESTIMATE };
                title.push(styled(
                    format!("  {est}{}", strings::rows(v)),
                    t.style(Role::Title),
                ));
            }
            _ => title.push(styled(format!("  {}", strings::GONE), t.badge(Role::Bad))),
        }
        if let Some(a) = m
            .alerts
            .iter()
            .rev()
            .find(|a| a.database == db && a.table == tab.name)
            && let Some(b) = a.before
        {
            title.push(styled(
                format!(" ({})", strings::was(b)),
                t.style(Role::Bad),
            ));
        }
        if let Some(lt) = last_t {
            let limit = m
                .database(db)
                .map_or(m.stale_after_s as i64, |d| m.stale_limit(d));
            title.push(Span::raw("  "));
            title.extend(age(m, lt, limit, strings::sampled));
        }
        let following = m.ui.pan_end.is_none();
        title.push(styled(
            format!(
                "  {}",
                strings::window(ZOOMS[m.ui.zoom], &hms(unix(t1)), following)
            ),
            t.style(Role::Muted),
        ));
        buf.set_line(area.x, area.y, &Line::from(title), area.width);

        // Chart, markers, axis.
        let body_h = area.height.saturating_sub(1);
        let chart_h = ((body_h as usize * 45 / 100).clamp(4, 22) as u16 + 2).min(body_h);
        let chart = Rect::new(area.x, area.y + 1, area.width, chart_h);
        self.chart(s, ti, db, t0, t1, chart, buf);

        // Tables: heading with the legend, then one sparkline per table.
        let list_y = area.y + 1 + chart_h;
        if list_y >= area.y + area.height {
            return;
        }
        let legend = Line::from(vec![
            styled(
                match m.ui.sort[View::Timeline.index()] {
                    0 => format!("{} ({}) ", strings::TABLES, rows.len()),
                    k => format!(
                        "{} ({}) · {} ",
                        strings::TABLES,
                        rows.len(),
                        strings::sorted_by(strings::SORT_TABLES[k % strings::SORT_TABLES.len()])
                    ),
                },
                t.style(Role::Title),
            ),
            styled(
                format!(" {} {}", g.alert, strings::ALERT),
                t.style(Role::Bad),
            ),
            styled(
                format!("  {} {}", g.event, strings::STEP),
                t.style(Role::Info),
            ),
            styled(
                format!("  {} {}", g.note, strings::NOTE),
                t.style(Role::Info),
            ),
            styled(
                format!(
                    "  {} {}{}",
                    g.incident,
                    strings::INCIDENT_LINE,
                    m.incident_at
                        .map(|i| format!(" {}", hms(i)))
                        .unwrap_or_default()
                ),
                t.style(Role::Bad),
            ),
            Span::raw(" "),
        ]);
        let head = Rect::new(area.x, list_y, area.width, 1);
        heading(t, legend).render(head, buf);
        let list = Rect::new(
            area.x,
            list_y + 1,
            area.width,
            (area.y + area.height).saturating_sub(list_y + 1),
        );
        let h = list.height as usize;
        if h == 0 {
            return;
        }
        let offset = if rows.len() > h {
            sel.saturating_sub(h / 2).min(rows.len() - h)
        } else {
            0
        };
        let wide = area.width >= 120;
        let name_w = rows
            .iter()
            .map(|i| width(&s.tables[*i].label()))
            .max()
            .unwrap_or(8)
            .clamp(8, if wide { 28 } else { 16 });
        let val_w = 9usize;
        let delta_w = 8usize;
        let flag_w = if wide { 12 } else { 8 };
        let spark_w = (list.width as usize)
            .saturating_sub(2 + name_w + 1 + 1 + val_w + 1 + delta_w + 1 + flag_w);
        let alerted: Vec<&str> = m
            .alerts
            .iter()
            .filter(|a| a.database == db)
            .map(|a| a.table.as_str())
            .collect();
        let mut cols = Vec::with_capacity(spark_w);
        let mut spark = String::with_capacity(spark_w * 3);
        for (row, &i) in rows.iter().enumerate().skip(offset).take(h) {
            let y = list.y + (row - offset) as u16;
            let tb = &s.tables[i];
            let is_sel = row == sel;
            let mut x = list.x;
            buf.set_string(
                x,
                y,
                if is_sel { g.cursor } else { " " },
                t.style(Role::Key),
            );
            x += 2;
            buf.set_string(
                x,
                y,
                pad(
                    &if s.oids(i) > 1 {
                        format!("{} {}", tb.label(), strings::RECREATED_MARK)
                    } else {
                        tb.label()
                    },
                    name_w,
                    g.ellipsis,
                ),
                t.style(Role::Normal),
            );
            x += name_w as u16 + 1;
            // Sparkline, scaled to the table's own maximum in the window.
            let values = s.merged(i);
            buckets(&s.times, &values, t0, t1, spark_w, &mut cols);
            let top = cols.iter().flatten().copied().max().unwrap_or(0);
            spark.clear();
            for v in &cols {
                spark.push_str(match v {
                    None => " ",
                    Some(0) => "_",
                    Some(v) => g.bars[eighths(*v, top, 1)],
                });
            }
            buf.set_string(x, y, &spark, t.style(Role::Info));
            x += spark_w as u16 + 1;
            let now_v = tb.values.last().copied().filter(|v| *v != MISSING);
            let ever = values.iter().any(|v| *v != MISSING);
            let val = match now_v {
                Some(v) => format!(
                    "{}{}",
                    if tb.exact { "" } else { strings::ESTIMATE },
                    strings::compact(v)
                ),
                None => String::new(),
            };
            buf.set_string(x, y, rpad(&val, val_w, g.ellipsis), t.style(Role::Title));
            x += val_w as u16 + 1;
            let first = cols.iter().flatten().next().copied();
            let last = cols.iter().rev().flatten().next().copied();
            let (delta, role) = match (first, last) {
                (Some(a), Some(b)) if b < a => (format!("-{}", strings::compact(a - b)), Role::Bad),
                (Some(a), Some(b)) if b > a => {
                    (format!("+{}", strings::compact(b - a)), Role::Muted)
                }
                _ => (String::new(), Role::Muted),
            };
            buf.set_string(x, y, rpad(&delta, delta_w, g.ellipsis), t.style(role));
            x += delta_w as u16 + 1;
            if now_v.is_none() && ever {
                buf.set_string(x, y, strings::GONE, t.badge(Role::Bad));
            } else if alerted.contains(&tb.name.as_str()) {
                buf.set_string(
                    x,
                    y,
                    format!("{} {}", g.alert, strings::ALERT),
                    t.style(Role::Bad),
                );
            }
            if is_sel {
                buf.set_style(Rect::new(list.x, y, list.width, 1), t.style(Role::Selected));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_drops_and_carry() {
        let times = [0, 10, 20, 30, 40, 50];
        let vals = [22, 22, 22, 0, 0, 0];
        let mut out = Vec::new();
        // Two columns of 30 s: the drop is in the second.
        buckets(&times, &vals, 0, 60, 2, &mut out);
        assert_eq!(out, vec![Some(22), Some(0)]);
        // Finer than the samples: columns between samples carry the last value.
        buckets(&times, &vals, 0, 60, 12, &mut out);
        assert_eq!(out[0], Some(22));
        assert_eq!(out[1], Some(22));
        assert_eq!(out[6], Some(0));
        assert_eq!(out[10], Some(0));
        assert_eq!(out[11], None, "after the newest sample");
        // Past the newest sample: nothing.
        buckets(&times, &vals, 40, 100, 6, &mut out);
        assert_eq!(out, vec![Some(0), Some(0), None, None, None, None]);
        // Before the first sample: nothing.
        buckets(&times, &vals, -30, 30, 6, &mut out);
        assert_eq!(&out[..3], &[None, None, None]);
        // A missing round breaks the carry.
        let vals = [5, MISSING, MISSING, MISSING, MISSING, MISSING];
        buckets(&times, &vals, 0, 60, 6, &mut out);
        assert_eq!(out, vec![Some(5), None, None, None, None, None]);
        // A spike inside a column survives downsampling.
        let vals = [1, 1, 900, 1, 1, 1];
        buckets(&times, &vals, 0, 60, 1, &mut out);
        assert_eq!(out, vec![Some(900)]);
    }

    #[test]
    fn eighths_never_hide_nonzero() {
        assert_eq!(eighths(0, 100, 4), 0);
        assert_eq!(eighths(1, 1_000_000, 4), 1);
        assert_eq!(eighths(100, 100, 4), 32);
        assert_eq!(eighths(50, 100, 4), 16);
    }
}
