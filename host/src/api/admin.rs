//! The admin API under `/admin/v1`, for operators and the `hoard queue`
//! CLI verbs. Guarded by `admin.token` (never a player's token), compared
//! in constant time; off while no token is configured.
//!
//! - `GET /admin/v1/queue`: per guarded backend, the breaker, the outbox
//!   (ops, bytes, oldest op's age, by plugin), the replay rate and the dead
//!   letters' count.
//! - `GET /admin/v1/queue/dead-letters?capability=hot|cold&after=ID&limit=N`
//! - `POST /admin/v1/queue/dead-letters/{capability}/{id}/retry`: queue the
//!   op again, at the end.
//! - `DELETE /admin/v1/queue/dead-letters/{capability}/{id}`: drop it.
//! - `GET /admin/v1/cluster`: the instances that heartbeat lately (cluster
//!   mode), each with its URL, age of its last beat, sessions and sockets.
//! - `GET /admin/v1/sessions`: the sessions in memory on this instance
//!   (game, players, actions, plugin version, idle time), least idle first.
//! - `POST /admin/v1/sessions/{id}/end`: ends a session: its outcome
//!   becomes `{"ended_by": "operator"}`, its seed is revealed, its sockets
//!   see it finished.
//! - `GET /admin/v1/plugins`: each game's loaded versions (current first),
//!   whether each upgrades running sessions, and the sessions in memory on
//!   each (their count, and up to 100 ids).
//! - `POST /admin/v1/plugins/{name}`: the body is a new component for the
//!   configured plugin `name`; it is checked and loaded as the host loads
//!   plugins, made current, and saved over the configured file. This
//!   instance only: in a cluster, deploy to each.

use super::routes::{Reply, bearer, ok};
use super::{ApiError, Server};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

/// Most session ids listed per plugin version.
const SESSIONS_LISTED_MAX: usize = 100;

/// Most dead letters one listing returns.
const DEAD_LETTERS_PAGE_MAX: usize = 1000;

pub(super) async fn route(server: &Server, rest: &str, request: Request<Incoming>) -> Reply {
    authorize(server, &request)?;
    let method = request.method().clone();
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let query = request.uri().query().unwrap_or("");
    let resilience = server.app.resilience();
    let not_guarded = |capability: &str| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_guarded",
            format!(
                "{capability:?} storage has no outage layer (it is embedded, or the layer is off)"
            ),
        )
    };
    match (&method, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, ["plugins"]) => ok(plugins(server)),
        (&Method::GET | &Method::HEAD, ["sessions"]) => {
            let sessions = server.app.sessions().live_sessions();
            ok(json!({ "sessions": sessions }))
        }
        (&Method::POST, ["sessions", id, "end"]) => {
            let ended = server.app.sessions().end(id).await?;
            ok(json!({ "session": id, "ended": ended }))
        }
        (&Method::POST, ["plugins", name]) => {
            let name = name.to_string();
            let max = server.app.config().admin.component_bytes_max;
            let component = super::routes::read_body(server, request, max).await?;
            let deployed = server
                .app
                .deploy(&name, &component)
                .await
                .map_err(deploy_error)?;
            ok(json!({
                "plugin": name,
                "version": deployed.version,
                "previous": deployed.previous,
                "unloaded": deployed.unloaded,
            }))
        }
        (&Method::GET | &Method::HEAD, ["cluster"]) => {
            let Some(cluster) = server.app.cluster() else {
                return ok(json!({"enabled": false, "instances": []}));
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let members = cluster.read_members().await?;
            let instances: Vec<_> = members
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id, "url": m.url, "this": m.id == cluster.id(),
                        "up_ms": now.saturating_sub(m.started_ms),
                        "last_beat_ms_ago": now.saturating_sub(m.beat_ms),
                        "live_sessions": m.live_sessions, "sockets": m.sockets,
                    })
                })
                .collect();
            ok(json!({"enabled": true, "instance": cluster.id(), "instances": instances}))
        }
        (&Method::GET | &Method::HEAD, ["queue"]) => {
            let health = resilience.map(|r| r.health()).unwrap_or_default();
            let capabilities: Vec<_> = health
                .iter()
                .map(|h| {
                    json!({
                        "capability": h.capability,
                        "backend": h.backend,
                        "breaker": h.breaker.as_str(),
                        "reason": h.reason,
                        "degraded": h.degraded(),
                        "queued_ops": h.queued_ops,
                        "queued_bytes": h.queued_bytes,
                        "outbox_ops_max": h.outbox_ops_max,
                        "outbox_bytes_max": h.outbox_bytes_max,
                        "oldest_queued_ms": h.oldest_queued_ms,
                        "queued_by_plugin": h.queued_by_namespace.iter().map(|(ns, n)| (ns.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
                        "replayed_total": h.replayed_total,
                        "replay_rate_per_s": (h.replay_rate * 10.0).round() / 10.0,
                        "dead_letters": h.dead_letters,
                        "last_error": h.last_error,
                    })
                })
                .collect();
            ok(json!({ "capabilities": capabilities }))
        }
        (&Method::GET | &Method::HEAD, ["queue", "dead-letters"]) => {
            let parameter = |name: &str| {
                query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value)
            };
            let capability = parameter("capability").unwrap_or("cold");
            let number = |name: &str, default: u64| -> Result<u64, ApiError> {
                match parameter(name) {
                    None => Ok(default),
                    Some(text) => text.parse().map_err(|_| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "bad_query",
                            format!("{name} must be a whole number"),
                        )
                    }),
                }
            };
            let after = number("after", 0)?;
            let limit = (number("limit", 100)? as usize).clamp(1, DEAD_LETTERS_PAGE_MAX);
            let letters = resilience
                .and_then(|r| r.dead_letters(capability, after, limit))
                .ok_or_else(|| not_guarded(capability))??;
            let letters: Vec<_> = letters
                .iter()
                .map(|letter| {
                    json!({
                        "id": letter.id,
                        "capability": letter.capability,
                        "plugin": letter.namespace,
                        "write": letter.write,
                        "error": letter.error,
                        "attempts": letter.attempts,
                        "enqueued_at_ms": letter.enqueued_at_ms,
                        "failed_at_ms": letter.failed_at_ms,
                    })
                })
                .collect();
            ok(json!({ "dead_letters": letters }))
        }
        (&Method::POST, ["queue", "dead-letters", capability, id, "retry"])
        | (&Method::DELETE, ["queue", "dead-letters", capability, id]) => {
            let id: u64 = id.parse().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_id",
                    "a dead letter's id is a whole number",
                )
            })?;
            let resilience = resilience.ok_or_else(|| not_guarded(capability))?;
            let retrying = method == Method::POST;
            let done = if retrying {
                resilience.retry(capability, id).await
            } else {
                resilience.drop_dead_letter(capability, id).await
            };
            match done.ok_or_else(|| not_guarded(capability))?? {
                true => ok(json!({
                    "id": id,
                    "capability": capability,
                    "done": if retrying { "queued again" } else { "dropped" },
                })),
                false => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no_such_dead_letter",
                    format!("no dead letter {id} in {capability} storage"),
                )),
            }
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no admin route {method} /admin/v1/{rest}"),
        )),
    }
}

/// Every game's loaded versions and the sessions in memory on each.
fn plugins(server: &Server) -> serde_json::Value {
    let catalog = server.app.catalog();
    let sessions = server.app.sessions().sessions_by_version();
    let games: Vec<_> = catalog
        .games()
        .into_iter()
        .map(|(name, current)| {
            let versions: Vec<_> = catalog
                .versions(&name)
                .iter()
                .map(|plugin| {
                    let on_it = sessions
                        .get(plugin.version())
                        .map_or(&[][..], Vec::as_slice);
                    json!({
                        "version": plugin.version(),
                        "game_version": plugin.info().version,
                        "current": plugin.version() == current.version(),
                        "live_sessions": on_it.len(),
                        "sessions": &on_it[..on_it.len().min(SESSIONS_LISTED_MAX)],
                        "upgrades": plugin.upgrades(),
                        "bytes": plugin.shape().bytes,
                    })
                })
                .collect();
            json!({"plugin": name, "game": current.info().name, "versions": versions})
        })
        .collect();
    json!({ "plugins": games })
}

/// A deploy's failure as an answer: the reason is the checker's.
fn deploy_error(failure: crate::app::DeployFailure) -> ApiError {
    use crate::app::DeployFailure as F;
    use crate::catalog::DeployError as D;
    let (status, code) = match &failure {
        F::Refused(D::UnknownGame(_)) => (StatusCode::NOT_FOUND, "unknown_plugin"),
        F::Refused(D::TooManyVersions { .. }) => (StatusCode::CONFLICT, "too_many_versions"),
        F::Load(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_component"),
        F::OtherGame { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "other_game"),
        F::NotSaved { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "not_saved"),
    };
    ApiError::new(status, code, failure.to_string())
}

/// The request must carry the configured admin token.
fn authorize(server: &Server, request: &Request<Incoming>) -> Result<(), ApiError> {
    let Some(expected) = &server.app.config().admin.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin API is off: set admin.token (or HOARD_ADMIN__TOKEN) to use it",
        ));
    };
    let presented = bearer(request.headers())?;
    if !crate::session::constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_admin_token",
            "the token is not the admin token",
        ));
    }
    Ok(())
}
