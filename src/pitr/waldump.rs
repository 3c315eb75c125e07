//! Pure judgement of `pg_waldump` output: the first committed transaction that
//! destroyed the damaged relations, and the recovery target just before it.
//! The text is hostile: lines that do not parse are counted and skipped, never guessed at.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::wal::{Lsn, parse_pg_time};

/// One parsed pg_waldump line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub rmgr: String,
    pub xid: u32,
    pub lsn: Lsn,
    pub desc: String,
}

/// Parses `rmgr: Heap  len (rec/tot): 54/ 54, tx: 728, lsn: 0/03000C60, prev 0/03000C38, desc: DELETE ...`.
pub fn parse_line(line: &str) -> Option<Record> {
    let rest = line.strip_prefix("rmgr: ")?;
    let rmgr = rest.split_whitespace().next()?.to_string();
    let tx_at = rest.find(", tx: ")?;
    let after_tx = &rest[tx_at + 6..];
    let xid: u32 = after_tx.split(',').next()?.trim().parse().ok()?;
    let lsn_at = after_tx.find(", lsn: ")?;
    let after_lsn = &after_tx[lsn_at + 7..];
    let lsn = Lsn::parse(after_lsn.split(',').next()?)?;
    let desc_at = after_lsn.find(", desc: ")?;
    let desc = after_lsn[desc_at + 8..].trim_end().to_string();
    Some(Record {
        rmgr,
        xid,
        lsn,
        desc,
    })
}

/// What counts as the damage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Damaged {
    /// OID of the damaged database (`pg_database.oid` at the healthy time).
    pub db_oid: u32,
    /// Damaged relations: table OID and its relfilenode at the healthy
    /// time. Empty: any user relation of the database.
    #[serde(default)]
    pub relations: Vec<RelId>,
    /// Heap DELETEs of one transaction on one relation that count as
    /// destructive (default 10).
    pub min_deletes: Option<u64>,
    /// Destructive transactions that committed before this are not the
    /// damage (the last moment the data was seen healthy).
    pub healthy_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelId {
    pub oid: u32,
    pub filenode: u32,
}

/// The kind of destruction found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Destruction {
    /// The relation's storage was dropped at commit: TRUNCATE, DROP TABLE,
    /// a rewrite, or a DROP + re-create.
    StorageDropped {
        relfilenode: u32,
    },
    /// Logical-level `Heap TRUNCATE` record.
    Truncate {
        relid: u32,
    },
    DeleteMany {
        relfilenode: u32,
        rows: u64,
    },
    DropDatabase {
        db_oid: u32,
    },
    /// A foreign key or a trigger of the relation dropped (rows of
    /// pg_constraint / pg_trigger deleted, its relcache invalidated at
    /// commit): the first step of a `pg_dump --clean` stream.
    SchemaDropped {
        relid: u32,
        /// `pg_constraint` or `pg_trigger`.
        catalog: String,
    },
}

/// Catalogs whose deleted rows, with a damaged relation's relcache
/// invalidated, are a schema drop (their relfilenodes as made by initdb:
/// a VACUUM FULL of them moves them and this no longer sees it).
const SCHEMA_CATALOGS: [(u32, &str); 2] = [(2606, "pg_constraint"), (2620, "pg_trigger")];

impl Destruction {
    pub fn describe(&self) -> String {
        match self {
            Destruction::StorageDropped { relfilenode } => {
                format!(
                    "storage of relfilenode {relfilenode} dropped at commit (TRUNCATE, DROP or re-create)"
                )
            }
            Destruction::Truncate { relid } => format!("TRUNCATE of relation {relid}"),
            Destruction::DeleteMany { relfilenode, rows } => {
                format!("{rows} rows deleted from relfilenode {relfilenode}")
            }
            Destruction::DropDatabase { db_oid } => format!("DROP DATABASE (oid {db_oid})"),
            Destruction::SchemaDropped { relid, catalog } => {
                format!(
                    "rows of {catalog} of relation {relid} deleted (a foreign key or trigger dropped)"
                )
            }
        }
    }
}

/// The evidence of the destructive transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub xid: u32,
    /// First record of the transaction touching the damaged relation.
    pub first_lsn: Lsn,
    pub commit_lsn: Lsn,
    pub commit_time: DateTime<Utc>,
    pub destruction: Destruction,
    /// The deciding pg_waldump line's description (hostile text: escape before showing).
    pub record: String,
    /// DROP DATABASE: the first record of the destruction (the in-place
    /// invalidation of its pg_database row, else the row's delete).
    pub before_lsn: Option<Lsn>,
}

impl Finding {
    /// Where recovery stops: before the transaction's commit, or before the
    /// first record of a DROP DATABASE.
    pub fn target(&self) -> Target {
        match (&self.destruction, self.before_lsn) {
            (Destruction::DropDatabase { .. }, Some(lsn)) => Target::Lsn { lsn },
            _ => Target::Xid {
                xid: self.xid,
                commit_lsn: Some(self.commit_lsn),
            },
        }
    }
}

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Target {
    /// Stop just before this transaction commits (`recovery_target_inclusive = off`).
    Xid { xid: u32, commit_lsn: Option<Lsn> },
    /// Stop just before the record at this position (`recovery_target_lsn`,
    /// exclusive): DROP DATABASE marks the database invalid in place before
    /// its transaction commits, so the stop must come before that record.
    Lsn { lsn: Lsn },
    /// Stop before this time (`recovery_target_time`, exclusive).
    Time { at: DateTime<Utc> },
}

impl Target {
    /// postgresql.conf lines (values quoted for the conf file).
    pub fn conf_lines(&self) -> Vec<String> {
        match self {
            Target::Xid { xid, .. } => vec![
                format!("recovery_target_xid = '{xid}'"),
                "recovery_target_inclusive = off".into(),
            ],
            Target::Lsn { lsn } => vec![
                format!("recovery_target_lsn = '{lsn}'"),
                "recovery_target_inclusive = off".into(),
            ],
            Target::Time { at } => vec![
                format!(
                    "recovery_target_time = '{}'",
                    at.format("%Y-%m-%d %H:%M:%S%.6f+00")
                ),
                "recovery_target_inclusive = off".into(),
            ],
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Target::Xid { xid, commit_lsn } => match commit_lsn {
                Some(l) => format!("just before transaction {xid} commits (commit record at {l})"),
                None => format!("just before transaction {xid} commits"),
            },
            Target::Lsn { lsn } => format!("just before the WAL record at {lsn}"),
            Target::Time { at } => format!("just before {}", at.to_rfc3339()),
        }
    }
}

/// What a scan saw.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub finding: Option<Finding>,
    pub records: u64,
    /// Lines that were not pg_waldump records (skipped).
    pub skipped: u64,
    /// Last commit time seen (how far the archive reaches).
    pub last_commit: Option<DateTime<Utc>>,
    pub last_lsn: Option<Lsn>,
}

#[derive(Default)]
struct Xact {
    first_lsn: Option<Lsn>,
    /// First record on pg_database's row (a DROP DATABASE's start).
    pgdb_first: Option<Lsn>,
    deletes: HashMap<u32, (u64, Lsn, String)>,
    truncate: Option<(u32, Lsn, String)>,
    drop_db: Option<(u32, Lsn, String)>,
    /// First delete of a row of a schema catalog: (relfilenode, lsn, record).
    schema: Option<(u32, Lsn, String)>,
}

/// Reads pg_waldump text in order and returns the first committed
/// destructive transaction on `damaged` (committed at or after
/// `healthy_at`).
pub fn scan(text: &str, damaged: &Damaged) -> Scan {
    let min_deletes = damaged.min_deletes.unwrap_or(10).max(1);
    let filenodes: BTreeSet<u32> = damaged.relations.iter().map(|r| r.filenode).collect();
    let oids: BTreeSet<u32> = damaged.relations.iter().map(|r| r.oid).collect();
    let any_rel = damaged.relations.is_empty();
    let rel_matches = |db: u32, node: u32| {
        db == damaged.db_oid
            && if any_rel {
                node >= 16384
            } else {
                filenodes.contains(&node)
            }
    };
    let mut out = Scan::default();
    let mut open: HashMap<u32, Xact> = HashMap::new();
    // Latest in-place update of a pg_database row: (block, offset, lsn).
    let mut inplace: Option<(u32, u32, Lsn)> = None;
    for line in text.lines() {
        let Some(r) = parse_line(line) else {
            if !line.trim().is_empty() {
                out.skipped += 1;
            }
            continue;
        };
        out.records += 1;
        out.last_lsn = Some(r.lsn);
        if r.rmgr == "Heap"
            && let Some((0, 1262)) = blkref_rel(&r.desc)
        {
            // pg_database (shared catalog). DROP DATABASE first marks the
            // row invalid in place (no xid), then deletes it in its xid.
            let at = tuple_at(&r.desc);
            if r.desc.starts_with("INPLACE") {
                inplace = at.map(|(b, o)| (b, o, r.lsn));
            } else {
                let start = match (at, inplace) {
                    (Some((b, o)), Some((ib, io, l))) if b == ib && o == io => l,
                    _ => r.lsn,
                };
                inplace = None;
                if r.xid != 0 && r.desc.starts_with("DELETE") {
                    open.entry(r.xid)
                        .or_default()
                        .pgdb_first
                        .get_or_insert(start);
                }
            }
            continue;
        }
        match (
            r.rmgr.as_str(),
            r.desc.split_whitespace().next().unwrap_or(""),
        ) {
            ("Heap", "DELETE") => {
                if let Some((db, node)) = blkref_rel(&r.desc)
                    && db == damaged.db_oid
                    && SCHEMA_CATALOGS.iter().any(|(n, _)| *n == node)
                {
                    let x = open.entry(r.xid).or_default();
                    x.schema.get_or_insert((node, r.lsn, r.desc.clone()));
                } else if let Some((db, node)) = blkref_rel(&r.desc)
                    && rel_matches(db, node)
                {
                    let x = open.entry(r.xid).or_default();
                    x.first_lsn.get_or_insert(r.lsn);
                    let e = x
                        .deletes
                        .entry(node)
                        .or_insert_with(|| (0, r.lsn, r.desc.clone()));
                    e.0 += 1;
                }
            }
            ("Heap", "TRUNCATE") => {
                // `TRUNCATE nrelids 1 relids 16385` (wal_level = logical only).
                let ids: Vec<u32> = r
                    .desc
                    .split_once("relids")
                    .map(|(_, rest)| {
                        rest.split_whitespace()
                            .filter_map(|t| t.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(id) = ids
                    .into_iter()
                    .find(|id| oids.contains(id) || (any_rel && *id >= 16384))
                {
                    let x = open.entry(r.xid).or_default();
                    x.first_lsn.get_or_insert(r.lsn);
                    x.truncate.get_or_insert((id, r.lsn, r.desc.clone()));
                }
            }
            ("Database", "DROP") => {
                // `DROP dir 1663/16384` (one or more tablespace/database pairs).
                let hit = r
                    .desc
                    .split_whitespace()
                    .filter_map(|t| t.split_once('/'))
                    .any(|(_, db)| db.parse::<u32>().ok() == Some(damaged.db_oid));
                if hit {
                    let x = open.entry(r.xid).or_default();
                    x.first_lsn.get_or_insert(r.lsn);
                    x.drop_db
                        .get_or_insert((damaged.db_oid, r.lsn, r.desc.clone()));
                }
            }
            ("Transaction", "COMMIT") | ("Transaction", "COMMIT_PREPARED") => {
                let c = parse_commit(&r.desc);
                if let Some(t) = c.time {
                    out.last_commit = Some(t);
                }
                let mut x = open.remove(&r.xid).unwrap_or_default();
                for s in &c.subxacts {
                    if let Some(sx) = open.remove(s) {
                        merge(&mut x, sx);
                    }
                }
                if out.finding.is_some() {
                    continue;
                }
                let Some(time) = c.time else { continue };
                if damaged.healthy_at.is_some_and(|h| time < h) {
                    continue;
                }
                let dropped = c
                    .rels
                    .iter()
                    .find(|(db, node)| rel_matches(*db, *node))
                    .map(|&(_, node)| node);
                let inval_hit = !c.rels.is_empty()
                    && c.relcache.iter().any(|o| oids.contains(o))
                    && c.rels.iter().any(|(db, _)| *db == damaged.db_oid);
                let destruction = if let Some((db, lsn, desc)) = x.drop_db.clone() {
                    Some((Destruction::DropDatabase { db_oid: db }, lsn, desc))
                } else if let Some((relid, lsn, desc)) = x.truncate.clone() {
                    Some((Destruction::Truncate { relid }, lsn, desc))
                } else if let Some(node) = dropped {
                    Some((
                        Destruction::StorageDropped { relfilenode: node },
                        x.first_lsn.unwrap_or(r.lsn),
                        r.desc.clone(),
                    ))
                } else if inval_hit {
                    let node = c.rels.first().map(|r| r.1).unwrap_or(0);
                    Some((
                        Destruction::StorageDropped { relfilenode: node },
                        x.first_lsn.unwrap_or(r.lsn),
                        r.desc.clone(),
                    ))
                } else {
                    x.deletes
                        .iter()
                        .filter(|(_, (n, _, _))| *n >= min_deletes)
                        .min_by_key(|(_, (_, lsn, _))| *lsn)
                        .map(|(node, (n, lsn, desc))| {
                            (
                                Destruction::DeleteMany {
                                    relfilenode: *node,
                                    rows: *n,
                                },
                                *lsn,
                                desc.clone(),
                            )
                        })
                        .or_else(|| {
                            let (node, lsn, desc) = x.schema.clone()?;
                            let relid = c.relcache.iter().copied().find(|o| {
                                if any_rel {
                                    *o >= 16384
                                } else {
                                    oids.contains(o)
                                }
                            })?;
                            let catalog = SCHEMA_CATALOGS
                                .iter()
                                .find(|(n, _)| *n == node)
                                .map(|(_, name)| name.to_string())
                                .unwrap_or_default();
                            Some((Destruction::SchemaDropped { relid, catalog }, lsn, desc))
                        })
                };
                if let Some((destruction, first_lsn, record)) = destruction {
                    let before_lsn = match destruction {
                        Destruction::DropDatabase { .. } => Some(x.pgdb_first.unwrap_or(first_lsn)),
                        _ => None,
                    };
                    out.finding = Some(Finding {
                        before_lsn,
                        xid: r.xid,
                        first_lsn,
                        commit_lsn: r.lsn,
                        commit_time: time,
                        destruction,
                        record,
                    });
                }
            }
            ("Transaction", "ABORT") | ("Transaction", "ABORT_PREPARED") => {
                let c = parse_commit(&r.desc);
                open.remove(&r.xid);
                for s in &c.subxacts {
                    open.remove(s);
                }
            }
            _ => {}
        }
    }
    out
}

fn merge(into: &mut Xact, from: Xact) {
    if let Some(l) = from.first_lsn {
        into.first_lsn = Some(into.first_lsn.map_or(l, |m| m.min(l)));
    }
    for (node, (n, lsn, desc)) in from.deletes {
        let e = into.deletes.entry(node).or_insert((0, lsn, desc));
        e.0 += n;
        e.1 = e.1.min(lsn);
    }
    if into.truncate.is_none() {
        into.truncate = from.truncate;
    }
    if into.drop_db.is_none() {
        into.drop_db = from.drop_db;
    }
    if into.pgdb_first.is_none() {
        into.pgdb_first = from.pgdb_first;
    }
    if into.schema.is_none() {
        into.schema = from.schema;
    }
}

/// `... blkref #0: rel 1663/16384/16385 blk 0` -> (database OID, relfilenode).
fn blkref_rel(desc: &str) -> Option<(u32, u32)> {
    let i = desc.find("blkref #0: rel ")?;
    let spec = desc[i + 15..].split_whitespace().next()?;
    let mut parts = spec.split('/');
    let _tablespace: u32 = parts.next()?.parse().ok()?;
    let db: u32 = parts.next()?.parse().ok()?;
    let node: u32 = parts.next()?.trim_end_matches(',').parse().ok()?;
    Some((db, node))
}

/// `INPLACE off 4, blkref #0: rel 1664/0/1262 blk 0` -> (block, offset).
fn tuple_at(desc: &str) -> Option<(u32, u32)> {
    let toks: Vec<&str> = desc.split_whitespace().collect();
    let find = |key: &str| {
        toks.windows(2)
            .find(|w| w[0] == key)
            .and_then(|w| w[1].trim_end_matches(',').parse().ok())
    };
    Some((find("blk")?, find("off")?))
}

#[derive(Debug, Default, PartialEq)]
struct Commit {
    time: Option<DateTime<Utc>>,
    /// Dropped relation files: (database OID, relfilenode).
    rels: Vec<(u32, u32)>,
    subxacts: Vec<u32>,
    relcache: Vec<u32>,
}

/// `COMMIT 2026-12-06 03:21:47.318488 UTC; rels: base/16384/16392; subxacts: 5 6; inval msgs: relcache 16392`.
fn parse_commit(desc: &str) -> Commit {
    let mut c = Commit::default();
    let mut parts = desc.split("; ");
    if let Some(head) = parts.next() {
        let t = head.split_once(' ').map(|(_, t)| t).unwrap_or("");
        c.time = parse_pg_time(t);
    }
    for p in parts {
        if let Some(rest) = p.strip_prefix("rels: ") {
            c.rels = rest
                .split_whitespace()
                .filter_map(|r| {
                    let mut it = r.split('/');
                    let first = it.next()?;
                    // base/DB/NODE or pg_tblspc/TS/VER/DB/NODE
                    let rest: Vec<&str> = it.collect();
                    let (db, node) = match (first, rest.as_slice()) {
                        ("base", [db, node]) => (db, node),
                        ("pg_tblspc", [_, _, db, node]) => (db, node),
                        _ => return None,
                    };
                    Some((db.parse().ok()?, node.parse().ok()?))
                })
                .collect();
        } else if let Some(rest) = p.strip_prefix("subxacts: ") {
            c.subxacts = rest
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect();
        } else if let Some(rest) = p.strip_prefix("inval msgs: ") {
            let toks: Vec<&str> = rest.split_whitespace().collect();
            for w in toks.windows(2) {
                if w[0] == "relcache"
                    && let Ok(o) = w[1].parse()
                {
                    c.relcache.push(o);
                }
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from pg_waldump 15.18 over a real archive: 50 rows in
    // "User" (relfilenode 16385), table g (oid/filenode 16392) in db 16384.
    const INSERT_COMMIT: &str = "rmgr: Heap        len (rec/tot):     54/  1922, tx:        726, lsn: 0/03000028, prev 0/02000100, desc: INSERT off 51 flags 0x00, blkref #0: rel 1663/16384/16385 blk 0 FPW
rmgr: Transaction len (rec/tot):     34/    34, tx:        726, lsn: 0/03000C10, prev 0/030007B0, desc: COMMIT 2026-12-06 03:21:47.269480 UTC
";
    const TRUNCATE_G: &str = "rmgr: Storage     len (rec/tot):     42/    42, tx:        729, lsn: 0/030015B0, prev 0/03001580, desc: CREATE base/16384/16395
rmgr: Heap        len (rec/tot):     65/  1941, tx:        729, lsn: 0/030015E0, prev 0/030015B0, desc: UPDATE off 7 xmax 729 flags 0x00 ; new off 8 xmax 0, blkref #0: rel 1663/16384/1259 blk 0 FPW
rmgr: Transaction len (rec/tot):    114/   114, tx:        729, lsn: 0/03005788, prev 0/03003DE0, desc: COMMIT 2026-12-06 03:21:47.318488 UTC; rels: base/16384/16392; inval msgs: catcache 55 catcache 54 relcache 16392
";
    const DROP_DB: &str = "rmgr: Heap        len (rec/tot):     53/   773, tx:          0, lsn: 0/04000028, prev 0/03009B90, desc: INPLACE off 4, blkref #0: rel 1664/0/1262 blk 0 FPW
rmgr: Heap        len (rec/tot):     54/    54, tx:        731, lsn: 0/04000330, prev 0/04000028, desc: DELETE off 4 flags 0x00 KEYS_UPDATED , blkref #0: rel 1664/0/1262 blk 0
rmgr: Database    len (rec/tot):     38/    38, tx:        731, lsn: 0/04000418, prev 0/040003A0, desc: DROP dir 1663/16384
rmgr: Transaction len (rec/tot):     98/    98, tx:        731, lsn: 0/04000440, prev 0/04000418, desc: COMMIT 2026-12-06 03:21:48.473039 UTC; dropped stats: 1/16384/0; inval msgs: catcache 21 catcache 21; sync
";

    fn deletes(xid: u32, n: u32, node: u32) -> String {
        let mut s = String::new();
        for i in 0..n {
            s.push_str(&format!(
                "rmgr: Heap        len (rec/tot):     54/    54, tx:        {xid}, lsn: 0/0300{:04X}, prev 0/03000C38, desc: DELETE off {} flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16384/{node} blk 0\n",
                0x0C60 + i * 0x38,
                i + 11
            ));
        }
        s.push_str(&format!("rmgr: Transaction len (rec/tot):     34/    34, tx:        {xid}, lsn: 0/03001558, prev 0/03001520, desc: COMMIT 2026-12-06 03:21:47.302690 UTC\n"));
        s
    }

    fn user() -> Damaged {
        Damaged {
            db_oid: 16384,
            relations: vec![RelId {
                oid: 16385,
                filenode: 16385,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn parses_a_real_line() {
        let r = parse_line(INSERT_COMMIT.lines().next().unwrap()).unwrap();
        assert_eq!(r.rmgr, "Heap");
        assert_eq!(r.xid, 726);
        assert_eq!(r.lsn.to_string(), "0/3000028");
        assert!(r.desc.starts_with("INSERT off 51"));
        assert_eq!(blkref_rel(&r.desc), Some((16384, 16385)));
    }

    #[test]
    fn many_deletes_in_one_xid_are_the_damage() {
        let text = format!("{INSERT_COMMIT}{}", deletes(728, 41, 16385));
        let s = scan(&text, &user());
        let f = s.finding.unwrap();
        assert_eq!(f.xid, 728);
        assert_eq!(f.commit_lsn.to_string(), "0/3001558");
        assert_eq!(f.first_lsn.to_string(), "0/3000C60");
        assert_eq!(
            f.destruction,
            Destruction::DeleteMany {
                relfilenode: 16385,
                rows: 41
            }
        );
    }

    #[test]
    fn a_few_deletes_or_another_relation_are_not() {
        let text = format!("{}{}", deletes(740, 3, 16385), deletes(741, 50, 16999));
        assert_eq!(scan(&text, &user()).finding, None);
    }

    #[test]
    fn truncate_is_found_by_dropped_storage_and_by_relcache() {
        let by_node = Damaged {
            db_oid: 16384,
            relations: vec![RelId {
                oid: 16392,
                filenode: 16392,
            }],
            ..Default::default()
        };
        let f = scan(TRUNCATE_G, &by_node).finding.unwrap();
        assert_eq!(f.xid, 729);
        assert_eq!(
            f.destruction,
            Destruction::StorageDropped { relfilenode: 16392 }
        );
        // The relation was rewritten earlier (filenode unknown): the OID in the invalidation still ties it.
        let by_oid = Damaged {
            db_oid: 16384,
            relations: vec![RelId {
                oid: 16392,
                filenode: 99999,
            }],
            ..Default::default()
        };
        assert_eq!(scan(TRUNCATE_G, &by_oid).finding.unwrap().xid, 729);
        // Another database's truncate is not ours.
        let other = Damaged {
            db_oid: 5,
            ..by_node
        };
        assert_eq!(scan(TRUNCATE_G, &other).finding, None);
    }

    /// Captured from PostgreSQL 15.18 (`ALTER TABLE b DROP CONSTRAINT
    /// b_a_id_fkey`, then `DROP TRIGGER t ON b`; database 16384, a = 16385,
    /// b = 16390): the first steps of a `pg_dump --clean` stream.
    const DROP_FK_THEN_TRIGGER: &str = "rmgr: Heap        len (rec/tot):     54/    54, tx:        726, lsn: 0/019243B8, prev 0/01924388, desc: DELETE off 4 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16384/2620 blk 0
rmgr: Heap        len (rec/tot):     54/    54, tx:        726, lsn: 0/019243F0, prev 0/019243B8, desc: DELETE off 80 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16384/2608 blk 13
rmgr: Heap        len (rec/tot):     54/    54, tx:        726, lsn: 0/01924578, prev 0/01924540, desc: DELETE off 17 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16384/2606 blk 2
rmgr: Transaction len (rec/tot):    226/   226, tx:        726, lsn: 0/01924658, prev 0/01924620, desc: COMMIT 2026-12-06 07:01:08.527871 UTC; inval msgs: catcache 19 relcache 16390 snapshot 2608 relcache 16390 snapshot 2608 relcache 16385 snapshot 2608 relcache 16385 snapshot 2608 relcache 16390 snapshot 2608
rmgr: Heap        len (rec/tot):     54/    54, tx:        727, lsn: 0/01924770, prev 0/01924740, desc: DELETE off 5 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16384/2620 blk 0
rmgr: Transaction len (rec/tot):     82/    82, tx:        727, lsn: 0/01924818, prev 0/019247E0, desc: COMMIT 2026-12-06 07:01:08.533966 UTC; inval msgs: relcache 16390 snapshot 2608
";

    #[test]
    fn a_dropped_foreign_key_or_trigger_is_the_first_destruction() {
        let f = scan(DROP_FK_THEN_TRIGGER, &user_any(16384))
            .finding
            .unwrap();
        assert_eq!(f.xid, 726);
        assert_eq!(
            f.destruction,
            Destruction::SchemaDropped {
                relid: 16390,
                catalog: "pg_trigger".into()
            }
        );
        assert_eq!(
            Some(f.first_lsn),
            crate::pitr::wal::Lsn::parse("0/019243B8")
        );
        assert!(f.destruction.describe().contains("relation 16390"));
        // Another database's schema change is not ours; a named relation
        // that was not invalidated is not either.
        assert_eq!(scan(DROP_FK_THEN_TRIGGER, &user_any(5)).finding, None);
        let other = Damaged {
            db_oid: 16384,
            relations: vec![RelId {
                oid: 17000,
                filenode: 17000,
            }],
            ..Default::default()
        };
        assert_eq!(scan(DROP_FK_THEN_TRIGGER, &other).finding, None);
        // Row deletes of pg_depend alone (2608) are no schema drop.
        let only_depend: String = DROP_FK_THEN_TRIGGER
            .lines()
            .filter(|l| !l.contains("/2620 ") && !l.contains("/2606 "))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(scan(&only_depend, &user_any(16384)).finding, None);
    }

    fn user_any(db: u32) -> Damaged {
        Damaged {
            db_oid: db,
            ..Default::default()
        }
    }

    #[test]
    fn drop_database() {
        let d = Damaged {
            db_oid: 16384,
            ..Default::default()
        };
        let f = scan(DROP_DB, &d).finding.unwrap();
        assert_eq!(f.xid, 731);
        assert_eq!(f.destruction, Destruction::DropDatabase { db_oid: 16384 });
        assert_eq!(f.record, "DROP dir 1663/16384");
        // The stop comes before the in-place invalidation of its pg_database row.
        assert_eq!(
            f.target(),
            Target::Lsn {
                lsn: Lsn::parse("0/4000028").unwrap()
            }
        );
        // An in-place update of another row does not move the stop.
        let other = DROP_DB.replace("INPLACE off 4,", "INPLACE off 9,");
        assert_eq!(
            scan(&other, &d).finding.unwrap().before_lsn,
            Lsn::parse("0/4000330")
        );
    }

    #[test]
    fn healthy_time_skips_earlier_destruction_and_first_wins() {
        let text = format!("{}{TRUNCATE_G}{DROP_DB}", deletes(728, 41, 16385));
        let mut d = Damaged {
            db_oid: 16384,
            ..Default::default()
        };
        assert_eq!(scan(&text, &d).finding.unwrap().xid, 728);
        d.healthy_at = parse_pg_time("2026-12-06 03:21:47.31 UTC");
        assert_eq!(scan(&text, &d).finding.unwrap().xid, 729);
    }

    #[test]
    fn aborted_transactions_and_subtransactions() {
        let mut text = deletes(750, 20, 16385).replace(
            "desc: COMMIT 2026-12-06 03:21:47.302690 UTC",
            "desc: ABORT 2026-12-06 03:21:47.302690 UTC",
        );
        assert_eq!(scan(&text, &user()).finding, None);
        // Deletes in subtransaction 761 count for its top-level 760.
        text = deletes(761, 20, 16385);
        text = text.replace(
            "tx:        761, lsn: 0/03001558, prev 0/03001520, desc: COMMIT 2026-12-06 03:21:47.302690 UTC",
            "tx:        760, lsn: 0/03001558, prev 0/03001520, desc: COMMIT 2026-12-06 03:21:47.302690 UTC; subxacts: 761",
        );
        let f = scan(&text, &user()).finding.unwrap();
        assert_eq!(f.xid, 760);
    }

    #[test]
    fn hostile_text_is_skipped_not_trusted() {
        let text = "rmgr: Heap tx: 1, lsn: 0/1, desc: DELETE blkref #0: rel 1663/16384/16385\n\
rmgr: Heap        len (rec/tot): 54/54, tx:        notanumber, lsn: 0/03000C60, prev 0/0, desc: DELETE off 1, blkref #0: rel 1663/16384/16385 blk 0\n\
rmgr: Heap        len (rec/tot): 54/54, tx:        9, lsn: 0/ZZ, prev 0/0, desc: DELETE\n\
\u{1b}[2Jpg_waldump: error: could not find file \"000000010000000000000009\"\n\
rmgr: Transaction len (rec/tot): 34/34, tx: 9, lsn: 0/03001558, prev 0/0, desc: COMMIT yesterday\n";
        let s = scan(text, &user());
        assert_eq!(s.finding, None);
        assert_eq!(s.skipped, 4);
        assert_eq!(s.records, 1);
        assert_eq!(s.last_commit, None);
    }

    #[test]
    fn target_conf_lines() {
        let t = Target::Xid {
            xid: 728,
            commit_lsn: None,
        };
        assert_eq!(
            t.conf_lines(),
            vec![
                "recovery_target_xid = '728'",
                "recovery_target_inclusive = off"
            ]
        );
        let t = Target::Time {
            at: parse_pg_time("2026-12-06 03:21:47.302690 UTC").unwrap(),
        };
        assert_eq!(
            t.conf_lines()[0],
            "recovery_target_time = '2026-12-06 03:21:47.302690+00'"
        );
    }
}
