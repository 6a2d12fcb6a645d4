"""Training-side tasks: the runtime's generators and verifiers plus chain-of-thought writers and
user JSONL datasets. "refuse" is the out-of-scope questions (runtime/tasks/scope.py), trained with the
refusal as their answer."""
from runtime.tasks import FAMILIES, OUT_OF_SCOPE, REFUSAL, Family, Problem, family_of, score, split_of  # noqa: F401
from runtime.tasks.words import WORDS
from trainer.tasks.cot import (LETTERED, PAD_FAMILIES, WRITERS, cot_fib, draw_count_width, draw_item_offset,  # noqa: F401
                               draw_offset, draw_width, index_answer, reasoning, target, target_text)
from trainer.tasks.drill import FIB_DRILL, drilled_fib, drilled_sort, drilled_speed, fib_from
from trainer.tasks.jsonl import Example, load_jsonl  # noqa: F401
from trainer.tasks.paraphrase import distracted, filler, restyled

TRAINABLE = list(FAMILIES) + [OUT_OF_SCOPE.name]      # what a recipe's `families:` may weight


def make_example(family, rng, split="train", restyle=0.0, places=False, pad=0.0, distract=0.0, pad_count=0.0,
                 speed_facts=0.0, distract_strings=0.0, sort_trace="buckets", fib_sums=False,
                 fib_drill=0.0, fib_drill_long=0.0, items=False, sort_runs=0.0):
    """A fresh Example of `family` (or "refuse") from `split`, with its chain of thought. For a model with
    `places` (runtime/tokenizer.py) question, trace and answer mark places from one random offset
    (Example.offset, trainer/tasks/cot.py). With probability `restyle` its question is retyped with an
    opening, a form and an ending from the pools of trainer/tasks/paraphrase.py (training only: the result
    need not parse; GRPO keeps restyle 0). With probability `pad` (places only) an add or sub trace is written
    at a wider width, with leading zeros (cot.draw_width); its draw comes last, so pad 0 keeps the batches
    of recipes written before it. With probability `distract` a count question gets a random word before its
    letter (paraphrase.distracted), drawn last too; with probability `distract_strings` that word is a random
    letter string (paraphrase.filler), drawn only when distract_strings > 0. With probability `pad_count` a
    count trace starts with "." entries, up to cot.COUNT_WIDEST in all (cot.draw_count_width), drawn after
    that. With probability `speed_facts` a speed problem is drawn for one step of its long division, uniform
    over all steps (trainer/tasks/drill.py); speed_facts 0 draws nothing, so older recipes keep their batches.
    A sort trace is written as `sort_trace` (cot.cot_sort: buckets, tally, radix, counted or items), with
    `fib_sums` a fib trace its values ones first with place letters (cot.cot_fib); neither draws. With probability
    `fib_drill` a fib example is a sequence from another start (trainer/tasks/drill.py drilled_fib), drawn
    only when fib_drill > 0, and a share `fib_drill_long` of those a long one (drill.long_fib). For a model
    with `items` the item letters of its lists start at a random offset (Example.item_offset,
    cot.draw_item_offset), drawn last, so items false keeps the batches of older recipes; the sort traces
    "indexed" and "nth" draw their entry letters' offset the same way (for sort only) and write the answer's
    numbers after their entries' hints (cot.index_answer). With probability `sort_runs` a sort list is
    drawn with long runs of equal numbers (drill.py drilled_sort), drawn only when sort_runs > 0."""
    o = draw_offset(rng) if places else 0
    trace = None                                  # the chain of thought, unless the question's own (reasoning)
    if family == OUT_OF_SCOPE.name:
        canonical = OUT_OF_SCOPE.sample(rng, split)
        answer = REFUSAL
    elif family == "fib" and fib_drill and rng.random() < fib_drill:
        k, a, b = drilled_fib(rng, fib_drill_long)
        canonical, answer = FIB_DRILL.format(k=k, a=a, b=b), str(fib_from(k, a, b))
        trace = cot_fib(k, o, fib_sums, (a, b))
    else:
        drilled = family == "speed" and speed_facts and rng.random() < speed_facts
        runs = family == "sort" and sort_runs and rng.random() < sort_runs
        p = FAMILIES[family].sample(rng, split, draw=drilled_speed if drilled else drilled_sort if runs else None)
        canonical, answer = p.question, p.answer
    question = canonical
    if restyle and rng.random() < restyle:
        question = restyled(question, rng)
    width = 0
    if places and pad and family in PAD_FAMILIES and rng.random() < pad:
        width = draw_width(rng)
    if family == "count":
        letter, word = FAMILIES["count"].parse(canonical)
        if distract and rng.random() < distract:
            strings = distract_strings and rng.random() < distract_strings
            question = distracted(question, letter, filler(rng) if strings else str(rng.choice(WORDS))) or question
        if pad_count and rng.random() < pad_count:
            width = draw_count_width(rng, word)
    lettered = family == "sort" and sort_trace in LETTERED
    io = draw_item_offset(rng) if items or lettered else None
    trace = trace or reasoning(canonical, family, o, width, sort_trace, fib_sums, io)
    if lettered:                                  # the answer's numbers after their entries' letters
        answer = index_answer(answer, io, sort_trace)
    return Example(question, trace, answer, family, offset=o, item_offset=io or 0)
