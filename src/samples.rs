//! `samples.jsonl`: the row-count history of an incident, one sampling
//! round of one database per line. Append-only; not hash-chained (the
//! journal records the alerts drawn from it). Shared by the timeline
//! (writer), the console and the export (readers).

use std::io::{BufRead, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which database a number came from (principle 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DbIdentity {
    /// `host:port/dbname` as connected.
    pub address: String,
    /// `pg_control_system().system_identifier`, as a decimal string.
    pub system_identifier: String,
    /// `pg_postmaster_start_time()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postmaster_start: Option<DateTime<Utc>>,
    /// OID of the database in `pg_database`.
    #[serde(default)]
    pub database_oid: u32,
    /// The database name as the server reports it (`current_database()`).
    pub database: String,
}

/// One table's count in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableCount {
    pub schema: String,
    pub name: String,
    /// Table OID: a series is keyed by (schema, name, oid); a new OID means re-created.
    pub oid: u32,
    pub rows: i64,
    /// `count(*)` (true) or a statistics estimate (false).
    pub exact: bool,
}

/// One sampling round of one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub ts: DateTime<Utc>,
    /// Inventory name of the database.
    pub database: String,
    pub identity: DbIdentity,
    pub tables: Vec<TableCount>,
}

#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    #[error("samples file '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("samples file '{path}' line {line}: {source}")]
    Parse {
        path: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Appends one sample (one line) and flushes it.
pub fn append(path: &Path, sample: &Sample) -> Result<(), SamplesError> {
    let io = |source| SamplesError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut line = serde_json::to_string(sample).map_err(|e| SamplesError::Parse {
        path: path.display().to_string(),
        line: 0,
        source: e,
    })?;
    line.push('\n');
    let mut f = crate::state::open_private_append(path).map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)?;
    f.flush().map_err(io)
}

/// Reads every sample; a torn last line (crash mid-write) is skipped.
pub fn read(path: &Path) -> Result<Vec<Sample>, SamplesError> {
    let f = std::fs::File::open(path).map_err(|source| SamplesError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let lines: Vec<String> = std::io::BufReader::new(f)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| SamplesError::Io {
            path: path.display().to_string(),
            source,
        })?;
    let n = lines.len();
    let mut out = Vec::with_capacity(n);
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(l) {
            Ok(s) => out.push(s),
            Err(_) if i + 1 == n => break,
            Err(source) => {
                return Err(SamplesError::Parse {
                    path: path.display().to_string(),
                    line: i + 1,
                    source,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("samples.jsonl");
        let s = Sample {
            ts: Utc::now(),
            database: "main".into(),
            identity: DbIdentity {
                address: "127.0.0.1:5432/TovPlay".into(),
                system_identifier: "7312345678901234567".into(),
                postmaster_start: None,
                database_oid: 16384,
                database: "TovPlay".into(),
            },
            tables: vec![TableCount {
                schema: "public".into(),
                name: "User".into(),
                oid: 16390,
                rows: 22,
                exact: true,
            }],
        };
        append(&p, &s).unwrap();
        append(&p, &s).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"ts\":\"20").unwrap();
        assert_eq!(read(&p).unwrap(), vec![s.clone(), s]);
    }
}
