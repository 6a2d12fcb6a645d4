"""The model's hyperparameters: one flat dataclass with HuggingFace DeepseekV3Config field names.

Defaults are the bundled ~1M-parameter student. Recipes override fields by name; see
`trainer/recipe.py` for how unknown keys and wrong types are rejected.
"""
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
        def need(cond, field, why):
            if not cond:
                raise ConfigError(f"{source}: {field}={getattr(self, field)!r} is invalid: {why}")
        for f in ("vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
                  "num_hidden_layers", "num_attention_heads", "n_routed_experts", "num_experts_per_tok",
                  "n_group", "topk_group", "kv_lora_rank", "qk_nope_head_dim", "v_head_dim",
                  "max_position_embeddings"):
            need(getattr(self, f) > 0, f, "must be positive")
        need(self.qk_rope_head_dim > 0 and self.qk_rope_head_dim % 2 == 0, "qk_rope_head_dim",
             "must be a positive even number (RoPE rotates pairs)")
        need(self.num_experts_per_tok <= self.n_routed_experts, "num_experts_per_tok",
             f"must be <= n_routed_experts={self.n_routed_experts}")
        need(self.n_routed_experts % self.n_group == 0, "n_group",
             f"must divide n_routed_experts={self.n_routed_experts}")
        need(self.n_routed_experts // self.n_group >= 2 or self.n_group == 1, "n_group",
             "each group needs >= 2 experts (group score = sum of its top-2)")
        need(self.topk_group <= self.n_group, "topk_group", f"must be <= n_group={self.n_group}")
        need(self.num_experts_per_tok <= self.topk_group * (self.n_routed_experts // self.n_group),
             "num_experts_per_tok", "must fit in the experts of the kept groups")
        need(0 <= self.first_k_dense_replace <= self.num_hidden_layers, "first_k_dense_replace",
             f"must be in 0..num_hidden_layers={self.num_hidden_layers}")
        need(self.n_shared_experts >= 0, "n_shared_experts", "must be >= 0")
        need(self.q_lora_rank is None or self.q_lora_rank > 0, "q_lora_rank", "must be None or positive")
        need(self.num_nextn_predict_layers in (0, 1), "num_nextn_predict_layers", "must be 0 or 1")
        return self


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
