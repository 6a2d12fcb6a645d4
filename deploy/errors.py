"""Flashing's exceptions (one module, like runtime/errors.py, whose base they share)."""
from runtime.errors import TinyR1Error


class FlashError(TinyR1Error, RuntimeError):
    """Copying, verifying or switching a release on a target failed; the message names the target, the step,
    the path and the cause, and says which release is current."""
