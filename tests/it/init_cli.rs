//! `lifeline init` on a machine with a real PostgreSQL cluster: the starter
//! inventory (from ~/.pgpass, PG* variables, the cluster's socket and
//! ~/.ssh/config) is 0600, holds no password, passes `check`, and `status`
//! on it shows the same databases as a hand-written inventory. Hostile
//! names in the sources cannot inject TOML; an existing file is kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SECRET: &str = "pgpass-S3CRET-never-copied";
const ENV_SECRET: &str = "env-S3CRET-never-copied";

fn home(dir: &Path, ssh_config: &str, pgpass: &str) -> std::path::PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/config"), ssh_config).unwrap();
    std::fs::write(
        home.join(".ssh/known_hosts"),
        "seen.example ssh-ed25519 AAAAC3Nza\n|1|aGFzaA==|aGFzaA== ssh-ed25519 AAAAC3Nza\n",
    )
    .unwrap();
    std::fs::write(home.join(".pgpass"), pgpass).unwrap();
    std::fs::set_permissions(home.join(".pgpass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    home
}

/// The binary with only this HOME and these PG* variables.
fn lifeline(dir: &Path, home: &Path, pg_env: &[(&str, String)]) -> Command {
    let mut c = support::lifeline(&dir.join("state"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PG")) {
        c.env_remove(k);
    }
    c.env("HOME", home);
    for (k, v) in pg_env {
        c.env(k, v);
    }
    c
}

/// (name, target, health, system identifier and OID) of every database in `status --json`.
fn databases(json: &str) -> Vec<(String, String, String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<_> = v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_string(),
                d["target"].as_str().unwrap_or("").to_string(),
                d["health"].as_str().unwrap_or("").to_string(),
                format!(
                    "{} {}",
                    d["identity"]["system_identifier"], d["identity"]["oid"]
                ),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn init_on_a_real_cluster_passes_check_and_status_matches_a_hand_written_inventory() {
    let pg = support::pg();
    pg.psql("postgres", "CREATE DATABASE app").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let port = pg.port();
    let home = home(
        dir,
        "Host *\n  ServerAliveInterval 30\n",
        &format!("# a comment\n127.0.0.1:{port}:app:postgres:{SECRET}\n"),
    );
    let env = [
        ("PGHOST", "127.0.0.1".to_string()),
        ("PGPORT", port.to_string()),
        ("PGDATABASE", "postgres".to_string()),
        ("PGUSER", "postgres".to_string()),
        ("PGPASSWORD", ENV_SECRET.to_string()),
    ];
    let out = dir.join("lifeline.toml");
    let o = lifeline(dir, &home, &env)
        .arg("init")
        .arg("-o")
        .arg(&out)
        .arg("--socket-dir")
        .arg(pg.socket_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    let said = support::stdout(&o);
    assert!(said.contains("3 database(s)"), "{said}");
    let text = std::fs::read_to_string(&out).unwrap();
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    assert!(
        !text.contains(SECRET) && !text.contains(ENV_SECRET),
        "a secret was written:\n{text}"
    );
    assert!(text.contains("password_env = \"PGPASSWORD\""), "{text}");
    assert!(
        text.contains(&format!("postgres://postgres@127.0.0.1:{port}/app")),
        "{text}"
    );
    assert!(
        text.contains(&format!("?host={}", pg.socket_dir().display()).replace('/', "%2F")),
        "the socket: {text}"
    );
    assert!(
        text.contains("# name = \"seen.example\""),
        "known_hosts as a suggestion: {text}"
    );

    let check = lifeline(dir, &home, &env)
        .arg("-i")
        .arg(&out)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check: {}\n{text}",
        support::stderr(&check)
    );

    // The same databases written by hand.
    let hand = dir.join("hand.toml");
    let sock = pg.socket_dir().display().to_string().replace('/', "%2F");
    std::fs::write(
        &hand,
        format!(
            "[[host]]\nname = \"local\"\ntransport = \"local\"\n\n\
             [[database]]\nname = \"app\"\nurl = \"postgres://postgres@127.0.0.1:{port}/app\"\nhost = \"local\"\nsslmode = \"disable\"\n\n\
             [[database]]\nname = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:{port}/postgres\"\nhost = \"local\"\npassword_env = \"PGPASSWORD\"\nsslmode = \"disable\"\n\n\
             [[database]]\nname = \"postgres-2\"\nurl = \"postgres://postgres@:{port}/postgres?host={sock}\"\nhost = \"local\"\nsslmode = \"disable\"\n"
        ),
    )
    .unwrap();
    let status = |inv: &Path| {
        let o = lifeline(dir, &home, &env)
            .arg("-i")
            .arg(inv)
            .args(["status", "--json", "--timeout", "10"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", support::stderr(&o));
        databases(&support::stdout(&o))
    };
    let got = status(&out);
    assert_eq!(got, status(&hand));
    assert_eq!(got.len(), 3, "{got:?}");
    for (name, target, health, identity) in &got {
        // Reached and identified (no tables yet: "empty").
        assert_eq!(health, "empty", "{name} {target}: {got:?}");
        assert!(!identity.contains("null"), "{name}: {got:?}");
    }
}

#[test]
fn hostile_names_in_the_sources_cannot_inject_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = home(
        dir,
        "Host good x\"]name=\"evil\n  HostName 127.0.0.1\n  Port 1\n  User \"admin\\\"\n[[host]]\"\nHost *\n  User nobody\n",
        &format!("db.example:5432:shop\"]\\:[[host]]:carol:{SECRET}\n*:*:*:bob:{SECRET}\n"),
    );
    let out = dir.join("inv.toml");
    let o = lifeline(dir, &home, &[])
        .arg("init")
        .arg("-o")
        .arg(&out)
        .arg("--socket-dir")
        .arg(dir.join("no-sockets-here"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(SECRET), "{text}");
    // Every entry is one the sources named: two ssh hosts, a local host for
    // the wildcard line, two databases; nothing injected.
    let count = |k: &str| text.lines().filter(|l| *l == k).count();
    assert_eq!(count("[[host]]"), 3, "{text}");
    assert_eq!(count("[[database]]"), 2, "{text}");
    // The wildcard database is listed as something to fill in.
    assert!(
        support::stdout(&o).contains("fill in: "),
        "{}",
        support::stdout(&o)
    );
    assert!(text.contains("# TODO: "), "{text}");
    let check = lifeline(dir, &home, &[])
        .arg("-i")
        .arg(&out)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check: {}\n{text}",
        support::stderr(&check)
    );
    let inv = support::inventory(&text);
    let names: Vec<String> = inv.hosts.iter().map(|h| h.name.get_ref().clone()).collect();
    assert_eq!(names, ["local", "good", "x--name--evil"], "{text}");
}

#[test]
fn an_existing_file_is_kept_unless_force_and_force_makes_it_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = home(dir, "", "");
    let out = dir.join("lifeline.toml");
    std::fs::write(&out, "# hand-written, precious\n").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = |force: bool| {
        let mut c = lifeline(dir, &home, &[]);
        c.arg("init")
            .arg("-o")
            .arg(&out)
            .arg("--socket-dir")
            .arg(dir);
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let o = run(false);
    assert_eq!(o.status.code(), Some(2), "{}", support::stderr(&o));
    assert!(
        support::stderr(&o).contains("--force"),
        "{}",
        support::stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "# hand-written, precious\n"
    );
    let o = run(true);
    assert!(o.status.success(), "{}", support::stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("lifeline init"), "{text}");
    assert!(text.contains("No database found"), "{text}");
    assert!(
        support::stdout(&o).contains("fill in: no database found"),
        "{}",
        support::stdout(&o)
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

/// Services of `status --json` whose command or scripts mention `needle`,
/// as (host, name, hazard kinds).
fn services_with(json: &str, needle: &str) -> Vec<(String, String, Vec<String>)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out = Vec::new();
    for h in v["hosts"].as_array().unwrap() {
        for s in h["services"].as_array().unwrap() {
            if s.to_string().contains(needle) {
                let mut kinds: Vec<String> = s["hazards"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|z| z["kind"].to_string())
                    .collect();
                kinds.sort();
                out.push((
                    h["name"].as_str().unwrap().to_string(),
                    s["name"].as_str().unwrap().to_string(),
                    kinds,
                ));
            }
        }
    }
    out.sort();
    out
}

/// (name, host, path, pattern, database, file count) of every catalog.
fn catalogs(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut out: Vec<String> = v["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {} {} {}",
                c["name"],
                c["host"],
                c["path"],
                c["pattern"],
                c["database"],
                c["files"].as_array().map_or(0, Vec::len)
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn init_over_ssh_finds_the_backup_directory_and_status_matches_a_hand_written_inventory() {
    let sshd = support::sshd();
    let pg = support::pg();
    pg.psql("postgres", "CREATE DATABASE \"TovPlay\"").unwrap();
    pg.psql(
        "TovPlay",
        "CREATE TABLE \"User\" (id int PRIMARY KEY); INSERT INTO \"User\" SELECT generate_series(1, 22)",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A backup directory with two real dumps and a file that is not one.
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    for name in ["tovplay_20261201_120000.sql", "tovplay_20261202_120000.sql"] {
        let st = Command::new(pg.bin("pg_dump"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &pg.port().to_string(),
            ])
            .arg("-f")
            .arg(backups.join(name))
            .arg("TovPlay")
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::write(backups.join("README.txt"), "not a backup\n").unwrap();
    // The sync job of incident 1, running.
    let lab = support::probe_lab();
    let _sync = lab.start_sync_loop();

    let port = pg.port();
    let home = home(
        dir,
        &format!(
            "Host dbhost\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n",
            sshd.port(),
            sshd.user(),
            sshd.user_key().display()
        ),
        &format!("127.0.0.1:{port}:TovPlay:postgres:{SECRET}\n"),
    );
    std::fs::write(
        home.join(".ssh/known_hosts"),
        sshd.known_hosts_line() + "\n",
    )
    .unwrap();
    let out = dir.join("lifeline.toml");
    let o = lifeline(dir, &home, &[])
        .arg("init")
        .arg("-o")
        .arg(&out)
        .args([
            "--socket-dir",
            "/nonexistent",
            "--host",
            "dbhost",
            "--look-in",
        ])
        .arg(&backups)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(o.status.success(), "{}\n{}", support::stderr(&o), text);
    assert!(
        support::stdout(&o).contains("1 backup catalog(s)"),
        "{}",
        support::stdout(&o)
    );
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        text.contains("pattern = \"tovplay_%Y%m%d_%H%M%S.sql\""),
        "{text}"
    );
    assert!(text.contains("database = \"TovPlay\""), "{text}");
    let check = lifeline(dir, &home, &[])
        .arg("-i")
        .arg(&out)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check: {}\n{text}",
        support::stderr(&check)
    );

    // The same written by hand.
    let hand = dir.join("hand.toml");
    std::fs::write(
        &hand,
        format!(
            "[[host]]\nname = \"local\"\ntransport = \"local\"\n\n\
             [[host]]\nname = \"dbhost\"\naddress = \"127.0.0.1:{sp}\"\nuser = \"{user}\"\nidentity = \"{key}\"\n\n\
             [[database]]\nname = \"TovPlay\"\nurl = \"postgres://postgres@127.0.0.1:{port}/TovPlay\"\nhost = \"local\"\nsslmode = \"disable\"\n\n\
             [[backups]]\nname = \"dbhost-backups\"\nhost = \"dbhost\"\npath = \"{b}\"\npattern = \"tovplay_%Y%m%d_%H%M%S.sql\"\ndatabase = \"TovPlay\"\n",
            sp = sshd.port(),
            user = sshd.user(),
            key = sshd.user_key().display(),
            b = backups.display()
        ),
    )
    .unwrap();
    let status = |inv: &Path| {
        let o = lifeline(dir, &home, &[])
            .arg("-i")
            .arg(inv)
            .args(["status", "--json", "--timeout", "30"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", support::stderr(&o));
        support::stdout(&o)
    };
    let (a, b) = (status(&out), status(&hand));
    assert_eq!(databases(&a), databases(&b));
    assert_eq!(catalogs(&a), catalogs(&b));
    let cats = catalogs(&a);
    assert_eq!(cats.len(), 1, "{cats:?}");
    assert!(cats[0].ends_with(" 2"), "both dumps listed: {cats:?}");
    let needle = lab.script("db_realtime_sync.sh");
    let hz = services_with(&a, &needle);
    assert_eq!(hz, services_with(&b, &needle));
    assert!(
        hz.iter()
            .any(|(h, _, kinds)| h == "dbhost" && !kinds.is_empty()),
        "the sync job and its hazards, seen over ssh: {hz:?}"
    );
}

#[test]
fn an_unknown_host_is_a_usage_error_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let home = home(dir, "Host known\n  HostName 127.0.0.1\n  Port 1\n", "");
    let out = dir.join("lifeline.toml");
    let o = lifeline(dir, &home, &[])
        .arg("init")
        .arg("-o")
        .arg(&out)
        .args(["--socket-dir", "/nonexistent", "--host", "nope"])
        .output()
        .unwrap();
    let err = support::stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no host 'nope'") && err.contains("known"),
        "{err}"
    );
    assert!(!out.exists());
}
