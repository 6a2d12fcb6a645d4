"""README "Student v14": does a checkpoint compute fib's sums, or recall them? It answers Fibonacci-like
sequences from other starts (`What is fib(7) if fib(0)=703 and fib(1)=57?`, the recipe option fib_drill,
trainer/tasks/drill.py), then fib(41..45)'s own values asked from starts inside fib: from fib(s), fib(s+1)
near them (at most --near steps) and far from them (20-36 steps, as long as fib(41..45)'s own traces).

    python examples/measure/fib_drills.py runs/student-v14/ckpt/step_003000
    python examples/measure/fib_drills.py trainer/checkpoints/student --drills 8 --far 0
"""
import argparse

import numpy as np

from runtime.tasks.algebra import fib
from trainer.checkpoint import load
from trainer.generate import generate_texts
from trainer.tasks.drill import FIB_DRILL, drilled_fib, fib_from

FAR = ((25, 45), (15, 45), (10, 45), (5, 41), (15, 41))     # (s, n): fib(n) asked n - s = 20..36 steps from fib(s)

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("ckpt", help="a trainer checkpoint directory (runs/NAME/ckpt/step_NNNNNN, trainer/checkpoints/student)")
ap.add_argument("--drills", type=int, default=40, help="random drilled sequences asked (drill.drilled_fib)")
ap.add_argument("--seed", type=int, default=123, help="seed of the drilled sequences' draw")
ap.add_argument("--near", type=int, default=12, help="the most steps of a near start (0: none asked)")
ap.add_argument("--far", type=int, default=len(FAR), help=f"far starts asked, of the {len(FAR)} in FAR")
args = ap.parse_args()

params, cfg, tok, _ = load(args.ckpt)
rng = np.random.default_rng(args.seed)
near = [(s, n) for s in range(30, 35) for n in range(41, 46) if n - s <= args.near]
groups = {f"{args.drills} drilled sequences (seed {args.seed})":
          [(k, a, b, fib_from(k, a, b)) for k, a, b in (drilled_fib(rng) for _ in range(args.drills))],
          f"fib(41..45) from fib(30..34), <= {args.near} steps": [(n - s, fib(s), fib(s + 1), fib(n)) for s, n in near],
          "fib(41..45) from far starts, 20-36 steps": [(n - s, fib(s), fib(s + 1), fib(n)) for s, n in FAR[:args.far]]}
questions = [FIB_DRILL.format(k=k, a=a, b=b) for g in groups.values() for k, a, b, _ in g]
texts = iter(generate_texts(params, cfg, tok, questions, cfg.max_position_embeddings))   # clipped at the context
print(args.ckpt)
for name, asked in groups.items():
    right = 0
    for (k, a, b, want), text in zip(asked, texts):
        said = text.split("<answer>")[-1].split("</answer>")[0]
        right += said == str(want)
        if len(asked) <= 20:
            print(f"  fib({k}) if fib(0)={a}, fib(1)={b}: {'right' if said == str(want) else 'wrong'} ({said[:24]})")
    print(f"{name}: {right}/{len(asked)} right")
