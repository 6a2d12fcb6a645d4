"""export/gguf_export.py: llama.cpp running the exported `deepseek2` GGUF computes what
runtime.model.Model computes. F32: to 1e-4 for every attention/MoE variant and the bundled student, batch and
token by token. Q8_0: our int8 blocks are carried byte for byte, and the remaining difference is llama.cpp's
quantization of the activations, which export/gguf_emulate.py reproduces in numpy. llama.cpp runs in
a child process (export/isolated.py); the tests that only write and read files need no llama.cpp."""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from conftest import STUDENT, compiled_case, need_peer  # noqa: E402
from export.common import load_compiled  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.gguf_emulate import forward  # noqa: E402
from export.gguf_export import export, model_layout, q8_0_sources  # noqa: E402
from export.isolated import Peer  # noqa: E402
from runtime.errors import ContextOverflowError  # noqa: E402
from runtime.model import load  # noqa: E402

TOL = 1e-4              # F32 logits, llama.cpp vs our runtime on the same (dequantized) weights
T, PROMPT = 12, 5       # tokens per random sequence; the decode check prefills PROMPT then steps

# random_params gives every config a non-zero correction bias, so selection differs from scores;
# conftest.BIG makes their logits a few units, so 1e-4 is a tight bound
Q8_SHAPES = dict(hidden_size=64, num_attention_heads=2, q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16,
                 qk_rope_head_dim=16, v_head_dim=16, intermediate_size=64, moe_intermediate_size=32)
CONFIGS = {
    "q_lora, 1 of 2 groups, scaled": dict(q_lora_rank=6, n_group=2, topk_group=1, routed_scaling_factor=2.5),
    "plain q, all MoE, no norm_topk": dict(first_k_dense_replace=0, norm_topk_prob=False, routed_scaling_factor=1.5),
    "tied head, no shared expert, MTP": dict(tie_word_embeddings=True, n_shared_experts=0, num_nextn_predict_layers=1),
    "two shared experts, 2 dense layers": dict(n_shared_experts=2, first_k_dense_replace=2, rope_theta=500.0),
    "rows of 32: q_lora, tied, no shared": dict(Q8_SHAPES, tie_word_embeddings=True, n_shared_experts=0,
                                                n_group=2, topk_group=1, routed_scaling_factor=2.0),
}
Q8_CONFIG = "rows of 32: q_lora, tied, no shared"
PROMPTS = ["What is 47+38?", "What is 12*7?", "Solve 3x+5=20.", "Count the letters in banana."]


@pytest.fixture(scope="module")
def exported(request, tmp_path_factory):
    """(case, weights) -> (model path, gguf path, report). Configs compile with quant=weights; the student
    (compiled int8) is exported both ways."""
    done = {}

    def get(case, weights):
        if (case, weights) not in done:
            d = tmp_path_factory.mktemp("gguf")
            path = compiled_case(request, d, case, CONFIGS, weights)
            out = str(d / f"model.{weights}.gguf")
            done[case, weights] = path, out, export(path, out, weights=weights)
        return done[case, weights]
    return get


@pytest.fixture
def llama():
    """Peer("llama.cpp", path, ...): llama-cpp-python in a child process."""
    need_peer("llama_cpp", "llama-cpp-python")
    return lambda *args, **kwargs: Peer("llama.cpp", *args, **kwargs)


def token_ids(model, seed=0):
    return np.random.default_rng(seed).integers(0, model.tokenizer.vocab_size, T)


def greedy_sequence(model, prompt, new_tokens):
    """The prompt and the runtime's greedy continuation (T,): real text for the trained student."""
    ids = model.encode_prompt(prompt)
    model.reset()
    logits = model.forward(ids)[-1]
    for _ in range(new_tokens):
        ids.append(int(np.argmax(logits)))
        logits = model.step(ids[-1])
    return np.array(ids)


@pytest.mark.parametrize("case", list(CONFIGS) + [STUDENT])
def test_f32_logits_match_the_runtime_batch_and_token_by_token(exported, llama, case):
    path, gguf_path, _ = exported(case, "float32")
    model = load(path)
    ids = token_ids(model)
    ref = model.logits(ids)
    with llama(gguf_path, all_logits=True) as batch:
        out = batch.logits(ids)
    with llama(gguf_path) as runner:
        steps = np.stack([runner.step(t) for t in ids])
        decode = np.stack([runner.prefill(ids[:PROMPT])] + [runner.step(t) for t in ids[PROMPT:]])
    print(f"\n{case}: F32 batch {np.abs(out - ref).max():.2e}, token by token {np.abs(steps - ref).max():.2e}")
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= TOL
    assert np.abs(steps - ref).max() <= TOL
    assert np.abs(decode - ref[PROMPT - 1:]).max() <= TOL


@pytest.mark.parametrize("case", ["q_lora, 1 of 2 groups, scaled", "tied head, no shared expert, MTP", STUDENT])
def test_metadata_describes_the_model(exported, case):
    path, gguf_path, report = exported(case, "float32")
    compiled = load_compiled(path)
    cfg, tok = compiled.config, compiled.tokenizer
    f = gguf.GGUFReader(gguf_path).fields

    def kv(key):
        return f[key].contents()
    assert kv("general.architecture") == "deepseek2"
    assert kv("deepseek2.context_length") == compiled.max_positions == cfg["max_position_embeddings"]
    assert kv("deepseek2.block_count") == cfg["num_hidden_layers"]
    assert kv("deepseek2.leading_dense_block_count") == cfg["first_k_dense_replace"]
    assert kv("deepseek2.expert_gating_func") == 2                                  # sigmoid
    assert kv("deepseek2.expert_weights_norm") == cfg["norm_topk_prob"]
    assert kv("deepseek2.expert_weights_scale") == pytest.approx(cfg["routed_scaling_factor"])
    assert kv("deepseek2.expert_shared_count") == max(cfg["n_shared_experts"], 1)   # 0: a zero expert
    C, r = cfg["kv_lora_rank"], cfg["qk_rope_head_dim"]
    assert (kv("deepseek2.attention.key_length"), kv("deepseek2.attention.value_length")) == (C + r, C)
    assert kv("deepseek2.attention.key_length_mla") == cfg["qk_nope_head_dim"] + r
    assert kv("deepseek2.attention.value_length_mla") == cfg["v_head_dim"]
    assert kv("deepseek2.attention.q_lora_rank") == (cfg["q_lora_rank"] or 0)
    assert kv("deepseek2.rope.dimension_count") == r
    assert ("deepseek2.expert_group_count" in f) == (cfg["topk_group"] < cfg["n_group"])
    assert kv("tokenizer.ggml.model") == "none" and kv("tokenizer.ggml.tokens") == tok.vocab
    assert (kv("tokenizer.ggml.bos_token_id"), kv("tokenizer.ggml.eos_token_id")) == (tok.bos_id, tok.eos_id)
    # how to prompt it: the bundled student reads numbers with place letters, the random cases do not
    assert kv("tinyr1.places") is (case == STUDENT) and tok.places is (case == STUDENT)
    assert ("mark_places" in kv("tinyr1.prompt")) is tok.places
    assert kv("tinyr1.items") is tok.items and ("mark_items" in kv("tinyr1.prompt")) is tok.items
    assert kv("tinyr1.hints") is tok.hints
    assert report["tied_output"] == cfg["tie_word_embeddings"]
    assert report["tensors"] == len(gguf.GGUFReader(gguf_path).tensors)


# F32 in every int8 export: norms, router and bias (float32 in the model), k_b and v_b (transposed)
ALWAYS_F32 = ("norm.weight", "ffn_gate_inp.weight", "exp_probs_b.bias", "attn_k_b.weight", "attn_v_b.weight")


@pytest.mark.parametrize("case", [STUDENT, Q8_CONFIG])
def test_int8_export_carries_our_int8_values_and_scales(exported, case):
    path, gguf_path, report = exported(case, "int8")
    compiled = load_compiled(path)
    reader = gguf.GGUFReader(gguf_path)
    Q8_0, F32 = gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.F32
    kinds = {t.name: t.tensor_type for t in reader.tensors}
    assert {n for n, k in kinds.items() if k == F32} == {n for n in kinds if n.endswith(ALWAYS_F32)}
    assert set(kinds.values()) == {Q8_0, F32} and sum(k == Q8_0 for k in kinds.values()) == report["q8_0"]
    # llama.cpp's own dequantization (gguf.quants mirrors ggml) of every Q8_0 tensor is our runtime's weight
    embed = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert np.array_equal(gguf.quants.dequantize(embed.data, Q8_0), compiled.weights["embed_tokens"])
    attn_q = [t for t in reader.tensors if t.name.endswith(("attn_q.weight", "attn_q_b.weight"))][0]
    w_q = compiled.weights[compiled.layers()[0][0]["attrs"].get("w_q") or compiled.layers()[0][0]["attrs"]["w_q_b"]]
    deq = gguf.quants.dequantize(attn_q.data, Q8_0)                                # rope rows reordered
    assert not np.array_equal(deq, w_q) and np.array_equal(np.sort(deq, 0), np.sort(w_q, 0))
    experts = compiled.weights[compiled.layers()[-1][1]["attrs"]["w_experts_gate_up"]]   # (E, 2F, d)
    F, last = experts.shape[1] // 2, len(compiled.layers()) - 1
    gate, up = (next(t for t in reader.tensors if t.name == f"blk.{last}.ffn_{k}_exps.weight") for k in ("gate", "up"))
    assert np.array_equal(gguf.quants.dequantize(gate.data, Q8_0), experts[:, :F])
    assert np.array_equal(gguf.quants.dequantize(up.data, Q8_0), experts[:, F:])


def q8_statistics(llama, compiled, model, gguf_path, sequences):
    """Over all positions of the sequences: |llama Q8_0 - runtime| and |llama Q8_0 - emulation| (T, V) each."""
    q8 = q8_0_sources(compiled)
    d_ref, d_emu = [], []
    with llama(gguf_path, all_logits=True) as runner:
        for ids in sequences:
            out = runner.logits(ids)
            d_ref.append(np.abs(out - model.logits(ids)))
            d_emu.append(np.abs(out - forward(compiled, ids, q8)))
    return np.concatenate(d_ref), np.concatenate(d_emu)


def test_q8_0_student_logits_are_explained_by_activation_quantization(exported, llama):
    path, gguf_path, _ = exported(STUDENT, "int8")
    compiled, model = load_compiled(path), load(path)
    sequences = [greedy_sequence(model, p, 40) for p in PROMPTS]
    # the emulation without activation quantization is our runtime: it adds nothing else
    assert np.abs(forward(compiled, sequences[0]) - model.logits(sequences[0])).max() <= TOL
    d_ref, d_emu = q8_statistics(llama, compiled, model, gguf_path, sequences)
    pos_ref, pos_emu = d_ref.max(1), d_emu.max(1)          # per position
    print(f"\nQ8_0 student, {len(pos_ref)} positions: max |llama - runtime| {d_ref.max():.3g}, "
          f"|llama - emulation| {d_emu.max():.3g}; mean {d_ref.mean():.3g} vs {d_emu.mean():.3g}; "
          f"median per position {np.median(pos_ref):.3g} vs {np.median(pos_emu):.3g}")
    # measured on a 2-core x86 host: mean 0.073 vs 0.0018, median per position 0.145 vs 8e-7. The
    # emulation's rare misses are chaotic: a float32 difference of one ulp that puts x/d on the other side of
    # a .5 (or amax/127 on the other side of a float16 midpoint) flips one activation quantum, and the trained
    # model's later layers amplify it (or flip a near-tie in expert routing)
    assert np.median(pos_ref) >= 0.03                      # activation quantization does change the logits
    assert np.median(pos_emu) <= 1e-3                      # and explains them at most positions exactly
    assert d_emu.mean() <= 0.2 * d_ref.mean()


def test_q8_0_random_model_matches_the_emulation(exported, llama):
    path, gguf_path, report = exported(Q8_CONFIG, "int8")
    compiled, model = load_compiled(path), load(path)
    assert report["q8_0"] > 0 and {"embed_tokens"} <= q8_0_sources(compiled)   # tied head, Q8_0 too
    d_ref, d_emu = q8_statistics(llama, compiled, model, gguf_path, [token_ids(model, s) for s in range(3)])
    print(f"\nQ8_0 random rows-of-32 model: max |llama - runtime| {d_ref.max():.3g}, "
          f"|llama - emulation| {d_emu.max():.3g}")
    # measured: 3.4 vs 4e-7 (random weights have no outlier activations to amplify a flipped quantum)
    assert d_emu.max() <= 1e-3 and d_ref.max() >= 100 * d_emu.max()


def test_q8_0_greedy_argmax_agrees_with_the_runtime_on_a_long_sequence(exported, llama):
    path, gguf_path, _ = exported(STUDENT, "int8")
    model = load(path)
    ids = greedy_sequence(model, PROMPTS[0], model.max_positions - len(model.encode_prompt(PROMPTS[0])) - 1)
    ref = model.logits(ids).argmax(1)
    with llama(gguf_path) as runner:                       # decode: prefill the prompt, then step
        n = len(model.encode_prompt(PROMPTS[0]))
        got = [runner.prefill(ids[:n]).argmax()] + [runner.step(t).argmax() for t in ids[n:]]
    agree = np.mean(np.array(got) == ref[n - 1:])
    print(f"\nQ8_0 vs runtime greedy argmax over {len(got)} decoded positions: {agree:.3f}")
    assert agree >= 0.95                                   # measured 0.98-1.0; flips sit on near-ties


def test_runner_refuses_overflow_and_bad_ids_and_closes(exported, llama):
    path, gguf_path, _ = exported("tied head, no shared expert, MTP", "float32")
    runner = llama(gguf_path)
    assert runner.get("max_positions") == load_compiled(path).max_positions
    runner.prefill(np.zeros(runner.get("max_positions"), np.int64))
    with pytest.raises(ContextOverflowError, match="exceed the context"):
        runner.step(0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        runner.prefill([runner.get("V")])
    with pytest.raises(ValueError, match="all_logits=True"):
        runner.logits([1, 2])
    runner.call("close")
    runner.call("close")                                   # closing the LlamaRunner twice is harmless
    assert runner.get("llm") is None
    runner.close()
    runner.close()                                         # and so is ending its child twice


def test_bad_requests_raise_export_errors(exported, tmp_path):
    path, _, _ = exported("q_lora, 1 of 2 groups, scaled", "float32")
    with pytest.raises(ExportError, match="weights='int4' is not supported"):
        export(path, str(tmp_path / "x.gguf"), weights="int4")
    with pytest.raises(ExportError, match="is a directory"):
        export(path, str(tmp_path), weights="float32")
    compiled = load_compiled(path)
    [n for n in compiled.nodes if n["op"] == "moe"][-1]["op"] = "swiglu_mlp"   # a dense layer after a MoE one
    with pytest.raises(ExportError, match="must all come before the MoE layers"):
        model_layout(compiled)
    del compiled.nodes[3]                                  # a residual add goes missing
    with pytest.raises(ExportError, match="gguf export needs embedding"):
        model_layout(compiled)
