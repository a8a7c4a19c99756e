// max_payload: an oversized message costs its sender the connection, and
// nobody else.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { record, useServer, waitForArgs } from "./helpers.mjs";

// No max_payload: the default (1 MB) applies.
const routes = `
[namespaces."/".events]
"chat message" = "io"
bin = "emit"
`;

const TWO_MB = 2 * 1024 * 1024;

describe("payload limits", () => {
  const ctx = useServer(routes);

  for (const transports of [["websocket"], ["polling"]]) {
    test(`a 2 MB message over ${transports[0]} disconnects only its sender`, { timeout: 15_000 }, async (t) => {
      const a = await ctx.clients.connect(ctx.server.url, { transports });
      const b = await ctx.clients.connect(ctx.server.url);
      const bDisconnects = record(b, "disconnect");
      const bMessages = record(b, "chat message");
      const aMessages = record(a, "chat message");

      const aGone = waitForArgs(a, "disconnect", { timeout: 8_000, label: "disconnect of the sender" });
      a.emit("chat message", "x".repeat(TWO_MB));
      const [reason, details] = await aGone;
      t.diagnostic(`sender's disconnect reason over ${transports[0]}: ${reason}` +
        (details?.description ? ` (${details.description?.message ?? details.description})` : ""));
      assert.equal(a.connected, false);

      // B is still there and can still chat; the oversized message never reached it.
      const back = waitForArgs(b, "chat message", { label: "b's own chat message" });
      b.emit("chat message", "still here");
      assert.deepEqual(await back, ["still here"]);
      assert.equal(b.connected, true);
      assert.deepEqual(bMessages, [["still here"]]);
      assert.deepEqual(bDisconnects, []);
      assert.ok(aMessages.every(([m]) => m.length < TWO_MB), "the sender never got its message back");
    });

    test(`a 500 KB message over ${transports[0]} is delivered intact`, { timeout: 15_000 }, async () => {
      const a = await ctx.clients.connect(ctx.server.url, { transports });
      const text = "é".repeat(100) + "a".repeat(500 * 1024 - 200) + "\u{1F600}";
      const back = waitForArgs(a, "bin", { timeout: 8_000 });
      a.emit("bin", text);
      const [got] = await back;
      assert.equal(got.length, text.length);
      assert.ok(got === text, "500 KB string differs after the round trip");

      const blob = Buffer.alloc(500 * 1024, 0xab);
      const backBin = waitForArgs(a, "bin", { timeout: 8_000 });
      a.emit("bin", blob);
      const [gotBin] = await backBin;
      assert.ok(Buffer.isBuffer(gotBin) && gotBin.equals(blob), "500 KB buffer differs after the round trip");
      assert.equal(a.connected, true);
    });
  }
});
