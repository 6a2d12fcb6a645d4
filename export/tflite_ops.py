"""TFLite lowerings of tinyr1's ops for the prefill graph, one function each, computing what runtime/ops.py
computes (docs/FORMAT.md gives the math) on a fixed number of tokens T, from position 0.

Shapes: T tokens, d hidden, H heads, n qk_nope_head_dim, r qk_rope_head_dim, v v_head_dim, C kv_lora_rank,
E routed experts, K experts per token, G expert groups, F expert width.

Weights are re-laid out in numpy once, as runtime/mla.py and runtime/moe.py prepare them at load:
  * absorbed MLA: W_UK and the score scale (n + r)^-0.5 fold into the query projection (q_lat, C per
    head), W_UV into o_proj (W_ov (d, H*C)), in float64 then float32;
  * RoPE is `v * cos + rot(v) * sin` with rot(v) = [-v2, v1] for half-split pairs (i, i + r/2); rot only
    permutes and negates v's rows, so a projection of rot(v) is one more FULLY_CONNECTED, no slicing;
  * the routed experts are stacked into one gate, one up and one down matrix: every expert runs on every
    token and the K chosen ones are weighted by their routing weight, the others by exactly 0.
"""
import numpy as np

from export.errors import ExportError
from runtime.mla import absorbed_projections, rope_angles

NEG = -1e30     # a finite "minus infinity": exp(NEG - max) is 0.0 in float32, and NEG + 1.0 == NEG


def weight(b, compiled, name):
    return b.const(compiled.weights[name], name=name)


def linear(b, x, w):
    """x (T, in) @ w^T for a constant w (out, in) -> (T, out)."""
    return b.fully_connected(x, w)


# ---------------------------------------------------------------- element-wise pieces
def rmsnorm(b, x, w, eps):
    """x (..., D) -> x * rsqrt(sum(x^2) / D + eps) * w, in the runtime's order of operations."""
    ss = b.sum(b.mul(x, x), axis=len(x.shape) - 1, keep_dims=True)                    # (..., 1)
    inv = b.rsqrt(b.add(b.mul(ss, b.scalar(1.0 / x.shape[-1])), b.scalar(eps)))
    return b.mul(b.mul(x, inv), w)


def silu(b, g):
    return b.mul(g, b.logistic(g))


def swiglu(b, compiled, x, gate, up, down):
    """w_down(silu(w_gate x) * w_up x): the dense FFN and the shared expert. x (T, d)."""
    h = b.mul(silu(b, linear(b, x, weight(b, compiled, gate))), linear(b, x, weight(b, compiled, up)))
    return linear(b, h, weight(b, compiled, down))


def rope(b, v, v_rot, cos, sin):
    """Rotate half-split pairs: v * cos + rot(v) * sin, v and v_rot (..., T, r) or (T, ..., r)."""
    return b.add(b.mul(v, cos), b.mul(v_rot, sin))


def rope_tables(T, r, theta):
    """cos, sin (T, r) for positions 0..T-1, float64 then float32 like runtime/mla.py; the two halves of
    each row are equal because pair (i, i + r/2) shares an angle."""
    ang = rope_angles(T, r, theta)
    return np.tile(np.cos(ang), 2).astype(np.float32), np.tile(np.sin(ang), 2).astype(np.float32)


# ---------------------------------------------------------------- attention
def mla_weights(weights, node):
    """The layer's folded projections, runtime/mla.py's absorbed_projections transposed for
    FULLY_CONNECTED (float32): q_lat (H*C, in), q_pe and q_rot (H*r, in), c_kv (C, d), k_pe and k_rot
    (r, d), ov (d, H*C). `in` is d, or q_lora_rank with a q LoRA."""
    return {k: np.ascontiguousarray(w.T, dtype=np.float32) for k, w in absorbed_projections(node, weights).items()}


def mla_attention(b, compiled, x, node):
    """Absorbed Multi-head Latent Attention, causal over the T tokens of x (T, d) -> (T, d)."""
    a = node["attrs"]
    H, r, C, eps = int(a["n_heads"]), int(a["qk_rope_head_dim"]), int(a["kv_lora_rank"]), float(a["eps"])
    T = x.shape[0]
    prefix = a["w_o"].rsplit(".", 1)[0]                                              # e.g. layers.0.self_attn
    w = {k: b.const(m, name=f"{prefix}.{k}") for k, m in mla_weights(compiled.weights, node).items()}
    cos, sin = rope_tables(T, r, float(a["rope_theta"]))
    xq = x if "w_q" in a else rmsnorm(b, linear(b, x, weight(b, compiled, a["w_q_a"])),
                                      weight(b, compiled, a["w_q_a_norm"]), eps)     # (T, in)
    q_lat = b.reshape(linear(b, xq, w["q_lat"]), (T, H, C))
    q_pe = rope(b, b.reshape(linear(b, xq, w["q_pe"]), (T, H, r)), b.reshape(linear(b, xq, w["q_rot"]), (T, H, r)),
                b.const(cos[:, None]), b.const(sin[:, None]))                       # (T, H, r), tables (T, 1, r)
    q = b.transpose(b.concat([q_lat, q_pe], axis=2), (1, 0, 2))                      # (H, T, C + r)
    c_kv = rmsnorm(b, linear(b, x, w["c_kv"]), weight(b, compiled, a["w_kv_a_norm"]), eps)   # (T, C)
    k_pe = rope(b, linear(b, x, w["k_pe"]), linear(b, x, w["k_rot"]), b.const(cos), b.const(sin))  # (T, r)
    # one key per position for all heads: scores = q_lat . c_kv + q_pe . k_pe, already scaled
    scores = b.batch_matmul(q, b.concat([c_kv, k_pe], axis=1), adj_y=True)           # (H, T, T)
    causal = np.triu(np.full((T, T), NEG, np.float32), k=1)                          # NEG where key j > query i
    probs = b.softmax(b.add(scores, b.const(causal)))
    ctx = b.batch_matmul(probs, c_kv)                                                # (H, T, C)
    ctx = b.reshape(b.transpose(ctx, (1, 0, 2)), (T, H * C))
    return linear(b, ctx, w["ov"])                                                   # (T, d)


# ---------------------------------------------------------------- mixture of experts
def moe(b, compiled, x, node):
    """DeepSeek-V3 MoE: sigmoid router, bias for selection only, group-limited top-K, routing weights the
    unbiased scores of the chosen experts, plus the shared expert. x (T, d) -> (T, d)."""
    a = node["attrs"]
    K, G, TG = int(a["top_k"]), int(a["n_group"]), int(a["topk_group"])
    E = compiled.weights[a["w_router"]].shape[0]
    if not (0 < K <= E and G > 0 and E % G == 0 and 0 < TG <= G):
        raise ExportError(f"moe: routing top_k={K} n_group={G} topk_group={TG} do not fit {E} experts")
    s = b.logistic(linear(b, x, weight(b, compiled, a["w_router"])))                  # (T, E)
    sel = b.add(s, weight(b, compiled, a["w_bias"]))                                 # the bias only chooses
    if G > 1:
        sel = limit_groups(b, sel, G, TG)
    _, idx = b.top_k(sel, K)                                                         # (T, K) int32
    chosen = b.sum(b.one_hot(idx, E), axis=1, keep_dims=False)                       # (T, E): 1 if chosen, else 0
    w = b.mul(s, chosen)                                                             # (T, E)
    if a.get("norm_topk_prob"):
        w = b.div(w, b.add(b.sum(w, axis=1, keep_dims=True), b.scalar(1e-20)))
    w = b.mul(w, b.scalar(float(a["routed_scaling_factor"])))
    y = routed_experts(b, compiled, x, w, a["w_experts_gate_up"], a["w_experts_down"])
    if "w_shared_gate" in a:
        y = b.add(y, swiglu(b, compiled, x, a["w_shared_gate"], a["w_shared_up"], a["w_shared_down"]))
    return y


def limit_groups(b, sel, G, TG):
    """sel (T, E) -> sel with every expert outside the TG groups of largest top-2 sum set to NEG."""
    T, E = sel.shape
    grouped = b.reshape(sel, (T, G, E // G))
    top2, _ = b.top_k(grouped, min(2, E // G))                                       # (T, G, 2)
    _, keep = b.top_k(b.sum(top2, axis=2, keep_dims=False), TG)                      # (T, TG) group ids
    # (T, G): -NEG once for each kept group, then + NEG: 0 for kept groups, NEG for the others
    offset = b.add(b.sum(b.one_hot(keep, G, on=-NEG), axis=1, keep_dims=False), b.scalar(NEG))
    return b.reshape(b.add(grouped, b.reshape(offset, (T, G, 1))), (T, E))


def routed_experts(b, compiled, x, w, gate_up, down):
    """sum_e w[t, e] * Expert_e(x[t]) over all E experts. x (T, d), w (T, E) zero for unchosen experts;
    gate_up (E, 2F, d) gate rows then up rows, down (E, d, F)."""
    gu, dn = compiled.weights[gate_up], compiled.weights[down]
    E, F, d, T = gu.shape[0], gu.shape[1] // 2, gu.shape[2], x.shape[0]
    # stacked: gate and up (E*F, d), expert e's rows at e*F..; down (d, E*F), expert e's columns at e*F..
    w_gate = b.const(gu[:, :F].reshape(E * F, d), name=f"{gate_up}.gate")
    w_up = b.const(gu[:, F:].reshape(E * F, d), name=f"{gate_up}.up")
    w_down = b.const(dn.transpose(1, 0, 2).reshape(d, E * F), name=f"{down}.stacked")
    h = b.mul(silu(b, linear(b, x, w_gate)), linear(b, x, w_up))                     # (T, E*F)
    h = b.mul(b.reshape(h, (T, E, F)), b.reshape(w, (T, E, 1)))                      # weighted before w_down
    return linear(b, b.reshape(h, (T, E * F)), w_down)                               # (T, d)
