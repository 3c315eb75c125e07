//! The one sanitiser for terminal-bound text: C0/C1 controls, DEL, ESC and
//! bidi overrides become visible escapes (`\x1b`, `\u{202e}`). The CLI, the
//! Markdown export and the console all use it; it never drops a character.

use std::borrow::Cow;
use std::fmt::Write as _;

fn hostile(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

fn escape(c: char, out: &mut String) {
    let n = c as u32;
    if n <= 0xff {
        let _ = write!(out, "\\x{n:02x}");
    } else {
        let _ = write!(out, "\\u{{{n:x}}}");
    }
}

fn render(s: &str, keep_layout: bool) -> Cow<'_, str> {
    let keep = |c: char| keep_layout && (c == '\n' || c == '\t');
    if !s.chars().any(|c| hostile(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hostile(c) && !keep(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line for a terminal: every control character (newline and tab
/// included) shown as an escape.
pub fn visible(s: &str) -> Cow<'_, str> {
    render(s, false)
}

/// Multi-line text for a terminal: like [`visible`] but `\n` and `\t` are
/// kept as layout.
pub fn visible_text(s: &str) -> Cow<'_, str> {
    render(s, true)
}

/// JSON text for a terminal: serialised JSON keeps its exact strings, but
/// DEL, C1 controls, bidi overrides and line/paragraph separators (which
/// serde_json leaves raw) become `\uXXXX` escapes. Valid JSON, same values.
pub fn json_safe(s: &str) -> Cow<'_, str> {
    // Raw `\n`, `\t` and `\r` can only be JSON's own layout (serde escapes
    // them inside strings): they stay.
    let unsafe_char = |c: char| {
        (hostile(c) && !matches!(c, '\n' | '\t' | '\r')) || matches!(c, '\u{2028}' | '\u{2029}')
    };
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `println!` for the CLI: the formatted text passes through [`visible_text`].
#[macro_export]
macro_rules! outln {
    () => { println!() };
    ($($arg:tt)*) => { println!("{}", $crate::term::visible_text(&format!($($arg)*))) };
}

/// `print!` for the CLI, through [`visible_text`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { print!("{}", $crate::term::visible_text(&format!($($arg)*))) };
}

/// `eprintln!` for the CLI, through [`visible_text`].
#[macro_export]
macro_rules! errln {
    () => { eprintln!() };
    ($($arg:tt)*) => { eprintln!("{}", $crate::term::visible_text(&format!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("plain text, ünïcode ✓", "plain text, ünïcode ✓")]
    #[case("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title")]
    #[case("a\x1b[2Jb", "a\\x1b[2Jb")]
    #[case("c1\u{9b}31m", "c1\\x9b31m")]
    #[case("del\x7f", "del\\x7f")]
    #[case("cr\rover", "cr\\x0dover")]
    #[case("two\nlines\ttab", "two\\x0alines\\x09tab")]
    #[case("bidi \u{202e}txt.exe", "bidi \\u{202e}txt.exe")]
    fn one_line(#[case] input: &str, #[case] want: &str) {
        assert_eq!(visible(input), want);
        assert_eq!(visible(want), want, "idempotent");
    }

    #[test]
    fn text_keeps_newline_and_tab_only() {
        assert_eq!(
            visible_text("a\tb\nc\x1b[31m\r\n"),
            "a\tb\nc\\x1b[31m\\x0d\n"
        );
    }

    #[test]
    fn json_stays_json_with_the_exact_text() {
        let v = serde_json::json!({"t": "a\u{1b}[2J\u{9b}\u{7f}\u{202e}\u{2028}z"});
        let raw = serde_json::to_string(&v).unwrap();
        let safe = json_safe(&raw);
        assert!(
            !safe
                .chars()
                .any(|c| c.is_control() || c == '\u{202e}' || c == '\u{2028}')
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }
}
