//! restore: the backup checked on its host first (format, pg_dump trailer;
//! a truncated or unreadable one is refused before anything is created),
//! then streamed over the host's transport (`cat`, or `pg_restore -f -` run
//! there) through the restore executor into a NEW database the engine
//! named. Never touches the live database; never reuses or drops a target.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};

use super::{CATALOG_TIMEOUT, bytes, host};
use crate::catalog::{self, DumpFormat};
use crate::db::ConnectOptions;
use crate::engine::actions::{ActionError, Output};
use crate::engine::real::RealActions;
use crate::engine::types::*;
use crate::probe::Runner;
use crate::restore::{
    DbSettings, Restore, RestoreEvent, RestoreSource, SourceError, create_target_named,
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
            "PGR=$(command -v pg_restore 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/pg_restore 2>/dev/null | sort -V | tail -n 1); \"${{PGR:-pg_restore}}\" -f - -- {q}"
        )),
        DumpFormat::Empty | DumpFormat::Unknown => None,
    }
}

/// Reads an `ExecStream` that stays reachable for `finish` afterwards.
struct Remote(Arc<Mutex<Option<ExecStream>>>);

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
        match g.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
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
        .map_err(|e| ActionError::Failed(e.to_string()))?;
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

pub async fn restore(
    a: &RealActions,
    req: &RestoreRequest,
    out: &Output,
) -> Result<RestoreOutcome, ActionError> {
    let live = req.database.dbname().to_string();
    let h = host(a, &req.host.name)?;

    // 1. The backup, checked on its host before anything is created.
    out.line(format!(
        "checking {} on {} (format, pg_dump trailer) before creating anything",
        req.backup_path,
        req.host.display()
    ));
    let file = catalog::check_file(
        &req.backup_path,
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
        return Err(ActionError::Failed(format!(
            "the backup '{}' on host '{}' is not usable: {}; nothing was created: pick another backup",
            req.backup_path,
            req.host.name,
            file.problem
                .as_deref()
                .unwrap_or("failed its integrity check")
        )));
    }
    if let Some(d) = &file.dumped_db
        && d != &live
    {
        out.line(format!(
            "note: the archive says it holds database '{d}'; restoring it beside '{live}' as asked"
        ));
    }
    let Some(cmd) = stream_command(&file.path, file.format) else {
        return Err(ActionError::Failed(format!(
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

    // 2. The target, with the live database's settings (or the server's when it is gone).
    let opts = ConnectOptions::from_spec(&req.database.spec, &a.redactor)
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    let maint = if live == "postgres" {
        "template1"
    } else {
        "postgres"
    };
    let admin = opts
        .with_dbname(maint)
        .connect()
        .await
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    let fallback = match read_settings(&admin.client, &live)
        .await
        .map_err(|e| ActionError::Failed(e.to_string()))?
    {
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
    let target = create_target_named(&admin.client, &req.target_db, &live, fallback.as_ref())
        .await
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    out.line(format!(
        "created {} (encoding {}, collation {}, owner {}), marked INCOMPLETE",
        crate::restore::quote_ident(&target.name),
        target.settings.encoding,
        target.settings.collate,
        target.settings.owner
    ));
    drop(admin);

    // 3. The stream over the host's transport.
    out.line(format!("on {}: {cmd}", req.host.name));
    let stream = h
        .exec_stream(
            &cmd,
            ExecOptions::default()
                .timeout(STREAM_TIMEOUT)
                .output_cap(64 << 10),
        )
        .await
        .map_err(|e| {
            ActionError::Failed(format!(
                "cannot start '{cmd}' on host '{}': {e}; '{}' stays marked INCOMPLETE",
                req.host.name, target.name
            ))
        })?;
    let shared = Arc::new(Mutex::new(Some(stream)));
    let for_finish = shared.clone();
    let command = cmd.clone();
    let finish = async move {
        let s = for_finish.lock().ok().and_then(|mut g| g.take());
        let Some(s) = s else { return Ok(()) };
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
    let total =
        matches!(file.format, DumpFormat::Plain | DumpFormat::PlainGzip).then_some(file.size);
    let label = format!("{}:{}", req.host.name, file.path);
    let mut source = RestoreSource::from_reader(Remote(shared), label, total).with_finish(finish);
    if file.format == DumpFormat::PlainGzip {
        source = source.gunzip();
    }

    // 4. Progress to the operator, throttled.
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

    let (config, tls) = opts
        .with_dbname(&target.name)
        .pg_config()
        .map_err(|e| ActionError::Failed(e.to_string()))?;
    let result = Restore::new(config, tls, &target.name)
        .jobs(req.jobs.max(1) as usize)
        .events(tx)
        .run(source)
        .await;
    let _ = forward.await;
    let m = result.map_err(|f| ActionError::Failed(f.to_string()))?;
    let rows: u64 = m.tables.values().sum();
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
        },
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
