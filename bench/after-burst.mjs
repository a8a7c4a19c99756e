// What idle WebSockets keep after a burst of large messages: CLIENTS socket.io-client
// WebSockets, one of which emits COUNT `chat message`s of SIZE bytes (routed `io` in
// bench/routes.toml, so each reaches every client); once all have arrived and a second has
// passed, the server's RSS is read again. Prints one JSON line: RSS before and after, and
// the growth per client. Loopback only; the whole run is bounded (60 s).
//
//   node bench/after-burst.mjs URL SERVER_PID [CLIENTS=1000] [COUNT=20] [SIZE=30000]
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { io } from "socket.io-client";

const [url, pid, clients = "1000", count = "20", size = "30000"] = process.argv.slice(2);
if (!url || !pid) {
  console.error("usage: node bench/after-burst.mjs URL SERVER_PID [CLIENTS] [COUNT] [SIZE]");
  process.exit(2);
}
const [n, m] = [Number(clients), Number(count)];
const rssKib = () => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]);
setTimeout(() => {
  console.error("after-burst: not done within 60 s");
  process.exit(1);
}, 60_000).unref();

let received = 0;
let allReceived;
const done = new Promise((resolve) => (allReceived = resolve));
const sockets = Array.from({ length: n }, () => {
  const socket = io(url, { transports: ["websocket"], forceNew: true });
  socket.on("chat message", () => {
    if (++received === n * m) allReceived();
  });
  return socket;
});
await Promise.all(sockets.map((s) => new Promise((resolve) => s.on("connect", resolve))));
await sleep(500);
const before = rssKib();
const text = "x".repeat(Number(size));
for (let i = 0; i < m; i++) sockets[0].emit("chat message", text);
await done;
await sleep(1000);
const after = rssKib();
console.log(
  JSON.stringify({
    clients: n,
    messages: m,
    bytes: Number(size),
    rss_before_kib: before,
    rss_after_kib: after,
    kib_per_client: Math.round(((after - before) / n) * 100) / 100,
  }),
);
for (const s of sockets) s.close();
process.exit(0);
