#!/usr/bin/env bash
# Runs every test through CTest.
#   scripts/test.sh             installs and builds (scripts/install.sh) under build/, runs the suite
#   scripts/test.sh --sanitize  builds the parts without LibTorch (io, text, data, retrieve, eval:
#                               every parser of outside input) with ASan and UBSan, library and
#                               tests alike, under build-asan/, and runs their tests; any memory
#                               error, leak or undefined behaviour fails them
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--sanitize" ]; then
  build=${STEPER_ASAN_BUILD_DIR:-build-asan}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DSTEPER_SANITIZE=ON -DSTEPER_WITH_TORCH=OFF \
    -DSTEPER_BUILD_BENCH=OFF
  cmake --build "$build" -j "$(nproc)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$build" -j "$(nproc)" --output-on-failure --timeout 600
  exit
fi
scripts/install.sh
ctest --test-dir "${STEPER_BUILD_DIR:-build}" -j "$(nproc)" --output-on-failure --timeout 600
