//! The real parts start: a throwaway PostgreSQL answers SELECT 1 through
//! tokio-postgres, a throwaway sshd runs `echo` for the OpenSSH client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

#[tokio::test]
async fn postgres_answers_select_1() {
    let pg = support::pg();
    let c = support::client(&pg, "postgres").await;
    let row = c.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    eprintln!(
        "real PostgreSQL on 127.0.0.1:{} answered SELECT 1",
        pg.port()
    );
}

#[test]
fn clusters_run_in_parallel_on_their_own_ports() {
    let a = support::pg();
    let b = support::pg();
    assert_ne!(a.port(), b.port());
    a.create_db("only_in_a").unwrap();
    assert_eq!(
        b.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname='only_in_a'"
        )
        .unwrap(),
        "0"
    );
}

#[test]
fn cluster_is_removed_on_drop_even_after_panic() {
    let root = std::sync::Arc::new(std::sync::Mutex::new(None));
    let r2 = root.clone();
    let res = std::panic::catch_unwind(move || {
        let pg = support::pg();
        *r2.lock().unwrap() = Some((pg.root().to_path_buf(), pg.port()));
        panic!("test failure inside");
    });
    assert!(res.is_err());
    let (dir, port) = root.lock().unwrap().clone().unwrap();
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server still listening on {port}"
    );
}

#[test]
fn restart_keeps_data_and_port() {
    let mut pg = support::pg();
    pg.create_db("kept").unwrap();
    let port = pg.port();
    pg.restart().unwrap();
    assert_eq!(pg.port(), port);
    assert_eq!(
        pg.psql("kept", "SELECT current_database()").unwrap(),
        "kept"
    );
}

#[test]
fn sshd_runs_echo_for_openssh_client() {
    let s = support::sshd();
    let out = s
        .ssh_command()
        .unwrap()
        .arg("echo lifeline-$((40+2))")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh failed: {}\nsshd log: {}",
        support::stderr(&out),
        s.log_tail()
    );
    assert_eq!(support::stdout(&out).trim(), "lifeline-42");
    eprintln!("real sshd on 127.0.0.1:{} ran echo", s.port());
}

#[test]
fn sshd_refuses_unknown_user_key() {
    let s = support::sshd();
    let other = s.generate_key("stranger", "ed25519").unwrap();
    let kh = s.write_known_hosts().unwrap();
    let out = std::process::Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .arg("-i")
        .arg(&other)
        .arg("-p")
        .arg(s.port().to_string())
        .arg(format!("{}@127.0.0.1", s.user()))
        .arg("true")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Every integration test shares one process (tests/it): a test that sets
/// an environment variable, changes the working directory or the umask
/// changes them under every test running beside it. Children get them
/// through `Command` instead.
#[test]
fn no_test_changes_process_wide_state() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let banned = [
        concat!("env::set", "_var("),
        concat!("env::remove", "_var("),
        concat!("set_current", "_dir("),
        concat!("libc::", "umask("),
    ];
    let mut files = vec![root];
    let mut found = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            for (n, line) in text.lines().enumerate() {
                if banned.iter().any(|b| line.contains(b)) {
                    found.push(format!("{}:{}: {}", p.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "process-wide changes in tests:\n{}",
        found.join("\n")
    );
}
