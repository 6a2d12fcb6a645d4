"""Speed problems drawn so that every long-division step is practised (recipe option `speed_facts`).

Speed's own draw (v in 1..300 km/h, t in 1..12 hours, d = v*t) makes a step m/t of d's long division
(trainer/tasks/cot.py divide) as common as the distances that lead to it: in 20,000 training problems 55/8
is a step of 3, 40/8 of 201 (examples/measure/division_facts.py), and student v8 wrote `55/8=6r3`. A drilled
problem picks a step (m, t) uniformly among all the steps the range holds, then a speed whose division
takes it, so the rarest step is practised as often as any other.
"""
import functools

from runtime.errors import TaskError
from runtime.tasks.algebra import SPEED_T, SPEED_V, VEHICLES
from trainer.tasks.cot import division_steps


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
