"""User datasets: JSONL lines `{"question": ..., "reasoning": ..., "answer": ...}`.

Errors name the file, the 1-based line and what is wrong; every text must be encodable."""
import json
from dataclasses import dataclass

from runtime.errors import DatasetError, TokenizerError
from runtime.tokenizer import Tokenizer

FIELDS = ("question", "reasoning", "answer")


@dataclass(frozen=True)
class Example:
    question: str
    reasoning: str
    answer: str
    family: str = "user"


def load_jsonl(path, tok=None):
    tok = tok or Tokenizer()
    out = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"{path}: cannot read dataset: {e.strerror}") from None
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
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
                try:
                    tok.encode(row[key])
                except TokenizerError as e:
                    raise DatasetError(f"{where}: key {key!r}: {e}") from None
            if not row["answer"].strip():
                raise DatasetError(f"{where}: key 'answer' is empty")
            out.append(Example(row["question"], row["reasoning"], row["answer"]))
    return out
