"""What every exporter shares: the compiled model read back through the runtime's validating loader
(runtime.loader.read_document: every node attribute in its range and agreeing with its tensors, the state
that max_positions implies bounded, exactly as `tinyr1 run` and `inspect` check a file),
its weights as float32 (dequantized exactly as the runtime does) and, for int8 exports, the raw int8
values with their float16 scales, so an exporter can carry our quantization over bit for bit.

The exporters read the main graph only (`graph["nodes"]`, from `embedding` to the `lm_head` that
produces `graph["outputs"][0]`); any other key of the graph (the MTP draft head) is ignored. Each exporter
has one table of its lowerings, op -> how it is written, covering the graph contract's ops
(runtime/opset.py; tests/test_opset.py checks it); `lowering` looks an op up and names what is missing.
"""
from dataclasses import dataclass

import numpy as np

from export.errors import ExportError
from runtime.loader import read_document
from runtime.model import dequantize


def prompt_note(tok):
    """How a prompt becomes token ids for this model, written into every export's metadata: a places model
    (runtime/tokenizer.py) reads its numbers with place letters, an items model its lists' numbers with item
    hints, so another runtime must mark them too; an items or hints model's answer carries `#` hints to drop."""
    marks = []
    if tok.items:
        marks.append("items: mark each list's numbers with item hints (runtime.tokenizer.mark_items: "
                     "'Sort 47 8 44' -> 'Sort #A47 #B8 #C44')")
    if tok.places:
        marks.append("places: mark the prompt's numbers with place letters (runtime.tokenizer."
                     "mark_places: 'What is 47+5?' -> 'What is b4a7+a5?')")
    undo = "unmark_answer(completion, items=True)" if tok.answer_hints else "unmark_places"
    if not marks:
        plain = "plain: encode the prompt as it is, one token per character"
        return plain + (f", and unmark the answer ({undo})" if tok.hints else "")
    return ", then ".join(marks) + f" before encoding, and unmark the answer ({undo})"


@dataclass
class Compiled:
    path: str
    config: dict               # HF DeepseekV3 names (hidden_size, kv_lora_rank, ...)
    tokenizer: object          # runtime.tokenizer.Tokenizer
    nodes: list                # main graph nodes, in order: {"op", "inputs", "outputs", "attrs"}
    output: str                # the graph output (logits) value name
    weights: dict              # tensor name -> float32 array (dequantized)
    int8: dict                 # tensor name -> (q int8 array (shape), scales float16 (rows, n_groups), group)
    max_positions: int         # context length (mla_attention's max_positions)

    def layers(self):
        """The decoder blocks in order: [(mla node, ffn node)], ffn op "swiglu_mlp" or "moe"."""
        mla = [n for n in self.nodes if n["op"] == "mla_attention"]
        ffn = [n for n in self.nodes if n["op"] in ("swiglu_mlp", "moe")]
        return list(zip(mla, ffn))


def load_compiled(path):
    """Read a .msgpack model (ModelFormatError if it is bad) -> Compiled."""
    body = read_document(path)
    weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in dequantize(body["arrays"], body["quant"]).items()}
    int8 = {}
    for name, info in body["quant"].items():
        if info["scheme"] == "q8_group":
            int8[name] = (body["arrays"][name], info["scales"], info["group_size"])
        elif info["scheme"] == "q8_channel":
            int8[name] = (body["arrays"][name], info["scales"], body["arrays"][name].shape[-1])
    graph = body["graph"]
    mla = [n for n in graph["nodes"] if n["op"] == "mla_attention"]
    if not mla:
        raise ExportError(f"{path}: the graph has no mla_attention node")
    return Compiled(path, body["config"], body["tokenizer_obj"], list(graph["nodes"]), graph["outputs"][0],
                    weights, int8, min(int(n["attrs"]["max_positions"]) for n in mla))


def lowering(table, node, backend, path, absent=None):
    """table[op] for a node; ExportError naming the op, the backend and the ops it lowers otherwise.
    absent: {op: why this backend leaves it out}, for ops the contract has that cannot appear here."""
    op = node["op"]
    if op not in table:
        why = f" ({absent[op]})" if absent and op in absent else ""
        raise ExportError(f"{path}: node {node['outputs'][0]}: the {backend} exporter has no lowering for op "
                          f"{op!r}{why}; it lowers: {', '.join(table)}")
    return table[op]


def node_inputs(compiled, node, env):
    """The values a node reads from an exporter's env (value name -> its handle), in order."""
    missing = [v for v in node["inputs"] if v not in env]
    if missing:
        raise ExportError(f"{compiled.path}: node {node['outputs'][0]} ({node['op']}) reads {missing}, "
                          f"which no earlier node produces")
    return [env[v] for v in node["inputs"]]
