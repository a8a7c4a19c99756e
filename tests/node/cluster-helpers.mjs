// What the cluster tests share: a free port, barriers that make "nobody else got it" a fact,
// polling of state that has no event, and /metrics readings.

import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";

import { Server } from "socket.io";

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Resolves with every `event` the socket receives before the barrier: an "all" event carrying
 * `token`, sent after what is checked, by the same sender on the same path (one publisher
 * connection to Redis, one subscriber per node, FIFO per socket). Whatever was sent before the
 * barrier has arrived when the barrier does, so "nobody else got it" is a fact, not a wait.
 */
export function collectUntil(socket, event, token, { timeout = 10_000 } = {}) {
  const got = [];
  const record = (...args) => got.push(args);
  socket.on(event, record);
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      socket.off(event, record);
      socket.off("all", barrier);
    };
    const barrier = (arg) => {
      if (arg !== token) return;
      done();
      resolve(got);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeout} ms waiting for the barrier ${token}`));
    }, timeout);
    socket.on("all", barrier);
  });
}

let barriers = 0;
/** A fresh barrier token. */
export const barrier = () => `barrier-${++barriers}`;

export async function metric(server, name) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

export async function eventually(check, { timeout = 10_000, label = "condition" } = {}) {
  const until = Date.now() + timeout;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A Node socket.io server on a free port with `options` (its adapter), serving the same four
 * events as the switchboard nodes' routes: `all` (io), `others` (broadcast), `enter` (join,
 * acked "ok") and `inroom` (to a room, sender included). Resolves with `{ io, http, url }`.
 */
export async function startNodePeer(options) {
  const http = createServer();
  const io = new Server(http, options);
  io.on("connection", (socket) => {
    socket.on("all", (...args) => io.emit("all", ...args));
    socket.on("others", (...args) => socket.broadcast.emit("others", ...args));
    socket.on("enter", (room, ack) => {
      socket.join(room);
      ack?.("ok");
    });
    socket.on("inroom", (room, ...args) => io.to(room).emit("inroom", room, ...args));
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  return { io, http, url: `http://127.0.0.1:${http.address().port}` };
}
