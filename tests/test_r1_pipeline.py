"""Rejection sampling, distillation with a token-level KL, and multi-stage recipes (the R1 pipeline)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import ROOT, tiny_config
from runtime.errors import ConfigError
from trainer import checkpoint, layers, model as M
from trainer.recipe import load_recipe, recipe_from_dict
from trainer.rejection import RejectionConfig, run_rejection
from trainer.tasks import load_jsonl

TINY = dict(hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_hidden_layers=2,
            num_attention_heads=2, n_routed_experts=4, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=4,
            v_head_dim=8, max_position_embeddings=512)   # v2: fib(40) is 390 tokens


def test_distill_kl_gradient_and_value(rng):
    logits = rng.normal(size=(5, 7))
    t = rng.dirichlet(np.ones(7), size=5)
    mask = np.array([1, 1, 0, 1, 1.0])
    kl, d = layers.distill_kl(logits, t, mask)
    ls = layers.log_softmax(logits)
    assert kl == pytest.approx(sum((t[i] * (np.log(t[i]) - ls[i])).sum() for i in (0, 1, 3, 4)) / 4)
    assert kl > 0 and layers.distill_kl(np.log(t), t, mask)[0] == pytest.approx(0, abs=1e-12)
    for ix in [(0, 2), (3, 6), (2, 1)]:
        lp, lm = logits.copy(), logits.copy()
        lp[ix] += 1e-6
        lm[ix] -= 1e-6
        num = (layers.distill_kl(lp, t, mask)[0] - layers.distill_kl(lm, t, mask)[0]) / 2e-6
        assert abs(num - d[ix]) < 1e-7


def test_distillation_loss_gradient_through_the_model(rng):
    cfg = tiny_config(num_nextn_predict_layers=0)
    params = {k: v.astype(np.float64) for k, v in M.init_params(cfg, 5).items()}
    tokens = rng.integers(1, cfg.vocab_size, (2, 7))
    mask = np.ones((2, 6))
    mask[0, :2] = 0
    t = rng.dirichlet(np.ones(cfg.vocab_size), size=12)
    loss = lambda: M.loss_and_grads(params, cfg, tokens, mask, need_grads=False, teacher_probs=t, kl_weight=0.7)[0]
    _, grads, st = M.loss_and_grads(params, cfg, tokens, mask, teacher_probs=t, kl_weight=0.7)
    assert "kl" in st
    for name in ["embed_tokens", "layers.1.mlp.experts.down_proj", "lm_head"]:
        a = params[name]
        ix = tuple(int(rng.integers(0, s)) for s in a.shape)
        o = a[ix]
        a[ix] = o + 1e-6
        fp = loss()
        a[ix] = o - 1e-6
        fm = loss()
        a[ix] = o
        num = (fp - fm) / 2e-6
        assert abs(num - grads[name][ix]) <= 1e-4 * (abs(num) + abs(grads[name][ix])) + 1e-10


def test_rejection_keeps_only_verified_well_formed_unique_traces(tmp_path, student_ckpt_dir):
    rc = RejectionConfig(init=student_ckpt_dir, questions=40, samples=3, temperature=1.0,
                         families={"add": 1.0, "quadratic": 1.0, "count": 1.0})
    out = run_rejection(rc, str(tmp_path), progress=False)
    rows = load_jsonl(out)                               # the SFT loader accepts it as a dataset
    summary = json.load(open(tmp_path / "summary.json"))
    assert sum(v["questions"] for v in summary.values()) == 40
    assert sum(v["samples"] for v in summary.values()) == 120
    assert sum(v["kept"] for v in summary.values()) == len(rows) > 0
    for v in summary.values():
        assert v["kept"] <= v["correct"] <= v["samples"]
    from runtime.tasks import score
    from trainer.tasks import target_text
    keys = set()
    for ex in rows:
        s = score(ex.question, target_text(ex.reasoning, ex.answer))
        assert s["correct"] and s["well_formed"]
        keys.add((ex.question, ex.reasoning, ex.answer))
    assert len(keys) == len(rows)
    before = open(out).read()
    os.remove(out)                                     # resume: every part is on disk, nothing resampled
    assert open(run_rejection(rc, str(tmp_path), progress=False)).read() == before


PIPELINE = {
    "name": "mini-r1",
    "eval": {"n": 4},
    "stages": [
        {"name": "teacher-sft", "model": dict(TINY, hidden_size=48, num_nextn_predict_layers=1),   # MTP through GRPO
         "sft": {"steps": 6, "batch_size": 8, "checkpoint_every": 3, "families": {"add": 1.0}}},
        {"name": "teacher-grpo", "grpo": {"init": "teacher-sft", "steps": 2, "prompts_per_step": 2, "group_size": 3,
                                          "max_completion": 16, "families": {"add": 1.0}, "checkpoint_every": 1,
                                          "rewards": {"format": 1.0, "test_r1_pipeline:short": 1.0}}},
        {"name": "rejection", "rejection": {"init": "teacher-grpo", "questions": 8, "samples": 2,
                                            "max_completion": 16, "families": {"add": 1.0}}},
        {"name": "student-distill", "model": dict(TINY, num_nextn_predict_layers=1),
         "sft": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "datasets": ["rejection"],
                 "teacher": "teacher-grpo", "kl_weight": 0.5, "families": {"add": 1.0}}},
    ],
}


def short(question, completion):
    """A user reward: shorter is better (gives every group some spread)."""
    return -len(completion) / 50


def test_pipeline_runs_every_stage_then_resume_skips_them(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(PIPELINE))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.path.dirname(__file__))
    cmd = [sys.executable, "-m", "tinyr1.cli", "train", "--recipe", str(path), "--out", str(tmp_path / "run"),
           "--no-progress"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr + r.stdout
    record = json.load(open(tmp_path / "run" / "pipeline.json"))
    assert list(record) == ["teacher-sft", "teacher-grpo", "rejection", "student-distill"]
    for name in ("teacher-sft", "teacher-grpo", "student-distill"):
        assert os.path.exists(os.path.join(record[name]["output"], "model.npz"))
        assert json.load(open(tmp_path / "run" / name / "eval.json"))
    distill = [json.loads(line) for line in open(tmp_path / "run" / "student-distill" / "metrics.jsonl")]
    assert all("kl" in row for row in distill)
    _, cfg, _, info = checkpoint.load(record["student-distill"]["output"])
    assert cfg.hidden_size == 32 and info["step"] == 4
    table = (tmp_path / "run" / "results.md").read_text().splitlines()
    assert [line.split(" |")[0] for line in table[2:]] == ["| teacher-sft", "| teacher-grpo", "| student-distill"]
    assert len({line.count("|") for line in table}) == 1, "header, rule and rows have the same columns"
    r = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("done, skipped") == 4


def test_pipeline_resumes_a_killed_stage(tmp_path):
    raw = {"name": "two", "stages": [
        {"name": "a", "model": TINY, "sft": {"steps": 40, "batch_size": 8, "checkpoint_every": 5}},
        {"name": "b", "sft": {"init": "a", "steps": 3, "batch_size": 4, "families": {"sub": 1.0}}}]}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "tinyr1.cli", "train", "--recipe", str(path), "--out", str(tmp_path / "run"),
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not checkpoint.latest(str(tmp_path / "run" / "a")):
        time.sleep(0.01)
    assert proc.poll() is None, "stage a finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "stage a (sft)" in r.stdout and "stage b (sft)" in r.stdout
    rows = [json.loads(line)["step"] for line in open(tmp_path / "run" / "a" / "metrics.jsonl")]
    assert rows == list(range(1, 41))


@pytest.mark.parametrize("stages, message", [
    ([], "stages must be a non-empty list"),
    ([{"name": "x"}], r"exactly one of sft, grpo, rejection; got none"),
    ([{"name": "x", "sft": {}, "grpo": {}}], r"exactly one of sft, grpo, rejection"),
    ([{"name": "x", "rejection": {"init": "later"}}], "'later' is neither an earlier stage nor a path"),
    ([{"name": "x", "sft": {"steps": 2}}, {"name": "x", "sft": {}}], "duplicate stage name 'x'"),
    ([{"name": "x", "sft": {"stepz": 2}}], r"stages\[0\] \(x\): sft: unknown key 'stepz'"),
    ([{"name": "x", "rejection": {"init": "a/b", "samples": "4"}}], "rejection: samples='4': must be an integer"),
    ([{"name": "x", "grpo": {"init": "a/b", "group_size": 1}}],
     r"stages\[0\] \(x\): grpo: group_size=1: must be an integer >= 2"),
    ([{"name": "x", "rejection": {"init": "a/b", "temperature": -1.0}}],
     r"stages\[0\] \(x\): rejection: temperature=-1.0: must be a finite number >= 0"),
    ([{"name": "x", "rejection": {"init": "a/b", "families": {"add": 0}}}],
     r"rejection: families: every weight is 0"),
    ([{"name": "x", "sft": {"init": "a/b"}, "model": {}}], "sft.init takes the model from a/b"),
    ([{"name": "x", "grpo": {"init": "a/b"}, "modle": {}}], "unknown key 'modle'"),
])
def test_pipeline_recipe_errors(stages, message):
    with pytest.raises(ConfigError, match=message) as e:
        recipe_from_dict({"name": "p", "stages": stages}, "p.yaml")
    assert str(e.value).startswith("p.yaml")


@pytest.mark.parametrize("ev, message", [
    ({"n": 0}, "p.yaml: eval: n=0: must be an integer >= 1"),
    ({"seed": -1}, "p.yaml: eval: seed=-1: must be an integer >= 0"),
    ({"n": 2.5}, "p.yaml: eval: n=2.5: must be an integer >= 1"),
    ({"m": 1}, "p.yaml: eval: unknown key 'm'; allowed keys: n, seed, full"),
    ({"full": "yes"}, "p.yaml: eval: full='yes': must be true or false"),
])
def test_pipeline_eval_errors(ev, message):
    with pytest.raises(ConfigError) as e:
        recipe_from_dict({"name": "p", "eval": ev, "stages": [{"name": "x", "sft": {"init": "a/b"}}]}, "p.yaml")
    assert str(e.value) == message


def test_full_eval_gives_a_table_per_column_with_refusals():
    """eval: {full: true}: canonical, held-out phrasings and extrapolation tables; "all" is the mean of the
    held-out cells (not fib's trained canonical cell), faq has no extrapolation column, refusals beside."""
    from types import SimpleNamespace
    from trainer.pipeline import column_table

    def row(fam, column, acc):
        return {"family": fam, "column": column, "n": 10, "accuracy": acc, "format": 1.0}
    rows = [row("add", "canonical", 1.0), row("add", "phrasings", 0.5), row("add", "extrapolation", 0.2),
            row("fib", "trained", 1.0), row("fib", "phrasings", 0.9), row("fib", "extrapolation", 0.0),
            row("faq", "trained", 1.0), row("faq", "phrasings", 0.7), row("refuse", "out-of-scope", 0.95)]
    stages = [(SimpleNamespace(name="sft", description=""), rows, 1.0, 1.0)]
    cells = {c: column_table(stages, c).splitlines() for c in ("canonical", "phrasings", "extrapolation")}
    head = {c: [h.strip() for h in t[0].split("|")[1:-1]] for c, t in cells.items()}
    values = {c: dict(zip(head[c], [v.strip() for v in t[2].split("|")[1:-1]])) for c, t in cells.items()}
    assert "faq" in head["phrasings"] and "faq" not in head["extrapolation"]
    assert values["canonical"]["add"] == "100.0" and values["canonical"]["fib"] == "100.0"
    assert values["canonical"]["all held-out"] == "100.0"                      # add only: fib is trained
    assert values["phrasings"]["all held-out"] == f"{100 * (0.5 + 0.9 + 0.7) / 3:.1f}"
    assert values["extrapolation"]["all held-out"] == "10.0" and values["extrapolation"]["refused"] == "95.0"
    assert values["extrapolation"]["sub"] == "-"


@pytest.mark.parametrize("name", ["r1.yaml", "r1-kiosk.yaml"])
def test_shipped_r1_and_grpo_recipes_load(name):
    r = load_recipe(os.path.join(ROOT, "trainer", "recipes", name))
    kinds = {s.name: s.kind for s in r.stages}
    assert kinds["teacher-sft"] == "sft" and kinds["teacher-grpo"] == "grpo" and kinds["rejection"] == "rejection"
    distill = next(s for s in r.stages if s.name == "student-distill").recipe.sft
    assert distill.teacher == "teacher-grpo" and distill.datasets == ["rejection"] and distill.kl_weight > 0
    # row 2 is the honest control of row 3: the same start, number of steps and learning-rate schedule
    sft = {s.name: s.recipe.sft for s in r.stages if s.kind == "sft"}
    control, grpo = sft["student-sft-more"], next(s for s in r.stages if s.name == "student-grpo").recipe.grpo
    assert control.init == grpo.init == "student-sft" and control.split == sft["student-sft"].split
    assert (control.steps, control.lr, control.min_lr) == (grpo.steps, grpo.lr, grpo.min_lr)
    g = load_recipe(os.path.join(ROOT, "trainer", "recipes", "student-grpo.yaml"))
    assert g.grpo.init == "trainer/checkpoints/student"


def test_r1_v3_pairs_each_grpo_seed_with_its_control():
    """r1-v3.yaml (issue 18): a places cold start on split sft, then per seed GRPO on the rl questions and an SFT
    control from the same start, with GRPO's learning-rate schedule and the full eval after every stage."""
    r = load_recipe(os.path.join(ROOT, "trainer", "recipes", "r1-v3.yaml"))
    assert r.eval.get("full") is True
    st = {s.name: s for s in r.stages}
    cold = st["student-sft"].recipe.sft
    assert cold.places and cold.split == "sft" and not cold.init
    for seed in (1, 2):
        grpo, control = st[f"grpo-s{seed}"].recipe.grpo, st[f"control-s{seed}"].recipe.sft
        assert grpo.seed == control.seed == seed and grpo.init == control.init == "student-sft"
        assert grpo.split == "rl" and control.split == "sft" and grpo.max_completion >= 400
        assert (control.lr, control.min_lr) == (grpo.lr, grpo.min_lr)
        assert "refuse" in grpo.families and set(control.families) == set(cold.families)
