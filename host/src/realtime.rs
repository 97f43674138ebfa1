//! Real-time events: what the sockets of a session receive after each
//! change, in order, each with a sequence number.
//!
//! A session someone watches has a [`Feed`] in the [`Hub`]. The session
//! publishes to it after every change it stored (`session` does so while
//! it holds the session's lock, so events are in the order of the changes):
//! the plugin's messages to the session, then each audience's view of the
//! new state. An audience is a seated player or the spectators; every
//! audience that has ever subscribed gets its view rendered at each
//! change, for as long as the feed lives, so a player who drops and
//! reconnects can be given exactly what they missed.
//!
//! **Invariants:**
//! - Within one epoch of a feed, sequence numbers go up by one per event,
//!   and each subscriber receives every event after its start, in order,
//!   or is dropped (its queue full: a client too slow to read) and never
//!   sees a later one: no gaps, no duplicates.
//! - A subscriber receives only its own audience's views.
//! - Memory is bounded: the backlog by events and bytes, each subscriber's
//!   queue by events. Nothing here waits for a client.
//!
//! This module knows nothing of WebSockets or JSON framing (`api` does);
//! views and messages are the plugin's JSON documents, kept as text.

use crate::config::RealtimeConfig;
use crate::metrics::Metrics;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Who a view is for: a seated player's name, or `None` for spectators.
pub type Audience = Option<String>;

/// One event of a feed.
#[derive(Debug)]
pub struct Event {
    pub seq: u64,
    pub kind: EventKind,
    /// When the change was published: delivery latency counts from here.
    pub made: Instant,
}

#[derive(Debug)]
pub enum EventKind {
    /// The session changed. `views` holds each audience's view of the new
    /// state (`None` where the plugin failed to render it).
    State {
        views: Vec<(Audience, Option<Arc<str>>)>,
        /// The outcome (JSON) once the game has ended.
        outcome: Option<Arc<str>>,
    },
    /// A message the plugin published to the session (JSON).
    Message(Arc<str>),
}

impl Event {
    /// `audience`'s view in a state event: `None` for a message, or for an
    /// audience that has none in it.
    pub fn view(&self, audience: &Audience) -> Option<&Option<Arc<str>>> {
        match &self.kind {
            EventKind::State { views, .. } => views
                .iter()
                .find(|(whom, _)| whom == audience)
                .map(|(_, view)| view),
            EventKind::Message(_) => None,
        }
    }

    /// Whether `audience` can be sent this event: every message, and the
    /// state events that hold its view.
    fn reaches(&self, audience: &Audience) -> bool {
        matches!(self.kind, EventKind::Message(_)) || self.view(audience).is_some()
    }

    fn bytes(&self) -> usize {
        match &self.kind {
            EventKind::State { views, outcome } => {
                let views: usize = views
                    .iter()
                    .map(|(whom, view)| {
                        whom.as_ref().map_or(0, String::len) + view.as_ref().map_or(0, |v| v.len())
                    })
                    .sum();
                views + outcome.as_ref().map_or(0, |o| o.len()) + 64
            }
            EventKind::Message(message) => message.len() + 64,
        }
    }
}

/// Where a reconnecting client was: the feed's epoch and the last sequence
/// number it received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    pub epoch: String,
    pub seq: u64,
}

/// Why a subscriber was dropped by the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    /// Its queue was full: the client does not read fast enough.
    TooSlow,
    /// The session moved to another instance (cluster mode): this feed
    /// ends, and the client reconnects to be served by the new owner.
    Moved,
}

/// Why [`Feed::subscribe`] did not subscribe.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The backlog does not cover the resume: start with the full state.
    Behind(Resume),
    /// The feed was closed meanwhile: take the session's feed again.
    Closed,
}

/// Every feed of this host.
pub struct Hub {
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
    config: RealtimeConfig,
    metrics: Arc<Metrics>,
}

/// One session's events.
pub struct Feed {
    inner: Mutex<FeedState>,
    /// A random number naming this feed's numbering: a resume from another
    /// epoch (another feed of the session, before a restart) gets a full
    /// state.
    epoch: String,
    metrics: Arc<Metrics>,
}

struct FeedState {
    /// The last event's number; 0 before the first.
    seq: u64,
    backlog: VecDeque<Arc<Event>>,
    backlog_bytes: usize,
    backlog_max: usize,
    backlog_bytes_max: usize,
    /// Every audience that has subscribed: each gets its view rendered at
    /// every change while the feed lives.
    audiences: BTreeSet<Audience>,
    subscribers: Vec<Subscriber>,
    next_subscriber: u64,
    /// Since when nobody has been subscribed.
    idle_since: Option<Instant>,
    /// Dropped from the hub: nobody may subscribe any more.
    closed: bool,
}

struct Subscriber {
    id: u64,
    audience: Audience,
    queue: mpsc::Sender<Arc<Event>>,
    kick: Option<oneshot::Sender<Kick>>,
}

/// A subscriber's end: events arrive on `events`, in order; `kicked` fires
/// if the feed dropped it. Unsubscribes when dropped.
pub struct Subscription {
    pub audience: Audience,
    pub epoch: String,
    /// Whether it picked up after a [`Resume`] (the events it missed are
    /// first in `events`); if not, `events` starts with a full state.
    pub resumed: bool,
    /// The sequence number the subscription starts after: the resume's,
    /// or the full state's.
    pub seq: u64,
    pub events: mpsc::Receiver<Arc<Event>>,
    pub kicked: oneshot::Receiver<Kick>,
    feed: Weak<Feed>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(feed) = self.feed.upgrade() {
            let mut state = feed.lock();
            state.subscribers.retain(|s| s.id != self.id);
            if state.subscribers.is_empty() {
                state.idle_since = Some(Instant::now());
            }
        }
    }
}

/// How a subscription starts.
pub enum Start {
    /// After the resume point: the events the client missed.
    Resumed(Resume),
    /// With the audience's full state now (its view and the outcome).
    Full {
        view: Option<String>,
        outcome: Option<String>,
    },
}

impl Hub {
    pub fn new(config: RealtimeConfig, metrics: Arc<Metrics>) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            feeds: Mutex::new(HashMap::new()),
            config,
            metrics,
        });
        tokio::spawn(sweep(Arc::downgrade(&hub)));
        hub
    }

    /// The feed of `session`, if anyone watches it or did lately.
    pub fn feed(&self, session: &str) -> Option<Arc<Feed>> {
        self.feeds
            .lock()
            .expect("feeds poisoned")
            .get(session)
            .cloned()
    }

    /// The feed of `session`, made if it has none.
    pub fn feed_or_new(&self, session: &str) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().expect("feeds poisoned");
        let feed = feeds.entry(session.to_owned()).or_insert_with(|| {
            self.metrics.feed_made();
            Arc::new(Feed {
                inner: Mutex::new(FeedState {
                    seq: 0,
                    backlog: VecDeque::new(),
                    backlog_bytes: 0,
                    backlog_max: self.config.backlog_max,
                    backlog_bytes_max: self.config.backlog_bytes_max,
                    audiences: BTreeSet::new(),
                    subscribers: Vec::new(),
                    next_subscriber: 0,
                    idle_since: Some(Instant::now()),
                    closed: false,
                }),
                epoch: format!("{:016x}", rand::random::<u64>()),
                metrics: self.metrics.clone(),
            })
        });
        feed.clone()
    }

    /// Most messages a plugin may publish to its session in one call.
    pub fn messages_max(&self) -> usize {
        self.config.messages_per_call_max
    }

    /// Drops the feeds nobody has watched for `resume_window_ms`.
    fn forget_idle(&self) {
        let window = Duration::from_millis(self.config.resume_window_ms);
        let mut feeds = self.feeds.lock().expect("feeds poisoned");
        feeds.retain(|_, feed| {
            let mut state = feed.lock();
            let keep = state
                .idle_since
                .is_none_or(|since| since.elapsed() < window);
            if !keep {
                state.closed = true;
                self.metrics.feed_dropped();
            }
            keep
        });
    }

    /// Ends `session`'s feed, if it has one: its subscribers are told the
    /// session moved ([`Kick::Moved`]) and nobody subscribes to it again.
    /// For when this instance no longer owns the session, or reloaded it
    /// after another instance may have changed it.
    pub fn close(&self, session: &str) {
        let Some(feed) = self.feeds.lock().expect("feeds poisoned").remove(session) else {
            return;
        };
        self.metrics.feed_dropped();
        let mut state = feed.lock();
        state.closed = true;
        for mut subscriber in state.subscribers.drain(..) {
            if let Some(kick) = subscriber.kick.take() {
                let _ = kick.send(Kick::Moved);
            }
        }
    }
}

/// Forgets idle feeds now and then, until the hub is dropped.
async fn sweep(hub: Weak<Hub>) {
    let every = match hub.upgrade() {
        Some(hub) => Duration::from_millis((hub.config.resume_window_ms / 4).clamp(100, 30_000)),
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.forget_idle();
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.inner.lock().expect("feed poisoned")
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The audiences whose views each state event must carry.
    pub fn audiences(&self) -> Vec<Audience> {
        self.lock().audiences.iter().cloned().collect()
    }

    /// The number of the last event.
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Publishes `kinds` as the next events, in order, to the backlog and
    /// every subscriber; returns the last event's number. A subscriber
    /// whose queue is full is dropped and told why.
    pub fn publish(&self, kinds: Vec<EventKind>) -> u64 {
        let mut state = self.lock();
        let now = Instant::now();
        for kind in kinds {
            state.seq += 1;
            let event = Arc::new(Event {
                seq: state.seq,
                kind,
                made: now,
            });
            let mut dropped = 0;
            state.subscribers.retain_mut(|subscriber| {
                // Its audience is rendered at every change from its
                // subscription on.
                debug_assert!(event.reaches(&subscriber.audience));
                match subscriber.queue.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if let Some(kick) = subscriber.kick.take() {
                            let _ = kick.send(Kick::TooSlow);
                        }
                        dropped += 1;
                        false
                    }
                    // Its socket is gone; its subscription drops soon.
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            if dropped > 0 {
                self.metrics.ws_send_queue_full(dropped);
                if state.subscribers.is_empty() {
                    state.idle_since = Some(now);
                }
            }
            state.backlog_bytes += event.bytes();
            state.backlog.push_back(event);
            while state.backlog.len() > state.backlog_max
                || (state.backlog_bytes > state.backlog_bytes_max && state.backlog.len() > 1)
            {
                let old = state.backlog.pop_front().expect("not empty");
                state.backlog_bytes -= old.bytes();
            }
        }
        state.seq
    }

    /// Subscribes `audience` with a queue of `queue_max` events. The caller
    /// holds the session's lock, so no change is published meanwhile: a
    /// [`Start::Resumed`] that the backlog covers (and whose missed events
    /// fit the queue) picks up there; otherwise [`Refused::Behind`] with
    /// nothing done, and the caller renders the view and subscribes again
    /// with [`Start::Full`]. A feed the hub has dropped refuses everyone
    /// ([`Refused::Closed`]).
    pub fn subscribe(
        self: &Arc<Self>,
        audience: Audience,
        start: Start,
        queue_max: usize,
    ) -> Result<Subscription, Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed);
        }
        let (queue, events) = mpsc::channel(queue_max.max(1));
        let (resumed, seq) = match start {
            Start::Resumed(resume) => {
                let missed = state.missed(&self.epoch, &resume, &audience, queue_max);
                let Some(missed) = missed else {
                    return Err(Refused::Behind(resume));
                };
                for event in missed {
                    queue
                        .try_send(event)
                        .expect("the missed events fit the queue");
                }
                (true, resume.seq)
            }
            Start::Full { view, outcome } => {
                // Not in the backlog: it is this subscriber's alone.
                let full = Event {
                    seq: state.seq,
                    kind: EventKind::State {
                        views: vec![(audience.clone(), view.map(Arc::from))],
                        outcome: outcome.map(Arc::from),
                    },
                    made: Instant::now(),
                };
                queue
                    .try_send(Arc::new(full))
                    .expect("a new queue has room");
                (false, state.seq)
            }
        };
        let (kick, kicked) = oneshot::channel();
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        state.audiences.insert(audience.clone());
        state.subscribers.push(Subscriber {
            id,
            audience: audience.clone(),
            queue,
            kick: Some(kick),
        });
        state.idle_since = None;
        Ok(Subscription {
            audience,
            epoch: self.epoch.clone(),
            resumed,
            seq,
            events,
            kicked,
            feed: Arc::downgrade(self),
            id,
        })
    }
}

impl FeedState {
    /// The events after `resume` that `audience` missed, if the backlog
    /// still holds every one of them, each with its view, and they fit in
    /// `queue_max`.
    fn missed(
        &self,
        epoch: &str,
        resume: &Resume,
        audience: &Audience,
        queue_max: usize,
    ) -> Option<Vec<Arc<Event>>> {
        if resume.epoch != epoch || resume.seq > self.seq {
            return None;
        }
        let count = usize::try_from(self.seq - resume.seq).ok()?;
        if count > queue_max || count > self.backlog.len() {
            return None;
        }
        let missed: Vec<_> = self
            .backlog
            .iter()
            .skip(self.backlog.len() - count)
            .cloned()
            .collect();
        debug_assert!(missed.first().is_none_or(|e| e.seq == resume.seq + 1));
        missed
            .iter()
            .all(|event| event.reaches(audience))
            .then_some(missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(backlog_max: usize) -> Arc<Hub> {
        let config = RealtimeConfig {
            backlog_max,
            ..RealtimeConfig::default()
        };
        Arc::new(Hub {
            feeds: Mutex::new(HashMap::new()),
            config,
            metrics: Arc::new(Metrics::new()),
        })
    }

    fn state(views: &[(&str, &str)]) -> EventKind {
        EventKind::State {
            views: views
                .iter()
                .map(|(whom, view)| (Some(whom.to_string()), Some(Arc::from(*view))))
                .collect(),
            outcome: None,
        }
    }

    fn full() -> Start {
        Start::Full {
            view: Some("{}".into()),
            outcome: None,
        }
    }

    fn drain(subscription: &mut Subscription) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Ok(event) = subscription.events.try_recv() {
            seqs.push(event.seq);
        }
        seqs
    }

    #[test]
    fn a_resume_gets_exactly_what_was_missed_in_order() {
        let hub = hub(8);
        let feed = hub.feed_or_new("s");
        let mut ali = feed.subscribe(Some("ali".into()), full(), 16).unwrap();
        assert_eq!(drain(&mut ali), [0], "a full state at 0");
        feed.publish(vec![state(&[("ali", "1")])]);
        let epoch = ali.epoch.clone();
        drop(ali);
        feed.publish(vec![
            EventKind::Message("\"hi\"".into()),
            state(&[("ali", "2")]),
        ]);
        let resume = Resume { epoch, seq: 1 };
        let mut again = feed
            .subscribe(Some("ali".into()), Start::Resumed(resume), 16)
            .unwrap();
        assert!(again.resumed);
        assert_eq!(drain(&mut again), [2, 3]);
        feed.publish(vec![state(&[("ali", "4")])]);
        assert_eq!(drain(&mut again), [4]);
    }

    #[test]
    fn a_resume_the_backlog_does_not_reach_is_refused() {
        let hub = hub(2);
        let feed = hub.feed_or_new("s");
        let ali = feed.subscribe(Some("ali".into()), full(), 16).unwrap();
        let epoch = ali.epoch.clone();
        for n in 0..5 {
            feed.publish(vec![state(&[("ali", &n.to_string())])]);
        }
        let at = |seq| {
            Start::Resumed(Resume {
                epoch: epoch.clone(),
                seq,
            })
        };
        assert!(feed.subscribe(Some("ali".into()), at(2), 16).is_err());
        assert!(feed.subscribe(Some("ali".into()), at(3), 16).is_ok());
        assert!(
            feed.subscribe(Some("ali".into()), at(6), 16).is_err(),
            "ahead"
        );
        let other = Start::Resumed(Resume {
            epoch: "another".into(),
            seq: 5,
        });
        assert!(feed.subscribe(Some("ali".into()), other, 16).is_err());
        assert!(
            feed.subscribe(Some("bo".into()), at(3), 16).is_err(),
            "bo's views were never rendered"
        );
        assert!(
            feed.subscribe(Some("ali".into()), at(3), 1).is_err(),
            "two missed events do not fit a queue of one"
        );
    }

    #[test]
    fn a_full_queue_drops_that_subscriber_only() {
        let hub = hub(64);
        let feed = hub.feed_or_new("s");
        let mut slow = feed.subscribe(Some("ali".into()), full(), 2).unwrap();
        let mut quick = feed.subscribe(Some("bo".into()), full(), 64).unwrap();
        drain(&mut quick);
        for n in 0..3 {
            feed.publish(vec![state(&[("ali", "x"), ("bo", &n.to_string())])]);
        }
        assert_eq!(slow.kicked.try_recv(), Ok(Kick::TooSlow));
        assert_eq!(drain(&mut slow), [0, 1], "what it had queued, never more");
        assert_eq!(drain(&mut quick), [1, 2, 3]);
        feed.publish(vec![state(&[("ali", "y"), ("bo", "4")])]);
        assert_eq!(drain(&mut slow), Vec::<u64>::new());
        assert_eq!(drain(&mut quick), [4]);
    }

    #[test]
    fn a_closed_feed_tells_its_subscribers_and_takes_no_more() {
        let hub = hub(8);
        let feed = hub.feed_or_new("s");
        let mut ali = feed.subscribe(Some("ali".into()), full(), 16).unwrap();
        hub.close("s");
        assert_eq!(ali.kicked.try_recv(), Ok(Kick::Moved));
        assert_eq!(
            feed.subscribe(Some("bo".into()), full(), 16).err(),
            Some(Refused::Closed)
        );
        assert!(
            hub.feed("s").is_none(),
            "the next subscriber gets a new feed"
        );
        assert_ne!(hub.feed_or_new("s").epoch(), feed.epoch());
    }

    #[test]
    fn the_backlog_is_bounded_in_bytes() {
        let hub = Arc::new(Hub {
            feeds: Mutex::new(HashMap::new()),
            config: RealtimeConfig {
                backlog_max: 1000,
                backlog_bytes_max: 4096,
                ..RealtimeConfig::default()
            },
            metrics: Arc::new(Metrics::new()),
        });
        let feed = hub.feed_or_new("s");
        let view = "v".repeat(1000);
        for _ in 0..100 {
            feed.publish(vec![state(&[("ali", &view)])]);
        }
        let state = feed.lock();
        assert!(state.backlog_bytes <= 4096, "{}", state.backlog_bytes);
        assert!(state.backlog.len() >= 3);
        assert_eq!(state.backlog.back().unwrap().seq, 100);
    }
}
