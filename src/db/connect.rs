//! Connections from an inventory `DatabaseSpec`: host or socket dir, user,
//! password (password_env, password_file or ~/.pgpass, each registered with
//! the Redactor), TLS per sslmode, connect and statement timeouts, and a
//! cheap `DbHandle` that reconnects after a broken connection. Never logs a password.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::error::DbError;
use super::pgpass::{self, PgpassSkip};
use super::tls;
use crate::inventory::{DatabaseSpec, PgUrl, SslMode, expand_tilde};
use crate::redact::Redactor;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_APPLICATION_NAME: &str = "lifeline";

/// Where the password comes from; read at every connect (a rotated file is
/// picked up) and never kept in this struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `password_env`: the environment variable's value.
    Env(String),
    /// `password_file`: the file's first line.
    File(PathBuf),
    /// ~/.pgpass or $PGPASSFILE, matched like libpq; no password when nothing matches.
    Pgpass,
}

/// How to reach one database. Holds no secret.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Inventory name of the database (or a label for ad-hoc connections).
    pub name: String,
    pub url: PgUrl,
    pub user: String,
    pub password: PasswordSource,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// `SET statement_timeout` on every new session when given.
    pub statement_timeout: Option<Duration>,
    /// `SET default_transaction_read_only = on` on every new session.
    pub read_only: bool,
    pub application_name: String,
    pub redactor: Redactor,
}

/// The user libpq would use: the URL's, else $PGUSER, else the OS user.
fn default_user(url: &PgUrl) -> String {
    url.user
        .clone()
        .or_else(|| std::env::var("PGUSER").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "postgres".to_string())
}

impl ConnectOptions {
    pub fn from_spec(spec: &DatabaseSpec, redactor: &Redactor) -> Result<Self, DbError> {
        let url = spec.pg_url().cloned().ok_or_else(|| DbError::Config {
            target: spec.name().to_string(),
            reason: format!(
                "url '{}' was not parsed; run 'lifeline check'",
                spec.url.get_ref()
            ),
        })?;
        let password = match (&spec.password_env, &spec.password_file) {
            (Some(v), _) => PasswordSource::Env(v.clone()),
            (None, Some(f)) => PasswordSource::File(expand_tilde(f)),
            (None, None) => PasswordSource::Pgpass,
        };
        let user = default_user(&url);
        Ok(ConnectOptions {
            name: spec.name().to_string(),
            user,
            password,
            sslmode: spec.ssl_mode(),
            sslrootcert: spec.sslrootcert.as_deref().map(expand_tilde),
            connect_timeout: spec
                .connect_timeout_s
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            statement_timeout: spec.statement_timeout_ms.map(Duration::from_millis),
            read_only: false,
            application_name: DEFAULT_APPLICATION_NAME.to_string(),
            redactor: redactor.clone(),
            url,
        })
    }

    /// Options for a bare URL (no inventory entry): password from ~/.pgpass.
    pub fn from_url(name: &str, url: &str, redactor: &Redactor) -> Result<Self, DbError> {
        let u = crate::inventory::url::parse(url).map_err(|e| DbError::Config {
            target: name.to_string(),
            reason: e.0,
        })?;
        let sslmode = match u.params.get("sslmode").map(String::as_str) {
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            _ => SslMode::Prefer,
        };
        Ok(ConnectOptions {
            name: name.to_string(),
            user: default_user(&u),
            password: PasswordSource::Pgpass,
            sslmode,
            sslrootcert: u.params.get("sslrootcert").map(|p| expand_tilde(p)),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: None,
            read_only: false,
            application_name: DEFAULT_APPLICATION_NAME.to_string(),
            redactor: redactor.clone(),
            url: u,
        })
    }

    /// `host:port/dbname` as connected (principle 3).
    pub fn target(&self) -> String {
        self.url.display_target()
    }

    /// `host:port` of the server.
    pub fn server(&self) -> String {
        let t = self.url.display_target();
        match t.rsplit_once('/') {
            Some((s, _)) => s.to_string(),
            None => t,
        }
    }

    /// The same server and credentials, another database (restore / swap).
    pub fn with_dbname(&self, dbname: &str) -> ConnectOptions {
        ConnectOptions {
            url: self.url.with_dbname(dbname),
            ..self.clone()
        }
    }

    /// The same server and database as another role (the restore role):
    /// its own password source, never the admin's; a real login as `user`,
    /// not SET ROLE.
    pub fn as_user(&self, user: &str, password: PasswordSource) -> ConnectOptions {
        ConnectOptions {
            user: user.to_string(),
            password,
            ..self.clone()
        }
    }

    /// Reads the password from its source and registers it with the redactor.
    pub fn resolve_password(&self) -> Result<Option<String>, DbError> {
        let pw = match &self.password {
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) => Some(v),
                Err(_) => {
                    return Err(DbError::Config {
                        target: self.name.clone(),
                        reason: format!(
                            "environment variable '{var}' (password_env) is not set: export it before starting lifeline"
                        ),
                    });
                }
            },
            PasswordSource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Some(
                    text.lines()
                        .next()
                        .unwrap_or("")
                        .trim_end_matches('\r')
                        .to_string(),
                ),
                Err(e) => {
                    return Err(DbError::Config {
                        target: self.name.clone(),
                        reason: format!(
                            "cannot read password_file '{}': {e}; check the path and its permissions",
                            path.display()
                        ),
                    });
                }
            },
            PasswordSource::Pgpass => {
                let path = pgpass::pgpass_path();
                match pgpass::lookup(
                    &path,
                    &self.url.host,
                    self.url.port,
                    &self.url.dbname,
                    &self.user,
                ) {
                    Ok(pw) => pw,
                    Err(PgpassSkip::Missing) => None,
                    Err(PgpassSkip::TooOpen(mode)) => {
                        tracing::warn!(
                            "password file '{}' has group or world access (mode {mode:o}); ignored like libpq does: chmod 0600 it",
                            path.display()
                        );
                        None
                    }
                    Err(PgpassSkip::Unreadable(e)) => {
                        tracing::warn!("cannot read password file '{}': {e}", path.display());
                        None
                    }
                }
            }
        };
        if let Some(p) = &pw {
            self.redactor.add_secret(p);
        }
        Ok(pw)
    }

    /// Opens one connection (connection task spawned on the current runtime).
    pub async fn connect(&self) -> Result<Connected, DbError> {
        let (client, pid) = self.open().await?;
        Ok(Connected {
            client: Arc::new(client),
            pid,
        })
    }

    /// Opens one connection the caller owns alone (transactions need
    /// `&mut Client`): the same path as `connect`.
    pub async fn connect_owned(&self) -> Result<Client, DbError> {
        Ok(self.open().await?.0)
    }

    async fn open(&self) -> Result<(Client, i32), DbError> {
        match self.connect_mode(self.sslmode).await {
            // libpq's prefer: a failed TLS handshake falls back to plain text.
            Err(DbError::TlsFailed { .. }) if self.sslmode == SslMode::Prefer => {
                self.connect_mode(SslMode::Disable).await
            }
            other => other,
        }
    }

    /// The tokio-postgres config (password resolved) and TLS connector of
    /// these options, for callers that open their own connections (the
    /// restore executor). `prefer` is left to tokio-postgres (no fallback
    /// after a failed handshake).
    pub fn pg_config(
        &self,
    ) -> Result<
        (
            tokio_postgres::Config,
            tokio_postgres_rustls::MakeRustlsConnect,
        ),
        DbError,
    > {
        self.config_mode(self.sslmode)
    }

    fn config_mode(
        &self,
        sslmode: SslMode,
    ) -> Result<
        (
            tokio_postgres::Config,
            tokio_postgres_rustls::MakeRustlsConnect,
        ),
        DbError,
    > {
        let target = self.target();
        let unix = self.url.host.starts_with('/');
        let mut cfg = tokio_postgres::Config::new();
        cfg.user(&self.user)
            .dbname(&self.url.dbname)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            .port(self.url.port)
            .ssl_mode(tls::pg_ssl_mode(sslmode, unix));
        if unix {
            cfg.host_path(&self.url.host);
        } else {
            cfg.host(&self.url.host);
        }
        if let Some(pw) = self.resolve_password()? {
            cfg.password(pw);
        }
        let connector = tls::make_connector(sslmode, self.sslrootcert.as_deref()).map_err(|e| {
            DbError::TlsFailed {
                target: target.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok((cfg, connector))
    }

    async fn connect_mode(&self, sslmode: SslMode) -> Result<(Client, i32), DbError> {
        let target = self.target();
        let (cfg, connector) = self.config_mode(sslmode)?;
        let fut = cfg.connect(connector);
        let (client, conn) = match tokio::time::timeout(self.connect_timeout, fut).await {
            Err(_) => {
                return Err(DbError::Unreachable {
                    target,
                    reason: format!(
                        "no answer within {} s (connect_timeout_s)",
                        self.connect_timeout.as_secs_f64()
                    ),
                });
            }
            Ok(Err(e)) => {
                return Err(DbError::from_connect(
                    &target,
                    &self.server(),
                    &self.url.dbname,
                    &self.user,
                    &e,
                ));
            }
            Ok(Ok(pair)) => pair,
        };
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection to database '{name}' ended: {e}");
            }
        });
        let mut setup = String::new();
        if let Some(t) = self.statement_timeout {
            setup.push_str(&format!("SET statement_timeout = {}; ", t.as_millis()));
        }
        if self.read_only {
            setup.push_str("SET default_transaction_read_only = on; ");
        }
        setup.push_str("SELECT pg_backend_pid()");
        let msgs = tokio::time::timeout(self.connect_timeout, client.simple_query(&setup))
            .await
            .map_err(|_| DbError::Unreachable {
                target: target.clone(),
                reason: "no answer to the session setup".into(),
            })?
            .map_err(|e| DbError::from_query(&target, "session setup", &e))?;
        let pid = msgs
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse::<i32>().ok(),
                _ => None,
            })
            .unwrap_or(0);
        Ok((client, pid))
    }
}

/// Opens a connection from a config and TLS connector made by
/// [`ConnectOptions::pg_config`], keeping the `Connection` for the caller
/// (the restore executor reads its notices). Outside this module nothing
/// calls tokio-postgres's connect.
pub async fn open_with<T>(
    cfg: &tokio_postgres::Config,
    tls: T,
) -> Result<
    (
        Client,
        tokio_postgres::Connection<tokio_postgres::Socket, T::Stream>,
    ),
    tokio_postgres::Error,
>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
{
    cfg.connect(tls).await
}

/// An open connection and its server process id.
#[derive(Clone)]
pub struct Connected {
    pub client: Arc<Client>,
    pub pid: i32,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connected(pid {})", self.pid)
    }
}

struct HandleInner {
    opts: ConnectOptions,
    live: tokio::sync::Mutex<Option<Connected>>,
}

/// A cheap, clonable handle to one database. It connects on first use and,
/// after the connection broke (server restart, network), connects again on
/// the next call. Clones share the connection.
#[derive(Clone)]
pub struct DbHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for DbHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbHandle({})", self.inner.opts.target())
    }
}

impl DbHandle {
    pub fn new(opts: ConnectOptions) -> Self {
        DbHandle {
            inner: Arc::new(HandleInner {
                opts,
                live: tokio::sync::Mutex::new(None),
            }),
        }
    }

    pub fn from_spec(spec: &DatabaseSpec, redactor: &Redactor) -> Result<Self, DbError> {
        Ok(Self::new(ConnectOptions::from_spec(spec, redactor)?))
    }

    pub fn options(&self) -> &ConnectOptions {
        &self.inner.opts
    }

    pub fn name(&self) -> &str {
        &self.inner.opts.name
    }

    /// `host:port/dbname`.
    pub fn target(&self) -> String {
        self.inner.opts.target()
    }

    /// `host:port` of the server.
    pub fn server(&self) -> String {
        self.inner.opts.server()
    }

    /// A new handle (own connection) to another database on the same server.
    pub fn with_dbname(&self, dbname: &str) -> DbHandle {
        DbHandle::new(self.inner.opts.with_dbname(dbname))
    }

    /// The live connection, connecting (again) when there is none or it closed.
    pub async fn connection(&self) -> Result<Connected, DbError> {
        let mut live = self.inner.live.lock().await;
        if let Some(c) = live.as_ref()
            && !c.client.is_closed()
        {
            return Ok(c.clone());
        }
        *live = None;
        let c = self.inner.opts.connect().await?;
        *live = Some(c.clone());
        Ok(c)
    }

    pub async fn client(&self) -> Result<Arc<Client>, DbError> {
        Ok(self.connection().await?.client)
    }

    /// Server process id of the current connection, if connected.
    pub async fn backend_pid(&self) -> Option<i32> {
        self.inner
            .live
            .lock()
            .await
            .as_ref()
            .filter(|c| !c.client.is_closed())
            .map(|c| c.pid)
    }

    /// Drops the connection; the next call connects again.
    pub async fn disconnect(&self) {
        *self.inner.live.lock().await = None;
    }

    /// Runs one parameterless read-only statement in a single round trip
    /// (simple protocol) and returns the first column of the first row as
    /// text. Reconnects and retries once like `query`.
    pub async fn query_scalar_text(
        &self,
        what: &str,
        sql: &str,
    ) -> Result<Option<String>, DbError> {
        let target = self.target();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.client().await?;
            match client.simple_query(sql).await {
                Ok(msgs) => {
                    return Ok(msgs
                        .iter()
                        .find_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => {
                                Some(r.get(0).map(str::to_string))
                            }
                            _ => None,
                        })
                        .flatten());
                }
                Err(e) => {
                    let err = DbError::from_query(&target, what, &e);
                    if err.is_connection_lost() {
                        self.disconnect().await;
                        if attempt < 2 {
                            continue;
                        }
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Runs a read-only statement. When the connection turns out to be
    /// broken it reconnects and runs it once more, so use it only for
    /// statements that are safe to repeat.
    pub async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, DbError> {
        let target = self.target();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.client().await?;
            match client.query(sql, params).await {
                Ok(rows) => return Ok(rows),
                Err(e) => {
                    let err = DbError::from_query(&target, what, &e);
                    if err.is_connection_lost() {
                        self.disconnect().await;
                        if attempt < 2 {
                            continue;
                        }
                    }
                    return Err(err);
                }
            }
        }
    }
}
