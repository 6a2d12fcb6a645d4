"""Training-speed peer: one SFT step of our numpy model vs transformers' DeepseekV3ForCausalLM.

Same config, same batch, same loss (completion-masked next-token CE), AdamW, one thread each,
measured alternately in the same run; prints ms per step and the ratio.
    python -m trainer.train_speed [--batch 16] [--seq 96] [--repeat 5]

One of three benchmarks, one per stage (runtime/speed.py says why): this one times training, in one process
(the two engines alternate, so the machine's noise hits both), pinned to one thread before numpy loads.
"""
import os
import sys

from runtime.speed import ONE_THREAD

if os.environ.get("OPENBLAS_NUM_THREADS") != "1" and __name__ == "__main__":
    os.environ.update(ONE_THREAD)
    os.execv(sys.executable, [sys.executable, "-m", "trainer.train_speed", *sys.argv[1:]])

import time  # noqa: E402

import numpy as np  # noqa: E402

from runtime.tokenizer import Tokenizer  # noqa: E402
from trainer.config import ModelConfig  # noqa: E402
from trainer.data import Mixture  # noqa: E402
from trainer.hf import config_to_hf, to_hf_state_dict  # noqa: E402
from trainer.model import BUFFER_SUFFIX, count_params, init_params, loss_and_grads  # noqa: E402
from trainer.optim import AdamW, clip_grads  # noqa: E402
from trainer.recipe import SFTConfig, load_recipe  # noqa: E402


def ours_step(params, cfg, tokens, mask, opt):
    loss, grads, _ = loss_and_grads(params, cfg, tokens, mask)
    clip_grads(grads, 1.0)
    opt.step(params, grads, 1e-3)
    return loss


def torch_setup(params, cfg):
    import torch
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
    torch.set_num_threads(1)
    model = DeepseekV3ForCausalLM(DeepseekV3Config(**config_to_hf(cfg), attn_implementation="eager"))
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in to_hf_state_dict(params, cfg).items()}
    model.load_state_dict(sd, strict=False)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
    return model, opt


def torch_step(model, opt, tokens, mask):
    import torch
    ids = torch.from_numpy(tokens[:, :-1])
    tgt = torch.from_numpy(tokens[:, 1:]).reshape(-1)
    m = torch.from_numpy(mask).reshape(-1)
    logits = model(ids).logits.reshape(-1, model.config.vocab_size)
    nll = torch.nn.functional.cross_entropy(logits, tgt, reduction="none")
    loss = (nll * m).sum() / m.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


def main(batch=16, seq=96, repeat=5, recipe=None):
    cfg = load_recipe(recipe).model if recipe else ModelConfig()
    cfg.num_nextn_predict_layers = 0                     # transformers' model has no MTP module: same network
    tok = Tokenizer()
    cfg.vocab_size = tok.vocab_size
    params = init_params(cfg, 0)
    tokens, mask = Mixture(tok, seed=0).batch(0, batch)
    tokens, mask = _fit(tokens, mask, seq, tok.pad_id)
    opt = AdamW(params, [k for k in params if not k.endswith(BUFFER_SUFFIX)], weight_decay=SFTConfig.weight_decay)
    model, topt = torch_setup(params, cfg)
    for _ in range(2):                                   # warm-up both
        ours_step(params, cfg, tokens, mask, opt)
        torch_step(model, topt, tokens, mask)
    t_ours, t_torch = [], []
    for _ in range(repeat):                              # alternate so load noise hits both
        t = time.perf_counter()
        ours_step(params, cfg, tokens, mask, opt)
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        torch_step(model, topt, tokens, mask)
        t_torch.append(time.perf_counter() - t)
    o, p = np.median(t_ours), np.median(t_torch)
    print(f"model: {count_params(cfg):,} params ({count_params(cfg, True):,} active), batch {batch} x {seq} tokens, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, torch threads=1")
    print(f"tinyr1 numpy          : {o * 1000:8.1f} ms/step  {batch * seq / o:9.0f} tokens/s")
    print(f"transformers (torch)  : {p * 1000:8.1f} ms/step  {batch * seq / p:9.0f} tokens/s")
    print(f"ratio (torch / tinyr1): {p / o:.2f}x  ({'faster' if o < p else 'slower'} than the peer)")
    return {"ours_ms": o * 1000, "torch_ms": p * 1000, "ratio": p / o}


def _fit(tokens, mask, seq, pad):
    """Pad or cut the batch to exactly seq + 1 tokens so both engines see the same shape."""
    B, L = tokens.shape
    if L >= seq + 1:
        return tokens[:, :seq + 1].copy(), mask[:, :seq].copy()
    t = np.full((B, seq + 1), pad, tokens.dtype)
    m = np.zeros((B, seq), mask.dtype)
    t[:, :L], m[:, :L - 1] = tokens, mask
    return t, m


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16, help="sequences per step")
    ap.add_argument("--seq", type=int, default=96, help="tokens per sequence")
    ap.add_argument("--repeat", type=int, default=5, help="timed steps per engine")
    ap.add_argument("--recipe", default=None, help="take the model config from this recipe")
    a = ap.parse_args()
    main(a.batch, a.seq, a.repeat, a.recipe)
