"""Speed problems drawn so that every long-division step is practised (recipe option `speed_facts`).

Speed's own draw (v in 1..300 km/h, t in 1..12 hours, d = v*t) makes a step m/t of d's long division
(trainer/tasks/cot.py divide) as common as the distances that lead to it: in 20,000 training problems 55/8
is a step of 3, 40/8 of 201 (examples/measure/division_facts.py), and student v8 wrote `55/8=6r3`. A drilled
problem picks a step (m, t) uniformly among all the steps the range holds, then a speed whose division
takes it, so the rarest step is practised as often as any other.
"""
import functools

from runtime.tasks import FAMILIES
from runtime.tasks.algebra import VEHICLES
from runtime.tasks.base import split_of, subsplit_of

V_MAX, T_MAX = 300, 12                 # speed's training range (runtime/tasks/algebra.py _draw_speed)


def division_steps(d, t):
    """The dividends m of d/t's long division, one per digit of d: 300/5 -> [3, 30, 0]."""
    out, r = [], 0
    for c in str(d):
        m = r * 10 + int(c)
        out.append(m)
        r = m % t
    return out


@functools.lru_cache(maxsize=1)
def steps_index():
    """[((m, t), (v, ...)), ...]: every step of the training range with the speeds whose division takes it
    (v ascending); 759 steps."""
    index = {}
    for t in range(1, T_MAX + 1):
        for v in range(1, V_MAX + 1):
            for m in set(division_steps(v * t, t)):
                index.setdefault((m, t), []).append(v)
    return sorted((k, tuple(vs)) for k, vs in index.items())


def drilled_speed(rng, split="train"):
    """(d, t, vehicle) of a speed problem from `split` (as Family.sample splits it) whose division takes a
    step drawn uniformly among all steps of the range."""
    index, speed = steps_index(), FAMILIES["speed"]
    for _ in range(1000):
        (m, t), vs = index[int(rng.integers(len(index)))]
        v = vs[int(rng.integers(len(vs)))]
        p = (v * t, t, str(rng.choice(VEHICLES)))
        canonical = speed.phrase(p)
        if split_of(canonical, speed.heldout_every) == split or subsplit_of(canonical, speed.heldout_every) == split:
            return p
    raise ValueError(f"speed: no {split} problem found in 1000 drilled draws")
