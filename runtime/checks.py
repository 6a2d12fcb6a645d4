"""One rule for the values in a configuration, in one wording, for every checker: the trainer's recipes
(trainer/config.py, recipe.py, grpo.py, rejection.py), the kiosk's YAML (runtime/kiosk/config.py) and the
sampling options of `generate` (runtime.generate.check_options). A bad value reads

    {where}: {key}={value}: must be {what would be valid}

`where` is the file and section ("r1.yaml: stages[2] (rejection): sft", "kiosk.yaml"); `key` the name or the
key path (`lr`, `buttons[1].pin`); the value is quoted by `quote`, one line even for a 60 KB string. A checker
with no file (the Python API's options) passes where="" and its caller prefixes one.

Intervals are written as in the recipes' range tables: "[1, inf)" (>= 1), "(0, 1]", "[0, 2000]"; a square
bracket includes its bound. An integer interval with both bounds included reads "from 0 to 2000".
"""
import math
import numbers
import typing
from dataclasses import MISSING, fields

from runtime.errors import ConfigError

QUOTE_CHARS = 60                          # a value quoted in an error message is cut to this many characters
TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
              dict: "a mapping"}


def quote(value, limit=QUOTE_CHARS):
    """repr(value) for an error message, cut to `limit` characters: one readable line even for a 60 KB value."""
    try:
        text = repr(value)
    except ValueError:                        # an int past Python's 4300-digit limit for str()
        return f"<an integer of {value.bit_length()} bits>"
    size = f"{len(value)} items" if isinstance(value, (list, dict)) else \
        f"{len(value if isinstance(value, str) else text)} characters"
    return text if len(text) <= limit else f"{text[:limit]}... ({size})"


def cut(text, limit=200):
    """Text for an error message (a path, a parser's message), cut to `limit` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def invalid(where, key, value, valid, error=ConfigError, shown=None):
    """The one wording of a bad value -> the exception to raise. shown: the value as the user wrote it
    (an I2C address in hex), instead of its quote."""
    return error(f"{where + ': ' if where else ''}{key}={shown or quote(value)}: must be {valid}")


def is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def in_interval(value, interval, integer=False):
    """Is `value` an integer (integer=True) or a finite real number (ints included) in `interval`?"""
    lo_bracket, hi_bracket = interval[0], interval[-1]
    lo, hi = (float(x) for x in interval[1:-1].split(","))
    if not (is_int(value) if integer else is_int(value) or is_real(value) and math.isfinite(value)):
        return False                          # is_int first: a huge int would overflow isfinite
    return bool((lo <= value if lo_bracket == "[" else lo < value)
                and (value <= hi if hi_bracket == "]" else value < hi))


def describe(interval, integer=False):
    """"[1, inf)" -> "an integer >= 1"; "[0, 2000]" -> "an integer from 0 to 2000"; "(0, 1]" -> "a number
    in (0, 1]"; "(-inf, inf)" -> "a finite number". A bounded real needs no "finite": NaN fails "in"."""
    lo, hi = (x.strip() for x in interval[1:-1].split(","))
    kind = "an integer" if integer else "a finite number"
    if (lo, hi) == ("-inf", "inf"):
        return kind
    if hi == "inf":
        return f"{kind} {'>=' if interval[0] == '[' else '>'} {lo}"
    if lo == "-inf":
        return f"{kind} {'<=' if interval[-1] == ']' else '<'} {hi}"
    if integer and interval[0] == "[" and interval[-1] == "]":
        return f"an integer from {lo} to {hi}"
    return f"{'an integer' if integer else 'a number'} in {interval}"


def check_range(value, interval, where, key, integer=False, note="", error=ConfigError, shown=None):
    """Raise `error` unless `value` is a number in `interval` (an integer when `integer`, else any finite
    real, ints included). note: what follows the range in the message (" (0 = greedy)", ", or null")."""
    if not in_interval(value, interval, integer):
        raise invalid(where, key, value, describe(interval, integer) + note, error, shown)


def check_one_of(value, allowed, where, key, error=ConfigError):
    """Raise `error` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise invalid(where, key, value, f"one of {', '.join(map(str, allowed))}", error)


def check_ranges(obj, ranges, where, prefix=""):
    """Every int or float field of dataclass `obj` against its interval in `ranges` (a field missing from
    `ranges` is a KeyError: every number gets a range). None (an Optional left off) passes. The fields'
    types are checked already (check_fields), so an int field holds an int."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if value is not None and (is_int(value) or is_real(value)):
            check_range(value, ranges[f.name], where, prefix + f.name, integer=is_int(value))


def check_type(value, tp, where, key):
    """`value` as a field of type `tp` (int, float, str, bool, list, dict, Optional of one; ints are
    accepted for floats) -> the value, an int made float. Other types (dataclasses) pass unchecked."""
    optional = typing.get_origin(tp) is typing.Union and type(None) in typing.get_args(tp)
    if optional:
        if value is None:
            return None
        tp = next(t for t in typing.get_args(tp) if t is not type(None))
    if tp not in TYPE_WORDS:
        return value
    if tp is float and is_int(value):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise invalid(where, key, value, TYPE_WORDS[tp] + (" or null" if optional else ""))
    return value


def check_known(raw, allowed, where, prefix=""):
    """Raise unless every key of mapping `raw` is in `allowed`; the message lists the allowed keys."""
    for key in raw:
        if key not in allowed:
            name = quote(prefix + key) if isinstance(key, str) else prefix + quote(key)
            raise ConfigError(f"{where}: unknown key {name}; allowed keys: {', '.join(allowed)}")


def check_fields(cls, raw, where, prefix="", skip=(), internal=()):
    """A mapping checked against dataclass `cls`: a mapping, known keys, required keys present, each
    value of its field's type -> {field: value} without the `skip` fields (the caller checks those).
    Keys are named `prefix + field` ("display." + "width"); `internal` fields are not keys (set by the loader)."""
    known = {f.name: f for f in fields(cls) if f.name not in internal}
    if not isinstance(raw, dict):
        raise invalid(where, prefix.rstrip(".") or cls.__name__, raw, f"a mapping of {', '.join(known)}")
    check_known(raw, known, where, prefix)
    required = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
    out = {}
    for name, f in known.items():
        if name not in raw:
            if name in required:
                raise ConfigError(f"{where}: missing key {quote(prefix + name)} (required: {', '.join(required)})")
        elif name not in skip:
            out[name] = check_type(raw[name], f.type, where, prefix + name)
    return out
