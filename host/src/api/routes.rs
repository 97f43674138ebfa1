//! Request routing and handlers: parse, call [`Sessions`], render JSON.
//!
//! [`Sessions`]: crate::session::Sessions

use super::connection::Held;
use super::rate::Limited;
use super::{ApiError, Server};
use crate::accounts::Account;
use crate::app::App;
use crate::session::Fairness;
use crate::storage::resilient::BreakerState;
use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_TYPE, RETRY_AFTER, TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited as LimitedBody};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// Routes one request from `client`; never fails (errors become JSON error
/// responses). Every answer says, in `Hoard-Degraded`, which storage runs
/// degraded (a backend down, or writes waiting to replay), and is timed for
/// `/metrics`.
pub(super) async fn handle(
    server: &Arc<Server>,
    client: IpAddr,
    request: Request<Incoming>,
    held: Held,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let route = Route::of(request.uri().path());
    let name = route.map_or("not_found", Route::name);
    if let Some(session) = route.and_then(Route::session) {
        tracing::Span::current().record("session", session);
    }
    let mut response = match route_request(server, client, request, held).await {
        Ok(response) => response,
        Err(error) => error_response(error),
    };
    if let Some(cluster) = server.app.cluster()
        && !response.headers().contains_key(HOARD_INSTANCE)
        && let Ok(id) = HeaderValue::from_str(cluster.id())
    {
        // Which instance answered (a forwarded answer names its owner).
        response.headers_mut().insert(HOARD_INSTANCE, id);
    }
    if let Some(resilience) = server.app.resilience() {
        let degraded = resilience.degraded();
        if !degraded.is_empty()
            && let Ok(value) = HeaderValue::from_str(&degraded.join(", "))
        {
            response.headers_mut().insert(HOARD_DEGRADED, value);
        }
    }
    server
        .app
        .metrics()
        .http_request(name, response.status().as_u16(), started.elapsed());
    response
}

/// Most open sessions `GET /v1/games/{game}/sessions` lists.
const OPEN_LISTED_MAX: usize = 50;

/// Names the instance that answered, in cluster mode.
const HOARD_INSTANCE: &str = "hoard-instance";

/// Tells players which storage runs degraded, as seed 001's "player
/// notification" asks: writes are kept, but may reach their backend late.
const HOARD_DEGRADED: &str = "hoard-degraded";

pub(super) fn error_response(error: ApiError) -> Response<Full<Bytes>> {
    let mut response = json_response(error.status, error.to_json());
    let headers = response.headers_mut();
    if error.status == StatusCode::UNAUTHORIZED {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(seconds) = error.retry_after_s {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(methods) = error.allow {
        headers.insert(ALLOW, HeaderValue::from_static(methods));
    }
    if error.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    if error.close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some((name, value)) = error.header {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// What a path names.
#[derive(Clone, Copy)]
enum Route<'a> {
    /// A page or file of the browser client (`web`).
    Web(&'static super::web::Asset),
    Health,
    Ready,
    Metrics,
    Admin(&'a str),
    Games,
    Create(&'a str),
    Session(&'a str),
    Join(&'a str),
    Actions(&'a str),
    View(&'a str),
    Events(&'a str),
    Register,
    Login,
    Me,
    AccountExport,
    AccountImport,
    Rpc(&'a str, &'a str),
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Option<Route<'a>> {
        if let Some(rest) = path.strip_prefix("/admin/v1/") {
            return Some(Route::Admin(rest));
        }
        if let Some(asset) = super::web::asset(path) {
            return Some(Route::Web(asset));
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        Some(match segments.as_slice() {
            ["healthz"] => Route::Health,
            ["readyz"] => Route::Ready,
            ["metrics"] => Route::Metrics,
            ["v1", "games"] => Route::Games,
            ["v1", "games", game, "sessions"] => Route::Create(game),
            ["v1", "games", game, "rpc", name] => Route::Rpc(game, name),
            ["v1", "sessions", id] => Route::Session(id),
            ["v1", "sessions", id, "join"] => Route::Join(id),
            ["v1", "sessions", id, "actions"] => Route::Actions(id),
            ["v1", "sessions", id, "view"] => Route::View(id),
            ["v1", "sessions", id, "events"] => Route::Events(id),
            ["v1", "accounts"] => Route::Register,
            ["v1", "login"] => Route::Login,
            ["v1", "accounts", "me"] => Route::Me,
            ["v1", "accounts", "me", "export"] => Route::AccountExport,
            ["v1", "accounts", "me", "import"] => Route::AccountImport,
            _ => return None,
        })
    }

    /// The route's name, as `/metrics` labels requests.
    fn name(self) -> &'static str {
        match self {
            Route::Web(_) => "web",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
            Route::Admin(_) => "admin",
            Route::Games => "games",
            Route::Create(_) => "create",
            Route::Session(_) => "session",
            Route::Join(_) => "join",
            Route::Actions(_) => "actions",
            Route::View(_) => "view",
            Route::Events(_) => "events",
            Route::Register => "register",
            Route::Login => "login",
            Route::Me => "account",
            Route::AccountExport => "account-export",
            Route::AccountImport => "account-import",
            Route::Rpc(..) => "rpc",
        }
    }

    /// The session the route names, if it names one.
    fn session(self) -> Option<&'a str> {
        match self {
            Route::Session(id)
            | Route::Join(id)
            | Route::Actions(id)
            | Route::View(id)
            | Route::Events(id) => Some(id),
            _ => None,
        }
    }

    /// The methods the route answers, as an `Allow` header lists them. A
    /// route that answers GET answers HEAD too (hyper sends no body).
    /// Admin routes check their own methods.
    fn methods(self) -> &'static str {
        match self {
            Route::Create(_) => "GET, HEAD, POST",
            Route::Join(_)
            | Route::Actions(_)
            | Route::Register
            | Route::Login
            | Route::AccountExport
            | Route::AccountImport
            | Route::Rpc(..) => "POST",
            Route::Admin(_) => "GET, HEAD, POST, DELETE",
            _ => "GET, HEAD",
        }
    }

    fn allows(self, method: &Method) -> bool {
        match self.methods() {
            "POST" => method == Method::POST,
            "GET, HEAD" => method == Method::GET || method == Method::HEAD,
            "GET, HEAD, POST" => {
                method == Method::GET || method == Method::HEAD || method == Method::POST
            }
            _ => true,
        }
    }
}

async fn route_request(
    server: &Arc<Server>,
    client: IpAddr,
    request: Request<Incoming>,
    held: Held,
) -> Reply {
    let path = request.uri().path().to_owned();
    let Some(route) = Route::of(&path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}"),
        ));
    };
    let method = request.method().clone();
    if !route.allows(&method) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}; use {}", route.methods()),
        )
        .allow(route.methods()));
    }
    check_codings(request.headers())?;
    let app = &server.app;
    let sessions = app.sessions();
    if let Route::Join(_) = route {
        // Here, where the client came in, even if the owner is elsewhere.
        limit(server, Limited::Join, client)?;
    }
    if let Some(id) = route.session()
        && let Some(owner) = sessions.owner_elsewhere(id).await?
    {
        return super::forward::forward(server, client, &owner, request, held).await;
    }
    match route {
        Route::Web(asset) => super::web::serve(asset, request.headers()),
        Route::Health => ok(json!({"status": "ok"})),
        Route::Ready => ready(server).await,
        Route::Metrics => {
            let text = app.metrics().render(
                sessions.live_count(),
                sessions.instances_kept(),
                app.resilience().map(|r| &**r),
            );
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(response)
        }
        Route::Admin(rest) => super::admin::route(server, rest, request).await,
        Route::Games => games(server),
        Route::Create(game) if method != Method::POST => {
            if app.catalog().current(game).is_none() {
                return Err(crate::session::SessionError::UnknownGame(game.to_owned()).into());
            }
            let open: Vec<_> = sessions
                .open_sessions(game, OPEN_LISTED_MAX)
                .into_iter()
                .map(|o| {
                    json!({
                        "session": o.session, "players": o.players, "seats": o.seats,
                        "created_ms": o.created_ms,
                    })
                })
                .collect();
            ok(json!({"game": game, "sessions": open}))
        }
        Route::Create(game) => {
            // A client over its rate is refused before its body is read.
            limit(server, Limited::Create, client)?;
            let body: CreateRequest = read_json(server, request).await?;
            let config = body
                .config
                .map(|c| c.to_string())
                .unwrap_or_else(|| "{}".to_owned());
            let created = sessions
                .create(game, &config, body.seed, body.listed)
                .await?;
            reply(
                StatusCode::CREATED,
                json!({
                    "session": created.session, "game": game,
                    "fairness": fairness(&created.fairness),
                }),
            )
        }
        Route::Session(id) => {
            let summary = sessions.summary(id).await?;
            let view = raw(summary.view)?;
            let outcome = summary.outcome.map(raw).transpose()?;
            ok(json!({
                "session": id, "game": summary.game, "players": summary.players,
                "actions": summary.actions, "finished": outcome.is_some(),
                "outcome": outcome, "view": view,
                "fairness": fairness(&summary.fairness),
            }))
        }
        Route::Join(id) => {
            // An account's token seats the account; none seats a guest.
            let account = account_of(app, request.headers()).await?;
            let body: JoinRequest = read_json(server, request).await?;
            let name = match (&account, body.name) {
                (Some(account), None) => account.name.clone(),
                (Some(account), Some(name)) if name == account.name => name,
                (Some(account), Some(_)) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "name_mismatch",
                        format!(
                            "an account plays under its own name, {:?}; leave out `name`",
                            account.name
                        ),
                    ));
                }
                (None, Some(name)) => {
                    if app.accounts().exists(&name).await? {
                        return Err(ApiError::new(
                            StatusCode::CONFLICT,
                            "name_is_an_account",
                            format!(
                                "{name:?} is an account's name: log in to play as it, or choose another name"
                            ),
                        ));
                    }
                    name
                }
                (None, None) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_json",
                        "send {\"name\": ...} to join as a guest, or an account token as `Authorization: Bearer TOKEN`",
                    ));
                }
            };
            let account_id = account.as_ref().map(|a| a.id.as_str());
            let joined = sessions.join(id, &name, account_id).await?;
            reply(
                StatusCode::CREATED,
                json!({
                    "session": id, "player": joined.player, "token": joined.token,
                    "account": account_id,
                }),
            )
        }
        Route::Register => {
            limit(server, Limited::Register, client)?;
            let body: Credentials = read_json(server, request).await?;
            let account = app.accounts().register(&body.name, &body.secret).await?;
            reply(
                StatusCode::CREATED,
                json!({"account": account.id, "name": account.name}),
            )
        }
        Route::Login => {
            limit(server, Limited::Login, client)?;
            let body: Credentials = read_json(server, request).await?;
            let (account, token) = app.accounts().login(&body.name, &body.secret).await?;
            ok(json!({
                "account": account.id, "name": account.name, "token": token,
                "expires_in_ms": app.config().accounts.token_ttl_ms,
            }))
        }
        Route::Rpc(game, name) => {
            let caller = account_of(app, request.headers()).await?;
            let input: Box<RawValue> = read_json(server, request).await?;
            let answer = app
                .rpcs()
                .call(game, name, caller.as_ref(), input.get())
                .await?;
            ok(json!({"result": raw(answer)?}))
        }
        Route::Me => {
            let account = app.accounts().by_token(&bearer(request.headers())?).await?;
            ok(json!({"account": account.id, "name": account.name}))
        }
        Route::AccountExport => {
            let account = app.accounts().by_token(&bearer(request.headers())?).await?;
            let dump = crate::data::account::export(app.storage(), &account_data(app), &account.id)
                .await?;
            let mut response = Response::new(Full::new(Bytes::from(dump)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            Ok(response)
        }
        Route::AccountImport => {
            let account = app.accounts().by_token(&bearer(request.headers())?).await?;
            if !app.config().accounts.imports {
                return Err(crate::data::account::TransferError::Disabled.into());
            }
            let on_conflict = on_conflict(request.uri().query())?;
            let max = app.config().accounts.import_bytes_max;
            let dump = read_body(server, request, max).await?;
            let imported = crate::data::account::import(
                app.storage(),
                &account_data(app),
                &account.id,
                &dump,
                on_conflict,
            )
            .await?;
            ok(json!({
                "written": imported.written, "unchanged": imported.unchanged,
                "skipped": imported.skipped,
            }))
        }
        Route::Actions(id) => {
            let token = bearer(request.headers())?;
            let key = idempotency_key(request.headers())?;
            let action: Box<RawValue> = read_json(server, request).await?;
            let acted = sessions
                .act(id, &token, action.get(), key.as_deref())
                .await?;
            let replayed = acted.replayed;
            let outcome = acted.outcome.map(raw).transpose()?;
            let view = acted.view.map(raw).transpose()?;
            let mut response = ok_typed(&Acted {
                view: view.as_deref(),
                outcome: outcome.as_deref(),
            });
            if replayed {
                response
                    .headers_mut()
                    .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            }
            Ok(response)
        }
        Route::View(id) => {
            let token = bearer(request.headers())?;
            let view = raw(sessions.view(id, &token).await?)?;
            Ok(ok_typed(&Viewed { view: &view }))
        }
        Route::Events(id) => super::socket::upgrade(server, client, id, request, held).await,
    }
}

/// Each served game's namespace and the collections it keys by account.
fn account_data(app: &App) -> Vec<crate::data::account::Owned> {
    app.catalog()
        .games()
        .into_iter()
        .map(|(_, plugin)| {
            (
                plugin.namespace().clone(),
                plugin.account_collections().to_vec(),
            )
        })
        .collect()
}

/// `?on_conflict=fail|skip|overwrite` (default `fail`).
fn on_conflict(query: Option<&str>) -> Result<crate::data::OnConflict, ApiError> {
    use crate::data::OnConflict;
    let query = Query::parse(query.unwrap_or(""));
    match query.get("on_conflict") {
        None | Some("fail") => Ok(OnConflict::Fail),
        Some("skip") => Ok(OnConflict::Skip),
        Some("overwrite") => Ok(OnConflict::Overwrite),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("on_conflict={other:?}: use fail, skip or overwrite"),
        )),
    }
}

/// A query string's parameters (`name=value&...`, form-decoded).
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(query: &str) -> Query {
        Query(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn number(&self, name: &str, default: u64) -> Result<u64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!("{name} must be a whole number"),
                )
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// The game's own settings; `{}` when absent.
    #[serde(default)]
    config: Option<serde_json::Value>,
    /// A seed chosen by the client: only where `sessions.client_seeds`
    /// allows it (replays, tests, practice).
    #[serde(default)]
    seed: Option<u64>,
    /// Shown in the lobby (`GET /v1/games/{game}/sessions`) once someone
    /// sits at it; unlisted, a session is reached only by its id.
    #[serde(default)]
    listed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinRequest {
    /// A guest's name; an account plays under its own.
    #[serde(default)]
    name: Option<String>,
}

/// An account's name and secret (`POST /v1/accounts`, `POST /v1/login`).
/// Not `Debug`: the secret must not reach a log.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    name: String,
    secret: String,
}

/// The commitment, and the seed and nonce once revealed.
fn fairness(fairness: &Fairness) -> serde_json::Value {
    let (seed, nonce) = match &fairness.revealed {
        Some((seed, nonce)) => (json!(seed), json!(nonce)),
        None => (json!(null), json!(null)),
    };
    json!({
        "fair_play": fairness.fair_play,
        "commitment": fairness.commitment,
        "seed": seed,
        "nonce": nonce,
    })
}

pub(super) fn limit(server: &Server, call: Limited, client: IpAddr) -> Result<(), ApiError> {
    if server.app.cluster().is_some_and(|c| c.is_peer(client)) {
        // Forwarded by another instance, which limited it where it came in.
        return Ok(());
    }
    server.rate_limits.check(call, client).map_err(|wait| {
        let what = match call {
            Limited::Create => "sessions created",
            Limited::Join => "joins",
            Limited::Register => "registrations",
            Limited::Login => "login attempts",
            Limited::Socket => "sockets opened",
        };
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many {what} from your address; try again in {} s",
                wait.as_secs() + 1
            ),
        )
        .retry_after(wait)
    })
}

/// Readiness: `ok`; `degraded` (still 200) while a backend is down or
/// writes wait to replay, with the reasons; 503 when a storage cannot
/// serve: a backend down with no outage layer, or an outbox past
/// `storage.resilience.ready_fill_percent` (a load balancer should send
/// new players elsewhere before writes are refused).
async fn ready(server: &Server) -> Reply {
    let app = &server.app;
    let storage = app.storage();
    let mut reasons: Vec<String> = Vec::new();
    let mut serving = true;
    let mut capabilities = serde_json::Map::new();
    let guarded: Vec<_> = app.resilience().map(|r| r.health()).unwrap_or_default();
    for (capability, pinged) in [
        ("hot", storage.hot.ping().await),
        ("cold", storage.cold.ping().await),
    ] {
        let health = guarded.iter().find(|h| h.capability == capability);
        let state = match (health, &pinged) {
            (Some(health), _) if health.degraded() => {
                let fill = health.fill();
                let full = app.resilience().is_some_and(|r| fill >= r.ready_fill());
                if full {
                    serving = false;
                    reasons.push(format!(
                        "{capability} storage's outbox is {:.0}% full",
                        fill * 100.0
                    ));
                }
                match health.breaker {
                    BreakerState::Closed => reasons.push(format!(
                        "{capability} storage ({}) is replaying {} queued writes",
                        health.backend, health.queued_ops
                    )),
                    _ => reasons.push(format!(
                        "{capability} storage ({}) is down{}: writes are queued ({} waiting)",
                        health.backend,
                        health
                            .reason
                            .as_ref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default(),
                        health.queued_ops
                    )),
                }
                if full { "unavailable" } else { "degraded" }
            }
            (Some(_), _) | (None, Ok(())) => "ok",
            (None, Err(_)) => {
                serving = false;
                reasons.push(format!("{capability} storage is unavailable"));
                "unavailable"
            }
        };
        capabilities.insert(capability.to_owned(), json!(state));
    }
    let status = if !serving {
        "unavailable"
    } else if reasons.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    let mut body = json!({"status": status, "reasons": reasons});
    body.as_object_mut()
        .expect("an object")
        .extend(capabilities);
    reply(
        if serving {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        body,
    )
}

fn games(server: &Server) -> Reply {
    let games: Vec<_> = server
        .app
        .sessions()
        .games()
        .into_iter()
        .map(|(name, info)| json!({
            "name": name, "game": info.name, "version": info.version, "description": info.description,
            "min_players": info.min_players, "max_players": info.max_players,
            "rpcs": info.rpcs,
        }))
        .collect();
    ok(json!({"games": games}))
}

/// The account whose token the request carries, if it carries one: a
/// token that is not an account's is refused, never taken as none.
async fn account_of(app: &App, headers: &HeaderMap) -> Result<Option<Account>, ApiError> {
    if !headers.contains_key(AUTHORIZATION) {
        return Ok(None);
    }
    Ok(Some(app.accounts().by_token(&bearer(headers)?).await?))
}

/// The bearer token of a request. The scheme is case-insensitive
/// (`bearer` is as good as `Bearer`, RFC 9110 section 11.1).
pub(super) fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send your token as `Authorization: Bearer TOKEN`",
        )
    };
    let header = headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let (scheme, token) = header
        .to_str()
        .ok()
        .and_then(|h| h.trim_start().split_once(' '))
        .ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token.to_owned())
}

/// Sent with the kept answer to a retried action (same `Idempotency-Key`).
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The request's `Idempotency-Key`, if any.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value.to_str().map(|key| Some(key.to_owned())).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_idempotency_key",
            "an idempotency key is 1 to 128 printable ASCII characters",
        )
    })
}

/// Refuses bodies in an encoding hoard does not decode, rather than read
/// them as if they were plain: a transfer coding other than `chunked` (501,
/// RFC 9112 section 6.1) or any content coding (415).
fn check_codings(headers: &HeaderMap) -> Result<(), ApiError> {
    for value in headers.get_all(TRANSFER_ENCODING) {
        let plain = value.to_str().is_ok_and(|codings| {
            codings
                .split(',')
                .all(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
        });
        if !plain {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "unsupported_transfer_coding",
                "only the chunked transfer coding is understood",
            )
            .closing());
        }
    }
    for value in headers.get_all(CONTENT_ENCODING) {
        if !value
            .to_str()
            .is_ok_and(|coding| coding.trim().eq_ignore_ascii_case("identity"))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_coding",
                "send the body uncompressed (no Content-Encoding)",
            )
            .closing());
        }
    }
    Ok(())
}

/// Reads a body of at most `server.body_bytes_max` within
/// `server.body_read_timeout_ms` and parses it as a JSON object. An empty
/// body reads as `{}`.
pub(super) async fn read_json<T: for<'de> Deserialize<'de>>(
    server: &Server,
    request: Request<Incoming>,
) -> Result<T, ApiError> {
    let max = server.app.config().server.body_bytes_max;
    let bytes = read_body(server, request, max).await?;
    let document = match bytes.iter().position(|b| !b.is_ascii_whitespace()) {
        None => &b"{}"[..],
        Some(start) if bytes[start] == b'{' => &bytes[..],
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                "the body must be a JSON object",
            ));
        }
    };
    serde_json::from_slice(document).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not the JSON expected: {error}"),
        )
    })
}

/// Reads a body of at most `max` bytes within
/// `server.body_read_timeout_ms`.
pub(super) async fn read_body(
    server: &Server,
    request: Request<Incoming>,
    max: u64,
) -> Result<bytes::Bytes, ApiError> {
    let config = &server.app.config().server;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is over the limit of {max} bytes"),
        )
        .closing()
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
    let timeout = Duration::from_millis(config.body_read_timeout_ms);
    let collected = tokio::time::timeout(
        timeout,
        LimitedBody::new(request.into_body(), limit).collect(),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {} ms",
                config.body_read_timeout_ms
            ),
        )
        .closing()
    })?;
    let body = collected.map_err(|error| {
        if error.is::<http_body_util::LengthLimitError>() {
            too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "the request body could not be read",
            )
            .closing()
        }
    })?;
    Ok(body.to_bytes())
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

/// The answer to an action. The plugin's documents go into it as the
/// text they came as (checked to be JSON), never parsed into a tree.
#[derive(Serialize)]
struct Acted<'a> {
    view: Option<&'a RawValue>,
    outcome: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Viewed<'a> {
    view: &'a RawValue,
}

/// 200 with `body`, serialized as it is.
fn ok_typed(body: &impl Serialize) -> Response<Full<Bytes>> {
    let text = serde_json::to_string(body).expect("an answer serializes");
    json_response(StatusCode::OK, text)
}

pub(super) fn ok(body: serde_json::Value) -> Reply {
    reply(StatusCode::OK, body)
}

pub(super) fn reply(status: StatusCode, body: serde_json::Value) -> Reply {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI path a route is described under. Exhaustive: a new
    /// route does not compile until it is described here.
    fn described_as(route: Route) -> &'static str {
        match route {
            Route::Web(asset) if asset.path.starts_with("/assets/") => "/assets/{file}",
            Route::Web(asset) => asset.path,
            Route::Health => "/healthz",
            Route::Ready => "/readyz",
            Route::Metrics => "/metrics",
            Route::Admin(_) => "/admin/v1/...",
            Route::Games => "/v1/games",
            Route::Create(_) => "/v1/games/{game}/sessions",
            Route::Rpc(..) => "/v1/games/{game}/rpc/{name}",
            Route::Session(_) => "/v1/sessions/{id}",
            Route::Join(_) => "/v1/sessions/{id}/join",
            Route::Actions(_) => "/v1/sessions/{id}/actions",
            Route::View(_) => "/v1/sessions/{id}/view",
            Route::Events(_) => "/v1/sessions/{id}/events",
            Route::Register => "/v1/accounts",
            Route::Login => "/v1/login",
            Route::Me => "/v1/accounts/me",
            Route::AccountExport => "/v1/accounts/me/export",
            Route::AccountImport => "/v1/accounts/me/import",
        }
    }

    fn openapi() -> serde_json::Value {
        let text = super::super::web::asset("/openapi.json").unwrap().body;
        serde_json::from_slice(text).unwrap()
    }

    /// A concrete path for an OpenAPI path: each `{parameter}` filled.
    fn concrete(template: &str) -> String {
        template
            .replace("{file}", "lib.js")
            .replace("{id}", "0123456789abcdef0123456789abcdef")
            .replace(['{', '}'], "")
    }

    #[test]
    fn every_route_is_described_with_its_methods() {
        let doc = openapi();
        let paths = doc["paths"].as_object().unwrap();
        let mut served: Vec<String> = super::super::web::paths().map(str::to_owned).collect();
        served.extend(
            paths
                .keys()
                .filter(|p| !p.starts_with("/admin/v1/"))
                .map(|p| concrete(p)),
        );
        for path in served {
            let route = Route::of(&path).unwrap_or_else(|| panic!("{path} is not routed"));
            let template = described_as(route);
            let item = &paths[template];
            assert!(item.is_object(), "{path} ({template}) is not described");
            let methods = route.methods();
            for method in ["get", "post", "delete"] {
                let routed = methods.contains(&method.to_uppercase());
                let documented = item.get(method).is_some();
                assert_eq!(
                    routed, documented,
                    "{method} {template}: routed {routed}, described {documented}"
                );
            }
        }
    }

    #[test]
    fn every_operation_documents_its_errors_as_the_error_shape() {
        let doc = openapi();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let responses = operation["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path}");
                for (status, response) in responses {
                    let Some(name) = response["$ref"].as_str() else {
                        // Its own shape (`/readyz`'s 503 is its report).
                        assert!(
                            response["description"].is_string(),
                            "{method} {path} {status}"
                        );
                        continue;
                    };
                    assert!(status.starts_with('4') || status.starts_with('5'));
                    let target = name.trim_start_matches("#/components/responses/");
                    assert!(doc["components"]["responses"][target].is_object(), "{name}");
                }
            }
        }
    }
}
