"""SRC (trainer checkpoint or HF DeepseekV3 directory) -> one msgpack model file.

Steps: load -> refuse NaN/inf weights -> trace (compiler/trace.py) -> lower + absorb MLA
(compiler/passes.py) -> lint (the graph contract's check, runtime/opset.py) -> quantize (compiler/quantize.py)
-> pack (compiler/pack.py) -> the state bound the loader applies to the packed size -> atomic write.
"""
import os
import subprocess

from compiler.errors import CompileError
from compiler.ir import Graph
from compiler.pack import pack, tensor_entry
from compiler.passes import lower
from compiler.quantize import error_report, quantizable, quantize
from compiler.trace import trace
from runtime.errors import CheckpointError
from runtime.opset import state_problem

GENERATION_DEFAULTS = {"temperature": 0.0, "top_k": None, "top_p": None,
                       "stop": ["</answer>", "<eos>"]}


def load_source(src):
    """-> (params, cfg, tok, provenance) from a trainer checkpoint or an HF directory."""
    if os.path.isfile(os.path.join(src, "checkpoint.json")):
        from trainer import checkpoint
        params, cfg, tok, info = checkpoint.load(src)
        check_finite(params, src)
        keep = {k: info[k] for k in ("recipe", "step", "stage", "seed", "train_seconds", "eval", "taught") if k in info}
        return params, cfg, tok, {"source": "tinyr1-checkpoint", **keep}
    if os.path.isfile(os.path.join(src, "config.json")):
        from compiler.hf_import import load_hf_dir
        params, cfg, tok, prov = load_hf_dir(src)
        check_finite(params, src)
        return params, cfg, tok, prov
    raise CheckpointError(f"{src}: neither a trainer checkpoint (checkpoint.json) nor a HuggingFace "
                          f"directory (config.json + *.safetensors)")


def check_finite(params, source):
    """CompileError naming the first weight with NaN or inf values, their count and `source`. Runs
    before tracing: the trace's self-check compares logits, and NaN never equals NaN."""
    from trainer.checkpoint import require_finite
    require_finite(params, source, CompileError, "compile a checkpoint from before the run diverged")


def git_commit():
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def compile_model(params, cfg, tok, quant="int8", group_size=32, scheme="q8_group", provenance=None):
    """-> (file bytes, graph, quantization report {tensor: errors})."""
    check_finite(params, (provenance or {}).get("path", "the weights given to compile_model"))
    graph, tensors = lower(trace(params, cfg), params, cfg)
    problems = graph.lint(tensors)
    if problems:
        raise CompileError("graph lint failed:\n  " + "\n  ".join(problems))
    to_quantize = quantizable(graph) if quant == "int8" else set()
    entries, report = [], {}
    for name, w in tensors.items():
        if name in to_quantize:
            q, scales, deq = quantize(w, scheme, group_size)
            report[name] = error_report(w, deq)
            g = min(group_size, w.shape[-1])            # a row shorter than a group is one group
            entries.append(tensor_entry(name, w, (scheme, g, q, scales, report[name])))
        else:
            entries.append(tensor_entry(name, w))
    prov = dict(provenance or {})
    prov.update(compiler_commit=git_commit(), quant=quant, scheme=scheme if quant == "int8" else "none",
                group_size=group_size if quant == "int8" and scheme == "q8_group" else None,
                quantization_report=report)
    graph_dict = graph.to_dict()
    # max_new_tokens = the context: a default answer is cut only by it (clipped to what the prompt leaves)
    generation = dict(max_new_tokens=cfg.max_position_embeddings, **GENERATION_DEFAULTS)
    data = pack(cfg.to_dict(), tok.to_dict(), generation, graph_dict, entries, prov)
    too_big = state_problem(graph_dict, len(data))               # the loader's bound, on the file's real size
    if too_big:
        raise CompileError(f"graph: {too_big}; lower max_position_embeddings in the model config")
    return data, graph, report


def write_atomic(path, data):
    from trainer.checkpoint import write_atomic as w
    w(path, data)


__all__ = ["compile_model", "load_source", "write_atomic", "Graph", "CompileError"]
