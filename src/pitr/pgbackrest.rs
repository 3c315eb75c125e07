//! Recovery from a pgBackRest repository: the window's WAL fetched (`repo-get`, SHA-1
//! checked) for pg_waldump, `pgbackrest restore` of the set into a NEW private directory.
//! Never restores into or inside a live data directory; never writes into the repository.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::archive::{self, ArchiveStatus, Plan, TargetSearch};
use super::recover::{
    Ctx, LIFELINE_CONF, Recovered, RecoveryRequest, bin_prelude, conf_with_restore, recovery_root,
    stamp_ok, start_and_check,
};
use super::waldump::{Damaged, Target};
use super::{PitrError, as_owner, wal};
use crate::inventory::{ArchiveKind, ArchiveSpec};
use crate::transport::{ExecOptions, ExecResult, Host, shell_quote};

/// Limit of fetching the window's WAL and of `pgbackrest restore`.
const LONG: Duration = Duration::from_secs(6 * 3600);
/// Prefix of the private scratch directory the WAL is fetched into.
const SCRATCH: &str = ".lifeline-wal-";

/// The repository as the inventory names it.
struct Repo<'a> {
    name: &'a str,
    config: &'a str,
    stanza: &'a str,
    user: String,
    root: String,
}

impl<'a> Repo<'a> {
    fn of(spec: &'a ArchiveSpec) -> Result<Repo<'a>, PitrError> {
        let (Some(config), Some(stanza)) = (spec.config.as_deref(), spec.stanza.as_deref()) else {
            return Err(PitrError::Archive(
                spec.name().into(),
                "a pgbackrest archive needs 'config' and 'stanza'".into(),
            ));
        };
        let root = recovery_root(spec)?;
        Ok(Repo {
            name: spec.name(),
            config,
            stanza,
            user: spec.os_user.clone().unwrap_or_else(|| "postgres".into()),
            root,
        })
    }
    /// `pgbackrest --config=C --stanza=S` (quoted).
    fn cmd(&self) -> String {
        format!(
            "pgbackrest --config={} --stanza={}",
            shell_quote(self.config),
            shell_quote(self.stanza)
        )
    }
    async fn run(
        &self,
        h: &Host,
        script: &str,
        opts: ExecOptions,
    ) -> Result<ExecResult, PitrError> {
        h.exec(&as_owner(&self.user, script), opts)
            .await
            .map_err(|source| PitrError::Transport {
                host: h.name().into(),
                source: Box::new(source),
            })
    }
    fn failed(&self, h: &Host, what: &str, r: &ExecResult) -> PitrError {
        PitrError::Command {
            archive: self.name.into(),
            host: h.name().into(),
            what: what.into(),
            status: r.outcome(),
            stderr: format!("{}{}", r.stderr.trim(), r.stdout.trim()),
        }
    }
}

/// One archived segment file in the repository: `<archive id>/<16 hex>/<segment>-<sha1>[.<ext>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSegment {
    pub segment: String,
    pub sha1: String,
    /// `gz`, `lz4`, `zst`, `bz2` or `none`.
    pub compression: String,
    /// Path below `archive/<stanza>/`.
    pub path: String,
}

/// Parses one `repo-ls --recurse archive/<stanza>` line (hostile text:
/// anything but the exact shape pgBackRest writes is skipped).
pub fn parse_repo_segment(line: &str) -> Option<RepoSegment> {
    let mut parts = line.split('/');
    let (id, dir, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (ver, n) = id.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    let upper_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    };
    if !digits(ver) || !digits(n) || dir.len() != 16 || !upper_hex(dir) {
        return None;
    }
    let (stem, compression) = match file.split_once('.') {
        Some((stem, ext)) if ["gz", "lz4", "zst", "bz2"].contains(&ext) => (stem, ext),
        Some(_) => return None,
        None => (file, "none"),
    };
    let (segment, sha1) = stem.split_once('-')?;
    if segment.len() != 24
        || !upper_hex(segment)
        || !segment.starts_with(dir)
        || sha1.len() != 40
        || !sha1
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    Some(RepoSegment {
        segment: segment.into(),
        sha1: sha1.into(),
        compression: compression.into(),
        path: line.into(),
    })
}

/// The segment files of the repository, one per segment name (a name
/// stored twice with different content is refused).
async fn repo_segments(
    h: &Host,
    repo: &Repo<'_>,
) -> Result<BTreeMap<String, RepoSegment>, PitrError> {
    let r = repo
        .run(
            h,
            &format!(
                "{} --log-level-console=error repo-ls --recurse {}",
                repo.cmd(),
                shell_quote(&format!("archive/{}", repo.stanza))
            ),
            h.options()
                .timeout(Duration::from_secs(300))
                .output_cap(64 << 20),
        )
        .await?;
    if !r.success() || r.stdout_truncated {
        return Err(repo.failed(h, "pgbackrest repo-ls", &r));
    }
    let mut out: BTreeMap<String, RepoSegment> = BTreeMap::new();
    for s in r.stdout.lines().filter_map(parse_repo_segment) {
        if let Some(prev) = out.get(&s.segment)
            && prev.sha1 != s.sha1
        {
            return Err(PitrError::Archive(
                repo.name.into(),
                format!(
                    "segment {} is stored twice with different content ('{}' and '{}'): the repository holds WAL of more than one history; recover by hand",
                    s.segment, prev.path, s.path
                ),
            ));
        }
        out.insert(s.segment.clone(), s);
    }
    Ok(out)
}

/// Finds the destructive transaction: the contiguous run of segments from
/// the scan's base backup is fetched from the repository into a private
/// scratch directory (each checked against the SHA-1 in its name), read with
/// pg_waldump like a wal-dir archive, and the scratch directory removed.
/// A gap at the start is reported before anything is fetched.
pub async fn find_target(
    h: &Host,
    spec: &ArchiveSpec,
    status: &ArchiveStatus,
    damaged: &Damaged,
) -> Result<TargetSearch, PitrError> {
    let repo = Repo::of(spec)?;
    let seg = status.segment_size;
    let start = archive::scan_start(status, damaged)?;
    let present = wal::segments_of(&status.segments, start.timeline, seg);
    let first = start.start_lsn.segno(seg);
    let mut end = first;
    while present.contains(&end) {
        end += 1;
    }
    // The scan of a directory holding exactly the window's segments.
    let mut local = status.clone();
    local.kind = ArchiveKind::WalDir;
    if end == first {
        // The wal-dir scan reports the gap at the start before it reads anything.
        return archive::find_target(h, &local, damaged).await;
    }
    // The scratch directory goes under the recovery root: never inside a live cluster.
    check_not_live(h, &repo, &repo.root).await?;
    let files = repo_segments(h, &repo).await?;
    let mut list = String::new();
    for n in first..end {
        let name = wal::SegName {
            timeline: start.timeline,
            segno: n,
        }
        .file_name(seg);
        let Some(f) = files.get(&name) else {
            return Err(PitrError::Archive(
                repo.name.into(),
                format!("segment {name} was listed but is gone from the repository: list it again"),
            ));
        };
        list.push_str(&format!(
            "{} {} {} {}\n",
            f.segment, f.sha1, f.compression, f.path
        ));
    }
    let dir = fetch(h, &repo, &list).await?;
    local.wal_dir = dir.clone();
    let found = archive::find_target(h, &local, damaged).await;
    let cleanup = repo
        .run(
            h,
            &format!("rm -rf -- {}", shell_quote(&dir)),
            h.options().timeout(Duration::from_secs(300)),
        )
        .await;
    let found = found?;
    match cleanup {
        Ok(r) if r.success() => Ok(found),
        Ok(r) => Err(repo.failed(h, &format!("removing the scratch directory '{dir}'"), &r)),
        Err(e) => Err(e),
    }
}

/// Fetches the listed segments (`segment sha1 compression path` per line)
/// into a new 0700 scratch directory under the recovery root; returns its path.
async fn fetch(h: &Host, repo: &Repo<'_>, list: &str) -> Result<String, PitrError> {
    let script = format!(
        r#"set -eu
umask 077
mkdir -p -- {root}
T=$(mktemp -d -- {root}/{SCRATCH}XXXXXXXX)
trap 'rm -rf -- "$T"' EXIT
while read -r seg sha ext rel; do
  case "$ext" in gz) dc='gzip -dc';; lz4) dc='lz4 -dc';; zst) dc='zstd -dc';; bz2) dc='bzip2 -dc';; none) dc=cat;; *) exit 5;; esac
  {cmd} --log-level-console=error repo-get {prefix}"$rel" < /dev/null | $dc > "$T/$seg.part" || true
  got=$(sha1sum < "$T/$seg.part" | cut -c1-40)
  if [ "$got" != "$sha" ]; then printf 'segment %s from the repository does not match the SHA-1 in its name (%s, got %s)\n' "$seg" "$sha" "$got" >&2; exit 6; fi
  mv -- "$T/$seg.part" "$T/$seg"
done
trap - EXIT
printf '%s\n' "$T"
"#,
        root = shell_quote(&repo.root),
        cmd = repo.cmd(),
        prefix = shell_quote(&format!("archive/{}/", repo.stanza)),
    );
    let r = repo
        .run(
            h,
            &script,
            ExecOptions::default()
                .timeout(LONG)
                .stdin(list.as_bytes().to_vec())
                .stderr_cap(64 << 10),
        )
        .await?;
    let dir = r.stdout.trim().to_string();
    let ok = dir.starts_with(&format!("{}/{SCRATCH}", repo.root))
        && !dir.contains('\n')
        && !dir[repo.root.len() + 1..].contains('/');
    if !r.success() || !ok {
        return Err(repo.failed(h, "fetching the window's WAL (pgbackrest repo-get)", &r));
    }
    Ok(dir)
}

/// The live data directories the stanza's configuration names (`pgN-path`,
/// also the older `dbN-path`), from the config file and its include path.
pub fn config_data_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            let k = k.trim();
            let Some(rest) = k.strip_prefix("pg").or_else(|| k.strip_prefix("db")) else {
                return false;
            };
            rest.strip_suffix("-path")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Refuses a recovery path (the data directory, or the root the WAL scratch
/// goes under) that is, or lies inside, a live cluster's data directory: one
/// the stanza's config names, or any directory on the way holding PG_VERSION
/// and global/pg_control. Symlinks are resolved on the host.
async fn check_not_live(h: &Host, repo: &Repo<'_>, data: &str) -> Result<(), PitrError> {
    let conf = repo
        .run(
            h,
            &format!(
                "C={c}\ncat -- \"$C\"\nI=$(sed -n 's/^[[:space:]]*config-include-path[[:space:]]*=[[:space:]]*//p' -- \"$C\" | tail -n 1)\nif [ -n \"$I\" ] && [ -d \"$I\" ]; then for f in \"$I\"/*.conf; do [ -f \"$f\" ] && cat -- \"$f\"; done; fi; exit 0",
                c = shell_quote(repo.config)
            ),
            h.options().timeout(Duration::from_secs(60)).output_cap(1 << 20),
        )
        .await?;
    if !conf.success() {
        return Err(repo.failed(h, "reading the pgbackrest config", &conf));
    }
    let live = config_data_paths(&conf.stdout);
    let mut script = format!(
        "R=$(realpath -m -- {d}) || exit 3\nprintf 'R %s\\n' \"$R\"\n",
        d = shell_quote(data)
    );
    for l in &live {
        script.push_str(&format!(
            "printf 'L %s\\n' \"$(realpath -m -- {})\"\n",
            shell_quote(l)
        ));
    }
    script.push_str(
        "a=$R\nwhile [ -n \"$a\" ] && [ \"$a\" != / ]; do\n  if [ -f \"$a/PG_VERSION\" ] && [ -e \"$a/global/pg_control\" ]; then printf 'C %s\\n' \"$a\"; fi\n  a=$(dirname -- \"$a\")\ndone\n",
    );
    let r = repo
        .run(h, &script, h.options().timeout(Duration::from_secs(60)))
        .await?;
    if !r.success() {
        return Err(repo.failed(h, "resolving the recovery directory", &r));
    }
    let mut resolved = None;
    let mut refusal = None;
    for line in r.stdout.lines() {
        if let Some(p) = line.strip_prefix("R ") {
            resolved = Some(p.to_string());
        } else if let (Some(l), Some(res)) = (line.strip_prefix("L "), resolved.as_deref()) {
            let l = l.trim_end_matches('/');
            if !l.is_empty() && (res == l || res.starts_with(&format!("{l}/"))) {
                refusal.get_or_insert(format!(
                    "the recovery path '{}' (resolved '{}') is or lies inside the live data directory '{}' that the pgbackrest config names",
                    data.escape_debug(),
                    res.escape_debug(),
                    l.escape_debug()
                ));
            }
        } else if let Some(c) = line.strip_prefix("C ") {
            refusal.get_or_insert(format!(
                "the recovery path '{}' lies inside the PostgreSQL data directory '{}'",
                data.escape_debug(),
                c.escape_debug()
            ));
        }
    }
    if resolved.is_none() {
        return Err(PitrError::Unsafe {
            archive: repo.name.into(),
            why: format!(
                "cannot resolve the recovery directory '{}'",
                data.escape_debug()
            ),
        });
    }
    match refusal {
        Some(why) => Err(PitrError::Unsafe {
            archive: repo.name.into(),
            why: format!(
                "{why}; choose another recovery_dir for archive '{}'",
                repo.name
            ),
        }),
        None => Ok(()),
    }
}

/// `--type=... --target=... --target-exclusive` (quoted).
pub fn target_args(target: &Target) -> String {
    let (kind, value) = match target {
        Target::Xid { xid, .. } => ("xid", xid.to_string()),
        Target::Lsn { lsn } => ("lsn", lsn.to_string()),
        Target::Time { at } => ("time", at.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()),
    };
    format!(
        "--type={kind} --target={} --target-exclusive",
        shell_quote(&value)
    )
}

/// Refuses a plan whose backup set is not one the repository's listing
/// accepts for its target (a set that ended after the target already holds the damage).
fn check_set(status: &ArchiveStatus, plan: &Plan) -> Result<(), PitrError> {
    if !status.backups.iter().any(|b| b.dir == plan.backup.dir) {
        return Err(PitrError::Archive(
            status.name.clone(),
            format!(
                "backup set '{}' is not in the repository",
                plan.backup.dir.escape_debug()
            ),
        ));
    }
    let fresh = archive::plan(status, &plan.target)?;
    if let Some((_, why)) = fresh.refused.iter().find(|(d, _)| *d == plan.backup.dir) {
        return Err(PitrError::NoBaseBackup {
            archive: status.name.clone(),
            target: plan.target.describe(),
            reasons: format!("set '{}': {why}", plan.backup.dir.escape_debug()),
        });
    }
    Ok(())
}

/// Restores the plan's backup set with `pgbackrest restore` into a new
/// private directory under the archive's recovery_dir and recovers it to
/// the target, reading WAL with `pgbackrest archive-get`.
pub async fn recover(
    h: &Host,
    spec: &ArchiveSpec,
    status: &ArchiveStatus,
    plan: &Plan,
    req: &RecoveryRequest,
) -> Result<Recovered, PitrError> {
    let repo = Repo::of(spec)?;
    if !stamp_ok(&req.name) {
        return Err(PitrError::Archive(
            spec.name().into(),
            format!(
                "recovery name '{}' may hold only letters, digits, '-' and '_'",
                req.name.escape_debug()
            ),
        ));
    }
    check_set(status, plan)?;
    let ctx = Ctx {
        h,
        user: repo.user.clone(),
        dir: format!("{}/{}", repo.root, req.name),
        port: 5432,
        bin: bin_prelude(plan.backup.pg_version.as_deref()),
    };
    check_not_live(h, &repo, &ctx.data()).await?;
    // restore_command: pgBackRest's archive-get, every value quoted; a literal % is %%.
    let restore = format!(
        "{} --pg1-path={} archive-get %f \"%p\"",
        repo.cmd().replace('%', "%%"),
        shell_quote(&ctx.data()).replace('%', "%%")
    );
    let conf = conf_with_restore(&ctx.sock(), ctx.port, &restore, &plan.target);
    let prepare = format!(
        r#"set -e
umask 077
mkdir -p -- {root}
D={dir}
mkdir -- "$D"
mkdir -- "$D/sock"
chmod 0700 "$D" "$D/sock"
{cmd} --log-level-console=warn --pg1-path="$D/data" --set={set} {target} --target-action=pause --archive-mode=off --tablespace-map-all="$D/tablespaces" restore < /dev/null
{LIFELINE_CONF}"#,
        root = shell_quote(&repo.root),
        dir = shell_quote(&ctx.dir),
        cmd = repo.cmd(),
        set = shell_quote(&plan.backup.dir),
        target = target_args(&plan.target),
    );
    let t0 = Instant::now();
    let r = ctx
        .run(
            &prepare,
            ExecOptions::default()
                .timeout(LONG)
                .stdin(conf.into_bytes())
                .stderr_cap(64 << 10),
        )
        .await?;
    if !r.success() {
        return Err(ctx.err(format!(
            "pgbackrest restore of set '{}' failed ({}): {}; nothing was started",
            plan.backup.dir.escape_debug(),
            r.outcome(),
            r.stderr.trim()
        )));
    }
    start_and_check(
        &ctx,
        plan,
        req,
        format!("pgbackrest set '{}'", plan.backup.dir),
        t0.elapsed().as_secs_f64(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_lines_are_parsed_as_data() {
        let s = parse_repo_segment(
            "15-1/0000000100000000/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211.gz",
        )
        .unwrap();
        assert_eq!(s.segment, "000000010000000000000003");
        assert_eq!(s.sha1, "9fde87b88fd9703aac8ee26c60497ce2b85c5211");
        assert_eq!(s.compression, "gz");
        let plain = parse_repo_segment(
            "15-1/0000000100000000/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211",
        )
        .unwrap();
        assert_eq!(plain.compression, "none");
        for bad in [
            "15-1/0000000100000000/000000010000000000000002.00000028.backup",
            "15-1/0000000100000000/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211.gz; rm -rf /",
            "15-1/0000000100000000/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211.sh",
            "../../0000000100000000/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211",
            "15-1/0000000200000000/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211",
            "15-1/0000000100000000/000000010000000000000003-9FDE87B88FD9703AAC8EE26C60497CE2B85C5211",
            "15-1/0000000100000000/x/000000010000000000000003-9fde87b88fd9703aac8ee26c60497ce2b85c5211",
            "15-1",
            "",
        ] {
            assert_eq!(parse_repo_segment(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_names_the_live_data_directories() {
        let c = "[global]\nrepo1-path=/r\n\n[main]\npg1-path=/var/lib/pg/15/main\n pg2-path = /srv/standby \ndb-path=/old\npg1-port=5432\npg1-path-x=/no\n";
        assert_eq!(
            config_data_paths(c),
            vec!["/var/lib/pg/15/main", "/srv/standby", "/old"]
        );
    }

    #[test]
    fn targets_are_exclusive_and_quoted() {
        assert_eq!(
            target_args(&Target::Xid {
                xid: 812,
                commit_lsn: None
            }),
            "--type=xid --target=812 --target-exclusive"
        );
        let t = target_args(&Target::Time {
            at: wal::parse_pg_time("2026-12-06 03:21:46.5 UTC").unwrap_or_default(),
        });
        assert_eq!(
            t,
            "--type=time --target='2026-12-06 03:21:46.500000+00' --target-exclusive"
        );
    }
}
