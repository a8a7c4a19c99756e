// The app's backend of examples/backend: what switchboard asks (HTTP route steps) and tells
// (webhooks), checked against BACKEND_SECRET. Node's standard library only.
//
//   POST /messages  a "chat message": stored and sent to everyone, or refused (banned word)
//   POST /history   a socket connected: the last messages, emitted to it
//   POST /hooks     webhook batches: who is online
//   GET  /stats     {"online": n, "stored": n}
//
// Environment: BACKEND_SECRET (required), PORT (8080), BANNED_WORDS ("darn,heck").

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const SECRET = process.env.BACKEND_SECRET;
if (!SECRET) {
  console.error("BACKEND_SECRET is not set: it must be the one switchboard signs with");
  process.exit(2);
}
const PORT = Number(process.env.PORT ?? 8080);
const BANNED = (process.env.BANNED_WORDS ?? "darn,heck")
  .split(",")
  .map((w) => w.trim().toLowerCase())
  .filter(Boolean);
/** How old a signature may be, in seconds: older requests are replays. */
const MAX_AGE = 300;
const KEPT = 100;
const REPLAYED = 20;

const messages = [];
const online = new Set();

/** Whether `header` (t=…,v1=…) signs `body` with SECRET, recently. */
function signed(header, body) {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!match) return false;
  const [, t, v1] = match;
  if (Math.abs(Date.now() / 1000 - Number(t)) > MAX_AGE) return false;
  const expected = createHmac("sha256", SECRET).update(`${t}.`).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(v1, "hex"));
}

function reply(res, status, value) {
  const body = value === undefined ? "" : JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json" });
  res.end(body);
}

/** The route switchboard performs for a "chat message" event. */
function onMessage(event) {
  const [text] = event.args;
  if (typeof text !== "string" || !text.trim()) return { ack: { error: "a message is text" } };
  const word = BANNED.find((w) => text.toLowerCase().includes(w));
  if (word) {
    return [
      { to: "emit", event: "chat message", data: [`[moderator] not sent: "${word}" is not allowed here`] },
      { ack: { error: "refused" } },
    ];
  }
  messages.push(text);
  if (messages.length > KEPT) messages.shift();
  return [{ to: "io", event: "chat message", data: [text] }, { ack: "stored" }];
}

/** The last messages, emitted to the socket that just connected. */
function onConnect() {
  const last = messages.slice(-REPLAYED);
  if (last.length === 0) return undefined;
  return last.map((text) => ({ to: "emit", event: "chat message", data: [`(earlier) ${text}`] }));
}

function onHooks(batch) {
  for (const e of batch.events) {
    if (e.name === "connect") online.add(e.socket_id);
    if (e.name === "disconnect") online.delete(e.socket_id);
  }
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    return reply(res, 200, { online: online.size, stored: messages.length });
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > 1_000_000) req.destroy();
    else chunks.push(c);
  });
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.method !== "POST") return reply(res, 405, { error: "POST only" });
    if (!signed(req.headers["x-switchboard-signature"], body)) {
      return reply(res, 401, { error: "bad signature" });
    }
    let value;
    try {
      value = JSON.parse(body);
    } catch {
      return reply(res, 400, { error: "not JSON" });
    }
    switch (req.url) {
      case "/messages":
        return reply(res, 200, onMessage(value));
      case "/history": {
        const route = onConnect();
        return route ? reply(res, 200, route) : reply(res, 204);
      }
      case "/hooks":
        onHooks(value);
        return reply(res, 200, { ok: true });
      default:
        return reply(res, 404, { error: "no such endpoint" });
    }
  });
});

server.listen(PORT, "127.0.0.1", () => {
  console.log(`backend listening on http://127.0.0.1:${server.address().port}`);
});
