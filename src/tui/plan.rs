//! The plan shown before a runbook starts and the runbook the evidence
//! suggests: plain data and pure functions over `&Model`. Never starts a
//! runbook and never does I/O; the console's runner fills `PlanPreview`.

use std::collections::BTreeSet;

use super::model::{Health, Model};

/// One step of a plan, as the engine's dry run resolved it (redacted).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanStep {
    pub id: String,
    /// Engine action (`stop-services`, `restore`, `swap`, ...).
    pub action: String,
    /// Why the step exists, in words (the runbook's `explain`).
    pub explain: String,
    pub destructive: bool,
    /// What it acts on (`host:port/dbname`, a host, a catalog).
    pub target: Option<String>,
    /// Preconditions (`stopped`, `snapshot`, `verified`, ...).
    pub requires: Vec<String>,
    /// The exact commands and SQL it runs.
    pub preview: Vec<String>,
    /// For destructive steps: what the operator will have to type.
    pub confirm: Option<String>,
    /// Why the step cannot be resolved yet (e.g. a backup not picked yet).
    pub error: Option<String>,
}

/// Every step of a runbook before it starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanPreview {
    pub runbook: String,
    pub title: String,
    /// Inventory name of the database it acts on.
    pub database: Option<String>,
    pub steps: Vec<PlanStep>,
    /// Said before the steps: parameters without a value, a run to resume.
    pub notes: Vec<String>,
    /// The plan could not be built (unknown runbook, does not fit the
    /// inventory): the lines say why; nothing can be started from it.
    pub refused: Vec<String>,
}

/// Actions that only read (the world is not changed by them).
const READ_ONLY: [&str; 5] = ["note", "probe", "pick-backup", "verify", "choose-path"];

impl PlanStep {
    /// Only reads: a note, a probe, a pick, a verification or the path choice.
    pub fn reads_only(&self) -> bool {
        !self.destructive && READ_ONLY.contains(&self.action.as_str())
    }
}

impl PlanPreview {
    /// Steps that ask for a typed confirmation before they change something.
    pub fn destructive(&self) -> usize {
        self.steps.iter().filter(|s| s.destructive).count()
    }
    /// Steps that act without a typed confirmation (stop or start
    /// services, snapshots, commands, SQL).
    pub fn acting(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| !s.destructive && !s.reads_only())
            .count()
    }
}

/// A runbook the evidence on screen points to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub runbook: String,
    pub reason: String,
}

/// Hazard kinds of a job that copies one database over another (a sync loop).
const SYNC_LOOP: [&str; 3] = ["dump-clean-restore", "restore-into-shared", "auto-restore"];
/// Hazard kind of a job that resets a schema (migrations re-applied).
const SCHEMA_RESET: &str = "schema-reset";

/// The runbook the evidence suggests, among the runbooks the console knows,
/// in the order an on-call operator would act: a missing database first,
/// then a sync loop still able to wipe again, then a migration history
/// re-applied, then a schema reset, then a single table wiped. None when nothing on screen points anywhere.
pub fn suggest(m: &Model) -> Option<Suggestion> {
    let known = |name: &str| m.runbooks.iter().any(|r| r.name == name);
    let pick = |runbook: &str, reason: String| {
        known(runbook).then(|| Suggestion {
            runbook: runbook.to_string(),
            reason,
        })
    };
    // 1. A database the server says does not exist (3D000).
    if let Some(d) = m.databases.iter().find(|d| d.health == Health::Missing)
        && let Some(s) = pick(
            "database-missing",
            format!(
                "database '{}' is missing on its server (SQLSTATE 3D000)",
                d.name
            ),
        )
    {
        return Some(s);
    }
    // 2. Jobs that restore one database over another.
    let mut sync = 0;
    let mut hosts = BTreeSet::new();
    let mut example = None;
    let mut reset = None;
    for hs in &m.services {
        for s in &hs.services {
            for h in &s.hazards {
                if SYNC_LOOP.contains(&h.kind.as_str()) {
                    sync += 1;
                    hosts.insert(hs.host.as_str());
                    example.get_or_insert_with(|| h.what.clone());
                } else if h.kind == SCHEMA_RESET && reset.is_none() {
                    reset = Some((hs.host.clone(), s.name.clone()));
                }
            }
        }
    }
    if sync > 0
        && let Some(s) = pick(
            "rogue-sync-wipe",
            format!(
                "{sync} sync-loop hazard(s) on {} ({})",
                hosts.into_iter().collect::<Vec<_>>().join(", "),
                example.unwrap_or_default()
            ),
        )
    {
        return Some(s);
    }
    // 3. A migration history applied again (names written long before).
    for d in &m.databases {
        for mg in &d.migrations {
            if let Some(run) = mg
                .history
                .as_ref()
                .and_then(|h| h.runs.iter().find(|r| r.reapplied))
                && let Some(s) = pick(
                    "migration-reset",
                    format!(
                        "'{}' of '{}': {} migrations re-applied at once",
                        mg.table, d.name, run.count
                    ),
                )
            {
                return Some(s);
            }
        }
    }
    // 4. A job that resets the schema (migrations re-applied).
    if let Some((host, svc)) = reset
        && let Some(s) = pick(
            "migration-reset",
            format!("'{svc}' on {host} resets the schema (migrations re-applied)"),
        )
    {
        return Some(s);
    }
    // 5. Exactly one table lost its rows or was re-created.
    let damaged: BTreeSet<(&str, &str)> = m
        .alerts
        .iter()
        .filter(|a| !a.table.is_empty())
        .map(|a| (a.database.as_str(), a.table.as_str()))
        .collect();
    if damaged.len() == 1
        && let Some((db, table)) = damaged.into_iter().next()
    {
        return pick(
            "table-wiped",
            format!("one table lost its rows: '{table}' in '{db}'"),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::model::{
        Alert, DatabaseState, Hazard, HostServices, RunbookInfo, ServiceKind, ServiceState,
    };
    use chrono::Utc;

    fn model(runbooks: &[&str]) -> Model {
        let mut m = Model::new(Utc::now());
        m.runbooks = runbooks
            .iter()
            .map(|n| RunbookInfo {
                name: n.to_string(),
                title: String::new(),
                when: String::new(),
            })
            .collect();
        m
    }

    fn with_hazards(m: &mut Model, kinds: &[&str]) {
        m.services.push(HostServices {
            host: "prod".into(),
            updated_at: Utc::now(),
            services: vec![ServiceState {
                set_aside: None,
                name: "db-sync.service".into(),
                kind: ServiceKind::Systemd,
                active: Some(true),
                state: "active".into(),
                databases: vec!["main".into()],
                hazards: kinds
                    .iter()
                    .map(|k| Hazard {
                        kind: k.to_string(),
                        what: format!("{k} into main"),
                        evidence: "x".into(),
                    })
                    .collect(),
                stopped_by_runbook: false,
            }],
        });
    }

    fn alert(m: &mut Model, db: &str, table: &str) {
        m.alerts.push(Alert {
            ts: m.now,
            seq: m.alerts.len() as u64 + 1,
            kind: "alert".into(),
            database: db.into(),
            table: table.into(),
            before: Some(250),
            after: Some(0),
            summary: String::new(),
            acked: false,
        });
    }

    const ALL: [&str; 5] = [
        "database-missing",
        "migration-reset",
        "rogue-sync-wipe",
        "table-wiped",
        "table-wiped-swap",
    ];

    #[test]
    fn nothing_on_screen_suggests_nothing() {
        let mut m = model(&ALL);
        assert_eq!(suggest(&m), None);
        // Hazards that are not a sync loop or a reset point nowhere.
        with_hazards(&mut m, &["truncate", "redundant-start"]);
        assert_eq!(suggest(&m), None);
        // Two tables wiped is not "one table".
        alert(&mut m, "main", "User");
        alert(&mut m, "main", "Game");
        assert_eq!(suggest(&m), None);
    }

    #[test]
    fn the_evidence_picks_the_runbook_with_its_reason() {
        let mut m = model(&ALL);
        with_hazards(
            &mut m,
            &["dump-clean-restore", "auto-restore", "redundant-start"],
        );
        let s = suggest(&m).unwrap();
        assert_eq!(s.runbook, "rogue-sync-wipe");
        assert!(
            s.reason.starts_with("2 sync-loop hazard(s) on prod"),
            "{}",
            s.reason
        );

        // A missing database comes first.
        m.databases.push(DatabaseState {
            name: "main".into(),
            health: Health::Missing,
            ..Default::default()
        });
        let s = suggest(&m).unwrap();
        assert_eq!(s.runbook, "database-missing");
        assert!(s.reason.contains("'main'") && s.reason.contains("3D000"));

        let mut m = model(&ALL);
        with_hazards(&mut m, &["schema-reset"]);
        assert_eq!(suggest(&m).unwrap().runbook, "migration-reset");

        // A history re-applied at once: migration-reset, with its reason;
        // but a sync loop beside it comes first (a sync copies a freshly
        // migrated database over the live one: rogue-sync lab).
        let mut m = model(&ALL);
        crate::tui::demo::migration_history(&mut m);
        with_hazards(&mut m, &["schema-reset"]);
        let s = suggest(&m).unwrap();
        assert_eq!(s.runbook, "migration-reset");
        assert!(
            s.reason.contains("22 migrations re-applied at once"),
            "{}",
            s.reason
        );
        with_hazards(&mut m, &["dump-clean-restore"]);
        assert_eq!(suggest(&m).unwrap().runbook, "rogue-sync-wipe");

        let mut m = model(&ALL);
        alert(&mut m, "main", "User");
        alert(&mut m, "main", "User");
        let s = suggest(&m).unwrap();
        assert_eq!(s.runbook, "table-wiped");
        assert!(s.reason.contains("'User'"), "{}", s.reason);
    }

    #[test]
    fn the_overview_has_one_row_per_job_whatever_its_hazard_count() {
        let mut m = model(&ALL);
        with_hazards(&mut m, &["dump-clean-restore", "auto-restore", "truncate"]);
        let rows = crate::tui::rows::overview(&m);
        let hazards = rows
            .iter()
            .filter(|r| matches!(r, crate::tui::rows::OvRow::Hazard(..)))
            .count();
        assert_eq!(hazards, 1, "one job, three hazards: one row");
        // A filter matching only its second hazard still shows the job once.
        m.ui.filter[crate::tui::model::View::Overview.index()] = "auto-restore".into();
        let rows = crate::tui::rows::overview(&m);
        assert!(matches!(rows[0], crate::tui::rows::OvRow::Hazard(0, 0, 1)));
    }

    #[test]
    fn a_step_that_acts_without_confirmation_is_not_called_read_only() {
        let step = |action: &str, destructive: bool| PlanStep {
            action: action.into(),
            destructive,
            ..Default::default()
        };
        let p = PlanPreview {
            steps: vec![
                step("note", false),
                step("probe", false),
                step("stop-services", false),
                step("snapshot", false),
                step("command", false),
                step("pick-backup", false),
                step("restore", true),
                step("swap", true),
            ],
            ..Default::default()
        };
        assert_eq!(p.destructive(), 2);
        assert_eq!(p.acting(), 3);
        assert!(!p.steps[2].reads_only(), "stopping services is not reading");
        assert!(p.steps[5].reads_only());
    }

    #[test]
    fn only_a_runbook_the_console_knows_is_suggested() {
        let mut m = model(&["table-wiped"]);
        with_hazards(&mut m, &["dump-clean-restore"]);
        assert_eq!(suggest(&m), None, "rogue-sync-wipe is not installed");
        alert(&mut m, "main", "User");
        assert_eq!(suggest(&m).unwrap().runbook, "table-wiped");
    }
}
