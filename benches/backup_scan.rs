//! Content-scan benchmark, one run, one throwaway server: the scan of the
//! bench's plain dump (the scanner alone over the file, and the catalog's
//! scan as pick-backup runs it: sha256sum, then `cat` over the local
//! transport into the scanner) against `wc -l` of the same file (one pass
//! over the same bytes) and `psql -f` of it into a fresh database. Checks
//! the scanned row counts against count(*) of the source.
//!
//! `cargo bench --bench backup_scan -- [--cache DIR] [--sql FILE] [--skip-psql]`
//! Builds the database from FILE (default /work/shared/bench/app-1gb.sql),
//! keeps the plain dump in DIR (default target/bench-scan).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lifeline::catalog::content::{self, ScanCache};
use lifeline::catalog::label::canon;
use lifeline::catalog::scan::{ContentScan, Scanner};
use lifeline::inventory::Inventory;
use lifeline::sandbox::{PgCluster, PgOptions};
use lifeline::transport::Hosts;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    cache: PathBuf,
    sql: PathBuf,
    psql: bool,
    /// Only `wc -l` and the scanner over this existing dump (no server).
    scan_only: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        cache: PathBuf::from("target/bench-scan"),
        sql: PathBuf::from("/work/shared/bench/app-1gb.sql"),
        psql: true,
        scan_only: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        match (v[i].as_str(), v.get(i + 1)) {
            ("--cache", Some(d)) => {
                a.cache = PathBuf::from(d);
                i += 1;
            }
            ("--sql", Some(f)) => {
                a.sql = PathBuf::from(f);
                i += 1;
            }
            ("--skip-psql", _) => a.psql = false,
            ("--scan-only", Some(f)) => {
                a.scan_only = Some(PathBuf::from(f));
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    a
}

fn run(cmd: &mut Command) -> Res<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn conn_args(pg: &PgCluster) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        pg.port().to_string(),
        "-U".into(),
        "postgres".into(),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn scan_file(path: &Path) -> Res<ContentScan> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut s = Scanner::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.feed(&buf[..n]);
    }
    Ok(s.finish())
}

fn counts(pg: &PgCluster, db: &str) -> Res<BTreeMap<String, u64>> {
    let tables = pg.psql(
        db,
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1",
    )?;
    let mut m = BTreeMap::new();
    for t in tables.lines() {
        let n = pg.psql(db, &format!("SELECT count(*) FROM {t}"))?;
        m.insert(canon(t), n.parse()?);
    }
    Ok(m)
}

/// `wc -l` and the scanner, three times each, over one file.
fn scan_only(file: &Path) -> Res<()> {
    run(Command::new("cat")
        .arg(file)
        .stdout(std::process::Stdio::null()))?;
    let (mut wc, mut scan) = (Vec::new(), Vec::new());
    let mut rows = 0;
    for _ in 0..3 {
        let t = Instant::now();
        run(Command::new("wc").arg("-l").arg(file))?;
        wc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        rows = scan_file(file)?.total_rows();
        scan.push(t.elapsed().as_secs_f64());
    }
    let (w, s) = (median(wc.clone()), median(scan.clone()));
    println!(
        "wc -l: {w:.2} s {wc:.2?}; scan: {s:.2} s {scan:.2?}, {rows} rows; scan / wc -l: {:.2}x",
        s / w
    );
    Ok(())
}

fn main() -> Res<()> {
    let a = args();
    if let Some(f) = &a.scan_only {
        return scan_only(f);
    }
    std::fs::create_dir_all(&a.cache)?;
    let pg = PgCluster::start_with(PgOptions {
        fsync: true,
        ..PgOptions::default()
    })?;
    println!(
        "cluster: PostgreSQL {} port {}",
        pg.psql("postgres", "SHOW server_version")?,
        pg.port()
    );
    let plain = a.cache.join("app.sql");
    pg.create_db("app")?;
    let t = Instant::now();
    run(Command::new(pg.bin("psql"))
        .args(conn_args(&pg))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "app", "-f"])
        .arg(&a.sql))?;
    println!("build app: {:.1} s", t.elapsed().as_secs_f64());
    let source = counts(&pg, "app")?;
    if !plain.exists() {
        let t = Instant::now();
        run(Command::new(pg.bin("pg_dump"))
            .args(conn_args(&pg))
            .args(["-Fp", "-f"])
            .arg(&plain)
            .arg("app"))?;
        println!("pg_dump -Fp: {:.1} s", t.elapsed().as_secs_f64());
    }
    let size = std::fs::metadata(&plain)?.len();
    println!(
        "plain dump: {size} bytes, {} tables, {} rows",
        source.len(),
        source.values().sum::<u64>()
    );
    // Warm the page cache for every contender alike.
    run(Command::new("cat")
        .arg(&plain)
        .stdout(std::process::Stdio::null()))?;

    let mut wc = Vec::new();
    let mut scan = Vec::new();
    let mut got = ContentScan::default();
    for _ in 0..3 {
        let t = Instant::now();
        run(Command::new("wc").arg("-l").arg(&plain))?;
        wc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        got = scan_file(&plain)?;
        scan.push(t.elapsed().as_secs_f64());
    }
    let scanned: BTreeMap<String, u64> = got.rows.iter().map(|(t, n)| (canon(t), *n)).collect();
    if scanned != source {
        return Err(
            format!("scanned counts differ from count(*): {scanned:?} vs {source:?}").into(),
        );
    }
    println!(
        "scanned counts match count(*) of all {} tables",
        source.len()
    );

    // The catalog's scan as pick-backup runs it, over the local transport.
    let inv_text = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n[[backups]]\nname = \"bench\"\nhost = \"here\"\npath = \"{}\"\ndatabase = \"main\"\n",
        pg.url("app"),
        a.cache.canonicalize()?.display()
    );
    let inv = Inventory::parse(&inv_text, "bench.toml").map_err(|d| format!("{d}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (action_s, hash_s) = rt.block_on(async {
        let hosts = Hosts::from_inventory(&inv, None);
        let h = hosts.get("here").ok_or("no host")?;
        let path = plain.canonicalize()?.display().to_string();
        let file = lifeline::catalog::check_file(
            &path,
            None,
            h as &dyn lifeline::probe::Runner,
            Duration::from_secs(600),
        )
        .await?;
        let t = Instant::now();
        content::file_sha256(h, &file).await?;
        let hash_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let s = content::scan_file(h, &file, &ScanCache::none()).await?;
        let action_s = t.elapsed().as_secs_f64();
        if s.scan.rows != got.rows {
            return Err::<_, Box<dyn std::error::Error>>("the transport scan differs".into());
        }
        Ok((action_s, hash_s))
    })?;

    let mut psql_s = f64::NAN;
    if a.psql {
        pg.create_db("r_psql")?;
        let t = Instant::now();
        run(Command::new(pg.bin("psql"))
            .args(conn_args(&pg))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "r_psql", "-f"])
            .arg(&plain))?;
        psql_s = t.elapsed().as_secs_f64();
    }
    let (wc_m, scan_m) = (median(wc.clone()), median(scan.clone()));
    println!();
    println!("| run | wall | notes |");
    println!("|---|---|---|");
    println!("| `wc -l` | {wc_m:.2} s | median of {wc:.2?} |");
    println!(
        "| content scan (scanner over the file) | {scan_m:.2} s | median of {scan:.2?}, {:.0} MB/s |",
        size as f64 / scan_m / 1e6
    );
    println!(
        "| content scan as pick-backup runs it | {action_s:.2} s | sha256sum on the host {hash_s:.2} s + `cat` over the local transport + scanner |"
    );
    println!("| `psql -f` restore | {psql_s:.1} s | fresh database, same server |");
    println!();
    println!("scan / wc -l: {:.2}x (target: within 2x)", scan_m / wc_m);
    println!("pick-backup scan / wc -l: {:.2}x", action_s / wc_m);
    if a.psql {
        println!(
            "psql -f / scan: {:.1}x, psql -f / pick-backup scan: {:.1}x (target: >= 5x)",
            psql_s / scan_m,
            psql_s / action_s
        );
    }
    Ok(())
}
