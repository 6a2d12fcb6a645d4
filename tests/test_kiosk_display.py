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


def test_page_count_of_an_answer_that_fits_and_of_one_that_is_not_judged():
    """The count used to be read back from the footer: "812 tok/s" (no verdict, one page) ended in "tok/s"
    and raised ValueError, so holding next_page on an unverifiable answer crashed the press."""
    assert page_count(answer_view(thinking_mode="hidden", verified=None), 21, 5) == 1
    long = answer_view(thinking_mode="hidden", verified=None, answer="word " * 30)
    n = page_count(long, 21, 5)
    assert n >= 2 and layout(long, 21, 5)[-1].text == f"812 tok/s 1/{n}"
    shown = []
    for p in range(n):
        long.page = p
        shown += [x.text for x in layout(long, 21, 5)[1:-1] if x.text]
    assert " ".join(shown).replace("= ", "").split() == ["word"] * 30      # n pages hold it all


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


def test_driver_sizes_are_the_ones_luma_accepts(monkeypatch):
    """display.DRIVER_SIZES (what `validate` allows) against the real drivers: each listed size builds, and
    its neighbours do not (on the Pi a size the driver refuses left the kiosk on the console)."""
    monkeypatch.setattr("luma.core.device.sleep", lambda s: None)     # the HD44780's init waits 0.6 s for a chip
    from luma.core.error import DeviceDisplayModeError
    from luma.core.interface.serial import noop, pcf8574
    import luma.oled.device as oled
    from luma.lcd.device import hd44780
    from runtime.kiosk.display import DRIVER_SIZES

    def make(kind, w, h):
        if kind == "hd44780":
            return hd44780(pcf8574(bus=RecordingBus(), address=0x27), width=w, height=h)
        return getattr(oled, kind)(noop(), width=w, height=h)

    for kind, sizes in DRIVER_SIZES.items():
        for w, h in sizes:
            make(kind, w, h)
        widths, heights = {w for w, _ in sizes}, {h for _, h in sizes}
        for w, h in [(w, h) for w in widths for h in heights if (w, h) not in sizes] + [(100, 64), (16, 3)]:
            with pytest.raises(DeviceDisplayModeError):
                make(kind, w, h)


def find_ttf():
    """A TrueType font on this machine: Debian's fonts-dejavu-core (on Raspberry Pi OS too) or matplotlib's."""
    import glob
    paths = glob.glob("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
    try:
        import matplotlib
        paths += glob.glob(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf",
                                        "DejaVuSansMono.ttf"))
    except ImportError:
        pass
    if not paths:
        pytest.skip("needs a TrueType font: apt install fonts-dejavu-core")
    return paths[0]


def test_missing_glyphs_in_bitmap_rom_and_truetype_fonts():
    from luma.core.bitmap_font import embedded_fonts
    from luma.lcd.const import hd44780
    from runtime.kiosk.display import missing_glyph
    emoji = "\U0001F600"
    pil = load_font()                                   # Latin-1 only
    assert missing_glyph(pil, "Add 47+38? x\u00d7y \u00e9\u00ff ~") is None
    assert missing_glyph(pil, "ok " + emoji) == emoji and missing_glyph(pil, "5\u20ac") == "\u20ac"
    assert missing_glyph(pil, "a\u00a0b") == "\u00a0"                  # no-break space: a zero-width glyph
    rom = embedded_fonts(hd44780.FONTDATA)
    assert missing_glyph(rom, "Speed 60 km/h \u00d7\u00e9") is None
    assert missing_glyph(rom, "5\u20ac") == "\u20ac" and missing_glyph(rom, emoji) == emoji
    ttf = load_font(find_ttf(), 10)
    assert missing_glyph(ttf, "Add 47+38? \u00e9\u20ac\u2192 ~") is None
    assert missing_glyph(ttf, "ok " + emoji) == emoji and missing_glyph(ttf, "\u4e2d") == "\u4e2d"


def test_validate_checks_labels_against_a_truetype_font(tmp_path):
    from runtime.errors import ConfigError
    ttf = find_ttf()
    raw = {"board": "pi5", "model": "m", "display": {"type": "ssd1306", "font": ttf, "font_size": 10},
           "buttons": [{"pin": 17, "label": "Smile \U0001F600", "question": "What is 47+38?"}]}
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw, "k.yaml")
    assert str(e.value) == (f"k.yaml: buttons[0].label: character U+1F600 '\U0001F600' at position 6 has no glyph "
                            f"in '{ttf}' at size 10; the display cannot draw it")
    raw["buttons"][0]["label"] = "Price \u20ac"                     # DejaVu has the euro; Pillow's default does not
    cfg = config_from_dict(raw, "k.yaml")
    d = open_display(cfg, simulate=True)
    d.show(layout(View(title=cfg.title, labels=["17 Price \u20ac"]), d.cols, d.rows))
    raw["display"]["font_size"] = 40                               # 24x48-pixel characters: 5x1 on 128x64
    with pytest.raises(ConfigError, match=r"k.yaml: display: 128x64 with 24x48-pixel characters \(.*\) holds 5x1 "
                                          r"characters; the kiosk needs at least 8x2"):
        config_from_dict(raw, "k.yaml")
    (tmp_path / "bad.ttf").write_bytes(b"not a font")
    raw["display"]["font"] = str(tmp_path / "bad.ttf")
    with pytest.raises(ConfigError, match=r"k.yaml: display.font: '.*bad.ttf' is not a font Pillow can load"):
        config_from_dict(raw, "k.yaml")


def test_every_drawn_character_of_a_valid_config_draws(tmp_path):
    """What validation lets through, the display draws: every printable Latin-1 character on the OLED."""
    text = "".join(c for c in map(chr, range(32, 256)) if c.isprintable() and c != "\u00a0")
    cfg = config_from_dict({"board": "pi5", "model": "m", "display": {"type": "ssd1306"}, "title": text[:64],
                            "buttons": [{"pin": 17, "label": text[64:128], "question": text}]}, "k.yaml")
    d = open_display(cfg, simulate=True)
    d.show(layout(View(mode="answer", question=text, answer=text, status="done"), d.cols, d.rows))
    d.show(layout(View(title=cfg.title, labels=[cfg.buttons[0].label]), d.cols, d.rows))
