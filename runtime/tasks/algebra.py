"""linear (`Solve 3x+5=20`), speed (the train question), quadratic (`Solve x^2-5x+6=0`), fib."""
import re

from runtime.tasks.base import Family

_LIN_RE = re.compile(r"Solve (\d+)x([+-])(\d+)=(\d+)")
_SPEED_RE = re.compile(r"A train travels (\d+) km in (\d+) hours\. What is its average speed\?")
_QUAD_RE = re.compile(r"Solve x\^2-(\d+)x\+(\d+)=0")
_FIB_RE = re.compile(r"What is fib\((\d+)\)\?")
_ROOTS_RE = re.compile(r"x=(-?\d+)(?:, ?x=(-?\d+))?")


def _draw_linear(rng, size):
    while True:
        a = int(rng.integers(2, 10))
        x, b = (int(rng.integers(0, 13)), int(rng.integers(1, 10))) if size == "train" else \
               (int(rng.integers(13, 31)), int(rng.integers(10, 31)))
        sign = "+" if rng.random() < 0.5 else "-"
        c = a * x + b if sign == "+" else a * x - b
        if c >= 0:
            return f"Solve {a}x{sign}{b}={c}"


def _parse_linear(q):
    m = _LIN_RE.fullmatch(q)
    if not m:
        return None
    a, b, c = int(m.group(1)), int(m.group(3)), int(m.group(4))
    b = b if m.group(2) == "+" else -b
    return (a, b, c) if a and (c - b) % a == 0 else None


def _draw_speed(rng, size):
    t = int(rng.integers(2, 10))
    v = int(rng.integers(10, 100)) if size == "train" else int(rng.integers(100, 301))
    return f"A train travels {v * t} km in {t} hours. What is its average speed?"


def _parse_speed(q):
    m = _SPEED_RE.fullmatch(q)
    if not m or int(m.group(2)) == 0 or int(m.group(1)) % int(m.group(2)):
        return None
    return int(m.group(1)), int(m.group(2))


def _draw_quadratic(rng, size):
    lo, hi = (1, 9) if size == "train" else (10, 15)
    r1, r2 = sorted(int(r) for r in rng.integers(lo, hi + 1, 2))
    return f"Solve x^2-{r1 + r2}x+{r1 * r2}=0"


def _parse_quadratic(q):
    m = _QUAD_RE.fullmatch(q)
    if not m:
        return None
    s, p = int(m.group(1)), int(m.group(2))
    roots = [a for a in range(0, s // 2 + 1) if a * (s - a) == p]
    return (roots[0], s - roots[0]) if roots else None


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


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _draw_fib(rng, size):
    # up to 25 so that every value of a held-out n appears in several training traces (fib(19) needs 4181,
    # which n <= 20 shows once); 26..28 still fits the student's 256-token context
    return f"What is fib({rng.integers(0, 26) if size == 'train' else rng.integers(26, 29)})?"


def _parse_fib(q):
    m = _FIB_RE.fullmatch(q)
    return int(m.group(1)) if m and int(m.group(1)) <= 90 else None


def _speed_same(got, want):
    return re.fullmatch(r"\d+ ?km/h", got.strip()) is not None and got.strip().replace(" ", "") == want.replace(" ", "")


LINEAR = Family("linear", "ax+b=c or ax-b=c with a in 2..9, x in 0..12, b in 1..9, c >= 0",
                "x in 13..30, b in 10..30", _draw_linear, _parse_linear, lambda p: f"x={(p[2] - p[1]) // p[0]}",
                lambda got, want: got.strip().replace(" ", "") == want)
SPEED = Family("speed", "v = d/t with t in 2..9 hours, v in 10..99 km/h", "v in 100..300 km/h", _draw_speed,
               _parse_speed, lambda p: f"{p[0] // p[1]} km/h", _speed_same)
QUADRATIC = Family("quadratic", "x^2-sx+p=0 with integer roots 1..9", "roots 10..15", _draw_quadratic,
                   _parse_quadratic, _quad_answer, _quad_same)
FIB = Family("fib", "fib(n) for n in 0..25 (fib(0)=0, fib(1)=1)", "n in 26..28", _draw_fib, _parse_fib,
             lambda n: str(fib(n)), lambda got, want: got.strip() == want)
