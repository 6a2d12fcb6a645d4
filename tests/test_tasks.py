"""Task families: canonical answers, seeded generators, disjoint splits, verifiers, format checks."""
import re

import numpy as np
import pytest

from runtime.errors import TaskError
from runtime.tasks import DEFAULT_FAQ, FAMILIES, family_of, faq_family, load_faq, score, split_of

CANONICAL = {
    "add": ("What is 47+38?", "85"), "sub": ("What is 82-47?", "35"), "mul": ("What is 23*7?", "161"),
    "count": ("How many r in strawberry?", "3"), "linear": ("Solve 3x+5=20", "x=5"),
    "speed": ("A train travels 300 km in 5 hours. What is its average speed?", "60 km/h"),
    "quadratic": ("Solve x^2-5x+6=0", "x=2,x=3"), "fib": ("What is fib(10)?", "55"),
    "sort": ("Sort 5 3 9 1", "1 3 5 9"),
}


def test_every_family_is_registered_in_order():
    assert list(FAMILIES) == ["add", "sub", "mul", "count", "linear", "speed", "quadratic", "fib", "sort", "faq"]
    for fam in FAMILIES.values():
        assert fam.train_range and fam.extrapolation


@pytest.mark.parametrize("family", list(CANONICAL))
def test_canonical_question(family):
    q, a = CANONICAL[family]
    assert family_of(q).name == family and FAMILIES[family].solve(q) == a and FAMILIES[family].verify(q, a)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_generators_are_seeded_and_splits_disjoint(family):
    fam = FAMILIES[family]
    draw = lambda seed, split: [fam.sample(np.random.default_rng(seed), split) for _ in range(1)] + \
        [fam.sample(r, split) for r in [np.random.default_rng(seed)] for _ in range(300)]
    assert draw(3, "train") == draw(3, "train")
    train = {p.question for p in draw(1, "train")}
    if family == "faq":
        return
    held = {p.question for p in draw(2, "heldout")}
    assert train and held and not train & held
    assert all(split_of(q) == "train" for q in train) and all(split_of(q) == "heldout" for q in held)
    for p in draw(4, "extrapolate"):
        assert p.question not in train and fam.verify(p.question, p.answer)


def test_extrapolation_is_outside_the_training_range():
    rng = np.random.default_rng(0)
    nums = lambda q: [int(t) for t in __import__("re").findall(r"\d+", q)]
    for _ in range(200):
        assert min(nums(FAMILIES["add"].sample(rng, "extrapolate").question)) >= 100
        assert nums(FAMILIES["fib"].sample(rng, "extrapolate").question)[0] > 20
        assert len(FAMILIES["sort"].sample(rng, "extrapolate").question.split()) - 1 >= 7
        assert len(FAMILIES["count"].sample(rng, "extrapolate").question.split()[-1]) - 1 >= 9
        speed = FAMILIES["speed"].sample(rng, "extrapolate")
        assert int(speed.answer.split()[0]) >= 100


@pytest.mark.parametrize("q, good, bad", [
    ("What is 47+38?", [" 85 ", "85"], ["085", "85.0", "", "8 5", "85 km/h", "-85"]),
    ("Solve x^2-5x+6=0", ["x=3,x=2", "x=2, x=3", " x=2,x=3 "], ["x=2", "x=2,x=4", "2,3", "x=2,x=3,x=4"]),
    ("Solve x^2-6x+9=0", ["x=3", "x=3,x=3"], ["x=3,x=2", "3"]),
    ("A train travels 300 km in 5 hours. What is its average speed?", ["60 km/h", "60km/h"], ["60", "60 mph"]),
    ("Sort 5 3 9 1", ["1 3 5 9", " 1  3 5 9"], ["1 3 9 5", "1359", "1 3 5"]),
    ("Solve 3x+5=20", ["x=5", "x = 5"], ["5", "x=6"]),
    ("What is MoE?", ["Many small expert networks; a router sends each token to a few of them."], ["MoE"]),
])
def test_verifiers_against_adversarial_answers(q, good, bad):
    fam = family_of(q)
    assert all(fam.verify(q, g) for g in good), good
    assert not any(fam.verify(q, b) for b in bad), bad
    assert not fam.verify(q, None)


def test_score_judges_the_first_closed_answer():
    c = "<think>7+8=15</think><answer>85</answer><answer>99</answer>"
    s = score("What is 47+38?", c)
    assert s == {"correct": True, "well_formed": False, "answer": "85", "family": "add"}
    assert score("Who are you?", c)["correct"] is None
    cut = score("What is 47+38?", "<think>7+8=15</think><answer>85")        # cut off: not judged
    assert cut == {"correct": False, "well_formed": False, "answer": None, "family": "add"}


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
