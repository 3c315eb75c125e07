//! Restore through lifeline: a dump stream executed into a NEW database,
//! with progress, a manifest and parallel load. It never writes to the live
//! database, never drops anything, and never leaves a target looking whole
//! when it is not.
//!
//! Flow: [`create_target`] makes `<db>__restore_<UTC stamp>` (marked
//! INCOMPLETE in its comment), a [`RestoreSource`] yields the plain SQL
//! stream (local file, gzip, `pg_restore -f -`, or any `AsyncRead` such as
//! the SSH transport's remote command), and [`Restore::run`] lexes it
//! ([`lexer`]) and executes it, returning a [`Manifest`]; only then is the
//! target's comment changed to `lifeline: restore complete ...`.
//!
//! A dump is hostile until judged: [`prescan`] reads the whole stream
//! first and refuses anything that is not what pg_dump writes ([`scan`]),
//! before a target exists; the executor judges every statement again.

pub mod exec;
pub mod lexer;
pub mod owners;
pub mod progress;
pub mod role;
pub mod scan;
pub mod source;
pub mod sql;
pub mod target;

pub use exec::{Restore, RestoreError, RestoreFailure, RestoreTls, ServerError};
pub use lexer::{Item, LexError, Lexer};
pub use owners::{OwnerChange, OwnersError, ReapplyReport, owner_change, reapply};
pub use progress::{EventTx, Manifest, Phase, Progress, RestoreEvent};
pub use role::{RoleError, RoleStatus, check_restore_role, create_restore_role, create_role_sql};
pub use scan::{Guard, Policy, ScanReport, prescan};
pub use source::{DumpFormat, RestoreSource, SourceError, detect_format, pg_restore_command};
pub use sql::{quote_ident, quote_literal};
pub use target::{
    DbSettings, MARK_COMPLETE, MARK_INCOMPLETE, Target, TargetError, TargetStatus, create_target,
    create_target_named, create_target_owned, read_settings, target_name, target_status,
};
