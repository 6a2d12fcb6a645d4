"""The kiosk: GPIO buttons ask canned questions, one worker thread answers them onto the display.

Threads: gpiozero calls `_edge` from its own thread (on the Pi) or the caller's (MockFactory); `_edge`
only enqueues `(kind, button, time)`. The worker thread owns everything else: the model, the view, the
display and the LED. It reads the queue while idle and between tokens while answering, so a press can
cancel the answer being streamed (`busy: cancel`) or wait its turn (`busy: queue`).

Buttons connect a pin to ground (pull-up). A button with no hold action asks on press (lowest latency);
one with a hold action asks on a short press's release and runs the hold action on a release after
`hold_seconds`. Edges within `debounce_ms` of the last accepted edge of that pin are contact bounce.
"""
import logging
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from functools import partial

import numpy as np

from runtime.generate import SEED_MAX
from runtime.kiosk.display import TerminalDisplay
from runtime.kiosk.layout import View, layout, page_count, split_completion
from runtime.kiosk.service import Watchdog, sd_notify
from runtime.tasks import families_of, judge
from runtime.tasks.reach import beyond_completion, reach

log = logging.getLogger("tinyr1.kiosk")


@dataclass
class Job:
    button: int                  # index into cfg.buttons
    pressed_at: float            # clock() of the accepted edge


class PinState:
    def __init__(self):
        self.down_at = None      # clock() of the accepted press, None while released
        self.last_edge = -1e9


def question_of(cfg, button, press, families):
    """The question a press asks: the fixed text, or the task's held-out problem drawn for the press-th press
    (seeded by the config's seed, so a kiosk and its pre-flight check draw the same problems)."""
    if button.question is not None:
        return button.question
    rng = np.random.default_rng([cfg.generation.seed, press])
    return families[button.task].sample(rng, "heldout").question


def ask(model, g, question, press, stats):
    """The kiosk's one generation call (`g`: the config's generation section) -> the model's text pieces, or
    the one piece saying that the question is beyond the model's reach (runtime/tasks/reach.py)."""
    if not reach(question, families_of(model), getattr(model, "provenance", None)).ok:
        stats.update(prefill_seconds=0.0, decode_seconds=0.0, tokens=0, stop="answer", prompt_tokens=0)
        return (piece for piece in [beyond_completion()])        # a generator, as generate's: it has close()
    return model.generate(question, max_new_tokens=g.max_new_tokens, temperature=g.temperature, top_k=g.top_k,
                          top_p=g.top_p, seed=(g.seed + press) % (SEED_MAX + 1), stats=stats)


def cut_off(model, stats):
    """Why a finished generation stopped before `</answer>` or `<eos>`, or "" if it did not."""
    if stats.get("stop") != "length":
        return ""
    room = getattr(model, "max_positions", None)
    return "context full" if room is not None and stats.get("prompt_tokens", 0) + stats.get("tokens", 0) >= room \
        else "token limit"


class Kiosk:
    def __init__(self, cfg, model, display, *, pin_factory=None, clock=time.monotonic, open_display=None,
                 on_frame=None, env=None):
        """`open_display()` makes a fresh display (used to retry after a failure); `on_frame(image, view)`
        sees every drawn frame (the simulator records them)."""
        self.cfg, self.model, self.display, self.clock = cfg, model, display, clock
        self.open_display, self.on_frame, self.env = open_display, on_frame, env
        self.families = families_of(model)
        self.events = queue.SimpleQueue()
        self.pending = deque()
        self.pins = [PinState() for _ in cfg.buttons]
        self.stats = Counter()           # accepted, answered (cut_off of them), cancelled, dropped, errors, ...
        self.transcript = []             # one dict per finished or cancelled answer
        self.view = View(title=cfg.title, labels=[f"{b.pin} {b.label}" for b in cfg.buttons],
                         thinking_mode=cfg.display.thinking)
        self.refresh = cfg.refresh_seconds()
        self.last_draw, self.dirty = -1e9, False
        self.fallback_until = None       # clock() when to retry the configured display
        self.idle = threading.Event()    # set while the worker waits with nothing to do
        self.watchdog = Watchdog(env, clock=time.monotonic)
        self.presses = 0
        self._thread = None
        self.display_error = None        # the last display failure logged (the same one again goes to DEBUG)
        self.pin_factory, self.gpio_retry_at = pin_factory, None
        self.buttons, self.led = [], None
        self._open_gpio()

    # ------------------------------------------------------------ GPIO side (any thread)
    def _open_gpio(self):
        """Buttons and LED. Without GPIO (not a Pi, no lgpio, no access to /dev/gpiochip*) the kiosk still
        runs: one error in the log and on the screen, and another try every 10 s."""
        try:
            self.buttons, self.led = self._gpio(self.pin_factory)
        except Exception as e:
            first = self.gpio_retry_at is None
            self.gpio_retry_at = self.clock() + 10.0
            if first:
                log.error("GPIO unavailable (%s: %s): the buttons do nothing; %s; retrying every 10 s",
                          type(e).__name__, e, gpio_hint())
                self.view = View(mode="error", title=self.cfg.title, labels=self.view.labels,
                                 message=f"no GPIO, buttons off: {type(e).__name__}. See the service log.")
            return False
        if self.gpio_retry_at is not None:
            log.info("GPIO is back: %d buttons", len(self.buttons))
            self.gpio_retry_at = None
            self.view = View(title=self.cfg.title, labels=self.view.labels, thinking_mode=self.view.thinking_mode)
        return True

    def _gpio(self, pin_factory):
        from gpiozero import LED, PWMLED, Button
        buttons = []
        try:
            for i, b in enumerate(self.cfg.buttons):
                btn = Button(b.pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
                btn.when_pressed = partial(self._edge, "down", i)
                btn.when_released = partial(self._edge, "up", i)
                buttons.append(btn)
        except Exception:
            for btn in buttons:
                btn.close()
            raise
        led = None
        if self.cfg.led is not None:
            try:
                led = (PWMLED if self.cfg.led.pwm else LED)(self.cfg.led.pin, pin_factory=pin_factory)
            except Exception as e:                   # e.g. no PWM on this pin factory: blink instead
                log.warning("status LED on GPIO %d: no PWM (%s); it will blink", self.cfg.led.pin, e)
                led = LED(self.cfg.led.pin, pin_factory=pin_factory)
        return buttons, led

    def _edge(self, kind, i):
        self.events.put((kind, i, self.clock()))

    # ------------------------------------------------------------ lifecycle
    def start(self):
        self._thread = threading.Thread(target=self._run, name="tinyr1-kiosk", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=30):
        """Cancel what is running, answer nothing more, release the pins."""
        self.events.put(("stop", -1, self.clock()))
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the kiosk worker did not stop")
        for btn in self.buttons:
            btn.close()
        if self.led is not None:
            self.led.close()
        self.display.close()

    def wait_idle(self, timeout=60):
        """Block until every queued press has been handled (tests and the simulator) -> True, or False
        after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.idle.clear()
            self.events.put(("sync", -1, self.clock()))
            if self.idle.wait(min(0.5, max(deadline - time.monotonic(), 0))) and self.events.empty() \
                    and not self.pending:
                return True
        return False

    # ------------------------------------------------------------ worker thread
    def _run(self):
        sd_notify("READY=1", self.env)
        self._draw(final=True)
        log.info("kiosk ready: %d buttons, display %s", len(self.buttons), self.display.name)
        while True:
            self.watchdog.tick()
            try:
                if self._step() == "stop":
                    break
            except Exception:                            # a bug must not end the kiosk: log, show idle, go on
                self.stats["errors"] += 1
                log.exception("kiosk worker error")
                self.view = View(title=self.cfg.title, labels=self.view.labels, thinking_mode=self.view.thinking_mode)
        for _ in range(len(self.pending)):                # queued presses that will never run
            self.pending.popleft()
            self.stats["accepted"] += 1
            self.stats["cancelled"] += 1
        self._led("off")
        sd_notify("STOPPING=1", self.env)
        self.idle.set()

    def _step(self):
        """Wait for one edge (or take a queued press) and handle it -> "stop" to end the worker."""
        self._retry_display()
        if self.gpio_retry_at is not None and self.clock() >= self.gpio_retry_at and self._open_gpio():
            self._draw(final=True)
        if self.pending:
            job = self.pending.popleft()
        else:
            try:
                kind, i, t = self.events.get(timeout=self.watchdog.timeout(1.0))
            except queue.Empty:
                return None
            if kind == "sync":
                self.idle.set()
                return None
            job = self._action(kind, i, t)
        while isinstance(job, Job):
            job = self._answer(job)
        return job

    def _action(self, kind, i, t):
        """One edge -> Job (ask), None, or applies a hold action. Debounce happens here."""
        if kind in ("stop", "sync"):
            return kind
        b, s = self.cfg.buttons[i], self.pins[i]
        if t - s.last_edge < self.cfg.debounce_ms / 1000:
            self.stats["bounced"] += 1
            return None
        s.last_edge = t
        if kind == "down":
            s.down_at = t
            return Job(i, t) if b.hold == "none" else None
        if s.down_at is None or b.hold == "none":
            s.down_at = None
            return None
        held, s.down_at = t - s.down_at, None
        if held < self.cfg.hold_seconds:
            return Job(i, t)
        self.stats["holds"] += 1
        return self._hold(b.hold)

    def _hold(self, action):
        v = self.view
        if action == "toggle_thinking":
            v.thinking_mode = "full" if v.thinking_mode != "full" else (
                self.cfg.display.thinking if self.cfg.display.thinking != "full" else "collapsed")
        elif action == "next_page":
            v.page += 1
        elif action == "cancel":
            return "cancel"
        self._draw(final=True)
        return None

    def _poll(self):
        """Between tokens: handle waiting edges -> None (go on), "cancel", "stop" or a Job (cancel for it)."""
        while True:
            try:
                kind, i, t = self.events.get_nowait()
            except queue.Empty:
                return None
            act = self._action(kind, i, t)
            if act == "sync":
                continue
            if act in ("stop", "cancel"):
                return act
            if isinstance(act, Job):
                if self.cfg.busy == "cancel":
                    return act
                if len(self.pending) < self.cfg.queue_size:
                    self.pending.append(act)
                else:
                    self.stats["dropped"] += 1
                    log.warning("press on GPIO %d dropped: %d presses already queued",
                                self.cfg.buttons[act.button].pin, len(self.pending))

    def _question(self, b):
        return question_of(self.cfg, b, self.presses, self.families)

    def _answer(self, job):
        """Stream one answer onto the display -> the next thing to do (a Job, "stop" or None)."""
        self.stats["accepted"] += 1
        self.presses += 1
        b, g = self.cfg.buttons[job.button], self.cfg.generation
        question = self._question(b)
        v = self.view = View(mode="answer", title=self.cfg.title, labels=self.view.labels, question=question,
                             status="thinking", thinking_mode=self.view.thinking_mode)
        log.info("GPIO %d (%s): %s", b.pin, b.label, question)
        self._led("pulse")
        self._draw(final=True)                       # the question appears at once
        stats, text, first, nxt = {}, "", None, None
        try:
            pieces = ask(self.model, g, question, self.presses, stats)
            try:
                for piece in pieces:
                    text += piece
                    v.thinking, ans = split_completion(text)
                    v.answer, v.status = (ans, "answering") if ans is not None else ("", "thinking")
                    v.tokens += 1
                    v.tokens_per_second = v.tokens / max(self.clock() - job.pressed_at, 1e-9)
                    self._draw(final=first is None)
                    if first is None:
                        first = self.clock() - job.pressed_at
                    self.watchdog.tick()
                    nxt = self._poll()
                    if nxt is not None:
                        break
            finally:
                pieces.close()
        except Exception as e:                       # shown and logged; the kiosk keeps running
            self.stats["errors"] += 1
            log.exception("generation failed for %r", question)
            self.view = View(mode="error", title=self.cfg.title, labels=v.labels, message=f"{type(e).__name__}: {e}")
            self._draw(final=True)
            self._led("off")
            return None
        done = nxt is None
        v.cut_off = cut_off(self.model, stats) if done else ""
        v.status = "cancelled" if not done else "cut off" if v.cut_off else "done"
        if stats.get("tokens"):                     # the model's count (a places model shows fewer pieces)
            v.tokens = stats["tokens"]
            v.tokens_per_second = stats["tokens"] / max(stats["prefill_seconds"] + stats["decode_seconds"], 1e-9)
        verdict, _, expected, covered = judge(question, text, v.cut_off, self.families) if done \
            else ("cancelled", None, None, False)
        if v.status == "done" and covered:           # a cut-off answer is not judged
            v.verified = verdict == "right"
        self.stats["answered" if done else "cancelled"] += 1
        if v.cut_off:
            self.stats["cut_off"] += 1
        self.transcript.append(dict(pin=b.pin, label=b.label, question=question, text=text, thinking=v.thinking,
                                    answer=v.answer, verified=v.verified, verdict=verdict, expected=expected,
                                    status=v.status, cut_off=v.cut_off, tokens=v.tokens, tokens_per_second=v.tokens_per_second, first_char_seconds=first))
        log.info("%s %r -> %r (%s, %d tokens, %.0f tok/s)", v.status, question, v.answer, verdict, v.tokens,
                 v.tokens_per_second)
        self._draw(final=True)
        self._led("off")
        return None if nxt == "cancel" else nxt

    # ------------------------------------------------------------ display and LED
    def _draw(self, final=False):
        """Redraw at most every `refresh` seconds (the bus's budget), always when `final`."""
        now = self.clock()
        if not final and now - self.last_draw < self.refresh:
            self.dirty = True
            return
        lines = layout(self.view, self.display.cols, self.display.rows)
        try:
            self.display.show(lines, final=final)
        except Exception as e:
            log.error("display %s failed (%s: %s); using the console, retrying every 10 s",
                      self.display.name, type(e).__name__, e)
            self.display_error = f"{type(e).__name__}: {e}"
            self.stats["display_failures"] += 1
            self.display = TerminalDisplay()
            self.fallback_until = now + 10.0
            self.display.show(layout(self.view, self.display.cols, self.display.rows), final=final)
        self.last_draw, self.dirty = now, False
        if self.on_frame is not None and self.display.frame is not None:
            self.on_frame(self.display.frame, self.view)

    def _retry_display(self):
        if self.fallback_until is None or self.open_display is None or self.clock() < self.fallback_until:
            return
        try:
            self.display = self.open_display()
            self.fallback_until, self.display_error = None, None
            log.info("display is back")
            self._draw(final=True)
        except Exception as e:
            why = f"{type(e).__name__}: {e}"                # a new failure is news; the same one every 10 s is not
            (log.debug if why == self.display_error else log.warning)("display still failing (%s); next try in 10 s",
                                                                        why)
            self.display_error = why
            self.fallback_until = self.clock() + 10.0

    def _led(self, state):
        if self.led is None:
            return
        try:
            if state == "off":
                self.led.off()
            elif hasattr(self.led, "pulse"):
                self.led.pulse(fade_in_time=0.4, fade_out_time=0.4)
            else:
                self.led.blink(on_time=0.2, off_time=0.2)
        except Exception as e:                       # a broken LED must not stop answers
            log.warning("status LED: %s", e)

    def pages(self):
        return page_count(self.view, self.display.cols, self.display.rows)


def gpio_hint():
    """What to check when gpiozero finds no pin factory."""
    import importlib.util
    if importlib.util.find_spec("lgpio") is None:
        return ("lgpio is not installed (a Raspberry Pi 5 needs it: apt install python3-lgpio, from the Raspberry "
                "Pi OS archive)")
    return "is this a Raspberry Pi, and is the service user in the gpio group (install.sh adds it)?"
