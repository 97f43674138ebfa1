//! Game sessions: who plays, their tokens, the order of their actions, and
//! the session's state kept durably in hot storage.
//!
//! Each session has one [`Slot`] in memory while it is active. The slot's
//! lock is a fair (FIFO) `tokio::sync::Mutex`, so actions on one session apply
//! one at a time in arrival order, while different sessions run in parallel.
//! A slot holds the session's own plugin instance: instances are never shared
//! between sessions.
//!
//! **Invariant:** a change is answered only after the new session record is
//! durable; if storing it fails, the session stays as it was. The record
//! lives under the host's namespace, never a plugin's.

use crate::config::SessionsConfig;
use crate::storage::{self, HotStore, HotWrite, Namespace, Op};
use crate::wasm::{CallError, Fault, GameInfo, Instance, Plugin, Refusal};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a session keeps durably.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionRecord {
    game: String,
    seed: u64,
    players: Vec<PlayerRecord>,
    /// The plugin's state, opaque to the host.
    state: Vec<u8>,
    /// The plugin's outcome document once the game has ended.
    outcome: Option<String>,
    /// Actions applied so far.
    actions: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlayerRecord {
    name: String,
    token: String,
}

impl SessionRecord {
    /// The player a bearer token belongs to, compared in constant time.
    fn player_by_token(&self, token: &str) -> Option<&str> {
        self.players
            .iter()
            .find(|p| constant_time_eq(p.token.as_bytes(), token.as_bytes()))
            .map(|p| p.name.as_str())
    }
}

/// An active session in memory.
struct Live {
    record: SessionRecord,
    /// Created on first use and dropped after a fault or on eviction.
    instance: Option<Instance>,
}

struct Slot {
    /// Fair: waiters get the lock in arrival order.
    live: tokio::sync::Mutex<Live>,
    /// For least-recently-used eviction.
    last_used: AtomicU64,
}

/// Why a session call failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no game named {0:?}")]
    UnknownGame(String),
    #[error("no such session")]
    UnknownSession,
    #[error("the token does not belong to a player of this session")]
    BadToken,
    #[error("the name {0:?} is already taken in this session")]
    NameTaken(String),
    #[error("invalid name: use 1 to 32 letters, digits, '-' or '_'")]
    InvalidName,
    #[error("the document is {actual} bytes, over the limit of {max}")]
    DocumentTooLarge { max: u64, actual: u64 },
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Fault(Fault),
    #[error(transparent)]
    Storage(storage::Error),
}

impl From<CallError> for SessionError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Refused(refusal) => SessionError::Refused(refusal),
            CallError::Fault(fault) => SessionError::Fault(fault),
        }
    }
}

impl From<storage::Error> for SessionError {
    fn from(error: storage::Error) -> Self {
        SessionError::Storage(error)
    }
}

type Result<T> = std::result::Result<T, SessionError>;

/// A new session.
#[derive(Debug)]
pub struct Created {
    pub session: String,
}

/// A seated player and the token that proves it.
#[derive(Debug)]
pub struct Joined {
    pub player: String,
    pub token: String,
}

/// What an accepted action produced.
#[derive(Debug)]
pub struct Acted {
    /// The acting player's view after the action (JSON); `None` if the
    /// plugin failed to render it (the action still stands).
    pub view: Option<String>,
    /// The outcome (JSON) if the game ended.
    pub outcome: Option<String>,
}

/// A session as anyone may see it.
#[derive(Debug)]
pub struct Summary {
    pub game: String,
    pub players: Vec<String>,
    pub actions: u64,
    pub outcome: Option<String>,
    /// The spectator's view (JSON).
    pub view: String,
}

/// Every session of this host.
pub struct Sessions {
    games: HashMap<String, Arc<Plugin>>,
    hot: Arc<dyn HotStore>,
    /// Active sessions; at most `config.live_max` idle ones are kept.
    live: Mutex<HashMap<String, Arc<Slot>>>,
    /// A logical clock for least-recently-used eviction.
    clock: AtomicU64,
    config: SessionsConfig,
}

impl Sessions {
    pub fn new(plugins: Vec<Plugin>, hot: Arc<dyn HotStore>, config: SessionsConfig) -> Self {
        let games = plugins
            .into_iter()
            .map(|p| (p.namespace().as_str().to_owned(), Arc::new(p)))
            .collect();
        Sessions {
            games,
            hot,
            live: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
            config,
        }
    }

    /// Every loaded game, sorted by name.
    pub fn games(&self) -> Vec<(String, GameInfo)> {
        let mut games: Vec<_> = self
            .games
            .iter()
            .map(|(name, p)| (name.clone(), p.info().clone()))
            .collect();
        games.sort_by(|a, b| a.0.cmp(&b.0));
        games
    }

    /// Starts a session of `game` from a JSON `config`; `seed` fixes every
    /// random choice (a random one if `None`).
    pub async fn create(&self, game: &str, config: &str, seed: Option<u64>) -> Result<Created> {
        let plugin = self
            .games
            .get(game)
            .ok_or_else(|| SessionError::UnknownGame(game.to_owned()))?;
        self.check_document(config)?;
        let id = format!("{:032x}", rand::random::<u128>());
        let seed = seed.unwrap_or_else(rand::random);
        let mut instance = plugin.instantiate().await.map_err(SessionError::Fault)?;
        let state = instance.create(&id, seed, config).await?;
        self.check_state(&state)?;
        let record = SessionRecord {
            game: game.to_owned(),
            seed,
            players: Vec::new(),
            state,
            outcome: None,
            actions: 0,
        };
        self.store(&id, &record).await?;
        let slot = Arc::new(Slot {
            live: tokio::sync::Mutex::new(Live {
                record,
                instance: Some(instance),
            }),
            last_used: AtomicU64::new(self.tick()),
        });
        self.insert(&id, slot);
        Ok(Created { session: id })
    }

    /// Seats a player named `name` and hands back their token.
    pub async fn join(&self, session: &str, name: &str) -> Result<Joined> {
        let valid = (1..=32).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(SessionError::InvalidName);
        }
        let slot = self.slot(session).await?;
        let mut live = slot.live.lock().await;
        if live.record.players.iter().any(|p| p.name == name) {
            return Err(SessionError::NameTaken(name.to_owned()));
        }
        let plugin = self.plugin(&live.record.game)?;
        let state = {
            let Live {
                record,
                instance: kept,
            } = &mut *live;
            let joined = instance_of(kept, &plugin)
                .await?
                .join(&record.state, name)
                .await;
            faulting(joined, kept)?
        };
        self.check_state(&state)?;
        let token = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let mut next = live.record.clone();
        next.state = state;
        next.players.push(PlayerRecord {
            name: name.to_owned(),
            token: token.clone(),
        });
        self.store(session, &next).await?;
        live.record = next;
        Ok(Joined {
            player: name.to_owned(),
            token,
        })
    }

    /// Applies the action of the player holding `token`.
    pub async fn act(&self, session: &str, token: &str, action: &str) -> Result<Acted> {
        self.check_document(action)?;
        let slot = self.slot(session).await?;
        let mut live = slot.live.lock().await;
        let player = live
            .record
            .player_by_token(token)
            .ok_or(SessionError::BadToken)?
            .to_owned();
        if live.record.outcome.is_some() {
            return Err(SessionError::Refused(Refusal::Finished));
        }
        let plugin = self.plugin(&live.record.game)?;
        let turn = {
            let Live {
                record,
                instance: kept,
            } = &mut *live;
            let acted = instance_of(kept, &plugin)
                .await?
                .act(&record.state, &player, action)
                .await;
            faulting(acted, kept)?
        };
        self.check_state(&turn.state)?;
        let mut next = live.record.clone();
        next.state = turn.state;
        next.outcome = turn.outcome;
        next.actions += 1;
        self.store(session, &next).await?;
        live.record = next;
        // The action is applied and durable: a failure to render the view
        // now must not report the action as failed (a retry would be refused).
        let view = match self.render(&mut live, &plugin, Some(&player)).await {
            Ok(view) => Some(view),
            Err(error) => {
                tracing::warn!(%error, session, "the view after an applied action failed");
                None
            }
        };
        Ok(Acted {
            view,
            outcome: live.record.outcome.clone(),
        })
    }

    /// The view of the player holding `token`.
    pub async fn view(&self, session: &str, token: &str) -> Result<String> {
        let slot = self.slot(session).await?;
        let mut live = slot.live.lock().await;
        let player = live
            .record
            .player_by_token(token)
            .ok_or(SessionError::BadToken)?
            .to_owned();
        let plugin = self.plugin(&live.record.game)?;
        self.render(&mut live, &plugin, Some(&player)).await
    }

    /// The session as a spectator sees it.
    pub async fn summary(&self, session: &str) -> Result<Summary> {
        let slot = self.slot(session).await?;
        let mut live = slot.live.lock().await;
        let plugin = self.plugin(&live.record.game)?;
        let view = self.render(&mut live, &plugin, None).await?;
        let record = &live.record;
        Ok(Summary {
            game: record.game.clone(),
            players: record.players.iter().map(|p| p.name.clone()).collect(),
            actions: record.actions,
            outcome: record.outcome.clone(),
            view,
        })
    }

    async fn render(
        &self,
        live: &mut Live,
        plugin: &Plugin,
        player: Option<&str>,
    ) -> Result<String> {
        let Live {
            record,
            instance: kept,
        } = live;
        let view = instance_of(kept, plugin)
            .await?
            .view(&record.state, player)
            .await;
        faulting(view, kept)
    }

    fn plugin(&self, game: &str) -> Result<Arc<Plugin>> {
        // A session of a game that is no longer configured cannot be served.
        self.games
            .get(game)
            .cloned()
            .ok_or_else(|| SessionError::UnknownGame(game.to_owned()))
    }

    fn check_document(&self, document: &str) -> Result<()> {
        let (actual, max) = (document.len() as u64, self.config.document_bytes_max);
        if actual > max {
            Err(SessionError::DocumentTooLarge { max, actual })
        } else {
            Ok(())
        }
    }

    fn check_state(&self, state: &[u8]) -> Result<()> {
        let max = self.config.state_bytes_max;
        if state.len() as u64 > max {
            return Err(SessionError::Fault(Fault::Trapped(format!(
                "the plugin returned a state of {} bytes, over the limit of {max}",
                state.len()
            ))));
        }
        Ok(())
    }

    async fn store(&self, session: &str, record: &SessionRecord) -> Result<()> {
        let value = postcard::to_stdvec(record)
            .map_err(|e| storage::Error::Unavailable(format!("encoding a session: {e}")))?;
        let write = HotWrite::Set {
            key: record_key(session),
            value,
            ttl_ms: Some(self.config.ttl_ms),
        };
        self.hot.apply(&Op::new(Namespace::host(), write)).await?;
        Ok(())
    }

    /// The session's slot, loaded from storage if it is not in memory.
    async fn slot(&self, session: &str) -> Result<Arc<Slot>> {
        let well_formed = session.len() == 32 && session.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(SessionError::UnknownSession);
        }
        if let Some(slot) = self
            .live
            .lock()
            .expect("sessions map poisoned")
            .get(session)
        {
            slot.last_used.store(self.tick(), Ordering::Relaxed);
            return Ok(slot.clone());
        }
        let bytes = self
            .hot
            .get(&Namespace::host(), &record_key(session))
            .await?
            .ok_or(SessionError::UnknownSession)?;
        let record: SessionRecord = postcard::from_bytes(&bytes).map_err(|e| {
            storage::Error::Unavailable(format!("stored session {session} is malformed: {e}"))
        })?;
        let slot = Arc::new(Slot {
            live: tokio::sync::Mutex::new(Live {
                record,
                instance: None,
            }),
            last_used: AtomicU64::new(self.tick()),
        });
        Ok(self.insert(session, slot))
    }

    /// Inserts a slot (or returns the one another task inserted first) and
    /// evicts the least recently used idle slots beyond `live_max`.
    fn insert(&self, session: &str, slot: Arc<Slot>) -> Arc<Slot> {
        let mut live = self.live.lock().expect("sessions map poisoned");
        let slot = live.entry(session.to_owned()).or_insert(slot).clone();
        while live.len() > self.config.live_max {
            // Only the map holds an idle slot, and nobody can clone it while
            // we hold the map's lock, so evicting it loses nothing: its record
            // is already durable.
            let oldest = live
                .iter()
                .filter(|(_, s)| Arc::strong_count(s) == 1)
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => live.remove(&id),
                None => break,
            };
        }
        slot
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }
}

/// The session's instance, created if it has none.
async fn instance_of<'a>(
    instance: &'a mut Option<Instance>,
    plugin: &Plugin,
) -> Result<&'a mut Instance> {
    if instance.is_none() {
        *instance = Some(plugin.instantiate().await.map_err(SessionError::Fault)?);
    }
    Ok(instance.as_mut().expect("just set"))
}

/// Drops the instance after a fault: its memory may be half-updated.
fn faulting<T>(
    result: std::result::Result<T, CallError>,
    instance: &mut Option<Instance>,
) -> Result<T> {
    if let Err(CallError::Fault(fault)) = &result {
        tracing::warn!(%fault, "plugin call failed; discarding its instance");
        *instance = None;
    }
    result.map_err(SessionError::from)
}

fn record_key(session: &str) -> String {
    format!("session:{session}")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
