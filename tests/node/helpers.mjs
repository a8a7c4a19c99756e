// Small event-driven helpers shared by the tests. Every wait is bounded: a
// missing event fails the test with a named timeout instead of hanging it.

import { afterEach, beforeEach } from "node:test";
import { io, Manager } from "socket.io-client";
import { startServer } from "./harness.mjs";

export const WAIT_MS = 3_000;

/** Resolve with the argument list of the next `event` on `emitter`. */
export function waitForArgs(emitter, event, { timeout = WAIT_MS, label = event } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out after ${timeout} ms waiting for "${label}"`));
    }, timeout);
    const handler = (...args) => {
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(args);
    };
    emitter.on(event, handler);
  });
}

/** Resolve with the first argument of the next `event` on `emitter`. */
export async function waitFor(emitter, event, opts) {
  const [first] = await waitForArgs(emitter, event, opts);
  return first;
}

/** Resolve once `predicate()` holds, re-checking each time `event` fires. */
export function waitUntil(emitter, event, predicate, { timeout = WAIT_MS, label = event } = {}) {
  return new Promise((resolve, reject) => {
    if (predicate()) return resolve();
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out after ${timeout} ms waiting for "${label}"`));
    }, timeout);
    const handler = () => {
      if (!predicate()) return;
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve();
    };
    emitter.on(event, handler);
  });
}

/** Reject with the connect_error (if any) instead of timing out on "connect". */
export function waitConnected(socket, { timeout = WAIT_MS } = {}) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeout} ms waiting for "connect" on ${socket.nsp}`));
    }, timeout);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`connect_error on ${socket.nsp}: ${err?.message}`, { cause: err }));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Record every call of `event` on `emitter` (arguments array per call). */
export function record(emitter, event) {
  const calls = [];
  emitter.on(event, (...args) => calls.push(args));
  return calls;
}

/**
 * Tracks every client a test opens so an afterEach hook can close them all.
 * Reconnection is off unless a test asks for it, so a dead server surfaces as
 * a failure instead of a retry loop.
 */
export class Clients {
  #sockets = [];
  #managers = [];

  socket(url, opts = {}) {
    const s = io(url, { forceNew: true, reconnection: false, ...opts });
    this.#sockets.push(s);
    return s;
  }

  async connect(url, opts = {}) {
    return waitConnected(this.socket(url, opts));
  }

  manager(url, opts = {}) {
    const m = new Manager(url, { reconnection: false, ...opts });
    this.#managers.push(m);
    return m;
  }

  closeAll() {
    for (const s of this.#sockets) {
      s.io.reconnection(false);
      s.disconnect();
      s.io.engine?.close();
    }
    for (const m of this.#managers) {
      m.reconnection(false);
      m.engine?.close();
    }
    this.#sockets = [];
    this.#managers = [];
  }
}

/**
 * Per-test server and clients for the enclosing `describe` block: registers a
 * beforeEach that starts a server with `routes` (routes.toml text) and a fresh
 * `Clients`, and an afterEach that closes the clients and stops the server.
 * Returns an object whose `.server` and `.clients` are the current test's:
 * read them inside a test, not at describe time.
 *
 *   const ctx = useServer(routes);
 *   test("…", async () => { await ctx.clients.connect(ctx.server.url); });
 */
export function useServer(routes) {
  const ctx = { server: undefined, clients: undefined };
  beforeEach(async () => {
    ctx.clients = new Clients();
    ctx.server = await startServer({ routes });
  });
  afterEach(async () => {
    ctx.clients?.closeAll();
    await ctx.server?.stop();
  });
  return ctx;
}
