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
