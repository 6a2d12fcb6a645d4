"""add, sub, mul: `What is 47+38?`, `What is 82-47?`, `What is 23*7?`."""
import re

from runtime.tasks.base import Family

_RE = {op: re.compile(rf"What is (\d+){re.escape(op)}(\d+)\?") for op in "+-*"}


def _parser(op):
    def parse(q):
        m = _RE[op].fullmatch(q)
        return (int(m.group(1)), int(m.group(2))) if m else None
    return parse


def _int_same(got, want):
    g = got.strip()
    return g.lstrip("-").isdigit() and g == want and not (len(g) > 1 and g.lstrip("-").startswith("0"))


def _draw_add(rng, size):
    lo, hi = (10, 99) if size == "train" else (100, 999)
    return f"What is {rng.integers(lo, hi + 1)}+{rng.integers(lo, hi + 1)}?"


def _draw_sub(rng, size):
    lo, hi = (10, 99) if size == "train" else (100, 999)
    a, b = sorted(int(x) for x in rng.integers(lo, hi + 1, 2))
    return f"What is {b}-{a}?"


def _draw_mul(rng, size):
    lo, hi = (10, 99) if size == "train" else (100, 999)
    return f"What is {rng.integers(lo, hi + 1)}*{rng.integers(2, 10)}?"


ADD = Family("add", "a+b with a, b in 10..99", "a, b in 100..999", _draw_add, _parser("+"),
             lambda p: str(p[0] + p[1]), _int_same)
SUB = Family("sub", "a-b with 10 <= b <= a <= 99", "3-digit a >= b", _draw_sub, _parser("-"),
             lambda p: str(p[0] - p[1]), _int_same)
MUL = Family("mul", "a*b with a in 10..99, b in 2..9", "a in 100..999, b in 2..9", _draw_mul, _parser("*"),
             lambda p: str(p[0] * p[1]), _int_same)
