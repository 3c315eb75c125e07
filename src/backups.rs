//! `lifeline backups [CATALOG] [--json]`: every file of the inventory's
//! backup catalogs with its time, size, format, integrity, per-table row
//! counts (content scan, cached) and label against the healthy history.
//! Read-only on the hosts; prints counts and names, never a row of data.

use std::path::Path;

use serde_json::json;

use crate::catalog::content::{self, Assessment, SampleCounts, ScanCache};
use crate::catalog::{self, CatalogReport};
use crate::inventory::NO_INVENTORY;
use crate::redact::Redactor;
use crate::state::StateDir;
use crate::transport::Hosts;

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What `lifeline backups` was given.
#[derive(Debug, Clone)]
pub struct BackupsArgs<'a> {
    pub inventory: Option<&'a Path>,
    pub state_dir: &'a Path,
    pub catalog: Option<&'a str>,
    /// Take the healthy history from this incident's samples too.
    pub incident: Option<&'a str>,
    pub json: bool,
}

/// One catalog, read and assessed.
struct Listed {
    report: CatalogReport,
    dbname: Option<String>,
    assessment: Option<Assessment>,
}

pub fn cli(args: BackupsArgs<'_>, redactor: &Redactor) -> u8 {
    let say = |s: &str| eprintln!("{}", crate::term::visible_text(&redactor.redact(s)));
    let Some(path) = args.inventory else {
        say(NO_INVENTORY);
        return EXIT_USAGE;
    };
    let inv = match crate::inventory::open(path, redactor) {
        Ok((inv, warnings)) => {
            for w in warnings {
                tracing::debug!("{w}");
            }
            inv
        }
        Err(e) => {
            for l in e.report(path, None) {
                say(&l);
            }
            return EXIT_USAGE;
        }
    };
    let specs: Vec<_> = inv
        .backups
        .iter()
        .filter(|c| args.catalog.is_none_or(|n| c.name() == n))
        .cloned()
        .collect();
    if specs.is_empty() {
        let known: Vec<String> = inv
            .backups
            .iter()
            .map(|c| format!("'{}'", c.name()))
            .collect();
        say(&format!(
            "error: no backup catalog named '{}' in the inventory (known: {})",
            args.catalog.unwrap_or(""),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        ));
        return EXIT_USAGE;
    }
    let samples = match args.incident {
        None => Vec::new(),
        Some(id) => {
            let s = StateDir::new(args.state_dir);
            if !crate::state::valid_incident_id(id) || !s.incident_dir(id).is_dir() {
                say(&format!(
                    "error: no incident '{id}' under '{}' (see --state-dir)",
                    args.state_dir.display()
                ));
                return EXIT_USAGE;
            }
            match crate::samples::read(&s.samples_path(id)) {
                Ok(v) => v,
                Err(e) => {
                    say(&format!(
                        "warning: {e}; the history comes from the catalog only"
                    ));
                    Vec::new()
                }
            }
        }
    };
    let rt = match crate::runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("error: cannot start the async runtime: {e}"));
            return EXIT_FAILED;
        }
    };
    let cache = ScanCache::new(args.state_dir);
    let listed: Vec<Listed> = rt.block_on(async {
        let hosts = Hosts::from_inventory(&inv, None);
        let mut out = Vec::new();
        for spec in &specs {
            let db = inv.database(spec.database.get_ref());
            let dbname = db.and_then(|d| d.pg_url()).map(|u| u.dbname.clone());
            let watched = db.map(|d| d.watch.clone()).unwrap_or_default();
            let counts: Vec<SampleCounts> =
                content::sample_counts(&samples, spec.database.get_ref());
            let Some(h) = hosts.get(spec.host.get_ref()) else {
                continue;
            };
            let report =
                catalog::read_catalog(spec, h as &dyn crate::probe::Runner, LIST_TIMEOUT).await;
            let assessment = if report.error.is_none() {
                Some(
                    content::assess(
                        h,
                        &report.files,
                        &cache,
                        dbname.as_deref(),
                        &watched,
                        &counts,
                    )
                    .await,
                )
            } else {
                None
            };
            out.push(Listed {
                report,
                dbname,
                assessment,
            });
        }
        out
    });
    let failed = listed.iter().any(|l| l.report.error.is_some());
    if args.json {
        println!(
            "{}",
            crate::term::json_safe(&redactor.redact(&render_json(&listed)))
        );
    } else {
        print!(
            "{}",
            crate::term::visible_text(&redactor.redact(&render_text(&listed)))
        );
    }
    if failed { EXIT_FAILED } else { 0 }
}

fn render_json(listed: &[Listed]) -> String {
    let cats: Vec<serde_json::Value> = listed
        .iter()
        .map(|l| {
            let r = &l.report;
            let mut v = json!({
                "name": r.name, "host": r.host, "path": r.path, "database": r.database,
                "dbname": l.dbname, "pattern": r.pattern, "error": r.error,
            });
            if let Some(a) = &l.assessment {
                v["files"] = serde_json::to_value(&a.files).unwrap_or_default();
                v["baseline"] = serde_json::to_value(&a.baseline).unwrap_or_default();
                v["window"] = serde_json::to_value(&a.window).unwrap_or_default();
                v["window_text"] = json!(a.window.as_ref().map(|w| w.describe()));
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "catalogs": cats })).unwrap_or_default()
}

fn render_text(listed: &[Listed]) -> String {
    let mut s = String::new();
    for l in listed {
        let r = &l.report;
        s.push_str(&format!(
            "catalog '{}' on host '{}': {} (pattern {}), for database '{}'\n",
            r.name,
            r.host,
            r.path,
            r.pattern.as_deref().unwrap_or("*"),
            r.database
        ));
        if let Some(e) = &r.error {
            s.push_str(&format!("  cannot read it: {e}\n"));
            continue;
        }
        let Some(a) = &l.assessment else { continue };
        if a.files.is_empty() {
            s.push_str("  no files\n");
        }
        for f in &a.files {
            let b = &f.file;
            s.push_str(&format!(
                "  {:<14} {} (from {:?}) {:>10} {:?} {}{}\n",
                f.label.as_str(),
                b.taken_at,
                b.time_source,
                crate::actions::data::bytes(b.size),
                b.format,
                b.name,
                if f.cached { " [cached scan]" } else { "" }
            ));
            s.push_str(&format!("      {}\n", f.why));
            if let Some(c) = &f.content {
                let mut meta = Vec::new();
                if let Some(d) = &c.dbname {
                    meta.push(format!("database {d}"));
                }
                if let Some(v) = &c.server_version {
                    meta.push(format!("server {v}"));
                }
                if let Some(v) = &c.pg_dump_version {
                    meta.push(format!("pg_dump {v}"));
                }
                if !meta.is_empty() {
                    s.push_str(&format!("      {}\n", meta.join(", ")));
                }
                let rows: Vec<String> = c.rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
                if !rows.is_empty() {
                    s.push_str(&format!("      rows: {}\n", rows.join(", ")));
                }
            }
        }
        s.push_str(&format!(
            "  history: {:?}, {} table(s)\n",
            a.baseline.source,
            a.baseline.rows.len()
        ));
        if let Some(w) = &a.window {
            s.push_str(&format!("  {}\n", w.describe()));
        }
    }
    s
}
