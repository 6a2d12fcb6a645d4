"""AdamW with decoupled weight decay, warmup + cosine schedule, global-norm clipping."""
import math

import numpy as np


def lr_at(step, lr, min_lr, warmup_steps, total_steps):
    """Linear warmup to `lr`, then cosine decay to `min_lr` at `total_steps`."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t))


def clip_grads(grads, max_norm):
    """Scale all gradients so their global L2 norm is at most max_norm; returns the norm before."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if max_norm and norm > max_norm:
        s = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= s
    return norm


class AdamW:
    def __init__(self, params, trainable, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.01):
        self.trainable = list(trainable)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.m = {k: np.zeros_like(params[k]) for k in self.trainable}
        self.v = {k: np.zeros_like(params[k]) for k in self.trainable}
        self.t = 0

    def step(self, params, grads, lr):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k in self.trainable:
            g = grads.get(k)
            if g is None:
                continue
            m, v, p = self.m[k], self.v[k], params[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            if p.ndim >= 2 and self.weight_decay:      # matrices decay; norms do not
                p *= 1 - lr * self.weight_decay
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)

    def state(self):
        """Arrays for the checkpoint: {'m.NAME': ..., 'v.NAME': ...} and the step count."""
        arrays = {f"m.{k}": a for k, a in self.m.items()}
        arrays.update({f"v.{k}": a for k, a in self.v.items()})
        return arrays, self.t

    def load_state(self, arrays, t):
        for k in self.trainable:
            self.m[k][...] = arrays[f"m.{k}"]
            self.v[k][...] = arrays[f"v.{k}"]
        self.t = t
