// What every browser test shares: Debian's Chromium driven by Playwright,
// pages at desktop and phone sizes that fail the test on any script error
// or refused load (a CSP violation shows as one), and screenshots.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

export const HOST = process.env.HOARD_URL ?? "http://127.0.0.1:7878";
export const ADMIN_TOKEN = process.env.HOARD_ADMIN_TOKEN ?? "";
const SHOTS = process.env.HOARD_SCREENSHOTS ?? new URL("./screenshots/", import.meta.url).pathname;
mkdirSync(SHOTS, { recursive: true });

export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 360, height: 740 };

/** Starts Chromium; `close()` it at the end. */
export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** A page of its own (its own storage: another person) at `size`, which
 * records every script error and console error. */
export async function person(chrome, size = DESKTOP) {
  const context = await chrome.newContext({ viewport: size, deviceScaleFactor: 1, hasTouch: size === PHONE });
  // Every refusal the page shows (a toast), kept for the test to read.
  await context.addInitScript(() => {
    window.__refusals = [];
    document.addEventListener("DOMContentLoaded", () => {
      const toasts = document.getElementById("toast");
      if (!toasts) return;
      new MutationObserver((changes) => {
        for (const change of changes) {
          for (const node of change.addedNodes) {
            if (node.classList?.contains("bad")) window.__refusals.push(node.textContent);
          }
        }
      }).observe(toasts, { childList: true });
    });
  });
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of 4\d\d/.test(message.text())) {
      page.problems.push(`console: ${message.text()}`);
    }
  });
  return page;
}

/** No script error, no refused load, on any of `pages`. */
export function assertClean(...pages) {
  for (const page of pages) assert.deepEqual(page.problems, [], "the page had errors");
}

/** The refusals `page` has shown since it was last loaded. */
export const refusals = (page) => page.evaluate(() => window.__refusals);

/** Saves `page` as `NAME-desktop.png` or `NAME-phone.png`. */
export async function shot(page, name) {
  const size = page.viewportSize().width <= 400 ? "phone" : "desktop";
  await page.screenshot({ path: `${SHOTS}/${name}-${size}.png`, fullPage: true });
}

/** Nothing on the page is wider than the screen (no sideways scroll). */
export async function assertFits(page) {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  assert.ok(scroll <= width, `the page is ${scroll} px wide on a ${width} px screen`);
}

/** Signs in as a guest named `name` from the lobby. */
export async function guest(page, name) {
  await page.goto(`${HOST}/`);
  await page.getByLabel("Guest name").fill(name);
  await page.getByRole("button", { name: "Play as a guest" }).click();
  await page.locator("[data-game]").first().waitFor();
}

/** Calls the HTTP API from the test itself. */
export async function call(method, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${HOST}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await response.json().catch(() => null);
  return { status: response.status, json };
}

/** The seat a page holds in `session`, from its storage. */
export async function seatOf(page, session) {
  return page.evaluate((id) => JSON.parse(localStorage.getItem(`hoard.seat.${id}`)), session);
}

/** Waits until `check()` is true, or fails after `ms`. */
export async function until(check, ms = 10_000, what = "the condition") {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}
