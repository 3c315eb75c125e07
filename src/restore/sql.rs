//! SQL helpers for the restore: the one identifier/literal quoting helper,
//! a small tokenizer, and the classification of pg_dump statements that
//! decides where a statement may run. It never executes anything.

use std::fmt;

/// `"name"` with `"` doubled: the one way the restore quotes an identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

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

/// Where a statement may run, decided from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A session setting (`SET x`, `RESET x`, `set_config('x', v, false)`):
    /// replayed on every connection of the restore.
    Session { name: String },
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
    /// Anything else.
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

fn words_at(toks: &[(Tok<'_>, usize, usize)], i: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| toks.get(i + k).is_some_and(|t| t.0.is_word(w)))
}

/// Classifies a complete statement.
pub fn classify(sql: &str) -> Class {
    let toks = tokenize(sql);
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    let Some((first, _, _)) = toks.first() else {
        return Class::Other;
    };
    let Tok::Word(first) = first else {
        return Class::Other;
    };
    let first = first.to_ascii_lowercase();
    match first.as_str() {
        "set" | "reset" => classify_set(&toks),
        "begin" | "start" => {
            if first == "start" && !w(1, "transaction") {
                Class::Other
            } else {
                Class::Begin
            }
        }
        "commit" | "end" | "rollback" | "abort" => {
            if w(1, "prepared") {
                Class::Forbidden("a prepared-transaction command".into())
            } else {
                Class::End
            }
        }
        "select" => classify_select(&toks),
        "copy" => Class::Forbidden(
            "a COPY that does not read from stdin (COPY from a file or program runs on the server, COPY TO writes out): pg_dump never writes one".into(),
        ),
        "create" | "alter" | "drop" | "comment" => classify_ddl(sql, &toks, &first),
        "grant" | "revoke" => {
            // GRANT role TO role (no ON): role membership is cluster-wide.
            let on = toks.iter().any(|t| t.0.is_word("on"));
            if on {
                Class::Other
            } else {
                Class::Forbidden(format!(
                    "{} of role membership changes roles, which are shared by every database of the cluster; pg_dump never writes one (pg_dumpall does)",
                    first.to_ascii_uppercase()
                ))
            }
        }
        "reassign" | "vacuum" | "cluster" | "checkpoint" | "load" | "listen" | "notify"
        | "prepare" => {
            if first == "reassign" {
                Class::Forbidden("REASSIGN OWNED changes objects in other databases".into())
            } else {
                Class::Other
            }
        }
        _ => Class::Other,
    }
}

fn classify_set(toks: &[(Tok<'_>, usize, usize)]) -> Class {
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    let reset = w(0, "reset");
    let mut i = 1;
    if w(i, "local") || w(i, "transaction") {
        return Class::Other;
    }
    if w(i, "session") && !w(i + 1, "authorization") && !w(i + 1, "characteristics") {
        i += 1;
    }
    let multi: &[(&[&str], &str)] = &[
        (&["time", "zone"], "timezone"),
        (&["session", "authorization"], "session authorization"),
        (&["session", "characteristics"], "session characteristics"),
        (&["xml", "option"], "xmloption"),
        (&["names"], "client_encoding"),
        (&["schema"], "search_path"),
    ];
    let (name, next) = match multi.iter().find(|(ws, _)| words_at(toks, i, ws)) {
        Some((ws, name)) => ((*name).to_string(), i + ws.len()),
        None => match qname_at("", toks, i) {
            Some((q, _, next)) => (q.0.join("."), next),
            None => return Class::Other,
        },
    };
    if name == "transaction" {
        return Class::Other;
    }
    if name == "client_encoding" && !reset {
        let v = if w(next, "to") || matches!(toks.get(next), Some((Tok::Punct(b'='), _, _))) {
            next + 1
        } else {
            next
        };
        let value = match toks.get(v).map(|t| &t.0) {
            Some(Tok::Str(s)) | Some(Tok::Quoted(s)) => s.clone(),
            Some(Tok::Word(x)) => (*x).to_string(),
            _ => String::new(),
        };
        let norm = value.to_ascii_uppercase().replace(['-', '_'], "");
        if !matches!(norm.as_str(), "UTF8" | "UNICODE" | "SQLASCII" | "DEFAULT") {
            return Class::Forbidden(format!(
                "the dump sets client_encoding to '{value}': lifeline restores UTF8 dumps only; make the dump with 'pg_dump -E UTF8' (or convert it with iconv)"
            ));
        }
    }
    Class::Session { name }
}

fn classify_select(toks: &[(Tok<'_>, usize, usize)]) -> Class {
    // SELECT pg_catalog.set_config('name', 'value', false);
    // SELECT pg_catalog.setval('seq', 42, true);
    let mut i = 1;
    if toks.get(1).is_some_and(|t| t.0.is_word("pg_catalog"))
        && matches!(toks.get(2), Some((Tok::Punct(b'.'), _, _)))
    {
        i = 3;
    }
    let Some((Tok::Word(f), _, _)) = toks.get(i) else {
        return Class::Other;
    };
    let f = f.to_ascii_lowercase();
    if !matches!(toks.get(i + 1), Some((Tok::Punct(b'('), _, _))) {
        return Class::Other;
    }
    match f.as_str() {
        "set_config" => {
            let name = match toks.get(i + 2) {
                Some((Tok::Str(s), _, _)) => s.to_ascii_lowercase(),
                _ => return Class::Other,
            };
            // The third argument: is_local.
            let local = toks[i + 2..]
                .iter()
                .take_while(|t| !matches!(t.0, Tok::Punct(b')')))
                .filter(|t| matches!(t.0, Tok::Word(_)))
                .any(|t| t.0.is_word("true") || t.0.is_word("on"));
            if local {
                Class::Other
            } else {
                Class::Session { name }
            }
        }
        "setval" => Class::SequenceSet,
        _ => Class::Other,
    }
}

const CLUSTER_WIDE: &[&str] = &["database", "role", "user", "group", "tablespace", "system"];

fn classify_ddl(sql: &str, toks: &[(Tok<'_>, usize, usize)], first: &str) -> Class {
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.0.is_word(word));
    if first != "comment" {
        for obj in CLUSTER_WIDE {
            if w(1, obj) {
                return Class::Forbidden(format!(
                    "{} {} changes the cluster outside the target database (the dump was probably made with pg_dump --create or pg_dumpall); lifeline restores one database into a new database and never touches another: make the dump with plain 'pg_dump' (no -C)",
                    first.to_ascii_uppercase(),
                    obj.to_ascii_uppercase()
                ));
            }
        }
    }
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

/// `COPY name [(cols)] FROM stdin [...]`: the table as written (pg_dump's
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
    (toks.get(i)?.0.is_word("from") && toks.get(i + 1)?.0.is_word("stdin")).then_some(raw)
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
    #[case("SET SESSION AUTHORIZATION 'app';", Class::Session { name: "session authorization".into() })]
    #[case("SET search_path TO public, x;", Class::Session { name: "search_path".into() })]
    #[case("SET myapp.flag = 'x';", Class::Session { name: "myapp.flag".into() })]
    #[case("SET LOCAL x = 1;", Class::Other)]
    #[case("RESET ALL;", Class::Session { name: "all".into() })]
    #[case("SELECT pg_catalog.set_config('search_path', '', false);", Class::Session { name: "search_path".into() })]
    #[case("SELECT pg_catalog.set_config('search_path', '', true);", Class::Other)]
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
    fn forbids(#[case] sql: &str) {
        assert!(matches!(classify(sql), Class::Forbidden(_)), "{sql}");
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
