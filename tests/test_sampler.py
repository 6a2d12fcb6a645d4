"""The one sampler (runtime.generate.sample_rows; `sample` is its one-row case): what it draws, and that the
trainer's batched generation and the compiled runtime give the same text for the same seed."""
import numpy as np
import pytest

from conftest import random_params, small_student, write_compiled
from runtime.generate import sample, sample_rows
from runtime.model import load
from runtime.tokenizer import Tokenizer
from trainer.generate import generate_texts


def test_one_row_is_the_batch_of_one_and_draws_one_number_per_row():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (6, 103)).astype(np.float32)
    for temperature, top_k, top_p in [(1.0, None, None), (0.7, 20, None), (1.3, None, 0.8), (0.5, 5, 0.9)]:
        batch = sample_rows(logits, np.random.default_rng(7), temperature, top_k, top_p)
        one_rng = np.random.default_rng(7)
        rows = [sample(row, one_rng, temperature, top_k, top_p) for row in logits]
        assert batch.tolist() == rows
        after = np.random.default_rng(7)
        after.random(6)
        assert one_rng.random() == after.random()               # six rows, six draws, nothing else


def test_greedy_is_the_first_argmax_and_draws_nothing():
    logits = np.array([[1.0, 3.0, 3.0, 0.0], [5.0, 5.0, 1.0, 1.0]], np.float32)
    rng = np.random.default_rng(3)
    assert sample_rows(logits, rng, 0.0).tolist() == [1, 0]
    assert sample(logits[0], rng, 0.0) == 1
    assert rng.random() == np.random.default_rng(3).random()


def test_the_sampler_follows_the_distribution_and_its_cuts():
    logits = np.log(np.array([[0.7, 0.2, 0.1]] * 20000))
    picks = sample_rows(logits, np.random.default_rng(0), 1.0)
    np.testing.assert_allclose(np.bincount(picks, minlength=3) / 20000, [0.7, 0.2, 0.1], atol=0.01)
    assert set(sample_rows(logits, np.random.default_rng(0), 1.0, top_k=1).tolist()) == {0}
    assert set(sample_rows(logits, np.random.default_rng(0), 1.0, top_k=2).tolist()) == {0, 1}
    assert set(sample_rows(logits, np.random.default_rng(0), 1.0, top_p=0.85).tolist()) == {0, 1}   # 0.7 < 0.85
    assert set(sample_rows(logits, np.random.default_rng(0), 1.0, top_p=0.6).tolist()) == {0}


@pytest.fixture(scope="module")
def float_pair(tmp_path_factory):
    """A tiny random student as trainer weights and as the float32 compiled file of the same weights."""
    cfg = small_student(max_position_embeddings=48)
    path = write_compiled(tmp_path_factory.mktemp("sampler") / "m.msgpack", cfg, "float32")
    return random_params(cfg), cfg, load(path)


@pytest.mark.parametrize("options", [dict(temperature=1.0), dict(temperature=0.8, top_k=12),
                                     dict(temperature=1.5, top_p=0.9), dict(temperature=0.0)])
def test_the_trainer_and_the_runtime_write_the_same_text_for_a_seed(float_pair, options):
    params, cfg, model = float_pair
    tok = Tokenizer()
    texts = set()
    for q in ("What is 1+1?", "Sort 5 3 9 1"):
        for seed in range(6):
            ours = generate_texts(params, cfg, tok, [q], 40, seed=seed, **options)[0]
            pi = "".join(model.generate(q, max_new_tokens=40, seed=seed, **options))
            assert ours == pi, (q, seed)
            texts.add(ours)
    assert len(texts) > (2 if options["temperature"] else 1)           # the seeds do change a sampled text
