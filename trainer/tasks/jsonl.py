"""User datasets: JSONL lines `{"question": ..., "reasoning": ..., "answer": ...}`, UTF-8.

Errors name the file, the 1-based line and what is wrong; every text must be encodable and plain:
the trainer writes `<think>`, `</think>`, `<answer>`, `</answer>` around the fields itself, so a field
holding a special token would train a malformed sequence. Whether an example fits the model's
context is checked at training time, where the context is known (trainer/data.py check_context)."""
import json
from dataclasses import dataclass, field

from runtime.errors import DatasetError, TokenizerError
from runtime.tokenizer import Tokenizer

FIELDS = ("question", "reasoning", "answer")


@dataclass(frozen=True)
class Example:
    question: str
    reasoning: str
    answer: str
    family: str = "user"
    where: str = field(default="", compare=False)     # "path:line" of a JSONL example
    offset: int = 0                                     # place letters from PLACES[offset] (models with places)
    item_offset: int = 0                                # item letters from ITEMS[item_offset] (models with items)


def jsonl_rows(path, what="dataset", max_bytes=None):
    """-> [(where, parsed line)] of a JSONL file, blank lines skipped; DatasetError names the file and the
    1-based line of text that is not UTF-8 or not JSON (and a file over `max_bytes`, when given)."""
    try:
        with open(path, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read {what}: {e.strerror}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise DatasetError(f"{path}: more than {max_bytes:,} bytes; {what} is at most {max_bytes // 1024} KiB")
    rows = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        where = f"{path}:{n}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DatasetError(f"{where}: not UTF-8: byte {e.start + 1} of the line is "
                               f"{raw[e.start:e.end].hex(' ')} ({e.reason}); save the file as UTF-8") from None
        if not line.strip():
            continue
        try:
            rows.append((where, json.loads(line)))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
    return rows


def load_jsonl(path, tok=None):
    tok = tok or Tokenizer()
    out = []
    for where, row in jsonl_rows(path):
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object with {', '.join(FIELDS)}, got {type(row).__name__}")
        for key in row:
            if key not in FIELDS:
                raise DatasetError(f"{where}: unknown key {key!r}; allowed: {', '.join(FIELDS)}")
        for key in FIELDS:
            if key not in row:
                raise DatasetError(f"{where}: missing key {key!r}")
            if not isinstance(row[key], str):
                raise DatasetError(f"{where}: key {key!r} must be a string, got {row[key]!r:.60}")
            check_plain(tok, row[key], f"{where}: key {key!r}")
        if not row["answer"].strip():
            raise DatasetError(f"{where}: key 'answer' is empty")
        out.append(Example(row["question"], row["reasoning"], row["answer"], where=where))
    return out


def check_plain(tok, text, where):
    """Raise DatasetError unless `text` encodes and holds no special token (rejection sampling keeps
    only traces that pass, so its output always loads)."""
    try:
        ids = tok.encode(text)
    except TokenizerError as e:
        raise DatasetError(f"{where}: {e}") from None
    special = next((tok.vocab[i] for i in ids if i < len(tok.specials)), None)
    if special is not None:
        raise DatasetError(f"{where} contains the special token {special}; a field is plain text (the trainer "
                           f"writes <think>...</think><answer>...</answer> around the fields itself); "
                           f"specials: {' '.join(tok.specials)}")
