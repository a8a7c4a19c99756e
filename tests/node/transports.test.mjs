// Each transport setup connects, emits and receives through a routed event.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { useServer, waitConnected, waitFor } from "./helpers.mjs";

const routes = `
[namespaces."/".events]
"chat message" = "io"
`;

describe("transports", () => {
  const ctx = useServer(routes);

  async function roundTrip(socket, text) {
    const got = waitFor(socket, "chat message");
    socket.emit("chat message", text);
    assert.equal(await got, text);
  }

  test("default transports: polling first, then upgrade to websocket", { timeout: 10_000 }, async () => {
    const socket = ctx.clients.socket(ctx.server.url);
    const engine = socket.io.engine;
    assert.equal(engine.transport.name, "polling", "the handshake starts on polling");
    const upgraded = waitFor(engine, "upgrade");
    await waitConnected(socket);
    const transport = await upgraded;
    assert.equal(transport.name, "websocket");
    assert.equal(socket.io.engine.transport.name, "websocket");
    assert.equal(socket.io.engine, engine, "the upgrade keeps the same engine");
    await roundTrip(socket, "after upgrade");
    assert.equal(socket.io.engine.transport.name, "websocket");
  });

  test('transports: ["websocket"] only', { timeout: 10_000 }, async () => {
    const socket = await ctx.clients.connect(ctx.server.url, { transports: ["websocket"] });
    assert.equal(socket.io.engine.transport.name, "websocket");
    await roundTrip(socket, "over websocket");
  });

  test('transports: ["polling"] only', { timeout: 10_000 }, async () => {
    const socket = await ctx.clients.connect(ctx.server.url, { transports: ["polling"] });
    assert.equal(socket.io.engine.transport.name, "polling");
    await roundTrip(socket, "over polling");
    // A second exchange makes sure the long-poll loop keeps delivering.
    await roundTrip(socket, "over polling again");
    assert.equal(socket.io.engine.transport.name, "polling");
  });

  test("polling with upgrade disabled stays on polling", { timeout: 10_000 }, async () => {
    const socket = await ctx.clients.connect(ctx.server.url, { upgrade: false });
    await roundTrip(socket, "no upgrade");
    assert.equal(socket.io.engine.transport.name, "polling");
  });
});
