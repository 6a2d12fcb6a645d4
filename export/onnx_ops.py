"""ONNX building blocks for the onnx exporter: a small graph builder and one function per tinyr1 op, each
computing what runtime/ops.py computes (docs/FORMAT.md gives the math).

Shapes: T tokens in this call, d hidden, H heads, n qk_nope_head_dim, r qk_rope_head_dim, v v_head_dim,
C kv_lora_rank, S cached positions (past + this call), E routed experts, K experts per token, F expert width.
"""
import numpy as np
from onnx import helper, numpy_helper

from runtime.mla import rope_angles

OPSET = 21          # the first opset whose DequantizeLinear takes block_size (blocked quantization)


class Builder:
    """Collects nodes and initializers for one graph. Weights come from a common.Compiled; with int8=True
    every tensor that is int8 in the model file becomes an int8 initializer + float32 scales feeding a
    DequantizeLinear, so the dequantized weight is the runtime's bit for bit."""

    def __init__(self, compiled, int8):
        self.compiled, self.int8 = compiled, int8
        self.nodes, self.inits = [], []
        self.scope = "model"                    # prefix of generated value names, set per tinyr1 node
        self._count = 0
        self.memo = {}                          # weight name, constant or table key -> value name(s)

    # ------------------------------------------------------------ nodes and constants
    def op(self, op_type, *inputs, outs=1, out=None, **attrs):
        """Append one node -> its output name (or list of names when outs > 1)."""
        names = [out] if out else [self._fresh(op_type) for _ in range(outs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=f"{names[0]}:{op_type}", **attrs))
        return names[0] if outs == 1 else names

    def _fresh(self, hint):
        self._count += 1
        return f"{self.scope}/{hint}_{self._count}"

    def init(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, value, dtype=np.float32):
        """A Constant node (shapes, axes, eps), shared by every later use of the same value; initializers
        hold only weights and RoPE tables."""
        a = np.asarray(value, dtype=dtype)
        key = ("const", a.dtype.str, a.shape, a.tobytes())
        if key not in self.memo:
            name = f"const/{len(self.memo)}"
            self.memo[key] = self.op("Constant", out=name, value=numpy_helper.from_array(a, name))
        return self.memo[key]

    def axes(self, *axes):
        return self.const(list(axes), np.int64)

    # ------------------------------------------------------------ weights
    def quantized(self, name):
        return self.int8 and name in self.compiled.int8

    def shape(self, name):
        return self.compiled.weights[name].shape

    def weight(self, name):
        """The tensor as a float32 value (an initializer, or int8 initializer -> DequantizeLinear)."""
        if name not in self.memo:
            if self.quantized(name):
                q, scales, group = self._int8(name)
                self.memo[name] = self.op("DequantizeLinear", q, scales, axis=len(self.shape(name)) - 1,
                                           block_size=group)
            else:
                self.memo[name] = self.init(name, self.compiled.weights[name])
        return self.memo[name]

    def rows(self, name, idx, idx_rank):
        """Gather(weight, idx) along axis 0 -> idx.shape + weight.shape[1:]. An int8 tensor is gathered
        before it is dequantized, so only the chosen rows (embeddings, experts) are converted."""
        if not self.quantized(name):
            return self.op("Gather", self.weight(name), idx)
        q, scales, group = self._int8(name)
        rank = idx_rank + len(self.shape(name)) - 1
        return self.op("DequantizeLinear", self.op("Gather", q, idx), self.op("Gather", scales, idx),
                       axis=rank - 1, block_size=group)

    def _int8(self, name):
        """-> (int8 initializer, float32 scales initializer (..., n_groups), group size)."""
        key = ("int8", name)
        if key not in self.memo:
            q, scales16, group = self.compiled.int8[name]
            # (rows, n_groups) -> weight shape with the last axis cut into groups; float16 -> float32 is exact
            scales = scales16.astype(np.float32).reshape(q.shape[:-1] + (scales16.shape[-1],))
            self.memo[key] = (self.init(name, q.astype(np.int8)), self.init(f"{name}.scales", scales), int(group))
        return self.memo[key]


# ---------------------------------------------------------------- element-wise pieces
def rmsnorm(b, x, w, eps):
    """x (..., D) -> x / sqrt(sum(x^2) / D + eps) * w, in the runtime's order of operations."""
    D = b.shape(w)[0]
    ss = b.op("ReduceSumSquare", x, b.axes(-1), keepdims=1)
    inv = b.op("Reciprocal", b.op("Sqrt", b.op("Add", b.op("Mul", ss, b.const(1.0 / D)), b.const(eps))))
    return b.op("Mul", b.op("Mul", x, inv), b.weight(w))


def linear(b, x, w):
    """x (T, in) @ w^T, w stored (out, in) as in the model file -> (T, out)."""
    return b.op("Gemm", x, b.weight(w), transB=1)


def silu(b, g):
    return b.op("Mul", g, b.op("Sigmoid", g))


def swiglu(b, x, gate, up, down):
    """w_down(silu(w_gate x) * w_up x): the dense FFN and the shared expert."""
    return linear(b, b.op("Mul", silu(b, linear(b, x, gate)), linear(b, x, up)), down)


def rope(b, x, cos, sin):
    """Rotate half-split pairs (i, i + r/2) as docs/FORMAT.md says: x (..., T, r), cos/sin (T, r/2)."""
    x1, x2 = b.op("Split", x, axis=-1, num_outputs=2, outs=2)
    first = b.op("Sub", b.op("Mul", x1, cos), b.op("Mul", x2, sin))
    second = b.op("Add", b.op("Mul", x2, cos), b.op("Mul", x1, sin))
    return b.op("Concat", first, second, axis=-1)


def rope_tables(b, theta, r, max_positions):
    """cos, sin (max_positions, r/2) initializers, computed in float64 then float32 like the runtime."""
    key = ("rope", theta, r, max_positions)
    if key not in b.memo:
        ang = rope_angles(max_positions, r, theta)
        tag = f"rope.r{r}.theta{theta:g}.S{max_positions}"
        b.memo[key] = (b.init(f"{tag}.cos", np.cos(ang).astype(np.float32)),
                        b.init(f"{tag}.sin", np.sin(ang).astype(np.float32)))
    return b.memo[key]


# ---------------------------------------------------------------- attention
def mla_attention(b, x, node, pos, causal_mask=None, past=None):
    """Absorbed Multi-head Latent Attention over the latent cache.

    x (T, d); pos (T,) int64 absolute positions of these tokens; causal_mask (T, S) bool, True where a key
    lies in the future (prefill), or None (one decode token sees everything); past (S-T, C), (S-T, r) value
    names or None. -> (y (T, d), c_kv (S, C), k_pe (S, r)): the layer's cache after this call."""
    a = node["attrs"]
    H, n, r, C = (int(a[k]) for k in ("n_heads", "qk_nope_head_dim", "qk_rope_head_dim", "kv_lora_rank"))
    eps = float(a["eps"])
    if "w_q" in a:
        q = linear(b, x, a["w_q"])                                                   # (T, H(n+r))
    else:                                                                            # q_lora: down, norm, up
        q = linear(b, rmsnorm(b, linear(b, x, a["w_q_a"]), a["w_q_a_norm"], eps), a["w_q_b"])
    q = b.op("Transpose", b.op("Reshape", q, b.const([0, H, n + r], np.int64)), perm=[1, 0, 2])   # (H, T, n+r)
    q_nope, q_pe = b.op("Split", q, b.const([n, r], np.int64), axis=-1, outs=2)      # (H, T, n), (H, T, r)
    c_kv, k_pe = b.op("Split", linear(b, x, a["w_kv_a"]), b.const([C, r], np.int64), axis=-1, outs=2)
    c_kv = rmsnorm(b, c_kv, a["w_kv_a_norm"], eps)                                    # (T, C)
    cos_table, sin_table = rope_tables(b, float(a["rope_theta"]), r, int(a["max_positions"]))
    cos, sin = b.op("Gather", cos_table, pos), b.op("Gather", sin_table, pos)         # (T, r/2)
    k_pe, q_pe = rope(b, k_pe, cos, sin), rope(b, q_pe, cos, sin)                    # (T, r), (H, T, r)
    if past is not None:
        c_kv, k_pe = b.op("Concat", past[0], c_kv, axis=0), b.op("Concat", past[1], k_pe, axis=0)   # (S, .)
    # the query enters the latent space through w_uk, so keys are never expanded per head
    q_lat = b.op("MatMul", q_nope, b.weight(a["w_uk"]))                              # (H, T, C)
    scores = b.op("Add", b.op("MatMul", q_lat, b.op("Transpose", c_kv, perm=[1, 0])),
                  b.op("MatMul", q_pe, b.op("Transpose", k_pe, perm=[1, 0])))       # (H, T, S)
    scores = b.op("Mul", scores, b.const((n + r) ** -0.5))
    if causal_mask is not None:
        scores = b.op("Where", causal_mask, b.const(-np.inf), scores)
    ctx_lat = b.op("MatMul", b.op("Softmax", scores, axis=-1), c_kv)                 # (H, T, C)
    out = b.op("MatMul", ctx_lat, b.weight(a["w_uv"]))                              # (H, T, v)
    out = b.op("Reshape", b.op("Transpose", out, perm=[1, 0, 2]), b.const([0, -1], np.int64))  # (T, H v)
    return linear(b, out, a["w_o"]), c_kv, k_pe


# ---------------------------------------------------------------- mixture of experts
def moe(b, x, node):
    """DeepSeek-V3 MoE: sigmoid router, bias for selection only, group-limited top-K, the K chosen
    experts (and only those) weighted by their unbiased scores, plus the shared expert. x (T, d)."""
    a = node["attrs"]
    K, G, TG = int(a["top_k"]), int(a["n_group"]), int(a["topk_group"])
    E = b.shape(a["w_router"])[0]
    s = b.op("Sigmoid", linear(b, x, a["w_router"]))                                 # (T, E)
    sel = b.op("Add", s, b.weight(a["w_bias"]))                                      # the bias only chooses
    if G > 1:
        sel = limit_groups(b, sel, E, G, TG)
    # TopK puts equal values in index order, as the runtime's stable argsort does
    _, idx = b.op("TopK", sel, b.const([K], np.int64), axis=-1, outs=2)             # (T, K) int64
    w = b.op("GatherElements", s, idx, axis=1)                                       # (T, K)
    if a.get("norm_topk_prob"):
        w = b.op("Div", w, b.op("Add", b.op("ReduceSum", w, b.axes(-1), keepdims=1), b.const(1e-20)))
    w = b.op("Mul", w, b.const(float(a["routed_scaling_factor"])))
    y = routed_experts(b, x, idx, w, a["w_experts_gate_up"], a["w_experts_down"])
    if "w_shared_gate" in a:
        y = b.op("Add", swiglu(b, x, a["w_shared_gate"], a["w_shared_up"], a["w_shared_down"]), y)
    return y


def limit_groups(b, sel, E, G, TG):
    """sel (T, E) -> sel with every expert outside the TG groups of largest top-2 sum set to -inf."""
    grouped = b.op("Reshape", sel, b.const([0, G, E // G], np.int64))                # (T, G, E/G)
    top2, _ = b.op("TopK", grouped, b.const([2], np.int64), axis=-1, outs=2)         # (T, G, 2)
    score = b.op("ReduceSum", top2, b.axes(-1), keepdims=0)                          # (T, G)
    _, keep = b.op("TopK", score, b.const([TG], np.int64), axis=-1, outs=2)          # (T, TG)
    # (T, G): 0 for kept groups, -inf for the others; added to every expert of the group
    dropped = b.op("Expand", b.const(-np.inf), b.op("Shape", score))
    zeros = b.op("Expand", b.const(0.0), b.op("Shape", keep))
    offset = b.op("ScatterElements", dropped, keep, zeros, axis=1)
    return b.op("Reshape", b.op("Add", grouped, b.op("Unsqueeze", offset, b.axes(2))), b.const([0, E], np.int64))


def routed_experts(b, x, idx, w, gate_up, down):
    """sum_k w[t, k] * Expert_idx[t, k](x[t]) with only the chosen experts' weights gathered.
    x (T, d), idx (T, K), w (T, K); gate_up (E, 2F, d) gate rows then up rows, down (E, d, F)."""
    F = b.shape(gate_up)[1] // 2
    xc = b.op("Unsqueeze", x, b.axes(1, 3))                                           # (T, 1, d, 1)
    gu = b.op("MatMul", b.rows(gate_up, idx, 2), xc)                                 # (T, K, 2F, 1)
    g, u = b.op("Split", gu, b.const([F, F], np.int64), axis=2, outs=2)               # (T, K, F, 1)
    h = b.op("MatMul", b.rows(down, idx, 2), b.op("Mul", silu(b, g), u))             # (T, K, d, 1)
    h = b.op("Mul", h, b.op("Unsqueeze", w, b.axes(2, 3)))                           # weighted by (T, K, 1, 1)
    return b.op("Squeeze", b.op("ReduceSum", h, b.axes(1), keepdims=0), b.axes(2))    # (T, d)
