"""Graph passes: lower traced nodes to explicit weights, absorb MLA for decoding, drop the rest.

After `lower(graph, params, cfg)` every node names its tensors in the attributes the graph contract
(runtime/opset.py) says name tensors, and the tensor table holds exactly what the runtime needs (kv_b_proj
is gone; it lives on as the absorbed w_uk and w_uv). The MTP draft head's `mtp_projection` becomes two
`linear` nodes and an `add`.
"""
import numpy as np

from compiler.ir import Node
from runtime.opset import tensor_attrs, weight


def in_layer(op, attr):
    """The trainer's name of `op`'s weight `attr` below its layer's module, from the one table of names
    (runtime/opset.py WEIGHTS): "layers.{i}.self_attn.o_proj" -> "o_proj", "layers.{i}.mlp.gate" -> "gate"."""
    return weight(op, attr).hf.split(".", 3)[3]


def absorb_mla(node, params, cfg, tensors):
    """MLA weight absorption (DeepSeek-V3 inference, attn_impl="absorb").

    kv_b_proj (H*(nope+v), C) viewed as (H, nope+v, C) splits into W_UK (H, nope, C) and W_UV (H, v, C).
    Scores  q_nope . k_nope = (q_nope @ W_UK) . c_kv   -> the query moves into latent space;
    Output  p @ v          = (p @ c_kv) @ W_UV^T       -> attend over latents, then expand.
    So the cache holds only c_kv (after its norm) and k_pe (after RoPE): C + r floats per token."""
    pre = node.attrs.pop("prefix")
    H, nope, vd, C = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.v_head_dim, cfg.kv_lora_rank
    kv_b = params[pre + "kv_b_proj"].reshape(H, nope + vd, C)
    tensors[pre + "w_uk"] = np.ascontiguousarray(kv_b[:, :nope, :])                   # (H, nope, C)
    tensors[pre + "w_uv"] = np.ascontiguousarray(kv_b[:, nope:, :].transpose(0, 2, 1))  # (H, C, v)
    q = ("w_q",) if cfg.q_lora_rank is None else ("w_q_a", "w_q_a_norm", "w_q_b")
    w = {attr: in_layer("mla_attention", attr) for attr in ("w_kv_a", "w_kv_a_norm", "w_o") + q}
    for attr, name in w.items():
        tensors[pre + name] = params[pre + name]
        node.attrs[attr] = pre + name
    node.attrs.update(w_uk=pre + "w_uk", w_uv=pre + "w_uv", n_heads=H, qk_nope_head_dim=nope,
                      qk_rope_head_dim=cfg.qk_rope_head_dim, v_head_dim=vd, kv_lora_rank=C,
                      rope_theta=float(cfg.rope_theta), eps=float(cfg.rms_norm_eps),
                      max_positions=cfg.max_position_embeddings)


def lower_moe(node, params, cfg, tensors):
    pre = node.attrs.pop("prefix")
    shared = ("w_shared_gate", "w_shared_up", "w_shared_down") if cfg.n_shared_experts else ()
    w = {attr: in_layer("moe", attr) for attr in ("w_router", "w_bias", "w_experts_gate_up", "w_experts_down") + shared}
    for attr, name in w.items():
        tensors[pre + name] = params[pre + name]
        node.attrs[attr] = pre + name
    node.attrs.update(top_k=cfg.num_experts_per_tok, n_group=cfg.n_group, topk_group=cfg.topk_group,
                      norm_topk_prob=bool(cfg.norm_topk_prob), routed_scaling_factor=float(cfg.routed_scaling_factor))


def split_mtp_projection(node, params, tensors):
    """eh_proj([e ; h]) with W (d, 2d) = linear(e, W[:, :d]) + linear(h, W[:, d:]): the same function in
    ops the runtime already has. -> the three nodes that replace `node`."""
    w = params[node.attrs["weight"]]
    d = w.shape[0]
    e, h = node.inputs
    out, name = node.outputs[0], node.attrs["weight"]
    tensors[name + ".e"], tensors[name + ".h"] = w[:, :d], w[:, d:]
    return [Node("linear", [e], [out + "_e"], {"weight": name + ".e"}),
            Node("linear", [h], [out + "_h"], {"weight": name + ".h"}),
            Node("add", [out + "_e", out + "_h"], [out])]


def lower_nodes(nodes, params, cfg, tensors):
    out = []
    for node in nodes:
        if node.op == "mla_attention":
            absorb_mla(node, params, cfg, tensors)
        elif node.op == "moe":
            lower_moe(node, params, cfg, tensors)
        elif node.op == "mtp_projection":
            out += split_mtp_projection(node, params, tensors)
            continue
        for name in tensor_attrs(node.op, node.attrs).values():
            if name not in tensors:
                tensors[name] = params[name]
        out.append(node)
    return out


def lower(graph, params, cfg):
    """-> (graph, tensors): explicit weights on every node, only the tensors the runtime reads."""
    tensors = {}
    graph.nodes = lower_nodes(graph.nodes, params, cfg, tensors)
    if graph.mtp is not None:
        graph.mtp.nodes = lower_nodes(graph.mtp.nodes, params, cfg, tensors)
    return graph, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
