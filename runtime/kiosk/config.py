"""Kiosk configuration: one YAML file describes a whole kiosk (board, model, display, buttons, LED).

```yaml
board: pi5                        # pi4 | pi5 | pizero2w
model: ../build/student.msgpack   # relative paths are relative to this file
display: {type: ssd1306, i2c_address: 0x3C, i2c_khz: 400, thinking: collapsed}
buttons:
  - {pin: 17, label: "47+38", question: "What is 47+38?"}
  - {pin: 27, label: "Fib", task: fib, hold: toggle_thinking}
led: {pin: 12}
```
Every key is checked: an unknown key, a wrong type or a bad value is a `ConfigError` naming the file, the
key path (`buttons[1].pin`) and the value (cut short by `checks.quote`), and saying what would be valid, in
the wording of every other configuration (runtime/checks.py: `kiosk.yaml: queue_size=0: must be ...`).
The file itself is read defensively (`yamlfile.read_yaml`): bounded size, strict UTF-8, no YAML anchors or
aliases, no duplicate keys, bounded nesting. `check_model` adds the checks that need the model
file (missing, incompatible, questions its tokenizer cannot encode).
"""
import os
import re
from dataclasses import dataclass, field, fields
from typing import Optional

from runtime.checks import check_fields, check_one_of, check_range, cut, invalid, quote
from runtime.errors import ConfigError, GenerationError, ModelFormatError, TokenizerError
from runtime.generate import check_options
from runtime.kiosk.display import I2C_DISPLAYS, check_display
from runtime.kiosk.yamlfile import read_yaml
from runtime.model import load
from runtime.tasks import FAMILIES

BOARDS = ("pi4", "pi5", "pizero2w")
GPIO_PINS = "[2, 27]"                     # BCM numbers on the 40-pin header
I2C_PINS = (2, 3)                         # SDA, SCL of I2C bus 1
HOLD_ACTIONS = ("none", "toggle_thinking", "next_page", "cancel")
THINKING_MODES = ("full", "collapsed", "hidden")
MAX_LABEL = 64                            # characters of a label or the title (the widest screen shows ~100)
MAX_QUESTION = 1000                       # characters; the model's context is the real bound (check_model)


@dataclass
class DisplayConfig:
    type: str = "ssd1306"                 # ssd1306 | sh1106 (OLED, I2C), hd44780 (16x2 LCD on a PCF8574
    #                                       backpack, I2C), hdmi (Linux framebuffer), terminal (stdout)
    width: Optional[int] = None           # pixels (OLED/HDMI) or characters (hd44780); None = the type's
    height: Optional[int] = None          # default (128x64, 16x2, framebuffer size)
    #                                       sizes the drivers support: display.DRIVER_SIZES; others 1..4096,
    #                                       and the font must leave a grid of at least display.MIN_GRID
    i2c_port: int = 1                     # 0..255: the N of /dev/i2c-N
    i2c_address: Optional[int] = None     # 0x03..0x77; None = 0x3C for OLEDs, 0x27 for the PCF8574 backpack
    i2c_khz: int = 100                    # 100 | 400 | 1000: bus speed set in /boot/firmware/config.txt; sets
    #                                       the refresh budget
    framebuffer: str = "/dev/fb0"         # hdmi only: /dev/fb0../dev/fb31 (luma reads /sys/class/graphics/fbN)
    rotate: int = 0                       # 0..3, quarter turns; ssd1306/sh1106 only (luma's framebuffer ignores it)
    font: Optional[str] = None            # a .ttf/.otf/.pil file (OLED, HDMI); None = Pillow's 6x11 bitmap font.
    #                                       Every character of the title, labels and questions needs a glyph in it
    font_size: int = 10                   # 4..256 pixels, for .ttf/.otf fonts
    thinking: str = "collapsed"           # full: stream the thinking; collapsed: one status line; hidden
    refresh_ms: Optional[int] = None      # 0..2000: min time between redraws (0 = every token; past 2 s the
    #                                       stream looks frozen); None = from the bus (see refresh_seconds)


@dataclass
class ButtonConfig:
    pin: int                              # BCM number; the button connects the pin to ground (pull-up)
    label: str                            # shown on the idle screen; 1..MAX_LABEL printable characters
    question: Optional[str] = None        # fixed text (1..MAX_QUESTION printable characters and newlines), or
    task: Optional[str] = None            # a task family: a fresh held-out instance on every press, verified
    hold: str = "none"                    # action while held >= hold_seconds: none | toggle_thinking |
    #                                       next_page | cancel (with an action, a short press acts on release)


@dataclass
class LedConfig:
    pin: int                              # BCM number of a status LED (through a resistor to ground)
    pwm: bool = True                      # pulse while thinking (needs PWM); False = blink


@dataclass
class GenerationConfig:                   # ranges: runtime.generate.check_options (one rule for every caller)
    max_new_tokens: Optional[int] = None  # None: the model file's default (its context); always clipped to the
    #                                       context left after the question
    temperature: float = 0.0              # 0 = greedy, reproducible
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    seed: int = 0                         # seeds sampling and the task instances drawn by `task:` buttons;
    #                                       0..2**32-1


@dataclass
class KioskConfig:
    board: str
    model: str
    display: DisplayConfig
    buttons: list
    led: Optional[LedConfig] = None
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    busy: str = "cancel"                  # a press while answering: cancel (start the new question) | queue
    queue_size: int = 4                   # 1..64 pending presses kept with busy: queue; more are dropped, logged
    debounce_ms: int = 30                 # 0..1000: edges closer than this to the last accepted edge are bounce
    hold_seconds: float = 1.0             # 0.1..10
    title: str = "tinyr1"                 # first line of the idle screen; 0..MAX_LABEL printable characters
    log_level: str = "INFO"
    path: str = ""                        # the file it came from (set by the loader)

    def refresh_seconds(self):
        """Min seconds between redraws: a full SSD1306/SH1106 frame (1 KB) takes ~100 ms at 100 kHz I2C and
        ~25 ms at 400 kHz; a PCF8574 LCD ~100 ms per full redraw (luma sends only changed cells)."""
        d = self.display
        if d.refresh_ms is not None:
            return d.refresh_ms / 1000
        if d.type in I2C_DISPLAYS:
            return 0.1 if d.i2c_khz < 400 else 0.05
        return 0.05

    def beside(self, p):
        """A path written in this file: relative paths are relative to the file."""
        return p if os.path.isabs(p) else os.path.join(os.path.dirname(os.path.abspath(self.path or ".")), p)

    def font_path(self):
        """The display's font file, or None for Pillow's bitmap font."""
        return None if self.display.font is None else self.beside(self.display.font)


DISPLAY_TYPES = ("ssd1306", "sh1106", "hd44780", "hdmi", "terminal")
TOP_KEYS = {f.name for f in fields(KioskConfig)} - {"path"}


def load_config(path, model_override=None):
    """Read and validate a kiosk YAML file -> KioskConfig (model path made absolute)."""
    cfg = config_from_dict(read_yaml(path), path)
    if model_override:
        cfg.model = os.path.abspath(model_override)
    elif not os.path.isabs(cfg.model):
        cfg.model = os.path.normpath(cfg.beside(cfg.model))
    return cfg


def config_from_dict(raw, path="<config>"):
    """A parsed kiosk YAML -> KioskConfig, every section checked by runtime/checks.py's check_fields (known
    keys, required keys, types) and every value by `check`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a kiosk config is a mapping with keys {', '.join(sorted(TOP_KEYS))}; "
                          f"got {type(raw).__name__}")
    top = check_fields(KioskConfig, raw, path, skip=("display", "buttons", "led", "generation"), internal=("path",))
    display = DisplayConfig(**check_fields(DisplayConfig, raw["display"], path, "display."))
    if not isinstance(raw["buttons"], list) or not raw["buttons"]:
        raise invalid(path, "buttons", raw["buttons"], "a non-empty list of {pin, label, question or task}")
    buttons = [ButtonConfig(**check_fields(ButtonConfig, b, path, f"buttons[{i}]."))
               for i, b in enumerate(raw["buttons"])]
    led = LedConfig(**check_fields(LedConfig, raw["led"], path, "led.")) if raw.get("led") is not None else None
    generation = GenerationConfig(**check_fields(GenerationConfig, raw.get("generation") or {}, path, "generation."))
    cfg = KioskConfig(display=display, buttons=buttons, led=led, generation=generation, path=path, **top)
    check(cfg)
    return cfg


def check(cfg):
    """Value checks that need no model file (the display's sizes and font: display.check_display)."""
    p = cfg.path
    check_one_of(cfg.board, BOARDS, p, "board")
    if not cfg.model.strip():
        raise ConfigError(f"{p}: model: empty; give the compiled model's path, e.g. ../build/student.msgpack")
    check_one_of(cfg.busy, ("cancel", "queue"), p, "busy")
    check_one_of(cfg.log_level.upper(), ("DEBUG", "INFO", "WARNING", "ERROR"), p, "log_level")
    d = cfg.display
    check_one_of(d.type, DISPLAY_TYPES, p, "display.type")
    check_one_of(d.thinking, THINKING_MODES, p, "display.thinking")
    check_one_of(d.i2c_khz, (100, 400, 1000), p, "display.i2c_khz")
    check_one_of(d.rotate, (0, 1, 2, 3), p, "display.rotate")
    if d.rotate and d.type not in ("ssd1306", "sh1106"):
        raise ConfigError(f"{p}: display.rotate: {d.rotate}: only the ssd1306 and sh1106 drivers rotate; for "
                          f"{d.type} use 0 (rotate an HDMI screen in the OS)")
    for key in ("width", "height"):
        _optional_range(p, f"display.{key}", getattr(d, key), "[1, 4096]")
    check_range(d.i2c_port, "[0, 255]", p, "display.i2c_port", integer=True)
    if d.i2c_address is not None:
        check_range(d.i2c_address, "[3, 119]", p, "display.i2c_address", integer=True,
                    note=" (a 7-bit I2C address, 0x03..0x77)", shown=f"{d.i2c_address:#x}")
    if not re.fullmatch(r"/dev/fb([0-9]|[12][0-9]|3[01])", d.framebuffer):
        raise invalid(p, "display.framebuffer", d.framebuffer, "/dev/fb0../dev/fb31")
    if d.font is not None and d.type in ("hd44780", "terminal"):
        raise ConfigError(f"{p}: display.font: the {d.type} display draws with its own font; remove font "
                          f"(it applies to ssd1306, sh1106 and hdmi)")
    if d.font is not None and not os.path.isfile(cfg.font_path()):
        raise ConfigError(f"{p}: display.font: {quote(d.font, 200)} is not a file")
    check_range(d.font_size, "[4, 256]", p, "display.font_size", integer=True)
    _optional_range(p, "display.refresh_ms", d.refresh_ms, "[0, 2000]")
    check_range(cfg.queue_size, "[1, 64]", p, "queue_size", integer=True)
    check_range(cfg.debounce_ms, "[0, 1000]", p, "debounce_ms", integer=True)
    check_range(cfg.hold_seconds, "[0.1, 10]", p, "hold_seconds")
    _text(p, "title", cfg.title, 0, MAX_LABEL)
    check_generation(cfg)
    used = {}                                                  # pin -> what uses it
    if d.type in I2C_DISPLAYS:
        for pin in I2C_PINS:
            used[pin] = f"the {d.type} display's I2C bus (GPIO 2 = SDA, 3 = SCL)"
    for i, b in enumerate(cfg.buttons):
        key = f"buttons[{i}]"
        _pin(p, f"{key}.pin", b.pin, used, f"{key} ({quote(b.label)})")
        if (b.question is None) == (b.task is None):
            raise ConfigError(f"{p}: {key}: give exactly one of question: (fixed text) or task: (a family name); "
                              f"got question={quote(b.question)}, task={quote(b.task)}")
        if b.task is not None:
            check_one_of(b.task, tuple(FAMILIES), p, f"{key}.task")
        if b.question is not None:
            _text(p, f"{key}.question", b.question, 1, MAX_QUESTION, newlines=True)
        check_one_of(b.hold, HOLD_ACTIONS, p, f"{key}.hold")
        _text(p, f"{key}.label", b.label, 1, MAX_LABEL)
    if cfg.led is not None:
        _pin(p, "led.pin", cfg.led.pin, used, "the status LED")
    check_display(cfg)


def check_generation(cfg, vocab_size=None):
    """The generation: section, by the one rule every caller of generate() uses (top_k against the
    model's vocabulary once `check_model` knows it); a bad seed or NaN never reaches a button press."""
    g = cfg.generation
    try:
        check_options(temperature=g.temperature, top_k=g.top_k, top_p=g.top_p, seed=g.seed,
                      max_new_tokens=g.max_new_tokens, vocab_size=vocab_size)
    except GenerationError as e:
        raise ConfigError(f"{cfg.path}: generation: {e}") from None


def _optional_range(path, key, value, interval):
    """An integer in `interval`, or null (None) for the default."""
    if value is not None:
        check_range(value, interval, path, key, integer=True, note=", or null for the default")


def _text(path, key, text, lo, hi, newlines=False):
    """A label, title or question: lo..hi characters, printable (newlines in questions), not only spaces."""
    if len(text) > hi:
        raise ConfigError(f"{path}: {key}: {quote(text)} is longer than {hi} characters")
    if lo and not text.strip():
        raise ConfigError(f"{path}: {key}: empty")
    bad = next((c for c in text if not c.isprintable() and not (newlines and c == "\n")), None)
    if bad is not None:
        raise ConfigError(f"{path}: {key}: {quote(text)}: character U+{ord(bad):04X} {bad!r} at position "
                          f"{text.index(bad)} is not printable (a control, format or special space character)")


def _pin(path, key, pin, used, user):
    check_range(pin, GPIO_PINS, path, key, integer=True, note=" (a BCM GPIO number on the 40-pin header)")
    if pin in used:
        raise ConfigError(f"{path}: {key}: GPIO {pin} is already used by {used[pin]}")
    used[pin] = user


def check_model(cfg, model=None):
    """Checks that need the model: the file exists and loads, every fixed question encodes with its
    tokenizer and leaves room to answer. -> the loaded Model."""
    if model is None:
        if not os.path.isfile(cfg.model):
            what = "is a directory, not a compiled model" if os.path.isdir(cfg.model) else "does not exist"
            raise ConfigError(f"{cfg.path}: model: {quote(cfg.model, 200)} {what} (compile one with "
                              f"`tinyr1 compile trainer/checkpoints/student -o build/student.msgpack`)")
        try:
            model = load(cfg.model)
        except ModelFormatError as e:
            raise ConfigError(f"{cfg.path}: model: {quote(cfg.model, 200)} is not a usable tinyr1 model: "
                              f"{cut(str(e))}") from None
    check_generation(cfg, model.tokenizer.vocab_size)
    for i, b in enumerate(cfg.buttons):
        if b.question is None:
            continue
        try:
            n = len(model.encode_prompt(b.question))
        except TokenizerError as e:
            raise ConfigError(f"{cfg.path}: buttons[{i}].question: {quote(b.question)}: the model's tokenizer "
                              f"cannot encode it: {cut(str(e))}") from None
        if n + 8 > model.max_positions:
            raise ConfigError(f"{cfg.path}: buttons[{i}].question: {n} tokens leave no room to answer in the "
                              f"model's context of {model.max_positions}")
    return model


# BCM GPIO number -> physical pin on the 40-pin header (the same on every Pi with that header)
HEADER_PIN = {2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33, 14: 8, 15: 10,
              16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18, 25: 22, 26: 37, 27: 13}


def wiring(cfg):
    """-> rows (part, header pin, BCM GPIO, connects to) of what to wire where (README, `validate --wiring`)."""
    rows = []
    d = cfg.display
    if d.type in I2C_DISPLAYS:
        vcc = ("2", "5V") if d.type == "hd44780" else ("1", "3V3")
        rows += [(f"{d.type} SDA", "3", "GPIO2", "I2C bus 1"), (f"{d.type} SCL", "5", "GPIO3", "I2C bus 1"),
                 (f"{d.type} VCC", vcc[0], "", vcc[1]), (f"{d.type} GND", "9", "", "ground")]
    elif d.type == "hdmi":
        rows.append(("HDMI screen", "", "", f"HDMI port ({d.framebuffer})"))
    for b in cfg.buttons:
        hold = f", hold: {b.hold}" if b.hold != "none" else ""
        rows.append((f'button "{b.label}"{hold}', str(HEADER_PIN[b.pin]), f"GPIO{b.pin}", "other leg to ground"))
    if cfg.led is not None:
        rows.append(("status LED (+ 330 ohm)", str(HEADER_PIN[cfg.led.pin]), f"GPIO{cfg.led.pin}", "cathode to ground"))
    return rows
