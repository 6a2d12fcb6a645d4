"""What every task family shares: the Problem record, phrasings and the train/held-out split. How a
completion splits into thinking and answer, and its strict format, is runtime/completion.py."""
import hashlib
from dataclasses import dataclass
from typing import Callable, Optional

from runtime.errors import TaskError
from runtime.tasks.phrasing import Phrasings

HELDOUT_EVERY = 10                                   # 1 in 10 problems is held out (a family may hold out more)
RL_BUCKETS = (1, 2)                                  # of the 10 hash buckets: the "rl" part of "train"
SPLITS = ("train", "heldout", "extrapolate", "sft", "rl")
WHICH = ("train", "canonical", "heldout")            # which phrasings a sample may use


@dataclass(frozen=True)
class Problem:
    family: str
    question: str
    answer: str


def sized(train, extrapolate):
    """A Family.size from two predicates on the parameters: the training range, then the extrapolation's."""
    return lambda p: "train" if train(p) else "extrapolate" if extrapolate(p) else "beyond"


@dataclass(frozen=True)
class Family:
    """A task family: generator, phrasings, parser, solver and verifier.

    `draw(rng, size)` gives the parameters of a problem of size "train" (the training range) or
    "extrapolate" (one size beyond), and `size(params)` says which of the two a question's parameters are
    in, or "beyond" both (None: every question is in the training range); `fields(params)` the names its phrasing templates use; `parse(question)`
    reads any accepted phrasing back to the parameters (None when it is not this family's); `same(answer_text,
    canonical)` decides whether a model's answer counts as correct. A problem's split is decided by its
    canonical question, so the same problem is never in training under one phrasing and held out under
    another."""
    name: str
    train_range: str
    extrapolation: str
    draw: Callable
    parse: Callable                        # question -> params or None
    answer_of: Callable                    # params -> canonical answer
    phrasings: Phrasings = None
    fields: Callable = None                # params -> {template field: text}
    same: Callable = lambda got, want: got.strip() == want
    heldout_every: int = HELDOUT_EVERY
    every: Optional[Callable] = None       # -> every problem's params (fib, faq): all trained, none held out
    size: Optional[Callable] = None        # params -> "train", "extrapolate" or "beyond" (runtime/tasks/reach.py)

    def solve(self, question):
        params = self.parse(question)
        if params is None:
            raise TaskError(f"{self.name}: cannot parse the question {question!r}")
        return self.answer_of(params)

    def verify(self, question, answer_text):
        if answer_text is None:
            return False
        return bool(self.same(str(answer_text), self.solve(question)))

    def phrase(self, params, rng=None, which="canonical"):
        """The question for `params` in a phrasing: "canonical", "train" or "heldout" (random ones use rng)."""
        if which not in WHICH:
            raise TaskError(f"{self.name}: unknown phrasing set {which!r}; use {', '.join(WHICH)}")
        return self.phrasings.pick(rng, which).format(**self.fields(params))

    def sample(self, rng, split, which=None, draw=None):
        """A Problem from split "train", "heldout" (training range, by hash of the canonical question) or
        "extrapolate", phrased from `which` (default: training phrasings for training splits, else the
        canonical one), its parameters drawn by `draw(rng, size)` (default: the family's own draw).

        "train" is cut again for the R1 pipeline: "rl" (2 of the 10 hash buckets) holds problems that GRPO
        and rejection sampling use and the cold-start SFT never sees; "sft" is the rest."""
        if split not in SPLITS:
            raise TaskError(f"{self.name}: unknown split {split!r}; use {', '.join(SPLITS)}")
        which = which or ("train" if split in ("train", "sft", "rl") else "canonical")
        draw = draw or self.draw
        if split == "extrapolate" or self.every is not None:
            p = draw(rng, "extrapolate" if split == "extrapolate" else "train")
            return self.problem(p, rng, which)
        for _ in range(10000):
            p = draw(rng, "train")
            canonical = self.phrase(p)
            if split_of(canonical, self.heldout_every) == split or \
                    subsplit_of(canonical, self.heldout_every) == split:
                return self.problem(p, rng, which)
        raise TaskError(f"{self.name}: no {split} question found in 10000 draws")

    def problem(self, params, rng=None, which="canonical"):
        q = self.phrase(params, rng, which)
        return Problem(self.name, q, self.answer_of(params))


def _bucket(question, every=HELDOUT_EVERY):
    h = int(hashlib.sha256(question.encode("utf-8")).hexdigest(), 16)
    return 0 if h % every == 0 else 1 + (h // every) % (HELDOUT_EVERY - 1)


def split_of(question, every=HELDOUT_EVERY):
    """Deterministic split of a canonical question by hash: 'heldout' for 1 in `every`, else 'train'."""
    return "heldout" if _bucket(question, every) == 0 else "train"


def subsplit_of(question, every=HELDOUT_EVERY):
    """'heldout', or the part of 'train' a question belongs to: 'rl' or 'sft'."""
    b = _bucket(question, every)
    return "heldout" if b == 0 else "rl" if b in RL_BUCKETS else "sft"


def norm_space(s):
    return " ".join(s.split())
