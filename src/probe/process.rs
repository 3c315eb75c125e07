//! Processes from `ps -eo pid=,ppid=,user:32=,lstart=,args=`: which ones run
//! PostgreSQL client tools or scripts, and who started them. Pure parsing.

use super::shell::basename;

/// One process line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub user: String,
    /// `Mon Dec  9 10:01:12 2024` as ps printed it (the host's local time).
    pub started: String,
    pub args: String,
}

/// Parses ps output; lines that do not fit are skipped.
pub fn parse_ps(text: &str) -> Vec<Proc> {
    text.lines()
        .filter_map(|l| {
            let mut rest = l.trim_start();
            let mut next = || -> Option<&str> {
                let r = rest.trim_start();
                let end = r.find(char::is_whitespace).unwrap_or(r.len());
                if end == 0 {
                    return None;
                }
                rest = &r[end..];
                Some(&r[..end])
            };
            let pid = next()?.parse().ok()?;
            let ppid = next()?.parse().ok()?;
            let user = next()?.to_string();
            let started = (0..5)
                .map(|_| next())
                .collect::<Option<Vec<_>>>()?
                .join(" ");
            let args = rest.trim().to_string();
            (!args.is_empty()).then_some(Proc {
                pid,
                ppid,
                user,
                started,
                args,
            })
        })
        .collect()
}

/// `lstart` to RFC 3339, given the host's UTC offset (`date +%z`, e.g. `+0200`).
pub fn started_rfc3339(lstart: &str, offset: &str) -> Option<String> {
    let norm = lstart.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = chrono::NaiveDateTime::parse_from_str(&norm, "%a %b %d %H:%M:%S %Y").ok()?;
    let off = chrono::DateTime::parse_from_str(
        &format!("2000-01-01 00:00:00 {offset}"),
        "%Y-%m-%d %H:%M:%S %z",
    )
    .ok()?
    .offset()
    .to_owned();
    let local = t.and_local_timezone(off).single()?;
    Some(
        local
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

const TOOLS: &[&str] = &["pg_dump", "pg_dumpall", "pg_restore", "psql", "dropdb"];

/// True when the command line runs a PostgreSQL client tool or a script
/// (a file with a script extension, or a path handed to an interpreter).
/// A compiled program in /opt or /usr/local is not a script.
pub fn interesting(args: &str) -> bool {
    if args.starts_with('[') {
        return false; // kernel thread
    }
    let clean = |w: &str| {
        w.trim_matches(['\'', '"', ';', '(', ')', '&', '|'])
            .to_string()
    };
    let words: Vec<String> = args.split_whitespace().map(clean).collect();
    if words.iter().any(|w| TOOLS.contains(&basename(w))) {
        return true;
    }
    let Some(first) = words.first() else {
        return false;
    };
    if has_script_ext(first) {
        return true;
    }
    let interpreter = matches!(
        basename(first),
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "python" | "python3" | "perl" | "ruby" | "node"
    );
    interpreter
        && words[1..].iter().any(|w| {
            !w.starts_with('-')
                && (has_script_ext(w) || (w.contains('/') && super::scan::looks_like_script(w)))
        })
}

fn has_script_ext(w: &str) -> bool {
    [".sh", ".bash", ".py", ".pl", ".rb", ".js"]
        .iter()
        .any(|e| w.ends_with(e))
}

/// The chain of ancestors of `pid` (parent first), stopping at pid 1 or a loop.
pub fn ancestors(procs: &[Proc], pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut cur = pid;
    while let Some(p) = procs.iter().find(|p| p.pid == cur) {
        if p.ppid <= 1 || out.contains(&p.ppid) || out.len() > 64 {
            break;
        }
        out.push(p.ppid);
        cur = p.ppid;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const PS: &str = "    1     0 root                             Mon Dec  9 08:15:00 2024 /sbin/init
  611     1 root                             Mon Dec  9 08:15:01 2024 /usr/sbin/cron -f
    2     0 root                             Mon Dec  9 08:15:00 2024 [kthreadd]
 4242     1 root                             Tue Dec 10 12:40:07 2024 /bin/bash /usr/local/bin/db_realtime_sync.sh
 4300  4242 root                             Tue Dec 10 12:41:07 2024 pg_dump --clean -h localhost app
 5001   611 root                             Tue Dec 10 12:40:01 2024 /bin/sh -c /usr/local/bin/db_realtime_sync.sh >> /var/log/sync.log 2>&1
 5002  5001 root                             Tue Dec 10 12:40:01 2024 sleep 30
";

    #[test]
    fn parses_lines() {
        let p = parse_ps(PS);
        assert_eq!(p.len(), 7);
        assert_eq!(p[3].pid, 4242);
        assert_eq!(p[3].started, "Tue Dec 10 12:40:07 2024");
        assert_eq!(p[3].args, "/bin/bash /usr/local/bin/db_realtime_sync.sh");
        assert_eq!(ancestors(&p, 5002), vec![5001, 611]);
    }

    #[rstest]
    #[case("/bin/bash /usr/local/bin/db_realtime_sync.sh", true)]
    #[case("pg_dump --clean -h localhost app", true)]
    #[case("/bin/sh -c while :; do sh /tmp/x/sync.sh; sleep 1; done", true)]
    #[case("/usr/lib/postgresql/15/bin/psql -h db app", true)]
    #[case("/usr/sbin/cron -f", false)]
    #[case("sleep 30", false)]
    #[case("[kworker/0:1]", false)]
    #[case("postgres: 15/main: app app 127.0.0.1(5432) idle", false)]
    #[case("python3 -m http.server", false)]
    #[case("/opt/app/bin/server --port 80", false)]
    #[case("bash /dev/fd/3", false)]
    #[case("/usr/local/bin/db_realtime_sync.sh", true)]
    fn selects_clients_and_scripts(#[case] args: &str, #[case] want: bool) {
        assert_eq!(interesting(args), want, "{args}");
    }

    #[rstest]
    #[case("Tue Dec 10 12:40:07 2024", "+0000", "2024-12-10T12:40:07Z")]
    #[case("Mon Dec  9 08:15:00 2024", "+0200", "2024-12-09T06:15:00Z")]
    fn start_times(#[case] l: &str, #[case] off: &str, #[case] want: &str) {
        assert_eq!(started_rfc3339(l, off).as_deref(), Some(want));
    }
}
