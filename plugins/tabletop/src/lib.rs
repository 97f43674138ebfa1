//! # A tabletop room, as a hoard plugin
//!
//! A grid board with tokens, dice rolled from the session's seed and logged
//! die by die, chat, and stat-block templates of a game system read through
//! the SDK's cache-aside helper. [`room`] and [`dice`] are the rules, plain
//! Rust that also builds natively (property tests, the benchmark);
//! `plugin.rs` is the plugin on the SDK, built only for wasm. Actions and
//! views are described in `plugins/tabletop/README.md`.

pub mod dice;
pub mod room;

#[cfg(target_arch = "wasm32")]
mod plugin;
