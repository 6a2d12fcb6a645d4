"""Runtime subcommands of `tinyr1` (they work where only runtime/ is installed): run, chat, inspect, bench."""
import json
import sys

import click

from runtime.errors import TinyR1Error


def _checked(ctx, param, value):
    """Each sampling option's range, from the one definition the Python API and the kiosk use too."""
    from runtime.generate import check_options
    try:
        check_options(**{param.name: value})
    except TinyR1Error as e:
        raise click.BadParameter(str(e), ctx, param) from None
    return value


GEN_OPTIONS = [
    click.option("--max-new-tokens", type=int, default=None, callback=_checked,
                 help="Completion length limit, >= 1 [default: the model's]."),
    click.option("--temperature", type=float, default=0.0, show_default=True, callback=_checked,
                 help="0 = greedy (reproducible); finite, >= 0."),
    click.option("--top-k", type=int, default=None, callback=_checked,
                 help="Sample only from the k most likely tokens (1 to the vocabulary size)."),
    click.option("--top-p", type=float, default=None, callback=_checked,
                 help="Sample from the smallest set with this much probability, in (0, 1]."),
    click.option("--seed", type=int, default=None, callback=_checked,
                 help="Seed of the sampler, 0..2**32-1 (same seed, same text)."),
    click.option("--speculative", is_flag=True,
                 help="Greedy only, models with an MTP head: draft one token ahead and verify it in the next "
                      "pass (same text; prints the share of drafts accepted)."),
]


def gen_options(f):
    for opt in reversed(GEN_OPTIONS):
        f = opt(f)
    return f


def _load(path):
    from runtime.model import load
    try:
        return load(path)
    except TinyR1Error as e:
        raise click.ClickException(str(e))


ANSWER_ANYWAY = click.option(
    "--answer-anyway", is_flag=True,
    help="Let the model try a question beyond its reach (bigger than it was trained on and measured right "
         "at, e.g. a 12-digit sum or fib(60)), instead of saying so; its guess is likely wrong.")


def _stream(model, question, answer_anyway=False, **kw):
    """Print one answer as it is decoded, then its figures; a question beyond the model's reach gets
    BEYOND unless answer_anyway. Raises TinyR1Error (bad question or options)."""
    from runtime.tasks import families_of, score
    from runtime.tasks.reach import beyond_completion, reach
    families = families_of(model)
    r = reach(question, families, model.provenance)
    if not r.ok and not answer_anyway:
        model.encode_prompt(question)          # a character outside the vocabulary is still an error
        click.echo(beyond_completion())
        click.echo(f"[not asked: {r.why(families)}; --answer-anyway lets the model try]", err=True)
        return
    stats, pieces = {}, []
    for piece in model.generate(question, stats=stats, **kw):
        pieces.append(piece)
        click.echo(piece, nl=False)
        sys.stdout.flush()
    secs = stats["prefill_seconds"] + stats["decode_seconds"]
    s = score(question, "".join(pieces))
    if s["family"] is None:                 # no family covers it: the right answer is the refusal
        verdict = f", out of scope: {'refused' if s['refused'] else 'answered anyway'}"
    else:
        verdict = f", verifier: {'right' if s['correct'] else 'wrong'}"
    drafts = f", drafts accepted {stats['accepted']}/{stats['drafted']}" if stats.get("drafted") else ""
    click.echo(f"\n[{stats['tokens']} tokens, {stats['tokens'] / max(secs, 1e-9):.0f} tokens/s, "
               f"first token after {stats['prefill_seconds'] * 1000:.1f} ms, stop: {stats['stop']}{verdict}{drafts}]",
               err=True)


@click.command("run")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--prompt", required=True, help="The question, e.g. \"What is 47+38?\".")
@gen_options
@ANSWER_ANYWAY
def run(model, prompt, **kw):
    """Stream the answer to one question from a compiled MODEL file."""
    m = _load(model)
    try:
        _stream(m, prompt, **kw)
    except TinyR1Error as e:
        raise click.ClickException(str(e))


@click.command("chat")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@gen_options
@ANSWER_ANYWAY
def chat(model, **kw):
    """Ask questions in a loop (empty line or Ctrl-D ends). A question the model cannot take (a character
    outside its vocabulary, too long for its context) prints an error and the loop goes on."""
    from runtime.generate import check_options
    m = _load(model)
    try:                                   # top_k's bound needs the model: checked once, not per question
        check_options(**{k: v for k, v in kw.items() if k not in ("speculative", "answer_anyway")},
                      vocab_size=m.tokenizer.vocab_size)
    except TinyR1Error as e:
        raise click.ClickException(str(e))
    while True:
        try:
            q = input("? ")
        except EOFError:
            break
        if not q.strip():
            break
        try:
            _stream(m, q.strip(), **kw)
        except TinyR1Error as e:
            click.echo(f"Error: {e}", err=True)


@click.command("inspect")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--graph", "show_graph", is_flag=True, help="Print the graph, one node a line.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def inspect_cmd(model, show_graph, as_json):
    """Sizes, op counts, parameter counts, quantization error and provenance of a model file."""
    from runtime.describe import graph_text, summary
    from runtime.loader import read_document
    try:
        body = read_document(model)
    except TinyR1Error as e:
        raise click.ClickException(str(e))
    info = summary(body, model)
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    if show_graph:
        click.echo(graph_text(body["graph"]))
        return
    click.echo(f"{model}: {info['file_bytes']:,} bytes, format {info['format']}")
    click.echo(f"parameters: {info['parameters']:,} ({info['int8_parameters']:,} int8, "
               f"{info['float32_parameters']:,} float32)")
    click.echo("ops: " + ", ".join(f"{k} x{v}" for k, v in info["op_counts"].items()))
    if info["mtp_op_counts"]:
        click.echo("MTP draft head (self-speculative decoding): " +
                   ", ".join(f"{k} x{v}" for k, v in info["mtp_op_counts"].items()))
    click.echo("config: " + ", ".join(f"{k}={info['config'].get(k)}" for k in
                                      ("hidden_size", "num_hidden_layers", "n_routed_experts", "num_experts_per_tok",
                                       "kv_lora_rank", "max_position_embeddings")))
    if info["quantization"]:
        click.echo(f"{'tensor':48} {'scheme':10} {'max abs err':>12} {'rel err':>10}")
        for name, q in info["quantization"].items():
            click.echo(f"{name:48} {q['scheme']:10} {q['max_abs_error']:12.2e} {q['rel_error']:10.2e}")
    prov = {k: v for k, v in info["provenance"].items() if k != "quantization_report"}
    click.echo("provenance: " + json.dumps(prov, sort_keys=True))


@click.command("bench")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--repeat", default=3, show_default=True, help="Fresh processes to run; the best is reported.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench(model, repeat, as_json):
    """Load time, prefill/decode tokens/s, first-token latency and peak RSS, one thread, fresh processes.
    (The host's `tinyr1 bench --peers ...` also races llama.cpp, onnxruntime and LiteRT.)"""
    from runtime.speed import main as bench_main
    bench_main([model, "--repeat", str(repeat)] + (["--json"] if as_json else []))
