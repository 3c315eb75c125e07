//! Markdown rendering (GitHub/GitLab flavoured): tables, code spans, a
//! text sparkline per table. Every value is escaped here; nothing from the
//! journal reaches the output as markup.

use std::fmt::Write as _;

use super::doc::{self, Inline};
use super::model::Report;
use super::time::Zone;

/// Width of the text sparklines, in columns.
const SPARK_WIDTH: usize = 48;

/// Escapes text so Markdown shows it literally (on one line).
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in one_line(s).chars() {
        if matches!(
            ch,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!'
        ) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace("\r\n", " ").replace(['\n', '\r'], " ")
}

/// A code span that survives any backticks inside; in a table cell `|`
/// is escaped as GFM requires (it renders as a plain `|`).
pub fn code(s: &str, in_table: bool) -> String {
    let s = one_line(s);
    let mut longest = 0;
    let mut run = 0;
    for ch in s.chars() {
        if ch == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let body = if in_table { s.replace('|', "\\|") } else { s };
    let pad = if body.starts_with('`') || body.ends_with('`') || body.trim().is_empty() {
        " "
    } else {
        ""
    };
    if body.is_empty() {
        return String::new();
    }
    format!("{fence}{pad}{body}{pad}{fence}")
}

fn inline(v: &[Inline], in_table: bool) -> String {
    let mut out = String::new();
    for i in v {
        match i {
            Inline::Text(s) => out.push_str(&text(s)),
            Inline::Code(s) => out.push_str(&code(s, in_table)),
            Inline::Strong(s) if !s.trim().is_empty() => {
                // Emphasis markers must hug non-space text.
                let (lead, rest) = s.split_at(s.len() - s.trim_start().len());
                let body = rest.trim_end();
                let trail = &rest[body.len()..];
                let _ = write!(out, "{}**{}**{}", text(lead), text(body), text(trail));
            }
            Inline::Em(s) if !s.trim().is_empty() => {
                let (lead, rest) = s.split_at(s.len() - s.trim_start().len());
                let body = rest.trim_end();
                let trail = &rest[body.len()..];
                let _ = write!(out, "{}_{}_{}", text(lead), text(body), text(trail));
            }
            Inline::Strong(s) | Inline::Em(s) => out.push_str(&text(s)),
        }
    }
    out
}

fn table_row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// A fenced block long enough that no line inside can close it.
fn fenced(lang: &str, body: &str) -> String {
    let longest = body
        .lines()
        .map(|l| l.trim_start().chars().take_while(|c| *c == '`').count())
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{body}{fence}\n")
}

pub fn render(r: &Report, zone: Zone) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Incident {}: post-incident timeline\n",
        code(&r.incident, false)
    );
    let (intact, integrity) = doc::integrity(r);
    if intact {
        let _ = writeln!(md, "{}\n", inline(&integrity, false));
    } else {
        let _ = writeln!(md, "> ⚠ {}\n", inline(&integrity, false));
    }
    let _ = writeln!(md, "{}\n", inline(&doc::generated_line(r), false));

    md.push_str("## Summary\n\n");
    md.push_str(&table_row(&["Item".into(), "Value".into()]));
    md.push_str("|---|---|\n");
    for (k, v) in doc::summary_rows(r, zone) {
        md.push_str(&table_row(&[format!("**{}**", text(&k)), inline(&v, true)]));
    }
    md.push('\n');

    md.push_str("## Row counts\n\n");
    if r.row_counts.is_empty() {
        md.push_str("No exact row counts were sampled during this incident.\n\n");
    } else {
        md.push_str(
            "Tables counted exactly (`count(*)`) on every sample. _Before_ is the last count before the first damage (when the first damage is an alert, the round that raised it, sampled within 2 s before it, is skipped; n/a when there is none).\n\n",
        );
        md.push_str(&table_row(&doc::ROW_COUNT_HEADER.map(String::from)));
        md.push_str(&table_row(&vec![
            "---".to_string();
            doc::ROW_COUNT_HEADER.len()
        ]));
        for cells in doc::row_count_rows(r, zone) {
            let cells: Vec<String> = cells.iter().map(|c| inline(c, true)).collect();
            md.push_str(&table_row(&cells));
        }
        md.push('\n');
        if let Some(axis) = doc::axis(r) {
            let names: Vec<String> = r
                .row_counts
                .iter()
                .map(|s| format!("{}.{}", s.database, doc::table_name(s)))
                .collect();
            let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
            let mut body = String::new();
            for (s, name) in r.row_counts.iter().zip(&names) {
                let before = s.before.map_or("?".into(), |b| b.to_string());
                let _ = writeln!(
                    body,
                    "{name:<w$}  {}  {before} → {} → {}",
                    doc::sparkline(&s.points, &axis, SPARK_WIDTH),
                    s.lowest,
                    s.after
                );
            }
            let marks = doc::marker_line(&axis, SPARK_WIDTH);
            if !marks.is_empty() {
                let _ = writeln!(body, "{:<w$}  {marks}", "");
            }
            let _ = writeln!(body, "{:<w$}  {}", "", doc::legend(&axis, zone));
            md.push_str(&fenced("text", &body));
            md.push('\n');
        }
    }

    md.push_str("## Timeline\n\n");
    let _ = writeln!(
        md,
        "{} line(s); runs of {} or more similar routine events are folded into one line. Backdated notes stand at the time they describe.\n",
        r.timeline.len(),
        super::analyze::FOLD_MIN
    );
    md.push_str(&table_row(&doc::TIMELINE_HEADER.map(String::from)));
    md.push_str(&table_row(&vec![
        "---".to_string();
        doc::TIMELINE_HEADER.len()
    ]));
    for row in doc::timeline_rows(r, zone) {
        let cells: Vec<String> = row.cells.iter().map(|c| inline(c, true)).collect();
        md.push_str(&table_row(&cells));
    }
    md.push('\n');

    if !r.warnings.is_empty() {
        md.push_str("## Warnings\n\n");
        for w in &r.warnings {
            let _ = writeln!(md, "- {}", text(w));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(text("a|b*c_d`e"), "a\\|b\\*c\\_d\\`e");
        assert_eq!(text("line\nbreak"), "line break");
        assert_eq!(code("a`b", false), "``a`b``");
        assert_eq!(code("`x`", false), "`` `x` ``");
        assert_eq!(code("a|b", true), "`a\\|b`");
        assert_eq!(code("a|b", false), "`a|b`");
        assert_eq!(
            inline(&[Inline::Strong(" bold ".into())], false),
            " **bold** "
        );
    }

    #[test]
    fn fence_outlasts_backticks() {
        let f = fenced("text", "```\nx\n");
        assert!(f.starts_with("````text\n"), "{f}");
    }
}
