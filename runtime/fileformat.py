"""The tinyr1 model file: constants shared by the compiler's writer and the runtime's reader.

A model file is ONE msgpack map (docs/FORMAT.md has the full specification):
    {"magic": "tinyr1-model", "format_version": 1, "opset_version": 2,
     "sha256": <32 bytes: sha256 of payload>, "payload": <bytes: a msgpack map, the body>}
The body map has exactly the keys in BODY_KEYS. Tensor bytes are little-endian and C-ordered. The graph's
ops, their attributes and the state bound are the graph contract, runtime/opset.py.
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

# Bounds checked before anything is allocated (hostile files).
MAX_FILE_BYTES = 1 << 30
MAX_TENSORS = 4096
MAX_NODES = 4096
MAX_DIMS = 4
MAX_STR_BYTES = 1 << 20
MAX_CONTAINER_LEN = 1 << 16
MAX_TAUGHT = 1000               # provenance.taught: the owner's {question, answer} pairs (`tinyr1 teach`)
MAX_TAUGHT_CHARS = 1000         # characters of one taught question or answer

# The generation defaults map: these keys, each optional, checked like the options of runtime.generate
GENERATION_KEYS = ("max_new_tokens", "temperature", "top_k", "top_p", "stop")
