// The chat demo (public/index.html) and the /chat namespace page (public/chat.html) in a real
// browser, served by switchboard with the repository's routes.toml.
import { describe } from "node:test";
import assert from "node:assert/strict";
import {
  browserTest,
  chat,
  chatMessages,
  countOf,
  sendMessage,
  statusOf,
  useBrowser,
  waitForMessage,
  waitForState,
} from "./browser.mjs";

describe("chat demo (/)", () => {
  useBrowser();

  browserTest("a message sent in one page appears once in both pages", async (s) => {
    await s.server();
    const [a, b] = await s.openAll([["/", "page A"], ["/", "page B"]]);
    await Promise.all([waitForState(a, "connected"), waitForState(b, "connected")]);

    await chat(a, "hello from A (Enter)", [a, b], { via: "enter" });
    await chat(b, "hi from B (Send button)", [a, b], { via: "button" });

    // Both messages arrived before the second one was seen: a duplicate of the first would
    // be there by now.
    for (const page of [a, b]) {
      assert.deepEqual(await chatMessages(page), ["hello from A (Enter)", "hi from B (Send button)"]);
      assert.equal(await countOf(page, "hello from A (Enter)"), 1);
    }

    // Default transports: polling first, then the upgrade to WebSocket, shown in the status.
    await waitForState(a, "connected");
    await a.waitForFunction(() => document.getElementById("status").dataset.transport === "websocket");
    assert.match(await statusOf(a).textContent(), /Connected · websocket/);
    assert.equal(s.traffic(a).websockets.length, 1, "one WebSocket after the upgrade");
  });

  browserTest("a page opened later sees later messages only", async (s) => {
    await s.server();
    const [a, b] = await s.openAll([["/", "page A"], ["/", "page B"]]);
    await chat(a, "before C", [a, b]);

    const c = await s.open("/", "page C (opened later)");
    await waitForState(c, "connected");
    await chat(b, "after C", [a, b, c]);
    await chat(c, "from C", [a, b, c]);

    assert.deepEqual(await chatMessages(c), ["after C", "from C"], "no history: C sees what came after it");
    for (const page of [a, b]) assert.deepEqual(await chatMessages(page), ["before C", "after C", "from C"]);
  });
});

describe("namespace page (/chat.html)", () => {
  useBrowser();

  browserTest("messages stay inside /chat; a page on / does not see them", async (s) => {
    await s.server();
    const [a, b, root] = await s.openAll([
      ["/chat.html", "page A on /chat"],
      ["/chat.html", "page B on /chat"],
      ["/", "page on /"],
    ]);
    await Promise.all([a, b, root].map((p) => waitForState(p, "connected")));

    await chat(a, "only for /chat", [a, b]);
    // A message on / after it: if the /chat one had leaked it would have arrived first.
    await chat(root, "only for /", [root]);
    await sendMessage(b, "second on /chat");
    await Promise.all([a, b].map((p) => waitForMessage(p, "second on /chat")));

    assert.deepEqual(await chatMessages(root), ["only for /"]);
    for (const page of [a, b]) assert.deepEqual(await chatMessages(page), ["only for /chat", "second on /chat"]);
  });
});
