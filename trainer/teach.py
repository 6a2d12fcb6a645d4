"""`tinyr1 teach`: teach a trained student a kiosk owner's own answers in minutes, forgetting nothing.

    tinyr1 teach museum.yaml --from trainer/checkpoints/student --out build/museum --config museum-kiosk.yaml

1. `read_facts`: the owner's file, a YAML list or JSONL lines of {question, answer, reasoning (optional)},
   checked whole before any training: text the tokenizer cannot encode, a question twice with different
   answers, a question a task family answers otherwise, an answer too long for the context or the display.
2. `training_examples`: every fact in 40 trained paraphrases (trainer/tasks/paraphrase.py: case,
   punctuation, "what's", reordered words, openings and endings from pools) and out-of-scope questions
   restyled the same way, refused, so that an opening does not come to mean "a taught answer follows".
3. Fine-tune from the student (TEACH below) while replaying the families of the recipe that trained it,
   refusals included, so that nothing is forgotten; resumable like every run (`--resume`).
4. Compile to int8 with the facts in the file (provenance.taught: the kiosk and `tinyr1 validate` judge the
   taught questions by them).
5. `measure`: the owner's phrasings, held-out paraphrases the owner did not write, the built-in families
   and refusals before and after -> OUT/report.json.
"""
import json
import os

import numpy as np

from runtime.checks import quote
from runtime.errors import DatasetError
from runtime.tasks import FAMILIES, OUT_OF_SCOPE, REFUSAL, REFUSAL_THINKING, family_of, is_refusal
from runtime.tasks.base import norm_space
from runtime.tasks.phrasing import normal
from trainer.tasks.cot import target_text
from trainer.tasks.jsonl import Example, check_plain, jsonl_rows
from trainer.tasks.paraphrase import heldout, longest, restyled, trained

MAX_FACTS = 1000                    # runtime/fileformat.py MAX_TAUGHT: what a model file may carry
MAX_CHARS = 1000                    # characters of a question, answer or reasoning (MAX_TAUGHT_CHARS)
MAX_FILE_BYTES = 1 << 20
FIELDS = ("question", "answer", "reasoning")
THINKING = "recall"                 # the thinking of a fact without reasoning (the built-in FAQ's)

# The fine-tune: short and gentle, from the student's weights (SFTConfig fields; `--steps` overrides)
TEACH = {"steps": 500, "batch_size": 32, "micro_batches": 2, "lr": 5e-4, "min_lr": 5e-5, "warmup_steps": 20,
         "weight_decay": 0.0, "checkpoint_every": 50, "log_every": 10}
TAUGHT_SHARE = 0.35                 # of each batch: the owner's facts and their refused look-alikes
REFUSED_PER_FACT = 6                # out-of-scope look-alikes trained per fact


def read_facts(path, tok, context=None):
    """The owner's file -> [Example(question, reasoning, answer, "taught", where)]; DatasetError names the
    file, the entry (YAML index or JSONL line), the field and the value."""
    rows = _rows(path)
    facts, seen = [], {}
    for where, row in rows:
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a mapping with question, answer and optional reasoning, got "
                               f"{type(row).__name__}")
        unknown = [k for k in row if k not in FIELDS]
        if unknown:
            raise DatasetError(f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(FIELDS)}")
        for key in FIELDS:
            if key not in row:
                if key == "reasoning":
                    continue
                raise DatasetError(f"{where}: missing field {key!r}")
            v = row[key]
            if not isinstance(v, str) or not v.strip():
                raise DatasetError(f"{where}: field {key!r} must be a non-empty string, got {quote(v, 60)}")
            if len(v) > MAX_CHARS:
                raise DatasetError(f"{where}: field {key!r} is {len(v)} characters; at most {MAX_CHARS}")
            if "\n" in v:
                raise DatasetError(f"{where}: field {key!r}: {quote(v, 60)} has a line break; write it on one line")
            check_plain(tok, v, f"{where}: field {key!r}")
        q, a = " ".join(row["question"].split()), row["answer"].strip()
        key = normal(q)
        if key in seen:
            first = seen[key]
            if norm_space(first.answer) != norm_space(a):
                raise DatasetError(f"{where}: question {q!r} is also {first.where} ({first.question!r}) with "
                                   f"another answer: {quote(a, 60)} vs {quote(first.answer, 60)}; keep one")
            continue                                    # the same fact twice: once is enough
        fam = family_of(q)
        if fam is not None and fam.name != "faq" and not fam.verify(q, a):
            raise DatasetError(f"{where}: question {q!r} is a {fam.name} question whose answer is "
                               f"{fam.solve(q)!r}, not {quote(a, 60)}; the kiosk would call the taught answer wrong")
        fact = Example(q, row.get("reasoning", THINKING).strip(), a, "taught", where)
        seen[key] = fact
        facts.append(fact)
    if not facts:
        raise DatasetError(f"{path}: no facts; write a list of {{question, answer}} entries")
    if len(facts) > MAX_FACTS:
        raise DatasetError(f"{path}: {len(facts)} facts; a model file carries at most {MAX_FACTS}")
    if context is not None:
        check_context(facts, tok, context)
    return facts


def _rows(path):
    """-> [(where, entry)] of a YAML list (.yaml, .yml) or JSONL lines (.jsonl)."""
    from runtime.errors import ConfigError
    from runtime.kiosk.yamlfile import read_yaml
    ext = os.path.splitext(path)[1].lower()
    if ext in (".yaml", ".yml"):
        try:
            data = read_yaml(path, "a question/answer file", MAX_FILE_BYTES)
        except ConfigError as e:
            raise DatasetError(str(e)) from None
        if not isinstance(data, list):
            raise DatasetError(f"{path}: expected a list of {{question, answer, reasoning}} entries, got "
                               f"{type(data).__name__}")
        return [(f"{path}: entry {i}", row) for i, row in enumerate(data)]
    if ext == ".jsonl":
        return jsonl_rows(path, "a question/answer file", MAX_FILE_BYTES)
    raise DatasetError(f"{path}: expected a .yaml, .yml or .jsonl file of {{question, answer, reasoning}} entries")


def check_context(facts, tok, context):
    """The longest phrasing of every fact, with its trace, fits the model's context."""
    from trainer.data import sequence
    for f in facts:
        for q in [longest(f.question)] + heldout(f.question):
            n = len(sequence(tok, q, target_text(f.reasoning, f.answer))[0]) - 1
            if n > context:
                raise DatasetError(f"{f.where}: {quote(q, 60)} with its answer is {n} tokens, more than the model's "
                                   f"context of {context}; shorten the answer or the reasoning")


def check_display(facts, cfg):
    """Every answer fits the kiosk's screen: one page, or a few when a button pages (hold: next_page)."""
    from runtime.kiosk.display import open_display
    from runtime.kiosk.layout import View, page_count
    screen = open_display(cfg, simulate=True)
    pages = 4 if any(b.hold == "next_page" for b in cfg.buttons) else 1
    for f in facts:
        if screen.rows <= 2 and len(f.answer) + 1 > screen.cols:       # a 16x2 LCD shows "=answer", clipped
            raise DatasetError(f"{f.where}: the answer {quote(f.answer, 60)} is {len(f.answer)} characters; "
                               f"{cfg.path}'s {cfg.display.type} ({screen.cols}x{screen.rows} characters) shows "
                               f"the first {screen.cols - 1} of an answer: shorten it")
        view = View(mode="answer", title=cfg.title, question=f.question, thinking=f.reasoning, answer=f.answer,
                    status="done", thinking_mode=cfg.display.thinking)
        n = page_count(view, screen.cols, screen.rows)
        if n > pages:
            hint = "" if pages > 1 else " and no button turns pages (hold: next_page)"
            raise DatasetError(f"{f.where}: the answer {quote(f.answer, 60)} needs {n} pages on {cfg.path}'s "
                               f"{cfg.display.type} ({screen.cols}x{screen.rows} characters){hint}; at most "
                               f"{pages}: shorten it")


def training_examples(facts, seed, tok=None, context=None):
    """Every fact in its trained paraphrases, and REFUSED_PER_FACT out-of-scope questions per fact restyled
    the same way, refused (those that fit `context` tokens, when given) -> [Example]."""
    from trainer.data import sequence
    rng = np.random.default_rng([seed, 11])
    out = [Example(q, f.reasoning, f.answer, "taught") for f in facts for q in trained(f.question, rng)]
    taught = {normal(e.question) for e in out} | {normal(q) for f in facts for q in heldout(f.question)}
    want = len(out) + len(facts) * REFUSED_PER_FACT
    for _ in range(want * 100):
        if len(out) == want:
            break
        q = restyled(OUT_OF_SCOPE.sample(rng, "train"), rng)
        fits = context is None or len(sequence(tok, q, target_text(REFUSAL_THINKING, REFUSAL))[0]) - 1 <= context
        if fits and family_of(q) is None and normal(q) not in taught:
            out.append(Example(q, REFUSAL_THINKING, REFUSAL, "refuse"))
    return out


def write_jsonl(examples, path):
    with open(path, "w") as f:
        for e in examples:
            f.write(json.dumps({"question": e.question, "reasoning": e.reasoning, "answer": e.answer}) + "\n")


def replay_families(info):
    """{family: weight} of the recipe that trained a checkpoint (its `recipe_file`, the last SFT stage of a
    pipeline), or every family equally when it is not known."""
    from trainer.tasks import TRAINABLE
    sft = _student_sft(info)
    if sft is not None and sft.families:
        return dict(sft.families)
    return {name: 1.0 for name in TRAINABLE}


def replay_styles(info):
    """The writing options (trainer/recipe.py STYLES but restyle) of the recipe that trained a checkpoint: its
    replayed families are written the same way (padded add, sub and count traces, distracted count questions,
    drilled speed steps, its sort trace), so teaching does not unlearn what they taught (v6's 7-8 digit sums).
    Empty when the recipe is not known."""
    sft = _student_sft(info)
    return {} if sft is None else {k: v for k, v in sft.styles().items() if k != "restyle"}


def _student_sft(info):
    from trainer.recipe import load_recipe
    path = info.get("recipe_file")
    if path and not os.path.isabs(path):                # recorded relative to the project's root
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), path)
    if not (path and os.path.isfile(path)):
        return None
    r = load_recipe(path)
    return ([st.recipe.sft for st in (r.stages or []) if st.kind == "sft"] or [r.sft])[-1]


def teach_recipe(student, jsonl, families, steps=None, seed=0, styles=None):
    """The fine-tune as a recipe (trainer/recipe.py checks it like any other); styles: replay_styles."""
    from trainer.recipe import recipe_from_dict
    total = sum(families.values())
    sft = {**TEACH, **(styles or {}), "init": student, "datasets": [jsonl], "families": families, "seed": seed,
           "dataset_weight": total * TAUGHT_SHARE / (1 - TAUGHT_SHARE)}
    if steps is not None:
        sft["steps"] = steps
    return recipe_from_dict({"name": "teach", "sft": sft}, "tinyr1 teach")


def exact(model_answer, fact):
    return model_answer is not None and norm_space(model_answer) == norm_space(fact.answer)


def measure(generate, facts, n, seed, tok):
    """`generate(questions, max_new_tokens) -> completions` -> {owner, heldout, refused}: the share of the
    owner's phrasings and of held-out paraphrases answered exactly, and of n held-out out-of-scope questions
    refused. Each is generated only as far as its longest right answer (and 8 tokens more) needs."""
    from runtime.completion import parse
    from trainer.evaluate import out_of_scope
    longest = max(len(tok.encode_completion(target_text(f.reasoning, f.answer))) for f in facts) + 8
    refusal = len(tok.encode_completion(target_text(REFUSAL_THINKING, REFUSAL))) + 8

    def share(pairs):
        texts = generate([q for q, _ in pairs], longest)
        return sum(exact(parse(t).final_answer, f) for (_, f), t in zip(pairs, texts)) / len(pairs), len(pairs)

    owner = [(f.question, f) for f in facts]
    held = [(q, f) for f in facts for q in heldout(f.question)]
    oos = [p.question for p in out_of_scope(n, seed)]
    refused = sum(is_refusal(parse(t).final_answer) for t in generate(oos, refusal))
    return {"owner": share(owner), "heldout": share(held), "refused": (refused / len(oos), len(oos))}


def families_accuracy(generate, n, seed, families=None):
    """{family: (accuracy, n)} on n held-out canonical problems (trainer/evaluate.py's draw; fib's first n of
    its 41), built-ins only; `generate(questions)` -> completions."""
    from runtime.tasks import score
    from trainer.evaluate import problems
    out = {}
    for fam in families or [f for f in FAMILIES if f != "faq"]:
        ps = problems(fam, "canonical", n, seed)[:n]
        texts = generate([p.question for p in ps])
        out[fam] = (sum(bool(score(p.question, t)["correct"]) for p, t in zip(ps, texts)) / len(ps), len(ps))
    return out
