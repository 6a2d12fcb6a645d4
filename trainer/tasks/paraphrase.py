"""Paraphrases of an owner's question, for `tinyr1 teach`: the ways a visitor retypes a question.

`PHRASINGS` are templates over `fields(question)`: case, closing punctuation, "what is" <-> "what's",
a polite or curt opening, a trailing "please", reordered words ("the oldest object here: what is it?").
Index 0 is the owner's own phrasing; the templates in `PHRASINGS.heldout` are never trained: they measure
phrasings the owner did not write (openings, endings and spacing training never shows).
"""
import re

from runtime.tasks.phrasing import Phrasings

_CONTRACT = [(r"\b(what|who|where|when|how|that|it)'s\b", r"\1 is"), (r"\b(what|who|where|when|how) is\b", r"\1's")]
_WH = re.compile(r"^(what|who|where|when|which|how|why)( [a-z]+)? (is|are|was|were|did|does|do|can|will|has|have)"
                 r" (.+)$")

PHRASINGS = Phrasings((
    "{q}", "{lower}", "{bare}", "{lower_bare}", "{swap}", "{lower_swap}", "{reordered}",
    "Tell me: {q}", "Tell me, {lower_bare}", "Please, {lower}", "Q: {q}", "{bare}, please?",
    "Quick question: {lower}", "Can you tell me {lower_bare}?", "{q} ",
    # held out: never trained
    "{lower_bare} ?", "Do you know {lower_bare}?", "Hey, {lower_swap}", "I wonder: {lower_bare}?", "{bare}, thanks!",
), heldout=(15, 16, 17, 18, 19))


def swap(q):
    """ "What is X?" <-> "What's X?" (the first such pair; unchanged when there is none)."""
    for pattern, repl in _CONTRACT:
        s = re.sub(pattern, repl, q, count=1, flags=re.IGNORECASE)
        if s != q:
            return s[0].upper() + s[1:] if q[:1].isupper() else s
    return q


def reordered(bare):
    """ "what is the oldest object here" -> "the oldest object here: what is it?"; other questions turn
    around their first comma or are asked back ("the oldest object here?")."""
    low = bare[0].lower() + bare[1:] if bare else bare
    m = _WH.match(low)
    if m:
        wh, noun, verb, rest = m.groups()
        return f"{rest}: {wh}{noun or ''} {verb} it?"
    head, comma, tail = low.partition(", ")
    return f"{tail}, {head}?" if comma else f"{low}?"


def fields(question):
    q = " ".join(question.split())
    bare = q.rstrip(" ?.!")
    lower_bare = bare.lower()
    return {"q": q, "lower": q.lower(), "bare": bare, "lower_bare": lower_bare, "swap": swap(q),
            "lower_swap": swap(q).lower(), "reordered": reordered(bare)}


def phrase(question, template):
    return template.format(**fields(question))


def variants(question, which="train"):
    """The distinct phrasings of `question` in "train" (the owner's own first) or "heldout"."""
    idx = [i for i in range(len(PHRASINGS.templates)) if (i in PHRASINGS.heldout) == (which == "heldout")]
    out = []
    for i in idx:
        v = phrase(question, PHRASINGS.templates[i])
        if v not in out:
            out.append(v)
    return out
