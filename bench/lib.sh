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
# (ROUNDS, default 3) and `--no-build`; `-h` prints lines 2..8 of the script. Then builds the
# release server and load generator (unless --no-build) and raises the file limit.
ab_options() {
  ROUNDS=3
  local build=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --rounds) ROUNDS="$2"; shift ;;
      --no-build) build=0 ;;
      -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
      *) echo "$(basename "$0"): unknown option $1" >&2; exit 2 ;;
    esac
    shift
  done
  if [ "$build" = 1 ]; then
    cargo build --release --locked --bin switchboard --example loadgen >&2
  fi
  ulimit -n 65536 2>/dev/null || true
}
