"""moe: DeepSeek-V3 mixture of experts. Only the top_k selected experts of a token run.

Shapes: T tokens, d hidden, E routed experts (n_routed_experts), F an expert's width (moe_intermediate_size),
top_k experts per token (the config's num_experts_per_tok), n_group expert groups of which topk_group are kept.

    s   = sigmoid(x @ W_router^T)                  (E,)  float32
    sel = s + bias                                       the correction bias only chooses experts
    (n_group > 1: keep the topk_group groups with the largest sum of their top-2 sel; others -inf)
    idx = top_k of sel;  w = s[idx];  norm_topk_prob: w /= sum(w) + 1e-20;  w *= routed_scaling_factor
    y   = sum_k w_k * Expert_idx_k(x) + Shared(x)       Expert = SwiGLU, no biases

Prepared at load: weights pre-transposed for `x @ W`, and when the shared expert has the routed
experts' width it is stored as expert number E with a fixed weight of 1, so decoding runs the top_k + 1
expert matmuls into one buffer, one activation over it, and one weighted sum.
"""
import numpy as np

from runtime.errors import ModelFormatError
from runtime.ops_common import attr, matmul, silu_mul, tensor


class MoE:
    def __init__(self, node, weights, ctx):
        a = node["attrs"]
        self.router_t = np.ascontiguousarray(tensor(weights, node, "w_router").T)          # (d, E)
        self.E = E = self.router_t.shape[1]
        self.bias = tensor(weights, node, "w_bias", (E,))
        gu = tensor(weights, node, "w_experts_gate_up")                                     # (E, 2F, d)
        dn = tensor(weights, node, "w_experts_down")                                        # (E, d, F)
        if gu.shape[0] != E or dn.shape[0] != E:
            raise ModelFormatError(f"moe: expert tensors hold {gu.shape[0]} experts, the router {E}")
        self.F = gu.shape[1] // 2
        if gu.shape[1] != 2 * self.F or dn.shape[1:] != (gu.shape[2], self.F):
            raise ModelFormatError(f"moe: expert tensors {list(gu.shape)} and {list(dn.shape)} do not fit together")
        self.top_k, self.n_group, self.topk_group = (attr(node, k, int) for k in ("top_k", "n_group", "topk_group"))
        if not (0 < self.top_k <= E and self.n_group > 0 and E % self.n_group == 0
                and 0 < self.topk_group <= self.n_group):
            raise ModelFormatError(f"moe: routing top_k={self.top_k} n_group={self.n_group} "
                                   f"topk_group={self.topk_group} do not fit {E} experts")
        self.norm_topk_prob = bool(a.get("norm_topk_prob"))
        self.routed_scaling_factor = float(attr(node, "routed_scaling_factor", float))
        gu_t, down_t = gu.transpose(0, 2, 1), dn.transpose(0, 2, 1)                         # (E, d, 2F), (E, F, d)
        self.shared = None
        if "w_shared_gate" in a:
            sg, su, sd = (tensor(weights, node, k) for k in ("w_shared_gate", "w_shared_up", "w_shared_down"))
            if sg.shape != su.shape or sd.shape != sg.shape[::-1] or sg.shape[1] != gu.shape[2]:
                raise ModelFormatError(f"moe: shared expert shapes {list(sg.shape)}, {list(su.shape)}, "
                                       f"{list(sd.shape)} do not fit hidden size {gu.shape[2]}")
            s_gu_t, s_down_t = np.concatenate([sg, su], 0).T, sd.T                          # (d, 2Fs), (Fs, d)
            if sg.shape[0] == self.F:               # same width: the shared expert is expert E
                gu_t = np.concatenate([gu_t, s_gu_t[None]], 0)
                down_t = np.concatenate([down_t, s_down_t[None]], 0)
            else:
                self.shared = (np.ascontiguousarray(s_gu_t), np.ascontiguousarray(s_down_t), sg.shape[0])
        self.gu_t, self.down_t = np.ascontiguousarray(gu_t), np.ascontiguousarray(down_t)
        self.n_run = self.top_k + (len(gu_t) - E)              # experts run per token, the stacked shared one included
        self.slots = np.full(self.n_run, E, np.int64)          # decode: expert ids, slot top_k is the shared expert
        self.w = np.ones(self.n_run, np.float32)               # decode: their weights (shared: 1)
        self.gu = np.zeros((self.n_run, 2 * self.F), np.float32)
        self.y = np.zeros((self.n_run, gu.shape[2]), np.float32)
        self.neg_router_t = -self.router_t                      # decode: exp(-logits) in one call

    def route(self, x):
        """x (T, d) -> expert ids (T, top_k) and their weights (T, top_k)."""
        s = 1.0 / (1.0 + np.exp(-(x @ self.router_t)))                                     # (T, E)
        sel = s + self.bias
        if self.n_group > 1:
            T = len(x)
            grouped = sel.reshape(T, self.n_group, -1)                                    # (T, n_group, E / n_group)
            score = np.sort(grouped, axis=-1)[..., -2:].sum(-1)                           # (T, n_group)
            drop = np.argsort(-score, axis=-1, kind="stable")[:, self.topk_group:]       # (T, n_group - topk_group)
            mask = np.zeros((T, self.n_group), bool)
            np.put_along_axis(mask, drop, True, axis=1)
            sel = np.where(np.repeat(mask, self.E // self.n_group, axis=1), -np.inf, sel)
        idx = np.argsort(-sel, axis=-1, kind="stable")[:, :self.top_k]                    # (T, top_k)
        w = np.take_along_axis(s, idx, axis=-1)                                            # (T, top_k)
        if self.norm_topk_prob:
            w = w / (w.sum(-1, keepdims=True) + 1e-20)
        return idx, w * self.routed_scaling_factor

    def step(self, x):
        """Decode one token: x (d,) -> (d,)."""
        top_k, scale = self.top_k, self.routed_scaling_factor
        if self.n_group > 1:
            idx, w = self.route(x[None])
            self.slots[:top_k], self.w[:top_k] = idx[0], w[0]
        else:
            e = np.exp(x.dot(self.neg_router_t))
            e += 1.0
            s = np.reciprocal(e, out=e)                                                   # (E,) sigmoid scores
            s_b = s + self.bias                                                           # exactly route()'s sum:
            idx = np.negative(s_b, out=s_b).argsort(kind="stable")[:top_k]               # ties break the same way
            w = self.w[:top_k]
            s.take(idx, out=w)
            w *= scale / (sum(w.tolist()) + 1e-20) if self.norm_topk_prob else scale
            self.slots[:top_k] = idx
        return self.experts(x)

    def experts(self, x):
        """x (d,) -> sum_k w_k * Expert_slots[k](x) (+ the shared expert) for the slots and weights set."""
        for k, e in enumerate(self.slots):
            np.dot(x, self.gu_t[e], out=self.gu[k])
        h = silu_mul(self.gu, self.F)                                                     # (n_run, F)
        for k, e in enumerate(self.slots):
            np.dot(h[k], self.down_t[e], out=self.y[k])
        y = self.w.dot(self.y)
        if self.shared is not None:
            gu_t, down_t, Fs = self.shared
            y += silu_mul(x.dot(gu_t), Fs).dot(down_t)
        return y

    def run(self, ctx, x):
        """x (T, d) -> (T, d). A few tokens (speculative verification) go one by one through the decode
        kernel; more are grouped by expert: its gate-up and down matmuls for each expert that any token chose,
        one activation over all rows between them."""
        idx, w = self.route(x)
        if len(x) <= 4:
            y = np.empty_like(x)
            for t in range(len(x)):
                self.slots[:self.top_k], self.w[:self.top_k] = idx[t], w[t]
                y[t] = self.experts(x[t])
            return y
        T, k = idx.shape
        n_slots = self.n_run                                  # top_k, and the stacked shared expert if any
        slots, ws = np.empty((T, n_slots), np.int64), np.ones((T, n_slots), w.dtype)
        slots[:, :k], ws[:, :k] = idx, w
        slots[:, k:] = self.E                                 # the stacked shared expert: every token, weight 1
        # sort the (token, slot) pairs by expert: each expert's rows are one contiguous slice, written in place
        # by one matmul per expert; the activation runs once over all rows between the two loops
        flat = slots.ravel()
        order = flat.argsort(kind="stable")                                                  # (T*n_slots,)
        xs = x[order // n_slots]                                                             # (T*n_slots, d)
        gu = np.empty((len(xs), 2 * self.F), np.result_type(xs, self.gu_t))
        used, lo = [], 0
        for e, rows in enumerate(np.bincount(flat, minlength=len(self.gu_t)).tolist()):
            if rows:
                used.append((e, lo, lo + rows))
                np.dot(xs[lo:lo + rows], self.gu_t[e], out=gu[lo:lo + rows])
            lo += rows
        h = silu_mul(gu, self.F)                                                             # (T*n_slots, F)
        out = np.empty_like(xs)
        for e, lo, hi in used:
            np.dot(h[lo:hi], self.down_t[e], out=out[lo:hi])
        out *= ws.ravel()[order][:, None]
        y = np.empty_like(out)
        y[order] = out                                                                       # back to (token, slot)
        y = y.reshape(T, n_slots, -1).sum(1)
        if self.shared is not None:
            gu_t, down_t, Fs = self.shared
            y += matmul(silu_mul(matmul(x, gu_t), Fs), down_t)
        return y
