"""Verifiable rewards for GRPO: plain functions `reward(question, completion) -> float`.

R1 uses two rule-based rewards, no learned reward model:
- accuracy: the task family's verifier on the final answer (1 or 0); for a question no family covers, 1
  for the refusal (runtime/tasks/scope.py);
- format: 1 when the completion is exactly `<think>...</think><answer>...</answer>` (a full match,
  so trailing text, missing or repeated tags score 0).
A recipe weights them (`rewards: {accuracy: 1.0, format: 0.2}`); a key `package.module:function`
adds a user's own reward function with the same signature.
"""
import importlib
import math

from runtime.checks import check_range
from runtime.completion import parse
from runtime.errors import ConfigError
from runtime.tasks import family_of, is_refusal


def accuracy_reward(question, completion):
    """1.0 when the verifier accepts the answer. More than one <answer> block scores 0: a policy
    must not be paid for listing several guesses."""
    c = parse(completion)
    fam = family_of(question)
    if c.answers != 1:
        return 0.0
    if fam is None:
        return 1.0 if is_refusal(c.final_answer) else 0.0
    return 1.0 if fam.verify(question, c.final_answer) else 0.0


def format_reward(question, completion):
    return 1.0 if parse(completion).well_formed else 0.0


REWARDS = {"accuracy": accuracy_reward, "format": format_reward}


def resolve(weights, source="grpo.rewards"):
    """{name or 'module:function': weight} -> list of (name, function, weight)."""
    out = []
    for name, w in weights.items():
        if name in REWARDS:
            fn = REWARDS[name]
        elif ":" in name:
            mod, _, attr = name.partition(":")
            try:
                fn = getattr(importlib.import_module(mod), attr)
            except (ImportError, AttributeError) as e:
                raise ConfigError(f"{source}: cannot import reward {name!r}: {e}") from None
        else:
            raise ConfigError(f"{source}: unknown reward {name!r}; built in: {', '.join(REWARDS)}, "
                              f"or 'package.module:function'")
        check_range(w, "(-inf, inf)", source, name)
        out.append((name, fn, float(w)))
    return out


def score_all(rewards, question, completion):
    """-> (weighted total, {name: raw value}). A reward that is not a finite number is an error: NaN
    would drop its whole group from the update without a word (its spread compares as 0)."""
    parts = {}
    for name, fn, _ in rewards:
        v = fn(question, completion)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"reward {name!r} returned {v!r} for the question {question!r}; "
                              f"a reward must be a finite number")
        parts[name] = float(v)
    return sum(w * parts[name] for name, _, w in rewards), parts
