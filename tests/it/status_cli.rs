//! `lifeline status` end to end (the built binary): an inventory with a
//! host over OpenSSH sshd holding a backup catalog, this machine running
//! the incident 1 sync loop (declared as an inventory process service), and
//! a host nobody answers for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::{Duration, Instant};

#[test]
fn status_json_and_text() {
    let sshd = support::sshd();
    let lab = support::probe_lab();
    let _loop = lab.start_sync_loop();
    let backups = tempfile::tempdir().unwrap();
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql("app", "CREATE TABLE t(id int); INSERT INTO t VALUES (1)")
        .unwrap();
    let dump = backups.path().join("app_20241208_073601.sql");
    let o = std::process::Command::new(pg.bin("pg_dump"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .arg("-f")
        .arg(&dump)
        .arg("app")
        .output()
        .unwrap();
    assert!(o.status.success());
    std::fs::write(backups.path().join("app_20241209_000000.sql"), b"").unwrap();
    let dead_port = lifeline::sandbox::free_port().unwrap();
    let kh = sshd.write_known_hosts().unwrap();
    let state = tempfile::tempdir().unwrap();
    let inv_path = state.path().join("lifeline.toml");
    std::fs::write(
        &inv_path,
        format!(
            r#"
[[host]]
name = "db-box"
address = "127.0.0.1:{port}"
user = "{user}"
identity = "{key}"
known_hosts = "{kh}"

[[host]]
name = "me"
transport = "local"

[[host]]
name = "gone"
address = "127.0.0.1:{dead_port}"
user = "{user}"
identity = "{key}"
known_hosts = "{kh}"
connect_timeout_s = 3

[[database]]
name = "external"
url = "postgres://app@db.example.net:5432/TovPlay"

[[backups]]
name = "nightly"
host = "db-box"
path = "{backups}"
pattern = "app_%Y%m%d_%H%M%S.sql"
database = "external"

[[service]]
name = "sync-loop"
host = "me"
kind = "process"
match = "db_realtime_sync\\.sh"
start = "sh {script}"
databases = ["external"]
"#,
            port = sshd.port(),
            user = sshd.user(),
            key = sshd.user_key().display(),
            kh = kh.display(),
            backups = backups.path().display(),
            script = lab.script("db_realtime_sync.sh"),
        ),
    )
    .unwrap();

    let t0 = Instant::now();
    let out = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["status", "--json", "--timeout", "15"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(t0.elapsed() < Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_str(&support::stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}", support::stdout(&out)));
    let host = |n: &str| {
        v["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == n)
            .unwrap_or_else(|| panic!("no host {n}"))
            .clone()
    };

    let db = host("db-box");
    assert_eq!(db["reachable"], true, "{db}");
    assert!(db["error"].is_null(), "{db}");
    assert!(db["latency_ms"].as_u64().is_some());

    let gone = host("gone");
    assert_eq!(gone["reachable"], false);
    let err = gone["error"].as_str().unwrap();
    assert!(err.contains("'gone'"), "{err}");
    assert!(gone["latency_ms"].is_null());

    let me = host("me");
    assert_eq!(me["reachable"], true);
    let services = me["services"].as_array().unwrap();
    let sync = services
        .iter()
        .find(|s| s["name"] == "sync-loop")
        .unwrap_or_else(|| panic!("inventory service not merged: {services:#?}"));
    assert_eq!(sync["kind"], "process");
    assert_eq!(sync["active"], true);
    let hz = sync["hazards"].as_array().unwrap();
    let clean = hz
        .iter()
        .find(|h| h["kind"] == "dump-clean-restore")
        .unwrap_or_else(|| panic!("{hz:#?}"));
    assert!(
        clean["evidence"]
            .as_str()
            .unwrap()
            .starts_with("pg_dump --clean --if-exists"),
        "{clean}"
    );
    assert!(
        sync["databases_reached"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["inventory"] == "external"),
        "{sync:#}"
    );

    let b = &v["backups"][0];
    assert_eq!(b["name"], "nightly");
    let files = b["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{b:#}");
    let empty = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with("app_20241209_000000.sql")
        })
        .unwrap();
    assert_eq!(empty["ok"], false);
    assert_eq!(empty["format"], "empty");
    assert_eq!(empty["taken_at"], "2024-12-09T00:00:00Z");
    assert_eq!(empty["size"], 0);
    let good = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with("app_20241208_073601.sql")
        })
        .unwrap();
    assert_eq!(good["ok"], true, "{good}");
    assert_eq!(good["format"], "plain");
    assert!(good["problem"].is_null());
    assert!(v["databases"].is_array());

    // Text for people: hazards first.
    let out = support::lifeline(state.path())
        .arg("-i")
        .arg(&inv_path)
        .args(["status", "--timeout", "15"])
        .output()
        .unwrap();
    let text = support::stdout(&out);
    eprintln!("{text}");
    let hz = text.find("HAZARDS (").unwrap_or_else(|| panic!("{text}"));
    assert!(hz < text.find("HOSTS").unwrap());
    assert!(text.contains("[dump-clean-restore] me "), "{text}");
    assert!(text.contains("gone  UNREACHABLE"), "{text}");
    assert!(text.contains("BROKEN app_20241209_000000.sql"), "{text}");
}

#[test]
fn status_without_inventory_is_a_usage_error() {
    let state = tempfile::tempdir().unwrap();
    let out = support::lifeline(state.path())
        .current_dir(state.path())
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(support::stderr(&out).contains("no inventory"));
}

/// Look-alike databases on the watched server (issue 19): `tovplay` (case)
/// and `TоvPlay` (Cyrillic о) beside `TovPlay` are flagged in text and
/// JSON with their session counts, and still when `TovPlay` itself is gone.
#[test]
fn look_alike_databases_on_the_same_server_are_flagged() {
    let pg = support::pg();
    for n in ["TovPlay", "tovplay", "T\u{43e}vPlay", "tovplay_local"] {
        pg.create_db(n).unwrap();
    }
    // An application session on the decoy.
    let mut app = std::process::Command::new(pg.bin("psql"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .args(["-d", "tovplay", "-c", "SELECT pg_sleep(60)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !pg
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'tovplay'",
        )
        .unwrap()
        .contains('1')
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "psql never connected"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let state = tempfile::tempdir().unwrap();
    let inv_path = state.path().join("lifeline.toml");
    std::fs::write(
        &inv_path,
        format!(
            "[[database]]\nname = \"main\"\nurl = \"postgres://postgres@127.0.0.1:{}/TovPlay\"\nsslmode = \"disable\"\n",
            pg.port()
        ),
    )
    .unwrap();
    let status = |json: bool| {
        let mut c = support::lifeline(state.path());
        c.arg("-i").arg(&inv_path).arg("status");
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", support::stderr(&out));
        support::stdout(&out)
    };
    let v: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
    let la = v["databases"][0]["lookalikes"].as_array().unwrap().clone();
    let got: Vec<(String, String, serde_json::Value)> = la
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["shown"].as_str().unwrap().to_string(),
                l["kinds"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "T\u{43e}vPlay".to_string(),
                "T<U+043E>vPlay".to_string(),
                serde_json::json!(["confusable"])
            ),
            (
                "tovplay".to_string(),
                "tovplay".to_string(),
                serde_json::json!(["case"])
            ),
        ],
        "{la:?}"
    );
    assert!(la.iter().all(|l| l["looks_like"] == "TovPlay"));
    let decoy = la.iter().find(|l| l["name"] == "tovplay").unwrap();
    assert_eq!(decoy["sessions"], 1, "{decoy}");

    let text = status(false);
    assert!(
        text.contains("▲ LOOK-ALIKE on the same server: 'tovplay' looks like 'TovPlay' (case), 1 session(s); act only on 'TovPlay'"),
        "{text}"
    );
    assert!(
        text.contains("'T<U+043E>vPlay' looks like 'TovPlay' (confusable)"),
        "{text}"
    );
    assert!(!text.contains("'tovplay_local' looks like"), "{text}");

    // The watched database gone: the decoys are still listed.
    pg.psql("postgres", "DROP DATABASE \"TovPlay\" WITH (FORCE)")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&status(true)).unwrap();
    assert_eq!(v["databases"][0]["health"], "missing", "{v}");
    assert_eq!(
        v["databases"][0]["lookalikes"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    let _ = app.kill();
    let _ = app.wait();
}
