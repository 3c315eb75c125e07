//! N `echo` commands to one host: lifeline's transport (one russh connection,
//! concurrent channels) against a loop of OpenSSH `ssh` commands to the same
//! throwaway sshd, in the same run. `cargo bench --bench ssh_exec [-- N]`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use lifeline::sandbox::Sshd;
use lifeline::transport::{ExecOptions, Host, SshHost, SshSettings};

fn host(sshd: &Sshd) -> Result<Host, Box<dyn std::error::Error>> {
    Ok(Host::Ssh(SshHost::new(
        SshSettings::new("bench", "127.0.0.1", sshd.port(), sshd.user())
            .identity(sshd.user_key())
            .known_hosts(sshd.write_known_hosts()?),
    )))
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50);
    let sshd = Sshd::start()?;
    let opts = ExecOptions::default().timeout(Duration::from_secs(60));

    // 1. lifeline: connect, then N concurrent execs over the one connection.
    let h = host(&sshd)?;
    let t = Instant::now();
    h.connect().await?;
    let connect = t.elapsed();
    let runs = (0..n).map(|i| {
        let h = h.clone();
        let opts = opts.clone();
        async move { h.exec(&format!("echo {i}"), opts).await }
    });
    let results = futures_util::future::join_all(runs).await;
    let concurrent = t.elapsed();
    for (i, r) in results.into_iter().enumerate() {
        let r = r?;
        if r.stdout.trim() != i.to_string() {
            return Err(format!("exec {i}: {:?}", r.stdout).into());
        }
    }

    // 2. lifeline: N sequential execs on the open connection (per-command latency).
    let t = Instant::now();
    for i in 0..n {
        h.exec(&format!("echo {i}"), opts.clone()).await?;
    }
    let sequential = t.elapsed();

    // 3. OpenSSH: a loop of N `ssh host echo i` (a new connection each).
    let t = Instant::now();
    for i in 0..n {
        let out = sshd
            .ssh_command()?
            .arg(format!("echo {i}"))
            .stdin(Stdio::null())
            .output()?;
        if String::from_utf8_lossy(&out.stdout).trim() != i.to_string() {
            return Err(format!("ssh {i}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
    }
    let openssh_loop = t.elapsed();

    // 4. OpenSSH: N `ssh` processes at once.
    let t = Instant::now();
    let mut children = Vec::new();
    for i in 0..n {
        children.push(
            sshd.ssh_command()?
                .arg(format!("echo {i}"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?,
        );
    }
    for c in children {
        c.wait_with_output()?;
    }
    let openssh_parallel = t.elapsed();

    println!("ssh_exec: {n} echo commands to one sshd on loopback");
    println!(
        "  lifeline, connect + {n} concurrent on one connection: {} (connect {})",
        secs(concurrent),
        secs(connect)
    );
    println!(
        "  lifeline, {n} sequential on the open connection:      {} ({:.1} ms each)",
        secs(sequential),
        sequential.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "  OpenSSH ssh, loop of {n}:                               {} ({:.1} ms each)",
        secs(openssh_loop),
        openssh_loop.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "  OpenSSH ssh, {n} processes at once:                     {}",
        secs(openssh_parallel)
    );
    println!(
        "  speed-up, concurrent lifeline vs OpenSSH loop: {:.1}x",
        openssh_loop.as_secs_f64() / concurrent.as_secs_f64()
    );
    Ok(())
}
