// A client reconnects on its own after the server process is restarted.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { useServer, waitConnected, waitFor, waitForArgs } from "./helpers.mjs";

const routes = `
[namespaces."/".events]
"chat message" = "io"

[namespaces."/chat".events]
message = "io"
`;

const RECONNECT = {
  reconnection: true,
  reconnectionDelay: 50,
  reconnectionDelayMax: 200,
  randomizationFactor: 0,
};

describe("reconnect", () => {
  const ctx = useServer(routes);

  for (const transports of [undefined, ["websocket"], ["polling"]]) {
    const name = transports ? transports[0] : "default transports";
    test(`a client reconnects after the server restarts (${name})`, { timeout: 20_000 }, async (t) => {
      const socket = await ctx.clients.connect(ctx.server.url, { ...RECONNECT, ...(transports && { transports }) });
      const firstId = socket.id;

      const gone = waitForArgs(socket, "disconnect", { timeout: 5_000 });
      const back = waitFor(socket, "connect", { timeout: 10_000, label: "connect after restart" });
      const reconnected = waitFor(socket.io, "reconnect", { timeout: 10_000 });
      await ctx.server.restart();
      const [reason] = await gone;
      t.diagnostic(`disconnect reason on server kill: ${reason}`);
      assert.notEqual(reason, "io server disconnect", "a killed server cannot have said goodbye");
      await back;
      assert.ok((await reconnected) >= 1, "reconnect reports the attempt count");
      assert.equal(socket.connected, true);
      assert.notEqual(socket.id, firstId, "a fresh session after the restart");

      // Chat works, with a brand-new client too.
      const other = await ctx.clients.connect(ctx.server.url);
      const got = [socket, other].map((s) => waitForArgs(s, "chat message"));
      socket.emit("chat message", "after restart");
      assert.deepEqual(await Promise.all(got), [["after restart"], ["after restart"]]);
    });
  }

  test("two namespaces on one Manager both come back after a restart", { timeout: 20_000 }, async () => {
    const m = ctx.clients.manager(ctx.server.url, RECONNECT);
    const root = m.socket("/");
    const chat = m.socket("/chat");
    await Promise.all([waitConnected(root), waitConnected(chat)]);
    const rootBack = waitFor(root, "connect", { timeout: 10_000 });
    const chatBack = waitFor(chat, "connect", { timeout: 10_000 });
    await ctx.server.restart();
    await Promise.all([rootBack, chatBack]);

    const a = waitForArgs(chat, "message");
    chat.emit("message", "chat again");
    const b = waitForArgs(root, "chat message");
    root.emit("chat message", "root again");
    assert.deepEqual(await a, ["chat again"]);
    assert.deepEqual(await b, ["root again"]);
  });
});
