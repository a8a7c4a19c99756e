// Each transport setup connects, emits and receives through a routed event.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { useServer, waitConnected, waitFor } from "./helpers.mjs";

const routes = `
[namespaces."/".events]
"chat message" = "io"
`;

/** A client's WebSocket handshake request for `target`, as written on a raw socket. */
const handshake = (target) =>
  `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

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

  // Over a raw socket: a WebSocket session whose client ends its side of the connection
  // without a close frame is sent nothing more — no close frame to a peer that sent none
  // (as ws does).
  test("a WebSocket ended without a close frame is sent none", { timeout: 10_000 }, async () => {
    const { port } = new URL(ctx.server.url);
    const socket = connect(Number(port), "127.0.0.1");
    let got = Buffer.alloc(0);
    let ended = false;
    const end = new Promise((resolve) => socket.on("end", () => resolve((ended = true))));
    const arrived = (text) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (got.includes(text)) return resolve();
          if (ended) return reject(new Error(`ended before ${text}: ${got.toString("latin1")}`));
          socket.once("data", check);
          socket.once("end", check);
        };
        check();
      });
    socket.on("data", (d) => (got = Buffer.concat([got, d])));
    socket.write(handshake("/socket.io/?EIO=4&transport=websocket"));
    await arrived('"maxPayload"');
    assert.match(got.toString("latin1"), /^HTTP\/1\.1 101 [^]*\r\n\r\n\x81.0\{"sid"/);
    // CONNECT to "/", masked as a client's frames are.
    const key = [1, 2, 3, 4];
    socket.write(Buffer.from([0x81, 0x82, ...key, 0x34 ^ key[0], 0x30 ^ key[1]]));
    await arrived("40{");
    got = Buffer.alloc(0);
    socket.end();
    await end;
    assert.equal(got.toString("latin1"), "", "nothing after the client's end");
    socket.destroy();
  });

  // Over a raw socket: a WebSocket handshake for an unknown session is refused and its
  // connection closed (what the client sent behind it is never read as a request).
  test("a refused WebSocket handshake closes its connection", { timeout: 10_000 }, async () => {
    const { port } = new URL(ctx.server.url);
    const socket = connect(Number(port), "127.0.0.1");
    let got = "";
    socket.on("data", (d) => (got += d.toString("latin1")));
    const end = new Promise((resolve) => socket.on("end", resolve));
    socket.write(
      handshake("/socket.io/?EIO=4&transport=websocket&sid=nosuchsession") +
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    await end;
    assert.match(got, /^HTTP\/1\.1 400 /);
    assert.match(got, /\r\nconnection: close\r\n/i);
    assert.equal(got.match(/HTTP\/1\.1/g).length, 1, `one answer only: ${got}`);
    socket.destroy();
  });

  test("polling with upgrade disabled stays on polling", { timeout: 10_000 }, async () => {
    const socket = await ctx.clients.connect(ctx.server.url, { upgrade: false });
    await roundTrip(socket, "no upgrade");
    assert.equal(socket.io.engine.transport.name, "polling");
  });
});
