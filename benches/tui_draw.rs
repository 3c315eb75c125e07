//! Console draw cost: the Timeline view at 200x60 with 200 tables and a day
//! of samples (8640 rounds, one every 10 s) drawn into a ratatui TestBackend,
//! per frame; against ratatui's stock Chart + Sparkline widgets fed the same
//! data in the same run, and an empty frame. Also ingest time, the model's
//! memory, and start to first frame of the demo binary in tmux.
//! `cargo bench --bench tui_draw [-- FRAMES]`

// A benchmark program: a failed setup step should abort it loudly.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::{Constraint, Layout};
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Sparkline, Widget};

use lifeline::engine::types::DbIdentity;
use lifeline::samples::{Sample, TableCount};
use lifeline::tui::event::UiEvent;
use lifeline::tui::model::{Model, View, ZOOMS};
use lifeline::tui::theme::{ColorMode, Theme};
use lifeline::tui::view::Console;

const TABLES: usize = 200;
const ROUNDS: usize = 8640;
const W: u16 = 200;
const H: u16 = 60;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn samples() -> impl Iterator<Item = Sample> {
    let t0 = Utc.with_ymd_and_hms(2026, 12, 9, 13, 0, 0).unwrap();
    let identity = DbIdentity {
        server: "db.example:5432".into(),
        system_identifier: "7312345678901234567".into(),
        server_started_at: None,
        oid: Some(16384),
        database: "app".into(),
    };
    (0..ROUNDS).map(move |r| Sample {
        ts: t0 + chrono::Duration::seconds(10 * r as i64),
        database: "main".into(),
        identity: identity.clone(),
        tables: (0..TABLES)
            .map(|i| TableCount {
                schema: "public".into(),
                name: format!("table_{i:03}"),
                oid: 20_000 + i as u32,
                // Growing counts with a daily wave; table 0 is wiped at 3/4 of the day.
                rows: if i == 0 && r > ROUNDS * 3 / 4 {
                    0
                } else {
                    (1_000 * (i as i64 + 1))
                        + (r as i64 * (i as i64 % 7))
                        + ((r as f64 / 300.0).sin() * 500.0) as i64
                },
                exact: i % 3 == 0,
            })
            .collect(),
    })
}

/// (min, p50, mean, p99) in ms.
fn stats(mut v: Vec<Duration>) -> (f64, f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    let p99 = ms(v[(v.len() * 99 / 100).min(v.len() - 1)]);
    (ms(v[0]), ms(v[v.len() / 2]), mean, p99)
}

type Stats = (f64, f64, f64, f64);

fn time_frames(frames: usize, mut draw: impl FnMut(&mut Terminal<TestBackend>)) -> Stats {
    let mut term = Terminal::new(TestBackend::new(W, H)).unwrap();
    for _ in 0..5 {
        draw(&mut term);
    }
    let mut v = Vec::with_capacity(frames);
    for _ in 0..frames {
        let t = Instant::now();
        draw(&mut term);
        v.push(t.elapsed());
    }
    stats(v)
}

/// Start to first frame of the demo binary: start a fresh private tmux
/// server running it and poll the pane every 2 ms until the first view is
/// drawn (tmux's own start-up is included, so this is an upper bound).
fn first_frame_ms() -> Option<f64> {
    let bin = env!("CARGO_BIN_EXE_lifeline-tui-demo");
    let mut best = f64::MAX;
    for i in 0..5 {
        let server = format!("lifeline-bench-{}-{i}", std::process::id());
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .args(["-L", &server, "-f", "/dev/null"])
                .args(args)
                .output()
        };
        let cmd = format!("env TERM=xterm-256color LANG=C.UTF-8 {bin} --restore-rate 0");
        let t = Instant::now();
        tmux(&["new-session", "-d", "-x", "200", "-y", "60", &cmd]).ok()?;
        loop {
            let o = tmux(&["capture-pane", "-p"]).ok()?;
            if String::from_utf8_lossy(&o.stdout).contains("Hazards:") {
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = tmux(&["kill-server"]);
    }
    (best < f64::MAX).then_some(best)
}

fn main() {
    let frames: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let now = Utc.with_ymd_and_hms(2026, 12, 10, 13, 0, 0).unwrap();

    let rss0 = rss_kib();
    let mut m = Model::new(now);
    m.theme = Theme {
        color: ColorMode::Indexed,
        ascii: false,
    };
    let t = Instant::now();
    for s in samples() {
        m.apply(UiEvent::Sample(s));
    }
    let ingest = t.elapsed();
    let rss1 = rss_kib();
    m.ui.view = View::Timeline;
    m.ui.selected_db = Some("main".into());
    m.ui.selected_table = Some(("table_000".into(), 20_000));
    println!(
        "model: {TABLES} tables x {ROUNDS} rounds; ingest {:.0} ms ({:.1} us/round); series heap ~{:.1} MiB; RSS +{:.1} MiB",
        ingest.as_secs_f64() * 1e3,
        ingest.as_secs_f64() * 1e6 / ROUNDS as f64,
        m.heap_bytes() as f64 / 1048576.0,
        (rss1.saturating_sub(rss0)) as f64 / 1024.0
    );

    let report = |name: &str, (min, p50, mean, p99): Stats| {
        println!("{name:<55} min {min:6.3}  p50 {p50:6.3}  mean {mean:6.3}  p99 {p99:6.3} ms");
    };
    println!("{W}x{H}, {frames} frames each (terminal.draw into TestBackend, diff included):");

    for (zoom, label) in [(2usize, "1 h"), (6, "24 h")] {
        let mut mm = m.clone();
        mm.ui.zoom = zoom;
        assert_eq!(ZOOMS[zoom], if zoom == 2 { 3600 } else { 86_400 });
        report(
            &format!("lifeline Timeline view, window {label}"),
            time_frames(frames, |term| {
                term.draw(|f| f.render_widget(Console { model: &mm }, f.area()))
                    .unwrap();
            }),
        );
    }

    // The peer: ratatui's stock Chart (Braille, every point of the selected
    // table) above stock Sparklines (one per visible table, last N points).
    let series = &m.series_of("main").unwrap();
    let pts: Vec<(f64, f64)> = series
        .times
        .iter()
        .zip(&series.tables[0].values)
        .map(|(t, v)| (*t as f64, *v as f64))
        .collect();
    let x0 = *series.times.first().unwrap() as f64;
    let x1 = *series.times.last().unwrap() as f64;
    let ymax = pts.iter().map(|p| p.1).fold(1.0, f64::max);
    let spark: Vec<Vec<u64>> = series
        .tables
        .iter()
        .map(|t| t.values.iter().map(|v| (*v).max(0) as u64).collect())
        .collect();
    report(
        "ratatui Chart (8640 pts) + Sparkline per table, 24 h",
        time_frames(frames, |term| {
            term.draw(|f| {
                let [top, rest] =
                    Layout::vertical([Constraint::Length(26), Constraint::Min(0)]).areas(f.area());
                let ds = Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .data(&pts);
                Chart::new(vec![ds])
                    .x_axis(Axis::default().bounds([x0, x1]))
                    .y_axis(Axis::default().bounds([0.0, ymax]))
                    .render(top, f.buffer_mut());
                for (i, row) in rest.rows().enumerate() {
                    let data = &spark[i % spark.len()];
                    let w = row.width as usize;
                    Sparkline::default()
                        .data(&data[data.len() - w..])
                        .render(row, f.buffer_mut());
                }
            })
            .unwrap();
        }),
    );
    report(
        "empty frame (Clear only)",
        time_frames(frames, |term| {
            term.draw(|f| f.render_widget(ratatui::widgets::Clear, f.area()))
                .unwrap();
        }),
    );
    match first_frame_ms() {
        Some(ms) => println!("start to first frame, demo binary in tmux (best of 5): {ms:.0} ms"),
        None => println!("start to first frame: tmux not available"),
    }
}
