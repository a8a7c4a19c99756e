// A mixed cluster on one Redis: two switchboard nodes ([cluster] in routes.toml) and one Node
// socket.io server with the classic @socket.io/redis-adapter, plus a @socket.io/redis-emitter
// publisher. Redis is Debian's `redis-server`, started here on a free port (no persistence);
// a missing redis-server fails these tests (.ci/run installs it).

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";

import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { io as connect } from "socket.io-client";

import { startServer, target } from "./harness.mjs";
import { waitConnected, waitFor } from "./helpers.mjs";
import {
  barrier,
  collectUntil,
  eventually,
  metric,
  startNodePeer,
} from "./cluster-helpers.mjs";
import { startRedis } from "./redis.mjs";

const API_KEY = "cluster-test-api-key-0123456789";

const routes = (url, hooks) => `
[cluster]
adapter = "redis"
url = "${url}"

[api]
keys_env = "API_KEYS"

[[webhooks]]
url = "${hooks}"
events = ["room_occupied", "room_vacated"]
batch = { max = 100, interval = "20ms" }

[namespaces."/".events]
all = "io"
others = "broadcast"
enter = [ { join = "{0}" }, { ack = "ok" } ]
exit = [ { leave = "{0}" }, { ack = "ok" } ]
inroom = { to = "room", room = "{0}", include_sender = true }
`;

describe("cluster over Redis", { skip: target === "reference" && "switchboard only" }, () => {
  let redis, redisPort, sb1, sb2, nodeIo, nodeUrl, pub, sub, emitterClient, hooks;
  /** What the two switchboards told their webhook. */
  const hookEvents = [];
  const clients = [];

  async function client(url) {
    const socket = connect(url, { transports: ["websocket"], forceNew: true, reconnection: false });
    clients.push(socket);
    return waitConnected(socket);
  }

  before(async () => {
    redis = await startRedis();
    redisPort = redis.port;
    hooks = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        hookEvents.push(...JSON.parse(body).events);
        res.end();
      });
    });
    await new Promise((resolve) => hooks.listen(0, "127.0.0.1", resolve));
    const hooksUrl = `http://127.0.0.1:${hooks.address().port}/hooks`;
    const env = { API_KEYS: API_KEY };
    sb1 = await startServer({ routes: routes(redis.url, hooksUrl), env });
    sb2 = await startServer({ routes: routes(redis.url, hooksUrl), env });

    pub = createClient({ url: redis.url });
    sub = pub.duplicate();
    for (const c of [pub, sub]) c.on("error", () => {});
    await Promise.all([pub.connect(), sub.connect()]);
    ({ io: nodeIo, url: nodeUrl } = await startNodePeer({
      adapter: createAdapter(pub, sub, { requestsTimeout: 2000 }),
    }));
    emitterClient = createClient({ url: redis.url });
    emitterClient.on("error", () => {});
    await emitterClient.connect();
    // Every node subscribed: 2 switchboards + 1 Node server on the request channel.
    await eventually(
      async () => (await pub.pubSubNumSub("socket.io-request#/#"))["socket.io-request#/#"] === 3,
      { label: "three nodes subscribed" },
    );
  });

  after(async () => {
    for (const c of clients) c.close();
    nodeIo?.close();
    hooks?.close();
    await Promise.allSettled([pub?.quit(), sub?.quit(), emitterClient?.quit()]);
    await sb1?.stop();
    await sb2?.stop();
    await redis?.stop();
  });

  it("io, broadcast and room routes reach exactly the right clients on every node", async () => {
    const [a, b, n] = await Promise.all([client(sb1.url), client(sb2.url), client(nodeUrl)]);

    const io = [waitFor(a, "all"), waitFor(b, "all"), waitFor(n, "all")];
    a.emit("all", "hello", 1);
    assert.deepEqual(await Promise.all(io), ["hello", "hello", "hello"]);

    let token = barrier();
    const others = [waitFor(a, "others"), waitFor(n, "others"), collectUntil(b, "others", token)];
    b.emit("others", "from b");
    b.emit("all", token);
    const [ga, gn, gb] = await Promise.all(others);
    assert.deepEqual([ga, gn, gb], ["from b", "from b", []]);

    assert.equal(await a.emitWithAck("enter", "r1"), "ok");
    assert.equal(await n.emitWithAck("enter", "r1"), "ok");
    token = barrier();
    const room = [waitFor(a, "inroom"), waitFor(n, "inroom"), collectUntil(b, "inroom", token)];
    a.emit("inroom", "r1");
    a.emit("all", token);
    const [ra, rn, rb] = await Promise.all(room);
    assert.deepEqual([ra, rn, rb.length], ["r1", "r1", 0]);

    // ...and a room broadcast from the Node server reaches the switchboard member.
    token = barrier();
    const fromNode = [waitFor(a, "inroom"), collectUntil(b, "inroom", token)];
    n.emit("inroom", "r1", "x");
    n.emit("all", token);
    const [na, nb] = await Promise.all(fromNode);
    assert.equal(na, "r1");
    assert.equal(nb.length, 0);
    for (const s of [a, b, n]) s.close();
  });

  it("binary arguments survive every hop", async () => {
    const [a, b, n] = await Promise.all([client(sb1.url), client(sb2.url), client(nodeUrl)]);
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    // The sender's own copy too ("all" is io): one arriving late would be taken for the
    // next message.
    const got = [waitFor(a, "all"), waitFor(b, "all"), waitFor(n, "all")];
    a.emit("all", { file: bytes, name: "f" });
    for (const v of await Promise.all(got)) {
      assert.equal(v.name, "f");
      assert.deepEqual(Buffer.from(v.file), bytes);
    }
    const back = [waitFor(a, "all"), waitFor(b, "all")];
    n.emit("all", bytes);
    for (const v of await Promise.all(back)) assert.deepEqual(Buffer.from(v), bytes);
    for (const s of [a, b, n]) s.close();
  });

  it("fetchSockets, allRooms, socketsJoin, disconnectSockets and serverSideEmit from the Node server", async () => {
    const a = await client(sb1.url);
    const b = await client(sb2.url);
    assert.equal(await a.emitWithAck("enter", "fetch-room"), "ok");

    const sockets = await nodeIo.in("fetch-room").fetchSockets();
    assert.deepEqual(
      sockets.map((s) => s.id),
      [a.id],
    );
    assert.ok(sockets[0].rooms.has("fetch-room"));
    assert.equal(sockets[0].handshake.address, "127.0.0.1");
    assert.equal(typeof sockets[0].handshake.headers, "object");
    const all = (await nodeIo.fetchSockets()).map((s) => s.id);
    assert.ok(all.includes(a.id) && all.includes(b.id));

    const rooms = await nodeIo.of("/").adapter.allRooms();
    assert.ok(rooms.has("fetch-room"));

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
    assert.equal(na.length, 0);

    // serverSideEmit reaches every node; the acked form is answered by both switchboards.
    nodeIo.serverSideEmit("hello", 1);
    const answers = await nodeIo.serverSideEmitWithAck("hello", 2);
    assert.deepEqual(answers, [null, null]);

    const gone = waitFor(b, "disconnect");
    nodeIo.in(b.id).disconnectSockets();
    assert.equal(await gone, "io server disconnect");
    a.close();
  });

  it("an emitter's to(room).emit reaches the room on every node", async () => {
    const [a, b, n] = await Promise.all([client(sb1.url), client(sb2.url), client(nodeUrl)]);
    await a.emitWithAck("enter", "em");
    await b.emitWithAck("enter", "em");
    await n.emitWithAck("enter", "em");
    const outsider = await client(sb1.url);
    const emitter = new Emitter(emitterClient);
    const got = [waitFor(a, "from-emitter"), waitFor(b, "from-emitter"), waitFor(n, "from-emitter")];
    const token = barrier();
    const none = collectUntil(outsider, "from-emitter", token);
    emitter.to("em").emit("from-emitter", "e1");
    emitter.emit("all", token);
    assert.deepEqual(await Promise.all(got), ["e1", "e1", "e1"]);
    assert.equal((await none).length, 0);

    emitter.in(b.id).socketsJoin("em2");
    await eventually(async () =>
      (await nodeIo.in("em2").fetchSockets()).some((s) => s.id === b.id),
    );
    for (const s of [a, b, n, outsider]) s.close();
  });

  it("the server API of one node emits, joins, lists and disconnects on every node", async () => {
    const api = async (method, path, body) => {
      const res = await fetch(`${sb1.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body: body && JSON.stringify(body),
      });
      assert.equal(res.status, 200, `${method} ${path}`);
      return res.json();
    };
    const [a, b, n] = await Promise.all([client(sb1.url), client(sb2.url), client(nodeUrl)]);
    await b.emitWithAck("enter", "api-room");
    await n.emitWithAck("enter", "api-room");

    // An emit to a room reaches its members on the other switchboard and the Node server.
    let token = barrier();
    const got = [waitFor(b, "news"), waitFor(n, "news"), collectUntil(a, "news", token)];
    assert.deepEqual(
      await api("POST", "/api/emit", { namespace: "/", rooms: ["api-room"], event: "news", args: ["hi", { n: 1 }] }),
      { delivered: 0 },
    );
    a.emit("all", token);
    const [gb, gn, ga] = await Promise.all(got);
    assert.deepEqual([gb, gn, ga], ["hi", "hi", []]);

    // The listing covers every node: the members on sb2 and on the Node server.
    const listed = await api("GET", "/api/sockets?namespace=/&room=api-room");
    assert.deepEqual(listed.sockets.map((s) => s.id).sort(), [b.id, n.id].sort());
    assert.equal(listed.total, 2);
    const own = listed.sockets.find((s) => s.id === b.id);
    assert.ok(own.rooms.includes("api-room"));
    assert.equal(own.handshake.address, "127.0.0.1");

    // A join by socket id takes effect on the node that holds the socket.
    await api("POST", "/api/join", { namespace: "/", socket_id: n.id, room: "joined-by-api" });
    await eventually(async () =>
      (await nodeIo.in("joined-by-api").fetchSockets()).some((s) => s.id === n.id),
    );
    const rooms = await api("GET", "/api/rooms?namespace=/");
    assert.ok(rooms.rooms.includes("joined-by-api") && rooms.rooms.includes("api-room"));
    assert.ok(!rooms.rooms.includes(n.id), "sockets' own rooms are not listed");

    // A disconnect by socket id reaches the Node server's socket.
    const gone = waitFor(n, "disconnect");
    await api("POST", "/api/disconnect", { namespace: "/", socket_id: n.id });
    assert.equal(await gone, "io server disconnect");
    for (const s of [a, b]) s.close();
  });

  it("a room is told occupied by its first member on any node, vacated by its last", async () => {
    const a = await client(sb1.url);
    const b = await client(sb2.url);
    const told = (room) => hookEvents.filter((e) => e.room === room).map((e) => e.name);
    assert.equal(await a.emitWithAck("enter", "occ"), "ok");
    await eventually(async () => told("occ").length === 1, { label: "occupied" });
    // A second member, on the other node: the room was occupied already.
    assert.equal(await b.emitWithAck("enter", "occ"), "ok");
    assert.equal(await a.emitWithAck("exit", "occ"), "ok");
    // a left, b is still in: not vacated. b leaves: vacated.
    assert.equal(await b.emitWithAck("exit", "occ"), "ok");
    await eventually(async () => told("occ").length >= 2, { label: "vacated" });
    assert.deepEqual(told("occ"), ["room_occupied", "room_vacated"]);
    const [occupied, vacated] = hookEvents.filter((e) => e.room === "occ");
    assert.equal(occupied.namespace, "/");
    assert.notEqual(occupied.id, vacated.id);
    a.close();
    b.close();
  });

  it("recovery is per node: back on its node, a client gets what it missed from every node", async () => {
    const recovering = `[cluster]\nadapter = "redis"\nurl = "${redis.url}"\nkey = "recovery"\n\n[server.recovery]\n\n[namespaces."/".events]\nall = "io"\n`;
    const [r1, r2] = [await startServer({ routes: recovering }), await startServer({ routes: recovering })];
    try {
      const a = connect(r1.url, { transports: ["websocket"], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
      clients.push(a);
      await waitConnected(a);
      const b = await client(r2.url);
      const first = waitFor(a, "all");
      b.emit("all", "m0");
      assert.equal(await first, "m0");
      const got = [];
      a.on("all", (text) => got.push(text));
      const dropped = waitFor(a, "disconnect");
      a.io.engine.close();
      await dropped;
      const back = waitFor(a, "connect");
      b.emit("all", "m1");
      b.emit("all", "m2");
      await back;
      assert.equal(a.recovered, true);
      await eventually(async () => got.length >= 2, { label: "the missed messages" });
      assert.deepEqual(got, ["m1", "m2"]);
      a.close();
      b.close();
    } finally {
      await r1.stop();
      await r2.stop();
    }
  });

  it("Redis going away: local delivery continues, then the cluster resumes", async () => {
    const [a, b, n] = await Promise.all([client(sb1.url), client(sb2.url), client(nodeUrl)]);
    await redis.stop();
    await eventually(async () => (await metric(sb1, "switchboard_cluster_connected")) === 0, {
      label: "sb1 notices the outage",
    });
    const local = waitFor(a, "all", { label: "local delivery during the outage" });
    a.emit("all", "during outage");
    assert.equal(await local, "during outage");
    assert.ok((await metric(sb1, "switchboard_cluster_redis_outages_total")) >= 1);

    redis = await startRedis({ port: redisPort });
    await eventually(
      async () =>
        (await metric(sb1, "switchboard_cluster_connected")) === 1 &&
        (await metric(sb2, "switchboard_cluster_connected")) === 1,
      { label: "both switchboards resubscribed" },
    );
    await eventually(
      async () => {
        try {
          return (await pub.pubSubNumSub("socket.io-request#/#"))["socket.io-request#/#"] === 3;
        } catch {
          return false;
        }
      },
      { label: "every node resubscribed" },
    );
    const again = [waitFor(a, "all"), waitFor(b, "all"), waitFor(n, "all")];
    b.emit("all", "after restart");
    assert.deepEqual(await Promise.all(again), ["after restart", "after restart", "after restart"]);
    for (const s of [a, b, n]) s.close();
  });
});
