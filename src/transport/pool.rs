//! The inventory's hosts, reached concurrently: one task per host, so a slow
//! or hung host only ever delays its own result. Connections are opened
//! lazily, on the first command.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{
    ExecOptions, ExecResult, Host, LocalHost, SshHost, SshSettings, TransportError,
    ssh::AskPassphrase,
};
use crate::inventory::{HostSpec, Inventory, TransportKind};

/// The result of one host's work.
#[derive(Debug)]
pub struct HostOutcome<T> {
    pub host: String,
    pub result: Result<T, TransportError>,
    pub elapsed: Duration,
}

/// The hosts of an inventory. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Hosts {
    hosts: Vec<Host>,
}

impl Hosts {
    pub fn new(hosts: Vec<Host>) -> Self {
        Hosts { hosts }
    }

    /// Hosts from inventory entries; `ask` is called for encrypted keys whose
    /// passphrase is not in `passphrase_env`.
    pub fn from_specs(specs: &[HostSpec], ask: Option<AskPassphrase>) -> Self {
        let hosts = specs
            .iter()
            .map(|spec| match spec.transport {
                TransportKind::Local => {
                    let t = spec
                        .command_timeout_s
                        .map_or(super::DEFAULT_TIMEOUT, Duration::from_secs);
                    Host::Local(LocalHost::with_timeout(spec.name(), t))
                }
                TransportKind::Ssh => match SshSettings::from_spec(spec) {
                    Some(mut s) => {
                        s.ask_passphrase = ask.clone();
                        Host::Ssh(SshHost::new(s))
                    }
                    // The inventory validates addresses; an entry without one
                    // cannot reach anything and shows as unreachable.
                    None => Host::Ssh(SshHost::new(SshSettings::new(
                        spec.name(),
                        "invalid-address.invalid",
                        22,
                        "root",
                    ))),
                },
            })
            .collect();
        Hosts { hosts }
    }

    pub fn from_inventory(inv: &Inventory, ask: Option<AskPassphrase>) -> Self {
        Self::from_specs(&inv.hosts, ask)
    }

    pub fn get(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// The host named `name`, or `NoSuchHost`.
    pub fn require(&self, name: &str) -> Result<&Host, TransportError> {
        self.get(name)
            .ok_or_else(|| TransportError::NoSuchHost(name.to_string()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Runs `f` on every host at once, one task each, and sends each result
    /// as soon as it is ready (fastest first). The receiver ends after the
    /// last host.
    pub fn each_streaming<T, F, Fut>(&self, f: F) -> mpsc::Receiver<HostOutcome<T>>
    where
        T: Send + 'static,
        F: Fn(Host) -> Fut,
        Fut: Future<Output = Result<T, TransportError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(self.hosts.len().max(1));
        for h in &self.hosts {
            let tx = tx.clone();
            let name = h.name().to_string();
            let fut = f(h.clone());
            tokio::spawn(async move {
                let t = Instant::now();
                let result = fut.await;
                let _ = tx
                    .send(HostOutcome {
                        host: name,
                        result,
                        elapsed: t.elapsed(),
                    })
                    .await;
            });
        }
        rx
    }

    /// Runs `f` on every host at once; results in inventory order.
    pub async fn each<T, F, Fut>(&self, f: F) -> Vec<HostOutcome<T>>
    where
        T: Send + 'static,
        F: Fn(Host) -> Fut,
        Fut: Future<Output = Result<T, TransportError>> + Send + 'static,
    {
        let mut rx = self.each_streaming(f);
        let mut got = Vec::with_capacity(self.hosts.len());
        while let Some(o) = rx.recv().await {
            got.push(o);
        }
        let order = |n: &str| self.hosts.iter().position(|h| h.name() == n);
        got.sort_by_key(|o| order(&o.host));
        got
    }

    /// Runs `cmd` on every host at once with each host's own timeout.
    pub async fn exec_all(&self, cmd: &str, cap: usize) -> Vec<HostOutcome<ExecResult>> {
        let cmd = cmd.to_string();
        self.each(move |h| {
            let cmd = cmd.clone();
            async move {
                let opts: ExecOptions = h.options().output_cap(cap);
                h.exec(&cmd, opts).await
            }
        })
        .await
    }
}
