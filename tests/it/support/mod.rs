//! Shared test support: real PostgreSQL clusters and sshd servers from
//! `lifeline::sandbox`, plus helpers to run the built binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod odd;
pub mod tmux;

use std::path::Path;
use std::process::{Command, Output};

#[allow(unused_imports)]
pub use lifeline::sandbox::{PgCluster, PgOptions, Sshd, SshdOptions};

/// Starts a throwaway cluster or fails the test with the reason.
pub fn pg() -> PgCluster {
    PgCluster::start().unwrap_or_else(|e| panic!("throwaway PostgreSQL: {e}"))
}

/// Starts a throwaway sshd or fails the test with the reason.
pub fn sshd() -> Sshd {
    Sshd::start().unwrap_or_else(|e| panic!("throwaway sshd: {e}"))
}

/// A tokio-postgres client to `db` on the cluster (connection task spawned).
pub async fn client(pg: &PgCluster, db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&pg.conninfo(db), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {db}: {e}"));
    tokio::spawn(conn);
    client
}

/// The built `lifeline` binary with a private state dir.
pub fn lifeline(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lifeline"));
    c.arg("--state-dir")
        .arg(state)
        .env_remove("LIFELINE_INVENTORY")
        // Head logs go to the sshd user's real home: only the anchor tests
        // turn them on (and remove what they wrote).
        .env("LIFELINE_HEAD_ANCHORS", "off")
        .env("NO_COLOR", "1");
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An inventory holding one database `main` (url to `db` on the cluster)
/// plus a local host `here`; `extra` lines go into the [[database]] table.
pub fn db_inventory_text(pg: &PgCluster, db: &str, extra: &str) -> String {
    format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n{extra}\n",
        pg.url(db)
    )
}

/// Parses an inventory text or fails the test with its diagnostics.
pub fn inventory(text: &str) -> lifeline::inventory::Inventory {
    lifeline::inventory::Inventory::parse(text, "test.toml")
        .unwrap_or_else(|d| panic!("inventory: {d}\n{text}"))
}

/// TLS files made with the openssl CLI: a CA, and a server certificate it
/// signed (CA:FALSE, subjectAltName=IP:127.0.0.1) with its key.
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

pub fn tls_files(dir: &Path, name: &str) -> TlsFiles {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |x: &Path| x.to_str().unwrap().to_string();
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.crt"),
        p("server.key"),
        p("server.csr"),
        p("server.crt"),
        p("ext.cnf"),
    );
    run(&[
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
        "-days",
        "2",
        "-subj",
        &format!("/CN=lifeline test CA {name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "2",
        "-extfile",
        &s(&ext),
    ]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).unwrap();
    TlsFiles { ca, cert, key }
}

/// Requires a password (scram) for `role` over TCP: prepends a pg_hba line and reloads.
pub fn require_password(pg: &PgCluster, role: &str) {
    let hba = pg.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all {role} 127.0.0.1/32 scram-sha-256\n{old}"),
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
}

/// A random password made in the test.
pub fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut s = String::from("pw-");
    for _ in 0..3 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

/// Incident 1 on a test host: scripts, a cron root, a `systemctl` stand-in
/// whose recorded units point at the scripts. Everything lives in a
/// temporary directory removed on drop.
pub struct ProbeLab {
    pub dir: tempfile::TempDir,
}

impl ProbeLab {
    pub fn bin(&self) -> std::path::PathBuf {
        self.dir.path().join("bin")
    }
    pub fn script(&self, name: &str) -> String {
        self.bin().join(name).display().to_string()
    }
    pub fn cron_root(&self) -> std::path::PathBuf {
        self.dir.path().join("etc")
    }
    pub fn standin(&self) -> std::path::PathBuf {
        self.dir.path().join("systemd")
    }
    pub fn options(&self) -> lifeline::probe::ProbeOptions {
        lifeline::probe::ProbeOptions {
            cron_root: self.cron_root().display().to_string(),
            extra_path: Some(self.standin().display().to_string()),
            user_crontabs: false,
            timeout: std::time::Duration::from_secs(30),
            ..Default::default()
        }
    }
    /// A real `sh` loop running the sync script (killed, with its children, on drop).
    pub fn start_sync_loop(&self) -> KillGroup {
        use std::os::unix::process::CommandExt;
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while :; do /bin/sh {}; sleep 1; done",
                self.script("db_realtime_sync.sh")
            ))
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the script itself runs.
        let want = self.script("db_realtime_sync.sh");
        for _ in 0..200 {
            let ps = Command::new("ps").args(["-eo", "args="]).output().unwrap();
            if String::from_utf8_lossy(&ps.stdout)
                .lines()
                .any(|l| l.starts_with("/bin/sh ") && l.contains(&want))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        KillGroup(child)
    }
}

/// Kills a process group on drop.
pub struct KillGroup(pub std::process::Child);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let pgid = self.0.id();
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{pgid}"))
            .status();
        let _ = self.0.wait();
    }
}

pub fn probe_lab() -> ProbeLab {
    let dir = tempfile::Builder::new()
        .prefix("lifeline-probe-")
        .tempdir()
        .unwrap();
    let root = dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for s in [
        "db_realtime_sync.sh",
        "sync_monitor.sh",
        "ultimate_protection.sh",
    ] {
        std::fs::copy(fixtures.join("probe").join(s), bin.join(s)).unwrap();
    }
    let b = bin.display().to_string();
    let etc = root.join("etc");
    std::fs::create_dir_all(etc.join("cron.d")).unwrap();
    std::fs::write(
        etc.join("crontab"),
        format!(
            "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n# m h dom mon dow user\tcommand\n17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n@reboot root {b}/ultimate_protection.sh\n"
        ),
    )
    .unwrap();
    std::fs::write(
        etc.join("cron.d/db_realtime_sync"),
        format!("# redundancy: also run the sync from cron\n*/5 * * * * root {b}/db_realtime_sync.sh >> /var/log/db_realtime_sync.log 2>&1\n"),
    )
    .unwrap();
    std::fs::write(
        etc.join("cron.d/sync_monitor"),
        format!("*/2 * * * * root {b}/sync_monitor.sh\n"),
    )
    .unwrap();
    // The recorded systemctl output, with the unit paths pointing at our scripts.
    let src = fixtures.join("systemd");
    let dst = root.join("systemd");
    std::fs::create_dir_all(dst.join("show")).unwrap();
    for f in ["systemctl", "list-units.json", "list-timers.json"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    for e in std::fs::read_dir(src.join("show")).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        // Paths point at our scripts; the recorded MainPIDs (of another
        // machine) move out of the range of pids this machine can have.
        let text: Vec<String> = text
            .replace("/usr/local/bin/", &format!("{b}/"))
            .lines()
            .map(|l| {
                match l
                    .strip_prefix("MainPID=")
                    .and_then(|v| v.parse::<u32>().ok())
                {
                    Some(v) if v > 0 => format!("MainPID={}", 4_200_000_000u32 + v),
                    _ => l.to_string(),
                }
            })
            .collect();
        std::fs::write(dst.join("show").join(e.file_name()), text.join("\n") + "\n").unwrap();
    }
    ProbeLab { dir }
}

/// What discovery must find in the probe lab.
pub fn assert_incident_one(d: &lifeline::probe::Discovery, lab: &ProbeLab) {
    use lifeline::inventory::ServiceKind;
    use lifeline::probe::HazardKind;
    let svc = |name: &str| {
        d.services
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no service '{name}' in {:#?}",
                    d.services.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    let sync = lab.script("db_realtime_sync.sh");

    // The cron file and the script it runs, flagged with the evidence line.
    let cron = svc("cron.d/db_realtime_sync:2");
    assert_eq!(cron.kind, ServiceKind::Cron);
    assert_eq!(cron.schedule.as_deref(), Some("*/5 * * * *"));
    assert_eq!(cron.scripts, vec![sync.clone()]);
    let h = cron
        .hazards
        .iter()
        .find(|h| h.kind == HazardKind::DumpCleanRestore)
        .unwrap_or_else(|| panic!("{:#?}", cron.hazards));
    assert_eq!(
        h.evidence,
        "pg_dump --clean --if-exists \"$LOCAL_DB\" | psql -h \"$EXTERNAL_HOST\" -U app -d TovPlay"
    );
    assert_eq!(h.location, format!("{sync}:13"));
    assert!(
        h.detail.contains("db.example.net:5432/TovPlay"),
        "{}",
        h.detail
    );
    assert!(
        cron.databases_reached
            .iter()
            .any(|r| r.display() == "db.example.net:5432/TovPlay"),
        "{:?}",
        cron.databases_reached
    );

    // The unit, through the systemctl stand-in, with its Restart= policy.
    let unit = svc("db-realtime-sync.service");
    assert_eq!(unit.kind, ServiceKind::Systemd);
    assert_eq!(unit.restart_policy.as_deref(), Some("always (after 10s)"));
    assert!(unit.active);
    assert_eq!(unit.enabled, Some(true));
    assert!(
        unit.hazards
            .iter()
            .any(|h| h.kind == HazardKind::DumpCleanRestore)
    );
    let timer = svc("db-sync-monitor.timer");
    assert_eq!(timer.kind, ServiceKind::Timer);
    assert_eq!(timer.schedule.as_deref(), Some("*-*-* *:00/2:00"));
    // The distribution's own units are left out.
    for vendor in ["ssh.service", "cron.service", "postgresql@15-main.service"] {
        assert!(
            !d.services.iter().any(|s| s.name == vendor),
            "{vendor} listed"
        );
    }

    // The process running the script, found by ps.
    let procs: Vec<_> = d
        .services
        .iter()
        .filter(|s| s.kind == ServiceKind::Process)
        .collect();
    let running = procs
        .iter()
        .find(|s| s.command.as_deref() == Some(&format!("/bin/sh {sync}")))
        .unwrap_or_else(|| panic!("script process not found in {procs:#?}"));
    assert!(
        running.name.starts_with("db_realtime_sync.sh (pid "),
        "{}",
        running.name
    );
    assert!(
        running
            .hazards
            .iter()
            .any(|h| h.kind == HazardKind::DumpCleanRestore)
    );
    assert!(
        running
            .notes
            .iter()
            .any(|n| n.starts_with("started by pid ")),
        "{:?}",
        running.notes
    );

    // Redundancy: the same script from the unit, cron, the watchdog (cron and timer) and the loop.
    let r = unit
        .hazards
        .iter()
        .find(|h| h.kind == HazardKind::RedundantStart)
        .unwrap_or_else(|| panic!("{:#?}", unit.hazards));
    assert!(
        r.detail
            .contains(&format!("'{sync}' is started by 5 mechanisms")),
        "{}",
        r.detail
    );
    for m in [
        "systemd unit db-realtime-sync.service",
        "/etc/cron.d/db_realtime_sync:2",
        "through a watchdog that restarts db-realtime-sync.service",
        "timer db-sync-monitor.timer",
        "process db_realtime_sync.sh (pid",
    ] {
        let m = m.replace("/etc/", &format!("{}/", lab.cron_root().display()));
        assert!(r.detail.contains(&m), "'{m}' missing from: {}", r.detail);
    }
    assert_eq!(r.evidence, format!("ExecStart={sync}"));
    let rc = cron
        .hazards
        .iter()
        .find(|h| h.kind == HazardKind::RedundantStart)
        .unwrap();
    assert!(
        rc.evidence.starts_with("*/5 * * * * root "),
        "{}",
        rc.evidence
    );
    // The same, as the typed facts stop-services acts on (never the sentences).
    for s in [unit, cron, timer] {
        assert!(
            s.facts.starter_of.iter().any(|o| o.script == sync),
            "{}: {:?}",
            s.name,
            s.facts
        );
    }
    let line = cron.facts.cron_line.as_ref().expect("cron line fact");
    assert_eq!(
        (line.file.clone(), line.line),
        (
            format!("{}/cron.d/db_realtime_sync", lab.cron_root().display()),
            2
        )
    );
    assert!(
        matches!(
            running.facts.started_by,
            Some(lifeline::probe::StartedBy::Pid { .. })
        ),
        "{:?}",
        running.facts
    );

    // The auto-restore loop, started at boot from /etc/crontab.
    let boot = svc("crontab:5");
    let a = boot
        .hazards
        .iter()
        .find(|h| h.kind == HazardKind::AutoRestore)
        .unwrap_or_else(|| panic!("{:#?}", boot.hazards));
    assert_eq!(a.evidence, "if [ \"$USERS\" -lt 5 ]; then");
    assert_eq!(
        a.location,
        format!("{}:10", lab.script("ultimate_protection.sh"))
    );
}

/// A transport host for the sandbox sshd (its user key, its known_hosts).
pub fn ssh_host(sshd: &Sshd, name: &str) -> lifeline::transport::Host {
    use lifeline::transport::{Host, SshHost, SshSettings};
    Host::Ssh(SshHost::new(
        SshSettings::new(name, "127.0.0.1", sshd.port(), sshd.user())
            .identity(sshd.user_key())
            .known_hosts(sshd.write_known_hosts().unwrap())
            .connect_timeout(std::time::Duration::from_secs(10)),
    ))
}

/// The shipped runbooks (`runbooks/*.toml`) with every stop-services hold
/// set to `hold_s` seconds, written to `dir` for `LIFELINE_RUNBOOKS`: for
/// drills whose subject is not the hold's length. One drill in
/// `lab_drills` keeps the shipped 120 s hold.
/// True when shipped runbook `id` declares parameter `name`.
pub fn runbook_has_param(id: &str, name: &str) -> bool {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runbooks")
        .join(format!("{id}.toml"));
    std::fs::read_to_string(path)
        .map(|t| t.contains(&format!("[[param]]\nname = \"{name}\"\n")))
        .unwrap_or(false)
}

pub fn quick_runbooks(dir: &Path, hold_s: u64) -> std::path::PathBuf {
    let out = dir.join("quick-runbooks");
    std::fs::create_dir_all(&out).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    for e in std::fs::read_dir(&shipped).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines = Vec::new();
        for l in text.lines() {
            if l.starts_with("hold_s =") {
                continue;
            }
            lines.push(l.to_string());
            if l == "action = \"stop-services\"" {
                lines.push(format!("hold_s = {hold_s}"));
            }
        }
        std::fs::write(out.join(p.file_name().unwrap()), lines.join("\n") + "\n").unwrap();
    }
    // The shipped rogue-sync-wipe must have been rewritten, or the drills
    // would silently run the shipped holds again.
    let rogue = std::fs::read_to_string(out.join("rogue-sync-wipe.toml")).unwrap();
    assert!(
        rogue.contains(&format!("action = \"stop-services\"\nhold_s = {hold_s}\n")),
        "{rogue}"
    );
    out
}
