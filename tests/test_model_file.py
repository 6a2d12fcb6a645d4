"""Hostile and corrupt model files: every one raises ModelFormatError naming the problem, and only that.

Broken files are built byte by byte (a minimal valid file still loads), plus a hypothesis fuzzer."""
import hashlib
import re
import tracemalloc

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler.compile import compile_model
from conftest import random_params, small_student
from runtime import ModelFormatError, fileformat, opset
from runtime.loader import parse_document, read_document
from runtime.model import Model
from runtime.tokenizer import Tokenizer

CFG = small_student(hidden_size=16, intermediate_size=16, moe_intermediate_size=8, num_hidden_layers=2,
                    num_attention_heads=2, kv_lora_rank=4, qk_nope_head_dim=4, qk_rope_head_dim=4, v_head_dim=4,
                    max_position_embeddings=16)
VALID, _, _ = compile_model(random_params(CFG), CFG, Tokenizer(), quant="int8")


def load_bytes(data):
    return Model(parse_document(data))


def split(data=VALID):
    outer = msgpack.unpackb(data, raw=False)
    return outer, msgpack.unpackb(outer["payload"], raw=False)


def rebuild(outer, body, resign=True):
    """Re-pack an edited body with a correct checksum, so that the check under test is reached."""
    payload = msgpack.packb(body, use_bin_type=True)
    outer = dict(outer, payload=payload)
    if resign:
        outer["sha256"] = hashlib.sha256(payload).digest()
    return msgpack.packb(outer, use_bin_type=True)


def expect(data, message):
    with pytest.raises(ModelFormatError, match=message):
        load_bytes(data)


def test_minimal_valid_file_loads_and_runs(tmp_path):
    path = tmp_path / "m.msgpack"
    path.write_bytes(VALID)
    model = Model(read_document(str(path)), str(path))
    assert model.logits([1, 2, 3]).shape == (3, Tokenizer().vocab_size)


@pytest.mark.parametrize("edit, message", [
    (lambda o: o.update(magic="gguf"), "magic is 'gguf', expected 'tinyr1-model'"),
    (lambda o: o.update(format_version=2), "format_version 2 is not supported; this runtime reads version 1"),
    (lambda o: o.update(opset_version=99), "opset_version 99 is not supported"),
    (lambda o: o.update(sha256=b"\0" * 32), "sha256 of the payload does not match"),
    (lambda o: o.update(sha256=b"short"), "sha256 must be 32 bytes"),
    (lambda o: o.pop("payload"), "missing key 'payload'"),
    (lambda o: o.update(extra=1), "unknown key 'extra'"),
    (lambda o: o.update(payload="text"), "payload must be bytes"),
])
def test_outer_document(edit, message):
    outer, _ = split()
    edit(outer)
    expect(msgpack.packb(outer, use_bin_type=True), message)


def tensor(body, name):
    return next(t for t in body["tensors"] if t["name"] == name)


EMB = "embed_tokens"


@pytest.mark.parametrize("edit, message", [
    (lambda b: tensor(b, EMB).update(dtype="float64"), "tensor 'embed_tokens': dtype 'float64' is unknown"),
    (lambda b: tensor(b, EMB).update(shape=[103, 17]), r"data has 1648 bytes but dtype int8 and shape \[103, 17\] need 1751"),
    (lambda b: tensor(b, EMB).update(shape=[2 ** 40, 2 ** 40]), "declares 1208925819614629174706176 elements"),
    (lambda b: tensor(b, EMB).update(shape=[-1, 16]), "must hold positive integers"),
    (lambda b: tensor(b, EMB).update(shape=[1, 1, 1, 1, 1]), "at most 4 sizes"),
    (lambda b: tensor(b, EMB).update(scales=b"\0" * 3), "scales must be .* bytes"),
    (lambda b: tensor(b, EMB).update(scales=np.full(103, np.inf, "<f2").tobytes()), "scales contain NaN or infinity"),
    (lambda b: tensor(b, EMB).update(quant="q4"), "quant 'q4' is unknown"),
    (lambda b: tensor(b, EMB).update(group_size=0), "group_size 0 must be in 1..16"),
    (lambda b: b["tensors"].append(dict(b["tensors"][0])), "appears twice in the tensor table"),
    (lambda b: b["graph"]["nodes"][1].update(op="conv2d"), "unknown op 'conv2d'; opset 2 has: embedding, rmsnorm"),
    (lambda b: b["graph"]["nodes"][1].update(inputs=["nowhere"]), "input 'nowhere' is not defined before use"),
    (lambda b: b["graph"]["nodes"][1]["attrs"].update(weight="ghost"), "names tensor 'ghost', which is not in the tensor table"),
    (lambda b: b["graph"].update(outputs=["ghost"]), "outputs must name one value the nodes define"),
    (lambda b: b["tokenizer"].update(type="bpe"), "tokenizer: field 'type' is 'bpe'"),
    (lambda b: b.pop("provenance"), "missing key 'provenance'"),
    (lambda b: b["graph"]["nodes"][2]["attrs"].update(n_heads=3), r"node 2: \(mla_attention\) attributes n_heads, "
     r"qk_nope_head_dim, kv_lora_rank = 3, 4, 4 must match the shape \[2, 4, 4\] of tensor w_uk"),
    (lambda b: tensor(b, "layers.0.self_attn.q_proj").update(shape=[8, 32]), "q projection has 8 outputs, expected"),
    (lambda b: b["graph"]["nodes"][2]["attrs"].update(n_heads="2"), "attribute n_heads='2': must be an integer from 1 to 1024"),
    (lambda b: tensor(b, "layers.1.mlp.gate").update(shape=[3, 16], data=b"\0" * 192), "e_score_correction_bias' has shape \\[4\\], the moe op needs \\[3\\]"),
    (lambda b: tensor(b, "layers.0.self_attn.w_uk").update(shape=[2, 2, 8]), r"= 2, 4, 4 must match the shape \[2, 2, 8\]"),
    (lambda b: tensor(b, "layers.0.self_attn.kv_a_layernorm").update(shape=[2, 2]), r"kv_a_layernorm' has shape \[2, 2\], the mla"),
    # once escaped as IndexError or TypeError: a 0-d router, a node with too few inputs, an unhashable output
    (lambda b: tensor(b, "layers.1.mlp.gate").update(shape=[], data=b"\0" * 4), "shape must be a list of at least 1"),
    (lambda b: b["graph"]["nodes"][14].update(inputs=[]), r"node 14: \(lm_head\) takes 1 input\(s\) \(x\), got 0"),
    (lambda b: b["graph"]["nodes"][3]["inputs"].pop(), r"node 3: \(add\) takes 2 input\(s\) \(a, b\), got 1"),
    (lambda b: b["graph"].update(outputs=[["logits"]]), "outputs must name one value the nodes define"),
])
def test_body(edit, message):
    outer, body = split()
    edit(body)
    expect(rebuild(outer, body), message)


def test_truncation_at_every_offset_of_the_header_and_a_sweep_of_the_rest():
    offsets = list(range(0, 200)) + list(np.linspace(200, len(VALID) - 1, 300).astype(int))
    for n in offsets:
        with pytest.raises(ModelFormatError):
            load_bytes(VALID[:n])
    with pytest.raises(ModelFormatError, match="not a valid msgpack document"):
        load_bytes(VALID + b"\x00")                       # trailing bytes


def test_bit_flips_are_caught():
    rng = np.random.default_rng(0)
    for pos in rng.integers(0, len(VALID), 300):
        data = bytearray(VALID)
        data[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(ModelFormatError):
            load_bytes(bytes(data))


def test_deeply_nested_and_huge_declared_containers():
    nested = b"\x81\xa1a" + b"\x91" * 100000 + b"\xc0"                            # {"a": [[[[...]]]]} 100k deep
    expect(nested, "nesting is too deep")
    expect(b"\xdf\xff\xff\xff\xff", "not a valid msgpack document")             # map of 4G items, 5 bytes
    expect(b"\x81\xa1a\xc6\xff\xff\xff\xf0", "not a valid msgpack document")   # 4 GB bin that is not there
    outer, body = split()
    body["provenance"] = {"deep": [[[[[[[[[[[[[[]]]]]]]]]]]]]]}                 # nesting inside a valid document is fine
    load_bytes(rebuild(outer, body))


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.msgpack"
    path.write_bytes(VALID)
    monkeypatch.setattr(fileformat, "MAX_FILE_BYTES", len(VALID) - 1)
    with pytest.raises(ModelFormatError, match="more than the limit"):
        read_document(str(path))
    with pytest.raises(ModelFormatError, match="cannot read model file"):
        read_document(str(tmp_path / "missing.msgpack"))


def test_loading_allocates_a_small_multiple_of_the_file():
    tracemalloc.start()
    load_bytes(VALID)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    model_floats = 4 * sum(int(np.prod(t["shape"])) for t in split()[1]["tensors"])
    caches = 4 * 2 * CFG.max_position_embeddings * (CFG.kv_lora_rank + CFG.qk_rope_head_dim)
    assert peak < 4 * len(VALID) + 3 * model_floats + caches + 2_000_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(VALID)))
def test_fuzzed_files_raise_only_model_format_error(edits, cut):
    data = bytearray(VALID[:max(cut, 1)])
    for pos, byte in edits:
        if pos < len(data):
            data[pos] = byte
    try:
        load_bytes(bytes(data))
    except ModelFormatError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.floats() | st.text(max_size=5) | st.binary(max_size=5),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
                    max_leaves=20))
def test_fuzzed_bodies_raise_only_model_format_error(junk):
    outer, body = split()
    key = sorted(body)[hash(repr(junk)) % len(body)]
    body[key] = junk
    try:
        load_bytes(rebuild(outer, body))
    except ModelFormatError:
        pass


@pytest.mark.parametrize("edit, message", [
    (lambda b: b["graph"].update(nodes=b["graph"]["nodes"][:1], outputs=["embedding0"]), "the graph must start with embedding"),
    (lambda b: b["graph"]["nodes"][2].update(inputs=["tokens"]), "does not execute on one token"),
])
def test_graphs_that_load_but_cannot_run(edit, message):
    outer, body = split()
    edit(body)
    expect(rebuild(outer, body), message)


CFG_MTP = small_student(**{**vars(CFG), "num_nextn_predict_layers": 1})
VALID_MTP, _, _ = compile_model(random_params(CFG_MTP), CFG_MTP, Tokenizer(), quant="int8")


@pytest.mark.parametrize("edit, message", [
    (lambda b: b["graph"]["mtp"].update(inputs=["ghost", "next_tokens"]),
     r"inputs must be \[a main-graph value, 'next_tokens'\]"),
    (lambda b: b["graph"]["mtp"]["nodes"][3].update(op="conv2d"), "mtp: node 3: unknown op 'conv2d'"),
    (lambda b: b["graph"]["mtp"]["nodes"][3]["attrs"].update(weight="ghost"), "mtp: node 3: .* names tensor 'ghost'"),
    (lambda b: b["graph"]["mtp"]["nodes"][5].update(outputs=["add0"]), "output 'add0' is defined twice"),
    (lambda b: b["graph"]["mtp"].update(outputs=["add0"]), "mtp: outputs must name one value the nodes define"),
    (lambda b: b["graph"]["mtp"]["nodes"][3]["attrs"].update(weight="embed_tokens"), "the MTP graph does not execute on one token"),
])
def test_mtp_draft_subgraph(edit, message):
    outer, body = split(VALID_MTP)
    edit(body)
    expect(rebuild(outer, body), message)


def test_opset_1_files_have_no_mtp_and_no_linear():
    assert load_bytes(VALID_MTP).has_mtp and not load_bytes(VALID).has_mtp
    outer, body = split(VALID_MTP)
    expect(rebuild(dict(outer, opset_version=1), body), "unknown key 'mtp'")
    body["graph"]["nodes"] = body["graph"]["mtp"]["nodes"][3:4]       # a lone linear node
    body["graph"].pop("mtp")
    expect(rebuild(dict(outer, opset_version=1), body), "unknown op 'linear'; opset 1 has")


# ---- every node attribute in its range (the graph contract, runtime/opset.py OPS), checked by read_document itself
MLA, MOE, NORM = 2, 11, 1                                   # node indices in VALID


def attrs_set(i, **changes):
    def edit(b):
        a = b["graph"]["nodes"][i]["attrs"]
        for k, v in changes.items():
            a.pop(k) if v is DROP else a.update({k: v})
    return edit


DROP = object()
FLOAT = r"must be a number in "


@pytest.mark.parametrize("edit, message", [
    (attrs_set(MLA, max_positions=10 ** 6), r"node 2: \(mla_attention\) attribute max_positions=1000000: must be an integer from 1 to 8192"),
    (attrs_set(MLA, max_positions=0), r"max_positions=0: must be an integer from 1 to 8192"),
    (attrs_set(MLA, max_positions=16.0), r"max_positions=16.0: must be an integer"),
    (attrs_set(MLA, rope_theta=0.0), r"attribute rope_theta=0.0: " + FLOAT + r"\(1, 1e\+09\]"),
    (attrs_set(MLA, rope_theta=1.0), r"rope_theta=1.0: " + FLOAT),
    (attrs_set(MLA, rope_theta=float("nan")), r"rope_theta=nan: " + FLOAT),
    (attrs_set(MLA, rope_theta=float("inf")), r"rope_theta=inf: " + FLOAT),
    (attrs_set(MLA, rope_theta=10000), r"rope_theta=10000: " + FLOAT),
    (attrs_set(MLA, eps=0.0), r"\(mla_attention\) attribute eps=0.0: " + FLOAT + r"\(0, 1\)"),
    (attrs_set(NORM, eps=-1e-6), r"node 1: \(rmsnorm\) attribute eps=-1e-06: " + FLOAT + r"\(0, 1\)"),
    (attrs_set(NORM, eps=float("nan")), r"eps=nan: " + FLOAT),
    (attrs_set(NORM, eps=1.0), r"eps=1.0: " + FLOAT),
    (attrs_set(MLA, n_heads=0), r"n_heads=0: must be an integer from 1 to 1024"),
    (attrs_set(MLA, n_heads=True), r"n_heads=True: must be an integer"),
    (attrs_set(MLA, qk_rope_head_dim=3), r"qk_rope_head_dim=3: must be an integer from 2 to 1024, a multiple of 2"),
    (attrs_set(MLA, kv_lora_rank=-4), r"kv_lora_rank=-4: must be an integer from 1 to 8192"),
    (attrs_set(MLA, v_head_dim=0), r"v_head_dim=0: must be an integer from 1 to 1024"),
    (attrs_set(MLA, layer=-1), r"layer=-1: must be an integer from 0 to 4096"),
    (attrs_set(MLA, rope_theta=DROP), r"\(mla_attention\) attribute rope_theta is missing"),
    (attrs_set(MLA, alpha=1.0), r"\(mla_attention\) attribute 'alpha' is unknown; mla_attention has: layer, n_heads"),
    (attrs_set(3, weight="embed_tokens"), r"\(add\) attribute 'weight' is unknown; add has: none"),
    (attrs_set(MLA, w_q_a="embed_tokens"), r"has the optional tensors w_q, w_q_a; it needs exactly one of: "
                                          r"w_q \| w_q_a, w_q_a_norm, w_q_b"),
    (attrs_set(MLA, w_q=DROP), r"has the optional tensors none; it needs exactly one of"),
    (attrs_set(MOE, w_shared_up=DROP), r"\(moe\) has the optional tensors w_shared_gate, w_shared_down; it needs "
                                       r"exactly one of: none \| w_shared_gate, w_shared_up, w_shared_down"),
    (attrs_set(MOE, top_k=5), r"node 11: \(moe\) top_k=5, n_group=1, topk_group=1 do not fit the 4 experts of "
                              r"w_router: .* top_k <= topk_group x 4 / n_group"),
    (attrs_set(MOE, top_k=0), r"top_k=0: must be an integer from 1 to 1024"),
    (attrs_set(MOE, top_k=-3), r"top_k=-3: must be an integer from 1 to 1024"),
    (attrs_set(MOE, n_group=3), r"n_group=3, topk_group=1 do not fit the 4 experts of w_router: n_group must divide 4"),
    (attrs_set(MOE, topk_group=2), r"topk_group=2 do not fit"),
    (attrs_set(MOE, n_group=2, topk_group=1, top_k=3), r"top_k=3, n_group=2, topk_group=1 do not fit"),
    (attrs_set(MOE, routed_scaling_factor=0.0), r"routed_scaling_factor=0.0: " + FLOAT + r"\(0, 1000\]"),
    (attrs_set(MOE, routed_scaling_factor=float("nan")), r"routed_scaling_factor=nan: " + FLOAT),
    (attrs_set(MOE, routed_scaling_factor=-1.0), r"routed_scaling_factor=-1.0: " + FLOAT),
    (attrs_set(MOE, norm_topk_prob=1), r"norm_topk_prob=1: must be true or false"),
    (lambda b: b["generation"].update(max_new_tokens=0), r"generation: max_new_tokens=0: must be an integer >= 1"),
    (lambda b: b["generation"].update(max_new_tokens="9"), r"generation: max_new_tokens='9': must be an integer"),
    (lambda b: b["generation"].update(temperature=float("nan")), r"generation: temperature=nan: must be a finite number >= 0"),
    (lambda b: b["generation"].update(top_k=1000), r"generation: top_k=1000: must be an integer from 1 to 103"),
    (lambda b: b["generation"].update(top_p=0.0), r"generation: top_p=0.0: must be a number in \(0, 1\]"),
    (lambda b: b["generation"].update(stop="</answer>"), r"generation: stop='</answer>': must be a list of strings"),
    (lambda b: b["generation"].update(beam=4), r"generation: unknown key 'beam'; expected max_new_tokens, temperature"),
])
def test_attribute_ranges(edit, message, tmp_path):
    outer, body = split()
    edit(body)
    path = tmp_path / "m.msgpack"
    path.write_bytes(rebuild(outer, body))
    with pytest.raises(ModelFormatError, match=f"^{path}: (graph|generation)") as e:   # read_document: inspect, export
        read_document(str(path))
    assert re.search(message, str(e.value)), str(e.value)
    assert "\n" not in str(e.value)


def test_the_same_attribute_checks_in_the_mtp_graph():
    outer, body = split(VALID_MTP)
    mla = next(n for n in body["graph"]["mtp"]["nodes"] if n["op"] == "mla_attention")
    mla["attrs"]["rope_theta"] = 0.0
    expect(rebuild(outer, body), r"graph: mtp: node 7: \(mla_attention\) attribute rope_theta=0.0: must be a number in \(1, 1e\+09\]")


def with_positions(S, data=VALID):
    outer, body = split(data)
    for g in (body["graph"], body["graph"].get("mtp", {"nodes": []})):
        for n in g["nodes"]:
            if n["op"] == "mla_attention":
                n["attrs"]["max_positions"] = S
    return rebuild(outer, body)


def test_the_state_that_max_positions_implies_is_bounded_by_the_file_size(monkeypatch):
    # 8192 positions (in range) in a 17 kB file would need 0.6 GB of attention state, most of it the (S, S) mask
    with pytest.raises(ModelFormatError, match=r"^model: graph: max_positions=8192 would need 606.1 MB of attention "
                       r"state \(latent caches 0.6 MB, RoPE tables 1.6 MB, causal mask 604.0 MB\); a 1\d,\d\d\d-byte "
                       r"file may use at most 67.\d MB \(64 MiB \+ 4 x its size\): this model fits "
                       r"max_positions <= 27\d\d$"):
        load_bytes(with_positions(8192))
    monkeypatch.setattr(opset, "STATE_BYTES_BASE", 1 << 20)         # a tight budget: find the edge exactly
    with pytest.raises(ModelFormatError, match=r"this model fits max_positions <= (\d+)") as e:
        load_bytes(with_positions(1000))
    edge = int(re.search(r"<= (\d+)", str(e.value)).group(1))
    assert 200 < edge < 1000
    assert load_bytes(with_positions(edge)).max_positions == edge
    with pytest.raises(ModelFormatError, match=f"max_positions={edge + 1} would need"):
        load_bytes(with_positions(edge + 1))


@pytest.mark.parametrize("S", [10 ** 6, 20_000, 8192])
def test_hostile_max_positions_is_refused_before_anything_is_allocated(S):
    data = with_positions(S, VALID_MTP)
    tracemalloc.start()
    with pytest.raises(ModelFormatError, match=f"max_positions={S}"):
        load_bytes(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * len(data) + 1_000_000                    # before the fix: 20,000 took 3.5 GB, 10^6 MemoryError


def test_inspect_and_export_read_through_the_same_checks(tmp_path):
    from click.testing import CliRunner
    from export.common import load_compiled
    from tinyr1.cli import main
    path = tmp_path / "m.msgpack"
    path.write_bytes(with_positions(20_000))
    r = CliRunner().invoke(main, ["inspect", str(path)])
    assert r.exit_code == 1 and f"Error: {path}: graph: node 2: (mla_attention) attribute max_positions=20000: " \
                                f"must be an integer from 1 to 8192\n" == r.output
    with pytest.raises(ModelFormatError, match="max_positions=20000: must be an integer from 1 to 8192"):
        load_compiled(str(path))                                # tinyr1 export's reader


# ---- files that are not tinyr1 models say what they look like
def _zip():
    import io
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros(3))
    return buf.getvalue()


def _safetensors():
    header = b'{"__metadata__": {}}'
    return len(header).to_bytes(8, "little") + header


ELSEWHERE = r"tinyr1 exports this format \(`tinyr1 export`\) but runs only its own .msgpack model files"


@pytest.mark.parametrize("data, what", [
    (b"", "it is empty \\(0 bytes\\)"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "it looks like a PNG image$"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 100, "it looks like a JPEG image$"),
    (b"GGUF\x03\x00\x00\x00" + b"\0" * 100, "it looks like a GGUF model \\(llama.cpp\\); " + ELSEWHERE),
    (b"\x1c\x00\x00\x00TFL3" + b"\0" * 100, "it looks like a TensorFlow Lite model; " + ELSEWHERE),
    (b"\x08\x0a\x12\x06tinyr1:\x03", "it looks like an ONNX model \\(protobuf\\); " + ELSEWHERE),
    (_zip(), "it looks like a ZIP archive \\(a NumPy .npz, a PyTorch .pt, ...\\); compile a checkpoint"),
    (__import__("gzip").compress(b"x", mtime=0), "it looks like gzip-compressed data"),   # mtime=0: one id in all workers
    (b"\x7fELF\x02\x01\x01\x00" + b"\0" * 100, "it looks like an ELF executable"),
    (__import__("pickle").dumps({"a": 1}), "it looks like a Python pickle"),
    (_safetensors(), "it looks like a safetensors file \\(Hugging Face weights\\)"),
    (b'{"hidden_size": 128}', "it looks like a JSON document \\(it starts '{\"hidden_size\": 128}'\\)"),
    (b"board: pi5\nmodel: x.msgpack\n", "it looks like a text file \\(it starts 'board: pi5'\\)"),
    (b"\x01\x02\x03\x04\x05", "it does not start with a msgpack map \\(first bytes: 01 02 03 04 05\\)"),
])
def test_files_that_are_not_tinyr1_models(data, what, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    with pytest.raises(ModelFormatError, match=f"^{path} is not a tinyr1 model: {what}"):
        read_document(str(path))


def test_run_names_what_a_wrong_file_is(tmp_path):
    from click.testing import CliRunner
    from tinyr1.cli import main
    path = tmp_path / "student.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\0" * 100)
    r = CliRunner().invoke(main, ["run", str(path), "--prompt", "What is 1+1?"])
    assert r.exit_code == 1 and r.output.startswith(f"Error: {path} is not a tinyr1 model: it looks like a GGUF")
    assert r.output.count("\n") == 1 and "Traceback" not in r.output
