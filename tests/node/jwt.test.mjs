// JWT auth as the stock client lives it: a token in `auth` admits it, a bad one is a
// connect_error with a short reason, an expiring token is announced and the socket is
// disconnected ("io server disconnect"), after which the documented re-authentication
// (`socket.auth = { token }; socket.connect()`) works; a refresh
// through `emitWithAck` keeps the socket. Tokens are HS256, signed here with node:crypto.
// The reference socket.io server has no JWT rule, so these run against switchboard only.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startServer, target } from "./harness.mjs";
import { Clients, record, waitFor, waitForArgs } from "./helpers.mjs";

const SECRET = "a-secret-for-the-node-tests-0123456789";

function mint(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  const sig = createHmac("sha256", SECRET).update(head).digest("base64url");
  return `${head}.${sig}`;
}

const now = () => Math.floor(Date.now() / 1000);

const routes = `
[namespaces."/".auth.jwt]
secret_env = "JWT_SECRET"
algorithms = ["HS256"]
leeway = "0s"
refresh_event = "auth:refresh"

[namespaces."/".events]
connect = { join = "user:{jwt.sub}" }
whoami = { ack = "{jwt.sub}" }
notify = { to = "room", room = "user:{0}", event = "notification", data = "{1}" }
`;

describe("JWT auth with the stock client", {
  skip: target === "reference" ? "the reference socket.io server has no JWT rule" : false,
}, () => {
  let server;
  const clients = new Clients();
  before(async () => {
    server = await startServer({ routes, env: { JWT_SECRET: SECRET } });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  test("a valid token admits the client; its claims name its room", async () => {
    const alice = await clients.connect(server.url, { auth: { token: mint({ sub: "alice", exp: now() + 600 }) } });
    const bob = await clients.connect(server.url, { auth: { token: mint({ sub: "bob", exp: now() + 600 }) } });
    assert.equal(await alice.emitWithAck("whoami"), "alice");
    const got = waitForArgs(alice, "notification");
    bob.emit("notify", "alice", "hello from bob");
    assert.deepEqual(await got, ["hello from bob"]);
  });

  test("bad tokens are connect_errors with a short reason", async () => {
    for (const [auth, reason] of [
      [{ token: mint({ sub: "a", exp: now() - 10 }) }, "token expired"],
      [{ token: mint({ sub: "a", exp: now() + 600 }).slice(0, -3) + "abc" }, "invalid token"],
      [{}, "token missing"],
    ]) {
      const socket = clients.socket(server.url, { auth });
      const err = await waitFor(socket, "connect_error");
      assert.equal(err.message, reason);
    }
  });

  test("an expiring token is announced, the socket disconnected, then re-authenticated", async () => {
    const socket = await clients.connect(server.url, {
      auth: { token: mint({ sub: "carol", exp: now() + 2 }) },
    });
    const expired = waitForArgs(socket, "auth:expired", { timeout: 5_000 });
    const disconnected = waitFor(socket, "disconnect", { timeout: 5_000 });
    assert.deepEqual(await expired, [{ message: "token expired" }]);
    assert.equal(await disconnected, "io server disconnect");

    socket.auth = { token: mint({ sub: "carol", exp: now() + 600 }) };
    const reconnected = waitFor(socket, "connect");
    socket.connect();
    await reconnected;
    assert.equal(await socket.emitWithAck("whoami"), "carol");
  });

  test("a refresh keeps the socket past its first token's expiry", async () => {
    const first = now() + 2;
    const socket = await clients.connect(server.url, { auth: { token: mint({ sub: "dave", exp: first }) } });
    const disconnects = record(socket, "disconnect");
    const later = now() + 600;
    assert.deepEqual(await socket.emitWithAck("auth:refresh", mint({ sub: "dave", exp: later })), {
      ok: true,
      exp: later,
    });
    assert.deepEqual(await socket.emitWithAck("auth:refresh", mint({ sub: "eve", exp: later })), {
      ok: false,
      error: "invalid token",
    });
    // A witness whose token expires a second after dave's first one: once it is gone,
    // dave's first token has expired too.
    const witness = await clients.connect(server.url, { auth: { token: mint({ sub: "w", exp: first + 1 }) } });
    await waitFor(witness, "disconnect", { timeout: 6_000 });
    assert.equal(await socket.emitWithAck("whoami"), "dave");
    assert.deepEqual(disconnects, []);
  });
});
