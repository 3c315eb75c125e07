//! Times for people: the local zone a document is shown in, parsing the
//! times operators type (`--tz`, `note --at`), and durations in words.
//! Pure functions; never reads the clock itself (callers pass `now`).

use chrono::{
    DateTime, FixedOffset, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    SecondsFormat, TimeZone, Utc,
};

/// The zone local times are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset (`--tz +02:00`).
    Fixed(FixedOffset),
    /// The exporting machine's zone (daylight saving applied per instant).
    System,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeError {
    #[error(
        "'{0}' is not a UTC offset: write it as +02:00, -05:30 or Z (UTC); leave --tz out to use this machine's zone"
    )]
    BadOffset(String),
    #[error(
        "'{0}' is not a time: write RFC 3339 (2026-12-10T12:42:00Z), 'HH:MM' (today, local time) or 'YYYY-MM-DD HH:MM' (local time)"
    )]
    BadTime(String),
    #[error(
        "'{0}' does not exist in the local zone (a daylight-saving gap): give it with an offset, e.g. 2026-03-29T02:30:00+01:00"
    )]
    Gap(String),
}

impl Zone {
    pub fn offset_at(&self, t: DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::Fixed(o) => *o,
            Zone::System => Local.offset_from_utc_datetime(&t.naive_utc()).fix(),
        }
    }

    pub fn to_local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.offset_at(t))
    }

    /// `2026-12-10 14:42:30+02:00`.
    pub fn local_string(&self, t: DateTime<Utc>) -> String {
        self.to_local(t).format("%Y-%m-%d %H:%M:%S%:z").to_string()
    }

    /// A wall-clock time in this zone as UTC (the earlier one when a
    /// daylight-saving change makes it ambiguous).
    pub fn from_local(&self, n: NaiveDateTime, text: &str) -> Result<DateTime<Utc>, TimeError> {
        let r = match self {
            Zone::Fixed(o) => o.from_local_datetime(&n).map(|d| d.with_timezone(&Utc)),
            Zone::System => Local.from_local_datetime(&n).map(|d| d.with_timezone(&Utc)),
        };
        match r {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t),
            LocalResult::None => Err(TimeError::Gap(text.to_string())),
        }
    }

    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        self.to_local(now).date_naive()
    }
}

/// Parses `+02:00`, `-0530`, `+02`, `Z` or `UTC`.
pub fn parse_offset(s: &str) -> Result<FixedOffset, TimeError> {
    let bad = || TimeError::BadOffset(s.to_string());
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return FixedOffset::east_opt(0).ok_or_else(bad);
    }
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !(rest.len() == 2 || digits.len() == 4) {
        return Err(bad());
    }
    let h: i32 = digits
        .get(0..2)
        .and_then(|x| x.parse().ok())
        .ok_or_else(bad)?;
    let m: i32 = match digits.get(2..4) {
        Some(x) => x.parse().map_err(|_| bad())?,
        None => 0,
    };
    if h > 23 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// Parses the time of a backdated note: RFC 3339; `HH:MM[:SS]` today in
/// `zone`; `YYYY-MM-DD HH:MM[:SS]` (or with a `T`) in `zone`.
pub fn parse_when(s: &str, zone: Zone, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in ["%H:%M", "%H:%M:%S"] {
        if let Ok(tm) = NaiveTime::parse_from_str(t, f) {
            return zone.from_local(zone.today(now).and_time(tm), t);
        }
    }
    for f in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return zone.from_local(n, t);
        }
    }
    Err(TimeError::BadTime(s.to_string()))
}

/// `2026-12-10 12:42:30 UTC`.
pub fn utc_string(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// RFC 3339 with seconds, `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `42 s`, `6 min 40 s`, `2 h 05 min`, `2 d 5 h 06 min`; negative spans keep their sign.
pub fn human_secs(secs: i64) -> String {
    if secs < 0 {
        return format!("-{}", human_secs(secs.saturating_neg()));
    }
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if secs < 60 {
        format!("{s} s")
    } else if secs < 3600 {
        format!("{m} min {s:02} s")
    } else if secs < 86_400 {
        format!("{h} h {m:02} min")
    } else {
        format!("{d} d {h} h {m:02} min")
    }
}

/// `850 ms`, `12.3 s`, then as [`human_secs`].
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        human_secs(i64::try_from(ms / 1000).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[rstest]
    #[case("+02:00", 7200)]
    #[case("-05:30", -19800)]
    #[case("+0530", 19800)]
    #[case("+02", 7200)]
    #[case("Z", 0)]
    #[case("UTC", 0)]
    fn offsets(#[case] s: &str, #[case] secs: i32) {
        assert_eq!(parse_offset(s).unwrap().local_minus_utc(), secs);
    }

    #[rstest]
    #[case("02:00")]
    #[case("+2")]
    #[case("+25:00")]
    #[case("+02:7")]
    #[case("")]
    fn bad_offsets(#[case] s: &str) {
        assert!(parse_offset(s).is_err(), "{s}");
    }

    #[test]
    fn when_forms() {
        let z = Zone::Fixed(parse_offset("+02:00").unwrap());
        let now = utc("2026-12-10T13:30:00Z");
        assert_eq!(
            parse_when("2026-12-10T12:42:00Z", z, now).unwrap(),
            utc("2026-12-10T12:42:00Z")
        );
        assert_eq!(
            parse_when("14:42", z, now).unwrap(),
            utc("2026-12-10T12:42:00Z")
        );
        assert_eq!(
            parse_when("2026-12-09 23:05", z, now).unwrap(),
            utc("2026-12-09T21:05:00Z")
        );
        // "today" is the local date: 01:30 local on Dec 11 is still Dec 10 in UTC.
        let late = utc("2026-12-10T23:30:00Z");
        assert_eq!(
            parse_when("00:10", z, late).unwrap(),
            utc("2026-12-10T22:10:00Z")
        );
        let e = parse_when("yesterday", z, now).unwrap_err();
        assert!(e.to_string().contains("'yesterday'"), "{e}");
    }

    #[rstest]
    #[case(0, "0 s")]
    #[case(42, "42 s")]
    #[case(400, "6 min 40 s")]
    #[case(7500, "2 h 05 min")]
    #[case(191_160, "2 d 5 h 06 min")]
    #[case(-61, "-1 min 01 s")]
    fn durations(#[case] secs: i64, #[case] want: &str) {
        assert_eq!(human_secs(secs), want);
    }

    #[test]
    fn ms() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(12_340), "12.3 s");
        assert_eq!(human_ms(400_000), "6 min 40 s");
    }
}
