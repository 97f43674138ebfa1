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
use crate::catalog::Catalog;
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

/// One plugin version's RPC instances.
struct Game {
    plugin: Arc<Plugin>,
    /// A permit per instance that may run at once.
    running: Semaphore,
    /// Instances between calls.
    idle: Mutex<Vec<Instance>>,
}

/// The RPCs of every game, answered by its current version.
pub struct Rpcs {
    catalog: Arc<Catalog>,
    /// Each game's instances, of the version that was current when they
    /// were made: a deploy replaces them at the next call (calls running
    /// then finish on theirs).
    games: Mutex<HashMap<String, Arc<Game>>>,
    instances_max: u32,
    metrics: Arc<Metrics>,
}

impl Rpcs {
    pub fn new(catalog: Arc<Catalog>, instances_max: u32, metrics: Arc<Metrics>) -> Self {
        Rpcs {
            catalog,
            games: Mutex::new(HashMap::new()),
            instances_max,
            metrics,
        }
    }

    /// The instances of `game`'s current version.
    fn game(&self, game_name: &str) -> Result<Arc<Game>, RpcError> {
        let current = self
            .catalog
            .current(game_name)
            .ok_or_else(|| RpcError::UnknownGame(game_name.to_owned()))?;
        let mut games = self.games.lock().expect("rpc games poisoned");
        if let Some(game) = games.get(game_name)
            && game.plugin.version() == current.version()
        {
            return Ok(game.clone());
        }
        let game = Arc::new(Game {
            plugin: current,
            running: Semaphore::new(self.instances_max.max(1) as usize),
            idle: Mutex::new(Vec::new()),
        });
        games.insert(game_name.to_owned(), game.clone());
        Ok(game)
    }

    /// Drops `game`'s instances (a new version was deployed); calls
    /// running on them finish first.
    pub fn retire(&self, game: &str) {
        self.games.lock().expect("rpc games poisoned").remove(game);
    }

    /// Calls `name` of `game` with the JSON object `input`, for `caller`.
    pub async fn call(
        &self,
        game_name: &str,
        name: &str,
        caller: Option<&Account>,
        input: &str,
    ) -> Result<String, RpcError> {
        let game = self.game(game_name)?;
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
