//! Property tests of the dump lexer: no panic on arbitrary bytes, and the
//! same statements, COPY data, meta-commands and errors whatever the input
//! chunking (a network stream splits anywhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lifeline::restore::lexer::{Item, LexError, Lexer};
use proptest::prelude::*;

/// What the lexer produced, with COPY data joined per block (its chunking
/// legitimately follows the input's).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Norm {
    Item(Item),
    Copy { data: Vec<u8>, lines: u64 },
    Err(LexError),
    Done { trailer: bool },
}

fn lex_chunks(input: &[u8], cuts: &[usize]) -> Vec<Norm> {
    let mut lx = Lexer::new();
    let mut out = Vec::new();
    let mut copy: Option<(Vec<u8>, u64, u64, u64)> = None;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    bounds.dedup();
    let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &input[w[0]..w[1]]).collect();
    let mut drain = |lx: &mut Lexer, out: &mut Vec<Norm>| -> bool {
        loop {
            match lx.next_item() {
                Ok(Some(Item::CopyData(c))) => {
                    let (data, lines, next_line, next_offset) =
                        copy.get_or_insert_with(|| (Vec::new(), 0, c.line, c.offset));
                    // Chunks are contiguous and their lines add up.
                    assert_eq!(c.offset, *next_offset);
                    assert_eq!(c.line, *next_line);
                    data.extend_from_slice(&c.data);
                    *lines += c.lines;
                    *next_line += c.lines;
                    *next_offset += c.data.len() as u64;
                }
                Ok(Some(item)) => {
                    if let Some((data, lines, _, _)) = copy.take() {
                        out.push(Norm::Copy { data, lines });
                    }
                    out.push(Norm::Item(item));
                }
                Ok(None) => return true,
                Err(e) => {
                    if let Some((data, lines, _, _)) = copy.take() {
                        out.push(Norm::Copy { data, lines });
                    }
                    out.push(Norm::Err(e));
                    return false;
                }
            }
        }
    };
    for p in pieces {
        lx.push(p);
        if !drain(&mut lx, &mut out) {
            return out;
        }
    }
    lx.finish_input();
    if drain(&mut lx, &mut out) {
        assert!(lx.is_done());
        out.push(Norm::Done {
            trailer: lx.saw_trailer(),
        });
    }
    out
}

/// Statements and COPY blocks sit exactly where they say they are.
fn check_positions(input: &[u8], items: &[Norm]) {
    for n in items {
        let stmt = match n {
            Norm::Item(Item::Statement(s)) | Norm::Item(Item::CopyStart { stmt: s, .. }) => s,
            _ => continue,
        };
        let at = stmt.offset as usize;
        assert_eq!(&input[at..at + stmt.sql.len()], stmt.sql.as_bytes());
        let line = input[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        assert_eq!(stmt.line, line);
        assert!(stmt.sql.ends_with(';'));
    }
}

const FRAGMENTS: &[&str] = &[
    "SELECT ",
    "1",
    "x",
    "e",
    "E",
    " ",
    "\n",
    "\r\n",
    "\t",
    ";",
    "(",
    ")",
    "'",
    "''",
    "E'",
    "e'",
    "\\",
    "\\\\",
    "\\'",
    "\"",
    "\"\"",
    "$",
    "$$",
    "$a$",
    "$b$",
    "$1",
    "a$b",
    "--",
    "-- x;\n",
    "/*",
    "*/",
    "/* ; */",
    "-",
    "/",
    "*",
    "COPY t (a) FROM stdin;\n",
    "COPY public.\"x;y\" FROM stdin;\n",
    "1\t2\n",
    "\\N\n",
    "a\\.b\n",
    "\\.\n",
    "\\.\r\n",
    "\\.",
    "\\restrict k\n",
    "\\unrestrict k\n",
    "\\connect db\n",
    "\\set ON_ERROR_STOP on\n",
    "\\g\n",
    "\\! ls\n",
    "BEGIN",
    "END",
    "CASE",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC ",
    "CREATE OR REPLACE PROCEDURE p() ",
    "SET standard_conforming_strings = off;",
    "SET standard_conforming_strings = on;",
    "-- Name: t; Type: TABLE; Schema: public; Owner: x\n",
    "-- PostgreSQL database dump complete\n",
    "é",
    "\u{0}",
    "\u{ff}",
];

fn sqlish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(|s| s.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..4),
        ],
        0..80,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..3000),
                                   cuts in prop::collection::vec(any::<usize>(), 0..20)) {
        let whole = lex_chunks(&input, &[]);
        check_positions(&input, &whole);
        prop_assert_eq!(whole, lex_chunks(&input, &cuts));
    }

    #[test]
    fn boundaries_are_stable_under_rechunking(input in sqlish(),
                                              cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let whole = lex_chunks(&input, &[]);
        check_positions(&input, &whole);
        prop_assert_eq!(&whole, &lex_chunks(&input, &cuts));
        // Byte by byte, the worst case for lookahead.
        let every: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&whole, &lex_chunks(&input, &every));
    }
}

proptest! {
    /// The classifier sees every statement the lexer hands out: it must
    /// never panic either.
    #[test]
    fn classify_never_panics(s in "\\PC{0,200}", frag in prop::sample::select(FRAGMENTS)) {
        let _ = lifeline::restore::sql::classify(&s);
        let _ = lifeline::restore::sql::classify(&format!("{frag}{s}{frag}"));
        let _ = lifeline::restore::sql::copy_from_stdin_table(&format!("COPY {s}"));
    }
}

#[test]
fn a_real_shaped_dump_byte_by_byte() {
    let dump = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\nSET standard_conforming_strings = on;\n\
        CREATE FUNCTION public.f() RETURNS trigger LANGUAGE plpgsql AS $_$\nBEGIN PERFORM $x$ ; $$ $x$; RETURN NEW; END\n$_$;\n\
        COPY public.\"weird;name\" (id, t) FROM stdin;\n1\ta\\\\.b;c\\n\\\\.\n2\t\\N\n\\.\n\n\
        CREATE INDEX i ON public.t USING btree (a);\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";
    let whole = lex_chunks(dump.as_bytes(), &[]);
    let every: Vec<usize> = (0..dump.len()).collect();
    assert_eq!(whole, lex_chunks(dump.as_bytes(), &every));
    assert_eq!(whole.last(), Some(&Norm::Done { trailer: true }));
    let statements = whole
        .iter()
        .filter(|n| matches!(n, Norm::Item(Item::Statement(_) | Item::CopyStart { .. })))
        .count();
    assert_eq!(statements, 4);
}
