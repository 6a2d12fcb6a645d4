"""mla_attention: absorbed Multi-head Latent Attention over a latent cache (DeepSeek-V3, attn_impl="absorb").

Prepared once at load (shapes: d hidden, H heads, n nope, r rope, v value, C kv_lora_rank, S positions):
  * W_UK is folded into the query projection (q_lat = q_nope @ W_UK, C per head) and W_UV into o_proj
    (W_ov (H*C, d)), in float64 then float32, and the score scale (n + r)^-0.5 into the query;
  * RoPE is `v * cos + rot(v) * sin` with rot(v) = [-v2, v1] for half-split pairs (i, i + r/2). rot is a
    signed permutation, so its columns are added to the projection: one matmul gives v and rot(v);
  * every projection that reads x is one matmul, its output laid out so that RoPE is one contiguous
    expression: [q_pe (H*r) | k_pe r | q_rot (H*r) | k_rot r | q_lat (H*C) | c_kv C]
    (with q LoRA: x -> [q_a | k_pe | k_rot | c_kv], then rmsnorm(q_a) -> [q_pe | q_rot | q_lat]);
  * the cache is one (S, r + C + 1) array per layer: [k_pe | c_kv | 1]. Scores read its first r + C
    columns; the latent output o_lat (per head, the softmax-weighted sum of c_kv) reads its last C + 1,
    whose column of ones sums the softmax weights in the same matmul, so the softmax needs no separate sum.

`ctx` is always the call's state shared by the ops (runtime.ops.Ctx: the position of the first token).
"""
import math

import numpy as np

from runtime.errors import ModelFormatError
from runtime.ops_common import attr, matmul, rmsnorm, tensor


def rope_rotation(r):
    """(r, r) signed permutation P with v @ P = rot(v) = [-v2, v1] for half-split pairs."""
    h = r // 2
    P = np.zeros((r, r))
    P[h:, :h] = -np.eye(h)
    P[:h, h:] = np.eye(h)
    return P


_CAUSAL = {}


def causal_bias(S):
    """(S, S) float32, 0 where a query row may see a cache row (j <= i) and -inf after: one add masks
    a whole prefill. Shared by every layer with this context length."""
    if S not in _CAUSAL:
        _CAUSAL[S] = np.triu(np.full((S, S), -np.inf, np.float32), 1)
    return _CAUSAL[S]


def rope_angles(S, r, theta):
    """(S, r/2) float64: the angle p * theta^(-2i/r) of position p and pair (i, i + r/2)."""
    inv = 1.0 / (theta ** (np.arange(0, r, 2, dtype=np.float64) / r))
    return np.arange(S, dtype=np.float64)[:, None] * inv[None, :]


def absorbed_projections(node, weights):
    """An mla_attention node's weights with W_UK, W_UV, the score scale and RoPE's rot folded in,
    float64 in `x @ W` layout: q_lat (in, H*C), q_pe and q_rot (in, H*r); c_kv (d, C), k_pe and k_rot
    (d, r); ov (H*C, d). `in` is d, or q_lora_rank with a q LoRA. The TFLite exporter folds the same way."""
    a = node["attrs"]
    H, n, r, v, C = (attr(node, k, int) for k in ("n_heads", "qk_nope_head_dim", "qk_rope_head_dim",
                                                   "v_head_dim", "kv_lora_rank"))
    if r % 2:
        raise ModelFormatError(f"mla_attention layer {a.get('layer')}: qk_rope_head_dim={r} must be even")
    w_q = tensor(weights, node, "w_q") if "w_q" in a else tensor(weights, node, "w_q_b")        # (H*(n+r), in)
    if w_q.shape[0] != H * (n + r):
        raise ModelFormatError(f"mla_attention layer {a.get('layer')}: q projection has {w_q.shape[0]} "
                               f"outputs, expected H*(nope+rope)={H * (n + r)}")
    w_uk = tensor(weights, node, "w_uk", (H, n, C)).astype(np.float64)
    w_uv = tensor(weights, node, "w_uv", (H, C, v)).astype(np.float64)
    w_o = tensor(weights, node, "w_o").astype(np.float64)                                       # (d, H*v)
    qh = w_q.astype(np.float64).reshape(H, n + r, -1) * (n + r) ** -0.5
    q_lat = np.einsum("hnc,hni->ihc", w_uk, qh[:, :n])                                           # (in, H, C)
    q_pe = qh[:, n:].transpose(2, 0, 1)                                                           # (in, H, r)
    P = rope_rotation(r)
    kv_a = tensor(weights, node, "w_kv_a", (C + r, w_o.shape[0])).astype(np.float64).T          # (d, C + r)
    return {"q_lat": q_lat.reshape(-1, H * C), "q_pe": q_pe.reshape(-1, H * r), "q_rot": (q_pe @ P).reshape(-1, H * r),
            "c_kv": kv_a[:, :C], "k_pe": kv_a[:, C:], "k_rot": kv_a[:, C:] @ P,
            "ov": np.einsum("hcv,dhv->hcd", w_uv, w_o.reshape(-1, H, v)).reshape(H * C, -1)}


class MLAttention:
    def __init__(self, node, weights, ctx):
        a = node["attrs"]
        w = absorbed_projections(node, weights)
        H, r, C = attr(node, "n_heads", int), attr(node, "qk_rope_head_dim", int), attr(node, "kv_lora_rank", int)
        self.ctx, self.H, self.r, self.C = ctx, H, r, C
        self.eps = float(attr(node, "eps", float))
        S = attr(node, "max_positions", int)
        self.ov = w["ov"].astype(np.float32)
        if "w_q" in a:
            w_in, self.q_a, self.w_qb = [w[k] for k in ("q_pe", "k_pe", "q_rot", "k_rot", "q_lat", "c_kv")], 0, None
        else:
            w_q_a = tensor(weights, node, "w_q_a").T
            self.q_a = w_q_a.shape[1]
            self.q_a_norm = tensor(weights, node, "w_q_a_norm", (self.q_a,))
            w_in = [w_q_a, w["k_pe"], w["k_rot"], w["c_kv"]]
            self.w_qb = np.ascontiguousarray(np.concatenate([w["q_pe"], w["q_rot"], w["q_lat"]], 1), dtype=np.float32)
        self.w_in = np.ascontiguousarray(np.concatenate(w_in, 1), dtype=np.float32)
        self.kv_norm = tensor(weights, node, "w_kv_a_norm", (C,))
        ang = rope_angles(S, r, float(attr(node, "rope_theta", float)))
        self.cos = np.tile(np.cos(ang), 2 * (H + 1)).astype(np.float32)          # (S, (H+1) r): q's heads, then k
        self.sin = np.tile(np.sin(ang), 2 * (H + 1)).astype(np.float32)
        self.q = np.zeros((H, r + C), np.float32)                                # decode: per head [q_pe | q_lat]
        self.cache = np.zeros((S, r + C + 1), np.float32)                                         # [k_pe | c_kv | 1]
        self.cache[:, r + C] = 1.0
        self.causal = causal_bias(S)                                                              # (S, S)

    @property
    def c_kv(self):
        return self.cache[:, self.r:self.r + self.C]          # (S, C) after its RMSNorm

    @property
    def k_pe(self):
        return self.cache[:, :self.r]                          # (S, r) after RoPE

    def rotate(self, x, cos, sin):
        """x (..., d), cos/sin (..., (H+1) r) of its positions -> q_pe (..., H r) and k_pe (..., r) after
        RoPE, q_lat (..., H C), and c_kv (..., C) before its norm."""
        H, r, C = self.H, self.r, self.C
        z = matmul(x, self.w_in)
        if self.w_qb is None:
            n = (H + 1) * r
            pe = z[..., :n] * cos + z[..., n:2 * n] * sin
            return pe[..., :H * r], pe[..., H * r:], z[..., 2 * n:2 * n + H * C], z[..., 2 * n + H * C:]
        zq = matmul(rmsnorm(z[..., :self.q_a], self.q_a_norm, self.eps), self.w_qb)
        kv, hr = z[..., self.q_a:], H * r
        return (zq[..., :hr] * cos[..., :hr] + zq[..., hr:2 * hr] * sin[..., :hr],
                kv[..., :r] * cos[..., hr:] + kv[..., r:2 * r] * sin[..., hr:], zq[..., 2 * hr:], kv[..., 2 * r:])

    def step(self, x):
        """Decode one token: x (d,) -> (d,). Writes cache row `pos`, attends over rows 0..pos."""
        pos, H, r, C = self.ctx.pos, self.H, self.r, self.C
        q_pe, k_pe, q_lat, c = self.rotate(x, self.cos[pos], self.sin[pos])
        q, row = self.q, self.cache[pos]
        q[:, :r] = q_pe.reshape(H, r)
        q[:, r:] = q_lat.reshape(H, C)
        row[:r] = k_pe
        np.multiply(c, self.kv_norm * (1.0 / math.sqrt(float(c.dot(c)) / C + self.eps)), out=row[r:r + C])
        scores = q.dot(self.cache[:pos + 1, :r + C].T)                                    # (H, pos+1)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        o_lat = scores.dot(self.cache[:pos + 1, r:])               # (H, C + 1): weighted c_kv and the weights' sum
        return (o_lat[:, :C] / o_lat[:, C:]).reshape(-1).dot(self.ov)

    def run(self, ctx, x, last_only=False):
        """T tokens at positions pos..pos+T-1: x (T, d) -> (T, d), causal. Every head of every token
        is one row of a (T*H, .) matmul against the cache. last_only: every token's cache row is written,
        but only the last token attends -> (1, d) (the last attention of a prefill, whose later ops
        compute the last position alone)."""
        T, pos = x.shape[0], ctx.pos
        H, r, C, end = self.H, self.r, self.C, ctx.pos + x.shape[0]
        q_pe, k_pe, q_lat, c = self.rotate(x, self.cos[pos:end], self.sin[pos:end])
        self.cache[pos:end, :r] = k_pe
        self.cache[pos:end, r:r + C] = rmsnorm(c, self.kv_norm, self.eps)
        if last_only:
            q_pe, q_lat, pos, T = q_pe[-1:], q_lat[-1:], end - 1, 1
        q = np.concatenate([q_pe.reshape(T, H, r), q_lat.reshape(T, H, C)], -1).reshape(T * H, r + C)
        scores = q.dot(self.cache[:end, :r + C].T)                                        # (T*H, end)
        if T > 1:                                                                         # token t sees rows <= pos+t
            scores.reshape(T, H, end)[...] += self.causal[pos:end, None, :end]
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        o_lat = scores.dot(self.cache[:end, r:])                                          # (T*H, C + 1)
        return matmul((o_lat[:, :C] / o_lat[:, C:]).reshape(T, H * C), self.ov)
