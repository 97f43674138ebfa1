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

use super::routes::{Query, Reply, bearer, ok};
use super::{ApiError, Server};
use crate::storage::{ColdWrite, ExportView, HotWrite, Item, Namespace, Op, RecordWrite};
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
        (&Method::GET | &Method::HEAD, ["storage"]) => {
            let plugins: Vec<_> = server
                .app
                .catalog()
                .games()
                .into_iter()
                .map(|(name, plugin)| json!({"plugin": name, "namespace": plugin.namespace().to_string()}))
                .collect();
            ok(json!({ "plugins": plugins }))
        }
        (&Method::GET | &Method::HEAD, ["storage", plugin]) => {
            browse(server, plugin, &Query::parse(query)).await
        }
        (&Method::POST, ["storage", plugin, "edit"]) => {
            let namespace = namespace_of(server, plugin)?;
            let edit: Edit = super::routes::read_json(server, request).await?;
            edit_storage(server, namespace, edit).await
        }
        (&Method::GET | &Method::HEAD, ["accounts"]) => {
            let query = Query::parse(query);
            let limit = query.number("limit", 50)?.clamp(1, ACCOUNTS_PAGE_MAX);
            let prefix = query.get("prefix").unwrap_or("");
            let (accounts, next) = server
                .app
                .accounts()
                .list(prefix, query.get("cursor"), limit as u32)
                .await?;
            ok(json!({ "accounts": accounts, "next_cursor": next }))
        }
        (&Method::POST, ["accounts", name, verb @ ("disable" | "enable")]) => {
            let disabled = *verb == "disable";
            let account = server.app.accounts().set_disabled(name, disabled).await?;
            ok(json!({ "account": account }))
        }
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
            let query = Query::parse(query);
            let capability = query.get("capability").unwrap_or("cold");
            let after = query.number("after", 0)?;
            let limit = (query.number("limit", 100)? as usize).clamp(1, DEAD_LETTERS_PAGE_MAX);
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
        _ => match methods(&segments) {
            Some(allowed) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on /admin/v1/{rest}; use {allowed}"),
            )
            .allow(allowed)),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no admin route {method} /admin/v1/{rest}"),
            )),
        },
    }
}

/// The methods an admin path answers, if it is one (for 405's `Allow`).
fn methods(segments: &[&str]) -> Option<&'static str> {
    Some(match segments {
        ["plugins" | "storage" | "accounts" | "sessions" | "cluster" | "queue"]
        | ["storage", _]
        | ["queue", "dead-letters"] => "GET, HEAD",
        ["plugins", _]
        | ["storage", _, "edit"]
        | ["accounts", _, "disable" | "enable"]
        | ["sessions", _, "end"]
        | ["queue", "dead-letters", _, _, "retry"] => "POST",
        ["queue", "dead-letters", _, _] => "DELETE",
        _ => return None,
    })
}

/// Most accounts one listing returns.
const ACCOUNTS_PAGE_MAX: u64 = 500;

/// Most items one storage listing returns.
const ITEMS_PAGE_MAX: u64 = 1000;

/// Longest value or body a storage listing shows whole (bytes).
const SHOWN_BYTES_MAX: usize = 2048;

/// The namespace of the served plugin `plugin`.
fn namespace_of(server: &Server, plugin: &str) -> Result<Namespace, ApiError> {
    server
        .app
        .catalog()
        .current(plugin)
        .map(|p| p.namespace().clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_plugin",
                format!("no plugin named {plugin:?} is served"),
            )
        })
}

/// `GET /admin/v1/storage/{plugin}?capability=hot|cold&prefix=P&limit=N`:
/// up to N items of the plugin's hot or cold storage whose key, field's
/// key, board, collection or stream starts with P, as a dump shows them
/// (values and bodies over 2 KiB cut, and marked), and the count of every
/// matching item by kind. It reads the whole namespace (an export), so it
/// is for looking, not for serving.
async fn browse(server: &Server, plugin: &str, query: &Query) -> Reply {
    let namespace = namespace_of(server, plugin)?;
    let capability = query.get("capability").unwrap_or("cold");
    let prefix = query.get("prefix").unwrap_or("").to_owned();
    let limit = query.number("limit", 200)?.clamp(1, ITEMS_PAGE_MAX) as usize;
    let mut items = Vec::new();
    let mut counts: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let mut sink = |item: Item| {
        let (kind, name) = match &item {
            Item::Value { key, .. } => ("value", key),
            Item::HashField { key, .. } => ("hash-field", key),
            Item::Score { board, .. } => ("score", board),
            Item::Record { collection, .. } => ("record", collection),
            Item::History { stream, .. } => ("history", stream),
        };
        if name.starts_with(&prefix) {
            *counts.entry(kind).or_default() += 1;
            if items.len() < limit {
                items.push(shown(item));
            }
        }
        Ok(())
    };
    let storage = server.app.storage();
    let view = match capability {
        "hot" => storage.hot.export(&namespace, &mut sink).await?,
        "cold" => storage.cold.export(&namespace, &mut sink).await?,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("capability={other:?}: use hot or cold"),
            ));
        }
    };
    let matching: u64 = counts.values().sum();
    let view = match view {
        ExportView::Snapshot(how) => json!({"snapshot": how}),
        ExportView::Live(why) => json!({"live": why}),
    };
    ok(json!({
        "plugin": plugin, "namespace": namespace.to_string(), "capability": capability,
        "items": items, "counts": counts, "truncated": matching > items.len() as u64,
        "view": view,
    }))
}

/// An item for the browser: long values and bodies cut.
fn shown(item: Item) -> serde_json::Value {
    fn cut(bytes: &mut Vec<u8>) -> bool {
        if bytes.len() <= SHOWN_BYTES_MAX {
            return false;
        }
        let mut end = SHOWN_BYTES_MAX;
        // Text stays text: cut where a character starts.
        if let Ok(text) = std::str::from_utf8(bytes) {
            while !text.is_char_boundary(end) {
                end -= 1;
            }
        }
        bytes.truncate(end);
        true
    }
    fn cut_text(text: &mut String) -> bool {
        let long = text.len() > SHOWN_BYTES_MAX;
        if long {
            let mut end = SHOWN_BYTES_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        long
    }
    let mut item = item;
    let cut = match &mut item {
        Item::Value { value, .. } | Item::HashField { value, .. } => cut(value),
        Item::Record { body, .. } | Item::History { body, .. } => cut_text(body),
        Item::Score { .. } => false,
    };
    let mut shown = crate::data::dump::item_json(&item);
    if cut {
        shown["cut"] = json!(true);
    }
    shown
}

/// An operator's edit of one item, confirmed in the console.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
enum Edit {
    /// Puts a record's body (JSON), if it is at `expected_version` (0:
    /// absent).
    Record {
        collection: String,
        key: String,
        body: serde_json::Value,
        expected_version: u64,
    },
    /// Sets a hot value, with a time to live or none.
    Value {
        key: String,
        value: String,
        #[serde(default)]
        ttl_ms: Option<u64>,
    },
}

/// `POST /admin/v1/storage/{plugin}/edit`: one write, as an op like any
/// other (so it is queued and replayed like any other during an outage).
async fn edit_storage(server: &Server, namespace: Namespace, edit: Edit) -> Reply {
    let storage = server.app.storage();
    match edit {
        Edit::Record {
            collection,
            key,
            body,
            expected_version,
        } => {
            let write = ColdWrite::Record(RecordWrite::Put {
                collection: collection.clone(),
                key: key.clone(),
                body: body.to_string(),
                expected_version: Some(expected_version),
            });
            storage.limits.check_cold(&write)?;
            let applied = storage.cold.apply(&Op::new(namespace, write)).await?;
            ok(json!({"collection": collection, "key": key, "applied": format!("{applied:?}")}))
        }
        Edit::Value { key, value, ttl_ms } => {
            let write = HotWrite::Set {
                key: key.clone(),
                value: value.into_bytes(),
                ttl_ms,
            };
            storage.limits.check_hot(&write)?;
            storage.hot.apply(&Op::new(namespace, write)).await?;
            ok(json!({"key": key, "ttl_ms": ttl_ms}))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The admin paths described in `/openapi.json` are the ones `methods`
    /// knows, with the same methods.
    #[test]
    fn the_described_admin_routes_are_the_routed_ones() {
        let text = super::super::web::asset("/openapi.json").unwrap().body;
        let doc: serde_json::Value = serde_json::from_slice(text).unwrap();
        let mut described = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            let Some(rest) = path.strip_prefix("/admin/v1/") else {
                continue;
            };
            let segments: Vec<&str> = rest.split('/').collect();
            let routed = methods(&segments).unwrap_or_else(|| panic!("{path} is not routed"));
            for method in ["get", "post", "delete"] {
                assert_eq!(
                    routed.contains(&method.to_uppercase()),
                    item.get(method).is_some(),
                    "{method} {path}"
                );
            }
            described += 1;
        }
        assert_eq!(described, 15);
    }
}
