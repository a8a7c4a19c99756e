// The table of bench/compare.sh: medians per scenario and server, the ratios of
// switchboard to socketioxide (sb/sx) and to Node socket.io (sb/io), and the targets. Runs
// during which other work took more than QUIET_CORES of CPU (`unclaimed_cpu_util`) are left
// out of a median whenever a quieter run of the same scenario and server exists; `n=` counts
// the runs used / all runs, per server.
//
//   node bench/table.mjs results.jsonl [open-file-limit]

import { readFileSync } from "node:fs";

const [file, nofile] = process.argv.slice(2);
const QUIET_CORES = 0.25;
const runs = readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l));

// [metric, label, better ("hi" | "lo" | ""), target for switchboard: [label, test(sb, sx)]]
// where sx is socketioxide's median (the targets of issue 19 are ratios to it).
const atLeast = (k) => [`≥ ${k}× socketioxide`, (a, x) => x !== null && a >= k * x];
const atMost = (k) => [`≤ ${k}× socketioxide`, (a, x) => x !== null && a <= k * x];
const METRICS = {
  connect: [
    ["conns_per_s", "connections/s", "hi", atLeast(2)],
    ["server_cpu_us_per_conn", "server CPU µs/connection", "lo"],
    ["rss_kib_per_conn", "server RSS KiB/idle connection", "lo", ["≤ 6 KiB", (a) => a <= 6]],
  ],
  echo: [
    ["acks_per_s", "acks/s", "hi"],
    ["server_cpu_us_per_ack", "server CPU µs/ack", "lo", atMost(0.5)],
    ["p50_us", "p50 µs", "lo"],
    ["p99_us", "p99 µs", "lo", atMost(1)],
    ["p999_us", "p99.9 µs", "lo"],
  ],
  "broadcast-max": [
    ["deliveries_per_s", "deliveries/s", "hi", atLeast(3)],
    ["delivery_ratio", "delivery ratio", "", ["= 1.0", (a) => a === 1]],
    ["server_cpu_us_per_delivery", "server CPU µs/delivery", "lo"],
    ["server_cpu_util", "server CPU (cores)", ""],
    ["p50_us", "p50 µs", "lo"],
    ["p99_us", "p99 µs", "lo"],
  ],
  "broadcast-rate": [
    ["deliveries_per_s", "deliveries/s", ""],
    ["delivery_ratio", "delivery ratio", "", ["= 1.0", (a) => a === 1]],
    ["server_cpu_us_per_delivery", "server CPU µs/delivery", "lo", atMost(0.6)],
    ["p50_us", "p50 µs", "lo"],
    ["p99_us", "p99 µs", "lo"],
    ["p999_us", "p99.9 µs", "lo"],
  ],
  polling: [
    ["deliveries_per_s", "deliveries/s", "hi"],
    ["delivery_ratio", "delivery ratio", ""],
    ["server_cpu_us_per_delivery", "server CPU µs/delivery", "lo"],
    ["p50_us", "p50 µs", "lo"],
  ],
};
const COMMON = [
  ["server_kernel_share", "server CPU in the kernel (share)", ""],
  ["loadgen_cpu_util", "load generator CPU (cores)", ""],
  ["unclaimed_cpu_util", "other CPU on the machine (cores)", ""],
];

function median(xs) {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(3).replace(/\.?0+$/, "") || "0";
}

const rows = [];
const errors = [];
for (const r of runs) {
  if (r.error) errors.push(`${r.scenario} / ${r.server}: ${r.error}`);
  else if (r.first_error) errors.push(`${r.scenario} / ${r.server} (completed): ${r.first_error}`);
}

const SERVERS = ["switchboard", "socketioxide", "socketio"];
console.log(
  "| scenario | metric | switchboard | socketioxide | socket.io | sb/sx | sb/io | target (switchboard) |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---|");
const ratio = (a, b) => (a !== null && b !== null && b !== 0 ? `${fmt(a / b)}×` : "–");
for (const [scenario, metrics] of Object.entries(METRICS)) {
  const all = (server) =>
    runs.filter((r) => r.scenario === scenario && r.server === server && !r.error);
  const of = (server) => {
    const quiet = all(server).filter((r) => (r.unclaimed_cpu_util ?? 0) <= QUIET_CORES);
    return quiet.length ? quiet : all(server);
  };
  const chosen = SERVERS.map(of);
  if (chosen.every((c) => c.length === 0)) continue;
  const count = (server) => `${of(server).length}/${all(server).length}`;
  const n = `${scenario} (n=${SERVERS.map(count).join(", ")})`;
  for (const [key, label, , target] of [...metrics, ...COMMON]) {
    const [sb, sx, io] = chosen.map((c) => median(c.map((r) => r[key])));
    let goal = "";
    if (target && sb !== null) {
      const [what, test] = target;
      goal = `${test(sb, sx) ? "✓" : "✗"} ${what}`;
    }
    rows.push(
      `| ${n} | ${label} | ${fmt(sb)} | ${fmt(sx)} | ${fmt(io)} | ${ratio(sb, sx)} | ${ratio(sb, io)} | ${goal} |`,
    );
  }
}
for (const row of rows) console.log(row);

// Idle connections held beyond the compared count (compare.sh --big).
const big = runs.filter((r) => r.scenario === "connect" && r.server.endsWith("-big") && !r.error);
for (const r of big) {
  const mib = r.server_rss_kib / 1024;
  const gib = (n) => ((r.rss_kib_per_conn * n) / 1024 / 1024).toFixed(2);
  console.log(
    `\n${r.server}: ${r.connections.toLocaleString("en-US")} idle connections held, ` +
      `server RSS ${mib.toFixed(0)} MiB (${r.rss_kib_per_conn} KiB each; ` +
      `100,000 would take ≈ ${gib(1e5)} GiB, 1,000,000 ≈ ${gib(1e6)} GiB), ` +
      `${Math.round(r.conns_per_s).toLocaleString("en-US")} connections/s.`,
  );
}
const polling = runs.filter(
  (r) => r.scenario === "connect" && r.server.endsWith("-big-polling") && !r.error,
);
for (const r of polling) {
  const gib = (n) => ((r.rss_kib_per_conn * n) / 1024 / 1024).toFixed(2);
  console.log(
    `\n${r.server}: ${r.connections.toLocaleString("en-US")} idle long-polling sessions held ` +
      `(a waiting GET and a kept-alive POST connection each), server RSS ` +
      `${(r.server_rss_kib / 1024).toFixed(0)} MiB (${r.rss_kib_per_conn} KiB each; ` +
      `100,000 would take ≈ ${gib(1e5)} GiB), ` +
      `${Math.round(r.conns_per_s).toLocaleString("en-US")} sessions/s.`,
  );
}
if (nofile && Number(nofile) < 201000) {
  console.log(
    `\nThe open-file limit here is ${nofile}: 100,000 connections need ≥ 100,000 descriptors ` +
      "in the server and as many in the load generator, so the largest run is smaller.",
  );
}
if (errors.length) {
  console.log("\nErrors:");
  for (const e of errors) console.log(`- ${e}`);
}
