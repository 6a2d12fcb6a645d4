import importlib.util
import os

import numpy as np
import pytest

from trainer.config import ModelConfig

# `make test` installs every optional package (torch, transformers, onnxruntime, llama.cpp, LiteRT, sshd, ...),
# so under CI=true a skipped test is a failure that names what is missing: the suite can never go green by
# silently testing less. On a laptop without the extras, the same tests skip as usual.
CI = os.environ.get("CI") == "true"

# `tinyr1 flash` of the tiny untrained model, whose answers are noise: the tests about copying go past the
# pre-flight check with --force (one problem per task button keeps it quick)
FORCE = ("--force", "--problems", "1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome, report.longrepr = "failed", f"CI=true, and this test skipped: {_reason(report)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    report = (yield).get_result()
    if CI and report.skipped:
        report.outcome, report.longrepr = "failed", f"CI=true, and {collector.nodeid} skipped: {_reason(report)}"


def _reason(report):
    r = report.longrepr
    return (r[2] if isinstance(r, tuple) and len(r) == 3 else str(r)).removeprefix("Skipped: ")


def need_peer(module, package=None):
    """Skip (a failure under CI=true) unless `module` is installed; find_spec only, so a peer's native
    library is never loaded into the test worker: tests call it through export.isolated.Peer."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        pytest.skip(f"could not import {module!r}: pip install {package or module} (the interop extra)")
    return spec


def tiny_config(**over):
    """A model small enough for float64 finite differences, with every feature on by default."""
    base = dict(vocab_size=11, hidden_size=16, intermediate_size=24, moe_intermediate_size=8, num_hidden_layers=3,
                num_attention_heads=2, n_routed_experts=4, num_experts_per_tok=2, n_group=2, topk_group=1,
                kv_lora_rank=6, q_lora_rank=5, qk_nope_head_dim=4, qk_rope_head_dim=4, v_head_dim=3,
                max_position_embeddings=24, num_nextn_predict_layers=1, routed_scaling_factor=1.7,
                initializer_range=0.3)
    base.update(over)
    return ModelConfig(**base).validate()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def small_student(**over):
    """A tiny student on the real tokenizer: fast to compile and run in tests."""
    from runtime.tokenizer import Tokenizer
    base = dict(vocab_size=Tokenizer().vocab_size, hidden_size=32, intermediate_size=48, moe_intermediate_size=16,
                num_hidden_layers=3, num_attention_heads=4, n_routed_experts=4, num_experts_per_tok=2,
                kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=6, max_position_embeddings=48)
    base.update(over)
    return ModelConfig(**base).validate()


def random_params(cfg, seed=1):
    """init_params plus a non-zero, signed balancing bias and non-trivial norms."""
    from trainer.model import init_params
    p = init_params(cfg, seed)
    r = np.random.default_rng(seed)
    for k in p:
        if k.endswith("e_score_correction_bias"):
            p[k] = r.normal(0, 0.05, p[k].shape).astype(np.float32)
        elif p[k].ndim == 1:
            p[k] = (1 + r.normal(0, 0.1, p[k].shape)).astype(np.float32)
    return p


def write_compiled(path, cfg, quant="float32", seed=1):
    """Compile random_params(cfg, seed) into the file `path` -> str(path) (for the export tests)."""
    from compiler.compile import compile_model
    from runtime.tokenizer import Tokenizer
    with open(path, "wb") as f:
        f.write(compile_model(random_params(cfg, seed), cfg, Tokenizer(), quant=quant)[0])
    return str(path)


STUDENT = "bundled student"                  # the export tests' name for the bundled int8 student
BIG = dict(initializer_range=0.15)           # export tests: logits of a few units, so 1e-4 is a tight bound


def compiled_case(request, d, case, configs, quant):
    """An export test case's model file: the bundled student (int8, the session's `student_file`) or
    random weights of small_student(**BIG, **configs[case]) compiled with `quant` into directory d."""
    if case == STUDENT:
        return request.getfixturevalue("student_file")
    return write_compiled(d / "model.msgpack", small_student(**BIG, **configs[case]), quant)


ROOT = __import__("os").path.dirname(__import__("os").path.dirname(__import__("os").path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """A compiled int8 tiny student with random weights (answers nonsense, fast)."""
    from compiler.compile import compile_model
    from runtime.tokenizer import Tokenizer
    cfg = small_student(max_position_embeddings=160)
    path = tmp_path_factory.mktemp("models") / "tiny.msgpack"
    path.write_bytes(compile_model(random_params(cfg), cfg, Tokenizer(), quant="int8")[0])
    return str(path)


@pytest.fixture(scope="session")
def student_file(tmp_path_factory):
    """The bundled student, compiled to int8 as `make demo` does."""
    import os
    from compiler.compile import compile_model, load_source
    params, cfg, tok, prov = load_source(os.path.join(ROOT, "trainer", "checkpoints", "student"))
    path = tmp_path_factory.mktemp("models") / "student.msgpack"
    path.write_bytes(compile_model(params, cfg, tok, quant="int8", provenance=prov)[0])
    return str(path)


@pytest.fixture(scope="session")
def student_ckpt_dir():
    """The bundled student's trainer checkpoint (read only)."""
    import os
    return os.path.join(ROOT, "trainer", "checkpoints", "student")
