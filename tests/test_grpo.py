"""GRPO: the loss and its gradient, the KL sign, advantages, rewards against adversarial strings,
and a short end-to-end run on a tiny model."""
import json

import numpy as np
import pytest

from conftest import tiny_config
from runtime.errors import ConfigError
from trainer import model as M
from trainer.grpo import GRPOConfig, group_advantages, grpo_loss, pack, run_grpo
from trainer.rewards import accuracy_reward, format_reward, resolve, score_all


def fake_batch(rng, B=3, T=6):
    logp = -rng.uniform(0.1, 3.0, (B, T))
    old = logp + rng.normal(0, 0.3, (B, T))           # ratios on both sides of the clip range
    ref = logp + rng.normal(0, 0.5, (B, T))
    adv = np.array([1.3, -0.7, 0.4])[:B]
    mask = (rng.random((B, T)) < 0.8).astype(float)
    return logp, old, ref, adv, mask


def test_grpo_loss_gradient_matches_finite_differences(rng):
    logp, old, ref, adv, mask = fake_batch(rng)
    _, w, st = grpo_loss(logp, old, ref, adv, mask, 0.2, 0.05, mask.sum())
    assert 0 < st["clip_frac"] < 1, "the test must exercise both branches"
    eps = 1e-6
    for ix in np.ndindex(logp.shape):
        ratio = np.exp(logp[ix] - old[ix])
        if abs(ratio - 0.8) < 1e-4 or abs(ratio - 1.2) < 1e-4:
            continue                                     # a kink of the clip
        lp, lm = logp.copy(), logp.copy()
        lp[ix] += eps
        lm[ix] -= eps
        num = (grpo_loss(lp, old, ref, adv, mask, 0.2, 0.05, mask.sum())[0]
               - grpo_loss(lm, old, ref, adv, mask, 0.2, 0.05, mask.sum())[0]) / (2 * eps)
        assert abs(num - w[ix]) < 1e-7 * max(1, abs(num)), (ix, num, w[ix])


def test_grpo_gradient_through_the_whole_model(rng):
    """dL/dparams from token_logprobs' backward equals finite differences of the scalar loss."""
    cfg = tiny_config(num_nextn_predict_layers=0, vocab_size=11)
    params = {k: v.astype(np.float64) for k, v in M.init_params(cfg, 3).items()}
    tokens = rng.integers(1, 11, (3, 9))
    mask = np.ones((3, 8))
    mask[:, :3] = 0
    mask[1, 6:] = 0
    old = M.token_logprobs(params, cfg, tokens) + rng.normal(0, 0.1, (3, 8))
    ref = old + rng.normal(0, 0.3, (3, 8))
    adv = np.array([1.0, -0.5, 0.25])
    n = mask.sum()

    def loss():
        return grpo_loss(M.token_logprobs(params, cfg, tokens), old, ref, adv, mask, 0.2, 0.1, n)[0]
    _, grads, _ = M.token_logprobs(params, cfg, tokens,
                                   lambda lp: grpo_loss(lp, old, ref, adv, mask, 0.2, 0.1, n)[1])
    worst = 0.0
    for name in ["embed_tokens", "layers.0.self_attn.kv_b_proj", "layers.1.mlp.experts.gate_up_proj",
                 "layers.2.self_attn.q_b_proj", "lm_head", "norm"]:
        a = params[name]
        for _ in range(3):
            ix = tuple(int(rng.integers(0, s)) for s in a.shape)
            o = a[ix]
            a[ix] = o + 1e-6
            fp = loss()
            a[ix] = o - 1e-6
            fm = loss()
            a[ix] = o
            num, ana = (fp - fm) / 2e-6, grads[name][ix]
            if abs(num - ana) > 1e-9:
                worst = max(worst, abs(num - ana) / (abs(num) + abs(ana)))
    assert worst < 1e-4


def test_kl_term_pulls_the_policy_back_to_the_reference(rng):
    """With zero advantage only the KL acts; a gradient step must reduce the KL, whichever side."""
    ref = -rng.uniform(0.5, 2, (2, 5))
    mask = np.ones((2, 5))
    for shift in (+0.4, -0.4):
        logp = ref + shift
        kl0, w, st = grpo_loss(logp, logp, ref, np.zeros(2), mask, 0.2, 1.0, mask.sum())
        assert kl0 > 0 and st["kl"] > 0
        kl1 = grpo_loss(logp - 0.1 * w, logp, ref, np.zeros(2), mask, 0.2, 1.0, mask.sum())[0]
        assert kl1 < kl0
    assert grpo_loss(ref, ref, ref, np.zeros(2), mask, 0.2, 1.0, 10)[0] == 0.0


def test_positive_advantage_raises_the_sampled_tokens_probability():
    lp = np.full((1, 4), -1.0)
    _, w, _ = grpo_loss(lp, lp, lp, np.array([1.0]), np.ones((1, 4)), 0.2, 0.0, 4)
    assert (w < 0).all()                                 # descent on L raises logp
    _, w, _ = grpo_loss(lp, lp, lp, np.array([-1.0]), np.ones((1, 4)), 0.2, 0.0, 4)
    assert (w > 0).all()


def test_clipped_tokens_get_no_policy_gradient():
    old = np.zeros((1, 2))
    lp = np.array([[np.log(1.5), np.log(0.5)]])         # ratios 1.5 and 0.5, far outside 0.8..1.2
    _, w, st = grpo_loss(lp, old, lp, np.array([1.0]), np.ones((1, 2)), 0.2, 0.0, 2)
    assert w[0, 0] == 0.0 and w[0, 1] != 0.0             # A > 0: gaining beyond 1.2 is not rewarded
    assert st["clip_frac"] == 0.5


def test_group_advantages_on_hand_made_groups():
    adv, keep = group_advantages([[1, 0, 0, 1], [1, 1, 1, 1], [0.2, 0.2, 0.2, 1.2]])
    assert keep.tolist() == [True, False, True]
    assert np.allclose(adv[0], [1, -1, -1, 1], atol=1e-3)
    assert (adv[1] == 0).all()
    assert np.isclose(adv[2].sum(), 0) and adv[2, 3] > 0 and (adv[2, :3] < 0).all()
    assert np.isclose(adv[2, 3], 0.75 / (0.1875 ** 0.5 + 1e-4))        # mean 0.45, std sqrt(0.1875)


@pytest.mark.parametrize("completion, acc, fmt", [
    ("<think>7+8=15 4+3+1=8</think><answer>85</answer>", 1, 1),
    ("<think>7+8=15</think><answer>84</answer>", 0, 1),
    ("<think>x</think><answer>85</answer> and more", 1, 0),         # trailing text after </answer>
    ("<think>x</think><answer>85</answer><answer>85</answer>", 0, 0),  # repeated answer
    ("<think>x</think><answer>84</answer><answer>85</answer>", 0, 0),  # two guesses
    ("<think><think>x</think></think><answer>85</answer>", 1, 0),   # nested tags
    ("<think>x</think><answer><answer>85</answer></answer>", 0, 0),
    ("<think>x</think><answer></answer>", 0, 0),                     # empty answer
    ("<answer>85</answer>", 1, 0),                                    # missing <think>
    ("85", 0, 0),
    ("", 0, 0),
    ("<think>x</think>\n<answer>85</answer>", 1, 0),                 # anything between the blocks
])
def test_rewards_against_adversarial_strings(completion, acc, fmt):
    q = "What is 47+38?"
    assert accuracy_reward(q, completion) == acc
    assert format_reward(q, completion) == fmt


def test_accuracy_reward_pays_the_refusal_only_where_no_family_answers():
    from runtime.tasks import REFUSAL
    refusal = f"<think>not a question I know</think><answer>{REFUSAL}</answer>"
    assert accuracy_reward("Hello", refusal) == 1 and accuracy_reward("What is 47+38?", refusal) == 0
    assert accuracy_reward("Hello", "<think>x</think><answer>85</answer>") == 0
    assert accuracy_reward("Hello", refusal + refusal[len("<think>not a question I know</think>"):]) == 0


def test_reward_weights_and_user_functions():
    rw = resolve({"accuracy": 1.0, "format": 0.5, "test_grpo:length_penalty": 1.0})
    total, parts = score_all(rw, "What is 47+38?", "<think>x</think><answer>85</answer>")
    assert parts == {"accuracy": 1.0, "format": 1.0, "test_grpo:length_penalty": -0.35}
    assert total == pytest.approx(1.0 + 0.5 - 0.35)
    with pytest.raises(ConfigError, match="unknown reward 'acuracy'"):
        resolve({"acuracy": 1.0})
    with pytest.raises(ConfigError, match="cannot import reward 'nope.mod:f'"):
        resolve({"nope.mod:f": 1.0})


def length_penalty(question, completion):
    return -len(completion) / 100


def test_pack_masks_the_completion_through_the_stop_token():
    from runtime.tokenizer import Tokenizer
    tok = Tokenizer()
    tokens, mask = pack(tok, [([1, 5, 6], [7, 8, tok.end_answer_id]), ([1, 5], [9])])
    assert tokens.shape == (2, 6) and mask.shape == (2, 5)
    assert mask[0].tolist() == [0, 0, 1, 1, 1] and mask[1].tolist() == [0, 1, 0, 0, 0]
    assert tokens[1, 3:].tolist() == [tok.pad_id] * 3


def test_short_grpo_run_logs_every_metric_and_resumes(tmp_path, student_ckpt_dir):
    gc = GRPOConfig(init=student_ckpt_dir, steps=2, prompts_per_step=2, group_size=4, max_completion=24,
                    families={"add": 1.0}, checkpoint_every=1, passes=2,
                    rewards={"accuracy": 1.0, "format": 0.2, "test_grpo:length_penalty": 1.0})
    run_grpo(gc, str(tmp_path / "g"), progress=False, max_steps=1)
    run_grpo(gc, str(tmp_path / "g"), progress=False, resume=True)
    rows = [json.loads(line) for line in open(tmp_path / "g" / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("reward", "accuracy", "format", "kl", "length", "clip_frac", "groups_kept"):
        assert key in rows[-1]
    assert (tmp_path / "g" / "grpo.png").stat().st_size > 0
    again = tmp_path / "h"
    run_grpo(gc, str(again), progress=False)
    rows2 = [json.loads(line) for line in open(again / "metrics.jsonl")]
    for a, b in zip(rows, rows2):
        assert {k: v for k, v in a.items() if not k.endswith("_s") and k != "seconds"} == \
               {k: v for k, v in b.items() if not k.endswith("_s") and k != "seconds"}


def test_grpo_needs_a_starting_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="init: name the checkpoint"):
        run_grpo(GRPOConfig(), str(tmp_path))
