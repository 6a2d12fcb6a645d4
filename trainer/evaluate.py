"""Greedy, batched evaluation on held-out problems of each task family.

Per family: accuracy (the family's verifier on the extracted answer), format compliance (strict
full match of `<think>..</think><answer>..</answer>`), and mean response length in tokens. Plus an
extrapolation row per family, one size beyond the training range, reported as it is.

FAQ has no held-out split: its rows (split "train") score recall of its own training questions, so they
are reported apart and never count in the held-out "all".
"""
import numpy as np

from runtime.tasks import FAMILIES, score
from trainer.generate import generate_texts


def problems(family, split, n, seed):
    """n problems of a family's split, seeded per family; FAQ draws from its own training questions."""
    fam = FAMILIES[family]
    if fam.fixed_split:
        return [fam.sample(np.random.default_rng([seed, i]), "heldout") for i in range(n)]
    rng = np.random.default_rng([seed, sum(map(ord, family)), 0 if split == "heldout" else 1])
    return [fam.sample(rng, split) for _ in range(n)]


def checkpoint_generator(params, cfg, tok):
    """Greedy completions from trainer weights, batched by prompt length."""
    return lambda questions, max_new: generate_texts(params, cfg, tok, questions, max_new)


def runtime_generator(model):
    """Greedy completions from a compiled model (runtime.Model), one question at a time."""
    return lambda questions, max_new: ["".join(model.generate(q, max_new_tokens=max_new)) for q in questions]


def evaluate(params, cfg, tok, families=None, n=200, seed=0, max_new_tokens=None, extrapolate=True,
             progress=False, generator=None):
    """-> list of rows {family, split, n, accuracy, format, mean_tokens}.

    `generator(questions, max_new_tokens) -> completion texts` defaults to the trainer model
    (params, cfg); pass runtime_generator(model) to evaluate a compiled file with the same table."""
    families = list(families or FAMILIES)
    generator = generator or checkpoint_generator(params, cfg, tok)
    max_new = max_new_tokens or cfg.max_position_embeddings
    splits = ["heldout"] + (["extrapolate"] if extrapolate else [])
    fixed = {f for f in families if FAMILIES[f].fixed_split}         # faq: no held-out questions exist
    jobs = [(f, "train" if f in fixed else s) for s in splits for f in families
            if not (f in fixed and s == "extrapolate")]
    rows = []
    from tqdm import tqdm
    for fam, split in tqdm(jobs, disable=not progress, desc="eval", unit="family"):
        probs = problems(fam, split, n, seed)
        room = cfg.max_position_embeddings - max(len(tok.encode(p.question)) + 1 for p in probs)
        texts = generator([p.question for p in probs], min(max_new, room))
        scores = [score(p.question, t) for p, t in zip(probs, texts)]
        rows.append({"family": fam, "split": split, "n": len(probs),
                     "accuracy": float(np.mean([s["correct"] for s in scores])),
                     "format": float(np.mean([s["well_formed"] for s in scores])),
                     "mean_tokens": float(np.mean([len(tok.encode(t)) for t in texts]))})
    return rows


def format_table(rows):
    """Markdown table: family | held-out acc | format | tokens | extrapolation acc; then the held-out mean
    ("all"), then families scored on their training questions (faq), apart from it."""
    held = {r["family"]: r for r in rows if r["split"] == "heldout"}
    extra = {r["family"]: r for r in rows if r["split"] == "extrapolate"}
    lines = ["| family | held-out accuracy | format | mean tokens | extrapolation accuracy |",
             "|---|---:|---:|---:|---:|"]
    for fam, r in held.items():
        e = extra.get(fam)
        lines.append(f"| {fam} | {r['accuracy']:.1%} | {r['format']:.1%} | {r['mean_tokens']:.0f} | "
                     f"{'n/a' if e is None else format(e['accuracy'], '.1%')} |")
    if held:
        acc, fmt = held_out_mean(rows)
        lines.append(f"| **all** | {acc:.1%} | {fmt:.1%} | | |")
    for r in rows:
        if r["split"] == "train":
            lines.append(f"| {r['family']} (its training questions: not held out, not in all) | {r['accuracy']:.1%} "
                         f"| {r['format']:.1%} | {r['mean_tokens']:.0f} | n/a |")
    return "\n".join(lines)


def held_out_mean(rows):
    """(accuracy, format) averaged over the families' held-out rows: the table's "all"."""
    held = [r for r in rows if r["split"] == "heldout"]
    return float(np.mean([r["accuracy"] for r in held])), float(np.mean([r["format"] for r in held]))
