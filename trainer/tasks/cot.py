"""Chain-of-thought writers: short, mechanical steps a 1M-parameter character model can learn.

Every writer takes the family's parsed parameters and returns the text between <think> and </think>.
The traces carry position explicitly (REFERENCE.md section 5, index hints): a number is restated with a
place letter before each digit (`b4a7` is 47: a = ones, b = tens, ...), every column step names its place,
and the result is written with places again, so a step finds its digits by their letter, not by counting
characters, and a longer number only needs the next letter.

A model whose tokenizer has `places` reads its questions and writes its answers with the same letters
(runtime/tokenizer.py: `What is b4a7+a5?`, `<answer>b5a2</answer>`), so restating an operand is a plain
copy that stops at the ones letter, and the answer a copy of the result. In its training the
letters of question and trace start at one random offset (Abacus embeddings, McLeish et al. 2024, as text):
at offset 2 the ones digit is `c`, so the letters g, h, i that a 7-8 digit number needs at offset 0 are
trained on 4-6 digit numbers, in every role: successor, lookup, result. The runtime marks at offset 0.
Each family's trace begins with the problem restated in one canonical form, whatever the phrasing.
"""
from runtime.tasks import FAMILIES, REFUSAL_THINKING, family_of
from runtime.tasks.algebra import quadratic_eq
from runtime.errors import TaskError
from runtime.tokenizer import ITEM, ITEMS, PLACES, item_hints, mark_places

OFFSETS = (0.5, 4)             # P(offset 0), and the largest offset (drawn uniformly from 1.. otherwise); in
#                                minis (d=96, 2,500 steps) (0.3, 6) learned neither the range nor beyond it
ITEM_OFFSETS = (0.3, 10)        # P(item offset 0), and the largest item offset (uniform from 1.. otherwise)
PLACE_FAMILIES = ("add", "sub", "mul", "linear", "quadratic")      # the writers that take an offset
PAD_FAMILIES, WIDEST = ("add", "sub"), 10   # the writers that take a width, and the widest drawn (10 columns)
COUNT_WIDEST = 30              # the most entries of a padded count trace (issue 17 trains words of 1-20 letters)


def digits_rtl(n, width):
    return [int(c) for c in reversed(str(n).rjust(width, "0"))]


def placed(n, o=0, width=0):
    """47 -> 'b4a7': each digit after its place letter, highest place first; at offset 1, 'c4b7' (the
    tokenizer's mark_places, which leaves a number too long for the letters unmarked: here an error);
    at width 4, 'd0c0b4a7'."""
    digits = str(n).rjust(width, "0")
    if len(digits) + o > len(PLACES):
        raise TaskError(f"{n} at offset {o}: no place letters left past {PLACES[-1]}")
    return mark_places(digits, o)


def draw_width(rng):
    """The width of a padded add or sub trace: 2..WIDEST columns (a narrower number is padded with leading
    zeros; a wider one keeps its own width). Lengths of operand, column run and result up to 10 are thus
    practised on numbers of at most 6 digits, so a copy's length is not learned from the longest number."""
    return int(rng.integers(2, WIDEST + 1))


def draw_count_width(rng, word):
    """The entries of a padded count trace: len(word)+1..COUNT_WIDEST (at least one "." before the word's
    letters). Runs of 21-30 entries are thus practised on words of at most 20 letters, so the trace's
    length is not learned from the longest word."""
    return int(rng.integers(min(len(word) + 1, COUNT_WIDEST), COUNT_WIDEST + 1))


def draw_offset(rng):
    """The letter offset of one training example: 0 with probability OFFSETS[0], else 1..OFFSETS[1]."""
    if rng.random() < OFFSETS[0]:
        return 0
    return int(rng.integers(1, OFFSETS[1] + 1))


def draw_item_offset(rng):
    """The item letter offset of one training example (a tokenizer with items): 0 with probability
    ITEM_OFFSETS[0], else 1..ITEM_OFFSETS[1]. Lists of at most 12 numbers at offsets up to 10 train the letters
    A..V, so the letters of 13-16 numbers at offset 0 (M..P) are trained in every role."""
    if rng.random() < ITEM_OFFSETS[0]:
        return 0
    return int(rng.integers(1, ITEM_OFFSETS[1] + 1))


def entry_letters(numbers, offset, trace="indexed"):
    """The letters of a lettered sort trace's entries, one for each of the sorted `numbers`, from ITEMS[offset]:
    "indexed" letters them in order (8 44 44 -> A B C), "nth" by which occurrence of its number each is
    (8 44 44 -> A A B); none (the plain buckets) for an offset of None or more letters than are left."""
    if trace == "nth":
        ks = [sum(1 for y in numbers[:i] if y == x) for i, x in enumerate(numbers)]
    else:
        ks = list(range(len(numbers)))
    if offset is None or not ks or max(ks) + offset >= len(ITEMS):
        return []
    return [ITEMS[offset + k] for k in ks]


def index_answer(answer, offset, trace="indexed"):
    """A sort answer with each number after its entry's hint (sort traces "indexed" and "nth"): "8 44 44" from
    offset 0 -> "#A8 #B44 #C44" (indexed), "#A8 #A44 #B44" (nth); as it is when entry_letters gives none."""
    numbers = answer.split()
    letters = entry_letters(numbers, offset, trace)
    return " ".join(ITEM + c + x for c, x in zip(letters, numbers)) if letters else answer


def add_steps(a, b, o=0, width=0):
    # 47+38 -> "a7+8=15 b4+3+1=8": place, digit of a, digit of b, the carry in, their sum
    w = max(len(str(a)), len(str(b)), width)
    steps, carry = [], 0
    for i, (da, db) in enumerate(zip(digits_rtl(a, w), digits_rtl(b, w))):
        s = da + db + carry
        steps.append(f"{PLACES[o + i]}{da}+{db}{'+1' if carry else ''}={s}")
        carry = s // 10
    return " ".join(steps)


def sub_steps(a, b, o=0, width=0):
    # 82-47 -> "a12-7=5 b7-4=3": the top digit less any borrow, plus 10 when this column borrows
    w = max(len(str(a)), len(str(b)), width)
    steps, borrow = [], 0
    for i, (da, db) in enumerate(zip(digits_rtl(a, w), digits_rtl(b, w))):
        x = da - borrow
        borrow = 1 if x < db else 0
        x += 10 * borrow
        steps.append(f"{PLACES[o + i]}{x}-{db}={x - db}")
    return " ".join(steps)


def cot_add(p, o=0, w=0):
    # 47+38 -> "b4a7+b3a8 a7+8=15 b4+3+1=8 =b8a5"; at width w=4 (training only, draw_width):
    # "d0c0b4a7+d0c0b3a8 a7+8=15 b4+3+1=8 c0+0=0 d0+0=0 =d0c0b8a5" (the answer is still 85)
    a, b = p
    w = max(w, len(str(a)), len(str(b))) if w else 0          # padded: both operands at one width
    return f"{placed(a, o, w)}+{placed(b, o, w)} {add_steps(a, b, o, w)} ={placed(a + b, o, w)}"


def cot_sub(p, o=0, w=0):
    # 82-47 -> "b8a2-b4a7 a12-7=5 b7-4=3 =b3a5"; when the top column still borrows the result is negative:
    # 47-82 -> "b4a7-b8a2 a7-2=5 b14-8=6 <0 b8a2-b4a7 a12-7=5 b7-4=3 =-b3a5"; width w as cot_add's
    a, b = p
    w = max(w, len(str(a)), len(str(b))) if w else 0          # padded: both operands at one width
    head = f"{placed(a, o, w)}-{placed(b, o, w)} {sub_steps(a, b, o, w)}"
    if a >= b:
        return f"{head} ={placed(a - b, o, w)}"
    return f"{head} <0 {placed(b, o, w)}-{placed(a, o, w)} {sub_steps(b, a, o, w)} =-{placed(b - a, o, w)}"


def mul_steps(a, e, o=0):
    # 23*7 -> "a3*7=21 b2*7=14+2=16": each digit of a times e, plus the carry
    steps, carry = [], 0
    for i, d in enumerate(digits_rtl(a, len(str(a)))):
        prod = d * e
        steps.append(f"{PLACES[o + i]}{d}*{e}={prod}" + (f"+{carry}={prod + carry}" if carry else ""))
        carry = (prod + carry) // 10
    return " ".join(steps)


def cot_mul(p, o=0):
    # 23*47 -> "b2a3*b4a7 a7: a3*7=21 b2*7=14+2=16 =c1b6a1 b4: a3*4=12 b2*4=8+1=9 =c9b2a0 + a1+0=1 b6+2=8
    # c1+9=10 =d1c0b8a1": one partial product per digit of b, written at its place, then their sum
    a, b = p
    parts, out = [], [f"{placed(a, o)}*{placed(b, o)}"]
    for j, e in enumerate(digits_rtl(b, len(str(b)))):
        part = a * e * 10 ** j
        out.append(f"{PLACES[o + j]}{e}: {mul_steps(a, e, o)} ={placed(part, o)}")
        parts.append(part)
    if len(parts) == 2:
        out.append(f"+ {add_steps(*parts, o)} ={placed(a * b, o)}")
    return " ".join(out)


def cot_count(p, width=0):
    # r in strawberry -> "r: s t r1 a w b e r2 r3 y": the running count appears at each match; at width 13,
    # "r: . . . s t r1 a w b e r2 r3 y" (a "." entry per missing letter, before the word)
    letter, word = p
    out, n = ["."] * (width - len(word)), 0
    for c in word:
        if c == letter:
            n += 1
            out.append(f"{c}{n}")
        else:
            out.append(c)
    return f"{letter}: " + " ".join(out)


def signed_sum(x, y, o=0):
    """x + y for signed x, y as add or sub steps on their sizes -> (trace, value)."""
    if x >= 0 and y >= 0:
        return cot_add((x, y), o), x + y
    if x < 0 and y < 0:
        return f"-({cot_add((-x, -y), o)})", x + y
    pos, neg = (x, -y) if x >= 0 else (y, -x)
    return cot_sub((pos, neg), o), x + y


def division_steps(n, t):
    """The dividends m of n/t's long division, one per digit of n: 300/5 -> [3, 30, 0]."""
    out, r = [], 0
    for c in str(n):
        m = r * 10 + int(c)
        out.append(m)
        r = m % t
    return out


def divide(n, t):
    # 300/5 -> "300/5: 3/5=0r3 30/5=6r0 0/5=0r0 =60": long division, one quotient digit per digit of n
    ms = division_steps(n, t)
    return f"{n}/{t}: " + " ".join(f"{m}/{t}={m // t}r{m % t}" for m in ms) + f" ={n // t}"


def cot_linear(p, o=0):
    # 3x+5=20 -> "3x+5=20 3x=20-5 b2a0-a5 a10-5=5 b1-0=1 =b1a5 x=15/3 15/3: 1/3=0r1 15/3=5r0 =5"
    a, b, c = p
    eq = f"{'' if a == 1 else a}x{'+' if b >= 0 else '-'}{abs(b)}={c}"
    trace, rhs = signed_sum(c, -b, o)
    out = f"{eq} {a}x={c}{'-' if b >= 0 else '+'}{abs(b)} {trace} x={rhs}/{a} "
    return out + (divide(rhs, a) if rhs >= 0 else f"-({divide(-rhs, a)})")


def cot_speed(p):
    # 300 km in 5 hours -> "300/5: 3/5=0r3 30/5=6r0 0/5=0r0 =60"
    return divide(p[0], p[1])


def cot_quadratic(p, o=0):
    # roots 2, 3 -> "x^2-5x+6=0 s=5 p=6 s^2=25 4p: a6*4=24 =b2a4 D=25-24 b2a5-b2a4 a5-4=1 b2-2=0 =a1 d=1
    # x=(5-1)/2 a5-a1 a5-1=4 =a4 4/2=2 x=(5+1)/2 a5+a1 a5+1=6 =a6 6/2=3": D = s^2-4p = (r2-r1)^2, d its square
    # root, the roots (s-d)/2 and (s+d)/2, each sum in column steps (signed_sum), then halved. 4p is
    # multiplied in column steps (v4 wrote it in one go, and missed 4*324 and 4*176: p reaches 400)
    r1, r2 = p
    s, prod = r1 + r2, r1 * r2
    d = r2 - r1
    trace, _ = signed_sum(s * s, -4 * prod, o)
    roots = [f"x=({s}{sign}{d})/2 {signed_sum(s, k * d, o)[0]} {halve(s + k * d)}"
             for sign, k in (("-", -1), ("+", 1))]
    return (f"{quadratic_eq(p)} s={s} p={prod} s^2={s * s} 4p: {times_four(prod, o)} "
            f"D={s * s}{'-' if prod >= 0 else '+'}{abs(4 * prod)} {trace} d={d} " + " ".join(roots))


def times_four(n, o=0):
    """4n in column steps: 'a6*4=24 =b2a4', '-(a6*4=24 =b2a4)' for n = -6."""
    steps = f"{mul_steps(abs(n), 4, o)} ={placed(4 * abs(n), o)}"
    return steps if n >= 0 else f"-({steps})"


def halve(n):
    """'6/2=3', '-24/2=-12' (n is even: the roots are integers)."""
    return f"{n}/2={n // 2}"


def ones_first(n, o=0):
    """55 -> 'a5b5', 102 -> 'a2b0c1': each digit after its place letter, the ones first (the order in which
    a sum's digits are found, each from the same letters of its two addends and the carry of the letter
    before); at offset 1, 'b5c5'."""
    digits = str(n)[::-1]
    if len(digits) + o > len(PLACES):
        raise TaskError(f"{n} at offset {o}: no place letters left past {PLACES[-1]}")
    return "".join(PLACES[o + i] + d for i, d in enumerate(digits))


def cot_fib(n, o=0, sums=False, start=(0, 1)):
    # fib(4) -> "fib(4): 0,4 1,3 1,2 2,1 3,0": fib(0), fib(1), ... each beside a countdown from n. A value
    # depends only on the two before it, and the trace always stops right after ",0".
    # sums (issue 18): each value ones first with place letters, "fib(10): a0,10 a1,9 a1,8 a2,7 a3,6 a5,5 a8,4
    # a3b1,3 a1b2,2 a4b3,1 a5b5,0", so that a value's digit at letter x is the sum of the two values before
    # at x and the carry from the letter before: written in the order it is computed. `start`: the first two
    # values (trainer/tasks/drill.py drilled_fib practises the sums on other values, the countdown past 40).
    show = (lambda v: ones_first(v, o)) if sums else str
    return f"fib({n}): " + " ".join(f"{show(v)},{n - i}" for i, v in enumerate(fib_values(n, start)))


def fib_values(n, start=(0, 1)):
    """[fib(0), ..., fib(n)] of the sequence whose first two values are `start`."""
    vals = [*start]
    while len(vals) <= n:
        vals.append(vals[-1] + vals[-2])
    return vals[:n + 1]


def cot_sort(p, trace="buckets", o=0, letters=()):
    # 47 8 44 9 95 90 44 -> "0:8,9 1: 2: 3: 4:4,4,7 5: 6: 7: 8: 9:0,5": the numbers by tens digit, each
    # bucket listing its numbers' ones digits in rising order (a bucket is one digit's lookup, its order a
    # comparison of single digits); the answer reads the buckets in order: 8 9 44 44 47 90 95.
    # trace "tally" (issue 18, student v14): each distinct ones digit once, with how often it occurs:
    # "0:8x1,9x1 1: 2: 3: 4:4x2,7x1 5: 6: 7: 8: 9:0x1,5x1". A bucket then holds at most ten entries however
    # long the list (v13's sorts of 13-16 numbers lost a repeat in a bucket of 13+ single digits, or in the
    # answer's copy of "5,5": with distinct entries the answer finds its place by value, not by counting).
    # trace "radix" (issue 18, student v17): a least-significant-digit radix sort of whole numbers,
    # "ones 0:90 1: 2: 3: 4:44,44 5:95 6: 7:47 8:8 9:9 tens 0:8,9 1: 2: 3: 4:44,44,47 5: 6: 7: 8: 9:90,95".
    # The ones pass lists the question's numbers by ones digit, each bucket in the question's order; the tens
    # pass reads the ones pass in its order into buckets by tens digit, so each tens bucket is already
    # sorted; the answer is the tens pass's entries in order. A list of single digits no longer piles into
    # one bucket (v15 wrote a wrong one for 25 of 59 lists of 13-16 single digits): its ones buckets hold equal numbers, and
    # its tens bucket 0 is a copy of the ones pass. Every entry is a whole number, so the answer copies
    # entries rather than joining digits to their bucket's.
    # trace "counted" (issue 18, student v19): every number with how often it has occurred so far, as count
    # writes its running count (`r1 ... r2 r3`), first in the question's order, then sorted, numbers with place
    # letters from offset o: "seen b4a7:1 a8:1 b4a4:1 a9:1 b9a5:1 b9a0:1 b4a4:2 sorted a8:1 a9:1 b4a4:1
    # b4a4:2 b4a7:1 b9a0:1 b9a5:1". Every trace before lost or doubled one of a run of equal numbers past 12
    # numbers; here no two entries are equal, so the next sorted entry is found by its value and count (is
    # there a b4a4:3? else the least value above 44, at :1) and never by counting how many were written.
    # trace "items" (issue 18, student v20; a tokenizer with items, runtime/tokenizer.py): the buckets, each
    # entry a number's item letter and ones digit, in order of ones digit, then letter: "Sort #A47 #B8 #C44 #D9
    # #E95 #F90 #G44" -> "0:B8,D9 1: 2: 3: 4:C4,G4,A7 5: 6: 7: 8: 9:F0,E5", and the answer writes each number
    # with its item's hint, `#Ba8 #Da9 #Cb4a4 #Gb4a4 ...`. Equal numbers are told apart by their letters, so
    # a bucket's next entry and the answer's next number are found by letter, never by counting how many
    # equal ones were written. A list too short to be marked (1 or 2 numbers) keeps the plain buckets.
    # trace "indexed" (issue 18, student v23; a tokenizer with hints): the buckets, each entry a letter in order
    # from the first (ITEMS[item offset]) and the ones digit: "0:A8,B9 1: 2: 3: 4:C4,D4,E7 5: 6: 7: 8: 9:F0,G5",
    # and the answer writes its k-th number after the k-th entry's letter, `#Aa8 #Ba9 #Cb4a4 #Db4a4 ...`
    # (index_answer). The buckets are v13's; only the answer's copy changes: v13 wrote the right buckets for 45
    # of its 72 wrong sorts of 13-16 numbers and dropped or doubled an entry while copying them (`8:3,5,5`
    # answered `85 85 85`). Here the next number is found by the next letter, never by counting.
    # trace "nth" (issue 18, student v24; a tokenizer with hints): the buckets, each entry after a letter for
    # which occurrence of its number it is, "0:A8,A9 1: 2: 3: 4:A4,B4,A7 5: 6: 7: 8: 9:A0,A5", the answer's
    # numbers after their entries' letters, `#Aa8 #Aa9 #Ab4a4 #Bb4a4 #Ab4a7 ...`. v23's letters in order
    # counted the entries, and its traces of 13-16 numbers stopped near the 12th letter, the longest list
    # trained; an occurrence letter counts only equal numbers (rarely more than 5 in 16), and the entry a
    # letter and number name is unique, so the answer finds the next entry after it in the trace.
    if (trace == "items" or trace in LETTERED) and letters:
        entries = sorted(zip(p, letters)) if trace == "items" else list(zip(sorted(p), letters))
        return " ".join(f"{t}:{','.join(f'{c}{x % 10}' for x, c in entries if x // 10 == t)}" for t in range(10))
    if trace == "counted":
        seen, counts = [], {}
        for x in p:
            counts[x] = counts.get(x, 0) + 1
            seen.append(f"{placed(x, o)}:{counts[x]}")
        ranked = [f"{placed(x, o)}:{k}" for x in sorted(counts) for k in range(1, counts[x] + 1)]
        return " ".join(["seen", *seen, "sorted", *ranked])
    if trace == "radix":
        ones = [[x for x in p if x % 10 == u] for u in range(10)]
        tens = [[x for b in ones for x in b if x // 10 == t] for t in range(10)]
        return " ".join(["ones", *(f"{u}:{','.join(map(str, b))}" for u, b in enumerate(ones)),
                         "tens", *(f"{t}:{','.join(map(str, b))}" for t, b in enumerate(tens))])
    buckets = [sorted(x % 10 for x in p if x // 10 == t) for t in range(10)]
    if trace == "tally":
        return " ".join(f"{t}:{','.join(f'{u}x{b.count(u)}' for u in sorted(set(b)))}" for t, b in enumerate(buckets))
    return " ".join(f"{t}:{','.join(map(str, b))}" for t, b in enumerate(buckets))


SORT_TRACES = ("buckets", "tally", "radix", "counted", "items", "indexed", "nth")   # cot_sort's, recipe sort_trace
LETTERED = ("indexed", "nth")  # sort traces the model letters itself, its answers after the letters (tokenizer hints)


WRITERS = {"add": cot_add, "sub": cot_sub, "mul": cot_mul, "count": cot_count, "linear": cot_linear,
           "speed": cot_speed, "quadratic": cot_quadratic, "fib": cot_fib, "sort": cot_sort,
           "faq": lambda p: "recall"}


def reasoning(question, family=None, offset=0, width=0, sort_trace="buckets", fib_sums=False, item_offset=None):
    """The chain of thought for a question of a known family (or the refusal's, for `family="refuse"`), its
    place letters starting at PLACES[offset]; add and sub written at least `width` columns wide, count with
    at least `width` entries, sort as `sort_trace` (cot_sort), fib's values ones first with
    place letters when `fib_sums`; sort "items" with the item letters mark_items gives the question's list
    from ITEMS[item_offset] (None: a tokenizer without items, the plain buckets), sort "indexed" and "nth" with
    entry letters from ITEMS[item_offset] (entry_letters)."""
    if family == "refuse":
        return REFUSAL_THINKING
    fam = FAMILIES[family] if family else family_of(question)
    if fam is None:
        raise TaskError(f"no task family parses {question!r}; families: {', '.join(FAMILIES)}")
    params = fam.parse(question)
    if params is None:
        raise TaskError(f"{fam.name}: cannot parse the question {question!r}")
    if fam.name in PAD_FAMILIES:
        return WRITERS[fam.name](params, offset, width)
    if fam.name == "count":
        return cot_count(params, width)
    if fam.name == "sort":
        if sort_trace in LETTERED:
            letters = entry_letters(sorted(params), item_offset, sort_trace)
        else:
            letters = [] if item_offset is None else [c for c, _ in item_hints(question, item_offset)]
        return cot_sort(params, sort_trace, offset, letters)
    if fam.name == "fib":
        return cot_fib(params, offset, fib_sums)
    if fam.name in PLACE_FAMILIES:
        return WRITERS[fam.name](params, offset)
    return WRITERS[fam.name](params)


def target_text(thinking, answer):
    return f"<think>{thinking}</think><answer>{answer}</answer>"


def target(question, family=None):
    fam = FAMILIES[family] if family else family_of(question)
    return target_text(reasoning(question, fam.name), fam.solve(question))
