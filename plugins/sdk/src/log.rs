//! Logging from a plugin: each message a line on WASI stderr, its level
//! first. The host reads the lines, tags each with the plugin, its version
//! and the session, and logs them with its own (`hoard serve` prints them
//! with target `hoard::plugin`); past `wasm.log_lines_per_s` per plugin it
//! drops them and says how many. `eprintln!` and `println!` work too, as
//! `INFO` lines.
//!
//! ```ignore
//! hoard_sdk::log::warn(format_args!("{player} sent a stale move"));
//! ```

use std::fmt::Display;
use std::io::Write as _;

pub fn error(message: impl Display) {
    write("ERROR", message);
}

pub fn warn(message: impl Display) {
    write("WARN", message);
}

pub fn info(message: impl Display) {
    write("INFO", message);
}

pub fn debug(message: impl Display) {
    write("DEBUG", message);
}

/// One message, each of its lines prefixed with the level, in one write.
fn write(level: &str, message: impl Display) {
    let text = message.to_string();
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        out.push_str(level);
        out.push(' ');
        out.push_str(line);
        out.push('\n');
    }
    if text.is_empty() {
        out.push_str(level);
        out.push('\n');
    }
    // Nowhere to report a failed write to: the log is the reporting.
    let _ = std::io::stderr().write_all(out.as_bytes());
}
