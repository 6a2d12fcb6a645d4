"""runtime/opset.py, the graph contract: every backend implements every op of it, a backend that lacks
one says so naming the op, lint and the loader report the same problems, and "this attribute names a
tensor" is answered in one place."""
import hashlib
import os
import re

import msgpack
import pytest

from compiler.compile import compile_model
from compiler.errors import CompileError
from compiler.ir import FIXES, Graph
from conftest import ROOT, random_params, small_student
from export import gguf_export, onnx_export, tflite_export
from export.common import load_compiled
from export.errors import ExportError
from runtime import ops as runtime_ops, opset
from runtime.errors import ModelFormatError
from runtime.loader import parse_document
from runtime.tokenizer import Tokenizer

CFG = small_student(hidden_size=16, intermediate_size=16, moe_intermediate_size=8, num_hidden_layers=2,
                    num_attention_heads=2, kv_lora_rank=4, qk_nope_head_dim=4, qk_rope_head_dim=4, v_head_dim=4,
                    max_position_embeddings=16)
VALID = compile_model(random_params(CFG), CFG, Tokenizer(), quant="int8")[0]
CONTRACT = list(opset.OPS)


def split(data=VALID):
    outer = msgpack.unpackb(data, raw=False)
    return outer, msgpack.unpackb(outer["payload"], raw=False)


def rebuild(outer, body):
    payload = msgpack.packb(body, use_bin_type=True)
    return msgpack.packb(dict(outer, payload=payload, sha256=hashlib.sha256(payload).digest()), use_bin_type=True)


# ---- every backend implements every op of the contract
def test_every_backend_implements_every_op_of_the_contract():
    assert list(runtime_ops.OPS) == CONTRACT
    assert list(onnx_export.LOWERINGS) == CONTRACT
    assert list(tflite_export.LOWERINGS) == CONTRACT
    # llama.cpp's deepseek2 graph is fixed: gguf lowers the ops it has and says why it leaves the others out
    assert sorted([*gguf_export.LOWERS, *gguf_export.ABSENT]) == sorted(CONTRACT)
    assert set(gguf_export.LOWERS).isdisjoint(gguf_export.ABSENT) and set(gguf_export.ABSENT) == {"linear"}


def test_the_format_doc_and_lint_cover_the_contract():
    doc = open(os.path.join(ROOT, "docs", "FORMAT.md")).read()
    assert all(f"| `{op}` |" in doc for op in CONTRACT)
    assert list(FIXES) == list(opset.KINDS)              # lint says how to fix every kind of problem


SCALE = opset.Op(("x",), {"alpha": opset.Range(float, 0.0, 10.0)})          # y = alpha x, say


def with_scale_op(monkeypatch, tmp_path):
    """A contract that knows one more op, `scale`, and a model file that uses it after the embedding:
    the loader accepts it, and no backend has it."""
    monkeypatch.setitem(opset.OPS, "scale", SCALE)
    outer, body = split()
    nodes = body["graph"]["nodes"]
    nodes.insert(1, {"op": "scale", "inputs": ["embedding0"], "outputs": ["scale0"], "attrs": {"alpha": 2.0}})
    nodes[2]["inputs"] = ["scale0"]
    path = tmp_path / "scale.msgpack"
    path.write_bytes(rebuild(outer, body))
    assert [n["op"] for n in parse_document(path.read_bytes())["graph"]["nodes"][:2]] == ["embedding", "scale"]
    return str(path)


LOWERS = "embedding, rmsnorm, mla_attention, swiglu_mlp, moe, add, linear, lm_head"


def without(table, op):
    """A backend's table that lacks `op` (a copy: the real one keeps its order for the other tests)."""
    return {k: v for k, v in table.items() if k != op}


def test_the_runtime_names_an_op_it_lacks(monkeypatch, tmp_path):
    body = parse_document(open(with_scale_op(monkeypatch, tmp_path), "rb").read())
    with pytest.raises(ModelFormatError, match=f"^the runtime has no kernel for op 'scale'; it runs: {LOWERS}$"):
        [runtime_ops.op_class(n["op"]) for n in body["graph"]["nodes"]]
    monkeypatch.setattr(runtime_ops, "OPS", without(runtime_ops.OPS, "add"))
    with pytest.raises(ModelFormatError, match="no kernel for op 'add'; it runs: embedding, .*, linear, lm_head$"):
        runtime_ops.op_class("add")


@pytest.mark.parametrize("backend", ["onnx", "tflite", "gguf"])
def test_an_exporter_names_an_op_it_lacks(backend, monkeypatch, tmp_path):
    pytest.importorskip({"onnx": "onnx", "tflite": "ai_edge_litert", "gguf": "numpy"}[backend])
    path = with_scale_op(monkeypatch, tmp_path)
    message = f"{path}: node scale0: the {backend} exporter has no lowering for op 'scale'; it lowers: "
    with pytest.raises(ExportError) as e:
        if backend == "onnx":
            onnx_export.export(path, str(tmp_path / "onnx"), weights="float32")
        elif backend == "tflite":
            tflite_export.export(path, str(tmp_path / "m.tflite"), seq_len=4)
        else:
            gguf_export.model_layout(load_compiled(path))        # checked before any call of the gguf package
    assert str(e.value).startswith(message), str(e.value)
    assert str(e.value).split("it lowers: ")[1].split(", ") == [op for op in CONTRACT if op != "linear" or
                                                                backend != "gguf"]


def test_an_exporter_table_without_an_op_fails_naming_it(monkeypatch, tmp_path):
    pytest.importorskip("onnx")
    path = tmp_path / "m.msgpack"
    path.write_bytes(VALID)
    monkeypatch.setattr(onnx_export, "LOWERINGS", without(onnx_export.LOWERINGS, "moe"))
    with pytest.raises(ExportError, match=r"node moe0: the onnx exporter has no lowering for op 'moe'; it lowers: "
                                          r"embedding, rmsnorm, mla_attention, swiglu_mlp, add, linear, lm_head$"):
        onnx_export.export(str(path), str(tmp_path / "onnx"))
    linear = {"op": "linear", "outputs": ["x"]}
    with pytest.raises(ExportError, match=r"no lowering for op 'linear' \(deepseek2 has no free projection; .*\); "
                                          r"it lowers: embedding, "):
        gguf_export.lowering(gguf_export.LOWERS, linear, "gguf", "m", gguf_export.ABSENT)


# ---- one check: lint says what the loader says, plus how to fix it
MLA, MOE = 2, 11


def set_attrs(i, **changes):
    return lambda g: g["nodes"][i]["attrs"].update(changes)


@pytest.mark.parametrize("edit", [
    set_attrs(MLA, n_heads=3), set_attrs(MLA, rope_theta=0.0), set_attrs(MLA, alpha=1.0), set_attrs(MOE, top_k=5),
    set_attrs(1, weight="ghost"), set_attrs(MLA, w_q_a="embed_tokens"), set_attrs(MOE, norm_topk_prob=1),
    lambda g: g["nodes"][1].update(op="conv2d"), lambda g: g["nodes"][1].update(inputs=["nowhere"]),
    lambda g: g["nodes"][3].update(inputs=g["nodes"][3]["inputs"][:1]), lambda g: g.update(outputs=["ghost"]),
    lambda g: g["nodes"][MLA]["attrs"].pop("max_positions"),
])
def test_lint_and_the_loader_report_the_same_problem(edit):
    outer, body = split()
    arrays = parse_document(VALID)["arrays"]
    edit(body["graph"])
    with pytest.raises(ModelFormatError) as e:
        parse_document(rebuild(outer, body))
    loader = str(e.value).removeprefix("model: graph: ")
    first = Graph.from_dict(body["graph"]).lint(arrays)[0]
    assert first.startswith(loader + "; ") and len(first) > len(loader) + 10, (first, loader)


def test_a_valid_graph_lints_clean_and_lint_lists_every_problem():
    _, body = split()
    arrays = parse_document(VALID)["arrays"]
    assert Graph.from_dict(body["graph"]).lint(arrays) == []
    for i in (MLA, MOE):
        body["graph"]["nodes"][i]["attrs"].update(rope_theta=0.0, eps=2.0)
    problems = Graph.from_dict(body["graph"]).lint(arrays)
    assert [p.split(":")[0] for p in problems] == ["node 2", "node 2", "node 11", "node 11"]
    assert "(moe) attribute 'rope_theta' is unknown" in problems[2]


def test_the_compiler_refuses_a_graph_the_loader_would_refuse():
    cfg = small_student(max_position_embeddings=8192)
    with pytest.raises(CompileError, match=r"^graph: max_positions=8192 would need .* this model fits "
                                           r"max_positions <= \d+; lower max_position_embeddings"):
        compile_model(random_params(cfg), cfg, Tokenizer(), quant="int8")


# ---- which attributes name tensors: the contract says, and nobody else spells the rule
def test_tensor_attrs_are_the_contracts_tensors_in_the_nodes_order():
    _, body = split()
    mla = body["graph"]["nodes"][MLA]
    names = opset.tensor_attrs("mla_attention", mla["attrs"])
    assert list(names) == ["w_kv_a", "w_kv_a_norm", "w_o", "w_q", "w_uk", "w_uv"]         # as passes.py set them
    assert names["w_uk"] == "layers.0.self_attn.w_uk"
    assert opset.tensor_attrs("add", {}) == {}
    with pytest.raises(ModelFormatError, match="op 'conv2d' is not in opset 2; it has: embedding, rmsnorm"):
        opset.tensor_attrs("conv2d", {"weight": "x"})


def test_no_module_spells_the_tensor_naming_rule():
    rule = re.compile(r"""startswith\(["']w_["']\)|==\s*["']weight["']|endswith\(["']weight["']\)""")
    found = []
    for part in ("compiler", "runtime", "export", "tests"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, part)):
            for f in files:
                path = os.path.join(dirpath, f)
                if f.endswith(".py") and path != os.path.abspath(__file__):
                    found += [f"{path}:{i}" for i, line in enumerate(open(path), 1) if rule.search(line)]
    assert found == []


def test_a_model_with_an_op_the_runtime_lacks_fails_naming_it(monkeypatch, tmp_path):
    from runtime.model import load
    path = with_scale_op(monkeypatch, tmp_path)
    with pytest.raises(ModelFormatError, match=f"^{path}: graph node 1: the runtime has no kernel for op 'scale'; "
                                               f"it runs: {LOWERS}$"):
        load(path)


# ---- one weight, three names: runtime/opset.py WEIGHTS says them side by side
NAMED = {"plain q, MTP": dict(num_nextn_predict_layers=1),
         "q LoRA, tied head, MTP": dict(num_nextn_predict_layers=1, q_lora_rank=6, tie_word_embeddings=True)}


def expand(w, cfg):
    """The names w.hf stands for in a model of cfg: per layer, and in the MTP module's block."""
    if "{i}" not in w.hf:
        return [w.hf]
    mtp = [w.hf.replace("layers.{i}", opset.MTP_BLOCK)] if cfg.num_nextn_predict_layers else []
    return [w.hf.format(i=i) for i in range(cfg.num_hidden_layers)] + mtp


def test_every_tensor_attribute_of_the_contract_has_its_three_names():
    contract = {(op, k) for op, spec in opset.OPS.items() for k, rule in spec.attrs.items()
                if isinstance(rule, opset.Tensor)}
    assert {(w.op, w.attr) for w in opset.WEIGHTS} == contract
    assert len({(w.op, w.attr, w.hf) for w in opset.WEIGHTS}) == len(opset.WEIGHTS)
    assert opset.weight("moe", "w_router").gguf == "blk.{i}.ffn_gate_inp.weight"
    with pytest.raises(ValueError, match=r"rmsnorm.weight names 6 weights .* pass hf, one of \['layers.\{i}"):
        opset.weight("rmsnorm", "weight")


def test_the_tables_hf_names_are_the_trainers_parameters():
    from trainer.model import init_params
    used = set()
    for over in NAMED.values():
        cfg = small_student(**over)
        params = init_params(cfg, 0)
        assert sorted(set(params) - {name for w in opset.WEIGHTS for name in expand(w, cfg)}) == []
        used |= {w for w in opset.WEIGHTS if set(expand(w, cfg)) & set(params)}
    assert sorted(set(opset.WEIGHTS) - used, key=str) == []          # every row names a real parameter


@pytest.mark.parametrize("case", NAMED)
def test_the_compiler_names_each_tensor_by_the_tables_hf_name(case):
    cfg = small_student(**NAMED[case])
    graph = split(compile_model(random_params(cfg), cfg, Tokenizer())[0])[1]["graph"]
    for node in graph["nodes"] + graph["mtp"]["nodes"]:
        for k, name in opset.tensor_attrs(node["op"], node["attrs"]).items():
            allowed = {n for w in opset.WEIGHTS if (w.op, w.attr) == (node["op"], k) for n in expand(w, cfg)}
            if k in ("w_uk", "w_uv"):                       # absorbed from kv_b_proj (the table's note)
                allowed = {n.replace("kv_b_proj", k) for n in allowed}
            if node["op"] == "linear":                      # MTP's eh_proj, split in its e and h columns
                allowed = {n + part for n in allowed for part in (".e", ".h")}
            if node["op"] == "lm_head" and cfg.tie_word_embeddings:
                allowed = {"embed_tokens"}
            assert name in allowed, (node["op"], k)


@pytest.mark.parametrize("case", NAMED)
def test_the_tables_gguf_names_are_what_the_export_writes(case, tmp_path):
    gguf = pytest.importorskip("gguf")
    from conftest import write_compiled
    cfg = small_student(**NAMED[case])                      # with shared experts: none would write zeros
    params = random_params(cfg)
    path = write_compiled(tmp_path / "model.msgpack", cfg, "int8")
    gguf_export.export(path, str(tmp_path / "model.gguf"))
    want = set()
    for w in opset.WEIGHTS:
        names = w.gguf if isinstance(w.gguf, tuple) else (w.gguf,) if w.gguf else ()
        layers = range(cfg.num_hidden_layers) if "{i}" in w.hf else [None]
        want |= {n.format(i=i) for i in layers if w.hf.format(i=i) in params for n in names}
    assert sorted(t.name for t in gguf.GGUFReader(str(tmp_path / "model.gguf")).tensors) == sorted(want)
