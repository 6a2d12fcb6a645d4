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
key path (`buttons[1].pin`) and the value, and saying what would be valid. `check_model` adds the checks
that need the model file (missing, incompatible, questions its tokenizer cannot encode).
"""
import os
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Optional

import yaml

from runtime.errors import ConfigError, ModelFormatError, TokenizerError

BOARDS = ("pi4", "pi5", "pizero2w")
GPIO_PINS = range(2, 28)                  # BCM numbers on the 40-pin header
I2C_PINS = (2, 3)                         # SDA, SCL of I2C bus 1
HOLD_ACTIONS = ("none", "toggle_thinking", "next_page", "cancel")
THINKING_MODES = ("full", "collapsed", "hidden")


@dataclass
class DisplayConfig:
    type: str = "ssd1306"                 # ssd1306 | sh1106 (OLED, I2C), hd44780 (16x2 LCD on a PCF8574
    #                                       backpack, I2C), hdmi (Linux framebuffer), terminal (stdout)
    width: Optional[int] = None           # pixels (OLED/HDMI) or characters (hd44780); None = the type's
    height: Optional[int] = None          # default (128x64, 16x2, framebuffer size)
    i2c_port: int = 1
    i2c_address: Optional[int] = None     # None = 0x3C for OLEDs, 0x27 for the PCF8574 backpack
    i2c_khz: int = 100                    # bus speed set in /boot/firmware/config.txt; sets the refresh budget
    framebuffer: str = "/dev/fb0"         # hdmi only
    rotate: int = 0                       # 0..3, quarter turns
    font: Optional[str] = None            # a .ttf/.pil file; None = Pillow's 6x11 bitmap font (the LCD's own)
    font_size: int = 10                   # for .ttf fonts
    thinking: str = "collapsed"           # full: stream the thinking; collapsed: one status line; hidden
    refresh_ms: Optional[int] = None      # min time between redraws; None = from the bus (see refresh_seconds)


@dataclass
class ButtonConfig:
    pin: int                              # BCM number; the button connects the pin to ground (pull-up)
    label: str                            # shown on the idle screen
    question: Optional[str] = None        # fixed text, or
    task: Optional[str] = None            # a task family: a fresh held-out instance on every press, verified
    hold: str = "none"                    # action while held >= hold_seconds: none | toggle_thinking |
    #                                       next_page | cancel (with an action, a short press acts on release)


@dataclass
class LedConfig:
    pin: int                              # BCM number of a status LED (through a resistor to ground)
    pwm: bool = True                      # pulse while thinking (needs PWM); False = blink


@dataclass
class GenerationConfig:
    max_new_tokens: int = 200
    temperature: float = 0.0              # 0 = greedy, reproducible
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    seed: int = 0                         # seeds sampling and the task instances drawn by `task:` buttons


@dataclass
class KioskConfig:
    board: str
    model: str
    display: DisplayConfig
    buttons: list
    led: Optional[LedConfig] = None
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    busy: str = "cancel"                  # a press while answering: cancel (start the new question) | queue
    queue_size: int = 4                   # pending presses kept with busy: queue; more are dropped and logged
    debounce_ms: int = 30                 # edges closer than this to the last accepted edge are contact bounce
    hold_seconds: float = 1.0
    title: str = "tinyr1"                 # first line of the idle screen
    log_level: str = "INFO"
    path: str = ""                        # the file it came from (set by the loader)

    def refresh_seconds(self):
        """Min seconds between redraws: a full SSD1306/SH1106 frame (1 KB) takes ~100 ms at 100 kHz I2C and
        ~25 ms at 400 kHz; a PCF8574 LCD ~100 ms per full redraw (luma sends only changed cells)."""
        d = self.display
        if d.refresh_ms is not None:
            return d.refresh_ms / 1000
        if d.type in ("ssd1306", "sh1106", "hd44780"):
            return 0.1 if d.i2c_khz < 400 else 0.05
        return 0.05


DISPLAY_TYPES = ("ssd1306", "sh1106", "hd44780", "hdmi", "terminal")
I2C_DISPLAYS = ("ssd1306", "sh1106", "hd44780")
TOP_KEYS = {f.name for f in fields(KioskConfig)} - {"path"}


def load_config(path, model_override=None):
    """Read and validate a kiosk YAML file -> KioskConfig (model path made absolute)."""
    try:
        with open(path) as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the kiosk config: {e.strerror}") from None
    cfg = config_from_dict(raw, path)
    if model_override:
        cfg.model = os.path.abspath(model_override)
    elif not os.path.isabs(cfg.model):
        cfg.model = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), cfg.model))
    return cfg


def config_from_dict(raw, path="<config>"):
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a kiosk config is a mapping with keys {', '.join(sorted(TOP_KEYS))}; "
                          f"got {type(raw).__name__}")
    for key in ("board", "model", "display", "buttons"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key {key!r} (required: board, model, display, buttons)")
    top = _fields(KioskConfig, raw, path, "", skip=("display", "buttons", "led", "generation"))
    display = DisplayConfig(**_fields(DisplayConfig, raw["display"], path, "display"))
    if not isinstance(raw["buttons"], list) or not raw["buttons"]:
        raise ConfigError(f"{path}: buttons: a non-empty list of {{pin, label, question or task}}; "
                          f"got {raw['buttons']!r}")
    buttons = [ButtonConfig(**_fields(ButtonConfig, b, path, f"buttons[{i}]")) for i, b in enumerate(raw["buttons"])]
    led = LedConfig(**_fields(LedConfig, raw["led"], path, "led")) if raw.get("led") is not None else None
    gen = GenerationConfig(**_fields(GenerationConfig, raw.get("generation") or {}, path, "generation"))
    cfg = KioskConfig(display=display, buttons=buttons, led=led, generation=gen, path=path, **top)
    check(cfg)
    return cfg


def _fields(cls, raw, path, where, skip=()):
    """Check a mapping against a dataclass: known keys, required keys present, types -> kwargs."""
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping, got {raw!r}")
    known = {f.name: f for f in fields(cls) if f.name != "path"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{path}: {prefix}{key}: unknown key; allowed keys: {', '.join(known)}")
    out = {}
    for name, f in known.items():
        if name in skip:
            continue
        if name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{path}: {prefix}{name}: missing (required in {where or 'the file'})")
            continue
        out[name] = _typed(raw[name], f.type, path, f"{prefix}{name}")
    return out


def _typed(value, tp, path, key):
    """Check one scalar against its field type (int, float, str, bool or Optional of one)."""
    optional = typing.get_origin(tp) is typing.Union and type(None) in typing.get_args(tp)
    if optional:
        if value is None:
            return None
        tp = next(t for t in typing.get_args(tp) if t is not type(None))
    if tp not in (int, float, str, bool):                # lists are checked by their own code
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: {key}: expected {tp.__name__}{' or null' if optional else ''}, got {value!r}")
    return value


def check(cfg):
    """Value checks that need no model file."""
    p = cfg.path
    _one_of(p, "board", cfg.board, BOARDS)
    _one_of(p, "busy", cfg.busy, ("cancel", "queue"))
    _one_of(p, "log_level", cfg.log_level.upper(), ("DEBUG", "INFO", "WARNING", "ERROR"))
    d = cfg.display
    _one_of(p, "display.type", d.type, DISPLAY_TYPES)
    _one_of(p, "display.thinking", d.thinking, THINKING_MODES)
    _one_of(p, "display.i2c_khz", d.i2c_khz, (100, 400, 1000))
    _one_of(p, "display.rotate", d.rotate, (0, 1, 2, 3))
    for key in ("width", "height"):
        v = getattr(d, key)
        if v is not None and not 1 <= v <= 4096:
            raise ConfigError(f"{p}: display.{key}: {v} is not in 1..4096")
    if d.i2c_address is not None and not 0x03 <= d.i2c_address <= 0x77:
        raise ConfigError(f"{p}: display.i2c_address: {d.i2c_address:#x} is not a 7-bit I2C address (0x03..0x77)")
    if d.font is not None and not os.path.isfile(_rel(cfg, d.font)):
        raise ConfigError(f"{p}: display.font: {d.font!r} is not a file")
    if not 1 <= cfg.queue_size <= 64:
        raise ConfigError(f"{p}: queue_size: {cfg.queue_size} is not in 1..64")
    if not 0 <= cfg.debounce_ms <= 1000:
        raise ConfigError(f"{p}: debounce_ms: {cfg.debounce_ms} is not in 0..1000")
    if not 0.1 <= cfg.hold_seconds <= 10:
        raise ConfigError(f"{p}: hold_seconds: {cfg.hold_seconds} is not in 0.1..10")
    g = cfg.generation
    if not 1 <= g.max_new_tokens <= 4096 or g.temperature < 0 or (g.top_k is not None and g.top_k < 1) \
            or (g.top_p is not None and not 0 < g.top_p <= 1):
        raise ConfigError(f"{p}: generation: need 1 <= max_new_tokens <= 4096, temperature >= 0, top_k >= 1, "
                          f"0 < top_p <= 1; got {g}")
    used = {}                                                  # pin -> what uses it
    if d.type in I2C_DISPLAYS:
        for pin in I2C_PINS:
            used[pin] = f"the {d.type} display's I2C bus (GPIO 2 = SDA, 3 = SCL)"
    for i, b in enumerate(cfg.buttons):
        key = f"buttons[{i}]"
        _pin(p, f"{key}.pin", b.pin, used, f"{key} ({b.label!r})")
        if (b.question is None) == (b.task is None):
            raise ConfigError(f"{p}: {key}: give exactly one of question: (fixed text) or task: (a family name); "
                              f"got question={b.question!r}, task={b.task!r}")
        if b.task is not None:
            from runtime.tasks import FAMILIES
            _one_of(p, f"{key}.task", b.task, tuple(FAMILIES))
        if b.question is not None and not b.question.strip():
            raise ConfigError(f"{p}: {key}.question: empty")
        _one_of(p, f"{key}.hold", b.hold, HOLD_ACTIONS)
        if not b.label.strip():
            raise ConfigError(f"{p}: {key}.label: empty")
    if cfg.led is not None:
        _pin(p, "led.pin", cfg.led.pin, used, "the status LED")


def _one_of(path, key, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{path}: {key}: {value!r} is not one of {', '.join(map(str, allowed))}")


def _pin(path, key, pin, used, user):
    if pin not in GPIO_PINS:
        raise ConfigError(f"{path}: {key}: {pin} is outside 2..27 (BCM GPIO numbers on the 40-pin header)")
    if pin in used:
        raise ConfigError(f"{path}: {key}: GPIO {pin} is already used by {used[pin]}")
    used[pin] = user


def _rel(cfg, p):
    return p if os.path.isabs(p) else os.path.join(os.path.dirname(os.path.abspath(cfg.path or ".")), p)


def font_path(cfg):
    return None if cfg.display.font is None else _rel(cfg, cfg.display.font)


def check_model(cfg, model=None):
    """Checks that need the model: the file exists and loads, every fixed question encodes with its
    tokenizer and leaves room to answer. -> the loaded Model."""
    from runtime.model import load
    if model is None:
        if not os.path.isfile(cfg.model):
            raise ConfigError(f"{cfg.path}: model: {cfg.model!r} does not exist (compile one with "
                              f"`tinyr1 compile trainer/checkpoints/student -o build/student.msgpack`)")
        try:
            model = load(cfg.model)
        except ModelFormatError as e:
            raise ConfigError(f"{cfg.path}: model: {cfg.model!r} is not a usable tinyr1 model: {e}") from None
    for i, b in enumerate(cfg.buttons):
        if b.question is None:
            continue
        try:
            n = len(model.encode_prompt(b.question))
        except TokenizerError as e:
            raise ConfigError(f"{cfg.path}: buttons[{i}].question: {b.question!r}: the model's tokenizer "
                              f"cannot encode it: {e}") from None
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
