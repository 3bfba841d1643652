#!/usr/bin/env bash
# Installs every Debian package steper needs (skipping apt when all are
# present) and builds steper in Release under build/.
#   scripts/install.sh            packages + build
#   STEPER_BUILD_DIR=dir scripts/install.sh   build elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread libblas-dev libgloo-dev   # model and training (OpenBLAS: 25x faster matmuls than reference BLAS)
  libxapian-dev xapian-tools                       # BM25 index, xapian-tcpsrv remote shards
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libsentencepiece-dev
  libicu-dev                                       # NFC normalisation (Qwen's tokenizer.json)
  zlib1g-dev                                       # the trace viewer's compressed page
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev                         # the fuzzing run (scripts/fuzz.sh: libFuzzer)
  python3 python3-torch python3-jinja2             # test scripts: PyTorch for the model parity test and benchmarks,
                                                   # jinja2 for the chat-template parity test
  chromium                                         # the viewer's browser test (headless)
)
# Node and npm run the browser test; Debian's own where none is installed.
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Node clients of the tests, pinned by tests/package-lock.json:
# puppeteer-core drives Debian's Chromium in the viewer's test (it downloads
# no browser of its own); the official openai SDK talks to steper serve.
if [ ! -d tests/node_modules/openai ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi

build=${STEPER_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)"
echo "built $build/steper"
