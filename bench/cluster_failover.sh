#!/usr/bin/env bash
# Purpose: how long an org is unreachable when its node dies, in a cluster (server/CLUSTER.md).
#
#   bench/cluster_failover.sh [RUNS] [LEASE_S] [RECONCILE_MS]     (defaults 5 3 1000)
#
# Starts an etcd (Debian's etcd-server) and three sealcached nodes on free loopback ports in a
# temp dir, creates one org, then RUNS times: kill -9 the org's owner, and through a surviving
# node ask for an entry every 20 ms until the org answers again (a miss: its new copy is empty),
# then start the killed node again. Prints each run's time from the kill to that answer and
# the min / median / max. The bound by design is the lease plus one or two reconcile periods.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
LEASE=${2:-3}
RECONCILE=${3:-1000}
BUILD=${BUILD_DIR:-build}
SERVER=$BUILD/server/sealcached
CLI=$BUILD/tools/cli/sealcache-cli
# shellcheck source=cluster_common.sh
source bench/cluster_common.sh
start_etcd

declare -a PORT NODE_PID
start_node() {  # start_node I
  local i=$1
  mkdir -p "$WORK/n$i"
  local joined
  joined=$(cat "$WORK/n$i/log" 2>/dev/null | grep -c "joined as node" || true)
  "$SERVER" --dev --data "$WORK/n$i/data" --port "${PORT[$i]}" --resp-port "$(free_port)" \
    --threads 2 --etcd "$ETCD" --node-id "node$i" --cluster-lease-s "$LEASE" \
    --cluster-reconcile-ms "$RECONCILE" >>"$WORK/n$i/log" 2>&1 &
  NODE_PID[$i]=$!
  PIDS+=(${NODE_PID[$i]})
  disown "${NODE_PID[$i]}"
  until [[ $(grep -c "joined as node" "$WORK/n$i/log" 2>/dev/null) -gt ${joined:-0} ]]; do sleep 0.05; done
}
# Whether the org answers through node I: a miss (NOT_FOUND), not UNAVAILABLE or no connection.
answers() {
  local out
  out=$("$CLI" --port "${PORT[$1]}" --timeout-ms 2000 --json get --digest-of probe 2>/dev/null || true)
  [[ $out == *'"NOT_FOUND"'* ]]
}
for i in 0 1 2; do PORT[$i]=$(free_port); start_node "$i"; done

export SEALCACHE_TOKEN
SEALCACHE_TOKEN=$(cat "$WORK/n0/data/admin.token")
TOKEN=$("$CLI" --port "${PORT[0]}" --json create-org bench --dim 8 |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
SEALCACHE_TOKEN=$TOKEN

owner() { owner_of bench; }

times=()
for run in $(seq 1 "$RUNS"); do
  victim=$(owner)
  via=$(((victim + 1) % 3))
  # The org answers through the survivor before the kill.
  until answers "$via"; do sleep 0.05; done
  start=$(now_ms)
  kill -9 "${NODE_PID[$victim]}"
  wait "${NODE_PID[$victim]}" 2>/dev/null || true
  until answers "$via"; do sleep 0.02; done  # a miss: the org serves again, empty
  took=$(($(now_ms) - start))
  times+=("$took")
  echo "run $run: node$victim killed; org served again through node$via after $took ms (now on node$(owner))"
  start_node "$victim"
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "failover (lease ${LEASE} s, reconcile ${RECONCILE} ms), ${RUNS} runs: min ${sorted[0]} ms, median ${sorted[$((RUNS / 2))]} ms, max ${sorted[$((RUNS - 1))]} ms"
