#!/usr/bin/env bash
# Server CPU per entry stored over the Redis protocol as RedisVL's SemanticCache stores one
# (bench/resp_store_load.py: pipelined HSET of a 384-d vector and a 2 KiB response, then
# EXPIRE; 16 entries a pipeline), each binary in turn (A B A B ...) on a fresh data
# directory; with MODE=multi the same pairs in MULTI ... EXEC, with MODE=hset the HSETs
# alone, the floor a store can reach.
#
#   [MODE=store|multi|hset] bench/resp_store_cpu.sh ROUNDS ENTRIES SEALCACHED...
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/server_common.sh
rounds=$1 entries=$2
shift 2
for ((r = 1; r <= rounds; r++)); do
  for bin in "$@"; do
    work=$(mktemp -d)
    start_resp_sealcached "$bin" "$work"
    echo -n "round $r $(basename "$bin"): "
    /usr/bin/python3 bench/resp_store_load.py "$resp_port" "$(cat "$work/data/admin.token")" \
      "$server" "$entries" "${MODE:-store}"
    kill "$server"
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
  done
done
