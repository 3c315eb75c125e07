//! In-memory row-count history as a struct of arrays: one time axis, one
//! column of values per (schema, name, OID). Old points are merged into
//! coarser buckets (keeping each bucket's last and lowest value, so a dip
//! survives downsampling) and dropped past the retention. Never compares
//! values across OIDs: a re-created table is a new series.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::samples::TableCount;

/// Marks "no value at this point" (table absent in that round).
const MISSING: i64 = i64::MIN;
const FLAG_EXACT: u8 = 1;

/// A series key: a table name AND its OID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    pub schema: String,
    pub name: String,
    pub oid: u32,
}

/// Retention tiers: points younger than the first `age` stay as sampled;
/// older ones are merged into buckets of `step` for the tier whose `age`
/// they are under; points older than `max_age` are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// (up to this age, bucket step); ascending ages.
    pub tiers: Vec<(Duration, Duration)>,
    pub max_age: Duration,
    /// Compact after this many new points.
    pub compact_every: usize,
}

impl Default for Retention {
    /// Raw for 1 h, 1-minute buckets to 6 h, 5-minute buckets to 24 h.
    fn default() -> Self {
        Retention {
            tiers: vec![
                (Duration::from_secs(3600), Duration::ZERO),
                (Duration::from_secs(6 * 3600), Duration::from_secs(60)),
                (Duration::from_secs(24 * 3600), Duration::from_secs(300)),
            ],
            max_age: Duration::from_secs(24 * 3600),
            compact_every: 60,
        }
    }
}

/// One point of one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Point {
    pub ts: DateTime<Utc>,
    /// The last value in the bucket (the value itself for a raw point).
    pub rows: i64,
    /// The lowest value in the bucket.
    pub min: i64,
    pub exact: bool,
}

#[derive(Debug, Clone, Default)]
struct Column {
    last: Vec<i64>,
    min: Vec<i64>,
    flags: Vec<u8>,
}

/// The row-count history of one database.
#[derive(Debug, Clone, Default)]
pub struct Series {
    retention: Retention,
    times: Vec<DateTime<Utc>>,
    keys: Vec<SeriesKey>,
    index: HashMap<SeriesKey, usize>,
    cols: Vec<Column>,
    since_compact: usize,
}

impl Series {
    pub fn new(retention: Retention) -> Self {
        Series {
            retention,
            ..Default::default()
        }
    }

    /// Number of points on the time axis.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn times(&self) -> &[DateTime<Utc>] {
        &self.times
    }

    pub fn keys(&self) -> &[SeriesKey] {
        &self.keys
    }

    /// Appends one round (points must come in time order) and compacts
    /// every `compact_every` rounds.
    pub fn push(&mut self, ts: DateTime<Utc>, counts: &[TableCount]) {
        let n = self.times.len();
        self.times.push(ts);
        for c in &mut self.cols {
            c.last.push(MISSING);
            c.min.push(MISSING);
            c.flags.push(0);
        }
        for t in counts {
            let key = SeriesKey {
                schema: t.schema.clone(),
                name: t.name.clone(),
                oid: t.oid,
            };
            let i = match self.index.get(&key) {
                Some(&i) => i,
                None => {
                    let i = self.keys.len();
                    self.keys.push(key.clone());
                    self.index.insert(key, i);
                    self.cols.push(Column {
                        last: vec![MISSING; n + 1],
                        min: vec![MISSING; n + 1],
                        flags: vec![0; n + 1],
                    });
                    i
                }
            };
            let col = &mut self.cols[i];
            col.last[n] = t.rows;
            col.min[n] = t.rows;
            col.flags[n] = if t.exact { FLAG_EXACT } else { 0 };
        }
        self.since_compact += 1;
        if self.since_compact >= self.retention.compact_every.max(1) {
            self.compact(ts);
        }
    }

    /// The points of one series (absent rounds skipped).
    pub fn points(&self, key: &SeriesKey) -> Vec<Point> {
        let Some(&i) = self.index.get(key) else {
            return Vec::new();
        };
        let c = &self.cols[i];
        (0..self.times.len())
            .filter(|&j| c.last[j] != MISSING)
            .map(|j| Point {
                ts: self.times[j],
                rows: c.last[j],
                min: c.min[j],
                exact: c.flags[j] & FLAG_EXACT != 0,
            })
            .collect()
    }

    /// Every series of a table name, oldest OID first (by first appearance).
    pub fn keys_for(&self, schema: &str, name: &str) -> Vec<&SeriesKey> {
        self.keys
            .iter()
            .filter(|k| k.schema == schema && k.name == name)
            .collect()
    }

    /// The latest point of a series.
    pub fn latest(&self, key: &SeriesKey) -> Option<Point> {
        self.points(key).pop()
    }

    /// Bucket of a point at `ts` given `now`: None = drop it, Some((tier, 0)) = keep raw.
    fn bucket(&self, ts: DateTime<Utc>, now: DateTime<Utc>) -> Option<(usize, i64)> {
        let age = (now - ts).to_std().unwrap_or(Duration::ZERO);
        if age > self.retention.max_age {
            return None;
        }
        for (tier, (upto, step)) in self.retention.tiers.iter().enumerate() {
            if age <= *upto {
                if step.is_zero() {
                    return Some((tier, i64::MIN));
                }
                let s = step.as_millis().max(1) as i64;
                return Some((tier, ts.timestamp_millis().div_euclid(s)));
            }
        }
        // Older than every tier but within max_age: the last tier's step.
        let (_, step) = self.retention.tiers.last()?;
        let s = step.as_millis().max(1) as i64;
        Some((
            self.retention.tiers.len(),
            ts.timestamp_millis().div_euclid(s),
        ))
    }

    /// Merges old points into their buckets and drops expired ones; series
    /// left without any value are removed.
    pub fn compact(&mut self, now: DateTime<Utc>) {
        self.since_compact = 0;
        let n = self.times.len();
        // groups[g] = range of point indexes merged into output point g.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut prev: Option<(usize, i64)> = None;
        for j in 0..n {
            let Some(b) = self.bucket(self.times[j], now) else {
                continue;
            };
            let raw = b.1 == i64::MIN;
            match (groups.last_mut(), prev) {
                (Some(g), Some(p)) if !raw && p == b && g.1 == j => g.1 = j + 1,
                _ => groups.push((j, j + 1)),
            }
            prev = Some(b);
        }
        if groups.len() == n && groups.first().is_none_or(|g| g.0 == 0) {
            return;
        }
        let times: Vec<DateTime<Utc>> = groups.iter().map(|g| self.times[g.1 - 1]).collect();
        for c in &mut self.cols {
            let mut nc = Column {
                last: Vec::with_capacity(groups.len()),
                min: Vec::with_capacity(groups.len()),
                flags: Vec::with_capacity(groups.len()),
            };
            for &(a, b) in &groups {
                let mut last = MISSING;
                let mut min = MISSING;
                let mut flags = 0;
                for j in a..b {
                    if c.last[j] != MISSING {
                        last = c.last[j];
                        flags = c.flags[j];
                        min = if min == MISSING {
                            c.min[j]
                        } else {
                            min.min(c.min[j])
                        };
                    }
                }
                nc.last.push(last);
                nc.min.push(min);
                nc.flags.push(flags);
            }
            *c = nc;
        }
        self.times = times;
        // Drop series with no value left.
        let keep: Vec<bool> = self
            .cols
            .iter()
            .map(|c| c.last.iter().any(|&v| v != MISSING))
            .collect();
        if keep.iter().any(|k| !k) {
            let mut keys = Vec::new();
            let mut cols = Vec::new();
            for ((k, c), keep) in self
                .keys
                .drain(..)
                .zip(self.cols.drain(..))
                .zip(keep.iter())
            {
                if *keep {
                    keys.push(k);
                    cols.push(c);
                }
            }
            self.keys = keys;
            self.cols = cols;
            self.index = self
                .keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), i))
                .collect();
        }
    }

    /// Heap bytes held (a close estimate), for the memory budget.
    pub fn approx_bytes(&self) -> usize {
        let t = self.times.capacity() * std::mem::size_of::<DateTime<Utc>>();
        let cols: usize = self
            .cols
            .iter()
            .map(|c| c.last.capacity() * 8 + c.min.capacity() * 8 + c.flags.capacity())
            .sum();
        let keys: usize = self
            .keys
            .iter()
            .map(|k| {
                std::mem::size_of::<SeriesKey>() * 2
                    + (k.schema.capacity() + k.name.capacity()) * 2
                    + 16
            })
            .sum();
        t + cols + keys + self.cols.capacity() * std::mem::size_of::<Column>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tc(name: &str, oid: u32, rows: i64) -> TableCount {
        TableCount {
            schema: "public".into(),
            name: name.into(),
            oid,
            rows,
            exact: true,
        }
    }

    #[test]
    fn keyed_by_oid() {
        let mut s = Series::new(Retention::default());
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        s.push(t0, &[tc("User", 10, 22)]);
        s.push(t0 + chrono::Duration::seconds(10), &[tc("User", 11, 22)]);
        let keys = s.keys_for("public", "User");
        assert_eq!(keys.len(), 2);
        assert_eq!(s.points(keys[0]).len(), 1);
        assert_eq!(s.points(keys[1]).len(), 1);
    }

    #[test]
    fn a_day_at_10s_for_200_tables_stays_small_and_keeps_dips() {
        let mut s = Series::new(Retention::default());
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        let rounds = 24 * 360;
        let mut counts: Vec<TableCount> = (0..200)
            .map(|i| tc(&format!("t{i}"), 1000 + i as u32, 1000))
            .collect();
        let dip_round = 3 * 360 + 7; // 3 h after start: will be in a 5-minute bucket
        for r in 0..rounds {
            counts[0].rows = if r == dip_round { 0 } else { 1000 + r as i64 };
            s.push(t0 + chrono::Duration::seconds(10 * r as i64), &counts);
        }
        let now = t0 + chrono::Duration::seconds(10 * (rounds as i64 - 1));
        s.compact(now);
        assert!(s.len() < 1000, "{} points", s.len());
        assert!(s.len() > 800, "{} points", s.len());
        let bytes = s.approx_bytes();
        assert!(bytes < 4 * 1024 * 1024, "{bytes} bytes");
        let pts = s.points(&s.keys()[0].clone());
        assert!(
            pts.iter().any(|p| p.min == 0),
            "the dip survived downsampling"
        );
        // Raw points in the last hour are 10 s apart.
        let last: Vec<_> = pts.iter().rev().take(3).collect();
        assert_eq!((last[0].ts - last[1].ts).num_seconds(), 10);
        assert_eq!(last[0].rows, 1000 + rounds as i64 - 1);
    }

    #[test]
    fn expired_points_and_dead_series_go() {
        let mut s = Series::new(Retention {
            tiers: vec![(Duration::from_secs(60), Duration::ZERO)],
            max_age: Duration::from_secs(120),
            compact_every: 1000,
        });
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        s.push(t0, &[tc("old", 1, 5)]);
        s.push(t0 + chrono::Duration::seconds(100), &[tc("new", 2, 5)]);
        s.compact(t0 + chrono::Duration::seconds(200));
        assert_eq!(s.len(), 1);
        assert_eq!(s.keys().len(), 1);
        assert_eq!(s.keys()[0].name, "new");
    }
}
