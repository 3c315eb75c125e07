//! Content scan of a dump without restoring it: one streaming pass over the
//! SQL text (rows per table from the COPY blocks, the header's database,
//! versions, table list). Bounded memory whatever the line lengths; never
//! executes, stores or echoes a row of the data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a dump holds, read from its SQL text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentScan {
    /// The database the dump names (`-- Name: x; Type: DATABASE`, `\connect`,
    /// or `dbname:` of an archive's header). Plain dumps without `--create`
    /// name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dbname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pg_dump_version: Option<String>,
    /// Tables the dump creates or loads, `schema.name` as pg_dump quotes them.
    pub tables: Vec<String>,
    /// Rows per table: lines of its COPY block (or `INSERT INTO` statements).
    pub rows: BTreeMap<String, u64>,
    /// At least one COPY block or INSERT: the dump carries data.
    pub has_data: bool,
    /// The `-- PostgreSQL database dump complete` trailer was seen.
    pub complete: bool,
    /// SQL text bytes scanned.
    pub bytes: u64,
}

impl ContentScan {
    /// Tables but no data: `pg_dump --schema-only`.
    pub fn schema_only(&self) -> bool {
        !self.tables.is_empty() && !self.has_data
    }

    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// Lines longer than this outside COPY blocks are classified by their start.
const LINE_KEEP: usize = 64 << 10;

/// The streaming scanner: `feed` chunks in order, then `finish`.
pub struct Scanner {
    out: ContentScan,
    buf: Vec<u8>,
    /// Inside a COPY block: the table its rows count for.
    copy: Option<String>,
    /// Inside a COPY block, in the middle of a row already counted.
    mid_row: bool,
    /// Outside COPY: the rest of an over-long line is being skipped.
    skipping: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner {
            out: ContentScan::default(),
            buf: Vec::with_capacity(1 << 20),
            copy: None,
            mid_row: false,
            skipping: false,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.out.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        let used = self.process(false);
        self.buf.drain(..used);
    }

    pub fn finish(mut self) -> ContentScan {
        let used = self.process(true);
        if used < self.buf.len() && !self.skipping {
            let rest = self.buf[used..].to_vec();
            self.line(&rest);
        }
        self.out
    }

    fn add_rows(&mut self, n: u64) {
        if let Some(t) = &self.copy {
            *self.out.rows.entry(t.clone()).or_default() += n;
        }
    }

    /// Consumes whole lines of `buf`; returns how many bytes were used.
    /// With `last`, a COPY block's partial last line is consumed too.
    fn process(&mut self, last: bool) -> usize {
        let mut i = 0;
        let n = self.buf.len();
        while i < n {
            if self.copy.is_some() {
                match self.copy_step(i, last) {
                    Ok(next) => i = next,
                    Err(keep) => return keep,
                }
                continue;
            }
            match memchr::memchr(b'\n', &self.buf[i..]) {
                Some(off) => {
                    let end = i + off;
                    if self.skipping {
                        self.skipping = false;
                    } else {
                        let line = self.buf[i..end].to_vec();
                        self.line(&line);
                    }
                    i = end + 1;
                }
                None => {
                    if n - i > LINE_KEEP && !self.skipping {
                        let line = self.buf[i..i + LINE_KEEP].to_vec();
                        self.line(&line);
                        self.skipping = true;
                    }
                    return if self.skipping { n } else { i };
                }
            }
        }
        i
    }

    /// One step inside a COPY block at `i`: Ok(next position), or Err(the
    /// position up to which the buffer is used) when more data is needed.
    fn copy_step(&mut self, i: usize, last: bool) -> Result<usize, usize> {
        let n = self.buf.len();
        if self.mid_row {
            return match memchr::memchr(b'\n', &self.buf[i..]) {
                Some(off) => {
                    self.mid_row = false;
                    Ok(i + off + 1)
                }
                None => Err(n),
            };
        }
        let rest = &self.buf[i..];
        if rest.starts_with(b"\\.\n") || (last && rest == b"\\.") {
            self.copy = None;
            return Ok(i + rest.len().min(3));
        }
        if !last && rest.len() < 3 && b"\\.\n".starts_with(rest) {
            return Err(i);
        }
        // One pass: every newline ends a row; the line after it may be `\.`.
        let mut rows = 0;
        let mut last_nl = None;
        for off in memchr::memchr_iter(b'\n', rest) {
            rows += 1;
            last_nl = Some(off);
            let after = &rest[off + 1..];
            if after.starts_with(b"\\.\n") || (last && after == b"\\.") {
                self.add_rows(rows);
                return Ok(i + off + 1);
            }
            if !last && after.len() < 3 && b"\\.\n".starts_with(after) {
                self.add_rows(rows);
                return Err(i + off + 1);
            }
        }
        self.add_rows(rows);
        let tail_at = last_nl.map_or(i, |nl| i + nl + 1);
        let tail = &self.buf[tail_at..];
        if tail.is_empty() {
            return Err(n);
        }
        if last && tail == b"\\." {
            self.copy = None;
            return Ok(n);
        }
        if !last && tail.len() < 3 && b"\\.\n".starts_with(tail) {
            return Err(tail_at);
        }
        // A row whose end is not here yet: counted now, its newline skipped.
        self.add_rows(1);
        self.mid_row = !last;
        Err(n)
    }

    /// One line outside COPY blocks.
    fn line(&mut self, raw: &[u8]) {
        let l = String::from_utf8_lossy(raw);
        let l = l.trim_end_matches('\r');
        if let Some(rest) = l.strip_prefix("COPY ") {
            let name = rest
                .split_once(" (")
                .or_else(|| rest.split_once(" FROM"))
                .map(|(t, _)| t)
                .unwrap_or(rest)
                .trim();
            if l.trim_end().ends_with("FROM stdin;") {
                self.add_table(name);
                self.out.rows.entry(name.to_string()).or_default();
                self.out.has_data = true;
                self.copy = Some(name.to_string());
                self.mid_row = false;
            }
        } else if let Some(rest) = l.strip_prefix("INSERT INTO ") {
            let cut = [rest.find(" ("), rest.find(" VALUES")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(0);
            let name = rest[..cut].trim();
            if !name.is_empty() {
                self.add_table(name);
                *self.out.rows.entry(name.to_string()).or_default() += 1;
                self.out.has_data = true;
            }
        } else if let Some(rest) = l
            .strip_prefix("CREATE TABLE ")
            .or_else(|| l.strip_prefix("CREATE UNLOGGED TABLE "))
        {
            if let Some((name, _)) = rest.split_once(" (") {
                self.add_table(name.trim());
            }
        } else if let Some(v) = l.strip_prefix("-- Dumped from database version ") {
            self.out.server_version = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("-- Dumped by pg_dump version ") {
            self.out.pg_dump_version = Some(v.trim().to_string());
        } else if let Some(rest) = l.strip_prefix("-- Name: ") {
            if let Some((name, kind)) = rest.split_once("; Type: ")
                && kind.starts_with("DATABASE;")
                && self.out.dbname.is_none()
            {
                self.out.dbname = Some(name.trim().to_string());
            }
        } else if let Some(rest) = l.strip_prefix("\\connect ") {
            if self.out.dbname.is_none() {
                self.out.dbname = connect_dbname(rest);
            }
        } else if l.starts_with("-- PostgreSQL database dump complete") {
            self.out.complete = true;
        }
    }

    fn add_table(&mut self, name: &str) {
        if !self.out.tables.iter().any(|t| t == name) {
            self.out.tables.push(name.to_string());
        }
    }
}

/// `\connect shop`, `\connect "My DB"`, `\connect -reuse-previous=on "dbname='shop'"`.
fn connect_dbname(rest: &str) -> Option<String> {
    if let Some((_, after)) = rest.split_once("dbname='") {
        let mut name = String::new();
        let mut chars = after.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    name.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        name.push(n);
                    }
                }
                c => name.push(c),
            }
        }
        return (!name.is_empty()).then_some(name);
    }
    let rest = rest.trim();
    let t = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next()?,
        None => rest.split_whitespace().last()?,
    };
    (!t.is_empty() && !t.starts_with('-')).then(|| t.to_string())
}

/// Scans a whole text at once (tests, small files).
pub fn scan_bytes(data: &[u8]) -> ContentScan {
    let mut s = Scanner::new();
    s.feed(data);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)\n-- Dumped by pg_dump version 15.18\n\nSET x = 0;\n\n--\n-- Name: shop; Type: DATABASE; Schema: -; Owner: postgres\n--\n\nCREATE DATABASE shop WITH TEMPLATE = template0;\n\n\\connect -reuse-previous=on \"dbname='shop'\"\n\nCREATE TABLE public.\"User\" (\n    id integer NOT NULL\n);\n\nCREATE TABLE public.game (\n    id integer\n);\n\nCREATE TABLE public.empty (\n    id integer\n);\n\nCOPY public.\"User\" (id, email) FROM stdin;\n1\ta@b\n2\t\\\\.\n3\tc\n\\.\n\n\nCOPY public.empty (id) FROM stdin;\n\\.\n\n\nCOPY public.game (id) FROM stdin;\n7\n\\.\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n";

    fn check(s: &ContentScan) {
        assert_eq!(s.dbname.as_deref(), Some("shop"));
        assert!(s.server_version.as_deref().unwrap().starts_with("15.18"));
        assert_eq!(s.pg_dump_version.as_deref(), Some("15.18"));
        assert_eq!(
            s.tables,
            vec!["public.\"User\"", "public.game", "public.empty"]
        );
        assert_eq!(s.rows["public.\"User\""], 3);
        assert_eq!(s.rows["public.empty"], 0);
        assert_eq!(s.rows["public.game"], 1);
        assert!(s.complete && s.has_data && !s.schema_only());
    }

    #[test]
    fn rows_header_and_trailer_in_one_piece() {
        let s = scan_bytes(DUMP.as_bytes());
        check(&s);
        assert_eq!(s.bytes, DUMP.len() as u64);
    }

    #[test]
    fn every_chunk_size_gives_the_same_counts() {
        let whole = scan_bytes(DUMP.as_bytes());
        for size in 1..40 {
            let mut sc = Scanner::new();
            for c in DUMP.as_bytes().chunks(size) {
                sc.feed(c);
            }
            let s = sc.finish();
            assert_eq!(s, whole, "chunk size {size}");
        }
    }

    #[test]
    fn long_rows_across_chunks_count_once() {
        let row = "x".repeat(5000);
        let text = format!(
            "COPY public.t (a) FROM stdin;\n{row}\n{row}\n\\.\n-- PostgreSQL database dump complete\n"
        );
        for size in [1, 7, 100, 4096, 7000] {
            let mut sc = Scanner::new();
            for c in text.as_bytes().chunks(size) {
                sc.feed(c);
            }
            let s = sc.finish();
            assert_eq!(s.rows["public.t"], 2, "chunk size {size}");
            assert!(s.complete, "chunk size {size}");
        }
    }

    #[test]
    fn schema_only_and_truncated() {
        let schema = "-- Dumped by pg_dump version 15.18\nCREATE TABLE public.a (\n id int\n);\n-- PostgreSQL database dump complete\n";
        let s = scan_bytes(schema.as_bytes());
        assert!(s.schema_only() && s.complete);
        let cut = &DUMP[..DUMP.find("7\n").unwrap()];
        let s = scan_bytes(cut.as_bytes());
        assert!(!s.complete);
        assert_eq!(s.rows["public.\"User\""], 3);
    }

    #[test]
    fn inserts_count_rows() {
        let t = "CREATE TABLE public.a (\n id int\n);\nINSERT INTO public.a VALUES (1);\nINSERT INTO public.a (id) VALUES (2);\n";
        let s = scan_bytes(t.as_bytes());
        assert_eq!(s.rows["public.a"], 2);
        assert!(s.has_data);
    }

    #[test]
    fn connect_names() {
        assert_eq!(connect_dbname("shop").as_deref(), Some("shop"));
        assert_eq!(connect_dbname("\"My DB\"").as_deref(), Some("My DB"));
        assert_eq!(
            connect_dbname("-reuse-previous=on \"dbname='it''s'\"").as_deref(),
            Some("it's")
        );
    }
}
