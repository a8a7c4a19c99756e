// examples/backend end to end: its backend.mjs started as its routes.toml says (on a free
// port here), the stock client chatting through it — stored, refused, replayed — the curl
// line of its README through /api/emit, and the webhook-fed online count.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { io as connect } from "socket.io-client";

import { repoRoot, startServer, target } from "./harness.mjs";
import { WAIT_MS, waitConnected } from "./helpers.mjs";

/**
 * The next live "chat message" of `socket`, passing over replays of the history
 * ("(earlier) …"): a client's `connect` route fetches its history from the backend while the
 * test goes on, so on a busy machine a replay may arrive after later messages were stored.
 */
function nextLive(socket) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off("chat message", handler);
      reject(new Error(`timed out after ${WAIT_MS} ms waiting for a live "chat message"`));
    }, WAIT_MS);
    const handler = (m) => {
      if (typeof m === "string" && m.startsWith("(earlier) ")) return;
      clearTimeout(timer);
      socket.off("chat message", handler);
      resolve(m);
    };
    socket.on("chat message", handler);
  });
}

const SECRET = "a-backend-secret-for-the-example-test";
const API_KEY = "an-api-key-for-the-example-test-0123";

/** Start backend.mjs on a free port; resolves with its URL and process. */
function startBackend() {
  const proc = spawn(process.execPath, [join(repoRoot, "examples/backend/backend.mjs")], {
    env: { ...process.env, BACKEND_SECRET: SECRET, PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("backend.mjs did not start")), 5_000);
    let out = "";
    proc.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], proc });
      }
    });
    proc.once("exit", (code) => reject(new Error(`backend.mjs exited with ${code}`)));
  });
}

async function eventually(check, label) {
  const until = Date.now() + 5_000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("examples/backend", { skip: target === "reference" && "switchboard only" }, () => {
  let backend, server;
  const sockets = [];
  const client = async () => {
    const s = connect(server.url, { transports: ["websocket"], forceNew: true, reconnection: false });
    sockets.push(s);
    return waitConnected(s);
  };

  before(async () => {
    backend = await startBackend();
    // The example's routes, with the backend where it listens and the page folder absolute.
    const routes = (await readFile(join(repoRoot, "examples/backend/routes.toml"), "utf8"))
      .replaceAll("http://127.0.0.1:8080", backend.url)
      .replace('dir = "../../public"', `dir = "${join(repoRoot, "public")}"`);
    server = await startServer({
      routes,
      env: { BACKEND_SECRET: SECRET, SWITCHBOARD_API_KEYS: API_KEY },
    });
  });

  after(async () => {
    for (const s of sockets) s.close();
    await server?.stop();
    backend?.proc.kill();
  });

  it("stores, refuses banned words, replays, and takes a notification from /api/emit", async () => {
    const [ann, bob] = [await client(), await client()];
    let seen = [nextLive(ann), nextLive(bob)];
    assert.equal(await ann.emitWithAck("chat message", "hello all"), "stored");
    assert.deepEqual(await Promise.all(seen), ["hello all", "hello all"]);

    // Refused: the sender is told, nobody else gets it (the next message is bob's next one).
    const toAnn = nextLive(ann);
    const toBob = nextLive(bob);
    assert.deepEqual(await ann.emitWithAck("chat message", "oh darn"), { error: "refused" });
    assert.equal(await toAnn, '[moderator] not sent: "darn" is not allowed here');
    seen = [nextLive(ann)];
    assert.equal(await bob.emitWithAck("chat message", "second"), "stored");
    assert.equal(await toBob, "second");
    assert.equal(await seen[0], "second");

    // A newcomer gets the stored messages.
    const carol = connect(server.url, { transports: ["websocket"], forceNew: true, reconnection: false });
    sockets.push(carol);
    const replay = [];
    carol.on("chat message", (m) => replay.push(m));
    await waitConnected(carol);
    await eventually(async () => replay.length === 2, "the replay");
    assert.deepEqual(replay, ["(earlier) hello all", "(earlier) second"]);

    // The README's curl line.
    seen = [ann, bob, carol].map(nextLive);
    const res = await fetch(`${server.url}/api/emit`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ namespace: "/", event: "chat message", args: ["[server] maintenance at 18:00"] }),
    });
    assert.deepEqual(await res.json(), { delivered: 3 });
    assert.deepEqual(await Promise.all(seen), Array(3).fill("[server] maintenance at 18:00"));

    // Webhooks keep the backend's count of who is online.
    const stats = async () => (await fetch(`${backend.url}/stats`)).json();
    await eventually(async () => (await stats()).online === 3, "3 online");
    carol.close();
    await eventually(async () => (await stats()).online === 2, "2 online");
    assert.equal((await stats()).stored, 2);
  });

  it("the backend refuses a call switchboard did not sign", async () => {
    const res = await fetch(`${backend.url}/messages`, {
      method: "POST",
      body: JSON.stringify({ args: ["forged"] }),
    });
    assert.equal(res.status, 401);
  });
});
