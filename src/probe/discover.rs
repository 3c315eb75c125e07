//! Discovery on one host: a few framed, read-only shell rounds (list, show
//! and inspect, read scripts), parsed into typed services with the
//! databases they reach and their hazards. It never starts, stops or
//! edits anything it finds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::container::{self, Container};
use super::cron::{self, CronEntry};
use super::dbref::DbRef;
use super::exec::{Runner, Section, nonce, prelude, sections};
use super::process::{self, Proc};
use super::scan::{self, Facts, Hazard, HazardKind, ScanCtx, push_hazard, push_ref};
use super::shell::{Vars, basename};
use super::systemd::{self, UnitProps};
use crate::inventory::{ServiceKind, ServiceSpec};
use crate::transport::shell_quote;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("host '{host}': {why}")]
    Transport { host: String, why: String },
    #[error(
        "host '{host}': discovery timed out after {secs} s; raise command_timeout_s for this host if it is slow"
    )]
    TimedOut { host: String, secs: u64 },
}

/// How discovery runs (defaults suit real hosts; tests point them elsewhere).
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Directory holding `crontab`, `cron.d/`, `cron.daily/`... (default `/etc`).
    pub cron_root: String,
    /// Prepended to PATH on the host (tests put a `systemctl` stand-in there).
    pub extra_path: Option<String>,
    /// Read user crontabs with `crontab -l -u USER`.
    pub user_crontabs: bool,
    /// Limit of each round trip.
    pub timeout: Duration,
    /// How many levels of scripts started by scripts to read.
    pub script_depth: usize,
    /// Where stop-services keeps originals (cron files, crontabs) on hosts.
    pub kept_dir: String,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            cron_root: "/etc".into(),
            extra_path: None,
            user_crontabs: true,
            timeout: Duration::from_secs(30),
            script_depth: 2,
            kept_dir: "/var/lib/lifeline/kept".into(),
        }
    }
}

/// Something on the host that runs, or will run, a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub kind: ServiceKind,
    pub active: bool,
    /// systemd sub-state, container status, `running`, `scheduled`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    /// The command it runs (ExecStart, cron command, process arguments, container command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Where it is defined: `file:line`, a unit file, `ps pid N`.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub mounts: Vec<String>,
    /// Scripts it runs (read over the transport and scanned).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scripts: Vec<String>,
    pub databases_reached: Vec<DbRef>,
    pub hazards: Vec<Hazard>,
    /// Declared by an inventory `[[service]]` entry (with that entry's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
    /// Set when it matches an inventory service but no evidence says which
    /// database it writes to: never stopped unless the operator picks it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_unclear: Option<String>,
    /// Inside a lab drill: a process outside the lab's sandbox (not in its
    /// pidfiles, nothing under its directory): listed, never stopped, never
    /// "back".
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outside_drill: Option<String>,
    /// What stop-services and start-services act on, as data. The notes and
    /// hazard details above are rendered from these for people; nothing
    /// parses a sentence back.
    #[serde(skip_serializing_if = "ServiceFacts::is_empty", default)]
    pub facts: ServiceFacts,
}

/// Typed facts about one discovered service (its kind, pid and name are on
/// [`Service`]): what started it, what it starts again, where it is defined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFacts {
    /// The PostgreSQL server itself (a container serving a database): never stopped.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub db_server: bool,
    /// A process: the mechanism that started it (its unit, cron, a parent).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started_by: Option<StartedBy>,
    /// Scripts it starts that another mechanism starts too: it is a
    /// restarter of each (stopping one starter leaves the others).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub starter_of: Vec<StarterOf>,
    /// A cron job line: the file (or `crontab -l -u USER`) and its line.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cron_line: Option<CronLine>,
    /// A container: the tool that runs it (`docker`, `podman`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container_tool: Option<String>,
}

impl ServiceFacts {
    pub fn is_empty(&self) -> bool {
        self == &ServiceFacts::default()
    }
}

/// What started a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum StartedBy {
    /// A process of this systemd unit (its main pid or a descendant).
    Unit {
        unit: String,
    },
    Cron,
    /// Another listed process running the same script.
    Pid {
        pid: u32,
    },
}

impl std::fmt::Display for StartedBy {
    /// The note a person reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartedBy::Unit { unit } => write!(f, "started by systemd unit {unit}"),
            StartedBy::Cron => f.write_str("started by cron"),
            StartedBy::Pid { pid } => write!(f, "started by pid {pid}"),
        }
    }
}

/// A script this service starts that other mechanisms start too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StarterOf {
    pub script: String,
    /// Where this service starts it (`file:line`, a unit file, `ps pid N`).
    pub location: String,
}

/// One cron job line (the engine's type: a stop records it as it is).
pub use crate::engine::types::CronLine;

impl Service {
    pub(crate) fn new(name: String, kind: ServiceKind, source: String) -> Self {
        Service {
            name,
            kind,
            active: false,
            state: String::new(),
            enabled: None,
            restart_policy: None,
            command: None,
            schedule: None,
            source,
            pid: None,
            started_at: None,
            user: None,
            image: None,
            mounts: Vec::new(),
            scripts: Vec::new(),
            databases_reached: Vec::new(),
            hazards: Vec::new(),
            inventory: None,
            notes: Vec::new(),
            target_unclear: None,
            outside_drill: None,
            facts: ServiceFacts::default(),
        }
    }
}

/// Everything found on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// `uname -n` on the host.
    pub hostname: Option<String>,
    pub services: Vec<Service>,
    /// What could not be looked at, and why (systemd not running, docker daemon down...).
    pub notes: Vec<String>,
    /// Items (scripts, programs, paths) that could not be read or quoted,
    /// each with a short reason; the rest of the host was probed anyway.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub unreadable: Vec<Unreadable>,
}

/// One item discovery could not read. `item` is shown with control bytes
/// escaped, so printing it is safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    pub item: String,
    pub reason: String,
}

/// Internal: a service plus what is needed to relate it to others.
struct Entry {
    svc: Service,
    facts: Facts,
    /// The line that starts it, for evidence (cron line, ExecStart, process args).
    start_line: String,
    working_dir: Option<String>,
    /// systemd: unit id; timers: the unit they trigger.
    unit: Option<String>,
    triggers: Option<String>,
    triggered_by_timer: bool,
    /// Counts as an independent way of starting things (see redundancy).
    mechanism: bool,
    /// Connection variables of a running process (`/proc/PID/environ`,
    /// whitelisted: never a password).
    env: Vec<(String, String)>,
    /// A unit an administrator installed (always listed).
    local_unit: bool,
    /// A script it runs could not be read (it might do anything: listed).
    script_unread: bool,
}

/// The script of one round: the framing prelude, the PATH prefix, `body`.
pub fn round_script(n: &str, body: &str, opts: &ProbeOptions) -> String {
    let mut script = prelude(n);
    if let Some(p) = &opts.extra_path {
        script.push_str(&format!("PATH={}:$PATH; export PATH\n", shell_quote(p)));
    }
    script.push_str(body);
    script
}

async fn round(
    runner: &dyn Runner,
    n: &str,
    body: &str,
    opts: &ProbeOptions,
) -> Result<Vec<Section>, ProbeError> {
    let script = round_script(n, body, opts);
    let out = runner
        .run(&script, opts.timeout)
        .await
        .map_err(|why| ProbeError::Transport {
            host: runner.name().to_string(),
            why,
        })?;
    if out.timed_out {
        return Err(ProbeError::TimedOut {
            host: runner.name().to_string(),
            secs: opts.timeout.as_secs(),
        });
    }
    Ok(sections(&out.stdout, n))
}

/// The first round: host name, zone, systemd lists, cron files, ps, containers.
pub fn base_body(opts: &ProbeOptions) -> String {
    let root = shell_quote(&opts.cron_root);
    let mut body = String::from(
        "sec host uname -n\nsec tz date +%z\nsec self echo $$\n\
         if command -v systemctl >/dev/null 2>&1; then\n\
           sec units systemctl list-units --all --type=service,timer --output=json --no-pager\n\
           if [ \"$rc\" != 0 ]; then sec units-plain systemctl list-units --all --type=service,timer --plain --no-legend --no-pager; fi\n\
           sec timers systemctl list-timers --all --output=json --no-pager\n\
         fi\n",
    );
    body.push_str(&format!(
        "R={root}\nfor f in \"$R/crontab\" \"$R\"/cron.d/*; do [ -f \"$f\" ] && sec \"cronfile $f\" cat \"$f\"; done\n\
         sec cronparts sh -c 'for p in hourly daily weekly monthly; do for f in \"$1\"/cron.$p/*; do [ -f \"$f\" ] && [ -x \"$f\" ] && printf \"%s %s\\n\" \"$p\" \"$f\"; done; done; true' _ \"$R\"\n"
    ));
    if opts.user_crontabs {
        body.push_str(
            "if command -v crontab >/dev/null 2>&1; then for u in $(cut -d: -f1 /etc/passwd); do if out=$(crontab -l -u \"$u\" 2>/dev/null) && [ -n \"$out\" ]; then sec \"usercron $u\" printf '%s\\n' \"$out\"; fi; done; fi\n",
        );
    }
    body.push_str(
        "sec ps ps -eo pid=,ppid=,user:32=,lstart=,args=\n\
         T=; command -v timeout >/dev/null 2>&1 && T='timeout 15'\n\
         for d in docker podman; do if command -v $d >/dev/null 2>&1; then sec \"$d-ps\" $T $d ps -a --no-trunc --format '{{json .}}'; fi; done\n",
    );
    body
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// Discovers the services of one host. `inventory_services` are the
/// inventory's `[[service]]` entries for this host.
pub async fn discover(
    runner: &dyn Runner,
    ctx: &ScanCtx<'_>,
    inventory_services: &[&ServiceSpec],
    opts: &ProbeOptions,
) -> Result<Discovery, ProbeError> {
    let n = nonce();
    let s1 = round(runner, &n, &base_body(opts), opts).await?;
    let mut d = Discovery {
        hostname: section(&s1, "host")
            .map(|s| s.body.trim().to_string())
            .filter(|h| !h.is_empty()),
        ..Default::default()
    };
    // Round 1: units, processes, containers.
    let unit_names = unit_names(&s1, &mut d.notes);
    let mut seen = Seen::from_round1(&s1, n, &mut d.notes);
    // Inventory pidfiles (read as data), then which processes each
    // inventory process service may be.
    let pidfiles = read_pidfiles(runner, &seen.nonce, inventory_services, opts).await?;
    let (candidates, pidfile_notes) = process_candidates(inventory_services, &seen, &pidfiles);
    // Round 2: systemctl show, container inspect, the connection variables
    // of the processes that matter.
    let env_pids: BTreeSet<u32> = seen
        .procs
        .iter()
        .filter(|p| process::interesting(&p.args) && !seen.ours(p))
        .map(|p| p.pid)
        .chain(candidates.values().flatten().copied())
        .collect();
    round2(
        runner,
        &mut seen,
        &unit_names,
        &env_pids,
        opts,
        &mut d.notes,
    )
    .await?;
    // Entries from every source.
    let (mut entries, deferred) = entries_of(
        &s1,
        &seen,
        ctx,
        inventory_services,
        &candidates,
        &pidfile_notes,
    );
    // Read the scripts they run, and the scripts those run.
    let (scripts, unreadable) = read_scripts(runner, &seen.nonce, &entries, opts, ctx).await?;
    for (p, why) in &unreadable {
        if why != NOT_A_SCRIPT {
            d.unreadable.push(Unreadable {
                item: printable(p),
                reason: printable(why),
            });
        }
    }
    let unit_index = attach_scripts(&mut entries, &scripts, &unreadable, ctx);
    // Which candidate is an inventory process service, on evidence.
    for (spec, pids) in deferred {
        assign_process_spec(&mut entries, spec, &pids, ctx);
    }
    if let Some(lab) = drill_dir(ctx) {
        let own: BTreeSet<u32> = pidfiles
            .values()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        mark_outside_drill(&mut entries, &seen.procs, &own, &lab);
    }
    redundancy(&mut entries, &scripts, &unit_index);
    d.services = kept_services(&entries);
    d.notes = d.notes.iter().map(|n| printable(n)).collect();
    d.hostname = d.hostname.map(|h| printable(&h));
    Ok(d)
}

/// A section of a round's answer by name.
fn section(secs: &[Section], name: &str) -> Option<Section> {
    secs.iter().find(|s| s.name == name).cloned()
}

/// What the rounds saw on the host, parsed.
struct Seen {
    /// This discovery's framing nonce (its own processes carry it).
    nonce: String,
    self_pid: u32,
    /// The host's UTC offset (`+0000`), for process start times.
    offset: String,
    procs: Vec<Proc>,
    cron_running: bool,
    containers: Vec<(String, Vec<Container>)>,
    units: Vec<UnitProps>,
    environ: HashMap<u32, Vec<(String, String)>>,
}

impl Seen {
    /// Phase 1 (pure): processes, the cron daemon, containers of round 1.
    fn from_round1(s1: &[Section], nonce: String, notes: &mut Vec<String>) -> Seen {
        let offset = section(s1, "tz")
            .map(|s| s.body.trim().to_string())
            .unwrap_or_else(|| "+0000".into());
        let self_pid: u32 = section(s1, "self")
            .and_then(|s| s.body.trim().parse().ok())
            .unwrap_or(0);
        let procs: Vec<Proc> = match section(s1, "ps") {
            Some(s) if s.rc == 0 => process::parse_ps(&s.body),
            Some(s) => {
                notes.push(format!("processes: ps failed: {}", first_line(&s.body)));
                Vec::new()
            }
            None => Vec::new(),
        };
        let cron_running = procs.iter().any(|p| {
            matches!(
                basename(p.args.split_whitespace().next().unwrap_or("")),
                "cron" | "crond" | "CRON"
            )
        });
        let mut containers: Vec<(String, Vec<Container>)> = Vec::new();
        for tool in ["docker", "podman"] {
            if let Some(s) = section(s1, &format!("{tool}-ps")) {
                if s.rc == 0 {
                    containers.push((tool.to_string(), container::parse_ps(&s.body)));
                } else {
                    notes.push(format!(
                        "{tool}: installed but not answering: {}",
                        first_line(&s.body)
                    ));
                }
            }
        }
        Seen {
            nonce,
            self_pid,
            offset,
            procs,
            cron_running,
            containers,
            units: Vec::new(),
            environ: HashMap::new(),
        }
    }

    /// A process of this discovery itself (never a service).
    fn ours(&self, p: &Proc) -> bool {
        p.pid == self.self_pid
            || p.args.contains(&self.nonce)
            || process::ancestors(&self.procs, p.pid).contains(&self.self_pid)
    }

    fn env_of(&self, pid: u32) -> &[(String, String)] {
        self.environ
            .get(&pid)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Phase 1 (pure): the systemd services and timers round 1 listed.
fn unit_names(s1: &[Section], notes: &mut Vec<String>) -> Vec<String> {
    match (section(s1, "units"), section(s1, "units-plain")) {
        (None, _) => {
            notes.push("systemd: no systemctl on this host".to_string());
            Vec::new()
        }
        (Some(u), plain) => {
            let listed = if u.rc == 0 {
                systemd::parse_list_units_json(&u.body).map_err(|e| e.to_string())
            } else if let Some(p) = plain.filter(|p| p.rc == 0) {
                Ok(systemd::parse_list_units_plain(&p.body))
            } else {
                Err(first_line(&u.body))
            };
            match listed {
                Ok(list) => list
                    .into_iter()
                    .filter(|u| u.load != "not-found")
                    .map(|u| u.unit)
                    .filter(|u| u.ends_with(".service") || u.ends_with(".timer"))
                    .collect(),
                Err(e) => {
                    notes.push(format!("systemd: not answering: {e}"));
                    Vec::new()
                }
            }
        }
    }
}

/// Phase 2: the inventory's pidfiles, read as data (a pid or why not).
async fn read_pidfiles(
    runner: &dyn Runner,
    n: &str,
    inventory_services: &[&ServiceSpec],
    opts: &ProbeOptions,
) -> Result<HashMap<String, Result<u32, String>>, ProbeError> {
    let pidfile_paths: Vec<String> = inventory_services
        .iter()
        .filter(|s| s.kind == ServiceKind::Process)
        .filter_map(|s| s.pidfile.clone())
        .collect();
    let mut pidfiles: HashMap<String, Result<u32, String>> = HashMap::new();
    if !pidfile_paths.is_empty() {
        let secs = read_files(runner, n, READ_PIDFILE, &pidfile_paths, opts).await?;
        for (i, f) in pidfile_paths.iter().enumerate() {
            let r = match section(&secs, &format!("pidfile {i}")) {
                Some(s) if s.rc == 0 => s
                    .body
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("holds no pid ('{}')", short_reason(&s.body))),
                Some(s) => Err(short_reason(&s.body)),
                None => Err("no answer".into()),
            };
            pidfiles.insert(f.clone(), r);
        }
    }
    Ok(pidfiles)
}

/// Candidate pids (and a pidfile note) per inventory process service.
type Candidates = (HashMap<String, Vec<u32>>, HashMap<String, String>);

/// Phase 2 (pure): which processes each inventory process service may be.
fn process_candidates(
    inventory_services: &[&ServiceSpec],
    seen: &Seen,
    pidfiles: &HashMap<String, Result<u32, String>>,
) -> Candidates {
    let mut candidates: HashMap<String, Vec<u32>> = HashMap::new();
    let mut pidfile_notes: HashMap<String, String> = HashMap::new();
    for spec in inventory_services
        .iter()
        .filter(|s| s.kind == ServiceKind::Process)
    {
        let pf = spec.pidfile.as_ref().and_then(|f| pidfiles.get(f));
        let (pids, note) = spec_candidates(spec, &seen.procs, pf, &|p: &Proc| seen.ours(p));
        candidates.insert(spec.name().to_string(), pids);
        if let Some(note) = note {
            pidfile_notes.insert(spec.name().to_string(), note);
        }
    }
    (candidates, pidfile_notes)
}

/// Phase 3: round 2 (systemctl show, container inspect, environments).
async fn round2(
    runner: &dyn Runner,
    seen: &mut Seen,
    unit_names: &[String],
    env_pids: &BTreeSet<u32>,
    opts: &ProbeOptions,
    notes: &mut Vec<String>,
) -> Result<(), ProbeError> {
    let mut body = String::new();
    if !unit_names.is_empty() {
        let units: Vec<String> = unit_names.iter().map(|u| shell_quote(u)).collect();
        body.push_str(&format!(
            "sec show systemctl show --no-pager --property={} -- {}\n",
            systemd::SHOW_PROPERTIES.join(","),
            units.join(" ")
        ));
    }
    for (tool, list) in &seen.containers {
        if !list.is_empty() {
            let ids: Vec<String> = list.iter().map(|c| shell_quote(&c.id)).collect();
            body.push_str(&format!(
                "sec '{tool}-inspect' {tool} inspect {}\n",
                ids.join(" ")
            ));
        }
    }
    for pid in env_pids {
        body.push_str(&format!(
            "[ -r /proc/{pid}/environ ] && sec 'environ {pid}' cat /proc/{pid}/environ\n"
        ));
    }
    let s2 = if body.is_empty() {
        Vec::new()
    } else {
        round(runner, &seen.nonce, &body, opts).await?
    };
    seen.units = match section(&s2, "show") {
        Some(s) if s.rc == 0 => systemd::parse_show(&s.body),
        Some(s) => {
            notes.push(format!("systemd: show failed: {}", first_line(&s.body)));
            Vec::new()
        }
        None => Vec::new(),
    };
    for (tool, list) in &mut seen.containers {
        if let Some(s) = section(&s2, &format!("{tool}-inspect"))
            && s.rc == 0
        {
            container::apply_inspect(list, &s.body);
        }
    }
    seen.environ = env_pids
        .iter()
        .filter_map(|pid| {
            let s = section(&s2, &format!("environ {pid}"))?;
            (s.rc == 0).then(|| (*pid, env_vars(&s.body)))
        })
        .collect();
    Ok(())
}

/// Inventory process services whose candidates are decided on evidence later.
type Deferred<'a> = Vec<(&'a ServiceSpec, Vec<u32>)>;

/// Phase 4 (pure): an entry per unit, cron line, run-parts script,
/// container and interesting process; the inventory's services merged in.
fn entries_of<'a>(
    s1: &[Section],
    seen: &Seen,
    ctx: &ScanCtx,
    inventory_services: &[&'a ServiceSpec],
    candidates: &HashMap<String, Vec<u32>>,
    pidfile_notes: &HashMap<String, String>,
) -> (Vec<Entry>, Deferred<'a>) {
    let procs = &seen.procs;
    let offset = &seen.offset;
    let cron_running = seen.cron_running;
    let mut entries: Vec<Entry> = Vec::new();
    let main_pids: BTreeMap<u32, String> = seen
        .units
        .iter()
        .filter_map(|u| {
            let pid: u32 = u.get("MainPID")?.parse().ok()?;
            (pid > 0).then(|| (pid, u.id().to_string()))
        })
        .collect();
    for u in &seen.units {
        if let Some(e) = unit_entry(u, ctx) {
            entries.push(e);
        }
    }
    for s in s1.iter().filter(|s| s.name.starts_with("cronfile ")) {
        let file = &s.name["cronfile ".len()..];
        for c in cron::parse_crontab(&s.body, file, true, None) {
            entries.push(cron_entry(c, ctx, cron_running));
        }
    }
    for s in s1.iter().filter(|s| s.name.starts_with("usercron ")) {
        let user = &s.name["usercron ".len()..];
        let file = format!("crontab -l -u {user}");
        for c in cron::parse_crontab(&s.body, &file, false, Some(user)) {
            entries.push(cron_entry(c, ctx, cron_running));
        }
    }
    if let Some(s) = section(s1, "cronparts") {
        for l in s.body.lines() {
            if let Some((period, path)) = l.split_once(' ') {
                let c = CronEntry {
                    schedule: format!("@{period} (run-parts)"),
                    user: Some("root".into()),
                    command: path.to_string(),
                    line_text: path.to_string(),
                    file: path.to_string(),
                    line: 0,
                    env: Vec::new(),
                };
                let mut e = cron_entry(c, ctx, cron_running);
                e.svc.source = path.to_string();
                e.facts.scripts = vec![(path.to_string(), 0)];
                entries.push(e);
            }
        }
    }
    for (tool, list) in &seen.containers {
        for c in list {
            entries.push(container_entry(tool, c, ctx));
        }
    }
    for p in procs
        .iter()
        .filter(|p| process::interesting(&p.args) && !seen.ours(p))
    {
        let env = seen.env_of(p.pid);
        entries.push(process_entry(p, procs, &main_pids, offset, env, ctx));
    }
    // Inventory processes: their candidates get entries now (so their
    // scripts are read); which of them is the service is decided later,
    // on evidence.
    let mut deferred: Deferred<'a> = Vec::new();
    for spec in inventory_services {
        if spec.kind != ServiceKind::Process {
            merge_inventory(&mut entries, spec, ctx);
            continue;
        }
        let pids = candidates.get(spec.name()).cloned().unwrap_or_default();
        if pids.is_empty() {
            merge_inventory(&mut entries, spec, ctx);
            if let (Some(note), Some(e)) = (pidfile_notes.get(spec.name()), entries.last_mut()) {
                e.svc.notes.push(note.clone());
            }
            continue;
        }
        for pid in &pids {
            let listed = entries
                .iter()
                .any(|e| e.svc.kind == ServiceKind::Process && e.svc.pid == Some(*pid));
            if !listed && let Some(p) = procs.iter().find(|p| p.pid == *pid) {
                let env = seen.env_of(*pid);
                entries.push(process_entry(p, procs, &main_pids, offset, env, ctx));
            }
        }
        deferred.push((*spec, pids));
    }
    // Inside a drill, a process the lab's `match` patterns find outside its
    // pidfiles is listed too (as not part of the drill, later).
    if drill_dir(ctx).is_some() {
        for spec in inventory_services
            .iter()
            .filter(|s| s.kind == ServiceKind::Process)
        {
            let Some(re) = spec
                .match_
                .as_deref()
                .and_then(|m| regex::Regex::new(m).ok())
            else {
                continue;
            };
            for p in procs
                .iter()
                .filter(|p| !seen.ours(p) && re.is_match(&p.args))
            {
                let listed = entries
                    .iter()
                    .any(|e| e.svc.kind == ServiceKind::Process && e.svc.pid == Some(p.pid));
                if !listed {
                    let env = seen.env_of(p.pid);
                    entries.push(process_entry(p, procs, &main_pids, offset, env, ctx));
                }
            }
        }
    }
    (entries, deferred)
}

/// Facts per script read, and why each other script was not.
type Scripts = (HashMap<String, Facts>, BTreeMap<String, String>);

/// Phase 5: the scripts the entries run, and those they run, to
/// `opts.script_depth` levels.
async fn read_scripts(
    runner: &dyn Runner,
    n: &str,
    entries: &[Entry],
    opts: &ProbeOptions,
    ctx: &ScanCtx<'_>,
) -> Result<Scripts, ProbeError> {
    let mut scripts: HashMap<String, Facts> = HashMap::new();
    let mut unreadable: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..opts.script_depth.max(1) {
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for e in entries {
            for (p, _) in &e.facts.scripts {
                if let Some(abs) = resolve(p, e.working_dir.as_deref()) {
                    wanted.insert(abs);
                }
            }
        }
        for f in scripts.values() {
            for (p, _) in &f.scripts {
                if let Some(abs) = resolve(p, None) {
                    wanted.insert(abs);
                }
            }
        }
        wanted.retain(|p| !scripts.contains_key(p) && !unreadable.contains_key(p));
        if wanted.is_empty() {
            break;
        }
        let (list, unsendable): (Vec<String>, Vec<String>) =
            wanted.into_iter().partition(|p| !p.contains('\0'));
        for p in unsendable {
            unreadable.insert(p, "its name holds a NUL byte".into());
        }
        if list.is_empty() {
            continue;
        }
        let s3 = read_files(runner, n, READ_ONE, &list, opts).await?;
        for (i, p) in list.into_iter().enumerate() {
            match section(&s3, &format!("file {i}")) {
                Some(s) if s.rc == 0 && s.body.contains('\0') => {
                    unreadable.insert(
                        p,
                        "binary content (NUL bytes): a program, not scanned".into(),
                    );
                }
                Some(s) if s.rc == 0 => {
                    let f = scan::scan_text(&s.body, &p, &Vars::new(), ctx);
                    scripts.insert(p, f);
                }
                Some(s) if s.rc == 4 => {
                    unreadable.insert(p, NOT_A_SCRIPT.into());
                }
                Some(s) => {
                    unreadable.insert(p, short_reason(&s.body));
                }
                None => {
                    unreadable.insert(p, "no answer".into());
                }
            }
        }
    }
    Ok((scripts, unreadable))
}

/// Phase 6 (pure): each entry gets the databases and hazards of the
/// scripts it runs (transitively); returns the index of systemd units.
fn attach_scripts(
    entries: &mut [Entry],
    scripts: &HashMap<String, Facts>,
    unreadable: &BTreeMap<String, String>,
    ctx: &ScanCtx,
) -> HashMap<String, usize> {
    let unit_index: HashMap<String, usize> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            (e.svc.kind == ServiceKind::Systemd)
                .then(|| e.unit.clone().map(|u| (u, i)))
                .flatten()
        })
        .collect();
    for e in entries.iter_mut() {
        let closure = script_closure(&e.facts, e.working_dir.as_deref(), scripts);
        for p in &closure {
            if let Some(f) = scripts.get(p) {
                for r in &f.refs {
                    let r = match e.svc.pid {
                        Some(pid) if !e.env.is_empty() => complete_from_env(r, &e.env, pid, ctx),
                        _ => r.clone(),
                    };
                    push_ref(&mut e.svc.databases_reached, r);
                }
                for h in &f.hazards {
                    push_hazard(&mut e.svc.hazards, h.clone());
                }
            } else if let Some(why) = unreadable.get(p)
                && why != NOT_A_SCRIPT
            {
                e.svc.notes.push(format!("script '{p}' not read: {why}"));
                e.script_unread = true;
            }
        }
        e.svc.scripts = closure
            .into_iter()
            .filter(|p| scripts.contains_key(p))
            .collect();
    }
    unit_index
}

/// Phase 7 (pure): keep what matters: anything reaching a database,
/// holding a hazard or declared in the inventory; administrator units and
/// containers always; and what could not be read (it might do anything).
/// A timer stays with its service and the other way round.
fn kept_services(entries: &[Entry]) -> Vec<Service> {
    let keep: Vec<bool> = entries
        .iter()
        .map(|e| {
            let relevant = !e.svc.databases_reached.is_empty()
                || e.svc.outside_drill.is_some()
                || !e.svc.hazards.is_empty()
                || e.svc.inventory.is_some()
                || e.svc.target_unclear.is_some()
                || e.script_unread;
            match e.svc.kind {
                ServiceKind::Systemd | ServiceKind::Timer => relevant || e.local_unit,
                ServiceKind::Container => true,
                ServiceKind::Cron | ServiceKind::Process => relevant,
            }
        })
        .collect();
    let kept_units: BTreeSet<String> = entries
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .filter_map(|(e, _)| e.unit.clone())
        .collect();
    let mut out = Vec::new();
    for (e, k) in entries.iter().zip(keep) {
        let paired = e.triggers.as_ref().is_some_and(|t| kept_units.contains(t));
        if k || paired {
            let mut svc = e.svc.clone();
            clean_service(&mut svc);
            out.push(svc);
        }
    }
    out
}

/// The lab's directory when discovery runs inside a drill: the lab's
/// inventory (`env = "lab"`) lives at the top of it.
fn drill_dir(ctx: &ScanCtx) -> Option<String> {
    let inv = ctx.inventory?;
    if inv.env.as_deref() != Some("lab") {
        return None;
    }
    let dir = inv.path.as_deref()?.parent()?.to_str()?;
    (!dir.is_empty()).then(|| format!("{}/", dir.trim_end_matches('/')))
}

/// Inside a drill, marks every discovered process outside the sandbox:
/// not in the lab's pidfiles, its command line and working directory
/// naming nothing under `lab`, and no ancestor of it inside.
fn mark_outside_drill(entries: &mut [Entry], procs: &[Proc], own: &BTreeSet<u32>, lab: &str) {
    let inside = |pid: u32| {
        own.contains(&pid)
            || procs
                .iter()
                .find(|p| p.pid == pid)
                .is_some_and(|p| p.args.contains(lab))
    };
    for e in entries.iter_mut() {
        let Some(pid) = e.svc.pid else { continue };
        if e.svc.kind != ServiceKind::Process {
            continue;
        }
        let cwd_inside = e
            .working_dir
            .as_deref()
            .is_some_and(|w| format!("{}/", w.trim_end_matches('/')).starts_with(lab));
        let ancestors = process::ancestors(procs, pid);
        if inside(pid) || cwd_inside || ancestors.iter().any(|a| inside(*a)) {
            continue;
        }
        e.svc.outside_drill = Some(format!(
            "not part of this drill: pid {pid} runs outside the lab directory '{}' and is not in its pidfiles; never stopped",
            lab.trim_end_matches('/')
        ));
        e.svc.target_unclear = None;
    }
}

const NOT_A_SCRIPT: &str = "a program, not a script";

/// Checks and prints one file for `read_files` (`$1` its index, `$2` its
/// path), framed like `sec`; exit 2-4 say why it was not printed.
const READ_ONE: &str = "i=$1; f=$2; printf '@@%s begin file %s\\n' \"$N\" \"$i\"; \
(   [ -f \"$f\" ] || { echo 'not a readable file'; exit 2; }; \
    s=$(wc -c < \"$f\") || exit 2; [ \"$s\" -le 1048576 ] || { echo \"too large ($s bytes)\"; exit 3; }; \
    case \"$f\" in *.sh|*.bash|*.py|*.pl|*.rb|*.js) ;; *) [ \"$(head -c 2 -- \"$f\")\" = '#!' ] || { echo 'not a script'; exit 4; };; esac; \
    cat -- \"$f\" ) 2>&1; rc=$?; printf '\\n@@%s end file %s %s\\n' \"$N\" \"$i\" \"$rc\"";

/// Reads one pidfile for `read_files`, framed as `pidfile INDEX`.
const READ_PIDFILE: &str = "i=$1; f=$2; printf '@@%s begin pidfile %s\\n' \"$N\" \"$i\"; \
( [ -f \"$f\" ] || { echo 'not a readable regular file'; exit 2; }; head -c 32 -- \"$f\" ) 2>&1; \
rc=$?; printf '\\n@@%s end pidfile %s %s\\n' \"$N\" \"$i\" \"$rc\"";

/// Reads the scripts `paths` in one round. The paths go to the host as
/// data, NUL-separated on standard input (index, path, index, path...),
/// never as shell text: a path may hold any byte but NUL.
async fn read_files(
    runner: &dyn Runner,
    n: &str,
    inner: &str,
    paths: &[String],
    opts: &ProbeOptions,
) -> Result<Vec<Section>, ProbeError> {
    let body = format!("export N\nxargs -0 -n 2 sh -c {} _\n", shell_quote(inner));
    let script = round_script(n, &body, opts);
    let mut input = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        input.extend_from_slice(i.to_string().as_bytes());
        input.push(0);
        input.extend_from_slice(p.as_bytes());
        input.push(0);
    }
    let out = runner
        .run_input(&script, input, opts.timeout)
        .await
        .map_err(|why| ProbeError::Transport {
            host: runner.name().to_string(),
            why,
        })?;
    if out.timed_out {
        return Err(ProbeError::TimedOut {
            host: runner.name().to_string(),
            secs: opts.timeout.as_secs(),
        });
    }
    Ok(sections(&out.stdout, n))
}

/// The first line of an answer, short and with control bytes escaped.
fn short_reason(body: &str) -> String {
    let l = first_line(body);
    let l: String = l.chars().take(120).collect();
    printable(&l)
}

/// `s` with its NUL bytes shown as `\x00`: NUL is the one byte that cannot
/// travel back to a host or through a C string. Every other byte is kept
/// exact (JSON and the journal keep the exact text); whatever reaches a
/// terminal passes through the one sanitiser, `term::visible`, at the edge.
pub fn printable(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\\x00")
    } else {
        s.to_string()
    }
}

/// Escapes NUL bytes in every text field of `s` (names, commands,
/// evidence lines read from scripts), so what discovery reports is safe
/// to print, journal and compare.
fn clean_service(s: &mut Service) {
    let fix = |t: &mut String| {
        if t.contains('\0') {
            *t = printable(t);
        }
    };
    let fix_opt = |t: &mut Option<String>| {
        if let Some(t) = t {
            fix(t);
        }
    };
    fix(&mut s.name);
    fix(&mut s.state);
    fix(&mut s.source);
    fix_opt(&mut s.command);
    fix_opt(&mut s.schedule);
    fix_opt(&mut s.restart_policy);
    fix_opt(&mut s.user);
    fix_opt(&mut s.image);
    fix_opt(&mut s.started_at);
    s.mounts.iter_mut().for_each(fix);
    s.scripts.iter_mut().for_each(fix);
    s.notes.iter_mut().for_each(fix);
    for o in &mut s.facts.starter_of {
        fix(&mut o.script);
        fix(&mut o.location);
    }
    if let Some(c) = &mut s.facts.cron_line {
        fix(&mut c.file);
    }
    if let Some(StartedBy::Unit { unit }) = &mut s.facts.started_by {
        fix(unit);
    }
    for h in &mut s.hazards {
        fix(&mut h.evidence);
        fix(&mut h.location);
        fix(&mut h.detail);
    }
    for r in &mut s.databases_reached {
        fix_opt(&mut r.host);
        fix_opt(&mut r.dbname);
        fix_opt(&mut r.user);
        fix(&mut r.context);
    }
}

/// Scripts run by a service, and by those scripts, as absolute paths.
fn script_closure(
    facts: &Facts,
    cwd: Option<&str>,
    scripts: &HashMap<String, Facts>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut queue: Vec<String> = facts
        .scripts
        .iter()
        .filter_map(|(p, _)| resolve(p, cwd))
        .collect();
    while let Some(p) = queue.pop() {
        if out.contains(&p) || out.len() > 32 {
            continue;
        }
        if let Some(f) = scripts.get(&p) {
            queue.extend(f.scripts.iter().filter_map(|(q, _)| resolve(q, None)));
        }
        out.push(p);
    }
    out
}

/// Absolute path of a script word, when it can be known.
fn resolve(p: &str, cwd: Option<&str>) -> Option<String> {
    if p.contains('$') || p.contains('`') {
        return None;
    }
    if p.starts_with('/') {
        return Some(p.to_string());
    }
    let cwd = cwd?;
    let rel = p.trim_start_matches("./");
    Some(format!("{}/{rel}", cwd.trim_end_matches('/')))
}

fn relocate(mut f: Facts, location: &str, evidence: &str) -> Facts {
    for h in &mut f.hazards {
        h.location = location.to_string();
        h.evidence = evidence.to_string();
    }
    f
}

fn unit_entry(u: &UnitProps, ctx: &ScanCtx) -> Option<Entry> {
    let id = u.id().to_string();
    if id.is_empty() || u.get("LoadState") == Some("not-found") {
        return None;
    }
    let is_timer = id.ends_with(".timer");
    let fragment = u.get("FragmentPath").unwrap_or("").to_string();
    let source = if fragment.is_empty() {
        format!("systemd unit {id}")
    } else {
        fragment.clone()
    };
    let kind = if is_timer {
        ServiceKind::Timer
    } else {
        ServiceKind::Systemd
    };
    let mut svc = Service::new(id.clone(), kind, source.clone());
    let active_state = u.get("ActiveState").unwrap_or("unknown");
    svc.active = matches!(
        active_state,
        "active" | "activating" | "reloading" | "deactivating"
    );
    svc.state = format!("{active_state} ({})", u.get("SubState").unwrap_or("?"));
    svc.enabled = u.get("UnitFileState").map(|s| s.starts_with("enabled"));
    let local_unit = systemd::is_local_unit(u);
    svc.user = u.get("User").map(str::to_string);
    svc.started_at = u
        .get("ExecMainStartTimestamp")
        .or(u.get("ActiveEnterTimestamp"))
        .map(|t| systemd::timestamp_rfc3339(t).unwrap_or_else(|| t.to_string()));
    let mut facts = Facts::default();
    let mut start_line = String::new();
    let mut working_dir = None;
    let mut triggers = None;
    if is_timer {
        svc.schedule = systemd::timer_schedule(u);
        triggers = u.get("Unit").or(u.get("Triggers")).map(str::to_string);
        if let Some(t) = &triggers {
            svc.command = Some(format!("starts {t}"));
        }
    } else {
        svc.restart_policy = u.get("Restart").map(|r| match u.get("RestartUSec") {
            Some(us) if r != "no" => format!("{r} (after {us})"),
            _ => r.to_string(),
        });
        let mut vars = Vars::new();
        for (k, v) in u
            .get("Environment")
            .map(systemd::parse_environment)
            .unwrap_or_default()
        {
            vars.set(&k, &v);
        }
        working_dir = u.get("WorkingDirectory").map(str::to_string);
        let main_pid = u
            .get("MainPID")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| *p > 0);
        svc.pid = main_pid;
        let mut cmds = Vec::new();
        for key in ["ExecStartPre", "ExecStart", "ExecStartPost"] {
            for v in u.all(key) {
                if let Some(c) = systemd::parse_exec(v) {
                    let text = scan::join_argv(&c.argv);
                    let loc = format!("{source} ({key})");
                    let f = scan::scan_argv(&c.argv, &loc, &vars, ctx);
                    let ev = format!("{key}={}", c.argv.join(" "));
                    facts.merge(relocate(f, &loc, &ev));
                    if key == "ExecStart" {
                        start_line = ev;
                        cmds.push(text);
                    }
                }
            }
        }
        svc.command = (!cmds.is_empty()).then(|| cmds.join(" ; "));
    }
    let triggered_by_timer = u
        .get("TriggeredBy")
        .is_some_and(|t| t.split_whitespace().any(|x| x.ends_with(".timer")));
    svc.databases_reached = facts.refs.clone();
    svc.hazards = facts.hazards.clone();
    Some(Entry {
        svc,
        facts,
        start_line,
        working_dir,
        unit: Some(id),
        triggers,
        triggered_by_timer,
        mechanism: true,
        env: Vec::new(),
        local_unit,
        script_unread: false,
    })
}

fn cron_entry(c: CronEntry, ctx: &ScanCtx, cron_running: bool) -> Entry {
    let short = if c.line == 0 {
        basename(&c.file).to_string()
    } else if c.file.starts_with("crontab -l") {
        format!("crontab({}):{}", c.user.as_deref().unwrap_or("?"), c.line)
    } else {
        let f = c.file.rsplit('/').take(2).collect::<Vec<_>>();
        let f = if f.len() == 2 && f[1] == "cron.d" {
            format!("cron.d/{}", f[0])
        } else {
            f[0].to_string()
        };
        format!("{f}:{}", c.line)
    };
    let source = if c.line == 0 {
        c.file.clone()
    } else {
        format!("{}:{}", c.file, c.line)
    };
    let mut svc = Service::new(short, ServiceKind::Cron, source.clone());
    if c.line > 0 {
        svc.facts.cron_line = Some(CronLine {
            file: c.file.clone(),
            line: c.line,
        });
    }
    svc.active = cron_running;
    svc.state = if cron_running {
        "scheduled".into()
    } else {
        "scheduled (no cron daemon running)".into()
    };
    svc.schedule = Some(c.schedule.clone());
    svc.user = c.user.clone();
    svc.command = Some(c.command.clone());
    let mut vars = Vars::new();
    for (k, v) in &c.env {
        vars.set(k, v);
    }
    let f = scan::scan_text(&c.command, &source, &vars, ctx);
    let f = relocate(f, &source, &c.line_text);
    svc.databases_reached = f.refs.clone();
    svc.hazards = f.hazards.clone();
    Entry {
        svc,
        facts: f,
        start_line: c.line_text,
        working_dir: None,
        unit: None,
        triggers: None,
        triggered_by_timer: false,
        mechanism: true,
        env: Vec::new(),
        local_unit: false,
        script_unread: false,
    }
}

fn container_entry(tool: &str, c: &Container, ctx: &ScanCtx) -> Entry {
    let source = c
        .compose
        .clone()
        .unwrap_or_else(|| format!("{tool} container {}", &c.id[..c.id.len().min(12)]));
    let mut svc = Service::new(c.name.clone(), ServiceKind::Container, source.clone());
    svc.active = c.state == "running";
    svc.state = if c.status.is_empty() {
        c.state.clone()
    } else {
        c.status.clone()
    };
    svc.restart_policy = c.restart_policy.clone();
    svc.image = Some(c.image.clone()).filter(|i| !i.is_empty());
    svc.mounts = c.mounts.clone();
    svc.command = (!c.command.is_empty()).then(|| c.command.join(" "));
    svc.facts.container_tool = Some(tool.to_string());
    if let Some(db) = &c.serves_db {
        svc.facts.db_server = true;
        svc.notes.push(format!(
            "PostgreSQL server (database '{db}'); its data lives in: {}",
            if c.mounts.is_empty() {
                "the container's own layer (gone when the container is removed)".to_string()
            } else {
                c.mounts.join(", ")
            }
        ));
    }
    let loc = format!("{source} (command)");
    let f = scan::scan_argv(&c.command, &loc, &Vars::new(), ctx);
    let mut f = relocate(f, &loc, &c.command.join(" "));
    for r in &c.db_refs {
        let mut r = r.clone();
        if let Some(inv) = ctx.inventory {
            r.inventory = super::dbref::map_to_inventory(&r, inv, ctx.host, ctx.address);
        }
        push_ref(&mut f.refs, r);
    }
    svc.databases_reached = f.refs.clone();
    svc.hazards = f.hazards.clone();
    Entry {
        svc,
        facts: f,
        start_line: c.command.join(" "),
        working_dir: None,
        unit: None,
        triggers: None,
        triggered_by_timer: false,
        mechanism: false,
        env: Vec::new(),
        local_unit: false,
        script_unread: false,
    }
}

fn process_entry(
    p: &Proc,
    procs: &[Proc],
    main_pids: &BTreeMap<u32, String>,
    offset: &str,
    env: &[(String, String)],
    ctx: &ScanCtx,
) -> Entry {
    let argv: Vec<String> = super::shell::parse(&p.args, &Vars::new())
        .0
        .first()
        .and_then(|pl| pl.cmds.first())
        .map(|c| c.argv.clone())
        .unwrap_or_default();
    let loc = format!("ps pid {}", p.pid);
    // ps prints arguments joined by spaces: re-split as a shell would, with
    // the process's own connection variables.
    let mut vars = Vars::new();
    for (k, v) in env {
        vars.set(k, v);
    }
    let f = scan::scan_text(&p.args, &loc, &vars, ctx);
    let mut f = relocate(f, &loc, &p.args);
    for r in &mut f.refs {
        r.evidence = Some(format!("arguments of pid {}", p.pid));
    }
    // The environment alone names a database: kept when it maps to the
    // inventory (an unmapped PGDATABASE with no port is only noise).
    if let Some(r) = env_ref(env, p.pid, ctx)
        && (r.inventory.is_some() || ctx.inventory.is_none())
    {
        push_ref(&mut f.refs, r);
    }
    let label = f
        .scripts
        .first()
        .map(|(s, _)| basename(s).to_string())
        .unwrap_or_else(|| {
            argv.first()
                .map(|a| basename(a).to_string())
                .unwrap_or_else(|| "process".into())
        });
    let mut svc = Service::new(
        format!("{label} (pid {})", p.pid),
        ServiceKind::Process,
        loc,
    );
    svc.active = true;
    svc.state = "running".into();
    svc.pid = Some(p.pid);
    svc.user = Some(p.user.clone());
    svc.started_at = process::started_rfc3339(&p.started, offset).or(Some(p.started.clone()));
    svc.command = Some(p.args.clone());
    // Who started it: a unit, cron, or another process we list.
    let chain: Vec<u32> = std::iter::once(p.pid)
        .chain(process::ancestors(procs, p.pid))
        .collect();
    // A process started by a unit, by cron, or by another listed process that
    // names the same script is an instance of that mechanism, not one more.
    let script = f.scripts.first().map(|(s, _)| s.clone());
    let mut mechanism = true;
    let mut started_by = None;
    if let Some(u) = chain.iter().find_map(|pid| main_pids.get(pid)) {
        started_by = Some(StartedBy::Unit { unit: u.clone() });
        mechanism = false;
    } else if let Some(c) = chain[1..].iter().find_map(|pid| {
        procs.iter().find(|q| {
            q.pid == *pid
                && (is_cron(&q.args)
                    || process::interesting(&q.args)
                        && script.as_ref().is_some_and(|s| q.args.contains(s.as_str())))
        })
    }) {
        started_by = Some(if is_cron(&c.args) {
            StartedBy::Cron
        } else {
            StartedBy::Pid { pid: c.pid }
        });
        mechanism = false;
    }
    if let Some(by) = started_by {
        svc.notes.push(by.to_string());
        svc.facts.started_by = Some(by);
    }
    svc.databases_reached = f.refs.clone();
    svc.hazards = f.hazards.clone();
    Entry {
        svc,
        facts: f,
        start_line: p.args.clone(),
        working_dir: None,
        unit: None,
        triggers: None,
        triggered_by_timer: false,
        mechanism,
        env: env.to_vec(),
        local_unit: false,
        script_unread: false,
    }
}

fn is_cron(args: &str) -> bool {
    matches!(
        basename(args.split_whitespace().next().unwrap_or("")),
        "cron" | "crond" | "CRON"
    )
}

/// Folds an inventory `[[service]]` into what was discovered: the matching
/// entry takes its name; an undiscovered one is listed as declared.
fn merge_inventory(entries: &mut Vec<Entry>, spec: &ServiceSpec, ctx: &ScanCtx) {
    let name = spec.name().to_string();
    let found = entries.iter_mut().find(|e| match spec.kind {
        ServiceKind::Systemd | ServiceKind::Timer => spec.unit.as_deref().is_some_and(|u| {
            e.unit.as_deref() == Some(u) || e.unit.as_deref() == Some(&format!("{u}.service"))
        }),
        ServiceKind::Container => spec.container.as_deref() == Some(e.svc.name.as_str()),
        ServiceKind::Cron => spec
            .cron_file
            .as_deref()
            .is_some_and(|f| e.svc.source.starts_with(f)),
        // Running processes are assigned on evidence (assign_process_spec).
        ServiceKind::Process => false,
    });
    let declared = declared_refs(spec, ctx);
    if let Some(e) = found {
        if e.svc.name != name {
            e.svc.notes.push(format!("discovered as '{}'", e.svc.name));
        }
        e.svc.name = name.clone();
        e.svc.inventory = Some(name);
        for r in declared {
            push_ref(&mut e.svc.databases_reached, r);
        }
        return;
    }
    // Not among the discovered ones: a process the probe did not flag, or one not running.
    let mut svc = Service::new(
        name.clone(),
        spec.kind,
        format!("inventory service '{name}'"),
    );
    svc.inventory = Some(name);
    let mut facts = Facts::default();
    svc.state = "not running".into();
    if let Some(start) = &spec.start {
        svc.command = Some(start.clone());
        let loc = format!("inventory service '{}' (start)", spec.name());
        facts = relocate(scan::scan_text(start, &loc, &Vars::new(), ctx), &loc, start);
    }
    svc.databases_reached = facts.refs.clone();
    for r in declared {
        push_ref(&mut svc.databases_reached, r);
    }
    svc.hazards = facts.hazards.clone();
    entries.push(Entry {
        start_line: svc.command.clone().unwrap_or_default(),
        svc,
        facts,
        working_dir: None,
        unit: None,
        triggers: None,
        triggered_by_timer: false,
        mechanism: true,
        env: Vec::new(),
        local_unit: false,
        script_unread: false,
    });
}

/// The inventory databases a `[[service]]` declares, as references.
fn declared_refs(spec: &ServiceSpec, ctx: &ScanCtx) -> Vec<DbRef> {
    spec.databases
        .iter()
        .filter_map(|d| {
            let u = ctx.inventory?.database(d.get_ref())?.pg_url()?;
            let mut r = DbRef::new(super::dbref::DbRole::Declared);
            r.host = Some(u.host.clone());
            r.port = Some(u.port);
            r.dbname = Some(u.dbname.clone());
            r.user = u.user.clone();
            r.inventory = Some(d.get_ref().clone());
            r.evidence = Some(format!("declared by inventory service '{}'", spec.name()));
            Some(r)
        })
        .collect()
}

/// Connection variables kept from a process environment. Passwords
/// (`PGPASSWORD`, `PGPASSFILE`) are never kept; URLs lose theirs when parsed.
fn is_conn_var(k: &str) -> bool {
    matches!(
        k,
        "PGHOST" | "PGHOSTADDR" | "PGPORT" | "PGDATABASE" | "PGUSER" | "PGSERVICE"
    ) || k == "DATABASE_URL"
        || k.ends_with("_DATABASE_URL")
}

/// The connection variables of `/proc/PID/environ` (NUL-separated).
pub fn env_vars(environ: &str) -> Vec<(String, String)> {
    environ
        .split('\0')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            is_conn_var(k).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn env_get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.as_str())
}

/// The database a process's environment names, with that as its evidence.
fn env_ref(env: &[(String, String)], pid: u32, ctx: &ScanCtx) -> Option<DbRef> {
    let mut r = if let Some((k, v)) = env
        .iter()
        .find(|(k, _)| k == "DATABASE_URL" || k.ends_with("_DATABASE_URL"))
    {
        let mut r = super::dbref::parse_conn(v)?;
        r.evidence = Some(format!("environment of pid {pid}: {k}"));
        r
    } else {
        let db = env_get(env, "PGDATABASE")?;
        let mut r = DbRef::new(super::dbref::DbRole::Query);
        r.dbname = Some(db.to_string());
        r.host = env_get(env, "PGHOST").map(str::to_string);
        r.port = env_get(env, "PGPORT").and_then(|p| p.parse().ok());
        r.user = env_get(env, "PGUSER").map(str::to_string);
        let shown: Vec<String> = ["PGHOST", "PGPORT", "PGDATABASE"]
            .iter()
            .filter_map(|k| env_get(env, k).map(|v| format!("{k}={v}")))
            .collect();
        r.evidence = Some(format!("environment of pid {pid}: {}", shown.join(" ")));
        r
    };
    r.role = super::dbref::DbRole::Query;
    ctx.map(&mut r);
    Some(r)
}

/// A script's reference as a process running it resolves it: what the
/// script leaves open (host, port, database, user) comes from the
/// process's environment, as libpq would take it.
fn complete_from_env(r: &DbRef, env: &[(String, String)], pid: u32, ctx: &ScanCtx) -> DbRef {
    let mut c = r.clone();
    let mut used = Vec::new();
    let mut fill = |slot: &mut Option<String>, k: &'static str| {
        if slot.is_none()
            && let Some(v) = env_get(env, k)
        {
            *slot = Some(v.to_string());
            used.push(k);
        }
    };
    fill(&mut c.dbname, "PGDATABASE");
    fill(&mut c.host, "PGHOST");
    fill(&mut c.user, "PGUSER");
    if c.port.is_none()
        && let Some(p) = env_get(env, "PGPORT").and_then(|p| p.parse().ok())
    {
        c.port = Some(p);
        used.push("PGPORT");
    }
    if used.is_empty() {
        return c;
    }
    c.evidence = Some(format!(
        "{} with {} from the environment of pid {pid}",
        r.evidence.as_deref().unwrap_or("a script"),
        used.join(", ")
    ));
    ctx.map(&mut c);
    c
}

/// Which running processes an inventory `process` service names: the pid
/// in its pidfile when it has one (its `match` then only confirms), else
/// every process its `match` finds. The note says why there are none.
fn spec_candidates(
    spec: &ServiceSpec,
    procs: &[Proc],
    pidfile: Option<&Result<u32, String>>,
    ours: &dyn Fn(&Proc) -> bool,
) -> (Vec<u32>, Option<String>) {
    let re = spec
        .match_
        .as_deref()
        .and_then(|m| regex::Regex::new(m).ok());
    let matches = |p: &Proc| re.as_ref().is_none_or(|re| re.is_match(&p.args));
    if let Some(f) = &spec.pidfile {
        return match pidfile {
            Some(Ok(pid)) => match procs.iter().find(|p| p.pid == *pid && !ours(p)) {
                Some(p) if matches(p) => (vec![p.pid], None),
                Some(p) => (
                    Vec::new(),
                    Some(format!(
                        "pidfile '{f}' names pid {pid}, which runs something else ('{}'): not this service",
                        printable(&p.args)
                    )),
                ),
                None => (
                    Vec::new(),
                    Some(format!("pidfile '{f}' names pid {pid}, not running")),
                ),
            },
            Some(Err(why)) => (Vec::new(), Some(format!("pidfile '{f}': {why}"))),
            None => (Vec::new(), Some(format!("pidfile '{f}' not read"))),
        };
    }
    let Some(re) = &re else {
        return (Vec::new(), None);
    };
    (
        procs
            .iter()
            .filter(|p| !ours(p) && re.is_match(&p.args))
            .map(|p| p.pid)
            .collect(),
        None,
    )
}

/// Decides which of an inventory process service's candidates are that
/// service: one candidate (or a pidfile) is; of several, those whose
/// evidence reaches a database the service declares. What stays
/// ambiguous is marked "target unclear" and given to nobody.
fn assign_process_spec(entries: &mut Vec<Entry>, spec: &ServiceSpec, pids: &[u32], ctx: &ScanCtx) {
    let name = spec.name().to_string();
    let idx: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.svc.kind == ServiceKind::Process
                && e.svc.inventory.is_none()
                && e.svc.pid.is_some_and(|p| pids.contains(&p))
        })
        .map(|(i, _)| i)
        .collect();
    let declared: Vec<String> = spec.databases.iter().map(|d| d.get_ref().clone()).collect();
    let evident = |e: &Entry| {
        e.svc.databases_reached.iter().any(|r| {
            r.role != super::dbref::DbRole::Declared
                && r.inventory.as_ref().is_some_and(|i| declared.contains(i))
        })
    };
    // A process whose own evidence names only other databases is not this
    // service, whatever its command line matches (a pidfile overrides).
    let elsewhere = |e: &Entry| {
        let own: Vec<&String> = e
            .svc
            .databases_reached
            .iter()
            .filter(|r| r.role != super::dbref::DbRole::Declared)
            .filter_map(|r| r.inventory.as_ref())
            .collect();
        !declared.is_empty() && !own.is_empty() && !own.iter().any(|i| declared.contains(i))
    };
    let (idx, other): (Vec<usize>, Vec<usize>) = if spec.pidfile.is_some() {
        (idx, Vec::new())
    } else {
        idx.into_iter().partition(|i| !elsewhere(&entries[*i]))
    };
    for i in other {
        entries[i].svc.notes.push(format!(
            "matches inventory service '{name}' but writes to another database: not that service"
        ));
    }
    if idx.is_empty() {
        merge_inventory(entries, spec, ctx);
        return;
    }
    let chosen: Vec<usize> = if idx.len() <= 1 || spec.pidfile.is_some() {
        idx.clone()
    } else {
        idx.iter()
            .copied()
            .filter(|i| evident(&entries[*i]))
            .collect()
    };
    if chosen.is_empty() {
        let why = format!(
            "matches inventory service '{name}' like {} other process(es); no evidence (arguments, scripts, environment) ties it to {}: never stopped unless picked",
            idx.len().saturating_sub(1),
            if declared.is_empty() {
                "one database (the service declares none)".to_string()
            } else {
                format!("'{}'", declared.join("', '"))
            }
        );
        // A candidate with evidence of its own keeps it (it is that
        // database's writer, whichever service it is); one without is unclear.
        for i in &idx {
            let e = &mut entries[*i];
            if e.svc
                .databases_reached
                .iter()
                .any(|r| r.inventory.is_some())
            {
                e.svc.notes.push(format!(
                    "matches inventory service '{name}' too; attributed by its own evidence"
                ));
            } else {
                e.svc.target_unclear = Some(why.clone());
            }
        }
        merge_inventory(entries, spec, ctx);
        if let Some(e) = entries.last_mut() {
            e.svc.state = format!("target unclear ({} processes match)", idx.len());
            e.svc.target_unclear = Some(format!(
                "{} running processes match and none is tied to it by evidence; name it with a pidfile",
                idx.len()
            ));
        }
        return;
    }
    // The first (lowest pid: a loop before the script it runs) takes the
    // service's name; the others are told apart by pid.
    for (k, i) in chosen.into_iter().enumerate() {
        let e = &mut entries[i];
        e.svc.notes.push(format!("discovered as '{}'", e.svc.name));
        e.svc.name = if k > 0 {
            format!("{name} (pid {})", e.svc.pid.unwrap_or(0))
        } else {
            name.clone()
        };
        e.svc.inventory = Some(name.clone());
        for r in declared_refs(spec, ctx) {
            push_ref(&mut e.svc.databases_reached, r);
        }
    }
}

/// Flags every script started by two or more independent mechanisms
/// (unit, timer, cron line, watchdog, stand-alone process): stopping one
/// leaves the others able to start it again.
fn redundancy(
    entries: &mut [Entry],
    scripts: &HashMap<String, Facts>,
    unit_index: &HashMap<String, usize>,
) {
    // For each entry: the scripts it starts, with how (for the message) and the evidence line.
    let mut starts: Vec<Vec<(String, String, String, String)>> = vec![Vec::new(); entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if !e.mechanism || e.triggered_by_timer && e.svc.kind == ServiceKind::Systemd {
            continue;
        }
        let how = describe(e);
        let mut direct = script_closure(&e.facts, e.working_dir.as_deref(), scripts);
        // A timer starts what its unit runs.
        let mut via_units: Vec<(String, usize, String, String)> = Vec::new();
        if let Some(t) = &e.triggers
            && let Some(&j) = unit_index.get(t)
        {
            for p in script_closure(
                &entries[j].facts,
                entries[j].working_dir.as_deref(),
                scripts,
            ) {
                direct.push(p);
            }
        }
        // Watchdogs: scripts (or the command itself) that start units.
        let mut started: Vec<(String, usize, String)> = e
            .facts
            .units_started
            .iter()
            .map(|(u, l)| (u.clone(), *l, e.svc.source.clone()))
            .collect();
        for p in &direct {
            if let Some(f) = scripts.get(p) {
                started.extend(
                    f.units_started
                        .iter()
                        .map(|(u, l)| (u.clone(), *l, p.clone())),
                );
            }
        }
        for (u, line, file) in started {
            if Some(&u) == e.unit.as_ref() {
                continue;
            }
            if let Some(&j) = unit_index.get(&u) {
                let evidence = scripts
                    .get(&file)
                    .map(|_| format!("{file}:{line}"))
                    .unwrap_or_else(|| e.svc.source.clone());
                for p in script_closure(
                    &entries[j].facts,
                    entries[j].working_dir.as_deref(),
                    scripts,
                ) {
                    via_units.push((p, line, u.clone(), evidence.clone()));
                }
            }
        }
        for p in direct {
            starts[i].push((p, how.clone(), e.start_line.clone(), e.svc.source.clone()));
        }
        for (p, _, u, evidence_loc) in via_units {
            starts[i].push((
                p,
                format!("{how} through a watchdog that restarts {u} ({evidence_loc})"),
                e.start_line.clone(),
                e.svc.source.clone(),
            ));
        }
    }
    let mut by_script: BTreeMap<String, Vec<(usize, String, String, String)>> = BTreeMap::new();
    for (i, list) in starts.into_iter().enumerate() {
        for (p, how, line, loc) in list {
            let v = by_script.entry(p).or_default();
            if !v.iter().any(|(j, ..)| *j == i) {
                v.push((i, how, line, loc));
            }
        }
    }
    for (script, starters) in by_script {
        if starters.len() < 2 {
            continue;
        }
        let names: Vec<String> = starters.iter().map(|(_, how, ..)| how.clone()).collect();
        let detail = format!(
            "'{script}' is started by {} mechanisms: {}; stopping one leaves the others able to start it again: stop them all",
            starters.len(),
            names.join("; ")
        );
        for (i, _, line, loc) in &starters {
            let of = StarterOf {
                script: script.clone(),
                location: loc.clone(),
            };
            if !entries[*i].svc.facts.starter_of.contains(&of) {
                entries[*i].svc.facts.starter_of.push(of);
            }
            let h = Hazard {
                kind: HazardKind::RedundantStart,
                evidence: line.clone(),
                location: loc.clone(),
                detail: detail.clone(),
            };
            push_hazard(&mut entries[*i].svc.hazards, h);
        }
    }
}

fn describe(e: &Entry) -> String {
    match e.svc.kind {
        ServiceKind::Systemd => format!(
            "systemd unit {}{}",
            e.svc.name,
            e.svc
                .restart_policy
                .as_ref()
                .map(|r| format!(" (Restart={r})"))
                .unwrap_or_default()
        ),
        ServiceKind::Timer => format!(
            "timer {} ({})",
            e.svc.name,
            e.svc.schedule.as_deref().unwrap_or("?")
        ),
        ServiceKind::Cron => format!(
            "cron {} ({})",
            e.svc.source,
            e.svc.schedule.as_deref().unwrap_or("?")
        ),
        ServiceKind::Container => format!("container {}", e.svc.name),
        ServiceKind::Process => format!("process {}", e.svc.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_are_escaped_and_the_rest_kept_exact() {
        assert_eq!(printable("plain/path.sh"), "plain/path.sh");
        assert_eq!(printable("a\u{1b}[2Jb\0c\nd"), "a\u{1b}[2Jb\\x00c\nd");
        let mut s = Service::new(
            "x\0\u{1b}]0;t\u{7}".into(),
            ServiceKind::Process,
            "ps".into(),
        );
        s.command = Some("sh /tmp/\u{1b}[31m.sh".into());
        clean_service(&mut s);
        assert_eq!(s.name, "x\\x00\u{1b}]0;t\u{7}");
        assert_eq!(s.command.as_deref(), Some("sh /tmp/\u{1b}[31m.sh"));
        assert_eq!(crate::term::visible(&s.name), "x\\x00\\x1b]0;t\\x07");
    }

    #[test]
    fn resolves_script_paths() {
        assert_eq!(resolve("/a/b.sh", None).as_deref(), Some("/a/b.sh"));
        assert_eq!(
            resolve("./run.sh", Some("/opt/app/")).as_deref(),
            Some("/opt/app/run.sh")
        );
        assert_eq!(resolve("run.sh", None), None);
        assert_eq!(resolve("$DIR/run.sh", Some("/x")), None);
    }

    #[test]
    fn units_from_recorded_show_output() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/fixtures/systemd/show/"
        );
        let text = std::fs::read_to_string(format!("{dir}db-realtime-sync.service")).unwrap();
        let u = &systemd::parse_show(&text)[0];
        let e = unit_entry(u, &ScanCtx::bare()).unwrap();
        assert_eq!(e.svc.name, "db-realtime-sync.service");
        assert_eq!(e.svc.restart_policy.as_deref(), Some("always (after 10s)"));
        assert!(e.svc.active);
        assert_eq!(e.svc.enabled, Some(true));
        assert_eq!(e.svc.pid, Some(4242));
        assert_eq!(e.svc.started_at.as_deref(), Some("2024-12-10T12:40:07Z"));
        assert_eq!(e.facts.scripts[0].0, "/usr/local/bin/db_realtime_sync.sh");
        assert_eq!(e.working_dir.as_deref(), Some("/opt/app"));

        let text = std::fs::read_to_string(format!("{dir}app-backup.service")).unwrap();
        let e = unit_entry(&systemd::parse_show(&text)[0], &ScanCtx::bare()).unwrap();
        assert!(e.triggered_by_timer);
        assert_eq!(e.svc.databases_reached.len(), 1);
        assert_eq!(e.svc.databases_reached[0].display(), "localhost:5432/app");

        let text = std::fs::read_to_string(format!("{dir}app-backup.timer")).unwrap();
        let e = unit_entry(&systemd::parse_show(&text)[0], &ScanCtx::bare()).unwrap();
        assert_eq!(e.svc.kind, ServiceKind::Timer);
        assert_eq!(e.svc.schedule.as_deref(), Some("*-*-* 00/4:00:00"));
        assert_eq!(e.triggers.as_deref(), Some("app-backup.service"));
    }

    #[test]
    fn only_processes_outside_the_lab_are_not_part_of_the_drill() {
        let proc_ = |pid: u32, ppid: u32, args: &str| Proc {
            pid,
            ppid,
            user: "u".into(),
            started: String::new(),
            args: args.into(),
        };
        let procs = vec![
            proc_(10, 1, "/bin/sh /lab/x/bin/db_realtime_sync.sh"),
            proc_(11, 10, "psql -p 5433 TovPlay"),
            proc_(20, 1, "/bin/sh ./db_realtime_sync.sh"),
            proc_(30, 1, "/bin/sh /other/db_realtime_sync.sh"),
            proc_(40, 1, "/bin/sh /lab/xy/db_realtime_sync.sh"),
            proc_(50, 1, "/bin/sh job.sh"),
        ];
        let entry = |pid: u32, cwd: Option<&str>| {
            let mut svc = Service::new(format!("p{pid}"), ServiceKind::Process, "ps".into());
            svc.pid = Some(pid);
            svc.target_unclear = Some("unclear".into());
            Entry {
                svc,
                facts: Facts::default(),
                start_line: String::new(),
                working_dir: cwd.map(str::to_string),
                unit: None,
                triggers: None,
                triggered_by_timer: false,
                mechanism: false,
                env: Vec::new(),
                local_unit: false,
                script_unread: false,
            }
        };
        let mut entries = vec![
            entry(10, None),
            entry(11, None),
            entry(20, Some("/somewhere")),
            entry(30, Some("/other")),
            entry(40, None),
            entry(50, Some("/lab/x/run")),
        ];
        let own: BTreeSet<u32> = [20].into();
        mark_outside_drill(&mut entries, &procs, &own, "/lab/x/");
        let outside: Vec<u32> = entries
            .iter()
            .filter(|e| e.svc.outside_drill.is_some())
            .filter_map(|e| e.svc.pid)
            .collect();
        // The lab's script, its child, its pidfile's pid and a process in
        // its directory are inside; a sibling directory sharing the prefix is not.
        assert_eq!(outside, vec![30, 40]);
        let e = &entries[3].svc;
        assert!(
            e.outside_drill
                .as_deref()
                .unwrap()
                .starts_with("not part of this drill: pid 30 ")
        );
        assert_eq!(e.target_unclear, None);
    }
}
