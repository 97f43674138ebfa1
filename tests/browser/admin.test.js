// The admin console: without the token it shows its log-in and nothing
// else; with it, the live sessions (watched as a spectator, ended), the
// queue, the storage browser (an edit, confirmed), accounts (disabled and
// enabled again), the plugins, the charts and the API's description.
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
    const phone = await person(chrome, PHONE);
    await phone.goto(`${HOST}/admin`);
    await phone.getByRole("heading", { name: "Admin log-in" }).waitFor();
    await shot(phone, "admin-login");
    await assertFits(phone);
    assertClean(page, phone);
  } finally {
    await chrome.close();
  }
});

test("the admin console lists live sessions, ends one, and shows the queue", async () => {
  assert.ok(ADMIN_TOKEN, "HOARD_ADMIN_TOKEN is set");
  assert.equal((await call("POST", "/v1/accounts", { name: "ada", secret: "a long secret" })).status, 201);
  const ada = (await call("POST", "/v1/login", { name: "ada", secret: "a long secret" })).json.token;
  // A tabletop room writes its system's templates to cold storage.
  assert.equal((await call("POST", "/v1/games/tabletop/sessions", {})).status, 201);
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
      // The charts draw from /metrics, sampled every second.
      await page.waitForFunction(() => {
        const line = document.querySelector("svg.chart polyline");
        return line && line.getAttribute("points").split(" ").length >= 3;
      });
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

      await page.getByRole("tab", { name: "Storage" }).click();
      await page.getByLabel("plugin").selectOption("tabletop");
      await page.getByLabel("prefix").fill("templates");
      await page.getByRole("button", { name: "Show" }).click();
      const goblin = page.locator("tr", { hasText: "templates / basic:goblin" });
      await goblin.waitFor();
      await shot(page, "admin-storage");
      if (size === DESKTOP) {
        // An edit is written only once confirmed, and only over the version shown.
        await goblin.getByRole("button", { name: "edit" }).click();
        const text = page.getByLabel("new value");
        const record = JSON.parse(await text.inputValue());
        record.name = "Goblin boss";
        await text.fill(JSON.stringify(record));
        await page.getByRole("button", { name: "Write" }).click();
        await page.locator("tr", { hasText: "templates / basic:goblin" }).filter({ hasText: "v2" }).waitFor();
        assert.match(await page.locator("tr", { hasText: "templates / basic:goblin" }).textContent(), /Goblin boss/);
      }

      await page.getByRole("tab", { name: "Accounts" }).click();
      await page.getByLabel("name starts with").fill("ad");
      await page.getByRole("button", { name: "Find" }).click();
      const adaRow = page.locator("tr", { hasText: "ada" });
      await adaRow.waitFor();
      await shot(page, "admin-accounts");
      if (size === DESKTOP) {
        await adaRow.getByRole("button", { name: "disable" }).click();
        await adaRow.getByText("disabled").waitFor();
        const refused = await call("POST", "/v1/login", { name: "ada", secret: "a long secret" });
        assert.equal(refused.status, 403);
        assert.equal(refused.json.error.code, "account_disabled");
        assert.equal((await call("GET", "/v1/accounts/me", undefined, ada)).status, 401, "its tokens ended");
        await adaRow.getByRole("button", { name: "enable" }).click();
        await adaRow.getByText("active").waitFor();
        assert.equal((await call("POST", "/v1/login", { name: "ada", secret: "a long secret" })).status, 200);
      }

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
