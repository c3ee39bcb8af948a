#!/usr/bin/env bash
# Server CPU per check of RedisVL's SemanticCache hit flow over the Redis protocol
# (bench/resp_hit_load.py: ENTRIES stored as RedisVL stores them, then CHECKS queries per
# PHASE: `search` its VECTOR_RANGE FT.SEARCH, `hit` that search then the EXPIRE of the key
# it returned, `expire` the EXPIREs alone), each binary in turn (A B A B ...) on a fresh
# data directory. SKEW=s draws the queries' sources with popularity 1/rank^s.
#
#   [SKEW=s] bench/resp_hit_cpu.sh ROUNDS ENTRIES CHECKS PHASE[,PHASE...] SEALCACHED...
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/server_common.sh
rounds=$1 entries=$2 checks=$3 phases=$4
shift 4
for ((r = 1; r <= rounds; r++)); do
  for bin in "$@"; do
    work=$(mktemp -d)
    start_resp_sealcached "$bin" "$work"
    echo "round $r $(basename "$bin"):"
    /usr/bin/python3 bench/resp_hit_load.py "$resp_port" "$(cat "$work/data/admin.token")" \
      "$server" "$entries" "$checks" "$phases"
    kill "$server"
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
  done
done
