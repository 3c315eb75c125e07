//! Crontabs: /etc/crontab and /etc/cron.d/* (with a user field) and user
//! crontabs from `crontab -l -u USER` (without). Pure parsing.

/// One scheduled command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronEntry {
    /// `*/5 * * * *` or `@reboot`.
    pub schedule: String,
    pub user: Option<String>,
    /// The command as cron runs it (up to the first unescaped `%`).
    pub command: String,
    /// The line exactly as written.
    pub line_text: String,
    /// Where it lives: a file path or `crontab -l -u USER`.
    pub file: String,
    pub line: usize,
    /// Variables set above it (`PATH=`, `PGHOST=`).
    pub env: Vec<(String, String)>,
}

const SPECIAL: &[&str] = &[
    "@reboot",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

/// Parses a crontab. `system` files (/etc/crontab, /etc/cron.d) have a user field.
pub fn parse_crontab(text: &str, file: &str, system: bool, user: Option<&str>) -> Vec<CronEntry> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = env_assignment(l) {
            env.retain(|(a, _)| *a != k);
            env.push((k, v));
            continue;
        }
        let mut fields: Vec<&str> = Vec::new();
        let mut rest = l;
        let n_sched = if l.starts_with('@') { 1 } else { 5 };
        let n = n_sched + usize::from(system);
        for _ in 0..n {
            let r = rest.trim_start();
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            if end == 0 {
                break;
            }
            fields.push(&r[..end]);
            rest = &r[end..];
        }
        if fields.len() < n || (n_sched == 1 && !SPECIAL.contains(&fields[0])) {
            continue;
        }
        let command = cron_command(rest.trim());
        if command.is_empty() {
            continue;
        }
        out.push(CronEntry {
            schedule: fields[..n_sched].join(" "),
            user: if system {
                Some(fields[n_sched].to_string())
            } else {
                user.map(str::to_string)
            },
            command,
            line_text: l.to_string(),
            file: file.to_string(),
            line: i + 1,
            env: env.clone(),
        });
    }
    out
}

fn env_assignment(l: &str) -> Option<(String, String)> {
    let (k, v) = l.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(v);
    Some((k.to_string(), v.to_string()))
}

/// Cron turns the first unescaped `%` into the end of the command (the rest is stdin).
fn cron_command(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'%') => {
                out.push('%');
                chars.next();
            }
            '%' => break,
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn system_crontab_with_user_and_env() {
        let t = "SHELL=/bin/sh\nPGHOST=db.ext\n# m h dom mon dow user command\n*/5 * * * * root /usr/local/bin/db_realtime_sync.sh >> /var/log/sync.log 2>&1\n@reboot   postgres  /opt/start.sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n";
        let e = parse_crontab(t, "/etc/cron.d/db_realtime_sync", true, None);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].schedule, "*/5 * * * *");
        assert_eq!(e[0].user.as_deref(), Some("root"));
        assert_eq!(
            e[0].command,
            "/usr/local/bin/db_realtime_sync.sh >> /var/log/sync.log 2>&1"
        );
        assert_eq!(e[0].line, 4);
        assert!(e[0].env.contains(&("PGHOST".into(), "db.ext".into())));
        assert_eq!(e[1].schedule, "@reboot");
        assert_eq!(e[1].user.as_deref(), Some("postgres"));
    }

    #[rstest]
    #[case(
        "0 3 * * * pg_dump app > /b/app_$(date +\\%F).sql",
        "pg_dump app > /b/app_$(date +%F).sql"
    )]
    #[case("0 3 * * * mail -s hi ops%body text", "mail -s hi ops")]
    #[case("@daily /opt/x.sh", "/opt/x.sh")]
    fn user_crontab_commands(#[case] line: &str, #[case] want: &str) {
        let e = parse_crontab(line, "crontab -l -u app", false, Some("app"));
        assert_eq!(e.len(), 1, "{line}");
        assert_eq!(e[0].command, want);
        assert_eq!(e[0].user.as_deref(), Some("app"));
    }

    #[rstest]
    #[case("* * * *")]
    #[case("@sometimes /x")]
    #[case("   ")]
    #[case("# 0 3 * * * root dropdb app")]
    fn skips_non_entries(#[case] line: &str) {
        assert!(parse_crontab(line, "f", true, None).is_empty());
    }
}
