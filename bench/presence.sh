#!/usr/bin/env bash
# What presence costs joins and leaves: examples/loadgen/ --scenario echo (50 clients in
# closed loops) where each `echo` joins the room `lobby`, leaves it and is acked — with
# presence off, and on (`presence = { event = "presence" }`: each join is told to the room,
# the joiner included, each leave to those still there) — alternating, each on a fresh server
# pinned to CPU 0 with the load generator on CPU 1. One ack is one join and one leave.
# `--cluster` runs the server with `[cluster]` on a local redis-server (CPU 1): each join and
# leave is then also told to the other nodes (the roster), on and off alike.
#
#   bench/presence.sh [--rounds N] [--no-build] [--cluster]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ab_options "$@"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-presence.XXXXXX")
trap 'kill ${SERVER:-} ${REDIS_PID:-} 2>/dev/null || true; rm -rf "$DIR"' EXIT
# bench/routes.toml with `echo` joining and leaving a room; presence added for "on".
sed 's|^echo = .*|echo = [ { join = "lobby" }, { leave = "lobby" }, { ack = "ok" } ]|' \
  bench/routes.toml >"$DIR/off.toml"
grep -q '^echo = \[ { join' "$DIR/off.toml" || { echo "presence.sh: no echo route to rewrite" >&2; exit 1; }
sed 's|^\[namespaces."/".events\]|[namespaces."/"]\npresence = { event = "presence" }\n\n&|' \
  "$DIR/off.toml" >"$DIR/on.toml"
if [ "$CLUSTER" = 1 ]; then
  start_redis 1
  for mode in off on; do
    printf '\n[cluster]\nadapter = "redis"\nurl = "%s"\n' "$REDIS_URL" >>"$DIR/$mode.toml"
  done
fi

run() {
  local mode=$1
  start_pinned 0 "$DIR/server" target/release/switchboard --config "$DIR/$mode.toml" --listen 127.0.0.1:0
  SERVER=$PID
  taskset -c 1 target/release/examples/loadgen --addr "$ADDR" --scenario echo \
    --server-pid "$SERVER" --label "$mode" --timeout 60 |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
      if (r.error) { console.log(`${r.server.padEnd(4)} error: ${r.error}`); return; }
      console.log(`${r.server.padEnd(4)} ${r.acks_per_s} join+leave/s  server cpu ${r.server_cpu_us_per_ack ?? "?"} us per join+leave  p99 ${r.p99_us ?? "?"} us`)})'
  stop_pid "$SERVER"; SERVER=
}

for round in $(seq "$ROUNDS"); do
  run off
  run on
done
