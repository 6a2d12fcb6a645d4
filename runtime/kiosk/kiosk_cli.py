"""`tinyr1 validate`, `tinyr1 kiosk` (on the Pi) and `tinyr1 simulate` (on a laptop)."""
import os
import signal
import sys
import time

import click

from runtime.errors import TinyR1Error


def _load(config, model):
    from runtime.kiosk.config import check_model, load_config
    from runtime.kiosk.display import check_display_packages
    try:
        cfg = load_config(config, model)
        check_display_packages(cfg)
        return cfg, check_model(cfg)
    except TinyR1Error as e:
        raise click.ClickException(str(e)) from None


CONFIG = click.option("--config", "config", required=True, type=click.Path(dir_okay=False),
                      help="Kiosk YAML file (see firmware_configs/).")
MODEL = click.option("--model", type=click.Path(dir_okay=False), default=None,
                     help="Compiled model to use instead of the config's `model:`.")


NO_ANSWERS = click.option("--no-answers", is_flag=True,
                          help="Check only the config and the model file; do not ask the buttons' questions.")
PROBLEMS = click.option("--problems", default=20, show_default=True, type=click.IntRange(1, 1000),
                        help="Problems each task: button draws in the pre-flight check (and times a fixed "
                             "question is asked when generation samples, temperature > 0).")


def run_preflight(cfg, m, problems, echo=click.echo):
    """The pre-flight check (runtime/kiosk/preflight.py), printed as it goes -> Report."""
    from runtime.kiosk.preflight import TASK_MIN_ACCURACY, preflight, summary
    from runtime.generate import token_limit
    echo(f"pre-flight: asking {len(cfg.buttons)} buttons as the kiosk would (max_new_tokens "
         f"{token_limit(m, cfg.generation.max_new_tokens)}, temperature {cfg.generation.temperature}, context {m.max_positions}; "
         f"task buttons: {problems} problems each, at least {TASK_MIN_ACCURACY:.0%} right)")
    report = preflight(cfg, m, problems, echo=echo)
    echo(summary(report))
    return report


@click.command("validate")
@click.argument("config", type=click.Path(dir_okay=False))
@MODEL
@click.option("--wiring", is_flag=True, help="Also print what to connect to which header pin (a Markdown table).")
@NO_ANSWERS
@PROBLEMS
def validate(config, model, wiring, no_answers, problems):
    """Check a kiosk config and its model (keys, pins, display, questions), then the pre-flight check: ask
    every button's question as the kiosk would and judge the answer (right, wrong, refused, unverifiable,
    cut off). Exit status 1 on a config error or a button with a problem (what `tinyr1 flash` refuses)."""
    cfg, m = _load(config, model)
    if wiring:
        from runtime.kiosk.config import wiring as rows
        click.echo("| part | header pin | BCM | connects to |\n|---|---:|---|---|")
        for r in rows(cfg):
            click.echo("| " + " | ".join(r) + " |")
    d = cfg.display
    click.echo(f"{config}: ok: board {cfg.board}, display {d.type}, {len(cfg.buttons)} buttons "
               f"(GPIO {', '.join(str(b.pin) for b in cfg.buttons)})"
               + (f", LED on GPIO {cfg.led.pin}" if cfg.led else "")
               + f"; model {cfg.model} ({os.path.getsize(cfg.model):,} bytes, context {m.max_positions})")
    if not no_answers and run_preflight(cfg, m, problems).problems:
        sys.exit(1)


@click.command("kiosk")
@CONFIG
@MODEL
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default: the config's log_level).")
def kiosk(config, model, log_level):
    """Run the kiosk on a Raspberry Pi: buttons ask, the display answers. Stops on SIGTERM or Ctrl-C.

    Under systemd (Type=notify) it reports READY=1 and pings the watchdog; logs go to stdout (journald)."""
    from runtime.kiosk.app import Kiosk
    from runtime.kiosk.display import TerminalDisplay, display_hint, open_display
    from runtime.kiosk.service import gpio_working_dir, setup_logging
    # SIGTERM/SIGINT only set a flag that the main thread polls. CPython runs a Python handler in the main
    # thread whichever thread the kernel hands the signal to; blocking the signals with a mask instead left
    # OpenBLAS's worker threads (started when numpy is imported, before any mask) to take SIGTERM's default
    # action, and the kiosk died without STOPPING=1 in most `systemctl stop`s. The handler takes no lock.
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    cfg, m = _load(config, model)
    log = setup_logging(log_level or cfg.log_level)
    log.debug("lgpio's working directory: %s", gpio_working_dir())      # before gpiozero imports lgpio
    try:
        display, failed = open_display(cfg), None
    except Exception as e:                       # no display: answer on the console and keep retrying
        failed = f"{type(e).__name__}: {e}"
        hint = display_hint(cfg)
        log.error("display %s failed at start (%s); using the console, retrying every 10 s%s", cfg.display.type,
                  failed, f". {hint}" if hint else "")
        display = TerminalDisplay()
    k = Kiosk(cfg, m, display, open_display=lambda: open_display(cfg))
    if failed:
        k.fallback_until, k.display_error = k.clock() + 10.0, failed
    k.start()
    while not stop:
        time.sleep(0.1)
    log.info("stopping")
    k.stop()


@click.command("simulate")
@CONFIG
@MODEL
@click.option("--press", "presses", multiple=True, metavar="PIN[@SECONDS]",
              help="Press the button on this GPIO, at SECONDS after start or, without @, once the previous "
                   "answer is done. Repeatable. Default: every button once, in order.")
@click.option("--hold", "holds", multiple=True, metavar="PIN[@SECONDS]",
              help="Like --press, but held for the config's hold_seconds (runs the button's hold action).")
@click.option("--gif", type=click.Path(dir_okay=False), default=None, help="Write every distinct frame to this animated GIF (streaming in real time, finished screens held 1.5 s).")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False), default=None,
              help="Write every distinct frame as PNG into this directory.")
@click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 16),
              help="Enlarge the written frames this many times (1 = the display's true resolution).")
@click.option("--interactive", is_flag=True, help="Keys 1-9 press buttons 1-9 and the screen is drawn as text in "
              "this terminal; q quits. Ignores --press/--gif/--frames.")
def simulate(config, model, presses, holds, gif, frames_dir, scale, interactive):
    """Run the real kiosk code on this computer: mock GPIO pins (gpiozero MockFactory), the display drawn
    at its true resolution, scripted presses; prints the transcript and writes the frames."""
    from runtime.kiosk.simulate import Press, parse_press, simulate as run
    try:                                         # the command line first: a typo fails before the model loads
        script = [parse_press(p) for p in presses] + [parse_press(h, hold=True) for h in holds]
    except TinyR1Error as e:
        raise click.ClickException(str(e)) from None
    cfg, m = _load(config, model)
    if interactive:
        return _interactive(cfg, m)
    try:
        script.sort(key=lambda p: (p.at is None, p.at or 0))
        if not script:
            script = [Press(b.pin) for b in cfg.buttons]
        run(cfg, m, script, gif=gif, frames_dir=frames_dir, scale=scale)
    except TinyR1Error as e:
        raise click.ClickException(str(e)) from None
    for path in (gif, frames_dir):
        if path:
            click.echo(f"wrote {path}")


def _interactive(cfg, m):
    import termios
    import tty
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    from runtime.kiosk.app import Kiosk
    from runtime.kiosk.display import TerminalDisplay, open_display
    from runtime.kiosk.simulate import PRESS_SECONDS, press
    if not sys.stdin.isatty():
        raise click.ClickException("--interactive needs a terminal; use --press in scripts")
    factory = MockFactory(pin_class=MockPWMPin)
    screen = open_display(cfg, simulate=True)                  # the configured screen's grid, drawn in text
    k = Kiosk(cfg, m, TerminalDisplay(cols=screen.cols, rows=screen.rows), pin_factory=factory)
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)                                      # keys arrive one by one, unechoed
        click.echo(f"keys 1-{len(cfg.buttons)} press: " + ", ".join(f"{i+1}={b.label}" for i, b in enumerate(cfg.buttons))
                   + "; q quits")
        k.start()
        while True:
            ch = os.read(fd, 1).decode(errors="replace")
            if ch in ("q", "\x04", ""):
                break
            if ch.isdigit() and 1 <= int(ch) <= len(cfg.buttons):
                press(factory, cfg.buttons[int(ch) - 1].pin, PRESS_SECONDS)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        k.stop()
        factory.reset()
