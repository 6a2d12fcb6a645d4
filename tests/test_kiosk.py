"""The kiosk end to end: gpiozero MockFactory presses drive the real kiosk code and a compiled model;
frames are luma dummy-device pixels."""
import os
import random
import socket
import threading

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from conftest import ROOT
from tinyr1.cli import main
from runtime.kiosk.app import Kiosk
from runtime.kiosk.config import load_config
from runtime.kiosk.display import TerminalDisplay, open_display
from runtime.kiosk.layout import layout
from runtime.model import load
from runtime.tasks import FAMILIES

OLED = os.path.join(ROOT, "firmware_configs", "pi5-ssd1306.yaml")


@pytest.fixture
def factory():
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


class Clock:
    """A clock the test moves by hand, so holds and bounces need no sleeping."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Gated:
    """A model whose generation pauses after its first piece until the test opens the gate."""

    def __init__(self, model):
        self.model, self.started, self.gate = model, threading.Event(), threading.Event()
        self.max_positions = model.max_positions

    def generate(self, question, **kw):
        for k, piece in enumerate(self.model.generate(question, **kw)):
            yield piece
            if k == 0:
                self.started.set()
                assert self.gate.wait(30), "the test never opened the gate"

    def encode_prompt(self, q):
        return self.model.encode_prompt(q)


def make(cfg, model, factory, **kw):
    frames = []
    k = Kiosk(cfg, model, open_display(cfg, simulate=True), pin_factory=factory,
              on_frame=lambda im, v: frames.append((im.copy(), v.mode, v.status)), **kw)
    return k.start(), frames


def tap(factory, pin, clock=None, seconds=0.1):
    p = factory.pin(pin)
    p.drive_low()
    if clock is not None:
        clock.t += seconds
    p.drive_high()
    if clock is not None:
        clock.t += 0.05


def text_image(display, text, strong):
    """`text` drawn by PIL with the display's font, independently of the kiosk's renderer."""
    w, h = display.size[0], display.cell[1]
    im = Image.new("1", (w, h))
    d = ImageDraw.Draw(im)
    if strong:
        d.rectangle((0, 0, w - 1, h - 1), fill=1)
    d.text((0, 0), text, font=display.font, fill=0 if strong else 1)
    return im


def row_of(frame, display, text, strong=False):
    """The text row of `frame` showing exactly `text`, or None."""
    want = text_image(display, text, strong).tobytes()
    h = display.cell[1]
    for r in range(display.rows):
        if frame.crop((0, r * h, display.size[0], (r + 1) * h)).tobytes() == want:
            return r
    return None


def test_a_press_streams_a_verified_answer_onto_the_oled(factory, student_file):
    cfg = load_config(OLED, model_override=student_file)
    k, frames = make(cfg, load(student_file), factory)
    tap(factory, 27)                                             # "Solve x^2-5x+6=0"
    assert k.wait_idle(60)
    k.stop()
    t = k.transcript[0]
    assert t["question"] == "Solve x^2-5x+6=0" and t["status"] == "done"
    assert t["verified"] is FAMILIES["quadratic"].verify(t["question"], t["answer"])
    assert t["first_char_seconds"] is not None and t["first_char_seconds"] < 5
    assert t["tokens"] == load(student_file).answer(t["question"]).tokens     # the model's count, not the
    disp = k.display                                             # pieces shown (a places model drops letters)
    answer_frames = [f for f in frames if f[1] == "answer"]
    assert len(answer_frames) >= 3
    for im, _, status in answer_frames:                          # never blank, question always on top
        assert im.getbbox() is not None
        assert row_of(im, disp, "Solve x^2-5x+6=0") == 0, status
    final = answer_frames[-1][0]
    assert row_of(final, disp, "= " + t["answer"], strong=True) is not None
    mark = {True: " right", False: " wrong"}[t["verified"]]
    foot = [r for r in range(disp.rows) if row_of(final, disp, f"{t['tokens_per_second']:.0f} tok/s{mark}") == r]
    assert foot == [disp.rows - 1]
    assert frames[0][1] == "idle" and row_of(frames[0][0], disp, "tinyr1", strong=True) == 0


def test_task_buttons_ask_fresh_instances_and_verify_them(factory, tiny_model_file):
    cfg = load_config(OLED, model_override=tiny_model_file)
    cfg.generation.max_new_tokens = 30
    clock = Clock()
    k, _ = make(cfg, load(tiny_model_file), factory, clock=clock)
    for _ in range(3):
        tap(factory, 23, clock)                                  # task: add; has a hold action, asks on release
        assert k.wait_idle(60)
    k.stop()
    qs = [t["question"] for t in k.transcript]
    assert len(set(qs)) == 3 and all(FAMILIES["add"].parse(q) for q in qs)
    for t in k.transcript:                                       # a cut-off answer is not judged
        judged = t["status"] != "cut off"
        assert t["verified"] is (FAMILIES["add"].verify(t["question"], t["answer"]) if judged else None)


@pytest.mark.parametrize("busy", ["cancel", "queue"])
def test_a_press_while_answering_cancels_or_queues(factory, tiny_model_file, busy):
    cfg = load_config(OLED, model_override=tiny_model_file)
    cfg.busy, cfg.queue_size, cfg.generation.max_new_tokens = busy, 2, 20
    gated, clock = Gated(load(tiny_model_file)), Clock()
    k, _ = make(cfg, gated, factory, clock=clock)
    tap(factory, 17, clock)
    assert gated.started.wait(30)
    for pin in (27, 22, 23):
        tap(factory, pin, clock)
    gated.gate.set()
    assert k.wait_idle(60)
    k.stop()
    got = [(t["pin"], t["status"]) for t in k.transcript]
    if busy == "cancel":   # each press cancels the one before; 22 and 23 arrive while the gate is open
        assert got[0] == (17, "cancelled") and got[-1] == (23, "cut off")      # random weights: no </answer>
        assert k.stats["dropped"] == 0
    else:                  # 17 finishes; 27 and 22 wait their turn; 23 finds the queue full
        assert got == [(17, "cut off"), (27, "cut off"), (22, "cut off")]
        assert k.stats["dropped"] == 1
    assert k.stats["accepted"] == k.stats["answered"] + k.stats["cancelled"]


def test_hold_toggles_thinking_and_debounce_ignores_bounces(factory, tiny_model_file):
    cfg = load_config(OLED, model_override=tiny_model_file)
    cfg.generation.max_new_tokens = 40
    clock = Clock()
    k, frames = make(cfg, load(tiny_model_file), factory, clock=clock)
    p = factory.pin(22)                                          # fib, hold: toggle_thinking
    p.drive_low(); clock.t += 0.002; p.drive_high(); clock.t += 0.002; p.drive_low()   # contact bounce
    clock.t += 0.2
    p.drive_high()                                               # a short press: ask
    assert k.wait_idle(60)
    assert len(k.transcript) == 1 and k.stats["bounced"] == 2
    assert k.view.thinking_mode == "collapsed"
    clock.t += 5
    p.drive_low(); clock.t += cfg.hold_seconds + 0.1; p.drive_high()                    # a hold
    assert k.wait_idle(60)
    k.stop()
    assert len(k.transcript) == 1 and k.stats["holds"] == 1 and k.view.thinking_mode == "full"
    assert frames[-1][1] == "answer"                             # redrawn with the thinking shown


def test_event_storm(factory, tiny_model_file):
    """1000 random presses, releases and holds on every button: no exception, no deadlock, every
    accepted press answered or cancelled, the screen consistent with the final state."""
    for busy in ("cancel", "queue"):
        cfg = load_config(OLED, model_override=tiny_model_file)
        cfg.busy, cfg.generation.max_new_tokens = busy, 12
        clock, rnd = Clock(), random.Random(7)
        k, frames = make(cfg, load(tiny_model_file), factory, clock=clock)
        pins = [b.pin for b in cfg.buttons]
        for _ in range(1000):
            pin = factory.pin(rnd.choice(pins))
            kind = rnd.random()
            if kind < 0.45:
                pin.drive_low()
            elif kind < 0.9:
                pin.drive_high()
            else:                                                # a whole hold
                pin.drive_low(); clock.t += cfg.hold_seconds + 0.2; pin.drive_high()
            clock.t += rnd.choice([0.001, 0.01, 0.05, 0.3])
        for p in pins:
            factory.pin(p).drive_high()
        assert k.wait_idle(120), "the kiosk did not settle: deadlock?"
        k.stop()
        s = k.stats
        assert s["errors"] == 0 and s["display_failures"] == 0
        assert s["accepted"] + s["dropped"] > 50 and s["answered"] > 0 and s["bounced"] > 0 and s["holds"] > 0
        assert s["accepted"] == s["answered"] + s["cancelled"]
        assert len(k.transcript) == s["accepted"]
        if busy == "cancel":
            assert s["cancelled"] > 0
        else:
            assert s["dropped"] > 0
        final = frames[-1][0]
        assert final.tobytes() == k.display.render(layout(k.view, k.display.cols, k.display.rows)).tobytes()
        assert k.view.mode == "answer" and k.view.status in ("done", "cut off")
        print(f"storm busy={busy}: {dict(s)}")


class Ticking:
    """A model that takes `dt` seconds of the test's clock per token."""

    def __init__(self, model, clock, dt):
        self.model, self.clock, self.dt, self.max_positions = model, clock, dt, model.max_positions

    def generate(self, question, **kw):
        for piece in self.model.generate(question, **kw):
            self.clock.t += self.dt
            yield piece


def test_redraws_are_coalesced_to_the_refresh_budget(factory, tiny_model_file):
    cfg = load_config(OLED, model_override=tiny_model_file)      # 400 kHz I2C: at most one redraw per 50 ms
    cfg.generation.max_new_tokens = 100
    clock = Clock()
    k, frames = make(cfg, Ticking(load(tiny_model_file), clock, 0.002), factory, clock=clock)
    tap(factory, 17)
    assert k.wait_idle(60)
    k.stop()
    tokens = k.transcript[0]["tokens"]
    assert cfg.refresh_seconds() == 0.05 and tokens >= 50
    # idle + question + first token + one per 50 ms of streaming (~100 x 2 ms) + the final one
    assert k.display.draws <= 3 + int(tokens * 0.002 / 0.05) + 1 + 1
    assert k.display.draws >= 4


class Flaky:
    """A display that fails on its `fail_at`-th draw, as an unplugged I2C cable does."""

    def __init__(self, inner, fail_at):
        self.inner, self.fail_at, self.n = inner, fail_at, 0
        self.cols, self.rows, self.frame, self.name = inner.cols, inner.rows, None, "flaky"

    def show(self, lines, final=False):
        self.n += 1
        if self.n >= self.fail_at:
            raise OSError(121, "Remote I/O error")
        self.inner.show(lines, final)
        self.frame = self.inner.frame

    def close(self):
        pass


class Broken:
    """A model whose generation fails mid-answer for one question."""

    def __init__(self, model, bad):
        self.model, self.bad, self.max_positions = model, bad, model.max_positions

    def generate(self, question, **kw):
        for k, piece in enumerate(self.model.generate(question, **kw)):
            if question == self.bad and k == 3:
                raise RuntimeError("out of memory")
            yield piece


def test_display_failure_falls_back_to_console_and_recovers(factory, tiny_model_file, capsys):
    cfg = load_config(OLED, model_override=tiny_model_file)
    cfg.generation.max_new_tokens = 10
    clock = Clock()
    good = open_display(cfg, simulate=True)
    k = Kiosk(cfg, load(tiny_model_file), Flaky(open_display(cfg, simulate=True), fail_at=3), pin_factory=factory,
              clock=clock, open_display=lambda: good).start()
    tap(factory, 17, clock)
    assert k.wait_idle(60)
    assert isinstance(k.display, TerminalDisplay) and k.stats["display_failures"] == 1
    assert k.transcript[0]["status"] == "cut off"               # the answer went on, on the console
    clock.t += 11                                                # past the retry time
    tap(factory, 27, clock)
    assert k.wait_idle(60)
    k.stop()
    assert k.display is good and good.draws > 0 and len(k.transcript) == 2
    assert "A train travels" in capsys.readouterr().out


def test_generation_error_is_shown_and_the_kiosk_goes_on(factory, tiny_model_file):
    cfg = load_config(OLED, model_override=tiny_model_file)
    cfg.generation.max_new_tokens = 10
    k, frames = make(cfg, Broken(load(tiny_model_file), "Solve x^2-5x+6=0"), factory)
    tap(factory, 27)
    assert k.wait_idle(60)
    assert k.view.mode == "error" and "out of memory" in k.view.message and k.stats["errors"] == 1
    assert row_of(frames[-1][0], k.display, "error", strong=True) == 0
    tap(factory, 17)
    assert k.wait_idle(60)
    k.stop()
    assert k.transcript[-1]["status"] == "cut off" and k.view.mode == "answer"


def test_sd_notify_ready_and_watchdog(factory, tiny_model_file, tmp_path):
    sock_path = str(tmp_path / "notify")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(10)
    cfg = load_config(OLED, model_override=tiny_model_file)
    env = {"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}
    k, _ = make(cfg, load(tiny_model_file), factory, env=env)
    got = [srv.recv(64).decode() for _ in range(3)]
    k.stop()
    srv.close()
    assert got[0] == "READY=1" or "READY=1" in got
    assert got.count("WATCHDOG=1") >= 2
    assert k.watchdog.interval == pytest.approx(0.05)


def test_status_led_pulses_while_thinking_and_ends_off(factory, tiny_model_file):
    cfg = load_config(OLED, model_override=tiny_model_file)
    cfg.generation.max_new_tokens = 10
    gated = Gated(load(tiny_model_file))
    k, _ = make(cfg, gated, factory)
    tap(factory, 17)
    assert gated.started.wait(30)
    assert k.led.is_active or k.led._blink_thread is not None   # pulsing (gpiozero's background thread)
    gated.gate.set()
    assert k.wait_idle(60)
    k.stop()
    assert factory.pin(12).state == 0


def test_simulate_command_writes_frames_and_gif(tmp_path, student_file):
    gif, frames = tmp_path / "k.gif", tmp_path / "frames"
    r = CliRunner().invoke(main, ["simulate", "--config", OLED, "--model", student_file, "--press", "22",
                                  "--gif", str(gif), "--frames", str(frames)])
    assert r.exit_code == 0, r.output
    assert "[GPIO 22 fib(10)] What is fib(10)?" in r.output and "1 presses accepted: 1 answered" in r.output
    pngs = sorted(os.listdir(frames))
    assert len(pngs) >= 3
    assert Image.open(frames / pngs[0]).size == (128, 64)
    with Image.open(gif) as g:
        assert g.size == (128, 64) and g.n_frames == len(pngs)
    big = tmp_path / "big.gif"
    r = CliRunner().invoke(main, ["simulate", "--config", OLED, "--model", student_file, "--press", "17",
                                  "--gif", str(big), "--scale", "3"])
    assert r.exit_code == 0, r.output
    with Image.open(big) as g:
        assert g.size == (384, 192)
    r = CliRunner().invoke(main, ["simulate", "--config", OLED, "--model", student_file, "--press", "5"])
    assert r.exit_code == 1 and "no button on GPIO 5" in r.output


def test_kiosk_command_as_a_service_with_no_display_attached(tmp_path, tiny_model_file):
    """`tinyr1 kiosk` as systemd starts it: mock pins (no Pi), no I2C bus, so the OLED fails at start and
    the console takes over; READY=1 arrives, SIGTERM stops it cleanly with STOPPING=1. Five times: the kernel
    may hand SIGTERM to any thread (OpenBLAS has its own), and the kiosk once died of it 6 times in 10."""
    import signal
    import subprocess
    import sys
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "GPIOZERO_PIN_FACTORY": "mock",
           "JOURNAL_STREAM": "8:1234", "OPENBLAS_NUM_THREADS": "2"}
    for _ in range(5):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        srv.bind(str(tmp_path / "notify"))
        srv.settimeout(60)
        p = subprocess.Popen([sys.executable, "-m", "runtime.cli", "kiosk", "--config", OLED, "--model", tiny_model_file],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
        try:
            assert srv.recv(64) == b"READY=1"
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=60)
            srv.settimeout(1)
            assert srv.recv(64) == b"STOPPING=1", out
        finally:
            p.kill()
            srv.close()
            os.unlink(tmp_path / "notify")
        assert p.returncode == 0, (p.returncode, out)
        assert "<3>tinyr1: display ssd1306 failed at start" in out              # journald priority: error
        assert "<6>tinyr1.kiosk: kiosk ready: 4 buttons, display console" in out and "<6>tinyr1: stopping" in out


def test_interactive_simulation_keys_press_buttons(tiny_model_file):
    """`tinyr1 simulate --interactive` in a terminal (a pty): key 2 presses the second button, q quits."""
    import pty
    import subprocess
    import sys
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "runtime.cli", "simulate", "--config", OLED, "--model", tiny_model_file,
                          "--interactive"], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         cwd=ROOT)
    os.close(slave)
    assert p.stdout.readline().startswith("keys 1-4 press: 1=Train speed, 2=x^2-5x+6=0")
    os.write(master, b"2q")
    out, _ = p.communicate(timeout=60)
    os.close(master)
    assert p.returncode == 0, out
    assert "Solve x^2-5x+6=0" in out


@pytest.mark.parametrize("text, thinking, answer", [
    ("<think>7+8=15", "7+8=15", None),
    ("<think>7+8=15</think>", "7+8=15", None),
    ("<think>7+8=15</think><answer>8", "7+8=15", "8"),
    ("<think>7+8=15</think><answer>85</answer>", "7+8=15", "85"),
    ("<think>a<answer>x</think><answer>85", "a", "x85"),          # a stray tag ends the thinking, then is dropped
    ("<think>a</think>b</think><answer>8<pad>5<think>", "a", "85"),
    ("no tags at all", "", None),
])
def test_the_screen_never_shows_a_raw_tag(text, thinking, answer):
    from runtime.kiosk.layout import split_completion
    assert split_completion(text) == (thinking, answer)


def student_with_context(tmp_path, question, answer_tokens):
    """The bundled student compiled with a context that ends `answer_tokens` tokens into its answer to
    `question` -> (path, the completion as the model writes it: a places model's answer with its letters)."""
    import dataclasses
    from compiler.compile import compile_model, load_source
    from runtime.tokenizer import mark_answer
    params, cfg, tok, _ = load_source(os.path.join(ROOT, "trainer", "checkpoints", "student"))
    full = load(_compiled(tmp_path / "full.msgpack", compile_model(params, cfg, tok, quant="int8")[0]))
    text = "".join(full.generate(question))
    raw = mark_answer(text) if tok.places else text               # greedy answers mark from the letter a
    ids = tok.encode(raw)
    assert raw.endswith("</answer>") and len(ids) - ids.index(tok.answer_id) > answer_tokens + 1
    S = len(full.encode_prompt(question)) + ids.index(tok.answer_id) + 1 + answer_tokens
    short = dataclasses.replace(cfg, max_position_embeddings=S)
    return _compiled(tmp_path / "short.msgpack", compile_model(params, short, tok, quant="int8")[0]), raw


def _compiled(path, data):
    path.write_bytes(data)
    return str(path)


def test_an_answer_cut_off_by_a_full_context_shows_as_cut_off(factory, tmp_path):
    from runtime.tokenizer import SPECIALS, unmark_answer
    question = "What is 47+38?"
    path, raw = student_with_context(tmp_path, question, answer_tokens=2)
    cfg = load_config(OLED, model_override=path)
    cfg.buttons[0].question = question                           # GPIO 17
    disp = open_display(cfg, simulate=True)
    screens = []
    k = Kiosk(cfg, load(path), disp, pin_factory=factory,
              on_frame=lambda im, v: screens.append([line.text for line in layout(v, disp.cols, disp.rows)])).start()
    tap(factory, 17)
    assert k.wait_idle(60)
    k.stop()
    t = k.transcript[0]
    shown = unmark_answer(raw[:raw.index("<answer>") + len("<answer>") + 2])    # the text ends mid-answer
    partial = shown.split("<answer>")[1]                         # what the two answer tokens show: `85` or `8`
    assert partial and (t["status"], t["cut_off"], t["answer"], t["verified"]) == ("cut off", "context full",
                                                                                    partial, None)
    assert t["text"] == shown
    assert k.stats["cut_off"] == 1 and k.stats["answered"] == 1
    final = screens[-1]
    assert final == ["What is 47+38?", f"(thought {len(t['thinking'])} chars)", f"= {partial}", "(context full)",
                     "cut off"]
    for screen in screens:                                        # streaming and final: no raw tag, ever
        assert not any(tag in line for line in screen for tag in SPECIALS), screen


def test_a_cut_off_answer_on_a_16x2_lcd_and_a_token_limit():
    from runtime.kiosk.layout import View
    v = View(mode="answer", question="What is 47+38?", answer="8", status="cut off", cut_off="context full")
    assert [line.text for line in layout(v, 16, 2)] == ["What is 47+38?", "=8 (cut off)"]
    v.answer = "123456789012345"
    assert [line.text for line in layout(v, 16, 2)] == ["What is 47+38?", "=123.. (cut off)"]     # the mark stays
    v.answer, v.cut_off = "", "token limit"
    assert [line.text for line in layout(v, 16, 2)] == ["What is 47+38?", "(cut off)"]
    assert [line.text for line in layout(v, 21, 5)] == ["What is 47+38?", "(token limit)", "", "", "cut off"]


class NoPins:
    """A pin factory that fails as gpiozero's default does on a host with no GPIO."""

    def __getattr__(self, name):
        from gpiozero.exc import BadPinFactory
        raise BadPinFactory("Unable to load any default pin factory!")


def test_without_gpio_the_kiosk_runs_says_so_once_and_retries(factory, tiny_model_file, caplog):
    clock = Clock()
    cfg = load_config(OLED, model_override=tiny_model_file)
    k = Kiosk(cfg, load(tiny_model_file), open_display(cfg, simulate=True), pin_factory=NoPins(), clock=clock)
    assert k.buttons == [] and k.view.mode == "error" and "no GPIO" in k.view.message
    k.start()
    # the worker retries at the top of its loop, before it takes the next event: the second sync of
    # two wait_idle()s is taken only after a pass through that check with the new clock
    settle = lambda: k.wait_idle() and k.wait_idle()
    clock.t += 11                                     # still no GPIO at the first retry: no second error
    assert settle()
    assert sum("GPIO unavailable" in r.message for r in caplog.records) == 1
    k.pin_factory = factory                           # the pins appear (say, the gpio group took effect)
    clock.t += 11
    assert settle() and len(k.buttons) == len(cfg.buttons) and k.view.mode == "idle"
    tap(factory, cfg.buttons[0].pin, clock)           # and a press is answered
    assert k.wait_idle() and k.stats["accepted"] == 1
    k.stop()
