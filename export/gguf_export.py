"""`tinyr1 export gguf MODEL -o OUT.gguf`: the compiled model as one GGUF file for llama.cpp's `deepseek2`
architecture (absorbed MLA, sigmoid-gated MoE with a correction bias), written with gguf's GGUFWriter.

Tensor names (runtime/opset.py WEIGHTS gives each beside our attribute and the trainer's name; plan takes
them from there) and numpy shapes ([out, in]; GGUF stores the dims reversed). d hidden, V vocab, H heads,
n nope, r rope, v value, C kv_lora_rank, q q_lora_rank, E experts, F expert width, S shared experts:

    token_embd (V, d) <- embedding       output (V, d) <- lm_head (left out when tied: llama.cpp reuses token_embd)
    output_norm (d)   <- the final rmsnorm
    blk.N.attn_norm (d), ffn_norm (d)                      <- the rmsnorms before attention and FFN
    blk.N.attn_q (H(n+r), d) <- w_q  or  attn_q_a (q, d), attn_q_a_norm (q), attn_q_b (H(n+r), q)
    blk.N.attn_kv_a_mqa (C+r, d) <- w_kv_a;  attn_kv_a_norm (C) <- w_kv_a_norm
    blk.N.attn_k_b (H, C, n) <- w_uk (H, n, C) transposed;  attn_v_b (H, v, C) <- w_uv (H, C, v) transposed
    blk.N.attn_output (d, Hv) <- w_o
    dense: blk.N.ffn_gate, ffn_up (n_ff, d), ffn_down (d, n_ff)
    MoE:   blk.N.ffn_gate_inp (E, d) <- w_router;  exp_probs_b.bias (E) <- w_bias
           ffn_gate_exps, ffn_up_exps (E, F, d) <- the gate rows / up rows of w_experts_gate_up (E, 2F, d)
           ffn_down_exps (E, d, F);  ffn_{gate,up}_shexp (SF, d), ffn_down_shexp (d, SF)

RoPE: we rotate half-split pairs (i, i + r/2); deepseek2 rotates adjacent pairs (2i, 2i+1) with the same
frequencies. Reordering the rope rows of q (in each head) and of kv_a as [0, r/2, 1, r/2+1, ...] makes
llama.cpp's pairs ours; q_pe . k_pe is unchanged because both sides get the same order.

weights="int8": a tensor is Q8_0 when it is int8 in the model file with groups of 32 along the same rows
GGUF stores (a row permutation or row slice keeps that), so our int8 values and float16 scales are copied
byte for byte and llama.cpp dequantizes exactly our weights. Everything else is F32 of the weights as our
runtime dequantizes them; the report says why each one is F32.

llama_runner.py runs the file with llama-cpp-python, one sequence with its KV cache kept between calls.
"""
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from export.common import load_compiled, lowering, prompt_note
from export.errors import ExportError
from runtime import opset

try:                                     # optional dependency: `tinyr1 export gguf` says what to install
    import gguf
except ImportError:
    gguf = None

WEIGHTS = ("int8", "float32")
Q8_BLOCK = 32                            # Q8_0: 32 int8 values + one float16 scale per block

# The lowering table: each op of the graph contract (runtime/opset.py) -> what it becomes in deepseek2, whose
# graph is fixed (model_layout checks the nodes form it; plan writes the tensors named above)
LOWERS = {"embedding": "token_embd", "rmsnorm": "attn_norm, ffn_norm, output_norm", "mla_attention": "attn_*",
          "swiglu_mlp": "ffn_gate, ffn_up, ffn_down", "moe": "ffn_*_exps, ffn_*_shexp, ffn_gate_inp, exp_probs_b",
          "add": "the residual stream", "lm_head": "output, or token_embd when tied"}
ABSENT = {"linear": "deepseek2 has no free projection; only the MTP draft head uses one, and exports leave it out"}


def export(model_path, out_path, weights="int8"):
    """Write out_path (one .gguf file) -> report dict."""
    if weights not in WEIGHTS:
        raise ExportError(f"gguf export: weights={weights!r} is not supported; use one of {list(WEIGHTS)}")
    if os.path.isdir(out_path):
        raise ExportError(f"gguf export: {out_path} is a directory; the export writes one .gguf file")
    if gguf is None:
        raise ExportError("gguf export needs the gguf package: pip install gguf")
    compiled = load_compiled(model_path)
    layout = model_layout(compiled)
    tensors = plan(compiled, layout, int8=weights == "int8")
    tmp = out_path + ".tmp"                  # written whole, then renamed: no half-written .gguf
    try:
        write_file(tmp, compiled, layout, tensors)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    reasons = Counter(t.reason for t in tensors if t.q8 is None)
    return {"bytes": os.path.getsize(out_path), "tensors": len(tensors), "q8_0": len(tensors) - sum(reasons.values()),
            "f32": sum(reasons.values()), "f32_reasons": dict(reasons), "tied_output": layout["tied"]}


def write_file(path, compiled, layout, tensors):
    w = gguf.GGUFWriter(path, "deepseek2")
    write_metadata(w, compiled, layout, any(t.q8 is not None for t in tensors))
    for t in tensors:
        if t.q8 is None:
            w.add_tensor(t.name, np.ascontiguousarray(t.f32, np.float32))
        else:
            w.add_tensor(t.name, q8_0_bytes(*t.q8), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------- the graph's layout
def model_layout(compiled):
    """Check the main graph is the pre-norm decoder deepseek2 computes -> layout dict: per layer
    (attn_norm, mla, ffn_norm, ffn) nodes, the final norm and head, and the hyperparameters."""
    nodes, path = compiled.nodes, compiled.path
    for node in nodes:
        lowering(LOWERS, node, "gguf", path, ABSENT)
    kinds = [n["op"] for n in nodes]
    n_layers = (len(nodes) - 3) // 6
    ffn_kinds = [kinds[1 + 6 * i + 4] for i in range(n_layers)]
    expected = ["embedding"] + sum((["rmsnorm", "mla_attention", "add", "rmsnorm", k, "add"] for k in ffn_kinds),
                                   []) + ["rmsnorm", "lm_head"]
    if kinds != expected or any(k not in ("swiglu_mlp", "moe") for k in ffn_kinds):
        raise ExportError(f"{path}: gguf export needs embedding, then per layer rmsnorm, mla_attention, add, "
                          f"rmsnorm, swiglu_mlp|moe, add, then rmsnorm and lm_head; the graph has {kinds}")
    stream = nodes[0]["outputs"][0]
    for i in range(1, len(nodes) - 2, 3):                  # (norm, op, residual add) triples
        norm, op, add = nodes[i:i + 3]
        if norm["inputs"] != [stream] or op["inputs"] != norm["outputs"] or \
                sorted(add["inputs"]) != sorted([stream, op["outputs"][0]]):
            raise ExportError(f"{path}: node {op['outputs'][0]} ({op['op']}) is not a pre-norm residual block")
        stream = add["outputs"][0]
    if nodes[-2]["inputs"] != [stream] or nodes[-1]["inputs"] != nodes[-2]["outputs"]:
        raise ExportError(f"{path}: the final rmsnorm and lm_head do not read the last residual stream")
    layers = [tuple(nodes[1 + 6 * i + k] for k in (0, 1, 3, 4)) for i in range(n_layers)]
    dense = [k == "swiglu_mlp" for k in ffn_kinds]
    n_dense = dense.index(False) if False in dense else n_layers
    if any(dense[n_dense:]):
        raise ExportError(f"{path}: dense FFN layers {[i for i, x in enumerate(dense) if x]} must all come "
                          f"before the MoE layers (deepseek2 has only leading_dense_block_count)")
    eps = {float(n["attrs"]["eps"]) for n in nodes if n["op"] in ("rmsnorm", "mla_attention")}
    if len(eps) != 1:
        raise ExportError(f"{path}: RMSNorm eps differs between nodes ({sorted(eps)}); deepseek2 has one")
    head = nodes[-1]["attrs"]["weight"]
    return {"layers": layers, "n_dense": n_dense, "eps": eps.pop(), "output_norm": nodes[-2],
            "q_lora_rank": _q_lora_rank(compiled, [m for _, m, _, _ in layers]),
            "embedding": nodes[0]["attrs"]["weight"], "head": head, "tied": head == nodes[0]["attrs"]["weight"],
            "mla": _same_attrs(path, [m for _, m, _, _ in layers], _MLA_KEYS),
            "moe": _moe_hparams(compiled, [f for _, _, _, f in layers[n_dense:]]),
            "n_ff": _dense_width(compiled, [f for _, _, _, f in layers[:n_dense]])}


_MLA_KEYS = ("n_heads", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "kv_lora_rank", "rope_theta")
_MOE_KEYS = ("top_k", "n_group", "topk_group", "norm_topk_prob", "routed_scaling_factor")


def _same_attrs(path, nodes, keys):
    """The attributes `keys` of nodes (one op kind), which must agree: GGUF metadata is per model."""
    first = {k: nodes[0]["attrs"].get(k) for k in keys} if nodes else {}
    for n, k in ((n, k) for n in nodes for k in keys):
        if n["attrs"].get(k) != first[k]:
            raise ExportError(f"{path}: {n['op']} attribute {k} differs between layers ({first[k]!r} vs "
                              f"{n['attrs'].get(k)!r}); deepseek2 metadata holds one value")
    return first


def _moe_hparams(compiled, moes):
    """-> {E, F, S, top_k, ...} shared by every MoE layer (E = 0 when every layer is dense)."""
    if not moes:
        return {"E": 0, "F": 0, "S": 0}
    hp = _same_attrs(compiled.path, moes, _MOE_KEYS)
    shapes = {(compiled.weights[n["attrs"]["w_experts_gate_up"]].shape,
               compiled.weights[n["attrs"]["w_shared_gate"]].shape[0] if "w_shared_gate" in n["attrs"] else 0)
              for n in moes}
    if len(shapes) != 1:
        raise ExportError(f"{compiled.path}: MoE layers differ in expert shapes {sorted(shapes)}")
    (E, F2, _), shared = shapes.pop()
    F = F2 // 2
    if shared % F:
        raise ExportError(f"{compiled.path}: the shared expert width {shared} is not a multiple of the routed "
                          f"expert width {F}; deepseek2 sizes it as expert_shared_count x {F}")
    # no shared expert: one of zeros (see _zero_shared_expert), so expert_shared_count is at least 1
    return dict(hp, E=E, F=F, S=max(shared // F, 1))


def _q_lora_rank(compiled, mlas):
    ranks = {compiled.weights[m["attrs"]["w_q_a"]].shape[0] if "w_q_a" in m["attrs"] else 0 for m in mlas}
    if len(ranks) > 1:
        raise ExportError(f"{compiled.path}: layers differ in q LoRA rank {sorted(ranks)} (0 = plain w_q); "
                          f"deepseek2 has one q_lora_rank")
    rank = ranks.pop()
    if rank and len(mlas) in (26, 27):
        raise ExportError(f"{compiled.path}: llama.cpp reads a {len(mlas)}-layer deepseek2 as a 'lite' model "
                          f"without q LoRA and would not load q_lora_rank={rank}")
    return rank


def _dense_width(compiled, dense):
    widths = {compiled.weights[n["attrs"]["w_gate"]].shape[0] for n in dense}
    if len(widths) > 1:
        raise ExportError(f"{compiled.path}: dense FFN widths differ between layers {sorted(widths)}")
    return widths.pop() if widths else int(compiled.config.get("intermediate_size", 0))


# ---------------------------------------------------------------- metadata
def write_metadata(w, compiled, lay, quantized):
    a, moe, tok = lay["mla"], lay["moe"], compiled.tokenizer
    H, n, r, v, C = (int(a[k]) for k in _MLA_KEYS[:5])
    V, d = compiled.weights[lay["embedding"]].shape
    w.add_name("tinyr1")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantized else gguf.LlamaFileType.ALL_F32)
    if quantized:
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_context_length(compiled.max_positions)
    w.add_embedding_length(d)
    w.add_block_count(len(lay["layers"]))
    w.add_vocab_size(V)
    w.add_feed_forward_length(lay["n_ff"])
    w.add_leading_dense_block_count(lay["n_dense"])
    w.add_expert_count(moe["E"])
    w.add_expert_used_count(int(moe.get("top_k", 0)))
    w.add_expert_shared_count(moe["S"])               # required by llama.cpp (0 only for an all-dense model)
    w.add_expert_feed_forward_length(moe["F"])
    if moe["E"]:
        w.add_expert_weights_scale(float(moe["routed_scaling_factor"]))
        w.add_expert_weights_norm(bool(moe["norm_topk_prob"]))
        w.add_expert_gating_func(gguf.ExpertGatingFuncType.SIGMOID)   # absent means softmax for deepseek2
        if moe["topk_group"] < moe["n_group"]:        # keeping every group is plain top-k routing
            w.add_expert_group_count(int(moe["n_group"]))
            w.add_expert_group_used_count(int(moe["topk_group"]))
    w.add_head_count(H)
    w.add_head_count_kv(1)                            # absorbed MLA is MQA over the latent cache
    w.add_key_length(C + r)                           # a cached key: [c_kv | k_pe]
    w.add_value_length(C)                             # a cached value: c_kv
    w.add_key_length_mla(n + r)                       # per-head q/k before absorption; scale (n+r)^-0.5
    w.add_value_length_mla(v)
    w.add_q_lora_rank(lay["q_lora_rank"])
    w.add_kv_lora_rank(C)
    w.add_layer_norm_rms_eps(lay["eps"])
    w.add_rope_dimension_count(r)
    w.add_rope_freq_base(float(a["rope_theta"]))
    # our char vocabulary; with model "none" llama.cpp keeps only vocab_size and takes token ids
    w.add_tokenizer_model("none")
    w.add_token_list(list(tok.vocab))
    w.add_token_types([gguf.TokenType.CONTROL if i < len(tok.specials) else gguf.TokenType.NORMAL
                       for i in range(tok.vocab_size)])
    w.add_bos_token_id(tok.bos_id)
    w.add_eos_token_id(tok.eos_id)
    w.add_pad_token_id(tok.pad_id)
    w.add_bool("tinyr1.places", bool(tok.places))     # llama.cpp ignores these; a user reads how to prompt
    w.add_bool("tinyr1.items", bool(tok.items))
    w.add_bool("tinyr1.hints", bool(tok.hints))
    w.add_string("tinyr1.prompt", prompt_note(tok))


# ---------------------------------------------------------------- tensors
@dataclass
class Tensor:
    name: str             # GGUF name, as runtime/opset.py WEIGHTS gives it
    f32: np.ndarray       # the values our runtime multiplies with (always filled)
    q8: tuple             # Q8_0 source: (q int8 (..., cols), scales float16 (..., cols/32)), or None for F32
    reason: str           # why F32
    source: str           # the compiled tensor's name (None for the zero shared expert)


def rope_order(r):
    """Row order that turns half-split RoPE pairs (i, i + r/2) into adjacent pairs: [0, r/2, 1, r/2+1, ...]."""
    return np.stack([np.arange(r // 2), np.arange(r // 2) + r // 2], 1).reshape(-1)


def gguf_name(op, attr, i=None, hf=None):
    """llama.cpp's name for the weight `attr` of `op` in layer i (runtime/opset.py WEIGHTS; a tuple
    where the export splits ours)."""
    name = opset.weight(op, attr, hf).gguf
    return tuple(n.format(i=i) for n in name) if isinstance(name, tuple) else name.format(i=i)


def _gguf_names(op, i):
    """{tensor attribute of op: its GGUF name in layer i}."""
    return {k: gguf_name(op, k, i) for k, rule in opset.OPS[op].attrs.items() if isinstance(rule, opset.Tensor)}


_ATTN_NORM, _FFN_NORM = "layers.{i}.input_layernorm", "layers.{i}.post_attention_layernorm"   # rmsnorm roles


def plan(compiled, lay, int8):
    """Every GGUF tensor in file order -> [Tensor]."""
    a = lay["mla"]
    H, n, r, C = (int(a[k]) for k in ("n_heads", "qk_nope_head_dim", "qk_rope_head_dim", "kv_lora_rank"))
    q_rows = (np.arange(H)[:, None] * (n + r) + np.concatenate([np.arange(n), n + rope_order(r)])).reshape(-1)
    kv_rows = np.concatenate([np.arange(C), C + rope_order(r)])
    t = _Maker(compiled, int8)
    out = [t(gguf_name("embedding", "weight"), lay["embedding"]),
           t(gguf_name("rmsnorm", "weight", hf="norm"), lay["output_norm"]["attrs"]["weight"])]
    if not lay["tied"]:
        out.append(t(gguf_name("lm_head", "weight"), lay["head"]))
    for i, (attn_norm, mla, ffn_norm, ffn) in enumerate(lay["layers"]):
        m, f, a = mla["attrs"], ffn["attrs"], _gguf_names("mla_attention", i)
        out += [t(gguf_name("rmsnorm", "weight", i, _ATTN_NORM), attn_norm["attrs"]["weight"]),
                t(gguf_name("rmsnorm", "weight", i, _FFN_NORM), ffn_norm["attrs"]["weight"])]
        if "w_q" in m:
            out.append(t(a["w_q"], m["w_q"], rows=q_rows))
        else:
            out += [t(a["w_q_a"], m["w_q_a"]), t(a["w_q_a_norm"], m["w_q_a_norm"]),
                    t(a["w_q_b"], m["w_q_b"], rows=q_rows)]
        out += [t(a["w_kv_a"], m["w_kv_a"], rows=kv_rows), t(a["w_kv_a_norm"], m["w_kv_a_norm"]),
                t.transposed(a["w_uk"], m["w_uk"]), t.transposed(a["w_uv"], m["w_uv"]), t(a["w_o"], m["w_o"])]
        e = _gguf_names(ffn["op"], i)
        if ffn["op"] == "swiglu_mlp":
            out += [t(e[k], f[k]) for k in ("w_gate", "w_up", "w_down")]
            continue
        F, (gate_exps, up_exps) = lay["moe"]["F"], e["w_experts_gate_up"]
        out += [t(e["w_router"], f["w_router"]), t(e["w_bias"], f["w_bias"]),
                t(gate_exps, f["w_experts_gate_up"], rows=(slice(None), slice(0, F))),
                t(up_exps, f["w_experts_gate_up"], rows=(slice(None), slice(F, 2 * F))),
                t(e["w_experts_down"], f["w_experts_down"])]
        shared = [(e[k], f.get(k)) for k in ("w_shared_gate", "w_shared_up", "w_shared_down")]
        if "w_shared_gate" in f:
            out += [t(name, src) for name, src in shared]
        else:
            out += _zero_shared_expert([name for name, _ in shared], compiled.weights[f["w_router"]].shape[1], F,
                                       int8)
    return out


def _zero_shared_expert(names, d, F, int8):
    """No shared expert: llama.cpp's deepseek2 always runs one, and an inner width of 0 fails its graph
    (a 0-wide tensor reads as transposed), so write expert_shared_count = 1 with zero weights:
    down(silu(0 x) * 0 x) adds exactly 0. Q8_0 zeros (scale 0) when int8 and the rows allow it.
    names: GGUF's names of the shared expert's gate, up and down."""
    out = []
    for name, shape in zip(names, ((F, d), (F, d), (d, F))):
        z = np.zeros(shape, np.float32)
        if int8 and shape[1] % Q8_BLOCK == 0:
            q8 = (np.zeros(shape, np.int8), np.zeros((shape[0], shape[1] // Q8_BLOCK), np.float16))
            out.append(Tensor(name, z, q8, "", None))
        else:
            out.append(Tensor(name, z, None, "no shared expert: zero weights", None))
    return out


class _Maker:
    """Builds Tensors from compiled tensor names, choosing Q8_0 or F32."""

    def __init__(self, compiled, int8):
        self.c, self.int8 = compiled, int8

    def __call__(self, name, src, rows=None):
        """rows: an index over the leading dims (a row permutation or slice) applied to values and scales."""
        pick = (lambda x: x) if rows is None else (lambda x: x[rows])
        f32 = np.ascontiguousarray(pick(self.c.weights[src]))
        if not self.int8:
            return Tensor(name, f32, None, "weights=float32", src)
        if src not in self.c.int8:
            return Tensor(name, f32, None, "float32 in the model file (norms, router, bias always are)", src)
        q, scales, group = self.c.int8[src]
        if group != Q8_BLOCK or q.shape[-1] % Q8_BLOCK:
            return Tensor(name, f32, None, f"int8 groups of {group} along rows of {q.shape[-1]}, Q8_0 needs "
                                           f"groups of {Q8_BLOCK}", src)
        scales = np.asarray(scales, np.float16).reshape(q.shape[:-1] + (q.shape[-1] // Q8_BLOCK,))
        return Tensor(name, f32, (np.ascontiguousarray(pick(q)), np.ascontiguousarray(pick(scales))), "", src)

    def transposed(self, name, src):
        """(H, a, b) -> (H, b, a): the int8 groups would run across GGUF's rows, so always F32."""
        f32 = np.ascontiguousarray(self.c.weights[src].transpose(0, 2, 1))
        why = "weights=float32" if not self.int8 else "transposed from our layout (groups would cross rows)"
        return Tensor(name, f32, None, why, src)


def q8_0_bytes(q, scales):
    """q int8 (..., cols), scales float16 (..., cols/32) -> GGML Q8_0 blocks as uint8 (..., cols/32 * 34):
    each block is its little-endian float16 scale followed by its 32 int8 values."""
    nb = q.shape[-1] // Q8_BLOCK
    blocks = np.empty(q.shape[:-1] + (nb, 2 + Q8_BLOCK), np.uint8)
    blocks[..., :2] = scales.astype("<f2").reshape(scales.shape + (1,)).view(np.uint8)
    blocks[..., 2:] = q.reshape(q.shape[:-1] + (nb, Q8_BLOCK)).view(np.uint8)
    return blocks.reshape(q.shape[:-1] + (nb * (2 + Q8_BLOCK),))


def q8_0_sources(compiled, weights="int8"):
    """The compiled tensor names the export writes as Q8_0 (what llama.cpp multiplies with quantized
    activations)."""
    tensors = plan(compiled, model_layout(compiled), weights == "int8")
    return {t.source for t in tensors if t.q8 is not None and t.source is not None}
