#!/usr/bin/env bash
# The server's memory and disk per entry after a load, with where the disk bytes are: the
# same load and lookup rounds as bench/peers.sh (4 x 100000 x 384, 2 KiB payloads), then the
# server's RSS and the data directory by part, once while it runs and once after a clean
# shutdown (which writes every org's index snapshot). Several servers are run one after
# the other on the same workload, for before/after figures from one session.
#
#   bench/footprint.sh [--orgs N] [--entries N] SEALCACHED...
set -euo pipefail
cd "$(dirname "$0")/.."
orgs=4
entries=100000
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --orgs) orgs=$2; shift 2 ;;
    --entries) entries=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 1 ]] || { echo "usage: $0 [--orgs N] [--entries N] SEALCACHED..." >&2; exit 2; }
bench=build/bench/loadgen/sealcache-bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source bench/server_common.sh
n=$((orgs * entries))

# Bytes per entry under the data directory by part: the org databases' SSTs, their WALs, the
# index snapshots, and everything else (catalog, manifests, logs, keys).
parts() {
  /usr/bin/python3 - "$1" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
sizes = {"sst": 0, "wal": 0, "snapshots": 0, "other": 0}
for dirpath, _, files in os.walk(root):
    for f in files:
        size = os.path.getsize(os.path.join(dirpath, f))
        rel = os.path.relpath(os.path.join(dirpath, f), root)
        if f.endswith(".sst"):
            sizes["sst"] += size
        elif f.endswith(".log") and f[:-4].isdigit():
            sizes["wal"] += size
        elif "index" in rel.split(os.sep)[:-1]:
            sizes["snapshots"] += size
        else:
            sizes["other"] += size
sizes["total"] = sum(sizes.values())
print(" ".join("%s=%.0f" % (k, v / n) for k, v in sizes.items()), "B/entry")
PY
}

for sealcached in "$@"; do
  rm -rf "$work/data"
  start_sealcached "$sealcached" "$work"
  "$bench" --port "$port" --admin-token-file "$work/data/admin.token" --orgs "$orgs" \
    --entries "$entries" --duration 20 --rounds 2 --recall-sample 200 --json \
    >"$work/lookups.json" 2>"$work/lookups.log"
  rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$server/status")
  running=$(parts "$work/data")
  kill "$server"
  wait "$server" || true
  stopped=$(parts "$work/data")
  /usr/bin/python3 - "$sealcached" "$work/lookups.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))["results"][0]
print("== %s: indexed %.0f entries/s, lookups %.0f/s, recall@1 %.4f (fresh %.4f), hit rate "
      "%.4f, false hits %.4f"
      % (sys.argv[1], r["indexed_entries_per_s"], r["lookup_qps"], r["recall_at_1"],
         r["recall_at_1_fresh"], r["hit_rate"], r["false_hit_rate"]))
PY
  echo "   RSS after the load:        $((rss / n)) B/entry"
  echo "   disk while running:        $running"
  echo "   disk after a clean stop:   $stopped"
done
