"""export/tflite_export.py: LiteRT running the exported prefill graph computes what
runtime.model.Model computes, for every attention/MoE variant and for the bundled student; the file is a
valid TFL3 flatbuffer of builtin operators whose constants are the runtime's float32 weights. LiteRT and
tflite-runtime run in child processes (export/isolated.py), so a crash in either is one failed test."""
import os

import numpy as np
import pytest

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")     # the flatbuffer schema (pure Python)

from conftest import ROOT, STUDENT, compiled_case, need_peer  # noqa: E402
from export.common import load_compiled  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.isolated import Peer  # noqa: E402
from export.tflite_export import export  # noqa: E402
from runtime.errors import ContextOverflowError  # noqa: E402
from runtime.model import load  # noqa: E402

TOL = 1e-4              # logits, LiteRT vs our runtime on the same (dequantized) weights
PROMPT = 13             # a prompt shorter than seq_len, padded at the end
STUDENT_SEQ_LEN = 48    # the student's context is 256; a shorter graph keeps the test fast

# random_params gives every config a non-zero correction bias, so selection differs from scores;
# conftest.BIG makes their logits a few units, so 1e-4 is a tight bound
CONFIGS = {
    "q_lora, 1 of 2 groups, scaled, wide shared": dict(q_lora_rank=6, n_group=2, topk_group=1,
                                                       routed_scaling_factor=2.5, n_shared_experts=2),
    "plain q, all MoE, no norm_topk": dict(first_k_dense_replace=0, norm_topk_prob=False, routed_scaling_factor=1.5),
    "tied head, no shared expert, MTP": dict(tie_word_embeddings=True, n_shared_experts=0, num_nextn_predict_layers=1),
}
CASES = list(CONFIGS) + [STUDENT]


@pytest.fixture(scope="module")
def exported(request, tmp_path_factory):
    """case -> (model path, .tflite path, export report). Configs are compiled to float32 and exported at
    their full context (seq_len=None); the student is compiled to int8 and exported with seq_len=48."""
    done = {}

    def get(case):
        if case not in done:
            d = tmp_path_factory.mktemp("tflite")
            path = compiled_case(request, d, case, CONFIGS, "float32")
            seq_len = STUDENT_SEQ_LEN if case == STUDENT else None
            out = str(d / "model.tflite")
            done[case] = path, out, export(path, out, seq_len=seq_len)
        return done[case]
    return get


@pytest.fixture
def litert():
    """Peer("litert", path, threads=1): a LiteRtRunner on ai-edge-litert in a child process."""
    need_peer("ai_edge_litert", "ai-edge-litert")
    return lambda *args, **kwargs: Peer("litert", *args, **kwargs)


def token_ids(model, n, seed=0):
    return np.random.default_rng(seed).integers(0, model.tokenizer.vocab_size, n)


def read_model(path):
    with open(path, "rb") as f:
        buf = f.read()
    return buf, schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))


@pytest.mark.parametrize("length", ["full", "prompt"])
@pytest.mark.parametrize("case", CASES)
def test_logits_match_the_runtime(exported, litert, case, length):
    path, out, report = exported(case)
    model = load(path)
    ids = token_ids(model, report["seq_len"] if length == "full" else PROMPT)
    ref = model.logits(ids)
    with litert(out) as runner:
        got = runner.logits(ids)
    assert got.shape == ref.shape == (len(ids), model.tokenizer.vocab_size)
    print(f"\nTFLite {case}, {len(ids)} tokens: max |logit diff| {np.abs(got - ref).max():.2e}")
    assert np.abs(got - ref).max() <= TOL
    assert np.abs(ref).max() > 0.5                                   # the bound is not trivially met


def test_default_seq_len_is_the_context_and_the_student_takes_the_requested_one(exported):
    for case in CONFIGS:
        path, _, report = exported(case)
        assert report["seq_len"] == load_compiled(path).max_positions == 48
    assert exported(STUDENT)[2]["seq_len"] == STUDENT_SEQ_LEN < load_compiled(exported(STUDENT)[0]).max_positions


def test_padding_after_a_prompt_does_not_change_its_logits(exported, litert):
    path, out, report = exported(next(iter(CONFIGS)))
    model = load(path)
    T = report["seq_len"]
    rows = []
    with litert(out) as runner:
        for seed in (1, 2):                                          # same prompt, different tails
            tokens = token_ids(model, T, seed).astype(np.int32)
            tokens[:PROMPT] = token_ids(model, PROMPT)
            rows.append(runner.run_tokens(tokens))
    assert np.abs(rows[0][:PROMPT] - rows[1][:PROMPT]).max() <= 1e-6
    assert np.abs(rows[0][PROMPT:] - rows[1][PROMPT:]).max() > 1e-3   # the tails did differ


def test_runner_returns_the_last_real_position_and_refuses_overflow(exported, litert):
    path, out, report = exported(STUDENT)
    model = load(path)
    with litert(out, threads=1) as runner:
        assert runner.get("seq_len") == report["seq_len"]
        for n in (1, PROMPT, report["seq_len"]):
            ids = token_ids(model, n, seed=n)
            assert np.abs(runner.prefill(ids) - model.logits(ids)[-1]).max() <= TOL
        with pytest.raises(ContextOverflowError, match="1 to 48 tokens"):
            runner.prefill(np.zeros(report["seq_len"] + 1, np.int64))


@pytest.mark.parametrize("case", CASES)
def test_file_parses_back_with_builtin_operators_and_the_runtime_weights(exported, case):
    path, out, report = exported(case)
    buf, m = read_model(out)
    assert schema.Model.ModelBufferHasIdentifier(buf, 0) and buf[4:8] == b"TFL3"
    assert m.version == 3 and len(m.subgraphs) == 1 and report["bytes"] == len(buf)
    assert (b"mark_places" in m.description) == (case == STUDENT)      # the student's prompts need place letters
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    assert all(c.customCode is None and c.builtinCode in names and c.deprecatedBuiltinCode == min(c.builtinCode, 127)
               for c in m.operatorCodes)
    g = m.subgraphs[0]
    counts = {}
    for o in g.operators:
        name = names[m.operatorCodes[o.opcodeIndex].builtinCode]
        counts[name] = counts.get(name, 0) + 1
    assert counts == report["operator_counts"] and sum(counts.values()) == report["operators"]
    T, compiled = report["seq_len"], load_compiled(path)
    V = compiled.weights["embed_tokens"].shape[0]
    (tokens,), (logits,) = [g.tensors[i] for i in g.inputs], [g.tensors[i] for i in g.outputs]
    assert (tokens.name, list(tokens.shape), tokens.type) == (b"tokens", [T], schema.TensorType.INT32)
    assert (logits.name, list(logits.shape), logits.type) == (b"logits", [T, V], schema.TensorType.FLOAT32)
    # constants are the runtime's float32 weights (dequantized for the int8 student), 16-byte aligned
    consts = {t.name.decode(): t for t in g.tensors if t.buffer > 0}
    for name in ("embed_tokens", "norm"):
        data = m.buffers[consts[name].buffer].data
        assert np.array_equal(np.frombuffer(data.tobytes(), np.float32), compiled.weights[name].reshape(-1))
    assert (report["dequantized_tensors"] > 0) == (case == STUDENT)         # the student is compiled to int8
    assert ("embed_tokens" in compiled.int8) == (case == STUDENT)            # so the check above saw int8 values
    table = schema.Model.GetRootAs(buf, 0).Buffers(consts["embed_tokens"].buffer).DataAsNumpy()
    assert (table.ctypes.data - np.frombuffer(buf, np.uint8).ctypes.data) % 16 == 0


def test_an_independent_reader_and_the_signature_agree(exported, litert):
    tflite = pytest.importorskip("tflite")                       # the `tflite` package: its own generated reader
    path, out, report = exported(STUDENT)
    with open(out, "rb") as f:
        m = tflite.Model.GetRootAsModel(f.read(), 0)
    g = m.Subgraphs(0)
    counts = {}
    for i in range(g.OperatorsLength()):
        name = tflite.opcode2name(m.OperatorCodes(g.Operators(i).OpcodeIndex()).BuiltinCode())
        counts[name] = counts.get(name, 0) + 1
    assert m.Version() == 3 and counts == report["operator_counts"]
    sig = m.SignatureDefs(0)
    assert sig.SignatureKey() == b"serving_default"
    assert (sig.Inputs(0).Name(), sig.Outputs(0).Name()) == (b"tokens", b"logits")
    model = load(path)
    ids = token_ids(model, report["seq_len"], seed=3)
    with litert(out) as runner:
        got = runner.signature_logits(ids)
    assert np.abs(got - model.logits(ids)).max() <= TOL


@pytest.mark.parametrize("case", CASES)
def test_declared_shapes_are_the_shapes_litert_computes(exported, litert, case):
    _, out, _ = exported(case)
    _, m = read_model(out)
    with litert(out) as runner:
        shapes = runner.tensor_shapes()                              # JSON keys: tensor indices as text
    declared = {i: tuple(t.shape) for i, t in enumerate(m.subgraphs[0].tensors)}
    computed = {int(i): tuple(s) for i, s in shapes.items() if int(i) in declared}
    assert len(computed) == len(declared) and computed == declared


def test_the_student_uses_every_expected_operator(exported):
    counts = exported(STUDENT)[2]["operator_counts"]
    cfg = load_compiled(exported(STUDENT)[0]).config
    L, moe_layers = cfg["num_hidden_layers"], cfg["num_hidden_layers"] - cfg["first_k_dense_replace"]
    assert counts["SOFTMAX"] == counts["TRANSPOSE"] // 2 == L                  # one attention per layer
    assert counts["TOPK_V2"] == counts["ONE_HOT"] == moe_layers                # n_group == 1: one top-K each
    assert counts["GATHER"] == 1


def test_bad_requests_raise_export_errors(exported, tmp_path):
    path, _, _ = exported("tied head, no shared expert, MTP")
    with pytest.raises(ExportError, match="hybrid int8 kernels have no group-wise scales"):
        export(path, str(tmp_path / "x.tflite"), weights="int8")
    with pytest.raises(ExportError, match="weights='int4' is not supported"):
        export(path, str(tmp_path / "x.tflite"), weights="int4")
    for bad in (0, 49, 2.5):
        with pytest.raises(ExportError, match=f"seq_len={bad!r} must be an int from 1 to .* 48"):
            export(path, str(tmp_path / "x.tflite"), seq_len=bad)
    with pytest.raises(ExportError, match="is a directory"):
        export(path, str(tmp_path), weights="float32")
    assert not (tmp_path / "x.tflite").exists()


FLOOR_PYTHON = os.path.join(ROOT, ".venv-floor", "bin", "python")


def test_tflite_runtime_with_numpy_1_runs_the_same_file(exported):
    """tflite-runtime 2.14 (its last release) needs numpy < 2: `make test` installs it in .venv-floor,
    and the Peer's child runs with that interpreter."""
    if not os.path.exists(FLOOR_PYTHON):
        pytest.skip("no .venv-floor (make test creates it with numpy 1.24 and tflite-runtime)")
    path, out, report = exported(STUDENT)
    model = load(path)
    ids = token_ids(model, PROMPT, seed=4)
    with Peer("tflite-runtime", out, threads=1, python=FLOOR_PYTHON) as runner:
        assert runner.numpy_version().startswith("1.")             # really numpy 1.x
        got = runner.logits(ids)
    assert np.abs(got - model.logits(ids)).max() <= TOL
