//! How much the CLI prints (`--quiet`, `--verbose`) and the one-line
//! progress bar long headless work draws on stderr. The bar is drawn only
//! when stderr is a terminal: piped output never gets `\r` or escape codes.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::engine::events::{EngineEvent, StepStatus};

/// How much the CLI prints, from `--quiet` / `--verbose` (given once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Only errors and the final result.
    Quiet,
    Normal,
    /// More tracing on stderr: 1 info, 2 debug, 3+ trace.
    Verbose(u8),
}

static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Set once by the CLI before any output.
pub fn set_verbosity(v: Verbosity) {
    let n = match v {
        Verbosity::Quiet => 0,
        Verbosity::Normal => 1,
        Verbosity::Verbose(k) => 1 + k.clamp(1, 3),
    };
    VERBOSITY.store(n, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        n => Verbosity::Verbose(n - 1),
    }
}

pub fn quiet() -> bool {
    verbosity() == Verbosity::Quiet
}

/// The tracing filter `--quiet`/`--verbose` ask for (it overrides
/// `RUST_LOG`); None when neither was given.
pub fn tracing_directive() -> Option<&'static str> {
    match verbosity() {
        Verbosity::Quiet => Some("error"),
        Verbosity::Normal => None,
        Verbosity::Verbose(1) => Some("info"),
        Verbosity::Verbose(2) => Some("debug"),
        Verbosity::Verbose(_) => Some("trace"),
    }
}

/// Under `--quiet`, the run events still printed: failures, a dry run's
/// plan (its result) and the final result (which names a question the run
/// stopped at; questions the answers file answers are not shown).
pub fn shown_when_quiet(ev: &EngineEvent) -> bool {
    match ev {
        EngineEvent::RunFinished { .. } | EngineEvent::Plan { .. } => true,
        EngineEvent::StepChanged { status, .. } => *status == StepStatus::Failed,
        _ => false,
    }
}

/// Width of the bar's gauge, in cells.
const GAUGE: usize = 24;

/// A one-line progress bar on stderr for a headless run: the step in flight
/// with its elapsed time, and its latest progress (gauge, percent and the
/// action's own message: bytes, rows, ETA; a hold's countdown). Lines
/// printed meanwhile go above it (`clear` before, `draw` after).
#[derive(Debug)]
pub struct Bar {
    enabled: bool,
    width: usize,
    shown: bool,
    steps: usize,
    step: Option<(usize, String, Instant)>,
    progress: Option<(u64, Option<u64>, String)>,
}

impl Bar {
    /// Drawn when stderr is a terminal (not `TERM=dumb`) and not `--quiet`.
    pub fn for_stderr() -> Bar {
        let enabled = std::io::stderr().is_terminal()
            && !quiet()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .or_else(|| enabled.then(stderr_columns).flatten())
            .filter(|c| *c >= 20)
            .unwrap_or(80);
        Bar {
            enabled,
            width,
            shown: false,
            steps: 0,
            step: None,
            progress: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Follows the run: which step is in flight, its progress.
    pub fn observe(&mut self, ev: &EngineEvent) {
        match ev {
            EngineEvent::RunStarted { steps, .. } => self.steps = *steps,
            EngineEvent::StepChanged {
                index, id, status, ..
            } => {
                let same = self.step.as_ref().is_some_and(|(i, _, _)| i == index);
                let in_flight = matches!(
                    status,
                    StepStatus::ReadingIdentity
                        | StepStatus::AwaitingConfirmation
                        | StepStatus::CheckingGuard
                        | StepStatus::AwaitingOverride
                        | StepStatus::Running
                );
                if in_flight {
                    if !same {
                        self.step = Some((*index, id.clone(), Instant::now()));
                        self.progress = None;
                    }
                } else if same {
                    self.step = None;
                    self.progress = None;
                }
            }
            EngineEvent::Progress {
                done,
                total,
                message,
                index,
                id,
                ..
            } => {
                if self.step.as_ref().is_none_or(|(i, _, _)| i != index) {
                    self.step = Some((*index, id.clone(), Instant::now()));
                }
                self.progress = Some((*done, *total, message.clone()));
            }
            EngineEvent::RunFinished { .. } => {
                self.step = None;
                self.progress = None;
            }
            _ => {}
        }
    }

    /// The bar's text (no control characters), cut to the terminal width.
    pub fn line(&self, now: Instant) -> Option<String> {
        let (index, id, since) = self.step.as_ref()?;
        let elapsed = now.saturating_duration_since(*since);
        let mut s = format!("[{}/{}] {id} {}", index + 1, self.steps, clock(elapsed));
        if let Some((done, total, message)) = &self.progress {
            match total.filter(|t| *t > 0) {
                Some(t) => {
                    let frac = (*done as f64 / t as f64).clamp(0.0, 1.0);
                    let full = (frac * GAUGE as f64).round() as usize;
                    s.push_str(&format!(
                        " [{}{}] {:>3}%",
                        "#".repeat(full),
                        "-".repeat(GAUGE - full),
                        (frac * 100.0).floor() as u64
                    ));
                }
                None => {
                    let spin = ['|', '/', '-', '\\'][(elapsed.as_millis() / 250 % 4) as usize];
                    s.push_str(&format!(" [{spin}]"));
                }
            }
            s.push(' ');
            s.push_str(message);
        }
        let s: String = s.chars().filter(|c| !c.is_control()).collect();
        Some(cut(&s, self.width.saturating_sub(1)))
    }

    /// Removes the bar so a line can be printed in its place.
    pub fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.shown = false;
        }
    }

    /// (Re)draws the bar when a step is in flight.
    pub fn draw(&mut self) {
        if !self.enabled {
            return;
        }
        match self.line(Instant::now()) {
            Some(l) => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{l}");
                let _ = err.flush();
                self.shown = true;
            }
            None => self.clear(),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Columns of the terminal on stderr, from `stty size` run on it once.
fn stderr_columns() -> Option<usize> {
    use std::os::fd::AsFd;
    let tty = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let out = std::process::Command::new("stty")
        .arg("size")
        .stdin(std::process::Stdio::from(tty))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// How often the bar is redrawn (its clock ticks) between events.
pub const TICK: Duration = Duration::from_millis(250);

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// At most `max` display cells of `s`, with '…' when cut.
fn cut(s: &str, max: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if unicode_width::UnicodeWidthStr::width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > max {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::Action;

    fn bar() -> Bar {
        Bar {
            enabled: true,
            width: 100,
            shown: false,
            steps: 0,
            step: None,
            progress: None,
        }
    }

    fn changed(index: usize, status: StepStatus) -> EngineEvent {
        EngineEvent::StepChanged {
            index,
            id: format!("step{index}"),
            action: Action::Note,
            status,
            detail: String::new(),
        }
    }

    #[test]
    fn the_bar_follows_the_step_in_flight_and_its_progress() {
        let mut b = bar();
        let t0 = Instant::now();
        assert_eq!(b.line(t0), None, "nothing in flight: no bar");
        b.observe(&EngineEvent::RunStarted {
            incident: "i".into(),
            runbook: "r".into(),
            title: "t".into(),
            steps: 5,
            dry_run: false,
            readonly: false,
            resumed: false,
        });
        b.observe(&changed(2, StepStatus::Running));
        let l = b.line(Instant::now() + Duration::from_secs(75)).unwrap();
        assert!(l.starts_with("[3/5] step2 01:1"), "{l}");
        b.observe(&EngineEvent::Progress {
            index: 2,
            id: "step2".into(),
            done: 50,
            total: Some(200),
            unit: crate::engine::ProgressUnit::Bytes,
            message: "restore: 50 MiB of 200 MiB, ETA 9 s".into(),
        });
        let l = b.line(Instant::now()).unwrap();
        assert!(
            l.contains(&format!(
                " [{}{}]  25% restore: 50 MiB",
                "#".repeat(6),
                "-".repeat(18)
            )),
            "{l}"
        );
        b.observe(&changed(2, StepStatus::Done));
        assert_eq!(
            b.line(Instant::now()),
            None,
            "a settled step clears the bar"
        );
        b.observe(&changed(3, StepStatus::Running));
        b.observe(&changed(3, StepStatus::Failed));
        assert_eq!(b.line(Instant::now()), None, "a failed step clears the bar");
    }

    #[test]
    fn the_bar_line_has_no_control_characters_and_fits_the_width() {
        let mut b = bar();
        b.width = 40;
        b.observe(&EngineEvent::Progress {
            index: 0,
            id: "restore".into(),
            done: 1,
            total: None,
            unit: crate::engine::ProgressUnit::Bytes,
            message: "a\r\x1b[31mred\nline that is much longer than forty columns".into(),
        });
        let l = b.line(Instant::now()).unwrap();
        assert!(!l.chars().any(char::is_control), "{l:?}");
        assert!(
            unicode_width::UnicodeWidthStr::width(l.as_str()) <= 39,
            "{l:?}"
        );
        assert!(l.ends_with('…'), "{l:?}");
    }

    #[test]
    fn quiet_keeps_failures_questions_and_the_result() {
        assert!(shown_when_quiet(&changed(0, StepStatus::Failed)));
        assert!(!shown_when_quiet(&changed(0, StepStatus::Running)));
        assert!(!shown_when_quiet(&changed(0, StepStatus::Done)));
        assert!(!shown_when_quiet(&EngineEvent::Output {
            index: 0,
            id: "s".into(),
            line: "l".into()
        }));
    }
}
