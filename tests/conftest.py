import numpy as np
import pytest

from trainer.config import ModelConfig


def tiny_config(**over):
    """A model small enough for float64 finite differences, with every feature on by default."""
    base = dict(vocab_size=11, hidden_size=16, intermediate_size=24, moe_intermediate_size=8, num_hidden_layers=3,
                num_attention_heads=2, n_routed_experts=4, num_experts_per_tok=2, n_group=2, topk_group=1,
                kv_lora_rank=6, q_lora_rank=5, qk_nope_head_dim=4, qk_rope_head_dim=4, v_head_dim=3,
                max_position_embeddings=24, num_nextn_predict_layers=1, routed_scaling_factor=1.7,
                initializer_range=0.3)
    base.update(over)
    return ModelConfig(**base).validate()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
