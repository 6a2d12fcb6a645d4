"""Task families: seeded question generators, phrasings and answer verifiers (no training code; the kiosk
uses them), and the out-of-scope questions the model refuses.

Families, in order: add, sub, mul, count, linear, speed, quadratic, fib, sort, faq. Each documents its
training range (`train_range`) and its extrapolation range one size beyond (`extrapolation`).
"""
from runtime.completion import parse
from runtime.errors import TaskError
from runtime.tasks.algebra import FIB, LINEAR, QUADRATIC, SPEED
from runtime.tasks.arithmetic import ADD, MUL, SUB
from runtime.tasks.base import Family, Problem, split_of, subsplit_of
from runtime.tasks.faq import DEFAULT_FAQ, faq_family, load_faq, pairs_family
from runtime.tasks.scope import REFUSAL, REFUSAL_THINKING, OutOfScope, is_refusal
from runtime.tasks.reach import is_beyond
from runtime.tasks.words import COUNT, SORT

FAMILIES = {f.name: f for f in (ADD, SUB, MUL, COUNT, LINEAR, SPEED, QUADRATIC, FIB, SORT, faq_family())}


def families_of(model=None):
    """The families that judge a model's answers: FAMILIES, and first the owner's taught answers the model
    file carries (`tinyr1 teach`; Model.taught), which win over a built-in FAQ answer to the same question."""
    taught = getattr(model, "taught", None)
    if not taught:
        return FAMILIES
    return {"taught": pairs_family(taught, "taught", "the {n} taught questions of the model file"), **FAMILIES}


def family_of(question, families=None):
    """The family whose parser accepts `question`, or None."""
    for fam in (families or FAMILIES).values():
        if fam.parse(question) is not None:
            return fam
    return None


VERDICTS = ("right", "wrong", "refused", "unverifiable", "cut off")
OUT_OF_SCOPE = OutOfScope(lambda q: family_of(q) is not None)


def score(question, completion, families=None):
    """-> {correct, well_formed, answer, family, refused}; correct is None when no family knows the question
    (then the right answer is the refusal: `refused`). The answer is the completion's closed answer block
    (runtime.completion.parse), None when there is none."""
    fam = family_of(question, families)
    c = parse(completion)
    correct = None if fam is None else fam.verify(question, c.final_answer)
    return {"correct": correct, "well_formed": c.well_formed, "answer": c.final_answer,
            "family": fam.name if fam else None, "refused": is_refusal(c.final_answer)}


def judge(question, text, cut, families):
    """A kiosk's answer -> (verdict, answer, expected, covered): verdict one of VERDICTS (the pre-flight check,
    runtime/kiosk/preflight.py, explains them); answer the closed answer, or the text so far when cut off;
    expected the right answer when a family covers the question; `cut`, truthy when the generation stopped
    at its token limit or a full context."""
    fam = family_of(question, families)
    expected = fam.solve(question) if fam is not None else None
    c = parse(text)
    if cut and c.final_answer is None:
        return "cut off", c.answer, expected, fam is not None
    answer = c.final_answer
    if is_refusal(answer) or is_beyond(answer):
        return "refused", answer, expected, fam is not None
    if fam is None:
        return "unverifiable", answer, None, False
    return ("right" if fam.verify(question, answer) else "wrong"), answer, expected, True


__all__ = ["FAMILIES", "Family", "Problem", "TaskError", "family_of", "score", "split_of", "subsplit_of",
           "faq_family", "load_faq", "pairs_family", "families_of", "DEFAULT_FAQ", "OUT_OF_SCOPE", "REFUSAL", "REFUSAL_THINKING", "is_refusal", "judge", "VERDICTS"]
