//! The HTTP side: hyper's HTTP/1 with keep-alive, one task per connection,
//! routes matched on the path's segments.

use crate::Native;
use bytes::Bytes;
use hokm::game::Refusal;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

/// Request bodies past this are refused.
const BODY_MAX: usize = 64 * 1024;

pub(crate) async fn serve(
    native: Arc<Native>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors, say: let some close.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = stream.set_nodelay(true);
        let native = native.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let native = native.clone();
                async move { Ok::<_, std::convert::Infallible>(route(&native, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn route(native: &Arc<Native>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path: Vec<&str> = request.uri().path().split('/').skip(1).collect();
    let answer = match (request.method(), path.as_slice()) {
        (&Method::GET, ["healthz"]) => Ok((StatusCode::OK, json!({"status": "ok"}).to_string())),
        (&Method::POST, ["v1", "games", "hokm", "sessions"]) => create(native, request).await,
        (&Method::POST, ["v1", "sessions", id, "join"]) => {
            let id = id.to_string();
            join(native, &id, request).await
        }
        (&Method::POST, ["v1", "sessions", id, "actions"]) => {
            let id = id.to_string();
            act(native, &id, request).await
        }
        (&Method::GET, ["v1", "sessions", id, "view"]) => {
            let token = bearer(&request);
            match token {
                Ok(token) => native
                    .view(id, &token)
                    .await
                    .map(|view| (StatusCode::OK, body(&Viewed { view: &view }))),
                Err(failure) => Err(failure),
            }
        }
        (&Method::GET, ["v1", "sessions", id, "events"]) => {
            let id = id.to_string();
            return crate::socket::upgrade(native, &id, request).await;
        }
        _ => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route".into(),
        )),
    };
    match answer {
        Ok((status, body)) => respond(status, body),
        Err(failure) => respond(
            failure.status,
            json!({"error": {"code": failure.code, "message": failure.message}}).to_string(),
        ),
    }
}

/// A status and the JSON body's text.
type Answer = Result<(StatusCode, String), Failure>;

fn body(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("an answer serializes")
}

#[derive(Serialize)]
struct Viewed<'a> {
    view: &'a RawValue,
}

#[derive(Serialize)]
struct Acted<'a> {
    view: &'a RawValue,
    outcome: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    seed: Option<u64>,
    config: Option<Value>,
}

async fn create(native: &Native, request: Request<Incoming>) -> Answer {
    let body: Create = read_json(request).await?;
    let config = body
        .config
        .map_or_else(|| "{}".to_owned(), |c| c.to_string());
    let session = native.create(body.seed, &config).await?;
    Ok((
        StatusCode::CREATED,
        json!({"session": session, "game": "hokm"}).to_string(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Join {
    name: String,
}

async fn join(native: &Native, id: &str, request: Request<Incoming>) -> Answer {
    let body: Join = read_json(request).await?;
    let valid = (1..=32).contains(&body.name.len())
        && body
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "a name is 1 to 32 ASCII letters, digits, `-` or `_`".into(),
        ));
    }
    let token = native.join(id, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        json!({"session": id, "player": body.name, "token": token}).to_string(),
    ))
}

async fn act(native: &Native, id: &str, request: Request<Incoming>) -> Answer {
    let token = bearer(&request)?;
    // Well-formed JSON first (`bad_json`); the rules judge the action.
    let action: Box<RawValue> = read_json(request).await?;
    let (view, outcome) = native.act(id, &token, action.get()).await?;
    Ok((
        StatusCode::OK,
        body(&Acted {
            view: &view,
            outcome,
        }),
    ))
}

/// The bearer token; the scheme in any case, as RFC 9110 has it.
fn bearer<B>(request: &Request<B>) -> Result<String, Failure> {
    let missing = || {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send your token as `Authorization: Bearer TOKEN`".into(),
        )
    };
    let header = request.headers().get(header::AUTHORIZATION);
    let (scheme, token) = header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim().to_owned())
}

async fn read_body(request: Request<Incoming>) -> Result<Bytes, Failure> {
    match Limited::new(request.into_body(), BODY_MAX).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a body is at most {BODY_MAX} bytes"),
        )),
        Err(error) => Err(Failure::bad_json(format!("reading the body: {error}"))),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    request: Request<Incoming>,
) -> Result<T, Failure> {
    let body = read_body(request).await?;
    serde_json::from_slice(&body).map_err(|e| Failure::bad_json(e.to_string()))
}

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A refused request: hoard's status and code for the same case.
pub(crate) struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(status: StatusCode, code: &'static str, message: String) -> Failure {
        Failure {
            status,
            code,
            message,
        }
    }

    pub fn bad_json(message: String) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "bad_json", message)
    }

    pub fn unknown_session() -> Failure {
        Failure::new(
            StatusCode::NOT_FOUND,
            "unknown_session",
            "no such session".into(),
        )
    }

    pub fn name_taken(name: &str) -> Failure {
        Failure::new(
            StatusCode::CONFLICT,
            "name_taken",
            format!("{name:?} is already seated in this session"),
        )
    }

    pub fn bad_token() -> Failure {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "send a player's token of this session as `Authorization: Bearer TOKEN`".into(),
        )
    }

    pub fn unavailable(message: String) -> Failure {
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            message,
        )
    }

    pub fn refused(refusal: Refusal) -> Failure {
        let conflict =
            |code, message: &str| Failure::new(StatusCode::CONFLICT, code, message.into());
        match refusal {
            Refusal::Malformed(code, message) => {
                Failure::new(StatusCode::BAD_REQUEST, code, message)
            }
            Refusal::Illegal(code, message) => {
                Failure::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            Refusal::NotYourTurn => conflict("not_your_turn", "it is not your turn"),
            Refusal::Full => conflict("session_full", "the session has no free seat"),
            Refusal::NotSeated => Failure::new(
                StatusCode::FORBIDDEN,
                "not_seated",
                "you are not seated in this session".into(),
            ),
            Refusal::Finished => conflict("game_finished", "the game has ended"),
        }
    }
}
