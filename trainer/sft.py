"""Supervised fine-tuning (the R1 "cold start"): loss on completion tokens only.

One step = batch (seeded by step) -> forward/backward -> clip -> AdamW -> balancing-bias update.
The run directory holds `ckpt/`, `metrics.jsonl`, `loss.png` and the resolved `recipe.json`.
"""
import contextlib
import json
import math
import os
import time

import numpy as np

from runtime.errors import ConfigError
from runtime.tokenizer import Tokenizer
from trainer import checkpoint
from trainer.data import Mixture
from trainer.errors import DivergenceError
from trainer.model import BUFFER_SUFFIX, count_params, init_params, logits, loss_and_grads
from trainer.optim import AdamW, clip_grads, lr_at
from trainer.tasks.cot import LETTERED


def update_balance_bias(params, loads, gamma):
    """Aux-loss-free balancing: b_i += gamma * sign(mean(load) - load_i), per MoE layer.

    loads: one (E,) token count per MoE layer that ran, in layer order: the main layers, then the MTP
    block's (GRPO's passes do not run the MTP head, so its bias then stays as it is)."""
    names = [k for k in params if k.endswith(BUFFER_SUFFIX)]
    assert len(loads) <= len(names), (names, len(loads))
    for name, load in zip(names, loads):
        params[name] += (gamma * np.sign(load.mean() - load)).astype(params[name].dtype)


def stop_if_diverged(step, values, params, run_dir, section, lr):
    """Raise DivergenceError when a value of `values` ({"loss": ...}) or a weight is NaN or inf.

    Called after each update and before any checkpoint is written, so the newest checkpoint on disk
    stays the last good one. `section` names the recipe section holding lr ("r.yaml: sft")."""
    bad = [f"{k} is {v}" for k, v in values.items() if not math.isfinite(v)]
    bad = bad or [f"weight {k} has {n} NaN or inf values" for k, n in checkpoint.nonfinite(params)[:1]]
    if bad:
        last = checkpoint.latest(run_dir)
        keep = (f"the last good checkpoint is {last}, and `tinyr1 train --resume` continues from it" if last
                else f"no checkpoint was written to {run_dir} yet")
        raise DivergenceError(f"{run_dir}: training diverged at step {step}: {', '.join(bad)}; stopped without "
                              f"writing a checkpoint. Lower lr (now {lr:g}) or grad_clip in {section}; {keep}")


def load_ratio(load):
    """max/min tokens per expert (min floored at 1): 1.0 is perfect balance."""
    return float(load.max() / max(load.min(), 1))


def run_sft(recipe, out_dir, resume=False, progress=True, max_steps=None, threads=None):
    """Train per recipe.sft into out_dir (stopping early at max_steps), its micro-batches on `threads`
    threads [default: every CPU this process may use]; the thread count does not change the results.
    Returns (params, cfg, tok)."""
    cfg, sc = recipe.model, recipe.sft
    tok = Tokenizer(places=sc.places, items=sc.items, hints=sc.hints)
    cfg.vocab_size = tok.vocab_size                      # the vocabulary is the tokenizer's, always
    os.makedirs(out_dir, exist_ok=True)
    if sc.init:                                          # continue from a checkpoint (control runs, distillation)
        params, cfg, tok, _ = checkpoint.load(sc.init)   # and read questions as it was trained to
        checkpoint.require_finite(params, f"{recipe.path}: sft.init: {sc.init}")
        if sc.places and not tok.places:
            raise ConfigError(f"{recipe.path}: sft: places=true, but sft.init {sc.init} was trained without place "
                              f"letters in its questions; remove places (a model keeps the tokenizer it was "
                              f"trained with)")
        if (sc.items and not tok.items) or (sc.hints and not tok.hints):   # "#" and A-Z are in the vocabulary
            tok = Tokenizer(tok.alphabet, tok.specials, tok.places, tok.items or sc.items, tok.hints or sc.hints)
        if sc.context:                                   # RoPE is computed: a longer context changes no weight
            cfg.max_position_embeddings = sc.context
        context = (cfg.max_position_embeddings, f"{recipe.path}: sft.context" if sc.context else
                   f"max_position_embeddings of {sc.init}")
    else:
        params = init_params(cfg, sc.seed)
        context = (cfg.max_position_embeddings, f"{recipe.path}: model.max_position_embeddings")
    if sc.sort_trace == "items" and not tok.items:
        raise ConfigError(f"{recipe.path}: sft: sort_trace=items writes the item letters of a tokenizer with items; "
                          f"add items: true")
    if sc.sort_trace in LETTERED and not tok.hints:
        raise ConfigError(f"{recipe.path}: sft: sort_trace={sc.sort_trace} writes the answer's numbers after hints "
                          f"that only a tokenizer with hints drops; add hints: true")
    mix = Mixture(tok, sc.families, sc.datasets, sc.dataset_weight, sc.seed, f"{recipe.path}: sft", sc.split,
                  **sc.styles())
    teacher = load_teacher(sc.teacher, tok, f"{recipe.path}: sft.teacher") if sc.teacher else None
    if teacher is not None:                              # the teacher reads the same sequences
        context = min(context, (teacher[1].max_position_embeddings, f"max_position_embeddings of the teacher "
                                                                     f"{sc.teacher}"), key=lambda c: c[0])
    mix.check_context(*context)                          # every JSONL example, before the first step
    trainable = [k for k in params if not k.endswith(BUFFER_SUFFIX)]
    opt = AdamW(params, trainable, sc.beta1, sc.beta2, weight_decay=sc.weight_decay)
    start, elapsed0 = 0, 0.0
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    last = checkpoint.latest(out_dir) if resume else None
    if last:
        params, _, _, info, optim = checkpoint.load(last, with_optim=True)
        opt = AdamW(params, trainable, sc.beta1, sc.beta2, weight_decay=sc.weight_decay)
        opt.load_state(optim, info["optim_step"])
        start = info["step"]
        elapsed0 = info.get("train_seconds", 0.0)
        truncate_metrics(metrics_path, start)
    elif os.path.exists(metrics_path):
        os.remove(metrics_path)
    checkpoint.write_atomic(os.path.join(out_dir, "recipe.json"), json.dumps(
        {"name": recipe.name, "path": recipe.path, "raw": recipe.raw, "model": cfg.to_dict(), "sft": vars(sc)},
        indent=1).encode())
    end = sc.steps if max_steps is None else min(sc.steps, max_steps)
    bar = make_bar(start, sc.steps, progress, f"sft {recipe.name}")
    t0, tokens_seen = time.time(), 0
    threads = min(default_threads() if threads is None else threads, sc.micro_batches)
    with open(metrics_path, "a") as mf, micro_batch_threads(threads) as pool:
        for step in range(start, end):
            loss, grads, stats, n_tokens = accumulate(params, cfg, mix.micro_batches(step, sc.batch_size, sc.micro_batches),
                                                      sc.mtp_lambda, sc.aux_alpha, teacher, sc.kl_weight, pool)
            gnorm = clip_grads(grads, sc.grad_clip)
            lr = lr_at(step, sc.lr, sc.min_lr, sc.warmup_steps, sc.steps)
            opt.step(params, grads, lr)
            update_balance_bias(params, stats["load"], sc.bias_update_speed)
            watch = {"loss": loss, "grad norm": gnorm, **{k: stats[k] for k in ("mtp_ce", "kl") if k in stats}}
            stop_if_diverged(step + 1, watch, params, out_dir, f"{recipe.path}: sft", sc.lr)
            tokens_seen += n_tokens
            rec = {"step": step + 1, "loss": loss, "ce": stats["ce"], "lr": lr, "grad_norm": gnorm,
                   "load_ratio": [round(load_ratio(x), 3) for x in stats["load"]]}
            for k in ("mtp_ce", "kl"):
                if k in stats:
                    rec[k] = stats[k]
            mf.write(json.dumps(rec) + "\n")
            if (step + 1) % sc.log_every == 0:
                mf.flush()
            tps = tokens_seen / max(time.time() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tps:.0f}", refresh=False)
            if (step + 1) % sc.checkpoint_every == 0 or step + 1 == end:
                mf.flush()
                meta = {"step": step + 1, "recipe": recipe.name, "stage": "sft", "seed": sc.seed,
                        "params": count_params(cfg), "train_seconds": elapsed0 + time.time() - t0}
                checkpoint.save_in_run(out_dir, step + 1, params, cfg, tok, meta, opt.state(),
                                       sc.keep_checkpoints)
    bar.close()
    plot_metrics(metrics_path, os.path.join(out_dir, "loss.png"), recipe.name)
    return params, cfg, tok


def load_teacher(path, tok, source):
    """-> (params, cfg) of a distillation teacher; it must share the student's tokenizer."""
    params, cfg, ttok, _ = checkpoint.load(path)
    if ttok.to_dict() != tok.to_dict():
        raise ConfigError(f"{source}: {path} uses a different tokenizer; token-level KL needs the same one")
    checkpoint.require_finite(params, f"{source}: {path}")
    return params, cfg


def accumulate(params, cfg, batches, mtp_lambda, aux_alpha, teacher=None, kl_weight=0.0, pool=None):
    """Loss and gradients over micro-batches, weighted by their counted tokens so the result equals
    one batch's token-level mean. With a teacher (params, cfg), its next-token distribution on the
    same tokens is the soft target. With a thread pool the micro-batches run concurrently (numpy releases
    the GIL in BLAS and large ufuncs) and are summed in their order, so the result is bit-identical to
    running them one by one. -> (loss, grads, stats with summed loads, tokens processed)."""
    counts = [float(m.sum()) for _, m in batches]
    total = max(sum(counts), 1.0)

    def piece(tokens, mask):
        probs = None
        if teacher is not None:
            z = logits(*teacher, tokens[:, :-1]).reshape(-1, cfg.vocab_size)
            probs = np.exp(z - z.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
        return loss_and_grads(params, cfg, tokens, mask, mtp_lambda, aux_alpha, teacher_probs=probs,
                              kl_weight=kl_weight)
    if pool is None or len(batches) == 1:
        results = [piece(*b) for b in batches]
    else:                                                # the longest first, so that no thread waits at the end
        first = sorted(range(len(batches)), key=lambda i: -batches[i][0].size)
        futures = {i: pool.submit(piece, *batches[i]) for i in first}
        results = [futures[i].result() for i in range(len(batches))]
    loss, grads, stats, n_tokens = 0.0, {}, {}, 0
    for (tokens, _), c, (l, g, st) in zip(batches, counts, results):
        w = c / total
        loss += w * l
        for k, v in g.items():
            if k in grads:
                grads[k] += w * v
            else:
                grads[k] = v * w
        for k, v in st.items():
            if k == "load":
                stats["load"] = v if "load" not in stats else [a + b for a, b in zip(stats["load"], v)]
            else:
                stats[k] = stats.get(k, 0.0) + w * v
        n_tokens += tokens.size
    return loss, grads, stats, n_tokens


@contextlib.contextmanager
def micro_batch_threads(threads):
    """A pool of `threads` threads for accumulate (None for one thread), with BLAS held to one thread
    meanwhile: two threads each calling a 2-thread BLAS run 2x slower than one, and a BLAS's thread count
    changes the last bits of its sums, so one BLAS thread always makes the results independent of `threads`.
    On 2 cores (AMD EPYC) the student's step takes 0.59 s on two threads, 0.87 s on one calling a 2-thread BLAS."""
    from concurrent.futures import ThreadPoolExecutor
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        if threads <= 1:
            yield None
            return
        with ThreadPoolExecutor(threads) as pool:
            yield pool


def default_threads():
    """The CPUs this process may run on (a container's or taskset's limit, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                               # not Linux
        return os.cpu_count() or 1


def truncate_metrics(path, step):
    """Drop metric lines after `step` (a killed run may have logged past its last checkpoint)."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line)["step"] <= step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError):
                break                           # a torn last line from the kill
    checkpoint.write_atomic(path, "".join(keep).encode())


def make_bar(start, total, enabled, desc):
    from tqdm import tqdm
    return tqdm(total=total, initial=start, disable=not enabled, desc=desc, unit="step", dynamic_ncols=True)


def plot_metrics(metrics_path, png_path, title):
    """Loss curves (MTP loss and KL to the teacher when present) plus the expert-load ratio per MoE
    layer, as one PNG."""
    rows = [json.loads(l) for l in open(metrics_path) if l.strip()]
    if not rows:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [r["step"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(steps, [r["ce"] for r in rows], lw=0.8, label="next-token CE")
    if "mtp_ce" in rows[0]:
        a1.plot(steps, [r["mtp_ce"] for r in rows], lw=0.8, label="MTP CE")
    if "kl" in rows[0]:
        a1.plot(steps, [max(r["kl"], 1e-6) for r in rows], lw=0.8, label="KL(teacher || student)")
    a1.set_yscale("log")
    a1.set_xlabel("step")
    a1.set_ylabel("loss (completion tokens)")
    a1.legend()
    a1.set_title(title)
    ratios = np.array([r["load_ratio"] for r in rows])
    for j in range(ratios.shape[1] if ratios.ndim == 2 else 0):
        a2.plot(steps, ratios[:, j], lw=0.8, label=f"MoE layer {j}")
    a2.set_xlabel("step")
    a2.set_ylabel("expert load max/min")
    a2.set_yscale("log")
    if ratios.ndim == 2 and ratios.shape[1]:
        a2.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
