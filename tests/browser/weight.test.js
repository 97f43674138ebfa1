// The page's weight on first load (bytes over the wire, as Chromium counts
// them) and how soon it can be used on loopback: printed for the record,
// and the weight held to a budget (bytes do not depend on the machine).
import { test } from "node:test";
import assert from "node:assert/strict";
import { browser, person, HOST, DESKTOP } from "./harness.js";

const BUDGET_BYTES = 100 * 1024;

test("the player's first load is small", async () => {
  const chrome = await browser();
  try {
    const page = await person(chrome, DESKTOP);
    const loads = [];
    page.on("requestfinished", (request) => loads.push(request.sizes().then((s) => ({ url: request.url(), bytes: s.responseBodySize + s.responseHeadersSize }))));
    const started = Date.now();
    await page.goto(`${HOST}/`);
    await page.getByRole("button", { name: "Play as a guest" }).waitFor();
    const interactive = Date.now() - started;
    const timing = await page.evaluate(() => {
      const [nav] = performance.getEntriesByType("navigation");
      return { domContentLoaded: Math.round(nav.domContentLoadedEventEnd), load: Math.round(nav.loadEventEnd) };
    });
    const all = await Promise.all(loads);
    const bytes = all.reduce((sum, l) => sum + l.bytes, 0);
    console.log(`first load: ${all.length} requests, ${bytes} bytes; DOMContentLoaded ${timing.domContentLoaded} ms, load ${timing.load} ms, sign-in usable after ${interactive} ms`);
    for (const l of all) console.log(`  ${l.bytes}\t${new URL(l.url).pathname}`);
    assert.ok(all.every((l) => l.url.startsWith(HOST)), "nothing is fetched from elsewhere");
    assert.ok(bytes < BUDGET_BYTES, `${bytes} bytes is over the ${BUDGET_BYTES} budget`);
  } finally {
    await chrome.close();
  }
});
