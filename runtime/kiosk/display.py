"""Displays: draw the layout's text lines on a luma device (OLED, character LCD, framebuffer) or a terminal.

A display has `cols`, `rows`, `show(lines, final=False)` and `close()`; `frame` is the last image drawn
(None for the terminal). `open_display(cfg, simulate=True)` uses luma's own devices with no hardware
behind them: `dummy` for OLED and HDMI (it keeps the real pixels in `.image`), and the real HD44780 driver
on a PCF8574 interface whose I2C bus only records bytes, so the simulation draws with the LCD's own font.
"""
import logging
import sys

from runtime.errors import ConfigError

log = logging.getLogger("tinyr1.kiosk")

DEFAULT_SIZES = {"ssd1306": (128, 64), "sh1106": (128, 64), "hd44780": (16, 2), "hdmi": (640, 360)}
DEFAULT_ADDRESS = {"ssd1306": 0x3C, "sh1106": 0x3C, "hd44780": 0x27}


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


class LumaDisplay:
    """Text lines -> a PIL image of the device's size and mode -> `device.display(image)`."""

    def __init__(self, device, font, cell=None, can_invert=True, scale=1, name="display"):
        self.device, self.font, self.can_invert, self.scale, self.name = device, font, can_invert, scale, name
        self.cell = cell or cell_size(font)
        self.size = (device.width // scale, device.height // scale)
        self.cols, self.rows = self.size[0] // self.cell[0], self.size[1] // self.cell[1]
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


def open_display(cfg, simulate=False):
    """The configured display -> LumaDisplay or TerminalDisplay. On the Pi this touches the bus; errors
    propagate so the kiosk can fall back to the console and retry."""
    from runtime.kiosk.config import font_path
    d = cfg.display
    if d.type == "terminal":
        return TerminalDisplay(d.width or 40, d.height or 8)
    w, h = d.width or DEFAULT_SIZES[d.type][0], d.height or DEFAULT_SIZES[d.type][1]
    address = d.i2c_address if d.i2c_address is not None else DEFAULT_ADDRESS.get(d.type)
    scale = 1 if d.type != "hdmi" else max(1, min(w, h) // 240)       # keep the 6x11 font readable on HDMI
    if d.type == "hd44780":
        from luma.core.interface.serial import pcf8574
        from luma.lcd.device import hd44780
        bus = RecordingBus() if simulate else None                     # None: luma opens smbus2 on i2c_port
        serial = pcf8574(bus=bus, port=d.i2c_port, address=address)
        device = hd44780(serial, width=w, height=h)
        return LumaDisplay(device, device.font, cell=(5, 8), can_invert=False, name="hd44780")
    font = load_font(font_path(cfg), d.font_size)
    if simulate:
        from luma.core.device import dummy
        mode = "RGB" if d.type == "hdmi" else "1"
        device = dummy(width=w, height=h, rotate=d.rotate, mode=mode)
    elif d.type == "hdmi":
        from luma.core.device import linux_framebuffer
        device = linux_framebuffer(d.framebuffer, rotate=d.rotate)
        scale = max(1, min(device.width, device.height) // 240)
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
