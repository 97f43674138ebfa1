//! Host side of `hoard:plugin/hot`: checks sizes, builds ops, calls the store.

use super::InstanceData;
use super::bindings::hoard::plugin::hot::{Entry, Host};
use crate::storage::{Applied, Error, HotWrite, Op};

type Result<T> = std::result::Result<T, Error>;

impl InstanceData {
    async fn hot_write(&mut self, write: HotWrite) -> Result<Applied> {
        self.storage.limits.check_hot(&write)?;
        let op = Op {
            id: self.next_op_id(),
            namespace: self.namespace.clone(),
            write,
        };
        self.storage.hot.apply(&op).await
    }

    fn check_key(&self, what: &'static str, key: &str) -> Result<()> {
        self.storage.limits.check_key(what, key)
    }

    /// Keeps a message to the session's sockets, sent once the call's
    /// change is stored: JSON as it is, other UTF-8 text as a JSON string.
    fn keep_for_session(&mut self, channel: String, message: Vec<u8>) -> Result<()> {
        let write = HotWrite::Publish { channel, message };
        self.storage.limits.check_hot(&write)?;
        let HotWrite::Publish { message, .. } = write else {
            unreachable!("built above")
        };
        if self.messages.len() >= self.messages_max {
            return Err(Error::LimitExceeded {
                what: "session-messages",
                max: self.messages_max as u64,
                actual: self.messages.len() as u64 + 1,
            });
        }
        let text = String::from_utf8(message)
            .map_err(|_| Error::invalid("message", "a message to a session is UTF-8 text"))?;
        let json = if super::json_check(&text).is_ok() {
            text
        } else {
            serde_json::Value::String(text).to_string()
        };
        self.messages.push(json);
        Ok(())
    }
}

/// A store returned the wrong kind of result for a write: a host bug.
fn unexpected(applied: Applied) -> Error {
    debug_assert!(false, "unexpected result {applied:?}");
    Error::Unavailable(format!("backend returned {applied:?}"))
}

fn entries(rows: Vec<crate::storage::Entry>) -> Vec<Entry> {
    rows.into_iter()
        .map(|e| Entry {
            member: e.member,
            score: e.score,
            rank: e.rank,
        })
        .collect()
}

impl Host for InstanceData {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>> {
        self.check_key("key-bytes", &key)?;
        self.storage.hot.get(&self.namespace, &key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<()> {
        self.hot_write(HotWrite::Set { key, value, ttl_ms })
            .await
            .map(drop)
    }

    async fn delete(&mut self, key: String) -> Result<bool> {
        match self.hot_write(HotWrite::Delete { key }).await? {
            Applied::Existed(existed) => Ok(existed),
            other => Err(unexpected(other)),
        }
    }

    async fn incr(&mut self, key: String, delta: i64) -> Result<i64> {
        match self.hot_write(HotWrite::Incr { key, delta }).await? {
            Applied::Integer(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    async fn hash_get(&mut self, key: String, field: String) -> Result<Option<Vec<u8>>> {
        self.check_key("key-bytes", &key)?;
        self.check_key("field-bytes", &field)?;
        self.storage
            .hot
            .hash_get(&self.namespace, &key, &field)
            .await
    }

    async fn hash_set(&mut self, key: String, field: String, value: Vec<u8>) -> Result<()> {
        self.hot_write(HotWrite::HashSet { key, field, value })
            .await
            .map(drop)
    }

    async fn hash_get_all(&mut self, key: String) -> Result<Vec<(String, Vec<u8>)>> {
        self.check_key("key-bytes", &key)?;
        self.storage.hot.hash_get_all(&self.namespace, &key).await
    }

    async fn leaderboard_set(&mut self, board: String, member: String, score: f64) -> Result<()> {
        self.hot_write(HotWrite::LeaderboardSet {
            board,
            member,
            score,
        })
        .await
        .map(drop)
    }

    async fn leaderboard_incr(&mut self, board: String, member: String, delta: f64) -> Result<f64> {
        match self
            .hot_write(HotWrite::LeaderboardIncr {
                board,
                member,
                delta,
            })
            .await?
        {
            Applied::Score(score) => Ok(score),
            other => Err(unexpected(other)),
        }
    }

    async fn leaderboard_top(&mut self, board: String, n: u32) -> Result<Vec<Entry>> {
        self.check_key("key-bytes", &board)?;
        self.storage.limits.check_rows(n)?;
        Ok(entries(
            self.storage
                .hot
                .leaderboard_top(&self.namespace, &board, n)
                .await?,
        ))
    }

    async fn leaderboard_rank(&mut self, board: String, member: String) -> Result<Option<Entry>> {
        self.check_key("key-bytes", &board)?;
        self.check_key("member-bytes", &member)?;
        let entry = self
            .storage
            .hot
            .leaderboard_rank(&self.namespace, &board, &member)
            .await?;
        Ok(entry.map(|e| Entry {
            member: e.member,
            score: e.score,
            rank: e.rank,
        }))
    }

    async fn leaderboard_around(
        &mut self,
        board: String,
        member: String,
        n: u32,
    ) -> Result<Vec<Entry>> {
        self.check_key("key-bytes", &board)?;
        self.check_key("member-bytes", &member)?;
        // n above and n below, plus the member: at most read_rows_max rows.
        if u64::from(n) * 2 + 1 > self.storage.limits.read_rows_max {
            return Err(Error::LimitExceeded {
                what: "read-rows",
                max: self.storage.limits.read_rows_max,
                actual: u64::from(n) * 2 + 1,
            });
        }
        Ok(entries(
            self.storage
                .hot
                .leaderboard_around(&self.namespace, &board, &member, n)
                .await?,
        ))
    }

    async fn publish(&mut self, channel: String, message: Vec<u8>) -> Result<()> {
        if self.session_channel.is_some()
            && (channel == "session" || self.session_channel.as_ref() == Some(&channel))
        {
            return self.keep_for_session(channel, message);
        }
        self.hot_write(HotWrite::Publish { channel, message })
            .await
            .map(drop)
    }
}
