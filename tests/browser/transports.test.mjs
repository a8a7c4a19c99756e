// The chat test again, with the page forced onto one transport by its `?transport=` flag
// (chat.js then calls io({ transports: [flag] })).
import { describe } from "node:test";
import assert from "node:assert/strict";
import { browserTest, chat, chatMessages, countOf, statusOf, useBrowser, waitForState } from "./browser.mjs";

const isPolling = (url) => /\/socket\.io\/\?.*transport=polling/.test(url);

describe("transports", () => {
  useBrowser();

  for (const transport of ["polling", "websocket"]) {
    browserTest(`chat with the pages forced to ${transport} only`, async (s) => {
      await s.server();
      const [a, b] = await s.openAll([
        [`/?transport=${transport}`, `page A (${transport})`],
        [`/?transport=${transport}`, `page B (${transport})`],
      ]);
      await Promise.all([waitForState(a, "connected"), waitForState(b, "connected")]);

      await chat(a, `via ${transport}, sent with Enter`, [a, b], { via: "enter" });
      await chat(b, `via ${transport}, sent with Send`, [a, b], { via: "button" });
      for (const page of [a, b]) {
        assert.deepEqual(await chatMessages(page), [
          `via ${transport}, sent with Enter`,
          `via ${transport}, sent with Send`,
        ]);
        assert.equal(await countOf(page, `via ${transport}, sent with Enter`), 1);
        assert.equal(await statusOf(page).getAttribute("data-transport"), transport);
        assert.match(await statusOf(page).textContent(), new RegExp(`Connected · ${transport}`));

        const { requests, websockets } = s.traffic(page);
        if (transport === "polling") {
          assert.deepEqual(websockets, [], "no WebSocket is opened when polling is forced");
          assert.ok(requests.filter(isPolling).length >= 3, "handshake, polls and posts went over HTTP");
        } else {
          assert.equal(websockets.length, 1, "exactly one WebSocket");
          assert.match(websockets[0], /\/socket\.io\/\?EIO=4&transport=websocket/);
          assert.deepEqual(requests.filter(isPolling), [], "no long-polling request when WebSocket is forced");
        }
      }
    });
  }
});
