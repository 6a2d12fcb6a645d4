"""Import a HuggingFace DeepseekV3 directory (config.json + *.safetensors) without torch.

safetensors layout: 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data.
Every size is bounded by the file's own size before anything is allocated.
"""
import glob
import json
import os

import numpy as np

from runtime.errors import CheckpointError
from runtime.tokenizer import Tokenizer
from trainer.hf import config_from_hf, from_hf_state_dict

SAFETENSORS_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "F64": ("<f8", 8)}


def read_safetensors(path):
    """-> {name: float32 array}."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: too short for a safetensors file")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, 100 << 20):
            raise CheckpointError(f"{path}: header length {n} exceeds the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path}: header is not JSON: {e}") from None
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (a, b) = meta["dtype"], [int(s) for s in meta["shape"]], meta["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry") from None
        if dtype not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype}; supported: {', '.join(SAFETENSORS_DTYPES)}")
        np_dtype, itemsize = SAFETENSORS_DTYPES[dtype]
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= a <= b <= len(data)) or b - a != count * itemsize:
            raise CheckpointError(f"{path}: tensor {name!r} offsets {a}..{b} do not fit dtype {dtype} and "
                                  f"shape {shape} inside the {len(data)}-byte data section")
        arr = np.frombuffer(data, dtype=np_dtype, count=count, offset=a)
        if dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.float32).reshape(shape)
    return out


def fuse_experts(sd, n_experts):
    """Checkpoint files store experts one by one (experts.{e}.gate_proj/up_proj/down_proj.weight);
    transformers' modules and ours stack them: gate_up_proj (E, 2F, d) = [gate; up], down_proj (E, d, F)."""
    layers = {k.split(".mlp.experts.")[0] for k in sd if ".mlp.experts." in k and k.endswith("0.gate_proj.weight")}
    for pre in sorted(layers):
        base = f"{pre}.mlp.experts."
        try:
            gate = [sd.pop(f"{base}{e}.gate_proj.weight") for e in range(n_experts)]
            up = [sd.pop(f"{base}{e}.up_proj.weight") for e in range(n_experts)]
            down = [sd.pop(f"{base}{e}.down_proj.weight") for e in range(n_experts)]
        except KeyError as e:
            raise CheckpointError(f"{pre}: expert tensor {e.args[0]!r} is missing "
                                  f"(config says n_routed_experts={n_experts})") from None
        sd[base + "gate_up_proj"] = np.stack([np.concatenate([g, u], 0) for g, u in zip(gate, up)])
        sd[base + "down_proj"] = np.stack(down)
    return sd


def load_hf_dir(src):
    """-> (params, cfg, tok, provenance). The vocabulary must be tinyr1's character tokenizer's size."""
    cpath = os.path.join(src, "config.json")
    try:
        with open(cpath) as f:
            hf_cfg = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cpath}: cannot read config: {e}") from None
    cfg = config_from_hf(hf_cfg, cpath)
    tok = Tokenizer()
    if cfg.vocab_size != tok.vocab_size:
        raise CheckpointError(f"{cpath}: vocab_size={cfg.vocab_size}, but tinyr1's tokenizer has {tok.vocab_size} "
                              f"tokens; the model must be trained on that vocabulary")
    files = sorted(glob.glob(os.path.join(src, "*.safetensors")))
    if not files:
        raise CheckpointError(f"{src}: no *.safetensors files")
    sd = {}
    for path in files:
        sd.update(read_safetensors(path))
    sd = fuse_experts(sd, cfg.n_routed_experts)
    params = from_hf_state_dict(sd, cfg, bool(hf_cfg.get("rope_interleave", True)), source=src)
    return params, cfg, tok, {"source": "huggingface", "path": os.path.abspath(src)}
