"""GRPO (DeepSeekMath / R1): reinforcement learning with verifiable rewards and no value model.

One step:
  1. draw P training questions (seeded by step), sample G completions of each at `temperature`
     with the KV cache (the rollout policy is the current weights);
  2. reward each completion (trainer/rewards.py), advantages A = (r - mean) / (std + 1e-4) within its
     group; groups whose rewards are all equal teach nothing and are skipped;
  3. `passes` optimisation passes over the kept sequences, each minimising the token-level loss
        l_t = -min(ratio_t * A, clip(ratio_t, 1-eps, 1+eps) * A) + beta * KL_t
        ratio_t = exp(logp_t - old_logp_t),  KL_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1  (k3, >= 0)
     summed over completion tokens (through the stop token) and divided by their number;
     `ref` is the frozen starting checkpoint. The MoE balancing bias keeps updating.
The run directory holds `ckpt/`, `metrics.jsonl` and `grpo.png` (reward, accuracy, length, KL curves).
"""
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from runtime.errors import ConfigError
from trainer import checkpoint
from trainer.data import check_families
from trainer.generate import generate
from trainer.model import BUFFER_SUFFIX, token_logprobs
from trainer.optim import AdamW, clip_grads, lr_at
from trainer.rewards import accuracy_reward, format_reward, resolve, score_all
from trainer.sft import load_ratio, make_bar, stop_if_diverged, truncate_metrics, update_balance_bias
from trainer.tasks import FAMILIES, make_example


@dataclass
class GRPOConfig:
    init: str = ""                    # checkpoint (or earlier stage) to start from; also the KL reference
    seed: int = 0                     # seeds questions and sampling (step k uses seed and k)
    steps: int = 100
    prompts_per_step: int = 16        # P questions per step
    group_size: int = 8               # G completions per question
    temperature: float = 1.0
    max_completion: int = 128         # tokens per completion, the stop token included
    passes: int = 1                   # optimisation passes per rollout batch (ratio != 1 from the 2nd on)
    micro_batch: int = 64             # sequences per forward/backward
    lr: float = 5e-5
    min_lr: float = 5e-5
    warmup_steps: int = 5
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    clip_eps: float = 0.2
    beta: float = 0.02                # KL weight (R1: 0.001; higher keeps a tiny model near its SFT)
    rewards: dict = field(default_factory=lambda: {"accuracy": 1.0, "format": 0.2})
    families: dict = field(default_factory=dict)   # family -> question weight; empty = all equal
    split: str = "train"              # question pool: train, or rl (never seen by an SFT on split sft)
    bias_update_speed: float = 1e-3
    checkpoint_every: int = 25
    keep_checkpoints: int = 2


# The interval of every numeric GRPOConfig field (trainer/config.py check_ranges; trainer/recipe.py
# check_grpo adds min_lr <= lr and the weights of families and rewards).
GRPO_RANGES = {
    "seed": "[0, inf)", "steps": "[1, inf)", "prompts_per_step": "[1, inf)",
    "group_size": "[2, inf)",         # advantages compare samples of one question
    "temperature": "(0, inf)",        # 0 is greedy: a group's samples would all be the same
    "max_completion": "[1, inf)", "passes": "[1, inf)", "micro_batch": "[1, inf)", "lr": "(0, 1]",
    "min_lr": "[0, 1]", "warmup_steps": "[0, inf)", "weight_decay": "[0, 1]", "beta1": "[0, 1)",
    "beta2": "[0, 1)", "grad_clip": "(0, inf)", "clip_eps": "(0, 1)", "beta": "[0, inf)",
    "bias_update_speed": "[0, 1]", "checkpoint_every": "[1, inf)", "keep_checkpoints": "[1, inf)",
}


# ---------------------------------------------------------------- the math (tested on its own)
def group_advantages(rewards):
    """rewards (P, G) -> advantages (P, G), keep (P,) bool: groups with any spread."""
    r = np.asarray(rewards, np.float64)
    std = r.std(axis=1, keepdims=True)
    keep = std[:, 0] > 0
    return np.where(keep[:, None], (r - r.mean(axis=1, keepdims=True)) / (std + 1e-4), 0.0), keep


def grpo_loss(logp, old_logp, ref_logp, adv, mask, clip_eps, beta, n_tokens):
    """The scalar loss and dL/dlogp. logp, old_logp, ref_logp, mask (B, T); adv (B,).

    -> (loss, w (B, T), stats {kl, clip_frac}). The clipped branch has zero gradient, exactly as in
    the max of the PPO objective."""
    A = adv[:, None]
    ratio = np.exp(logp - old_logp)
    clipped = np.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    unclipped_wins = ratio * A <= clipped * A
    surrogate = np.where(unclipped_wins, ratio * A, clipped * A)
    d = ref_logp - logp
    kl = np.exp(d) - d - 1
    loss = ((-surrogate + beta * kl) * mask).sum() / n_tokens
    w = (np.where(unclipped_wins, -ratio * A, 0.0) + beta * (1 - np.exp(d))) * mask / n_tokens
    m = max(float(mask.sum()), 1.0)
    return float(loss), w, {"kl": float((kl * mask).sum() / m),
                            "clip_frac": float(((~unclipped_wins) * mask).sum() / m)}


# ---------------------------------------------------------------- rollouts
def sample_questions(families, rng, n, split="train"):
    names = list(families) if families else list(FAMILIES)
    w = np.array([families.get(k, 1.0) for k in names] if families else [1.0] * len(names), float)
    return [make_example(names[k], rng, split).question for k in rng.choice(len(names), n, p=w / w.sum())]


def rollout(params, cfg, tok, questions, G, max_new, temperature, seed):
    """-> list over questions of G completion id lists (each ends with its stop token unless cut)."""
    prompts = [tok.encode_prompt(q) for q in questions]
    out = [[None] * G for _ in questions]
    by_len = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for b, (n, rows) in enumerate(sorted(by_len.items())):
        room = min(max_new, cfg.max_position_embeddings - n)
        jobs = [(i, g) for i in rows for g in range(G)]
        for j in range(0, len(jobs), 128):
            chunk = jobs[j:j + 128]
            comps = generate(params, cfg, tok, [prompts[i] for i, _ in chunk], room, temperature,
                             seed=seed * 1_000_003 + 7919 * b + j)
            for (i, g), c in zip(chunk, comps):
                out[i][g] = c
    return prompts, out


def pack(tok, seqs):
    """seqs: (prompt ids, completion ids) -> tokens (B, T+1), completion mask (B, T)."""
    T1 = max(len(p) + len(c) for p, c in seqs)
    tokens = np.full((len(seqs), T1), tok.pad_id, np.int64)
    mask = np.zeros((len(seqs), T1 - 1), np.float32)
    for i, (p, c) in enumerate(seqs):
        tokens[i, :len(p) + len(c)] = p + c
        mask[i, len(p) - 1:len(p) + len(c) - 1] = 1.0
    return tokens, mask


# ---------------------------------------------------------------- training
def run_grpo(gc, out_dir, name="grpo", resume=False, progress=True, max_steps=None, source="grpo"):
    """Train per `gc` (GRPOConfig) into out_dir. Returns (params, cfg, tok)."""
    if not gc.init:
        raise ConfigError(f"{source}: init: name the checkpoint GRPO starts from")
    rewards = resolve(gc.rewards, f"{source}: rewards")
    check_families(gc.families, source)
    ref, cfg, tok, info0 = checkpoint.load(gc.init)
    checkpoint.require_finite(ref, f"{source}: init: {gc.init}")
    params = {k: v.copy() for k, v in ref.items()}
    trainable = [k for k in params if not k.endswith(BUFFER_SUFFIX)]
    opt = AdamW(params, trainable, gc.beta1, gc.beta2, weight_decay=gc.weight_decay)
    os.makedirs(out_dir, exist_ok=True)
    metrics_path = os.path.join(out_dir, "metrics.jsonl")
    start, elapsed0 = 0, 0.0
    last = checkpoint.latest(out_dir) if resume else None
    if last:
        params, _, _, info, optim = checkpoint.load(last, with_optim=True)
        opt = AdamW(params, trainable, gc.beta1, gc.beta2, weight_decay=gc.weight_decay)
        opt.load_state(optim, info["optim_step"])
        start, elapsed0 = info["step"], info.get("train_seconds", 0.0)
        truncate_metrics(metrics_path, start)
    elif os.path.exists(metrics_path):
        os.remove(metrics_path)
    end = gc.steps if max_steps is None else min(gc.steps, max_steps)
    bar = make_bar(start, gc.steps, progress, f"grpo {name}")
    t0 = time.time()
    with open(metrics_path, "a") as mf:
        for step in range(start, end):
            rec = grpo_step(params, ref, cfg, tok, opt, gc, rewards, step, out_dir, source)
            mf.write(json.dumps(rec) + "\n")
            mf.flush()
            bar.update(1)
            bar.set_postfix(reward=f"{rec['reward']:.2f}", acc=f"{rec['accuracy']:.2f}", kl=f"{rec['kl']:.3f}",
                            refresh=False)
            if (step + 1) % gc.checkpoint_every == 0 or step + 1 == end:
                meta = {"step": step + 1, "recipe": name, "stage": "grpo", "seed": gc.seed, "init": gc.init,
                        "params": info0.get("params"), "train_seconds": elapsed0 + time.time() - t0}
                checkpoint.save_in_run(out_dir, step + 1, params, cfg, tok, meta, opt.state(), gc.keep_checkpoints)
    bar.close()
    plot_grpo(metrics_path, os.path.join(out_dir, "grpo.png"), name)
    return params, cfg, tok


def grpo_step(params, ref, cfg, tok, opt, gc, rewards, step, run_dir=".", source="grpo"):
    """One rollout batch and its `passes` updates. -> metrics record. Stops (DivergenceError) at a NaN
    or inf gradient norm, KL or weight, naming run_dir and the recipe section `source`."""
    t0 = time.time()
    rng = np.random.default_rng([gc.seed, step])
    questions = sample_questions(gc.families, rng, gc.prompts_per_step, gc.split)
    prompts, comps = rollout(params, cfg, tok, questions, gc.group_size, gc.max_completion, gc.temperature,
                             seed=gc.seed * 100_003 + step)
    R = np.zeros((len(questions), gc.group_size))
    acc, fmt, lengths = [], [], []
    for i, q in enumerate(questions):
        for g, c in enumerate(comps[i]):
            text = tok.decode_completion(c)
            R[i, g], _ = score_all(rewards, q, text)
            acc.append(accuracy_reward(q, text))            # logged whatever the recipe's rewards are
            fmt.append(format_reward(q, text))
            lengths.append(len(c))
    adv, keep = group_advantages(R)
    seqs = [(prompts[i], comps[i][g], adv[i, g]) for i in np.flatnonzero(keep) for g in range(gc.group_size)]
    rec = {"step": step + 1, "reward": float(R.mean()), "accuracy": float(np.mean(acc)),
           "format": float(np.mean(fmt)), "length": float(np.mean(lengths)), "groups_kept": float(keep.mean()),
           "rollout_s": round(time.time() - t0, 2)}
    kl = clip_frac = 0.0
    loads = None
    if seqs:
        seqs.sort(key=lambda s: len(s[0]) + len(s[1]))
        mbs = []
        for j in range(0, len(seqs), gc.micro_batch):
            chunk = seqs[j:j + gc.micro_batch]
            tokens, mask = pack(tok, [(p, c) for p, c, _ in chunk])
            mbs.append([tokens, mask, np.array([a for *_, a in chunk], np.float32),
                        token_logprobs(ref, cfg, tokens), None])
        if gc.passes > 1:                               # the rollout policy's log-probs, frozen
            for mb in mbs:
                mb[4] = token_logprobs(params, cfg, mb[0])
        n_tokens = float(sum(mb[1].sum() for mb in mbs))
        lr = lr_at(step, gc.lr, gc.min_lr, gc.warmup_steps, gc.steps)
        for _ in range(gc.passes):
            grads, loads, kl, clip_frac = {}, None, 0.0, 0.0
            for tokens, mask, a, ref_lp, old_lp in mbs:
                st = {}

                def dlogp(lp, mask=mask, a=a, ref_lp=ref_lp, old_lp=old_lp, st=st):
                    _, w, s = grpo_loss(lp, lp if old_lp is None else old_lp, ref_lp, a, mask, gc.clip_eps,
                                        gc.beta, n_tokens)
                    st.update(s)
                    return w
                _, g, ld = token_logprobs(params, cfg, tokens, dlogp)
                share = float(mask.sum()) / n_tokens
                kl += share * st["kl"]
                clip_frac += share * st["clip_frac"]
                for k, v in g.items():
                    grads[k] = grads[k] + v if k in grads else v
                loads = ld if loads is None else [x + y for x, y in zip(loads, ld)]
            rec["grad_norm"] = clip_grads(grads, gc.grad_clip)
            opt.step(params, grads, lr)
            update_balance_bias(params, loads, gc.bias_update_speed)
            stop_if_diverged(step + 1, {"grad norm": rec["grad_norm"], "kl": kl}, params, run_dir, source, gc.lr)
        rec["lr"] = lr
    rec.update(kl=kl, clip_frac=clip_frac, seconds=round(time.time() - t0, 2))
    if loads:
        rec["load_ratio"] = [round(load_ratio(x), 3) for x in loads]
    return rec


def plot_grpo(metrics_path, png_path, title):
    """Reward / accuracy / format, completion length and KL against step, as one PNG."""
    rows = [json.loads(line) for line in open(metrics_path) if line.strip()]
    if not rows:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [r["step"] for r in rows]
    smooth = lambda xs: np.convolve(xs, np.ones(min(5, len(xs))) / min(5, len(xs)), mode="valid")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key in ("reward", "accuracy", "format"):
        if key in rows[0]:
            ys = smooth([r[key] for r in rows])
            axes[0].plot(steps[len(steps) - len(ys):], ys, lw=1, label=key)
    axes[0].set_title(f"{title}: reward (5-step mean)")
    axes[0].legend()
    axes[1].plot(steps, [r["length"] for r in rows], lw=1)
    axes[1].set_title("mean completion length (tokens)")
    axes[2].plot(steps, [r["kl"] for r in rows], lw=1)
    axes[2].set_title("KL to the reference (k3)")
    for a in axes:
        a.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
