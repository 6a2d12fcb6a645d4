"""The graph contract: every op of the opset, its inputs, its attributes (type and range), which attributes
name tensors and the shapes those tensors must have, and the one check of a graph against it. The
compiler's lint (compiler/ir.py) and the runtime's loader (runtime/loader.py) both run `check_graph`, so
they cannot disagree; trace, passes, quantize and the exporters ask `tensor_attrs` which attributes name
tensors. WEIGHTS gives each weight's three names (graph attribute, trainer/HF, llama.cpp GGUF) side by side.
docs/FORMAT.md gives the math of each op.

Opset 2 (fileformat.OPSET_VERSION), one line each; T tokens, d hidden, V vocabulary, F FFN width:
  embedding(tokens)   -> (T, d)   weight (V, d)
  rmsnorm(x)          -> y        weight (d,), eps
  mla_attention(x)    -> y        layer, n_heads H, qk_nope_head_dim n, qk_rope_head_dim r, v_head_dim v,
                                  kv_lora_rank C, rope_theta, eps, max_positions S; w_q (H(n+r), d) or
                                  w_q_a (q, d) + w_q_a_norm (q,) + w_q_b (H(n+r), q); w_kv_a (C+r, d),
                                  w_kv_a_norm (C,), w_uk (H, n, C), w_uv (H, C, v), w_o (d, Hv)
  swiglu_mlp(x)       -> y        w_gate, w_up (F, d), w_down (d, F)
  moe(x)              -> y        top_k, n_group, topk_group, norm_topk_prob, routed_scaling_factor;
                                  w_router (E, d), w_bias (E,), w_experts_gate_up (E, 2F, d),
                                  w_experts_down (E, d, F), optional w_shared_gate, w_shared_up, w_shared_down
  add(a, b)           -> a + b
  linear(x)           -> y        weight (out, in): x @ weight^T                       (since opset 2)
  lm_head(x)          -> logits   weight (V, d)
Every node has one output. Adding an op: a row of OPS below, then every backend: runtime/ops.py OPS and
the exporters' lowering tables (onnx, tflite, gguf); tests/test_opset.py checks that they agree.
"""
from collections import namedtuple
from dataclasses import dataclass

from runtime import fileformat
from runtime.checks import describe
from runtime.errors import ModelFormatError


class Range:
    """An int in lo..hi (a multiple of `multiple`), or a finite float in lo..hi, lo_open / hi_open
    excluding the end. Bools are not ints here."""
    __slots__ = ("kind", "lo", "hi", "lo_open", "hi_open", "multiple")

    def __init__(self, kind, lo, hi, lo_open=False, hi_open=False, multiple=1):
        self.kind, self.lo, self.hi, self.multiple = kind, lo, hi, multiple
        self.lo_open, self.hi_open = lo_open, hi_open

    def __contains__(self, v):
        if self.kind is int:
            return isinstance(v, int) and not isinstance(v, bool) and self.lo <= v <= self.hi and v % self.multiple == 0
        return isinstance(v, float) and (self.lo < v if self.lo_open else self.lo <= v) and \
            (v < self.hi if self.hi_open else v <= self.hi)            # NaN fails every comparison

    def __str__(self):                  # in the one wording of runtime.checks ("an integer from 1 to 8192")
        interval = f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        step = f", a multiple of {self.multiple}" if self.multiple > 1 else ""
        return describe(interval, integer=self.kind is int) + step


BOOL = "true or false"          # an attribute that is a msgpack bool


@dataclass(frozen=True)
class Tensor:
    """An attribute that names a tensor of the file's table."""
    shape: str                  # for people: "(H, n, C)", in the letters of the docstring above
    dims: tuple = ()            # leading sizes checked against attributes: "n_heads", "kv_lora_rank + qk_rope_head_dim"
    int8: bool = True           # the compiler may store it int8; norms, the router and the bias stay float32
    optional: bool = False      # present or not as one of the op's optional sets says


@dataclass(frozen=True)
class Op:
    inputs: tuple               # the input values, in order
    attrs: dict                 # attribute -> Tensor, BOOL or Range; each node has exactly these (optional aside)
    optional_sets: tuple = ()   # the sets of optional tensors a node may have: exactly one of them, complete
    agree: object = None        # fn(attrs, shapes) -> a message, or None when the attributes fit the tensors
    since: int = 1              # the first opset version that has it


MAX_POSITIONS = 8192        # context length; the runtime's state grows with it (STATE_* below bound it too)
MAX_HEADS = 1024            # DeepSeek-V3: 128 heads
MAX_HEAD_DIM = 1024         # qk_nope / qk_rope / v head widths (DeepSeek-V3: 128 / 64 / 128)
MAX_RANK = 8192             # kv_lora_rank (DeepSeek-V3: 512)
MAX_EXPERTS = 1024          # routed experts, groups (DeepSeek-V3: 256 experts, 8 groups)
EPS = Range(float, 0.0, 1.0, lo_open=True, hi_open=True)     # 0 divides by zero on a zero row


def _moe_routing(a, shapes):
    """E = rows of w_router: n_group divides E, topk_group <= n_group, top_k <= topk_group x E / n_group."""
    E, K, G, TG = shapes[a["w_router"]][0], a["top_k"], a["n_group"], a["topk_group"]
    if E % G == 0 and TG <= G and K <= TG * (E // G):
        return None
    return (f"top_k={K}, n_group={G}, topk_group={TG} do not fit the {E} experts of w_router: n_group must "
            f"divide {E}, topk_group <= n_group, and top_k <= topk_group x {E} / n_group")


# The contract: op -> Op, in the order error messages list them (the docstring above says it in words).
OPS = {
    "embedding": Op(("tokens",), {"weight": Tensor("(V, d)")}),
    "rmsnorm": Op(("x",), {"weight": Tensor("(d,)", int8=False), "eps": EPS}),
    "mla_attention": Op(("x",), {
        "layer": Range(int, 0, fileformat.MAX_NODES), "n_heads": Range(int, 1, MAX_HEADS),
        "qk_nope_head_dim": Range(int, 1, MAX_HEAD_DIM), "qk_rope_head_dim": Range(int, 2, MAX_HEAD_DIM, multiple=2),
        "v_head_dim": Range(int, 1, MAX_HEAD_DIM), "kv_lora_rank": Range(int, 1, MAX_RANK),
        "rope_theta": Range(float, 1.0, 1e9, lo_open=True),     # <= 1: angles that grow with i, not RoPE
        "eps": EPS, "max_positions": Range(int, 1, MAX_POSITIONS),
        "w_q": Tensor("(H(n+r), d)", optional=True), "w_q_a": Tensor("(q, d)", optional=True),
        "w_q_a_norm": Tensor("(q,)", int8=False, optional=True), "w_q_b": Tensor("(H(n+r), q)", optional=True),
        "w_kv_a": Tensor("(C+r, d)", dims=("kv_lora_rank + qk_rope_head_dim",)),
        "w_kv_a_norm": Tensor("(C,)", int8=False),
        "w_uk": Tensor("(H, n, C)", dims=("n_heads", "qk_nope_head_dim", "kv_lora_rank")),
        "w_uv": Tensor("(H, C, v)", dims=("n_heads", "kv_lora_rank", "v_head_dim")),
        "w_o": Tensor("(d, Hv)")},
        optional_sets=(("w_q",), ("w_q_a", "w_q_a_norm", "w_q_b"))),
    "swiglu_mlp": Op(("x",), {"w_gate": Tensor("(F, d)"), "w_up": Tensor("(F, d)"), "w_down": Tensor("(d, F)")}),
    "moe": Op(("x",), {
        "top_k": Range(int, 1, MAX_EXPERTS), "n_group": Range(int, 1, MAX_EXPERTS),
        "topk_group": Range(int, 1, MAX_EXPERTS), "norm_topk_prob": BOOL,
        "routed_scaling_factor": Range(float, 0.0, 1000.0, lo_open=True),
        "w_router": Tensor("(E, d)", int8=False), "w_bias": Tensor("(E,)", int8=False),
        "w_experts_gate_up": Tensor("(E, 2F, d)"), "w_experts_down": Tensor("(E, d, F)"),
        "w_shared_gate": Tensor("(Fs, d)", optional=True), "w_shared_up": Tensor("(Fs, d)", optional=True),
        "w_shared_down": Tensor("(d, Fs)", optional=True)},
        optional_sets=((), ("w_shared_gate", "w_shared_up", "w_shared_down")), agree=_moe_routing),
    "add": Op(("a", "b"), {}),
    "linear": Op(("x",), {"weight": Tensor("(out, in)")}, since=2),
    "lm_head": Op(("x",), {"weight": Tensor("(V, d)")}),
}


# ---------------------------------------------------------------- the weights' names
@dataclass(frozen=True)
class Weight:
    """One weight role under its three names: the op and attribute that name it in the graph, the trainer's
    parameter (HF DeepseekV3's state-dict name without `model.` and `.weight`) and llama.cpp's GGUF tensor."""
    op: str
    attr: str                   # the attribute of `op` (a Tensor row of OPS)
    hf: str                     # {i} the layer; in the MTP module `layers.{i}` reads MTP_BLOCK
    gguf: object                # str, a tuple when the export splits ours, None when GGUF leaves it out
    note: str = ""              # how the file's or GGUF's tensor derives from hf; the paper's word is a comment


MTP_BLOCK = "mtp.block"         # the MTP module's transformer block: `mtp.block.self_attn.q_proj`, ...

# Every weight role, in OPS order. The compiler names each tensor by its hf name (kv_b_proj and eh_proj
# excepted, see their notes); export/gguf_export.py names its tensors by gguf and keeps the transforms.
W, L, B = Weight, "layers.{i}.", "blk.{i}."
WEIGHTS = (
    #  op               attribute             hf / trainer                         llama.cpp GGUF
    W("embedding",     "weight",             "embed_tokens",                      "token_embd.weight"),
    W("rmsnorm",       "weight",             L + "input_layernorm",               B + "attn_norm.weight",
      "before attention"),
    W("rmsnorm",       "weight",             L + "post_attention_layernorm",      B + "ffn_norm.weight",
      "before the FFN"),
    W("rmsnorm",       "weight",             "norm",                              "output_norm.weight",
      "before the head"),
    W("rmsnorm",       "weight",             "mtp.enorm",                         None,
      "MTP: of the next token's embedding"),
    W("rmsnorm",       "weight",             "mtp.hnorm",                         None,
      "MTP: of the main model's h"),
    W("rmsnorm",       "weight",             "mtp.norm",                          None,
      "MTP: before the shared head"),
    W("mla_attention", "w_q",                L + "self_attn.q_proj",              B + "attn_q.weight",
      "GGUF: the rope rows of each head in llama.cpp's adjacent-pair order"),             # W^Q with W^QR
    W("mla_attention", "w_q_a",              L + "self_attn.q_a_proj",            B + "attn_q_a.weight"),  # W^DQ
    W("mla_attention", "w_q_a_norm",         L + "self_attn.q_a_layernorm",       B + "attn_q_a_norm.weight"),
    W("mla_attention", "w_q_b",              L + "self_attn.q_b_proj",            B + "attn_q_b.weight",
      "GGUF: the rope rows reordered as w_q's"),                                          # W^UQ with W^QR
    W("mla_attention", "w_kv_a",             L + "self_attn.kv_a_proj_with_mqa",  B + "attn_kv_a_mqa.weight",
      "GGUF: the rope rows reordered"),                                                   # W^DKV with W^KR
    W("mla_attention", "w_kv_a_norm",        L + "self_attn.kv_a_layernorm",      B + "attn_kv_a_norm.weight"),
    W("mla_attention", "w_uk",               L + "self_attn.kv_b_proj",           B + "attn_k_b.weight",
      "absorbed: the nope rows of each head of kv_b_proj, (H, n, C), in the file layers.{i}.self_attn.w_uk; "
      "GGUF: transposed, (H, C, n)"),                                                     # W^UK
    W("mla_attention", "w_uv",               L + "self_attn.kv_b_proj",           B + "attn_v_b.weight",
      "absorbed: the v rows of each head of kv_b_proj, transposed, (H, C, v), in the file "
      "layers.{i}.self_attn.w_uv; GGUF: transposed back, (H, v, C)"),                     # W^UV
    W("mla_attention", "w_o",                L + "self_attn.o_proj",              B + "attn_output.weight"),  # W^O
    W("swiglu_mlp",    "w_gate",             L + "mlp.gate_proj",                 B + "ffn_gate.weight"),
    W("swiglu_mlp",    "w_up",               L + "mlp.up_proj",                   B + "ffn_up.weight"),
    W("swiglu_mlp",    "w_down",             L + "mlp.down_proj",                 B + "ffn_down.weight"),
    # moe: the router holds the centroids e_i, w_bias the bias b_i; routed, then shared experts
    W("moe",           "w_router",           L + "mlp.gate",                      B + "ffn_gate_inp.weight"),
    W("moe",           "w_bias",             L + "mlp.e_score_correction_bias",   B + "exp_probs_b.bias",
      "it only chooses experts"),
    W("moe",           "w_experts_gate_up",  L + "mlp.experts.gate_up_proj",
      (B + "ffn_gate_exps.weight", B + "ffn_up_exps.weight"),
      "GGUF: its gate rows, its up rows"),
    W("moe",           "w_experts_down",     L + "mlp.experts.down_proj",         B + "ffn_down_exps.weight"),
    W("moe",           "w_shared_gate",      L + "mlp.shared_experts.gate_proj",  B + "ffn_gate_shexp.weight",
      "GGUF: zeros when the model has none (llama.cpp always runs one)"),
    W("moe",           "w_shared_up",        L + "mlp.shared_experts.up_proj",    B + "ffn_up_shexp.weight"),
    W("moe",           "w_shared_down",      L + "mlp.shared_experts.down_proj",  B + "ffn_down_shexp.weight"),
    W("linear",        "weight",             "mtp.eh_proj",                       None,
      "MTP: in the file its columns for e and for h, mtp.eh_proj.e and mtp.eh_proj.h"),   # MTP's M
    W("lm_head",       "weight",             "lm_head",                           "output.weight",
      "left out when tied: the head is embed_tokens and GGUF reuses token_embd"),
)
del W, L, B


def weight(op, attr, hf=None):
    """The Weight of `op`'s tensor attribute `attr`; hf picks among roles that share one (rmsnorm's
    weight). ValueError naming the choices otherwise."""
    rows = [w for w in WEIGHTS if w.op == op and w.attr == attr and hf in (None, w.hf)]
    if len(rows) != 1:
        have = [w.hf for w in WEIGHTS if w.op == op and w.attr == attr]
        raise ValueError(f"{op}.{attr}{f' hf={hf!r}' if hf else ''} names {len(rows)} weights of "
                         f"runtime/opset.py WEIGHTS; pass hf, one of {have}")
    return rows[0]


def ops_of(version):
    """{op name: Op} of opset `version`, in OPS order."""
    return {name: op for name, op in OPS.items() if op.since <= version}


def spec(op):
    """The Op of an op name; ModelFormatError naming it and the opset otherwise."""
    if not (isinstance(op, str) and op in OPS):
        raise ModelFormatError(f"op {op!r:.40} is not in opset {fileformat.OPSET_VERSION}; it has: {', '.join(OPS)}")
    return OPS[op]


def tensor_attrs(op, attrs):
    """{attribute: tensor name} of a node of `op`, in the node's order: the one answer to "does this
    attribute name a tensor" for passes, quantize, lint and the exporters (the check below reads the same
    Tensor rows of OPS)."""
    rules = spec(op).attrs
    return {k: v for k, v in attrs.items() if isinstance(rules.get(k), Tensor)}


# ---------------------------------------------------------------- the check
# A problem: where (relative to the graph: "", "node 3", "mtp", "mtp: node 3"), what (names the node's op,
# the attribute, its value and what would be valid) and its kind, one of KINDS, which lint turns into advice.
class Problem(namedtuple("Problem", "where message kind")):
    def __str__(self):
        return f"{self.where}: {self.message}" if self.where else self.message


KINDS = ("structure", "op", "input", "output", "attribute", "missing attribute", "tensor", "range", "optional",
         "shape", "mtp inputs", "graph outputs")


def map_problem(value, keys, optional=()):
    """What is wrong with a map that must have `keys` and may have `optional` ones, or None."""
    if not isinstance(value, dict):
        return f"expected a map, got {type(value).__name__}"
    missing = [k for k in keys if k not in value]
    if missing:
        return f"missing key {missing[0]!r}"
    extra = [k for k in value if k not in keys and k not in optional]
    if extra:
        return f"unknown key {extra[0]!r}; expected {', '.join(tuple(keys) + tuple(optional))}"
    return None


def check_graph(graph, shapes, version=fileformat.OPSET_VERSION):
    """Every problem of `graph` (a map as in the file) against the contract, in reading order -> yields
    Problem. shapes: {tensor name: shape tuple}. The loader raises the first; lint lists them all."""
    bad = map_problem(graph, ("inputs", "outputs", "nodes"), ("mtp",) if version >= 2 else ())
    if bad:
        yield Problem("", bad, "structure")
        return
    main = yield from _check_nodes(graph, shapes, version, set(), "")
    if "mtp" not in graph:
        return
    mtp = graph["mtp"]                  # the draft head reads one main-graph value and next_tokens
    bad = map_problem(mtp, ("inputs", "outputs", "nodes"))
    if bad:
        yield Problem("mtp", bad, "structure")
        return
    ins = mtp["inputs"]
    if not (isinstance(ins, list) and len(ins) == 2 and isinstance(ins[0], str) and ins[0] in main
            and ins[1] == "next_tokens"):
        yield Problem("mtp", f"inputs must be [a main-graph value, 'next_tokens'], got {ins!r:.80}", "mtp inputs")
        return
    yield from _check_nodes(mtp, shapes, version, main, "mtp")


def _check_nodes(graph, shapes, version, outer, label):
    """One (sub)graph's nodes in order; outer: values of an enclosing graph -> the set of values it defines."""
    nodes, ins, outs = graph["nodes"], graph["inputs"], graph["outputs"]
    if not (isinstance(nodes, list) and len(nodes) <= fileformat.MAX_NODES):
        yield Problem(label, f"nodes must be a list of at most {fileformat.MAX_NODES}", "structure")
        return set()
    if not (isinstance(ins, list) and all(isinstance(x, str) for x in ins)):
        yield Problem(label, "inputs must be a list of names", "structure")
        return set()
    ops, defined = ops_of(version), set(ins) | outer
    for i, node in enumerate(nodes):
        where = f"{label}: node {i}" if label else f"node {i}"
        for message, kind in _check_node(node, ops, version, defined, shapes):
            yield Problem(where, message, kind)
        if isinstance(node, dict) and isinstance(node.get("outputs"), list):
            defined.update(o for o in node["outputs"] if isinstance(o, str))
    if not (isinstance(outs, list) and len(outs) == 1 and isinstance(outs[0], str) and outs[0] in defined - outer):
        yield Problem(label, "outputs must name one value the nodes define", "graph outputs")
    return defined - outer


def _check_node(node, ops, version, defined, shapes):
    """-> yields (message, kind): structure, op, inputs, output, then the attributes."""
    bad = map_problem(node, ("op", "inputs", "outputs", "attrs"))
    if bad:
        yield bad, "structure"
        return
    op, ins, outs, attrs = node["op"], node["inputs"], node["outputs"], node["attrs"]
    known = isinstance(op, str) and op in ops
    if not known:
        yield f"unknown op {op!r:.40}; opset {version} has: {', '.join(ops)}", "op"
    for x in ins if isinstance(ins, list) else [None]:
        if not (isinstance(x, str) and x in defined):
            yield f"({op}) input {x!r:.40} is not defined before use", "input"
    if known and isinstance(ins, list) and len(ins) != len(ops[op].inputs):
        yield f"({op}) takes {len(ops[op].inputs)} input(s) ({', '.join(ops[op].inputs)}), got {len(ins)}", "input"
    if not (isinstance(outs, list) and len(outs) == 1 and isinstance(outs[0], str)):
        yield f"({op}) outputs must be a list of one name", "output"
    elif outs[0] in defined:
        yield f"({op}) output {outs[0]!r:.40} is defined twice", "output"
    if not isinstance(attrs, dict):
        yield f"({op}) attrs must be a map", "structure"
    elif known:
        yield from _check_attrs(op, ops[op], attrs, shapes)


def _check_attrs(op, spec_, attrs, shapes):
    """A node's attributes: known names, each in its range, tensors that exist, one complete set of
    optional tensors; then (only when all that holds) what must agree with the tensors' shapes."""
    rules, ok = spec_.attrs, True
    for k, v in attrs.items():
        rule, problem = rules.get(k), None
        if rule is None:
            problem = f"({op}) attribute {k!r:.40} is unknown; {op} has: {', '.join(rules) or 'none'}", "attribute"
        elif isinstance(rule, Tensor):
            if not (isinstance(v, str) and v in shapes):
                problem = f"({op}) attribute {k} names tensor {v!r:.60}, which is not in the tensor table", "tensor"
        elif rule is BOOL:
            if not isinstance(v, bool):
                problem = f"({op}) attribute {k}={v!r:.40}: must be true or false", "range"
        elif v not in rule:
            problem = f"({op}) attribute {k}={v!r:.40}: must be {rule}", "range"
        if problem:
            ok = False
            yield problem
    for k in (k for k, rule in rules.items() if not _optional(rule) and k not in attrs):
        ok = False
        yield f"({op}) attribute {k} is missing", "missing attribute"
    if spec_.optional_sets:
        have = tuple(k for k, rule in rules.items() if _optional(rule) and k in attrs)
        if have not in spec_.optional_sets:
            ok = False
            yield (f"({op}) has the optional tensors {', '.join(have) or 'none'}; it needs exactly one of: "
                   f"{' | '.join(', '.join(s) or 'none' for s in spec_.optional_sets)}", "optional")
    if ok:
        yield from ((f"({op}) {m}", "shape") for m in _disagreements(spec_, attrs, shapes))


def _optional(rule):
    return isinstance(rule, Tensor) and rule.optional


def _disagreements(spec_, a, shapes):
    """Attributes that do not fit the tensors' shapes (the exporters trust attributes as well)."""
    for k, rule in spec_.attrs.items():
        if isinstance(rule, Tensor) and rule.dims and k in a:
            want = tuple(sum(a[name] for name in dim.split(" + ")) for dim in rule.dims)
            full = tuple(shapes[a[k]])
            if full[:len(want)] != want:
                yield (f"attributes {', '.join(rule.dims)} = {', '.join(map(str, want))} must match the shape "
                       f"{list(full)} of tensor {k} {a[k]!r:.60}")
    message = spec_.agree(a, shapes) if spec_.agree else None
    if message:
        yield message


# ---------------------------------------------------------------- the state bound
# The runtime state the attributes imply (latent caches, RoPE tables, causal masks: state_bytes) may not
# exceed STATE_BYTES_BASE + STATE_BYTES_PER_FILE_BYTE x the file's size.
STATE_BYTES_BASE = 64 << 20
STATE_BYTES_PER_FILE_BYTE = 4


def state_bytes(graph, S=None):
    """-> (latent caches, RoPE tables, causal masks) in bytes that the graph's mla_attention nodes allocate
    when prepared (runtime/mla.py MLAttention): per node a float32 cache (S, r + C + 1) and cos and sin
    tables (S, (H + 1) r); per distinct S one float32 (S, S) causal mask, counted as the 9 S^2 bytes it
    takes while it is built (np.triu of a full copy, through a boolean mask). S overrides every node's
    max_positions (to find the largest that fits)."""
    caches = rope = 0
    lengths = set()
    for g in (graph, graph.get("mtp")):
        for n in (g or {}).get("nodes", []):
            if n["op"] == "mla_attention":
                a = n["attrs"]
                s, r, C, H = S or a["max_positions"], a["qk_rope_head_dim"], a["kv_lora_rank"], a["n_heads"]
                caches += 4 * s * (r + C + 1)
                rope += 2 * 4 * s * (H + 1) * r
                lengths.add(s)
    return caches, rope, sum(9 * s * s for s in lengths)


def state_problem(graph, file_bytes):
    """None if the state a checked graph implies fits the bound for a file of file_bytes, else a message
    naming the state each part needs and the largest max_positions that fits."""
    budget = STATE_BYTES_BASE + STATE_BYTES_PER_FILE_BYTE * file_bytes
    caches, rope, masks = state_bytes(graph)
    if caches + rope + masks <= budget:
        return None
    lo, hi = 0, MAX_POSITIONS                       # the largest context that fits: state grows with S
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if sum(state_bytes(graph, mid)) <= budget else (lo, mid - 1)
    S = max(n["attrs"]["max_positions"] for g in (graph, graph.get("mtp") or {"nodes": []})
            for n in g["nodes"] if n["op"] == "mla_attention")
    return (f"max_positions={S} would need {_mb(caches + rope + masks)} of attention state (latent caches "
            f"{_mb(caches)}, RoPE tables {_mb(rope)}, causal mask {_mb(masks)}); a {file_bytes:,}-byte file may use "
            f"at most {_mb(budget)} ({STATE_BYTES_BASE >> 20} MiB + {STATE_BYTES_PER_FILE_BYTE} x its size): "
            f"this model fits max_positions <= {lo}")


def _mb(n):
    return f"{n / 1e6:,.1f} MB"
