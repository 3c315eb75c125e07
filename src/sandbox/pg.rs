use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{SandboxError, free_port, io_err, is_root, tail, user_ids};

/// Directory of the PostgreSQL server binaries: the one finder
/// ([`crate::pgbin`]), as a sandbox error.
pub fn pg_bin_dir() -> Result<PathBuf, SandboxError> {
    Ok(crate::pgbin::pg_bin_dir()?)
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
        Err(last.unwrap_or(SandboxError::NoPostgres(crate::pgbin::PgBinError::NotFound)))
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
