"""Chain-of-thought writers: exact formats, and every step recomputes to the right answer."""
import json
import re

import numpy as np
import pytest

from runtime.errors import DatasetError
from runtime.tokenizer import Tokenizer
from trainer.tasks import FAMILIES, load_jsonl, make_example, target

EXACT = {
    "What is 47+38?": "<think>7+8=15 4+3+1=8</think><answer>85</answer>",
    "What is 95+17?": "<think>5+7=12 9+1+1=11</think><answer>112</answer>",
    "What is 82-47?": "<think>12-7=5 7-4=3</think><answer>35</answer>",
    "What is 80-15?": "<think>10-5=5 7-1=6</think><answer>65</answer>",
    "What is 23*7?": "<think>3*7=21 2*7=14+2=16</think><answer>161</answer>",
    "How many r in strawberry?": "<think>s t r1 a w b e r2 r3 y</think><answer>3</answer>",
    "Solve 3x+5=20": "<think>3x=20-5=15 x=15/3=5</think><answer>x=5</answer>",
    "Solve 4x-3=9": "<think>4x=9+3=12 x=12/4=3</think><answer>x=3</answer>",
    "A train travels 174 km in 6 hours. What is its average speed?":
        "<think>174/6 17/6=2r5 54/6=9r0</think><answer>29 km/h</answer>",
    "Solve x^2-5x+6=0": "<think>a+b=5 ab=6 1*4=4!=6 2*3=6=6</think><answer>x=2,x=3</answer>",
    "Solve x^2-6x+9=0": "<think>a+b=6 ab=9 1*5=5!=9 2*4=8!=9 3*3=9=9</think><answer>x=3</answer>",
    "What is fib(3)?": "<think>0,3 1,2 1,1 2,0</think><answer>2</answer>",
    "What is fib(0)?": "<think>0,0</think><answer>0</answer>",
    "Sort 5 3 9 1": "<think>1 of 5 3 9 1;3 of 5 3 9;5 of 5 9;9 of 9</think><answer>1 3 5 9</answer>",
}


@pytest.mark.parametrize("q", list(EXACT))
def test_exact_traces(q):
    assert target(q) == EXACT[q]


def check_steps(ex):
    """An independent reading of each trace: every written equation must be true, and the answer
    must follow from the steps alone."""
    t = ex.reasoning
    if ex.family in ("add", "sub", "mul"):
        for eq in t.split():
            parts = eq.split("=")
            for lhs, rhs in zip(parts, parts[1:]):
                assert eval_int(lhs) == int(rhs.split("+")[0]) if "+" in rhs else eval_int(lhs) == int(rhs), eq
        finals = [int(eq.split("=")[-1]) for eq in t.split()]
        if ex.family == "sub":
            digits = "".join(str(v) for v in reversed(finals)).lstrip("0") or "0"
        else:
            digits = str(finals[-1]) + "".join(str(v % 10) for v in reversed(finals[:-1]))
        assert digits == ex.answer
    elif ex.family == "speed":
        steps = t.split()[1:]
        for s in steps:
            n, t_, q, r = map(int, re.fullmatch(r"(\d+)/(\d+)=(\d+)r(\d+)", s).groups())
            assert n == q * t_ + r and r < t_
        assert "".join(re.fullmatch(r"\d+/\d+=(\d+)r\d+", s).group(1) for s in steps).lstrip("0") + " km/h" == ex.answer
    elif ex.family == "fib":
        steps = [tuple(map(int, s.split(","))) for s in t.split()]
        assert [k for _, k in steps] == list(range(len(steps) - 1, -1, -1))
        vals = [v for v, _ in steps]
        assert vals[:2] == [0, 1][:len(vals)] and all(c == a + b for a, b, c in zip(vals, vals[1:], vals[2:]))
        assert str(vals[-1]) == ex.answer
    elif ex.family == "quadratic":
        s, p = (int(x.split("=")[1]) for x in t.split()[:2])
        *tries, last = t.split()[2:]
        assert all("!=" in x for x in tries) and last.endswith(f"={p}") and "!=" not in last
        a, b = map(int, last.split("=")[0].split("*"))
        assert a + b == s and a * b == p
    elif ex.family == "count":
        assert str(max([int(w[1:]) for w in t.split() if len(w) > 1] or [0])) == ex.answer


def eval_int(expr):
    """Value of 'a+b+c', 'a-b' or 'a*b' written by a trace (no eval)."""
    if "*" in expr:
        a, b = expr.split("*")
        return int(a) * int(b)
    if "-" in expr:
        a, b = expr.split("-")
        return int(a) - int(b)
    return sum(int(a) for a in expr.split("+"))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_traces_compute_the_right_answer(family):
    rng = np.random.default_rng(7)
    tok = Tokenizer()
    for split in ("train", "extrapolate") if family != "faq" else ("train",):
        for _ in range(300):
            ex = make_example(family, rng, split)
            assert FAMILIES[family].verify(ex.question, ex.answer)
            check_steps(ex)
            n = len(tok.encode("<bos>" + ex.question + target(ex.question))) + 1
            assert split == "extrapolate" or n <= 200


def test_jsonl_dataset(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "Q?", "reasoning": "r", "answer": "A"}) + "\n\n")
    assert [(e.question, e.family) for e in load_jsonl(str(path))] == [("Q?", "user")]


@pytest.mark.parametrize("line, message", [
    ("{not json", ":2: invalid JSON"),
    ("[1, 2]", ":2: expected a JSON object"),
    ('{"question": "q", "reasoning": "r"}', ":2: missing key 'answer'"),
    ('{"question": "q", "reasoning": "r", "answer": "a", "x": 1}', ":2: unknown key 'x'"),
    ('{"question": 5, "reasoning": "r", "answer": "a"}', ":2: key 'question' must be a string"),
    ('{"question": "caf\\u00e9", "reasoning": "r", "answer": "a"}', ":2: key 'question': character '\u00e9'"),
    ('{"question": "q", "reasoning": "r", "answer": " "}', ":2: key 'answer' is empty"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "Q?", "reasoning": "r", "answer": "A"}) + "\n" + line + "\n")
    with pytest.raises(DatasetError, match=re.escape(str(path) + message)):
        load_jsonl(str(path))
