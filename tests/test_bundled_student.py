"""The bundled default student: size, what int8 compilation keeps of it, and the README's claims about it
(the demo's seven answers, the eval table, the file sizes), each read from README.md and checked here."""
import math
import os
import re

import numpy as np
import pytest

from compiler.compile import compile_model, load_source
from runtime.speed import QUESTIONS as SEED_QUESTIONS
from runtime.loader import parse_document
from runtime.model import Model, load
from runtime.tasks import FAMILIES, score
from trainer import checkpoint
from trainer.data import sequence
from trainer.evaluate import evaluate, held_out_mean
from trainer.model import count_params
from trainer.recipe import load_recipe
from trainer.tasks import target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT = os.path.join(ROOT, "trainer", "checkpoints", "student")
with open(os.path.join(ROOT, "README.md")) as _f:
    README = _f.read()


@pytest.fixture(scope="module")
def student():
    params, cfg, tok, info = checkpoint.load(CKPT)
    f32 = Model(parse_document(compile_model(params, cfg, tok, quant="float32")[0]))
    data8 = compile_model(params, cfg, tok, quant="int8")[0]
    return params, cfg, tok, info, f32, Model(parse_document(data8)), len(data8)


def test_size_and_shipped_metadata(student):
    params, cfg, tok, info, *_, size8 = student
    assert size8 <= 4_000_000, "the issue's bound on the compiled file: 4 MB"
    assert "optim_step" not in info and not os.path.exists(os.path.join(CKPT, "optim.npz"))
    assert info["eval"], "the checkpoint records its eval table"


def test_recorded_recipe_describes_the_bundle(student):
    # checkpoint.json names the recipe (and, for a pipeline, the stage) that trained it; follow a stage's
    # init chain back to the stage that built the model, whose configuration must be the bundle's
    params, cfg, tok, info, *_ = student
    recipe = load_recipe(os.path.join(ROOT, info["recipe_file"]))
    if recipe.stages:
        stages = {s.name: s for s in recipe.stages}
        st = stages[info["stage"]]
        assert st.recipe.sft.steps == info["step"]
        while st.recipe.sft.init in stages:
            st = stages[st.recipe.sft.init]
        recipe = st.recipe
    else:
        assert recipe.sft.steps == info["step"] and recipe.name == info["recipe"]
    context = 0                                   # the latest sft.context on the chain sets the context
    while recipe.sft.init:                        # continued from a bundled student (v4 from v3): its recipe
        context = context or recipe.sft.context   # built the model
        init_info = checkpoint.load(os.path.join(ROOT, recipe.sft.init))[3]
        recipe = load_recipe(os.path.join(ROOT, init_info["recipe_file"]))
    have, want = cfg.to_dict(), recipe.model.to_dict()
    want["max_position_embeddings"] = context or want["max_position_embeddings"]
    diff = {k: (v, have[k]) for k, v in want.items() if have[k] != v}
    assert not diff, f"{info['recipe_file']}: model differs from the bundle in {diff}"


def test_int8_file_is_at_most_1_15_bytes_per_parameter(student):
    params, cfg, *_, size8 = student
    assert size8 <= 1.15 * count_params(cfg)


def held_out_traces(n_per_family=12):
    rng = np.random.default_rng(99)
    return [p.question for f in FAMILIES.values() for p in (f.sample(rng, "heldout") for _ in range(n_per_family))]


def test_int8_greedy_next_token_agreement_on_held_out_traces(student):
    params, cfg, tok, info, f32, i8, _ = student
    agree = total = 0
    for q in held_out_traces():
        ids, start = sequence(tok, q, target(q))           # a places model's question and answer marked
        ids, prompt = ids[:-1], ids[:start]
        if len(ids) > cfg.max_position_embeddings:          # v1 (256 tokens) cannot hold v2's longest traces
            continue
        a = f32.logits(ids)[len(prompt) - 1:].argmax(-1)
        b = i8.logits(ids)[len(prompt) - 1:].argmax(-1)
        agree += int((a == b).sum())
        total += len(a)
    assert agree / total >= 0.99, f"int8 agrees with float on {agree}/{total} next tokens"


def test_prefill_of_the_last_position_alone_matches_all_positions(student):
    """A prefill computes its last attention for the last position only (runtime/mla.py last_only): its logits
    are those of the all-positions pass up to float rounding, and the greedy token the same, on held-out
    questions of every family (`pytest -s -k last_position` prints the largest difference)."""
    i8, worst = student[5], 0.0
    for q in held_out_traces(30):                            # 300 questions
        ids = i8.encode_prompt(q)
        i8.reset()
        last = i8.forward(ids)[-1]
        every = i8.logits(ids)[-1]
        worst = max(worst, float(np.abs(last - every).max()))
        assert last.argmax() == every.argmax(), q
    print(f"\nlast position alone vs all positions: max |logit diff| {worst:.1e}")
    assert worst < 1e-4


def test_seed_questions_same_text_float_and_int8_mostly(student):
    *_, f32, i8, _ = student
    same = sum("".join(f32.generate(q)) == "".join(i8.generate(q)) for q in SEED_QUESTIONS)
    assert same >= len(SEED_QUESTIONS) - 1


def test_mtp_drafts_leave_greedy_text_unchanged_and_are_mostly_accepted(student):
    *_, i8, _ = student
    assert i8.has_mtp, "the bundled student carries its MTP head into the compiled file"
    drafted = accepted = 0
    for q in held_out_traces(2) + SEED_QUESTIONS:
        spec = {}
        assert "".join(i8.generate(q)) == "".join(i8.generate(q, speculative=True, stats=spec)), q
        drafted, accepted = drafted + spec["drafted"], accepted + spec["accepted"]
    assert accepted / drafted >= 0.7, f"{accepted}/{drafted} drafts accepted"


# ---------------------------------------------------------------- the README's claims
DEMO = SEED_QUESTIONS + ["Hello"]          # `make demo`: the seven seed questions and a greeting


def readme_demo():
    """The `make demo` transcript in the README: [(question, completion, tokens, verdict)]."""
    return re.findall(r"^Q: (.+)\n(<think>.*</answer>)\n\[(\d+) tokens, .*(?:verifier|out of scope): "
                      r"(right|wrong|refused|answered anyway)\]$", README, re.M)


def test_demo_answers_are_exactly_what_the_readme_prints(student_file):
    demo = readme_demo()
    assert [q for q, *_ in demo] == DEMO, "the README's demo lists the seven seed questions and Hello"
    model = load(student_file)                               # int8, compiled as `make demo` compiles it
    for question, text, tokens, verdict in demo:
        stats = {}
        got = "".join(model.generate(question, stats=stats))
        assert got == text, f"{question}: README prints {text!r}, the int8 student answers {got!r}"
        assert stats["tokens"] == int(tokens)
        s = score(question, got)
        assert verdict == ({True: "right", False: "wrong"}[s["correct"]] if s["family"] else
                           "refused" if s["refused"] else "answered anyway")


SECTION = ("## The bundled student", "### What the table says")
OLDER = {d[len("student-"):]: os.path.join(ROOT, "trainer", "checkpoints", d)          # v1, v2, ...: earlier students
         for d in sorted(os.listdir(os.path.join(ROOT, "trainer", "checkpoints")), key=lambda d: (len(d), d))
         if re.fullmatch(r"student-v\d+", d)}


def test_side_by_side_is_the_recorded_evals(student):
    """The README's side-by-side tables are what `tinyr1 eval` printed for each student on the same evaluation,
    as their checkpoint.json files record it, with the command: every earlier student kept in
    trainer/checkpoints and the bundled one, named by its recipe (student-v6 -> v6). The bundled students v1 to
    v7 are all kept; later runs only when a next run started from them (v11), so versions may skip. A student
    after the bundle (a run's start) is not the bundle's past and is left out."""
    from trainer.evaluate import format_side_by_side
    bundled = student[3]["recipe"].removeprefix("student-")
    infos = [(v, checkpoint.load(path)[3]) for v, path in OLDER.items() if int(v[1:]) < int(bundled[1:])]
    infos += [(bundled, student[3])]
    versions = [int(v[1:]) for v, _ in infos]
    assert versions[:7] == list(range(1, 8)) and versions == sorted(versions), "v1 to v7, then later ones, in order"
    table = format_side_by_side([(v, info["eval"]) for v, info in infos])
    section = README[README.index(f"### Students v1 to {bundled} side by side"):]
    assert table in section, table
    for v, info in infos:
        assert f"`{info['eval_command']}`" in section, (v, info["eval_command"])


CELL = r"([\d.]+)% \((\d+)\)"


def readme_eval_table():
    """The bundled student's `tinyr1 eval` table in the README -> {(family, column): (%, distinct questions)}
    with columns canonical (or trained), phrasings, extrapolation, and ("refuse", "out-of-scope")."""
    section = README[README.index(SECTION[0]):README.index(SECTION[1])]
    table = {}
    for fam, trained, *cells in re.findall(rf"^\| (\w+)( \(all trained\))? \| {CELL} \| {CELL} \| {CELL} \|", section, re.M):
        for column, (acc, n) in zip(("trained" if trained else "canonical", "phrasings", "extrapolation"),
                                    zip(cells[::2], cells[1::2])):
            table[fam, column] = (float(acc), int(n))
    for fam, acc, n, p_acc, p_n in re.findall(rf"^\| (faq) \(all trained\) \| {CELL} \| {CELL} \| n/a \|", section,
                                              re.M):
        table[fam, "trained"], table[fam, "phrasings"] = (float(acc), int(n)), (float(p_acc), int(p_n))
    acc, n = re.search(rf"^\| out of scope: refused \| {CELL} \|", section, re.M).groups()
    table["refuse", "out-of-scope"] = (float(acc), int(n))
    return table


TEST_N = 150            # this test: fresh problems (seed 1), so it checks the figures, not one draw of them
Z = 3.29                # two-sided 99.9%


def agresti_caffo(p_readme, n_readme, k_test, n_test):
    """(difference, its standard error) between the README's rate (of n_readme questions) and this run's
    k_test / n_test, with one success and one failure added to each sample (Agresti and Caffo 2000): it
    stays honest at 0% and 100%, where the plain binomial error is zero."""
    k_readme = round(p_readme * n_readme)
    a, b = (k_readme + 1) / (n_readme + 2), (k_test + 1) / (n_test + 2)
    return b - a, math.sqrt(a * (1 - a) / (n_readme + 2) + b * (1 - b) / (n_test + 2))


@pytest.fixture(scope="module")
def fresh_eval():
    params, cfg, tok, _ = checkpoint.load(CKPT)
    return evaluate(params, cfg, tok, n=TEST_N, seed=1)


def test_eval_table_in_the_readme_holds_on_fresh_problems(fresh_eval):
    """Every cell of the README's table against fresh questions (seed 1). Greedy answers are deterministic and
    the questions are drawn independently, so a cell's correct count is binomial: README and test may differ
    by Z standard errors of the difference of two binomial rates (1.8-2.5 points at 100%, 14-18 at 50%).
    fib and FAQ list every question they have, so theirs must match exactly."""
    table = readme_eval_table()
    assert {f for f, _ in table} == set(FAMILIES) | {"refuse"}
    bad = []
    for r in fresh_eval:
        want, n_readme = table[r["family"], r["column"]]
        if r["column"] == "trained":                       # fib and FAQ list every problem, in fixed phrasings
            ok = round(r["accuracy"] * 1000) == round(want * 10) and r["n"] == n_readme
            bound = 0
        else:
            diff, se = agresti_caffo(want / 100, n_readme, round(r["accuracy"] * r["n"]), r["n"])
            ok, bound = abs(diff) <= Z * se, Z * se
        print(f"{r['family']} {r['column']}: README {want:.1f}% of {n_readme}, fresh {r['accuracy']:.1%} of {r['n']}")
        if not ok:
            bad.append(f"{r['family']} {r['column']}: README {want:.1f}%, fresh {r['accuracy']:.1%} (bound {bound:.1%})")
    assert not bad, "\n".join(bad)
    acc, fmt = held_out_mean(fresh_eval)
    section = README[README.index(SECTION[0]):README.index(SECTION[1])]
    readme_fmt = float(re.search(r"^\| \*\*all\*\* \|[^|]*\|[^|]*\|[^|]*\| ([\d.]+)% \|", section, re.M).group(1))
    assert abs(100 * fmt - readme_fmt) <= 3, (fmt, readme_fmt)     # share of well-formed in-range answers


def test_file_sizes_in_the_readme_are_what_compile_writes(monkeypatch):
    """The README's `file` row, from `tinyr1 compile` (int8) and `tinyr1 compile --quant float32`. The file
    records the compiler's git commit; it is pinned to a 7-character one, the length git prints here."""
    import compiler.compile
    monkeypatch.setattr(compiler.compile, "git_commit", lambda: "0000000")
    row = re.search(r"^\| file \| ([\d,]+) bytes: ([\d.]+) bytes per parameter \(([\d,]+) int8 weights.*?"
                    r"([\d,]+) float32 norm.*?float32 compile ([\d,]+) bytes \|$", README, re.M)
    size8, per_param, int8_weights, f32_values, size32 = (float(x.replace(",", "")) for x in row.groups())
    params, cfg, tok, prov = load_source(CKPT)
    data8, graph, report = compile_model(params, cfg, tok, quant="int8", provenance=prov)
    data32 = compile_model(params, cfg, tok, quant="float32", provenance=prov)[0]
    body = parse_document(data8)
    int8 = {name for name, q in body["quant"].items() if q["scheme"] != "none"}
    n8 = sum(a.size for name, a in body["arrays"].items() if name in int8)
    nf = sum(a.size for name, a in body["arrays"].items() if name not in int8)
    assert (len(data8), len(data32), n8, nf) == (size8, size32, int8_weights, f32_values)
    assert round(len(data8) / count_params(cfg), 3) == per_param
