"""README "The R1 recipe": sampled pass@1 (the R1 paper's metric: mean accuracy over k samples per
held-out question) of checkpoints, e.g. the control and the GRPO student of a `runs/r1` pipeline; and,
with --failures, the held-out questions a checkpoint gets wrong under greedy decoding.

    python examples/measure/sampled_accuracy.py --temperature 0.6 --k 4 \\
        runs/r1/student-sft-more/ckpt/step_000200 runs/r1/student-grpo/ckpt/step_000200
    python examples/measure/sampled_accuracy.py --failures trainer/checkpoints/student
    python examples/measure/sampled_accuracy.py --failures --column extrapolation --families add CKPT
    python examples/measure/sampled_accuracy.py --failures --column out-of-scope CKPT    # answered, not refused
"""
import argparse
import collections

import numpy as np

from runtime.tasks import score
from trainer import checkpoint
from trainer.evaluate import out_of_scope, problems
from trainer.generate import generate_texts

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("checkpoints", nargs="+")
ap.add_argument("--families", default="mul,speed,quadratic,fib,count,linear", help="comma-separated")
ap.add_argument("--temperature", type=float, default=0.6)
ap.add_argument("--k", type=int, default=4, help="samples per question (seeds 0..k-1)")
ap.add_argument("--failures", action="store_true", help="list greedy failures instead")
ap.add_argument("--column", default="canonical", choices=["canonical", "phrasings", "extrapolation", "out-of-scope"],
                help="with --failures: the eval table's column whose questions are asked (seed 0, as tinyr1 eval)")
args = ap.parse_args()
for path in args.checkpoints:
    params, cfg, tok, _ = checkpoint.load(path)
    cells = []
    if args.failures and args.column == "out-of-scope":                # the 200 the eval asks: not refused
        questions = [p.question for p in out_of_scope(200, 0)]
        texts = generate_texts(params, cfg, tok, questions, cfg.max_position_embeddings)
        answered = [(q, t) for q, t in zip(questions, texts) if not score(q, t)["refused"]]
        print(f"out of scope: {len(questions)} questions, {len(answered)} answered instead of refused")
        for q, t in answered:
            print(f"  {q} -> {t[-100:]}")
        continue
    for fam in args.families.split(","):
        probs = problems(fam, args.column if args.failures else "canonical", 200, 0)   # an eval table column
        questions = [p.question for p in probs]
        if args.failures:
            texts = generate_texts(params, cfg, tok, questions, cfg.max_position_embeddings)
            wrong = {q: t for q, t in zip(questions, texts) if not score(q, t)["correct"]}
            counts = collections.Counter(questions)
            print(f"{fam}: {len(counts)} distinct held-out questions, {len(wrong)} answered wrong")
            for q, t in wrong.items():
                print(f"  {q} (x{counts[q]}) -> {t[-100:]}")
            continue
        acc = [np.mean([score(q, t)["correct"] for q, t in
                        zip(questions, generate_texts(params, cfg, tok, questions, cfg.max_position_embeddings,
                                                      temperature=args.temperature,
                                                      seed=s))]) for s in range(args.k)]
        cells.append(f"{fam} {100 * np.mean(acc):.1f}")
    if cells:
        print(f"{path}: T={args.temperature}, {args.k} samples: " + " | ".join(cells))
