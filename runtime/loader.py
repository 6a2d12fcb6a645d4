"""Read and validate a tinyr1 model file before touching any tensor data.

Order (each step raises ModelFormatError naming what is wrong): file size bound -> not another format
(PNG, GGUF, ZIP, ...: `_sniff` names it) -> outer msgpack map with tight limits -> magic, versions ->
sha256 of the payload -> body map with limits -> config, tokenizer, generation defaults (the ranges of
runtime.generate.check_options) -> tensor table (names, dtypes, shapes, byte lengths, scales) -> graph
(ops, inputs, every attribute in its range of format.NODE_ATTRS and agreeing with its tensors) -> the
attention state that max_positions implies, within format.STATE_BYTES_*.
Tensors become read-only numpy views of the file's bytes: nothing is allocated beyond the file itself.
`tinyr1 inspect` and the exporters read files through `read_document` too: the same checks.
"""
import hashlib
import os

import msgpack
import numpy as np

from runtime import format as F
from runtime.errors import GenerationError, ModelFormatError, TokenizerError
from runtime.generate import check_options
from runtime.tokenizer import Tokenizer


def _unpack(data, what, max_bin):
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True,
                               max_bin_len=max_bin, max_str_len=F.MAX_STR_BYTES,
                               max_array_len=F.MAX_CONTAINER_LEN, max_map_len=F.MAX_CONTAINER_LEN,
                               max_ext_len=0)
    except msgpack.exceptions.StackError:
        raise ModelFormatError(f"{what}: msgpack nesting is too deep") from None
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as e:
        raise ModelFormatError(f"{what}: not a valid msgpack document ({e})") from None


def _need(cond, where, message):
    if not cond:
        raise ModelFormatError(f"{where}: {message}")


def _map(value, where, keys, optional=()):
    _need(isinstance(value, dict), where, f"expected a map, got {type(value).__name__}")
    missing = [k for k in keys if k not in value]
    _need(not missing, where, f"missing key {missing[0]!r}" if missing else "")
    extra = [k for k in value if k not in keys and k not in optional]
    _need(not extra, where, f"unknown key {extra[0]!r}; expected {', '.join(tuple(keys) + tuple(optional))}"
          if extra else "")
    return value


def read_document(path):
    """-> the validated body dict, with tensors as numpy arrays under body['arrays']."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read model file: {e.strerror}") from None
    _need(size <= F.MAX_FILE_BYTES, path, f"file is {size} bytes, more than the limit {F.MAX_FILE_BYTES}")
    with open(path, "rb") as f:
        data = f.read()
    return parse_document(data, path)


def parse_document(data, where="model"):
    _sniff(data, where)
    outer = _unpack(data, where, max_bin=len(data))
    _map(outer, where, F.OUTER_KEYS)
    _need(outer["magic"] == F.MAGIC, where, f"magic is {outer['magic']!r:.40}, expected {F.MAGIC!r} "
                                            f"(not a tinyr1 model file)")
    _need(outer["format_version"] == F.FORMAT_VERSION, where,
          f"format_version {outer['format_version']!r:.20} is not supported; this runtime reads version "
          f"{F.FORMAT_VERSION} (recompile with a matching tinyr1)")
    _need(outer["opset_version"] in F.SUPPORTED_OPSETS, where,
          f"opset_version {outer['opset_version']!r:.20} is not supported; this runtime implements opsets "
          f"{', '.join(map(str, F.SUPPORTED_OPSETS))}")
    payload, digest = outer["payload"], outer["sha256"]
    _need(isinstance(payload, bytes), where, "payload must be bytes")
    _need(isinstance(digest, bytes) and len(digest) == 32, where, "sha256 must be 32 bytes")
    _need(hashlib.sha256(payload).digest() == digest, where,
          "sha256 of the payload does not match: the file is corrupt or was modified")
    body = _map(_unpack(payload, f"{where}: payload", max_bin=len(payload)), f"{where}: payload", F.BODY_KEYS)
    body["tokenizer_obj"] = _tokenizer(body["tokenizer"], where)
    body["arrays"], body["quant"] = _tensors(body["tensors"], where)
    _need(isinstance(body["config"], dict), f"{where}: config", "expected a map")
    _generation(body["generation"], f"{where}: generation", body["tokenizer_obj"].vocab_size)
    _need(isinstance(body["provenance"], dict), f"{where}: provenance", "expected a map")
    _graph(body["graph"], body["arrays"], where, outer["opset_version"])
    _state_budget(body["graph"], len(data), f"{where}: graph")
    return body


# Files people pass by mistake: (offset, first bytes, what it is). A tinyr1 model starts with a msgpack map.
_ELSEWHERE = "tinyr1 exports this format (`tinyr1 export`) but runs only its own .msgpack model files; pass " \
             "the .msgpack it was exported from"
_COMPILE = "compile a checkpoint into a model file with `tinyr1 compile CHECKPOINT -o model.msgpack`"
SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"GGUF", f"a GGUF model (llama.cpp); {_ELSEWHERE}"),
    (4, b"TFL3", f"a TensorFlow Lite model; {_ELSEWHERE}"),
    (0, b"PK\x03\x04", f"a ZIP archive (a NumPy .npz, a PyTorch .pt, ...); {_COMPILE}"),
    (0, b"PK\x05\x06", "an empty ZIP archive"),
    (0, b"\x1f\x8b", "gzip-compressed data (a .gz or .tar.gz); unpack it first"),
    (0, b"\x7fELF", "an ELF executable or shared library"),
    (0, b"%PDF", "a PDF document"),
)


def _sniff(data, where):
    """Name what a file that is no tinyr1 model looks like, before msgpack reads it as something else."""
    def no(what):
        raise ModelFormatError(f"{where} is not a tinyr1 model: it {what}")
    if not data:
        no("is empty (0 bytes)")
    for offset, magic, what in SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            no(f"looks like {what}")
    first = data[0]
    if first == 0x80 and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        no(f"looks like a Python pickle (a PyTorch or NumPy checkpoint?); {_COMPILE}")
    if len(data) > 8 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") < len(data):
        no(f"looks like a safetensors file (Hugging Face weights); {_COMPILE}")
    if first == 0x08 and len(data) > 2 and data[1] < 0x80 and data[2] in (0x12, 0x1a, 0x22, 0x2a, 0x3a, 0x42):
        no(f"looks like an ONNX model (protobuf); {_ELSEWHERE}")
    if 0x80 <= first <= 0x8f or first in (0xde, 0xdf):             # a msgpack map: let msgpack judge it
        return
    head = data[:200].decode("utf-8", errors="ignore")
    if head and all(c.isprintable() or c in "\r\n\t" for c in head):
        line = head.lstrip().split("\n")[0][:40]
        no(f"looks like {'a JSON document' if line[:1] in '{[' else 'a text file'} (it starts {line!r})")
    no(f"does not start with a msgpack map (first bytes: {data[:8].hex(' ')})")


def _generation(gen, where, vocab_size):
    """The file's generation defaults: the same ranges as the options of Model.generate."""
    _map(gen, where, (), optional=F.GENERATION_KEYS)
    try:
        check_options(**{k: gen[k] for k in F.GENERATION_KEYS if k in gen and k != "stop"}, vocab_size=vocab_size)
    except GenerationError as e:
        raise ModelFormatError(f"{where}: {e}") from None
    stop = gen.get("stop", [])
    _need(isinstance(stop, list) and all(isinstance(x, str) for x in stop), where,
          f"stop={stop!r:.60}: must be a list of strings")


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


def _state_budget(graph, file_bytes, where):
    """The state the attributes imply fits STATE_BYTES_BASE + STATE_BYTES_PER_FILE_BYTE x file size."""
    budget = F.STATE_BYTES_BASE + F.STATE_BYTES_PER_FILE_BYTE * file_bytes
    caches, rope, masks = state_bytes(graph)
    if caches + rope + masks <= budget:
        return
    lo, hi = 0, F.MAX_POSITIONS                     # the largest context that fits: state grows with S
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if sum(state_bytes(graph, mid)) <= budget else (lo, mid - 1)
    S = max(n["attrs"]["max_positions"] for g in (graph, graph.get("mtp") or {"nodes": []})
            for n in g["nodes"] if n["op"] == "mla_attention")
    raise ModelFormatError(
        f"{where}: max_positions={S} would need {_mb(caches + rope + masks)} of attention state (latent caches "
        f"{_mb(caches)}, RoPE tables {_mb(rope)}, causal mask {_mb(masks)}); a {file_bytes:,}-byte file may use at "
        f"most {_mb(budget)} ({F.STATE_BYTES_BASE >> 20} MiB + {F.STATE_BYTES_PER_FILE_BYTE} x its size): "
        f"this model fits max_positions <= {lo}")


def _mb(n):
    return f"{n / 1e6:,.1f} MB"


def _tokenizer(d, where):
    try:
        return Tokenizer.from_dict(d, source=f"{where}: tokenizer")
    except TokenizerError as e:
        raise ModelFormatError(str(e)) from None


def _shape(value, where):
    _need(isinstance(value, list) and len(value) <= F.MAX_DIMS, where, f"shape must be a list of at most "
                                                                      f"{F.MAX_DIMS} sizes, got {value!r:.60}")
    _need(all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value),
          where, f"shape {value!r:.60} must hold positive integers")
    n = 1
    for s in value:
        n *= s
    _need(n <= F.MAX_FILE_BYTES, where, f"shape {value} declares {n} elements, more than any file can hold")
    return tuple(value), n


def _tensors(entries, where):
    """Tensor table -> ({name: array}, {name: quant info}). Byte lengths must match exactly."""
    _need(isinstance(entries, list) and len(entries) <= F.MAX_TENSORS, f"{where}: tensors",
          f"expected a list of at most {F.MAX_TENSORS} entries")
    arrays, quant = {}, {}
    for i, e in enumerate(entries):
        w = f"{where}: tensors[{i}]"
        _map(e, w, ("name", "dtype", "shape", "quant", "data"), optional=("scales", "group_size", "error"))
        name = e["name"]
        _need(isinstance(name, str) and name, w, "name must be a non-empty string")
        w = f"{where}: tensor {name!r}"
        _need(name not in arrays, w, "appears twice in the tensor table")
        _need(e["dtype"] in F.DTYPES, w, f"dtype {e['dtype']!r:.30} is unknown; known: {', '.join(F.DTYPES)}")
        _need(e["quant"] in F.QUANT_SCHEMES, w, f"quant {e['quant']!r:.30} is unknown; known: "
                                                f"{', '.join(F.QUANT_SCHEMES)}")
        shape, n = _shape(e["shape"], w)
        np_dtype, itemsize = F.DTYPES[e["dtype"]]
        data = e["data"]
        _need(isinstance(data, bytes), w, "data must be bytes")
        _need(len(data) == n * itemsize, w, f"data has {len(data)} bytes but dtype {e['dtype']} and shape "
                                            f"{list(shape)} need {n * itemsize}")
        arrays[name] = np.frombuffer(data, dtype=np_dtype).reshape(shape)
        quant[name] = {"scheme": e["quant"]}
        if e["quant"] != "none":
            _need(e["dtype"] == "int8" and len(shape) >= 2, w, f"quant {e['quant']} needs an int8 matrix")
            rows = n // shape[-1]
            if e["quant"] == "q8_group":
                g = e.get("group_size")
                _need(isinstance(g, int) and 0 < g <= shape[-1], w, f"group_size {g!r} must be in 1..{shape[-1]}")
                n_scales = rows * (-(-shape[-1] // g))
            else:
                g, n_scales = None, rows
            scales = e.get("scales")
            _need(isinstance(scales, bytes) and len(scales) == 2 * n_scales, w,
                  f"scales must be {2 * n_scales} bytes (float16 x {n_scales}), got "
                  f"{len(scales) if isinstance(scales, bytes) else type(scales).__name__}")
            s = np.frombuffer(scales, dtype="<f2")
            _need(bool(np.isfinite(s).all()), w, "scales contain NaN or infinity")
            quant[name].update(scales=s.reshape(rows, -1), group_size=g)
    return arrays, quant


def _graph(graph, arrays, where, opset=F.OPSET_VERSION):
    w = f"{where}: graph"
    _map(graph, w, ("inputs", "outputs", "nodes"), optional=("mtp",) if opset >= 2 else ())
    main = _nodes(graph, arrays, w, set(), opset)
    if "mtp" in graph:                          # the draft head reads a main-graph value and next_tokens
        mtp = graph["mtp"]
        _map(mtp, f"{w}: mtp", ("inputs", "outputs", "nodes"))
        _need(isinstance(mtp["inputs"], list) and len(mtp["inputs"]) == 2 and mtp["inputs"][0] in main
              and mtp["inputs"][1] == "next_tokens", f"{w}: mtp",
              f"inputs must be [a main-graph value, 'next_tokens'], got {mtp['inputs']!r:.80}")
        _nodes(mtp, arrays, f"{w}: mtp", main, opset)


def _attrs(op, attrs, arrays, w):
    """A node's attributes against format.NODE_ATTRS: known names, each in its range, tensors that exist,
    one complete set of optional tensors; then what must agree with the tensors' shapes."""
    rules = F.NODE_ATTRS[op]
    for k, v in attrs.items():
        rule = rules.get(k)
        _need(rule is not None, w, f"({op}) attribute {k!r:.40} is unknown; {op} has: {', '.join(rules) or 'none'}")
        if rule in (F.TENSOR, F.OPTIONAL):
            _need(isinstance(v, str) and v in arrays, w, f"({op}) attribute {k} names tensor {v!r:.60}, "
                                                         f"which is not in the tensor table")
        elif rule == F.BOOL:
            _need(isinstance(v, bool), w, f"({op}) attribute {k}={v!r:.40}: must be true or false")
        else:
            _need(v in rule, w, f"({op}) attribute {k}={v!r:.40}: must be {rule}")
    missing = [k for k, rule in rules.items() if rule != F.OPTIONAL and k not in attrs]
    _need(not missing, w, f"({op}) attribute {missing[0]} is missing" if missing else "")
    if op in F.OPTIONAL_SETS:
        have = tuple(k for k, rule in rules.items() if rule == F.OPTIONAL and k in attrs)
        sets = F.OPTIONAL_SETS[op]
        _need(have in sets, w, f"({op}) has the optional tensors {', '.join(have) or 'none'}; it needs exactly one "
                               f"of: {' | '.join(', '.join(s) or 'none' for s in sets)}")
    _fits(op, attrs, arrays, w)


def _fits(op, a, arrays, w):
    """Attributes that must agree with each other and with tensor shapes (the exporters read them too)."""
    if op == "moe":
        E, K, G, TG = arrays[a["w_router"]].shape[0], a["top_k"], a["n_group"], a["topk_group"]
        _need(E % G == 0 and TG <= G and K <= TG * (E // G), w,
              f"(moe) top_k={K}, n_group={G}, topk_group={TG} do not fit the {E} experts of w_router: n_group "
              f"must divide {E}, topk_group <= n_group, and top_k <= topk_group x {E} / n_group")
    elif op == "mla_attention":
        H, n, r, v, C = (a[k] for k in ("n_heads", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                                        "kv_lora_rank"))
        for k, names, shape in (("w_uk", "n_heads, qk_nope_head_dim, kv_lora_rank", (H, n, C)),
                                ("w_uv", "n_heads, kv_lora_rank, v_head_dim", (H, C, v)),
                                ("w_kv_a", "kv_lora_rank + qk_rope_head_dim", (C + r,))):
            full = arrays[a[k]].shape
            _need(full[:len(shape)] == shape, w, f"(mla_attention) attributes {names} = {', '.join(map(str, shape))} "
                                                 f"must match the shape {list(full)} of tensor {k} {a[k]!r:.60}")


def _nodes(graph, arrays, w, outer_values, opset):
    """Check one (sub)graph's nodes in order -> the set of values it defines."""
    ops = F.OPSET if opset >= 2 else tuple(op for op in F.OPSET if op != "linear")
    _need(isinstance(graph["nodes"], list) and len(graph["nodes"]) <= F.MAX_NODES, w,
          f"nodes must be a list of at most {F.MAX_NODES}")
    _need(isinstance(graph["inputs"], list) and all(isinstance(x, str) for x in graph["inputs"]), w,
          "inputs must be a list of names")
    defined = set(graph["inputs"]) | outer_values
    for i, node in enumerate(graph["nodes"]):
        nw = f"{w}: node {i}"
        _map(node, nw, ("op", "inputs", "outputs", "attrs"))
        op = node["op"]
        _need(op in ops, nw, f"unknown op {op!r:.40}; opset {opset} has: {', '.join(ops)}")
        for x in node["inputs"] if isinstance(node["inputs"], list) else [None]:
            _need(isinstance(x, str) and x in defined, nw, f"({op}) input {x!r:.40} is not defined before use")
        _need(isinstance(node["outputs"], list) and len(node["outputs"]) == 1 and isinstance(node["outputs"][0], str),
              nw, f"({op}) outputs must be a list of one name")
        _need(node["outputs"][0] not in defined, nw, f"({op}) output {node['outputs'][0]!r:.40} is defined twice")
        _need(isinstance(node["attrs"], dict), nw, f"({op}) attrs must be a map")
        _attrs(op, node["attrs"], arrays, nw)
        defined.update(node["outputs"])
    _need(isinstance(graph["outputs"], list) and len(graph["outputs"]) == 1
          and graph["outputs"][0] in defined - outer_values, w, "outputs must name one value the nodes define")
    return defined - outer_values
