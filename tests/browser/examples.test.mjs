// The other examples' pages, each served by its own routes.toml, and what every demo page
// offers a user: labelled controls, a connection status, no request to another host.
import { describe } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  browserTest,
  chat,
  chatMessages,
  messageBox,
  sendButton,
  sendMessage,
  statusOf,
  systemMessages,
  useBrowser,
  RECONNECT_MS,
  waitForMessage,
  waitForState,
} from "./browser.mjs";

/** A token as examples/notifications/mint-token.mjs mints it. */
function mint(secret, sub, name, seconds = 600) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const exp = Math.floor(Date.now() / 1000) + seconds;
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, name, exp })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

async function joinRoom(page, room) {
  const field = page.getByRole("textbox", { name: "Room" });
  await field.fill(room);
  await page.getByRole("button", { name: "Join" }).click();
  await waitForMessage(page, `You joined ${room}`, { system: true });
}

describe("examples", () => {
  useBrowser();

  browserTest("rooms: a room message reaches the pages in that room only", async (s) => {
    await s.server({ config: "examples/rooms/routes.toml" });
    const [a, b, c] = await s.openAll([
      ["/", "A in lobby"],
      ["/", "B in lobby"],
      ["/", "C in games"],
    ]);
    await Promise.all([a, b, c].map((p) => waitForState(p, "connected")));
    await joinRoom(a, "lobby");
    await joinRoom(b, "lobby");
    await waitForMessage(a, "someone joined lobby", { system: true });
    await joinRoom(c, "games");

    // A room message is shown as "room: text".
    await sendMessage(a, "hello lobby");
    await Promise.all([a, b].map((p) => waitForMessage(p, "lobby: hello lobby")));
    await sendMessage(c, "hello games");
    await waitForMessage(c, "games: hello games");
    await sendMessage(b, "lobby again", { via: "button" });
    await Promise.all([a, b].map((p) => waitForMessage(p, "lobby: lobby again")));

    for (const page of [a, b]) {
      assert.deepEqual(await chatMessages(page), ["lobby: hello lobby", "lobby: lobby again"]);
    }
    assert.deepEqual(await chatMessages(c), ["games: hello games"]);
    assert.ok((await systemMessages(c)).every((line) => !line.includes("lobby")), "C hears nothing of lobby");
  });

  browserTest("namespaces: / and /admin do not see each other", async (s) => {
    await s.server({ config: "examples/namespaces/routes.toml" });
    const [root, admin] = await s.openAll([
      ["/", "page on /"],
      ["/admin.html", "page on /admin"],
    ]);
    await Promise.all([root, admin].map((p) => waitForState(p, "connected")));
    await chat(admin, "admins only", [admin]);
    await chat(root, "everyone", [root]);
    await chat(admin, "admins again", [admin]);
    assert.deepEqual(await chatMessages(root), ["everyone"]);
    assert.deepEqual(await chatMessages(admin), ["admins only", "admins again"]);
  });

  browserTest("notifications: a user's notification reaches all of that user's pages, nobody else's", async (s) => {
    const secret = "a-secret-for-the-browser-test-0123456789";
    await s.server({ config: "examples/notifications/routes.toml", env: { NOTIFY_JWT_SECRET: secret } });
    const [alice, alice2, bob, eve] = await s.openAll([
      [`/?token=${mint(secret, "alice", "Alice")}`, "Alice"],
      [`/?token=${mint(secret, "alice", "Alice")}`, "Alice, second tab"],
      [`/?token=${mint(secret, "bob", "Bob")}`, "Bob"],
      ["/?token=forged.token.here", "Eve, no valid token"],
    ]);
    await Promise.all([alice, alice2, bob].map((p) => waitForState(p, "connected")));
    await waitForMessage(alice, "Signed in as Alice (alice)", { system: true });
    await waitForState(eve, "error");
    assert.equal(await statusOf(eve).textContent(), "Error: invalid token");

    await bob.getByRole("textbox", { name: "To" }).fill("alice");
    await sendMessage(bob, "your build passed");
    await waitForMessage(bob, "Sent to alice: your build passed", { system: true });
    await Promise.all([alice, alice2].map((p) => waitForMessage(p, "bob: your build passed")));
    assert.deepEqual(await chatMessages(bob), []);

    // An expiring token: the page is told, then the server disconnects it for good. Past its
    // exp by 22 s, the token is within the 30 s leeway for at most 8 more seconds.
    const brief = await s.open(`/?token=${mint(secret, "carol", "Carol", -22)}`, "Carol, a token about to expire");
    await waitForMessage(brief, "Signed in as Carol (carol)", { system: true });
    await waitForMessage(brief, "Your session expired: sign in again for a new token.", {
      system: true,
      timeout: 15_000,
    });
    await waitForState(brief, "error");
    assert.equal(await statusOf(brief).textContent(), "Disconnected by the server");
  });

  browserTest("poll: votes reach every page, the count of who is here follows, a drop is recovered", async (s) => {
    await s.server({ config: "examples/poll/routes.toml" });
    const [a, b] = await s.openAll([
      ["/", "A"],
      ["/", "B, who drops off for a moment"],
    ]);
    await Promise.all([a, b].map((p) => waitForState(p, "connected")));
    const notice = (p) => p.locator("#notice");
    await Promise.all([a, b].map((p) => notice(p).getByText("2 here", { exact: true }).waitFor()));
    await chat(a, "tea", [a, b]);

    // B's connection drops (its transport closes under it); A votes meanwhile.
    const dropped = waitForState(b, "reconnecting");
    await b.evaluate(() => window.pollSocket.io.engine.close());
    await dropped;
    await notice(a).getByText("1 here", { exact: true }).waitFor();
    await sendMessage(a, "coffee");
    await waitForMessage(b, "Back: the votes cast meanwhile are above", { system: true, timeout: RECONNECT_MS });
    await waitForState(b, "connected");
    assert.deepEqual(await chatMessages(b), ["tea", "coffee"], "the missed vote arrived, once");
    assert.deepEqual(await chatMessages(a), ["tea", "coffee"]);
    await Promise.all([a, b].map((p) => notice(p).getByText("2 here", { exact: true }).waitFor()));
  });

  const pages = [
    { config: "routes.toml", path: "/", title: "Chat" },
    { config: "routes.toml", path: "/chat.html", title: "Chat" },
    { config: "examples/rooms/routes.toml", path: "/", title: "Rooms" },
    { config: "examples/namespaces/routes.toml", path: "/", title: "Chat" },
    { config: "examples/namespaces/routes.toml", path: "/admin.html", title: "Chat" },
    { config: "examples/auth/routes.toml", path: "/?token=123", title: "Chat" },
  ];
  browserTest("every demo page: one look, labelled controls, connection status, offline", async (s) => {
    const opened = await Promise.all(
      pages.map(async ({ config, path }) => {
        const server = await s.server({ config });
        return s.open(path, `${config} ${path}`, { origin: server.url });
      }),
    );
    for (const [i, { config, path, title }] of pages.entries()) {
      const page = opened[i];
      await waitForState(page, "connected");
      const where = `${config} ${path}`;

      const heading = page.getByRole("heading", { level: 1 });
      assert.equal(await heading.evaluate((h) => h.firstChild.textContent), title, where);
      assert.match(await statusOf(page).textContent(), /^Connected · (polling|websocket)$/, where);
      await messageBox(page).waitFor();
      await sendButton(page).waitFor();
      assert.equal(await sendButton(page).isEnabled(), true, where);

      // Every control has an accessible name, and the shared stylesheet is what styles it.
      const unnamed = await page.evaluate(() =>
        [...document.querySelectorAll("input, button, select, textarea")]
          .filter((c) => !(c.labels?.length || c.getAttribute("aria-label") || c.textContent.trim()))
          .map((c) => c.outerHTML),
      );
      assert.deepEqual(unnamed, [], `${where}: controls without a name`);
      const sheets = await page.evaluate(() => [...document.styleSheets].map((x) => new URL(x.href).pathname));
      assert.ok(sheets.length === 1 && sheets[0].endsWith("/style.css"), `${where}: ${sheets}`);
      const bodyFont = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
      assert.match(bodyFont, /^system-ui/, `${where}: the shared stylesheet applies`);
    }
  });
});
