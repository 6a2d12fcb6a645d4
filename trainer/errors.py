"""The trainer's exceptions (one module, like runtime/errors.py, whose base they share)."""
from runtime.errors import TinyR1Error


class DivergenceError(TinyR1Error, FloatingPointError):
    """A training run whose loss, gradient norm or weights became NaN or inf. The run stops before it
    can write a checkpoint; the message names the step, the run directory and the last good checkpoint."""
