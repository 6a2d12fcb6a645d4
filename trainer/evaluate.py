"""Greedy, batched evaluation: what a kiosk visitor would meet, family by family.

Columns (each figure counts distinct questions, printed beside it):
  canonical      held-out problems of the training range, asked in the family's canonical phrasing;
  phrasings      held-out problems asked in the phrasings training never uses (Phrasings.heldout);
  extrapolation  problems one or two sizes beyond the training range, canonical phrasing;
and one row for questions no family covers (runtime/tasks/scope.py): how many of them get the refusal.
A refusal of an in-range question is a false refusal, counted over the canonical and phrasings columns.

fib has 41 problems (n = 0..40), all of them trained on: its canonical column lists all 41 (the "trained"
column kind) and the held-out phrasings ask each of them in an unseen phrasing. FAQ's canonical column is
its own training questions, its phrasings column the same in the two phrasings training never uses. Their
trained columns do not count in the held-out mean "all"; their phrasings columns do.
"""
import numpy as np

from runtime.tasks import FAMILIES, OUT_OF_SCOPE, REFUSAL, Problem, score
from trainer.generate import generate_texts

COLUMNS = ("canonical", "phrasings", "extrapolation")


def distinct(draw, n, tries=30):
    """Up to n distinct questions from draw() (a Problem), in drawing order; fewer when the split holds fewer."""
    seen = {}
    for _ in range(n * tries):
        p = draw()
        seen.setdefault(p.question, p)
        if len(seen) == n:
            break
    return list(seen.values())


def problems(family, column, n, seed):
    """The distinct problems of one cell of the table (seeded per family and column)."""
    fam = FAMILIES[family]
    rng = np.random.default_rng([seed, sum(map(ord, family)), COLUMNS.index(column)])
    which = "heldout" if column == "phrasings" else "canonical"
    if fam.every is not None and column != "extrapolation":     # fib, faq: every problem, each once
        return [fam.problem(params, rng, which) for params in fam.every()]
    split = "extrapolate" if column == "extrapolation" else "heldout"
    return distinct(lambda: fam.sample(rng, split, which), n)


def out_of_scope(n, seed):
    """n distinct held-out questions that no family covers."""
    rng = np.random.default_rng([seed, 7])
    return distinct(lambda: Problem("refuse", OUT_OF_SCOPE.sample(rng, "heldout"), REFUSAL), n)


def checkpoint_generator(params, cfg, tok):
    """Greedy completions from trainer weights, batched by prompt length."""
    return lambda questions, max_new: generate_texts(params, cfg, tok, questions, max_new)


def runtime_generator(model):
    """Greedy completions from a compiled model (runtime.Model), one question at a time."""
    return lambda questions, max_new: ["".join(model.generate(q, max_new_tokens=max_new)) for q in questions]


def cells(families, n, seed, extrapolate, phrasings):
    out = []
    for fam in families:
        for column in COLUMNS:
            if (column == "extrapolation" and (not extrapolate or fam == "faq")) or \
                    (column == "phrasings" and not phrasings):
                continue
            kind = "trained" if column == "canonical" and FAMILIES[fam].every is not None else column
            out.append((fam, kind, problems(fam, column, n, seed)))
    return out


def evaluate(params, cfg, tok, families=None, n=200, seed=0, max_new_tokens=None, extrapolate=True,
             phrasings=True, refusals=True, progress=False, generator=None):
    """-> list of rows {family, column, n (distinct questions), accuracy, format, mean_tokens, refused,
    wrong (the questions answered wrongly, for fib)}; the out-of-scope row has family "refuse" and accuracy =
    the share refused.

    `generator(questions, max_new_tokens) -> completion texts` defaults to the trainer model
    (params, cfg); pass runtime_generator(model) to evaluate a compiled file with the same table."""
    families = list(families or FAMILIES)
    generator = generator or checkpoint_generator(params, cfg, tok)
    max_new = max_new_tokens or cfg.max_position_embeddings
    jobs = cells(families, n, seed, extrapolate, phrasings)
    if refusals:
        jobs.append(("refuse", "out-of-scope", out_of_scope(max(n, 200), seed)))
    rows = []
    from tqdm import tqdm
    for fam, column, probs in tqdm(jobs, disable=not progress, desc="eval", unit="cell"):
        room = cfg.max_position_embeddings - max(len(tok.encode_prompt(p.question)) for p in probs)
        texts = generator([p.question for p in probs], min(max_new, room))
        scores = [score(p.question, t) for p, t in zip(probs, texts)]
        right = [s["refused"] if fam == "refuse" else s["correct"] for s in scores]
        rows.append({"family": fam, "column": column, "n": len(probs),
                     "accuracy": float(np.mean(right)),
                     "format": float(np.mean([s["well_formed"] for s in scores])),
                     "mean_tokens": float(np.mean([len(tok.encode(t)) for t in texts])),
                     "refused": int(sum(s["refused"] for s in scores)),
                     "wrong": [p.question for p, r in zip(probs, right) if not r] if fam == "fib" else []})
    return rows


def _cell(r):
    return "n/a" if r is None else f"{r['accuracy']:.1%} ({r['n']})"


def format_table(rows):
    """Markdown: family | canonical | held-out phrasings | extrapolation | format | mean tokens, each figure
    with its number of distinct questions; then "all" (the held-out mean), the out-of-scope refusals and the
    false refusals; fib's wrong questions, if any."""
    by = {(r["family"], r["column"]): r for r in rows}
    lines = ["| family | canonical (held out) | held-out phrasings | extrapolation | format | mean tokens |",
             "|---|---:|---:|---:|---:|---:|"]
    for fam in dict.fromkeys(r["family"] for r in rows if r["family"] != "refuse"):
        canon = by.get((fam, "canonical")) or by.get((fam, "trained"))
        mine = [r for r in rows if r["family"] == fam and r["column"] != "extrapolation"]
        fmt = sum(r["format"] * r["n"] for r in mine) / sum(r["n"] for r in mine)
        note = " (all trained)" if canon and canon["column"] == "trained" else ""
        lines.append(f"| {fam}{note} | {_cell(canon)} | {_cell(by.get((fam, 'phrasings')))} | "
                     f"{_cell(by.get((fam, 'extrapolation')))} | {fmt:.1%} | {canon['mean_tokens']:.0f} |")
    means = held_out_means(rows)
    if means["canonical"] is not None:
        lines.append(f"| **all** | {means['canonical']:.1%} | "
                     f"{'n/a' if means['phrasings'] is None else format(means['phrasings'], '.1%')} | "
                     f"{'n/a' if means['extrapolation'] is None else format(means['extrapolation'], '.1%')} | "
                     f"{means['format']:.1%} | |")
    ref = by.get(("refuse", "out-of-scope"))
    if ref:
        lines.append(f"| out of scope: refused | {_cell(ref)} | | | {ref['format']:.1%} | {ref['mean_tokens']:.0f} |")
    in_range = [r for r in rows if r["family"] != "refuse" and r["column"] != "extrapolation"]
    if in_range:
        k, total = sum(r["refused"] for r in in_range), sum(r["n"] for r in in_range)
        lines.append(f"\nFalse refusals: {k} of {total} in-range questions ({k / total:.1%}).")
    for r in rows:
        if r["family"] == "fib" and r["column"] != "extrapolation":
            wrong = ", ".join(str(FAMILIES["fib"].parse(q)) for q in r["wrong"])
            lines.append(f"fib, {r['column']}: {r['n'] - len(r['wrong'])} of {r['n']} right"
                         + (f"; wrong for n = {wrong}" if wrong else ""))
    return "\n".join(lines)


def format_side_by_side(named):
    """Markdown comparing runs on one evaluation: [(name, rows)] -> one table per column (canonical, held-out
    phrasings, extrapolation) with a run in each column and "all" at the bottom, then one of the
    out-of-scope refusals and the false refusals."""
    names = [name for name, _ in named]
    by = [{(r["family"], r["column"]): r for r in rows} for _, rows in named]
    means = [held_out_means(rows) for _, rows in named]
    families = list(dict.fromkeys(r["family"] for _, rows in named for r in rows if r["family"] != "refuse"))
    tables = []
    for col in ("canonical", "phrasings", "extrapolation"):
        lines = [f"| {col} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for fam in families:
            cells = [_cell(b.get((fam, col)) or (b.get((fam, "trained")) if col == "canonical" else None)) for b in by]
            trained = any((fam, "trained") in b for b in by)
            lines.append(f"| {fam}{' (all trained)' if trained else ''} | " + " | ".join(cells) + " |")
        lines.append("| **all** | " + " | ".join("n/a" if m[col] is None else f"**{m[col]:.1%}**" for m in means) + " |")
        tables.append("\n".join(lines))
    false = []
    for _, rows in named:
        in_range = [r for r in rows if r["family"] != "refuse" and r["column"] != "extrapolation"]
        k, total = sum(r["refused"] for r in in_range), sum(r["n"] for r in in_range)
        false.append(f"{k} of {total} ({k / max(total, 1):.1%})")
    tables.append("\n".join(["| out of scope | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names),
                              "| refused | " + " | ".join(_cell(b.get(("refuse", "out-of-scope"))) for b in by) + " |",
                              "| false refusals (in range) | " + " | ".join(false) + " |"]))
    return "\n\n".join(tables)


def held_out_means(rows):
    """{canonical, phrasings, extrapolation, format}: each column averaged over families (canonical over
    families with held-out problems, so not fib or faq); format over every in-range answer."""
    def mean(column):
        acc = [r["accuracy"] for r in rows if r["column"] == column and r["family"] != "refuse"]
        return float(np.mean(acc)) if acc else None
    in_range = [r for r in rows if r["family"] != "refuse" and r["column"] != "extrapolation"]
    fmt = sum(r["format"] * r["n"] for r in in_range) / max(1, sum(r["n"] for r in in_range))
    return {"canonical": mean("canonical"), "phrasings": mean("phrasings"), "extrapolation": mean("extrapolation"),
            "format": fmt}


def held_out_mean(rows):
    """(accuracy, format): the canonical held-out mean, the table's "all"."""
    m = held_out_means(rows)
    return m["canonical"], m["format"]
