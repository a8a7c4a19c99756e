// Cluster figures: broadcast deliveries/s across two switchboard nodes on one Redis, and the
// latency a cross-node hop adds. Needs `cargo build --release` (or SWITCHBOARD_BIN) and
// redis-server. Usage: node scripts/cluster-bench.mjs [clientsPerNode] [messages]
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import { startServer } from "../tests/node/harness.mjs";
import { startRedis } from "../tests/node/redis.mjs";

const perNode = Number(process.argv[2] ?? 50);
const messages = Number(process.argv[3] ?? 2000);
const port = 20000 + Math.floor(Math.random() * 20000);
const redis = await startRedis(port);
const routes = `[cluster]\nadapter = "redis"\nurl = "${redis.url}"\n[namespaces."/".events]\nall = "io"\n`;
const [a, b] = [await startServer({ routes }), await startServer({ routes })];
const connect = (url) =>
  new Promise((res) => {
    const s = io(url, { transports: ["websocket"], forceNew: true });
    s.once("connect", () => res(s));
  });
await new Promise((r) => setTimeout(r, 500)); // subscriptions

// Latency: one sender on A; a receiver on A (local) and one on B (remote), alternating.
const sender = await connect(a.url);
const local = await connect(a.url);
const remote = await connect(b.url);
const lat = { local: [], remote: [] };
for (let i = 0; i < 500; i++) {
  const t0 = performance.now();
  const got = Promise.all([
    new Promise((r) => local.once("all", () => r(lat.local.push(performance.now() - t0)))),
    new Promise((r) => remote.once("all", () => r(lat.remote.push(performance.now() - t0)))),
  ]);
  sender.emit("all", i);
  await got;
}
const pct = (xs, p) => xs.sort((x, y) => x - y)[Math.floor((xs.length - 1) * p)].toFixed(3);
console.log(`latency ms  local p50 ${pct(lat.local, 0.5)} p99 ${pct(lat.local, 0.99)}  |  cross-node p50 ${pct(lat.remote, 0.5)} p99 ${pct(lat.remote, 0.99)}`);
for (const s of [sender, local, remote]) s.close();

// Throughput: perNode clients on each node; one sender on A broadcasts `messages` events.
const clients = [];
for (const url of [a.url, b.url]) for (let i = 0; i < perNode; i++) clients.push(await connect(url));
const expected = messages * clients.length;
let received = 0;
const done = new Promise((res) => {
  for (const c of clients) c.on("all", () => ++received === expected && res());
});
const t0 = performance.now();
for (let i = 0; i < messages; i++) clients[0].emit("all", i);
await Promise.race([done, new Promise((r) => setTimeout(r, 60_000))]);
const secs = (performance.now() - t0) / 1000;
console.log(`broadcast: ${messages} msgs x ${clients.length} clients (${perNode}/node) = ${received}/${expected} deliveries in ${secs.toFixed(2)} s = ${Math.round(received / secs)} deliveries/s`);
for (const c of clients) c.close();
await a.stop();
await b.stop();
await redis.stop();
process.exit(0);
