"""Character-level tokenizer: 7 specials, then "\\n" and printable ASCII (32..126). vocab_size = 103.

Each special (`<think>`, `</answer>`, ...) is exactly one token. The runtime owns the tokenizer
because the Pi needs it; the trainer and compiler import it from here.

A tokenizer with `places` (a property of the model it was trained with, saved beside the alphabet) marks
the numbers of a prompt with index hints before encoding it: each digit gets its place letter
(`What is 47+5?` is read as `What is b4a7+a5?`; a = ones, b = tens, ...), and the model writes the numbers
of its answer the same way (`<answer>b5a2</answer>`), which decode_completion and the runtime's stream
read back as `52`. A model then finds a digit by its place, not by counting characters, so a skill carries
to numbers longer than the ones it was trained on (Zhou et al. 2023, index hints in question and answer;
McLeish et al. 2024, Abacus embeddings: the same idea in the embedding). In training the letters start at a
random offset (trainer/tasks/cot.py), so the letters of longer numbers are trained too; the runtime always
starts at a.

A tokenizer with `items` also gives each number of a list in the prompt (three or more numbers apart by
spaces, commas or "and", as `Sort 47 8 44`) an item hint, `#` and a letter before it (`Sort #A47 #B8 #C44`,
then places: `#Ab4a7 #Ba8 #Cb4a4`), and the model writes the numbers of its answer with the hint of the item
each one is (`<answer>#Ba8 #Cb4a4 #Ab4a7</answer>`), which decode_completion and the runtime's stream drop.
Equal numbers of a list are then told apart by their letters, not by where they stand (Zhou et al. 2023,
index hints). Training starts the letters at a random offset; the runtime starts them at A.

A tokenizer with `hints` reads the prompt as it is, but its model writes each number of its answer after a
hint of its own (`<answer>#Aa8 #Ab4a4 #Bb4a4</answer>`: a lettered sort trace gives each entry a letter,
`4:A4,B4`, and the answer's number the letter of its entry; trainer/tasks/cot.py cot_sort), which decoding
drops as it drops items'. The answer then finds its next number by a letter, not by counting how many equal
numbers it has written.
"""
import re

from runtime.errors import TokenizerError

SPECIALS = ("<pad>", "<bos>", "<eos>", "<think>", "</think>", "<answer>", "</answer>")
DEFAULT_ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
PLACES = "abcdefghijklmnopqrstuvwxyz"
ITEMS, ITEM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "#"     # item letters, and the mark before each
_NUMBER = re.compile(r"[0-9]+")
_MARK = re.compile(r"[a-z](?=[0-9])")
_LIST = re.compile(r"(?<![\w.#])[0-9]+(?:(?:, ?| |,? and )[0-9]+){2,}(?!\w|\.[0-9])")   # 3+ numbers: a list
_ITEM_MARK = re.compile(r"#[A-Z](?=[a-z]?[0-9])")
ANSWER = "<answer>"


def mark_places(text, offset=0):
    """'What is 47+5?' -> 'What is b4a7+a5?': every run of digits with its place letter before each digit,
    ones = PLACES[offset]. A run longer than the letters left (26 - offset) stays as it is."""
    def mark(m):
        s = m.group(0)
        if len(s) + offset > len(PLACES):
            return s
        return "".join(PLACES[offset + len(s) - 1 - i] + c for i, c in enumerate(s))
    return _NUMBER.sub(mark, text)


def mark_items(text, offset=0):
    """'Sort 47 8 44' -> 'Sort #A47 #B8 #C44': every number of a list (3+ numbers apart by spaces, commas or
    "and") after `#` and its item letter, the first ITEMS[offset]. A list longer than the letters left stays
    as it is; "What is 47+5?" and "Add 47 and 5." hold no list."""
    def mark(m):
        s = m.group(0)
        if len(_NUMBER.findall(s)) + offset > len(ITEMS):
            return s
        letters = iter(ITEMS[offset:])
        return _NUMBER.sub(lambda n: ITEM + next(letters) + n.group(0), s)
    return _LIST.sub(mark, text)


def item_hints(text, offset=0):
    """The (item letter, number) of every number mark_items marks in text: [("A", "47"), ("B", "8"), ...]."""
    return re.findall(r"#([A-Z])([0-9]+)", mark_items(text, offset))


def unmark_places(text):
    """mark_places undone: 'b5a2 km/h' -> '52 km/h' (every letter right before a digit is a place letter)."""
    return _MARK.sub("", text)


def mark_answer(completion, offset=0):
    """A completion's answer (the text after <answer>) with its numbers marked; the thinking is kept as is."""
    head, sep, tail = completion.partition(ANSWER)
    return head + sep + mark_places(tail, offset) if sep else completion


def unmark_answer(completion, items=False):
    """A completion's answer without its place letters (and item hints, `#B`, for a model with items)."""
    head, sep, tail = completion.partition(ANSWER)
    if items:
        tail = _ITEM_MARK.sub("", tail)
    return head + sep + unmark_places(tail) if sep else completion


def unmark_stream(pieces, items=False):
    """Text pieces (one token each) of a places model's completion -> the same stream with the place letters
    of its answer dropped (and item hints, `#B`, with `items`): pieces after <answer> that could begin a
    mark are held until the next pieces show whether they are one."""
    in_answer, held = False, []
    try:
        for p in pieces:
            in_answer = in_answer or p == ANSWER
            held.append(p)
            while held:
                state = _mark_state(held, items) if in_answer else "no"
                if state == "open":                  # could still be a mark: wait for the next piece
                    break
                if state == "mark":                  # a mark and its digit: the digit alone
                    yield held[-1]
                    held = []
                else:                                # not a mark: its first piece as it is, then look again
                    yield held.pop(0)
        yield from held
    finally:                                           # a consumer that stops early stops the decoding too
        getattr(pieces, "close", lambda: None)()


def _mark_state(held, items):
    """Held answer pieces -> "mark" (place letter, or `#`, item letter and place letter, then a digit),
    "open" (a beginning of one) or "no"."""
    kinds = "".join("#" if p == ITEM else "U" if len(p) == 1 and "A" <= p <= "Z" else
                    "l" if len(p) == 1 and "a" <= p <= "z" else "d" if len(p) == 1 and p.isdigit() else "x"
                    for p in held)
    for mark in ("ld", "#Uld", "#Ud") if items else ("ld",):
        if kinds == mark:
            return "mark"
        if mark.startswith(kinds):
            return "open"
    return "no"


class Tokenizer:
    def __init__(self, alphabet=DEFAULT_ALPHABET, specials=SPECIALS, places=False, items=False, hints=False):
        self.places, self.items, self.hints = bool(places), bool(items), bool(hints)
        self.specials = tuple(specials)
        self.alphabet = str(alphabet)
        if len(set(self.alphabet)) != len(self.alphabet):
            dup = next(c for c in self.alphabet if self.alphabet.count(c) > 1)
            raise TokenizerError(f"alphabet repeats the character {dup!r}")
        if len(set(self.specials)) != len(self.specials) or any(len(s) < 2 for s in self.specials):
            raise TokenizerError(f"specials must be distinct strings of 2+ characters, got {self.specials}")
        self.vocab = list(self.specials) + list(self.alphabet)
        self.vocab_size = len(self.vocab)
        self._char_id = {c: i + len(self.specials) for i, c in enumerate(self.alphabet)}
        self._special_id = {s: i for i, s in enumerate(self.specials)}
        ids = self._special_id
        self.pad_id, self.bos_id, self.eos_id = ids.get("<pad>"), ids.get("<bos>"), ids.get("<eos>")
        self.think_id, self.end_think_id = ids.get("<think>"), ids.get("</think>")
        self.answer_id, self.end_answer_id = ids.get("<answer>"), ids.get("</answer>")
        # specials longest first, so "</think>" is never read as "<" "/" ...
        self._by_length = sorted(self.specials, key=len, reverse=True)

    def encode(self, text):
        """text -> ids. Special strings become single tokens; anything else must be in the alphabet."""
        out = []
        i, n = 0, len(text)
        char_id = self._char_id
        while i < n:
            c = text[i]
            if c == "<":
                for s in self._by_length:
                    if text.startswith(s, i):
                        out.append(self._special_id[s])
                        i += len(s)
                        break
                else:
                    out.append(char_id[c])
                    i += 1
                continue
            t = char_id.get(c)
            if t is None:
                raise TokenizerError(
                    f"character {c!r} (U+{ord(c):04X}) at position {i} is not in the vocabulary; "
                    f"allowed: printable ASCII, newline and the specials {' '.join(self.specials)}")
            out.append(t)
            i += 1
        return out

    def encode_prompt(self, question, offset=0, item_offset=0):
        """<bos> and the question's ids, its lists' numbers marked with item hints if the tokenizer has `items`
        (item_offset: the first item's letter, A = 0) and its numbers with place letters if it has `places`
        (offset: the ones digit's letter, a = 0); training draws the offsets, generation uses 0."""
        text = mark_items(question, item_offset) if self.items else question
        return [self.bos_id] + self.encode(mark_places(text, offset) if self.places else text)

    def encode_completion(self, completion, offset=0):
        """A completion's ids, its answer's numbers marked with places (from `offset`) if the tokenizer has places."""
        return self.encode(mark_answer(completion, offset) if self.places else completion)

    def decode_completion(self, ids):
        """Generated ids -> text without <eos>, the answer's place letters (and item hints) removed if the
        tokenizer has places (items or hints)."""
        text = self.decode([t for t in ids if t != self.eos_id])
        return unmark_answer(text, self.answer_hints) if self.places or self.answer_hints else text

    @property
    def answer_hints(self):
        """Whether the model writes its answer's numbers after `#` hints (items or hints) that decoding drops."""
        return self.items or self.hints

    def decode(self, ids, skip_special=False):
        out = []
        for pos, i in enumerate(ids):
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise TokenizerError(f"token id {i} at position {pos} is outside the vocabulary (0..{self.vocab_size - 1})")
            if skip_special and i < len(self.specials):
                continue
            out.append(self.vocab[i])
        return "".join(out)

    def token_str(self, i):
        return self.decode([i])

    def to_dict(self):
        d = {"type": "char", "specials": list(self.specials), "alphabet": self.alphabet}
        return {**d, **({"places": True} if self.places else {}),   # files without them read as before
                **({"items": True} if self.items else {}), **({"hints": True} if self.hints else {})}

    @classmethod
    def from_dict(cls, d, source="tokenizer"):
        if not isinstance(d, dict):
            raise TokenizerError(f"{source}: expected a mapping, got {type(d).__name__}")
        extra = set(d) - {"type", "specials", "alphabet", "places", "items", "hints"}
        if extra:
            raise TokenizerError(f"{source}: unknown field {sorted(extra)[0]!r}; allowed: type, specials, alphabet, "
                                 f"places, items, hints")
        for flag in ("places", "items", "hints"):
            if not isinstance(d.get(flag, False), bool):
                raise TokenizerError(f"{source}: field {flag!r} must be true or false, got {d[flag]!r:.80}")
        if d.get("type") != "char":
            raise TokenizerError(f"{source}: field 'type' is {d.get('type')!r}; only 'char' is supported")
        specials, alphabet = d.get("specials"), d.get("alphabet")
        if not isinstance(specials, list) or not all(isinstance(s, str) for s in specials):
            raise TokenizerError(f"{source}: field 'specials' must be a list of strings, got {specials!r:.80}")
        if not isinstance(alphabet, str):
            raise TokenizerError(f"{source}: field 'alphabet' must be a string, got {type(alphabet).__name__}")
        missing = [s for s in SPECIALS if s not in specials]
        if missing:
            raise TokenizerError(f"{source}: field 'specials' lacks {missing[0]!r}, which tinyr1 needs")
        try:
            return cls(alphabet, specials, d.get("places", False), d.get("items", False), d.get("hints", False))
        except TokenizerError as e:
            raise TokenizerError(f"{source}: {e}") from None

    def __eq__(self, other):
        return isinstance(other, Tokenizer) and \
            (self.specials, self.alphabet, self.places, self.items, self.hints) == \
            (other.specials, other.alphabet, other.places, other.items, other.hints)

    def __hash__(self):
        return hash((self.specials, self.alphabet, self.places, self.items, self.hints))
