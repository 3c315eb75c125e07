//! `lifeline init`: a commented starter inventory from ~/.ssh/config,
//! known_hosts, ~/.pgpass, PG* variables and local sockets. Never writes a
//! secret (passwords referenced, never read), never overwrites without --force.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::inventory::pgpass_fields;

pub mod remote;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("'{0}' exists: pass --force to replace it (nothing was written)")]
    Exists(PathBuf),
    #[error("no host '{name}' in ~/.ssh/config (or 'local'); hosts found: {known}")]
    UnknownHost { name: String, known: String },
    #[error("cannot look on host '{host}': {why}")]
    Remote { host: String, why: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the starter inventory does not parse (a bug in init):\n{0}")]
    Starter(String),
    #[error("cannot write '{path}': {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl InitError {
    pub fn exit_code(&self) -> u8 {
        match self {
            InitError::Exists(_) | InitError::UnknownHost { .. } => 2,
            _ => 1,
        }
    }
}

/// Where `init` looks.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The home directory holding .ssh/ and .pgpass.
    pub home: Option<PathBuf>,
    /// `PGPASSFILE`, `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD` (presence only).
    pub env: Vec<(String, String)>,
    /// Directories holding PostgreSQL sockets (`.s.PGSQL.<port>`).
    pub socket_dirs: Vec<PathBuf>,
    /// Write the `local` host even when no database needs it (`--host local`).
    pub local_host: bool,
}

impl Sources {
    /// This machine: $HOME, the PG* variables, /var/run/postgresql.
    pub fn from_env(socket_dirs: Vec<PathBuf>) -> Sources {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("PG"))
            .collect();
        Sources {
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            env,
            socket_dirs: if socket_dirs.is_empty() {
                vec![PathBuf::from("/var/run/postgresql")]
            } else {
                socket_dirs
            },
            local_host: false,
        }
    }

    fn var(&self, k: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// A host from ~/.ssh/config.
#[derive(Debug, Clone, PartialEq)]
struct SshHost {
    alias: String,
    hostname: Option<String>,
    port: Option<String>,
    user: Option<String>,
    identity: Option<String>,
    line: usize,
}

/// `Host` blocks without patterns (`*`, `?`, `!`), first value wins like ssh.
fn ssh_config(text: &str) -> Vec<SshHost> {
    let mut hosts: Vec<SshHost> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                    .trim()
                    .trim_matches('"')
                    .to_string(),
            ),
            None => continue,
        };
        match key.as_str() {
            "host" => {
                current.clear();
                for alias in value.split_whitespace() {
                    if alias.contains(['*', '?', '!']) {
                        continue;
                    }
                    current.push(hosts.len());
                    hosts.push(SshHost {
                        alias: alias.to_string(),
                        hostname: None,
                        port: None,
                        user: None,
                        identity: None,
                        line: i + 1,
                    });
                }
            }
            "match" => current.clear(),
            k => {
                for &h in &current {
                    let h = &mut hosts[h];
                    let slot = match k {
                        "hostname" => &mut h.hostname,
                        "port" => &mut h.port,
                        "user" => &mut h.user,
                        "identityfile" => &mut h.identity,
                        _ => continue,
                    };
                    if slot.is_none() {
                        *slot = Some(value.clone());
                    }
                }
            }
        }
    }
    hosts
}

/// Plain (not hashed) host names in known_hosts, `[host]:port` kept whole.
fn known_hosts(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('|')
            || line.starts_with('@')
        {
            continue;
        }
        if let Some(names) = line.split_whitespace().next() {
            for n in names.split(',') {
                if !n.is_empty() && !n.contains(['*', '?', '!']) && !out.iter().any(|o| o == n) {
                    out.push(n.to_string());
                }
            }
        }
    }
    out
}

/// A database found somewhere, with where it was seen.
#[derive(Debug, Clone)]
struct FoundDb {
    host: String,
    port: String,
    dbname: Option<String>,
    user: Option<String>,
    /// A socket directory (the URL's `?host=`).
    socket: Option<String>,
    password_env: Option<String>,
    seen: String,
}

/// A TOML basic string: quoted and escaped by the toml crate.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Text safe inside a `#` comment: one line, no control characters.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// An inventory name from `s` (letters, digits, '-', '_', '.'), unique in `taken`.
fn name_for(s: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    base = base.trim_matches('-').to_string();
    if base.is_empty() {
        base = "db".into();
    }
    let mut name = base.clone();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{base}-{k}");
        k += 1;
    }
    taken.insert(name.clone());
    name
}

/// Percent-encodes what would break a URL's user, host or path part.
fn url_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What `init` found, and the inventory text it writes.
#[derive(Debug, Clone, Default)]
pub struct Starter {
    pub text: String,
    pub hosts: usize,
    pub databases: usize,
    pub catalogs: usize,
    /// What the operator must fill in (also in the file, as comments).
    pub todo: Vec<String>,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Builds the starter inventory from `src`, with what `--host` found on
/// each named host (`remote`). Reads no password.
pub fn starter(src: &Sources, remote: &[(String, remote::Found)]) -> Starter {
    let home = src.home.clone();
    let in_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
    let ssh = in_home(".ssh/config")
        .and_then(|p| read(&p))
        .map(|t| ssh_config(&t))
        .unwrap_or_default();
    let known = in_home(".ssh/known_hosts")
        .and_then(|p| read(&p))
        .map(|t| known_hosts(&t))
        .unwrap_or_default();
    let pgpass_path = src
        .var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| in_home(".pgpass"));

    let mut dbs: Vec<FoundDb> = Vec::new();
    let mut todo: Vec<String> = Vec::new();
    if let Some(p) = &pgpass_path
        && let Some(text) = read(p)
    {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            // Fields 0-3 only: the password (field 4) is never looked at.
            let f = pgpass_fields(line);
            if f.len() < 5 {
                continue;
            }
            let seen = format!("{}:{}", p.display(), i + 1);
            let wild = |s: &str| (s != "*" && !s.is_empty()).then(|| s.to_string());
            let host = wild(&f[0]).unwrap_or_else(|| "localhost".into());
            let port = wild(&f[1]).unwrap_or_else(|| "5432".into());
            let dbname = wild(&f[2]);
            if dbname.is_none() {
                todo.push(format!(
                    "{seen}: matches any database on {host}:{port}: write its name in the url"
                ));
            }
            dbs.push(FoundDb {
                host,
                port,
                dbname,
                user: wild(&f[3]),
                socket: None,
                password_env: None,
                seen: format!("{seen} (its password is used from there)"),
            });
        }
    }
    if src.var("PGHOST").is_some() || src.var("PGDATABASE").is_some() {
        let host = src.var("PGHOST").unwrap_or("localhost").to_string();
        let (host, socket) = if host.starts_with('/') {
            ("localhost".to_string(), Some(host))
        } else {
            (host, None)
        };
        dbs.push(FoundDb {
            host,
            port: src.var("PGPORT").unwrap_or("5432").to_string(),
            dbname: src.var("PGDATABASE").map(str::to_string),
            user: src.var("PGUSER").map(str::to_string),
            socket,
            password_env: src.var("PGPASSWORD").map(|_| "PGPASSWORD".to_string()),
            seen: "the PG* environment variables".into(),
        });
    }
    for d in &src.socket_dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        let mut ports: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let n = e.file_name().to_str()?.to_string();
                let p = n.strip_prefix(".s.PGSQL.")?;
                (!p.contains('.') && p.parse::<u16>().is_ok()).then(|| p.to_string())
            })
            .collect();
        ports.sort();
        for port in ports {
            dbs.push(FoundDb {
                host: "localhost".into(),
                port: port.clone(),
                dbname: Some("postgres".into()),
                user: Some("postgres".into()),
                socket: Some(d.display().to_string()),
                password_env: None,
                seen: format!("socket {}/.s.PGSQL.{port}", d.display()),
            });
        }
    }

    let mut out = String::new();
    out.push_str(
        "# Starter inventory written by 'lifeline init': check every entry, then\n\
         # run 'lifeline check' and 'lifeline status'. No password is in this file:\n\
         # databases use ~/.pgpass, password_env or password_file (README, 'Inventory').\n\n",
    );
    let mut taken = BTreeSet::new();
    let mut host_names = 0;
    let local_needed = src.local_host || dbs.iter().any(|d| is_local(&d.host));
    if local_needed {
        let n = name_for("local", &mut taken);
        out.push_str(&format!(
            "# This machine (local sockets, localhost).\n[[host]]\nname = {}\ntransport = \"local\"\n\n",
            q(&n)
        ));
        host_names += 1;
    }
    let mut ssh_names: Vec<(String, String)> = Vec::new();
    for h in &ssh {
        let n = name_for(&h.alias, &mut taken);
        let addr = h.hostname.clone().unwrap_or_else(|| h.alias.clone());
        let address = match &h.port {
            Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
            Some(p) => format!("{addr}:{p}"),
            None => addr.clone(),
        };
        out.push_str(&format!(
            "# ~/.ssh/config line {}: Host {}\n[[host]]\nname = {}\naddress = {}\n",
            h.line,
            comment(&h.alias),
            q(&n),
            q(&address)
        ));
        if let Some(u) = &h.user {
            out.push_str(&format!("user = {}\n", q(u)));
        }
        match &h.identity {
            Some(i) => out.push_str(&format!("identity = {}\n", q(i))),
            None => out.push_str("agent = true    # or identity = \"~/.ssh/id_ed25519\"\n"),
        }
        out.push('\n');
        ssh_names.push((addr, n.clone()));
        ssh_names.push((h.alias.clone(), n));
        host_names += 1;
    }
    let extra: Vec<&String> = known
        .iter()
        .filter(|k| {
            !ssh.iter()
                .any(|h| &h.alias == *k || h.hostname.as_ref() == Some(*k))
        })
        .collect();
    if !extra.is_empty() {
        out.push_str(
            "# Also in ~/.ssh/known_hosts (not in ~/.ssh/config): uncomment the ones\n\
             # lifeline should reach and give each a user.\n",
        );
        for k in extra {
            out.push_str(&format!(
                "# [[host]]\n# name = {}\n# address = {}\n# user = \"\"\n",
                comment(&q(&k.replace(['[', ']'], "").replace(':', "-"))),
                comment(&q(&k.replace(['[', ']'], "")))
            ));
        }
        out.push('\n');
    }

    let mut db_names = BTreeSet::new();
    let mut ndb = 0;
    let mut db_index: Vec<(String, String, String)> = Vec::new();
    for d in &dbs {
        let base = d
            .dbname
            .clone()
            .unwrap_or_else(|| format!("{}-{}", d.host, d.port));
        let n = name_for(&base, &mut db_names);
        let user = d.user.clone().unwrap_or_else(|| "postgres".into());
        let dbname = d.dbname.clone().unwrap_or_else(|| "FILL_IN".into());
        // A socket directory replaces the address (`?host=`).
        let addr = if d.socket.is_some() {
            String::new()
        } else {
            url_host(&d.host)
        };
        let mut url = format!(
            "postgres://{}@{}:{}/{}",
            url_part(&user),
            addr,
            url_part(&d.port),
            url_part(&dbname)
        );
        if let Some(s) = &d.socket {
            url.push_str(&format!("?host={}", url_part(s)));
        }
        out.push_str(&format!("# {}\n", comment(&d.seen)));
        if d.dbname.is_none() {
            out.push_str("# FILL IN: the database name (FILL_IN in the url)\n");
        }
        out.push_str(&format!(
            "[[database]]\nname = {}\nurl = {}\n",
            q(&n),
            q(&url)
        ));
        db_index.push((n.clone(), dbname.clone(), d.port.clone()));
        let on = if is_local(&d.host) {
            Some("local".to_string())
        } else {
            ssh_names
                .iter()
                .find(|(a, _)| a == &d.host)
                .map(|(_, n)| n.clone())
        };
        if let Some(h) = on.filter(|h| taken.contains(h)) {
            out.push_str(&format!("host = {}\n", q(&h)));
        }
        if let Some(v) = &d.password_env {
            out.push_str(&format!("password_env = {}\n", q(v)));
        }
        if d.socket.is_some() || is_local(&d.host) {
            out.push_str("sslmode = \"disable\"\n");
        }
        out.push_str(
            "# watch = [\"User\", \"Orders\"]    # tables counted exactly on every sample\n\n",
        );
        ndb += 1;
    }
    if dbs.is_empty() {
        todo.push("no database found: add a [[database]] (README, 'Inventory')".into());
        out.push_str(
            "# No database found (no ~/.pgpass, PG* variables or local socket). Add one:\n\
             # [[database]]\n# name = \"main\"\n# url = \"postgres://app@db.example.net:5432/app\"\n\n",
        );
    }
    let mut catalogs = 0;
    let mut catalog_names = BTreeSet::new();
    for (host, found) in remote {
        for c in &found.clusters {
            let port = c
                .port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "5432".into());
            if !db_index.iter().any(|(_, _, p)| *p == port) {
                let t = format!(
                    "a PostgreSQL server runs on '{host}' (port {port}, data {}): add a [[database]] for each of its databases",
                    c.data_dir.as_deref().unwrap_or("?")
                );
                out.push_str(&format!("# {}\n", comment(&t)));
                todo.push(t);
            }
        }
        for b in &found.backups {
            let last = b
                .path
                .rsplit('/')
                .find(|p| !p.is_empty())
                .unwrap_or("backups");
            let n = name_for(&format!("{host}-{last}"), &mut catalog_names);
            let prefix = b.prefix.to_ascii_lowercase();
            let by_prefix = db_index.iter().find(|(_, dbname, _)| {
                let d = dbname.to_ascii_lowercase();
                !d.is_empty() && d != "postgres" && prefix.contains(&d)
            });
            let db = by_prefix.or(if db_index.len() == 1 {
                db_index.first()
            } else {
                None
            });
            out.push_str(&format!(
                "# {} backup-looking file(s) in {} on '{}'{}\n",
                b.files,
                comment(&b.path),
                comment(host),
                match &b.pattern {
                    Some(_) => ", naming pattern guessed from their names",
                    None => ", no date in their names (the dump header or mtime dates them)",
                }
            ));
            let mut body = format!(
                "[[backups]]\nname = {}\nhost = {}\npath = {}\n",
                q(&n),
                q(host),
                q(&b.path)
            );
            if let Some(p) = &b.pattern {
                body.push_str(&format!("pattern = {}\n", q(p)));
            }
            match db {
                Some((name, _, _)) => {
                    body.push_str(&format!("database = {}\n", q(name)));
                    out.push_str(&body);
                    catalogs += 1;
                }
                None => {
                    let t = format!(
                        "backups in '{}' on '{host}': which database are they of? uncomment the catalog and set 'database'",
                        b.path
                    );
                    out.push_str(&format!("# {}\n", comment(&t)));
                    for l in body.lines() {
                        out.push_str(&format!("# {l}\n"));
                    }
                    out.push_str("# database = \"FILL_IN\"\n");
                    todo.push(t);
                }
            }
            out.push('\n');
        }
    }
    out.push_str(
        "# Backup catalogs: a directory of dumps on a host (README, 'Inventory').\n\
         # [[backups]]\n# name = \"nightly\"\n# host = \"HOST\"\n# path = \"/var/backups/postgres\"\n\
         # pattern = \"app_%Y%m%d_%H%M%S.sql\"\n# database = \"DATABASE\"\n",
    );
    for t in &todo {
        out.push_str(&format!("# TODO: {}\n", comment(t)));
    }
    Starter {
        text: out,
        hosts: host_names,
        databases: ndb,
        catalogs,
        todo,
    }
}

fn is_local(h: &str) -> bool {
    matches!(h, "localhost" | "127.0.0.1" | "::1")
}

fn url_host(h: &str) -> String {
    if h.contains(':') {
        format!("[{h}]")
    } else {
        url_part(h)
    }
}

/// `lifeline init` as the CLI runs it.
#[derive(Debug, Clone)]
pub struct InitArgs {
    pub output: PathBuf,
    pub force: bool,
    pub socket_dirs: Vec<PathBuf>,
    /// `--host`: hosts of the starter (or `local`) to look on.
    pub hosts: Vec<String>,
    /// `--look-in`: more backup directories to search on them.
    pub look_in: Vec<String>,
}

/// Builds the starter (looking on `--host` hosts) and writes it.
pub fn run(args: &InitArgs) -> Result<Starter, InitError> {
    let mut sources = Sources::from_env(args.socket_dirs.clone());
    sources.local_host = args.hosts.iter().any(|h| h == "local");
    let mut found = Vec::new();
    if !args.hosts.is_empty() {
        // The hosts as the starter describes them.
        let first = starter(&sources, &[]);
        let inv = crate::inventory::Inventory::parse(&first.text, "starter")
            .map_err(|d| InitError::Starter(d.to_string()))?;
        let pool = crate::transport::Hosts::from_inventory(&inv, None);
        let mut dirs: Vec<String> = remote::DEFAULT_DIRS.iter().map(|d| d.to_string()).collect();
        dirs.extend(args.look_in.iter().cloned());
        let rt = crate::runtime::build().map_err(InitError::Runtime)?;
        for h in &args.hosts {
            let host = pool.get(h).ok_or_else(|| InitError::UnknownHost {
                name: h.clone(),
                known: inv
                    .hosts
                    .iter()
                    .map(|x| x.name.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            let f = rt
                .block_on(remote::look(host, &dirs))
                .map_err(|why| InitError::Remote {
                    host: h.clone(),
                    why,
                })?;
            found.push((h.clone(), f));
        }
    }
    let s = starter(&sources, &found);
    write(&args.output, &s.text, args.force)?;
    Ok(s)
}

/// Writes `text` to `path` (0600), refusing an existing file unless `force`.
pub fn write(path: &Path, text: &str, force: bool) -> Result<(), InitError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(0o600);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let err = |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match opts.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InitError::Exists(path.to_path_buf()));
        }
        Err(e) => return Err(err(e)),
    };
    // An existing file replaced with --force keeps no wider mode.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_config_keeps_named_hosts_first_value_wins() {
        let h = ssh_config(
            "Host *\n  User everyone\nHost db1 db2\n  HostName 10.0.0.5\n  Port 2222\n  User admin\n  User other\nHost web-*\n  User x\nHost app\n  IdentityFile ~/.ssh/app\n",
        );
        let names: Vec<_> = h.iter().map(|h| h.alias.as_str()).collect();
        assert_eq!(names, ["db1", "db2", "app"]);
        assert_eq!(h[0].hostname.as_deref(), Some("10.0.0.5"));
        assert_eq!(h[1].port.as_deref(), Some("2222"));
        assert_eq!(h[0].user.as_deref(), Some("admin"));
        assert_eq!(h[2].identity.as_deref(), Some("~/.ssh/app"));
    }

    #[test]
    fn known_hosts_skips_hashed_and_markers() {
        let k = known_hosts(
            "a.example,10.0.0.1 ssh-ed25519 AAAA\n|1|abc=|def= ssh-ed25519 AAAA\n@cert-authority * ssh-rsa AAAA\n[b.example]:2222 ssh-ed25519 AAAA\n",
        );
        assert_eq!(k, ["a.example", "10.0.0.1", "[b.example]:2222"]);
    }

    #[test]
    fn hostile_remote_paths_stay_inside_their_strings() {
        let src = Sources {
            home: None,
            env: vec![
                ("PGHOST".into(), "db.example".into()),
                ("PGDATABASE".into(), "app".into()),
            ],
            socket_dirs: vec![],
            local_host: false,
        };
        let evil = "/b/x\"]\n[[host]]\nname = \"evil\" # \u{1b}[31m";
        let found = remote::Found {
            backups: vec![remote::BackupDir {
                path: evil.into(),
                files: 2,
                pattern: Some("app\"\n_%Y%m%d.sql".into()),
                prefix: "app".into(),
            }],
            clusters: vec![],
        };
        let st = starter(&src, &[("h\"\n[[host]]".into(), found)]);
        let v: toml::Table = toml::from_str(&st.text).unwrap();
        assert!(v.get("host").is_none(), "no host injected:\n{}", st.text);
        let b = v["backups"].as_array().unwrap();
        assert_eq!(b.len(), 1, "{}", st.text);
        assert_eq!(b[0]["path"].as_str(), Some(evil));
        assert!(
            !st.text.contains('\u{1b}'),
            "no escape code, even in comments"
        );
    }

    #[test]
    fn names_are_safe_and_unique() {
        let mut t = BTreeSet::new();
        assert_eq!(name_for("app", &mut t), "app");
        assert_eq!(name_for("app", &mut t), "app-2");
        assert_eq!(name_for("x\"]\n[[host]]", &mut t), "x-----host");
        assert_eq!(name_for("\"\"", &mut t), "db");
    }
}
