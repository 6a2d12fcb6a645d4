"""Generation: the sampler, the token loops (sampled, and greedy with MTP self-speculation), and the
streaming text generator that `Model.generate` and the kiosk use.

Self-speculative decoding (greedy, models with an MTP head, `speculative=True`): the MTP head drafts
the token after the next one; the next main pass feeds [next, draft] as two positions at once and keeps
the draft when the main model's greedy choice equals it, so an accepted draft yields two tokens for one
pass. A rejected draft's cache row is simply overwritten later. The MTP head keeps its own latent cache
of (hidden state, next token) pairs for every position. It is off by default: in this runtime a pass
over two positions costs nearly two single-token steps (the time goes to per-call overhead, and the two
positions' experts differ), so even ~95% accepted drafts do not pay for the draft head (README: Interop and speed).
"""
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from runtime.errors import GenerationError
from runtime.errors import ContextOverflowError


@dataclass
class Answer:
    question: str
    text: str              # the whole completion, tags included
    thinking: str
    answer: str
    tokens: int            # generated tokens
    stop: str              # "answer", "eos" or "length"
    prefill_seconds: float
    decode_seconds: float

    @property
    def tokens_per_second(self):
        return self.tokens / max(self.prefill_seconds + self.decode_seconds, 1e-9)


SEED_MAX = 2 ** 32 - 1     # a uint32, as llama.cpp's and most samplers' seeds: a seed means the same everywhere


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_options(temperature=0.0, top_k=None, top_p=None, seed=None, max_new_tokens=None, vocab_size=None):
    """Raise GenerationError unless every sampling option is in its range. The message starts with the
    option and its value ("temperature=nan: must be ..."), so a caller can prefix a file and section.
    vocab_size: the model's vocabulary, top_k's upper bound (None: not checked against one)."""
    def bad(name, value, valid):
        raise GenerationError(f"{name}={value!r:.40}: must be {valid}")
    if not (isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
            and math.isfinite(temperature) and temperature >= 0):
        bad("temperature", temperature, "a finite number >= 0 (0 = greedy)")
    if top_k is not None and not (_is_int(top_k) and 1 <= top_k <= (vocab_size or top_k)):
        upto = f" to {vocab_size} (the vocabulary size)" if vocab_size else " or more"
        bad("top_k", top_k, f"an integer from 1{upto}, or None for no limit")
    if top_p is not None and not (isinstance(top_p, numbers.Real) and not isinstance(top_p, bool)
                                  and 0 < top_p <= 1):                # NaN fails the comparison
        bad("top_p", top_p, "a number in (0, 1] (1 = no limit), or None")
    if seed is not None and not (_is_int(seed) and 0 <= seed <= SEED_MAX):
        bad("seed", seed, f"an integer in 0..{SEED_MAX} (2**32 - 1), or None for a fresh random seed")
    if max_new_tokens is not None and not (_is_int(max_new_tokens) and max_new_tokens >= 1):
        bad("max_new_tokens", max_new_tokens, "an integer >= 1, or None for the model's default")


def check_prompt(prompt):
    """Raise GenerationError unless the prompt is text with something in it."""
    if not isinstance(prompt, str):
        raise GenerationError(f"prompt={prompt!r:.40}: must be a string (the question)")
    if not prompt.strip():
        raise GenerationError(f"prompt={prompt!r:.40}: is empty; ask a question, e.g. \"What is 47+38?\"")


def sample(logits, rng, temperature, top_k, top_p):
    """logits (V,) -> token id; greedy (argmax, first of ties) when temperature is 0."""
    if not temperature:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    if top_k:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        keep = np.cumsum(p[order]) - p[order] < top_p        # the smallest set reaching top_p
        mask = np.zeros_like(p, bool)
        mask[order[keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return int(min(np.searchsorted(np.cumsum(p), rng.random(), side="right"), len(p) - 1))


def sampled_tokens(model, ids, rng, temperature, top_k, top_p):
    """Prefill, then one token per decode step. The next step runs only when the consumer asks."""
    logits = model.forward(ids)[-1]
    while True:
        t = sample(logits, rng, temperature, top_k, top_p)
        yield t
        logits = model.step(t)


def speculative_tokens(model, ids, counts):
    """Greedy tokens, drafting one ahead with the MTP head. counts["drafted"/"accepted"] are updated."""
    logits, hidden = model.forward(ids, all_logits=True, hidden=True)
    t = int(np.argmax(logits[-1]))
    d = int(np.argmax(model.draft(hidden, ids[1:] + [t], 0)[-1]))       # MTP cache for positions 0..n-1
    yield t
    while True:
        pos = model.pos                                                    # where t goes
        if pos + 2 > model.max_positions:                                  # no room to verify a draft
            yield from greedy_tokens_from(model, t)
            return
        logits, hidden = model.forward([t, d], all_logits=True, hidden=True)
        a = int(np.argmax(logits[0]))
        counts["drafted"] += 1
        if a == d:
            counts["accepted"] += 1
            b = int(np.argmax(logits[1]))
            nxt = int(np.argmax(model.draft(hidden, [d, b], pos)[-1]))
            yield d
            yield b
            t, d = b, nxt
        else:
            model.pos = pos + 1                                            # forget the draft's cache row
            nxt = int(np.argmax(model.draft(hidden[:1], [a], pos)[-1]))
            yield a
            t, d = a, nxt


def greedy_tokens_from(model, t):
    """Greedy single-token steps after token t (the end of a speculative run near the context limit)."""
    while True:
        t = int(np.argmax(model.step(t)))
        yield t


def generate(model, prompt, *, max_new_tokens=None, temperature=0.0, top_k=None, top_p=None, seed=None,
             stats=None, speculative=False):
    """-> an iterator of text pieces as they are decoded; stops after `</answer>`, before `<eos>`, or at the
    limit. The options and the prompt are checked here, before the iterator is returned (GenerationError,
    TokenizerError, ContextOverflowError).

    speculative: draft with the MTP head (greedy decoding and a model with one); same text, see above.
    `stats`, if a dict, receives prefill_seconds (to the first token), decode_seconds, tokens, stop,
    prompt_tokens, and drafted/accepted for speculative decoding."""
    check_options(temperature, top_k, top_p, seed, max_new_tokens, model.tokenizer.vocab_size)
    check_prompt(prompt)
    ids = model.encode_prompt(prompt)
    if len(ids) >= model.max_positions:
        raise ContextOverflowError(f"the prompt is {len(ids)} tokens; the model's context holds "
                                   f"{model.max_positions}, leaving no room to answer")
    if max_new_tokens is None:
        max_new_tokens = int(model.generation.get("max_new_tokens", 200))
    max_new_tokens = min(max_new_tokens, model.max_positions - len(ids))
    if speculative and (temperature or not model.has_mtp):
        raise GenerationError(f"speculative decoding needs greedy decoding (temperature 0, got {temperature}) and a "
                              f"model with an MTP head ({'has one' if model.has_mtp else 'this one has none'})")
    return _decode(model, ids, max_new_tokens, temperature, top_k, top_p, seed, stats, speculative)


def _decode(model, ids, max_new_tokens, temperature, top_k, top_p, seed, stats, speculative):
    """generate's loop, over checked options."""
    tok = model.tokenizer
    counts = {"drafted": 0, "accepted": 0}
    model.reset()
    source = speculative_tokens(model, ids, counts) if speculative else \
        sampled_tokens(model, ids, np.random.default_rng(seed), temperature, top_k, top_p)
    t0 = time.perf_counter()
    t1, n, stop = None, 0, "length"
    try:
        for t in source:
            if t1 is None:
                t1 = time.perf_counter()
            n += 1
            if t == tok.eos_id:
                stop = "eos"
                break
            yield tok.token_str(t)
            if t == tok.end_answer_id:
                stop = "answer"
                break
            if n >= max_new_tokens:
                break
    finally:
        source.close()
        if stats is not None:
            t1 = t1 or time.perf_counter()
            stats.update(prefill_seconds=t1 - t0, decode_seconds=time.perf_counter() - t1, tokens=n, stop=stop,
                         prompt_tokens=len(ids), **(counts if speculative else {}))


def between(text, a, b):
    """The text after the first `a`, up to the next `b` (or the end); None without `a`."""
    i = text.find(a)
    if i < 0:
        return None
    j = text.find(b, i + len(a))
    return text[i + len(a):] if j < 0 else text[i + len(a):j]


def answer(model, question, **kw):
    """Generate to completion -> Answer with thinking, answer, token count and timings."""
    stats = {}
    text = "".join(generate(model, question, stats=stats, **kw))
    think = between(text, "<think>", "</think>")
    ans = between(text, "<answer>", "</answer>")
    return Answer(question, text, think or "", ans if ans is not None else "", stats["tokens"], stats["stop"],
                  stats["prefill_seconds"], stats["decode_seconds"])
