"""Evaluation plumbing: a perfect model scores 100%, a wrong one 0%, on held-out problems only; FAQ (no
held-out questions exist) is reported apart from the held-out mean."""
import numpy as np

from conftest import tiny_config
from runtime.tasks import score, split_of
from runtime.tokenizer import Tokenizer
from trainer import evaluate as E
from trainer.generate import generate_texts
from trainer.model import init_params
from trainer.tasks import target


def test_perfect_and_wrong_models(monkeypatch):
    tok = Tokenizer()
    cfg = tiny_config(vocab_size=tok.vocab_size, max_position_embeddings=256)
    params = init_params(cfg, 0)
    seen = []

    def oracle(params, cfg, tok, questions, max_new_tokens, **kw):
        seen.extend(questions)
        return [target(q) for q in questions]
    monkeypatch.setattr(E, "generate_texts", oracle)
    rows = E.evaluate(params, cfg, tok, ["add", "quadratic", "faq"], n=20, extrapolate=True)
    assert [(r["family"], r["split"]) for r in rows] == [("add", "heldout"), ("quadratic", "heldout"),
                                                          ("faq", "train"), ("add", "extrapolate"),
                                                          ("quadratic", "extrapolate")]
    assert all(r["accuracy"] == 1.0 and r["format"] == 1.0 for r in rows)
    assert all(split_of(q) == "heldout" for q in seen[:40])     # never a training problem
    monkeypatch.setattr(E, "generate_texts", lambda *a, **k: ["<think>x</think><answer>-1</answer>"] * len(a[3]))
    rows = E.evaluate(params, cfg, tok, ["add"], n=10, extrapolate=False)
    assert rows[0]["accuracy"] == 0.0 and rows[0]["format"] == 1.0
    assert "| add | 0.0% | 100.0% |" in E.format_table(rows)


def test_untrained_model_rows_are_the_verifier_on_its_own_greedy_text():
    # the row of a real (untrained) model must be exactly the verifier and token counts of the texts the
    # model generates for the same seeded problems: the plumbing from generation to the table, end to end
    tok = Tokenizer()
    cfg = tiny_config(vocab_size=tok.vocab_size, max_position_embeddings=64)
    params = init_params(cfg, 0)
    rows = E.evaluate(params, cfg, tok, ["add", "faq"], n=4, max_new_tokens=10, extrapolate=False)
    assert [(r["family"], r["split"], r["n"]) for r in rows] == [("add", "heldout", 4), ("faq", "train", 4)]
    for r in rows:
        probs = E.problems(r["family"], "heldout", 4, 0)
        texts = generate_texts(params, cfg, tok, [p.question for p in probs], 10)
        scores = [score(p.question, t) for p, t in zip(probs, texts)]
        assert r["accuracy"] == np.mean([s["correct"] for s in scores])
        assert r["format"] == np.mean([s["well_formed"] for s in scores])
        assert r["mean_tokens"] == np.mean([len(tok.encode(t)) for t in texts]) <= 10


def test_table_reports_faq_apart_from_the_held_out_mean():
    rows = [{"family": "add", "split": "heldout", "accuracy": 0.5, "format": 1.0, "mean_tokens": 20},
            {"family": "mul", "split": "heldout", "accuracy": 0.7, "format": 0.9, "mean_tokens": 22},
            {"family": "faq", "split": "train", "accuracy": 1.0, "format": 1.0, "mean_tokens": 80}]
    table = E.format_table(rows)
    assert "| **all** | 60.0% | 95.0% |" in table                 # faq's 100% is not in the mean
    assert table.splitlines()[-1].startswith("| faq (its training questions: not held out, not in all) | 100.0% |")
    assert E.held_out_mean(rows) == (0.6, 0.95)
