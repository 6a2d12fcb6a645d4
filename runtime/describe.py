"""What `tinyr1 inspect` shows: sizes, op counts, parameters, quantization error, provenance."""
import os
from collections import Counter

from runtime import fileformat


def summary(body, path):
    tensors = {e["name"]: e for e in body["tensors"]}
    n_int8 = sum(int(a.size) for k, a in body["arrays"].items() if body["quant"][k]["scheme"] != "none")
    n_all = sum(int(a.size) for a in body["arrays"].values())
    report = body["provenance"].get("quantization_report") or {}
    quant = {k: {"scheme": tensors[k]["quant"], **v} for k, v in report.items() if k in tensors}
    version = f"{fileformat.MAGIC} v{fileformat.FORMAT_VERSION} opset {fileformat.OPSET_VERSION}"
    return {"file_bytes": os.path.getsize(path), "format": version,
            "parameters": n_all, "int8_parameters": n_int8, "float32_parameters": n_all - n_int8,
            "op_counts": dict(Counter(n["op"] for n in body["graph"]["nodes"])),
            "mtp_op_counts": dict(Counter(n["op"] for n in body["graph"].get("mtp", {}).get("nodes", []))),
            "config": body["config"], "generation": body["generation"], "quantization": quant,
            "provenance": body["provenance"], "tensors": {k: {"shape": e["shape"], "dtype": e["dtype"], "quant": e["quant"]}
                                                          for k, e in tensors.items()}}


def graph_text(graph, title="graph"):
    """One line per node; the MTP draft head, if any, follows as a second graph."""
    lines = [f"{title}({', '.join(graph['inputs'])}) -> {', '.join('%' + o for o in graph['outputs'])}"]
    for n in graph["nodes"]:
        attrs = " ".join(f"{k}={v}" for k, v in n["attrs"].items())
        ins = ", ".join(x if x in ("tokens", "next_tokens") else "%" + x for x in n["inputs"])
        lines.append(f"  {', '.join('%' + o for o in n['outputs'])} = {n['op']}({ins})  {attrs}".rstrip())
    if "mtp" in graph:
        lines.append(graph_text(graph["mtp"], "mtp"))
    return "\n".join(lines)
