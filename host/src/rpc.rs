//! Calls outside any session (`POST /v1/games/{game}/rpc/{name}`): a
//! lobby, a leaderboard page, "my characters". A plugin names the calls it
//! answers in its `info.rpcs`; the host refuses any other name before the
//! plugin runs.
//!
//! An RPC runs in an instance of the game's plugin with the same namespace
//! and limits as its sessions' calls, but never in a session's instance:
//! each plugin keeps up to `wasm.rpc_instances_max` instances for RPCs,
//! reused between calls (an RPC has no state to leak: it reads what it
//! needs from storage) and dropped after a fault. More calls at once wait
//! for one of them.

use crate::accounts::Account;
use crate::metrics::Metrics;
use crate::wasm::{CallError, Fault, Instance, Plugin, Refusal};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Why an RPC failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("no game named {0:?}")]
    UnknownGame(String),
    #[error("{game} answers no call named {name:?}; it answers {known:?}")]
    UnknownRpc {
        game: String,
        name: String,
        known: Vec<String>,
    },
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Fault(Fault),
}

impl From<CallError> for RpcError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Refused(refusal) => RpcError::Refused(refusal),
            CallError::Fault(fault) => RpcError::Fault(fault),
        }
    }
}

/// One game's RPC instances.
struct Game {
    plugin: Arc<Plugin>,
    /// A permit per instance that may run at once.
    running: Semaphore,
    /// Instances between calls.
    idle: Mutex<Vec<Instance>>,
}

/// The RPCs of every game.
pub struct Rpcs {
    games: HashMap<String, Game>,
    metrics: Arc<Metrics>,
}

impl Rpcs {
    pub fn new(
        plugins: &HashMap<String, Arc<Plugin>>,
        instances_max: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        let games = plugins
            .iter()
            .map(|(name, plugin)| {
                let game = Game {
                    plugin: plugin.clone(),
                    running: Semaphore::new(instances_max.max(1) as usize),
                    idle: Mutex::new(Vec::new()),
                };
                (name.clone(), game)
            })
            .collect();
        Rpcs { games, metrics }
    }

    /// Calls `name` of `game` with the JSON object `input`, for `caller`.
    pub async fn call(
        &self,
        game_name: &str,
        name: &str,
        caller: Option<&Account>,
        input: &str,
    ) -> Result<String, RpcError> {
        let game = self
            .games
            .get(game_name)
            .ok_or_else(|| RpcError::UnknownGame(game_name.to_owned()))?;
        let known = &game.plugin.info().rpcs;
        if !known.iter().any(|rpc| rpc == name) {
            return Err(RpcError::UnknownRpc {
                game: game_name.to_owned(),
                name: name.to_owned(),
                known: known.clone(),
            });
        }
        let _turn = game.running.acquire().await.expect("never closed");
        let kept = game.idle.lock().expect("rpc instances poisoned").pop();
        let mut instance = match kept {
            Some(instance) => instance,
            None => game.plugin.instantiate().await.map_err(RpcError::Fault)?,
        };
        let caller = caller.map(|account| (account.name.as_str(), account.id.as_str()));
        let answer = self
            .metrics
            .time_plugin_call(game_name, "rpc", instance.rpc(name, caller, input))
            .await;
        // A faulted instance may hold anything: it goes. A refusal is an
        // answer like any other.
        if !matches!(answer, Err(CallError::Fault(_))) {
            game.idle
                .lock()
                .expect("rpc instances poisoned")
                .push(instance);
        }
        Ok(answer?)
    }
}
