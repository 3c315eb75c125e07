//! Drop detection as a pure state machine: rounds (and failed rounds) in,
//! events out (alerts, identity changes, re-created tables). No I/O.
//! Estimates are never compared across OIDs; one drop or one outage raises
//! one alert however many rules or rounds it spans.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::error::ErrorClass;
use crate::db::identity::{DbIdentity, ErrorInfo, IdentityChange};
use crate::samples::TableCount;

/// The alert rules of one watched table.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `expect.min`.
    pub min: Option<i64>,
    /// Largest share of rows (0..1) it may lose between two samples.
    pub max_share: f64,
    /// Where `max_share` came from: "max_drop" (expect) or "drop_alert_share".
    pub share_rule: &'static str,
}

/// A row-count drop (journal kind `alert`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub at: DateTime<Utc>,
    pub database: String,
    pub schema: String,
    pub table: String,
    /// The previous count; None when first seen already below `min`.
    pub before: Option<i64>,
    /// When that previous count was taken: the last time the rows were seen
    /// intact, so the damage happened in (`before_at`, `at`].
    pub before_at: Option<DateTime<Utc>>,
    pub after: i64,
    /// The first rule broken: `max_drop`, `drop_alert_share`, `min`,
    /// `table-missing`, or for a whole database `database-missing` (3D000)
    /// and `server-down` (schema and table then empty).
    pub rule: String,
    /// Every rule this drop broke.
    pub rules: Vec<String>,
    pub before_exact: bool,
    pub after_exact: bool,
    pub min: Option<i64>,
    pub max_share: f64,
    /// The server's words for a database-level alert (redacted upstream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Rule of an alert about a database that does not exist (SQLSTATE 3D000).
pub const DATABASE_MISSING: &str = "database-missing";
/// Rule of an alert about a server that does not answer.
pub const SERVER_DOWN: &str = "server-down";
/// Journal kind of an operator's acknowledgement of alerts.
pub const ALERT_ACK: &str = "alert-acknowledged";

impl Alert {
    /// True for an alert about the whole database (no table).
    pub fn database_level(&self) -> bool {
        self.table.is_empty()
    }
    pub fn qualified(&self) -> String {
        if self.database_level() {
            return String::new();
        }
        format!("{}.{}", self.schema, self.table)
    }
    pub fn summary(&self) -> String {
        if self.database_level() {
            let what = match self.rule.as_str() {
                DATABASE_MISSING => "the database is MISSING (dropped or renamed)",
                _ => "the server does NOT ANSWER",
            };
            let mut s = format!("'{}': {what}", self.database);
            if let Some(d) = &self.detail {
                s.push_str(&format!(": {d}"));
            }
            return s;
        }
        let what = match self.rule.as_str() {
            "table-missing" => "is gone (the table no longer exists)".to_string(),
            _ => match self.before {
                Some(b) => format!("fell from {b} to {} rows", self.after),
                None => format!("holds {} rows", self.after),
            },
        };
        let mut why = Vec::new();
        for r in &self.rules {
            match r.as_str() {
                "min" => why.push(format!("below expect.min {}", self.min.unwrap_or(0))),
                "max_drop" | "drop_alert_share" => why.push(format!(
                    "lost more than {:.0}% ({r})",
                    self.max_share * 100.0
                )),
                _ => {}
            }
        }
        let mut s = format!("'{}': {} {what}", self.database, self.qualified());
        if !why.is_empty() {
            s.push_str(&format!(" [{}]", why.join("; ")));
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityEvent {
    pub at: DateTime<Utc>,
    pub database: String,
    pub change: IdentityChange,
    pub before: DbIdentity,
    pub after: DbIdentity,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecreatedEvent {
    pub at: DateTime<Utc>,
    pub database: String,
    pub schema: String,
    pub table: String,
    pub old_oid: u32,
    pub new_oid: u32,
    pub rows: i64,
    pub exact: bool,
}

/// What the detector reports from one round.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Detected {
    Alert(Alert),
    IdentityChanged(IdentityEvent),
    TableRecreated(RecreatedEvent),
}

#[derive(Debug, Clone)]
struct Known {
    oid: u32,
    rows: i64,
    exact: bool,
    below_min: bool,
    missing: bool,
}

/// Remembers the last round of one database.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    database: String,
    identity: Option<DbIdentity>,
    tables: HashMap<(String, String), Known>,
    /// Time of the previous round.
    last_at: Option<DateTime<Utc>>,
    /// Rule of the outage already alerted (until a round succeeds again).
    down: Option<String>,
}

impl Detector {
    pub fn new(database: &str) -> Self {
        Detector {
            database: database.to_string(),
            ..Default::default()
        }
    }

    pub fn identity(&self) -> Option<&DbIdentity> {
        self.identity.as_ref()
    }

    /// The change from the previous identity (before `observe` records it).
    pub fn identity_change(&self, id: &DbIdentity) -> Option<IdentityChange> {
        self.identity.as_ref().and_then(|b| id.change_from(b))
    }

    /// Feeds one round; returns what it revealed. `rules` holds the watched
    /// tables, keyed by (schema, name).
    pub fn observe(
        &mut self,
        at: DateTime<Utc>,
        id: &DbIdentity,
        counts: &[TableCount],
        rules: &BTreeMap<(String, String), Rule>,
    ) -> Vec<Detected> {
        let mut out = Vec::new();
        self.down = None;
        let before_at = self.last_at.replace(at);
        let change = self.identity_change(id);
        if let (Some(ch), Some(before)) = (change, &self.identity) {
            out.push(Detected::IdentityChanged(IdentityEvent {
                at,
                database: self.database.clone(),
                change: ch,
                before: before.clone(),
                after: id.clone(),
            }));
        }
        // Another cluster or a re-created database: OIDs mean nothing across it.
        let new_namespace = matches!(
            change,
            Some(IdentityChange::DifferentCluster | IdentityChange::DatabaseRecreated)
        );
        self.identity = Some(id.clone());

        let mut seen: Vec<(String, String)> = Vec::with_capacity(counts.len());
        for c in counts {
            let key = (c.schema.clone(), c.name.clone());
            let rule = rules.get(&key);
            let min_broken = |exact: bool, rows: i64| {
                rule.and_then(|r| r.min).is_some_and(|m| exact && rows < m)
            };
            match self.tables.get_mut(&key) {
                None => {
                    let below = min_broken(c.exact, c.rows);
                    if below && let Some(r) = rule {
                        out.push(Detected::Alert(self_alert(
                            &self.database,
                            at,
                            c,
                            None,
                            false,
                            vec!["min".into()],
                            r,
                        )));
                    }
                    self.tables.insert(
                        key.clone(),
                        Known {
                            oid: c.oid,
                            rows: c.rows,
                            exact: c.exact,
                            below_min: below,
                            missing: false,
                        },
                    );
                }
                Some(k) => {
                    let same_oid = k.oid == c.oid && !new_namespace;
                    if k.oid != c.oid && !new_namespace {
                        out.push(Detected::TableRecreated(RecreatedEvent {
                            at,
                            database: self.database.clone(),
                            schema: c.schema.clone(),
                            table: c.name.clone(),
                            old_oid: k.oid,
                            new_oid: c.oid,
                            rows: c.rows,
                            exact: c.exact,
                        }));
                    }
                    if let Some(r) = rule {
                        // Exact counts compare across OIDs (both are true
                        // numbers); estimates only within one OID.
                        let comparable = (k.exact && c.exact) || (same_oid && !k.exact && !c.exact);
                        let mut broken: Vec<String> = Vec::new();
                        if comparable && !k.missing && k.rows > 0 {
                            let lost = k.rows - c.rows;
                            if lost > 0 && lost as f64 > r.max_share * k.rows as f64 {
                                broken.push(r.share_rule.to_string());
                            }
                        }
                        let below = min_broken(c.exact, c.rows);
                        if below && !k.below_min {
                            broken.push("min".into());
                        }
                        if !broken.is_empty() {
                            out.push(Detected::Alert(self_alert(
                                &self.database,
                                at,
                                c,
                                Some(k.rows),
                                k.exact,
                                broken,
                                r,
                            )));
                        }
                        k.below_min = below || (k.below_min && !c.exact);
                    }
                    k.oid = c.oid;
                    k.rows = c.rows;
                    k.exact = c.exact;
                    k.missing = false;
                }
            }
            seen.push(key);
        }
        let seen: std::collections::HashSet<(String, String)> = seen.into_iter().collect();
        let mut gone: Vec<(&(String, String), &mut Known)> = self
            .tables
            .iter_mut()
            .filter(|(k, v)| !v.missing && !seen.contains(*k))
            .collect();
        gone.sort_by(|a, b| a.0.cmp(b.0));
        for (key, k) in gone {
            k.missing = true;
            if let Some(r) = rules.get(key) {
                out.push(Detected::Alert(Alert {
                    at,
                    database: self.database.clone(),
                    schema: key.0.clone(),
                    table: key.1.clone(),
                    before: Some(k.rows),
                    before_at: None,
                    after: 0,
                    rule: "table-missing".into(),
                    rules: vec!["table-missing".into()],
                    before_exact: k.exact,
                    after_exact: true,
                    min: r.min,
                    max_share: r.max_share,
                    detail: None,
                }));
                k.below_min = r.min.is_some_and(|m| m > 0);
            }
        }
        for d in &mut out {
            if let Detected::Alert(a) = d
                && a.before.is_some()
            {
                a.before_at = before_at;
            }
        }
        out
    }
}

impl Detector {
    /// Feeds a failed round: a missing database (3D000) or a server that
    /// does not answer is an alert, raised once per outage (again only
    /// after a round succeeded or the kind of outage changed). Other
    /// failures (authentication, limits) raise nothing here.
    pub fn observe_failure(&mut self, at: DateTime<Utc>, error: &ErrorInfo) -> Option<Alert> {
        let rule =
            if error.sqlstate.as_deref() == Some("3D000") || error.class == ErrorClass::Missing {
                DATABASE_MISSING
            } else if error.class == ErrorClass::Unreachable {
                SERVER_DOWN
            } else {
                return None;
            };
        if self.down.as_deref() == Some(rule) {
            return None;
        }
        self.down = Some(rule.to_string());
        Some(Alert {
            at,
            database: self.database.clone(),
            schema: String::new(),
            table: String::new(),
            before: None,
            // The last round that answered: the outage began after it.
            before_at: self.last_at,
            after: 0,
            rule: rule.to_string(),
            rules: vec![rule.to_string()],
            before_exact: false,
            after_exact: false,
            min: None,
            max_share: 0.0,
            detail: Some(error.message.clone()),
        })
    }
}

fn self_alert(
    database: &str,
    at: DateTime<Utc>,
    c: &TableCount,
    before: Option<i64>,
    before_exact: bool,
    rules: Vec<String>,
    r: &Rule,
) -> Alert {
    Alert {
        at,
        database: database.to_string(),
        schema: c.schema.clone(),
        table: c.name.clone(),
        before,
        before_at: None,
        after: c.rows,
        rule: rules.first().cloned().unwrap_or_default(),
        rules,
        before_exact,
        after_exact: c.exact,
        min: r.min,
        max_share: r.max_share,
        detail: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn id(start_s: i64, sysid: u64, dboid: u32) -> DbIdentity {
        DbIdentity {
            server: "127.0.0.1:5432".into(),
            database: "app".into(),
            system_identifier: sysid.to_string(),
            server_started_at: Some(Utc.timestamp_opt(start_s, 0).unwrap()),
            oid: Some(dboid),
        }
    }

    fn tc(name: &str, oid: u32, rows: i64, exact: bool) -> TableCount {
        TableCount {
            schema: "public".into(),
            name: name.into(),
            oid,
            rows,
            exact,
        }
    }

    fn rules(min: Option<i64>) -> BTreeMap<(String, String), Rule> {
        let mut m = BTreeMap::new();
        m.insert(
            ("public".into(), "User".into()),
            Rule {
                min,
                max_share: 0.5,
                share_rule: "drop_alert_share",
            },
        );
        m
    }

    fn alerts(ev: &[Detected]) -> Vec<&Alert> {
        ev.iter()
            .filter_map(|e| match e {
                Detected::Alert(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_alert_per_drop_even_when_two_rules_break() {
        let mut d = Detector::new("main");
        let r = rules(Some(20));
        let t = Utc::now();
        let i = id(1, 7, 5);
        assert!(d.observe(t, &i, &[tc("User", 10, 22, true)], &r).is_empty());
        let ev = d.observe(t, &i, &[tc("User", 10, 0, true)], &r);
        let a = alerts(&ev);
        assert_eq!(a.len(), 1, "{ev:?}");
        assert_eq!((a[0].before, a[0].after), (Some(22), 0));
        assert_eq!(a[0].rule, "drop_alert_share");
        assert_eq!(a[0].rules, vec!["drop_alert_share", "min"]);
        // Staying at 0 raises nothing more.
        assert!(d.observe(t, &i, &[tc("User", 10, 0, true)], &r).is_empty());
        // Recovery re-arms; a second drop is a second alert.
        assert!(d.observe(t, &i, &[tc("User", 10, 23, true)], &r).is_empty());
        assert_eq!(
            alerts(&d.observe(t, &i, &[tc("User", 10, 1, true)], &r)).len(),
            1
        );
    }

    #[test]
    fn an_alert_knows_when_the_rows_were_last_seen_intact() {
        let mut d = Detector::new("main");
        let r = rules(Some(20));
        let t0 = Utc.with_ymd_and_hms(2026, 12, 10, 12, 41, 50).unwrap();
        let t1 = t0 + chrono::Duration::seconds(10);
        let i = id(1, 7, 5);
        assert!(
            d.observe(t0, &i, &[tc("User", 10, 22, true)], &r)
                .is_empty()
        );
        let ev = d.observe(t1, &i, &[tc("User", 10, 0, true)], &r);
        let a = alerts(&ev);
        assert_eq!((a[0].before_at, a[0].at), (Some(t0), t1));
        // First seen already below min: nothing was seen intact.
        let mut fresh = Detector::new("main");
        let ev = fresh.observe(t1, &i, &[tc("User", 10, 0, true)], &r);
        assert_eq!(alerts(&ev)[0].before_at, None);
    }

    #[test]
    fn small_losses_and_unwatched_tables_are_quiet() {
        let mut d = Detector::new("main");
        let r = rules(None);
        let t = Utc::now();
        let i = id(1, 7, 5);
        d.observe(
            t,
            &i,
            &[tc("User", 10, 100, true), tc("Log", 11, 100, false)],
            &r,
        );
        let ev = d.observe(
            t,
            &i,
            &[tc("User", 10, 60, true), tc("Log", 11, 0, false)],
            &r,
        );
        assert!(ev.is_empty(), "{ev:?}");
    }

    #[test]
    fn recreated_table_is_an_event_and_estimates_are_not_compared() {
        let mut d = Detector::new("main");
        let r = rules(None);
        let t = Utc::now();
        let i = id(1, 7, 5);
        let mut est = rules(None);
        est.insert(
            ("public".into(), "Game".into()),
            Rule {
                min: None,
                max_share: 0.5,
                share_rule: "drop_alert_share",
            },
        );
        d.observe(
            t,
            &i,
            &[tc("User", 10, 22, true), tc("Game", 12, 500, false)],
            &est,
        );
        let ev = d.observe(
            t,
            &i,
            &[tc("User", 20, 22, true), tc("Game", 21, 0, false)],
            &est,
        );
        assert!(alerts(&ev).is_empty(), "{ev:?}");
        let rec: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Detected::TableRecreated(x) => Some((x.table.as_str(), x.old_oid, x.new_oid)),
                _ => None,
            })
            .collect();
        assert_eq!(rec, vec![("User", 10, 20), ("Game", 12, 21)]);
        // Exact counts do compare across OIDs: re-created empty is a drop.
        let ev = d.observe(t, &i, &[tc("User", 30, 0, true)], &r);
        assert_eq!(alerts(&ev).len(), 1, "{ev:?}");
    }

    #[test]
    fn identity_changes() {
        let mut d = Detector::new("main");
        let r = rules(None);
        let t = Utc::now();
        d.observe(t, &id(1, 7, 5), &[], &r);
        let ev = d.observe(t, &id(2, 7, 5), &[], &r);
        assert!(matches!(
            &ev[..],
            [Detected::IdentityChanged(IdentityEvent {
                change: IdentityChange::Restarted,
                ..
            })]
        ));
        let ev = d.observe(t, &id(3, 8, 5), &[], &r);
        assert!(matches!(
            &ev[..],
            [Detected::IdentityChanged(IdentityEvent {
                change: IdentityChange::DifferentCluster,
                ..
            })]
        ));
        assert!(d.observe(t, &id(3, 8, 5), &[], &r).is_empty());
    }

    fn failure(class: ErrorClass, sqlstate: Option<&str>) -> ErrorInfo {
        ErrorInfo {
            class,
            sqlstate: sqlstate.map(str::to_string),
            message: "database \"app\" does not exist".into(),
        }
    }

    #[test]
    fn a_missing_database_or_a_down_server_alerts_once_per_outage() {
        let mut d = Detector::new("main");
        let r = rules(None);
        let t0 = Utc.with_ymd_and_hms(2026, 12, 10, 12, 0, 0).unwrap();
        let t1 = t0 + chrono::Duration::seconds(10);
        let i = id(1, 7, 5);
        d.observe(t0, &i, &[tc("User", 10, 22, true)], &r);
        let missing = failure(ErrorClass::Missing, Some("3D000"));
        let a = d.observe_failure(t1, &missing).expect("3D000 alerts");
        assert_eq!(a.rule, DATABASE_MISSING);
        assert_eq!(a.before_at, Some(t0));
        assert!(a.database_level());
        assert!(a.summary().contains("MISSING"), "{}", a.summary());
        assert!(a.summary().contains("does not exist"), "{}", a.summary());
        // Every further failed round of the same outage is quiet.
        assert!(d.observe_failure(t1, &missing).is_none());
        assert!(d.observe_failure(t1, &missing).is_none());
        // The server going down is another kind of outage: one more alert.
        let down = failure(ErrorClass::Unreachable, None);
        assert_eq!(d.observe_failure(t1, &down).unwrap().rule, SERVER_DOWN);
        assert!(d.observe_failure(t1, &down).is_none());
        // Back, then gone again: a new outage, a new alert.
        d.observe(t1, &i, &[tc("User", 10, 22, true)], &r);
        assert!(d.observe_failure(t1, &down).is_some());
        // Refused credentials are not damage.
        let mut e = Detector::new("main");
        assert!(
            e.observe_failure(t1, &failure(ErrorClass::AuthFailed, Some("28P01")))
                .is_none()
        );
    }

    #[test]
    fn first_sight_below_min_and_missing_table() {
        let mut d = Detector::new("main");
        let r = rules(Some(20));
        let t = Utc::now();
        let i = id(1, 7, 5);
        let ev = d.observe(t, &i, &[tc("User", 10, 0, true)], &r);
        assert_eq!(alerts(&ev)[0].before, None);
        assert!(d.observe(t, &i, &[tc("User", 10, 0, true)], &r).is_empty());
        d.observe(t, &i, &[tc("User", 10, 30, true)], &r);
        let ev = d.observe(t, &i, &[], &r);
        assert_eq!(alerts(&ev)[0].rule, "table-missing");
        assert!(d.observe(t, &i, &[], &r).is_empty());
    }
}
