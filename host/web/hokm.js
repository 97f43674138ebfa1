// Hokm's table: your hand as cards to click (only the legal ones enabled),
// the Hakem's trump chooser, the trick on the table, tricks and points, and
// the turn clock. The view is the host's: a hand reaches only its holder.
import { h, put } from "./lib.js";

const SUITS = { S: ["♠", "spades"], H: ["♥", "hearts"], D: ["♦", "diamonds"], C: ["♣", "clubs"] };
const RANKS = { T: "10", J: "J", Q: "Q", K: "K", A: "A" };
const PLACES = ["south", "east", "north", "west"];

const rank = (card) => RANKS[card[0]] ?? card[0];
const suit = (card) => card[card.length - 1];
const red = (card) => suit(card) === "H" || suit(card) === "D";
const spoken = (card) => `${rank(card)} of ${SUITS[suit(card)][1]}`;

function face(card, tag = "span", props = {}) {
  return h(tag, { class: `card${red(card) ? " red" : ""}`, "data-card": card, "aria-label": spoken(card), ...props },
    rank(card), h("span", { "aria-hidden": "true" }, SUITS[suit(card)][0]));
}

/** The cards of `hand` that may be played on `trick`: the suit led if you
 * hold it, else any. */
export function legal(hand, trick) {
  if (trick.length === 0) return new Set(hand);
  const led = suit(trick[0].card);
  const following = hand.filter((card) => suit(card) === led);
  return new Set(following.length > 0 ? following : hand);
}

/** The turn clock of each board: when the current turn started. */
const clocks = new WeakMap();

/** The view each board shows now. */
const shown = new WeakMap();

export function render(board, view, ctx) {
  shown.set(board, view);
  // A refused move frees the hand again, unless a newer view came since.
  const again = () => { if (shown.get(board) === view) render(board, view, ctx); };
  const you = view.you;
  const mySeat = you?.seat ?? 0;
  const place = (seat) => PLACES[(seat - mySeat + 4) % 4];
  const name = (seat) => view.seats[seat]?.player ?? "(empty)";
  const myTurn = you && view.turn === you.seat && !ctx.finished;
  const team = (t) => view.seats.filter((s) => s.team === t).map((s) => s.player).join(" & ") || `team ${t}`;

  const seats = view.seats.map((s) =>
    h("div", { class: `seat ${place(s.seat)}${view.turn === s.seat ? " turn" : ""}`, "data-seat": s.seat },
      h("strong", {}, s.player), s.seat === view.hakem && view.phase !== "waiting" ? " ♛ Hakem" : "",
      h("br"), `${s.cards} cards · team ${s.team}`,
    ));
  const trick = h("div", { class: "trick", "aria-label": "the trick", "aria-live": "polite" },
    view.trick.length === 0 ? h("span", { class: "small" }, view.trump ? `trump ${SUITS[view.trump][0]}` : "") : null,
    view.trick.map((p) => h("div", { class: "play" }, face(p.card), h("small", {}, name(p.seat)))),
  );

  const hand = you?.hand ?? [];
  const allowed = view.phase === "playing" && myTurn ? legal(hand, view.trick) : new Set();
  // A click holds the hand until the host answers: no card goes twice.
  const hold = () => cards.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  const cards = h("div", { class: "hand", role: "group", "aria-label": "your hand" },
    hand.map((card) => face(card, "button", {
      disabled: !allowed.has(card),
      onclick: () => {
        hold();
        ctx.act({ type: "play", card }).catch(again);
      },
    })));

  const chooser = view.phase === "choosing_trump" && myTurn
    ? h("div", { class: "panel", role: "group", "aria-label": "choose trump" },
        h("strong", {}, "You are the Hakem: name trump "),
        Object.entries(SUITS).map(([letter, [symbol, word]]) =>
          h("button", { "data-suit": letter, "aria-label": word, onclick: (event) => {
            event.target.closest("[role=group]").querySelectorAll("button").forEach((b) => { b.disabled = true; });
            ctx.act({ type: "trump", suit: letter }).catch(again);
          } }, `${symbol} ${word}`)))
    : null;

  const clock = h("span", { class: "clock", role: "timer" });
  const turnKey = `${view.hand_number}/${view.turn}/${view.trick.length}/${view.tricks}`;
  let timing = clocks.get(board);
  clearInterval(timing?.interval);
  if (!timing || timing.key !== turnKey) timing = { key: turnKey, since: Date.now() };
  if (view.turn_ms && view.turn !== null && !ctx.finished) {
    const tick = () => {
      const left = Math.max(0, view.turn_ms - (Date.now() - timing.since));
      clock.textContent = ` · ${Math.ceil(left / 1000)} s left`;
    };
    tick();
    timing.interval = setInterval(tick, 500);
  }
  clocks.set(board, timing);

  const status = ctx.finished
    ? h("strong", { class: "outcome" }, view.winner_team === null ? "Game over: ended before anyone won" : `Game over: ${team(view.winner_team)} won`)
    : view.phase === "waiting"
      ? `Waiting for players: ${view.seats.length}/4 seated`
      : view.phase === "choosing_trump"
        ? `${name(view.turn)} (the Hakem) is choosing trump`
        : myTurn ? h("strong", {}, "Your turn") : `${name(view.turn)} to play`;

  put(board,
    h("div", { class: "panel" },
      h("div", { class: "score" },
        h("span", {}, `Hand ${view.hand_number}`),
        h("span", {}, "Trump: ", view.trump ? `${SUITS[view.trump][0]} ${SUITS[view.trump][1]}` : "not yet"),
        h("span", { "data-score": "tricks" }, `Tricks ${view.tricks[0]}–${view.tricks[1]}`),
        h("span", { "data-score": "points" }, `Points ${view.points[0]}–${view.points[1]} of ${view.target_points}`),
      ),
      h("p", { class: "turn-line", "aria-live": "polite" }, status, clock),
    ),
    h("div", { class: "table" }, seats, trick),
    view.hakem_draw ? h("p", { class: "small" }, "The draw for Hakem: ", view.hakem_draw.map((p) => `${name(p.seat)} ${rank(p.card)}${SUITS[suit(p.card)][0]}`).join(", ")) : null,
    chooser,
    you ? h("div", {}, h("h3", {}, "Your hand"), cards) : h("p", { class: "muted" }, "You watch as a spectator: no hand is shown."),
    view.last_trick
      ? h("p", { class: "small muted" }, `Last trick, won by ${name(view.last_trick.winner)}: `,
          view.last_trick.plays.map((p) => `${rank(p.card)}${SUITS[suit(p.card)][0]}`).join(" "))
      : null,
  );
}
