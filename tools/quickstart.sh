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
    # Embedded default: data in ./data, a generated development master key (0600) beside
    # it, 127.0.0.1:7420. The admin token is written to ./data/admin.token on first start.
    exec "$BUILD_DIR/server/sealcached" --dev "${@:2}"
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
