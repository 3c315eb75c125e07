//! Redaction: every byte lifeline writes (journal, export, screen, log)
//! passes through a `Redactor`. It never un-redacts and never logs what it hides.

use std::sync::{Arc, LazyLock, RwLock};

use regex::Regex;
use serde_json::Value;

/// What replaces a secret.
pub const MASK: &str = "***";

struct Pattern {
    re: Regex,
    replacement: &'static str,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p =
        |re: &str, replacement: &'static str| Regex::new(re).map(|re| Pattern { re, replacement });
    // The patterns are constant; a failure here is a programming error caught by the tests.
    [
        // PEM private keys, whole block (or to the end when the END line is missing).
        p(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            "[private key redacted]",
        ),
        // postgres://user:secret@host
        p(
            r"(?i)\b((?:postgres(?:ql)?|mysql|redis|amqp|mongodb(?:\+srv)?)://[^:/@\s]*:)([^@\s]+)@",
            "${1}***@",
        ),
        // PGPASSWORD=secret, PGPASSWORD='secret'
        p(
            r#"(PGPASSWORD\s*=\s*)('[^']*'|"[^"]*"|[^\s;&|]+)"#,
            "${1}***",
        ),
        // sshpass -p secret
        p(r#"(sshpass\s+-p\s*)('[^']*'|"[^"]*"|\S+)"#, "${1}***"),
        // conninfo password=secret / password = 'se cret'
        p(
            r#"(?i)\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|"[^"]*"|[^\s'"]+)"#,
            "${1}***",
        ),
        // --password=secret
        p(r#"(--password[= ])('[^']*'|"[^"]*"|\S+)"#, "${1}***"),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
});

/// Masks known secret values and secret-shaped patterns. Cheap to clone;
/// clones share the list of secrets, so a secret learned later (a password
/// file read at connect time) is masked everywhere.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.secrets.read().map(|s| s.len()).unwrap_or(0);
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a literal secret. Very short values (under 4 characters)
    /// are ignored: masking them would shred ordinary text; the patterns
    /// still catch them where they appear as passwords.
    pub fn add_secret(&self, secret: &str) {
        let s = secret.trim_end_matches(['\n', '\r']);
        if s.chars().count() < 4 {
            return;
        }
        if let Ok(mut v) = self.secrets.write()
            && !v.iter().any(|x| x == s)
        {
            v.push(s.to_string());
            // Longest first, so a secret containing another is masked whole.
            v.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    pub fn secret_count(&self) -> usize {
        self.secrets.read().map(|s| s.len()).unwrap_or(0)
    }

    /// Returns `text` with every secret and secret pattern masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Ok(secrets) = self.secrets.read() {
            for s in secrets.iter() {
                if out.contains(s.as_str()) {
                    out = out.replace(s.as_str(), MASK);
                }
            }
        }
        for p in PATTERNS.iter() {
            if p.re.is_match(&out) {
                out = p.re.replace_all(&out, p.replacement).into_owned();
            }
        }
        out
    }

    /// Redacts every string (and object key) inside a JSON value.
    pub fn redact_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.redact(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut x) in old {
                    self.redact_json(&mut x);
                    m.insert(self.redact(&k), x);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn patterns_all_compile() {
        assert_eq!(PATTERNS.len(), 6);
    }

    #[rstest]
    #[case("psql postgres://app:s3cr3tZ@db:5432/x", "s3cr3tZ")]
    #[case("psql postgresql://app:p%40ss@db/x", "p%40ss")]
    #[case("host=db user=app password=hunter22 dbname=x", "hunter22")]
    #[case("host=db password = 'two words' dbname=x", "two words")]
    #[case("PGPASSWORD=zzTop99 psql -h db", "zzTop99")]
    #[case("export PGPASSWORD='quoted pw'; psql", "quoted pw")]
    #[case("sshpass -p 'letmein1' ssh db", "letmein1")]
    #[case("sshpass -pletmein2 ssh db", "letmein2")]
    #[case("pg_dump --password=abc123x", "abc123x")]
    #[case(
        "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n-----END OPENSSH PRIVATE KEY-----\nafter",
        "b3BlbnNzaC1rZXktdjE"
    )]
    #[case("-----BEGIN RSA PRIVATE KEY-----\nMIIEtruncated", "MIIEtruncated")]
    fn pattern_masks_secret(#[case] input: &str, #[case] secret: &str) {
        let r = Redactor::new();
        let out = r.redact(input);
        assert!(!out.contains(secret), "{out}");
    }

    #[test]
    fn literal_secrets_masked_and_text_kept() {
        let r = Redactor::new();
        r.add_secret("Tr0ub4dor&3\n");
        let out = r.redact("login with Tr0ub4dor&3 now");
        assert_eq!(out, "login with *** now");
        let clone = r.clone();
        r.add_secret("later-secret");
        assert_eq!(clone.redact("x later-secret"), "x ***");
    }

    #[test]
    fn json_strings_and_keys() {
        let r = Redactor::new();
        r.add_secret("abcd1234");
        let mut v = serde_json::json!({"a": ["x abcd1234"], "abcd1234": 1, "n": 5});
        r.redact_json(&mut v);
        let s = v.to_string();
        assert!(!s.contains("abcd1234"), "{s}");
    }

    #[test]
    fn ordinary_text_untouched() {
        let r = Redactor::new();
        let t = "pg_dump --clean -h 10.0.0.5 -d TovPlay | psql -h db.example.net";
        assert_eq!(r.redact(t), t);
    }
}
