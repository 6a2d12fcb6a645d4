"""What every task family shares: the Problem record and the train/held-out split. How a completion splits
into thinking and answer, and its strict format, is runtime/completion.py."""
import hashlib
from dataclasses import dataclass
from typing import Callable, Optional

from runtime.errors import TaskError

HELDOUT_EVERY = 10                                   # 1 in 10 questions is held out
RL_BUCKETS = (1, 2)                                  # of the 10 hash buckets: the "rl" part of "train"
SPLITS = ("train", "heldout", "extrapolate", "sft", "rl")


@dataclass(frozen=True)
class Problem:
    family: str
    question: str
    answer: str


@dataclass(frozen=True)
class Family:
    """A task family: generator (`draw(rng, split)` gives params -> question), solver and verifier.

    `draw(rng, size)` returns a question for size "train" (the training range) or "extrapolate"
    (one size beyond); `solve(question)` computes the canonical answer from the question text alone;
    `same(answer_text, canonical)` decides whether a model's answer counts as correct."""
    name: str
    train_range: str
    extrapolation: str
    draw: Callable
    parse: Callable                        # question -> params or None
    answer_of: Callable                    # params -> canonical answer
    same: Callable = lambda got, want: got.strip() == want
    fixed_split: Optional[str] = None      # faq: every question is in every split

    def solve(self, question):
        params = self.parse(question)
        if params is None:
            raise TaskError(f"{self.name}: cannot parse the question {question!r}")
        return self.answer_of(params)

    def verify(self, question, answer_text):
        if answer_text is None:
            return False
        return bool(self.same(str(answer_text), self.solve(question)))

    def sample(self, rng, split):
        """A Problem from split "train", "heldout" (training range, by hash) or "extrapolate".

        "train" is cut again for the R1 pipeline: "rl" (2 of the 10 hash buckets) holds questions
        that GRPO and rejection sampling use and the cold-start SFT never sees; "sft" is the rest."""
        if split not in SPLITS:
            raise TaskError(f"{self.name}: unknown split {split!r}; use {', '.join(SPLITS)}")
        if split == "extrapolate" or self.fixed_split:
            q = self.draw(rng, "extrapolate" if split == "extrapolate" else "train")
            return Problem(self.name, q, self.solve(q))
        for _ in range(10000):
            q = self.draw(rng, "train")
            if split_of(q) == split or (split_of(q) == "train" and subsplit_of(q) == split):
                return Problem(self.name, q, self.solve(q))
        raise TaskError(f"{self.name}: no {split} question found in 10000 draws")


def _bucket(question):
    return int(hashlib.sha256(question.encode("utf-8")).hexdigest(), 16) % HELDOUT_EVERY


def split_of(question):
    """Deterministic split by hash: 'heldout' for 1 in HELDOUT_EVERY questions, else 'train'."""
    return "heldout" if _bucket(question) == 0 else "train"


def subsplit_of(question):
    """'heldout', or the part of 'train' a question belongs to: 'rl' or 'sft'."""
    b = _bucket(question)
    return "heldout" if b == 0 else "rl" if b in RL_BUCKETS else "sft"


def norm_space(s):
    return " ".join(s.split())
