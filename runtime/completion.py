"""The completion format, `<think>reasoning</think><answer>answer</answer>`, and its one reading.

`parse(text)` is how every part splits a completion: `Model.answer`, the kiosk's screen (which also drops
any stray special token, runtime/kiosk/layout.py), the task verifiers (`runtime.tasks.score`), the GRPO
rewards and rejection sampling. A small model may write tags anywhere and a cut-off text ends anywhere, so:

  * the thinking runs from the first `<think>` to the first `</think>` or `<answer>` after it, or to the end;
  * the answer runs from the first `<answer>` to the next `</answer>`, or to the end (then `closed` is False:
    a cut-off answer that no verifier judges);
  * `well_formed` is the strict format the format reward pays for: exactly `<think>X</think><answer>Y</answer>`,
    nothing before or after, no tag inside, Y not empty.
"""
import re
from dataclasses import dataclass
from typing import Optional

THINK, END_THINK, ANSWER, END_ANSWER = "<think>", "</think>", "<answer>", "</answer>"
_NO_TAG = r"(?:(?!</?think>|</?answer>).)"
FORMAT_RE = re.compile(rf"<think>{_NO_TAG}*</think><answer>{_NO_TAG}+</answer>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)          # a closed answer block


@dataclass(frozen=True)
class Completion:
    thinking: Optional[str]    # None without <think>
    answer: Optional[str]      # None without <answer>; the text so far when cut off
    closed: bool               # the answer's </answer> was written
    answers: int               # closed <answer>...</answer> blocks; more than one earns no accuracy reward
    well_formed: bool

    @property
    def final_answer(self):
        """The answer a verifier judges: None unless its block is closed."""
        return self.answer if self.closed else None


def parse(text):
    """A completion (special tokens kept) -> Completion."""
    text = text or ""
    start = text.find(THINK)
    thinking = None
    if start >= 0:
        at = start + len(THINK)
        ends = [i for i in (text.find(END_THINK, at), text.find(ANSWER, at)) if i >= 0]
        thinking = text[at:min(ends) if ends else len(text)]
    a = text.find(ANSWER)
    answer, closed = None, False
    if a >= 0:
        e = text.find(END_ANSWER, a + len(ANSWER))
        closed = e >= 0
        answer = text[a + len(ANSWER):e if closed else len(text)]
    return Completion(thinking, answer, closed, len(ANSWER_RE.findall(text)), FORMAT_RE.fullmatch(text) is not None)
