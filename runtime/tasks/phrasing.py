"""How people type a question, and its one reading.

`normal(question)` maps every phrasing a family accepts onto a few short forms its parser matches:
lower case, "what's" -> "what is", operator words -> symbols, no spaces around operators, no closing
punctuation, quotes around a single letter dropped. A family lists its phrasings as templates (index 0 is
the canonical one, the form of the seed questions); `Phrasings.heldout` names templates that training never
uses, so `tinyr1 eval` can measure phrasings the model has not seen.
"""
import re
from dataclasses import dataclass

_BETWEEN_NUMBERS = r"(?<=\d) {} (?=\d)"               # an operator word only between two numbers
_WORDS = [(r"\bwhat's\b", "what is"), (r"\bwhats\b", "what is")] + [
    (_BETWEEN_NUMBERS.format(word), sym) for word, sym in (("plus", "+"), ("minus", "-"), ("times", "*"),
                                                            ("multiplied by", "*"), ("x", "*"), ("take away", "-"))]
_OPS = re.compile(r" *([-+*/=^]) *")
_TRAIL = re.compile(r"[ ?.!]+$")
_QUOTED = re.compile(r"['\"]([a-z])['\"]")
MAX_QUESTION = 400                         # characters a parser reads; longer text is no family's


def normal(question):
    """The normal form a parser reads (None for text too long to be a question of any family)."""
    if not isinstance(question, str) or len(question) > MAX_QUESTION:
        return None
    q = " ".join(question.lower().split())
    q = _QUOTED.sub(r"\1", q)
    for pattern, repl in _WORDS:
        q = re.sub(pattern, repl, q)
    q = _OPS.sub(r"\1", q)
    return _TRAIL.sub("", q)


def strip_prefix(q, prefixes):
    """q without the first of `prefixes` it starts with (each followed by a space or ':')."""
    for p in prefixes:
        if q.startswith(p + " ") or q.startswith(p + ":"):
            return q[len(p) + 1:].lstrip(" :")
    return q


@dataclass(frozen=True)
class Phrasings:
    """Templates `str.format`ted with a family's fields; [0] is canonical, `heldout` indexes the ones that
    training never uses."""
    templates: tuple
    heldout: tuple = ()

    def pick(self, rng, which):
        """A template for `which`: "canonical", "train" (any not held out) or "heldout"."""
        if which == "canonical":
            return self.templates[0]
        pool = [t for i, t in enumerate(self.templates) if (i in self.heldout) == (which == "heldout")]
        return pool[int(rng.integers(len(pool)))]


def ordinal(n):
    """1 -> '1st', 12 -> '12th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
