"""Rejection sampling (R1 stage 3): sample k completions per training question from a checkpoint,
keep the verified-correct, well-formed ones with no special token inside a field, deduplicate, and
write a JSONL dataset that an SFT or distillation stage trains on (`sft.datasets`).

Output in the stage directory:
  traces.jsonl   {"question", "reasoning", "answer"} per kept trace (written last, atomically)
  summary.json   per family: questions, samples, correct, well_formed, kept (after deduplication)
  parts/         one file per chunk of questions, so a killed run resumes where it stopped
"""
import json
import os
from dataclasses import dataclass, field

import numpy as np

from runtime.checks import check_one_of, check_ranges
from runtime.completion import parse
from runtime.errors import ConfigError, DatasetError
from runtime.tasks import family_of
from runtime.tokenizer import Tokenizer
from trainer import checkpoint
from trainer.data import check_families
from trainer.grpo import rollout, sample_questions
from trainer.rewards import accuracy_reward, format_reward
from trainer.sft import make_bar
from trainer.tasks.jsonl import check_plain

CHUNK = 128                         # questions per part file


@dataclass
class RejectionConfig:
    init: str = ""                  # checkpoint (or earlier stage) to sample from
    seed: int = 0
    questions: int = 2048           # training questions drawn
    samples: int = 4                # completions per question
    temperature: float = 0.8
    max_completion: int = 224
    families: dict = field(default_factory=dict)   # family -> question weight; empty = all equal
    split: str = "train"            # question pool: train, or rl


REJECTION_RANGES = {"seed": "[0, inf)", "questions": "[1, inf)", "samples": "[1, inf)",
                    "temperature": "[0, inf)",         # 0 is greedy: then one sample per question is enough
                    "max_completion": "[1, inf)"}


def check_rejection(rc, source):
    """Range of every number, known families with weights >= 0 (not all 0), a known split."""
    check_ranges(rc, REJECTION_RANGES, source)
    if check_families(rc.families, source) == 0:
        raise ConfigError(f"{source}: families: every weight is 0; give a family a weight > 0")
    check_one_of(rc.split, ("train", "rl"), source, "split")


def run_rejection(rc, out_dir, progress=True, source="rejection"):
    """-> path of traces.jsonl. Resumes from parts/ when run again in the same directory."""
    if not rc.init:
        raise ConfigError(f"{source}: init: name the checkpoint to sample from")
    check_rejection(rc, source)
    params, cfg, tok, _ = checkpoint.load(rc.init)
    parts = os.path.join(out_dir, "parts")
    os.makedirs(parts, exist_ok=True)
    conf_path, conf = os.path.join(out_dir, "config.json"), json.dumps(vars(rc), sort_keys=True)
    if os.path.exists(conf_path) and open(conf_path).read() != conf:
        raise ConfigError(f"{source}: {out_dir} holds parts sampled with another configuration "
                          f"({conf_path}); use a new output directory")
    checkpoint.write_atomic(conf_path, conf.encode())
    questions = sample_questions(rc.families, np.random.default_rng([rc.seed, 0]), rc.questions, rc.split)
    chunks = range(0, len(questions), CHUNK)
    bar = make_bar(0, len(chunks), progress, "rejection sampling")
    for c, start in enumerate(chunks):
        path = os.path.join(parts, f"part_{c:05d}.jsonl")
        if not os.path.exists(path):
            qs = questions[start:start + CHUNK]
            prompts, comps = rollout(params, cfg, tok, qs, rc.samples, rc.max_completion, rc.temperature,
                                     seed=rc.seed * 1_000_003 + c)
            rows = [{"question": q, "completions": [tok.decode_completion(ids) for ids in group]}
                    for q, group in zip(qs, comps)]
            checkpoint.write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows).encode())
        bar.update(1)
    bar.close()
    return finish(out_dir, len(chunks))


def finish(out_dir, n_chunks):
    """Filter, deduplicate and count every part -> traces.jsonl and summary.json."""
    seen, kept, counts, tok = set(), [], {}, Tokenizer()
    for c in range(n_chunks):
        with open(os.path.join(out_dir, "parts", f"part_{c:05d}.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        for r in rows:
            q = r["question"]
            n = counts.setdefault(family_of(q).name, dict(questions=0, samples=0, correct=0, well_formed=0, kept=0))
            n["questions"] += 1
            for text in r["completions"]:
                n["samples"] += 1
                ok_format, ok_answer = format_reward(q, text) == 1.0, accuracy_reward(q, text) == 1.0
                n["well_formed"] += ok_format
                n["correct"] += ok_answer
                if not (ok_format and ok_answer):
                    continue
                c = parse(text)                 # well-formed: thinking and answer are whole blocks
                row = {"question": q, "reasoning": c.thinking, "answer": c.answer}
                try:                            # e.g. a sampled <pad> inside the thinking: the loader refuses it
                    for key in ("reasoning", "answer"):
                        check_plain(tok, row[key], key)
                except DatasetError:
                    continue
                key = (row["question"], row["reasoning"], row["answer"])
                if key not in seen:
                    seen.add(key)
                    kept.append(row)
                    n["kept"] += 1
    out = os.path.join(out_dir, "traces.jsonl")
    checkpoint.write_atomic(os.path.join(out_dir, "summary.json"), json.dumps(counts, indent=1).encode())
    checkpoint.write_atomic(out, "".join(json.dumps(r) + "\n" for r in kept).encode())
    return out
