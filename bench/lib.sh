# Sourced by the bench scripts: start a process pinned to one CPU and wait for it to listen.
#
#   start_pinned CPU LOG command...
#
# runs `command...` on CPU (taskset) with stdout in LOG.out and stderr in LOG.err, waits up
# to 10 s for its "listening on http://HOST:PORT" line, and sets PID and ADDR (HOST:PORT);
# fails the script with the process's stderr if the line never comes.
start_pinned() {
  local cpu=$1 log=$2
  shift 2
  taskset -c "$cpu" "$@" >"$log.out" 2>"$log.err" &
  PID=$!
  for _ in $(seq 200); do grep -q "listening on" "$log.out" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(grep -o 'listening on http://[^ ]*' "$log.out" | head -1 | sed 's|listening on http://||')
  [ -n "$ADDR" ] || { cat "$log.err" >&2; exit 1; }
}

# Stop process $1 and wait for it.
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# The options of the A/B benches (bench/recovery.sh, bench/presence.sh): `--rounds N`
# (ROUNDS, default 3), `--no-build` and `--cluster` (CLUSTER=1: the script runs its server in
# a cluster); `-h` prints lines 2..9 of the script. Then builds the release server and load
# generator (unless --no-build) and raises the file limit.
ab_options() {
  ROUNDS=3
  CLUSTER=0
  local build=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --rounds) ROUNDS="$2"; shift ;;
      --no-build) build=0 ;;
      --cluster) CLUSTER=1 ;;
      -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
      *) echo "$(basename "$0"): unknown option $1" >&2; exit 2 ;;
    esac
    shift
  done
  if [ "$build" = 1 ]; then
    cargo build --release --locked --bin switchboard --example loadgen >&2
  fi
  ulimit -n 65536 2>/dev/null || true
}

# Start Debian's redis-server on a free port of 127.0.0.1, pinned to CPU $1, with no
# persistence; sets REDIS_PID and REDIS_URL. Stop it with `stop_pid "$REDIS_PID"`.
start_redis() {
  command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install -y redis-server)" >&2; exit 1; }
  local port
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  taskset -c "$1" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "redis-server did not start" >&2; exit 1; }
  REDIS_URL="redis://127.0.0.1:$port"
}
