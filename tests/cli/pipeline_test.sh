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

# The synthetic world: deterministic, indexable, and its gold traces score
# perfectly while step-wise retrieval finds more evidence than the question.
"$steper" world --seed 3 --questions 600 --out "$work/w1" > "$work/world.out"
"$steper" world --seed 3 --questions 600 --out "$work/w2" > /dev/null
cmp -s "$work/w1/gold_traces.jsonl" "$work/w2/gold_traces.jsonl" || fail "world is not deterministic"
grep -q "wrote a world of" "$work/world.out" || fail "world summary"
"$steper" -q index --corpus "$work/w1/corpus.jsonl" --out "$work/w1/index" > /dev/null
"$steper" -q recall --index "$work/w1/index" --questions "$work/w1/dev.jsonl" --k 4 --json "$work/q.json" > /dev/null
"$steper" -q recall --index "$work/w1/index" --questions "$work/w1/dev.jsonl" --k 4 --traces "$work/w1/gold_traces.jsonl" --json "$work/s.json" > /dev/null
"$steper" eval --traces "$work/w1/gold_traces.jsonl" --questions "$work/w1/dev.jsonl" --json "$work/eval.json" > "$work/eval.out" 2> "$work/eval.err"
grep -q "ignored" "$work/eval.err" || fail "eval should say it ignored traces of other splits"
/usr/bin/env python3 - "$work" <<'PY' || fail "world recall / eval figures"
import json, sys
w = sys.argv[1]
q, s = json.load(open(f"{w}/q.json")), json.load(open(f"{w}/s.json"))
assert s["recall@4"] > q["recall@4"] + 0.2, (q["recall@4"], s["recall@4"])
e = json.load(open(f"{w}/eval.json"))[f"{w}/w1/gold_traces.jsonl"]
assert e["em"] == 1.0 and e["f1"] == 1.0 and e["acc"] == 1.0 and e["missing"] == 0, e
assert e["supporting_recall"] == 1.0, e
assert set(e["by_type"]) >= {"compositional", "comparison", "bridge_comparison"}, e["by_type"].keys()
PY
echo "cli world ok"

# A tokenizer trained on the world's corpus round-trips its text.
"$steper" -q tokenizer train --corpus "$work/w1/corpus.jsonl" --vocab-size 800 --out "$work/tok" > "$work/tok.out" 2>/dev/null
grep -q "trained a bpe tokenizer" "$work/tok.out" || fail "tokenizer train: $(cat "$work/tok.out")"
"$steper" tokenizer encode --tokenizer "$work/tok" "Who was born first?" | head -1 | grep -q "tokens:" || fail "tokenizer encode"
"$steper" tokenizer train --corpus "$work/w1/corpus.jsonl" --field nope --out "$work/tok2" > /dev/null 2> "$work/tok.err" && fail "a missing field should fail"
grep -q "corpus.jsonl:1: field 'nope': missing" "$work/tok.err" || fail "tokenizer field error: $(cat "$work/tok.err")"
echo "cli tokenizer ok"

# One process with LibTorch and SentencePiece (they once clashed over
# protobuf): pretrain a tiny model on the world, generate, and check the
# folder is in Hugging Face layout.
"$steper" -q pretrain --data "$work/w1/corpus.jsonl" --tokenizer "$work/tok" --out "$work/lm" \
  --dim 32 --layers 1 --heads 2 --seq-len 32 --batch 4 --steps 3 > "$work/pt.out" 2>&1 || fail "pretrain: $(cat "$work/pt.out")"
# A job stopped by SIGTERM (a supervisor, a batch system) saves its work and
# exits 143, as a shell reports a process that signal ended; Ctrl-C is 130.
for sig in TERM INT; do
  "$steper" pretrain --data "$work/w1/corpus.jsonl" --tokenizer "$work/tok" --out "$work/lm_$sig" \
    --dim 32 --layers 1 --heads 2 --seq-len 32 --batch 4 --steps 1000000 --save-every 5 > "$work/pt_$sig.out" 2>&1 &
  pt_pid=$!
  for _ in $(seq 1 300); do [ -f "$work/lm_$sig/config.json" ] && break; sleep 0.1; done
  kill -$sig "$pt_pid"
  code=0; wait "$pt_pid" || code=$?
  want=$([ "$sig" = TERM ] && echo 143 || echo 130)
  [ "$code" = "$want" ] || fail "pretrain stopped by SIG$sig should exit $want, not $code: $(cat "$work/pt_$sig.out")"
  grep -q "interrupted at step" "$work/pt_$sig.out" || fail "pretrain stopped by SIG$sig: $(cat "$work/pt_$sig.out")"
done
# The same command again says where it resumes from before it trains.
"$steper" pretrain --data "$work/w1/corpus.jsonl" --tokenizer "$work/tok" --out "$work/lm_TERM" \
  --dim 32 --layers 1 --heads 2 --seq-len 32 --batch 4 --steps 1000000 --save-every 5 > "$work/pt_resume.out" 2>&1 &
pt_pid=$!
for _ in $(seq 1 300); do grep -q "resuming from step" "$work/pt_resume.out" && break; sleep 0.1; done
kill -INT "$pt_pid"; wait "$pt_pid" || true
grep -Eq "pretrain: resuming from step [1-9][0-9]* of 1000000" "$work/pt_resume.out" || fail "pretrain resume message: $(cat "$work/pt_resume.out")"
"$steper" generate --model "$work/lm" --prompt "The capital of" --max-new-tokens 4 > "$work/gen.out" 2> "$work/gen.err" || fail "generate: $(cat "$work/gen.err")"
grep -q "new tokens/s" "$work/gen.err" || fail "generate stats"
# The same prompt from a file, from standard input (quiet: nothing on
# stderr), and as JSON lines.
printf 'The capital of' > "$work/prompt.txt"
"$steper" generate --model "$work/lm" --prompt-file "$work/prompt.txt" --max-new-tokens 4 > "$work/gen_file.out" 2>/dev/null \
  || fail "generate --prompt-file"
cmp -s "$work/gen.out" "$work/gen_file.out" || fail "generate --prompt-file differs from --prompt"
"$steper" -q generate --model "$work/lm" --max-new-tokens 4 < "$work/prompt.txt" > "$work/gen_stdin.out" 2> "$work/gen_stdin.err" \
  || fail "generate from stdin: $(cat "$work/gen_stdin.err")"
cmp -s "$work/gen.out" "$work/gen_stdin.out" || fail "generate from stdin differs from --prompt"
[ ! -s "$work/gen_stdin.err" ] || fail "generate -q wrote to stderr: $(cat "$work/gen_stdin.err")"
"$steper" generate --model "$work/lm" --prompt "The capital of" --prompt-file - --json --max-new-tokens 4 \
  < "$work/prompt.txt" > "$work/gen.jsonl" 2>/dev/null || fail "generate --json"
/usr/bin/python3 - "$work/gen.jsonl" "$work/gen.out" <<'PY' || fail "generate --json lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
text = open(sys.argv[2]).read()[:-1]
assert [l["index"] for l in lines] == [0, 1], lines
for l in lines:
    assert l["prompt"] == "The capital of" and l["text"] == text, l
    assert l["finish"] in ("eos", "stop", "length") and l["prompt_tokens"] > 0 and 0 < l["completion_tokens"] <= 4, l
PY
# A complete Hugging Face folder, read by Debian's PyTorch with a plain
# safetensors reader (the format is a JSON header and raw bytes), the
# training state apart, and the optimizer's file as docs/checkpoints.md says.
/usr/bin/python3 - "$work/lm" <<'PY' || fail "model folder layout"
import json, os, struct, sys
import torch
d = sys.argv[1]
c = json.load(open(f"{d}/config.json"))
assert c["model_type"] == "llama" and c["architectures"] == ["LlamaForCausalLM"], c
assert c["hidden_size"] == 32 and c["num_hidden_layers"] == 1 and c["num_attention_heads"] == 2, c
assert c["pad_token_id"] == 3 and c["bos_token_id"] == 1 and c["eos_token_id"] == 2, c
for f in ("model.safetensors", "tokenizer.model", "train_log.jsonl", "generation_config.json",
          "tokenizer_config.json", "special_tokens_map.json", "trainer_state/trainer_state.json",
          "trainer_state/optimizer.torchscript"):
    assert os.path.exists(f"{d}/{f}"), f
for f in ("optimizer.pt", "trainer_state.json", "optimizer.torchscript"):
    assert not os.path.exists(f"{d}/{f}"), f"{f} beside the model"
t = json.load(open(f"{d}/tokenizer_config.json"))
assert (t["bos_token"], t["eos_token"], t["pad_token"], t["unk_token"]) == ("<s>", "</s>", "<pad>", "<unk>"), t
assert t["add_bos_token"] is True and t["tokenizer_class"] == "LlamaTokenizer", t
m = json.load(open(f"{d}/special_tokens_map.json"))
assert m == {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}, m
g = json.load(open(f"{d}/generation_config.json"))
assert (g["bos_token_id"], g["eos_token_id"], g["pad_token_id"]) == (1, 2, 3), g
raw = open(f"{d}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
base = 8 + n
dtypes = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
for name, info in header.items():
    if name == "__metadata__":
        continue
    a, b = info["data_offsets"]
    w = torch.frombuffer(bytearray(raw[base + a:base + b]), dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    assert torch.isfinite(w).all(), name
emb = header["model.embed_tokens.weight"]["shape"]
assert emb == [c["vocab_size"], 32], emb
# docs/checkpoints.md's reading of the optimizer's state: every matrix and
# vector of the model has its moments, shaped like it.
m = torch.jit.load(f"{d}/trainer_state/optimizer.torchscript")
shapes = sorted(tuple(i["shape"]) for k, i in header.items() if k != "__metadata__")
moments = []
for g in range(m.param_groups._c.getattr("param_groups/size")):
    group = m.param_groups._c.getattr(f"param_groups/{g}")
    assert group.getattr("options").getattr("weight_decay") == (0.0 if g == 1 else 0.1), g
    for j in range(group.getattr("params/size")):
        s = m.state._c.getattr(group.getattr(f"params/{j}"))
        assert s.getattr("step") == 3 and s.getattr("exp_avg_sq").shape == s.getattr("exp_avg").shape
        moments.append(tuple(s.getattr("exp_avg").shape))
assert sorted(moments) == shapes, (moments, shapes)
PY
echo "cli model ok"

# The reasoning engine: steper run with the local model, then the same run
# through steper serve on loopback (the remote backend); greedy traces agree.
head -n 12 "$work/w1/dev.jsonl" > "$work/dev12.jsonl"
"$steper" -q run --model "$work/lm" --index "$work/w1/index" --questions "$work/dev12.jsonl" --out "$work/local.jsonl" \
  --max-steps 2 --step-tokens 8 > "$work/run.out" 2>&1 || fail "run: $(cat "$work/run.out")"
grep -q "12 traces" "$work/run.out" || fail "run summary: $(cat "$work/run.out")"
"$steper" run --model "$work/lm" --index "$work/w1/index" --questions "$work/dev12.jsonl" --out "$work/local.jsonl" \
  --max-steps 2 --step-tokens 8 > "$work/run2.out" 2>&1 || fail "rerun: $(cat "$work/run2.out")"
grep -q "12 were already there" "$work/run2.out" || fail "rerun should skip finished ids: $(cat "$work/run2.out")"
grep -q "run: resuming: 12 of 12 questions already done in" "$work/run2.out" || fail "run resume message: $(cat "$work/run2.out")"
"$steper" serve --model "$work/lm" --port 0 > "$work/serve.out" 2> "$work/serve.err" &
serve_pid=$!
for _ in $(seq 1 100); do grep -q "serving" "$work/serve.out" && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http[^ ]*\)$/\1/p' "$work/serve.out")
[ -n "$url" ] || fail "serve did not start: $(cat "$work/serve.err")"
"$steper" -q run --model "$url" --index "$work/w1/index" --questions "$work/dev12.jsonl" --out "$work/remote.jsonl" \
  --max-steps 2 --step-tokens 8 > "$work/run3.out" 2>&1 || fail "remote run: $(cat "$work/run3.out")"
cmp -s <(sort "$work/local.jsonl") <(sort "$work/remote.jsonl") || fail "remote traces differ from local ones"
code=$(curl -s -o "$work/bad.json" -w '%{http_code}' -d '{"prompt": 3}' "$url/completions" || true)
if command -v curl > /dev/null; then
  [ "$code" = 400 ] || fail "bad request: HTTP $code"
  grep -q "'prompt' must be a string" "$work/bad.json" || fail "bad request body: $(cat "$work/bad.json")"
fi
kill -INT "$serve_pid"
wait "$serve_pid" || fail "serve should exit cleanly on Ctrl-C: $(cat "$work/serve.err")"
"$steper" run --model "http://127.0.0.1:1/v1" --model-name m --retries 0 --index "$work/w1/index" \
  --questions "$work/dev12.jsonl" --out "$work/none.jsonl" > /dev/null 2> "$work/unreach.err" && fail "an unreachable endpoint should fail"
grep -q "cannot reach http://127.0.0.1:1/v1" "$work/unreach.err" || fail "unreachable message: $(cat "$work/unreach.err")"
echo "cli run/serve ok"

# Step-wise distillation: samples from the gold traces, a few training steps.
"$steper" stepwise --traces "$work/w1/gold_traces.jsonl" --questions "$work/w1/train.jsonl" --corpus "$work/w1/corpus.jsonl" \
  --out "$work/samples.jsonl" > "$work/sw.out" 2>&1 || fail "stepwise: $(cat "$work/sw.out")"
grep -q "init" "$work/sw.out" && grep -q "aggregate" "$work/sw.out" || fail "stepwise counts: $(cat "$work/sw.out")"
"$steper" -q train --data "$work/samples.jsonl" --init "$work/lm" --out "$work/student" --steps 3 --batch 2 \
  > "$work/train.out" 2>&1 || fail "train: $(cat "$work/train.out")"
grep -q '"weight_init"' "$work/student/metrics.jsonl" || fail "train metrics"
# LoRA: adapters only, merged on the last save, so the folder is a plain model.
"$steper" -q train --data "$work/samples.jsonl" --init "$work/lm" --out "$work/student_lora" --steps 3 --batch 2 \
  --lora-rank 2 --lora-targets q_proj,v_proj,down_proj > "$work/lora.out" 2>&1 || fail "train --lora-rank: $(cat "$work/lora.out")"
[ ! -e "$work/student_lora/adapter_model.safetensors" ] || fail "the adapters should be merged at the end"
"$steper" generate --model "$work/student_lora" --prompt "Q:" --max-new-tokens 3 > /dev/null 2>&1 || fail "the merged LoRA model should load"
"$steper" -q train --data "$work/samples.jsonl" --init "$work/lm" --out "$work/student_lora2" --steps 1 --lora-rank 2 \
  --lora-targets qkv > /dev/null 2> "$work/lora.err" && fail "an unknown LoRA target should fail"
grep -q "unknown LoRA target 'qkv'" "$work/lora.err" || fail "LoRA target message: $(cat "$work/lora.err")"
"$steper" stepwise --traces "$work/w1/gold_traces.jsonl" --questions "$work/w1/train.jsonl" --corpus "$work/hp/corpus.jsonl" \
  --out "$work/bad_samples.jsonl" > /dev/null 2> "$work/sw.err" && fail "a corpus without the traced ids should fail"
grep -q "which the corpus does not have" "$work/sw.err" || fail "stepwise corpus message: $(cat "$work/sw.err")"
# Gold traces record no run: their passages need --corpus, and the error says so.
"$steper" stepwise --traces "$work/w1/gold_traces.jsonl" --questions "$work/w1/train.jsonl" \
  --out "$work/bad_samples.jsonl" > /dev/null 2> "$work/sw.err" && fail "gold traces without --corpus should fail"
grep -q "hint: give --corpus" "$work/sw.err" || fail "stepwise no-index message: $(cat "$work/sw.err")"
# Data parallel as torchrun launches it (its agent hosts the store; Debian's
# torchrun on Python 3.11 needs non-zero --redirects/--tee to start at all).
if command -v torchrun > /dev/null; then
  port=$(/usr/bin/env python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  (cd "$work" && timeout 300 torchrun --redirects 2 --tee 2 --no_python --nproc_per_node 2 --master_port "$port" "$steper" -q train \
    --data samples.jsonl --init lm --out student_dp --steps 3 --batch 2 > dp.out 2>&1) || fail "torchrun train: $(cat "$work/dp.out")"
  [ "$(grep -c '^' "$work/student_dp/metrics.jsonl")" = 3 ] || fail "torchrun train: rank 0 should log 3 steps"
  [ "$(grep -c 'trained ' "$work/dp.out")" = 1 ] || fail "torchrun train: only rank 0 reports: $(cat "$work/dp.out")"
  grep -q 'rank 1 of 2' "$work/dp.out" || fail "torchrun train: rank 1 did not join: $(cat "$work/dp.out")"
fi
RANK=2 WORLD_SIZE=2 "$steper" -q train --data "$work/samples.jsonl" --init "$work/lm" --out "$work/dp_bad" --steps 1 \
  > /dev/null 2> "$work/dp.err" && fail "RANK >= WORLD_SIZE should fail"
grep -q "RANK=2 is not below WORLD_SIZE=2" "$work/dp.err" || fail "launcher variables message: $(cat "$work/dp.err")"
echo "cli distill ok"
