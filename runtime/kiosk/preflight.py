"""Pre-flight: ask every button's question exactly as the kiosk would, and judge each answer before a flash.

A press asks through the kiosk's own calls (app.question_of, app.ask: the config's generation settings,
seed and the model's context). A fixed question is asked once when decoding is greedy (the kiosk shows that
answer on every press) and `problems` times when it samples; a `task:` button draws `problems` fresh
held-out problems, those of its first presses. Each answer gets one verdict (`judge`, which the kiosk's
transcript and `simulate` use too, runtime.tasks.judge):

  right         its family's verifier, or the owner's taught answer the model file carries, accepts it
  wrong         they do not; the report shows the expected answer
  refused       the model's refusal: right for a question no family covers, wrong for one a family covers
  unverifiable  no family or taught answer covers the question: the owner reads the answer
  cut off       max_new_tokens or the context ended it before `</answer>`

`tinyr1 validate` prints the report; `tinyr1 flash` refuses a config with a problem (`Report.problems`) unless
--force: a wrong, cut-off or falsely refused fixed answer, or a task button under TASK_MIN_ACCURACY.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from runtime.checks import quote
from runtime.kiosk.app import ask, cut_off, question_of
from runtime.tasks import VERDICTS, families_of, judge

TASK_MIN_ACCURACY = 0.9        # a task button answering fewer of its draws right is a problem
SHOWN = 5                      # answers that are not right listed per task button


@dataclass
class Asked:
    question: str
    verdict: str               # one of VERDICTS
    answer: Optional[str]      # the closed answer, or the text so far when cut off
    expected: Optional[str]    # what the verifier or the taught answer wants, when one covers the question
    covered: bool              # a family or taught answer covers the question
    tokens: int
    cut: str = ""              # "token limit" | "context full" when cut off


@dataclass
class ButtonCheck:
    index: int
    pin: int
    label: str
    task: Optional[str]
    asked: list = field(default_factory=list)

    @property
    def counts(self):
        return Counter(a.verdict for a in self.asked)

    @property
    def problem(self):
        """Why flash should refuse this button, or "" if it should not."""
        c = self.counts
        if c["cut off"]:
            return "cut off"
        if self.task is not None:
            right = c["right"] / len(self.asked)
            return f"{right:.0%} right (under {TASK_MIN_ACCURACY:.0%})" if right < TASK_MIN_ACCURACY else ""
        if c["wrong"]:
            return "wrong"
        if any(a.verdict == "refused" and a.covered for a in self.asked):
            return "refused a question it should answer"
        return ""


@dataclass
class Report:
    buttons: list

    @property
    def problems(self):
        return [b for b in self.buttons if b.problem]


def check_button(cfg, model, index, problems, families=None):
    """Ask one button's question(s) as the kiosk would -> ButtonCheck."""
    families = families or families_of(model)
    b = cfg.buttons[index]
    n = 1 if b.question is not None and cfg.generation.temperature == 0 else problems
    check = ButtonCheck(index, b.pin, b.label, b.task)
    for press in range(1, n + 1):                # the kiosk counts presses from 1
        question = question_of(cfg, b, press, families)
        stats = {}
        pieces = ask(model, cfg.generation, question, press, stats)
        text = "".join(pieces)
        cut = cut_off(model, stats)
        verdict, answer, expected, covered = judge(question, text, cut, families)
        check.asked.append(Asked(question, verdict, answer, expected, covered, stats.get("tokens", 0), cut))
    return check


def preflight(cfg, model, problems, echo=None):
    """Every button -> Report; `problems`: draws per task button (and per fixed question when the kiosk
    samples); `echo(line)`, if given, receives each button's lines as it is checked."""
    families = families_of(model)
    report = Report([])
    for i in range(len(cfg.buttons)):
        check = check_button(cfg, model, i, problems, families)
        report.buttons.append(check)
        if echo is not None:
            for line in describe(check):
                echo(line)
    return report


def _shown(a):
    answer = "(no answer)" if a.answer is None else quote(a.answer.strip(), 80)
    if a.verdict == "wrong":
        return f"{quote(a.question, 80)} -> {answer}, expected {quote(a.expected, 80)}"
    if a.verdict == "cut off":
        fix = "raise generation.max_new_tokens" if a.cut == "token limit" else \
            "the model's context is full: ask a shorter question or one with a shorter answer"
        return f"{quote(a.question, 80)}: {a.cut} after {a.tokens} tokens ({fix})"
    return f"{quote(a.question, 80)} -> {answer}"


def describe(check):
    """-> lines of the report for one button."""
    head = f'GPIO {check.pin} "{check.label}"'
    c = check.counts
    if len(check.asked) == 1:
        a = check.asked[0]
        what = a.verdict
        if a.verdict == "refused":
            what += " (a question it should answer)" if a.covered else " (out of scope)"
        elif a.verdict == "unverifiable":
            what += " (no task family or taught answer covers it: read the answer yourself)"
        return [f"{head}: {what}: {_shown(a)}" + (f"  <- {check.problem}" if check.problem else "")]
    source = f"task {check.task}" if check.task else "sampled"
    tally = ", ".join(f"{c[v]} {v}" for v in VERDICTS[1:] if c[v])
    lines = [f"{head} ({source}): {c['right']} of {len(check.asked)} right" + (f" ({tally})" if tally else "")
             + (f"  <- {check.problem}" if check.problem else "")]
    shown = [a for a in check.asked if a.verdict != "right"]
    for a in shown[:SHOWN]:
        lines.append(f"    {a.verdict}: {_shown(a)}")
    if len(shown) > SHOWN:
        lines.append(f"    ... and {len(shown) - SHOWN} more")
    return lines


def summary(report):
    """-> the report's last line."""
    n = len(report.buttons)
    bad = report.problems
    if not bad:
        return f"pre-flight: all {n} buttons pass"
    names = ", ".join(f"GPIO {b.pin} ({b.problem})" for b in bad)
    return f"pre-flight: {len(bad)} of {n} buttons have a problem: {names}"
