"""A model's reach: the questions of its families whose answers its own measurements vouch for.

A family's `size(params)` places a question in the training range ("train"), in the one or two sizes
beyond it that `tinyr1 eval` measures as its extrapolation column ("extrapolate"), or further ("beyond").
A question is within reach when it is in the training range, or in the extrapolation sizes and the
model's recorded eval (the `eval` rows of its provenance, written when the student was bundled and carried
by the compiled file) measured at least TRUSTED there. Anything else gets BEYOND instead of a guess: a
1M-parameter model asked fib(100) or a 30-digit sum writes a confident, well-formed, wrong number, and a
kiosk visitor reads it as true. Questions no family covers are the model's own to refuse (runtime/tasks/scope.py).
"""
from dataclasses import dataclass

from runtime.tasks.base import norm_space

TRUSTED = 0.9                 # issue 18's bar for a size beyond the training range
BEYOND = "Sorry, that is beyond what I have learned to work out reliably."
BEYOND_THINKING = "beyond what I was trained on"


@dataclass(frozen=True)
class Reach:
    family: str               # the family that parses the question ("" when none does)
    size: str                 # "train", "extrapolate", "beyond" ("" when no family parses it)
    measured: float = None    # the model's extrapolation accuracy for the family, if recorded
    ok: bool = True           # answer it (False: say BEYOND instead)

    def why(self, families):
        """One line for a person: what the family was trained on and what was measured past it."""
        fam = families[self.family]
        seen = "not measured" if self.measured is None else f"measured {100 * self.measured:.1f}%"
        return (f"{self.family}: trained on {fam.train_range}; beyond that ({fam.extrapolation}) {seen}; "
                f"this question is {'further still' if self.size == 'beyond' else 'in that range'}")


def extrapolation_accuracy(provenance):
    """{family: accuracy} of the extrapolation rows of a model's recorded eval (empty when none)."""
    rows = (provenance or {}).get("eval") or []
    return {r["family"]: float(r["accuracy"]) for r in rows
            if isinstance(r, dict) and r.get("column") == "extrapolation" and r.get("n")}


def reach(question, families, provenance=None):
    """-> Reach of `question` for a model with this provenance (`families`: runtime.tasks.families_of(model))."""
    for fam in families.values():
        params = fam.parse(question)
        if params is None:
            continue
        size = fam.size(params) if fam.size else "train"
        measured = extrapolation_accuracy(provenance).get(fam.name)
        ok = size == "train" or (size == "extrapolate" and measured is not None and measured >= TRUSTED)
        return Reach(fam.name, size, measured, ok)
    return Reach("", "")


def is_beyond(answer):
    return answer is not None and norm_space(answer) == norm_space(BEYOND)


def beyond_completion():
    """The completion that stands in for the model's when a question is beyond its reach."""
    return f"<think>{BEYOND_THINKING}</think><answer>{norm_space(BEYOND)}</answer>"
