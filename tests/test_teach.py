"""`tinyr1 teach` (trainer/teach.py, tinyr1/teach_cli.py): the owner's file checked whole, paraphrases, the
worked museum example end to end on a tiny model."""
import json
import os

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, random_params, small_student
from runtime.errors import DatasetError
from runtime.tokenizer import Tokenizer
from trainer.tasks.paraphrase import HELDOUT, heldout, trained
from trainer.teach import read_facts, training_examples
from tinyr1.cli import main

MUSEUM = os.path.join(ROOT, "examples", "museum")


def facts_file(tmp_path, rows, name="facts.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(rows) if name.endswith(".yaml") else "\n".join(json.dumps(r) for r in rows))
    return str(p)


@pytest.mark.parametrize("rows, words", [
    ([{"question": "Where is the caf\u00e9?", "answer": "Downstairs."}],
     "entry 0: field 'question': character '\u00e9' (U+00E9) at position 16 is not in the vocabulary"),
    ([{"question": "Where is the cafe?", "answer": "Downstairs."},
      {"question": "where is the cafe", "answer": "Upstairs."}],
     "entry 1: question 'where is the cafe' is also "),
    ([{"question": "What is 2+2?", "answer": "five"}],
     "entry 0: question 'What is 2+2?' is a add question whose answer is '4', not 'five'"),
    ([{"question": "Q?", "answer": "A", "source": "me"}], "entry 0: unknown field 'source'; allowed: question"),
    ([{"question": "Q?"}], "entry 0: missing field 'answer'"),
    ([{"question": "Q?", "answer": 42}], "entry 0: field 'answer' must be a non-empty string, got 42"),
    ([{"question": "Q?", "answer": "a <answer> b"}], "contains the special token <answer>"),
    ([{"question": "Q?", "answer": "x" * 600}], "with its answer is 6"),            # beyond a 512 context
    ([], "no facts"),
    ({"question": "Q?"}, "expected a list of {question, answer, reasoning} entries, got dict"),
])
def test_a_bad_fact_is_named_before_training(tmp_path, rows, words):
    path = facts_file(tmp_path, rows)
    with pytest.raises(DatasetError) as e:
        read_facts(path, Tokenizer(), 512)
    assert str(e.value).startswith(path) and words in str(e.value)


def test_jsonl_facts_name_their_line_and_same_duplicates_merge(tmp_path):
    rows = [{"question": "Where is the cafe?", "answer": "Downstairs."},
            {"question": "WHERE is the cafe", "answer": "Downstairs. "}, {"question": "Is it open?", "answer": "Yes"}]
    facts = read_facts(facts_file(tmp_path, rows, "f.jsonl"), Tokenizer(), 512)
    assert [f.question for f in facts] == ["Where is the cafe?", "Is it open?"]
    assert facts[0].reasoning == "recall" and facts[0].where.endswith("f.jsonl:1")
    (tmp_path / "bad.jsonl").write_text('{"question": "Q?", "answer": "A"}\n{"question": \n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: invalid JSON"):
        read_facts(str(tmp_path / "bad.jsonl"), Tokenizer())
    with pytest.raises(DatasetError, match=r"expected a .yaml, .yml or .jsonl file"):
        read_facts(str(tmp_path / "f.txt"), Tokenizer())


def test_an_answer_too_long_for_the_display_is_refused(tmp_path):
    from runtime.kiosk.config import load_config
    from trainer.teach import check_display
    lcd = load_config(os.path.join(ROOT, "firmware_configs", "pizero2w-lcd1602.yaml"))
    oled = load_config(os.path.join(MUSEUM, "kiosk.yaml"))
    facts = read_facts(facts_file(tmp_path, [{"question": "Q?", "answer": "word " * 80}]), Tokenizer(), 512)
    with pytest.raises(DatasetError, match=r"needs \d+ pages on .*kiosk.yaml's sh1106 \(21x5 characters\); at "
                                           r"most 4"):
        check_display(facts, oled)
    check_display(read_facts(os.path.join(MUSEUM, "facts.yaml"), Tokenizer(), 512), oled)   # the example fits
    short = read_facts(facts_file(tmp_path, [{"question": "Q?", "answer": "At 9 am, daily."}]), Tokenizer(), 512)
    check_display(short, oled)
    check_display(short, lcd)                                          # "=" and 15 characters: one LCD line
    with pytest.raises(DatasetError, match=r"is 399 characters; .*lcd1602.yaml's hd44780 \(16x2 characters\) "
                                           r"shows the first 15 of an answer"):
        check_display(facts, lcd)
    for b in oled.buttons:
        b.hold = "none"
    with pytest.raises(DatasetError, match=r"needs \d+ pages on .*no button turns pages \(hold: next_page\); "
                                           r"at most 1"):
        check_display(facts, oled)


def test_paraphrases_hold_out_what_training_never_sees():
    import numpy as np
    q = "What is the oldest object here?"
    train, held = trained(q, np.random.default_rng(0)), heldout(q)
    assert train[:2] == [q, "the oldest object here: what is it?"] and len(train) == 40 == len(set(train))
    assert len(held) == len(HELDOUT) and not set(train) & set(held)
    assert any("what's the oldest object here" in t.lower() for t in train)
    assert not any(t.lower().startswith(("do you know", "hey", "i wonder")) or "thanks" in t for t in train)
    facts = read_facts(os.path.join(MUSEUM, "facts.yaml"), Tokenizer(), 512)
    examples = training_examples(facts, seed=0)
    assert not {e.question for e in examples} & {h for f in facts for h in heldout(f.question)}
    refused = [e for e in examples if e.family == "refuse"]
    assert len(refused) >= 5 * len(facts) and all(e.answer.startswith("Sorry") for e in refused)
    assert training_examples(facts, seed=0) == examples                 # seeded


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory):
    """A tiny random checkpoint with room for the museum's facts."""
    from trainer import checkpoint
    cfg = small_student(max_position_embeddings=512)             # the replayed families' longest traces
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    checkpoint.save(str(path), random_params(cfg), cfg, Tokenizer(), {"step": 0})
    return str(path)


def test_the_museum_example_runs_end_to_end(tmp_path, tiny_student):
    """The worked example's flow on a tiny model: facts checked, taught, compiled with the facts, measured,
    pre-flight checked and simulated (a tiny model answers nonsense: the flow, not the accuracy)."""
    from PIL import Image
    from runtime.model import load
    from runtime.tasks import families_of, judge
    out = tmp_path / "museum"
    r = CliRunner().invoke(main, ["teach", os.path.join(MUSEUM, "facts.yaml"), "--from", tiny_student,
                                  "--out", str(out), "--config", os.path.join(MUSEUM, "kiosk.yaml"),
                                  "--steps", "2", "--eval-n", "2", "--no-progress"])
    assert r.exit_code == 0, r.output
    facts = read_facts(os.path.join(MUSEUM, "facts.yaml"), Tokenizer(), 512)
    model = load(str(out / "model.msgpack"))
    assert model.taught == [(f.question, f.answer) for f in facts]
    report = json.load(open(out / "report.json"))
    assert report["facts"] == 30 and report["steps"] == 2 and report["preflight"]["buttons"] == 5
    assert report["after"]["owner"][1] == 30 and report["after"]["heldout"][1] == 30 * len(HELDOUT)
    assert "| owner's phrasings, exact |" in r.output and "pre-flight:" in r.output
    assert Image.open(out / "kiosk.gif").n_frames > 5
    lines = [json.loads(line) for line in open(out / "train.jsonl")]
    assert len(lines) == len(training_examples(facts, 0, Tokenizer(), 512)) > 30 * 40
    r = CliRunner().invoke(main, ["validate", os.path.join(MUSEUM, "kiosk.yaml"), "--model",
                                  str(out / "model.msgpack"), "--problems", "1"])
    assert r.exit_code == 1 and "GPIO 5 \"Opening hours\": cut off: 'When does the museum open?'" in r.output
    families = families_of(model)                                      # the taught answers judge the kiosk's
    assert judge("when does the museum open", "<think>recall</think><answer>At 9 am, every day except "
                 "Monday.</answer>", "", families)[0] == "right"
    assert judge("When does the museum open?", "<think>recall</think><answer>At 10 am.</answer>", "",
                 families)[:3] == ("wrong", "At 10 am.", "At 9 am, every day except Monday.")


def test_teaching_replays_the_families_as_the_student_was_trained():
    """The bundled student's recipe pads add and sub traces and distracts count questions: teach's replay does
    the same, at the same weights; an unknown recipe replays every family plainly."""
    from trainer import teach
    from trainer.recipe import load_recipe
    info = {"recipe_file": "trainer/recipes/student-v7.yaml"}
    sft = load_recipe(os.path.join(ROOT, info["recipe_file"])).sft
    assert teach.replay_styles(info) == {"pad": sft.pad, "distract": sft.distract, "pad_count": sft.pad_count,
                                         "speed_facts": sft.speed_facts,
                                         "distract_strings": sft.distract_strings, "sort_trace": sft.sort_trace,
                                         "fib_sums": sft.fib_sums, "fib_drill": sft.fib_drill,
                                         "fib_drill_long": sft.fib_drill_long, "sort_runs": sft.sort_runs}
    assert sft.pad > 0
    recipe = teach.teach_recipe("CKPT", "taught.jsonl", teach.replay_families(info), styles=teach.replay_styles(info))
    assert (recipe.sft.pad, recipe.sft.distract, recipe.sft.pad_count, recipe.sft.families) == \
        (sft.pad, sft.distract, sft.pad_count, sft.families)
    assert teach.replay_styles({}) == {} and teach.teach_recipe("C", "t.jsonl", {"add": 1.0}).sft.pad == 0.0
