//! lifeline: an incident-response console for PostgreSQL data-loss outages.
//!
//! The library holds the engine; `main.rs` only wires the CLI. Only `tui/`
//! may touch the terminal.

pub mod actions;
pub mod backups;
pub mod catalog;
pub mod console;
pub mod db;
pub mod diag;
pub mod engine;
pub mod export;
pub mod headless;
pub mod incidents;
pub mod init;
pub mod inventory;
pub mod journal;
pub mod lab;
pub mod logging;
pub mod lookalike;
pub mod migrations;
pub mod output;
pub mod pgbin;

pub mod pitr;
pub mod probe;
pub mod redact;
pub mod restore;
pub mod runbook;
pub mod runtime;
pub mod samples;
pub mod sandbox;
pub mod state;
pub mod status;
pub mod term;
pub mod timeline;
pub mod transport;
pub mod tui;
