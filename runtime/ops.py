"""The runtime's ops, one class each: __init__ prepares once at load (validate shapes, dequantize,
pre-transpose for `x @ W`, allocate caches); run() computes. The registry OPS at the bottom is the
whole opset; runtime/format.py OPSET lists the same names.

Shapes: T tokens in this call, d hidden, H heads, C kv_lora_rank, r rope dim, S positions so far.
"""
import numpy as np

from runtime.errors import ModelFormatError


class Ctx:
    """Per-call state shared by the ops: the first position of this chunk, and whether the head
    needs every position's logits (parity checks) or only the last one (generation)."""
    __slots__ = ("pos", "all_logits")

    def __init__(self, pos=0, all_logits=False):
        self.pos, self.all_logits = pos, all_logits


def _w(weights, node, attr, shape=None):
    name = node["attrs"].get(attr)
    if name not in weights:
        raise ModelFormatError(f"node {node['op']}: attribute {attr} names a missing tensor {name!r}")
    w = weights[name]
    if shape is not None and tuple(w.shape) != tuple(shape):
        raise ModelFormatError(f"tensor {name!r} has shape {list(w.shape)}, the {node['op']} op needs {list(shape)}")
    return w


def _attr(node, key, kind):
    v = node["attrs"].get(key)
    ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if not ok:
        raise ModelFormatError(f"node {node['op']}: attribute {key}={v!r:.40} must be {kind.__name__}")
    return v


def rmsnorm(x, w, eps):
    return x * (1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)) * w


def silu_mul(gu, F):
    g = gu[:, :F]
    return g / (1.0 + np.exp(-g)) * gu[:, F:]


class Embedding:
    def __init__(self, node, weights, cfg):
        self.table = _w(weights, node, "weight")                        # (V, d)
        self.V = self.table.shape[0]

    def run(self, ctx, tokens):
        return self.table[tokens]                                        # (T, d)


class RMSNorm:
    def __init__(self, node, weights, cfg):
        self.w = _w(weights, node, "weight")
        self.eps = float(_attr(node, "eps", float))

    def run(self, ctx, x):
        return rmsnorm(x, self.w, self.eps)


class Add:
    def __init__(self, node, weights, cfg):
        pass

    def run(self, ctx, a, b):
        return a + b


class SwiGLU:
    def __init__(self, node, weights, cfg):
        g, u, dn = _w(weights, node, "w_gate"), _w(weights, node, "w_up"), _w(weights, node, "w_down")
        self.F = g.shape[0]
        self.gu_t = np.ascontiguousarray(np.concatenate([g, u], 0).T)   # (d, 2F): one matmul for both
        self.down_t = np.ascontiguousarray(dn.T)                         # (F, d)

    def run(self, ctx, x):
        return silu_mul(x @ self.gu_t, self.F) @ self.down_t


class MLAttention:
    """Absorbed MLA over a latent cache: per position the cache holds c_kv (C) and k_pe (r) only."""

    def __init__(self, node, weights, cfg):
        a = node["attrs"]
        H, nope, r, vd, C = (_attr(node, k, int) for k in ("n_heads", "qk_nope_head_dim", "qk_rope_head_dim",
                                                              "v_head_dim", "kv_lora_rank"))
        self.H, self.nope, self.r, self.vd, self.C = H, nope, r, vd, C
        self.eps = float(_attr(node, "eps", float))
        S = _attr(node, "max_positions", int)
        if "w_q" in a:
            self.q_t, self.q_a_t = np.ascontiguousarray(_w(weights, node, "w_q").T), None   # (d, H*qk)
        else:
            self.q_a_t = np.ascontiguousarray(_w(weights, node, "w_q_a").T)                # (d, q_lora)
            self.q_a_norm = _w(weights, node, "w_q_a_norm")
            self.q_t = np.ascontiguousarray(_w(weights, node, "w_q_b").T)                  # (q_lora, H*qk)
        if self.q_t.shape[1] != H * (nope + r):
            raise ModelFormatError(f"mla_attention layer {a.get('layer')}: q projection has {self.q_t.shape[1]} "
                                   f"outputs, expected H*(nope+rope)={H * (nope + r)}")
        self.kv_a_t = np.ascontiguousarray(_w(weights, node, "w_kv_a").T)                  # (d, C + r)
        self.kv_norm = _w(weights, node, "w_kv_a_norm", (C,))
        self.w_uk = _w(weights, node, "w_uk", (H, nope, C))
        self.w_uv = _w(weights, node, "w_uv", (H, C, vd))
        self.o_t = np.ascontiguousarray(_w(weights, node, "w_o").T)                        # (H*v, d)
        self.scale = (nope + r) ** -0.5
        inv = 1.0 / (float(_attr(node, "rope_theta", float)) ** (np.arange(0, r, 2, dtype=np.float64) / r))
        ang = np.arange(S, dtype=np.float64)[:, None] * inv[None, :]
        self.cos, self.sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)   # (S, r/2)
        self.c_kv = np.zeros((S, C), np.float32)                                           # the latent cache
        self.k_pe = np.zeros((S, r), np.float32)

    def rope(self, x, pos, T):
        # half-split pairs (i, i + r/2); x (..., T, r)
        h = self.r // 2
        cos, sin = self.cos[pos:pos + T], self.sin[pos:pos + T]
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def run(self, ctx, x):
        T, pos = x.shape[0], ctx.pos
        H, nope, C = self.H, self.nope, self.C
        q = x @ self.q_a_t if self.q_a_t is not None else x
        if self.q_a_t is not None:
            q = rmsnorm(q, self.q_a_norm, self.eps)
        q = (q @ self.q_t).reshape(T, H, nope + self.r).transpose(1, 0, 2)               # (H, T, qk)
        kva = x @ self.kv_a_t                                                              # (T, C + r)
        end = pos + T
        self.c_kv[pos:end] = rmsnorm(kva[:, :C], self.kv_norm, self.eps)
        self.k_pe[pos:end] = self.rope(kva[:, C:], pos, T)
        q_lat = q[:, :, :nope] @ self.w_uk                                                 # (H, T, C)
        q_pe = self.rope(q[:, :, nope:], pos, T)                                           # (H, T, r)
        scores = (q_lat @ self.c_kv[:end].T + q_pe @ self.k_pe[:end].T) * self.scale       # (H, T, S)
        if T > 1:
            scores[:, np.arange(end)[None, :] > (pos + np.arange(T))[:, None]] = -np.inf
        scores -= scores.max(-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(-1, keepdims=True)
        ctx_h = (p @ self.c_kv[:end]) @ self.w_uv                                          # (H, T, v)
        return ctx_h.transpose(1, 0, 2).reshape(T, H * self.vd) @ self.o_t


class MoE:
    """Sigmoid router, bias for selection only, group-limited top-k, K routed experts + shared."""

    def __init__(self, node, weights, cfg):
        a = node["attrs"]
        self.router_t = np.ascontiguousarray(_w(weights, node, "w_router").T)             # (d, E)
        self.E = self.router_t.shape[1]
        self.bias = _w(weights, node, "w_bias", (self.E,))
        gu = _w(weights, node, "w_experts_gate_up")                                        # (E, 2F, d)
        dn = _w(weights, node, "w_experts_down")                                           # (E, d, F)
        if gu.shape[0] != self.E or dn.shape[0] != self.E:
            raise ModelFormatError(f"moe: expert tensors hold {gu.shape[0]} experts, the router {self.E}")
        self.F = gu.shape[1] // 2
        self.gu_t = np.ascontiguousarray(gu.transpose(0, 2, 1))                            # (E, d, 2F)
        self.down_t = np.ascontiguousarray(dn.transpose(0, 2, 1))                          # (E, F, d)
        self.K, self.G, self.TG = (_attr(node, k, int) for k in ("top_k", "n_group", "topk_group"))
        if not (0 < self.K <= self.E and self.G > 0 and self.E % self.G == 0 and 0 < self.TG <= self.G):
            raise ModelFormatError(f"moe: routing top_k={self.K} n_group={self.G} topk_group={self.TG} "
                                   f"do not fit {self.E} experts")
        self.norm = bool(a.get("norm_topk_prob"))
        self.rsf = float(_attr(node, "routed_scaling_factor", float))
        self.shared = SwiGLU({"op": "moe", "attrs": {"w_gate": a["w_shared_gate"], "w_up": a["w_shared_up"],
                                                     "w_down": a["w_shared_down"]}}, weights, cfg) \
            if "w_shared_gate" in a else None

    def route(self, x):
        s = 1.0 / (1.0 + np.exp(-(x @ self.router_t)))                                     # (T, E)
        sel = s + self.bias
        if self.G > 1:
            T = len(x)
            grouped = sel.reshape(T, self.G, -1)
            score = np.sort(grouped, axis=-1)[..., -2:].sum(-1)                           # (T, G)
            drop = np.argsort(-score, axis=-1, kind="stable")[:, self.TG:]
            mask = np.zeros((T, self.G), bool)
            np.put_along_axis(mask, drop, True, axis=1)
            sel = np.where(np.repeat(mask, self.E // self.G, axis=1), -np.inf, sel)
        idx = np.argsort(-sel, axis=-1, kind="stable")[:, :self.K]                        # (T, K)
        w = np.take_along_axis(s, idx, axis=-1)
        if self.norm:
            w = w / (w.sum(-1, keepdims=True) + 1e-20)
        return idx, w * self.rsf

    def run(self, ctx, x):
        idx, w = self.route(x)
        y = self.shared.run(ctx, x) if self.shared is not None else np.zeros_like(x)
        if len(x) == 1:                                  # decode: only the K chosen experts run
            for e, we in zip(idx[0], w[0]):
                y += we * (silu_mul(x @ self.gu_t[e], self.F) @ self.down_t[e])
            return y
        for e in np.unique(idx):
            rows, slots = np.nonzero(idx == e)
            y[rows] += w[rows, slots, None] * (silu_mul(x[rows] @ self.gu_t[e], self.F) @ self.down_t[e])
        return y


class LMHead:
    def __init__(self, node, weights, cfg):
        self.w_t = np.ascontiguousarray(_w(weights, node, "weight").T)                    # (d, V)

    def run(self, ctx, x):
        return (x if ctx.all_logits else x[-1:]) @ self.w_t


OPS = {"embedding": Embedding, "rmsnorm": RMSNorm, "mla_attention": MLAttention, "swiglu_mlp": SwiGLU,
       "moe": MoE, "add": Add, "lm_head": LMHead}
