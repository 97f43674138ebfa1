// The player client: who you are (an account or a guest), the lobby, and a
// session's page, which lives on the session's WebSocket events. Each game
// draws its own view (hokm.js, roguelike.js, tabletop.js); a game without
// one gets its view as JSON and a box for actions.
import { h, put, fill, api, store, Live, describe, toast, table } from "./lib.js";
import * as hokm from "./hokm.js";
import * as roguelike from "./roguelike.js";
import * as tabletop from "./tabletop.js";

const boards = { hokm, roguelike, tabletop };
const main = document.getElementById("main");
const who = document.getElementById("who");
let leave = () => {};
/** Counts page changes: a page whose loading outlived it stops. */
let visit = 0;

/** Who plays from this browser: `{account, name, token}` or `{guest: name}`. */
const me = () => store.get("me");

function header() {
  const someone = me();
  put(
    who,
    someone?.account ? `${someone.name}` : someone?.guest ? `guest: ${someone.guest}` : "not signed in",
    someone
      ? h("button", { class: "plain", onclick: () => { store.set("me", null); route(); } }, "sign out")
      : null,
  );
}

// ---- Signing in ---------------------------------------------------------

function signIn() {
  const error = h("p", { class: "error", role: "alert" });
  const name = h("input", { name: "name", autocomplete: "username", required: true, maxlength: 32 });
  const secret = h("input", { name: "secret", type: "password", autocomplete: "current-password", minlength: 8 });
  const guest = h("input", { name: "guest", required: true, maxlength: 32, placeholder: "a name for this game" });
  const account = async (path) => {
    try {
      if (path === "register") {
        await api("POST", "/v1/accounts", { body: { name: name.value, secret: secret.value } });
      }
      const login = await api("POST", "/v1/login", { body: { name: name.value, secret: secret.value } });
      store.set("me", { account: login.account, name: login.name, token: login.token });
      route();
    } catch (e) {
      put(error, describe(e));
    }
  };
  return h(
    "section",
    { class: "panel", "aria-labelledby": "who-title" },
    h("h2", { id: "who-title" }, "Who is playing?"),
    h("div", { class: "grid" },
      h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); account("login"); } },
        h("label", {}, "Account name", name),
        h("label", {}, "Secret", secret),
        h("button", { type: "submit" }, "Log in"),
        h("button", { type: "button", class: "plain", onclick: () => account("register") }, "Register"),
      ),
      h("form", {
        class: "row",
        onsubmit: (e) => {
          e.preventDefault();
          store.set("me", { guest: guest.value.trim() });
          route();
        },
      },
        h("label", {}, "Guest name", guest),
        h("button", { type: "submit" }, "Play as a guest"),
      ),
    ),
    error,
  );
}

// ---- The lobby ----------------------------------------------------------

/** Seats this browser holds: session id → `{player, token, game}`. */
const seat = (session) => store.get(`seat.${session}`);

async function join(session, game) {
  const someone = me();
  const joined = someone?.account
    ? await api("POST", `/v1/sessions/${session}/join`, { token: someone.token, body: {} })
    : await api("POST", `/v1/sessions/${session}/join`, { body: { name: someone.guest } });
  store.set(`seat.${session}`, { player: joined.player, token: joined.token, game });
  location.hash = `#/s/${session}`;
}

/** The settings a new table of `game` may take. */
function settings(game) {
  if (game === "hokm") {
    const points = h("select", { name: "target_points" }, [1, 3, 5, 7].map((n) => h("option", { value: String(n), selected: n === 7 }, String(n))));
    const clock = h("select", { name: "turn_ms" }, [["", "none"], ["30000", "30 s"], ["60000", "1 min"], ["300000", "5 min"]].map(([v, t]) => h("option", { value: v }, t)));
    return {
      fields: [h("label", {}, "Points to win", points), h("label", {}, "Turn clock", clock)],
      config: () => ({ target_points: Number(points.value), ...(clock.value ? { turn_ms: Number(clock.value) } : {}) }),
    };
  }
  if (game === "roguelike") {
    const party = h("select", { name: "party" }, [1, 2, 3, 4].map((n) => h("option", { value: String(n) }, String(n))));
    return { fields: h("label", {}, "Heroes", party), config: () => ({ party: Number(party.value) }) };
  }
  return { fields: null, config: () => ({}) };
}

function gameCard(game) {
  const list = h("ul", { class: "plain", "aria-label": `open ${game.name} tables` });
  const extra = h("div");
  const { fields, config } = settings(game.name);
  const refresh = async () => {
    const open = await api("GET", `/v1/games/${game.name}/sessions`);
    put(list, open.sessions.length === 0 ? h("li", { class: "muted" }, "No open tables: start one.") : null,
      open.sessions.map((s) => h("li", { class: "row" },
        h("span", {}, `${s.players.length}/${s.seats} seated`),
        h("span", { class: "muted" }, s.players.join(", ")),
        seat(s.session)
          ? h("a", { href: `#/s/${s.session}` }, "back to your seat")
          : h("button", { onclick: () => join(s.session, game.name).catch((e) => toast(describe(e))) }, "Join"),
      )));
  };
  const create = async (e) => {
    e.preventDefault();
    try {
      const created = await api("POST", `/v1/games/${game.name}/sessions`, { body: { config: config(), listed: true } });
      await join(created.session, game.name);
    } catch (error) {
      toast(describe(error));
    }
  };
  const rpcs = new Set(game.rpcs);
  const show = (title, name, input, rows) => async () => {
    try {
      const answer = await api("POST", `/v1/games/${game.name}/rpc/${name}`, { body: input });
      put(extra, h("h3", {}, title), rows(answer.result));
    } catch (error) {
      put(extra, h("p", { class: "error" }, describe(error)));
    }
  };
  const leaderboard = rpcs.has("leaderboard")
    ? h("button", { class: "plain", onclick: show("Leaderboard", "leaderboard", game.name === "roguelike" ? { board: "depth" } : {}, (r) =>
        table(["#", "player", game.name === "roguelike" ? "depth" : "wins"], (r.wins ?? r.rows ?? []).map((e) => [e.rank, e.player, e.wins ?? e.score]))) }, "Leaderboard")
    : null;
  const historyName = rpcs.has("history") ? "history" : rpcs.has("runs") ? "runs" : null;
  const history = historyName
    ? h("button", { class: "plain", onclick: show("Your matches", historyName, { limit: 100 }, (r) => {
        const name = me()?.account ? me().name : me()?.guest;
        const all = r.matches ?? r.runs ?? [];
        const mine = all.filter((m) => JSON.stringify(m.outcome).includes(JSON.stringify(name)));
        return table(["#", "outcome"], mine.reverse().map((m) => [m.seq, summary(m.outcome, name)]));
      }) }, "Match history")
    : null;
  refresh().catch((e) => put(list, h("li", { class: "error" }, describe(e))));
  return h("section", { class: "panel game", "data-game": game.name },
    h("h2", {}, game.name),
    h("p", { class: "muted small" }, game.description, ` · ${game.min_players}–${game.max_players} players`),
    h("form", { class: "row", onsubmit: create }, fields, h("button", { type: "submit" }, "New table")),
    h("h3", {}, "Open tables"),
    list,
    h("div", { class: "row" }, h("button", { class: "plain", onclick: refresh }, "Refresh"), leaderboard, history),
    extra,
  );
}

/** One line for a finished match, from `name`'s side. */
function summary(outcome, name) {
  if (outcome?.winners) return `${outcome.winners.includes(name) ? "won" : "lost"} ${outcome.points?.join("–") ?? ""} with ${outcome.players?.join(", ")}`;
  if (outcome?.result) return `${outcome.result}`;
  return JSON.stringify(outcome);
}

async function lobby() {
  const someone = me();
  put(main, h("h1", {}, "Lobby"));
  if (!someone) {
    fill(main, signIn());
    return;
  }
  const here = visit;
  const { games } = await api("GET", "/v1/games");
  if (here !== visit) return;
  fill(main, h("div", { class: "grid" }, games.map(gameCard)));
}

// ---- A session ----------------------------------------------------------

/** A selector that finds `el` again after a redraw, if it has one. */
function identify(el) {
  for (const attribute of ["name", "data-token", "data-card", "data-suit", "aria-label"]) {
    const value = el.getAttribute(attribute);
    if (value) return `[${attribute}="${CSS.escape(value)}"]`;
  }
  return null;
}

async function play(session) {
  const here = visit;
  const status = h("span", { class: "tag", role: "status" }, "connecting");
  const board = h("section", { class: "board-area", "aria-label": "the game" });
  const info = h("p", { class: "muted small" });
  let held = seat(session);
  let current = null;
  put(main, h("div", { class: "row" }, h("a", { href: "#/" }, "← lobby"), status), info, board);
  let summaryNow;
  try {
    summaryNow = await api("GET", `/v1/sessions/${session}`);
  } catch (error) {
    put(board, h("p", { class: "error" }, describe(error)));
    return;
  }
  if (here !== visit) return; // left meanwhile
  const game = summaryNow.game;
  const draw = boards[game] ?? generic;
  const describeSeat = () => {
    put(info, `${game} · `, held ? `you are ${held.player}` : "watching as a spectator",
      " · share this link to invite: ", h("code", {}, location.href));
    if (!held && !summaryNow.finished && me()) {
      fill(info, " ", h("button", { onclick: () => join(session, game).then(route).catch((e) => toast(describe(e))) }, "Take a seat"));
    }
  };
  describeSeat();
  const ctx = {
    player: held?.player ?? null,
    act: (action) => live.act(action).catch((error) => { toast(describe(error)); throw error; }),
    toast,
  };
  const live = new Live(session, {
    token: held?.token,
    onStatus: (text) => {
      status.textContent = text;
      status.className = `tag ${text === "live" || text === "resumed" ? "good" : text === "closed" ? "bad" : "warn"}`;
    },
    onState: (frame) => {
      current = frame;
      summaryNow.finished = frame.finished;
      // A new view redraws the board: whoever was typing keeps the field.
      const focused = board.contains(document.activeElement) ? identify(document.activeElement) : null;
      draw.render(board, frame.view, { ...ctx, finished: frame.finished, outcome: frame.outcome });
      if (focused) board.querySelector(focused)?.focus();
    },
    onMessage: (frame) => draw.message?.(board, frame.message, ctx),
    onEnd: (code, reason) => {
      if (code === 4001 && held) {
        // The seat's token no longer holds (the session moved on): watch.
        store.set(`seat.${session}`, null);
        held = null;
        play(session);
        return;
      }
      if (!current) put(board, h("p", { class: "error" }, `closed: ${reason || code}`));
    },
  });
  leave = () => live.close();
}

/** A game with no board of its own: its view as JSON, and actions typed in. */
const generic = {
  render(board, view, ctx) {
    const action = h("textarea", { rows: 2, "aria-label": "action (JSON)", placeholder: '{"type": "..."}' });
    put(board,
      h("pre", { class: "json panel" }, JSON.stringify(view, null, 2)),
      ctx.player && !ctx.finished
        ? h("form", { class: "row", onsubmit: (e) => {
            e.preventDefault();
            let parsed;
            try { parsed = JSON.parse(action.value); } catch { ctx.toast("the action is not JSON"); return; }
            ctx.act(parsed).catch(() => {});
          } }, action, h("button", { type: "submit" }, "Act"))
        : null,
    );
  },
};

// ---- Routing ------------------------------------------------------------

async function route() {
  visit += 1;
  leave();
  leave = () => {};
  header();
  const match = /^#\/s\/([0-9a-f]{32})$/.exec(location.hash);
  try {
    if (match) await play(match[1]);
    else await lobby();
  } catch (error) {
    put(main, h("p", { class: "error" }, describe(error)));
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
route();
