"""README "v7's tasks in one run": how often each long-division step (`55/8=6r7`) occurs in the speed
family's training traces, per divisor: the rarest and the commonest, and the given steps.

    python examples/measure/division_facts.py [--n 20000] [--seed 0] [--steps 55/8,23/4,41/8,40/8]
    python examples/measure/division_facts.py --n 3000 --speed-facts 1     # every problem drilled (v11's option)
"""
import argparse
import collections
import re

import numpy as np

from trainer.tasks import make_example
from trainer.tasks.drill import steps_index

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--n", type=int, default=20000, help="training speed problems drawn")
ap.add_argument("--seed", type=int, default=0, help="seed of the draw")
ap.add_argument("--steps", default="55/8,23/4,41/8,40/8", help="comma-separated steps a/d to report")
ap.add_argument("--speed-facts", type=float, default=0.0, help="share of problems drawn for one division step "
                "(the recipe option speed_facts, trainer/tasks/drill.py)")
args = ap.parse_args()

rng = np.random.default_rng(args.seed)
steps = collections.Counter()                 # (a, d) -> occurrences of the step a/d=q r
for _ in range(args.n):
    trace = make_example("speed", rng, speed_facts=args.speed_facts).reasoning
    steps.update((int(a), int(d)) for a, d in re.findall(r"(\d+)/(\d+)=\d+r\d+", trace))
print(f"{args.n} training speed problems (seed {args.seed}, speed_facts {args.speed_facts}), "
      f"{sum(steps.values())} division steps; {sum(steps[k] < 3 for k, _ in steps_index())} of the range's "
      f"{len(steps_index())} steps occur fewer than 3 times")
for d in sorted({d for _, d in steps}):
    mine = sorted(((k, a) for (a, dd), k in steps.items() if dd == d))
    print(f"/{d}: {len(mine)} distinct steps, rarest {mine[0][1]}/{d} ({mine[0][0]}), commonest {mine[-1][1]}/{d} "
          f"({mine[-1][0]})")
for s in args.steps.split(","):
    a, d = map(int, s.split("/"))
    print(f"{a}/{d}: {steps[a, d]}")
