"""`tinyr1 export tflite MODEL -o OUT.tflite`: the prefill graph as a TFLite flatbuffer, written without
TensorFlow (tflite_builder.py on ai-edge-litert's schema), so LiteRT can check our numbers and race our runtime.

    tokens (seq_len,) int32 -> logits (seq_len, V) float32, causal, from position 0

TFLite prepares its kernels for fixed shapes, so seq_len is fixed in the file (default: the model's
context, max_positions). A shorter prompt is padded at the end and its logits are read from the first
rows: attention is causal, so tokens after a position cannot change that position's logits.

Weights are float32 only. Our int8 models carry group-wise scales (q8_group), which TFLite's hybrid int8
kernels cannot express (one scale per output channel), so an int8 model exports its dequantized float32
weights, exactly the runtime's. Only builtin operators are used; LOWERINGS maps each op of the graph
contract (runtime/opset.py) to its function in tflite_ops.py.

LiteRtRunner runs the file under ai-edge-litert or tflite-runtime (the same tf.lite API); tests and benchmarks
call it in a child process (export/isolated.py), so a crash in LiteRT is one error.
"""
import os

import numpy as np

from export import tflite_ops as ops
from export.common import load_compiled, lowering, node_inputs, prompt_note
from export.errors import ExportError
from runtime.errors import ContextOverflowError
from runtime.opset import tensor_attrs

WEIGHTS = ("float32",)
PAD_ID = 0              # what fills the rows after a short prompt; any valid id gives the same prompt logits


def export(model_path, out_path, weights="float32", seq_len=None):
    """Write the prefill graph of model_path to out_path (.tflite) -> report dict."""
    if weights == "int8":
        raise ExportError("tflite export: weights='int8' is not supported: TFLite's hybrid int8 kernels "
                          "have no group-wise scales (one scale per output channel), so our q8_group weights "
                          "cannot be carried over; use weights='float32', which writes an int8 model's "
                          "dequantized float32 weights")
    if weights not in WEIGHTS:
        raise ExportError(f"tflite export: weights={weights!r} is not supported; use one of {list(WEIGHTS)}")
    if os.path.isdir(out_path):
        raise ExportError(f"tflite export: {out_path} is a directory; the export writes one .tflite file")
    try:
        from export.tflite_builder import Builder
    except ImportError as e:
        raise ExportError(f"tflite export needs ai-edge-litert and flatbuffers: pip install ai-edge-litert ({e})")
    compiled = load_compiled(model_path)
    T = compiled.max_positions if seq_len is None else seq_len
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or not 1 <= T <= compiled.max_positions:
        raise ExportError(f"tflite export: seq_len={seq_len!r} must be an int from 1 to the model's context "
                          f"length {compiled.max_positions}")
    T = int(T)
    b = Builder()
    tokens = b.input("tokens", (T,), np.int32)
    logits = b.rename(walk(b, compiled, tokens), "logits")
    data = b.finish({"tokens": tokens}, {"logits": logits},
                    f"tinyr1 prefill graph of {os.path.basename(model_path)}, seq_len={T}, float32; "
                    f"{prompt_note(compiled.tokenizer)}")
    with open(out_path, "wb") as f:
        f.write(data)
    counts = b.operator_counts()
    return {"bytes": len(data), "seq_len": T, "weights": "float32", "operators": sum(counts.values()),
            "operator_counts": counts, "tensors": len(b.tensors),
            "dequantized_tensors": len(set(compiled.int8) & _main_graph_tensors(compiled))}


def _main_graph_tensors(compiled):
    """The tensors the main graph's nodes name (int8 ones among them are written dequantized)."""
    return {name for n in compiled.nodes for name in tensor_attrs(n["op"], n["attrs"]).values()}


def walk(b, compiled, tokens):
    """Emit every node of the main graph in order -> the logits Val (T, V)."""
    env = {"tokens": tokens}
    for node in compiled.nodes:
        lower = lowering(LOWERINGS, node, "tflite", compiled.path)
        x = node_inputs(compiled, node, env)
        b.scope = node["outputs"][0]
        env[node["outputs"][0]] = lower(b, compiled, node, x)
    if compiled.output not in env:
        raise ExportError(f"{compiled.path}: no node produces the graph output {compiled.output!r}")
    return env[compiled.output]


def _linear(b, compiled, node, x):
    """x @ W^T: linear (T, out) and lm_head (T, V)."""
    return ops.linear(b, x[0], ops.weight(b, compiled, node["attrs"]["weight"]))


def _rmsnorm(b, compiled, node, x):
    a = node["attrs"]
    return ops.rmsnorm(b, x[0], ops.weight(b, compiled, a["weight"]), float(a["eps"]))


def _swiglu(b, compiled, node, x):
    a = node["attrs"]
    return ops.swiglu(b, compiled, x[0], a["w_gate"], a["w_up"], a["w_down"])


# op -> fn(builder, compiled, node, input Vals) -> its output Val
LOWERINGS = {
    "embedding": lambda b, compiled, node, x: b.gather(ops.weight(b, compiled, node["attrs"]["weight"]), x[0]),
    "rmsnorm": _rmsnorm,
    "mla_attention": lambda b, compiled, node, x: ops.mla_attention(b, compiled, x[0], node),
    "swiglu_mlp": _swiglu,
    "moe": lambda b, compiled, node, x: ops.moe(b, compiled, x[0], node),
    "add": lambda b, compiled, node, x: b.add(x[0], x[1]),
    "linear": _linear,
    "lm_head": _linear,
}


# ---------------------------------------------------------------- running the file
def padded(ids, seq_len):
    """ids (n,) -> tokens (seq_len,) int32, ids then PAD_ID; and n."""
    ids = np.asarray(ids).reshape(-1)
    if not 1 <= len(ids) <= seq_len:
        raise ContextOverflowError(f"{len(ids)} tokens do not fit the exported prefill graph: it takes "
                                   f"1 to {seq_len} tokens")
    tokens = np.full(seq_len, PAD_ID, np.int32)
    tokens[:len(ids)] = ids
    return tokens, len(ids)


class LiteRtRunner:
    """The exported prefill graph under ai-edge-litert (package="ai_edge_litert") or tflite-runtime
    (package="tflite_runtime", which needs numpy < 2), allocated once.

        r = LiteRtRunner("student.tflite");  logits = r.prefill(ids)   # (V,) of the last prompt token"""

    def __init__(self, path, threads=1, package="ai_edge_litert"):
        if package == "tflite_runtime":
            from tflite_runtime.interpreter import Interpreter
        elif package == "ai_edge_litert":
            from ai_edge_litert.interpreter import Interpreter
        else:
            raise ValueError(f"package={package!r}: LiteRtRunner runs ai_edge_litert or tflite_runtime")
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.seq_len = int(self.interpreter.get_input_details()[0]["shape"][0])

    def prefill(self, ids):
        """ids (n,), n <= seq_len -> logits of position n - 1 (V,)."""
        tokens, n = padded(ids, self.seq_len)
        return self.run_tokens(tokens)[n - 1]

    def logits(self, ids):
        """ids (n,), n <= seq_len -> logits of every prompt position (n, V)."""
        tokens, n = padded(ids, self.seq_len)
        return self.run_tokens(tokens)[:n]

    def run_tokens(self, tokens):
        """A whole input row (seq_len,), padding included -> logits (seq_len, V)."""
        self.interpreter.set_tensor(self.input, np.asarray(tokens, np.int32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)

    def signature_logits(self, ids):
        """ids (seq_len,) through the file's `serving_default` signature runner -> logits (seq_len, V)."""
        runner = self.interpreter.get_signature_runner("serving_default")
        return runner(tokens=np.asarray(ids, np.int32))["logits"]

    def tensor_shapes(self):
        """{tensor index: shape} as the interpreter computed them at allocation."""
        return {d["index"]: [int(x) for x in d["shape"]] for d in self.interpreter.get_tensor_details()}

    def numpy_version(self):
        """numpy's version in this process (tflite-runtime needs numpy 1.x)."""
        return np.__version__
