#!/usr/bin/env bash
# Does a runaway script delay other clients? Echo latency (50 closed loops of emitWithAck,
# examples/loadgen/) with and without clients whose `spin` handler loops to its limit on
# every event (bench/spinner.mjs), alternating, on switchboard with bench/routes-spin.toml.
#
#   bench/script-isolation.sh [--rounds N] [--spinners N] [--cpus LIST] [--no-build]
#
# The server runs on --cpus (default "0", as bench/compare.sh), the load generator and the
# spinners on CPU 1. Prints one line per run: p50/p99/p99.9 and acks/s.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3
SPINNERS=1
CPUS=0
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift ;;
    --spinners) SPINNERS="$2"; shift ;;
    --cpus) CPUS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "script-isolation.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -d node_modules/socket.io-client ] || npm ci --no-audit --no-fund >/dev/null
if [ "$BUILD" = 1 ]; then
  cargo build --release --locked --bin switchboard --example loadgen >&2
fi

LOG=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-isolation.XXXXXX")
taskset -c "$CPUS" target/release/switchboard --config bench/routes-spin.toml \
  --listen 127.0.0.1:0 >"$LOG/out" 2>"$LOG/err" &
SERVER=$!
trap 'kill $SERVER ${SPIN:-} 2>/dev/null || true; rm -rf "$LOG"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$LOG/out" 2>/dev/null && break; sleep 0.05; done
ADDR=$(sed -n 's|switchboard listening on http://||p' "$LOG/out")
[ -n "$ADDR" ] || { cat "$LOG/err" >&2; exit 1; }

run() {
  taskset -c 1 target/release/examples/loadgen --addr "$ADDR" --scenario echo \
    --server-pid "$SERVER" --label "$1" --duration 5 --warmup 1 --timeout 60 |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
      console.log(`${r.server.padEnd(10)} p50 ${r.p50_us} us  p99 ${r.p99_us} us  p99.9 ${r.p999_us} us  ${r.acks_per_s} acks/s  server cpu ${r.server_cpu_util}`)})'
}

for round in $(seq "$ROUNDS"); do
  run idle
  taskset -c 1 node bench/spinner.mjs "http://$ADDR" "$SPINNERS" 2 &
  SPIN=$!
  sleep 1
  run spinning
  kill "$SPIN"; wait "$SPIN" 2>/dev/null || true; SPIN=
  sleep 1
done
echo "script errors logged (one line per 10 s): $(grep -c 'Script failed' "$LOG/err" || true)"
