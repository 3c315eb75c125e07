//! known_hosts: look a server's host key up (plain, hashed `|1|`, `[host]:port`,
//! comma lists, `*`/`?` wildcards, `!` negation, `@revoked`) and append an
//! accepted key. Never removes or rewrites a line: a changed key is for the
//! operator to resolve by hand.
//!
//! Written here rather than taken from `russh::keys::check_known_hosts_path`,
//! which numbers lines without counting comments (the "line N" an operator is
//! sent to would be wrong), splits on single spaces only, ignores
//! `@revoked` and wildcard entries, and fails the whole lookup on one
//! unparsable key.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

use super::TransportError;

/// What known_hosts says about a key offered by `host:port`.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A line for this host holds this key.
    Known { line: usize },
    /// No line for this host holds a key of this type.
    Unknown,
    /// A line for this host holds another key of the same type.
    Changed { line: usize, old: Box<PublicKey> },
    /// An `@revoked` line names this key.
    Revoked { line: usize },
}

/// `SHA256:...` as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name known_hosts uses for `host:port`: `host` on port 22, else `[host]:port`.
pub fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Looks `key` up for `host:port` in the file at `path` (a missing file knows nothing).
pub fn lookup(
    path: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<Lookup, TransportError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::Unknown),
        Err(e) => {
            return Err(TransportError::KnownHosts {
                path: path.to_path_buf(),
                reason: format!("cannot read: {e}"),
            });
        }
    };
    Ok(lookup_text(&text, host, port, key))
}

/// `lookup` over the text of a known_hosts file.
pub fn lookup_text(text: &str, host: &str, port: u16, key: &PublicKey) -> Lookup {
    let name = host_pattern(host, port);
    let mut known = None;
    let mut changed = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut f = raw.split_whitespace();
        let Some(mut first) = f.next() else { continue };
        if first.starts_with('#') {
            continue;
        }
        let mut revoked = false;
        if first.starts_with('@') {
            match first {
                "@revoked" => revoked = true,
                // Host certificates are not negotiated by lifeline: such lines never match.
                _ => continue,
            }
            let Some(next) = f.next() else { continue };
            first = next;
        }
        let (Some(_alg), Some(b64)) = (f.next(), f.next()) else {
            continue;
        };
        let Ok(recorded) = russh::keys::parse_public_key_base64(b64) else {
            continue;
        };
        if revoked {
            if recorded.key_data() == key.key_data() {
                return Lookup::Revoked { line };
            }
            continue;
        }
        if !patterns_match(first, &name) {
            continue;
        }
        if recorded.algorithm() != key.algorithm() {
            continue;
        }
        if recorded.key_data() == key.key_data() {
            known.get_or_insert(line);
        } else {
            changed.get_or_insert((line, recorded));
        }
    }
    match (known, changed) {
        (Some(line), _) => Lookup::Known { line },
        (None, Some((line, old))) => Lookup::Changed {
            line,
            old: Box::new(old),
        },
        (None, None) => Lookup::Unknown,
    }
}

/// OpenSSH semantics: a negated pattern that matches rules the line out;
/// otherwise any positive match (plain, wildcard or hashed) matches.
fn patterns_match(patterns: &str, name: &str) -> bool {
    let mut hit = false;
    for p in patterns.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(neg, name) {
                return false;
            }
        } else if p.starts_with("|1|") {
            hit |= hashed_match(p, name);
        } else {
            hit |= wildcard(p, name);
        }
    }
    hit
}

fn hashed_match(entry: &str, name: &str) -> bool {
    let mut parts = entry.split('|').skip(2);
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Some(Ok(salt)), Some(Ok(hash))) = (
        parts.next().map(|s| b64.decode(s)),
        parts.next().map(|s| b64.decode(s)),
    ) else {
        return false;
    };
    let Ok(mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// `*` and `?` glob, case-insensitive like OpenSSH host patterns.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ni;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Appends `host_pattern(host, port) <key>` to the file at `path`, creating
/// it (and a missing parent directory) when needed. Fsynced.
pub fn append(path: &Path, host: &str, port: u16, key: &PublicKey) -> Result<(), TransportError> {
    let err = |what: &str, e: &dyn std::fmt::Display| TransportError::KnownHosts {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err("cannot create its directory", &e))?;
    }
    let openssh = key
        .to_openssh()
        .map_err(|e| err("cannot encode the key", &e))?;
    // Drop the comment: `alg base64`.
    let body: Vec<&str> = openssh.split_whitespace().take(2).collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| err("cannot open for appending", &e))?;
    // A file whose last line lacks its newline must not glue our line onto it.
    let needs_nl = std::fs::read(path)
        .map(|b| b.last().is_some_and(|c| *c != b'\n'))
        .unwrap_or(false);
    let line = format!(
        "{}{} {}\n",
        if needs_nl { "\n" } else { "" },
        host_pattern(host, port),
        body.join(" ")
    );
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| err("cannot write", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBQ16R2GOJQVk4NRSPWdqA/cGasA11Sv0upsZswriq41";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIC/HS/XZ5LedJD6cM3plRyJ6p7l+X1Y7z4YqIG4jYp6k";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    fn hashed(name: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = [7u8; 20];
        let mac = Hmac::<Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update(name.as_bytes())
            .finalize()
            .into_bytes();
        format!("|1|{}|{}", b64.encode(salt), b64.encode(mac))
    }

    #[test]
    fn plain_port_and_line_numbers_count_comments() {
        let text = format!("# comment\n\nother.example {K2}\n[db1]:2222 ssh-ed25519 {K1}\n")
            .replace(&format!(" {K2}"), &format!(" ssh-ed25519 {K2}"));
        assert_eq!(
            lookup_text(&text, "db1", 2222, &key(K1)),
            Lookup::Known { line: 4 }
        );
        // Port 22 is written without brackets; the [db1]:2222 line is another host.
        assert_eq!(lookup_text(&text, "db1", 22, &key(K1)), Lookup::Unknown);
        match lookup_text(&text, "db1", 2222, &key(K2)) {
            Lookup::Changed { line, old } => {
                assert_eq!(line, 4);
                assert_eq!(fingerprint(&old), fingerprint(&key(K1)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hashed_entries_and_tabs() {
        let text = format!("{}\tssh-ed25519   {K1}\n", hashed("[10.0.0.5]:22022"));
        assert_eq!(
            lookup_text(&text, "10.0.0.5", 22022, &key(K1)),
            Lookup::Known { line: 1 }
        );
        assert_eq!(
            lookup_text(&text, "10.0.0.6", 22022, &key(K1)),
            Lookup::Unknown
        );
        assert!(matches!(
            lookup_text(&text, "10.0.0.5", 22022, &key(K2)),
            Lookup::Changed { line: 1, .. }
        ));
    }

    #[test]
    fn lists_wildcards_negation_revoked_and_garbage() {
        let text = format!(
            "bad line\n@cert-authority *.example ssh-ed25519 {K2}\nweb,*.prod.example,!db9.prod.example ssh-ed25519 {K1}\nhost ssh-ed25519 not-base64\n"
        );
        assert!(matches!(
            lookup_text(&text, "db1.prod.example", 22, &key(K1)),
            Lookup::Known { line: 3 }
        ));
        assert!(matches!(
            lookup_text(&text, "WEB", 22, &key(K1)),
            Lookup::Known { .. }
        ));
        assert_eq!(
            lookup_text(&text, "db9.prod.example", 22, &key(K1)),
            Lookup::Unknown
        );
        let revoked = format!("{text}@revoked * ssh-ed25519 {K1}\n");
        assert_eq!(
            lookup_text(&revoked, "web", 22, &key(K1)),
            Lookup::Revoked { line: 5 }
        );
    }

    #[test]
    fn append_then_known() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/known_hosts");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "# no newline at end").unwrap();
        append(&p, "127.0.0.1", 2200, &key(K1)).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            format!("# no newline at end\n[127.0.0.1]:2200 ssh-ed25519 {K1}\n")
        );
        assert_eq!(
            lookup(&p, "127.0.0.1", 2200, &key(K1)).unwrap(),
            Lookup::Known { line: 2 }
        );
    }

    #[test]
    fn globbing() {
        assert!(wildcard("*", "x"));
        assert!(wildcard("db?.ex*", "db1.example"));
        assert!(!wildcard("db?.ex*", "db12.example"));
        assert!(wildcard("[1.2.3.4]:22*", "[1.2.3.4]:2222"));
    }
}
