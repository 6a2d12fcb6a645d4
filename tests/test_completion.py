"""runtime/completion.py: the one reading of a completion, used by Model.answer, the kiosk's screen, the task
verifiers, the GRPO rewards and rejection sampling."""
import re

import pytest

from runtime.completion import parse


@pytest.mark.parametrize("text, ok", [
    ("<think>a</think><answer>1</answer>", True),
    ("<think>\nmulti\nline</think><answer>1</answer>", True),
    ("<think></think><answer>1</answer>", True),
    ("<think>a</think><answer>1</answer> trailing", False),
    ("<think>a</think><answer>1</answer><eos>", False),
    ("<think>a</think><answer></answer>", False),
    ("<answer>1</answer>", False),
    ("<think>a<think>b</think></think><answer>1</answer>", False),
    ("<think>a</think><answer>1</answer><answer>2</answer>", False),
    ("<think>a</think><answer>1<answer>2</answer>", False),
    ("x<think>a</think><answer>1</answer>", False),
    ("", False),
    (None, False),
])
def test_strict_format(text, ok):
    assert parse(text).well_formed is ok


@pytest.mark.parametrize("text, thinking, answer, closed, answers", [
    ("<think>7+8=15</think><answer>85</answer>", "7+8=15", "85", True, 1),
    ("<think>7+8=15", "7+8=15", None, False, 0),                               # cut off while thinking
    ("<think>7+8=15</think>", "7+8=15", None, False, 0),
    ("<think>7+8=15</think><answer>8", "7+8=15", "8", False, 0),               # cut off while answering
    ("<think>a<answer>x</think><answer>85", "a", "x</think><answer>85", False, 0),  # an <answer> ends the thinking
    ("<think>x</think><answer>84</answer><answer>85</answer>", "x", "84", True, 2),
    ("<think>x</think><answer><answer>85</answer></answer>", "x", "<answer>85", True, 1),
    ("<answer>85</answer>", None, "85", True, 1),
    ("<answer>5</answer><think>late", "late", "5", True, 1),
    ("no tags at all", None, None, False, 0),
    (None, None, None, False, 0),
])
def test_parts_of_a_completion(text, thinking, answer, closed, answers):
    c = parse(text)
    assert (c.thinking, c.answer, c.closed, c.answers) == (thinking, answer, closed, answers)
    assert c.final_answer == (answer if closed else None)


def test_the_verifiers_answer_is_the_first_closed_answer_block():
    """The answer a verifier judges equals the regex reading the rewards used before (the first
    <answer>..</answer>, non-greedy), on every arrangement of tags and text up to length 5."""
    pieces = ["<think>", "</think>", "<answer>", "</answer>", "7"]
    old = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)

    def texts(n):
        if n == 0:
            yield ""
            return
        for t in texts(n - 1):
            for p in pieces:
                yield t + p
    for n in range(6):
        for t in texts(n):
            m = old.search(t)
            assert parse(t).final_answer == (m.group(1) if m else None), t
            assert parse(t).answers == len(old.findall(t)), t
