"""The exporters' and peers' exceptions (one module, like runtime/errors.py, whose base they share)."""
from runtime.errors import TinyR1Error


class ExportError(TinyR1Error, ValueError):
    """The model cannot be written in the requested format (unsupported option or shape)."""


class PeerError(TinyR1Error, RuntimeError):
    """An independent runtime (llama.cpp, onnxruntime, LiteRT) died or failed in its child process; the
    message names the engine and the signal ("llama.cpp died with SIGILL")."""
