"""Evaluation plumbing: a perfect model scores 100%, a wrong one 0%, on held-out problems only."""

from conftest import tiny_config
from runtime.tasks import split_of
from runtime.tokenizer import Tokenizer
from trainer import evaluate as E
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
                                                          ("faq", "heldout"), ("add", "extrapolate"),
                                                          ("quadratic", "extrapolate")]
    assert all(r["accuracy"] == 1.0 and r["format"] == 1.0 for r in rows)
    assert all(split_of(q) == "heldout" for q in seen[:40])     # never a training problem
    monkeypatch.setattr(E, "generate_texts", lambda *a, **k: ["<think>x</think><answer>-1</answer>"] * len(a[3]))
    rows = E.evaluate(params, cfg, tok, ["add"], n=10, extrapolate=False)
    assert rows[0]["accuracy"] == 0.0 and rows[0]["format"] == 1.0
    assert "| add | 0.0% | 100.0% |" in E.format_table(rows)


def test_untrained_model_runs_end_to_end():
    tok = Tokenizer()
    cfg = tiny_config(vocab_size=tok.vocab_size, max_position_embeddings=64)
    rows = E.evaluate(init_params(cfg, 0), cfg, tok, ["add"], n=4, max_new_tokens=10, extrapolate=False)
    assert rows[0]["n"] == 4 and 0 <= rows[0]["accuracy"] <= 1 and rows[0]["mean_tokens"] <= 10
