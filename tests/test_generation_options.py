"""Sampling options and prompts: one check (runtime.generate.check_options) for the Python API, the CLI and
the kiosk config; each bad value is a one-line error naming the option, its value and the valid range, in
the wording of every configuration check (runtime/checks.py)."""
import re

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import small_student, write_compiled
from tinyr1.cli import main
from runtime.errors import GenerationError
from runtime.generate import SEED_MAX, check_options
from runtime.model import load

NAN, INF = float("nan"), float("inf")
TEMPERATURE = "must be a finite number >= 0 \\(0 = greedy\\)"
TOP_K = "must be an integer from 1 to 103 \\(the vocabulary size\\), or None for no limit"
TOP_P = "must be a number in \\(0, 1\\] \\(1 = no limit\\), or None"
SEED = "must be an integer from 0 to 4294967295 \\(2\\*\\*32 - 1\\), or None for a fresh random seed"
MAX_NEW = "must be an integer >= 1, or None for the model's default"

BAD = [  # (option, value, the whole message)
    ("temperature", -0.5, f"temperature=-0.5: {TEMPERATURE}"),
    ("temperature", NAN, f"temperature=nan: {TEMPERATURE}"),
    ("temperature", INF, f"temperature=inf: {TEMPERATURE}"),
    ("temperature", "hot", f"temperature='hot': {TEMPERATURE}"),
    ("temperature", None, f"temperature=None: {TEMPERATURE}"),
    ("top_k", 0, f"top_k=0: {TOP_K}"),
    ("top_k", -3, f"top_k=-3: {TOP_K}"),
    ("top_k", 104, f"top_k=104: {TOP_K}"),
    ("top_k", 2.0, f"top_k=2.0: {TOP_K}"),
    ("top_k", True, f"top_k=True: {TOP_K}"),
    ("top_p", 0.0, f"top_p=0.0: {TOP_P}"),
    ("top_p", -0.1, f"top_p=-0.1: {TOP_P}"),
    ("top_p", 1.5, f"top_p=1.5: {TOP_P}"),
    ("top_p", NAN, f"top_p=nan: {TOP_P}"),
    ("seed", -1, f"seed=-1: {SEED}"),
    ("seed", 2 ** 32, f"seed=4294967296: {SEED}"),
    ("seed", 1.5, f"seed=1.5: {SEED}"),
    ("max_new_tokens", 0, f"max_new_tokens=0: {MAX_NEW}"),
    ("max_new_tokens", -5, f"max_new_tokens=-5: {MAX_NEW}"),
]


@pytest.mark.parametrize("option, value, message", BAD)
def test_check_options_names_the_option_the_value_and_the_range(option, value, message):
    with pytest.raises(GenerationError, match=f"^{message}$"):
        check_options(**{option: value}, vocab_size=103)


def test_check_options_accepts_the_edges():
    check_options()                                              # greedy, every default
    check_options(temperature=0, top_k=1, top_p=1, seed=0, max_new_tokens=1, vocab_size=103)
    check_options(temperature=2.5, top_k=103, top_p=1e-9, seed=SEED_MAX, max_new_tokens=10 ** 6, vocab_size=103)
    check_options(temperature=np.float32(0.7), top_k=np.int64(5), seed=np.uint32(7))
    check_options(top_k=10 ** 6)                                 # no vocabulary given: no upper bound
    assert SEED_MAX == 2 ** 32 - 1


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return write_compiled(tmp_path_factory.mktemp("m") / "m.msgpack", small_student(max_position_embeddings=64))


@pytest.fixture(scope="module")
def model(model_file):
    return load(model_file)


@pytest.mark.parametrize("option, value, message", BAD)
def test_the_python_api_refuses_before_any_token(model, option, value, message):
    with pytest.raises(GenerationError, match=f"^{message}$"):
        model.generate("What is 1+1?", **{option: value})       # raised by the call: no token, no iteration
    with pytest.raises(GenerationError, match=f"^{message}$"):
        model.answer("What is 1+1?", **{option: value})


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_an_empty_prompt_is_refused(model, prompt):
    with pytest.raises(GenerationError, match="^" + re.escape(f"prompt={prompt!r}: is empty; ask a question")):
        model.generate(prompt)
    with pytest.raises(GenerationError, match="^prompt=None: must be a string"):
        model.generate(None)


def test_valid_options_still_sample(model):
    stats = {}
    text = "".join(model.generate("What is 1+1?", max_new_tokens=1, stats=stats))
    assert stats["tokens"] == 1 and len(text) >= 1
    for kw in (dict(temperature=1.0, top_k=103, seed=SEED_MAX), dict(temperature=0.8, top_p=1.0, seed=0),
               dict(temperature=1.0, top_k=1, seed=3)):
        a = list(model.generate("What is 1+1?", max_new_tokens=8, **kw))
        assert a == list(model.generate("What is 1+1?", max_new_tokens=8, **kw)) and len(a) >= 1


CLI_BAD = [  # (arguments, the option click names, the message)
    (["--temperature", "-1"], "--temperature", f"temperature=-1.0: {TEMPERATURE}"),
    (["--temperature", "nan"], "--temperature", f"temperature=nan: {TEMPERATURE}"),
    (["--temperature", "inf"], "--temperature", f"temperature=inf: {TEMPERATURE}"),
    (["--top-p", "0"], "--top-p", f"top_p=0.0: {TOP_P}"),
    (["--top-p", "1.01"], "--top-p", f"top_p=1.01: {TOP_P}"),
    (["--top-p", "nan"], "--top-p", f"top_p=nan: {TOP_P}"),
    (["--top-k", "0"], "--top-k", "top_k=0: must be an integer >= 1, or None for no limit"),
    (["--top-k", "-3"], "--top-k", "top_k=-3: must be an integer >= 1"),
    (["--seed", "-1"], "--seed", f"seed=-1: {SEED}"),
    (["--max-new-tokens", "0"], "--max-new-tokens", f"max_new_tokens=0: {MAX_NEW}"),
]


@pytest.mark.parametrize("args, flag, message", CLI_BAD)
def test_the_cli_reports_a_bad_option_in_one_line(model_file, args, flag, message):
    r = CliRunner().invoke(main, ["run", model_file, "--prompt", "What is 1+1?"] + args)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"Error: Invalid value for '{flag}': {message}".replace("\\", "") in r.output.replace("\\", "")


def test_the_cli_checks_top_k_against_the_vocabulary_and_the_prompt(model_file):
    r = CliRunner().invoke(main, ["run", model_file, "--prompt", "What is 1+1?", "--top-k", "1000",
                                  "--temperature", "1"])
    assert r.exit_code == 1 and r.output == "Error: top_k=1000: must be an integer from 1 to 103 (the vocabulary " \
                                            "size), or None for no limit\n"
    r = CliRunner().invoke(main, ["run", model_file, "--prompt", "  "])
    assert r.exit_code == 1 and r.output.startswith("Error: prompt='  ': is empty; ask a question")
    r = CliRunner().invoke(main, ["run", model_file, "--prompt", "What is 1+1?", "--max-new-tokens", "1"])
    assert r.exit_code == 0 and "[1 tokens," in r.output


def test_chat_goes_on_after_a_question_it_cannot_encode(model_file):
    r = CliRunner().invoke(main, ["chat", model_file, "--max-new-tokens", "3"],
                           input="What is 1+1?\nWhat is 2+2? \U0001F600\n" + "x" * 70 + "\nWhat is 3+3?\n\n")
    assert r.exit_code == 0, r.output
    assert "Error: character '\U0001F600' (U+1F600) at position 13 is not in the vocabulary" in r.output
    assert "Error: the prompt is 71 tokens; the model's context holds 64, leaving no room to answer" in r.output
    assert r.output.count("[3 tokens,") == 2 and "Traceback" not in r.output


def test_chat_refuses_bad_options_before_the_first_question(model_file):
    r = CliRunner().invoke(main, ["chat", model_file, "--top-k", "500"], input="What is 1+1?\n")
    assert r.exit_code == 1 and r.output == "Error: top_k=500: must be an integer from 1 to 103 (the vocabulary " \
                                            "size), or None for no limit\n"
