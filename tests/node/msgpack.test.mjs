// `[server] parser = "msgpack"`: the stock client with socket.io-msgpack-parser — every packet
// one msgpack message, binary inline — over each transport and the upgrade; acks, binary,
// namespaces and refusals as with the default parser. The same tests run against Node
// socket.io with that parser (SWITCHBOARD_TEST_TARGET=reference).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import parser from "socket.io-msgpack-parser";
import WebSocket from "ws";

import { createClient } from "redis";

import { eventually } from "./cluster-helpers.mjs";
import { startServer, target } from "./harness.mjs";
import { Clients, useServer, waitFor, waitForArgs } from "./helpers.mjs";
import { startRedis } from "./redis.mjs";

const routes = `
[server]
parser = "msgpack"

[namespaces."/".events]
"chat message" = "io"
echo = { ack = "{args}" }
other = { to = "broadcast", ack = "{args}" }
`;

/** Every argument of the ack of `event` sent with `args`. */
function ackArgs(socket, event, ...args) {
  return new Promise((resolve, reject) =>
    socket.timeout(5_000).emit(event, ...args, (err, ...answer) => (err ? reject(err) : resolve(answer))),
  );
}

function assertSameBuffer(actual, expected, what) {
  assert.ok(Buffer.isBuffer(actual), `${what} should arrive as a Buffer, got ${actual?.constructor?.name}`);
  assert.ok(actual.equals(expected), `${what}: contents differ`);
}

for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
  describe(`msgpack parser over ${transports.join(" then ")}`, () => {
    const ctx = useServer(routes);
    const connect = () => ctx.clients.connect(ctx.server.url, { parser, transports });

    test("a chat message reaches every client once", async () => {
      const [a, b] = await Promise.all([connect(), connect()]);
      if (transports.length === 2) {
        await Promise.all([a, b].map((s) => s.io.engine.transport.name === "websocket" || waitFor(s.io.engine, "upgrade")));
      }
      const got = [waitFor(a, "chat message"), waitFor(b, "chat message")];
      a.emit("chat message", "héllo 👋");
      assert.deepEqual(await Promise.all(got), ["héllo 👋", "héllo 👋"]);
    });

    test("acks and binary arguments come back as sent", async () => {
      const a = await connect();
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const [flat, nested] = await ackArgs(a, "echo", all, { list: [1, 2.5, { deep: all }], ok: true, none: null });
      assertSameBuffer(flat, all, "argument");
      assertSameBuffer(nested.list[2].deep, all, "nested");
      assert.deepEqual([nested.list[0], nested.list[1], nested.ok, nested.none], [1, 2.5, true, null]);
    });

    test("a broadcast with binary reaches the others, and its ack the sender", async () => {
      const [a, b] = await Promise.all([connect(), connect()]);
      const file = Buffer.from([0, 1, 2, 253, 254, 255]);
      const heard = waitForArgs(b, "other");
      const [ack, [name, bytes]] = await Promise.all([ackArgs(a, "other", "f.bin", file), heard]);
      assert.equal(name, "f.bin");
      assertSameBuffer(bytes, file, "broadcast");
      assert.equal(ack[0], "f.bin");
      assertSameBuffer(ack[1], file, "ack");
    });

    test("an undeclared namespace is refused with connect_error", async () => {
      const s = ctx.clients.socket(`${ctx.server.url}/nope`, { parser, transports });
      const err = await waitFor(s, "connect_error");
      assert.equal(err.message, "Invalid namespace");
    });
  });
}

describe("msgpack parser: bad input", () => {
  const ctx = useServer(routes);

  test("a message that is not a msgpack packet closes that session only", async () => {
    const other = await ctx.clients.connect(ctx.server.url, { parser, transports: ["websocket"] });
    const ws = new WebSocket(`${ctx.server.url.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    const closed = new Promise((resolve) => ws.once("close", resolve));
    await new Promise((resolve) => ws.once("message", resolve)); // the OPEN packet
    // A text packet (the default parser's CONNECT), then bytes that are no msgpack map.
    ws.send("40");
    ws.send(Buffer.from([0xc1, 0xff, 0x00]));
    await closed;
    const back = waitFor(other, "chat message");
    other.emit("chat message", "still here");
    assert.equal(await back, "still here");
  });
});

describe("msgpack parser: the bundles", { skip: target === "reference" && "switchboard only" }, () => {
  const ctx = useServer(routes);

  test("the msgpack bundle is served, the default one explains why not", async () => {
    const msgpack = await fetch(`${ctx.server.url}/socket.io/socket.io.msgpack.min.js`);
    assert.equal(msgpack.status, 200);
    assert.match(await msgpack.text(), /msgpack|notepack|decode/);
    const plain = await fetch(`${ctx.server.url}/socket.io/socket.io.min.js`);
    assert.equal(plain.status, 404);
    assert.match(await plain.text(), /speaks the msgpack parser.*socket\.io\.msgpack\.min\.js/s);
  });
});

describe("msgpack parser in a cluster", { skip: target === "reference" && "switchboard only" }, () => {
  test("binary reaches a msgpack client on another node", async (t) => {
    let redis, one, two, pub;
    const clients = new Clients();
    // Undone in reverse: clients, the Redis client, the nodes, then Redis.
    t.after(async () => {
      clients.closeAll();
      await pub?.quit();
      await Promise.all([one?.stop(), two?.stop()]);
      await redis?.stop();
    });
    redis = await startRedis();
    const clustered = `${routes}\n[cluster]\nadapter = "redis"\nurl = "${redis.url}"\n`;
    [one, two] = await Promise.all([startServer({ routes: clustered }), startServer({ routes: clustered })]);
    const a = await clients.connect(one.url, { parser, transports: ["websocket"] });
    const b = await clients.connect(two.url, { parser, transports: ["websocket"] });
    pub = createClient({ url: redis.url });
    pub.on("error", () => {});
    await pub.connect();
    await eventually(
      async () => (await pub.pubSubNumSub("socket.io-request#/#"))["socket.io-request#/#"] === 2,
      { label: "both nodes subscribed" },
    );
    const file = Buffer.from([9, 0, 255]);
    const heard = waitForArgs(b, "chat message");
    a.emit("chat message", "file", file);
    const [name, bytes] = await heard;
    assert.equal(name, "file");
    assertSameBuffer(bytes, file, "across nodes");
  });
});
