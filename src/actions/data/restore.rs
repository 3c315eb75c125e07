//! restore: the backup confined to its catalog (realpath on its host),
//! pre-scanned over the transport, then streamed into a NEW database; a
//! hostile dump is refused before anything is created. Never writes to the
//! live database; never reuses or drops a target.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use super::{CATALOG_TIMEOUT, bytes, host};
use crate::actions::RealActions;
use crate::catalog::{self, DumpFormat};
use crate::db::ConnectOptions;
use crate::db::PasswordSource;
use crate::engine::actions::{ActionError, Output};
use crate::engine::types::*;
use crate::probe::Runner;
use crate::restore::{
    DbSettings, Policy, Restore, RestoreEvent, RestoreSource, RoleStatus, SourceError,
    check_restore_role, create_restore_role, create_role_sql, create_target_owned, prescan,
    read_settings,
};
use crate::transport::{ExecOptions, ExecStream, shell_quote};

/// A restore may run for hours; the transport's limit is only a backstop.
const STREAM_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// At most one progress line per this interval.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The remote command that writes the backup as a byte stream on its host:
/// the file itself for plain and gzip dumps (gzip is inflated here, so
/// fewer bytes cross the network), `pg_restore -f -` for archives.
pub(crate) fn stream_command(path: &str, format: DumpFormat) -> Option<String> {
    let q = shell_quote(path);
    match format {
        DumpFormat::Plain | DumpFormat::PlainGzip => Some(format!("cat -- {q}")),
        DumpFormat::Custom | DumpFormat::Directory | DumpFormat::Tar => Some(format!(
            "{}; \"${{PGR:-pg_restore}}\" -f - -- {q}",
            catalog::REMOTE_PG_RESTORE
        )),
        DumpFormat::Empty | DumpFormat::Unknown => None,
    }
}

/// The backup's real path on its host (symlinks followed), refused unless
/// it lies inside the catalog's directory: a runbook or answers file cannot
/// point a restore at any other file of the host.
pub(crate) async fn confine(
    path: &str,
    catalog_dir: &str,
    runner: &dyn Runner,
) -> Result<String, ActionError> {
    let refuse = |why: String| {
        ActionError::Refused(format!(
            "the backup '{}' is refused: {why}; a restore reads only files inside its catalog's directory '{catalog_dir}'; nothing was created",
            path.escape_debug()
        ))
    };
    if path.contains(['\n', '\0']) {
        return Err(refuse("its name holds a newline or NUL byte".into()));
    }
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", catalog_dir.trim_end_matches('/'))
    };
    let script = format!(
        "realpath -z -e -- {} && realpath -z -e -- {}",
        shell_quote(catalog_dir),
        shell_quote(&full)
    );
    let out = runner
        .run(&script, CATALOG_TIMEOUT)
        .await
        .map_err(|e| refuse(format!("cannot resolve it on its host: {e}")))?;
    if out.exit != Some(0) {
        return Err(refuse(format!(
            "it does not resolve on its host ({})",
            out.stderr.trim()
        )));
    }
    let parts: Vec<&str> = out.stdout.split('\0').collect();
    let (dir, real) = match parts.as_slice() {
        [dir, real, ""] => (*dir, *real),
        _ => return Err(refuse("realpath gave an unexpected answer".into())),
    };
    let inside = real
        .strip_prefix(dir.trim_end_matches('/'))
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1);
    if !inside {
        return Err(refuse(format!("it resolves to '{}'", real.escape_debug())));
    }
    Ok(real.to_string())
}

/// Runs `cmd` on the backup's host and wraps its stdout as a restore source.
/// With `expect_sha256`, the bytes are hashed as they arrive (before any
/// gunzip) and the source's end fails with `SourceError::Changed` when
/// they are not the expected ones: before the restore marks anything complete.
async fn remote_source(
    h: &crate::transport::Host,
    cmd: &str,
    label: String,
    total: Option<u64>,
    gzip: bool,
    expect_sha256: Option<&str>,
) -> Result<RestoreSource, crate::transport::TransportError> {
    let stream = h
        .exec_stream(
            cmd,
            ExecOptions::default()
                .timeout(STREAM_TIMEOUT)
                .output_cap(64 << 10),
        )
        .await?;
    let shared = Arc::new(Mutex::new(Some(stream)));
    let for_finish = shared.clone();
    let command = cmd.to_string();
    let hasher = expect_sha256.map(|_| Arc::new(Mutex::new(Sha256::new())));
    let check = expect_sha256.map(str::to_string).zip(hasher.clone());
    let changed_label = label.clone();
    let finish = async move {
        let s = for_finish.lock().ok().and_then(|mut g| g.take());
        let Some(s) = s else { return Ok(()) };
        if let Some((expected, h)) = &check {
            let read = h
                .lock()
                .map(|h| hex::encode(h.clone().finalize()))
                .unwrap_or_default();
            if !read.eq_ignore_ascii_case(expected) {
                return Err(SourceError::Changed {
                    label: changed_label,
                    expected: expected.clone(),
                    read,
                });
            }
        }
        match s.finish().await {
            Ok(r) if r.success() => Ok(()),
            Ok(r) => Err(SourceError::Command {
                command,
                status: r.outcome(),
                stderr: r.stderr.trim().to_string(),
            }),
            Err(e) => Err(SourceError::Command {
                command,
                status: "transport error".into(),
                stderr: e.to_string(),
            }),
        }
    };
    let mut source =
        RestoreSource::from_reader(Remote(shared, hasher), label, total).with_finish(finish);
    if gzip {
        source = source.gunzip();
    }
    Ok(source)
}

/// What the restore is held to: the SHA-256 the stream must have (plain
/// and gzip dumps: the bytes are hashed as they are read, before any
/// gunzip). An archive (custom, tar, directory) streams as pg_restore's
/// output, so it is hashed on its host here instead, before anything is
/// created.
async fn held_to_pick(
    req: &RestoreRequest,
    file: &catalog::BackupFile,
    h: &crate::transport::Host,
    out: &Output,
) -> Result<Option<String>, ActionError> {
    let Some(p) = &req.picked else {
        out.line(format!(
            "'{}' was not chosen by a pick-backup step of this run: its bytes are not compared with a pick",
            req.backup_path
        ));
        return Ok(None);
    };
    let Some(want) = p.sha256.as_deref() else {
        return Err(ActionError::Refused(format!(
            "pick-backup recorded no SHA-256 for '{}' ({}): the restore cannot prove it reads the picked backup; nothing was created; run pick-backup again",
            p.path, p.source
        )));
    };
    match file.format {
        DumpFormat::Plain | DumpFormat::PlainGzip => {
            out.line(format!(
                "held to the pick: the bytes read must have sha256 {want} ({} from {})",
                p.name, p.source
            ));
            Ok(Some(want.to_string()))
        }
        _ => {
            let now = catalog::content::file_sha256(h, file).await.map_err(|e| {
                ActionError::Failed(format!(
                    "cannot hash the backup '{}' on its host to compare it with the pick: {e}; nothing was created",
                    p.path
                ))
            })?;
            if !now.eq_ignore_ascii_case(want) {
                return Err(ActionError::BackupChanged {
                    path: p.path.clone(),
                    picked: want.to_string(),
                    read: now,
                    consequence: "Nothing was created".into(),
                });
            }
            out.line(format!(
                "held to the pick: sha256 {want} on its host (an archive is hashed there, before the restore reads it)"
            ));
            Ok(None)
        }
    }
}

/// A stream whose bytes are not the picked backup's, as the error that says so.
fn changed(e: &crate::restore::RestoreError, path: &str, consequence: &str) -> Option<ActionError> {
    match e {
        crate::restore::RestoreError::Source(SourceError::Changed { expected, read, .. }) => {
            Some(ActionError::BackupChanged {
                path: path.to_string(),
                picked: expected.clone(),
                read: read.clone(),
                consequence: consequence.to_string(),
            })
        }
        _ => None,
    }
}

/// A target-creation error, typed, with what was being done.
fn target_err(what: &str, e: crate::restore::TargetError) -> ActionError {
    ActionError::Restore {
        what: what.to_string(),
        source: Box::new(e.into()),
    }
}

/// Extensions of the live database (plpgsql only when it is gone).
async fn live_extensions(opts: &ConnectOptions) -> Result<Vec<String>, ActionError> {
    let Ok(live) = opts.connect().await else {
        return Ok(Vec::new());
    };
    let rows = live
        .client
        .query("SELECT extname::text FROM pg_extension", &[])
        .await
        .map_err(|e| ActionError::DbIn {
            what: "cannot list the live database's extensions".into(),
            source: crate::db::DbError::from_query(&opts.target(), "list extensions", &e),
        })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Reads an `ExecStream` that stays reachable for `finish` afterwards,
/// hashing what it reads when asked to.
struct Remote(Arc<Mutex<Option<ExecStream>>>, Option<Arc<Mutex<Sha256>>>);

impl AsyncRead for Remote {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(_) => return Poll::Ready(Err(std::io::Error::other("stream lock poisoned"))),
        };
        let before = buf.filled().len();
        let r = match g.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        };
        if let (Poll::Ready(Ok(())), Some(h)) = (&r, &self.1)
            && let Ok(mut h) = h.lock()
        {
            h.update(&buf.filled()[before..]);
        }
        r
    }
}

/// Settings for a target whose live database is missing: the server's
/// defaults (template1's encoding and collation), UTF8, owned by the
/// inventory's user (the objects keep the owners the dump gives them).
async fn fallback_settings(
    admin: &tokio_postgres::Client,
    user: &str,
) -> Result<DbSettings, ActionError> {
    let t1 = read_settings(admin, "template1")
        .await
        .map_err(|e| target_err("read the settings of 'template1'", e))?;
    let mut s = t1.unwrap_or(DbSettings {
        encoding: "UTF8".into(),
        collate: "C".into(),
        ctype: "C".into(),
        owner: user.to_string(),
        locale_provider: None,
        icu_locale: None,
    });
    s.encoding = "UTF8".into();
    s.owner = user.to_string();
    Ok(s)
}

/// The restore role to log in as (its name and password source), judged
/// on the server; created first when the operator typed the phrase for it.
/// None: the admin user (the operator typed '<db> as superuser').
async fn restore_role(
    admin: &tokio_postgres::Client,
    restore_as: &RestoreAs,
    dbname: &str,
    out: &Output,
) -> Result<Option<(String, PasswordSource)>, ActionError> {
    let RestoreAs::Role {
        name,
        password_env,
        create,
    } = restore_as
    else {
        out.line(format!(
            "no restore_role: restoring as the admin user, as the operator confirmed by typing '{}'; a hostile backup's functions run with its privileges",
            RestoreAs::admin_phrase(dbname)
        ));
        return Ok(None);
    };
    let fail =
        |e: crate::restore::RoleError| ActionError::Failed(format!("{e}; nothing was created"));
    match check_restore_role(admin, name).await.map_err(fail)? {
        RoleStatus::Fit => out.line(format!(
            "restore_role '{name}' checked: LOGIN, not a superuser, cannot create roles or databases, member of no role, owns no other database"
        )),
        RoleStatus::Missing if *create => {
            out.line(format!(
                "restore_role '{name}' does not exist; creating it as the operator typed '{}': {}",
                RestoreAs::create_phrase(dbname, name),
                create_role_sql(name)
            ));
            create_restore_role(admin, name).await.map_err(fail)?;
            out.line(format!("created role '{name}' (LOGIN only)"));
        }
        RoleStatus::Missing => {
            return Err(ActionError::Failed(format!(
                "restore_role '{name}' does not exist on the server; nothing was created: run the step again and type '{}' to let lifeline create it ({}), or create it yourself",
                RestoreAs::create_phrase(dbname, name),
                create_role_sql(name)
            )));
        }
    }
    let pw = match password_env {
        Some(v) => PasswordSource::Env(v.clone()),
        None => PasswordSource::Pgpass,
    };
    Ok(Some((name.clone(), pw)))
}

/// `pre-data`, `data`, `post-data`, `finishing`.
fn phase(p: crate::restore::Phase) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn progress_message(p: &crate::restore::Progress) -> String {
    let mut m = format!(
        "{}: {}",
        phase(p.phase),
        bytes(p.source_bytes.unwrap_or(p.bytes))
    );
    if let Some(t) = p.source_total {
        m.push_str(&format!(" of {}", bytes(t)));
    }
    if let Some(t) = &p.current_table {
        m.push_str(&format!(", table {t} ({} rows)", p.current_table_rows));
    }
    m.push_str(&format!(
        ", {} rows, {} tables loaded, {}/s",
        p.rows,
        p.tables_loaded,
        bytes(p.rate_bytes_per_s as u64)
    ));
    if let Some(e) = p.eta_s {
        m.push_str(&format!(", ETA {} s", e.round() as u64));
    }
    m
}

/// The backup as the restore will read it: confined to its catalog,
/// checked on its host (format, pg_dump trailer), the command that streams
/// it, and the SHA-256 the stream must have (held to the pick). Nothing is
/// created here.
struct CheckedBackup {
    file: catalog::BackupFile,
    cmd: String,
    expect: Option<String>,
}

/// The restore's events as the operator's progress and lines, throttled
/// (one progress line per `PROGRESS_EVERY`); ends when the sender is dropped.
fn forward_progress(
    out: &Output,
) -> (
    tokio::sync::mpsc::UnboundedSender<RestoreEvent>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RestoreEvent>();
    let o = out.clone();
    let forward = tokio::spawn(async move {
        let mut last: Option<Instant> = None;
        while let Some(ev) = rx.recv().await {
            match ev {
                RestoreEvent::Progress(p) => {
                    if last.is_none_or(|l| l.elapsed() >= PROGRESS_EVERY) {
                        last = Some(Instant::now());
                        o.progress(
                            p.source_bytes.unwrap_or(p.bytes),
                            p.source_total,
                            progress_message(&p),
                        );
                    }
                }
                RestoreEvent::Phase { phase: p } => o.line(format!("phase {}", phase(p))),
                RestoreEvent::Notice { severity, message } => {
                    o.line(format!("server {severity}: {message}"))
                }
                RestoreEvent::TableLoaded { table, rows } => {
                    o.line(format!("loaded {table}: {rows} rows"))
                }
                RestoreEvent::Started { .. }
                | RestoreEvent::Finished { .. }
                | RestoreEvent::Failed { .. } => {}
            }
        }
    });

    (tx, forward)
}

/// Phase 1 of a restore: the backup, before anything is created.
async fn check_backup(
    req: &RestoreRequest,
    h: &crate::transport::Host,
    live: &str,
    out: &Output,
) -> Result<CheckedBackup, ActionError> {
    let real = confine(&req.backup_path, &req.catalog.path, h as &dyn Runner).await?;
    out.line(format!(
        "checking {} on {} (format, pg_dump trailer) before creating anything",
        real.escape_debug(),
        req.host.display()
    ));
    let file = catalog::check_file(
        &real,
        req.catalog.pattern.as_deref(),
        h as &dyn Runner,
        CATALOG_TIMEOUT,
    )
    .await
    .map_err(|e| {
        ActionError::Failed(format!(
            "cannot check the backup '{}': {e}; nothing was created",
            req.backup_path
        ))
    })?;
    if !file.ok {
        return Err(ActionError::Refused(format!(
            "the backup '{}' on host '{}' is not usable: {}; nothing was created: pick another backup",
            req.backup_path,
            req.host.name,
            file.problem
                .as_deref()
                .unwrap_or("failed its integrity check")
        )));
    }
    if let Some(d) = &file.dumped_db
        && d != live
    {
        out.line(format!(
            "note: the archive says it holds database '{d}'; restoring it beside '{live}' as asked"
        ));
    }
    let Some(cmd) = stream_command(&file.path, file.format) else {
        return Err(ActionError::Refused(format!(
            "the backup '{}' has format {:?}, which cannot be restored; nothing was created",
            req.backup_path, file.format
        )));
    };
    out.line(format!(
        "backup ok: {:?}, {}, taken {}",
        file.format,
        bytes(file.size),
        file.taken_at
    ));
    let expect = held_to_pick(req, &file, h, out).await?;
    Ok(CheckedBackup { file, cmd, expect })
}

pub async fn restore(
    a: &RealActions,
    req: &RestoreRequest,
    out: &Output,
) -> Result<RestoreOutcome, ActionError> {
    let live = req.database.dbname().to_string();
    let h = host(a, &req.host.name)?;

    // 1. The backup, confined to its catalog and checked on its host before anything is created.
    let CheckedBackup { file, cmd, expect } = check_backup(req, h, &live, out).await?;

    // 2. The live database's settings (or the server's when it is gone).
    let opts = ConnectOptions::from_spec(&req.database.spec, &a.redactor)?;
    let maint = if live == "postgres" {
        "template1"
    } else {
        "postgres"
    };
    let admin = opts.with_dbname(maint).connect().await?;
    let live_settings = read_settings(&admin.client, &live)
        .await
        .map_err(|e| target_err(&format!("read the settings of '{live}'"), e))?;
    let fallback = match &live_settings {
        Some(_) => None,
        None => {
            let s = fallback_settings(&admin.client, &opts.user).await?;
            out.line(format!(
                "'{live}' does not exist on {} (SQLSTATE 3D000): the target gets the server's defaults: encoding {}, collation {}, ctype {}, owner {}",
                req.database.server(),
                s.encoding,
                s.collate,
                s.ctype,
                s.owner
            ));
            Some(s)
        }
    };
    // 3. Who the restore sessions log in as: the restore role, judged (and
    //    created only when the operator typed the phrase that says so).
    let role = restore_role(&admin.client, &req.restore_as, req.database.dbname(), out).await?;

    // 4. The pre-scan: the whole stream judged once, no database touched.
    let owner = live_settings
        .as_ref()
        .or(fallback.as_ref())
        .map(|s| s.owner.clone())
        .unwrap_or_else(|| opts.user.clone());
    let extensions = if live_settings.is_some() {
        live_extensions(&opts).await?
    } else {
        Vec::new()
    };
    let database_owner = owner.clone();
    let policy = match &role {
        Some((name, _)) => Policy::new(&req.target_db).restore_role(name.clone()),
        None => Policy::new(&req.target_db).owner(owner),
    }
    .extensions(extensions);
    let total =
        matches!(file.format, DumpFormat::Plain | DumpFormat::PlainGzip).then_some(file.size);
    let label = format!("{}:{}", req.host.name, file.path);
    let gzip = file.format == DumpFormat::PlainGzip;
    out.line(format!(
        "pre-scan on {}: {cmd} (every statement judged against what pg_dump writes; nothing is created yet)",
        req.host.name
    ));
    let scan_source = remote_source(h, &cmd, label.clone(), total, gzip, expect.as_deref())
        .await
        .map_err(|e| ActionError::Transport {
            what: format!(
                "cannot start '{cmd}' on host '{}'; nothing was created",
                req.host.name
            ),
            source: Box::new(e),
        })?;
    let scan = prescan(scan_source, policy.clone(), true)
        .await
        .map_err(|e| {
            if let Some(c) = changed(&e, &req.backup_path, "Nothing was created") {
                return c;
            }
            ActionError::Refused(format!(
                "the backup '{}' is refused by the pre-scan: {e}; nothing was created: pick another backup",
                file.path
            ))
        })?;
    out.line(format!(
        "pre-scan ok: {} statements, {}, sha256 {}",
        scan.statements,
        bytes(scan.bytes),
        scan.sha256
    ));

    // 5. The target, owned by the restore role.
    let target = create_target_owned(
        &admin.client,
        &req.target_db,
        &live,
        fallback.as_ref(),
        role.as_ref().map(|(n, _)| n.as_str()),
    )
    .await
    .map_err(|e| target_err("create the target", e))?;
    let restored_as = role
        .as_ref()
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| opts.user.clone());
    out.line(format!(
        "created {} (encoding {}, collation {}, owner {}), marked INCOMPLETE",
        crate::restore::quote_ident(&target.name),
        target.settings.encoding,
        target.settings.collate,
        restored_as
    ));
    drop(admin);

    // 6. The stream over the host's transport, judged again statement by statement.
    out.line(format!("on {}: {cmd}", req.host.name));
    let source = remote_source(h, &cmd, label, total, gzip, expect.as_deref())
        .await
        .map_err(|e| ActionError::Transport {
            what: format!(
                "cannot start '{cmd}' on host '{}'; '{}' stays marked INCOMPLETE",
                req.host.name, target.name
            ),
            source: Box::new(e),
        })?;

    // 7. Progress to the operator, throttled.
    let (tx, forward) = forward_progress(out);

    let session = match &role {
        Some((name, pw)) => opts.with_dbname(&target.name).as_user(name, pw.clone()),
        None => opts.with_dbname(&target.name),
    };
    out.line(format!(
        "restore sessions log in as '{}'{}",
        session.user,
        if role.is_some() {
            " (restore_role): ALTER ... OWNER TO other roles is skipped and listed for reapply-owners"
        } else {
            " (the admin user: confirmed as superuser)"
        }
    ));
    let (config, tls) = session.pg_config()?;
    let result = Restore::new(config, tls, &target.name)
        .policy(policy)
        .jobs(req.jobs.max(1) as usize)
        .events(tx)
        .run(source)
        .await;
    let _ = forward.await;
    let m = result.map_err(|f| {
        let consequence = format!(
            "'{}' stays marked INCOMPLETE and cannot be swapped in",
            target.name
        );
        match changed(&f.error, &req.backup_path, &consequence) {
            Some(c) => c,
            None => ActionError::Restore {
                what: format!(
                    "restore into '{}' failed (the target is marked INCOMPLETE and must not be used as a whole restore)",
                    target.name
                ),
                source: Box::new(f.error),
            },
        }
    })?;
    let rows: u64 = m.tables.values().sum();
    if !m.owners_skipped.is_empty() {
        let mut owners: Vec<&str> = m.owners_skipped.iter().map(|c| c.owner.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        out.line(format!(
            "ownership skipped (--no-owner): {} ALTER ... OWNER TO statement(s), to role(s) {}; reapply-owners gives them back:",
            m.owners_skipped.len(),
            owners.join(", ")
        ));
        for c in &m.owners_skipped {
            out.line(format!("  line {}: {}", c.line, c.sql()));
        }
    }
    out.line(format!(
        "complete: {} tables, {rows} rows, {} statements, {} in {} ms, sha256 {}",
        m.tables.len(),
        m.statements,
        bytes(m.bytes),
        m.duration_ms,
        m.sha256
    ));
    Ok(RestoreOutcome {
        target_db: target.name,
        manifest: RestoreManifest {
            tables: m
                .tables
                .into_iter()
                .map(|(k, v)| (k, i64::try_from(v).unwrap_or(i64::MAX)))
                .collect(),
            statements: m.statements,
            duration_ms: m.duration_ms,
            sha256: m.sha256,
            bytes: m.bytes,
            owners_skipped: m.owners_skipped,
            restored_as,
            database_owner: Some(database_owner),
        },
    })
}

/// reapply-owners: the owners a restore skipped, given back by the admin
/// connection in the restored database (never the live one), each only
/// when its role exists; refused while the database holds event triggers.
pub async fn reapply_owners(
    a: &RealActions,
    req: &ReapplyRequest,
    out: &Output,
) -> Result<ReapplyOutcome, ActionError> {
    if req.restored == req.database.dbname() {
        return Err(ActionError::Failed(format!(
            "'{}' is the live database: owners are re-applied in the restored database, before the swap",
            req.restored
        )));
    }
    let opts = ConnectOptions::from_spec(&req.database.spec, &a.redactor)
        .map_err(|e| ActionError::Failed(e.to_string()))?
        .with_dbname(&req.restored);
    let admin = opts
        .connect()
        .await
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    out.line(format!(
        "on {} as '{}': {} recorded owner change(s){}",
        opts.target(),
        opts.user,
        req.changes.len(),
        req.database_owner
            .as_deref()
            .map(|o| format!(", and the database itself back to '{o}'"))
            .unwrap_or_default()
    ));
    let report = crate::restore::reapply(
        &admin.client,
        &req.changes,
        req.database_owner
            .as_deref()
            .map(|o| (req.restored.as_str(), o)),
    )
    .await
    .map_err(|e| ActionError::Failed(e.to_string()))?;
    for sql in &report.applied {
        out.line(format!("ran: {sql}"));
    }
    for c in &report.missing_role {
        out.line(format!(
            "left to the restore role (role '{}' does not exist): line {}: {}",
            c.owner,
            c.line,
            c.sql()
        ));
    }
    for c in &report.held {
        out.line(format!(
            "held (SECURITY DEFINER functions exist; a superuser-owned routine would run the backup's code with its privileges): line {}: {}; review, then run it by hand if wanted",
            c.line,
            c.sql()
        ));
    }
    for (sql, why) in &report.failed {
        out.line(format!("refused by the server: {sql}: {why}"));
    }
    Ok(ReapplyOutcome {
        database: req.restored.clone(),
        applied: report.applied,
        missing_role: report.missing_role,
        failed: report.failed,
        held: report.held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_per_format() {
        assert_eq!(
            stream_command("/b/it's.sql", DumpFormat::Plain).unwrap(),
            "cat -- '/b/it'\\''s.sql'"
        );
        assert!(
            stream_command("/b/x.dump", DumpFormat::Custom)
                .unwrap()
                .ends_with("-f - -- /b/x.dump")
        );
        assert!(stream_command("/b/x", DumpFormat::Unknown).is_none());
    }
}
