//! The lab's application data: the TovPlay schema as 22 migrations, the
//! deterministic seed (server-side generate_series), row counts, and plain
//! pg_dump backups. Works only on the lab's own throwaway cluster.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use super::LabError;
use crate::sandbox::PgCluster;

pub const MIGRATIONS_SQL: &str = include_str!("../../assets/lab/migrations.sql");
pub const SEED_SQL: &str = include_str!("../../assets/lab/seed.sql");

/// The six tables the inventory watches (incident 2).
pub const WATCHED: [&str; 6] = [
    "User",
    "UserProfile",
    "Game",
    "GameRequest",
    "ScheduledSession",
    "UserGamePreference",
];

/// Every table the lab counts: the watched ones, the audit tables and the
/// migrations table.
pub const COUNTED: [&str; 9] = [
    "User",
    "UserProfile",
    "Game",
    "GameRequest",
    "ScheduledSession",
    "UserGamePreference",
    "AuditLog",
    "DeleteAudit",
    "_prisma_migrations",
];

/// One migration: its name (`YYYYMMDDHHMMSS_slug`) and SQL.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub sql: String,
}

impl Migration {
    /// The time in the name, when it was first applied to production.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        let stamp = self.name.split('_').next()?;
        NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S")
            .ok()
            .map(|t| t.and_utc())
    }
    /// Prisma's checksum: SHA-256 of the migration file.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// The 22 migrations of `assets/lab/migrations.sql`, in order.
pub fn migrations() -> Vec<Migration> {
    let mut out: Vec<Migration> = Vec::new();
    for line in MIGRATIONS_SQL.lines() {
        if let Some(name) = line.strip_prefix("-- migration: ") {
            out.push(Migration {
                name: name.trim().to_string(),
                sql: String::new(),
            });
        } else if let Some(m) = out.last_mut() {
            m.sql.push_str(line);
            m.sql.push('\n');
        }
    }
    for m in &mut out {
        m.sql = m.sql.trim_end().to_string() + "\n";
    }
    out
}

const PRISMA_TABLE: &str = r#"CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);
"#;

/// A deterministic UUID-shaped id for a migration row.
fn row_id(run: &str, name: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{run}/{name}").as_bytes()));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// SQL that applies every migration and records it in `_prisma_migrations`,
/// as `prisma migrate deploy` does. `historic`: rows carry the times in the
/// migration names (the original deploys); else the time of this run.
pub fn migrate_sql(run: &str, historic: bool) -> String {
    let mut sql = String::from("BEGIN;\n");
    sql.push_str(PRISMA_TABLE);
    for m in migrations() {
        sql.push_str(&format!("-- {}\n{}", m.name, m.sql));
        let at = match (historic, m.created_at()) {
            (true, Some(t)) => format!("'{}'::timestamptz", t.format("%Y-%m-%d %H:%M:%S+00")),
            _ => "clock_timestamp()".to_string(),
        };
        // Every value here is ours: names from the asset, hex digests, times.
        sql.push_str(&format!(
            "INSERT INTO \"_prisma_migrations\" (\"id\", \"checksum\", \"finished_at\", \"migration_name\", \"started_at\", \"applied_steps_count\") VALUES ('{}', '{}', {at}, '{}', {at}, 1);\n",
            row_id(run, &m.name),
            m.checksum(),
            m.name.replace('\'', "''"),
        ));
    }
    sql.push_str("COMMIT;\n");
    sql
}

/// Table sizes of the seeded application database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sizes {
    pub users: u64,
    pub profiles: u64,
    pub games: u64,
    pub requests: u64,
    pub sessions: u64,
    pub preferences: u64,
    pub audit: u64,
}

impl Sizes {
    /// About `rows` rows in all (at least a few hundred): GameRequest holds
    /// most of them, as in incident 2.
    pub fn for_rows(rows: u64) -> Sizes {
        let rows = rows.max(400);
        let users = (rows / 16).max(22);
        let games = (rows / 250).max(12);
        let profiles = users / 2;
        let sessions = (rows / 20).max(16);
        let preferences = (rows / 5).min(users * games / 2);
        let audit = rows / 20;
        let requests = rows
            .saturating_sub(users + games + profiles + sessions + preferences + audit)
            .max(182);
        Sizes {
            users,
            profiles,
            games,
            requests,
            sessions,
            preferences,
            audit,
        }
    }

    /// The counts of incident 2 (the decoy database shows these).
    pub fn incident_2() -> Sizes {
        Sizes {
            users: 22,
            profiles: 11,
            games: 12,
            requests: 182,
            sessions: 16,
            preferences: 40,
            audit: 64,
        }
    }

    pub fn total(&self) -> u64 {
        self.users
            + self.profiles
            + self.games
            + self.requests
            + self.sessions
            + self.preferences
            + self.audit
    }

    /// The sizes when `pct` percent of the history has happened (games all exist from the start).
    pub fn at(&self, pct: u64) -> Sizes {
        let f = |n: u64| (n * pct).div_ceil(100);
        Sizes {
            users: f(self.users),
            profiles: f(self.profiles),
            games: self.games,
            requests: f(self.requests),
            sessions: f(self.sessions),
            preferences: f(self.preferences),
            audit: f(self.audit),
        }
    }
}

/// Runs SQL through psql (stdin) on the lab cluster with `-v` variables;
/// stops at the first error. Returns stdout (unaligned, tuples only).
pub fn psql(
    cluster: &PgCluster,
    db: &str,
    sql: &str,
    vars: &[(&str, String)],
) -> Result<String, LabError> {
    let mut cmd = Command::new(cluster.bin("psql"));
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(cluster.port().to_string())
        .arg("-d")
        .arg(db)
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE");
    for (k, v) in vars {
        cmd.arg("-v").arg(format!("{k}={v}"));
    }
    let mut child = cmd
        .arg("-f")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(LabError::io("run psql"))?;
    let input = sql.to_string();
    let writer = child.stdin.take().map(|mut stdin| {
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        })
    });
    let out = child
        .wait_with_output()
        .map_err(LabError::io("wait for psql"))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(LabError::Command {
            what: format!("psql on database '{db}'"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Seeds the history from `from` to `to` (ids in (from, to] per table),
/// rows created up to `stage_at`.
pub fn seed(
    cluster: &PgCluster,
    db: &str,
    from: &Sizes,
    to: &Sizes,
    stage_at: DateTime<Utc>,
) -> Result<(), LabError> {
    let v = |n: u64| n.to_string();
    let vars = [
        (
            "stage_at",
            stage_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        ),
        ("u_lo", v(from.users)),
        ("u_hi", v(to.users)),
        ("p_lo", v(from.profiles)),
        ("p_hi", v(to.profiles)),
        ("g_lo", v(from.games)),
        ("g_hi", v(to.games)),
        ("g_all", v(to.games)),
        ("r_lo", v(from.requests)),
        ("r_hi", v(to.requests)),
        ("s_lo", v(from.sessions)),
        ("s_hi", v(to.sessions)),
        ("f_lo", v(from.preferences)),
        ("f_hi", v(to.preferences)),
        ("a_lo", v(from.audit)),
        ("a_hi", v(to.audit)),
    ];
    psql(cluster, db, SEED_SQL, &vars).map(|_| ())
}

/// The empty sizes (the start of the history).
pub const EMPTY: Sizes = Sizes {
    users: 0,
    profiles: 0,
    games: 0,
    requests: 0,
    sessions: 0,
    preferences: 0,
    audit: 0,
};

/// Exact row counts of the tables in [`COUNTED`] that exist in `db`.
pub fn counts(cluster: &PgCluster, db: &str) -> Result<BTreeMap<String, i64>, LabError> {
    let sql = format!(
        "SELECT format('SELECT %L, count(*) FROM %I', t, t) FROM unnest(ARRAY[{}]) AS t WHERE to_regclass(quote_ident(t)) IS NOT NULL \\gexec",
        COUNTED
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let out = psql(cluster, db, &sql, &[])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (t, n) = l.split_once('|')?;
            Some((t.to_string(), n.trim().parse().ok()?))
        })
        .collect())
}

/// OIDs of the counted tables of `db` (in `public`).
pub fn oids(cluster: &PgCluster, db: &str) -> Result<BTreeMap<String, u32>, LabError> {
    let sql = format!(
        "SELECT c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname IN ({})",
        COUNTED
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let out = psql(cluster, db, &sql, &[])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (t, n) = l.split_once('|')?;
            Some((t.to_string(), n.trim().parse().ok()?))
        })
        .collect())
}

/// `pg_dump` of `db` in plain format written the way a cron job writes it
/// (`pg_dump ... > file`): the file exists even when the dump fails.
/// Returns whether pg_dump succeeded.
pub fn dump(cluster: &PgCluster, db: &str, path: &Path) -> Result<bool, LabError> {
    let file = std::fs::File::create(path)
        .map_err(LabError::io(format!("create backup '{}'", path.display())))?;
    let status = Command::new(cluster.bin("pg_dump"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(cluster.port().to_string())
        .arg("-d")
        .arg(db)
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(Stdio::null())
        .status()
        .map_err(LabError::io("run pg_dump"))?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_two_migrations_in_time_order() {
        let m = migrations();
        assert_eq!(m.len(), 22);
        assert_eq!(m[0].name, "20240105093000_init");
        assert!(m[0].sql.starts_with("CREATE TABLE \"User\""));
        let times: Vec<_> = m.iter().map(|m| m.created_at().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(m[0].checksum().len(), 64);
        let sql = migrate_sql("r1", true);
        assert_eq!(
            sql.matches("INSERT INTO \"_prisma_migrations\"").count(),
            22
        );
        assert!(sql.contains("'2024-01-05 09:30:00+00'::timestamptz"));
        assert_ne!(row_id("r1", "a"), row_id("r2", "a"));
        assert_eq!(row_id("r1", "a").len(), 36);
    }

    #[test]
    fn sizes_keep_foreign_keys_satisfiable_at_every_stage() {
        for rows in [0, 400, 4000, 100_000, 5_000_000] {
            let s = Sizes::for_rows(rows);
            assert!(s.users >= 22 && s.games >= 12 && s.requests >= 182);
            if rows >= 4000 {
                assert!(s.total().abs_diff(rows) <= rows / 50, "{rows}: {s:?}");
            }
            for pct in [70, 80, 90, 95, 100] {
                let a = s.at(pct);
                assert!(a.profiles <= a.users, "{rows} {pct}");
                // Preference i goes to user (i-1)/games+1: that user must exist.
                assert!(
                    a.preferences.div_ceil(a.games) <= a.users,
                    "{rows} {pct}: {a:?}"
                );
            }
        }
        assert_eq!(Sizes::for_rows(4000).at(100), Sizes::for_rows(4000));
    }
}
