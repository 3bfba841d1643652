#!/usr/bin/env bash
# The real recipe's loop on IRCoT's HotpotQA subsample, with `steper serve`
# standing in for the teacher (no real weights can be had here, so this shows
# the mechanics, not accuracy): a ChatML chat template in the model folder,
# `run --chat` with IRCoT's protocol and demonstrations against the server,
# `stepwise` through the student's template, `train`, `eval`.
set -euo pipefail
steper=$1 data=$2 fixtures=$3
work=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$steper" -q convert --format ircot "$data/ircot/hotpotqa_dev_subsampled.jsonl" --out "$work/hp" > /dev/null
"$steper" -q index --corpus "$work/hp/corpus.jsonl" --out "$work/idx" > /dev/null
head -n 8 "$work/hp/questions.jsonl" > "$work/q8.jsonl"

# A small model of our own, made a chat model by a template in its folder.
"$steper" -q tokenizer train --corpus "$work/hp/corpus.jsonl" --vocab-size 600 --max-texts 3000 --out "$work/tok" > /dev/null 2>&1
"$steper" -q pretrain --data "$work/hp/corpus.jsonl" --tokenizer "$work/tok" --out "$work/lm" \
  --dim 32 --layers 1 --heads 2 --seq-len 64 --batch 4 --steps 3 > "$work/pt.out" 2>&1 || fail "pretrain: $(cat "$work/pt.out")"
cp "$fixtures/chat_templates/chatml.jinja" "$work/lm/chat_template.jinja"

"$steper" serve --model "$work/lm" --port 0 > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
for _ in $(seq 1 100); do grep -q "serving" "$work/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http[^ ]*\)$/\1/p' "$work/serve.out")
[ -n "$url" ] || fail "serve did not start: $(cat "$work/serve.err")"

demos="$data/ircot/prompts/hotpotqa/gold_with_2_distractors_context_cot_qa_codex.txt"
# K 1 and a demonstration budget that leave every prompt inside the toy
# model's 2048 tokens (its 600-piece vocabulary spends ~2.5 bytes a token).
"$steper" -q run --model "$url,http://127.0.0.1:1/v1" --chat --chat-template "$work/lm" --protocol ircot \
  --demos "$demos" --demo-budget 400 --index "$work/idx" --questions "$work/q8.jsonl" --out "$work/teacher.jsonl" \
  --k 1 --max-steps 2 --step-tokens 12 --max-backoff 1 > "$work/run.out" 2>&1 || fail "run: $(cat "$work/run.out")"
grep -q "8 traces" "$work/run.out" || fail "run summary: $(cat "$work/run.out")"
/usr/bin/env python3 - "$work/teacher.jsonl" <<'PY' || fail "IRCoT protocol in the traces"
import json, sys
traces = [json.loads(l) for l in open(sys.argv[1])]
assert len(traces) == 8
for t in traces:
    assert t["stop"] in ("answer", "max_steps"), t["stop"]  # the dead endpoint cost nothing
    first = t["steps"][0]["query"].lower().split()
    assert not {"who", "what", "which", "when", "where", "how", "is", "does"} & set(first), t["steps"][0]["query"]
PY
# A remote model's template is required with --chat.
"$steper" -q run --model "$url" --chat --index "$work/idx" --questions "$work/q8.jsonl" --out "$work/x.jsonl" \
  > /dev/null 2> "$work/chat.err" && fail "--chat with a remote model and no template should fail"
grep -q "needs its chat template" "$work/chat.err" || fail "remote --chat message: $(cat "$work/chat.err")"

# The traces say how they were made (ircot protocol, index, templates): no
# --corpus, no --protocol. Stating a setting other than the run's is refused.
"$steper" stepwise --traces "$work/teacher.jsonl" --questions "$work/hp/questions.jsonl" --keep all \
  --chat-template "$work/lm" --out "$work/samples.jsonl" > "$work/sw.out" 2>&1 || fail "stepwise: $(cat "$work/sw.out")"
rc=0
"$steper" stepwise --traces "$work/teacher.jsonl" --questions "$work/hp/questions.jsonl" --keep all --protocol steper \
  --out "$work/other.jsonl" > /dev/null 2> "$work/sw.err" || rc=$?
[ $rc -eq 2 ] || fail "a protocol other than the run's should fail with 2, got $rc"
grep -q "was given, but the run that made these traces used" "$work/sw.err" || fail "stepwise mismatch message: $(cat "$work/sw.err")"
/usr/bin/env python3 - "$work/samples.jsonl" <<'PY' || fail "chat samples"
import json, sys
samples = [json.loads(l) for l in open(sys.argv[1])]
assert samples, "no samples"
for s in samples:
    assert s["chat"] is True
    assert s["prompt"].startswith("<|im_start|>user\n"), s["prompt"][:80]
    assert s["prompt"].endswith("<|im_start|>assistant\n"), s["prompt"][-80:]
PY
"$steper" -q train --data "$work/samples.jsonl" --init "$work/lm" --out "$work/student" --steps 2 --batch 2 \
  > "$work/train.out" 2>&1 || fail "train: $(cat "$work/train.out")"
"$steper" eval --traces "$work/teacher.jsonl" --questions "$work/hp/questions.jsonl" > "$work/eval.out" 2>&1 || fail "eval: $(cat "$work/eval.out")"
grep -qi "em" "$work/eval.out" || fail "eval output: $(cat "$work/eval.out")"
kill -INT "$serve_pid"
wait "$serve_pid" || true
serve_pid=
echo "cli real setting ok"
