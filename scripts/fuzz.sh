#!/usr/bin/env bash
# Builds every fuzz target with clang, the steper code it reaches
# instrumented (ASan, UBSan, coverage), and runs each for SECONDS from its
# corpus in fuzz/corpus/NAME (new inputs go to a scratch folder; copy the
# ones worth keeping). Prints, per target, the runs and the edges covered.
#   scripts/fuzz.sh [SECONDS]                 default 60, the parsers without LibTorch
#   STEPER_FUZZ_SEED=0 scripts/fuzz.sh 60     a random seed (default 1: a run repeats, as CI needs)
#   STEPER_FUZZ_TORCH=ON scripts/fuzz.sh 60   also safetensors, config.json, experiment configs and
#                                             raw HTTP requests to a running steper serve
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${STEPER_FUZZ_BUILD_DIR:-build-fuzz}
CXX=${CXX:-clang++} cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DSTEPER_BUILD_FUZZ=ON \
  -DSTEPER_BUILD_TESTS=OFF -DSTEPER_BUILD_BENCH=OFF -DSTEPER_WITH_TORCH="${STEPER_FUZZ_TORCH:-OFF}" > /dev/null
cmake --build "$build" -j "$(nproc)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for fuzzer in "$build"/fuzz/*_fuzz; do
  name=$(basename "$fuzzer")
  mkdir -p "$scratch/$name" "fuzz/corpus/$name"
  if ! (cd "$scratch" && ASAN_OPTIONS=detect_leaks=1 "$OLDPWD/$fuzzer" -max_total_time="$seconds" -seed="${STEPER_FUZZ_SEED:-1}" -print_final_stats=1 \
        -rss_limit_mb=4096 "$name" "$OLDPWD/fuzz/corpus/$name" > "$name.log" 2>&1); then
    echo "$name: FAILED (crash input and log in $build/fuzz-failures/$name)"
    mkdir -p "$build/fuzz-failures/$name"
    cp "$scratch/$name.log" "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* "$scratch"/oom-* "$build/fuzz-failures/$name/" 2>/dev/null || true
    tail -40 "$scratch/$name.log"
    status=1
    continue
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$name.log" | grep -o '[0-9]*$' || echo "?")
  edges=$(grep -o 'cov: [0-9]*' "$scratch/$name.log" | tail -1 | grep -o '[0-9]*' || echo "?")
  echo "$name: $runs runs in ${seconds}s, $edges edges covered"
done
exit $status
