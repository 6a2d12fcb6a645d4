"""README "Students v15 and v16" to "Students v22 to v25": a checkpoint's sorts, split by kind of list
(single digits or not) and by whether its trace is the one written in training (trainer/tasks/cot.py
cot_sort, its item or entry letters from A for a model with items or a lettered trace) and its answer right;
with --show, the first wrong ones as written. The questions are the eval's (seed 0, as `tinyr1 eval`).

    python examples/measure/sort_failures.py runs/student-v15/ckpt/step_002000
    python examples/measure/sort_failures.py runs/student-v17/radix/ckpt/step_002000 --trace radix
    python examples/measure/sort_failures.py runs/student-v19/counted/ckpt/step_001250 --trace counted
    python examples/measure/sort_failures.py runs/student-v20/items/ckpt/step_002000 --trace items
    python examples/measure/sort_failures.py runs/student-v23/ckpt/step_002000 --trace indexed
    python examples/measure/sort_failures.py runs/student-v24/ckpt/step_002000 --trace nth

A two-pass trace (radix: ones then tens; counted: seen then sorted) written otherwise is split by whether
its first pass is the trained one.
"""
import argparse
import collections

from runtime.tasks import FAMILIES, score
from trainer.checkpoint import load
from trainer.evaluate import problems
from trainer.generate import generate_texts
from trainer.tasks.cot import LETTERED, SORT_TRACES, reasoning

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("ckpt", help="a trainer checkpoint directory")
ap.add_argument("--trace", default="buckets", choices=SORT_TRACES, help="the sort trace it was trained to write")
ap.add_argument("--column", default="extrapolation", choices=["canonical", "phrasings", "extrapolation"],
                help="the eval table's column whose questions are asked")
ap.add_argument("--n", type=int, default=200, help="distinct questions")
ap.add_argument("--show", type=int, default=0,
                help="print the question, trained trace and written completion of the first SHOW wrong sorts")
args = ap.parse_args()
SECOND_PASS = {"radix": " tens ", "counted": " sorted "}   # two-pass traces: where the second pass begins

params, cfg, tok, _ = load(args.ckpt)
asked = problems("sort", args.column, args.n, 0)
texts = generate_texts(params, cfg, tok, [p.question for p in asked], cfg.max_position_embeddings)
kinds = collections.Counter()                 # (list kind, trace, answer) -> questions
short = shown = 0                             # answers with fewer numbers than the list, wrong sorts printed
for p, text in zip(asked, texts):
    digits = max(FAMILIES["sort"].parse(p.question)) < 10
    want = reasoning(p.question, "sort", sort_trace=args.trace,
                     item_offset=0 if tok.items or args.trace in LETTERED else None)
    got = text.split("<think>")[-1].split("</think>")[0]
    trace = "trace as trained" if got == want else "trace otherwise"
    if got != want and args.trace in SECOND_PASS:      # which pass went wrong first
        sep = SECOND_PASS[args.trace]
        trace += ", first pass right" if got.split(sep)[0] == want.split(sep)[0] else ", first pass wrong"
    short += len(text.split("<answer>")[-1].split("</answer>")[0].replace(",", " ").split()) < len(
        FAMILIES["sort"].parse(p.question))
    right = score(p.question, text)["correct"]
    kinds["single digits" if digits else "two-digit", trace, "right" if right else "wrong"] += 1
    if not right and shown < args.show:
        shown += 1
        print(f"{p.question}\n  trained: {want}\n  written: {text}")
print(f"{args.ckpt}: sort, {args.column}, {len(asked)} questions, {args.trace} trace")
for kind in ("single digits", "two-digit"):
    mine = {k[1:]: v for k, v in kinds.items() if k[0] == kind}
    print(f"{kind}: {sum(v for (_, a), v in mine.items() if a == 'right')}/{sum(mine.values())} right; "
          + ", ".join(f"{t} and {a} {v}" for (t, a), v in sorted(mine.items())))
print(f"all: {sum(v for k, v in kinds.items() if k[2] == 'right')}/{len(asked)} right")
print(f"answers with fewer numbers than the list: {short}/{len(asked)}")
