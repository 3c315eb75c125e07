//! Dev-only demo data: a realistic model of outage 1 (the rogue sync job:
//! `User` 22 -> 0 in production, the restore running) for snapshots,
//! benchmarks and trying the console in tmux, plus a stand-in engine that
//! keeps it moving. Not part of the product; never touches anything real.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use tokio::sync::mpsc;

use crate::engine::types::DbIdentity;
use crate::journal::{self, GENESIS, Record, kinds};
use crate::samples::{Sample, TableCount};

use super::event::{UiCommand, UiEvent};
use super::model::{
    DatabaseState, Hazard, Header, Health, HostServices, HostState, Mode, Model, OutputLine,
    PendingConfirm, Progress, RunbookInfo, RunbookState, ServiceKind, ServiceState, StepState,
    StepView, TableProgress,
};

/// Tables of the damaged database with their row counts before the damage.
pub const TABLES: [(&str, i64); 25] = [
    ("User", 22),
    ("UserProfile", 11),
    ("Game", 12),
    ("GameRequest", 182),
    ("ScheduledSession", 16),
    ("UserGamePreference", 19),
    ("Friendship", 14),
    ("Notification", 21),
    ("Message", 9),
    ("Conversation", 4),
    ("Tournament", 2),
    ("TournamentEntry", 6),
    ("Team", 3),
    ("TeamMember", 7),
    ("Achievement", 5),
    ("UserAchievement", 4),
    ("Session", 2),
    ("AuditLog", 3),
    ("DeleteAudit", 1),
    ("Setting", 1),
    ("Invite", 0),
    ("Report", 0),
    ("Review", 1),
    ("Tag", 2),
    ("Feedback", 0),
];

/// Seconds between samples in the demo.
pub const SAMPLE_EVERY_S: i64 = 10;

pub fn main_identity() -> DbIdentity {
    DbIdentity {
        server: "db.tovplay.example:5432".into(),
        system_identifier: "7312345678901234567".into(),
        server_started_at: Utc.with_ymd_and_hms(2026, 11, 30, 4, 12, 9).single(),
        oid: Some(16384),
        database: "TovPlay".into(),
    }
}

fn local_identity() -> DbIdentity {
    DbIdentity {
        server: "app.tovplay.example:5432".into(),
        system_identifier: "7298765432109876543".into(),
        server_started_at: None,
        oid: Some(16385),
        database: "tovplay".into(),
    }
}

/// Row count of table `i` at time `t` (the damage at `incident`).
fn rows_at(i: usize, t: DateTime<Utc>, incident: DateTime<Utc>, restored: bool) -> i64 {
    let (name, base) = TABLES[i];
    if name == "User" {
        return if restored {
            23
        } else if t >= incident {
            0
        } else {
            22
        };
    }
    if name == "GameRequest" {
        // Grows a little before the damage.
        let mins = (incident - t).num_minutes();
        return if mins > 22 {
            180
        } else if mins > 7 {
            181
        } else {
            base
        };
    }
    base
}

/// One sampling round of the damaged database at `t`.
pub fn sample(t: DateTime<Utc>, incident: DateTime<Utc>, restored: bool) -> Sample {
    Sample {
        ts: t,
        database: "main".into(),
        identity: main_identity(),
        tables: TABLES
            .iter()
            .enumerate()
            .map(|(i, (name, _))| TableCount {
                schema: "public".into(),
                name: (*name).into(),
                oid: 16_390 + i as u32,
                rows: rows_at(i, t, incident, restored),
                exact: true,
            })
            .collect(),
    }
}

/// Builds sealed journal records with a real hash chain.
pub struct Chain {
    incident: String,
    seq: u64,
    prev: String,
}

impl Chain {
    pub fn new(incident: &str) -> Chain {
        Chain {
            incident: incident.into(),
            seq: 0,
            prev: GENESIS.into(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        ts: DateTime<Utc>,
        kind: &str,
        step: Option<&str>,
        target: Option<&str>,
        command: Option<&str>,
        exit: Option<i32>,
        summary: &str,
        data: serde_json::Value,
    ) -> Record {
        self.seq += 1;
        let mut r = Record {
            seq: self.seq,
            ts,
            incident: self.incident.clone(),
            operator: "oncall".into(),
            kind: kind.into(),
            step: step.map(str::to_string),
            target: target.map(str::to_string),
            command: command.map(str::to_string),
            exit,
            duration_ms: exit.map(|_| 840),
            summary: summary.into(),
            data,
            prev: self.prev.clone(),
            hash: String::new(),
        };
        if let Ok((_, hash)) = journal::seal(&r) {
            r.hash = hash;
        }
        self.prev = r.hash.clone();
        r
    }
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%H:%M").to_string()
}

fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

fn steps(now: DateTime<Utc>) -> Vec<StepView> {
    let damage = now - Duration::seconds(870);
    let at = |s: i64| Some(now - Duration::seconds(s));
    let st =
        |id: &str, title: &str, action: &str, state, started, finished, summary: Option<&str>| {
            StepView {
                id: id.into(),
                title: title.into(),
                action: action.into(),
                destructive: action == "swap",
                state,
                started_at: started,
                finished_at: finished,
                summary: summary.map(str::to_string),
            }
        };
    vec![
        st(
            "probe",
            "Probe hosts, databases and services",
            "probe",
            StepState::Done,
            at(690),
            at(688),
            Some("3 hosts, 2 databases, 9 services"),
        ),
        st(
            "stop-writers",
            "Stop every writer to main for good",
            "stop-services",
            StepState::Done,
            at(659),
            at(596),
            Some(
                "stopped 4 (unit, cron line, watchdog timer, auto-restore loop); none came back in 60 s",
            ),
        ),
        st(
            "snapshot",
            "Emergency snapshot of main as it is now",
            "snapshot",
            StepState::Done,
            at(595),
            at(420),
            Some("TovPlay_20261210T124635Z.dump, 1.9 MiB"),
        ),
        st(
            "pick-backup",
            &format!("Pick the newest backup from before {}", hm(damage)),
            "pick-backup",
            StepState::Done,
            at(390),
            at(350),
            Some("tovplay_external_20261208_073600.sql, Dec 8 07:36, 53 h before the damage"),
        ),
        st(
            "restore",
            "Restore it beside the live database",
            "restore",
            StepState::Running,
            at(42),
            None,
            None,
        ),
        st(
            "verify",
            "Verify the copy: row counts, foreign keys, unique keys",
            "verify",
            StepState::Pending,
            None,
            None,
            None,
        ),
        st(
            "swap",
            "Swap: keep the damaged database, put the copy live",
            "swap",
            StepState::Pending,
            None,
            None,
            None,
        ),
        st(
            "start-services",
            "Start the services again (not the sync)",
            "start-services",
            StepState::Pending,
            None,
            None,
            None,
        ),
    ]
}

pub const RESTORE_TOTAL: u64 = 2_097_152;

fn progress(now: DateTime<Utc>, done: u64) -> Progress {
    let in_user = done >= 400_000;
    Progress {
        step: "restore".into(),
        bytes_done: done,
        bytes_total: Some(RESTORE_TOTAL),
        label: None,
        tables: vec![
            TableProgress {
                name: "User".into(),
                rows: if in_user { 23 } else { 9 },
                expected: Some(23),
                done: in_user,
            },
            TableProgress {
                name: "UserProfile".into(),
                rows: 11,
                expected: Some(11),
                done: done >= 600_000,
            },
            TableProgress {
                name: "Game".into(),
                rows: 12,
                expected: Some(12),
                done: done >= 800_000,
            },
            TableProgress {
                name: "GameRequest".into(),
                rows: ((done.saturating_sub(800_000)) * 171 / (RESTORE_TOTAL - 800_000)).min(171)
                    as i64,
                expected: Some(171),
                done: done >= RESTORE_TOTAL,
            },
        ],
        started_at: now - Duration::seconds(42),
        updated_at: now - Duration::seconds(1),
    }
}

/// The demo model of outage 1 at `now` (a fixed `now` gives a fixed model).
pub fn model(now: DateTime<Utc>) -> Model {
    let mut m = Model::new(now);
    let incident = now - Duration::seconds(14 * 60 + 24);
    let ago = |s: i64| now - Duration::seconds(s);
    m.header = Header {
        incident: incident.format("%Y%m%d-%H%M%S").to_string(),
        started_at: Some(incident),
        operator: "oncall".into(),
        mode: Mode::Live,
        env: Some("production".into()),
        readonly: false,
        inventory: Some("tovplay".into()),
        frozen: Vec::new(),
    };
    m.incident_at = Some(incident - Duration::seconds(6));
    m.hosts = vec![
        HostState {
            name: "prod".into(),
            address: Some("app.tovplay.example:22".into()),
            env: Some("production".into()),
            reachable: Some(true),
            latency_ms: Some(14),
            last_answer: Some(ago(2)),
            waiting_since: None,
            error: None,
        },
        HostState {
            name: "ext-db".into(),
            address: Some("db.tovplay.example:22".into()),
            env: Some("production".into()),
            reachable: Some(true),
            latency_ms: Some(9),
            last_answer: Some(ago(3)),
            waiting_since: None,
            error: None,
        },
        HostState {
            name: "backup".into(),
            address: Some("backup.tovplay.example:22".into()),
            env: Some("production".into()),
            reachable: Some(true),
            latency_ms: Some(31),
            last_answer: Some(ago(49)),
            waiting_since: Some(ago(17)),
            error: None,
        },
    ];
    let total: i64 = TABLES.iter().map(|(_, n)| n).sum::<i64>() - 22;
    m.databases = vec![
        DatabaseState {
            name: "main".into(),
            env: Some("production".into()),
            identity: Some(main_identity()),
            health: Health::RowsDropped,
            health_detail: Some(format!(
                "User 22 -> 0 at {}; dashboard reads database 'database', not 'TovPlay'",
                hms(incident - Duration::seconds(6))
            )),
            total_rows: Some(total),
            tables: Some(TABLES.len()),
            last_sample: Some(ago(4)),
            stale_after_s: 0,
            waiting_since: None,
            error: None,
            lookalikes: Vec::new(),
            migrations: Vec::new(),
        },
        DatabaseState {
            name: "local".into(),
            env: Some("production".into()),
            identity: Some(local_identity()),
            health: Health::Empty,
            health_detail: Some(
                "docker container tovplay-postgres came back without its volume".into(),
            ),
            total_rows: Some(0),
            tables: Some(TABLES.len()),
            last_sample: Some(ago(61)),
            stale_after_s: 0,
            waiting_since: None,
            error: None,
            lookalikes: Vec::new(),
            migrations: Vec::new(),
        },
    ];
    let svc =
        |name: &str, kind, active, state: &str, dbs: &[&str], hazards: Vec<Hazard>, stopped| {
            ServiceState {
                name: name.into(),
                kind,
                active,
                state: state.into(),
                databases: dbs.iter().map(|s| s.to_string()).collect(),
                hazards,
                stopped_by_runbook: stopped,
                set_aside: None,
            }
        };
    let hz = |what: &str, evidence: &str| Hazard {
        kind: String::new(),
        what: what.into(),
        evidence: evidence.into(),
    };
    m.services = vec![
        HostServices {
            host: "prod".into(),
            updated_at: ago(5),
            services: vec![
                svc(
                    "db-realtime-sync.service",
                    ServiceKind::Systemd,
                    Some(false),
                    "inactive (dead), disabled",
                    &["main", "local"],
                    vec![hz(
                        "pg_dump --clean of 'local' piped into 'main' (another database)",
                        "/opt/tovplay/db_realtime_sync.sh:14: pg_dump --clean -h localhost -U tovplay tovplay | psql -h db.tovplay.example -U app TovPlay",
                    )],
                    true,
                ),
                svc(
                    "/etc/cron.d/db_realtime_sync",
                    ServiceKind::Cron,
                    None,
                    "*/5 * * * * (commented out)",
                    &["main", "local"],
                    vec![hz(
                        "runs the same sync every 5 minutes",
                        "/etc/cron.d/db_realtime_sync:2: */5 * * * * root /opt/tovplay/db_realtime_sync.sh",
                    )],
                    true,
                ),
                svc(
                    "sync-monitor.timer",
                    ServiceKind::Timer,
                    Some(false),
                    "inactive, disabled",
                    &[],
                    vec![hz(
                        "restarts db-realtime-sync.service when it stops",
                        "/etc/systemd/system/sync-monitor.service:7: ExecStart=/opt/tovplay/monitor_sync.sh",
                    )],
                    true,
                ),
                svc(
                    "ultimate_protection.sh",
                    ServiceKind::Process,
                    Some(false),
                    "killed (was pid 4127)",
                    &["main"],
                    vec![hz(
                        "auto-restore loop: restores the newest backup into 'main' when User < 5",
                        "/opt/tovplay/ultimate_protection.sh:9: [ \"$n\" -lt 5 ] && psql -h db.tovplay.example TovPlay < \"$latest\"",
                    )],
                    true,
                ),
                svc(
                    "tovplay-postgres",
                    ServiceKind::Container,
                    Some(true),
                    "Up 3 hours",
                    &["local"],
                    vec![hz(
                        "no volume: comes back empty on every restart or deploy",
                        "docker inspect tovplay-postgres: Mounts [], RestartPolicy always",
                    )],
                    false,
                ),
                svc(
                    "tovplay-backend",
                    ServiceKind::Container,
                    Some(true),
                    "Up 3 hours",
                    &["main"],
                    vec![],
                    false,
                ),
                svc(
                    "nginx.service",
                    ServiceKind::Systemd,
                    Some(true),
                    "active (running)",
                    &[],
                    vec![],
                    false,
                ),
            ],
        },
        HostServices {
            host: "ext-db".into(),
            updated_at: ago(6),
            services: vec![
                svc(
                    "pg-backup.timer",
                    ServiceKind::Timer,
                    Some(true),
                    "active (waiting), every 4 h",
                    &["main"],
                    vec![],
                    false,
                ),
                svc(
                    "/etc/cron.d/pg_backup_10min",
                    ServiceKind::Cron,
                    None,
                    "*/10 * * * *",
                    &["main"],
                    vec![],
                    false,
                ),
            ],
        },
    ];
    // An hour of samples every 10 s, the newest 4 s ago.
    let first = ago(4) - Duration::seconds(3600);
    let mut t = first;
    while t <= ago(4) {
        m.apply(UiEvent::Sample(sample(
            t,
            incident - Duration::seconds(6),
            false,
        )));
        t += Duration::seconds(SAMPLE_EVERY_S);
    }
    m.ui.selected_db = Some("main".into());
    m.ui.selected_table = Some(("User".into(), 16_390));

    m.runbooks = vec![
        RunbookInfo {
            name: "rogue-sync".into(),
            title: "Rogue sync job: stop every writer for good, then restore".into(),
            when: "a job keeps overwriting a database (pg_dump --clean, restore loops)".into(),
        },
        RunbookInfo {
            name: "wrong-database".into(),
            title: "Wiped table, dashboard lying".into(),
            when: "rows are gone from some tables; numbers on other screens disagree".into(),
        },
        RunbookInfo {
            name: "dropped-database".into(),
            title: "The database that vanished".into(),
            when: "database \"...\" does not exist (3D000) while the server is up".into(),
        },
        RunbookInfo {
            name: "migration-reset".into(),
            title: "Migrations re-applied from init".into(),
            when: "a deploy recreated the schema; a seed row hides the loss".into(),
        },
        RunbookInfo {
            name: "pre-deploy-gate".into(),
            title: "Pre-deploy safety gate".into(),
            when: "before every deploy: backup, integrity check, row-count baseline".into(),
        },
    ];
    m.runbook = Some(RunbookState {
        name: "rogue-sync".into(),
        title: "Rogue sync job: stop every writer for good, then restore".into(),
        database: Some("main".into()),
        steps: steps(now),
        current: Some(4),
        explanation: "Restores the picked backup into a new database TovPlay__restore_20261210 on the same server. The live database is not touched: it stays as evidence until the swap and is kept after it under another name. Progress comes from the dump's COPY sections.".into(),
        preview: vec![
            "CREATE DATABASE \"TovPlay__restore_20261210\" TEMPLATE template0".into(),
            "psql -h db.tovplay.example -U app -d TovPlay__restore_20261210 -v ON_ERROR_STOP=1 -f /opt/backups/external/tovplay_external_20261208_073600.sql".into(),
        ],
        started_at: Some(ago(690)),
    });
    m.progress = Some(progress(now, 1_153_433));
    for l in [
        "SET",
        "SET",
        "CREATE TABLE",
        "CREATE TABLE",
        "ALTER TABLE",
        "COPY 23",
        "COPY 11",
        "COPY 12",
    ] {
        m.output.push_back(OutputLine {
            step: "restore".into(),
            line: l.into(),
            stderr: false,
        });
    }
    m.output.push_back(OutputLine {
        step: "restore".into(),
        line: "psql:tovplay_external_20261208_073600.sql:2231: NOTICE:  table \"GameRequest\" has 171 rows in this backup".into(),
        stderr: true,
    });

    let mut c = Chain::new(&m.header.incident);
    let i = |s: i64| incident + Duration::seconds(s);
    let recs = vec![
        c.record(i(0), kinds::INCIDENT_OPENED, None, None, None, None, "incident opened by a row-count alert on main", json!({"mode": "live", "inventory": "lifeline.toml"})),
        c.record(i(0), kinds::ALERT, None, Some("main"), None, None, &format!(
                "User: 22 -> 0 rows in TovPlay between {} and {}",
                hms(i(-10)),
                hms(i(0))
            ), json!({"database": "main", "table": "User", "before": 22, "after": 0, "rule": "drop > 50%"})),
        c.record(i(94), kinds::NOTE, None, None, None, None, "dashboard still shows 22 users: it reads database 'database', not 'TovPlay'", serde_json::Value::Null),
        c.record(i(124), kinds::PROBE, None, Some("prod"), None, None, "prod: 7 services, 5 hazards (pg_dump --clean into main)", serde_json::Value::Null),
        c.record(i(125), kinds::PROBE, None, Some("backup"), None, None, "backup: no answer after 10 s", serde_json::Value::Null),
        c.record(i(174), kinds::STEP_STARTED, Some("probe"), None, None, None, "probe hosts, databases and services", json!({"action": "probe"})),
        c.record(i(176), kinds::STEP_FINISHED, Some("probe"), None, None, None, "3 hosts, 2 databases, 9 services", json!({"action": "probe"})),
        c.record(i(204), kinds::CONFIRMED, Some("stop-writers"), Some("prod"), None, None, "operator confirmed stopping 4 writers on prod", serde_json::Value::Null),
        c.record(i(205), kinds::STEP_STARTED, Some("stop-writers"), Some("prod"), None, None, "stop every writer to main", json!({"action": "stop-services"})),
        c.record(i(206), kinds::COMMAND, Some("stop-writers"), Some("prod"), Some("systemctl stop db-realtime-sync.service && systemctl disable db-realtime-sync.service"), Some(0), "stopped and disabled db-realtime-sync.service", serde_json::Value::Null),
        c.record(i(207), kinds::COMMAND, Some("stop-writers"), Some("prod"), Some("sed -i 's|^\\*/5|# lifeline: */5|' /etc/cron.d/db_realtime_sync"), Some(0), "commented out /etc/cron.d/db_realtime_sync:2", serde_json::Value::Null),
        c.record(i(207), kinds::COMMAND, Some("stop-writers"), Some("prod"), Some("systemctl disable --now sync-monitor.timer"), Some(0), "disabled sync-monitor.timer", serde_json::Value::Null),
        c.record(i(208), kinds::COMMAND, Some("stop-writers"), Some("prod"), Some("kill 4127"), Some(0), "killed ultimate_protection.sh (pid 4127)", serde_json::Value::Null),
        c.record(i(268), kinds::STEP_FINISHED, Some("stop-writers"), Some("prod"), None, None, "stopped 4; none came back in 60 s", json!({"action": "stop-services", "stopped": ["db-realtime-sync.service", "/etc/cron.d/db_realtime_sync", "sync-monitor.timer", "ultimate_protection.sh"], "held_s": 60})),
        c.record(i(269), kinds::STEP_STARTED, Some("snapshot"), Some("main"), None, None, "emergency snapshot of TovPlay", json!({"action": "snapshot"})),
        c.record(i(444), kinds::STEP_FINISHED, Some("snapshot"), Some("main"), None, None, "snapshot TovPlay_20261210T124635Z.dump, 1.9 MiB", json!({"action": "snapshot", "path": "/var/lib/lifeline/snapshots/TovPlay_20261210T124635Z.dump", "size": 1992294, "sha256": "3f1a9c0e5b7d2a4f6e8c1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d1f3a", "database": "main"})),
        c.record(i(474), kinds::STEP_STARTED, Some("pick-backup"), Some("backup"), None, None, &format!("pick the newest backup from before {}", hm(i(-6))), json!({"action": "pick-backup"})),
        c.record(i(514), kinds::STEP_FINISHED, Some("pick-backup"), Some("backup"), None, None, "tovplay_external_20261208_073600.sql, Dec 8 07:36 (53 h before the damage)", json!({
            "action": "pick-backup",
            "rpo_s": 191_070,
            "incident_at": i(-6),
            "backup": {"name": "tovplay_external_20261208_073600.sql", "path": "/var/backups/tovplay/tovplay_external_20261208_073600.sql", "taken_at": i(-191_076), "size": 2_097_152},
            "candidates": [
                {"name": "tovplay_external_20261210_124500.sql", "path": "/var/backups/tovplay/tovplay_external_20261210_124500.sql",
                 "taken_at": i(174), "time_source": "name", "size": 41_210, "sha256": "5d41402abc4b2a76b9719d911017c592", "rpo_s": null,
                 "excluded": "taken after the incident: it holds the damage (User 0 rows where the timeline counted 22)",
                 "label": "after-damage", "label_why": "User 0 rows, GameRequest 0 rows",
                 "rows": {"public.User": 0, "public.GameRequest": 0, "public.Game": 12}},
                {"name": "tovplay_external_20261210_070000.sql", "path": "/var/backups/tovplay/tovplay_external_20261210_070000.sql",
                 "taken_at": i(-20_526), "time_source": "header", "size": 2_101_300, "sha256": null, "rpo_s": null,
                 "excluded": "truncated: the dump ends inside the COPY of GameRequest (no end marker)",
                 "label": "truncated", "label_why": "no end-of-dump marker"},
                {"name": "tovplay_external_20261208_073600.sql", "path": "/var/backups/tovplay/tovplay_external_20261208_073600.sql",
                 "taken_at": i(-191_076), "time_source": "name", "size": 2_097_152, "sha256": "930ab287062fd8f1e6671ceb2f180b28", "rpo_s": 191_070,
                 "excluded": null, "label": "healthy", "label_why": "every table has rows; counts match the timeline's before-damage counts",
                 "rows": {"public.User": 22, "public.UserProfile": 11, "public.Game": 12, "public.GameRequest": 171}}
            ]
        })),
        c.record(i(822), kinds::STEP_STARTED, Some("restore"), Some("main"), Some("psql -h db.tovplay.example -U app -d TovPlay__restore_20261210 -v ON_ERROR_STOP=1 -f /opt/backups/external/tovplay_external_20261208_073600.sql"), None, "restore into TovPlay__restore_20261210 beside the live database", json!({"action": "restore"})),
        c.record(i(836), kinds::NOTE, None, None, None, None, &format!(
                "the session scheduled at {} is in no backup: ask the user to enter it again",
                hm(i(-246))
            ), serde_json::Value::Null),
    ];
    for r in recs {
        m.apply(UiEvent::Journal(r));
    }
    m
}

/// The swap confirmation the engine asks for after verify.
pub fn swap_confirm() -> PendingConfirm {
    PendingConfirm {
        step: "swap".into(),
        prompt: "Swap: rename TovPlay to TovPlay__damaged_20261210T124200Z (kept as evidence) and TovPlay__restore_20261210 to TovPlay.".into(),
        expect: Some("TovPlay".into()),
        also: Vec::new(),
        database: Some("main".into()),
        changes: vec![
            crate::engine::preview::TERMINATE_SQL.into(),
            "ALTER DATABASE \"TovPlay\" RENAME TO \"TovPlay__damaged_20261210T124200Z\"".into(),
            "ALTER DATABASE \"TovPlay__restore_20261210\" RENAME TO \"TovPlay\"".into(),
            "THE SWAP WOULD DISCARD rows written after the backup (kept only in the damaged copy):".into(),
            "  public.\"GameRequest\": 3 row(s) (live rows whose key the restored copy lacks)".into(),
            "to keep them, do not swap: merge only the damaged tables back with a merge-tables step (runbook 'table-wiped')".into(),
        ],
        backup: None,
    }
}

/// A stand-in engine for the demo binary: moves the restore on, samples
/// every 2 s, leaves host 'backup' hanging, asks for the swap confirmation,
/// and answers commands. `restore_rate`: restored bytes per second (0
/// keeps the restore running forever). Runs until the console hangs up.
pub async fn run(
    tx: mpsc::Sender<UiEvent>,
    mut cmds: mpsc::Receiver<UiCommand>,
    start: DateTime<Utc>,
    restore_rate: u64,
) {
    // Continue the chain of the model's journal.
    let seed = model(start);
    let mut chain = Chain::new(&seed.header.incident);
    for r in &seed.journal {
        chain.seq = r.seq;
        chain.prev = r.hash.clone();
    }
    let mut rb = seed.runbook.clone();
    let incident = seed.incident_at.unwrap_or(start);
    let mut done: u64 = 1_153_433;
    let mut restored = false;
    let mut phase = 0u8;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut n: u64 = 0;
    let send = |ev: UiEvent| {
        let tx = tx.clone();
        async move { tx.send(ev).await.is_ok() }
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                let now = Utc::now();
                if n.is_multiple_of(2) {
                    if !send(UiEvent::Sample(sample(now, incident, restored))).await { return; }
                    let mut db = seed.databases[0].clone();
                    db.last_sample = Some(now);
                    if restored {
                        db.health = Health::Healthy;
                        db.health_detail = None;
                        db.total_rows = Some(348);
                    }
                    for mut h in seed.hosts.iter().take(2).cloned() {
                        h.last_answer = Some(now);
                        h.waiting_since = None;
                        if !send(UiEvent::HostUpdate(h)).await { return; }
                    }
                    if !send(UiEvent::DatabaseUpdate(db)).await { return; }
                }
                if phase == 0 {
                    done = (done + restore_rate).min(RESTORE_TOTAL);
                    let mut p = progress(now, done);
                    p.started_at = start - Duration::seconds(42);
                    p.updated_at = now;
                    let _ = send(UiEvent::Progress(Some(p))).await;
                    let _ = send(UiEvent::Output { step: "restore".into(), line: format!("COPY {}", done / 12_000), stderr: false }).await;
                    if done >= RESTORE_TOTAL {
                        phase = 1;
                        let r = chain.record(now, kinds::STEP_FINISHED, Some("restore"), Some("main"), None, None, "restored 348 rows in 25 tables", json!({"action": "restore"}));
                        let _ = send(UiEvent::Journal(r)).await;
                        let _ = send(UiEvent::StepUpdate { id: "restore".into(), state: StepState::Done, summary: Some("348 rows in 25 tables".into()) }).await;
                        let _ = send(UiEvent::StepUpdate { id: "verify".into(), state: StepState::Running, summary: None }).await;
                        if let Some(r) = &mut rb { r.current = Some(5); r.explanation = "Checks the restored copy: row counts per table against the backup, every foreign key, every unique index.".into(); r.preview = vec!["SELECT count(*) FROM \"GameRequest\" g LEFT JOIN \"User\" u ON u.id = g.\"userId\" WHERE u.id IS NULL".into()]; }
                        let _ = send(UiEvent::Progress(None)).await;
                    }
                } else if phase == 1 {
                    phase = 2;
                    let _ = send(UiEvent::StepUpdate { id: "verify".into(), state: StepState::Done, summary: Some("25 tables, 9 foreign keys, 14 unique indexes: all intact".into()) }).await;
                    if let Some(r) = &mut rb {
                        for s in &mut r.steps {
                            match s.id.as_str() {
                                "restore" | "verify" => s.state = StepState::Done,
                                _ => {}
                            }
                        }
                        r.current = Some(6);
                        r.explanation = "Renames the live (damaged) database to TovPlay__damaged_20261210T124200Z, which is kept, and the verified copy to TovPlay. Connections to both are closed first.".into();
                        r.preview = vec![
                            "ALTER DATABASE \"TovPlay\" RENAME TO \"TovPlay__damaged_20261210T124200Z\"".into(),
                            "ALTER DATABASE \"TovPlay__restore_20261210\" RENAME TO \"TovPlay\"".into(),
                        ];
                    }
                    let _ = send(UiEvent::RunbookUpdate(rb.clone())).await;
                    let _ = send(UiEvent::Confirm(Some(swap_confirm()))).await;
                }
            }
            c = cmds.recv() => {
                let Some(c) = c else { return };
                let now = Utc::now();
                match c {
                    UiCommand::Note(text) => {
                        let r = chain.record(now, kinds::NOTE, None, None, None, None, &text, serde_json::Value::Null);
                        let _ = send(UiEvent::Journal(r)).await;
                    }
                    UiCommand::Confirm { step, typed } => {
                        let r = chain.record(now, kinds::CONFIRMED, Some(&step), Some("main"), None, None, &format!("operator typed '{typed}'"), serde_json::Value::Null);
                        let _ = send(UiEvent::Journal(r)).await;
                        let _ = send(UiEvent::Confirm(None)).await;
                        let _ = send(UiEvent::StepUpdate { id: step.clone(), state: StepState::Done, summary: Some("TovPlay is the restored copy; the damaged one is kept".into()) }).await;
                        let _ = send(UiEvent::StepUpdate { id: "start-services".into(), state: StepState::Done, summary: Some("tovplay-backend restarted; the sync stays disabled".into()) }).await;
                        restored = true;
                        phase = 3;
                    }
                    UiCommand::Abort => {
                        let _ = send(UiEvent::StepUpdate { id: "restore".into(), state: StepState::Interrupted, summary: Some("aborted by the operator".into()) }).await;
                        phase = 3;
                    }
                    UiCommand::Export(f) => {
                        let _ = send(UiEvent::Status(format!("demo: export as {f:?} would be written now"))).await;
                    }
                    UiCommand::PreviewRunbook(name) => {
                        let _ = send(UiEvent::Plan(Box::new(crate::tui::plan::PlanPreview {
                            refused: vec![format!("demo: runbook '{name}' is already running; its steps are in the Runbook view")],
                            runbook: name,
                            ..Default::default()
                        }))).await;
                    }
                    UiCommand::StartRunbook(name) => {
                        let _ = send(UiEvent::Status(format!("demo: runbook '{name}' is already running"))).await;
                    }
                    UiCommand::Retry { step, .. } => {
                        let _ = send(UiEvent::Status(format!("demo: step '{step}' would be retried now"))).await;
                    }
                    UiCommand::AckAlerts { upto_seq, count } => {
                        let r = chain.record(now, crate::timeline::detect::ALERT_ACK, None, None, None, None, &format!("operator acknowledged {count} alert(s)"), serde_json::json!({ "upto_seq": upto_seq, "count": count }));
                        let _ = send(UiEvent::Journal(r)).await;
                    }
                    UiCommand::ChooseBackup { name, .. } => {
                        let _ = send(UiEvent::Status(format!("demo: backup '{name}' would be chosen now"))).await;
                    }
                    UiCommand::SelectDb(_)
                    | UiCommand::PitrTarget(_)
                    | UiCommand::Path(_)
                    | UiCommand::StopPlan { .. }
                    | UiCommand::ResolveFrozen { .. } => {}
                    UiCommand::Quit => return,
                }
            }
        }
    }
}

/// A later pick of the demo with three eligible candidates (the newest
/// preselected, one whose time is the file's mtime only) and one excluded,
/// and, when `chosen` names one, the operator's `backup-chosen` record for
/// it. For the backup-choice tests and snapshots.
pub fn add_choice_pick(m: &mut Model, chosen: Option<(&str, &str)>) {
    let mut chain = Chain::new(&m.header.incident);
    if let Some(r) = m.journal.last() {
        chain.seq = r.seq;
        chain.prev = r.hash.clone();
    }
    let incident = m.incident_at.unwrap_or(m.now);
    let at = |s: i64| incident + Duration::seconds(s);
    let cand = |name: &str, t: i64, source: &str, rows: (u64, u64), excluded: Option<&str>| {
        json!({
            "name": name, "path": format!("/var/backups/tovplay/{name}"),
            "taken_at": at(t), "time_source": source, "size": 2_097_152 + rows.1 * 100,
            "sha256": format!("{:016x}{:048x}", rows.1.wrapping_mul(0x9e37_79b9_7f4a_7c15), rows.0), "rpo_s": (t < 0).then_some(-t),
            "excluded": excluded, "label": "healthy", "label_why": "every table has rows",
            "rows": {"public.User": rows.0, "public.GameRequest": rows.1}
        })
    };
    let newest = "tovplay_external_20261210_060000.sql";
    let pick = chain.record(
        at(900),
        kinds::STEP_FINISHED,
        Some("pick"),
        Some("backup"),
        None,
        None,
        &format!("picked {newest}"),
        json!({
            "action": "pick-backup",
            "rpo_s": 24_120,
            "incident_at": incident,
            "backup": {"name": newest, "path": format!("/var/backups/tovplay/{newest}"),
                       "size": 2_114_252, "sha256": format!("{:0>64x}", 171), "taken_at": at(-24_120)},
            "baseline": {"public.User": 22, "public.GameRequest": 171},
            "candidates": [
                cand("tovplay_external_20261210_124500.sql", 180, "name", (0, 0), Some("taken after the incident: it holds the damage")),
                cand(newest, -24_120, "name", (22, 171), None),
                cand("tovplay_external_20261209_180000.sql", -67_320, "mtime", (21, 160), None),
                cand("tovplay_external_20261208_073600.sql", -191_076, "name", (20, 149), None),
            ]
        }),
    );
    m.apply(UiEvent::Journal(pick));
    if let Some((name, reason)) = chosen {
        let r = chain.record(
            at(930),
            crate::engine::driver::kinds::BACKUP_CHOSEN,
            Some("pick"),
            None,
            None,
            None,
            &format!("operator chose backup '{name}' instead of '{newest}'"),
            json!({
                "chosen": {"name": name, "path": format!("/var/backups/tovplay/{name}")},
                "preselected": {"name": newest, "path": format!("/var/backups/tovplay/{newest}")},
                "reason": reason,
                "source": "console",
                "at_step": "restore",
            }),
        );
        m.apply(UiEvent::Journal(r));
    }
}

/// The restore confirmation of [`add_choice_pick`]'s pick: the backup it
/// reads is `name` (the preselection unless `reason` says why not).
pub fn restore_confirm(m: &Model, name: &str, reason: Option<&str>) -> PendingConfirm {
    let newest = "tovplay_external_20261210_060000.sql";
    let (rpo, lost): (i64, &[(&str, u64)]) = match name {
        "tovplay_external_20261209_180000.sql" => {
            (67_320, &[("public.GameRequest", 11), ("public.User", 1)])
        }
        "tovplay_external_20261208_073600.sql" => {
            (191_076, &[("public.GameRequest", 22), ("public.User", 2)])
        }
        _ => (24_120, &[]),
    };
    let eligible = [
        (newest, None),
        (
            "tovplay_external_20261209_180000.sql",
            Some("its time is the file's mtime only"),
        ),
        ("tovplay_external_20261208_073600.sql", None),
    ];
    PendingConfirm {
        step: "restore".into(),
        prompt: "restore on db.tovplay.example:5432/TovPlay: type 'TovPlay' to go on".into(),
        expect: Some("TovPlay".into()),
        also: Vec::new(),
        database: Some("main".into()),
        changes: vec![format!(
            "CREATE DATABASE \"TovPlay__restore_20261210T131500Z\"; the stream of /var/backups/tovplay/{name} runs into it"
        )],
        backup: Some(crate::engine::types::BackupAtStake {
            pick_step: "pick".into(),
            name: name.into(),
            path: format!("/var/backups/tovplay/{name}"),
            taken_at: m.incident_at.map(|t| t - Duration::seconds(rpo)),
            time_source: "name".into(),
            rpo_s: Some(rpo),
            rows_lost: lost.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            rows_known: true,
            label: Some("healthy".into()),
            preselected: newest.into(),
            reason: reason.map(str::to_string),
            eligible: eligible
                .iter()
                .map(|(n, s)| crate::engine::types::EligibleBackup {
                    name: n.to_string(),
                    suspect: s.map(str::to_string),
                })
                .collect(),
        }),
    }
}

/// A migration history on database `main` (added when missing): Prisma's
/// 22 migrations, written over 2023-2024 and re-applied within one second
/// (the lab's migration-reset), one name carrying an escape sequence, and
/// an Alembic table that keeps no times.
pub fn migration_history(m: &mut Model) {
    use crate::migrations::History;
    use crate::migrations::{MigrationState, MigrationTool};
    let at = Utc.with_ymd_and_hms(2026, 12, 10, 12, 41, 7).single();
    let mut rows: Vec<(String, Option<DateTime<Utc>>)> = (0..22)
        .map(|i| {
            let name = match i {
                0 => "20230105120000_init".to_string(),
                7 => "20230812090000_audit\u{1b}[31m_log".to_string(),
                _ => format!("2023{:02}{:02}090000_step_{i}", 1 + i / 2, 10 + i % 2),
            };
            (name, at)
        })
        .collect();
    rows.reverse();
    let prisma = MigrationState {
        tool: Some(MigrationTool::Prisma),
        table: "public._prisma_migrations".into(),
        present: true,
        count: Some(22),
        last: None,
        flagged: None,
        error: None,
        history: Some(History::from_rows("Prisma", true, 22, rows)),
    };
    let alembic = MigrationState {
        tool: Some(MigrationTool::Alembic),
        table: "public.alembic_version".into(),
        present: true,
        count: Some(1),
        last: None,
        flagged: None,
        error: None,
        history: Some(History::from_rows(
            "Alembic",
            false,
            1,
            vec![("4f2a9c1e7b3d".into(), None)],
        )),
    };
    if !m.databases.iter().any(|d| d.name == "main") {
        m.databases.push(DatabaseState {
            name: "main".into(),
            identity: Some(main_identity()),
            ..Default::default()
        });
    }
    if let Some(d) = m.databases.iter_mut().find(|d| d.name == "main") {
        d.migrations = vec![prisma, alembic];
    }
    m.ui.selected_db = Some("main".into());
}
