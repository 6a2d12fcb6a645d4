"""add, sub, mul: `What is 47+38?`, `what's 82 minus 47`, `Multiply 23 by 7.` and the rest below."""
import re

from runtime.tasks.base import Family, sized
from runtime.tasks.phrasing import Phrasings, normal, strip_prefix

# {a} {s} {b}: operands and the operator symbol; {w}: the operator word
_COMMON = ("What is {a}{s}{b}?", "What is {a} {s} {b}?", "what is {a}{s}{b}", "What's {a} {w} {b}?",
           "Calculate {a}{s}{b}", "Compute {a} {s} {b}.", "{a} {s} {b} = ?", "How much is {a} {w} {b}?",
           "what's {a} {w} {b}", "{a} {w} {b}?")
# add, sub and mul hold out the same two templates: a shape trained for one of them and held out for another
# taught the shape's family (`92 minus 5905?` answered as a sum when only add trained `{a} {w} {b}?`)
HELDOUT = (7, 9)
PHRASINGS = {
    "+": Phrasings(_COMMON + ("Add {a} and {b}.", "What is the sum of {a} and {b}?"), heldout=HELDOUT),
    "-": Phrasings(_COMMON + ("Subtract {b} from {a}.", "What is {a} take away {b}?"), heldout=HELDOUT),
    "*": Phrasings(_COMMON + ("Multiply {a} by {b}.", "What is the product of {a} and {b}?", "What is {a} x {b}?"),
                   heldout=HELDOUT),
}
WORD = {"+": "plus", "-": "minus", "*": "times"}
_PREFIXES = ("what is", "calculate", "compute", "how much is", "work out", "evaluate")
_EXPR = re.compile(r"(\d{1,30})([-+*])(\d{1,30})=?")
_SPECIAL = {"+": [re.compile(r"add (\d{1,30}) and (\d{1,30})"),
                  re.compile(r"what is the sum of (\d{1,30}) and (\d{1,30})")],
            "-": [re.compile(r"subtract (\d{1,30}) from (\d{1,30})")],
            "*": [re.compile(r"multiply (\d{1,30}) by (\d{1,30})"),
                  re.compile(r"what is the product of (\d{1,30}) and (\d{1,30})")]}


def arithmetic(question):
    """-> (a, op, b) for any accepted phrasing, else None."""
    q = normal(question)
    if q is None:
        return None
    for op, patterns in _SPECIAL.items():
        for pat in patterns:
            m = pat.fullmatch(q)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                return (b, op, a) if op == "-" else (a, op, b)      # subtract b from a
    m = _EXPR.fullmatch(strip_prefix(q, _PREFIXES))
    return (int(m.group(1)), m.group(2), int(m.group(3))) if m else None


def _parser(op):
    def parse(q):
        p = arithmetic(q)
        return (p[0], p[2]) if p and p[1] == op else None
    return parse


def _fields(op):
    return lambda p: {"a": p[0], "b": p[1], "s": op, "w": WORD[op]}


def int_same(got, want):
    """A plain integer, no leading zeros, no sign on zero."""
    g = got.strip()
    return re.fullmatch(r"-?(0|[1-9]\d*)", g) is not None and g == want and g != "-0"


def _operand(rng, digits):
    n = int(rng.integers(1, digits + 1))                # the length first: short numbers as often as long
    return int(rng.integers(0 if n == 1 else 10 ** (n - 1), 10 ** n))


def _draw_add(rng, size):
    if size == "train":
        return _operand(rng, 6), _operand(rng, 6)
    d = int(rng.integers(7, 9))                     # the first operand 7-8 digits long
    return int(rng.integers(10 ** (d - 1), 10 ** d)), _operand(rng, d)


def _draw_mul(rng, size):
    if size == "train":
        return _operand(rng, 4), _operand(rng, 2)
    return int(rng.integers(10000, 100000)), _operand(rng, 2)


def _digits(p):
    return max(len(str(abs(x))) for x in p)


_SIZE_ADD = sized(lambda p: _digits(p) <= 6, lambda p: _digits(p) <= 8)
ADD = Family("add", "a+b with a, b in 0..999,999 (1-6 digits each)", "a of 7-8 digits", _draw_add, _parser("+"),
             lambda p: str(p[0] + p[1]), PHRASINGS["+"], _fields("+"), int_same, size=_SIZE_ADD)
SUB = Family("sub", "a-b with a, b in 0..999,999 (1-6 digits each; negative results too)", "a of 7-8 digits",
             _draw_add, _parser("-"), lambda p: str(p[0] - p[1]), PHRASINGS["-"], _fields("-"), int_same,
             size=_SIZE_ADD)
MUL = Family("mul", "a*b with a in 0..9,999 and b in 0..99", "a of 5 digits", _draw_mul, _parser("*"),
             lambda p: str(p[0] * p[1]), PHRASINGS["*"], _fields("*"), int_same,
             size=sized(lambda p: p[0] <= 9999 and p[1] <= 99, lambda p: p[0] <= 99999 and p[1] <= 99))
