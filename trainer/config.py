"""The model's hyperparameters: one flat dataclass with HuggingFace DeepseekV3Config field names.

Defaults are the bundled ~1M-parameter student. Recipes override fields by name; see
`trainer/recipe.py` for how unknown keys and wrong types are rejected.
"""
import math
import numbers
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Optional

from runtime.errors import ConfigError


@dataclass
class ModelConfig:
    vocab_size: int = 103                # tokenizer size (runtime/tokenizer.py)
    hidden_size: int = 128               # d
    intermediate_size: int = 256         # dense SwiGLU width of the first `first_k_dense_replace` layers
    moe_intermediate_size: int = 64      # F: width of one routed expert; shared width = F * n_shared_experts
    num_hidden_layers: int = 4
    num_attention_heads: int = 4         # H
    n_routed_experts: int = 8            # E
    num_experts_per_tok: int = 2         # K
    n_shared_experts: int = 1
    n_group: int = 1                     # expert groups for group-limited routing
    topk_group: int = 1                  # groups kept per token
    norm_topk_prob: bool = True          # renormalise the K chosen sigmoid scores to sum to 1
    routed_scaling_factor: float = 1.0
    first_k_dense_replace: int = 1       # the first k layers use a dense FFN instead of MoE
    kv_lora_rank: int = 32               # C: the latent that the KV cache stores
    q_lora_rank: Optional[int] = None    # None = plain q_proj
    qk_nope_head_dim: int = 16
    qk_rope_head_dim: int = 16           # decoupled RoPE part, one k_pe head shared by all heads
    v_head_dim: int = 32
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 256   # longest sequence (prompt + completion)
    tie_word_embeddings: bool = False
    num_nextn_predict_layers: int = 0    # 1 = a depth-1 multi-token-prediction (MTP) module
    initializer_range: float = 0.02

    # RoPE layout: the trainer always rotates half-split pairs (i, i + rope/2), as HF does with
    # rope_interleave=False. Interleaved checkpoints are permuted on import (trainer/hf.py).

    @property
    def qk_head_dim(self):
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    def is_moe_layer(self, i):
        return i >= self.first_k_dense_replace

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d, source="config"):
        return cls(**check_fields(cls, d, source))

    def validate(self, source="config"):
        check_ranges(self, MODEL_RANGES, source)

        def need(cond, field, why):
            if not cond:
                raise ConfigError(f"{source}: {field}={getattr(self, field)!r} is invalid: {why}")
        need(self.qk_rope_head_dim % 2 == 0, "qk_rope_head_dim", "must be even (RoPE rotates pairs)")
        need(self.num_experts_per_tok <= self.n_routed_experts, "num_experts_per_tok",
             f"must be <= n_routed_experts={self.n_routed_experts}")
        need(self.n_routed_experts % self.n_group == 0, "n_group",
             f"must divide n_routed_experts={self.n_routed_experts}")
        need(self.n_routed_experts // self.n_group >= 2 or self.n_group == 1, "n_group",
             "each group needs >= 2 experts (group score = sum of its top-2)")
        need(self.topk_group <= self.n_group, "topk_group", f"must be <= n_group={self.n_group}")
        need(self.num_experts_per_tok <= self.topk_group * (self.n_routed_experts // self.n_group),
             "num_experts_per_tok", "must fit in the experts of the kept groups")
        need(self.first_k_dense_replace <= self.num_hidden_layers, "first_k_dense_replace",
             f"must be <= num_hidden_layers={self.num_hidden_layers}")
        return self


# Interval of every numeric field ("[1, inf)": >= 1); the rule of check_ranges below.
MODEL_RANGES = {
    "vocab_size": "[1, inf)", "hidden_size": "[1, inf)", "intermediate_size": "[1, inf)",
    "moe_intermediate_size": "[1, inf)", "num_hidden_layers": "[1, inf)", "num_attention_heads": "[1, inf)",
    "n_routed_experts": "[1, inf)", "num_experts_per_tok": "[1, inf)", "n_shared_experts": "[0, inf)",
    "n_group": "[1, inf)", "topk_group": "[1, inf)", "routed_scaling_factor": "(0, inf)",
    "first_k_dense_replace": "[0, inf)", "kv_lora_rank": "[1, inf)", "q_lora_rank": "[1, inf)",
    "qk_nope_head_dim": "[1, inf)", "qk_rope_head_dim": "[2, inf)", "v_head_dim": "[1, inf)",
    "rope_theta": "(0, inf)", "rms_norm_eps": "(0, 1)", "max_position_embeddings": "[1, inf)",
    "num_nextn_predict_layers": "[0, 1]", "initializer_range": "(0, inf)",
}


def check_ranges(obj, ranges, source):
    """Check every int or float field of dataclass `obj` against its interval in `ranges` (a field
    missing from `ranges` is a KeyError: every number gets a range). None (an Optional off) passes."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is not None and not isinstance(value, (bool, str, list, dict)):
            check_number(value, ranges[f.name], source, f.name)


def check_number(value, interval, source, key):
    """Raise ConfigError unless `value` is a finite number in `interval`, written "(0, 1]", "[1, inf)"...

    The message names the source (the recipe file and section), the key, the value and the interval."""
    lo_bracket, lo, hi, hi_bracket = interval[0], *map(float, interval[1:-1].split(",")), interval[-1]
    integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ((integer or real and math.isfinite(value))                  # a huge int would overflow isfinite
          and (lo <= value if lo_bracket == "[" else lo < value)
          and (value <= hi if hi_bracket == "]" else value < hi))
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{source}: {key}={value!r} is invalid: must be {kind} {describe(interval)}".rstrip())


def describe(interval):
    """"[1, inf)" -> ">= 1"; "(0, 1]" -> "in (0, 1]"; "(-inf, inf)" -> ""."""
    lo, hi = (x.strip() for x in interval[1:-1].split(","))
    if (lo, hi) == ("-inf", "inf"):
        return ""
    if hi == "inf":
        return f"{'>=' if interval[0] == '[' else '>'} {lo}"
    return f"in {interval}"


def check_weights(weights, source, key, interval="[0, inf)"):
    """A {name: weight} mapping (family or reward weights): each weight a finite number in `interval`.
    -> the sum of the weights."""
    for name, w in weights.items():
        check_number(w, interval, source, f"{key}.{name}")
    return float(sum(weights.values()))


def check_fields(cls, d, source):
    """Return `d` if every key is a field of dataclass `cls` with a value of the field's type.

    Raises ConfigError naming the source, the key, and the allowed keys or the expected type.
    """
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping of {cls.__name__} fields, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    out = {}
    for key, value in d.items():
        if key not in known:
            raise ConfigError(f"{source}: unknown key {key!r}; allowed keys: {', '.join(sorted(known))}")
        out[key] = coerce(value, known[key], source)
    return out


def coerce(value, field, source):
    """Check `value` against the field's default type; ints are accepted for floats."""
    if field.default is not MISSING:
        default = field.default
    elif field.default_factory is not MISSING:
        default = field.default_factory()
    else:
        default = None
    name = field.name
    optional = default is None
    if value is None and optional:
        return None
    want = type(default) if default is not None else _optional_inner(field.type)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is not None and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
        raise ConfigError(f"{source}: key {name!r} must be {want.__name__}"
                          f"{' or null' if optional else ''}, got {value!r} ({type(value).__name__})")
    return value


def _optional_inner(tp):
    """The X of Optional[X] (dataclass field types may be strings or typing objects)."""
    for t in (int, float, str, bool, list, dict):
        if t.__name__ in str(tp):
            return t
    return None
