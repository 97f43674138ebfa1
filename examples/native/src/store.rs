//! Sessions on disk: one sled tree, a session's record under its id, and a
//! group commit so that a change is answered only once it is on disk while
//! concurrent writers share each flush.

use hokm::game::Game;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// What is stored of a session: the game, and each seat's token (in seat
/// order, as the game seats its players).
#[derive(Serialize, Deserialize)]
pub struct Record {
    pub game: Game,
    pub tokens: Vec<String>,
}

/// Trees: `sessions` (id -> [`Record`]), and what a finished game leaves,
/// as the Hokm plugin keeps it in hoard: `matches` (a big-endian number ->
/// the outcome's JSON) and `wins` (a player -> their wins, big-endian).
pub struct Store {
    sessions: sled::Tree,
    matches: sled::Tree,
    wins: sled::Tree,
    commit: GroupCommit,
}

impl Store {
    pub fn open(path: &Path) -> sled::Result<Store> {
        // As hoard opens sled: no timed background flush (the group commit
        // flushes), throughput mode, a 64 MiB cache.
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(64 << 20)
            .flush_every_ms(None)
            .open()?;
        Ok(Store {
            sessions: db.open_tree("sessions")?,
            matches: db.open_tree("matches")?,
            wins: db.open_tree("wins")?,
            commit: GroupCommit::start(db),
        })
    }

    pub fn load(&self, id: &str) -> Result<Option<Record>, String> {
        let Some(bytes) = self.sessions.get(id).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| format!("session {id} is damaged: {e}"))
    }

    /// Writes `record` and returns once it is on disk.
    pub async fn save(&self, id: &str, record: &Record) -> Result<(), String> {
        let bytes = postcard::to_allocvec(record).map_err(|e| e.to_string())?;
        self.sessions.insert(id, bytes).map_err(|e| e.to_string())?;
        self.commit.durable().await
    }

    /// Writes the record of a game that just ended together with its
    /// outcome in `matches` and a win for each winner (one transaction),
    /// and returns once they are on disk.
    pub async fn save_finished(
        &self,
        id: &str,
        record: &Record,
        outcome: &Value,
    ) -> Result<(), String> {
        use sled::Transactional;
        let bytes = postcard::to_allocvec(record).map_err(|e| e.to_string())?;
        let entry = outcome.to_string();
        let winners: Vec<&str> = outcome["winners"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        (&self.sessions, &self.matches, &self.wins)
            .transaction(|(sessions, matches, wins)| {
                sessions.insert(id.as_bytes(), bytes.as_slice())?;
                let number = matches.generate_id()?;
                matches.insert(&number.to_be_bytes(), entry.as_bytes())?;
                for winner in &winners {
                    let before = wins.get(winner)?.map_or(0, |n| be_u64(&n));
                    wins.insert(winner.as_bytes(), &(before + 1).to_be_bytes())?;
                }
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| format!("{e:?}"))?;
        self.commit.durable().await
    }

    /// Finished games' outcomes, oldest first.
    pub fn matches(&self) -> Vec<Value> {
        self.matches
            .iter()
            .values()
            .filter_map(|v| serde_json::from_slice(&v.ok()?).ok())
            .collect()
    }

    /// Each player's wins.
    pub fn wins(&self) -> Vec<(String, u64)> {
        self.wins
            .iter()
            .filter_map(|entry| {
                let (player, wins) = entry.ok()?;
                Some((String::from_utf8_lossy(&player).into_owned(), be_u64(&wins)))
            })
            .collect()
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

/// One thread flushes for everyone: a writer hands it a reply slot after
/// its insert, and the thread takes every slot waiting, flushes once, and
/// answers them all. A slot taken before a flush starts belongs to an
/// insert made before it, so that flush covers it.
struct GroupCommit {
    waiting: mpsc::Sender<oneshot::Sender<Result<(), String>>>,
}

impl GroupCommit {
    fn start(db: sled::Db) -> GroupCommit {
        let (waiting, slots) = mpsc::channel::<oneshot::Sender<Result<(), String>>>();
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                // Ends when the store (every sender) is gone.
                while let Ok(first) = slots.recv() {
                    let batch: Vec<_> = std::iter::once(first).chain(slots.try_iter()).collect();
                    let flushed = db.flush().map(drop).map_err(|e| e.to_string());
                    for slot in batch {
                        let _ = slot.send(flushed.clone());
                    }
                }
            })
            .expect("a thread");
        GroupCommit { waiting }
    }

    async fn durable(&self) -> Result<(), String> {
        let (slot, flushed) = oneshot::channel();
        self.waiting
            .send(slot)
            .map_err(|_| "the commit thread is gone".to_owned())?;
        flushed
            .await
            .map_err(|_| "the commit thread is gone".to_owned())?
    }
}
