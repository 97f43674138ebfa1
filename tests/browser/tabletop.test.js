// The tabletop room in two pages: the GM drags a token and the player sees
// it move; a roll shows each die on the other page; a page that loses its
// connection resumes; chat and names that hold markup are shown as text
// and run nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, person, guest, shot, assertClean, assertFits, until, DESKTOP, PHONE } from "./harness.js";

const HOSTILE = `<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">`;

test("a dragged token and a roll reach the other page; markup stays text", async () => {
  const chrome = await browser();
  try {
    const gm = await person(chrome, DESKTOP);
    const player = await person(chrome, PHONE);
    await guest(gm, "gm");

    // A guest name holding markup is refused by the host, and the refusal
    // is shown as text.
    const hostileName = "<img src=x onerror=__pwned=3>";
    await guest(player, hostileName);
    await player.locator('[data-game="tabletop"]').getByRole("button", { name: "New table" }).click();
    await player.locator("#toast p.bad").first().waitFor();
    assert.match(await player.locator("#toast").textContent(), /invalid_name/);
    assert.match(await player.locator("#who").textContent(), /^guest: <img src=x onerror=__pwned=3>/, "the name shows as typed");
    assert.equal(await player.locator("#who img, #who script").count(), 0);
    assert.equal(await player.evaluate(() => window.__pwned), undefined, "no script ran");
    await player.getByRole("button", { name: "sign out" }).click();
    await guest(player, "pip");
    // The player's sockets pass through the test, which can cut them (and
    // refuse new ones while `down`).
    const sockets = [];
    let down = false;
    await player.routeWebSocket(/\/events$/, (socket) => {
      if (down) {
        socket.close({ code: 1011, reason: "down" });
        return;
      }
      const server = socket.connectToServer();
      sockets.push({ close: async (how) => { await socket.close(how); await server.close(); } });
    });

    await gm.locator('[data-game="tabletop"]').getByRole("button", { name: "New table" }).click();
    await gm.waitForURL(/#\/s\/[0-9a-f]{32}$/);
    const session = gm.url().split("/").pop();
    const lobby = player.locator('[data-game="tabletop"]');
    await lobby.getByRole("button", { name: "Refresh" }).click();
    await lobby.getByRole("button", { name: "Join" }).first().click();
    await player.waitForURL(new RegExp(`${session}$`));

    await gm.getByLabel("token name").fill("Snik");
    await gm.getByLabel("stat block").selectOption("goblin");
    await gm.getByRole("button", { name: "Add", exact: true }).click();
    const onPlayer = player.locator('[data-token="t1"]');
    await onPlayer.waitFor();
    assert.equal(await onPlayer.evaluate((t) => t.parentElement.dataset.x), "0");

    // The GM drags Snik to (5, 3): the player's page shows it there.
    await gm.locator('[data-token="t1"]').dragTo(gm.locator('.cell[data-x="5"][data-y="3"]'));
    await until(() => onPlayer.evaluate((t) => `${t.parentElement.dataset.x},${t.parentElement.dataset.y}`).then((at) => at === "5,3"), 5000, "the token to move on the other page");

    // And with the keyboard: focus it, one step right.
    await gm.locator('[data-token="t1"]').focus();
    await gm.keyboard.press("ArrowRight");
    await until(() => onPlayer.evaluate((t) => t.parentElement.dataset.x).then((x) => x === "6"), 5000, "the token to step right");

    // A roll: every die appears on the other page.
    await gm.getByLabel("dice").fill("3d6+2");
    await gm.getByRole("button", { name: "Roll" }).click();
    const roll = player.locator(".rolls li").first();
    await roll.waitFor();
    assert.equal(await roll.locator(".die").count(), 3);
    const dice = (await roll.locator(".die").allTextContents()).map(Number);
    assert.ok(dice.every((d) => d >= 1 && d <= 6));
    assert.equal(Number(await roll.locator(".total").textContent()), dice.reduce((a, b) => a + b, 0) + 2);

    // The player's connection drops while the GM rolls again: back online,
    // the page resumes from the last event it saw and shows the roll once.
    down = true;
    for (const socket of sockets) await socket.close({ code: 1006, reason: "the test cut it" }).catch(() => {});
    await player.locator(".tag", { hasText: "reconnecting" }).waitFor();
    await gm.getByLabel("dice").fill("1d20");
    await gm.getByRole("button", { name: "Roll" }).click();
    await gm.locator(".rolls li").nth(1).waitFor();
    down = false;
    await player.locator(".tag", { hasText: "resumed" }).waitFor({ timeout: 15_000 });
    await until(() => player.locator(".rolls li").count().then((n) => n === 2), 5000, "the missed roll");

    // Chat holding markup: shown as typed, nothing runs, no element made.
    await player.getByLabel("chat message").fill(HOSTILE);
    await player.getByRole("button", { name: "Send" }).click();
    const line = gm.locator(".chat li .text").first();
    await line.waitFor();
    assert.equal(await line.textContent(), HOSTILE);
    for (const page of [gm, player]) {
      assert.equal(await page.evaluate(() => window.__pwned), undefined, "no script ran");
      assert.equal(await page.locator(".chat img, .chat script").count(), 0);
    }

    await shot(gm, "tabletop");
    await shot(player, "tabletop");
    await assertFits(player);
    assertClean(gm, player);
  } finally {
    await chrome.close();
  }
});
