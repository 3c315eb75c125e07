//! The lab's application writer and its ground-truth log: it inserts one
//! row per transaction into the lab database's `GameRequest` (its id from
//! the table's sequence, as the application does; `message` = [`MARKER`])
//! and appends `id<TAB>commit time` to `<lab>/truth/writer.log` (0600) only
//! after its COMMIT returned. It writes nowhere else and never logs a row
//! it does not know to be committed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::LabError;
use crate::db::ConnectOptions;
use crate::redact::Redactor;

/// The table the writer inserts into (a watched one).
pub const TABLE: &str = "GameRequest";
/// The `message` of every row the writer inserts (no seeded row has it).
pub const MARKER: &str = "lab writer";
/// Pause between two rows.
const EVERY: Duration = Duration::from_millis(10);

/// One row the writer saw committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedRow {
    pub id: i64,
    /// When its COMMIT returned to the writer (the commit happened before).
    pub at: DateTime<Utc>,
}

/// A running writer; [`Writer::stop`] ends it.
pub struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    join: Option<std::thread::JoinHandle<Option<String>>>,
    log: PathBuf,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Writer({})", self.log.display())
    }
}

/// The line of one committed row in the log.
fn line(r: &CommittedRow) -> String {
    format!(
        "{}\t{}\n",
        r.id,
        r.at.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

/// Reads the writer's log: every complete line; anything else is refused.
pub fn read_log(path: &Path) -> Result<Vec<CommittedRow>, LabError> {
    let text = std::fs::read_to_string(path).map_err(LabError::io(format!(
        "read writer log '{}'",
        path.display()
    )))?;
    parse_log(&text).map_err(|detail| LabError::Command {
        what: format!("read writer log '{}'", path.display()),
        detail,
    })
}

fn parse_log(text: &str) -> Result<Vec<CommittedRow>, String> {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let bad = || format!("line {}: not 'id<TAB>time': '{}'", i + 1, l.escape_debug());
            let (id, at) = l.split_once('\t').ok_or_else(bad)?;
            Ok(CommittedRow {
                id: id.parse().map_err(|_| bad())?,
                at: DateTime::parse_from_rfc3339(at)
                    .map_err(|_| bad())?
                    .with_timezone(&Utc),
            })
        })
        .collect()
}

impl Writer {
    /// Starts writing into `db` at `url` (users `1..=users`, games
    /// `1..=games` exist); the log is created new (0600) at `log`.
    pub fn start(url: &str, users: u64, games: u64, log: &Path) -> Result<Writer, LabError> {
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(log)
            .map_err(LabError::io(format!(
                "create writer log '{}'",
                log.display()
            )))?;
        let opts = ConnectOptions::from_url("lab-writer", url, &Redactor::new()).map_err(|e| {
            LabError::Command {
                what: "the lab writer's connection".into(),
                detail: e.to_string(),
            }
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LabError::io("start the lab writer's runtime"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (s, w) = (stop.clone(), written.clone());
        let join = std::thread::Builder::new()
            .name("lab-writer".into())
            .spawn(move || rt.block_on(write_loop(opts, users.max(1), games.max(1), file, s, w)))
            .map_err(LabError::io("start the lab writer"))?;
        Ok(Writer {
            stop,
            written,
            join: Some(join),
            log: log.to_path_buf(),
        })
    }

    /// Rows committed so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Waits until `n` rows are committed (or `max` passed).
    pub fn wait_for(&self, n: u64, max: Duration) -> Result<(), LabError> {
        let deadline = Instant::now() + max;
        while self.written() < n {
            if Instant::now() > deadline || self.join.as_ref().is_none_or(|j| j.is_finished()) {
                return Err(LabError::Command {
                    what: "the lab writer".into(),
                    detail: format!(
                        "{} of {n} rows committed within {} s",
                        self.written(),
                        max.as_secs()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Stops the writer and returns every row it logged, and its last error.
    pub fn stop(mut self) -> Result<(Vec<CommittedRow>, Option<String>), LabError> {
        self.stop.store(true, Ordering::SeqCst);
        let last_error = self.join.take().and_then(|j| j.join().ok()).flatten();
        Ok((read_log(&self.log)?, last_error))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// Inserts until told to stop; reconnects after errors (the table or the
/// database may be gone: it keeps trying, as an application does).
async fn write_loop(
    opts: ConnectOptions,
    users: u64,
    games: u64,
    mut log: std::fs::File,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> Option<String> {
    let sql = format!(
        "INSERT INTO {} (\"senderId\", \"gameId\", \"status\", \"message\") VALUES ($1, $2, 'PENDING', $3) RETURNING \"id\"",
        crate::restore::quote_ident(TABLE)
    );
    let mut client: Option<tokio_postgres::Client> = None;
    let mut last_error = None;
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let c = match &mut client {
            Some(c) => c,
            None => match opts.connect_owned().await {
                Ok(c) => client.insert(c),
                Err(e) => {
                    last_error = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let sender = (n % users + 1) as i32;
        let game = (n % games + 1) as i32;
        n += 1;
        match insert(c, &sql, sender, game).await {
            Ok(id) => {
                let r = CommittedRow { id, at: Utc::now() };
                if let Err(e) = log.write_all(line(&r).as_bytes()) {
                    return Some(format!("writer log: {e}"));
                }
                written.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                last_error = Some(
                    e.as_db_error()
                        .map(|d| d.message().to_string())
                        .unwrap_or_else(|| e.to_string()),
                );
                if c.is_closed() {
                    client = None;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(EVERY).await;
    }
    last_error
}

/// One row in its own transaction; its id once the COMMIT returned (a
/// simple-protocol COMMIT: its answer comes after the commit is done).
async fn insert(
    c: &mut tokio_postgres::Client,
    sql: &str,
    sender: i32,
    game: i32,
) -> Result<i64, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    let row = tx.query_one(sql, &[&sender, &game, &MARKER]).await?;
    let id: i32 = row.try_get(0)?;
    tx.commit().await?;
    Ok(id.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_round_trip_and_bad_lines_are_refused() {
        let r = CommittedRow {
            id: 4003,
            at: Utc::now(),
        };
        let text = line(&r) + &line(&r);
        let back = parse_log(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].id, r.id);
        assert!((back[0].at - r.at).num_microseconds().unwrap().abs() <= 1);
        for bad in ["12", "x\t2026-12-06T06:00:00Z", "12\tyesterday"] {
            let e = parse_log(bad).unwrap_err();
            assert!(e.contains("line 1"), "{e}");
        }
        assert!(parse_log("").unwrap().is_empty());
    }
}
