// Four people play a whole game of Hokm through the page, clicking cards;
// one reloads mid-game and carries on; a fifth opens the link and sees the
// spectator's view only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, person, guest, shot, assertClean, assertFits, until, refusals, DESKTOP, PHONE, HOST } from "./harness.js";

/** Whether `page` shows the end of the game. */
const over = (page) => page.locator(".outcome").count().then((n) => n > 0);

/** Makes `page`'s move if it is its turn: names trump as the Hakem, or
 * plays its first enabled (legal) card. */
async function move(page) {
  // The page may move on between finding a button and clicking it (the
  // state it showed was already old): then it was not this page's move.
  const click = (locator) => locator.first().click({ timeout: 1000 }).then(() => true, () => false);
  const suit = page.locator("button[data-suit]:enabled");
  if (await suit.count()) return click(suit);
  const card = page.locator(".hand button.card:enabled");
  if (await card.count()) return click(card);
  return false;
}

test("four pages play a whole Hokm game by clicking cards", async () => {
  const chrome = await browser();
  try {
    const names = ["north", "west", "south", "east"];
    const sizes = [DESKTOP, PHONE, DESKTOP, DESKTOP];
    const pages = [];
    for (const [i, name] of names.entries()) {
      const page = await person(chrome, sizes[i]);
      await guest(page, name);
      pages.push(page);
    }
    const [north, west] = pages;
    await shot(north, "lobby");
    await shot(west, "lobby");
    await assertFits(west);

    // North opens a table for one point; the others join it from the lobby.
    await north.locator('[data-game="hokm"] select[name="target_points"]').selectOption("1");
    await north.locator('[data-game="hokm"] select[name="turn_ms"]').selectOption("300000");
    await north.locator('[data-game="hokm"]').getByRole("button", { name: "New table" }).click();
    await north.waitForURL(/#\/s\/[0-9a-f]{32}$/);
    const session = north.url().split("/").pop();
    for (const page of pages.slice(1)) {
      const card = page.locator('[data-game="hokm"]');
      await card.getByRole("button", { name: "Refresh" }).click();
      await card.getByRole("button", { name: "Join" }).first().click();
      await page.waitForURL(new RegExp(`#/s/${session}$`));
    }
    for (const page of pages) await page.locator(".hand button.card").first().waitFor();
    // The turn clock runs down for whoever must move.
    assert.match(await north.locator(".clock").textContent(), /\d+ s left/);

    // A fifth person opens the link: the spectator's view, no hand at all.
    const watcher = await person(chrome, PHONE);
    await watcher.goto(`${HOST}/#/s/${session}`);
    await watcher.getByText("watching as a spectator").waitFor();
    await watcher.locator(".table").waitFor();
    assert.equal(await watcher.locator(".hand").count(), 0, "a spectator sees no hand");
    assert.equal(await watcher.locator("button.card").count(), 0);

    let moves = 0;
    let reloaded = false;
    while (!(await over(north))) {
      let moved = false;
      for (const page of pages) {
        if (await move(page)) {
          moved = true;
          moves += 1;
          await page.waitForTimeout(30);
        }
      }
      if (moves >= 12 && !reloaded) {
        // Mid-game, South reloads: the same seat, the same hand, and play on.
        const south = pages[2];
        const before = await south.locator(".hand button.card").allTextContents();
        await shot(north, "hokm");
        await shot(west, "hokm");
        await assertFits(west);
        await south.reload();
        await south.locator(".hand button.card").first().waitFor();
        const after = await south.locator(".hand button.card").allTextContents();
        assert.deepEqual(after, before, "the reloaded page shows the same hand");
        assert.match(await south.locator(".board-area").textContent(), /Tricks/);
        reloaded = true;
      }
      if (!moved) await north.waitForTimeout(50);
      assert.ok(moves < 400, "the game ends");
    }
    assert.ok(reloaded, "a page was reloaded mid-game");
    console.log(`the game took ${moves} moves`);
    for (const page of pages) await until(() => over(page), 5000, "every page to show the end");
    const outcome = await north.locator(".outcome").textContent();
    assert.match(outcome, /Game over: (north & south|west & east) won/);
    await until(() => watcher.locator(".outcome").count().then((n) => n > 0), 5000, "the spectator to see the end");
    await shot(north, "hokm-over");
    await shot(west, "hokm-over");
    await shot(watcher, "hokm-spectator");

    // The lobby shows the win on the leaderboard and in each one's history.
    const winners = outcome.includes("north") ? ["north", "south"] : ["west", "east"];
    for (const page of [north, west]) {
      await page.getByRole("link", { name: "← lobby" }).click();
      const card = page.locator('[data-game="hokm"]');
      await card.getByRole("button", { name: "Leaderboard" }).click();
      for (const name of winners) await card.locator("td", { hasText: new RegExp(`^${name}$`) }).first().waitFor();
      await card.getByRole("button", { name: "Match history" }).click();
      const me = page === north ? "north" : "west";
      await card.locator("td", { hasText: winners.includes(me) ? /^won/ : /^lost/ }).first().waitFor();
    }
    await shot(north, "lobby-history");
    await shot(west, "lobby-history");
    for (const page of pages) assert.deepEqual(await refusals(page), [], "no move was refused");
    assertClean(...pages, watcher);
  } finally {
    await chrome.close();
  }
});
