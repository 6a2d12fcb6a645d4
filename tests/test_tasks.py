"""Task families: canonical answers, phrasings, ranges, seeded generators, disjoint splits, out-of-scope
questions, verifiers, format checks."""
import re

import numpy as np
import pytest

from runtime.errors import TaskError
from runtime.tasks import (DEFAULT_FAQ, FAMILIES, OUT_OF_SCOPE, REFUSAL, family_of, faq_family, load_faq, score,
                           split_of)
from runtime.tasks.scope import HELDOUT_KINDS, KINDS

CANONICAL = {
    "add": ("What is 47+38?", "85"), "sub": ("What is 82-47?", "35"), "mul": ("What is 23*7?", "161"),
    "count": ("How many r in strawberry?", "3"), "linear": ("Solve 3x+5=20", "x=5"),
    "speed": ("A train travels 300 km in 5 hours. What is its average speed?", "60 km/h"),
    "quadratic": ("Solve x^2-5x+6=0", "x=2,x=3"), "fib": ("What is fib(10)?", "55"),
    "sort": ("Sort 5 3 9 1", "1 3 5 9"),
}
FAMS = [f for f in FAMILIES if f != "faq"]


def test_every_family_is_registered_in_order():
    assert list(FAMILIES) == ["add", "sub", "mul", "count", "linear", "speed", "quadratic", "fib", "sort", "faq"]
    for fam in FAMILIES.values():
        assert fam.train_range and fam.extrapolation


@pytest.mark.parametrize("family", list(CANONICAL))
def test_canonical_question(family):
    q, a = CANONICAL[family]
    assert family_of(q).name == family and FAMILIES[family].solve(q) == a and FAMILIES[family].verify(q, a)
    assert FAMILIES[family].phrase(FAMILIES[family].parse(q)) == q          # template 0 is the canonical form


@pytest.mark.parametrize("q, family, answer", [          # the issue's visitors, as they typed
    ("What is 5+3?", "add", "8"), ("What is 123+456?", "add", "579"), ("What is 47 + 38?", "add", "85"),
    ("what is 47+38?", "add", "85"), ("WHAT IS 47 PLUS 38", "add", "85"), ("Calculate 47+38", "add", "85"),
    ("What's 9 minus 12?", "sub", "-3"), ("Subtract 5 from 12.", "sub", "7"), ("what is 12 x 3", "mul", "36"),
    ("How many times does the letter r appear in strawberry?", "count", "3"),
    ("How many 'r' in Strawberry?", "count", "3"), ("how many z's are in pizza", "count", "2"),
    ("Solve for x: 3x + 5 = 20", "linear", "x=5"), ("Solve x-7=-27", "linear", "x=-20"),
    ("If a car drives 120 km in 1 hour, what is its speed?", "speed", "120 km/h"),
    ("Solve x^2+x-6=0", "quadratic", "x=-3,x=2"), ("Solve x^2-9=0", "quadratic", "x=-3,x=3"),
    ("solve x^2 - 4x + 4 = 0", "quadratic", "x=2"), ("What is fib(30)?", "fib", "832040"),
    ("What is the 12th Fibonacci number?", "fib", "144"), ("Sort these numbers: 12, 5, 37", "sort", "5 12 37"),
    ("Put 9, 1 and 4 in order.", "sort", "1 4 9"), ("what is moe", "faq", None),
])
def test_phrasings_people_type(q, family, answer):
    fam = family_of(q)
    assert fam is not None and fam.name == family, q
    assert answer is None or fam.solve(q) == answer


@pytest.mark.parametrize("q", ["Hello", "What is the capital of Oregon?", "What is 7/2?", "Solve 2x^2+3x-5=0",
                               "How many vowels in apple?", "Sort apple banana", "What is 10!?", "",
                               "A train travels 100 km in 3 hours. What is its average speed?",   # not whole
                               "Solve x^2+1=0", "x" * 5000])
def test_out_of_scope_questions_belong_to_no_family(q):
    assert family_of(q) is None


@pytest.mark.parametrize("family", FAMS)
def test_every_phrasing_reads_back_to_its_problem(family):
    fam = FAMILIES[family]
    rng = np.random.default_rng(5)
    for size in ("train", "extrapolate"):
        for _ in range(60):
            p = fam.draw(rng, size)
            want = fam.answer_of(p)
            for t in fam.phrasings.templates:
                q = t.format(**fam.fields(p))
                for variant in (q, q.lower(), q.upper() if family != "count" else q, " ".join(q.split()) + " "):
                    assert fam.solve(variant) == want, variant
    assert len(fam.phrasings.templates) >= 6 + len(fam.phrasings.heldout) and len(fam.phrasings.heldout) >= 2


@pytest.mark.parametrize("family", FAMS)
def test_training_never_uses_a_held_out_phrasing(family):
    fam = FAMILIES[family]
    held = [re.escape(t).replace(r"\{", "{").replace(r"\}", "}") for i, t in enumerate(fam.phrasings.templates)
            if i in fam.phrasings.heldout]
    shapes = [re.compile(re.sub(r"\{\w+\}", ".+?", h)) for h in held]
    rng = np.random.default_rng(1)
    train = [fam.sample(rng, "train").question for _ in range(400)]
    used = {next((i for i, t in enumerate(fam.phrasings.templates) if t.format(**fam.fields(fam.parse(q))) == q), None)
            for q in train}
    assert used and not used & set(fam.phrasings.heldout) and None not in used
    heldout = [fam.sample(rng, "heldout", "heldout").question for _ in range(50)]
    assert all(any(s.fullmatch(q) for s in shapes) for q in heldout)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generators_are_seeded_and_splits_disjoint(family):
    fam = FAMILIES[family]
    draw = lambda seed, split: [fam.sample(r, split) for r in [np.random.default_rng(seed)] for _ in range(300)]
    assert draw(3, "train") == draw(3, "train")
    if family in ("faq", "fib"):                       # every problem is trained on: nothing to hold out
        return
    canon = lambda p: fam.phrase(fam.parse(p.question))
    train, held = {canon(p) for p in draw(1, "train")}, {canon(p) for p in draw(2, "heldout")}
    assert train and held and not train & held            # by problem, whatever the phrasing
    assert all(split_of(q, fam.heldout_every) == "heldout" for q in held)
    for p in draw(4, "extrapolate"):
        assert canon(p) not in train and fam.verify(p.question, p.answer)


def nums(q):
    return [int(t) for t in re.findall(r"-?\d+", q)]


def test_training_ranges_are_the_issues():
    rng = np.random.default_rng(0)
    F = FAMILIES
    add = [F["add"].draw(rng, "train") for _ in range(3000)]
    assert {len(str(a)) for p in add for a in p} == set(range(1, 7)) and max(max(p) for p in add) <= 999_999
    assert any(a < b for a, b in (F["sub"].draw(rng, "train") for _ in range(100)))      # negative results
    mul = [F["mul"].draw(rng, "train") for _ in range(3000)]
    assert max(a for a, _ in mul) <= 9999 and max(b for _, b in mul) <= 99 and {len(str(a)) for a, _ in mul} == {1, 2, 3, 4}
    count = [F["count"].draw(rng, "train") for _ in range(3000)]
    assert {len(w) for _, w in count} == set(range(1, 21)) and any(c not in w for c, w in count)
    lin = [F["linear"].draw(rng, "train") for _ in range(3000)]
    xs = {(c - b) // a for a, b, c in lin}
    assert {a for a, _, _ in lin} == set(range(1, 21)) and max(abs(b) for _, b, _ in lin) == 99
    assert min(xs) == -20 and max(xs) == 50
    speed = [F["speed"].sample(rng, "train") for _ in range(3000)]
    assert any(" 1 hour" in p.question for p in speed) and max(int(p.answer.split()[0]) for p in speed) == 300
    quad = [F["quadratic"].draw(rng, "train") for _ in range(3000)]
    assert min(min(r) for r in quad) <= -12 and max(max(r) for r in quad) >= 15        # at least the issue's range
    qs = {F["quadratic"].phrase(r) for r in quad}
    assert "Solve x^2-9=0" in qs and "Solve x^2+x-6=0" in qs
    assert {F["fib"].draw(rng, "train") for _ in range(2000)} == set(range(41))
    sort = [F["sort"].draw(rng, "train") for _ in range(3000)]
    assert {len(p) for p in sort} == set(range(1, 13)) and max(max(p) for p in sort) == 99


def test_extrapolation_is_beyond_the_training_range():
    rng = np.random.default_rng(0)
    F = FAMILIES
    for _ in range(200):
        assert len(str(F["add"].draw(rng, "extrapolate")[0])) in (7, 8)
        assert len(str(F["sub"].draw(rng, "extrapolate")[0])) in (7, 8)
        assert 21 <= len(F["count"].draw(rng, "extrapolate")[1]) <= 25
        assert 13 <= len(F["sort"].draw(rng, "extrapolate")) <= 16
        assert 41 <= F["fib"].draw(rng, "extrapolate") <= 45
        assert max(F["quadratic"].draw(rng, "extrapolate")) >= 21
        assert int(F["speed"].sample(rng, "extrapolate").answer.split()[0]) > 300


def test_out_of_scope_split_never_trains_on_what_it_measures():
    rng = np.random.default_rng(0)
    train = {OUT_OF_SCOPE.sample(rng, "train") for _ in range(5000)}
    held = {OUT_OF_SCOPE.sample(rng, "heldout") for _ in range(1000)}
    assert len(held) >= 200 and not train & held and not any(family_of(q) for q in train | held)
    untrained = ("Translate", "How far", "What is log", "Will it rain", "When was")       # the HELDOUT_KINDS
    assert len(untrained) == len(HELDOUT_KINDS) and all(KINDS[k](rng).startswith(untrained) for k in HELDOUT_KINDS)
    assert not any(q.startswith(untrained) for q in train) and any(q.startswith(untrained) for q in held)
    assert not re.search(r"\d", REFUSAL)


def test_how_many_questions_that_are_not_letter_counts_are_out_of_scope():
    # v4 trains these as refusals so that "how many ... in" alone does not make a letter count; each must
    # stay outside the count family, while the count phrasings around them parse to their letter and word
    rng = np.random.default_rng(3)
    asked = {KINDS["how-many"](rng) for _ in range(300)}
    assert len(asked) >= 15 and not any(family_of(q) for q in asked)
    for q, want in [("How many letters x are there in the word dolphin?", ("x", "dolphin")),
                    ("How many s letters are in glasses?", ("s", "glasses")),
                    ("Count all the rs in the word strawberry.", ("r", "strawberry")),
                    ("How many copies of e are in eerie?", ("e", "eerie"))]:
        assert family_of(q).name == "count" and family_of(q).parse(q) == want, q


@pytest.mark.parametrize("q, good, bad", [
    ("What is 47+38?", [" 85 ", "85"], ["085", "85.0", "", "8 5", "85 km/h", "-85"]),
    ("What is 3-3?", ["0"], ["-0", "00"]),
    ("What is 38-47?", ["-9"], ["9", "- 9", "-09"]),
    ("Solve x^2-5x+6=0", ["x=3,x=2", "x=2, x=3", " x=2,x=3 "], ["x=2", "x=2,x=4", "2,3", "x=2,x=3,x=4"]),
    ("Solve x^2-6x+9=0", ["x=3", "x=3,x=3"], ["x=3,x=2", "3"]),
    ("A train travels 300 km in 5 hours. What is its average speed?", ["60 km/h", "60km/h"], ["60", "60 mph"]),
    ("Sort 5 3 9 1", ["1 3 5 9", " 1  3 5 9", "1, 3, 5, 9"], ["1 3 9 5", "1359", "1 3 5"]),
    ("Solve 3x+5=20", ["x=5", "x = 5"], ["5", "x=6"]),
    ("What is MoE?", ["Many small expert networks; a router sends each token to a few of them."], ["MoE"]),
])
def test_verifiers_against_adversarial_answers(q, good, bad):
    fam = family_of(q)
    assert all(fam.verify(q, g) for g in good), good
    assert not any(fam.verify(q, b) for b in bad), bad
    assert not fam.verify(q, None)


def test_score_judges_the_first_closed_answer_and_sees_refusals():
    c = "<think>7+8=15</think><answer>85</answer><answer>99</answer>"
    s = score("What is 47+38?", c)
    assert s == {"correct": True, "well_formed": False, "answer": "85", "family": "add", "refused": False}
    assert score("Who are you?", c)["correct"] is None
    cut = score("What is 47+38?", "<think>7+8=15</think><answer>85")        # cut off: not judged
    assert cut == {"correct": False, "well_formed": False, "answer": None, "family": "add", "refused": False}
    refusal = score("Hello", f"<think>x</think><answer>{REFUSAL}</answer>")
    assert refusal["refused"] and refusal["correct"] is None and refusal["well_formed"]
    assert score("What is 47+38?", f"<think>x</think><answer>{REFUSAL}</answer>")["refused"]


@pytest.mark.parametrize("text, message", [
    ("- {question: a}\n", "entry 0: missing field 'answer'"),
    ("- {question: a, answer: b, extra: c}\n", "entry 0: unknown field 'extra'"),
    ("- {question: a, answer: 5}\n", "entry 0: field 'answer' must be a non-empty string, got 5"),
    ("- {question: a, answer: b}\n- {question: a, answer: c}\n", "entry 1: duplicate question 'a'"),
    ("- {question: a, answer: ''}\n", "entry 0: field 'answer' must be a non-empty string"),
    ("question: a\n", "expected a non-empty list"),
    ("- [unclosed\n", "invalid YAML"),
])
def test_faq_file_errors(tmp_path, text, message):
    path = tmp_path / "faq.yaml"
    path.write_text(text)
    with pytest.raises(TaskError, match=message) as e:
        load_faq(str(path))
    assert str(path) in str(e.value)


def test_owner_faq_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("- question: Who built this?\n  answer: Room 4 of our school.\n")
    fam = faq_family(str(path))
    p = fam.sample(np.random.default_rng(0), "heldout")
    assert p.question == "Who built this?" and fam.verify(p.question, " Room 4  of our school. ")
    assert fam.parse("who built this") == "Who built this?"


def test_shipped_faq_fits_the_tokenizer():
    from runtime.tokenizer import Tokenizer
    for q, a in load_faq(DEFAULT_FAQ):
        Tokenizer().encode(q + a)
        assert len(q) <= 40 and len(a) <= 90


def test_unparseable_question():
    with pytest.raises(TaskError, match=re.escape("add: cannot parse the question 'What is 4+?'")):
        FAMILIES["add"].solve("What is 4+?")
    with pytest.raises(TaskError, match="unknown split 'test'"):
        FAMILIES["add"].sample(np.random.default_rng(0), "test")
    with pytest.raises(TaskError, match="unknown phrasing set 'odd'"):
        FAMILIES["add"].sample(np.random.default_rng(0), "train", "odd")


def test_faq_reads_every_phrasing_of_its_questions_and_nothing_else():
    """Issue 19: `what is MoE?` (lower case) and `What is RoPE?` (not an FAQ question). Every phrasing of
    FAQ_PHRASINGS reads back to its canned question; a question the FAQ does not hold reads as none."""
    from runtime.tasks.faq import FAQ_PHRASINGS
    faq = FAMILIES["faq"]
    for q in faq.every():
        for template in FAQ_PHRASINGS.templates:
            phrased = template.format(**faq.fields(q))
            assert faq.parse(phrased) == q, (template, phrased)
    assert faq.parse("what is MoE?") == "What is MoE?" and faq.parse("What is RoPE?") is None
    assert faq.parse("Tell me: what is tinyr1, thanks!") == "What is tinyr1?"
