"""What the kiosk's screen says, as a grid of text lines: no drawing, no hardware, easy to test.

`layout(view, cols, rows)` -> list of `Line(text, strong)`, at most `rows` lines of at most `cols`
characters. A display draws the lines (strong ones inverted where it can), so a 128x64 OLED (21x5 with a
6x11 font), a 16x2 LCD and an HDMI screen share one layout.
"""
from dataclasses import dataclass, field
from typing import Optional

from runtime.completion import parse
from runtime.tokenizer import SPECIALS


@dataclass(frozen=True)
class Line:
    text: str
    strong: bool = False                  # the answer and the title: drawn inverted on pixel displays


@dataclass
class View:
    """Everything the screen shows; the kiosk's worker thread owns it."""
    mode: str = "idle"                    # idle | answer | error
    title: str = "tinyr1"
    labels: list = field(default_factory=list)      # idle screen: "17 47+38", ...
    question: str = ""
    thinking: str = ""
    answer: str = ""
    status: str = ""                      # thinking | answering | done | cut off | cancelled | error
    cut_off: str = ""                     # status cut off: why ("context full", "token limit")
    verified: Optional[bool] = None       # task buttons: did the verifier accept the answer?
    tokens: int = 0
    tokens_per_second: float = 0.0
    thinking_mode: str = "collapsed"      # full | collapsed | hidden
    page: int = 0                         # which page of a finished answer (hold: next_page)
    message: str = ""                     # mode error: what went wrong


def split_completion(text):
    """A completion as the screen shows it -> (thinking, answer or None before `<answer>`), split by the one
    reading of a completion (runtime.completion.parse: cut-off text included). A small model may write tags
    anywhere, so any special token left inside either part is dropped: no raw tag reaches the screen."""
    c = parse(text)
    return _plain(c.thinking or "").strip(), None if c.answer is None else _plain(c.answer)


def _plain(text):
    for tag in SPECIALS:
        text = text.replace(tag, "")
    return text


def wrap(text, cols):
    """Word wrap to `cols`; words longer than a line are cut; explicit newlines are kept."""
    out = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            while len(word) > cols:
                if line:
                    out.append(line)
                    line = ""
                out.append(word[:cols])
                word = word[cols:]
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= cols:
                line += " " + word
            else:
                out.append(line)
                line = word
        out.append(line)
    return out


def clip(text, cols):
    return text if len(text) <= cols else text[:max(cols - 2, 0)] + ".."


def footer(view):
    if view.status == "done":
        mark = {True: "right", False: "wrong", None: ""}[view.verified]
        return f"{view.tokens_per_second:.0f} tok/s {mark}".strip()
    if view.status in ("cancelled", "cut off"):
        return view.status
    return f"{view.status} {view.tokens} tok"


def body(view, cols):
    """The scrollable part: thinking (per mode) then the answer. -> [Line]"""
    lines = []
    if view.thinking_mode == "full" and view.thinking:
        lines += [Line(t) for t in wrap(view.thinking, cols)]
    elif view.thinking_mode == "collapsed":
        if view.status == "thinking":               # a ticker of the newest thinking
            lines.append(Line(view.thinking[-cols:]))
        elif view.thinking:
            lines.append(Line(clip(f"(thought {len(view.thinking)} chars)", cols)))
    if view.answer or view.status == "answering":
        lines += [Line(t, strong=True) for t in wrap("= " + view.answer, cols)]
    if view.status == "cut off":                   # the footer says "cut off"; this line says why
        lines += [Line(t) for t in wrap(f"({view.cut_off or 'cut off'})", cols)]
    return lines


def layout(view, cols, rows):
    if cols < 1 or rows < 1:
        return []
    if view.mode == "idle":
        lines = [Line(clip(view.title, cols), strong=True)] + [Line(clip(t, cols)) for t in view.labels]
        if len(lines) > rows:                       # two labels per line when they do not fit one per line
            half = max((cols - 1) // 2, 1)
            pairs = [view.labels[i:i + 2] for i in range(0, len(view.labels), 2)]
            lines = lines[:1] + [Line(" ".join(clip(t, half).ljust(half) for t in p).rstrip()) for p in pairs]
        return lines[:rows]
    if view.mode == "error":
        return ([Line("error", strong=True)] + [Line(t) for t in wrap(view.message, cols)])[:rows]
    if rows <= 2:                                   # 16x2 LCD: the question, then the newest body line
        scroll = body(view, cols)
        tail = scroll[-1:] if scroll else [Line(clip(footer(view), cols))]
        if view.status == "done" and view.answer:
            mark = {True: " ok", False: " x", None: ""}[view.verified]
            tail = [Line(clip("=" + view.answer + mark, cols), strong=True)]
        elif view.status == "cut off":              # the mark survives the clip; the answer gives way
            mark = "(cut off)"
            head = clip("=" + view.answer, cols - len(mark) - 1) + " " if view.answer and cols > len(mark) + 3 else ""
            tail = [Line(clip(head + mark, cols), strong=bool(head))]
        return ([Line(clip(view.question, cols))] + tail)[:rows]
    head = _head(view, cols, rows)
    space = rows - len(head) - 1                    # question + body + footer
    scroll = body(view, cols)
    if view.status in ("done", "cut off") and len(scroll) > space:
        pages = (len(scroll) + space - 1) // space
        page = view.page % pages
        shown = scroll[page * space:(page + 1) * space]
        foot = f"{footer(view)} {page + 1}/{pages}"
    else:                                           # streaming: follow the newest text
        shown = scroll[-space:]
        foot = footer(view)
    shown = shown + [Line("")] * (space - len(shown))  # the footer keeps the bottom row
    return head + shown + [Line(clip(foot, cols))]


def _head(view, cols, rows):
    """The question's lines at the top of an answer screen."""
    q = wrap(view.question, cols)
    n_q = 1 if rows < 5 else min(2, rows - 3)      # up to 2 question lines when 2 body lines remain
    head = [Line(t) for t in q[:n_q]]
    if len(q) > n_q:
        head[-1] = Line(clip(q[n_q - 1] + " " + q[n_q], cols))
    return head


def page_count(view, cols, rows):
    """Pages of a finished answer's body (the `p/n` in the footer); 1 when it fits the screen."""
    if view.mode != "answer" or rows <= 2 or view.status not in ("done", "cut off"):
        return 1
    space = rows - len(_head(view, cols, rows)) - 1
    return max(1, -(-len(body(view, cols)) // space)) if space > 0 else 1
