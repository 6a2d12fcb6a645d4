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
    ss = np.add.reduce(x * x, axis=-1, keepdims=True)
    return x * (1.0 / np.sqrt(ss * (1.0 / x.shape[-1]) + eps)) * w


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
    """Absorbed MLA over a latent cache: per position the cache holds c_kv (C) and k_pe (r) only.

    At load, W_UK is folded into the query projection (q_lat = x @ W_qlat, (H, C) per token) and W_UV
    into o_proj (out = ctx_lat @ W_ov), in float64 then float32: the same function with fewer ops per
    token. The projections that read x are fused into one matmul."""

    def __init__(self, node, weights, cfg):
        a = node["attrs"]
        H, nope, r, vd, C = (_attr(node, k, int) for k in ("n_heads", "qk_nope_head_dim", "qk_rope_head_dim",
                                                              "v_head_dim", "kv_lora_rank"))
        self.H, self.r, self.C = H, r, C
        self.eps = float(_attr(node, "eps", float))
        S = _attr(node, "max_positions", int)
        w_q = _w(weights, node, "w_q") if "w_q" in a else _w(weights, node, "w_q_b")           # (H*qk, d or q_lora)
        if w_q.shape[0] != H * (nope + r):
            raise ModelFormatError(f"mla_attention layer {a.get('layer')}: q projection has {w_q.shape[0]} "
                                   f"outputs, expected H*(nope+rope)={H * (nope + r)}")
        w_uk = _w(weights, node, "w_uk", (H, nope, C)).astype(np.float64)
        w_uv = _w(weights, node, "w_uv", (H, C, vd)).astype(np.float64)
        w_o = _w(weights, node, "w_o").astype(np.float64)                                      # (d, H*v)
        qh = w_q.astype(np.float64).reshape(H, nope + r, -1)
        q_lat = np.einsum("hnc,hni->ihc", w_uk, qh[:, :nope]).reshape(-1, H * C)              # (in, H*C)
        q_pe = qh[:, nope:].transpose(2, 0, 1).reshape(-1, H * r)                             # (in, H*r)
        self.ov = np.einsum("hcv,dhv->hcd", w_uv, w_o.reshape(-1, H, vd)).reshape(H * C, -1).astype(np.float32)
        w_kv_a = _w(weights, node, "w_kv_a").T                                                 # (d, C + r)
        if "w_q" in a:                      # one matmul: x -> [q_lat | q_pe | c_kv | k_pe]
            self.w_in = np.ascontiguousarray(np.concatenate([q_lat, q_pe, w_kv_a], 1), dtype=np.float32)
            self.q_a, self.w_qb = 0, None
        else:                               # x -> [q_a | c_kv | k_pe], then q_a -> [q_lat | q_pe]
            w_q_a = _w(weights, node, "w_q_a").T
            self.q_a = w_q_a.shape[1]
            self.q_a_norm = _w(weights, node, "w_q_a_norm", (self.q_a,))
            self.w_in = np.ascontiguousarray(np.concatenate([w_q_a, w_kv_a], 1), dtype=np.float32)
            self.w_qb = np.ascontiguousarray(np.concatenate([q_lat, q_pe], 1), dtype=np.float32)
        self.kv_norm = _w(weights, node, "w_kv_a_norm", (C,))
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
        H, C, r, end = self.H, self.C, self.r, ctx.pos + x.shape[0]
        z = x @ self.w_in
        if self.w_qb is None:
            q, kv = z[:, :H * (C + r)], z[:, H * (C + r):]
        else:
            q, kv = rmsnorm(z[:, :self.q_a], self.q_a_norm, self.eps) @ self.w_qb, z[:, self.q_a:]
        self.c_kv[pos:end] = rmsnorm(kv[:, :C], self.kv_norm, self.eps)
        self.k_pe[pos:end] = self.rope(kv[:, C:], pos, T)
        q_lat = q[:, :H * C].reshape(T, H, C).transpose(1, 0, 2)                           # (H, T, C)
        q_pe = self.rope(q[:, H * C:].reshape(T, H, r).transpose(1, 0, 2), pos, T)        # (H, T, r)
        scores = (q_lat @ self.c_kv[:end].T + q_pe @ self.k_pe[:end].T) * self.scale      # (H, T, S)
        if T > 1:
            scores[:, np.arange(end)[None, :] > (pos + np.arange(T))[:, None]] = -np.inf
        scores -= scores.max(-1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(-1, keepdims=True)
        ctx_lat = p @ self.c_kv[:end]                                                      # (H, T, C)
        return ctx_lat.transpose(1, 0, 2).reshape(T, H * C) @ self.ov


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
        if self.G == 1 and len(x) == 1:                  # decode fast path
            idx = np.argsort(-sel[0], kind="stable")[:self.K]
            w = s[0, idx]
            if self.norm:
                w = w / (w.sum() + 1e-20)
            return idx[None], (w * self.rsf)[None]
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
