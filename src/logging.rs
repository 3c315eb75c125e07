//! tracing setup: to a file while the TUI owns the terminal, to stderr
//! when headless; every line passes through the redactor and the terminal
//! sanitiser. Never writes a secret or a raw control byte.

use std::io::Write;
use std::path::Path;

use crate::redact::Redactor;

/// A writer that redacts each formatted event before it reaches `inner`.
pub struct RedactingWriter<W: Write> {
    inner: W,
    redactor: Redactor,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = self.redactor.redact(&text);
        self.inner
            .write_all(crate::term::visible_text(&clean).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Logs to stderr (headless commands). `--quiet`/`--verbose`, else
/// `RUST_LOG`, set the filter (default warn).
pub fn init_stderr(redactor: Redactor) {
    let filter = match crate::output::tracing_directive() {
        Some(d) => tracing_subscriber::EnvFilter::new(d),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || RedactingWriter {
            inner: std::io::stderr(),
            redactor: redactor.clone(),
        })
        .try_init();
}

/// Logs to `<dir>/lifeline.log` (the TUI owns the screen). Returns the
/// guard that flushes the non-blocking writer; keep it alive.
pub fn init_file(
    dir: &Path,
    redactor: Redactor,
) -> std::io::Result<tracing_appender::non_blocking::WorkerGuard> {
    crate::state::private_dir(dir)?;
    // Created 0600 here; the appender then appends to it and keeps the mode.
    drop(crate::state::open_private_append(
        &dir.join("lifeline.log"),
    )?);
    let appender = tracing_appender::rolling::never(dir, "lifeline.log");
    let (nb, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || RedactingWriter {
            inner: nb.clone(),
            redactor: redactor.clone(),
        })
        .try_init();
    Ok(guard)
}
