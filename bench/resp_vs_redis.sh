#!/usr/bin/env bash
# GET and SET of 2 KiB values over the Redis protocol: sealcached's Redis front against a
# redis-server, the same redis-benchmark run against both in one go, unpipelined and with
# 16 commands in flight per connection, and the sealcache/Redis ratio of each. Then warm
# GETs of both fronts: the Redis front's and native Gets of 100,000 entries of ~2 KiB
# (`sealcache-bench --get-bench`: one thread, 16 connections, the same pipeline depths, as
# redis-benchmark sends them), each against redis-server's GETs in the same round.
#
#   bench/resp_vs_redis.sh [SEALCACHED] [REQUESTS] [ROUNDS]
#
# Both servers run on this machine beside the load generator (2 cores here: the figures
# are ratios from one run, not absolute capacities). redis-server runs without persistence
# (--save '' --appendonly no), as a cache; sealcached with --dev (one org, its token as the
# password; every value encrypted, and the WAL written without fsync, as redis-server).
# redis-server holds every value in memory; sealcached gets a table of hot values large
# enough for the Redis front's 100,000 values of 2 KiB and the native Gets' 100,000 entries
# (--value-cache-bytes, 512 MiB; set VALUE_CACHE_BYTES to another size, or to `default` for
# the server's default of 64 MiB).
# Rounds alternate Redis, sealcache, Redis, ... and each ratio is the median of its rounds.
# Each round's GETs follow its SETs at once: sealcached reads with its block cache cold and
# beside the SETs' flushes and compactions. The warm rounds after them are GETs alone, each
# after a pass of GETs over the same keys, as a cache that has been serving reads for a while.
set -euo pipefail
cd "$(dirname "$0")/.."
sealcached=${1:-build/server/sealcached}
requests=${2:-200000}
rounds=${3:-3}
value_cache=${VALUE_CACHE_BYTES:-536870912}
value_cache_flags=()
[[ "$value_cache" == default ]] || value_cache_flags=(--value-cache-bytes "$value_cache")
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

source bench/server_common.sh
redis_port=$(free_port)
redis-server --port "$redis_port" --save '' --appendonly no --daemonize no \
  --dir "$work" --logfile "$work/redis.log" &
start_resp_sealcached "$sealcached" "$work" "${value_cache_flags[@]}"
bench=${SEALCACHE_BENCH:-build/bench/loadgen/sealcache-bench}
native=("$bench" --port "$native_port" --admin-token-file "$work/data/admin.token" --orgs 1
  --entries 100000 --get-bench --max-requests "$requests")
redis-cli -p "$redis_port" ping >/dev/null

warm_get() {  # port pipeline [auth...] -> "get_rps" of a second pass of GETs
  local port=$1 pipeline=$2
  shift 2
  local pass
  for pass in 1 2; do
    redis-benchmark -p "$port" "$@" -t get -d 2048 -c 16 -n "$requests" -r 100000 \
      -P "$pipeline" --csv 2>/dev/null | awk -F'"' '/"GET"/ {print int($4)}'
  done | tail -1
}

native_get() {  # (port) pipeline -> "get_rps" of a second pass of native Gets
  "${native[@]}" --skip-load --pipeline "$2" --rounds 2 | sed -n 's/^get pass 2: \([0-9]*\) .*/\1/p'
}

run() {  # port pipeline [auth...] -> "set_rps get_rps"
  local port=$1 pipeline=$2
  shift 2
  redis-benchmark -p "$port" "$@" -t set,get -d 2048 -c 16 -n "$requests" -r 100000 \
    -P "$pipeline" --csv 2>/dev/null |
    /usr/bin/python3 -c '
import csv, sys
rows = {r[0]: float(r[1]) for r in csv.reader(sys.stdin) if r and r[0] in ("SET", "GET")}
print(int(rows["SET"]), int(rows["GET"]))'
}

echo "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on :$redis_port," \
  "sealcached RESP on :$resp_port; $requests requests, 2 KiB values, 16 connections," \
  "$rounds rounds"
# compare MEASURE LABEL NAMES: MEASURE (run or warm_get) on both servers for each pipeline
# depth, alternating, then the median sealcache/redis ratio of each figure NAMES lists
# ("SET/GET", "GET").
# MEASURE_SEALCACHE (default MEASURE) measures sealcached's side.
compare() {
  local measure=$1 label=$2 names=$3 measure_sealcache=${4:-$1} pipeline i r s
  for pipeline in 1 16; do
    local results=()
    for ((i = 1; i <= rounds; i++)); do
      r=$($measure "$redis_port" "$pipeline")
      s=$($measure_sealcache "$resp_port" "$pipeline" "${resp_auth[@]}")
      results+=("$r $s")
      echo "  -P $pipeline ${label}round $i: redis $names $r   sealcache $names $s"
    done
    printf '%s\n' "${results[@]}" | /usr/bin/python3 -c "
import statistics, sys
names = '$names'.split('/')
k = len(names)
rows = [list(map(int, l.split())) for l in sys.stdin if l.strip()]
ratios = ', '.join('%s %.2fx' % (name, statistics.median(r[k + j] / r[j] for r in rows))
                   for j, name in enumerate(names))
print('-P $pipeline%s: sealcache/redis %s (median of %d rounds)' % (' ${label% }' if '$label' else '', ratios, len(rows)))"
  done
}
compare run "" SET/GET
compare warm_get "warm " GET
echo "native Gets: loading 100000 exact-only entries"
# Then as many passes of Gets as the Redis front's values had before its warm rounds (the
# four rounds of SET and GET above), so that the table has admitted as many of them.
"${native[@]}" --pipeline 16 --rounds 4 >/dev/null 2>&1
compare warm_get "native warm " GET native_get
