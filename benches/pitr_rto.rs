//! RTO bench, one run, one throwaway server archiving into a real pgBackRest
//! repository: (b) lifeline's dump restore (the restore action, jobs=2) of the
//! 1.1 GB bench database, (a) lifeline's point-in-time recovery of the same
//! database to the transaction before a rogue DELETE (target search,
//! `pgbackrest restore`, replay, pg_dump of the recovered copy, then the same
//! restore action of that dump into the live server), and (c) `pgbackrest
//! restore` + replay driven by hand, the commands an operator would type.
//!
//! `cargo bench --bench pitr_rto --no-run`, then
//! `target/release/deps/pitr_rto-* [--sql FILE] [--dump FILE] [--dir DIR] [--churn N]`.
//! FILE builds the database (default /work/shared/bench/app-1gb.sql); the
//! plain dump of it (default /work/bench-cache/app.sql) is the dump path's
//! backup; DIR (default /var/tmp) holds the repository and the recoveries.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifeline::actions::RealActions;
use lifeline::engine::types::{DbTarget, HostTarget, RestoreAs, RestoreOutcome, RestoreRequest};
use lifeline::engine::{Actions, Output};
use lifeline::inventory::Inventory;
use lifeline::pitr::{self, Damaged, RecoveryRequest, Target};
use lifeline::redact::Redactor;
use lifeline::sandbox::{PgCluster, PgOptions, free_port, is_root, user_ids};
use lifeline::transport::{Host, LocalHost};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    sql: PathBuf,
    dump: PathBuf,
    dir: PathBuf,
    /// Rows of `sessions` updated between the backup and the damage (WAL to replay).
    churn: u64,
}

fn args() -> Args {
    let mut a = Args {
        sql: PathBuf::from("/work/shared/bench/app-1gb.sql"),
        dump: PathBuf::from("/work/bench-cache/app.sql"),
        dir: PathBuf::from("/var/tmp"),
        churn: 300_000,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        match (v[i].as_str(), v.get(i + 1)) {
            ("--sql", Some(f)) => a.sql = PathBuf::from(f),
            ("--dump", Some(f)) => a.dump = PathBuf::from(f),
            ("--dir", Some(d)) => a.dir = PathBuf::from(d),
            ("--churn", Some(n)) => a.churn = n.parse().unwrap_or(a.churn),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn owner() -> Option<(u32, u32)> {
    if is_root() {
        user_ids("postgres")
    } else {
        None
    }
}

fn chown(p: &Path) -> Res<()> {
    if let Some((u, g)) = owner() {
        std::os::unix::fs::chown(p, Some(u), Some(g))?;
    }
    Ok(())
}

/// Runs a command as the server's user (what an operator types after `sudo -u postgres`).
fn as_pg(prog: &str) -> Command {
    let mut c = Command::new(prog);
    if let Some((u, g)) = owner() {
        c.uid(u).gid(g).env("HOME", "/tmp");
    }
    c
}

fn run(cmd: &mut Command) -> Res<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}{}",
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn timed<T>(what: &str, f: impl FnOnce() -> Res<T>) -> Res<(T, f64)> {
    let l0 = load();
    let t = Instant::now();
    let r = f()?;
    let s = t.elapsed().as_secs_f64();
    println!("{what}: {s:.1} s (load {l0} -> {})", load());
    Ok((r, s))
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

fn wait_archived(pg: &PgCluster, seg: &str) -> Res<()> {
    for _ in 0..6000 {
        let last = pg.psql(
            "postgres",
            "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
        )?;
        if last.as_str() >= seg {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("segment {seg} was not archived in 600 s").into())
}

/// Lets the archiver push what the last contender wrote, so the next one
/// does not share the cores with it.
fn settle(pg: &PgCluster) -> Res<()> {
    let t = Instant::now();
    let seg = pg.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")?;
    wait_archived(pg, &seg)?;
    println!(
        "  (archiver caught up in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The application writer: one row per transaction, each id logged after its COMMIT returned.
struct Writer {
    log: Arc<Mutex<Vec<i64>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    async fn start(pg: &PgCluster) -> Res<Writer> {
        let (client, conn) =
            tokio_postgres::connect(&pg.conninfo("app"), tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut id = 1i64;
            while !s.load(Ordering::SeqCst) {
                if client
                    .execute("INSERT INTO bench_writer (id) VALUES ($1)", &[&id])
                    .await
                    .is_err()
                {
                    break;
                }
                if let Ok(mut g) = l.lock() {
                    g.push(id);
                }
                id += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Ok(Writer { log, stop, task })
    }
    fn committed(&self) -> Vec<i64> {
        self.log.lock().map(|g| g.clone()).unwrap_or_default()
    }
    async fn finish(self) -> Vec<i64> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        self.log.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// The runbook's restore action (check on its host, `cat` over the local
/// transport, jobs=2) of `backup` into `target` of the live server.
async fn restore_action(pg: &PgCluster, backup: &Path, target: &str) -> Res<RestoreOutcome> {
    let inv_text = format!(
        "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[database]]\nname = \"main\"\nurl = \"{}\"\n\n[[backups]]\nname = \"bench\"\nhost = \"here\"\npath = \"{}\"\ndatabase = \"main\"\n",
        pg.url("app"),
        backup
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let inv = Inventory::parse(&inv_text, "bench.toml").map_err(|d| format!("{d}"))?;
    let a = RealActions::new(inv, Redactor::new());
    let spec = a.inventory().database("main").ok_or("no database")?.clone();
    let req = RestoreRequest {
        target_db: target.into(),
        database: DbTarget {
            name: "main".into(),
            url: spec.pg_url().ok_or("no url")?.clone(),
            spec,
        },
        catalog: a.inventory().backups[0].clone(),
        host: HostTarget {
            name: "here".into(),
            spec: a.inventory().host("here").ok_or("no host")?.clone(),
        },
        backup_path: backup.display().to_string(),
        jobs: 2,
        restore_as: RestoreAs::Admin,
        picked: None,
    };
    Ok(a.restore(&req, &Output::discard()).await?)
}

fn main() -> Res<()> {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("lifeline-bench-pitr-")
        .tempdir_in(&a.dir)?;
    let d = dir.path().to_path_buf();
    for sub in ["repo", "log", "lock", "recovery", "byhand"] {
        std::fs::create_dir(d.join(sub))?;
        chown(&d.join(sub))?;
    }
    chown(&d)?;
    let conf = d.join("pgbackrest.conf");
    // pgbackrest backup checks that archive_command names pgbackrest.
    let archive_sh = d.join("to-pgbackrest.sh");
    // Nothing is archived while the database is built; the repository gets
    // the WAL from the full backup on (the script is swapped then).
    std::fs::write(&archive_sh, "exit 0\n")?;
    chown(&archive_sh)?;
    let pg = PgCluster::start_with(PgOptions {
        fsync: true,
        settings: vec![
            ("wal_level".into(), "replica".into()),
            ("archive_mode".into(), "on".into()),
            (
                "archive_command".into(),
                format!("'/bin/sh {} %p'", archive_sh.display()),
            ),
            ("max_wal_size".into(), "4GB".into()),
        ],
        ..Default::default()
    })?;
    println!(
        "cluster: PostgreSQL {} port {}, fsync=on, machine load {}",
        pg.psql("postgres", "SHOW server_version")?,
        pg.port(),
        load()
    );
    pg.create_db("app")?;
    timed("build app", || {
        run(Command::new(pg.bin("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "-q"])
            .arg("-p")
            .arg(pg.port().to_string())
            .args(["-v", "ON_ERROR_STOP=1", "-d", "app", "-f"])
            .arg(&a.sql))
    })?;
    if !a.dump.exists() {
        timed("pg_dump -Fp (the dump path's backup)", || {
            run(Command::new(pg.bin("pg_dump"))
                .args(["-h", "127.0.0.1", "-U", "postgres", "-Fp", "-f"])
                .arg(&a.dump)
                .arg("-p")
                .arg(pg.port().to_string())
                .arg("app"))
        })?;
    }
    pg.psql(
        "app",
        "CREATE TABLE bench_writer (id int8 PRIMARY KEY, at timestamptz DEFAULT now())",
    )?;
    let size = pg.psql("app", "SELECT pg_size_pretty(pg_database_size('app'))")?;
    let built = counts(&pg, "app")?;
    println!(
        "app: {size}, {} tables, {} rows",
        built.len(),
        built.values().sum::<u64>()
    );

    // The repository: lz4, two processes (what a tuned setup uses on 2 cores).
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={d}/repo\nlog-path={d}/log\nlock-path={d}/lock\nlog-level-console=warn\nstart-fast=y\nrepo1-retention-full=9\ncompress-type=lz4\nprocess-max=2\n\n[main]\npg1-path={data}\npg1-port={port}\npg1-socket-path={sock}\n",
            d = d.display(),
            data = pg.data_dir().display(),
            port = pg.port(),
            sock = pg.socket_dir().display()
        ),
    )?;
    chown(&conf)?;
    std::fs::write(
        &archive_sh,
        format!(
            "exec pgbackrest --config={} --stanza=main archive-push \"$1\"\n",
            conf.display()
        ),
    )?;
    let br = |args: &[&str]| -> Res<String> {
        run(as_pg("pgbackrest")
            .arg(format!("--config={}", conf.display()))
            .arg("--stanza=main")
            .args(args))
    };
    br(&["stanza-create"])?;
    timed("pgbackrest backup --type=full (lz4, process-max=2)", || {
        br(&["--type=full", "backup"])
    })?;
    let healthy_at = chrono::Utc::now();
    let backup_end = pg.psql("postgres", "SELECT pg_current_wal_lsn()")?;

    // Between the backup and the damage: the writer, and business churn (WAL to replay).
    let (before, after, xid, deleted, churn_s) = rt.block_on(async {
        let w = Writer::start(&pg).await?;
        let t = Instant::now();
        pg.psql(
            "app",
            &format!(
                "UPDATE sessions SET expires_at = expires_at + interval '1 day' WHERE id <= {}",
                a.churn
            ),
        )?;
        let churn_s = t.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = w.committed();
        let out = pg.psql(
            "app",
            "WITH d AS (DELETE FROM game_requests WHERE id % 4 = 0 RETURNING 1) SELECT txid_current(), count(*) FROM d",
        )?;
        let n_after = w.committed().len();
        while w.committed().len() < n_after + 50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let all = w.finish().await;
        let (xid, n) = out.split_once('|').ok_or("no xid")?;
        Ok::<_, Box<dyn std::error::Error>>((
            before,
            all[n_after..].to_vec(),
            xid.parse::<u32>()?,
            n.parse::<u64>()?,
            churn_s,
        ))
    })?;
    let wal = pg.psql(
        "postgres",
        &format!("SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), '{backup_end}'))"),
    )?;
    println!(
        "between the backup and the damage: {} writer rows, sessions churn {} rows in {churn_s:.1} s; WAL after the backup: {wal}; the damage: transaction {xid} deleted {deleted} game_requests rows",
        before.len(),
        a.churn
    );
    let seg = pg.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")?;
    wait_archived(&pg, &seg)?;
    let game_requests_before: u64 = built["public.game_requests"];

    let mut rows: Vec<(String, f64, String)> = Vec::new();

    // (b) lifeline's dump restore, jobs=2.
    run(Command::new("cat")
        .arg(&a.dump)
        .stdout(std::process::Stdio::null()))?;
    let (o, dump_s) = timed("(b) lifeline dump restore, jobs=2", || {
        rt.block_on(restore_action(&pg, &a.dump, "app__restore_dump"))
    })?;
    println!(
        "  {} tables restored, game_requests {:?}",
        o.manifest.tables.len(),
        o.manifest.tables.get("public.game_requests")
    );
    rows.push((
        "(b) lifeline dump restore, jobs=2 (restore action; the dump is older: the writer's rows are not in it)".into(),
        dump_s,
        String::new(),
    ));
    pg.psql("postgres", "DROP DATABASE app__restore_dump")?;
    settle(&pg)?;

    // (a) lifeline PITR from the repository.
    let inv = Inventory::parse(
        &format!(
            "[[host]]\nname = \"here\"\ntransport = \"local\"\n\n[[archive]]\nname = \"repo\"\nkind = \"pgbackrest\"\nhost = \"here\"\nstanza = \"main\"\nconfig = \"{}\"\nrecovery_dir = \"{}\"\n",
            conf.display(),
            d.join("recovery").display()
        ),
        "bench.toml",
    )
    .map_err(|e| format!("{e}"))?;
    let spec = inv.archives[0].clone();
    let h = Host::Local(LocalHost::new("here"));
    let db_oid: u32 = pg
        .psql(
            "postgres",
            "SELECT oid FROM pg_database WHERE datname = 'app'",
        )?
        .parse()?;
    let l0 = load();
    let t_all = Instant::now();
    let (found, find_s) = timed("(a) lifeline: list + target from the WAL", || {
        rt.block_on(async {
            let status = pitr::list(&h, &spec).await?;
            let found = pitr::find_target_in(
                &h,
                &spec,
                &status,
                &Damaged {
                    db_oid,
                    healthy_at: Some(healthy_at),
                    ..Default::default()
                },
            )
            .await?;
            Ok::<_, Box<dyn std::error::Error>>((status, found))
        })
    })?;
    let (status, found) = found;
    if !matches!(found.target, Target::Xid { xid: x, .. } if x == xid) {
        return Err(format!("target {:?}, expected xid {xid}", found.target).into());
    }
    let plan = pitr::plan(&status, &found.target)?;
    let r = rt.block_on(pitr::recover(
        &h,
        &spec,
        &status,
        &plan,
        &RecoveryRequest {
            database: "app".into(),
            expect: BTreeMap::from([(
                "public.game_requests".to_string(),
                game_requests_before as i64,
            )]),
            name: "bench".into(),
            wait: Duration::from_secs(3600),
        },
    ))?;
    println!(
        "(a) lifeline: pgbackrest restore {:.1} s, start + replay to the pause {:.1} s, pg_dump -Fc {:.1} s; {}",
        r.prepare_s, r.replay_s, r.dump_s, r.stopped
    );
    let recovered = PathBuf::from(&r.dump);
    let (o, into_live_s) = timed(
        "(a) lifeline: restore of the recovered dump, jobs=2",
        || rt.block_on(restore_action(&pg, &recovered, "app__restore_pitr")),
    )?;
    let total = t_all.elapsed().as_secs_f64();
    println!("(a) total {total:.1} s (load {l0} -> {})", load());
    // Rows lost against the writer's log; none of the DELETE.
    let got: Vec<i64> = pg
        .psql(
            "app__restore_pitr",
            "SELECT id FROM bench_writer ORDER BY id",
        )?
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    let lost = before
        .iter()
        .filter(|i| got.binary_search(i).is_err())
        .count();
    let late = after
        .iter()
        .filter(|i| got.binary_search(i).is_ok())
        .count();
    let gr = o.manifest.tables.get("public.game_requests").copied();
    println!(
        "  recovered: game_requests {gr:?} (built {game_requests_before}), writer rows lost {lost} of {}, rows from after the target {late}",
        before.len()
    );
    if lost != 0 || late != 0 || gr != Some(game_requests_before as i64) {
        return Err("the recovered data is wrong".into());
    }
    let restore_replay = r.prepare_s + r.replay_s;
    rows.push((
        "(a1) lifeline PITR: pgbackrest restore + replay to the target".into(),
        restore_replay,
        format!(
            "restore {:.1} s + replay {:.1} s; before it, list + WAL fetch + pg_waldump {find_s:.1} s",
            r.prepare_s, r.replay_s
        ),
    ));
    rows.push((
        "(a2) + pg_dump -Fc of the recovered db".into(),
        r.dump_s,
        format!(
            "{} bytes",
            std::fs::metadata(&recovered).map(|m| m.len()).unwrap_or(0)
        ),
    ));
    rows.push((
        "(a3) + restore of that dump into the live server, jobs=2".into(),
        into_live_s,
        String::new(),
    ));
    let other = total - find_s - restore_replay - r.dump_s - into_live_s;
    rows.push((
        "(a) lifeline PITR end to end (search, a1, a2, a3)".into(),
        total,
        format!(
            "writer rows lost: 0; search {find_s:.1} s, the rest (set and live-dir checks, promote, counts, stop) {other:.1} s"
        ),
    ));
    pg.psql("postgres", "DROP DATABASE app__restore_pitr")?;
    let _ = std::fs::remove_dir_all(&r.dir);
    settle(&pg)?;

    // (c) pgbackrest restore + replay by hand.
    let set = plan.backup.dir.clone();
    let data = d.join("byhand/data");
    let sock = d.join("byhand");
    let (_, c_restore) = timed("(c) by hand: pgbackrest restore", || {
        br(&[
            &format!("--pg1-path={}", data.display()),
            &format!("--set={set}"),
            "--type=xid",
            &format!("--target={xid}"),
            "--target-exclusive",
            "--target-action=pause",
            "--archive-mode=off",
            "restore",
        ])
    })?;
    let port = free_port()?;
    let t = Instant::now();
    run(as_pg(&pg.bin("pg_ctl").display().to_string())
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(d.join("byhand/postgres.log"))
        .args(["-w", "-t", "3600", "-o"])
        .arg(format!(
            "-p {port} -k {} -c listen_addresses=''",
            sock.display()
        ))
        .arg("start"))?;
    loop {
        let s = run(as_pg(&pg.bin("psql").display().to_string())
            .args(["-X", "-A", "-t", "-h"])
            .arg(&sock)
            .args([
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
            ])
            .arg("SELECT pg_get_wal_replay_pause_state()"))?;
        if s.trim() == "paused" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let c_replay = t.elapsed().as_secs_f64();
    println!(
        "(c) by hand: start + replay to the pause: {c_replay:.1} s (load {})",
        load()
    );
    let _ = run(as_pg(&pg.bin("pg_ctl").display().to_string())
        .arg("-D")
        .arg(&data)
        .args(["-m", "immediate", "-w", "stop"]));
    rows.push((
        "(c) pgbackrest restore + replay by hand".into(),
        c_restore + c_replay,
        format!("restore {c_restore:.1} s + replay {c_replay:.1} s"),
    ));

    println!("\n| run | wall | notes |\n|---|---|---|");
    for (name, s, note) in &rows {
        println!("| {name} | {s:.1} s | {note} |");
    }
    println!(
        "\nlifeline PITR restore+replay / dump restore: {:.2}x; PITR end to end / dump restore: {:.2}x; lifeline restore+replay / by hand: {:.2}x",
        restore_replay / dump_s,
        total / dump_s,
        restore_replay / (c_restore + c_replay)
    );
    drop(pg);
    Ok(())
}
