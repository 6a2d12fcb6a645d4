"""Drills: speed problems drawn so that every long-division step is practised (recipe option
`speed_facts`), Fibonacci-like sequences from other starts, to practise fib's sums (`fib_drill`), and sort
lists of the training range with long runs of equal numbers (`sort_runs`).

Speed's own draw (v in 1..300 km/h, t in 1..12 hours, d = v*t) makes a step m/t of d's long division
(trainer/tasks/cot.py divide) as common as the distances that lead to it: in 20,000 training problems 55/8
is a step of 3, 40/8 of 201 (examples/measure/division_facts.py), and student v8 wrote `55/8=6r3`. A drilled
problem picks a step (m, t) uniformly among all the steps the range holds, then a speed whose division
takes it, so the rarest step is practised as often as any other.
"""
import functools

import numpy as np

from runtime.errors import TaskError
from runtime.tasks.algebra import SPEED_T, SPEED_V, VEHICLES, fib
from trainer.tasks.cot import division_steps, fib_values


@functools.lru_cache(maxsize=1)
def steps_index():
    """[((m, t), (v, ...)), ...]: every step of the training range with the speeds whose division takes it
    (v ascending); 759 steps."""
    index = {}
    for t in range(1, SPEED_T + 1):
        for v in range(1, SPEED_V + 1):
            for m in set(division_steps(v * t, t)):
                index.setdefault((m, t), []).append(v)
    return sorted((k, tuple(vs)) for k, vs in index.items())


def drilled_speed(rng, size="train"):
    """(d, t, vehicle): a speed problem of the training range whose division takes a step drawn uniformly
    among all steps of the range; a `draw` for Family.sample, which keeps it in its split."""
    if size != "train":
        raise TaskError(f"speed: drilled problems are of the training range, not {size!r}")
    (_, t), vs = steps_index()[int(rng.integers(len(steps_index())))]
    v = vs[int(rng.integers(len(vs)))]
    return v * t, t, str(rng.choice(VEHICLES))


FIB_DRILL = "What is fib({k}) if fib(0)={a} and fib(1)={b}?"
FIB_DRILL_DIGITS, FIB_DRILL_STEPS = 10, 10    # the longest start, and the most values after it
FIB_DRILL_ZEROS, FIB_DRILL_COUNT = 0.2, 60    # the share of sequences of zeros, and their largest k
FIB_VALUES = {fib(n) for n in range(20, 61)}


def drilled_fib(rng, long=0.0):
    """(k, a, b): a Fibonacci-like sequence from fib(0) = a, fib(1) = b, asked for fib(k). Mostly a and b
    of 1-10 digits (b within a digit of a) and k = 2..10, whose values reach 11 digits: fib's own trace lists
    one sequence, so its sums can be recalled rather than computed (v13 answered none of fib(41..45)); here
    the values are random and the sum is the only thing to learn. A share FIB_DRILL_ZEROS are sequences of
    zeros (a = b = 0) with k = 11..60: their traces are short, and practise the countdown from past 40 (a first
    v14 run without them counted fib(42)'s countdown 42, 21, 20, ...). fib's own values never occur. Not a
    question the runtime parses: training only. With probability `long` (drawn only when long > 0) the
    sequence is a long one instead (long_fib)."""
    if long and rng.random() < long:
        return long_fib(rng)
    if rng.random() < FIB_DRILL_ZEROS:
        return int(rng.integers(11, FIB_DRILL_COUNT + 1)), 0, 0
    d = int(rng.integers(1, FIB_DRILL_DIGITS + 1))
    e = int(np.clip(d + rng.integers(-1, 2), 1, FIB_DRILL_DIGITS))
    a = int(rng.integers(0 if d == 1 else 10 ** (d - 1), 10 ** d))
    b = int(rng.integers(0 if e == 1 else 10 ** (e - 1), 10 ** e))
    return int(rng.integers(2, FIB_DRILL_STEPS + 1)), a, b


FIB_LONG_STEPS, FIB_LONG_CHARS = (20, 45), 480     # k of a long sequence; the most characters of its values


def long_fib(rng):
    """(k, a, b): fib(0) = a and fib(1) = b in 0..99, k = 20..45, as long as fib's own traces (v14 summed
    short drilled sequences right but lost carries and the countdown past ~470 tokens, where only fib's own
    traces had been). Redrawn while a value is a Fibonacci number of fib(20) or more (so no sequence is fib's
    own, shifted, and none holds fib(41..45)) or its values, written with place letters, pass FIB_LONG_CHARS."""
    for _ in range(1000):
        k, a, b = int(rng.integers(FIB_LONG_STEPS[0], FIB_LONG_STEPS[1] + 1)), *map(int, rng.integers(0, 100, 2))
        vals = fib_values(k, (a, b))
        if not FIB_VALUES & set(vals) and 2 * sum(len(str(v)) for v in vals) <= FIB_LONG_CHARS:
            return k, a, b
    raise TaskError("fib: no long drill sequence found in 1000 draws")


def fib_from(k, a, b):
    """fib(k) of the sequence with fib(0) = a, fib(1) = b, fib(i) = fib(i-1) + fib(i-2)."""
    return fib_values(k, (a, b))[-1]


SORT_RUNS_VALUES = 5        # a drilled sort list's numbers come from at most this many distinct values


def drilled_sort(rng, size="train"):
    """A sort list of the training range (6-12 numbers in 0..99, single digits 30% of the time, as sort's
    own draw) whose numbers are drawn from 1-5 distinct values, so runs of equal numbers run up to 12 long;
    a `draw` for Family.sample. Sort's own draw repeats a number 4 or more times in 7.7% of its lists of 12
    and 13% of its lists of 13-16 (4,000 lists each), and v13 lost one of such runs, in its trace or in the
    answer's copy (`8:3,5,5` answered `85 85 85`)."""
    if size != "train":
        raise TaskError(f"sort: drilled lists are of the training range, not {size!r}")
    n = int(rng.integers(6, 13))
    hi = 10 if rng.random() < 0.3 else 100
    values = rng.choice(hi, size=int(rng.integers(1, SORT_RUNS_VALUES + 1)), replace=False)
    return tuple(int(values[i]) for i in rng.integers(0, len(values), n))
