//! Merge benchmark, one run, one throwaway server: merging one large table
//! back (all its rows deleted from live) with `merge-tables`, against a
//! plain COPY of the same rows into an empty table of the same shape (same
//! primary key), streamed the same way (source COPY TO STDOUT -> COPY FROM
//! STDIN over tokio-postgres, binary).
//!
//! `cargo bench --bench merge -- [--rows N]` (default 2,000,000 rows).

use std::time::Instant;

use futures_util::{SinkExt, StreamExt, pin_mut};
use lifeline::actions::data::merge_tables;
use lifeline::engine::Output;
use lifeline::engine::types::{DbTarget, MergePolicy, MergeRequest, MergeTx};
use lifeline::inventory::Inventory;
use lifeline::sandbox::PgCluster;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TABLE: &str = "CREATE TABLE big (id bigint PRIMARY KEY, account int NOT NULL, amount numeric(12,2), note text, at timestamptz NOT NULL)";

fn rows_arg() -> u64 {
    let v: Vec<String> = std::env::args().collect();
    v.iter()
        .position(|a| a == "--rows")
        .and_then(|i| v.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000)
}

async fn client(pg: &PgCluster, db: &str) -> Res<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(&pg.conninfo(db), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

fn main() -> Res<()> {
    let rows = rows_arg();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(rows))
}

async fn run(rows: u64) -> Res<()> {
    let pg = PgCluster::start()?;
    for db in ["src", "live", "plain"] {
        pg.create_db(db)?;
        pg.psql(db, TABLE)?;
    }
    pg.psql(
        "src",
        &format!(
            "INSERT INTO big SELECT i, i % 1000, (i % 100000) / 100.0, 'note ' || md5(i::text), '2026-01-01'::timestamptz + i * interval '1 second' FROM generate_series(1, {rows}) i"
        ),
    )?;
    pg.psql("src", "VACUUM ANALYZE big")?;
    // live: the table had the rows, then every one was deleted (a wipe).
    pg.psql(
        "live",
        &format!("INSERT INTO big SELECT i, 0, 0, '', now() FROM generate_series(1, {rows}) i; DELETE FROM big"),
    )?;
    pg.psql("live", "VACUUM big")?;
    pg.psql("postgres", "CHECKPOINT")?;

    // Plain COPY of the same rows into an empty table.
    let src = client(&pg, "src").await?;
    let dst = client(&pg, "plain").await?;
    let t0 = Instant::now();
    let reader = src
        .copy_out("COPY (SELECT * FROM big) TO STDOUT (FORMAT binary)")
        .await?;
    let sink = dst.copy_in("COPY big FROM STDIN (FORMAT binary)").await?;
    pin_mut!(reader);
    pin_mut!(sink);
    while let Some(chunk) = reader.next().await {
        sink.send(chunk?).await?;
    }
    let copied = sink.finish().await?;
    let plain = t0.elapsed();
    pg.psql("postgres", "CHECKPOINT")?;

    let inv = Inventory::parse(
        &format!(
            "[[database]]\nname = \"main\"\nurl = \"{}\"\n",
            pg.url("live")
        ),
        "bench.toml",
    )
    .map_err(|d| d.to_string())?;
    let spec = inv.database("main").ok_or("no database")?.clone();
    let url = spec.pg_url().ok_or("no url")?.clone();
    let req = MergeRequest {
        database: DbTarget {
            name: "main".into(),
            url,
            spec,
        },
        source: "src".into(),
        tables: vec!["big".into()],
        replace: Vec::new(),
        policy: MergePolicy::LiveWins,
        transaction: MergeTx::One,
    };
    let t0 = Instant::now();
    let out = merge_tables(&req, &Output::discard()).await?;
    let merge = t0.elapsed();
    let inserted = out.tables.first().map(|t| t.inserted).unwrap_or(0);
    if inserted as u64 != rows || copied != rows {
        return Err(format!("copied {copied}, merged {inserted}, expected {rows}").into());
    }
    println!("rows: {rows}");
    println!(
        "plain COPY into an empty table: {:.2} s",
        plain.as_secs_f64()
    );
    println!(
        "merge-tables (stage + preview counts + INSERT ... ON CONFLICT + checks): {:.2} s",
        merge.as_secs_f64()
    );
    println!(
        "ratio: {:.2}x (target: within 2x)",
        merge.as_secs_f64() / plain.as_secs_f64()
    );
    Ok(())
}
