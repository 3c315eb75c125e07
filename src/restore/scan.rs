//! The restore's judge: whether each statement of a dump stays inside its
//! target (pg_dump's allowlist plus the target's [`Policy`]), for the
//! pre-scan and the executor alike. It never connects to a database.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::exec::RestoreError;
use super::lexer::{Item, LexErrorKind, Lexer, MetaCommand, Statement};
use super::source::RestoreSource;
use super::sql::{Class, Tok, classify, tokenize};

const READ_SIZE: usize = 1 << 20;

/// What a restore into one target may do beyond pg_dump's fixed shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The target database: `\connect` may name only it.
    pub target: String,
    /// The target's owner: the one role `SET ROLE` / `SET SESSION
    /// AUTHORIZATION` may switch to (None: no role switch at all).
    pub owner: Option<String>,
    /// Extensions the live database has: the only ones `CREATE EXTENSION`
    /// may create (plpgsql is in every database).
    pub extensions: BTreeSet<String>,
    /// `--no-owner`: `ALTER ... OWNER TO` another role than `owner` is
    /// recorded in the manifest instead of run (set by [`Policy::restore_role`]).
    pub no_owner: bool,
}

impl Policy {
    pub fn new(target: impl Into<String>) -> Self {
        Policy {
            target: target.into(),
            owner: None,
            extensions: BTreeSet::from(["plpgsql".to_string()]),
            no_owner: false,
        }
    }

    pub fn owner(mut self, role: impl Into<String>) -> Self {
        self.owner = Some(role.into());
        self
    }

    /// The restore runs as `role`, which owns the target: the one role a
    /// dump may switch to, and ownership given to other roles is skipped
    /// and recorded (`--no-owner`).
    pub fn restore_role(mut self, role: impl Into<String>) -> Self {
        self.owner = Some(role.into());
        self.no_owner = true;
        self
    }

    pub fn extensions<I: IntoIterator<Item = String>>(mut self, names: I) -> Self {
        self.extensions.extend(names);
        self
    }

    /// Why a statement of this class is refused under this policy, if it is.
    pub fn refusal(&self, class: &Class) -> Option<String> {
        match class {
            Class::Forbidden(why) => Some(why.clone()),
            Class::Extension { name } if !self.extensions.contains(name) => Some(format!(
                "CREATE EXTENSION '{name}': the live database does not have this extension (it has: {}); an extension brings server code (dblink and postgres_fdw reach other databases): install it on the live database first if it is wanted",
                self.extensions
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Class::Role {
                setting,
                role: Some(r),
            } if self.owner.as_deref() != Some(r.as_str()) => Some(format!(
                "SET {} '{r}': the restore runs only as the target's owner{}; switching roles would act with another role's privileges",
                setting.to_ascii_uppercase(),
                self.owner
                    .as_deref()
                    .map(|o| format!(" '{o}'"))
                    .unwrap_or_default()
            )),
            _ => None,
        }
    }
}

/// The judge's state along one stream.
#[derive(Debug, Clone)]
pub struct Guard {
    pub policy: Policy,
    restrict: Option<(String, u64)>,
    event_trigger: Option<u64>,
}

/// A meta-command as psql reads it in the dump (what an operator sees in a
/// refusal), never a Rust debug rendering.
fn meta_line(cmd: &MetaCommand) -> String {
    match cmd {
        MetaCommand::Connect { dbname: None } => "\\connect -".into(),
        MetaCommand::Connect { dbname: Some(d) } => format!("\\connect {d}"),
        MetaCommand::Restrict { key } => format!("\\restrict {key}"),
        MetaCommand::Unrestrict { key } => format!("\\unrestrict {key}"),
        MetaCommand::SetOnErrorStop { value } => format!("\\set ON_ERROR_STOP {value}"),
    }
}

fn refused(line: u64, offset: u64, first_line: String, reason: String) -> RestoreError {
    RestoreError::Refused {
        line,
        offset,
        first_line,
        reason,
    }
}

/// `ALTER|COMMENT ON|SECURITY LABEL ... EVENT TRIGGER` and `REFRESH
/// MATERIALIZED VIEW`: what pg_dump writes after its event triggers.
fn after_event_trigger_ok(class: &Class, sql: &str) -> bool {
    match class {
        Class::EventTrigger | Class::Session { .. } | Class::Role { .. } => true,
        Class::Other => {
            let toks = tokenize(sql);
            let words: Vec<String> = toks
                .iter()
                .take(6)
                .filter_map(|t| match &t.0 {
                    Tok::Word(w) => Some(w.to_ascii_lowercase()),
                    _ => None,
                })
                .collect();
            let has = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
            has("event", "trigger") || has("materialized", "view")
        }
        _ => false,
    }
}

impl Guard {
    pub fn new(policy: Policy) -> Self {
        Guard {
            policy,
            restrict: None,
            event_trigger: None,
        }
    }

    /// Judges one statement: its class, or the refusal with its line.
    pub fn statement(&mut self, s: &Statement) -> Result<Class, RestoreError> {
        let class = classify(&s.sql);
        if let Some(reason) = self.policy.refusal(&class) {
            return Err(refused(s.line, s.offset, s.first_line(), reason));
        }
        if let Some(at) = self.event_trigger
            && !after_event_trigger_ok(&class, &s.sql)
        {
            return Err(refused(
                s.line,
                s.offset,
                s.first_line(),
                format!(
                    "a statement after the event trigger of line {at}: the trigger's function would run with the restore session's privileges; pg_dump writes event triggers last"
                ),
            ));
        }
        if class == Class::EventTrigger {
            self.event_trigger.get_or_insert(s.line);
        }
        Ok(class)
    }

    /// Judges a `COPY ... FROM stdin` (its shape is the lexer's).
    pub fn copy(&mut self, s: &Statement) -> Result<(), RestoreError> {
        match self.event_trigger {
            Some(at) => Err(refused(
                s.line,
                s.offset,
                s.first_line(),
                format!(
                    "table data after the event trigger of line {at}: pg_dump writes event triggers last"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Judges a psql meta-command: `\restrict`/`\unrestrict` pairs and
    /// `\connect` to the target only.
    pub fn meta(&mut self, cmd: MetaCommand, line: u64, offset: u64) -> Result<(), RestoreError> {
        let refuse = |first_line: String, reason: String| refused(line, offset, first_line, reason);
        if let Some((key, at)) = &self.restrict {
            return match cmd {
                MetaCommand::Unrestrict { key: k } if k == *key => {
                    self.restrict = None;
                    Ok(())
                }
                MetaCommand::Unrestrict { .. } => Err(refuse(
                    "\\unrestrict".into(),
                    format!(
                        "its key differs from the \\restrict key of line {at}: the dump was spliced from several files; restore an untouched backup"
                    ),
                )),
                other => Err(refuse(
                    meta_line(&other),
                    format!(
                        "a meta-command while restricted (\\restrict at line {at}): psql refuses it too"
                    ),
                )),
            };
        }
        match cmd {
            MetaCommand::Restrict { key } => {
                self.restrict = Some((key, line));
                Ok(())
            }
            MetaCommand::Unrestrict { .. } => Err(refuse(
                "\\unrestrict".into(),
                "\\unrestrict without \\restrict".into(),
            )),
            // lifeline always stops at the first error.
            MetaCommand::SetOnErrorStop { .. } => Ok(()),
            MetaCommand::Connect { dbname: None } => Ok(()),
            MetaCommand::Connect { dbname: Some(d) } if d == self.policy.target => Ok(()),
            MetaCommand::Connect { dbname: Some(d) } => Err(refuse(
                format!("\\connect {d}"),
                format!(
                    "it switches to database '{d}'; lifeline restores only into '{}' and never touches another database (make the dump with plain pg_dump, without -C, or with pg_dump per database instead of pg_dumpall)",
                    self.policy.target
                ),
            )),
        }
    }

    /// At the end of the stream: still restricted means truncated.
    pub fn finish(&self, line: u64) -> Result<(), RestoreError> {
        if self.restrict.is_some() {
            return Err(RestoreError::Unfinished {
                what: "in psql restricted mode (the \\unrestrict line pg_dump writes last is missing)",
                line,
            });
        }
        Ok(())
    }
}

/// What the pre-scan read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub statements: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Reads the whole stream once, judging every statement and meta-command,
/// without touching any database: a refusal (or a truncated dump) comes
/// before a target is created.
pub async fn prescan(
    mut source: RestoreSource,
    policy: Policy,
    require_trailer: bool,
) -> Result<ScanReport, RestoreError> {
    let mut guard = Guard::new(policy);
    let mut lexer = Lexer::new();
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut statements = 0u64;
    let result: Result<(), RestoreError> = async {
        loop {
            while let Some(item) = lexer.next_item().map_err(|e| match e.kind {
                LexErrorKind::TruncatedCopy {
                    start_line,
                    start_offset,
                    rows,
                } => RestoreError::TruncatedCopy {
                    table: String::new(),
                    start_line,
                    start_offset,
                    rows,
                    line: e.line,
                    offset: e.offset,
                },
                _ => RestoreError::Lex(e),
            })? {
                match item {
                    Item::Statement(s) => {
                        statements += 1;
                        guard.statement(&s)?;
                    }
                    Item::CopyStart { stmt, .. } => {
                        statements += 1;
                        guard.copy(&stmt)?;
                    }
                    Item::Meta { cmd, line, offset } => guard.meta(cmd, line, offset)?,
                    Item::CopyData(_) | Item::CopyEnd { .. } | Item::Toc(_) => {}
                }
            }
            if lexer.is_done() {
                break;
            }
            let buf = lexer.buffer();
            if buf.capacity() - buf.len() < READ_SIZE {
                buf.reserve(2 * READ_SIZE);
            }
            let before = buf.len();
            let n = source
                .reader
                .read_buf(buf)
                .await
                .map_err(|e| RestoreError::Read {
                    offset: bytes,
                    message: e.to_string(),
                })?;
            if n == 0 {
                lexer.finish_input();
            } else {
                hasher.update(&lexer.buffer()[before..before + n]);
                bytes += n as u64;
            }
        }
        guard.finish(lexer.line())?;
        if require_trailer && !lexer.saw_trailer() {
            return Err(RestoreError::NoTrailer {
                line: lexer.line(),
                offset: bytes,
            });
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            source.finish().await?;
            Ok(ScanReport {
                statements,
                bytes,
                sha256: hex::encode(hasher.finalize()),
            })
        }
        Err(e) => {
            // A stream that failed (pg_restore's exit status) explains a
            // lexer error better than the lexer does.
            let stream = matches!(
                e,
                RestoreError::Lex(_)
                    | RestoreError::TruncatedCopy { .. }
                    | RestoreError::NoTrailer { .. }
                    | RestoreError::Unfinished { .. }
            );
            if stream
                && let Ok(Err(se)) =
                    tokio::time::timeout(std::time::Duration::from_secs(5), source.finish()).await
            {
                return Err(RestoreError::Source(se));
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `\connect` refused inside `\restrict` is shown as its line.
    #[test]
    fn a_refused_connect_shows_the_line_not_a_debug_string() {
        let mut g = Guard::new(Policy::new("app__restore_x"));
        g.meta(MetaCommand::Restrict { key: "k1".into() }, 1, 0)
            .unwrap();
        let e = g
            .meta(
                MetaCommand::Connect {
                    dbname: Some("postgres".into()),
                },
                7,
                90,
            )
            .unwrap_err();
        match &e {
            RestoreError::Refused {
                line, first_line, ..
            } => {
                assert_eq!(*line, 7);
                assert_eq!(first_line, "\\connect postgres");
            }
            other => panic!("{other:?}"),
        }
        let shown = e.to_string();
        assert!(shown.contains("\\connect postgres"), "{shown}");
        assert!(!shown.contains("Connect {"), "{shown}");
        assert!(!shown.contains("Some("), "{shown}");
    }
}
