"""README "Training speed" numbers: seconds per SFT step on a recipe's own batches (forward, backward over
every micro-batch; the optimizer is the same in every setting and left out), in three settings measured in
turn on the same steps, one BLAS thread or two:

  equal pieces     the step's examples sorted by length and cut into 3 equal pieces, one thread calling a
                   2-thread BLAS (how the trainer worked before issue 17's v8)
  cheapest cuts    trainer/data.py cheapest_cuts into at most `micro_batches` pieces, same threads
  two threads      the same pieces on two threads, each with a one-thread BLAS (trainer/sft.py)

    OPENBLAS_NUM_THREADS=2 python examples/measure/sft_step.py [RECIPE] [--steps 8]

RECIPE defaults to trainer/recipes/student-v8.yaml, run from the bundled student's weights.
"""
import argparse
import time

import numpy as np

from runtime.speed import cpu_name
from trainer import checkpoint
from trainer.data import Mixture
from trainer.recipe import load_recipe
from trainer.sft import accumulate, micro_batch_threads


def equal_pieces(mix, step, batch_size, n):
    rng = np.random.default_rng([mix.seed, step])
    pairs = sorted(mix.examples(rng, batch_size), key=lambda qc: len(qc[0]) + len(qc[1]))
    return [mix.encode([pairs[i] for i in c]) for c in np.array_split(np.arange(len(pairs)), n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", default="trainer/recipes/student-v8.yaml")
    ap.add_argument("--steps", type=int, default=8, help="steps timed per setting (after one warm-up step)")
    a = ap.parse_args()
    sc = load_recipe(a.recipe).sft
    params, cfg, tok, _ = checkpoint.load("trainer/checkpoints/student")
    mix = Mixture(tok, sc.families, sc.datasets, sc.dataset_weight, sc.seed, a.recipe, sc.split, **sc.styles())
    steps = range(1000, 1001 + a.steps)                    # step 1000 warms up, the rest are timed
    settings = {"equal pieces": (lambda s: equal_pieces(mix, s, sc.batch_size, 3), None),
                "cheapest cuts": (lambda s: mix.micro_batches(s, sc.batch_size, sc.micro_batches), None),
                "two threads": (lambda s: mix.micro_batches(s, sc.batch_size, sc.micro_batches), 2)}
    seconds = {}
    for name, (pieces, threads) in settings.items():
        batches = [pieces(s) for s in steps]
        run = lambda pool: [accumulate(params, cfg, b, sc.mtp_lambda, sc.aux_alpha, pool=pool) for b in batches[1:]]
        if threads is None:                                # the BLAS as the environment sets it
            accumulate(params, cfg, batches[0], sc.mtp_lambda, sc.aux_alpha)
            t = time.perf_counter()
            run(None)
        else:
            with micro_batch_threads(threads) as pool:
                accumulate(params, cfg, batches[0], sc.mtp_lambda, sc.aux_alpha, pool=pool)
                t = time.perf_counter()
                run(pool)
        seconds[name] = (time.perf_counter() - t) / a.steps
    print(f"{a.recipe}: batch {sc.batch_size}, {a.steps} steps each; {cpu_name()}")
    base = seconds["equal pieces"]
    for name, s in seconds.items():
        print(f"  {name:14s} {s:6.3f} s a step   {base / s:4.2f}x")


if __name__ == "__main__":
    main()
