#!/usr/bin/env bash
# Installs every Debian package the build, tests and benches need (only what is missing;
# `apt-get update` only when something is), then configures and builds into build/.
#
#   tools/setup.sh            # install what is missing, configure, build
#   SEALCACHE_SANITIZERS=0 tools/setup.sh   # without the sanitizer suites' clang packages
#   BUILD_DIR=out tools/setup.sh
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

PACKAGES=(
  cmake g++ make pkg-config ccache
  libssl-dev
  # AES-256-GCM with VAES/AVX-512 for the encrypted files' chunks (crypto/src/fast_gcm.h).
  libipsec-mb-dev
  librocksdb-dev rocksdb-tools libzstd-dev liblz4-dev libsnappy-dev libbz2-dev
  libfaiss-dev libopenblas-dev
  libflatbuffers-dev flatbuffers-compiler
  libboost-dev libboost-program-options-dev
  libgtest-dev libbenchmark-dev
  # The PKCS#11 header of the pkcs11: master key provider (the module is loaded at run time).
  libp11-kit-dev
  # Real Redis clients for the Redis-protocol front's tests (label `resp`): redis-cli 7.0 and
  # redis-py 4.3.4 (Debian 12's versions; redis-py is seen only by /usr/bin/python3).
  redis-tools python3-redis
  # The peer of the Redis-protocol benchmark (bench/resp_vs_redis.sh), started by the script
  # itself on a free port; redis-benchmark comes with redis-tools.
  redis-server
  # Master key providers' real servers for the `keys` tests: a SoftHSM2 token (softhsm2-util)
  # and opensc's pkcs11-tool to make its AES key; PyKMIP's KMIP server and client (seen only
  # by /usr/bin/python3).
  softhsm2 opensc python3-pykmip
  # The in-process peer of the lookup benchmark (bench/faiss_peer.py): Debian's FAISS with its
  # Python bindings (seen only by /usr/bin/python3).
  python3-faiss
  # The cluster's coordination store (server/CLUSTER.md) and the `cluster` tests' real etcd
  # (3.4, started by each test on free loopback ports; Debian's package may also enable its
  # own etcd service on a machine with systemd, which the tests do not use).
  etcd-server
)
# The sanitizer suites of `quickstart.sh test` (not needed with SEALCACHE_SANITIZERS=0):
# clang with its sanitizer and libFuzzer runtimes, its OpenMP headers, llvm-symbolizer.
if [[ "${SEALCACHE_SANITIZERS:-1}" != 0 ]]; then
  PACKAGES+=(clang-14 libclang-rt-14-dev libomp-14-dev llvm-14)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing missing packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: not root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

# Real Node.js clients for the Redis-protocol front's tests (node-redis 4.7 and 6, ioredis 6,
# @langchain/redis): pinned by tests/resp/node/package-lock.json, installed with `npm ci` (the
# only download, here, never at test time). They need Node 20 (on the CI machines); Debian's
# nodejs is used where none is installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: Node.js 20 and npm are needed for tests/resp/node" >&2
    exit 1
  fi
  apt-get install -y -q nodejs npm
fi
node_dir=tests/resp/node
if [[ ! -d $node_dir/node_modules || $node_dir/package-lock.json -nt $node_dir/node_modules ]]; then
  echo "setup: installing the Node.js test clients (npm ci in $node_dir)"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$node_dir/node_modules"
fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
