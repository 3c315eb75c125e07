//! Head anchors: a journal's head (seq, hash) appended (`>>` only) to logs
//! its writer does not control, and the comparison that finds a journal cut
//! short or rewritten. Never changes a journal or truncates a head log.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::Record;

/// Where a host keeps head logs: `$HOME/.lifeline/heads/<incident>.log`.
pub const REMOTE_DIR: &str = ".lifeline/heads";
/// A local directory for head logs too (`<dir>/<incident>.log`), when set.
pub const LOCAL_ENV: &str = "LIFELINE_HEAD_LOG";
/// `off` turns the remote head logs off (the test suite does, so that only
/// the tests of anchors write into the test user's home, and clean up).
pub const REMOTE_SWITCH_ENV: &str = "LIFELINE_HEAD_ANCHORS";

/// Whether heads are anchored on the inventory's SSH hosts.
pub fn remote_enabled() -> bool {
    std::env::var(REMOTE_SWITCH_ENV).map_or(true, |v| v != "off")
}

const TAG: &str = "lifeline-head v1";

/// One head-log line.
pub fn line(incident: &str, seq: u64, hash: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{TAG} {incident} {seq} {hash} {}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// The shell command that appends `line` on a host: umask 077, `>>` only.
pub fn remote_command(incident: &str, line: &str) -> String {
    let q = crate::transport::shell_quote;
    format!(
        "umask 077 && mkdir -p \"$HOME\"/{REMOTE_DIR} && printf '%s\\n' {} >> \"$HOME\"/{REMOTE_DIR}/{}",
        q(line),
        q(&format!("{incident}.log"))
    )
}

/// The local head log of `incident`, when `$LIFELINE_HEAD_LOG` names a directory.
pub fn local_path(incident: &str) -> Option<PathBuf> {
    std::env::var_os(LOCAL_ENV)
        .filter(|v| !v.is_empty())
        .map(|d| PathBuf::from(d).join(format!("{incident}.log")))
}

/// Appends `line` to a local head log (directory 0700, file 0600).
pub fn append_local(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        crate::state::private_dir(d)?;
    }
    let mut f = crate::state::open_private_append(path)?;
    writeln!(f, "{line}")?;
    f.sync_data()
}

/// The anchored heads of `incident` in a head log's text: (seq, hash).
pub fn parse(text: &str, incident: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(TAG)?.trim_start();
            let mut w = rest.split_whitespace();
            (w.next()? == incident).then_some(())?;
            let seq = w.next()?.parse().ok()?;
            let hash = w.next()?.to_string();
            Some((seq, hash))
        })
        .collect()
}

/// Compares a journal's verified records with anchored heads: Ok(highest
/// anchored seq matched), or what is wrong (tail cut, record rewritten).
pub fn compare(records: &[Record], anchors: &[(u64, String)]) -> Result<u64, String> {
    let last = records.last().map_or(0, |r| r.seq);
    let mut best = 0;
    for (seq, hash) in anchors {
        match records.iter().find(|r| r.seq == *seq) {
            Some(r) if &r.hash == hash => best = best.max(*seq),
            Some(_) => {
                return Err(format!(
                    "REWRITTEN: record seq {seq} does not match its head anchor (hash {}…)",
                    hash.chars().take(12).collect::<String>()
                ));
            }
            None => {
                return Err(format!(
                    "TRUNCATED: a head anchor names seq {seq}, the journal ends at seq {last}: {} record(s) cut off",
                    seq.saturating_sub(last)
                ));
            }
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_parses_back_and_the_command_only_appends() {
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        let l = line("inc-1", 7, "abc", t);
        assert_eq!(
            parse(&format!("junk\n{l}\n"), "inc-1"),
            vec![(7, "abc".into())]
        );
        assert!(parse(&l, "inc-2").is_empty());
        let c = remote_command("inc-1", &l);
        assert!(c.starts_with("umask 077 && "), "{c}");
        assert!(c.contains(">> \"$HOME\"/.lifeline/heads/inc-1.log"), "{c}");
        assert!(!c.contains(" > "), "{c}");
    }
}
