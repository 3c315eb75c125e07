//! Look-alike database names: a name that differs from a watched one only by
//! case, Unicode confusables (NFKC + a small homoglyph map), invisible
//! characters or a `__restore_`/`__damaged_` suffix. Pure; never decides
//! that two different names are the same database, it only warns.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// How a name differs from the one it looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Only upper/lower case differs (`tovplay` for `TovPlay`).
    Case,
    /// A character that looks the same (Cyrillic `о`, digit `0`, `1`/`l`/`I`).
    Confusable,
    /// Zero-width or bidi characters that a terminal does not show.
    Invisible,
    /// A `__restore_…` or `__damaged_…` copy lifeline (or someone) made.
    Suffix,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Case => "case",
            Kind::Confusable => "confusable",
            Kind::Invisible => "invisible",
            Kind::Suffix => "suffix",
        }
    }
}

/// One look-alike: `name` looks like `looks_like` but is another database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LookAlike {
    /// The name as the server has it (may hold invisible characters).
    pub name: String,
    /// The name with every non-ASCII or invisible character as `<U+XXXX>`.
    pub shown: String,
    /// The inventory database name it can be mistaken for.
    pub looks_like: String,
    pub kinds: Vec<Kind>,
    /// Sessions connected to it (`pg_stat_activity`); None when not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<i64>,
}

impl LookAlike {
    /// `'tovplay' looks like 'TovPlay' (case)`.
    pub fn describe(&self) -> String {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        format!(
            "'{}' looks like '{}' ({})",
            self.shown,
            show(&self.looks_like),
            kinds.join(", ")
        )
    }
}

const SUFFIXES: &[&str] = &["__restore_", "__damaged_"];

/// Zero-width, joiner, bidi mark/override/isolate, BOM, soft hyphen.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{3164}'
            | '\u{feff}'
            | '\u{ffa0}'
    ) || c.is_control()
}

fn homoglyph(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'е' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'х' => 'x',
        'у' => 'y',
        'А' => 'A',
        'В' => 'B',
        'Е' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'Х' => 'X',
        'У' => 'Y',
        // Greek
        'ο' => 'o',
        'ν' => 'v',
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Χ' => 'X',
        'Υ' => 'Y',
        'Ζ' => 'Z',
        // Digits and letters
        '0' => 'O',
        '1' | 'I' => 'l',
        other => other,
    }
}

/// The name as an eye reads it: invisible characters dropped, NFKC,
/// homoglyphs mapped, lower case.
pub fn skeleton(name: &str) -> String {
    let visible: String = name.chars().filter(|c| !is_invisible(*c)).collect();
    visible
        .nfkc()
        .map(homoglyph)
        .collect::<String>()
        .to_lowercase()
}

/// The name with a `__restore_…`/`__damaged_…` suffix cut off, if it has one.
fn without_suffix(name: &str) -> Option<&str> {
    SUFFIXES
        .iter()
        .filter_map(|s| name.find(s).map(|i| &name[..i]))
        .find(|b| !b.is_empty())
}

/// The name with every invisible or non-ASCII character as `<U+XXXX>`, so
/// two look-alikes never print the same.
pub fn show(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
    }
    out
}

/// How `candidate` differs from `target` when it only looks like it; None
/// when they are the same name or plainly different.
pub fn compare(candidate: &str, target: &str) -> Option<Vec<Kind>> {
    if candidate == target || target.is_empty() {
        return None;
    }
    let mut kinds = Vec::new();
    let mut c = candidate;
    if let Some(base) = without_suffix(c)
        && without_suffix(target).is_none()
    {
        kinds.push(Kind::Suffix);
        c = base;
    }
    if c == target {
        return Some(kinds);
    }
    let stripped: String = c.chars().filter(|ch| !is_invisible(*ch)).collect();
    if stripped != c {
        kinds.push(Kind::Invisible);
    }
    if stripped == target {
        return Some(kinds);
    }
    if stripped.to_lowercase() == target.to_lowercase() {
        kinds.push(Kind::Case);
        return Some(kinds);
    }
    if skeleton(&stripped) == skeleton(target) {
        kinds.push(Kind::Confusable);
        // Case differs too when two letters (digits are caseless) read the
        // same but for their case, e.g. `tоvplay` for `TovPlay`.
        let mapped =
            |s: &str| -> Vec<(char, char)> { s.nfkc().map(|c| (c, homoglyph(c))).collect() };
        let (a, b) = (mapped(&stripped), mapped(target));
        if a.len() == b.len()
            && a.iter().zip(&b).any(|((oa, ma), (ob, mb))| {
                !oa.is_numeric()
                    && !ob.is_numeric()
                    && ma != mb
                    && ma.to_lowercase().eq(mb.to_lowercase())
            })
        {
            kinds.push(Kind::Case);
        }
        return Some(kinds);
    }
    None
}

/// Every name in `names` that looks like one of `targets` (and is none of
/// them), in `names` order.
pub fn find<'a>(names: impl IntoIterator<Item = &'a str>, targets: &[&str]) -> Vec<LookAlike> {
    let mut out = Vec::new();
    for n in names {
        if targets.contains(&n) {
            continue;
        }
        if let Some((t, kinds)) = targets.iter().find_map(|t| compare(n, t).map(|k| (*t, k))) {
            out.push(LookAlike {
                name: n.to_string(),
                shown: show(n),
                looks_like: t.to_string(),
                kinds,
                sessions: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_confusables_invisibles_and_suffixes_are_look_alikes() {
        assert_eq!(compare("tovplay", "TovPlay"), Some(vec![Kind::Case]));
        assert_eq!(compare("TOVPLAY", "TovPlay"), Some(vec![Kind::Case]));
        // Cyrillic о (U+043E)
        assert_eq!(
            compare("T\u{43e}vPlay", "TovPlay"),
            Some(vec![Kind::Confusable])
        );
        // Cyrillic а, е, р, с, х, у
        assert_eq!(
            compare("\u{441}\u{430}\u{440}", "cap"),
            Some(vec![Kind::Confusable])
        );
        assert_eq!(compare("b\u{435}x", "bex"), Some(vec![Kind::Confusable]));
        assert_eq!(
            compare("\u{445}\u{443}", "xy"),
            Some(vec![Kind::Confusable])
        );
        // Greek ο and ν
        assert_eq!(
            compare("T\u{3bf}\u{3bd}Play", "TovPlay"),
            Some(vec![Kind::Confusable])
        );
        // digit 0 for O, 1 / l / I
        assert_eq!(compare("SH0P", "SHOP"), Some(vec![Kind::Confusable]));
        assert_eq!(compare("sh0p", "shop"), Some(vec![Kind::Confusable]));
        assert_eq!(
            compare("SH0P", "shop"),
            Some(vec![Kind::Confusable, Kind::Case])
        );
        assert_eq!(compare("app1", "appl"), Some(vec![Kind::Confusable]));
        assert_eq!(compare("appI", "appl"), Some(vec![Kind::Confusable]));
        // NFKC: fullwidth letters
        assert_eq!(
            compare("\u{ff34}ovPlay", "TovPlay"),
            Some(vec![Kind::Confusable])
        );
        // invisible characters: zero-width space, bidi override, BOM
        assert_eq!(
            compare("Tov\u{200b}Play", "TovPlay"),
            Some(vec![Kind::Invisible])
        );
        assert_eq!(
            compare("\u{202e}TovPlay", "TovPlay"),
            Some(vec![Kind::Invisible])
        );
        assert_eq!(
            compare("TovPlay\u{feff}", "TovPlay"),
            Some(vec![Kind::Invisible])
        );
        // suffixes
        assert_eq!(
            compare("TovPlay__restore_20261206", "TovPlay"),
            Some(vec![Kind::Suffix])
        );
        assert_eq!(
            compare("tovplay__damaged_1", "TovPlay"),
            Some(vec![Kind::Suffix, Kind::Case])
        );
        // a mix
        assert_eq!(
            compare("t\u{43e}vplay", "TovPlay"),
            Some(vec![Kind::Confusable, Kind::Case])
        );
    }

    #[test]
    fn the_same_name_and_plainly_different_names_are_not_look_alikes() {
        assert_eq!(compare("TovPlay", "TovPlay"), None);
        assert_eq!(compare("tovplay_local", "TovPlay"), None);
        assert_eq!(compare("postgres", "TovPlay"), None);
        assert_eq!(compare("TovPlays", "TovPlay"), None);
        assert_eq!(compare("", "TovPlay"), None);
        assert_eq!(compare("x", ""), None);
    }

    #[test]
    fn find_lists_look_alikes_with_names_that_print_differently() {
        let names = [
            "TovPlay",
            "tovplay",
            "T\u{43e}vPlay",
            "postgres",
            "Tov\u{200b}Play",
        ];
        let found = find(names, &["TovPlay"]);
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|l| (l.shown.as_str(), l.looks_like.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("tovplay", "TovPlay"),
                ("T<U+043E>vPlay", "TovPlay"),
                ("Tov<U+200B>Play", "TovPlay")
            ]
        );
        assert_eq!(
            found[1].describe(),
            "'T<U+043E>vPlay' looks like 'TovPlay' (confusable)"
        );
    }
}
