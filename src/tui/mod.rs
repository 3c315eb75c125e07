//! The console: the TUI an on-call operator lives in during an outage.
//! One entry, `run_console(model_rx, cmd_tx, options)`: `UiEvent`s from
//! the adapters (engine, timeline, probes) come in over a channel,
//! `UiCommand`s leave with `try_send`. The TUI never does I/O besides the
//! terminal, never awaits the engine, and always restores the terminal
//! (exit, panic, Ctrl-C, SIGTERM). Only this module uses ratatui/crossterm.
//!
//! Data flow: terminal event -> `event::Msg` -> `app::update(&mut Model,
//! msg) -> Vec<UiCommand>` (pure) -> `try_send`; adapter event ->
//! `Model::apply`; the loop drains everything pending, then draws once
//! from `&Model` (capped frame rate, redraw when dirty or on the 1 s tick).

pub mod app;
#[doc(hidden)]
pub mod demo;
pub mod event;
pub mod keys;
pub mod model;
pub mod plan;
pub mod rows;
pub mod stop_plan;
pub mod strings;
pub mod theme;
pub mod view;

use std::io::{Stdout, Write};
use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    EventStream,
};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;

pub use app::update;
pub use event::{ExportFormat, Msg, UiCommand, UiEvent};
pub use keys::KeyMap;
pub use model::Model;
pub use theme::Theme;

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(
        "terminal: {0}; run lifeline in an interactive terminal, or use 'lifeline run' headless"
    )]
    Terminal(#[from] std::io::Error),
    #[error(transparent)]
    KeyMap(#[from] keys::KeyMapError),
}

/// How the console runs. `ConsoleOptions::new(model)` gives the defaults:
/// theme from the environment, the user's key map file if there is one
/// (`keys::default_path`), 30 fps, mouse on.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The starting model (header, known hosts, runbooks...); its `theme`
    /// and `keys` are used as they are unless `keymap` names a file.
    pub model: Model,
    /// A key map file overriding the defaults (see `keys::KeyMap::load`).
    pub keymap: Option<PathBuf>,
    /// Frame rate cap.
    pub fps: u16,
    /// Capture the mouse for wheel scrolling (shift-drag still selects text
    /// in most terminals).
    pub mouse: bool,
}

impl ConsoleOptions {
    pub fn new(mut model: Model) -> ConsoleOptions {
        model.theme = Theme::detect();
        ConsoleOptions {
            model,
            keymap: keys::default_path().filter(|p| p.exists()),
            fps: 30,
            mouse: true,
        }
    }
}

/// Whether the terminal is in console mode (the panic hook restores it).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static MOUSE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout();
        let _ = disable_raw_mode();
        if MOUSE.load(Ordering::SeqCst) {
            let _ = crossterm::execute!(out, DisableMouseCapture);
        }
        let _ = crossterm::execute!(
            out,
            DisableBracketedPaste,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        let _ = out.flush();
    }
}

/// Raw mode + alternate screen for as long as it lives; restores on drop
/// (normal exit, `?`, unwinding) and from the panic hook.
struct TerminalGuard;

impl TerminalGuard {
    fn enter(mouse: bool) -> std::io::Result<TerminalGuard> {
        HOOK.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_terminal();
                prev(info);
            }));
        });
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        MOUSE.store(mouse, Ordering::SeqCst);
        let guard = TerminalGuard;
        let mut out = std::io::stdout();
        crossterm::execute!(
            out,
            EnterAlternateScreen,
            EnableBracketedPaste,
            crossterm::cursor::Hide
        )?;
        if mouse {
            crossterm::execute!(out, EnableMouseCapture)?;
        }
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Sends commands without waiting; a full or closed channel is told on screen.
fn send(model: &mut Model, tx: &mpsc::Sender<UiCommand>, cmds: Vec<UiCommand>) {
    for c in cmds {
        let what = format!("{c:?}");
        match tx.try_send(c) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(command = %what, "engine channel full");
                model.ui.message = Some((strings::engine_busy(&what), true));
            }
            Err(TrySendError::Closed(UiCommand::Quit)) => {}
            Err(TrySendError::Closed(_)) => {
                model.ui.message = Some((strings::engine_gone(&what), true));
            }
        }
    }
}

/// SIGTERM, SIGHUP or SIGINT from outside: quit like `:q!`.
fn signalled(model: &mut Model, tx: &mpsc::Sender<UiCommand>) {
    model.ui.quit = true;
    let _ = tx.try_send(UiCommand::Quit);
}

/// Most adapter events merged per loop turn before keys are looked at again.
const DRAIN_MAX: usize = 4096;

/// Runs the console until the operator quits. Takes over the terminal
/// (raw mode, alternate screen) and gives it back on every exit path.
/// Call `logging::init_file` first: tracing must never reach the screen.
pub async fn run_console(
    mut model_rx: mpsc::Receiver<UiEvent>,
    cmd_tx: mpsc::Sender<UiCommand>,
    options: ConsoleOptions,
) -> Result<(), TuiError> {
    let mut model = options.model;
    if let Some(path) = &options.keymap {
        model.keys = KeyMap::load(path)?;
    }
    let guard = TerminalGuard::enter(options.mouse)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let size = terminal.size()?;
    model.ui.size = (size.width, size.height);
    let result = event_loop(
        &mut terminal,
        &mut model,
        &mut model_rx,
        &cmd_tx,
        options.fps,
    )
    .await;
    drop(terminal);
    drop(guard);
    result
}

async fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    model: &mut Model,
    model_rx: &mut mpsc::Receiver<UiEvent>,
    cmd_tx: &mpsc::Sender<UiCommand>,
    fps: u16,
) -> Result<(), TuiError> {
    let frame = Duration::from_millis(1000 / u64::from(fps.clamp(1, 120)));
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut dirty = true;
    let mut last_draw = Instant::now() - frame;
    let mut engine_open = true;
    loop {
        if dirty && Instant::now() >= last_draw + frame {
            model.now = chrono::Utc::now();
            terminal.draw(|f| view::draw(f, model))?;
            last_draw = Instant::now();
            dirty = false;
        }
        let next_frame = last_draw + frame;
        tokio::select! {
            biased;
            ev = events.next() => match ev {
                Some(Ok(e)) => {
                    if let Some(msg) = event::from_terminal(e) {
                        if let Msg::Resize(..) = msg {
                            terminal.autoresize()?;
                        }
                        let cmds = update(model, msg);
                        send(model, cmd_tx, cmds);
                        dirty = true;
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            ev = model_rx.recv(), if engine_open => {
                match ev {
                    // Through `update`, as in the tests: a pause holds the
                    // data, and the suggestion follows new evidence.
                    Some(e) => {
                        update(model, Msg::Ui(Box::new(e)));
                        let mut n = 1;
                        while n < DRAIN_MAX {
                            match model_rx.try_recv() {
                                Ok(e) => {
                                    update(model, Msg::Ui(Box::new(e)));
                                }
                                Err(_) => break,
                            }
                            n += 1;
                        }
                    }
                    None => {
                        engine_open = false;
                        model.ui.disconnected = true;
                    }
                }
                dirty = true;
            }
            _ = tick.tick() => dirty = true,
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
            _ = sigterm.recv() => signalled(model, cmd_tx),
            _ = sighup.recv() => signalled(model, cmd_tx),
            _ = sigint.recv() => signalled(model, cmd_tx),
        }
        if model.ui.quit {
            return Ok(());
        }
    }
}
