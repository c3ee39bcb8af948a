#!/usr/bin/env bash
# Purpose: what a planned move costs and keeps (server/CLUSTER.md, "Planned moves").
#
#   bench/cluster_move.sh [ENTRIES] [TLS]          (defaults 20000 1)
#
# Starts an etcd (Debian's etcd-server) and two sealcached nodes sharing one master key, on
# free loopback ports in a temp dir (TLS between them when TLS=1, one self-signed
# certificate), creates one org, loads ENTRIES entries (384 dimensions, 2 KiB payloads) with
# sealcache-bench and measures lookups on its owner; moves the org to the other node with
# `sealcache-cli move-org`, timing it; measures the same lookups on the new owner. Prints the
# move's time, the bytes streamed and the rate, and hit rate and recall before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${1:-20000}
TLS=${2:-1}
BUILD=${BUILD_DIR:-build}
SERVER=$BUILD/server/sealcached
CLI=$BUILD/tools/cli/sealcache-cli
BENCH=$BUILD/bench/loadgen/sealcache-bench
json_field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# shellcheck source=cluster_common.sh
source bench/cluster_common.sh
start_etcd

head -c 32 /dev/urandom >"$WORK/master.key"
chmod 600 "$WORK/master.key"
TLS_ARGS=()
CLI_TLS=()
if [[ $TLS == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" \
    -out "$WORK/cert.pem" >/dev/null 2>&1
  TLS_ARGS=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" --cluster-peer-ca "$WORK/cert.pem")
  CLI_TLS=(--tls --tls-ca "$WORK/cert.pem")
fi

declare -a PORT
for i in 0 1; do
  PORT[$i]=$(free_port)
  mkdir -p "$WORK/n$i"
  "$SERVER" --data "$WORK/n$i/data" --master-key "file:$WORK/master.key" --port "${PORT[$i]}" \
    --threads 2 --etcd "$ETCD" --node-id "node$i" "${TLS_ARGS[@]}" >>"$WORK/n$i/log" 2>&1 &
  PIDS+=($!)
  disown $!
  until grep -q "joined as node" "$WORK/n$i/log" 2>/dev/null; do sleep 0.05; done
done

ADMIN=$WORK/n0/data/admin.token
cli() { "$CLI" "${CLI_TLS[@]}" --token-file "$ADMIN" --timeout-ms 600000 "$@"; }
cli --port "${PORT[0]}" --json create-org bench0 --dim 384 >/dev/null
owner() { owner_of bench0; }
bench() {  # bench NODE [extra...]: load (unless --skip-load) and lookups on node NODE, as JSON
  local node=$1
  shift
  "$BENCH" --port "${PORT[$node]}" --admin-token-file "$ADMIN" --orgs 1 --entries "$ENTRIES" \
    --duration 5 --rounds 1 --connections 8 --json "$@"
}

from=$(owner)
to=$((1 - from))
if [[ $TLS == 0 ]]; then
  bench "$from" >"$WORK/before.json"
else
  # sealcache-bench speaks plain TCP only: over TLS the entries are loaded with put-batch.
  echo "TLS=1: loading $ENTRIES entries with sealcache-cli put-batch" >&2
  TOKEN=$(cli --port "${PORT[0]}" --json issue-token bench0 | json_field '["token"]')
  /usr/bin/python3 - "$ENTRIES" "$WORK/batch.jsonl" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
with open(path, "w") as f:
    for i in range(n):
        v = [rng.gauss(0, 1) for _ in range(384)]
        f.write(json.dumps({"digest_of": f"q{i}", "vector": v, "payload_text": "x" * 2048, "ttl_ms": 3600000}) + "\n")
PY
  printf '%s' "$TOKEN" >"$WORK/org.token"
  chmod 600 "$WORK/org.token"
  "$CLI" "${CLI_TLS[@]}" --token-file "$WORK/org.token" --port "${PORT[$from]}" --timeout-ms 600000 \
    put-batch "$WORK/batch.jsonl" >/dev/null
fi
sync
start=$(now_ms)
moved=$(cli --port "${PORT[$from]}" --json move-org bench0 --to "node$to")
took=$(($(now_ms) - start))
bytes=$(echo "$moved" | json_field '["bytes"]')
echo "moved $ENTRIES entries (384 dims, 2 KiB payloads) from node$from to node$(owner) over $([[ $TLS == 1 ]] && echo TLS || echo TCP):" \
  "$took ms, $bytes bytes of files, $(/usr/bin/python3 -c "print(round($bytes / 1e6 / max($took, 1) * 1000, 1))") MB/s"
grep -h "moved here" "$WORK/n$to/log" | sed 's/^sealcached: /new owner: /'
if [[ $TLS == 0 ]]; then
  bench "$to" --skip-load >"$WORK/after.json"
  for phase in before after; do
    /usr/bin/python3 - "$WORK/$phase.json" "$phase" <<'PY'
import json, sys
def report(d):  # the first object holding the lookup figures
    if isinstance(d, dict):
        if "hit_rate" in d:
            return d
        d = list(d.values())
    for v in d if isinstance(d, list) else []:
        r = report(v)
        if r:
            return r
    return None
r = report(json.load(open(sys.argv[1])))
keys = ("lookup_qps", "hit_rate", "false_hit_rate", "recall_at_1", "recall_at_1_fresh", "errors")
print(f"{sys.argv[2]:7s}", "  ".join(f"{k} {r[k]}" for k in keys))
PY
  done
fi
