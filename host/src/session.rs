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
use crate::metrics::Metrics;
use crate::storage::{self, HotStore, HotWrite, Namespace, Op, OpId};
use crate::wasm::{CallError, Fault, GameInfo, Instance, Plugin, Refusal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::OwnedMutexGuard;

/// What a session keeps durably. `P` is how a player is kept: records
/// written before accounts kept [`PlayerRecordV1`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionRecord<P = PlayerRecord> {
    game: String,
    /// Every random choice of the game comes from it. The host chooses it
    /// and keeps it secret until the game ends, unless the config lets the
    /// creator choose (then `fair` is false).
    seed: u64,
    /// Random bytes committed with the seed, so the public commitment
    /// cannot be reversed by trying every seed.
    nonce: [u8; 16],
    /// Whether the host chose the seed.
    fair: bool,
    players: Vec<P>,
    /// The plugin's state, opaque to the host.
    state: Vec<u8>,
    /// The plugin's outcome document once the game has ended.
    outcome: Option<String>,
    /// Actions applied so far.
    actions: u64,
    /// When the record expires, in ms since the Unix epoch: the session and
    /// its tokens are gone then, in memory as in storage.
    expires_at_ms: u64,
    /// The answers to the latest actions sent with an `Idempotency-Key`,
    /// oldest first, at most `sessions.idempotency_keys_max`.
    replies: Vec<KeptReply>,
}

/// The answer to an action sent with an idempotency key: a retry with the
/// same key gets it again instead of acting twice.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeptReply {
    player: String,
    key: String,
    /// SHA-256 of the action: the same key with another action is refused.
    action_hash: [u8; 32],
    view: Option<String>,
    outcome: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlayerRecord {
    name: String,
    /// SHA-256 of the player's bearer token: the token itself is never
    /// stored, so a copy of the storage grants no seat.
    token_hash: [u8; 32],
    /// The account's id, or `None` for a guest.
    account: Option<String>,
}

/// A player as records written before accounts kept one: every player a
/// guest.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlayerRecordV1 {
    name: String,
    token_hash: [u8; 32],
}

/// Session records start with this, then the record in postcard. Records
/// written before accounts have none: they start with the game name's
/// length, a byte under 128.
const RECORD_FORMAT: [u8; 4] = [0xff, b'h', b's', 2];

impl SessionRecord {
    fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, RECORD_FORMAT.to_vec()).map_err(|e| {
            SessionError::Storage(storage::Error::Unavailable(format!(
                "encoding a session: {e}"
            )))
        })
    }

    fn decode(bytes: &[u8]) -> postcard::Result<SessionRecord> {
        let Some(record) = bytes.strip_prefix(&RECORD_FORMAT) else {
            let old: SessionRecord<PlayerRecordV1> = postcard::from_bytes(bytes)?;
            return Ok(old.upgrade());
        };
        postcard::from_bytes(record)
    }
}

impl SessionRecord<PlayerRecordV1> {
    fn upgrade(self) -> SessionRecord {
        let players = self
            .players
            .into_iter()
            .map(|p| PlayerRecord {
                name: p.name,
                token_hash: p.token_hash,
                account: None,
            })
            .collect();
        SessionRecord {
            game: self.game,
            seed: self.seed,
            nonce: self.nonce,
            fair: self.fair,
            players,
            state: self.state,
            outcome: self.outcome,
            actions: self.actions,
            expires_at_ms: self.expires_at_ms,
            replies: self.replies,
        }
    }
}

impl SessionRecord {
    /// The player a bearer token belongs to, compared in constant time.
    fn player_by_token(&self, token: &str) -> Option<&str> {
        let presented = token_hash(token);
        self.players
            .iter()
            .find(|p| constant_time_eq(&p.token_hash, &presented))
            .map(|p| p.name.as_str())
    }

    /// The public commitment to the seed: see [`commitment`].
    fn commitment(&self) -> String {
        commitment(self.seed, &self.nonce)
    }
}

/// The commitment published when a session is created: the SHA-256, in
/// hex, of the text `hoard-seed-v1:<seed in decimal>:<nonce in hex>`.
/// Anyone can recompute it from the seed and nonce revealed at the end
/// (`printf 'hoard-seed-v1:%s:%s' SEED NONCE | sha256sum`).
pub fn commitment(seed: u64, nonce: &[u8; 16]) -> String {
    hex(&Sha256::digest(format!(
        "hoard-seed-v1:{seed}:{}",
        hex(nonce)
    )))
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// An active session in memory.
struct Live {
    record: SessionRecord,
    /// Created on first use and dropped after a fault or on eviction.
    instance: Option<Instance>,
}

/// A session's place in memory. The map of live sessions holds one per
/// active session; a request holds its lock while it works on the session.
#[derive(Clone)]
struct Slot {
    /// Fair: waiters get the lock in arrival order. `None` while the
    /// session's record is being loaded, and if loading it failed.
    live: Arc<tokio::sync::Mutex<Option<Live>>>,
    /// For least-recently-used eviction.
    last_used: Arc<AtomicU64>,
}

impl Slot {
    fn new(live: Option<Live>, now: u64) -> Slot {
        Slot {
            live: Arc::new(tokio::sync::Mutex::new(live)),
            last_used: Arc::new(AtomicU64::new(now)),
        }
    }

    /// Nobody but the map holds it: nobody is using it or waiting for it.
    fn is_idle(&self) -> bool {
        Arc::strong_count(&self.live) == 1
    }
}

/// A locked, loaded session.
struct Locked(OwnedMutexGuard<Option<Live>>);

impl std::ops::Deref for Locked {
    type Target = Live;
    fn deref(&self) -> &Live {
        self.0.as_ref().expect("a locked session is loaded")
    }
}

impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut Live {
        self.0.as_mut().expect("a locked session is loaded")
    }
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
    #[error("this account already has a seat in this session")]
    AlreadySeated,
    #[error("the document is {actual} bytes, over the limit of {max}")]
    DocumentTooLarge { max: u64, actual: u64 },
    #[error(
        "this host chooses every session's seed itself and keeps it secret until the game ends; a client may choose one only where sessions.client_seeds is on"
    )]
    SeedNotAllowed,
    #[error("an idempotency key is 1 to 128 printable ASCII characters")]
    BadIdempotencyKey,
    #[error("this idempotency key was used for another action in this session")]
    IdempotencyKeyReused,
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
    pub fairness: Fairness,
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
    /// This is the kept answer to an earlier request with the same
    /// idempotency key: nothing was done now.
    pub replayed: bool,
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
    pub fairness: Fairness,
}

/// What anyone may know about a session's randomness (commit and reveal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fairness {
    /// The host chose the seed; `false` when the creator chose it.
    pub fair_play: bool,
    /// See [`commitment`]: published at creation.
    pub commitment: String,
    /// The seed and nonce (hex), revealed once the game has ended.
    pub revealed: Option<(u64, String)>,
}

impl Fairness {
    fn of(record: &SessionRecord) -> Fairness {
        Fairness {
            fair_play: record.fair,
            commitment: record.commitment(),
            revealed: record
                .outcome
                .is_some()
                .then(|| (record.seed, hex(&record.nonce))),
        }
    }
}

/// Every session of this host.
pub struct Sessions {
    games: HashMap<String, Arc<Plugin>>,
    hot: Arc<dyn HotStore>,
    /// Active sessions; at most `config.live_max` of them, counting the
    /// ones being created, unless every one is in use.
    live: Mutex<HashMap<String, Slot>>,
    /// Sessions being created: each will take a place in `live` and holds a
    /// plugin instance already.
    creating: AtomicUsize,
    /// A logical clock for least-recently-used eviction.
    clock: AtomicU64,
    config: SessionsConfig,
    /// Plugin call times and faults go here.
    metrics: Arc<Metrics>,
}

/// A place reserved in `live` for a session being created.
struct Reserved<'a>(&'a AtomicUsize);

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sessions {
    /// Sessions of `games` (by name).
    pub fn new(
        games: HashMap<String, Arc<Plugin>>,
        hot: Arc<dyn HotStore>,
        config: SessionsConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Sessions {
            games,
            hot,
            live: Mutex::new(HashMap::new()),
            creating: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            config,
            metrics,
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

    /// How many sessions are in memory now.
    pub fn live_count(&self) -> usize {
        self.live.lock().expect("sessions map poisoned").len()
    }

    /// Starts a session of `game` from a JSON `config`. The host chooses the
    /// seed; `seed` (a client's choice) is refused unless
    /// `sessions.client_seeds` allows it, and then the session is not fair
    /// play.
    pub async fn create(&self, game: &str, config: &str, seed: Option<u64>) -> Result<Created> {
        let plugin = self
            .games
            .get(game)
            .ok_or_else(|| SessionError::UnknownGame(game.to_owned()))?;
        self.check_document(config)?;
        if seed.is_some() && !self.config.client_seeds {
            return Err(SessionError::SeedNotAllowed);
        }
        let id = format!("{:032x}", rand::random::<u128>());
        // Room first, then the instance: taking an instance before making
        // room could run the pool dry while idle sessions still hold theirs.
        let _reserved = self.reserve();
        let mut instance = plugin.instantiate().await.map_err(SessionError::Fault)?;
        let record_seed = seed.unwrap_or_else(rand::random);
        let state = self
            .timed(game, "create", instance.create(&id, record_seed, config))
            .await?;
        self.check_state(&state)?;
        let mut record = SessionRecord {
            game: game.to_owned(),
            seed: record_seed,
            nonce: rand::random(),
            fair: seed.is_none(),
            players: Vec::new(),
            state,
            outcome: None,
            actions: 0,
            expires_at_ms: 0,
            replies: Vec::new(),
        };
        self.store(&id, &mut record).await?;
        let fairness = Fairness::of(&record);
        let live = Live {
            record,
            instance: Some(instance),
        };
        let slot = Slot::new(Some(live), self.tick());
        self.live
            .lock()
            .expect("sessions map poisoned")
            .insert(id.clone(), slot);
        Ok(Created {
            session: id,
            fairness,
        })
    }

    /// Seats a player named `name`, playing as the account with id
    /// `account` or as a guest, and hands back their token. An account
    /// takes one seat in a session.
    pub async fn join(&self, session: &str, name: &str, account: Option<&str>) -> Result<Joined> {
        if !crate::accounts::valid_name(name) {
            return Err(SessionError::InvalidName);
        }
        let mut live = self.lock(session).await?;
        if account.is_some()
            && live
                .record
                .players
                .iter()
                .any(|p| p.account.as_deref() == account)
        {
            return Err(SessionError::AlreadySeated);
        }
        if live.record.players.iter().any(|p| p.name == name) {
            return Err(SessionError::NameTaken(name.to_owned()));
        }
        let plugin = self.plugin(&live.record.game)?;
        let state = {
            let Live {
                record,
                instance: kept,
            } = &mut *live;
            let seat = (record.players.len() as u64).to_be_bytes();
            let change = OpId::derived(&[b"join", session.as_bytes(), &seat]);
            let call = instance_of(kept, &plugin)
                .await?
                .join(&record.state, name, account, change);
            let joined = self.timed(&record.game, "join", call).await;
            faulting(joined, kept)?
        };
        self.check_state(&state)?;
        let token = hex(&rand::random::<[u8; 32]>());
        let mut next = live.record.clone();
        next.state = state;
        next.players.push(PlayerRecord {
            name: name.to_owned(),
            token_hash: token_hash(&token),
            account: account.map(str::to_owned),
        });
        self.store(session, &mut next).await?;
        live.record = next;
        Ok(Joined {
            player: name.to_owned(),
            token,
        })
    }

    /// Applies the action of the player holding `token`. With an
    /// `idempotency_key`, a retry of the same action with the same key gets
    /// the first answer again instead of acting twice.
    ///
    /// The action's storage writes take op ids derived from the session and
    /// the action's number, so an action retried after a failure (its
    /// session record not stored, the number unchanged) writes under the
    /// same ids, and no backend applies its writes twice.
    pub async fn act(
        &self,
        session: &str,
        token: &str,
        action: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Acted> {
        self.check_document(action)?;
        if let Some(key) = idempotency_key {
            let valid = (1..=128).contains(&key.len())
                && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
            if !valid {
                return Err(SessionError::BadIdempotencyKey);
            }
        }
        let action_hash: [u8; 32] = Sha256::digest(action.as_bytes()).into();
        let mut live = self.lock(session).await?;
        let player = live
            .record
            .player_by_token(token)
            .ok_or(SessionError::BadToken)?
            .to_owned();
        if let Some(key) = idempotency_key
            && let Some(kept) = live
                .record
                .replies
                .iter()
                .find(|kept| kept.player == player && kept.key == key)
        {
            if kept.action_hash != action_hash {
                return Err(SessionError::IdempotencyKeyReused);
            }
            return Ok(Acted {
                view: kept.view.clone(),
                outcome: kept.outcome.clone(),
                replayed: true,
            });
        }
        if live.record.outcome.is_some() {
            return Err(SessionError::Refused(Refusal::Finished));
        }
        let plugin = self.plugin(&live.record.game)?;
        let number = live.record.actions + 1;
        let change = OpId::derived(&[b"act", session.as_bytes(), &number.to_be_bytes()]);
        let turn = {
            let Live {
                record,
                instance: kept,
            } = &mut *live;
            let call =
                instance_of(kept, &plugin)
                    .await?
                    .act(&record.state, &player, action, change);
            let acted = self.timed(&record.game, "act", call).await;
            faulting(acted, kept)?
        };
        self.check_state(&turn.state)?;
        let mut next = live.record.clone();
        next.state = turn.state;
        next.outcome = turn.outcome;
        next.actions = number;
        // The view is rendered before the record is stored, so a kept
        // answer can go into the same write. The action stands even if the
        // view fails (a retry would be refused).
        let view = {
            let Live {
                instance: kept,
                record,
            } = &mut *live;
            let call = instance_of(kept, &plugin)
                .await?
                .view(&next.state, Some(&player));
            let rendered = self.timed(&record.game, "view", call).await;
            match faulting(rendered, kept) {
                Ok(view) => Some(view),
                Err(error) => {
                    tracing::warn!(%error, session, "the view after an action failed");
                    None
                }
            }
        };
        if let Some(key) = idempotency_key {
            if next.replies.len() >= self.config.idempotency_keys_max {
                next.replies.remove(0);
            }
            next.replies.push(KeptReply {
                player: player.clone(),
                key: key.to_owned(),
                action_hash,
                view: view.clone(),
                outcome: next.outcome.clone(),
            });
        }
        self.store(session, &mut next).await?;
        live.record = next;
        Ok(Acted {
            view,
            outcome: live.record.outcome.clone(),
            replayed: false,
        })
    }

    /// The view of the player holding `token`.
    pub async fn view(&self, session: &str, token: &str) -> Result<String> {
        let mut live = self.lock(session).await?;
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
        let mut live = self.lock(session).await?;
        let plugin = self.plugin(&live.record.game)?;
        let view = self.render(&mut live, &plugin, None).await?;
        let record = &live.record;
        Ok(Summary {
            game: record.game.clone(),
            players: record.players.iter().map(|p| p.name.clone()).collect(),
            actions: record.actions,
            outcome: record.outcome.clone(),
            view,
            fairness: Fairness::of(record),
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
        let call = instance_of(kept, plugin).await?.view(&record.state, player);
        let view = self.timed(&record.game, "view", call).await;
        faulting(view, kept)
    }

    /// A call into `game`'s plugin, timed and its faults counted.
    async fn timed<T>(
        &self,
        game: &str,
        call: &'static str,
        future: impl Future<Output = std::result::Result<T, CallError>>,
    ) -> std::result::Result<T, CallError> {
        self.metrics.time_plugin_call(game, call, future).await
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

    /// Stores `record` durably with its time to live: `unjoined_ttl_ms`
    /// until someone joins, `ttl_ms` from then on, counted from now.
    async fn store(&self, session: &str, record: &mut SessionRecord) -> Result<()> {
        // Tests fail the store after a plugin's writes went through.
        fail::fail_point!("session-store", |_| Err(SessionError::Storage(
            storage::Error::Unavailable("failpoint session-store".into())
        )));
        let ttl_ms = if record.players.is_empty() {
            self.config.unjoined_ttl_ms
        } else {
            self.config.ttl_ms
        };
        record.expires_at_ms = now_ms().saturating_add(ttl_ms);
        let value = record.encode()?;
        let write = HotWrite::Set {
            key: record_key(session),
            value,
            ttl_ms: Some(ttl_ms),
        };
        self.hot.apply(&Op::new(Namespace::host(), write)).await?;
        Ok(())
    }

    /// Locks the session, loading it from storage if it is not in memory.
    ///
    /// **Invariant:** at most one slot per session exists, and a session is
    /// loaded only while it has none. The loader puts a locked, empty slot
    /// in the map before it reads storage, so everyone else who wants the
    /// session waits for that one load. A slot leaves the map only when
    /// nobody holds it, which is after its last change was stored: so a
    /// load never reads a record older than one a slot in memory has
    /// acknowledged.
    async fn lock(&self, session: &str) -> Result<Locked> {
        let well_formed = session.len() == 32 && session.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(SessionError::UnknownSession);
        }
        loop {
            let (slot, loading) = {
                let mut live = self.live.lock().expect("sessions map poisoned");
                match live.get(session) {
                    Some(slot) => {
                        slot.last_used.store(self.tick(), Ordering::Relaxed);
                        (slot.clone(), None)
                    }
                    None => {
                        let slot = Slot::new(None, self.tick());
                        let guard = slot
                            .live
                            .clone()
                            .try_lock_owned()
                            .expect("a new slot is unlocked");
                        live.insert(session.to_owned(), slot.clone());
                        let creating = self.creating.load(Ordering::SeqCst);
                        make_room(&mut live, self.config.live_max, creating);
                        (slot, Some(guard))
                    }
                }
            };
            let mut guard = match loading {
                Some(mut guard) => match self.load(session).await {
                    Ok(record) => {
                        *guard = Some(Live {
                            record,
                            instance: None,
                        });
                        guard
                    }
                    Err(error) => {
                        self.forget(session, &slot);
                        return Err(error);
                    }
                },
                None => slot.live.clone().lock_owned().await,
            };
            let Some(live) = guard.as_mut() else {
                // Its loader failed, or was cancelled (its client went
                // away) before it could fill the slot: drop the empty slot
                // if it is still there, and start again from the map.
                drop(guard);
                self.forget(session, &slot);
                continue;
            };
            if live.record.expires_at_ms <= now_ms() {
                // Gone from storage already; its tokens die with it.
                drop(guard);
                self.forget(session, &slot);
                return Err(SessionError::UnknownSession);
            }
            return Ok(Locked(guard));
        }
    }

    /// Reads a session's record from storage.
    async fn load(&self, session: &str) -> Result<SessionRecord> {
        let bytes = self
            .hot
            .get(&Namespace::host(), &record_key(session))
            .await?
            .ok_or(SessionError::UnknownSession)?;
        // Tests widen the window between reading a record and using it.
        fail::fail_point!("session-loaded");
        SessionRecord::decode(&bytes).map_err(|error| {
            // Not a storage outage: this one record cannot be read (written
            // by an older hoard, or damaged). It stays where it is.
            tracing::warn!(session, %error, "a stored session cannot be read; treating it as unknown");
            SessionError::UnknownSession
        })
    }

    /// Removes `slot` from the map, if it is still the session's slot.
    fn forget(&self, session: &str, slot: &Slot) {
        let mut live = self.live.lock().expect("sessions map poisoned");
        if live
            .get(session)
            .is_some_and(|current| Arc::ptr_eq(&current.live, &slot.live))
        {
            live.remove(session);
        }
    }

    /// Reserves a place for a session being created, evicting idle ones
    /// first so that live sessions plus those being created stay within
    /// `live_max` (unless every live session is in use).
    fn reserve(&self) -> Reserved<'_> {
        let creating = self.creating.fetch_add(1, Ordering::SeqCst) + 1;
        let mut live = self.live.lock().expect("sessions map poisoned");
        make_room(&mut live, self.config.live_max, creating);
        Reserved(&self.creating)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }
}

/// Evicts the least recently used idle slots until `live` plus `reserved`
/// fits in `live_max`, or no idle slot is left. Evicting an idle slot loses
/// nothing: its record is durable, and nobody holds or waits for it (only
/// the map holds it, and nobody can take it while we hold the map's lock).
fn make_room(live: &mut HashMap<String, Slot>, live_max: usize, reserved: usize) {
    while live.len() + reserved > live_max {
        let oldest = live
            .iter()
            .filter(|(_, slot)| slot.is_idle())
            .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
            .map(|(id, _)| id.clone());
        match oldest {
            Some(id) => live.remove(&id),
            None => break,
        };
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commitment_is_sha256_of_the_documented_text() {
        let nonce = [0xab; 16];
        // printf 'hoard-seed-v1:42:abababababababababababababababab' | sha256sum
        let text = format!("hoard-seed-v1:42:{}", "ab".repeat(16));
        assert_eq!(commitment(42, &nonce), hex(&Sha256::digest(text)));
        assert_ne!(commitment(43, &nonce), commitment(42, &nonce));
        assert_ne!(commitment(42, &[0; 16]), commitment(42, &nonce));
    }

    fn record<P>(players: Vec<P>) -> SessionRecord<P> {
        SessionRecord {
            game: "hokm".into(),
            seed: 7,
            nonce: [1; 16],
            fair: true,
            players,
            state: b"state".to_vec(),
            outcome: None,
            actions: 3,
            expires_at_ms: 99,
            replies: Vec::new(),
        }
    }

    #[test]
    fn records_from_before_accounts_load_with_guests() {
        let old = record(vec![PlayerRecordV1 {
            name: "ali".into(),
            token_hash: [9; 32],
        }]);
        let bytes = postcard::to_stdvec(&old).unwrap();
        assert!(bytes[0] < 0x80, "an old record starts with a short length");
        let loaded = SessionRecord::decode(&bytes).unwrap();
        assert_eq!(loaded.players[0].name, "ali");
        assert_eq!(loaded.players[0].token_hash, [9; 32]);
        assert_eq!(loaded.players[0].account, None);
        assert_eq!((loaded.actions, &loaded.state[..]), (3, &b"state"[..]));

        let new = record(vec![PlayerRecord {
            name: "bo".into(),
            token_hash: [8; 32],
            account: Some("a1".into()),
        }]);
        let again = SessionRecord::decode(&new.encode().unwrap()).unwrap();
        assert_eq!(again.players[0].account.as_deref(), Some("a1"));
        assert!(SessionRecord::decode(b"\xff\x00garbage").is_err());
    }
}
