//! Backup file name patterns: strftime fields (`%Y%m%d_%H%M%S`) and `*`,
//! compiled to a matcher that also reads the time the name records.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use regex::Regex;

use super::CatalogError;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct NamePattern {
    re: Regex,
    fields: Vec<char>,
}

impl NamePattern {
    pub fn compile(pattern: &str) -> Result<NamePattern, CatalogError> {
        let mut re = String::from("^");
        let mut fields = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                '%' => {
                    let f = chars
                        .next()
                        .ok_or_else(|| bad(pattern, "a lone '%' at the end"))?;
                    let (part, expand): (&str, &[char]) = match f {
                        'Y' => (r"(\d{4})", &['Y']),
                        'y' => (r"(\d{2})", &['y']),
                        'm' => (r"(\d{2})", &['m']),
                        'd' => (r"(\d{2})", &['d']),
                        'e' => (r"\s?(\d{1,2})", &['d']),
                        'H' => (r"(\d{2})", &['H']),
                        'M' => (r"(\d{2})", &['M']),
                        'S' => (r"(\d{2})", &['S']),
                        'j' => (r"(\d{3})", &['j']),
                        's' => (r"(\d{9,11})", &['s']),
                        'F' => (r"(\d{4})-(\d{2})-(\d{2})", &['Y', 'm', 'd']),
                        'T' => (r"(\d{2}):(\d{2}):(\d{2})", &['H', 'M', 'S']),
                        'b' => (r"([A-Za-z]{3})", &['b']),
                        '%' => ("%", &[]),
                        other => {
                            return Err(bad(
                                pattern,
                                &format!(
                                    "'%{other}' is not supported (use %Y %y %m %d %e %H %M %S %j %s %F %T %b, and * for anything)"
                                ),
                            ));
                        }
                    };
                    re.push_str(part);
                    fields.extend_from_slice(expand);
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        let re = Regex::new(&re).map_err(|e| bad(pattern, &e.to_string()))?;
        Ok(NamePattern { re, fields })
    }

    /// True when the pattern records a time (at least a date).
    pub fn has_time(&self) -> bool {
        self.fields.iter().any(|f| matches!(f, 'Y' | 'y' | 's'))
    }

    pub fn matches(&self, name: &str) -> bool {
        self.re.is_match(name)
    }

    /// The time the name records, read in the host's zone `offset`.
    /// None when the name does not match or holds no valid time.
    pub fn time(&self, name: &str, offset: FixedOffset) -> Option<DateTime<Utc>> {
        let caps = self.re.captures(name)?;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut doy) =
            (None, 1u32, 1u32, 0u32, 0u32, 0u32, None);
        for (i, f) in self.fields.iter().enumerate() {
            let v = caps.get(i + 1)?.as_str();
            let n = || v.trim().parse::<u32>().ok();
            match f {
                'Y' => y = Some(n()? as i32),
                'y' => y = Some(2000 + n()? as i32),
                'm' => mo = n()?,
                'd' => d = n()?,
                'H' => h = n()?,
                'M' => mi = n()?,
                'S' => s = n()?,
                'j' => doy = Some(n()?),
                'b' => {
                    let months = [
                        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                        "nov", "dec",
                    ];
                    mo = months.iter().position(|m| v.eq_ignore_ascii_case(m))? as u32 + 1;
                }
                's' => return DateTime::from_timestamp(v.parse().ok()?, 0),
                _ => {}
            }
        }
        let date = match doy {
            Some(j) => NaiveDate::from_yo_opt(y?, j)?,
            None => NaiveDate::from_ymd_opt(y?, mo, d)?,
        };
        let local = date.and_hms_opt(h, mi, s)?;
        Some(
            local
                .and_local_timezone(offset)
                .single()?
                .with_timezone(&Utc),
        )
    }
}

fn bad(pattern: &str, why: &str) -> CatalogError {
    CatalogError::Pattern {
        pattern: pattern.to_string(),
        why: why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[rstest]
    #[case(
        "tovplay_external_%Y%m%d_%H%M%S.sql",
        "tovplay_external_20241208_073601.sql",
        Some("2024-12-08T07:36:01Z")
    )]
    #[case(
        "tovplay_external_%Y%m%d_%H%M%S.sql",
        "tovplay_external_20241208_073601.sql.gz",
        None
    )]
    #[case(
        "app_%F_%T.dump",
        "app_2024-12-10_12:00:00.dump",
        Some("2024-12-10T12:00:00Z")
    )]
    #[case(
        "*_%Y%m%d*.sql*",
        "prod_20241207_x.sql.gz",
        Some("2024-12-07T00:00:00Z")
    )]
    #[case("b-%s.sql", "b-1733643361.sql", Some("2024-12-08T07:36:01Z"))]
    #[case("db_%d-%b-%Y.sql", "db_08-Dec-2024.sql", Some("2024-12-08T00:00:00Z"))]
    #[case("app_%Y%m%d.sql", "app_20241340.sql", None)]
    fn reads_times(#[case] pat: &str, #[case] name: &str, #[case] want: Option<&str>) {
        let p = NamePattern::compile(pat).unwrap();
        let got = p
            .time(name, utc())
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        assert_eq!(got.as_deref(), want, "{pat} {name}");
    }

    #[test]
    fn host_zone_applies() {
        let p = NamePattern::compile("x_%Y%m%d_%H%M.sql").unwrap();
        let t = p.time(
            "x_20241208_0936.sql",
            FixedOffset::east_opt(2 * 3600).unwrap(),
        );
        assert_eq!(t.unwrap().to_rfc3339(), "2024-12-08T07:36:00+00:00");
    }

    #[rstest]
    #[case("x_%Q.sql")]
    #[case("x_%")]
    fn rejects_unknown_fields(#[case] pat: &str) {
        let e = NamePattern::compile(pat).unwrap_err().to_string();
        assert!(e.contains(&format!("'{pat}'")), "{e}");
    }

    #[test]
    fn literal_dots_and_no_time() {
        let p = NamePattern::compile("dump.sql").unwrap();
        assert!(p.matches("dump.sql"));
        assert!(!p.matches("dumpxsql"));
        assert!(!p.has_time());
    }
}
