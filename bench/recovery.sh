#!/usr/bin/env bash
# What connection state recovery costs a broadcast: examples/loadgen/ --scenario
# broadcast-max (1,000 clients, 10 senders, `chat message` routed `io`) with bench/routes.toml
# as it is (off) and with `[server.recovery]` added (on: every broadcast gets an offset and is
# kept, and a namespace's broadcasts are fanned out one at a time), alternating, each on a
# fresh server pinned to CPU 0 with the load generator on CPU 1.
#
#   bench/recovery.sh [--rounds N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ab_options "$@"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-recovery.XXXXXX")
trap 'kill ${SERVER:-} 2>/dev/null || true; rm -rf "$DIR"' EXIT
cp bench/routes.toml "$DIR/off.toml"
{ cat bench/routes.toml; printf '\n[server.recovery]\n'; } >"$DIR/on.toml"

run() {
  local mode=$1
  start_pinned 0 "$DIR/server" target/release/switchboard --config "$DIR/$mode.toml" --listen 127.0.0.1:0
  SERVER=$PID
  taskset -c 1 target/release/examples/loadgen --addr "$ADDR" --scenario broadcast-max \
    --server-pid "$SERVER" --label "$mode" --timeout 60 |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
      if (r.error) { console.log(`${r.server.padEnd(4)} error: ${r.error}`); return; }
      console.log(`${r.server.padEnd(4)} ${r.deliveries_per_s} deliveries/s  server cpu ${r.server_cpu_us_per_delivery ?? "?"} us per delivery  ratio ${r.delivery_ratio}  seq errors ${r.seq_errors}`)})'
  stop_pid "$SERVER"; SERVER=
}

for round in $(seq "$ROUNDS"); do
  run off
  run on
done
