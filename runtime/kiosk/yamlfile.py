"""A kiosk config's YAML, read defensively: at most MAX_FILE_BYTES, strict UTF-8, no anchors or aliases, no
duplicate keys, nesting at most MAX_DEPTH; every problem a ConfigError naming the file and the line."""
import os

import yaml

from runtime.checks import QUOTE_CHARS, cut, quote
from runtime.errors import ConfigError

MAX_FILE_BYTES = 64 * 1024                # the shipped configs are 1-2 KB; the pure-Python YAML parser takes
#                                           ~1 s for 64 KB of the densest YAML (a list of 32,000 ints), ~15 s for 1 MB
MAX_INT_CHARS = 40                        # an integer literal; the longest a kiosk config needs is a seed (10)
MAX_DEPTH = 10                            # YAML nesting; a kiosk config needs 4 (file, buttons, a button, a value)
def read_yaml(path, what="a kiosk config", max_bytes=MAX_FILE_BYTES):
    """The YAML document in `path`: at most `max_bytes`, strict UTF-8, parsed by `_Loader`; `what` the file
    is, in messages (`tinyr1 teach` reads its question/answer files this way too)."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what}: {e.strerror}") from None
    if len(data) > max_bytes:
        size = f"{size:,} bytes" if size > max_bytes else f"more than {max_bytes:,} bytes"
        raise ConfigError(f"{path}: {size}; {what} is at most {max_bytes:,} bytes ({max_bytes // 1024} KiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}: not UTF-8: byte {data[e.start]:#04x} at offset {e.start} (line {line}): "
                          f"{e.reason}; save the file as UTF-8") from None
    try:
        loader = _Loader(text)
        loader.path, loader.what = path, what
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" ({e.context} at line {e.context_mark.line + 1})" if e.context and e.context_mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {cut(e.problem or '')}{context}") from None
    except yaml.reader.ReaderError as e:                 # a character YAML does not allow (control characters)
        c = ord(e.character) if isinstance(e.character, str) else e.character
        line = text.count("\n", 0, e.position) + 1
        raise ConfigError(f"{path}: invalid YAML at line {line}: character U+{c:04X} is not allowed "
                          f"({e.reason}); YAML takes printable characters, tabs and newlines") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses what a kiosk config never needs: anchors and aliases (a 413-byte "billion
    laughs" file names 9^9 strings, and quoting it in an error took 61 s and 6 GB before MemoryError),
    duplicate keys (the second silently won), deep nesting (the composer recurses), and scalars Python
    cannot convert; each as a ConfigError naming the file, the line and the value."""
    path = "<config>"
    what = "a kiosk config"
    depth = 0

    def _refuse(self, mark, what):
        return ConfigError(f"{self.path}: line {mark.line + 1}: {what}")

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            name = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise self._refuse(event.start_mark, f"YAML {name}{cut(event.anchor, QUOTE_CHARS)}: anchors and "
                                                 f"aliases are not allowed in {self.what}; write the value out")
        if self.depth >= MAX_DEPTH:
            raise self._refuse(event.start_mark, f"nested deeper than {MAX_DEPTH} levels (a kiosk config needs 4)")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key, line = self.construct_object(key_node), key_node.start_mark.line + 1
                if key in seen:
                    raise self._refuse(key_node.start_mark, f"duplicate key {quote(key)} (first on line "
                                                            f"{seen[key]}); each key may appear once")
                seen[key] = line
        return super().construct_mapping(node, deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except ConfigError:
            raise
        except ValueError as e:                          # e.g. a date 2024-13-45
            raise self._refuse(node.start_mark, f"{quote(node.value)} is not a valid "
                                                f"{node.tag.rsplit(':', 1)[-1]}: {cut(str(e), QUOTE_CHARS)}") from None

    def construct_yaml_int(self, node):
        if len(node.value) > MAX_INT_CHARS:             # int() of 5000 digits raises on 3.11, takes seconds before
            raise self._refuse(node.start_mark, f"{quote(node.value)} is not a valid int: more than "
                                                f"{MAX_INT_CHARS} characters")
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
