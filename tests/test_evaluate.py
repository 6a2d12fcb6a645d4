"""Evaluation plumbing: a perfect model scores 100%, a wrong one 0%, on held-out problems only, in held-out
phrasings and beyond the range; out-of-scope questions count refusals; fib (all trained) and FAQ are reported
apart from the held-out mean; every figure carries its number of distinct questions."""
import numpy as np

from conftest import tiny_config
from runtime.tasks import FAMILIES, REFUSAL, family_of, score, split_of
from runtime.tokenizer import Tokenizer
from trainer import evaluate as E
from trainer.generate import generate_texts
from trainer.model import init_params
from trainer.tasks import target


def oracle_texts(questions):
    return [target(q) if family_of(q) else f"<think>x</think><answer>{REFUSAL}</answer>" for q in questions]


def test_perfect_and_wrong_models(monkeypatch):
    tok = Tokenizer()
    cfg = tiny_config(vocab_size=tok.vocab_size, max_position_embeddings=512)
    params = init_params(cfg, 0)
    seen = []

    def oracle(params, cfg, tok, questions, max_new_tokens, **kw):
        seen.append(questions)
        return oracle_texts(questions)
    monkeypatch.setattr(E, "generate_texts", oracle)
    rows = E.evaluate(params, cfg, tok, ["add", "quadratic", "fib", "faq"], n=20)
    assert [(r["family"], r["column"], r["n"]) for r in rows] == [
        ("add", "canonical", 20), ("add", "phrasings", 20), ("add", "extrapolation", 20),
        ("quadratic", "canonical", 20), ("quadratic", "phrasings", 20), ("quadratic", "extrapolation", 20),
        ("fib", "trained", 41), ("fib", "phrasings", 41), ("fib", "extrapolation", 5), ("faq", "trained", 6),
        ("faq", "phrasings", 6), ("refuse", "out-of-scope", 200)]
    assert all(r["accuracy"] == 1.0 and r["format"] == 1.0 for r in rows)
    assert all(len(set(qs)) == len(qs) for qs in seen)                       # distinct questions
    add = FAMILIES["add"]
    for qs in seen[:2]:
        assert all(split_of(add.phrase(add.parse(q))) == "heldout" for q in qs)    # never a training problem
    assert all(q.startswith("How much is") or q[0].isdigit() for q in seen[1])   # add's held-out phrasings
    table = E.format_table(rows)
    assert "| add | 100.0% (20) | 100.0% (20) | 100.0% (20) | 100.0% |" in table
    assert "| fib (all trained) | 100.0% (41) | 100.0% (41) | 100.0% (5) |" in table
    assert "| out of scope: refused | 100.0% (200) |" in table and "False refusals: 0 of " in table
    assert E.held_out_mean(rows) == (1.0, 1.0)                                 # add and quadratic only

    monkeypatch.setattr(E, "generate_texts", lambda *a, **k: [f"<think>x</think><answer>{REFUSAL}</answer>"] * len(a[3]))
    rows = E.evaluate(params, cfg, tok, ["add"], n=10, extrapolate=False)
    assert [r["accuracy"] for r in rows] == [0.0, 0.0, 1.0]                    # refuses everything
    assert "False refusals: 20 of 20 in-range questions (100.0%)." in E.format_table(rows)


def test_untrained_model_rows_are_the_verifier_on_its_own_greedy_text():
    # the row of a real (untrained) model must be exactly the verifier and token counts of the texts the
    # model generates for the same seeded problems: the plumbing from generation to the table, end to end
    tok = Tokenizer()
    cfg = tiny_config(vocab_size=tok.vocab_size, max_position_embeddings=64)
    params = init_params(cfg, 0)
    rows = E.evaluate(params, cfg, tok, ["add", "faq"], n=4, max_new_tokens=10, extrapolate=False, refusals=False)
    assert [(r["family"], r["column"], r["n"]) for r in rows] == [("add", "canonical", 4), ("add", "phrasings", 4),
                                                                   ("faq", "trained", 6), ("faq", "phrasings", 6)]
    for r in rows:
        probs = E.problems(r["family"], "phrasings" if r["column"] == "phrasings" else "canonical", 4, 0)
        texts = generate_texts(params, cfg, tok, [p.question for p in probs], 10)
        scores = [score(p.question, t) for p, t in zip(probs, texts)]
        assert r["accuracy"] == np.mean([s["correct"] for s in scores])
        assert r["format"] == np.mean([s["well_formed"] for s in scores])
        assert r["mean_tokens"] == np.mean([len(tok.encode(t)) for t in texts]) <= 10


def test_table_reports_trained_families_apart_from_the_held_out_mean():
    row = lambda fam, col, acc, fmt, n=10: {"family": fam, "column": col, "n": n, "accuracy": acc, "format": fmt,
                                            "mean_tokens": 20, "refused": 0, "wrong": []}
    rows = [row("add", "canonical", 0.5, 1.0), row("mul", "canonical", 0.7, 0.9), row("faq", "trained", 1.0, 1.0, 6),
            row("fib", "trained", 40 / 41, 1.0, 41) | {"wrong": ["What is fib(37)?"]}]
    table = E.format_table(rows)
    assert "| **all** | 60.0% | n/a | n/a |" in table                 # neither faq's nor fib's figure is in it
    assert "fib, trained: 40 of 41 right; wrong for n = 37" in table
    assert E.held_out_mean(rows)[0] == 0.6


def test_quadratic_has_at_least_fifty_held_out_problems():
    assert len(E.problems("quadratic", "canonical", 200, 0)) >= 50
