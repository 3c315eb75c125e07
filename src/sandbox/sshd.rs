use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{SandboxError, free_port, io_err, is_root, tail};

pub const SSHD: &str = "/usr/sbin/sshd";

#[derive(Debug, Clone, Default)]
pub struct SshdOptions {
    /// Extra sshd_config lines (e.g. `SetEnv PATH=...`).
    pub extra_config: Vec<String>,
    /// Keep the files here instead of a temporary directory.
    pub dir: Option<PathBuf>,
}

/// A throwaway OpenSSH server on 127.0.0.1 with a generated ed25519 host
/// key and user key. The server is killed on drop.
#[derive(Debug)]
pub struct Sshd {
    _tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
    user: String,
    host_public: String,
}

fn keygen(path: &Path, kind: &str, comment: &str) -> Result<(), SandboxError> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null());
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    let out = cmd.output().map_err(io_err("run ssh-keygen"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Failed {
            what: "ssh-keygen".into(),
            status: out.status.to_string(),
            log: path.to_path_buf(),
            tail: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Name of the user this process runs as.
pub fn current_user() -> String {
    if is_root() {
        return "root".into();
    }
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "root".into())
}

impl Sshd {
    pub fn start() -> Result<Self, SandboxError> {
        Self::start_with(SshdOptions::default())
    }

    pub fn start_with(opts: SshdOptions) -> Result<Self, SandboxError> {
        if !Path::new(SSHD).is_file() {
            return Err(SandboxError::NoSshd);
        }
        if is_root() {
            std::fs::create_dir_all("/run/sshd").map_err(io_err("create /run/sshd"))?;
        }
        let (tmp, dir) = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io_err("create sshd dir"))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("lifeline-sshd-")
                    .tempdir()
                    .map_err(io_err("create temporary directory"))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let host_key = dir.join("host_ed25519");
        let user_key = dir.join("id_ed25519");
        if !host_key.exists() {
            keygen(&host_key, "ed25519", "lifeline-test-host")?;
        }
        if !user_key.exists() {
            keygen(&user_key, "ed25519", "lifeline-test-user")?;
        }
        let user_pub = std::fs::read_to_string(dir.join("id_ed25519.pub"))
            .map_err(io_err("read user public key"))?;
        let auth = dir.join("authorized_keys");
        if !auth.exists() {
            std::fs::write(&auth, &user_pub).map_err(io_err("write authorized_keys"))?;
        }
        let host_public = std::fs::read_to_string(dir.join("host_ed25519.pub"))
            .map_err(io_err("read host public key"))?
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let mut s = Sshd {
            _tmp: tmp,
            config: dir.join("sshd_config"),
            log: dir.join("sshd.log"),
            dir,
            port: 0,
            child: None,
            user: current_user(),
            host_public,
        };
        s.write_config(free_port()?, &opts)?;
        s.spawn(&opts)?;
        Ok(s)
    }

    fn write_config(&mut self, port: u16, opts: &SshdOptions) -> Result<(), SandboxError> {
        self.port = port;
        let mut f = std::fs::File::create(&self.config).map_err(io_err("write sshd_config"))?;
        let d = self.dir.display();
        let mut text = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys {d}/authorized_keys_extra\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
             MaxSessions 100\nMaxStartups 200\nLogLevel ERROR\n"
        );
        // sshd honours only the first SetEnv line: merge ours with the caller's,
        // ahead of any Match block the caller adds. SHLVL=1 keeps bash from
        // sourcing ~/.bashrc for ssh commands (a slow or locked rc file, e.g.
        // pyenv's rehash lock, would otherwise stall every test).
        let mut env = vec!["SHLVL=1".to_string()];
        let mut rest = String::new();
        for l in &opts.extra_config {
            match l.trim().strip_prefix("SetEnv ") {
                Some(vars) => env.extend(vars.split_whitespace().map(String::from)),
                None => {
                    rest.push_str(l);
                    rest.push('\n');
                }
            }
        }
        text.push_str(&format!("SetEnv {}\n{rest}", env.join(" ")));
        f.write_all(text.as_bytes())
            .map_err(io_err("write sshd_config"))
    }

    fn spawn(&mut self, opts: &SshdOptions) -> Result<(), SandboxError> {
        for attempt in 0..8 {
            if attempt > 0 {
                self.write_config(free_port()?, opts)?;
            }
            let log = std::fs::File::create(&self.log).map_err(io_err("create sshd.log"))?;
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&self.config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(io_err("spawn sshd"))?;
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.child = Some(child);
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
            let t = tail(&self.log, 10);
            if !t.contains("Address already in use") {
                return Err(SandboxError::Failed {
                    what: "sshd".into(),
                    status: "did not listen".into(),
                    log: self.log.clone(),
                    tail: t,
                });
            }
        }
        Err(SandboxError::Failed {
            what: "sshd".into(),
            status: "no free port".into(),
            log: self.log.clone(),
            tail: tail(&self.log, 10),
        })
    }

    /// Kills the server (sessions in progress keep running until their client goes).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and every session it started (their shells and
    /// commands included), as a crash or power loss of the host would.
    pub fn kill_with_sessions(&mut self) {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let signal = |sig: &str, pids: &[u32]| {
            if pids.is_empty() {
                return;
            }
            let _ = Command::new("kill")
                .args(["-s", sig])
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
        };
        // Freeze the whole tree first (a stopped process cannot fork or exec),
        // rescanning until no new process appears, then kill it all.
        signal("STOP", &[pid]);
        let mut family: Vec<u32> = Vec::new();
        for _ in 0..50 {
            let new: Vec<u32> = descendants(pid)
                .into_iter()
                .filter(|p| !family.contains(p))
                .collect();
            if new.is_empty() {
                break;
            }
            signal("STOP", &new);
            family.extend(new);
        }
        signal("KILL", &family);
        self.kill();
    }

    /// Starts the server again on the same port with the same keys.
    pub fn restart(&mut self) -> Result<(), SandboxError> {
        self.kill();
        let log = std::fs::File::create(&self.log).map_err(io_err("create sshd.log"))?;
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io_err("spawn sshd"))?;
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(SandboxError::Failed {
            what: "sshd restart".into(),
            status: "did not listen".into(),
            log: self.log.clone(),
            tail: tail(&self.log, 10),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The user's private key (ed25519, no passphrase).
    pub fn user_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    /// Authorises another public key (e.g. an rsa or ecdsa test key).
    pub fn authorize(&self, public_key_line: &str) -> Result<(), SandboxError> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("authorized_keys_extra"))
            .map_err(io_err("open authorized_keys_extra"))?;
        writeln!(f, "{}", public_key_line.trim()).map_err(io_err("write authorized_keys_extra"))
    }
    /// `ssh-ed25519 AAAA...` of the host key.
    pub fn host_public_key(&self) -> &str {
        &self.host_public
    }
    /// The known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_public)
    }
    /// Writes a known_hosts file holding this server's key and returns its path.
    pub fn write_known_hosts(&self) -> Result<PathBuf, SandboxError> {
        let p = self.dir.join("known_hosts");
        std::fs::write(&p, format!("{}\n", self.known_hosts_line()))
            .map_err(io_err("write known_hosts"))?;
        Ok(p)
    }
    /// Generates a key pair of `kind` (ed25519, ecdsa, rsa) named `name` in the sshd dir.
    pub fn generate_key(&self, name: &str, kind: &str) -> Result<PathBuf, SandboxError> {
        let p = self.dir.join(name);
        keygen(&p, kind, name)?;
        Ok(p)
    }
    /// Log tail, for assertions and error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 20)
    }
    /// An OpenSSH client command for this server (batch mode, strict host keys).
    pub fn ssh_command(&self) -> Result<Command, SandboxError> {
        let kh = self.write_known_hosts()?;
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", kh.display()))
            .arg("-i")
            .arg(self.user_key())
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", self.user));
        Ok(c)
    }
}

/// Every process below `root` (children, their children, ...), from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (child, _) in parent_of.iter().filter(|(_, pp)| *pp == p) {
            out.push(*child);
            frontier.push(*child);
        }
    }
    out
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}
