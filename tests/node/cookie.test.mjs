// socket.io's `cookie` option ([server].cookie): the Engine.IO handshake sets the session
// cookie a load balancer can stick on, as engine.io does; no cookie without the option.

import assert from "node:assert/strict";
import { it } from "node:test";

import { startServer } from "./harness.mjs";

const ns = `\n[namespaces."/".events]\nx = "io"\n`;

async function handshakeCookie(routes) {
  const server = await startServer({ routes });
  try {
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`);
    const body = await res.text();
    const sid = JSON.parse(body.slice(1)).sid;
    return { sid, cookie: res.headers.get("set-cookie") };
  } finally {
    await server.stop();
  }
}

it("cookie = \"io\" sets io=<sid> like engine.io's defaults", async () => {
  const { sid, cookie } = await handshakeCookie(`[server]\ncookie = "io"\n${ns}`);
  assert.equal(cookie, `io=${sid}; Path=/; HttpOnly; SameSite=Lax`);
});

it("a cookie table sets its name, path and attributes", async () => {
  const { sid, cookie } = await handshakeCookie(
    `[server]\ncookie = { name = "sticky", path = "/app", httpOnly = false, sameSite = "strict" }\n${ns}`,
  );
  assert.equal(cookie, `sticky=${sid}; Path=/app; SameSite=Strict`);
});

it("no cookie without the option", async () => {
  const { cookie } = await handshakeCookie(ns);
  assert.equal(cookie, null);
});
