"""`tinyr1 export` and the host's `tinyr1 bench`: the compiled model in other runtimes' formats, and our
runtime raced against them."""
import json

import click

from runtime.errors import TinyR1Error


@click.command("export")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(["onnx", "gguf", "tflite"]))
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Where to write: onnx, a directory that will hold prefill.onnx and decode.onnx; gguf and "
                   "tflite, one file.")
@click.option("--weights", type=click.Choice(["float32", "int8"]), default=None,
              help="float32 (our int8 weights dequantized exactly) or int8 (onnx: int8 initializers + "
                   "DequantizeLinear; gguf: Q8_0 blocks holding our int8 bytes; tflite: not supported) "
                   "[default: int8 for onnx and gguf, float32 for tflite].")
@click.option("--seq-len", type=int, default=None,
              help="tflite only: the fixed length of the prefill graph; shorter prompts are padded at the end "
                   "[default: the model's context length].")
def export_cmd(fmt, model, output, weights, seq_len):
    """Export a compiled MODEL for independent runtimes: ONNX (onnxruntime: a prefill graph and a
    decode-step graph over the latent cache), GGUF (llama.cpp's deepseek2 architecture) or TFLite
    (LiteRT / tflite-runtime: a prefill graph). The exports carry the main graph; an MTP draft head
    is left out. Needs: pip install 'tinyr1[interop]'."""
    from export import exporter
    weights = weights or ("float32" if fmt == "tflite" else "int8")
    if seq_len is not None and fmt != "tflite":
        raise click.UsageError("--seq-len applies to tflite exports only")
    try:
        mod = exporter(fmt)
        report = mod.export(model, output, weights=weights, **({"seq_len": seq_len} if fmt == "tflite" else {}))
    except ImportError as e:
        raise click.ClickException(f"`tinyr1 export {fmt}` needs the interop extra ({e}): pip install 'tinyr1[interop]'")
    except TinyR1Error as e:
        raise click.ClickException(str(e))
    short = {k: (len(v) if isinstance(v, (list, dict)) else v) for k, v in report.items()}
    click.echo(f"wrote {output} ({fmt}, {weights} weights): " + ", ".join(f"{k} {v}" for k, v in short.items()))


@click.command("bench")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--repeat", default=3, show_default=True, help="Fresh processes (rounds) per engine; the best is reported.")
@click.option("--peers", default="", metavar="LIST",
              help="Also measure these runtimes on the same weights, alternately with ours: a comma-separated "
                   "subset of llama.cpp,onnxruntime,litert (needs the host packages: pip install 'tinyr1[interop]', "
                   "llama.cpp built portably as the README's \"Interop and speed\" shows). A peer that crashes is "
                   "reported in its row; the others are still measured.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench(model, repeat, peers, as_json):
    """Load time, prefill/decode tokens/s, first-token latency and peak RSS, one thread; with --peers, the
    same figures for independent runtimes and our ratio to each (decode, prefill, first token)."""
    if not peers:
        from runtime.speed import main as bench_main
        bench_main([model, "--repeat", str(repeat)] + (["--json"] if as_json else []))
        return
    names = [p.strip() for p in peers.split(",") if p.strip()]
    from export import race as peer_bench
    unknown = [p for p in names if p not in peer_bench.PEERS]
    if unknown:
        raise click.ClickException(f"unknown peer {unknown[0]!r}; peers: {', '.join(peer_bench.PEERS)}")
    result = peer_bench.run(model, names, repeat, progress=lambda m: click.echo(m, err=True))
    click.echo(json.dumps(result, indent=1) if as_json else peer_bench.table(result))
