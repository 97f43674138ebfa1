//! # hokm-native: Hokm served without hoard
//!
//! The benchmark's baseline for the action path (issue 18): what a studio
//! would write instead of hoard. The same rules crate (`plugins/hokm`,
//! called natively), behind the same HTTP API and WebSocket events as
//! hoard's (the parts a Hokm client uses), with the same durability: every
//! change is in sled and flushed before it is answered, concurrent writers
//! sharing a flush (see `store`). A finished game's outcome goes to match
//! history and its winners' counts up, as the plugin does. No WASM, no storage abstraction, no
//! limits: each session's game is kept decoded in memory behind its own
//! lock, and written whole on every change.
//!
//! Routes: `POST /v1/games/hokm/sessions` (`{"seed", "config"}`),
//! `POST /v1/sessions/{id}/join` (`{"name"}`), `POST /v1/sessions/{id}/actions`
//! and `GET /v1/sessions/{id}/view` (bearer token), `GET
//! /v1/sessions/{id}/events` (a WebSocket: `hello`, `welcome`, `state`,
//! `act`, `reply`, `error`), `GET /healthz`. Errors are hoard's:
//! `{"error": {"code", "message"}}` with the same statuses and codes.
//!
//! A flush that fails stops the process (as PostgreSQL does on a failed
//! fsync): memory never runs ahead of the disk, and a restart serves what
//! was answered.

mod api;
mod socket;
mod store;

use api::Failure;
use hokm::game::{Game, Refusal};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use store::{Record, Store};
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message;

/// The server's state: the store, and the sessions read so far.
pub struct Native {
    store: Store,
    sessions: RwLock<HashMap<String, Arc<Mutex<Live>>>>,
}

/// A session in memory: its record as stored, and who watches its events.
struct Live {
    record: Record,
    /// Events sent so far.
    seq: u64,
    watchers: Vec<Watcher>,
}

/// A socket's queue of frames, and whose views it gets (`None`: a
/// spectator).
struct Watcher {
    seat: Option<usize>,
    frames: mpsc::Sender<Message>,
}

/// Frames a socket may have queued before it counts as too slow and is
/// dropped.
const SOCKET_QUEUE: usize = 64;

impl Native {
    /// Opens (or creates) the sled database at `data`.
    pub fn open(data: &Path) -> Result<Arc<Native>, String> {
        let store = Store::open(data).map_err(|e| format!("{}: {e}", data.display()))?;
        Ok(Arc::new(Native {
            store,
            sessions: RwLock::new(HashMap::new()),
        }))
    }

    /// Serves HTTP on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        api::serve(self, listener, shutdown).await
    }

    /// The session `id`, read from disk the first time.
    async fn session(&self, id: &str) -> Result<Arc<Mutex<Live>>, Failure> {
        if let Some(live) = self.sessions.read().expect("sessions").get(id) {
            return Ok(live.clone());
        }
        let record = self
            .store
            .load(id)
            .map_err(Failure::unavailable)?
            .ok_or_else(Failure::unknown_session)?;
        let live = Arc::new(Mutex::new(Live {
            record,
            seq: 0,
            watchers: Vec::new(),
        }));
        // Another request may have read it meanwhile: keep the first.
        let mut sessions = self.sessions.write().expect("sessions");
        Ok(sessions.entry(id.to_owned()).or_insert(live).clone())
    }

    async fn create(&self, seed: Option<u64>, config: &str) -> Result<String, Failure> {
        let game = Game::new(seed.unwrap_or_else(rand::random), config)?;
        let id = random_id();
        let record = Record {
            game,
            tokens: Vec::new(),
        };
        self.save(&id, &record).await;
        let live = Live {
            record,
            seq: 0,
            watchers: Vec::new(),
        };
        self.sessions
            .write()
            .expect("sessions")
            .insert(id.clone(), Arc::new(Mutex::new(live)));
        Ok(id)
    }

    /// Seats `name`; their token.
    async fn join(&self, id: &str, name: &str) -> Result<String, Failure> {
        let live = self.session(id).await?;
        let mut live = live.lock().await;
        if live.record.game.seat_of(name).is_some() {
            return Err(Failure::name_taken(name));
        }
        live.record.game.join(name)?;
        let token = random_id();
        live.record.tokens.push(token.clone());
        self.save(id, &live.record).await;
        live.publish(None);
        Ok(token)
    }

    /// `token`'s player acts: their view after it, and the outcome if the
    /// game ended.
    async fn act(
        &self,
        id: &str,
        token: &str,
        action: &str,
    ) -> Result<(Box<RawValue>, Option<Value>), Failure> {
        let live = self.session(id).await?;
        let mut live = live.lock().await;
        let seat = live.seat(token)?;
        let player = live.record.game.players[seat].clone();
        live.record.game.act(&player, action)?;
        let outcome = live.record.game.outcome();
        let saved = match &outcome {
            None => self.store.save(id, &live.record).await,
            Some(outcome) => self.store.save_finished(id, &live.record, outcome).await,
        };
        stop_unless_saved(saved);
        let view = live.view(Some(&player));
        live.publish(Some((seat, &view)));
        Ok((view, outcome))
    }

    async fn view(&self, id: &str, token: &str) -> Result<Box<RawValue>, Failure> {
        let live = self.session(id).await?;
        let live = live.lock().await;
        let seat = live.seat(token)?;
        Ok(live.view(Some(&live.record.game.players[seat])))
    }

    /// Writes a session and waits for the flush.
    async fn save(&self, id: &str, record: &Record) {
        stop_unless_saved(self.store.save(id, record).await);
    }

    /// Finished games' outcomes, oldest first, as the Hokm plugin appends
    /// them to its `matches` history in hoard.
    pub fn matches(&self) -> Vec<Value> {
        self.store.matches()
    }

    /// Each player's wins, as the plugin counts them on its `wins`
    /// leaderboard.
    pub fn wins(&self) -> Vec<(String, u64)> {
        self.store.wins()
    }
}

/// A failed write stops the process (see the module's docs).
fn stop_unless_saved(saved: Result<(), String>) {
    if let Err(error) = saved {
        eprintln!("hokm-native: a write failed, stopping: {error}");
        std::process::abort();
    }
}

impl Live {
    /// The seat whose token this is.
    fn seat(&self, token: &str) -> Result<usize, Failure> {
        self.record
            .tokens
            .iter()
            .position(|t| t == token)
            .ok_or_else(Failure::bad_token)
    }

    /// What `player` sees, as JSON text (`None`: a spectator).
    fn view(&self, player: Option<&str>) -> Box<RawValue> {
        serde_json::value::to_raw_value(&self.record.game.view(player)).expect("a view serializes")
    }

    /// The state frame showing `view`.
    fn state_frame(&self, view: &RawValue) -> Message {
        #[derive(Serialize)]
        struct State<'a> {
            r#type: &'static str,
            seq: u64,
            finished: bool,
            outcome: Option<Value>,
            view: &'a RawValue,
        }
        let outcome = self.record.game.outcome();
        let frame = State {
            r#type: "state",
            seq: self.seq,
            finished: outcome.is_some(),
            outcome,
            view,
        };
        let text = serde_json::to_string(&frame).expect("a frame serializes");
        Message::Text(text.into())
    }

    /// After a change: each watcher's new view, numbered; `rendered` is a
    /// seat's view already made. A watcher too slow to take it is dropped.
    fn publish(&mut self, rendered: Option<(usize, &RawValue)>) {
        self.seq += 1;
        if self.watchers.is_empty() {
            return;
        }
        let mut frames: [Option<Message>; 5] = Default::default();
        let mut watchers = std::mem::take(&mut self.watchers);
        watchers.retain(|watcher| {
            let slot = watcher.seat.unwrap_or(4);
            let frame = frames[slot].get_or_insert_with(|| match rendered {
                Some((seat, view)) if watcher.seat == Some(seat) => self.state_frame(view),
                _ => {
                    let player = watcher.seat.map(|s| self.record.game.players[s].as_str());
                    self.state_frame(&self.view(player))
                }
            });
            watcher.frames.try_send(frame.clone()).is_ok()
        });
        self.watchers = watchers;
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Failure {
        Failure::refused(refusal)
    }
}

/// 128 random bits in hex: session ids and tokens.
fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The `hokm-native` command: `--listen ADDR` (default 127.0.0.1:8090)
/// and `--data DIR` (default `hokm-native.sled`). Serves until Ctrl-C or
/// SIGTERM.
pub fn main() -> std::process::ExitCode {
    main_with(std::env::args().skip(1))
}

/// [`main`] with its arguments given (for a binary that runs it as one of
/// its commands).
pub fn main_with(mut args: impl Iterator<Item = String>) -> std::process::ExitCode {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 8090).into();
    let mut data = std::path::PathBuf::from("hokm-native.sled");
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => match value.parse() {
                Ok(address) => listen = address,
                Err(error) => return usage(&format!("--listen {value}: {error}")),
            },
            ("--data", Some(value)) => data = value.into(),
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async move {
        let native = match Native::open(&data) {
            Ok(native) => native,
            Err(error) => return usage(&error),
        };
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(error) => return usage(&format!("{listen}: {error}")),
        };
        println!("hokm-native listening on {listen}");
        native.serve(listener, stopped()).await;
        std::process::ExitCode::SUCCESS
    })
}

fn usage(problem: &str) -> std::process::ExitCode {
    eprintln!("hokm-native: {problem}\nusage: hokm-native [--listen ADDR] [--data DIR]");
    std::process::ExitCode::from(2)
}

async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
