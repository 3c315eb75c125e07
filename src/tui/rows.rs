//! What each view lists, in order, after its filter: shared by key handling
//! (cursor bounds, Enter targets) and drawing, so both always agree.
//! Pure functions of `&Model`.

use std::collections::HashSet;

use super::model::{Model, ServiceState, View};

/// A selectable row of the Overview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OvRow {
    /// (host index in `services`, service index, hazard index)
    Hazard(usize, usize, usize),
    Host(usize),
    Db(usize),
}

fn matches(filter: &str, fields: &[&str]) -> bool {
    if filter.is_empty() {
        return true;
    }
    let f = filter.to_lowercase();
    fields.iter().any(|s| s.to_lowercase().contains(&f))
}

pub fn filter(m: &Model, v: View) -> &str {
    &m.ui.filter[v.index()]
}

/// Hazards first (live ones before those a runbook stopped), then hosts, then databases.
pub fn overview(m: &Model) -> Vec<OvRow> {
    let f = filter(m, View::Overview);
    let mut live = Vec::new();
    let mut stopped = Vec::new();
    for (hi, hs) in m.services.iter().enumerate() {
        for (si, s) in hs.services.iter().enumerate() {
            // One row per job (its first matching hazard; the row says how
            // many more it has), not one per job x hazard.
            let first = s
                .hazards
                .iter()
                .position(|z| matches(f, &[&hs.host, &s.name, &z.what, &s.databases.join(" ")]));
            if let Some(zi) = first {
                let row = OvRow::Hazard(hi, si, zi);
                // Stopped, or set aside (outside the drill, target unclear): after the live ones.
                if s.stopped_by_runbook || s.set_aside.is_some() {
                    stopped.push(row)
                } else {
                    live.push(row)
                }
            }
        }
    }
    live.extend(stopped);
    for (i, h) in m.hosts.iter().enumerate() {
        if matches(f, &[&h.name, h.address.as_deref().unwrap_or("")]) {
            live.push(OvRow::Host(i));
        }
    }
    let mut dbs: Vec<usize> = (0..m.databases.len())
        .filter(|i| {
            let d = &m.databases[*i];
            let addr = d.identity.as_ref().map(|x| x.address()).unwrap_or_default();
            matches(f, &[&d.name, &addr])
        })
        .collect();
    // `s`: inventory order, name, rows (most first).
    match m.ui.sort[View::Overview.index()] {
        1 => dbs.sort_by(|a, b| m.databases[*a].name.cmp(&m.databases[*b].name)),
        2 => dbs.sort_by(|a, b| {
            m.databases[*b]
                .total_rows
                .cmp(&m.databases[*a].total_rows)
                .then_with(|| m.databases[*a].name.cmp(&m.databases[*b].name))
        }),
        _ => {}
    }
    live.extend(dbs.into_iter().map(OvRow::Db));
    live
}

fn service_rank(s: &ServiceState) -> u8 {
    match (s.hazards.is_empty(), s.stopped_by_runbook) {
        (false, false) => 0,
        (false, true) => 1,
        (true, _) if s.databases.is_empty() => 3,
        _ => 2,
    }
}

/// (host index, service index): hosts in order, hazards first within a host.
pub fn services(m: &Model) -> Vec<(usize, usize)> {
    let f = filter(m, View::Services);
    let mut out = Vec::new();
    for (hi, hs) in m.services.iter().enumerate() {
        let mut idx: Vec<usize> = (0..hs.services.len())
            .filter(|si| {
                let s = &hs.services[*si];
                let hz: Vec<&str> = s.hazards.iter().map(|z| z.what.as_str()).collect();
                matches(
                    f,
                    &[
                        &hs.host,
                        &s.name,
                        &s.state,
                        &s.databases.join(" "),
                        &hz.join(" "),
                    ],
                )
            })
            .collect();
        // `s`: hazards first, name, state, databases (within each host).
        let sv = |si: &usize| &hs.services[*si];
        match m.ui.sort[View::Services.index()] {
            1 => idx.sort_by(|a, b| sv(a).name.cmp(&sv(b).name)),
            2 => idx.sort_by(|a, b| {
                sv(a)
                    .state
                    .cmp(&sv(b).state)
                    .then_with(|| sv(a).name.cmp(&sv(b).name))
            }),
            3 => idx.sort_by(|a, b| {
                sv(a)
                    .databases
                    .cmp(&sv(b).databases)
                    .then_with(|| sv(a).name.cmp(&sv(b).name))
            }),
            _ => idx.sort_by_key(|si| service_rank(sv(si))),
        }
        out.extend(idx.into_iter().map(|si| (hi, si)));
    }
    out
}

/// The database the Timeline shows.
pub fn timeline_db(m: &Model) -> Option<&str> {
    m.ui.selected_db
        .as_deref()
        .or_else(|| m.series.first().map(|(n, _)| n.as_str()))
}

/// Table indices of the shown database: tables with an alert first, then by name.
pub fn tables(m: &Model) -> Vec<usize> {
    let Some(db) = timeline_db(m) else {
        return Vec::new();
    };
    let Some(s) = m.series_of(db) else {
        return Vec::new();
    };
    let alerted: HashSet<&str> = m
        .alerts
        .iter()
        .filter(|a| a.database == db)
        .map(|a| a.table.as_str())
        .collect();
    let f = filter(m, View::Timeline);
    // One row per table name: a re-created table's older OIDs are merged
    // into its newest series (`DbSeries::merged`).
    let mut idx: Vec<usize> = (0..s.tables.len())
        .filter(|i| !s.superseded(*i))
        .filter(|i| matches(f, &[&s.tables[*i].name, &s.tables[*i].schema]))
        .collect();
    // `s`: alerts first (then name), name, rows (most first, then name).
    let sort = m.ui.sort[View::Timeline.index()];
    idx.sort_by(|a, b| {
        let (ta, tb) = (&s.tables[*a], &s.tables[*b]);
        let first = match sort {
            1 => std::cmp::Ordering::Equal,
            2 => tb.last().cmp(&ta.last()),
            _ => (!alerted.contains(ta.name.as_str())).cmp(&!alerted.contains(tb.name.as_str())),
        };
        first
            .then_with(|| {
                let lower = |s: &'_ str| s.chars().flat_map(char::to_lowercase).collect::<Vec<_>>();
                if ta.name.is_ascii() && tb.name.is_ascii() {
                    let (a, b) = (ta.name.bytes(), tb.name.bytes());
                    a.map(|c| c.to_ascii_lowercase())
                        .cmp(b.map(|c| c.to_ascii_lowercase()))
                } else {
                    lower(&ta.name).cmp(&lower(&tb.name))
                }
            })
            .then_with(|| ta.oid.cmp(&tb.oid))
    });
    idx
}

/// Position of the selected table in `tables(m)` (the first when none).
pub fn table_cursor(m: &Model, rows: &[usize]) -> usize {
    let (Some(db), Some((name, oid))) = (timeline_db(m), m.ui.selected_table.as_ref()) else {
        return 0;
    };
    let Some(s) = m.series_of(db) else { return 0 };
    rows.iter()
        .position(|i| s.tables[*i].name == *name && s.tables[*i].oid == *oid)
        .unwrap_or(0)
}

/// Steps of the loaded runbook, else the runbooks that can be started.
pub fn runbook_len(m: &Model) -> usize {
    match &m.runbook {
        Some(r) => r.steps.len(),
        None => m.runbooks.len(),
    }
}

/// Journal record indices matching the filter, oldest first.
pub fn journal(m: &Model) -> Vec<usize> {
    let f = filter(m, View::Journal);
    if f.is_empty() {
        return (0..m.journal.len()).collect();
    }
    (0..m.journal.len())
        .filter(|i| {
            let r = &m.journal[*i];
            matches(
                f,
                &[
                    &r.kind,
                    r.step.as_deref().unwrap_or(""),
                    r.target.as_deref().unwrap_or(""),
                    r.command.as_deref().unwrap_or(""),
                    &r.summary,
                ],
            )
        })
        .collect()
}

/// Number of rows of a view.
pub fn len(m: &Model, v: View) -> usize {
    match v {
        View::Overview => overview(m).len(),
        View::Services => services(m).len(),
        View::Timeline => tables(m).len(),
        View::Runbook => runbook_len(m),
        View::Journal => journal(m).len(),
    }
}

/// The cursor of a view, clamped to its rows (the journal follows its end).
pub fn cursor(m: &Model, v: View) -> usize {
    match v {
        View::Timeline => table_cursor(m, &tables(m)),
        View::Journal if m.ui.journal_follow => journal(m).len().saturating_sub(1),
        View::Runbook if m.ui.step_follow && m.runbook.is_some() => m
            .runbook
            .as_ref()
            .and_then(|r| r.current)
            .unwrap_or(0)
            .min(len(m, v).saturating_sub(1)),
        _ => m.ui.cursor[v.index()].min(len(m, v).saturating_sub(1)),
    }
}
