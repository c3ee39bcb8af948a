#!/usr/bin/env bash
# Compares two sealcached binaries on the same workload: runs sealcache-bench --spawn against
# A and B in turn (A B A B ...), each run on a fresh data directory, and prints each run's
# throughput and p99 and the median B/A ratio. Built for before/after checks of one change
# (e.g. the per-request session check of issue 12): build the old tree elsewhere, pass both
# binaries.
#
#   bench/compare_servers.sh OLD_SEALCACHED NEW_SEALCACHED [PAIRS] [-- sealcache-bench args]
#
# Default workload: exact Gets, 4 orgs x 5,000 entries x 384, 16 connections, 10 s rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2
pairs=${3:-3}
shift $(( $# >= 3 ? 3 : 2 ))
[[ "${1:-}" == "--" ]] && shift
args=("$@")
if ((${#args[@]} == 0)); then
  args=(--orgs 4 --entries 5000 --dim 384 --get-pct 100 --duration 10 --rounds 1
        --connections 16 --no-wait-index)
fi
bench=${BENCH:-build/bench/loadgen/sealcache-bench}
out=$(mktemp -d)
for ((i = 1; i <= pairs; i++)); do
  for side in a b; do
    bin=$a
    [[ $side == b ]] && bin=$b
    "$bench" --spawn --sealcached "$bin" --json "${args[@]}" >"$out/$side$i.json" 2>/dev/null
  done
done
python3 - "$out" "$pairs" "$a" "$b" <<'PY'
import json, statistics, sys
out, pairs, a, b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def figures(path):
    r = json.load(open(path))["results"][0]
    qps = r["get_qps"] + r["lookup_qps"] + r["put_qps"]
    p99 = max(r["get_p99_ms"], r["lookup_p99_ms"], r["put_p99_ms"])
    return qps, p99, r["errors"]
print(f"A = {a}\nB = {b}")
ratios = []
for i in range(1, pairs + 1):
    qa, pa, ea = figures(f"{out}/a{i}.json")
    qb, pb, eb = figures(f"{out}/b{i}.json")
    ratios.append(qb / qa)
    print(f"pair {i}: A {qa:9.1f}/s p99 {pa:6.2f} ms  B {qb:9.1f}/s p99 {pb:6.2f} ms"
          f"  B/A {qb / qa:.3f}  errors {ea}/{eb}")
print(f"median B/A throughput: {statistics.median(ratios):.3f}")
PY
rm -rf "$out"
