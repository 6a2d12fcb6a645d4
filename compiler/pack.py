"""Write the msgpack model file (runtime/fileformat.py constants; docs/FORMAT.md specification)."""
import hashlib

import msgpack
import numpy as np

from runtime import fileformat


def tensor_entry(name, w, quant=None):
    """One tensor-table entry. quant = (scheme, group_size, q int8, scales float16, report) or None."""
    if quant is None:
        return {"name": name, "dtype": "float32", "shape": list(w.shape), "quant": "none",
                "data": np.ascontiguousarray(w, dtype="<f4").tobytes()}
    scheme, group_size, q, scales, report = quant
    e = {"name": name, "dtype": "int8", "shape": list(q.shape), "quant": scheme,
         "data": np.ascontiguousarray(q).tobytes(), "scales": np.ascontiguousarray(scales, dtype="<f2").tobytes(),
         "error": report}
    if scheme == "q8_group":
        e["group_size"] = int(group_size)
    return e


def pack(config, tokenizer, generation, graph, entries, provenance):
    """-> file bytes. The body is packed once, hashed, and embedded as bytes in the outer map."""
    body = {"config": config, "tokenizer": tokenizer, "generation": generation, "graph": graph,
            "tensors": entries, "provenance": provenance}
    payload = msgpack.packb(body, use_bin_type=True)
    outer = {"magic": fileformat.MAGIC, "format_version": fileformat.FORMAT_VERSION,
             "opset_version": fileformat.OPSET_VERSION,
             "sha256": hashlib.sha256(payload).digest(), "payload": payload}
    return msgpack.packb(outer, use_bin_type=True)
