"""Chain-of-thought writers: exact formats, and every step recomputes to the right answer."""
import json
import re

import numpy as np
import pytest

from runtime.errors import DatasetError, TaskError
from runtime.tasks.algebra import fib
from runtime.tokenizer import (ITEM, ITEMS, PLACES, Tokenizer, item_hints, mark_answer, mark_places, unmark_answer,
                               unmark_places,
                               unmark_stream)
from trainer.data import sequence, tag_items
from trainer.tasks import FAMILIES, load_jsonl, make_example, split_of, target, target_text
from trainer.tasks.cot import (COUNT_WIDEST, LETTERED, OFFSETS, SORT_TRACES, WIDEST, entry_letters, index_answer, placed,
                               reasoning)

EXACT = {
    "What is 47+38?": "<think>b4a7+b3a8 a7+8=15 b4+3+1=8 =b8a5</think><answer>85</answer>",
    "What is 82-47?": "<think>b8a2-b4a7 a12-7=5 b7-4=3 =b3a5</think><answer>35</answer>",
    "What is 47-82?": "<think>b4a7-b8a2 a7-2=5 b14-8=6 <0 b8a2-b4a7 a12-7=5 b7-4=3 =-b3a5</think><answer>-35</answer>",
    "What is 23*7?": "<think>b2a3*a7 a7: a3*7=21 b2*7=14+2=16 =c1b6a1</think><answer>161</answer>",
    "What is 23*47?": "<think>b2a3*b4a7 a7: a3*7=21 b2*7=14+2=16 =c1b6a1 b4: a3*4=12 b2*4=8+1=9 =c9b2a0 "
                      "+ a1+0=1 b6+2=8 c1+9=10 =d1c0b8a1</think><answer>1081</answer>",
    "How many r in strawberry?": "<think>r: s t r1 a w b e r2 r3 y</think><answer>3</answer>",
    "Solve 3x+5=20": "<think>3x+5=20 3x=20-5 b2a0-a5 a10-5=5 b1-0=1 =b1a5 x=15/3 15/3: 1/3=0r1 15/3=5r0 =5"
                     "</think><answer>x=5</answer>",
    "A train travels 300 km in 5 hours. What is its average speed?":
        "<think>300/5: 3/5=0r3 30/5=6r0 0/5=0r0 =60</think><answer>60 km/h</answer>",
    "Solve x^2-5x+6=0": "<think>x^2-5x+6=0 s=5 p=6 s^2=25 4p: a6*4=24 =b2a4 D=25-24 b2a5-b2a4 a5-4=1 b2-2=0 =a1 d=1 "
                        "x=(5-1)/2 a5-a1 a5-1=4 =a4 4/2=2 x=(5+1)/2 a5+a1 a5+1=6 =a6 6/2=3</think>"
                        "<answer>x=2,x=3</answer>",
    "What is fib(3)?": "<think>fib(3): 0,3 1,2 1,1 2,0</think><answer>2</answer>",
    "Sort 12 5 37 19 5": "<think>0:5,5 1:2,9 2: 3:7 4: 5: 6: 7: 8: 9:</think><answer>5 5 12 19 37</answer>",
}


@pytest.mark.parametrize("q", list(EXACT))
def test_exact_traces(q):
    assert target(q) == EXACT[q]


def test_places_name_each_digit():
    assert placed(0) == "a0" and placed(47) == "b4a7" and placed(123456) == "f1e2d3c4b5a6"
    assert placed(47, 3) == "e4d7" and placed(123456, 2) == "h1g2f3e4d5c6"


def test_offsets_train_the_letters_past_the_range_and_start_at_a_most_often():
    """With places, six-digit training operands must put g, h and i (a 7-8 digit number's places at offset
    0) in training questions and traces, offset 0 must stay the most frequent, and the question's letters
    must be the trace's; without places, no offset."""
    rng = np.random.default_rng(0)
    starts, letters = [], set()
    tok = Tokenizer(places=True)
    for _ in range(400):
        ex = make_example("add", rng, places=True)
        prompt = tok.decode(tok.encode_prompt(ex.question, ex.offset), skip_special=True)
        ones = re.search(r"([a-z])\d[-+*]", ex.reasoning).group(1)                  # the first operand's ones
        assert ones == PLACES[ex.offset] and f"{ones}{FAMILIES['add'].parse(ex.question)[0] % 10}" in prompt
        starts.append(ex.offset)
        letters |= set(re.findall(r"([a-z])\d", prompt + ex.reasoning))
    counts = {o: starts.count(o) for o in set(starts)}
    assert max(counts, key=counts.get) == 0 and set(counts) == set(range(OFFSETS[1] + 1)), counts
    assert set("ghi") <= letters, letters
    assert {make_example("add", rng).offset for _ in range(50)} == {0}


def test_padded_traces_are_wider_and_keep_the_answer_and_the_batches_of_unpadded_recipes():
    """pad: some add and sub traces are written at widths up to WIDEST with leading zeros (checked step by
    step in the test below); the answer is the plain one; pad=0 draws nothing, so older recipes' batches
    stay the same; other families are never padded."""
    widths = []
    for seed in range(300):
        plain = make_example("add", np.random.default_rng(seed), places=True)
        ex = make_example("add", np.random.default_rng(seed), places=True, pad=0.5)
        assert (ex.question, ex.answer, ex.offset) == (plain.question, plain.answer, plain.offset)
        a, b = re.match(r"((?:[a-z]\d)+)\+((?:[a-z]\d)+) ", ex.reasoning).groups()
        widths.append(len(a) // 2)
        if ex.reasoning != plain.reasoning:                  # one width, reached with leading zeros
            assert len(a) == len(b) and "0" in (a[1], b[1]) and a[0] == PLACES[ex.offset + len(a) // 2 - 1], ex
    assert max(widths) == WIDEST and 0.12 < np.mean([w > 6 for w in widths]) < 0.35, widths  # 0.5 * 4/9
    assert make_example("mul", np.random.default_rng(1), places=True, pad=1.0).reasoning == \
        make_example("mul", np.random.default_rng(1), places=True).reasoning
    assert reasoning("What is 47+38?", "add", 0, 4) == "d0c0b4a7+d0c0b3a8 a7+8=15 b4+3+1=8 c0+0=0 d0+0=0 =d0c0b8a5"


def test_distracted_count_questions_put_a_word_before_the_letter_and_keep_trace_and_batches():
    from trainer.tasks.paraphrase import distracted
    assert distracted("How many r in strawberry?", "r", "apple") == "How many apple r in strawberry?"
    assert distracted("In rat, how many r's are there?", "r", "pen") == "In rat, how many pen r's are there?"
    assert distracted("Tell me strawberry", "r", "apple") is None
    changed = 0
    for seed in range(200):
        plain = make_example("count", np.random.default_rng(seed), restyle=0.3)
        ex = make_example("count", np.random.default_rng(seed), restyle=0.3, distract=0.5)
        assert (ex.reasoning, ex.answer) == (plain.reasoning, plain.answer)
        if ex.question != plain.question:
            changed += 1
            assert len(ex.question.split()) == len(plain.question.split()) + 1
    assert 60 < changed < 100, changed                 # about half, less the retyped ones without a lone letter
    assert make_example("add", np.random.default_rng(3), distract=1.0) == make_example("add", np.random.default_rng(3))


def test_distracting_strings_are_random_letters_not_known_words_and_keep_older_batches():
    """distract_strings: that share of the distracting words are random strings of 2-10 lowercase letters
    (rarely a words.txt word), the rest words.txt words; distract_strings=0 draws nothing, so v7-v11's batches stay."""
    from runtime.tasks.words import WORDS
    fillers = []
    for seed in range(300):
        plain = make_example("count", np.random.default_rng(seed), distract=1.0)
        ex = make_example("count", np.random.default_rng(seed), distract=1.0, distract_strings=0.5)
        assert (ex.reasoning, ex.answer) == (plain.reasoning, plain.answer)
        added = [w for w in ex.question.split() if w not in plain.question.split()]
        if ex.question != plain.question and len(added) == 1:
            fillers.append(added[0])
        assert make_example("count", np.random.default_rng(seed), distract=1.0, distract_strings=0.0) == plain
    strings = [f for f in fillers if f not in WORDS]
    assert 100 < len(strings) < 200, len(strings)       # about half of ~300
    assert all(re.fullmatch("[a-z]{2,10}", f) for f in strings), strings
    assert {len(f) for f in strings} == set(range(2, 11))


def test_padded_count_traces_start_with_dots_and_keep_answer_and_older_batches():
    """pad_count: some count traces begin with "." entries, up to COUNT_WIDEST entries in all, before the
    plain trace; question and answer are the plain ones; pad_count=0 draws nothing (older recipes' batches
    stay the same), and no other family is padded."""
    padded, widths = 0, []
    for seed in range(300):
        plain = make_example("count", np.random.default_rng(seed), restyle=0.3, distract=0.3)
        ex = make_example("count", np.random.default_rng(seed), restyle=0.3, distract=0.3, pad_count=0.5)
        assert (ex.question, ex.answer, ex.offset) == (plain.question, plain.answer, plain.offset)
        letter, entries = ex.reasoning.split(": ", 1)
        dots = len(entries) - len(entries.lstrip(". ")) if entries.startswith(".") else 0
        assert f"{letter}: " + entries[dots:] == plain.reasoning, ex
        if dots:
            padded += 1
            widths.append(len(entries.split()))
            assert set(entries[:dots]) == {".", " "} and len(entries[dots:].split()) < widths[-1], ex
    assert 110 < padded < 190 and max(widths) == COUNT_WIDEST and min(widths) > 1, (padded, widths)
    assert reasoning("How many r in strawberry?", "count", 0, 13) == "r: . . . s t r1 a w b e r2 r3 y"
    assert make_example("sort", np.random.default_rng(2), pad_count=1.0) == make_example("sort", np.random.default_rng(2))


def test_sort_tally_writes_each_ones_digit_once_with_its_count_and_draws_nothing():
    """sort_trace tally: the same question and answer from the same draws (older recipes' batches stay the same),
    the trace tallied, and a bucket never longer than ten entries however long the list."""
    assert reasoning("Sort 47 8 44 9 95 90 44", "sort", sort_trace="tally") == (
        "0:8x1,9x1 1: 2: 3: 4:4x2,7x1 5: 6: 7: 8: 9:0x1,5x1")
    assert reasoning("Sort 47 8 44 9 95 90 44", "sort") == "0:8,9 1: 2: 3: 4:4,4,7 5: 6: 7: 8: 9:0,5"
    assert reasoning("Sort " + " ".join(["3"] * 40), "sort", sort_trace="tally").startswith("0:3x40 1: ")
    for seed in range(50):
        plain = make_example("sort", np.random.default_rng(seed), "extrapolate")
        ex = make_example("sort", np.random.default_rng(seed), "extrapolate", sort_trace="tally")
        assert (ex.question, ex.answer, ex.offset) == (plain.question, plain.answer, plain.offset)
        assert ex.reasoning != plain.reasoning and max(len(b.split(",")) for b in ex.reasoning.split()) <= 10
        check_steps(ex)
    for fam in ("add", "count", "fib"):
        plain = make_example(fam, np.random.default_rng(3))
        assert make_example(fam, np.random.default_rng(3), sort_trace="tally") == plain


def test_sort_radix_passes_whole_numbers_by_ones_then_tens_and_draws_nothing():
    """sort_trace radix: the same question and answer from the same draws, a ones pass in the question's
    order and a tens pass reading it; a list of single digits keeps each ones bucket to equal numbers."""
    assert reasoning("Sort 47 8 44 9 95 90 44", "sort", sort_trace="radix") == (
        "ones 0:90 1: 2: 3: 4:44,44 5:95 6: 7:47 8:8 9:9 tens 0:8,9 1: 2: 3: 4:44,44,47 5: 6: 7: 8: 9:90,95")
    digits = reasoning("Sort 5 0 3 2 0 7 4 4 8 7 6 9 4 2 2 9", "sort", sort_trace="radix")
    assert digits.startswith("ones 0:0,0 1: 2:2,2,2 3:3 4:4,4,4 5:5 6:6 7:7,7 8:8 9:9,9 tens 0:0,0,2,2,2,3,4,4,4,5,")
    for seed in range(50):
        plain = make_example("sort", np.random.default_rng(seed), "extrapolate", places=True)
        ex = make_example("sort", np.random.default_rng(seed), "extrapolate", places=True, sort_trace="radix")
        assert (ex.question, ex.answer, ex.offset) == (plain.question, plain.answer, plain.offset)
        assert ex.reasoning.startswith("ones 0:") and " tens 0:" in ex.reasoning
        check_steps(ex)
    for fam in ("add", "count", "fib"):
        plain = make_example(fam, np.random.default_rng(3))
        assert make_example(fam, np.random.default_rng(3), sort_trace="radix") == plain


def test_sort_counted_writes_each_number_with_its_running_count_and_draws_nothing():
    """sort_trace counted: the same question and answer from the same draws, every number of the question
    with how often it has occurred so far (place letters from the example's offset), then the same entries
    sorted: no two entries of a pass are equal, however long a run of equal numbers."""
    assert reasoning("Sort 47 8 44 9 95 90 44", "sort", sort_trace="counted") == (
        "seen b4a7:1 a8:1 b4a4:1 a9:1 b9a5:1 b9a0:1 b4a4:2 sorted a8:1 a9:1 b4a4:1 b4a4:2 b4a7:1 b9a0:1 b9a5:1")
    assert reasoning("Sort 3 0 3", "sort", 2, sort_trace="counted") == "seen c3:1 c0:1 c3:2 sorted c0:1 c3:1 c3:2"
    assert reasoning("Sort " + " ".join(["3"] * 12), "sort", sort_trace="counted").endswith(" a3:11 a3:12")
    offsets = set()
    for seed in range(50):
        plain = make_example("sort", np.random.default_rng(seed), "extrapolate", places=True)
        ex = make_example("sort", np.random.default_rng(seed), "extrapolate", places=True, sort_trace="counted")
        assert (ex.question, ex.answer, ex.offset) == (plain.question, plain.answer, plain.offset)
        halves = [h.split() for h in ex.reasoning[len("seen "):].split(" sorted ")]
        assert ex.reasoning.startswith("seen ") and all(len(set(h)) == len(h) for h in halves), ex
        offsets.add(ex.offset)
        check_steps(ex)
    assert len(offsets) > 2, offsets
    for fam in ("add", "count", "fib"):
        plain = make_example(fam, np.random.default_rng(3))
        assert make_example(fam, np.random.default_rng(3), sort_trace="counted") == plain


def test_sort_items_buckets_item_letters_and_the_item_offset_is_drawn_only_for_items_models():
    """sort_trace items (a tokenizer with items): each bucket lists its numbers' item letters and ones digits,
    equal numbers apart by letter; the item offset is drawn last and only for items models (older recipes keep
    their batches), at 0 about 30% of the time and up to 10, so 12 numbers train the letters up to V."""
    q = "Sort 47 8 44 9 95 90 44"
    assert reasoning(q, "sort", sort_trace="items", item_offset=0) == "0:B8,D9 1: 2: 3: 4:C4,G4,A7 5: 6: 7: 8: 9:F0,E5"
    assert reasoning(q, "sort", sort_trace="items", item_offset=3) == "0:E8,G9 1: 2: 3: 4:F4,J4,D7 5: 6: 7: 8: 9:I0,H5"
    assert reasoning(q, "sort", sort_trace="items") == reasoning(q, "sort")       # a tokenizer without items,
    assert reasoning("Sort 9 8", "sort", sort_trace="items", item_offset=0) == \
        "0:8,9 1: 2: 3: 4: 5: 6: 7: 8: 9:"                                        # or no list
    offsets, letters = [], set()
    for seed in range(300):
        plain = make_example("sort", np.random.default_rng(seed), restyle=0.3, places=True)
        ex = make_example("sort", np.random.default_rng(seed), restyle=0.3, places=True, sort_trace="items", items=True)
        assert (ex.question, ex.answer, ex.offset) == (plain.question, plain.answer, plain.offset)
        hints = item_hints(ex.question, ex.item_offset)      # the question as the model reads it, retyped or not
        assert sorted(re.findall("[A-Z]", ex.reasoning)) == sorted(c for c, _ in hints), ex
        offsets.append(ex.item_offset)
        letters |= {c for c, _ in hints}
        if FAMILIES["sort"].parse(ex.question):             # a retyped question need not parse
            check_steps(ex)
    assert 0.2 < offsets.count(0) / len(offsets) < 0.4 and max(offsets) == 10 and max(letters) == "V", offsets
    assert make_example("sort", np.random.default_rng(1), sort_trace="items").item_offset == 0
    for fam in ("add", "count", "fib"):
        plain = make_example(fam, np.random.default_rng(3), places=True)
        ex = make_example(fam, np.random.default_rng(3), places=True, items=True)
        assert (ex.question, ex.reasoning, ex.answer, ex.offset) == (plain.question, plain.reasoning, plain.answer,
                                                                     plain.offset)


def test_fib_sums_write_values_ones_first_and_the_drill_draws_only_when_asked():
    """fib_sums: the values of the trace ones first with place letters from the example's offset, question
    and answer unchanged; fib_drill: that share of fib examples are sequences from other starts, none holding
    one of fib(41..45)'s values, some of zeros counting down from past 45, and fib_drill 0 draws nothing."""
    assert reasoning("What is fib(10)?", "fib", fib_sums=True) == \
        "fib(10): a0,10 a1,9 a1,8 a2,7 a3,6 a5,5 a8,4 a3b1,3 a1b2,2 a4b3,1 a5b5,0"
    assert reasoning("What is fib(4)?", "fib", 2, fib_sums=True) == "fib(4): c0,4 c1,3 c1,2 c2,1 c3,0"
    assert reasoning("What is fib(10)?", "fib", 2) == "fib(10): 0,10 1,9 1,8 2,7 3,6 5,5 8,4 13,3 21,2 34,1 55,0"
    drilled, fibs, counts = 0, {fib(n) for n in range(41, 46)}, set()
    for seed in range(400):
        plain = make_example("fib", np.random.default_rng(seed))
        assert make_example("fib", np.random.default_rng(seed), fib_sums=True).question == plain.question
        ex = make_example("fib", np.random.default_rng(seed), fib_sums=True, fib_drill=0.5)
        if " if fib(" in ex.question:
            drilled += 1
            counts.add(int(ex.reasoning.split()[1].split(",")[1]))
            assert FAMILIES["fib"].parse(ex.question) is None and int(ex.answer) not in fibs, ex
        check_steps(ex)
    assert 150 < drilled < 250 and max(counts) > 45 and min(counts) == 2, (drilled, counts)
    assert make_example("fib", np.random.default_rng(5), fib_drill=0.0) == make_example("fib", np.random.default_rng(5))


def test_long_fib_drills_run_20_steps_or_more_hold_no_fibonacci_number_and_fit_the_context():
    """fib_drill_long: that share of drilled sequences start in 0..99 and run 20-45 steps (fewer where their
    values pass 480 characters), none holding a Fibonacci number of fib(20) or more (none is fib's own,
    shifted), within 768 tokens; fib_drill_long 0 draws nothing."""
    tok, big, steps = Tokenizer(places=True), {fib(n) for n in range(20, 61)}, []
    for seed in range(300):
        ex = make_example("fib", np.random.default_rng(seed), places=True, restyle=0.3, fib_sums=True,
                          fib_drill=1.0, fib_drill_long=1.0)
        check_steps(ex)
        vals = [unplace("".join(re.findall(r"[a-z]\d", v.split(",")[0])[::-1])) for v in ex.reasoning.split()[1:]]
        steps.append(len(vals) - 1)
        assert vals[0] < 100 and vals[1] < 100 and not big & set(vals), ex
        assert len(sequence(tok, ex.question, target_text(ex.reasoning, ex.answer), ex.offset)[0]) - 1 <= 768, ex
    assert min(steps) == 20 and max(steps) >= 35, steps      # 480 characters of values end the longest
    plain = make_example("fib", np.random.default_rng(8), places=True, fib_sums=True, fib_drill=1.0)
    assert make_example("fib", np.random.default_rng(8), places=True, fib_sums=True, fib_drill=1.0,
                        fib_drill_long=0.0) == plain


def test_mark_places():
    assert mark_places("What is 47+5?") == "What is b4a7+a5?" and mark_places("fib(30)", 2) == "fib(d3c0)"
    assert mark_places("x^2-5x+6=0") == "x^a2-a5x+a6=a0" and mark_places("no digits") == "no digits"
    assert mark_places("1" * 27) == "1" * 27 and mark_places("1" * 24, 3) == "1" * 24      # no letters left
    rng = np.random.default_rng(0)
    chars = list("abcxyz019 -=,B")
    for _ in range(300):                               # the answer's marks come off exactly, streamed or not
        text = "".join(rng.choice(chars, int(rng.integers(0, 30))))
        o = int(rng.integers(0, 5))
        assert unmark_places(mark_places(text, o)) == text
        marked = mark_answer(f"<think>a7</think><answer>{text}</answer>", o)
        pieces = ["<think>", "a", "7", "</think>", "<answer>"] + list(marked.split("<answer>")[1][:-9]) + ["</answer>"]
        assert "".join(unmark_stream(iter(pieces))) == unmark_answer(marked) == f"<think>a7</think><answer>{text}</answer>"
    for _ in range(300):                               # item hints too, for an items model
        nums = [str(n) for n in rng.integers(0, 100, int(rng.integers(3, 17)))]
        text = "".join(x + str(rng.choice([" ", ", ", ",", " B ", " #A "])) for x in nums)
        hints = item_hints("Sort " + " ".join(nums), int(rng.integers(0, 10)))
        marked = mark_answer(tag_items(f"<answer>{text}</answer>", hints), int(rng.integers(0, 5)))
        assert len(re.findall(r"#[A-Z][a-z][0-9]", marked)) == len(nums)             # every number tagged
        pieces = ["<answer>"] + list(marked.split("<answer>")[1][:-9]) + ["</answer>"]
        assert "".join(unmark_stream(iter(pieces), items=True)) == unmark_answer(marked, items=True) == \
            f"<answer>{text}</answer>"
    tok = Tokenizer(places=True)
    assert Tokenizer.from_dict(tok.to_dict()) == tok != Tokenizer() and "places" not in Tokenizer().to_dict()
    assert tok.encode_prompt("7+8") == [tok.bos_id] + tok.encode("a7+a8")
    assert Tokenizer().encode_prompt("7+8") == [tok.bos_id] + tok.encode("7+8")


def unplace(s):
    """'-b3a5' -> -35, checking the letters run down one by one (to a, or to the trace's offset)."""
    sign, body = (-1, s[1:]) if s.startswith("-") else (1, s)
    pairs = re.findall(r"([a-z])(\d)", body)
    low = ord(pairs[-1][0])
    assert "".join(l + d for l, d in pairs) == body and [l for l, _ in pairs] == \
        [chr(low + i) for i in range(len(pairs))][::-1], s
    return sign * int("".join(d for _, d in pairs))


def value(expr):
    """Value of 'a+b+c', 'a-b' or 'a*b' (no eval)."""
    if "*" in expr:
        a, b = expr.split("*")
        return int(a) * int(b)
    m = re.fullmatch(r"(-?\d+)-(\d+)", expr)
    if m:
        return int(m.group(1)) - int(m.group(2))
    return sum(int(a) for a in expr.split("+"))


def check_steps(ex):
    """An independent reading of each trace: every column step and division step must be true, every placed
    number well formed, and the answer must be the trace's last result."""
    t = ex.reasoning
    for step in re.findall(r"(?<![\w^(])[a-z](\d+[-+*]\d+(?:\+\d+)?(?:=\d+(?:\+\d+)?)+)", t):   # a7+8=15, b2*7=14+2=16
        parts = step.split("=")
        for lhs, rhs in zip(parts, parts[1:]):
            assert value(lhs) == int(rhs.split("+")[0]), (step, t)
    for n, d, q, r in re.findall(r"(\d+)/(\d+)=(\d+)r(\d+)", t):
        assert int(n) == int(q) * int(d) + int(r) and int(r) < int(d), t
    results = re.findall(r" =(-?(?:[a-z]\d)+)", t)
    if ex.family in ("add", "sub", "mul"):
        assert str(unplace(results[-1])) == ex.answer, t
    elif ex.family == "speed":
        speed = int(re.search(r" =(\d+)$", t).group(1))
        assert f"{speed} km/h" == ex.answer
    elif ex.family == "linear":                        # "x=R/a" with R the sum's signed result, then R/a
        r, a = map(int, re.search(r" x=(-?\d+)/(\d+) ", t).groups())
        q = int(re.search(r" =(\d+)\)?$", t).group(1))
        negated = " -(" in t.split(" x=")[0]            # -(|c|+b): a sum of two negatives
        assert r == unplace(results[-1]) * (-1 if negated else 1) and abs(r) == q * a and ex.answer == f"x={r // a}", t
    elif ex.family == "quadratic":
        s, p, d = (int(re.search(rf" {k}=(-?\d+)", t).group(1)) for k in "spd")
        D = re.search(r" =(-?(?:[a-z]\d)+) d=", t).group(1)
        four_p = re.search(r" 4p: (-?)\(?.*? =((?:[a-z]\d)+)\)? D=", t)
        assert (-1 if four_p.group(1) else 1) * unplace(four_p.group(2)) == 4 * p, t
        assert unplace(D) == d * d == s * s - 4 * p, t
        halves = re.findall(r"x=\((-?\d+)([-+])(\d+)\)/2 .*? (-?\d+)/2=(-?\d+)(?= x=|$)", t)
        assert len(halves) == 2 and all(int(n) == int(a) + (int(b) if op == "+" else -int(b)) == 2 * int(h)
                                        and int(a) == s and int(b) == d for a, op, b, n, h in halves), t
        roots = sorted({int(h) for *_, h in halves})
        assert FAMILIES["quadratic"].verify(ex.question, ",".join(f"x={r}" for r in roots))
    elif ex.family == "fib":       # values plain, or ones first with place letters ("a5b5"), beside a countdown
        steps = [s.split(",") for s in t.split()[1:]]
        assert [int(k) for _, k in steps] == list(range(len(steps) - 1, -1, -1)), t
        vals = [int(v) if v.isdigit() else unplace("".join(re.findall(r"[a-z]\d", v)[::-1])) for v, _ in steps]
        start = re.search(r"fib\(0\)=(\d+) and fib\(1\)=(\d+)", ex.question)     # a drilled sequence
        assert vals[:2] == ([int(x) for x in start.groups()] if start else [0, 1])[:len(vals)], t
        assert all(c == a + b for a, b, c in zip(vals, vals[1:], vals[2:])) and str(vals[-1]) == ex.answer, t
    elif ex.family == "count":
        assert str(max([int(w[1:]) for w in t.split()[1:] if len(w) > 1] or [0])) == ex.answer
    elif ex.family == "sort" and t.startswith("seen "):    # counted: running counts in order, then sorted
        given = FAMILIES["sort"].parse(ex.question)
        seen, ranked = ([(unplace(x), int(k)) for x, k in (w.split(":") for w in half.split())]
                        for half in t[len("seen "):].split(" sorted "))
        assert [x for x, _ in seen] == list(given), t
        assert {w.split(":")[0][-2] for w in t.split()[1:] if ":" in w} == {chr(ord("a") + ex.offset)}, t
        assert all(k == given[:i + 1].count(x) for i, (x, k) in enumerate(seen)), t
        assert ranked == sorted(seen) and " ".join(str(x) for x, _ in ranked) == ex.answer, t
    elif ex.family == "sort" and t.startswith("ones "):    # radix: a ones pass, then a tens pass reading it
        given = FAMILIES["sort"].parse(ex.question)
        assert [w.split(":")[0] for w in t.split() if ":" in w] == [str(d) for d in range(10)] * 2, t
        ones, tens = ([[int(x) for x in w.split(":")[1].split(",") if x] for w in half.split()]
                      for half in t[len("ones "):].split(" tens "))
        assert all(xs == [x for x in given if x % 10 == u] for u, xs in enumerate(ones)), t   # the question's order
        read = [x for xs in ones for x in xs]
        assert all(xs == [x for x in read if x // 10 == k] for k, xs in enumerate(tens)), t   # the ones pass's order
        got = [x for xs in tens for x in xs]
        assert got == sorted(given) and " ".join(map(str, got)) == ex.answer, t
    elif ex.family == "sort":                          # ten buckets by tens digit, each its ones digits rising
        given = FAMILIES["sort"].parse(ex.question)
        buckets = [w.split(":") for w in t.split()]
        assert [int(k) for k, _ in buckets] == list(range(10)), t
        entries = [(k, u) for k, us in buckets for u in us.split(",") if us]
        answer = ex.answer
        if answer.startswith(ITEM):                   # indexed or nth: "C4" is entry C, the answer's number after #C
            letters = [c for _, (c, _) in entries]
            assert letters in (entry_letters(sorted(given), ex.item_offset, "indexed"),
                               entry_letters(sorted(given), ex.item_offset, "nth")), t
            hinted = [w.partition(ITEM)[2] for w in answer.split()]
            assert [w[0] for w in hinted] == letters, answer
            answer = " ".join(w[1:] for w in hinted)
            entries = [(k, u) for k, (_, u) in entries]
        elif any(u[0].isupper() for _, u in entries):  # items: "C4" is item C, whose number's ones digit is 4
            items = {c: int(n) for c, n in item_hints(ex.question, ex.item_offset)}
            assert sorted(c for _, (c, _) in entries) == sorted(items), t
            assert all(items[c] == 10 * int(k) + int(u) for k, (c, u) in entries), t
            assert [(k, u, c) for k, (c, u) in entries] == sorted((k, u, c) for k, (c, u) in entries), t
            entries = [(k, u) for k, (_, u) in entries]
        if any("x" in u for _, u in entries):          # tallied: "4x2" is the ones digit 4 twice, each digit once
            tallies = [(k, *map(int, u.split("x"))) for k, u in entries]
            assert all(n >= 1 for *_, n in tallies) and all(
                a[:2] < b[:2] for a, b in zip([(int(k), u) for k, u, _ in tallies],
                                              [(int(k), u) for k, u, _ in tallies][1:])), t
            entries = [(k, u) for k, u, n in tallies for _ in range(n)]
        got = [10 * int(k) + int(u) for k, u in entries]
        assert got == sorted(given) and " ".join(map(str, got)) == answer, t


@pytest.mark.parametrize("trace, q, offset, want", [
    # indexed: v13's buckets, each entry after a letter in order from the entry offset
    ("indexed", "Sort 47 8 44 9 95 90 44", 0, "0:A8,B9 1: 2: 3: 4:C4,D4,E7 5: 6: 7: 8: 9:F0,G5"),
    ("indexed", "Sort 47 8 44 9 95 90 44", 19, "0:T8,U9 1: 2: 3: 4:V4,W4,X7 5: 6: 7: 8: 9:Y0,Z5"),
    ("indexed", "Sort 9 8", 2, "0:C8,D9 1: 2: 3: 4: 5: 6: 7: 8: 9:"),
    # nth: each entry after the letter of its occurrence among equal numbers (the first 44 A, the second B)
    ("nth", "Sort 47 8 44 9 95 90 44 8 8", 0, "0:A8,B8,C8,A9 1: 2: 3: 4:A4,B4,A7 5: 6: 7: 8: 9:A0,A5"),
    ("nth", "Sort 47 8 44 9 95 90 44 8 8", 23, "0:X8,Y8,Z8,X9 1: 2: 3: 4:X4,Y4,X7 5: 6: 7: 8: 9:X0,X5"),
    # letters past Z: the plain buckets
    ("indexed", "Sort 47 8 44 9 95 90 44", 20, None),
    ("nth", "Sort 47 8 44 9 95 90 44 8 8", 24, None)])
def test_lettered_sort_traces_letter_their_entries(trace, q, offset, want):
    """The lettered sort traces (a tokenizer with hints) are v13's buckets with a letter before each entry;
    a list whose letters would run past Z keeps the plain buckets."""
    assert reasoning(q, "sort", sort_trace=trace, item_offset=offset) == (want or reasoning(q, "sort"))


def test_lettered_answers_carry_their_entries_letters_and_decode_without_them():
    """The answer's numbers after their entries' letters (indexed: the k-th letter; nth: the occurrence's);
    the prompt is read without item hints, the answer shown without its hints."""
    assert index_answer("8 9 44 44 47 90 95", 0) == "#A8 #B9 #C44 #D44 #E47 #F90 #G95"
    assert index_answer("8 8 9 44 44", 0, "nth") == "#A8 #B8 #A9 #A44 #B44"
    q = "Sort 47 8 44 9 95 90 44"
    tok = Tokenizer(places=True, hints=True)
    completion = target_text(reasoning(q, "sort", sort_trace="indexed", item_offset=1), index_answer("8 9 44", 1))
    seq, start = sequence(tok, q, completion, 0, 1)
    assert tok.decode(seq[1:start]) == mark_places(q)                     # no item hints in the prompt
    assert tok.decode(seq[start:]).endswith("<answer>#Ba8 #Ca9 #Db4a4</answer><eos>")
    assert tok.decode_completion(seq[start:]).endswith("<answer>8 9 44</answer>")


@pytest.mark.parametrize("trace", LETTERED)
def test_lettered_sort_examples_are_v13s_with_letters_and_draw_the_offset_for_sort_only(trace):
    """A lettered trace's examples are the plain buckets' with letters added (question, answer and place
    offset unchanged), every step checked; the letter offset is drawn last and for sort only, like items'
    (0 about 30% of the time, up to 10, so 12 numbers train the letters up to V), so other families keep
    their batches."""
    offsets, letters = [], set()
    for seed in range(300):
        plain = make_example("sort", np.random.default_rng(seed), restyle=0.3, places=True)
        ex = make_example("sort", np.random.default_rng(seed), restyle=0.3, places=True, sort_trace=trace)
        assert (ex.question, re.sub("#[A-Z]", "", ex.answer), ex.offset) == (plain.question, plain.answer, plain.offset)
        assert re.sub("[A-Z]", "", ex.reasoning) == plain.reasoning       # v13's buckets, letters aside
        offsets.append(ex.item_offset)
        letters |= set(re.findall("[A-Z]", ex.reasoning))
        if FAMILIES["sort"].parse(ex.question):             # a retyped question need not parse
            check_steps(ex)
    assert 0.2 < offsets.count(0) / len(offsets) < 0.4 and max(offsets) == 10, offsets
    assert max(letters) >= ("V" if trace == "indexed" else "K"), letters    # nth: offset 10 starts at K
    for fam in ("add", "count", "fib", "refuse"):
        plain = make_example(fam, np.random.default_rng(3), places=True)
        assert make_example(fam, np.random.default_rng(3), places=True, sort_trace=trace) == plain


@pytest.mark.parametrize("places", [False, True])
@pytest.mark.parametrize("family", list(FAMILIES) + ["refuse"])
def test_traces_compute_the_right_answer_and_fit_the_context(family, places):
    """Every step of every trace is true, at every place offset, and a whole training sequence (question and
    answer marked with places for a places model) fits the v2 student's 512-token context (fib written with
    sums, student v14's 768). Sort is written in each of its traces; places models write fib with sums, half
    of it drilled, and read lists with item hints."""
    rng = np.random.default_rng(7)
    tok = Tokenizer(places=places, items=places)
    sizes = ("train", "extrapolate") if family not in ("faq", "refuse") else ("train",)
    for split in sizes:
        for i in range(300 if family != "fib" else 60):
            ex = make_example(family, rng, split, places=places, pad=0.5 if places else 0.0,
                              sort_trace=SORT_TRACES[i % len(SORT_TRACES)], fib_sums=places,
                              fib_drill=0.5 if places else 0.0, items=places)
            drilled = " if fib(0)=" in ex.question                # checked by check_steps alone
            answer = re.sub(f"{ITEM}[A-Z]", "", ex.answer)      # an indexed sort's hints dropped
            assert family == "refuse" or drilled or FAMILIES[family].verify(ex.question, answer)
            check_steps(ex)
            seq, _ = sequence(tok, ex.question, target_text(ex.reasoning, ex.answer), ex.offset, ex.item_offset)
            assert len(seq) - 1 <= (768 if family == "fib" and places else 512), ex


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


def test_drilled_speed_problems_practise_every_division_step_and_keep_older_batches():
    """speed_facts: a drilled problem takes a step (m, t) drawn uniformly over the 759 steps of speed's range,
    so a step that speed's own draw makes rare (55/8: 3 in 20,000) is practised as often as any other; the
    problem stays in its split, in a training phrasing, with the plain trace and answer; no other family
    draws differently."""
    from trainer.tasks.cot import divide
    from trainer.tasks.drill import drilled_speed, steps_index
    written = {}                                     # the steps cot.divide writes, over the whole range
    for t in range(1, 13):
        for v in range(1, 301):
            for m in re.findall(rf"(\d+)/{t}=", divide(v * t, t).split(": ", 1)[1]):
                written.setdefault((int(m), t), set()).add(v)
    assert [(k, set(vs)) for k, vs in steps_index()] == sorted(written.items())
    speed, drilled, natural = FAMILIES["speed"], {}, {}
    for seed in range(3000):
        for counts, facts in ((drilled, 1.0), (natural, 0.0)):
            ex = make_example("speed", np.random.default_rng(seed), speed_facts=facts)
            for m in re.findall(r"(\d+/\d+)=", ex.reasoning):
                counts[m] = counts.get(m, 0) + 1
            if facts:
                p = speed.parse(ex.question)
                assert split_of(speed.phrase(p)) == "train" and speed.size(p) == "train", ex
                assert ex.reasoning == reasoning(ex.question) and ex.answer == speed.solve(ex.question), ex
    steps = [f"{m}/{t}" for (m, t), _ in steps_index()]
    rare = {name: sum(c.get(k, 0) < 3 for k in steps) for name, c in (("drilled", drilled), ("natural", natural))}
    assert rare["drilled"] < 90 and rare["natural"] > 2 * rare["drilled"], rare    # measured: 59 and 179 (seeds 0..2999)
    for seed in range(20):
        p = speed.sample(np.random.default_rng(seed), "heldout", draw=drilled_speed)
        assert split_of(p.question) == "heldout"
    with pytest.raises(TaskError, match="speed: drilled problems are of the training range, not 'extrapolate'"):
        speed.sample(np.random.default_rng(0), "extrapolate", draw=drilled_speed)
    for fam in ("add", "count", "linear"):
        assert make_example(fam, np.random.default_rng(4), speed_facts=1.0) == make_example(fam, np.random.default_rng(4))


def test_drilled_sort_lists_hold_long_runs_of_equal_numbers_within_the_training_range():
    """sort_runs: a drilled sort list has 6-12 numbers from 1-5 distinct values, so runs of equal numbers up
    to 12 long, which sort's own draw makes rare; it stays in the training range and its split, with the
    plain trace and answer; sort_runs 0 draws nothing (older batches) and no other family draws differently."""
    from trainer.tasks.drill import drilled_sort
    sort = FAMILIES["sort"]

    def longest_runs(runs):
        out = []
        for seed in range(1000):
            ex = make_example("sort", np.random.default_rng(seed), sort_runs=runs)
            p = sort.parse(ex.question)
            if p:                                            # a retyped question need not parse; these are not retyped
                out.append(max(p.count(x) for x in p))
                check_steps(ex)
                assert sort.size(p) == "train" and ex.answer == sort.solve(ex.question), ex
        return out
    drilled, natural = longest_runs(1.0), longest_runs(0.0)
    assert len(drilled) == len(natural) == 1000
    assert sum(r >= 5 for r in drilled) > 300 and sum(r >= 5 for r in natural) < 20, (drilled, natural)
    assert max(drilled) == 12
    for seed in range(20):
        p = sort.sample(np.random.default_rng(seed), "heldout", draw=drilled_sort)
        assert split_of(p.question) == "heldout" and 6 <= len(sort.parse(p.question)) <= 12
    with pytest.raises(TaskError, match="sort: drilled lists are of the training range, not 'extrapolate'"):
        sort.sample(np.random.default_rng(0), "extrapolate", draw=drilled_sort)
    assert make_example("sort", np.random.default_rng(5), sort_runs=0.0) == make_example("sort", np.random.default_rng(5))
    for fam in ("add", "count", "fib"):
        assert make_example(fam, np.random.default_rng(4), sort_runs=1.0) == make_example(fam, np.random.default_rng(4))
