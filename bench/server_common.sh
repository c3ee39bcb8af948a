# Sourced by the benchmark scripts that start servers on this machine: free loopback ports,
# and a sealcached on a fresh data directory under a fresh master key.

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_sealcached SEALCACHED DIR: a server with --threads 2 on DIR/data (a fresh master key
# in DIR/master.key, its log in DIR/sealcached.log), in the background; returns once it has
# written its admin token. Sets `port` and `server` (its pid).
start_sealcached() {
  head -c 32 /dev/urandom >"$2/master.key"
  chmod 600 "$2/master.key"
  port=$(free_port)
  "$1" --data "$2/data" --master-key "file:$2/master.key" --port "$port" \
    --threads 2 >"$2/sealcached.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do [[ -s "$2/data/admin.token" ]] && break; sleep 0.1; done
}

# start_resp_sealcached SEALCACHED DIR [OPTION...]: `sealcached --dev` on DIR/data with the
# Redis front on a free port (its log in DIR/sealcached.log), in the background, with the
# OPTIONs added; returns once the front listens. Sets `server` (its pid), `resp_port`,
# `native_port`, and `resp_auth`: the redis-cli / redis-benchmark options of org `bench`
# (dimension 4), which it creates.
start_resp_sealcached() {
  local sealcached=$1 dir=$2
  shift 2
  "$sealcached" --dev --data "$dir/data" --port 0 --resp-port 0 "$@" >"$dir/sealcached.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    grep -q "Redis protocol on" "$dir/sealcached.log" 2>/dev/null && break
    sleep 0.1
  done
  resp_port=$(sed -n 's/.*Redis protocol on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/sealcached.log")
  native_port=$(sed -n 's/.*serving .* on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/sealcached.log")
  [[ -n "$resp_port" && -n "$native_port" ]] || { cat "$dir/sealcached.log"; return 1; }
  local admin token
  admin=$(cat "$dir/data/admin.token")
  token=$(redis-cli -p "$resp_port" --user admin --pass "$admin" --no-auth-warning \
    SEALCACHE.CREATEORG bench 4 | sed -n 4p)
  resp_auth=(--user bench -a "$token")
}
