//! # A roguelike, as a hoard plugin
//!
//! One to four players go down a seeded ASCII dungeon together, taking
//! turns by initiative with action points; each sees only what their own
//! character has seen (fog of war). Characters (stats, skill levels,
//! experience, inventory) are kept in cold storage by account and carried
//! from run to run; at the end of a run everyone's progress is written back
//! in one transaction. Monster and item templates are reference data in
//! cold storage, read through the SDK's cache-aside helper.
//!
//! [`dungeon`], [`catalog`], [`character`] and [`run`] are the rules: plain
//! Rust that also builds natively (property tests, the benchmark).
//! `plugin.rs` is the plugin on the SDK, built only for wasm. Actions and
//! views are described in `plugins/roguelike/README.md`.

pub mod catalog;
pub mod character;
pub mod dungeon;
pub mod run;

#[cfg(target_arch = "wasm32")]
mod plugin;
