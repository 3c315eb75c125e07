//! The inventory: hosts, databases, backup catalogs and explicit services,
//! read from TOML. Every error names file:line:col; nothing here connects
//! anywhere, and no secret is ever read from the inventory text itself.

mod open;
pub mod url;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{IgnoredAny, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diag, Diags, clean_message};
use crate::redact::Redactor;
pub use open::{NO_INVENTORY, open};
pub use url::PgUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Ssh,
    Local,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: Spanned<String>,
    #[serde(default)]
    pub transport: TransportKind,
    /// `host[:port]`, required for ssh.
    pub address: Option<Spanned<String>>,
    pub user: Option<String>,
    /// Private key file (`~` expanded).
    pub identity: Option<String>,
    /// Environment variable holding the key's passphrase.
    pub passphrase_env: Option<String>,
    /// Authenticate through ssh-agent (`SSH_AUTH_SOCK`).
    #[serde(default)]
    pub agent: bool,
    /// known_hosts file; default `~/.ssh/known_hosts`.
    pub known_hosts: Option<String>,
    pub connect_timeout_s: Option<u64>,
    pub command_timeout_s: Option<u64>,
    /// Environment label, e.g. "production" (drives the console's colours).
    pub env: Option<String>,
    password: Option<Spanned<IgnoredAny>>,
}

impl HostSpec {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
    /// `(host, port)` of an ssh host; None for a local one.
    pub fn socket_address(&self) -> Option<(String, u16)> {
        self.address
            .as_ref()
            .and_then(|a| url::parse_address(a.get_ref()).ok())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Fewest rows the table may hold.
    pub min: Option<i64>,
    /// Largest share of rows (0..1) it may lose between two samples.
    pub max_drop: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    pub name: Spanned<String>,
    pub url: Spanned<String>,
    /// Inventory host the server runs on (for pg_dump/snapshots and mapping sessions).
    pub host: Option<Spanned<String>>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub sslmode: Option<SslMode>,
    /// CA bundle for verify-ca / verify-full.
    pub sslrootcert: Option<String>,
    /// Tables counted exactly on every sample; the rest are estimated.
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default)]
    pub expect: BTreeMap<String, Expect>,
    /// Share of rows (0..1) a table may lose between samples before an alert; default 0.5.
    pub drop_alert_share: Option<f64>,
    pub sample_interval_s: Option<u64>,
    pub connect_timeout_s: Option<u64>,
    pub statement_timeout_ms: Option<u64>,
    pub env: Option<String>,
    /// The role restore sessions log in as: owns the restore target and
    /// nothing else (no SUPERUSER, CREATEROLE, CREATEDB, memberships).
    pub restore_role: Option<Spanned<String>>,
    /// Environment variable with the restore role's password (else
    /// ~/.pgpass matched on the role, else none: local authentication).
    pub restore_password_env: Option<String>,
    password: Option<Spanned<IgnoredAny>>,
    #[serde(skip)]
    parsed: Option<PgUrl>,
}

impl DatabaseSpec {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
    /// The parsed URL (validated at load time).
    pub fn pg_url(&self) -> Option<&PgUrl> {
        self.parsed.as_ref()
    }
    /// sslmode from the key, else the URL's `?sslmode=`, else prefer.
    pub fn ssl_mode(&self) -> SslMode {
        if let Some(m) = self.sslmode {
            return m;
        }
        match self
            .parsed
            .as_ref()
            .and_then(|u| u.params.get("sslmode"))
            .map(String::as_str)
        {
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            _ => SslMode::Prefer,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSpec {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    /// Directory holding the backups.
    pub path: String,
    /// File name pattern with strftime fields (`%Y%m%d_%H%M%S`); `*` matches anything.
    pub pattern: Option<String>,
    pub database: Spanned<String>,
}

impl CatalogSpec {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Process,
    Systemd,
    Timer,
    Cron,
    Container,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    pub kind: ServiceKind,
    /// systemd unit or timer name.
    pub unit: Option<String>,
    /// Container name.
    pub container: Option<String>,
    /// For `process`: pidfile naming the running process.
    pub pidfile: Option<String>,
    /// For `process`: a pattern matched against `ps` command lines.
    #[serde(rename = "match")]
    pub match_: Option<String>,
    /// For `process`: command that starts it (used by start-services).
    pub start: Option<String>,
    /// For `cron`: the file holding its line.
    pub cron_file: Option<String>,
    /// Databases (inventory names) this service writes to.
    #[serde(default)]
    pub databases: Vec<Spanned<String>>,
}

impl ServiceSpec {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    /// Base backups made by pg_basebackup plus a directory filled by archive_command.
    WalDir,
    /// A pgBackRest repository (stanza + config file).
    Pgbackrest,
}

/// A WAL archive for point-in-time recovery (`[[archive]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSpec {
    pub name: Spanned<String>,
    pub kind: ArchiveKind,
    /// Host holding the archive; recovery runs there too.
    pub host: Spanned<String>,
    /// Databases (inventory names) whose server this archive covers.
    #[serde(default)]
    pub databases: Vec<Spanned<String>>,
    /// wal-dir: directory of base backups, one pg_basebackup per subdirectory (plain or tar).
    pub base_dir: Option<String>,
    /// wal-dir: directory of archived WAL segments.
    pub wal_dir: Option<String>,
    /// pgbackrest: stanza name.
    pub stanza: Option<String>,
    /// pgbackrest: configuration file.
    pub config: Option<String>,
    /// Where recovery clusters are made (a new private directory each); default /var/tmp/lifeline-pitr.
    pub recovery_dir: Option<String>,
    /// OS user that owns and runs the recovery cluster when lifeline is root on the host; default postgres.
    pub os_user: Option<String>,
}

impl ArchiveSpec {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
}

/// A loaded, validated inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub path: Option<PathBuf>,
    pub name: Option<String>,
    pub env: Option<String>,
    pub hosts: Vec<HostSpec>,
    pub databases: Vec<DatabaseSpec>,
    pub backups: Vec<CatalogSpec>,
    pub services: Vec<ServiceSpec>,
    pub archives: Vec<ArchiveSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory '{path}': {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diags),
}

const PASSWORD_FIX: &str = "name an environment variable with 'password_env', a file with 'password_file', or put it in ~/.pgpass";
const INLINE_PASSWORD: &str = "inline passwords are not allowed in the inventory";

impl Inventory {
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut inv =
            Self::parse(&text, &path.display().to_string()).map_err(InventoryError::Invalid)?;
        inv.path = Some(path.to_path_buf());
        Ok(inv)
    }

    /// Parses and validates; returns every problem found, not just the first.
    pub fn parse(text: &str, file: &str) -> Result<Inventory, Diags> {
        let mut diags = Vec::new();
        let (doc, errors) = DeTable::parse_recoverable(text);
        for e in errors {
            diags.push(Diag::at(
                file,
                text,
                e.span(),
                None,
                format!("TOML syntax: {}", clean_message(e.message())),
            ));
        }
        if !diags.is_empty() {
            return Err(Diags(diags));
        }
        let mut inv = Inventory::default();
        // Names of entries that failed to load: references to them are not errors of their own.
        let mut broken: HashSet<String> = HashSet::new();
        for (key, value) in doc.into_inner() {
            let kspan = key.span();
            let k = key.get_ref().to_string();
            match k.as_str() {
                "name" | "env" => match value.get_ref() {
                    DeValue::String(s) => {
                        if k == "name" {
                            inv.name = Some(s.to_string());
                        } else {
                            inv.env = Some(s.to_string());
                        }
                    }
                    _ => diags.push(Diag::at(file, text, Some(value.span()), Some(&k), "expected a string")),
                },
                "host" => entries(file, text, &k, value, &mut diags, &mut broken, &mut inv.hosts),
                "database" => {
                    entries(file, text, &k, value, &mut diags, &mut broken, &mut inv.databases)
                }
                "backups" => {
                    entries(file, text, &k, value, &mut diags, &mut broken, &mut inv.backups)
                }
                "service" => {
                    entries(file, text, &k, value, &mut diags, &mut broken, &mut inv.services)
                }
                "archive" => {
                    entries(file, text, &k, value, &mut diags, &mut broken, &mut inv.archives)
                }
                other => diags.push(Diag::at(
                    file,
                    text,
                    Some(kspan),
                    Some(other),
                    "unknown top-level key; expected [[host]], [[database]], [[backups]], [[service]], [[archive]], name or env",
                )),
            }
        }
        inv.validate(file, text, &broken, &mut diags);
        if diags.is_empty() {
            Ok(inv)
        } else {
            diags.sort_by_key(|d| (d.line, d.col));
            Err(Diags(diags))
        }
    }

    fn validate(
        &mut self,
        file: &str,
        text: &str,
        broken: &HashSet<String>,
        diags: &mut Vec<Diag>,
    ) {
        let mut at = |span: std::ops::Range<usize>, key: &str, msg: String| {
            diags.push(Diag::at(file, text, Some(span), Some(key), msg));
        };
        unique(self.hosts.iter().map(|h| &h.name), "host", &mut at);
        unique(self.databases.iter().map(|d| &d.name), "database", &mut at);
        unique(
            self.backups.iter().map(|c| &c.name),
            "backup catalog",
            &mut at,
        );
        unique(self.services.iter().map(|s| &s.name), "service", &mut at);
        unique(self.archives.iter().map(|a| &a.name), "archive", &mut at);

        let hosts: HashSet<&str> = self.hosts.iter().map(|h| h.name()).collect();
        let dbs: HashSet<&str> = self.databases.iter().map(|d| d.name()).collect();
        let mut check_ref = |r: &Spanned<String>, set: &HashSet<&str>, what: &str, key: &str| {
            if !set.contains(r.get_ref().as_str()) && !broken.contains(r.get_ref()) {
                let mut known: Vec<&&str> = set.iter().collect();
                known.sort();
                at(
                    r.span(),
                    key,
                    format!(
                        "no {what} named '{}' in the inventory (known: {})",
                        r.get_ref(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known
                                .iter()
                                .map(|s| format!("'{s}'"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                );
            }
        };
        for c in &self.backups {
            check_ref(&c.host, &hosts, "host", "host");
            check_ref(&c.database, &dbs, "database", "database");
        }
        for s in &self.services {
            check_ref(&s.host, &hosts, "host", "host");
            for d in &s.databases {
                check_ref(d, &dbs, "database", "databases");
            }
        }
        for d in &self.databases {
            if let Some(h) = &d.host {
                check_ref(h, &hosts, "host", "host");
            }
        }
        for a in &self.archives {
            check_ref(&a.host, &hosts, "host", "host");
            for d in &a.databases {
                check_ref(d, &dbs, "database", "databases");
            }
        }
        let mut diag = |span: std::ops::Range<usize>, key: &str, msg: String| {
            diags.push(Diag::at(file, text, Some(span), Some(key), msg));
        };
        for h in &self.hosts {
            if let Some(p) = &h.password {
                diag(
                    p.span(),
                    "password",
                    format!(
                        "{INLINE_PASSWORD}: hosts authenticate by key; name the key with 'identity' (and 'passphrase_env' if it is encrypted) or use 'agent = true'"
                    ),
                );
            }
            match (h.transport, &h.address) {
                (TransportKind::Ssh, None) => diag(
                    h.name.span(),
                    "address",
                    format!(
                        "host '{}' uses ssh but has no 'address' (host[:port]); for this machine write transport = \"local\"",
                        h.name()
                    ),
                ),
                (TransportKind::Ssh, Some(a)) => {
                    if let Err(e) = url::parse_address(a.get_ref()) {
                        diag(a.span(), "address", e.0);
                    }
                }
                (TransportKind::Local, Some(a)) => diag(
                    a.span(),
                    "address",
                    "a local host has no address; remove it or use transport = \"ssh\"".into(),
                ),
                (TransportKind::Local, None) => {}
            }
        }
        for a in &self.archives {
            for (msg, key) in archive_problems(a) {
                diag(a.name.span(), key, msg);
            }
        }
        for d in &mut self.databases {
            if let Some(p) = &d.password {
                diag(
                    p.span(),
                    "password",
                    format!("{INLINE_PASSWORD}: {PASSWORD_FIX}"),
                );
            }
            if d.password_env.is_some() && d.password_file.is_some() {
                diag(
                    d.name.span(),
                    "password_env",
                    "give 'password_env' or 'password_file', not both".into(),
                );
            }
            match url::parse(d.url.get_ref()) {
                Ok(u) if u.had_password => diag(
                    d.url.span(),
                    "url",
                    format!(
                        "the URL carries a password ({INLINE_PASSWORD}): remove it and {PASSWORD_FIX}"
                    ),
                ),
                Ok(u) => d.parsed = Some(u),
                Err(e) => diag(d.url.span(), "url", e.0),
            }
            if let Some(r) = &d.restore_role {
                let role = r.get_ref();
                let url_user = d.parsed.as_ref().and_then(|u| u.user.as_deref());
                let why = if role.is_empty() || role.len() > 63 || role.contains('\0') {
                    Some("is not a role name (1 to 63 bytes, no NUL)".to_string())
                } else if role == "postgres" || role.starts_with("pg_") {
                    Some("is a superuser or built-in role".to_string())
                } else if Some(role.as_str()) == url_user {
                    Some("is the URL's user (the admin connection): restores would run with its privileges".to_string())
                } else {
                    None
                };
                if let Some(why) = why {
                    diag(
                        r.span(),
                        "restore_role",
                        format!(
                            "restore_role '{role}' {why}: name a role made only for restores (lifeline creates it, LOGIN only, after a typed confirmation)"
                        ),
                    );
                }
            }
            if let Some(s) = d.drop_alert_share.filter(|s| !(0.0..=1.0).contains(s)) {
                diag(
                    d.name.span(),
                    "drop_alert_share",
                    format!("{s} is not a share between 0 and 1"),
                );
            }
            if matches!(d.ssl_mode(), SslMode::VerifyCa | SslMode::VerifyFull)
                && d.sslrootcert.is_none()
            {
                diag(
                    d.name.span(),
                    "sslrootcert",
                    "verify-ca and verify-full need 'sslrootcert' (the CA certificate file)".into(),
                );
            }
        }
    }

    pub fn archive(&self, name: &str) -> Option<&ArchiveSpec> {
        self.archives.iter().find(|a| a.name() == name)
    }
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name() == name)
    }
    pub fn database(&self, name: &str) -> Option<&DatabaseSpec> {
        self.databases.iter().find(|d| d.name() == name)
    }
    pub fn catalog(&self, name: &str) -> Option<&CatalogSpec> {
        self.backups.iter().find(|c| c.name() == name)
    }
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name() == name)
    }

    /// Reads every secret the inventory points at (password_env,
    /// password_file, passphrase_env, ~/.pgpass) and registers it with the
    /// redactor, so no later write can leak it. Returns the values it could
    /// not read, as warnings (a missing variable is not fatal here).
    pub fn register_secrets(&self, redactor: &Redactor) -> Vec<String> {
        let mut warnings = Vec::new();
        for d in &self.databases {
            if let Some(var) = &d.password_env {
                match std::env::var(var) {
                    Ok(v) => redactor.add_secret(&v),
                    Err(_) => warnings.push(format!(
                        "database '{}': environment variable '{var}' is not set",
                        d.name()
                    )),
                }
            }
            if let Some(f) = &d.password_file {
                match std::fs::read_to_string(expand_tilde(f)) {
                    Ok(v) => redactor.add_secret(v.trim_end()),
                    Err(e) => warnings.push(format!(
                        "database '{}': cannot read password_file '{f}': {e}",
                        d.name()
                    )),
                }
            }
        }
        for h in &self.hosts {
            if let Some(var) = &h.passphrase_env
                && let Ok(v) = std::env::var(var)
            {
                redactor.add_secret(&v);
            }
        }
        for pw in pgpass_passwords() {
            redactor.add_secret(&pw);
        }
        warnings
    }
}

/// What a `[[archive]]` entry lacks or carries wrongly for its kind.
fn archive_problems(a: &ArchiveSpec) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let name = a.name();
    let need = |v: &Option<String>,
                key: &'static str,
                what: &str,
                out: &mut Vec<(String, &'static str)>| {
        match v {
            None => out.push((
                format!(
                    "archive '{name}' of kind '{}' needs '{key}' ({what})",
                    kind_name(a.kind)
                ),
                key,
            )),
            Some(p) if !p.starts_with('/') => out.push((
                format!(
                    "archive '{name}': '{key}' must be an absolute path, not '{}'",
                    p.escape_debug()
                ),
                key,
            )),
            Some(p) if p.contains(['\n', '\0']) => out.push((
                format!("archive '{name}': '{key}' holds a newline or NUL byte"),
                key,
            )),
            Some(_) => {}
        }
    };
    let refuse = |v: &Option<String>, key: &'static str, out: &mut Vec<(String, &'static str)>| {
        if v.is_some() {
            out.push((
                format!(
                    "archive '{name}': '{key}' does not apply to kind '{}'",
                    kind_name(a.kind)
                ),
                key,
            ));
        }
    };
    match a.kind {
        ArchiveKind::WalDir => {
            need(
                &a.base_dir,
                "base_dir",
                "the directory of pg_basebackup backups",
                &mut out,
            );
            need(
                &a.wal_dir,
                "wal_dir",
                "the directory archive_command fills",
                &mut out,
            );
            refuse(&a.stanza, "stanza", &mut out);
            refuse(&a.config, "config", &mut out);
        }
        ArchiveKind::Pgbackrest => {
            match &a.stanza {
                None => out.push((format!("archive '{name}' of kind 'pgbackrest' needs 'stanza'"), "stanza")),
                Some(s) if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) => out.push((
                    format!("archive '{name}': stanza '{}' may hold only letters, digits, '-', '_' and '.'", s.escape_debug()),
                    "stanza",
                )),
                Some(_) => {}
            }
            need(&a.config, "config", "the pgbackrest.conf path", &mut out);
            refuse(&a.base_dir, "base_dir", &mut out);
            refuse(&a.wal_dir, "wal_dir", &mut out);
        }
    }
    if a.recovery_dir.is_some() {
        need(&a.recovery_dir, "recovery_dir", "", &mut out);
    }
    if let Some(u) = &a.os_user
        && (u.is_empty()
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
    {
        out.push((
            format!(
                "archive '{name}': os_user '{}' is not a user name",
                u.escape_debug()
            ),
            "os_user",
        ));
    }
    out
}

fn kind_name(k: ArchiveKind) -> &'static str {
    match k {
        ArchiveKind::WalDir => "wal-dir",
        ArchiveKind::Pgbackrest => "pgbackrest",
    }
}

fn unique<'a>(
    names: impl Iterator<Item = &'a Spanned<String>>,
    what: &str,
    at: &mut impl FnMut(std::ops::Range<usize>, &str, String),
) {
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for n in names {
        if n.get_ref().trim().is_empty() {
            at(n.span(), "name", format!("{what} name is empty"));
        } else if seen.insert(n.get_ref().as_str(), ()).is_some() {
            at(
                n.span(),
                "name",
                format!(
                    "{what} name '{}' is used twice; names must be unique",
                    n.get_ref()
                ),
            );
        }
    }
}

/// Deserialises every entry of an array of tables, collecting all errors.
fn entries<T: for<'de> Deserialize<'de>>(
    file: &str,
    text: &str,
    key: &str,
    value: Spanned<DeValue<'_>>,
    diags: &mut Vec<Diag>,
    broken: &mut HashSet<String>,
    out: &mut Vec<T>,
) {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        diags.push(Diag::at(
            file,
            text,
            Some(span),
            Some(key),
            format!("expected an array of tables: write [[{key}]]"),
        ));
        return;
    };
    for item in items {
        let ispan = item.span();
        let name = match item.get_ref() {
            DeValue::Table(t) => t.iter().find_map(|(k, v)| match v.get_ref() {
                DeValue::String(s) if k.get_ref() == "name" => Some(s.to_string()),
                _ => None,
            }),
            _ => None,
        };
        match T::deserialize(item.into_deserializer()) {
            Ok(v) => out.push(v),
            Err(e) => {
                broken.extend(name);
                let span = e.span().unwrap_or(ispan);
                let k = key_at(text, span.start);
                diags.push(Diag::at(
                    file,
                    text,
                    Some(span),
                    k.as_deref().or(Some(key)),
                    // `password` is a field only so that it can be refused with a pointed message.
                    clean_message(e.message()).replace(", `password`", ""),
                ));
            }
        }
    }
}

/// The `key` of a `key = value` line containing byte `pos`.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let start = text.get(..pos)?.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[start..].lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.contains(['[', ' '])).then(|| k.to_string())
}

/// `~/x` -> `$HOME/x`.
pub fn expand_tilde(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(rest))
            .unwrap_or_else(|| PathBuf::from(p)),
        None => PathBuf::from(p),
    }
}

/// Passwords in ~/.pgpass (or $PGPASSFILE), for redaction.
fn pgpass_passwords() -> Vec<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| expand_tilde("~/.pgpass"));
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| pgpass_fields(l).into_iter().nth(4))
        .collect()
}

/// Splits a .pgpass line on unescaped ':' (\: and \\ are escapes).
pub fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(last)) = (chars.next(), fields.last_mut()) {
                    last.push(n);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests;
