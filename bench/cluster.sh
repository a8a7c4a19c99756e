#!/usr/bin/env bash
# Broadcast across two nodes: examples/loadgen/ --scenario broadcast-max and broadcast-rate
# (1,000 clients, 10 senders of `chat message` routed "io") against one switchboard node, and
# against two nodes of one cluster on a local redis-server — the senders and every other
# receiver on node A, the rest on node B, so half of each broadcast crosses Redis —
# alternating, each on fresh servers. `--streams` runs the cluster with
# `adapter = "redis-streams"` instead of pub/sub.
#
#   bench/cluster.sh [--rounds N] [--no-build] [--streams] [--quick]
#
# The machine has 2 cores: the server side (the one node, or both nodes) is pinned to CPU 0,
# the load generator and redis-server share CPU 1. Reported per run: deliveries/s across
# nodes and their ratio, server CPU per delivery (both nodes together), each node's CPU, the
# latency of node A's clients and of node B's (`remote`) at p50/p99 and what the cross-node
# path adds, and — from node A's and B's /metrics — Redis messages published per broadcast
# sent (1.0: a broadcast is encoded and published once, whatever the number of recipients or
# nodes) and deliveries node B made of what it received.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=3
BUILD=1
ADAPTER=redis
WINDOW=(--warmup 1 --duration 5)
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --streams) ADAPTER=redis-streams ;;
    --quick) ROUNDS=1; WINDOW=(--warmup 0.5 --duration 2) ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in cargo node taskset timeout curl redis-server; do
  command -v "$tool" >/dev/null || { echo "cluster.sh: $tool is missing" >&2; exit 1; }
done
[ "$(nproc --all)" -ge 2 ] || { echo "cluster.sh: needs 2 CPUs" >&2; exit 1; }
if [ "$BUILD" = 1 ]; then
  cargo build --release --locked --bin switchboard --example loadgen >&2
fi
ulimit -n 65536 2>/dev/null || true

DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-cluster.XXXXXX")
A= B=
trap 'kill ${A:-} ${B:-} ${REDIS_PID:-} 2>/dev/null || true; rm -rf "$DIR"' EXIT
start_redis 1
cp bench/routes.toml "$DIR/one.toml"
cp bench/routes.toml "$DIR/two.toml"
printf '\n[cluster]\nadapter = "%s"\nurl = "%s"\n' "$ADAPTER" "$REDIS_URL" >>"$DIR/two.toml"
RESULTS="$DIR/results.jsonl"
: >"$RESULTS"

# The value of one counter in the Prometheus text of $1 (0 when absent).
metric() {
  curl -fsS "http://$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

RUN=0
run() {
  local mode=$1 scenario=$2
  shift 2
  RUN=$((RUN + 1))
  local line extra=()
  start_pinned 0 "$DIR/a" target/release/switchboard --config "$DIR/$mode.toml" --listen 127.0.0.1:0
  A=$PID ADDR_A=$ADDR
  if [ "$mode" = two ]; then
    start_pinned 0 "$DIR/b" target/release/switchboard --config "$DIR/two.toml" --listen 127.0.0.1:0
    B=$PID
    extra=(--addr2 "$ADDR" --server2-pid "$B")
    ADDR_B=$ADDR
  fi
  line=$(timeout 200 taskset -c 1 target/release/examples/loadgen --addr "$ADDR_A" \
    --server-pid "$A" "${extra[@]}" --label "$mode" --scenario "$scenario" \
    --clients 1000 --senders 10 --source-offset $((RUN * 16)) "$@" "${WINDOW[@]}" || true)
  [ -n "$line" ] || line="{\"scenario\":\"$scenario\",\"server\":\"$mode\",\"error\":\"no output\"}"
  if [ "$mode" = two ]; then
    # The generator returns once every client has every message: the counters are final.
    local published received remote
    published=$(metric "$ADDR_A" switchboard_cluster_published_total)
    received=$(metric "$ADDR_B" switchboard_cluster_received_total)
    remote=$(metric "$ADDR_B" switchboard_cluster_deliveries_total)
    line=$(node -e 'const r=JSON.parse(process.argv[1]);
      Object.assign(r,{published:+process.argv[2],received:+process.argv[3],remote_deliveries:+process.argv[4]});
      console.log(JSON.stringify(r))' "$line" "$published" "$received" "$remote")
  fi
  stop_pid "$A"; A=
  [ -z "$B" ] || { stop_pid "$B"; B=; }
  echo "$line" >>"$RESULTS"
  echo "$line" >&2
}

echo "cluster.sh: adapter $ADAPTER, rounds $ROUNDS; server(s) on CPU 0, load generator and redis-server on CPU 1" >&2
for scenario in broadcast-max broadcast-rate; do
  for round in $(seq "$ROUNDS"); do
    case "$scenario" in
      broadcast-max) args=(--window 8) ;;
      *) args=(--rate 20) ;;
    esac
    echo "== $scenario round $round: one node" >&2
    run one "$scenario" "${args[@]}"
    echo "== $scenario round $round: two nodes" >&2
    run two "$scenario" "${args[@]}"
  done
done
node bench/cluster-table.mjs "$RESULTS"
