"""Helpers every op shares: checked access to a node's tensors and attributes, and the two small
kernels (RMSNorm, SwiGLU's activation) that several ops call."""
import numpy as np

from runtime.errors import ModelFormatError


def tensor(weights, node, key, shape=None):
    """The tensor that attribute `key` names, checked against `shape` when given."""
    name = node["attrs"].get(key)
    if name not in weights:
        raise ModelFormatError(f"node {node['op']}: attribute {key} names a missing tensor {name!r}")
    w = weights[name]
    if shape is not None and tuple(w.shape) != tuple(shape):
        raise ModelFormatError(f"tensor {name!r} has shape {list(w.shape)}, the {node['op']} op needs {list(shape)}")
    return w


def attr(node, key, kind):
    v = node["attrs"].get(key)
    ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if not ok:
        raise ModelFormatError(f"node {node['op']}: attribute {key}={v!r:.40} must be {kind.__name__}")
    return v


def matmul(x, w):
    """x (T, n) @ w (n, m). A few rows go through one matrix-vector product each: BLAS's matrix-matrix
    kernel repacks w on every call, which for T <= 4 (speculative verification) costs more than the product."""
    if x.ndim == 1 or x.shape[0] > 4:
        return x.dot(w)
    out = np.empty((x.shape[0], w.shape[1]), np.float32)
    for i in range(x.shape[0]):
        np.dot(x[i], w, out=out[i])
    return out


def rmsnorm(x, w, eps):
    """x (..., n) / sqrt(mean(x^2) + eps) * w, in float32."""
    ss = np.add.reduce(x * x, axis=-1, keepdims=True)
    return x * (1.0 / np.sqrt(ss * (1.0 / x.shape[-1]) + eps)) * w


def silu_mul(gu, F):
    """gu (..., 2F) = [gate | up] -> silu(gate) * up (..., F)."""
    g = gu[..., :F]
    return g / (1.0 + np.exp(-g)) * gu[..., F:]
