//! Files the lab writes for its sandbox: the inventory (src/inventory
//! format), the answers file, and the incident-1 scripts made from their
//! templates. Everything it names lives inside the lab directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{LabError, Scenario};
use crate::transport::shell_quote;

pub const SYNC_TEMPLATE: &str = include_str!("../../assets/lab/scripts/db_realtime_sync.sh");
pub const RESTARTER_TEMPLATE: &str = include_str!("../../assets/lab/scripts/sync_restarter.sh");
pub const WATCHDOG_TEMPLATE: &str = include_str!("../../assets/lab/scripts/sync_watchdog.sh");

/// Seconds between two rounds of the sync.
pub const SYNC_INTERVAL_S: u32 = 3;
/// Seconds between two checks of the cron-style restarter.
pub const RESTARTER_EVERY_S: u32 = 5;

/// Inventory names used in the lab inventory.
pub const HOST: &str = "lab";
pub const DATABASE: &str = "main";
/// The lab's restore role (made by the lab with LOGIN only; the inventory's `restore_role`).
pub const RESTORE_ROLE: &str = "lifeline_restore";
pub const CATALOG: &str = "external";
pub const BACKUP_PATTERN: &str = "tovplay_external_%Y%m%d_%H%M%S.sql";

/// A process of incident 1: its service name and script.
#[derive(Debug, Clone, Copy)]
pub struct Mechanism {
    pub service: &'static str,
    pub script: &'static str,
    pub template: &'static str,
    /// Writes to the lab database itself (the others bring a writer back).
    pub writes: bool,
}

/// The three mechanisms, in the order the lab starts them.
pub const MECHANISMS: [Mechanism; 3] = [
    Mechanism {
        service: "db-realtime-sync",
        script: "db_realtime_sync",
        template: SYNC_TEMPLATE,
        writes: true,
    },
    Mechanism {
        service: "sync-restarter",
        script: "sync_restarter",
        template: RESTARTER_TEMPLATE,
        writes: false,
    },
    Mechanism {
        service: "sync-watchdog",
        script: "sync_watchdog",
        template: WATCHDOG_TEMPLATE,
        writes: false,
    },
];

/// A TOML basic string.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The shell command that starts a mechanism in its own session, its output
/// appended to its log.
pub fn start_command(dir: &Path, m: &Mechanism) -> String {
    format!(
        "setsid -f {} >> {} 2>&1 < /dev/null",
        shell_quote(
            &dir.join("bin")
                .join(format!("{}.sh", m.script))
                .display()
                .to_string()
        ),
        shell_quote(
            &dir.join("log")
                .join(format!("{}.log", m.script))
                .display()
                .to_string()
        ),
    )
}

/// How the inventory reaches the lab host.
#[derive(Debug, Clone)]
pub enum HostAccess {
    Local,
    Ssh {
        port: u16,
        user: String,
        identity: String,
        known_hosts: String,
    },
}

/// The lab inventory.
pub fn inventory_text(
    scenario: Scenario,
    dir: &Path,
    port: u16,
    db_name: &str,
    watched: &[&str],
    host: &HostAccess,
) -> String {
    let mut t = format!(
        "# lifeline lab, scenario '{scenario}': {}\n# Written by lifeline for its sandbox in {}; removed with it unless kept.\nname = {}\nenv = \"lab\"\n\n[[host]]\nname = {}\n",
        scenario.summary(),
        dir.display(),
        q(&format!("lab-{scenario}")),
        q(HOST),
    );
    match host {
        HostAccess::Local => t.push_str("transport = \"local\"\n"),
        HostAccess::Ssh {
            port,
            user,
            identity,
            known_hosts,
        } => t.push_str(&format!(
            "transport = \"ssh\"\naddress = {}\nuser = {}\nidentity = {}\nknown_hosts = {}\n",
            q(&format!("127.0.0.1:{port}")),
            q(user),
            q(identity),
            q(known_hosts),
        )),
    }
    t.push_str(&format!(
        "\n[[database]]\nname = {}\nurl = {}\nhost = {}\nsslmode = \"disable\"\nrestore_role = {}\nwatch = [{}]\nexpect = {{ User = {{ min = 20 }} }}\nsample_interval_s = 2\n",
        q(DATABASE),
        q(&format!("postgres://postgres@127.0.0.1:{port}/{db_name}")),
        q(HOST),
        q(RESTORE_ROLE),
        watched.iter().map(|w| q(w)).collect::<Vec<_>>().join(", "),
    ));
    t.push_str(&format!(
        "\n[[backups]]\nname = {}\nhost = {}\npath = {}\npattern = {}\ndatabase = {}\n",
        q(CATALOG),
        q(HOST),
        q(&dir.join("backups").display().to_string()),
        q(BACKUP_PATTERN),
        q(DATABASE),
    ));
    if scenario == Scenario::RogueSync {
        for m in &MECHANISMS {
            t.push_str(&format!(
                "\n[[service]]\nname = {}\nhost = {}\nkind = \"process\"\npidfile = {}\nmatch = {}\nstart = {}\n",
                q(m.service),
                q(HOST),
                q(&dir.join("run").join(format!("{}.pid", m.script)).display().to_string()),
                q(&format!("{}.sh", m.script)),
                q(&start_command(dir, m)),
            ));
            if m.writes {
                t.push_str(&format!("databases = [{}]\n", q(DATABASE)));
            }
        }
    }
    t
}

/// Writes the three scripts of incident 1 into `<dir>/bin`, executable.
pub fn write_scripts(
    dir: &Path,
    lab_id: &str,
    psql: &Path,
    pg_dump: &Path,
    port: u16,
) -> Result<(), LabError> {
    let p = |sub: &str| shell_quote(&dir.join(sub).display().to_string());
    let subs = [
        ("@LAB_ID@", shell_quote(lab_id)),
        ("@PSQL@", shell_quote(&psql.display().to_string())),
        ("@PG_DUMP@", shell_quote(&pg_dump.display().to_string())),
        ("@PORT@", port.to_string()),
        ("@RUN@", p("run")),
        ("@LOG@", p("log")),
        ("@SCRIPTS@", p("bin")),
        ("@INTERVAL@", SYNC_INTERVAL_S.to_string()),
        ("@EVERY@", RESTARTER_EVERY_S.to_string()),
    ];
    for m in &MECHANISMS {
        let mut text = m.template.to_string();
        for (k, v) in &subs {
            text = text.replace(k, v);
        }
        let path = dir.join("bin").join(format!("{}.sh", m.script));
        std::fs::write(&path, text)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(LabError::io(format!("write '{}'", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Inventory, ServiceKind, TransportKind};

    #[test]
    fn inventory_parses_for_every_scenario_and_both_transports() {
        let dir = Path::new("/tmp/lab o'dir");
        for s in Scenario::ALL {
            for host in [
                HostAccess::Local,
                HostAccess::Ssh {
                    port: 2222,
                    user: "root".into(),
                    identity: "/k/id".into(),
                    known_hosts: "/k/kh".into(),
                },
            ] {
                let text = inventory_text(s, dir, 5433, "TovPlay", &["User", "Game"], &host);
                let inv = Inventory::parse(&text, "lab.toml")
                    .unwrap_or_else(|e| panic!("{s}: {e}\n{text}"));
                let h = inv.host(HOST).unwrap();
                match host {
                    HostAccess::Local => assert_eq!(h.transport, TransportKind::Local),
                    HostAccess::Ssh { .. } => {
                        assert_eq!(h.socket_address(), Some(("127.0.0.1".into(), 2222)))
                    }
                }
                let db = inv.database(DATABASE).unwrap();
                assert_eq!(db.pg_url().unwrap().dbname, "TovPlay");
                assert_eq!(db.expect["User"].min, Some(20));
                let services = inv.services.len();
                assert_eq!(services, if s == Scenario::RogueSync { 3 } else { 0 });
            }
        }
        let text = inventory_text(
            Scenario::RogueSync,
            dir,
            5433,
            "TovPlay",
            &[],
            &HostAccess::Local,
        );
        let inv = Inventory::parse(&text, "lab.toml").unwrap();
        let sync = inv.service("db-realtime-sync").unwrap();
        assert_eq!(sync.kind, ServiceKind::Process);
        assert_eq!(
            sync.pidfile.as_deref(),
            Some("/tmp/lab o'dir/run/db_realtime_sync.pid")
        );
        assert!(
            sync.start
                .as_deref()
                .unwrap()
                .starts_with("setsid -f '/tmp/lab o'\\''dir/bin/db_realtime_sync.sh' >> ")
        );
    }
}
