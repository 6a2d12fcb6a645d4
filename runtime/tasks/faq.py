"""faq: fixed question/answer pairs from a YAML file, so a kiosk owner can add canned answers.

The file is a list of `{question: ..., answer: ...}`. FAQ has no held-out split: it measures recall of
the canned answers, and its questions are in every split."""
import os

import yaml

from runtime.errors import TaskError
from runtime.tasks.base import Family, norm_space
from runtime.tasks.phrasing import Phrasings, normal

DEFAULT_FAQ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faq.yaml")


def load_faq(path):
    """-> list of (question, answer); TaskError names the file, entry, field and value."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise TaskError(f"{path}: cannot read FAQ file: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise TaskError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(data, list) or not data:
        raise TaskError(f"{path}: expected a non-empty list of {{question, answer}} entries")
    pairs, seen = [], set()
    for i, entry in enumerate(data):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict):
            raise TaskError(f"{where}: expected a mapping with question and answer, got {entry!r}")
        for key in entry:
            if key not in ("question", "answer"):
                raise TaskError(f"{where}: unknown field {key!r}; allowed: question, answer")
        for key in ("question", "answer"):
            if key not in entry:
                raise TaskError(f"{where}: missing field {key!r}")
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise TaskError(f"{where}: field {key!r} must be a non-empty string, got {entry[key]!r}")
        q, a = entry["question"].strip(), entry["answer"].strip()
        if q in seen:
            raise TaskError(f"{where}: duplicate question {q!r}")
        seen.add(q)
        pairs.append((q, a))
    return pairs


def faq_family(path=DEFAULT_FAQ):
    return pairs_family(load_faq(path), "faq", f"the {{n}} questions of {os.path.basename(path)}")


def pairs_family(pairs, name, train_range):
    """A family of fixed (question, answer) pairs: a question matches case-, space- and punctuation-
    insensitively (runtime.tasks.phrasing.normal); `train_range` may say {n}, the number of pairs."""
    answers = dict(pairs)
    by_normal = {normal(q): q for q, _ in pairs}       # "what is moe" finds "What is MoE?"
    questions = [q for q, _ in pairs]

    def draw(rng, size):
        return questions[int(rng.integers(len(questions)))]

    return Family(name, train_range.format(n=len(pairs)), "none (fixed answers)",
                  draw, lambda q: by_normal.get(normal(q)), lambda q: answers[q], Phrasings(("{q}",)),
                  lambda q: {"q": q}, lambda got, want: norm_space(got) == norm_space(want),
                  every=lambda: questions)
