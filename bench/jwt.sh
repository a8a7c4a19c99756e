#!/usr/bin/env bash
# What JWT auth costs a connection: connections/s (examples/loadgen/ --scenario connect) with
# no auth, with HS256 and with RS256 (a 2048-bit key), alternating, each run on a fresh
# server pinned to CPU 0 with the load generator on CPU 1. Every client sends the same valid
# token, so each CONNECT costs one verification.
#
#   bench/jwt.sh [--rounds N] [--clients N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=3
CLIENTS=5000
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift ;;
    --clients) CLIENTS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "jwt.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$BUILD" = 1 ]; then
  cargo build --release --locked --bin switchboard --example loadgen >&2
fi
ulimit -n 65536 2>/dev/null || true

DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-jwt.XXXXXX")
trap 'kill ${SERVER:-} 2>/dev/null || true; rm -rf "$DIR"' EXIT
SECRET="a-benchmark-secret-of-at-least-32-bytes"
cp tests/fixtures/jwt/rsa-public.pem "$DIR/"
# One token per algorithm, minted here (node:crypto), valid for an hour.
read -r HS RS < <(SECRET="$SECRET" node -e '
  const c = require("crypto"), fs = require("fs");
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const claims = b64({ sub: "bench", exp: Math.floor(Date.now() / 1000) + 3600 });
  const hs = b64({ alg: "HS256", typ: "JWT" }) + "." + claims;
  const rs = b64({ alg: "RS256", typ: "JWT" }) + "." + claims;
  const key = fs.readFileSync("tests/fixtures/jwt/rsa-private.pem");
  console.log(hs + "." + c.createHmac("sha256", process.env.SECRET).update(hs).digest("base64url"),
    rs + "." + c.createSign("RSA-SHA256").update(rs).sign(key).toString("base64url"));')

routes() {
  cat bench/routes.toml
  case "$1" in
    none) ;;
    hs256) printf '\n[namespaces."/".auth.jwt]\nsecret_env = "BENCH_JWT_SECRET"\nalgorithms = ["HS256"]\n' ;;
    rs256) printf '\n[namespaces."/".auth.jwt]\npublic_key = "rsa-public.pem"\nalgorithms = ["RS256"]\n' ;;
  esac
}

OFFSET=0
run() {
  local auth=$1 token=$2
  routes "$auth" >"$DIR/routes.toml"
  BENCH_JWT_SECRET="$SECRET" start_pinned 0 "$DIR/server" target/release/switchboard \
    --config "$DIR/routes.toml" --listen 127.0.0.1:0
  SERVER=$PID
  local extra=()
  [ -n "$token" ] && extra=(--auth "{\"token\":\"$token\"}")
  taskset -c 1 target/release/examples/loadgen --addr "$ADDR" --scenario connect \
    --clients "$CLIENTS" --server-pid "$SERVER" --label "$auth" --hold 0.5 --timeout 120 \
    --source-offset "$OFFSET" "${extra[@]}" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);
      if (r.error) { console.log(`${r.server.padEnd(6)} error: ${r.error}`); return; }
      console.log(`${r.server.padEnd(6)} ${r.conns_per_s} connections/s  server cpu ${r.server_cpu_us_per_conn} us per connection  (${r.connections} connected)`)})'
  OFFSET=$((OFFSET + CLIENTS / 10000 + 1))
  stop_pid "$SERVER"; SERVER=
}

for round in $(seq "$ROUNDS"); do
  run none ""
  run hs256 "$HS"
  run rs256 "$RS"
done
