//! The hazard scanner: reads a script or command line (never runs it) and
//! reports which databases it reaches, which scripts and units it starts,
//! and every dangerous pattern with the exact line that triggered it.

use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::dbref::{DbRef, DbRole, PgTool, map_to_inventory, parse_pg_args, target_of, urls_in};
use super::shell::{self, Cmd, Line, Pipeline, Vars, basename};
use crate::inventory::Inventory;

/// What kind of danger a line holds (JSON: kebab-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HazardKind {
    /// `pg_dump --clean` whose output is restored into another server or database.
    DumpCleanRestore,
    /// A restore (`psql <`, `psql -f`, `pg_restore -d`) into a database other hosts use.
    RestoreIntoShared,
    Dropdb,
    DropDatabase,
    DropSchemaCascade,
    Truncate,
    /// `docker compose down -v`, `docker volume rm`, ...
    VolumeRemoval,
    /// `prisma migrate reset`, `--force-reset`, `db push --accept-data-loss`.
    SchemaReset,
    /// Restores when a row count falls.
    AutoRestore,
    /// The same script started by two or more mechanisms.
    RedundantStart,
}

impl HazardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HazardKind::DumpCleanRestore => "dump-clean-restore",
            HazardKind::RestoreIntoShared => "restore-into-shared",
            HazardKind::Dropdb => "dropdb",
            HazardKind::DropDatabase => "drop-database",
            HazardKind::DropSchemaCascade => "drop-schema-cascade",
            HazardKind::Truncate => "truncate",
            HazardKind::VolumeRemoval => "volume-removal",
            HazardKind::SchemaReset => "schema-reset",
            HazardKind::AutoRestore => "auto-restore",
            HazardKind::RedundantStart => "redundant-start",
        }
    }
}

/// A dangerous line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hazard {
    pub kind: HazardKind,
    /// The line exactly as written (continuation lines joined with '\n').
    pub evidence: String,
    /// `file:line`, or the unit / crontab / process it came from.
    pub location: String,
    /// Why it is dangerous, naming the databases involved.
    pub detail: String,
}

/// Who is asking: the inventory and the host the text lives on, to map
/// database references and to tell shared databases from private ones.
#[derive(Clone, Copy)]
pub struct ScanCtx<'a> {
    pub inventory: Option<&'a Inventory>,
    pub host: &'a str,
    pub address: Option<&'a str>,
}

impl<'a> ScanCtx<'a> {
    pub fn bare() -> ScanCtx<'static> {
        ScanCtx {
            inventory: None,
            host: "",
            address: None,
        }
    }
    pub fn map(&self, r: &mut DbRef) {
        if let Some(inv) = self.inventory {
            r.inventory = map_to_inventory(r, inv, self.host, self.address);
        }
    }
}

/// What a piece of shell text does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub refs: Vec<DbRef>,
    pub hazards: Vec<Hazard>,
    /// Scripts it runs, with the line that runs them.
    pub scripts: Vec<(String, usize)>,
    /// systemd units it starts (a watchdog), with the line.
    pub units_started: Vec<(String, usize)>,
}

impl Facts {
    pub fn merge(&mut self, o: Facts) {
        for r in o.refs {
            push_ref(&mut self.refs, r);
        }
        for h in o.hazards {
            push_hazard(&mut self.hazards, h);
        }
        self.scripts.extend(o.scripts);
        self.units_started.extend(o.units_started);
    }
}

pub fn push_ref(v: &mut Vec<DbRef>, r: DbRef) {
    if !v.iter().any(|x| x.same_target(&r) && x.role == r.role) {
        v.push(r);
    }
}

pub fn push_hazard(v: &mut Vec<Hazard>, h: Hazard) {
    if !v
        .iter()
        .any(|x| x.kind == h.kind && x.location == h.location && x.evidence == h.evidence)
    {
        v.push(h);
    }
}

struct Pattern {
    kind: HazardKind,
    re: Regex,
    why: &'static str,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |kind, re: &str, why| Regex::new(re).ok().map(|re| Pattern { kind, re, why });
    [
        p(
            HazardKind::Dropdb,
            r#"(?:^|[\s;&|(`"'])dropdb(?:\s|$)"#,
            "drops a whole database",
        ),
        p(
            HazardKind::DropDatabase,
            r"(?i)\bdrop\s+database\b",
            "drops a whole database",
        ),
        p(
            HazardKind::DropSchemaCascade,
            r"(?i)\bdrop\s+schema\b.*\bcascade\b",
            "drops a schema and everything in it",
        ),
        p(
            HazardKind::Truncate,
            r#"(?i)\btruncate\s+(?:table\s+)?(?:only\s+)?["\w$\\]"#,
            "empties tables",
        ),
        p(
            HazardKind::VolumeRemoval,
            r"\b(?:docker[\s-]compose|podman[\s-]compose)\b[^;&|]*\bdown\b[^;&|]*\s(?:-v|--volumes)\b",
            "removes the containers' named volumes (the database files)",
        ),
        p(
            HazardKind::VolumeRemoval,
            r"\b(?:docker|podman)\s+volume\s+(?:rm|remove|prune)\b",
            "removes container volumes (the database files)",
        ),
        p(
            HazardKind::VolumeRemoval,
            r"\b(?:docker|podman)\s+(?:container\s+)?rm\b[^;&|]*\s(?:-v|--volumes)\b",
            "removes containers with their anonymous volumes",
        ),
        p(
            HazardKind::VolumeRemoval,
            r"\b(?:docker|podman)\s+system\s+prune\b[^;&|]*--volumes",
            "prunes every unused volume",
        ),
        p(
            HazardKind::SchemaReset,
            r"\bprisma\s+migrate\s+reset\b",
            "drops and recreates the database from the migrations",
        ),
        p(
            HazardKind::SchemaReset,
            r"--force-reset\b",
            "resets the database before pushing the schema",
        ),
        p(
            HazardKind::SchemaReset,
            r"\bdb\s+push\b[^;&|]*--accept-data-loss\b",
            "applies a schema change that loses data",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
});

static COMPARISON: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r#"\s-(?:lt|le|eq|ne|gt|ge)\s|\s(?:<|<=|>|>=|==|!=)\s|\(\(.*[<>]=?.*\)\)"#).ok()
});

/// One command's effect, after wrappers (sudo, docker exec, sh -c) are peeled.
#[derive(Debug, Clone)]
enum Eff {
    Dump {
        src: DbRef,
        clean: bool,
        file: Option<String>,
    },
    /// Restores into `target`, from `file` or (None) from its stdin.
    Restore {
        target: DbRef,
        file: Option<String>,
    },
    /// pg_restore without -d: writes the archive's SQL to stdout.
    ArchiveToSql {
        file: Option<String>,
    },
    Query,
    Drop,
    /// cat / zcat / gunzip -c FILE.
    Source(String),
    Filter,
    Other,
}

#[derive(Debug, Clone)]
struct DumpFile {
    file: String,
    src: DbRef,
    line: usize,
    evidence: String,
}

#[derive(Debug, Clone)]
struct RestoreEv {
    idx: usize,
    line: usize,
    target: DbRef,
    file: Option<String>,
    evidence: String,
    upstream_dump: Option<(DbRef, bool)>,
}

/// Scans a script (or any shell text) named `origin`.
pub fn scan_text(text: &str, origin: &str, vars: &Vars, ctx: &ScanCtx) -> Facts {
    let lines = shell::logical_lines(text);
    let mut s = Scanner {
        origin,
        ctx,
        facts: Facts::default(),
        dumps: Vec::new(),
        restores: Vec::new(),
        count_vars: HashSet::new(),
        calls: Vec::new(),
    };
    let mut vars = vars.clone();
    for (idx, line) in lines.iter().enumerate() {
        s.patterns(line);
        if line.heredoc {
            continue;
        }
        s.line(idx, line, &line.text, &mut vars, "local", 0);
    }
    s.finish(&lines);
    s.facts
}

/// Scans an argv (a unit's ExecStart, a process's command line).
pub fn scan_argv(argv: &[String], origin: &str, vars: &Vars, ctx: &ScanCtx) -> Facts {
    scan_text(&join_argv(argv), origin, vars, ctx)
}

/// Quotes words so the shell reader splits them back the same way.
pub fn join_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Scanner<'a> {
    origin: &'a str,
    ctx: &'a ScanCtx<'a>,
    facts: Facts,
    dumps: Vec<DumpFile>,
    restores: Vec<RestoreEv>,
    count_vars: HashSet<String>,
    /// (logical line index, first word of each command on it)
    calls: Vec<(usize, String)>,
}

impl Scanner<'_> {
    fn loc(&self, line: usize) -> String {
        format!("{}:{line}", self.origin)
    }

    fn hazard(&mut self, kind: HazardKind, line: usize, evidence: &str, detail: String) {
        let h = Hazard {
            kind,
            evidence: evidence.trim().to_string(),
            location: self.loc(line),
            detail,
        };
        push_hazard(&mut self.facts.hazards, h);
    }

    /// Fixed patterns, matched per physical line so the evidence is that line.
    fn patterns(&mut self, line: &Line) {
        for (k, phys) in line.raw.split('\n').enumerate() {
            let t = phys.trim();
            if t.starts_with('#') {
                continue;
            }
            for p in PATTERNS.iter() {
                if p.re.is_match(t) {
                    self.hazard(p.kind, line.no + k, t, p.why.to_string());
                }
            }
        }
    }

    fn line(
        &mut self,
        idx: usize,
        line: &Line,
        text: &str,
        vars: &mut Vars,
        context: &str,
        depth: usize,
    ) {
        if depth > 4 {
            return;
        }
        let before = self.facts.refs.len();
        self.line_inner(idx, line, text, vars, context, depth);
        let at = self.loc(line.no);
        for r in &mut self.facts.refs[before..] {
            r.evidence.get_or_insert_with(|| at.clone());
        }
    }

    fn line_inner(
        &mut self,
        idx: usize,
        line: &Line,
        text: &str,
        vars: &mut Vars,
        context: &str,
        depth: usize,
    ) {
        let (pipes, subs) = shell::parse(text, vars);
        vars.learn(&pipes);
        for p in &pipes {
            for c in &p.cmds {
                for (k, v) in &c.assigns {
                    let lower = v.to_ascii_lowercase();
                    if (v.contains("$(") || v.contains('`'))
                        && (lower.contains("count(") || lower.contains("wc -l"))
                        || (k.to_ascii_lowercase().contains("count") && v.contains("$("))
                    {
                        self.count_vars.insert(k.clone());
                    }
                }
            }
        }
        for r in urls_in(text) {
            self.add_ref(r, context);
        }
        let mut sub_pipes = Vec::new();
        let mut queue = subs;
        while let Some(sub) = queue.pop() {
            let (p, more) = shell::parse(&sub, vars);
            sub_pipes.extend(p);
            queue.extend(more);
        }
        for p in pipes.iter().chain(sub_pipes.iter()) {
            self.pipeline(idx, line, p, vars, context, depth);
        }
    }

    fn add_ref(&mut self, mut r: DbRef, context: &str) {
        if r.context == "local" {
            r.context = context.to_string();
        }
        self.ctx.map(&mut r);
        push_ref(&mut self.facts.refs, r);
    }

    fn pipeline(
        &mut self,
        idx: usize,
        line: &Line,
        p: &Pipeline,
        vars: &mut Vars,
        context: &str,
        depth: usize,
    ) {
        let n = p.cmds.len();
        let mut effs: Vec<Eff> = Vec::with_capacity(n);
        for (i, cmd) in p.cmds.iter().enumerate() {
            let eff = self.command(idx, line, cmd, i > 0, vars, context, depth);
            effs.push(eff);
        }
        let last_out = p.cmds.last().and_then(|c| c.stdout_file.clone());
        let mut upstream: Option<usize> = None;
        for i in 0..n {
            match &effs[i] {
                Eff::Restore { target, file: None } if i > 0 => {
                    let up = upstream.map(|u| &effs[u]);
                    let (file, dump) = match up {
                        Some(Eff::Dump { src, clean, .. }) => (None, Some((src.clone(), *clean))),
                        Some(Eff::Source(f)) => (Some(f.clone()), None),
                        Some(Eff::ArchiveToSql { file }) => (file.clone(), None),
                        _ => (None, None),
                    };
                    self.restore(idx, line, target.clone(), file, dump);
                }
                Eff::Restore { target, file } => {
                    self.restore(idx, line, target.clone(), file.clone(), None)
                }
                Eff::Dump { src, clean, file } => {
                    let to = file.clone().or_else(|| {
                        effs[i + 1..]
                            .iter()
                            .all(|e| matches!(e, Eff::Filter))
                            .then(|| last_out.clone())
                            .flatten()
                    });
                    if let Some(f) = to
                        && *clean
                    {
                        self.dumps.push(DumpFile {
                            file: f,
                            src: src.clone(),
                            line: line.no,
                            evidence: line.raw.clone(),
                        });
                    }
                    upstream = Some(i);
                }
                Eff::Source(_) | Eff::ArchiveToSql { .. } => upstream = Some(i),
                Eff::Filter => {}
                _ => upstream = None,
            }
        }
    }

    fn restore(
        &mut self,
        idx: usize,
        line: &Line,
        mut target: DbRef,
        file: Option<String>,
        upstream_dump: Option<(DbRef, bool)>,
    ) {
        target.role = DbRole::Restore;
        self.ctx.map(&mut target);
        push_ref(&mut self.facts.refs, target.clone());
        self.restores.push(RestoreEv {
            idx,
            line: line.no,
            target,
            file,
            evidence: line.raw.clone(),
            upstream_dump,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        idx: usize,
        line: &Line,
        cmd: &Cmd,
        piped_in: bool,
        vars: &mut Vars,
        context: &str,
        depth: usize,
    ) -> Eff {
        let mut env: Vec<(String, String)> = cmd.assigns.clone();
        let mut context = context.to_string();
        let mut argv: &[String] = &cmd.argv;
        // Peel wrappers.
        loop {
            let Some(first) = argv.first() else {
                return Eff::Other;
            };
            let prog = basename(first);
            let rest = &argv[1..];
            let skip_opts = |rest: &[String], with_value: &[&str]| -> usize {
                let mut i = 0;
                while i < rest.len() && rest[i].starts_with('-') && rest[i] != "-" {
                    if rest[i] == "--" {
                        return i + 1;
                    }
                    if with_value.contains(&rest[i].as_str()) {
                        i += 1;
                    }
                    i += 1;
                }
                i
            };
            match prog {
                "sudo" | "doas" => {
                    let k = skip_opts(
                        rest,
                        &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"],
                    );
                    argv = &rest[k..];
                }
                "env" => {
                    let mut k = skip_opts(rest, &["-u", "-C", "-S"]);
                    while let Some((a, b)) = rest.get(k).and_then(|w| w.split_once('=')) {
                        env.push((a.to_string(), b.to_string()));
                        k += 1;
                    }
                    argv = &rest[k..];
                }
                "nohup" | "exec" | "time" | "setsid" | "chronic" | "command" | "builtin" => {
                    argv = &rest[skip_opts(rest, &[])..]
                }
                "nice" | "ionice" | "stdbuf" | "chrt" | "taskset" => {
                    argv = &rest[skip_opts(rest, &["-n", "-c", "-p", "-i", "-o", "-e"])..]
                }
                "timeout" => {
                    let k = skip_opts(rest, &["-s", "-k", "--signal", "--kill-after"]);
                    argv = rest.get(k + 1..).unwrap_or(&[]);
                }
                "flock" => {
                    if let Some(p) = rest.iter().position(|w| w == "-c" || w == "--command") {
                        let text = rest.get(p + 1).cloned().unwrap_or_default();
                        self.nested(idx, line, &text, vars, &context, depth);
                        return Eff::Other;
                    }
                    let k = skip_opts(rest, &["-w", "-E", "--timeout", "--conflict-exit-code"]);
                    argv = rest.get(k + 1..).unwrap_or(&[]);
                }
                "runuser" => argv = &rest[skip_opts(rest, &["-u", "-g", "-G"])..],
                "su" => {
                    if let Some(p) = rest.iter().position(|w| w == "-c" || w == "--command") {
                        let text = rest.get(p + 1).cloned().unwrap_or_default();
                        self.nested(idx, line, &text, vars, &context, depth);
                    }
                    return Eff::Other;
                }
                "watch" => {
                    let k = skip_opts(rest, &["-n", "--interval", "-d"]);
                    let text = rest[k..].join(" ");
                    self.nested(idx, line, &text, vars, &context, depth);
                    return Eff::Other;
                }
                "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" => {
                    let mut k = 0;
                    while let Some(w) = rest.get(k).filter(|w| w.starts_with('-')) {
                        if w.starts_with("-") && !w.starts_with("--") && w.contains('c') {
                            let text = rest.get(k + 1).cloned().unwrap_or_default();
                            self.nested(idx, line, &text, vars, &context, depth);
                            return Eff::Other;
                        }
                        k += if w == "-o" || w == "+o" { 2 } else { 1 };
                    }
                    if let Some(script) = rest.get(k) {
                        self.facts.scripts.push((script.clone(), line.no));
                    }
                    return if piped_in { Eff::Filter } else { Eff::Other };
                }
                "python" | "python3" | "perl" | "ruby" | "node" | "php" => {
                    if let Some(s) = rest.iter().find(|w| !w.starts_with('-')) {
                        self.facts.scripts.push((s.clone(), line.no));
                    }
                    return Eff::Other;
                }
                "source" | "." => {
                    if let Some(s) = rest.first() {
                        self.facts.scripts.push((s.clone(), line.no));
                    }
                    return Eff::Other;
                }
                "docker" | "podman" | "docker-compose" | "podman-compose" => {
                    let mut r = rest;
                    if matches!(r.first().map(String::as_str), Some("compose")) {
                        r = &r[1..];
                    }
                    let k = skip_opts(r, &["-f", "--file", "-p", "--project-name", "--env-file"]);
                    r = &r[k..];
                    match r.first().map(String::as_str) {
                        Some("exec") | Some("run") => {
                            let r = &r[1..];
                            let k = skip_opts(
                                r,
                                &[
                                    "-u",
                                    "--user",
                                    "-e",
                                    "--env",
                                    "-w",
                                    "--workdir",
                                    "--name",
                                    "-v",
                                    "--volume",
                                    "--entrypoint",
                                    "--network",
                                ],
                            );
                            let Some(name) = r.get(k) else {
                                return Eff::Other;
                            };
                            context = format!("container:{name}");
                            argv = &r[k + 1..];
                        }
                        _ => return Eff::Other,
                    }
                }
                "kubectl" => {
                    let Some(p) = rest.iter().position(|w| w == "--") else {
                        return Eff::Other;
                    };
                    let pod = rest
                        .iter()
                        .skip(1)
                        .find(|w| !w.starts_with('-'))
                        .cloned()
                        .unwrap_or_default();
                    context = format!("pod:{pod}");
                    argv = &rest[p + 1..];
                }
                "ssh" => {
                    let k = skip_opts(
                        rest,
                        &[
                            "-p", "-i", "-l", "-o", "-F", "-J", "-L", "-R", "-D", "-b", "-c", "-E",
                            "-e", "-I", "-m", "-O", "-Q", "-S", "-W", "-w", "-B",
                        ],
                    );
                    let Some(host) = rest.get(k) else {
                        return Eff::Other;
                    };
                    let host = host.rsplit('@').next().unwrap_or(host);
                    let text = rest[k + 1..].join(" ");
                    if text.is_empty() {
                        return Eff::Other;
                    }
                    let ctx = format!("ssh:{host}");
                    self.nested(idx, line, &text, vars, &ctx, depth);
                    // `... | ssh host 'psql db'`: the remote command reads the pipe.
                    if piped_in && depth < 4 {
                        let (p, _) = shell::parse(&text, vars);
                        if let Some(c) = p.first().and_then(|p| p.cmds.first()) {
                            let e = self.command(idx, line, c, true, vars, &ctx, depth + 1);
                            if matches!(e, Eff::Restore { .. }) {
                                return e;
                            }
                        }
                    }
                    return Eff::Other;
                }
                _ => break,
            }
        }
        let Some(first) = argv.first() else {
            return Eff::Other;
        };
        let prog = basename(first).to_string();
        self.calls.push((idx, prog.clone()));
        let envf = |k: &str| -> Option<String> {
            env.iter()
                .rev()
                .find(|(a, _)| a == k)
                .map(|(_, b)| b.clone())
                .or_else(|| vars.get(k).map(str::to_string))
        };
        if let Some(tool) = PgTool::of(&prog) {
            let a = parse_pg_args(tool, &argv[1..]);
            let t = |role| target_of(tool, &a, &envf, role, &context);
            return match tool {
                PgTool::PgDump | PgTool::PgDumpall => {
                    let mut src = t(DbRole::Dump);
                    self.ctx.map(&mut src);
                    push_ref(&mut self.facts.refs, src.clone());
                    Eff::Dump {
                        src,
                        clean: a.clean,
                        file: a.file.clone().filter(|f| f != "-"),
                    }
                }
                PgTool::PgRestore if a.list => Eff::Other,
                PgTool::PgRestore if a.dbname.is_some() => Eff::Restore {
                    target: t(DbRole::Restore),
                    file: a.positional.first().cloned().or(cmd.stdin_file.clone()),
                },
                PgTool::PgRestore => Eff::ArchiveToSql {
                    file: a.positional.first().cloned(),
                },
                PgTool::Psql => {
                    if let Some(f) = a.file.clone().filter(|f| f != "-") {
                        Eff::Restore {
                            target: t(DbRole::Restore),
                            file: Some(f),
                        }
                    } else if let Some(f) = cmd.stdin_file.clone() {
                        Eff::Restore {
                            target: t(DbRole::Restore),
                            file: Some(f),
                        }
                    } else if piped_in && a.command.is_none() {
                        Eff::Restore {
                            target: t(DbRole::Restore),
                            file: None,
                        }
                    } else {
                        let mut r = t(DbRole::Query);
                        self.ctx.map(&mut r);
                        push_ref(&mut self.facts.refs, r);
                        Eff::Query
                    }
                }
                PgTool::Dropdb => {
                    let mut r = t(DbRole::Drop);
                    self.ctx.map(&mut r);
                    push_ref(&mut self.facts.refs, r);
                    Eff::Drop
                }
                PgTool::Other => {
                    let mut r = t(DbRole::Query);
                    self.ctx.map(&mut r);
                    push_ref(&mut self.facts.refs, r);
                    Eff::Query
                }
            };
        }
        let args = &argv[1..];
        match prog.as_str() {
            "cat" | "zcat" | "bzcat" | "xzcat" | "zstdcat" | "pv" => {
                match args.iter().find(|w| !w.starts_with('-')) {
                    Some(f) => Eff::Source(f.clone()),
                    None => Eff::Filter,
                }
            }
            "gunzip" | "gzip" | "bzip2" | "xz" | "zstd" | "lz4" => {
                let decompress_to_stdout = args.iter().any(|w| {
                    w.starts_with('-') && !w.starts_with("--") && w.contains('c') || w == "--stdout"
                });
                match args.iter().find(|w| !w.starts_with('-')) {
                    Some(f) if decompress_to_stdout => Eff::Source(f.clone()),
                    _ if piped_in || cmd.stdin_file.is_none() => Eff::Filter,
                    _ => Eff::Other,
                }
            }
            "tee" | "sed" | "grep" | "awk" | "head" | "tail" | "iconv" | "mbuffer" | "buffer" => {
                Eff::Filter
            }
            "systemctl" => {
                let verbs = [
                    "start",
                    "restart",
                    "reload-or-restart",
                    "try-restart",
                    "enable",
                ];
                let words: Vec<&String> = args.iter().filter(|w| !w.starts_with('-')).collect();
                if let Some(v) = words.first()
                    && verbs.contains(&v.as_str())
                    && (v.as_str() != "enable" || args.iter().any(|w| w == "--now"))
                {
                    for u in &words[1..] {
                        self.facts.units_started.push((unit_name(u), line.no));
                    }
                }
                Eff::Other
            }
            "service" => {
                if let (Some(u), Some(v)) = (args.first(), args.get(1))
                    && matches!(v.as_str(), "start" | "restart")
                {
                    self.facts.units_started.push((unit_name(u), line.no));
                }
                Eff::Other
            }
            _ => {
                if looks_like_script(first) {
                    self.facts.scripts.push((first.clone(), line.no));
                }
                if piped_in { Eff::Filter } else { Eff::Other }
            }
        }
    }

    fn nested(
        &mut self,
        idx: usize,
        line: &Line,
        text: &str,
        vars: &mut Vars,
        context: &str,
        depth: usize,
    ) {
        let mut v = vars.clone();
        for l in shell::logical_lines(text) {
            self.line(idx, line, &l.text, &mut v, context, depth + 1);
        }
    }

    fn finish(&mut self, lines: &[Line]) {
        let restores = std::mem::take(&mut self.restores);
        let mut flagged_lines: BTreeSet<usize> = BTreeSet::new();
        // A --clean dump piped straight into another database.
        for r in &restores {
            if let Some((src, true)) = &r.upstream_dump
                && !src.same_target(&r.target)
            {
                flagged_lines.insert(r.line);
                self.hazard(
                    HazardKind::DumpCleanRestore,
                    r.line,
                    &r.evidence,
                    format!(
                        "pg_dump --clean of {} is piped into {}: every object there is dropped and replaced by the source, even when the source is empty",
                        src.display(),
                        r.target.display()
                    ),
                );
            }
        }
        // A --clean dump written to a file that the same script restores elsewhere.
        for d in std::mem::take(&mut self.dumps) {
            for r in &restores {
                if let Some(f) = &r.file
                    && same_file(f, &d.file)
                    && !d.src.same_target(&r.target)
                {
                    self.hazard(
                        HazardKind::DumpCleanRestore,
                        d.line,
                        &d.evidence,
                        format!(
                            "pg_dump --clean of {} writes '{}', restored at line {} into {}: every object there is dropped and replaced by the source",
                            d.src.display(),
                            d.file,
                            r.line,
                            r.target.display()
                        ),
                    );
                    flagged_lines.insert(r.line);
                }
            }
        }
        // Restores into a database others use.
        for r in &restores {
            if flagged_lines.contains(&r.line) {
                continue;
            }
            if !r.target.is_local() || r.target.inventory.is_some() {
                let from = r
                    .file
                    .as_ref()
                    .map(|f| format!("'{f}'"))
                    .unwrap_or_else(|| "its input".into());
                self.hazard(
                    HazardKind::RestoreIntoShared,
                    r.line,
                    &r.evidence,
                    format!(
                        "restores {from} into {}, a database other hosts use",
                        r.target.display()
                    ),
                );
            }
        }
        self.auto_restore(lines, &restores);
    }

    /// A count query, a comparison and a restore in one conditional or loop.
    fn auto_restore(&mut self, lines: &[Line], restores: &[RestoreEv]) {
        let Some(cmp) = COMPARISON.as_ref() else {
            return;
        };
        let blocks = blocks(lines);
        // Functions (by name) whose body restores.
        let mut restoring_fns: HashSet<String> = HashSet::new();
        for b in &blocks {
            if let BlockKind::Func(name) = &b.kind
                && restores.iter().any(|r| r.idx > b.start && r.idx <= b.end)
            {
                restoring_fns.insert(name.clone());
            }
        }
        let restore_at = |idx: usize| -> Option<(usize, String)> {
            if let Some(r) = restores.iter().find(|r| r.idx == idx) {
                return Some((r.line, r.target.display()));
            }
            self.calls.iter().find_map(|(i, w)| {
                (*i == idx
                    && (restoring_fns.contains(w) || w.to_ascii_lowercase().contains("restore")))
                .then(|| (lines[idx].no, format!("'{w}'")))
            })
        };
        let mentions_count = |t: &str| {
            t.to_ascii_lowercase().contains("count(")
                || self
                    .count_vars
                    .iter()
                    .any(|v| t.contains(&format!("${v}")) || t.contains(&format!("${{{v}}}")))
        };
        let mut hits = Vec::new();
        for (idx, l) in lines.iter().enumerate() {
            if l.heredoc || !cmp.is_match(&format!(" {} ", l.text)) || !mentions_count(&l.text) {
                continue;
            }
            // The body of the conditional/loop this line opens, or the line itself.
            let end = blocks
                .iter()
                .filter(|b| b.start == idx && !matches!(b.kind, BlockKind::Func(_)))
                .map(|b| b.end)
                .max()
                .unwrap_or(idx);
            if let Some((rline, what)) = (idx..=end).find_map(restore_at) {
                hits.push((l.no, l.raw.clone(), rline, what));
            }
        }
        for (no, raw, rline, what) in hits {
            self.hazard(
                HazardKind::AutoRestore,
                no,
                &raw,
                format!(
                    "a row count decides a restore: when the count falls, line {rline} restores into {what}; an emptied table brings an automatic overwrite"
                ),
            );
        }
    }
}

fn unit_name(u: &str) -> String {
    if u.contains('.') {
        u.to_string()
    } else {
        format!("{u}.service")
    }
}

fn same_file(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        let s = s.trim_matches(['"', '\'']);
        for ext in [".gz", ".bz2", ".xz", ".zst", ".lz4"] {
            if let Some(x) = s.strip_suffix(ext) {
                return x.to_string();
            }
        }
        s.to_string()
    };
    strip(a) == strip(b)
}

/// A command word that names a script file rather than a system program.
pub fn looks_like_script(w: &str) -> bool {
    let script_ext = [".sh", ".bash", ".py", ".pl", ".rb", ".js"]
        .iter()
        .any(|e| w.ends_with(e));
    if script_ext {
        return true;
    }
    if !w.contains('/') || w.contains('$') || w.starts_with("/dev/") || w.starts_with("/proc/") {
        return false;
    }
    let system = [
        "/bin/",
        "/sbin/",
        "/usr/bin/",
        "/usr/sbin/",
        "/usr/lib/",
        "/usr/libexec/",
        "/lib/",
    ];
    !system.iter().any(|d| w.starts_with(d))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockKind {
    If,
    Loop,
    Func(String),
    Brace,
}

#[derive(Debug, Clone)]
struct Block {
    kind: BlockKind,
    /// Logical line indices.
    start: usize,
    end: usize,
}

/// if/fi, while|until/done and function bodies, by logical line index.
fn blocks(lines: &[Line]) -> Vec<Block> {
    use shell::{Op, Tok};
    let mut out = Vec::new();
    let mut stack: Vec<(BlockKind, usize)> = Vec::new();
    for (idx, l) in lines.iter().enumerate() {
        if l.heredoc {
            continue;
        }
        let (toks, _) = shell::tokenize(&l.text);
        let mut at_start = true;
        let mut prev_word: Option<String> = None;
        let mut k = 0;
        while k < toks.len() {
            match &toks[k] {
                Tok::Word(w) if at_start && !w.quoted => {
                    match w.text.as_str() {
                        "if" => stack.push((BlockKind::If, idx)),
                        "while" | "until" | "for" | "select" => stack.push((BlockKind::Loop, idx)),
                        "fi" | "done" => {
                            let want_if = w.text == "fi";
                            if let Some(pos) = stack.iter().rposition(|(b, _)| {
                                if want_if {
                                    *b == BlockKind::If
                                } else {
                                    *b == BlockKind::Loop
                                }
                            }) {
                                let (kind, start) = stack.remove(pos);
                                stack.truncate(pos);
                                out.push(Block {
                                    kind,
                                    start,
                                    end: idx,
                                });
                            }
                        }
                        "{" => {
                            let kind = match prev_word.take() {
                                Some(f) => BlockKind::Func(f),
                                None => BlockKind::Brace,
                            };
                            stack.push((kind, idx));
                        }
                        "}" => {
                            if let Some(pos) = stack.iter().rposition(|(b, _)| {
                                matches!(b, BlockKind::Func(_) | BlockKind::Brace)
                            }) {
                                let (kind, start) = stack.remove(pos);
                                stack.truncate(pos);
                                out.push(Block {
                                    kind,
                                    start,
                                    end: idx,
                                });
                            }
                        }
                        "function" => {
                            if let Some(Tok::Word(n)) = toks.get(k + 1) {
                                prev_word = Some(n.text.trim_end_matches("()").to_string());
                                k += 2;
                                if matches!(toks.get(k), Some(Tok::Op(Op::LParen))) {
                                    k += 2;
                                }
                                continue;
                            }
                        }
                        _ => {
                            // `name() {`
                            if matches!(toks.get(k + 1), Some(Tok::Op(Op::LParen)))
                                && matches!(toks.get(k + 2), Some(Tok::Op(Op::RParen)))
                            {
                                prev_word = Some(w.text.clone());
                                k += 3;
                                continue;
                            }
                        }
                    }
                    at_start = matches!(
                        w.text.as_str(),
                        "then"
                            | "do"
                            | "else"
                            | "elif"
                            | "!"
                            | "{"
                            | "time"
                            | "if"
                            | "while"
                            | "until"
                    );
                }
                Tok::Word(_) => at_start = false,
                Tok::Op(op) => {
                    at_start = matches!(
                        op,
                        Op::Semi | Op::And | Op::Or | Op::Pipe | Op::Amp | Op::LParen | Op::RParen
                    )
                }
            }
            k += 1;
        }
    }
    // Unclosed blocks run to the end.
    for (kind, start) in stack {
        out.push(Block {
            kind,
            start,
            end: lines.len().saturating_sub(1),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn scan(text: &str) -> Facts {
        scan_text(text, "/x.sh", &Vars::new(), &ScanCtx::bare())
    }

    fn kinds(f: &Facts) -> Vec<(HazardKind, String)> {
        f.hazards
            .iter()
            .map(|h| (h.kind, h.location.clone()))
            .collect()
    }

    #[rstest]
    #[case(
        "pg_dump --clean -h localhost app | psql -h db.ext app",
        HazardKind::DumpCleanRestore
    )]
    #[case(
        "pg_dump -c app | gzip | gunzip | psql -h 10.0.0.9 -d app",
        HazardKind::DumpCleanRestore
    )]
    #[case(
        "docker exec app-db pg_dump -U app --clean app | psql -h localhost app",
        HazardKind::DumpCleanRestore
    )]
    #[case(
        "pg_dump -Fc --clean app | pg_restore -d postgres://x@ext/app",
        HazardKind::DumpCleanRestore
    )]
    #[case(
        "psql -h db.ext app < /backups/latest.sql",
        HazardKind::RestoreIntoShared
    )]
    #[case(
        "gunzip -c /b/x.sql.gz | psql -h db.ext app",
        HazardKind::RestoreIntoShared
    )]
    #[case("pg_restore -h db.ext -d app /b/x.dump", HazardKind::RestoreIntoShared)]
    #[case("dropdb -h db.ext app", HazardKind::Dropdb)]
    #[case("psql -c 'DROP DATABASE \"TovPlay\"'", HazardKind::DropDatabase)]
    #[case("psql -c 'drop schema public cascade'", HazardKind::DropSchemaCascade)]
    #[case("psql -c 'TRUNCATE \"User\" CASCADE'", HazardKind::Truncate)]
    #[case("docker compose down -v", HazardKind::VolumeRemoval)]
    #[case(
        "docker-compose -f prod.yml down --volumes --remove-orphans",
        HazardKind::VolumeRemoval
    )]
    #[case("docker volume rm app_pgdata", HazardKind::VolumeRemoval)]
    #[case("npx prisma migrate reset --force", HazardKind::SchemaReset)]
    #[case("npx prisma db push --force-reset", HazardKind::SchemaReset)]
    #[case("pnpm prisma db push --accept-data-loss", HazardKind::SchemaReset)]
    fn flags_one_line(#[case] text: &str, #[case] kind: HazardKind) {
        let f = scan(text);
        let h = f
            .hazards
            .iter()
            .find(|h| h.kind == kind)
            .unwrap_or_else(|| panic!("{kind:?} not found in {:?}", f.hazards));
        assert_eq!(h.evidence, text);
        assert_eq!(h.location, "/x.sh:1");
    }

    #[rstest]
    #[case("pg_dump -Fc app > /b/app.dump")]
    #[case("pg_dump --clean app | psql app")]
    #[case("pg_dump --clean -h localhost app | psql -h 127.0.0.1 -d app")]
    #[case("psql -h db.ext -c 'select count(*) from \"User\"'")]
    #[case("truncate -s 0 /var/log/sync.log")]
    #[case("# pg_dump --clean app | psql -h other app\necho ok")]
    #[case("docker compose down")]
    #[case("pg_restore --list /b/app.dump")]
    #[case("psql app < /tmp/local.sql")]
    fn leaves_harmless_lines(#[case] text: &str) {
        let f = scan(text);
        assert!(f.hazards.is_empty(), "{text}: {:?}", f.hazards);
    }

    #[test]
    fn variables_resolve_hosts_and_files() {
        let t = r#"#!/bin/bash
LOCAL_HOST=localhost
EXTERNAL_HOST=db.example.net
DUMP_FILE="/tmp/sync_$(date +%s).sql"
pg_dump -h "$LOCAL_HOST" -U app --clean --if-exists app -f "$DUMP_FILE"
echo "dumped"
psql -h "${EXTERNAL_HOST}" -U app -d TovPlay -f "$DUMP_FILE"
"#;
        let f = scan(t);
        let h: Vec<_> = kinds(&f);
        assert!(
            h.contains(&(HazardKind::DumpCleanRestore, "/x.sh:5".into())),
            "{:?}",
            f.hazards
        );
        let d = f
            .hazards
            .iter()
            .find(|h| h.kind == HazardKind::DumpCleanRestore)
            .unwrap();
        assert!(d.evidence.starts_with("pg_dump -h \"$LOCAL_HOST\""));
        assert!(d.detail.contains("line 7"), "{}", d.detail);
        assert!(
            d.detail.contains("db.example.net:5432/TovPlay"),
            "{}",
            d.detail
        );
        let targets: Vec<String> = f.refs.iter().map(|r| r.display()).collect();
        assert!(
            targets.contains(&"db.example.net:5432/TovPlay".to_string()),
            "{targets:?}"
        );
        assert!(
            targets.contains(&"localhost:5432/app".to_string()),
            "{targets:?}"
        );
    }

    #[test]
    fn auto_restore_loop_is_found() {
        let t = r#"#!/bin/bash
# ultimate protection
restore_latest() {
  latest=$(ls -t /opt/backups/*.sql | head -1)
  psql -h db.ext -U app -d TovPlay < "$latest"
}
while true; do
  USERS=$(psql -h db.ext -U app -d TovPlay -tAc 'SELECT COUNT(*) FROM "User"')
  if [ "$USERS" -lt 5 ]; then
    echo "users gone, restoring"
    restore_latest
  fi
  sleep 2
done
"#;
        let f = scan(t);
        let a = f
            .hazards
            .iter()
            .find(|h| h.kind == HazardKind::AutoRestore)
            .unwrap_or_else(|| panic!("{:?}", f.hazards));
        assert_eq!(a.location, "/x.sh:9");
        assert_eq!(a.evidence, "if [ \"$USERS\" -lt 5 ]; then");
        assert!(kinds(&f).contains(&(HazardKind::RestoreIntoShared, "/x.sh:5".into())));
    }

    #[test]
    fn one_line_auto_restore() {
        let f = scan("[ $(psql -tAc 'select count(*) from t') -eq 0 ] && /opt/restore_latest.sh\n");
        assert!(
            kinds(&f).contains(&(HazardKind::AutoRestore, "/x.sh:1".into())),
            "{:?}",
            f.hazards
        );
        assert_eq!(f.scripts, vec![("/opt/restore_latest.sh".to_string(), 1)]);
    }

    #[test]
    fn a_count_check_without_restore_is_no_hazard() {
        let f = scan(
            "N=$(psql -tAc 'select count(*) from t')\nif [ \"$N\" -lt 5 ]; then\n  echo low | mail ops\nfi\n",
        );
        assert!(f.hazards.is_empty(), "{:?}", f.hazards);
    }

    #[test]
    fn scripts_and_units_started() {
        let t = "if ! systemctl is-active --quiet db-realtime-sync; then\n  systemctl restart db-realtime-sync\nfi\nnohup /usr/local/bin/db_realtime_sync.sh >/dev/null 2>&1 &\nbash -c 'cd /opt && ./run.sh'\n/usr/bin/python3 /opt/job.py --x\n";
        let f = scan(t);
        assert_eq!(
            f.units_started,
            vec![("db-realtime-sync.service".to_string(), 2)]
        );
        let s: Vec<&str> = f.scripts.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            s,
            vec![
                "/usr/local/bin/db_realtime_sync.sh",
                "./run.sh",
                "/opt/job.py"
            ]
        );
    }

    #[test]
    fn heredoc_sql_is_scanned_and_multiline_strings_point_at_their_line() {
        let t = "psql -h db.ext app <<'SQL'\nBEGIN;\nDROP SCHEMA public CASCADE;\nSQL\npsql -c \"\n  TRUNCATE \\\"User\\\";\n\"\n";
        let f = scan(t);
        assert_eq!(
            kinds(&f),
            vec![
                (HazardKind::DropSchemaCascade, "/x.sh:3".into()),
                (HazardKind::Truncate, "/x.sh:6".into()),
            ]
        );
    }

    #[test]
    fn ssh_and_sudo_wrappers() {
        let f = scan("sudo -u postgres pg_dump --clean app | ssh backup@db2 'psql app'\n");
        assert!(
            kinds(&f).contains(&(HazardKind::DumpCleanRestore, "/x.sh:1".into())),
            "{:?}",
            f
        );
    }

    #[test]
    fn join_argv_round_trips() {
        let argv: Vec<String> = ["/bin/bash", "-c", "while true; do x 'a b'; done"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (p, _) = shell::parse(&join_argv(&argv), &Vars::new());
        assert_eq!(p[0].cmds[0].argv, argv);
    }
}
#[cfg(test)]
mod fixture_tests {
    use super::*;

    #[test]
    fn incident_one_sync_script() {
        let t = include_str!("../../tests/it/fixtures/probe/db_realtime_sync.sh");
        let f = scan_text(t, "/s.sh", &Vars::new(), &ScanCtx::bare());
        let h = f
            .hazards
            .iter()
            .find(|h| h.kind == HazardKind::DumpCleanRestore)
            .unwrap();
        assert!(
            h.detail
                .contains("of localhost:5432/app is piped into db.example.net:5432/TovPlay"),
            "{}",
            h.detail
        );
    }
}
