#!/usr/bin/env bash
# switchboard against its peers, scenario by scenario: socketioxide, the fastest Socket.IO
# server in Rust (bench/peers/socketioxide/), and the reference npm `socket.io` server.
#
#   bench/compare.sh [--quick] [--rounds N] [--scenarios "echo broadcast-max ..."]
#                    [--servers "switchboard socketioxide socketio"] [--big] [--no-build]
#                    [--server-cpus LIST]
#
# Each run starts a fresh server pinned to CPU 0 and examples/loadgen/ pinned to CPU 1
# (loopback only, bounded in time and count), alternating the servers (A B C A B C ...) for
# every scenario, then prints a markdown table of medians and ratios (bench/table.mjs). Raw
# JSON lines go to target/bench/<time>/results.jsonl.
#
#   --quick      1 round, 2 s windows, 2,000 connections: a smoke run
#   --server-cpus  the CPUs the server may use (taskset list, default 0): `0-1` measures
#                scaling past one core, the load generator then sharing CPU 1 with it
#   --big        also hold as many idle connections as the file limit allows (100,000
#                when it can be raised that far), switchboard only: WebSockets, then
#                long-polling sessions (two connections each)
#
# Numbers are only as good as the machine is quiet: each run waits for idle CPUs first
# (QUIET=0.3 cores), and reports the busy time of each CPU and what neither process
# accounts for (`unclaimed_cpu_util`).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
BIG=0
BUILD=1
SERVER_CPUS=0
ROUNDS=3
SCENARIOS="connect echo broadcast-max broadcast-rate polling"
SERVERS="switchboard socketioxide socketio"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --big) BIG=1 ;;
    --no-build) BUILD=0 ;;
    --rounds) ROUNDS="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --servers) SERVERS="$2"; shift ;;
    --server-cpus) SERVER_CPUS="$2"; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  ROUNDS=1
  WINDOW=(--warmup 0.5 --duration 2)
  CONNECT_N=2000
else
  WINDOW=(--warmup 1 --duration 5)
  CONNECT_N=10000
fi

for tool in cargo node taskset timeout; do
  command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing" >&2; exit 1; }
done
[ "$(nproc --all)" -ge 2 ] || { echo "compare.sh: needs 2 CPUs (server on 0, load on 1)" >&2; exit 1; }
[ -d node_modules/socket.io ] || npm ci --no-audit --no-fund >/dev/null

# Two file descriptors per connection on the machine, one in each process.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
# The server's own cap on connections is its file limit less a tenth (at least 64).
CAP=$(( NOFILE - (NOFILE / 10 > 64 ? NOFILE / 10 : 64) ))
BIG_N=$(( CAP < 100000 ? CAP : 100000 ))

if [ "$BUILD" = 1 ]; then
  cargo build --release --bin switchboard --example loadgen
  case " $SERVERS " in
    *" socketioxide "*) cargo build --release --manifest-path bench/peers/socketioxide/Cargo.toml ;;
  esac
fi
LOADGEN=target/release/examples/loadgen
OUT="target/bench/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

SERVER_PID=
SERVER_PORT=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

start_server() {
  local name=$1 log=$2
  case "$name" in
    switchboard)
      taskset -c "$SERVER_CPUS" target/release/switchboard --config bench/routes.toml \
        --listen 127.0.0.1:0 >"$log" 2>&1 &
      ;;
    socketioxide)
      taskset -c "$SERVER_CPUS" bench/peers/socketioxide/target/release/socketioxide-peer \
        --listen 127.0.0.1:0 >"$log" 2>&1 &
      ;;
    socketio)
      taskset -c "$SERVER_CPUS" node bench/reference-server.mjs --listen 127.0.0.1:0 >"$log" 2>&1 &
      ;;
    *) echo "compare.sh: unknown server $name" >&2; exit 2 ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 200); do
    SERVER_PORT=$(sed -n 's#.*listening on http://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$log" | head -1)
    [ -n "$SERVER_PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "compare.sh: $name did not start:" >&2
  cat "$log" >&2
  stop_server
  return 1
}

# Other work on the machine skews every number: before each run, wait (up to 60 s) until
# the CPUs have been idle for a second (less than QUIET cores busy).
QUIET=${QUIET:-0.3}
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
await_quiet() {
  local waited=0 a b
  while :; do
    a=$(busy_ticks); sleep 1; b=$(busy_ticks)
    # USER_HZ is 100: ticks per second = cores busy × 100.
    if awk -v d=$((b - a)) -v q="$QUIET" 'BEGIN{exit !(d / 100 < q)}'; then
      [ "$waited" = 0 ] || echo "compare.sh: machine quiet after ${waited}s" >&2
      return 0
    fi
    waited=$((waited + 1))
    if [ "$waited" -ge 60 ]; then
      echo "compare.sh: machine still busy ($(( (b - a) ))% of a core); running anyway" >&2
      return 0
    fi
  done
}

RUN=0
run() {
  local server=$1 scenario=$2
  shift 2
  RUN=$((RUN + 1))
  local log="$OUT/$RUN-$server-$scenario.log"
  await_quiet
  local line
  if ! start_server "$server" "$log"; then
    echo "{\"scenario\":\"$scenario\",\"server\":\"${LABEL:-$server}\",\"error\":\"server did not start (see $log)\"}" >>"$RESULTS"
    return 0
  fi
  # Each run gets its own source addresses, so no run meets another's TIME_WAIT ports.
  line=$(timeout 300 taskset -c 1 "$LOADGEN" --addr "127.0.0.1:$SERVER_PORT" \
    --server-pid "$SERVER_PID" --label "${LABEL:-$server}" --scenario "$scenario" \
    --source-offset $((RUN * 16)) "$@" || true)
  stop_server
  [ -n "$line" ] || line="{\"scenario\":\"$scenario\",\"server\":\"${LABEL:-$server}\",\"error\":\"no output (see $log)\"}"
  echo "$line" >>"$RESULTS"
  echo "$line" >&2
}

args_of() {
  case "$1" in
    connect) echo "--clients $CONNECT_N --hold 2 --concurrency 64" ;;
    echo) echo "--clients 50 ${WINDOW[*]}" ;;
    broadcast-max) echo "--clients 1000 --senders 10 --window 8 ${WINDOW[*]}" ;;
    broadcast-rate) echo "--clients 1000 --senders 10 --rate 20 ${WINDOW[*]}" ;;
    polling) echo "--clients 200 --senders 10 --window 8 ${WINDOW[*]}" ;;
    *) echo "compare.sh: unknown scenario $1" >&2; exit 2 ;;
  esac
}

echo "compare.sh: rounds $ROUNDS, server on CPU $SERVER_CPUS, open-file limit $NOFILE, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for scenario in $SCENARIOS; do
  read -r -a args <<<"$(args_of "$scenario")"
  for round in $(seq "$ROUNDS"); do
    for server in $SERVERS; do
      echo "== $scenario round $round: $server" >&2
      run "$server" "$scenario" "${args[@]}"
    done
  done
done
if [ "$BIG" = 1 ]; then
  echo "== connect $BIG_N idle connections: switchboard" >&2
  LABEL=switchboard-big run switchboard connect --clients "$BIG_N" --hold 5 \
    --concurrency 64 --timeout 280
  # A long-polling session holds two connections: its waiting GET and its POSTs'.
  echo "== connect $((BIG_N / 2)) idle long-polling sessions: switchboard" >&2
  LABEL=switchboard-big-polling run switchboard connect --polling --clients $((BIG_N / 2)) \
    --hold 5 --concurrency 64 --timeout 280
fi

node bench/table.mjs "$RESULTS" "$NOFILE"
echo "raw results: $RESULTS" >&2
