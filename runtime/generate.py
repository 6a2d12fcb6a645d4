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
import time
from dataclasses import dataclass

import numpy as np

from runtime.checks import check_range, invalid, quote
from runtime.completion import parse
from runtime.errors import ContextOverflowError, GenerationError
from runtime.tokenizer import unmark_stream


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


def check_options(temperature=0.0, top_k=None, top_p=None, seed=None, max_new_tokens=None, vocab_size=None):
    """Raise GenerationError unless every sampling option is in its range (runtime/checks.py wording). The
    message starts with the option and its value ("temperature=nan: must be ..."), so a caller can prefix a
    file and section. vocab_size: the model's vocabulary, top_k's upper bound (None: not checked against one)."""
    def need(value, interval, name, integer, note):
        check_range(value, interval, "", name, integer, note, error=GenerationError)
    need(temperature, "[0, inf)", "temperature", False, " (0 = greedy)")
    if top_k is not None:
        need(top_k, f"[1, {vocab_size}]" if vocab_size else "[1, inf)", "top_k", True,
             (" (the vocabulary size)" if vocab_size else "") + ", or None for no limit")
    if top_p is not None:
        need(top_p, "(0, 1]", "top_p", False, " (1 = no limit), or None")
    if seed is not None:
        need(seed, f"[0, {SEED_MAX}]", "seed", True, " (2**32 - 1), or None for a fresh random seed")
    if max_new_tokens is not None:
        need(max_new_tokens, "[1, inf)", "max_new_tokens", True, ", or None for the model's default")


def check_prompt(prompt):
    """Raise GenerationError unless the prompt is text with something in it."""
    if not isinstance(prompt, str):
        raise invalid("", "prompt", prompt, "a string (the question)", GenerationError)
    if not prompt.strip():
        raise GenerationError(f"prompt={quote(prompt)}: is empty; ask a question, e.g. \"What is 47+38?\"")


# ---------------------------------------------------------------- the sampler
def sample_rows(logits, rng, temperature, top_k=None, top_p=None):
    """logits (B, V) -> token ids (B,): greedy (argmax, first of ties) when temperature is 0, else one
    uniform draw per row, in row order, from softmax(logits / temperature) cut to the top_k tokens and to
    the smallest set reaching top_p. The trainer's batched rollouts and the runtime's one sequence call this
    one rule, so the same logits, seed and options give the same tokens (tests/test_sampler.py)."""
    if not temperature:
        return np.argmax(logits, axis=-1)
    z = logits.astype(np.float64) / temperature                                       # (B, V)
    if top_k:
        cut = z.shape[-1] - top_k
        kth = np.partition(z, cut, axis=-1)[:, cut:cut + 1]                           # (B, 1): the top_k-th largest
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        rows = np.arange(len(p))[:, None]                                             # (B, 1)
        order = np.argsort(-p, axis=-1, kind="stable")                                # (B, V) most likely first
        p_sorted = p[rows, order]
        keep = np.cumsum(p_sorted, axis=-1) - p_sorted < top_p                        # the smallest set reaching top_p
        mask = np.zeros_like(p, bool)
        mask[rows, order] = keep
        p = np.where(mask, p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    u = rng.random(len(p))                                                            # (B,)
    picks = (np.cumsum(p, axis=-1) <= u[:, None]).sum(axis=-1)        # the first token whose cumsum exceeds u
    return np.minimum(picks, p.shape[-1] - 1)


def sample(logits, rng, temperature, top_k=None, top_p=None):
    """logits (V,) -> token id: sample_rows of one row."""
    return int(sample_rows(logits[None], rng, temperature, top_k, top_p)[0])


# ---------------------------------------------------------------- the token loops
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


def token_limit(model, max_new_tokens=None):
    """max_new_tokens, or the model file's default for None (its context; 512 in files that record none),
    before the context left after the prompt clips it."""
    return int(model.generation.get("max_new_tokens", 512)) if max_new_tokens is None else max_new_tokens


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
    max_new_tokens = min(token_limit(model, max_new_tokens), model.max_positions - len(ids))
    if speculative and (temperature or not model.has_mtp):
        raise GenerationError(f"speculative decoding needs greedy decoding (temperature 0, got {temperature}) and a "
                              f"model with an MTP head ({'has one' if model.has_mtp else 'this one has none'})")
    return _decode(model, ids, max_new_tokens, temperature, top_k, top_p, seed, stats, speculative)


def _decode(model, ids, max_new_tokens, temperature, top_k, top_p, seed, stats, speculative):
    """generate's loop, over checked options; a places model's answer is read without its place letters (an
    items or hints model's without its hints too)."""
    pieces = _pieces(model, ids, max_new_tokens, temperature, top_k, top_p, seed, stats, speculative)
    tok = model.tokenizer
    return unmark_stream(pieces, tok.answer_hints) if tok.places or tok.answer_hints else pieces


def _pieces(model, ids, max_new_tokens, temperature, top_k, top_p, seed, stats, speculative):
    """The tokens' text as the model writes it."""
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


def answer(model, question, **kw):
    """Generate to completion -> Answer with thinking, answer (runtime.completion.parse), token count and timings."""
    stats = {}
    text = "".join(generate(model, question, stats=stats, **kw))
    c = parse(text)
    return Answer(question, text, c.thinking or "", c.answer or "", stats["tokens"], stats["stop"],
                  stats["prefill_seconds"], stats["decode_seconds"])
