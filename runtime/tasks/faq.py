"""faq: fixed question/answer pairs from a YAML file, so a kiosk owner can add canned answers.

The file is a list of `{question: ..., answer: ...}`. FAQ has no held-out split of questions: it measures
recall of the canned answers, and its questions are in every split; two of its phrasings are held out
(FAQ_PHRASINGS), so `tinyr1 eval` measures recall under phrasings training never used."""
import os
import re

import yaml

from runtime.errors import TaskError
from runtime.tasks.base import Family, norm_space
from runtime.tasks.phrasing import _TRAIL, Phrasings, normal, strip_prefix

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


# How a visitor retypes a canned question: [0] as written; the last two are held out of training
FAQ_PHRASINGS = Phrasings((
    "{q}", "{lower}", "{bare}", "{lower_bare}", "{swap}", "{lower_swap}?", "Tell me: {q}", "Q: {lower}",
    "{bare}, please?", "Please, {lower_bare}?", "Quick question: {lower}", "Can you tell me {lower_bare}?",
    "Do you know {lower_bare}?", "{bare}, thanks!",
), heldout=(12, 13))
OPENINGS = ("tell me", "q", "quick question", "can you tell me", "please,", "please", "do you know")
ENDINGS = (", please", ", thanks", " please", " thanks")


def key(question):
    """The form two phrasings of one canned question share: normal(), without an opening or ending of
    FAQ_PHRASINGS ("Q: what's MoE?" and "What is MoE, thanks!" are both "what is moe")."""
    q = normal(question)
    if q is None:
        return None
    for e in ENDINGS:
        if q.endswith(e):
            q = _TRAIL.sub("", q[:-len(e)])
    return strip_prefix(q, OPENINGS)


def fields(question):
    bare = question.rstrip(" ?.!")
    swap = _swap(bare)
    return {"q": question, "lower": question.lower(), "bare": bare, "lower_bare": bare.lower(), "swap": swap,
            "lower_swap": swap.lower()}


def _swap(bare):
    """ "What is X" <-> "What's X" (the first one; unchanged when there is none)."""
    for pattern, repl in ((r"\b([Ww]hat|[Ww]ho|[Ww]here|[Hh]ow)'s\b", r"\1 is"), (r"\b([Ww]hat|[Ww]ho|[Ww]here|[Hh]ow) is\b", r"\1's")):
        s = re.sub(pattern, repl, bare, count=1)
        if s != bare:
            return s
    return bare


def faq_family(path=DEFAULT_FAQ):
    return pairs_family(load_faq(path), "faq", f"the {{n}} questions of {os.path.basename(path)}", FAQ_PHRASINGS)


def pairs_family(pairs, name, train_range, phrasings=Phrasings(("{q}",))):
    """A family of fixed (question, answer) pairs: a question matches case-, space- and punctuation-
    insensitively and with or without an opening or ending of FAQ_PHRASINGS (`key`); `train_range` may say
    {n}, the number of pairs."""
    answers = dict(pairs)
    by_key = {key(q): q for q, _ in pairs}              # "what is moe" finds "What is MoE?"
    questions = [q for q, _ in pairs]

    def draw(rng, size):
        return questions[int(rng.integers(len(questions)))]

    return Family(name, train_range.format(n=len(pairs)), "none (fixed answers)",
                  draw, lambda q: by_key.get(key(q)), lambda q: answers[q], phrasings,
                  fields, lambda got, want: norm_space(got) == norm_space(want),
                  every=lambda: questions)
