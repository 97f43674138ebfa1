//! What plugins print: WASI stdout and stderr, read line by line and logged
//! through `tracing` (target `hoard::plugin`), each line tagged with the
//! plugin, its version and the session the instance serves.
//!
//! A line may start with its level (`ERROR`, `WARN`, `INFO`, `DEBUG`,
//! `TRACE`, as the SDK's `log` functions write it); Rust's panic message
//! is an error; anything else is `INFO`. Lines are bounded
//! (`wasm.log_line_bytes_max`, the rest cut) and so is their rate per
//! plugin (`wasm.log_lines_per_s`, shared by all its instances): past it
//! lines are dropped and counted, and the next line that gets through says
//! how many were. A plugin printing in a loop costs its own call time,
//! never the host's log.

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The rate a plugin's lines share: one per plugin.
pub(super) struct LogBudget {
    /// Lines per second, with a burst of four seconds' worth.
    limiter: DefaultDirectRateLimiter,
    /// Lines dropped since the last one logged.
    dropped: AtomicU64,
    /// Longest line logged; the rest of a line is cut.
    line_bytes_max: usize,
}

impl LogBudget {
    pub(super) fn new(lines_per_s: u32, line_bytes_max: usize) -> Arc<LogBudget> {
        let rate = NonZeroU32::new(lines_per_s).unwrap_or(NonZeroU32::MIN);
        // A burst of a few seconds' worth, so a game's start-up chatter
        // gets through whole.
        let burst = rate.saturating_mul(NonZeroU32::new(4).expect("four is not zero"));
        Arc::new(LogBudget {
            limiter: DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            dropped: AtomicU64::new(0),
            line_bytes_max,
        })
    }
}

/// Who is printing: the plugin and version as the instance is made, the
/// session once it is given one. Shared by the instance's two streams.
#[derive(Clone, Debug, Default)]
struct Origin {
    plugin: String,
    version: String,
    session: Option<String>,
}

/// One output stream of one instance (stdout or stderr): the line being
/// written. Clones share it.
#[derive(Clone)]
pub(super) struct PluginLog {
    stream: Arc<Mutex<Stream>>,
}

struct Stream {
    origin: Arc<Mutex<Origin>>,
    budget: Arc<LogBudget>,
    /// The line so far, at most `line_bytes_max` bytes of it.
    line: Vec<u8>,
    /// Bytes of the line past `line_bytes_max`, cut.
    cut: usize,
    /// Inside a panic's report: its lines are errors too.
    panicking: bool,
}

impl PluginLog {
    /// The two streams of a new instance of `plugin` at `version`.
    pub(super) fn streams(
        plugin: &str,
        version: &str,
        budget: Arc<LogBudget>,
    ) -> (PluginLog, PluginLog) {
        let origin = Arc::new(Mutex::new(Origin {
            plugin: plugin.to_owned(),
            version: if version.is_empty() { "-" } else { version }.to_owned(),
            session: None,
        }));
        let stream = || PluginLog {
            stream: Arc::new(Mutex::new(Stream {
                origin: origin.clone(),
                budget: budget.clone(),
                line: Vec::new(),
                cut: 0,
                panicking: false,
            })),
        };
        (stream(), stream())
    }

    /// Tags what both streams print from now on with `session`.
    pub(super) fn set_session(&self, session: &str) {
        let stream = lock(&self.stream);
        lock(&stream.origin).session = Some(session.to_owned());
    }

    /// Takes printed bytes; each finished line is logged.
    fn take(&self, mut bytes: &[u8]) {
        let mut stream = lock(&self.stream);
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            stream.push(&bytes[..end]);
            stream.finish_line();
            bytes = &bytes[end + 1..];
        }
        stream.push(bytes);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Stream {
    fn push(&mut self, bytes: &[u8]) {
        let room = self.budget.line_bytes_max.saturating_sub(self.line.len());
        let kept = bytes.len().min(room);
        self.line.extend_from_slice(&bytes[..kept]);
        self.cut += bytes.len() - kept;
    }

    /// Logs the line written so far, if the plugin's rate allows it.
    fn finish_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let cut = std::mem::take(&mut self.cut);
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        let (level, message) = match level_of(text) {
            // A panic's report: its header, its message on the lines after,
            // then a hint about RUST_BACKTRACE that a plugin cannot use.
            Line::PanicHeader => {
                self.panicking = true;
                (tracing::Level::ERROR, text)
            }
            Line::BacktraceHint if self.panicking => {
                self.panicking = false;
                return;
            }
            _ if self.panicking => (tracing::Level::ERROR, text),
            Line::Levelled(level, message) => (level, message),
            Line::BacktraceHint | Line::Plain => (tracing::Level::INFO, text),
        };
        let budget = &self.budget;
        if budget.limiter.check().is_err() {
            budget.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let origin = lock(&self.origin).clone();
        let session = origin.session.as_deref().unwrap_or("-");
        let (plugin, version) = (&origin.plugin, &origin.version);
        let dropped = budget.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                target: "hoard::plugin", plugin = %plugin, version = %version, session = %session,
                "{dropped} lines from this plugin dropped: it printed faster than wasm.log_lines_per_s"
            );
        }
        let cut = if cut > 0 {
            format!(" [{cut} more bytes cut]")
        } else {
            String::new()
        };
        match level {
            tracing::Level::ERROR => {
                tracing::error!(target: "hoard::plugin", plugin = %plugin, version = %version, session = %session, "{message}{cut}")
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "hoard::plugin", plugin = %plugin, version = %version, session = %session, "{message}{cut}")
            }
            tracing::Level::INFO => {
                tracing::info!(target: "hoard::plugin", plugin = %plugin, version = %version, session = %session, "{message}{cut}")
            }
            tracing::Level::DEBUG => {
                tracing::debug!(target: "hoard::plugin", plugin = %plugin, version = %version, session = %session, "{message}{cut}")
            }
            tracing::Level::TRACE => {
                tracing::trace!(target: "hoard::plugin", plugin = %plugin, version = %version, session = %session, "{message}{cut}")
            }
        }
    }
}

impl Drop for Stream {
    /// A last line the plugin never ended is logged when its instance goes.
    fn drop(&mut self) {
        if !self.line.is_empty() || self.cut > 0 {
            self.finish_line();
        }
    }
}

/// What one printed line is.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    /// It starts with its level.
    Levelled(tracing::Level, &'a str),
    /// Rust's panic hook: "thread '<unnamed>' panicked at src/lib.rs:1:1:".
    PanicHeader,
    /// The hook's last line: "note: run with `RUST_BACKTRACE=1` ...".
    BacktraceHint,
    Plain,
}

fn level_of(line: &str) -> Line<'_> {
    use tracing::Level;
    let levels = [
        ("ERROR", Level::ERROR),
        ("WARN", Level::WARN),
        ("INFO", Level::INFO),
        ("DEBUG", Level::DEBUG),
        ("TRACE", Level::TRACE),
    ];
    for (word, level) in levels {
        if let Some(rest) = line.strip_prefix(word) {
            let message = if rest.is_empty() {
                Some("")
            } else {
                rest.strip_prefix(' ').or_else(|| rest.strip_prefix(": "))
            };
            if let Some(message) = message {
                return Line::Levelled(level, message);
            }
        }
    }
    if line.starts_with("thread '") && line.contains("' panicked at ") {
        return Line::PanicHeader;
    }
    if line.starts_with("note: run with `RUST_BACKTRACE=") {
        return Line::BacktraceHint;
    }
    Line::Plain
}

impl IsTerminal for PluginLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Most bytes one write may carry; a plugin writes more in several.
const WRITE_BYTES_MAX: usize = 4096;

#[async_trait::async_trait]
impl Pollable for PluginLog {
    /// Always ready: lines are logged (or dropped) as they are written.
    async fn ready(&mut self) {}
}

impl OutputStream for PluginLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BYTES_MAX)
    }
}

impl tokio::io::AsyncWrite for PluginLog {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.take(bytes);
        std::task::Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line's level is its first word when that is a level, alone or
    /// followed by a space or a colon.
    #[test]
    fn levels_are_read_from_the_line() {
        use tracing::Level;
        assert_eq!(
            level_of("ERROR lost the deck"),
            Line::Levelled(Level::ERROR, "lost the deck")
        );
        assert_eq!(level_of("WARN: slow"), Line::Levelled(Level::WARN, "slow"));
        assert_eq!(level_of("DEBUG x=1"), Line::Levelled(Level::DEBUG, "x=1"));
        assert_eq!(level_of("WARN"), Line::Levelled(Level::WARN, ""));
        assert_eq!(level_of("ERRORS happen"), Line::Plain);
        assert_eq!(level_of("plain words"), Line::Plain);
        assert_eq!(
            level_of("thread '<unnamed>' panicked at src/lib.rs:3:5:"),
            Line::PanicHeader
        );
    }

    fn stream(lines_per_s: u32, line_bytes_max: usize) -> (PluginLog, Arc<LogBudget>) {
        let budget = LogBudget::new(lines_per_s, line_bytes_max);
        (PluginLog::streams("p", "1", budget.clone()).0, budget)
    }

    /// Lines are split where the plugin ends them, however it writes them,
    /// cut at the configured length, and past the rate dropped and
    /// counted; a line never ended is logged when the instance goes.
    #[test]
    fn lines_are_bounded_in_length_and_rate() {
        let (log, budget) = stream(1, 8);
        log.take(b"hel");
        log.take(b"lo\nworld and more\n");
        assert_eq!(lock(&log.stream).cut, 0, "the cut line was finished");
        // The burst is 4 lines: "hello", "world an" (cut); two more fit.
        log.take(b"a\nb\nc\nd\n");
        assert_eq!(budget.dropped.load(Ordering::Relaxed), 2);
        log.take(b"0123456789");
        let stream = lock(&log.stream);
        assert_eq!((stream.line.as_slice(), stream.cut), (&b"01234567"[..], 2));
        drop(stream);
        drop(log);
        assert_eq!(
            budget.dropped.load(Ordering::Relaxed),
            3,
            "the unended line went out"
        );
    }

    /// A panic's report is one error: its header and message logged as
    /// errors, the RUST_BACKTRACE hint dropped; lines after it are plain
    /// again.
    #[test]
    fn a_panic_report_is_an_error() {
        let (log, budget) = stream(100, 256);
        log.take(b"thread '<unnamed>' panicked at src/lib.rs:3:5:\nthe deck is empty\n");
        assert!(
            lock(&log.stream).panicking,
            "the message after the header is an error"
        );
        log.take(
            b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
        assert!(!lock(&log.stream).panicking);
        log.take(b"after\n");
        assert_eq!(budget.dropped.load(Ordering::Relaxed), 0);
    }

    /// stdout and stderr keep their own lines, and share the session tag.
    #[test]
    fn streams_keep_their_own_lines() {
        let budget = LogBudget::new(100, 256);
        let (stdout, stderr) = PluginLog::streams("p", "", budget);
        stdout.take(b"half a line");
        stderr.take(b"ERROR whole\n");
        assert_eq!(lock(&stdout.stream).line, b"half a line");
        stderr.set_session("s1");
        assert_eq!(
            lock(&lock(&stdout.stream).origin).session.as_deref(),
            Some("s1")
        );
        assert_eq!(lock(&lock(&stdout.stream).origin).version, "-");
    }
}
