"""Read and validate a tinyr1 model file before touching any tensor data.

Order (each step raises ModelFormatError naming what is wrong): file size bound -> not another format
(PNG, GGUF, ZIP, ...: `_sniff` names it) -> outer msgpack map with tight limits -> magic, versions ->
sha256 of the payload -> body map with limits -> config, tokenizer, generation defaults (the ranges of
runtime.generate.check_options) -> tensor table (names, dtypes, shapes, byte lengths, scales) -> graph
(runtime/opset.py check_graph, the check the compiler's lint runs too: ops, inputs, every attribute in
its range and agreeing with its tensors) -> the attention state that max_positions implies, within the
bound of opset.state_problem.
Tensors become read-only numpy views of the file's bytes: nothing is allocated beyond the file itself.
`tinyr1 inspect` and the exporters read files through `read_document` too: the same checks.
"""
import hashlib
import os

import msgpack
import numpy as np

from runtime import fileformat, opset
from runtime.errors import GenerationError, ModelFormatError, TokenizerError
from runtime.generate import check_options
from runtime.tasks.phrasing import normal
from runtime.tokenizer import Tokenizer


def _unpack(data, what, max_bin):
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True,
                               max_bin_len=max_bin, max_str_len=fileformat.MAX_STR_BYTES,
                               max_array_len=fileformat.MAX_CONTAINER_LEN,
                               max_map_len=fileformat.MAX_CONTAINER_LEN,
                               max_ext_len=0)
    except msgpack.exceptions.StackError:
        raise ModelFormatError(f"{what}: msgpack nesting is too deep") from None
    except (ValueError, TypeError, msgpack.exceptions.UnpackException) as e:
        raise ModelFormatError(f"{what}: not a valid msgpack document ({e})") from None


def _need(cond, where, message):
    if not cond:
        raise ModelFormatError(f"{where}: {message}")


def _map(value, where, keys, optional=()):
    """value, a map with exactly `keys` and any of `optional` (the rule the graph check uses too)."""
    problem = opset.map_problem(value, keys, optional)
    _need(problem is None, where, problem)
    return value


def read_document(path):
    """-> the validated body dict, with tensors as numpy arrays under body['arrays']."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read model file: {e.strerror}") from None
    limit = fileformat.MAX_FILE_BYTES
    _need(size <= limit, path, f"file is {size} bytes, more than the limit {limit}")
    with open(path, "rb") as f:
        data = f.read()
    return parse_document(data, path)


def parse_document(data, where="model"):
    _sniff(data, where)
    outer = _unpack(data, where, max_bin=len(data))
    _map(outer, where, fileformat.OUTER_KEYS)
    _need(outer["magic"] == fileformat.MAGIC, where,
          f"magic is {outer['magic']!r:.40}, expected {fileformat.MAGIC!r} (not a tinyr1 model file)")
    _need(outer["format_version"] == fileformat.FORMAT_VERSION, where,
          f"format_version {outer['format_version']!r:.20} is not supported; this runtime reads version "
          f"{fileformat.FORMAT_VERSION} (recompile with a matching tinyr1)")
    _need(outer["opset_version"] in fileformat.SUPPORTED_OPSETS, where,
          f"opset_version {outer['opset_version']!r:.20} is not supported; this runtime implements opsets "
          f"{', '.join(map(str, fileformat.SUPPORTED_OPSETS))}")
    payload, digest = outer["payload"], outer["sha256"]
    _need(isinstance(payload, bytes), where, "payload must be bytes")
    _need(isinstance(digest, bytes) and len(digest) == 32, where, "sha256 must be 32 bytes")
    _need(hashlib.sha256(payload).digest() == digest, where,
          "sha256 of the payload does not match: the file is corrupt or was modified")
    body = _map(_unpack(payload, f"{where}: payload", max_bin=len(payload)), f"{where}: payload",
                fileformat.BODY_KEYS)
    body["tokenizer_obj"] = _tokenizer(body["tokenizer"], where)
    body["arrays"], body["quant"] = _tensors(body["tensors"], where)
    _need(isinstance(body["config"], dict), f"{where}: config", "expected a map")
    _generation(body["generation"], f"{where}: generation", body["tokenizer_obj"].vocab_size)
    _need(isinstance(body["provenance"], dict), f"{where}: provenance", "expected a map")
    body["taught"] = _taught(body["provenance"].get("taught", []), f"{where}: provenance.taught")
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


def _generation(generation, where, vocab_size):
    """The file's generation defaults: the same ranges as the options of Model.generate."""
    _map(generation, where, (), optional=fileformat.GENERATION_KEYS)
    try:
        options = {k: generation[k] for k in fileformat.GENERATION_KEYS if k in generation and k != "stop"}
        check_options(**options, vocab_size=vocab_size)
    except GenerationError as e:
        raise ModelFormatError(f"{where}: {e}") from None
    stop = generation.get("stop", [])
    _need(isinstance(stop, list) and all(isinstance(x, str) for x in stop), where,
          f"stop={stop!r:.60}: must be a list of strings")


def _taught(entries, where):
    """The owner's taught answers (`tinyr1 teach`) -> [(question, answer)]: a list of {question, answer}
    maps of 1..MAX_TAUGHT_CHARS characters each, no question twice (compared as the verifiers read it)."""
    _need(isinstance(entries, list) and len(entries) <= fileformat.MAX_TAUGHT, where,
          f"expected a list of at most {fileformat.MAX_TAUGHT} {{question, answer}} maps")
    pairs, seen = [], {}
    for i, e in enumerate(entries):
        _map(e, f"{where}[{i}]", ("question", "answer"))
        for key in ("question", "answer"):
            v = e[key]
            _need(isinstance(v, str) and 0 < len(v.strip()) and len(v) <= fileformat.MAX_TAUGHT_CHARS,
                  f"{where}[{i}].{key}", f"{v!r:.60}: expected 1..{fileformat.MAX_TAUGHT_CHARS} characters")
        key = normal(e["question"])
        _need(key not in seen, f"{where}[{i}].question",
              f"{e['question']!r:.60} repeats entry {seen.get(key)}'s question")
        seen[key] = i
        pairs.append((e["question"], e["answer"]))
    return pairs


def _state_budget(graph, file_bytes, where):
    """The state the attributes imply (latent caches, RoPE tables, masks) fits the bound for this file."""
    problem = opset.state_problem(graph, file_bytes)
    _need(problem is None, where, problem)


def _tokenizer(d, where):
    try:
        return Tokenizer.from_dict(d, source=f"{where}: tokenizer")
    except TokenizerError as e:
        raise ModelFormatError(str(e)) from None


def _shape(value, where):
    _need(isinstance(value, list) and 1 <= len(value) <= fileformat.MAX_DIMS, where,
          f"shape must be a list of at least 1 and at most {fileformat.MAX_DIMS} sizes, got {value!r:.60}")
    _need(all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value),
          where, f"shape {value!r:.60} must hold positive integers")
    n = 1
    for s in value:
        n *= s
    _need(n <= fileformat.MAX_FILE_BYTES, where, f"shape {value} declares {n} elements, more than any file can hold")
    return tuple(value), n


def _tensors(entries, where):
    """Tensor table -> ({name: array}, {name: quant info}). Byte lengths must match exactly."""
    _need(isinstance(entries, list) and len(entries) <= fileformat.MAX_TENSORS, f"{where}: tensors",
          f"expected a list of at most {fileformat.MAX_TENSORS} entries")
    arrays, quant = {}, {}
    for i, e in enumerate(entries):
        w = f"{where}: tensors[{i}]"
        _map(e, w, ("name", "dtype", "shape", "quant", "data"), optional=("scales", "group_size", "error"))
        name = e["name"]
        _need(isinstance(name, str) and name, w, "name must be a non-empty string")
        w = f"{where}: tensor {name!r}"
        _need(name not in arrays, w, "appears twice in the tensor table")
        _need(e["dtype"] in fileformat.DTYPES, w, f"dtype {e['dtype']!r:.30} is unknown; known: "
                                                  f"{', '.join(fileformat.DTYPES)}")
        _need(e["quant"] in fileformat.QUANT_SCHEMES, w, f"quant {e['quant']!r:.30} is unknown; known: "
                                                         f"{', '.join(fileformat.QUANT_SCHEMES)}")
        shape, n = _shape(e["shape"], w)
        np_dtype, itemsize = fileformat.DTYPES[e["dtype"]]
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


def _graph(graph, arrays, where, version=fileformat.OPSET_VERSION):
    """The graph against the contract (runtime/opset.py check_graph): the first problem, if any."""
    shapes = {name: a.shape for name, a in arrays.items()}
    for problem in opset.check_graph(graph, shapes, version):
        raise ModelFormatError(f"{where}: graph: {problem}")
