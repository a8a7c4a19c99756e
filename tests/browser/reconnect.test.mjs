// The server restarts under two open pages: both show that they are reconnecting, come back
// on their own (socket.io's reconnection, default settings) and chat works again.
import { describe } from "node:test";
import assert from "node:assert/strict";
import {
  RECONNECT_MS,
  browserTest,
  chat,
  chatMessages,
  sendButton,
  statusOf,
  useBrowser,
  waitForMessage,
  waitForState,
} from "./browser.mjs";

describe("reconnection", () => {
  useBrowser();

  browserTest(
    "both pages reconnect on their own after the server restarts",
    async (s) => {
      const server = await s.server();
      const [a, b] = await s.openAll([
        ["/", "page A"],
        ["/", "page B"],
      ]);
      await chat(a, "before the restart", [a, b]);

      await server.restart({
        // While no server listens, each page says it is reconnecting and offers no Send.
        whileDown: async () => {
          for (const page of [a, b]) {
            await waitForState(page, "reconnecting");
            await waitForMessage(page, "Connection lost (transport close), reconnecting…", { system: true });
            assert.equal(await sendButton(page).isDisabled(), true, "Send is disabled while reconnecting");
            assert.match(await statusOf(page).textContent(), /Reconnecting…/);
          }
          await s.screenshot("while the server is down");
        },
      });

      for (const page of [a, b]) {
        await waitForState(page, "connected", { timeout: RECONNECT_MS });
        await waitForMessage(page, "Reconnected", { system: true });
      }
      await chat(b, "after the restart", [a, b], { via: "button" });
      for (const page of [a, b]) {
        assert.deepEqual(await chatMessages(page), ["before the restart", "after the restart"]);
      }
    },
    { timeout: 45_000 },
  );
});
