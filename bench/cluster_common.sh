# Sourced by the cluster benchmarks (cluster_failover.sh, cluster_move.sh): a temp dir with
# cleanup of every process started, free loopback ports, and an etcd (Debian's etcd-server).
# After `start_etcd`, ETCD is its client URL.
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/server_common.sh"  # free_port
now_ms() { date +%s%3N; }

start_etcd() {
  local port peer
  port=$(free_port)
  peer=$(free_port)
  ETCD=http://127.0.0.1:$port
  etcd --name bench --data-dir "$WORK/etcd" --listen-client-urls "$ETCD" \
    --advertise-client-urls "$ETCD" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >"$WORK/etcd.log" 2>&1 &
  PIDS+=($!)
  disown $!
  until curl -sf "$ETCD/v3/kv/range" -d '{"key":"AA=="}' >/dev/null; do sleep 0.1; done
}

# The node id (without "node") etcd names the owner of ORG.
owner_of() {
  curl -s "$ETCD/v3/kv/range" -d "{\"key\":\"$(printf "/sealcache/orgs/$1" | base64)\"}" |
    /usr/bin/python3 -c 'import json,sys,base64; kv=json.load(sys.stdin)["kvs"][0]; print(json.loads(base64.b64decode(kv["value"]))["owner"][4:])'
}
