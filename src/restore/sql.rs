//! SQL helpers for the restore: the one identifier/literal quoting helper,
//! a tokenizer, and the allowlist of pg_dump's statement shapes (anything
//! else is Forbidden). It never executes anything.

use std::fmt;

/// `"name"` with `"` doubled: the one identifier quoting (the core's).
pub use crate::engine::preview::quote_ident;

/// A string literal: `'text'` with `'` doubled, or `E'...'` when the text
/// holds a backslash (correct whatever `standard_conforming_strings` is).
pub fn quote_literal(text: &str) -> String {
    if text.contains('\\') {
        format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

pub(crate) fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

pub(crate) fn is_dolq_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// One token of a complete statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// Unquoted word (keyword or identifier), as written.
    Word(&'a str),
    /// Double-quoted identifier, unquoted value.
    Quoted(String),
    /// String constant, value (standard or E'' escapes resolved simply).
    Str(String),
    Num,
    Dollar,
    Punct(u8),
}

impl Tok<'_> {
    pub(crate) fn is_word(&self, w: &str) -> bool {
        matches!(self, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }
    /// The identifier this token names: unquoted words fold to lower case.
    pub(crate) fn ident(&self) -> Option<String> {
        match self {
            Tok::Word(w) => Some(w.to_ascii_lowercase()),
            Tok::Quoted(q) => Some(q.clone()),
            _ => None,
        }
    }
}

/// Tokens with their byte ranges in the statement. Tolerant: never panics,
/// an unterminated quote runs to the end.
pub(crate) fn tokenize(s: &str) -> Vec<(Tok<'_>, usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n + 1);
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            continue;
        }
        if c == b'"' {
            let mut v = Vec::new();
            i += 1;
            while i < b.len() {
                if b[i] == b'"' {
                    if b.get(i + 1) == Some(&b'"') {
                        v.push(b'"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                v.push(b[i]);
                i += 1;
            }
            out.push((
                Tok::Quoted(String::from_utf8_lossy(&v).into_owned()),
                start,
                i,
            ));
            continue;
        }
        if c == b'\'' {
            let escape = matches!(out.last(), Some((Tok::Word(w), _, e)) if *e == i && w.eq_ignore_ascii_case("e"));
            if escape {
                out.pop();
            }
            let mut v = Vec::new();
            i += 1;
            while i < b.len() {
                if escape && b[i] == b'\\' && i + 1 < b.len() {
                    v.push(b[i + 1]);
                    i += 2;
                    continue;
                }
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        v.push(b'\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                v.push(b[i]);
                i += 1;
            }
            out.push((Tok::Str(String::from_utf8_lossy(&v).into_owned()), start, i));
            continue;
        }
        if c == b'$' {
            let mut j = i + 1;
            while j < b.len() && is_dolq_cont(b[j]) && !(j == i + 1 && b[j].is_ascii_digit()) {
                j += 1;
            }
            if j < b.len() && b[j] == b'$' {
                let tag = &b[i..=j];
                let body = j + 1;
                i = memchr::memmem::find(&b[body..], tag).map_or(b.len(), |n| body + n + tag.len());
                out.push((Tok::Dollar, start, i));
                continue;
            }
            out.push((Tok::Punct(b'$'), start, i + 1));
            i += 1;
            continue;
        }
        if is_ident_start(c) {
            while i < b.len() && is_ident_cont(b[i]) {
                i += 1;
            }
            out.push((Tok::Word(s.get(start..i).unwrap_or_default()), start, i));
            continue;
        }
        if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push((Tok::Num, start, i));
            continue;
        }
        out.push((Tok::Punct(c), start, i + 1));
        i += 1;
    }
    out
}

/// A schema-qualified name, each part as the catalog stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QName(pub Vec<String>);

impl fmt::Display for QName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|p| quote_ident(p)).collect();
        f.write_str(&parts.join("."))
    }
}

/// Parses `ident(.ident)*` at `toks[i]`; returns the name, the source text
/// span and the index after it.
pub(crate) fn qname_at(
    s: &str,
    toks: &[(Tok<'_>, usize, usize)],
    i: usize,
) -> Option<(QName, String, usize)> {
    let first = toks.get(i)?;
    let mut parts = vec![first.0.ident()?];
    let mut j = i + 1;
    let mut end = first.2;
    while let (Some((Tok::Punct(b'.'), _, _)), Some(next)) = (toks.get(j), toks.get(j + 1)) {
        let Some(p) = next.0.ident() else { break };
        parts.push(p);
        end = next.2;
        j += 2;
    }
    Some((
        QName(parts),
        s.get(first.1..end).unwrap_or_default().to_string(),
        j,
    ))
}

/// Table lock mode of a post-data statement, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// CREATE INDEX: SHARE lock, runs beside other index builds of the table.
    Shared,
    /// Anything else that changes a table: waits for everything on it.
    Exclusive,
}

/// Where a statement may run, decided from its text. Anything that is not
/// a shape pg_dump (12 to 17) writes is [`Class::Forbidden`]: the filter is
/// an allowlist, never a blocklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A session setting of a parameter pg_dump sets (`SET x`, `RESET x`,
    /// `set_config('x', v, false)`): replayed on every connection.
    Session { name: String },
    /// `SET ROLE` / `SET SESSION AUTHORIZATION` (`setting` names which);
    /// `role` None means back to the session's own role. Replayed like a
    /// session setting; the [`super::scan::Policy`] decides which role.
    Role {
        setting: String,
        role: Option<String>,
    },
    /// `CREATE EXTENSION`: the policy allows only extensions the live
    /// database has.
    Extension { name: String },
    /// `CREATE EVENT TRIGGER`: nothing but other event triggers may follow.
    EventTrigger,
    /// BEGIN / START TRANSACTION.
    Begin,
    /// COMMIT / END / ROLLBACK / ABORT.
    End,
    /// `SELECT pg_catalog.setval(...)`: independent of table data.
    SequenceSet,
    /// `CREATE INDEX`: builds an index named `index` on `table`.
    Index { index: QName, table: QName },
    /// A post-data change of tables (constraint, trigger, ...); `index` is
    /// the index a PRIMARY KEY / UNIQUE / EXCLUDE constraint creates.
    TableDdl {
        tables: Vec<QName>,
        index: Option<QName>,
    },
    /// `ALTER INDEX parent ATTACH PARTITION child`.
    AttachIndex { parent: QName, child: QName },
    /// `COMMENT ON INDEX name`.
    IndexComment { index: QName },
    /// `COMMENT ON CONSTRAINT|TRIGGER name ON table` (pre- or post-data).
    TableComment { table: QName },
    /// Refused: the reason, for the operator.
    Forbidden(String),
    /// Any other statement pg_dump writes (CREATE TABLE, GRANT, ...).
    Other,
}

impl Class {
    /// Statements pg_dump writes in its post-data section.
    pub fn is_post_data(&self) -> bool {
        matches!(
            self,
            Class::Index { .. } | Class::TableDdl { .. } | Class::AttachIndex { .. }
        )
    }
}

type Toks<'a> = [(Tok<'a>, usize, usize)];

fn words_at(toks: &Toks<'_>, i: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| toks.get(i + k).is_some_and(|t| t.0.is_word(w)))
}

fn is_punct(toks: &Toks<'_>, i: usize, p: u8) -> bool {
    matches!(toks.get(i), Some((Tok::Punct(c), _, _)) if *c == p)
}

/// The parameters pg_dump (12 to 17) sets in its output; no other `SET`.
pub const DUMP_SETTINGS: &[&str] = &[
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "transaction_timeout",
    "client_encoding",
    "standard_conforming_strings",
    "check_function_bodies",
    "xmloption",
    "client_min_messages",
    "row_security",
    "default_tablespace",
    "default_table_access_method",
    "default_toast_compression",
    "default_with_oids",
    "search_path",
    "escape_string_warning",
    "synchronous_commit",
    "timezone",
    "datestyle",
    "intervalstyle",
    "extra_float_digits",
    "session_replication_role",
];

/// Cluster-wide objects: shared by every database of the cluster.
const SHARED_KINDS: &[&str] = &[
    "database",
    "role",
    "user",
    "group",
    "tablespace",
    "system",
    "subscription",
    "parameter",
];

/// Object kinds pg_dump creates inside a database.
const CREATE_KINDS: &[&str] = &[
    "schema",
    "table",
    "sequence",
    "index",
    "function",
    "procedure",
    "aggregate",
    "type",
    "domain",
    "trigger",
    "rule",
    "policy",
    "publication",
    "collation",
    "conversion",
    "operator",
    "cast",
    "server",
    "statistics",
    "transform",
    "view",
    "foreign",
    "materialized",
    "text",
    "access",
    "language",
];

/// Object kinds pg_dump alters inside a database.
const ALTER_KINDS: &[&str] = &[
    "aggregate",
    "collation",
    "conversion",
    "default",
    "domain",
    "event",
    "foreign",
    "function",
    "index",
    "language",
    "procedural",
    "large",
    "materialized",
    "operator",
    "policy",
    "procedure",
    "publication",
    "routine",
    "rule",
    "schema",
    "sequence",
    "server",
    "statistics",
    "table",
    "text",
    "trigger",
    "type",
    "view",
];

fn forbid(why: impl Into<String>) -> Class {
    Class::Forbidden(why.into())
}

fn shared_refusal(verb: &str, kind: &str) -> Class {
    forbid(format!(
        "{} {} changes the cluster outside the target database (roles, databases, tablespaces, subscriptions and server settings are shared by every database; the dump was probably made with pg_dump --create or pg_dumpall, or was altered); lifeline restores one database into a new database and never touches another: make the dump with plain 'pg_dump' (no -C)",
        verb.to_ascii_uppercase(),
        kind.to_ascii_uppercase()
    ))
}

/// Classifies a complete statement.
pub fn classify(sql: &str) -> Class {
    let mut toks = tokenize(sql);
    while matches!(toks.last(), Some((Tok::Punct(b';'), _, _))) {
        toks.pop();
    }
    let Some((Tok::Word(first), _, _)) = toks.first() else {
        return forbid("a statement that does not start with a keyword: pg_dump never writes one");
    };
    let first = first.to_ascii_lowercase();
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    match first.as_str() {
        "set" | "reset" => classify_set(&toks),
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" => classify_txn(&toks, &first),
        "select" => classify_select(&toks),
        "copy" => forbid(
            "a COPY that does not read from stdin (COPY from a file or program runs on the server, COPY TO writes out): pg_dump writes only 'COPY table (columns) FROM stdin;'",
        ),
        "create" => match create_refusal(&toks) {
            Some(c) => c,
            None => classify_ddl(sql, &toks, &first),
        },
        "alter" => match alter_refusal(&toks) {
            Some(c) => c,
            None => classify_ddl(sql, &toks, &first),
        },
        "drop" => {
            if w(1, "owned") {
                return forbid("DROP OWNED drops objects of a role in the whole cluster's view");
            }
            let kind = toks.get(1).and_then(|t| t.0.ident()).unwrap_or_default();
            if SHARED_KINDS.contains(&kind.as_str()) && !w(2, "mapping") {
                return shared_refusal("drop", &kind);
            }
            Class::Other
        }
        "comment" => {
            let kind = toks.get(2).and_then(|t| t.0.ident()).unwrap_or_default();
            if !w(1, "on") {
                return forbid("COMMENT without ON");
            }
            if SHARED_KINDS.contains(&kind.as_str()) {
                if kind == "database" {
                    return forbid(
                        "COMMENT ON DATABASE: the dump was made with pg_dump --create; lifeline keeps its own completeness marker there: make the dump without -C",
                    );
                }
                return shared_refusal("comment on", &kind);
            }
            classify_ddl(sql, &toks, &first)
        }
        "security" => {
            let on = toks.iter().position(|t| t.0.is_word("on"));
            let kind = on
                .and_then(|i| toks.get(i + 1))
                .and_then(|t| t.0.ident())
                .unwrap_or_default();
            if !w(1, "label") || on.is_none() {
                return forbid("not a SECURITY LABEL statement pg_dump writes");
            }
            if SHARED_KINDS.contains(&kind.as_str()) {
                return shared_refusal("security label on", &kind);
            }
            Class::Other
        }
        "grant" | "revoke" => classify_grant(&toks, &first),
        "truncate" => Class::Other,
        "refresh" => {
            if words_at(&toks, 1, &["materialized", "view"]) {
                Class::Other
            } else {
                forbid("not a REFRESH MATERIALIZED VIEW")
            }
        }
        "insert" => classify_insert(&toks),
        "do" => forbid(
            "a DO block runs arbitrary code with the restore session's privileges; pg_dump never writes one",
        ),
        "update" | "delete" | "merge" => forbid(format!(
            "{} changes existing rows (of catalogs or other tables); pg_dump never writes one",
            first.to_ascii_uppercase()
        )),
        "reassign" => forbid("REASSIGN OWNED changes objects in other databases"),
        "load" => forbid("LOAD loads a shared library into the server"),
        _ => forbid(format!(
            "'{}' is not a statement pg_dump writes; lifeline restores only what pg_dump writes",
            first.to_ascii_uppercase()
        )),
    }
}

fn classify_txn(toks: &Toks<'_>, first: &str) -> Class {
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    let (class, mut i) = match first {
        "begin" => (Class::Begin, 1),
        "start" if w(1, "transaction") => (Class::Begin, 2),
        "commit" | "end" | "rollback" | "abort" => (Class::End, 1),
        _ => return forbid("not a transaction statement pg_dump writes"),
    };
    if w(i, "work") || (w(i, "transaction") && first != "start") {
        i += 1;
    }
    if i < toks.len() {
        return forbid(format!(
            "'{}' with more than BEGIN/COMMIT (prepared transactions, savepoints, options): pg_dump writes only plain BEGIN and COMMIT",
            first.to_ascii_uppercase()
        ));
    }
    class
}

/// The value of a SET: a literal, a word or a quoted name.
fn set_value(toks: &Toks<'_>, i: usize) -> Option<String> {
    let i = if toks.get(i).is_some_and(|t| t.0.is_word("to")) || is_punct(toks, i, b'=') {
        i + 1
    } else {
        i
    };
    match toks.get(i).map(|t| &t.0) {
        Some(Tok::Str(s)) | Some(Tok::Quoted(s)) => Some(s.clone()),
        Some(Tok::Word(x)) => Some((*x).to_string()),
        _ => None,
    }
}

fn classify_set(toks: &Toks<'_>) -> Class {
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    let reset = w(0, "reset");
    let mut i = 1;
    if w(i, "local") || w(i, "transaction") || w(i, "constraints") {
        return forbid("SET LOCAL / SET TRANSACTION / SET CONSTRAINTS: pg_dump never writes them");
    }
    if w(i, "session") && w(i + 1, "characteristics") {
        return forbid("SET SESSION CHARACTERISTICS: pg_dump never writes it");
    }
    if words_at(toks, i, &["session", "authorization"]) || w(i, "role") {
        let (setting, next) = if w(i, "role") {
            ("role", i + 1)
        } else {
            ("session authorization", i + 2)
        };
        let role = if reset {
            None
        } else {
            match set_value(toks, next) {
                Some(v)
                    if matches!(toks.get(next).map(|t| &t.0), Some(Tok::Word(_)))
                        && (v.eq_ignore_ascii_case("none")
                            || v.eq_ignore_ascii_case("default")) =>
                {
                    None
                }
                Some(v) => Some(match toks.get(next).map(|t| &t.0) {
                    Some(Tok::Word(_)) => v.to_ascii_lowercase(),
                    _ => v,
                }),
                None => return forbid("SET ROLE without a role"),
            }
        };
        return Class::Role {
            setting: setting.into(),
            role,
        };
    }
    if w(i, "session") {
        i += 1;
    }
    let multi: &[(&[&str], &str)] = &[
        (&["time", "zone"], "timezone"),
        (&["xml", "option"], "xmloption"),
        (&["names"], "client_encoding"),
        (&["schema"], "search_path"),
    ];
    let (name, next) = match multi.iter().find(|(ws, _)| words_at(toks, i, ws)) {
        Some((ws, name)) => ((*name).to_string(), i + ws.len()),
        None => match qname_at("", toks, i) {
            Some((q, _, next)) => (q.0.join("."), next),
            None => return forbid("SET without a parameter name"),
        },
    };
    if !DUMP_SETTINGS.contains(&name.as_str()) {
        return forbid(format!(
            "{} of '{name}': pg_dump sets only its own output parameters ({})",
            if reset { "RESET" } else { "SET" },
            DUMP_SETTINGS.join(", ")
        ));
    }
    if name == "client_encoding" && !reset {
        let value = set_value(toks, next).unwrap_or_default();
        let norm = value.to_ascii_uppercase().replace(['-', '_'], "");
        if !matches!(norm.as_str(), "UTF8" | "UNICODE" | "SQLASCII" | "DEFAULT") {
            return forbid(format!(
                "the dump sets client_encoding to '{value}': lifeline restores UTF8 dumps only; make the dump with 'pg_dump -E UTF8' (or convert it with iconv)"
            ));
        }
    }
    Class::Session { name }
}

/// Only constants: strings, numbers, signs, commas, true/false/null.
fn literal_args(toks: &Toks<'_>) -> bool {
    toks.iter().all(|t| match &t.0 {
        Tok::Str(_) | Tok::Num => true,
        Tok::Punct(c) => matches!(c, b',' | b'-' | b'+'),
        Tok::Word(_) => t.0.is_word("true") || t.0.is_word("false") || t.0.is_word("null"),
        _ => false,
    })
}

/// The pg_catalog functions pg_dump calls, all with constant arguments.
const DUMP_FUNCTIONS: &[&str] = &[
    "set_config",
    "setval",
    "lo_create",
    "lo_open",
    "lowrite",
    "lo_close",
];

fn classify_select(toks: &Toks<'_>) -> Class {
    // SELECT pg_catalog.f(constants) and nothing else.
    let shape = toks.get(1).is_some_and(|t| t.0.is_word("pg_catalog"))
        && is_punct(toks, 2, b'.')
        && is_punct(toks, 4, b'(')
        && is_punct(toks, toks.len().saturating_sub(1), b')')
        && toks.len() >= 6;
    let f = match toks.get(3) {
        Some((Tok::Word(f), _, _)) if shape => f.to_ascii_lowercase(),
        _ => {
            return forbid(
                "a SELECT other than pg_dump's 'SELECT pg_catalog.set_config|setval|lo_create|lo_open|lowrite|lo_close(constants)': it can call any function with the restore session's privileges",
            );
        }
    };
    if !DUMP_FUNCTIONS.contains(&f.as_str()) {
        return forbid(format!(
            "SELECT pg_catalog.{f}(...): pg_dump calls only {}; any other function runs with the restore session's privileges",
            DUMP_FUNCTIONS.join(", ")
        ));
    }
    let args = &toks[5..toks.len() - 1];
    if !literal_args(args) {
        return forbid(format!(
            "SELECT pg_catalog.{f}(...) with arguments that are not constants: pg_dump writes only constants there"
        ));
    }
    match f.as_str() {
        "set_config" => {
            let name = match args.first() {
                Some((Tok::Str(s), _, _)) => s.to_ascii_lowercase(),
                _ => return forbid("set_config without a parameter name"),
            };
            let local = args.last().is_some_and(|t| t.0.is_word("true"));
            if local || !DUMP_SETTINGS.contains(&name.as_str()) {
                return forbid(format!(
                    "set_config('{name}', ...){}: pg_dump sets only its own output parameters",
                    if local { " local to a transaction" } else { "" }
                ));
            }
            Class::Session { name }
        }
        "setval" => Class::SequenceSet,
        _ => Class::Other,
    }
}

/// `INSERT INTO t [(cols)] [OVERRIDING SYSTEM VALUE] VALUES (constants), ...
/// [ON CONFLICT DO NOTHING]` as `pg_dump --inserts` writes it.
fn classify_insert(toks: &Toks<'_>) -> Class {
    let bad = || {
        forbid(
            "an INSERT that is not pg_dump --inserts' 'INSERT INTO table VALUES (constants)': expressions in it run with the restore session's privileges",
        )
    };
    if !toks.get(1).is_some_and(|t| t.0.is_word("into")) {
        return bad();
    }
    let Some((_, _, mut i)) = qname_at("", toks, 2) else {
        return bad();
    };
    if is_punct(toks, i, b'(') {
        while i < toks.len() && !is_punct(toks, i, b')') {
            if !matches!(
                toks[i].0,
                Tok::Word(_) | Tok::Quoted(_) | Tok::Punct(b',' | b'(')
            ) {
                return bad();
            }
            i += 1;
        }
        i += 1;
    }
    if words_at(toks, i, &["overriding", "system", "value"]) {
        i += 3;
    }
    if !toks.get(i).is_some_and(|t| t.0.is_word("values")) {
        return bad();
    }
    let mut end = toks.len();
    if end >= i + 4 && words_at(toks, end - 4, &["on", "conflict", "do", "nothing"]) {
        end -= 4;
    }
    let values = toks.get(i + 1..end).unwrap_or(&[]);
    let ok = !values.is_empty()
        && values.iter().enumerate().all(|(k, t)| match &t.0 {
            Tok::Str(_) | Tok::Num => true,
            Tok::Punct(c) => matches!(c, b',' | b'-' | b'+' | b'(' | b')'),
            Tok::Word(_) if is_punct(toks, i + 2 + k, b'(') => false,
            Tok::Word(_) => {
                t.0.is_word("true")
                    || t.0.is_word("false")
                    || t.0.is_word("null")
                    || t.0.is_word("default")
                    || ((t.0.is_word("b") || t.0.is_word("x"))
                        && matches!(toks.get(i + 2 + k), Some((Tok::Str(_), s, _)) if *s == t.2))
            }
            _ => false,
        });
    if ok { Class::Other } else { bad() }
}

fn classify_grant(toks: &Toks<'_>, first: &str) -> Class {
    let mut depth = 0usize;
    let mut on = None;
    for (k, t) in toks.iter().enumerate() {
        match t.0 {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            _ if depth == 0 && t.0.is_word("on") => {
                on = Some(k);
                break;
            }
            _ => {}
        }
    }
    let Some(on) = on else {
        return forbid(format!(
            "{} of role membership changes roles, which are shared by every database of the cluster; pg_dump never writes one (pg_dumpall does)",
            first.to_ascii_uppercase()
        ));
    };
    let kind = toks
        .get(on + 1)
        .and_then(|t| t.0.ident())
        .unwrap_or_default();
    if SHARED_KINDS.contains(&kind.as_str()) {
        return shared_refusal(&format!("{first} ... on"), &kind);
    }
    Class::Other
}

/// Word `w` at paren depth 0 from `from` on: its index.
fn top_level_word(toks: &Toks<'_>, from: usize, w: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(from) {
        match t.0 {
            Tok::Punct(b'(') => depth += 1,
            Tok::Punct(b')') => depth = depth.saturating_sub(1),
            _ if depth == 0 && t.0.is_word(w) => return Some(k),
            _ => {}
        }
    }
    None
}

/// A partition bound (`FOR VALUES FROM (...) TO (...)`, `IN (...)`,
/// `WITH (MODULUS m, REMAINDER r)`, `DEFAULT`) of constants only: a bound
/// expression runs when the table is created.
fn bound_refusal(toks: &Toks<'_>) -> Option<Class> {
    let start = top_level_word(toks, 0, "values")?;
    let end = top_level_word(toks, start, "partition").unwrap_or(toks.len());
    let ok = toks[start + 1..end].iter().all(|t| match &t.0 {
        Tok::Str(_) | Tok::Num | Tok::Quoted(_) => true,
        Tok::Punct(c) => matches!(c, b',' | b'-' | b'+' | b'(' | b')' | b':'),
        Tok::Word(_) => [
            "from",
            "to",
            "in",
            "with",
            "modulus",
            "remainder",
            "minvalue",
            "maxvalue",
            "null",
            "true",
            "false",
            "default",
        ]
        .iter()
        .any(|k| t.0.is_word(k)),
        _ => false,
    });
    (!ok).then(|| {
        forbid("a partition bound that is not constants: a bound expression runs when the table is created; pg_dump writes constants there")
    })
}

fn create_refusal(toks: &Toks<'_>) -> Option<Class> {
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    let mut i = 1;
    if words_at(toks, i, &["or", "replace"]) {
        i += 2;
    }
    while [
        "unique",
        "unlogged",
        "trusted",
        "procedural",
        "constraint",
        "default",
        "recursive",
    ]
    .iter()
    .any(|m| w(i, m))
    {
        i += 1;
    }
    let kind = toks.get(i).and_then(|t| t.0.ident()).unwrap_or_default();
    if kind == "user" && w(i + 1, "mapping") {
        return None;
    }
    if SHARED_KINDS.contains(&kind.as_str()) {
        return Some(shared_refusal("create", &kind));
    }
    match kind.as_str() {
        "extension" => {
            let mut k = i + 1;
            if words_at(toks, k, &["if", "not", "exists"]) {
                k += 3;
            }
            let name = toks.get(k).and_then(|t| t.0.ident())?;
            return Some(Class::Extension { name });
        }
        "event" if w(i + 1, "trigger") => return Some(Class::EventTrigger),
        "temp" | "temporary" | "global" | "local" => {
            return Some(forbid("a temporary object: pg_dump never writes one"));
        }
        k if !CREATE_KINDS.contains(&k) => {
            return Some(forbid(format!(
                "CREATE {}: not an object pg_dump creates inside a database",
                k.to_ascii_uppercase()
            )));
        }
        _ => {}
    }
    match kind.as_str() {
        "table" | "foreign" => {
            let t = if kind == "foreign" { i + 2 } else { i + 1 };
            if top_level_word(toks, t, "as").is_some() {
                return Some(forbid(
                    "CREATE TABLE ... AS runs a query; pg_dump never writes one",
                ));
            }
            bound_refusal(toks)
        }
        "materialized" => {
            let n = toks.len();
            if n >= 3 && words_at(toks, n - 3, &["with", "no", "data"]) {
                None
            } else {
                Some(forbid(
                    "CREATE MATERIALIZED VIEW without WITH NO DATA runs its query at once; pg_dump writes WITH NO DATA",
                ))
            }
        }
        "function" | "procedure" => {
            let lang = top_level_word(toks, i, "language")
                .and_then(|k| toks.get(k + 1))
                .and_then(|t| match &t.0 {
                    Tok::Str(s) => Some(s.to_ascii_lowercase()),
                    other => other.ident(),
                })
                .unwrap_or_default();
            matches!(lang.as_str(), "c" | "internal").then(|| {
                forbid(format!(
                    "a function in LANGUAGE {lang} loads code from the server's disk; lifeline restores functions in SQL and procedural languages only (C functions come with extensions the live database has)"
                ))
            })
        }
        "language" => top_level_word(toks, i, "handler").map(|_| {
            forbid("CREATE LANGUAGE with a HANDLER installs a C handler; languages come with extensions")
        }),
        _ => None,
    }
}

fn alter_refusal(toks: &Toks<'_>) -> Option<Class> {
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    let kind = toks.get(1).and_then(|t| t.0.ident()).unwrap_or_default();
    if kind == "user" && w(2, "mapping") {
        return None;
    }
    if SHARED_KINDS.contains(&kind.as_str()) {
        return Some(shared_refusal("alter", &kind));
    }
    if kind == "extension" {
        return Some(forbid(
            "ALTER EXTENSION runs the extension's scripts; pg_dump writes it only for binary upgrades",
        ));
    }
    if !ALTER_KINDS.contains(&kind.as_str()) {
        return Some(forbid(format!(
            "ALTER {}: not something pg_dump alters inside a database",
            kind.to_ascii_uppercase()
        )));
    }
    if kind == "table" || kind == "foreign" {
        // A column type change rewrites rows through USING expressions.
        for k in 0..toks.len() {
            if words_at(toks, k, &["set", "data", "type"])
                || (w(k, "alter")
                    && k > 1
                    && if w(k + 1, "column") {
                        w(k + 3, "type")
                    } else {
                        w(k + 2, "type")
                    })
            {
                return Some(forbid(
                    "ALTER TABLE ... ALTER COLUMN ... TYPE rewrites rows through expressions; pg_dump never writes it",
                ));
            }
        }
        if top_level_word(toks, 0, "attach").is_some() {
            return bound_refusal(toks);
        }
    }
    None
}

fn classify_ddl(sql: &str, toks: &Toks<'_>, first: &str) -> Class {
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    match first {
        "create" => {
            let mut i = 1;
            if w(i, "unique") {
                i += 1;
            }
            if w(i, "index") {
                i += 1;
                if w(i, "concurrently") {
                    i += 1;
                }
                if words_at(toks, i, &["if", "not", "exists"]) {
                    i += 3;
                }
                let index_name = if w(i, "on") {
                    None
                } else {
                    let n = toks.get(i).and_then(|t| t.0.ident());
                    i += 1;
                    n
                };
                if !w(i, "on") {
                    return Class::Other;
                }
                i += 1;
                if w(i, "only") {
                    i += 1;
                }
                let Some((table, _, _)) = qname_at(sql, toks, i) else {
                    return Class::Other;
                };
                if table.0.len() < 2 {
                    return Class::Other;
                }
                let Some(index_name) = index_name else {
                    return Class::Other;
                };
                let index = QName(vec![table.0[0].clone(), index_name]);
                return Class::Index { index, table };
            }
            let mut i = 1;
            if w(i, "constraint") {
                i += 1;
            }
            if w(i, "trigger") {
                // CREATE [CONSTRAINT] TRIGGER name ... ON table [FROM table] ...
                let mut tables = Vec::new();
                let mut k = i + 2;
                while k < toks.len() {
                    if toks[k].0.is_word("on") || toks[k].0.is_word("from") {
                        match qname_at(sql, toks, k + 1) {
                            Some((t, _, next)) if t.0.len() >= 2 => {
                                tables.push(t);
                                k = next;
                                if tables.len() == 2 || toks.get(k).is_none() {
                                    break;
                                }
                                continue;
                            }
                            _ => return Class::Other,
                        }
                    }
                    if toks[k].0.is_word("execute") || toks[k].0.is_word("for") {
                        if toks[k].0.is_word("execute") {
                            break;
                        }
                        if tables.is_empty() {
                            return Class::Other;
                        }
                    }
                    k += 1;
                }
                if tables.is_empty() {
                    return Class::Other;
                }
                return Class::TableDdl {
                    tables,
                    index: None,
                };
            }
            Class::Other
        }
        "alter" => {
            if w(1, "index") {
                // ALTER INDEX parent ATTACH PARTITION child
                let Some((parent, _, i)) = qname_at(sql, toks, 2) else {
                    return Class::Other;
                };
                if words_at(toks, i, &["attach", "partition"])
                    && let Some((child, _, _)) = qname_at(sql, toks, i + 2)
                {
                    return Class::AttachIndex { parent, child };
                }
                return Class::Other;
            }
            if !w(1, "table") {
                return Class::Other;
            }
            let mut i = 2;
            if words_at(toks, i, &["if", "exists"]) {
                i += 2;
            }
            if w(i, "only") {
                i += 1;
            }
            let Some((table, _, i)) = qname_at(sql, toks, i) else {
                return Class::Other;
            };
            if table.0.len() < 2 {
                return Class::Other;
            }
            if w(i, "add") && w(i + 1, "constraint") {
                let cname = toks.get(i + 2).and_then(|t| t.0.ident());
                let k = i + 3;
                if w(k, "foreign") && w(k + 1, "key") {
                    let Some(r) = (k..toks.len()).find(|&r| toks[r].0.is_word("references")) else {
                        return Class::Other;
                    };
                    let Some((refd, _, _)) = qname_at(sql, toks, r + 1) else {
                        return Class::Other;
                    };
                    if refd.0.len() < 2 {
                        return Class::Other;
                    }
                    return Class::TableDdl {
                        tables: vec![table, refd],
                        index: None,
                    };
                }
                let makes_index = w(k, "primary") || w(k, "unique") || w(k, "exclude");
                if makes_index || w(k, "check") {
                    let index = match (makes_index, cname) {
                        (true, Some(c)) => Some(QName(vec![table.0[0].clone(), c])),
                        _ => None,
                    };
                    return Class::TableDdl {
                        tables: vec![table],
                        index,
                    };
                }
                return Class::Other;
            }
            if (w(i, "cluster") && w(i + 1, "on")) || (w(i, "replica") && w(i + 1, "identity")) {
                return Class::TableDdl {
                    tables: vec![table],
                    index: None,
                };
            }
            Class::Other
        }
        "comment" => {
            if w(1, "on") && w(2, "database") {
                return Class::Forbidden(
                    "COMMENT ON DATABASE: the dump was made with pg_dump --create; lifeline keeps its own completeness marker there: make the dump without -C".into(),
                );
            }
            if w(1, "on")
                && w(2, "index")
                && let Some((index, _, _)) = qname_at(sql, toks, 3)
            {
                return Class::IndexComment { index };
            }
            if w(1, "on")
                && (w(2, "constraint") || w(2, "trigger"))
                && w(4, "on")
                && let Some((table, _, _)) = qname_at(sql, toks, 5)
                && table.0.len() >= 2
            {
                return Class::TableComment { table };
            }
            Class::Other
        }
        _ => Class::Other,
    }
}

/// `COPY name [(cols)] FROM stdin;` and nothing more: the table as written (pg_dump's
/// own quoting, e.g. `public."User"`), else None.
pub fn copy_from_stdin_table(sql: &str) -> Option<String> {
    let toks = tokenize(sql);
    if !toks.first()?.0.is_word("copy") {
        return None;
    }
    let (_, raw, mut i) = qname_at(sql, &toks, 1)?;
    if matches!(toks.get(i), Some((Tok::Punct(b'('), _, _))) {
        let mut depth = 0usize;
        while let Some((t, _, _)) = toks.get(i) {
            match t {
                Tok::Punct(b'(') => depth += 1,
                Tok::Punct(b')') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    // Nothing after `FROM stdin` but the `;`: a WHERE clause would run an
    // expression for every row.
    let rest_ok = toks
        .get(i + 2..)
        .unwrap_or(&[])
        .iter()
        .all(|t| matches!(t.0, Tok::Punct(b';')));
    (toks.get(i)?.0.is_word("from") && toks.get(i + 1)?.0.is_word("stdin") && rest_ok)
        .then_some(raw)
}

/// Functions with effects outside the database's tables, which a READ
/// ONLY transaction does not stop (ending sessions, files, settings,
/// replication, connections out).
const SIDE_EFFECT_FUNCTIONS: &[&str] = &[
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_promote",
    "pg_create_restore_point",
    "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot",
    "pg_drop_replication_slot",
    "pg_replication_origin_create",
    "pg_replication_origin_drop",
    "pg_log_backend_memory_contexts",
    "pg_file_write",
    "pg_file_unlink",
    "pg_file_rename",
    "lo_export",
    "lo_import",
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_connect_u",
    "dblink_send_query",
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_notify",
];

/// Why `sql` cannot run as a non-destructive (read-only) step, if so: it
/// must be one statement, with no SET/RESET, transaction control, COPY, or
/// call of a function with effects outside the tables. The server's READ
/// ONLY transaction stops every write to tables; this stops what it does not.
pub fn read_only_refusal(sql: &str) -> Option<String> {
    let mut toks = tokenize(sql);
    while matches!(toks.last(), Some((Tok::Punct(b';'), _, _))) {
        toks.pop();
    }
    if toks.is_empty() {
        return Some("the statement is empty".into());
    }
    if toks.iter().any(|t| matches!(t.0, Tok::Punct(b';'))) {
        return Some("it holds more than one statement: a read-only step runs exactly one".into());
    }
    let first = match &toks[0].0 {
        Tok::Word(w) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    let refused_first: &[(&[&str], &str)] = &[
        (&["set", "reset"], "SET/RESET could leave read-only mode"),
        (
            &[
                "begin",
                "start",
                "commit",
                "end",
                "rollback",
                "abort",
                "savepoint",
                "release",
                "prepare",
            ],
            "transaction control would end lifeline's READ ONLY transaction",
        ),
        (
            &["copy"],
            "COPY runs programs or writes files on the server (COPY ... TO PROGRAM)",
        ),
        (
            &["do", "call", "execute"],
            "it runs procedural code, which a READ ONLY transaction does not confine (EXECUTE 'COPY ... TO PROGRAM ...')",
        ),
        (
            &[
                "checkpoint",
                "load",
                "listen",
                "notify",
                "discard",
                "lock",
                "vacuum",
                "analyze",
                "cluster",
                "reindex",
            ],
            "it acts on the server outside a read-only query",
        ),
    ];
    for (words, why) in refused_first {
        if words.contains(&first.as_str()) {
            return Some(format!("'{}': {why}", first.to_ascii_uppercase()));
        }
    }
    for (k, t) in toks.iter().enumerate() {
        if let Some(name) = t.0.ident()
            && SIDE_EFFECT_FUNCTIONS.contains(&name.as_str())
            && is_punct(&toks, k + 1, b'(')
        {
            return Some(format!(
                "it calls {name}(), which acts outside the database's tables (a READ ONLY transaction does not stop it)"
            ));
        }
        if t.0.is_word("copy") {
            return Some("COPY inside the statement".into());
        }
    }
    None
}

/// `SET standard_conforming_strings = on|off` (TO, quoted, true/false):
/// the new value, else None.
pub fn standard_conforming_strings(sql: &str) -> Option<bool> {
    let toks = tokenize(sql);
    if !toks.first()?.0.is_word("set") {
        return None;
    }
    let mut i = 1;
    if toks.get(i)?.0.is_word("session") {
        i += 1;
    }
    if !toks.get(i)?.0.is_word("standard_conforming_strings") {
        return None;
    }
    let v = match &toks.get(i + 2)?.0 {
        Tok::Word(w) => w.to_ascii_lowercase(),
        Tok::Str(s) => s.to_ascii_lowercase(),
        _ => return None,
    };
    match v.as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn q(parts: &[&str]) -> QName {
        QName(parts.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("we\"ird;name"), "\"we\"\"ird;name\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b'"), "E'a\\\\b'''");
    }

    #[rstest]
    #[case("SET statement_timeout = 0;", Class::Session { name: "statement_timeout".into() })]
    #[case("SET default_tablespace = '';", Class::Session { name: "default_tablespace".into() })]
    #[case("SET SESSION AUTHORIZATION 'app';", Class::Role { setting: "session authorization".into(), role: Some("app".into()) })]
    #[case("SET search_path TO public, x;", Class::Session { name: "search_path".into() })]
    #[case("SET SESSION AUTHORIZATION DEFAULT;", Class::Role { setting: "session authorization".into(), role: None })]
    #[case("SET ROLE App;", Class::Role { setting: "role".into(), role: Some("app".into()) })]
    #[case("RESET ROLE;", Class::Role { setting: "role".into(), role: None })]
    #[case("SELECT pg_catalog.set_config('search_path', '', false);", Class::Session { name: "search_path".into() })]
    #[case("SELECT pg_catalog.lo_open('16385', 131072);", Class::Other)]
    #[case("SELECT pg_catalog.lowrite(0, '\\x4142');", Class::Other)]
    #[case("CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;", Class::Extension { name: "dblink".into() })]
    #[case(
        "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION public.f();",
        Class::EventTrigger
    )]
    #[case(
        "INSERT INTO public.t (a, \"b c\") OVERRIDING SYSTEM VALUE VALUES (1, 'x''y'), (-2.5, NULL), (3, B'01') ON CONFLICT DO NOTHING;",
        Class::Other
    )]
    #[case(
        "CREATE MATERIALIZED VIEW public.m AS\n SELECT 1 AS a\n  WITH NO DATA;",
        Class::Other
    )]
    #[case(
        "CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES FROM ('2020-01-01') TO (MAXVALUE);",
        Class::Other
    )]
    #[case(
        "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'x');",
        Class::Other
    )]
    #[case(
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ SELECT pg_terminate_backend(1)::int $$;",
        Class::Other
    )]
    #[case(
        "ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('public.s'::regclass);",
        Class::Other
    )]
    #[case("ALTER LARGE OBJECT 16385 OWNER TO app;", Class::Other)]
    #[case(
        "ALTER TABLE ONLY public.t ALTER COLUMN type SET DEFAULT 'x'::text;",
        Class::Other
    )]
    #[case(
        "ALTER TABLE ONLY public.t ALTER type SET STATISTICS 100;",
        Class::Other
    )]
    #[case(
        "ALTER TABLE ONLY public.t ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.t_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1);",
        Class::Other
    )]
    #[case(
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO app;",
        Class::Other
    )]
    #[case(
        "CREATE PUBLICATION p FOR ALL TABLES WITH (publish = 'insert, update');",
        Class::Other
    )]
    #[case("SET transaction_timeout = 0;", Class::Session { name: "transaction_timeout".into() })]
    #[case("REVOKE ALL ON SCHEMA public FROM PUBLIC;", Class::Other)]
    #[case("SECURITY LABEL FOR dummy ON TABLE public.t IS 'x';", Class::Other)]
    #[case("DROP TABLE IF EXISTS public.t;", Class::Other)]
    #[case("DROP USER MAPPING IF EXISTS FOR app SERVER s;", Class::Other)]
    #[case("REFRESH MATERIALIZED VIEW public.m;", Class::Other)]
    #[case("SELECT pg_catalog.setval('public.s', 42, true);", Class::SequenceSet)]
    #[case("BEGIN;", Class::Begin)]
    #[case("COMMIT;", Class::End)]
    #[case("CREATE INDEX c_id_idx ON public.c USING btree (id);",
        Class::Index { index: q(&["public", "c_id_idx"]), table: q(&["public", "c"]) })]
    #[case("CREATE UNIQUE INDEX \"U\" ON ONLY \"S\".\"User\" USING btree (id);",
        Class::Index { index: q(&["S", "U"]), table: q(&["S", "User"]) })]
    #[case("ALTER TABLE ONLY public.\"weird;name\"\n    ADD CONSTRAINT \"weird;name_pkey\" PRIMARY KEY (id);",
        Class::TableDdl { tables: vec![q(&["public", "weird;name"])], index: Some(q(&["public", "weird;name_pkey"])) })]
    #[case("ALTER TABLE ONLY public.c\n    ADD CONSTRAINT c_id_fkey FOREIGN KEY (id) REFERENCES public.\"weird;name\"(id);",
        Class::TableDdl { tables: vec![q(&["public", "c"]), q(&["public", "weird;name"])], index: None })]
    #[case("CREATE TRIGGER t BEFORE INSERT OR UPDATE OF a, b ON public.x FOR EACH ROW EXECUTE FUNCTION public.f();",
        Class::TableDdl { tables: vec![q(&["public", "x"])], index: None })]
    #[case("ALTER INDEX public.p_idx ATTACH PARTITION public.c_idx;",
        Class::AttachIndex { parent: q(&["public", "p_idx"]), child: q(&["public", "c_idx"]) })]
    #[case("COMMENT ON INDEX public.i IS 'x';", Class::IndexComment { index: q(&["public", "i"]) })]
    #[case("COMMENT ON CONSTRAINT c ON public.t IS 'x';", Class::TableComment { table: q(&["public", "t"]) })]
    #[case("GRANT SELECT ON TABLE public.t TO app;", Class::Other)]
    #[case("ALTER TABLE public.x OWNER TO app;", Class::Other)]
    #[case("CREATE TABLE public.x (a int);", Class::Other)]
    fn classifies(#[case] sql: &str, #[case] want: Class) {
        assert_eq!(classify(sql), want, "{sql}");
    }

    #[rstest]
    #[case("CREATE DATABASE app WITH TEMPLATE = template0;")]
    #[case("ALTER DATABASE app OWNER TO x;")]
    #[case("DROP DATABASE app;")]
    #[case("CREATE ROLE app;")]
    #[case("ALTER ROLE app PASSWORD 'x';")]
    #[case("COPY public.t FROM '/etc/passwd';")]
    #[case("COPY public.t FROM PROGRAM 'rm -rf /';")]
    #[case("COMMENT ON DATABASE app IS 'x';")]
    #[case("SET client_encoding = 'LATIN1';")]
    #[case("GRANT pg_read_all_data TO app;")]
    #[case("REVOKE admin FROM app;")]
    #[case("SET myapp.flag = 'x';")]
    #[case("SET LOCAL search_path = public;")]
    #[case("RESET ALL;")]
    #[case("SELECT pg_catalog.set_config('search_path', '', true);")]
    #[case("SELECT pg_catalog.set_config('session_preload_libraries', 'x', false);")]
    #[case("DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch /tmp/x'''; END $$;")]
    #[case("do language plpgsql $$ begin null; end $$;")]
    #[case("SELECT dblink_exec('dbname=other', 'DROP DATABASE other');")]
    #[case("SELECT public.dblink_exec('dbname=other', 'DROP DATABASE other');")]
    #[case("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'app';")]
    #[case("SELECT pg_catalog.pg_terminate_backend(42);")]
    #[case("SELECT pg_catalog.lo_export(16385, '/tmp/x');")]
    #[case("SELECT pg_catalog.lo_open(pg_catalog.lo_export(1, '/tmp/x'), 1);")]
    #[case("SELECT pg_catalog.setval('s', (SELECT count(*) FROM pg_stat_activity), true);")]
    #[case("SELECT pg_catalog.binary_upgrade_set_next_pg_type_oid('1'::pg_catalog.oid);")]
    #[case("SELECT 1;")]
    #[case("select pg_catalog.setval('s', 1, true); select pg_sleep(1)")]
    #[case("WITH x AS (SELECT 1) SELECT * FROM x;")]
    #[case("UPDATE pg_database SET datallowconn = false WHERE datname = 'app';")]
    #[case("DELETE FROM public.t;")]
    #[case("INSERT INTO public.t VALUES (pg_terminate_backend(1));")]
    #[case("INSERT INTO public.t SELECT 1;")]
    #[case("INSERT INTO public.t VALUES (1::int);")]
    #[case("ALTER SYSTEM SET shared_buffers = '1GB';")]
    #[case("ALTER DATABASE other RENAME TO gone;")]
    #[case("ALTER DATABASE app CONNECTION LIMIT 0;")]
    #[case("ALTER ROLE postgres VALID UNTIL '2000-01-01';")]
    #[case("ALTER USER postgres NOSUPERUSER;")]
    #[case("CREATE ROLE evil SUPERUSER LOGIN;")]
    #[case("CREATE USER evil;")]
    #[case("CREATE SUBSCRIPTION s CONNECTION 'dbname=other' PUBLICATION p;")]
    #[case("CREATE TABLESPACE t LOCATION '/tmp';")]
    #[case("CREATE TEMP TABLE t (a int);")]
    #[case("CREATE TABLE public.t AS SELECT pg_terminate_backend(1);")]
    #[case("CREATE MATERIALIZED VIEW public.m AS SELECT pg_terminate_backend(1);")]
    #[case("CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES IN (public.f());")]
    #[case("CREATE FUNCTION public.f() RETURNS int AS '/tmp/evil.so', 'f' LANGUAGE c;")]
    #[case("CREATE FUNCTION public.f() RETURNS int LANGUAGE \"internal\" AS 'int4in';")]
    #[case("CREATE LANGUAGE x HANDLER public.h;")]
    #[case("ALTER TABLE public.t ALTER COLUMN a TYPE int USING public.f(a);")]
    #[case("ALTER TABLE public.t ALTER a SET DATA TYPE text;")]
    #[case("ALTER TABLE public.t ALTER COLUMN type TYPE int USING public.f(type);")]
    #[case("ALTER TABLE public.t ALTER type TYPE int;")]
    #[case("ALTER EXTENSION dblink UPDATE;")]
    #[case("GRANT CONNECT ON DATABASE app TO PUBLIC;")]
    #[case("GRANT SET ON PARAMETER work_mem TO app;")]
    #[case("COMMENT ON ROLE postgres IS 'x';")]
    #[case("SECURITY LABEL ON ROLE postgres IS 'x';")]
    #[case("DROP OWNED BY app;")]
    #[case("DROP ROLE app;")]
    #[case("COPY public.t FROM stdin WHERE pg_terminate_backend(1);")]
    #[case("CALL public.p();")]
    #[case("EXPLAIN ANALYZE SELECT 1;")]
    #[case("CHECKPOINT;")]
    #[case("LOAD '/tmp/evil.so';")]
    #[case("VACUUM;")]
    #[case("COMMIT PREPARED 'x';")]
    #[case("BEGIN; DROP TABLE x;")]
    #[case("SAVEPOINT a;")]
    #[case("PREPARE p AS SELECT 1;")]
    #[case("EXECUTE p;")]
    #[case("NOTIFY x;")]
    #[case("LOCK TABLE pg_catalog.pg_authid;")]
    fn forbids(#[case] sql: &str) {
        assert!(matches!(classify(sql), Class::Forbidden(_)), "{sql}");
    }

    const VERBS: &[&str] = &[
        "set", "reset", "begin", "start", "commit", "end", "rollback", "abort", "select", "create",
        "alter", "drop", "comment", "security", "grant", "revoke", "truncate", "refresh", "insert",
    ];

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = classify(&s);
            let _ = copy_from_stdin_table(&s);
        }

        #[test]
        fn unknown_verbs_are_refused(verb in "[a-z]{1,12}", rest in "\\PC{0,80}") {
            proptest::prop_assume!(!VERBS.contains(&verb.as_str()));
            let sql = format!("{verb} {rest}");
            proptest::prop_assert!(matches!(classify(&sql), Class::Forbidden(_)), "{}", sql);
        }

        #[test]
        fn function_calls_in_dump_calls_are_refused(
            f in "(set_config|setval|lo_create|lo_open|lowrite|lo_close)",
            g in "[a-z_]{1,20}",
            arg in "'[a-z]{0,5}'|[0-9]{1,4}",
        ) {
            for sql in [
                format!("SELECT pg_catalog.{f}({arg}, {g}({arg}));"),
                format!("SELECT pg_catalog.{f}({arg}) FROM {g};"),
                format!("SELECT pg_catalog.{f}({arg}), {g}({arg});"),
                format!("SELECT {g}({arg});"),
                "INSERT INTO public.t VALUES ON CONFLICT DO NOTHING;".to_string(),
                format!("INSERT INTO public.t VALUES ({arg}, {g}({arg}));"),
                format!("INSERT INTO public.t VALUES ({arg}, {g} ({arg}));"),
            ] {
                proptest::prop_assert!(matches!(classify(&sql), Class::Forbidden(_)), "{}", sql);
            }
        }
    }

    #[rstest]
    #[case("SET default_transaction_read_only = off; CREATE TABLE x (a int);")]
    #[case("set transaction read write")]
    #[case("RESET default_transaction_read_only")]
    #[case("BEGIN")]
    #[case("COMMIT;")]
    #[case("SELECT 1; DROP TABLE t")]
    #[case("COPY (SELECT 1) TO PROGRAM 'touch /tmp/x'")]
    #[case("WITH x AS (SELECT 1) SELECT * FROM x; COPY t TO '/tmp/x'")]
    #[case("SELECT pg_terminate_backend(pid) FROM pg_stat_activity")]
    #[case("SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false)")]
    #[case("SELECT lo_export(1, '/tmp/x')")]
    #[case("SELECT \"pg_reload_conf\"()")]
    #[case("DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch /tmp/x'''; END $$")]
    #[case("CALL public.p()")]
    #[case("")]
    fn read_only_refuses(#[case] sql: &str) {
        assert!(read_only_refusal(sql).is_some(), "{sql}");
    }

    #[rstest]
    #[case("SELECT count(*) FROM public.t")]
    #[case("SELECT 'a;b', $$x;y$$ -- c;\n")]
    #[case("SELECT set_configured FROM t;")]
    #[case("WITH x AS (SELECT 1) SELECT * FROM x;")]
    fn read_only_allows(#[case] sql: &str) {
        assert_eq!(read_only_refusal(sql), None, "{sql}");
    }

    #[rstest]
    #[case("COPY public.c (id) FROM stdin;", Some("public.c"))]
    #[case(
        "COPY public.\"weird;name\" (id, t) FROM stdin;",
        Some("public.\"weird;name\"")
    )]
    #[case("copy \"S\".\"User\" FROM STDIN;", Some("\"S\".\"User\""))]
    #[case("COPY public.c (id) FROM '/tmp/x';", None)]
    #[case("COPY (SELECT 'FROM stdin') TO stdout;", None)]
    fn copy_detection(#[case] sql: &str, #[case] want: Option<&str>) {
        assert_eq!(copy_from_stdin_table(sql).as_deref(), want);
    }

    #[test]
    fn scs() {
        assert_eq!(
            standard_conforming_strings("SET standard_conforming_strings = off;"),
            Some(false)
        );
        assert_eq!(
            standard_conforming_strings("SET standard_conforming_strings TO 'on';"),
            Some(true)
        );
        assert_eq!(standard_conforming_strings("SET x = off;"), None);
    }
}
