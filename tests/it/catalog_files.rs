//! Backup catalogs against real dumps: a good plain dump (with its own
//! `-- Started on` time), a good custom dump, a gzip-wrapped plain dump,
//! a truncated plain dump, a truncated custom dump, a truncated gzip and an
//! empty file, each made with the real pg_dump of a throwaway cluster and
//! read through a transport (this machine, and OpenSSH sshd on loopback).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lifeline::catalog::{DumpFormat, TimeSource, read_catalog};
use lifeline::inventory::Inventory;
use lifeline::probe::Runner;
use lifeline::transport::{Host, LocalHost};

fn pg_dump(pg: &support::PgCluster, args: &[&str], out: &Path) {
    let o = Command::new(pg.bin("pg_dump"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(pg.port().to_string())
        .args(args)
        .arg("-f")
        .arg(out)
        .arg("app")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::stderr(&o));
}

fn truncate(src: &Path, dst: &Path, keep: usize) {
    let b = std::fs::read(src).unwrap();
    std::fs::write(dst, &b[..keep.min(b.len())]).unwrap();
}

/// A catalog directory holding one of each kind of file.
pub fn make_catalog(dir: &Path) {
    let pg = support::pg();
    pg.create_db("app").unwrap();
    pg.psql(
        "app",
        "CREATE TABLE \"User\"(id int PRIMARY KEY, email text); \
         INSERT INTO \"User\" SELECT g, 'u' || g || '@example.net' FROM generate_series(1, 20000) g;",
    )
    .unwrap();
    let good_plain = dir.join("app_20241208_073601.sql");
    pg_dump(&pg, &["--verbose"], &good_plain);
    let good_custom = dir.join("app_20241209_073601.dump");
    pg_dump(&pg, &["-Fc"], &good_custom);
    truncate(&good_plain, &dir.join("app_20241210_040000.sql"), 60_000);
    let size = std::fs::metadata(&good_custom).unwrap().len() as usize;
    truncate(
        &good_custom,
        &dir.join("app_20241210_080000.dump"),
        size / 2,
    );
    std::fs::write(dir.join("app_20241210_120000.sql"), b"").unwrap();
    let gz = dir.join("app_20241207_000000.sql.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c '{}' > '{}'",
            good_plain.display(),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let gz_len = std::fs::metadata(&gz).unwrap().len() as usize;
    truncate(&gz, &dir.join("app_20241206_000000.sql.gz"), gz_len / 2);
    std::fs::write(dir.join("README.txt"), "not a backup\n").unwrap();
}

fn inventory(dir: &Path, host_toml: &str) -> Inventory {
    let text = format!(
        r#"{host_toml}
[[database]]
name = "main"
url = "postgres://app@db.example.net:5432/app"

[[backups]]
name = "nightly"
host = "box"
path = "{}"
pattern = "app_%Y%m%d_%H%M%S.*"
database = "main"
"#,
        dir.display()
    );
    Inventory::parse(&text, "t.toml").unwrap()
}

pub fn assert_catalog(r: &lifeline::catalog::CatalogReport) {
    assert_eq!(r.error, None);
    let by = |name: &str| {
        r.files
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} not listed: {:#?}", r.files))
    };
    assert!(
        !r.files.iter().any(|f| f.name == "README.txt"),
        "pattern filters"
    );
    assert_eq!(r.files.len(), 7);

    let p = by("app_20241208_073601.sql");
    assert!(p.ok, "{p:?}");
    assert_eq!(p.format, DumpFormat::Plain);
    assert_eq!(
        p.time_source,
        TimeSource::Header,
        "--verbose records -- Started on"
    );
    assert_eq!(p.name_time.as_deref(), Some("2024-12-08T07:36:01Z"));
    assert!(p.recorded_at.is_some());

    let c = by("app_20241209_073601.dump");
    assert!(c.ok, "{c:?}");
    assert_eq!(c.format, DumpFormat::Custom);
    assert_eq!(c.time_source, TimeSource::Header, "Archive created at");
    assert_eq!(c.dumped_db.as_deref(), Some("app"));

    let g = by("app_20241207_000000.sql.gz");
    assert!(g.ok, "{g:?}");
    assert_eq!(g.format, DumpFormat::PlainGzip);

    let t = by("app_20241210_040000.sql");
    assert!(!t.ok);
    assert!(
        t.problem.as_deref().unwrap().starts_with("truncated"),
        "{t:?}"
    );
    assert_eq!(
        t.time_source,
        TimeSource::Header,
        "a cut copy still carries its Started on"
    );
    assert_eq!(t.recorded_at, p.recorded_at);

    let tc = by("app_20241210_080000.dump");
    assert!(!tc.ok, "{tc:?}");
    assert!(
        tc.problem.as_deref().unwrap().starts_with("truncated"),
        "{tc:?}"
    );

    let tg = by("app_20241206_000000.sql.gz");
    assert!(!tg.ok);
    assert!(
        tg.problem.as_deref().unwrap().contains("gzip -t failed"),
        "{tg:?}"
    );

    let e = by("app_20241210_120000.sql");
    assert!(!e.ok);
    assert_eq!(e.format, DumpFormat::Empty);
    assert_eq!(e.problem.as_deref(), Some("empty file (0 bytes)"));
    assert_eq!(e.taken_at, "2024-12-10T12:00:00Z");

    // Newest first.
    let times: Vec<&str> = r.files.iter().map(|f| f.taken_at.as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    let json = serde_json::to_value(r).unwrap();
    let f0 = &json["files"][0];
    for k in ["path", "taken_at", "size", "format", "ok"] {
        assert!(f0.get(k).is_some(), "missing {k} in {f0}");
    }
}

#[tokio::test]
async fn catalog_on_this_machine() {
    let tmp = tempfile::tempdir().unwrap();
    make_catalog(tmp.path());
    let inv = inventory(
        tmp.path(),
        "[[host]]\nname = \"box\"\ntransport = \"local\"\n",
    );
    let runner = Host::Local(LocalHost::new("box"));
    let r = read_catalog(
        &inv.backups[0],
        &runner as &dyn Runner,
        Duration::from_secs(60),
    )
    .await;
    assert_catalog(&r);
}

#[tokio::test]
async fn catalog_over_ssh() {
    let tmp = tempfile::tempdir().unwrap();
    make_catalog(tmp.path());
    let sshd = support::sshd();
    let inv = inventory(
        tmp.path(),
        "[[host]]\nname = \"box\"\naddress = \"127.0.0.1\"\n",
    );
    let host = support::ssh_host(&sshd, "box");
    let r = read_catalog(
        &inv.backups[0],
        &host as &dyn Runner,
        Duration::from_secs(60),
    )
    .await;
    assert_catalog(&r);
}

#[tokio::test]
async fn missing_directory_is_an_error_with_the_path() {
    let inv = inventory(
        Path::new("/nonexistent/lifeline-backups"),
        "[[host]]\nname = \"box\"\ntransport = \"local\"\n",
    );
    let r = read_catalog(
        &inv.backups[0],
        &Host::Local(LocalHost::new("box")) as &dyn Runner,
        Duration::from_secs(20),
    )
    .await;
    let e = r.error.unwrap();
    assert!(e.contains("'/nonexistent/lifeline-backups'"), "{e}");
    assert!(r.files.is_empty());
}
