//! Discovery: what runs on a host (systemd units and timers, cron entries,
//! containers, processes), which databases each reaches, and which are
//! hazards. Read-only: it lists and reads, never starts, stops or edits.

pub mod container;
pub mod cron;
pub mod dbref;
pub mod discover;
pub mod exec;
pub mod process;
pub mod scan;
pub mod shell;
pub mod systemd;

pub use dbref::{DbRef, DbRole};
pub use discover::{
    CronLine, Discovery, ProbeError, ProbeOptions, Service, ServiceFacts, StartedBy, StarterOf,
    base_body, discover, round_script,
};
pub use exec::{RunOutput, Runner};
pub use scan::{Hazard, HazardKind, ScanCtx};
