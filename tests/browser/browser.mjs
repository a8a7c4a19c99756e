// Browser-test helpers: Debian's Chromium, driven headless by playwright-core, against the
// switchboard binary serving the repository's own pages (tests/node/harness.mjs).
//
//   describe("…", () => {
//     useBrowser();                                  // one Chromium for these tests
//     browserTest("name", async (s) => {
//       const server = await s.server({ config: "routes.toml" });   // stopped afterwards
//       const a = await s.open("/", "page A");       // a new window (own browser context)
//       await sendMessage(a, "hi");
//       await waitForMessage(a, "hi");
//     });
//   });
//
// Every browserTest, passing or failing, saves test-artifacts/browser/<test name>.png: the
// final state of each page it opened, side by side and captioned. It then checks that no page
// made a request to any origin but the test server's, got an HTTP error for a file, or threw.
//
// The browser is never downloaded: CHROMIUM_PATH or /usr/bin/chromium (Debian's `chromium`
// package, which .ci/run installs); a missing one fails each suite that needs it.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { repoRoot, startRepoServer } from "../node/harness.mjs";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
export const ARTIFACTS_DIR = join(repoRoot, "test-artifacts", "browser");

/** Bound of every wait on the page (a DOM condition, an action). */
export const WAIT_MS = 5_000;
/** Bound of a wait that spans a reconnection (socket.io's back-off is up to 5 s). */
export const RECONNECT_MS = 15_000;
/**
 * Bound of Chromium's launch, apart from any test's own time: the first launch on a fresh
 * machine (cold disk, a font cache to build) can take many seconds.
 */
export const LAUNCH_MS = 120_000;
const VIEWPORT = { width: 640, height: 480 };

let browser; // a Promise of the file's Chromium, launched by its first test
let registered = false;

/**
 * One Chromium for the tests of the enclosing describe() (or file): launched before them
 * within {@link LAUNCH_MS}, not in any test's own time (a missing or failing browser fails the
 * suite with the reason, and cancels its tests), closed after them.
 */
export function useBrowser() {
  registered = true;
  before(
    async () => {
      browser = launchBrowser();
      await browser;
    },
    { timeout: LAUNCH_MS },
  );
  after(async () => {
    const launched = browser;
    browser = undefined;
    await (await launched?.catch(() => undefined))?.close();
  });
}

/**
 * Debian's Chromium, headless. playwright-core gives each launch a fresh temporary
 * user-data dir (--user-data-dir=/tmp/playwright_chromiumdev_profile-…) and deletes it on close.
 */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install Debian's package ` +
        `(apt-get install -y chromium; .ci/run does this) or point CHROMIUM_PATH at a Chromium. ` +
        `The browser tests never download a browser.`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/** A test with a {@link Session}: screenshots, offline and page-error checks, cleanup. */
export function browserTest(name, fn, { timeout = 30_000 } = {}) {
  test(name, { timeout }, async (t) => {
    if (!registered) throw new Error("browserTest in a file that does not call useBrowser()");
    const s = new Session(await browser, name);
    let failed = false;
    try {
      await fn(s, t);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      const shot = await s.finish();
      if (shot) t.diagnostic(`screenshot: ${shot}`);
      // Only when the test itself passed: a failure's own error is the one worth reading.
      if (!failed) s.check();
    }
  });
}

/** The pages and servers of one test. */
export class Session {
  constructor(browserInstance, name) {
    this.browser = browserInstance;
    this.name = name;
    this.servers = [];
    this.pages = [];
    this.origin = undefined;
  }

  /**
   * Start switchboard with one of the repository's routes files (README's run command), with
   * `env` added to its environment (a secret an example reads).
   */
  async server({ config = "routes.toml", env } = {}) {
    const server = await startRepoServer({ config, env });
    this.servers.push(server);
    this.origin ??= server.url;
    return server;
  }

  /**
   * Open `path` of the test server in a new window (its own browser context: no shared
   * storage, as two people would). `label` captions it in the screenshot. `foreign` lists
   * other hosts a third-party page names (a font CDN): their requests are aborted, not
   * counted against it.
   */
  async open(path, label, { origin = this.origin, foreign = [] } = {}) {
    if (!origin) throw new Error("open() before server()");
    // Listed at once, so that pages opened together keep their order in the screenshot.
    const entry = { label, url: origin + path, requests: [], websockets: [], errors: [], bad: [], foreign };
    this.pages.push(entry);
    entry.context = await this.browser.newContext({ viewport: VIEWPORT });
    if (foreign.length > 0) {
      await entry.context.route((url) => foreign.includes(url.host), (route) => route.abort());
    }
    entry.context.setDefaultTimeout(WAIT_MS);
    const page = (entry.page = await entry.context.newPage());
    page.on("request", (req) => entry.requests.push(req.url()));
    page.on("websocket", (ws) => entry.websockets.push(ws.url()));
    // HTTP errors for files (a wrong path in a page). Not for Engine.IO's long-polling requests:
    // a poll racing the close of its session is answered 400 "Session ID unknown", as
    // socket.io's own server does.
    page.on("response", (res) => {
      if (res.status() >= 400 && !new URL(res.url()).pathname.startsWith("/socket.io/")) {
        entry.bad.push(`${res.status()} ${res.url()}`);
      }
    });
    page.on("pageerror", (err) => entry.errors.push(String(err?.stack ?? err)));
    await page.goto(entry.url);
    return page;
  }

  /** open() several pages at once: `[[path, label], …]`. */
  openAll(list) {
    return Promise.all(list.map(([path, label, opts]) => this.open(path, label, opts)));
  }

  /** What page `page` asked for: http(s) request URLs and WebSocket URLs. */
  traffic(page) {
    const entry = this.pages.find((e) => e.page === page);
    if (!entry) throw new Error("not a page of this session");
    return { requests: [...entry.requests], websockets: [...entry.websockets] };
  }

  /** Every request of every page went to a test server and none was refused; no page threw. */
  check() {
    const allowed = new Set(this.servers.map((s) => new URL(s.url).host));
    for (const { label, requests, websockets, errors, bad, foreign } of this.pages) {
      const external = [...requests, ...websockets].filter(
        (u) => !allowed.has(new URL(u).host) && !foreign.includes(new URL(u).host),
      );
      assert.deepEqual(external, [], `${label} made requests to other hosts (the pages must work offline)`);
      assert.ok(requests.length > 0, `${label}: no request was recorded at all`);
      assert.deepEqual(bad, [], `${label}: HTTP errors for files (a wrong path in the page?)`);
      assert.deepEqual(errors, [], `${label} threw`);
    }
  }

  /** Save the screenshot, close every page and stop the servers. Never throws. */
  async finish() {
    let file;
    try {
      file = await this.screenshot();
    } catch (err) {
      process.stderr.write(`[browser] ${this.name}: no screenshot: ${err?.message}\n`);
    }
    for (const { context } of this.pages) await context?.close().catch(() => {});
    for (const server of this.servers) await server.stop().catch(() => {});
    return file;
  }

  /**
   * test-artifacts/browser/<slug>.png: each page as the user saw it, side by side with its
   * label and URL. `suffix` names an extra, intermediate picture ("<slug>--<suffix>.png").
   */
  async screenshot(suffix) {
    if (this.pages.length === 0) return undefined;
    const shots = [];
    for (const { page, label, url } of this.pages) {
      const open = page && !page.isClosed();
      const png = open ? await page.screenshot().catch(() => null) : null;
      shots.push({ label, url: open ? page.url() : url, png });
    }
    const figures = shots
      .map(
        ({ label, url, png }) => `<figure>
          <figcaption><b>${escapeHtml(label)}</b> <span>${escapeHtml(url)}</span></figcaption>
          ${png ? `<img src="data:image/png;base64,${png.toString("base64")}">` : "<p>(no picture)</p>"}
        </figure>`,
      )
      .join("");
    const html = `<!doctype html><meta charset="utf-8"><style>
      body { margin: 0; padding: 12px; background: #d9dde3; font: 14px system-ui, sans-serif; }
      h1 { font-size: 15px; margin: 0 0 10px; }
      main { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
      figure { margin: 0; background: #fff; border: 1px solid #8a93a0; }
      figcaption { padding: 4px 8px; border-bottom: 1px solid #8a93a0; background: #eef0f3; }
      figcaption span { color: #56606d; }
      img { display: block; width: ${VIEWPORT.width}px; height: ${VIEWPORT.height}px; }
    </style>
    <h1>${escapeHtml(this.name)}${suffix ? ` — ${escapeHtml(suffix)}` : ""}</h1>
    <main>${figures}</main>`;

    const context = await this.browser.newContext({
      // At most three pages a row.
      viewport: { width: Math.min(shots.length, 3) * (VIEWPORT.width + 14) + 24, height: VIEWPORT.height + 80 },
    });
    try {
      const sheet = await context.newPage();
      await sheet.setContent(html);
      const file = join(ARTIFACTS_DIR, `${slug(this.name)}${suffix ? `--${slug(suffix)}` : ""}.png`);
      await mkdir(ARTIFACTS_DIR, { recursive: true });
      await writeFile(file, await sheet.screenshot({ fullPage: true }));
      return file;
    } finally {
      await context.close();
    }
  }
}

function slug(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 80);
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

// ---------------------------------------------------------------- the demo page, as a user sees it
// Controls are found by their accessible role and name, so these helpers also check that the
// form controls are labelled.

export const messageBox = (page) => page.getByRole("textbox", { name: "Message", exact: true });
export const sendButton = (page) => page.getByRole("button", { name: "Send", exact: true });
export const statusOf = (page) => page.getByRole("status");

/** The connection state the page shows: connecting, connected, reconnecting, error, … */
export function stateOf(page) {
  return statusOf(page).getAttribute("data-state");
}

/**
 * `page.evaluate(fn, arg)` within `timeout` ms, else an error naming `what`: playwright bounds
 * no evaluate, and a page script awaiting an event that never comes would otherwise hold its
 * test until the test's own timeout, which says nothing of where it stood.
 */
export async function evaluateWithin(page, what, fn, arg, { timeout = WAIT_MS } = {}) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: not done within ${timeout} ms (page ${page.url()})`)),
      timeout,
    );
  });
  try {
    return await Promise.race([page.evaluate(fn, arg), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wait until the page shows connection state `state`. */
export async function waitForState(page, state, { timeout = WAIT_MS } = {}) {
  try {
    await page.waitForFunction(
      (s) => document.querySelector('[role="status"]')?.dataset.state === s,
      state,
      { timeout, polling: 50 },
    );
  } catch (err) {
    const now = await statusOf(page).textContent().catch(() => "?");
    throw new Error(`page ${page.url()} did not show "${state}" within ${timeout} ms (it shows "${now}")`, {
      cause: err,
    });
  }
}

/** The chat messages on the page, in order (system lines such as "Reconnected" excluded). */
export function chatMessages(page) {
  return page.locator("#messages li:not(.system)").allTextContents();
}

/** The system lines on the page ("Connection lost …", "Reconnected", room notices). */
export function systemMessages(page) {
  return page.locator("#messages li.system").allTextContents();
}

/** Wait until a line (chat or system) reading exactly `text` is on the page. */
export async function waitForMessage(page, text, { timeout = WAIT_MS, system = false } = {}) {
  const selector = system ? "#messages li.system" : "#messages li:not(.system)";
  try {
    await page.waitForFunction(
      ([sel, t]) => [...document.querySelectorAll(sel)].some((li) => li.textContent === t),
      [selector, text],
      { timeout, polling: 50 },
    );
  } catch (err) {
    const lines = await page.locator("#messages li").allTextContents().catch(() => []);
    throw new Error(
      `page ${page.url()} did not show ${JSON.stringify(text)} within ${timeout} ms; ` +
        `its list: ${JSON.stringify(lines)}`,
      { cause: err },
    );
  }
}

/**
 * Type `text` into the Message box as a user would and send it with Enter (`via: "enter"`)
 * or a click on Send (`via: "button"`). Waits for the page to be connected first.
 */
export async function sendMessage(page, text, { via = "enter" } = {}) {
  await waitForState(page, "connected");
  const box = messageBox(page);
  await box.click();
  await box.pressSequentially(text);
  if (via === "enter") await box.press("Enter");
  else await sendButton(page).click();
  // The composer clears once the message is on its way.
  await page.waitForFunction(() => document.querySelector("#input")?.value === "", null, {
    timeout: WAIT_MS,
    polling: 50,
  });
}

/** Send `text` from `from` and wait until every page of `to` lists it. */
export async function chat(from, text, to, opts) {
  await sendMessage(from, text, opts);
  await Promise.all(to.map((page) => waitForMessage(page, text)));
}

/** Count of chat lines reading exactly `text`. */
export async function countOf(page, text) {
  return (await chatMessages(page)).filter((t) => t === text).length;
}
