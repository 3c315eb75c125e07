//! Self-contained HTML rendering: inline CSS (screen and print), a
//! hand-written SVG line chart per table, no script and no external asset.
//! Every value is HTML-escaped here.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::doc::{self, Axis, Inline, RowKind};
use super::model::{Report, TableSeries};
use super::time::Zone;

/// Columns of `doc::TIMELINE_HEADER` merged in HTML.
const EVENT: usize = 6;
const CMD: usize = 7;

/// At most this many charts; tables whose counts moved come first.
const MAX_CHARTS: usize = 12;

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn inline(v: &[Inline]) -> String {
    let mut out = String::new();
    for i in v {
        match i {
            Inline::Text(s) => out.push_str(&esc(s)),
            Inline::Code(s) => {
                let _ = write!(out, "<code>{}</code>", esc(s));
            }
            Inline::Strong(s) => {
                let _ = write!(out, "<strong>{}</strong>", esc(s));
            }
            Inline::Em(s) => {
                let _ = write!(out, "<em>{}</em>", esc(s));
            }
        }
    }
    out
}

const CSS: &str = r#"
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg:#fff; --alt:#f6f8fa;
  --bad:#b42318; --badbg:#fef3f2; --ok:#1a7f37; --okbg:#eefbf1; --note:#fff8c5; --accent:#0550ae; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
code { font: 12.5px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  background: var(--alt); padding: 0 3px; border-radius: 4px; }
.meta { color: var(--muted); margin: 4px 0 0; }
.integrity { margin: 14px 0; padding: 10px 14px; border-radius: 6px; border: 1px solid; }
.integrity.ok { background: var(--okbg); border-color: #aceebb; }
.integrity.broken { background: var(--badbg); border: 2px solid var(--bad); color: var(--bad); font-size: 15px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--alt); font-weight: 600; white-space: nowrap; }
table.kv th { width: 190px; background: none; }
table.counts th.n, table.counts td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.timeline { font-size: 12.5px; }
table.timeline td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.timeline td.step { min-width: 8em; }
table.timeline td.target { min-width: 8em; overflow-wrap: anywhere; }
.cmd { margin-top: 3px; }
.cmd code { display: block; white-space: pre-wrap; overflow-wrap: anywhere; padding: 2px 5px; }
tr.note td { background: var(--note); }
tr.failed td, tr.alert td { background: var(--badbg); }
tr.folded td { color: var(--muted); }
tr.unverified td { outline: 1px dashed var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 14px; margin-top: 14px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px 4px; }
figcaption { font-weight: 600; margin-bottom: 2px; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .series { fill: none; stroke: var(--accent); stroke-width: 2; stroke-linejoin: round; }
svg .dot { fill: var(--accent); }
svg .damage { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .restored { stroke: var(--ok); stroke-width: 1.5; stroke-dasharray: 5 3; }
svg text.damage-label { fill: var(--bad); font-weight: 600; }
svg text.restored-label { fill: var(--ok); font-weight: 600; }
ul.warnings li { color: var(--bad); }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  tr, figure, .integrity { break-inside: avoid; }
  thead { display: table-header-group; }
  .charts { grid-template-columns: 1fr 1fr; }
  table.timeline { font-size: 8.5pt; }
}
"#;

pub fn render(r: &Report, zone: Zone) -> String {
    let mut h = String::new();
    let title = format!("Incident {}: post-incident timeline", r.incident);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"{}\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(&r.generator),
        esc(&title)
    );
    let _ = writeln!(
        h,
        "<header>\n<h1>Incident <code>{}</code>: post-incident timeline</h1>\n<p class=\"meta\">{}</p>\n</header>",
        esc(&r.incident),
        inline(&doc::generated_line(r))
    );
    let (intact, integrity) = doc::integrity(r);
    let _ = writeln!(
        h,
        "<div class=\"integrity {}\" role=\"{}\">{}{}</div>",
        if intact { "ok" } else { "broken" },
        if intact { "note" } else { "alert" },
        if intact { "" } else { "⚠ " },
        inline(&integrity)
    );

    h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"kv\">\n<tbody>\n");
    for (k, v) in doc::summary_rows(r, zone) {
        let _ = writeln!(
            h,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(&k),
            inline(&v)
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");

    h.push_str("<section id=\"row-counts\">\n<h2>Row counts</h2>\n");
    if r.row_counts.is_empty() {
        h.push_str("<p>No exact row counts were sampled during this incident.</p>\n");
    } else {
        h.push_str("<p class=\"meta\">Tables counted exactly (<code>count(*)</code>) on every sample. <em>Before</em> is the last count before the first damage (when the first damage is an alert, the round that raised it, sampled within 2 s before it, is skipped; n/a when there is none).</p>\n");
        h.push_str("<table class=\"counts\">\n<thead><tr>");
        for (i, c) in doc::ROW_COUNT_HEADER.iter().enumerate() {
            let class = if i >= 2 { " class=\"n\"" } else { "" };
            let _ = write!(h, "<th{class}>{}</th>", esc(c));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for cells in doc::row_count_rows(r, zone) {
            h.push_str("<tr>");
            for (i, c) in cells.iter().enumerate() {
                let class = if i >= 2 { " class=\"n\"" } else { "" };
                let _ = write!(h, "<td{class}>{}</td>", inline(c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n");
        if let Some(axis) = doc::axis(r) {
            h.push_str("<div class=\"charts\">\n");
            let mut order: Vec<&TableSeries> = r.row_counts.iter().collect();
            order.sort_by_key(|s| !moved(s));
            for s in order.into_iter().take(MAX_CHARTS) {
                h.push_str(&chart(s, &axis, zone));
            }
            h.push_str("</div>\n");
            if r.row_counts.len() > MAX_CHARTS {
                let _ = writeln!(
                    h,
                    "<p class=\"meta\">{} more table(s) in the table above are not charted.</p>",
                    r.row_counts.len() - MAX_CHARTS
                );
            }
        }
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n");
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} line(s); runs of {} or more similar routine events are folded into one line. Backdated notes stand at the time they describe.</p>",
        r.timeline.len(),
        super::analyze::FOLD_MIN
    );
    h.push_str("<table class=\"timeline\">\n<thead><tr>");
    // The command goes under the event it belongs to: one wide column
    // instead of two cramped ones.
    for (i, c) in doc::TIMELINE_HEADER.iter().enumerate() {
        if i != CMD {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in doc::timeline_rows(r, zone) {
        let mut classes = vec![match row.kind {
            RowKind::Plain => "event",
            RowKind::Note => "note",
            RowKind::Failed => "failed",
            RowKind::Alert => "alert",
            RowKind::Folded => "folded",
        }];
        if !row.verified {
            classes.push("unverified");
        }
        let _ = write!(h, "<tr class=\"{}\">", classes.join(" "));
        for (i, c) in row.cells.iter().enumerate() {
            let class = match i {
                1 | 2 | 9 => " class=\"t\"",
                4 => " class=\"step\"",
                5 => " class=\"target\"",
                _ => "",
            };
            match i {
                CMD => {}
                EVENT => {
                    let _ = write!(h, "<td>{}", inline(c));
                    if let Some(cmd) = row.cells.get(CMD).filter(|x| !x.is_empty()) {
                        let _ = write!(h, "<div class=\"cmd\">{}</div>", inline(cmd));
                    }
                    h.push_str("</td>");
                }
                _ => {
                    let _ = write!(h, "<td{class}>{}</td>", inline(c));
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</section>\n");

    if !r.warnings.is_empty() {
        h.push_str("<section id=\"warnings\">\n<h2>Warnings</h2>\n<ul class=\"warnings\">\n");
        for w in &r.warnings {
            let _ = writeln!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ul>\n</section>\n");
    }
    let _ = writeln!(
        h,
        "<footer>Schema version {}. The journal is the record; this document is derived from it and never edits it.</footer>\n</main>\n</body>\n</html>",
        r.schema_version
    );
    h
}

/// A round step (1, 2 or 5 times a power of ten, at least 1) and 4 or 5
/// intervals whose top is the smallest at or above 105 % of `max`.
fn y_ticks(max: i64) -> (i64, i64) {
    let need = (max as f64 * 1.05).max(1.0);
    let mut best = (i64::MAX, 0, 0);
    for intervals in [4, 5] {
        let raw = need / intervals as f64;
        let mut p = 1i64;
        while (p as f64) * 10.0 <= raw {
            p *= 10;
        }
        let step = [1, 2, 5, 10]
            .iter()
            .map(|m| m * p)
            .find(|s| (*s as f64) >= raw)
            .unwrap_or(10 * p);
        let top = step * intervals;
        if top < best.0 {
            best = (top, step, intervals);
        }
    }
    (best.1, best.2)
}

fn moved(s: &TableSeries) -> bool {
    s.points.windows(2).any(|w| w[0].rows != w[1].rows)
}

/// Chart geometry (viewBox units).
const W: f64 = 560.0;
const H: f64 = 190.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 26.0;

fn chart(s: &TableSeries, axis: &Axis, zone: Zone) -> String {
    let max = s.points.iter().map(|p| p.rows).max().unwrap_or(0).max(1);
    let (step, intervals) = y_ticks(max);
    let ymax = (step * intervals) as f64;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |t: DateTime<Utc>| LEFT + axis.frac(t) * pw;
    let y = |rows: i64| TOP + ph - (rows as f64 / ymax) * ph;
    let name = format!("{}.{}", s.database, doc::table_name(s));
    let mut g = String::new();
    let _ = write!(
        g,
        "<figure>\n<figcaption>{}</figcaption>\n<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">\n<title>{}</title>\n",
        esc(&name),
        esc(&format!("Row count of {name} over the incident")),
        esc(&format!(
            "{name}: before {}, lowest {}, after {}",
            s.before.map_or("n/a".into(), |b| b.to_string()),
            s.lowest,
            s.after
        )),
    );
    for k in 0..=intervals {
        let v = step * k;
        let yy = y(v);
        let _ = writeln!(
            g,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    // Time labels: start, middle, end.
    for (frac, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let ms = (axis.to - axis.from).num_milliseconds() as f64 * frac;
        let t = axis.from + chrono::Duration::milliseconds(ms as i64);
        let _ = writeln!(
            g,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            LEFT + frac * pw,
            H - 8.0,
            esc(&zone.to_local(t).format("%H:%M").to_string())
        );
    }
    // Markers.
    for (t, class, label) in [
        (axis.damage, "damage", "damage"),
        (axis.restored, "restored", "restored"),
    ] {
        if let Some(t) = t {
            let xx = x(t);
            // Damage labels sit left of their line, restore labels right,
            // unless that would leave the chart.
            let anchor = match class {
                "damage" if xx - LEFT > 110.0 => "end",
                "damage" => "start",
                _ if W - RIGHT - xx > 110.0 => "start",
                _ => "end",
            };
            let dx = if anchor == "end" { -4.0 } else { 4.0 };
            let _ = writeln!(
                g,
                "<line class=\"{class}\" x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/><text class=\"{class}-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{} {}</text>",
                TOP - 6.0,
                TOP + ph,
                xx + dx,
                TOP - 8.0,
                label,
                esc(&zone.to_local(t).format("%H:%M:%S").to_string())
            );
        }
    }
    // The series, as steps: a count holds until the next sample.
    let mut d = String::new();
    for (i, p) in s.points.iter().enumerate() {
        let (xx, yy) = (x(p.ts), y(p.rows));
        if i == 0 {
            let _ = write!(d, "M{xx:.1},{yy:.1}");
        } else {
            let _ = write!(d, " H{xx:.1} V{yy:.1}");
        }
    }
    let _ = writeln!(g, "<path class=\"series\" d=\"{d}\"/>");
    if s.points.len() <= 60 {
        for p in &s.points {
            let _ = write!(
                g,
                "<circle class=\"dot\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\"/>",
                x(p.ts),
                y(p.rows)
            );
        }
        g.push('\n');
    }
    g.push_str("</svg>\n</figure>\n");
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_y_axis() {
        assert_eq!(y_ticks(23), (5, 5));
        assert_eq!(y_ticks(16), (5, 4));
        assert_eq!(y_ticks(182), (50, 4));
        assert_eq!(y_ticks(0), (1, 4));
        assert_eq!(y_ticks(1_000_000), (500_000, 4));
    }

    #[test]
    fn escapes_everything() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
