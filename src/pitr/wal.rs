//! Pure facts of a WAL archive: LSNs, segment names, gaps, and the text
//! pg_basebackup leaves (backup_label, `.backup` history file, manifest WAL range).
//! Host text is hostile: what does not parse is skipped, never trusted.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// Default WAL segment size (16 MiB) when the archive does not tell.
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

/// A WAL position (`X/Y` in PostgreSQL's notation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/3000028` -> Lsn. Both halves are hex of at most 8 digits.
    pub fn parse(s: &str) -> Option<Lsn> {
        let (hi, lo) = s.trim().split_once('/')?;
        if hi.is_empty() || lo.is_empty() || hi.len() > 8 || lo.len() > 8 {
            return None;
        }
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        Some(Lsn((hi << 32) | lo))
    }
    /// Number of the segment holding this position.
    pub fn segno(self, seg_size: u64) -> u64 {
        self.0 / seg_size.max(1)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A WAL segment file name: timeline and segment number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegName {
    pub timeline: u32,
    pub segno: u64,
}

impl SegName {
    /// Parses `TTTTTTTTXXXXXXXXYYYYYYYY` (24 upper-case hex digits).
    pub fn parse(name: &str, seg_size: u64) -> Option<SegName> {
        if name.len() != 24
            || !name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            return None;
        }
        let tli = u32::from_str_radix(&name[0..8], 16).ok()?;
        let log = u64::from_str_radix(&name[8..16], 16).ok()?;
        let seg = u64::from_str_radix(&name[16..24], 16).ok()?;
        let per = segs_per_xlogid(seg_size);
        if seg >= per {
            return None;
        }
        Some(SegName {
            timeline: tli,
            segno: log * per + seg,
        })
    }
    pub fn file_name(&self, seg_size: u64) -> String {
        let per = segs_per_xlogid(seg_size);
        format!(
            "{:08X}{:08X}{:08X}",
            self.timeline,
            self.segno / per,
            self.segno % per
        )
    }
}

fn segs_per_xlogid(seg_size: u64) -> u64 {
    (0x1_0000_0000u64 / seg_size.max(1)).max(1)
}

/// The archived WAL of one timeline: which segments exist, and the holes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalRange {
    pub timeline: u32,
    pub first: String,
    pub last: String,
    pub segments: usize,
    /// Missing runs `(first missing, last missing)` between first and last.
    pub gaps: Vec<(String, String)>,
}

/// Segment numbers present on `timeline`.
pub fn segments_of(names: &[String], timeline: u32, seg_size: u64) -> BTreeSet<u64> {
    names
        .iter()
        .filter_map(|n| SegName::parse(n, seg_size))
        .filter(|s| s.timeline == timeline)
        .map(|s| s.segno)
        .collect()
}

/// The WAL range and gaps of every timeline present in `names`.
pub fn wal_ranges(names: &[String], seg_size: u64) -> Vec<WalRange> {
    let tlis: BTreeSet<u32> = names
        .iter()
        .filter_map(|n| SegName::parse(n, seg_size))
        .map(|s| s.timeline)
        .collect();
    tlis.into_iter()
        .filter_map(|tli| {
            let segs = segments_of(names, tli, seg_size);
            let first = *segs.iter().next()?;
            let last = *segs.iter().next_back()?;
            let name = |segno| {
                SegName {
                    timeline: tli,
                    segno,
                }
                .file_name(seg_size)
            };
            Some(WalRange {
                timeline: tli,
                first: name(first),
                last: name(last),
                segments: segs.len(),
                gaps: gaps(&segs, first, last)
                    .into_iter()
                    .map(|(a, b)| (name(a), name(b)))
                    .collect(),
            })
        })
        .collect()
}

/// Missing runs of segment numbers in `from..=to`.
pub fn gaps(present: &BTreeSet<u64>, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut n = from;
    while n <= to {
        if present.contains(&n) {
            n += 1;
            continue;
        }
        match present.range(n..=to).next() {
            Some(&next) => {
                out.push((n, next - 1));
                n = next;
            }
            None => {
                out.push((n, to));
                break;
            }
        }
    }
    out
}

/// What one base backup says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseBackup {
    /// Directory of the backup (as listed on its host).
    pub dir: String,
    /// `plain` (a data directory) or `tar` (base.tar / base.tar.gz).
    pub format: String,
    pub label: Option<String>,
    pub timeline: u32,
    pub start_lsn: Lsn,
    /// End of the WAL the backup needs (backup_manifest or the history file).
    pub stop_lsn: Option<Lsn>,
    pub start_time: Option<DateTime<Utc>>,
    /// From the archived `.backup` history file whose start matches.
    pub stop_time: Option<DateTime<Utc>>,
    /// PG_VERSION of the backup.
    pub pg_version: Option<String>,
}

/// Fields of a backup_label or a `.backup` history file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFields {
    pub start_lsn: Option<Lsn>,
    pub stop_lsn: Option<Lsn>,
    pub start_time: Option<DateTime<Utc>>,
    pub stop_time: Option<DateTime<Utc>>,
    pub label: Option<String>,
    pub timeline: Option<u32>,
}

/// Parses backup_label / `.backup` history text.
pub fn parse_label(text: &str) -> LabelFields {
    let mut f = LabelFields::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(": ") else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "START WAL LOCATION" => f.start_lsn = v.split_whitespace().next().and_then(Lsn::parse),
            "STOP WAL LOCATION" => f.stop_lsn = v.split_whitespace().next().and_then(Lsn::parse),
            "START TIME" => f.start_time = parse_pg_time(v),
            "STOP TIME" => f.stop_time = parse_pg_time(v),
            "LABEL" => f.label = Some(v.to_string()),
            "START TIMELINE" => f.timeline = v.parse().ok(),
            _ => {}
        }
    }
    f
}

/// `"End-LSN": "0/2000100"` from a backup_manifest's WAL-Ranges line.
pub fn manifest_end_lsn(text: &str) -> Option<Lsn> {
    text.lines()
        .filter_map(|l| {
            let i = l.find("\"End-LSN\"")?;
            let rest = &l[i + 9..];
            let v = rest.split('"').nth(1)?;
            Lsn::parse(v)
        })
        .max()
}

/// `2026-12-06 03:21:46 UTC` / `2026-12-06 03:21:47.269480 UTC` (also
/// `+00`, `GMT`): only UTC zones are accepted; others give None.
pub fn parse_pg_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let (dt, zone) = match s.rsplit_once(' ') {
        Some((a, z)) if !z.contains(':') || z.starts_with('+') => (a, Some(z)),
        _ => (s, None),
    };
    if let Some(z) = zone
        && !matches!(z, "UTC" | "GMT" | "+00" | "+00:00" | "Z")
    {
        return None;
    }
    let fmt = if dt.contains('.') {
        "%Y-%m-%d %H:%M:%S%.f"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    NaiveDateTime::parse_from_str(dt, fmt)
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = DEFAULT_SEGMENT_SIZE;

    #[test]
    fn lsn_round_trip_and_refusals() {
        let l = Lsn::parse("0/3000028").unwrap();
        assert_eq!(l.0, 0x300_0028);
        assert_eq!(l.to_string(), "0/3000028");
        assert_eq!(Lsn::parse("1A/FF").unwrap().to_string(), "1A/FF");
        for bad in ["", "0/", "/1", "x/1", "123456789/0", "0/1/2", "0 /1"] {
            assert_eq!(Lsn::parse(bad), None, "{bad}");
        }
        assert_eq!(l.segno(SEG), 3);
    }

    #[test]
    fn segment_names() {
        let s = SegName::parse("000000010000000000000003", SEG).unwrap();
        assert_eq!((s.timeline, s.segno), (1, 3));
        let s = SegName::parse("0000000200000001000000FF", SEG).unwrap();
        assert_eq!((s.timeline, s.segno), (2, 0x1FF));
        assert_eq!(s.file_name(SEG), "0000000200000001000000FF");
        for bad in [
            "000000010000000000000002.00000028.backup",
            "00000002.history",
            "000000010000000000000003.partial",
            "00000001000000000000000g",
            "000000010000000000000100",
            "../00000001000000000000003",
        ] {
            assert_eq!(SegName::parse(bad, SEG), None, "{bad}");
        }
    }

    #[test]
    fn ranges_and_gaps() {
        let names: Vec<String> = [
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000002.00000028.backup",
            "000000010000000000000005",
            "000000010000000000000006",
            "000000010000000000000009",
            "00000002.history",
            "000000020000000000000009",
            "junk",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = wal_ranges(&names, SEG);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].first, "000000010000000000000001");
        assert_eq!(r[0].last, "000000010000000000000009");
        assert_eq!(r[0].segments, 5);
        assert_eq!(
            r[0].gaps,
            vec![
                (
                    "000000010000000000000003".to_string(),
                    "000000010000000000000004".to_string()
                ),
                (
                    "000000010000000000000007".to_string(),
                    "000000010000000000000008".to_string()
                )
            ]
        );
        assert!(r[1].gaps.is_empty());
        let present: BTreeSet<u64> = [1, 2, 3].into_iter().collect();
        assert_eq!(gaps(&present, 1, 3), vec![]);
        assert_eq!(gaps(&present, 0, 5), vec![(0, 0), (4, 5)]);
    }

    #[test]
    fn label_history_and_manifest() {
        // Captured from a real pg_basebackup (PostgreSQL 15.18).
        let hist = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
STOP WAL LOCATION: 0/2000100 (file 000000010000000000000002)\n\
CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
START TIME: 2026-12-06 03:21:46 UTC\nLABEL: pg_basebackup base backup\n\
START TIMELINE: 1\nSTOP TIME: 2026-12-06 03:21:46 UTC\nSTOP TIMELINE: 1\n";
        let f = parse_label(hist);
        assert_eq!(f.start_lsn, Lsn::parse("0/2000028"));
        assert_eq!(f.stop_lsn, Lsn::parse("0/2000100"));
        assert_eq!(f.timeline, Some(1));
        assert_eq!(
            f.stop_time.unwrap().to_rfc3339(),
            "2026-12-06T03:21:46+00:00"
        );
        assert_eq!(f.label.as_deref(), Some("pg_basebackup base backup"));
        let manifest = "\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],";
        assert_eq!(manifest_end_lsn(manifest), Lsn::parse("0/2000100"));
        assert_eq!(manifest_end_lsn("\"End-LSN\": \"zz\""), None);
        // A zone other than UTC is not guessed at.
        assert_eq!(parse_pg_time("2026-12-06 03:21:46 CET"), None);
        assert!(parse_pg_time("2026-12-06 03:21:47.269480 UTC").is_some());
    }
}
