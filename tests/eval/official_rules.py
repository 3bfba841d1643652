"""The official HotpotQA answer metrics, as a reference independent of steper.

Builds perturbed predictions from the real HotpotQA sample's answers, writes
questions.jsonl and traces.jsonl for `steper eval`, runs it with
--per-question, and checks that every EM / F1 / Acc equals what these rules
give. Usage: official_rules.py STEPER IRCOT_SAMPLE WORKDIR
"""
import collections
import json
import random
import re
import string
import subprocess
import sys


def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction, ground_truth):
    p, g = normalize_answer(prediction), normalize_answer(ground_truth)
    if p in ("yes", "no", "noanswer") and p != g:
        return 0.0
    if g in ("yes", "no", "noanswer") and p != g:
        return 0.0
    pt, gt = p.split(), g.split()
    common = collections.Counter(pt) & collections.Counter(gt)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pt), same / len(gt)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction, ground_truth):
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def accuracy(prediction, ground_truth):
    return float(normalize_answer(ground_truth) in normalize_answer(prediction))


def perturb(answer, rng, others):
    choices = [
        lambda a: a,
        lambda a: a.upper(),
        lambda a: "The " + a + ".",
        lambda a: a + ", " + rng.choice(others),
        lambda a: "It was " + a + " in the end",
        lambda a: a.replace(" ", "  ") + "!",
        lambda a: " ".join(a.split()[: max(1, len(a.split()) // 2)]),
        lambda a: rng.choice(others),
        lambda a: rng.choice(["yes", "no", "Yes.", "noanswer", "no answer"]),
        lambda a: "\u00c9" + a.lower() + "\u2013(an) a",
        lambda a: "",
    ]
    return rng.choice(choices)(answer)


def main():
    steper, sample, work = sys.argv[1:4]
    rng = random.Random(7)
    rows = [json.loads(line) for line in open(sample, encoding="utf-8")]
    answers = [span for r in rows for o in r["answers_objects"] for span in o["spans"]]
    expected = {}
    with open(f"{work}/questions.jsonl", "w", encoding="utf-8") as qf, open(f"{work}/traces.jsonl", "w", encoding="utf-8") as tf:
        for r in rows:
            golds = [span for o in r["answers_objects"] for span in o["spans"]]
            for variant in range(4):
                qid = f"{r['question_id']}-{variant}"
                pred = perturb(golds[0], rng, answers)
                qf.write(json.dumps({"id": qid, "question": r["question_text"], "answers": golds}) + "\n")
                tf.write(json.dumps({"id": qid, "question": r["question_text"], "answers": golds, "strategy": "test",
                                     "steps": [], "prediction": pred, "stop": "answer"}) + "\n")
                expected[qid] = (max(exact_match(pred, g) for g in golds), max(f1_score(pred, g) for g in golds),
                                 max(accuracy(pred, g) for g in golds), pred, golds)
    subprocess.run([steper, "eval", "--traces", f"{work}/traces.jsonl", "--questions", f"{work}/questions.jsonl",
                    "--per-question", f"{work}/scores.jsonl", "--json", f"{work}/eval.json"], check=True,
                   stdout=subprocess.DEVNULL)
    got = [json.loads(line) for line in open(f"{work}/scores.jsonl", encoding="utf-8")]
    assert len(got) == len(expected), (len(got), len(expected))
    bad = [(g["id"], (g["em"], g["f1"], g["acc"]), expected[g["id"]]) for g in got
           if abs(g["em"] - expected[g["id"]][0]) > 1e-12 or abs(g["f1"] - expected[g["id"]][1]) > 1e-12
           or abs(g["acc"] - expected[g["id"]][2]) > 1e-12]
    for b in bad[:10]:
        print("MISMATCH", b)
    n = len(expected)
    summary = json.load(open(f"{work}/eval.json"))[f"{work}/traces.jsonl"]
    em = sum(v[0] for v in expected.values()) / n
    assert abs(summary["em"] - em) < 1e-9, (summary["em"], em)
    print(f"{n} perturbed predictions: {n - len(bad)} agree with the official rules; EM {em:.3f}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
