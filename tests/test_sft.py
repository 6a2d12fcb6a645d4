"""SFT: recipes, checkpoints, and exact resumption after kill -9."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from runtime.errors import CheckpointError, ConfigError
from trainer import checkpoint
from trainer.recipe import load_recipe, recipe_from_dict

TINY_MODEL = dict(hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=2,
                  num_attention_heads=2, n_routed_experts=4, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=4,
                  v_head_dim=8, max_position_embeddings=512)   # v2: fib(40) is 390 tokens


def write_recipe(tmp_path, sft=None, model=None, name="tiny"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "model": model or TINY_MODEL,
                                    "sft": {"steps": 30, "batch_size": 8, "checkpoint_every": 5,
                                            "log_every": 1, "warmup_steps": 5, **(sft or {})}}))
    return str(path)


def test_shipped_recipes_load():
    r = load_recipe("trainer/recipes/student-sft.yaml")
    assert r.model.hidden_size == 128 and r.model.first_k_dense_replace == 1
    import dataclasses
    v2, v3 = (load_recipe(f"trainer/recipes/student-v{k}.yaml") for k in (2, 3))
    assert v3.sft.places and not v2.sft.places                 # v3 is v2 reading and writing numbers with places,
    assert v3.sft.restyle == 0.3 and v2.sft.restyle == 0       # and 30% of its questions retyped
    assert v3.model == v2.model and dataclasses.replace(v3.sft, places=False, restyle=0.0) == v2.sft


@pytest.mark.parametrize("raw, message", [
    ({"modle": {}}, "unknown key 'modle'; allowed keys: name, description, model, sft"),
    ({"model": {"hiden_size": 3}}, "model: unknown key 'hiden_size'; allowed keys: .*hidden_size"),
    ({"sft": {"lr": "fast"}}, "sft: lr='fast': must be a number"),
    ({"sft": {"steps": 1.5}}, "sft: steps=1.5: must be an integer"),
    ({"model": {"norm_topk_prob": 1}}, "model: norm_topk_prob=1: must be true or false"),
    ({"model": {"num_experts_per_tok": 9}}, "model: num_experts_per_tok=9: must be <= n_routed_experts=8"),
    ({"model": {"n_group": 3}}, "model: n_group=3: must be a divisor of n_routed_experts=8"),
    ({"model": {"q_lora_rank": "none"}}, "model: q_lora_rank='none': must be an integer or null"),
    ({"model": []}, "r.yaml: model=\\[\\]: must be a mapping"),
    ({"sft": {"split": "test"}}, "sft: split='test': must be one of train, sft, rl"),
])
def test_recipe_errors_name_file_key_and_allowed(raw, message):
    with pytest.raises(ConfigError, match=message) as e:
        recipe_from_dict(raw, "r.yaml")
    assert str(e.value).startswith("r.yaml")


def test_recipe_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {hidden_size: [\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_recipe(str(bad))
    with pytest.raises(ConfigError, match="missing.yaml: cannot read recipe"):
        load_recipe(str(tmp_path / "missing.yaml"))
    ok = recipe_from_dict({"model": {"routed_scaling_factor": 2}}, "r.yaml")   # int accepted for float
    assert ok.model.routed_scaling_factor == 2.0


def test_unknown_family_in_recipe(tmp_path):
    from runtime.tokenizer import Tokenizer
    from trainer.data import Mixture
    with pytest.raises(ConfigError, match="unknown family 'algebra'; known: add, sub"):
        Mixture(Tokenizer(), {"add": 1, "algebra": 2}, source="r.yaml: sft")


def test_batches_mask_only_the_completion():
    from runtime.tokenizer import Tokenizer
    from trainer.data import encode_batch
    tok = Tokenizer()
    tokens, mask = encode_batch(tok, [("Q?", "<think>a</think><answer>1</answer>"), ("Long?", "<answer>2</answer>")])
    row = tokens[0].tolist()
    targets = [t for t, m in zip(row[1:], mask[0]) if m]
    assert tok.decode(targets) == "<think>a</think><answer>1</answer><eos>"
    assert tok.decode([t for t, m in zip(tokens[1, 1:].tolist(), mask[1]) if m]) == "<answer>2</answer><eos>"


@pytest.mark.parametrize("seed", range(6))
def test_cheapest_cuts_is_the_cheapest_of_all_cuttings(seed):
    import itertools
    from trainer.data import ATTENTION_PER_TOKEN, cheapest_cuts
    rng = np.random.default_rng(seed)
    lengths = sorted(rng.integers(5, 400, int(rng.integers(1, 10))).tolist())
    k = int(rng.integers(1, 5))

    def cost(cuts):
        return sum((b - a) * (lengths[b - 1] + lengths[b - 1] ** 2 * ATTENTION_PER_TOKEN) for a, b in cuts)
    n, every = len(lengths), []
    for j in range(min(k, n)):
        for inner in itertools.combinations(range(1, n), j):
            edges = (0, *inner, n)
            every.append(list(zip(edges, edges[1:])))
    got = cheapest_cuts(lengths, k)
    assert got[0][0] == 0 and got[-1][1] == n and all(a[1] == b[0] for a, b in zip(got, got[1:]))
    assert 1 <= len(got) <= k and all(a < b for a, b in got)
    assert cost(got) == pytest.approx(min(map(cost, every)))


def test_micro_batches_hold_the_batch_and_give_its_gradient():
    """Cutting a step into pieces changes the padding, not the examples or (beyond rounding) the gradient."""
    from runtime.tokenizer import Tokenizer
    from trainer.config import ModelConfig
    from trainer.data import Mixture
    from trainer.model import init_params
    from trainer.sft import accumulate
    tok = Tokenizer(places=True)
    mix = Mixture(tok, {"add": 1, "fib": 1, "sort": 1, "refuse": 1}, seed=3, pad=0.3)
    pieces = mix.micro_batches(5, 12, 4)
    assert 2 <= len(pieces) <= 4
    rows = lambda tm: sorted(tok.decode([t for t in r if t != tok.pad_id]) for r in tm[0].tolist())
    assert sorted(sum((rows(p) for p in pieces), [])) == rows(mix.batch(5, 12))
    cfg = ModelConfig(**{**TINY_MODEL, "vocab_size": tok.vocab_size})
    params = {k: v.astype(np.float64) for k, v in init_params(cfg, 0).items()}
    one = accumulate(params, cfg, [mix.batch(5, 12)], 0.3, 0.0)     # aux_alpha 0, the default: its
    # balance loss is a mean over each piece, so with aux_alpha > 0 the cut moves the loss slightly
    cut = accumulate(params, cfg, pieces, 0.3, 0.0)
    assert cut[0] == pytest.approx(one[0], rel=1e-12)
    for k in one[1]:
        np.testing.assert_allclose(cut[1][k], one[1][k], rtol=1e-9, atol=1e-12)
    from trainer.sft import micro_batch_threads
    with micro_batch_threads(1) as pool:                 # on threads: the same bits, whatever finishes first
        cut = accumulate(params, cfg, pieces, 0.3, 0.0, pool=pool)
    with micro_batch_threads(3) as pool:
        threaded = accumulate(params, cfg, pieces, 0.3, 0.0, pool=pool)
    assert threaded[0] == cut[0] and threaded[3] == cut[3]
    assert all(np.array_equal(threaded[1][k], cut[1][k]) for k in cut[1])
    assert all(np.array_equal(a, b) for a, b in zip(threaded[2]["load"], cut[2]["load"]))


def run_train(recipe, out, *extra, background=False):
    cmd = [sys.executable, "-m", "tinyr1.cli", "train", "--recipe", recipe, "--out", out, "--no-progress", *extra]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if background:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f)]


def test_kill_9_then_resume_reproduces_the_uninterrupted_losses(tmp_path):
    recipe = write_recipe(tmp_path, {"steps": 40})
    ref = str(tmp_path / "ref")
    r = run_train(recipe, ref)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(os.path.join(ref, "loss.png"))

    out = str(tmp_path / "killed")
    proc = run_train(recipe, out, background=True)
    metrics = os.path.join(out, "metrics.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:      # kill once a checkpoint exists mid-run
        if checkpoint.latest(out) and os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 12:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.load(open(os.path.join(checkpoint.latest(out), "checkpoint.json")))["step"]
    assert killed_at < 40
    r = run_train(recipe, out, "--resume")
    assert r.returncode == 0, r.stderr
    assert losses(out) == losses(ref)                          # bit for bit, every step


def test_checkpoint_round_trip_and_corruption(tmp_path):
    from runtime.tokenizer import Tokenizer
    from trainer.config import ModelConfig
    from trainer.model import init_params
    cfg = ModelConfig(**TINY_MODEL, vocab_size=Tokenizer().vocab_size)
    params = init_params(cfg, 0)
    path = str(tmp_path / "ck")
    checkpoint.save(path, params, cfg, Tokenizer(), {"step": 3})
    p2, cfg2, tok2, info = checkpoint.load(path)
    assert cfg2 == cfg and info["step"] == 3 and all(np.array_equal(params[k], p2[k]) for k in params)
    checkpoint.save(path, params, cfg, Tokenizer(), {"step": 4})          # replacing is atomic too
    assert checkpoint.load(path)[3]["step"] == 4 and not [d for d in os.listdir(tmp_path) if ".tmp" in d]
    with open(os.path.join(path, "model.npz"), "r+b") as f:
        f.truncate(100)
    with pytest.raises(CheckpointError, match="model.npz: cannot read weights"):
        checkpoint.load(path)
    info_path = os.path.join(path, "checkpoint.json")
    meta = json.load(open(info_path))
    meta["config"]["hidden_size"] = 64
    json.dump(meta, open(info_path, "w"))
    checkpoint.save(str(tmp_path / "ck2"), params, cfg, Tokenizer())
    os.replace(os.path.join(tmp_path, "ck2", "model.npz"), os.path.join(path, "model.npz"))
    with pytest.raises(CheckpointError, match="has shape .* config says"):
        checkpoint.load(path)
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        checkpoint.load(str(tmp_path))


def test_pickled_npz_is_refused(tmp_path):
    path = str(tmp_path / "ck")
    os.makedirs(path)
    np.savez(os.path.join(path, "model.npz"), evil=np.array([object()], dtype=object))
    with pytest.raises(CheckpointError, match="cannot read weights"):
        checkpoint._load_npz(os.path.join(path, "model.npz"))


def test_a_places_model_trains_on_marked_questions_and_answers_at_the_example_offset():
    from runtime.tokenizer import Tokenizer
    from trainer.data import sequence
    tok = Tokenizer(places=True)
    seq, start = sequence(tok, "What is 47+38?", "<think>a7b4+a8b3 =b8a5</think><answer>85</answer>", 1)
    assert tok.decode(seq) == "<bos>What is c4b7+c3b8?<think>a7b4+a8b3 =b8a5</think><answer>c8b5</answer><eos>"
    assert tok.decode(seq[start:]).startswith("<think>") and tok.decode_completion(seq[start:]).endswith(
        "<answer>85</answer>")
    plain, _ = sequence(Tokenizer(), "What is 47+38?", "<answer>85</answer>", 1)
    assert Tokenizer().decode(plain) == "<bos>What is 47+38?<answer>85</answer><eos>"


def test_an_items_model_trains_on_lists_with_item_hints_in_question_and_answer():
    """A tokenizer with items: the question's list is read with hints from the example's item offset, and each
    number of the answer carries the hint of the first item of that number not yet used (tag_items)."""
    from runtime.tokenizer import Tokenizer
    from trainer.data import sequence, tag_items
    tok = Tokenizer(places=True, items=True)
    seq, start = sequence(tok, "Sort 47 8 47", "<think>t</think><answer>8 47 47</answer>", 0, 2)
    assert tok.decode(seq) == "<bos>Sort #Cb4a7 #Da8 #Eb4a7<think>t</think><answer>#Da8 #Cb4a7 #Eb4a7</answer><eos>"
    assert tok.decode_completion(seq[start:]) == "<think>t</think><answer>8 47 47</answer>"
    assert tag_items("<answer>x=5 5 50</answer>", [("A", "5"), ("B", "50")]) == "<answer>x=#A5 5 #B50</answer>"
    assert tag_items("<think>5</think>", [("A", "5")]) == "<think>5</think>"            # no answer: as it is
    plain, _ = sequence(Tokenizer(places=True), "Sort 47 8 47", "<answer>8 47 47</answer>", 0, 2)
    assert Tokenizer().decode(plain) == "<bos>Sort b4a7 a8 b4a7<answer>a8 b4a7 b4a7</answer><eos>"


def test_restyle_retypes_a_share_of_questions_and_keeps_their_traces():
    """restyle: a share of the family questions get an opening, form and ending from the paraphrase pools;
    the trace and the answer are those of the question as drawn, and restyle 0 draws exactly as before."""
    import numpy as np
    from trainer.tasks import make_example
    plain = [make_example("add", np.random.default_rng(3)) for _ in range(1)]
    assert make_example("add", np.random.default_rng(3), restyle=0.0) == plain[0]
    rng = np.random.default_rng(4)
    examples = [make_example("add", rng, restyle=0.5) for _ in range(200)]
    restyled = [e for e in examples if not e.question.startswith(("What", "what", "Calculate", "Compute", "Add"))
                and not e.question[0].isdigit()]
    assert 40 <= len(restyled) <= 120
    for e in examples:
        a, b = (int(re.sub("[a-z]", "", x)) for x in e.reasoning.split()[0].split("+"))
        assert int(e.answer) == a + b


def test_every_shipped_recipe_loads_and_its_items_trace_has_item_hints():
    """Every recipe in trainer/recipes loads (plain or pipeline), and a stage that writes sort with item
    letters also reads its questions with them (the init checkpoints, v13 and v15, have no items), and one that
    writes a lettered sort (indexed, nth) has hints."""
    import glob
    from trainer.recipe import load_recipe
    from trainer.tasks import cot
    paths = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "trainer", "recipes", "*.yaml")))
    assert len(paths) > 20
    for path in paths:
        r = load_recipe(path)
        for sft in [s.recipe.sft for s in r.stages if s.kind == "sft"] if r.stages else [r.sft] if r.sft else []:
            assert sft.sort_trace != "items" or sft.items, path
            assert sft.sort_trace not in cot.LETTERED or sft.hints, path
