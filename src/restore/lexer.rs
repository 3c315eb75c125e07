//! Streaming lexer for pg_dump plain output, fed in arbitrary chunks: splits
//! statements the way psql does, passes COPY data through in ~1 MiB chunks
//! up to the `\.` line, and reports psql meta-commands. It never executes
//! anything, never panics on input, and its output does not depend on how
//! the input was chunked.

use bytes::{Buf, Bytes, BytesMut};

use super::sql::{
    copy_from_stdin_table, is_dolq_cont, is_ident_cont, is_ident_start, standard_conforming_strings,
};

/// COPY data is handed on in chunks of about this size.
pub const COPY_CHUNK: usize = 1 << 20;
/// Default limit of one statement (the server's own limit is 1 GiB).
pub const MAX_STATEMENT: usize = 256 << 20;

/// One SQL statement, with where it starts in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The text sent to the server, up to and including its `;`.
    pub sql: String,
    /// 1-based line of its first character.
    pub line: u64,
    /// Byte offset of its first character in the stream.
    pub offset: u64,
}

impl Statement {
    /// The first line of the statement, cut to 120 characters, for messages.
    pub fn first_line(&self) -> String {
        let l = self.sql.lines().next().unwrap_or_default().trim_end();
        if l.chars().count() > 120 {
            let cut: String = l.chars().take(120).collect();
            format!("{cut}...")
        } else {
            l.to_string()
        }
    }
}

/// A piece of COPY data: whole lines unless `line_end` is false (a line
/// longer than a chunk, continued by the next piece).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyChunk {
    pub data: Bytes,
    /// Line of its first byte.
    pub line: u64,
    /// Stream offset of its first byte.
    pub offset: u64,
    /// Complete lines (rows) it ends.
    pub lines: u64,
    /// True when it ends at the end of a line.
    pub line_end: bool,
}

/// The psql meta-commands pg_dump writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaCommand {
    /// `\connect db` (None: `\connect` or `\connect -`, the same database).
    Connect {
        dbname: Option<String>,
    },
    Restrict {
        key: String,
    },
    Unrestrict {
        key: String,
    },
    /// `\set ON_ERROR_STOP value`.
    SetOnErrorStop {
        value: String,
    },
}

/// A pg_dump table-of-contents header comment:
/// `-- Name: users; Type: TABLE; Schema: public; Owner: app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toc {
    pub name: String,
    pub kind: String,
    pub schema: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Statement(Statement),
    /// `COPY table (...) FROM stdin;`; data follows. `table` as written.
    CopyStart {
        stmt: Statement,
        table: String,
    },
    CopyData(CopyChunk),
    /// The `\.` line (at `line`, `offset`); `rows` lines of data came before it.
    CopyEnd {
        line: u64,
        offset: u64,
        rows: u64,
    },
    Meta {
        cmd: MetaCommand,
        line: u64,
        offset: u64,
    },
    Toc(Toc),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexErrorKind {
    #[error(
        "psql meta-command '\\{0}' is not one pg_dump writes: lifeline runs only \\connect (to the target), \\restrict, \\unrestrict, \\set ON_ERROR_STOP and \\. ; remove it from the dump"
    )]
    UnknownMeta(String),
    #[error("psql meta-command '\\{0}' inside a statement: pg_dump never writes one")]
    MetaInStatement(String),
    #[error("bad psql meta-command '{0}'")]
    BadMeta(String),
    #[error("'\\.' outside COPY data")]
    StrayCopyEnd,
    #[error(
        "the dump ends inside {what} that starts at line {start_line} (byte {start_offset}): the file is truncated or not a complete pg_dump plain dump"
    )]
    Truncated {
        what: &'static str,
        start_line: u64,
        start_offset: u64,
    },
    #[error(
        "the dump ends inside the COPY data that starts at line {start_line} (byte {start_offset}) after {rows} row(s): the file is truncated"
    )]
    TruncatedCopy {
        start_line: u64,
        start_offset: u64,
        rows: u64,
    },
    #[error("text after 'COPY ... FROM stdin;' on the same line: pg_dump never writes any")]
    TextAfterCopy,
    #[error("a statement longer than {0} bytes: not a pg_dump dump, or a damaged one")]
    TooLong(usize),
    #[error(
        "the statement is not valid UTF-8: lifeline restores UTF8 dumps only (pg_dump -E UTF8)"
    )]
    NotUtf8,
    #[error("the lexer stopped after an earlier error")]
    Stopped,
}

/// A lexer error at a position in the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} (byte {offset}): {kind}")]
pub struct LexError {
    pub line: u64,
    pub offset: u64,
    pub kind: LexErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Escape,
    Double,
    Dollar,
    Block(u32),
    Line,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sql,
    /// After `COPY ... FROM stdin;`: the rest of that line.
    CopyRest,
    Copy,
}

#[derive(Debug, Default)]
struct SqlState {
    /// (index in buf, line, offset) of the statement's first significant byte.
    start: Option<(usize, u64, u64)>,
    paren: u32,
    begin_depth: u32,
    ident_count: u32,
    idents: [u8; 4],
    /// Index just after the last word, and whether it was a lone `e`/`E`.
    last_word_end: usize,
    last_word_e: bool,
    tag: Vec<u8>,
    /// Where the open quote or comment started (index, line, offset).
    quote_start: (usize, u64, u64),
}

#[derive(Debug, Default)]
struct CopyState {
    at_line_start: bool,
    /// Complete lines in buf[..pos].
    lines: u64,
    /// Line of buf[0].
    chunk_line: u64,
    rows: u64,
    start_line: u64,
    start_offset: u64,
}

/// The lexer. Feed bytes with [`Lexer::push`] (or read into
/// [`Lexer::buffer`]), call [`Lexer::finish_input`] at the end, and take
/// items with [`Lexer::next_item`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Lexer {
    buf: BytesMut,
    base: u64,
    pos: usize,
    line: u64,
    eof: bool,
    mode: Mode,
    quote: Quote,
    sql: SqlState,
    copy: CopyState,
    std_strings: bool,
    failed: bool,
    saw_trailer: bool,
    max_statement: usize,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new()
    }
}

enum Step {
    Item(Item),
    More,
    Continue,
}

fn lower(b: &[u8]) -> Vec<u8> {
    b.to_ascii_lowercase()
}

impl Lexer {
    pub fn new() -> Self {
        Lexer {
            buf: BytesMut::with_capacity(COPY_CHUNK * 2),
            base: 0,
            pos: 0,
            line: 1,
            eof: false,
            mode: Mode::Sql,
            quote: Quote::None,
            sql: SqlState::default(),
            copy: CopyState::default(),
            std_strings: true,
            failed: false,
            saw_trailer: false,
            max_statement: MAX_STATEMENT,
        }
    }

    /// Changes the statement size limit (tests).
    pub fn with_max_statement(mut self, n: usize) -> Self {
        self.max_statement = n;
        self
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The input buffer, to read into directly (e.g. `read_buf`).
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes buffered and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// No more input will come.
    pub fn finish_input(&mut self) {
        self.eof = true;
    }

    /// Stream offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Line the scan has reached.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// True once the whole input has been lexed without error.
    pub fn is_done(&self) -> bool {
        self.eof
            && !self.failed
            && self.mode == Mode::Sql
            && self.quote == Quote::None
            && self.sql.start.is_none()
            && self.pos >= self.buf.len()
    }

    /// True when the dump's trailer comment `-- PostgreSQL database dump
    /// complete` went by (pg_dump and pg_restore write it last).
    pub fn saw_trailer(&self) -> bool {
        self.saw_trailer
    }

    /// True while inside COPY data.
    pub fn in_copy(&self) -> bool {
        self.mode != Mode::Sql
    }

    /// The next item, `Ok(None)` when more input is needed (or, after
    /// `finish_input`, at the end).
    pub fn next_item(&mut self) -> Result<Option<Item>, LexError> {
        if self.failed {
            return Err(self.err(LexErrorKind::Stopped));
        }
        let r = loop {
            let step = match self.mode {
                Mode::Sql => self.step_sql(),
                Mode::CopyRest => self.step_copy_rest(),
                Mode::Copy => self.step_copy(),
            };
            match step {
                Ok(Step::Continue) => continue,
                Ok(Step::Item(i)) => break Ok(Some(i)),
                Ok(Step::More) => {
                    if self.mode == Mode::Sql {
                        self.compact();
                        if let Some((s, _, _)) = self.sql.start
                            && self.pos - s > self.max_statement
                        {
                            break Err(self.err(LexErrorKind::TooLong(self.max_statement)));
                        }
                    }
                    break Ok(None);
                }
                Err(e) => break Err(e),
            }
        };
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn err(&self, kind: LexErrorKind) -> LexError {
        LexError {
            line: self.line,
            offset: self.base + self.pos as u64,
            kind,
        }
    }

    fn err_at(&self, line: u64, offset: u64, kind: LexErrorKind) -> LexError {
        LexError { line, offset, kind }
    }

    /// Drops scanned bytes that belong to no statement.
    fn compact(&mut self) {
        if self.sql.start.is_none() && self.quote == Quote::None && self.pos > 0 {
            self.consume(self.pos);
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.base += n as u64;
        self.pos -= n;
    }

    fn significant(&mut self) {
        if self.sql.start.is_none() {
            self.sql.start = Some((self.pos, self.line, self.base + self.pos as u64));
        }
    }

    fn open_quote(&mut self, q: Quote, len: usize) {
        self.quote = q;
        self.sql.quote_start = (self.pos, self.line, self.base + self.pos as u64);
        self.pos += len;
    }

    /// Advances over `n` bytes known to be inside a quote or comment.
    fn skip(&mut self, n: usize) {
        let end = self.pos + n;
        self.line += memchr::memchr_iter(b'\n', &self.buf[self.pos..end]).count() as u64;
        self.pos = end;
    }

    fn step_sql(&mut self) -> Result<Step, LexError> {
        let len = self.buf.len();
        match self.quote {
            Quote::None => {}
            Quote::Single | Quote::Double => {
                let q = if self.quote == Quote::Single {
                    b'\''
                } else {
                    b'"'
                };
                let Some(n) = memchr::memchr(q, &self.buf[self.pos..]) else {
                    self.skip(len - self.pos);
                    return self.more_or_truncated();
                };
                self.skip(n);
                return match self.buf.get(self.pos + 1) {
                    Some(&c) if c == q => {
                        self.pos += 2;
                        Ok(Step::Continue)
                    }
                    None if !self.eof => Ok(Step::More),
                    _ => {
                        self.pos += 1;
                        self.quote = Quote::None;
                        Ok(Step::Continue)
                    }
                };
            }
            Quote::Escape => {
                let Some(n) = memchr::memchr2(b'\'', b'\\', &self.buf[self.pos..]) else {
                    self.skip(len - self.pos);
                    return self.more_or_truncated();
                };
                self.skip(n);
                let c = self.buf[self.pos];
                return match self.buf.get(self.pos + 1) {
                    None if !self.eof => Ok(Step::More),
                    None => {
                        if c == b'\'' {
                            self.pos += 1;
                            self.quote = Quote::None;
                            Ok(Step::Continue)
                        } else {
                            self.pos += 1;
                            self.more_or_truncated()
                        }
                    }
                    Some(&n2) => {
                        if c == b'\\' || n2 == b'\'' {
                            self.pos += 1;
                            self.skip(1);
                        } else {
                            self.pos += 1;
                            self.quote = Quote::None;
                        }
                        Ok(Step::Continue)
                    }
                };
            }
            Quote::Dollar => {
                let Some(n) = memchr::memchr(b'$', &self.buf[self.pos..]) else {
                    self.skip(len - self.pos);
                    return self.more_or_truncated();
                };
                self.skip(n);
                let tag_len = self.sql.tag.len();
                let avail = &self.buf[self.pos..];
                if avail.len() >= tag_len {
                    if avail[..tag_len] == self.sql.tag[..] {
                        self.pos += tag_len;
                        self.quote = Quote::None;
                    } else {
                        self.pos += 1;
                    }
                    return Ok(Step::Continue);
                }
                if !self.eof && self.sql.tag.starts_with(avail) {
                    return Ok(Step::More);
                }
                self.pos += 1;
                return Ok(Step::Continue);
            }
            Quote::Block(depth) => {
                let Some(n) = memchr::memchr2(b'*', b'/', &self.buf[self.pos..]) else {
                    self.skip(len - self.pos);
                    return self.more_or_truncated();
                };
                self.skip(n);
                let c = self.buf[self.pos];
                let Some(&n2) = self.buf.get(self.pos + 1) else {
                    if self.eof {
                        self.pos += 1;
                        return self.more_or_truncated();
                    }
                    return Ok(Step::More);
                };
                if c == b'*' && n2 == b'/' {
                    self.pos += 2;
                    self.quote = if depth <= 1 {
                        Quote::None
                    } else {
                        Quote::Block(depth - 1)
                    };
                } else if c == b'/' && n2 == b'*' {
                    self.pos += 2;
                    self.quote = Quote::Block(depth.saturating_add(1));
                } else {
                    self.pos += 1;
                }
                return Ok(Step::Continue);
            }
            Quote::Line => {
                let nl = memchr::memchr(b'\n', &self.buf[self.pos..]);
                let end = match nl {
                    Some(n) => self.pos + n,
                    None if self.eof => len,
                    None => return Ok(Step::More),
                };
                if self.sql.start.is_none() {
                    let start = self.sql.quote_start.0;
                    let text = String::from_utf8_lossy(&self.buf[start..end]);
                    let text = text.trim_end();
                    if text == "-- PostgreSQL database dump complete" {
                        self.saw_trailer = true;
                    }
                    let toc = parse_toc(text);
                    self.pos = end;
                    self.quote = Quote::None;
                    if nl.is_some() {
                        self.pos += 1;
                        self.line += 1;
                    }
                    if let Some(toc) = toc {
                        return Ok(Step::Item(Item::Toc(toc)));
                    }
                    return Ok(Step::Continue);
                }
                self.pos = end;
                self.quote = Quote::None;
                if nl.is_some() {
                    self.pos += 1;
                    self.line += 1;
                }
                return Ok(Step::Continue);
            }
        }

        // Outside quotes: one token at a time.
        let Some(&c) = self.buf.get(self.pos) else {
            if self.eof && self.sql.start.is_some() {
                let (_, l, o) = self.sql.start.unwrap_or_default();
                return Err(self.err_at(
                    self.line,
                    self.base + self.pos as u64,
                    LexErrorKind::Truncated {
                        what: "a statement with no terminating ';'",
                        start_line: l,
                        start_offset: o,
                    },
                ));
            }
            return Ok(Step::More);
        };
        let next = self.buf.get(self.pos + 1).copied();
        match c {
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.pos += 1,
            b'\n' => {
                self.pos += 1;
                self.line += 1;
            }
            b'-' | b'/' => {
                let opener = if c == b'-' { b'-' } else { b'*' };
                match next {
                    None if !self.eof => return Ok(Step::More),
                    Some(n) if n == opener => {
                        let q = if c == b'-' {
                            Quote::Line
                        } else {
                            Quote::Block(1)
                        };
                        self.open_quote(q, 2);
                    }
                    _ => {
                        self.significant();
                        self.pos += 1;
                    }
                }
            }
            b'\'' => {
                let escape = !self.std_strings
                    || (self.sql.last_word_e && self.sql.last_word_end == self.pos);
                self.significant();
                self.open_quote(if escape { Quote::Escape } else { Quote::Single }, 1);
            }
            b'"' => {
                self.significant();
                self.open_quote(Quote::Double, 1);
            }
            b'$' => {
                let rest = &self.buf[self.pos + 1..];
                let mut j = 0;
                if rest.first().is_some_and(|&b| is_ident_start(b)) {
                    while j < rest.len() && is_dolq_cont(rest[j]) {
                        j += 1;
                    }
                }
                let after = rest.get(j).copied();
                self.significant();
                match after {
                    None if !self.eof => return Ok(Step::More),
                    Some(b'$') => {
                        self.sql.tag = self.buf[self.pos..self.pos + j + 2].to_vec();
                        self.open_quote(Quote::Dollar, j + 2);
                    }
                    _ => self.pos += 1,
                }
            }
            b'(' => {
                self.significant();
                self.sql.paren = self.sql.paren.saturating_add(1);
                self.pos += 1;
            }
            b')' => {
                self.significant();
                self.sql.paren = self.sql.paren.saturating_sub(1);
                self.pos += 1;
            }
            b';' if self.sql.paren == 0 && self.sql.begin_depth == 0 => {
                if self.sql.start.is_some() {
                    return self.end_statement(self.pos + 1).map(Step::Item);
                }
                self.pos += 1;
                self.reset_statement();
            }
            b'\\' => {
                return self.meta();
            }
            b'0'..=b'9' => {
                self.significant();
                let n = self.buf[self.pos..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(len - self.pos);
                if self.pos + n == len && !self.eof {
                    return Ok(Step::More);
                }
                self.pos += n;
            }
            c if is_ident_start(c) => {
                let n = self.buf[self.pos..]
                    .iter()
                    .position(|&b| !is_ident_cont(b))
                    .unwrap_or(len - self.pos);
                if self.pos + n == len && !self.eof {
                    return Ok(Step::More);
                }
                self.significant();
                let word = lower(&self.buf[self.pos..self.pos + n]);
                self.track_word(&word);
                self.pos += n;
                self.sql.last_word_end = self.pos;
                self.sql.last_word_e = word == b"e";
            }
            _ => {
                self.significant();
                self.pos += 1;
            }
        }
        Ok(Step::Continue)
    }

    /// psql's heuristic for `CREATE FUNCTION ... BEGIN ATOMIC ... END`:
    /// semicolons inside such a body do not end the statement.
    fn track_word(&mut self, w: &[u8]) {
        let s = &mut self.sql;
        if s.ident_count == 0 {
            s.idents = [0; 4];
        }
        if matches!(
            w,
            b"create" | b"function" | b"procedure" | b"or" | b"replace"
        ) && (s.ident_count as usize) < s.idents.len()
        {
            s.idents[s.ident_count as usize] = w[0];
        }
        s.ident_count = s.ident_count.saturating_add(1);
        let i = s.idents;
        let in_fn = i[0] == b'c'
            && (i[1] == b'f'
                || i[1] == b'p'
                || (i[1] == b'o' && i[2] == b'r' && (i[3] == b'f' || i[3] == b'p')));
        if in_fn && s.paren == 0 {
            match w {
                b"begin" => s.begin_depth = s.begin_depth.saturating_add(1),
                b"case" if s.begin_depth >= 1 => s.begin_depth = s.begin_depth.saturating_add(1),
                b"end" => s.begin_depth = s.begin_depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn reset_statement(&mut self) {
        self.sql.start = None;
        self.sql.paren = 0;
        self.sql.begin_depth = 0;
        self.sql.ident_count = 0;
        self.sql.last_word_e = false;
    }

    fn more_or_truncated(&mut self) -> Result<Step, LexError> {
        if !self.eof {
            return Ok(Step::More);
        }
        let what = match self.quote {
            Quote::Single | Quote::Escape => "a quoted string",
            Quote::Double => "a quoted identifier",
            Quote::Dollar => "a dollar-quoted string",
            Quote::Block(_) => "a block comment",
            _ => "a statement",
        };
        let (_, l, o) = self.sql.quote_start;
        Err(self.err(LexErrorKind::Truncated {
            what,
            start_line: l,
            start_offset: o,
        }))
    }

    fn end_statement(&mut self, end: usize) -> Result<Item, LexError> {
        let (s, line, offset) = self.sql.start.unwrap_or((0, self.line, self.base));
        self.reset_statement();
        if end - s > self.max_statement {
            return Err(self.err_at(line, offset, LexErrorKind::TooLong(self.max_statement)));
        }
        let chunk = self.buf.split_to(end);
        self.base += end as u64;
        self.pos = 0;
        let sql = std::str::from_utf8(&chunk[s..])
            .map_err(|_| self.err_at(line, offset, LexErrorKind::NotUtf8))?
            .to_string();
        let stmt = Statement { sql, line, offset };
        if let Some(table) = copy_from_stdin_table(&stmt.sql) {
            self.mode = Mode::CopyRest;
            self.copy = CopyState {
                start_line: line,
                start_offset: offset,
                ..CopyState::default()
            };
            return Ok(Item::CopyStart { stmt, table });
        }
        if let Some(v) = standard_conforming_strings(&stmt.sql) {
            self.std_strings = v;
        }
        Ok(Item::Statement(stmt))
    }

    fn meta(&mut self) -> Result<Step, LexError> {
        let rest = &self.buf[self.pos..];
        let (end, has_nl) = match memchr::memchr(b'\n', rest) {
            Some(n) => (self.pos + n, true),
            None if self.eof => (self.buf.len(), false),
            None => {
                if rest.len() > 1 << 20 {
                    return Err(self.err(LexErrorKind::BadMeta("a line longer than 1 MiB".into())));
                }
                return Ok(Step::More);
            }
        };
        let line = self.line;
        let offset = self.base + self.pos as u64;
        let text = String::from_utf8_lossy(&self.buf[self.pos + 1..end]).into_owned();
        let text = text.trim_end_matches('\r');
        let name_len = if text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            text.find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(text.len())
        } else {
            text.chars().next().map_or(0, char::len_utf8)
        };
        let (name, args) = text.split_at(name_len);
        if self.sql.start.is_some() {
            return Err(self.err(LexErrorKind::MetaInStatement(name.to_string())));
        }
        let cmd = parse_meta(name, args).map_err(|k| self.err_at(line, offset, k))?;
        self.pos = end;
        if has_nl {
            self.pos += 1;
            self.line += 1;
        }
        self.consume(self.pos);
        Ok(Step::Item(Item::Meta { cmd, line, offset }))
    }

    fn step_copy_rest(&mut self) -> Result<Step, LexError> {
        while let Some(&c) = self.buf.get(self.pos) {
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.consume(self.pos);
                    self.mode = Mode::Copy;
                    self.copy.at_line_start = true;
                    self.copy.chunk_line = self.line;
                    return Ok(Step::Continue);
                }
                _ => return Err(self.err(LexErrorKind::TextAfterCopy)),
            }
        }
        if self.eof {
            return Err(self.truncated_copy());
        }
        Ok(Step::More)
    }

    fn truncated_copy(&self) -> LexError {
        LexError {
            line: self.line,
            offset: self.base + self.buf.len() as u64,
            kind: LexErrorKind::TruncatedCopy {
                start_line: self.copy.start_line,
                start_offset: self.copy.start_offset,
                rows: self.copy.rows + self.copy.lines,
            },
        }
    }

    fn emit_copy(&mut self, line_end: bool) -> Item {
        let data = self.buf.split_to(self.pos).freeze();
        let chunk = CopyChunk {
            line: self.copy.chunk_line,
            offset: self.base,
            lines: self.copy.lines,
            line_end,
            data,
        };
        self.base += self.pos as u64;
        self.pos = 0;
        self.copy.rows += self.copy.lines;
        self.copy.lines = 0;
        self.copy.chunk_line = self.line;
        Item::CopyData(chunk)
    }

    fn step_copy(&mut self) -> Result<Step, LexError> {
        loop {
            if self.copy.at_line_start {
                let rest = &self.buf[self.pos..];
                let end = match rest {
                    [b'\\', b'.', b'\n', ..] => Some(3),
                    [b'\\', b'.', b'\r', b'\n', ..] => Some(4),
                    [] | [b'\\'] | [b'\\', b'.'] | [b'\\', b'.', b'\r'] if !self.eof => {
                        if self.pos >= COPY_CHUNK {
                            return Ok(Step::Item(self.emit_copy(true)));
                        }
                        return Ok(Step::More);
                    }
                    [] => return Err(self.truncated_copy()),
                    [b'\\', b'.'] | [b'\\', b'.', b'\r'] => Some(rest.len()),
                    _ => None,
                };
                if let Some(n) = end {
                    if self.pos > 0 {
                        return Ok(Step::Item(self.emit_copy(true)));
                    }
                    let line = self.line;
                    let offset = self.base;
                    let rows = self.copy.rows;
                    let has_nl = self.buf.get(n - 1) == Some(&b'\n');
                    self.pos = n;
                    self.consume(n);
                    if has_nl {
                        self.line += 1;
                    }
                    self.mode = Mode::Sql;
                    return Ok(Step::Item(Item::CopyEnd { line, offset, rows }));
                }
                self.copy.at_line_start = false;
            }
            match memchr::memchr(b'\n', &self.buf[self.pos..]) {
                Some(i) => {
                    self.pos += i + 1;
                    self.line += 1;
                    self.copy.lines += 1;
                    self.copy.at_line_start = true;
                    if self.pos >= COPY_CHUNK {
                        return Ok(Step::Item(self.emit_copy(true)));
                    }
                }
                None => {
                    self.pos = self.buf.len();
                    if self.eof {
                        return Err(self.truncated_copy());
                    }
                    if self.pos >= COPY_CHUNK {
                        return Ok(Step::Item(self.emit_copy(false)));
                    }
                    return Ok(Step::More);
                }
            }
        }
    }
}

/// `-- Name: x; Type: TABLE; Schema: public; Owner: app` (or `Data for Name:`).
fn parse_toc(text: &str) -> Option<Toc> {
    let rest = text
        .strip_prefix("-- Name: ")
        .or_else(|| text.strip_prefix("-- Data for Name: "))?;
    let t = rest.rfind("; Type: ")?;
    let name = &rest[..t];
    let after = &rest[t + "; Type: ".len()..];
    let s = after.find("; Schema: ")?;
    let kind = &after[..s];
    let after = &after[s + "; Schema: ".len()..];
    let schema = after.split("; ").next().unwrap_or_default();
    Some(Toc {
        name: name.to_string(),
        kind: kind.to_string(),
        schema: schema.to_string(),
    })
}

/// Splits psql meta-command arguments: whitespace-separated, `"..."` with
/// `""` for a quote, `'...'` with backslash escapes.
fn meta_args(args: &str) -> Result<Vec<String>, LexErrorKind> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut chars = args.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_arg {
                    out.push(std::mem::take(&mut cur));
                    in_arg = false;
                }
            }
            '"' => {
                in_arg = true;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cur.push('"');
                        }
                        Some('"') => break,
                        Some(x) => cur.push(x),
                        None => return Err(LexErrorKind::BadMeta("unterminated '\"'".into())),
                    }
                }
            }
            '\'' => {
                in_arg = true;
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(x) => cur.push(x),
                            None => {
                                return Err(LexErrorKind::BadMeta("unterminated '''".into()));
                            }
                        },
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(LexErrorKind::BadMeta("unterminated '''".into())),
                    }
                }
            }
            '\\' => {
                return Err(LexErrorKind::BadMeta(
                    "two meta-commands on one line".into(),
                ));
            }
            c => {
                in_arg = true;
                cur.push(c);
            }
        }
    }
    if in_arg {
        out.push(cur);
    }
    Ok(out)
}

/// The `dbname` of a libpq conninfo string (`dbname='x' ...`).
fn conninfo_dbname(s: &str) -> Result<Option<String>, LexErrorKind> {
    let bad = || LexErrorKind::BadMeta(format!("cannot read the connection string '{s}'"));
    let mut chars = s.chars().peekable();
    let mut found = None;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad());
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => val.push(chars.next().ok_or_else(bad)?),
                    Some('\'') => break,
                    Some(c) => val.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    val.push(chars.next().ok_or_else(bad)?);
                    continue;
                }
                val.push(c);
                chars.next();
            }
        }
        if key == "dbname" {
            found = Some(val);
        }
    }
    Ok(found)
}

fn parse_meta(name: &str, args: &str) -> Result<MetaCommand, LexErrorKind> {
    match name {
        "connect" | "c" => {
            let mut a = meta_args(args)?;
            if a.first().is_some_and(|x| x.starts_with("-reuse-previous")) {
                a.remove(0);
            }
            if a.len() > 1 {
                return Err(LexErrorKind::BadMeta(format!(
                    "\\connect with more than a database name: '{}'",
                    args.trim()
                )));
            }
            let dbname = match a.pop() {
                None => None,
                Some(d) if d == "-" => None,
                Some(d) if d.contains('=') || d.starts_with("postgres") && d.contains("://") => {
                    if d.contains("://") {
                        return Err(LexErrorKind::BadMeta(format!(
                            "\\connect with a URI: '{d}'"
                        )));
                    }
                    conninfo_dbname(&d)?
                }
                Some(d) => Some(d),
            };
            Ok(MetaCommand::Connect { dbname })
        }
        "restrict" | "unrestrict" => {
            let a = meta_args(args)?;
            let [key] = a.as_slice() else {
                return Err(LexErrorKind::BadMeta(format!("\\{name} needs one key")));
            };
            let key = key.clone();
            Ok(if name == "restrict" {
                MetaCommand::Restrict { key }
            } else {
                MetaCommand::Unrestrict { key }
            })
        }
        "set" => {
            let a = meta_args(args)?;
            match a.as_slice() {
                [v, rest @ ..] if v == "ON_ERROR_STOP" => Ok(MetaCommand::SetOnErrorStop {
                    value: rest.join(" "),
                }),
                _ => Err(LexErrorKind::UnknownMeta(format!("set {}", args.trim()))),
            }
        }
        "." => Err(LexErrorKind::StrayCopyEnd),
        other => Err(LexErrorKind::UnknownMeta(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// All items of `input` fed in one piece.
    pub(crate) fn lex_all(input: &[u8]) -> (Vec<Item>, Option<LexError>) {
        let mut lx = Lexer::new();
        lx.push(input);
        lx.finish_input();
        let mut items = Vec::new();
        loop {
            match lx.next_item() {
                Ok(Some(i)) => items.push(i),
                Ok(None) => return (items, None),
                Err(e) => return (items, Some(e)),
            }
        }
    }

    fn stmts(input: &str) -> Vec<String> {
        let (items, err) = lex_all(input.as_bytes());
        assert!(err.is_none(), "{err:?}");
        items
            .into_iter()
            .filter_map(|i| match i {
                Item::Statement(s) => Some(s.sql),
                Item::CopyStart { stmt, .. } => Some(stmt.sql),
                _ => None,
            })
            .collect()
    }

    #[rstest]
    #[case("SELECT 1; SELECT 2;", &["SELECT 1;", "SELECT 2;"])]
    #[case("SELECT 'a;b'';c';", &["SELECT 'a;b'';c';"])]
    #[case("SELECT E'a\\';b';", &["SELECT E'a\\';b';"])]
    #[case("SELECT e'\\\\';", &["SELECT e'\\\\';"])]
    #[case("SELECT 'a\\'; SELECT 2;", &["SELECT 'a\\';", "SELECT 2;"])]
    #[case("SELECT \"x;\"\"y\" FROM t;", &["SELECT \"x;\"\"y\" FROM t;"])]
    #[case("SELECT $$a;b$$;", &["SELECT $$a;b$$;"])]
    #[case("SELECT $f$ $g$ ; $g$ ;$f$;", &["SELECT $f$ $g$ ; $g$ ;$f$;"])]
    #[case("SELECT $1; SELECT a$b; SELECT 1;", &["SELECT $1;", "SELECT a$b;", "SELECT 1;"])]
    #[case("SELECT 1 -- x;\n; SELECT 2;", &["SELECT 1 -- x;\n;", "SELECT 2;"])]
    #[case("/* a; /* b; */ c; */ SELECT 1;", &["SELECT 1;"])]
    #[case("SELECT 1 /* a; /* b; */ c; */;", &["SELECT 1 /* a; /* b; */ c; */;"])]
    #[case("CREATE RULE r AS ON INSERT TO t DO (DELETE FROM a; DELETE FROM b);", &["CREATE RULE r AS ON INSERT TO t DO (DELETE FROM a; DELETE FROM b);"])]
    #[case("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 2;",
        &["CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END;", "SELECT 2;"])]
    #[case("BEGIN; SELECT 1; END;", &["BEGIN;", "SELECT 1;", "END;"])]
    #[case(";;  SELECT 1;", &["SELECT 1;"])]
    fn splits(#[case] input: &str, #[case] want: &[&str]) {
        assert_eq!(stmts(input), want);
    }

    #[test]
    fn standard_conforming_strings_off_makes_backslash_escape() {
        let s = stmts("SET standard_conforming_strings = off;\nSELECT 'a\\';b';\n");
        assert_eq!(s[1], "SELECT 'a\\';b';");
    }

    #[test]
    fn copy_block_with_tricky_data() {
        let input = "COPY public.\"weird;name\" (id, t) FROM stdin;\n1\ta\\\\.b;c\\n\\\\.\n2\t\\.x\n\\.\nSELECT 1;\n";
        let (items, err) = lex_all(input.as_bytes());
        assert!(err.is_none(), "{err:?}");
        let Item::CopyStart { table, stmt } = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(table, "public.\"weird;name\"");
        assert_eq!(stmt.line, 1);
        let Item::CopyData(c) = &items[1] else {
            panic!()
        };
        assert_eq!(&c.data[..], b"1\ta\\\\.b;c\\n\\\\.\n2\t\\.x\n");
        assert_eq!((c.lines, c.line, c.line_end), (2, 2, true));
        assert_eq!(
            items[2],
            Item::CopyEnd {
                line: 4,
                offset: input.find("\\.\nSELECT").unwrap() as u64,
                rows: 2
            }
        );
        let Item::Statement(s) = &items[3] else {
            panic!()
        };
        assert_eq!((s.sql.as_str(), s.line), ("SELECT 1;", 5));
    }

    #[test]
    fn truncated_copy_reports_start_and_end() {
        let input = "SELECT 1;\nCOPY public.t (a) FROM stdin;\n1\n2\n3";
        let (_, err) = lex_all(input.as_bytes());
        let err = err.unwrap();
        assert_eq!(err.line, 5);
        assert_eq!(err.offset, input.len() as u64);
        assert_eq!(
            err.kind,
            LexErrorKind::TruncatedCopy {
                start_line: 2,
                start_offset: 10,
                rows: 2
            }
        );
    }

    #[rstest]
    #[case("SELECT 'abc", "a quoted string")]
    #[case("SELECT $x$ abc $y$", "a dollar-quoted string")]
    #[case("SELECT 1 /* abc", "a block comment")]
    #[case("SELECT 1", "a statement with no terminating ';'")]
    fn truncated_statement(#[case] input: &str, #[case] what: &str) {
        let (_, err) = lex_all(input.as_bytes());
        match err.map(|e| e.kind) {
            Some(LexErrorKind::Truncated { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn meta_commands() {
        let input = "\\restrict abc123\n\\set ON_ERROR_STOP on\n\\connect -reuse-previous=on \"dbname='we\\'ird\\\\x'\"\n\\connect \"App\"\nSELECT 1;\n\\unrestrict abc123\n";
        let (items, err) = lex_all(input.as_bytes());
        assert!(err.is_none(), "{err:?}");
        let metas: Vec<(MetaCommand, u64)> = items
            .into_iter()
            .filter_map(|i| match i {
                Item::Meta { cmd, line, .. } => Some((cmd, line)),
                _ => None,
            })
            .collect();
        assert_eq!(
            metas,
            vec![
                (
                    MetaCommand::Restrict {
                        key: "abc123".into()
                    },
                    1
                ),
                (MetaCommand::SetOnErrorStop { value: "on".into() }, 2),
                (
                    MetaCommand::Connect {
                        dbname: Some("we'ird\\x".into())
                    },
                    3
                ),
                (
                    MetaCommand::Connect {
                        dbname: Some("App".into())
                    },
                    4
                ),
                (
                    MetaCommand::Unrestrict {
                        key: "abc123".into()
                    },
                    6
                ),
            ]
        );
    }

    #[rstest]
    #[case("SELECT 1;\n\\! rm -rf /\n", 2, LexErrorKind::UnknownMeta("!".into()))]
    #[case("SELECT 1;\n\n\\i /etc/passwd\n", 3, LexErrorKind::UnknownMeta("i".into()))]
    #[case("\\set x 1\n", 1, LexErrorKind::UnknownMeta("set x 1".into()))]
    #[case("SELECT 1\n\\g\n", 2, LexErrorKind::MetaInStatement("g".into()))]
    #[case("\\.\n", 1, LexErrorKind::StrayCopyEnd)]
    fn refused_meta(#[case] input: &str, #[case] line: u64, #[case] kind: LexErrorKind) {
        let (_, err) = lex_all(input.as_bytes());
        let err = err.unwrap();
        assert_eq!((err.line, err.kind), (line, kind));
    }

    #[test]
    fn toc_and_trailer() {
        let input = "--\n-- Name: weird;name; Type: TABLE; Schema: public; Owner: postgres\n--\n\nSELECT 1;\n--\n-- PostgreSQL database dump complete\n--\n";
        let mut lx = Lexer::new();
        lx.push(input.as_bytes());
        lx.finish_input();
        let first = lx.next_item().unwrap();
        assert_eq!(
            first,
            Some(Item::Toc(Toc {
                name: "weird;name".into(),
                kind: "TABLE".into(),
                schema: "public".into()
            }))
        );
        while lx.next_item().unwrap().is_some() {}
        assert!(lx.saw_trailer());
        assert!(lx.is_done());
    }

    #[test]
    fn statement_position() {
        let input = "-- c\n\n  SELECT\n 1;\n";
        let (items, _) = lex_all(input.as_bytes());
        assert_eq!(
            items[0],
            Item::Statement(Statement {
                sql: "SELECT\n 1;".into(),
                line: 3,
                offset: 8
            })
        );
    }

    #[test]
    fn long_lines_are_split_without_holding_them() {
        let mut input = b"COPY t (a) FROM stdin;\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', COPY_CHUNK * 2 + 10));
        input.extend(b"\n\\.\n");
        let mut lx = Lexer::new();
        let mut items = Vec::new();
        for piece in input.chunks(64 << 10) {
            lx.push(piece);
            while let Some(i) = lx.next_item().unwrap() {
                items.push(i);
            }
            assert!(lx.buffered() <= COPY_CHUNK + (64 << 10));
        }
        lx.finish_input();
        while let Some(i) = lx.next_item().unwrap() {
            items.push(i);
        }
        let chunks: Vec<&CopyChunk> = items
            .iter()
            .filter_map(|i| match i {
                Item::CopyData(c) => Some(c),
                _ => None,
            })
            .collect();
        assert!(chunks.len() >= 2);
        assert!(!chunks[0].line_end);
        assert!(chunks.last().unwrap().line_end);
        assert_eq!(chunks.iter().map(|c| c.lines).sum::<u64>(), 1);
    }
}
