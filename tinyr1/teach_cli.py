"""`tinyr1 teach`: the owner's questions and answers -> a taught, compiled, checked model in one flow.

It joins the stages, so it lives with the host's commands: trainer/teach.py (facts, examples, recipe,
measures) -> trainer/sft.py (the fine-tune) -> compiler (int8, the facts in provenance.taught) -> runtime
(measured as it runs on the Pi; with --config the pre-flight check and a simulated kiosk).
"""
import json
import os
import time

import click

from runtime.errors import TinyR1Error

STUDENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "trainer", "checkpoints",
                       "student")


@click.command("teach")
@click.argument("facts", type=click.Path(dir_okay=False))
@click.option("--from", "student", default=STUDENT, show_default=True, type=click.Path(file_okay=False),
              help="The trained checkpoint to teach (the bundled student by default).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for run/ (resumable checkpoints), checkpoint/, model.msgpack, train.jsonl, "
                   "report.json and, with --config, kiosk.gif.")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="A kiosk config: check every answer fits its display first; afterwards run its pre-flight "
                   "check and simulate it (every button once) with the taught model.")
@click.option("--steps", type=click.IntRange(1, 100000), default=None,
              help="Fine-tune steps [default: trainer/teach.py TEACH, 500].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="Seeds the refused look-alikes, the batches and the measured draws.")
@click.option("--eval-n", default=50, show_default=True, type=click.IntRange(1, 10000),
              help="Distinct held-out problems per built-in family (before and after) and out-of-scope "
                   "questions measured (`tinyr1 eval OUT/model.msgpack` measures the full table).")
@click.option("--resume", is_flag=True, help="Continue an interrupted fine-tune from OUT/run's latest checkpoint.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar (for logs).")
def teach(facts, student, out, config, steps, seed, eval_n, resume, no_progress):
    """Teach a trained student your own answers: FACTS is a YAML list (or JSONL lines) of {question, answer,
    reasoning (optional)}. The facts are checked whole first (encodable, no question twice with different
    answers, fits the context and, with --config, the display), trained in paraphrases (case, punctuation,
    "what's", openings, reordered words) while the student's own task families are replayed, compiled to
    OUT/model.msgpack (int8, carrying the facts for the kiosk's verdicts) and measured: the owner's
    phrasings, held-out paraphrases, the built-in families and refusals, before and after."""
    from trainer import checkpoint as ck
    from trainer import teach as t
    t0 = time.time()
    try:
        _, cfg, tok, info = ck.load(student)
        found = t.read_facts(facts, tok, cfg.max_position_embeddings)
        kiosk = None
        model_path = os.path.join(out, "model.msgpack")
        if config:
            from runtime.kiosk.config import load_config
            kiosk = load_config(config, model_path)
            t.check_display(found, kiosk)
        click.echo(f"{facts}: {len(found)} facts; teaching {student} (context {cfg.max_position_embeddings})")
        os.makedirs(out, exist_ok=True)
        jsonl = os.path.join(out, "train.jsonl")
        examples = t.training_examples(found, seed, tok, cfg.max_position_embeddings)
        t.write_jsonl(examples, jsonl)
        recipe = t.teach_recipe(os.path.abspath(student), jsonl, t.replay_families(info), steps, seed,
                                t.replay_styles(info))
        click.echo(f"fine-tune: {recipe.sft.steps} steps of {recipe.sft.batch_size}, {len(examples)} taught "
                   f"examples ({t.TAUGHT_SHARE:.0%} of each batch), the rest replaying "
                   f"{', '.join(recipe.sft.families)}")
        from trainer.sft import run_sft
        params, cfg, tok = run_sft(recipe, os.path.join(out, "run"), resume=resume, progress=not no_progress)
        train_seconds = time.time() - t0
        taught = [{"question": f.question, "answer": f.answer} for f in found]
        ckpt = os.path.join(out, "checkpoint")
        ck.save(ckpt, params, cfg, tok, {"recipe": "teach", "stage": "teach", "step": recipe.sft.steps,
                                         "seed": seed, "source": student, "facts_file": facts, "taught": taught,
                                         "train_seconds": info.get("train_seconds", 0) + train_seconds})
        before, after = _compile(student), _compile(ckpt, model_path)
        click.echo(f"wrote {ckpt} and {model_path} ({os.path.getsize(model_path):,} bytes, int8)")
        report = _measure(t, found, before, after, eval_n, seed)
        report.update(facts=len(found), steps=recipe.sft.steps, train_seconds=round(train_seconds, 1))
        if kiosk is not None:
            report["preflight"] = _check_kiosk(kiosk, after, os.path.join(out, "kiosk.gif"))
        report["total_seconds"] = round(time.time() - t0, 1)
        with open(os.path.join(out, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
    except TinyR1Error as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_report(report))


def _compile(src, path=None):
    """A checkpoint -> the runtime Model of its int8 compile (written to `path` when given)."""
    from compiler.compile import compile_model, load_source
    from runtime.loader import parse_document
    from runtime.model import Model
    params, cfg, tok, prov = load_source(src)
    data = compile_model(params, cfg, tok, quant="int8", provenance=prov)[0]
    if path:                                   # atomically: an interrupted teach leaves no half-written model
        from trainer.checkpoint import write_atomic
        write_atomic(path, data)
    return Model(parse_document(data, path or src), path or src)


def _measure(t, facts, before, after, n, seed):
    from trainer.evaluate import runtime_generator
    rows = {}
    for name, model in (("before", before), ("after", after)):
        gen = runtime_generator(model)
        limit = min(512, model.max_positions)
        rows[name] = {**t.measure(gen, facts, n, seed, model.tokenizer),
                      "families": t.families_accuracy(lambda qs: gen(qs, limit), n, seed)}
    return rows


def _check_kiosk(kiosk, model, gif):
    from runtime.kiosk.kiosk_cli import run_preflight
    from runtime.kiosk.simulate import Press, simulate
    report = run_preflight(kiosk, model, 20)
    simulate(kiosk, model, [Press(b.pin) for b in kiosk.buttons], gif=gif, scale=2)
    click.echo(f"wrote {gif}")
    return {"buttons": len(report.buttons), "problems": len(report.problems)}


def format_report(r):
    """The report as a Markdown table (before -> after)."""
    def pct(cell):
        return f"{cell[0]:.1%} ({cell[1]})"
    b, a = r["before"], r["after"]
    lines = ["| measure | before | after |", "|---|---:|---:|"]
    for key, name in (("owner", "owner's phrasings, exact"), ("heldout", "held-out paraphrases, exact"),
                      ("refused", "out-of-scope questions refused")):
        lines.append(f"| {name} | {pct(b[key])} | {pct(a[key])} |")
    for fam in a["families"]:
        lines.append(f"| {fam} (held-out, canonical) | {pct(b['families'][fam])} | {pct(a['families'][fam])} |")
    mean = lambda rows: sum(v[0] for v in rows.values()) / len(rows)                 # noqa: E731
    lines.append(f"| built-in families, mean | {mean(b['families']):.1%} | {mean(a['families']):.1%} |")
    lines.append(f"\n{r['facts']} facts, {r['steps']} steps: fine-tune {r['train_seconds'] / 60:.1f} min, "
                 f"all {r['total_seconds'] / 60:.1f} min")
    return "\n".join(lines)
