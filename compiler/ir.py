"""The compiler's graph IR: a flat list of coarse nodes over named values.

Opset 1 (runtime/format.py OPSET), one line each; `%name` is a value, attrs name tensors:
  embedding(tokens)      -> x      weight: (V, d) table
  rmsnorm(x)             -> y      weight: (d,), eps
  mla_attention(x)       -> y      layer; absorbed MLA weights (compiler/passes.py); reads and appends
                                   the layer's latent cache (c_kv, k_pe) at the current position
  swiglu_mlp(x)          -> y      w_gate, w_up (F, d), w_down (d, F)
  moe(x)                 -> y      w_router (E, d), w_bias (E,), experts, shared expert, routing attrs
  add(a, b)              -> y      residual connection
  linear(x)              -> y      weight: (out, in); y = x @ weight^T
  lm_head(x)             -> logits weight: (V, d)
The graph's input is `tokens` (T,) int; its output `logits`. A model with an MTP module also has
`graph.mtp`, the draft head: a Graph whose inputs are a main-graph value (the last hidden state,
before the final norm) and `next_tokens` (T,), and whose output is `draft_logits`. Before lowering,
traced graphs hold one more op, `mtp_projection(e, h)` = eh_proj([e ; h]), which compiler/passes.py
splits into two `linear` and an `add`.
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
    mtp: "Graph" = None

    def lint(self, tensors):
        """Problems that would make the runtime reject this graph, each saying how to fix it."""
        problems = self._lint_nodes(tensors, set(self.inputs), "")
        if self.mtp is not None:
            main_values = {o for n in self.nodes for o in n.outputs}
            if not self.mtp.inputs or self.mtp.inputs[0] not in main_values:
                problems.append(f"mtp: its first input {self.mtp.inputs[:1]} must name a main-graph value")
            problems += self.mtp._lint_nodes(tensors, main_values | set(self.mtp.inputs), "mtp ")
        used = {v for g in (self, self.mtp) if g for n in g.nodes for k, v in n.attrs.items()
                if k.startswith("w_") or k == "weight"}
        for name in sorted(set(tensors) - used):
            problems.append(f"tensor {name!r} is not used by any node; drop it from the tensor table")
        return problems

    def _lint_nodes(self, tensors, defined, label):
        problems = []
        defined = set(defined)
        for i, n in enumerate(self.nodes):
            where = f"{label}node {i} ({n.op} -> {', '.join(n.outputs)})"
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
                problems.append(f"{label}graph output %{o} is never defined")
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
