//! Which databases a command reaches: PostgreSQL client options (`-h -p -d
//! -U`, `--dbname=URL`), `PG*` variables, `postgres://` URLs and conninfo
//! strings, mapped to inventory databases. Passwords are never kept.

use serde::{Deserialize, Serialize};

use crate::inventory::{Inventory, PgUrl, url};

/// What a command does with a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DbRole {
    /// Reads it whole (pg_dump).
    Dump,
    /// Writes a dump into it (psql < file, pg_restore -d).
    Restore,
    /// Runs statements (psql -c, a URL in a program's arguments).
    Query,
    /// Drops it (dropdb).
    Drop,
    /// Named by the inventory's `[[service]] databases`.
    Declared,
}

/// A database named by a command line or script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbRef {
    /// Host as written (after variable expansion); None = the client default (local socket).
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
    pub user: Option<String>,
    pub role: DbRole,
    /// Where a host-less name resolves: `local`, `container:NAME` or `ssh:HOST`.
    pub context: String,
    /// The inventory database it maps to.
    pub inventory: Option<String>,
    /// Where it was read: `file:line`, `arguments of pid N`, or an
    /// environment variable of a process (never its value when secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

impl DbRef {
    pub fn new(role: DbRole) -> Self {
        DbRef {
            host: None,
            port: None,
            dbname: None,
            user: None,
            role,
            context: "local".into(),
            inventory: None,
            evidence: None,
        }
    }

    /// `host:port` as a comparable key: every spelling of "this machine"
    /// (no host, localhost, 127.0.0.1, ::1, a socket directory) is the context.
    pub fn server_key(&self) -> String {
        let port = self.port.unwrap_or(5432);
        match self.host.as_deref() {
            Some(h) if !is_local_host(h) => format!("{h}:{port}"),
            _ => format!("{}:{port}", self.context),
        }
    }

    /// True when the server is on the probed machine itself.
    pub fn is_local(&self) -> bool {
        self.context == "local" && self.host.as_deref().is_none_or(is_local_host)
    }

    /// `host:port/db` for people.
    pub fn display(&self) -> String {
        let host = match self.host.as_deref() {
            Some(h) => h.to_string(),
            None if self.context == "local" => "localhost".into(),
            None => self.context.clone(),
        };
        let db = self.dbname.as_deref().unwrap_or("?");
        let mut s = format!("{host}:{}/{db}", self.port.unwrap_or(5432));
        if let Some(i) = &self.inventory {
            s.push_str(&format!(" (inventory '{i}')"));
        }
        s
    }

    /// Same server and database (roles aside).
    pub fn same_target(&self, o: &DbRef) -> bool {
        self.server_key() == o.server_key() && self.dbname == o.dbname
    }
}

pub fn is_local_host(h: &str) -> bool {
    h.is_empty() || h == "localhost" || h == "127.0.0.1" || h == "::1" || h.starts_with('/')
}

/// The PostgreSQL client programs the scanner understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTool {
    PgDump,
    PgDumpall,
    PgRestore,
    Psql,
    Dropdb,
    Other,
}

impl PgTool {
    pub fn of(prog: &str) -> Option<PgTool> {
        Some(match prog {
            "pg_dump" => PgTool::PgDump,
            "pg_dumpall" => PgTool::PgDumpall,
            "pg_restore" => PgTool::PgRestore,
            "psql" => PgTool::Psql,
            "dropdb" => PgTool::Dropdb,
            "createdb" | "vacuumdb" | "reindexdb" | "clusterdb" | "pg_isready"
            | "pg_basebackup" | "pg_amcheck" => PgTool::Other,
            _ => return None,
        })
    }

    /// getopt short options; a letter followed by ':' takes a value.
    fn short_spec(self) -> &'static str {
        match self {
            PgTool::PgDump => "abBcCd:e:E:f:F:h:j:n:N:Op:RsS:t:T:U:vwWxZ:",
            PgTool::PgDumpall => "acd:E:f:gh:l:Op:rsS:tU:vwWx",
            PgTool::PgRestore => "acCd:ef:F:h:I:j:lL:n:N:Op:P:RsS:t:T:U:vwWx1",
            PgTool::Psql => "aAbc:d:eEf:F:h:HlL:no:p:P:qR:sStT:U:v:VwWxXz01",
            PgTool::Dropdb => "eh:ip:U:wW",
            PgTool::Other => "d:h:p:U:D:t:S:j:",
        }
    }
}

/// Long options taking a value (in `--opt value` form) across the tools.
const LONG_WITH_VALUE: &[&str] = &[
    "dbname",
    "host",
    "port",
    "username",
    "file",
    "format",
    "jobs",
    "schema",
    "exclude-schema",
    "table",
    "exclude-table",
    "compress",
    "encoding",
    "role",
    "section",
    "lock-wait-timeout",
    "superuser",
    "exclude-table-data",
    "extra-float-digits",
    "rows-per-insert",
    "snapshot",
    "command",
    "output",
    "log-file",
    "set",
    "variable",
    "pset",
    "use-list",
    "index",
    "function",
    "trigger",
    "maintenance-db",
    "filter",
    "field-separator",
    "record-separator",
    "table-attr",
    "extension",
    "database",
    "pgdata",
];

/// A parsed PostgreSQL client invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgArgs {
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub file: Option<String>,
    pub format: Option<String>,
    pub command: Option<String>,
    pub clean: bool,
    pub list: bool,
    pub positional: Vec<String>,
}

/// Parses the arguments (without the program word) like the tool's getopt would.
pub fn parse_pg_args(tool: PgTool, args: &[String]) -> PgArgs {
    let spec = tool.short_spec();
    let takes = |c: char| {
        spec.find(c)
            .is_some_and(|i| spec[i + c.len_utf8()..].starts_with(':'))
    };
    let mut a = PgArgs::default();
    let set = |a: &mut PgArgs, key: &str, v: String| match key {
        "h" | "host" => a.host = Some(v),
        "p" | "port" => a.port = Some(v),
        "U" | "username" => a.user = Some(v),
        "d" | "dbname" | "maintenance-db" => a.dbname = Some(v),
        "f" | "file" => a.file = Some(v),
        "F" | "format" => a.format = Some(v),
        "c" | "command" if tool == PgTool::Psql => a.command = Some(v),
        _ => {}
    };
    let mut i = 0;
    let mut only_positional = false;
    while i < args.len() {
        let w = &args[i];
        i += 1;
        if only_positional || w == "-" || !w.starts_with('-') {
            a.positional.push(w.clone());
            continue;
        }
        if w == "--" {
            only_positional = true;
            continue;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (name, val) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match name {
                "clean" => a.clean = true,
                "list" => a.list = true,
                _ => {}
            }
            let val = match val {
                Some(v) => Some(v),
                None if LONG_WITH_VALUE.contains(&name) => {
                    i += 1;
                    args.get(i - 1).cloned()
                }
                None => None,
            };
            if let Some(v) = val {
                set(&mut a, name, v);
            }
            continue;
        }
        let chars: Vec<char> = w[1..].chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            if takes(c) {
                let v: String = chars[j..].iter().collect();
                let v = if v.is_empty() {
                    i += 1;
                    args.get(i - 1).cloned().unwrap_or_default()
                } else {
                    v
                };
                set(&mut a, &c.to_string(), v);
                break;
            }
            match (c, tool) {
                ('c', PgTool::PgDump | PgTool::PgDumpall | PgTool::PgRestore) => a.clean = true,
                ('l', PgTool::PgRestore) => a.list = true,
                _ => {}
            }
        }
    }
    a
}

/// Where the tool connects, from its arguments, its environment and the context.
pub fn target_of(
    tool: PgTool,
    a: &PgArgs,
    env: &dyn Fn(&str) -> Option<String>,
    role: DbRole,
    context: &str,
) -> DbRef {
    let mut r = DbRef::new(role);
    r.context = context.to_string();
    r.host = env("PGHOST");
    r.port = env("PGPORT").and_then(|p| p.parse().ok());
    r.user = env("PGUSER");
    r.dbname = env("PGDATABASE");
    if let Some(h) = &a.host {
        r.host = Some(h.clone());
    }
    if let Some(p) = a.port.as_ref().and_then(|p| p.parse().ok()) {
        r.port = Some(p);
    }
    if let Some(u) = &a.user {
        r.user = Some(u.clone());
    }
    // The database name: -d (which may be a URL or conninfo), else a positional.
    let db = a.dbname.clone().or_else(|| match tool {
        PgTool::PgRestore => None,
        _ => a.positional.first().cloned(),
    });
    if let Some(d) = db {
        if let Some(u) = parse_conn(&d) {
            merge(&mut r, &u);
        } else {
            r.dbname = Some(d);
        }
    }
    if tool == PgTool::Psql && a.user.is_none() && a.dbname.is_some() {
        if let Some(u) = a.positional.first() {
            r.user = Some(u.clone());
        }
    } else if tool == PgTool::Psql && a.positional.len() > 1 && a.user.is_none() {
        r.user = Some(a.positional[1].clone());
    }
    r
}

fn merge(r: &mut DbRef, u: &DbRef) {
    if u.host.is_some() {
        r.host = u.host.clone();
    }
    if u.port.is_some() {
        r.port = u.port;
    }
    if u.dbname.is_some() {
        r.dbname = u.dbname.clone();
    }
    if u.user.is_some() {
        r.user = u.user.clone();
    }
}

/// A `postgres://` URL or a `key=value` conninfo string, password dropped.
pub fn parse_conn(s: &str) -> Option<DbRef> {
    let s = s.trim();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return Some(match url::parse(s) {
            Ok(u) => from_url(&u),
            Err(_) => loose_url(s),
        });
    }
    if s.contains('=') && (s.contains("host=") || s.contains("dbname=")) {
        let mut r = DbRef::new(DbRole::Query);
        for pair in s.split_whitespace() {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let v = v.trim_matches(['\'', '"']).to_string();
            match k {
                "host" | "hostaddr" => r.host = Some(v),
                "port" => r.port = v.parse().ok(),
                "dbname" => r.dbname = Some(v),
                "user" => r.user = Some(v),
                _ => {}
            }
        }
        return Some(r);
    }
    None
}

fn from_url(u: &PgUrl) -> DbRef {
    let mut r = DbRef::new(DbRole::Query);
    r.host = Some(u.host.clone());
    r.port = Some(u.port);
    r.dbname = Some(u.dbname.clone());
    r.user = u.user.clone();
    r
}

/// A URL the strict parser refused (variables in it, no database): take what is there.
fn loose_url(s: &str) -> DbRef {
    let mut r = DbRef::new(DbRole::Query);
    let rest = s.split_once("://").map(|x| x.1).unwrap_or(s);
    let (main, _) = rest.split_once('?').unwrap_or((rest, ""));
    let (auth, db) = main.split_once('/').unwrap_or((main, ""));
    let hostport = match auth.rsplit_once('@') {
        Some((ui, hp)) => {
            r.user = Some(ui.split(':').next().unwrap_or("").to_string()).filter(|u| !u.is_empty());
            hp
        }
        None => auth,
    };
    match hostport.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => {
            r.host = Some(h.to_string());
            r.port = p.parse().ok();
        }
        _ => r.host = Some(hostport.to_string()).filter(|h| !h.is_empty()),
    }
    r.dbname = Some(db.to_string()).filter(|d| !d.is_empty());
    r
}

/// Every `postgres://` URL inside a piece of text (e.g. `DATABASE_URL=...`).
pub fn urls_in(text: &str) -> Vec<DbRef> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(p) = rest.find("postgres") {
        let cand = &rest[p..];
        if cand.starts_with("postgres://") || cand.starts_with("postgresql://") {
            let end = cand
                .find(|c: char| c.is_whitespace() || "'\"`;|<>()".contains(c))
                .unwrap_or(cand.len());
            if let Some(r) = parse_conn(&cand[..end]) {
                out.push(r);
            }
            rest = &cand[end..];
        } else {
            rest = &cand[8..];
        }
    }
    out
}

/// Maps a reference to the inventory database it names, if any. `host_name`
/// is the inventory host the command runs on, `host_address` its address.
pub fn map_to_inventory(
    r: &DbRef,
    inv: &Inventory,
    host_name: &str,
    host_address: Option<&str>,
) -> Option<String> {
    let port = r.port.unwrap_or(5432);
    let mut candidates = inv.databases.iter().filter_map(|d| {
        let u = d.pg_url()?;
        if u.port != port {
            return None;
        }
        let same_host = match r.host.as_deref() {
            Some(h) if !is_local_host(h) => {
                h.eq_ignore_ascii_case(&u.host)
                    || (is_local_host(&u.host)
                        && d.host.as_ref().is_some_and(|dh| {
                            inv.host(dh.get_ref())
                                .and_then(|hs| hs.socket_address())
                                .is_some_and(|(a, _)| a.eq_ignore_ascii_case(h))
                        }))
            }
            _ if r.context != "local" => false,
            _ => {
                // A local name on this host reaches a database the inventory places here.
                d.host.as_ref().is_some_and(|dh| dh.get_ref() == host_name)
                    || host_address.is_some_and(|a| a.eq_ignore_ascii_case(&u.host))
                    || (is_local_host(&u.host)
                        && d.host.is_none()
                        && inv
                            .host(host_name)
                            .is_some_and(|h| h.transport == crate::inventory::TransportKind::Local))
            }
        };
        same_host.then_some((d.name().to_string(), u.dbname.clone()))
    });
    match &r.dbname {
        Some(db) => candidates.find(|(_, d)| d == db).map(|(n, _)| n),
        None => {
            let all: Vec<_> = candidates.collect();
            (all.len() == 1).then(|| all[0].0.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn v(s: &str) -> Vec<String> {
        crate::probe::shell::tokenize(s)
            .0
            .into_iter()
            .filter_map(|t| match t {
                crate::probe::shell::Tok::Word(w) => Some(w.text),
                _ => None,
            })
            .collect()
    }

    #[rstest]
    #[case(
        PgTool::PgDump,
        "-Fc -h db1 -U app app",
        false,
        Some("db1"),
        Some("app"),
        Some("c")
    )]
    #[case(
        PgTool::PgDump,
        "--clean --if-exists -hlocalhost -p 5433 app",
        true,
        Some("localhost"),
        Some("app"),
        None
    )]
    #[case(PgTool::PgDump, "-cO -d app", true, None, Some("app"), None)]
    #[case(
        PgTool::PgDump,
        "--format=custom --host ext --dbname=TovPlay",
        false,
        Some("ext"),
        Some("TovPlay"),
        Some("custom")
    )]
    #[case(
        PgTool::PgRestore,
        "-c -d app -h ext dump.custom",
        true,
        Some("ext"),
        Some("app"),
        None
    )]
    #[case(
        PgTool::Psql,
        "-h ext -c 'select 1' app",
        false,
        Some("ext"),
        Some("app"),
        None
    )]
    fn parses_client_options(
        #[case] tool: PgTool,
        #[case] args: &str,
        #[case] clean: bool,
        #[case] host: Option<&str>,
        #[case] db: Option<&str>,
        #[case] format: Option<&str>,
    ) {
        let a = parse_pg_args(tool, &v(args));
        assert_eq!(a.clean, clean, "{args}");
        assert_eq!(a.host.as_deref(), host, "{args}");
        assert_eq!(a.format.as_deref(), format, "{args}");
        let r = target_of(tool, &a, &|_| None, DbRole::Query, "local");
        assert_eq!(r.dbname.as_deref(), db, "{args}");
    }

    #[test]
    fn psql_command_is_not_clean() {
        let a = parse_pg_args(PgTool::Psql, &v("-c 'drop table x'"));
        assert!(!a.clean);
        assert_eq!(a.command.as_deref(), Some("drop table x"));
    }

    #[rstest]
    #[case(
        "postgres://app:secret@db.ext:6432/TovPlay?sslmode=require",
        Some("db.ext"),
        Some(6432),
        Some("TovPlay")
    )]
    #[case("postgresql://u@$EXT_HOST/app", Some("$EXT_HOST"), None, Some("app"))]
    #[case(
        "host=10.0.0.5 port=5433 dbname=main user=x",
        Some("10.0.0.5"),
        Some(5433),
        Some("main")
    )]
    fn parses_connection_strings(
        #[case] s: &str,
        #[case] host: Option<&str>,
        #[case] port: Option<u16>,
        #[case] db: Option<&str>,
    ) {
        let r = parse_conn(s).unwrap();
        assert_eq!(r.host.as_deref(), host);
        assert_eq!(
            r.port.or(port).is_some(),
            port.is_some() || r.port.is_some()
        );
        if port.is_some() {
            assert_eq!(r.port, port);
        }
        assert_eq!(r.dbname.as_deref(), db);
        let shown = format!("{r:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn env_and_urls() {
        let a = parse_pg_args(PgTool::Psql, &v("-d postgres://x@h2:5/db2"));
        let env = |k: &str| (k == "PGHOST").then(|| "ignored".to_string());
        let r = target_of(PgTool::Psql, &a, &env, DbRole::Restore, "local");
        assert_eq!(r.server_key(), "h2:5");
        let a = parse_pg_args(PgTool::Psql, &v("app"));
        let r = target_of(PgTool::Psql, &a, &env, DbRole::Restore, "local");
        assert_eq!(r.server_key(), "ignored:5432");
        let u = urls_in("DATABASE_URL=postgres://a:pw@h:1/d other postgresql://q@r/s\"");
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].dbname.as_deref(), Some("s"));
    }

    #[test]
    fn local_spellings_share_a_key() {
        let mut a = DbRef::new(DbRole::Dump);
        let mut b = DbRef::new(DbRole::Restore);
        b.host = Some("127.0.0.1".into());
        assert_eq!(a.server_key(), b.server_key());
        a.context = "container:db".into();
        assert_ne!(a.server_key(), b.server_key());
        assert!(!a.is_local());
    }

    #[test]
    fn maps_to_inventory() {
        let inv = Inventory::parse(
            r#"
[[host]]
name = "prod"
address = "app.example.net"
[[host]]
name = "me"
transport = "local"
[[database]]
name = "main"
url = "postgres://app@db.example.net:5432/TovPlay"
[[database]]
name = "local-app"
url = "postgres://app@localhost:5432/app"
host = "prod"
"#,
            "t.toml",
        )
        .unwrap();
        let mut r = DbRef::new(DbRole::Restore);
        r.host = Some("db.example.net".into());
        r.dbname = Some("TovPlay".into());
        assert_eq!(
            map_to_inventory(&r, &inv, "prod", None).as_deref(),
            Some("main")
        );
        r.dbname = Some("tovplay".into());
        assert_eq!(
            map_to_inventory(&r, &inv, "prod", None),
            None,
            "names are case-sensitive"
        );
        let mut l = DbRef::new(DbRole::Dump);
        l.dbname = Some("app".into());
        assert_eq!(
            map_to_inventory(&l, &inv, "prod", None).as_deref(),
            Some("local-app")
        );
        assert_eq!(map_to_inventory(&l, &inv, "me", None), None);
    }
}
