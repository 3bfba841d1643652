#!/usr/bin/env bash
# The main job until `steper demo` exists: the real HotpotQA sample through
# convert -> index -> search -> recall, in a temporary folder (or $1).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
steper="$root/${STEPER_BUILD_DIR:-build}/steper"
sample="$root/tests/fixtures/data/ircot/hotpotqa_dev_subsampled.jsonl"
out=${1:-$(mktemp -d)}
[ -f "$sample" ] || { echo "missing $sample (the shared data folder beside the checkout)" >&2; exit 2; }

set -x
"$steper" convert --format ircot "$sample" --out "$out/hotpotqa"
"$steper" index --corpus "$out/hotpotqa/corpus.jsonl" --out "$out/hotpotqa/index"
"$steper" search --index "$out/hotpotqa/index" --k 3 "What government position was held by the woman who portrayed Corliss Archer?"
"$steper" recall --index "$out/hotpotqa/index" --questions "$out/hotpotqa/questions.jsonl" --k 2,5,10
