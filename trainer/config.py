"""The model's hyperparameters: one flat dataclass with HuggingFace DeepseekV3Config field names.

Defaults are the bundled ~1M-parameter student. Recipes override fields by name; unknown keys, wrong types
and numbers outside MODEL_RANGES are rejected by the one config-checking rule, runtime/checks.py.
"""
from dataclasses import asdict, dataclass
from typing import Optional

from runtime.checks import check_fields, check_range, check_ranges, invalid


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

        def need(cond, field, valid):
            if not cond:
                raise invalid(source, field, getattr(self, field), valid)
        E = self.n_routed_experts
        need(self.qk_rope_head_dim % 2 == 0, "qk_rope_head_dim", "even (RoPE rotates pairs)")
        need(self.num_experts_per_tok <= E, "num_experts_per_tok", f"<= n_routed_experts={E}")
        need(E % self.n_group == 0, "n_group", f"a divisor of n_routed_experts={E}")
        need(E // self.n_group >= 2 or self.n_group == 1, "n_group",
             f"1 or at most n_routed_experts / 2 = {E // 2} (a group's score is the sum of its top 2 experts)")
        need(self.topk_group <= self.n_group, "topk_group", f"<= n_group={self.n_group}")
        need(self.num_experts_per_tok <= self.topk_group * (E // self.n_group), "num_experts_per_tok",
             f"<= topk_group * n_routed_experts / n_group = {self.topk_group * (E // self.n_group)} "
             f"(the experts of the kept groups)")
        need(self.first_k_dense_replace <= self.num_hidden_layers, "first_k_dense_replace",
             f"<= num_hidden_layers={self.num_hidden_layers}")
        return self


# Interval of every numeric field ("[1, inf)": >= 1), checked by runtime.checks.check_ranges.
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


def check_weights(weights, source, key, interval="[0, inf)"):
    """A {name: weight} mapping (family or reward weights): each weight a finite number in `interval`.
    -> the sum of the weights."""
    for name, w in weights.items():
        check_range(w, interval, source, f"{key}.{name}")
    return float(sum(weights.values()))
