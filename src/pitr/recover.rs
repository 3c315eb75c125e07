//! Recovery beside the live cluster: a base backup in a new 0700 directory with
//! lifeline's own config, paused at the target, checked, dumped, stopped and KEPT.
//! Never touches the live cluster's data directory or the archive; never reuses a directory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::archive::{ArchiveStatus, Plan};
use super::waldump::Target;
use super::{PitrError, as_owner, conf_quote};
use crate::inventory::ArchiveSpec;
use crate::transport::{ExecOptions, ExecResult, Host, shell_quote};

/// Default parent of recovery directories on the host.
pub const DEFAULT_RECOVERY_DIR: &str = "/var/tmp/lifeline-pitr";
/// Limit of the copy of the base backup and of pg_dump.
const COPY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// What to recover.
#[derive(Debug, Clone)]
pub struct RecoveryRequest {
    /// The database to check and dump (its name on the server).
    pub database: String,
    /// `schema.table` -> fewest rows it must hold at the target (the healthy counts).
    pub expect: BTreeMap<String, i64>,
    /// Name of the new directory under the archive's recovery_dir (letters, digits, `-`, `_`).
    pub name: String,
    /// How long replay to the target may take.
    pub wait: Duration,
}

/// A recovered, stopped, kept cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    pub host: String,
    /// The new directory (data/, sock/, postgres.log, recovered.dump).
    pub dir: String,
    pub data_dir: String,
    pub log: String,
    /// pg_dump -Fc of the recovered database, for the restore step.
    pub dump: String,
    pub base_backup: String,
    pub target: Target,
    /// The server's own log line saying where recovery stopped.
    pub stopped: String,
    /// `pg_xact_status` of the destructive transaction in the recovered cluster.
    pub xid_status: Option<String>,
    pub counts: BTreeMap<String, i64>,
    /// Making the data directory (copy / untar / `pgbackrest restore`).
    pub prepare_s: f64,
    /// From the start of the cluster to the pause at the target.
    pub replay_s: f64,
    /// pg_dump of the recovered database.
    pub dump_s: f64,
}

/// One recovery directory on its host: `<dir>/data`, `<dir>/sock`, `<dir>/postgres.log`.
pub(super) struct Ctx<'a> {
    pub(super) h: &'a Host,
    pub(super) user: String,
    pub(super) dir: String,
    pub(super) port: u16,
    /// Shell prelude setting `$PGB` to the server binaries of the backup's version.
    pub(super) bin: String,
}

impl Ctx<'_> {
    pub(super) fn data(&self) -> String {
        format!("{}/data", self.dir)
    }
    pub(super) fn sock(&self) -> String {
        format!("{}/sock", self.dir)
    }
    pub(super) fn log(&self) -> String {
        format!("{}/postgres.log", self.dir)
    }
    pub(super) fn err(&self, why: impl Into<String>) -> PitrError {
        PitrError::Recovery {
            host: self.h.name().into(),
            dir: self.dir.clone(),
            why: why.into(),
        }
    }
    pub(super) async fn run(
        &self,
        script: &str,
        opts: ExecOptions,
    ) -> Result<ExecResult, PitrError> {
        let full = format!("{}\n{script}", self.bin);
        self.h
            .exec(&as_owner(&self.user, &full), opts)
            .await
            .map_err(|source| PitrError::Transport {
                host: self.h.name().into(),
                source: Box::new(source),
            })
    }
    /// psql against the recovery cluster's private socket; `db` goes through PGDATABASE (never parsed as a conninfo).
    async fn sql(&self, db: &str, sql: &str) -> Result<ExecResult, PitrError> {
        let script = format!(
            "PGDATABASE={db} PGCONNECT_TIMEOUT=10 PGOPTIONS='-c lock_timeout=60s' \"$PGB/psql\" -X -q -A -t -v ON_ERROR_STOP=1 -h {sock} -p {port} -U {user} -c {sql}",
            db = shell_quote(db),
            sock = shell_quote(&self.sock()),
            port = self.port,
            user = shell_quote(&self.user),
            sql = shell_quote(sql),
        );
        self.run(&script, self.h.options().timeout(Duration::from_secs(120)))
            .await
    }
    async fn log_tail(&self) -> String {
        let r = self
            .run(
                &format!("tail -n 15 -- {}", shell_quote(&self.log())),
                self.h.options(),
            )
            .await;
        r.map(|r| r.stdout).unwrap_or_default()
    }
    async fn stop(&self) -> Result<(), PitrError> {
        let r = self
            .run(
                &format!(
                    "\"$PGB/pg_ctl\" -D {} -m fast -w -t 120 stop",
                    shell_quote(&self.data())
                ),
                self.h.options().timeout(Duration::from_secs(150)),
            )
            .await?;
        if r.success() || r.stderr.contains("Is server running?") {
            Ok(())
        } else {
            Err(self.err(format!("pg_ctl stop: {}: {}", r.outcome(), r.stderr.trim())))
        }
    }
}

/// The recovery cluster's postgresql.conf: nothing of the backup's own
/// configuration (which may name the live cluster's paths, ports or
/// archive_command) is used.
pub fn recovery_conf(sock: &str, port: u16, wal_dir: &str, target: &Target) -> String {
    // restore_command: %f / %p are PostgreSQL's; a literal % in the path is %%.
    let restore = format!(
        "cp -- {}/%f \"%p\"",
        shell_quote(wal_dir.trim_end_matches('/')).replace('%', "%%")
    );
    conf_with_restore(sock, port, &restore, target)
}

/// The recovery cluster's postgresql.conf around a given `restore_command`
/// (already shell-quoted and `%`-escaped; quoted here for the conf file).
pub(super) fn conf_with_restore(sock: &str, port: u16, restore: &str, target: &Target) -> String {
    let mut lines = vec![
        "# written by lifeline: point-in-time recovery beside the live cluster".to_string(),
        "listen_addresses = ''".into(),
        format!("port = {port}"),
        format!("unix_socket_directories = {}", conf_quote(sock)),
        "unix_socket_permissions = 0700".into(),
        "archive_mode = off".into(),
        "archive_command = ''".into(),
        "hot_standby = on".into(),
        "logging_collector = off".into(),
        format!("restore_command = {}", conf_quote(restore)),
        "recovery_target_action = 'pause'".into(),
        "recovery_target_timeline = 'current'".into(),
    ];
    lines.extend(target.conf_lines());
    lines.join("\n") + "\n"
}

pub(super) fn stamp_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The end of a prepare script (`$D` the recovery directory, `$D/data`
/// restored, lifeline's postgresql.conf on stdin): everything of the
/// backup's own configuration moved aside (`*.from-backup`), lifeline's conf
/// written, the max_* values pg_control needs, recovery.signal.
pub(super) const LIFELINE_CONF: &str = r#"mkdir -p -- "$D/data/pg_wal" "$D/data/pg_wal/archive_status"
rm -f -- "$D/data/postmaster.pid" "$D/data/postmaster.opts" "$D/data/recovery.conf" "$D/data/standby.signal"
for f in postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf; do
  if [ -f "$D/data/$f" ]; then mv -- "$D/data/$f" "$D/data/$f.from-backup"; fi
done
cat > "$D/data/postgresql.conf"
: > "$D/data/postgresql.auto.conf"
printf 'local all all trust\n' > "$D/data/pg_hba.conf"
: > "$D/data/pg_ident.conf"
# Hot standby needs these at least as high as the primary had them (pg_control of the backup).
"$PGB/pg_controldata" -D "$D/data" | sed -n -e 's/^max_connections setting: *\([0-9][0-9]*\)$/max_connections = \1/p' -e 's/^max_worker_processes setting: *\([0-9][0-9]*\)$/max_worker_processes = \1/p' -e 's/^max_wal_senders setting: *\([0-9][0-9]*\)$/max_wal_senders = \1/p' -e 's/^max_prepared_xacts setting: *\([0-9][0-9]*\)$/max_prepared_transactions = \1/p' -e 's/^max_locks_per_xact setting: *\([0-9][0-9]*\)$/max_locks_per_transaction = \1/p' >> "$D/data/postgresql.conf"
: > "$D/data/recovery.signal"
chmod 0700 "$D/data"
"#;

/// The archive's recovery_dir (default [`DEFAULT_RECOVERY_DIR`]), without a
/// trailing `/`. pg_ctl puts the data directory and log paths inside double
/// quotes of a shell command of its own: a path holding `"`, `$`, a backtick
/// or `\` would run as shell there, so it is refused (as are relative paths
/// and control characters).
pub(super) fn recovery_root(spec: &ArchiveSpec) -> Result<String, PitrError> {
    let root = spec
        .recovery_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_RECOVERY_DIR.to_string());
    let bad = |c: char| c.is_control() || matches!(c, '"' | '$' | '`' | '\\');
    if !root.starts_with('/') || root.contains(bad) {
        return Err(PitrError::Unsafe {
            archive: spec.name().into(),
            why: format!(
                "recovery_dir '{}' must be an absolute path without '\"', '$', '`', '\\' or control characters (pg_ctl runs its paths through a shell)",
                root.escape_debug()
            ),
        });
    }
    Ok(root.trim_end_matches('/').to_string())
}

/// `PGB=<the server binaries of this major version>` (else the ones on PATH).
pub(super) fn bin_prelude(version: Option<&str>) -> String {
    let version = version.unwrap_or_default();
    format!(
        "PGB=/usr/lib/postgresql/{v}/bin; [ -x \"$PGB/pg_ctl\" ] || PGB=$(dirname \"$(command -v pg_ctl 2>/dev/null || echo /usr/bin/pg_ctl)\")",
        v = if version.bytes().all(|b| b.is_ascii_digit()) && !version.is_empty() {
            version
        } else {
            "NONE"
        }
    )
}

/// Recovers the plan's base backup to its target beside the live cluster.
/// On success the cluster is stopped and kept; on failure after it
/// started, it is stopped and kept for inspection (the error says where).
pub async fn recover(
    h: &Host,
    spec: &ArchiveSpec,
    status: &ArchiveStatus,
    plan: &Plan,
    req: &RecoveryRequest,
) -> Result<Recovered, PitrError> {
    if status.kind == crate::inventory::ArchiveKind::Pgbackrest {
        return super::pgbackrest::recover(h, spec, status, plan, req).await;
    }
    if !stamp_ok(&req.name) {
        return Err(PitrError::Archive(
            spec.name().into(),
            format!(
                "recovery name '{}' may hold only letters, digits, '-' and '_'",
                req.name.escape_debug()
            ),
        ));
    }
    let root = recovery_root(spec)?;
    let user = spec.os_user.clone().unwrap_or_else(|| "postgres".into());
    let ctx = Ctx {
        h,
        user,
        dir: format!("{}/{}", root.trim_end_matches('/'), req.name),
        port: 5432,
        bin: bin_prelude(plan.backup.pg_version.as_deref()),
    };
    let backup = format!(
        "{}/{}",
        status.base_dir.trim_end_matches('/'),
        plan.backup.dir
    );
    let copy = match plan.backup.format.as_str() {
        "plain" => format!("cp -a -- {}/. \"$D/data/\"", shell_quote(&backup)),
        "tar" => format!(
            "tar -xf {b}/base.tar -C \"$D/data\" && if [ -f {b}/pg_wal.tar ]; then tar -xf {b}/pg_wal.tar -C \"$D/data/pg_wal\"; fi",
            b = shell_quote(&backup)
        ),
        "tar.gz" => format!(
            "tar -xzf {b}/base.tar.gz -C \"$D/data\" && if [ -f {b}/pg_wal.tar.gz ]; then tar -xzf {b}/pg_wal.tar.gz -C \"$D/data/pg_wal\"; fi",
            b = shell_quote(&backup)
        ),
        other => {
            return Err(PitrError::Archive(
                spec.name().into(),
                format!("base backup format '{other}' cannot be restored"),
            ));
        }
    };
    let conf = recovery_conf(&ctx.sock(), ctx.port, &status.wal_dir, &plan.target);
    // 1. A NEW private directory (mkdir without -p fails on an existing one), the copy, our config.
    let prepare = format!(
        r#"set -e
umask 077
mkdir -p -- {root}
D={dir}
mkdir -- "$D"
mkdir -- "$D/data" "$D/sock"
chmod 0700 "$D" "$D/data" "$D/sock"
{copy}
{LIFELINE_CONF}"#,
        root = shell_quote(&root),
        dir = shell_quote(&ctx.dir),
    );
    let t0 = Instant::now();
    let r = ctx
        .run(
            &prepare,
            ExecOptions::default()
                .timeout(COPY_TIMEOUT)
                .stdin(conf.into_bytes())
                .stderr_cap(64 << 10),
        )
        .await?;
    if !r.success() {
        return Err(ctx.err(format!(
            "preparing the directory failed ({}): {}; nothing was started",
            r.outcome(),
            r.stderr.trim()
        )));
    }
    start_and_check(&ctx, plan, req, backup, t0.elapsed().as_secs_f64()).await
}

/// Starts the prepared recovery cluster, waits for the pause at the target,
/// checks and dumps it, and stops it (kept, also on failure).
pub(super) async fn start_and_check(
    ctx: &Ctx<'_>,
    plan: &Plan,
    req: &RecoveryRequest,
    base_backup: String,
    prepare_s: f64,
) -> Result<Recovered, PitrError> {
    // 2. Start; pg_ctl -w returns once the copy is consistent (hot standby accepts connections).
    let started = Instant::now();
    let start = format!(
        "\"$PGB/pg_ctl\" -D {} -l {} -w -t {} start",
        shell_quote(&ctx.data()),
        shell_quote(&ctx.log()),
        req.wait.as_secs().max(30)
    );
    let r = ctx
        .run(
            &start,
            ExecOptions::default().timeout(req.wait + Duration::from_secs(30)),
        )
        .await?;
    if !r.success() {
        let tail = ctx.log_tail().await;
        let _ = ctx.stop().await;
        return Err(ctx.err(format!(
            "the recovery cluster did not start ({}): {}; its log ends:\n{}\nthe directory is kept",
            r.outcome(),
            r.stderr.trim(),
            tail.trim()
        )));
    }
    // 3. Wait for the pause at the target.
    let res = wait_and_check(ctx, plan, req, started).await;
    let stop = ctx.stop().await;
    let (stopped, xid_status, counts, replay_s, dump_s) = res?;
    stop?;
    Ok(Recovered {
        host: ctx.h.name().into(),
        dir: ctx.dir.clone(),
        data_dir: ctx.data(),
        log: ctx.log(),
        dump: format!("{}/recovered.dump", ctx.dir),
        base_backup,
        target: plan.target.clone(),
        stopped,
        xid_status,
        counts,
        prepare_s,
        replay_s,
        dump_s,
    })
}

type Checked = (String, Option<String>, BTreeMap<String, i64>, f64, f64);

async fn wait_and_check(
    ctx: &Ctx<'_>,
    plan: &Plan,
    req: &RecoveryRequest,
    started: Instant,
) -> Result<Checked, PitrError> {
    let deadline = started + req.wait;
    loop {
        let r = ctx
            .sql(
                "postgres",
                "SELECT pg_is_in_recovery(), pg_get_wal_replay_pause_state()",
            )
            .await?;
        let out = r.stdout.trim().to_string();
        if r.success() && out == "t|paused" {
            break;
        }
        if !r.success() {
            // A server that ended (e.g. "recovery ended before configured
            // recovery target was reached") is not waited for.
            let st = ctx
                .run(
                    &format!("\"$PGB/pg_ctl\" -D {} status", shell_quote(&ctx.data())),
                    ctx.h.options(),
                )
                .await?;
            if st.exit == Some(3) {
                let tail = ctx.log_tail().await;
                return Err(ctx.err(format!(
                    "the recovery cluster stopped before reaching the target; its log ends:\n{}\nthe directory is kept",
                    tail.trim()
                )));
            }
        }
        if r.success() && out.starts_with('f') {
            return Err(ctx.err("the recovery cluster left recovery instead of pausing at the target (it was promoted): its data cannot be trusted; the directory is kept"));
        }
        if Instant::now() > deadline {
            let tail = ctx.log_tail().await;
            return Err(ctx.err(format!(
                "the target was not reached within {} s (state '{}'); the log ends:\n{}\nthe cluster is stopped and kept",
                req.wait.as_secs(),
                out.escape_debug(),
                tail.trim()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let replay_s = started.elapsed().as_secs_f64();
    // The server's own word on where it stopped.
    let r = ctx
        .run(
            &format!(
                "grep -a -m 1 -E 'recovery stopping (before|after)' -- {}",
                shell_quote(&ctx.log())
            ),
            ctx.h.options(),
        )
        .await?;
    let stopped = r.stdout.trim().to_string();
    let mut xid_status = None;
    if let Target::Time { at } = &plan.target
        && !stopped.contains("recovery stopping before")
    {
        return Err(ctx.err(format!(
            "the server did not stop before {} (its log says '{}'); the recovered data is not used",
            at.to_rfc3339(),
            stopped.escape_debug()
        )));
    }
    if let Target::Lsn { lsn } = &plan.target {
        let want = format!("recovery stopping before WAL location (LSN) \"{lsn}\"");
        if !stopped.contains(&want) {
            return Err(ctx.err(format!(
                "the server did not stop before {lsn} (its log says '{}'); the recovered data is not used",
                stopped.escape_debug()
            )));
        }
    }
    if let Target::Xid { xid, .. } = &plan.target {
        let want = format!("recovery stopping before commit of transaction {xid},");
        if !stopped.contains(&want) {
            return Err(ctx.err(format!(
                "the server did not stop before transaction {xid} commits (its log says '{}'); the recovered data is not used",
                stopped.escape_debug()
            )));
        }
        // The destructive transaction must not be committed in the recovered cluster.
        let q = format!(
            "SELECT pg_xact_status(((split_part(next_xid, ':', 1)::int8 << 32) + {xid})::text::xid8) FROM pg_control_checkpoint()"
        );
        let r = ctx.sql("postgres", &q).await?;
        let s = if r.success() {
            r.stdout.trim().to_string()
        } else if r.stderr.contains("in the future") {
            "not yet assigned".to_string()
        } else {
            return Err(ctx.err(format!(
                "cannot read the status of transaction {xid}: {}",
                r.stderr.trim()
            )));
        };
        if s == "committed" {
            return Err(ctx.err(format!(
                "transaction {xid} is COMMITTED in the recovered cluster: the damage was replayed; the recovered data is not used"
            )));
        }
        xid_status = Some(s);
    }
    // The destructive transaction is still open in the paused copy and holds
    // its locks (TRUNCATE / DROP take ACCESS EXCLUSIVE): end recovery in this
    // private copy (archiving is off, the archive is only read), which
    // aborts it, before reading the tables.
    let r = ctx.sql("postgres", "SELECT pg_promote(true, 120)").await?;
    if !(r.success() && r.stdout.trim() == "t") {
        return Err(ctx.err(format!(
            "ending recovery in the copy failed ({}): {}",
            r.outcome(),
            r.stderr.trim()
        )));
    }
    // Healthy counts of the watched tables.
    let mut counts = BTreeMap::new();
    for (table, min) in &req.expect {
        let (schema, name) = table.split_once('.').unwrap_or(("public", table.as_str()));
        let q = format!(
            "SELECT count(*) FROM {}.{}",
            crate::db::quote_ident(schema),
            crate::db::quote_ident(name)
        );
        let r = ctx.sql(&req.database, &q).await?;
        let n: i64 = match r.stdout.trim().parse() {
            Ok(n) if r.success() => n,
            _ => {
                return Err(ctx.err(format!(
                    "cannot count {table} in the recovered '{}' ({}): {}{}",
                    req.database,
                    r.outcome(),
                    r.stderr.trim(),
                    r.stdout.trim()
                )));
            }
        };
        if n < *min {
            return Err(ctx.err(format!(
                "{table} holds {n} rows in the recovered cluster, fewer than the healthy {min}: the recovered data is not used"
            )));
        }
        counts.insert(table.clone(), n);
    }
    // The dump the existing restore path loads into `<db>__restore_<stamp>`;
    // uncompressed (-Z0): it stays on this host, and compressing is half the dump's time.
    let dump = format!(
        "umask 077; PGDATABASE={db} \"$PGB/pg_dump\" -Fc -Z0 -h {sock} -p {port} -U {user} -f {file}",
        db = shell_quote(&req.database),
        sock = shell_quote(&ctx.sock()),
        port = ctx.port,
        user = shell_quote(&ctx.user),
        file = shell_quote(&format!("{}/recovered.dump", ctx.dir)),
    );
    let t_dump = Instant::now();
    let r = ctx
        .run(
            &dump,
            ExecOptions::default()
                .timeout(COPY_TIMEOUT)
                .stderr_cap(64 << 10),
        )
        .await?;
    if !r.success() {
        return Err(ctx.err(format!(
            "pg_dump of the recovered '{}' failed ({}): {}",
            req.database,
            r.outcome(),
            r.stderr.trim()
        )));
    }
    Ok((
        stopped,
        xid_status,
        counts,
        replay_s,
        t_dump.elapsed().as_secs_f64(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_reads_the_archive_quoted_and_never_listens_on_tcp() {
        let t = Target::Xid {
            xid: 728,
            commit_lsn: None,
        };
        let c = recovery_conf("/r/x/sock", 5432, "/arch it's/100%", &t);
        assert!(c.contains("listen_addresses = ''"), "{c}");
        assert!(c.contains("archive_mode = off"), "{c}");
        // shell-quoted path, % doubled for restore_command, ' doubled for the conf file.
        assert!(
            c.contains("restore_command = 'cp -- ''/arch it''\\\\''''s/100%%''/%f \"%p\"'"),
            "{c}"
        );
        assert!(c.contains("recovery_target_xid = '728'"), "{c}");
        assert!(c.contains("recovery_target_inclusive = off"), "{c}");
        assert!(c.contains("recovery_target_action = 'pause'"), "{c}");
    }

    #[test]
    fn names_are_checked() {
        assert!(stamp_ok("app-20261206T0321Z"));
        for bad in ["", "../x", "a b", "a/b", "x;rm"] {
            assert!(!stamp_ok(bad), "{bad}");
        }
    }
}
