"""The compiler's graph IR: a flat list of coarse nodes over named values.

The ops, their inputs and attributes (and which attributes name tensors) are the graph contract,
runtime/opset.py, whose docstring lists the opset; `lint` runs its check_graph, the check the runtime's
loader runs on every file, and says how to fix each problem. `%name` is a value. The graph's input is
`tokens` (T,) int; its output `logits`. A model with an MTP module also has `graph.mtp`, the draft head:
a Graph whose inputs are a main-graph value (the last hidden state, before the final norm) and
`next_tokens` (T,), and whose output is `draft_logits`.

Before lowering, traced graphs hold one more op (TRACE_ONLY_OPS), `mtp_projection(e, h)` = eh_proj([e ; h]),
which compiler/passes.py splits into two `linear` and an `add`; and their mla_attention and moe nodes carry
a `prefix` (where their weights live) instead of their tensors and hyperparameters until passes lower them.
"""
from dataclasses import dataclass, field

from runtime import opset
from runtime.describe import graph_text

TRACE_ONLY_OPS = ("mtp_projection",)

# how to fix each kind of problem (runtime/opset.py KINDS) in the compiler
FIXES = {
    "structure": "a pass or Graph.to_dict built a malformed graph",
    "op": "lower it to ops of the opset in compiler/passes.py, or add it to runtime/opset.py and every backend",
    "input": "reorder the nodes, or give the node the inputs its op takes",
    "output": "give the output a fresh name",
    "attribute": "compiler/passes.py must consume it (as it pops `prefix`), or runtime/opset.py must list it",
    "missing attribute": "the pass that lowers this op (compiler/passes.py) must set it",
    "tensor": "a pass removed the tensor from the table or forgot to add it",
    "range": "the model config that sets it is out of range: fix the config (or the pass that copies it)",
    "optional": "compiler/passes.py must set exactly one of the op's sets of optional tensors",
    "shape": "the attributes and the tensor disagree: fix the config or the pass that builds the tensor",
    "mtp inputs": "compiler/trace.py must give the draft head the main graph's last hidden state and next_tokens",
    "graph outputs": "compiler/trace.py must name the last node's output as the graph output",
}


@dataclass
class Node:
    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)


@dataclass
class Graph:
    inputs: list
    outputs: list
    nodes: list = field(default_factory=list)
    mtp: "Graph" = None

    def lint(self, tensors):
        """Problems that would make the runtime reject this graph (runtime/opset.py check_graph, the loader's
        own check) and tensors that no node uses, each saying how to fix it. tensors: {name: array}."""
        shapes = {name: tuple(w.shape) for name, w in tensors.items()}
        problems = [f"{p}; {FIXES[p.kind]}" for p in opset.check_graph(self.to_dict(), shapes)]
        used = {name for g in (self, self.mtp) if g for n in g.nodes if n.op in opset.OPS
                for name in opset.tensor_attrs(n.op, n.attrs).values()}
        for name in sorted(set(tensors) - used):
            problems.append(f"tensor {name!r} is not used by any node; drop it from the tensor table")
        return problems

    def dump(self):
        """Readable text, one node a line (the same text `tinyr1 inspect --graph` prints)."""
        return graph_text(self.to_dict())

    def to_dict(self):
        d = {"inputs": list(self.inputs), "outputs": list(self.outputs),
             "nodes": [{"op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs), "attrs": dict(n.attrs)}
                       for n in self.nodes]}
        if self.mtp is not None:
            d["mtp"] = self.mtp.to_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(d["inputs"], d["outputs"], [Node(n["op"], n["inputs"], n["outputs"], n["attrs"]) for n in d["nodes"]],
                   cls.from_dict(d["mtp"]) if "mtp" in d else None)
