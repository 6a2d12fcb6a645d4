"""`tinyr1 simulate`'s command line: --press/--hold times and pins, and the --gif/--frames outputs, all
checked before the simulation runs (a bad output path used to fail only after the whole run)."""
import os

import pytest
from click.testing import CliRunner

from conftest import ROOT
from tinyr1.cli import main
from runtime.errors import ConfigError
from runtime.kiosk.config import load_config
from runtime.kiosk.simulate import Press, check_outputs, check_script, parse_press

OLED = os.path.join(ROOT, "firmware_configs", "pi5-ssd1306.yaml")     # buttons 17, 27, 22 (hold), 23 (hold)


def test_press_times_are_parsed_and_bounded():
    assert parse_press("17") == Press(17, None)
    assert parse_press("17@2.5", hold=True) == Press(17, 2.5, hold=True)
    assert parse_press("17@0") == Press(17, 0.0) and parse_press("17@3600") == Press(17, 3600.0)
    for text, words in [("17@1e9", "--press '17@1e9': 1000000000.0 seconds is not in 0..3600 (an hour"),
                        ("17@-1", "--press '17@-1': -1.0 seconds is not in 0..3600"),
                        ("17@nan", "--press '17@nan': nan seconds is not in 0..3600"),
                        ("17@inf", "--press '17@inf': inf seconds is not in 0..3600"),
                        ("17@", "--press '17@': expected PIN or PIN@SECONDS, e.g. 17 or 17@2.5"),
                        ("x@1", "--press 'x@1': expected PIN or PIN@SECONDS"),
                        ("9" * 5000, "--press '99999"),
                        ("9" * 5000, "(5000 characters): expected PIN or PIN@SECONDS")]:
        with pytest.raises(ConfigError) as e:
            parse_press(text)
        assert words in str(e.value) and len(str(e.value)) < 200, str(e.value)
    with pytest.raises(ConfigError, match=r"^--hold '22@1e9': 1000000000.0 seconds"):
        parse_press("22@1e9", hold=True)


def test_presses_must_be_on_the_configs_buttons():
    cfg = load_config(OLED)
    check_script(cfg, [Press(17), Press(22, 1.0, hold=True)])
    with pytest.raises(ConfigError, match=r"^--press 5: no button on GPIO 5; buttons: \[17, 22, 23, 27\]$"):
        check_script(cfg, [Press(17), Press(5)])
    with pytest.raises(ConfigError, match=r"^--hold 17: the button on GPIO 17 has no hold action \(hold: none\)"):
        check_script(cfg, [Press(17, hold=True)])


def unwritable_dir(tmp_path):
    """A directory no file can be created in, even by root (the tests may run as root in a container)."""
    if os.geteuid() == 0:
        return "/sys"
    d = tmp_path / "ro"
    d.mkdir(mode=0o500)
    return str(d)


def test_outputs_are_checked_before_the_run(tmp_path):
    (tmp_path / "afile").write_text("x")
    bad = [(dict(gif=str(tmp_path / "no" / "k.gif")),
            f"--gif '{tmp_path}/no/k.gif': '{tmp_path}/no' is not a directory"),
           (dict(gif=str(tmp_path / "afile" / "k.gif")), f"'{tmp_path}/afile' is not a directory"),
           (dict(gif=str(tmp_path)), f"--gif '{tmp_path}': is a directory; give a file name, e.g. kiosk.gif"),
           (dict(gif=os.path.join(unwritable_dir(tmp_path), "k.gif")), "k.gif': cannot write it: "),
           (dict(frames_dir=str(tmp_path / "afile")), f"--frames '{tmp_path}/afile': is a file, not a directory"),
           (dict(frames_dir=os.path.join(unwritable_dir(tmp_path), "frames")), "frames': cannot write PNGs there: ")]
    for kw, words in bad:
        with pytest.raises(ConfigError) as e:
            check_outputs(**kw)
        assert words in str(e.value), (words, str(e.value))
    old = tmp_path / "old.gif"
    old.write_bytes(b"GIF89a...")
    check_outputs(gif=str(old), frames_dir=str(tmp_path / "new" / "frames"))
    assert old.read_bytes() == b"GIF89a..."                         # checked, not truncated
    assert os.path.isdir(tmp_path / "new" / "frames") and not os.listdir(tmp_path / "new" / "frames")
    check_outputs(gif=str(tmp_path / "k.gif"))
    assert not (tmp_path / "k.gif").exists()                         # no empty GIF left behind


def test_simulate_command_fails_fast_on_bad_inputs(tmp_path, tiny_model_file):
    """Each fails with one line and no transcript: nothing was pressed."""
    cases = [(["--press", "17@1e9"], "Error: --press '17@1e9': 1000000000.0 seconds is not in 0..3600"),
             (["--hold", "22@nan"], "Error: --hold '22@nan': nan seconds is not in 0..3600"),
             (["--press", "5"], "Error: --press 5: no button on GPIO 5; buttons: [17, 22, 23, 27]"),
             (["--press", "17", "--gif", str(tmp_path / "no" / "k.gif")], f"Error: --gif '{tmp_path}/no/k.gif': "),
             (["--press", "17", "--frames", os.path.join(unwritable_dir(tmp_path), "f")], "Error: --frames '")]
    for args, start in cases:
        r = CliRunner().invoke(main, ["simulate", "--config", OLED, "--model", tiny_model_file] + args)
        assert r.exit_code == 1 and r.output.startswith(start), (args, r.output)
        assert r.output.count("\n") == 1 and "presses accepted" not in r.output, r.output
