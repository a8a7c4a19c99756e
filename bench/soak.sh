#!/usr/bin/env bash
# The soak run: a release switchboard under 30 minutes of client churn over both transports
# with bad input mixed in (examples/loadgen/ --scenario soak, routes in bench/soak/).
#
#   bench/soak.sh [--minutes N] [--warmup S] [--clients N]
#
# Passes when every acknowledged message reached every observer, no client met an
# unexpected answer, server RSS at the end is within 10 % of RSS after the warm-up, and the
# server's log holds no panic. Loopback only; bounded by the run's own timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=30
WARMUP=120
CLIENTS=40
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift ;;
    --warmup) WARMUP="$2"; shift ;;
    --clients) CLIENTS="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

cargo build --release --locked --bin switchboard --example loadgen >&2
OUT=target/soak/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
ulimit -n 65536 2>/dev/null || true

target/release/switchboard --config bench/soak/routes.toml >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$OUT/server.log" && break
  sleep 0.1
done
ADDR=$(grep -o "listening on http://[0-9.:]*" "$OUT/server.log" | head -1 | sed 's#.*http://##')
[ -n "$ADDR" ] || { echo "soak.sh: the server did not start" >&2; cat "$OUT/server.log" >&2; exit 1; }

SECONDS_MEASURED=$((MINUTES * 60))
target/release/examples/loadgen --addr "$ADDR" --scenario soak --clients "$CLIENTS" \
  --warmup "$WARMUP" --duration "$SECONDS_MEASURED" --server-pid "$SERVER" \
  --timeout $((SECONDS_MEASURED + WARMUP + 300)) | tee "$OUT/result.json"
curl -s "http://$ADDR/metrics" >"$OUT/metrics.txt" || true
kill -INT $SERVER
wait $SERVER || true

PANICS=$(grep -c "panicked" "$OUT/server.log" || true)
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const panics = Number(process.argv[2]);
  const failures = [...(r.failures ?? []), ...(r.error ? [r.error] : [])];
  if (panics > 0) failures.push(`${panics} panics in the server log`);
  const m = r.messages ?? {};
  console.log(`soak: ${r.seconds} s, ${Object.values(r.lifecycles ?? {}).reduce((a, b) => a + b, 0)} client lives, ` +
    `${m.sent} messages (${m.acked} acked, all seen by every observer: ${m.acked_seen_by_every_observer === m.acked}), ` +
    `RSS ${r.rss_kib?.after_warmup} KiB after warm-up -> ${r.rss_kib?.end} KiB (${r.rss_kib?.growth_pct} %), panics ${panics}`);
  if (failures.length) { console.log("FAILED:\n  " + failures.join("\n  ")); process.exit(1); }
  console.log("soak: passed");
' "$OUT/result.json" "$PANICS"
echo "soak.sh: log, result and metrics in $OUT" >&2
