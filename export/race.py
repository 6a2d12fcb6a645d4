"""`tinyr1 bench MODEL --peers llama.cpp,onnxruntime,litert`: our runtime against independent runtimes
on the same weights, one thread each, engines measured alternately in one run.

The model is exported once (GGUF Q8_0 for llama.cpp, ONNX float32 for onnxruntime, its fastest weights
here, TFLite float32 prefill for LiteRT). Each measurement is a fresh Python process with every thread
pool pinned to one thread: it imports its engine and loads the model (load time, after Python starts),
then for each seed question prefills the prompt (first-token latency = prefill + argmax) and decodes
greedily exactly as many tokens as our runtime generates for that question, so every engine does the
same work. Peak RSS is the process's. LiteRT runs a fixed-length prefill graph only: no decode figure.
Rounds alternate engines; each engine's best round is reported. A peer that crashes (llama.cpp built for
another CPU dies with SIGILL) is reported as such in its row, and the other engines are still measured.
The result names the CPU and the llama.cpp build it raced (llama.cpp's own system-info line).

The fresh process is `python -m export.race --child ENGINE PATH JOBS` (`child` below). This module imports
only the standard library and runtime/speed.py at the top, so numpy, the engine and the model are imported
after the child's clock starts, as they are in a real program's first seconds.

One of three benchmarks, one per stage (runtime/speed.py says why): this one needs the exporters and the
peers, so it lives with them on the host.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import runtime
from export import exporter
from runtime.speed import ONE_THREAD, QUESTIONS, cpu_name, peak_rss_mb

PEERS = ("llama.cpp", "onnxruntime", "litert")


def child(engine, path, jobs):
    """One measurement, in the fresh process: open the engine (load time), then per job prefill the prompt
    (first token = prefill + argmax) and decode n_gen - 1 greedy tokens -> prints {load_s, rows, peak_rss_mb,
    build} as JSON on the last line of stdout."""
    t0 = time.perf_counter()
    prefill, step, speculative = open_engine(engine, path)
    load_s = time.perf_counter() - t0
    build = engine_build(engine)
    import numpy as np                            # imported by open_engine already: no time left in it here
    rows = []
    for ids, n_gen in jobs:
        t = time.perf_counter()
        if speculative is not None:               # our runtime with the MTP draft head: its own loop
            first, decode_s, n = speculative(ids, n_gen)
            rows.append({"prompt": len(ids), "first_s": first, "decode_s": decode_s, "decoded": n})
            continue
        tok = int(np.argmax(prefill(ids)))
        first = time.perf_counter() - t
        t = time.perf_counter()
        n = 0
        if step is not None:
            for _ in range(n_gen - 1):
                tok = int(np.argmax(step(tok)))
                n += 1
        rows.append({"prompt": len(ids), "first_s": first, "decode_s": time.perf_counter() - t, "decoded": n})
    print(json.dumps({"load_s": load_s, "rows": rows, "peak_rss_mb": peak_rss_mb(), "build": build}))


def open_engine(engine, path):
    """-> (prefill(ids) -> last logits, step(token) -> logits or None, speculative or None)."""
    if engine in ("tinyr1", "tinyr1+mtp"):
        m = runtime.load(path)

        def prefill(ids):
            m.reset()
            return m.forward(ids)[-1]
        if engine == "tinyr1":
            return prefill, m.step, None
        return prefill, None, lambda ids, n_gen: _speculative(m, ids, n_gen)
    if engine not in PEERS:
        raise ValueError(f"unknown engine {engine!r}; engines: tinyr1, tinyr1+mtp, {', '.join(PEERS)}")
    from export.isolated import open_runner        # here, not at the top: it imports numpy (see the docstring)
    r = open_runner(engine, path, threads=1)       # this is already a child process of the benchmark
    return r.prefill, getattr(r, "step", None), None


def engine_build(engine):
    """What was raced: the package version and, for llama.cpp, its system-info line (the instruction
    sets its ggml was compiled for)."""
    if engine == "llama.cpp":
        import llama_cpp
        return f"llama-cpp-python {llama_cpp.__version__}: {llama_cpp.llama_print_system_info().decode().strip()}"
    if engine == "onnxruntime":
        import onnxruntime
        return f"onnxruntime {onnxruntime.__version__}"
    if engine == "litert":
        from importlib.metadata import version
        return f"ai-edge-litert {version('ai-edge-litert')}"
    import numpy
    return f"numpy {numpy.__version__}"


def _speculative(model, ids, n_gen):
    """Greedy decoding with MTP drafts for exactly n_gen tokens -> (first-token s, decode s, tokens decoded)."""
    from runtime.generate import speculative_tokens      # imported after the child's clock starts (numpy)
    model.reset()
    counts = {"drafted": 0, "accepted": 0}
    t0 = time.perf_counter()
    source = speculative_tokens(model, ids, counts)
    next(source)
    t1 = time.perf_counter()
    n = 0
    for _ in range(n_gen - 1):
        next(source)
        n += 1
    source.close()
    return t1 - t0, time.perf_counter() - t1, n


def export_for(engine, model_path, workdir, seq_len):
    """The file each engine reads, exported into workdir."""
    if engine.startswith("tinyr1"):
        return model_path
    fmt, weights, name = {"llama.cpp": ("gguf", "int8", "model.gguf"), "onnxruntime": ("onnx", "float32", "onnx"),
                          "litert": ("tflite", "float32", "model.tflite")}[engine]
    out = os.path.join(workdir, name)
    kw = {"seq_len": seq_len} if fmt == "tflite" else {}
    exporter(fmt).export(model_path, out, weights=weights, **kw)
    return out


def jobs_for(model_path, questions):
    """[(prompt ids, tokens our runtime generates greedily)] for each question."""
    m = runtime.load(model_path)
    jobs = []
    for q in questions:
        st = {}
        for _ in m.generate(q, stats=st, speculative=False):
            pass
        jobs.append((m.encode_prompt(q), st["tokens"]))
    return jobs, m.has_mtp


def measure_once(engine, path, jobs):
    """One fresh process's figures, or {"error": "llama.cpp died with SIGILL", "stderr": ...}."""
    from export.isolated import death
    env = dict(os.environ, **ONE_THREAD)
    out = subprocess.run([sys.executable, "-m", "export.race", "--child", engine, path, json.dumps(jobs)], env=env,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode:
        last = (out.stderr.strip().splitlines() or [""])[-1]
        why = death(engine, out.returncode) + (f": {last}" if out.returncode > 0 and last else "")
        return {"error": why, "stderr": out.stderr[-2000:]}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    rows = r["rows"]
    decoded = sum(x["decoded"] for x in rows)
    decode_s = sum(x["decode_s"] for x in rows)
    return {"load_s": r["load_s"], "peak_rss_mb": r["peak_rss_mb"],
            "prefill_tokens_per_s": sum(x["prompt"] for x in rows) / sum(x["first_s"] for x in rows),
            "decode_tokens_per_s": decoded / decode_s if decoded else None,
            "first_token_ms": 1000 * max(x["first_s"] for x in rows), "decoded_tokens": decoded,
            "build": r["build"]}


def run(model_path, peers=PEERS, repeat=3, progress=print):
    """-> {"engines": {name: best figures}, "ratios": {peer: ours / peer}, ...}."""
    jobs, has_mtp = jobs_for(model_path, QUESTIONS)
    engines = ["tinyr1"] + (["tinyr1+mtp"] if has_mtp else []) + list(peers)
    seq_len = max(len(ids) for ids, _ in jobs)
    runs = {e: [] for e in engines}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {e: export_for(e, model_path, tmp, seq_len) for e in engines}
        for r in range(repeat):
            for e in engines:                                   # alternate: every engine sees the same noise
                m = measure_once(e, paths[e], jobs)
                runs[e].append(m)
                progress(f"round {r + 1}/{repeat} {e}: " + (m["error"] if "error" in m else
                         f"decode {_fmt(m['decode_tokens_per_s'])} tokens/s, first token {m['first_token_ms']:.2f} ms"))
    best = {e: _best(rs) for e, rs in runs.items()}
    ours, mtp = best["tinyr1"], best.get("tinyr1+mtp")
    ratios = {}
    for p in peers:
        b = best[p]
        if "error" in b or "error" in ours:
            ratios[p] = dict.fromkeys(("decode", "decode_with_mtp", "prefill", "first_token_speedup"))
            continue
        ratios[p] = {"decode": _ratio(ours["decode_tokens_per_s"], b["decode_tokens_per_s"]),
                     "decode_with_mtp": _ratio(mtp["decode_tokens_per_s"], b["decode_tokens_per_s"])
                     if mtp and "error" not in mtp else None,
                     "prefill": _ratio(ours["prefill_tokens_per_s"], b["prefill_tokens_per_s"]),
                     "first_token_speedup": _ratio(b["first_token_ms"], ours["first_token_ms"])}
    return {"model": model_path, "cpu": cpu_name(), "questions": len(jobs),
            "generated_tokens": sum(n for _, n in jobs), "repeat": repeat, "engines": best, "ratios": ratios,
            "weights": {"tinyr1": "int8 (dequantized at load)", "llama.cpp": "GGUF Q8_0 (our int8 bytes)",
                        "onnxruntime": "ONNX float32", "litert": f"TFLite float32, prefill of {seq_len} tokens"}}


def _best(rs):
    """The best of an engine's rounds; an engine that crashed in every round keeps its first error."""
    ok = [r for r in rs if "error" not in r]
    if not ok:
        return rs[0]
    rs = ok
    key = lambda r: -(r["decode_tokens_per_s"] or 0) if r["decode_tokens_per_s"] else r["first_token_ms"]
    b = dict(min(rs, key=key))
    b.update(load_s=min(r["load_s"] for r in rs), peak_rss_mb=min(r["peak_rss_mb"] for r in rs),
             first_token_ms=min(r["first_token_ms"] for r in rs),
             prefill_tokens_per_s=max(r["prefill_tokens_per_s"] for r in rs))
    return b


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def _fmt(x):
    return "n/a" if x is None else f"{x:,.0f}"


def table(result):
    """Markdown: one row per engine, then our ratio to each peer."""
    lines = ["| engine | weights | load | prefill tokens/s | decode tokens/s | first token (worst) | peak RSS |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for e, r in result["engines"].items():
        w = result["weights"].get(e.split("+")[0], "")
        w = w + ", MTP drafts" if e.endswith("+mtp") else w
        if "error" in r:
            lines.append(f"| {e} | {w} | {r['error']} | | | | |")
            continue
        lines.append(f"| {e} | {w} | {1000 * r['load_s']:.0f} ms | {_fmt(r['prefill_tokens_per_s'])} | "
                     f"{_fmt(r['decode_tokens_per_s'])} | {r['first_token_ms']:.2f} ms | {r['peak_rss_mb']:.0f} MB |")
    lines += ["", "| ours / peer | decode | decode (MTP drafts) | prefill | first token (peer time / ours) |",
              "|---|---:|---:|---:|---:|"]
    for p, x in result["ratios"].items():
        f = lambda v: "n/a" if v is None else f"{v:.2f}x"
        lines.append(f"| {p} | {f(x['decode'])} | {f(x['decode_with_mtp'])} | {f(x['prefill'])} | "
                     f"{f(x['first_token_speedup'])} |")
    lines += ["", f"CPU: {result['cpu']}"]
    lines += [f"{e}: {r['build']}" for e, r in result["engines"].items() if "build" in r and e != "tinyr1+mtp"]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] != ["--child"]:
        sys.exit("usage: python -m export.race --child ENGINE PATH JOBS (the benchmark's own child process; "
                 "run the benchmark with `tinyr1 bench MODEL --peers ...`)")
    child(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
