"""Checkpoints: `model.npz` (weights, never pickled) + `checkpoint.json` (config, tokenizer, step,
metrics, recipe) + optional `optim.npz` (AdamW moments) in one directory.

A run directory keeps `ckpt/step_NNNNNN/` directories and a `ckpt/LATEST` file naming the newest.
Each checkpoint is written to a temporary directory, fsynced, renamed into place, and only then
is LATEST replaced, so a `kill -9` at any moment leaves the previous checkpoint loadable.
"""
import json
import os
import shutil
import zipfile

import numpy as np

from runtime.errors import CheckpointError
from runtime.tokenizer import Tokenizer
from trainer.config import ModelConfig
from trainer.model import param_shapes

FORMAT = "tinyr1-checkpoint"
VERSION = 1


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data: bytes):
    """temp file in the same dir (made if missing: `-o build/x` needs no mkdir), write, fsync, os.replace,
    fsync the directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def _savez(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def nonfinite(arrays):
    """-> [(name, number of NaN or inf values)] of every array that has any, in order."""
    return [(k, int(a.size - np.count_nonzero(np.isfinite(a)))) for k, a in arrays.items()
            if not np.isfinite(a).all()]


def require_finite(params, source, error=CheckpointError, hint="these weights come from a diverged run"):
    """Raise `error` naming `source`, the first weight with NaN or inf values, their count, and `hint`."""
    bad = nonfinite(params)
    if bad:
        name, n = bad[0]
        more = f" (and {len(bad) - 1} more weights)" if len(bad) > 1 else ""
        raise error(f"{source}: weight {name} has {n} NaN or inf values of {params[name].size}{more}; {hint}")


def save(path, params, cfg, tok, meta=None, optim=None):
    """Write a checkpoint directory at `path` atomically (replacing any existing one); weights with
    NaN or inf values are refused (the training loops stop before that, with a better message)."""
    path = os.path.abspath(path)
    require_finite(params, f"refusing to write the checkpoint {path}")
    tmp = f"{path}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _savez(os.path.join(tmp, "model.npz"), params)
    info = {"format": FORMAT, "version": VERSION, "config": cfg.to_dict(), "tokenizer": tok.to_dict(),
            **(meta or {})}
    if optim is not None:
        arrays, t = optim
        _savez(os.path.join(tmp, "optim.npz"), arrays)
        info["optim_step"] = t
    with open(os.path.join(tmp, "checkpoint.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(tmp)
    if os.path.exists(path):
        old = f"{path}.old-{os.getpid()}"
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: cannot read weights: {e}") from None


def load(path, with_optim=False):
    """-> (params, cfg, tok, info[, optim arrays]). Checks every weight's name and shape."""
    jpath = os.path.join(path, "checkpoint.json")
    if not os.path.isfile(jpath):
        raise CheckpointError(f"{path}: not a checkpoint directory (no checkpoint.json)")
    try:
        with open(jpath) as f:
            info = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{jpath}: invalid JSON: {e}") from None
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise CheckpointError(f"{jpath}: format {info.get('format')!r} version {info.get('version')!r}; "
                              f"expected {FORMAT!r} version {VERSION}")
    cfg = ModelConfig.from_dict(info["config"], source=f"{jpath}: config").validate(jpath)
    tok = Tokenizer.from_dict(info["tokenizer"], source=f"{jpath}: tokenizer")
    params = _load_npz(os.path.join(path, "model.npz"))
    want = param_shapes(cfg)
    if set(want) != set(params):
        missing, extra = sorted(set(want) - set(params)), sorted(set(params) - set(want))
        raise CheckpointError(f"{path}/model.npz: weights disagree with the config: "
                              f"missing {missing[:5]}, unexpected {extra[:5]}")
    for k, shape in want.items():
        if params[k].shape != tuple(shape):
            raise CheckpointError(f"{path}/model.npz: {k} has shape {params[k].shape}, config says {shape}")
    if not with_optim:
        return params, cfg, tok, info
    opath = os.path.join(path, "optim.npz")
    return params, cfg, tok, info, (_load_npz(opath) if os.path.exists(opath) else None)


def latest(run_dir):
    """Path of the newest complete checkpoint in a run directory, or None."""
    ptr = os.path.join(run_dir, "ckpt", "LATEST")
    if not os.path.exists(ptr):
        return None
    with open(ptr) as f:
        name = f.read().strip()
    path = os.path.join(run_dir, "ckpt", name)
    return path if os.path.isfile(os.path.join(path, "checkpoint.json")) else None


def save_in_run(run_dir, step, params, cfg, tok, meta, optim, keep=2):
    """Save ckpt/step_NNNNNN, point LATEST at it, keep the newest `keep` checkpoints."""
    cdir = os.path.join(run_dir, "ckpt")
    os.makedirs(cdir, exist_ok=True)
    name = f"step_{step:06d}"
    save(os.path.join(cdir, name), params, cfg, tok, meta, optim)
    write_atomic(os.path.join(cdir, "LATEST"), name.encode())
    steps = sorted(d for d in os.listdir(cdir) if d.startswith("step_") and "." not in d)
    for old in steps[:-keep]:
        shutil.rmtree(os.path.join(cdir, old), ignore_errors=True)
