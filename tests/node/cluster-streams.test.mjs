// A mixed cluster on one Redis stream: two switchboard nodes (`adapter = "redis-streams"`) and
// one Node socket.io server with @socket.io/redis-streams-adapter, all with connection state
// recovery. Broadcasts, requests and — what the classic adapter cannot do — recovery work
// across nodes: a client that drops from one node and comes back on another gets its socket,
// its rooms and every message it missed. Redis is Debian's `redis-server` on a free port; a
// missing redis-server fails these tests (.ci/run installs it).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { io as connect } from "socket.io-client";

import { barrier, collectUntil, eventually, startNodePeer } from "./cluster-helpers.mjs";
import { startServer, target } from "./harness.mjs";
import { waitConnected, waitFor } from "./helpers.mjs";
import { startRedis } from "./redis.mjs";

const API_KEY = "streams-test-api-key-0123456789";

const routes = (url) => `
[cluster]
adapter = "redis-streams"
url = "${url}"

[server.recovery]
max_disconnection = "2m"

[api]
keys_env = "API_KEYS"

[namespaces."/".events]
all = "io"
others = "broadcast"
enter = [ { join = "{0}" }, { ack = "ok" } ]
inroom = { to = "room", room = "{0}", include_sender = true }
`;

describe("cluster over Redis streams", { skip: target === "reference" && "switchboard only" }, () => {
  let redis, sb1, sb2, nodeIo, nodeUrl, nodeClient;
  const clients = [];

  async function client(url) {
    const socket = connect(url, { transports: ["websocket"], forceNew: true, reconnection: false });
    clients.push(socket);
    return waitConnected(socket);
  }

  /**
   * Drop `socket`'s connection, run `meanwhile` while it is away, then reconnect it to `url`
   * (another node) as the client's own reconnection does — its CONNECT carries its `pid` and
   * last offset: resolves once it is connected again.
   */
  async function dropAndReturn(socket, url, meanwhile) {
    const dropped = waitFor(socket, "disconnect");
    // The manager builds its next transport from `uri`.
    socket.io.uri = url;
    socket.io.engine.close();
    await dropped;
    await meanwhile();
    const back = waitFor(socket, "connect");
    socket.connect();
    await back;
  }

  /** Resolves once `socket` gets `event` with `text` among its arguments (others pass by). */
  function heard(socket, event, text, { timeout = 10_000 } = {}) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.off(event, handler);
        reject(new Error(`timed out waiting for ${event} ${text}`));
      }, timeout);
      const handler = (...args) => {
        if (!args.includes(text)) return;
        clearTimeout(timer);
        socket.off(event, handler);
        resolve();
      };
      socket.on(event, handler);
    });
  }

  before(async () => {
    redis = await startRedis();
    const env = { API_KEYS: API_KEY };
    sb1 = await startServer({ routes: routes(redis.url), env });
    sb2 = await startServer({ routes: routes(redis.url), env });
    nodeClient = createClient({ url: redis.url });
    nodeClient.on("error", () => {});
    await nodeClient.connect();
    ({ io: nodeIo, url: nodeUrl } = await startNodePeer({
      adapter: createAdapter(nodeClient),
      connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
    }));
    // Every node listens on the namespace's public channel: 2 switchboards + 1 Node server.
    await eventually(
      async () => (await nodeClient.pubSubNumSub("socket.io#/#"))["socket.io#/#"] === 3,
      { label: "three nodes subscribed" },
    );
  });

  after(async () => {
    for (const c of clients) c.close();
    nodeIo?.close();
    await Promise.allSettled([nodeClient?.quit()]);
    await sb1?.stop();
    await sb2?.stop();
    await redis?.stop();
  });

  it("io, broadcast and room routes reach exactly the right clients on every node", async () => {
    const [a, b, n] = await Promise.all([client(sb1.url), client(sb2.url), client(nodeUrl)]);
    const all = [waitFor(a, "all"), waitFor(b, "all"), waitFor(n, "all")];
    a.emit("all", "hello");
    assert.deepEqual((await Promise.all(all)).map((m) => m), ["hello", "hello", "hello"]);

    let token = barrier();
    const others = [waitFor(a, "others"), waitFor(n, "others"), collectUntil(b, "others", token)];
    b.emit("others", "from b");
    b.emit("all", token);
    const [oa, on, ob] = await Promise.all(others);
    assert.deepEqual([oa, on, ob], ["from b", "from b", []]);

    assert.equal(await n.emitWithAck("enter", "r1"), "ok");
    token = barrier();
    const room = [waitFor(n, "inroom"), collectUntil(b, "inroom", token)];
    a.emit("inroom", "r1", "x");
    a.emit("all", token);
    const [rn, rb] = await Promise.all(room);
    assert.equal(rn, "r1");
    assert.deepEqual(rb, []);
    for (const s of [a, b, n]) s.close();
  });

  it("binary arguments survive every hop", async () => {
    const [a, b, n] = await Promise.all([client(sb1.url), client(sb2.url), client(nodeUrl)]);
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    // `io`: the sender gets its own copy too (with recovery on, once Redis has its offset).
    const got = [waitFor(a, "all"), waitFor(b, "all"), waitFor(n, "all")];
    a.emit("all", { file: bytes, name: "f" });
    for (const m of await Promise.all(got)) {
      assert.deepEqual(Buffer.from(m.file), bytes);
      assert.equal(m.name, "f");
    }
    const back = waitFor(a, "all");
    n.emit("all", bytes);
    assert.deepEqual(Buffer.from(await back), bytes);
    for (const s of [a, b, n]) s.close();
  });

  it("fetchSockets, socketsJoin, disconnectSockets and serverSideEmit from the Node server", async () => {
    const a = await client(sb1.url);
    const b = await client(sb2.url);
    assert.equal(await a.emitWithAck("enter", "fetch-room"), "ok");
    const sockets = await nodeIo.in("fetch-room").fetchSockets();
    assert.deepEqual(sockets.map((s) => s.id), [a.id]);
    assert.ok(sockets[0].rooms.has("fetch-room"));
    assert.equal(sockets[0].handshake.address, "127.0.0.1");

    nodeIo.in(b.id).socketsJoin("joined-remotely");
    await eventually(async () =>
      (await nodeIo.in("joined-remotely").fetchSockets()).some((s) => s.id === b.id),
    );
    const token = barrier();
    const hit = [waitFor(b, "news"), collectUntil(a, "news", token)];
    nodeIo.to("joined-remotely").emit("news", 42);
    nodeIo.emit("all", token);
    const [nb, na] = await Promise.all(hit);
    assert.equal(nb, 42);
    assert.deepEqual(na, []);

    // The acked form is answered by both switchboards (they run no server-side handlers).
    assert.deepEqual(await nodeIo.serverSideEmitWithAck("hello", 2), [null, null]);

    const gone = waitFor(b, "disconnect");
    nodeIo.in(b.id).disconnectSockets();
    assert.equal(await gone, "io server disconnect");
    a.close();
  });

  it("the server API of one node lists and joins sockets on every node", async () => {
    const api = async (method, path, body) => {
      const res = await fetch(`${sb1.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: body && JSON.stringify(body),
      });
      assert.equal(res.status, 200, `${method} ${path}`);
      return res.json();
    };
    const [b, n] = await Promise.all([client(sb2.url), client(nodeUrl)]);
    await b.emitWithAck("enter", "api-room");
    await n.emitWithAck("enter", "api-room");
    const listed = await api("GET", "/api/sockets?namespace=/&room=api-room");
    assert.deepEqual(listed.sockets.map((s) => s.id).sort(), [b.id, n.id].sort());
    await api("POST", "/api/join", { namespace: "/", socket_id: n.id, room: "joined-by-api" });
    await eventually(async () =>
      (await nodeIo.in("joined-by-api").fetchSockets()).some((s) => s.id === n.id),
    );
    const rooms = await api("GET", "/api/rooms?namespace=/");
    assert.ok(rooms.rooms.includes("joined-by-api") && rooms.rooms.includes("api-room"));
    for (const s of [b, n]) s.close();
  });

  for (const [from, to] of [
    ["switchboard", "the other switchboard"],
    ["switchboard", "the Node server"],
    ["the Node server", "switchboard"],
  ]) {
    it(`recovery across nodes: from ${from} to ${to}, same id, rooms kept, every missed message once and in order`, async () => {
      const urls = {
        switchboard: sb1.url,
        "the other switchboard": sb2.url,
        "the Node server": nodeUrl,
      };
      const a = await client(urls[from]);
      const sender = await client(sb2.url);
      assert.equal(await a.emitWithAck("enter", "kept"), "ok");
      const first = waitFor(a, "all");
      sender.emit("all", "m0");
      assert.equal(await first, "m0");
      const id = a.id;

      const got = [];
      a.on("all", (text) => got.push(text));
      a.on("inroom", (_room, text) => got.push(text));
      await dropAndReturn(a, urls[to], async () => {
        // Sent while a is away, from two nodes; each is acked by its sender once it is in
        // the stream (the sender's own copy arrives after the XADD).
        const own = heard(sender, "all", "m1");
        sender.emit("all", "m1");
        await own;
        const viaNode = await client(nodeUrl);
        assert.equal(await viaNode.emitWithAck("enter", "probe"), "ok");
        const room = waitFor(viaNode, "inroom");
        viaNode.emit("inroom", "probe", "ignored");
        await room;
        const ownRoom = heard(sender, "all", "m3");
        sender.emit("inroom", "kept", "m2");
        sender.emit("all", "m3");
        await ownRoom;
        viaNode.close();
      });
      assert.equal(a.recovered, true, "the socket is recovered");
      assert.equal(a.id, id, "with its id");
      await eventually(async () => got.length >= 3, { label: "the missed messages" });
      assert.deepEqual(got, ["m1", "m2", "m3"]);

      // Its rooms came back: a message to the room reaches it on its new node.
      const inRoom = waitFor(a, "inroom");
      sender.emit("inroom", "kept", "after");
      assert.equal(await inRoom, "kept");
      a.close();
      sender.close();
    });
  }

  it("an unknown or expired session gets a fresh socket", async () => {
    const a = await client(sb1.url);
    const id = a.id;
    await dropAndReturn(a, sb2.url, async () => {
      // The saved session is gone, as after max_disconnection.
      await eventually(async () => (await nodeClient.keys("sio:session:*")).length > 0, {
        label: "the session saved",
      });
      for (const key of await nodeClient.keys("sio:session:*")) await nodeClient.del(key);
    });
    assert.equal(a.recovered, false);
    assert.notEqual(a.id, id);
    a.close();
  });
});
