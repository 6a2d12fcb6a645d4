"""Training-side tasks: the runtime's generators and verifiers plus chain-of-thought writers and
user JSONL datasets."""
from runtime.tasks import (FAMILIES, Family, Problem, extract_answer, family_of, is_well_formed, score,  # noqa: F401
                           split_of)
from trainer.tasks.cot import WRITERS, reasoning, target, target_text  # noqa: F401
from trainer.tasks.jsonl import Example, load_jsonl  # noqa: F401


def make_example(family, rng, split="train"):
    """A fresh Example of `family` from `split`, with its chain of thought."""
    p = FAMILIES[family].sample(rng, split)
    return Example(p.question, reasoning(p.question, family), p.answer, family)
