// Connection state recovery ([server.recovery]) with the stock client: a short drop while
// others broadcast gives the socket back — same id, same rooms — with every missed message
// once and in order (the offsets socket.io adds as the last argument included); past the
// window, a fresh session. Runs against the reference server too.

import assert from "node:assert/strict";
import { after, describe, it } from "node:test";

import { io as connect } from "socket.io-client";

import { startServer } from "./harness.mjs";
import { waitConnected, waitFor, waitForArgs } from "./helpers.mjs";

const routes = (window) => `
[server.recovery]
max_disconnection = "${window}"

[namespaces."/".events]
enter = { join = "{0}", ack = "{args}" }
news = { to = "io", ack = "{args}" }
said = { to = "room", room = "{0}", ack = "{args}" }
`;

describe("connection state recovery", () => {
  const servers = [];
  const sockets = [];
  after(async () => {
    for (const s of sockets) s.close();
    for (const s of servers) await s.stop();
  });
  const client = (server, opts = {}) => {
    const socket = connect(server.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
      ...opts,
    });
    sockets.push(socket);
    return waitConnected(socket);
  };

  it("a short drop gives the socket back with what it missed, once and in order", async () => {
    const server = await startServer({ routes: routes("2m") });
    servers.push(server);
    const ann = await client(server);
    const bob = await client(server, { reconnection: false });
    assert.equal(await ann.emitWithAck("enter", "r"), "r");
    assert.equal(ann.recovered, false);

    const got = [];
    ann.on("news", (text, offset) => got.push([text, typeof offset]));
    ann.on("said", (_room, text) => got.push([text, "room"]));
    const first = waitForArgs(ann, "news");
    await bob.emitWithAck("news", "n0");
    const [, offset] = await first;
    assert.equal(typeof offset, "string", "a broadcast carries its offset last");

    const id = ann.id;
    const dropped = waitFor(ann, "disconnect");
    ann.io.engine.close();
    assert.equal(await dropped, "forced close", "the client closed its transport");
    const back = waitFor(ann, "connect");
    await bob.emitWithAck("news", "n1");
    await bob.emitWithAck("said", "r", "n2");
    await bob.emitWithAck("news", "n3");
    await back;
    assert.equal(ann.recovered, true);
    assert.equal(ann.id, id);

    // Still in its room: the next room message reaches it.
    const live = waitForArgs(ann, "said");
    await bob.emitWithAck("said", "r", "n4");
    await live;
    assert.deepEqual(got, [
      ["n0", "string"],
      ["n1", "string"],
      ["n2", "room"],
      ["n3", "string"],
      ["n4", "room"],
    ]);
  });

  it("back after the window, the client gets a fresh session", async () => {
    const server = await startServer({ routes: routes("300ms") });
    servers.push(server);
    const ann = await client(server, { reconnection: false });
    const bob = await client(server, { reconnection: false });
    const first = waitFor(ann, "news");
    await bob.emitWithAck("news", "n0");
    await first;
    const id = ann.id;
    const dropped = waitFor(ann, "disconnect");
    ann.io.engine.close();
    await dropped;
    // The window is what is tested: let it pass.
    await new Promise((resolve) => setTimeout(resolve, 600));
    ann.connect();
    await waitFor(ann, "connect");
    assert.equal(ann.recovered, false);
    assert.notEqual(ann.id, id);
  });
});
