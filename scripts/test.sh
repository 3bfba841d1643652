#!/usr/bin/env bash
# Installs and builds (scripts/install.sh), then runs every test through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
ctest --test-dir "${STEPER_BUILD_DIR:-build}" -j "$(nproc)" --output-on-failure --timeout 600
