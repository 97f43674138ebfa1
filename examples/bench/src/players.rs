//! Players for the benchmarks: Hokm tables seated over HTTP and played over
//! WebSockets, one action at a time, with latencies kept as samples.

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client socket on `session`'s events: hello, welcome, the first
/// (full) state. Small buffers: the generator holds thousands.
pub(crate) async fn connect(base: &str, session: &str, token: &str) -> Result<(Socket, Value)> {
    let url = format!(
        "{}/v1/sessions/{session}/events",
        base.replacen("http", "ws", 1)
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(2048)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true).await?;
    let hello = json!({"type": "hello", "token": token});
    socket.send(Message::Text(hello.to_string().into())).await?;
    let mut first = None;
    while first.is_none() {
        let frame = next_json(&mut socket).await?;
        if frame["type"] == "state" {
            first = Some(frame);
        }
    }
    Ok((socket, first.expect("set above")))
}

pub(crate) async fn next_json<S>(socket: &mut S) -> Result<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(Message::Close(frame))) => bail!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(error.into()),
            None => bail!("the socket ended"),
        }
    }
}

/// Latency samples, in microseconds.
#[derive(Default)]
pub(crate) struct Samples(Vec<u32>);

impl Samples {
    pub(crate) fn add(&mut self, took: Duration) {
        self.0.push(took.as_micros().min(u32::MAX as u128) as u32);
    }

    pub(crate) fn merge(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// The `p`th percentile, in milliseconds.
    pub(crate) fn ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let at = ((self.0.len() as f64 * p / 100.0).ceil() as usize).clamp(1, self.0.len()) - 1;
        f64::from(self.0[at]) / 1000.0
    }
}

/// One Hokm table: its session and its four players' sockets and views.
pub(crate) struct Table {
    sockets: Vec<Socket>,
    views: Vec<Value>,
    /// Every base URL the table's sockets and requests may use.
    bases: Vec<String>,
}

/// Seats four guests at a new table on `create_at` and connects each
/// player's socket to `bases[seat % len]`.
pub(crate) async fn hokm_table(
    http: &reqwest::Client,
    create_at: &str,
    bases: &[String],
    seed: u64,
) -> Result<Table> {
    let (session, tokens) = seat_table(http, create_at, seed).await?;
    connect_table(bases, &session, &tokens).await
}

/// Creations answered `busy` (and tried again) so far.
pub(crate) static CREATIONS_BUSY: AtomicU64 = AtomicU64::new(0);

/// A new Hokm session on `create_at` with four guests seated: its id and
/// their tokens.
pub(crate) async fn seat_table(
    http: &reqwest::Client,
    create_at: &str,
    seed: u64,
) -> Result<(String, Vec<String>)> {
    // A host with every plugin instance taken answers `busy`: try again.
    let mut waited = Duration::ZERO;
    let created: Value = loop {
        let response = http
            .post(format!("{create_at}/v1/games/hokm/sessions"))
            .json(&json!({"seed": seed}))
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE || waited.as_secs() >= 10 {
            break response.json().await?;
        }
        CREATIONS_BUSY.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    };
    let session = created["session"]
        .as_str()
        .with_context(|| format!("a session: {created}"))?
        .to_owned();
    let mut tokens = Vec::new();
    for name in ["n", "e", "s", "w"] {
        let joined: Value = http
            .post(format!("{create_at}/v1/sessions/{session}/join"))
            .json(&json!({"name": name}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(joined["token"].as_str().context("a token")?.to_owned());
    }
    Ok((session, tokens))
}

/// Connects the four players of a seated table, each to
/// `bases[seat % len]`.
pub(crate) async fn connect_table(
    bases: &[String],
    session: &str,
    tokens: &[String],
) -> Result<Table> {
    let mut sockets = Vec::new();
    let mut views = Vec::new();
    for (seat, token) in tokens.iter().enumerate() {
        let (socket, first) = connect(&bases[seat % bases.len()], session, token).await?;
        sockets.push(socket);
        views.push(first["view"].clone());
    }
    Ok(Table {
        sockets,
        views,
        bases: bases.to_vec(),
    })
}

/// What a table's driver measured.
#[derive(Default)]
pub(crate) struct Played {
    /// Actions sent from `from` on and answered.
    pub actions: u64,
    /// Each such action's latency to each player's event.
    pub latency: Samples,
    /// Each such action's round trip to its reply.
    pub replies: Samples,
}

/// Plays `table` until `until`, one action at a time, each `pace` apart
/// (none: as fast as it can), measuring the actions sent from `from` on
/// (before it: a warm-up). A finished game is replaced by a new table.
pub(crate) async fn drive(
    mut table: Table,
    http: reqwest::Client,
    pace: Option<Duration>,
    (from, until): (Instant, Instant),
    seed: u64,
) -> Result<Played> {
    let mut played = Played::default();
    let mut next_id = 0u64;
    let mut games = 0;
    if let Some(pace) = pace {
        // Tables out of step, as players are: not all at once each beat.
        let offset = seed.wrapping_mul(7919) % pace.as_micros().max(1) as u64;
        tokio::time::sleep(Duration::from_micros(offset)).await;
    }
    while Instant::now() < until {
        if table.views[0]["winner_team"].is_number() || table.views[0]["phase"] == "finished" {
            games += 1;
            let bases = table.bases.clone();
            table = hokm_table(
                &http,
                &bases[games % bases.len()],
                &bases,
                seed + games as u64,
            )
            .await?;
            continue;
        }
        let turn = table.views[0]["turn"].as_u64().context("whose turn")? as usize;
        let action = hoard_bots::hokm::choose(&table.views[turn])?;
        next_id += 1;
        let frame = json!({"type": "act", "id": next_id, "action": action});
        let sent = Instant::now();
        table.sockets[turn]
            .send(Message::Text(frame.to_string().into()))
            .await?;
        let reads = table
            .sockets
            .iter_mut()
            .enumerate()
            .map(|(seat, socket)| async move {
                let mut view = None;
                let mut replied = (seat != turn).then_some(sent);
                let mut arrived = sent;
                while view.is_none() || replied.is_none() {
                    let frame = next_json(socket).await?;
                    match frame["type"].as_str() {
                        Some("state") => {
                            arrived = Instant::now();
                            view = Some(frame["view"].clone());
                        }
                        Some("reply") => replied = Some(Instant::now()),
                        Some("error") => bail!("refused: {frame}"),
                        _ => {}
                    }
                }
                let replied = replied.expect("set") - sent;
                Ok::<_, anyhow::Error>((arrived - sent, replied, view.expect("set")))
            });
        let measured = sent >= from;
        for (seat, result) in futures_util::future::join_all(reads)
            .await
            .into_iter()
            .enumerate()
        {
            let (took, replied, view) = result?;
            if measured {
                played.latency.add(took);
                if seat == turn {
                    played.replies.add(replied);
                }
            }
            table.views[seat] = view;
        }
        played.actions += u64::from(measured);
        if let Some(pace) = pace {
            tokio::time::sleep(pace.saturating_sub(sent.elapsed())).await;
        }
    }
    Ok(played)
}
