"""Bad training inputs (issue 15): recipe numbers out of range, runs that diverge, NaN weights at
compile, and JSONL datasets that are not UTF-8, too long for the context or hold control tags."""
import dataclasses
import json
import os
import re
from dataclasses import fields

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from compiler.compile import compile_model, load_source
from compiler.errors import CompileError
from conftest import small_student
from runtime.errors import CheckpointError, ConfigError, DatasetError
from runtime.tokenizer import Tokenizer
from tinyr1.cli import main
from trainer import checkpoint
from trainer import sft as S
from trainer.config import MODEL_RANGES, ModelConfig
from trainer.grpo import GRPO_RANGES, GRPOConfig, run_grpo
from trainer.model import init_params
from trainer.recipe import SFT_RANGES, SFTConfig, load_recipe, recipe_from_dict
from trainer.rejection import REJECTION_RANGES, RejectionConfig, finish
from trainer.rewards import resolve, score_all
from trainer.tasks import load_jsonl

TINY = dict(hidden_size=16, intermediate_size=24, moe_intermediate_size=8, num_hidden_layers=2, num_attention_heads=2,
            n_routed_experts=4, kv_lora_rank=8, qk_nope_head_dim=4, qk_rope_head_dim=4, v_head_dim=4)
TINY_SFT = dict(steps=6, batch_size=4, micro_batches=1, checkpoint_every=2, warmup_steps=0, families={"add": 1.0})


def tiny_recipe(path="r.yaml", model=None, **sft):
    return recipe_from_dict({"model": dict(TINY, **(model or {})), "sft": dict(TINY_SFT, **sft)}, path)


# ---------------------------------------------------------------- recipe ranges
@pytest.mark.parametrize("cls, ranges", [(SFTConfig, SFT_RANGES), (GRPOConfig, GRPO_RANGES),
                                         (RejectionConfig, REJECTION_RANGES), (ModelConfig, MODEL_RANGES)])
def test_every_numeric_field_has_a_range(cls, ranges):
    numeric = {f.name for f in fields(cls) if f.type in (int, float, "int", "float") or "Optional[int]" in str(f.type)}
    assert numeric == set(ranges), cls.__name__


@pytest.mark.parametrize("section, raw, message", [
    ("sft", {"lr": float("nan")}, "sft: lr=nan: must be a number in (0, 1]"),
    ("sft", {"lr": -3e-3}, "sft: lr=-0.003: must be a number in (0, 1]"),
    ("sft", {"lr": 1e30}, "sft: lr=1e+30: must be a number in (0, 1]"),
    ("sft", {"lr": float("inf")}, "sft: lr=inf: must be"),
    ("sft", {"lr": 1e-3, "min_lr": 1e-2}, "sft: min_lr=0.01: must be <= lr=0.001"),
    ("sft", {"weight_decay": -0.1}, "sft: weight_decay=-0.1: must be a number in [0, 1]"),
    ("sft", {"beta1": 1}, "sft: beta1=1.0: must be a number in [0, 1)"),
    ("sft", {"beta2": float("nan")}, "sft: beta2=nan: must be"),
    ("sft", {"warmup_steps": -1}, "sft: warmup_steps=-1: must be an integer >= 0"),
    ("sft", {"steps": 0}, "sft: steps=0: must be an integer >= 1"),
    ("sft", {"batch_size": 0}, "sft: batch_size=0: must be an integer >= 1"),
    ("sft", {"micro_batches": 0}, "sft: micro_batches=0: must be an integer >= 1"),
    ("sft", {"sort_trace": "radx"}, "sft: sort_trace='radx': must be one of buckets, tally, radix, counted, items"),
    ("sft", {"grad_clip": 0}, "sft: grad_clip=0.0: must be a finite number > 0"),
    ("sft", {"kl_weight": float("nan")}, "sft: kl_weight=nan: must be a number in [0, 1]"),
    ("sft", {"mtp_lambda": -1}, "sft: mtp_lambda=-1.0: must be a finite number >= 0"),
    ("sft", {"aux_alpha": float("inf")}, "sft: aux_alpha=inf: must be"),
    ("sft", {"bias_update_speed": 2}, "sft: bias_update_speed=2.0: must be a number in [0, 1]"),
    ("sft", {"seed": -1}, "sft: seed=-1: must be an integer >= 0"),
    ("sft", {"checkpoint_every": 0}, "sft: checkpoint_every=0: must be"),
    ("sft", {"log_every": 0}, "sft: log_every=0: must be"),
    ("sft", {"keep_checkpoints": 0}, "sft: keep_checkpoints=0: must be"),
    ("sft", {"families": {"add": -1}}, "sft: families.add=-1: must be a finite number >= 0"),
    ("sft", {"families": {"add": float("nan")}}, "sft: families.add=nan: must be"),
    ("sft", {"families": {"add": 0, "sub": 0}}, "sft: families: every weight is 0 and there are no datasets"),
    ("sft", {"families": {"algebra": 1}}, "sft: families: unknown family 'algebra'"),
    ("sft", {"datasets": ["d.jsonl"], "dataset_weight": 0}, "sft: dataset_weight=0 would never sample datasets"),
    ("sft", {"dataset_weight": float("nan")}, "sft: dataset_weight=nan: must be"),
    ("sft", {"datasets": [3]}, "sft: datasets[0]=3: must be a JSONL path or a stage name"),
    ("grpo", {"init": "a/b", "lr": float("nan")}, "grpo: lr=nan: must be a number in (0, 1]"),
    ("grpo", {"init": "a/b", "group_size": 1}, "grpo: group_size=1: must be an integer >= 2"),
    ("grpo", {"init": "a/b", "temperature": 0}, "grpo: temperature=0.0: must be a finite number > 0"),
    ("grpo", {"init": "a/b", "temperature": float("nan")}, "grpo: temperature=nan: must be"),
    ("grpo", {"init": "a/b", "beta": -0.1}, "grpo: beta=-0.1: must be a finite number >= 0"),
    ("grpo", {"init": "a/b", "beta": float("inf")}, "grpo: beta=inf: must be"),
    ("grpo", {"init": "a/b", "clip_eps": 1}, "grpo: clip_eps=1.0: must be a number in (0, 1)"),
    ("grpo", {"init": "a/b", "passes": 0}, "grpo: passes=0: must be"),
    ("grpo", {"init": "a/b", "rewards": {"accuracy": float("inf")}}, "grpo: rewards.accuracy=inf: must be a "
                                                                    "finite number"),
    ("grpo", {"init": "a/b", "families": {"add": 0}}, "grpo: families: every weight is 0"),
    ("model", {"rms_norm_eps": 0}, "model: rms_norm_eps=0.0: must be a number in (0, 1)"),
    ("model", {"rope_theta": float("nan")}, "model: rope_theta=nan: must be a finite number > 0"),
    ("model", {"routed_scaling_factor": -1}, "model: routed_scaling_factor=-1.0: must be"),
    ("model", {"initializer_range": float("inf")}, "model: initializer_range=inf: must be"),
    ("model", {"hidden_size": 0}, "model: hidden_size=0: must be an integer >= 1"),
    ("model", {"num_nextn_predict_layers": 2}, "model: num_nextn_predict_layers=2: must be an "
                                               "integer from 0 to 1"),
])
def test_recipe_numbers_out_of_range(tmp_path, section, raw, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({section: raw}))           # YAML writes nan as .nan and reads it back
    with pytest.raises(ConfigError) as e:
        load_recipe(str(path))
    assert str(e.value).startswith(f"{path}: {message}"), str(e.value)


def test_the_bounds_themselves_are_accepted():
    r = tiny_recipe(lr=1.0, min_lr=1.0, weight_decay=1.0, beta1=0.0, beta2=0.0, warmup_steps=0, kl_weight=1.0,
                    families={"add": 0, "sub": 1e-9}, bias_update_speed=0)
    assert r.sft.lr == 1.0
    assert recipe_from_dict({"grpo": {"init": "a/b", "group_size": 2, "beta": 0,
                                      "rewards": {"accuracy": 1, "format": -0.5}}}).grpo.group_size == 2


def test_a_rejection_stage_is_checked_when_the_pipeline_loads():
    stages = [{"name": "rs", "rejection": {"init": "a/b", "samples": 0}}]
    with pytest.raises(ConfigError, match=re.escape("p.yaml: stages[0] (rs): rejection: samples=0: must be "
                                                    "an integer >= 1")):
        recipe_from_dict({"stages": stages}, "p.yaml")


def test_a_reward_that_is_not_a_finite_number_is_an_error():
    rw = resolve({"accuracy": 1.0, "test_training_inputs:nan_reward": 1.0})
    with pytest.raises(ConfigError, match=r"reward 'test_training_inputs:nan_reward' returned nan for the question "
                                          r"'What is 1\+1\?'; a reward must be a finite number"):
        score_all(rw, "What is 1+1?", "<think>x</think><answer>2</answer>")


def nan_reward(question, completion):
    return float("nan")


# ---------------------------------------------------------------- training stops at the first NaN
def nan_at(monkeypatch, bad_step):
    """Make SFT step `bad_step` (1-based) return a NaN loss, the way a diverged forward does."""
    real, calls = S.accumulate, []

    def fake(*args, **kw):
        calls.append(1)
        loss, grads, stats, n = real(*args, **kw)
        if len(calls) == bad_step:
            loss = float("nan")
            grads = {k: np.full_like(v, np.nan) for k, v in grads.items()}
        return loss, grads, stats, n
    monkeypatch.setattr(S, "accumulate", fake)


def metric_steps(run_dir):
    return [json.loads(line)["step"] for line in open(os.path.join(run_dir, "metrics.jsonl"))]


def test_sft_stops_at_a_nan_loss_keeps_the_last_good_checkpoint_and_resumes(tmp_path, monkeypatch):
    ref = str(tmp_path / "ref")
    S.run_sft(tiny_recipe(), ref, progress=False)
    out = str(tmp_path / "run")
    nan_at(monkeypatch, 5)
    with pytest.raises(S.DivergenceError) as e:
        S.run_sft(tiny_recipe(), out, progress=False)
    last = os.path.join(out, "ckpt", "step_000004")
    assert str(e.value) == (f"{out}: training diverged at step 5: loss is nan, grad norm is nan; stopped without "
                            f"writing a checkpoint. Lower lr (now 0.003) or grad_clip in r.yaml: sft; the last good "
                            f"checkpoint is {last}, and `tinyr1 train --resume` continues from it")
    assert checkpoint.latest(out) == last and sorted(os.listdir(os.path.join(out, "ckpt"))) == \
        ["LATEST", "step_000002", "step_000004"]
    assert not checkpoint.nonfinite(checkpoint.load(last)[0])
    assert metric_steps(out) == [1, 2, 3, 4]                 # nothing logged is lost, nothing NaN is logged
    monkeypatch.undo()
    S.run_sft(tiny_recipe(), out, resume=True, progress=False)
    lines = lambda d: [json.loads(x) for x in open(os.path.join(d, "metrics.jsonl"))]
    assert lines(out) == lines(ref)                          # as if it had never failed


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # numpy's overflow warnings on the way to NaN
def test_an_absurd_learning_rate_diverges_before_any_checkpoint(tmp_path):
    r = tiny_recipe()
    r = dataclasses.replace(r, sft=dataclasses.replace(r.sft, lr=1e30))     # the loader would refuse it
    out = str(tmp_path / "run")
    with pytest.raises(S.DivergenceError, match=re.escape(f"{out}: training diverged at step 2: ")) as e:
        S.run_sft(r, out, progress=False)
    assert str(e.value).endswith(f"Lower lr (now 1e+30) or grad_clip in r.yaml: sft; no checkpoint was written "
                                 f"to {out} yet")
    assert checkpoint.latest(out) is None


def test_the_train_command_reports_a_divergence_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"model": TINY, "sft": TINY_SFT}))
    nan_at(monkeypatch, 3)
    out = str(tmp_path / "run")
    r = CliRunner().invoke(main, ["train", "--recipe", str(path), "--out", out, "--no-progress"])
    assert r.exit_code == 1 and r.exception.__class__ is SystemExit
    assert r.output.startswith(f"Error: {out}: training diverged at step 3: loss is nan") and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def tiny_checkpoint(path, cfg=None, nan=None):
    cfg = cfg or small_student()
    params = init_params(cfg, 0)
    checkpoint.save(str(path), params, cfg, Tokenizer(), {"step": 0})
    if nan:
        params[nan].flat[:3] = [np.nan, np.inf, -np.inf]
        np.savez(os.path.join(path, "model.npz"), **params)    # as a run before issue 15 could write it
    return str(path)


def test_sft_context_lengthens_an_init_checkpoints_context_and_needs_an_init(tmp_path):
    """sft.context: the fine-tune's checkpoints carry the new max_position_embeddings, every weight of the
    init's shape (RoPE is computed); without init the recipe names model.max_position_embeddings instead."""
    cfg = small_student()
    init = tiny_checkpoint(tmp_path / "init", cfg)
    longer = cfg.max_position_embeddings + 200          # room for the longest add question and trace
    r = recipe_from_dict({"sft": dict(TINY_SFT, init=init, context=longer)}, "r.yaml")
    S.run_sft(r, str(tmp_path / "s"), progress=False)
    params, got, *_ = checkpoint.load(checkpoint.latest(str(tmp_path / "s")))
    assert got.max_position_embeddings == longer
    assert {k: v.shape for k, v in params.items()} == {k: v.shape for k, v in checkpoint.load(init)[0].items()}
    with pytest.raises(ConfigError, match=re.escape("r.yaml: sft: context 300 sets an init checkpoint's context; "
                                                    "without init, set model.max_position_embeddings")):
        tiny_recipe(context=300)


def test_sft_items_turns_on_an_init_checkpoints_item_hints_and_the_items_trace_needs_them(tmp_path):
    """sft.items: the fine-tune reads lists with item hints and its checkpoints' tokenizer says so (the same
    vocabulary, every weight of the init's shape); sort_trace items without a tokenizer with items is refused."""
    cfg = small_student()
    init = tiny_checkpoint(tmp_path / "init", cfg)
    sft = dict(TINY_SFT, init=init, families={"sort": 1.0}, sort_trace="items", context=256)
    with pytest.raises(ConfigError, match=re.escape("r.yaml: sft: sort_trace=items writes the item letters of a "
                                                    "tokenizer with items; add items: true")):
        S.run_sft(recipe_from_dict({"sft": sft}, "r.yaml"), str(tmp_path / "no"), progress=False)
    S.run_sft(recipe_from_dict({"sft": dict(sft, items=True)}, "r.yaml"), str(tmp_path / "s"), progress=False)
    params, _, tok, _ = checkpoint.load(checkpoint.latest(str(tmp_path / "s")))
    assert tok.items and tok.vocab == Tokenizer().vocab
    assert {k: v.shape for k, v in params.items()} == {k: v.shape for k, v in checkpoint.load(init)[0].items()}


def test_sft_hints_turns_on_an_init_checkpoints_hints_and_the_indexed_trace_needs_them(tmp_path):
    """sft.hints: the fine-tune's checkpoints say their answers carry hints (the same vocabulary and weights'
    shapes, prompts read as before); sort_trace indexed without a tokenizer with hints is refused."""
    cfg = small_student()
    init = tiny_checkpoint(tmp_path / "init", cfg)
    sft = dict(TINY_SFT, init=init, families={"sort": 1.0}, sort_trace="indexed", context=256)
    with pytest.raises(ConfigError, match=re.escape("r.yaml: sft: sort_trace=indexed writes the answer's numbers "
                                                    "after hints that only a tokenizer with hints drops; add "
                                                    "hints: true")):
        S.run_sft(recipe_from_dict({"sft": sft}, "r.yaml"), str(tmp_path / "no"), progress=False)
    S.run_sft(recipe_from_dict({"sft": dict(sft, hints=True)}, "r.yaml"), str(tmp_path / "s"), progress=False)
    params, _, tok, _ = checkpoint.load(checkpoint.latest(str(tmp_path / "s")))
    assert tok.hints and not tok.items and tok.vocab == Tokenizer().vocab
    assert {k: v.shape for k, v in params.items()} == {k: v.shape for k, v in checkpoint.load(init)[0].items()}


def spread_reward(question, completion):
    """Rewards that differ within every group, so each step updates the weights."""
    return float(len(completion) % 5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_grpo_stops_at_a_nan_gradient(tmp_path):
    init = tiny_checkpoint(tmp_path / "init")
    gc = GRPOConfig(init=init, steps=4, prompts_per_step=2, group_size=4, max_completion=8, checkpoint_every=1,
                    lr=1e30, min_lr=0.0, warmup_steps=0, families={"add": 1.0},
                    rewards={"test_training_inputs:spread_reward": 1.0})
    out = str(tmp_path / "g")
    with pytest.raises(S.DivergenceError) as e:
        run_grpo(gc, out, progress=False, source="g.yaml: grpo")
    # the first updates leave the weights huge but finite; the step that overflows depends on the drawn problems
    k = int(re.search(r"diverged at step (\d+):", str(e.value)).group(1))
    last = os.path.join(out, "ckpt", f"step_{k - 1:06d}")
    assert k >= 2 and str(e.value) == (
        f"{out}: training diverged at step {k}: grad norm is nan, kl is nan; stopped without writing a checkpoint. "
        f"Lower lr (now 1e+30) or grad_clip in g.yaml: grpo; the last good checkpoint is {last}, and "
        f"`tinyr1 train --resume` continues from it")
    assert checkpoint.latest(out) == last and not checkpoint.nonfinite(checkpoint.load(last)[0])
    assert metric_steps(out) == list(range(1, k))


def test_training_from_nan_weights_is_refused(tmp_path):
    init = tiny_checkpoint(tmp_path / "init", nan="lm_head")
    with pytest.raises(CheckpointError, match=re.escape(f"g.yaml: grpo: init: {init}: weight lm_head has 3 NaN or "
                                                        f"inf values of ")):
        run_grpo(GRPOConfig(init=init), str(tmp_path / "g"), progress=False, source="g.yaml: grpo")
    r = recipe_from_dict({"sft": dict(TINY_SFT, init=init)}, "r.yaml")
    with pytest.raises(CheckpointError, match=re.escape(f"r.yaml: sft.init: {init}: weight lm_head has 3 NaN")):
        S.run_sft(r, str(tmp_path / "s"), progress=False)


def test_a_checkpoint_of_nans_is_never_written(tmp_path):
    cfg = small_student()
    params = init_params(cfg, 0)
    params["norm"][0] = np.nan
    path = str(tmp_path / "ck")
    with pytest.raises(CheckpointError, match=re.escape(f"refusing to write the checkpoint {path}: weight norm has 1 "
                                                        f"NaN or inf values of {cfg.hidden_size}")):
        checkpoint.save(path, params, cfg, Tokenizer())
    assert not os.path.exists(path)


# ---------------------------------------------------------------- compile refuses NaN weights
def test_compile_refuses_nan_weights_naming_tensor_count_and_source(tmp_path):
    src = tiny_checkpoint(tmp_path / "ck", nan="layers.1.mlp.experts.down_proj")
    with pytest.raises(CompileError) as e:
        load_source(src)
    n = init_params(small_student(), 0)["layers.1.mlp.experts.down_proj"].size
    assert str(e.value) == (f"{src}: weight layers.1.mlp.experts.down_proj has 3 NaN or inf values of {n}; "
                            f"compile a checkpoint from before the run diverged")
    out = tmp_path / "m.msgpack"
    r = CliRunner().invoke(main, ["compile", src, "-o", str(out)])
    assert r.exit_code == 1 and r.output.startswith(f"Error: {src}: weight layers.1.mlp.experts.down_proj has 3 NaN")
    assert "AssertionError" not in r.output and not out.exists()
    cfg = small_student()
    params = init_params(cfg, 0)
    params["embed_tokens"][:] = np.nan                   # every weight bad: the first one is named, with the rest
    params["lm_head"][:] = np.nan
    with pytest.raises(CompileError, match=re.escape(f"the weights given to compile_model: weight embed_tokens has "
                                                     f"{params['embed_tokens'].size} NaN or inf values of "
                                                     f"{params['embed_tokens'].size} (and 1 more weights)")):
        compile_model(params, cfg, Tokenizer())


# ---------------------------------------------------------------- JSONL datasets
def write_lines(path, *lines):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


GOOD = json.dumps({"question": "Q?", "reasoning": "r", "answer": "A"}).encode()


def test_jsonl_that_is_not_utf8_names_file_line_and_byte(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", GOOD, b'{"question": "caf\xe9?", "reasoning": "r", "answer": "A"}')
    with pytest.raises(DatasetError) as e:
        load_jsonl(path)
    assert str(e.value) == (f"{path}:2: not UTF-8: byte 18 of the line is e9 (invalid continuation byte); "
                            f"save the file as UTF-8")
    path = write_lines(tmp_path / "e.jsonl", GOOD, GOOD, b'{"question": "\xff\xfe"}')
    with pytest.raises(DatasetError, match=re.escape(f"{path}:3: not UTF-8: byte 15 of the line is ff (invalid "
                                                     f"start byte)")):
        load_jsonl(path)


@pytest.mark.parametrize("key, text, special", [
    ("reasoning", "3+4=7</think><answer>7", "</think>"),
    ("reasoning", "<think>3+4=7", "<think>"),
    ("answer", "7</answer>", "</answer>"),
    ("answer", "<answer>7", "<answer>"),
    ("reasoning", "a<eos>b", "<eos>"),
    ("answer", "7<pad>", "<pad>"),
    ("question", "<bos>Q?", "<bos>"),
])
def test_jsonl_fields_holding_control_tags_are_refused(tmp_path, key, text, special):
    row = {"question": "Q?", "reasoning": "r", "answer": "A", key: text}
    path = write_lines(tmp_path / "d.jsonl", GOOD, json.dumps(row).encode())
    with pytest.raises(DatasetError) as e:
        load_jsonl(path)
    assert str(e.value).startswith(f"{path}:2: key {key!r} contains the special token {special}; a field is plain "
                                   f"text (the trainer writes <think>...</think><answer>...</answer> around the "
                                   f"fields itself); specials: <pad> <bos> <eos> <think>"), str(e.value)


def test_jsonl_characters_the_tokenizer_lacks_name_file_and_line(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", GOOD, GOOD, json.dumps({"question": "Q?", "reasoning": "tab\there",
                                                                     "answer": "A"}).encode())
    with pytest.raises(DatasetError, match=re.escape(f"{path}:3: key 'reasoning': character '\\t' (U+0009) at "
                                                     f"position 3 is not in the vocabulary")):
        load_jsonl(path)


def test_an_example_longer_than_the_context_is_refused_before_training(tmp_path):
    long = json.dumps({"question": "Q?", "reasoning": "x" * 40, "answer": "A"}).encode()
    path = write_lines(tmp_path / "d.jsonl", GOOD, b"", long)
    r = tiny_recipe(model={"max_position_embeddings": 32}, datasets=[path])
    out = tmp_path / "run"
    with pytest.raises(DatasetError) as e:
        S.run_sft(r, str(out), progress=False)
    # <bos> + "Q?" + <think> + 40 + </think> + <answer> + "A" + </answer> = 48 tokens read by the model
    assert str(e.value) == (f"{path}:3: the example is 48 tokens (<bos>, question, <think>reasoning</think><answer>"
                            f"answer</answer>), more than the model's context of 32 tokens (r.yaml: "
                            f"model.max_position_embeddings); shorten it or train a model with a longer context")
    assert not (out / "metrics.jsonl").exists() and checkpoint.latest(str(out)) is None
    fits = json.dumps({"question": "Q?", "reasoning": "x" * 24, "answer": "A"}).encode()   # exactly 32 tokens
    S.run_sft(tiny_recipe(model={"max_position_embeddings": 32}, datasets=[write_lines(tmp_path / "f.jsonl", fits)],
                          families={"add": 0}, steps=1), str(tmp_path / "ok"), progress=False)


def test_the_context_of_an_init_checkpoint_is_the_one_checked(tmp_path):
    init = tiny_checkpoint(tmp_path / "init", small_student(max_position_embeddings=24))
    long = json.dumps({"question": "Q?", "reasoning": "x" * 20, "answer": "A"}).encode()
    path = write_lines(tmp_path / "d.jsonl", long)
    r = recipe_from_dict({"sft": dict(TINY_SFT, init=init, datasets=[path])}, "r.yaml")
    with pytest.raises(DatasetError, match=re.escape(f"{path}:1: the example is 28 tokens (<bos>, question, "
                                                     f"<think>reasoning</think><answer>answer</answer>), more than "
                                                     f"the model's context of 24 tokens (max_position_embeddings of "
                                                     f"{init})")):
        S.run_sft(r, str(tmp_path / "run"), progress=False)


def test_a_generated_example_longer_than_the_context_is_a_clear_error(tmp_path):
    r = tiny_recipe(model={"max_position_embeddings": 16})
    with pytest.raises(ConfigError, match=r"^r\.yaml: sft: families: the generated example '.*' is \d+ "
                                          r"tokens, more than the model's context of 16; raise "
                                          r"max_position_embeddings or leave its family out$"):
        S.run_sft(r, str(tmp_path / "run"), progress=False)


def test_rejection_sampling_drops_traces_the_loader_would_refuse(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    row = {"question": "What is 3+4?", "completions": ["<think>3+4=7</think><answer>7</answer>",
                                                       "<think>3+4=7<pad></think><answer>7</answer>"]}
    (parts / "part_00000.jsonl").write_text(json.dumps(row) + "\n")
    rows = load_jsonl(finish(str(tmp_path), 1))
    assert [(e.reasoning, e.answer) for e in rows] == [("3+4=7", "7")]


def test_nothing_to_train_on_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    r = tiny_recipe(families={"add": 0}, datasets=[str(empty)])
    with pytest.raises(ConfigError, match=re.escape(f"r.yaml: sft: nothing to train on: every family weight is 0 "
                                                    f"and the datasets {empty} hold no examples")):
        S.run_sft(r, str(tmp_path / "run"), progress=False)
