"""Load a compiled model and generate from it: the interpreter, the sampler and the generation loop.

    model = runtime.load("student.msgpack")
    for piece in model.generate("What is 47+38?", max_new_tokens=100):
        print(piece, end="", flush=True)
"""
import time
from dataclasses import dataclass

import numpy as np

from runtime.errors import ModelFormatError, TinyR1Error
from runtime.loader import read_document
from runtime.ops import OPS, Ctx


class ContextOverflowError(TinyR1Error, ValueError):
    """The prompt does not fit in the model's context window."""


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


def dequantize(arrays, quant):
    """int8 tensors -> float32 (q * scale per group or row); float tensors pass through."""
    out = {}
    for name, a in arrays.items():
        info = quant[name]
        if info["scheme"] == "none":
            out[name] = a
            continue
        rows, cols = int(np.prod(a.shape[:-1])), a.shape[-1]
        scales = info["scales"].astype(np.float32)                             # (rows, n_groups)
        g = cols if info["scheme"] == "q8_channel" else info["group_size"]
        per_col = np.repeat(scales, g, axis=1)[:, :cols]
        out[name] = (a.reshape(rows, cols).astype(np.float32) * per_col).reshape(a.shape)
    return out


class Model:
    def __init__(self, body, path="<memory>"):
        self.path = path
        self.config = body["config"]
        self.tokenizer = body["tokenizer_obj"]
        self.generation = body["generation"]
        self.provenance = body["provenance"]
        self.graph = body["graph"]
        weights = dequantize(body["arrays"], body["quant"])
        self.ops = []                                      # (op, input names, output names)
        for i, node in enumerate(self.graph["nodes"]):
            try:
                op = OPS[node["op"]](node, weights, self.config)
            except ModelFormatError as e:
                raise ModelFormatError(f"{path}: graph node {i}: {e}") from None
            except (KeyError, ValueError, TypeError, IndexError) as e:
                raise ModelFormatError(f"{path}: graph node {i} ({node['op']}) cannot be prepared: {e!r}") from None
            self.ops.append((op, node["inputs"], node["outputs"]))
        kinds = [node["op"] for node in self.graph["nodes"]]
        if not kinds or kinds[0] != "embedding" or kinds[-1] != "lm_head" or "mla_attention" not in kinds \
                or self.graph["outputs"] != self.graph["nodes"][-1]["outputs"]:
            raise ModelFormatError(f"{path}: the graph must start with embedding, contain mla_attention and end "
                                   f"with the lm_head that produces its output; it has {kinds[:3]}...{kinds[-2:]}")
        self.max_positions = min(op.c_kv.shape[0] for op, _, _ in self.ops if hasattr(op, "c_kv"))
        vocab = self.ops[0][0].V
        if vocab != self.tokenizer.vocab_size:
            raise ModelFormatError(f"{path}: embedding has {vocab} rows but the tokenizer {self.tokenizer.vocab_size} tokens")
        self.out_name = self.graph["outputs"][0]
        self.pos = 0
        try:                                               # one token through every op: shapes must chain
            out = self.forward([self.tokenizer.bos_id])
        except (ValueError, IndexError, TypeError, KeyError) as e:
            raise ModelFormatError(f"{path}: the graph does not execute on one token: {e}") from None
        if out.shape != (1, vocab):
            raise ModelFormatError(f"{path}: the graph outputs shape {out.shape}, expected (1, {vocab})")
        self.reset()

    # ------------------------------------------------------------ the interpreter
    def forward(self, ids, all_logits=False):
        """ids (T,) appended at the current position -> logits (T or 1, V). 1) check room 2) run
        each node on its inputs 3) advance the position."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.pos + len(ids) > self.max_positions:
            raise ContextOverflowError(f"{self.pos + len(ids)} tokens exceed the context of {self.max_positions}")
        ctx = Ctx(self.pos, all_logits)
        env = {"tokens": ids}
        for op, inputs, outputs in self.ops:
            env[outputs[0]] = op.run(ctx, *[env[x] for x in inputs])
        self.pos += len(ids)
        return env[self.out_name]

    def reset(self):
        self.pos = 0                                       # caches are overwritten from position 0

    def logits(self, token_ids):
        """Full-sequence logits (T, V) from an empty cache, for parity checks."""
        self.reset()
        return self.forward(token_ids, all_logits=True)

    # ------------------------------------------------------------ sampling
    @staticmethod
    def sample(logits, rng, temperature, top_k, top_p):
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

    # ------------------------------------------------------------ generation
    def encode_prompt(self, prompt):
        return [self.tokenizer.bos_id] + self.tokenizer.encode(prompt)

    def generate(self, prompt, *, max_new_tokens=None, temperature=0.0, top_k=None, top_p=None, seed=None,
                 stats=None):
        """Yield text pieces as they are decoded; stops after `</answer>`, before `<eos>`, or at the limit.

        `stats`, if a dict, receives prefill_seconds, decode_seconds, tokens and stop."""
        tok = self.tokenizer
        ids = self.encode_prompt(prompt)
        if len(ids) >= self.max_positions:
            raise ContextOverflowError(f"the prompt is {len(ids)} tokens; the model's context holds "
                                       f"{self.max_positions}, leaving no room to answer")
        if max_new_tokens is None:
            max_new_tokens = int(self.generation.get("max_new_tokens", 200))
        max_new_tokens = min(max_new_tokens, self.max_positions - len(ids))
        rng = np.random.default_rng(seed)
        self.reset()
        t0 = time.perf_counter()
        logits = self.forward(ids)[-1]
        t1 = time.perf_counter()
        n, stop = 0, "length"
        try:
            while n < max_new_tokens:
                t = self.sample(logits, rng, temperature, top_k, top_p)
                n += 1
                if t == tok.eos_id:
                    stop = "eos"
                    break
                yield tok.token_str(t)
                if t == tok.end_answer_id:
                    stop = "answer"
                    break
                if n < max_new_tokens:
                    logits = self.forward([t])[-1]
        finally:
            if stats is not None:
                stats.update(prefill_seconds=t1 - t0, decode_seconds=time.perf_counter() - t1, tokens=n,
                             stop=stop, prompt_tokens=len(ids))

    def answer(self, question, **kw):
        """Generate to completion -> Answer with thinking, answer, token count and timings."""
        stats = {}
        text = "".join(self.generate(question, stats=stats, **kw))
        think = _between(text, "<think>", "</think>")
        ans = _between(text, "<answer>", "</answer>")
        return Answer(question, text, think or "", ans if ans is not None else "", stats["tokens"], stats["stop"],
                      stats["prefill_seconds"], stats["decode_seconds"])


def _between(text, a, b):
    i = text.find(a)
    if i < 0:
        return None
    j = text.find(b, i + len(a))
    return text[i + len(a):] if j < 0 else text[i + len(a):j]


def load(path):
    """Read, validate and prepare a compiled model file -> Model. Raises ModelFormatError."""
    return Model(read_document(path), path)
