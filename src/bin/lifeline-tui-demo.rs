//! Dev-only: the console on the demo model of outage 1 (the rogue sync job),
//! driven by a stand-in engine, to try the TUI in a terminal or tmux. Not a
//! product command; touches nothing but the terminal and a log file.
//!
//! Usage: lifeline-tui-demo [--keys FILE] [--restore-rate BYTES_PER_S] [--panic-after-ms N]

use std::path::PathBuf;
use std::process::ExitCode;

use lifeline::redact::Redactor;
use lifeline::tui::{self, ConsoleOptions};

fn main() -> ExitCode {
    let mut keys = None;
    let mut panic_after = None;
    let mut rate = 150_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--keys" => keys = args.next().map(PathBuf::from),
            "--restore-rate" => rate = args.next().and_then(|v| v.parse().ok()).unwrap_or(rate),
            "--panic-after-ms" => panic_after = args.next().and_then(|v| v.parse::<u64>().ok()),
            other => {
                eprintln!(
                    "lifeline-tui-demo: unknown argument '{other}'; use --keys FILE, --restore-rate N or --panic-after-ms N"
                );
                return ExitCode::from(2);
            }
        }
    }
    let log_dir = std::env::var_os("LIFELINE_TUI_DEMO_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("lifeline-tui-demo"));
    let _log = lifeline::logging::init_file(&log_dir, Redactor::new());
    let rt = match lifeline::runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lifeline-tui-demo: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async move {
        let start = chrono::Utc::now();
        let (ev_tx, ev_rx) = tokio::sync::mpsc::channel(1024);
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(tui::demo::run(ev_tx, cmd_rx, start, rate));
        let mut options = ConsoleOptions::new(tui::demo::model(start));
        // Only the file named on the command line: the demo ignores the user's.
        options.keymap = keys;
        let console = tui::run_console(ev_rx, cmd_tx, options);
        match panic_after {
            None => console.await,
            Some(ms) => {
                tokio::select! {
                    r = console => r,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(ms)) => {
                        // Proves the panic hook gives the terminal back.
                        #[allow(clippy::panic)]
                        { panic!("lifeline-tui-demo: panic on request (--panic-after-ms)") }
                    }
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
