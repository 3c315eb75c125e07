use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{SandboxError, free_port, io_err, is_root, tail, user_ids};

/// Environment variable naming the one directory of the PostgreSQL programs
/// (skips the search).
pub const PG_BIN_ENV: &str = "LIFELINE_PG_BIN";
/// Environment variable (tests, unusual installs) replacing the finder's
/// search path: `:`-separated directories, each a bin directory or a parent
/// of `<major>/bin` directories (like /usr/lib/postgresql). When set,
/// nothing else is searched.
pub const PG_SEARCH_ENV: &str = "LIFELINE_PG_SEARCH";

/// The directories the finder looks in, in order: `$LIFELINE_PG_BIN`; then
/// either `$LIFELINE_PG_SEARCH` alone, or the newest /usr/lib/postgresql/*/bin
/// and PATH (then `pg_config --bindir`, see [`pg_config_dir`]).
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os(PG_BIN_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(search) = std::env::var_os(PG_SEARCH_ENV) {
        for d in std::env::split_paths(&search) {
            dirs.extend(versioned_bins(&d));
            dirs.push(d);
        }
        return dirs;
    }
    dirs.extend(versioned_bins(Path::new("/usr/lib/postgresql")));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The last resort (not with `$LIFELINE_PG_SEARCH`): `pg_config --bindir`,
/// run only when nothing else matched.
fn pg_config_dir() -> Option<PathBuf> {
    if std::env::var_os(PG_SEARCH_ENV).is_some() {
        return None;
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let d = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!d.is_empty()).then(|| PathBuf::from(d))
}

/// `<root>/<major>/bin` directories, newest major first.
fn versioned_bins(root: &Path) -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.into_iter().rev().map(|(_, d)| d).collect()
}

/// Directory of the PostgreSQL server binaries (the first search directory,
/// see [`PG_SEARCH_ENV`], holding `initdb` and `pg_ctl`). The one finder:
/// the sandbox, the lab and the client programs all use it.
pub fn pg_bin_dir() -> Result<PathBuf, SandboxError> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    // pg_config runs only when nothing before it matched (once_with is lazy).
    for d in search_dirs()
        .into_iter()
        .chain(std::iter::once_with(pg_config_dir).flatten())
    {
        if has(&d) {
            // Often symlinks into the real bin dir, which also holds psql and pg_dump.
            let real = std::fs::canonicalize(d.join("initdb"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|r| has(r))
                .unwrap_or(d);
            return Ok(real);
        }
    }
    Err(SandboxError::NoPostgres)
}

/// A PostgreSQL program (pg_dump, pg_restore, psql, ...): the first search
/// directory holding it, else the bare name (left to PATH).
pub fn pg_program(name: &str) -> PathBuf {
    search_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .or_else(|| {
            pg_config_dir()
                .map(|d| d.join(name))
                .filter(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// `fsync=off` makes tests faster; the lab's "production" keeps it on.
    pub fsync: bool,
    /// Keep the cluster directory here instead of a temporary one (and do not remove it).
    pub dir: Option<PathBuf>,
    /// Extra `-c name=value` settings.
    pub settings: Vec<(String, String)>,
    /// (certificate, key) PEM files to turn on TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running throwaway cluster; superuser `postgres`, trust auth on
/// 127.0.0.1 and a private socket dir. Stopped (and removed) on drop.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    root: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    opts: PgOptions,
    running: bool,
}

impl PgCluster {
    pub fn start() -> Result<Self, SandboxError> {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(opts: PgOptions) -> Result<Self, SandboxError> {
        let bin = pg_bin_dir()?;
        let run_as = if is_root() {
            Some(user_ids("postgres").ok_or(SandboxError::NoPostgresUser)?)
        } else {
            None
        };
        let (tmp, root) = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io_err(format!("create {}", d.display())))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("lifeline-pg-")
                    .tempdir()
                    .map_err(io_err("create temporary directory"))?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let data = root.join("data");
        let sock = root.join("sock");
        let log = root.join("postgres.log");
        std::fs::create_dir_all(&sock).map_err(io_err("create socket dir"))?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod cluster dir"))?;
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777))
            .map_err(io_err("chmod socket dir"))?;
        if let Some((uid, gid)) = run_as {
            for p in [&root, &sock] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(io_err(format!("chown {} to postgres", p.display())))?;
            }
            if let Some((cert, key)) = &opts.tls {
                for p in [cert, key] {
                    std::os::unix::fs::chown(p, Some(uid), Some(gid))
                        .map_err(io_err(format!("chown {}", p.display())))?;
                }
            }
        }
        let mut c = PgCluster {
            bin,
            root,
            _tmp: tmp,
            data,
            sock,
            log,
            port: 0,
            run_as,
            opts,
            running: false,
        };
        if !c.data.join("PG_VERSION").exists() {
            let initdb_log = c.root.join("initdb.log");
            let out = std::fs::File::create(&initdb_log).map_err(io_err("create initdb.log"))?;
            if let Some((uid, gid)) = run_as {
                let _ = std::os::unix::fs::chown(&initdb_log, Some(uid), Some(gid));
            }
            let err = out.try_clone().map_err(io_err("dup log"))?;
            let status = c
                .cmd("initdb")
                .arg("-D")
                .arg(&c.data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"])
                .args(["--no-instructions"])
                .args(if c.opts.fsync {
                    &[][..]
                } else {
                    &["--no-sync"][..]
                })
                .stdout(out)
                .stderr(err)
                .status()
                .map_err(io_err("run initdb"))?;
            if !status.success() {
                return Err(SandboxError::Failed {
                    what: "initdb".into(),
                    status: status.to_string(),
                    tail: tail(&initdb_log, 20),
                    log: initdb_log,
                });
            }
        }
        c.start_server()?;
        Ok(c)
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(prog));
        cmd.env_remove("PGDATA").env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid).env("HOME", &self.root);
        }
        cmd
    }

    /// Starts the server on a fresh free port (retrying on a port clash).
    pub fn start_server(&mut self) -> Result<(), SandboxError> {
        let mut last = None;
        for _ in 0..8 {
            let port = if self.port != 0 && last.is_none() {
                self.port
            } else {
                free_port()?
            };
            let mut o = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c unix_socket_permissions=0777",
                self.sock.display(),
                if self.opts.fsync { "on" } else { "off" }
            );
            if let Some((cert, key)) = &self.opts.tls {
                o.push_str(&format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    cert.display(),
                    key.display()
                ));
            }
            for (k, v) in &self.opts.settings {
                o.push_str(&format!(" -c {k}={v}"));
            }
            let status = self
                .cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "-o", &o, "start"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(io_err("run pg_ctl start"))?;
            if status.success() {
                self.port = port;
                self.running = true;
                return Ok(());
            }
            let t = tail(&self.log, 20);
            let clash = t.contains("could not bind") || t.contains("Address already in use");
            last = Some(SandboxError::Failed {
                what: "pg_ctl start".into(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: t,
            });
            if !clash {
                break;
            }
        }
        Err(last.unwrap_or(SandboxError::NoPostgres))
    }

    /// Stops the server (fast shutdown); the data stays.
    pub fn stop(&mut self) -> Result<(), SandboxError> {
        self.pg_ctl_stop("fast")
    }

    /// Stops and starts again on the same port (a new postmaster start time).
    pub fn restart(&mut self) -> Result<(), SandboxError> {
        self.stop()?;
        self.start_server()
    }

    fn pg_ctl_stop(&mut self, mode: &str) -> Result<(), SandboxError> {
        if !self.running {
            return Ok(());
        }
        let status = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "60", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(io_err("run pg_ctl stop"))?;
        self.running = false;
        if status.success() {
            Ok(())
        } else {
            Err(SandboxError::Failed {
                what: "pg_ctl stop".into(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: tail(&self.log, 10),
            })
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn log_path(&self) -> &Path {
        &self.log
    }
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }
    /// Path of a PostgreSQL client program of the same version (psql, pg_dump, ...).
    pub fn bin(&self, prog: &str) -> PathBuf {
        self.bin.join(prog)
    }
    /// `postgres://postgres@127.0.0.1:PORT/db`
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
    /// libpq/tokio-postgres conninfo for `db` over TCP.
    pub fn conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname='{}'",
            self.port,
            db.replace('\\', "\\\\").replace('\'', "\\'")
        )
    }

    /// Runs SQL through psql (ON_ERROR_STOP, unaligned, tuples only) and returns stdout.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, SandboxError> {
        let out = Command::new(self.bin("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .env_remove("PGPASSWORD")
            .output()
            .map_err(io_err("run psql"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(SandboxError::Failed {
                what: format!("psql -d {db}"),
                status: out.status.to_string(),
                log: PathBuf::new(),
                tail: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// `createdb` through SQL.
    pub fn create_db(&self, name: &str) -> Result<(), SandboxError> {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\"")),
        )
        .map(|_| ())
    }

    /// Keeps the cluster directory after drop (the lab's --dir).
    pub fn keep(&mut self) {
        if let Some(t) = self._tmp.take() {
            let _ = t.keep();
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl_stop("immediate");
        // TempDir removes the directory; an explicit --dir stays.
    }
}
