"""runtime/checks.py: the one rule and the one wording for configuration values, shared by the trainer's
recipes, the kiosk's YAML and the sampling options."""
import numpy as np
import pytest
import yaml

from runtime.checks import check_fields, check_range, describe, in_interval, quote
from runtime.errors import ConfigError, GenerationError
from runtime.generate import check_options
from runtime.kiosk.config import load_config
from trainer.recipe import recipe_from_dict


@pytest.mark.parametrize("interval, integer, words", [
    ("[1, inf)", True, "an integer >= 1"),
    ("(0, inf)", False, "a finite number > 0"),
    ("[0, 2000]", True, "an integer from 0 to 2000"),
    ("(0, 1]", False, "a number in (0, 1]"),
    ("[0.1, 10]", False, "a number in [0.1, 10]"),
    ("(-inf, inf)", False, "a finite number"),
    ("(-inf, 0]", False, "a finite number <= 0"),
])
def test_describe(interval, integer, words):
    assert describe(interval, integer) == words


@pytest.mark.parametrize("value, interval, integer, ok", [
    (1, "[1, inf)", True, True), (0, "[1, inf)", True, False), (1.0, "[1, inf)", True, False),
    (True, "[0, 1]", True, False), (True, "[0, 1]", False, False), (np.int64(3), "[1, 5]", True, True),
    (np.float32(0.5), "(0, 1]", False, True), (2, "(0, 1]", False, False), (1, "(0, 1]", False, True),
    (float("nan"), "(-inf, inf)", False, False), (float("inf"), "[0, inf)", False, False),
    (10 ** 400, "[0, inf)", True, True), (10 ** 400, "[0, inf)", False, True), (-(10 ** 400), "[0, inf)", True, False),
    ("1", "[0, inf)", False, False), (None, "[0, inf)", False, False),
])
def test_in_interval(value, interval, integer, ok):
    assert in_interval(value, interval, integer) is ok


def test_the_message_names_where_the_key_the_value_and_what_is_valid():
    with pytest.raises(ConfigError, match=r"^r.yaml: sft: lr=nan: must be a number in \(0, 1\]$"):
        check_range(float("nan"), "(0, 1]", "r.yaml: sft", "lr")
    with pytest.raises(GenerationError, match=r"^top_k=0: must be an integer >= 1, or None$"):
        check_range(0, "[1, inf)", "", "top_k", integer=True, note=", or None", error=GenerationError)
    assert quote("x" * 1000).endswith("... (1000 characters)") and len(quote("x" * 1000)) < 90


def test_check_fields_keys_types_and_required():
    from dataclasses import dataclass
    from typing import Optional

    @dataclass
    class Section:
        pin: int
        rate: float = 1.0
        name: Optional[str] = None
        path: str = ""

    assert check_fields(Section, {"pin": 3, "rate": 2}, "f.yaml", internal=("path",)) == {"pin": 3, "rate": 2.0}
    for raw, message in [({"pin": 3, "path": "x"}, "f.yaml: unknown key 's.path'; allowed keys: pin, rate, name"),
                         ({"rate": 1.0}, "f.yaml: missing key 's.pin' (required: pin)"),
                         ({"pin": 3, "rate": "fast"}, "f.yaml: s.rate='fast': must be a number"),
                         ({"pin": True}, "f.yaml: s.pin=True: must be an integer"),
                         ({"pin": 3, "name": 5}, "f.yaml: s.name=5: must be a string or null"),
                         ([1, 2], "f.yaml: s=[1, 2]: must be a mapping of pin, rate, name")]:
        with pytest.raises(ConfigError) as e:
            check_fields(Section, raw, "f.yaml", "s.", internal=("path",))
        assert str(e.value) == message


def test_the_trainer_the_kiosk_and_the_sampler_say_the_same_thing(tmp_path):
    """The same kind of mistake reads the same in a recipe, a kiosk config and a sampling option."""
    with pytest.raises(ConfigError) as recipe:
        recipe_from_dict({"sft": {"steps": 0}}, "r.yaml")
    kiosk = tmp_path / "k.yaml"
    kiosk.write_text(yaml.safe_dump({"board": "pi5", "model": "m", "display": {"type": "terminal"}, "queue_size": 0,
                                     "buttons": [{"pin": 17, "label": "a", "question": "What is 1+1?"}]}))
    with pytest.raises(ConfigError) as config:
        load_config(str(kiosk))
    with pytest.raises(GenerationError) as option:
        check_options(max_new_tokens=0)
    assert str(recipe.value) == "r.yaml: sft: steps=0: must be an integer >= 1"
    assert str(config.value) == f"{kiosk}: queue_size=0: must be an integer from 1 to 64"
    assert str(option.value) == "max_new_tokens=0: must be an integer >= 1, or None for the model's default"
    with pytest.raises(ConfigError) as recipe:
        recipe_from_dict({"sft": {"stepz": 1}}, "r.yaml")
    kiosk.write_text(kiosk.read_text() + "stepz: 1\n")
    with pytest.raises(ConfigError) as config:
        load_config(str(kiosk))
    assert str(recipe.value).startswith("r.yaml: sft: unknown key 'stepz'; allowed keys: seed, steps")
    assert str(config.value).startswith(f"{kiosk}: unknown key 'stepz'; allowed keys: board, model")
