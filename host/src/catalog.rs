//! The games this host serves, each as the versions of its plugin that are
//! loaded: the current one, which new sessions and RPCs use, and a few
//! older ones that sessions started before a deploy still run on (when the
//! current one does not upgrade their state: see `Sessions::ready`).
//!
//! A version is the game's own `describe().version` plus a hash of the
//! component's bytes (`1.2.0+3fa9c2e1b04d`), so two builds that both call
//! themselves 1.2.0 are still told apart. A session's record names the
//! version that wrote its state.
//!
//! **Policy:** at most `wasm.plugin_versions_max` versions of a game are
//! loaded, the current one included. A deploy makes room by unloading the
//! oldest version nothing uses (no session in memory holds it, no call
//! runs on it); when every older version is in use, the deploy is refused
//! (nothing changes) until sessions end. A session stored and out of
//! memory holds nothing: its version may go, and it then moves to the
//! current one if that upgrades it (see `Sessions::ready`).
//! Only the configured file is loaded at start.

use crate::wasm::Plugin;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Why a deploy did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("no game named {0:?} is configured on this host")]
    UnknownGame(String),
    #[error(
        "{game} has {loaded} versions loaded, the most it may have, and sessions in memory \
         use every older one ({in_use}): deploy again once some of them end"
    )]
    TooManyVersions {
        game: String,
        loaded: usize,
        in_use: String,
    },
}

/// What a deploy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployed {
    /// The version now current.
    pub version: String,
    /// The version that was current before, if it differs.
    pub previous: Option<String>,
    /// Versions unloaded to make room.
    pub unloaded: Vec<String>,
}

/// One game's loaded versions.
struct Versions {
    current: Arc<Plugin>,
    /// Older versions, newest first.
    older: Vec<Arc<Plugin>>,
    /// The version this host started with: sessions stored before
    /// versions were kept were written by it.
    started: String,
}

/// Every game's loaded versions.
pub struct Catalog {
    games: RwLock<HashMap<String, Versions>>,
    /// Most versions of one game loaded at once, the current included.
    versions_max: usize,
}

impl Catalog {
    /// The games of `plugins` (by name), each at the one version given.
    pub fn new(plugins: HashMap<String, Arc<Plugin>>, versions_max: usize) -> Catalog {
        let games = plugins
            .into_iter()
            .map(|(name, current)| {
                let versions = Versions {
                    started: current.version().to_owned(),
                    current,
                    older: Vec::new(),
                };
                (name, versions)
            })
            .collect();
        Catalog {
            games: RwLock::new(games),
            versions_max: versions_max.max(1),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Versions>> {
        self.games.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The current version of `game`.
    pub fn current(&self, game: &str) -> Option<Arc<Plugin>> {
        self.read().get(game).map(|v| v.current.clone())
    }

    /// The version of `game` this host started with.
    pub fn started(&self, game: &str) -> Option<String> {
        self.read().get(game).map(|v| v.started.clone())
    }

    /// Version `version` of `game`, if it is loaded.
    pub fn loaded(&self, game: &str, version: &str) -> Option<Arc<Plugin>> {
        let games = self.read();
        let versions = games.get(game)?;
        std::iter::once(&versions.current)
            .chain(&versions.older)
            .find(|plugin| plugin.version() == version)
            .cloned()
    }

    /// Each game's current version, sorted by name.
    pub fn games(&self) -> Vec<(String, Arc<Plugin>)> {
        let mut games: Vec<_> = self
            .read()
            .iter()
            .map(|(name, v)| (name.clone(), v.current.clone()))
            .collect();
        games.sort_by(|a, b| a.0.cmp(&b.0));
        games
    }

    /// Every loaded version of `game`, current first.
    pub fn versions(&self, game: &str) -> Vec<Arc<Plugin>> {
        self.read()
            .get(game)
            .map(|v| {
                std::iter::once(v.current.clone())
                    .chain(v.older.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Makes `plugin` the current version of `game`, keeping the one it
    /// replaces for the sessions on it. A version is in use while anything
    /// but the catalog holds it: a session in memory (`Live::plugin`), a
    /// call running on it.
    pub fn deploy(&self, game: &str, plugin: Arc<Plugin>) -> Result<Deployed, DeployError> {
        let mut games = self.games.write().unwrap_or_else(|p| p.into_inner());
        let versions = games
            .get_mut(game)
            .ok_or_else(|| DeployError::UnknownGame(game.to_owned()))?;
        let version = plugin.version().to_owned();
        if versions.current.version() == version {
            return Ok(Deployed {
                version,
                previous: None,
                unloaded: Vec::new(),
            });
        }
        // The same version deployed again leaves the older ones.
        let again = versions.older.iter().position(|p| p.version() == version);
        let mut older = versions.older.clone();
        if let Some(index) = again {
            older.remove(index);
        }
        older.insert(0, versions.current.clone());
        let mut unloaded = Vec::new();
        while older.len() + 1 > self.versions_max {
            // Held by `versions` and `older` only: nobody else uses it.
            let unused = older.iter().rposition(|p| Arc::strong_count(p) <= 2);
            let Some(unused) = unused else {
                let in_use: Vec<&str> = older.iter().map(|p| p.version()).collect();
                return Err(DeployError::TooManyVersions {
                    game: game.to_owned(),
                    loaded: self.versions_max,
                    in_use: in_use.join(", "),
                });
            };
            unloaded.push(older.remove(unused).version().to_owned());
        }
        let previous = versions.current.version().to_owned();
        versions.current = plugin;
        versions.older = older;
        Ok(Deployed {
            version,
            previous: Some(previous),
            unloaded,
        })
    }
}
