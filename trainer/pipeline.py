"""Multi-stage recipes: the R1 pipeline as a list of stages, each with its own run directory.

```yaml
name: r1
eval: {n: 200, seed: 0}             # held-out eval after every stage -> <stage>/eval.json (full: true adds
                                    # held-out phrasings, extrapolation and out-of-scope refusals)
stages:
  - name: teacher-sft
    model: {hidden_size: 192}
    sft: {steps: 2400}
  - name: teacher-grpo
    grpo: {init: teacher-sft}       # a stage name means that stage's final checkpoint
  - name: rejection
    rejection: {init: teacher-grpo}
  - name: student-distill
    sft: {init: trainer/checkpoints/student, datasets: [rejection], teacher: teacher-grpo}
```
A stage is an SFT (`sft:`, with `model:` unless `sft.init`), a GRPO (`grpo:`) or a rejection-sampling
(`rejection:`) stage. In `init`, `teacher` and `datasets`, the name of an earlier stage stands for its
output (final checkpoint, or traces.jsonl). `--resume` skips finished stages and resumes the first
unfinished one at its last checkpoint; `pipeline.json` records each stage's output and wall time
(the checkpoints' `train_seconds` add up the compute across resumes). trainer/recipe.py parses the stages.
"""
import dataclasses
import json
import os
import time

from runtime.tasks import FAMILIES
from trainer import checkpoint
from trainer.evaluate import evaluate, format_table
from trainer.grpo import run_grpo
from trainer.recipe import references
from trainer.rejection import run_rejection
from trainer.sft import run_sft


def stage_done(st, d):
    if st.kind == "rejection":
        return os.path.exists(os.path.join(d, "traces.jsonl"))
    last = checkpoint.latest(d)
    if last is None:
        return False
    with open(os.path.join(last, "checkpoint.json")) as f:
        step = json.load(f)["step"]
    return step >= (st.recipe.grpo.steps if st.kind == "grpo" else st.recipe.sft.steps)


def run_pipeline(recipe, out_dir, resume=False, progress=True, log=print):
    os.makedirs(out_dir, exist_ok=True)
    record_path = os.path.join(out_dir, "pipeline.json")
    record = json.load(open(record_path)) if resume and os.path.exists(record_path) else {}
    outputs = {}
    resolve = lambda ref: outputs.get(ref, ref)

    for st in recipe.stages:
        d = os.path.join(out_dir, st.name)
        if resume and stage_done(st, d):
            log(f"stage {st.name}: done, skipped")
        else:
            log(f"stage {st.name} ({st.kind}) -> {d}")
            t0 = time.time()
            if st.kind == "rejection":
                rc = dataclasses.replace(st.rejection, init=resolve(st.rejection.init))
                run_rejection(rc, d, progress=progress, source=f"{recipe.path}: {st.name}")
            elif st.kind == "grpo":
                gc = dataclasses.replace(st.recipe.grpo, init=resolve(st.recipe.grpo.init))
                run_grpo(gc, d, st.name, resume=resume, progress=progress, source=f"{recipe.path}: {st.name}")
            else:
                sc = st.recipe.sft
                sc = dataclasses.replace(sc, init=resolve(sc.init), teacher=resolve(sc.teacher),
                                         datasets=[resolve(x) for x in sc.datasets])
                run_sft(dataclasses.replace(st.recipe, sft=sc), d, resume=resume, progress=progress)
            record[st.name] = {"kind": st.kind, "wall_seconds": round(time.time() - t0, 1)}
        outputs[st.name] = (os.path.join(d, "traces.jsonl") if st.kind == "rejection" else checkpoint.latest(d))
        record.setdefault(st.name, {"kind": st.kind})["output"] = outputs[st.name]
        if recipe.eval and st.kind != "rejection" and not os.path.exists(os.path.join(d, "eval.json")):
            evaluate_stage(outputs[st.name], d, recipe.eval, log)
        checkpoint.write_atomic(record_path, json.dumps(record, indent=1).encode())
    if recipe.eval:
        table = results_table(recipe, out_dir)
        checkpoint.write_atomic(os.path.join(out_dir, "results.md"), (table + "\n").encode())
        log(f"held-out accuracy per stage (also in {out_dir}/results.md):\n{table}")
    return record


def evaluate_stage(ckpt, d, ev, log):
    params, cfg, tok, _ = checkpoint.load(ckpt)
    t0 = time.time()
    full = ev.get("full", False)
    rows = evaluate(params, cfg, tok, None, ev.get("n", 200), ev.get("seed", 0), extrapolate=full,
                    phrasings=full, refusals=full)
    checkpoint.write_atomic(os.path.join(d, "eval.json"), json.dumps(rows, indent=1).encode())
    log(f"eval of {ckpt} ({time.time() - t0:.0f} s):\n{format_table(rows)}")


def results_table(recipe, out_dir):
    """Markdown: the canonical held-out table of the evaluated stages (column_table); with `eval: {full:
    true}`, the held-out phrasings and extrapolation tables too."""
    names = {s.name: s for s in recipe.stages}
    with open(os.path.join(out_dir, "pipeline.json")) as f:
        record = json.load(f)

    def own_minutes(name):
        out = record.get(name, {}).get("output")
        if names[name].kind != "rejection" and out and os.path.exists(os.path.join(out, "checkpoint.json")):
            with open(os.path.join(out, "checkpoint.json")) as f:
                return json.load(f).get("train_seconds", 0.0) / 60
        return record.get(name, {}).get("wall_seconds", 0.0) / 60
    minutes = {name: own_minutes(name) for name in names}            # read each checkpoint once

    def chain(name, seen):
        if name in names and name not in seen:
            seen.add(name)
            for ref in references(names[name]):
                chain(ref, seen)
        return seen

    stages = []
    for st in recipe.stages:
        path = os.path.join(out_dir, st.name, "eval.json")
        if os.path.exists(path):
            with open(path) as f:
                stages.append((st, json.load(f), minutes[st.name], sum(minutes[n] for n in chain(st.name, set()))))
    if not recipe.eval.get("full"):
        return column_table(stages, "canonical")
    return "\n\n".join(f"{title}:\n\n{column_table(stages, column)}" for column, title in (
        ("canonical", "Canonical phrasing, held-out problems"), ("phrasings", "Held-out phrasings"),
        ("extrapolation", "Extrapolation (one or two sizes beyond the training range)")))


def column_table(stages, column):
    """One markdown table: a row per evaluated stage with the column's accuracy per family, their mean
    ("all": held-out problems only, so not fib's and faq's trained canonical questions), the format rate,
    the out-of-scope refusals when measured, and minutes of compute (the stage's own / with every stage it
    builds on, each counted once)."""
    fams = [f for f in FAMILIES if column != "extrapolation" or f != "faq"]
    refusals = any(r["family"] == "refuse" for _, rows, *_ in stages for r in rows)
    lines = ["| row | " + " | ".join(fams) + " | all held-out | format |" + (" refused |" if refusals else "")
             + " minutes (stage / total) |", "|---|" + "---:|" * (len(fams) + 3 + refusals)]
    for st, rows, own, total in stages:
        mine = {r["family"]: r for r in rows if r["column"] == column or
                (column == "canonical" and r["column"] == "trained")}
        held = [r for r in mine.values() if r["column"] != "trained"]          # fib, faq (trained) are not in "all"
        acc = [r["accuracy"] for r in held]
        fmt = sum(r["format"] * r["n"] for r in held) / max(1, sum(r["n"] for r in held))
        ref = next((r for r in rows if r["family"] == "refuse"), None)
        label = f"{st.name}" + (f": {st.description}" if st.description else "")
        lines.append(f"| {label} | " + " | ".join(f"{100 * mine[f]['accuracy']:.1f}" if f in mine else "-"
                                                    for f in fams)
                     + f" | {100 * sum(acc) / max(1, len(acc)):.1f} | {100 * fmt:.2f}% |"
                     + (f" {100 * ref['accuracy']:.1f} |" if ref else " - |" if refusals else "")
                     + f" {own:.1f} / {total:.1f} |")
    return "\n".join(lines)
