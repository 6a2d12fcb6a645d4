"""Paraphrases of an owner's question, for `tinyr1 teach`: the ways a visitor retypes a question.

A trained paraphrase is an opening + a form of the question + an ending: forms change case, drop the
question mark, swap "what is" <-> "what's" or reorder the words ("the oldest object here: what is it?");
openings ("Tell me: ", "Excuse me, ") and endings (" please", "??") come from pools, so that the model learns
to read past any of them rather than a few. `HELDOUT` paraphrases are never trained: openings, endings
and spacing that no pool holds, to measure phrasings the owner did not write.
"""
import re

_CONTRACT = [(r"\b(what|who|where|when|how|that|it)'s\b", r"\1 is"), (r"\b(what|who|where|when|how) is\b", r"\1's")]
_WH = re.compile(r"^(what|who|where|when|which|how|why)( [a-z]+)? (is|are|was|were|did|does|do|can|will|has|have)"
                 r" (.+)$")

FORMS = ("bare", "lower_bare", "swap", "lower_swap")
OPENINGS = ("", "", "", "Tell me: ", "Tell me, ", "Please, ", "Q: ", "Quick question: ", "Can you tell me ",
            "Excuse me, ", "Hi! ", "Hello, ", "Question: ", "So ", "Okay, ", "Hmm, ", "Could you tell me ",
            "I want to know: ", "Sorry, ", "Just wondering, ", "One question: ", "Please tell me ", "Ok ",
            "Good morning! ", "Um, ", "Would you know ", "May I ask: ", "Any idea: ", "Could you say ",
            "I'd like to know ", "Pardon, ", "Hi there, ", "Say, ")
ENDINGS = ("?", "?", "", " please?", ", please", "??", "!", " :)", " - thank you?", "?!", ".", " ?? please",
           ", thank you!", " thx", "!!", " please!")
HELDOUT = ("{lower_bare} ?", "Do you know {lower_bare}?", "Hey, {lower_swap}?", "I wonder: {lower_bare}?",
           "{bare}, thanks!")
VARIANTS = 40                     # trained paraphrases per question, the owner's own first


def swap(q):
    """ "What is X" <-> "What's X" (the first such pair; unchanged when there is none)."""
    for pattern, repl in _CONTRACT:
        s = re.sub(pattern, repl, q, count=1, flags=re.IGNORECASE)
        if s != q:
            return s[0].upper() + s[1:] if q[:1].isupper() else s
    return q


def reordered(bare):
    """ "what is the oldest object here" -> "the oldest object here: what is it?"; other questions turn
    around their first comma, or are None."""
    low = bare[0].lower() + bare[1:] if bare else bare
    m = _WH.match(low)
    if m:
        wh, noun, verb, rest = m.groups()
        return f"{rest}: {wh}{noun or ''} {verb} it?"
    head, comma, tail = low.partition(", ")
    return f"{tail}, {head}?" if comma else None


def distracted(question, letter, filler):
    """A count question with `filler` (a word) right before its lone letter: "How many r in strawberry?" ->
    "How many apple r in strawberry?". Not a phrasing anyone types: training on it teaches that the letter
    is the one letter standing alone, not the first letter after "How many" or after a word training
    knows. None when the question has no lone letter (a retyped question may have lost it)."""
    tokens = question.split(" ")
    for j, t in enumerate(tokens):
        if j and re.fullmatch(rf"{letter}(?:'?s)?[?.,!]?", t, re.IGNORECASE):
            return " ".join(tokens[:j] + [filler] + tokens[j:])
    return None


def filler(rng, lo=2, hi=10):
    """A random lowercase letter string of lo..hi letters, for distracted: a filler that is almost never a word
    of words.txt, so the letter is found by standing alone, not by the word before it being one training knows
    (v11, whose fillers were all words.txt words, read "How many letters x ..." as a count of l)."""
    return "".join(chr(97 + int(c)) for c in rng.integers(26, size=int(rng.integers(lo, hi + 1))))


def fields(question):
    """The question's forms, without closing punctuation."""
    q = " ".join(question.split())
    bare = q.rstrip(" ?.!")
    return {"q": q, "bare": bare, "lower_bare": bare.lower(), "swap": swap(bare), "lower_swap": swap(bare).lower()}


def heldout(question):
    """The held-out paraphrases of `question` (never trained), distinct."""
    f = fields(question)
    return list(dict.fromkeys(t.format(**f) for t in HELDOUT))


def restyled(question, rng):
    """One random opening + form + ending of `question` (the look-alikes that teach refuses)."""
    f = fields(question)
    opening = OPENINGS[int(rng.integers(len(OPENINGS)))]
    return opening + f[FORMS[int(rng.integers(len(FORMS)))]] + ENDINGS[int(rng.integers(len(ENDINGS)))]


def longest(question):
    """The longest trained paraphrase `question` can get (for the context check)."""
    f = fields(question)
    return max(OPENINGS, key=len) + max((f[k] for k in FORMS), key=len) + max(ENDINGS, key=len)


def trained(question, rng, k=VARIANTS):
    """Up to k distinct trained paraphrases drawn with `rng`: the owner's own first, then the reordered one
    (if the question has one), then openings x forms x endings; none is a held-out paraphrase."""
    f = fields(question)
    out = [f["q"]] + [r for r in [reordered(f["bare"])] if r]
    avoid = set(heldout(question))
    for _ in range(k * 20):
        if len(out) >= k:
            break
        v = restyled(question, rng)
        if v not in out and v not in avoid:
            out.append(v)
    return out
