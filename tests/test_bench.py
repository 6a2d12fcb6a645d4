"""export/race.py: every engine does the same work (same prompts, same generated token count), in
fresh one-thread processes, alternately; the table and ratios come from those figures."""
import pytest
from click.testing import CliRunner

from export.isolated import CRASH_ENV
from conftest import need_peer, small_student, write_compiled
from tinyr1.cli import main


@pytest.fixture(autouse=True)
def onnxruntime_installed():
    need_peer("onnxruntime")


@pytest.fixture(scope="module")
def mtp_model(tmp_path_factory):
    cfg = small_student(num_nextn_predict_layers=1, max_position_embeddings=160, initializer_range=0.15)
    return write_compiled(tmp_path_factory.mktemp("bench") / "m.msgpack", cfg, "int8")


def test_engines_decode_the_same_tokens_and_ratios_follow(mtp_model):
    from export import race as bench
    result = bench.run(mtp_model, peers=["onnxruntime"], repeat=1, progress=lambda m: None)
    engines = result["engines"]
    assert list(engines) == ["tinyr1", "tinyr1+mtp", "onnxruntime"]       # MTP drafts measured as their own engine
    decoded = {e["decoded_tokens"] for e in engines.values()}
    assert decoded == {result["generated_tokens"] - result["questions"]}     # the first token is prefill's
    for e in engines.values():
        assert e["decode_tokens_per_s"] > 0 and e["prefill_tokens_per_s"] > 0 and 0 < e["peak_rss_mb"] < 2000
    r = result["ratios"]["onnxruntime"]
    ours, peer = engines["tinyr1"], engines["onnxruntime"]
    assert r["decode"] == pytest.approx(ours["decode_tokens_per_s"] / peer["decode_tokens_per_s"], rel=1e-2)
    assert r["first_token_speedup"] == pytest.approx(peer["first_token_ms"] / ours["first_token_ms"], rel=1e-2)
    table = bench.table(result)
    assert "| onnxruntime | ONNX float32 |" in table and "| tinyr1+mtp |" in table
    assert result["cpu"] and f"CPU: {result['cpu']}" in table                 # every figure names its CPU
    assert "onnxruntime: onnxruntime 1." in table


def test_a_crashing_peer_is_reported_and_the_others_are_measured(mtp_model, monkeypatch):
    from export import race as bench
    monkeypatch.setenv(CRASH_ENV, "onnxruntime:SIGSEGV")
    lines = []
    result = bench.run(mtp_model, peers=["onnxruntime"], repeat=1, progress=lines.append)
    assert result["engines"]["onnxruntime"]["error"] == "onnxruntime died with SIGSEGV"
    assert result["engines"]["tinyr1"]["decode_tokens_per_s"] > 0                # ours still measured
    assert result["ratios"]["onnxruntime"]["decode"] is None
    assert "round 1/1 onnxruntime: onnxruntime died with SIGSEGV" in lines
    assert "| onnxruntime | ONNX float32 | onnxruntime died with SIGSEGV |" in bench.table(result)


def test_cli_refuses_unknown_peers(mtp_model):
    r = CliRunner().invoke(main, ["bench", mtp_model, "--peers", "tensorrt"])
    assert r.exit_code == 1 and "unknown peer 'tensorrt'; peers: llama.cpp, onnxruntime, litert" in r.output
