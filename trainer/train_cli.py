"""Trainer subcommands of `tinyr1`: train, eval, ask, bench-train (the host's tinyr1/cli.py offers them)."""
import json
import os
import sys

import click

from runtime.errors import TinyR1Error


def _fail(e):
    raise click.ClickException(str(e))


def keep_freed_memory():
    """glibc hands every large freed array back to the OS and page-faults it in again on the next step
    (~15% of an SFT step here); keep up to 1 GiB of freed memory in the heap instead. No effect on results."""
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)          # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)          # M_TRIM_THRESHOLD
    except (OSError, AttributeError):      # not glibc: nothing to tune
        pass


@click.command("train")
@click.option("--recipe", required=True, type=click.Path(dir_okay=False),
              help="Recipe YAML (trainer/recipes/*.yaml): overrides of the documented defaults.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Run directory for checkpoints, metrics.jsonl and loss.png [default: runs/<recipe name>].")
@click.option("--resume", is_flag=True,
              help="Continue from the run directory's latest checkpoint; reproduces the uninterrupted losses.")
@click.option("--steps", type=int, default=None,
              help="Stop after this many steps (the LR schedule still follows the recipe's total).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="SFT micro-batches run on this many threads at once, each with a one-thread BLAS; the "
                   "results do not depend on it [default: every CPU this process may use].")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (for logs).")
def train(recipe, out, resume, steps, threads, no_progress):
    """Train a model from a recipe: cold-start SFT on chain-of-thought traces (a `sft:` recipe),
    GRPO with verifiable rewards from a checkpoint (a `grpo:` recipe), or a pipeline of SFT, GRPO,
    rejection-sampling and distillation stages (a `stages:` recipe such as trainer/recipes/r1.yaml)."""
    from trainer.recipe import load_recipe
    keep_freed_memory()
    try:
        r = load_recipe(recipe)
        out = out or os.path.join("runs", r.name)
        if r.stages:
            from trainer.pipeline import run_pipeline
            if steps is not None:
                _fail("--steps applies to single-stage recipes; a pipeline's stages set their own")
            run_pipeline(r, out, resume=resume, progress=not no_progress, log=click.echo)
        elif r.grpo is not None:
            from trainer.grpo import run_grpo
            run_grpo(r.grpo, out, r.name, resume=resume, progress=not no_progress, max_steps=steps,
                     source=f"{recipe}: grpo")
        else:
            from trainer.sft import run_sft
            run_sft(r, out, resume=resume, progress=not no_progress, max_steps=steps, threads=threads)
    except TinyR1Error as e:
        _fail(e)


@click.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--tasks", default="all", show_default=True,
              help="Comma-separated task families to evaluate, or 'all'.")
@click.option("--n", default=200, show_default=True,
              help="Distinct questions per family and column (fewer where the split holds fewer; fib lists all 41).")
@click.option("--seed", default=0, show_default=True, help="Seed of the problem draw.")
@click.option("--no-extrapolation", is_flag=True, help="Skip the column beyond the training range.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
def eval_cmd(checkpoint, tasks, n, seed, no_extrapolation, as_json):
    """Greedy accuracy of each family on held-out problems in its canonical phrasing, in phrasings training
    never used, and beyond the training range; the share of out-of-scope questions refused, and of
    in-range questions refused by mistake. Every figure prints its number of distinct questions.

    CHECKPOINT is a trainer checkpoint directory or a compiled .msgpack model file."""
    from runtime.tasks import FAMILIES
    from trainer import checkpoint as ck
    from trainer.evaluate import evaluate, format_table
    families = list(FAMILIES) if tasks == "all" else [t.strip() for t in tasks.split(",")]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        _fail(f"--tasks: unknown family {unknown[0]!r}; known: {', '.join(FAMILIES)}")
    from trainer.config import ModelConfig
    from trainer.evaluate import runtime_generator
    try:
        if os.path.isfile(checkpoint):
            import runtime
            model = runtime.load(checkpoint)
            params, cfg, tok = None, ModelConfig.from_dict(model.config), model.tokenizer
            generator = runtime_generator(model)
        else:
            params, cfg, tok, _ = ck.load(checkpoint)
            generator = None
    except TinyR1Error as e:
        _fail(e)
    rows = evaluate(params, cfg, tok, families, n, seed, extrapolate=not no_extrapolation,
                    progress=not as_json and sys.stderr.isatty(), generator=generator)
    click.echo(json.dumps(rows, indent=1) if as_json else format_table(rows))


@click.command("ask")
@click.argument("questions", nargs=-1, required=True)
@click.option("--checkpoint", required=True, type=click.Path(exists=True, file_okay=False),
              help="Trainer checkpoint directory (e.g. trainer/checkpoints/student).")
@click.option("--max-new-tokens", default=200, show_default=True, help="Completion length limit.")
def ask(questions, checkpoint, max_new_tokens):
    """Answer QUESTIONS greedily, showing the thinking, the answer and whether it verifies."""
    from runtime.tasks import score
    from trainer import checkpoint as ck
    from trainer.generate import generate_texts
    try:
        params, cfg, tok, _ = ck.load(checkpoint)
        for q in questions:
            tok.encode(q)
    except TinyR1Error as e:
        _fail(e)
    for q in questions:
        text = generate_texts(params, cfg, tok, [q], max_new_tokens)[0]
        s = score(q, text)
        verdict = {True: "correct", False: "wrong"}.get(s["correct"], "unchecked") if s["family"] else "unchecked"
        click.echo(f"Q: {q}\n   {text}\n   -> {s['answer']!s}  [{verdict}]")


@click.command("bench-train")
@click.option("--batch", default=16, show_default=True, help="Sequences per step.")
@click.option("--seq", default=96, show_default=True, help="Tokens per sequence.")
@click.option("--repeat", default=5, show_default=True, help="Timed steps per engine (alternating).")
@click.option("--recipe", default=None, type=click.Path(dir_okay=False),
              help="Take the model config from this recipe [default: the student defaults].")
def bench_train(batch, seq, repeat, recipe):
    """One SFT step (forward + backward + AdamW), ours vs transformers' DeepseekV3 in torch, one thread."""
    from runtime.speed import ONE_THREAD
    env = dict(os.environ, **ONE_THREAD)
    args = ["--batch", str(batch), "--seq", str(seq), "--repeat", str(repeat)] + (["--recipe", recipe] if recipe else [])
    os.execve(sys.executable, [sys.executable, "-m", "trainer.train_speed", *args], env)  # threads fixed before numpy loads
