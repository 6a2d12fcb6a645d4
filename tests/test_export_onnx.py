"""export/onnx_export.py: onnxruntime running the exported prefill and decode graphs computes what
runtime.model.Model computes, for every attention/MoE variant and for the bundled student. onnxruntime runs in
a child process (export/isolated.py), so a crash in it is one failed test."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from conftest import STUDENT, compiled_case, need_peer  # noqa: E402
from export.common import load_compiled  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.isolated import Peer  # noqa: E402
from export.onnx_export import export  # noqa: E402
from runtime.errors import ContextOverflowError  # noqa: E402
from runtime.model import load  # noqa: E402
from runtime.opset import tensor_attrs  # noqa: E402

TOL = 1e-4              # logits, ORT vs our runtime on the same (dequantized) weights
CACHE_TOL = 1e-5        # latent cache rows, O(1) values after RMSNorm / RoPE
T, PROMPT = 12, 7       # tokens per test sequence; the decode loop prefills PROMPT then steps one by one

# random_params gives every config a non-zero correction bias, so selection differs from scores;
# conftest.BIG makes their logits a few units, so 1e-4 is a tight bound
CONFIGS = {
    "q_lora, 1 of 2 groups, scaled": dict(q_lora_rank=6, n_group=2, topk_group=1, routed_scaling_factor=2.5),
    "plain q, all MoE, no norm_topk": dict(first_k_dense_replace=0, norm_topk_prob=False, routed_scaling_factor=1.5),
    "tied head, no shared expert, MTP": dict(tie_word_embeddings=True, n_shared_experts=0, num_nextn_predict_layers=1),
}
CASES = [(c, w) for c in list(CONFIGS) + [STUDENT] for w in ("float32", "int8")]


@pytest.fixture(scope="module")
def exported(request, tmp_path_factory):
    """(case, weights) -> (model path, export dir, export report). Configs export a float32-compiled model
    as float32 and an int8-compiled one as int8; the student (int8) is exported both ways."""
    done = {}

    def get(case, weights):
        if (case, weights) not in done:
            d = tmp_path_factory.mktemp("onnx")
            path = compiled_case(request, d, case, CONFIGS, weights)
            done[case, weights] = path, str(d / "onnx"), export(path, str(d / "onnx"), weights=weights)
        return done[case, weights]
    return get


def token_ids(model, seed=0):
    return np.random.default_rng(seed).integers(0, model.tokenizer.vocab_size, T)


def runtime_caches(model, n):
    """The runtime's latent cache rows 0..n-1 per layer, in layer order: [(c_kv (n, C), k_pe (n, r))]."""
    return [(op.c_kv[:n].copy(), op.k_pe[:n].copy()) for op, _, _ in model.ops if hasattr(op, "c_kv")]


@pytest.fixture
def ort():
    """Peer("onnxruntime", out_dir, threads=1): an OrtRunner in a child process."""
    need_peer("onnxruntime")
    return lambda *args, **kwargs: Peer("onnxruntime", *args, **kwargs)


@pytest.mark.parametrize("case,weights", CASES)
def test_prefill_logits_and_cache_match_the_runtime(exported, ort, case, weights):
    path, out_dir, _ = exported(case, weights)
    model = load(path)
    ids = token_ids(model)
    ref = model.logits(ids)
    with ort(out_dir) as runner:
        out = runner.run("prefill", {"tokens": ids})
    assert out["logits"].shape == ref.shape
    print(f"\nONNX {case} ({weights}): prefill max |logit diff| {np.abs(out['logits'] - ref).max():.2e}")
    assert np.abs(out["logits"] - ref).max() <= TOL
    layers = [mla["attrs"]["layer"] for mla, _ in load_compiled(path).layers()]
    for i, (c_kv, k_pe) in zip(layers, runtime_caches(model, T)):
        np.testing.assert_allclose(out[f"c_kv.{i}"], c_kv, rtol=0, atol=CACHE_TOL)
        np.testing.assert_allclose(out[f"k_pe.{i}"], k_pe, rtol=0, atol=CACHE_TOL)


@pytest.mark.parametrize("case,weights", CASES)
def test_decode_loop_matches_full_sequence_logits(exported, ort, case, weights):
    path, out_dir, _ = exported(case, weights)
    model = load(path)
    ids = token_ids(model, seed=1)
    ref = model.logits(ids)
    with ort(out_dir) as runner:
        steps = [runner.prefill(ids[:PROMPT])] + [runner.step(t) for t in ids[PROMPT:]]
        cache = runner.get("cache")
    assert np.abs(np.stack(steps) - ref[PROMPT - 1:]).max() <= TOL
    layers = [mla["attrs"]["layer"] for mla, _ in load_compiled(path).layers()]
    for i, (c_kv, k_pe) in zip(layers, runtime_caches(model, T)):          # present_* grew to T rows
        np.testing.assert_allclose(cache[f"past_c_kv.{i}"], c_kv, rtol=0, atol=CACHE_TOL)
        np.testing.assert_allclose(cache[f"past_k_pe.{i}"], k_pe, rtol=0, atol=CACHE_TOL)


@pytest.mark.parametrize("case,weights", CASES)
def test_both_models_pass_the_full_checker(exported, case, weights):
    _, out_dir, report = exported(case, weights)
    for mode in ("prefill", "decode"):
        model = onnx.load(os.path.join(out_dir, f"{mode}.onnx"))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == report["opset"] == 21
        assert len(model.graph.node) == report[f"{mode}_nodes"]
        props = {p.key: p.value for p in model.metadata_props}        # how to prompt it: places or plain
        assert props["places"] == ("true" if case == STUDENT else "false")
        assert ("mark_places" in props["prompt"]) == (case == STUDENT)
        assert props["items"] == "false" and "mark_items" not in props["prompt"]      # the bundled student: no items
        assert props["hints"] == "false"
    assert report["bytes"] == sum(os.path.getsize(os.path.join(out_dir, f)) for f in ("prefill.onnx", "decode.onnx"))


@pytest.mark.parametrize("case,weights", CASES)
def test_initializers_are_int8_exactly_where_the_model_file_is(exported, case, weights):
    path, out_dir, report = exported(case, weights)
    compiled = load_compiled(path)
    model = onnx.load(os.path.join(out_dir, "decode.onnx"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    int8 = sorted(name for name, a in inits.items() if a.dtype == np.int8)
    assert all(a.dtype in (np.int8, np.float32) for a in inits.values())
    main_graph = {v for n in compiled.nodes for v in tensor_attrs(n["op"], n["attrs"]).values()}
    assert int8 == report["int8_tensors"] == (sorted(main_graph & set(compiled.int8)) if weights == "int8" else [])
    assert bool(int8) == (weights == "int8")
    blocks = {n.input[0]: {a.name: a.i for a in n.attribute}
              for n in model.graph.node if n.op_type == "DequantizeLinear"}
    for name in int8:
        q, scales, group = compiled.int8[name]
        s = inits[f"{name}.scales"]
        assert s.dtype == np.float32 and np.array_equal(s.reshape(scales.shape), scales.astype(np.float32))
        # q * scale per block along the last axis is the runtime's dequantized weight, bit for bit
        per_col = np.repeat(s, group, axis=-1)[..., :q.shape[-1]]
        assert np.array_equal(inits[name] * per_col, compiled.weights[name])
        if name in blocks:                                       # a whole-tensor DequantizeLinear
            assert blocks[name] == {"axis": q.ndim - 1, "block_size": group}
    for name, a in inits.items():                                # everything else is the float32 weight
        if a.dtype == np.float32 and name in compiled.weights:
            assert np.array_equal(a, compiled.weights[name])


def test_an_int8_case_has_a_short_last_group(exported):
    path, _, _ = exported(next(iter(CONFIGS)), "int8")
    compiled = load_compiled(path)
    short = [n for n, (q, _, g) in compiled.int8.items() if q.shape[-1] % g]
    assert short, "the config should have a tensor whose last axis is not a multiple of the group"
    # its exact dequantization and parity are asserted by the initializer, prefill and decode tests above


@pytest.mark.parametrize("case,weights", [(c, "int8") for c in CONFIGS] + [(STUDENT, "int8")])
def test_only_the_chosen_experts_are_gathered(exported, case, weights):
    path, out_dir, _ = exported(case, weights)
    experts = set()
    for node in load_compiled(path).nodes:
        if node["op"] == "moe":
            experts |= {node["attrs"]["w_experts_gate_up"], node["attrs"]["w_experts_down"]}
    experts |= {f"{n}.scales" for n in experts}
    for mode in ("prefill", "decode"):
        graph = onnx.load(os.path.join(out_dir, f"{mode}.onnx")).graph
        topk = {n.output[1] for n in graph.node if n.op_type == "TopK"}
        readers = [n for n in graph.node if experts & set(n.input)]
        assert readers and all(n.op_type == "Gather" and n.input[1] in topk for n in readers)


def test_runner_steps_from_an_empty_cache_resets_and_refuses_overflow(exported, ort):
    path, out_dir, _ = exported("tied head, no shared expert, MTP", "float32")
    model = load(path)
    ids = token_ids(model, seed=2)[:4]
    ref = model.logits(ids)
    with ort(out_dir, threads=1) as runner:
        assert np.abs(np.stack([runner.step(t) for t in ids]) - ref).max() <= TOL
        runner.reset()
        assert runner.get("pos") == 0 and all(v.shape[0] == 0 for v in runner.get("cache").values())
        assert np.abs(runner.prefill(ids) - ref[-1]).max() <= TOL
        runner.prefill(np.zeros(runner.get("max_positions"), np.int64))
        with pytest.raises(ContextOverflowError, match="exceed the context"):
            runner.step(0)


def test_bad_requests_raise_export_errors(exported, tmp_path):
    path, _, _ = exported("tied head, no shared expert, MTP", "float32")
    with pytest.raises(ExportError, match="weights='int4' is not supported"):
        export(path, str(tmp_path / "x"), weights="int4")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ExportError, match="is a file"):
        export(path, str(tmp_path / "file"), weights="float32")


def test_every_export_says_how_an_items_model_is_prompted():
    """An items model's prompt note (GGUF tinyr1.prompt, ONNX prompt, TFLite description) names both marks, in
    the order the runtime applies them, and the unmarking of answers with item hints; a hints model's names
    the unmarking without item marks."""
    from export.common import prompt_note
    from runtime.tokenizer import Tokenizer
    note = prompt_note(Tokenizer(places=True, items=True))
    assert note.index("mark_items") < note.index("mark_places") and "unmark_answer(completion, items=True)" in note
    assert "mark_items" not in prompt_note(Tokenizer(places=True)) and prompt_note(Tokenizer()).startswith("plain")
    hints = prompt_note(Tokenizer(places=True, hints=True))     # its own hints: the prompt marks places only
    assert "mark_items" not in hints and "mark_places" in hints and "unmark_answer(completion, items=True)" in hints
    assert "unmark_answer(completion, items=True)" in prompt_note(Tokenizer(hints=True))
    assert "unmark" not in prompt_note(Tokenizer())
