// `[admin_ui]`: the server side of @socket.io/admin-ui as its `instrument()` does it — login
// with basic auth against a bcrypt hash, the config, every socket, the stats, the live
// events, and the UI's actions (emit, join, leave, disconnect); read-only refuses the actions.
// The same tests run against Node socket.io with instrument() (SWITCHBOARD_TEST_TARGET=reference).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import bcrypt from "bcryptjs";

import { useServer, waitFor, waitForArgs, waitUntil } from "./helpers.mjs";

const HASH = bcrypt.hashSync("s3cret-password", 4);
const routes = (readonly) => `
[admin_ui]
username = "admin"
password_hash_env = "ADMIN_HASH"
readonly = ${readonly}

[namespaces."/".events]
enter = { join = "{0}", ack = "{args}" }
`;

/** A server with `[admin_ui]`; the hash comes from the environment, as in production. */
function useAdminServer(readonly) {
  const ctx = useServer(routes(readonly));
  return ctx;
}

/** A dashboard's socket, logged in; with every event it was told, by name. */
async function dashboard(ctx, auth = { username: "admin", password: "s3cret-password" }) {
  const socket = ctx.clients.socket(`${ctx.server.url}/admin`, { auth, transports: ["websocket"] });
  socket.told = {};
  socket.onAny((event, ...args) => (socket.told[event] ??= []).push(args));
  const config = waitFor(socket, "config");
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  socket.config = await config;
  return socket;
}

/** Resolves once `socket` was told `event` with arguments `match` accepts; with them. */
function told(socket, event, match = () => true) {
  const find = () => (socket.told[event] ?? []).find((args) => match(...args));
  return waitUntil(socket, event, () => find() !== undefined, { timeout: 5_000, label: event }).then(find);
}

process.env.ADMIN_HASH = HASH;

describe("admin UI", () => {
  const ctx = useAdminServer(false);

  test("a wrong password is refused; the right one gets a session, the config and every socket", async () => {
    const wrong = ctx.clients.socket(`${ctx.server.url}/admin`, {
      auth: { username: "admin", password: "nope" },
      transports: ["websocket"],
    });
    assert.equal((await waitFor(wrong, "connect_error")).message, "invalid credentials");

    const client = await ctx.clients.connect(ctx.server.url);
    assert.deepEqual(await client.emitWithAck("enter", "lobby"), "lobby");
    const admin = await dashboard(ctx);
    const [session] = await told(admin, "session");
    assert.equal(typeof session, "string");
    for (const f of ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]) {
      assert.ok(admin.config.supportedFeatures.includes(f), f);
    }
    const [all] = await told(admin, "all_sockets");
    const mine = all.find((s) => s.id === client.id);
    assert.equal(mine.nsp, "/");
    assert.deepEqual([...mine.rooms].sort(), [client.id, "lobby"].sort());
    assert.ok(["polling", "websocket"].includes(mine.transport));
    assert.equal(typeof mine.clientId, "string");
    assert.ok(all.some((s) => s.nsp === "/admin"), "the dashboard itself is listed");

    const [stats] = await told(admin, "server_stats");
    assert.equal(typeof stats.serverId, "string");
    assert.ok(stats.clientsCount >= 2);
    assert.ok(stats.namespaces.some((n) => n.name === "/" && n.socketsCount >= 1));

    // With the session id, no password.
    const again = await dashboard(ctx, { sessionId: session });
    assert.ok(again.connected);
  });

  test("connections, rooms, events and disconnections are told as they happen", async () => {
    const admin = await dashboard(ctx);
    const client = await ctx.clients.connect(ctx.server.url);
    await told(admin, "socket_connected", (s) => s.id === client.id);
    await client.emitWithAck("enter", "attic");
    const [nsp, room, id] = await told(admin, "room_joined", (n, r) => r === "attic");
    assert.deepEqual([nsp, room, id], ["/", "attic", client.id]);
    const [, who, args] = await told(admin, "event_received", (n, i) => i === client.id);
    assert.deepEqual([who, args], [client.id, ["enter", "attic"]]);
    const gone = client.id;
    client.disconnect();
    const [, left, reason] = await told(admin, "socket_disconnected", (n, i) => i === gone);
    assert.deepEqual([left, reason], [gone, "client namespace disconnect"]);
  });

  test("the UI's actions: emit to a room, join, leave, disconnect", async () => {
    const admin = await dashboard(ctx);
    const client = await ctx.clients.connect(ctx.server.url);
    await client.emitWithAck("enter", "lobby");
    const hello = waitForArgs(client, "hello");
    admin.emit("emit", "/", "lobby", "hello", "from", { the: "ui" });
    assert.deepEqual(await hello, ["from", { the: "ui" }]);

    admin.emit("join", "/", "vip", client.id);
    await told(admin, "room_joined", (n, r, i) => r === "vip" && i === client.id);
    admin.emit("leave", "/", "vip", client.id);
    await told(admin, "room_left", (n, r, i) => r === "vip" && i === client.id);

    const dropped = waitFor(client, "disconnect");
    admin.emit("_disconnect", "/", false, client.id);
    assert.equal(await dropped, "io server disconnect");
  });
});

describe("admin UI, read-only", () => {
  const ctx = useAdminServer(true);

  test("it sees everything and can change nothing", async () => {
    const client = await ctx.clients.connect(ctx.server.url);
    const admin = await dashboard(ctx);
    assert.deepEqual([...admin.config.supportedFeatures].sort(), ["AGGREGATED_EVENTS", "ALL_EVENTS"]);
    const [all] = await told(admin, "all_sockets");
    assert.ok(all.some((s) => s.id === client.id));
    // A second dashboard sees the first leave once the first's packets before its leaving —
    // the actions — were handled.
    const watcher = await dashboard(ctx);
    const first = admin.id;
    admin.emit("_disconnect", "/", false, client.id);
    admin.emit("join", "/", "vip", client.id);
    admin.disconnect();
    await told(watcher, "socket_disconnected", (n, id) => id === first);
    assert.equal(await client.emitWithAck("enter", "after"), "after");
    assert.ok(client.connected);
    assert.equal((watcher.told.room_joined ?? []).some(([, r]) => r === "vip"), false);
  });
});
