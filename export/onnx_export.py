"""`tinyr1 export onnx MODEL -o DIR`: the compiled graph as two ONNX models built with onnx.helper.

    DIR/prefill.onnx  tokens (T,) int64 -> logits (T, V), and per layer i c_kv.{i} (T, C), k_pe.{i} (T, r)
    DIR/decode.onnx   token (1,) int64, past_c_kv.{i} (S, C), past_k_pe.{i} (S, r)
                      -> logits (1, V), present_c_kv.{i} (S+1, C), present_k_pe.{i} (S+1, r)

The caches are the runtime's latent cache: c_kv after its RMSNorm, k_pe after RoPE. The decode token's
position is S, read from the shape of the past cache. With weights="int8" every tensor that is int8 in the
model file stays int8 (blocked DequantizeLinear, opset 21, block_size = the group size); everything else,
and every tensor with weights="float32", is a float32 initializer. LOWERINGS maps each op of the graph
contract (runtime/opset.py) to its function in onnx_ops.py.

OrtRunner runs the pair with onnxruntime, keeping the cache between calls (for benchmarks and parity tests).
"""
import os
from dataclasses import dataclass

import numpy as np

from export.common import load_compiled, lowering, node_inputs, prompt_note
from export.errors import ExportError
from runtime.errors import ContextOverflowError

try:                                        # optional dependency: `tinyr1 export onnx` says what to install
    import onnx
    from onnx import TensorProto, helper

    from export import onnx_ops as ops
except ImportError:
    onnx = None

WEIGHTS = ("int8", "float32")
FILES = ("prefill", "decode")


def export(model_path, out_path, weights="int8"):
    """Write out_path/prefill.onnx and out_path/decode.onnx -> report dict."""
    if weights not in WEIGHTS:
        raise ExportError(f"onnx export: weights={weights!r} is not supported; use one of {list(WEIGHTS)}")
    if os.path.exists(out_path) and not os.path.isdir(out_path):
        raise ExportError(f"onnx export: {out_path} is a file; the export writes a directory holding "
                          f"prefill.onnx and decode.onnx")
    if onnx is None:
        raise ExportError("onnx export needs the onnx package: pip install onnx")
    compiled = load_compiled(model_path)
    models = {mode: build_model(compiled, mode, int8=weights == "int8") for mode in FILES}
    os.makedirs(out_path, exist_ok=True)
    written = 0
    for mode, model in models.items():
        onnx.checker.check_model(model, full_check=True)
        data = model.SerializeToString()
        with open(os.path.join(out_path, f"{mode}.onnx"), "wb") as f:
            f.write(data)
        written += len(data)
    int8 = sorted({t.name for m in models.values() for t in m.graph.initializer if t.data_type == TensorProto.INT8})
    return {"bytes": written, "prefill_nodes": len(models["prefill"].graph.node),
            "decode_nodes": len(models["decode"].graph.node), "opset": ops.OPSET, "int8_tensors": int8}


# ---------------------------------------------------------------- graphs
def build_model(compiled, mode, int8):
    """One ONNX model: mode "prefill" (causal, from position 0) or "decode" (one token after S cached)."""
    b = ops.Builder(compiled, int8)
    layers = [mla["attrs"] for mla, _ in compiled.layers()]
    V = compiled.weights[_head(compiled)["attrs"]["weight"]].shape[0]
    if mode == "prefill":
        inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["T"])]
        pos, mask = _prefill_positions(b, "tokens")                                  # (T,), (T, T)
        logits, caches = _walk(b, compiled, "tokens", pos, mask, past=False)
        rows, prefix = "T", ""
    else:
        inputs = [helper.make_tensor_value_info("token", TensorProto.INT64, [1])]
        inputs += [_float(f"past_{name}", ["S", width]) for a in layers for name, width in _cache(a)]
        # the new token sits at position S = the number of cached rows
        pos = b.op("Shape", f"past_c_kv.{layers[0]['layer']}", start=0, end=1)       # (1,) int64
        logits, caches = _walk(b, compiled, "token", pos, None, past=True)
        rows, prefix = "S+1", "present_"
    b.op("Identity", logits, out="logits")
    outputs = [_float("logits", [1 if mode == "decode" else "T", V])]
    for a in layers:
        for (name, width), value in zip(_cache(a), caches[a["layer"]]):
            outputs.append(_float(prefix + name, [rows, width]))
            b.op("Identity", value, out=prefix + name)
    graph = helper.make_graph(b.nodes, f"tinyr1_{mode}", inputs, outputs, initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ops.OPSET)], ir_version=10,
                              producer_name="tinyr1", doc_string=f"tinyr1 {mode} graph of {compiled.path}")
    helper.set_model_props(model, {"max_positions": str(compiled.max_positions),
                                   "weights": "int8" if int8 else "float32",
                                   "places": str(bool(compiled.tokenizer.places)).lower(),
                                   "items": str(bool(compiled.tokenizer.items)).lower(),
                                   "hints": str(bool(compiled.tokenizer.hints)).lower(),
                                   "prompt": prompt_note(compiled.tokenizer)})
    return model


def _cache(mla_attrs):
    """The layer's cache tensors: [(name, width)], c_kv (C) then k_pe (r)."""
    i = mla_attrs["layer"]
    return [(f"c_kv.{i}", mla_attrs["kv_lora_rank"]), (f"k_pe.{i}", mla_attrs["qk_rope_head_dim"])]


def _float(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _prefill_positions(b, tokens):
    """-> positions 0..T-1 (T,) int64 and the causal mask (T, T) bool, True where key j > query i."""
    b.scope = "positions"
    T = b.op("Squeeze", b.op("Shape", tokens), b.axes(0))                           # scalar int64
    pos = b.op("Range", b.const(0, np.int64), T, b.const(1, np.int64))              # (T,)
    mask = b.op("Greater", b.op("Unsqueeze", pos, b.axes(0)), b.op("Unsqueeze", pos, b.axes(1)))
    return pos, mask


def _head(compiled):
    heads = [n for n in compiled.nodes if n["op"] == "lm_head"]
    if not heads:
        raise ExportError(f"{compiled.path}: the graph has no lm_head node")
    return heads[-1]


def _walk(b, compiled, tokens, pos, mask, past):
    """Emit every node of the main graph in order -> (logits value, {layer: (c_kv, k_pe)})."""
    env, at = {"tokens": tokens}, _At(pos, mask, past, {})
    for node in compiled.nodes:
        lower = lowering(LOWERINGS, node, "onnx", compiled.path)
        x = node_inputs(compiled, node, env)
        b.scope = node["outputs"][0]
        env[node["outputs"][0]] = lower(b, node, x, at)
    return env[compiled.output], at.caches


@dataclass
class _At:
    """Where this graph's tokens sit: pos (T,) int64 positions, mask (T, T) causal or None (decode), past:
    whether the caches come in as inputs; caches {layer: (c_kv, k_pe)} collects each layer's cache."""
    pos: str
    mask: str
    past: bool
    caches: dict


def _mla_attention(b, node, x, at):
    i = node["attrs"]["layer"]
    layer_past = (f"past_c_kv.{i}", f"past_k_pe.{i}") if at.past else None
    y, c_kv, k_pe = ops.mla_attention(b, x[0], node, at.pos, at.mask, layer_past)
    at.caches[i] = (c_kv, k_pe)
    return y


def _swiglu(b, node, x, at):
    a = node["attrs"]
    return ops.swiglu(b, x[0], a["w_gate"], a["w_up"], a["w_down"])


def _rmsnorm(b, node, x, at):
    return ops.rmsnorm(b, x[0], node["attrs"]["weight"], float(node["attrs"]["eps"]))


def _linear(b, node, x, at):
    """x @ W^T: linear (T, out) and lm_head (T, V)."""
    return ops.linear(b, x[0], node["attrs"]["weight"])


# op -> fn(builder, node, input values, _At) -> its output value
LOWERINGS = {
    "embedding": lambda b, node, x, at: b.rows(node["attrs"]["weight"], x[0], 1),               # (T, d)
    "rmsnorm": _rmsnorm,
    "mla_attention": _mla_attention,
    "swiglu_mlp": _swiglu,
    "moe": lambda b, node, x, at: ops.moe(b, x[0], node),
    "add": lambda b, node, x, at: b.op("Add", x[0], x[1]),
    "linear": _linear,
    "lm_head": _linear,
}


# ---------------------------------------------------------------- runner
class OrtRunner:
    """prefill.onnx + decode.onnx under onnxruntime, the latent cache kept between calls.

        r = OrtRunner("out/onnx");  logits = r.prefill(ids);  logits = r.step(token);  r.reset()"""

    def __init__(self, out_dir, threads=1):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.sessions = {mode: ort.InferenceSession(os.path.join(out_dir, f"{mode}.onnx"), opts,
                                                    providers=["CPUExecutionProvider"]) for mode in FILES}
        meta = self.sessions["decode"].get_modelmeta().custom_metadata_map
        self.max_positions = int(meta["max_positions"])
        # the empty cache: (0, width) per past input, widths from the declared shapes
        self._empty = {i.name: np.zeros((0, i.shape[1]), np.float32) for i in self.sessions["decode"].get_inputs()
                       if i.name.startswith("past_")}
        self.reset()

    def reset(self):
        self.cache, self.pos = dict(self._empty), 0

    def prefill(self, ids):
        """Start a new sequence with ids (T,) -> logits of the last position (V,)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        self._room(len(ids), 0)
        out = self.run("prefill", {"tokens": ids})
        self.cache = {f"past_{k}": v for k, v in out.items() if k != "logits"}
        self.pos = len(ids)
        return out["logits"][-1]

    def step(self, token):
        """Append one token at the current position -> its logits (V,)."""
        self._room(1, self.pos)
        out = self.run("decode", {"token": np.array([token], np.int64), **self.cache})
        self.cache = {"past_" + k[len("present_"):]: v for k, v in out.items() if k != "logits"}
        self.pos += 1
        return out["logits"][0]

    def run(self, mode, feeds):
        """One graph ("prefill" or "decode") on feeds -> {output name: array}; the cache is left alone."""
        sess = self.sessions[mode]
        return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))

    def _room(self, n, pos):
        if pos + n > self.max_positions:
            raise ContextOverflowError(f"{pos + n} tokens exceed the context of {self.max_positions}")
