"""Recipes: YAML files holding only overrides of documented defaults.

```yaml
name: student-sft
model: {hidden_size: 128}        # ModelConfig fields (trainer/config.py)
sft: {steps: 3000}               # SFTConfig fields below
```
A GRPO recipe has a `grpo:` section (GRPOConfig fields, trainer/grpo.py) instead of `model` and `sft`;
the model comes from the checkpoint named by `grpo.init`. A pipeline recipe has `stages:` (each an SFT,
GRPO or rejection-sampling recipe of its own, parsed here; trainer/pipeline.py runs them).
Unknown keys, wrong types and numbers outside their interval (SFT_RANGES below, GRPO_RANGES, MODEL_RANGES,
REJECTION_RANGES), NaN and inf included, are errors by the one config-checking rule (runtime/checks.py)
naming the file, the section, the key, the value and what would be valid.
"""
from dataclasses import dataclass, field

import yaml

from runtime.checks import check_fields, check_known, check_one_of, check_range, check_ranges, check_type, invalid
from runtime.errors import ConfigError
from trainer.config import ModelConfig, check_weights
from trainer.data import check_families
from trainer.grpo import GRPO_RANGES, GRPOConfig
from trainer.rejection import RejectionConfig, check_rejection
from trainer.tasks.cot import SORT_TRACES


@dataclass
class SFTConfig:
    seed: int = 0                     # seeds the init and every batch (batch k uses seed and k)
    steps: int = 3000
    batch_size: int = 64              # sequences per step
    micro_batches: int = 3            # the step's examples, sorted by length, in at most this many padded pieces
    lr: float = 3e-3                  # peak; small models like a high rate
    min_lr: float = 3e-4              # cosine floor
    warmup_steps: int = 100
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99               # nanoGPT's choice for small batches
    grad_clip: float = 1.0
    bias_update_speed: float = 1e-3   # gamma of aux-loss-free balancing (1e-2 suits short runs)
    aux_alpha: float = 0.0            # sequence-wise balance loss weight (V3 uses ~1e-4)
    mtp_lambda: float = 0.3           # weight of the MTP loss when the model has an MTP module
    families: dict = field(default_factory=dict)   # family -> sampling weight; empty = all equal
    datasets: list = field(default_factory=list)   # extra JSONL files ({question, reasoning, answer})
    dataset_weight: float = 1.0       # sampling weight of the JSONL pool as a whole
    split: str = "train"              # questions drawn from: train, or sft (train minus the R1 pipeline's rl part)
    restyle: float = 0.0              # share of questions retyped with an opening, form and ending from the pools
    #                                   of trainer/tasks/paraphrase.py ("Excuse me, what's 47+38 please?")
    pad: float = 0.0                  # share of add and sub traces written at a wider width, leading zeros in every
    #                                   operand, column and result (trainer/tasks/cot.py draw_width; places only)
    distract: float = 0.0             # share of count questions with a random word put before their letter
    #                                   (trainer/tasks/paraphrase.py distracted)
    distract_strings: float = 0.0     # share of those words that are random letter strings (paraphrase.filler),
    #                                   not words of words.txt
    pad_count: float = 0.0            # share of count traces begun with "." entries, up to 30 in all
    #                                   (trainer/tasks/cot.py draw_count_width)
    speed_facts: float = 0.0          # share of speed problems drawn for one step of their long division, every
    #                                   step as often as any other (trainer/tasks/drill.py)
    sort_trace: str = "buckets"       # how sort traces are written (trainer/tasks/cot.py cot_sort; issue 18's
    #                                   sorts of 13-16 numbers): buckets "4:4,4,7", tally "4:4x2,7x1" (v14), or
    #                                   radix, a ones pass then a tens pass of whole numbers "4:44,44,47" (v17),
    #                                   counted, each number with its running count "b4a4:2" (v19), or
    #                                   items, buckets of item letters "4:C4,G4,A7" (v20; needs items), or
    #                                   indexed, buckets of entry letters in order "4:C4,D4,E7", the answer's
    #                                   numbers after them "#Cb4a4" (v23; needs hints), or nth, each entry's
    #                                   letter which occurrence of its number it is "4:A4,B4,A7" (v24; hints)
    fib_sums: bool = False            # fib traces write each value ones first with place letters, "a5b5,0"
    #                                   (trainer/tasks/cot.py cot_fib; issue 18's fib(41..45))
    fib_drill: float = 0.0            # share of fib examples that are sequences from other starts, fib(0)=a and
    #                                   fib(1)=b (trainer/tasks/drill.py drilled_fib): the sums to learn
    fib_drill_long: float = 0.0       # share of those sequences run 20-45 steps from starts in 0..99, as long as
    #                                   fib's own traces (trainer/tasks/drill.py long_fib)
    sort_runs: float = 0.0            # share of sort lists drawn from 1-5 distinct values, runs of equal
    #                                   numbers up to 12 long (trainer/tasks/drill.py drilled_sort)
    context: int = 0                  # with init: the model's max_position_embeddings raised (or lowered) to
    #                                   this (no weight changes: RoPE is computed); 0 keeps init's
    places: bool = False              # questions read with place letters (runtime/tokenizer.py mark_places; a
    #                                   property of the model, saved with its tokenizer; init's wins)
    items: bool = False               # lists in questions read with item hints, "#A47 #B8 #C44" (runtime/
    #                                   tokenizer.py mark_items; saved with the tokenizer; turns init's on)
    hints: bool = False               # the answer's numbers written after hints of the model's own, "#Cb4a4",
    #                                   that decoding drops (runtime/tokenizer.py; saved with the tokenizer;
    #                                   turns init's on; sort_traces indexed and nth write them)
    init: str = ""                    # start from this checkpoint's weights (its config wins over `model`)
    teacher: str = ""                 # distillation: add a token-level KL to this checkpoint's distribution
    kl_weight: float = 0.5            # loss = (1 - kl_weight) * CE + kl_weight * KL(teacher || student)
    checkpoint_every: int = 250
    log_every: int = 10
    keep_checkpoints: int = 2

    def styles(self):
        """The options that shape how examples are written (trainer/tasks make_example), by name."""
        return {k: getattr(self, k) for k in STYLES}


STYLES = ("restyle", "pad", "distract", "pad_count", "speed_facts", "distract_strings", "sort_trace", "fib_sums",
          "fib_drill", "fib_drill_long", "sort_runs")


# The interval of every numeric SFTConfig field (trainer/config.py check_ranges); min_lr <= lr besides.
SFT_RANGES = {
    "seed": "[0, inf)", "steps": "[1, inf)", "batch_size": "[1, inf)", "micro_batches": "[1, inf)",
    "lr": "(0, 1]",                   # AdamW moves each weight by up to ~lr per step: above 1 is a typo
    "min_lr": "[0, 1]", "warmup_steps": "[0, inf)", "weight_decay": "[0, 1]", "beta1": "[0, 1)",
    "beta2": "[0, 1)", "grad_clip": "(0, inf)", "bias_update_speed": "[0, 1]", "aux_alpha": "[0, inf)",
    "mtp_lambda": "[0, inf)", "dataset_weight": "[0, inf)", "restyle": "[0, 1]", "pad": "[0, 1]",
    "distract": "[0, 1]", "pad_count": "[0, 1]", "speed_facts": "[0, 1]", "distract_strings": "[0, 1]",
    "fib_drill": "[0, 1]", "fib_drill_long": "[0, 1]", "sort_runs": "[0, 1]", "context": "[0, inf)",
    "kl_weight": "[0, 1]",
    "checkpoint_every": "[1, inf)", "log_every": "[1, inf)", "keep_checkpoints": "[1, inf)",
}


@dataclass
class Recipe:
    name: str
    model: ModelConfig
    sft: SFTConfig
    path: str = ""
    raw: dict = field(default_factory=dict)
    grpo: GRPOConfig = None           # set for a GRPO recipe (then model and sft are unused)
    stages: list = None               # set for a multi-stage recipe (trainer/pipeline.py)
    eval: dict = None                 # pipelines: {n, seed, full} of the held-out eval after each stage


@dataclass
class Stage:
    """One stage of a pipeline recipe."""
    name: str
    kind: str                      # sft | grpo | rejection
    description: str = ""
    recipe: Recipe = None          # sft and grpo stages
    rejection: RejectionConfig = None


TOP_KEYS = {"name": str, "description": str, "model": dict, "sft": dict, "grpo": dict, "stages": list,
            "eval": dict}
STAGE_KEYS = {"name": str, "description": str, "model": dict, "sft": dict, "grpo": dict, "rejection": dict}
EVAL_RANGES = {"n": "[1, inf)", "seed": "[0, inf)"}
EVAL_FLAGS = {"full": bool}           # full: held-out phrasings, extrapolation and refusals too


def load_recipe(path):
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read recipe: {e.strerror}") from None
    return recipe_from_dict(raw, path)


def check_keys(raw, types, where):
    """A mapping's keys known and each value of its type ({key: type})."""
    check_known(raw, types, where)
    for key, value in raw.items():
        check_type(value, types[key], where, key)


def recipe_from_dict(raw, path="<recipe>"):
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping with keys {', '.join(TOP_KEYS)}")
    check_keys(raw, TOP_KEYS, path)
    name = raw.get("name") or path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if "stages" in raw or "eval" in raw:
        extra = [k for k in raw if k not in ("name", "description", "stages", "eval")]
        if extra or "stages" not in raw:
            raise ConfigError(f"{path}: a pipeline recipe has name, description, eval and stages only; "
                              f"got {', '.join(extra) or 'no stages'}")
        ev = raw.get("eval") or {}
        check_known(ev, {**EVAL_RANGES, **EVAL_FLAGS}, f"{path}: eval")
        for k, v in ev.items():
            if k in EVAL_FLAGS:
                check_type(v, EVAL_FLAGS[k], f"{path}: eval", k)
            else:
                check_range(v, EVAL_RANGES[k], f"{path}: eval", k, integer=True)
        return Recipe(name=name, model=None, sft=None, path=path, raw=raw, stages=load_stages(raw["stages"], path),
                      eval=ev or None)
    if "grpo" in raw:
        if "model" in raw or "sft" in raw:
            raise ConfigError(f"{path}: a GRPO recipe takes its model from grpo.init; remove 'model' and 'sft'")
        grpo = GRPOConfig(**check_fields(GRPOConfig, raw["grpo"], f"{path}: grpo"))
        check_grpo(grpo, f"{path}: grpo")
        return Recipe(name=name, model=None, sft=None, path=path, raw=raw, grpo=grpo)
    model = ModelConfig(**check_fields(ModelConfig, raw.get("model", {}), f"{path}: model"))
    model.validate(f"{path}: model")
    sft = SFTConfig(**check_fields(SFTConfig, raw.get("sft", {}), f"{path}: sft"))
    if sft.init and "model" in raw:
        raise ConfigError(f"{path}: sft.init takes the model from {sft.init}; remove 'model'")
    if sft.context and not sft.init:
        raise ConfigError(f"{path}: sft: context {sft.context} sets an init checkpoint's context; without init, "
                          f"set model.max_position_embeddings")
    check_sft(sft, f"{path}: sft")
    return Recipe(name=name, model=model, sft=sft, path=path, raw=raw)


def check_sft(s, source):
    check_ranges(s, SFT_RANGES, source)
    check_schedule(s, source)
    check_one_of(s.split, ("train", "sft", "rl"), source, "split")
    check_one_of(s.sort_trace, SORT_TRACES, source, "sort_trace")
    for i, d in enumerate(s.datasets):
        if not isinstance(d, str) or not d:
            raise invalid(source, f"datasets[{i}]", d, "a JSONL path or a stage name")
    families = check_families(s.families, source)
    if s.datasets and s.dataset_weight == 0:
        raise ConfigError(f"{source}: dataset_weight=0 would never sample datasets {s.datasets}; "
                          f"make it > 0 or remove datasets")
    if families == 0 and not s.datasets:
        raise ConfigError(f"{source}: families: every weight is 0 and there are no datasets; "
                          f"give a family a weight > 0")


def check_grpo(g, source):
    check_ranges(g, GRPO_RANGES, source)
    check_schedule(g, source)
    check_one_of(g.split, ("train", "rl"), source, "split")
    if check_families(g.families, source) == 0:
        raise ConfigError(f"{source}: families: every weight is 0; give a family a weight > 0")
    check_weights(g.rewards, source, "rewards", "(-inf, inf)")


def check_schedule(c, source):
    """The cosine schedule decays from lr to min_lr; a floor above the peak is a typo."""
    if c.min_lr > c.lr:
        raise invalid(source, "min_lr", c.min_lr, f"<= lr={c.lr!r}")


def load_stages(raw_stages, path):
    """Validate a `stages:` list -> [Stage]; references must name earlier stages or existing paths."""
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(f"{path}: stages must be a non-empty list")
    stages = []
    for i, raw in enumerate(raw_stages):
        where = f"{path}: stages[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ConfigError(f"{where}: each stage is a mapping with a 'name'")
        where = f"{where} ({raw['name']})"
        check_keys(raw, STAGE_KEYS, where)
        kinds = [k for k in ("sft", "grpo", "rejection") if k in raw]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: a stage has exactly one of sft, grpo, rejection; got {kinds or 'none'}")
        if raw["name"] in {s.name for s in stages}:
            raise ConfigError(f"{where}: duplicate stage name {raw['name']!r}")
        kind = kinds[0]
        if kind == "rejection":
            rc = RejectionConfig(**check_fields(RejectionConfig, raw["rejection"], f"{where}: rejection"))
            check_rejection(rc, f"{where}: rejection")
            st = Stage(raw["name"], kind, raw.get("description", ""), rejection=rc)
        else:
            body = {k: v for k, v in raw.items() if k in ("name", "model", "sft", "grpo")}
            st = Stage(raw["name"], kind, raw.get("description", ""), recipe=recipe_from_dict(body, where))
        for ref in references(st):
            if ref and "/" not in ref and ref not in {s.name for s in stages}:
                raise ConfigError(f"{where}: {ref!r} is neither an earlier stage nor a path")
        stages.append(st)
    return stages


def references(st):
    """The stage names or paths a stage reads: its init, teacher and datasets."""
    if st.kind == "rejection":
        return [st.rejection.init]
    if st.kind == "grpo":
        return [st.recipe.grpo.init]
    return [st.recipe.sft.init, st.recipe.sft.teacher, *st.recipe.sft.datasets]
