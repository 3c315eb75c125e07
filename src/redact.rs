//! Redaction: every byte lifeline writes (journal, export, screen, log)
//! passes through a `Redactor`. It never un-redacts and never logs what it hides.

use std::sync::{Arc, LazyLock, RwLock};

use regex::Regex;
use serde_json::Value;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Names of variables, keys and parameters whose value is a secret (any case).
const SECRET_WORDS: &str = "PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIAL";

/// How a match is rewritten: a `$1`-style template, or a function for the
/// cases a template cannot express (a name that must be looked at).
enum Rewrite {
    Template(&'static str),
    SecretName(fn(&regex::Captures<'_>) -> String),
}

struct Pattern {
    re: Regex,
    rewrite: Rewrite,
}

/// `NAME<sep>` kept, the value masked, unless the name is not a secret after
/// all (`PWD`/`OLDPWD` are the shell's directory; `*_FILE`/`*_ENV` name where
/// a secret is, not the secret).
fn secret_name(c: &regex::Captures<'_>) -> String {
    let whole = c.get(0).map_or("", |m| m.as_str());
    let name = c.get(1).map_or("", |m| m.as_str());
    let sep = c.get(2).map_or("", |m| m.as_str());
    let upper = name.trim_matches(['"', '\'']).to_ascii_uppercase();
    let not_secret = matches!(upper.as_str(), "PWD" | "OLDPWD")
        || upper.ends_with("_FILE")
        || upper.ends_with("_ENV")
        || upper.ends_with("_PATH");
    if not_secret {
        whole.to_string()
    } else {
        format!("{name}{sep}{MASK}")
    }
}

/// The table: each row is one real-world shape of a secret (see the corpus
/// test below for the forms each row covers). Order matters: whole-block and
/// URL rows run before the name=value rows.
static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let t = |re: &str, r: &'static str| {
        Regex::new(re).map(|re| Pattern {
            re,
            rewrite: Rewrite::Template(r),
        })
    };
    let f = |re: &str, r: fn(&regex::Captures<'_>) -> String| {
        Regex::new(re).map(|re| Pattern {
            re,
            rewrite: Rewrite::SecretName(r),
        })
    };
    let w = SECRET_WORDS;
    let name = format!(r"[A-Za-z0-9_]*(?i:{w})[A-Za-z0-9_]*");
    // The patterns are constant; a failure here is a programming error caught by the tests.
    [
        // PEM private keys, whole block (or to the end when the END line is missing).
        t(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            "[private key redacted]",
        ),
        // scheme://user:secret@host (postgres, mysql, redis, https, jdbc:mysql, ...).
        t(
            r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)([^@\s]+)@",
            "${1}***@",
        ),
        // URL query parameters: ?password=, &token=, ;sslpassword= (JDBC too).
        t(
            r"(?i)([?&;](?:[a-z_]*password|passwd|pwd|[a-z_]*token|[a-z_]*secret|api_?key|sig|signature)=)([^&;\s'\x22#]+)",
            "${1}***",
        ),
        // systemd Environment="DB_PASSWORD=two words" (the whole quoted assignment).
        f(&format!(r#"("{name})(=)[^"]*""#), |c| {
            let s = secret_name(c);
            if s.ends_with(MASK) {
                format!("{s}\"")
            } else {
                s
            }
        }),
        // NAME=value: env, export, .env, crontab, docker -e, compose list form.
        f(
            &format!(r#"\b({name})(\s*=\s*)('[^']*'|"[^"]*"|[^\s;&|'"`]+)"#),
            secret_name,
        ),
        // NAME: value: compose `environment:` map form, YAML, JSON members.
        f(
            &format!(r#"\b({name}["']?)(\s*:[ \t]*)('[^']*'|"[^"]*"|[^\s,}}'"]+)"#),
            secret_name,
        ),
        // PGPASSWORD=secret and other names the row above misses (kept from before).
        t(
            r#"(PGPASSWORD\s*=\s*)('[^']*'|"[^"]*"|[^\s;&|]+)"#,
            "${1}***",
        ),
        // sshpass -p secret
        t(r#"(sshpass\s+-p\s*)('[^']*'|"[^"]*"|\S+)"#, "${1}***"),
        // mysql/mariadb client family: -psecret (attached; `-p` alone prompts).
        t(
            r#"(\b(?i:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlsh|mysqlpump|mariadb|mariadb-dump|mariadb-admin)\b[^\n|;&]*?\s-p)('[^']*'|"[^"]*"|[^\s'"]+)"#,
            "${1}***",
        ),
        // conninfo password=secret / password = 'se cret'
        f(
            r#"(?i)\b(password\s*=\s*)()('(?:[^'\\]|\\.)*'|"[^"]*"|[^\s'"]+)"#,
            |c| {
                let whole = c.get(0).map_or("", |m| m.as_str());
                let value = c.get(3).map_or("", |m| m.as_str());
                // Already masked by the URL row: keep what follows (`&sslmode=...`).
                if value.starts_with(MASK) {
                    whole.to_string()
                } else {
                    secret_name(c)
                }
            },
        ),
        // --password=secret, --password secret (not a following --flag).
        t(r#"(?i)(--password=)('[^']*'|"[^"]*"|\S+)"#, "${1}***"),
        t(r#"(?i)(--password )('[^']*'|"[^"]*"|[^\s\-]\S*)"#, "${1}***"),
        // SQL: [ENCRYPTED] PASSWORD 'secret', IDENTIFIED BY 'secret'.
        // Inside another literal (`'... PASSWORD ''secret'' ...'`) the quotes are doubled.
        f(
            r"(?i)\b((?:(?:un)?encrypted\s+)?password\s+|identified\s+by\s+)()(''[^']+''|'(?:[^']|'')*')",
            |c| {
                let lead = c.get(1).map_or("", |m| m.as_str());
                let value = c.get(3).map_or("", |m| m.as_str());
                if value.starts_with("''") {
                    format!("{lead}''{MASK}''")
                } else {
                    format!("{lead}'{MASK}'")
                }
            },
        ),
        // HTTP Authorization headers (Basic, Bearer, Token, Digest or bare).
        t(
            r#"(?i)\b(authorization\s*:\s*(?:(?:basic|bearer|token|digest|negotiate)\s+)?)([^\s'"]+)"#,
            "${1}***",
        ),
        // Other token headers: X-Api-Key, Private-Token, X-Auth-Token.
        t(
            r#"(?i)\b((?:x-)?(?:api-key|auth-token|private-token|access-token|vault-token)\s*:\s*)([^\s'"]+)"#,
            "${1}***",
        ),
        // curl -u user:secret
        t(
            r#"(\bcurl\b[^\n|;&]*?\s(?:-u|--user)\s*['"]?[^:\s'"]+:)([^\s'"]+)"#,
            "${1}***",
        ),
        // The 40-character AWS secret shape after its name in any spelling.
        t(
            r#"(?i)(secret[_\-]?access[_\-]?key["']?\s*[:=\s]\s*["']?)([A-Za-z0-9/+=]{40})"#,
            "${1}***",
        ),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect()
});

/// Number of rows the table must compile to (checked by a test).
#[cfg(test)]
const PATTERN_ROWS: usize = 17;

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
                out = match &p.rewrite {
                    Rewrite::Template(t) => p.re.replace_all(&out, *t).into_owned(),
                    Rewrite::SecretName(f) => p.re.replace_all(&out, *f).into_owned(),
                };
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
        assert_eq!(PATTERNS.len(), PATTERN_ROWS);
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

    /// The corpus: real-world forms of a secret. Each row: the line, the
    /// secret that must vanish, and text around it that must survive.
    const CORPUS: &[(&str, &str, &[&str])] = &[
        // env assignments
        (
            "POSTGRES_PASSWORD=Zx9secretA docker-entrypoint.sh postgres",
            "Zx9secretA",
            &["POSTGRES_PASSWORD=", "docker-entrypoint.sh postgres"],
        ),
        (
            "DB_PASSWORD=hunter2hunter2 ./migrate.sh",
            "hunter2hunter2",
            &["DB_PASSWORD=", "./migrate.sh"],
        ),
        (
            "export DB_PASSWD='q uoted pw' && run",
            "q uoted pw",
            &["export DB_PASSWD=", "&& run"],
        ),
        (
            "export GITHUB_TOKEN=ghp_abcdefghijklmnop1234; make",
            "ghp_abcdefghijklmnop1234",
            &["export GITHUB_TOKEN=", "; make"],
        ),
        (
            "env MYSQL_ROOT_PWD=rootpw99 mysqld",
            "rootpw99",
            &["MYSQL_ROOT_PWD=", "mysqld"],
        ),
        (
            "stripe_api_key=sk_live_51abcDEF node app.js",
            "sk_live_51abcDEF",
            &["stripe_api_key=", "node app.js"],
        ),
        (
            "SSH_PRIVATE_KEY=\"AAAAkeydata==\" deploy",
            "AAAAkeydata==",
            &["SSH_PRIVATE_KEY=", "deploy"],
        ),
        (
            "GCP_CREDENTIALS=eyJhbGciOiJIUz ./upload",
            "eyJhbGciOiJIUz",
            &["GCP_CREDENTIALS=", "./upload"],
        ),
        (
            "app_secret = 'sh0rt-but-secret'",
            "sh0rt-but-secret",
            &["app_secret ="],
        ),
        (
            "Db_Password=MiXeDcase1 run",
            "MiXeDcase1",
            &["Db_Password=", "run"],
        ),
        // systemd
        (
            "Environment=PGPASSWORD=unitpw123",
            "unitpw123",
            &["Environment=PGPASSWORD="],
        ),
        (
            "Environment=\"DB_PASSWORD=two words here\" \"PORT=5432\"",
            "two words here",
            &["Environment=\"DB_PASSWORD=", "\"PORT=5432\""],
        ),
        (
            "Environment=\"LOG=1\" \"API_TOKEN=tok-777-xyz\"",
            "tok-777-xyz",
            &["\"LOG=1\"", "API_TOKEN="],
        ),
        // compose
        (
            "      POSTGRES_PASSWORD: composepw1",
            "composepw1",
            &["POSTGRES_PASSWORD:"],
        ),
        (
            "      POSTGRES_PASSWORD: \"composepw2\"",
            "composepw2",
            &["POSTGRES_PASSWORD:"],
        ),
        (
            "      - POSTGRES_PASSWORD=composepw3",
            "composepw3",
            &["- POSTGRES_PASSWORD="],
        ),
        (
            "{\"DB_PASSWORD\": \"jsonpw44\", \"port\": 5432}",
            "jsonpw44",
            &["\"DB_PASSWORD\":", "\"port\": 5432"],
        ),
        // .env and crontab
        (
            "SECRET_KEY_BASE=6f1c9a8b7e",
            "6f1c9a8b7e",
            &["SECRET_KEY_BASE="],
        ),
        (
            "*/5 * * * * root PGPASSWORD=cronpw55 pg_dump -h db app > /b/x.sql",
            "cronpw55",
            &[
                "*/5 * * * * root PGPASSWORD=",
                "pg_dump -h db app > /b/x.sql",
            ],
        ),
        (
            "0 3 * * * DB_PASS_TOKEN=tkn88 /opt/backup.sh",
            "tkn88",
            &["0 3 * * *", "/opt/backup.sh"],
        ),
        // docker run
        (
            "docker run -e POSTGRES_PASSWORD=dockpw66 -p 5432:5432 postgres:15",
            "dockpw66",
            &[
                "docker run -e POSTGRES_PASSWORD=",
                "-p 5432:5432 postgres:15",
            ],
        ),
        (
            "docker run --env=REDIS_TOKEN=rt-123456 redis",
            "rt-123456",
            &["docker run --env=REDIS_TOKEN=", "redis"],
        ),
        // mysql-family and psql-style clients
        (
            "mysql -uroot -pMyS3cret app_db",
            "MyS3cret",
            &["mysql -uroot -p", "app_db"],
        ),
        (
            "mysqldump -h db -u app -p'quoted77' app > dump.sql",
            "quoted77",
            &["mysqldump -h db -u app -p", "app > dump.sql"],
        ),
        (
            "mariadb -u admin -pMariaPw1 -P3306 shop",
            "MariaPw1",
            &["mariadb -u admin -p", "-P3306 shop"],
        ),
        (
            "mysql --password=dashpw88 -h db",
            "dashpw88",
            &["mysql --password=", "-h db"],
        ),
        (
            "pgcli --password spacepw99 -h db",
            "spacepw99",
            &["pgcli --password", "-h db"],
        ),
        // SQL
        (
            "ALTER ROLE app WITH PASSWORD 'sqlpw101';",
            "sqlpw101",
            &["ALTER ROLE app WITH PASSWORD", ";"],
        ),
        (
            "CREATE ROLE rep LOGIN ENCRYPTED PASSWORD 'enc''pw202' VALID UNTIL 'infinity'",
            "enc''pw202",
            &[
                "CREATE ROLE rep LOGIN ENCRYPTED PASSWORD",
                "VALID UNTIL 'infinity'",
            ],
        ),
        (
            "SELECT 'ALTER ROLE app PASSWORD ''nestedpw313''' AS ddl",
            "nestedpw313",
            &["SELECT 'ALTER ROLE app PASSWORD ''", "''' AS ddl"],
        ),
        (
            "CREATE USER 'u'@'%' IDENTIFIED BY 'mysqlpw303';",
            "mysqlpw303",
            &["CREATE USER 'u'@'%' IDENTIFIED BY"],
        ),
        // URLs
        (
            "DATABASE_URL=postgres://app:urlpw404@db.example.net:5432/TovPlay",
            "urlpw404",
            &["postgres://app:", "@db.example.net:5432/TovPlay"],
        ),
        (
            "redis-cli -u redis://default:redpw505@cache:6379/0 ping",
            "redpw505",
            &["redis://default:", "@cache:6379/0 ping"],
        ),
        (
            "curl https://deploy:httpspw606@ci.example.com/hook",
            "httpspw606",
            &["https://deploy:", "@ci.example.com/hook"],
        ),
        (
            "psql 'postgresql://db/app?user=x&password=qpw707&sslmode=require'",
            "qpw707",
            &["postgresql://db/app?user=x&password=", "&sslmode=require"],
        ),
        (
            "wget 'https://api.example.com/v1/export?token=tok808abc&fmt=csv'",
            "tok808abc",
            &["https://api.example.com/v1/export?token=", "&fmt=csv"],
        ),
        (
            "host=db sslcert=c.pem sslpassword=sslpw909 dbname=x",
            "sslpw909",
            &["sslpassword=", "dbname=x"],
        ),
        (
            "postgresql://db/app?sslpassword=sslpw910&sslmode=verify-full",
            "sslpw910",
            &["sslpassword=", "&sslmode=verify-full"],
        ),
        (
            "jdbc:postgresql://db:5432/app?user=app&password=jdbcpw111&ssl=true",
            "jdbcpw111",
            &[
                "jdbc:postgresql://db:5432/app?user=app&password=",
                "&ssl=true",
            ],
        ),
        (
            "jdbc:mysql://app:jdbcpw222@db:3306/shop",
            "jdbcpw222",
            &["jdbc:mysql://app:", "@db:3306/shop"],
        ),
        (
            "jdbc:sqlserver://db:1433;databaseName=x;user=sa;password=jdbcpw333;",
            "jdbcpw333",
            &[
                "jdbc:sqlserver://db:1433;databaseName=x;user=sa;password=",
                ";",
            ],
        ),
        // Authorization headers
        (
            "curl -H 'Authorization: Bearer eyJhbGciOi.payload.sig' https://api/x",
            "eyJhbGciOi.payload.sig",
            &["curl -H 'Authorization: Bearer ", "' https://api/x"],
        ),
        (
            "Authorization: Basic YWRtaW46c2VjcmV0",
            "YWRtaW46c2VjcmV0",
            &["Authorization: Basic "],
        ),
        (
            "curl -H \"PRIVATE-TOKEN: glpat-xyz123\" https://gitlab/api",
            "glpat-xyz123",
            &["PRIVATE-TOKEN: ", "https://gitlab/api"],
        ),
        (
            "curl -u admin:curlpw444 https://nexus/repo",
            "curlpw444",
            &["curl -u admin:", "https://nexus/repo"],
        ),
        // AWS
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &["aws_secret_access_key ="],
        ),
        (
            "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY; aws s3 cp x s3://b/",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &["export AWS_SECRET_ACCESS_KEY=", "; aws s3 cp x s3://b/"],
        ),
        (
            "--aws-secret-access-key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY --region eu",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            &["--aws-secret-access-key", "--region eu"],
        ),
        // the older rows
        (
            "host=db user=app password=hunter22 dbname=x",
            "hunter22",
            &["host=db user=app password=", "dbname=x"],
        ),
        (
            "sshpass -p 'letmein1' ssh db",
            "letmein1",
            &["sshpass -p", "ssh db"],
        ),
    ];

    #[test]
    fn corpus_secrets_vanish_and_lines_survive() {
        assert!(CORPUS.len() >= 40, "{}", CORPUS.len());
        let r = Redactor::new();
        for (line, secret, keep) in CORPUS {
            let out = r.redact(line);
            assert!(!out.contains(secret), "secret '{secret}' left in: {out}");
            for k in *keep {
                assert!(out.contains(k), "'{k}' lost from: {line}\n  -> {out}");
            }
            assert!(out.contains(MASK), "{out}");
            // Redaction is stable: running it again changes nothing.
            assert_eq!(r.redact(&out), out, "{line}");
            // In JSON (status --json, export json) the secret is gone too.
            let mut v = serde_json::json!({ "line": line });
            r.redact_json(&mut v);
            assert!(!v.to_string().contains(secret), "{v}");
        }
    }

    #[rstest]
    #[case("cd $PWD && PWD=/srv/app ./run")]
    #[case("DB_PASSWORD_FILE=/run/secrets/db ./run")]
    #[case("psql --password -h db -U app")]
    #[case("psql -p 5432 -h db app")]
    #[case("pg_dump --clean -h 10.0.0.5 -d TovPlay | psql -h db.example.net")]
    fn not_secrets_left_alone(#[case] line: &str) {
        assert_eq!(Redactor::new().redact(line), line);
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
