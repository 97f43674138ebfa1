// The admin console: behind the admin token (kept in this tab only), it
// shows the host's instances and health, live charts drawn from /metrics,
// the sessions in memory (watch one as a spectator, end one), the plugins
// and their versions (deploy a new one), the outage queue with its dead
// letters, a storage browser per plugin (edits only once confirmed),
// accounts (find, disable), and the API's description. Without the token it shows the
// log-in and nothing else.
import { h, put, fill, api, store, describe, ago, toast, table } from "./lib.js";
import * as hokm from "./hokm.js";
import * as roguelike from "./roguelike.js";
import * as tabletop from "./tabletop.js";

const boards = { hokm, roguelike, tabletop };
const main = document.getElementById("main");
const who = document.getElementById("who");
const token = () => store.get("admin", sessionStorage);
const admin = (method, path, options = {}) => api(method, `/admin/v1/${path}`, { ...options, token: token() });
let stop = () => {};

function logIn(problem) {
  const input = h("input", { name: "token", type: "password", autocomplete: "off", required: true, "aria-label": "admin token" });
  const error = h("p", { class: "error", role: "alert" }, problem ?? "");
  put(who);
  put(main, h("section", { class: "panel", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Admin log-in"),
    h("p", { class: "muted" }, "The admin token is the host's admin.token (HOARD_ADMIN__TOKEN). It is kept in this tab only."),
    h("form", { class: "row", onsubmit: async (event) => {
      event.preventDefault();
      store.set("admin", input.value, sessionStorage);
      try {
        await admin("GET", "plugins");
        start();
      } catch (e) {
        store.set("admin", null, sessionStorage);
        put(error, describe(e));
      }
    } }, input, h("button", { type: "submit" }, "Log in")),
    error));
  input.focus();
}

// ---- Tabs ---------------------------------------------------------------

const tabs = {
  Overview: overview,
  Sessions: sessions,
  Plugins: plugins,
  Queue: queue,
  Storage: storage,
  Accounts: accounts,
  API: describeApi,
};

function start(name = location.hash.slice(1) || "Overview") {
  stop();
  stop = () => {};
  if (!token()) {
    logIn();
    return;
  }
  put(who, h("button", { class: "plain", onclick: () => { store.set("admin", null, sessionStorage); stop(); logIn(); } }, "log out"));
  const body = h("section", { id: "tab", "aria-live": "polite" });
  const nav = h("nav", { class: "tabs", role: "tablist" }, Object.keys(tabs).map((tab) =>
    h("button", { role: "tab", "aria-selected": String(tab === name), onclick: () => { location.hash = tab; } }, tab)));
  put(main, nav, body);
  (tabs[name] ?? overview)(body).catch((error) => {
    if (error.status === 401 || error.status === 403) logIn(describe(error));
    else fill(body, h("p", { class: "error" }, describe(error)));
  });
}

/** Calls `refresh` now and every `ms` while the tab is shown: `stop()`
 * ends it, even while a refresh is under way. */
function every(ms, refresh) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try {
      await refresh();
    } catch (error) {
      if (stopped) return;
      if (error.status === 401) {
        stop();
        logIn(describe(error));
        return;
      }
      toast(describe(error));
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  return run();
}


// ---- Overview: health, instances, charts --------------------------------

/** `/metrics` as `{series: value}` summed over the labels a chart ignores. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-z_:][a-z0-9_:]*)(\{([^}]*)\})? (\S+)/i.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] ?? "").matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/gi)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function totals(samples) {
  const sum = (name, keep = () => true) => samples.filter((s) => s.name === name && keep(s.labels)).reduce((a, s) => a + s.value, 0);
  return {
    requests: sum("hoard_http_request_duration_seconds_count"),
    errors: sum("hoard_http_request_duration_seconds_count", (l) => Number(l.status) >= 500),
    actions: sum("hoard_http_request_duration_seconds_count", (l) => l.route === "actions"),
    actionSeconds: sum("hoard_http_request_duration_seconds_sum", (l) => l.route === "actions"),
    sessions: sum("hoard_live_sessions"),
    sockets: sum("hoard_ws_connections"),
  };
}

function chart(title, points, unit) {
  const max = Math.max(1e-9, ...points);
  const svg = h("svg:svg", { class: "chart", viewBox: "0 0 60 100", preserveAspectRatio: "none", role: "img", "aria-label": title });
  const at = (v, i) => `${i + 60 - points.length},${100 - (v / max) * 95}`;
  svg.append(h("svg:polyline", { points: points.map(at).join(" ") }));
  if (points.length > 0) {
    const [x, y] = at(points.at(-1), points.length - 1).split(",");
    svg.append(h("svg:circle", { cx: x, cy: y, r: 1.5 }));
  }
  const last = points.at(-1) ?? 0;
  return h("div", { class: "panel" }, h("h3", {}, title), h("p", { class: "small muted" }, `now ${last.toFixed(last < 10 ? 2 : 0)} ${unit} · top ${max.toFixed(max < 10 ? 2 : 0)}`), svg);
}

async function overview(body) {
  const health = h("div", { class: "panel" });
  const instances = h("div", { class: "panel" });
  const charts = h("div", { class: "grid" });
  fill(body, h("div", { class: "grid" }, health, instances), charts);
  const history = [];
  let before = null;
  await every(1000, async () => {
    const ready = await fetch("/readyz").then((r) => r.json()).catch(() => ({ status: "unreachable" }));
    put(health, h("h2", {}, "Health"),
      h("p", {}, h("span", { class: `tag ${ready.status === "ok" ? "good" : ready.status === "degraded" ? "warn" : "bad"}` }, ready.status)),
      ready.reasons ? h("ul", {}, ready.reasons.map((r) => h("li", {}, r))) : null);
    const cluster = await admin("GET", "cluster");
    put(instances, h("h2", {}, "Instances"),
      cluster.enabled
        ? table(["instance", "url", "up", "last beat", "sessions", "sockets"], cluster.instances.map((i) =>
            [i.id + (i.this ? " (this)" : ""), i.url, ago(i.up_ms), `${ago(i.last_beat_ms_ago)} ago`, String(i.live_sessions), String(i.sockets)]))
        : h("p", {}, "One instance (cluster mode is off)."));
    const now = { at: Date.now(), ...totals(parseMetrics(await api("GET", "/metrics"))) };
    if (before) {
      const s = (now.at - before.at) / 1000;
      const actions = now.actions - before.actions;
      history.push({
        rate: (now.requests - before.requests) / s,
        errors: (now.errors - before.errors) / s,
        latency: actions > 0 ? ((now.actionSeconds - before.actionSeconds) / actions) * 1000 : 0,
        sessions: now.sessions,
      });
      if (history.length > 60) history.shift();
    }
    before = now;
    put(charts,
      chart("Requests", history.map((p) => p.rate), "per s"),
      chart("Action latency (mean)", history.map((p) => p.latency), "ms"),
      chart("Server errors (5xx)", history.map((p) => p.errors), "per s"),
      chart("Sessions in memory", history.map((p) => p.sessions), ""));
  });
}

// ---- Sessions -----------------------------------------------------------

async function sessions(body) {
  const list = h("div", { class: "panel" });
  const watch = h("div", { class: "panel", hidden: true });
  let watching = null;
  fill(body, list, watch);
  let board = null;
  const show = async (id) => {
    if (watching !== id) board = h("div"); // a board per session watched
    watching = id;
    const summary = await api("GET", `/v1/sessions/${id}`);
    put(watch, h("h2", {}, `Spectator view of ${id.slice(0, 8)}`),
      h("p", { class: "small muted" }, `${summary.game} · ${summary.players.join(", ")} · ${summary.actions} actions`), board);
    watch.hidden = false;
    const draw = boards[summary.game];
    const ctx = { player: null, finished: summary.finished, act: () => Promise.reject(new Error("spectators do not act")), toast };
    if (draw) draw.render(board, summary.view, ctx);
    else fill(board, h("pre", { class: "json" }, JSON.stringify(summary.view, null, 2)));
  };
  const end = async (id) => {
    if (!confirm(`End session ${id}? Its players can no longer act.`)) return;
    try {
      await admin("POST", `sessions/${id}/end`);
      toast(`ended ${id.slice(0, 8)}`, false);
    } catch (error) {
      toast(describe(error));
    }
  };
  await every(3000, async () => {
    const { sessions: live } = await admin("GET", "sessions");
    put(list, h("h2", {}, `Live sessions (${live.length})`),
      live.length === 0 ? h("p", { class: "muted" }, "No session in memory.") :
      table(["session", "game", "players", "actions", "idle", "version", ""], live.map((s) => [
        h("code", { title: s.session }, s.session.slice(0, 8)), s.game, s.players.join(", "), String(s.actions),
        ago(s.idle_ms), h("code", { title: s.version }, s.version.slice(0, 12)),
        h("span", { class: "row" },
          h("button", { class: "plain", onclick: () => show(s.session).catch((e) => toast(describe(e))) }, "watch"),
          s.finished ? h("span", { class: "tag" }, "finished") : h("button", { class: "danger", onclick: () => end(s.session) }, "end")),
      ])));
    if (watching) await show(watching).catch(() => {});
  });
}

// ---- Plugins ------------------------------------------------------------

async function plugins(body) {
  const list = h("div", { class: "panel" });
  const file = h("input", { type: "file", accept: ".wasm", "aria-label": "component" });
  const name = h("input", { name: "plugin", required: true, "aria-label": "plugin name", placeholder: "plugin name" });
  const result = h("p", { role: "status" });
  fill(body, list, h("div", { class: "panel" }, h("h2", {}, "Deploy a new version"),
    h("p", { class: "small muted" }, "The component is checked and loaded as at start; running sessions move to it at their next action if it upgrades their state."),
    h("form", { class: "row", onsubmit: async (event) => {
      event.preventDefault();
      if (!file.files[0]) return;
      try {
        const deployed = await api("POST", `/admin/v1/plugins/${encodeURIComponent(name.value)}`, { token: token(), body: file.files[0], raw: true });
        put(result, `${deployed.plugin} is now ${deployed.version}`);
      } catch (error) {
        put(result, h("span", { class: "error" }, describe(error)));
      }
    } }, name, file, h("button", { type: "submit" }, "Deploy")), result));
  await every(5000, async () => {
    const { plugins: all } = await admin("GET", "plugins");
    put(list, h("h2", {}, "Plugins"), all.map((p) => h("div", {},
      h("h3", {}, `${p.plugin} (${p.game})`),
      table(["version", "game version", "", "sessions", "upgrades", "size"], p.versions.map((v) => [
        h("code", {}, v.version), v.game_version, v.current ? h("span", { class: "tag good" }, "current") : "",
        String(v.live_sessions), v.upgrades ? "yes" : "no", `${Math.round(v.bytes / 1024)} KiB`])))));
  });
}

// ---- The outage queue ---------------------------------------------------

async function queue(body) {
  const state = h("div", { class: "panel" });
  const letters = h("div", { class: "panel" });
  fill(body, state, letters);
  await every(3000, async () => {
    const { capabilities } = await admin("GET", "queue");
    put(state, h("h2", {}, "Outage queue"),
      capabilities.length === 0
        ? h("p", {}, "No outage layer here: storage is embedded (offline mode), so nothing is ever queued.")
        : table(["storage", "backend", "breaker", "queued ops", "queued bytes", "oldest", "replayed", "dead letters"], capabilities.map((c) => [
            c.capability, c.backend,
            h("span", { class: `tag ${c.breaker === "closed" ? "good" : "bad"}` }, c.breaker),
            String(c.queued_ops), String(c.queued_bytes), c.oldest_queued_ms ? ago(c.oldest_queued_ms) : "–",
            `${c.replayed_total} (${c.replay_rate_per_s}/s)`, String(c.dead_letters)])));
    const rows = [];
    for (const c of capabilities) {
      const { dead_letters: dead } = await admin("GET", `queue/dead-letters?capability=${c.capability}&limit=100`);
      for (const d of dead) rows.push({ ...d, capability: c.capability });
    }
    const act = (d, retry) => async () => {
      if (!retry && !confirm(`Drop dead letter ${d.id}? Its write is lost.`)) return;
      try {
        if (retry) await admin("POST", `queue/dead-letters/${d.capability}/${d.id}/retry`);
        else await admin("DELETE", `queue/dead-letters/${d.capability}/${d.id}`);
        toast(retry ? `queued ${d.id} again` : `dropped ${d.id}`, false);
      } catch (error) {
        toast(describe(error));
      }
    };
    put(letters, h("h2", {}, `Dead letters (${rows.length})`),
      rows.length === 0 ? h("p", { class: "muted" }, "None.") :
      table(["id", "storage", "plugin", "error", "attempts", "write", ""], rows.map((d) => [
        String(d.id), d.capability, d.plugin, d.error, String(d.attempts),
        h("pre", { class: "json" }, JSON.stringify(d.write)),
        h("span", { class: "row" }, h("button", { onclick: act(d, true) }, "retry"), h("button", { class: "danger", onclick: act(d, false) }, "drop"))])));
  });
}

// ---- Storage: a plugin's hot and cold data, read-only unless confirmed ----

/** One item of a listing as table cells: what, where, the value, its edit. */
function itemRow(item, edit) {
  const bytes = (b) => b.text ?? `hex ${b.hex}`;
  const pretty = (t) => {
    try {
      return JSON.stringify(JSON.parse(t), null, 1);
    } catch {
      return t;
    }
  };
  const text = (t) => h("pre", { class: "json" }, item.cut ? `${t} …(cut)` : pretty(t));
  if (item.record) {
    const r = item.record;
    // A cut body is not offered for editing: writing it back would cut it.
    const editable = edit && !item.cut;
    return ["record", `${r.collection} / ${r.key}`, `v${r.version}`, text(r.body), editable ? h("button", { class: "plain", onclick: () => edit(r) }, "edit") : ""];
  }
  if (item.value) {
    const v = item.value;
    // Only whole text values are edited as text (not cut ones, not bytes).
    const editable = edit && !item.cut && v.value.text !== undefined;
    return ["value", v.key, v.ttl_ms ? `ttl ${ago(v.ttl_ms)}` : "", text(bytes(v.value)), editable ? h("button", { class: "plain", onclick: () => edit(v) }, "edit") : ""];
  }
  if (item["hash-field"]) {
    const f = item["hash-field"];
    return ["hash field", `${f.key} . ${f.field}`, "", text(bytes(f.value)), ""];
  }
  if (item.score) return ["score", `${item.score.board} / ${item.score.member}`, "", String(item.score.score), ""];
  if (item.history) return ["history", `${item.history.stream} #${item.history.seq}`, "", text(item.history.body), ""];
  return ["?", "", "", JSON.stringify(item), ""];
}

async function storage(body) {
  const { plugins: all } = await admin("GET", "storage");
  const plugin = h("select", { name: "plugin", "aria-label": "plugin" }, all.map((p) => h("option", { value: p.plugin }, p.plugin)));
  const capability = h("select", { name: "capability", "aria-label": "storage" }, h("option", { value: "cold" }, "cold"), h("option", { value: "hot" }, "hot"));
  const prefix = h("input", { name: "prefix", "aria-label": "prefix", placeholder: "key, collection, board or stream prefix" });
  const listing = h("div", { class: "panel" });
  const editor = h("div", { class: "panel", hidden: true });
  const edit = (what) => {
    const record = what.collection !== undefined;
    const text = h("textarea", { rows: 8, name: "edit", "aria-label": "new value" });
    text.value = record ? what.body : what.value.text ?? "";
    put(editor, h("h2", {}, record ? `Edit record ${what.collection} / ${what.key}` : `Edit value ${what.key}`),
      h("p", { class: "small muted" }, record
        ? `Written only if the record is still at version ${what.version}. A game that reads it through a cache sees the change when its cached copy expires.`
        : "Sets the value (as text), keeping the time it has left to live."),
      text,
      h("div", { class: "row" },
        h("button", { class: "danger", onclick: async () => {
          let request;
          try {
            request = record
              ? { record: { collection: what.collection, key: what.key, body: JSON.parse(text.value), expected_version: what.version } }
              : { value: { key: what.key, value: text.value, ttl_ms: what.ttl_ms ?? null } };
          } catch {
            toast("the body is not JSON");
            return;
          }
          if (!confirm(`Write this to ${plugin.value}'s ${record ? "cold" : "hot"} storage? The game's data changes.`)) return;
          try {
            await admin("POST", `storage/${plugin.value}/edit`, { body: request });
            toast("written", false);
            editor.hidden = true;
            await show();
          } catch (error) {
            toast(describe(error));
          }
        } }, "Write"),
        h("button", { class: "plain", onclick: () => { editor.hidden = true; } }, "Cancel")));
    editor.hidden = false;
    text.focus();
  };
  const show = async () => {
    const found = await admin("GET", `storage/${plugin.value}?capability=${capability.value}&prefix=${encodeURIComponent(prefix.value)}&limit=200`);
    const counts = Object.entries(found.counts).map(([k, n]) => `${n} ${k}`).join(", ") || "nothing";
    put(listing, h("h2", {}, `${found.plugin}: ${found.capability} storage`),
      h("p", { class: "small muted" }, `${counts}${found.truncated ? " (the first 200 shown: narrow with a prefix)" : ""} · namespace ${found.namespace}`),
      table(["kind", "where", "", "value", ""], found.items.map((item) => itemRow(item, edit))));
  };
  fill(body, h("div", { class: "panel" }, h("h2", {}, "Storage browser"),
    h("p", { class: "small muted" }, "Read-only: an edit is written only after you confirm it."),
    h("form", { class: "row", onsubmit: (event) => { event.preventDefault(); show().catch((e) => toast(describe(e))); } },
      plugin, capability, prefix, h("button", { type: "submit" }, "Show"))), editor, listing);
  await show();
}

// ---- Accounts -------------------------------------------------------------

async function accounts(body) {
  const prefix = h("input", { name: "prefix", "aria-label": "name starts with", placeholder: "name starts with" });
  const listing = h("div", { class: "panel" });
  let cursor = null;
  const show = async (more = false) => {
    const query = `accounts?prefix=${encodeURIComponent(prefix.value)}&limit=50${more && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const found = await admin("GET", query);
    cursor = found.next_cursor;
    const toggle = (a) => async () => {
      const verb = a.disabled ? "enable" : "disable";
      if (!a.disabled && !confirm(`Disable ${a.name}? Its logins end now and it cannot log in.`)) return;
      try {
        await admin("POST", `accounts/${encodeURIComponent(a.name)}/${verb}`);
        toast(`${a.name}: ${verb}d`, false);
        await show();
      } catch (error) {
        toast(describe(error));
      }
    };
    put(listing, h("h2", {}, "Accounts"),
      found.accounts.length === 0 ? h("p", { class: "muted" }, "No account matches.") :
      table(["name", "id", "created", "logins", "", ""], found.accounts.map((a) => [
        a.name, h("code", {}, a.id), new Date(a.created_ms).toISOString().slice(0, 16).replace("T", " "), String(a.live_tokens),
        a.disabled ? h("span", { class: "tag bad" }, "disabled") : h("span", { class: "tag good" }, "active"),
        h("button", { class: a.disabled ? "plain" : "danger", onclick: toggle(a) }, a.disabled ? "enable" : "disable")])),
      cursor ? h("button", { class: "plain", onclick: () => show(true).catch((e) => toast(describe(e))) }, "more") : null);
  };
  fill(body, h("div", { class: "panel" }, h("h2", {}, "Find accounts"),
    h("form", { class: "row", onsubmit: (event) => { event.preventDefault(); show().catch((e) => toast(describe(e))); } },
      prefix, h("button", { type: "submit" }, "Find"))), listing);
  await show();
}

// ---- The API's description ----------------------------------------------

async function describeApi(body) {
  const doc = await api("GET", "/openapi.json");
  fill(body, h("div", { class: "panel" },
    h("h2", {}, `${doc.info.title} ${doc.info.version}`),
    h("p", {}, doc.info.description, " ", h("a", { href: "/openapi.json" }, "openapi.json")),
    Object.entries(doc.paths).map(([path, item]) => Object.entries(item)
      .filter(([method]) => ["get", "post", "put", "delete", "head"].includes(method))
      .map(([method, op]) => h("details", {},
        h("summary", {}, h("code", {}, `${method.toUpperCase()} ${path}`), ` · ${op.summary ?? ""}`),
        h("p", { class: "small" }, op.description ?? ""),
        table(["status", "meaning"], Object.entries(op.responses ?? {}).map(([status, r]) => [status, r.description ?? ""])))))));
}

window.addEventListener("hashchange", () => start());
start();
