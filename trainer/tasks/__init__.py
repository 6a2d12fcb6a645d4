"""Training-side tasks: the runtime's generators and verifiers plus chain-of-thought writers and
user JSONL datasets."""
from runtime.tasks import FAMILIES, Family, Problem, family_of, score, split_of  # noqa: F401
from trainer.tasks.cot import WRITERS, reasoning, target, target_text  # noqa: F401
from trainer.tasks.jsonl import Example, load_jsonl  # noqa: F401


def make_example(family, rng, split="train"):
    """A fresh Example of `family` from `split`, with its chain of thought."""
    p = FAMILIES[family].sample(rng, split)
    return Example(p.question, reasoning(p.question, family), p.answer, family)
