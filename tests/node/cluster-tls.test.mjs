// `rediss://`: two switchboard nodes reach a Redis that listens on TLS only (Debian's
// redis-server with a certificate from a CA made at test time, trusted through SSL_CERT_FILE);
// a broadcast crosses from one node to the other. A missing redis-server or openssl fails this
// test (.ci/run installs them).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";

import { createClient } from "redis";
import { io as connect } from "socket.io-client";

import { eventually } from "./cluster-helpers.mjs";
import { startServer, target } from "./harness.mjs";
import { waitConnected, waitFor } from "./helpers.mjs";
import { startRedis } from "./redis.mjs";

describe("cluster over Redis with TLS", { skip: target === "reference" && "switchboard only" }, () => {
  let redis, sb1, sb2;
  const clients = [];

  before(async () => {
    redis = await startRedis({ tls: true });
    assert.match(redis.url, /^rediss:\/\//);
    const routes = `[cluster]\nadapter = "redis"\nurl = "${redis.url}"\n\n[namespaces."/".events]\nall = "io"\n`;
    const env = { SSL_CERT_FILE: redis.ca };
    sb1 = await startServer({ routes, env });
    sb2 = await startServer({ routes, env });
    // Both nodes subscribed (seen over TLS too): a broadcast then reaches the other one.
    const probe = createClient({ url: redis.url, socket: { tls: true, ca: readFileSync(redis.ca) } });
    probe.on("error", () => {});
    await probe.connect();
    try {
      await eventually(
        async () => (await probe.pubSubNumSub("socket.io-request#/#"))["socket.io-request#/#"] === 2,
        { label: "two nodes subscribed" },
      );
    } finally {
      await probe.quit();
    }
  });

  after(async () => {
    for (const c of clients) c.close();
    await sb1?.stop();
    await sb2?.stop();
    await redis?.stop();
  });

  it("a broadcast crosses nodes over rediss://", async () => {
    const client = (url) => {
      const socket = connect(url, { transports: ["websocket"], forceNew: true, reconnection: false });
      clients.push(socket);
      return waitConnected(socket);
    };
    const [a, b] = await Promise.all([client(sb1.url), client(sb2.url)]);
    const got = waitFor(b, "all");
    a.emit("all", "over tls");
    assert.equal(await got, "over tls");
  });
});
