//! The key map as data: defaults in code, a user TOML file overrides only
//! the actions it names, and `?` help is generated from it. It never reads
//! a file the caller did not name.

use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use crate::diag::Diag;

use super::model::View;
use super::strings;

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Help,
    Command,
    Filter,
    Quit,
    ForceQuit,
    NextView,
    PrevView,
    ViewOverview,
    ViewServices,
    ViewTimeline,
    ViewRunbook,
    ViewJournal,
    Down,
    Up,
    PageDown,
    PageUp,
    Top,
    Bottom,
    Open,
    Back,
    NextDb,
    Note,
    Ack,
    ZoomIn,
    ZoomOut,
    PanLeft,
    PanRight,
    Abort,
    Retry,
    Pause,
    Sort,
    Migrations,
}

/// Where an action works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Timeline,
    Runbook,
}

impl Scope {
    fn applies(self, view: View) -> bool {
        match self {
            Scope::Global => true,
            Scope::Timeline => view == View::Timeline,
            Scope::Runbook => view == View::Runbook,
        }
    }
    fn overlaps(self, other: Scope) -> bool {
        self == Scope::Global || other == Scope::Global || self == other
    }
}

impl Action {
    /// Every action, in help order.
    pub const ALL: [Action; 32] = [
        Action::Help,
        Action::Command,
        Action::Filter,
        Action::Quit,
        Action::ForceQuit,
        Action::NextView,
        Action::PrevView,
        Action::ViewOverview,
        Action::ViewServices,
        Action::ViewTimeline,
        Action::ViewRunbook,
        Action::ViewJournal,
        Action::Down,
        Action::Up,
        Action::PageDown,
        Action::PageUp,
        Action::Top,
        Action::Bottom,
        Action::Open,
        Action::Back,
        Action::NextDb,
        Action::Note,
        Action::Ack,
        Action::ZoomIn,
        Action::ZoomOut,
        Action::PanLeft,
        Action::PanRight,
        Action::Abort,
        Action::Retry,
        Action::Pause,
        Action::Sort,
        Action::Migrations,
    ];

    /// The name used in the key map file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Help => "help",
            Action::Command => "command",
            Action::Filter => "filter",
            Action::Quit => "quit",
            Action::ForceQuit => "force_quit",
            Action::NextView => "next_view",
            Action::PrevView => "prev_view",
            Action::ViewOverview => "view_overview",
            Action::ViewServices => "view_services",
            Action::ViewTimeline => "view_timeline",
            Action::ViewRunbook => "view_runbook",
            Action::ViewJournal => "view_journal",
            Action::Down => "down",
            Action::Up => "up",
            Action::PageDown => "page_down",
            Action::PageUp => "page_up",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Open => "open",
            Action::Back => "back",
            Action::NextDb => "next_db",
            Action::Note => "note",
            Action::Ack => "acknowledge",
            Action::ZoomIn => "zoom_in",
            Action::ZoomOut => "zoom_out",
            Action::PanLeft => "pan_left",
            Action::PanRight => "pan_right",
            Action::Abort => "abort",
            Action::Retry => "retry",
            Action::Pause => "pause",
            Action::Sort => "sort",
            Action::Migrations => "migrations",
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            Action::ZoomIn | Action::ZoomOut | Action::PanLeft | Action::PanRight => {
                Scope::Timeline
            }
            Action::Abort | Action::Retry => Scope::Runbook,
            _ => Scope::Global,
        }
    }

    fn defaults(self) -> &'static [&'static str] {
        match self {
            Action::Help => &["?"],
            Action::Command => &[":"],
            Action::Filter => &["/"],
            Action::Quit => &["q"],
            Action::ForceQuit => &["ctrl-c"],
            Action::NextView => &["tab"],
            Action::PrevView => &["backtab"],
            Action::ViewOverview => &["1"],
            Action::ViewServices => &["2"],
            Action::ViewTimeline => &["3"],
            Action::ViewRunbook => &["4"],
            Action::ViewJournal => &["5"],
            Action::Down => &["j", "down"],
            Action::Up => &["k", "up"],
            Action::PageDown => &["ctrl-d", "pgdn"],
            Action::PageUp => &["ctrl-u", "pgup"],
            Action::Top => &["g", "home"],
            Action::Bottom => &["G", "end"],
            Action::Open => &["enter"],
            Action::Back => &["esc"],
            Action::NextDb => &["d"],
            Action::Note => &["n"],
            Action::Ack => &["a"],
            Action::ZoomIn => &["+", "="],
            Action::ZoomOut => &["-"],
            Action::PanLeft => &["h", "left"],
            Action::PanRight => &["l", "right"],
            Action::Abort => &["X"],
            Action::Retry => &["r"],
            Action::Pause => &["p"],
            Action::Sort => &["s"],
            Action::Migrations => &["m"],
        }
    }
}

/// One key with its modifiers, normalised (no SHIFT on characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyBind {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl KeyBind {
    pub fn from_event(k: &KeyEvent) -> KeyBind {
        let mut mods = k.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match k.code {
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::Char(c) => KeyCode::Char(c),
            other => other,
        };
        if matches!(code, KeyCode::BackTab) {
            mods.remove(KeyModifiers::SHIFT);
        }
        KeyBind { code, mods }
    }

    /// Parses `j`, `G`, `?`, `ctrl-d`, `alt-x`, `enter`, `esc`, `tab`,
    /// `backtab`, `up`, `down`, `left`, `right`, `pgup`, `pgdn`, `home`,
    /// `end`, `space`, `backspace`, `delete`, `insert`, `f1`..`f12`.
    pub fn parse(s: &str) -> Option<KeyBind> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower
                .strip_prefix("ctrl-")
                .or_else(|| lower.strip_prefix("c-"))
            {
                mods |= KeyModifiers::CONTROL;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower
                .strip_prefix("alt-")
                .or_else(|| lower.strip_prefix("m-"))
            {
                mods |= KeyModifiers::ALT;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" | "shift-tab" => KeyCode::BackTab,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                f if f.starts_with('f') => match f[1..].parse::<u8>() {
                    Ok(n @ 1..=12) => KeyCode::F(n),
                    _ => return None,
                },
                _ => return None,
            },
        };
        Some(KeyBind { code, mods })
    }
}

impl fmt::Display for KeyBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::F(n) => write!(f, "f{n}"),
            _ => f.write_str("?"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyMapError {
    #[error("key map '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diag>),
}

/// Action -> keys, in `Action::ALL` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    binds: Vec<(Action, Vec<KeyBind>)>,
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap {
            binds: Action::ALL
                .iter()
                .map(|a| {
                    (
                        *a,
                        a.defaults()
                            .iter()
                            .filter_map(|k| KeyBind::parse(k))
                            .collect(),
                    )
                })
                .collect(),
        }
    }
}

/// `$XDG_CONFIG_HOME/lifeline/keys.toml`, else `~/.config/lifeline/keys.toml`.
pub fn default_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| std::path::PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("lifeline").join("keys.toml"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl KeyMap {
    /// The keys of an action.
    pub fn keys(&self, action: Action) -> &[KeyBind] {
        self.binds
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// The action a key does in `view`; view-specific actions win.
    pub fn action(&self, view: View, key: &KeyEvent) -> Option<Action> {
        let kb = KeyBind::from_event(key);
        let mut found = None;
        for (a, keys) in &self.binds {
            if a.scope().applies(view) && keys.contains(&kb) {
                if a.scope() != Scope::Global {
                    return Some(*a);
                }
                found.get_or_insert(*a);
            }
        }
        found
    }

    /// Keys of an action joined for display ("j/down").
    pub fn label(&self, action: Action) -> String {
        self.keys(action)
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Defaults patched with a TOML file: `action = "key"` or
    /// `action = ["key", ...]`; an action not named keeps its defaults.
    pub fn load(path: &Path) -> Result<KeyMap, KeyMapError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyMapError::Io {
            path: path.display().to_string(),
            source,
        })?;
        KeyMap::default().patched(&path.display().to_string(), &text)
    }

    /// Applies a key map file's text to `self` (see `load`).
    pub fn patched(mut self, file: &str, text: &str) -> Result<KeyMap, KeyMapError> {
        let table: toml::Spanned<toml::Table> = toml::from_str(text).map_err(|e| {
            KeyMapError::Invalid(vec![Diag::at(file, text, e.span(), None, e.message())])
        })?;
        // Spans of each key: re-read with toml's span-aware deserializer.
        let spans: std::collections::BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>> =
            toml::from_str(text).unwrap_or_default();
        let span_of = |key: &str| {
            spans
                .iter()
                .find(|(k, _)| k.get_ref() == key)
                .map(|(k, _)| k.span())
        };
        let mut diags = Vec::new();
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        for (key, value) in table.get_ref() {
            let Some(action) = Action::ALL.iter().find(|a| a.name() == key) else {
                diags.push(Diag::at(
                    file,
                    text,
                    span_of(key),
                    Some(key),
                    strings::keymap_unknown_action(key, &names),
                ));
                continue;
            };
            let list = match value.clone().try_into::<OneOrMany>() {
                Ok(OneOrMany::One(s)) => vec![s],
                Ok(OneOrMany::Many(v)) => v,
                Err(_) => {
                    diags.push(Diag::at(
                        file,
                        text,
                        span_of(key),
                        Some(key),
                        strings::KEYMAP_NOT_KEYS,
                    ));
                    continue;
                }
            };
            let mut keys = Vec::new();
            for k in &list {
                match KeyBind::parse(k) {
                    Some(kb) => keys.push(kb),
                    None => diags.push(Diag::at(
                        file,
                        text,
                        span_of(key),
                        Some(key),
                        strings::keymap_bad_key(k),
                    )),
                }
            }
            if let Some(slot) = self.binds.iter_mut().find(|(a, _)| a == action) {
                slot.1 = keys;
            }
        }
        if diags.is_empty() {
            for (i, (a, ka)) in self.binds.iter().enumerate() {
                for (b, kb) in &self.binds[i + 1..] {
                    if !a.scope().overlaps(b.scope()) {
                        continue;
                    }
                    if let Some(k) = ka.iter().find(|k| kb.contains(k)) {
                        let culprit = if span_of(b.name()).is_some() { b } else { a };
                        diags.push(Diag::at(
                            file,
                            text,
                            span_of(culprit.name()),
                            Some(culprit.name()),
                            strings::keymap_conflict(&k.to_string(), a.name(), b.name()),
                        ));
                    }
                }
            }
        }
        if diags.is_empty() {
            Ok(self)
        } else {
            Err(KeyMapError::Invalid(diags))
        }
    }

    /// Help lines generated from the map: (section, keys, what it does).
    pub fn help(&self) -> Vec<(&'static str, String, &'static str)> {
        self.binds
            .iter()
            .filter(|(_, k)| !k.is_empty())
            .map(|(a, _)| {
                let section = match a.scope() {
                    Scope::Global => strings::HELP_SECTION_ALL,
                    Scope::Timeline => strings::HELP_SECTION_TIMELINE,
                    Scope::Runbook => strings::HELP_SECTION_RUNBOOK,
                };
                (section, self.label(*a), strings::action_help(*a))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn defaults_are_parseable_and_conflict_free() {
        for a in Action::ALL {
            assert_eq!(
                KeyMap::default().keys(a).len(),
                a.defaults().len(),
                "{}",
                a.name()
            );
        }
        // An empty patch runs the conflict check over the defaults.
        KeyMap::default().patched("keys.toml", "").unwrap();
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in [
            "j",
            "G",
            "?",
            "ctrl-d",
            "alt-x",
            "enter",
            "esc",
            "tab",
            "shift-tab",
            "up",
            "pgdn",
            "home",
            "f5",
            "space",
            "+",
        ] {
            let k = KeyBind::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(k.to_string(), s);
        }
        assert_eq!(KeyBind::parse("C-D"), KeyBind::parse("ctrl-d"));
        assert_eq!(KeyBind::parse("ctrl-x-y"), None);
        assert_eq!(KeyBind::parse("f13"), None);
        assert_eq!(KeyBind::parse(""), None);
    }

    #[test]
    fn lookup_normalises_shift_and_scopes() {
        let m = KeyMap::default();
        let shift_g = key(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(m.action(View::Journal, &shift_g), Some(Action::Bottom));
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(m.action(View::Overview, &ctrl_c), Some(Action::ForceQuit));
        let plus = key(KeyCode::Char('+'), KeyModifiers::NONE);
        assert_eq!(m.action(View::Timeline, &plus), Some(Action::ZoomIn));
        assert_eq!(m.action(View::Overview, &plus), None);
        let backtab = key(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(m.action(View::Overview, &backtab), Some(Action::PrevView));
        let h = key(KeyCode::Char('h'), KeyModifiers::NONE);
        assert_eq!(m.action(View::Timeline, &h), Some(Action::PanLeft));
    }

    #[test]
    fn override_replaces_only_what_it_names() {
        let m = KeyMap::default()
            .patched("keys.toml", "down = [\"ctrl-n\", \"down\"]\nquit = \"Q\"\n")
            .unwrap();
        assert_eq!(m.label(Action::Down), "ctrl-n/down");
        assert_eq!(m.label(Action::Quit), "Q");
        // Untouched actions keep their defaults.
        assert_eq!(m.label(Action::Up), "k/up");
        assert_eq!(m.label(Action::Help), "?");
        let j = key(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(m.action(View::Overview, &j), None);
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(m.action(View::Overview, &q), None);
        let cap_q = key(KeyCode::Char('Q'), KeyModifiers::SHIFT);
        assert_eq!(m.action(View::Overview, &cap_q), Some(Action::Quit));
        // And the generated help follows the file.
        assert!(
            m.help()
                .iter()
                .any(|(_, k, what)| k == "ctrl-n/down"
                    && *what == strings::action_help(Action::Down))
        );
    }

    #[test]
    fn load_from_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.toml");
        std::fs::write(&p, "help = \"f1\"\n").unwrap();
        let m = KeyMap::load(&p).unwrap();
        assert_eq!(m.label(Action::Help), "f1");
        let missing = KeyMap::load(&d.path().join("nope.toml")).unwrap_err();
        assert!(missing.to_string().contains("nope.toml"), "{missing}");
    }

    #[test]
    fn bad_files_name_line_and_key() {
        let err = KeyMap::default()
            .patched("keys.toml", "down = \"j\"\ndwon = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("keys.toml:2:1: 'dwon'"), "{err}");
        assert!(err.contains("down"), "{err}");

        let err = KeyMap::default()
            .patched("keys.toml", "\nup = \"ctlr-k\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("keys.toml:2:1: 'up'"), "{err}");
        assert!(err.contains("'ctlr-k'"), "{err}");

        let err = KeyMap::default()
            .patched("keys.toml", "up = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'up'"), "{err}");

        // A key bound to two actions that work in the same place.
        let err = KeyMap::default()
            .patched("keys.toml", "help = \"j\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'j'") && err.contains("help") && err.contains("down"),
            "{err}"
        );

        // The same key in two different views is fine.
        KeyMap::default()
            .patched("keys.toml", "abort = \"+\"\n")
            .unwrap();

        let err = KeyMap::default()
            .patched("keys.toml", "down = [\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("keys.toml:"), "{err}");
    }
}
