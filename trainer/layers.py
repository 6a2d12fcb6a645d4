"""Forward and backward of each layer type, by hand, in numpy.

Every `X_forward` returns `(out, cache)`; `X_backward(dout, cache, grads, prefix)` returns the gradient
of its input and adds parameter gradients into the dict `grads` under `prefix + name`. Weights are
stored as HF stores them, `[out_features, in_features]`, so a linear layer is `x @ W.T`.
All arithmetic follows the parameters' dtype (float32 to train, float64 for gradient checks).
Shapes: B batch, T time, N = B*T tokens, d hidden, H heads, C kv_lora_rank, r rope dim.
"""
import numpy as np


def add_grad(grads, name, g):
    if name in grads:
        grads[name] += g
    else:
        grads[name] = g


# ---------------------------------------------------------------- RMSNorm
def rmsnorm_forward(x, w, eps):
    # x (..., n), w (n,)
    rinv = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    xh = x * rinv
    return xh * w, (xh, rinv, w)


def rmsnorm_backward(dy, cache, grads, name):
    xh, rinv, w = cache
    add_grad(grads, name, (dy * xh).reshape(-1, xh.shape[-1]).sum(0))
    dxh = dy * w
    return rinv * (dxh - xh * np.mean(dxh * xh, axis=-1, keepdims=True))


# ---------------------------------------------------------------- Linear (no bias)
def linear_backward(dy, x, W, grads, name):
    # dy (N, out), x (N, in), W (out, in)
    add_grad(grads, name, dy.T @ x)
    return dy @ W


# ---------------------------------------------------------------- SwiGLU MLP: down(silu(gate(x)) * up(x))
def silu(g):
    return g / (1.0 + np.exp(-g))


def swiglu_forward(x, Wg, Wu, Wd):
    # x (N, d); Wg, Wu (F, d); Wd (d, F)
    g = x @ Wg.T
    u = x @ Wu.T
    sig = 1.0 / (1.0 + np.exp(-g))
    a = g * sig * u                                  # (N, F)
    return a @ Wd.T, (x, g, u, sig, a)


def swiglu_backward(dy, cache, Wg, Wu, Wd):
    """Returns dx and the three weight gradients (callers decide where they go)."""
    x, g, u, sig, a = cache
    dWd = dy.T @ a
    da = dy @ Wd                                     # (N, F)
    dg = da * u * sig * (1.0 + g * (1.0 - sig))
    du = da * g * sig
    dx = dg @ Wg + du @ Wu
    return dx, dg.T @ x, du.T @ x, dWd


# ---------------------------------------------------------------- RoPE, half-split layout
def rope_tables(positions, r, theta, dtype):
    # positions (T,) ints -> cos, sin (T, r/2)
    inv_freq = 1.0 / (theta ** (np.arange(0, r, 2, dtype=np.float64) / r))
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(ang).astype(dtype), np.sin(ang).astype(dtype)


def rope_apply(x, cos, sin):
    # x (..., T, r) with cos/sin (T, r/2) broadcast; rotates pairs (i, i + r/2)
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def rope_backward(dy, cos, sin):
    h = dy.shape[-1] // 2
    d1, d2 = dy[..., :h], dy[..., h:]
    return np.concatenate([d1 * cos + d2 * sin, d2 * cos - d1 * sin], axis=-1)


# ---------------------------------------------------------------- cross-entropy
def cross_entropy(logits, targets, mask):
    """Mean NLL over positions where mask is 1. logits (N, V), targets (N,), mask (N,).

    Returns loss and dlogits (already divided by the number of counted positions)."""
    z = logits - logits.max(-1, keepdims=True)
    ez = np.exp(z)
    s = ez.sum(-1, keepdims=True)
    logp_t = z[np.arange(len(targets)), targets] - np.log(s[:, 0])
    n = max(float(mask.sum()), 1.0)
    loss = -(logp_t * mask).sum() / n
    dlogits = ez / s
    dlogits[np.arange(len(targets)), targets] -= 1.0
    dlogits *= (mask / n)[:, None]
    return float(loss), dlogits.astype(logits.dtype, copy=False)


def distill_kl(logits, teacher_probs, mask):
    """Token-level KL(teacher || student), mean over positions where mask is 1.

    logits (N, V) of the student, teacher_probs (N, V), mask (N,). The gradient wrt the student's
    logits is (p_student - p_teacher), divided by the number of counted positions."""
    lsm = log_softmax(logits)
    n = max(float(mask.sum()), 1.0)
    t = teacher_probs
    kl_rows = (t * (np.log(np.maximum(t, 1e-30)) - lsm)).sum(-1)
    dlogits = (np.exp(lsm) - t) * (mask / n)[:, None]
    return float((kl_rows * mask).sum() / n), dlogits.astype(logits.dtype, copy=False)


def log_softmax(logits):
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))
