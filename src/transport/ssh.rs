//! SSH hosts (russh): one authenticated, multiplexed connection per host,
//! shared by all commands and re-opened after a drop; host keys checked
//! against known_hosts. It never trusts an unknown key without the explicit,
//! journaled `accept_host_key`, never trusts a changed key at all, and wraps
//! every command so a timeout kills it on the host too.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use russh::client::{self, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::error::KeyChange;
use super::known_hosts::{self, Lookup};
use super::stream::{Delivered, Sink};
use super::{
    Capped, DEFAULT_TIMEOUT, ExecOptions, ExecResult, ExecStream, TransportError, expand_tilde,
    human_duration, wrap_with_timeout,
};
use crate::journal::{Entry, Journal, kinds};

/// Asks the operator for the passphrase of an encrypted key (the console
/// supplies one); `None` means the operator declined.
pub type AskPassphrase = Arc<dyn Fn(&Path) -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// Default time allowed for TCP connect, then again for the SSH handshake and login.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keepalive interval; three unanswered keepalives drop the connection.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long past its timeout a command may take to report its own death
/// (remote `timeout` kills it at the limit) before the channel is closed.
const KILL_GRACE: Duration = Duration::from_secs(2);
const DEFAULT_KEYS: [&str; 3] = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"];

/// `user@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// How to reach and log in to one SSH host.
#[derive(Clone)]
pub struct SshSettings {
    /// Inventory name.
    pub name: String,
    pub target: SshTarget,
    /// Private key file; tried before the agent.
    pub identity: Option<PathBuf>,
    /// Environment variable holding the key's passphrase.
    pub passphrase_env: Option<String>,
    /// Try ssh-agent keys (after `identity`).
    pub agent: bool,
    /// Agent socket; default `$SSH_AUTH_SOCK` at connect time.
    pub agent_socket: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
    pub ask_passphrase: Option<AskPassphrase>,
}

impl fmt::Debug for SshSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshSettings")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("identity", &self.identity)
            .field("agent", &self.agent)
            .field("known_hosts", &self.known_hosts)
            .finish_non_exhaustive()
    }
}

impl SshSettings {
    /// Settings with the defaults: `~/.ssh/known_hosts`, 10 s connect, 30 s
    /// commands, no identity (the agent, then `~/.ssh/id_{ed25519,ecdsa,rsa}`).
    pub fn new(name: &str, host: &str, port: u16, user: &str) -> Self {
        SshSettings {
            name: name.to_string(),
            target: SshTarget {
                host: host.to_string(),
                port,
                user: user.to_string(),
            },
            identity: None,
            passphrase_env: None,
            agent: false,
            agent_socket: None,
            known_hosts: expand_tilde("~/.ssh/known_hosts"),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_TIMEOUT,
            keepalive: KEEPALIVE,
            ask_passphrase: None,
        }
    }

    pub fn identity(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity = Some(path.into());
        self
    }
    pub fn known_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        self.known_hosts = path.into();
        self
    }
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
    pub fn command_timeout(mut self, t: Duration) -> Self {
        self.command_timeout = t;
        self
    }
    pub fn passphrase_env(mut self, var: &str) -> Self {
        self.passphrase_env = Some(var.to_string());
        self
    }
    /// Use ssh-agent at `socket` (None: `$SSH_AUTH_SOCK`).
    pub fn agent(mut self, socket: Option<PathBuf>) -> Self {
        self.agent = true;
        self.agent_socket = socket;
        self
    }
    pub fn ask_passphrase(mut self, ask: AskPassphrase) -> Self {
        self.ask_passphrase = Some(ask);
        self
    }

    /// From an inventory host (`transport = "ssh"`); None for a local host.
    pub fn from_spec(spec: &crate::inventory::HostSpec) -> Option<Self> {
        let (host, port) = spec.socket_address()?;
        let user = spec.user.clone().unwrap_or_else(default_user);
        let mut s = SshSettings::new(spec.name(), &host, port, &user);
        s.identity = spec.identity.as_deref().map(expand_tilde);
        s.passphrase_env = spec.passphrase_env.clone();
        s.agent = spec.agent;
        if let Some(k) = &spec.known_hosts {
            s.known_hosts = expand_tilde(k);
        }
        if let Some(t) = spec.connect_timeout_s {
            s.connect_timeout = Duration::from_secs(t);
        }
        if let Some(t) = spec.command_timeout_s {
            s.command_timeout = Duration::from_secs(t);
        }
        Some(s)
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.target.host, self.target.port)
    }
}

/// The user this process runs as (`$USER`, else `root`).
pub(crate) fn default_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

/// A host key, as shown to the operator and journaled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostKeyInfo {
    /// Inventory name.
    pub host: String,
    pub address: String,
    pub key_type: String,
    /// `SHA256:...`.
    pub fingerprint: String,
    pub known_hosts: PathBuf,
}

type Conn = Arc<Handle<Client>>;

struct Inner {
    s: SshSettings,
    config: Arc<client::Config>,
    conn: tokio::sync::Mutex<Option<Conn>>,
    /// The identity, decrypted once (the operator is not asked again on reconnect).
    key: tokio::sync::Mutex<Option<Arc<PrivateKey>>>,
}

/// An SSH host. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct SshHost {
    inner: Arc<Inner>,
}

impl fmt::Debug for SshHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshHost")
            .field("name", &self.inner.s.name)
            .field("target", &self.inner.s.target)
            .finish()
    }
}

/// The russh client handler: checks the host key and remembers it.
struct Client {
    known_hosts: PathBuf,
    host: String,
    port: u16,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    Unknown,
    Changed { line: usize, old: Box<PublicKey> },
    Revoked { line: usize },
    KnownHosts(String),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Not negotiated by default; judge the key inside like a plain one.
            PublicKeyOrCertificate::Certificate(c) => PublicKey::from(c.public_key().clone()),
        };
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(key.clone());
        }
        match known_hosts::lookup(&self.known_hosts, &self.host, self.port, &key) {
            Ok(Lookup::Known { .. }) => Ok(true),
            Ok(Lookup::Unknown) => Err(HandlerError::Unknown),
            Ok(Lookup::Changed { line, old }) => Err(HandlerError::Changed { line, old }),
            Ok(Lookup::Revoked { line }) => Err(HandlerError::Revoked { line }),
            Err(e) => Err(HandlerError::KnownHosts(e.to_string())),
        }
    }
}

fn sig_name(s: &Sig) -> String {
    match s {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(c) => return c.trim_start_matches("SIG").to_string(),
    }
    .to_string()
}

/// Why a handshake did not give a connection.
enum Handshake {
    Failed(TransportError),
    /// The key is not in known_hosts (the operator may accept it).
    Unknown(PublicKey),
}

impl From<TransportError> for Handshake {
    fn from(e: TransportError) -> Self {
        Handshake::Failed(e)
    }
}

/// What the channel loop saw.
#[derive(Default)]
struct Status {
    exit: Option<i32>,
    signal: Option<String>,
    closed: bool,
}

impl Status {
    fn take(&mut self, msg: &ChannelMsg) {
        match msg {
            ChannelMsg::ExitStatus { exit_status } => {
                self.exit = Some(i32::try_from(*exit_status).unwrap_or(i32::MAX));
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                self.signal = Some(sig_name(signal_name));
            }
            ChannelMsg::Close => self.closed = true,
            _ => {}
        }
    }
    fn ended(&self) -> bool {
        self.exit.is_some() || self.signal.is_some()
    }
    /// The remote `timeout -s KILL` fired: KILL at or after the limit.
    fn killed_at_limit(&self, elapsed: Duration, limit: Duration) -> bool {
        elapsed >= limit && (self.signal.as_deref() == Some("KILL") || self.exit == Some(137))
    }
}

impl SshHost {
    pub fn new(settings: SshSettings) -> Self {
        let config = client::Config {
            keepalive_interval: Some(settings.keepalive),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        SshHost {
            inner: Arc::new(Inner {
                s: settings,
                config: Arc::new(config),
                conn: tokio::sync::Mutex::new(None),
                key: tokio::sync::Mutex::new(None),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.s.name
    }
    pub fn target(&self) -> &SshTarget {
        &self.inner.s.target
    }
    pub fn settings(&self) -> &SshSettings {
        &self.inner.s
    }
    pub fn command_timeout(&self) -> Duration {
        self.inner.s.command_timeout
    }

    /// Connects now if not connected; returns the time it took (zero when reused).
    pub async fn connect(&self) -> Result<Duration, TransportError> {
        let t = Instant::now();
        let (_, fresh) = self.conn().await?;
        Ok(if fresh { t.elapsed() } else { Duration::ZERO })
    }

    /// Closes the shared connection (the next command reconnects).
    pub async fn disconnect(&self) {
        let c = self.inner.conn.lock().await.take();
        if let Some(c) = c {
            let _ = c
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }

    /// The shared connection, opened when missing or dead. `true` when new.
    async fn conn(&self) -> Result<(Conn, bool), TransportError> {
        let mut g = self.inner.conn.lock().await;
        if let Some(c) = g.as_ref()
            && !c.is_closed()
        {
            return Ok((c.clone(), false));
        }
        *g = None;
        let c = Arc::new(self.open().await?);
        *g = Some(c.clone());
        Ok((c, true))
    }

    /// Forgets `c` if it is still the shared connection.
    async fn forget(&self, c: &Conn) {
        let mut g = self.inner.conn.lock().await;
        if g.as_ref().is_some_and(|x| Arc::ptr_eq(x, c)) {
            *g = None;
        }
    }

    fn host_key_error(&self, key: &PublicKey) -> TransportError {
        let s = &self.inner.s;
        TransportError::HostKeyUnknown {
            host: s.name.clone(),
            addr: s.addr(),
            key_type: key.algorithm().to_string(),
            fingerprint: known_hosts::fingerprint(key),
            known_hosts: s.known_hosts.clone(),
        }
    }

    /// A new authenticated connection (not shared).
    async fn open(&self) -> Result<Handle<Client>, TransportError> {
        // Decrypt the key first: asking the operator must not eat the connect timeout.
        let key = match &self.inner.s.identity {
            Some(p) => Some(self.identity_key(p).await?),
            None => None,
        };
        let mut h = match self.handshake().await {
            Ok(h) => h,
            Err(Handshake::Failed(e)) => return Err(e),
            Err(Handshake::Unknown(k)) => return Err(self.host_key_error(&k)),
        };
        let s = &self.inner.s;
        match tokio::time::timeout(s.connect_timeout, self.authenticate(&mut h, key)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(TransportError::TimedOut {
                    host: s.name.clone(),
                    what: "SSH login".into(),
                    after: s.connect_timeout,
                });
            }
        }
        Ok(h)
    }

    /// TCP connect and SSH handshake with the host key check; no login.
    async fn handshake(&self) -> Result<Handle<Client>, Handshake> {
        let s = &self.inner.s;
        let unreachable = |reason: String| TransportError::Unreachable {
            host: s.name.clone(),
            addr: s.addr(),
            reason,
        };
        let tcp = match tokio::time::timeout(
            s.connect_timeout,
            tokio::net::TcpStream::connect((s.target.host.as_str(), s.target.port)),
        )
        .await
        {
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}",
                    human_duration(s.connect_timeout)
                ))
                .into());
            }
            Ok(Err(e)) => return Err(unreachable(e.to_string()).into()),
            Ok(Ok(t)) => t,
        };
        let _ = tcp.set_nodelay(true);
        let seen = Arc::new(Mutex::new(None));
        let handler = Client {
            known_hosts: s.known_hosts.clone(),
            host: s.target.host.clone(),
            port: s.target.port,
            seen: seen.clone(),
        };
        let r = tokio::time::timeout(
            s.connect_timeout,
            client::connect_stream(self.inner.config.clone(), tcp, handler),
        )
        .await;
        let seen_key = || seen.lock().ok().and_then(|k| k.clone());
        match r {
            Err(_) => Err(TransportError::TimedOut {
                host: s.name.clone(),
                what: "SSH handshake".into(),
                after: s.connect_timeout,
            }
            .into()),
            Ok(Ok(h)) => Ok(h),
            Ok(Err(HandlerError::Unknown)) => match seen_key() {
                Some(k) => Err(Handshake::Unknown(k)),
                None => Err(unreachable("host key check failed".into()).into()),
            },
            Ok(Err(HandlerError::Changed { line, old })) => {
                let new = seen_key()
                    .map(|k| known_hosts::fingerprint(&k))
                    .unwrap_or_default();
                Err(TransportError::HostKeyChanged(Box::new(KeyChange {
                    host: s.name.clone(),
                    addr: s.addr(),
                    key_type: old.algorithm().to_string(),
                    old_fingerprint: known_hosts::fingerprint(&old),
                    new_fingerprint: new,
                    known_hosts: s.known_hosts.clone(),
                    line,
                    pattern: known_hosts::host_pattern(&s.target.host, s.target.port),
                }))
                .into())
            }
            Ok(Err(HandlerError::Revoked { line })) => Err(TransportError::HostKeyRevoked {
                host: s.name.clone(),
                addr: s.addr(),
                fingerprint: seen_key()
                    .map(|k| known_hosts::fingerprint(&k))
                    .unwrap_or_default(),
                known_hosts: s.known_hosts.clone(),
                line,
            }
            .into()),
            Ok(Err(HandlerError::KnownHosts(reason))) => Err(TransportError::KnownHosts {
                path: s.known_hosts.clone(),
                reason,
            }
            .into()),
            Ok(Err(HandlerError::Ssh(e))) => {
                Err(unreachable(format!("SSH handshake failed: {e}")).into())
            }
        }
    }

    async fn identity_key(&self, path: &Path) -> Result<Arc<PrivateKey>, TransportError> {
        let mut g = self.inner.key.lock().await;
        if let Some(k) = g.as_ref() {
            return Ok(k.clone());
        }
        let k = Arc::new(self.load_key(path).await?);
        *g = Some(k.clone());
        Ok(k)
    }

    /// Loads a private key, asking for its passphrase (env, then the operator) when encrypted.
    async fn load_key(&self, path: &Path) -> Result<PrivateKey, TransportError> {
        let s = &self.inner.s;
        let key_err = |reason: String| TransportError::Key {
            host: s.name.clone(),
            path: path.to_path_buf(),
            reason,
        };
        match russh::keys::load_secret_key(path, None) {
            Ok(k) => return Ok(k),
            Err(russh::keys::Error::KeyIsEncrypted) => {}
            Err(russh::keys::Error::IO(e)) => return Err(key_err(e.to_string())),
            Err(e) => return Err(key_err(format!("not a usable private key ({e})"))),
        }
        let pass = match s
            .passphrase_env
            .as_deref()
            .and_then(|v| std::env::var(v).ok())
        {
            Some(p) => p,
            None => match &s.ask_passphrase {
                Some(ask) => ask(path)
                    .await
                    .ok_or_else(|| key_err("it is encrypted and no passphrase was given".into()))?,
                None => {
                    return Err(key_err(match &s.passphrase_env {
                        Some(v) => format!(
                            "it is encrypted and the environment variable '{v}' named by 'passphrase_env' is not set; export it"
                        ),
                        None => "it is encrypted: name an environment variable holding its passphrase with 'passphrase_env', or load it into ssh-agent and set 'agent = true'".into(),
                    }));
                }
            },
        };
        russh::keys::load_secret_key(path, Some(&pass))
            .map_err(|_| key_err("the passphrase does not decrypt it".into()))
    }

    async fn authenticate(
        &self,
        h: &mut Handle<Client>,
        identity: Option<Arc<PrivateKey>>,
    ) -> Result<(), TransportError> {
        let s = &self.inner.s;
        let user = s.target.user.clone();
        let ssh_err = |e: russh::Error| TransportError::Ssh {
            host: s.name.clone(),
            reason: format!("during login: {e}"),
        };
        let mut tried = Vec::new();
        let mut keys: Vec<(String, Arc<PrivateKey>)> = Vec::new();
        if let (Some(k), Some(p)) = (identity, &s.identity) {
            keys.push((p.display().to_string(), k));
        }
        let explicit = s.identity.is_some() || s.agent;
        if !explicit {
            for d in DEFAULT_KEYS {
                let p = expand_tilde(d);
                if p.is_file() {
                    match self.load_key(&p).await {
                        Ok(k) => keys.push((p.display().to_string(), Arc::new(k))),
                        Err(e) => tried.push(format!("key '{}' unusable: {e}", p.display())),
                    }
                }
            }
        }
        for (path, key) in keys {
            let hash = if key.algorithm().is_rsa() {
                h.best_supported_rsa_hash()
                    .await
                    .map_err(ssh_err)?
                    .flatten()
            } else {
                None
            };
            let fp = known_hosts::fingerprint(key.public_key());
            let alg = key.algorithm().to_string();
            let r = h
                .authenticate_publickey(user.clone(), PrivateKeyWithHashAlg::new(key, hash))
                .await
                .map_err(ssh_err)?;
            if r.success() {
                return Ok(());
            }
            tried.push(format!("key '{path}' ({alg} {fp}) refused"));
        }
        let socket = s
            .agent_socket
            .clone()
            .or_else(|| std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from));
        if s.agent || (!explicit && socket.is_some()) {
            let Some(socket) = socket else {
                return Err(TransportError::Agent {
                    host: s.name.clone(),
                    reason: "'agent = true' but SSH_AUTH_SOCK is not set; start ssh-agent and ssh-add the key".into(),
                });
            };
            let agent_err = |e: &dyn fmt::Display| TransportError::Agent {
                host: s.name.clone(),
                reason: format!("'{}': {e}", socket.display()),
            };
            let mut agent = AgentClient::connect_uds(&socket)
                .await
                .map_err(|e| agent_err(&e))?;
            let ids = agent
                .request_identities()
                .await
                .map_err(|e| agent_err(&e))?;
            if ids.is_empty() {
                tried.push("ssh-agent: holds no keys (ssh-add one)".into());
            }
            for id in ids {
                let public = id.public_key().into_owned();
                let hash = if public.algorithm().is_rsa() {
                    h.best_supported_rsa_hash()
                        .await
                        .map_err(ssh_err)?
                        .flatten()
                } else {
                    None
                };
                let fp = known_hosts::fingerprint(&public);
                let alg = public.algorithm().to_string();
                match h
                    .authenticate_publickey_with(user.clone(), public, hash, &mut agent)
                    .await
                {
                    Ok(r) if r.success() => return Ok(()),
                    Ok(_) => tried.push(format!("ssh-agent key {alg} {fp} refused")),
                    Err(e) => tried.push(format!("ssh-agent key {alg} {fp}: {e}")),
                }
            }
        }
        Err(TransportError::AuthFailed {
            host: s.name.clone(),
            user,
            tried,
        })
    }

    /// Opens a session channel on the shared connection, reconnecting once
    /// when the connection turns out to be dead.
    async fn channel(&self) -> Result<(Conn, russh::Channel<client::Msg>), TransportError> {
        let s = &self.inner.s;
        for attempt in 0..2 {
            let (c, fresh) = self.conn().await?;
            match tokio::time::timeout(s.connect_timeout, c.channel_open_session()).await {
                Ok(Ok(ch)) => return Ok((c, ch)),
                Ok(Err(e)) => {
                    self.forget(&c).await;
                    if fresh || attempt == 1 {
                        return Err(TransportError::Disconnected {
                            host: s.name.clone(),
                            during: "opening a channel".into(),
                            reason: e.to_string(),
                        });
                    }
                }
                Err(_) => {
                    self.forget(&c).await;
                    return Err(TransportError::TimedOut {
                        host: s.name.clone(),
                        what: "opening a channel".into(),
                        after: s.connect_timeout,
                    });
                }
            }
        }
        Err(TransportError::Disconnected {
            host: s.name.clone(),
            during: "opening a channel".into(),
            reason: "connection lost".into(),
        })
    }

    async fn start(
        &self,
        ch: &russh::Channel<client::Msg>,
        cmd: &str,
        opts: &mut ExecOptions,
    ) -> Result<(), TransportError> {
        let s = &self.inner.s;
        let lost = |e: russh::Error| TransportError::Disconnected {
            host: s.name.clone(),
            during: cmd.to_string(),
            reason: e.to_string(),
        };
        ch.exec(true, wrap_with_timeout(cmd, opts.timeout))
            .await
            .map_err(lost)?;
        match opts.stdin.take() {
            Some(data) => {
                let mut w = ch.make_writer();
                tokio::spawn(async move {
                    let _ = w.write_all(&data).await;
                    let _ = w.shutdown().await;
                });
            }
            None => ch.eof().await.map_err(lost)?,
        }
        Ok(())
    }

    pub async fn exec(
        &self,
        cmd: &str,
        mut opts: ExecOptions,
    ) -> Result<ExecResult, TransportError> {
        let (conn, mut ch) = self.channel().await?;
        let start = Instant::now();
        self.start(&ch, cmd, &mut opts).await?;
        let deadline = tokio::time::Instant::now() + opts.timeout + KILL_GRACE;
        let mut out = Capped::new(opts.output_cap);
        let mut err = Capped::new(opts.err_cap());
        let mut st = Status::default();
        let mut cut = false;
        loop {
            let msg = tokio::select! {
                m = ch.wait() => m,
                _ = tokio::time::sleep_until(deadline) => { cut = true; break; }
            };
            let Some(msg) = msg else { break };
            match &msg {
                ChannelMsg::Data { data } => out.push(data),
                ChannelMsg::ExtendedData { data, ext: 1 } => err.push(data),
                m => st.take(m),
            }
            if st.closed {
                break;
            }
        }
        if cut {
            let _ = ch.close().await;
        } else if !st.ended() && !st.closed {
            // The channel went away without an exit status: the connection dropped.
            self.forget(&conn).await;
            return Err(TransportError::Disconnected {
                host: self.inner.s.name.clone(),
                during: cmd.to_string(),
                reason: "connection lost before the command reported its exit status".into(),
            });
        }
        let elapsed = start.elapsed();
        let (stdout, stdout_truncated) = out.finish();
        let (stderr, stderr_truncated) = err.finish();
        Ok(ExecResult {
            stdout,
            stderr,
            timed_out: cut || st.killed_at_limit(elapsed, opts.timeout),
            exit: st.exit,
            signal: st.signal,
            stdout_truncated,
            stderr_truncated,
            duration: elapsed,
            limit: opts.timeout,
        })
    }

    /// Streams stdout over a connection of its own, so a slow reader (the
    /// restore) never stalls the other commands to this host.
    pub async fn exec_stream(
        &self,
        cmd: &str,
        mut opts: ExecOptions,
    ) -> Result<ExecStream, TransportError> {
        let h = self.open().await?;
        let s = &self.inner.s;
        let ch = match tokio::time::timeout(s.connect_timeout, h.channel_open_session()).await {
            Ok(Ok(ch)) => ch,
            Ok(Err(e)) => {
                return Err(TransportError::Disconnected {
                    host: s.name.clone(),
                    during: "opening a channel".into(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(TransportError::TimedOut {
                    host: s.name.clone(),
                    what: "opening a channel".into(),
                    after: s.connect_timeout,
                });
            }
        };
        self.start(&ch, cmd, &mut opts).await?;
        let name = s.name.clone();
        let cmd = cmd.to_string();
        Ok(ExecStream::spawn(&s.name, move |sink| {
            pump(name, cmd, h, ch, opts, sink)
        }))
    }

    /// Accepts the host key the server offers now, when its fingerprint is
    /// `expected` (the one shown to the operator from `HostKeyUnknown`):
    /// journals `hostkey-accepted` first, then appends it to known_hosts. A
    /// journal failure leaves the key untrusted. A changed key is never
    /// accepted here (`HostKeyChanged`).
    pub async fn accept_host_key(
        &self,
        expected: &str,
        journal: &mut Journal,
    ) -> Result<HostKeyInfo, TransportError> {
        let s = &self.inner.s;
        let key = match self.handshake().await {
            Ok(h) => {
                let fingerprint = {
                    let _ = h
                        .disconnect(russh::Disconnect::ByApplication, "", "en")
                        .await;
                    known_hosts_fingerprint(&s.known_hosts, &s.target)
                };
                return Err(TransportError::AlreadyKnown {
                    host: s.name.clone(),
                    fingerprint,
                });
            }
            Err(Handshake::Failed(e)) => return Err(e),
            Err(Handshake::Unknown(k)) => k,
        };
        let info = HostKeyInfo {
            host: s.name.clone(),
            address: s.addr(),
            key_type: key.algorithm().to_string(),
            fingerprint: known_hosts::fingerprint(&key),
            known_hosts: s.known_hosts.clone(),
        };
        if info.fingerprint != expected.trim() {
            return Err(TransportError::FingerprintMismatch {
                host: s.name.clone(),
                expected: expected.trim().to_string(),
                actual: info.fingerprint,
            });
        }
        journal.append(
            Entry::new(
                kinds::HOSTKEY_ACCEPTED,
                format!(
                    "accepted {} host key {} of host '{}' ({})",
                    info.key_type, info.fingerprint, info.host, info.address
                ),
            )
            .target(s.name.clone())
            .data(json!({
                "host": info.host,
                "fingerprint": info.fingerprint,
                "key_type": info.key_type,
                "address": info.address,
                "known_hosts": info.known_hosts,
            })),
        )?;
        known_hosts::append(&s.known_hosts, &s.target.host, s.target.port, &key)?;
        Ok(info)
    }
}

/// Fingerprint text for an already-trusted host (best effort, for the message).
fn known_hosts_fingerprint(path: &Path, t: &SshTarget) -> String {
    let name = known_hosts::host_pattern(&t.host, t.port);
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split_whitespace();
                let hosts = f.next()?;
                if !hosts.split(',').any(|h| h == name) {
                    return None;
                }
                f.next()?;
                russh::keys::parse_public_key_base64(f.next()?)
                    .ok()
                    .map(|k| known_hosts::fingerprint(&k))
            })
        })
        .unwrap_or_else(|| "in known_hosts".into())
}

async fn pump(
    host: String,
    cmd: String,
    conn: Handle<Client>,
    mut ch: russh::Channel<client::Msg>,
    opts: ExecOptions,
    mut sink: Sink,
) -> Result<ExecResult, TransportError> {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + opts.timeout + KILL_GRACE;
    let mut err = Capped::new(opts.err_cap());
    let mut st = Status::default();
    let mut cut = false;
    let mut abandoned = false;
    let run = async {
        loop {
            let msg = tokio::select! {
                m = ch.wait() => m,
                () = sink.abandoned() => { abandoned = true; break; }
            };
            let Some(msg) = msg else { break };
            match msg {
                ChannelMsg::Data { data } => {
                    if sink.deliver(data).await == Delivered::Abandoned {
                        abandoned = true;
                        break;
                    }
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => err.push(&data),
                m => st.take(&m),
            }
            if st.closed {
                break;
            }
        }
    };
    tokio::select! {
        () = run => {}
        _ = tokio::time::sleep_until(deadline) => cut = true,
    }
    let elapsed = start.elapsed();
    let timed_out = cut || st.killed_at_limit(elapsed, opts.timeout);
    if cut || abandoned {
        let _ = ch.close().await;
    }
    let lost = !cut && !abandoned && !st.ended() && !st.closed;
    if timed_out {
        sink.fail(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "host '{host}': '{cmd}' timed out after {}",
                human_duration(opts.timeout)
            ),
        ));
    } else if lost {
        sink.fail(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            format!("host '{host}' disconnected during '{cmd}'"),
        ));
    }
    let _ = conn
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    if lost {
        return Err(TransportError::Disconnected {
            host,
            during: cmd,
            reason: "connection lost before the command reported its exit status".into(),
        });
    }
    let (stderr, stderr_truncated) = err.finish();
    Ok(ExecResult {
        stdout: String::new(),
        stderr,
        exit: st.exit,
        signal: st.signal,
        timed_out,
        stdout_truncated: false,
        stderr_truncated,
        duration: elapsed,
        limit: opts.timeout,
    })
}
