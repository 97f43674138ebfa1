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

use crate::catalog::Catalog;
use crate::cluster::{Claim, Cluster, Lease};
use crate::config::SessionsConfig;
use crate::lobby::{Lobby, Open};
use crate::metrics::Metrics;
use crate::realtime::{Audience, EventKind, Hub, Resume, Start, Subscription};
use crate::storage::{
    self, ColdStore, ColdWrite, HotStore, HotWrite, Namespace, Op, OpId, RecordWrite,
};
use crate::wasm::{Alarms, CallError, Fault, GameInfo, Instance, Plugin, Refusal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, OwnedMutexGuard};

/// What a session keeps durably. `P` is how a player is kept, `A` the
/// alarms and `V` the plugin version: records written before accounts kept
/// [`PlayerRecordV1`], and no alarms or version (`()`, which postcard
/// writes as nothing).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SessionRecord<P = PlayerRecord, A = Alarms, V = String> {
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
    /// Alarms the plugin set, pending.
    alarms: A,
    /// The plugin version ([`Plugin::version`]) that wrote `state`; empty
    /// in records from before versions were kept.
    version: V,
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
/// length, a byte under 128. Format 2 had accounts and no alarms, format 3
/// alarms and no plugin version.
const RECORD_FORMAT: [u8; 4] = [0xff, b'h', b's', 4];
const RECORD_FORMAT_3: [u8; 4] = [0xff, b'h', b's', 3];
const RECORD_FORMAT_2: [u8; 4] = [0xff, b'h', b's', 2];

impl SessionRecord {
    fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, RECORD_FORMAT.to_vec()).map_err(|e| {
            SessionError::Storage(storage::Error::Unavailable(format!(
                "encoding a session: {e}"
            )))
        })
    }

    fn decode(bytes: &[u8]) -> postcard::Result<SessionRecord> {
        if let Some(record) = bytes.strip_prefix(&RECORD_FORMAT) {
            return postcard::from_bytes(record);
        }
        if let Some(record) = bytes.strip_prefix(&RECORD_FORMAT_3) {
            let old: SessionRecord<PlayerRecord, Alarms, ()> = postcard::from_bytes(record)?;
            return Ok(old.convert(|p| p, |a| a, String::new()));
        }
        if let Some(record) = bytes.strip_prefix(&RECORD_FORMAT_2) {
            let old: SessionRecord<PlayerRecord, (), ()> = postcard::from_bytes(record)?;
            return Ok(old.convert(|p| p, |()| Alarms::default(), String::new()));
        }
        let old: SessionRecord<PlayerRecordV1, (), ()> = postcard::from_bytes(bytes)?;
        let guest = |p: PlayerRecordV1| PlayerRecord {
            name: p.name,
            token_hash: p.token_hash,
            account: None,
        };
        Ok(old.convert(guest, |()| Alarms::default(), String::new()))
    }
}

impl<P, A, V> SessionRecord<P, A, V> {
    /// The same record with its players and alarms mapped, and `version`.
    fn convert<Q, B, W>(
        self,
        player: impl FnMut(P) -> Q,
        alarms: impl FnOnce(A) -> B,
        version: W,
    ) -> SessionRecord<Q, B, W> {
        SessionRecord {
            game: self.game,
            seed: self.seed,
            nonce: self.nonce,
            fair: self.fair,
            players: self.players.into_iter().map(player).collect(),
            state: self.state,
            outcome: self.outcome,
            actions: self.actions,
            expires_at_ms: self.expires_at_ms,
            replies: self.replies,
            alarms: alarms(self.alarms),
            version,
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

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// A session's plugin instance, counted among the instances the host
/// keeps while it lives.
struct Kept {
    instance: Instance,
    counted: Arc<AtomicUsize>,
    /// The plugin version it is an instance of.
    version: String,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.counted.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::ops::Deref for Kept {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        &self.instance
    }
}

impl std::ops::DerefMut for Kept {
    fn deref_mut(&mut self) -> &mut Instance {
        &mut self.instance
    }
}

/// An active session in memory.
struct Live {
    record: SessionRecord,
    /// Created on first use; dropped after a fault, on eviction, or to
    /// keep at most `sessions.instances_kept_max`.
    instance: Option<Kept>,
    /// In cluster mode, this instance's lease on the session: changes
    /// are stored only under it. `None` when it must be claimed (again).
    lease: Option<Lease>,
    /// The current plugin version refused to upgrade this session's
    /// state: it stays on its version, in memory, until it ends.
    pinned: bool,
    /// The plugin version the session's calls go to, as `ready` found it
    /// last: held, so the catalog does not unload a version in use.
    plugin: Option<Arc<Plugin>>,
    /// When it last changed here, or was loaded (ms since the epoch): for
    /// operators.
    changed_ms: u64,
}

impl Live {
    /// Holds `plugin` as the session's version, and hands it back.
    fn hold(&mut self, plugin: Arc<Plugin>) -> Arc<Plugin> {
        self.plugin = Some(plugin.clone());
        plugin
    }
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
    #[error(
        "this session's state was written by {game} {written_by}, which this host no longer has \
         loaded, and the current version {current} refuses to upgrade it: {reason}"
    )]
    VersionGone {
        game: String,
        written_by: String,
        current: String,
        reason: String,
    },
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
    /// In cluster mode: another instance owns the session (its id).
    #[error("instance {0} owns this session")]
    Elsewhere(String),
    /// In cluster mode: the session moved to another instance during the
    /// change, which was not stored.
    #[error("the session moved to another instance; nothing was changed")]
    Moved,
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
    /// The number of the session's last event once the action's are
    /// published; `None` when no socket watches the session.
    pub seq: Option<u64>,
}

/// A session in memory, as an operator sees it.
#[derive(Debug, Serialize)]
pub struct LiveSession {
    pub session: String,
    pub game: String,
    pub players: Vec<String>,
    pub actions: u64,
    pub finished: bool,
    /// The plugin version that wrote its state.
    pub version: String,
    /// Since it last changed on this instance, or was loaded here.
    pub idle_ms: u64,
    /// Until its record expires, unless something happens.
    pub expires_in_ms: u64,
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
    /// The games, each at the versions of its plugin that are loaded.
    catalog: Arc<Catalog>,
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
    /// The alarm index (`ALARM_INDEX` records) lives here.
    cold: Arc<dyn ColdStore>,
    /// When to look at which session's alarms next.
    timer: Mutex<Timer>,
    /// Wakes the scheduler when an earlier alarm is set.
    wake: Arc<Notify>,
    /// Where changes are published for the sessions' sockets.
    hub: Arc<Hub>,
    /// Most messages a plugin may publish to its session in one call.
    messages_max: usize,
    /// In cluster mode: session ownership across instances.
    cluster: Option<Arc<Cluster>>,
    /// How many sessions keep a plugin instance now.
    instances_kept: Arc<AtomicUsize>,
    /// The listed sessions created here that still have free seats.
    lobby: Lobby,
}

/// The collection, under the host's namespace, of sessions with pending
/// alarms: key the session, body `{"due_ms"}` no later than its first.
const ALARM_INDEX: &str = "alarm-index";

/// When to wake for which session: one wake per session, the earliest
/// asked for (a later one is dropped: the earlier wake fires what is due
/// and asks again for the next).
#[derive(Default)]
struct Timer {
    heap: BinaryHeap<Reverse<(u64, String)>>,
    wakes: HashMap<String, u64>,
}

impl Timer {
    fn schedule(&mut self, session: &str, due_ms: u64) -> bool {
        if self.wakes.get(session).is_some_and(|&wake| wake <= due_ms) {
            return false;
        }
        self.wakes.insert(session.to_owned(), due_ms);
        self.heap.push(Reverse((due_ms, session.to_owned())));
        true
    }

    fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// The sessions whose wake is due by `now_ms`, each once.
    fn due(&mut self, now_ms: u64) -> Vec<String> {
        let mut due = Vec::new();
        while self.next().is_some_and(|wake| wake <= now_ms) {
            let Reverse((wake, session)) = self.heap.pop().expect("peeked");
            // An entry its session's earlier wake replaced is stale.
            if self.wakes.get(&session) == Some(&wake) {
                self.wakes.remove(&session);
                due.push(session);
            }
        }
        due
    }
}

/// A place reserved in `live` for a session being created.
struct Reserved<'a>(&'a AtomicUsize);

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sessions {
    /// Sessions of `games` (by name), their records in `hot`, the alarm
    /// index in `cold`, their events published to `hub`, owned across
    /// instances through `cluster` in cluster mode.
    /// [`Sessions::start_alarms`] starts firing alarms.
    pub fn new(
        catalog: Arc<Catalog>,
        hot: Arc<dyn HotStore>,
        cold: Arc<dyn ColdStore>,
        config: SessionsConfig,
        metrics: Arc<Metrics>,
        hub: Arc<Hub>,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        Sessions {
            instances_kept: Arc::new(AtomicUsize::new(0)),
            lobby: Lobby::default(),
            messages_max: hub.messages_max(),
            hub,
            cluster,
            cold,
            timer: Mutex::new(Timer::default()),
            wake: Arc::new(Notify::new()),
            catalog,
            hot,
            live: Mutex::new(HashMap::new()),
            creating: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            config,
            metrics,
        }
    }

    /// Every loaded game at its current version, sorted by name.
    pub fn games(&self) -> Vec<(String, GameInfo)> {
        self.catalog
            .games()
            .into_iter()
            .map(|(name, plugin)| (name, plugin.info().clone()))
            .collect()
    }

    /// The sessions in memory on each plugin version, by id. A session
    /// busy with a call right now is left out rather than waited for.
    pub fn sessions_by_version(&self) -> HashMap<String, Vec<String>> {
        let mut by_version: HashMap<String, Vec<String>> = HashMap::new();
        for (id, slot) in self.slots() {
            if let Ok(guard) = slot.live.try_lock()
                && let Some(live) = guard.as_ref()
            {
                by_version
                    .entry(live.record.version.clone())
                    .or_default()
                    .push(id);
            }
        }
        by_version
    }

    /// Every session's slot in memory now, taken out of the map's lock.
    fn slots(&self) -> Vec<(String, Slot)> {
        self.live
            .lock()
            .expect("sessions map poisoned")
            .iter()
            .map(|(id, slot)| (id.clone(), slot.clone()))
            .collect()
    }

    /// How many sessions keep a plugin instance now.
    pub fn instances_kept(&self) -> usize {
        self.instances_kept.load(Ordering::SeqCst)
    }

    /// Up to `limit` sessions of `game` created here as listed that someone
    /// sits at and that still have a free seat, newest first (see
    /// [`Lobby`]).
    pub fn open_sessions(&self, game: &str, limit: usize) -> Vec<Open> {
        self.lobby.list(game, limit, now_ms())
    }

    /// The sessions in memory now, for operators: a session busy with a
    /// call right now is left out rather than waited for.
    pub fn live_sessions(&self) -> Vec<LiveSession> {
        let now = now_ms();
        let mut sessions: Vec<LiveSession> = self
            .slots()
            .into_iter()
            .filter_map(|(id, slot)| {
                let guard = slot.live.try_lock().ok()?;
                let live = guard.as_ref()?;
                let record = &live.record;
                Some(LiveSession {
                    session: id,
                    game: record.game.clone(),
                    players: record.players.iter().map(|p| p.name.clone()).collect(),
                    actions: record.actions,
                    finished: record.outcome.is_some(),
                    version: record.version.clone(),
                    idle_ms: now.saturating_sub(live.changed_ms),
                    expires_in_ms: record.expires_at_ms.saturating_sub(now),
                })
            })
            .collect();
        sessions.sort_by_key(|s| s.idle_ms);
        sessions
    }

    /// Ends `session` for an operator: its outcome becomes
    /// `{"ended_by": "operator"}` (unless it had ended already, which
    /// changes nothing), its seed is revealed, its sockets see it
    /// finished, and further actions get `game_finished`. `false` if it
    /// had ended already.
    pub async fn end(&self, session: &str) -> Result<bool> {
        let mut live = self.lock(session).await?;
        if live.record.outcome.is_some() {
            return Ok(false);
        }
        let plugin = self.ready(session, &mut live).await?;
        let before = live.record.alarms.earliest();
        let mut next = live.record.clone();
        next.outcome = Some(r#"{"ended_by":"operator"}"#.to_owned());
        self.persist(session, before, &mut next, &mut live.lease)
            .await?;
        live.record = next;
        self.announce(session, &mut live, &plugin, Vec::new(), true, None)
            .await;
        Ok(true)
    }

    /// How many sessions are in memory now.
    pub fn live_count(&self) -> usize {
        self.live.lock().expect("sessions map poisoned").len()
    }

    /// Starts a session of `game` from a JSON `config`, in the lobby if
    /// `listed`. The host chooses the seed; `seed` (a client's choice) is refused unless
    /// `sessions.client_seeds` allows it, and then the session is not fair
    /// play.
    pub async fn create(
        &self,
        game: &str,
        config: &str,
        seed: Option<u64>,
        listed: bool,
    ) -> Result<Created> {
        let plugin = self
            .catalog
            .current(game)
            .ok_or_else(|| SessionError::UnknownGame(game.to_owned()))?;
        self.check_document(config)?;
        if seed.is_some() && !self.config.client_seeds {
            return Err(SessionError::SeedNotAllowed);
        }
        let id = format!("{:032x}", rand::random::<u128>());
        // Room first, then the instance: taking an instance before making
        // room could run the pool dry while idle sessions still hold theirs.
        let _reserved = self.reserve();
        let mut instance = self.new_instance(&id, &plugin).await?;
        let record_seed = seed.unwrap_or_else(rand::random);
        instance.lend_alarms(Alarms::default());
        let state = self
            .timed(game, "create", instance.create(&id, record_seed, config))
            .await?;
        let alarms = instance.take_alarms().unwrap_or_default();
        self.check_state(&state)?;
        let mut lease = match &self.cluster {
            Some(cluster) => match cluster.claim(&id, true).await? {
                Claim::Ours(lease) => Some(lease),
                Claim::Held(owner) => return Err(SessionError::Elsewhere(owner)),
                Claim::Missing => unreachable!("a new session is never missing"),
            },
            None => None,
        };
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
            alarms,
            version: plugin.version().to_owned(),
        };
        // As `persist`, but the first wake only once the slot is in the map:
        // an alarm due at once must find this session there.
        let first_alarm = record.alarms.earliest();
        if let Some(due) = first_alarm {
            self.index_alarm(&id, Some(due)).await?;
        }
        self.store(&id, &mut record, &mut lease).await?;
        let fairness = Fairness::of(&record);
        if listed {
            self.lobby.opened(Open {
                session: id.clone(),
                game: game.to_owned(),
                players: Vec::new(),
                seats: plugin.info().max_players,
                created_ms: now_ms(),
                expires_at_ms: record.expires_at_ms,
            });
        }
        let live = Live {
            record,
            instance: Some(instance),
            lease,
            pinned: false,
            plugin: Some(plugin.clone()),
            changed_ms: now_ms(),
        };
        let slot = Slot::new(Some(live), self.tick());
        self.live
            .lock()
            .expect("sessions map poisoned")
            .insert(id.clone(), slot);
        if let Some(due) = first_alarm {
            self.schedule(&id, due);
        }
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
        if live.record.outcome.is_some() {
            self.lobby.closed(session);
            return Err(SessionError::Refused(Refusal::Finished));
        }
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
        let plugin = self.ready(session, &mut live).await?;
        let state = {
            let Live {
                record,
                instance: kept,
                lease,
                ..
            } = &mut *live;
            let seat = (record.players.len() as u64).to_be_bytes();
            let change = self.change_id(&[b"join", session.as_bytes(), &seat], *lease);
            let instance = self.instance(session, kept, &plugin).await?;
            instance.lend_alarms(record.alarms.clone());
            let call = instance.join(&record.state, name, account, change);
            let joined = self.timed(&record.game, "join", call).await;
            let alarms = kept.as_deref_mut().and_then(Instance::take_alarms);
            let messages = kept.as_deref_mut().map(Instance::take_messages);
            let joined = faulting(joined, kept);
            if let Err(SessionError::Refused(Refusal::Full | Refusal::Finished)) = &joined {
                self.lobby.closed(session);
            }
            (joined?, alarms, messages)
        };
        let (state, alarms, messages) = state;
        self.check_state(&state)?;
        let token = hex(&rand::random::<[u8; 32]>());
        let before = live.record.alarms.earliest();
        let mut next = live.record.clone();
        next.state = state;
        next.alarms = alarms.expect("a successful call hands its alarms back");
        next.players.push(PlayerRecord {
            name: name.to_owned(),
            token_hash: token_hash(&token),
            account: account.map(str::to_owned),
        });
        self.persist(session, before, &mut next, &mut live.lease)
            .await?;
        live.record = next;
        let messages = messages.unwrap_or_default();
        self.announce(session, &mut live, &plugin, messages, true, None)
            .await;
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
                seq: self.hub.feed(session).map(|feed| feed.seq()),
            });
        }
        if live.record.outcome.is_some() {
            return Err(SessionError::Refused(Refusal::Finished));
        }
        let plugin = self.ready(session, &mut live).await?;
        let number = live.record.actions + 1;
        let change = self.change_id(
            &[b"act", session.as_bytes(), &number.to_be_bytes()],
            live.lease,
        );
        let turn = {
            let Live {
                record,
                instance: kept,
                ..
            } = &mut *live;
            let instance = self.instance(session, kept, &plugin).await?;
            instance.lend_alarms(record.alarms.clone());
            let call = instance.act(&record.state, &player, action, change);
            let acted = self.timed(&record.game, "act", call).await;
            let alarms = kept.as_deref_mut().and_then(Instance::take_alarms);
            let messages = kept.as_deref_mut().map(Instance::take_messages);
            let wrote = kept.as_ref().is_some_and(|i| i.writes_made() > 0);
            (faulting(acted, kept)?, alarms, messages, wrote)
        };
        let (turn, alarms, messages, wrote) = turn;
        self.check_state(&turn.state)?;
        let before = live.record.alarms.earliest();
        let mut next = live.record.clone();
        next.state = turn.state;
        next.outcome = turn.outcome;
        next.actions = number;
        next.alarms = alarms.expect("a successful call hands its alarms back");
        // The view is rendered before the record is stored, so a kept
        // answer can go into the same write. The action stands even if the
        // view fails (a retry would be refused).
        let view = {
            let Live {
                instance: kept,
                record,
                ..
            } = &mut *live;
            let call = self
                .instance(session, kept, &plugin)
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
        let changed = next.state != live.record.state || next.outcome != live.record.outcome;
        let messages = messages.unwrap_or_default();
        // A session kept alive only by such actions is stored now and then,
        // so it does not expire while people are in it.
        let fresh = live.record.expires_at_ms > now_ms() + self.config.ttl_ms / 2;
        if !changed
            && !wrote
            && fresh
            && next.alarms == live.record.alarms
            && idempotency_key.is_none()
        {
            // Nothing to store (a chat line to the room, an echo): the
            // next action takes this one's number again, which is safe as
            // this one wrote nothing under it.
            let seq = self
                .announce(session, &mut live, &plugin, messages, false, None)
                .await;
            return Ok(Acted {
                view,
                outcome: live.record.outcome.clone(),
                replayed: false,
                seq,
            });
        }
        self.persist(session, before, &mut next, &mut live.lease)
            .await?;
        live.record = next;
        let known = Some((player.as_str(), view.as_deref()));
        let seq = self
            .announce(session, &mut live, &plugin, messages, changed, known)
            .await;
        Ok(Acted {
            view,
            outcome: live.record.outcome.clone(),
            replayed: false,
            seq,
        })
    }

    /// Subscribes to the session's events as the player holding `token`,
    /// or as a spectator, with a queue of `queue_max` events. With a
    /// `resume` the backlog still covers, it starts with the events missed
    /// since; otherwise with the full state now.
    pub async fn subscribe(
        &self,
        session: &str,
        token: Option<&str>,
        resume: Option<Resume>,
        queue_max: usize,
    ) -> Result<Subscription> {
        // Under the session's lock: no change is published meanwhile, so
        // the subscription starts exactly where its first event says.
        let mut live = self.lock(session).await?;
        let audience: Audience = match token {
            Some(token) => Some(
                live.record
                    .player_by_token(token)
                    .ok_or(SessionError::BadToken)?
                    .to_owned(),
            ),
            None => None,
        };
        if let Some(resume) = resume {
            let feed = self.hub.feed_or_new(session);
            let resumed = feed.subscribe(audience.clone(), Start::Resumed(resume), queue_max);
            if let Ok(subscription) = resumed {
                return Ok(subscription);
            }
        }
        let plugin = self.ready(session, &mut live).await?;
        let view = self
            .render(session, &mut live, &plugin, audience.as_deref())
            .await?;
        loop {
            // A feed the sweeper dropped while the view was rendered
            // refuses: the next is a new one.
            let start = Start::Full {
                view: Some(view.clone()),
                outcome: live.record.outcome.clone(),
            };
            let feed = self.hub.feed_or_new(session);
            if let Ok(subscription) = feed.subscribe(audience.clone(), start, queue_max) {
                return Ok(subscription);
            }
        }
    }

    /// Checks that `session` exists and, if given, that `token` is one of
    /// its players'.
    pub async fn check_token(&self, session: &str, token: Option<&str>) -> Result<()> {
        let live = self.lock(session).await?;
        match token {
            Some(token) if live.record.player_by_token(token).is_none() => {
                Err(SessionError::BadToken)
            }
            _ => Ok(()),
        }
    }

    /// Tells the session's sockets about a change just stored: the
    /// messages its call published, then, if the state changed, each
    /// audience's view of it (`known`: one player's view, rendered
    /// already). The last event's number; `None` when no socket watches
    /// the session.
    async fn announce(
        &self,
        session: &str,
        live: &mut Live,
        plugin: &Plugin,
        messages: Vec<String>,
        changed: bool,
        known: Option<(&str, Option<&str>)>,
    ) -> Option<u64> {
        if changed {
            live.changed_ms = now_ms();
            let record = &live.record;
            self.lobby.changed(
                session,
                record.players.iter().map(|p| p.name.as_str()),
                record.outcome.is_some(),
            );
        }
        let feed = self.hub.feed(session)?;
        let mut events: Vec<EventKind> = messages
            .into_iter()
            .map(|message| EventKind::Message(message.into()))
            .collect();
        if changed {
            let mut views = Vec::new();
            for audience in feed.audiences() {
                let view = match known {
                    Some((player, view)) if audience.as_deref() == Some(player) => {
                        view.map(Arc::from)
                    }
                    _ => match self
                        .render(session, live, plugin, audience.as_deref())
                        .await
                    {
                        Ok(view) => Some(Arc::from(view)),
                        Err(error) => {
                            tracing::warn!(%error, session, "a view for the session's sockets failed");
                            None
                        }
                    },
                };
                views.push((audience, view));
            }
            let outcome = live.record.outcome.as_deref().map(Arc::from);
            events.push(EventKind::State { views, outcome });
        }
        Some(feed.publish(events))
    }

    /// The view of the player holding `token`.
    pub async fn view(&self, session: &str, token: &str) -> Result<String> {
        let mut live = self.lock(session).await?;
        let player = live
            .record
            .player_by_token(token)
            .ok_or(SessionError::BadToken)?
            .to_owned();
        let plugin = self.ready(session, &mut live).await?;
        self.render(session, &mut live, &plugin, Some(&player))
            .await
    }

    /// The session as a spectator sees it.
    pub async fn summary(&self, session: &str) -> Result<Summary> {
        let mut live = self.lock(session).await?;
        let plugin = self.ready(session, &mut live).await?;
        let view = self.render(session, &mut live, &plugin, None).await?;
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
        session: &str,
        live: &mut Live,
        plugin: &Plugin,
        player: Option<&str>,
    ) -> Result<String> {
        let Live {
            record,
            instance: kept,
            ..
        } = live;
        let call = self
            .instance(session, kept, plugin)
            .await?
            .view(&record.state, player);
        let view = self.timed(&record.game, "view", call).await;
        faulting(view, kept)
    }

    /// The session's instance, created if it has none.
    async fn instance<'a>(
        &self,
        session: &str,
        kept: &'a mut Option<Kept>,
        plugin: &Plugin,
    ) -> Result<&'a mut Instance> {
        // An instance of another version (the session moved) goes.
        if kept.as_ref().is_some_and(|k| k.version != plugin.version()) {
            *kept = None;
        }
        if kept.is_none() {
            *kept = Some(self.new_instance(session, plugin).await?);
        }
        Ok(kept.as_deref_mut().expect("just set"))
    }

    /// A new instance of `plugin` for `session`, counted; first, if the
    /// host keeps `instances_kept_max` already, the least recently used
    /// idle session lets its instance go.
    async fn new_instance(&self, session: &str, plugin: &Plugin) -> Result<Kept> {
        self.shed_instances();
        let mut instance = plugin.instantiate().await.map_err(SessionError::Fault)?;
        instance.serve_session(session, self.messages_max);
        self.instances_kept.fetch_add(1, Ordering::SeqCst);
        Ok(Kept {
            instance,
            counted: self.instances_kept.clone(),
            version: plugin.version().to_owned(),
        })
    }

    /// Drops the instances of the least recently used idle sessions
    /// until there is room for one more (their records stay; an instance
    /// is made again at their next call). Sessions in use keep theirs.
    fn shed_instances(&self) {
        let max = self.config.instances_kept_max;
        if self.instances_kept.load(Ordering::SeqCst) < max {
            return;
        }
        let live = self.live.lock().expect("sessions map poisoned");
        let mut idle: Vec<&Slot> = live.values().filter(|slot| slot.is_idle()).collect();
        idle.sort_by_key(|slot| slot.last_used.load(Ordering::Relaxed));
        for slot in idle {
            if self.instances_kept.load(Ordering::SeqCst) < max {
                break;
            }
            // Idle: nobody holds or waits for it, so this cannot fail.
            if let Ok(mut guard) = slot.live.try_lock()
                && let Some(live) = guard.as_mut()
            {
                live.instance = None;
            }
        }
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

    /// The plugin version a session's next call goes to.
    ///
    /// A session whose state an earlier version wrote moves to the current
    /// version when that version exports `upgrade` and upgrades the state:
    /// the upgraded state and the version are kept in memory (and stored
    /// with the session's next change), and its instance is replaced. If
    /// the current version has no `upgrade`, or refuses, the session stays
    /// on the version that wrote its state while that is loaded (after a
    /// refusal, until it ends). When that version is gone (a restart
    /// loads only the configured file), a refusal answers
    /// `VersionGone` on every call, and a current version without
    /// `upgrade` gets the state as it is. A fault in `upgrade` fails the
    /// call and is tried again at the next. The version resolved is held
    /// in `Live::plugin`, which keeps the catalog from unloading it.
    async fn ready(&self, session: &str, live: &mut Live) -> Result<Arc<Plugin>> {
        // A session of a game that is no longer configured cannot be served.
        let current = self
            .catalog
            .current(&live.record.game)
            .ok_or_else(|| SessionError::UnknownGame(live.record.game.clone()))?;
        if live.record.version == current.version() {
            return Ok(live.hold(current));
        }
        let game = live.record.game.clone();
        if live.record.version.is_empty() {
            // Written before versions were kept: by the version this host
            // started with.
            live.record.version = self.catalog.started(&game).unwrap_or_default();
            if live.record.version == current.version() {
                return Ok(live.hold(current));
            }
        }
        let written = self.catalog.loaded(&game, &live.record.version);
        match (&written, live.pinned || !current.upgrades()) {
            (Some(written), true) => return Ok(live.hold(written.clone())),
            (None, true) if !current.upgrades() => {
                live.record.version = current.version().to_owned();
                return Ok(live.hold(current));
            }
            _ => {}
        }
        // The game's own version ("1.0.0" of "1.0.0+3fa9c2e1b04d"), as
        // `upgrade` takes it; the hash never holds a '+'.
        let written_by = match &written {
            Some(plugin) => plugin.game_version().to_owned(),
            None => live
                .record
                .version
                .rsplit_once('+')
                .map_or(live.record.version.as_str(), |(game_version, _)| {
                    game_version
                })
                .to_owned(),
        };
        // The old instance goes first: a session holds one at a time.
        live.instance = None;
        let mut instance = self.new_instance(session, &current).await?;
        let state = &live.record.state;
        let call = async {
            let upgraded = instance.upgrade(state, &written_by).await;
            upgraded.unwrap_or_else(|| Ok(state.clone()))
        };
        let upgraded = self.timed(&game, "upgrade", call).await;
        match upgraded {
            Ok(state) => {
                self.check_state(&state)?;
                tracing::info!(
                    session, from = %live.record.version, to = %current.version(),
                    "session moved to the current plugin version"
                );
                live.record.state = state;
                live.record.version = current.version().to_owned();
                live.instance = Some(instance);
                Ok(live.hold(current))
            }
            Err(CallError::Refused(refusal)) => {
                tracing::info!(
                    session, from = %live.record.version, to = %current.version(), %refusal,
                    "the current plugin version refused to upgrade the session"
                );
                match written {
                    Some(written) => {
                        live.pinned = true;
                        Ok(live.hold(written))
                    }
                    None => Err(SessionError::VersionGone {
                        game,
                        written_by: live.record.version.clone(),
                        current: current.version().to_owned(),
                        reason: refusal.to_string(),
                    }),
                }
            }
            Err(CallError::Fault(fault)) => Err(SessionError::Fault(fault)),
        }
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
    /// Stores a session's next record whose alarms were due first at
    /// `before`, keeping the alarm index true: every session with pending
    /// alarms has an entry due no later than its first alarm (an entry
    /// due earlier only wakes the scheduler for nothing). So an earlier
    /// alarm is indexed before the record is stored, and an entry is
    /// dropped only after the record without alarms is.
    async fn persist(
        &self,
        session: &str,
        before: Option<u64>,
        record: &mut SessionRecord,
        lease: &mut Option<Lease>,
    ) -> Result<()> {
        if record.outcome.is_some() {
            // A finished game drops its alarms.
            record.alarms.pending.clear();
        }
        let earliest = record.alarms.earliest();
        if let Some(due) = earliest
            && before.is_none_or(|before| due < before)
        {
            self.index_alarm(session, Some(due)).await?;
        }
        self.store(session, record, lease).await?;
        match earliest {
            None if before.is_some() => {
                if let Err(error) = self.index_alarm(session, None).await {
                    // Harmless: the entry wakes the scheduler once for
                    // nothing, and goes then.
                    tracing::warn!(%error, session, "an alarm index entry stays");
                }
            }
            Some(due) if Some(due) != before => self.schedule(session, due),
            _ => {}
        }
        Ok(())
    }

    /// Sets (`Some(due)`) or drops the alarm index entry of `session`.
    async fn index_alarm(&self, session: &str, due: Option<u64>) -> storage::Result<()> {
        let write = match due {
            Some(due_ms) => RecordWrite::Put {
                collection: ALARM_INDEX.into(),
                key: session.to_owned(),
                body: serde_json::json!({ "due_ms": due_ms }).to_string(),
                expected_version: None,
            },
            None => RecordWrite::Delete {
                collection: ALARM_INDEX.into(),
                key: session.to_owned(),
                expected_version: None,
            },
        };
        let op = Op::new(Namespace::host(), ColdWrite::Record(write));
        self.cold.apply(&op).await.map(drop)
    }

    /// Wakes the scheduler for `session` at `due_ms`.
    fn schedule(&self, session: &str, due_ms: u64) {
        let earlier = self
            .timer
            .lock()
            .expect("alarm timer poisoned")
            .schedule(session, due_ms);
        if earlier {
            self.wake.notify_one();
        }
    }

    /// Starts firing alarms: every alarm set from now on, and those of the
    /// index (sessions with alarms pending when the host last stopped),
    /// read meanwhile. Stops when the sessions are dropped.
    pub fn start_alarms(self: &Arc<Self>) {
        let sessions = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut cursor = None;
            loop {
                let Some(this) = sessions.upgrade() else {
                    return;
                };
                match this.read_alarm_index(cursor.as_deref()).await {
                    Ok(Some(next)) => cursor = Some(next),
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(%error, "reading the alarm index; trying again in 1 s");
                        drop(this);
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        let sessions = Arc::downgrade(self);
        let wake = self.wake.clone();
        tokio::spawn(async move {
            loop {
                let next = {
                    let Some(this) = sessions.upgrade() else {
                        return;
                    };
                    this.timer.lock().expect("alarm timer poisoned").next()
                };
                match next.map(|due| due.saturating_sub(now_ms())) {
                    Some(0) => {}
                    Some(ms) => {
                        tokio::select! {
                            () = tokio::time::sleep(std::time::Duration::from_millis(ms)) => {}
                            () = wake.notified() => continue,
                        }
                    }
                    None => {
                        wake.notified().await;
                        continue;
                    }
                }
                let Some(this) = sessions.upgrade() else {
                    return;
                };
                let due = this
                    .timer
                    .lock()
                    .expect("alarm timer poisoned")
                    .due(now_ms());
                for session in due {
                    let this = this.clone();
                    tokio::spawn(async move { this.fire(&session).await });
                }
            }
        });
    }

    /// Schedules one page of the alarm index from `cursor`; the cursor of
    /// the next page, if there is one.
    async fn read_alarm_index(&self, cursor: Option<&str>) -> storage::Result<Option<String>> {
        let page = self
            .cold
            .list(&Namespace::host(), ALARM_INDEX, "", cursor, 500)
            .await?;
        for record in &page.records {
            let due = serde_json::from_str::<serde_json::Value>(&record.body)
                .ok()
                .and_then(|body| body["due_ms"].as_u64())
                .unwrap_or(0);
            self.schedule(&record.key, due);
        }
        Ok(page.next_cursor)
    }

    /// Fires `session`'s due alarms, in order, each in turn with the
    /// session's other calls, and schedules its next. Only alarms set
    /// before it began: one that an alarm sets for now fires on the next
    /// wake, after the calls waiting for the session.
    async fn fire(&self, session: &str) {
        let retry = |why: &dyn std::fmt::Display| {
            tracing::warn!(session, %why, "alarms wait; trying again in 1 s");
            self.schedule(session, now_ms() + 1000);
        };
        let mut live = match self.lock(session).await {
            Ok(live) => live,
            Err(SessionError::UnknownSession) => {
                // Expired or gone: its entry goes too.
                let _ = self.index_alarm(session, None).await;
                return;
            }
            // Its owner fires it; if the owner dies, its lease runs out
            // and this instance takes the session at the next look.
            Err(SessionError::Elsewhere(_)) => {
                let lease_ms = self.cluster.as_ref().map_or(1000, |c| c.lease_ms());
                return self.schedule(session, now_ms() + lease_ms);
            }
            Err(error) => return retry(&error),
        };
        let set_before = live.record.alarms.next_id;
        let mut fired = 0;
        loop {
            let before = live.record.alarms.earliest();
            let mut alarms = live.record.alarms.clone();
            let Some(alarm) = alarms.take_due(now_ms(), set_before) else {
                break;
            };
            // First the version the alarm runs on: a move to a new one
            // changes the record the next one starts from.
            let plugin = match self.ready(session, &mut live).await {
                Ok(plugin) => plugin,
                Err(SessionError::UnknownGame(game)) => {
                    // The game is not loaded: its alarms wait, in the index,
                    // for a host that loads it.
                    tracing::warn!(session, game, "alarms of a game not loaded here wait");
                    return;
                }
                Err(error) => return retry(&error),
            };
            let mut next = live.record.clone();
            next.alarms = alarms.clone();
            let mut messages = Vec::new();
            match self
                .run_alarm(&mut live, &plugin, session, &alarm, alarms)
                .await
            {
                Ok(Some((turn, alarms, published))) => {
                    next.state = turn.state;
                    next.outcome = turn.outcome;
                    next.alarms = alarms;
                    messages = published;
                }
                // Refused or faulted: the alarm is spent, the state stays.
                Ok(None) => {}
                Err(error) => return retry(&error),
            }
            if let Err(error) = self
                .persist(session, before, &mut next, &mut live.lease)
                .await
            {
                return retry(&error);
            }
            let changed = next.state != live.record.state || next.outcome != live.record.outcome;
            live.record = next;
            self.announce(session, &mut live, &plugin, messages, changed, None)
                .await;
            fired += 1;
        }
        match live.record.alarms.earliest() {
            Some(due) => self.schedule(session, due),
            // Woken for nothing: a stale index entry, which goes.
            None if fired == 0 => {
                let _ = self.index_alarm(session, None).await;
            }
            None => {}
        }
    }

    /// Calls the plugin's `on-alarm`: the next state and alarms and what
    /// it published to the session, or `None` if the plugin refused or
    /// faulted (the alarm is spent either way).
    async fn run_alarm(
        &self,
        live: &mut Locked,
        plugin: &Plugin,
        session: &str,
        alarm: &crate::wasm::Alarm,
        alarms: Alarms,
    ) -> Result<Option<(crate::wasm::Turn, Alarms, Vec<String>)>> {
        let Live {
            record,
            instance: kept,
            lease,
            ..
        } = &mut **live;
        let change = self.change_id(
            &[b"alarm", session.as_bytes(), &alarm.id.to_be_bytes()],
            *lease,
        );
        let instance = self.instance(session, kept, plugin).await?;
        instance.lend_alarms(alarms);
        let call = instance.on_alarm(&record.state, &alarm.payload, change);
        let fired = self.timed(&record.game, "on_alarm", call).await;
        let alarms = kept.as_deref_mut().and_then(Instance::take_alarms);
        let messages = kept.as_deref_mut().map(Instance::take_messages);
        match faulting(fired, kept) {
            Ok(turn) => match self.check_state(&turn.state) {
                Ok(()) => Ok(Some((
                    turn,
                    alarms.expect("handed back"),
                    messages.unwrap_or_default(),
                ))),
                Err(error) => {
                    tracing::warn!(session, alarm = alarm.id, %error, "an alarm's state was refused");
                    Ok(None)
                }
            },
            // Storage that did not answer is no reason to drop the alarm.
            Err(SessionError::Refused(Refusal::Storage(
                error @ storage::Error::Unavailable(_),
            ))) => Err(SessionError::Storage(error)),
            Err(SessionError::Refused(refusal)) => {
                tracing::info!(session, alarm = alarm.id, %refusal, "the plugin refused an alarm");
                Ok(None)
            }
            Err(SessionError::Fault(fault)) => {
                tracing::warn!(session, alarm = alarm.id, %fault, "an alarm faulted the plugin");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    async fn store(
        &self,
        session: &str,
        record: &mut SessionRecord,
        lease: &mut Option<Lease>,
    ) -> Result<()> {
        // Tests fail the store after a plugin's writes went through.
        fail::fail_point!("session-store", |_| Err(SessionError::Storage(
            storage::Error::Unavailable("failpoint session-store".into())
        )));
        let now = now_ms();
        let ttl_ms = if record.players.is_empty() {
            self.config.unjoined_ttl_ms
        } else {
            self.config.ttl_ms
        };
        // A session lives at least until a minute after its last alarm.
        let last_alarm = record.alarms.pending.iter().map(|a| a.due_ms).max();
        let ttl_ms = last_alarm.map_or(ttl_ms, |due| ttl_ms.max(due.saturating_sub(now) + 60_000));
        record.expires_at_ms = now.saturating_add(ttl_ms);
        let value = record.encode()?;
        if let Some(cluster) = &self.cluster {
            // Only under our lease, checked in the same step as the write.
            let fence = lease.map(|l| l.fence).ok_or(SessionError::Moved)?;
            *lease = cluster.store(session, fence, &value, ttl_ms).await?;
            return match lease {
                Some(_) => {
                    self.lobby.kept(session, record.expires_at_ms);
                    Ok(())
                }
                None => Err(SessionError::Moved),
            };
        }
        let write = HotWrite::Set {
            key: record_key(session),
            value,
            ttl_ms: Some(ttl_ms),
        };
        self.hot.apply(&Op::new(Namespace::host(), write)).await?;
        self.lobby.kept(session, record.expires_at_ms);
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
                        (slot, Some(guard))
                    }
                }
            };
            let mut guard = match loading {
                Some(mut guard) => match self.load_owned(session).await {
                    Ok((record, lease)) => {
                        *guard = Some(Live {
                            record,
                            instance: None,
                            lease,
                            pinned: false,
                            plugin: None,
                            changed_ms: now_ms(),
                        });
                        // Room is made for a session that is really here
                        // (not one that turned out unknown, or owned
                        // elsewhere in cluster mode).
                        let evicted = {
                            let mut live = self.live.lock().expect("sessions map poisoned");
                            let creating = self.creating.load(Ordering::SeqCst);
                            make_room(&mut live, self.config.live_max, creating)
                        };
                        self.release(evicted);
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
            if let Some(cluster) = &self.cluster
                && !live.lease.is_some_and(|lease| lease.is_valid())
            {
                match cluster.claim(session, false).await? {
                    Claim::Ours(lease) => {
                        if live.lease.map(|l| l.fence) != Some(lease.fence) {
                            // Another instance may have changed it since:
                            // what this one's sockets saw is not the story.
                            self.hub.close(session);
                            match self.load(session).await {
                                Ok(record) => {
                                    // Another instance's version may have
                                    // written it: look at it afresh.
                                    live.record = record;
                                    live.pinned = false;
                                    live.instance = None;
                                }
                                Err(error) => {
                                    *guard = None;
                                    drop(guard);
                                    self.forget(session, &slot);
                                    return Err(error);
                                }
                            }
                            self.schedule_alarms(session, &live.record);
                        }
                        live.lease = Some(lease);
                    }
                    Claim::Held(owner) => {
                        // Emptied, so whoever waits for it starts over; its
                        // sockets reconnect, to be relayed to the owner.
                        *guard = None;
                        drop(guard);
                        self.forget(session, &slot);
                        self.hub.close(session);
                        return Err(SessionError::Elsewhere(owner));
                    }
                    Claim::Missing => {
                        // Expired from storage meanwhile.
                        *guard = None;
                        drop(guard);
                        self.forget(session, &slot);
                        self.hub.close(session);
                        return Err(SessionError::UnknownSession);
                    }
                }
            }
            if live.record.expires_at_ms <= now_ms() {
                // Gone from storage already; its tokens die with it.
                drop(guard);
                self.forget(session, &slot);
                return Err(SessionError::UnknownSession);
            }
            return Ok(Locked(guard));
        }
    }

    /// Reads a session's record, first taking its lease in cluster mode
    /// (so nobody changes it after the read).
    async fn load_owned(&self, session: &str) -> Result<(SessionRecord, Option<Lease>)> {
        let lease = match &self.cluster {
            Some(cluster) => match cluster.claim(session, false).await? {
                Claim::Ours(lease) => Some(lease),
                Claim::Held(owner) => return Err(SessionError::Elsewhere(owner)),
                Claim::Missing => return Err(SessionError::UnknownSession),
            },
            None => None,
        };
        let record = match self.load(session).await {
            Ok(record) => record,
            Err(error) => {
                if let (Some(cluster), Some(lease)) = (&self.cluster, lease) {
                    cluster.release(session, lease.fence).await;
                }
                return Err(error);
            }
        };
        if lease.is_some() {
            // Alarms another instance set are this one's to fire now.
            self.schedule_alarms(session, &record);
        }
        Ok((record, lease))
    }

    fn schedule_alarms(&self, session: &str, record: &SessionRecord) {
        if let Some(due) = record.alarms.earliest() {
            self.schedule(session, due);
        }
    }

    /// The id of a change made of `parts`; in cluster mode with the
    /// lease's fence too, so a change made by an instance that lost the
    /// lease midway and the one the next owner makes under the same action
    /// number never share op ids.
    fn change_id(&self, parts: &[&[u8]], lease: Option<Lease>) -> OpId {
        match (self.cluster.is_some(), lease) {
            (true, Some(lease)) => {
                let fence = lease.fence.to_be_bytes();
                let mut all = parts.to_vec();
                all.push(&fence);
                OpId::derived(&all)
            }
            _ => OpId::derived(parts),
        }
    }

    /// In cluster mode: the instance that owns `session`, if it is not this
    /// one (this one takes the lease if nobody holds it).
    pub async fn owner_elsewhere(&self, session: &str) -> Result<Option<String>> {
        if self.cluster.is_none() {
            return Ok(None);
        }
        match self.lock(session).await {
            Ok(_) => Ok(None),
            Err(SessionError::Elsewhere(owner)) => Ok(Some(owner)),
            Err(error) => Err(error),
        }
    }

    /// In cluster mode: renews the leases of the sessions in memory every
    /// quarter lease, so an instance keeps the sessions it serves, and
    /// lets go of those it evicts.
    pub fn start_leases(self: &Arc<Self>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let sessions = Arc::downgrade(self);
        let every = std::time::Duration::from_millis(cluster.lease_ms() / 4);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(this) = sessions.upgrade() else {
                    return;
                };
                // Ids, not slots: a slot held here would not count as idle
                // for eviction while the sweep goes on.
                let ids: Vec<String> = {
                    let live = this.live.lock().expect("sessions map poisoned");
                    live.keys().cloned().collect()
                };
                for session in ids {
                    let slot = {
                        let live = this.live.lock().expect("sessions map poisoned");
                        live.get(&session).cloned()
                    };
                    let Some(slot) = slot else {
                        continue;
                    };
                    // A slot in use renews its lease when it stores.
                    let Ok(mut guard) = slot.live.clone().try_lock_owned() else {
                        continue;
                    };
                    let Some(live) = guard.as_mut() else {
                        continue;
                    };
                    let Some(held) = live.lease else {
                        continue;
                    };
                    match cluster.claim(&session, false).await {
                        Ok(Claim::Ours(lease)) if lease.fence == held.fence => {
                            live.lease = Some(lease);
                        }
                        // Lapsed and taken again: read again at its next
                        // use; its sockets reconnect meanwhile.
                        Ok(Claim::Ours(_)) => {
                            live.lease = None;
                            this.hub.close(&session);
                        }
                        // Owned elsewhere now (this instance was paused or
                        // cut off past its lease), or gone: emptied, so the
                        // next use starts over, and its sockets reconnect
                        // (to be relayed to the owner).
                        Ok(Claim::Held(_) | Claim::Missing) => {
                            *guard = None;
                            this.hub.close(&session);
                        }
                        Err(error) => {
                            tracing::debug!(%error, session, "a lease could not be renewed");
                        }
                    }
                }
            }
        });
    }

    /// Lets go of the leases of evicted sessions.
    fn release(&self, evicted: Vec<(String, Slot)>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        for (session, slot) in evicted {
            let fence = slot
                .live
                .try_lock()
                .ok()
                .and_then(|live| live.as_ref().and_then(|l| l.lease))
                .map(|lease| lease.fence);
            if let Some(fence) = fence {
                // Out of memory here, it may be owned elsewhere next.
                self.hub.close(&session);
                let cluster = cluster.clone();
                tokio::spawn(async move { cluster.release(&session, fence).await });
            }
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
        let evicted = make_room(&mut live, self.config.live_max, creating);
        drop(live);
        self.release(evicted);
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
fn make_room(
    live: &mut HashMap<String, Slot>,
    live_max: usize,
    reserved: usize,
) -> Vec<(String, Slot)> {
    let mut evicted = Vec::new();
    while live.len() + reserved > live_max {
        let oldest = live
            .iter()
            .filter(|(_, slot)| slot.is_idle())
            .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
            .map(|(id, _)| id.clone());
        match oldest.and_then(|id| live.remove_entry(&id)) {
            Some(slot) => evicted.push(slot),
            None => break,
        }
    }
    evicted
}

/// Drops the instance after a fault: its memory may be half-updated.
fn faulting<T>(
    result: std::result::Result<T, CallError>,
    instance: &mut Option<Kept>,
) -> Result<T> {
    if let Err(CallError::Fault(fault)) = &result {
        tracing::warn!(%fault, "plugin call failed; discarding its instance");
        *instance = None;
    }
    result.map_err(SessionError::from)
}

/// The key of a session's record in the host's namespace.
pub(crate) fn record_key(session: &str) -> String {
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

    fn record<P, A: Default, V: Default>(players: Vec<P>) -> SessionRecord<P, A, V> {
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
            alarms: A::default(),
            version: V::default(),
        }
    }

    #[test]
    fn a_session_has_one_wake_the_earliest() {
        let mut timer = Timer::default();
        assert!(timer.schedule("a", 50));
        assert!(!timer.schedule("a", 70), "a later wake adds nothing");
        assert!(timer.schedule("a", 30), "an earlier one replaces it");
        assert!(timer.schedule("b", 40));
        assert_eq!(timer.next(), Some(30));
        assert_eq!(timer.due(45), ["a", "b"]);
        assert_eq!(
            timer.due(100),
            Vec::<String>::new(),
            "a's old wake is stale"
        );
        assert!(timer.schedule("a", 80), "after its wake, a may ask again");
        assert_eq!(timer.due(100), ["a"]);
    }

    /// Records of every earlier format load: guests from before accounts,
    /// no alarms from before alarms, no version from before versions.
    #[test]
    fn records_from_before_accounts_load_with_guests() {
        let old: SessionRecord<_, (), ()> = record(vec![PlayerRecordV1 {
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

        let mut new: SessionRecord = record(vec![PlayerRecord {
            name: "bo".into(),
            token_hash: [8; 32],
            account: Some("a1".into()),
        }]);
        new.version = "1.0.0+0123456789ab".into();
        let again = SessionRecord::decode(&new.encode().unwrap()).unwrap();
        assert_eq!(again.players[0].account.as_deref(), Some("a1"));
        assert_eq!(again.version, "1.0.0+0123456789ab");
        let v3: SessionRecord<PlayerRecord, Alarms, ()> = record(vec![PlayerRecord {
            name: "di".into(),
            token_hash: [6; 32],
            account: None,
        }]);
        let mut bytes = RECORD_FORMAT_3.to_vec();
        bytes.extend(postcard::to_stdvec(&v3).unwrap());
        let loaded = SessionRecord::decode(&bytes).unwrap();
        assert_eq!(
            (loaded.players[0].name.as_str(), loaded.version.as_str()),
            ("di", "")
        );
        let v2: SessionRecord<PlayerRecord, (), ()> = record(vec![PlayerRecord {
            name: "cy".into(),
            token_hash: [7; 32],
            account: Some("a2".into()),
        }]);
        let mut bytes = RECORD_FORMAT_2.to_vec();
        bytes.extend(postcard::to_stdvec(&v2).unwrap());
        let loaded = SessionRecord::decode(&bytes).unwrap();
        assert_eq!(loaded.players[0].account.as_deref(), Some("a2"));
        assert_eq!(loaded.alarms, Alarms::default());
        assert!(SessionRecord::decode(b"\xff\x00garbage").is_err());
    }
}
