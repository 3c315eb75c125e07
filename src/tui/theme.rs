//! Colours, symbols and borders for the console: 256 colours, 16 colours or
//! none (`NO_COLOR`), UTF-8 or ASCII. Every state is also told by a symbol
//! or a word, so colour is never the only signal.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

/// How many colours the terminal gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// `NO_COLOR`: no colour at all; only bold, dim, italic and reverse.
    None,
    /// The 16 ANSI colours.
    Basic,
    /// The xterm 256-colour palette (Okabe-Ito, colour-blind safe).
    Indexed,
}

/// What a piece of text means; the theme turns it into a style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Normal,
    Ok,
    Warn,
    Bad,
    Info,
    Running,
    Muted,
    Stale,
    Selected,
    Title,
    Key,
    Hazard,
    Input,
}

/// Symbols drawn on screen, in a UTF-8 and an ASCII variant.
#[derive(Debug)]
pub struct Glyphs {
    pub ok: &'static str,
    pub bad: &'static str,
    pub warn: &'static str,
    pub running: &'static str,
    pub pending: &'static str,
    pub skipped: &'static str,
    pub interrupted: &'static str,
    pub unknown: &'static str,
    pub stopped: &'static str,
    pub alert: &'static str,
    pub event: &'static str,
    pub note: &'static str,
    pub incident: &'static str,
    pub arrow: &'static str,
    pub sep: &'static str,
    pub ellipsis: &'static str,
    pub cursor: &'static str,
    pub gauge_full: &'static str,
    pub gauge_empty: &'static str,
    /// Nine levels, empty to full, for sparklines and the chart's top cell.
    pub bars: [&'static str; 9],
    pub vline: &'static str,
    pub ytick: &'static str,
}

pub static UTF8: Glyphs = Glyphs {
    ok: "✓",
    bad: "✗",
    warn: "▲",
    running: "▶",
    pending: "·",
    skipped: "»",
    interrupted: "↯",
    unknown: "?",
    stopped: "■",
    alert: "▲",
    event: "◆",
    note: "✎",
    incident: "┃",
    arrow: "→",
    sep: "│",
    ellipsis: "…",
    cursor: "▶",
    gauge_full: "█",
    gauge_empty: "░",
    bars: [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"],
    vline: "│",
    ytick: "┤",
};

pub static ASCII: Glyphs = Glyphs {
    ok: "+",
    bad: "x",
    warn: "!",
    running: ">",
    pending: ".",
    skipped: "-",
    interrupted: "~",
    unknown: "?",
    stopped: "#",
    alert: "^",
    event: "*",
    note: "n",
    incident: "|",
    arrow: "->",
    sep: "|",
    ellipsis: "...",
    cursor: ">",
    gauge_full: "#",
    gauge_empty: "-",
    bars: [" ", ".", ".", ":", ":", "=", "=", "#", "#"],
    vline: "|",
    ytick: "+",
};

const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// The look of one console: colour mode and character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: ColorMode,
    pub ascii: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            color: ColorMode::Indexed,
            ascii: false,
        }
    }
}

impl Theme {
    /// From the process environment (see `from_env`).
    pub fn detect() -> Theme {
        Theme::from_env(|k| std::env::var(k).ok())
    }

    /// `NO_COLOR` (any non-empty value) turns colour off; `TERM` with
    /// `256color` or `COLORTERM` of `truecolor`/`24bit` gives 256 colours,
    /// otherwise 16. `LIFELINE_ASCII=1` forces ASCII, `=0` forces UTF-8;
    /// else UTF-8 only when `LC_ALL`, `LC_CTYPE` or `LANG` (the first set)
    /// names UTF-8.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Theme {
        let set = |k: &str| get(k).filter(|v| !v.is_empty());
        let color = if set("NO_COLOR").is_some() {
            ColorMode::None
        } else {
            let term = set("TERM").unwrap_or_default();
            let colorterm = set("COLORTERM").unwrap_or_default().to_ascii_lowercase();
            if term.contains("256color") || colorterm == "truecolor" || colorterm == "24bit" {
                ColorMode::Indexed
            } else {
                ColorMode::Basic
            }
        };
        let ascii = match set("LIFELINE_ASCII").as_deref() {
            Some("0") => false,
            Some(_) => true,
            None => {
                let locale = set("LC_ALL")
                    .or_else(|| set("LC_CTYPE"))
                    .or_else(|| set("LANG"))
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                !(locale.contains("utf-8") || locale.contains("utf8"))
            }
        };
        Theme { color, ascii }
    }

    pub fn glyphs(&self) -> &'static Glyphs {
        if self.ascii { &ASCII } else { &UTF8 }
    }

    pub fn border(&self) -> border::Set<'static> {
        if self.ascii {
            ASCII_BORDER
        } else {
            border::ROUNDED
        }
    }

    fn pick(&self, indexed: u8, basic: Color) -> Option<Color> {
        match self.color {
            ColorMode::None => None,
            ColorMode::Basic => Some(basic),
            ColorMode::Indexed => Some(Color::Indexed(indexed)),
        }
    }

    fn fg(&self, indexed: u8, basic: Color) -> Style {
        match self.pick(indexed, basic) {
            Some(c) => Style::new().fg(c),
            None => Style::new(),
        }
    }

    /// The style of a role. Without colour, meaning falls back to bold,
    /// dim, italic and reverse; the symbol or word next to it does the rest.
    pub fn style(&self, role: Role) -> Style {
        let none = self.color == ColorMode::None;
        match role {
            Role::Normal => Style::new(),
            // Okabe-Ito blue, orange, vermillion, sky blue, yellow.
            Role::Ok => self.fg(32, Color::Cyan),
            Role::Warn => self.fg(214, Color::Yellow).add_modifier(Modifier::BOLD),
            Role::Bad => self.fg(202, Color::LightRed).add_modifier(Modifier::BOLD),
            Role::Hazard => self.fg(202, Color::LightRed).add_modifier(Modifier::BOLD),
            Role::Info => self.fg(75, Color::LightBlue),
            Role::Running => self.fg(220, Color::Yellow).add_modifier(Modifier::BOLD),
            Role::Muted => {
                if none {
                    Style::new().add_modifier(Modifier::DIM)
                } else {
                    self.fg(245, Color::Gray)
                }
            }
            Role::Stale => self
                .fg(245, Color::Gray)
                .add_modifier(Modifier::DIM | Modifier::ITALIC),
            Role::Selected => match self.pick(237, Color::Blue) {
                Some(c) => Style::new().bg(c).add_modifier(Modifier::BOLD),
                None => Style::new().add_modifier(Modifier::REVERSED),
            },
            Role::Title => Style::new().add_modifier(Modifier::BOLD),
            Role::Key => self.fg(75, Color::LightBlue).add_modifier(Modifier::BOLD),
            Role::Input => Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        }
    }

    /// Header style for an environment label: production red, staging
    /// yellow, lab/drill/dev/test blue, anything else grey. Without colour,
    /// reversed and bold (the label word says which).
    pub fn env_style(&self, env: &str) -> Style {
        let e = env.to_ascii_lowercase();
        let (idx, basic, fg_dark) = if e.starts_with("prod") || e == "live" {
            (160u8, Color::Red, false)
        } else if e.starts_with("stag") || e.starts_with("pre") || e == "uat" {
            (220, Color::Yellow, true)
        } else if e == "lab" || e == "drill" || e.starts_with("dev") || e.starts_with("test") {
            (25, Color::Blue, false)
        } else {
            (240, Color::DarkGray, false)
        };
        match self.pick(idx, basic) {
            Some(bg) => Style::new()
                .bg(bg)
                .fg(if fg_dark { Color::Black } else { Color::White })
                .add_modifier(Modifier::BOLD),
            None => Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        }
    }

    /// The header bar's own background (the env badge sits on it).
    pub fn bar(&self) -> Style {
        match self.pick(236, Color::Black) {
            Some(bg) => Style::new().bg(bg),
            None => Style::new(),
        }
    }

    /// A badge such as READ-ONLY or DRILL: always reversed so it reads as a
    /// badge without colour too.
    pub fn badge(&self, role: Role) -> Style {
        self.style(role)
            .add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn detection() {
        let t = Theme::from_env(env(&[("TERM", "xterm-256color"), ("LANG", "en_US.UTF-8")]));
        assert_eq!(
            t,
            Theme {
                color: ColorMode::Indexed,
                ascii: false
            }
        );
        let t = Theme::from_env(env(&[("TERM", "xterm"), ("LANG", "C")]));
        assert_eq!(
            t,
            Theme {
                color: ColorMode::Basic,
                ascii: true
            }
        );
        let t = Theme::from_env(env(&[
            ("TERM", "xterm-256color"),
            ("NO_COLOR", "1"),
            ("LC_ALL", "C.UTF-8"),
            ("LIFELINE_ASCII", "1"),
        ]));
        assert_eq!(
            t,
            Theme {
                color: ColorMode::None,
                ascii: true
            }
        );
        // An empty NO_COLOR does not count (no-color.org).
        let t = Theme::from_env(env(&[("NO_COLOR", ""), ("COLORTERM", "truecolor")]));
        assert_eq!(t.color, ColorMode::Indexed);
        // LC_ALL wins over LANG.
        let t = Theme::from_env(env(&[("LC_ALL", "POSIX"), ("LANG", "en_US.UTF-8")]));
        assert!(t.ascii);
        let t = Theme::from_env(env(&[("LIFELINE_ASCII", "0")]));
        assert!(!t.ascii);
    }

    #[test]
    fn no_color_has_no_colour() {
        let t = Theme {
            color: ColorMode::None,
            ascii: true,
        };
        for role in [
            Role::Normal,
            Role::Ok,
            Role::Warn,
            Role::Bad,
            Role::Info,
            Role::Running,
            Role::Muted,
            Role::Stale,
            Role::Selected,
            Role::Title,
            Role::Key,
            Role::Hazard,
            Role::Input,
        ] {
            let s = t.style(role);
            assert_eq!((s.fg, s.bg), (None, None), "{role:?}");
        }
        for e in ["production", "staging", "lab", "other"] {
            let s = t.env_style(e);
            assert_eq!((s.fg, s.bg), (None, None));
        }
    }

    #[test]
    fn ascii_glyphs_are_ascii() {
        let g = &ASCII;
        for s in [
            g.ok,
            g.bad,
            g.warn,
            g.running,
            g.pending,
            g.skipped,
            g.interrupted,
            g.unknown,
            g.stopped,
            g.alert,
            g.event,
            g.note,
            g.incident,
            g.arrow,
            g.sep,
            g.ellipsis,
            g.cursor,
            g.gauge_full,
            g.gauge_empty,
            g.vline,
            g.ytick,
        ]
        .iter()
        .chain(g.bars.iter())
        {
            assert!(s.is_ascii(), "{s:?}");
        }
        let b = ASCII_BORDER;
        assert!(b.top_left.is_ascii() && b.horizontal_top.is_ascii() && b.vertical_left.is_ascii());
    }
}
