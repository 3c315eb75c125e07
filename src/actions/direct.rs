//! The actions that need no host: identity, note, sql and swap over
//! sessions src/db opens (never a connection of its own), snapshot through
//! a local pg_dump, command on the local host. Never drops anything; swap only renames.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::db::{ConnectOptions, DbError};
use crate::engine::actions::{ActionError, Actions, Output};
use crate::engine::preview::{TERMINATE_SQL, pg_dump_args, shell_line, swap_renames};
use crate::engine::types::*;
use crate::inventory::SslMode;
use crate::redact::Redactor;

/// How many times a swap tries again when a client reconnects between
/// terminating sessions and renaming.
const SWAP_ATTEMPTS: u32 = 8;

/// Real implementations of note, sql, swap, snapshot, command and identity;
/// every other action reports `NotWired`.
#[derive(Debug, Clone, Default)]
pub struct DirectActions {
    /// Directory of pg_dump; default: the one finder (`$LIFELINE_PG_BIN`,
    /// the newest /usr/lib/postgresql/*/bin, then PATH).
    pub pg_bin: Option<PathBuf>,
    /// Passwords read at connect time are registered here (the run's redactor).
    pub redactor: Redactor,
}

/// An action `DirectActions` cannot do: it needs the inventory (`RealActions`).
fn needs_inventory(action: &'static str) -> ActionError {
    ActionError::NotWired {
        action,
        needs: "the inventory's hosts, services and catalogs: run it through RealActions",
    }
}

/// A failed statement on `target`, with the server's own words and class.
pub(crate) fn db_error(target: &str, e: &tokio_postgres::Error) -> ActionError {
    ActionError::Db(DbError::from_query(target, "statement", e))
}

/// Connects to `dbname` on `db`'s server through src/db (TLS per sslmode,
/// password_env / password_file / ~/.pgpass, timeouts): the one connect path.
pub async fn connect(
    db: &DbTarget,
    dbname: &str,
    read_only: bool,
    statement_timeout_s: Option<u64>,
    redactor: &Redactor,
) -> Result<Client, ActionError> {
    let mut opts = ConnectOptions::from_spec(&db.spec, redactor)?;
    opts.url = db.url.with_dbname(dbname);
    opts.read_only = read_only;
    // The inventory's statement_timeout_ms bounds probes, not a step's own
    // work (a merge or swap may take long): only the step's timeout applies.
    opts.statement_timeout = statement_timeout_s.map(Duration::from_secs);
    Ok(opts.connect_owned().await?)
}

/// A connection to the server's maintenance database (postgres, else
/// template1): never to a database that is being renamed.
async fn connect_admin(db: &DbTarget, redactor: &Redactor) -> Result<Client, ActionError> {
    let mut last = None;
    for name in ["postgres", "template1"] {
        if name == db.dbname() {
            continue;
        }
        match connect(db, name, false, None, redactor).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ActionError::Failed("no maintenance database to connect to".into())))
}

async fn oid_of(c: &Client, server: &str, name: &str) -> Result<Option<u32>, ActionError> {
    Ok(crate::db::identity::database_oid(c, server, name).await?)
}

async fn identity_on(c: &Client, db: &DbTarget, dbname: &str) -> Result<DbIdentity, ActionError> {
    Ok(crate::db::identity::server_identity(c, &db.server(), dbname).await?)
}

/// The identity of `db` (read from the maintenance database, so a missing
/// database has an identity too: its server, with no OID).
pub async fn read_identity(db: &DbTarget, redactor: &Redactor) -> Result<DbIdentity, ActionError> {
    let c = connect_admin(db, redactor).await?;
    identity_on(&c, db, db.dbname()).await
}

/// The WAL segment `db`'s server is writing now
/// (`pg_walfile_name(pg_current_wal_lsn())`) and its `archive_timeout` in
/// seconds (0: unset) when `archive_mode` is on; None when it does not
/// archive. Read from the maintenance database; an error on a standby (the
/// function is refused there).
pub async fn current_wal_segment(
    db: &DbTarget,
    redactor: &Redactor,
) -> Result<Option<(String, u64)>, ActionError> {
    let c = connect_admin(db, redactor).await?;
    let row = c
        .query_one(
            "SELECT pg_walfile_name(pg_current_wal_lsn()), current_setting('archive_mode'), \
             (SELECT setting::bigint FROM pg_settings WHERE name = 'archive_timeout')",
            &[],
        )
        .await
        .map_err(|e| db_error(&db.server(), &e))?;
    let get = |e: tokio_postgres::Error| db_error(&db.server(), &e);
    let segment: String = row.try_get(0).map_err(get)?;
    let mode: String = row.try_get(1).map_err(get)?;
    let timeout: Option<i64> = row.try_get(2).map_err(get)?;
    if mode == "off" {
        return Ok(None);
    }
    Ok(Some((segment, timeout.unwrap_or(0).max(0) as u64)))
}

/// pg_dump (or another PostgreSQL client program): in `dir` when given,
/// else where the one finder (`crate::sandbox::pg_program`) finds it.
pub fn pg_tool(name: &str, dir: Option<&Path>) -> PathBuf {
    match dir {
        Some(d) => d.join(name),
        None => crate::sandbox::pg_program(name),
    }
}

fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((size, hex::encode(h.finalize())))
}

/// Streams a child's stdout and stderr into `out`, line by line.
async fn pump(child: &mut tokio::process::Child, out: &Output) {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let a = async {
        if let Some(s) = stdout {
            let mut lines = BufReader::new(s).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                out.line(l);
            }
        }
    };
    let b = async {
        if let Some(s) = stderr {
            let mut lines = BufReader::new(s).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                out.line(l);
            }
        }
    };
    tokio::join!(a, b);
}

/// Kills a process group (the command's shell and its children).
async fn kill_group(pid: u32) {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

impl Actions for DirectActions {
    async fn identity(&self, db: &DbTarget) -> Result<DbIdentity, ActionError> {
        read_identity(db, &self.redactor).await
    }

    async fn sql(&self, req: &SqlRequest, out: &Output) -> Result<SqlOutcome, ActionError> {
        let target = req.database.display();
        if req.read_only
            && let Some(why) = crate::restore::sql::read_only_refusal(&req.sql)
        {
            return Err(ActionError::Refused(format!(
                "the read-only sql step is refused: {why}; nothing was run (a step that writes must be destructive, with a typed confirmation)"
            )));
        }
        let mut c = connect(
            &req.database,
            req.database.dbname(),
            req.read_only,
            req.timeout_s,
            out.redactor(),
        )
        .await?;
        let msgs = if req.read_only {
            // One statement (the server's parser says so: a prepared
            // statement cannot hold two) in a READ ONLY transaction that
            // lifeline opens and rolls back.
            let tx = c
                .build_transaction()
                .read_only(true)
                .start()
                .await
                .map_err(|e| db_error(&target, &e))?;
            tx.prepare(&req.sql)
                .await
                .map_err(|e| db_error(&target, &e))?;
            let msgs = tx
                .simple_query(&req.sql)
                .await
                .map_err(|e| db_error(&target, &e))?;
            tx.rollback().await.map_err(|e| db_error(&target, &e))?;
            msgs
        } else {
            c.simple_query(&req.sql)
                .await
                .map_err(|e| db_error(&target, &e))?
        };
        let mut rows = 0u64;
        for m in msgs {
            match m {
                SimpleQueryMessage::Row(r) => {
                    rows += 1;
                    let cols: Vec<String> = r
                        .columns()
                        .iter()
                        .enumerate()
                        .map(|(i, col)| format!("{}={}", col.name(), r.get(i).unwrap_or("NULL")))
                        .collect();
                    out.line(cols.join(" | "));
                }
                SimpleQueryMessage::CommandComplete(n) => out.line(format!("-- {n} row(s)")),
                _ => {}
            }
        }
        Ok(SqlOutcome {
            rows,
            output: out.kept(),
        })
    }

    async fn swap(&self, req: &SwapRequest, out: &Output) -> Result<SwapOutcome, ActionError> {
        let db = &req.database;
        let live = db.dbname().to_string();
        let server = db.server();
        let c = connect_admin(db, out.redactor()).await?;
        let restored_oid = oid_of(&c, &server, &req.restored).await?.ok_or_else(|| {
            ActionError::NotFound(format!(
                "the restored database '{}' does not exist on {server}; nothing was done",
                req.restored
            ))
        })?;
        match crate::restore::target_status(&c, &req.restored).await {
            Ok(crate::restore::TargetStatus::Complete { comment }) => {
                out.line(format!("'{}' is marked: {comment}", req.restored));
            }
            Ok(other) => {
                let said = match other {
                    crate::restore::TargetStatus::Incomplete { comment } => format!("'{comment}'"),
                    crate::restore::TargetStatus::NotLifeline { comment: Some(c) } => {
                        format!("'{c}' (not a lifeline restore marker)")
                    }
                    _ => "no restore marker".into(),
                };
                return Err(ActionError::Refused(format!(
                    "refusing to swap in '{}': its completeness marker says {said}, not '{}': the restore did not finish; restore again into a new database; nothing was done",
                    req.restored,
                    crate::restore::MARK_COMPLETE
                )));
            }
            Err(e) => {
                return Err(ActionError::Restore {
                    what: format!(
                        "cannot read the completeness marker of '{}'; nothing was done",
                        req.restored
                    ),
                    source: Box::new(e.into()),
                });
            }
        }
        let live_oid = oid_of(&c, &server, &live).await?;
        match (&req.damaged, live_oid) {
            (None, Some(oid)) => {
                return Err(ActionError::Refused(format!(
                    "'{live}' exists now (OID {oid}) but was absent when you confirmed; nothing was done"
                )));
            }
            (Some(d), _) if oid_of(&c, &server, d).await?.is_some() => {
                return Err(ActionError::Refused(format!(
                    "a database named '{d}' already exists; nothing was done"
                )));
            }
            _ => {}
        }
        let names = vec![live.clone(), req.restored.clone()];
        let renames = swap_renames(req);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ended = c
                .execute(TERMINATE_SQL, &[&names])
                .await
                .map_err(|e| db_error(&server, &e))?;
            out.line(format!(
                "ended {ended} other session(s) on '{live}' and '{}'",
                req.restored
            ));
            // Wait (bounded) for the ended sessions to go.
            for _ in 0..50 {
                let left: i64 = c
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()",
                        &[&names],
                    )
                    .await
                    .map_err(|e| db_error(&server, &e))?
                    .get(0);
                if left == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut sql = String::from("BEGIN;\n");
            for r in &renames {
                sql.push_str(r);
                sql.push_str(";\n");
            }
            sql.push_str("COMMIT;");
            match c.batch_execute(&sql).await {
                Ok(()) => {
                    for r in &renames {
                        out.line(r);
                    }
                    out.line("COMMIT");
                    break;
                }
                Err(e) => {
                    // A failed statement leaves the transaction aborted: end it.
                    let _ = c.batch_execute("ROLLBACK").await;
                    if e.code() == Some(&SqlState::OBJECT_IN_USE) && attempt < SWAP_ATTEMPTS {
                        out.line(format!(
                            "attempt {attempt}: a client reconnected ({}); trying again",
                            db_error(&server, &e)
                        ));
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                        continue;
                    }
                    return Err(ActionError::DbIn {
                        what: "the swap was rolled back, nothing was renamed".into(),
                        source: DbError::from_query(&server, "the renames", &e),
                    });
                }
            }
        }
        let after = identity_on(&c, db, &live).await?;
        let damaged_oid = match &req.damaged {
            Some(d) => oid_of(&c, &server, d).await?,
            None => None,
        };
        if after.oid != Some(restored_oid) || damaged_oid != live_oid {
            return Err(ActionError::Refused(format!(
                "after the swap '{live}' is OID {:?} (expected the restored {restored_oid}) and the damaged copy OID {damaged_oid:?} (expected {live_oid:?}): look before going on",
                after.oid
            )));
        }
        out.line(format!(
            "'{live}' is now {}; nothing was dropped",
            after.describe()
        ));
        Ok(SwapOutcome {
            live,
            damaged: req.damaged.clone(),
            restored_from: req.restored.clone(),
            after,
            damaged_oid,
            attempts: attempt,
        })
    }

    async fn snapshot(
        &self,
        req: &SnapshotRequest,
        out: &Output,
    ) -> Result<SnapshotOutcome, ActionError> {
        let db = &req.database;
        let id = read_identity(db, out.redactor()).await?;
        let prog = pg_tool("pg_dump", self.pg_bin.as_deref());
        let args = pg_dump_args(db, &req.path);
        let command = shell_line(&prog.display().to_string(), &args);
        if id.oid.is_none() {
            out.line(format!(
                "'{}' does not exist on {}: nothing to snapshot, nothing to lose",
                db.dbname(),
                id.server
            ));
            return Ok(SnapshotOutcome {
                path: None,
                size: 0,
                sha256: None,
                dbname: db.dbname().to_string(),
                command,
                absent: true,
            });
        }
        if req.path.exists() {
            return Err(ActionError::Refused(format!(
                "'{}' already exists; it is kept, and nothing was overwritten",
                req.path.display()
            )));
        }
        if let Some(dir) = req.path.parent() {
            crate::state::private_dir(dir).map_err(|source| ActionError::Io {
                what: format!("create '{}'", dir.display()),
                source,
            })?;
        }
        // Created empty 0600 first: pg_dump -f then writes into it and keeps the mode.
        crate::state::write_private_new(&req.path, b"").map_err(|source| ActionError::Io {
            what: format!("create '{}'", req.path.display()),
            source,
        })?;
        out.line(&command);
        let mut cmd = tokio::process::Command::new(&prog);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PGAPPNAME", "lifeline-snapshot")
            .env_remove("PGPASSWORD")
            .kill_on_drop(true);
        // The same password and TLS settings src/db connects with.
        let opts = ConnectOptions::from_spec(&db.spec, out.redactor())?;
        if let Some(pw) = opts.resolve_password()? {
            cmd.env("PGPASSWORD", pw);
        }
        cmd.env(
            "PGSSLMODE",
            match opts.sslmode {
                SslMode::Disable => "disable",
                SslMode::Prefer => "prefer",
                SslMode::Require => "require",
                SslMode::VerifyCa => "verify-ca",
                SslMode::VerifyFull => "verify-full",
            },
        );
        cmd.env_remove("PGSSLROOTCERT");
        if let Some(ca) = &opts.sslrootcert {
            cmd.env("PGSSLROOTCERT", ca);
        }
        let mut child = cmd.spawn().map_err(|source| ActionError::Io {
            what: format!("run '{}'", prog.display()),
            source,
        })?;
        pump(&mut child, out).await;
        let status = child.wait().await.map_err(|source| ActionError::Io {
            what: "wait for pg_dump".into(),
            source,
        })?;
        if !status.success() {
            let tail = out.kept().into_iter().rev().take(5).collect::<Vec<_>>();
            return Err(ActionError::Failed(format!(
                "pg_dump failed ({status}): {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            )));
        }
        let path = req.path.clone();
        let (size, sha256) = tokio::task::spawn_blocking(move || sha256_file(&path))
            .await
            .map_err(|e| ActionError::Failed(format!("hashing the snapshot: {e}")))?
            .map_err(|source| ActionError::Io {
                what: format!("read '{}'", req.path.display()),
                source,
            })?;
        out.line(format!("{size} bytes, sha256 {sha256}"));
        Ok(SnapshotOutcome {
            path: Some(req.path.display().to_string()),
            size,
            sha256: Some(sha256),
            dbname: db.dbname().to_string(),
            command,
            absent: false,
        })
    }

    async fn command(
        &self,
        req: &CommandRequest,
        out: &Output,
    ) -> Result<CommandOutcome, ActionError> {
        if !req.host.is_local() {
            return Err(ActionError::NotWired {
                action: "command on an ssh host",
                needs: "src/transport",
            });
        }
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&req.command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ActionError::Io {
                what: "run sh -c".into(),
                source,
            })?;
        let pid = child.id();
        let run = async {
            pump(&mut child, out).await;
            child.wait().await
        };
        match tokio::time::timeout(Duration::from_secs(req.timeout_s), run).await {
            Ok(Ok(status)) => {
                use std::os::unix::process::ExitStatusExt;
                let exit = status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                Ok(CommandOutcome {
                    exit,
                    output: out.kept(),
                })
            }
            Ok(Err(source)) => Err(ActionError::Io {
                what: "wait for the command".into(),
                source,
            }),
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid).await;
                }
                Err(ActionError::Timeout(req.timeout_s))
            }
        }
    }

    async fn note(&self, text: &str, out: &Output) -> Result<StepOutcome, ActionError> {
        Ok(crate::engine::actions::note_outcome(text, out))
    }

    /// Nothing measured: the live previews need the inventory's hosts and catalogs.
    async fn live_preview(&self, _req: &ActionRequest) -> Result<Vec<String>, ActionError> {
        Ok(Vec::new())
    }

    // The actions below need the inventory (hosts, services, catalogs):
    // `RealActions` does them; here they fail before anything is done.
    async fn probe(&self, _req: &ProbeRequest, _out: &Output) -> Result<ProbeOutcome, ActionError> {
        Err(needs_inventory("probe"))
    }

    async fn stop_services(
        &self,
        _req: &StopRequest,
        _out: &Output,
    ) -> Result<StopOutcome, ActionError> {
        Err(needs_inventory("stop-services"))
    }

    async fn pick_backup(
        &self,
        _req: &PickRequest,
        _out: &Output,
    ) -> Result<PickOutcome, ActionError> {
        Err(needs_inventory("pick-backup"))
    }

    async fn restore(
        &self,
        _req: &RestoreRequest,
        _out: &Output,
    ) -> Result<RestoreOutcome, ActionError> {
        Err(needs_inventory("restore"))
    }

    async fn reapply_owners(
        &self,
        _req: &ReapplyRequest,
        _out: &Output,
    ) -> Result<ReapplyOutcome, ActionError> {
        Err(needs_inventory("reapply-owners"))
    }

    async fn recover_pitr(
        &self,
        _req: &PitrRequest,
        _out: &Output,
    ) -> Result<PitrOutcome, ActionError> {
        Err(needs_inventory("recover-pitr"))
    }

    async fn choose_path(
        &self,
        req: &ChoosePathRequest,
        _out: &Output,
    ) -> Result<PathOutcome, ActionError> {
        req.decided().ok_or_else(|| needs_inventory("choose-path"))
    }

    async fn verify(
        &self,
        _req: &VerifyRequest,
        _out: &Output,
    ) -> Result<VerifyOutcome, ActionError> {
        Err(needs_inventory("verify"))
    }

    async fn merge_tables(
        &self,
        _req: &MergeRequest,
        _out: &Output,
    ) -> Result<MergeOutcome, ActionError> {
        Err(needs_inventory("merge-tables"))
    }

    async fn start_services(
        &self,
        _req: &StartRequest,
        _out: &Output,
    ) -> Result<StartOutcome, ActionError> {
        Err(needs_inventory("start-services"))
    }
}
