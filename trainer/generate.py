"""Batched sampling with a KV cache, for evaluation, rejection sampling and GRPO rollouts.

Prompts in one call must have the same length (callers bucket by length), so every row shares
positions and no padding mask is needed. Rows stop independently at `</answer>` or `<eos>`.
Tokens are chosen by the runtime's sampler (runtime.generate.sample_rows): one prompt with a seed gives the
text that the compiled model gives on the Pi with that seed (tests/test_sampler.py).
"""
import numpy as np

from runtime.generate import sample_rows
from trainer.model import forward, head_forward


def new_kv(cfg, B, S, dtype):
    """Per layer (K (B, H, S, qk), V (B, H, S, v)) buffers for S positions."""
    H = cfg.num_attention_heads
    return [(np.zeros((B, H, S, cfg.qk_head_dim), dtype), np.zeros((B, H, S, cfg.v_head_dim), dtype))
            for _ in range(cfg.num_hidden_layers)]


def step_logits(params, cfg, ids, kv, pos):
    """ids (B, T) appended at `pos` -> logits of the last position (B, V)."""
    h, _ = forward(params, cfg, ids, kv=kv, pos=pos)
    out, _ = head_forward(params, cfg, h[:, -1:])
    return out


def generate(params, cfg, tok, prompts, max_new_tokens, temperature=0.0, seed=0, top_k=None, top_p=None):
    """prompts: list of id lists, all the same length. Returns a list of completion id lists
    (through the stop token, which is included). Every step draws one number per row from
    default_rng(seed), finished rows included, so a row's tokens depend on its place in the batch."""
    B, T0 = len(prompts), len(prompts[0])
    if any(len(p) != T0 for p in prompts):
        raise ValueError("generate() needs prompts of equal length; bucket them by length first")
    S = min(T0 + max_new_tokens, cfg.max_position_embeddings)
    rng = np.random.default_rng(seed)
    kv = new_kv(cfg, B, S, params["embed_tokens"].dtype)
    logits = step_logits(params, cfg, np.asarray(prompts), kv, 0)
    stops = np.array([tok.end_answer_id, tok.eos_id])
    out = np.zeros((B, S - T0), np.int64)
    done = np.zeros(B, bool)
    n = 0
    for pos in range(T0, S):
        nxt = sample_rows(logits, rng, temperature, top_k, top_p)
        nxt = np.where(done, tok.pad_id, nxt)
        out[:, n] = nxt
        n += 1
        done |= np.isin(nxt, stops)
        if done.all() or pos + 1 >= S:
            break
        logits = step_logits(params, cfg, nxt[:, None], kv, pos)
    result = []
    for row in out[:, :n]:
        ids = row.tolist()
        end = next((i for i, t in enumerate(ids) if t in (tok.end_answer_id, tok.eos_id)), len(ids) - 1)
        result.append(ids[:end + 1])
    return result


def generate_texts(params, cfg, tok, questions, max_new_tokens, temperature=0.0, seed=0, batch_size=64, top_k=None,
                   top_p=None):
    """Questions -> completion texts (special tokens kept, <eos> dropped), batched by prompt length; the
    first batch samples with `seed` itself."""
    prompts = [tok.encode_prompt(q) for q in questions]
    texts = [None] * len(questions)
    by_len = {}
    for i, pr in enumerate(prompts):
        by_len.setdefault(len(pr), []).append(i)
    for n_bucket, (_, rows) in enumerate(sorted(by_len.items())):
        for j in range(0, len(rows), batch_size):
            chunk = rows[j:j + batch_size]
            outs = generate(params, cfg, tok, [prompts[i] for i in chunk], max_new_tokens, temperature,
                            seed=seed + 7919 * n_bucket + j, top_k=top_k, top_p=top_p)
            for i, ids in zip(chunk, outs):
                texts[i] = tok.decode_completion(ids)
    return texts
