"""Ship a run's checkpoint as a bundled student: weights and config without optimizer state, plus the record
of where it came from and its eval table (what `tinyr1 eval` prints for it).

    python -m trainer.bundle runs/student-v3/ckpt/step_008000 trainer/checkpoints/student \\
        --recipe trainer/recipes/student-v3.yaml
"""
import argparse
import json
import os

from trainer import checkpoint
from trainer.evaluate import evaluate, format_table


def bundle(src, out, recipe_file, n=200, seed=0, progress=True):
    params, cfg, tok, info = checkpoint.load(src)
    rows = evaluate(params, cfg, tok, n=n, seed=seed, progress=progress)
    meta = {k: v for k, v in info.items() if k not in ("format", "version", "config", "tokenizer", "optim_step")}
    meta.update(source=src, recipe_file=recipe_file, eval=rows,
                eval_command=f"tinyr1 eval {out} --n {n} --seed {seed}")
    checkpoint.save(out, params, cfg, tok, meta)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="a run's checkpoint directory (runs/NAME/ckpt/step_NNNNNN)")
    ap.add_argument("out", help="where the bundled checkpoint goes (replaced atomically)")
    ap.add_argument("--recipe", required=True, help="the recipe file that trained it (recorded)")
    ap.add_argument("--n", type=int, default=200, help="distinct questions per family and column of the eval")
    ap.add_argument("--seed", type=int, default=0, help="seed of the eval's question draw")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.recipe):
        ap.error(f"--recipe {args.recipe}: no such file")
    rows = bundle(args.src, args.out, args.recipe, args.n, args.seed)
    print(format_table(rows))
    print(json.dumps({"bundled": args.out, "from": args.src}))


if __name__ == "__main__":
    main()
