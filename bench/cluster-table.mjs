// The table of bench/cluster.sh: medians per scenario of one node and of two nodes on one
// Redis, and the ratio two/one. `published per broadcast` is node A's Redis messages per chat
// message sent (1.0: encoded and published once per broadcast), node B's received per
// broadcast (1.0) and its deliveries per broadcast (its share of the clients).
//
//   node bench/cluster-table.mjs results.jsonl

import { readFileSync } from "node:fs";

const runs = readFileSync(process.argv[2], "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l));

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number").sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const fmt = (v) =>
  v === null || v === undefined
    ? "—"
    : Math.abs(v) >= 1000
      ? Math.round(v).toLocaleString("en-US")
      : String(Math.round(v * 1000) / 1000);

// A counter of the nodes' /metrics per chat message sent (two nodes only).
const per = (r, n) => (typeof n === "number" && r.messages_sent ? n / r.messages_sent : undefined);

// [label, value of a run]
const ROWS = [
  ["deliveries/s", (r) => r.deliveries_per_s],
  ["delivery ratio", (r) => r.delivery_ratio],
  ["server CPU µs/delivery (all nodes)", (r) => r.cluster_cpu_us_per_delivery ?? r.server_cpu_us_per_delivery],
  ["node A CPU (cores)", (r) => r.server_cpu_util],
  ["node B CPU (cores)", (r) => r.server2_cpu_util],
  ["p50 µs, node A's clients", (r) => r.p50_us],
  ["p99 µs, node A's clients", (r) => r.p99_us],
  ["p50 µs, node B's clients", (r) => r.remote_p50_us],
  ["p99 µs, node B's clients", (r) => r.remote_p99_us],
  ["cross-node latency added, p50 µs", (r) => r.cross_node_added_p50_us],
  ["cross-node latency added, p99 µs", (r) => r.cross_node_added_p99_us],
  ["Redis messages published by node A per broadcast", (r) => per(r, r.published)],
  ["Redis messages received by node B per broadcast", (r) => per(r, r.received)],
  ["deliveries node B made per broadcast", (r) => per(r, r.remote_deliveries)],
  ["load generator CPU (cores)", (r) => r.loadgen_cpu_util],
];

const errors = runs.filter((r) => r.error);
for (const r of errors) console.error(`${r.scenario} ${r.server}: ${r.error}`);
console.log("| scenario | metric | one node | two nodes | two/one |");
console.log("|---|---|---:|---:|---:|");
for (const scenario of ["broadcast-max", "broadcast-rate"]) {
  const of = (mode) => runs.filter((r) => r.scenario === scenario && r.server === mode && !r.error);
  const one = of("one");
  const two = of("two");
  if (one.length + two.length === 0) continue;
  let first = true;
  for (const [label, get] of ROWS) {
    const a = median(one.map(get));
    const b = median(two.map(get));
    if (a === null && b === null) continue;
    const ratio = a && b && label.startsWith("deliveries/s") ? `${(b / a).toFixed(2)}×` : "";
    const name = first ? `${scenario} (n=${one.length}/${two.length})` : "";
    first = false;
    console.log(`| ${name} | ${label} | ${fmt(a)} | ${fmt(b)} | ${ratio} |`);
  }
}
process.exitCode = errors.length ? 1 : 0;
