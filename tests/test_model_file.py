"""Hostile and corrupt model files: every one raises ModelFormatError naming the problem, and only that.

Broken files are built byte by byte (a minimal valid file still loads), plus a hypothesis fuzzer."""
import hashlib
import tracemalloc

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compiler.compile import compile_model
from conftest import random_params, small_student
from runtime import ModelFormatError, format as F
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
    (lambda b: b["graph"]["nodes"][2]["attrs"].update(n_heads=3), "q projection has .* outputs, expected"),
    (lambda b: b["graph"]["nodes"][2]["attrs"].update(n_heads="2"), "attribute n_heads='2' must be int"),
    (lambda b: tensor(b, "layers.1.mlp.gate").update(shape=[3, 16], data=b"\0" * 192), "e_score_correction_bias' has shape \\[4\\], the moe op needs \\[3\\]"),
    (lambda b: tensor(b, "layers.0.self_attn.w_uk").update(shape=[2, 2, 8]), "has shape \\[2, 2, 8\\], the mla_attention op needs"),
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
    nested = b"\x91" * 100000 + b"\xc0"                                          # [[[[...]]]] 100k deep
    expect(nested, "nesting is too deep")
    expect(b"\xdd\xff\xff\xff\xff", "not a valid msgpack document")             # array of 4G items, 5 bytes
    expect(b"\xc6\xff\xff\xff\xf0", "not a valid msgpack document")             # 4 GB bin that is not there
    outer, body = split()
    body["provenance"] = {"deep": [[[[[[[[[[[[[[]]]]]]]]]]]]]]}                 # nesting inside a valid document is fine
    load_bytes(rebuild(outer, body))


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.msgpack"
    path.write_bytes(VALID)
    monkeypatch.setattr(F, "MAX_FILE_BYTES", len(VALID) - 1)
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
