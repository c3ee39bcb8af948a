#!/usr/bin/env bash
# sealcache beside its peers in one run, on this machine: lookups against Debian's FAISS
# (python3-faiss, HNSW in-process on the same vectors and queries), exact Gets over the native
# protocol and over RESP against redis-server's GET of the same 2 KiB values; plus the
# server's memory and disk per entry after the load. Prints each figure, its peer's and the
# ratio.
#
#   bench/peers.sh [SEALCACHED] [ORGS] [ENTRIES] [DURATION]     (default 4 x 100000, 20 s)
#
# Everything shares the machine's cores with its load generator (2 here): read ratios, not
# absolute capacities. FAISS runs in-process with no network, protocol, encryption, filter
# or payload: its search rate is what the graph walk alone costs, the bound a server
# approaches.
set -euo pipefail
cd "$(dirname "$0")/.."
sealcached=${1:-build/server/sealcached}
orgs=${2:-4}
entries=${3:-100000}
duration=${4:-20}
bench=build/bench/loadgen/sealcache-bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source bench/server_common.sh
size=(--orgs "$orgs" --entries "$entries")

echo "== sealcache: load ${orgs} x ${entries} x 384, lookups, Gets (server $sealcached)"
start_sealcached "$sealcached" "$work"
target=(--port "$port" --admin-token-file "$work/data/admin.token")
"$bench" "${target[@]}" "${size[@]}" --duration "$duration" --rounds 2 --recall-sample 200 \
  --json >"$work/lookups.json" 2>"$work/lookups.log"
rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$server/status")
disk=$(du -sb "$work/data" | cut -f1)
native_get() {  # pipeline -> Get/s of a second pass over the first org's entries
  "$bench" "${target[@]}" --orgs 1 --entries "$entries" --skip-load --get-bench \
    --pipeline "$1" --rounds 2 --max-requests 200000 2>/dev/null |
    sed -n 's/^get pass 2: \([0-9]*\) .*/\1/p'
}
native_get_p1=$(native_get 1)
native_get_p16=$(native_get 16)
kill "$server"
wait "$server" || true

echo "== redis-server: GET of 2 KiB values, 16 connections (redis-benchmark)"
redis_port=$(free_port)
redis-server --port "$redis_port" --save '' --appendonly no --daemonize no --dir "$work" \
  --logfile "$work/redis.log" &
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis_get() {  # pipeline -> GET/s
  redis-benchmark -p "$redis_port" -t get -d 2048 -c 16 -n 200000 -r 100000 -P "$1" --csv \
    2>/dev/null | /usr/bin/python3 -c '
import csv, sys
print(int(next(float(r[1]) for r in csv.reader(sys.stdin) if r and r[0] == "GET")))'
}
redis-benchmark -p "$redis_port" -t set -d 2048 -c 16 -n 100000 -r 100000 -q >/dev/null
redis_get_p1=$(redis_get 1)
redis_get_p16=$(redis_get 16)

echo "== FAISS peer: the first org's vectors and queries, in-process"
"$bench" "${size[@]}" --export-workload "$work/workload" >/dev/null
/usr/bin/python3 bench/faiss_peer.py "$work/workload" --orgs 1 >"$work/faiss.json"

echo "== RESP and native Gets against redis-server (bench/resp_vs_redis.sh)"
bench/resp_vs_redis.sh "$sealcached" 200000 2 | tee "$work/resp.txt"

/usr/bin/python3 - "$work" "$rss" "$disk" "$orgs" "$entries" "$redis_get_p1" \
  "$redis_get_p16" "$native_get_p1" "$native_get_p16" <<'EOF'
import json, sys
work, rss, disk, orgs, entries, redis_p1, redis_p16, native_p1, native_p16 = sys.argv[1:]
n = int(orgs) * int(entries)
look = json.load(open(work + "/lookups.json"))["results"][0]
faiss = json.load(open(work + "/faiss.json"))
print()
print("figure                          sealcache        peer            ratio")
def row(name, ours, peer, fmt="%.0f"):
    ratio = "%.2fx" % (ours / peer) if peer else ""
    print("%-31s %-16s %-15s %s" % (name, fmt % ours, (fmt % peer) if peer else "-", ratio))
row("lookups/s (closed loop, TCP)", look["lookup_qps"], faiss["search_single_query_per_s_one_thread"])
print("  peer: FAISS one query per call on one thread; batched on all threads: %.0f/s"
      % faiss["search_batched_per_s_all_threads"])
row("lookup p99 ms", look["lookup_p99_ms"], 0, "%.2f")
row("recall@1 near-duplicates", look["recall_at_1"], faiss["recall_at_1_near_duplicate"], "%.4f")
row("recall@1 fresh directions", look["recall_at_1_fresh"], faiss["recall_at_1_fresh"], "%.4f")
row("hit rate", look["hit_rate"], faiss["hit_rate"], "%.4f")
print("%-31s %-16.4f %-15.4f" % ("false hits", look["false_hit_rate"], faiss["false_hit_rate"]))
row("indexed entries/s (in graphs)", look["indexed_entries_per_s"], faiss["build_vectors_per_s"])
print("  peer: FAISS add on all threads, nothing else running")
row("native Get/s -P 1 vs redis GET", float(native_p1), float(redis_p1))
row("native Get/s -P 16 vs redis GET", float(native_p16), float(redis_p16))
print("  native: the first org's entries at random, the server's default 64 MiB table of hot")
print("  values (most reads reach RocksDB); warm with a table holding them: resp_vs_redis.sh")
row("server RSS bytes/entry", int(rss) / n, 0)
row("disk bytes/entry", int(disk) / n, 0)
EOF
