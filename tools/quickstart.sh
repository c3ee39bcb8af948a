#!/usr/bin/env bash
# The README's two quick-start commands.
#
#   tools/quickstart.sh run    set up, build, and run the main job
#   tools/quickstart.sh test   set up, build, and run the whole test suite (ctest)
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
export BUILD_DIR

case "${1:-}" in
  run)
    tools/setup.sh
    echo "quickstart: built. The server (sealcached) is not part of this build yet;"
    echo "quickstart: once it is, this command will run:"
    echo "  $BUILD_DIR/server/sealcached --data ./data --master-key file:./data/master.key \\"
    echo "      --listen 127.0.0.1:7420"
    echo "quickstart: what exists now: the crypto library and its benchmark:"
    echo "  $BUILD_DIR/bench/crypto_bench"
    ;;
  test)
    tools/setup.sh
    cd "$BUILD_DIR"
    ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 600
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
