//! `status` of 50 SSH hosts (50 inventory hosts on 5 OpenSSH sshd on
//! loopback), probed concurrently by lifeline, against the same commands
//! (a no-op, then the discovery script) sent by a loop of OpenSSH `ssh`,
//! one host after another and all at once. Same machine, same run.
//! `cargo bench --bench status_hosts [-- HOSTS [SERVERS]]`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifeline::inventory::Inventory;
use lifeline::probe::exec::nonce;
use lifeline::probe::{ProbeOptions, base_body, round_script};
use lifeline::sandbox::Sshd;
use lifeline::status::{StatusOptions, collect};
use lifeline::transport::Hosts;

/// CPU seconds (user + system) this process has used: lifeline's own share,
/// the sshd servers and their scripts excluded (they are other processes).
fn self_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the name.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let n_hosts = args.next().unwrap_or(50);
    let n_servers = args.next().unwrap_or(5).max(1);
    let servers: Vec<Sshd> = (0..n_servers)
        .map(|_| Sshd::start())
        .collect::<Result<_, _>>()?;
    // One user key for all servers, one known_hosts for all.
    let key = servers[0].user_key();
    let pubkey = std::fs::read_to_string(format!("{}.pub", key.display()))?;
    for s in &servers[1..] {
        s.authorize(&pubkey)?;
    }
    let dir = tempfile::Builder::new()
        .prefix("lifeline-bench-")
        .tempdir_in(std::env::current_dir()?)?;
    let kh = dir.path().join("known_hosts");
    let mut f = std::fs::File::create(&kh)?;
    for s in &servers {
        writeln!(f, "{}", s.known_hosts_line())?;
    }
    let mut toml = String::new();
    for i in 0..n_hosts {
        let s = &servers[i % n_servers];
        toml.push_str(&format!(
            "[[host]]\nname = \"h{i:02}\"\naddress = \"127.0.0.1:{}\"\nuser = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n\n",
            s.port(),
            s.user(),
            key.display(),
            kh.display()
        ));
    }
    let inv = Inventory::parse(&toml, "bench.toml").map_err(|d| d.to_string())?;
    let opts = StatusOptions {
        host_timeout: Duration::from_secs(60),
        probe: ProbeOptions::default(),
    };
    let rt = tokio::runtime::Runtime::new()?;

    // lifeline: fresh connections each run (a new pool), as `lifeline status` does.
    let mut runs = Vec::new();
    let mut cpu = Vec::new();
    let mut services = 0;
    for _ in 0..3 {
        let c0 = self_cpu_s();
        let t = Instant::now();
        let report = rt.block_on(async {
            let hosts = Hosts::from_inventory(&inv, None);
            collect(&inv, &hosts, &opts, &lifeline::redact::Redactor::new()).await
        });
        runs.push(t.elapsed().as_secs_f64());
        cpu.push(self_cpu_s() - c0);
        let bad: Vec<_> = report
            .hosts
            .iter()
            .filter(|h| !h.reachable || h.error.is_some())
            .collect();
        if !bad.is_empty() {
            return Err(format!("{} host(s) failed: {:?}", bad.len(), bad[0].error).into());
        }
        services = report.hosts.iter().map(|h| h.services.len()).sum();
    }

    // Connecting alone: 50 handshakes and a no-op, all at once.
    let t = Instant::now();
    let c0 = self_cpu_s();
    rt.block_on(async {
        let hosts = Hosts::from_inventory(&inv, None);
        let all = hosts
            .iter()
            .map(|h| h.exec("true", lifeline::transport::ExecOptions::default()));
        for r in futures_util::future::join_all(all).await {
            r.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })?;
    let connect = (t.elapsed().as_secs_f64(), self_cpu_s() - c0);

    // OpenSSH: the same two commands per host.
    let script = round_script(&nonce(), &base_body(&opts.probe), &opts.probe);
    let ssh = |port: u16, user: &str, cmd: &str| {
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", kh.display()))
            .arg("-i")
            .arg(&key)
            .arg("-p")
            .arg(port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        c
    };
    let t = Instant::now();
    for i in 0..n_hosts {
        let s = &servers[i % n_servers];
        for cmd in ["true", script.as_str()] {
            let o = ssh(s.port(), s.user(), cmd).output()?;
            if !o.status.success() {
                return Err(format!("ssh to {} failed", s.port()).into());
            }
        }
    }
    let seq = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let children: Vec<_> = (0..n_hosts)
        .map(|i| {
            let s = &servers[i % n_servers];
            let both = format!("true; {script}");
            // Two connections per host, as above, but every host at once.
            let a = ssh(s.port(), s.user(), "true").spawn();
            let b = ssh(s.port(), s.user(), &both).spawn();
            (a, b)
        })
        .collect();
    for (a, b) in children {
        a?.wait_with_output()?;
        b?.wait_with_output()?;
    }
    let par = t.elapsed().as_secs_f64();

    runs.sort_by(|a, b| a.total_cmp(b));
    println!(
        "status of {n_hosts} SSH hosts ({n_servers} sshd on loopback), {services} services found per run"
    );
    println!(
        "  lifeline status (concurrent, russh):   median {:.2} s  (runs: {})",
        runs[runs.len() / 2],
        runs.iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  lifeline's own CPU per status run:     {}",
        cpu.iter()
            .map(|c| format!("{c:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  lifeline connect + no-op, all hosts:   {:.2} s wall, {:.2} s own CPU",
        connect.0, connect.1
    );
    println!("  OpenSSH ssh loop, one host at a time:  {seq:.2} s");
    println!("  OpenSSH ssh, all hosts at once (&):    {par:.2} s");
    println!("  target: under 2 s for 50 hosts");
    Ok(())
}
