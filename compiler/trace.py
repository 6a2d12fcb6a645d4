"""Trace the trainer's forward into a Graph of coarse ops.

We run the real `trainer.model.logits` on a short token sequence with the layer functions that
`trainer/model.py` calls (rmsnorm_forward, mla_forward, moe_forward, swiglu_forward, head_forward)
replaced by recording wrappers. Each wrapper computes the real value and records one node; residual
adds are caught by `Value.__array_ufunc__`, the embedding lookup by indexing the wrapped table. The
traced logits must equal an untraced run, so a trace that missed an op cannot pass silently.
"""
import contextlib

import numpy as np

import trainer.model as tm
from compiler.ir import TRACE_ONLY_OPS, Graph, Node
from runtime import opset


class Value(np.ndarray):
    """An array that remembers which graph value it is."""
    name = None

    def __array_finalize__(self, obj):
        self.name = getattr(obj, "name", None)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(x) if isinstance(x, Value) else x for x in inputs]
        out = getattr(ufunc, method)(*plain, **kwargs)
        names = [x.name for x in inputs if isinstance(x, Value)]
        if ufunc is np.add and method == "__call__" and len(names) == 2 and all(names):
            return _RECORDER.emit("add", names, out)
        return out                      # anything else is not a graph op: value stays untraced


class Table(np.ndarray):
    """The embedding table: indexing it with the token ids records `embedding`."""

    def __getitem__(self, ids):
        out = np.asarray(self)[np.asarray(ids)]
        if isinstance(ids, np.ndarray) and getattr(ids, "name", None):        # tokens, or MTP's next_tokens
            return _RECORDER.emit("embedding", [ids.name], out, weight="embed_tokens")
        return out


class Recorder:
    def __init__(self, params):
        self.nodes = []
        self.names = {id(v): k for k, v in params.items()}
        self.counts = {}

    def fresh(self, op):
        n = self.counts.get(op, 0)
        self.counts[op] = n + 1
        return f"{op}{n}"

    def emit(self, op, inputs, out, **attrs):
        if op not in opset.OPS and op not in TRACE_ONLY_OPS:
            raise AssertionError(f"trace emitted op {op!r}: neither in the opset (runtime/opset.py: "
                                 f"{', '.join(opset.OPS)}) nor one that compiler/passes.py lowers "
                                 f"({', '.join(TRACE_ONLY_OPS)})")
        name = self.fresh(op)
        self.nodes.append(Node(op, list(inputs), [name], attrs))
        v = np.asarray(out).view(Value)
        v.name = name
        return v

    def weight(self, arr):
        return self.names[id(arr)]


_RECORDER = None


def _wrappers(rec, cfg):
    real = {k: getattr(tm, k) for k in ("rmsnorm_forward", "mla_forward", "moe_forward", "swiglu_forward",
                                         "mtp_projection")}

    def rmsnorm_forward(x, w, eps):
        y, c = real["rmsnorm_forward"](np.asarray(x), w, eps)
        return rec.emit("rmsnorm", [x.name], y, weight=rec.weight(w), eps=float(eps)), c

    def mla_forward(p, prefix, cfg_, x, cos, sin, kv=None, pos=0):
        y, c = real["mla_forward"](p, prefix, cfg_, np.asarray(x), cos, sin, kv, pos)
        layer = int(prefix.split(".")[1]) if prefix.startswith("layers.") else cfg.num_hidden_layers   # MTP: after the last
        return rec.emit("mla_attention", [x.name], y, layer=layer, prefix=prefix), c

    def moe_forward(p, prefix, cfg_, x, token_mask=None):
        y, c = real["moe_forward"](p, prefix, cfg_, np.asarray(x), token_mask)
        return rec.emit("moe", [x.name], y, prefix=prefix), c

    def swiglu_forward(x, Wg, Wu, Wd):
        y, c = real["swiglu_forward"](np.asarray(x), Wg, Wu, Wd)
        return rec.emit("swiglu_mlp", [x.name], y, w_gate=rec.weight(Wg), w_up=rec.weight(Wu),
                        w_down=rec.weight(Wd)), c

    def mtp_projection(e, hh, W):
        y, cat = real["mtp_projection"](np.asarray(e), np.asarray(hh), W)
        return rec.emit("mtp_projection", [e.name, hh.name], y, weight=rec.weight(W)), cat

    def head_forward(params, cfg_, h, norm_name="norm"):
        hn, c = rmsnorm_forward(h, params[norm_name], cfg_.rms_norm_eps)
        flat = hn.reshape(-1, hn.shape[-1])
        w = tm.lm_head(params, cfg_)
        out = rec.emit("lm_head", [hn.name], np.asarray(flat) @ np.asarray(w).T, weight=rec.weight(w))
        return out, (flat, c)

    return dict(rmsnorm_forward=rmsnorm_forward, mla_forward=mla_forward, moe_forward=moe_forward,
                swiglu_forward=swiglu_forward, mtp_projection=mtp_projection, head_forward=head_forward)


@contextlib.contextmanager
def recording(params, cfg):
    global _RECORDER
    rec = Recorder(params)
    saved = {k: getattr(tm, k) for k in ("rmsnorm_forward", "mla_forward", "moe_forward", "swiglu_forward",
                                          "mtp_projection", "head_forward")}
    _RECORDER = rec
    for k, f in _wrappers(rec, cfg).items():
        setattr(tm, k, f)
    try:
        yield rec
    finally:
        for k, f in saved.items():
            setattr(tm, k, f)
        _RECORDER = None


def named(arr, name):
    v = arr.view(Value)
    v.name = name
    return v


def trace(params, cfg, n_tokens=5):
    """-> Graph of the main model; with an MTP module, its draft head as `graph.mtp`, a subgraph whose
    inputs are the main graph's last hidden state (before the final norm) and `next_tokens`."""
    ids = np.arange(n_tokens).reshape(1, n_tokens) % cfg.vocab_size
    traced_params = dict(params)
    traced_params["embed_tokens"] = params["embed_tokens"].view(Table)
    with recording(traced_params, cfg) as rec:
        rec.names[id(traced_params["embed_tokens"])] = "embed_tokens"
        h, _ = tm.forward(traced_params, cfg, named(ids, "tokens"))
        out, _ = tm.head_forward(traced_params, cfg, h)
        main, rec.nodes = rec.nodes, []
        if cfg.num_nextn_predict_layers:
            draft = tm.mtp_logits(traced_params, cfg, h, named(ids, "next_tokens"))
    if not np.array_equal(np.asarray(out).reshape(1, n_tokens, -1), tm.logits(params, cfg, ids)):
        raise AssertionError("traced forward differs from the untraced one: an op escaped the trace")
    main[-1].outputs = ["logits"]
    graph = Graph(["tokens"], ["logits"], main)
    if cfg.num_nextn_predict_layers:
        h_plain, _ = tm.forward(params, cfg, ids)
        if not np.array_equal(np.asarray(draft), tm.mtp_logits(params, cfg, h_plain, ids)):
            raise AssertionError("traced MTP head differs from the untraced one: an op escaped the trace")
        rec.nodes[-1].outputs = ["draft_logits"]
        graph.mtp = Graph([h.name, "next_tokens"], ["draft_logits"], rec.nodes)
    return graph
