"""`tinyr1 compile`: a trainer checkpoint or HF directory -> one msgpack model file."""
import os

import click

from runtime.errors import TinyR1Error


@click.command("compile")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Model file to write (written atomically: a crash never leaves half a file).")
@click.option("--quant", type=click.Choice(["int8", "float32"]), default="int8", show_default=True,
              help="Weight storage: symmetric int8 (norms, router and bias stay float32) or all float32.")
@click.option("--group-size", default=32, show_default=True,
              help="int8 group length along the input dimension (32 = llama.cpp Q8_0).")
@click.option("--per-channel", is_flag=True, help="One int8 scale per output row instead of per group.")
@click.option("--graph", "show_graph", is_flag=True, help="Print the optimised graph.")
def compile_cmd(src, output, quant, group_size, per_channel, show_graph):
    """Trace SRC (trainer checkpoint dir or HF DeepseekV3 dir), absorb MLA, quantize, and pack."""
    from compiler.compile import compile_model, load_source, write_atomic
    if group_size < 1:
        raise click.BadParameter(f"{group_size} must be >= 1", param_hint="--group-size")
    try:
        params, cfg, tok, prov = load_source(src)
        data, graph, report = compile_model(params, cfg, tok, quant, group_size,
                                            "q8_channel" if per_channel else "q8_group", prov)
    except TinyR1Error as e:
        raise click.ClickException(str(e))
    write_atomic(output, data)
    if show_graph:
        click.echo(graph.dump())
    from trainer.model import count_params
    n_params = count_params(cfg)                          # the MTP head's too: the file carries it
    mtp = f" + {len(graph.mtp.nodes)} in the MTP draft head" if graph.mtp is not None else ""
    click.echo(f"wrote {output}: {len(data):,} bytes, {len(graph.nodes)} nodes{mtp}, {quant}, "
               f"{len(data) / n_params:.3f} bytes per parameter")
    if report:
        worst = max(report.items(), key=lambda kv: kv[1]["rel_error"])
        click.echo(f"int8 error: worst relative {worst[1]['rel_error']:.2e} ({worst[0]}), worst absolute "
                   f"{max(r['max_abs_error'] for r in report.values()):.2e}; `tinyr1 inspect {os.path.basename(output)}` "
                   f"lists every tensor")
