//! The exact commands and SQL of a step, as text: shown before a step is
//! confirmed, printed by --dry-run, journaled with step-started. The
//! direct actions build what they run from the same functions.

use std::path::Path;

use super::types::{
    ActionRequest, DbTarget, MARK_COMPLETE, MARK_INCOMPLETE, MergePolicy, MergeTx, RestoreAs,
    RestoreRequest, STOP_GRACE_S, SwapRequest,
};
use crate::inventory::{ServiceKind, ServiceSpec};

/// A quoted SQL identifier: `"name"` with `"` doubled. The one helper.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn conninfo_value(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\', '=']) {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// libpq conninfo for `dbname` on `db`'s server; never holds a password.
pub fn conninfo(db: &DbTarget, dbname: &str) -> String {
    let u = &db.url;
    let mut parts = vec![
        format!("host={}", conninfo_value(&u.host)),
        format!("port={}", u.port),
    ];
    if let Some(user) = &u.user {
        parts.push(format!("user={}", conninfo_value(user)));
    }
    parts.push(format!("dbname={}", conninfo_value(dbname)));
    parts.join(" ")
}

/// Arguments of the snapshot's `pg_dump` (the password, if any, goes in
/// the environment, never here).
pub fn pg_dump_args(db: &DbTarget, path: &Path) -> Vec<String> {
    vec![
        "-Fc".into(),
        "--no-password".into(),
        "-f".into(),
        path.display().to_string(),
        "-d".into(),
        conninfo(db, db.dbname()),
    ]
}

/// Shell-style rendering of a program and its arguments, for people.
pub fn shell_line(prog: &str, args: &[String]) -> String {
    let mut out = prog.to_string();
    for a in args {
        out.push(' ');
        if !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+".contains(&b))
        {
            out.push_str(a);
        } else {
            out.push('\'');
            out.push_str(&a.replace('\'', "'\\''"));
            out.push('\'');
        }
    }
    out
}

/// Ends every other session on the two databases (parameter $1: their names).
pub const TERMINATE_SQL: &str = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()";

/// The renames of a swap, in order, inside one transaction.
pub fn swap_renames(req: &SwapRequest) -> Vec<String> {
    let live = req.database.dbname();
    let mut v = Vec::new();
    if let Some(d) = &req.damaged {
        v.push(format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(live),
            quote_ident(d)
        ));
    }
    v.push(format!(
        "ALTER DATABASE {} RENAME TO {}",
        quote_ident(&req.restored),
        quote_ident(live)
    ));
    v
}

/// What a stop of one inventory service will run (the hosts actions build
/// the same commands: `engine::real::hosts`).
fn stop_commands(s: &ServiceSpec) -> String {
    let on = format!("on {}: ", s.host.get_ref());
    match s.kind {
        ServiceKind::Systemd | ServiceKind::Timer => {
            let u = s.unit.as_deref().unwrap_or(s.name());
            format!(
                "{on}systemctl stop {u} (when active); systemctl disable {u} (when enabled); systemctl mask {u}"
            )
        }
        ServiceKind::Cron => {
            let f = s.cron_file.as_deref().unwrap_or("<discovered cron file>");
            format!(
                "{on}keep the original of {f} in /var/lib/lifeline/kept (0700) under an unpredictable mktemp name (0600; inode and SHA-256 journaled), then comment out its lines ('# lifeline-off <stamp>: ' in front of each)"
            )
        }
        ServiceKind::Container => format!(
            "{on}docker stop {} (never 'down -v' or 'rm')",
            s.container.as_deref().unwrap_or(s.name())
        ),
        ServiceKind::Process => {
            let which = match (&s.pidfile, &s.match_) {
                (Some(p), Some(m)) => format!("the pid in {p} (its command line matching '{m}')"),
                (Some(p), None) => format!("the pid in {p}"),
                (None, Some(m)) => format!(
                    "the processes matching '{m}' that evidence ties to its databases (several without evidence: target unclear, not stopped)"
                ),
                (None, None) => format!("process '{}'", s.name()),
            };
            format!(
                "{on}{which}: kill -s STOP (every process of the step first), then kill -s TERM its process group (the process alone when it leads none), kill -s KILL after {} s",
                STOP_GRACE_S
            )
        }
    }
}

/// Who the restore's sessions log in as, and what typing which phrase does.
fn restore_as_line(r: &RestoreRequest) -> String {
    let db = r.database.dbname();
    match &r.restore_as {
        RestoreAs::Role { name, create, .. } => format!(
            "every restore session logs in AS {} (restore_role; not SET ROLE), which owns the target and nothing else: refused if it is a superuser, may create roles or databases, is a member of any role, or owns another database; ALTER ... OWNER TO other roles is skipped and listed for reapply-owners{}",
            quote_ident(name),
            if *create {
                format!(
                    "; if it does not exist it is created first: {}",
                    super::types::create_role_sql(name)
                )
            } else {
                format!(
                    "; if it does not exist the step fails: type '{}' instead to create it ({})",
                    RestoreAs::create_phrase(db, name),
                    super::types::create_role_sql(name)
                )
            }
        ),
        RestoreAs::Admin => format!(
            "NO restore_role for '{}' in the inventory: the restore runs AS THE ADMIN USER, and a hostile backup's functions (CHECK constraints, index expressions, triggers) run with its privileges; typing '{}' accepts that (journaled); add restore_role to the inventory instead",
            r.database.name,
            RestoreAs::admin_phrase(db)
        ),
    }
}

/// The preview lines of a resolved step.
pub fn preview(req: &ActionRequest) -> Vec<String> {
    match req {
        ActionRequest::Note { text } => vec![format!("note: {text}")],
        ActionRequest::Probe(p) => {
            let mut v = Vec::new();
            if let Some(h) = &p.host {
                v.push(format!(
                    "probe host {}: systemd units and timers, cron entries, containers, processes; the databases each reaches; hazards",
                    h.display()
                ));
            }
            if let Some(d) = &p.database {
                v.push(format!(
                    "probe database {}: identity, health, row counts",
                    d.display()
                ));
            }
            v
        }
        ActionRequest::StopServices(s) => {
            let mut v: Vec<String> = s.services.iter().map(stop_commands).collect();
            let hosts: Vec<&str> = s.hosts.iter().map(|h| h.name.as_str()).collect();
            if let Some(d) = &s.database {
                v.push(format!(
                    "discover every other writer evidence (arguments, scripts, environment) ties to {} on {}, and what starts it again (watchdogs, second cron lines); print the plan (STOP / LEAVE, each with why) before freezing anything; stop them the same way",
                    d.display(),
                    if hosts.is_empty() {
                        "its hosts".to_string()
                    } else {
                        hosts.join(", ")
                    }
                ));
                v.push(format!(
                    "hold {} s: re-probe every 2 s; fail if anything is active again (a process that comes back is ended again, the hold still fails), or if {} shows write sessions from these hosts (pg_stat_activity) or row writes (pg_stat_user_tables)",
                    s.hold_s,
                    d.display()
                ));
            } else {
                v.push(format!(
                    "hold {} s: re-probe every 2 s; fail if anything is active again (a process that comes back is ended again, the hold still fails)",
                    s.hold_s
                ));
            }
            v
        }
        ActionRequest::Snapshot(s) => vec![
            format!("on this machine, against {}:", s.database.display()),
            shell_line("pg_dump", &pg_dump_args(&s.database, &s.path)),
            format!("then journal the size and SHA-256 of {}", s.path.display()),
        ],
        ActionRequest::PickBackup(p) => vec![
            format!(
                "list catalog '{}' on {}: {}/{}",
                p.catalog.name(),
                p.host.display(),
                p.catalog.path,
                p.catalog.pattern.as_deref().unwrap_or("*")
            ),
            format!(
                "incident time: {}",
                p.incident_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "from the evidence: the last backup whose content is healthy before the first damaged one".into())
            ),
            "scan every backup's content (rows per table, cached by SHA-256) and label it against the healthy history: healthy, damaged, schema-only, other-database, truncated, unreadable".into(),
            "preselect the newest healthy backup taken before it (time from its name or dump header, never mtime alone); an incident time later than the first damaged backup is corrected, with a warning".into(),
        ],
        ActionRequest::Restore(r) => vec![
            format!(
                "on {}: check {} first (format, pg_dump trailer); a truncated or unreadable backup is refused before anything is created",
                r.host.display(),
                r.backup_path
            ),
            format!(
                "CREATE DATABASE {} on {} (encoding, collation, owner of {}; the server's defaults if it is missing), marked '{}'",
                quote_ident(&r.target_db),
                r.database.server(),
                quote_ident(r.database.dbname()),
                MARK_INCOMPLETE
            ),
            format!(
                "on {}, by the format its first bytes show: cat -- {} (plain SQL; gzip is inflated here), or pg_restore -f - -- {} (custom, directory or tar archive); the stream (catalog '{}') runs through lifeline's executor into {} with {} job(s)",
                r.host.name,
                shell_line("", std::slice::from_ref(&r.backup_path)).trim_start(),
                shell_line("", std::slice::from_ref(&r.backup_path)).trim_start(),
                r.catalog.name(),
                quote_ident(&r.target_db),
                r.jobs
            ),
            format!(
                "only when every statement ran: mark it '{}'",
                MARK_COMPLETE
            ),
            format!("the live database {} is not touched", r.database.display()),
            restore_as_line(r),
        ],
        ActionRequest::ReapplyOwners(o) => {
            let mut v = vec![
                format!(
                    "on {}/{} as the admin connection ({}): refuse if it holds an event trigger",
                    o.database.server(),
                    o.restored,
                    o.database.spec.pg_url().and_then(|u| u.user.as_deref()).unwrap_or("the inventory's user")
                ),
            ];
            if let Some(owner) = &o.database_owner {
                v.push(format!(
                    "ALTER DATABASE {} OWNER TO {}",
                    quote_ident(&o.restored),
                    quote_ident(owner)
                ));
            }
            v.extend(o.changes.iter().map(|c| c.sql()));
            v.push("each only when its role exists on the server; the others stay the restore role's and are listed".into());
            v
        }
        ActionRequest::Verify(v) => {
            let mut out = vec![format!(
                "integrity checks from the schema (foreign keys, unique indexes) and exact row counts on {}/{}",
                v.database.server(),
                v.dbname
            )];
            if v.manifest.is_some() {
                out.push("compare the row counts with the restore manifest".into());
            }
            out
        }
        ActionRequest::Swap(s) => {
            let mut v = vec![
                format!("on {}, connected to its maintenance database:", s.database.server()),
                format!(
                    "refuse unless the comment of {} starts with '{}' (restore::target_status)",
                    quote_ident(&s.restored),
                    MARK_COMPLETE
                ),
                format!(
                    "{TERMINATE_SQL}  -- $1 = {{{},{}}}",
                    s.database.dbname(),
                    s.restored
                ),
                "BEGIN".into(),
            ];
            v.extend(swap_renames(s));
            v.push("COMMIT".into());
            v.push(format!(
                "then confirm that {} is the restored database (its OID) and nothing was dropped",
                s.database.dbname()
            ));
            v
        }
        ActionRequest::MergeTables(m) => {
            let mut v = vec![
                format!(
                    "merge tables {} from {} into {} on {}",
                    m.tables.join(", "),
                    quote_ident(&m.source),
                    quote_ident(m.database.dbname()),
                    m.database.server()
                ),
                "per table, parents before children: COPY (SELECT ...) TO STDOUT from the restored copy into a TEMPORARY staging table (COPY FROM STDIN)".into(),
                match m.policy {
                    MergePolicy::LiveWins => "INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING: the live row wins".into(),
                    MergePolicy::RestoredWins => "INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE SET every other column: the restored row wins".into(),
                },
                match m.transaction {
                    MergeTx::One => "all tables in ONE transaction: any failure rolls everything back".into(),
                    MergeTx::PerTable => "one transaction per table: a failure rolls back that table only".into(),
                    MergeTx::Batches => format!("one transaction per batch of {} rows: locks held for one batch only; a failure rolls back that batch only", super::types::MERGE_BATCH_ROWS),
                },
                "sequences moved to at least the max key (setval); foreign keys checked after; counts compared with live before + inserted".into(),
            ];
            if !m.replace.is_empty() {
                v.push(format!(
                    "REPLACE WHOLE (no key; TRUNCATE + copy, their live rows are lost): {}",
                    m.replace.join(", ")
                ));
            }
            v
        }
        ActionRequest::RecoverPitr(p) => {
            let window = match (p.healthy_at, p.damaged_at) {
                (Some(h), Some(d)) => format!(
                    "committed between {} (last seen healthy) and {} (first damage evidence)",
                    h.to_rfc3339(),
                    d.to_rfc3339()
                ),
                (Some(h), None) => format!("committed after {} (last seen healthy)", h.to_rfc3339()),
                (None, Some(d)) => format!("committed by {} (first damage evidence)", d.to_rfc3339()),
                (None, None) => "committed after the archive's oldest base backup".into(),
            };
            vec![
                format!(
                    "list archive '{}' on {}: base backups (start/end LSN and time), archived WAL and its gaps; a gap in the window stops here",
                    p.archive.name(),
                    p.host.display()
                ),
                format!(
                    "pg_waldump over the archived WAL: the first destructive transaction (TRUNCATE, DROP or re-create, DELETE of many rows, DROP DATABASE) on database {} (its OID on {}), {window}",
                    quote_ident(p.database.dbname()),
                    p.database.server()
                ),
                match &p.moved {
                    None => "target: that transaction, exclusive (recovery_target_xid, recovery_target_inclusive = off); the newest base backup that ENDED before it (any other is refused, with the reason)".into(),
                    Some(m) => format!(
                        "target MOVED by the operator to {} (given '{}'), instead of that transaction: journaled with the evidence it departs from; {}; the newest base backup that ENDED before it",
                        m.target.describe(),
                        m.given,
                        if m.past_damage {
                            "LATER than the destructive commit accepted: the recovered copy may hold the damage"
                        } else {
                            "refused if it is later than the destructive transaction's commit (type the phrase ending 'after the damage' to accept that)"
                        }
                    ),
                },
                format!(
                    "copy it into a NEW private directory {}/{} (0700) on {}, with lifeline's own postgresql.conf (no TCP, socket only, archive_mode off, restore_command reading the archive, recovery_target_action = pause)",
                    p.archive
                        .recovery_dir
                        .as_deref()
                        .unwrap_or("/var/tmp/lifeline-pitr")
                        .trim_end_matches('/'),
                    p.name,
                    p.host.name
                ),
                "start it, wait for the pause at the target, check the server stopped BEFORE the destructive transaction and that it is not committed there".into(),
                format!(
                    "pg_dump -Fc of {} from the recovered cluster into recovered.dump beside it (SHA-256 recorded: the restore step is held to it); the recovery cluster is stopped and kept",
                    quote_ident(p.database.dbname())
                ),
                format!(
                    "NOT destructive: the live server {} and its data directory are not touched; the archive is only read",
                    p.database.server()
                ),
            ]
        }
        ActionRequest::ChoosePath(c) => {
            let mut v = Vec::new();
            match (&c.forced, &c.archive) {
                (Some((p, by)), _) => v.push(format!(
                    "path forced to '{p}' by {by} (journaled){}",
                    if *p == crate::runbook::PathChoice::Pitr {
                        "; refused if the archive cannot serve it"
                    } else {
                        ""
                    }
                )),
                (None, Err(why)) => v.push(format!("path 'dump': {why}")),
                (None, Ok(_)) => {}
            }
            if let (Ok((a, h)), false) = (
                &c.archive,
                matches!(c.forced, Some((crate::runbook::PathChoice::Dump, _))),
            ) {
                v.push(format!(
                    "list archive '{}' on {}: base backups (start/end LSN and time), archived WAL and its gaps",
                    a.name(),
                    h.display()
                ));
                v.push(format!(
                    "pg_waldump over the archived WAL: the first destructive transaction on database {} (its OID on {}, or the newest timeline sample's when it is gone){}",
                    quote_ident(c.database.dbname()),
                    c.database.server(),
                    c.incident_at
                        .map(|t| format!(", committed after {}", t.to_rfc3339()))
                        .unwrap_or_default()
                ));
                v.push("path 'pitr' when a base backup ended before it and every WAL segment from that backup's start through it is archived; else path 'dump', with the reason (a WAL gap is named)".into());
            }
            v.push("reads only: nothing is started; the steps of the other path are skipped and journaled as such".into());
            v
        }
        ActionRequest::StartServices(s) => {
            let mut v: Vec<String> = s
                .stopped
                .iter()
                .map(|x| {
                    if x.hazard && !s.picked.contains(&x.name) {
                        format!("keep '{}' on {} off: flagged as a hazard", x.name, x.host)
                    } else {
                        match x.kind {
                            ServiceKind::Process if x.commands.is_empty() => format!(
                                "keep '{}' on {} off: it was not running when the stop step ran",
                                x.name, x.host
                            ),
                            ServiceKind::Process => format!(
                                "start '{}' on {}: run its 'start' command from the inventory (none: it stays off)",
                                x.name, x.host
                            ),
                            ServiceKind::Cron => format!(
                                "on {}: uncomment {} ('# lifeline-off' prefix); when every line of the file is started and nothing else changed, copy back the kept original {}",
                                x.host,
                                x.name,
                                x.original_kept.as_deref().unwrap_or("?")
                            ),
                            _ => format!(
                                "on {}: {}",
                                x.host,
                                x.undo_commands().join("; ")
                            ),
                        }
                    }
                })
                .collect();
            if v.is_empty() {
                v.push("start what the earlier stop-services steps of this run stopped (nothing recorded yet)".into());
            }
            v
        }
        ActionRequest::Command(c) => vec![format!(
            "on {} (timeout {} s): {}",
            c.host.display(),
            c.timeout_s,
            c.command
        )],
        ActionRequest::Sql(q) => vec![
            format!(
                "on {} ({}):",
                q.database.display(),
                if q.read_only {
                    "read-only: one statement in a READ ONLY transaction opened by lifeline; no SET, transaction control, COPY or DO"
                } else {
                    "read-write session"
                }
            ),
            q.sql.clone(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("app", "\"app\"")]
    #[case("TovPlay", "\"TovPlay\"")]
    #[case("we\"ird", "\"we\"\"ird\"")]
    fn idents(#[case] name: &str, #[case] quoted: &str) {
        assert_eq!(quote_ident(name), quoted);
    }

    #[rstest]
    #[case("db.example.net", "db.example.net")]
    #[case("two words", "'two words'")]
    #[case("it's", "'it\\'s'")]
    #[case("", "''")]
    fn conninfo_values(#[case] v: &str, #[case] want: &str) {
        assert_eq!(conninfo_value(v), want);
    }

    #[test]
    fn shell_lines_quote_only_what_needs_it() {
        let args = vec![
            "-Fc".to_string(),
            "host=h dbname=x".to_string(),
            "it's".to_string(),
        ];
        assert_eq!(
            shell_line("pg_dump", &args),
            "pg_dump -Fc 'host=h dbname=x' 'it'\\''s'"
        );
    }
}
