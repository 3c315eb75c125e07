//! Restore benchmark, one run, one throwaway server: lifeline serial and
//! jobs=2 (progress events on, drained by a task as the TUI would) against
//! `psql -f` of the same plain dump and `pg_restore -j 2` of a directory
//! dump, each into a fresh database; and the runbook's restore action
//! (RealActions: backup check, `cat` over the local transport, jobs=2).
//! `prescan` times the pre-scan alone (every statement judged, no database)
//! against the serial restore of the same run, or the recorded one.
//!
//! `cargo bench --bench restore -- [--cache DIR] [--sql FILE] [--fsync on|off]`
//! Builds the database from FILE (default /work/shared/bench/app-1gb.sql),
//! keeps the plain and directory dumps in DIR (default /work/bench-cache).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lifeline::actions::RealActions;
use lifeline::engine::types::{DbTarget, HostTarget, RestoreOutcome, RestoreRequest};
use lifeline::engine::{Actions, Output};
use lifeline::inventory::Inventory;
use lifeline::redact::Redactor;
use lifeline::restore::{Policy, Restore, RestoreEvent, RestoreSource, create_target, prescan};
use lifeline::sandbox::{PgCluster, PgOptions};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// lifeline serial, 2026-11-23 (BENCHMARKS.md), when this run has none.
const RECORDED_SERIAL_S: f64 = 37.9;

struct Args {
    cache: PathBuf,
    sql: PathBuf,
    fsync: bool,
    /// Development aid: keep the cluster here and reuse its `app`.
    cluster_dir: Option<PathBuf>,
    /// Run only these (psql,serial,prescan,pgr,jobs2,action).
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        cache: PathBuf::from("/work/bench-cache"),
        sql: PathBuf::from("/work/shared/bench/app-1gb.sql"),
        fsync: true,
        cluster_dir: None,
        only: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        match (v[i].as_str(), v.get(i + 1)) {
            ("--cache", Some(d)) => a.cache = PathBuf::from(d),
            ("--sql", Some(f)) => a.sql = PathBuf::from(f),
            ("--fsync", Some(x)) => a.fsync = x == "on",
            ("--cluster-dir", Some(d)) => a.cluster_dir = Some(PathBuf::from(d)),
            ("--only", Some(x)) => a.only = Some(x.clone()),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn run(cmd: &mut Command) -> Res<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
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

/// user+system CPU seconds of this process so far (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is [0], utime [11], stime [12]; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn counts(pg: &PgCluster, db: &str) -> Res<BTreeMap<String, u64>> {
    let tables = pg.psql(
        db,
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1",
    )?;
    let mut m = BTreeMap::new();
    for t in tables.lines() {
        let n = pg.psql(db, &format!("SELECT count(*) FROM {t}"))?;
        m.insert(t.to_string(), n.parse()?);
    }
    Ok(m)
}

async fn lifeline(
    pg: &PgCluster,
    plain: &Path,
    jobs: usize,
    stamp_s: u32,
) -> Res<(f64, f64, usize, lifeline::restore::Manifest)> {
    let (admin, conn) =
        tokio_postgres::connect(&pg.conninfo("postgres"), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let stamp = chrono::Utc::now() + chrono::Duration::seconds(stamp_s as i64);
    let target = create_target(&admin, "app", stamp, None).await?;
    let config: tokio_postgres::Config =
        format!("host=127.0.0.1 port={} user=postgres", pg.port()).parse()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = Instant::now();
    let drain = tokio::spawn(async move {
        let mut n = 0usize;
        let mut last = None;
        let mut phases = String::new();
        while let Some(ev) = rx.recv().await {
            n += 1;
            match ev {
                RestoreEvent::Progress(p) => last = Some(p),
                RestoreEvent::Phase { phase } => {
                    phases.push_str(&format!(" {phase:?}@{:.1}s", t0.elapsed().as_secs_f64()));
                }
                _ => {}
            }
        }
        eprintln!("  phases:{phases}");
        (n, last)
    });
    let source = RestoreSource::open(plain).await?;
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let manifest = Restore::new(config, tokio_postgres::NoTls, &target.name)
        .jobs(jobs)
        .events(tx)
        .run(source)
        .await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (events, last) = drain.await?;
    if let Some(p) = last {
        eprintln!(
            "  last progress: {} bytes, {} rows, {} statements, {:.0} MB/s",
            p.bytes,
            p.rows,
            p.statements,
            p.rate_bytes_per_s / 1e6
        );
    }
    Ok((secs, cpu, events, manifest))
}

/// The runbook's restore action as `lifeline run` performs it: the backup
/// checked on its host, `cat` streamed over the (local) transport, the
/// executor with `jobs`, progress forwarded to the step's output.
async fn action(pg: &PgCluster, plain: &Path, jobs: u32) -> Res<(f64, usize, RestoreOutcome)> {
    let inv_text = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n[[backups]]\nname = \"bench\"\nhost = \"here\"\npath = \"{}\"\ndatabase = \"main\"\n",
        pg.url("app"),
        plain
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let inv = Inventory::parse(&inv_text, "bench.toml").map_err(|d| format!("{d}"))?;
    let a = RealActions::new(inv, Redactor::new());
    let spec = a.inventory().database("main").ok_or("no database")?.clone();
    let db = DbTarget {
        name: "main".into(),
        url: spec.pg_url().ok_or("no url")?.clone(),
        spec,
    };
    let host = HostTarget {
        name: "here".into(),
        spec: a.inventory().host("here").ok_or("no host")?.clone(),
    };
    let req = RestoreRequest {
        target_db: format!("app__restore_action{jobs}"),
        database: db,
        catalog: a.inventory().backups[0].clone(),
        host,
        backup_path: plain.display().to_string(),
        jobs,
        // The superuser path, as measured before restore roles existed.
        restore_as: lifeline::engine::types::RestoreAs::Admin,
        picked: None,
    };
    let (tx, mut rx) = tokio::sync::broadcast::channel(1024);
    let out = Output::new(tx, 0, "restore", Redactor::new());
    let drain = tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok(ev) = rx.recv().await {
            if matches!(ev, lifeline::engine::EngineEvent::Progress { .. }) {
                n += 1;
            }
        }
        n
    });
    let t = Instant::now();
    let o = a.restore(&req, &out).await?;
    let secs = t.elapsed().as_secs_f64();
    drop(out);
    let n = drain.await?;
    Ok((secs, n, o))
}

fn main() -> Res<()> {
    let a = args();
    std::fs::create_dir_all(&a.cache)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut pg = PgCluster::start_with(PgOptions {
        fsync: a.fsync,
        dir: a.cluster_dir.clone(),
        ..PgOptions::default()
    })?;
    let want = |what: &str| {
        a.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == what))
    };
    println!(
        "cluster: PostgreSQL {} port {}, fsync={}",
        pg.psql("postgres", "SHOW server_version")?,
        pg.port(),
        if a.fsync { "on" } else { "off" }
    );

    let have_app = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname = 'app'",
    )? == "1";
    if !have_app {
        pg.create_db("app")?;
        let t = Instant::now();
        run(Command::new(pg.bin("psql"))
            .args(conn_args(&pg))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "app", "-f"])
            .arg(&a.sql))?;
        println!(
            "build app from {}: {:.1} s",
            a.sql.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let size = pg.psql("app", "SELECT pg_size_pretty(pg_database_size('app'))")?;
    let source_counts = counts(&pg, "app")?;
    println!(
        "app: {size}, {} tables, {} rows",
        source_counts.len(),
        source_counts.values().sum::<u64>()
    );

    let plain = a.cache.join("app.sql");
    let dir = a.cache.join("app.dir");
    if !plain.exists() {
        let t = Instant::now();
        run(Command::new(pg.bin("pg_dump"))
            .args(conn_args(&pg))
            .args(["-Fp", "-f"])
            .arg(&plain)
            .arg("app"))?;
        println!("pg_dump -Fp: {:.1} s", t.elapsed().as_secs_f64());
    }
    if want("pgr") && !dir.join("toc.dat").exists() {
        let t = Instant::now();
        run(Command::new(pg.bin("pg_dump"))
            .args(conn_args(&pg))
            .args(["-Fd", "-j", "2", "-f"])
            .arg(&dir)
            .arg("app"))?;
        println!("pg_dump -Fd -j 2: {:.1} s", t.elapsed().as_secs_f64());
    }
    println!(
        "plain dump: {} bytes ({})",
        std::fs::metadata(&plain)?.len(),
        plain.display()
    );
    // Warm the page cache for every contender alike.
    run(Command::new("cat")
        .arg(&plain)
        .stdout(std::process::Stdio::null()))?;

    let mut rows: Vec<(String, f64, String)> = Vec::new();

    let mut psql_s = f64::NAN;
    if want("psql") {
        let db = format!("r_psql_{}", chrono::Utc::now().timestamp());
        pg.create_db(&db)?;
        let t = Instant::now();
        run(Command::new(pg.bin("psql"))
            .args(conn_args(&pg))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db, "-f"])
            .arg(&plain))?;
        psql_s = t.elapsed().as_secs_f64();
        rows.push(("psql -f plain".into(), psql_s, String::new()));
        println!("psql -f: {psql_s:.1} s");
    }

    let mut serial_s = f64::NAN;
    if want("serial") {
        let (s1, cpu, events, m) = rt.block_on(lifeline(&pg, &plain, 1, 1))?;
        serial_s = s1;
        if m.tables != source_counts {
            return Err(format!("serial restore rows differ: {:?}", m.tables).into());
        }
        rows.push((
            "lifeline serial".into(),
            serial_s,
            format!("{events} events, lifeline CPU {cpu:.1} s"),
        ));
        println!("lifeline serial: {serial_s:.1} s ({events} events, CPU {cpu:.1} s)");
    }

    if want("prescan") {
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        let report = rt.block_on(async {
            let src = RestoreSource::open(&plain).await?;
            let policy = Policy::new("app__restore_bench").owner("postgres");
            Ok::<_, Box<dyn std::error::Error>>(prescan(src, policy, true).await?)
        })?;
        let s = t.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let (base, which) = if serial_s.is_finite() {
            (serial_s, "this run's serial restore")
        } else {
            (
                RECORDED_SERIAL_S,
                "the serial restore recorded in BENCHMARKS.md",
            )
        };
        let note = format!(
            "{} statements, {:.0} MB/s, lifeline CPU {cpu:.1} s; {:.1} % of {which} ({base:.1} s)",
            report.statements,
            report.bytes as f64 / s / 1e6,
            100.0 * s / base
        );
        println!("pre-scan alone: {s:.2} s ({note})");
        rows.push(("lifeline pre-scan alone (plain file)".into(), s, note));
    }

    let mut pgr_s = f64::NAN;
    if want("pgr") {
        let db = format!("r_pgr_{}", chrono::Utc::now().timestamp());
        pg.create_db(&db)?;
        let t = Instant::now();
        run(Command::new(pg.bin("pg_restore"))
            .args(conn_args(&pg))
            .args(["-j", "2", "-d", &db])
            .arg(&dir))?;
        pgr_s = t.elapsed().as_secs_f64();
        rows.push(("pg_restore -j 2 directory".into(), pgr_s, String::new()));
        println!("pg_restore -j 2: {pgr_s:.1} s");
    }

    let mut par_s = f64::NAN;
    if want("jobs2") {
        let (s2, cpu, events, m) = rt.block_on(lifeline(&pg, &plain, 2, 2))?;
        par_s = s2;
        if m.tables != source_counts {
            return Err(format!("jobs=2 restore rows differ: {:?}", m.tables).into());
        }
        rows.push((
            "lifeline jobs=2".into(),
            par_s,
            format!("{events} events, lifeline CPU {cpu:.1} s"),
        ));
        println!("lifeline jobs=2: {par_s:.1} s ({events} events, CPU {cpu:.1} s)");
    }

    if want("action") {
        let (s3, progress, o) = rt.block_on(action(&pg, &plain, 2))?;
        let got: BTreeMap<String, u64> = o
            .manifest
            .tables
            .iter()
            .map(|(k, v)| (k.clone(), *v as u64))
            .collect();
        if got != source_counts {
            return Err(format!("action restore rows differ: {got:?}").into());
        }
        rows.push((
            "lifeline restore action, jobs=2 (check + cat over the local transport)".into(),
            s3,
            format!("{progress} progress lines"),
        ));
        println!("lifeline restore action jobs=2: {s3:.1} s ({progress} progress lines)");
    }

    println!("\n| run | wall | notes |\n|---|---|---|");
    for (name, s, note) in &rows {
        println!("| {name} | {s:.1} s | {note} |");
    }
    println!(
        "\nserial / psql -f: {:.2}x; jobs=2 / pg_restore -j 2: {:.2}x",
        serial_s / psql_s,
        par_s / pgr_s
    );
    if a.cluster_dir.is_some() {
        pg.keep();
    }
    drop(pg);
    std::thread::sleep(Duration::from_millis(10));
    Ok(())
}
