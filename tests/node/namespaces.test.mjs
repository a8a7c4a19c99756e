// Namespaces multiplexed over one engine connection.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { record, useServer, waitConnected, waitFor, waitUntil } from "./helpers.mjs";

const routes = `
[namespaces."/".events]
"chat message" = "io"
message = "io"

[namespaces."/chat".events]
message = "io"
`;

/**
 * `bad` and `good` are sockets of one Manager (opened in the caller's order):
 * `bad` is refused with "Invalid namespace" while `good` connects and still
 * gets its own "message" back.
 */
async function refusedBesideGood(bad, good) {
  const [err] = await Promise.all([waitFor(bad, "connect_error"), waitConnected(good)]);
  assert.equal(err.message, "Invalid namespace");
  const back = waitFor(good, "message");
  good.emit("message", "ok");
  assert.equal(await back, "ok");
}

describe("namespaces", () => {
  const ctx = useServer(routes);

  async function pair(opts) {
    const m = ctx.clients.manager(ctx.server.url, opts);
    const opens = record(m, "open");
    const engine = m.engine;
    const root = m.socket("/");
    const chat = m.socket("/chat");
    await Promise.all([waitConnected(root), waitConnected(chat)]);
    return { m, engine, opens, root, chat };
  }

  for (const transports of [undefined, ["websocket"], ["polling"]]) {
    const name = transports ? transports[0] : "default transports";
    test(`messages in /chat stay in /chat (${name})`, { timeout: 10_000 }, async () => {
      const one = await pair(transports && { transports });
      const two = await pair(transports && { transports });

      for (const { m, engine, opens, root, chat } of [one, two]) {
        assert.equal(m.engine, engine, "both namespaces share the Manager's one engine");
        assert.equal(root.io, m);
        assert.equal(chat.io, m);
        assert.equal(opens.length, 1, "the Manager opened exactly one engine connection");
        assert.notEqual(root.id, chat.id, "each namespace has its own socket id");
      }

      const logs = new Map();
      for (const s of [one.root, one.chat, two.root, two.chat]) logs.set(s, record(s, "message"));

      const chatDone = [one.chat, two.chat].map((s) =>
        waitUntil(s, "message", () => logs.get(s).length >= 1, { label: "message in /chat" }),
      );
      one.chat.emit("message", "in chat");
      await Promise.all(chatDone);

      // Barrier in "/": sent after the /chat message on the same connection.
      const rootDone = [one.root, two.root].map((s) =>
        waitUntil(s, "message", () => logs.get(s).length >= 1, { label: "message in /" }),
      );
      one.root.emit("message", "in root");
      await Promise.all(rootDone);

      assert.deepEqual(logs.get(one.chat), [["in chat"]]);
      assert.deepEqual(logs.get(two.chat), [["in chat"]]);
      assert.deepEqual(logs.get(one.root), [["in root"]]);
      assert.deepEqual(logs.get(two.root), [["in root"]]);

      for (const { m, engine, opens } of [one, two]) {
        assert.equal(m.engine, engine, "still the same engine after traffic");
        assert.equal(opens.length, 1, "no second engine connection was opened");
      }
    });
  }

  test("a namespace can be left while the other keeps working", { timeout: 10_000 }, async () => {
    const { m, engine, root, chat } = await pair();
    const rootGone = waitFor(root, "disconnect");
    root.disconnect();
    assert.equal(await rootGone, "io client disconnect");

    const back = waitFor(chat, "message");
    chat.emit("message", "still here");
    assert.equal(await back, "still here");
    assert.equal(m.engine, engine);
    assert.equal(chat.connected, true);
  });

  test('an undeclared namespace is refused with "Invalid namespace"', { timeout: 10_000 }, async () => {
    const socket = ctx.clients.socket(`${ctx.server.url}/nope`);
    const err = await waitFor(socket, "connect_error");
    assert.ok(err instanceof Error);
    assert.equal(err.message, "Invalid namespace");
    assert.equal(socket.connected, false);
  });

  test("a refused namespace does not disturb a good one on the same Manager", { timeout: 10_000 }, async () => {
    const m = ctx.clients.manager(ctx.server.url);
    const good = m.socket("/chat");
    const bad = m.socket("/nope");
    await refusedBesideGood(bad, good);
  });
});

describe("namespaces: root not declared", () => {
  const ctx = useServer(`[namespaces."/chat".events]\nmessage = "io"\n`);

  test('"/" is refused when only "/chat" is declared', { timeout: 10_000 }, async () => {
    const m = ctx.clients.manager(ctx.server.url);
    const root = m.socket("/");
    const chat = m.socket("/chat");
    await refusedBesideGood(root, chat);
  });
});
