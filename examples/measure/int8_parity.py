"""README "Compile and run" numbers: float32 compile vs the trainer (prefill and absorbed-cache decoding),
int8 vs float32 greedy next-token agreement on 400 held-out traces, file size per parameter.

    python examples/measure/int8_parity.py [CHECKPOINT]       # default: trainer/checkpoints/student
"""
import sys

import numpy as np

from compiler.compile import compile_model, load_source
from runtime.loader import parse_document
from runtime.model import Model
from runtime.tasks import FAMILIES
from trainer.model import count_params, logits as trainer_logits
from trainer.data import sequence
from trainer.tasks import target

params, cfg, tok, _ = load_source(sys.argv[1] if len(sys.argv) > 1 else "trainer/checkpoints/student")
d32, _, _ = compile_model(params, cfg, tok, quant="float32")
d8, _, report = compile_model(params, cfg, tok, quant="int8")
f32, i8 = Model(parse_document(d32)), Model(parse_document(d8))
n = count_params(cfg)
print(f"parameters {n:,} ({count_params(cfg, True):,} active); int8 file {len(d8):,} bytes = {len(d8) / n:.3f} "
      f"bytes per parameter; float32 file {len(d32):,} bytes")
name, worst = max(report.items(), key=lambda kv: kv[1]["rel_error"])
print(f"worst int8 relative error {worst['rel_error']:.2e} ({name})")
rng = np.random.default_rng(99)
questions = [fam.sample(rng, "heldout").question for fam in FAMILIES.values() for _ in range(40)]
prefill = decode = 0.0
agree = total = used = 0
off = positions = 0                               # decode positions more than 1e-4 away from the trainer
for q in questions:
    ids, start = sequence(tok, q, target(q))                # a places model's question and answer marked
    ids, prompt = ids[:-1], ids[:start]                      # without <eos>, as before
    if len(ids) > cfg.max_position_embeddings:                                     # longer than the model's context
        continue
    used += 1
    ref = trainer_logits(params, cfg, np.array(ids)[None])[0]                      # (T, V)
    a = f32.logits(ids)
    prefill = max(prefill, float(np.abs(a - ref).max()))
    f32.reset()
    steps = [f32.forward(ids[:len(prompt)])[-1]] + [f32.step(t) for t in ids[len(prompt):-1]]
    diff = np.abs(np.stack(steps) - ref[len(prompt) - 1:-1]).max(-1)                 # (positions,)
    decode = max(decode, float(diff.max()))
    off, positions = off + int((diff > 1e-4).sum()), positions + len(diff)
    b = i8.logits(ids)
    agree += int((a[len(prompt) - 1:].argmax(-1) == b[len(prompt) - 1:].argmax(-1)).sum())
    total += len(ids) - len(prompt) + 1
print(f"float32 compile vs trainer: max |logit diff| prefill {prefill:.1e}, step decode {decode:.1e}; decode "
      f"beyond 1e-4 at {off} of {positions:,} positions (a router near-tie: two experts' scores equal to float "
      f"rounding, so prefill and step decoding may pick different experts, and the positions after it differ)")
print(f"int8 vs float32: greedy next token identical on {agree:,} of {total:,} positions "
      f"({used} held-out traces; {len(questions) - used} longer than the context left out)")
