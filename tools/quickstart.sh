#!/usr/bin/env bash
# The README's two quick-start commands.
#
#   tools/quickstart.sh run    set up, build, and run the main job
#   tools/quickstart.sh test   set up, build, and run the whole test suite (ctest), then the
#                              sanitizer suites (tests/fuzz/README.md):
#                                build-asan: clang-14 ASan+UBSan (+libFuzzer) tree, tests
#                                  labelled `sanitize` but not `slow`, and the bounded
#                                  60 s fuzz run (label `fuzz`)
#                                build-tsan: clang-14 TSan tree, the same tests
#                              SEALCACHE_SANITIZERS=0 skips them (a quick local run).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
export BUILD_DIR
SANITIZER_CXX=${SANITIZER_CXX:-clang++-14}

# Configures and builds one sanitizer tree (test binaries only) and runs its suite without
# the `slow` tests: sanitizer_suite DIR SANITIZERS [CMAKE_ARGS...]
sanitizer_suite() {
  local dir=$1 sanitizers=$2
  shift 2
  echo "quickstart: sanitizer suite ${sanitizers} in ${dir}"
  cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER="$SANITIZER_CXX" -DCMAKE_BUILD_TYPE=Debug \
    -DSEALCACHE_SANITIZE="$sanitizers" "$@" >/dev/null
  cmake --build "$dir" -j "${JOBS:-$(nproc)}"
  (cd "$dir" && ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 600 -L sanitize -LE slow)
}

case "${1:-}" in
  run)
    tools/setup.sh
    # Embedded default: data in ./data, a generated development master key (0600) beside
    # it, 127.0.0.1:7420. The admin token is written to ./data/admin.token on first start.
    exec "$BUILD_DIR/server/sealcached" --dev "${@:2}"
    ;;
  test)
    tools/setup.sh
    (cd "$BUILD_DIR" && ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 600)
    if [[ "${SEALCACHE_SANITIZERS:-1}" != 0 ]]; then
      sanitizer_suite "${ASAN_BUILD_DIR:-build-asan}" address,undefined -DSEALCACHE_FUZZ=ON
      sanitizer_suite "${TSAN_BUILD_DIR:-build-tsan}" thread
    fi
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
