//! Group commit: many concurrent writers share one flush.
//!
//! A writer applies its change to sled (in memory), then waits here. One
//! thread flushes in a loop: it takes every writer waiting at that moment,
//! flushes once, and wakes them all. Writers that arrive during a flush ride
//! the next one. One writer alone pays one flush; 64 writers pay about one
//! flush between them, so durability does not serialise throughput.

use crate::storage::{Error, Result};
use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<std::result::Result<(), String>>;

/// Hands out durability: `durable().await` returns once everything written
/// before the call is on disk.
pub(super) struct GroupCommit {
    /// Bounded: a writer that finds it full waits for room, which is the
    /// back-pressure a slow disk should exert.
    waiters: mpsc::Sender<Waiter>,
}

impl GroupCommit {
    pub(super) fn start(db: sled::Db, waiters_max: usize) -> std::io::Result<Self> {
        let (waiters, mut receiver) = mpsc::channel::<Waiter>(waiters_max);
        std::thread::Builder::new()
            .name("hoard-sled-commit".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(waiters_max);
                // Ends when the store (every sender) is dropped.
                while let Some(first) = receiver.blocking_recv() {
                    batch.push(first);
                    while batch.len() < waiters_max {
                        match receiver.try_recv() {
                            Ok(waiter) => batch.push(waiter),
                            Err(_) => break,
                        }
                    }
                    let flushed = db.flush().map(drop).map_err(|e| e.to_string());
                    for waiter in batch.drain(..) {
                        // The writer may have given up (its request was dropped).
                        let _ = waiter.send(flushed.clone());
                    }
                }
            })?;
        Ok(GroupCommit { waiters })
    }

    /// Waits until every write this task made before the call is durable.
    pub(super) async fn durable(&self) -> Result<()> {
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .send(sender)
            .await
            .map_err(|_| Error::Unavailable("sled commit thread has stopped".into()))?;
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Error::Unavailable(format!("sled flush failed: {reason}"))),
            Err(_) => Err(Error::Unavailable("sled commit thread has stopped".into())),
        }
    }
}
