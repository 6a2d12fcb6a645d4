"""The compiler's exceptions (one module, like runtime/errors.py, whose base they share)."""
from runtime.errors import TinyR1Error


class CompileError(TinyR1Error, ValueError):
    """The source cannot be compiled (bad graph, unsupported config)."""
