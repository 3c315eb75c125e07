//! Restore progress events and the final manifest. Progress snapshots are
//! throttled (one per interval) so reporting costs nothing measurable; the
//! manifest is what verification compares against. Never blocks the restore:
//! events go through an unbounded channel that is only fed at a bounded rate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

/// Channel the engine or TUI receives restore events on.
pub type EventTx = UnboundedSender<RestoreEvent>;

/// What a restore loaded, as the server confirmed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub target_db: String,
    /// Rows loaded per table (COPY row counts reported by the server). Keys
    /// are written as pg_dump writes them, schema-qualified and quoted where
    /// needed (`public.users`, `public."User"`): the same text as
    /// `format('%I.%I', nspname, relname)` on the server.
    pub tables: BTreeMap<String, u64>,
    /// SQL statements run (COPY statements included, data lines not).
    pub statements: u64,
    /// Bytes of the dump stream read.
    pub bytes: u64,
    pub duration_ms: u64,
    /// SHA-256 (hex) of the dump stream as read (after decompression or
    /// pg_restore conversion); of the bytes read so far when incomplete.
    pub sha256: String,
    /// True only when the whole dump ran and the target is marked complete.
    pub complete: bool,
    /// `ALTER ... OWNER TO` statements skipped (`--no-owner`, a restore
    /// role): what a later `reapply-owners` step gives back.
    pub owners_skipped: Vec<super::owners::OwnerChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Types, tables, functions: in dump order on one connection.
    PreData,
    /// COPY blocks (fanned out to the workers with jobs >= 2).
    Data,
    /// Indexes, constraints, triggers, ACLs (in parallel where independent).
    PostData,
    /// Waiting for the last statements and writing the completeness marker.
    Finishing,
}

/// A throttled snapshot of where the restore is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    /// Bytes of the dump stream read.
    pub bytes: u64,
    /// Bytes of the source read (the compressed file for a .gz), when known.
    pub source_bytes: Option<u64>,
    /// Size of the source, when known (local files).
    pub source_total: Option<u64>,
    pub statements: u64,
    /// Table whose COPY data is being read.
    pub current_table: Option<String>,
    /// Rows of `current_table` read so far.
    pub current_table_rows: u64,
    /// Rows read in all COPY blocks so far.
    pub rows: u64,
    /// Tables whose rows the server has confirmed.
    pub tables_loaded: usize,
    pub elapsed_ms: u64,
    /// Source bytes per second since the start.
    pub rate_bytes_per_s: f64,
    /// Seconds left at that rate, when the source size is known.
    pub eta_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RestoreEvent {
    Started {
        target_db: String,
        source: String,
        jobs: usize,
        source_total: Option<u64>,
    },
    Phase {
        phase: Phase,
    },
    Progress(Progress),
    /// The server confirmed rows of a table (cumulative for the table; with
    /// jobs >= 2 a big table arrives in several parts).
    TableLoaded {
        table: String,
        rows: u64,
    },
    /// A NOTICE or WARNING the server sent while restoring.
    Notice {
        severity: String,
        message: String,
    },
    Finished {
        manifest: Manifest,
    },
    Failed {
        message: String,
        manifest: Manifest,
    },
}

/// Sends events; throttles progress snapshots.
#[derive(Debug)]
pub(crate) struct Reporter {
    tx: Option<EventTx>,
    started: Instant,
    last: Instant,
    interval: Duration,
    pub(crate) p: Progress,
}

impl Reporter {
    pub(crate) fn new(tx: Option<EventTx>, interval: Duration, source_total: Option<u64>) -> Self {
        let now = Instant::now();
        Reporter {
            tx,
            started: now,
            last: now,
            interval,
            p: Progress {
                phase: Phase::PreData,
                bytes: 0,
                source_bytes: None,
                source_total,
                statements: 0,
                current_table: None,
                current_table_rows: 0,
                rows: 0,
                tables_loaded: 0,
                elapsed_ms: 0,
                rate_bytes_per_s: 0.0,
                eta_s: None,
            },
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn send(&self, ev: RestoreEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(ev);
        }
    }

    pub(crate) fn phase(&mut self, phase: Phase) {
        if self.p.phase != phase {
            self.p.phase = phase;
            self.send(RestoreEvent::Phase { phase });
            self.emit();
        }
    }

    /// True when a snapshot is due.
    pub(crate) fn due(&self) -> bool {
        self.tx.is_some() && self.last.elapsed() >= self.interval
    }

    pub(crate) fn emit(&mut self) {
        if self.tx.is_none() {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        self.p.elapsed_ms = (secs * 1000.0) as u64;
        let done = self.p.source_bytes.unwrap_or(self.p.bytes);
        self.p.rate_bytes_per_s = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        self.p.eta_s = match self.p.source_total {
            Some(total) if self.p.rate_bytes_per_s > 0.0 => {
                Some(total.saturating_sub(done) as f64 / self.p.rate_bytes_per_s)
            }
            _ => None,
        };
        self.send(RestoreEvent::Progress(self.p.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_and_estimates() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut r = Reporter::new(Some(tx), Duration::from_secs(3600), Some(1000));
        for _ in 0..1000 {
            if r.due() {
                r.emit();
            }
        }
        assert!(rx.try_recv().is_err(), "no snapshot before the interval");
        std::thread::sleep(Duration::from_millis(5));
        r.p.bytes = 250;
        r.emit();
        let Ok(RestoreEvent::Progress(p)) = rx.try_recv() else {
            panic!("a snapshot")
        };
        assert!(p.rate_bytes_per_s > 0.0);
        let eta = p.eta_s.unwrap();
        let expect = 750.0 / p.rate_bytes_per_s;
        assert!((eta - expect).abs() < 1e-6);
    }

    #[test]
    fn manifest_serializes_for_the_journal() {
        let m = Manifest {
            target_db: "app__restore_20261123T101500Z".into(),
            tables: [("public.\"User\"".to_string(), 22)].into(),
            statements: 10,
            bytes: 100,
            duration_ms: 5,
            sha256: "ab".into(),
            complete: true,
            owners_skipped: Vec::new(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["tables"]["public.\"User\""], 22);
        assert_eq!(v["complete"], true);
    }
}
