"""The runtime's ops, one class each. `__init__(node, weights, ctx)` prepares once at load (validate
shapes, pre-transpose for `x @ W`, fold and fuse weights, allocate caches and buffers); `run(ctx, *xs)`
computes T tokens at once (prefill, parity checks) and `step(*xs)` one token (decoding, 1-D vectors, the
hot path). The registry OPS at the bottom is this runtime's backend of the graph contract (runtime/opset.py
OPS, the same names: tests/test_opset.py); `op_class` looks an op up and names what is missing.

Shapes: T tokens in this call, d hidden, V vocabulary. The attention and MoE ops live in runtime/mla.py
and runtime/moe.py.
"""
import math

import numpy as np

from runtime.errors import ModelFormatError
from runtime.mla import MLAttention
from runtime.moe import MoE
from runtime.ops_common import attr, matmul, rmsnorm, silu_mul, tensor


class Ctx:
    """Per-call state shared by the ops: the position of the first token of this call, and whether the
    head needs every position's logits (parity checks) or only the last one (generation)."""
    __slots__ = ("pos", "all_logits")

    def __init__(self, pos=0, all_logits=False):
        self.pos, self.all_logits = pos, all_logits


class Embedding:
    def __init__(self, node, weights, ctx):
        self.table = tensor(weights, node, "weight")                     # (V, d)
        self.V = self.table.shape[0]

    def run(self, ctx, tokens):
        return self.table[tokens]                                         # (T, d)

    def step(self, token):
        return self.table[token]                                          # (d,), a read-only view


class RMSNorm:
    def __init__(self, node, weights, ctx):
        self.w = tensor(weights, node, "weight")
        self.eps = float(attr(node, "eps", float))
        self.inv_n = 1.0 / self.w.shape[0]

    def run(self, ctx, x):
        return rmsnorm(x, self.w, self.eps)

    def step(self, x):
        return x * (self.w * (1.0 / math.sqrt(float(x.dot(x)) * self.inv_n + self.eps)))


class Add:
    def __init__(self, node, weights, ctx):
        pass

    def run(self, ctx, a, b):
        return a + b

    def step(self, a, b):
        return a + b


class Linear:
    """x @ W^T (the MTP module's input projection)."""

    def __init__(self, node, weights, ctx):
        self.w_t = np.ascontiguousarray(tensor(weights, node, "weight").T)              # (in, out)

    def run(self, ctx, x):
        return matmul(x, self.w_t)

    def step(self, x):
        return x.dot(self.w_t)


class SwiGLU:
    def __init__(self, node, weights, ctx):
        g, u, dn = (tensor(weights, node, k) for k in ("w_gate", "w_up", "w_down"))
        self.F = g.shape[0]
        self.gu_t = np.ascontiguousarray(np.concatenate([g, u], 0).T)   # (d, 2F): one matmul for both
        self.down_t = np.ascontiguousarray(dn.T)                         # (F, d)

    def run(self, ctx, x):
        return matmul(silu_mul(matmul(x, self.gu_t), self.F), self.down_t)

    def step(self, x):
        return silu_mul(x.dot(self.gu_t), self.F).dot(self.down_t)


class LMHead:
    def __init__(self, node, weights, ctx):
        self.w_t = np.ascontiguousarray(tensor(weights, node, "weight").T)              # (d, V)

    def run(self, ctx, x):
        return matmul(x if ctx.all_logits else x[-1:], self.w_t)

    def step(self, x):
        return x.dot(self.w_t)                                           # (V,)


OPS = {"embedding": Embedding, "rmsnorm": RMSNorm, "mla_attention": MLAttention, "swiglu_mlp": SwiGLU,
       "moe": MoE, "add": Add, "linear": Linear, "lm_head": LMHead}


def op_class(op):
    """The class that prepares and runs `op`; ModelFormatError naming the op and the ops this runtime runs."""
    if not (isinstance(op, str) and op in OPS):
        raise ModelFormatError(f"the runtime has no kernel for op {op!r:.40}; it runs: {', '.join(OPS)}")
    return OPS[op]
