//! `{name}` / `{step.field}` references inside runbook strings; in shell
//! commands values are shell-quoted unless marked `{raw:name}`. Rendering is
//! pure; it never reads the world.

use crate::transport::shell_quote;

use serde_json::Value;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Lit(String),
    /// `{name}` or `{name.field.sub}`; `raw` for `{raw:name}`, inserted
    /// into a shell command unquoted.
    Ref {
        name: String,
        path: Vec<String>,
        raw: bool,
    },
}

/// A parsed string with `{...}` references; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub raw: String,
    pub segs: Vec<Seg>,
}

impl Template {
    pub fn parse(raw: &str) -> Result<Template, String> {
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "'{{{name}' is not closed: write '{{name}}' for a reference or '{{{{' for a literal brace"
                        ));
                    }
                    let trimmed = name.trim();
                    let (raw, body) = match trimmed.strip_prefix("raw:") {
                        Some(b) => (true, b.trim()),
                        None => (false, trimmed),
                    };
                    let mut parts = body.split('.').map(str::to_string);
                    let head = parts.next().unwrap_or_default();
                    let path: Vec<String> = parts.collect();
                    if !valid_name(&head) || path.iter().any(|p| !valid_name(p)) {
                        return Err(format!(
                            "'{{{name}}}' is not a reference: use '{{param}}' or '{{step-id.field}}' (letters, digits, '-' and '_')"
                        ));
                    }
                    if !lit.is_empty() {
                        segs.push(Seg::Lit(std::mem::take(&mut lit)));
                    }
                    segs.push(Seg::Ref {
                        name: head,
                        path,
                        raw,
                    });
                }
                '}' => {
                    return Err("a lone '}' : write '}}' for a literal brace".to_string());
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit));
        }
        Ok(Template {
            raw: raw.to_string(),
            segs,
        })
    }

    /// The references, in order.
    pub fn refs(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.segs.iter().filter_map(|s| match s {
            Seg::Ref { name, path, .. } => Some((name.as_str(), path.as_slice())),
            Seg::Lit(_) => None,
        })
    }

    /// The `{raw:...}` references, as written without the marker.
    pub fn raw_refs(&self) -> Vec<String> {
        self.segs
            .iter()
            .filter_map(|s| match s {
                Seg::Ref {
                    name,
                    path,
                    raw: true,
                } => Some(join(name, path)),
                _ => None,
            })
            .collect()
    }

    pub fn is_literal(&self) -> bool {
        self.refs().next().is_none()
    }

    /// Renders with `lookup`; an unresolved reference is an error naming it.
    pub fn render(
        &self,
        lookup: &dyn Fn(&str, &[String]) -> Option<String>,
    ) -> Result<String, String> {
        self.render_as(lookup, false)
    }

    /// Renders a shell command: every value shell-quoted (one word, whatever
    /// bytes it holds) except `{raw:...}` ones.
    pub fn render_shell(
        &self,
        lookup: &dyn Fn(&str, &[String]) -> Option<String>,
    ) -> Result<String, String> {
        self.render_as(lookup, true)
    }

    fn render_as(
        &self,
        lookup: &dyn Fn(&str, &[String]) -> Option<String>,
        shell: bool,
    ) -> Result<String, String> {
        let mut out = String::new();
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Ref { name, path, raw } => match lookup(name, path) {
                    Some(v) if shell && !raw => out.push_str(&shell_quote(&v)),
                    Some(v) => out.push_str(&v),
                    None => return Err(format!("'{{{}}}' has no value yet", join(name, path))),
                },
            }
        }
        Ok(out)
    }

    /// Renders, writing `<name.field>` for references without a value (dry-run plans).
    pub fn render_lenient(&self, lookup: &dyn Fn(&str, &[String]) -> Option<String>) -> String {
        self.lenient_as(lookup, false)
    }

    /// [`Template::render_shell`] for dry-run plans.
    pub fn render_shell_lenient(
        &self,
        lookup: &dyn Fn(&str, &[String]) -> Option<String>,
    ) -> String {
        self.lenient_as(lookup, true)
    }

    fn lenient_as(
        &self,
        lookup: &dyn Fn(&str, &[String]) -> Option<String>,
        shell: bool,
    ) -> String {
        let mut out = String::new();
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Ref { name, path, raw } => match lookup(name, path) {
                    Some(v) if shell && !raw => out.push_str(&shell_quote(&v)),
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('<');
                        out.push_str(&join(name, path));
                        out.push('>');
                    }
                },
            }
        }
        out
    }
}

fn join(name: &str, path: &[String]) -> String {
    let mut s = name.to_string();
    for p in path {
        s.push('.');
        s.push_str(p);
    }
    s
}

/// Step ids, parameter names and field names: `[A-Za-z0-9_-]+`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `value.path...` as text: strings as they are, numbers and booleans
/// printed, objects and arrays as compact JSON.
pub fn json_field(value: &Value, path: &[String]) -> Option<String> {
    let mut v = value;
    for p in path {
        v = match v {
            Value::Object(m) => m.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("plain", vec![Seg::Lit("plain".into())])]
    #[case("{db}", vec![Seg::Ref { name: "db".into(), path: vec![], raw: false }])]
    #[case("{raw:cmd}", vec![Seg::Ref { name: "cmd".into(), path: vec![], raw: true }])]
    #[case("x {restore.target_db}!", vec![
        Seg::Lit("x ".into()),
        Seg::Ref { name: "restore".into(), path: vec!["target_db".into()], raw: false },
        Seg::Lit("!".into()),
    ])]
    #[case("{{literal}}", vec![Seg::Lit("{literal}".into())])]
    fn parses(#[case] raw: &str, #[case] segs: Vec<Seg>) {
        assert_eq!(Template::parse(raw).unwrap().segs, segs);
    }

    #[rstest]
    #[case("{db")]
    #[case("{}")]
    #[case("{a b}")]
    #[case("x } y")]
    #[case("{a..b}")]
    fn rejects(#[case] raw: &str) {
        assert!(Template::parse(raw).is_err(), "{raw}");
    }

    #[test]
    fn renders_strict_and_lenient() {
        let t = Template::parse("ALTER {db} <- {restore.target_db}").unwrap();
        let look = |n: &str, p: &[String]| (n == "db" && p.is_empty()).then(|| "app".to_string());
        assert!(t.render(&look).unwrap_err().contains("restore.target_db"));
        assert_eq!(t.render_lenient(&look), "ALTER app <- <restore.target_db>");
    }

    #[rstest]
    #[case("app;touch X;.sql")]
    #[case("$(touch X).sql")]
    #[case("`touch X`.sql")]
    #[case("a\ntouch X\n.sql")]
    #[case("it's \"quoted\".sql")]
    #[case("")]
    fn shell_values_are_one_word(#[case] value: &str) {
        let t = Template::parse("ls -l -- {pick.backup.path} && echo {raw:extra}").unwrap();
        assert_eq!(t.raw_refs(), vec!["extra".to_string()]);
        let look = |n: &str, _: &[String]| {
            Some(if n == "pick" {
                value.to_string()
            } else {
                "x y".to_string()
            })
        };
        let out = t.render_shell(&look).unwrap();
        assert_eq!(out, format!("ls -l -- {} && echo x y", shell_quote(value)));
        // Plain rendering (SQL names, notes) is unchanged.
        assert_eq!(
            t.render(&look).unwrap(),
            format!("ls -l -- {value} && echo x y")
        );
    }

    #[test]
    fn json_fields() {
        let v = serde_json::json!({"backup": {"path": "/b/x.sql", "size": 5}, "ok": true});
        assert_eq!(
            json_field(&v, &["backup".into(), "path".into()]).unwrap(),
            "/b/x.sql"
        );
        assert_eq!(
            json_field(&v, &["backup".into(), "size".into()]).unwrap(),
            "5"
        );
        assert_eq!(json_field(&v, &["ok".into()]).unwrap(), "true");
        assert!(json_field(&v, &["nope".into()]).is_none());
    }
}
