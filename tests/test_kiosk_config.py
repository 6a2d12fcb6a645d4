"""Kiosk config validation: every error names the file, the key and the value, in the one wording of
runtime/checks.py (`kiosk.yaml: key=value: must be ...`) for types, ranges and choices."""
import re

import pytest
import yaml
from click.testing import CliRunner

from tinyr1.cli import main
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
    ("colour", "red", ["unknown key 'colour'; allowed keys: board, model, display, buttons, led, generation"]),
    ("display.colour", "red", ["unknown key 'display.colour'; allowed keys: type, width"]),
    ("buttons.0.colour", "red", ["unknown key 'buttons[0].colour'"]),
    ("board", "pi3", ["board='pi3': must be one of pi4, pi5, pizero2w"]),
    ("display.type", "st7735", ["display.type='st7735': must be one of ssd1306, sh1106, hd44780, hdmi, terminal"]),
    ("buttons.0.pin", 1, ["buttons[0].pin=1: must be an integer from 2 to 27 (a BCM GPIO number on the 40-pin "
                          "header)"]),
    ("buttons.0.pin", 28, ["buttons[0].pin=28: must be an integer from 2 to 27"]),
    ("buttons.0.pin", "17", ["buttons[0].pin='17': must be an integer"]),
    ("buttons.1.pin", 17, ["buttons[1].pin", "GPIO 17 is already used by buttons[0]"]),
    ("buttons.0.pin", 3, ["buttons[0].pin", "GPIO 3", "I2C"]),
    ("led.pin", 27, ["led.pin", "GPIO 27 is already used"]),
    ("led.pin", 2, ["led.pin", "GPIO 2", "I2C"]),
    ("buttons.0.task", "add", ["buttons[0]", "exactly one of question"]),
    ("buttons.1.task", "integrals", ["buttons[1].task='integrals': must be one of add, sub", "fib"]),
    ("buttons.1.hold", "explode", ["buttons[1].hold='explode': must be one of none, toggle_thinking"]),
    ("buttons.0.label", "DELETE", ["missing key 'buttons[0].label' (required: pin, label)"]),
    ("display.thinking", "loud", ["display.thinking='loud': must be one of full, collapsed, hidden"]),
    ("display.i2c_address", 0x99, ["display.i2c_address=0x99: must be an integer from 3 to 119 (a 7-bit I2C "
                                   "address, 0x03..0x77)"]),
    ("display.i2c_khz", 250, ["display.i2c_khz=250: must be one of 100, 400, 1000"]),
    ("display.width", "wide", ["display.width='wide': must be an integer or null"]),
    ("display.font_size", True, ["display.font_size=True: must be an integer"]),
    ("led.pwm", "yes", ["led.pwm='yes': must be true or false"]),
    ("busy", "ignore", ["busy='ignore': must be one of cancel, queue"]),
    ("buttons", [], ["buttons=[]: must be a non-empty list"]),
    ("display", "ssd1306", ["display='ssd1306': must be a mapping of type, width"]),
    ("model", "DELETE", ["missing key 'model' (required: board, model, display, buttons)"]),
    ("model", "", ["model: empty; give the compiled model's path"]),
    # ranges (issue 15): each field's documented range, NaN and infinities included
    ("display.refresh_ms", -5, ["display.refresh_ms=-5: must be an integer from 0 to 2000, or null for the default"]),
    ("display.refresh_ms", 10 ** 9, ["display.refresh_ms=1000000000: must be an integer from 0 to 2000"]),
    ("display.font_size", -1, ["display.font_size=-1: must be an integer from 4 to 256"]),
    ("display.i2c_port", -1, ["display.i2c_port=-1: must be an integer from 0 to 255"]),
    ("display.i2c_port", 256, ["display.i2c_port=256: must be an integer from 0 to 255"]),
    ("display.framebuffer", "/dev/sda", ["display.framebuffer='/dev/sda': must be /dev/fb0../dev/fb31"]),
    ("display", {"type": "hdmi", "rotate": 1}, ["display.rotate: 1: only the ssd1306 and sh1106 drivers rotate"]),
    ("display", {"type": "hd44780", "font": "x.ttf"}, ["display.font: the hd44780 display draws with its own font"]),
    ("display", {"type": "ssd1306", "width": 100}, ["display: 100x64 is not a size the ssd1306 driver supports",
                                                    "128x64, 128x32, 96x16, 64x48, 64x32"]),
    ("display", {"type": "hd44780", "width": 40}, ["display: 40x2 is not a size the hd44780 driver supports",
                                                   "16x2, 16x4, 20x2, 20x4"]),
    ("display", {"type": "hdmi", "width": 40, "height": 40},
     ["display: 40x40 with 6x11-pixel characters", "holds 6x3 characters", "at least 8x2"]),
    ("display", {"type": "terminal", "width": 5}, ["display: 5x8 holds 5x8 characters", "at least 8x2"]),
    ("queue_size", 0, ["queue_size=0: must be an integer from 1 to 64"]),
    ("debounce_ms", -1, ["debounce_ms=-1: must be an integer from 0 to 1000"]),
    ("hold_seconds", float("nan"), ["hold_seconds=nan: must be a number in [0.1, 10]"]),
    ("hold_seconds", float("inf"), ["hold_seconds=inf: must be a number in [0.1, 10]"]),
    ("title", "t" * 65, ["title: 'tttttttttt", "(65 characters) is longer than 64 characters"]),
    ("buttons.0.label", "L" * 65, ["buttons[0].label:", "is longer than 64 characters"]),
    ("buttons.0.question", "Q" * 1001, ["buttons[0].question:", "is longer than 1000 characters"]),
    ("buttons.0.label", "a\tb", ["buttons[0].label: 'a\\tb': character U+0009 '\\t' at position 1 is not "
                                 "printable"]),
    ("buttons.0.label", "a\u00a0b", ["buttons[0].label: 'a\\xa0b': character U+00A0 '\\xa0' at position 1"]),
    ("buttons.0.label", "   ", ["buttons[0].label: empty"]),
    # characters the display's font has no glyph for (an emoji sent the SSD1306 to the console for good)
    ("buttons.0.label", "Smile \U0001F600", ["buttons[0].label: character U+1F600 '\U0001F600' at position 6 has "
                                             "no glyph in Pillow's 6x11 bitmap font (Latin-1)"]),
    ("buttons.0.question", "What is 4\u20ac?", ["buttons[0].question: character U+20AC '\u20ac' at position 9"]),
    ("title", "\u2603 kiosk", ["title: character U+2603"]),
    ("display", {"type": "hd44780"}, ["buttons[0].question: character U+20AC '\u20ac' at position 9",
                                      "no glyph in the HD44780's character ROM (A00)"]),
    # generation: runtime.generate.check_options, the rule every caller of generate() uses
    ("generation", {"max_new_tokens": 0}, ["generation: max_new_tokens=0: must be"]),
    ("generation", {"temperature": float("nan")}, ["generation: temperature=nan: must be a finite number"]),
    ("generation", {"temperature": -1}, ["generation: temperature=-1.0: must be"]),
    ("generation", {"seed": -1}, ["generation: seed=-1: must be an integer from 0 to 4294967295"]),
    ("generation", {"top_p": float("nan")}, ["generation: top_p=nan: must be"]),
    ("generation", {"top_k": 0}, ["generation: top_k=0: must be"]),
]


@pytest.mark.parametrize("change,value,words", BAD, ids=[f"{c}={v!r:.30}" for c, v, _ in BAD])
def test_bad_configs_name_file_key_and_value(tmp_path, change, value, words):
    cfg = changed(change, value)
    if change == "display" and value == {"type": "hd44780"}:
        cfg["buttons"][0]["question"] = "What is 4\u20ac?"
    path = write(tmp_path, cfg)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(path + ": ") and "\n" not in msg and len(msg) < 400, msg
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


GOOD_YAML = ("board: pi5\nmodel: m.msgpack\ndisplay: {type: ssd1306}\n"
             "buttons:\n  - {pin: 17, label: Add, question: \"What is 47+38?\"}\n")


def write_bytes(tmp_path, data):
    p = tmp_path / "kiosk.yaml"
    p.write_bytes(data)
    return str(p)


def billion_laughs():
    """413 bytes that expand to 9^9 strings: nine nested lists, each nine aliases of the one before."""
    rows = ["  - - &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    rows += [f"    - &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    return ("board: pi5\nmodel: m.msgpack\ndisplay: {type: ssd1306}\nbuttons:\n" + "\n".join(rows) + "\n").encode()


HOSTILE = [  # (file bytes, words the one-line message must contain)
    (b"board: pi5\nmodel: caf\xe9.msgpack\n",
     ["not UTF-8: byte 0xe9 at offset 21 (line 2): invalid continuation byte"]),
    (b"\xff\xfeb\x00o\x00", ["not UTF-8: byte 0xff at offset 0 (line 1)"]),              # UTF-16
    (billion_laughs(), ["line 5: YAML anchor &a: anchors and aliases are not allowed"]),
    (GOOD_YAML.replace("display: {type: ssd1306}", "display: *d").encode(), ["line 3: YAML alias *d"]),
    (GOOD_YAML.replace("{type: ssd1306}", "&d {type: ssd1306}").encode(), ["line 3: YAML anchor &d"]),
    ((GOOD_YAML + "board: pi4\n").encode(), ["line 6: duplicate key 'board' (first on line 1)"]),
    (GOOD_YAML.replace("pin: 17,", "pin: 17, pin: 27,").encode(), ["line 5: duplicate key 'pin' (first on line 5)"]),
    (b"#" * 69999 + b"\n", ["70,000 bytes; a kiosk config is at most 65,536 bytes"]),
    (b"board: " + b"[" * 5000 + b"]" * 5000 + b"\n", ["line 1: nested deeper than 10 levels"]),
    (b"board: pi5\nmodel: \"m\x01\"\n", ["invalid YAML at line 2: character U+0001 is not allowed"]),
    (b"board: " + b"9" * 5000 + b"\n", ["line 1: '99999", "(5000 characters) is not a valid int: more than 40 "
                                                          "characters"]),
    (b"board: 2024-13-45\n", ["line 1: '2024-13-45' is not a valid timestamp: month must be in 1..12"]),
    (b"board: !x pi5\n", ["invalid YAML at line 1, column 8: could not determine a constructor for the tag '!x'"]),
    (b"board: pi5\n---\nboard: pi4\n", ["invalid YAML at line 2, column 1: but found another document"]),
    (GOOD_YAML.replace("pin: 17", "pin: 0x" + "f" * 20000).encode(), ["line 5: '0xffff", "(20002 characters) is not "
                                                                     "a valid int: more than 40 characters"]),
    (GOOD_YAML.replace("pin: 17", "pin: 0x" + "f" * 38).encode(), [f"buttons[0].pin={int('f' * 38, 16)}: must be an "
                                                                  "integer from 2 to 27"]),
    (GOOD_YAML.replace("label: Add", "label: " + "x" * 60000).encode(),
     ["buttons[0].label: 'xxxxxxxx", "... (60000 characters) is longer than 64 characters"]),
    (GOOD_YAML.replace("label: Add", "label: Add, '" + "k" * 1000 + "': 1").encode(),
     ["unknown key 'buttons[0].kkkkkkk", "(1011 characters); allowed keys: pin, label, question, task, hold"]),
    (b"board: pi5\nmodel: m\ndisplay: {type: ssd1306}\nbuttons: [[" + b"1," * 10000 + b"]]\n",
     ["buttons[0]=[1, 1, 1,", "... (10000 items): must be a mapping of pin, label"]),
]


@pytest.mark.parametrize("data,words", HOSTILE, ids=[w[0][:40] for _, w in HOSTILE])
def test_hostile_files_get_one_short_line(tmp_path, data, words):
    """Not UTF-8, YAML bombs, duplicate keys, oversized files and values: a ConfigError of one line,
    under 400 characters, naming the file, where and what."""
    path = write_bytes(tmp_path, data)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(path + ": ") and "\n" not in msg and len(msg) < 400, msg[:1000]
    for w in words:
        assert w in msg, (w, msg)


def test_billion_laughs_is_refused_at_once(tmp_path):
    import time
    path = write_bytes(tmp_path, billion_laughs())
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="anchors and aliases are not allowed"):
        load_config(path)
    assert time.perf_counter() - t < 5                  # was: 61 s, then MemoryError


def test_a_byte_order_mark_and_a_64_kib_file_are_fine(tmp_path):
    from runtime.kiosk.yamlfile import MAX_FILE_BYTES
    data = b"\xef\xbb\xbf" + GOOD_YAML.encode()
    data += b"#" * (MAX_FILE_BYTES - len(data) - 1) + b"\n"
    assert len(data) == MAX_FILE_BYTES
    assert load_config(write_bytes(tmp_path, data)).buttons[0].label == "Add"


def test_quote_caps_every_value():
    from runtime.checks import quote
    assert quote("What is 47+38?") == "'What is 47+38?'"
    assert quote("x" * 5_000_000) == "'" + "x" * 59 + "... (5000000 characters)"
    assert quote(list(range(100000))).endswith("... (100000 items)")
    assert quote(int("f" * 20000, 16)) == "<an integer of 80000 bits>"
    assert quote("/a/long/path" * 10, 200) == repr("/a/long/path" * 10)


@pytest.mark.parametrize("command", ["validate", "simulate", "flash"])
def test_commands_report_a_bad_file_in_one_line(tmp_path, tiny_model_file, command):
    path = write_bytes(tmp_path, b"board: pi5\nmodel: caf\xe9.msgpack\n")
    args = {"validate": ["validate", path], "simulate": ["simulate", "--config", path],
            "flash": ["flash", "--config", path, "--target", str(tmp_path / "sd")]}[command]
    r = CliRunner().invoke(main, args + ["--model", tiny_model_file])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert r.output == f"Error: {path}: not UTF-8: byte 0xe9 at offset 21 (line 2): invalid continuation byte; " \
                       f"save the file as UTF-8\n"


def test_model_path_is_relative_to_the_config(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.model == str(tmp_path / "m.msgpack")


def test_missing_incompatible_model_and_unencodable_question(tmp_path, tiny_model_file):
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError, match=r"kiosk.yaml: model: .*m.msgpack' does not exist"):
        check_model(load_config(path))
    (tmp_path / "m.msgpack").mkdir()
    with pytest.raises(ConfigError, match=r"kiosk.yaml: model: .*m.msgpack' is a directory, not a compiled model"):
        check_model(load_config(path))
    (tmp_path / "m.msgpack").rmdir()
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
    cfg = changed("generation", {"top_k": 104})                   # past the tokenizer's 103 tokens
    with pytest.raises(ConfigError, match=r"kiosk.yaml: generation: top_k=104: must be an integer from 1 to 103 "):
        check_model(load_config(write(tmp_path, cfg), model_override=tiny_model_file))


def test_a_bad_seed_or_nan_never_reaches_a_press(tmp_path, tiny_model_file):
    """seed: -1 made every press of a task: button raise in the worker; temperature: .nan blanked answers.
    Both are refused when the file loads (`load_config`, which `tinyr1 kiosk` and `simulate` call first)."""
    for section, words in (("{seed: -1}", "generation: seed=-1: must be"),
                           ("{temperature: .nan}", "generation: temperature=nan: must be a finite number")):
        path = write_bytes(tmp_path, (GOOD_YAML.replace('question: "What is 47+38?"', "task: add")
                                      + f"generation: {section}\n").encode())
        with pytest.raises(ConfigError, match=re.escape(f"{path}: {words}")):
            load_config(path)
        r = CliRunner().invoke(main, ["simulate", "--config", path, "--model", tiny_model_file])
        assert r.exit_code == 1 and r.output.startswith(f"Error: {path}: {words}"), r.output


def test_validate_command_reports_the_error(tmp_path, tiny_model_file):
    path = write(tmp_path, changed("buttons.1.pin", 17))
    r = CliRunner().invoke(main, ["validate", path, "--model", tiny_model_file])
    assert r.exit_code == 1 and "buttons[1].pin: GPIO 17 is already used" in r.output


def test_wiring_table_maps_bcm_to_header_pins(tiny_model_file):
    from conftest import ROOT
    import os
    r = CliRunner().invoke(main, ["validate", "--wiring", "--no-answers",
                                  os.path.join(ROOT, "firmware_configs", "pi5-ssd1306.yaml"), "--model", tiny_model_file])
    assert r.exit_code == 0, r.output
    rows = [line.split("|")[1:-1] for line in r.output.splitlines() if line.startswith("| ")][1:]
    got = {cells[0].strip(): (cells[1].strip(), cells[2].strip()) for cells in rows}
    assert got["ssd1306 SDA"] == ("3", "GPIO2") and got["ssd1306 SCL"] == ("5", "GPIO3")
    assert got['button "Train speed"'] == ("11", "GPIO17")           # BCM 17 is header pin 11
    assert got['button "Random sum", hold: next_page'] == ("16", "GPIO23")
    assert got["status LED (+ 330 ohm)"] == ("32", "GPIO12")
