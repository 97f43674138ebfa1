//! A session's events over its WebSocket (`GET /v1/sessions/{id}/events`),
//! as a client uses them: say hello, read events in order, act on the same
//! socket, and resume after a reconnect from the last event seen.

use crate::{Host, Refused};
use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The host closed the socket: its close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "closed {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for Closed {}

/// An open socket on a session's events.
pub struct Events {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The feed's epoch and the last sequence number seen: what a
    /// reconnect resumes from.
    pub epoch: String,
    pub seq: u64,
    /// The player this socket is, or `None` for a spectator.
    pub player: Option<String>,
    /// Whether the welcome said the host resumed from the point asked.
    pub resumed: bool,
    /// Events read while waiting for an answer, handed out first.
    pending: VecDeque<Value>,
    next_id: u64,
}

impl Host {
    /// Opens `session`'s events as the player holding `token` (or as a
    /// spectator), resuming after `resume` (an epoch and the last sequence
    /// number seen) if given.
    pub async fn events(
        &self,
        session: &str,
        token: Option<&str>,
        resume: Option<(&str, u64)>,
    ) -> Result<Events> {
        let url = format!(
            "{}/v1/sessions/{session}/events",
            self.base.replacen("http", "ws", 1)
        );
        // Small buffers: a load test holds thousands of these.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true)
                .await
                .with_context(|| url.clone())?;
        let mut hello = json!({"type": "hello"});
        if let Some(token) = token {
            hello["token"] = json!(token);
        }
        if let Some((epoch, seq)) = resume {
            hello["resume"] = json!({"epoch": epoch, "seq": seq});
        }
        socket.send(Message::Text(hello.to_string().into())).await?;
        let mut events = Events {
            socket,
            epoch: String::new(),
            seq: 0,
            player: None,
            resumed: false,
            pending: VecDeque::new(),
            next_id: 0,
        };
        let welcome = events.frame().await?;
        if welcome["type"] != "welcome" {
            bail!("expected a welcome, got {welcome}");
        }
        events.epoch = welcome["epoch"].as_str().unwrap_or_default().to_owned();
        events.seq = welcome["seq"].as_u64().unwrap_or(0);
        events.player = welcome["player"].as_str().map(str::to_owned);
        events.resumed = welcome["resumed"] == true;
        Ok(events)
    }
}

impl Events {
    /// The next frame the host sends, as JSON; [`Closed`] if it closes the
    /// socket instead.
    pub async fn frame(&mut self) -> Result<Value> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(Closed { code, reason }.into());
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => bail!("the socket ended without a close frame"),
            }
        }
    }

    /// The next event (`state` or `message`), in order. A state the host
    /// sends when it could not resume (`seq` not one past the last) is
    /// the full state: anything else out of order is an error.
    pub async fn event(&mut self) -> Result<Value> {
        let event = match self.pending.pop_front() {
            Some(event) => event,
            None => {
                let frame = self.frame().await?;
                if !matches!(frame["type"].as_str(), Some("state" | "message")) {
                    bail!("expected an event, got {frame}");
                }
                frame
            }
        };
        let seq = event["seq"].as_u64().context("an event has a seq")?;
        if seq != self.seq + 1 && !(seq == self.seq && event["type"] == "state") {
            bail!("event {seq} after {}: {event}", self.seq);
        }
        self.seq = seq;
        Ok(event)
    }

    /// Sends `action` on the socket and waits for its answer; events that
    /// arrive first are kept for [`Events::event`]. A refusal is a
    /// [`Refused`] (status 0: a socket has none).
    pub async fn act(&mut self, action: &Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let frame = json!({"type": "act", "id": id, "action": action});
        self.send_text(frame.to_string()).await?;
        loop {
            let frame = self.frame().await?;
            match frame["type"].as_str() {
                Some("state" | "message") => self.pending.push_back(frame),
                Some("reply") if frame["id"] == id => return Ok(frame),
                Some("error") if frame["id"] == id => {
                    return Err(Refused {
                        status: 0,
                        code: frame["error"]["code"].as_str().unwrap_or("").to_owned(),
                        message: frame["error"]["message"].as_str().unwrap_or("").to_owned(),
                    }
                    .into());
                }
                _ => bail!("unexpected frame while acting: {frame}"),
            }
        }
    }

    /// Sends a text frame as it is (tests send malformed ones).
    pub async fn send_text(&mut self, text: String) -> Result<()> {
        Ok(self.socket.send(Message::Text(text.into())).await?)
    }

    /// Sends a raw WebSocket message (tests send binary frames).
    pub async fn send(&mut self, message: Message) -> Result<()> {
        Ok(self.socket.send(message).await?)
    }

    /// Closes the socket politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
