//! Cluster mode: a request for a session another instance owns goes to
//! that instance, and its answer comes back as it is. An HTTP request is
//! forwarded whole (hyper's pooled client); a WebSocket is relayed frame
//! by frame, so the owner serves the session's events and actions to every
//! socket whichever instance it came in through.
//!
//! A forwarded request carries `Hoard-Forwarded-By`; an instance that no
//! longer owns the session when it arrives answers 503 `moved` instead of
//! forwarding again. An owner that cannot be reached gets 503
//! `owner_unavailable`, with `Retry-After` the time its lease takes to
//! run out (then the next instance asked takes the session).

use super::connection::Held;
use super::rate::Limited;
use super::routes::{Reply, limit};
use super::socket::{handshake, socket_config, switching};
use super::{ApiError, Server};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited as LimitedBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

/// Names the instance a request was forwarded from.
pub(super) const FORWARDED_BY: &str = "hoard-forwarded-by";

/// The longest an owner may take to answer a forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest the owner may take to accept a relayed socket.
const RELAY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer relayed back (the owner's own limits keep its
/// answers far smaller).
const ANSWER_BYTES_MAX: usize = 16 << 20;

/// The client instances forward with: keep-alive connections to each peer.
pub(super) type Forwarder = Client<HttpConnector, Incoming>;

pub(super) fn forwarder() -> Forwarder {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    Client::builder(TokioExecutor::new()).build(connector)
}

fn owner_unavailable(server: &Server) -> ApiError {
    server.app.metrics().forwarded("unavailable");
    let lease_ms = server.app.config().cluster.lease_ms;
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "owner_unavailable",
        "the instance that owns this session does not answer; another takes it over when its lease runs out",
    )
    .retry_after(Duration::from_millis(lease_ms))
}

/// Sends `request` (for a session `owner` owns) to `owner` and answers
/// with what it answers.
pub(super) async fn forward(
    server: &Arc<Server>,
    client: IpAddr,
    owner: &str,
    request: Request<Incoming>,
    held: Held,
) -> Reply {
    let cluster = server
        .app
        .cluster()
        .expect("only cluster mode forwards requests");
    if request.headers().contains_key(FORWARDED_BY) {
        // Sent here as the owner, which this instance is no longer.
        return Err(crate::session::SessionError::Moved.into());
    }
    let Some(url) = cluster.url_of(owner) else {
        return Err(owner_unavailable(server));
    };
    if request.headers().contains_key(UPGRADE) {
        return relay(server, client, &url, request, held).await;
    }
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = format!("{url}{path}")
        .parse()
        .map_err(|_| owner_unavailable(server))?;
    for hop in [CONNECTION, HOST, TRANSFER_ENCODING] {
        parts.headers.remove(hop);
    }
    parts.headers.remove("keep-alive");
    parts.headers.insert(
        FORWARDED_BY,
        HeaderValue::from_str(cluster.id()).expect("an instance id is a header value"),
    );
    let sent = server.forwarder.request(Request::from_parts(parts, body));
    let answer = match tokio::time::timeout(FORWARD_TIMEOUT, sent).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            tracing::warn!(%error, owner, "forwarding to the session's owner failed");
            return Err(owner_unavailable(server));
        }
        Err(_) => return Err(owner_unavailable(server)),
    };
    server.app.metrics().forwarded("http");
    let (mut parts, body) = answer.into_parts();
    let body = LimitedBody::new(body, ANSWER_BYTES_MAX)
        .collect()
        .await
        .map_err(|_| owner_unavailable(server))?
        .to_bytes();
    for hop in [CONNECTION, TRANSFER_ENCODING, CONTENT_LENGTH] {
        parts.headers.remove(hop);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Relays a WebSocket to the owner: connects there first (so the owner's
/// refusal, such as 401 or 404, is this request's answer), then switches
/// the client's connection and passes frames both ways.
async fn relay(
    server: &Arc<Server>,
    client: IpAddr,
    url: &str,
    mut request: Request<Incoming>,
    held: Held,
) -> Reply {
    let accept = handshake(request.headers())?;
    limit(server, Limited::Socket, client)?;
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let target = format!("{}{path}", url.replacen("http", "ws", 1));
    let mut upstream = target
        .as_str()
        .into_client_request()
        .map_err(|_| owner_unavailable(server))?;
    if let Some(token) = request.headers().get(AUTHORIZATION) {
        upstream.headers_mut().insert(AUTHORIZATION, token.clone());
    }
    let me = server.app.cluster().expect("cluster mode").id();
    upstream.headers_mut().insert(
        FORWARDED_BY,
        HeaderValue::from_str(me).expect("an instance id is a header value"),
    );
    // The owner is trusted with what it sends (a view may be larger than
    // what a client may send); small buffers all the same.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let connecting = tokio_tungstenite::connect_async_with_config(upstream, Some(config), true);
    let Ok(connected) = tokio::time::timeout(RELAY_CONNECT_TIMEOUT, connecting).await else {
        return Err(owner_unavailable(server));
    };
    let owner = match connected {
        Ok((owner, _)) => owner,
        Err(tokio_tungstenite::tungstenite::Error::Http(refused)) => {
            let (parts, body) = refused.into_parts();
            let body = Bytes::from(body.unwrap_or_default());
            return Ok(Response::from_parts(parts, Full::new(body)));
        }
        Err(error) => {
            tracing::warn!(%error, "relaying a socket to the session's owner failed");
            return Err(owner_unavailable(server));
        }
    };
    server.app.metrics().forwarded("socket");
    let upgrading = hyper::upgrade::on(&mut request);
    let server = server.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrading.await else {
            return;
        };
        let config = socket_config(server.app.config());
        let player =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        pipe(&server, player, owner).await;
        drop(held);
    });
    Ok(switching(&accept))
}

/// Passes frames between the player's socket and the owner's until either
/// ends. The owner's pings go through to the player and its pongs back;
/// the relay's own library answers the owner too, so the relay watches the
/// player's silence itself (`realtime.idle_timeout_ms`).
async fn pipe<P, O>(server: &Server, player: WebSocketStream<P>, owner: WebSocketStream<O>)
where
    P: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    O: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let metrics = server.app.metrics();
    metrics.ws_connection(1);
    let (mut to_player, mut from_player) = player.split();
    let (mut to_owner, mut from_owner) = owner.split();
    let realtime = &server.app.config().realtime;
    let idle = Duration::from_millis(realtime.idle_timeout_ms);
    let mut watch = tokio::time::interval(Duration::from_millis(realtime.ping_interval_ms));
    let mut heard = tokio::time::Instant::now();
    let shutdown = super::shutting_down(server.shutdown.clone());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                let going = CloseFrame {
                    code: CloseCode::from(1001),
                    reason: "shutdown: the host is shutting down; reconnect and resume".into(),
                };
                let _ = to_player.send(Message::Close(Some(going))).await;
                metrics.ws_closed("shutdown");
                break;
            }
            _ = watch.tick() => {
                if heard.elapsed() >= idle {
                    let silent = CloseFrame {
                        code: CloseCode::from(4009),
                        reason: "idle: nothing heard from the client".into(),
                    };
                    let _ = to_player.send(Message::Close(Some(silent))).await;
                    metrics.ws_closed("idle");
                    break;
                }
            }
            frame = from_player.next() => match frame {
                // Pongs answer the owner's pings: they go on too.
                Some(Ok(frame)) => {
                    heard = tokio::time::Instant::now();
                    let closing = frame.is_close();
                    if to_owner.send(frame).await.is_err() || closing {
                        break;
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(%error, "a relayed player's socket broke");
                    break;
                }
                None => break,
            },
            frame = from_owner.next() => match frame {
                Some(Ok(frame)) => {
                    let closing = frame.is_close();
                    if to_player.send(frame).await.is_err() || closing {
                        break;
                    }
                }
                _ => {
                    // The owner went away: the player reconnects, and the
                    // session's next owner serves it.
                    let gone = CloseFrame {
                        code: CloseCode::from(1012),
                        reason: "owner_gone: the session's instance went away; reconnect and resume"
                            .into(),
                    };
                    let _ = to_player.send(Message::Close(Some(gone))).await;
                    metrics.ws_closed("owner_gone");
                    break;
                }
            },
        }
    }
    let _ = to_owner.close().await;
    let _ = to_player.close().await;
    metrics.ws_connection(-1);
}
