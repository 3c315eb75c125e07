//! One sampling round over 1,000 tables (200 watched, exact counts of small
//! tables) through the lifeline Sampler, against the same statements run
//! through psql, same cluster, same run.
//! `cargo bench --bench sampling [-- ROUNDS]`.

use std::process::Command;
use std::time::Instant;

use lifeline::db::tables::ESTIMATES_SQL;
use lifeline::inventory::Inventory;
use lifeline::redact::Redactor;
use lifeline::sandbox::PgCluster;
use lifeline::timeline::Sampler;

const TABLES: usize = 1000;
const WATCHED: usize = 200;

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let med = v[v.len() / 2];
    let p95 = v[((v.len() as f64 * 0.95) as usize).min(v.len() - 1)];
    (med, p95, v[0])
}

fn psql(pg: &PgCluster, args: &[&str]) -> Result<f64, Box<dyn std::error::Error>> {
    let t = Instant::now();
    let out = Command::new(pg.bin("psql"))
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .args(["-p", &pg.port().to_string(), "-d", "bench"])
        .args(args)
        .output()?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(ms)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let pg = PgCluster::start()?;
    pg.create_db("bench")?;
    let setup = format!(
        "DO $$ BEGIN FOR i IN 1..{TABLES} LOOP \
           EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', lpad(i::text, 4, '0')); \
           EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, %s) g', \
                          lpad(i::text, 4, '0'), CASE WHEN i <= {WATCHED} THEN 100 ELSE 20 END); \
         END LOOP; END $$; ANALYZE;"
    );
    pg.psql("bench", &setup)?;
    let watch: Vec<String> = (1..=WATCHED).map(|i| format!("\"t{i:04}\"")).collect();
    let text = format!(
        "[[database]]\nname = \"bench\"\nurl = \"{}\"\nwatch = [{}]\n",
        pg.url("bench"),
        watch.join(", ")
    );
    let inv = Inventory::parse(&text, "bench.toml").map_err(|d| d.to_string())?;
    let spec = inv.database("bench").ok_or("no database")?;
    let mut sampler = Sampler::from_spec(spec, &Redactor::new())?;

    for _ in 0..3 {
        sampler.sample_once().await?;
    }
    let (mut est, mut cnt, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let r = sampler.sample_once().await?;
        total.push(t.elapsed().as_secs_f64() * 1000.0);
        est.push(r.estimates_ms as f64);
        cnt.push(r.counts_ms as f64);
        assert_eq!(r.sample.tables.len(), TABLES);
        assert_eq!(r.sample.tables.iter().filter(|t| t.exact).count(), WATCHED);
    }
    // Finer timing of the estimates statement alone, in process.
    let db = sampler.handle().clone();
    let mut est_us = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let rows = db.query("estimates", ESTIMATES_SQL, &[]).await?;
        est_us.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(rows.len(), TABLES);
    }

    // The peer: psql, the same statements.
    let dir = tempfile::tempdir()?;
    let counts_file = dir.path().join("counts.sql");
    let mut counts_sql: String = (1..=WATCHED)
        .map(|i| format!("SELECT count(*) FROM \"t{i:04}\";\n"))
        .collect();
    std::fs::write(&counts_file, &counts_sql)?;
    let round_file = dir.path().join("round.sql");
    counts_sql.insert_str(0, &format!("{ESTIMATES_SQL};\n"));
    std::fs::write(&round_file, &counts_sql)?;
    let cf = counts_file.display().to_string();
    let rf = round_file.display().to_string();
    let (mut p_est, mut p_cnt, mut p_round) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        p_est.push(psql(&pg, &["-c", ESTIMATES_SQL])?);
        p_cnt.push(psql(&pg, &["-f", &cf])?);
        p_round.push(psql(&pg, &["-f", &rf])?);
    }
    let (p_noop, _, _) = stats(
        (0..rounds)
            .map(|_| psql(&pg, &["-c", "SELECT 1"]))
            .collect::<Result<Vec<_>, _>>()?,
    );

    println!("sampling bench: {TABLES} tables, {WATCHED} watched (100 rows each), {rounds} rounds");
    println!("| what | lifeline median | p95 | psql median | p95 |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, a: Vec<f64>, b: Vec<f64>| {
        let (am, ap, _) = stats(a);
        let (bm, bp, _) = stats(b);
        println!("| {name} | {am:.1} ms | {ap:.1} ms | {bm:.1} ms | {bp:.1} ms |");
    };
    row("estimates statement (1,000 tables)", est_us, p_est);
    row("exact counts (200 tables)", cnt, p_cnt);
    row(
        "whole round (identity, estimates, counts, sessions)",
        total,
        p_round,
    );
    println!(
        "psql process start + connect + SELECT 1 (included in the psql column): {p_noop:.1} ms"
    );
    let (em, _, _) = stats(est);
    println!("estimates as reported by the round: median {em:.0} ms (target < 200 ms)");
    Ok(())
}
