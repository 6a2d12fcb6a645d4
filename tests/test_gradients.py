"""Finite-difference gradient checks in float64: each layer type alone, then the whole model."""
import numpy as np
import pytest

from conftest import tiny_config
from trainer import layers, model as M
from trainer.mla import mla_backward, mla_forward
from trainer.moe import moe_backward, moe_forward

TOL = 1e-4


def numeric_check(f, arrays, grads, rng, n=32, eps=1e-6):
    """Compare analytic grads with central differences at n distinct random entries of every array (every
    entry of a smaller one)."""
    worst = biggest = worst_abs = 0.0
    checked = nonzero = 0
    for name, a in arrays.items():
        for flat in rng.choice(a.size, min(n, a.size), replace=False):
            ix = np.unravel_index(flat, a.shape)
            old = a[ix]
            a[ix] = old + eps
            fp = f()
            a[ix] = old - eps
            fm = f()
            a[ix] = old
            num, ana = (fp - fm) / (2 * eps), grads[name][ix]
            biggest, worst_abs = max(biggest, abs(num)), max(worst_abs, abs(num - ana))
            checked, nonzero = checked + 1, nonzero + (abs(num) > 1e-9)
            if abs(num - ana) > 1e-9:                 # ~ the rounding noise of (fp - fm) / 2eps for |f| ~ 1-10
                worst = max(worst, abs(num - ana) / (abs(num) + abs(ana)))
    print(f"\nworst relative gradient error {worst:.1e} (worst absolute {worst_abs:.1e}) at {checked} entries "
          f"of {len(arrays)} arrays ({nonzero} with |gradient| > 1e-9, largest {biggest:.1e})")
    return worst


def perturb_norms(p, rng):
    for k in p:
        if p[k].ndim == 1 and not k.endswith(M.BUFFER_SUFFIX):
            p[k] = p[k] + rng.normal(0, 0.2, p[k].shape)


def test_rmsnorm(rng):
    x, w = rng.normal(size=(3, 5, 7)), rng.normal(size=7)
    dy = rng.normal(size=x.shape)
    f = lambda: float((layers.rmsnorm_forward(x, w, 1e-6)[0] * dy).sum())
    grads = {}
    _, c = layers.rmsnorm_forward(x, w, 1e-6)
    grads["x"] = layers.rmsnorm_backward(dy, c, grads, "w")
    assert numeric_check(f, {"x": x, "w": w}, grads, rng) < TOL


def test_swiglu(rng):
    x, Wg, Wu, Wd = rng.normal(size=(6, 5)), rng.normal(size=(4, 5)), rng.normal(size=(4, 5)), rng.normal(size=(5, 4))
    dy = rng.normal(size=(6, 5))
    f = lambda: float((layers.swiglu_forward(x, Wg, Wu, Wd)[0] * dy).sum())
    _, c = layers.swiglu_forward(x, Wg, Wu, Wd)
    dx, dWg, dWu, dWd = layers.swiglu_backward(dy, c, Wg, Wu, Wd)
    grads = {"x": dx, "Wg": dWg, "Wu": dWu, "Wd": dWd}
    assert numeric_check(f, {"x": x, "Wg": Wg, "Wu": Wu, "Wd": Wd}, grads, rng) < TOL


def test_rope_is_a_rotation_and_its_backward_is_the_transpose(rng):
    cos, sin = layers.rope_tables(np.arange(5), 6, 10000.0, np.float64)
    x, dy = rng.normal(size=(2, 5, 6)), rng.normal(size=(2, 5, 6))
    y = layers.rope_apply(x, cos, sin)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1))
    assert np.isclose((y * dy).sum(), (x * layers.rope_backward(dy, cos, sin)).sum())


def test_cross_entropy(rng):
    z, t, m = rng.normal(size=(7, 5)), rng.integers(0, 5, 7), (rng.random(7) > 0.3).astype(float)
    _, d = layers.cross_entropy(z, t, m)
    f = lambda: layers.cross_entropy(z, t, m)[0]
    assert numeric_check(f, {"z": z}, {"z": d}, rng) < TOL


@pytest.mark.parametrize("q_lora", [None, 5])
def test_mla(rng, q_lora):
    cfg = tiny_config(q_lora_rank=q_lora)
    p = M.init_params(cfg, 0, np.float64)
    perturb_norms(p, rng)
    pre = "layers.0.self_attn."
    x = rng.normal(size=(2, 6, cfg.hidden_size))
    rope = layers.rope_tables(np.arange(6), cfg.qk_rope_head_dim, cfg.rope_theta, np.float64)
    dy = rng.normal(size=x.shape)
    f = lambda: float((mla_forward(p, pre, cfg, x, *rope)[0] * dy).sum())
    _, c = mla_forward(p, pre, cfg, x, *rope)
    grads = {}
    grads["x"] = mla_backward(dy, c, p, pre, cfg, grads)
    arrays = {"x": x, **{k: p[k] for k in p if k.startswith(pre)}}
    assert set(arrays) - {"x"} <= set(grads)
    assert numeric_check(f, arrays, grads, rng) < TOL


@pytest.mark.parametrize("over", [dict(), dict(norm_topk_prob=False, n_group=1, topk_group=1, n_shared_experts=0)])
def test_moe_with_sequence_aux_loss(rng, over):
    cfg = tiny_config(**over)
    p = M.init_params(cfg, 0, np.float64)
    pre = "layers.2.mlp."
    p[pre + M.BUFFER_SUFFIX] = rng.normal(0, 0.1, cfg.n_routed_experts)
    x = rng.normal(size=(10, cfg.hidden_size))
    tmask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    dy = rng.normal(size=x.shape)
    from trainer.moe import seq_aux_terms

    def f():
        y, c = moe_forward(p, pre, cfg, x, tmask)
        return float((y * dy).sum()) + 0.05 * seq_aux_terms(c["s"], c["idx"], tmask, cfg)[0]
    _, c = moe_forward(p, pre, cfg, x, tmask)
    grads = {}
    grads["x"] = moe_backward(dy, c, p, pre, cfg, grads, aux_alpha=0.05)
    arrays = {"x": x, **{k: p[k] for k in p if k.startswith(pre) and not k.endswith(M.BUFFER_SUFFIX)}}
    assert numeric_check(f, arrays, grads, rng) < TOL


@pytest.mark.parametrize("over", [dict(), dict(tie_word_embeddings=True, q_lora_rank=None, first_k_dense_replace=0)])
def test_whole_model_with_moe_mla_mtp(rng, over):
    cfg = tiny_config(**over)
    p = M.init_params(cfg, 0, np.float64)
    perturb_norms(p, rng)
    tokens = rng.integers(1, cfg.vocab_size, (2, 9))
    tokens[1, 7:] = 0
    mask = (rng.random((2, 8)) > 0.3).astype(float)
    f = lambda: M.loss_and_grads(p, cfg, tokens, mask, 0.3, 0.01, need_grads=False)[0]
    _, grads, stats = M.loss_and_grads(p, cfg, tokens, mask, 0.3, 0.01)
    assert "mtp_ce" in stats
    trainable = {k: v for k, v in p.items() if not k.endswith(M.BUFFER_SUFFIX)}
    assert set(trainable) == set(grads), "every trainable parameter receives a gradient"
    assert numeric_check(f, trainable, grads, rng) < TOL
