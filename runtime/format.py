"""The tinyr1 model file: constants shared by the compiler's writer and the runtime's reader.

A model file is ONE msgpack map (docs/FORMAT.md has the full specification):
    {"magic": "tinyr1-model", "format_version": 1, "opset_version": 1,
     "sha256": <32 bytes: sha256 of payload>, "payload": <bytes: a msgpack map, the body>}
The body map has exactly the keys in BODY_KEYS. Tensor bytes are little-endian and C-ordered.
"""
MAGIC = "tinyr1-model"
FORMAT_VERSION = 1
OPSET_VERSION = 2
SUPPORTED_OPSETS = (1, 2)       # opset 2 = opset 1 + `linear` and the optional MTP draft subgraph

OUTER_KEYS = ("magic", "format_version", "opset_version", "sha256", "payload")
BODY_KEYS = ("config", "tokenizer", "generation", "graph", "tensors", "provenance")

# dtype name -> (numpy dtype string, bytes per element)
DTYPES = {"float32": ("<f4", 4), "int8": ("i1", 1)}

# Quantization schemes of a tensor entry's "quant" field:
#   none       data is `dtype` with `shape`
#   q8_group   data int8 (shape), scales float16 (rows, ceil(cols / group_size)); w = q * scale
#              groups run along the last (input) dimension, like llama.cpp Q8_0
#   q8_channel data int8 (shape), scales float16 (rows,); one scale per output row
# rows = product of all dimensions but the last.
QUANT_SCHEMES = ("none", "q8_group", "q8_channel")

# Ops of the graph (opset 2). The runtime's registry (runtime/ops.py) implements exactly these.
OPSET = ("embedding", "rmsnorm", "mla_attention", "swiglu_mlp", "moe", "add", "linear", "lm_head")

# Bounds checked before anything is allocated (hostile files).
MAX_FILE_BYTES = 1 << 30
MAX_TENSORS = 4096
MAX_NODES = 4096
MAX_DIMS = 4
MAX_STR_BYTES = 1 << 20
MAX_CONTAINER_LEN = 1 << 16

# ---- node attributes: op -> {attribute: rule}. The loader checks every node against this table (and
# rejects attributes it does not list) before anything is prepared; docs/FORMAT.md prints it.
#   TENSOR / OPTIONAL   names a tensor of the table (optional ones come in the sets of OPTIONAL_SETS)
#   BOOL                true or false
#   Range(...)          an int in lo..hi (a multiple of `multiple`), or a finite float in lo..hi with
#                       lo_open / hi_open excluding the end
TENSOR, OPTIONAL, BOOL = "tensor", "optional tensor", "bool"


class Range:
    __slots__ = ("kind", "lo", "hi", "lo_open", "hi_open", "multiple")

    def __init__(self, kind, lo, hi, lo_open=False, hi_open=False, multiple=1):
        self.kind, self.lo, self.hi, self.multiple = kind, lo, hi, multiple
        self.lo_open, self.hi_open = lo_open, hi_open

    def __contains__(self, v):
        if self.kind is int:
            return isinstance(v, int) and not isinstance(v, bool) and self.lo <= v <= self.hi and v % self.multiple == 0
        return isinstance(v, float) and (self.lo < v if self.lo_open else self.lo <= v) and \
            (v < self.hi if self.hi_open else v <= self.hi)            # NaN fails every comparison

    def __str__(self):
        if self.kind is int:
            step = f", a multiple of {self.multiple}" if self.multiple > 1 else ""
            return f"an integer in {self.lo}..{self.hi}{step}"
        return f"a finite float in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


MAX_POSITIONS = 8192        # context length; the runtime's state grows with it (STATE_* below bound it too)
MAX_HEADS = 1024            # DeepSeek-V3: 128 heads
MAX_HEAD_DIM = 1024         # qk_nope / qk_rope / v head widths (DeepSeek-V3: 128 / 64 / 128)
MAX_RANK = 8192             # kv_lora_rank (DeepSeek-V3: 512)
MAX_EXPERTS = 1024          # routed experts, groups (DeepSeek-V3: 256 experts, 8 groups)
EPS = Range(float, 0.0, 1.0, lo_open=True, hi_open=True)

NODE_ATTRS = {
    "embedding": {"weight": TENSOR},
    "rmsnorm": {"weight": TENSOR, "eps": EPS},
    "add": {},
    "linear": {"weight": TENSOR},
    "lm_head": {"weight": TENSOR},
    "swiglu_mlp": {"w_gate": TENSOR, "w_up": TENSOR, "w_down": TENSOR},
    "mla_attention": {
        "layer": Range(int, 0, MAX_NODES), "n_heads": Range(int, 1, MAX_HEADS),
        "qk_nope_head_dim": Range(int, 1, MAX_HEAD_DIM), "qk_rope_head_dim": Range(int, 2, MAX_HEAD_DIM, multiple=2),
        "v_head_dim": Range(int, 1, MAX_HEAD_DIM), "kv_lora_rank": Range(int, 1, MAX_RANK),
        "rope_theta": Range(float, 1.0, 1e9, lo_open=True),     # <= 1: angles that grow with i, not RoPE
        "eps": EPS, "max_positions": Range(int, 1, MAX_POSITIONS),
        "w_q": OPTIONAL, "w_q_a": OPTIONAL, "w_q_a_norm": OPTIONAL, "w_q_b": OPTIONAL,
        "w_kv_a": TENSOR, "w_kv_a_norm": TENSOR, "w_uk": TENSOR, "w_uv": TENSOR, "w_o": TENSOR},
    "moe": {
        "top_k": Range(int, 1, MAX_EXPERTS), "n_group": Range(int, 1, MAX_EXPERTS),
        "topk_group": Range(int, 1, MAX_EXPERTS), "norm_topk_prob": BOOL,
        "routed_scaling_factor": Range(float, 0.0, 1000.0, lo_open=True),
        "w_router": TENSOR, "w_bias": TENSOR, "w_experts_gate_up": TENSOR, "w_experts_down": TENSOR,
        "w_shared_gate": OPTIONAL, "w_shared_up": OPTIONAL, "w_shared_down": OPTIONAL},
}
# op -> the sets of optional tensors a node may have: exactly one set, complete
OPTIONAL_SETS = {"mla_attention": (("w_q",), ("w_q_a", "w_q_a_norm", "w_q_b")),
                 "moe": ((), ("w_shared_gate", "w_shared_up", "w_shared_down"))}

# The runtime state the attributes imply (latent caches, RoPE tables, causal masks: see runtime/loader.py
# state_bytes) may not exceed STATE_BYTES_BASE + STATE_BYTES_PER_FILE_BYTE x the file's size.
STATE_BYTES_BASE = 64 << 20
STATE_BYTES_PER_FILE_BYTE = 4

# The generation defaults map: these keys, each optional, checked like the options of runtime.generate
GENERATION_KEYS = ("max_new_tokens", "temperature", "top_k", "top_p", "stop")
