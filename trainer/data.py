"""Training batches: seeded mixtures of task families and user JSONL datasets.

Batch k depends only on (seed, k), so a resumed run sees exactly the batches it would have seen.
A sequence is `<bos> question <think> steps </think> <answer> answer </answer> <eos>`; the loss
covers the completion (everything after the question), never the prompt.
"""
import numpy as np

from runtime.errors import ConfigError
from trainer.tasks import FAMILIES, load_jsonl, make_example, target_text


class Mixture:
    def __init__(self, tok, families=None, datasets=(), dataset_weight=1.0, seed=0, source="sft", split="train"):
        weights = dict(families) if families else {name: 1.0 for name in FAMILIES}
        for name in weights:
            if name not in FAMILIES:
                raise ConfigError(f"{source}: families: unknown family {name!r}; known: {', '.join(FAMILIES)}")
        self.pool = [ex for path in datasets for ex in load_jsonl(path)]
        self.names = [n for n, w in weights.items() if w > 0]
        w = [weights[n] for n in self.names]
        if self.pool:
            self.names.append("<jsonl>")
            w.append(dataset_weight)
        self.p = np.asarray(w, float) / sum(w)
        self.tok, self.seed, self.split = tok, seed, split

    def examples(self, rng, n):
        """n training examples (question, completion text)."""
        out = []
        for k in rng.choice(len(self.names), size=n, p=self.p):
            name = self.names[k]
            if name == "<jsonl>":
                ex = self.pool[rng.integers(len(self.pool))]
            else:
                ex = make_example(name, rng, self.split)
            out.append((ex.question, target_text(ex.reasoning, ex.answer)))
        return out

    def batch(self, step, batch_size):
        """-> tokens (B, T+1) int64 padded with <pad>, mask (B, T) float32 over completion targets."""
        rng = np.random.default_rng([self.seed, step])
        return encode_batch(self.tok, self.examples(rng, batch_size))

    def micro_batches(self, step, batch_size, n_micro):
        """The same examples as batch(step), sorted by length and cut into n_micro batches so that
        short sequences are not padded to the longest one. -> list of (tokens, mask)."""
        rng = np.random.default_rng([self.seed, step])
        pairs = sorted(self.examples(rng, batch_size), key=lambda qc: len(qc[0]) + len(qc[1]))
        cuts = np.array_split(np.arange(len(pairs)), min(n_micro, len(pairs)))
        return [encode_batch(self.tok, [pairs[i] for i in c]) for c in cuts]


def encode_batch(tok, pairs):
    """pairs of (question, completion text) -> tokens (B, T+1), completion mask (B, T)."""
    seqs, starts = [], []
    for question, completion in pairs:
        prompt = [tok.bos_id] + tok.encode(question)
        seqs.append(prompt + tok.encode(completion) + [tok.eos_id])
        starts.append(len(prompt))
    L = max(map(len, seqs))
    tokens = np.full((len(seqs), L), tok.pad_id, np.int64)
    mask = np.zeros((len(seqs), L - 1), np.float32)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        tokens[i, :len(s)] = s
        mask[i, st - 1:len(s) - 1] = 1.0     # position j predicts token j+1
    return tokens, mask
