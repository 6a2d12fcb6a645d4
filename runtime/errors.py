"""Every exception tinyr1 raises on purpose, in one flat module.

Each inherits our base `TinyR1Error` and the matching built-in, so callers may catch either
(`except ValueError` keeps working for code that does not know tinyr1).
"""


class TinyR1Error(Exception):
    """Base of every error tinyr1 raises on purpose."""


class TokenizerError(TinyR1Error, ValueError):
    """Text the tokenizer cannot encode, or ids it cannot decode."""


class TaskError(TinyR1Error, ValueError):
    """A question that no task family can parse, or a bad task definition (e.g. the FAQ YAML)."""


class DatasetError(TinyR1Error, ValueError):
    """A user dataset (JSONL) line that is not a valid example; the message names file and line."""


class ConfigError(TinyR1Error, ValueError):
    """A recipe or kiosk config with an unknown key, wrong type or bad value; names file, key, value."""


class CheckpointError(TinyR1Error, ValueError):
    """A checkpoint directory that is missing files or disagrees with itself."""


class ModelFormatError(TinyR1Error, ValueError):
    """A compiled model file that is corrupt, hostile or of an unsupported version."""


class GenerationError(TinyR1Error, ValueError):
    """Generation options that do not fit the model (e.g. speculative decoding without an MTP head)."""


class ContextOverflowError(TinyR1Error, ValueError):
    """The prompt does not fit in the model's context window."""
