#!/usr/bin/env bash
# What the event loop and the kernel cost a GET over the Redis protocol at `-P 1`, against
# what sealcached's GET costs on top: redis-server, sealcached's Redis front and two empty
# servers that answer every GET with a 2 KiB bulk and do nothing else (loop_floor/):
# epoll_server (a level-triggered epoll loop, one and two threads) and asio_server (the
# structure of sealcached's RESP connection: Asio 1.74, a loop and thread per core, a
# coroutine per connection), in one alternation. `redis-benchmark -t get -d 2048 -c 16
# -r 100000 -P 1`; redis-server and sealcached hold the 100,000 keys (SET first, then a warm
# pass of GETs; sealcached with a 512 MiB table of hot values, as in resp_vs_redis.sh).
# Prints each server's rate and CPU per GET (user + system, all threads) per round.
#
#   bench/loop_floor.sh [SEALCACHED] [REQUESTS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
sealcached=${1:-build/server/sealcached}
requests=${2:-300000}
rounds=${3:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source bench/server_common.sh
ticks=$(getconf CLK_TCK)

for server in epoll_server asio_server; do
  ${CXX:-c++} -O2 -std=c++20 -pthread -o "$work/$server" "bench/loop_floor/$server.cc"
done

# measure NAME PID PORT [redis-benchmark auth options]
measure() {
  local name=$1 pid=$2 port=$3
  shift 3
  local cpu0 cpu1 rate
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  rate=$(redis-benchmark -p "$port" "$@" -t get -d 2048 -c 16 -n "$requests" -r 100000 -P 1 \
    --csv 2>/dev/null | awk -F'"' '/GET/ {print int($4)}')
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  /usr/bin/python3 -c "print('  %-22s %7d GET/s  %5.1f us of server CPU per GET' % ('$name', $rate, ($cpu1 - $cpu0) * 1e6 / $ticks / $requests))"
}

redis_port=$(free_port)
redis-server --port "$redis_port" --save '' --appendonly no --daemonize no \
  --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
start_resp_sealcached "$sealcached" "$work" --value-cache-bytes 536870912
sealcached_pid=$server
auth=("${resp_auth[@]}")
redis-benchmark -p "$redis_port" -t set -d 2048 -c 16 -n 200000 -r 100000 -P 16 -q >/dev/null 2>&1
redis-benchmark -p "$resp_port" "${auth[@]}" -t set -d 2048 -c 16 -n 200000 -r 100000 -P 16 \
  -q >/dev/null 2>&1
sleep 3  # the load's flushes
redis-benchmark -p "$resp_port" "${auth[@]}" -t get -d 2048 -c 16 -n 600000 -r 100000 -P 16 \
  -q >/dev/null 2>&1

empty_port=$(free_port)
for ((r = 1; r <= rounds; r++)); do
  echo "round $r"
  measure redis-server "$redis_pid" "$redis_port"
  measure sealcached "$sealcached_pid" "$resp_port" "${auth[@]}"
  for run in "epoll_server 1" "epoll_server 2" "asio_server 2"; do
    read -r server threads <<<"$run"
    "$work/$server" "$empty_port" "$threads" &
    pid=$!
    for _ in $(seq 50); do redis-cli -p "$empty_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    measure "$server ($threads)" "$pid" "$empty_port"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  done
done
