"""count (`How many r in strawberry?`) and sort (`Sort 5 3 9 1`), with the phrasings below."""
import os
import re

from runtime.tasks.base import Family, norm_space, sized
from runtime.tasks.phrasing import Phrasings, normal

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "words.txt")) as _f:
    WORDS = sorted({w.strip() for w in _f if w.strip() and not w.startswith("#")})
MAX_WORD, MAX_LIST = 60, 40                         # what a parser accepts (the training ranges are smaller)

COUNT_PHRASINGS = Phrasings((
    "How many {l} in {w}?", "How many times does the letter {l} appear in {w}?", "how many {l}'s are in {w}",
    "Count the letter {l} in {w}.", "How many letters {l} are there in the word {w}?",
    "In the word {w}, how many times does {l} appear?", "How many {l}s in {w}?", "Count the {l}'s in {w}",
    "HOW MANY {L} IN {W}?",
    # v4: the letter in more surroundings, so that it is found as the lone letter, not by its position
    "How many {l}'s are there in {w}?", "How many times does {l} occur in the word {w}?",
    "Count the letter {l} in the word {w}", "In {w}, how many {l}'s are there?",
    "How many {l} are there in the word {w}?", "Count the {l} in {w}.", "Count the letters {l} in the word {w}.",
    "how many {l}s does {w} have", "Count how many {l} are in {w}", "Number of {l}'s in {w}?",
    "How often does the letter {l} appear in {w}?", "How many {l} letters are in {w}?",
    "How many copies of {l} are in {w}?", "How many lowercase {l}'s are there in {w}?",
    "How many instances of the letter {l} are in the word {w}?", "Count every {l} in {w}",
    "Count all the {l}s in the word {w}.",
    # v5: the letter after the word, so that a word after "How many" is not read as the letter (v4 read
    # `How many letters x are there in the word W?` as a count of l)
    "How many characters in {w} are {l}?", "How many letters of {w} are {l}'s?",
    "How many times is the letter {l} used in {w}?", "How many occurrences of {l} are in the word {w}?"),
    heldout=(4, 7))
_W, _L = r"([a-z]{1,%d})" % MAX_WORD, r"([a-z])"
_COUNT_RES = [(re.compile(p), swap) for p, swap in [
    (rf"how many (?:copies of |instances of |occurrences of |lowercase )?(?:the )?(?:letters? )?{_L}(?:'?s)?(?: letters?)? "
     rf"(?:are )?(?:there )?in (?:the word )?{_W}", False),
    (rf"how many times (?:does|is) (?:the letter )?{_L} (?:appear|occur|used) in (?:the word )?{_W}", False),
    (rf"how many (?:characters|letters) (?:in|of) (?:the word )?{_W} are (?:the letter )?{_L}(?:'?s)?", True),
    (rf"count (?:the |every |all the |all )(?:letters? )?{_L}(?:'?s)? in (?:the word )?{_W}", False),
    (rf"how many {_L}(?:'?s)? does (?:the word )?{_W} (?:have|contain)", False),
    (rf"count how many (?:times )?(?:the letter )?{_L}(?:'?s)? (?:are )?(?:there )?in (?:the word )?{_W}", False),
    (rf"number of (?:letters? )?{_L}(?:'?s)? in (?:the word )?{_W}", False),
    (rf"how often does (?:the letter )?{_L} (?:appear|occur) in (?:the word )?{_W}", False),
    (rf"in (?:the word )?{_W}, how many (?:times does )?(?:the letter )?{_L}(?:'?s)?(?: appear| occur| are there)?",
     True)]]


def _draw_count(rng, size):
    lo, hi = (1, 20) if size == "train" else (21, 25)
    kind = rng.random()
    if size == "train" and kind < 0.4:
        word = str(rng.choice(WORDS))
    elif kind < 0.7:                               # words run together ("applebanana"): real letter patterns
        word = ""
        while len(word) < lo:
            word += str(rng.choice(WORDS))
        word = word[:int(rng.integers(max(lo, 1), hi + 1))]
    else:                                          # any letter string
        word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(lo, hi + 1))))
    letter = word[rng.integers(len(word))] if rng.random() < 0.6 else chr(ord("a") + int(rng.integers(26)))
    return letter, word


def _parse_count(question):
    q = normal(question)
    for pattern, swap in _COUNT_RES if q else ():
        m = pattern.fullmatch(q)
        if m:
            return (m.group(2), m.group(1)) if swap else (m.group(1), m.group(2))
    return None


SORT_PHRASINGS = Phrasings((
    "Sort {sp}", "Sort these numbers: {cs}", "sort {cc}", "Put {cs} in order.",
    "Order from smallest to largest: {sp}", "Arrange {an} in ascending order.", "Sort the list [{cs}]",
    "sort these numbers: {sp}", "Please sort {cs}."), heldout=(7, 8))
_NUMS = r"(\d{1,3}(?:(?:, ?| |, and | and )\d{1,3}){0,%d})" % (MAX_LIST - 1)
_SORT_RES = [re.compile(p) for p in (
    rf"(?:please )?sort (?:these numbers:? |the list |the numbers:? )?\[?{_NUMS}\]?",
    rf"put {_NUMS} in order", rf"order from smallest to largest:? {_NUMS}",
    rf"arrange {_NUMS} in (?:ascending|increasing) order")]


def _draw_sort(rng, size):
    n = int(rng.integers(1, 13)) if size == "train" else int(rng.integers(13, 17))
    hi = 10 if rng.random() < 0.3 else 100          # lists of single digits too, as people type them
    return tuple(int(x) for x in rng.integers(0, hi, n))


def _parse_sort(question):
    q = normal(question)
    for pattern in _SORT_RES if q else ():
        m = pattern.fullmatch(q)
        if m:
            return tuple(int(t) for t in re.findall(r"\d+", m.group(1)))
    return None


def _sort_fields(p):
    s = list(map(str, p))
    return {"sp": " ".join(s), "cs": ", ".join(s), "cc": ",".join(s),
            "an": s[0] if len(s) == 1 else ", ".join(s[:-1]) + " and " + s[-1]}


COUNT = Family("count", "letter a-z in a word of words.txt, words run together or a letter string of 1-20 letters",
               "21-25 letters", _draw_count, _parse_count, lambda p: str(p[1].count(p[0])),
               COUNT_PHRASINGS, lambda p: {"l": p[0], "w": p[1], "L": p[0].upper(), "W": p[1].upper()},
               lambda got, want: got.strip() == want,
               size=sized(lambda p: len(p[1]) <= 20, lambda p: len(p[1]) <= 25))
SORT = Family("sort", "1 to 12 integers in 0..99, repeats allowed", "13 to 16 integers", _draw_sort, _parse_sort,
              lambda p: " ".join(map(str, sorted(p))), SORT_PHRASINGS, _sort_fields,
              lambda got, want: norm_space(got.replace(",", " ")) == want,
              size=sized(lambda p: len(p) <= 12 and max(p) <= 99, lambda p: len(p) <= 16 and max(p) <= 99))
