// Presence across a cluster: room sizes and member lists (`{room.size}`, `{room.members}`)
// and presence announcements count the sockets of every switchboard node, on both adapters;
// a node that dies takes its sockets out of the rooms within three heartbeats, and the
// sockets left there are told. Redis is Debian's `redis-server` on a free port; a missing
// redis-server fails these tests (.ci/run installs it).

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { io as connect } from "socket.io-client";

import { eventually, metric } from "./cluster-helpers.mjs";
import { startServer, target } from "./harness.mjs";
import { waitConnected, waitFor, waitUntil } from "./helpers.mjs";
import { startRedis } from "./redis.mjs";

const routes = (url, adapter) => `
[cluster]
adapter = "${adapter}"
url = "${url}"
heartbeat = "200ms"

[namespaces."/"]
presence = { event = "presence" }

[namespaces."/".events]
enter = { join = "{0}", ack = ["{room.size}", "{room.members}"] }
post = { to = "room", room = "{0.room}", include_sender = true, data = "{0.text}", history = { size = 3 } }
catchup = [ { join = "{0}", replay = true }, { ack = "in {0}" } ]
flood = { to = "room", room = "flood", include_sender = true, data = "{0}", history = { size = 1000 } }
`;

for (const adapter of ["redis", "redis-streams"]) {
  describe(`presence across a cluster (${adapter})`, { skip: target === "reference" && "switchboard only" }, () => {
    let redis, sb1, sb2;
    const clients = [];

    async function client(server) {
      const socket = connect(server.url, {
        transports: ["websocket"],
        forceNew: true,
        reconnection: false,
      });
      clients.push(socket);
      socket.presence = [];
      socket.on("presence", (p) => socket.presence.push(p));
      return waitConnected(socket);
    }

    /** Resolves once `socket` was told `change` of `id` in `room`; with that announcement. */
    function told(socket, room, change, id) {
      const find = () => socket.presence.find((p) => p.room === room && p[change] === id);
      return waitUntil(socket, "presence", () => find() !== undefined, {
        timeout: 10_000,
        label: `presence ${change} ${id} in ${room}`,
      }).then(find);
    }

    /**
     * `server` holds `n` memberships of other nodes' sockets: the changes told so far have
     * reached it (they travel on their own channel, beside broadcasts).
     */
    async function knows(server, n) {
      await eventually(async () => (await metric(server, "switchboard_cluster_remote_members")) === n, {
        label: `${server.url} holds ${n} memberships of other nodes`,
      });
    }

    /** Both nodes know each other (a heartbeat heard and the other's rooms read). */
    async function meshed(servers) {
      for (const s of servers) {
        await eventually(async () => (await metric(s, "switchboard_cluster_remote_nodes")) === servers.length - 1, {
          label: `${s.url} knows the other nodes`,
        });
      }
    }

    before(async () => {
      redis = await startRedis();
      sb1 = await startServer({ routes: routes(redis.url, adapter) });
      sb2 = await startServer({ routes: routes(redis.url, adapter) });
      await meshed([sb1, sb2]);
    });

    after(async () => {
      for (const c of clients) c.close();
      await sb1?.stop();
      await sb2?.stop();
      await redis?.stop();
    });

    it("room sizes, member lists and announcements count every node's sockets", async () => {
      const a = await client(sb1);
      const b = await client(sb2);
      const c = await client(sb1);
      assert.deepEqual(await a.emitWithAck("enter", "lobby"), [1, [a.id]]);
      await knows(sb2, 1);
      assert.deepEqual(await b.emitWithAck("enter", "lobby"), [2, [a.id, b.id].sort()]);
      const joinedB = await told(a, "lobby", "joined", b.id);
      assert.deepEqual(joinedB, { room: "lobby", size: 2, joined: b.id, data: {} });
      await knows(sb1, 1);
      assert.deepEqual(await c.emitWithAck("enter", "lobby"), [3, [a.id, b.id, c.id].sort()]);
      assert.equal((await told(b, "lobby", "joined", c.id)).size, 3);

      // b leaves on its node: a and c, on the other, are told, with the size left (as b's
      // node knows it: a's and c's joins reached it — on the streams wire the announcement
      // and the change travel apart).
      await knows(sb2, 2);
      const bId = b.id;
      b.close();
      const [leftA, leftC] = await Promise.all([told(a, "lobby", "left", bId), told(c, "lobby", "left", bId)]);
      assert.deepEqual(leftA, { room: "lobby", size: 2, left: bId, data: {} });
      assert.deepEqual(leftC, leftA);
      // Asked on the node b was not on.
      await knows(sb1, 0);
      assert.deepEqual(await a.emitWithAck("enter", "lobby"), [2, [a.id, c.id].sort()]);
      a.close();
      c.close();
      await knows(sb2, 0);
    });

    it("a room's history reaches a joiner on another node, and a node started later", async () => {
      const a = await client(sb1);
      const b = await client(sb2);
      for (const text of ["m1", "m2", "m3", "m4"]) {
        await a.emitWithAck("post", { room: "news", text });
      }
      await eventually(async () => (await metric(sb2, "switchboard_cluster_history_heard_total")) === 4, {
        label: "sb2 heard the four kept messages",
      });
      // The last three (the room's `size`), oldest first, before the ack.
      const got = [];
      b.on("post", (text) => got.push(text));
      assert.equal(await b.emitWithAck("catchup", "news"), "in news");
      assert.deepEqual(got, ["m2", "m3", "m4"]);

      // A node that was not there reads the room's list from Redis.
      const sb3 = await startServer({ routes: routes(redis.url, adapter) });
      try {
        await eventually(async () => (await metric(sb3, "switchboard_cluster_history_read_total")) === 3, {
          label: "sb3 read the kept messages",
        });
        const c = await client(sb3);
        const late = [];
        c.on("post", (text) => late.push(text));
        assert.equal(await c.emitWithAck("catchup", "news"), "in news");
        assert.deepEqual(late, ["m2", "m3", "m4"]);
        // New messages reach every node's history, and the list stays the room's size.
        const m5 = waitFor(c, "post");
        await b.emitWithAck("post", { room: "news", text: "m5" });
        assert.equal(await m5, "m5");
        const d = await client(sb1);
        const onA = [];
        d.on("post", (text) => onA.push(text));
        await eventually(async () => (await metric(sb1, "switchboard_cluster_history_heard_total")) === 1, {
          label: "sb1 heard m5",
        });
        assert.equal(await d.emitWithAck("catchup", "news"), "in news");
        assert.deepEqual(onA, ["m3", "m4", "m5"]);
        c.close();
        d.close();
      } finally {
        await sb3.stop();
      }
      a.close();
      b.close();
    });

    it("a joiner on another node gets each message once, in order, while they are sent", async () => {
      const a = await client(sb1);
      const b = await client(sb2);
      await a.emitWithAck("catchup", "flood");
      const got = [];
      b.on("flood", (n) => got.push(n));
      const last = waitUntil(b, "flood", () => got.includes(400), { timeout: 10_000, label: "message 400" });
      // b joins (and is replayed the room's history) while a's messages are on their way.
      for (let n = 1; n <= 400; n++) a.emit("flood", n);
      await new Promise((resolve) => a.once("flood", resolve));
      assert.equal(await b.emitWithAck("catchup", "flood"), "in flood");
      await last;
      // Replayed, then live: one run with no gap and no repeat, ending at the last.
      const first = got[0];
      assert.deepEqual(got, Array.from({ length: 401 - first }, (_, i) => first + i));
      a.close();
      b.close();
    });

    it("a node that dies takes its sockets out of the rooms, and those left are told", async () => {
      const sb3 = await startServer({ routes: routes(redis.url, adapter) });
      try {
        await meshed([sb1, sb2, sb3]);
        const a = await client(sb1);
        const d = await client(sb3);
        assert.deepEqual(await a.emitWithAck("enter", "attic"), [1, [a.id]]);
        await knows(sb3, 1);
        assert.deepEqual(await d.emitWithAck("enter", "attic"), [2, [a.id, d.id].sort()]);
        await told(a, "attic", "joined", d.id);

        const dId = d.id;
        await sb3.kill();
        // Nobody announced it: a's node notices the silence (three heartbeats of 200 ms).
        const gone = await told(a, "attic", "left", dId);
        assert.deepEqual(gone, { room: "attic", size: 1, left: dId, data: {} });
        assert.deepEqual(await a.emitWithAck("enter", "attic"), [1, [a.id]]);
        const e = await client(sb2);
        await eventually(async () => (await metric(sb2, "switchboard_cluster_remote_nodes")) === 1, {
          label: "sb2 forgot the dead node",
        });
        await knows(sb2, 1);
        assert.deepEqual(await e.emitWithAck("enter", "attic"), [2, [a.id, e.id].sort()]);
        a.close();
        e.close();
      } finally {
        await sb3.stop();
      }
    });
  });
}
