// Engine.IO heartbeat: the server pings at ping_interval, a live client keeps
// answering and stays; a peer that stops answering is dropped after ping_timeout.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./harness.mjs";
import { Clients, record, waitForArgs, waitUntil } from "./helpers.mjs";

const routes = `
[server]
ping_interval = "100ms"
ping_timeout = "1s"

[namespaces."/".events]
"chat message" = "io"
`;

const PINGS = 20;

// Each test takes ~2 s of wall time waiting for pings, so they share one
// server and run concurrently; each test closes its own clients. Pings are
// frequent so that 20 of them come quickly; a pong may take up to a second, so
// a busy machine does not drop a live client. Every wait is for an event.
describe("heartbeat", { concurrency: true }, () => {
  let server;
  before(async () => {
    server = await startServer({ routes });
  });
  after(async () => {
    await server?.stop();
  });

  function clientsFor(t) {
    const clients = new Clients();
    t.after(() => clients.closeAll());
    return clients;
  }

  for (const transports of [undefined, ["websocket"], ["polling"]]) {
    const name = transports ? transports[0] : "default transports";
    test(`a client survives ${PINGS} heartbeats (${name})`, { timeout: 15_000 }, async (t) => {
      const clients = clientsFor(t);
      const socket = clients.socket(server.url, transports && { transports });
      const engine = socket.io.engine;
      let pings = 0;
      engine.on("ping", () => pings++);
      const disconnects = record(socket, "disconnect");
      const closes = record(engine, "close");
      const { id } = await new Promise((resolve, reject) => {
        socket.once("connect", () => resolve(socket));
        socket.once("connect_error", reject);
      });

      // 20 pings at 100 ms take ~2 s; the default 25 s interval would never get there.
      await waitUntil(engine, "ping", () => pings >= PINGS, { timeout: 8_000, label: `${PINGS} pings` });
      assert.deepEqual(disconnects, []);
      assert.deepEqual(closes, []);
      assert.equal(socket.connected, true);
      assert.equal(socket.id, id, "same session all along");
      assert.equal(socket.io.engine, engine);

      const back = waitForArgs(socket, "chat message");
      socket.emit("chat message", "alive");
      assert.deepEqual(await back, ["alive"]);
    });
  }

  test("a polling peer that never answers pings is dropped, others stay", { timeout: 15_000 }, async (t) => {
    const clients = clientsFor(t);
    const live = await clients.connect(server.url, { transports: ["websocket"] });
    const liveDisconnects = record(live, "disconnect");

    // Raw Engine.IO v4 long-polling peer that does everything but pong.
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const open = await fetch(base, { signal: AbortSignal.timeout(3_000) });
    assert.equal(open.status, 200);
    const body = await open.text();
    assert.equal(body[0], "0", `handshake is an open packet: ${body}`);
    const handshake = JSON.parse(body.slice(1));
    assert.equal(handshake.pingInterval, 100);
    assert.equal(handshake.pingTimeout, 1000);
    const url = `${base}&sid=${encodeURIComponent(handshake.sid)}`;
    const connect = await fetch(url, { method: "POST", body: "40", signal: AbortSignal.timeout(3_000) });
    assert.equal(connect.status, 200);
    await connect.text();

    // Long-poll without ever sending "3" (pong): the server must give up on us
    // after ping_interval + ping_timeout and forget the session.
    const seen = [];
    let pinged = false;
    let ended = false;
    for (let i = 0; i < 50; i++) {
      let res;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
      } catch (err) {
        seen.push(`fetch error: ${err.cause?.code ?? err.name}`);
        ended = true; // connection closed on us: also a way to end the session
        break;
      }
      const text = await res.text();
      seen.push(`${res.status} ${JSON.stringify(text.slice(0, 40))}`);
      if (res.status !== 200) {
        ended = true;
        break;
      }
      const packets = text.split("\x1e");
      if (packets.includes("2")) pinged = true;
      if (packets.includes("1")) {
        ended = true; // close packet
        break;
      }
    }
    t.diagnostic(`unanswered-ping peer saw: ${seen.join(", ")}`);
    assert.ok(pinged, `the server pinged the peer: ${seen.join(", ")}`);
    assert.ok(ended, `the session ended: ${seen.join(", ")}`);

    const after = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    await after.text();
    assert.equal(after.status, 400, `the dropped session is unknown afterwards (${seen.join(", ")})`);

    // The well-behaved client never noticed.
    const back = waitForArgs(live, "chat message");
    live.emit("chat message", "unaffected");
    assert.deepEqual(await back, ["unaffected"]);
    assert.deepEqual(liveDisconnects, []);
  });
});
