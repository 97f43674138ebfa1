//! The lobby: the sessions a player could still join, per game, as this
//! instance knows them.
//!
//! A session enters when it is created here with `"listed": true` (the
//! browser client lists its tables; a session made with the API is
//! private, reached by its link, unless it asks), is shown once someone
//! sits at it, and leaves once its seats are taken, it has ended, its record has expired, or a join found it full.
//! The lobby lives in memory and is bounded ([`OPEN_MAX`], oldest dropped
//! first): it is a list to pick a table from, not a record of sessions.
//! After a restart, and in cluster mode for sessions created on another
//! instance, a session is reached by its link instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Most open sessions the lobby keeps, over all games.
pub const OPEN_MAX: usize = 1024;

/// A session waiting for players.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub session: String,
    pub game: String,
    /// The seated players' names, in seat order.
    pub players: Vec<String>,
    /// The most players the game seats.
    pub seats: u32,
    pub created_ms: u64,
    /// When the session's record expires if nothing happens.
    pub expires_at_ms: u64,
}

#[derive(Default)]
pub struct Lobby {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    open: HashMap<String, Open>,
    /// Creation order, for dropping the oldest: `(created_ms, n)` → id.
    order: BTreeMap<(u64, u64), String>,
    /// Tells apart sessions created in the same millisecond.
    n: u64,
}

impl Lobby {
    /// Lists `open`, a session just created.
    pub fn opened(&self, open: Open) {
        let mut inner = self.inner.lock().expect("lobby poisoned");
        inner.n += 1;
        let place = (open.created_ms, inner.n);
        inner.order.insert(place, open.session.clone());
        inner.open.insert(open.session.clone(), open);
        while inner.open.len() > OPEN_MAX {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            inner.open.remove(&oldest);
        }
    }

    /// A listed session changed: it now seats `players`, and has ended if
    /// `ended`. It leaves the lobby once full or ended.
    pub fn changed<'a>(
        &self,
        session: &str,
        players: impl ExactSizeIterator<Item = &'a str>,
        ended: bool,
    ) {
        let mut inner = self.inner.lock().expect("lobby poisoned");
        let Some(open) = inner.open.get_mut(session) else {
            return;
        };
        if ended || players.len() >= open.seats as usize {
            inner.remove(session);
            return;
        }
        open.players = players.map(str::to_owned).collect();
    }

    /// A listed session's record was stored: it now expires at
    /// `expires_at_ms`.
    pub fn kept(&self, session: &str, expires_at_ms: u64) {
        if let Some(open) = self
            .inner
            .lock()
            .expect("lobby poisoned")
            .open
            .get_mut(session)
        {
            open.expires_at_ms = expires_at_ms;
        }
    }

    /// Takes `session` off the list (a join found it full, it ended).
    pub fn closed(&self, session: &str) {
        self.inner.lock().expect("lobby poisoned").remove(session);
    }

    /// Up to `limit` open sessions of `game` with someone seated, newest
    /// first, leaving out (and forgetting) those expired by `now_ms`. A
    /// table nobody sits at is not shown: creating empty tables cannot
    /// push the real ones off the list.
    pub fn list(&self, game: &str, limit: usize, now_ms: u64) -> Vec<Open> {
        let mut inner = self.inner.lock().expect("lobby poisoned");
        let expired: Vec<String> = inner
            .open
            .values()
            .filter(|o| o.expires_at_ms <= now_ms)
            .map(|o| o.session.clone())
            .collect();
        for session in &expired {
            inner.remove(session);
        }
        inner
            .order
            .values()
            .rev()
            .filter_map(|id| inner.open.get(id))
            .filter(|o| o.game == game && !o.players.is_empty())
            .take(limit)
            .cloned()
            .collect()
    }
}

impl Inner {
    fn remove(&mut self, session: &str) {
        if self.open.remove(session).is_some() {
            self.order.retain(|_, id| id != session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(session: &str, game: &str, created_ms: u64) -> Open {
        Open {
            session: session.into(),
            game: game.into(),
            players: vec!["host".into()],
            seats: 2,
            created_ms,
            expires_at_ms: 10_000,
        }
    }

    fn ids(list: &[Open]) -> Vec<&str> {
        list.iter().map(|o| o.session.as_str()).collect()
    }

    #[test]
    fn lists_open_sessions_of_a_game_newest_first() {
        let lobby = Lobby::default();
        lobby.opened(open("a", "hokm", 1));
        lobby.opened(open("b", "pig", 2));
        lobby.opened(open("c", "hokm", 3));
        assert_eq!(ids(&lobby.list("hokm", 10, 5)), ["c", "a"]);
        assert_eq!(ids(&lobby.list("hokm", 1, 5)), ["c"]);
        assert_eq!(ids(&lobby.list("chess", 10, 5)), Vec::<&str>::new());
    }

    #[test]
    fn a_session_leaves_once_full_ended_or_expired() {
        let lobby = Lobby::default();
        lobby.opened(open("a", "hokm", 1));
        lobby.opened(open("b", "hokm", 2));
        lobby.opened(open("c", "hokm", 3));
        lobby.changed("a", ["host"].into_iter(), false);
        lobby.kept("a", 20_000);
        let listed = lobby.list("hokm", 10, 5);
        assert_eq!(ids(&listed), ["c", "b", "a"]);
        assert_eq!(listed[2].players, ["host"]);
        lobby.changed("a", ["host", "bo"].into_iter(), false);
        lobby.changed("b", ["host"].into_iter(), true);
        assert_eq!(ids(&lobby.list("hokm", 10, 5)), ["c"]);
        assert_eq!(ids(&lobby.list("hokm", 10, 10_000)), Vec::<&str>::new());
    }

    #[test]
    fn a_table_nobody_sits_at_is_not_shown() {
        let lobby = Lobby::default();
        let mut empty = open("a", "hokm", 1);
        empty.players.clear();
        lobby.opened(empty);
        assert!(lobby.list("hokm", 10, 5).is_empty());
        lobby.changed("a", ["ali"].into_iter(), false);
        assert_eq!(ids(&lobby.list("hokm", 10, 5)), ["a"]);
    }

    #[test]
    fn keeps_at_most_open_max_dropping_the_oldest() {
        let lobby = Lobby::default();
        for n in 0..OPEN_MAX as u64 + 3 {
            lobby.opened(open(&format!("s{n}"), "hokm", n));
        }
        let listed = lobby.list("hokm", usize::MAX, 5);
        assert_eq!(listed.len(), OPEN_MAX);
        assert_eq!(listed.last().unwrap().session, "s3");
    }
}
