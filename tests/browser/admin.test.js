// The admin console: without the token it shows its log-in and nothing
// else; with it, the live sessions (watched as a spectator, ended), the
// queue, the plugins, the charts and the API's description.
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, person, shot, assertClean, assertFits, call, HOST, ADMIN_TOKEN, DESKTOP, PHONE } from "./harness.js";

test("the admin console reveals nothing without its token", async () => {
  const chrome = await browser();
  try {
    const page = await person(chrome, DESKTOP);
    const asked = [];
    page.on("request", (r) => { if (r.url().includes("/admin/v1/")) asked.push(r.url()); });
    await page.goto(`${HOST}/admin`);
    await page.getByRole("heading", { name: "Admin log-in" }).waitFor();
    assert.equal(await page.locator("nav.tabs").count(), 0);
    assert.deepEqual(asked, [], "nothing is asked of the admin API before a token is given");
    await page.getByLabel("admin token").fill("not-the-admin-token");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("bad_admin_token").waitFor();
    assert.equal(await page.locator("nav.tabs").count(), 0);
    assert.doesNotMatch(await page.locator("main").textContent(), /Live sessions|Outage queue/);
    await shot(page, "admin-login");
    assertClean(page);
  } finally {
    await chrome.close();
  }
});

test("the admin console lists live sessions, ends one, and shows the queue", async () => {
  assert.ok(ADMIN_TOKEN, "HOARD_ADMIN_TOKEN is set");
  const created = await call("POST", "/v1/games/hokm/sessions", {});
  assert.equal(created.status, 201);
  const session = created.json.session;
  for (const name of ["ann", "ben"]) {
    assert.equal((await call("POST", `/v1/sessions/${session}/join`, { name })).status, 201);
  }
  const chrome = await browser();
  try {
    for (const size of [DESKTOP, PHONE]) {
      const page = await person(chrome, size);
      page.on("dialog", (dialog) => dialog.accept());
      await page.goto(`${HOST}/admin`);
      await page.getByLabel("admin token").fill(ADMIN_TOKEN);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByRole("heading", { name: "Health" }).waitFor();
      await page.getByRole("heading", { name: "Requests" }).waitFor();
      await page.waitForTimeout(2500); // a second sample, so the charts draw
      await shot(page, "admin-overview");

      await page.getByRole("tab", { name: "Sessions" }).click();
      const row = page.locator("tr", { has: page.locator(`code[title="${session}"]`) });
      await row.waitFor();
      assert.match(await row.textContent(), /hokm.*ann, ben/);
      await row.getByRole("button", { name: "watch" }).click();
      await page.getByRole("heading", { name: /Spectator view/ }).waitFor();
      assert.equal(await page.locator(".hand").count(), 0, "the spectator view holds no hand");
      await shot(page, "admin-sessions");
      if (size === DESKTOP) {
        await row.getByRole("button", { name: "end" }).click();
        await row.getByText("finished").waitFor();
        const summary = await call("GET", `/v1/sessions/${session}`);
        assert.equal(summary.json.finished, true);
        assert.deepEqual(summary.json.outcome, { ended_by: "operator" });
        assert.equal((await call("POST", `/v1/sessions/${session}/join`, { name: "cy" })).status, 409);
      }

      await page.getByRole("tab", { name: "Queue" }).click();
      await page.getByRole("heading", { name: "Outage queue" }).waitFor();
      await page.getByRole("heading", { name: /Dead letters/ }).waitFor();
      await shot(page, "admin-queue");

      await page.getByRole("tab", { name: "Plugins" }).click();
      await page.getByRole("heading", { name: "hokm (hokm)" }).waitFor();
      await shot(page, "admin-plugins");

      await page.getByRole("tab", { name: "API" }).click();
      await page.getByText("GET /v1/games").first().waitFor();
      await shot(page, "admin-api");
      if (size === PHONE) await assertFits(page);
      assertClean(page);
    }
  } finally {
    await chrome.close();
  }
});
