//! A small, forgiving reader of POSIX shell text (scripts, cron commands,
//! unit command lines) for the scanner. It never runs anything and never
//! fails: what it does not understand stays as plain words.

use std::collections::HashMap;

/// A logical line: physical lines joined where a backslash continues them or
/// a quote stays open. `no` is the 1-based number of its first physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub no: usize,
    /// The text with continuations joined (what the shell sees).
    pub text: String,
    /// The physical lines as written, joined with '\n' (the evidence).
    pub raw: String,
    /// A here-document body line (data fed to a command, not a command).
    pub heredoc: bool,
}

/// Splits a script into logical lines, marking here-document bodies.
pub fn logical_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let phys: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut heredocs: Vec<(String, bool)> = Vec::new();
    while i < phys.len() {
        if let Some((delim, strip)) = heredocs.first().cloned() {
            let l = phys[i];
            let cmp = if strip { l.trim_start_matches('\t') } else { l };
            if cmp == delim {
                heredocs.remove(0);
            } else {
                out.push(Line {
                    no: i + 1,
                    text: l.to_string(),
                    raw: l.to_string(),
                    heredoc: true,
                });
            }
            i += 1;
            continue;
        }
        let start = i;
        let mut text = String::new();
        let mut raw = String::new();
        loop {
            let l = phys[i];
            if !raw.is_empty() {
                raw.push('\n');
            }
            raw.push_str(l);
            i += 1;
            let trailing = l.len() - l.trim_end_matches('\\').len();
            if trailing % 2 == 1 && i < phys.len() {
                text.push_str(&l[..l.len() - 1]);
                continue;
            }
            text.push_str(l);
            if open_quote(&text) && i < phys.len() && i - start < 200 {
                text.push('\n');
                continue;
            }
            break;
        }
        heredocs.extend(heredoc_starts(&text));
        out.push(Line {
            no: start + 1,
            text,
            raw,
            heredoc: false,
        });
    }
    out
}

/// True when `text` ends inside a single- or double-quoted string.
fn open_quote(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    let mut single = false;
    let mut double = false;
    let mut at_word_start = true;
    while let Some(c) = chars.next() {
        if single {
            if c == '\'' {
                single = false;
            }
            continue;
        }
        match c {
            '\\' => {
                chars.next();
            }
            '"' => double = !double,
            '\'' if !double => single = true,
            '#' if !double && at_word_start => {
                // A comment runs to the end of its line.
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
        at_word_start = c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(');
    }
    single || double
}

/// Here-document delimiters opened on a line (`<<EOF`, `<<-'EOF'`).
fn heredoc_starts(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let toks = tokenize(text).0;
    let mut it = toks.iter().peekable();
    while let Some(t) = it.next() {
        if let Tok::Op(Op::HereDoc { strip }) = t
            && let Some(Tok::Word(w)) = it.peek()
        {
            out.push((w.text.clone(), *strip));
        }
    }
    out
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Word {
    /// Quotes removed, `$VAR` and `$(...)` kept as written.
    pub text: String,
    /// Some part of the word was quoted.
    pub quoted: bool,
    /// Byte offset in `text` where the first quoted part starts.
    pub first_quote: Option<usize>,
}

impl Word {
    fn mark_quoted(&mut self) {
        if !self.quoted {
            self.quoted = true;
            self.first_quote = Some(self.text.len());
        }
    }
    /// `NAME=value` with an unquoted name (the value may be quoted).
    fn assignment(&self) -> Option<(String, String)> {
        let (k, v) = is_assignment(&self.text)?;
        self.first_quote
            .is_none_or(|q| q > k.len())
            .then_some((k, v))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Pipe,
    And,
    Or,
    Semi,
    Amp,
    In,
    Out,
    Append,
    HereDoc { strip: bool },
    HereString,
    Dup,
    LParen,
    RParen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Word(Word),
    Op(Op),
}

/// Splits shell text into words and operators. Also returns the bodies of
/// command substitutions (`$(...)`, backticks, `<(...)`), which are commands
/// of their own.
pub fn tokenize(text: &str) -> (Vec<Tok>, Vec<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut subs = Vec::new();
    let mut cur: Option<Word> = None;
    let mut i = 0;
    fn push(cur: &mut Option<Word>, c: char) {
        cur.get_or_insert_with(Word::default).text.push(c);
    }
    fn push_str(cur: &mut Option<Word>, s: &str) {
        cur.get_or_insert_with(Word::default).text.push_str(s);
    }
    fn finish(cur: &mut Option<Word>, toks: &mut Vec<Tok>) {
        if let Some(w) = cur.take() {
            toks.push(Tok::Word(w));
        }
    }
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' | '\r' => {
                finish(&mut cur, &mut toks);
                i += 1;
            }
            '\n' => {
                finish(&mut cur, &mut toks);
                toks.push(Tok::Op(Op::Semi));
                i += 1;
            }
            '#' if cur.is_none() => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                if let Some(n) = next
                    && n != '\n'
                {
                    push(&mut cur, n);
                }
                i += 2;
            }
            '\'' => {
                let w = cur.get_or_insert_with(Word::default);
                w.mark_quoted();
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    w.text.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                cur.get_or_insert_with(Word::default).mark_quoted();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    let d = chars[i];
                    if d == '\\' && i + 1 < chars.len() && "\"\\$`\n".contains(chars[i + 1]) {
                        if chars[i + 1] != '\n' {
                            push(&mut cur, chars[i + 1]);
                        }
                        i += 2;
                    } else if d == '$' && chars.get(i + 1) == Some(&'(') {
                        let (inner, end) = balanced(&chars, i + 1);
                        if !inner.starts_with('(') {
                            subs.push(inner.clone());
                        }
                        push_str(&mut cur, &format!("$({inner})"));
                        i = end;
                    } else if d == '`' {
                        let (inner, end) = backtick(&chars, i);
                        subs.push(inner.clone());
                        push_str(&mut cur, &format!("`{inner}`"));
                        i = end;
                    } else {
                        push(&mut cur, d);
                        i += 1;
                    }
                }
                i += 1;
            }
            '$' if next == Some('(') => {
                let (inner, end) = balanced(&chars, i + 1);
                if !inner.starts_with('(') {
                    subs.push(inner.clone());
                }
                push_str(&mut cur, &format!("$({inner})"));
                i = end;
            }
            '`' => {
                let (inner, end) = backtick(&chars, i);
                subs.push(inner.clone());
                push_str(&mut cur, &format!("`{inner}`"));
                i = end;
            }
            '<' | '>' if next == Some('(') => {
                let (inner, end) = balanced(&chars, i + 1);
                subs.push(inner.clone());
                push_str(&mut cur, &format!("{c}({inner})"));
                i = end;
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' => {
                // `2>` / `2>&1`: a word of digits right before a redirection is its fd.
                if matches!(c, '<' | '>')
                    && cur
                        .as_ref()
                        .is_some_and(|w| !w.quoted && w.text.chars().all(|d| d.is_ascii_digit()))
                {
                    cur = None;
                }
                finish(&mut cur, &mut toks);
                let (op, len) = match (c, next, chars.get(i + 2).copied()) {
                    ('|', Some('|'), _) => (Op::Or, 2),
                    ('|', Some('&'), _) => (Op::Pipe, 2),
                    ('|', _, _) => (Op::Pipe, 1),
                    ('&', Some('&'), _) => (Op::And, 2),
                    ('&', Some('>'), Some('>')) => (Op::Append, 3),
                    ('&', Some('>'), _) => (Op::Out, 2),
                    ('&', _, _) => (Op::Amp, 1),
                    (';', Some(';'), _) => (Op::Semi, 2),
                    (';', _, _) => (Op::Semi, 1),
                    ('<', Some('<'), Some('<')) => (Op::HereString, 3),
                    ('<', Some('<'), Some('-')) => (Op::HereDoc { strip: true }, 3),
                    ('<', Some('<'), _) => (Op::HereDoc { strip: false }, 2),
                    ('<', Some('&'), _) => (Op::Dup, 2),
                    ('<', Some('>'), _) => (Op::In, 2),
                    ('<', _, _) => (Op::In, 1),
                    ('>', Some('>'), _) => (Op::Append, 2),
                    ('>', Some('&'), _) => (Op::Dup, 2),
                    ('>', Some('|'), _) => (Op::Out, 2),
                    ('>', _, _) => (Op::Out, 1),
                    ('(', _, _) => (Op::LParen, 1),
                    _ => (Op::RParen, 1),
                };
                toks.push(Tok::Op(op));
                i += len;
            }
            _ => {
                push(&mut cur, c);
                i += 1;
            }
        }
    }
    finish(&mut cur, &mut toks);
    (toks, subs)
}

/// From `chars[open] == '('`, the text up to the matching ')' and the index after it.
fn balanced(chars: &[char], open: usize) -> (String, usize) {
    let mut depth = 0usize;
    let mut i = open;
    let mut single = false;
    let mut double = false;
    while i < chars.len() {
        let c = chars[i];
        if single {
            if c == '\'' {
                single = false;
            }
        } else if c == '\\' {
            i += 1;
        } else if c == '\'' && !double {
            single = true;
        } else if c == '"' {
            double = !double;
        } else if !double && c == '(' {
            depth += 1;
        } else if !double && c == ')' {
            depth -= 1;
            if depth == 0 {
                return (chars[open + 1..i].iter().collect(), i + 1);
            }
        }
        i += 1;
    }
    (
        chars[(open + 1).min(chars.len())..].iter().collect(),
        chars.len(),
    )
}

fn backtick(chars: &[char], open: usize) -> (String, usize) {
    let mut i = open + 1;
    let mut s = String::new();
    while i < chars.len() && chars[i] != '`' {
        if chars[i] == '\\' && i + 1 < chars.len() {
            s.push(chars[i + 1]);
            i += 2;
            continue;
        }
        s.push(chars[i]);
        i += 1;
    }
    (s, i + 1)
}

/// One simple command: leading assignments, words, and redirections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmd {
    pub assigns: Vec<(String, String)>,
    pub argv: Vec<String>,
    /// `< FILE`
    pub stdin_file: Option<String>,
    /// `> FILE` / `>> FILE` (stdout only)
    pub stdout_file: Option<String>,
    /// Fed by a here-document or here-string.
    pub heredoc: bool,
}

/// Commands joined by `|`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipeline {
    pub cmds: Vec<Cmd>,
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time",
    "esac", "in",
];

fn is_assignment(w: &str) -> Option<(String, String)> {
    let (k, v) = w.split_once('=')?;
    let mut ch = k.chars();
    let first = ch.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then(|| (k.to_string(), v.to_string()))
}

/// Parses shell text into pipelines (after expanding known variables).
/// Command substitutions are returned separately, already expanded.
pub fn parse(text: &str, vars: &Vars) -> (Vec<Pipeline>, Vec<String>) {
    let (toks, subs) = tokenize(text);
    let mut pipes = Vec::new();
    let mut pipe = Pipeline::default();
    let mut cmd = Cmd::default();
    let mut skip_until_sep = false;
    let mut it = toks.into_iter().peekable();
    let end_cmd = |cmd: &mut Cmd, pipe: &mut Pipeline| {
        let c = std::mem::take(cmd);
        if !c.argv.is_empty() || !c.assigns.is_empty() {
            pipe.cmds.push(c);
        }
    };
    while let Some(t) = it.next() {
        match t {
            Tok::Word(w) => {
                if skip_until_sep {
                    if w.text == "do" && !w.quoted {
                        skip_until_sep = false;
                    }
                    continue;
                }
                let text = vars.expand(&w.text);
                if cmd.argv.is_empty() {
                    if !w.quoted && KEYWORDS.contains(&w.text.as_str()) {
                        continue;
                    }
                    if !w.quoted && (w.text == "for" || w.text == "case" || w.text == "select") {
                        skip_until_sep = true;
                        continue;
                    }
                    if let Some(a) = w.assignment() {
                        cmd.assigns.push((a.0, vars.expand(&a.1)));
                        continue;
                    }
                }
                cmd.argv.push(text);
            }
            Tok::Op(op) => {
                let mut target = || match it.peek() {
                    Some(Tok::Word(w)) => {
                        let t = vars.expand(&w.text);
                        it.next();
                        Some(t)
                    }
                    _ => None,
                };
                match op {
                    Op::In => cmd.stdin_file = target(),
                    Op::Out | Op::Append => cmd.stdout_file = target(),
                    Op::Dup => {
                        target();
                    }
                    Op::HereDoc { .. } | Op::HereString => {
                        target();
                        cmd.heredoc = true;
                    }
                    Op::Pipe => end_cmd(&mut cmd, &mut pipe),
                    Op::LParen | Op::RParen => {
                        // `name() {` defines a function; `( ... )` is a subshell.
                        if op == Op::LParen
                            && cmd.argv.len() == 1
                            && matches!(it.peek(), Some(Tok::Op(Op::RParen)))
                        {
                            cmd.argv.clear();
                            it.next();
                        }
                        end_cmd(&mut cmd, &mut pipe);
                        if !pipe.cmds.is_empty() {
                            pipes.push(std::mem::take(&mut pipe));
                        }
                    }
                    Op::And | Op::Or | Op::Semi | Op::Amp => {
                        skip_until_sep = false;
                        end_cmd(&mut cmd, &mut pipe);
                        if !pipe.cmds.is_empty() {
                            pipes.push(std::mem::take(&mut pipe));
                        }
                    }
                }
            }
        }
    }
    end_cmd(&mut cmd, &mut pipe);
    if !pipe.cmds.is_empty() {
        pipes.push(pipe);
    }
    let subs = subs.into_iter().collect();
    (pipes, subs)
}

/// Shell variables known so far in a script (assignments, unit
/// `Environment=`, crontab variables).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: HashMap<String, String>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(&mut self, k: &str, v: &str) {
        self.map.insert(k.to_string(), v.to_string());
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    /// Replaces `$NAME`, `${NAME}` and `${NAME:-default}` by known values;
    /// unknown variables stay as written, so two mentions still compare equal.
    pub fn expand(&self, s: &str) -> String {
        if !s.contains('$') {
            return s.to_string();
        }
        let b: Vec<char> = s.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != '$' {
                out.push(b[i]);
                i += 1;
                continue;
            }
            if b.get(i + 1) == Some(&'{') {
                let Some(close) = b[i + 2..].iter().position(|c| *c == '}') else {
                    out.push('$');
                    i += 1;
                    continue;
                };
                let inner: String = b[i + 2..i + 2 + close].iter().collect();
                let (name, default) = match inner.find([':', '-', '=']) {
                    Some(p) => {
                        let rest = inner[p..].trim_start_matches(':');
                        let default = rest.strip_prefix('-').or_else(|| rest.strip_prefix('='));
                        (&inner[..p], default)
                    }
                    None => (inner.as_str(), None),
                };
                match (self.map.get(name), default) {
                    (Some(v), _) if !v.is_empty() => out.push_str(v),
                    (_, Some(d)) => out.push_str(&self.expand(d)),
                    (Some(v), None) => out.push_str(v),
                    (None, None) => {
                        out.push_str("${");
                        out.push_str(&inner);
                        out.push('}');
                    }
                }
                i += close + 3;
                continue;
            }
            let name: String = b[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            if name.is_empty() || name.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                out.push('$');
                i += 1;
                continue;
            }
            match self.map.get(&name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push('$');
                    out.push_str(&name);
                }
            }
            i += 1 + name.chars().count();
        }
        out
    }

    /// Records the assignments a line makes (`A=b`, `export A=b`, `local A=b`).
    pub fn learn(&mut self, pipes: &[Pipeline]) {
        for p in pipes {
            for c in &p.cmds {
                if c.argv.is_empty() {
                    for (k, v) in &c.assigns {
                        self.set(k, v);
                    }
                } else if matches!(
                    c.argv[0].as_str(),
                    "export" | "local" | "readonly" | "declare" | "typeset"
                ) {
                    for w in &c.argv[1..] {
                        if let Some((k, v)) = is_assignment(w) {
                            self.set(&k, &v);
                        }
                    }
                }
            }
        }
    }
}

/// The last path component of a program word.
pub fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn argvs(text: &str) -> Vec<Vec<Vec<String>>> {
        parse(text, &Vars::new())
            .0
            .into_iter()
            .map(|p| p.cmds.into_iter().map(|c| c.argv).collect())
            .collect()
    }

    #[test]
    fn continuation_and_open_quotes_make_one_logical_line() {
        let t = "a=1\npg_dump --clean \\\n  -h x db | psql\npsql -c \"\nDROP DATABASE x;\n\"\necho done\n";
        let l = logical_lines(t);
        assert_eq!(l.len(), 4);
        assert_eq!(l[1].no, 2);
        assert_eq!(l[1].text, "pg_dump --clean   -h x db | psql");
        assert_eq!(l[1].raw, "pg_dump --clean \\\n  -h x db | psql");
        assert_eq!(l[2].no, 4);
        assert!(l[2].text.contains("DROP DATABASE"));
        assert_eq!(l[3].no, 7);
    }

    #[test]
    fn heredoc_bodies_are_marked() {
        let t =
            "psql -h ext <<'SQL'\nTRUNCATE \"User\";\nSQL\necho after\ncat <<-EOF\n\tx\n\tEOF\n";
        let l = logical_lines(t);
        let kinds: Vec<(usize, bool)> = l.iter().map(|l| (l.no, l.heredoc)).collect();
        assert_eq!(
            kinds,
            vec![(1, false), (2, true), (4, false), (5, false), (6, true)]
        );
    }

    #[rstest]
    #[case("pg_dump -c db | psql -h other db", vec![vec![vec!["pg_dump", "-c", "db"], vec!["psql", "-h", "other", "db"]]])]
    #[case("if [ \"$N\" -lt 5 ]; then restore; fi", vec![vec![vec!["[", "$N", "-lt", "5", "]"]], vec![vec!["restore"]]])]
    #[case("a && b || c & d", vec![vec![vec!["a"]], vec![vec!["b"]], vec![vec!["c"]], vec![vec!["d"]]])]
    #[case("echo 'x y' \"a b\" c\\ d # comment", vec![vec![vec!["echo", "x y", "a b", "c d"]]])]
    #[case("sync() {\n  x\n}", vec![vec![vec!["x"]]])]
    #[case("for f in a b; do rm $f; done", vec![vec![vec!["rm", "$f"]]])]
    fn parses_commands(#[case] text: &str, #[case] want: Vec<Vec<Vec<&str>>>) {
        let want: Vec<Vec<Vec<String>>> = want
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|c| c.into_iter().map(String::from).collect())
                    .collect()
            })
            .collect();
        assert_eq!(argvs(text), want);
    }

    #[test]
    fn redirections_and_substitutions() {
        let (p, subs) = parse(
            "N=$(psql -tAc 'select count(*) from \"User\"') ; psql -h ext app < /tmp/b.sql 2>&1 > out.log",
            &Vars::new(),
        );
        assert_eq!(subs, vec!["psql -tAc 'select count(*) from \"User\"'"]);
        assert_eq!(p[0].cmds[0].assigns[0].0, "N");
        let c = &p[1].cmds[0];
        assert_eq!(c.argv, vec!["psql", "-h", "ext", "app"]);
        assert_eq!(c.stdin_file.as_deref(), Some("/tmp/b.sql"));
        assert_eq!(c.stdout_file.as_deref(), Some("out.log"));
    }

    #[rstest]
    #[case("$H:${P}/${DB:-app}", "ext:5432/app")]
    #[case("${MISSING}x$MISSING", "${MISSING}x$MISSING")]
    #[case("${NONE:-fallback}", "fallback")]
    #[case("$1 $$ $", "$1 $$ $")]
    fn expands_known_variables(#[case] s: &str, #[case] want: &str) {
        let mut v = Vars::new();
        v.set("H", "ext");
        v.set("P", "5432");
        assert_eq!(v.expand(s), want);
    }

    #[test]
    fn quoted_values_are_assignments_quoted_names_are_not() {
        let (p, _) = parse("A=\"x y\" B='z' \"C=1\" cmd", &Vars::new());
        let c = &p[0].cmds[0];
        assert_eq!(
            c.assigns,
            vec![("A".into(), "x y".into()), ("B".into(), "z".into())]
        );
        assert_eq!(c.argv, vec!["C=1", "cmd"]);
    }

    #[test]
    fn learns_assignments_in_order() {
        let mut v = Vars::new();
        for l in logical_lines("export PGHOST=db.ext\nDUMP=/tmp/x_$(date +%s).sql\nOUT=$DUMP.gz\n")
        {
            let (p, _) = parse(&l.text, &v);
            v.learn(&p);
        }
        assert_eq!(v.get("PGHOST"), Some("db.ext"));
        assert_eq!(v.get("OUT"), Some("/tmp/x_$(date +%s).sql.gz"));
    }
}
