"""Kiosk config validation: every error names the file, the key and the value."""
import pytest
import yaml
from click.testing import CliRunner

from runtime.cli import main
from runtime.errors import ConfigError
from runtime.kiosk.config import check_model, load_config

BASE = {"board": "pi5", "model": "m.msgpack", "display": {"type": "ssd1306"},
        "buttons": [{"pin": 17, "label": "Add", "question": "What is 47+38?"},
                    {"pin": 27, "label": "Fib", "task": "fib", "hold": "toggle_thinking"}],
        "led": {"pin": 12}}


def write(tmp_path, cfg, text=None):
    p = tmp_path / "kiosk.yaml"
    p.write_text(text if text is not None else yaml.safe_dump(cfg))
    return str(p)


def changed(path, value):
    """BASE with the value at a dotted path ("buttons.1.pin") replaced; value DELETE removes the key."""
    import copy
    cfg = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = cfg
    for k in parents:
        node = node[int(k)] if k.isdigit() else node[k]
    key = int(last) if last.isdigit() else last
    if value == "DELETE":
        del node[key]
    else:
        node[key] = value
    return cfg


BAD = [  # (change, value, words the message must contain)
    ("colour", "red", ["colour", "unknown key", "allowed keys"]),
    ("display.colour", "red", ["display.colour", "unknown key"]),
    ("buttons.0.colour", "red", ["buttons[0].colour", "unknown key"]),
    ("board", "pi3", ["board", "'pi3'", "pi4, pi5, pizero2w"]),
    ("display.type", "st7735", ["display.type", "'st7735'", "ssd1306"]),
    ("buttons.0.pin", 1, ["buttons[0].pin", "1 is outside 2..27"]),
    ("buttons.0.pin", 28, ["buttons[0].pin", "28 is outside 2..27"]),
    ("buttons.0.pin", "17", ["buttons[0].pin", "expected int", "'17'"]),
    ("buttons.1.pin", 17, ["buttons[1].pin", "GPIO 17 is already used by buttons[0]"]),
    ("buttons.0.pin", 3, ["buttons[0].pin", "GPIO 3", "I2C"]),
    ("led.pin", 27, ["led.pin", "GPIO 27 is already used"]),
    ("led.pin", 2, ["led.pin", "GPIO 2", "I2C"]),
    ("buttons.0.task", "add", ["buttons[0]", "exactly one of question"]),
    ("buttons.1.task", "integrals", ["buttons[1].task", "'integrals'", "fib"]),
    ("buttons.1.hold", "explode", ["buttons[1].hold", "'explode'", "toggle_thinking"]),
    ("buttons.0.label", "DELETE", ["buttons[0].label", "missing"]),
    ("display.thinking", "loud", ["display.thinking", "'loud'", "collapsed"]),
    ("display.i2c_address", 0x99, ["display.i2c_address", "0x99"]),
    ("display.i2c_khz", 250, ["display.i2c_khz", "250"]),
    ("display.width", "wide", ["display.width", "expected int or null", "'wide'"]),
    ("display.font_size", True, ["display.font_size", "expected int", "True"]),
    ("led.pwm", "yes", ["led.pwm", "expected bool", "'yes'"]),
    ("busy", "ignore", ["busy", "'ignore'", "cancel, queue"]),
    ("buttons", [], ["buttons", "non-empty list"]),
    ("display", "ssd1306", ["display", "expected a mapping"]),
    ("generation.max_new_tokens", 0, ["generation", "max_new_tokens"]),
    ("model", "DELETE", ["missing key 'model'"]),
]


@pytest.mark.parametrize("change,value,words", BAD, ids=[f"{c}={v}" for c, v, _ in BAD])
def test_bad_configs_name_file_key_and_value(tmp_path, change, value, words):
    cfg = dict(BASE, generation={"max_new_tokens": 50})
    cfg = changed(change, value) if not change.startswith("generation") else \
        dict(BASE, generation={"max_new_tokens": value})
    path = write(tmp_path, cfg)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(path)
    for w in words:
        assert w in msg, (w, msg)


def test_hdmi_frees_the_i2c_pins(tmp_path):
    cfg = changed("display", {"type": "hdmi"})
    cfg["buttons"][0]["pin"] = 2
    assert load_config(write(tmp_path, cfg)).buttons[0].pin == 2


def test_yaml_syntax_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"kiosk.yaml: invalid YAML"):
        load_config(write(tmp_path, None, "board: [pi5"))
    with pytest.raises(ConfigError, match=r"kiosk.yaml: a kiosk config is a mapping"):
        load_config(write(tmp_path, None, "- pi5\n"))
    with pytest.raises(ConfigError, match=r"cannot read"):
        load_config(str(tmp_path / "absent.yaml"))


def test_model_path_is_relative_to_the_config(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.model == str(tmp_path / "m.msgpack")


def test_missing_incompatible_model_and_unencodable_question(tmp_path, tiny_model_file):
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"kiosk.yaml: model: .*m.msgpack' does not exist"):
        check_model(load_config(path))
    (tmp_path / "m.msgpack").write_bytes(b"\x93not a model")
    with pytest.raises(ConfigError, match=r"kiosk.yaml: model: .*is not a usable tinyr1 model"):
        check_model(load_config(path))
    cfg = changed("buttons.0.question", "What is 47\u00d738?")
    with pytest.raises(ConfigError) as e:
        check_model(load_config(write(tmp_path, cfg), model_override=tiny_model_file))
    assert "buttons[0].question" in str(e.value) and "\u00d7" in str(e.value) and "position 10" in str(e.value)
    cfg = changed("buttons.0.question", "What is " + "1+" * 100 + "1?")
    with pytest.raises(ConfigError, match=r"buttons\[0\].question: \d+ tokens leave no room"):
        check_model(load_config(write(tmp_path, cfg), model_override=tiny_model_file))


def test_shipped_configs_validate(tiny_model_file):
    import glob
    import os
    from conftest import ROOT
    paths = sorted(glob.glob(os.path.join(ROOT, "firmware_configs", "*.yaml")))
    assert {os.path.basename(p) for p in paths} >= {"pi5-ssd1306.yaml", "pi4-sh1106.yaml", "pizero2w-lcd1602.yaml",
                                                   "pi-hdmi.yaml"}
    for p in paths:
        r = CliRunner().invoke(main, ["validate", p, "--model", tiny_model_file])
        assert r.exit_code == 0, r.output
        assert "ok: board" in r.output


def test_validate_command_reports_the_error(tmp_path, tiny_model_file):
    path = write(tmp_path, changed("buttons.1.pin", 17))
    r = CliRunner().invoke(main, ["validate", path, "--model", tiny_model_file])
    assert r.exit_code == 1 and "buttons[1].pin: GPIO 17 is already used" in r.output


def test_wiring_table_maps_bcm_to_header_pins(tiny_model_file):
    from conftest import ROOT
    import os
    r = CliRunner().invoke(main, ["validate", "--wiring", os.path.join(ROOT, "firmware_configs", "pi5-ssd1306.yaml"),
                                  "--model", tiny_model_file])
    assert r.exit_code == 0, r.output
    rows = [line.split("|")[1:-1] for line in r.output.splitlines() if line.startswith("| ")][1:]
    got = {cells[0].strip(): (cells[1].strip(), cells[2].strip()) for cells in rows}
    assert got["ssd1306 SDA"] == ("3", "GPIO2") and got["ssd1306 SCL"] == ("5", "GPIO3")
    assert got['button "Train speed"'] == ("11", "GPIO17")           # BCM 17 is header pin 11
    assert got['button "Random sum", hold: next_page'] == ("16", "GPIO23")
    assert got["status LED (+ 330 ohm)"] == ("32", "GPIO12")
