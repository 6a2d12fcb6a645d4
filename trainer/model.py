"""The tiny DeepSeek-V3 decoder: parameters, forward with loss, and backward.

Parameters live in one flat dict whose names are HF's state-dict names without the `model.` prefix
and `.weight` suffix (`layers.1.self_attn.kv_b_proj`, `layers.1.mlp.experts.gate_up_proj`, `norm`,
`lm_head`), so trainer, compiler, exports and HF checkpoints all say the same thing.
The depth-1 MTP module lives under `mtp.` (enorm, hnorm, eh_proj, block.*, norm).

Pre-norm block:  h = x + MLA(norm_in(x));  out = h + FFN(norm_post(h))
MTP:  h'_i = eh_proj([enorm(Emb(t_{i+1})); hnorm(h_i)]) -> block -> norm -> shared head -> t_{i+2}
"""
import numpy as np

from trainer.layers import (cross_entropy, distill_kl, linear_backward, log_softmax, rmsnorm_backward,
                            rmsnorm_forward, rope_tables, swiglu_backward, swiglu_forward)
from trainer.mla import mla_backward, mla_forward
from trainer.moe import moe_backward, moe_forward, seq_aux_terms

BUFFER_SUFFIX = "e_score_correction_bias"  # updated by the balancing rule, never by gradients


def layer_shapes(cfg, moe):
    d, H = cfg.hidden_size, cfg.num_attention_heads
    C, r = cfg.kv_lora_rank, cfg.qk_rope_head_dim
    shapes = {"input_layernorm": (d,), "post_attention_layernorm": (d,)}
    a = "self_attn."
    if cfg.q_lora_rank is None:
        shapes[a + "q_proj"] = (H * cfg.qk_head_dim, d)
    else:
        shapes.update({a + "q_a_proj": (cfg.q_lora_rank, d), a + "q_a_layernorm": (cfg.q_lora_rank,),
                       a + "q_b_proj": (H * cfg.qk_head_dim, cfg.q_lora_rank)})
    shapes.update({a + "kv_a_proj_with_mqa": (C + r, d), a + "kv_a_layernorm": (C,),
                   a + "kv_b_proj": (H * (cfg.qk_nope_head_dim + cfg.v_head_dim), C),
                   a + "o_proj": (d, H * cfg.v_head_dim)})
    if not moe:
        n = cfg.intermediate_size
        shapes.update({"mlp.gate_proj": (n, d), "mlp.up_proj": (n, d), "mlp.down_proj": (d, n)})
    else:
        E, F = cfg.n_routed_experts, cfg.moe_intermediate_size
        shapes.update({"mlp.gate": (E, d), "mlp." + BUFFER_SUFFIX: (E,),
                       "mlp.experts.gate_up_proj": (E, 2 * F, d), "mlp.experts.down_proj": (E, d, F)})
        if cfg.n_shared_experts:
            n = F * cfg.n_shared_experts
            shapes.update({"mlp.shared_experts.gate_proj": (n, d), "mlp.shared_experts.up_proj": (n, d),
                           "mlp.shared_experts.down_proj": (d, n)})
    return shapes


def param_shapes(cfg):
    """Every parameter's name and shape, in a fixed order."""
    V, d = cfg.vocab_size, cfg.hidden_size
    shapes = {"embed_tokens": (V, d)}
    for i in range(cfg.num_hidden_layers):
        for k, s in layer_shapes(cfg, cfg.is_moe_layer(i)).items():
            shapes[f"layers.{i}.{k}"] = s
    shapes["norm"] = (d,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head"] = (V, d)
    if cfg.num_nextn_predict_layers:
        shapes.update({"mtp.enorm": (d,), "mtp.hnorm": (d,), "mtp.eh_proj": (d, 2 * d), "mtp.norm": (d,)})
        for k, s in layer_shapes(cfg, cfg.is_moe_layer(cfg.num_hidden_layers)).items():
            shapes["mtp.block." + k] = s
    return shapes


def init_params(cfg, seed, dtype=np.float32):
    """HF init: normal(0, initializer_range) for matrices, ones for norms, zeros for the bias buffer."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith(BUFFER_SUFFIX):
            params[name] = np.zeros(shape, dtype)
        elif len(shape) == 1:
            params[name] = np.ones(shape, dtype)
        else:
            params[name] = rng.normal(0.0, cfg.initializer_range, shape).astype(dtype)
    return params


def lm_head(params, cfg):
    return params["embed_tokens"] if cfg.tie_word_embeddings else params["lm_head"]


def count_params(cfg, active=False):
    """Parameter count (buffers excluded); active=True counts only K routed experts per MoE layer."""
    total = 0
    for name, shape in param_shapes(cfg).items():
        if name.endswith(BUFFER_SUFFIX):
            continue
        n = int(np.prod(shape))
        if active and ".mlp.experts." in name:
            n = n * cfg.num_experts_per_tok // cfg.n_routed_experts
        total += n
    return total


# ---------------------------------------------------------------- one decoder block
def block_forward(p, pre, cfg, moe, x, rope, kv=None, pos=0, token_mask=None):
    """x (B, T, d) -> (B, T, d)."""
    B, T, d = x.shape
    eps = cfg.rms_norm_eps
    xn, c_in = rmsnorm_forward(x, p[pre + "input_layernorm"], eps)
    a, c_attn = mla_forward(p, pre + "self_attn.", cfg, xn, *rope, kv=kv, pos=pos)
    h = x + a
    hn, c_post = rmsnorm_forward(h, p[pre + "post_attention_layernorm"], eps)
    hn2 = hn.reshape(B * T, d)
    if moe:
        f, c_ffn = moe_forward(p, pre + "mlp.", cfg, hn2, token_mask)
    else:
        f, c_ffn = swiglu_forward(hn2, *(p[pre + "mlp." + n] for n in ("gate_proj", "up_proj", "down_proj")))
    return h + f.reshape(B, T, d), (c_in, c_attn, c_post, c_ffn, moe)


def block_backward(dout, cache, p, pre, cfg, grads, aux_alpha=0.0):
    c_in, c_attn, c_post, c_ffn, moe = cache
    B, T, d = dout.shape
    dflat = dout.reshape(B * T, d)
    if moe:
        dhn = moe_backward(dflat, c_ffn, p, pre + "mlp.", cfg, grads, aux_alpha)
    else:
        names = [pre + "mlp." + n for n in ("gate_proj", "up_proj", "down_proj")]
        dhn, *dWs = swiglu_backward(dflat, c_ffn, *(p[n] for n in names))
        for n, g in zip(names, dWs):
            grads[n] = grads.get(n, 0) + g
    dh = dout + rmsnorm_backward(dhn.reshape(B, T, d), c_post, grads, pre + "post_attention_layernorm")
    dxn = mla_backward(dh, c_attn, p, pre + "self_attn.", cfg, grads)
    return dh + rmsnorm_backward(dxn, c_in, grads, pre + "input_layernorm")


# ---------------------------------------------------------------- whole model
def forward(params, cfg, ids, kv=None, pos=0, token_mask=None):
    """ids (B, T) int -> final hidden states before the last norm (B, T, d), and caches.

    `kv` is a per-layer list of (K, V) buffers for generation (trainer/generate.py)."""
    B, T = ids.shape
    if pos + T > cfg.max_position_embeddings:
        raise ValueError(f"sequence of {pos + T} tokens exceeds max_position_embeddings="
                         f"{cfg.max_position_embeddings}")
    dtype = params["embed_tokens"].dtype
    rope = rope_tables(np.arange(pos, pos + T), cfg.qk_rope_head_dim, cfg.rope_theta, dtype)
    x = params["embed_tokens"][ids]
    caches = []
    for i in range(cfg.num_hidden_layers):
        x, c = block_forward(params, f"layers.{i}.", cfg, cfg.is_moe_layer(i), x, rope,
                             None if kv is None else kv[i], pos, token_mask)
        caches.append(c)
    return x, (ids, rope, caches)


def head_forward(params, cfg, h, norm_name="norm"):
    """h (B, T, d) -> logits (B*T, V)."""
    hn, c = rmsnorm_forward(h, params[norm_name], cfg.rms_norm_eps)
    flat = hn.reshape(-1, hn.shape[-1])
    return flat @ lm_head(params, cfg).T, (flat, c)


def loss_and_grads(params, cfg, tokens, mask, mtp_lambda=0.3, aux_alpha=0.0, need_grads=True,
                   teacher_probs=None, kl_weight=0.0):
    """Next-token loss on positions where mask is 1, plus the MTP loss when the model has MTP.

    tokens (B, T+1) int: inputs tokens[:, :-1], targets tokens[:, 1:]; mask (B, T) float.
    Distillation: with teacher_probs (B*T, V), the next-token loss becomes
    (1 - kl_weight) * CE + kl_weight * KL(teacher || student).
    Returns (loss, grads or None, stats) with stats = {"ce", "kl", "mtp_ce", "load": [per MoE layer (E,)]}."""
    ids, targets = tokens[:, :-1], tokens[:, 1:]
    B, T = ids.shape
    token_mask = tokens[:, :-1] != 0 if aux_alpha > 0 else None
    h, (ids_, rope, caches) = forward(params, cfg, ids, token_mask=token_mask)
    logits, c_head = head_forward(params, cfg, h)
    ce, dlogits = cross_entropy(logits, targets.reshape(-1), mask.reshape(-1).astype(logits.dtype))
    stats = {"ce": ce, "load": [c[3]["load"] for c in caches if c[4]]}
    loss = ce
    if teacher_probs is not None and kl_weight > 0:
        kl, dkl = distill_kl(logits, teacher_probs, mask.reshape(-1).astype(logits.dtype))
        loss = (1 - kl_weight) * ce + kl_weight * kl
        dlogits = (1 - kl_weight) * dlogits + kl_weight * dkl
        stats["kl"] = kl
    if aux_alpha > 0:
        for c in caches:
            if c[4]:
                loss += aux_alpha * seq_aux_terms(c[3]["s"], c[3]["idx"], token_mask, cfg)[0]
    use_mtp = cfg.num_nextn_predict_layers > 0 and T >= 3
    if use_mtp:
        mtp_ce, mtp_back, mtp_load = mtp_forward(params, cfg, h, tokens, mask, rope, mtp_lambda)
        loss += mtp_lambda * mtp_ce
        stats["mtp_ce"] = mtp_ce
        if mtp_load is not None:
            stats["load"].append(mtp_load)                     # after the main layers, like the biases
    if not need_grads:
        return loss, None, stats
    grads = {}
    dh = head_backward(dlogits, c_head, params, cfg, grads, "norm").reshape(B, T, -1)
    if use_mtp:
        dh += mtp_back(grads)
    trunk_backward(dh, ids, caches, params, cfg, grads, aux_alpha)
    return loss, grads, stats


def trunk_backward(dh, ids, caches, params, cfg, grads, aux_alpha=0.0):
    """dh (B, T, d) at the final hidden states -> parameter gradients of every block and the embedding."""
    for i in reversed(range(cfg.num_hidden_layers)):
        dh = block_backward(dh, caches[i], params, f"layers.{i}.", cfg, grads, aux_alpha)
    embed_backward(dh, ids, params, grads)


def token_logprobs(params, cfg, tokens, dlogp_fn=None):
    """log p(tokens[:, t+1] | tokens[:, :t+1]) for every t: (B, T) for tokens (B, T+1).

    With `dlogp_fn(logp) -> w (B, T)`, the derivative of some loss with respect to each token's
    log-probability, also backpropagates and returns (logp, grads, loads per MoE layer); the
    gradient of logp wrt the logits is onehot - softmax, so dlogits = w * (onehot - softmax).
    This is how GRPO and distillation drive the same backward pass as SFT."""
    ids, targets = tokens[:, :-1], tokens[:, 1:]
    B, T = ids.shape
    h, (_, _, caches) = forward(params, cfg, ids)
    logits, c_head = head_forward(params, cfg, h)
    lsm = log_softmax(logits)                                          # (B*T, V)
    rows = np.arange(B * T)
    logp = lsm[rows, targets.reshape(-1)].reshape(B, T)
    if dlogp_fn is None:
        return logp
    w = dlogp_fn(logp).reshape(-1, 1).astype(logits.dtype)
    dlogits = -np.exp(lsm) * w
    dlogits[rows, targets.reshape(-1)] += w[:, 0]
    grads = {}
    dh = head_backward(dlogits, c_head, params, cfg, grads, "norm").reshape(B, T, -1)
    trunk_backward(dh, ids, caches, params, cfg, grads)
    return logp, grads, [c[3]["load"] for c in caches if c[4]]


def head_backward(dlogits, c_head, params, cfg, grads, norm_name):
    flat, c_norm = c_head
    W = lm_head(params, cfg)
    name = "embed_tokens" if cfg.tie_word_embeddings else "lm_head"
    dflat = linear_backward(dlogits, flat, W, grads, name)
    return rmsnorm_backward(dflat.reshape(c_norm[0].shape), c_norm, grads, norm_name)


def embed_backward(dx, ids, params, grads):
    g = np.zeros_like(params["embed_tokens"])
    np.add.at(g, ids.reshape(-1), dx.reshape(-1, dx.shape[-1]))
    grads["embed_tokens"] = grads.get("embed_tokens", 0) + g


def mtp_projection(e, hh, W):
    """eh_proj([e ; hh]): e, hh (B, T, d), W (d, 2d) -> (B, T, d), and the concatenation (B*T, 2d)."""
    B, T, d = e.shape
    cat = np.concatenate([e, hh], axis=-1).reshape(B * T, 2 * d)
    return (cat @ W.T).reshape(B, T, d), cat


def mtp_block(params, cfg, h, nxt, rope):
    """The depth-1 MTP trunk. h (B, T, d): main-model states before the final norm at positions p..p+T-1;
    nxt (B, T): the token after each of them -> (B, T, d) states that predict the token after nxt."""
    eps = cfg.rms_norm_eps
    e, c_e = rmsnorm_forward(params["embed_tokens"][nxt], params["mtp.enorm"], eps)
    hh, c_h = rmsnorm_forward(h, params["mtp.hnorm"], eps)
    x, cat = mtp_projection(e, hh, params["mtp.eh_proj"])
    y, c_blk = block_forward(params, "mtp.block.", cfg, cfg.is_moe_layer(cfg.num_hidden_layers), x, rope)
    return y, (c_e, c_h, cat, c_blk)


def mtp_logits(params, cfg, h, nxt, pos=0):
    """Inference form of MTP (what the compiler traces and the runtime drafts with): logits (B, T, V) of
    the token two places after each position, from h (B, T, d) and the next tokens nxt (B, T)."""
    T = nxt.shape[1]
    rope = rope_tables(np.arange(pos, pos + T), cfg.qk_rope_head_dim, cfg.rope_theta, h.dtype)
    y, _ = mtp_block(params, cfg, h, nxt, rope)
    out, _ = head_forward(params, cfg, y, "mtp.norm")
    return out.reshape(nxt.shape[0], T, -1)


def mtp_forward(params, cfg, h, tokens, mask, rope, mtp_lambda):
    """Depth-1 MTP on positions 0..T-2: predicts tokens[:, i+2]. Returns CE and a backward closure."""
    B, T, d = h.shape
    nxt = tokens[:, 1:T]                                             # t_{i+1}, (B, T-1)
    y, (c_e, c_h, cat, c_blk) = mtp_block(params, cfg, h[:, :T - 1], nxt, (rope[0][:T - 1], rope[1][:T - 1]))
    logits, c_head = head_forward(params, cfg, y, "mtp.norm")
    # position i targets t_{i+2} = tokens[:, i+2], counted when the main target t_{i+2} is (mask[:, i+1])
    tgt = tokens[:, 2:T + 1]                                         # (B, T-1)
    m = mask[:, 1:T].astype(logits.dtype)
    ce, dlogits = cross_entropy(logits, tgt.reshape(-1), m.reshape(-1))

    def backward(grads):
        dy = head_backward(dlogits * mtp_lambda, c_head, params, cfg, grads, "mtp.norm").reshape(B, T - 1, d)
        dx = block_backward(dy, c_blk, params, "mtp.block.", cfg, grads).reshape(B * (T - 1), d)
        dcat = linear_backward(dx, cat, params["mtp.eh_proj"], grads, "mtp.eh_proj").reshape(B, T - 1, 2 * d)
        de = rmsnorm_backward(dcat[..., :d], c_e, grads, "mtp.enorm")
        embed_backward(de, nxt, params, grads)
        dh = np.zeros_like(h)
        dh[:, :T - 1] = rmsnorm_backward(dcat[..., d:], c_h, grads, "mtp.hnorm")
        return dh

    return ce, backward, (c_blk[3]["load"] if c_blk[4] else None)


def logits(params, cfg, ids):
    """Full-sequence logits (B, T, V) for ids (B, T): the reference every other engine must match."""
    h, _ = forward(params, cfg, ids)
    out, _ = head_forward(params, cfg, h)
    return out.reshape(ids.shape[0], ids.shape[1], -1)
