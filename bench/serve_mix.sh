#!/usr/bin/env bash
# Entries stored and searchable in HNSW graphs while lookups are served (issue 17's indexing
# goal), for before/after checks: one quiescent ORGS x ENTRIES x 384 directory is loaded once
# (by the first SEALCACHED), then each round starts every binary in turn (A B A B ...) on its
# own copy of that directory and runs `sealcache-bench --skip-load --put-pct PCT
# --recall-sample 0 --rounds 1`: closed loop over 16 connections, PCT% puts of new entries,
# the rest lookups. Prints per run the "put and indexed" rate (puts counted once their graphs
# are built), the lookup rate and p99, and the server's CPU (user + system, all threads) per
# request and in cores. Copies of one directory make the rounds comparable: a fresh load
# differs in its compaction state and graph layout from run to run.
#
#   [ORGS=4] [ENTRIES=100000] [DURATION=20] bench/serve_mix.sh ROUNDS PCT SEALCACHED...
#
# The load generator shares the machine's cores with the server: compare binaries within one
# run, not with another hour's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/server_common.sh
rounds=$1 pct=$2
shift 2
orgs=${ORGS:-4} entries=${ENTRIES:-100000} duration=${DURATION:-20}
bench=build/bench/loadgen/sealcache-bench
ticks=$(getconf CLK_TCK)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# serve SEALCACHED DIR: the binary on DIR/data under DIR/master.key, in the background, until
# it serves. Sets `port` and `server`.
serve() {
  port=$(free_port)
  "$1" --data "$2/data" --master-key "file:$2/master.key" --port "$port" --threads 2 \
    >"$2/sealcached.log" 2>&1 &
  server=$!
  for _ in $(seq 1200); do
    grep -q "serving" "$2/sealcached.log" 2>/dev/null && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  cat "$2/sealcached.log" >&2
  return 1
}
stop() {
  kill "$server"
  wait "$server" 2>/dev/null || true
}

echo "== load ${orgs} x ${entries} x 384 with $1"
mkdir "$work/base"
head -c 32 /dev/urandom >"$work/base/master.key"
chmod 600 "$work/base/master.key"
serve "$1" "$work/base"
"$bench" --port "$port" --admin-token-file "$work/base/data/admin.token" --orgs "$orgs" \
  --entries "$entries" --rounds 1 --duration 2 --recall-sample 0 >"$work/load.log" 2>&1
stop  # a clean stop: the copies restart from index snapshots, as a restarted server does

for ((r = 1; r <= rounds; r++)); do
  for bin in "$@"; do
    rm -rf "$work/run"
    cp -a "$work/base" "$work/run"
    serve "$bin" "$work/run"
    sleep 2  # the snapshots' graphs in memory, the first compactions settled
    cpu0=$(awk '{print $14 + $15}' "/proc/$server/stat")
    out=$("$bench" --port "$port" --admin-token-file "$work/run/data/admin.token" \
      --orgs "$orgs" --entries "$entries" --skip-load --put-pct "$pct" --recall-sample 0 \
      --rounds 1 --duration "$duration" 2>&1)
    cpu1=$(awk '{print $14 + $15}' "/proc/$server/stat")
    stop
    indexed=$(sed -n 's/^ *put and indexed *\([0-9]*\) .*/\1/p' <<<"$out")
    lookups=$(sed -n 's/^ *lookup *\([0-9]*\) \/s.*p99 *\([0-9.]*\).*/\1 \2/p' <<<"$out")
    [[ -n "$indexed" && -n "$lookups" ]] || {
      echo "$out" >&2
      exit 1
    }
    read -r lookup_rate lookup_p99 <<<"$lookups"
    /usr/bin/python3 -c "
cpu = ($cpu1 - $cpu0) / $ticks  # the round, and its wait for the last graphs
requests = ($indexed + $lookup_rate) * $duration
print('round $r $(basename "$bin"): put and indexed %d /s, lookups %d /s (p99 %s ms), '
      'server CPU %.1f us per request, %.2f cores' % ($indexed, $lookup_rate, '$lookup_p99',
      cpu * 1e6 / requests, cpu / $duration))"
  done
done
