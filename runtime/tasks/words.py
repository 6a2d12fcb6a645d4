"""count (`How many r in strawberry?`) and sort (`Sort 5 3 9 1`)."""
import os
import re

from runtime.tasks.base import Family, norm_space

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "words.txt")) as _f:
    WORDS = sorted({w.strip() for w in _f if w.strip() and not w.startswith("#")})
SHORT = [w for w in WORDS if len(w) <= 8]          # training range
LONG = [w for w in WORDS if 9 <= len(w) <= 12]     # extrapolation: longer words than any in training

_COUNT_RE = re.compile(r"How many ([a-z]) in ([a-z]+)\?")
_SORT_RE = re.compile(r"Sort( \d)+")


def _draw_count(rng, size):
    word = str(rng.choice(SHORT if size == "train" else LONG))
    if rng.random() < 0.5:
        letter = word[rng.integers(len(word))]         # a letter of the word: count >= 1
    else:
        letter = chr(ord("a") + int(rng.integers(26)))
    return f"How many {letter} in {word}?"


def _parse_count(q):
    m = _COUNT_RE.fullmatch(q)
    return (m.group(1), m.group(2)) if m else None


def _draw_sort(rng, size):
    n = rng.integers(3, 7) if size == "train" else rng.integers(7, 9)
    return "Sort " + " ".join(str(d) for d in rng.integers(0, 10, n))


def _parse_sort(q):
    return [int(t) for t in q.split()[1:]] if _SORT_RE.fullmatch(q) else None


COUNT = Family("count", "words of 3-8 letters from runtime/tasks/words.txt, any letter a-z",
               "words of 9-12 letters", _draw_count, _parse_count, lambda p: str(p[1].count(p[0])),
               lambda got, want: got.strip() == want)
SORT = Family("sort", "3 to 6 digits 0-9, repeats allowed", "7 to 8 digits", _draw_sort, _parse_sort,
              lambda p: " ".join(map(str, sorted(p))), lambda got, want: norm_space(got) == want)
