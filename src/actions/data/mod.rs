//! Data actions: pick-backup (the catalog against the incident time),
//! restore (the streaming executor into `<db>__restore_<stamp>`, reading
//! the backup over the catalog host's transport), verify (integrity checks
//! and row counts against the manifest), merge-tables (restored rows back
//! into the live database through staging tables). Only merge-tables writes
//! to the live database, after a typed confirmation; nothing here drops a database.

mod evidence;
mod merge;
mod pick;
mod pitr;
mod restore;
mod verify;

use std::time::Duration;

pub use merge::{
    Discard, discard_lines, merge_preview, merge_tables, preview_lines, swap_discards,
};
pub use pick::pick_backup;
pub use pitr::{choose_path, recover_pitr};
pub use restore::{reapply_owners, restore};
pub use verify::verify;

use super::RealActions;
use crate::engine::actions::ActionError;
use crate::transport::Host;

/// Limit of one catalog look-up (listing, heads, tails, pg_restore --list).
const CATALOG_TIMEOUT: Duration = Duration::from_secs(120);

/// The transport of an inventory host.
fn host<'a>(a: &'a RealActions, name: &str) -> Result<&'a Host, ActionError> {
    a.hosts.require(name).map_err(|e| ActionError::Transport {
        what: format!("host '{name}' (check the inventory's [[host]] entry)"),
        source: Box::new(e),
    })
}

/// `2 d 5 h`, `3 h 12 min`, `42 s`: a span for the operator.
pub(crate) fn span(secs: i64) -> String {
    let neg = secs < 0;
    let s = secs.unsigned_abs();
    let txt = if s >= 86_400 {
        format!("{} d {} h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    };
    if neg { format!("-{txt}") } else { txt }
}

/// `1.2 MiB`: the one byte formatter (the console's).
pub(crate) use crate::tui::strings::bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_sizes() {
        assert_eq!(span(42), "42 s");
        assert_eq!(span(3 * 60 + 5), "3 min 5 s");
        assert_eq!(span(53 * 3600 + 6 * 60), "2 d 5 h");
        assert_eq!(span(-7200), "-2 h 0 min");
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
