// POST /api/emit as fast as it is answered, for bench/backend.sh: CONCURRENCY requests in
// flight over keep-alive connections for SECONDS, each an emit of a 32-byte argument to the
// room "bench". Prints one JSON line: requests/s, deliveries/s (the sum of "delivered"),
// the server's CPU per request (from /proc/PID/stat), errors.
//
//   node bench/api-emit.mjs URL KEY SERVER_PID [SECONDS=5] [CONCURRENCY=16]
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";

const [url, key, pid, seconds = "5", concurrency = "16"] = process.argv.slice(2);
const ticks = 100; // USER_HZ
const cpu = () => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / ticks;
};
const body = JSON.stringify({ namespace: "/", rooms: ["bench"], event: "news", args: ["0123456789abcdef0123456789abcdef"] });
const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const target = new URL("/api/emit", url);
let requests = 0, delivered = 0, errors = 0, stop = false;

function one() {
  return new Promise((resolve) => {
    const req = request(target, {
      method: "POST", agent,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        if (res.statusCode === 200) { requests++; delivered += JSON.parse(text).delivered; } else errors++;
        resolve();
      });
    });
    req.on("error", () => { errors++; resolve(); });
    req.end(body);
  });
}
async function loop() { while (!stop) await one(); }

const cpu0 = cpu(), t0 = process.hrtime.bigint();
const loops = Array.from({ length: Number(concurrency) }, loop);
setTimeout(() => (stop = true), Number(seconds) * 1000);
await Promise.all(loops);
const secs = Number(process.hrtime.bigint() - t0) / 1e9, used = cpu() - cpu0;
console.log(JSON.stringify({
  requests, seconds: +secs.toFixed(3), requests_per_s: Math.round(requests / secs),
  deliveries_per_s: Math.round(delivered / secs), per_request: requests ? delivered / requests : 0,
  server_cpu_us_per_request: requests ? +(used / requests * 1e6).toFixed(1) : null,
  server_cpu_util: +(used / secs).toFixed(3), errors,
}));
agent.destroy();
