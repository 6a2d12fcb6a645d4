"""Load a compiled model and run it: validate, prepare every op once, and interpret the graph.

    model = runtime.load("student.msgpack")
    for piece in model.generate("What is 47+38?", max_new_tokens=100):
        print(piece, end="", flush=True)

Two interpreters over the same prepared ops: `forward` runs T tokens through `op.run` (prefill, parity
checks), `step` runs one token through `op.step` from a plan made at load (decoding). The sampler and
the generation loops live in runtime/generate.py.
"""
import numpy as np

import runtime.generate
from runtime.errors import ContextOverflowError, ModelFormatError
from runtime.loader import read_document
from runtime.mla import MLAttention
from runtime.ops import Ctx, op_class


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


def prepare(nodes, weights, ctx, path, label=""):
    """Each node's op, prepared -> [(op, input names, output names)]; ModelFormatError names the node."""
    ops = []
    for i, node in enumerate(nodes):
        try:
            op = op_class(node["op"])(node, weights, ctx)
        except ModelFormatError as e:
            raise ModelFormatError(f"{path}: {label}graph node {i}: {e}") from None
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise ModelFormatError(f"{path}: {label}graph node {i} ({node['op']}) cannot be prepared: {e!r}") from None
        ops.append((op, node["inputs"], node["outputs"]))
    return ops


class Model:
    def __init__(self, body, path="<memory>"):
        self.path = path
        self.config = body["config"]
        self.tokenizer = body["tokenizer_obj"]
        self.generation = body["generation"]
        self.provenance = body["provenance"]
        self.taught = body.get("taught", [])               # [(question, answer)] taught by `tinyr1 teach`
        self.graph = body["graph"]
        weights = dequantize(body["arrays"], body["quant"])
        self.ctx = Ctx()                                   # shared with the ops: position of this call
        self.ops = prepare(self.graph["nodes"], weights, self.ctx, path)
        mtp = self.graph.get("mtp")                        # the MTP draft head (opset 2), if any
        self.mtp_ops = prepare(mtp["nodes"], weights, self.ctx, path, "mtp ") if mtp else []
        self.hidden_name = mtp["inputs"][0] if mtp else None
        self.last_attention = {id(ops): max((i for i, (op, _, _) in enumerate(ops) if isinstance(op, MLAttention)),
                                            default=len(ops)) for ops in (self.ops, self.mtp_ops)}
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
        self.plan, self.slots = self.step_plan()
        self.pos = 0
        try:                                               # one token through every op, both paths: shapes must chain
            out = self.forward([self.tokenizer.bos_id])
            self.reset()
            out1 = self.step(self.tokenizer.bos_id)
        except (ValueError, IndexError, TypeError, KeyError) as e:
            raise ModelFormatError(f"{path}: the graph does not execute on one token: {e}") from None
        if out.shape != (1, vocab) or out1.shape != (vocab,):
            raise ModelFormatError(f"{path}: the graph outputs shape {out.shape}, expected (1, {vocab})")
        if mtp:
            try:
                out = self.draft(np.zeros((1, self.ops[0][0].table.shape[1]), np.float32), [self.tokenizer.bos_id], 0)
            except (ValueError, IndexError, TypeError, KeyError) as e:
                raise ModelFormatError(f"{path}: the MTP graph does not execute on one token: {e}") from None
            if out.shape != (1, vocab):
                raise ModelFormatError(f"{path}: the MTP graph outputs shape {out.shape}, expected (1, {vocab})")
        self.reset()

    @property
    def has_mtp(self):
        return bool(self.mtp_ops)

    # ------------------------------------------------------------ the interpreters
    def forward(self, ids, all_logits=False, hidden=False):
        """ids (T,) appended at the current position -> logits (T or 1, V), and with hidden=True also the
        MTP head's input (T, d). 1) check room 2) run each node on its inputs 3) advance the position."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.pos + len(ids) > self.max_positions:
            raise ContextOverflowError(f"{self.pos + len(ids)} tokens exceed the context of {self.max_positions}")
        env = self.run(self.ops, {"tokens": ids}, self.pos, all_logits, last_only=not (all_logits or hidden))
        self.pos += len(ids)
        return (env[self.out_name], env[self.hidden_name]) if hidden else env[self.out_name]

    def draft(self, hidden, next_tokens, pos):
        """The MTP head: hidden (T, d) of positions pos.. and the tokens after them -> logits (1, V) of the
        token after the last of them. Appends T rows to the head's own latent cache."""
        env = self.run(self.mtp_ops, {self.hidden_name: hidden, "next_tokens": np.asarray(next_tokens, np.int64)},
                       pos, False, last_only=True)
        return env[self.graph["mtp"]["outputs"][0]]

    def run(self, ops, env, pos, all_logits, last_only=False):
        """Run `ops` in order over the values in env. last_only: no op after the last attention mixes
        positions, so that attention answers for the last position alone (it still writes every position's
        cache row) and from there on only the last position is computed (prefill wants only its logits)."""
        ctx = self.ctx
        ctx.pos, ctx.all_logits = pos, all_logits
        cut = self.last_attention[id(ops)] if last_only else len(ops)
        for i, (op, inputs, outputs) in enumerate(ops):
            xs = [env[x] for x in inputs]
            if i < cut:
                env[outputs[0]] = op.run(ctx, *xs)
            elif i == cut:
                env[outputs[0]] = op.run(ctx, *xs, last_only=True)
            else:
                env[outputs[0]] = op.run(ctx, *[v[-1:] for v in xs])
        return env

    def step_plan(self):
        """The decode loop's program, made once: (op.step, input slot, second input slot or -1, output
        slot) per node, over a list of value slots instead of a dict of names."""
        slot = {"tokens": 0}
        plan = []
        for op, inputs, outputs in self.ops:
            ins = [slot[x] for x in inputs] + [-1]
            slot[outputs[0]] = len(slot)
            plan.append((op.step, ins[0], ins[1], slot[outputs[0]]))
        return plan, [None] * len(slot)

    def step(self, token):
        """The decode hot path: one token at the current position -> its logits (V,)."""
        if self.pos >= self.max_positions:
            raise ContextOverflowError(f"{self.pos + 1} tokens exceed the context of {self.max_positions}")
        self.ctx.pos = self.pos
        vals = self.slots
        vals[0] = token
        for f, a, b, o in self.plan:
            vals[o] = f(vals[a]) if b < 0 else f(vals[a], vals[b])
        self.pos += 1
        return vals[o]

    def reset(self):
        self.pos = 0                                       # caches are overwritten from position 0

    def logits(self, token_ids):
        """Full-sequence logits (T, V) from an empty cache, for parity checks."""
        self.reset()
        return self.forward(token_ids, all_logits=True)

    # ------------------------------------------------------------ generation (runtime/generate.py)
    sample = staticmethod(runtime.generate.sample)

    def encode_prompt(self, prompt):
        return self.tokenizer.encode_prompt(prompt)

    def generate(self, prompt, *, max_new_tokens=None, temperature=0.0, top_k=None, top_p=None, seed=None,
                 stats=None, speculative=False):
        """-> an iterator of text pieces as they are decoded; stops after `</answer>`, before `<eos>`, or at
        the limit. Bad options or an empty prompt raise GenerationError here (runtime.generate.check_options).
        speculative=True: greedy decoding that drafts with the model's MTP head (same text).
        `stats`, if a dict, receives prefill_seconds, decode_seconds, tokens, stop (and drafted/accepted)."""
        return runtime.generate.generate(self, prompt, max_new_tokens=max_new_tokens, temperature=temperature,
                                         top_k=top_k, top_p=top_p, seed=seed, stats=stats, speculative=speculative)

    def answer(self, question, **kw):
        """Generate to completion -> Answer with thinking, answer, token count and timings."""
        return runtime.generate.answer(self, question, **kw)


def load(path):
    """Read, validate and prepare a compiled model file -> Model. Raises ModelFormatError."""
    return Model(read_document(path), path)
