"""Map weights between tinyr1 and a HuggingFace `DeepseekV3ForCausalLM` state dict.

Our names are HF's without `model.` and `.weight` (see trainer/model.py), so the mapping is a
rename plus two layout facts:
- RoPE: we rotate half-split pairs. An HF config with `rope_interleave=True` rotates adjacent pairs
  (2i, 2i+1) and emits [evens | odds]; gathering the rope rows of q (per head) and of kv_a's last
  `rope` rows as [0, 2, 4, ..., 1, 3, 5, ...] turns it into our layout (inverse on export).
- MTP: transformers' DeepseekV3ForCausalLM has no MTP module, so `mtp.*` is not exported; an
  imported model has num_nextn_predict_layers = 0.
Nothing here imports torch: state dicts are plain {name: numpy array}.
"""
import numpy as np

from runtime.errors import CheckpointError
from trainer.config import ModelConfig
from trainer.model import BUFFER_SUFFIX, param_shapes

HF_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size", "num_hidden_layers",
             "num_attention_heads", "n_routed_experts", "num_experts_per_tok", "n_shared_experts", "n_group",
             "topk_group", "norm_topk_prob", "routed_scaling_factor", "first_k_dense_replace", "kv_lora_rank",
             "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "rms_norm_eps",
             "max_position_embeddings", "tie_word_embeddings", "initializer_range")


def hf_name(ours):
    if ours == "lm_head":
        return "lm_head.weight"
    if ours.endswith(BUFFER_SUFFIX):                # HF keeps the bias inside the router module
        return "model." + ours.replace(BUFFER_SUFFIX, "gate." + BUFFER_SUFFIX)
    if ".mlp.experts." in ours:
        return "model." + ours                      # fused expert tensors have no `.weight`
    return f"model.{ours}.weight"


def rope_perm(r):
    """Index that turns interleaved rope rows into half-split ones: [0, 2, ..., r-2, 1, 3, ..., r-1]."""
    return np.concatenate([np.arange(0, r, 2), np.arange(1, r, 2)])


def _permute_rope_rows(w, cfg, kind, perm):
    """Reorder the rope rows of q (`q_proj` / `q_b_proj`, per head) or of `kv_a_proj_with_mqa`."""
    r, nope, C = cfg.qk_rope_head_dim, cfg.qk_nope_head_dim, cfg.kv_lora_rank
    w = w.copy()
    if kind == "q":
        heads = w.reshape(cfg.num_attention_heads, nope + r, -1)
        heads[:, nope:] = heads[:, nope:][:, perm]
        return heads.reshape(w.shape)
    w[C:] = w[C:][perm]
    return w


def config_to_hf(cfg):
    """Keyword arguments for transformers.DeepseekV3Config (our RoPE layout = rope_interleave False)."""
    kw = {f: getattr(cfg, f) for f in HF_FIELDS}
    kw.update(num_key_value_heads=cfg.num_attention_heads, rope_interleave=False, hidden_act="silu",
              rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta})
    return kw


def config_from_hf(d, source="config.json"):
    """Our ModelConfig from an HF config dict; rejects what we cannot represent."""
    if d.get("model_type", "deepseek_v3") != "deepseek_v3":
        raise CheckpointError(f"{source}: model_type {d.get('model_type')!r} is not 'deepseek_v3'")
    rope = d.get("rope_parameters") or {}
    for key in ("rope_parameters", "rope_scaling"):
        r = d.get(key) or {}
        kind = r.get("rope_type", r.get("type", "default"))
        if kind not in ("default", None):
            raise CheckpointError(f"{source}: {key}: rope type {kind!r} is not supported; only 'default'")
    if d.get("hidden_act", "silu") != "silu":
        raise CheckpointError(f"{source}: hidden_act {d.get('hidden_act')!r} is not supported; only 'silu'")
    kw = {f: d[f] for f in HF_FIELDS if f in d}
    kw["rope_theta"] = float(rope.get("rope_theta", d.get("rope_theta", 10000.0)))
    kw["num_nextn_predict_layers"] = 0
    return ModelConfig.from_dict(kw, source).validate(source)


def to_hf_state_dict(params, cfg):
    """Our params -> {HF name: array}, for a model built with config_to_hf(cfg). MTP is dropped."""
    return {hf_name(k): v for k, v in params.items() if not k.startswith("mtp.")}


def from_hf_state_dict(sd, cfg, rope_interleave, source="state dict"):
    """{HF name: array} -> our params. Every expected tensor must be present with the right shape;
    unexpected tensors are errors too (HF rotary buffers excepted)."""
    perm = rope_perm(cfg.qk_rope_head_dim)
    params = {}
    seen = set()
    for ours, shape in param_shapes(cfg).items():
        name = hf_name(ours)
        if name not in sd:
            raise CheckpointError(f"{source}: missing tensor {name!r} (for {ours}, shape {shape})")
        w = np.asarray(sd[name], dtype=np.float32)
        if w.shape != tuple(shape):
            raise CheckpointError(f"{source}: tensor {name!r} has shape {w.shape}, expected {tuple(shape)}")
        if rope_interleave and ours.endswith(("q_proj", "q_b_proj")):
            w = _permute_rope_rows(w, cfg, "q", perm)
        elif rope_interleave and ours.endswith("kv_a_proj_with_mqa"):
            w = _permute_rope_rows(w, cfg, "kv", perm)
        params[ours] = w
        seen.add(name)
    if cfg.tie_word_embeddings:
        seen.add("lm_head.weight")                  # HF lists the tied head; it is embed_tokens
    extra = [k for k in sd if k not in seen and "rotary_emb" not in k]
    if extra:
        raise CheckpointError(f"{source}: unexpected tensors {extra[:5]} (is this a DeepseekV3 checkpoint "
                              f"of the same config?)")
    return params
