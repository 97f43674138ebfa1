// A roguelike run from the keyboard: an account's hero walks the dungeon
// with the arrow and vi keys towards the monsters it sees (exploring until
// it sees one) and fights by walking into them; the log on the page tells.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, person, shot, assertClean, assertFits, call, seatOf, HOST, DESKTOP, PHONE } from "./harness.js";

const STEPS = { "0,-1": "ArrowUp", "0,1": "ArrowDown", "-1,0": "ArrowLeft", "1,0": "ArrowRight", "-1,-1": "y", "1,-1": "u", "-1,1": "b", "1,1": "n" };

/** The first step of a shortest walk from the hero to a cell `goal(x, y)`
 * accepts, over cells the hero remembers as open; null if none. */
function firstStep(view, goal) {
  const rows = view.map.rows;
  const blocked = new Set((view.monsters ?? []).map((m) => `${m.x},${m.y}`));
  const open = (x, y) => y >= 0 && y < rows.length && x >= 0 && x < rows[y].length && !"# ".includes(rows[y][x]) && !blocked.has(`${x},${y}`);
  const start = `${view.you.x},${view.you.y}`;
  const first = new Map([[start, null]]);
  const queue = [[view.you.x, view.you.y]];
  while (queue.length) {
    const [x, y] = queue.shift();
    if (goal(x, y) && `${x},${y}` !== start) return first.get(`${x},${y}`);
    for (const [dx, dy] of Object.keys(STEPS).map((k) => k.split(",").map(Number))) {
      const [nx, ny] = [x + dx, y + dy];
      const key = `${nx},${ny}`;
      if (first.has(key) || !open(nx, ny)) continue;
      first.set(key, first.get(`${x},${y}`) ?? `${dx},${dy}`);
      queue.push([nx, ny]);
    }
  }
  return null;
}

test("a roguelike hero moves and fights from the keyboard", async () => {
  const chrome = await browser();
  try {
    const page = await person(chrome, DESKTOP);
    await page.goto(`${HOST}/`);
    await page.getByLabel("Account name").fill("rhea");
    await page.getByLabel("Secret").fill("a long secret");
    await page.getByRole("button", { name: "Register" }).click();
    await page.locator('[data-game="roguelike"]').waitFor();
    // A run made with the API from a chosen seed (the same dungeon every
    // time), unlisted: the hero comes in by its link and takes a seat.
    const created = await call("POST", "/v1/games/roguelike/sessions", { config: { party: 1 }, seed: 7 });
    assert.equal(created.status, 201);
    const session = created.json.session;
    await page.goto(`${HOST}/#/s/${session}`);
    await page.getByRole("button", { name: "Take a seat" }).click();
    await page.getByText("you are rhea").waitFor();
    await page.locator(".dungeon").waitFor();
    const { token } = await seatOf(page, session);
    const view = async () => (await call("GET", `/v1/sessions/${session}/view`, undefined, token)).json.view;

    const swung = (v) => (v.log ?? []).some((line) => /You (hit|miss) the/.test(line));
    let moved = 0;
    let fought = false;
    for (let turn = 0; turn < 400 && !fought; turn++) {
      const v = await view();
      if (v.phase === "over" || v.you.hp <= 0) break;
      const adjacent = (v.monsters ?? []).find((m) => Math.abs(m.x - v.you.x) <= 1 && Math.abs(m.y - v.you.y) <= 1);
      let step;
      if (adjacent && v.ap < 2) {
        step = null; // an attack takes 2 AP: end the turn
      } else if (adjacent) {
        step = `${adjacent.x - v.you.x},${adjacent.y - v.you.y}`;
      } else if ((v.monsters ?? []).length > 0) {
        step = firstStep(v, (x, y) => v.monsters.some((m) => Math.abs(m.x - x) <= 1 && Math.abs(m.y - y) <= 1));
      } else {
        // Explore: the nearest open cell beside one never seen.
        step = firstStep(v, (x, y) => [-1, 0, 1].some((dy) => [-1, 0, 1].some((dx) => v.map.rows[y + dy]?.[x + dx] === " ")));
      }
      await page.locator("body").press(step ? STEPS[step] : ".");
      await page.waitForTimeout(60);
      const after = await view();
      if (adjacent) fought = swung(after);
      else if (after.you.x !== v.you.x || after.you.y !== v.you.y) moved += 1;
    }
    assert.ok(moved > 0, "the hero moved from the keyboard");
    assert.ok(fought, "the hero fought from the keyboard");
    await page.locator(".log li", { hasText: /You (hit|miss) the/ }).first().waitFor();
    await shot(page, "roguelike");

    // On a phone, the same run as a spectator sees it.
    const phone = await person(chrome, PHONE);
    await phone.goto(`${HOST}/#/s/${session}`);
    await phone.locator(".dungeon").waitFor();
    await phone.getByText("watching as a spectator").waitFor();
    await shot(phone, "roguelike");
    await assertFits(phone);
    assertClean(page, phone);
  } finally {
    await chrome.close();
  }
});
