"""tinyr1 runtime: load a compiled msgpack model and stream tokens from it (what the Pi installs).

Needs only numpy >= 1.24, msgpack >= 1.0.3 and pyyaml (Debian packages on Raspberry Pi OS bookworm).
"""
from runtime.errors import ModelFormatError, TinyR1Error, TokenizerError  # noqa: F401

__version__ = "0.1.0"                  # the one version: setup.py and both `tinyr1 --version` read it


def load(path):
    """Read, validate and prepare a compiled model file -> runtime.model.Model."""
    from runtime.model import load as _load
    return _load(path)
