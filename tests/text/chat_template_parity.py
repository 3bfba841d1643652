#!/usr/bin/env python3
"""steper's chat templates against jinja2 itself, rendered as Hugging Face
transformers renders them (apply_chat_template with tokenize=False).

For each template, random conversations (seeded) are rendered by jinja2 here
and by `steper tokenizer chat`; every line must match byte for byte. Cases on
which jinja2 raises must make steper fail too (exit 2, naming the line).

usage: chat_template_parity.py STEPER FIXTURES_DIR [CASES_PER_TEMPLATE]
"""
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers replaces jinja2's tojson (which escapes HTML) with this
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def special_tokens(config):
    out = {}
    for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        v = config.get(k)
        if isinstance(v, dict):
            v = v.get("content")
        if v is not None:
            out[k] = v
    if isinstance(config.get("additional_special_tokens"), list):
        out["additional_special_tokens"] = [t["content"] if isinstance(t, dict) else t for t in config["additional_special_tokens"]]
    return out


def render(template, special, case):
    messages = case["messages"]
    cont = case.get("continue_final_message", False)
    kwargs = dict(special)
    kwargs.update(case.get("variables", {}))
    kwargs.setdefault("tools", None)
    kwargs.setdefault("documents", None)
    kwargs["add_generation_prompt"] = case.get("add_generation_prompt", False)
    out = environment().from_string(template).render(messages=messages, **kwargs)
    if cont:
        final = messages[-1]["content"]
        if isinstance(final, list):
            final = [b["text"] for b in final if "text" in b][-1]
        if final.strip() not in out:
            raise ValueError("the final message does not appear in the rendering")
        at = out.rindex(final.strip())
        if out[at:at + len(final.lstrip())] == final:
            out = out[:at + len(final.lstrip())]
        else:
            out = out[:at + len(final.strip())]
    return out


PIECES = ["Who was born first?", "Ada Lovelace", "So the answer is: 1815.", "  padded  ", "\n\nnewlines\n", "\t",
          "Zürich — 東京 😀", "e\u0301", "quote ' and \" and \\", "{{ not a tag }}", "{% if %}", "{# c #}", "</think>",
          "<think>reasoning</think>", "<tool_response>ok</tool_response>", "Q: x", "A: y.", "a", "", " ", "J. J. Abrams",
          "<|eot_id|>", "<|im_end|>", "line one\nline two", "ends with dot.", "\u2028sep", "None", "True", "0"]


def text(rng):
    return "".join(rng.choice(PIECES) + rng.choice(["", " ", "\n"]) for _ in range(rng.randint(0, 4)))


def conversation(rng):
    messages = []
    if rng.random() < 0.4:
        messages.append({"role": "system", "content": text(rng)})
    for _ in range(rng.randint(0, 5)):
        role = rng.choice(["user", "user", "assistant", "assistant", "tool", "system"])
        m = {"role": role, "content": text(rng)}
        r = rng.random()
        if role == "assistant" and r < 0.15:
            m["tool_calls"] = [{"type": "function", "function": {"name": rng.choice(["search", "lookup"]),
                                                                  "arguments": {"query": text(rng), "k": rng.randint(1, 9)}}}
                               for _ in range(rng.randint(1, 2))]
        elif role == "assistant" and r < 0.25:
            m["reasoning_content"] = text(rng)
        elif role == "user" and r < 0.1:
            m["content"] = [{"type": "text", "text": text(rng)}, {"type": "image"}]
        messages.append(m)
    case = {"messages": messages}
    if messages and messages[-1]["role"] == "assistant" and isinstance(messages[-1]["content"], str) \
            and messages[-1]["content"].strip() and rng.random() < 0.5:
        case["continue_final_message"] = True
    else:
        case["add_generation_prompt"] = rng.random() < 0.6
    variables = {}
    if rng.random() < 0.25:
        variables["tools"] = [{"type": "function", "function": {"name": "search", "description": text(rng),
                                                                 "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    if rng.random() < 0.2:
        variables["date_string"] = "01 Dec 2026"
    if rng.random() < 0.2:
        variables["enable_thinking"] = rng.random() < 0.5
    if variables:
        case["variables"] = variables
    return case


def steper_chat(steper, folder, template_file, cases):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for c in cases:
            f.write(json.dumps(c) + "\n")
        path = f.name
    try:
        cmd = [steper, "tokenizer", "chat", "--tokenizer", folder, "--jsonl", path]
        if template_file:
            cmd += ["--chat-template", template_file]
        return subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.unlink(path)


def main():
    steper, fixtures = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    tokenizers = os.path.join(fixtures, "data", "tokenizers")
    templates = os.path.join(fixtures, "chat_templates")
    suites = [("llama3", os.path.join(tokenizers, "llama3"), None),
              ("qwen3", os.path.join(tokenizers, "qwen3"), None),
              ("tools_dated", os.path.join(tokenizers, "llama3"), os.path.join(templates, "tools_dated.jinja")),
              ("constructs", os.path.join(tokenizers, "qwen3"), os.path.join(templates, "constructs.jinja"))]
    failures = 0
    checked = 0
    for name, folder, template_file in suites:
        config = json.load(open(os.path.join(folder, "tokenizer_config.json")))
        template = open(template_file).read() if template_file else config["chat_template"]
        special = special_tokens(config)
        rng = random.Random(name)
        good, bad = [], []
        for _ in range(n):
            case = conversation(rng)
            try:
                good.append((case, render(template, special, case)))
            except Exception as e:  # jinja2 or the continue_final_message check refused it
                bad.append((case, str(e)))
        result = steper_chat(steper, folder, template_file, [c for c, _ in good])
        if result.returncode != 0:
            print(f"{name}: steper failed: {result.stderr.strip()}")
            failures += 1
            continue
        # split on "\n" only: str.splitlines() also splits on U+2028 inside a rendering
        lines = result.stdout.split("\n")[:-1]
        if len(lines) != len(good):
            print(f"{name}: {len(lines)} lines back for {len(good)} cases")
            failures += 1
            continue
        for (case, want), line in zip(good, lines):
            got = json.loads(line)["rendered"]
            checked += 1
            if got != want:
                failures += 1
                if failures <= 5:
                    print(f"{name}: MISMATCH for {json.dumps(case)}\n  jinja2: {want!r}\n  steper: {got!r}")
        for case, why in bad[:10]:
            r = steper_chat(steper, folder, template_file, [case])
            checked += 1
            if r.returncode != 2 or ":1:" not in r.stderr:
                failures += 1
                print(f"{name}: jinja2 refused ({why}) but steper exited {r.returncode}: {r.stdout[:200]} {r.stderr[:200]}")
        print(f"{name}: {len(good)} renderings equal to jinja2's, {min(len(bad), 10)} refusals checked")
    print(f"{checked - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
