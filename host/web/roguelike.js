// The roguelike: the ASCII map in a monospace grid with fog of war (what you
// see now is lit; what you remember is dim; the rest is blank), movement and
// attacks from the keyboard (arrows, vi keys or the numpad; walking into a
// monster attacks it), the inventory, the character sheet and the log.
import { h, put } from "./lib.js";

const DIRS = {
  n: [0, -1], ne: [1, -1], e: [1, 0], se: [1, 1], s: [0, 1], sw: [-1, 1], w: [-1, 0], nw: [-1, -1],
};
const KEYS = {
  ArrowUp: "n", ArrowDown: "s", ArrowLeft: "w", ArrowRight: "e",
  k: "n", j: "s", h: "w", l: "e", y: "nw", u: "ne", b: "sw", n: "se",
  8: "n", 2: "s", 4: "w", 6: "e", 7: "nw", 9: "ne", 1: "sw", 3: "se",
};

/** The latest view and context of each board, for its key handler. */
const boards = new WeakMap();

/** The action a step towards `dir` is: an attack when a monster stands there. */
export function step(view, dir) {
  const [dx, dy] = DIRS[dir];
  const x = view.you.x + dx;
  const y = view.you.y + dy;
  const foe = (view.monsters ?? []).some((m) => m.x === x && m.y === y);
  return foe ? { type: "attack", dir } : { type: "move", dir };
}

function keyed(board) {
  const onKey = (event) => {
    if (!board.isConnected) {
      document.removeEventListener("keydown", onKey);
      return;
    }
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    const { view, ctx } = boards.get(board) ?? {};
    if (!view?.you || ctx.finished || event.ctrlKey || event.metaKey || event.altKey) return;
    if (view.turn !== view.you.name) return; // not your turn: nothing to send
    let action = null;
    const dir = KEYS[event.key];
    if (dir) action = step(view, dir);
    else if (event.key === "g" || event.key === ",") action = { type: "pickup" };
    else if (event.key === ">") action = { type: "descend" };
    else if (event.key === "." || event.key === "e" || event.key === "5") action = { type: "end" };
    if (!action) return;
    event.preventDefault();
    ctx.act(action).catch(() => {});
  };
  document.addEventListener("keydown", onKey);
}

/** The map's rows as spans: lit cells bright, remembered ones dim, and
 * heroes, monsters and items coloured. */
function map(view) {
  const lit = view.map?.lit ?? [];
  const foes = new Set((view.monsters ?? []).map((m) => m.glyph));
  const items = new Set((view.items ?? []).map((i) => i.glyph));
  const kind = (ch, isLit) => {
    if (!isLit) return "";
    if (ch === "@") return "lit me";
    if (/[1-4]/.test(ch)) return "lit ally";
    if (foes.has(ch)) return "lit foe";
    if (items.has(ch)) return "lit item";
    return "lit";
  };
  const lines = (view.ascii ?? "").split("\n");
  return lines.map((line, y) => {
    const spans = [];
    let run = "";
    let runKind = null;
    for (let x = 0; x < line.length; x++) {
      const k = kind(line[x], lit[y]?.[x] === "*");
      if (k !== runKind && run) {
        spans.push(runKind ? h("span", { class: runKind }, run) : run);
        run = "";
      }
      runKind = k;
      run += line[x];
    }
    if (run) spans.push(runKind ? h("span", { class: runKind }, run) : run);
    spans.push("\n");
    return spans;
  });
}

export function render(board, view, ctx) {
  if (!boards.has(board)) keyed(board);
  boards.set(board, { view, ctx });
  const you = view.you;
  const act = (action) => () => ctx.act(action).catch(() => {});
  const myTurn = you && view.turn === you.name && !ctx.finished;
  const party = h("ul", { class: "plain" }, view.party.map((p) =>
    h("li", {}, h("strong", {}, p.name), ` · level ${p.level} · ${p.hp}/${p.hp_max} HP`, p.fate && p.fate !== "alive" ? ` · ${p.fate}` : "")));

  if (view.phase === "gathering") {
    put(board, h("div", { class: "panel" },
      h("p", {}, `Gathering the party: ${view.party.length} of ${view.party_size}. The run starts when it is complete.`), party));
    return;
  }
  const pad = you && !ctx.finished
    ? h("div", { class: "pad", role: "group", "aria-label": "move or attack" },
        ["nw", "n", "ne", "w", null, "e", "sw", "s", "se"].map((d) => d
          ? h("button", { "aria-label": d, onclick: act(step(view, d)) }, { n: "↑", s: "↓", e: "→", w: "←", ne: "↗", nw: "↖", se: "↘", sw: "↙" }[d])
          : h("button", { "aria-label": "end turn", onclick: act({ type: "end" }) }, "·")))
    : null;
  const equipped = new Set(Object.values(you?.equipped ?? {}).filter(Boolean));
  const inventory = you
    ? h("ul", { class: "plain", "aria-label": "inventory" }, you.inventory.length === 0 ? h("li", { class: "muted" }, "Nothing carried.") : null,
        you.inventory.map((item) => h("li", { class: "row" },
          h("span", {}, `${item.glyph} ${item.name}`, equipped.has(item.id) ? " (equipped)" : ""),
          equipped.has(item.id)
            ? h("button", { class: "plain", onclick: act({ type: "unequip", item: item.id }) }, "unequip")
            : h("button", { class: "plain", onclick: act({ type: "equip", item: item.id }) }, "equip"),
          h("button", { class: "plain", onclick: act({ type: "use", item: item.id }) }, "use"),
          h("button", { class: "plain", onclick: act({ type: "drop", item: item.id }) }, "drop"))))
    : null;
  const sheet = you
    ? h("table", { class: "sheet" },
        [["HP", `${you.hp}/${you.hp_max}`], ["Level", you.level], ["Experience", `${you.experience} (next ${you.next_level})`],
          ["Stats", Object.entries(you.stats ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")],
          ["Skills", Object.entries(you.skills ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")],
          ["Kills", you.kills], ["Deaths", you.deaths], ["Runs", you.runs]]
          .map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v)))))
    : h("p", { class: "muted" }, "You watch as a spectator: you see what the whole party sees.");

  const line = ctx.finished
    ? h("strong", { class: "outcome" }, view.won ? "The party won the run." : "The run is over.")
    : myTurn ? h("strong", {}, `Your turn: ${view.ap} AP`) : `${view.turn ?? "nobody"}'s turn`;
  put(board,
    h("div", { class: "panel" },
      h("div", { class: "row" }, h("span", {}, `Depth ${view.depth}/${view.depths}`), h("span", {}, `Round ${view.round}`), h("span", { "aria-live": "polite" }, line)),
      h("p", { class: "small muted" }, "Arrows, vi keys (hjklyubn) or the numpad move; walking into a monster attacks it; g picks up, > goes down, . ends your turn."),
    ),
    h("pre", { class: "dungeon", tabindex: "0", "aria-label": "the dungeon map" }, map(view)),
    h("div", { class: "grid" },
      h("div", { class: "panel" }, h("h3", {}, "Actions"), pad,
        you && !ctx.finished ? h("div", { class: "row" },
          h("button", { class: "plain", onclick: act({ type: "pickup" }) }, "pick up"),
          h("button", { class: "plain", onclick: act({ type: "descend" }) }, "descend"),
          h("button", { class: "plain", onclick: act({ type: "end" }) }, "end turn"),
          h("button", { class: "plain", onclick: act({ type: "leave" }) }, "leave")) : null),
      h("div", { class: "panel" }, h("h3", {}, "Character"), sheet),
      you ? h("div", { class: "panel" }, h("h3", {}, "Inventory"), inventory) : null,
      h("div", { class: "panel" }, h("h3", {}, "Party"), party),
      h("div", { class: "panel log" }, h("h3", {}, "Messages"),
        h("ul", { class: "plain", "aria-live": "polite" }, (view.log ?? []).map((m) => h("li", {}, typeof m === "string" ? m : JSON.stringify(m))))),
    ),
  );
}
