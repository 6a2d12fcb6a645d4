"""Displays: draw the layout's text lines on a luma device (OLED, character LCD, framebuffer) or a terminal.

A display has `cols`, `rows`, `show(lines, final=False)` and `close()`; `frame` is the last image drawn
(None for the terminal). `open_display(cfg, simulate=True)` uses luma's own devices with no hardware
behind them: `dummy` for OLED and HDMI (it keeps the real pixels in `.image`), and the real HD44780 driver
on a PCF8574 interface whose I2C bus only records bytes, so the simulation draws with the LCD's own font.
`check_display(cfg)`, run by the config's checks, refuses what a display cannot show before it runs: a size
its driver rejects, a text grid under MIN_GRID, a character of the title, a label or a question with no glyph.
"""
import logging
import os
import sys

from runtime.errors import ConfigError

log = logging.getLogger("tinyr1.kiosk")

DEFAULT_SIZES = {"ssd1306": (128, 64), "sh1106": (128, 64), "hd44780": (16, 2), "hdmi": (640, 360),
                 "terminal": (40, 8)}
DEFAULT_ADDRESS = {"ssd1306": 0x3C, "sh1106": 0x3C, "hd44780": 0x27}
I2C_DISPLAYS = tuple(DEFAULT_ADDRESS)     # the displays on the I2C bus
# (width, height) each luma driver accepts (pixels; characters for the hd44780); any other size raises in
# the driver's constructor, on the Pi only (the simulator's dummy device takes any size)
DRIVER_SIZES = {"ssd1306": ((128, 64), (128, 32), (96, 16), (64, 48), (64, 32)),
                "sh1106": ((128, 128), (128, 64), (128, 32)),
                "hd44780": ((16, 2), (16, 4), (20, 2), (20, 4))}
MIN_GRID = (8, 2)                         # (cols, rows): a question line and an answer line of "= 12345"
HD44780_CELL = (5, 8)                     # pixels of one character of the LCD's ROM font


def load_font(path=None, size=10):
    """A monospace font for the text grid: the given .ttf/.pil, or Pillow's 6x11 bitmap font (the same
    glyphs on Pillow 9.4, which Raspberry Pi OS bookworm ships, and on Pillow 13)."""
    from PIL import ImageFont
    if path is None:
        return getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()
    if path.endswith(".pil"):
        return ImageFont.load(path)
    return ImageFont.truetype(path, size)


def cell_size(font):
    """(width, height) of one character cell of a monospace font."""
    w = int(round(font.getlength("M")))
    box = font.getbbox("Mgy|")
    return max(w, 1), max(box[3], 1)


def grid(size, cell):
    """(cols, rows) of text cells of `cell` pixels on a screen of `size` pixels."""
    return size[0] // cell[0], size[1] // cell[1]


def hdmi_scale(w, h):
    return max(1, min(w, h) // 240)       # keep the 6x11 font readable on HDMI


def missing_glyph(font, text):
    """The first character of `text` that `font` cannot draw, or None. Bitmap fonts (Pillow's, a .pil, the
    HD44780's ROM) give a missing character zero width, and Pillow's raise past Latin-1 (UnicodeEncodeError);
    a TrueType font draws its .notdef box for it, the same picture as for U+FFFF, a noncharacter."""
    from PIL import ImageFont
    truetype = isinstance(font, ImageFont.FreeTypeFont)
    notdef = _picture(font, "\uffff") if truetype else None
    for c in dict.fromkeys(text):
        if c == " ":                      # in every font, and blank like some fonts' .notdef
            continue
        if truetype:
            if _picture(font, c) == notdef:
                return c
            continue
        try:
            if font.getmask(c, "1").size[0] == 0:
                return c
        except UnicodeEncodeError:
            return c
    return None


def _picture(font, c):
    from PIL import Image, ImageDraw
    box = font.getbbox(c)
    img = Image.new("1", (max(box[2], 1) + 1, max(box[3], 1) + 1))
    ImageDraw.Draw(img).text((0, 0), c, font=font, fill=1)
    return font.getlength(c), img.size, img.tobytes()


def display_font(cfg):
    """-> (font, cell, name): the font the configured display draws with; None for the terminal."""
    from runtime.checks import quote
    d = cfg.display
    if d.type == "terminal":
        return None, (1, 1), "the terminal"
    if d.type == "hd44780":
        from luma.core.bitmap_font import embedded_fonts
        from luma.lcd.const import hd44780 as const
        return embedded_fonts(const.FONTDATA), HD44780_CELL, "the HD44780's character ROM (A00)"
    path = cfg.font_path()
    font = load_font(path, d.font_size)
    return font, cell_size(font), ("Pillow's 6x11 bitmap font (Latin-1)" if path is None else
                                   f"{quote(d.font, 200)} at size {d.font_size}")


class LumaDisplay:
    """Text lines -> a PIL image of the device's size and mode -> `device.display(image)`."""

    def __init__(self, device, font, cell=None, can_invert=True, scale=1, name="display"):
        self.device, self.font, self.can_invert, self.scale, self.name = device, font, can_invert, scale, name
        self.cell = cell or cell_size(font)
        self.size = (device.width // scale, device.height // scale)
        self.cols, self.rows = grid(self.size, self.cell)
        self.frame = None
        self.draws = 0

    def render(self, lines):
        from PIL import Image, ImageDraw
        mode = self.device.mode
        img = Image.new(mode, self.size)
        draw = ImageDraw.Draw(img)
        fg = 1 if mode == "1" else "white"
        cw, ch = self.cell
        for r, line in enumerate(lines[:self.rows]):
            y = r * ch
            if line.strong and self.can_invert:
                draw.rectangle((0, y, self.size[0] - 1, y + ch - 1), fill=fg)
                draw.text((0, y), line.text[:self.cols], font=self.font, fill=0 if mode == "1" else "black")
            else:
                draw.text((0, y), line.text[:self.cols], font=self.font, fill=fg)
        if self.scale != 1:
            img = img.resize((self.device.width, self.device.height), Image.NEAREST)
        return img

    def show(self, lines, final=False):
        img = self.render(lines)
        self.device.display(img)
        self.frame = img
        self.draws += 1

    def close(self):
        try:
            self.device.cleanup()
        except Exception:                 # a display that is already gone must not stop the kiosk
            pass


class TerminalDisplay:
    """The console: the HDMI console's text mode, and the fallback when a display fails. On a terminal
    it redraws in place; in a log (journald) it prints only final screens."""

    name = "console"

    def __init__(self, cols=40, rows=8, stream=None):
        self.cols, self.rows = cols, rows
        self.stream = stream or sys.stdout
        self.frame = None
        self.draws = 0
        self.last = None

    def show(self, lines, final=False):
        text = "\n".join(line.text for line in lines[:self.rows])
        tty = getattr(self.stream, "isatty", lambda: False)()
        if text == self.last or not (tty or final):
            return
        self.last = text
        self.stream.write(("\x1b[H\x1b[2J" if tty else "") + text + "\n" + ("" if tty else "-" * 8 + "\n"))
        self.stream.flush()
        self.draws += 1

    def close(self):
        pass


class RecordingBus:
    """An smbus2.SMBus stand-in for simulation: counts the bytes the real HD44780 driver writes."""

    def __init__(self):
        self.bytes = 0

    def write_byte(self, addr, value):
        self.bytes += 1

    def write_byte_data(self, addr, reg, value):
        self.bytes += 1

    def write_i2c_block_data(self, addr, reg, data):
        self.bytes += len(data)

    def close(self):
        pass


def display_hint(cfg):
    """What a kiosk owner can do about a display that will not open, or "" when we cannot tell."""
    d = cfg.display
    if d.type in I2C_DISPLAYS and not os.path.exists(f"/dev/i2c-{d.i2c_port}"):
        return (f"/dev/i2c-{d.i2c_port} does not exist: I2C is off. Enable it with `sudo raspi-config nonint do_i2c 0` "
                f"(or the line dtparam=i2c_arm=on in /boot/firmware/config.txt) and reboot")
    if d.type == "hdmi" and not os.path.exists(d.framebuffer):
        return f"{d.framebuffer} does not exist: is an HDMI screen connected at boot?"
    return ""


def open_display(cfg, simulate=False):
    """The configured display -> LumaDisplay or TerminalDisplay. On the Pi this touches the bus; errors
    propagate so the kiosk can fall back to the console and retry."""
    d = cfg.display
    w, h = display_size(cfg)
    if d.type == "terminal":
        return TerminalDisplay(w, h)
    address = d.i2c_address if d.i2c_address is not None else DEFAULT_ADDRESS.get(d.type)
    scale = 1 if d.type != "hdmi" else hdmi_scale(w, h)
    if d.type == "hd44780":
        from luma.core.interface.serial import pcf8574
        from luma.lcd.device import hd44780
        bus = RecordingBus() if simulate else None                     # None: luma opens smbus2 on i2c_port
        serial = pcf8574(bus=bus, port=d.i2c_port, address=address)
        device = hd44780(serial, width=w, height=h)
        return LumaDisplay(device, device.font, cell=HD44780_CELL, can_invert=False, name="hd44780")
    font = load_font(cfg.font_path(), d.font_size)
    if simulate:
        from luma.core.device import dummy
        mode = "RGB" if d.type == "hdmi" else "1"
        device = dummy(width=w, height=h, rotate=d.rotate, mode=mode)
    elif d.type == "hdmi":
        from luma.core.device import linux_framebuffer
        device = linux_framebuffer(d.framebuffer)
        scale = hdmi_scale(device.width, device.height)
    else:
        from luma.core.interface.serial import i2c
        import luma.oled.device as oled
        device = getattr(oled, d.type)(i2c(port=d.i2c_port, address=address), width=w, height=h, rotate=d.rotate)
    return LumaDisplay(device, font, scale=scale, name=d.type)


def check_display_packages(cfg):
    """ConfigError naming the Debian package when the display's library is missing."""
    need = {"ssd1306": "luma.oled", "sh1106": "luma.oled", "hd44780": "luma.lcd", "hdmi": "luma.core"}
    pkg = need.get(cfg.display.type)
    if pkg is None:
        return
    import importlib
    try:
        importlib.import_module(pkg)
    except ImportError:
        raise ConfigError(f"{cfg.path}: display.type: {cfg.display.type!r} needs {pkg}; on the Pi: "
                          f"sudo apt install python3-{pkg}") from None


def display_size(cfg):
    """(width, height) of the configured display: pixels, or characters for the hd44780 and the terminal."""
    d = cfg.display
    return d.width or DEFAULT_SIZES[d.type][0], d.height or DEFAULT_SIZES[d.type][1]


def check_display(cfg):
    """The checks of a kiosk config that need the display's driver or font (called by config.check): a size
    the driver takes, a font that loads and leaves at least a MIN_GRID text grid, and a glyph for every
    character the display draws from the config (a character it cannot draw stops a display for good)."""
    from runtime.checks import quote
    p, d = cfg.path, cfg.display
    w, h = display_size(cfg)
    if d.type in DRIVER_SIZES and (w, h) not in DRIVER_SIZES[d.type]:
        raise ConfigError(f"{p}: display: {w}x{h} is not a size the {d.type} driver supports; sizes: "
                          + ", ".join(f"{a}x{b}" for a, b in DRIVER_SIZES[d.type]))
    if d.type == "hd44780":
        check_display_packages(cfg)                        # its font is luma.lcd's copy of the LCD's ROM
    try:
        font, cell, name = display_font(cfg)
    except ImportError:
        raise ConfigError(f"{p}: display.type: {d.type!r}: checking what it can draw needs Pillow; on the Pi: "
                          f"sudo apt install python3-pil") from None
    except (OSError, ValueError, SyntaxError) as e:        # what Pillow raises for a file that is not a font
        raise ConfigError(f"{p}: display.font: {quote(d.font, 200)} is not a font Pillow can load "
                          f"({type(e).__name__}: {quote(str(e))}); use a .ttf, .otf or .pil file") from None
    if d.type in ("terminal", "hd44780"):
        cols, rows = w, h
    else:                                                  # as LumaDisplay: the rotated, scaled screen
        size, scale = ((h, w) if d.rotate in (1, 3) else (w, h)), (hdmi_scale(w, h) if d.type == "hdmi" else 1)
        cols, rows = grid((size[0] // scale, size[1] // scale), cell)
    if cols < MIN_GRID[0] or rows < MIN_GRID[1]:
        what = f"{w}x{h}" + ("" if font is None else f" with {cell[0]}x{cell[1]}-pixel characters ({name})")
        raise ConfigError(f"{p}: display: {what} holds {cols}x{rows} characters; the kiosk needs at least "
                          f"{MIN_GRID[0]}x{MIN_GRID[1]} (a question line and an answer line)")
    if font is None:
        return
    texts = [("title", cfg.title)] + [(f"buttons[{i}].{k}", v) for i, b in enumerate(cfg.buttons)
                                      for k, v in (("label", b.label), ("question", b.question)) if v is not None]
    for key, text in texts:
        c = missing_glyph(font, text.replace("\n", ""))
        if c is not None:
            raise ConfigError(f"{p}: {key}: character U+{ord(c):04X} {c!r} at position {text.index(c)} has no "
                              f"glyph in {name}; the display cannot draw it")
