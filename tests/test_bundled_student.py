"""The bundled default student: size, and what int8 compilation keeps of it."""
import os

import numpy as np
import pytest

from compiler.compile import compile_model
from runtime.loader import parse_document
from runtime.model import Model
from runtime.tasks import FAMILIES
from trainer import checkpoint
from trainer.model import count_params
from trainer.recipe import load_recipe
from trainer.tasks import target

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT = os.path.join(ROOT, "trainer", "checkpoints", "student")
SEED_QUESTIONS = ["What is 47+38?", "How many r in strawberry?", "Solve 3x+5=20",
                  "A train travels 300 km in 5 hours. What is its average speed?", "Solve x^2-5x+6=0",
                  "What is fib(10)?", "Sort 5 3 9 1"]


@pytest.fixture(scope="module")
def student():
    params, cfg, tok, info = checkpoint.load(CKPT)
    f32 = Model(parse_document(compile_model(params, cfg, tok, quant="float32")[0]))
    data8 = compile_model(params, cfg, tok, quant="int8")[0]
    return params, cfg, tok, info, f32, Model(parse_document(data8)), len(data8)


def test_size_and_shipped_metadata(student):
    params, cfg, tok, info, *_ = student
    assert count_params(cfg) <= 2_000_000
    assert "optim_step" not in info and not os.path.exists(os.path.join(CKPT, "optim.npz"))
    assert info["eval"], "the checkpoint records its eval table"


def test_recorded_recipe_describes_the_bundle(student):
    # checkpoint.json names the recipe and stage that trained it; follow that stage's init chain back to
    # the stage that built the model, whose configuration must be the bundle's
    params, cfg, tok, info, *_ = student
    stages = {s.name: s for s in load_recipe(os.path.join(ROOT, info["recipe_file"])).stages}
    st = stages[info["stage"]]
    assert st.recipe.sft.steps == info["step"]
    while st.recipe.sft.init in stages:
        st = stages[st.recipe.sft.init]
    have = cfg.to_dict()
    diff = {k: (v, have[k]) for k, v in st.recipe.model.to_dict().items() if have[k] != v}
    assert not diff, f"{info['recipe_file']} {st.name}: model differs from the bundle in {diff}"


def test_int8_file_is_at_most_1_15_bytes_per_parameter(student):
    params, cfg, *_, size8 = student
    assert size8 <= 1.15 * count_params(cfg)


def held_out_traces(n_per_family=12):
    rng = np.random.default_rng(99)
    return [p.question for f in FAMILIES.values() for p in (f.sample(rng, "heldout") for _ in range(n_per_family))]


def test_int8_greedy_next_token_agreement_on_held_out_traces(student):
    params, cfg, tok, info, f32, i8, _ = student
    agree = total = 0
    for q in held_out_traces():
        prompt = [tok.bos_id] + tok.encode(q)
        ids = prompt + tok.encode(target(q))
        a = f32.logits(ids)[len(prompt) - 1:].argmax(-1)
        b = i8.logits(ids)[len(prompt) - 1:].argmax(-1)
        agree += int((a == b).sum())
        total += len(a)
    assert agree / total >= 0.99, f"int8 agrees with float on {agree}/{total} next tokens"


def test_seed_questions_same_text_float_and_int8_mostly(student):
    *_, f32, i8, _ = student
    same = sum("".join(f32.generate(q)) == "".join(i8.generate(q)) for q in SEED_QUESTIONS)
    assert same >= len(SEED_QUESTIONS) - 1


def test_mtp_drafts_leave_greedy_text_unchanged_and_are_mostly_accepted(student):
    *_, i8, _ = student
    assert i8.has_mtp, "the bundled student carries its MTP head into the compiled file"
    drafted = accepted = 0
    for q in held_out_traces(2) + SEED_QUESTIONS:
        spec = {}
        assert "".join(i8.generate(q)) == "".join(i8.generate(q, speculative=True, stats=spec)), q
        drafted, accepted = drafted + spec["drafted"], accepted + spec["accepted"]
    assert accepted / drafted >= 0.7, f"{accepted}/{drafted} drafts accepted"
