#!/usr/bin/env bash
# Server CPU per GET over the Redis protocol, for before/after checks of the GET path: each
# binary in turn (A B A B ...) on a fresh data directory, 100,000 keys of 2 KiB loaded with
# SET, then `redis-benchmark -t get -c 16 -P PIPELINE -n REQUESTS`; prints the GET rate and
# the server's CPU time (user + system, all threads, the hit-count flush after the run
# included) per GET. CPU per request is steadier than a rate on a shared machine.
#
#   [WARM=N] [COMMAND=set] bench/resp_get_cpu.sh ROUNDS PIPELINE REQUESTS SEALCACHED...
#
# WARM=N sends N GETs (pipelined by 16) before the measured ones. COMMAND=set measures SETs
# of 2 KiB instead (over the loaded keys: each replaces an entry), their flushes and
# compactions included as far as they run within the run and 2.5 s after it; COMMAND=expire
# measures `EXPIRE key 3600` of the loaded keys (a cache hit's TTL refresh). A SEALCACHED
# may be a wrapper script that adds options (e.g. --value-cache-bytes) to a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/server_common.sh
rounds=$1 pipeline=$2 requests=$3
shift 3
ticks=$(getconf CLK_TCK)
command=${COMMAND:-get}
if [[ $command == expire ]]; then
  run=(EXPIRE key:__rand_int__ 3600)
  label="EXPIRE key:__rand_int__ 3600"
else
  run=(-t "$command")
  label=${command^^}
fi
for ((r = 1; r <= rounds; r++)); do
  for bin in "$@"; do
    work=$(mktemp -d)
    start_resp_sealcached "$bin" "$work"
    pid=$server port=$resp_port
    auth=("${resp_auth[@]}")
    redis-benchmark -p "$port" "${auth[@]}" -t set -d 2048 -c 16 -n 200000 -r 100000 -P 16 \
      -q >/dev/null 2>&1
    sleep 3  # the load's own hit flush and memtable flushes
    if [[ -n "${WARM:-}" ]]; then  # a pass of WARM GETs first: caches warm, values admitted
      redis-benchmark -p "$port" "${auth[@]}" -t get -d 2048 -c 16 -n "$WARM" -r 100000 -P 16 \
        -q >/dev/null 2>&1
    fi
    cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    rate=$(redis-benchmark -p "$port" "${auth[@]}" -d 2048 -c 16 -n "$requests" -r 100000 \
      -P "$pipeline" --csv "${run[@]}" 2>/dev/null | awk -F'"' "/\"$label\"/ {print int(\$4)}")
    sleep 2.5  # hit counts are flushed about every second
    cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    /usr/bin/python3 -c "print('round $r $(basename "$bin"): ${command^^} -P $pipeline %d/s, server CPU %.1f us per ${command^^}' % ($rate, ($cpu1 - $cpu0) * 1e6 / $ticks / $requests))"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
  done
done
