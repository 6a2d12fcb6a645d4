"""linear (`Solve 3x+5=20`), speed (the train question), quadratic (`Solve x^2-5x+6=0`), fib; phrasings below."""
import re

from runtime.tasks.base import Family, sized
from runtime.tasks.phrasing import Phrasings, normal, ordinal, strip_prefix

_SOLVE = ("solve for x", "solve the equation", "solve", "find x if", "what is x if", "find the roots of",
          "what are the solutions of", "if")
_WHAT_IS_X = re.compile(r"(.*?)(?:[.,]? ?what is x)?")


def _equation(question):
    """The equation of an accepted phrasing, in normal form ("3x+5=20"), or None."""
    q = normal(question)
    return None if q is None else _WHAT_IS_X.fullmatch(strip_prefix(q, _SOLVE)).group(1).rstrip(". ")


def _term(k, var=""):
    """+5x, -x, +7; "" for 0 (1x is written x)."""
    if k == 0:
        return ""
    mag = "" if var and abs(k) == 1 else str(abs(k))
    return f"{'+' if k > 0 else '-'}{mag}{var}"


def spaced(eq):
    return re.sub(r"(?<=[\dx])([-+=])", r" \1 ", eq)


# linear: ax+b=c, params (a, b, c) with b signed
LINEAR_PHRASINGS = Phrasings((
    "Solve {eq}", "Solve for x: {eq}", "solve {eqs}", "Find x if {eq}.", "What is x if {eqs}?", "{eqs}. What is x?",
    "Solve for x: {eqs}", "If {eq}, what is x?", "Solve the equation {eqs}"), heldout=(3, 6))
_LIN_RE = re.compile(r"(\d{0,6})x(?:([+-])(\d{1,6}))?=(-?\d{1,7})")


def _draw_linear(rng, size):
    a = int(rng.integers(1, 21))
    x, b = (int(rng.integers(-20, 51)), int(rng.integers(0, 100))) if size == "train" else \
           (int(rng.integers(51, 101)), int(rng.integers(100, 1000)))
    b = b if rng.random() < 0.5 else -b
    return a, b, a * x + b


def _parse_linear(question):
    m = _LIN_RE.fullmatch(_equation(question) or "")
    if not m:
        return None
    a = int(m.group(1) or 1)
    b = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
    c = int(m.group(4))
    return (a, b, c) if a and (c - b) % a == 0 else None


def _linear_eq(p):
    return f"{_term(p[0], 'x').lstrip('+')}{_term(p[1])}={p[2]}"


# speed: a vehicle travels d km in t hours, params (d, t)
VEHICLES = ("train", "car", "bus", "truck", "boat", "plane", "cyclist", "tram")
SPEED_PHRASINGS = Phrasings((
    "A train travels {d} km in {t} {h}. What is its average speed?",
    "A {v} travels {d} km in {t} {h}. What is its average speed?",
    "What is the average speed of a {v} that travels {d} km in {t} {h}?",
    "A {v} covers {d} km in {t} {h}. How fast is it going?", "If a {v} drives {d} km in {t} {h}, what is its speed?",
    "a {v} goes {d} km in {t} {h}. what is its speed", "How fast is a {v} that travels {d} km in {t} {h}?",
    "A {v} travels {d} km in {t} {h}. Find its average speed.",
    # v4: more ways to ask, none of them the two held out
    "What is the speed of a {v} that covers {d} km in {t} {h}?",
    "How fast does a {v} go if it drives {d} km in {t} {h}?",
    "A {v} went {d} km in {t} {h}. How fast was it?", "Speed of a {v} going {d} km in {t} {h}?"), heldout=(6, 7))
_SPEED_RE = re.compile(r"(\d{1,7}) ?(?:km|kilometers|kilometres) in (\d{1,4}) hours?\b")


SPEED_V, SPEED_T = 300, 12            # speed's training range: v in 1..SPEED_V km/h, t in 1..SPEED_T hours


def _draw_speed(rng, size):
    v = int(rng.integers(1, SPEED_V + 1)) if size == "train" else int(rng.integers(SPEED_V + 1, 1000))
    t = int(rng.integers(1, SPEED_T + 1))
    return v * t, t, str(rng.choice(VEHICLES))


def _parse_speed(question):
    q = normal(question)
    m = _SPEED_RE.search(q or "")
    if not m or not ("speed" in q or "how fast" in q):
        return None
    d, t = int(m.group(1)), int(m.group(2))
    vehicle = next((w for w in re.findall(r"[a-z]+", q) if w in VEHICLES), "")
    return (d, t, vehicle) if t and d % t == 0 else None


# quadratic: x^2-sx+p=0 with integer roots, params (r1, r2), r1 <= r2
QUADRATIC_PHRASINGS = Phrasings((
    "Solve {eq}", "Solve for x: {eq}", "Find the roots of {eqs}.", "What are the solutions of {eq}?", "solve {eqs}",
    "Find x if {eqs}.", "Solve the equation {eq}", "If {eq}, what is x?"), heldout=(4, 7))
_QUAD_RE = re.compile(r"x\^2(?:([+-])(\d{0,4})x)?(?:([+-])(\d{1,6}))?=0")
_ROOTS_RE = re.compile(r"x=(-?\d+)(?:, ?x=(-?\d+))?")


def _draw_quadratic(rng, size):
    lo, hi = (-15, 20) if size == "train" else (21, 30)
    r = [int(x) for x in rng.integers(lo, hi + 1, 2)]
    if size != "train" and rng.random() < 0.5:
        r[0] = int(rng.integers(-15, 21))         # one root beyond the range is enough to be beyond it
    return tuple(sorted(r))


def _parse_quadratic(question):
    m = _QUAD_RE.fullmatch(_equation(question) or "")
    if not m:
        return None
    bx = 0 if m.group(1) is None else int(m.group(2) or 1) * (-1 if m.group(1) == "-" else 1)
    c = 0 if m.group(3) is None else int(m.group(4)) * (-1 if m.group(3) == "-" else 1)
    s, p = -bx, c                                  # x^2 - s x + p
    disc = s * s - 4 * p
    if disc < 0:
        return None
    d = int(round(disc ** 0.5))
    while d * d > disc:
        d -= 1
    while (d + 1) * (d + 1) <= disc:
        d += 1
    if d * d != disc or (s + d) % 2:
        return None
    return (s - d) // 2, (s + d) // 2


def quadratic_eq(roots):
    s, p = roots[0] + roots[1], roots[0] * roots[1]
    return f"x^2{_term(-s, 'x')}{_term(p)}=0"


def _quad_answer(p):
    return f"x={p[0]}" if p[0] == p[1] else f"x={p[0]},x={p[1]}"


def _quad_same(got, want):
    g, w = _ROOTS_RE.fullmatch(got.strip()), _ROOTS_RE.fullmatch(want)
    if not g:
        return False
    got_roots = sorted(int(r) for r in g.groups() if r is not None)
    want_roots = sorted(int(r) for r in w.groups() if r is not None)
    if len(want_roots) == 1:                           # double root: "x=3" or "x=3,x=3"
        return set(got_roots) == set(want_roots)
    return got_roots == want_roots


# fib: params n
FIB_PHRASINGS = Phrasings((
    "What is fib({n})?", "What is the {nth} Fibonacci number?", "fib({n})", "Compute fibonacci({n}).",
    "what's fib({n})", "What is Fibonacci number {n}?", "Calculate fib({n})", "What is fibonacci({n})?"),
    heldout=(6, 7))
_FIB_RES = [re.compile(p) for p in (r"fib(?:onacci)?\((\d{1,3})\)", r"the (\d{1,3})(?:st|nd|rd|th) fibonacci number",
                                    r"fibonacci number (\d{1,3})", r"fibonacci of (\d{1,3})")]
MAX_FIB = 200


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _parse_fib(question):
    q = normal(question)
    q = strip_prefix(q, ("what is", "compute", "calculate", "find")) if q else ""
    for pattern in _FIB_RES:
        m = pattern.fullmatch(q)
        if m and int(m.group(1)) <= MAX_FIB:
            return int(m.group(1))
    return None


def _speed_same(got, want):
    return re.fullmatch(r"\d+ ?km/h", got.strip()) is not None and got.strip().replace(" ", "") == want.replace(" ", "")


LINEAR = Family("linear", "ax+b=c or ax-b=c with a in 1..20, b in 0..99, x in -20..50", "x in 51..100, b in 100..999",
                _draw_linear, _parse_linear, lambda p: f"x={(p[2] - p[1]) // p[0]}", LINEAR_PHRASINGS,
                lambda p: {"eq": _linear_eq(p), "eqs": spaced(_linear_eq(p))},
                lambda got, want: got.strip().replace(" ", "") == want,
                size=sized(lambda p: p[0] <= 20 and abs(p[1]) <= 99 and -20 <= (p[2] - p[1]) // p[0] <= 50,
                           lambda p: p[0] <= 20 and abs(p[1]) <= 999 and -20 <= (p[2] - p[1]) // p[0] <= 100))
SPEED = Family("speed", "v = d/t with v in 1..300 km/h, t in 1..12 hours", "v in 301..999 km/h", _draw_speed,
               _parse_speed, lambda p: f"{p[0] // p[1]} km/h", SPEED_PHRASINGS,
               lambda p: {"d": p[0], "t": p[1], "h": "hour" if p[1] == 1 else "hours", "v": p[2] or "train"},
               _speed_same, size=sized(lambda p: 1 <= p[0] // p[1] <= 300 and p[1] <= 12,
                                       lambda p: 1 <= p[0] // p[1] <= 999 and p[1] <= 12))
QUADRATIC = Family("quadratic", "x^2+bx+c=0 with integer roots in -15..20", "a root in 21..30", _draw_quadratic,
                   _parse_quadratic, _quad_answer, QUADRATIC_PHRASINGS,
                   lambda p: {"eq": quadratic_eq(p), "eqs": spaced(quadratic_eq(p))}, _quad_same, heldout_every=8,
                   size=sized(lambda p: -15 <= p[0] and p[1] <= 20, lambda p: -15 <= p[0] and p[1] <= 30))
FIB = Family("fib", "fib(n) for n in 0..40 (fib(0)=0, fib(1)=1)", "n in 41..45",
             lambda rng, size: int(rng.integers(0, 41) if size == "train" else rng.integers(41, 46)), _parse_fib,
             lambda n: str(fib(n)), FIB_PHRASINGS, lambda n: {"n": n, "nth": ordinal(n)},
             lambda got, want: got.strip() == want, every=lambda: range(41),
             size=sized(lambda n: n <= 40, lambda n: n <= 45))
