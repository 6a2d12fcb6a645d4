"""Compile-and-simulate: the real kiosk code with gpiozero's MockFactory and luma's dummy devices.

Presses are scripted (`Press(pin, at=None)`: at a time after start, or when the previous answer is done);
every distinct frame is kept with its time, and can be written as PNGs and an animated GIF at the
display's true resolution.
"""
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

from runtime.errors import ConfigError
from runtime.kiosk.app import Kiosk
from runtime.checks import quote
from runtime.kiosk.display import open_display

PRESS_SECONDS = 0.08                     # how long a scripted finger stays on a button
HOLD_EXTRA = 0.05                        # a scripted hold lasts hold_seconds plus this
MAX_AT_SECONDS = 3600                    # PIN@SECONDS: 0..an hour after start (a simulation runs in real time)


@dataclass
class Press:
    pin: int
    at: Optional[float] = None           # seconds after start; None = once the kiosk is idle again
    hold: bool = False


def parse_press(text, hold=False):
    """"17" or "17@2.5" -> Press; SECONDS is in 0..MAX_AT_SECONDS."""
    option = "--hold" if hold else "--press"
    pin, at_sign, at = text.partition("@")
    try:
        p = Press(int(pin), float(at) if at_sign else None, hold)
    except ValueError:
        raise ConfigError(f"{option} {quote(text)}: expected PIN or PIN@SECONDS, e.g. 17 or 17@2.5") from None
    if p.at is not None and not 0 <= p.at <= MAX_AT_SECONDS:             # NaN fails the comparison too
        raise ConfigError(f"{option} {quote(text)}: {p.at} seconds is not in 0..{MAX_AT_SECONDS} (an hour; "
                          f"the simulation runs in real time)")
    return p


def check_script(cfg, presses):
    """Every scripted press is on a button of the config; a --hold on a button with a hold action."""
    pins = {b.pin: b for b in cfg.buttons}
    for p in presses:
        option = "--hold" if p.hold else "--press"
        if p.pin not in pins:
            raise ConfigError(f"{option} {p.pin}: no button on GPIO {p.pin}; buttons: {sorted(pins)}")
        if p.hold and pins[p.pin].hold == "none":
            raise ConfigError(f"{option} {p.pin}: the button on GPIO {p.pin} has no hold action (hold: none), so "
                              f"holding it is a press; give it one or use --press")


def check_outputs(gif=None, frames_dir=None):
    """Fail before the run, not after it: the GIF can be written where asked, the frames directory exists
    (or is made now) and takes files."""
    if gif:
        parent = os.path.dirname(os.path.abspath(gif))
        if os.path.isdir(gif):
            raise ConfigError(f"--gif {quote(gif, 200)}: is a directory; give a file name, e.g. kiosk.gif")
        if not os.path.isdir(parent):
            raise ConfigError(f"--gif {quote(gif, 200)}: {quote(parent, 200)} is not a directory")
        existed = os.path.exists(gif)
        try:
            with open(gif, "ab"):                                   # "ab": an existing GIF stays as it is
                pass
        except OSError as e:
            raise ConfigError(f"--gif {quote(gif, 200)}: cannot write it: {e.strerror}") from None
        if not existed:
            os.remove(gif)
    if frames_dir:
        if os.path.exists(frames_dir) and not os.path.isdir(frames_dir):
            raise ConfigError(f"--frames {quote(frames_dir, 200)}: is a file, not a directory")
        try:
            os.makedirs(frames_dir, exist_ok=True)
            with tempfile.TemporaryFile(dir=frames_dir):
                pass
        except OSError as e:
            raise ConfigError(f"--frames {quote(frames_dir, 200)}: cannot write PNGs there: {e.strerror}") from None


class Recorder:
    """Keeps each frame that differs from the previous one, with its time."""

    def __init__(self):
        self.frames, self.times, self.settled = [], [], []
        self.t0 = time.monotonic()

    def __call__(self, image, view):
        if self.frames and image.tobytes() == self.frames[-1].tobytes():
            return
        self.frames.append(image.copy())
        self.times.append(time.monotonic() - self.t0)
        self.settled.append(view.mode != "answer" or view.status in ("done", "cut off", "cancelled"))

    def write(self, gif=None, frames_dir=None, scale=1):
        """PNGs and/or a GIF; `scale` > 1 enlarges pixels (nearest neighbour) for a README or a slide."""
        from PIL import Image
        frames = [im if scale == 1 else im.resize((im.width * scale, im.height * scale), Image.NEAREST)
                  for im in self.frames]
        if frames_dir:
            os.makedirs(frames_dir, exist_ok=True)
            for k, im in enumerate(frames):
                im.save(os.path.join(frames_dir, f"frame_{k:04d}.png"))
        if gif and frames:
            # streaming frames play in real time; settled screens (idle, a finished answer) stay 1.5 s
            ends = self.times[1:] + [self.times[-1]]
            ms = [max(1500 if settled else 20, int(round((b - a) * 1000)))
                  for a, b, settled in zip(self.times, ends, self.settled)]
            frames = [im.convert("L") for im in frames]
            frames[0].save(gif, save_all=True, append_images=frames[1:], duration=ms, loop=0)


def press(factory, pin, seconds):
    p = factory.pin(pin)
    p.drive_low()
    time.sleep(seconds)                  # a finger on the button, not a wait for a thread
    p.drive_high()


def simulate(cfg, model, presses, *, gif=None, frames_dir=None, scale=1, out=None, timeout=120):
    """Run the kiosk on mock pins, press as scripted -> (kiosk, recorder). Prints the transcript to `out`
    (default: sys.stdout when called, not when this module was imported)."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    check_script(cfg, presses)
    check_outputs(gif, frames_dir)
    factory = MockFactory(pin_class=MockPWMPin)
    rec = Recorder()
    kiosk = Kiosk(cfg, model, open_display(cfg, simulate=True), pin_factory=factory, on_frame=rec)
    kiosk.start()
    try:
        for p in presses:
            if p.at is None:
                kiosk.wait_idle(timeout)
            else:
                time.sleep(max(0.0, p.at - (time.monotonic() - rec.t0)))
            press(factory, p.pin, cfg.hold_seconds + HOLD_EXTRA if p.hold else PRESS_SECONDS)
        kiosk.wait_idle(timeout)
    finally:
        kiosk.stop()
        factory.reset()
    print_transcript(kiosk, out or sys.stdout)
    rec.write(gif, frames_dir, scale)
    return kiosk, rec


def print_transcript(kiosk, out):
    for t in kiosk.transcript:
        mark = t["verdict"] + (f", expected {t['expected']}" if t["verdict"] == "wrong" else "")
        first = "" if t["first_char_seconds"] is None else f", first character after {t['first_char_seconds']*1000:.0f} ms"
        out.write(f"[GPIO {t['pin']} {t['label']}] {t['question']}\n")
        out.write(f"  thinking: {t['thinking']}\n  answer:   {t['answer']}  ({t['status']}, {mark}, "
                  f"{t['tokens']} tokens, {t['tokens_per_second']:.0f} tok/s{first})\n")
    s = kiosk.stats
    out.write(f"{s['accepted']} presses accepted: {s['answered']} answered, {s['cancelled']} cancelled, "
              f"{s['dropped']} dropped, {s['bounced']} bounces ignored, {s['errors']} errors\n")
