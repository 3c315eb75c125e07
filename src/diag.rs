//! Diagnostics for files the operator writes (inventory, runbooks):
//! every error names `file:line:col` and, where there is one, the key.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file, located by byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub key: Option<String>,
    pub message: String,
}

impl Diag {
    /// Builds a diagnostic for `span` (byte offsets) in `text`.
    pub fn at(
        file: &str,
        text: &str,
        span: Option<Range<usize>>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        let (line, col) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        Diag {
            file: file.to_string(),
            line,
            col,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if let Some(key) = &self.key {
            write!(f, "'{key}': ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// A list of diagnostics; the error type of every config loader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diags(pub Vec<Diag>);

impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diags {}

/// 1-based line and column (in characters) of byte offset `pos`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in text.bytes().enumerate() {
        if i >= pos {
            break;
        }
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let col = text
        .get(line_start..pos)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Cleans a toml/serde message for a person: drops the crate's own
/// rendering of the source line, keeps the first sentence.
pub fn clean_message(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(msg)
        .trim_end_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 8), (2, 3));
        assert_eq!(line_col(t, 999), (3, 1));
    }

    #[test]
    fn display_names_file_line_col_and_key() {
        let d = Diag::at("inv.toml", "x\ny = 2", Some(2..3), Some("y"), "bad");
        assert_eq!(d.to_string(), "inv.toml:2:1: 'y': bad");
    }
}
