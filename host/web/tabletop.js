// The tabletop room: the grid board with tokens you drag (or move with the
// arrow keys once focused), the dice roller showing every die, and chat.
// Names and chat are shown as typed, as text.
import { h, put } from "./lib.js";

const TEMPLATES = ["", "goblin", "orc", "wolf", "knight", "wizard"];

/** What each board shows between renders: the chat typed but not sent. */
const drafts = new WeakMap();

function board(view, ctx) {
  const grid = h("div", { class: "board", role: "grid", "aria-label": `board ${view.width} by ${view.height}` });
  grid.style.gridTemplateColumns = `repeat(${view.width}, auto)`;
  const cells = [];
  for (let y = 0; y < view.height; y++) {
    for (let x = 0; x < view.width; x++) {
      const cell = h("div", { class: "cell", role: "gridcell", "data-x": x, "data-y": y });
      cells.push(cell);
      grid.append(cell);
    }
  }
  const movable = (t) => !ctx.finished && ctx.player && (view.free_movement || t.owner === ctx.player || view.gm === ctx.player);
  const move = (t, x, y) => {
    if (x < 0 || y < 0 || x >= view.width || y >= view.height || (x === t.x && y === t.y)) return;
    ctx.act({ type: "move_token", token: t.id, x, y }).catch(() => {});
  };
  for (const t of view.tokens) {
    const token = h("div", {
      class: `token${t.owner === ctx.player ? " mine" : ""}${t.hidden ? " hidden" : ""}`,
      "data-token": t.id,
      title: `${t.name} (${t.owner})${t.hp !== null && t.hp !== undefined ? ` · ${t.hp} HP` : ""}`,
      "aria-label": `${t.name} at ${t.x}, ${t.y}`,
      tabindex: movable(t) ? "0" : null,
    }, t.name.slice(0, 3));
    if (movable(t)) {
      draggable(token, grid, (x, y) => move(t, x, y));
      token.addEventListener("keydown", (event) => {
        const delta = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] }[event.key];
        if (!delta) return;
        event.preventDefault();
        move(t, t.x + delta[0], t.y + delta[1]);
      });
    }
    cells[t.y * view.width + t.x]?.append(token);
  }
  return grid;
}

/** Drags `token` over `grid` with the pointer (mouse, pen or finger); on
 * release over a cell, `drop(x, y)`. */
function draggable(token, grid, drop) {
  let over = null;
  const cellAt = (event) =>
    document.elementsFromPoint(event.clientX, event.clientY).find((el) => el.classList?.contains("cell") && grid.contains(el));
  token.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    token.setPointerCapture(event.pointerId);
    token.classList.add("dragging");
  });
  token.addEventListener("pointermove", (event) => {
    if (!token.classList.contains("dragging")) return;
    const cell = cellAt(event);
    if (cell !== over) {
      over?.classList.remove("over");
      over = cell;
      over?.classList.add("over");
    }
  });
  const end = (event, dropped) => {
    if (!token.classList.contains("dragging")) return;
    token.classList.remove("dragging");
    over?.classList.remove("over");
    const cell = dropped ? cellAt(event) : null;
    over = null;
    if (cell) drop(Number(cell.dataset.x), Number(cell.dataset.y));
  };
  token.addEventListener("pointerup", (event) => end(event, true));
  token.addEventListener("pointercancel", (event) => end(event, false));
}

function dice(roll) {
  return h("li", { "data-roll": roll.n },
    h("strong", {}, roll.by), ` rolled ${roll.expr}`, roll.label ? ` (${roll.label})` : "", ": ",
    roll.terms.map((term) => h("span", { class: "term", title: term.term },
      term.dice.length > 0 ? term.dice.map((d) => h("span", { class: "die" }, String(d))) : h("span", {}, term.term))),
    " = ", h("strong", { class: "total" }, String(roll.total)));
}

export function render(root, view, ctx) {
  const draft = drafts.get(root) ?? { chat: "", dice: "d20", token: "", template: "", hidden: false };
  drafts.set(root, draft);
  const playing = ctx.player && !ctx.finished;
  const chat = h("input", { name: "chat", maxlength: 500, "aria-label": "chat message", value: draft.chat, oninput: (e) => { draft.chat = e.target.value; } });
  const expr = h("input", { name: "dice", maxlength: 64, "aria-label": "dice", value: draft.dice, oninput: (e) => { draft.dice = e.target.value; } });
  const tokenName = h("input", { name: "token", maxlength: 32, "aria-label": "token name", placeholder: "name", value: draft.token, oninput: (e) => { draft.token = e.target.value; } });
  const template = h("select", { name: "template", "aria-label": "stat block", onchange: (e) => { draft.template = e.target.value; } },
    TEMPLATES.map((t) => h("option", { value: t, selected: t === draft.template }, t || "no stat block")));
  const hidden = h("input", { type: "checkbox", name: "hidden", checked: draft.hidden, onchange: (e) => { draft.hidden = e.target.checked; } });
  const free = () => {
    const taken = new Set(view.tokens.map((t) => `${t.x},${t.y}`));
    for (let i = 0; i < view.width * view.height; i++) {
      const [x, y] = [i % view.width, Math.floor(i / view.width)];
      if (!taken.has(`${x},${y}`)) return [x, y];
    }
    return [0, 0];
  };
  const submit = (handler) => (event) => {
    event.preventDefault();
    handler();
  };
  put(root,
    h("div", { class: "panel" },
      h("div", { class: "row" },
        h("span", {}, `GM: ${view.gm ?? "nobody yet"}`),
        h("span", {}, `Players: ${view.players.join(", ") || "none"}`),
        view.free_movement ? h("span", { class: "tag" }, "free movement") : null,
        ctx.finished ? h("strong", { class: "outcome" }, "The room is closed.") : null,
        playing && view.gm === ctx.player
          ? h("button", { class: "plain", onclick: () => ctx.act({ type: "free_movement", allowed: !view.free_movement }).catch(() => {}) }, view.free_movement ? "lock movement" : "free movement")
          : null,
        playing && view.gm === ctx.player ? h("button", { class: "danger", onclick: () => ctx.act({ type: "close" }).catch(() => {}) }, "close the room") : null,
      )),
    h("div", { class: "scroll" }, board(view, ctx)),
    h("div", { class: "grid" },
      h("div", { class: "panel" }, h("h3", {}, "Dice"),
        playing ? h("form", { class: "row", onsubmit: submit(() => ctx.act({ type: "roll", dice: expr.value }).catch(() => {})) }, expr, h("button", { type: "submit" }, "Roll")) : null,
        h("ul", { class: "plain log rolls", "aria-live": "polite" }, [...view.rolls].reverse().slice(0, 20).map(dice))),
      h("div", { class: "panel" }, h("h3", {}, "Chat"),
        playing ? h("form", { class: "row", onsubmit: submit(() => {
          const text = chat.value;
          draft.chat = "";
          ctx.act({ type: "chat", text }).catch(() => { draft.chat = text; });
        }) }, chat, h("button", { type: "submit" }, "Send")) : null,
        h("ul", { class: "plain log chat", "aria-live": "polite" }, [...view.chat].reverse().map((m) =>
          h("li", { "data-chat": m.n }, h("strong", {}, m.by), ": ", h("span", { class: "text" }, m.text)))),
        h("ul", { class: "plain shouts" })),
      playing ? h("div", { class: "panel" }, h("h3", {}, "Add a token"),
        h("form", { class: "row", onsubmit: submit(() => {
          const [x, y] = free();
          const action = { type: "add_token", name: tokenName.value, x, y };
          if (template.value) action.template = template.value;
          if (hidden.checked) action.hidden = true;
          draft.token = "";
          ctx.act(action).catch(() => { draft.token = action.name; });
        }) }, tokenName, template,
          view.gm === ctx.player ? h("label", {}, "hidden", hidden) : null,
          h("button", { type: "submit" }, "Add"))) : null,
    ),
  );
}

/** A message the room published: a shout, said now and not kept. */
export function message(root, message) {
  const shouts = root.querySelector(".shouts");
  if (!shouts || typeof message?.shout !== "string") return;
  shouts.prepend(h("li", {}, h("strong", {}, String(message.by ?? "")), " shouts: ", message.shout));
}
