"""The compiler's graph IR: a flat list of coarse nodes over named values.

Opset 1 (runtime/format.py OPSET), one line each; `%name` is a value, attrs name tensors:
  embedding(tokens)      -> x      weight: (V, d) table
  rmsnorm(x)             -> y      weight: (d,), eps
  mla_attention(x)       -> y      layer; absorbed MLA weights (compiler/passes.py); reads and appends
                                   the layer's latent cache (c_kv, k_pe) at the current position
  swiglu_mlp(x)          -> y      w_gate, w_up (F, d), w_down (d, F)
  moe(x)                 -> y      w_router (E, d), w_bias (E,), experts, shared expert, routing attrs
  add(a, b)              -> y      residual connection
  lm_head(x)             -> logits weight: (V, d)
The graph's input is `tokens` (T,) int; its output `logits`.
"""
from dataclasses import dataclass, field

from runtime import format as F
from runtime.inspect import graph_text


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

    def lint(self, tensors):
        """Problems that would make the runtime reject this graph, each saying how to fix it."""
        problems = []
        defined = set(self.inputs)
        for i, n in enumerate(self.nodes):
            where = f"node {i} ({n.op} -> {', '.join(n.outputs)})"
            if n.op not in F.OPSET:
                problems.append(f"{where}: op {n.op!r} is not in opset {F.OPSET_VERSION} ({', '.join(F.OPSET)}); "
                                f"add it to runtime/format.py OPSET and runtime/ops.py, or lower it to existing ops")
            for x in n.inputs:
                if x not in defined:
                    problems.append(f"{where}: input %{x} is used before any node defines it; reorder the nodes")
            for k, v in n.attrs.items():
                if (k.startswith("w_") or k == "weight") and v not in tensors:
                    problems.append(f"{where}: attribute {k} names tensor {v!r}, missing from the tensor table; "
                                    f"a pass removed it or forgot to add it")
            for o in n.outputs:
                if o in defined:
                    problems.append(f"{where}: %{o} is defined twice; give the output a fresh name")
            defined.update(n.outputs)
        for o in self.outputs:
            if o not in defined:
                problems.append(f"graph output %{o} is never defined")
        used = {v for n in self.nodes for k, v in n.attrs.items() if k.startswith("w_") or k == "weight"}
        for name in sorted(set(tensors) - used):
            problems.append(f"tensor {name!r} is not used by any node; drop it from the tensor table")
        return problems

    def dump(self):
        """Readable text, one node a line (the same text `tinyr1 inspect --graph` prints)."""
        return graph_text(self.to_dict())

    def to_dict(self):
        return {"inputs": list(self.inputs), "outputs": list(self.outputs),
                "nodes": [{"op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs), "attrs": dict(n.attrs)}
                          for n in self.nodes]}

    @classmethod
    def from_dict(cls, d):
        return cls(d["inputs"], d["outputs"], [Node(n["op"], n["inputs"], n["outputs"], n["attrs"]) for n in d["nodes"]])
