"""Multi-head Latent Attention (DeepSeek-V2/V3), forward and backward, full-sequence form.

The trainer computes the expanded keys and values (k_nope, v from kv_b_proj of the latent); the
compiler later absorbs kv_b_proj into the query and output so that the runtime caches only the
latent `c_kv` and the shared `k_pe`. Both forms are the same function (tests check it).

Parameter names under `prefix` (HF layout, [out, in]):
  q_proj (H*qk, d)  or  q_a_proj (q_lora, d), q_a_layernorm (q_lora), q_b_proj (H*qk, q_lora)
  kv_a_proj_with_mqa (C + r, d), kv_a_layernorm (C), kv_b_proj (H*(nope + v), C), o_proj (d, H*v)
"""
import numpy as np

from trainer.layers import linear_backward, rmsnorm_backward, rmsnorm_forward, rope_apply, rope_backward


def mla_forward(p, prefix, cfg, x, cos, sin, kv=None, pos=0):
    """x (B, T, d) -> (B, T, d).

    cos, sin (T, r/2) for absolute positions pos..pos+T-1. `kv`, if given, is a pair of buffers
    (K (B, H, S_max, qk), V (B, H, S_max, v)) that this call appends to at `pos` (generation)."""
    B, T, d = x.shape
    H, nope, r, vd, C = (cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim,
                         cfg.v_head_dim, cfg.kv_lora_rank)
    x2 = x.reshape(B * T, d)
    if cfg.q_lora_rank is None:
        q = x2 @ p[prefix + "q_proj"].T
        qa = qan = c_qn = None
    else:
        qa = x2 @ p[prefix + "q_a_proj"].T                          # (N, q_lora)
        qan, c_qn = rmsnorm_forward(qa, p[prefix + "q_a_layernorm"], cfg.rms_norm_eps)
        q = qan @ p[prefix + "q_b_proj"].T
    q = q.reshape(B, T, H, nope + r).transpose(0, 2, 1, 3)          # (B, H, T, qk), nope first
    kva = x2 @ p[prefix + "kv_a_proj_with_mqa"].T                   # (N, C + r)
    cn, c_cn = rmsnorm_forward(kva[:, :C], p[prefix + "kv_a_layernorm"], cfg.rms_norm_eps)
    kvb = (cn @ p[prefix + "kv_b_proj"].T).reshape(B, T, H, nope + vd).transpose(0, 2, 1, 3)
    k_pe = rope_apply(kva[:, C:].reshape(B, T, r), cos, sin)        # (B, T, r), one head for all
    qf = np.concatenate([q[..., :nope], rope_apply(q[..., nope:], cos, sin)], axis=-1)
    k = np.concatenate([kvb[..., :nope], np.broadcast_to(k_pe[:, None], (B, H, T, r))], axis=-1)
    v = kvb[..., nope:]                                             # (B, H, T, v)
    if kv is not None:
        kv[0][:, :, pos:pos + T] = k
        kv[1][:, :, pos:pos + T] = v
        k, v = kv[0][:, :, :pos + T], kv[1][:, :, :pos + T]
    prob = attention_probs(qf, k, pos, (nope + r) ** -0.5)         # (B, H, T, S)
    o = (prob @ v).transpose(0, 2, 1, 3).reshape(B * T, H * vd)     # (N, H*v)
    out = o @ p[prefix + "o_proj"].T
    cache = (x2, qa, qan, c_qn, cn, c_cn, qf, k, v, prob, o, cos, sin, (B, T))
    return out.reshape(B, T, d), cache


def attention_probs(qf, k, pos, scale):
    """Causal softmax(qf k^T * scale): qf (B, H, T, qk), k (B, H, S, qk) -> (B, H, T, S), query t at
    absolute position pos + t. In place on the one (B, H, T, S) buffer: it is the step's largest array."""
    T, S = qf.shape[2], k.shape[2]
    scores = qf @ k.transpose(0, 1, 3, 2)
    scores *= scale
    after = np.arange(S)[None, :] > (pos + np.arange(T))[:, None]  # key after query
    if after.any():
        scores += np.where(after, -np.inf, 0.0).astype(scores.dtype)
    scores -= scores.max(-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(-1, keepdims=True)
    return scores


def mla_backward(dout, cache, p, prefix, cfg, grads):
    """dout (B, T, d) -> dx (B, T, d); full-sequence caches only (no kv buffer)."""
    x2, qa, qan, c_qn, cn, c_cn, qf, k, v, prob, o, cos, sin, (B, T) = cache
    H, nope, r, vd = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
    scale = (nope + r) ** -0.5
    do = linear_backward(dout.reshape(B * T, -1), o, p[prefix + "o_proj"], grads, prefix + "o_proj")
    do = do.reshape(B, T, H, vd).transpose(0, 2, 1, 3)              # (B, H, T, v)
    o_heads = o.reshape(B, T, H, vd).transpose(0, 2, 1, 3)
    dv = prob.transpose(0, 1, 3, 2) @ do                            # (B, H, S, v)
    dscores = do @ v.transpose(0, 1, 3, 2)                          # dprob (B, H, T, S), then in place:
    dscores -= (do * o_heads).sum(-1, keepdims=True)                # sum_s prob*dprob = do . o (FlashAttention)
    dscores *= prob
    dscores *= scale
    dqf = dscores @ k                                               # (B, H, T, qk)
    dk = dscores.transpose(0, 1, 3, 2) @ qf                         # (B, H, S, qk)
    dq = np.concatenate([dqf[..., :nope], rope_backward(dqf[..., nope:], cos, sin)], axis=-1)
    dk_pe = rope_backward(dk[..., nope:].sum(axis=1), cos, sin)     # (B, T, r): shared by heads
    dkvb = np.concatenate([dk[..., :nope], dv], axis=-1).transpose(0, 2, 1, 3).reshape(B * T, -1)
    dcn = linear_backward(dkvb, cn, p[prefix + "kv_b_proj"], grads, prefix + "kv_b_proj")
    dc = rmsnorm_backward(dcn, c_cn, grads, prefix + "kv_a_layernorm")
    dkva = np.concatenate([dc, dk_pe.reshape(B * T, r)], axis=-1)
    dx = linear_backward(dkva, x2, p[prefix + "kv_a_proj_with_mqa"], grads, prefix + "kv_a_proj_with_mqa")
    dq = dq.transpose(0, 2, 1, 3).reshape(B * T, -1)
    if cfg.q_lora_rank is None:
        dx += linear_backward(dq, x2, p[prefix + "q_proj"], grads, prefix + "q_proj")
    else:
        dqan = linear_backward(dq, qan, p[prefix + "q_b_proj"], grads, prefix + "q_b_proj")
        dqa = rmsnorm_backward(dqan, c_qn, grads, prefix + "q_a_layernorm")
        dx += linear_backward(dqa, x2, p[prefix + "q_a_proj"], grads, prefix + "q_a_proj")
    return dx.reshape(B, T, -1)
