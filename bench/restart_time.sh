#!/usr/bin/env bash
# Purpose: time for sealcached to serve lookups again after a restart, with the index
# snapshot (normal) and without it (index rebuilt from the store), for O orgs x N entries.
#
#   bench/restart_time.sh [ORGS] [ENTRIES] [DIM]     (defaults 1 250000 384)
#
# Loads the workload with sealcache-bench, waits until the server's background index builds
# are idle, stops it with SIGTERM (which writes snapshots), then restarts it twice: once as
# is and once with the snapshots removed. "serving" = every org has answered a lookup. It also
# prints the p50 of 200 lookups right after each start (a rebuilt index serves at once, but
# searches unsealed segments exactly until the background seal catches up).
set -euo pipefail
cd "$(dirname "$0")/.."
ORGS=${1:-1}
ENTRIES=${2:-250000}
DIM=${3:-384}
BUILD=${BUILD_DIR:-build}
SERVER=$BUILD/server/sealcached
BENCH=$BUILD/bench/loadgen/sealcache-bench
CLI=$BUILD/tools/cli/sealcache-cli
PORT=${PORT:-17999}
WORK=$(mktemp -d)
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_server() {
  "$SERVER" --data "$WORK/data" --master-key "file:$WORK/master.key" --port "$PORT" \
    --threads 2 2>>"$WORK/server.log" &
  PID=$!
}
wait_idle() {  # until the server uses under 5% of a core over 5 s
  local hz prev now
  hz=$(getconf CLK_TCK)
  prev=$(awk '{print $14+$15}' /proc/$PID/stat)
  while sleep 5; do
    now=$(awk '{print $14+$15}' /proc/$PID/stat)
    (( (now - prev) * 100 < 5 * 5 * hz )) && break
    prev=$now
  done
}
first_lookup_ms() {  # ms from now until a lookup is answered
  local t0
  t0=$(date +%s%N)
  until "$CLI" --port "$PORT" --token "$1" lookup --vector "$WORK/q.txt" --k 1 >/dev/null 2>&1; do
    sleep 0.02
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

python3 -c "import random; random.seed(1); print(' '.join(str(random.gauss(0,1)) for _ in range($DIM)))" > "$WORK/q.txt"
python3 - <<PY
import os, secrets
p = "$WORK/master.key"
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, (secrets.token_hex(32) + "\n").encode()); os.close(fd)
PY
start_server
until [ -f "$WORK/data/admin.token" ]; do sleep 0.1; done
sleep 0.5
echo "loading $ORGS x $ENTRIES x $DIM ..."
"$BENCH" --port "$PORT" --admin-token-file "$WORK/data/admin.token" --orgs "$ORGS" \
  --entries "$ENTRIES" --dim "$DIM" --rounds 1 --duration 1 --recall-sample 0 >/dev/null
TOKENS=()
for ((org = 0; org < ORGS; org++)); do
  TOKENS+=("$("$CLI" --port "$PORT" --token-file "$WORK/data/admin.token" issue-token "bench$org" \
    --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')")
done
TOKEN=${TOKENS[0]}
echo "waiting for background index builds ..."
wait_idle
kill -TERM $PID; wait $PID || true
du -sh "$WORK/data" | sed 's/^/data dir: /'

for mode in snapshot rebuild; do
  [ "$mode" = rebuild ] && rm -f "$WORK"/data/orgs/*/index/index.snapshot
  t0=$(date +%s%N)
  start_server
  until "$CLI" --port "$PORT" --token "$TOKEN" ping >/dev/null 2>&1; do sleep 0.02; done
  listen_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  # Orgs load in parallel: serving = every org has answered a lookup (asked one after another).
  serve_ms=$listen_ms
  for token in "${TOKENS[@]}"; do serve_ms=$(( serve_ms + $(first_lookup_ms "$token") )); done
  p50=$("$BENCH" --port "$PORT" --admin-token-file "$WORK/data/admin.token" --orgs "$ORGS" \
    --entries "$ENTRIES" --dim "$DIM" --skip-load --rounds 1 --max-requests 200 --connections 1 \
    --recall-sample 0 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["lookup_p50_ms"])')
  echo "$mode: listening after ${listen_ms} ms, every org's first lookup served after ${serve_ms} ms, lookup p50 right after start ${p50} ms"
  kill -TERM $PID; wait $PID || true
done
grep -E "loaded snapshot|rebuilt" "$WORK/server.log" | tail -"$((2 * ORGS))"
