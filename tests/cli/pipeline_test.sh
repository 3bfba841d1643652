#!/usr/bin/env bash
# The command line end to end on the real HotpotQA sample: convert, index,
# search (text and JSON), recall; then resume and rerun behaviour.
set -euo pipefail
steper=$1 shared=$2 fixtures=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$steper" -q convert --format ircot "$shared/ircot/hotpotqa_dev_subsampled.jsonl" --out "$work/hp" > "$work/convert.out"
grep -q "wrote 500 questions" "$work/convert.out" || fail "convert summary: $(cat "$work/convert.out")"
[ "$(wc -l < "$work/hp/questions.jsonl")" -eq 500 ] || fail "questions.jsonl should have 500 lines"

"$steper" -q index --corpus "$work/hp/corpus.jsonl" --out "$work/idx" > "$work/index.out"
grep -q "indexed" "$work/index.out" || fail "index summary"
"$steper" -q index --corpus "$work/hp/corpus.jsonl" --out "$work/idx" | grep -q "nothing to do" || fail "rerun should be a no-op"

"$steper" search --index "$work/idx" --k 3 "Shirley Temple Chief of Protocol" > "$work/search.out"
grep -q "Shirley Temple" "$work/search.out" || fail "search text output"
"$steper" search --index "$work/idx" --k 4 --json "Corliss Archer Kiss and Tell" > "$work/search.json"
/usr/bin/env python3 - "$work/search.json" <<'PY' || fail "search --json output"
import json, sys
hits = json.load(open(sys.argv[1]))
assert isinstance(hits, list) and len(hits) == 4, hits
assert all(set(h) == {"id", "title", "text", "score"} for h in hits)
assert hits[0]["score"] >= hits[-1]["score"]
PY

"$steper" -q recall --index "$work/idx" --questions "$work/hp/questions.jsonl" --k 2,5,10 --json "$work/recall.json" > "$work/recall.out"
/usr/bin/env python3 - "$work/recall.json" <<'PY' || fail "recall figures out of range"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["questions"] == 500
assert 0.4 < r["recall@2"] < r["recall@5"] < r["recall@10"] <= 1.0, r
PY
echo "cli pipeline ok"
