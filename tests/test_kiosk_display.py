"""Screen layout, the real luma drivers with no hardware behind them, the console, sd_notify."""
import io
import logging
import os
import socket

import pytest

from conftest import ROOT
from runtime.kiosk.config import config_from_dict, load_config
from runtime.kiosk.display import LumaDisplay, RecordingBus, TerminalDisplay, load_font, open_display
from runtime.kiosk.layout import Line, View, layout, page_count, wrap
from runtime.kiosk.service import JournalFormatter, Watchdog, sd_notify


def test_wrap_keeps_words_and_cuts_long_ones():
    assert wrap("f0=0 f1=1 f2=1 f3=2", 10) == ["f0=0 f1=1", "f2=1 f3=2"]
    assert wrap("abcdefghijkl", 5) == ["abcde", "fghij", "kl"]
    assert wrap("a\nb", 5) == ["a", "b"]
    for cols in (1, 3, 7):
        for line in wrap("the quick brown fox jumps over 1234567890123", cols):
            assert len(line) <= cols


def answer_view(**kw):
    base = dict(mode="answer", question="What is fib(10)?",
                thinking="f0=0 f1=1 f2=1 f3=2 f4=3 f5=5 f6=8 f7=13 f8=21 f9=34 f10=55",
                answer="55", status="done", verified=True, tokens=64, tokens_per_second=812.4,
                thinking_mode="full")
    base.update(kw)
    return View(**base)


def test_layout_fits_the_grid_and_pages_a_long_answer():
    v = answer_view()
    pages = page_count(v, 21, 5)
    assert pages == 2
    seen = []
    for p in range(pages):
        v.page = p
        lines = layout(v, 21, 5)
        assert len(lines) == 5 and all(len(x.text) <= 21 for x in lines)
        assert lines[0].text == "What is fib(10)?" and lines[-1].text == f"812 tok/s right {p + 1}/2"
        seen += [x for x in lines[1:-1] if x.text]
    assert Line("= 55", strong=True) in seen
    assert " ".join(x.text for x in seen if not x.strong) == v.thinking


def test_layout_while_streaming_follows_the_newest_text():
    v = answer_view(status="thinking", answer="", thinking="f0=0 f1=1 f2=1 f3=2 f4=3 f5=5 f6=8 f7=13 f8=21")
    lines = layout(v, 21, 5)
    assert lines[-2].text.endswith("f8=21") and lines[-1].text == "thinking 64 tok"
    v.thinking_mode = "collapsed"
    assert layout(v, 21, 5)[1].text == v.thinking[-21:]
    v.thinking_mode = "hidden"
    assert [x.text for x in layout(v, 21, 5)[1:-1]] == ["", "", ""]


def test_layout_on_a_16x2_lcd_and_the_idle_screen():
    v = answer_view(thinking_mode="hidden", question="A train travels 300 km in 5 hours. What is its average speed?",
                    answer="60 km/h")
    assert [x.text for x in layout(v, 16, 2)] == ["A train travel..", "=60 km/h ok"]
    idle = View(labels=["17 Train speed", "27 Quadratic", "22 Fib"])
    assert [x.text for x in layout(idle, 16, 2)] == ["tinyr1", "17 Tr.. 27 Qu.."]
    assert [x.text for x in layout(idle, 21, 5)] == ["tinyr1", "17 Train speed", "27 Quadratic", "22 Fib"]


def test_real_oled_drivers_run_with_a_noop_interface():
    """luma.oled's ssd1306/sh1106 code paths, bytes discarded by luma's own noop serial interface."""
    from luma.core.interface.serial import noop
    import luma.oled.device as oled
    for name in ("ssd1306", "sh1106"):
        dev = getattr(oled, name)(noop(), width=128, height=64)
        d = LumaDisplay(dev, load_font())
        assert (d.cols, d.rows) == (21, 5)
        d.show(layout(answer_view(), d.cols, d.rows))
        assert d.frame.size == (128, 64) and d.frame.getbbox() is not None


def test_hd44780_sends_only_the_cells_that_changed():
    cfg = load_config(os.path.join(ROOT, "firmware_configs", "pizero2w-lcd1602.yaml"))
    d = open_display(cfg, simulate=True)
    bus = d.device._serial_interface._bus
    assert isinstance(bus, RecordingBus) and (d.cols, d.rows) == (16, 2)
    d.show([Line("What is fib(10)?"), Line("thinking 1 tok")])
    full = bus.bytes
    d.show([Line("What is fib(10)?"), Line("thinking 2 tok")])
    one = bus.bytes - full
    assert d.frame.size == (80, 16)
    assert 0 < one < full / 4, (one, full)


def test_hdmi_is_scaled_and_terminal_prints_final_screens():
    cfg = load_config(os.path.join(ROOT, "firmware_configs", "pi-hdmi.yaml"))
    d = open_display(cfg, simulate=True)
    assert d.frame is None and d.scale == 1 and d.size == (640, 360)
    out = io.StringIO()
    t = TerminalDisplay(21, 5, stream=out)
    t.show(layout(answer_view(status="thinking"), 21, 5))
    assert out.getvalue() == ""                                  # not a tty: only final screens
    t.show(layout(answer_view(), 21, 5), final=True)
    assert "What is fib(10)?" in out.getvalue() and "tok/s right" in out.getvalue()


def test_missing_display_library_is_named(monkeypatch):
    import sys
    from runtime.errors import ConfigError
    from runtime.kiosk.display import check_display_packages
    monkeypatch.setitem(sys.modules, "luma.oled", None)        # what `import luma.oled` sees without it
    cfg = config_from_dict({"board": "pi4", "model": "m", "display": {"type": "sh1106"},
                            "buttons": [{"pin": 5, "label": "a", "question": "q"}]}, "k.yaml")
    with pytest.raises(ConfigError, match=r"k.yaml: display.type: 'sh1106' needs luma.oled; on the Pi: "
                                          r"sudo apt install python3-luma.oled"):
        check_display_packages(cfg)


def test_sd_notify_abstract_socket_and_watchdog_off_without_systemd():
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"tinyr1-test-{os.getpid()}"
    srv.bind("\0" + name)
    srv.settimeout(5)
    assert sd_notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
    assert srv.recv(16) == b"READY=1"
    srv.close()
    assert not sd_notify("READY=1", {})
    w = Watchdog({})
    w.tick()
    assert w.interval is None and w.pings == 0 and w.timeout(1.0) == 1.0
    assert Watchdog({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}).interval is None   # another process's


def test_journal_priorities():
    rec = logging.LogRecord("tinyr1.kiosk", logging.ERROR, __file__, 1, "display failed", (), None)
    assert JournalFormatter("%(message)s").format(rec) == "<3>display failed"
