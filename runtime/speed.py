"""Runtime speed on one thread: load time, prefill and decode tokens/s, first-token latency, peak RSS.

    python -m runtime.speed MODEL [--repeat 3] [--json]

Each measurement runs in a fresh Python process (OPENBLAS_NUM_THREADS=1), so load time and peak RSS
are what a kiosk sees after Python starts: `python -m runtime.speed --child MODEL QUESTIONS` runs `child`,
whose clock starts before numpy and the model's modules are imported (this module imports only the standard
library and the `runtime` package's errors). Prompts are the seed articles' questions, decoded greedily.

One of three benchmarks, one per stage, because each measures a different thing and runs where that stage
runs: this one ships to the Pi (it imports only the runtime) and times the runtime alone; export/race.py
races it against llama.cpp, onnxruntime and LiteRT on the host (it needs the exporters and the peers, and
reuses this module's prompts, thread pinning, CPU name and peak RSS); trainer/train_speed.py times one training
step against transformers.
"""
import json
import os
import subprocess
import sys
import time

import runtime

QUESTIONS = ["What is 47+38?", "How many r in strawberry?", "Solve 3x+5=20",
             "A train travels 300 km in 5 hours. What is its average speed?", "Solve x^2-5x+6=0",
             "What is fib(10)?", "Sort 5 3 9 1"]
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}   # every pool, one thread



def child(path, questions):
    """One measurement, in the fresh process: load (numpy and the model's modules are imported here, as in a
    kiosk's first seconds), then answer each question greedily -> prints {load_s, rows, peak_rss_mb} as JSON."""
    t0 = time.perf_counter()
    model = runtime.load(path)
    load_s = time.perf_counter() - t0
    rows = []
    for q in questions:
        stats = {}
        for _ in model.generate(q, max_new_tokens=512, stats=stats):
            pass
        rows.append(stats)
    print(json.dumps({"load_s": load_s, "rows": rows, "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb():
    """This process's peak resident set. Linux: VmHWM, which starts afresh at exec (getrusage's ru_maxrss
    would report the parent's size at fork when that was larger)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource                           # not on every platform; only where /proc is missing
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_name():
    """The CPU a figure came from: /proc/cpuinfo's model name (x86) or Model / Hardware line (arm)."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        for key in ("model name", "Model", "Hardware", "cpu model"):
            if fields.get(key):
                return f"{fields[key]} ({platform.machine()}, {os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def measure(path, repeat=3):
    env = dict(os.environ, **ONE_THREAD)
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-m", "runtime.speed", "--child", path, json.dumps(QUESTIONS)],
                             env=env, check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out))
    best = min(runs, key=lambda r: sum(x["decode_seconds"] for x in r["rows"]))
    rows = best["rows"]
    prompt = sum(r["prompt_tokens"] for r in rows)
    generated = sum(r["tokens"] for r in rows)
    prefill = sum(r["prefill_seconds"] for r in rows)
    decode = sum(r["decode_seconds"] for r in rows)
    return {"model": path, "model_bytes": os.path.getsize(path),
            "load_s": min(r["load_s"] for r in runs),
            "prefill_tokens_per_s": prompt / prefill, "decode_tokens_per_s": (generated - len(rows)) / decode,
            "first_token_ms": 1000 * max(r["prefill_seconds"] for r in rows),
            "peak_rss_mb": min(r["peak_rss_mb"] for r in runs), "generated_tokens": generated, "repeat": repeat,
            "cpu": cpu_name()}


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="compiled .msgpack model")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes to run; the best is reported")
    ap.add_argument("--json", action="store_true", help="print JSON")
    a = ap.parse_args(argv)
    r = measure(a.model, a.repeat)
    if a.json:
        print(json.dumps(r, indent=1))
        return r
    print(f"{r['model']} ({r['model_bytes']:,} bytes), one thread, best of {r['repeat']} fresh processes")
    print(f"  CPU                        {r['cpu']}")
    print(f"  load (after Python starts) {r['load_s'] * 1000:8.1f} ms")
    print(f"  prefill                    {r['prefill_tokens_per_s']:8.0f} tokens/s")
    print(f"  decode                     {r['decode_tokens_per_s']:8.0f} tokens/s  ({r['generated_tokens']} tokens)")
    print(f"  first token (worst prompt) {r['first_token_ms']:8.2f} ms")
    print(f"  peak RSS                   {r['peak_rss_mb']:8.1f} MB")
    return r


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], json.loads(sys.argv[3]))
    else:
        main()
