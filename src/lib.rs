//! lifeline: an incident-response console for PostgreSQL data-loss outages.
//!
//! The library holds the engine; `main.rs` only wires the CLI. Only `tui/`
//! may touch the terminal.

pub mod diag;
pub mod inventory;
pub mod journal;
pub mod logging;
pub mod redact;
pub mod samples;
pub mod sandbox;
pub mod state;
pub mod tui;
