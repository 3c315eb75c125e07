//! `samples.jsonl`: the row-count history of an incident, one sampling
//! round of one database per line. Append-only; not hash-chained (the
//! journal records the alerts drawn from it). Shared by the timeline
//! (writer), the console and the export (readers).

use std::io::{BufRead, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::types::DbIdentity;

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

    /// Lines written before the one identity type (issue 20): `address`
    /// (`host:port/dbname`), `postmaster_start`, `database_oid` (0 or
    /// absent: unknown). They must still be read, into the one type.
    #[test]
    fn samples_written_with_the_old_identity_names_are_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("samples.jsonl");
        let old = concat!(
            r#"{"ts":"2026-12-10T12:30:00Z","database":"main","identity":{"address":"db.example.net:5432/TovPlay","system_identifier":"7312345678901234567","postmaster_start":"2026-12-10T09:12:44Z","database_oid":16384,"database":"TovPlay"},"tables":[{"schema":"public","name":"User","oid":16390,"rows":22,"exact":true}]}"#,
            "\n",
            r#"{"ts":"2026-12-10T12:30:30Z","database":"sock","identity":{"address":"/run/postgresql:5433/app","system_identifier":"7298765432109876543","database":"app"},"tables":[]}"#,
            "\n",
        );
        std::fs::write(&p, old).unwrap();
        let got = read(&p).unwrap();
        assert_eq!(got.len(), 2);
        let a = &got[0].identity;
        assert_eq!(a.server, "db.example.net:5432");
        assert_eq!(a.address(), "db.example.net:5432/TovPlay");
        assert_eq!(a.database, "TovPlay");
        assert_eq!(a.system_identifier, "7312345678901234567");
        assert_eq!(a.oid, Some(16384));
        assert_eq!(
            a.server_started_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-10T09:12:44+00:00")
        );
        assert_eq!(got[0].tables[0].rows, 22);
        // A socket directory keeps its slashes; an absent OID stays unknown.
        let b = &got[1].identity;
        assert_eq!(b.server, "/run/postgresql:5433");
        assert_eq!(b.oid, None);
        assert_eq!(b.server_started_at, None);
        // Appended now, with the one type's names, and read back the same;
        // a server that is a socket directory is not cut at its slashes.
        append(&p, &got[1]).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let last = text.lines().last().unwrap();
        assert!(
            last.contains(r#""server":"/run/postgresql:5433""#),
            "{last}"
        );
        assert!(!last.contains("\"address\""), "{last}");
        assert_eq!(read(&p).unwrap()[2], got[1]);
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("samples.jsonl");
        let s = Sample {
            ts: Utc::now(),
            database: "main".into(),
            identity: DbIdentity {
                server: "127.0.0.1:5432".into(),
                system_identifier: "7312345678901234567".into(),
                server_started_at: None,
                oid: Some(16384),
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
