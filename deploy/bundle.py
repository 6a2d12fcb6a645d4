"""A release bundle: everything a Pi needs to run the kiosk, as one tar stream with a sha256 manifest.

    runtime/                the runtime package (source only; numpy, msgpack, yaml, click, pil, gpiozero
                            and luma come from apt, see install.sh)
    model.msgpack           the compiled model
    kiosk.yaml              the kiosk config, its `model:` pointing at model.msgpack beside it
    tinyr1-kiosk.service    the systemd unit        install.sh   first-time setup (apt only)
    tinyr1                  a launcher: ./tinyr1 kiosk --config kiosk.yaml
    MANIFEST.sha256         `sha256sum -c` format, for every file above
The release id is the UTC time plus the first 8 hex digits of the manifest's own sha256; the same content
flashed twice within a second reuses the release already on the target (scripts.py).
"""
import hashlib
import io
import os
import tarfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(os.path.dirname(HERE), "runtime")
LAUNCHER = """#!/bin/sh
# Run tinyr1 from this release with the system's Python (Debian packages only).
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m runtime.cli "$@"
"""


def runtime_files():
    """-> {relative path in the bundle: bytes} for the runtime package's source and data files."""
    out = {}
    for dirpath, dirnames, files in os.walk(RUNTIME):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(files):
            if f.endswith((".py", ".yaml", ".txt")):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(RUNTIME))
                with open(path, "rb") as fh:
                    out[rel] = fh.read()
    return out


def build(cfg, model_path):
    """KioskConfig + model file -> (release id, {path: (bytes, mode)})."""
    with open(cfg.path, "rb") as f:
        raw = yaml.safe_load(f)
    raw["model"] = "model.msgpack"
    with open(model_path, "rb") as f:
        model = f.read()
    files = {rel: (data, 0o644) for rel, data in runtime_files().items()}
    files["model.msgpack"] = (model, 0o644)
    files["kiosk.yaml"] = (f"# flashed from {os.path.basename(cfg.path)}\n".encode()
                           + yaml.safe_dump(raw, sort_keys=False).encode(), 0o644)
    for name in ("tinyr1-kiosk.service", "install.sh"):
        with open(os.path.join(HERE, name), "rb") as f:
            files[name] = (f.read(), 0o755 if name.endswith(".sh") else 0o644)
    files["tinyr1"] = (LAUNCHER.encode(), 0o755)
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {rel}\n" for rel, (data, _) in sorted(files.items()))
    files["MANIFEST.sha256"] = (manifest.encode(), 0o644)
    rid = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + hashlib.sha256(manifest.encode()).hexdigest()[:8]
    return rid, files


def tar_bytes(files):
    """The bundle as an uncompressed tar (the model is int8 already; gzip would buy little on a Pi)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
