//! ~/.pgpass lookup with libpq's rules: `host:port:db:user:password`, `*`
//! wildcards, `\:` and `\\` escapes, first match wins, a socket directory
//! matches `localhost` when it is a default one, and a file readable by
//! group or others is ignored. Never logs the passwords it reads.

use std::path::{Path, PathBuf};

use crate::inventory::{expand_tilde, pgpass_fields};

/// Default socket directories: a connection through one of them also
/// matches `localhost` entries (libpq's DEFAULT_PGSOCKET_DIR).
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// `$PGPASSFILE`, else `~/.pgpass`.
pub fn pgpass_path() -> PathBuf {
    std::env::var_os("PGPASSFILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| expand_tilde("~/.pgpass"))
}

/// Why a pgpass file was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgpassSkip {
    Missing,
    /// Group or others may read it: libpq ignores such a file.
    TooOpen(u32),
    Unreadable(String),
}

/// The password for this connection from the pgpass file at `path`.
pub fn lookup(
    path: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Result<Option<String>, PgpassSkip> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(PgpassSkip::Missing),
        Err(e) => return Err(PgpassSkip::Unreadable(e.to_string())),
    };
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & 0o077 != 0 {
        return Err(PgpassSkip::TooOpen(mode & 0o777));
    }
    let text = std::fs::read_to_string(path).map_err(|e| PgpassSkip::Unreadable(e.to_string()))?;
    Ok(find(&text, host, port, dbname, user))
}

/// The first matching line's password.
pub fn find(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    let socket_default = host.starts_with('/')
        && DEFAULT_SOCKET_DIRS
            .iter()
            .any(|d| host.trim_end_matches('/') == *d);
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f = pgpass_fields(line);
        if f.len() < 5 {
            continue;
        }
        let host_ok = f[0] == "*" || f[0] == host || (socket_default && f[0] == "localhost");
        let ok = |field: &str, value: &str| field == "*" || field == value;
        if host_ok && ok(&f[1], &port) && ok(&f[2], dbname) && ok(&f[3], user) {
            return Some(f[4].clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const FILE: &str = "\
# comment
db.example.net:5432:TovPlay:app:first
*:5432:other:app:second
127.0.0.1:*:*:admin:co\\:lon\\\\pw
localhost:5433:*:*:socketpw
*:*:*:*:fallback
";

    #[rstest]
    #[case("db.example.net", 5432, "TovPlay", "app", "first")]
    #[case("db.example.net", 5432, "tovplay", "app", "fallback")]
    #[case("anything", 5432, "other", "app", "second")]
    #[case("127.0.0.1", 6000, "x", "admin", "co:lon\\pw")]
    #[case("/var/run/postgresql", 5433, "x", "u", "socketpw")]
    #[case("/tmp/private", 5433, "x", "u", "fallback")]
    fn matching(
        #[case] host: &str,
        #[case] port: u16,
        #[case] db: &str,
        #[case] user: &str,
        #[case] want: &str,
    ) {
        assert_eq!(find(FILE, host, port, db, user).as_deref(), Some(want));
    }

    #[test]
    fn no_match_and_short_lines() {
        assert_eq!(find("h:1:d:u\n", "h", 1, "d", "u"), None);
        assert_eq!(find("h:1:d:u:p\n", "h", 2, "d", "u"), None);
    }

    #[test]
    fn too_open_file_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pgpass");
        std::fs::write(&p, "*:*:*:*:pw\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            lookup(&p, "h", 1, "d", "u"),
            Err(PgpassSkip::TooOpen(0o644))
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&p, "h", 1, "d", "u"), Ok(Some("pw".into())));
        assert_eq!(
            lookup(&d.path().join("none"), "h", 1, "d", "u"),
            Err(PgpassSkip::Missing)
        );
    }
}
