"""README "v7's tasks in one run": how often each long-division step (`55/8=6r7`) occurs in the speed
family's training traces, per divisor: the rarest and the commonest, and the given steps.

    python examples/measure/division_facts.py [--n 20000] [--seed 0] [--steps 55/8,23/4,41/8,40/8]
"""
import argparse
import collections
import re

import numpy as np

from runtime.tasks import FAMILIES
from trainer.tasks import reasoning

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--n", type=int, default=20000, help="training speed problems drawn")
ap.add_argument("--seed", type=int, default=0, help="seed of the draw")
ap.add_argument("--steps", default="55/8,23/4,41/8,40/8", help="comma-separated steps a/d to report")
args = ap.parse_args()

rng = np.random.default_rng(args.seed)
steps = collections.Counter()                 # (a, d) -> occurrences of the step a/d=q r
for _ in range(args.n):
    question = FAMILIES["speed"].sample(rng, "train").question
    steps.update((int(a), int(d)) for a, d in re.findall(r"(\d+)/(\d+)=\d+r\d+", reasoning(question, "speed")))
print(f"{args.n} training speed problems (seed {args.seed}), {sum(steps.values())} division steps")
for d in sorted({d for _, d in steps}):
    mine = sorted(((k, a) for (a, dd), k in steps.items() if dd == d))
    print(f"/{d}: {len(mine)} distinct steps, rarest {mine[0][1]}/{d} ({mine[0][0]}), commonest {mine[-1][1]}/{d} "
          f"({mine[-1][0]})")
for s in args.steps.split(","):
    a, d = map(int, s.split("/"))
    print(f"{a}/{d}: {steps[a, d]}")
