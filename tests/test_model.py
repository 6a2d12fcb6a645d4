"""Model assembly: shapes, counts, KV-cached decoding equals the full-sequence forward."""
import numpy as np
import pytest

from conftest import tiny_config
from runtime.tokenizer import Tokenizer
from trainer import model as M
from trainer.config import ModelConfig
from trainer.generate import generate, new_kv, step_logits


def test_default_student_size_is_about_one_million():
    cfg = ModelConfig()
    assert 0.8e6 < M.count_params(cfg) < 2e6
    assert M.count_params(cfg, active=True) < M.count_params(cfg)


@pytest.mark.parametrize("over", [dict(), dict(q_lora_rank=None, n_group=1, topk_group=1), dict(first_k_dense_replace=3)])
def test_cached_token_by_token_equals_full_sequence(rng, over):
    cfg = tiny_config(**over)
    p = M.init_params(cfg, 3, np.float64)
    ids = rng.integers(0, cfg.vocab_size, (3, 10))
    full = M.logits(p, cfg, ids)                              # (B, T, V)
    kv = new_kv(cfg, 3, 10, np.float64)
    got = [step_logits(p, cfg, ids[:, :4], kv, 0)]            # prefill 4, then one at a time
    for t in range(4, 9):
        got.append(step_logits(p, cfg, ids[:, t:t + 1], kv, t))
    np.testing.assert_allclose(np.stack(got, 1), full[:, 3:9], atol=1e-10)


def test_overlong_sequence_is_a_clear_error():
    cfg = tiny_config(max_position_embeddings=8)
    p = M.init_params(cfg, 0)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=8"):
        M.logits(p, cfg, np.zeros((1, 9), np.int64))


def test_greedy_generation_is_bit_reproducible_and_sampling_is_seeded():
    tok = Tokenizer()
    cfg = tiny_config(vocab_size=tok.vocab_size, max_position_embeddings=40)
    p = M.init_params(cfg, 5)
    prompts = [[tok.bos_id] + tok.encode("What is 1+2?")] * 3
    a = generate(p, cfg, tok, prompts, 20)
    assert a == generate(p, cfg, tok, prompts, 20) and a[0] == a[1] == a[2]
    s1 = generate(p, cfg, tok, prompts, 20, temperature=1.0, seed=7)
    assert s1 == generate(p, cfg, tok, prompts, 20, temperature=1.0, seed=7)
    assert s1 != generate(p, cfg, tok, prompts, 20, temperature=1.0, seed=8)


def test_balancing_bias_moves_toward_underloaded_experts():
    from trainer.sft import update_balance_bias
    cfg = tiny_config(num_nextn_predict_layers=0)
    p = M.init_params(cfg, 0)
    loads = [np.array([10, 0, 5, 5]), np.array([1, 1, 1, 9])]
    update_balance_bias(p, loads, 0.01)
    b1, b2 = p["layers.1.mlp." + M.BUFFER_SUFFIX], p["layers.2.mlp." + M.BUFFER_SUFFIX]
    np.testing.assert_allclose(b1, [-0.01, 0.01, 0.0, 0.0])
    np.testing.assert_allclose(b2, [0.01, 0.01, 0.01, -0.01])
