//! A session's events over a WebSocket, in hoard's frames: the client says
//! `hello` (with a player's token, or none for a spectator), gets `welcome`
//! and the state now, then a `state` after every change; `act` frames are
//! answered with `reply` (after the action's own event) or `error`.

use crate::api::Failure;
use crate::{Native, SOCKET_QUEUE, Watcher};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

pub(crate) async fn upgrade(
    native: &Arc<Native>,
    id: &str,
    mut request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let key = request
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let Some(accept) = key else {
        let mut response = Response::new(Full::new(Bytes::from_static(
            br#"{"error": {"code": "upgrade_required", "message": "this route is a WebSocket"}}"#,
        )));
        *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
        return response;
    };
    let upgrading = hyper::upgrade::on(&mut request);
    let (native, id) = (native.clone(), id.to_owned());
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrading.await {
            let socket =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            run(native, id, socket).await;
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(accept) = header::HeaderValue::from_str(&accept) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    token: Option<String>,
    id: Option<u64>,
    #[serde(borrow)]
    action: Option<&'a RawValue>,
}

fn text(value: serde_json::Value) -> Message {
    Message::Text(value.to_string().into())
}

fn error(id: Option<u64>, failure: &Failure) -> Message {
    text(json!({
        "type": "error", "id": id,
        "error": {"code": failure.code, "message": failure.message},
    }))
}

async fn run<S>(native: Arc<Native>, id: String, socket: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    // The hello: who this socket is.
    let token = loop {
        match stream.next().await {
            Some(Ok(Message::Text(hello))) => match serde_json::from_str::<Frame>(&hello) {
                Ok(frame) if frame.kind == "hello" => break frame.token,
                _ => {
                    let failure = Failure::bad_json("the first frame is a hello".into());
                    let _ = sink.send(error(None, &failure)).await;
                    return;
                }
            },
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    let (frames, mut queued) = mpsc::channel(SOCKET_QUEUE);
    // Watch the session: the welcome and the state now go first.
    let watched = async {
        let live = native.session(&id).await?;
        let mut live = live.lock().await;
        let seat = match &token {
            Some(token) => Some(live.seat(token)?),
            None => None,
        };
        let player = seat.map(|s| live.record.game.players[s].clone());
        let welcome = json!({
            "type": "welcome", "session": id, "player": player, "seq": live.seq,
            "resumed": false,
        });
        let view = live.view(player.as_deref());
        let _ = frames.try_send(text(welcome));
        let _ = frames.try_send(live.state_frame(&view));
        live.watchers.push(Watcher {
            seat,
            frames: frames.clone(),
        });
        Ok::<_, Failure>(())
    };
    if let Err(failure) = watched.await {
        let _ = sink.send(error(None, &failure)).await;
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(frame) = queued.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text_frame) = message else {
            if message.is_close() {
                break;
            }
            continue;
        };
        let answer = match serde_json::from_str::<Frame>(&text_frame) {
            Ok(Frame {
                kind: "act",
                id: request,
                action: Some(action),
                ..
            }) => match &token {
                Some(token) => match native.act(&id, token, action.get()).await {
                    Ok((_, outcome)) => text(json!({
                        "type": "reply", "id": request, "finished": outcome.is_some(),
                    })),
                    Err(failure) => error(request, &failure),
                },
                None => error(
                    request,
                    &Failure::new(
                        StatusCode::BAD_REQUEST,
                        "missing_token",
                        "a spectator cannot act".into(),
                    ),
                ),
            },
            _ => error(
                None,
                &Failure::new(
                    StatusCode::BAD_REQUEST,
                    "bad_frame",
                    "send {\"type\": \"act\", \"id\", \"action\"}".into(),
                ),
            ),
        };
        if frames.send(answer).await.is_err() {
            break;
        }
    }
    // The session's watcher list lets go of this socket at its next event.
    writer.abort();
}
