//! WebSocket events: `GET /v1/sessions/{id}/events`, upgraded with hyper
//! and spoken with tokio-tungstenite.
//!
//! The client's first frame is a `hello` (its player token, if it plays,
//! and where to resume from); the host answers `welcome`, then sends the
//! session's events as they happen, and answers actions sent on the
//! socket. Every frame is a JSON text frame; the README documents them.
//! What the host closes a socket with is [`Close`].
//!
//! Limits: the socket keeps its HTTP connection's place (per client and
//! in all); opening one is rate-limited per client; a frame is at most
//! `realtime.frame_bytes_max`; the hello must come within
//! `hello_timeout_ms`; the host pings every `ping_interval_ms` and closes a
//! socket it has heard nothing from for `idle_timeout_ms`; each socket's
//! queue holds `send_queue_max` events, and a client that lets it fill is
//! closed (the feed drops it; see `realtime`); a write waits at most
//! `server.write_timeout_ms`; actions are rate-limited per player.

use super::connection::Held;
use super::rate::Limited;
use super::routes::{Reply, bearer, limit};
use super::{ApiError, Server};
use crate::realtime::{Event, EventKind, Kick, Resume, Subscription};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::header::{AUTHORIZATION, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::Instrument;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// How long the host tries to send its close frame before it drops the
/// connection.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
type Sink = SplitSink<Socket, Message>;
type Stream = SplitStream<Socket>;

/// Why the host closes a socket: each has its close code, and a reason
/// that starts with a stable snake_case word (also `/metrics`' label).
#[derive(Debug)]
enum Close {
    /// The host is shutting down (1001).
    GoingAway,
    /// A binary frame: the protocol is JSON text (1003).
    Binary,
    /// A frame that breaks the WebSocket protocol (1002).
    Protocol,
    /// A text frame that is not UTF-8 (1007).
    NotUtf8,
    /// A frame over `realtime.frame_bytes_max` (1009).
    TooBig,
    /// The first frame was not a valid `hello` (4000).
    BadHello(String),
    /// No `hello` within `hello_timeout_ms` (4000).
    HelloTimeout,
    /// The subscription was refused (4001 bad token, 4004 unknown
    /// session, 1013 storage down, 1011 a plugin fault), with the same
    /// code an HTTP request would get.
    Refused(ApiError),
    /// The client let its queue of events fill (4008).
    TooSlow,
    /// Nothing heard for `idle_timeout_ms` (4009).
    Idle,
    /// The session moved to another instance (1012): reconnect.
    Moved,
    /// The session's events ended (1000).
    Gone,
}

impl Close {
    fn code(&self) -> u16 {
        match self {
            Close::GoingAway => 1001,
            Close::Binary => 1003,
            Close::Protocol => 1002,
            Close::NotUtf8 => 1007,
            Close::TooBig => 1009,
            Close::BadHello(_) | Close::HelloTimeout => 4000,
            Close::Refused(error) => match error.status {
                StatusCode::UNAUTHORIZED => 4001,
                StatusCode::NOT_FOUND => 4004,
                StatusCode::SERVICE_UNAVAILABLE => 1013,
                _ => 1011,
            },
            Close::TooSlow => 4008,
            Close::Idle => 4009,
            Close::Moved => 1012,
            Close::Gone => 1000,
        }
    }

    /// The label `/metrics` counts it under.
    fn label(&self) -> &'static str {
        match self {
            Close::GoingAway => "shutdown",
            Close::Binary => "binary_frame",
            Close::Protocol => "protocol_error",
            Close::NotUtf8 => "not_utf8",
            Close::TooBig => "frame_too_large",
            Close::BadHello(_) => "bad_hello",
            Close::HelloTimeout => "hello_timeout",
            Close::Refused(error) => match error.status {
                StatusCode::UNAUTHORIZED => "bad_token",
                StatusCode::NOT_FOUND => "unknown_session",
                StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                _ => "failed",
            },
            Close::TooSlow => "too_slow",
            Close::Idle => "idle",
            Close::Moved => "moved",
            Close::Gone => "gone",
        }
    }

    /// `code: sentence`, cut to the 123 bytes a close frame carries.
    fn reason(&self, config: &crate::config::Config) -> String {
        let text = match self {
            Close::GoingAway => "shutdown: the host is shutting down; reconnect and resume".into(),
            Close::Binary => "binary_frame: send JSON text frames".into(),
            Close::Protocol => "protocol_error: the frame breaks the WebSocket protocol".into(),
            Close::NotUtf8 => "not_utf8: a text frame must be UTF-8".into(),
            Close::TooBig => format!(
                "frame_too_large: a frame is at most {} bytes",
                config.realtime.frame_bytes_max
            ),
            Close::BadHello(why) => format!("bad_hello: {why}"),
            Close::HelloTimeout => format!(
                "hello_timeout: send {{\"type\":\"hello\"}} within {} ms",
                config.realtime.hello_timeout_ms
            ),
            Close::Refused(error) => format!("{}: {}", error.code, error.message),
            Close::TooSlow => {
                "too_slow: events piled up faster than the client read them; reconnect and resume"
                    .into()
            }
            Close::Idle => format!(
                "idle: nothing heard for {} ms",
                config.realtime.idle_timeout_ms
            ),
            Close::Moved => {
                "moved: the session moved to another instance; reconnect and resume".into()
            }
            Close::Gone => "gone: the session's events ended".into(),
        };
        cut(text, 123)
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Answers an upgrade request for `session`'s events: checks it (the
/// session exists, a token in `Authorization` is a player's, the client is
/// within its rate) and switches protocols; the socket then runs on its
/// own task, holding the connection's place (`held`).
pub(super) async fn upgrade(
    server: &Arc<Server>,
    client: IpAddr,
    session: &str,
    mut request: Request<Incoming>,
    held: Held,
) -> Reply {
    let accept = handshake(request.headers())?;
    limit(server, Limited::Socket, client)?;
    let headers = request.headers();
    let token = match headers.contains_key(AUTHORIZATION) {
        true => Some(bearer(headers)?),
        false => None,
    };
    // Refused here, a client gets a plain HTTP answer it can read.
    server
        .app
        .sessions()
        .check_token(session, token.as_deref())
        .await?;
    let upgrading = hyper::upgrade::on(&mut request);
    let server = server.clone();
    let session = session.to_owned();
    let span = tracing::info_span!("socket", session = %session);
    tokio::spawn(
        async move {
            let io = match upgrading.await {
                Ok(upgraded) => TokioIo::new(upgraded),
                Err(error) => {
                    tracing::debug!(%error, "the upgrade failed");
                    return;
                }
            };
            let config = socket_config(server.app.config());
            let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            Connection {
                server,
                session,
                token,
                _held: held,
            }
            .run(socket)
            .await;
        }
        .instrument(span),
    );
    Ok(switching(&accept))
}

/// Checks an upgrade request's WebSocket headers: the key to accept it
/// with, or the answer refusing it.
pub(super) fn handshake(headers: &HeaderMap) -> Result<String, ApiError> {
    if !has_token(headers, UPGRADE, "websocket") || !has_token(headers, CONNECTION, "upgrade") {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this route is a WebSocket: connect with `Upgrade: websocket` (see the README)",
        )
        .with_header("upgrade", "websocket"));
    }
    if headers
        .get("sec-websocket-version")
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_version",
            "this host speaks WebSocket version 13",
        )
        .with_header("sec-websocket-version", "13"));
    }
    match headers.get(SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(derive_accept_key(key.as_bytes())),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_websocket_key",
            "an upgrade carries Sec-WebSocket-Key",
        )),
    }
}

/// The answer that switches a connection to the WebSocket protocol.
pub(super) fn switching(accept: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(accept).expect("base64 is a header value"),
    );
    response
}

/// A socket's settings: small buffers (memory per connection), frames
/// bounded by `realtime.frame_bytes_max`.
pub(super) fn socket_config(config: &crate::config::Config) -> WebSocketConfig {
    let frame_max = config.realtime.frame_bytes_max;
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(frame_max))
        .max_frame_size(Some(frame_max))
}

/// Whether a comma-separated header lists `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|item| item.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// A frame from the client, read loosely so each kind can say what is
/// wrong with it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFrame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    /// `hello`: the player's token; none for a spectator.
    #[serde(default)]
    token: Option<String>,
    /// `hello`: where a reconnecting client was.
    #[serde(default)]
    resume: Option<ResumeFrame>,
    /// `act`: echoed in the answer.
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    /// `act`: the action, a JSON object.
    #[serde(default, borrow)]
    action: Option<&'a RawValue>,
    /// `act`: as HTTP's `Idempotency-Key`.
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeFrame {
    epoch: String,
    seq: u64,
}

/// One open socket.
struct Connection {
    server: Arc<Server>,
    session: String,
    /// The token sent in `Authorization` with the upgrade, if any.
    token: Option<String>,
    _held: Held,
}

/// What reading the next frame gave.
enum Read {
    Text(Utf8Bytes),
    /// A ping or pong: the client is there.
    Heard,
    /// The client closed, or the connection broke.
    Ended,
    Closing(Close),
}

async fn read(stream: &mut Stream) -> Read {
    match stream.next().await {
        Some(Ok(Message::Text(text))) => Read::Text(text),
        Some(Ok(Message::Binary(_))) => Read::Closing(Close::Binary),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Read::Heard,
        Some(Ok(Message::Close(_))) | None => Read::Ended,
        Some(Err(WsError::Capacity(
            CapacityError::MessageTooLong { .. } | CapacityError::TooManyHeaders,
        ))) => Read::Closing(Close::TooBig),
        Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => Read::Ended,
        Some(Err(WsError::Protocol(_))) => Read::Closing(Close::Protocol),
        Some(Err(WsError::Utf8(_))) => Read::Closing(Close::NotUtf8),
        Some(Err(error)) => {
            tracing::debug!(%error, "a socket broke");
            Read::Ended
        }
    }
}

impl Connection {
    async fn run(self, socket: Socket) {
        let metrics = self.server.app.metrics();
        metrics.ws_connection(1);
        let (mut sink, mut stream) = socket.split();
        if let Some(close) = self.serve(&mut sink, &mut stream).await {
            metrics.ws_closed(close.label());
            tracing::debug!(?close, "closing a socket");
            let frame = CloseFrame {
                code: CloseCode::from(close.code()),
                reason: close.reason(self.server.app.config()).into(),
            };
            // A client too slow to read its events will not read this
            // either: a short wait, not the connection's write deadline.
            let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(Some(frame)))).await;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
        metrics.ws_connection(-1);
    }

    /// Serves the socket until it ends; what to close it with, if the host
    /// closes it.
    async fn serve(&self, sink: &mut Sink, stream: &mut Stream) -> Option<Close> {
        let config = &self.server.app.config().realtime;
        let hello =
            tokio::time::timeout(Duration::from_millis(config.hello_timeout_ms), read(stream));
        let text = match hello.await {
            Err(_) => return Some(Close::HelloTimeout),
            Ok(Read::Text(text)) => text,
            Ok(Read::Heard) => {
                return Some(Close::BadHello("the first frame must be the hello".into()));
            }
            Ok(Read::Ended) => return None,
            Ok(Read::Closing(close)) => return Some(close),
        };
        let hello = match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(frame) if frame.kind == "hello" && frame.action.is_none() && frame.id.is_none() => {
                frame
            }
            Ok(_) => {
                return Some(Close::BadHello(
                    "the first frame must be {\"type\":\"hello\", \"token\", \"resume\"}".into(),
                ));
            }
            Err(error) => return Some(Close::BadHello(error.to_string())),
        };
        let token = hello.token.or_else(|| self.token.clone());
        let resume = hello.resume.map(|r| Resume {
            epoch: r.epoch,
            seq: r.seq,
        });
        // Boxed, as `answer` below: a socket waits far longer than it
        // works, and its task should not keep a whole action's worth of
        // future while it waits.
        let subscribed = Box::pin(self.server.app.sessions().subscribe(
            &self.session,
            token.as_deref(),
            resume,
            config.send_queue_max,
        ))
        .await;
        let mut subscription = match subscribed {
            Ok(subscription) => subscription,
            Err(error) => return Some(Close::Refused(error.into())),
        };
        let welcome = json!({
            "type": "welcome",
            "session": self.session,
            "player": subscription.audience,
            "epoch": subscription.epoch,
            "seq": subscription.seq,
            "resumed": subscription.resumed,
        });
        if send(sink, welcome.to_string()).await.is_err() {
            return None;
        }
        let mut ping = tokio::time::interval(Duration::from_millis(config.ping_interval_ms));
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let idle = Duration::from_millis(config.idle_timeout_ms);
        let mut heard = Instant::now();
        let shutdown = super::shutting_down(self.server.shutdown.clone());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return Some(Close::GoingAway),
                kick = &mut subscription.kicked => {
                    return Some(match kick {
                        Ok(Kick::TooSlow) => Close::TooSlow,
                        Ok(Kick::Moved) => Close::Moved,
                        // The feed is gone (the host is stopping).
                        Err(_) => Close::Gone,
                    });
                }
                event = subscription.events.recv() => {
                    let Some(event) = event else {
                        return Some(Close::Gone);
                    };
                    if self.deliver(sink, &mut subscription, event).await.is_err() {
                        return None;
                    }
                }
                read = read(stream) => {
                    heard = Instant::now();
                    match read {
                        Read::Text(text) => {
                            let answered = Box::pin(self.answer(
                                sink,
                                &mut subscription,
                                token.as_deref(),
                                text.as_str(),
                            ))
                            .await;
                            if answered.is_err() {
                                return None;
                            }
                        }
                        Read::Heard => {}
                        Read::Ended => return None,
                        Read::Closing(close) => return Some(close),
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() >= idle {
                        return Some(Close::Idle);
                    }
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    /// Writes `first` and whatever else is queued now, with one flush.
    async fn deliver(
        &self,
        sink: &mut Sink,
        subscription: &mut Subscription,
        first: Arc<Event>,
    ) -> Result<(), WsError> {
        let mut batch = vec![first];
        while batch.len() < 32 {
            match subscription.events.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        for event in &batch {
            if let Some(frame) = event_frame(event, &subscription.audience) {
                sink.feed(Message::Text(frame.into())).await?;
            }
        }
        sink.flush().await?;
        let metrics = self.server.app.metrics();
        for event in &batch {
            let kind = match event.kind {
                EventKind::State { .. } => "state",
                EventKind::Message(_) => "message",
            };
            metrics.ws_event_sent(kind, event.made.elapsed());
        }
        Ok(())
    }

    /// Answers a frame after the hello: an action, or an error saying what
    /// is wrong with the frame. The events an action made go out before
    /// its answer.
    async fn answer(
        &self,
        sink: &mut Sink,
        subscription: &mut Subscription,
        token: Option<&str>,
        text: &str,
    ) -> Result<(), WsError> {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(error) => {
                let error = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_json",
                    format!("the frame is not the JSON expected: {error}"),
                );
                return send(sink, error_frame(None, &error)).await;
            }
        };
        let id = frame.id;
        let answer = match frame.kind {
            "act" => self.act(subscription, token, frame).await,
            "hello" => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_frame",
                "this socket has said hello already",
            )),
            other => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_frame",
                format!("no frame type {other:?}: send \"act\""),
            )),
        };
        while let Ok(first) = subscription.events.try_recv() {
            self.deliver(sink, subscription, first).await?;
        }
        let text = match answer {
            Ok(acted) => {
                let mut reply = json!({
                    "type": "reply",
                    "id": id,
                    "seq": acted.seq,
                    "replayed": acted.replayed,
                    "finished": acted.finished,
                });
                if acted.replayed {
                    // No event carries a replayed answer: it goes here.
                    reply["view"] = json!(acted.view);
                }
                reply.to_string()
            }
            Err(error) => error_frame(id, &error),
        };
        send(sink, text).await
    }

    /// Acts as the player the socket said hello as (`token`).
    async fn act(
        &self,
        subscription: &Subscription,
        token: Option<&str>,
        frame: ClientFrame<'_>,
    ) -> Result<Acted, ApiError> {
        let (Some(player), Some(token)) = (&subscription.audience, token) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "a spectator cannot act: say hello with a player's token",
            ));
        };
        let action = frame.action.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                "an act frame carries \"action\", a JSON object",
            )
        })?;
        if frame.token.is_some() || frame.resume.is_some() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_frame",
                "an act frame carries id, action and idempotency_key: the socket acts as the player it said hello as",
            ));
        }
        if !action.get().trim_start().starts_with('{') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                "the action must be a JSON object",
            ));
        }
        self.server
            .rate_limits
            .check_action(&self.session, player)
            .map_err(|wait| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "too many actions from you; try again in {} ms",
                        wait.as_millis() + 1
                    ),
                )
                .retry_after(wait)
            })?;
        let acted = self
            .server
            .app
            .sessions()
            .act(
                &self.session,
                token,
                action.get(),
                frame.idempotency_key.as_deref(),
            )
            .await
            .map_err(ApiError::from)?;
        // Only a replayed answer carries the view (an event carries the
        // rest), so only then is it checked.
        let view = match acted.replayed {
            true => acted.view.and_then(|v| RawValue::from_string(v).ok()),
            false => None,
        };
        Ok(Acted {
            seq: acted.seq,
            replayed: acted.replayed,
            finished: acted.outcome.is_some(),
            view,
        })
    }
}

/// What an action over a socket answers.
struct Acted {
    seq: Option<u64>,
    replayed: bool,
    finished: bool,
    view: Option<Box<RawValue>>,
}

async fn send(sink: &mut Sink, text: String) -> Result<(), WsError> {
    sink.send(Message::Text(text.into())).await
}

fn error_frame(id: Option<&RawValue>, error: &ApiError) -> String {
    let mut frame = json!({
        "type": "error",
        "id": id,
        "error": {"code": error.code, "message": error.message},
    });
    if let Some(seconds) = error.retry_after_s {
        frame["error"]["retry_after_s"] = json!(seconds);
    }
    frame.to_string()
}

/// The frame `audience` gets for `event`; `None` if the event holds no
/// view for it.
fn event_frame(event: &Event, audience: &crate::realtime::Audience) -> Option<String> {
    Some(match &event.kind {
        EventKind::Message(message) => format!(
            r#"{{"type":"message","seq":{},"message":{message}}}"#,
            event.seq
        ),
        EventKind::State { outcome, .. } => {
            let view = event.view(audience)?;
            format!(
                r#"{{"type":"state","seq":{},"finished":{},"outcome":{},"view":{}}}"#,
                event.seq,
                outcome.is_some(),
                outcome.as_deref().unwrap_or("null"),
                view.as_deref().unwrap_or("null"),
            )
        }
    })
}
