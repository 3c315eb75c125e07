//! systemd, as `systemctl` prints it: `list-units --output=json` (or the
//! plain table of older versions), `list-timers --output=json`, and
//! `systemctl show -p ...` blocks. Pure parsing; the runner asks.

use serde::Deserialize;

/// Properties lifeline asks `systemctl show` for.
pub const SHOW_PROPERTIES: &[&str] = &[
    "Id",
    "Description",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "FragmentPath",
    "Type",
    "Restart",
    "RestartUSec",
    "NRestarts",
    "MainPID",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecMainStartTimestamp",
    "ActiveEnterTimestamp",
    "Environment",
    "User",
    "WorkingDirectory",
    "Unit",
    "TimersCalendar",
    "TimersMonotonic",
    "NextElapseUSecRealtime",
    "LastTriggerUSec",
    "Triggers",
    "TriggeredBy",
];

/// One row of `systemctl list-units`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedUnit {
    pub unit: String,
    pub load: String,
    pub active: String,
    pub sub: String,
    #[serde(default)]
    pub description: String,
}

/// `systemctl list-units --output=json` (systemd 246+).
pub fn parse_list_units_json(s: &str) -> Result<Vec<ListedUnit>, serde_json::Error> {
    serde_json::from_str(s.trim())
}

/// `systemctl list-units --plain --no-legend` (any version): UNIT LOAD ACTIVE SUB DESCRIPTION.
pub fn parse_list_units_plain(s: &str) -> Vec<ListedUnit> {
    s.lines()
        .filter_map(|l| {
            // Failed units carry a leading marker in some versions.
            let l = l.trim_start_matches(['●', '*', ' ']);
            let mut it = l.split_whitespace();
            let unit = it.next()?.to_string();
            let load = it.next()?.to_string();
            let active = it.next()?.to_string();
            let sub = it.next()?.to_string();
            let description = it.collect::<Vec<_>>().join(" ");
            unit.contains('.').then_some(ListedUnit {
                unit,
                load,
                active,
                sub,
                description,
            })
        })
        .collect()
}

/// One row of `systemctl list-timers --output=json`; times in µs since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedTimer {
    pub unit: String,
    #[serde(default)]
    pub activates: Option<String>,
    #[serde(default)]
    pub next: Option<i64>,
    #[serde(default)]
    pub last: Option<i64>,
}

pub fn parse_list_timers_json(s: &str) -> Result<Vec<ListedTimer>, serde_json::Error> {
    serde_json::from_str(s.trim())
}

/// The properties of one unit, in the order systemctl printed them. A key
/// may repeat (one `ExecStart=` line per command).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProps(pub Vec<(String, String)>);

impl UnitProps {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(a, v)| a == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn id(&self) -> &str {
        self.get("Id").unwrap_or("")
    }
}

/// `systemctl show A B ...`: blocks of `Key=Value` separated by blank lines.
pub fn parse_show(s: &str) -> Vec<UnitProps> {
    let mut out = Vec::new();
    let mut cur = UnitProps::default();
    for l in s.lines() {
        if l.trim().is_empty() {
            if !cur.0.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            // A new Id= starts a new unit even without a blank line between.
            if k == "Id" && cur.0.iter().any(|(a, _)| a == "Id") {
                out.push(std::mem::take(&mut cur));
            }
            cur.0.push((k.to_string(), v.to_string()));
        }
    }
    if !cur.0.is_empty() {
        out.push(cur);
    }
    out
}

/// A command from `ExecStart={ path=... ; argv[]=... ; ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    pub path: String,
    pub argv: Vec<String>,
    /// pid=, when the command is running or ran.
    pub pid: Option<u32>,
}

/// Parses an exec property value. systemd up to 253 prints argv unquoted
/// (`argv[]=/bin/sh -c echo a b`); newer versions quote each word.
pub fn parse_exec(v: &str) -> Option<ExecCommand> {
    let inner = v
        .trim()
        .strip_prefix('{')?
        .trim_end()
        .strip_suffix('}')?
        .trim();
    let field = |name: &str| -> Option<&str> {
        let start = inner.find(&format!("{name}="))? + name.len() + 1;
        let rest = &inner[start..];
        // Fields are separated by " ; "; argv may itself contain " ; ", so stop
        // at the next known field name.
        let ends = [
            " ; ignore_errors=",
            " ; flags=",
            " ; start_time=",
            " ; stop_time=",
            " ; pid=",
            " ; code=",
            " ; status=",
            " ; argv[]=",
        ];
        let end = ends
            .iter()
            .filter_map(|e| rest.find(e))
            .min()
            .unwrap_or(rest.trim_end_matches(" ;").len());
        Some(rest[..end].trim_end_matches(" ;").trim())
    };
    let path = field("path")?.to_string();
    let argv_text = field("argv[]").unwrap_or(&path);
    let argv = split_argv(argv_text);
    let pid = field("pid").and_then(|p| p.parse().ok()).filter(|p| *p > 0);
    Some(ExecCommand { path, argv, pid })
}

fn split_argv(s: &str) -> Vec<String> {
    if s.starts_with('"') {
        return super::shell::tokenize(s)
            .0
            .into_iter()
            .filter_map(|t| match t {
                super::shell::Tok::Word(w) => Some(w.text),
                _ => None,
            })
            .collect();
    }
    // Unquoted: words split on spaces, except that a shell's `-c` script is one word.
    let words: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        out.push(words[i].to_string());
        let is_shell = out.len() > 1
            && matches!(
                super::shell::basename(&out[0]),
                "sh" | "bash" | "dash" | "zsh" | "ksh"
            );
        if is_shell && words[i].starts_with('-') && words[i].contains('c') && i + 1 < words.len() {
            out.push(words[i + 1..].join(" "));
            break;
        }
        i += 1;
    }
    out
}

/// `Environment=A=1 "B=two words"`.
pub fn parse_environment(v: &str) -> Vec<(String, String)> {
    super::shell::tokenize(v)
        .0
        .into_iter()
        .filter_map(|t| match t {
            super::shell::Tok::Word(w) => w
                .text
                .split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string())),
            _ => None,
        })
        .collect()
}

/// `TimersCalendar={ OnCalendar=*-*-* 00/4:00:00 ; next_elapse=... }` -> the OnCalendar expression;
/// `TimersMonotonic={ OnUnitActiveUSec=2min ; next_elapse=... }` -> `OnUnitActiveUSec=2min`.
pub fn timer_schedule(p: &UnitProps) -> Option<String> {
    let mut out = Vec::new();
    for v in p.all("TimersCalendar") {
        if let Some(x) = v.split("OnCalendar=").nth(1) {
            out.push(
                x.split(" ; ")
                    .next()
                    .unwrap_or(x)
                    .trim_end_matches('}')
                    .trim()
                    .to_string(),
            );
        }
    }
    for v in p.all("TimersMonotonic") {
        let inner = v.trim_start_matches('{').trim_end_matches('}').trim();
        if let Some(first) = inner.split(" ; ").next()
            && !first.is_empty()
        {
            out.push(first.trim().to_string());
        }
    }
    (!out.is_empty()).then(|| out.join(", "))
}

/// True for units an administrator installed (not the distribution's own).
pub fn is_local_unit(p: &UnitProps) -> bool {
    match p.get("FragmentPath") {
        None => true,
        Some(f) => !(f.starts_with("/lib/") || f.starts_with("/usr/lib/")),
    }
}

/// systemd timestamps (`Mon 2024-12-09 10:01:12 UTC`) to RFC 3339 when in UTC.
pub fn timestamp_rfc3339(v: &str) -> Option<String> {
    let t = v.trim();
    let body = t.strip_suffix(" UTC")?;
    let body = body.split_once(' ').map(|x| x.1).unwrap_or(body);
    chrono::NaiveDateTime::parse_from_str(body, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|d| {
            d.and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "{ path=/usr/local/bin/db_realtime_sync.sh ; argv[]=/usr/local/bin/db_realtime_sync.sh ; ignore_errors=no ; start_time=[Mon 2024-12-09 10:01:12 UTC] ; stop_time=[n/a] ; pid=4242 ; code=(null) ; status=0/0 }",
        vec!["/usr/local/bin/db_realtime_sync.sh"],
        Some(4242)
    )]
    #[case(
        "{ path=/bin/bash ; argv[]=/bin/bash -c pg_dump -Fc app > /var/backups/app.dump ; ls ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }",
        vec!["/bin/bash", "-c", "pg_dump -Fc app > /var/backups/app.dump ; ls"],
        None
    )]
    #[case(
        "{ path=/usr/bin/sing-box ; argv[]=\"/usr/bin/sing-box\" \"run\" \"-c\" \"/etc/x y.json\" ; flags= ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }",
        vec!["/usr/bin/sing-box", "run", "-c", "/etc/x y.json"],
        None
    )]
    #[case("{ path=/usr/bin/true ; }", vec!["/usr/bin/true"], None)]
    fn parses_exec(#[case] v: &str, #[case] argv: Vec<&str>, #[case] pid: Option<u32>) {
        let e = parse_exec(v).unwrap();
        assert_eq!(e.argv, argv);
        assert_eq!(e.pid, pid);
    }

    #[test]
    fn show_blocks_split_on_blank_lines_and_keep_repeats() {
        let s = "Id=a.service\nExecStart={ path=/x ; argv[]=/x ; ignore_errors=no }\nExecStart={ path=/y ; argv[]=/y 1 ; ignore_errors=no }\nUser=\n\nId=b.timer\nUnit=b.service\n";
        let u = parse_show(s);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].all("ExecStart").len(), 2);
        assert_eq!(u[0].get("User"), None);
        assert_eq!(u[1].get("Unit"), Some("b.service"));
    }

    #[test]
    fn plain_list_units() {
        let s = "cron.service loaded active running Regular background program processing daemon\n● db-realtime-sync.service loaded failed failed DB realtime sync\nx.timer loaded active waiting X\n";
        let u = parse_list_units_plain(s);
        assert_eq!(u.len(), 3);
        assert_eq!(u[1].unit, "db-realtime-sync.service");
        assert_eq!(u[1].active, "failed");
    }

    #[rstest]
    #[case("Mon 2024-12-09 10:01:12 UTC", Some("2024-12-09T10:01:12Z"))]
    #[case("Mon 2024-12-09 10:01:12 CET", None)]
    #[case("n/a", None)]
    fn timestamps(#[case] v: &str, #[case] want: Option<&str>) {
        assert_eq!(timestamp_rfc3339(v).as_deref(), want);
    }

    #[test]
    fn environment_words() {
        let e = parse_environment("PGHOST=db.ext \"PGOPTIONS=-c statement_timeout=0\"");
        assert_eq!(e[0], ("PGHOST".into(), "db.ext".into()));
        assert_eq!(e[1].1, "-c statement_timeout=0");
    }
}
