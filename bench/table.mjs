// The table of bench/compare.sh: medians per scenario and server, the ratio
// switchboard / socket.io, and the targets. Runs during which other work took more
// than QUIET_CORES of CPU (`unclaimed_cpu_util`) are left out of a median whenever a quieter
// run of the same scenario and server exists; `n=` counts the runs used / all runs.
//
//   node bench/table.mjs results.jsonl [open-file-limit]

import { readFileSync } from "node:fs";

const [file, nofile] = process.argv.slice(2);
const QUIET_CORES = 0.25;
const runs = readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l));

// [metric, label, better ("hi" | "lo" | ""), target for switchboard]
const METRICS = {
  connect: [
    ["conns_per_s", "connections/s", "hi", (v) => v >= 10000 && "≥ 10,000"],
    ["server_cpu_us_per_conn", "server CPU µs/connection", "lo"],
    ["rss_kib_per_conn", "server RSS KiB/idle connection", "lo", (v) => v <= 8 && "≤ 8 KiB"],
  ],
  echo: [
    ["acks_per_s", "acks/s", "hi"],
    ["server_cpu_us_per_ack", "server CPU µs/ack", "lo", (v) => v <= 8 && "≤ 8 µs"],
    ["p50_us", "p50 µs", "lo"],
    ["p99_us", "p99 µs", "lo", (v) => v <= 1000 && "≤ 1 ms"],
    ["p999_us", "p99.9 µs", "lo"],
  ],
  "broadcast-max": [
    ["deliveries_per_s", "deliveries/s", "hi", (v) => v >= 1.2e6 && "≥ 1.2M"],
    ["delivery_ratio", "delivery ratio", "", (v) => v === 1 && "= 1.0"],
    ["server_cpu_us_per_delivery", "server CPU µs/delivery", "lo"],
    ["server_cpu_util", "server CPU (cores)", ""],
    ["p50_us", "p50 µs", "lo"],
    ["p99_us", "p99 µs", "lo"],
  ],
  "broadcast-rate": [
    ["deliveries_per_s", "deliveries/s", ""],
    ["delivery_ratio", "delivery ratio", "", (v) => v === 1 && "= 1.0"],
    ["server_cpu_us_per_delivery", "server CPU µs/delivery", "lo", (v) => v <= 8 && "≤ 8 µs"],
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

console.log("| scenario | metric | switchboard | socket.io | ratio sb/io | target (switchboard) |");
console.log("|---|---|---:|---:|---:|---|");
for (const [scenario, metrics] of Object.entries(METRICS)) {
  const all = (server) =>
    runs.filter((r) => r.scenario === scenario && r.server === server && !r.error);
  const of = (server) => {
    const quiet = all(server).filter((r) => (r.unclaimed_cpu_util ?? 0) <= QUIET_CORES);
    return quiet.length ? quiet : all(server);
  };
  const sb = of("switchboard");
  const io = of("socketio");
  if (sb.length === 0 && io.length === 0) continue;
  const count = (server) => `${of(server).length}/${all(server).length}`;
  const n = `${scenario} (n=${count("switchboard")}, ${count("socketio")})`;
  for (const [key, label, , target] of [...metrics, ...COMMON]) {
    const a = median(sb.map((r) => r[key]));
    const b = median(io.map((r) => r[key]));
    const ratio = a !== null && b !== null && b !== 0 ? `${fmt(a / b)}×` : "–";
    let goal = "";
    if (target && a !== null) {
      const ok = target(a);
      goal = ok ? `✓ ${ok}` : `✗ ${target.toString().match(/"(.*)"/)?.[1] ?? ""}`;
    }
    rows.push(`| ${n} | ${label} | ${fmt(a)} | ${fmt(b)} | ${ratio} | ${goal} |`);
  }
}
for (const row of rows) console.log(row);

// Idle connections held beyond the compared count (compare.sh --big).
const big = runs.filter((r) => r.scenario === "connect" && r.server.endsWith("-big") && !r.error);
for (const r of big) {
  const mib = r.server_rss_kib / 1024;
  const at100k = (r.rss_kib_per_conn * 100000) / 1024 / 1024;
  console.log(
    `\n${r.server}: ${r.connections.toLocaleString("en-US")} idle connections held, ` +
      `server RSS ${mib.toFixed(0)} MiB (${r.rss_kib_per_conn} KiB each; ` +
      `100,000 would take ≈ ${at100k.toFixed(2)} GiB, target < 1 GiB), ` +
      `${Math.round(r.conns_per_s).toLocaleString("en-US")} connections/s.`,
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
