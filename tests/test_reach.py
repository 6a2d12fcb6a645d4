"""A model's reach (runtime/tasks/reach.py): questions bigger than it was trained on and measured right at get
an honest "too big for me" from `tinyr1 run`, `chat` and the kiosk, not a confident wrong number."""
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from runtime.kiosk.config import load_config
from runtime.kiosk.preflight import preflight
from runtime.model import load
from runtime.tasks import FAMILIES, judge
from runtime.tasks.reach import BEYOND, TRUSTED, beyond_completion, reach
from tinyr1.cli import main


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.size is not None])
def test_each_family_sizes_its_own_draws(name):
    """size() agrees with draw(): every training-range draw is "train", every extrapolation draw "extrapolate"."""
    fam, rng = FAMILIES[name], np.random.default_rng(1)
    assert {fam.size(fam.draw(rng, "train")) for _ in range(400)} == {"train"}
    assert {fam.size(fam.draw(rng, "extrapolate")) for _ in range(400)} == {"extrapolate"}


def prov(**accuracy):
    return {"eval": [{"family": f, "column": "extrapolation", "accuracy": a, "n": 200} for f, a in accuracy.items()]}


@pytest.mark.parametrize("question, family, size, ok", [
    ("What is 47+38?", "add", "train", True),
    ("What is 999999+999999?", "add", "train", True),
    ("What is 12345678+5?", "add", "extrapolate", True),               # measured 98% >= TRUSTED
    ("What is 123456789+5?", "add", "beyond", False),
    ("What is 123456789012345678901234567890+1?", "add", "beyond", False),
    ("How many r in strawberry?", "count", "train", True),
    ("How many a in abcdefghijabcdefghijabc?", "count", "extrapolate", False),   # measured 75% < TRUSTED
    ("What is fib(40)?", "fib", "train", True),
    ("What is fib(41)?", "fib", "extrapolate", False),                   # never measured: not vouched for
    ("What is fib(100)?", "fib", "beyond", False),
    ("Sort 5 3 9 1", "sort", "train", True),
    ("Sort 5 3 9 100", "sort", "beyond", False),                        # a number past 99
    ("Solve x^2-5x+6=0", "quadratic", "train", True),
    ("What is MoE?", "faq", "train", True),
    ("Hello", "", "", True),                                            # no family: the model refuses it itself
])
def test_reach_is_the_training_range_and_what_was_measured_beyond_it(question, family, size, ok):
    r = reach(question, FAMILIES, prov(add=0.98, count=0.75))
    assert (r.family, r.size, r.ok) == (family, size, ok)


def test_the_extrapolation_bar_is_trusted_exactly():
    q = "What is 12345678+5?"
    assert reach(q, FAMILIES, prov(add=TRUSTED)).ok and not reach(q, FAMILIES, prov(add=TRUSTED - 0.005)).ok
    assert not reach(q, FAMILIES, None).ok and not reach(q, FAMILIES, {"eval": "junk"}).ok


def test_run_says_beyond_instead_of_guessing_and_answer_anyway_lets_it_try(student_file):
    r = CliRunner().invoke(main, ["run", student_file, "--prompt", "What is fib(100)?"])
    assert r.exit_code == 0, r.output
    assert BEYOND in r.output and "not asked: fib: trained on" in r.output and "further still" in r.output
    assert not any(c.isdigit() for c in BEYOND)
    r = CliRunner().invoke(main, ["run", student_file, "--prompt", "What is fib(100)?", "--answer-anyway"])
    assert r.exit_code == 0 and BEYOND not in r.output and "verifier: wrong" in r.output, r.output
    r = CliRunner().invoke(main, ["run", student_file, "--prompt", "What is fib(10)?"])
    assert BEYOND not in r.output and "verifier: right" in r.output, r.output
    r = CliRunner().invoke(main, ["run", student_file, "--prompt", "What is fib(100)? \u00e9"])
    assert r.exit_code != 0 and "\u00e9" in r.output             # an unknown character is still an error


def test_a_canned_question_beyond_reach_is_a_preflight_problem_and_the_kiosk_says_so(tmp_path, student_file):
    path = tmp_path / "kiosk.yaml"
    path.write_text(yaml.safe_dump({"board": "pi5", "model": "m.msgpack", "display": {"type": "ssd1306"},
                                    "buttons": [{"pin": 17, "label": "Fib", "question": "What is fib(60)?"},
                                                {"pin": 27, "label": "Sum", "question": "What is 47+38?"}]}))
    report = preflight(load_config(str(path), student_file), load(student_file), problems=1)
    fib, total = report.buttons
    assert fib.asked[0].verdict == "refused" and fib.asked[0].answer == BEYOND
    assert fib.problem == "refused a question it should answer" and not total.problem
    assert judge("What is fib(60)?", beyond_completion(), "", FAMILIES)[0] == "refused"
    r = CliRunner().invoke(main, ["simulate", "--config", str(path), "--model", student_file])
    assert BEYOND.split(",")[0] in r.output, r.output
