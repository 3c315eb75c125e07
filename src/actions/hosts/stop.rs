//! stop-services (stop, disable, mask; comment out cron lines; docker stop;
//! end process groups) with its plan and hold, and start-services, which
//! undoes only what a stop of this run did. Stops only what evidence ties
//! to the database; never deletes a file or a container: a cron file or
//! crontab is kept in a private directory before its lines are commented out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::watch::DbWatch;
use super::{RealActions, discover_on, review, run, transport};
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;
use crate::inventory::{Inventory, ServiceKind, ServiceSpec};
use crate::probe::{CronLine, Discovery, Service, StartedBy};
use crate::transport::{ExecOptions, Host, shell_quote};

/// How often the hold probes again.
const POLL: Duration = Duration::from_secs(2);
/// Tries to continue frozen processes after a failed stop (POLL apart).
const CONT_ATTEMPTS: usize = 5;
/// Limit of one stop or start command (a process stop waits up to the grace).
const CMD_TIMEOUT: Duration = Duration::from_secs(STOP_GRACE_S + 20);
/// What a commented-out cron line starts with (followed by the run's stamp and ": ").
pub const CRON_MARK: &str = "# lifeline-off ";

/// How one thing is stopped.
#[derive(Debug, Clone)]
enum How {
    Unit {
        unit: String,
        active: bool,
        enabled: bool,
    },
    Cron {
        /// The file, or `crontab -l -u USER` for a user crontab.
        file: String,
        line: usize,
    },
    Container {
        tool: String,
        name: String,
    },
    Process {
        pidfile: Option<String>,
        pattern: Option<String>,
        pid: Option<u32>,
    },
}

#[derive(Debug, Clone)]
struct Item {
    name: String,
    host: String,
    kind: ServiceKind,
    how: How,
    hazard: bool,
    /// Scripts it starts: the more, the earlier it is stopped (a watchdog before its worker).
    starts: usize,
    /// What it runs (to recognise it when it comes back under another pid or line).
    command: Option<String>,
    scripts: Vec<String>,
    /// Why it is in the stop plan, with its evidence.
    why: String,
}

fn unit_commands(unit: &str, active: bool, enabled: bool) -> Vec<String> {
    let u = shell_quote(unit);
    let mut v = Vec::new();
    if active {
        v.push(format!("systemctl stop {u}"));
    }
    if enabled {
        v.push(format!("systemctl disable {u}"));
    }
    v.push(format!("systemctl mask {u}"));
    v
}

/// The name part of a kept copy: `crontab-USER` or `cron-BASENAME`, with
/// anything but `[A-Za-z0-9._-]` replaced (the name goes into a template).
fn kept_name(file: &str) -> String {
    let raw = match file.strip_prefix("crontab -l -u ") {
        Some(user) => format!("crontab-{user}"),
        None => format!("cron-{}", file.rsplit('/').next().unwrap_or(file)),
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The run stamp in a kept copy's name (`NAME.lifeline-STAMP.RANDOM`).
pub(super) fn stamp_of(kept: &str) -> &str {
    kept.rsplit(".lifeline-")
        .next()
        .and_then(|t| t.split('.').next())
        .unwrap_or_default()
}

/// Shell that makes the kept-copy directory (0700, this user's, not a
/// symlink: else exit 3, nothing changed) and a fresh, unpredictable,
/// exclusively created 0600 file in it, named by `$k`.
fn kept_prelude(kept_dir: &str, file: &str, stamp: &str) -> String {
    let d = shell_quote(kept_dir);
    let tmpl = shell_quote(&format!("{}.lifeline-{stamp}.XXXXXXXXXX", kept_name(file)));
    format!(
        "umask 077; d={d}; mkdir -p -m 0700 -- \"$d\" 2>/dev/null; \
if [ ! -d \"$d\" ] || [ -L \"$d\" ] || [ \"$(stat -c '%u %a' -- \"$d\")\" != \"$(id -u) 700\" ]; then \
echo \"kept-copy directory $d is not a private directory of $(id -un) (mode 0700, not a symlink): nothing changed\" >&2; exit 3; fi; \
k=$(mktemp -- \"$d\"/{tmpl}) || {{ echo 'cannot create the kept copy: nothing changed' >&2; exit 3; }}; "
    )
}

/// Prints `kept PATH INODE SHA256` of `$k` (the journal keeps them).
const KEPT_REPORT: &str =
    "echo \"kept $k $(stat -c %i -- \"$k\") $(sha256sum < \"$k\" | cut -d' ' -f1)\"; ";

/// A kept copy as the stop command reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptCopy {
    pub path: String,
    pub inode: u64,
    pub sha256: String,
}

/// Reads `kept PATH INODE SHA256` from a stop command's output.
fn parse_kept(stdout: &str) -> Option<KeptCopy> {
    let l = stdout.lines().find_map(|l| l.strip_prefix("kept "))?;
    let mut it = l.rsplitn(3, ' ');
    let sha256 = it.next()?.to_string();
    let inode = it.next()?.parse().ok()?;
    let path = it.next()?.to_string();
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())).then_some(KeptCopy {
        path,
        inode,
        sha256,
    })
}

fn sed_lines(lines: &[usize], pattern: &str, replacement: &str) -> String {
    lines
        .iter()
        .map(|n| {
            format!(
                "-e {}",
                shell_quote(&format!("{n}s/{pattern}/{replacement}/"))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Comments out `lines` of a cron file after keeping the original in the
/// kept-copy directory (see `kept_prelude`); a user crontab is installed
/// back from that private copy, never from a shared location.
fn cron_stop_command(file: &str, lines: &[usize], stamp: &str, kept_dir: &str) -> String {
    let mark = format!("{CRON_MARK}{stamp}: ");
    let sed = sed_lines(lines, "^", &mark);
    let prelude = kept_prelude(kept_dir, file, stamp);
    if let Some(user) = file.strip_prefix("crontab -l -u ") {
        let u = shell_quote(user);
        return format!(
            "{prelude}crontab -l -u {u} > \"$k\" || exit 3; {KEPT_REPORT}sed {sed} \"$k\" | crontab -u {u} -"
        );
    }
    let f = shell_quote(file);
    format!("{prelude}cat -- {f} > \"$k\" || exit 3; {KEPT_REPORT}sed -i {sed} {f}")
}

/// Uncomments `lines` again; when every line this run commented is
/// started and nothing else changed, the kept original is copied back.
pub(super) fn cron_start_command(
    file: &str,
    lines: &[usize],
    stamp: &str,
    all: Option<&KeptCopy>,
) -> String {
    let mark = format!("{CRON_MARK}{stamp}: ");
    let sed = sed_lines(lines, &format!("^{mark}"), "");
    if let Some(user) = file.strip_prefix("crontab -l -u ") {
        let u = shell_quote(user);
        return format!("crontab -l -u {u} | sed {sed} | crontab -u {u} -");
    }
    let f = shell_quote(file);
    if let Some(kept) = all {
        let every = shell_quote(&format!("s/^{mark}//"));
        // The kept copy is used only when it is the file the stop wrote
        // (same inode, same SHA-256); else the lines are uncommented in place.
        format!(
            "k={k}; if [ -f \"$k\" ] && [ ! -L \"$k\" ] && [ \"$(stat -c %i -- \"$k\")\" = {inode} ] && [ \"$(sha256sum < \"$k\" | cut -d' ' -f1)\" = {sha} ]; then if sed -e {every} {f} | cmp -s - \"$k\"; then cat -- \"$k\" > {f}; else sed -i {sed} {f}; fi; else echo \"kept copy $k is not the file lifeline wrote (gone, or inode or SHA-256 differ): not used; lines uncommented in place\" >&2; sed -i {sed} {f}; fi",
            k = shell_quote(&kept.path),
            inode = kept.inode,
            sha = shell_quote(&kept.sha256),
        )
    } else {
        format!("sed -i {sed} {f}")
    }
}

/// A shell test "is this pid / -pgid still running (zombies are gone)".
const ALIVE_FN: &str = "alive() { ps -eo pid=,pgid=,stat= | awk -v t=\"$1\" '((t ~ /^-/) ? ($2 == substr(t, 2)) : ($1 == t)) && $3 !~ /^Z/ { f = 1 } END { exit !f }'; }";

/// Ends a process group (`-PGID`) or a process (`PID`): TERM (and CONT, in
/// case it was frozen), KILL after the grace.
pub(super) fn kill_command(target: &str) -> String {
    let ticks = STOP_GRACE_S * 2;
    format!(
        "{ALIVE_FN}; kill -s TERM -- {target}; kill -s CONT -- {target} 2>/dev/null; i=0; while alive {target} && [ $i -lt {ticks} ]; do sleep 0.5; i=$((i+1)); done; if alive {target}; then echo 'still running after {STOP_GRACE_S} s: sending KILL'; kill -s KILL -- {target}; sleep 0.5; fi; if alive {target}; then echo 'still running after KILL'; exit 1; fi; echo 'ended'"
    )
}

/// The commands that start a stopped service again (empty for processes,
/// whose start command is the inventory's).
pub fn start_commands(s: &StoppedService) -> Vec<String> {
    match s.kind {
        ServiceKind::Systemd | ServiceKind::Timer | ServiceKind::Container => s.undo_commands(),
        ServiceKind::Cron => match (s.cron_at(), &s.original_kept) {
            (Some((file, line)), Some(k)) => {
                vec![cron_start_command(&file, &[line], stamp_of(k), None)]
            }
            _ => Vec::new(),
        },
        ServiceKind::Process => Vec::new(),
    }
}

fn rank(kind: ServiceKind) -> u8 {
    match kind {
        ServiceKind::Timer => 0,
        ServiceKind::Cron => 1,
        ServiceKind::Systemd | ServiceKind::Process => 2,
        ServiceKind::Container => 3,
    }
}

/// The database server itself is never stopped.
fn is_db_server(s: &Service) -> bool {
    s.facts.db_server
        || s.command.as_deref().is_some_and(|c| {
            let first = c.split_whitespace().next().unwrap_or("");
            matches!(
                first.rsplit('/').next().unwrap_or(""),
                "postgres" | "postmaster"
            )
        })
}

fn reaches(s: &Service, db: &DbTarget) -> bool {
    s.target_unclear.is_none()
        && s.databases_reached
            .iter()
            .any(|r| r.inventory.as_deref() == Some(db.name.as_str()))
}

/// True when evidence ties `s` to inventory databases and `db` is not one
/// of them: another database's writer, never stopped or counted for `db`.
fn writes_elsewhere(s: &Service, db: Option<&str>) -> bool {
    let Some(db) = db else {
        return false;
    };
    let mapped: Vec<&str> = s
        .databases_reached
        .iter()
        .filter_map(|r| r.inventory.as_deref())
        .collect();
    !mapped.is_empty() && !mapped.contains(&db)
}

/// Items for the inventory service `spec`, given its host's discovery.
fn spec_items(spec: &ServiceSpec, d: &Discovery) -> Vec<Item> {
    let found: Vec<&Service> = d
        .services
        .iter()
        .filter(|s| s.inventory.as_deref() == Some(spec.name()))
        .collect();
    let hazard = found.iter().any(|s| !s.hazards.is_empty());
    let starts = found.iter().map(|s| s.scripts.len()).max().unwrap_or(0);
    let scripts: Vec<String> = found.iter().flat_map(|s| s.scripts.clone()).collect();
    let command = found.iter().find_map(|s| s.command.clone());
    let base = |how: How, name: String| Item {
        name,
        host: spec.host.get_ref().clone(),
        kind: spec.kind,
        how,
        hazard,
        starts,
        command: command.clone(),
        scripts: scripts.clone(),
        why: format!("inventory service '{}'", spec.name()),
    };
    match spec.kind {
        ServiceKind::Systemd | ServiceKind::Timer => {
            let unit = spec.unit.clone().unwrap_or_else(|| spec.name().to_string());
            let seen = found.first();
            vec![base(
                How::Unit {
                    unit,
                    active: seen.is_none_or(|s| s.active),
                    enabled: seen.is_none_or(|s| s.enabled != Some(false)),
                },
                spec.name().to_string(),
            )]
        }
        ServiceKind::Cron => {
            let Some(file) = &spec.cron_file else {
                return Vec::new();
            };
            d.services
                .iter()
                .filter(|s| s.kind == ServiceKind::Cron)
                .filter_map(|s| {
                    let CronLine { file: f, line } = s.facts.cron_line.clone()?;
                    (&f == file).then(|| {
                        let mut it = base(How::Cron { file: f, line }, s.source.clone());
                        it.hazard = !s.hazards.is_empty() || hazard;
                        it.command = s.command.clone();
                        it
                    })
                })
                .collect()
        }
        ServiceKind::Container => vec![base(
            How::Container {
                tool: "docker".into(),
                name: spec
                    .container
                    .clone()
                    .unwrap_or_else(|| spec.name().to_string()),
            },
            spec.name().to_string(),
        )],
        // The processes discovery attributed to the service, by pid (a
        // pattern alone would hit every process it matches); a pidfile is
        // read again at stop time.
        ServiceKind::Process => {
            if found.iter().any(|s| s.target_unclear.is_some()) && spec.pidfile.is_none() {
                return Vec::new();
            }
            let running: Vec<&&Service> = found.iter().filter(|s| s.pid.is_some()).collect();
            if running.is_empty() || spec.pidfile.is_some() {
                return vec![base(
                    How::Process {
                        pidfile: spec.pidfile.clone(),
                        pattern: spec.match_.clone(),
                        pid: None,
                    },
                    spec.name().to_string(),
                )];
            }
            running
                .into_iter()
                .map(|s| {
                    let mut it = base(
                        How::Process {
                            pidfile: None,
                            pattern: spec.match_.clone(),
                            pid: s.pid,
                        },
                        s.name.clone(),
                    );
                    it.command = s.command.clone();
                    it.scripts = s.scripts.clone();
                    it
                })
                .collect()
        }
    }
}

/// Every job line of an inventory cron service's file (discovery lists
/// only the lines that matter to it; the file is the service).
async fn cron_file_items(
    a: &RealActions,
    spec: &ServiceSpec,
    d: &Discovery,
    out: &Output,
) -> Result<Vec<Item>, ActionError> {
    let host = spec.host.get_ref();
    let Some(file) = &spec.cron_file else {
        out.line(format!(
            "cron service '{}' names no cron_file: nothing to comment out; add cron_file to the inventory",
            spec.name()
        ));
        return Ok(Vec::new());
    };
    let h = transport(a, host)?;
    let r = read(h, &format!("cat {}", shell_quote(file))).await?;
    if !r.success() {
        out.line(format!(
            "cannot read '{file}' on {host}: {}",
            r.stderr_last_line().unwrap_or("no reason given")
        ));
        return Ok(Vec::new());
    }
    let system = !file.contains("/spool/");
    Ok(
        crate::probe::cron::parse_crontab(&r.stdout, file, system, None)
            .into_iter()
            .map(|e| {
                let source = format!("{file}:{}", e.line);
                let seen = d.services.iter().find(|x| x.source == source);
                Item {
                    name: source,
                    host: host.clone(),
                    kind: ServiceKind::Cron,
                    how: How::Cron {
                        file: file.clone(),
                        line: e.line,
                    },
                    hazard: seen.is_some_and(|x| !x.hazards.is_empty()),
                    starts: 0,
                    command: Some(e.command),
                    scripts: seen.map(|x| x.scripts.clone()).unwrap_or_default(),
                    why: format!("a job line of inventory cron service '{}'", spec.name()),
                }
            })
            .collect(),
    )
}

/// An item for a discovered writer, when it is running or scheduled.
fn discovered_item(host: &str, s: &Service) -> Option<Item> {
    // Outside the lab's sandbox during a drill: never an item to stop.
    if s.outside_drill.is_some() {
        return None;
    }
    let how = match s.kind {
        ServiceKind::Systemd | ServiceKind::Timer => {
            let enabled = s.enabled == Some(true);
            if !s.active && !enabled {
                return None;
            }
            How::Unit {
                unit: s.name.clone(),
                active: s.active,
                enabled,
            }
        }
        ServiceKind::Cron => {
            let CronLine { file, line } = s.facts.cron_line.clone()?;
            How::Cron { file, line }
        }
        ServiceKind::Container => {
            if !s.active {
                return None;
            }
            How::Container {
                tool: s
                    .facts
                    .container_tool
                    .clone()
                    .unwrap_or_else(|| "docker".into()),
                name: s.name.clone(),
            }
        }
        ServiceKind::Process => {
            if !s.active {
                return None;
            }
            How::Process {
                pidfile: None,
                pattern: None,
                pid: Some(s.pid?),
            }
        }
    };
    Some(Item {
        name: if s.kind == ServiceKind::Cron {
            s.source.clone()
        } else {
            s.name.clone()
        },
        host: host.to_string(),
        kind: s.kind,
        how,
        hazard: !s.hazards.is_empty(),
        starts: s.scripts.len(),
        command: s.command.clone(),
        scripts: s.scripts.clone(),
        why: String::new(),
    })
}

/// Why `s` counts as a writer of `db`: the evidence of its references.
fn evidence_for(s: &Service, db: &str) -> String {
    let ev: Vec<&str> = s
        .databases_reached
        .iter()
        .filter(|r| r.inventory.as_deref() == Some(db))
        .filter_map(|r| r.evidence.as_deref())
        .collect();
    if ev.is_empty() {
        format!("reaches '{db}'")
    } else {
        format!("writes to '{db}': {}", ev.join("; "))
    }
}

fn item_matches(i: &Item, sel: &str) -> bool {
    match sel.split_once(':') {
        Some(("pid", p)) => {
            matches!(i.how, How::Process { pid: Some(x), .. } if x.to_string() == p)
        }
        Some(("unit", u)) => matches!(&i.how, How::Unit { unit, .. } if unit == u),
        _ => i.name == sel,
    }
}

fn service_matches(s: &Service, sel: &str) -> bool {
    match sel.split_once(':') {
        Some(("pid", p)) => s.pid.is_some_and(|x| x.to_string() == p),
        Some(("unit", u)) => {
            matches!(s.kind, ServiceKind::Systemd | ServiceKind::Timer) && s.name == u
        }
        _ => s.name == sel || s.source == sel || s.inventory.as_deref() == Some(sel),
    }
}

/// The stop plan while it is built: the items, the inventory services
/// already in it, the cron services whose files are read whole, and what
/// to tell the operator (said after each phase, in order).
struct Planning {
    items: Vec<Item>,
    named: BTreeSet<String>,
    cron_specs: Vec<ServiceSpec>,
    said: Vec<String>,
}

impl Planning {
    fn say(&mut self, out: &Output) {
        for l in self.said.drain(..) {
            out.line(l);
        }
    }
    fn has(&self, it: &Item) -> bool {
        self.items
            .iter()
            .any(|x| x.host == it.host && x.name == it.name)
    }
}

/// Phase 1: discovery on every host involved; a host that cannot be seen
/// fails the step before anything is touched.
async fn discover_hosts(
    a: &RealActions,
    host_names: &[String],
    out: &Output,
) -> Result<BTreeMap<String, Discovery>, ActionError> {
    let mut disc = BTreeMap::new();
    for h in host_names {
        out.line(format!("discovery on '{h}'"));
        disc.insert(h.clone(), discover_on(a, h).await?);
    }
    Ok(disc)
}

/// Phase 2 (pure): the step's inventory services, then every discovered
/// writer of the database (an inventory service found writing to it joins
/// whole; a writer the inventory does not name joins by its own item).
fn plan_writers(
    inv: &Inventory,
    req: &StopRequest,
    disc: &BTreeMap<String, Discovery>,
) -> Planning {
    let mut p = Planning {
        items: Vec::new(),
        named: req.services.iter().map(|s| s.name().to_string()).collect(),
        cron_specs: Vec::new(),
        said: Vec::new(),
    };
    for s in &req.services {
        if let Some(d) = disc.get(s.host.get_ref()) {
            for u in d
                .services
                .iter()
                .filter(|x| x.inventory.as_deref() == Some(s.name()))
                .filter_map(|x| x.target_unclear.as_ref())
            {
                p.said.push(format!(
                    "'{}' on {}: target unclear, not stopped: {u}",
                    s.name(),
                    s.host.get_ref()
                ));
            }
            p.items.extend(spec_items(s, d));
            if s.kind == ServiceKind::Cron {
                p.cron_specs.push(s.clone());
            }
        }
    }
    let Some(db) = &req.database else {
        return p;
    };
    for (h, d) in disc {
        for s in d
            .services
            .iter()
            .filter(|s| reaches(s, db) && !is_db_server(s))
        {
            match &s.inventory {
                Some(n) if p.named.contains(n) => continue,
                Some(n) => {
                    if let Some(spec) = inv.service(n) {
                        p.named.insert(n.clone());
                        p.said
                            .push(format!("'{n}' writes to '{}' too: stopping it", db.name));
                        let why = format!("inventory service '{n}', {}", evidence_for(s, &db.name));
                        p.items
                            .extend(spec_items(spec, d).into_iter().map(|mut it| {
                                it.why = why.clone();
                                it
                            }));
                        if spec.kind == ServiceKind::Cron {
                            p.cron_specs.push(spec.clone());
                        }
                    }
                    continue;
                }
                None => {}
            }
            if let Some(mut it) = discovered_item(h, s)
                && !p.has(&it)
            {
                it.why = evidence_for(s, &db.name);
                p.said.push(format!(
                    "discovered writer of '{}' on {h}: {}{}",
                    db.name,
                    it.name,
                    if it.hazard { " (HAZARD)" } else { "" }
                ));
                p.items.push(it);
            }
        }
    }
    p
}

/// Phase 3 (reads the cron files): every job line of the inventory cron
/// services in the plan.
async fn plan_cron_files(
    a: &RealActions,
    p: &mut Planning,
    disc: &BTreeMap<String, Discovery>,
    out: &Output,
) -> Result<(), ActionError> {
    for spec in &p.cron_specs {
        if let Some(d) = disc.get(spec.host.get_ref()) {
            for it in cron_file_items(a, spec, d, out).await? {
                if !p
                    .items
                    .iter()
                    .any(|x| x.host == it.host && x.name == it.name)
                {
                    p.items.push(it);
                }
            }
        }
    }
    Ok(())
}

/// Phase 4 (pure): whatever starts the scripts of the writers again (a
/// second cron line, a watchdog timer), by discovery's `starter_of` facts,
/// joins them when a database is given.
fn plan_restarters(req: &StopRequest, disc: &BTreeMap<String, Discovery>, p: &mut Planning) {
    let Some(db) = &req.database else {
        return;
    };
    let scripts: BTreeSet<String> = p.items.iter().flat_map(|i| i.scripts.clone()).collect();
    for (h, d) in disc {
        for s in &d.services {
            let Some(of) = s
                .facts
                .starter_of
                .iter()
                .find(|o| scripts.contains(&o.script))
            else {
                continue;
            };
            if is_db_server(s) || writes_elsewhere(s, Some(db.name.as_str())) {
                continue;
            }
            if let Some(mut it) = discovered_item(h, s)
                && !p.has(&it)
                && !s.inventory.as_ref().is_some_and(|n| p.named.contains(n))
            {
                it.why = format!("starts a writer's script again ({})", of.location);
                p.said.push(format!(
                    "discovered on {h}: {} starts a writer's script again: stopping it too",
                    it.name
                ));
                p.items.push(it);
            }
        }
    }
}

/// Phase 5 (pure): a unit's own processes go with their unit (by
/// discovery's `started_by` fact); then the order: timers and cron first,
/// those that start the most scripts before the others.
fn plan_order(disc: &BTreeMap<String, Discovery>, items: &mut Vec<Item>) {
    let units: BTreeSet<String> = items
        .iter()
        .filter_map(|i| match &i.how {
            How::Unit { unit, .. } => Some(unit.clone()),
            _ => None,
        })
        .collect();
    items.retain(|i| {
        !(matches!(i.how, How::Process { pid: Some(_), .. })
            && disc.get(&i.host).is_some_and(|d| {
                d.services.iter().any(|s| {
                    s.name == i.name
                        && matches!(&s.facts.started_by,
                            Some(StartedBy::Unit { unit }) if units.contains(unit))
                })
            }))
    });
    items.sort_by_key(|i| (rank(i.kind), std::cmp::Reverse(i.starts)));
}

/// Applies the answers file's `[stop_plan]` (adds first, then removes: a
/// removal wins): removed items are left alone
/// (returned, for the plan's LEAVE lines); added ones are stopped with the
/// rest. A selector that matches nothing, or adds the database server
/// itself, fails the step before anything is frozen.
fn edit_plan(
    edits: &StopPlanEdits,
    by: &str,
    items: &mut Vec<Item>,
    disc: &BTreeMap<String, Discovery>,
) -> Result<Vec<Item>, ActionError> {
    for sel in &edits.add {
        let mut found = false;
        for (h, d) in disc {
            for s in d.services.iter().filter(|s| service_matches(s, sel)) {
                if is_db_server(s) {
                    return Err(ActionError::Failed(format!(
                        "[stop_plan] add '{sel}' ({by}) is the database server itself on {h}; not stopped, nothing was frozen or stopped"
                    )));
                }
                let planned = items.iter().any(|i| {
                    &i.host == h
                        && (i.name == s.name
                            || matches!(i.how, How::Process { pid: Some(p), .. } if s.pid == Some(p)))
                });
                if planned {
                    found = true;
                    continue;
                }
                if let Some(mut it) = discovered_item(h, s) {
                    it.why = format!("added by the {by} ([stop_plan] add '{sel}')");
                    items.push(it);
                    found = true;
                }
            }
        }
        if !found {
            return Err(ActionError::Failed(format!(
                "[stop_plan] add '{sel}' ({by}) matches nothing running on the hosts; nothing was frozen or stopped"
            )));
        }
    }
    let mut removed = Vec::new();
    for sel in &edits.remove {
        let (gone, keep): (Vec<Item>, Vec<Item>) = std::mem::take(items)
            .into_iter()
            .partition(|i| item_matches(i, sel));
        *items = keep;
        if gone.is_empty() {
            return Err(ActionError::Failed(format!(
                "[stop_plan] remove '{sel}' ({by}) matches nothing in the plan; nothing was frozen or stopped"
            )));
        }
        removed.extend(gone.into_iter().map(|mut it| {
            it.why = format!("removed from the plan by the {by} ([stop_plan] remove)");
            it
        }));
    }
    Ok(removed)
}

/// Is discovered service `s` of host `h` one of the plan's items (stopped or removed)?
fn in_plan(items: &[Item], removed: &[Item], h: &str, s: &Service) -> bool {
    items.iter().chain(removed).any(|i| {
        i.host == h
            && (i.name == s.name
                || i.name == s.source
                || s.inventory.as_deref() == Some(i.name.as_str())
                || matches!(i.how, How::Process { pid: Some(p), .. } if s.pid == Some(p)))
    })
}

/// Why a discovered service outside the plan is left alone, or None when
/// it is not writer-like enough to be listed.
fn leave_reason(s: &Service, db: Option<&str>) -> Option<String> {
    Some(if let Some(o) = &s.outside_drill {
        o.clone()
    } else if let Some(u) = &s.target_unclear {
        format!("target unclear: {u}")
    } else if is_db_server(s) {
        "the database server itself".to_string()
    } else if writes_elsewhere(s, db) {
        let mut other: Vec<&str> = s
            .databases_reached
            .iter()
            .filter_map(|r| r.inventory.as_deref())
            .collect();
        other.dedup();
        format!("writes to another database ('{}')", other.join("', '"))
    } else if s.databases_reached.iter().all(|r| r.inventory.is_none()) {
        if s.databases_reached.is_empty() {
            return None;
        }
        "reaches no inventory database".to_string()
    } else {
        return None;
    })
}

/// How an edit (`[stop_plan]`, the console's checklist) names a planned item.
fn item_selector(i: &Item) -> String {
    match &i.how {
        How::Process { pid: Some(p), .. } => format!("pid:{p}"),
        How::Unit { unit, .. } => format!("unit:{unit}"),
        _ => i.name.clone(),
    }
}

/// How an edit names a discovered service, so that `service_matches` finds it.
fn service_selector(s: &Service) -> String {
    match (s.pid, s.kind) {
        (Some(p), _) => format!("pid:{p}"),
        (None, ServiceKind::Systemd | ServiceKind::Timer) => format!("unit:{}", s.name),
        (None, ServiceKind::Cron) => s.source.clone(),
        _ => s.name.clone(),
    }
}

/// The plan as the operator reviews it: every item to stop and every
/// writer-like item left alone, each with why and how an edit names it.
fn proposal(
    step: &str,
    items: &[Item],
    removed: &[Item],
    disc: &BTreeMap<String, Discovery>,
    db: Option<&str>,
) -> review::StopPlanProposal {
    let mut out: Vec<review::ProposedItem> = items
        .iter()
        .map(|i| review::ProposedItem {
            stop: true,
            name: i.name.clone(),
            host: i.host.clone(),
            kind: i.kind,
            why: i.why.clone(),
            selector: Some(item_selector(i)),
            locked: None,
        })
        .collect();
    out.extend(removed.iter().map(|i| review::ProposedItem {
        stop: false,
        name: i.name.clone(),
        host: i.host.clone(),
        kind: i.kind,
        why: i.why.clone(),
        selector: Some(item_selector(i)),
        locked: None,
    }));
    for (h, d) in disc {
        for s in d.services.iter().filter(|s| !in_plan(items, removed, h, s)) {
            let Some(why) = leave_reason(s, db) else {
                continue;
            };
            let locked = if s.outside_drill.is_some() {
                Some("not part of this drill: never stopped".to_string())
            } else if is_db_server(s) {
                Some("the database server itself: never stopped".to_string())
            } else if discovered_item(h, s).is_none() {
                Some("nothing running or scheduled to stop".to_string())
            } else {
                None
            };
            out.push(review::ProposedItem {
                stop: false,
                name: s.name.clone(),
                host: h.clone(),
                kind: s.kind,
                why,
                selector: locked.is_none().then(|| service_selector(s)),
                locked,
            });
        }
    }
    review::StopPlanProposal {
        step: step.to_string(),
        database: db.map(str::to_string),
        items: out,
    }
}

/// Prints the plan before anything is frozen: every item to stop with why,
/// and every discovered writer-like item left alone with why.
fn print_plan(
    items: &[Item],
    removed: &[Item],
    disc: &BTreeMap<String, Discovery>,
    db: Option<&str>,
    out: &Output,
) -> Vec<PlanEntry> {
    let mut plan = Vec::new();
    out.line(format!("stop plan: {} item(s) to stop", items.len()));
    for it in items {
        out.line(format!("  STOP  {} on {}: {}", it.name, it.host, it.why));
        plan.push(PlanEntry {
            action: "stop".into(),
            name: it.name.clone(),
            host: it.host.clone(),
            why: it.why.clone(),
        });
    }
    for it in removed {
        out.line(format!("  LEAVE {} on {}: {}", it.name, it.host, it.why));
        plan.push(PlanEntry {
            action: "leave".into(),
            name: it.name.clone(),
            host: it.host.clone(),
            why: it.why.clone(),
        });
    }
    for (h, d) in disc {
        for s in d.services.iter().filter(|s| !in_plan(items, removed, h, s)) {
            let Some(why) = leave_reason(s, db) else {
                continue;
            };
            out.line(format!("  LEAVE {} on {h}: {why}", s.name));
            plan.push(PlanEntry {
                action: "leave".into(),
                name: s.name.clone(),
                host: h.clone(),
                why,
            });
        }
    }
    plan
}

/// One running process of a `How::Process`.
#[derive(Debug, Clone)]
struct Target {
    pid: u32,
    pgid: u32,
    args: String,
}

impl Target {
    /// `-PGID` when it leads its own group (its children go with it), else `PID`.
    fn kill_arg(&self) -> String {
        if self.pgid == self.pid {
            format!("-{}", self.pgid)
        } else {
            self.pid.to_string()
        }
    }
}

const PS_CMD: &str = "ps -eo pid=,pgid=,stat=,args=";

async fn read(h: &Host, cmd: &str) -> Result<crate::transport::ExecResult, ActionError> {
    h.exec(cmd, ExecOptions::default().timeout(Duration::from_secs(30)))
        .await
        .map_err(|e| ActionError::Failed(format!("on host '{}': {e}", h.name())))
}

/// The live processes an item names (never this process or its group,
/// never pid 1, never the shell asking).
async fn targets(h: &Host, how: &How) -> Result<Vec<Target>, ActionError> {
    let How::Process {
        pidfile,
        pattern,
        pid,
    } = how
    else {
        return Ok(Vec::new());
    };
    let ps = read(h, PS_CMD).await?;
    let (me, my_group) = if h.is_local() {
        let me = std::process::id();
        (Some(me), crate::transport::process_group(me))
    } else {
        (None, None)
    };
    let procs: Vec<Target> = ps
        .stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let pid: u32 = it.next()?.parse().ok()?;
            let pgid: u32 = it.next()?.parse().ok()?;
            let stat = it.next()?;
            let args = it.collect::<Vec<_>>().join(" ");
            (!stat.starts_with('Z') && !args.contains(PS_CMD)).then_some(Target { pid, pgid, args })
        })
        .filter(|t| t.pid > 1 && Some(t.pid) != me && Some(t.pgid) != my_group && t.pgid > 1)
        .collect();
    let re = match pattern {
        Some(p) => Some(regex::Regex::new(p).map_err(|e| {
            ActionError::Failed(format!(
                "the service's match pattern '{p}' is not a valid regular expression ({e}); fix it in the inventory"
            ))
        })?),
        None => None,
    };
    let wanted: Option<u32> = match (pidfile, pid) {
        (_, Some(p)) => Some(*p),
        (Some(f), None) => {
            let r = read(h, &format!("cat {}", shell_quote(f))).await?;
            match r.stdout.trim().parse::<u32>() {
                Ok(p) if r.success() => Some(p),
                _ => return Ok(Vec::new()),
            }
        }
        (None, None) => None,
    };
    Ok(procs
        .into_iter()
        .filter(|t| match (wanted, &re) {
            (Some(p), Some(re)) => t.pid == p && re.is_match(&t.args),
            (Some(p), None) => t.pid == p,
            (None, Some(re)) => re.is_match(&t.args),
            (None, None) => false,
        })
        .collect())
}

/// A command with the discovery PATH prefix (a `systemctl` stand-in in tests).
fn with_path(a: &RealActions, cmd: &str) -> String {
    match &a.probe.extra_path {
        Some(p) => format!("PATH={}:$PATH; export PATH; {cmd}", shell_quote(p)),
        None => cmd.to_string(),
    }
}

pub(super) async fn run_shown(
    a: &RealActions,
    h: &Host,
    cmd: &str,
    out: &Output,
) -> Result<crate::transport::ExecResult, ActionError> {
    if a.probe.extra_path.is_none() {
        return run(h, cmd, CMD_TIMEOUT, out).await;
    }
    out.line(format!("on {}: $ {cmd}", h.name()));
    let r = h
        .exec(
            &with_path(a, cmd),
            ExecOptions::default().timeout(CMD_TIMEOUT),
        )
        .await
        .map_err(|e| ActionError::Failed(format!("on host '{}': {e}", h.name())))?;
    for l in r.stdout.lines().chain(r.stderr.lines()) {
        if !l.trim().is_empty() {
            out.line(format!("  {l}"));
        }
    }
    out.line(format!("  -> {}", r.outcome()));
    Ok(r)
}

/// Stops one item (processes: the freeze came before). Returns the commands run.
async fn stop_item(a: &RealActions, it: &Item, out: &Output) -> Result<Vec<String>, ActionError> {
    let h = transport(a, &it.host)?;
    let mut cmds = Vec::new();
    match &it.how {
        How::Unit {
            unit,
            active,
            enabled,
        } => {
            for c in unit_commands(unit, *active, *enabled) {
                let r = run_shown(a, h, &c, out).await?;
                if !r.success() && c.starts_with("systemctl mask") {
                    out.line(format!(
                        "  mask failed (a unit file in /etc/systemd/system cannot be masked): '{unit}' stays stopped and disabled; the hold shows if something starts it"
                    ));
                }
                cmds.push(c);
            }
        }
        How::Container { tool, name } => {
            let c = format!("{tool} stop {}", shell_quote(name));
            run_shown(a, h, &c, out).await?;
            cmds.push(c);
        }
        How::Process { .. } => {
            let ts = targets(h, &it.how).await?;
            if ts.is_empty() {
                out.line(format!("'{}' on {}: not running", it.name, it.host));
            }
            for t in ts {
                out.line(format!("'{}': pid {} ({})", it.name, t.pid, t.args));
                let c = kill_command(&t.kill_arg());
                run_shown(a, h, &c, out).await?;
                cmds.push(c);
            }
        }
        How::Cron { .. } => {} // per file, in `stop_cron`
    }
    Ok(cmds)
}

fn still(it: &Item, detail: String) -> ActiveService {
    ActiveService {
        name: it.name.clone(),
        host: it.host.clone(),
        kind: it.kind,
        detail,
    }
}

/// Is `it` running (or scheduled) again? `d` is a fresh discovery of its host.
async fn is_back(
    a: &RealActions,
    it: &Item,
    d: &Discovery,
    db: Option<&str>,
) -> Result<Option<String>, ActionError> {
    // The same work for the same database: another database's copy of the
    // same script is not this item back.
    let same_work = |s: &Service| {
        ((it.command.is_some() && s.command == it.command)
            || s.scripts.iter().any(|x| it.scripts.first() == Some(x)))
            && !writes_elsewhere(s, db)
            && s.outside_drill.is_none()
    };
    Ok(match &it.how {
        How::Unit { unit, .. } => d
            .services
            .iter()
            .find(|s| (&s.name == unit || s.name == format!("{unit}.service")) && s.active)
            .map(|s| format!("{} is {} again", s.name, s.state)),
        How::Cron { .. } => d
            .services
            .iter()
            .find(|s| {
                s.kind == ServiceKind::Cron
                    && s.state != "not running"
                    && (s.source == it.name || same_work(s))
            })
            .map(|s| {
                format!(
                    "cron line back in {}: {}",
                    s.source,
                    s.command.as_deref().unwrap_or("")
                )
            }),
        How::Container { name, .. } => d
            .services
            .iter()
            .find(|s| s.kind == ServiceKind::Container && &s.name == name && s.active)
            .map(|s| format!("container {} is {}", s.name, s.state)),
        How::Process { pid: Some(_), .. } => d
            .services
            .iter()
            .find(|s| s.kind == ServiceKind::Process && s.active && same_work(s))
            .map(|s| {
                format!(
                    "running again as pid {}: {}",
                    s.pid.unwrap_or(0),
                    s.command.as_deref().unwrap_or("")
                )
            }),
        How::Process { .. } => {
            let h = transport(a, &it.host)?;
            targets(h, &it.how)
                .await?
                .first()
                .map(|t| format!("running again as pid {}: {}", t.pid, t.args))
        }
    })
}

/// Stops every item, in order: timers and cron, then units and processes
/// (those that start others first), then containers.
async fn stop_all(
    a: &RealActions,
    items: &[Item],
    stamp: &str,
    out: &Output,
) -> Result<Vec<StoppedService>, ActionError> {
    let mut stopped: Vec<StoppedService> = Vec::new();
    let mut cron_files: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for it in items {
        if let How::Cron { file, line } = &it.how {
            cron_files
                .entry((it.host.clone(), file.clone()))
                .or_default()
                .push(*line);
        }
    }
    let mut cron_cmd: BTreeMap<(String, String), (String, Option<KeptCopy>)> = BTreeMap::new();
    for ((host, file), lines) in &mut cron_files {
        lines.sort_unstable();
        lines.dedup();
        let h = transport(a, host)?;
        let c = cron_stop_command(file, lines, stamp, &a.probe.kept_dir);
        let r = run_shown(a, h, &c, out).await?;
        let kept = parse_kept(&r.stdout);
        if !r.success() || kept.is_none() {
            out.line(format!(
                "could not comment out the lines of '{file}' on {host} ({}); the hold will show them",
                r.stderr_last_line().unwrap_or("no kept copy reported")
            ));
        }
        cron_cmd.insert(
            (host.clone(), file.clone()),
            (c, kept.filter(|_| r.success())),
        );
    }
    for it in items {
        let (commands, kept) = match &it.how {
            How::Cron { file, .. } => match cron_cmd.get(&(it.host.clone(), file.clone())) {
                Some((c, Some(k))) => (vec![c.clone()], Some(k.clone())),
                _ => continue,
            },
            _ => (stop_item(a, it, out).await?, None),
        };
        // An inventory process that was not running is listed (the hold
        // watches it) with no command; start-services leaves it off.
        let declared_process = matches!(it.how, How::Process { pid: None, .. });
        if commands.is_empty() && !declared_process {
            continue;
        }
        if commands.is_empty() {
            out.line(format!(
                "'{}' on {} was not running: nothing to end; the hold watches it",
                it.name, it.host
            ));
        }
        stopped.push(StoppedService {
            name: it.name.clone(),
            host: it.host.clone(),
            kind: it.kind,
            commands,
            original_kept: kept.as_ref().map(|k| k.path.clone()),
            kept_inode: kept.as_ref().map(|k| k.inode),
            kept_sha256: kept.map(|k| k.sha256),
            hazard: it.hazard,
            cron_line: match &it.how {
                How::Cron { file, line } => Some(CronLine {
                    file: file.clone(),
                    line: *line,
                }),
                _ => None,
            },
        });
    }

    Ok(stopped)
}

/// Continues the processes a stop froze when the stop is dropped before it
/// ended them (its future cancelled by a timeout); cleared once they are
/// ended or `unfreeze_after` has taken over.
struct FreezeGuard {
    a: RealActions,
    frozen: BTreeMap<String, Vec<String>>,
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        if self.frozen.is_empty() {
            return;
        }
        let frozen = std::mem::take(&mut self.frozen);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("stop-services ended early; processes left frozen: {frozen:?}");
            return;
        };
        let a = self.a.clone();
        rt.spawn(async move {
            let e = ActionError::Failed(
                "stop-services ended before the frozen processes were ended".into(),
            );
            let e = unfreeze_after(&a, &frozen, e, &Output::discard()).await;
            tracing::warn!("{e}");
        });
    }
}

/// After a failed stop: sends CONT to every process this step froze (a
/// lost connection is opened again for it) and says which were continued
/// and which are still frozen, in the error the journal records.
async fn unfreeze_after(
    a: &RealActions,
    frozen: &BTreeMap<String, Vec<String>>,
    e: ActionError,
    out: &Output,
) -> ActionError {
    if frozen.is_empty() {
        return e;
    }
    let mut said = Vec::new();
    for (host, args) in frozen {
        let list = args.join(" ");
        let cmd = format!("kill -s CONT -- {list}");
        let mut r = Err(String::new());
        // The connection may be coming back: try for a while before giving up.
        for attempt in 0..CONT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(POLL).await;
            }
            r = match transport(a, host) {
                Ok(h) => match h
                    .exec(
                        &cmd,
                        ExecOptions::default().timeout(Duration::from_secs(15)),
                    )
                    .await
                {
                    Ok(x) if x.success() => Ok(()),
                    // The command ran: retrying will not change its answer.
                    Ok(x) => {
                        r = Err(x.stderr_last_line().unwrap_or("kill failed").to_string());
                        break;
                    }
                    Err(x) => Err(x.to_string()),
                },
                Err(x) => Err(x.to_string()),
            };
            if r.is_ok() {
                break;
            }
        }
        if r.is_ok()
            && let Err(e) = out
                .journal(super::frozen::resolved_entry(host, args, "continued"))
                .await
        {
            out.line(format!(
                "could not journal that the frozen pids on {host} were continued: {e}"
            ));
        }
        let line = match r {
            Ok(()) => format!("frozen processes continued on {host}: {list}"),
            Err(why) => format!(
                "STILL FROZEN on {host}: {list} (could not continue them: {why}); run '{cmd}' on {host}"
            ),
        };
        out.line(&line);
        said.push(line);
    }
    ActionError::Failed(format!("{e}; {}", said.join("; ")))
}

/// stop-services, in named phases: plan (from discovery's facts), freeze,
/// stop, hold, writes during the hold.
pub async fn stop_services(
    a: &RealActions,
    req: &StopRequest,
    out: &Output,
) -> Result<StopOutcome, ActionError> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let host_names = stop_hosts(req);
    // 1. Look before touching anything, and say the plan.
    let (mut items, plan) = make_plan(a, req, &host_names, out).await?;
    let mut watch = match &req.database {
        Some(db) => DbWatch::open(a, db, &host_names, out).await?,
        None => None,
    };
    // 2. Freeze every process first, so no restarter among them can act
    //    while the others are being stopped.
    let (frozen, mut guard) = freeze(a, &mut items, out).await?;
    // 3. Stop. If that fails part way, the frozen processes are not left
    //    frozen: they are continued, or reported as still frozen.
    let stopped = match stop_all(a, &items, &stamp, out).await {
        Ok(v) => v,
        Err(e) => {
            guard.frozen.clear();
            return Err(unfreeze_after(a, &frozen, e, out).await);
        }
    };
    // Every frozen process got TERM (with CONT) or KILL.
    guard.frozen.clear();
    journal_frozen_ended(&frozen, out).await;
    // 4. Hold: probe again every few seconds; what comes back is stopped
    //    again (to limit the damage) and fails the hold all the same.
    if let Some(w) = &mut watch
        && !w.rebase(out).await
    {
        watch = None;
    }
    let held = hold(a, req, &host_names, &items, watch.as_ref(), out).await?;
    // 5. What was written during the hold.
    let table_writes = writes_during_hold(watch.as_ref(), out).await;
    Ok(StopOutcome {
        plan,
        stopped,
        held_s: req.hold_s,
        still_active: held.still_active,
        write_sessions: held.sessions.into_values().collect(),
        table_writes,
    })
}

/// The hosts a stop looks at: the step's, and those of its services.
fn stop_hosts(req: &StopRequest) -> Vec<String> {
    let mut host_names: Vec<String> = req.hosts.iter().map(|h| h.name.clone()).collect();
    for s in &req.services {
        host_names.push(s.host.get_ref().clone());
    }
    host_names.sort();
    host_names.dedup();
    host_names
}

/// Phase 1: discovery, the plan from its typed facts (never from the
/// sentences it renders for people), the answers file's edits, and the
/// plan said (STOP and LEAVE lines) before anything is touched.
async fn make_plan(
    a: &RealActions,
    req: &StopRequest,
    host_names: &[String],
    out: &Output,
) -> Result<(Vec<Item>, Vec<PlanEntry>), ActionError> {
    let disc = discover_hosts(a, host_names, out).await?;
    let mut p = plan_writers(a.inventory(), req, &disc);
    p.say(out);
    plan_cron_files(a, &mut p, &disc, out).await?;
    plan_restarters(req, &disc, &mut p);
    p.say(out);
    let Planning { mut items, .. } = p;
    plan_order(&disc, &mut items);
    let mut removed = edit_plan(&a.stop_plan, "answers file", &mut items, &disc)?;
    if let Some(r) = &a.plan_review {
        // The console's checklist: the operator sees this plan and edits it
        // (same selectors as the answers file) before anything is frozen.
        let db = req.database.as_ref().map(|d| d.name.as_str());
        out.line("stop plan: waiting for the operator's review");
        match r
            .ask(proposal(out.step(), &items, &removed, &disc, db))
            .await
        {
            review::Review::Go(edits) => {
                removed.extend(edit_plan(&edits, review::BY_CONSOLE, &mut items, &disc)?);
            }
            review::Review::Cancel(why) => {
                return Err(ActionError::Failed(format!(
                    "the stop plan was not confirmed ({why}); nothing was frozen or stopped"
                )));
            }
        }
    }
    let plan = print_plan(
        &items,
        &removed,
        &disc,
        req.database.as_ref().map(|d| d.name.as_str()),
        out,
    );
    Ok((items, plan))
}

/// Phase 2: the process groups of every process item, journaled (fsynced)
/// per host before `kill -s STOP`; a discovered process an inventory
/// service already names is dropped as that service. The guard continues
/// them should the stop be dropped before they are ended.
async fn freeze(
    a: &RealActions,
    items: &mut Vec<Item>,
    out: &Output,
) -> Result<(BTreeMap<String, Vec<String>>, FreezeGuard), ActionError> {
    let mut declared: BTreeSet<(String, u32)> = BTreeSet::new();
    for it in items
        .iter()
        .filter(|i| matches!(i.how, How::Process { pid: None, .. }))
    {
        let h = transport(a, &it.host)?;
        for t in targets(h, &it.how).await? {
            declared.insert((it.host.clone(), t.pid));
        }
    }
    // A discovered process an inventory service already names is that service.
    items.retain(|i| match i.how {
        How::Process { pid: Some(p), .. } => !declared.contains(&(i.host.clone(), p)),
        _ => true,
    });
    let mut frozen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for it in items
        .iter()
        .filter(|i| matches!(i.how, How::Process { .. }))
    {
        let h = transport(a, &it.host)?;
        for t in targets(h, &it.how).await? {
            let arg = t.kill_arg();
            let v = frozen.entry(it.host.clone()).or_default();
            if !v.contains(&arg) {
                v.push(arg);
            }
        }
    }
    for (host, args) in &frozen {
        // Said and journaled (fsynced) before it is done: these are the pids
        // to continue if the step or the connection ends early. No line, no freeze.
        out.line(format!("freezing on {host}: {}", args.join(" ")));
        out.journal(super::frozen::frozen_entry(host, args))
            .await
            .map_err(|e| {
                ActionError::Failed(format!(
                    "could not journal the pids to freeze on {host} ({e}); nothing was frozen or stopped"
                ))
            })?;
    }
    // Should this future be dropped (the step's timeout, a cancelled run)
    // before the stop is through, the guard continues the frozen processes.
    let mut guard = FreezeGuard {
        a: a.clone(),
        frozen: frozen.clone(),
    };
    for (host, args) in &frozen {
        let froze = match transport(a, host) {
            Ok(h) => run(
                h,
                &format!("kill -s STOP -- {}", args.join(" ")),
                CMD_TIMEOUT,
                out,
            )
            .await
            .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = froze {
            guard.frozen.clear();
            return Err(unfreeze_after(a, &frozen, e, out).await);
        }
    }
    Ok((frozen, guard))
}

/// After phase 3: the journal says the frozen pids were ended.
async fn journal_frozen_ended(frozen: &BTreeMap<String, Vec<String>>, out: &Output) {
    for (host, args) in frozen {
        if let Err(e) = out
            .journal(super::frozen::resolved_entry(host, args, "ended"))
            .await
        {
            out.line(format!(
                "could not journal that the frozen pids on {host} were ended: {e}"
            ));
        }
    }
}

/// What the hold saw: services back or never stopped, write sessions.
struct Held {
    still_active: Vec<ActiveService>,
    sessions: BTreeMap<i32, WriteSession>,
}

/// Phase 4: rounds of discovery (and of the database's write sessions)
/// until `req.hold_s` is over.
async fn hold(
    a: &RealActions,
    req: &StopRequest,
    host_names: &[String],
    items: &[Item],
    watch: Option<&DbWatch>,
    out: &Output,
) -> Result<Held, ActionError> {
    out.line(format!("holding {} s", req.hold_s));
    let t0 = Instant::now();
    let hold = Duration::from_secs(req.hold_s);
    let mut held = Held {
        still_active: Vec::new(),
        sessions: BTreeMap::new(),
    };
    loop {
        let at = t0.elapsed().as_secs();
        for h in host_names {
            hold_round_host(a, req, h, items, at, &mut held.still_active, out).await?;
        }
        if let Some(w) = watch {
            hold_round_sessions(a, w, at, &mut held.sessions, out).await;
        }
        let left = hold.saturating_sub(t0.elapsed());
        if left.is_zero() {
            break;
        }
        out.countdown(
            t0.elapsed().as_secs(),
            req.hold_s,
            format!("hold: {} s left of {} s", left.as_secs(), req.hold_s),
        );
        tokio::time::sleep(left.min(POLL)).await;
    }
    Ok(held)
}

/// One hold round on host `h`: an item back is stopped again (a process)
/// and recorded; a writer of the database the step did not stop is recorded.
async fn hold_round_host(
    a: &RealActions,
    req: &StopRequest,
    h: &String,
    items: &[Item],
    at: u64,
    still_active: &mut Vec<ActiveService>,
    out: &Output,
) -> Result<(), ActionError> {
    let d = match discover_on(a, h).await {
        Ok(d) => d,
        Err(e) => {
            still_active.push(ActiveService {
                name: format!("host {h}"),
                host: h.clone(),
                kind: ServiceKind::Process,
                detail: format!("could not be probed during the hold: {e}"),
            });
            return Ok(());
        }
    };
    for it in items.iter().filter(|i| &i.host == h) {
        let db = req.database.as_ref().map(|d| d.name.as_str());
        if let Some(why) = is_back(a, it, &d, db).await? {
            out.line(format!("+{at} s: '{}' on {h} is BACK: {why}", it.name));
            if !still_active
                .iter()
                .any(|s| s.name == it.name && &s.host == h)
            {
                still_active.push(still(
                    it,
                    format!("{why} (+{at} s); something restarts it: find it and stop it too"),
                ));
            }
            if matches!(it.how, How::Process { .. }) {
                stop_item(a, it, out).await?;
            }
        }
    }
    let Some(db) = &req.database else {
        return Ok(());
    };
    for s in d
        .services
        .iter()
        .filter(|s| reaches(s, db) && !is_db_server(s))
    {
        // A cron line is live while it is in a file; an inventory
        // service discovery did not find is "not running".
        let running = match s.kind {
            ServiceKind::Cron => s.state != "not running",
            _ => s.active,
        };
        let known = items.iter().any(|i| {
            &i.host == h
                && (i.name == s.name
                    || i.name == s.source
                    || s.inventory.as_deref() == Some(i.name.as_str()))
        });
        if running
            && !known
            && !still_active
                .iter()
                .any(|x| x.name == s.name && &x.host == h)
        {
            out.line(format!(
                "+{at} s: '{}' on {h} writes to '{}' and runs: {}",
                s.name, db.name, s.state
            ));
            still_active.push(ActiveService {
                name: s.name.clone(),
                host: h.clone(),
                kind: s.kind,
                detail: format!("{} (+{at} s), not stopped by this step", s.state),
            });
        }
    }
    Ok(())
}

/// One hold round of the database's write sessions (each said once).
async fn hold_round_sessions(
    a: &RealActions,
    w: &DbWatch,
    at: u64,
    sessions: &mut BTreeMap<i32, WriteSession>,
    out: &Output,
) {
    match w.writers(&a.redactor).await {
        Ok(v) => {
            for s in v {
                if !sessions.contains_key(&s.pid) {
                    out.line(format!(
                        "+{at} s: write session pid {} from {} ({}): {}",
                        s.pid,
                        s.client_addr.as_deref().unwrap_or("local socket"),
                        s.application_name.as_deref().unwrap_or(""),
                        s.query.as_deref().unwrap_or("")
                    ));
                }
                sessions.insert(s.pid, s);
            }
        }
        Err(e) => out.line(format!("+{at} s: sessions not readable: {e}")),
    }
}

/// Phase 5: the row writes per table during the hold (non-zero only).
async fn writes_during_hold(watch: Option<&DbWatch>, out: &Output) -> BTreeMap<String, i64> {
    let mut table_writes = BTreeMap::new();
    if let Some(w) = watch {
        match w.table_writes().await {
            Ok(t) => table_writes = t,
            Err(e) => out.line(format!(
                "write counters not readable at the end of the hold: {e}"
            )),
        }
    }
    for (t, n) in table_writes.iter().filter(|(_, n)| **n != 0) {
        out.line(format!("{n} row write(s) to '{t}' during the hold"));
    }
    table_writes.into_iter().filter(|(_, n)| *n != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host's discovery with one of each seam the stop plan reads: a cron
    /// writer, a timer that starts its script again, a writer unit and its
    /// process, the database server's container, a podman compose container.
    fn seam_discovery() -> (Inventory, StopRequest, BTreeMap<String, Discovery>) {
        use crate::probe::{DbRef, DbRole, Hazard, HazardKind, ServiceFacts, StarterOf};
        let inv = Inventory::parse(
            "[[host]]\nname = \"h\"\ntransport = \"local\"\n[[database]]\nname = \"main\"\nurl = \"postgres://a@db/x\"\n",
            "inv.toml",
        )
        .unwrap();
        let spec = inv.database("main").unwrap().clone();
        let req = StopRequest {
            database: Some(DbTarget {
                name: "main".into(),
                url: spec.pg_url().unwrap().clone(),
                spec,
            }),
            hosts: Vec::new(),
            services: Vec::new(),
            hold_s: 0,
        };
        let main = || {
            let mut r = DbRef::new(DbRole::Query);
            r.inventory = Some("main".into());
            r.evidence = Some("/opt/sync.sh:4".into());
            r
        };
        let redundant = |loc: &str| Hazard {
            kind: HazardKind::RedundantStart,
            evidence: "x".into(),
            location: loc.into(),
            detail: "'/opt/sync.sh' is started by 2 mechanisms: cron; timer; stop them all".into(),
        };
        let mut cron = Service::new(
            "cron.d/sync:3".into(),
            ServiceKind::Cron,
            "/etc/cron.d/sync:3".into(),
        );
        cron.active = true;
        cron.scripts = vec!["/opt/sync.sh".into()];
        cron.databases_reached = vec![main()];
        cron.hazards = vec![redundant("/etc/cron.d/sync:3")];
        cron.facts.cron_line = Some(CronLine {
            file: "/etc/cron.d/sync".into(),
            line: 3,
        });
        let mut timer = Service::new(
            "sync-watch.timer".into(),
            ServiceKind::Timer,
            "/etc/systemd/system/sync-watch.timer".into(),
        );
        timer.active = true;
        timer.enabled = Some(true);
        timer.hazards = vec![redundant("/etc/systemd/system/sync-watch.timer")];
        timer.facts.starter_of = vec![StarterOf {
            script: "/opt/sync.sh".into(),
            location: "/etc/systemd/system/sync-watch.timer".into(),
        }];
        let mut unit = Service::new(
            "worker.service".into(),
            ServiceKind::Systemd,
            "/etc/systemd/system/worker.service".into(),
        );
        unit.active = true;
        unit.enabled = Some(true);
        unit.databases_reached = vec![main()];
        let mut proc_ = Service::new(
            "worker.sh (pid 42)".into(),
            ServiceKind::Process,
            "ps pid 42".into(),
        );
        proc_.active = true;
        proc_.pid = Some(42);
        proc_.databases_reached = vec![main()];
        proc_.facts.started_by = Some(StartedBy::Unit {
            unit: "worker.service".into(),
        });
        proc_.notes = vec![proc_.facts.started_by.as_ref().unwrap().to_string()];
        let mut pg = Service::new(
            "pg".into(),
            ServiceKind::Container,
            "docker container 0123456789ab".into(),
        );
        pg.active = true;
        pg.command = Some("docker-entrypoint.sh -c fsync=on".into());
        pg.databases_reached = vec![main()];
        pg.notes = vec!["PostgreSQL server (database 'x'); its data lives in: /var/lib/pg".into()];
        pg.facts = ServiceFacts {
            db_server: true,
            container_tool: Some("docker".into()),
            ..ServiceFacts::default()
        };
        let mut app = Service::new(
            "app".into(),
            ServiceKind::Container,
            "/srv/app/compose.yml".into(),
        );
        app.active = true;
        app.databases_reached = vec![main()];
        app.facts.container_tool = Some("podman".into());
        let d = Discovery {
            hostname: Some("h".into()),
            services: vec![cron, timer, unit, proc_, pg, app],
            notes: Vec::new(),
            unreadable: Vec::new(),
        };
        (inv, req, BTreeMap::from([("h".to_string(), d)]))
    }

    /// Phases 2, 4 and 5 of the stop plan (no cron file to read here).
    fn seam_plan(
        inv: &Inventory,
        req: &StopRequest,
        disc: &BTreeMap<String, Discovery>,
    ) -> Vec<String> {
        let mut p = plan_writers(inv, req, disc);
        plan_restarters(req, disc, &mut p);
        let mut items = p.items;
        plan_order(disc, &mut items);
        items
            .iter()
            .map(|i| format!("{} on {} {:?}: {}", i.name, i.host, i.how, i.why))
            .collect()
    }

    #[test]
    fn start_finds_a_stopped_cron_line_by_its_record_not_its_name() {
        let s = StoppedService {
            name: "the sync job, as a person calls it".into(),
            host: "h".into(),
            kind: ServiceKind::Cron,
            commands: vec!["(the stop command)".into()],
            original_kept: Some(
                "/var/lib/lifeline/kept/cron-sync.lifeline-20261206T001500Z.Ab3dEf9h1K".into(),
            ),
            kept_inode: Some(12),
            kept_sha256: Some("0".repeat(64)),
            hazard: false,
            cron_line: Some(CronLine {
                file: "/etc/cron.d/sync".into(),
                line: 3,
            }),
        };
        let c = start_commands(&s);
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            c[0].contains("3s/^# lifeline-off 20261206T001500Z: //"),
            "{c:?}"
        );
        assert!(c[0].ends_with("/etc/cron.d/sync"), "{c:?}");
        // A record journaled before the typed line existed: its name was `file:line`.
        let old = StoppedService {
            name: "/etc/cron.d/sync:3".into(),
            cron_line: None,
            ..s.clone()
        };
        assert_eq!(start_commands(&old), c);
    }

    #[test]
    fn the_stop_plan_is_computed_from_facts_never_from_sentences() {
        let (inv, req, disc) = seam_discovery();
        let plan = seam_plan(&inv, &req, &disc);
        let names: Vec<&str> = plan
            .iter()
            .map(|l| l.split(" on ").next().unwrap())
            .collect();
        // The timer restarts the cron writer's script: stopped too. The
        // unit's process goes with its unit. The server is never stopped.
        assert_eq!(
            names,
            [
                "sync-watch.timer",
                "/etc/cron.d/sync:3",
                "worker.service",
                "app"
            ],
            "{plan:#?}"
        );
        assert!(
            plan[0]
                .ends_with("starts a writer's script again (/etc/systemd/system/sync-watch.timer)"),
            "{plan:#?}"
        );
        assert!(
            plan[1].contains("Cron { file: \"/etc/cron.d/sync\", line: 3 }"),
            "{plan:#?}"
        );
        assert!(plan[3].contains("tool: \"podman\""), "{plan:#?}");

        // Reword every sentence discovery rendered for people (notes, hazard
        // details, sources): the plan stays the same, item for item.
        let mut reworded = disc.clone();
        for d in reworded.values_mut() {
            for s in &mut d.services {
                for n in &mut s.notes {
                    *n = format!("reworded: {}", n.to_uppercase());
                }
                for h in &mut s.hazards {
                    h.detail = "said another way".into();
                }
                if s.kind == ServiceKind::Container {
                    s.source = "somewhere else".into();
                }
            }
        }
        assert_eq!(seam_plan(&inv, &req, &reworded), plan);

        // And the facts alone decide: without them the plan changes.
        let mut no_facts = disc.clone();
        for d in no_facts.values_mut() {
            for s in &mut d.services {
                s.facts.starter_of.clear();
                s.facts.started_by = None;
                s.facts.db_server = false;
            }
        }
        let other = seam_plan(&inv, &req, &no_facts);
        assert!(
            !other.iter().any(|l| l.starts_with("sync-watch.timer")),
            "{other:#?}"
        );
        assert!(
            other.iter().any(|l| l.starts_with("worker.sh (pid 42)")),
            "{other:#?}"
        );
        assert!(other.iter().any(|l| l.starts_with("pg on")), "{other:#?}");
    }

    #[test]
    fn kept_copies_have_safe_names_and_their_stamp() {
        assert_eq!(
            kept_name("/etc/cron.d/db_realtime_sync"),
            "cron-db_realtime_sync"
        );
        assert_eq!(kept_name("crontab -l -u a b;$(x)"), "crontab-a_b___x_");
        assert_eq!(
            stamp_of("/var/lib/lifeline/kept/cron-x.lifeline-20261206T001500Z.Ab3dEf9h1K"),
            "20261206T001500Z"
        );
        let sha = "a".repeat(64);
        assert_eq!(
            parse_kept(&format!(
                "noise\nkept /k/cron-x.lifeline-S.abc 4242 {sha}\n"
            )),
            Some(KeptCopy {
                path: "/k/cron-x.lifeline-S.abc".into(),
                inode: 4242,
                sha256: sha
            })
        );
        assert_eq!(parse_kept("kept /k/x 12 not-a-hash"), None);
    }

    #[test]
    fn cron_commands_comment_and_restore_by_line() {
        let c = cron_stop_command("/e/cron.d/x", &[2, 5], "S", "/k");
        assert!(c.starts_with("umask 077; d=/k; mkdir -p -m 0700"), "{c}");
        assert!(
            c.contains("k=$(mktemp -- \"$d\"/cron-x.lifeline-S.XXXXXXXXXX)"),
            "{c}"
        );
        assert!(
            c.ends_with(
                "sed -i -e '2s/^/# lifeline-off S: /' -e '5s/^/# lifeline-off S: /' /e/cron.d/x"
            ),
            "{c}"
        );
        let u = cron_stop_command("crontab -l -u app", &[1], "S", "/k");
        assert!(u.contains("crontab -l -u app > \"$k\" || exit 3;"), "{u}");
        assert!(
            u.ends_with("sed -e '1s/^/# lifeline-off S: /' \"$k\" | crontab -u app -"),
            "{u}"
        );
        assert!(!u.contains("/var/tmp"), "{u}");
        let s = cron_start_command("/e/cron.d/x", &[2], "S", None);
        assert_eq!(s, "sed -i -e '2s/^# lifeline-off S: //' /e/cron.d/x");
    }

    #[test]
    fn unit_start_reverses_what_was_done() {
        let s = StoppedService {
            name: "u.service".into(),
            host: "h".into(),
            kind: ServiceKind::Systemd,
            commands: unit_commands("u.service", true, false),
            original_kept: None,
            kept_inode: None,
            kept_sha256: None,
            hazard: false,
            cron_line: None,
        };
        assert_eq!(
            s.commands,
            ["systemctl stop u.service", "systemctl mask u.service"]
        );
        assert_eq!(
            start_commands(&s),
            ["systemctl unmask u.service", "systemctl start u.service"]
        );
    }
}
