#!/usr/bin/env bash
# What the app's backend costs (issue 15's figures), on one 2-core machine, loopback only:
#
# 1. Events through an HTTP route step: examples/loadgen/ --scenario echo (closed loops of
#    emitWithAck) with `echo = { ack = "{args}" }` (plain) and with
#    `echo = { http = … }` answered `{"ack":"ok"}` by bench/trivial-backend.mjs (http);
#    acks/s and the server's CPU per event. Server on CPU 0, load generator and backend on
#    CPU 1.
# 2. /api/emit to a room of 1,000 clients: loadgen holds 1,000 WebSocket clients in the
#    room "bench" (they read every delivery), bench/api-emit.mjs posts emits with 16 in
#    flight; requests/s, deliveries/s and the server's CPU per request.
#
#   bench/backend.sh [--rounds N] [--clients N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=3
CLIENTS=1000
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift ;;
    --clients) CLIENTS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "backend.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in cargo node taskset; do
  command -v "$tool" >/dev/null || { echo "backend.sh: $tool is missing" >&2; exit 1; }
done
if [ "$BUILD" = 1 ]; then
  cargo build --release --locked --bin switchboard --example loadgen >&2
fi
ulimit -n 65536 2>/dev/null || true

DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-backend.XXXXXX")
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$DIR"' EXIT
KEY="a-benchmark-api-key-0123456789"

# Start what "$@" runs on CPU $1, logging to $DIR/$2.*; sets URL and PID.
start() {
  local cpu=$1 name=$2
  shift 2
  start_pinned "$cpu" "$DIR/$name" "$@"
  PIDS+=("$PID")
  URL="http://$ADDR"
}

stop() { stop_pid "$1"; }

start 1 backend node bench/trivial-backend.mjs
BACKEND_URL=$URL

echo "## HTTP route step vs plain route (echo, 50 clients)"
for round in $(seq "$ROUNDS"); do
  for kind in plain http; do
    if [ "$kind" = plain ]; then
      cp bench/routes.toml "$DIR/routes.toml"
    else
      sed "s|^echo = .*|echo = { http = \"$BACKEND_URL/echo\" }|" bench/routes.toml >"$DIR/routes.toml"
    fi
    start 0 server target/release/switchboard --config "$DIR/routes.toml" --listen 127.0.0.1:0
    taskset -c 1 target/release/examples/loadgen --addr "${URL#http://}" --scenario echo \
      --server-pid "$PID" --label "$kind" --timeout 60 |
      node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
        if (r.error) { console.log(`${r.server.padEnd(6)} error: ${r.error}`); return; }
        console.log(`${r.server.padEnd(6)} ${r.acks_per_s} events/s  server cpu ${r.server_cpu_us_per_ack} us per event  p50 ${r.p50_us ?? "?"} us  p99 ${r.p99_us ?? "?"} us`)})'
    stop "$PID"
  done
done

echo "## /api/emit to a room of $CLIENTS clients"
{
  cat bench/routes.toml
  printf 'connect = { join = "bench" }\n\n[api]\nkeys_env = "BENCH_API_KEYS"\nrate = "off"\n'
} >"$DIR/routes-api.toml"
for round in $(seq "$ROUNDS"); do
  BENCH_API_KEYS=$KEY start 0 server target/release/switchboard --config "$DIR/routes-api.toml" \
    --listen 127.0.0.1:0
  SERVER_URL=$URL
  SERVER_PID=$PID
  taskset -c 1 target/release/examples/loadgen --addr "${URL#http://}" --scenario connect \
    --clients "$CLIENTS" --hold 30 --timeout 60 --source-offset "$round" >"$DIR/loadgen.json" &
  LOADGEN=$!
  PIDS+=("$LOADGEN")
  for _ in $(seq 400); do
    n=$(curl -s "$SERVER_URL/healthz" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).sockets["/"])}catch{console.log(0)}})')
    [ "$n" = "$CLIENTS" ] && break
    sleep 0.05
  done
  [ "$n" = "$CLIENTS" ] || { echo "backend.sh: only $n of $CLIENTS clients connected" >&2; exit 1; }
  taskset -c 1 node bench/api-emit.mjs "$SERVER_URL" "$KEY" "$SERVER_PID" 5 16
  stop "$LOADGEN"
  stop "$SERVER_PID"
done
