//! Request routing and handlers: parse, call [`Sessions`], render JSON.

use super::{ApiError, App};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// Routes one request; never fails (errors become JSON error responses).
pub(super) async fn handle(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match route(app, request).await {
        Ok(response) => response,
        Err(error) => {
            let mut response = json_response(error.status, error.to_json());
            if error.status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

async fn route(app: &App, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => ok(json!({"status": "ok"})),
        (&Method::GET, ["readyz"]) => ready(app).await,
        (&Method::GET, ["v1", "games"]) => games(app),
        (&Method::POST, ["v1", "games", game, "sessions"]) => {
            let body: CreateRequest = read_json(app, request).await?;
            let config = body
                .config
                .map(|c| c.to_string())
                .unwrap_or_else(|| "{}".to_owned());
            let created = app.sessions.create(game, &config, body.seed).await?;
            reply(
                StatusCode::CREATED,
                json!({"session": created.session, "game": game}),
            )
        }
        (&Method::GET, ["v1", "sessions", id]) => {
            let summary = app.sessions.summary(id).await?;
            let view = raw(summary.view)?;
            let outcome = summary.outcome.map(raw).transpose()?;
            ok(json!({
                "session": id, "game": summary.game, "players": summary.players,
                "actions": summary.actions, "finished": outcome.is_some(),
                "outcome": outcome, "view": view,
            }))
        }
        (&Method::POST, ["v1", "sessions", id, "join"]) => {
            let body: JoinRequest = read_json(app, request).await?;
            let joined = app.sessions.join(id, &body.name).await?;
            reply(
                StatusCode::CREATED,
                json!({"session": id, "player": joined.player, "token": joined.token}),
            )
        }
        (&Method::POST, ["v1", "sessions", id, "actions"]) => {
            let token = bearer(&request)?;
            let action: Box<RawValue> = read_json(app, request).await?;
            let acted = app.sessions.act(id, &token, action.get()).await?;
            let outcome = acted.outcome.map(raw).transpose()?;
            let view = acted.view.map(raw).transpose()?;
            ok(json!({"view": view, "outcome": outcome}))
        }
        (&Method::GET, ["v1", "sessions", id, "view"]) => {
            let token = bearer(&request)?;
            ok(json!({"view": raw(app.sessions.view(id, &token).await?)?}))
        }
        (_, ["healthz" | "readyz"])
        | (_, ["v1", "games"])
        | (_, ["v1", "games", _, "sessions"])
        | (_, ["v1", "sessions", _])
        | (_, ["v1", "sessions", _, "join" | "actions" | "view"]) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// The game's own settings; `{}` when absent.
    #[serde(default)]
    config: Option<serde_json::Value>,
    /// Fixes every random choice, for replays and tests.
    #[serde(default)]
    seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    name: String,
}

async fn ready(app: &App) -> Reply {
    let hot = app.storage.hot.ping().await;
    let cold = app.storage.cold.ping().await;
    let state =
        |r: &Result<(), crate::storage::Error>| if r.is_ok() { "ok" } else { "unavailable" };
    let body = json!({"status": if hot.is_ok() && cold.is_ok() { "ok" } else { "unavailable" }, "hot": state(&hot), "cold": state(&cold)});
    let status = if hot.is_ok() && cold.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply(status, body)
}

fn games(app: &App) -> Reply {
    let games: Vec<_> = app
        .sessions
        .games()
        .into_iter()
        .map(|(name, info)| json!({
            "name": name, "game": info.name, "version": info.version, "description": info.description,
            "min_players": info.min_players, "max_players": info.max_players,
        }))
        .collect();
    ok(json!({"games": games}))
}

/// The bearer token of the request.
fn bearer(request: &Request<Incoming>) -> Result<String, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send your player token as `Authorization: Bearer TOKEN`",
        )
    };
    let header = request.headers().get(AUTHORIZATION).ok_or_else(missing)?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(missing)?;
    Ok(token.trim().to_owned())
}

/// Reads a body of at most `server.body_bytes_max` and parses it as JSON. An
/// empty body reads as `{}`.
async fn read_json<T: for<'de> Deserialize<'de>>(
    app: &App,
    request: Request<Incoming>,
) -> Result<T, ApiError> {
    let max = app.config.server.body_bytes_max;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is over the limit of {max} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return Err(too_large());
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let body = Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "the request body could not be read",
                )
            }
        })?;
    let bytes = body.to_bytes();
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not the JSON expected: {error}"),
        )
    })
}

/// Wraps a plugin's JSON document; a plugin that returns something else has
/// failed.
fn raw(document: String) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(document).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_failed",
            "the plugin returned a document that is not JSON",
        )
    })
}

fn ok(body: serde_json::Value) -> Reply {
    reply(StatusCode::OK, body)
}

fn reply(status: StatusCode, body: serde_json::Value) -> Reply {
    Ok(json_response(status, body.to_string()))
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
