//! The one integration test binary: every area a module, sharing the
//! fixtures of `support` (real PostgreSQL clusters, real sshd, tmux).
//! Never changes process-wide state (env, cwd, umask): tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod export_support;
#[path = "fixtures/restore/helpers.rs"]
mod restore_helpers;
mod support;

mod catalog_files;
mod cli_check;
mod cli_docs;
mod cli_fixes;
mod cli_output;
mod console_choose;
mod console_tmux;
mod console_walk;
mod db_connect;
mod engine_driver;
mod export_failed_run;
mod export_fixture;
mod export_rogue_sync;
mod harness;
mod init_cli;
mod journal;
mod journal_anchor;
mod lab_cli;
mod lab_drills;
mod lab_install;
mod lab_lifecycle;
mod lab_pitr;
mod lab_scenarios;
mod late_arrival;
mod leaks;
mod merge_tables;
mod migration_history;
mod note_cli;
mod pitr;
mod pitr_pgbackrest;
mod probe_discovery;
mod probe_ssh;
mod readme_examples;
mod real_data;
mod real_hosts;
mod real_hosts_lab;
mod restore_attacks;
mod restore_command_quoting;
mod restore_errors;
mod restore_fidelity;
mod restore_lexer;
mod run_headless;
mod runbook_check;
mod sql_step;
mod status_cli;
mod timeline_sampling;
mod transport_local;
mod transport_ssh;
mod tui_snapshots;
mod tui_tmux;
mod verify_checks;
