"""Symmetric int8 quantization: group-wise along the input dimension (llama.cpp Q8_0) or per output row.

scale = max|w| / 127 over the group, stored as float16; q = round_half_away(w / scale).
Which tensors may be int8 is the graph contract's (runtime/opset.py, Tensor.int8): every matrix a node
names except norms, the router and the correction bias, which stay float32.
"""
import numpy as np

from runtime.opset import OPS, tensor_attrs


def quantize(w, scheme="q8_group", group_size=32):
    """w (..., cols) float32 -> (q int8 same shape, scales float16 (rows, n_groups), dequantized w)."""
    rows, cols = int(np.prod(w.shape[:-1])), w.shape[-1]
    x = w.reshape(rows, cols).astype(np.float32)
    g = cols if scheme == "q8_channel" else min(group_size, cols)
    n_groups = -(-cols // g)
    pad = n_groups * g - cols
    xp = np.pad(x, ((0, 0), (0, pad))).reshape(rows, n_groups, g)
    amax = np.abs(xp).max(-1)                                            # (rows, n_groups)
    scales = (amax / 127.0).astype(np.float16)
    s32 = scales.astype(np.float32)
    safe = np.where(s32 == 0, 1.0, s32)
    q = np.clip(np.trunc(xp / safe[..., None] + np.copysign(0.5, xp)), -127, 127).astype(np.int8)
    deq = (q.astype(np.float32) * s32[..., None]).reshape(rows, -1)[:, :cols].reshape(w.shape)
    q = q.reshape(rows, -1)[:, :cols].reshape(w.shape)
    return q, scales, deq


def quantizable(graph):
    """Tensor names that get int8: those the contract lets be int8 (not routers, biases and norms)."""
    names = set()
    for n in graph.nodes + (graph.mtp.nodes if graph.mtp is not None else []):
        rules = OPS[n.op].attrs
        names.update(name for k, name in tensor_attrs(n.op, n.attrs).items() if rules[k].int8)
    return names


def error_report(w, deq):
    diff = np.abs(w - deq)
    return {"max_abs_error": float(diff.max()),
            "rel_error": float(np.linalg.norm(w - deq) / max(np.linalg.norm(w), 1e-30))}
