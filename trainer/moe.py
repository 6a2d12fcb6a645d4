"""DeepSeek-V3 Mixture-of-Experts FFN: sigmoid router, bias for selection only, shared experts.

Parameter names under `prefix` (HF layout):
  gate (E, d) router; e_score_correction_bias (E) balancing bias, not trained by gradient;
  experts.gate_up_proj (E, 2F, d) gate rows then up rows; experts.down_proj (E, d, F);
  shared_experts.{gate_proj, up_proj} (S*F, d), shared_experts.down_proj (d, S*F).
"""
import numpy as np

from trainer.layers import add_grad, swiglu_backward, swiglu_forward


def route(s, bias, cfg):
    """Pick K experts per token. s (N, E) sigmoid scores -> idx (N, K), weights (N, K).

    The bias only changes which experts are chosen; the weights are the unbiased scores."""
    N, E = s.shape
    sel = s + bias
    if cfg.n_group > 1:
        grouped = sel.reshape(N, cfg.n_group, E // cfg.n_group)
        group_score = np.sort(grouped, axis=-1)[..., -2:].sum(-1)           # (N, G): sum of top-2
        drop = np.argsort(-group_score, axis=-1, kind="stable")[:, cfg.topk_group:]
        grouped = grouped.copy()
        np.put_along_axis(grouped, np.broadcast_to(drop[..., None], drop.shape + grouped.shape[2:]),
                          -np.inf, axis=1)
        sel = grouped.reshape(N, E)
    K = cfg.num_experts_per_tok
    idx = np.argsort(-sel, axis=-1, kind="stable")[:, :K]                 # (N, K)
    w = np.take_along_axis(s, idx, axis=-1)
    return idx, w


def moe_forward(p, prefix, cfg, x, token_mask=None):
    """x (N, d) -> y (N, d). token_mask (B, T) of real tokens enables the sequence-wise aux loss
    statistics; the returned cache also carries `load` (E,) = tokens routed to each expert."""
    E, F = cfg.n_routed_experts, cfg.moe_intermediate_size
    logits = x @ p[prefix + "gate"].T                                       # (N, E)
    s = 1.0 / (1.0 + np.exp(-logits))
    idx, w_raw = route(s, p[prefix + "e_score_correction_bias"], cfg)
    denom = w_raw.sum(-1, keepdims=True) + 1e-20 if cfg.norm_topk_prob else 1.0
    w = w_raw / denom * cfg.routed_scaling_factor                           # (N, K)
    y = np.zeros_like(x)
    experts = []
    Wgu, Wd = p[prefix + "experts.gate_up_proj"], p[prefix + "experts.down_proj"]
    for e in range(E):
        rows, slots = np.nonzero(idx == e)
        if len(rows) == 0:
            experts.append(None)
            continue
        out, c = swiglu_forward(x[rows], Wgu[e, :F], Wgu[e, F:], Wd[e])
        y[rows] += w[rows, slots, None] * out
        experts.append((rows, slots, out, c))
    shared = None
    if cfg.n_shared_experts:
        ys, shared = swiglu_forward(x, *(p[prefix + "shared_experts." + n] for n in ("gate_proj", "up_proj", "down_proj")))
        y += ys
    valid = np.ones(len(x), bool) if token_mask is None else token_mask.reshape(-1).astype(bool)
    load = np.bincount(idx[valid].ravel(), minlength=E)
    cache = dict(x=x, s=s, idx=idx, w_raw=w_raw, denom=denom, w=w, experts=experts, shared=shared,
                 load=load, token_mask=token_mask)
    return y, cache


def moe_backward(dy, cache, p, prefix, cfg, grads, aux_alpha=0.0):
    """dy (N, d) -> dx (N, d). aux_alpha > 0 adds the sequence-wise balance loss gradient."""
    x, s, idx, w_raw, denom, w = (cache[k] for k in ("x", "s", "idx", "w_raw", "denom", "w"))
    F = cfg.moe_intermediate_size
    Wgu, Wd = p[prefix + "experts.gate_up_proj"], p[prefix + "experts.down_proj"]
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)                                                   # (N, K)
    dWgu = np.zeros_like(Wgu)
    dWd = np.zeros_like(Wd)
    for e, ex in enumerate(cache["experts"]):
        if ex is None:
            continue
        rows, slots, out, c = ex
        dy_e = dy[rows]
        dw[rows, slots] = (dy_e * out).sum(-1)
        dxe, dWg, dWu, dWd[e] = swiglu_backward(dy_e * w[rows, slots, None], c, Wgu[e, :F], Wgu[e, F:], Wd[e])
        dWgu[e, :F], dWgu[e, F:] = dWg, dWu
        dx[rows] += dxe
    add_grad(grads, prefix + "experts.gate_up_proj", dWgu)
    add_grad(grads, prefix + "experts.down_proj", dWd)
    if cache["shared"] is not None:
        names = [prefix + "shared_experts." + n for n in ("gate_proj", "up_proj", "down_proj")]
        dxs, *dWs = swiglu_backward(dy, cache["shared"], *(p[n] for n in names))
        dx += dxs
        for n, g in zip(names, dWs):
            add_grad(grads, n, g)
    # through w = routed_scaling_factor * w_raw / denom to the chosen scores
    dw = dw * cfg.routed_scaling_factor
    if cfg.norm_topk_prob:
        dw = dw / denom - (dw * w_raw).sum(-1, keepdims=True) / denom ** 2
    ds = np.zeros_like(s)
    np.put_along_axis(ds, idx, dw, axis=-1)
    if aux_alpha > 0 and cache["token_mask"] is not None:
        ds += aux_alpha * seq_aux_grad(s, idx, cache["token_mask"], cfg)
    dlogits = ds * s * (1.0 - s)
    add_grad(grads, prefix + "gate", dlogits.T @ x)
    return dx + dlogits @ p[prefix + "gate"]


def seq_aux_terms(s, idx, token_mask, cfg):
    """Sequence-wise balance loss sum_i f_i P_i, averaged over sequences (DeepSeek-V3 eq. 17-20).

    f_i = E / (K T_b) * count_i (a constant), P_i = mean_t s_it / sum_j s_jt. Returns loss and the
    pieces the gradient needs."""
    B, T = token_mask.shape
    E, K = cfg.n_routed_experts, cfg.num_experts_per_tok
    m = token_mask.astype(s.dtype)                                          # (B, T)
    n_tok = np.maximum(m.sum(1), 1.0)                                       # (B,)
    onehot = np.zeros((B * T, E), s.dtype)
    np.put_along_axis(onehot, idx, 1.0, axis=-1)
    f = E / (K * n_tok[:, None]) * (onehot.reshape(B, T, E) * m[..., None]).sum(1)   # (B, E)
    Z = s.sum(-1, keepdims=True)
    sn = (s / Z).reshape(B, T, E)
    P = (sn * m[..., None]).sum(1) / n_tok[:, None]                         # (B, E)
    return float((f * P).sum(1).mean()), f, Z, sn, m, n_tok


def seq_aux_grad(s, idx, token_mask, cfg):
    _, f, Z, sn, m, n_tok = seq_aux_terms(s, idx, token_mask, cfg)
    B, T, E = sn.shape
    g = (f[:, None, :] * (m / n_tok[:, None])[..., None] / B).reshape(B * T, E)    # d loss / d sn
    sn = sn.reshape(B * T, E)
    return (g - (g * sn).sum(-1, keepdims=True)) / Z
