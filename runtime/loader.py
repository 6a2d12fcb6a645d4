"""Read and validate a tinyr1 model file before touching any tensor data.

Order (each step raises ModelFormatError naming what is wrong): file size bound -> outer msgpack map
with tight limits -> magic, versions -> sha256 of the payload -> body map with limits -> config,
tokenizer, generation -> tensor table (names, dtypes, shapes, byte lengths, scales) -> graph.
Tensors become read-only numpy views of the file's bytes: nothing is allocated beyond the file itself.
"""
import hashlib
import os

import msgpack
import numpy as np

from runtime import format as F
from runtime.errors import ModelFormatError, TokenizerError
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
    _need(not extra, where, f"unknown key {extra[0]!r}; expected {', '.join(keys)}" if extra else "")
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
    _need(isinstance(body["generation"], dict), f"{where}: generation", "expected a map")
    _need(isinstance(body["provenance"], dict), f"{where}: provenance", "expected a map")
    _graph(body["graph"], body["arrays"], where, outer["opset_version"])
    return body


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
        for k, v in node["attrs"].items():
            if k.endswith("weight") or k.startswith("w_"):
                _need(isinstance(v, str) and v in arrays, nw, f"({op}) attribute {k} names tensor {v!r:.60}, "
                                                              f"which is not in the tensor table")
        defined.update(node["outputs"])
    _need(isinstance(graph["outputs"], list) and len(graph["outputs"]) == 1
          and graph["outputs"][0] in defined - outer_values, w, "outputs must name one value the nodes define")
    return defined - outer_values
