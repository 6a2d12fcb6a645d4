"""Compiler -> runtime: the compiled graph computes what the trainer computes."""
import numpy as np
import pytest
from click.testing import CliRunner

from compiler.compile import compile_model
from compiler.quantize import quantize
from compiler.trace import trace
from conftest import random_params, small_student
from runtime.errors import ContextOverflowError
from runtime.loader import parse_document
from runtime.model import Model
from runtime.tokenizer import Tokenizer
from tinyr1.cli import main
from trainer.model import logits as trainer_logits

CONFIGS = {"plain q, dense first": {}, "q_lora, 2 of 4 groups, no norm_topk": dict(q_lora_rank=12, n_group=2, topk_group=1,
                                                                             norm_topk_prob=False),
           "tied head, all MoE, no shared": dict(tie_word_embeddings=True, first_k_dense_replace=0, n_shared_experts=0),
           "MTP is dropped": dict(num_nextn_predict_layers=1, first_k_dense_replace=2)}


def compiled(cfg, params, quant="float32", **kw):
    data, graph, report = compile_model(params, cfg, Tokenizer(), quant=quant, **kw)
    return Model(parse_document(data)), data, graph, report


@pytest.mark.parametrize("name", list(CONFIGS))
def test_float32_prefill_and_decode_match_the_trainer(name):
    cfg = small_student(**CONFIGS[name])
    params = random_params(cfg)
    model, _, graph, _ = compiled(cfg, params)
    ids = np.random.default_rng(0).integers(0, cfg.vocab_size, 30)
    ref = trainer_logits(params, cfg, ids[None])[0]
    assert np.abs(model.logits(ids) - ref).max() < 1e-4
    model.reset()
    steps = [model.forward(ids[:7])[-1]] + [model.forward([t])[-1] for t in ids[7:]]     # absorbed latent cache
    assert np.abs(np.stack(steps) - ref[6:]).max() < 1e-4
    assert not any("mtp" in n.attrs.get("prefix", "") for n in graph.nodes)


def test_trace_records_every_layer_and_lints_clean():
    cfg = small_student()
    graph = trace(random_params(cfg), cfg)
    ops = [n.op for n in graph.nodes]
    assert ops.count("mla_attention") == 3 and ops.count("moe") == 2 and ops.count("swiglu_mlp") == 1
    assert ops.count("add") == 6 and ops[0] == "embedding" and ops[-1] == "lm_head"
    assert "%logits = lm_head(%rmsnorm6)" in graph.dump()
    problems = graph.lint({})
    assert any("which is not in the tensor table; a pass removed the tensor" in p for p in problems)


def test_absorbed_cache_holds_only_the_latent():
    cfg = small_student()
    model, _, _, _ = compiled(cfg, random_params(cfg))
    mla = [op for op, _, _ in model.ops if type(op).__name__ == "MLAttention"]
    assert all(op.c_kv.shape[1] + op.k_pe.shape[1] == cfg.kv_lora_rank + cfg.qk_rope_head_dim for op in mla)


def test_int8_groups_and_channels():
    w = np.random.default_rng(0).normal(size=(6, 70)).astype(np.float32)
    for scheme in ("q8_group", "q8_channel"):
        q, scales, deq = quantize(w, scheme, 32)
        assert q.dtype == np.int8 and np.abs(q).max() == 127
        assert scales.shape == ((6, 3) if scheme == "q8_group" else (6, 1))
        step = np.repeat(scales.astype(np.float32), 32 if scheme == "q8_group" else 70, axis=1)[:, :70]
        assert (np.abs(w - deq) <= step / 2 + 1e-6).all()               # round to nearest
    q, _, _ = quantize(np.array([[0.5, -0.5, 127.0]], np.float32), "q8_group", 32)
    assert q.tolist() == [[1, -1, 127]]                                  # half away from zero, like Q8_0


def test_int8_model_is_close_and_smaller():
    cfg = small_student()
    params = random_params(cfg)
    m32, d32, _, _ = compiled(cfg, params)
    m8, d8, _, report = compiled(cfg, params, quant="int8")
    assert len(d8) < 0.4 * len(d32)
    ids = np.arange(20) % cfg.vocab_size
    a, b = m32.logits(ids), m8.logits(ids)
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()
    assert all(r["rel_error"] < 0.02 for r in report.values())


def test_generation_streams_stops_and_is_reproducible():
    cfg = small_student(max_position_embeddings=40)
    model, _, _, _ = compiled(cfg, random_params(cfg))
    stats = {}
    pieces = list(model.generate("What is 1+1?", max_new_tokens=10, stats=stats))
    assert stats["tokens"] == len(pieces) <= 10 and stats["stop"] in ("length", "answer", "eos")
    assert pieces == list(model.generate("What is 1+1?", max_new_tokens=10))
    s1 = list(model.generate("What is 1+1?", max_new_tokens=10, temperature=1.0, seed=3))
    assert s1 == list(model.generate("What is 1+1?", max_new_tokens=10, temperature=1.0, seed=3))
    assert len(list(model.generate("What is 1+1?", max_new_tokens=500))) <= 40 - 13   # clipped to the context
    # the file's default runs to the context's end (v14's fib(45) needs 680 of its 768), not a fixed 512
    assert model.generation["max_new_tokens"] == 40 and compiled(small_student(max_position_embeddings=900),
                                                                 random_params(cfg))[0].generation["max_new_tokens"] == 900
    with pytest.raises(ContextOverflowError, match="the prompt is 41 tokens; the model's context holds 40"):
        list(model.generate("x" * 40))


def test_stops_after_end_of_answer():
    cfg = small_student()
    params = random_params(cfg)
    tok = Tokenizer()
    params["lm_head"][:] = 0
    params["lm_head"][tok.end_answer_id] = 1.0        # a model that always says </answer>
    model, _, _, _ = compiled(cfg, params)
    a = model.answer("What is 1+1?")
    assert a.text == "</answer>" and a.stop == "answer" and a.tokens == 1


def test_sampler_top_p_keeps_the_smallest_sufficient_set():
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    picks = {Model.sample(logits, rng, 1.0, None, 0.7) for _ in range(300)}
    assert picks == {0, 1}
    assert {Model.sample(logits, rng, 1.0, 1, None) for _ in range(50)} == {0}


def test_cli_compile_inspect_run(tmp_path):
    from trainer import checkpoint
    cfg = small_student()
    ck = str(tmp_path / "ck")
    checkpoint.save(ck, random_params(cfg), cfg, Tokenizer(), {"step": 1, "recipe": "unit"})
    out = str(tmp_path / "build" / "m.msgpack")                  # a directory that does not exist yet
    r = CliRunner().invoke(main, ["compile", ck, "-o", out, "--graph"])
    assert r.exit_code == 0, r.output
    assert "mla_attention" in r.output and "bytes per parameter" in r.output
    r = CliRunner().invoke(main, ["inspect", out])
    assert r.exit_code == 0 and "q8_group" in r.output and "moe x2" in r.output and '"recipe": "unit"' in r.output
    r = CliRunner().invoke(main, ["inspect", out, "--json"])
    assert r.exit_code == 0 and '"int8_parameters"' in r.output
    r = CliRunner().invoke(main, ["run", out, "--prompt", "What is 2+2?", "--max-new-tokens", "5"])
    assert r.exit_code == 0
    r = CliRunner().invoke(main, ["run", out, "--prompt", "caf\u00e9"])
    assert r.exit_code == 1 and "U+00E9" in r.output
    r = CliRunner().invoke(main, ["compile", str(tmp_path), "-o", out])
    assert r.exit_code == 1 and "neither a trainer checkpoint" in r.output


MTP_CONFIGS = {"MoE draft block": {}, "dense draft block, q_lora": dict(first_k_dense_replace=3, q_lora_rank=12)}


@pytest.mark.parametrize("name", list(MTP_CONFIGS))
def test_mtp_draft_head_computes_what_the_trainer_computes(name):
    from trainer.model import forward, mtp_logits
    cfg = small_student(num_nextn_predict_layers=1, initializer_range=0.15, **MTP_CONFIGS[name])
    params = random_params(cfg)
    model, _, graph, _ = compiled(cfg, params, quant="float32")
    assert [n.op for n in graph.mtp.nodes][:6] == ["embedding", "rmsnorm", "rmsnorm", "linear", "linear", "add"]
    assert graph.mtp.inputs[0] == graph.nodes[-2].inputs[0]           # the state the final norm reads
    ids = np.random.default_rng(1).integers(0, cfg.vocab_size, 25)
    h, _ = forward(params, cfg, ids[None])
    ref = mtp_logits(params, cfg, h, ids[None])[0]
    logits, hidden = model.forward(ids, all_logits=True, hidden=True)
    assert np.abs(hidden - h[0]).max() < 1e-5
    assert np.abs(model.draft(hidden[:10], ids[:10], 0) - ref[9:10]).max() < 1e-4      # the last position's
    assert np.abs(model.draft(hidden[10:], ids[10:], 10) - ref[-1:]).max() < 1e-4     # continues its own cache


def test_speculative_greedy_output_equals_plain_greedy():
    cfg = small_student(num_nextn_predict_layers=1, max_position_embeddings=120, initializer_range=0.15)
    model, _, _, _ = compiled(cfg, random_params(cfg, seed=3), quant="int8")
    accepted = 0
    for q in ["What is 47+38?", "Sort 5 3 9 1", "What is fib(10)?", "How many r in strawberry?"]:
        plain, spec = {}, {}
        a = list(model.generate(q, max_new_tokens=200, stats=plain))
        b = list(model.generate(q, max_new_tokens=200, speculative=True, stats=spec))
        assert a == b and plain["tokens"] == spec["tokens"] and plain["stop"] == spec["stop"]
        assert spec["drafted"] > 0 and "drafted" not in plain
        accepted += spec["accepted"]
    assert accepted > 0                                    # both branches of the verification ran
    with pytest.raises(ValueError, match="needs greedy decoding"):
        list(model.generate("What is 1+1?", temperature=1.0, speculative=True))


def test_a_places_model_reads_its_prompts_marked_in_the_runtime_as_in_the_trainer():
    """The tokenizer's places travel in the model file: the runtime encodes `What is 47+5?` as the trainer
    does (`b4a7+a5`), and greedy text from the compiled file equals the trainer's own generation."""
    from trainer.generate import generate_texts
    cfg = small_student()
    params = random_params(cfg)
    tok = Tokenizer(places=True)
    data = compile_model(params, cfg, tok, quant="float32")[0]
    model = Model(parse_document(data))
    assert model.tokenizer.places and model.tokenizer == tok
    q = "What is 47+5?"
    assert tok.decode(model.encode_prompt(q)) == "<bos>What is b4a7+a5?"
    got = "".join(model.generate(q, max_new_tokens=12))
    assert got == generate_texts(params, cfg, tok, [q], 12)[0]
    plain = Model(parse_document(compile_model(params, cfg, Tokenizer(), quant="float32")[0]))
    assert plain.encode_prompt(q) == [tok.bos_id] + tok.encode(q)


def test_an_items_model_reads_lists_with_item_hints_in_the_runtime_as_in_the_trainer():
    """The tokenizer's items travel in the model file: the runtime reads `Sort 47 8 44` as the trainer does
    (`#Ab4a7 #Ba8 #Cb4a4`), and greedy text from the compiled file equals the trainer's own generation."""
    from trainer.generate import generate_texts
    cfg = small_student()
    params = random_params(cfg)
    tok = Tokenizer(places=True, items=True)
    model = Model(parse_document(compile_model(params, cfg, tok, quant="float32")[0]))
    assert model.tokenizer.items and model.tokenizer == tok
    q = "Sort 47 8 44"
    assert tok.decode(model.encode_prompt(q)) == "<bos>Sort #Ab4a7 #Ba8 #Cb4a4"
    assert "".join(model.generate(q, max_new_tokens=12)) == generate_texts(params, cfg, tok, [q], 12)[0]


def test_a_hints_model_streams_its_answer_without_the_hints_it_writes(monkeypatch):
    """The tokenizer's hints travel in the model file, and the runtime's stream drops the `#A` hints a hints
    model writes before its answer's numbers (sort trace indexed), as decode_completion does; the prompt is
    read without item hints."""
    import runtime.generate as G
    cfg = small_student()
    tok = Tokenizer(places=True, hints=True)
    model = Model(parse_document(compile_model(random_params(cfg), cfg, tok, quant="float32")[0]))
    assert model.tokenizer.hints and model.tokenizer == tok
    assert tok.decode(model.encode_prompt("Sort 47 8 44")) == "<bos>Sort b4a7 a8 b4a4"
    written = "<think>0:A8 4:B4,C7</think><answer>#Aa8 #Bb4a4 #Cb4a7</answer>"
    monkeypatch.setattr(G, "_pieces", lambda *a: iter([tok.token_str(i) for i in tok.encode(written)]))
    shown = "".join(model.generate("Sort 47 8 44", max_new_tokens=40))
    assert shown == "<think>0:A8 4:B4,C7</think><answer>8 44 47</answer>" == tok.decode_completion(tok.encode(written))
