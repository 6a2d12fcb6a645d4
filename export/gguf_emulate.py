"""What llama.cpp computes for a GGUF with Q8_0 weights, in numpy: our forward (docs/FORMAT.md) over the
compiled model's dequantized weights, where the input of every matmul by a Q8_0 weight is first quantized
the way ggml's CPU backend does it (quantize_row_q8_0: blocks of 32 along the input, d = amax/127 in
float32, q = round(x / d), d stored as float16); the dot product is then exact: sum of d_w q_w * d_x q_x.
Embedding rows, norms, the router, RoPE, attention and the F32 k_b / v_b are not quantized.

    logits = forward(compiled, ids, q8=q8_0_sources(compiled))     # (T, V)
    logits = forward(compiled, ids)                                # no activation quantization

With q8 empty it is an independent re-implementation of the runtime's forward (full sequence, causal,
float64), so tests can check it against runtime.model.Model first. Shapes: T tokens, d hidden, H heads,
n nope, r rope, v value, C kv_lora_rank.
"""
import numpy as np

from export.gguf_export import model_layout

BLOCK = 32


def quantize_activations(x):
    """x (..., k), k a multiple of 32 -> the values ggml's Q8_0 activation blocks represent (..., k)."""
    b = x.astype(np.float32).reshape(x.shape[:-1] + (-1, BLOCK))
    amax = np.abs(b).max(-1, keepdims=True)
    d32 = amax / np.float32(127.0)                                   # (..., k/32, 1)
    inv = np.divide(np.float32(1.0), d32, out=np.zeros_like(d32), where=d32 > 0)
    # ggml's repacked GEMM path multiplies by 127/amax instead: one ulp apart, it differs only on ties
    q = np.rint(b * inv)
    return (q * d32.astype(np.float16).astype(np.float64)).reshape(x.shape)


class _Forward:
    def __init__(self, compiled, q8):
        self.w, self.q8 = compiled.weights, set(q8)

    def mm(self, x, name, w=None):
        """x (..., in) @ W^T, the input quantized when tensor `name` is Q8_0 in the GGUF. w: a slice of it
        (one expert's rows) instead of the whole tensor."""
        w = self.w[name] if w is None else w
        if name in self.q8:
            x = quantize_activations(x)
        return x @ w.astype(np.float64).T

    def norm(self, x, name, eps):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * self.w[name]


def rope(x, pos, theta):
    """Half-split RoPE over the last dim r: pairs (i, i + r/2) by angle pos * theta^(-2i/r). x (T, ..., r)."""
    r = x.shape[-1]
    ang = pos[:, None] * theta ** (-np.arange(0, r, 2) / r)[None, :]                     # (T, r/2)
    shape = (len(pos),) + (1,) * (x.ndim - 2) + (r // 2,)
    cos, sin = np.cos(ang).reshape(shape), np.sin(ang).reshape(shape)
    x1, x2 = x[..., :r // 2], x[..., r // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def attention(f, x, node, eps):
    """mla_attention over the whole sequence, x (T, d) -> (T, d). k_b and v_b are F32 in the GGUF."""
    a = node["attrs"]
    H, n, r, C = a["n_heads"], a["qk_nope_head_dim"], a["qk_rope_head_dim"], a["kv_lora_rank"]
    T, pos = len(x), np.arange(len(x), dtype=np.float64)
    if "w_q" in a:
        q = f.mm(x, a["w_q"])
    else:
        q = f.mm(f.norm(f.mm(x, a["w_q_a"]), a["w_q_a_norm"], eps), a["w_q_b"])
    q = q.reshape(T, H, n + r)
    kv = f.mm(x, a["w_kv_a"])                                                             # (T, C + r)
    c_kv, k_pe = f.norm(kv[:, :C], a["w_kv_a_norm"], eps), rope(kv[:, C:], pos, a["rope_theta"])
    q_lat = np.einsum("thn,hnc->thc", q[..., :n], f.w[a["w_uk"]].astype(np.float64))    # (T, H, C)
    q_pe = rope(q[..., n:], pos, a["rope_theta"])                                         # (T, H, r)
    s = (np.einsum("thc,sc->hts", q_lat, c_kv) + np.einsum("thr,sr->hts", q_pe, k_pe)) * (n + r) ** -0.5
    s = np.where(np.triu(np.ones((T, T), bool), 1)[None], -np.inf, s)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ctx = np.einsum("hts,sc->thc", p, c_kv)                                              # (T, H, C)
    o = np.einsum("thc,hcv->thv", ctx, f.w[a["w_uv"]].astype(np.float64))               # (T, H, v)
    return f.mm(o.reshape(T, -1), a["w_o"])


def swiglu(f, x, gate, up, down):
    g, u = f.mm(x, gate), f.mm(x, up)
    return f.mm(g / (1 + np.exp(-g)) * u, down)


def moe(f, x, node):
    """DeepSeek-V3 routing on the F32 router (no quantization there), experts through f.mm."""
    a = node["attrs"]
    s = 1 / (1 + np.exp(-(x @ f.w[a["w_router"]].astype(np.float64).T)))                 # (T, E)
    sel = s + f.w[a["w_bias"]]
    T, E = s.shape
    G, TG, K = a["n_group"], a["topk_group"], a["top_k"]
    if G > 1:
        group = np.sort(sel.reshape(T, G, -1), -1)[..., -2:].sum(-1)                     # (T, G)
        drop = np.argsort(-group, -1, kind="stable")[:, TG:]
        mask = np.zeros((T, G), bool)
        np.put_along_axis(mask, drop, True, 1)
        sel = np.where(np.repeat(mask, E // G, 1), -np.inf, sel)
    idx = np.argsort(-sel, -1, kind="stable")[:, :K]                                     # (T, K)
    w = np.take_along_axis(s, idx, -1)
    if a["norm_topk_prob"]:
        w = w / (w.sum(-1, keepdims=True) + 1e-20)
    w = w * a["routed_scaling_factor"]
    gu_name, dn_name = a["w_experts_gate_up"], a["w_experts_down"]
    gu, dn = f.w[gu_name], f.w[dn_name]                                                   # (E, 2F, d), (E, d, F)
    F = gu.shape[1] // 2
    y = np.zeros_like(x)
    for e in np.unique(idx):
        rows, k = np.nonzero(idx == e)
        g, u = f.mm(x[rows], gu_name, gu[e, :F]), f.mm(x[rows], gu_name, gu[e, F:])  # gate and up: 2 matmuls
        y[rows] += w[rows, k, None] * f.mm(g / (1 + np.exp(-g)) * u, dn_name, dn[e])
    if "w_shared_gate" in a:
        y += swiglu(f, x, a["w_shared_gate"], a["w_shared_up"], a["w_shared_down"])
    return y


def forward(compiled, ids, q8=()):
    """ids (T,) from position 0 -> logits (T, V) float64; q8 = compiled tensor names that are Q8_0."""
    lay = model_layout(compiled)
    f = _Forward(compiled, q8)
    eps = lay["eps"]
    x = f.w[lay["embedding"]][np.asarray(ids)].astype(np.float64)                         # (T, d), exact rows
    for attn_norm, mla, ffn_norm, ffn in lay["layers"]:
        x = x + attention(f, f.norm(x, attn_norm["attrs"]["weight"], eps), mla, eps)
        h = f.norm(x, ffn_norm["attrs"]["weight"], eps)
        a = ffn["attrs"]
        x = x + (moe(f, h, ffn) if ffn["op"] == "moe" else swiglu(f, h, a["w_gate"], a["w_up"], a["w_down"]))
    return f.mm(f.norm(x, lay["output_norm"]["attrs"]["weight"], eps), lay["head"])
