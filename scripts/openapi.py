#!/usr/bin/env python3
# Writes host/web/openapi.json, the OpenAPI 3.1 description of the HTTP API
# that hoard serves at /openapi.json: edit here, run it, commit both.
# (`routes::tests` checks every route the router serves is described.)
import json
import pathlib
E = lambda d: {"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
def ok(d, schema=None, status="200", ctype="application/json"):
    return {status: {"description": d, "content": {ctype: {"schema": schema or {"type": "object"}}}}}
def errs(*codes):
    m = {
        "400": "Malformed: `bad_json`, `bad_body`, `bad_query`, or the game's own malformed-input code (such as `bad_card`, `bad_config`).",
        "401": "`missing_token`, `bad_token`, `bad_account_token`, `bad_credentials` or `bad_admin_token` (with `WWW-Authenticate: Bearer`).",
        "403": "`not_seated`, `seed_not_allowed`, `admin_disabled`, `imports_disabled` or `account_disabled`.",
        "404": "`not_found`, `unknown_game`, `unknown_session`, `unknown_rpc` and the admin API's `not_guarded`, `no_such_dead_letter`, `unknown_plugin`, `unknown_account`.",
        "405": "`method_not_allowed` (with `Allow`).",
        "408": "`body_timeout`: the body did not arrive in time; the connection closes.",
        "409": "`not_your_turn`, `session_full`, `game_finished`, `name_taken`, `name_is_an_account`, `already_seated`, `version_unavailable`, `storage_conflict`, `account_data_exists`, `too_many_versions`.",
        "413": "`body_too_large` or `document_too_large`.",
        "415": "`unsupported_content_coding` (bodies are sent uncompressed).",
        "422": "Against the game's rules (such as `must_follow_suit`), `idempotency_key_reused`, `not_movable`, `bad_component`, `other_game`.",
        "426": "`upgrade_required`: a plain GET on the WebSocket route.",
        "429": "`rate_limited` (with `Retry-After` in seconds).",
        "500": "The plugin's fault, nothing changed: `plugin_timeout`, `plugin_out_of_memory`, `plugin_failed`; `storage_refused`; `not_saved`.",
        "501": "`unsupported_transfer_coding` (anything but `chunked`).",
        "503": "`storage_unavailable`, `outbox_full` or `busy`: nothing changed, try again (with `Retry-After` where known).",
    }
    global RESP
    RESP = {c: E(m[c]) for c in m}
    return {c: {"$ref": f"#/components/responses/E{c}"} for c in codes}
BODY = ["400", "408", "413", "415", "501"]
def body(schema, required=True, ctype="application/json"):
    return {"required": required, "content": {ctype: {"schema": schema}}}
def op(summary, responses, description=None, params=None, req=None, security=None, tags=None):
    o = {"summary": summary, "responses": responses}
    if description: o["description"] = description
    if params: o["parameters"] = params
    if req: o["requestBody"] = req
    if security is not None: o["security"] = security
    if tags: o["tags"] = tags
    return o
def merge(*ds):
    r = {}
    for d in ds: r.update(d)
    return dict(sorted(r.items()))
P = lambda name, d, schema=None: {"name": name, "in": "path", "required": True, "description": d, "schema": schema or {"type": "string"}}
Q = lambda name, d, schema: {"name": name, "in": "query", "required": False, "description": d, "schema": schema}
SESSION = P("id", "The session's id: 32 hex digits.", {"type": "string"})
GAME = P("game", "A loaded game's name, as `/v1/games` lists it.")
def obj(props, req=(), closed=False):
    o = {"type": "object", "properties": props, "required": list(req)}
    if closed:
        o["additionalProperties"] = False
    return o
s = {"type": "string"}; i = {"type": "integer"}; b = {"type": "boolean"}; anyv = {}
nul = lambda t: {"type": [t["type"], "null"]} if "type" in t else t
PLAYER = [{"player": []}]
ACCOUNT = [{"account": []}]
ADMIN = [{"admin": []}]
NONE = [{}]
fair = {"$ref": "#/components/schemas/Fairness"}
paths = {}
web = lambda d, t: {"get": op(d, merge({"200": {"description": d, "content": {t: {"schema": {"type": "string"}}}}, "304": {"description": "Not modified: the browser holds this version (`If-None-Match`)."}}), tags=["browser"], security=[])}
paths["/"] = web("The player client: lobby, sign-in, and every game's board.", "text/html")
paths["/admin"] = web("The admin console (it asks for the admin token itself).", "text/html")
paths["/assets/{file}"] = {"get": op("A script, style or icon of the client or the console.", merge({"200": {"description": "The file.", "content": {"text/javascript": {"schema": s}, "text/css": {"schema": s}, "image/svg+xml": {"schema": s}}}, "304": {"description": "Not modified."}}, errs("404")), params=[P("file", "The file's name.")], tags=["browser"], security=[])}
paths["/openapi.json"] = {"get": op("This description of the HTTP API.", merge(ok("OpenAPI 3.1."), {"304": {"description": "Not modified."}}), tags=["browser"], security=[])}
paths["/healthz"] = {"get": op("Liveness.", ok("The process answers.", obj({"status": s}, ["status"])), tags=["operations"], security=[])}
paths["/readyz"] = {"get": op("Readiness.", merge(ok("`ok`, or `degraded` with reasons: storage down or writes waiting to replay, games still served.", obj({"status": {"enum": ["ok", "degraded"]}, "reasons": {"type": "array", "items": s}}, ["status"])), {"503": {"description": "Not ready: storage cannot be reached and nothing can be queued.", "content": {"application/json": {"schema": {"type": "object"}}}}}), tags=["operations"], security=[])}
paths["/metrics"] = {"get": op("Prometheus series.", ok("OpenMetrics text.", s, ctype="application/openmetrics-text"), tags=["operations"], security=[])}
game = obj({"name": s, "game": s, "version": s, "description": s, "min_players": i, "max_players": i, "rpcs": {"type": "array", "items": s}}, ["name", "version", "min_players", "max_players", "rpcs"])
paths["/v1/games"] = {"get": op("The loaded games.", ok("Every game, by name.", obj({"games": {"type": "array", "items": game}}, ["games"])), tags=["games"], security=[])}
opens = obj({"session": s, "players": {"type": "array", "items": s}, "seats": i, "created_ms": i}, ["session", "players", "seats"])
paths["/v1/games/{game}/sessions"] = {
    "parameters": [GAME],
    "get": op("The lobby: open sessions of a game.", merge(ok("Sessions created on this instance with `listed`, someone seated and a seat free, newest first (at most 50).", obj({"game": s, "sessions": {"type": "array", "items": opens}}, ["game", "sessions"])), errs("404")), tags=["games"], security=[]),
    "post": op("Create a session.", merge(ok("Created.", obj({"session": s, "game": s, "fairness": fair}, ["session", "fairness"]), status="201"), errs(*BODY, "403", "404", "429", "500", "503")),
               req=body(obj({"config": {"type": "object", "description": "The game's settings (`{}` when absent)."}, "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": 18446744073709551615, "description": "Only where `sessions.client_seeds` allows it."}, "listed": {"type": "boolean", "description": "Shown in the lobby once someone sits at it (default false: reached by its id only)."}}, closed=True), required=False), tags=["games"], security=[]),
}
paths["/v1/games/{game}/rpc/{name}"] = {"parameters": [GAME, P("name", "One of the game's `rpcs`.")], "post": op("Call the game outside any session.", merge(ok("The game's answer.", obj({"result": anyv}, ["result"])), errs(*BODY, "401", "404", "422", "429", "500", "503")), req=body({"type": "object"}), security=[{}, {"account": []}], tags=["games"])}
paths["/v1/sessions/{id}"] = {"parameters": [SESSION], "get": op("A session as anyone may see it.", merge(ok("Players, action count, outcome, the spectator's view.", obj({"session": s, "game": s, "players": {"type": "array", "items": s}, "actions": i, "finished": b, "outcome": anyv, "view": anyv, "fairness": fair}, ["session", "game", "players", "actions", "finished", "view", "fairness"])), errs("404", "500", "503")), tags=["sessions"], security=[])}
paths["/v1/sessions/{id}/join"] = {"parameters": [SESSION], "post": op("Take a seat.", merge(ok("Seated: keep the token, it is the seat.", obj({"session": s, "player": s, "token": s, "account": {"type": ["string", "null"]}}, ["player", "token"]), status="201"), errs(*BODY, "401", "404", "409", "422", "429", "500", "503")), description="As a guest: `{\"name\"}` (1 to 32 letters, digits, `-` or `_`). As an account: its token, and `{}`.", req=body(obj({"name": {"type": ["string", "null"]}}, closed=True)), security=[{}, {"account": []}], tags=["sessions"])}
idem = {"name": "Idempotency-Key", "in": "header", "required": False, "description": "1 to 128 printable ASCII characters: a retry with the same key gets the first answer.", "schema": {"type": "string", "pattern": "^[!-~]{1,128}$"}}
paths["/v1/sessions/{id}/actions"] = {"parameters": [SESSION], "post": op("Act: the game's action as a JSON object.", merge(ok("The acting player's view, and the outcome once the game has ended.", obj({"view": anyv, "outcome": anyv})), errs(*BODY, "401", "403", "404", "409", "422", "429", "500", "503")), params=[idem], req=body({"type": "object"}), security=PLAYER, tags=["sessions"])}
paths["/v1/sessions/{id}/view"] = {"parameters": [SESSION], "get": op("What this player may see.", merge(ok("The view.", obj({"view": anyv}, ["view"])), errs("401", "403", "404", "500", "503")), security=PLAYER, tags=["sessions"])}
paths["/v1/sessions/{id}/events"] = {"parameters": [SESSION], "get": op("The session's events over a WebSocket.", merge({"101": {"description": "Switching to the WebSocket: frames as the README's \"Live events\" says."}}, errs("400", "401", "404", "426", "429", "503")), description="A WebSocket handshake (RFC 6455); the first frame is a `hello`.", params=[{"name": "Upgrade", "in": "header", "required": True, "schema": {"enum": ["websocket"]}}, {"name": "Connection", "in": "header", "required": True, "schema": {"enum": ["Upgrade"]}}, {"name": "Sec-WebSocket-Version", "in": "header", "required": True, "schema": {"enum": ["13"]}}, {"name": "Sec-WebSocket-Key", "in": "header", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9+/]{22}==$"}}], security=[{}, {"player": []}], tags=["sessions"])}
cred = obj({"name": s, "secret": s}, ["name", "secret"], closed=True)
paths["/v1/accounts"] = {"post": op("Register an account.", merge(ok("Registered: now log in.", obj({"account": s, "name": s}, ["account", "name"]), status="201"), errs(*BODY, "409", "429", "503")), req=body(cred), tags=["accounts"], security=[])}
paths["/v1/login"] = {"post": op("Log in: an account token.", merge(ok("The token, for `Authorization: Bearer`.", obj({"account": s, "name": s, "token": s, "expires_in_ms": i}, ["account", "name", "token"])), errs(*BODY, "401", "429", "503")), req=body(cred), tags=["accounts"], security=[])}
paths["/v1/accounts/me"] = {"get": op("The account a token is.", merge(ok("The account.", obj({"account": s, "name": s}, ["account", "name"])), errs("401", "503")), security=ACCOUNT, tags=["accounts"])}
paths["/v1/accounts/me/export"] = {"post": op("The account's own data, as a dump.", merge(ok("JSON lines: the dump format of `hoard data`.", s, ctype="application/x-ndjson"), errs("401", "500", "503")), security=ACCOUNT, tags=["accounts"])}
paths["/v1/accounts/me/import"] = {"post": op("Bring an account's data in from a dump.", merge(ok("What was written.", obj({"written": i, "unchanged": i, "skipped": i}, ["written", "unchanged", "skipped"])), errs(*BODY, "401", "403", "409", "422", "500", "503")), params=[Q("on_conflict", "What to do with a record that differs.", {"enum": ["fail", "skip", "overwrite"]})], req=body(s, ctype="application/x-ndjson"), security=ACCOUNT, tags=["accounts"])}
A = ["401", "403"]
paths["/admin/v1/sessions"] = {"get": op("The sessions in memory on this instance.", merge(ok("Least idle first.", obj({"sessions": {"type": "array", "items": obj({"session": s, "game": s, "players": {"type": "array", "items": s}, "actions": i, "finished": b, "version": s, "idle_ms": i, "expires_in_ms": i}, ["session", "game", "players", "actions", "finished", "version", "idle_ms", "expires_in_ms"])}}, ["sessions"])), errs(*A)), security=ADMIN, tags=["admin"])}
paths["/admin/v1/sessions/{id}/end"] = {"parameters": [SESSION], "post": op("End a session.", merge(ok("Its outcome is now `{\"ended_by\": \"operator\"}`; `ended` is false if it had ended already.", obj({"session": s, "ended": b}, ["session", "ended"])), errs(*A, "404", "500", "503")), security=ADMIN, tags=["admin"])}
paths["/admin/v1/plugins"] = {"get": op("Each game's loaded versions.", merge(ok("Current version first.", obj({"plugins": {"type": "array", "items": {"type": "object"}}}, ["plugins"])), errs(*A)), security=ADMIN, tags=["admin"])}
paths["/admin/v1/plugins/{name}"] = {"parameters": [P("name", "A configured plugin's name.")], "post": op("Deploy a new version of a plugin.", merge(ok("Loaded, current and saved.", obj({"plugin": s, "version": s, "previous": anyv, "unloaded": anyv}, ["plugin", "version"])), errs(*A, "404", "408", "409", "413", "415", "422", "500", "501")), req=body({"type": "string", "contentMediaType": "application/wasm"}, ctype="application/octet-stream"), security=ADMIN, tags=["admin"])}
paths["/admin/v1/cluster"] = {"get": op("The instances that heartbeat lately.", merge(ok("`enabled` false out of cluster mode.", obj({"enabled": b, "instance": s, "instances": {"type": "array", "items": {"type": "object"}}}, ["enabled", "instances"])), errs(*A, "503")), security=ADMIN, tags=["admin"])}
paths["/admin/v1/queue"] = {"get": op("The outage layer per guarded backend.", merge(ok("Breaker, outbox, replay rate, dead letters' count; empty when storage is embedded.", obj({"capabilities": {"type": "array", "items": {"type": "object"}}}, ["capabilities"])), errs(*A)), security=ADMIN, tags=["admin"])}
PLUGIN = P("plugin", "A served plugin's name.")
paths["/admin/v1/storage"] = {"get": op("The plugins whose storage can be browsed.", merge(ok("Each served plugin and its namespace.", obj({"plugins": {"type": "array", "items": obj({"plugin": s, "namespace": s}, ["plugin", "namespace"])}}, ["plugins"])), errs(*A)), security=ADMIN, tags=["admin"])}
paths["/admin/v1/storage/{plugin}"] = {"parameters": [PLUGIN], "get": op("Browse a plugin's hot or cold storage.", merge(ok("Up to `limit` items whose key, board, collection or stream starts with `prefix`, as a dump shows them (values over 2 KiB cut and marked `cut`), and the count of every matching item by kind.", obj({"plugin": s, "namespace": s, "capability": s, "items": {"type": "array", "items": {"type": "object"}}, "counts": {"type": "object"}, "truncated": b, "view": {"type": "object"}}, ["items", "counts", "truncated"])), errs(*A, "400", "404", "503")), params=[Q("capability", "`hot` or `cold` (default).", {"enum": ["hot", "cold"]}), Q("prefix", "Only names starting with this.", {"type": "string"}), Q("limit", "1 to 1000 (default 200).", {"type": "integer", "minimum": 0, "maximum": 18446744073709551615})], security=ADMIN, tags=["admin"])}
edit = {"oneOf": [obj({"record": obj({"collection": s, "key": s, "body": anyv, "expected_version": {"type": "integer", "minimum": 0, "maximum": 18446744073709551615}}, ["collection", "key", "body", "expected_version"], closed=True)}, ["record"], closed=True), obj({"value": obj({"key": s, "value": s, "ttl_ms": {"type": ["integer", "null"], "minimum": 0, "maximum": 18446744073709551615}}, ["key", "value"], closed=True)}, ["value"], closed=True)]}
paths["/admin/v1/storage/{plugin}/edit"] = {"parameters": [PLUGIN], "post": op("Write one record or hot value of a plugin (the console asks first).", merge(ok("Written, as an op like any other."), errs(*A, *BODY, "404", "409", "500", "503")), req=body(edit), security=ADMIN, tags=["admin"])}
acct = obj({"id": s, "name": s, "created_ms": i, "live_tokens": i, "disabled": b}, ["id", "name", "created_ms", "live_tokens", "disabled"])
paths["/admin/v1/accounts"] = {"get": op("Find accounts by the start of their name.", merge(ok("In name order.", obj({"accounts": {"type": "array", "items": acct}, "next_cursor": {"type": ["string", "null"]}}, ["accounts"])), errs(*A, "400", "503")), params=[Q("prefix", "The name starts with this (any case).", {"type": "string"}), Q("cursor", "From a previous page's `next_cursor`.", {"type": "string"}), Q("limit", "1 to 500 (default 50).", {"type": "integer", "minimum": 0, "maximum": 18446744073709551615})], security=ADMIN, tags=["admin"])}
for verb, what in [("disable", "Disable an account: its account tokens end, its logins are refused (403 `account_disabled`)."), ("enable", "Enable a disabled account again.")]:
    paths[f"/admin/v1/accounts/{{name}}/{verb}"] = {"parameters": [P("name", "The account's name (any case).")], "post": op(what, merge(ok("The account now.", obj({"account": acct}, ["account"])), errs(*A, "404", "503")), security=ADMIN, tags=["admin"])}
cap = P("capability", "`hot` or `cold`.", {"enum": ["hot", "cold"]})
paths["/admin/v1/queue/dead-letters"] = {"get": op("Dead letters, oldest first.", merge(ok("A page.", obj({"dead_letters": {"type": "array", "items": {"type": "object"}}}, ["dead_letters"])), errs(*A, "400", "404", "503")), params=[Q("capability", "`hot` or `cold` (default).", {"enum": ["hot", "cold"]}), Q("after", "Ids after this one.", {"type": "integer", "minimum": 0, "maximum": 18446744073709551615}), Q("limit", "1 to 1000 (default 100).", {"type": "integer", "minimum": 0, "maximum": 18446744073709551615})], security=ADMIN, tags=["admin"])}
paths["/admin/v1/queue/dead-letters/{capability}/{id}"] = {"parameters": [cap, P("id", "The dead letter's id.", {"type": "integer", "minimum": 0, "maximum": 18446744073709551615})], "delete": op("Drop a dead letter: its write is lost.", merge(ok("Dropped."), errs(*A, "400", "404", "503")), security=ADMIN, tags=["admin"])}
paths["/admin/v1/queue/dead-letters/{capability}/{id}/retry"] = {"parameters": [cap, P("id", "The dead letter's id.", {"type": "integer", "minimum": 0, "maximum": 18446744073709551615})], "post": op("Queue a dead letter's write again, at the end.", merge(ok("Queued again."), errs(*A, "400", "404", "503")), security=ADMIN, tags=["admin"])}
doc = {
    "openapi": "3.1.0",
    "info": {"title": "hoard", "version": "0.1.0", "description": "A storage host for game servers: games as WASM plugins, played over HTTP and WebSocket. Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code; every answer may carry `Hoard-Degraded` (storage running degraded) and, in cluster mode, `Hoard-Instance`. Every GET route answers HEAD too; a method a route does not take gets 405 `method_not_allowed`, a path no route takes 404 `not_found`.", "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
    "servers": [{"url": "/"}],
    "tags": [{"name": t} for t in ["games", "sessions", "accounts", "operations", "admin", "browser"]],
    "security": [{}],
    "paths": paths,
    "components": {
        "securitySchemes": {
            "player": {"type": "http", "scheme": "bearer", "description": "A seat's token, from joining a session."},
            "account": {"type": "http", "scheme": "bearer", "description": "An account token, from `/v1/login`."},
            "admin": {"type": "http", "scheme": "bearer", "description": "The host's `admin.token`."},
        },
        "responses": {f"E{c}": r for c, r in RESP.items()},
        "schemas": {
            "Error": obj({"error": obj({"code": {"type": "string", "description": "Stable, snake_case."}, "message": s, "retry_after_s": i}, ["code", "message"])}, ["error"]),
            "Fairness": obj({"fair_play": b, "commitment": s, "seed": {"type": ["integer", "null"]}, "nonce": {"type": ["string", "null"]}}, ["fair_play", "commitment"]),
        },
    },
}
open(pathlib.Path(__file__).resolve().parent.parent / "host/web/openapi.json", "w").write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
