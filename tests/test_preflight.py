"""The pre-flight check (runtime/kiosk/preflight.py): every button asked as the kiosk would, judged, and a
wrong or cut-off canned answer stops `tinyr1 flash` unless --force."""
import glob
import os

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT
from runtime.errors import ModelFormatError
from runtime.kiosk.config import load_config
from runtime.kiosk.preflight import preflight
from runtime.model import load
from runtime.tasks import FAMILIES, REFUSAL, REFUSAL_THINKING, judge
from tinyr1.cli import main


def text(answer, thinking="t"):
    return f"<think>{thinking}</think><answer>{answer}</answer>"


@pytest.mark.parametrize("question, completion, cut, verdict, expected", [
    ("What is 47+38?", text("85"), "", "right", "85"),
    ("what's 47 plus 38", text("85"), "", "right", "85"),
    ("How many r in strawberry?", text("1"), "", "wrong", "3"),
    ("What is 47+38?", "<think>no answer block", "", "wrong", "85"),
    ("What is 47+38?", "<think>b4a7 + ", "token limit", "cut off", "85"),
    ("Hello", text(REFUSAL, REFUSAL_THINKING), "", "refused", None),
    ("What is 47+38?", text(REFUSAL, REFUSAL_THINKING), "", "refused", "85"),
    ("Write me a poem", text("Roses are red"), "", "unverifiable", None),
])
def test_each_verdict(question, completion, cut, verdict, expected):
    got = judge(question, completion, cut, FAMILIES)
    assert (got[0], got[2]) == (verdict, expected)
    assert got[3] is (expected is not None)                 # covered: a family knows the right answer


def config(tmp_path, buttons, **extra):
    p = tmp_path / "kiosk.yaml"
    p.write_text(yaml.safe_dump({"board": "pi5", "model": "m.msgpack", "display": {"type": "ssd1306"},
                                 "buttons": buttons, **extra}))
    return str(p)


@pytest.fixture(scope="module")
def mistaught(tmp_path_factory):
    """The bundled student whose file says it was taught a made-up answer to "What is MoE?": the model gives
    its own answer, which the pre-flight check must call wrong, showing the expected (taught) one."""
    from compiler.compile import compile_model, load_source
    params, cfg, tok, prov = load_source(os.path.join(ROOT, "trainer", "checkpoints", "student"))
    prov = {**prov, "taught": [{"question": "What is MoE?", "answer": "A kind of cheese."}]}
    path = tmp_path_factory.mktemp("models") / "mistaught.msgpack"
    path.write_bytes(compile_model(params, cfg, tok, quant="int8", provenance=prov)[0])
    return str(path)


def test_a_wrong_canned_answer_is_flagged_and_not_flashed(tmp_path, mistaught):
    path = config(tmp_path, [{"pin": 17, "label": "Sum", "question": "What is 47+38?"},
                             {"pin": 27, "label": "MoE", "question": "What is MoE?"}])
    r = CliRunner().invoke(main, ["validate", path, "--model", mistaught])
    assert r.exit_code == 1, r.output
    assert 'GPIO 27 "MoE": wrong: ' in r.output and "expected 'A kind of cheese.'" in r.output
    assert "pre-flight: 1 of 2 buttons have a problem: GPIO 27 (wrong)" in r.output
    sd = tmp_path / "sd"
    sd.mkdir()
    r = CliRunner().invoke(main, ["flash", "--config", path, "--model", mistaught, "--target", str(sd)])
    assert r.exit_code == 1 and "not flashed: the pre-flight check found 1 button(s)" in r.output, r.output
    assert os.listdir(sd) == []                             # nothing copied
    r = CliRunner().invoke(main, ["flash", "--force", "--config", path, "--model", mistaught, "--target", str(sd)])
    assert r.exit_code == 0 and "active:" in r.output, r.output
    r = CliRunner().invoke(main, ["simulate", "--config", path, "--model", mistaught])
    assert "wrong, expected A kind of cheese." in r.output, r.output     # the kiosk's transcript: same verdict


def test_a_cut_off_answer_and_a_weak_task_button_are_problems(tmp_path, tiny_model_file):
    path = config(tmp_path, [{"pin": 17, "label": "Sum", "question": "What is 47+38?"},
                             {"pin": 27, "label": "Random", "task": "add"}], generation={"max_new_tokens": 6})
    cfg = load_config(path, tiny_model_file)
    report = preflight(cfg, load(tiny_model_file), problems=3)
    first, task = report.buttons
    assert [a.verdict for a in first.asked] == ["cut off"] and first.asked[0].cut == "token limit"
    assert first.problem == "cut off" and task.problem == "cut off" and len(task.asked) == 3
    assert [a.question for a in task.asked] == [q for q in task_questions(cfg, 3)]
    r = CliRunner().invoke(main, ["validate", path, "--model", tiny_model_file, "--problems", "3"])
    assert r.exit_code == 1 and "token limit after 6 tokens (raise generation.max_new_tokens)" in r.output
    r = CliRunner().invoke(main, ["validate", path, "--model", tiny_model_file, "--no-answers"])
    assert r.exit_code == 0 and "pre-flight" not in r.output, r.output


def test_a_sampling_kiosk_asks_a_fixed_question_several_times(tmp_path, tiny_model_file):
    """With temperature > 0 every press may answer differently: the check asks as many times as it draws
    task problems, each with the seed of that press, and reports the tally."""
    path = config(tmp_path, [{"pin": 17, "label": "Sum", "question": "What is 47+38?"}],
                  generation={"max_new_tokens": 4, "temperature": 0.8})
    report = preflight(load_config(path, tiny_model_file), load(tiny_model_file), problems=4)
    (check,) = report.buttons
    assert len(check.asked) == 4 and check.counts["cut off"] == 4
    from runtime.kiosk.preflight import describe
    assert describe(check)[0] == 'GPIO 17 "Sum" (sampled): 0 of 4 right (4 cut off)  <- cut off'


def task_questions(cfg, n):
    """The problems the kiosk's first n presses of a task button ask (the same seeded draw)."""
    import numpy as np
    return [FAMILIES["add"].sample(np.random.default_rng([cfg.generation.seed, k]), "heldout").question
            for k in range(1, n + 1)]


def kiosk_configs():
    paths = sorted(glob.glob(os.path.join(ROOT, "firmware_configs", "*.yaml"))
                   + glob.glob(os.path.join(ROOT, "examples", "**", "*.yaml"), recursive=True))
    return [p for p in paths if "buttons" in (yaml.safe_load(open(p)) or {})]


def test_every_shipped_config_passes_with_the_bundled_student(student_file):
    """What a kiosk owner copies works as shipped: no canned question answered wrong or cut off, every task
    button at least 90% right on its first 20 presses. The museum example runs a model that `tinyr1 teach`
    makes from its facts (tests/test_teach.py runs that flow); every other config runs the bundled student."""
    paths = [p for p in kiosk_configs() if yaml.safe_load(open(p))["model"].endswith("build/student.msgpack")]
    assert len(paths) >= 5 and len(kiosk_configs()) == len(paths) + 1
    for p in paths:
        r = CliRunner().invoke(main, ["validate", p, "--model", student_file])
        assert r.exit_code == 0 and "pre-flight: all" in r.output, r.output


@pytest.mark.parametrize("taught, words", [
    ([{"question": "Q?", "answer": "A"}, {"question": "q", "answer": "B"}], "provenance.taught[1].question: 'q' "
                                                                            "repeats entry 0's question"),
    ([{"question": "Q?", "answer": 7}], "provenance.taught[0].answer: 7: expected 1..1000 characters"),
    ([{"question": "Q?", "answer": "A" * 1001}], "provenance.taught[0].answer: 'AAAA"),
    ([{"question": "Q?"}], "provenance.taught[0]"),
    ("Q?", "provenance.taught: expected a list of at most 1000"),
])
def test_a_bad_taught_list_in_a_model_file_is_refused(tmp_path, taught, words):
    from compiler.compile import compile_model
    from conftest import random_params, small_student
    from runtime.tokenizer import Tokenizer
    cfg = small_student()
    p = tmp_path / "m.msgpack"
    p.write_bytes(compile_model(random_params(cfg), cfg, Tokenizer(), provenance={"taught": taught})[0])
    with pytest.raises(ModelFormatError, match="provenance.taught") as e:
        load(str(p))
    assert words in str(e.value)
