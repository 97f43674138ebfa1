//! # hoard
//!
//! A storage host for game servers. Game designers ship a game as a WASM
//! component; hoard runs it sandboxed and gives it hot (Redis-like) and cold
//! (Postgres-like) storage through WIT; players reach it over HTTP.
//!
//! # Layout
//! - [`config`]: the configuration (figment: file, `HOARD_*` environment).
//! - [`storage`]: the hot and cold capabilities as traits, writes as values,
//!   and the backends (sled, Redis, PostgreSQL).
//! - [`wasm`]: the wasmtime runtime: loading plugins, instances, host
//!   functions.
//! - [`accounts`]: player accounts: names, hashed secrets, account tokens.
//! - [`session`]: game sessions: players, tokens, ordering of actions,
//!   durable state, seed commitments.
//! - [`lobby`]: the sessions created here that still have free seats.
//! - [`realtime`]: each session's events for its sockets: sequence
//!   numbers, the backlog a reconnect resumes from, bounded queues.
//! - [`cluster`]: several instances on one Redis: heartbeats, and which
//!   instance owns each session (leases with fencing tokens).
//! - [`rpc`]: calls into a game outside any session.
//! - [`catalog`]: the games at the versions of their plugins that are
//!   loaded; a deploy makes a new one current.
//! - [`app`]: the composition root: opens the backends, loads the plugins,
//!   wires sessions; [`run`] starts it and serves.
//! - [`api`]: the HTTP API and the WebSocket events, and their limits per
//!   connection and client; the only module that knows their JSON wire
//!   format.
//! - [`data`]: export and import of plugins' data as dumps (`hoard data`),
//!   through the storage traits.
//! - [`metrics`]: the Prometheus series of `/metrics`.
//! - [`cli`]: the `hoard` command line.
//! - [`dev`]: `hoard dev`: serve plugin crates, rebuild and reload them
//!   as their sources change.
//! - [`plugin_crate`]: a plugin's crate: `hoard plugin new` makes one from
//!   the starter game, `hoard plugin build` compiles it.
//!
//! The entry point is [`run`]: tests call it on port 0.

pub mod accounts;
pub mod api;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod data;
pub mod dev;
pub mod lobby;
pub mod metrics;
pub mod plugin_crate;
pub mod realtime;
pub mod rpc;
pub mod session;
pub mod storage;
pub mod wasm;

pub use app::run;
