"""Training batches: seeded mixtures of task families and user JSONL datasets.

Batch k depends only on (seed, k), so a resumed run sees exactly the batches it would have seen.
A sequence is `<bos> question <think> steps </think> <answer> answer </answer> <eos>`; the loss
covers the completion (everything after the question), never the prompt.
"""
import re

import numpy as np

from runtime.errors import ConfigError, DatasetError
from runtime.tokenizer import ANSWER, ITEM, item_hints
from trainer.config import check_weights
from trainer.tasks import FAMILIES, TRAINABLE, load_jsonl, make_example, target_text


def check_families(families, source):
    """A recipe's {family: weight}: known families, each weight a finite number >= 0. -> their sum
    (an empty mapping means every family at weight 1)."""
    for name in families:
        if name not in TRAINABLE:
            raise ConfigError(f"{source}: families: unknown family {name!r}; known: {', '.join(TRAINABLE)}")
    return check_weights(families, source, "families") if families else float(len(FAMILIES))


class Mixture:
    def __init__(self, tok, families=None, datasets=(), dataset_weight=1.0, seed=0, source="sft", split="train",
                 **styles):
        """styles: make_example's options for writing examples (restyle, pad, distract, ...; SFTConfig.styles)."""
        weights = dict(families) if families else {name: 1.0 for name in FAMILIES}
        check_families(weights, source)
        self.pool = [ex for path in datasets for ex in load_jsonl(path)]
        self.names = [n for n, w in weights.items() if w > 0]
        w = [weights[n] for n in self.names]
        if self.pool:
            self.names.append("<jsonl>")
            w.append(dataset_weight)
        if not self.names:
            raise ConfigError(f"{source}: nothing to train on: every family weight is 0 and the datasets "
                              f"{', '.join(map(str, datasets))} hold no examples")
        self.p = np.asarray(w, float) / sum(w)
        self.tok, self.seed, self.split, self.source, self.styles = tok, seed, split, source, styles
        self.context = None               # set by check_context; then every generated batch is checked

    def check_context(self, context, what):
        """Refuse, before training, any JSONL example longer than `context` tokens (the model's
        max_position_embeddings; `what` names where that number comes from)."""
        for ex in self.pool:
            n = len(sequence(self.tok, ex.question, target_text(ex.reasoning, ex.answer))[0]) - 1
            if n > context:
                raise DatasetError(f"{ex.where}: the example is {n} tokens (<bos>, question, <think>reasoning"
                                   f"</think><answer>answer</answer>), more than the model's context of {context} "
                                   f"tokens ({what}); shorten it or train a model with a longer context")
        self.context = context

    def examples(self, rng, n):
        """n training examples (question, completion text, place offset, item offset)."""
        out = []
        for k in rng.choice(len(self.names), size=n, p=self.p):
            name = self.names[k]
            if name == "<jsonl>":
                ex = self.pool[rng.integers(len(self.pool))]
            else:
                ex = make_example(name, rng, self.split, places=self.tok.places, items=self.tok.items,
                                  **self.styles)
            out.append((ex.question, target_text(ex.reasoning, ex.answer), ex.offset, ex.item_offset))
        return out

    def batch(self, step, batch_size):
        """-> tokens (B, T+1) int64 padded with <pad>, mask (B, T) float32 over completion targets."""
        rng = np.random.default_rng([self.seed, step])
        return self.encode(self.examples(rng, batch_size))

    def micro_batches(self, step, batch_size, n_micro):
        """The same examples as batch(step), sorted by length and cut into at most n_micro batches where
        padding costs least (cheapest_cuts), so that short sequences are not padded to the longest one.
        -> list of (tokens, mask)."""
        rng = np.random.default_rng([self.seed, step])
        pairs = sorted(self.examples(rng, batch_size), key=lambda qc: len(qc[0]) + len(qc[1]))
        lengths = [len(sequence(self.tok, *p)[0]) for p in pairs]
        return [self.encode(pairs[a:b]) for a, b in cheapest_cuts(lengths, n_micro)]

    def encode(self, pairs):
        """encode_batch, refusing a generated example longer than the context (JSONL examples were
        checked before training) instead of failing inside the model."""
        tokens, mask = encode_batch(self.tok, pairs)
        if self.context is not None and tokens.shape[1] - 1 > self.context:
            i = int(np.argmax((tokens != self.tok.pad_id).sum(1)))
            raise ConfigError(f"{self.source}: families: the generated example {pairs[i][0]!r} is "
                              f"{tokens.shape[1] - 1} tokens, more than the model's context of {self.context}; "
                              f"raise max_position_embeddings or leave its family out")
        return tokens, mask


ATTENTION_PER_TOKEN = 1 / 200   # an example of L tokens costs ~L + L^2/200 (linear layers, then attention)


def cheapest_cuts(lengths, k):
    """Cut sorted `lengths` into at most k contiguous pieces, each padded to its longest, minimising the
    summed cost rows * (L + L^2 * ATTENTION_PER_TOKEN) (dynamic programming, O(k n^2)). On the student's
    batches (48 examples of 55-310 tokens) 6 such pieces train 1.35x faster than 3 equal ones.
    -> [(start, end)] index ranges in order."""
    n, k = len(lengths), max(1, min(k, len(lengths)))
    unit = [L + L * L * ATTENTION_PER_TOKEN for L in lengths]
    best = [[0.0] + [np.inf] * n] + [[np.inf] * (n + 1) for _ in range(k)]   # best[j][e]: e rows in j pieces
    start = [[0] * (n + 1) for _ in range(k + 1)]
    for j in range(1, k + 1):
        for e in range(j, n + 1):
            for s in range(j - 1, e):
                c = best[j - 1][s] + (e - s) * unit[e - 1]
                if c < best[j][e]:
                    best[j][e], start[j][e] = c, s
    j = min(range(1, k + 1), key=lambda i: (best[i][n], i))
    cuts, e = [], n
    for i in range(j, 0, -1):
        cuts.append((start[i][e], e))
        e = start[i][e]
    return cuts[::-1]


def sequence(tok, question, completion, offset=0, item_offset=0):
    """-> (<bos> question completion <eos> ids, index of the first completion token); the numbers of the
    question and of the answer marked with places from `offset` if the tokenizer has places, and with item
    hints from `item_offset` if it has items (tag_items). The model reads all but the last token, so a
    sequence fits a context of len - 1 positions."""
    prompt = tok.encode_prompt(question, offset, item_offset)
    if tok.items:
        completion = tag_items(completion, item_hints(question, item_offset))
    return prompt + tok.encode_completion(completion, offset) + [tok.eos_id], len(prompt)


def tag_items(completion, hints):
    """The answer's numbers that are items of the question's list, each after the hint of the first such item
    not yet used: hints [("A", "47"), ("B", "8"), ("C", "47")] and answer "8 47 47" -> "#B8 #A47 #C47"."""
    head, sep, tail = completion.partition(ANSWER)
    left = list(hints)

    def tag(m):
        k = next((k for k, (_, n) in enumerate(left) if n == m.group(0)), None)
        return m.group(0) if k is None else ITEM + left.pop(k)[0] + m.group(0)
    return head + sep + re.sub(r"(?<![\w.])[0-9]+", tag, tail) if sep and hints else completion


def encode_batch(tok, pairs):
    """(question, completion text[, place offset[, item offset]]) tuples -> tokens (B, T+1), completion mask (B, T)."""
    seqs, starts = [], []
    for question, completion, *offsets in pairs:
        seq, start = sequence(tok, question, completion, *offsets)
        seqs.append(seq)
        starts.append(start)
    L = max(map(len, seqs))
    tokens = np.full((len(seqs), L), tok.pad_id, np.int64)
    mask = np.zeros((len(seqs), L - 1), np.float32)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        tokens[i, :len(s)] = s
        mask[i, st - 1:len(s) - 1] = 1.0     # position j predicts token j+1
    return tokens, mask
